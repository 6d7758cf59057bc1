//! POP3 over real sockets and real TLS, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use bytes::Bytes;
use pillarbox_directory::{AccountUpdate, AfterDownload, Pop3List};
use pillarbox_store::{Flags, NewMessage, SpecialUse, SystemFlag, Target, UidRange};
use pillarbox_tests::{Backend, LineClient, TestServer, backends};
use std::time::Duration;

const PASSWORD: &str = "pop pass";

async fn deliver(ts: &TestServer, address: &str, subject: &str, body: &str) {
    let account = ts
        .directory()
        .account_by_address(address)
        .await
        .unwrap()
        .unwrap();
    let inbox = ts
        .store()
        .require_mailbox(account.id, "INBOX")
        .await
        .unwrap();
    let raw =
        format!("From: sender@remote.test\r\nTo: {address}\r\nSubject: {subject}\r\n\r\n{body}");
    let message = NewMessage {
        raw: Bytes::from(raw),
        trace_headers: b"Return-Path: <sender@remote.test>\r\n".to_vec(),
        internal_date: None,
    };
    ts.store()
        .deliver(
            &message,
            &[Target {
                account: account.id,
                mailbox: inbox.id,
                flags: Flags::new(),
            }],
        )
        .await
        .unwrap();
}

async fn pop3s(ts: &TestServer) -> LineClient {
    let mut c = LineClient::connect_tls(ts.addr("pop3s"), &ts.tls_connector()).await;
    assert!(c.read_line().await.starts_with("+OK"));
    c
}

async fn login(ts: &TestServer, address: &str) -> LineClient {
    let mut c = pop3s(ts).await;
    c.send_line(&format!("USER {address}")).await;
    assert!(c.read_line().await.starts_with("+OK"));
    c.send_line(&format!("PASS {PASSWORD}")).await;
    let answer = c.read_line().await;
    assert!(answer.starts_with("+OK"), "{answer}");
    c
}

async fn command(c: &mut LineClient, line: &str) -> String {
    c.send_line(line).await;
    c.read_line().await
}

async fn multiline(c: &mut LineClient, line: &str) -> Vec<String> {
    c.send_line(line).await;
    let first = c.read_line().await;
    assert!(first.starts_with("+OK"), "{line}: {first}");
    let mut lines = c.read_until(|l| l == ".\r\n").await;
    lines.pop();
    lines
}

async fn inbox_count(ts: &TestServer, address: &str) -> usize {
    let account = ts
        .directory()
        .account_by_address(address)
        .await
        .unwrap()
        .unwrap();
    let inbox = ts
        .store()
        .require_mailbox(account.id, "INBOX")
        .await
        .unwrap();
    ts.store()
        .messages(inbox.id, UidRange::all())
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_session_over_implicit_tls_follows_rfc1939() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        deliver(
            &ts,
            "alice@example.test",
            "first",
            "line one\r\n.starts with a dot\r\nlast\r\n",
        )
        .await;
        deliver(&ts, "alice@example.test", "second", "hello\r\n").await;
        let mut c = login(&ts, "alice@example.test").await;

        let stat = command(&mut c, "STAT").await;
        let listing = multiline(&mut c, "LIST").await;
        let sizes: Vec<u64> = listing
            .iter()
            .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            stat,
            format!("+OK 2 {}\r\n", sizes.iter().sum::<u64>()),
            "{backend:?}"
        );

        // RETR: the octet count is what is sent before dot-stuffing, CRLF endings.
        let lines = multiline(&mut c, "RETR 1").await;
        assert!(
            lines.contains(&"..starts with a dot\r\n".to_string()),
            "dot-stuffed: {lines:?}"
        );
        let unstuffed: String = lines
            .iter()
            .map(|l| {
                l.strip_prefix('.')
                    .filter(|_| l.starts_with(".."))
                    .unwrap_or(l)
            })
            .collect();
        assert_eq!(unstuffed.len() as u64, sizes[0]);
        assert!(unstuffed.starts_with("Return-Path: <sender@remote.test>\r\n"));

        let top = multiline(&mut c, "TOP 1 1").await;
        assert_eq!(
            top.last().unwrap(),
            "line one\r\n",
            "headers, blank line and one body line: {top:?}"
        );
        let uidl = multiline(&mut c, "UIDL").await;
        assert_eq!(uidl.len(), 2);
        assert_ne!(
            uidl[0].split_whitespace().nth(1),
            uidl[1].split_whitespace().nth(1)
        );

        assert!(command(&mut c, "DELE 1").await.starts_with("+OK"));
        assert!(
            command(&mut c, "DELE 1").await.starts_with("-ERR"),
            "twice is refused"
        );
        assert!(command(&mut c, "RETR 1").await.starts_with("-ERR"));
        assert_eq!(
            command(&mut c, "STAT").await,
            format!("+OK 1 {}\r\n", sizes[1])
        );
        assert!(command(&mut c, "RSET").await.starts_with("+OK"));
        assert!(command(&mut c, "STAT").await.starts_with("+OK 2 "));
        assert!(command(&mut c, "DELE 2").await.starts_with("+OK"));
        assert_eq!(
            inbox_count(&ts, "alice@example.test").await,
            2,
            "nothing deleted before QUIT"
        );

        let account = ts
            .directory()
            .account_by_address("alice@example.test")
            .await
            .unwrap()
            .unwrap();
        let inbox = ts
            .store()
            .require_mailbox(account.id, "INBOX")
            .await
            .unwrap();
        assert!(command(&mut c, "QUIT").await.starts_with("+OK"));
        assert!(c.is_closed().await);
        // UPDATE: the store saw an expunge with a new MODSEQ, as IMAP will report it.
        let expunged = ts
            .store()
            .expunged_since(inbox.id, inbox.highest_modseq)
            .await
            .unwrap();
        assert_eq!(expunged.len(), 1, "{backend:?}");
        assert!(expunged[0].1 > inbox.highest_modseq);
        assert_eq!(inbox_count(&ts, "alice@example.test").await, 1);
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stls_upgrades_and_passwords_need_tls() {
    let ts = TestServer::start(Backend::Sqlite).await;
    ts.add_account("alice@example.test", PASSWORD).await;
    let mut c = LineClient::connect(ts.addr("pop3")).await;
    assert!(c.read_line().await.starts_with("+OK"));
    let capa = multiline(&mut c, "CAPA").await;
    assert!(capa.contains(&"STLS\r\n".to_string()), "{capa:?}");
    assert!(
        !capa.contains(&"USER\r\n".to_string()),
        "no USER before TLS: {capa:?}"
    );
    assert!(
        command(&mut c, "USER alice@example.test")
            .await
            .starts_with("-ERR [AUTH]")
    );
    assert!(command(&mut c, "STLS").await.starts_with("+OK"));
    let mut c = c.start_tls(&ts.tls_connector()).await;
    let capa = multiline(&mut c, "CAPA").await;
    for expected in [
        "TOP",
        "UIDL",
        "USER",
        "SASL PLAIN",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
    ] {
        assert!(
            capa.contains(&format!("{expected}\r\n")),
            "{expected} in {capa:?}"
        );
    }
    assert!(!capa.contains(&"STLS\r\n".to_string()));
    // AUTH PLAIN with an initial response (RFC 5034): \0alice@example.test\0pop pass
    let token = "AGFsaWNlQGV4YW1wbGUudGVzdABwb3AgcGFzcw==";
    assert!(
        command(&mut c, &format!("AUTH PLAIN {token}"))
            .await
            .starts_with("+OK")
    );
    assert!(command(&mut c, "QUIT").await.starts_with("+OK"));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_readable_err_and_the_session_goes_on() {
    let ts = TestServer::start(Backend::Sqlite).await;
    ts.add_account("alice@example.test", PASSWORD).await;
    deliver(&ts, "alice@example.test", "keep me", "body\r\n").await;
    let mut c = pop3s(&ts).await;
    assert!(
        command(&mut c, "STAT")
            .await
            .starts_with("-ERR not logged in")
    );
    assert!(
        command(&mut c, "PASS x")
            .await
            .starts_with("-ERR send USER first")
    );
    assert!(
        command(&mut c, "AUTH PLAIN !!!notbase64")
            .await
            .starts_with("-ERR malformed")
    );
    assert!(
        command(&mut c, "USER alice@example.test")
            .await
            .starts_with("+OK")
    );
    let started = std::time::Instant::now();
    assert!(
        command(&mut c, "PASS wrong")
            .await
            .starts_with("-ERR [AUTH]")
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "failed logins are delayed"
    );
    let mut c = login(&ts, "alice@example.test").await;
    for bad in [
        "RETR 0", "RETR -1", "RETR x", "RETR 2", "TOP 1", "LIST 99", "DELE", "FROB", "APOP a b",
    ] {
        let answer = command(&mut c, bad).await;
        assert!(
            answer.starts_with("-ERR ") && answer.len() > 8,
            "{bad}: {answer}"
        );
    }
    let long = format!("NOOP {}", "x".repeat(300));
    assert!(
        command(&mut c, &long)
            .await
            .starts_with("-ERR line too long")
    );
    assert!(
        command(&mut c, "NOOP").await.starts_with("+OK"),
        "the session goes on"
    );
    assert!(command(&mut c, "QUIT").await.starts_with("+OK"));
    assert_eq!(
        inbox_count(&ts, "alice@example.test").await,
        1,
        "the mailbox is untouched"
    );
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_deletes_nothing_and_the_lock_is_exclusive() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        deliver(&ts, "alice@example.test", "one", "x\r\n").await;
        let mut first = login(&ts, "alice@example.test").await;
        // A second POP3 session of the same account is refused while the first holds the lock.
        let mut second = pop3s(&ts).await;
        command(&mut second, "USER alice@example.test").await;
        let answer = command(&mut second, &format!("PASS {PASSWORD}")).await;
        assert!(answer.starts_with("-ERR [IN-USE]"), "{backend:?}: {answer}");
        // The store (what IMAP uses) keeps working meanwhile.
        deliver(&ts, "alice@example.test", "two", "y\r\n").await;
        assert!(command(&mut first, "DELE 1").await.starts_with("+OK"));
        drop(first);
        // The lock is released with the connection; nothing was deleted.
        let mut third = None;
        for _ in 0..50 {
            let mut c = pop3s(&ts).await;
            command(&mut c, "USER alice@example.test").await;
            if command(&mut c, &format!("PASS {PASSWORD}"))
                .await
                .starts_with("+OK")
            {
                third = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut third = third.expect("lock released after the connection dropped");
        assert!(
            command(&mut third, "STAT").await.starts_with("+OK 2 "),
            "{backend:?}"
        );
        command(&mut third, "QUIT").await;
        assert_eq!(inbox_count(&ts, "alice@example.test").await, 2);
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_mark_seen_new_listing_protected_deletes_and_archive() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        let alice = ts.add_account("alice@example.test", PASSWORD).await;
        let inbox = ts.store().require_mailbox(alice.id, "INBOX").await.unwrap();
        deliver(&ts, "alice@example.test", "one", "x\r\n").await;
        deliver(&ts, "alice@example.test", "two", "y\r\n").await;
        let set = |update: AccountUpdate| {
            let ts = &ts;
            async move {
                ts.directory()
                    .update_account("alice@example.test", &update)
                    .await
                    .unwrap()
            }
        };

        // mark-seen + new: RETR sets \Seen (IMAP sees it); the next session lists only the rest.
        set(AccountUpdate {
            after_download: Some(AfterDownload::MarkSeen),
            pop3_list: Some(Pop3List::New),
            ..Default::default()
        })
        .await;
        // A download in a session that ends without QUIT is not recorded:
        // the client may not have kept it, so it is listed again.
        let mut c = login(&ts, "alice@example.test").await;
        multiline(&mut c, "RETR 1").await;
        drop(c);
        let mut c = loop {
            let mut c = pop3s(&ts).await;
            command(&mut c, "USER alice@example.test").await;
            if command(&mut c, &format!("PASS {PASSWORD}"))
                .await
                .starts_with("+OK")
            {
                break c;
            }
            // The dropped session's lock goes when the server notices.
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            command(&mut c, "STAT").await.starts_with("+OK 2 "),
            "{backend:?}: nothing recorded without QUIT"
        );
        multiline(&mut c, "RETR 1").await;
        command(&mut c, "QUIT").await;
        let entries = ts
            .store()
            .messages(inbox.id, UidRange::all())
            .await
            .unwrap();
        assert!(entries[0].flags.contains(SystemFlag::Seen), "{backend:?}");
        assert!(!entries[1].flags.contains(SystemFlag::Seen));
        let mut c = login(&ts, "alice@example.test").await;
        assert!(
            command(&mut c, "STAT").await.starts_with("+OK 1 "),
            "new mode lists only the undownloaded"
        );
        command(&mut c, "QUIT").await;

        // honour-deletes off: DELE is accepted, the message stays.
        set(AccountUpdate {
            honour_deletes: Some(false),
            pop3_list: Some(Pop3List::All),
            after_download: Some(AfterDownload::Keep),
            ..Default::default()
        })
        .await;
        let mut c = login(&ts, "alice@example.test").await;
        assert!(command(&mut c, "DELE 1").await.starts_with("+OK"));
        command(&mut c, "QUIT").await;
        assert_eq!(
            inbox_count(&ts, "alice@example.test").await,
            2,
            "{backend:?}: protected deletes"
        );

        // archive: downloaded messages move to Archive at QUIT.
        set(AccountUpdate {
            honour_deletes: Some(true),
            after_download: Some(AfterDownload::Archive),
            ..Default::default()
        })
        .await;
        let mut c = login(&ts, "alice@example.test").await;
        multiline(&mut c, "RETR 2").await;
        command(&mut c, "QUIT").await;
        let archive = ts
            .store()
            .special_mailbox(alice.id, SpecialUse::Archive)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ts.store()
                .messages(archive.id, UidRange::all())
                .await
                .unwrap()
                .len(),
            1,
            "{backend:?}"
        );
        assert_eq!(inbox_count(&ts, "alice@example.test").await, 1);

        // delete: downloads are deleted at QUIT.
        set(AccountUpdate {
            after_download: Some(AfterDownload::Delete),
            ..Default::default()
        })
        .await;
        let mut c = login(&ts, "alice@example.test").await;
        multiline(&mut c, "RETR 1").await;
        command(&mut c, "QUIT").await;
        assert_eq!(
            inbox_count(&ts, "alice@example.test").await,
            0,
            "{backend:?}"
        );

        // POP3 switched off: a readable refusal.
        set(AccountUpdate {
            pop3: Some(false),
            ..Default::default()
        })
        .await;
        let mut c = pop3s(&ts).await;
        command(&mut c, "USER alice@example.test").await;
        assert_eq!(
            command(&mut c, &format!("PASS {PASSWORD}")).await,
            "-ERR [AUTH] POP3 access is disabled for this account\r\n"
        );
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidl_survives_a_restart_and_imap_side_expunges_are_reported() {
    for backend in backends() {
        let mut ts = TestServer::start(backend).await;
        let alice = ts.add_account("alice@example.test", PASSWORD).await;
        deliver(&ts, "alice@example.test", "one", "x\r\n").await;
        deliver(&ts, "alice@example.test", "two", "y\r\n").await;
        let mut c = login(&ts, "alice@example.test").await;
        let before = multiline(&mut c, "UIDL").await;
        // Another client expunges message 1 during the session.
        let inbox = ts.store().require_mailbox(alice.id, "INBOX").await.unwrap();
        let first = ts
            .store()
            .messages(inbox.id, UidRange::all())
            .await
            .unwrap()[0]
            .uid;
        ts.store().expunge(inbox.id, &[first]).await.unwrap();
        let answer = command(&mut c, "RETR 1").await;
        assert!(
            answer.starts_with("-ERR") && answer.contains("deleted by another client"),
            "{answer}"
        );
        assert!(
            command(&mut c, "STAT").await.starts_with("+OK 2 "),
            "STAT stays as at login"
        );
        command(&mut c, "QUIT").await;

        ts.restart().await;
        let mut c = login(&ts, "alice@example.test").await;
        let after = multiline(&mut c, "UIDL").await;
        assert_eq!(after.len(), 1);
        let id = |l: &String| l.split_whitespace().nth(1).unwrap().to_string();
        assert_eq!(
            id(&after[0]),
            id(&before[1]),
            "{backend:?}: the same message keeps its UIDL"
        );
        command(&mut c, "QUIT").await;
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_mode_lists_the_last_30_days_downloaded_or_not() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        let alice = ts.add_account("alice@example.test", PASSWORD).await;
        let inbox = ts.store().require_mailbox(alice.id, "INBOX").await.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        for (subject, age_days) in [("old", 45), ("fresh", 2)] {
            let message = NewMessage {
                raw: Bytes::from(format!("Subject: {subject}\r\n\r\nx\r\n")),
                trace_headers: Vec::new(),
                internal_date: Some(now - age_days * 86_400),
            };
            ts.store()
                .deliver(
                    &message,
                    &[Target {
                        account: alice.id,
                        mailbox: inbox.id,
                        flags: Flags::new(),
                    }],
                )
                .await
                .unwrap();
        }
        ts.directory()
            .update_account(
                "alice@example.test",
                &AccountUpdate {
                    pop3_list: Some(Pop3List::Recent),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for _ in 0..2 {
            // Downloading does not hide a message in recent mode.
            let mut c = login(&ts, "alice@example.test").await;
            assert!(
                command(&mut c, "STAT").await.starts_with("+OK 1 "),
                "{backend:?}"
            );
            let lines = multiline(&mut c, "RETR 1").await;
            assert!(lines.contains(&"Subject: fresh\r\n".to_string()));
            command(&mut c, "QUIT").await;
        }
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_is_logged_out_without_update() {
    let ts = TestServer::start_with(Backend::Sqlite, |c| {
        c.listener.get_mut("pop3s").unwrap().idle_timeout_secs = Some(1);
    })
    .await;
    ts.add_account("alice@example.test", PASSWORD).await;
    deliver(&ts, "alice@example.test", "stays", "x\r\n").await;
    let mut c = login(&ts, "alice@example.test").await;
    assert!(command(&mut c, "DELE 1").await.starts_with("+OK"));
    let answer = c.read_line().await;
    assert!(answer.starts_with("-ERR autologout"), "{answer}");
    assert!(c.is_closed().await);
    assert_eq!(
        inbox_count(&ts, "alice@example.test").await,
        1,
        "no UPDATE after an autologout"
    );
    ts.stop().await;
}
