//! pillarbox-smtp: the SMTP server — inbound MX (`smtp` listener) and
//! authenticated submission (`submission` with STARTTLS, `submissions` with
//! implicit TLS), delivering local recipients into the store at once.
//!
//! Commands are parsed by a small pure parser of our own (`command.rs`);
//! smtp-proto is not used yet.

mod auth;
mod command;
mod data;
mod delivery;
mod session;

pub use command::{Command, parse};
use pillarbox_directory::Directory;
use pillarbox_net::{Connection, Handler};
use pillarbox_store::Store;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `[smtp]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Largest message accepted, in octets (advertised as SIZE, enforced
    /// during DATA: 552 5.3.4).
    pub max_message_size: u64,
    /// Recipients per message (more: 452 4.5.3).
    pub max_recipients: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_message_size: 50 << 20,
            max_recipients: 100,
        }
    }
}

/// The SMTP session handler plugged into the smtp, submission and submissions listeners.
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
        "smtp"
    }

    /// RFC 5321 §4.5.3.2.7: at least five minutes.
    fn default_idle_timeout(&self) -> Duration {
        Duration::from_secs(300)
    }

    fn too_many_connections(&self) -> &'static [u8] {
        b"421 4.7.0 Too many connections, try again later\r\n"
    }

    async fn handle(&self, connection: Connection) {
        session::run(self, connection).await;
    }
}
