//! Password guessing against a real server, over every way to log in (IMAP,
//! POP3, SMTP AUTH, the lab's HTTP Basic login), which share one throttle
//! keyed per client IP and per account. Each test acts from its own
//! loopback addresses (127.0.0.x), so the IPs it penalises are its own.
//!
//! For each attack: the attacker gets the failure answer, a normal login
//! still works afterwards, memory stays bounded and nothing stored changes.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use base64::Engine;
use pillarbox::config::Config;
use pillarbox_tests::hostile::{RssBound, store_snapshot};
use pillarbox_tests::{Backend, LineClient, TestServer, backends, tcp_from};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "right password";

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Resident memory is the whole test process's: the tests of this file run
/// one at a time, so one attack's bound does not count another's server.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Plaintext logins on the STARTTLS ports (loopback only), so the attack
/// costs the test no TLS handshakes; the lab on, asking for real logins.
fn plaintext(config: &mut Config) {
    for name in ["imap", "pop3", "submission"] {
        if let Some(listener) = config.listener.get_mut(name) {
            listener.allow_plaintext_auth = true;
        }
    }
    config.lab.enabled = true;
}

/// One IMAP LOGIN from `source`: the tagged answer without its tag, or
/// `None` when the server refused or dropped the connection.
async fn imap_login(ts: &TestServer, source: IpAddr, user: &str, password: &str) -> Option<String> {
    let mut c = LineClient::connect_from(source, ts.addr("imap")).await;
    let greeting = c.try_read_line(Duration::from_secs(10)).await?;
    if !greeting.starts_with("* OK") {
        return None;
    }
    c.send_line(&format!("a LOGIN \"{user}\" \"{password}\""))
        .await;
    loop {
        let line = c.try_read_line(Duration::from_secs(60)).await?;
        if let Some(answer) = line.strip_prefix("a ") {
            return Some(answer.trim_end().to_string());
        }
    }
}

/// One POP3 USER/PASS from `source`: the answer to PASS.
async fn pop3_login(ts: &TestServer, source: IpAddr, user: &str, password: &str) -> String {
    let mut c = LineClient::connect_from(source, ts.addr("pop3")).await;
    assert!(c.read_line().await.starts_with("+OK"));
    c.send_line(&format!("USER {user}")).await;
    assert!(c.read_line().await.starts_with("+OK"));
    c.send_line(&format!("PASS {password}")).await;
    let answer = c.try_read_line(Duration::from_secs(60)).await.unwrap();
    answer.trim_end().to_string()
}

/// One SMTP AUTH PLAIN on the submission port from `source`: the reply.
async fn smtp_login(ts: &TestServer, source: IpAddr, user: &str, password: &str) -> String {
    let mut c = LineClient::connect_from(source, ts.addr("submission")).await;
    assert!(c.read_line().await.starts_with("220"));
    c.send_line("EHLO client.test").await;
    c.read_until(|l| l.starts_with("250 ")).await;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    c.send_line(&format!("AUTH PLAIN {token}")).await;
    let answer = c.try_read_line(Duration::from_secs(60)).await.unwrap();
    answer.trim_end().to_string()
}

/// One lab request with HTTP Basic credentials from `source`: the status code.
async fn lab_login(ts: &TestServer, source: IpAddr, user: &str, password: &str) -> u16 {
    let mut tcp = tcp_from(source, ts.addr("http")).await;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    tcp.write_all(
        format!(
            "GET /lab/state HTTP/1.1\r\nHost: lab\r\nConnection: close\r\nAuthorization: Basic {token}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Guesses from `connections` parallel connections from `source` for
/// `seconds`; returns how many guesses the server actually checked (its
/// failure count for that IP).
async fn guess(ts: &Arc<TestServer>, source: IpAddr, connections: usize, seconds: u64) -> u32 {
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for n in 0..connections {
        let (ts, stop, answered) = (ts.clone(), stop.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = LineClient::connect_from(source, ts.addr("imap")).await;
            let Some(greeting) = c.try_read_line(Duration::from_secs(10)).await else {
                return;
            };
            if !greeting.starts_with("* OK") {
                return;
            }
            let mut attempt = 0;
            while !stop.load(Ordering::Relaxed) {
                attempt += 1;
                c.send_line(&format!(
                    "g{attempt} LOGIN victim@example.test guess{n}x{attempt}"
                ))
                .await;
                let tag = format!("g{attempt} ");
                loop {
                    let Some(line) = c.try_read_line(Duration::from_secs(30)).await else {
                        return;
                    };
                    if line.starts_with(&tag) {
                        assert!(line.contains("NO"), "a guess succeeded: {line}");
                        answered.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    if line.starts_with("* BYE") {
                        return;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let checked = ts.directory().throttle().failures(source);
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    eprintln!(
        "{connections} connections from {source} for {seconds} s: {checked} guesses checked, {} answered",
        answered.load(Ordering::Relaxed)
    );
    checked
}

#[tokio::test]
async fn parallel_connections_from_one_ip_guess_no_faster_than_one() {
    let _alone = pillarbox_tests::hostile::alone();
    let _serial = ONE_AT_A_TIME.lock().await;
    let ts = Arc::new(TestServer::start_with(Backend::Sqlite, plaintext).await);
    ts.add_account("alice@example.test", PASSWORD).await;
    ts.add_account("victim@example.test", PASSWORD).await;
    let before = store_snapshot(&ts, &["alice@example.test", "victim@example.test"]).await;
    let rss = RssBound::new(200);
    // Both at once, from two IPs, over the same seconds.
    let (one, fifty) = tokio::join!(guess(&ts, ip(2), 1, 8), guess(&ts, ip(3), 50, 8));
    rss.check("50 parallel guessing connections");
    // One connection makes about 4 guesses in 8 s (answers after 1, 2, 4 s
    // …). Fifty may start with a burst (a mail client opens several
    // connections at once), then share one schedule: before the shared
    // throttle they made over 150.
    assert!(one >= 2, "the single guesser was checked {one} times");
    assert!(
        fifty <= one + 12,
        "50 connections made {fifty} checked guesses in 8 s, one connection {one}"
    );
    // Another account's login from another IP works at once.
    let answer = imap_login(&ts, ip(4), "alice@example.test", PASSWORD).await;
    assert!(answer.unwrap().starts_with("OK"));
    assert_eq!(
        store_snapshot(&ts, &["alice@example.test", "victim@example.test"]).await,
        before
    );
    Arc::into_inner(ts).unwrap().stop().await;
}

#[tokio::test]
async fn success_for_one_account_does_not_clear_anothers_failures() {
    let _alone = pillarbox_tests::hostile::alone();
    let _serial = ONE_AT_A_TIME.lock().await;
    let ts = TestServer::start_with(Backend::Sqlite, |c| {
        plaintext(c);
        c.auth.max_failures_per_account = 3;
    })
    .await;
    ts.add_account("alice@example.test", PASSWORD).await;
    ts.add_account("bob@example.test", PASSWORD).await;
    for _ in 0..2 {
        let answer = imap_login(&ts, ip(10), "bob@example.test", "wrong").await;
        assert!(answer.unwrap().starts_with("NO"));
    }
    let answer = imap_login(&ts, ip(10), "alice@example.test", PASSWORD).await;
    assert!(answer.unwrap().starts_with("OK"));
    assert_eq!(
        ts.directory().throttle().failures(ip(10)),
        2,
        "alice's login kept bob's failures from this IP"
    );
    // So one more failure locks bob: his right password is refused.
    let answer = imap_login(&ts, ip(11), "bob@example.test", "wrong").await;
    let wrong = answer.unwrap();
    let answer = imap_login(&ts, ip(12), "bob@example.test", PASSWORD).await;
    assert_eq!(
        answer.unwrap(),
        wrong,
        "locked: answered as a wrong password"
    );
    // Alice is not locked.
    let answer = imap_login(&ts, ip(13), "alice@example.test", PASSWORD).await;
    assert!(answer.unwrap().starts_with("OK"));
    ts.stop().await;
}

#[tokio::test]
async fn lockout_refuses_every_protocol_alike_then_expires() {
    let _alone = pillarbox_tests::hostile::alone();
    let _serial = ONE_AT_A_TIME.lock().await;
    for backend in backends() {
        let ts = TestServer::start_with(backend, |c| {
            plaintext(c);
            c.auth.max_failures_per_account = 3;
            c.auth.lockout_secs = 5;
        })
        .await;
        ts.add_account("carol@example.test", PASSWORD).await;
        let before = store_snapshot(&ts, &["carol@example.test"]).await;
        // Three failures, each from another IP and over another protocol.
        let imap_wrong = imap_login(&ts, ip(20), "carol@example.test", "wrong")
            .await
            .unwrap();
        let pop3_wrong = pop3_login(&ts, ip(21), "carol@example.test", "wrong").await;
        let smtp_wrong = smtp_login(&ts, ip(22), "carol@example.test", "wrong").await;
        assert!(ts.directory().throttle().is_locked("carol@example.test"));
        let locked_at = Instant::now();
        // Locked: the right password gets the wrong password's answer.
        let (imap, pop3, smtp, lab) = tokio::join!(
            imap_login(&ts, ip(23), "carol@example.test", PASSWORD),
            pop3_login(&ts, ip(24), "carol@example.test", PASSWORD),
            smtp_login(&ts, ip(25), "carol@example.test", PASSWORD),
            lab_login(&ts, ip(26), "carol@example.test", PASSWORD),
        );
        assert!(
            locked_at.elapsed() < Duration::from_secs(3),
            "checked within the lockout"
        );
        assert_eq!(imap.unwrap(), imap_wrong);
        assert_eq!(pop3, pop3_wrong);
        assert_eq!(smtp, smtp_wrong);
        assert_eq!(lab, 401);
        // After the lockout, the right password works again, everywhere.
        tokio::time::sleep(Duration::from_secs(6).saturating_sub(locked_at.elapsed())).await;
        let imap = imap_login(&ts, ip(27), "carol@example.test", PASSWORD)
            .await
            .unwrap();
        assert!(imap.starts_with("OK"), "{imap}");
        assert!(
            pop3_login(&ts, ip(28), "carol@example.test", PASSWORD)
                .await
                .starts_with("+OK")
        );
        assert!(
            smtp_login(&ts, ip(29), "carol@example.test", PASSWORD)
                .await
                .starts_with("235")
        );
        assert_eq!(store_snapshot(&ts, &["carol@example.test"]).await, before);
        ts.stop().await;
    }
}

#[tokio::test]
async fn unknown_and_known_accounts_get_identical_answers() {
    let _alone = pillarbox_tests::hostile::alone();
    let _serial = ONE_AT_A_TIME.lock().await;
    let ts = TestServer::start_with(Backend::Sqlite, plaintext).await;
    ts.add_account("dave@example.test", PASSWORD).await;
    // Each attempt from a fresh IP: the same (first-failure) delay for both.
    let timed = |started: Instant| started.elapsed();
    let started = Instant::now();
    let known = imap_login(&ts, ip(30), "dave@example.test", "wrong")
        .await
        .unwrap();
    let known_time = timed(started);
    let started = Instant::now();
    let unknown = imap_login(&ts, ip(31), "nobody@example.test", "wrong")
        .await
        .unwrap();
    let unknown_time = timed(started);
    assert_eq!(known, unknown);
    assert!(
        known_time.abs_diff(unknown_time) < Duration::from_millis(900),
        "known {known_time:?}, unknown {unknown_time:?}"
    );
    assert_eq!(
        pop3_login(&ts, ip(32), "dave@example.test", "wrong").await,
        pop3_login(&ts, ip(33), "nobody@example.test", "wrong").await
    );
    assert_eq!(
        smtp_login(&ts, ip(34), "dave@example.test", "wrong").await,
        smtp_login(&ts, ip(35), "nobody@example.test", "wrong").await
    );
    assert_eq!(
        lab_login(&ts, ip(36), "dave@example.test", "wrong").await,
        lab_login(&ts, ip(37), "nobody@example.test", "wrong").await
    );
    // Unknown accounts are locked out alike (a lockout does not show that
    // an account exists).
    let ts2 = TestServer::start_with(Backend::Sqlite, |c| {
        plaintext(c);
        c.auth.max_failures_per_account = 2;
    })
    .await;
    for n in 0..2 {
        imap_login(&ts2, ip(40 + n), "ghost@example.test", "wrong").await;
    }
    assert!(ts2.directory().throttle().is_locked("ghost@example.test"));
    ts2.stop().await;
    ts.stop().await;
}

#[tokio::test]
async fn lab_http_basic_logins_count_in_the_same_throttle() {
    let _alone = pillarbox_tests::hostile::alone();
    let _serial = ONE_AT_A_TIME.lock().await;
    let ts = TestServer::start_with(Backend::Sqlite, |c| {
        plaintext(c);
        c.auth.max_failures_per_account = 3;
    })
    .await;
    ts.add_account("erin@example.test", PASSWORD).await;
    assert_eq!(
        lab_login(&ts, ip(50), "erin@example.test", PASSWORD).await,
        200
    );
    for _ in 0..2 {
        assert_eq!(
            lab_login(&ts, ip(51), "erin@example.test", "wrong").await,
            401
        );
    }
    assert_eq!(ts.directory().throttle().failures(ip(51)), 2);
    // The third failure, over IMAP, locks the account for the lab too.
    imap_login(&ts, ip(52), "erin@example.test", "wrong").await;
    assert_eq!(
        lab_login(&ts, ip(53), "erin@example.test", PASSWORD).await,
        401
    );
    ts.stop().await;
}
