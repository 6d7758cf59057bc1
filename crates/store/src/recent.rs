//! `\Recent` (RFC 3501 §2.3.2): each message is recent in exactly one
//! session, the first to SELECT its mailbox after the message arrived.
//!
//! The mailbox row keeps `recent_uid`, the first UID no session has claimed.
//! A session claims `[recent_uid, uid_next)` by moving `recent_uid` forward
//! with a compare-and-set, so of two sessions racing for the same messages
//! exactly one gets them, on one node or several.

use crate::error::{Result, StoreError};
use crate::types::{MailboxId, Uid};
use crate::{Store, with_pool};

/// Attempts at the compare-and-set before giving up the claim: each failure
/// means another session claimed in between, so a few rounds settle it.
const CLAIM_ATTEMPTS: usize = 8;

impl Store {
    /// Claims the messages no session has seen as recent yet: returns the
    /// UID range `[first, end)` now recent for the caller alone, or `None`
    /// when there is nothing new to claim.
    pub async fn claim_recent(&self, mailbox: MailboxId) -> Result<Option<(Uid, Uid)>> {
        for _ in 0..CLAIM_ATTEMPTS {
            let (first, end) = self.recent_bounds(mailbox).await?;
            if first >= end {
                return Ok(None);
            }
            let claimed = with_pool!(self.db_write(), pool => {
                sqlx::query("UPDATE mailboxes SET recent_uid = $1 WHERE id = $2 AND recent_uid = $3")
                    .bind(i64::from(end.0))
                    .bind(mailbox.0)
                    .bind(i64::from(first.0))
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
            if claimed == 1 {
                return Ok(Some((first, end)));
            }
        }
        Ok(None)
    }

    /// The first UID not yet claimed as recent and the mailbox's UIDNEXT:
    /// the messages in between are recent for whoever claims them.
    pub async fn recent_bounds(&self, mailbox: MailboxId) -> Result<(Uid, Uid)> {
        let row: Option<(i64, i64)> = with_pool!(self.db(), pool => {
            sqlx::query_as("SELECT recent_uid, uid_next FROM mailboxes WHERE id = $1")
                .bind(mailbox.0)
                .fetch_optional(pool)
                .await?
        });
        let (first, end) = row.ok_or(StoreError::MailboxIdNotFound(mailbox))?;
        Ok((Uid(first as u32), Uid(end as u32)))
    }

    /// Messages present that no session has claimed as recent (STATUS
    /// RECENT of a mailbox this session has not selected).
    pub async fn unclaimed_recent_count(&self, mailbox: MailboxId) -> Result<u32> {
        let (count,): (i64,) = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM mailbox_messages mm JOIN mailboxes mb \
                 ON mb.id = mm.mailbox_id WHERE mm.mailbox_id = $1 AND mm.uid >= mb.recent_uid",
            )
            .bind(mailbox.0)
            .fetch_one(pool)
            .await?
        });
        Ok(count as u32)
    }
}
