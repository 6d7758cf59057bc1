//! Outbound mail between two real Pillarbox servers on loopback: "local"
//! (alice@local.test) submits, queues and delivers to "remote"
//! (bob@remote.test, carol@remote.test) by MX — DNS records put into the
//! verifier by the test — or through the remote one as a smarthost.
//! Retries, bounces (RFC 3464) and DKIM signing, on SQLite and PostgreSQL.
//! The queue worker's own tests (`outbound/queue_worker.rs`) use a tiny
//! SMTP server of the test's (`outbound/test_mx.rs`, slow.test at
//! 127.0.0.2) that stalls where a test wants it to.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use base64::Engine;
use pillarbox_store::queue::RecipientState;
use pillarbox_tests::{Backend, LineClient, TestServer, Verifier, backends};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "outbound pass";

/// A verifier that routes remote.test to 127.0.0.1 and slow.test to 127.0.0.2.
fn dns() -> Arc<Verifier> {
    let verifier = Verifier::offline();
    verifier
        .dns()
        .add_mx("remote.test", &[(10, "mx.remote.test")]);
    verifier
        .dns()
        .add_ipv4("mx.remote.test", vec![[127, 0, 0, 1].into()]);
    verifier.dns().add_mx("slow.test", &[(10, "mx.slow.test")]);
    verifier
        .dns()
        .add_ipv4("mx.slow.test", vec![[127, 0, 0, 2].into()]);
    Arc::new(verifier)
}

async fn remote(backend: Backend) -> TestServer {
    let ts = TestServer::start(backend).await;
    ts.add_account("bob@remote.test", PASSWORD).await;
    ts.add_account("carol@remote.test", PASSWORD).await;
    ts
}

async fn local(backend: Backend, tweak: impl FnOnce(&mut pillarbox::config::Config)) -> TestServer {
    let ts = TestServer::start_with_verifier(backend, tweak, dns()).await;
    ts.add_account("alice@local.test", PASSWORD).await;
    ts
}

/// Submits over implicit TLS as alice; returns the RCPT replies and the final reply.
async fn submit(ts: &TestServer, to: &[&str], body: &str) -> (Vec<String>, String) {
    let mut c = LineClient::connect_tls(ts.addr("submissions"), &ts.tls_connector()).await;
    c.read_line().await;
    c.send_line("EHLO client.local.test").await;
    c.read_until(|l| l.starts_with("250 ")).await;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("\0alice@local.test\0{PASSWORD}"));
    c.send_line(&format!("AUTH PLAIN {token}")).await;
    assert!(c.read_line().await.starts_with("235"));
    c.send_line("MAIL FROM:<alice@local.test>").await;
    assert!(c.read_line().await.starts_with("250"));
    let mut replies = Vec::new();
    for r in to {
        c.send_line(&format!("RCPT TO:<{r}>")).await;
        replies.push(c.read_line().await);
    }
    c.send_line("DATA").await;
    assert!(c.read_line().await.starts_with("354"));
    // Dot-stuffed on the wire (RFC 5321 §4.5.2); stored unstuffed.
    c.send(body.replace("\r\n.", "\r\n..").as_bytes()).await;
    c.send(b".\r\n").await;
    (replies, c.read_line().await)
}

/// Waits up to 30 s for `address` to have `count` messages.
async fn wait_for_mail(ts: &TestServer, address: &str, count: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let messages = ts.inbox_texts(address).await;
        if messages.len() >= count {
            return messages;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{address} got {} of {count} messages",
            messages.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const BODY: &str = "From: Alice <alice@local.test>\r\nTo: bob@remote.test\r\nSubject: Dinner\r\nMessage-ID: <dinner@local.test>\r\n\r\nAt eight?\r\n.leading dot\r\n";

#[tokio::test]
async fn mx_delivery_with_dkim_and_a_bounce_for_the_unknown_recipient() {
    for backend in backends() {
        let remote = remote(backend).await;
        let port = remote.addr("smtp").port();
        let local = local(backend, |c| c.smtp.queue.mx_port = port).await;
        let key = pillarbox_smtp::outbound::dkim::generate("ed25519").unwrap();
        local
            .store()
            .dkim_key_put(
                "local.test",
                "s1",
                key.algorithm,
                &key.private_key,
                &key.public_key,
            )
            .await
            .unwrap();
        let (rcpt, done) = submit(
            &local,
            &["bob@remote.test", "carol@remote.test", "nobody@remote.test"],
            BODY,
        )
        .await;
        assert!(rcpt.iter().all(|r| r.starts_with("250 2.1.5")), "{rcpt:?}");
        assert!(done.starts_with("250"), "{done}");

        // One transaction to remote's MX with both good recipients; byte-exact body, signed.
        let bob = wait_for_mail(&remote, "bob@remote.test", 1).await;
        let carol = wait_for_mail(&remote, "carol@remote.test", 1).await;
        assert!(bob[0].ends_with(BODY), "{}", bob[0]);
        assert!(
            bob[0].contains("DKIM-Signature: v=1; a=ed25519-sha256;"),
            "{}",
            bob[0]
        );
        assert!(
            bob[0].contains("d=local.test") && bob[0].contains("s=s1"),
            "{}",
            bob[0]
        );
        assert!(
            bob[0].contains("by mail.example.test (Pillarbox) with ESMTPSA"),
            "{}",
            bob[0]
        );
        assert!(
            bob[0].contains("Return-Path: <alice@local.test>"),
            "{}",
            bob[0]
        );
        assert_eq!(carol.len(), 1);

        // The unknown recipient: a DSN in alice's INBOX.
        let alice = wait_for_mail(&local, "alice@local.test", 1).await;
        let report = &alice[0];
        assert!(report.contains("Return-Path: <>"), "{report}");
        assert!(report.contains("multipart/report"), "{report}");
        assert!(
            report.contains("Final-Recipient: rfc822; nobody@remote.test"),
            "{report}"
        );
        assert!(
            report.contains("Action: failed") && report.contains("Status: 5.1.1"),
            "{report}"
        );
        assert!(
            report.contains("Subject: Dinner"),
            "the original comes back: {report}"
        );
        assert!(
            !report.contains("bob@remote.test>:"),
            "only failures are reported: {report}"
        );

        // The queue is empty once everything is final.
        let start = Instant::now();
        while !local.store().queue_list().await.unwrap().is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "queue not emptied"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        local.stop().await;
        remote.stop().await;
    }
}

#[tokio::test]
async fn unreachable_host_is_retried_then_bounced_when_too_old() {
    for backend in backends() {
        // A port nobody listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let local1 = local(backend, |c| c.smtp.queue.mx_port = port).await;
        let (_, done) = submit(&local1, &["bob@remote.test"], BODY).await;
        assert!(done.starts_with("250"), "{done}");
        let start = Instant::now();
        let queued = loop {
            let list = local1.store().queue_list().await.unwrap();
            if let Some(m) = list.first()
                && m.recipients[0].state == RecipientState::Deferred
            {
                break m.clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "not deferred: {list:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let r = &queued.recipients[0];
        assert_eq!(r.attempts, 1);
        assert!(
            r.last_error.as_deref().unwrap().contains("cannot connect"),
            "{r:?}"
        );
        assert!(
            r.next_attempt > queued.created_at + 30,
            "retried later, not at once: {r:?}"
        );
        assert!(
            local1.inbox_texts("alice@local.test").await.is_empty(),
            "no bounce for a temporary failure"
        );
        // An operator retry makes it due now: attempted again at once.
        assert_eq!(local1.store().queue_retry(queued.id).await.unwrap(), 1);
        let start = Instant::now();
        loop {
            let m = local1.store().queue_get(queued.id).await.unwrap().unwrap();
            if m.recipients[0].attempts == 2 {
                assert_eq!(m.recipients[0].state, RecipientState::Deferred);
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "retry did not run: {m:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        local1.stop().await;

        // With no time left (max_age 0), the first temporary failure bounces.
        let local2 = local(backend, |c| {
            c.smtp.queue.mx_port = port;
            c.smtp.queue.max_age_secs = 0;
        })
        .await;
        let (_, done) = submit(&local2, &["bob@remote.test"], BODY).await;
        assert!(done.starts_with("250"), "{done}");
        let alice = wait_for_mail(&local2, "alice@local.test", 1).await;
        assert!(
            alice[0].contains("Status: 4.4.7") && alice[0].contains("gave up"),
            "{}",
            alice[0]
        );
        local2.stop().await;
    }
}

#[tokio::test]
async fn smarthost_with_starttls_and_auth() {
    for backend in backends() {
        let remote = remote(backend).await;
        // The smarthost lets bob send as alice@local.test (an alias of his there).
        remote.directory().add_domain("local.test").await.unwrap();
        remote
            .directory()
            .add_alias("alice@local.test", "bob@remote.test")
            .await
            .unwrap();
        let relay = pillarbox_smtp::Relay {
            host: "127.0.0.1".into(),
            port: remote.addr("submission").port(),
            tls: pillarbox_smtp::RelayTls::Starttls,
            username: Some("bob@remote.test".into()),
            password: Some(PASSWORD.into()),
            ca_file: Some(remote.cert_path()),
        };
        let local = local(backend, |c| c.smtp.relay = Some(relay)).await;
        let (_, done) = submit(&local, &["carol@remote.test"], BODY).await;
        assert!(done.starts_with("250"), "{done}");
        let carol = wait_for_mail(&remote, "carol@remote.test", 1).await;
        assert!(carol[0].ends_with(BODY), "{}", carol[0]);
        assert!(
            carol[0].contains("with ESMTPSA"),
            "relayed over TLS with AUTH: {}",
            carol[0]
        );
        local.stop().await;
        remote.stop().await;
    }
}

/// Waits up to `limit` for `done`, failing with `what`.
async fn wait_until(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "{what} (waited {limit:?})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn queue_empty(ts: &TestServer) {
    wait_until(Duration::from_secs(30), "the queue empties", async || {
        ts.store().queue_list().await.unwrap().is_empty()
    })
    .await;
}

#[path = "outbound/queue_worker.rs"]
mod queue_worker;
#[path = "outbound/test_mx.rs"]
mod test_mx;
