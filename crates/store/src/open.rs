//! Opening a store by URL, with migrations applied.

use crate::Db;
use crate::blob::BlobStore;
use crate::error::{Result, StoreError};
use crate::feed::Feed;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Group commits running at once on PostgreSQL (SQLite has one writer).
const COMMITTERS_POSTGRES: usize = 4;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH` (created if missing) or `postgres://USER:PASS@HOST:PORT/DB`.
    pub url: String,
    /// Where the file-system blob store keeps message bytes. `None` keeps them
    /// in the database (the default with PostgreSQL, so every node sees them).
    pub blob_dir: Option<PathBuf>,
    /// Upper bound of pooled connections (readers on SQLite).
    pub max_connections: u32,
    /// How long an account lock lasts without renewal (the holder renews
    /// it every third of this): how long a crashed node's POP3 sessions
    /// keep their maildrops locked.
    pub lock_lease: Duration,
    /// Mailboxes one account may have, parents created on the way included.
    pub max_mailboxes: u32,
    /// Levels in one mailbox name (`a/b/c` has three).
    pub max_mailbox_depth: u32,
}

/// Mailboxes one account may have by default: far more than any mail
/// client shows, few enough that LIST and a full sync stay cheap.
pub const MAX_MAILBOXES: u32 = 10_000;
/// Levels in one mailbox name by default.
pub const MAX_MAILBOX_DEPTH: u32 = 32;

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> StoreOptions {
        StoreOptions {
            url: url.into(),
            blob_dir: None,
            max_connections: 16,
            lock_lease: crate::lock::LOCK_LEASE,
            max_mailboxes: MAX_MAILBOXES,
            max_mailbox_depth: MAX_MAILBOX_DEPTH,
        }
    }

    pub fn blob_dir(mut self, dir: impl Into<PathBuf>) -> StoreOptions {
        self.blob_dir = Some(dir.into());
        self
    }
}

/// The message store. Cheap to clone; all clones share pools and the feed.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) backend: Backend,
    pub(crate) blobs: BlobStore,
    pub(crate) feed: Feed,
    pub(crate) url: String,
    /// The account-lock leases this handle holds (see `lock.rs`).
    pub(crate) locks: crate::lock::Locks,
    /// Woken when a message is queued for remote delivery in this process.
    pub(crate) queue_wakeup: Arc<tokio::sync::Notify>,
    /// Deliveries waiting for the next group commit.
    pub(crate) group_commit: crate::deliver::GroupCommit,
    /// `StoreOptions::max_mailboxes`.
    pub(crate) max_mailboxes: u32,
    /// `StoreOptions::max_mailbox_depth`.
    pub(crate) max_mailbox_depth: u32,
}

pub(crate) enum Backend {
    /// One writer connection (writes serialize, `BEGIN IMMEDIATE`) and a pool of readers.
    Sqlite {
        writer: SqlitePool,
        readers: SqlitePool,
    },
    Postgres {
        pool: PgPool,
    },
}

/// Replaces the password of a URL with `***`, for messages and logs.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl Store {
    /// Opens (and creates, for SQLite) the store and applies pending migrations.
    pub async fn open(options: StoreOptions) -> Result<Store> {
        let masked = mask_url(&options.url);
        let open_err = |source| StoreError::Open {
            url: masked.clone(),
            source,
        };
        if options.url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(&options.url)
                .map_err(open_err)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // A 250 must survive power loss.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(connect.clone())
                .await
                .map_err(open_err)?;
            sqlx::migrate!("../../migrations/sqlite")
                .run(&writer)
                .await?;
            let readers = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(connect.read_only(true))
                .await
                .map_err(open_err)?;
            let feed = Feed::for_sqlite(&options.url);
            Ok(Store::assemble(
                Backend::Sqlite { writer, readers },
                feed,
                &options,
                masked,
                1,
            ))
        } else if options.url.starts_with("postgres:") || options.url.starts_with("postgresql:") {
            let connect = PgConnectOptions::from_str(&options.url).map_err(open_err)?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(2))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(connect)
                .await
                .map_err(open_err)?;
            sqlx::migrate!("../../migrations/postgres")
                .run(&pool)
                .await?;
            let feed = Feed::for_postgres(&pool).await.map_err(open_err)?;
            Ok(Store::assemble(
                Backend::Postgres { pool },
                feed,
                &options,
                masked,
                COMMITTERS_POSTGRES,
            ))
        } else {
            Err(StoreError::UnsupportedUrl(masked))
        }
    }

    /// The store around an open backend, with its group committers running.
    fn assemble(
        backend: Backend,
        feed: Feed,
        options: &StoreOptions,
        url: String,
        committers: usize,
    ) -> Store {
        let (group_commit, start) = crate::deliver::GroupCommit::new(committers);
        let inner = Arc::new(Inner {
            backend,
            blobs: BlobStore::new(options.blob_dir.clone()),
            feed,
            url,
            locks: crate::lock::Locks::new(options.lock_lease),
            queue_wakeup: Default::default(),
            group_commit,
            max_mailboxes: options.max_mailboxes.max(1),
            max_mailbox_depth: options.max_mailbox_depth.max(1),
        });
        start(&inner);
        crate::lock::start_renewal(&inner);
        Store { inner }
    }

    /// The URL this store was opened with, password masked.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.inner.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// The pool to read from.
    pub fn db(&self) -> Db<'_> {
        match &self.inner.backend {
            Backend::Sqlite { readers, .. } => Db::Sqlite(readers),
            Backend::Postgres { pool } => Db::Postgres(pool),
        }
    }

    /// The pool to write through (the single writer connection on SQLite).
    pub fn db_write(&self) -> Db<'_> {
        match &self.inner.backend {
            Backend::Sqlite { writer, .. } => Db::Sqlite(writer),
            Backend::Postgres { pool } => Db::Postgres(pool),
        }
    }

    /// Checks that the database answers (for health checks).
    pub async fn ping(&self) -> Result<()> {
        crate::with_pool!(self.db(), pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Releases the account locks this handle holds and closes the pools;
    /// pending writes finish first.
    pub async fn close(&self) {
        if let Err(error) = self.release_all_locks().await {
            tracing::warn!(%error, "cannot release account locks at close; their leases will expire");
        }
        self.inner.feed.stop();
        match &self.inner.backend {
            Backend::Sqlite { writer, readers } => {
                readers.close().await;
                writer.close().await;
            }
            Backend::Postgres { pool } => pool.close().await,
        }
    }
}
