//! Exclusive per-account locks that hold across every node sharing the store
//! (POP3's maildrop lock, RFC 1939 §8): a row in `account_locks` with a
//! lease, the same on both backends.
//!
//! - Taken with one statement: insert the row, or take over a row whose
//!   lease has expired (its holder crashed or lost its database).
//! - Renewed while held: each store handle (a node) renews every lease it
//!   holds in one statement, every third of the lease.
//! - Released on drop: a spawned task deletes the row; if that never runs
//!   (a crash), the lease runs out.
//!
//! No database connection is held while a lock is, so many POP3 sessions
//! do not use up the database's connections. Leases are in the nodes' clock
//! (Unix milliseconds): nodes sharing a database must keep their clocks
//! within a small fraction of the lease of each other (NTP does).

use crate::Store;
use crate::error::Result;
use crate::open::Inner;
use crate::types::AccountId;
use crate::with_pool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long a lease lasts without renewal, unless the store is opened with
/// another (`StoreOptions::lock_lease`).
pub const LOCK_LEASE: Duration = Duration::from_secs(60);

/// Held while the lock is; dropping it releases the lock.
pub struct AccountLock {
    store: Store,
    purpose: String,
    account: AccountId,
    holder: String,
    held: Arc<AtomicBool>,
}

impl AccountLock {
    /// False once this node failed to renew the lease in time and another
    /// holder may have taken the lock over.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }
}

impl Drop for AccountLock {
    fn drop(&mut self) {
        self.store.inner.locks.forget(&self.holder);
        // Outside a runtime (process exit) the lease runs out instead.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            let (purpose, account, holder) =
                (self.purpose.clone(), self.account, self.holder.clone());
            runtime.spawn(async move {
                if let Err(error) = store.release_lock(&purpose, account, &holder).await {
                    tracing::warn!(%error, %purpose, %account, "cannot release an account lock; its lease will expire");
                }
            });
        }
    }
}

/// This store handle's leases.
pub(crate) struct Locks {
    /// Random per store handle: the `<node>` of every holder it writes.
    node: String,
    lease: Duration,
    next: AtomicU64,
    /// Holder → still held, for the leases this handle holds.
    held: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

impl Locks {
    pub(crate) fn new(lease: Duration) -> Locks {
        // Unique per handle: host, process, time and a counter, hashed.
        static HANDLES: AtomicU64 = AtomicU64::new(0);
        let seed = blake3::hash(
            format!(
                "{}:{}:{:?}:{}",
                std::env::var("HOSTNAME").unwrap_or_default(),
                std::process::id(),
                std::time::SystemTime::now(),
                HANDLES.fetch_add(1, Ordering::Relaxed)
            )
            .as_bytes(),
        );
        Locks {
            node: seed.to_hex()[..16].to_string(),
            lease: lease.max(Duration::from_secs(1)),
            next: AtomicU64::new(1),
            held: Mutex::new(HashMap::new()),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget(&self, holder: &str) {
        self.registry().remove(holder);
    }

    /// `LIKE` pattern of this node's holders (the node id is hex: no wildcard in it).
    fn pattern(&self) -> String {
        format!("{}/%", self.node)
    }

    fn lease_ms(&self) -> i64 {
        self.lease.as_millis().min(i64::MAX as u128) as i64
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Takes the exclusive `purpose` lock of an account (e.g. `"pop3"`), or
    /// `None` when someone — on this node or another — holds it.
    pub async fn try_lock_account(
        &self,
        purpose: &str,
        account: AccountId,
    ) -> Result<Option<AccountLock>> {
        let locks = &self.inner.locks;
        let holder = format!(
            "{}/{}",
            locks.node,
            locks.next.fetch_add(1, Ordering::Relaxed)
        );
        let now = unix_ms();
        let taken: Option<(String,)> = with_pool!(self.db_write(), pool => {
            sqlx::query_as(
                "INSERT INTO account_locks (purpose, account_id, holder, expires_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (purpose, account_id) DO UPDATE \
                 SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE account_locks.expires_at < $5 RETURNING holder",
            )
            .bind(purpose)
            .bind(account.0)
            .bind(&holder)
            .bind(now + locks.lease_ms())
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        if taken.is_none() {
            return Ok(None);
        }
        let held = Arc::new(AtomicBool::new(true));
        locks.registry().insert(holder.clone(), Arc::clone(&held));
        Ok(Some(AccountLock {
            store: self.clone(),
            purpose: purpose.to_string(),
            account,
            holder,
            held,
        }))
    }

    async fn release_lock(&self, purpose: &str, account: AccountId, holder: &str) -> Result<()> {
        with_pool!(self.db_write(), pool => {
            sqlx::query(
                "DELETE FROM account_locks WHERE purpose = $1 AND account_id = $2 AND holder = $3",
            )
            .bind(purpose)
            .bind(account.0)
            .bind(holder)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Renews every lease this handle holds, in one statement, and marks
    /// the ones it no longer holds (expired and taken over meanwhile).
    async fn renew_leases(&self) -> Result<()> {
        let locks = &self.inner.locks;
        // Those held before the statement: a lock taken while it runs is
        // fresh, and may not be among the rows it renewed.
        let before: Vec<(String, Arc<AtomicBool>)> = locks
            .registry()
            .iter()
            .map(|(holder, held)| (holder.clone(), Arc::clone(held)))
            .collect();
        if before.is_empty() {
            return Ok(());
        }
        let now = unix_ms();
        let mine: Vec<(String,)> = with_pool!(self.db_write(), pool => {
            sqlx::query_as(
                "UPDATE account_locks SET expires_at = $1 WHERE holder LIKE $2 RETURNING holder",
            )
            .bind(now + locks.lease_ms())
            .bind(locks.pattern())
            .fetch_all(pool)
            .await?
        });
        for (holder, held) in &before {
            let still_wanted = locks.registry().contains_key(holder);
            if still_wanted
                && !mine.iter().any(|(h,)| h == holder)
                && held.swap(false, Ordering::Relaxed)
            {
                tracing::warn!(%holder, "an account lock's lease ran out before it was renewed; another session may hold it now");
            }
        }
        Ok(())
    }

    /// Deletes every lease this handle holds (when the store closes).
    pub(crate) async fn release_all_locks(&self) -> Result<()> {
        let pattern = self.inner.locks.pattern();
        with_pool!(self.db_write(), pool => {
            sqlx::query("DELETE FROM account_locks WHERE holder LIKE $1")
                .bind(pattern)
                .execute(pool)
                .await?;
        });
        self.inner.locks.registry().clear();
        Ok(())
    }
}

/// Renews the store handle's leases every third of the lease, until the
/// store is dropped.
pub(crate) fn start_renewal(inner: &Arc<Inner>) {
    let period = inner.locks.lease / 3;
    let weak: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let store = Store { inner };
            if let Err(error) = store.renew_leases().await {
                tracing::warn!(%error, "cannot renew account lock leases; retrying");
            }
        }
    });
}
