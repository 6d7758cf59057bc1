//! Messages: reading, flags, expunge, copy and move, and what changed since
//! a MODSEQ. Delivery is in `deliver.rs`.

use crate::dialect::{LockMailboxes, Notify, WritePool};
use crate::error::{Result, StoreError};
use crate::feed::{ChangeEvent, ChangeKind};
use crate::meta::MessageMeta;
use crate::types::*;
use crate::{Store, with_pool};

type EntryRow = (i64, i64, i64, i64, String, i64, i64, bool, Option<i64>);

/// A mailbox row holds all a listing needs (migration 0005): no join with
/// the message rows and their texts.
const ENTRY_COLUMNS: &str = "mm.uid, mm.message_id, mm.modseq, mm.flags, mm.keywords, mm.size, mm.internal_date, mm.downloaded, mm.saved_at";

fn entry_from_row(row: EntryRow) -> MessageEntry {
    let (uid, message, modseq, flags, keywords, size, internal_date, downloaded, saved_at) = row;
    MessageEntry {
        uid: Uid(uid as u32),
        message: MessageId(message),
        modseq: ModSeq(modseq as u64),
        flags: Flags::from_columns(flags, &keywords),
        size: size as u64,
        internal_date,
        downloaded,
        saved_at,
    }
}

/// Deduplicates UIDs and sorts them ascending.
pub(crate) fn sorted_uids(uids: &[Uid]) -> Vec<Uid> {
    let mut uids = uids.to_vec();
    uids.sort_unstable();
    uids.dedup();
    uids
}

impl Store {
    /// The messages of a mailbox within a UID range, ascending by UID.
    pub async fn messages(&self, mailbox: MailboxId, range: UidRange) -> Result<Vec<MessageEntry>> {
        let rows: Vec<EntryRow> = with_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ENTRY_COLUMNS} FROM mailbox_messages mm \
                 WHERE mm.mailbox_id = $1 AND mm.uid BETWEEN $2 AND $3 ORDER BY mm.uid"
            )))
            .bind(mailbox.0)
            .bind(range.first.0 as i64)
            .bind(range.last.0 as i64)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(entry_from_row).collect())
    }

    /// One message of a mailbox, if it is (still) there.
    pub async fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageEntry>> {
        Ok(self.messages(mailbox, UidRange::single(uid)).await?.pop())
    }

    /// Envelope and MIME tree, parsed at delivery.
    pub async fn message_meta(&self, message: MessageId) -> Result<MessageMeta> {
        let row: Option<(String,)> = with_pool!(self.db(), pool => {
            sqlx::query_as("SELECT meta FROM messages WHERE id = $1")
                .bind(message.0)
                .fetch_optional(pool)
                .await?
        });
        let (json,) = row.ok_or(StoreError::MessageExpunged(message))?;
        Ok(serde_json::from_str(&json).unwrap_or_default())
    }

    /// Envelopes and MIME trees of many messages at once (500 per query).
    pub async fn message_metas(
        &self,
        messages: &[MessageId],
    ) -> Result<std::collections::HashMap<MessageId, MessageMeta>> {
        let mut out = std::collections::HashMap::with_capacity(messages.len());
        for chunk in messages.chunks(500) {
            let list = crate::id_list(chunk.iter().map(|m| m.0));
            let rows: Vec<(i64, String)> = with_pool!(self.db(), pool => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id, meta FROM messages WHERE id IN ({list})"
                )))
                .fetch_all(pool)
                .await?
            });
            for (id, json) in rows {
                out.insert(
                    MessageId(id),
                    serde_json::from_str(&json).unwrap_or_default(),
                );
            }
        }
        Ok(out)
    }

    /// The content hash (hex) of many messages' stored bytes, 500 per
    /// query; a message no longer stored is missing from the answer.
    pub async fn content_hashes(
        &self,
        messages: &[MessageId],
    ) -> Result<std::collections::HashMap<MessageId, String>> {
        let mut out = std::collections::HashMap::with_capacity(messages.len());
        for chunk in messages.chunks(500) {
            let list = crate::id_list(chunk.iter().map(|m| m.0));
            let rows: Vec<(i64, String)> = with_pool!(self.db(), pool => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id, blob_hash FROM messages WHERE id IN ({list})"
                )))
                .fetch_all(pool)
                .await?
            });
            out.extend(rows.into_iter().map(|(id, hash)| (MessageId(id), hash)));
        }
        Ok(out)
    }

    /// The message exactly as served to clients: this delivery's trace
    /// headers followed by the stored bytes. A message expunged from its
    /// last mailbox is gone at once (its row held the trace headers):
    /// [`StoreError::MessageExpunged`].
    pub async fn message_bytes(&self, message: MessageId) -> Result<bytes::Bytes> {
        let row: Option<(String, Vec<u8>, Option<Vec<u8>>)> = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT m.blob_hash, m.trace_headers, b.data FROM messages m \
                 JOIN blobs b ON b.hash = m.blob_hash WHERE m.id = $1",
            )
            .bind(message.0)
            .fetch_optional(pool)
            .await?
        });
        let row = row.ok_or(StoreError::MessageExpunged(message))?;
        self.served(row).await
    }

    /// The message at `uid` in `mailbox` as served (see
    /// [`Store::message_bytes`]), in one query; `None` when it is no longer
    /// there (expunged by another session).
    pub async fn message_bytes_at(
        &self,
        mailbox: MailboxId,
        uid: Uid,
    ) -> Result<Option<bytes::Bytes>> {
        let row: Option<(String, Vec<u8>, Option<Vec<u8>>)> = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT m.blob_hash, m.trace_headers, b.data FROM mailbox_messages mm \
                 JOIN messages m ON m.id = mm.message_id JOIN blobs b ON b.hash = m.blob_hash \
                 WHERE mm.mailbox_id = $1 AND mm.uid = $2",
            )
            .bind(mailbox.0)
            .bind(uid.0 as i64)
            .fetch_optional(pool)
            .await?
        });
        match row {
            Some(row) => Ok(Some(self.served(row).await?)),
            None => Ok(None),
        }
    }

    /// Trace headers then the blob (from the row, or from its file).
    async fn served(
        &self,
        (hash, mut served, data): (String, Vec<u8>, Option<Vec<u8>>),
    ) -> Result<bytes::Bytes> {
        let body = match data {
            Some(data) => data,
            None => self
                .inner
                .blobs
                .read_file(&hash)
                .await?
                .ok_or(StoreError::BlobMissing(hash))?,
        };
        served.extend_from_slice(&body);
        Ok(served.into())
    }

    /// Changes the flags of messages; each message whose flags really change
    /// gets the new MODSEQ. With `unchanged_since` (CONDSTORE), messages
    /// modified after it are left alone. Returns what changed.
    pub async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<ModSeq>,
    ) -> Result<Vec<FlagUpdate>> {
        Ok(self
            .store_flags_checked(mailbox, uids, op, flags, unchanged_since)
            .await?
            .0)
    }

    /// As [`Store::store_flags`], also returning the UIDs left alone because
    /// they were modified after `unchanged_since` (IMAP's `[MODIFIED …]`).
    pub async fn store_flags_checked(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<ModSeq>,
    ) -> Result<(Vec<FlagUpdate>, Vec<Uid>)> {
        let uids = sorted_uids(uids);
        let mut modified = Vec::new();
        let mut event = None;
        let updates = with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            // The new flags are computed from the old: the mailbox row is
            // locked before they are read, so two STOREs take turns and
            // neither loses the other's change.
            tx.lock_mailboxes(&[mailbox.0]).await?;
            let owner: Option<(i64,)> = sqlx::query_as("SELECT account_id FROM mailboxes WHERE id = $1")
                .bind(mailbox.0)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((account,)) = owner else {
                return Err(StoreError::MailboxIdNotFound(mailbox));
            };
            let mut changes = Vec::new();
            for chunk in uids.chunks(500) {
                let list = crate::id_list(chunk.iter().map(|u| u.0));
                let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT uid, modseq, flags, keywords FROM mailbox_messages WHERE mailbox_id = $1 AND uid IN ({list}) ORDER BY uid"
                )))
                .bind(mailbox.0)
                .fetch_all(&mut *tx)
                .await?;
                for (uid, modseq, system, keywords) in rows {
                    if unchanged_since.is_some_and(|since| (modseq as u64) > since.0) {
                        modified.push(Uid(uid as u32));
                        continue;
                    }
                    let old = Flags::from_columns(system, &keywords);
                    let new = old.apply(op, flags);
                    if new != old {
                        changes.push((Uid(uid as u32), new));
                    }
                }
            }
            let mut updates = Vec::with_capacity(changes.len());
            if !changes.is_empty() {
                let (modseq,): (i64,) = sqlx::query_as(
                    "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq",
                )
                .bind(mailbox.0)
                .fetch_one(&mut *tx)
                .await?;
                for (uid, new) in changes {
                    let (system, keywords) = new.to_columns();
                    sqlx::query("UPDATE mailbox_messages SET flags = $1, keywords = $2, modseq = $3 WHERE mailbox_id = $4 AND uid = $5")
                        .bind(system)
                        .bind(keywords)
                        .bind(modseq)
                        .bind(mailbox.0)
                        .bind(uid.0 as i64)
                        .execute(&mut *tx)
                        .await?;
                    updates.push(FlagUpdate { uid, modseq: ModSeq(modseq as u64), flags: new });
                }
                let e = ChangeEvent {
                    account: AccountId(account),
                    mailbox,
                    kind: ChangeKind::Flags,
                    modseq: ModSeq(modseq as u64),
                };
                tx.notify(&[e]).await?;
                event = Some(e);
            }
            tx.commit().await?;
            updates
        });
        if let Some(event) = event {
            self.inner.feed.publish_committed(&[event]);
        }
        Ok((updates, modified))
    }

    /// Records that a POP3 client downloaded these messages.
    pub async fn mark_downloaded(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<()> {
        let uids = sorted_uids(uids);
        with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            for chunk in uids.chunks(500) {
                let list = crate::id_list(chunk.iter().map(|u| u.0));
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE mailbox_messages SET downloaded = TRUE WHERE mailbox_id = $1 AND uid IN ({list})"
                )))
                .bind(mailbox.0)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes messages from a mailbox, remembering each (UID, MODSEQ) for
    /// QRESYNC. UIDs not present are ignored (so are UIDs another session
    /// expunged at the same moment). Returns the UIDs expunged. A message
    /// no other mailbox holds is deleted with it: [`Store::message_bytes`]
    /// then answers [`StoreError::MessageExpunged`].
    pub async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>> {
        let uids = sorted_uids(uids);
        let mut event = None;
        let expunged = with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            let (expunged, e) = expunge_in!(&mut tx, mailbox, &uids)?;
            if let Some(e) = e {
                tx.notify(&[e]).await?;
                event = Some(e);
            }
            tx.commit().await?;
            expunged
        });
        if let Some(event) = event {
            self.inner.feed.publish_committed(&[event]);
        }
        Ok(expunged)
    }

    /// Copies messages to another mailbox of the same account, with new UIDs
    /// there (RFC 4315 COPYUID). Flags are copied.
    pub async fn copy_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult> {
        self.copy_or_move(from, uids, to, false).await
    }

    /// Moves messages (RFC 6851): copy and expunge in one transaction.
    pub async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult> {
        self.copy_or_move(from, uids, to, true).await
    }

    async fn copy_or_move(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
        remove: bool,
    ) -> Result<CopyResult> {
        let uids = sorted_uids(uids);
        let mut events = Vec::new();
        let result = with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            tx.lock_mailboxes(&[from.0, to.0]).await?;
            let target: Option<(i64, i64)> = sqlx::query_as("SELECT account_id, uid_validity FROM mailboxes WHERE id = $1")
                .bind(to.0)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((account, uid_validity)) = target else {
                return Err(StoreError::MailboxIdNotFound(to));
            };
            // Mailboxes, then the account, then (the expunge of a move) the
            // message rows: the order every writer locks them in.
            tx.lock_accounts(&[account]).await?;
            let mut sources: Vec<(i64, i64, i64, String, i64, i64)> = Vec::new();
            for chunk in uids.chunks(500) {
                let list = crate::id_list(chunk.iter().map(|u| u.0));
                let rows: Vec<(i64, i64, i64, String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT mm.uid, mm.message_id, mm.flags, mm.keywords, mm.size, mm.internal_date FROM mailbox_messages mm \
                     WHERE mm.mailbox_id = $1 AND mm.uid IN ({list}) ORDER BY mm.uid"
                )))
                .bind(from.0)
                .fetch_all(&mut *tx)
                .await?;
                sources.extend(rows);
            }
            let mut mapping = Vec::with_capacity(sources.len());
            if !sources.is_empty() {
                if !remove {
                    let bytes: i64 = sources.iter().map(|s| s.4).sum();
                    charge_quota!(&mut tx, AccountId(account), bytes)?;
                }
                let count = sources.len() as i64;
                let (first_uid, modseq): (i64, i64) = sqlx::query_as(
                    "UPDATE mailboxes SET uid_next = uid_next + $1, highest_modseq = highest_modseq + 1 \
                     WHERE id = $2 RETURNING uid_next - $1, highest_modseq",
                )
                .bind(count)
                .bind(to.0)
                .fetch_one(&mut *tx)
                .await?;
                // SAVEDATE (RFC 8514): a copy or a moved message is saved now.
                let saved_at = crate::queue::unix_now();
                for (i, (uid, message_id, flags, keywords, size, internal_date)) in sources.iter().enumerate() {
                    let new_uid = first_uid + i as i64;
                    sqlx::query(
                        "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, flags, keywords, size, internal_date, saved_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(to.0)
                    .bind(new_uid)
                    .bind(message_id)
                    .bind(modseq)
                    .bind(flags)
                    .bind(keywords)
                    .bind(size)
                    .bind(internal_date)
                    .bind(saved_at)
                    .execute(&mut *tx)
                    .await?;
                    mapping.push((Uid(*uid as u32), Uid(new_uid as u32)));
                }
                events.push(ChangeEvent {
                    account: AccountId(account),
                    mailbox: to,
                    kind: ChangeKind::Appended,
                    modseq: ModSeq(modseq as u64),
                });
                if remove {
                    let moved: Vec<Uid> = mapping.iter().map(|(from_uid, _)| *from_uid).collect();
                    let (_, e) = expunge_in!(&mut tx, from, &moved)?;
                    events.extend(e);
                    // The expunge freed the bytes, but they only changed mailbox:
                    // usage stays what it was.
                    let bytes: i64 = sources.iter().map(|s| s.4).sum();
                    sqlx::query("UPDATE accounts SET used_bytes = used_bytes + $1 WHERE id = $2")
                        .bind(bytes)
                        .bind(account)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.notify(&events).await?;
            tx.commit().await?;
            CopyResult { uid_validity: UidValidity(uid_validity as u32), mapping }
        });
        self.inner.feed.publish_committed(&events);
        Ok(result)
    }

    /// What changed in a mailbox after `since`: messages added or with new
    /// flags, and UIDs expunged.
    pub async fn changes_since(&self, mailbox: MailboxId, since: ModSeq) -> Result<MailboxChanges> {
        let (rows, expunged, highest): (Vec<EntryRow>, Vec<(i64,)>, Option<(i64,)>) = with_pool!(self.db(), pool => {
            let mut conn = pool.acquire().await?;
            let highest: Option<(i64,)> = sqlx::query_as("SELECT highest_modseq FROM mailboxes WHERE id = $1")
                .bind(mailbox.0)
                .fetch_optional(&mut *conn)
                .await?;
            let rows: Vec<EntryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ENTRY_COLUMNS} FROM mailbox_messages mm \
                 WHERE mm.mailbox_id = $1 AND mm.modseq > $2 ORDER BY mm.uid"
            )))
            .bind(mailbox.0)
            .bind(since.0 as i64)
            .fetch_all(&mut *conn)
            .await?;
            let expunged: Vec<(i64,)> = sqlx::query_as(
                "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
            )
            .bind(mailbox.0)
            .bind(since.0 as i64)
            .fetch_all(&mut *conn)
            .await?;
            (rows, expunged, highest)
        });
        let Some((highest,)) = highest else {
            return Err(StoreError::MailboxIdNotFound(mailbox));
        };
        Ok(MailboxChanges {
            highest_modseq: ModSeq(highest as u64),
            changed: rows.into_iter().map(entry_from_row).collect(),
            expunged: expunged.into_iter().map(|(uid,)| Uid(uid as u32)).collect(),
        })
    }

    /// Expunged (UID, MODSEQ) pairs of a mailbox after `since`.
    pub async fn expunged_since(
        &self,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<Vec<(Uid, ModSeq)>> {
        let rows: Vec<(i64, i64)> = with_pool!(self.db(), pool => {
            sqlx::query_as("SELECT uid, modseq FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid")
                .bind(mailbox.0)
                .bind(since.0 as i64)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(uid, modseq)| (Uid(uid as u32), ModSeq(modseq as u64)))
            .collect())
    }
}
