//! SPF, DKIM and DMARC on the MX listener, with DNS records put into the
//! verifier's cache by the test (no network), on SQLite and PostgreSQL.
//! Also the DSN parameters of RFC 3461.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use base64::Engine;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use pillarbox_tests::{LineClient, TestServer, Verifier, backends};
use std::sync::Arc;

/// A verifier that knows good.test (SPF for 127.0.0.1, an Ed25519 DKIM key,
/// DMARC p=reject), strict.test (SPF elsewhere, p=reject) and lax.test
/// (SPF elsewhere, p=none). Returns it and good.test's signing key.
fn seeded_verifier() -> (Arc<Verifier>, Vec<u8>) {
    let verifier = Verifier::offline();
    let dns = verifier.dns();
    let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
    dns.add_txt("good.test", "v=spf1 ip4:127.0.0.1 -all")
        .unwrap();
    dns.add_txt(
        "s1._domainkey.good.test",
        &format!("v=DKIM1; k=ed25519; p={public}"),
    )
    .unwrap();
    dns.add_txt("_dmarc.good.test", "v=DMARC1; p=reject")
        .unwrap();
    dns.add_txt("strict.test", "v=spf1 ip4:192.0.2.1 -all")
        .unwrap();
    dns.add_txt("_dmarc.strict.test", "v=DMARC1; p=reject")
        .unwrap();
    dns.add_txt("lax.test", "v=spf1 ip4:192.0.2.1 -all")
        .unwrap();
    // The DMARC tree walk (RFC 9989) also asks the parent: NXDOMAIN.
    dns.add_missing_txt("_dmarc.test");
    dns.add_txt("_dmarc.lax.test", "v=DMARC1; p=none").unwrap();
    (Arc::new(verifier), pkcs8)
}

fn signed(pkcs8: &[u8], message: &str) -> String {
    let key = Ed25519Key::from_pkcs8_der(pkcs8).unwrap();
    let signature = DkimSigner::from_key(key)
        .domain("good.test")
        .selector("s1")
        .headers(["From", "To", "Subject"])
        .sign(message.as_bytes())
        .unwrap();
    format!("{}{message}", signature.to_header())
}

/// One transaction on the MX listener; returns the final reply.
async fn send(c: &mut LineClient, from: &str, message: &str) -> String {
    c.send_line(&format!("MAIL FROM:<{from}>")).await;
    assert!(c.read_line().await.starts_with("250"));
    c.send_line("RCPT TO:<alice@example.test>").await;
    assert!(c.read_line().await.starts_with("250"));
    c.send_line("DATA").await;
    assert!(c.read_line().await.starts_with("354"));
    c.send(message.as_bytes()).await;
    c.send(b".\r\n").await;
    c.read_line().await
}

async fn mx(ts: &TestServer) -> LineClient {
    let mut c = LineClient::connect(ts.addr("smtp")).await;
    c.read_line().await;
    c.send_line("EHLO mx.good.test").await;
    let lines = c.read_until(|l| l.starts_with("250 ")).await;
    assert!(lines.iter().any(|l| l.contains("DSN")), "{lines:?}");
    c
}

#[tokio::test]
async fn spf_dkim_dmarc_results_and_reject() {
    for backend in backends() {
        let (verifier, pkcs8) = seeded_verifier();
        let ts = TestServer::start_with_verifier(backend, |_| {}, verifier).await;
        ts.add_account("alice@example.test", "pw").await;
        let mut c = mx(&ts).await;

        // Aligned SPF and DKIM pass: accepted, results recorded.
        let message = "From: Ann <ann@good.test>\r\nTo: alice@example.test\r\nSubject: signed\r\n\r\nHello.\r\n";
        let reply = send(&mut c, "ann@good.test", &signed(&pkcs8, message)).await;
        assert!(reply.starts_with("250"), "{reply}");
        let stored = ts.inbox_texts("alice@example.test").await;
        let header = stored[0].split("\r\nReceived:").next().unwrap();
        assert!(
            header.contains("Authentication-Results: mail.example.test;"),
            "{header}"
        );
        assert!(
            header.contains("spf=pass")
                && header.contains("dkim=pass")
                && header.contains("dmarc=pass"),
            "{header}"
        );
        assert!(
            stored[0].ends_with(message),
            "the message itself is kept byte-exact"
        );

        // A forged From: of a p=reject domain, SPF fail, no DKIM: 550 5.7.1, nothing stored.
        let forged = "From: ceo@strict.test\r\nTo: alice@example.test\r\nSubject: wire money\r\n\r\nNow.\r\n";
        let reply = send(&mut c, "ceo@strict.test", forged).await;
        assert!(
            reply.starts_with("550 5.7.1") && reply.contains("strict.test"),
            "{reply}"
        );
        assert_eq!(ts.inbox_texts("alice@example.test").await.len(), 1);
        // The session goes on.
        c.send_line("RSET").await;
        assert!(c.read_line().await.starts_with("250"));

        // A tampered signed message: DKIM does not pass (body hash), SPF passes → DMARC passes via SPF.
        let tampered = signed(&pkcs8, message).replace("Hello.", "Hello, changed.");
        let reply = send(&mut c, "ann@good.test", &tampered).await;
        assert!(reply.starts_with("250"), "{reply}");
        let stored = ts.inbox_texts("alice@example.test").await;
        assert!(
            stored[1].contains("dkim=neutral (body hash did not verify)")
                && stored[1].contains("dmarc=pass"),
            "{}",
            stored[1]
        );

        // p=none: failing mail is accepted and marked.
        let lax = "From: news@lax.test\r\nTo: alice@example.test\r\nSubject: news\r\n\r\nx\r\n";
        let reply = send(&mut c, "news@lax.test", lax).await;
        assert!(reply.starts_with("250"), "{reply}");
        let stored = ts.inbox_texts("alice@example.test").await;
        assert!(
            stored[2].contains("spf=fail") && stored[2].contains("dmarc=fail"),
            "{}",
            stored[2]
        );
        assert!(stored[2].contains("policy.dmarc=none"), "{}", stored[2]);

        // Unknown domain (no records, no DNS): accepted, results none/temperror, never lost.
        let unknown = "From: x@unknown.test\r\nTo: alice@example.test\r\nSubject: ?\r\n\r\nx\r\n";
        let reply = send(&mut c, "x@unknown.test", unknown).await;
        assert!(reply.starts_with("250"), "{reply}");
        assert_eq!(ts.inbox_texts("alice@example.test").await.len(), 4);
        ts.stop().await;
    }
}

#[tokio::test]
async fn dmarc_reject_and_the_checks_can_be_switched_off() {
    for backend in backends() {
        let (verifier, _) = seeded_verifier();
        let ts = TestServer::start_with_verifier(
            backend,
            |c| c.smtp.reject_dmarc_failures = false,
            verifier,
        )
        .await;
        ts.add_account("alice@example.test", "pw").await;
        let mut c = mx(&ts).await;
        let forged = "From: ceo@strict.test\r\nTo: alice@example.test\r\nSubject: wire money\r\n\r\nNow.\r\n";
        let reply = send(&mut c, "ceo@strict.test", forged).await;
        assert!(reply.starts_with("250"), "{reply}");
        let stored = ts.inbox_texts("alice@example.test").await;
        assert!(
            stored[0].contains("dmarc=fail") && stored[0].contains("policy.dmarc=reject"),
            "{}",
            stored[0]
        );
        ts.stop().await;

        // auth_checks = false: no header at all.
        let (verifier, _) = seeded_verifier();
        let ts = TestServer::start_with_verifier(backend, |c| c.smtp.auth_checks = false, verifier)
            .await;
        ts.add_account("alice@example.test", "pw").await;
        let mut c = mx(&ts).await;
        let reply = send(&mut c, "ceo@strict.test", forged).await;
        assert!(reply.starts_with("250"), "{reply}");
        assert!(!ts.inbox_texts("alice@example.test").await[0].contains("Authentication-Results"));
        ts.stop().await;
    }
}

#[tokio::test]
async fn dsn_parameters_are_accepted_and_checked() {
    let (verifier, _) = seeded_verifier();
    let ts =
        TestServer::start_with_verifier(pillarbox_tests::Backend::Sqlite, |_| {}, verifier).await;
    ts.add_account("alice@example.test", "pw").await;
    let mut c = mx(&ts).await;
    c.send_line("MAIL FROM:<ann@good.test> RET=HDRS ENVID=QQ314159")
        .await;
    assert!(c.read_line().await.starts_with("250"));
    c.send_line("RCPT TO:<alice@example.test> NOTIFY=SOMETIMES")
        .await;
    let reply = c.read_line().await;
    assert!(
        reply.starts_with("501 5.5.4") && reply.contains("NOTIFY"),
        "{reply}"
    );
    c.send_line(
        "RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test",
    )
    .await;
    assert!(c.read_line().await.starts_with("250"));
    c.send_line("DATA").await;
    assert!(c.read_line().await.starts_with("354"));
    c.send(b"Subject: dsn\r\n\r\nx\r\n.\r\n").await;
    assert!(c.read_line().await.starts_with("250"));
    c.send_line("MAIL FROM:<ann@good.test> RET=EVERYTHING")
        .await;
    let reply = c.read_line().await;
    assert!(
        reply.starts_with("501 5.5.4") && reply.contains("RET"),
        "{reply}"
    );
    assert_eq!(ts.inbox_texts("alice@example.test").await.len(), 1);
    ts.stop().await;
}
