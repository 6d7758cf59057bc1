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

impl ListenerConfig {
    pub fn new(addr: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            enabled: true,
            addr,
            allow_plaintext_auth: false,
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_connections_per_ip(),
            idle_timeout_secs: None,
        }
    }

    /// The idle timeout, or the protocol's default when none is configured.
    pub fn idle_timeout(&self, protocol_default: Duration) -> Duration {
        self.idle_timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(protocol_default)
    }
}
