//! The configuration tree. Defaults < TOML file < `PILLARBOX_…` environment.
//! Every key is documented here and in `config/pillarbox.example.toml`.

use pillarbox_net::{ListenerConfig, TlsMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The name this server greets with and puts in trace headers.
    pub hostname: String,
    /// Where the SQLite database, blobs and the self-signed certificate live.
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    pub tls: TlsConfig,
    /// Listeners keyed by IANA service name: smtp, submission, submissions,
    /// pop3, pop3s, imap, imaps.
    pub listener: BTreeMap<String, ListenerConfig>,
    pub log: LogConfig,
    pub smtp: pillarbox_smtp::Config,
    pub pop3: pillarbox_pop3::Config,
    pub imap: pillarbox_imap::Config,
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://USER:PASS@HOST:PORT/DB`; default: the
    /// SQLite file `pillarbox.db` in `data_dir`.
    pub url: Option<String>,
    /// Where message bytes go: `fs` (files under `data_dir/blobs`, the default
    /// with SQLite) or `db` (in the database, the default with PostgreSQL).
    pub blobs: Option<BlobsKind>,
    /// Pooled database connections.
    pub max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobsKind {
    Fs,
    Db,
}

/// `[tls]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain. With `key`; when both are absent a self-signed
    /// certificate for `hostname` is made in `data_dir/tls` on first start.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `pillarbox_imap=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The listeners Pillarbox knows, with their TLS mode and development default address.
pub const LISTENERS: [(&str, TlsMode, &str); 7] = [
    ("smtp", TlsMode::StartTls, "127.0.0.1:2525"),
    ("submission", TlsMode::StartTls, "127.0.0.1:2587"),
    ("submissions", TlsMode::Implicit, "127.0.0.1:2465"),
    ("pop3", TlsMode::StartTls, "127.0.0.1:1110"),
    ("pop3s", TlsMode::Implicit, "127.0.0.1:1995"),
    ("imap", TlsMode::StartTls, "127.0.0.1:1143"),
    ("imaps", TlsMode::Implicit, "127.0.0.1:1993"),
];

impl Default for Config {
    fn default() -> Config {
        Config {
            hostname: "localhost".into(),
            data_dir: PathBuf::from("./data"),
            store: StoreConfig::default(),
            tls: TlsConfig::default(),
            listener: LISTENERS
                .iter()
                .map(|(name, _, addr)| {
                    // The literals above are valid socket addresses.
                    let addr: SocketAddr = addr
                        .parse()
                        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
                    (name.to_string(), ListenerConfig::new(addr))
                })
                .collect(),
            log: LogConfig::default(),
            smtp: Default::default(),
            pop3: Default::default(),
            imap: Default::default(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            url: None,
            blobs: None,
            max_connections: 16,
        }
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Config {
    /// The store URL, defaulting to a SQLite file in `data_dir`.
    pub fn store_url(&self) -> String {
        self.store
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("pillarbox.db").display()))
    }

    /// The TLS mode of a known listener name.
    pub fn tls_mode(name: &str) -> Option<TlsMode> {
        LISTENERS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, mode, _)| *mode)
    }
}
