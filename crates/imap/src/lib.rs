//! pillarbox-imap: IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) over the
//! shared store, with IDLE fed by the store's change feed.
//!
//! The wire parser is our own (`parse`), pure and panic-free: imap-codec's
//! pinned alpha lacks IMAP4rev2's ESEARCH and SPECIAL-USE forms, and one
//! cursor over the command with its literals inline (see `framing`) is
//! smaller than adapting it. Responses are encoded in `encode`.

mod command;
mod encode;
mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod imap_url;
pub mod mutf7;
mod objectid;
pub mod parse;
mod selected;
pub mod sequence;
mod session;
mod sort_keys;
mod threading;

use pillarbox_directory::Directory;
use pillarbox_net::{Connection, Handler};
use pillarbox_store::Store;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `[imap]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Largest message APPEND accepts, in octets (advertised as APPENDLIMIT;
    /// a larger literal is refused with `NO [TOOBIG]` before it is read).
    pub append_limit: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            append_limit: 50 << 20,
        }
    }
}

/// The IMAP session handler plugged into every IMAP listener.
pub struct Server {
    store: Store,
    directory: Directory,
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
        "imap"
    }

    fn default_idle_timeout(&self) -> Duration {
        // RFC 9051 §5.4: an autologout timer of at least 30 minutes.
        Duration::from_secs(30 * 60)
    }

    fn too_many_connections(&self) -> &'static [u8] {
        b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n"
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
