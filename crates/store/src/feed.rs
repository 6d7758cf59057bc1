//! The change feed: after each commit the store publishes what changed, so
//! IMAP IDLE (and anything else that waits) learns of it at once.
//!
//! In one process a broadcast channel carries the events. On PostgreSQL the
//! store publishes with `pg_notify` inside the writing transaction (delivered
//! only on commit), and every store — in this process or another node —
//! forwards what it hears on `LISTEN` into its own broadcast channel; so there
//! is one path, and no event reaches a subscriber before its commit.

use crate::types::{AccountId, MailboxId, ModSeq};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::sync::broadcast;

/// The PostgreSQL NOTIFY channel the store uses.
pub const PG_CHANNEL: &str = "pillarbox_changes";

/// Capacity of the in-process channel; a subscriber that lags this far behind
/// receives `RecvError::Lagged` and should resynchronise from the store.
const CAPACITY: usize = 4096;

/// What kind of change a commit made to a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// New messages were added (delivery, APPEND, COPY, MOVE target).
    Appended,
    /// Flags of existing messages changed.
    Flags,
    /// Messages were expunged (EXPUNGE, POP3 DELE+QUIT, MOVE source).
    Expunged,
    /// The mailbox was created, renamed, deleted or its subscription changed.
    Mailbox,
}

/// One committed change. Subscribers re-read the mailbox (e.g.
/// [`crate::Store::changes_since`]) to learn the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub account: AccountId,
    pub mailbox: MailboxId,
    pub kind: ChangeKind,
    /// The mailbox's HIGHESTMODSEQ after the change.
    pub modseq: ModSeq,
}

pub(crate) struct Feed {
    sender: Arc<broadcast::Sender<ChangeEvent>>,
    /// On PostgreSQL, the task forwarding NOTIFY into `sender`.
    listener: Option<tokio::task::JoinHandle<()>>,
    pub(crate) notify_via_database: bool,
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(task) = self.listener.take() {
            task.abort();
        }
    }
}

fn sqlite_feeds() -> &'static Mutex<HashMap<String, Weak<broadcast::Sender<ChangeEvent>>>> {
    static FEEDS: OnceLock<Mutex<HashMap<String, Weak<broadcast::Sender<ChangeEvent>>>>> =
        OnceLock::new();
    FEEDS.get_or_init(Default::default)
}

impl Feed {
    /// Stores opened on the same SQLite file in one process share one channel.
    pub(crate) fn for_sqlite(url: &str) -> Feed {
        let key = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:")
            .split('?')
            .next()
            .unwrap_or_default();
        let key = std::fs::canonicalize(key)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| key.to_string());
        let mut feeds = sqlite_feeds().lock().unwrap_or_else(|e| e.into_inner());
        feeds.retain(|_, weak| weak.strong_count() > 0);
        let sender = match feeds.get(&key).and_then(Weak::upgrade) {
            Some(sender) => sender,
            None => {
                let sender = Arc::new(broadcast::channel(CAPACITY).0);
                feeds.insert(key, Arc::downgrade(&sender));
                sender
            }
        };
        Feed {
            sender,
            listener: None,
            notify_via_database: false,
        }
    }

    pub(crate) async fn for_postgres(pool: &PgPool) -> Result<Feed, sqlx::Error> {
        let sender = Arc::new(broadcast::channel(CAPACITY).0);
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(PG_CHANNEL).await?;
        let forward = Arc::clone(&sender);
        let task = tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(notification) => {
                        match serde_json::from_str::<ChangeEvent>(notification.payload()) {
                            Ok(event) => {
                                let _ = forward.send(event);
                            }
                            Err(error) => {
                                tracing::warn!(%error, "ignoring malformed change notification")
                            }
                        }
                    }
                    Err(error) => {
                        // PgListener reconnects by itself on the next recv.
                        tracing::warn!(%error, "change feed connection lost; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Ok(Feed {
            sender,
            listener: Some(task),
            notify_via_database: true,
        })
    }

    /// Stops listening (PostgreSQL), so the listener's pooled connection is
    /// returned and the pool can close.
    pub(crate) fn stop(&self) {
        if let Some(task) = &self.listener {
            task.abort();
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.sender.subscribe()
    }

    /// Publishes events after their commit (SQLite). On PostgreSQL events were
    /// already sent with `pg_notify` in the transaction.
    pub(crate) fn publish_committed(&self, events: &[ChangeEvent]) {
        if self.notify_via_database {
            return;
        }
        for event in events {
            let _ = self.sender.send(*event);
        }
    }
}

impl crate::Store {
    /// Subscribes to every committed change of every account. Filter by
    /// `event.account` / `event.mailbox`; on `Lagged`, re-read the mailbox.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.inner.feed.subscribe()
    }
}
