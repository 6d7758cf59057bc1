//! The few places where SQLite and PostgreSQL need different statements.

use crate::error::Result;
use crate::feed::{ChangeEvent, PG_CHANNEL};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

pub(crate) trait WritePool {
    type Db: sqlx::Database;
    /// Begins a write transaction. On SQLite `BEGIN IMMEDIATE` takes the write
    /// lock up front, so a transaction never fails half-way on a lock upgrade.
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>>;
}

impl WritePool for SqlitePool {
    type Db = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl WritePool for PgPool {
    type Db = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.begin().await?)
    }
}

pub(crate) trait Notify {
    /// Queues change events to be published when the transaction commits.
    async fn notify(&mut self, events: &[ChangeEvent]) -> Result<()>;
}

impl Notify for Transaction<'static, Sqlite> {
    async fn notify(&mut self, _events: &[ChangeEvent]) -> Result<()> {
        // SQLite: published in-process after the commit (Feed::publish_committed).
        Ok(())
    }
}

impl Notify for Transaction<'static, Postgres> {
    async fn notify(&mut self, events: &[ChangeEvent]) -> Result<()> {
        for event in events {
            let payload = serde_json::to_string(event).unwrap_or_default();
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(PG_CHANNEL)
                .bind(payload)
                .execute(&mut **self)
                .await?;
        }
        Ok(())
    }
}

/// Row locks on PostgreSQL, always taken in one order — mailboxes, accounts,
/// messages, blobs, blob tombstones; each kind in ascending key order — so
/// concurrent writers cannot deadlock. SQLite has one writer: no-ops there.
pub(crate) trait LockMailboxes {
    /// Locks the mailbox rows in ascending id order before any other row.
    async fn lock_mailboxes(&mut self, ids: &[i64]) -> Result<()>;

    /// Locks account rows in ascending id order, after the mailboxes: a
    /// group of deliveries charges several accounts' quotas, and two groups
    /// charging the same accounts in different orders would deadlock.
    async fn lock_accounts(&mut self, ids: &[i64]) -> Result<()>;

    /// Locks message rows in ascending id order, after the mailboxes and
    /// accounts. Two transactions that each remove one of a message's last
    /// two mailbox rows then take turns, and the second sees the first's
    /// removal when it decides whether the message row goes too.
    async fn lock_messages(&mut self, ids: &[i64]) -> Result<()>;

    /// ` FOR UPDATE` for a `SELECT` whose rows the transaction decides on
    /// (PostgreSQL); empty on SQLite, whose write transactions are exclusive.
    fn for_update(&self) -> &'static str;
}

impl LockMailboxes for Transaction<'static, Sqlite> {
    async fn lock_mailboxes(&mut self, _ids: &[i64]) -> Result<()> {
        Ok(())
    }

    async fn lock_accounts(&mut self, _ids: &[i64]) -> Result<()> {
        Ok(())
    }

    async fn lock_messages(&mut self, _ids: &[i64]) -> Result<()> {
        Ok(())
    }

    fn for_update(&self) -> &'static str {
        ""
    }
}

impl LockMailboxes for Transaction<'static, Postgres> {
    async fn lock_mailboxes(&mut self, ids: &[i64]) -> Result<()> {
        lock_in_id_order(
            self,
            "SELECT id FROM mailboxes WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            ids,
        )
        .await
    }

    async fn lock_accounts(&mut self, ids: &[i64]) -> Result<()> {
        lock_in_id_order(
            self,
            "SELECT id FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            ids,
        )
        .await
    }

    async fn lock_messages(&mut self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        lock_in_id_order(
            self,
            "SELECT id FROM messages WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            ids,
        )
        .await
    }

    fn for_update(&self) -> &'static str {
        " FOR UPDATE"
    }
}

/// Runs a `… WHERE id = ANY($1) ORDER BY id FOR UPDATE`: PostgreSQL takes
/// the row locks in the order the rows come, ascending id.
async fn lock_in_id_order(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    ids: &[i64],
) -> Result<()> {
    sqlx::query(sql).bind(ids).execute(&mut **tx).await?;
    Ok(())
}
