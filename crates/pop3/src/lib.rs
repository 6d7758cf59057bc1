//! pillarbox-pop3: the POP3 server (RFC 1939, with CAPA/RESP-CODES of RFC
//! 2449, STLS of RFC 2595, AUTH PLAIN of RFC 5034 and RFC 3206 codes).
//!
//! The maildrop is the account's INBOX in the shared store, snapshotted at
//! login; deletions happen only at QUIT, under the account's POP3 policy.

mod maildrop;
pub mod parse;
mod session;

use pillarbox_directory::Directory;
use pillarbox_net::{Connection, Handler};
use pillarbox_store::Store;
use serde::{Deserialize, Serialize};
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
}

impl Server {
    pub fn new(store: Store, directory: Directory, config: Config, hostname: String) -> Server {
        Server {
            store,
            directory,
            config,
            hostname,
        }
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

    /// A client that has not logged in gets a minute for each command: a
    /// real client logs in at once, and a silent or trickling one would
    /// hold a connection slot for the whole idle timeout.
    fn default_login_timeout(&self) -> Duration {
        Duration::from_secs(60)
    }

    async fn handle(&self, connection: Connection) {
        session::run(self, connection).await;
    }
}
