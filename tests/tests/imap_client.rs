//! IMAP with a real Rust client (async-imap) over real TLS, and the headline
//! scenario: SMTP delivers → IMAP IDLE sees EXISTS → POP3 downloads (mark-seen)
//! → IMAP sees \Seen → POP3 DELE+QUIT → IMAP sees EXPUNGE. Both backends.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use futures::TryStreamExt;
use pillarbox_directory::{AccountUpdate, AfterDownload};
use pillarbox_tests::{LineClient, TestServer, backends};
use std::time::{Duration, Instant};

const PASSWORD: &str = "imap pass";

async fn client(
    ts: &TestServer,
) -> async_imap::Session<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(ts.addr("imaps"))
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = ts.tls_connector().connect(name, tcp).await.unwrap();
    let mut client = async_imap::Client::new(tls);
    client.read_response().await.unwrap().unwrap();
    client
        .login("alice@example.test", PASSWORD)
        .await
        .map_err(|(e, _)| e)
        .unwrap()
}

const MESSAGE: &str = "From: ann@remote.test\r\nTo: alice@example.test\r\nSubject: Hello from async-imap\r\n\r\nBody line one.\r\n";

#[tokio::test]
async fn async_imap_client_does_everything() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        let mut s = client(&ts).await;
        let caps = s.capabilities().await.unwrap();
        assert!(caps.has_str("IMAP4rev2") && caps.has_str("IDLE") && caps.has_str("MOVE"));

        let names: Vec<_> = s
            .list(Some(""), Some("*"))
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let names: Vec<String> = names.iter().map(|n| n.name().to_string()).collect();
        for expected in ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"] {
            assert!(names.contains(&expected.to_string()), "{names:?}");
        }
        s.create("Receipts").await.unwrap();
        s.append("INBOX", Some("(\\Flagged)"), None, MESSAGE)
            .await
            .unwrap();
        s.append("INBOX", None, None, MESSAGE.replace("Hello", "Second"))
            .await
            .unwrap();
        let mailbox = s.select("INBOX").await.unwrap();
        assert_eq!(mailbox.exists, 2);
        assert_eq!(mailbox.uid_next, Some(3));

        let fetched: Vec<_> = s
            .fetch("1:2", "(UID FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[])")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(fetched.len(), 2);
        assert_eq!(
            fetched[0].body().unwrap(),
            MESSAGE.as_bytes(),
            "byte-exact read-back"
        );
        assert_eq!(fetched[0].size, Some(MESSAGE.len() as u32));
        let subject = fetched[1].envelope().unwrap().subject.as_deref().unwrap();
        assert_eq!(subject, b"Second from async-imap");
        assert!(
            fetched[0]
                .flags()
                .any(|f| f == async_imap::types::Flag::Flagged)
        );

        let hits = s.uid_search("SUBJECT Second").await.unwrap();
        assert_eq!(hits.into_iter().collect::<Vec<_>>(), vec![2]);
        let _: Vec<_> = s
            .store("2", "+FLAGS (\\Seen)")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let unseen = s.search("UNSEEN").await.unwrap();
        assert_eq!(unseen.into_iter().collect::<Vec<_>>(), vec![1]);

        s.copy("1", "Receipts").await.unwrap();
        s.mv("2", "Archive").await.unwrap();
        let status = s.status("Receipts", "(MESSAGES)").await.unwrap();
        assert_eq!(status.exists, 1);
        let status = s.status("Archive", "(MESSAGES)").await.unwrap();
        assert_eq!(status.exists, 1);

        let _: Vec<_> = s
            .store("1", "+FLAGS (\\Deleted)")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let expunged: Vec<_> = s.expunge().await.unwrap().try_collect().await.unwrap();
        assert_eq!(expunged, vec![1]);

        // IDLE: a message appended by a second client is pushed at once.
        let mut idle = s.idle();
        idle.init().await.unwrap();
        let mut other = client(&ts).await;
        let (wait, _stop) = idle.wait_with_timeout(Duration::from_secs(10));
        let (response, ()) = tokio::join!(wait, async {
            other.append("INBOX", None, None, MESSAGE).await.unwrap();
        });
        match response.unwrap() {
            async_imap::extensions::idle::IdleResponse::NewData(data) => {
                let text = format!("{:?}", data.parsed());
                assert!(text.contains("Exists(1)"), "{text}");
            }
            other => panic!("no EXISTS during IDLE: {other:?}"),
        }
        let mut s = idle.done().await.unwrap();
        s.logout().await.unwrap();
        other.logout().await.unwrap();
        ts.stop().await;
    }
}

/// Reads IMAP lines until one contains `text`; returns when it arrived.
async fn wait_for(c: &mut LineClient, text: &str) -> (Instant, Vec<String>) {
    let lines = c.read_until(|l| l.contains(text)).await;
    (Instant::now(), lines)
}

#[tokio::test]
async fn smtp_imap_idle_pop3_on_one_mailbox() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        ts.directory()
            .update_account(
                "alice@example.test",
                &AccountUpdate {
                    after_download: Some(AfterDownload::MarkSeen),
                    ..Default::default()
                },
            )
            .await
            .unwrap();

        // The phone: IMAP, INBOX selected, in IDLE.
        let mut imap = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
        imap.read_line().await;
        imap.send_line(&format!("a LOGIN alice@example.test \"{PASSWORD}\""))
            .await;
        imap.read_until(|l| l.starts_with("a ")).await;
        imap.send_line("b SELECT INBOX").await;
        let lines = imap.read_until(|l| l.starts_with("b ")).await;
        assert!(lines.iter().any(|l| l == "* 0 EXISTS\r\n"), "{lines:?}");
        imap.send_line("c IDLE").await;
        assert!(imap.read_line().await.starts_with("+ "));

        // Mail arrives over SMTP on the MX listener.
        let mut smtp = LineClient::connect(ts.addr("smtp")).await;
        smtp.read_line().await;
        smtp.send_line("EHLO remote.test").await;
        smtp.read_until(|l| l.starts_with("250 ")).await;
        smtp.send_line("MAIL FROM:<ann@remote.test>").await;
        smtp.read_line().await;
        smtp.send_line("RCPT TO:<alice@example.test>").await;
        assert!(smtp.read_line().await.starts_with("250"));
        smtp.send_line("DATA").await;
        smtp.read_line().await;
        smtp.send(b"Subject: The headline\r\n\r\nPOP3 and IMAP, one mailbox.\r\n.\r\n")
            .await;
        let accepted = smtp.read_line().await;
        let accepted_at = Instant::now();
        assert!(accepted.starts_with("250"), "{accepted}");
        let (seen_at, lines) = wait_for(&mut imap, "EXISTS").await;
        assert!(lines.iter().any(|l| l == "* 1 EXISTS\r\n"), "{lines:?}");
        let delay = seen_at.duration_since(accepted_at);
        println!("SMTP 250 → IMAP IDLE EXISTS: {delay:?} ({:?})", ts.backend);

        // The laptop: POP3 downloads it (policy mark-seen) and the phone sees \Seen.
        let mut pop = LineClient::connect_tls(ts.addr("pop3s"), &ts.tls_connector()).await;
        pop.read_line().await;
        pop.send_line("USER alice@example.test").await;
        pop.read_line().await;
        pop.send_line(&format!("PASS {PASSWORD}")).await;
        assert!(pop.read_line().await.starts_with("+OK"));
        pop.send_line("RETR 1").await;
        let message = pop.read_until(|l| l == ".\r\n").await;
        assert!(
            message.iter().any(|l| l.contains("one mailbox")),
            "{message:?}"
        );
        let (_, lines) = wait_for(&mut imap, "FETCH").await;
        let fetch = lines.last().unwrap();
        assert!(
            fetch.starts_with("* 1 FETCH") && fetch.contains("\\Seen"),
            "{lines:?}"
        );

        // The laptop deletes it; at QUIT the phone gets EXPUNGE.
        pop.send_line("DELE 1").await;
        assert!(pop.read_line().await.starts_with("+OK"));
        pop.send_line("QUIT").await;
        assert!(pop.read_line().await.starts_with("+OK"));
        let (_, lines) = wait_for(&mut imap, "EXPUNGE").await;
        assert_eq!(lines.last().unwrap(), "* 1 EXPUNGE\r\n");
        imap.send_line("DONE").await;
        assert!(imap.read_line().await.starts_with("c OK"));
        imap.send_line("d STATUS INBOX (MESSAGES)").await;
        let lines = imap.read_until(|l| l.starts_with("d ")).await;
        assert!(lines[0].contains("MESSAGES 0"), "{lines:?}");
        ts.stop().await;
    }
}
