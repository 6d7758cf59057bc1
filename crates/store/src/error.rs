use crate::types::{AccountId, MailboxId, MessageId, Uid};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong in the store, with the input that caused it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL {0:?} is not supported: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("cannot open the store at {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the store is shut down; try again when the server is back")]
    Closed,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("blob store error at {path}: {source}")]
    Blob {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("message blob {0} is missing from the blob store")]
    BlobMissing(String),
    /// The message was expunged from the last mailbox that held it, and its
    /// row went with it (IMAP: `NO [EXPUNGEISSUED]`).
    #[error("message {0} was expunged and is no longer stored")]
    MessageExpunged(MessageId),
    #[error("mailbox {0:?} does not exist")]
    MailboxNotFound(String),
    #[error("mailbox id {0} does not exist")]
    MailboxIdNotFound(MailboxId),
    #[error("mailbox {0:?} already exists")]
    MailboxExists(String),
    #[error("mailbox name {name:?} is not allowed: {reason}")]
    InvalidMailboxName { name: String, reason: &'static str },
    /// A configured bound on an account's mailboxes (IMAP: `NO [LIMIT]`).
    #[error("{what}: at most {limit} allowed")]
    MailboxLimit { what: &'static str, limit: u32 },
    /// More METADATA entries than an account may keep (IMAP: `NO
    /// [METADATA TOOMANY]`).
    #[error("an account keeps at most {limit} metadata entries")]
    MetadataLimit { limit: u32 },
    #[error("the inbox cannot be deleted")]
    CannotDeleteInbox,
    #[error("message UID {uid} does not exist in mailbox {mailbox}")]
    MessageNotFound { mailbox: MailboxId, uid: Uid },
    #[error(
        "account {account} is over its quota ({used} of {limit} bytes used, {needed} more needed)"
    )]
    OverQuota {
        account: AccountId,
        used: u64,
        limit: u64,
        needed: u64,
    },
    #[error("account {0} does not exist")]
    AccountNotFound(AccountId),
}

impl StoreError {
    /// True when retrying later might succeed (the protocol answers 4xx / [SYS/TEMP]).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            StoreError::Database(_) | StoreError::Blob { .. } | StoreError::Open { .. }
        )
    }
}
