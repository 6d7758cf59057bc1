//! The outbound queue: messages for remote recipients, each recipient with
//! its own state. Writers put a message in the queue in the same transaction
//! that stores local copies (`Store::deliver_and_queue`); delivery workers
//! claim due recipients with a lease, renew it while they deliver, and record
//! each outcome (`queue_claims.rs`).

use crate::error::Result;
use crate::{Store, with_pool};
use bytes::Bytes;
use std::collections::BTreeMap;

pub use crate::queue_claims::QueueHolder;

/// A queued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(pub i64);

impl std::fmt::Display for QueueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One remote recipient to queue, with its DSN parameters (RFC 3461).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundRecipient {
    pub address: String,
    /// `NEVER`, or a comma list of SUCCESS, FAILURE, DELAY; `None` = default.
    pub notify: Option<String>,
    pub orcpt: Option<String>,
}

/// A message to queue for remote delivery.
#[derive(Debug, Clone, Default)]
pub struct OutboundMessage {
    /// Envelope sender; empty for the null sender (bounces).
    pub sender: String,
    /// The message as it will be sent (trace headers included).
    pub data: Bytes,
    pub envid: Option<String>,
    /// RET=FULL (true) or HDRS (false): what a failure report carries.
    pub ret_full: bool,
    pub recipients: Vec<OutboundRecipient>,
}

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientState {
    Pending,
    Deferred,
    Delivered,
    Failed,
}

impl RecipientState {
    /// The spelling in the store and in `pillarbox queue list`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Pending => "pending",
            RecipientState::Deferred => "deferred",
            RecipientState::Delivered => "delivered",
            RecipientState::Failed => "failed",
        }
    }

    fn from_column(value: &str) -> RecipientState {
        match value {
            "deferred" => RecipientState::Deferred,
            "delivered" => RecipientState::Delivered,
            "failed" => RecipientState::Failed,
            _ => RecipientState::Pending,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, RecipientState::Delivered | RecipientState::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    pub id: i64,
    pub address: String,
    pub domain: String,
    pub state: RecipientState,
    pub attempts: u32,
    /// Unix seconds.
    pub next_attempt: i64,
    pub last_error: Option<String>,
    pub notify: Option<String>,
    pub orcpt: Option<String>,
    /// The worker holding the claim ([`QueueHolder`]), while one does.
    pub claimed_by: Option<String>,
    /// Unix seconds: the end of the claim's lease (0: never claimed or released).
    pub lease_until: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: QueueId,
    pub sender: String,
    pub size: u64,
    pub envid: Option<String>,
    pub ret_full: bool,
    /// Unix seconds.
    pub created_at: i64,
    pub recipients: Vec<QueuedRecipient>,
}

/// What one delivery attempt to one recipient came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered { reply: String },
    Deferred { next_attempt: i64, error: String },
    Failed { error: String },
}

pub(crate) type MessageRow = (i64, String, i64, Option<String>, i64, i64);
pub(crate) type RecipientRow = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

pub(crate) const MESSAGE_COLUMNS: &str = "id, sender, size, envid, ret_full, created_at";
pub(crate) const RECIPIENT_COLUMNS: &str = "id, message_id, address, domain, state, attempts, \
     next_attempt, last_error, notify, orcpt, claimed_by, locked_until";

fn recipient_from_row(row: RecipientRow) -> (i64, QueuedRecipient) {
    let (
        id,
        message,
        address,
        domain,
        state,
        attempts,
        next_attempt,
        last_error,
        notify,
        orcpt,
        claimed_by,
        lease_until,
    ) = row;
    (
        message,
        QueuedRecipient {
            id,
            address,
            domain,
            state: RecipientState::from_column(&state),
            attempts: attempts as u32,
            next_attempt,
            last_error,
            notify,
            orcpt,
            claimed_by,
            lease_until,
        },
    )
}

pub(crate) fn assemble(
    messages: Vec<MessageRow>,
    recipients: Vec<RecipientRow>,
) -> Vec<QueuedMessage> {
    let mut by_message: BTreeMap<i64, Vec<QueuedRecipient>> = BTreeMap::new();
    for row in recipients {
        let (message, recipient) = recipient_from_row(row);
        by_message.entry(message).or_default().push(recipient);
    }
    messages
        .into_iter()
        .map(
            |(id, sender, size, envid, ret_full, created_at)| QueuedMessage {
                id: QueueId(id),
                sender,
                size: size as u64,
                envid,
                ret_full: ret_full != 0,
                created_at,
                recipients: by_message.remove(&id).unwrap_or_default(),
            },
        )
        .collect()
}

impl Store {
    /// Resolves when a message was queued in this process (or after a while:
    /// other nodes queue too, so workers also poll).
    pub async fn queue_wait(&self, max: std::time::Duration) {
        let _ = tokio::time::timeout(max, self.queue_wakeup()).await;
    }

    /// Resolves when a message is queued in this process after this call.
    /// A worker takes it *before* it claims, so a message queued while it
    /// claims (and found nothing) still wakes it.
    pub fn queue_wakeup(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.queue_wakeup.notified()
    }

    /// The bytes of a queued message.
    pub async fn queue_data(&self, id: QueueId) -> Result<Option<Bytes>> {
        let row: Option<(Vec<u8>,)> = with_pool!(self.db(), pool => {
            sqlx::query_as("SELECT data FROM queue_messages WHERE id = $1")
                .bind(id.0)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(data,)| Bytes::from(data)))
    }

    /// Every queued message with its recipients, oldest first.
    pub async fn queue_list(&self) -> Result<Vec<QueuedMessage>> {
        let (messages, recipients) = with_pool!(self.db(), pool => {
            let messages: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM queue_messages ORDER BY id"
            )))
            .fetch_all(pool)
            .await?;
            let recipients: Vec<RecipientRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {RECIPIENT_COLUMNS} FROM queue_recipients ORDER BY id"
            )))
            .fetch_all(pool)
            .await?;
            (messages, recipients)
        });
        Ok(assemble(messages, recipients))
    }

    pub async fn queue_get(&self, id: QueueId) -> Result<Option<QueuedMessage>> {
        let (messages, recipients) = with_pool!(self.db(), pool => {
            let messages: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM queue_messages WHERE id = $1"
            )))
            .bind(id.0)
            .fetch_all(pool)
            .await?;
            let recipients: Vec<RecipientRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {RECIPIENT_COLUMNS} FROM queue_recipients WHERE message_id = $1 ORDER BY id"
            )))
            .bind(id.0)
            .fetch_all(pool)
            .await?;
            (messages, recipients)
        });
        Ok(assemble(messages, recipients).pop())
    }

    /// Makes every undelivered recipient of a message due now (deferred and
    /// failed ones too). Returns how many. A recipient being delivered right
    /// now keeps its claim: that attempt's outcome stands, and a second
    /// worker does not send it at the same time.
    pub async fn queue_retry(&self, id: QueueId) -> Result<u64> {
        let done = with_pool!(self.db_write(), pool => {
            sqlx::query(
                "UPDATE queue_recipients SET state = 'pending', next_attempt = $1 \
                 WHERE message_id = $2 AND state <> 'delivered'",
            )
            .bind(unix_now())
            .bind(id.0)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if done > 0 {
            self.inner.queue_wakeup.notify_waiters();
        }
        Ok(done)
    }

    /// Removes a message and its recipients from the queue. A worker
    /// delivering it finds its lease gone at the next renewal and stops.
    pub async fn queue_remove(&self, id: QueueId) -> Result<bool> {
        let removed = with_pool!(self.db_write(), pool => {
            let mut tx = crate::dialect::WritePool::begin_write(pool).await?;
            sqlx::query("DELETE FROM queue_recipients WHERE message_id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query("DELETE FROM queue_messages WHERE id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(removed > 0)
    }

    /// Queues a message (a bounce, say) with no local copy.
    pub async fn queue(&self, outbound: &OutboundMessage) -> Result<QueueId> {
        let id = with_pool!(self.db_write(), pool => {
            let mut tx = crate::dialect::WritePool::begin_write(pool).await?;
            let id = queue_in!(&mut tx, outbound)?;
            tx.commit().await?;
            id
        });
        self.inner.queue_wakeup.notify_waiters();
        Ok(id)
    }
}
