//! Claims on the outbound queue: which worker may deliver a recipient, and
//! until when.
//!
//! A worker claims due recipients for a lease and writes its own token
//! ([`QueueHolder`]) into `claimed_by`; while it delivers it renews the
//! lease, and it records the outcome only where `claimed_by` is still its
//! token. A worker that stops (a crashed node) stops renewing: its lease
//! ends and the recipient is due again for any worker. A worker whose lease
//! ended and passed to another one can no longer renew it nor record over
//! the new holder's state. On PostgreSQL claims take `FOR UPDATE SKIP
//! LOCKED`, so nodes sharing the database never claim the same recipient at
//! once; on SQLite every write transaction is exclusive.
//!
//! Lease ends are whole Unix seconds of the node that writes them: nodes
//! sharing a database need clocks in step (NTP) to much less than a lease.

use crate::error::Result;
use crate::queue::{
    MESSAGE_COLUMNS, MessageRow, Outcome, QueueId, QueuedMessage, RECIPIENT_COLUMNS, RecipientRow,
    RecipientState, assemble, unix_now,
};
use crate::{Store, with_pool};
use std::time::Duration;

/// Who holds a claim: one token per delivery worker, made when it starts
/// (process id and 64 random bits), so no two workers — on one node or on
/// several sharing PostgreSQL — hold the same one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueHolder(String);

impl QueueHolder {
    pub fn new() -> QueueHolder {
        QueueHolder(format!(
            "{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for QueueHolder {
    fn default() -> QueueHolder {
        QueueHolder::new()
    }
}

impl std::fmt::Display for QueueHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A lease in the store's whole seconds, rounded up (at least one).
fn lease_secs(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis().div_ceil(1000))
        .unwrap_or(i64::MAX / 2)
        .max(1)
}

/// Due for a claim at `$1`: not final, its attempt time come, no live lease.
const DUE: &str = "state IN ('pending', 'deferred') AND next_attempt <= $1 AND locked_until <= $1";

impl Store {
    /// `FOR UPDATE SKIP LOCKED` on PostgreSQL (rows another claim is taking
    /// are passed over); nothing on SQLite, whose write transaction is exclusive.
    fn skip_locked(&self) -> &'static str {
        if self.backend_name() == "postgres" {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        }
    }

    /// Claims for `holder`, for `lease`, up to `limit` due recipients (oldest
    /// due first) and with them every other due recipient of the same
    /// messages — so all of a message's recipients at one destination can go
    /// in one transaction — and returns them grouped by message. The claim
    /// holds until the holder records an outcome, releases it, or stops
    /// renewing it ([`Store::queue_renew`]) and the lease ends.
    pub async fn queue_claim(
        &self,
        holder: &QueueHolder,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<QueuedMessage>> {
        let now = unix_now();
        let lease_until = now + lease_secs(lease);
        let lock = self.skip_locked();
        let (messages, mut recipients) = with_pool!(self.db_write(), pool => {
            let mut tx = crate::dialect::WritePool::begin_write(pool).await?;
            let seeds: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT message_id FROM queue_recipients WHERE {DUE} \
                 ORDER BY next_attempt, id LIMIT $2{lock}"
            )))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let mut message_ids: Vec<i64> = seeds.into_iter().map(|(m,)| m).collect();
            message_ids.sort_unstable();
            message_ids.dedup();
            if message_ids.is_empty() {
                tx.commit().await?;
                (Vec::new(), Vec::new())
            } else {
                let message_list = crate::id_list(message_ids.iter().copied());
                // The seeds again (this transaction holds them) and their due siblings.
                let rows: Vec<RecipientRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {RECIPIENT_COLUMNS} FROM queue_recipients \
                     WHERE message_id IN ({message_list}) AND {DUE} ORDER BY id{lock}"
                )))
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE queue_recipients SET locked_until = $1, claimed_by = $2 WHERE id IN ({})",
                    crate::id_list(rows.iter().map(|r| r.0))
                )))
                .bind(lease_until)
                .bind(holder.as_str())
                .execute(&mut *tx)
                .await?;
                let messages: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {MESSAGE_COLUMNS} FROM queue_messages WHERE id IN ({message_list}) ORDER BY id"
                )))
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                (messages, rows)
            }
        });
        for row in &mut recipients {
            row.10 = Some(holder.as_str().to_string());
            row.11 = lease_until;
        }
        Ok(assemble(messages, recipients))
    }

    /// Extends `holder`'s lease on the recipients `ids` to `lease` from now,
    /// and returns those it still holds. One missing was recorded, released,
    /// removed from the queue or — after the lease ended — claimed by
    /// another worker: its delivery should stop.
    pub async fn queue_renew(
        &self,
        holder: &QueueHolder,
        ids: &[i64],
        lease: Duration,
    ) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let lease_until = unix_now() + lease_secs(lease);
        let held: Vec<(i64,)> = with_pool!(self.db_write(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE queue_recipients SET locked_until = $1 \
                 WHERE claimed_by = $2 AND id IN ({}) RETURNING id",
                crate::id_list(ids.iter().copied())
            )))
            .bind(lease_until)
            .bind(holder.as_str())
            .fetch_all(pool)
            .await?
        });
        Ok(held.into_iter().map(|(id,)| id).collect())
    }

    /// Records attempt outcomes and ends `holder`'s claims on them. An
    /// outcome for a recipient `holder` no longer holds (its lease passed to
    /// another worker, or the message left the queue) is not recorded: the
    /// new holder's state stands. Returns the ids not recorded.
    pub async fn queue_record(
        &self,
        holder: &QueueHolder,
        outcomes: &[(i64, Outcome)],
    ) -> Result<Vec<i64>> {
        let mut lost = Vec::new();
        with_pool!(self.db_write(), pool => {
            let mut tx = crate::dialect::WritePool::begin_write(pool).await?;
            for (id, outcome) in outcomes {
                let (state, next, error) = match outcome {
                    Outcome::Delivered { reply } => (RecipientState::Delivered, 0, reply.clone()),
                    Outcome::Deferred { next_attempt, error } => (RecipientState::Deferred, *next_attempt, error.clone()),
                    Outcome::Failed { error } => (RecipientState::Failed, 0, error.clone()),
                };
                let recorded = sqlx::query(
                    "UPDATE queue_recipients SET state = $1, next_attempt = $2, last_error = $3, \
                     attempts = attempts + 1, locked_until = 0, claimed_by = NULL \
                     WHERE id = $4 AND claimed_by = $5",
                )
                .bind(state.as_str())
                .bind(next)
                .bind(error)
                .bind(id)
                .bind(holder.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if recorded == 0 {
                    lost.push(*id);
                }
            }
            tx.commit().await?;
        });
        Ok(lost)
    }

    /// Gives back `holder`'s claims on `ids` without an attempt (a worker
    /// stopping): they are due again at once, for any worker.
    pub async fn queue_release(&self, holder: &QueueHolder, ids: &[i64]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let released = with_pool!(self.db_write(), pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE queue_recipients SET locked_until = 0, claimed_by = NULL \
                 WHERE claimed_by = $1 AND id IN ({})",
                crate::id_list(ids.iter().copied())
            )))
            .bind(holder.as_str())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(released)
    }

    /// Takes the finishing of a message (reporting failures to its sender,
    /// then removing it) for `holder`: returns the message when every one
    /// of its recipients is final and no other worker is finishing it, and
    /// claims its recipients for `lease` so no other worker does. Several
    /// workers that record a message's last outcomes at once thus send one
    /// report; if the holder stops before removing the message, the lease
    /// ends and [`Store::queue_unfinished`] lists it again.
    pub async fn queue_take_finished(
        &self,
        holder: &QueueHolder,
        id: QueueId,
        lease: Duration,
    ) -> Result<Option<QueuedMessage>> {
        let now = unix_now();
        let lease_until = now + lease_secs(lease);
        // PostgreSQL: finishers of one message wait for each other here.
        let lock = if self.backend_name() == "postgres" {
            " FOR UPDATE"
        } else {
            ""
        };
        let taken = with_pool!(self.db_write(), pool => {
            let mut tx = crate::dialect::WritePool::begin_write(pool).await?;
            let messages: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM queue_messages WHERE id = $1{lock}"
            )))
            .bind(id.0)
            .fetch_all(&mut *tx)
            .await?;
            let recipients: Vec<RecipientRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {RECIPIENT_COLUMNS} FROM queue_recipients WHERE message_id = $1 ORDER BY id"
            )))
            .bind(id.0)
            .fetch_all(&mut *tx)
            .await?;
            let finished = !messages.is_empty()
                && recipients.iter().all(|r| {
                    matches!(r.4.as_str(), "delivered" | "failed") && r.11 <= now
                });
            if finished {
                sqlx::query(
                    "UPDATE queue_recipients SET locked_until = $1, claimed_by = $2 WHERE message_id = $3",
                )
                .bind(lease_until)
                .bind(holder.as_str())
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            finished.then_some((messages, recipients))
        });
        Ok(taken.and_then(|(messages, recipients)| assemble(messages, recipients).pop()))
    }

    /// Messages whose recipients are all final and that no worker is
    /// finishing: left by a worker that stopped between recording the last
    /// outcome and removing the message. Oldest first, at most `limit`.
    pub async fn queue_unfinished(&self, limit: i64) -> Result<Vec<QueueId>> {
        let rows: Vec<(i64,)> = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT message_id FROM queue_recipients GROUP BY message_id \
                 HAVING SUM(CASE WHEN state IN ('delivered', 'failed') THEN 0 ELSE 1 END) = 0 \
                 AND MAX(locked_until) <= $1 ORDER BY message_id LIMIT $2",
            )
            .bind(unix_now())
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(id,)| QueueId(id)).collect())
    }
}
