//! Quota figures: what an account uses, its limit, a recount from the
//! messages themselves, and the number of blobs stored. The blob lifecycle
//! (removing what nothing refers to) is in `gc.rs`.

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
}
