//! Export and import through the real command line (`pillarbox export`,
//! `pillarbox import`) with mailbox names an IMAP user chose to attack the
//! file system: `../../x/pwned`, `..`, backslashes, dots, long names. On
//! SQLite and PostgreSQL: nothing is written (or read) outside the target
//! directory, and export → import gives back the same names and messages.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use bytes::Bytes;
use clap::Parser;
use pillarbox_store::{Flags, NewMessage, Target, UidRange};
use pillarbox_tests::{LineClient, TestServer, backends};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const PASSWORD: &str = "export pass";

/// Names a client can CREATE (the store takes them), chosen to escape.
fn hostile_names() -> Vec<String> {
    vec![
        "../../x/pwned".into(),
        "..".into(),
        ".".into(),
        ".hidden".into(),
        "back\\slash\\..\\..".into(),
        "C:\\Windows".into(),
        "a.b/c.mbox/..".into(),
        "x/./y/../z".into(),
        "x".into(),
        "x.mbox/y".into(),
        "Café/日本".into(),
        // As long as a file name may be once mapped.
        "L".repeat(200),
    ]
}

/// Runs the real command line with a configuration file for `ts`'s store.
async fn cli(ts: &TestServer, args: &[&str]) -> anyhow::Result<()> {
    let config = ts.db.dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[store]\nurl = {:?}\n",
            ts.running().config.data_dir,
            ts.db.url
        ),
    )
    .unwrap();
    let mut argv = vec!["pillarbox", "--config", config.to_str().unwrap()];
    argv.extend_from_slice(args);
    pillarbox::cli::run(pillarbox::cli::Cli::try_parse_from(argv).unwrap()).await
}

/// Every path under `root`, relative, sorted (symbolic links not followed).
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            out.push(entry.path().strip_prefix(root).unwrap().to_path_buf());
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// Mailbox name → subjects of its messages, for an account.
async fn contents(ts: &TestServer, address: &str) -> BTreeMap<String, Vec<String>> {
    let account = ts
        .directory()
        .account_by_address(address)
        .await
        .unwrap()
        .unwrap();
    let mut out = BTreeMap::new();
    for mailbox in ts.store().list_mailboxes(account.id).await.unwrap() {
        let mut subjects = Vec::new();
        for m in ts
            .store()
            .messages(mailbox.id, UidRange::all())
            .await
            .unwrap()
        {
            let bytes = ts.store().message_bytes(m.message).await.unwrap();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            subjects.push(
                text.lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        out.insert(mailbox.name, subjects);
    }
    out
}

#[tokio::test]
async fn export_stays_in_its_directory_and_import_gives_the_names_back() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        let alice = ts.add_account("alice@example.test", PASSWORD).await;
        ts.add_account("bob@example.test", PASSWORD).await;
        ts.add_account("carol@example.test", PASSWORD).await;
        // The attack as a user makes it: CREATE over IMAP.
        let mut c = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
        c.read_line().await;
        c.send_line(&format!("l LOGIN alice@example.test \"{PASSWORD}\""))
            .await;
        assert!(
            c.read_until(|l| l.starts_with("l "))
                .await
                .last()
                .unwrap()
                .starts_with("l OK")
        );
        for (n, name) in hostile_names().iter().enumerate() {
            let quoted = name.replace('\\', "\\\\");
            c.send_line(&format!("c{n} CREATE \"{quoted}\"")).await;
            let answer = c.read_until(|l| l.starts_with(&format!("c{n} "))).await;
            let answer = answer.last().unwrap();
            assert!(
                answer.contains(" OK") || answer.contains("ALREADYEXISTS"),
                "{name:?}: {answer}"
            );
        }
        c.send_line("z LOGOUT").await;
        // One message in each mailbox, its subject the mailbox's name.
        for mailbox in ts.store().list_mailboxes(alice.id).await.unwrap() {
            let raw = format!(
                "From: a@remote.test\r\nSubject: {}\r\n\r\nbody\r\n",
                mailbox.name
            );
            ts.store()
                .deliver(
                    &NewMessage {
                        raw: Bytes::from(raw),
                        trace_headers: Vec::new(),
                        internal_date: Some(1_700_000_000),
                    },
                    &[Target {
                        account: alice.id,
                        mailbox: mailbox.id,
                        flags: Flags::new(),
                    }],
                )
                .await
                .unwrap();
        }
        let expected = contents(&ts, "alice@example.test").await;

        let sandbox = tempfile::tempdir().unwrap();
        let deep = sandbox.path().join("one/two");
        std::fs::create_dir_all(&deep).unwrap();
        for format in ["mbox", "maildir"] {
            let out = deep.join(format);
            cli(
                &ts,
                &[
                    "export",
                    "alice@example.test",
                    "--format",
                    format,
                    out.to_str().unwrap(),
                ],
            )
            .await
            .unwrap();
            // Nothing next to or above the export directory.
            assert_eq!(
                tree(&deep)
                    .iter()
                    .filter(|p| p.components().count() == 1)
                    .count(),
                if format == "mbox" { 1 } else { 2 },
                "{:?}",
                tree(sandbox.path())
            );
            assert_eq!(
                tree(sandbox.path())
                    .iter()
                    .filter(|p| !p.starts_with("one/two"))
                    .count(),
                1
            );
            for path in tree(&out) {
                assert!(
                    path.components()
                        .all(|c| matches!(c, std::path::Component::Normal(_))),
                    "{path:?}"
                );
            }
        }
        assert!(!sandbox.path().join("one/x").exists());
        assert!(!sandbox.path().join("x").exists());

        // Back in, under another account each: the same names, the same messages.
        let mbox = deep.join("mbox");
        cli(
            &ts,
            &[
                "import",
                "mbox",
                mbox.to_str().unwrap(),
                "--to",
                "bob@example.test",
            ],
        )
        .await
        .unwrap();
        assert_eq!(contents(&ts, "bob@example.test").await, expected);
        let maildir = deep.join("maildir");
        cli(
            &ts,
            &[
                "import",
                "maildir",
                maildir.to_str().unwrap(),
                "--to",
                "carol@example.test",
            ],
        )
        .await
        .unwrap();
        assert_eq!(contents(&ts, "carol@example.test").await, expected);
        ts.stop().await;
    }
}

#[tokio::test]
async fn import_reads_nothing_outside_its_directory() {
    let ts = TestServer::start(pillarbox_tests::Backend::Sqlite).await;
    ts.add_account("dave@example.test", PASSWORD).await;
    let sandbox = tempfile::tempdir().unwrap();
    let secret = sandbox.path().join("secret");
    std::fs::create_dir_all(secret.join("cur")).unwrap();
    std::fs::write(
        secret.join("cur/1.host:2,S"),
        "Subject: outside\r\n\r\nnot for import\r\n",
    )
    .unwrap();
    std::fs::write(
        sandbox.path().join("outside.mbox"),
        "From x Sat Jan  1 00:00:00 2022\r\nSubject: outside\r\n\r\nx\r\n",
    )
    .unwrap();
    // A Maildir and an mbox tree whose links point outside them.
    let maildir = sandbox.path().join("in/maildir");
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    std::os::unix::fs::symlink(&secret, maildir.join(".Linked")).unwrap();
    std::os::unix::fs::symlink(secret.join("cur/1.host:2,S"), maildir.join("cur/2.host:2,"))
        .unwrap();
    let tree = sandbox.path().join("in/mbox");
    std::fs::create_dir_all(&tree).unwrap();
    std::os::unix::fs::symlink(
        sandbox.path().join("outside.mbox"),
        tree.join("Linked.mbox"),
    )
    .unwrap();
    std::os::unix::fs::symlink(sandbox.path(), tree.join("up")).unwrap();
    cli(
        &ts,
        &[
            "import",
            "maildir",
            maildir.to_str().unwrap(),
            "--to",
            "dave@example.test",
        ],
    )
    .await
    .unwrap();
    cli(
        &ts,
        &[
            "import",
            "mbox",
            tree.to_str().unwrap(),
            "--to",
            "dave@example.test",
        ],
    )
    .await
    .unwrap();
    let contents = contents(&ts, "dave@example.test").await;
    assert!(
        contents.values().all(|subjects| subjects.is_empty()),
        "{contents:?}"
    );
    assert!(!contents.contains_key("Linked"));
    ts.stop().await;
}

#[tokio::test]
async fn a_name_too_long_for_a_file_stops_the_export_before_it_writes() {
    let ts = TestServer::start(pillarbox_tests::Backend::Sqlite).await;
    let erin = ts.add_account("erin@example.test", PASSWORD).await;
    ts.store()
        .create_mailbox(erin.id, &"N".repeat(400), None)
        .await
        .unwrap();
    let sandbox = tempfile::tempdir().unwrap();
    let out = sandbox.path().join("out");
    let error = cli(&ts, &["export", "erin@example.test", out.to_str().unwrap()])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("NNNN") && error.contains("rename"),
        "{error}"
    );
    assert!(!out.exists());
    ts.stop().await;
}
