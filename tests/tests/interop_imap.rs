//! Programs users actually run, against a real Pillarbox on loopback:
//! Python's imaplib, mbsync (isync) and curl sync and read over IMAPS what
//! Python's smtplib delivered through Pillarbox's MX listener. `.ci/run`
//! installs them from Debian's packages (`apt-get install python3 isync curl`).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_store::UidRange;
use pillarbox_tests::{TestServer, backends, client_output as text, run_client as run};

const PASSWORD: &str = "correct horse battery staple";

fn deliver(ts: &TestServer, subject: &str) {
    let script = format!(
        r#"
import smtplib
body = "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\r\nThis is {subject}.\r\n"
with smtplib.SMTP("127.0.0.1", {port}, timeout=30) as s:
    s.sendmail("carol@remote.test", ["alice@example.test"], body)
"#,
        port = ts.addr("smtp").port()
    );
    let out = run("python3", "python3", &["-c", &script]);
    assert!(out.status.success(), "smtplib failed:\n{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaplib_reads_and_changes_over_imaps_and_starttls() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        let alice = ts.add_account("alice@example.test", PASSWORD).await;
        deliver(&ts, "first");
        deliver(&ts, "second");
        let script = format!(
            r#"
import imaplib, ssl
ctx = ssl.create_default_context(cafile={cert:?})
m = imaplib.IMAP4_SSL("127.0.0.1", {imaps}, ssl_context=ctx, timeout=30)
m.login("alice@example.test", {PASSWORD:?})
typ, boxes = m.list()
assert any(b'"Sent"' in b for b in boxes), boxes
typ, data = m.select("INBOX")
assert data == [b"2"], data
typ, data = m.search(None, "SUBJECT", "second")
assert data == [b"2"], data
typ, data = m.fetch("2", "(RFC822)")
assert b"This is second." in data[0][1], data
typ, data = m.fetch("1", "(FLAGS)")
print("FLAGS", data)
m.store("1", "+FLAGS", "\\Flagged")
m.create("Saved")
m.copy("1:2", "Saved")
m.append("Saved", "(\\Seen)", imaplib.Time2Internaldate(1700000000), b"Subject: appended\r\n\r\nfrom imaplib\r\n")
m.store("2", "+FLAGS", "\\Deleted")
typ, data = m.expunge()
print("EXPUNGED", data)
typ, data = m.status("Saved", "(MESSAGES UNSEEN)")
print("STATUS", data)
m.logout()

# STARTTLS on the plaintext port.
p = imaplib.IMAP4("127.0.0.1", {imap}, timeout=30)
assert "LOGINDISABLED" in p.capabilities, p.capabilities
p.starttls(ssl_context=ctx)
p.login("alice@example.test", {PASSWORD:?})
typ, data = p.select("Saved", readonly=True)
print("SAVED", data)
p.logout()
"#,
            cert = ts.cert_path().display().to_string(),
            imaps = ts.addr("imaps").port(),
            imap = ts.addr("imap").port(),
        );
        let out = run("python3", "python3", &["-c", &script]);
        assert!(out.status.success(), "imaplib failed:\n{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("EXPUNGED [b'2']"), "{}", text(&out));
        assert!(stdout.contains("(MESSAGES 3 UNSEEN 1)"), "{}", text(&out));
        assert!(stdout.contains("SAVED [b'3']"), "{}", text(&out));
        // The store agrees.
        let inbox = ts.store().require_mailbox(alice.id, "INBOX").await.unwrap();
        let left = ts
            .store()
            .messages(inbox.id, UidRange::all())
            .await
            .unwrap();
        assert_eq!(left.len(), 1);
        assert!(left[0].flags.contains(pillarbox_store::SystemFlag::Flagged));
        ts.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbsync_syncs_both_ways_and_curl_reads() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        let alice = ts.add_account("alice@example.test", PASSWORD).await;
        deliver(&ts, "for mbsync one");
        deliver(&ts, "for mbsync two");
        let work = tempfile::tempdir().unwrap();
        let maildir = work.path().join("mail");
        std::fs::create_dir_all(&maildir).unwrap();
        let rc = work.path().join("mbsyncrc");
        std::fs::write(
            &rc,
            format!(
                "IMAPAccount pillarbox\nHost 127.0.0.1\nPort {port}\nUser alice@example.test\nPass \"{PASSWORD}\"\n\
                 SSLType IMAPS\nCertificateFile {cert}\n\n\
                 IMAPStore remote\nAccount pillarbox\n\n\
                 MaildirStore local\nPath {dir}/\nInbox {dir}/INBOX\nSubFolders Verbatim\n\n\
                 Channel mail\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
                port = ts.addr("imaps").port(),
                cert = ts.cert_path().display(),
                dir = maildir.display(),
            ),
        )
        .unwrap();
        let rc = rc.display().to_string();
        let out = run("mbsync", "isync", &["-c", &rc, "-a"]);
        assert!(out.status.success(), "mbsync failed:\n{}", text(&out));
        let new = maildir.join("INBOX").join("new");
        let cur = maildir.join("INBOX").join("cur");
        let count = |dir: &std::path::Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(count(&new) + count(&cur), 2, "{}", text(&out));
        assert!(maildir.join("Sent").exists() && maildir.join("Archive").exists());

        // A message written locally goes up on the next sync.
        let drafts_new = maildir.join("Drafts").join("new");
        std::fs::write(
            drafts_new.join("1700000000.local.draft"),
            "Subject: written offline\r\n\r\nsync me\r\n",
        )
        .unwrap();
        // With its network log (-Dn): mbsync compresses the session
        // (COMPRESS=DEFLATE through zlib) and the sync goes through it.
        let out = run("mbsync", "isync", &["-Dn", "-c", &rc, "-a"]);
        assert!(out.status.success(), "mbsync failed:\n{}", text(&out));
        let log = text(&out);
        assert!(
            log.contains("COMPRESS DEFLATE") && log.contains("OK DEFLATE active"),
            "mbsync did not compress:\n{log}"
        );
        let drafts = ts
            .store()
            .require_mailbox(alice.id, "Drafts")
            .await
            .unwrap();
        assert_eq!(
            ts.store().mailbox_counts(drafts.id).await.unwrap().messages,
            1
        );

        // curl reads a message by UID and lists the mailboxes.
        let cert = ts.cert_path().display().to_string();
        let base = format!("imaps://127.0.0.1:{}", ts.addr("imaps").port());
        let user = format!("alice@example.test:{PASSWORD}");
        let out = run(
            "curl",
            "curl",
            &[
                "-sS",
                "--cacert",
                &cert,
                "-u",
                &user,
                &format!("{base}/INBOX;UID=2"),
            ],
        );
        assert!(out.status.success(), "curl failed:\n{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("This is for mbsync two."),
            "{}",
            text(&out)
        );
        let out = run(
            "curl",
            "curl",
            &["-sS", "--cacert", &cert, "-u", &user, &format!("{base}/")],
        );
        assert!(out.status.success(), "curl failed:\n{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("\"Drafts\""),
            "{}",
            text(&out)
        );
        let out = run(
            "curl",
            "curl",
            &[
                "-sS",
                "--cacert",
                &cert,
                "-u",
                &user,
                &format!("{base}/INBOX?SUBJECT%20two"),
            ],
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("SEARCH 2"),
            "{}",
            text(&out)
        );
        ts.stop().await;
    }
}
