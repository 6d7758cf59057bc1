//! Hostile POP3 clients against a real server: long lines, garbage,
//! commands in the wrong state, password guessing. After each attack the
//! attacker got `-ERR` (or was disconnected), a normal client still logs in
//! and runs STAT, memory stayed bounded and nothing stored changed.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use bytes::Bytes;
use pillarbox::config::Config;
use pillarbox_store::{Flags, NewMessage, Target};
use pillarbox_tests::hostile::{RssBound, store_snapshot};
use pillarbox_tests::{Backend, LineClient, TestServer, backends};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "pop pass";

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Resident memory is the whole test process's: the tests of this file run
/// one at a time, so one attack's bound does not count another's server.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn plaintext(config: &mut Config) {
    if let Some(listener) = config.listener.get_mut("pop3") {
        listener.allow_plaintext_auth = true;
    }
}

/// A server with alice and one message in her INBOX.
async fn server(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let ts = TestServer::start_with(backend, |c| {
        plaintext(c);
        tweak(c);
    })
    .await;
    ts.add_account(ALICE, PASSWORD).await;
    deliver_to_alice(
        &ts,
        Bytes::from_static(b"From: a@remote.test\r\nSubject: hello\r\n\r\nbody\r\n"),
    )
    .await;
    ts
}

/// Stores `raw` in alice's INBOX, as a delivery would.
async fn deliver_to_alice(ts: &TestServer, raw: Bytes) {
    let alice = ts
        .directory()
        .account_by_address(ALICE)
        .await
        .unwrap()
        .unwrap();
    let inbox = ts.store().require_mailbox(alice.id, "INBOX").await.unwrap();
    ts.store()
        .deliver(
            &NewMessage {
                raw,
                trace_headers: Vec::new(),
                internal_date: None,
            },
            &[Target {
                account: alice.id,
                mailbox: inbox.id,
                flags: Flags::new(),
            }],
        )
        .await
        .unwrap();
}

async fn connect(ts: &TestServer, source: IpAddr) -> LineClient {
    let mut c = LineClient::connect_from(source, ts.addr("pop3")).await;
    let greeting = c.read_line().await;
    assert!(greeting.starts_with("+OK"), "{greeting}");
    c
}

/// What must hold after every attack: a normal client (from another IP)
/// logs in and sees alice's one message; nothing stored changed.
async fn still_serves(ts: &TestServer, before: &str, source: IpAddr) {
    let mut c = connect(ts, source).await;
    c.send_line(&format!("USER {ALICE}")).await;
    assert!(c.read_line().await.starts_with("+OK"));
    c.send_line(&format!("PASS {PASSWORD}")).await;
    let answer = c.read_line().await;
    assert!(answer.starts_with("+OK"), "{answer}");
    c.send_line("STAT").await;
    let stat = c.read_line().await;
    assert!(stat.starts_with("+OK 1 "), "{stat}");
    c.send_line("QUIT").await;
    assert!(c.read_line().await.starts_with("+OK"));
    assert_eq!(store_snapshot(ts, &[ALICE]).await, before);
}

#[tokio::test]
async fn long_lines_are_refused_without_buffering_them() {
    let _alone = pillarbox_tests::hostile::alone();
    let _serial = ONE_AT_A_TIME.lock().await;
    for backend in backends() {
        let ts = server(backend, |_| {}).await;
        let before = store_snapshot(&ts, &[ALICE]).await;
        let rss = RssBound::new(64);
        let mut c = connect(&ts, ip(60)).await;
        // Over the 255-octet command limit, then far over any buffer.
        c.send_line(&format!("USER {}", "a".repeat(300))).await;
        assert!(c.read_line().await.starts_with("-ERR"));
        let mut attacker = connect(&ts, ip(60)).await;
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..32 {
            attacker.send(&chunk).await;
        }
        attacker.send(b"\r\nNOOP\r\n").await;
        // Refused (or cut off); either way nothing was kept.
        if let Some(line) = attacker.try_read_line(Duration::from_secs(10)).await {
            assert!(line.starts_with("-ERR"), "{line}");
        }
        rss.check("32 MiB in one POP3 line");
        // The first client's session goes on.
        c.send_line("CAPA").await;
        assert!(c.read_until(|l| l == ".\r\n").await[0].starts_with("+OK"));
        still_serves(&ts, &before, ip(61)).await;
        ts.stop().await;
    }
}

#[tokio::test]
async fn garbage_and_commands_in_the_wrong_state_get_errors() {
    let _alone = pillarbox_tests::hostile::alone();
    let _serial = ONE_AT_A_TIME.lock().await;
    for backend in backends() {
        let ts = server(backend, |_| {}).await;
        let before = store_snapshot(&ts, &[ALICE]).await;
        let rss = RssBound::new(32);
        let mut c = connect(&ts, ip(62)).await;
        for line in [
            &b"\x00\x01\x02\xff\xfe\r\n"[..],
            b"RETR 1\r\n",
            b"DELE 1\r\n",
            b"STAT\r\n",
            b"LIST\r\n",
            b"TOP 1 99999999999\r\n",
            b"PASS before user\r\n",
            b"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n",
            b"AUTH PLAIN !!!notbase64!!!\r\n",
            b"AUTH CRAM-MD5\r\n",
            b"\r\n",
            b"   \r\n",
            b"RETR -1\r\n",
        ] {
            c.send(line).await;
            let answer = c.read_line().await;
            assert!(
                answer.starts_with("-ERR"),
                "{:?}: {answer}",
                String::from_utf8_lossy(line)
            );
        }
        // Logged in, the AUTHORIZATION commands are wrong in turn; a
        // message number out of range is refused and deletes nothing.
        c.send_line(&format!("USER {ALICE}")).await;
        assert!(c.read_line().await.starts_with("+OK"));
        c.send_line(&format!("PASS {PASSWORD}")).await;
        assert!(c.read_line().await.starts_with("+OK"));
        // (Fewer than the 20 bad commands that end a session.)
        for line in ["USER bob", "PASS x", "STLS", "DELE 2", "RETR 0"] {
            c.send_line(line).await;
            let answer = c.read_line().await;
            assert!(answer.starts_with("-ERR"), "{line}: {answer}");
        }
        // RSET + QUIT: nothing marked, nothing deleted.
        c.send_line("QUIT").await;
        assert!(c.read_line().await.starts_with("+OK"));
        rss.check("POP3 garbage");
        still_serves(&ts, &before, ip(63)).await;
        ts.stop().await;
    }
}

#[tokio::test]
async fn guessing_through_user_pass_is_throttled_per_ip() {
    let _alone = pillarbox_tests::hostile::alone();
    let _serial = ONE_AT_A_TIME.lock().await;
    let ts = Arc::new(server(Backend::Sqlite, |_| {}).await);
    let before = store_snapshot(&ts, &[ALICE]).await;
    let rss = RssBound::new(128);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for n in 0..20 {
        let (ts, stop) = (ts.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = LineClient::connect_from(ip(64), ts.addr("pop3")).await;
            if c.try_read_line(Duration::from_secs(10)).await.is_none() {
                return;
            }
            let mut attempt = 0;
            while !stop.load(Ordering::Relaxed) {
                attempt += 1;
                c.send_line(&format!("USER {ALICE}")).await;
                let Some(answer) = c.try_read_line(Duration::from_secs(30)).await else {
                    return;
                };
                if !answer.starts_with("+OK") {
                    return;
                }
                c.send_line(&format!("PASS guess{n}x{attempt}")).await;
                let Some(answer) = c.try_read_line(Duration::from_secs(30)).await else {
                    return;
                };
                assert!(answer.starts_with("-ERR"), "a guess succeeded: {answer}");
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let checked = ts.directory().throttle().failures(ip(64));
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    // A burst, then one schedule for the IP (1 s, 2 s, 4 s …): 20
    // connections used to make 20 guesses at each step.
    assert!(checked <= 16, "{checked} guesses checked in 6 s");
    rss.check("20 POP3 guessers");
    // The guesses may have locked alice (10 failures); another account
    // logs in from another IP at once.
    ts.add_account("bob@example.test", PASSWORD).await;
    let mut c = connect(&ts, ip(65)).await;
    c.send_line("USER bob@example.test").await;
    assert!(c.read_line().await.starts_with("+OK"));
    c.send_line(&format!("PASS {PASSWORD}")).await;
    assert!(c.read_line().await.starts_with("+OK"));
    assert_eq!(store_snapshot(&ts, &[ALICE]).await, before);
    Arc::into_inner(ts).unwrap().stop().await;
}

#[tokio::test]
async fn a_session_ends_after_too_many_bad_commands() {
    let _alone = pillarbox_tests::hostile::alone();
    let _serial = ONE_AT_A_TIME.lock().await;
    for backend in backends() {
        let ts = server(backend, |c| {
            if let Some(pop3) = c.listener.get_mut("pop3") {
                pop3.max_errors = 5;
            }
        })
        .await;
        let before = store_snapshot(&ts, &[ALICE]).await;
        let mut c = connect(&ts, ip(66)).await;
        // Garbage, a wrong state, a long line, a failed login: all count.
        for line in [
            "XYZZY",
            "STAT",
            &"L".repeat(300),
            "USER nobody@example.test",
        ] {
            c.send_line(line).await;
            assert!(
                c.read_line()
                    .await
                    .starts_with(if line.starts_with("USER") {
                        "+OK"
                    } else {
                        "-ERR"
                    })
            );
        }
        c.send_line("PASS wrong").await;
        let answer = c.try_read_line(Duration::from_secs(30)).await.unwrap();
        assert!(answer.starts_with("-ERR [AUTH]"), "{answer}");
        // The fifth bad command is answered, then the final answer.
        c.send_line("XYZZY").await;
        assert!(c.read_line().await.starts_with("-ERR unknown command"));
        let last = c.read_line().await;
        assert_eq!(last, "-ERR too many errors\r\n");
        assert!(c.is_closed().await, "the session ended");
        // Ten thousand garbage lines get at most the limit's answers.
        let mut flood = connect(&ts, ip(67)).await;
        flood.send(&b"garbage\r\n".repeat(10_000)).await;
        let mut answers = 0;
        while let Some(line) = flood.try_read_line(Duration::from_secs(5)).await {
            assert!(line.starts_with("-ERR"), "{line}");
            answers += 1;
        }
        assert_eq!(answers, 6, "five errors, then the final answer");
        still_serves(&ts, &before, ip(68)).await;
        ts.stop().await;
    }
}

#[tokio::test]
async fn a_client_trickling_bytes_before_login_is_cut_off_at_the_login_deadline() {
    let _alone = pillarbox_tests::hostile::alone();
    let _serial = ONE_AT_A_TIME.lock().await;
    let ts = server(Backend::Sqlite, |c| {
        if let Some(pop3) = c.listener.get_mut("pop3") {
            pop3.login_timeout_secs = Some(2);
        }
    })
    .await;
    let before = store_snapshot(&ts, &[ALICE]).await;
    let mut c = connect(&ts, ip(69)).await;
    let started = std::time::Instant::now();
    // One byte every 500 ms: never a whole line within 2 s.
    let mut closed = false;
    for byte in b"USER alice@example.test".iter().cycle().take(60) {
        c.send(&[*byte]).await;
        if let Some(line) = c.try_read_line(Duration::from_millis(500)).await {
            assert!(line.starts_with("-ERR"), "{line}");
            closed = c.is_closed().await;
            break;
        }
    }
    assert!(closed, "the trickling client was disconnected");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "held for {:?}",
        started.elapsed()
    );
    still_serves(&ts, &before, ip(70)).await;
    ts.stop().await;
}

#[tokio::test]
async fn a_server_side_failure_is_answered_with_a_reference_not_its_text() {
    let _alone = pillarbox_tests::hostile::alone();
    let _one = ONE_AT_A_TIME.lock().await;
    // With SQLite, messages over 128 KiB are files: removing the file makes
    // reading the message fail inside the server.
    let ts = server(Backend::Sqlite, |_| {}).await;
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(200 * 1024));
    deliver_to_alice(&ts, Bytes::from(big)).await;
    let blobs = ts.running().config.data_dir.join("blobs");
    let mut removed = Vec::new();
    let mut pending = vec![blobs.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.path().is_dir() {
                pending.push(entry.path());
            } else {
                removed.push(entry.file_name().to_string_lossy().into_owned());
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
    }
    assert_eq!(removed.len(), 1, "one message file under {blobs:?}");

    let mut c = connect(&ts, ip(40)).await;
    c.send_line(&format!("USER {ALICE}")).await;
    c.read_line().await;
    c.send_line(&format!("PASS {PASSWORD}")).await;
    assert!(c.read_line().await.starts_with("+OK"));
    c.send_line("RETR 2").await;
    let answer = c.read_line().await;
    let answer = answer.trim_end();
    let reference = answer
        .strip_prefix("-ERR [SYS/TEMP] cannot read the message now, try again shortly (reference ")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(reference.len(), 8, "{answer}");
    assert!(reference.bytes().all(|b| b.is_ascii_hexdigit()), "{answer}");
    assert!(
        !answer.contains(&removed[0]) && !answer.contains("blob"),
        "{answer}"
    );
    // The session goes on: the other message is still served.
    c.send_line("RETR 1").await;
    let answer = c.read_line().await;
    assert!(answer.starts_with("+OK"), "{answer}");
    let body = c.read_until(|l| l.trim_end() == ".").await;
    assert!(
        body.iter().any(|l| l.trim_end() == "Subject: hello"),
        "{body:?}"
    );
    c.send_line("QUIT").await;
    assert!(c.read_line().await.starts_with("+OK"));
    ts.stop().await;
}
