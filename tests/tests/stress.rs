//! A short stress run per configuration (SQLite, PostgreSQL, two nodes on
//! one PostgreSQL): many IMAP, POP3 and SMTP clients on shared mailboxes,
//! the invariants of `pillarbox_tests::stress` checked after every
//! response. `cargo xtask stress` runs the same checker longer.
//!
//! Ignored while the server bugs the checker found on main are open (the
//! reasons name them); run them with `cargo test -p pillarbox-tests --test
//! stress -- --ignored`, and drop the `#[ignore]` when they pass.

use pillarbox_tests::stress::servers::{Launched, Setup};
use pillarbox_tests::stress::{self, Settings};
use pillarbox_tests::{Backend, backends};

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
#[ignore = "fails on main a013cca with server bugs the checker found (see cargo xtask stress): \
            (1) a keyword new to the mailbox shows in FETCH FLAGS with no untagged FLAGS listing it (FLAGS is sent only at SELECT); \
            (2) \\Recent goes to every session that had the mailbox selected when a message arrived; \
            (3) FETCH ENVELOPE/BODY[] of a message another session just expunged answers NO [SERVERBUG] (message blob missing); \
            (4) PostgreSQL: two sessions expunging the same message fail on expunged_pkey, NO [UNAVAILABLE] to EXPUNGE/UID EXPUNGE/CLOSE and -ERR [SYS/TEMP] to POP3 QUIT"]
async fn concurrent_clients_keep_every_invariant() {
    for backend in backends() {
        let setup = match backend {
            Backend::Sqlite => Setup::Sqlite,
            Backend::Postgres => Setup::Postgres,
        };
        short_run(setup, 1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fails on main a013cca with the server bugs (1)-(4) listed at concurrent_clients_keep_every_invariant"]
async fn two_nodes_on_one_postgres_keep_every_invariant() {
    if backends().contains(&Backend::Postgres) {
        short_run(Setup::TwoNodes, 2).await;
    }
}
