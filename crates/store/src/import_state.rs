//! What imports remember between runs: where an incremental IMAP import of
//! a folder left off (UIDVALIDITY, last UID), which local message each
//! source message became, and the content hashes of a mailbox's messages
//! (to skip what is already there).

use crate::error::Result;
use crate::{Store, with_pool};

impl Store {
    /// Content hashes (BLAKE3 of the stored bytes) of the messages in a
    /// mailbox: imports use them to skip what is already there.
    pub async fn mailbox_hashes(
        &self,
        mailbox: crate::MailboxId,
    ) -> Result<std::collections::HashSet<String>> {
        let rows: Vec<(String,)> = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT m.blob_hash FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
                 WHERE mm.mailbox_id = $1",
            )
            .bind(mailbox.0)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(h,)| h).collect())
    }

    /// Where an import of `folder` from `source` left off: (UIDVALIDITY, last UID).
    pub async fn import_state(
        &self,
        account: crate::AccountId,
        source: &str,
        folder: &str,
    ) -> Result<Option<(u32, u32)>> {
        let row: Option<(i64, i64)> = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT uid_validity, last_uid FROM import_state WHERE account_id = $1 AND source = $2 AND folder = $3",
            )
            .bind(account.0)
            .bind(source)
            .bind(folder)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(v, u)| (v as u32, u as u32)))
    }

    pub async fn set_import_state(
        &self,
        account: crate::AccountId,
        source: &str,
        folder: &str,
        uid_validity: u32,
        last_uid: u32,
    ) -> Result<()> {
        with_pool!(self.db_write(), pool => {
            sqlx::query(
                "INSERT INTO import_state (account_id, source, folder, uid_validity, last_uid) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (account_id, source, folder) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid",
            )
            .bind(account.0)
            .bind(source)
            .bind(folder)
            .bind(uid_validity as i64)
            .bind(last_uid as i64)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records which local message (mailbox, UID) imported source UIDs became.
    pub async fn set_import_map(
        &self,
        account: crate::AccountId,
        source: &str,
        folder: &str,
        entries: &[(u32, crate::MailboxId, crate::Uid)],
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        with_pool!(self.db_write(), pool => {
            let mut tx = crate::dialect::WritePool::begin_write(pool).await?;
            for (remote, mailbox, uid) in entries {
                sqlx::query(
                    "INSERT INTO import_map (account_id, source, folder, remote_uid, mailbox_id, local_uid) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, source, folder, remote_uid) \
                     DO UPDATE SET mailbox_id = excluded.mailbox_id, local_uid = excluded.local_uid",
                )
                .bind(account.0)
                .bind(source)
                .bind(folder)
                .bind(*remote as i64)
                .bind(mailbox.0)
                .bind(uid.0 as i64)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Source UID → (local mailbox, local UID) for one imported folder.
    pub async fn import_map(
        &self,
        account: crate::AccountId,
        source: &str,
        folder: &str,
    ) -> Result<std::collections::HashMap<u32, (crate::MailboxId, crate::Uid)>> {
        let rows: Vec<(i64, i64, i64)> = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT remote_uid, mailbox_id, local_uid FROM import_map WHERE account_id = $1 AND source = $2 AND folder = $3",
            )
            .bind(account.0)
            .bind(source)
            .bind(folder)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(r, m, u)| (r as u32, (crate::MailboxId(m), crate::Uid(u as u32))))
            .collect())
    }
}
