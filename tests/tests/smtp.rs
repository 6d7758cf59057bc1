//! SMTP over real sockets and real TLS, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_tests::{Backend, LineClient, TestServer, backends};
use std::time::Duration;

const PASSWORD: &str = "smtp pass";
/// base64("\0alice@example.test\0smtp pass")
const ALICE_PLAIN: &str = "AGFsaWNlQGV4YW1wbGUudGVzdABzbXRwIHBhc3M=";

async fn expect(c: &mut LineClient, code: &str) -> String {
    let mut line = c.read_line().await;
    while line.as_bytes().get(3) == Some(&b'-') {
        line = c.read_line().await;
    }
    assert!(line.starts_with(code), "expected {code}, got {line:?}");
    line
}

async fn mx(ts: &TestServer) -> LineClient {
    let mut c = LineClient::connect(ts.addr("smtp")).await;
    expect(&mut c, "220 ").await;
    c.send_line("EHLO client.remote.test").await;
    expect(&mut c, "250 ").await;
    c
}

/// Submission over STARTTLS, authenticated as alice.
async fn submission(ts: &TestServer) -> LineClient {
    let mut c = LineClient::connect(ts.addr("submission")).await;
    expect(&mut c, "220 ").await;
    c.send_line("EHLO laptop").await;
    let ehlo = c.read_until(|l| l.starts_with("250 ")).await;
    assert!(ehlo.iter().any(|l| l.contains("STARTTLS")));
    assert!(
        !ehlo.iter().any(|l| l.contains("AUTH")),
        "no AUTH before TLS: {ehlo:?}"
    );
    c.send_line("STARTTLS").await;
    expect(&mut c, "220 ").await;
    let mut c = c.start_tls(&ts.tls_connector()).await;
    c.send_line("EHLO laptop").await;
    let ehlo = c.read_until(|l| l.starts_with("250 ")).await;
    for ext in [
        "PIPELINING",
        "SIZE ",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "AUTH PLAIN LOGIN",
    ] {
        assert!(ehlo.iter().any(|l| l.contains(ext)), "{ext} in {ehlo:?}");
    }
    c.send_line(&format!("AUTH PLAIN {ALICE_PLAIN}")).await;
    expect(&mut c, "235 2.7.0").await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mx_delivers_to_local_users_once_with_trace_headers() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        ts.add_account("bob@example.test", PASSWORD).await;
        ts.directory()
            .add_alias("team@example.test", "alice@example.test")
            .await
            .unwrap();
        ts.directory()
            .add_alias("team@example.test", "bob@example.test")
            .await
            .unwrap();
        let mut c = mx(&ts).await;
        c.send_line("MAIL FROM:<carol@remote.test>").await;
        expect(&mut c, "250 2.1.0").await;
        c.send_line("RCPT TO:<team@example.test>").await;
        expect(&mut c, "250 2.1.5").await;
        c.send_line("RCPT TO:<alice@example.test>").await;
        expect(&mut c, "250 2.1.5").await;
        c.send_line("RCPT TO:<nobody@example.test>").await;
        expect(&mut c, "550 5.1.1").await;
        c.send_line("DATA").await;
        expect(&mut c, "354").await;
        let body = "Subject: hello\r\n\r\nline\r\n..dot line\r\n";
        c.send(format!("{body}.\r\n").as_bytes()).await;
        expect(&mut c, "250 2.0.0").await;
        c.send_line("QUIT").await;
        expect(&mut c, "221").await;

        let alice = ts.inbox("alice@example.test").await;
        let bob = ts.inbox("bob@example.test").await;
        assert_eq!(
            alice.len(),
            1,
            "{backend:?}: one copy even when named twice"
        );
        assert_eq!(bob.len(), 1);
        let text = String::from_utf8(alice[0].clone()).unwrap();
        assert!(
            text.starts_with(
                "Return-Path: <carol@remote.test>\r\nAuthentication-Results: mail.example.test;"
            ),
            "{text}"
        );
        assert!(
            text.contains("\r\nReceived: from client.remote.test"),
            "{text}"
        );
        // Byte-exact apart from the trace headers, dot-unstuffed.
        assert!(
            text.ends_with("Subject: hello\r\n\r\nline\r\n.dot line\r\n"),
            "{text}"
        );
        assert_eq!(ts.store().blob_count().await.unwrap(), 1, "stored once");
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_over_starttls_and_implicit_tls_with_pipelining() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        ts.add_account("bob@example.test", PASSWORD).await;
        let mut c = submission(&ts).await;
        // Someone else's address as sender is refused.
        c.send_line("MAIL FROM:<bob@example.test>").await;
        expect(&mut c, "553 5.7.1").await;
        // RFC 2920: the whole transaction in one write.
        c.send(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<x@remote.test>\r\nDATA\r\n").await;
        expect(&mut c, "250 2.1.0").await;
        expect(&mut c, "250 2.1.5").await;
        // A remote recipient of an authenticated submission is queued for relay.
        expect(&mut c, "250 2.1.5").await;
        expect(&mut c, "354").await;
        c.send(b"Subject: pipelined\r\n\r\nhi\r\n.\r\n").await;
        expect(&mut c, "250 2.0.0").await;
        let queued = ts.store().queue_list().await.unwrap();
        assert_eq!(queued.len(), 1, "{queued:?}");
        assert_eq!(queued[0].recipients[0].address, "x@remote.test");

        let mut s = LineClient::connect_tls(ts.addr("submissions"), &ts.tls_connector()).await;
        expect(&mut s, "220").await;
        s.send_line("EHLO phone").await;
        let ehlo = s.read_until(|l| l.starts_with("250 ")).await;
        assert!(ehlo.iter().any(|l| l.contains("AUTH PLAIN LOGIN")));
        s.send_line("MAIL FROM:<alice@example.test>").await;
        expect(&mut s, "530 5.7.0").await;
        // AUTH LOGIN: base64 user then password.
        s.send_line("AUTH LOGIN").await;
        expect(&mut s, "334").await;
        s.send_line("YWxpY2VAZXhhbXBsZS50ZXN0").await;
        expect(&mut s, "334").await;
        s.send_line("c210cCBwYXNz").await;
        expect(&mut s, "235").await;
        s.send(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
            .await;
        expect(&mut s, "250").await;
        expect(&mut s, "250").await;
        expect(&mut s, "354").await;
        s.send(b"Subject: implicit\r\n\r\nhi\r\n.\r\n").await;
        expect(&mut s, "250 2.0.0").await;

        let bob = ts.inbox("bob@example.test").await;
        assert_eq!(bob.len(), 2, "{backend:?}");
        let received = String::from_utf8_lossy(&bob[0]);
        assert!(received.contains("with ESMTPSA"), "{received}");
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_sequences_never_end_the_message() {
    let ts = TestServer::start(Backend::Sqlite).await;
    ts.add_account("alice@example.test", PASSWORD).await;
    let mut c = mx(&ts).await;
    c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        .await;
    expect(&mut c, "250").await;
    expect(&mut c, "250").await;
    expect(&mut c, "354").await;
    let smuggled = b"Subject: one\r\n\r\nbody\n.\nMAIL FROM:<evil@remote.test>\r\nmore\n.\r\nRCPT TO:<alice@example.test>\r\nstill\r.\rdata\r\n.\r\n";
    c.send(smuggled).await;
    expect(&mut c, "250 2.0.0").await;
    c.send_line("NOOP").await;
    expect(&mut c, "250").await;
    let messages = ts.inbox("alice@example.test").await;
    assert_eq!(messages.len(), 1, "exactly one message");
    let text = String::from_utf8_lossy(&messages[0]);
    assert!(
        text.contains("MAIL FROM:<evil@remote.test>") && text.contains("still\r.\rdata"),
        "{text}"
    );
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_reply_and_changes_nothing() {
    let ts = TestServer::start_with(Backend::Sqlite, |c| {
        c.smtp.max_message_size = 2000;
        c.listener.get_mut("smtp").unwrap().idle_timeout_secs = Some(2);
    })
    .await;
    ts.add_account("alice@example.test", PASSWORD).await;
    let mut c = LineClient::connect(ts.addr("smtp")).await;
    expect(&mut c, "220").await;
    c.send_line("MAIL FROM:<a@remote.test>").await;
    expect(&mut c, "503 5.5.1").await;
    c.send_line("EHLO x").await;
    expect(&mut c, "250 ").await;
    c.send_line("DATA").await;
    expect(&mut c, "503 5.5.1").await;
    c.send_line("FROB").await;
    expect(&mut c, "500 5.5.2").await;
    c.send_line(&format!("NOOP {}", "x".repeat(1200))).await;
    expect(&mut c, "500 5.5.6").await;
    c.send_line("AUTH PLAIN AAAA").await;
    expect(&mut c, "503").await;
    c.send_line("VRFY alice").await;
    expect(&mut c, "252 2.5.0").await;
    // Open relay: never.
    c.send_line("MAIL FROM:<a@remote.test>").await;
    expect(&mut c, "250").await;
    c.send_line("RCPT TO:<victim@elsewhere.test>").await;
    expect(&mut c, "550 5.7.1").await;
    c.send_line("MAIL FROM:<a@remote.test> SIZE=999999").await;
    expect(&mut c, "503").await;
    c.send_line("RSET").await;
    expect(&mut c, "250").await;
    c.send_line("MAIL FROM:<a@remote.test> SIZE=lots").await;
    expect(&mut c, "501 5.5.4").await;
    c.send_line("MAIL FROM:<a@remote.test> SIZE=999999").await;
    expect(&mut c, "552 5.3.4").await;
    // Too big during DATA.
    c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        .await;
    expect(&mut c, "250").await;
    expect(&mut c, "250").await;
    expect(&mut c, "354").await;
    c.send(format!("Subject: big\r\n\r\n{}\r\n.\r\n", "y".repeat(5000)).as_bytes())
        .await;
    expect(&mut c, "552 5.3.4").await;
    // Silence: 421 4.4.2 and the connection closes.
    expect(&mut c, "421 4.4.2").await;
    assert!(c.is_closed().await);

    // Submission: AUTH without TLS is refused; bad base64 is a 501.
    let mut s = LineClient::connect(ts.addr("submission")).await;
    expect(&mut s, "220").await;
    s.send_line("EHLO x").await;
    expect(&mut s, "250 ").await;
    s.send_line(&format!("AUTH PLAIN {ALICE_PLAIN}")).await;
    expect(&mut s, "530 5.7.0").await;
    let mut t = LineClient::connect_tls(ts.addr("submissions"), &ts.tls_connector()).await;
    expect(&mut t, "220").await;
    t.send_line("EHLO x").await;
    expect(&mut t, "250 ").await;
    t.send_line("AUTH PLAIN !!!").await;
    expect(&mut t, "501 5.5.2").await;
    t.send_line("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw==")
        .await;
    expect(&mut t, "535 5.7.8").await;

    // Dropped mid-DATA: nothing delivered.
    let mut d = mx(&ts).await;
    d.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        .await;
    expect(&mut d, "250").await;
    expect(&mut d, "250").await;
    expect(&mut d, "354").await;
    d.send(b"Subject: cut\r\n\r\nhalf a mess").await;
    drop(d);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        ts.inbox("alice@example.test").await.is_empty(),
        "nothing stored"
    );
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pipelined_after_starttls_are_not_run_inside_tls() {
    let ts = TestServer::start(Backend::Sqlite).await;
    ts.add_account("alice@example.test", PASSWORD).await;
    let mut c = LineClient::connect(ts.addr("submission")).await;
    expect(&mut c, "220").await;
    c.send_line("EHLO x").await;
    expect(&mut c, "250 ").await;
    c.send(format!("STARTTLS\r\nAUTH PLAIN {ALICE_PLAIN}\r\n").as_bytes())
        .await;
    expect(&mut c, "220").await;
    let mut c = c.start_tls(&ts.tls_connector()).await;
    // Had the injected AUTH run, MAIL would be accepted; instead EHLO is needed first.
    c.send_line("MAIL FROM:<alice@example.test>").await;
    expect(&mut c, "503 5.5.1").await;
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bdat_chunks_make_one_message_byte_exact() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        let mut c = mx(&ts).await;
        // A chunk is read even when the command is refused (RFC 3030 §2).
        c.send(b"BDAT 5 LAST\r\nhello").await;
        expect(&mut c, "503 5.5.1").await;
        c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
            .await;
        expect(&mut c, "250").await;
        expect(&mut c, "250").await;
        let first = b"Subject: chunked\r\n\r\nbare\nLF and .\r\n";
        let second = b".leading dot kept as is\r\n";
        c.send(format!("BDAT {}\r\n", first.len()).as_bytes()).await;
        c.send(first).await;
        expect(&mut c, "250 2.0.0").await;
        c.send(format!("BDAT {} LAST\r\n", second.len()).as_bytes())
            .await;
        c.send(second).await;
        expect(&mut c, "250 2.0.0").await;
        c.send_line("NOOP").await;
        expect(&mut c, "250").await;
        let messages = ts.inbox("alice@example.test").await;
        assert_eq!(messages.len(), 1, "{backend:?}");
        let mut expected = first.to_vec();
        expected.extend_from_slice(second);
        assert!(
            messages[0].ends_with(&expected),
            "BDAT data is stored exactly, no dot-unstuffing"
        );
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_counted_per_ip_across_protocols() {
    let ts = TestServer::start(Backend::Sqlite).await;
    ts.add_account("alice@example.test", PASSWORD).await;
    let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut pop = LineClient::connect_tls(ts.addr("pop3s"), &ts.tls_connector()).await;
    pop.read_line().await;
    pop.send_line("USER alice@example.test").await;
    pop.read_line().await;
    pop.send_line("PASS wrong").await;
    assert!(pop.read_line().await.starts_with("-ERR [AUTH]"));
    assert_eq!(ts.directory().throttle().failures(ip), 1);
    let mut smtp = LineClient::connect_tls(ts.addr("submissions"), &ts.tls_connector()).await;
    expect(&mut smtp, "220").await;
    smtp.send_line("EHLO x").await;
    expect(&mut smtp, "250 ").await;
    let started = std::time::Instant::now();
    smtp.send_line("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw==")
        .await;
    expect(&mut smtp, "535 5.7.8").await;
    assert_eq!(
        ts.directory().throttle().failures(ip),
        2,
        "one count for every protocol"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "the second failure waits longer"
    );
    ts.stop().await;
}
