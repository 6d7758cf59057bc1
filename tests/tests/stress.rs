//! A short stress run per configuration (SQLite, PostgreSQL, two nodes on
//! one PostgreSQL): many IMAP, POP3 and SMTP clients on shared mailboxes,
//! the invariants of `pillarbox_tests::stress` checked after every
//! response. `cargo xtask stress` runs the same checker longer.
//!
//! One test per configuration. The checker found four server bugs when it
//! was written, each fixed since: a keyword shown in FETCH FLAGS before any
//! FLAGS listed it; `\Recent` in several sessions; FETCH of a message just
//! expunged elsewhere answering `NO [SERVERBUG]`; and on PostgreSQL two
//! sessions expunging the same message colliding on `expunged_pkey`.

use pillarbox_tests::stress::servers::{Launched, Setup};
use pillarbox_tests::stress::{self, Settings};
use pillarbox_tests::{Backend, backends};

fn postgres() -> bool {
    backends().contains(&Backend::Postgres)
}

async fn short_run(setup: Setup, seed: u64) {
    let settings = Settings {
        seconds: 4,
        imap: 6,
        pop3: 2,
        smtp: 2,
        seed,
        accounts: Settings::accounts(2),
        password: "stress password".into(),
        initial: 4,
    };
    let launched = Launched::start(setup, &settings.accounts, &settings.password)
        .await
        .unwrap_or_else(|e| panic!("the {} servers start: {e:#}", setup.name()));
    let quota = launched.quota();
    let report = stress::run(&settings, launched.nodes.clone(), Some(quota), setup.name()).await;
    launched.stop().await;
    let total: u64 = report.commands.values().sum();
    assert!(total > 100, "the clients ran commands:\n{report}");
    assert!(
        report.is_clean(),
        "{} failed commands, {} invariant violations:\n{report}",
        report.failure_count(),
        report.violation_count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_every_invariant_under_concurrent_clients() {
    short_run(Setup::Sqlite, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_every_invariant_under_concurrent_clients() {
    if postgres() {
        short_run(Setup::Postgres, 2).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_keep_every_invariant_under_concurrent_clients() {
    if postgres() {
        short_run(Setup::TwoNodes, 3).await;
    }
}
