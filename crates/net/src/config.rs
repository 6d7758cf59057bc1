//! Per-listener settings (`[listener.NAME]` in the configuration).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// How a listener uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plaintext at first; the protocol offers STARTTLS / STLS.
    StartTls,
    /// TLS from the first byte (ports 465, 993, 995).
    Implicit,
    /// No TLS at all: the HTTP endpoint, on loopback by default.
    Plain,
}

/// One `[listener.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `false` turns the listener off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Address and port to bind, e.g. `127.0.0.1:1143` or `[::]:993`.
    pub addr: SocketAddr,
    /// Allow AUTH / LOGIN / USER+PASS without TLS (for tests and trusted
    /// networks only; passwords then cross the network in clear).
    #[serde(default)]
    pub allow_plaintext_auth: bool,
    /// Connections accepted at once on this listener; more are told to retry.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections accepted at once from one IP address.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Seconds a client may stay silent before the session is closed; when
    /// absent, the protocol's own default (SMTP 300, POP3 600, IMAP 1800).
    #[serde(default)]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds a client that has not logged in yet may take to send each
    /// command line, whole (a deadline per command, not per byte: trickling
    /// one byte at a time does not extend it); when absent, the protocol's
    /// own default (IMAP and POP3 60, SMTP 300 as RFC 5321 §4.5.3.2 sets).
    #[serde(default)]
    pub login_timeout_secs: Option<u64>,
    /// Connections from one IP address that have not logged in (yet) at
    /// once; more are refused like connections over `max_connections_per_ip`.
    /// SMTP sessions on port 25 never log in and always count here.
    #[serde(default = "default_max_unauthenticated_per_ip")]
    pub max_unauthenticated_per_ip: usize,
    /// Bad commands (syntax errors, unknown commands, commands in the wrong
    /// state, over-long lines, failed logins) one session may send; the next
    /// one gets a final error and the connection is closed.
    #[serde(default = "default_max_errors")]
    pub max_errors: u32,
}

fn yes() -> bool {
    true
}

fn default_max_connections() -> usize {
    10_000
}

fn default_max_connections_per_ip() -> usize {
    50
}

fn default_max_unauthenticated_per_ip() -> usize {
    20
}

/// As Postfix's `smtpd_hard_error_limit`.
fn default_max_errors() -> u32 {
    20
}

impl ListenerConfig {
    pub fn new(addr: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            enabled: true,
            addr,
            allow_plaintext_auth: false,
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_connections_per_ip(),
            idle_timeout_secs: None,
            login_timeout_secs: None,
            max_unauthenticated_per_ip: default_max_unauthenticated_per_ip(),
            max_errors: default_max_errors(),
        }
    }

    /// The idle timeout, or the protocol's default when none is configured.
    pub fn idle_timeout(&self, protocol_default: Duration) -> Duration {
        self.idle_timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(protocol_default)
    }

    /// The login timeout; when none is configured, the protocol's default
    /// or the idle timeout if that is shorter (a client that has not logged
    /// in never gets longer than one that has).
    pub fn login_timeout(&self, protocol_default: Duration, idle: Duration) -> Duration {
        self.login_timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(protocol_default.min(idle))
    }
}
