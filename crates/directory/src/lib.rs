//! pillarbox-directory: domains, accounts, aliases, catch-all, passwords and
//! per-account protocol policy, in the same database as the store.
//!
//! The API below is the contract the protocol crates code against.

use pillarbox_store::{AccountId, Store};

mod accounts;
mod address;
mod auth;
mod password;
mod throttle;

pub use accounts::AccountUpdate;
pub use address::{normalize_address, normalize_domain};

/// The account service. Cheap to clone.
#[derive(Clone)]
pub struct Directory {
    store: Store,
    /// Failed logins per IP and per account, shared by every way to log in.
    throttle: std::sync::Arc<LoginThrottle>,
    /// Count logins and deliveries per account in `/metrics` (off by
    /// default: account names are then never in the metrics).
    account_metrics: bool,
}

/// What POP3 RETR does to a message (per account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterDownload {
    /// Leave it as it is (default).
    #[default]
    Keep,
    /// Set `\Seen` (visible over IMAP).
    MarkSeen,
    /// Move it to the Archive mailbox at QUIT.
    Archive,
    /// Delete it at QUIT, as if the client had sent DELE.
    Delete,
}

/// Which messages of the INBOX POP3 lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pop3List {
    /// All of the INBOX (RFC 1939).
    #[default]
    All,
    /// Only messages never downloaded by POP3 (Gmail's normal mode).
    New,
    /// Everything of the last 30 days, downloaded or not (Gmail's recent mode).
    Recent,
}

/// Per-account POP3 policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pop3Policy {
    pub after_download: AfterDownload,
    /// When false, DELE is accepted but messages stay (Outlook.com's protection).
    pub honour_deletes: bool,
    pub list: Pop3List,
}

/// An account as the protocols see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    /// The login and primary address, lowercase: `alice@example.test`.
    pub address: String,
    pub imap: bool,
    pub pop3: bool,
    pub submission: bool,
    pub pop3_policy: Pop3Policy,
    /// `None` = unlimited.
    pub quota_bytes: Option<u64>,
}

/// Which protocol a login is for (the per-account switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
    Submission,
}

/// Why a login failed. The protocols map these to their own answers.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password (deliberately not told apart to clients).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Right password, but this protocol is switched off for the account.
    #[error("{0:?} access is disabled for this account")]
    ProtocolDisabled(Protocol),
    #[error("directory unavailable: {0}")]
    Temporary(String),
}

/// What an envelope recipient address resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// Local accounts that receive it (an alias may name several).
    Local(Vec<Account>),
    /// The domain is ours but nobody has this address (550 5.1.1).
    UnknownLocal,
    /// Not one of our domains (relay question).
    NotLocal,
}

/// Directory errors for admin operations, each naming what to do.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0:?} is not a valid address: use local-part@domain")]
    InvalidAddress(String),
    #[error("{0:?} is not a valid domain name")]
    InvalidDomain(String),
    #[error("domain {0} does not exist: add it first with `pillarbox domain add {0}`")]
    UnknownDomain(String),
    #[error("domain {0} already exists")]
    DomainExists(String),
    #[error("account {0} already exists")]
    AccountExists(String),
    #[error("account {0} does not exist")]
    UnknownAccount(String),
    #[error("alias {0} -> {1} already exists")]
    AliasExists(String, String),
    #[error("alias {0} does not exist")]
    UnknownAlias(String),
    #[error("{0:?} is already an account; an alias cannot shadow it")]
    AliasShadowsAccount(String),
    #[error("domain {0} still has accounts: remove them first")]
    DomainNotEmpty(String),
    #[error("password is empty")]
    EmptyPassword,
    #[error(transparent)]
    Store(#[from] pillarbox_store::StoreError),
}

pub use throttle::{Admission, LoginThrottle, ThrottleConfig, account_key};

impl Directory {
    pub fn new(store: Store) -> Directory {
        Directory {
            store,
            throttle: Default::default(),
            account_metrics: false,
        }
    }

    /// As configured by `[auth]`: a new login throttle with these limits
    /// (call before the directory is cloned: clones share one throttle).
    pub fn with_throttle(mut self, config: ThrottleConfig) -> Directory {
        self.throttle = std::sync::Arc::new(LoginThrottle::new(config));
        self
    }

    /// As configured by `[metrics] account_labels`: per-account counters.
    pub fn with_account_metrics(mut self, on: bool) -> Directory {
        self.account_metrics = on;
        self
    }

    /// Whether per-account counters (labelled with account addresses) are kept.
    pub fn account_metrics(&self) -> bool {
        self.account_metrics
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The failed-login counter every protocol of this server shares, so a
    /// guesser cannot switch from POP3 to SMTP to dodge the delay. Logins
    /// go through it by [`Directory::login`].
    pub fn throttle(&self) -> &LoginThrottle {
        &self.throttle
    }
}
