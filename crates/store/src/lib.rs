//! pillarbox-store: the message store shared by SMTP, POP3 and IMAP.
//!
//! One API over two sqlx backends, chosen by URL: `sqlite://…` (embedded, the
//! default) and `postgres://…` (several nodes sharing one database). Message
//! bytes are kept once per content (BLAKE3) in a [`blob`] store; what IMAP needs
//! repeatedly is parsed once at delivery ([`meta`]). Every write is one
//! transaction; after each commit a [`ChangeEvent`] is published on the
//! [`feed`].

#[macro_use]
mod tx;
pub mod address;
pub mod blob;
mod deliver;
mod dialect;
mod dkim_keys;
mod error;
pub mod feed;
mod gc;
mod import_state;
mod lock;
mod mailbox;
mod message;
pub mod meta;
mod metadata;
mod open;
pub mod queue;
mod queue_claims;
mod quota;
mod recent;
mod search;
mod types;

pub use error::{Result, StoreError};
pub use feed::{ChangeEvent, ChangeKind};
pub use gc::{BLOB_GRACE, SweepReport};
pub use lock::AccountLock;
pub use metadata::MetadataScope;
pub use open::{MAX_MAILBOX_DEPTH, MAX_MAILBOXES, Store, StoreOptions, mask_url};
pub use search::{SearchText, TextColumns, TextFilter};
pub use types::*;

/// Runs `$body` once per backend with `$pool` bound to that backend's pool.
///
/// The same SQL text (numbered `$1` parameters work on both) is compiled
/// once per database type. sqlx 0.9's `Any` driver (the `any` feature, not
/// enabled here) would give one pool type, but it carries only scalar
/// values: no arrays (PostgreSQL's `= ANY($1)` row locks in id order), no
/// LISTEN/NOTIFY for the change feed, and every value converted through its
/// lowest common type; the typed pools keep those. Only for use by the store
/// and the directory, the two crates that own SQL.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}

/// Integer ids as the text of an SQL `IN (…)` list (integers only, so the
/// text is safe to put into a statement).
pub(crate) fn id_list<T: Into<i64>>(ids: impl IntoIterator<Item = T>) -> String {
    ids.into_iter()
        .map(|id| id.into().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A borrowed handle on the backend's pool, for the directory's SQL.
#[derive(Clone, Copy)]
pub enum Db<'a> {
    Sqlite(&'a sqlx::SqlitePool),
    Postgres(&'a sqlx::PgPool),
}

pub use sqlx;
