//! Exclusive per-account locks that hold across every node sharing the store
//! (POP3's maildrop lock, RFC 1939 §8).
//!
//! On PostgreSQL a session-level advisory lock on a connection of its own:
//! every node sees it, and if the node dies the connection drops and the
//! lock goes with it. On SQLite (one process serves one database file) a set
//! in the store handle.

use crate::Store;
use crate::error::Result;
use crate::open::Backend;
use crate::types::AccountId;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Held while the lock is; dropping it releases the lock.
pub struct AccountLock {
    _held: Held,
}

enum Held {
    Local {
        key: (String, i64),
        set: Arc<Mutex<HashSet<(String, i64)>>>,
    },
    /// Closing this connection releases the advisory lock.
    Postgres(#[allow(dead_code)] sqlx::PgConnection),
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Held::Local { key, set } = self {
            set.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        }
    }
}

/// A stable 63-bit key for (purpose, account).
fn advisory_key(purpose: &str, account: AccountId) -> i64 {
    let hash = blake3::hash(format!("pillarbox:{purpose}:{}", account.0).as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.as_bytes()[..8]);
    (u64::from_le_bytes(bytes) >> 1) as i64
}

impl Store {
    /// Takes the exclusive `purpose` lock of an account (e.g. `"pop3"`), or
    /// `None` when someone — on this node or another — holds it.
    pub async fn try_lock_account(
        &self,
        purpose: &str,
        account: AccountId,
    ) -> Result<Option<AccountLock>> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => {
                let key = (purpose.to_string(), account.0);
                let set = Arc::clone(&self.inner.local_locks);
                let taken = set
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key.clone());
                Ok(taken.then(|| AccountLock {
                    _held: Held::Local { key, set },
                }))
            }
            Backend::Postgres { pool } => {
                let mut conn = pool.acquire().await?.detach();
                let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                    .bind(advisory_key(purpose, account))
                    .fetch_one(&mut conn)
                    .await?;
                Ok(locked.then(|| AccountLock {
                    _held: Held::Postgres(conn),
                }))
            }
        }
    }
}
