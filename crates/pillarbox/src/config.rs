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
    pub lab: LabConfig,
    pub metrics: MetricsConfig,
    /// `[auth]`: one login throttle for every protocol and the lab, per IP
    /// and per account: `max_failures_per_account` (10) failures within
    /// `failure_window_secs` (900) lock an account for `lockout_secs` (900);
    /// an IP's next attempt waits up to `max_delay_secs` (10) after failures;
    /// at most `max_tracked` (100000) IPs and accounts are remembered.
    pub auth: pillarbox_directory::ThrottleConfig,
    pub limits: LimitsConfig,
}

/// `[limits]`: server-wide bounds that no number of connections can exceed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// MiB the server may hold at once of what clients send and the server
    /// has not stored yet (SMTP DATA and BDAT, IMAP literals), over all
    /// connections. Past it, large reads wait a few seconds and then get a
    /// temporary error (SMTP 451/452 4.3.1, IMAP NO [LIMIT]); the client
    /// retries later.
    pub memory_budget_mib: u64,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            memory_budget_mib: 256,
        }
    }
}

/// `[metrics]`: what `/metrics` on the HTTP listener shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Also count logins and deliveries per account
    /// (`pillarbox_account_logins_total{account=…}`,
    /// `pillarbox_account_messages_delivered_total{account=…}`). Off by
    /// default: anyone who can read `/metrics` would see every address.
    pub account_labels: bool,
}

/// `[lab]`: the POP3-vs-IMAP lab page on the HTTP listener (`/lab`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabConfig {
    /// Serve `/lab`; visitors log in with their own mail address and password.
    pub enabled: bool,
    /// Throw-away mode (`pillarbox lab`): the page acts on this account
    /// without asking for a login. Never set this on a real server.
    pub demo_account: Option<String>,
    pub demo_password: Option<String>,
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://USER:PASS@HOST:PORT/DB`; default: the
    /// SQLite file `pillarbox.db` in `data_dir`.
    pub url: Option<String>,
    /// Where message bytes go: `fs` (files under `data_dir/blobs` for
    /// messages over 128 KiB, smaller ones in the database; the default
    /// with SQLite) or `db` (in the database, the default with PostgreSQL).
    pub blobs: Option<BlobsKind>,
    /// Pooled database connections.
    pub max_connections: u32,
    /// Seconds a message's bytes stay after the message was expunged from
    /// its last mailbox, before the background sweep removes them (a
    /// delivery of the same bytes meanwhile keeps them). Default 300.
    pub blob_grace_secs: u64,
    /// Mailboxes one account may have (CREATE beyond it: `NO [LIMIT]`).
    /// Default 10,000.
    pub max_mailboxes: u32,
    /// Levels in one mailbox name (`Work/2026/Q1` has three). Default 32.
    pub max_mailbox_depth: u32,
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
pub const LISTENERS: [(&str, TlsMode, &str); 8] = [
    ("smtp", TlsMode::StartTls, "127.0.0.1:2525"),
    ("submission", TlsMode::StartTls, "127.0.0.1:2587"),
    ("submissions", TlsMode::Implicit, "127.0.0.1:2465"),
    ("pop3", TlsMode::StartTls, "127.0.0.1:1110"),
    ("pop3s", TlsMode::Implicit, "127.0.0.1:1995"),
    ("imap", TlsMode::StartTls, "127.0.0.1:1143"),
    ("imaps", TlsMode::Implicit, "127.0.0.1:1993"),
    ("http", TlsMode::Plain, "127.0.0.1:8080"),
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
            lab: Default::default(),
            metrics: Default::default(),
            auth: Default::default(),
            limits: Default::default(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            url: None,
            blobs: None,
            max_connections: 16,
            blob_grace_secs: pillarbox_store::BLOB_GRACE.as_secs(),
            max_mailboxes: pillarbox_store::MAX_MAILBOXES,
            max_mailbox_depth: pillarbox_store::MAX_MAILBOX_DEPTH,
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

/// A configuration that cannot be used, said in one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Environment variables that start with `PILLARBOX_` but are not config keys.
const NOT_KEYS: [&str; 2] = ["PILLARBOX_CONFIG", "PILLARBOX_TEST_DATABASE_URL"];

impl Config {
    /// Loads defaults < the TOML file (if any) < `PILLARBOX_…` variables of `env`.
    pub fn load_from(
        file: Option<&std::path::Path>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        use figment::Figment;
        use figment::providers::{Format, Serialized, Toml};
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.to_path_buf()));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Environment: PILLARBOX_A__B=value sets a.b; given explicitly so tests
        // need not touch the process environment.
        let mut env_toml = toml::Table::new();
        for (name, value) in env {
            let Some(key) = name.strip_prefix("PILLARBOX_") else {
                continue;
            };
            if NOT_KEYS.contains(&name.as_str()) || key.is_empty() {
                continue;
            }
            let path: Vec<String> = key.split("__").map(|k| k.to_ascii_lowercase()).collect();
            // Values are typed as TOML would read them: booleans, integers, else text.
            let value = match value.as_str() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                v => match v.parse::<i64>() {
                    Ok(n) => toml::Value::Integer(n),
                    Err(_) => toml::Value::String(v.to_string()),
                },
            };
            insert_path(&mut env_toml, &path, value);
        }
        let env_text =
            toml::to_string(&env_toml).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        figment = figment.merge(Toml::string(&env_text));
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(one_line(&e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Loads from `--config`/`PILLARBOX_CONFIG` and the process environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let from_env = std::env::var_os("PILLARBOX_CONFIG").map(PathBuf::from);
        let file = file.map(|f| f.to_path_buf()).or(from_env);
        Config::load_from(file.as_deref(), &env)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for name in self.listener.keys() {
            if Config::tls_mode(name).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "unknown listener [listener.{name}]: use smtp, submission, submissions, pop3, pop3s, imap or imaps"
                )));
            }
        }
        if self.hostname.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "hostname is empty: set it to this server's DNS name".into(),
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "tls.cert and tls.key must be set together (or neither, for a self-signed certificate)".into(),
            ));
        }
        Ok(())
    }

    /// The configuration as TOML with secrets masked (`check-config`).
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.store.url = Some(pillarbox_store::mask_url(&self.store_url()));
        toml::to_string_pretty(&shown)
            .unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }
}

fn insert_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

fn one_line(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let key = key.strip_prefix("default.").unwrap_or(&key).to_string();
            let source = e
                .metadata
                .as_ref()
                .and_then(|m| m.source.as_ref())
                .map(|s| format!(" (in {s})"))
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("{} at `{key}`{source}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_run_on_loopback_with_unprivileged_ports() {
        let config = Config::load_from(None, &[]).unwrap();
        assert_eq!(config.listener.len(), 8);
        for listener in config.listener.values() {
            assert!(listener.addr.ip().is_loopback());
            assert!(listener.addr.port() > 1024);
        }
        assert!(config.store_url().starts_with("sqlite://"));
    }

    #[test]
    fn file_then_environment_override_defaults_and_partial_tables_merge() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "hostname = \"mail.example.test\"\n[listener.imap]\nenabled = false\n[listener.pop3]\naddr = \"127.0.0.1:10110\"\n").unwrap();
        let config = Config::load_from(
            Some(&file),
            &env(&[
                ("PILLARBOX_LISTENER__POP3__ADDR", "127.0.0.1:20110"),
                ("PILLARBOX_STORE__URL", "postgres://u:pw@db/mail"),
                ("PILLARBOX_CONFIG", "/ignored"),
                ("PILLARBOX_TEST_DATABASE_URL", "postgres://ignored"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(config.hostname, "mail.example.test");
        assert!(!config.listener["imap"].enabled);
        assert_eq!(
            config.listener["imap"].addr.port(),
            1143,
            "addr kept from the defaults"
        );
        assert_eq!(
            config.listener["pop3"].addr.port(),
            20110,
            "environment beats the file"
        );
        assert_eq!(config.store.url.as_deref(), Some("postgres://u:pw@db/mail"));
        assert!(config.to_masked_toml().contains("postgres://u:***@db/mail"));
        assert!(!config.to_masked_toml().contains("pw@"));
    }

    #[test]
    fn unknown_keys_and_listeners_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "[listener.imap]\nadress = \"x\"\n").unwrap();
        let error = Config::load_from(Some(&file), &[]).unwrap_err().to_string();
        assert!(error.contains("adress"), "{error}");
        assert!(error.contains("listener.imap"), "{error}");
        let error = Config::load_from(
            None,
            &env(&[("PILLARBOX_LISTENER__GOPHER__ADDR", "127.0.0.1:70")]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("gopher"), "{error}");
        let error = Config::load_from(None, &env(&[("PILLARBOX_HOSTNAMES", "x")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("hostnames"), "{error}");
        let error = Config::load_from(
            None,
            &env(&[("PILLARBOX_LISTENER__IMAP__ADDR", "not an address")]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("listener.imap.addr"), "{error}");
    }

    #[test]
    fn example_configs_load_with_the_real_loader() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        for name in ["pillarbox.example.toml", "production.toml"] {
            Config::load_from(Some(&root.join(name)), &[])
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
