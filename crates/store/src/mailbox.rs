//! Mailboxes: create, rename (children follow), delete, list, subscribe.

use crate::dialect::{LockMailboxes, Notify, WritePool};
use crate::error::{Result, StoreError};
use crate::feed::{ChangeEvent, ChangeKind};
use crate::types::*;
use crate::{Store, with_pool};

const MAX_NAME_LEN: usize = 1000;

/// Checks a mailbox name and returns its canonical form (`INBOX` in upper case,
/// also as the first component of a child of the inbox).
pub fn normalize_name(name: &str) -> Result<String> {
    let invalid = |reason| StoreError::InvalidMailboxName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("the name is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("the name is longer than 1000 octets"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(invalid("the name contains control characters"));
    }
    if name.split(DELIMITER).any(str::is_empty) {
        return Err(invalid(
            "the name has an empty level (leading, trailing or double '/')",
        ));
    }
    if name.contains(['*', '%']) {
        return Err(invalid("'*' and '%' are wildcards, not name characters"));
    }
    let (first, rest) = match name.split_once(DELIMITER) {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let first = if first.eq_ignore_ascii_case(INBOX) {
        INBOX
    } else {
        first
    };
    Ok(match rest {
        Some(rest) => format!("{first}{DELIMITER}{rest}"),
        None => first.to_string(),
    })
}

pub(crate) type MailboxRow = (i64, i64, String, Option<String>, i64, i64, i64);

pub(crate) const MAILBOX_COLUMNS: &str =
    "id, account_id, name, special_use, uid_validity, uid_next, highest_modseq";

pub(crate) fn mailbox_from_row(row: MailboxRow) -> Mailbox {
    let (id, account, name, special_use, uid_validity, uid_next, highest_modseq) = row;
    Mailbox {
        id: MailboxId(id),
        account: AccountId(account),
        name,
        special_use: special_use.as_deref().and_then(SpecialUse::from_column),
        uid_validity: UidValidity(uid_validity as u32),
        uid_next: Uid(uid_next as u32),
        highest_modseq: ModSeq(highest_modseq as u64),
    }
}

/// The next UIDVALIDITY: the current time, and always above every value handed
/// out before (kept in `counters`), so a mailbox deleted and made again never
/// reuses a (UIDVALIDITY, UID) pair. Evaluates to `i64` inside the transaction.
macro_rules! next_uid_validity {
    ($tx:expr) => {{
        let tx = &mut *$tx;
        let last: Option<(i64,)> =
            sqlx::query_as("SELECT value FROM counters WHERE name = 'uid_validity'")
                .fetch_optional(&mut **tx)
                .await?;
        let next = crate::queue::unix_now().max(last.map(|(v,)| v).unwrap_or(0) + 1) & 0xFFFF_FFFF;
        sqlx::query(
            "INSERT INTO counters (name, value) VALUES ('uid_validity', $1) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(next)
        .execute(&mut **tx)
        .await?;
        next
    }};
}

/// Refuses, inside the transaction that made new mailboxes, an account
/// that now has more than `$max` (the transaction then rolls back).
macro_rules! check_mailbox_count {
    ($tx:expr, $account:expr, $max:expr) => {{
        let tx = &mut *$tx;
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM mailboxes WHERE account_id = $1")
                .bind($account.0)
                .fetch_one(&mut **tx)
                .await?;
        if count > i64::from($max) {
            return Err(StoreError::MailboxLimit {
                what: "too many mailboxes in this account",
                limit: $max,
            });
        }
    }};
}

impl Store {
    /// Refuses a name with more levels than the store allows.
    fn check_depth(&self, name: &str) -> Result<()> {
        let limit = self.inner.max_mailbox_depth;
        if name.split(DELIMITER).count() > limit as usize {
            return Err(StoreError::MailboxLimit {
                what: "too many levels in the mailbox name",
                limit,
            });
        }
        Ok(())
    }

    /// Creates a mailbox, and any missing parents (RFC 9051 §6.3.4), returning
    /// the new mailbox. Fails with `MailboxExists` when it exists already.
    pub async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        let name = normalize_name(name)?;
        self.check_depth(&name)?;
        let max_mailboxes = self.inner.max_mailboxes;
        let mut created = Vec::new();
        let mailbox = with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<(i64,)> = sqlx::query_as(
                "SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2",
            )
            .bind(account.0)
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?;
            if exists.is_some() {
                return Err(StoreError::MailboxExists(name));
            }
            let levels: Vec<&str> = name.split(DELIMITER).collect();
            let mut last = None;
            for depth in 1..=levels.len() {
                let path = levels[..depth].join(&DELIMITER.to_string());
                let is_target = depth == levels.len();
                let found: Option<MailboxRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 AND name = $2"
                )))
                .bind(account.0)
                .bind(&path)
                .fetch_optional(&mut *tx)
                .await?;
                if found.is_some() && !is_target {
                    continue;
                }
                let row: MailboxRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO mailboxes (account_id, name, special_use, uid_validity) \
                     VALUES ($1, $2, $3, $4) RETURNING {MAILBOX_COLUMNS}"
                )))
                .bind(account.0)
                .bind(&path)
                .bind(if is_target { special_use.map(SpecialUse::as_column) } else { None })
                .bind(next_uid_validity!(&mut tx))
                .fetch_one(&mut *tx)
                .await?;
                let mailbox = mailbox_from_row(row);
                created.push(ChangeEvent {
                    account,
                    mailbox: mailbox.id,
                    kind: ChangeKind::Mailbox,
                    modseq: mailbox.highest_modseq,
                });
                last = Some(mailbox);
            }
            // Counted after the inserts, in the same transaction: the
            // parents CREATE makes on the way count too.
            check_mailbox_count!(&mut tx, account, max_mailboxes);
            tx.notify(&created).await?;
            tx.commit().await?;
            last
        });
        self.inner.feed.publish_committed(&created);
        mailbox.ok_or(StoreError::MailboxExists(name))
    }

    /// Looks a mailbox up by name (the inbox case-insensitively).
    pub async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        let Ok(name) = normalize_name(name) else {
            return Ok(None);
        };
        let row: Option<MailboxRow> = with_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 AND name = $2"
            )))
            .bind(account.0)
            .bind(&name)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(mailbox_from_row))
    }

    /// Like [`Store::mailbox`], but a missing mailbox is an error naming it.
    pub async fn require_mailbox(&self, account: AccountId, name: &str) -> Result<Mailbox> {
        self.mailbox(account, name)
            .await?
            .ok_or_else(|| StoreError::MailboxNotFound(name.to_string()))
    }

    /// Looks a mailbox up by id.
    pub async fn mailbox_by_id(&self, id: MailboxId) -> Result<Mailbox> {
        let row: Option<MailboxRow> = with_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = $1"
            )))
            .bind(id.0)
            .fetch_optional(pool)
            .await?
        });
        row.map(mailbox_from_row)
            .ok_or(StoreError::MailboxIdNotFound(id))
    }

    /// The account's mailbox with a special-use attribute, if any.
    pub async fn special_mailbox(
        &self,
        account: AccountId,
        special_use: SpecialUse,
    ) -> Result<Option<Mailbox>> {
        let row: Option<MailboxRow> = with_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 AND special_use = $2 \
                 ORDER BY id LIMIT 1"
            )))
            .bind(account.0)
            .bind(special_use.as_column())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(mailbox_from_row))
    }

    /// Every mailbox of the account, sorted by name.
    pub async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        let rows: Vec<MailboxRow> = with_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 ORDER BY name"
            )))
            .bind(account.0)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(mailbox_from_row).collect())
    }

    /// Renames a mailbox; its children follow. UIDs and UIDVALIDITY are kept.
    ///
    /// Renaming `INBOX` moves all its messages to a new mailbox with the new
    /// name and leaves the inbox empty (RFC 9051 §6.3.6).
    pub async fn rename_mailbox(
        &self,
        account: AccountId,
        from: &str,
        to: &str,
    ) -> Result<Mailbox> {
        let from = normalize_name(from)?;
        let to = normalize_name(to)?;
        if from == INBOX {
            let inbox = self.require_mailbox(account, INBOX).await?;
            if self.mailbox(account, &to).await?.is_some() {
                return Err(StoreError::MailboxExists(to));
            }
            let target = self.create_mailbox(account, &to, None).await?;
            let uids: Vec<Uid> = self
                .messages(inbox.id, UidRange::all())
                .await?
                .into_iter()
                .map(|m| m.uid)
                .collect();
            if !uids.is_empty() {
                self.move_messages(inbox.id, &uids, target.id).await?;
            }
            return self.mailbox_by_id(target.id).await;
        }
        if to == from {
            return Err(StoreError::MailboxExists(to));
        }
        if to.starts_with(&format!("{from}{DELIMITER}")) {
            return Err(StoreError::InvalidMailboxName {
                name: to,
                reason: "a mailbox cannot be moved inside itself",
            });
        }
        if to == INBOX {
            return Err(StoreError::MailboxExists(to));
        }
        self.check_depth(&to)?;
        let max_depth = self.inner.max_mailbox_depth as usize;
        let max_mailboxes = self.inner.max_mailboxes;
        let mut events = Vec::new();
        with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            let source: Option<MailboxRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 AND name = $2"
            )))
            .bind(account.0)
            .bind(&from)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(source) = source.map(mailbox_from_row) else {
                return Err(StoreError::MailboxNotFound(from));
            };
            let taken: Option<(i64,)> = sqlx::query_as(
                "SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2",
            )
            .bind(account.0)
            .bind(&to)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Err(StoreError::MailboxExists(to));
            }
            // substr counts characters on both backends, not bytes.
            let family: Vec<(i64, String, i64)> = sqlx::query_as(
                "SELECT id, name, highest_modseq FROM mailboxes WHERE account_id = $1 AND (name = $2 OR substr(name, 1, CAST($3 AS INTEGER)) = $4)",
            )
            .bind(account.0)
            .bind(&from)
            .bind((from.chars().count() + 1) as i64)
            .bind(format!("{from}{DELIMITER}"))
            .fetch_all(&mut *tx)
            .await?;
            for (id, name, modseq) in family {
                let renamed = format!("{to}{}", &name[from.len()..]);
                if renamed.split(DELIMITER).count() > max_depth {
                    return Err(StoreError::MailboxLimit {
                        what: "too many levels in the new name of a child mailbox",
                        limit: max_depth as u32,
                    });
                }
                sqlx::query("UPDATE mailboxes SET name = $1 WHERE id = $2")
                    .bind(&renamed)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                events.push(ChangeEvent {
                    account,
                    mailbox: MailboxId(id),
                    kind: ChangeKind::Mailbox,
                    modseq: ModSeq(modseq as u64),
                });
            }
            // Subscriptions follow the mailboxes they named, as in other
            // servers: a renamed folder stays in a client's folder list.
            let subscribed: Vec<(String,)> = sqlx::query_as(
                "SELECT name FROM subscriptions WHERE account_id = $1 AND (name = $2 OR substr(name, 1, CAST($3 AS INTEGER)) = $4)",
            )
            .bind(account.0)
            .bind(&from)
            .bind((from.chars().count() + 1) as i64)
            .bind(format!("{from}{DELIMITER}"))
            .fetch_all(&mut *tx)
            .await?;
            for (name,) in subscribed {
                let renamed = format!("{to}{}", &name[from.len()..]);
                sqlx::query("DELETE FROM subscriptions WHERE account_id = $1 AND name = $2")
                    .bind(account.0)
                    .bind(&name)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) \
                     ON CONFLICT (account_id, name) DO NOTHING",
                )
                .bind(account.0)
                .bind(&renamed)
                .execute(&mut *tx)
                .await?;
            }
            // Missing parents of the new name appear, as CREATE would make them.
            let levels: Vec<&str> = to.split(DELIMITER).collect();
            for depth in 1..levels.len() {
                let parent = levels[..depth].join(&DELIMITER.to_string());
                let uid_validity = next_uid_validity!(&mut tx);
                sqlx::query(
                    "INSERT INTO mailboxes (account_id, name, uid_validity) VALUES ($1, $2, $3) \
                     ON CONFLICT (account_id, name) DO NOTHING",
                )
                .bind(account.0)
                .bind(&parent)
                .bind(uid_validity)
                .execute(&mut *tx)
                .await?;
            }
            check_mailbox_count!(&mut tx, account, max_mailboxes);
            tx.notify(&events).await?;
            tx.commit().await?;
            let _ = source;
        });
        self.inner.feed.publish_committed(&events);
        self.require_mailbox(account, &to).await
    }

    /// Deletes a mailbox and the messages in it. Its children stay.
    ///
    /// One transaction that locks the mailbox first: a delivery to it either
    /// commits before (and its message goes, un-charged, with the rest) or
    /// finds the mailbox gone.
    pub async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()> {
        let name = normalize_name(name)?;
        if name == INBOX {
            return Err(StoreError::CannotDeleteInbox);
        }
        let mut events = Vec::new();
        with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            let found: Option<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT id, highest_modseq FROM mailboxes WHERE account_id = $1 AND name = $2{}",
                tx.for_update()
            )))
            .bind(account.0)
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id, modseq)) = found else {
                return Err(StoreError::MailboxNotFound(name));
            };
            drop_mailboxes_in!(&mut tx, account, &[id])?;
            events.push(ChangeEvent {
                account,
                mailbox: MailboxId(id),
                kind: ChangeKind::Mailbox,
                modseq: ModSeq(modseq as u64),
            });
            tx.notify(&events).await?;
            tx.commit().await?;
        });
        self.inner.feed.publish_committed(&events);
        Ok(())
    }

    /// Deletes an account with all its mail: its mailboxes, their messages
    /// and expunge history, its usage, and the account row itself (its
    /// aliases, locks and import state go with it by the schema's `ON
    /// DELETE CASCADE`), in one transaction that locks every mailbox of the
    /// account first. Deleting an account that does not exist does nothing.
    pub async fn delete_account(&self, account: AccountId) -> Result<()> {
        let mut events = Vec::new();
        with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            let mailboxes: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT id, highest_modseq FROM mailboxes WHERE account_id = $1 ORDER BY id{}",
                tx.for_update()
            )))
            .bind(account.0)
            .fetch_all(&mut *tx)
            .await?;
            let ids: Vec<i64> = mailboxes.iter().map(|(id, _)| *id).collect();
            drop_mailboxes_in!(&mut tx, account, &ids)?;
            sqlx::query("DELETE FROM accounts WHERE id = $1")
                .bind(account.0)
                .execute(&mut *tx)
                .await?;
            events.extend(mailboxes.iter().map(|(id, modseq)| ChangeEvent {
                account,
                mailbox: MailboxId(*id),
                kind: ChangeKind::Mailbox,
                modseq: ModSeq(*modseq as u64),
            }));
            tx.notify(&events).await?;
            tx.commit().await?;
        });
        self.inner.feed.publish_committed(&events);
        Ok(())
    }

    /// Adds a name to the account's subscriptions, or removes it. A name is
    /// subscribed whether or not a mailbox has it (RFC 9051 §6.3.7), and
    /// subscribing twice or unsubscribing a name not subscribed succeeds.
    pub async fn set_subscribed(
        &self,
        account: AccountId,
        name: &str,
        subscribed: bool,
    ) -> Result<()> {
        let name = normalize_name(name)?;
        let limit = self.inner.max_mailboxes;
        with_pool!(self.db_write(), pool => {
            if !subscribed {
                sqlx::query("DELETE FROM subscriptions WHERE account_id = $1 AND name = $2")
                    .bind(account.0)
                    .bind(&name)
                    .execute(pool)
                    .await?;
                return Ok(());
            }
            // At most as many subscriptions as mailboxes: the list is held
            // whole by LIST and LSUB.
            let added = sqlx::query(
                "INSERT INTO subscriptions (account_id, name) SELECT $1, $2 \
                 WHERE (SELECT COUNT(*) FROM subscriptions WHERE account_id = $1) < $3 \
                 ON CONFLICT (account_id, name) DO NOTHING",
            )
            .bind(account.0)
            .bind(&name)
            .bind(i64::from(limit))
            .execute(pool)
            .await?
            .rows_affected();
            if added == 0 {
                let present: Option<(String,)> = sqlx::query_as(
                    "SELECT name FROM subscriptions WHERE account_id = $1 AND name = $2",
                )
                .bind(account.0)
                .bind(&name)
                .fetch_optional(pool)
                .await?;
                if present.is_none() {
                    return Err(StoreError::MailboxLimit {
                        what: "too many subscriptions in this account",
                        limit,
                    });
                }
            }
        });
        Ok(())
    }

    /// The account's subscribed names, sorted; some may name no mailbox.
    pub async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = with_pool!(self.db(), pool => {
            sqlx::query_as("SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name")
                .bind(account.0)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }

    /// Sets or clears the special-use attribute of a mailbox.
    pub async fn set_special_use(
        &self,
        mailbox: MailboxId,
        special_use: Option<SpecialUse>,
    ) -> Result<()> {
        with_pool!(self.db_write(), pool => {
            sqlx::query("UPDATE mailboxes SET special_use = $1 WHERE id = $2")
                .bind(special_use.map(SpecialUse::as_column))
                .bind(mailbox.0)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Message count, unseen count and total size of a mailbox.
    pub async fn mailbox_counts(&self, mailbox: MailboxId) -> Result<MailboxCounts> {
        let (messages, unseen, size): (i64, i64, i64) = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT CAST(COUNT(*) AS BIGINT), \
                        CAST(COALESCE(SUM(CASE WHEN (mm.flags & 1) = 0 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                        CAST(COALESCE(SUM(m.size), 0) AS BIGINT) \
                 FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
                 WHERE mm.mailbox_id = $1",
            )
            .bind(mailbox.0)
            .fetch_one(pool)
            .await?
        });
        Ok(MailboxCounts {
            messages: messages as u32,
            unseen: unseen as u32,
            size: size as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_name;

    #[test]
    fn inbox_is_case_insensitive_and_children_follow() {
        assert_eq!(normalize_name("inbox").unwrap(), "INBOX");
        assert_eq!(normalize_name("Inbox/Sub").unwrap(), "INBOX/Sub");
        assert_eq!(normalize_name("Inboxes").unwrap(), "Inboxes");
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "/a", "a/", "a//b", "a*", "a%b", "a\u{7}"] {
            assert!(normalize_name(bad).is_err(), "{bad:?}");
        }
    }
}
