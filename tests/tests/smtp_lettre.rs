//! A Rust SMTP client (lettre) submits over 587-style STARTTLS and 465-style
//! implicit TLS; the message reads back byte-exact apart from the trace headers.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use pillarbox_store::UidRange;
use pillarbox_tests::{TestServer, backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lettre_submits_over_starttls_and_implicit_tls() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", "lettre pass").await;
        let bob = ts.add_account("bob@example.test", "lettre pass").await;
        let cert = Certificate::from_pem(&std::fs::read(ts.cert_path()).unwrap()).unwrap();
        let tls = TlsParameters::builder("localhost".into())
            .add_root_certificate(cert)
            .build_rustls()
            .unwrap();
        let credentials = Credentials::new("alice@example.test".into(), "lettre pass".into());
        let raw = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: via lettre\r\n\r\nexact bytes\r\n..two dots\r\n";
        let envelope = lettre::address::Envelope::new(
            Some("alice@example.test".parse().unwrap()),
            vec!["bob@example.test".parse().unwrap()],
        )
        .unwrap();
        for (listener, mode) in [
            ("submission", Tls::Required(tls.clone())),
            ("submissions", Tls::Wrapper(tls.clone())),
        ] {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
                .port(ts.addr(listener).port())
                .tls(mode)
                .credentials(credentials.clone())
                .build();
            transport
                .send_raw(&envelope, raw)
                .await
                .unwrap_or_else(|e| panic!("{listener}: {e}"));
        }
        let inbox = ts.store().require_mailbox(bob.id, "INBOX").await.unwrap();
        let entries = ts
            .store()
            .messages(inbox.id, UidRange::all())
            .await
            .unwrap();
        assert_eq!(entries.len(), 2, "{backend:?}");
        for entry in entries {
            let stored = ts.store().message_bytes(entry.message).await.unwrap();
            assert!(stored.starts_with(b"Return-Path: <alice@example.test>\r\nReceived: "));
            // lettre ends DATA with CRLF "." CRLF after the message even when the
            // message ends in CRLF, so one empty line follows it on the wire.
            let mut sent = raw.to_vec();
            sent.extend_from_slice(b"\r\n");
            assert!(
                stored.ends_with(&sent),
                "byte-exact after the trace headers: {:?}",
                String::from_utf8_lossy(&stored)
            );
            assert_eq!(
                stored.len() as u64,
                ts.store()
                    .message(inbox.id, entry.uid)
                    .await
                    .unwrap()
                    .unwrap()
                    .size
            );
        }
        ts.stop().await;
    }
}
