//! Quota figures and housekeeping: what an account uses, and removing
//! messages, blobs and files nothing refers to any more.

use crate::dialect::WritePool;
use crate::error::{Result, StoreError};
use crate::types::AccountId;
use crate::{Store, with_pool};

impl Store {
    /// Bytes the account uses, as kept with every write (the quota figure).
    pub async fn quota_used(&self, account: AccountId) -> Result<u64> {
        let row: Option<(i64,)> = with_pool!(self.db(), pool => {
            sqlx::query_as("SELECT used_bytes FROM accounts WHERE id = $1")
                .bind(account.0)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(used,)| used.max(0) as u64)
            .ok_or(StoreError::AccountNotFound(account))
    }

    /// The account's quota limit in bytes, `None` for unlimited.
    pub async fn quota_limit(&self, account: AccountId) -> Result<Option<u64>> {
        let row: Option<(Option<i64>,)> = with_pool!(self.db(), pool => {
            sqlx::query_as("SELECT quota_bytes FROM accounts WHERE id = $1")
                .bind(account.0)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(limit,)| limit.map(|l| l.max(0) as u64))
            .ok_or(StoreError::AccountNotFound(account))
    }

    /// Recounts usage from the messages themselves (for checks and repair).
    pub async fn quota_recount(&self, account: AccountId) -> Result<u64> {
        let (used,): (i64,) = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(m.size), 0) AS BIGINT) FROM mailbox_messages mm \
                 JOIN messages m ON m.id = mm.message_id JOIN mailboxes mb ON mb.id = mm.mailbox_id \
                 WHERE mb.account_id = $1",
            )
            .bind(account.0)
            .fetch_one(pool)
            .await?
        });
        Ok(used as u64)
    }

    /// Number of blobs stored (a message to N recipients counts once).
    pub async fn blob_count(&self) -> Result<u64> {
        let (count,): (i64,) = with_pool!(self.db(), pool => {
            sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM blobs").fetch_one(pool).await?
        });
        Ok(count as u64)
    }

    /// Deletes messages no mailbox holds and blobs no message uses, then
    /// files on disk with no blob row (left by a crash before a commit).
    pub async fn sweep_unreferenced(&self) -> Result<()> {
        let gone: Vec<(String,)> = with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "DELETE FROM messages WHERE NOT EXISTS \
                 (SELECT 1 FROM mailbox_messages mm WHERE mm.message_id = messages.id)",
            )
            .execute(&mut *tx)
            .await?;
            let gone: Vec<(String,)> = sqlx::query_as(
                "DELETE FROM blobs WHERE NOT EXISTS \
                 (SELECT 1 FROM messages m WHERE m.blob_hash = blobs.hash) RETURNING hash",
            )
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            gone
        });
        for (hash,) in gone {
            self.inner.blobs.remove_file(&hash).await?;
        }
        Ok(())
    }

    /// Removes blob files that no database row refers to (crash leftovers).
    /// Only files older than `min_age` go, so an in-flight delivery keeps its file.
    pub async fn sweep_orphan_files(&self, min_age: std::time::Duration) -> Result<usize> {
        let mut removed = 0;
        for hash in self.inner.blobs.list_files().await? {
            let known: Option<(i64,)> = with_pool!(self.db(), pool => {
                sqlx::query_as("SELECT size FROM blobs WHERE hash = $1")
                    .bind(&hash)
                    .fetch_optional(pool)
                    .await?
            });
            if known.is_none()
                && self
                    .inner
                    .blobs
                    .file_age(&hash)
                    .await
                    .is_some_and(|age| age >= min_age)
            {
                self.inner.blobs.remove_file(&hash).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
