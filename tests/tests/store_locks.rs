//! Account locks (POP3's maildrop lock) are leases in the database, on
//! SQLite and on PostgreSQL: exclusive across store handles (nodes), renewed
//! while held, released on drop, taken over once a crashed holder's lease
//! runs out — and they hold no database connection.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_store::*;
use pillarbox_tests::store_fixture::StoreFixture as Fixture;
use pillarbox_tests::{Backend, backends};
use std::time::Duration;

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Puts a lease row in as another node would have left it.
async fn leave_lease(f: &Fixture, purpose: &str, account: AccountId, expires_at: i64) {
    with_pool!(f.store.db_write(), pool => {
        sqlx::query(
            "INSERT INTO account_locks (purpose, account_id, holder, expires_at) VALUES ($1, $2, 'deadbeef00000000/1', $3)",
        )
        .bind(purpose)
        .bind(account.0)
        .bind(expires_at)
        .execute(pool)
        .await
        .unwrap();
    });
}

async fn take_within(
    store: &Store,
    purpose: &str,
    account: AccountId,
    wait: Duration,
) -> Option<AccountLock> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(lock) = store.try_lock_account(purpose, account).await.unwrap() {
            return Some(lock);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_left_by_a_crashed_node_is_taken_over_once_expired() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, _) = f.account("alice").await;
        let (bob, _) = f.account("bob").await;
        leave_lease(&f, "pop3", alice, unix_ms() - 1).await;
        leave_lease(&f, "pop3", bob, unix_ms() + 60_000).await;
        let taken = f.store.try_lock_account("pop3", alice).await.unwrap();
        assert!(taken.is_some(), "{backend:?}: an expired lease is free");
        assert!(taken.as_ref().unwrap().is_held());
        assert!(
            f.store
                .try_lock_account("pop3", bob)
                .await
                .unwrap()
                .is_none(),
            "{backend:?}: a live lease of another node holds"
        );
        drop(taken);
        f.done().await;
    }
}

/// The holder renews its lease: held well past the lease's length, another
/// node still cannot take it; dropped, it is free at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_is_renewed_past_its_lease_and_freed_on_drop() {
    for backend in backends() {
        let short = |o: StoreOptions| StoreOptions {
            lock_lease: Duration::from_millis(1500),
            ..o
        };
        let f = Fixture::with_options(backend, short).await;
        let (alice, _) = f.account("alice").await;
        let other = f.other_handle(short).await;
        let held = f
            .store
            .try_lock_account("pop3", alice)
            .await
            .unwrap()
            .unwrap();
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(
                other
                    .try_lock_account("pop3", alice)
                    .await
                    .unwrap()
                    .is_none(),
                "{backend:?}: taken over while renewed"
            );
        }
        assert!(held.is_held());
        drop(held);
        assert!(
            take_within(&other, "pop3", alice, Duration::from_secs(1))
                .await
                .is_some(),
            "{backend:?}: released on drop, before its lease ran out"
        );
        other.close().await;
        f.done().await;
    }
}

/// Closing a store handle (a node stopping) releases what it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_store_handle_releases_its_locks() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, _) = f.account("alice").await;
        let node = f.other_handle(|o| o).await;
        let held = node.try_lock_account("pop3", alice).await.unwrap().unwrap();
        node.close().await;
        assert!(
            f.store
                .try_lock_account("pop3", alice)
                .await
                .unwrap()
                .is_some(),
            "{backend:?}"
        );
        drop(held);
        f.done().await;
    }
}

/// Each POP3 session holds a lock for as long as it lasts: 200 of them at
/// once must not hold 200 database connections (on PostgreSQL each lock
/// held a connection of its own, and a few hundred sessions used up the
/// server's `max_connections`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_locks_held_at_once_hold_no_connections() {
    for backend in backends() {
        let f = Fixture::new(backend).await;
        let (alice, _) = f.account("alice").await;
        let mut held = Vec::new();
        for n in 0..200 {
            let lock = f
                .store
                .try_lock_account(&format!("pop3-{n}"), alice)
                .await
                .unwrap_or_else(|e| panic!("{backend:?}: lock {n}: {e}"))
                .unwrap();
            held.push(lock);
        }
        if backend == Backend::Postgres {
            let (connections,): (i64,) = with_pool!(f.store.db(), pool => {
                sqlx::query_as(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()",
                )
                .fetch_one(pool)
                .await
                .unwrap()
            });
            // The pool (16) and the change feed's LISTEN connection.
            assert!(connections <= 17, "{connections} connections for 200 locks");
        }
        assert!(
            f.store
                .try_lock_account("pop3-7", alice)
                .await
                .unwrap()
                .is_none()
        );
        drop(held);
        assert!(
            take_within(&f.store, "pop3-199", alice, Duration::from_secs(2))
                .await
                .is_some(),
            "{backend:?}: released on drop"
        );
        f.done().await;
    }
}
