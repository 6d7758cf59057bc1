//! Hostile IMAP clients against a real server over real sockets (issue 16).
//! For every attack: the server is still up and serves a normal login, its
//! resident memory stayed under a stated bound, the attacker got a protocol
//! error or was disconnected, and nothing stored changed.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_tests::hostile::{RssBound, store_snapshot};
use pillarbox_tests::imap::{command as cmd, last};
use pillarbox_tests::{LineClient, TestServer, backends};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "imap pass";
const ALICE: &str = "alice@example.test";

/// Alice's logged-in session over implicit TLS.
async fn imaps(ts: &TestServer) -> LineClient {
    pillarbox_tests::imap::login(ts, ALICE, PASSWORD).await
}

/// After an attack: a normal client logs in and selects INBOX, and the
/// store is as it was.
async fn still_serves(ts: &TestServer, before: &str) {
    let mut c = imaps(ts).await;
    let lines = cmd(&mut c, "s SELECT INBOX").await;
    assert!(last(&lines).starts_with("s OK"), "{lines:?}");
    let lines = cmd(&mut c, "t LOGOUT").await;
    assert!(last(&lines).starts_with("t OK"), "{lines:?}");
    assert_eq!(
        store_snapshot(ts, &[ALICE]).await,
        before,
        "nothing stored changed"
    );
}

/// A server with alice and two messages in her INBOX.
async fn server(backend: pillarbox_tests::Backend) -> (TestServer, String) {
    server_with(backend, |_| {}).await
}

async fn server_with(
    backend: pillarbox_tests::Backend,
    tweak: impl FnOnce(&mut pillarbox::config::Config),
) -> (TestServer, String) {
    let ts = TestServer::start_with(backend, tweak).await;
    ts.add_account(ALICE, PASSWORD).await;
    let mut c = imaps(&ts).await;
    for subject in ["Lunch on Friday", "Quarterly report"] {
        let message = format!(
            "From: Ann <ann@remote.test>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\nHello.\r\n"
        );
        c.send_line(&format!("a APPEND INBOX {{{}+}}", message.len()))
            .await;
        c.send(message.as_bytes()).await;
        c.send(b"\r\n").await;
        let lines = c.read_until(|l| l.starts_with("a ")).await;
        assert!(last(&lines).starts_with("a OK"), "{lines:?}");
    }
    let lines = cmd(&mut c, "b CREATE Work/Projects").await;
    assert!(last(&lines).starts_with("b OK"), "{lines:?}");
    let before = store_snapshot(&ts, &[ALICE]).await;
    (ts, before)
}

/// Writes `head`, then `filler` octets of `x`, to a raw connection, stopping
/// quietly when the server closes it; returns how many filler octets went
/// out. The filler is written from one small buffer: the test process is
/// the server's process, and its memory is what is measured.
async fn send_ignoring_close(
    stream: &mut tokio::net::TcpStream,
    head: &[u8],
    filler: usize,
) -> usize {
    if !write_within(stream, head).await {
        return 0;
    }
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < filler {
        let n = chunk.len().min(filler - sent);
        if !write_within(stream, &chunk[..n]).await {
            break;
        }
        sent += n;
    }
    sent
}

/// Writes all of `bytes` within 10 s; false when the server closed.
async fn write_within(stream: &mut tokio::net::TcpStream, bytes: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(10), stream.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

/// Everything the server sends until it closes or goes quiet for `quiet`.
async fn read_all(stream: &mut tokio::net::TcpStream, quiet: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(Ok(n)) = tokio::time::timeout(quiet, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_with_60000_stars_answers_and_others_are_unaffected() {
    let _alone = pillarbox_tests::hostile::alone();
    for backend in backends() {
        let (ts, before) = server(backend).await;
        let mut bystander = imaps(&ts).await;
        let bound = RssBound::new(64);
        let mut c = imaps(&ts).await;
        // Issue 16 item 1: this overflowed the stack and ended the process.
        let lines = cmd(&mut c, &format!("a LIST \"\" \"{}\"", "*".repeat(60_000))).await;
        assert!(last(&lines).starts_with("a OK"), "{:?}", last(&lines));
        assert!(
            lines.iter().any(|l| l.contains("\"Work/Projects\"")),
            "{lines:?}"
        );
        // Patterns a backtracking matcher needs exponential time for.
        let lines = cmd(&mut c, &format!("b LIST \"\" \"{}x\"", "*%".repeat(30_000))).await;
        assert!(last(&lines).starts_with("b OK"), "{:?}", last(&lines));
        assert_eq!(lines.len(), 1, "no name ends in x: {lines:?}");
        let lines = cmd(&mut c, &format!("c LIST \"\" \"{}\"", "%*a".repeat(600))).await;
        assert!(last(&lines).starts_with("c OK"), "{:?}", last(&lines));
        let lines = cmd(&mut c, &format!("d LSUB \"\" \"{}\"", "*".repeat(60_000))).await;
        assert!(last(&lines).starts_with("d OK"), "{:?}", last(&lines));
        bound.check("LIST with 60,000 wildcards");
        // The other session was not disturbed.
        let lines = cmd(&mut bystander, "e NOOP").await;
        assert!(last(&lines).starts_with("e OK"), "{lines:?}");
        still_serves(&ts, &before).await;
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_literal_before_login_is_refused_before_it_is_read() {
    let _alone = pillarbox_tests::hostile::alone();
    for backend in backends() {
        let (ts, before) = server(backend).await;
        let bound = RssBound::new(32);
        // A synchronizing literal: refused without a continuation request.
        let mut c = LineClient::connect(ts.addr("imap")).await;
        c.read_line().await;
        c.send_line("a APPEND INBOX {52428800}").await;
        let answer = c.read_line().await;
        assert!(
            answer.starts_with("a BAD") || answer.starts_with("a NO"),
            "no '+' before login: {answer}"
        );
        // The connection is still usable.
        let lines = cmd(&mut c, "b NOOP").await;
        assert!(last(&lines).starts_with("b OK"), "{lines:?}");
        // Non-synchronizing ones, from several connections at once: the
        // server must not take 50 MB from each.
        let mut attackers = Vec::new();
        for _ in 0..4 {
            attackers.push(tokio::spawn({
                let addr = ts.addr("imap");
                async move {
                    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let head = b"a APPEND INBOX {52428800+}\r\n";
                    let sent = send_ignoring_close(&mut stream, head, 52_428_800).await;
                    let answer = read_all(&mut stream, Duration::from_secs(3)).await;
                    (sent, answer)
                }
            }));
        }
        for attacker in attackers {
            let (sent, answer) = attacker.await.unwrap();
            assert!(
                answer.contains("a BAD") || answer.contains("a NO") || sent < 52_428_800,
                "refused or disconnected ({sent} octets sent): {answer:?}"
            );
            assert!(!answer.contains("\r\n+ "), "{answer:?}");
        }
        bound.check("50 MB APPEND literals before login, 4 connections");
        still_serves(&ts, &before).await;
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_literals_in_one_command_are_refused() {
    let _alone = pillarbox_tests::hostile::alone();
    for backend in backends() {
        let (ts, before) = server(backend).await;
        let bound = RssBound::new(32);
        // Before login: 64 synchronizing literals of 60 KiB were all taken.
        let mut c = LineClient::connect(ts.addr("imap")).await;
        c.read_line().await;
        let mut continuations = 0;
        let mut refused = String::new();
        c.send_line("a ID (\"k\" {61440}").await;
        for _ in 0..64 {
            let answer = c.read_line().await;
            if !answer.starts_with("+ ") {
                refused = answer;
                break;
            }
            continuations += 1;
            c.send(&vec![b'v'; 61440]).await;
            c.send(b" \"k\" {61440}\r\n").await;
        }
        assert_eq!(continuations, 0, "no 60 KiB literal before login");
        assert!(
            refused.starts_with("a BAD") || refused.starts_with("a NO"),
            "{refused}"
        );
        // Small ones: only a few per command before login.
        let mut c = LineClient::connect(ts.addr("imap")).await;
        c.read_line().await;
        c.send_line("b ID (\"k\" {10}").await;
        let mut continuations = 0;
        let refused = loop {
            let answer = c.read_line().await;
            if !answer.starts_with("+ ") {
                break answer;
            }
            continuations += 1;
            assert!(continuations <= 64, "every literal was taken");
            c.send(b"0123456789 \"k\" {10}\r\n").await;
        };
        assert!(continuations < 16, "{continuations} literals before login");
        assert!(
            refused.starts_with("b BAD") || refused.starts_with("b NO"),
            "{refused}"
        );
        // After login: 65 literals in one command are refused.
        let mut c = imaps(&ts).await;
        let mut command = b"c SEARCH".to_vec();
        for _ in 0..65 {
            command.extend_from_slice(b" SUBJECT {3+}\r\nabc");
        }
        command.extend_from_slice(b"\r\nd NOOP\r\n");
        c.send(&command).await;
        let answer = c.read_line().await;
        assert!(answer.starts_with("c BAD"), "{answer}");
        assert!(c.read_line().await.starts_with("d OK"));
        bound.check("many literals per command");
        still_serves(&ts, &before).await;
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_with_thousands_of_keys_works() {
    let _alone = pillarbox_tests::hostile::alone();
    for backend in backends() {
        let (ts, before) = server(backend).await;
        let bound = RssBound::new(64);
        let mut c = imaps(&ts).await;
        cmd(&mut c, "a SELECT INBOX").await;
        for keys in [1_000, 5_000] {
            // Issue 16 item 7: SQLite's "Expression tree is too large".
            let all: String = (0..keys).map(|i| format!(" TO s{i}")).collect();
            let lines = cmd(&mut c, &format!("b SEARCH{all}")).await;
            assert!(
                last(&lines).starts_with("b OK"),
                "{keys} keys: {:?}",
                last(&lines)
            );
            assert!(lines.iter().any(|l| l == "* SEARCH\r\n"), "{lines:?}");
            let words = " TO e".repeat(keys);
            let lines = cmd(&mut c, &format!("c SEARCH{words}")).await;
            assert!(lines.iter().any(|l| l == "* SEARCH 1 2\r\n"), "{lines:?}");
            // An OR chain: OR k1 OR k2 … OR kn-1 kn.
            let chain = "OR TO q ".repeat(keys - 1) + "SUBJECT Quarterly";
            let lines = cmd(&mut c, &format!("d SEARCH {chain}")).await;
            assert!(
                last(&lines).starts_with("d OK"),
                "{keys} ORs: {:?}",
                last(&lines)
            );
            assert!(lines.iter().any(|l| l == "* SEARCH 2\r\n"), "{lines:?}");
            // ORs of ANDs.
            let chain = "OR (TO q BODY y) ".repeat(keys / 2) + "(SUBJECT Lunch BODY hello)";
            let lines = cmd(&mut c, &format!("e SEARCH {chain}")).await;
            assert!(lines.iter().any(|l| l == "* SEARCH 1\r\n"), "{lines:?}");
        }
        // Nested NOTs: an even number cancels out.
        let lines = cmd(
            &mut c,
            &format!("f SEARCH {}SUBJECT Lunch", "NOT ".repeat(1000)),
        )
        .await;
        assert!(lines.iter().any(|l| l == "* SEARCH 1\r\n"), "{lines:?}");
        let lines = cmd(
            &mut c,
            &format!("g SEARCH {}SUBJECT Lunch", "NOT ".repeat(5001)),
        )
        .await;
        assert!(lines.iter().any(|l| l == "* SEARCH 2\r\n"), "{lines:?}");
        // Deeply nested parentheses are refused, not recursed into.
        let deep = format!("h SEARCH {}ALL{}", "(".repeat(5000), ")".repeat(5000));
        let lines = cmd(&mut c, &deep).await;
        assert!(last(&lines).starts_with("h BAD"), "{:?}", last(&lines));
        let deep = format!(
            "i SEARCH {}ALL ALL{}",
            "OR (".repeat(2000),
            ")".repeat(2000)
        );
        let lines = cmd(&mut c, &deep).await;
        assert!(last(&lines).starts_with("i BAD"), "{:?}", last(&lines));
        bound.check("SEARCH with thousands of keys");
        still_serves(&ts, &before).await;
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_sequence_sets_are_not_expanded() {
    let _alone = pillarbox_tests::hostile::alone();
    for backend in backends() {
        let (ts, before) = server(backend).await;
        let bound = RssBound::new(32);
        let mut c = imaps(&ts).await;
        cmd(&mut c, "a SELECT INBOX").await;
        let lines = cmd(&mut c, "b UID FETCH 1:4294967295 FLAGS").await;
        assert!(last(&lines).starts_with("b OK"), "{lines:?}");
        assert_eq!(lines.len(), 3, "{lines:?}");
        let lines = cmd(&mut c, "c FETCH 1:4294967295 FLAGS").await;
        assert!(
            last(&lines).starts_with("c OK") || last(&lines).starts_with("c BAD"),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "d UID SEARCH UID 1:4294967295,4294967295:1").await;
        assert!(
            lines.iter().any(|l| l.starts_with("* SEARCH 1 2")),
            "{lines:?}"
        );
        // 20,000 overlapping ranges, each naming every message.
        let many = vec!["1:*"; 12_000].join(",");
        let lines = cmd(&mut c, &format!("e UID FETCH {many} UID")).await;
        assert!(
            last(&lines).starts_with("e BAD") && last(&lines).contains("ranges"),
            "a cap on the ranges of a set: {:?}",
            last(&lines)
        );
        let some = vec!["1:*"; 4_000].join(",");
        let lines = cmd(
            &mut c,
            &format!("f SEARCH UID {some} UID {some} UID {some}"),
        )
        .await;
        assert!(
            last(&lines).starts_with("f OK") || last(&lines).starts_with("f BAD"),
            "{:?}",
            last(&lines)
        );
        // 30,000 single numbers.
        let many: Vec<String> = (1..30_000).map(|n| (n % 9 + 1).to_string()).collect();
        let lines = cmd(
            &mut c,
            &format!("g UID STORE {} +FLAGS.SILENT (\\Seen)", many.join(",")),
        )
        .await;
        assert!(last(&lines).starts_with("g OK") || last(&lines).starts_with("g BAD"));
        let lines = cmd(&mut c, "h UID STORE 1:* -FLAGS.SILENT (\\Seen)").await;
        assert!(last(&lines).starts_with("h OK"), "{lines:?}");
        // Partial ranges at the ends of u32.
        let lines = cmd(&mut c, "i FETCH 1 BODY.PEEK[]<4294967295.4294967295>").await;
        assert!(last(&lines).starts_with("i OK"), "{lines:?}");
        let lines = cmd(&mut c, "j FETCH 1 BINARY.PEEK[1]<4294967295.4294967295>").await;
        assert!(last(&lines).starts_with("j OK"), "{lines:?}");
        // A section path of huge depth.
        let path = vec!["1"; 10_000].join(".");
        let lines = cmd(&mut c, &format!("k FETCH 1 BODY.PEEK[{path}]")).await;
        assert!(last(&lines).starts_with("k BAD"), "{:?}", last(&lines));
        bound.check("huge sequence sets");
        still_serves(&ts, &before).await;
        ts.stop().await;
    }
}

/// A message of `depth` multiparts, each inside the one before.
fn nested_multipart(depth: usize) -> String {
    let mut message = String::from(
        "From: Mallory <mallory@remote.test>\r\nTo: alice@example.test\r\nSubject: nested\r\nMIME-Version: 1.0\r\n",
    );
    for level in 0..depth {
        message.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n"
        ));
    }
    message.push_str("Content-Type: text/plain\r\n\r\ninnermost\r\n");
    for level in (0..depth).rev() {
        message.push_str(&format!("--b{level}--\r\n"));
    }
    message
}

/// A message of `depth` message/rfc822 parts, each inside the one before.
fn nested_messages(depth: usize) -> String {
    let mut message = String::from(
        "From: Mallory <mallory@remote.test>\r\nTo: alice@example.test\r\nSubject: nested\r\n",
    );
    for level in 0..depth {
        message.push_str(&format!(
            "Content-Type: message/rfc822\r\n\r\nFrom: level{level}@remote.test\r\nSubject: level {level}\r\n"
        ));
    }
    message.push_str("\r\ninnermost\r\n");
    message
}

/// Delivers over SMTP port 25 as anyone on the internet can.
async fn deliver(ts: &TestServer, message: &str) {
    let mut c = LineClient::connect(ts.addr("smtp")).await;
    let expect = |line: String, code: &str| {
        assert!(line.starts_with(code), "expected {code}: {line}");
    };
    expect(c.read_line().await, "220");
    c.send_line("EHLO mx.remote.test").await;
    let lines = c.read_until(|l| l.starts_with("250 ")).await;
    assert!(!lines.is_empty());
    c.send_line("MAIL FROM:<mallory@remote.test>").await;
    expect(c.read_line().await, "250");
    c.send_line(&format!("RCPT TO:<{ALICE}>")).await;
    expect(c.read_line().await, "250");
    c.send_line("DATA").await;
    expect(c.read_line().await, "354");
    c.send(message.as_bytes()).await;
    c.send(b".\r\n").await;
    expect(c.read_line().await, "250");
    c.send_line("QUIT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_mime_from_anyone_is_delivered_and_fetchable() {
    let _alone = pillarbox_tests::hostile::alone();
    for backend in backends() {
        let (ts, _) = server(backend).await;
        // Delivery of the 10,000 nested messages is what takes memory: it
        // is parsed once per nesting level kept (crates/store/src/meta.rs)
        // and mail-parser builds every level each time, about 110 MiB for
        // half a megabyte (not bounded yet: the IMAP side is what this
        // test holds to its bound).
        let bound = RssBound::new(256);
        deliver(&ts, &nested_multipart(10_000)).await;
        deliver(&ts, &nested_messages(10_000)).await;
        let mut c = imaps(&ts).await;
        cmd(&mut c, "a SELECT INBOX").await;
        for seq in [3, 4] {
            let lines = cmd(
                &mut c,
                &format!("b FETCH {seq} (ENVELOPE BODYSTRUCTURE BODY)"),
            )
            .await;
            assert!(last(&lines).starts_with("b OK"), "{:?}", last(&lines));
            let fetched = lines.concat();
            assert!(
                fetched.contains("\"nested\""),
                "{}",
                &fetched[..fetched.len().min(300)]
            );
            // The structure is cut at a bounded depth.
            let depth = fetched.bytes().filter(|b| *b == b'(').count();
            assert!(depth < 2_000, "{depth} parentheses");
            bound.check(&format!("FETCH {seq} ENVELOPE BODYSTRUCTURE"));
            let lines = cmd(&mut c, &format!("c FETCH {seq} BODY.PEEK[]")).await;
            assert!(last(&lines).starts_with("c OK"), "{:?}", last(&lines));
            let lines = cmd(&mut c, &format!("d FETCH {seq} BODY.PEEK[1.1.1.1.1.1.1.1]")).await;
            assert!(last(&lines).starts_with("d OK"), "{:?}", last(&lines));
        }
        bound.check("FETCH of nested MIME");
        let lines = cmd(&mut c, "e SEARCH TEXT innermost").await;
        assert!(last(&lines).starts_with("e OK"), "{:?}", last(&lines));
        bound.check("deeply nested MIME");
        let lines = cmd(&mut c, "f LOGOUT").await;
        assert!(last(&lines).starts_with("f OK"));
        ts.stop().await;
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_errors_never_reach_the_client() {
    let _alone = pillarbox_tests::hostile::alone();
    // Message bytes are files with SQLite: remove them to make the store fail.
    let (ts, _) = server(pillarbox_tests::Backend::Sqlite).await;
    // Messages up to 128 KiB are kept in the database; this one is a file.
    let mut c = imaps(&ts).await;
    let message = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(200 * 1024));
    c.send_line(&format!("a APPEND INBOX {{{}+}}", message.len()))
        .await;
    c.send(message.as_bytes()).await;
    c.send(b"\r\n").await;
    let lines = c.read_until(|l| l.starts_with("a ")).await;
    assert!(last(&lines).starts_with("a OK"), "{lines:?}");
    let blobs = ts.running().config.data_dir.join("blobs");
    let removed: Vec<_> = files_under(&blobs);
    assert!(!removed.is_empty(), "message blobs under {blobs:?}");
    for file in &removed {
        std::fs::remove_file(file).unwrap();
    }
    cmd(&mut c, "b SELECT INBOX").await;
    let lines = cmd(&mut c, "b FETCH 3 BODY.PEEK[]").await;
    let answer = last(&lines);
    assert!(
        answer.starts_with("b NO [SERVERBUG] Internal error, reference "),
        "{answer}"
    );
    // Neither the blob's name nor the error's wording.
    for file in &removed {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(!answer.contains(name.as_ref()), "{answer}");
    }
    assert!(
        !answer.contains("blob") && !answer.contains("missing"),
        "{answer}"
    );
    let lines = cmd(&mut c, "c NOOP").await;
    assert!(last(&lines).starts_with("c OK"), "{lines:?}");
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_commands_end_in_bye_and_disconnect() {
    let _alone = pillarbox_tests::hostile::alone();
    for backend in backends() {
        let (ts, before) = server(backend).await;
        let bound = RssBound::new(16);
        let mut c = LineClient::connect(ts.addr("imap")).await;
        c.read_line().await;
        let mut answers = Vec::new();
        for n in 0..25 {
            c.send_line(&format!("g{n} FROBNICATE {n}")).await;
            match c.try_read_line(Duration::from_secs(10)).await {
                Some(line) => answers.push(line),
                None => break,
            }
            if answers.last().is_some_and(|l| l.starts_with("* BYE")) {
                break;
            }
        }
        let bye = answers
            .iter()
            .position(|l| l.starts_with("* BYE Too many errors"));
        assert_eq!(bye, Some(20), "{answers:?}");
        assert!(c.is_closed().await);
        bound.check("garbage commands");
        still_serves(&ts, &before).await;
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_before_login_is_cut_off() {
    let _alone = pillarbox_tests::hostile::alone();
    let (ts, before) = server_with(pillarbox_tests::Backend::Sqlite, |config| {
        config.listener.get_mut("imap").unwrap().login_timeout_secs = Some(2);
    })
    .await;
    let mut c = LineClient::connect(ts.addr("imap")).await;
    c.read_line().await;
    let started = std::time::Instant::now();
    let mut answer = None;
    // One byte every half second: each read brings something, the line never ends.
    for byte in b"a LOGIN alice@example.test password-that-never-ends"
        .iter()
        .cycle()
        .take(40)
    {
        c.send(&[*byte]).await;
        if let Some(line) = c.try_read_line(Duration::from_millis(500)).await {
            answer = Some(line);
            break;
        }
    }
    let elapsed = started.elapsed();
    let answer = answer.unwrap_or_default();
    assert!(
        answer.starts_with("* BYE"),
        "cut off with a BYE: {answer:?}"
    );
    assert!(
        elapsed < Duration::from_secs(8),
        "cut off after {elapsed:?}"
    );
    assert!(c.is_closed().await);
    still_serves(&ts, &before).await;
    ts.stop().await;
}

/// The server-wide memory budget: an APPEND larger than what the whole
/// server may buffer is refused before `+`, so its bytes are never read, and
/// the session and the server go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_over_the_server_memory_budget_is_refused_before_it_is_read() {
    let _alone = pillarbox_tests::hostile::alone();
    for backend in backends() {
        let (ts, before) = server_with(backend, |c| c.limits.memory_budget_mib = 1).await;
        let mut c = imaps(&ts).await;
        c.send_line("a APPEND INBOX {2097152}").await;
        let answer = c.read_line().await;
        assert!(
            answer.starts_with("a NO"),
            "no '+' for a literal the budget cannot hold: {answer}"
        );
        // A message the budget holds is still taken.
        let lines = cmd(&mut c, "b NOOP").await;
        assert!(last(&lines).starts_with("b OK"), "{lines:?}");
        still_serves(&ts, &before).await;
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_response_before_login_is_bounded_like_a_command() {
    let _alone = pillarbox_tests::hostile::alone();
    for backend in backends() {
        let (ts, before) = server(backend).await;
        let bound = RssBound::new(16);
        let mut c = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
        c.read_line().await;
        c.send_line("a AUTHENTICATE PLAIN").await;
        let go = c.read_line().await;
        assert!(go.starts_with("+"), "{go}");
        // 60 KiB of base64 on one line: more than any login needs and more
        // than a whole command before login may hold.
        c.send_line(&"QUFB".repeat(15 * 1024)).await;
        let lines = c
            .read_until(|l| l.starts_with("* BYE") || l.starts_with("a "))
            .await;
        assert!(
            last(&lines).starts_with("* BYE AUTHENTICATE response longer than"),
            "{lines:?}"
        );
        assert!(c.is_closed().await);
        // A real response of ordinary size still logs in.
        let mut c = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
        c.read_line().await;
        c.send_line("b AUTHENTICATE PLAIN").await;
        let go = c.read_line().await;
        assert!(go.starts_with("+"), "{go}");
        use base64::Engine;
        let plain =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{ALICE}\0{PASSWORD}"));
        c.send_line(&plain).await;
        let lines = c.read_until(|l| l.starts_with("b ")).await;
        assert!(last(&lines).starts_with("b OK"), "{lines:?}");
        bound.check("long AUTHENTICATE response");
        still_serves(&ts, &before).await;
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_are_capped_in_number_and_depth() {
    let _alone = pillarbox_tests::hostile::alone();
    for backend in backends() {
        // alice has the six standard folders, Work and Work/Projects:
        // eight of eleven.
        let (ts, before) = server_with(backend, |c| c.store.max_mailboxes = 11).await;
        // The store's connections open lazily: a few MiB each on PostgreSQL.
        let bound = RssBound::new(64);
        let mut c = imaps(&ts).await;
        let deep = vec!["L"; 33].join("/");
        let lines = cmd(&mut c, &format!("a CREATE {deep}")).await;
        assert!(
            last(&lines).starts_with("a NO [LIMIT] too many levels in the mailbox name"),
            "{lines:?}"
        );
        // Four new mailboxes (three parents on the way) would make twelve:
        // refused whole, no parent is left behind.
        let lines = cmd(&mut c, "b CREATE P/Q/R/S").await;
        assert!(
            last(&lines).starts_with("b NO [LIMIT] too many mailboxes in this account"),
            "{lines:?}"
        );
        // Work/Projects would get 33 levels under a 32-level new name.
        let lines = cmd(
            &mut c,
            &format!("c RENAME Work {}", vec!["M"; 32].join("/")),
        )
        .await;
        assert!(last(&lines).starts_with("c NO [LIMIT]"), "{lines:?}");
        assert_eq!(
            store_snapshot(&ts, &[ALICE]).await,
            before,
            "nothing changed"
        );
        for (tag, name) in [("d", "One"), ("e", "Two"), ("f", "Three")] {
            let lines = cmd(&mut c, &format!("{tag} CREATE {name}")).await;
            assert!(last(&lines).starts_with(&format!("{tag} OK")), "{lines:?}");
        }
        let lines = cmd(&mut c, "g CREATE Four").await;
        assert!(last(&lines).starts_with("g NO [LIMIT]"), "{lines:?}");
        // Deleting one makes room again.
        let lines = cmd(&mut c, "h DELETE One").await;
        assert!(last(&lines).starts_with("h OK"), "{lines:?}");
        let lines = cmd(&mut c, "i CREATE Four").await;
        assert!(last(&lines).starts_with("i OK"), "{lines:?}");
        let lines = cmd(&mut c, "j LIST \"\" *").await;
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("* LIST")).count(),
            11,
            "{lines:?}"
        );
        bound.check("mailbox limits");
        ts.stop().await;
    }
}
