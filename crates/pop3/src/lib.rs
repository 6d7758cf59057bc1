//! pillarbox-pop3: the POP3 server (RFC 1939, with CAPA/RESP-CODES of RFC
//! 2449, STLS of RFC 2595, AUTH PLAIN of RFC 5034 and RFC 3206 codes).
//!
//! The maildrop is the account's INBOX in the shared store, snapshotted at
//! login; deletions happen only at QUIT, under the account's POP3 policy.

mod maildrop;
pub mod parse;
mod session;

use pillarbox_directory::{Directory, LoginThrottle};
use pillarbox_net::{Connection, Handler};
use pillarbox_store::{AccountId, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `[pop3]` section of the configuration (nothing to set yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}

/// The POP3 session handler plugged into every POP3 listener.
pub struct Server {
    store: Store,
    directory: Directory,
    #[allow(dead_code)]
    config: Config,
    hostname: String,
    throttle: LoginThrottle,
    /// Accounts with a POP3 session in TRANSACTION state (RFC 1939 §8: the
    /// maildrop is locked against other POP3 sessions; IMAP is not affected).
    locked: Arc<Mutex<HashSet<AccountId>>>,
}

/// Holds an account's POP3 lock until dropped (QUIT, drop, timeout).
pub(crate) struct LockGuard {
    account: AccountId,
    locked: Arc<Mutex<HashSet<AccountId>>>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.locked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.account);
    }
}

impl Server {
    pub fn new(store: Store, directory: Directory, config: Config, hostname: String) -> Server {
        Server {
            store,
            directory,
            config,
            hostname,
            throttle: LoginThrottle::new(),
            locked: Arc::default(),
        }
    }

    /// Takes the account's POP3 lock, or `None` when another session holds it.
    pub(crate) fn lock(&self, account: AccountId) -> Option<LockGuard> {
        let mut locked = self.locked.lock().unwrap_or_else(|e| e.into_inner());
        locked.insert(account).then(|| LockGuard {
            account,
            locked: Arc::clone(&self.locked),
        })
    }
}

impl Handler for Server {
    fn protocol(&self) -> &'static str {
        "pop3"
    }

    /// RFC 1939 §3: the autologout timer is at least ten minutes.
    fn default_idle_timeout(&self) -> Duration {
        Duration::from_secs(600)
    }

    fn too_many_connections(&self) -> &'static [u8] {
        b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
    }

    async fn handle(&self, connection: Connection) {
        session::run(self, connection).await;
    }
}
