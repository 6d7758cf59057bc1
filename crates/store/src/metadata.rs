//! Annotations (IMAP METADATA, RFC 5464): entry names and values per
//! mailbox, or per account for the server-wide ones. The store keeps what
//! it is given; entry syntax and value sizes are the protocol's to check.

use crate::dialect::WritePool;
use crate::{AccountId, MailboxId, Result, Store, StoreError, with_pool};

/// Where an annotation lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataScope {
    /// The server as this account sees it (IMAP's mailbox name `""`).
    Server,
    Mailbox(MailboxId),
}

impl MetadataScope {
    fn column(self) -> i64 {
        match self {
            MetadataScope::Server => 0,
            MetadataScope::Mailbox(id) => id.0,
        }
    }
}

impl Store {
    /// Every entry kept for `scope`, sorted by name.
    pub async fn metadata(
        &self,
        account: AccountId,
        scope: MetadataScope,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT entry, value FROM metadata WHERE account_id = $1 AND mailbox_id = $2 \
                 ORDER BY entry",
            )
            .bind(account.0)
            .bind(scope.column())
            .fetch_all(pool)
            .await?
        }))
    }

    /// Sets entries (`Some`) and removes them (`None`) in one transaction:
    /// all or none. Fails with [`StoreError::MetadataLimit`] when the
    /// account would keep more than `max_entries` entries in all, and with
    /// [`StoreError::MailboxIdNotFound`] when the mailbox is gone.
    pub async fn set_metadata(
        &self,
        account: AccountId,
        scope: MetadataScope,
        changes: &[(String, Option<Vec<u8>>)],
        max_entries: u32,
    ) -> Result<()> {
        with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            if let MetadataScope::Mailbox(id) = scope {
                let found: Option<(i64,)> = sqlx::query_as(
                    "SELECT id FROM mailboxes WHERE id = $1 AND account_id = $2",
                )
                .bind(id.0)
                .bind(account.0)
                .fetch_optional(&mut *tx)
                .await?;
                if found.is_none() {
                    return Err(StoreError::MailboxIdNotFound(id));
                }
            }
            for (entry, value) in changes {
                match value {
                    Some(value) => {
                        sqlx::query(
                            "INSERT INTO metadata (account_id, mailbox_id, entry, value) \
                             VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (account_id, mailbox_id, entry) \
                             DO UPDATE SET value = excluded.value",
                        )
                        .bind(account.0)
                        .bind(scope.column())
                        .bind(entry)
                        .bind(value)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query(
                            "DELETE FROM metadata \
                             WHERE account_id = $1 AND mailbox_id = $2 AND entry = $3",
                        )
                        .bind(account.0)
                        .bind(scope.column())
                        .bind(entry)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            let (count,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM metadata WHERE account_id = $1")
                    .bind(account.0)
                    .fetch_one(&mut *tx)
                    .await?;
            if count > i64::from(max_entries) {
                // Dropping the transaction rolls every change back.
                return Err(StoreError::MetadataLimit { limit: max_entries });
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
