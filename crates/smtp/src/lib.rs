//! pillarbox-smtp: the SMTP server — inbound MX (`smtp` listener) and
//! authenticated submission (`submission` with STARTTLS, `submissions` with
//! implicit TLS), delivering local recipients into the store at once.
//!
//! Commands are parsed by a small pure parser of our own (`command.rs`)
//! rather than smtp-proto: the parser is ~300 lines with RFC examples as
//! tests, and keeps the error texts and the 1000-octet line rule in our
//! hands; smtp-proto's request parser would still need our DATA reader
//! (smuggling-safe, see `data.rs`) and BDAT handling around it. The
//! outbound client (`outbound/client.rs`) is ours for the same reason: the
//! queue needs every recipient's own reply, pipelined, and DSN parameters
//! passed on, which mail-send's high-level API folds into one result.

mod auth;
mod checks;
mod command;
pub mod data;
mod delivery;
mod dsn;
pub mod outbound;
mod session;
mod verbs;

pub use checks::{DnsCaches, Verifier};
pub use command::{Command, parse};
use pillarbox_directory::Directory;
use pillarbox_net::{Connection, Handler};
use pillarbox_store::Store;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The `[smtp]` section of the configuration.
///
/// Timeouts (RFC 5321 §4.5.3.2) are set on the listeners, not here: a
/// client has `idle_timeout_secs` (default 300 s, §4.5.3.2.7 "at least 5
/// minutes" awaiting a command) for each whole command line once logged in,
/// `login_timeout_secs` (default also 300 s: on the MX port nobody logs in)
/// before, and within DATA and BDAT each block of data must arrive within
/// that same time, or the session ends with 421 4.4.2 and nothing of the
/// message is delivered. After `max_errors` bad commands (default 20) the
/// client gets 421 4.7.0 and is disconnected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Largest message accepted, in octets (advertised as SIZE, enforced
    /// during DATA: 552 5.3.4).
    pub max_message_size: u64,
    /// Recipients per message (more: 452 4.5.3).
    pub max_recipients: usize,
    /// Check SPF, DKIM and DMARC of mail arriving on the MX listener and
    /// record the results in an `Authentication-Results:` header.
    pub auth_checks: bool,
    /// Refuse (550 5.7.1) mail that fails DMARC when the sender domain's
    /// policy is `p=reject`. Without it such mail is accepted and marked
    /// `dmarc=fail` in `Authentication-Results:`.
    pub reject_dmarc_failures: bool,
    /// Send everything for remote recipients through this smarthost instead
    /// of the recipients' MX hosts.
    pub relay: Option<Relay>,
    /// The outbound queue: retries and bounces.
    pub queue: QueueConfig,
}

/// `[smtp.relay]`: a smarthost (the usual setup when the provider blocks port 25).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relay {
    pub host: String,
    #[serde(default = "default_relay_port")]
    pub port: u16,
    /// `starttls` (required), `implicit` (TLS from the start, port 465) or
    /// `none` (only for a relay on the same host or network).
    #[serde(default)]
    pub tls: RelayTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Trust this CA/certificate (PEM) instead of the web PKI roots.
    pub ca_file: Option<std::path::PathBuf>,
}

fn default_relay_port() -> u16 {
    587
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayTls {
    #[default]
    Starttls,
    Implicit,
    None,
}

/// `[smtp.queue]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Seconds to wait before each retry after a temporary failure; the last
    /// value repeats until `max_age_secs`.
    pub retry_schedule_secs: Vec<u64>,
    /// A message not delivered after this long is bounced (default 5 days).
    pub max_age_secs: u64,
    /// The port of remote MX hosts (25; another value only for tests and labs).
    pub mx_port: u16,
    /// Deliveries in flight at once (one message to one destination each).
    /// A free one claims more due mail at once; a slow destination holds
    /// only its own.
    pub workers: usize,
    /// How long a claim on a recipient lasts without renewal: after a node
    /// stops, its recipients are due again this long after its last renewal.
    pub lease_secs: u64,
    /// How often a worker renews the leases of the deliveries it has in
    /// flight; less than `lease_secs` (a larger value is replaced by a third
    /// of it).
    pub lease_renew_secs: u64,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            retry_schedule_secs: vec![60, 300, 900, 1800, 3600, 7200, 14400, 28800],
            max_age_secs: 5 * 86400,
            mx_port: 25,
            workers: 8,
            lease_secs: 300,
            lease_renew_secs: 60,
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_message_size: 50 << 20,
            max_recipients: 100,
            auth_checks: true,
            reject_dmarc_failures: true,
            relay: None,
            queue: QueueConfig::default(),
        }
    }
}

/// The SMTP session handler plugged into the smtp, submission and submissions listeners.
pub struct Server {
    store: Store,
    directory: Directory,
    config: Config,
    hostname: String,
    verifier: Arc<Verifier>,
}

impl Server {
    /// A server whose SPF/DKIM/DMARC checks use `verifier` (see
    /// [`Verifier::system`]; tests give [`Verifier::offline`] with records).
    pub fn new(
        store: Store,
        directory: Directory,
        config: Config,
        hostname: String,
        verifier: Arc<Verifier>,
    ) -> Server {
        Server {
            store,
            directory,
            config,
            hostname,
            verifier,
        }
    }
}

impl Handler for Server {
    fn protocol(&self) -> &'static str {
        "smtp"
    }

    /// RFC 5321 §4.5.3.2.7: at least five minutes awaiting a command; the
    /// same bound applies to each block of DATA or BDAT (the client's own
    /// data block timeout, §4.5.3.2.5, is 3 minutes).
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
