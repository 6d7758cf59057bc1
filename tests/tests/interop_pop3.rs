//! Programs users actually run, against a real Pillarbox on loopback:
//! Python's poplib and fetchmail download over POP3S what Python's smtplib
//! delivered through Pillarbox's own MX listener. `.ci/run` installs them
//! from Debian's packages (`apt-get install python3 fetchmail`).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_store::UidRange;
use pillarbox_tests::{TestServer, backends, client_output as text, run_client as run};

const PASSWORD: &str = "correct horse battery staple";

/// Delivers through Pillarbox's own MX listener with Python's smtplib.
fn deliver(ts: &TestServer, address: &str, subject: &str) {
    let script = format!(
        r#"
import smtplib
body = "From: carol@remote.test\r\nTo: {address}\r\nSubject: {subject}\r\n\r\nThis is {subject}.\r\n.leading dot line\r\n"
with smtplib.SMTP("127.0.0.1", {port}, timeout=30) as s:
    s.sendmail("carol@remote.test", ["{address}"], body)
"#,
        port = ts.addr("smtp").port()
    );
    let out = run("python3", "python3", &["-c", &script]);
    assert!(
        out.status.success(),
        "smtplib delivery failed:\n{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poplib_and_fetchmail_download_over_pop3s() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        let alice = ts.add_account("alice@example.test", PASSWORD).await;
        deliver(&ts, "alice@example.test", "message one");
        deliver(&ts, "alice@example.test", "message two");
        let cert = ts.cert_path().display().to_string();
        let pop3s = ts.addr("pop3s");

        // Python's poplib: STAT, UIDL, RETR, and the dot-stuffed line comes back intact.
        let script = format!(
            r#"
import poplib, ssl
ctx = ssl.create_default_context(cafile={cert:?})
ctx.check_hostname = False
p = poplib.POP3_SSL("127.0.0.1", {port}, context=ctx, timeout=30)
p.user("alice@example.test"); p.pass_({PASSWORD:?})
count, size = p.stat()
print("STAT", count, size)
print("UIDS", len(p.uidl()[1]))
resp, lines, octets = p.retr(2)
body = b"\r\n".join(lines).decode()
assert "This is message two." in body, body
assert "\n.leading dot line" in body, body
print("RETR", octets)
p.quit()
"#,
            port = pop3s.port()
        );
        let out = run("python3", "python3", &["-c", &script]);
        assert!(out.status.success(), "poplib failed:\n{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("STAT 2 "), "{}", text(&out));
        assert!(stdout.contains("UIDS 2"), "{}", text(&out));

        // fetchmail: download everything over TLS with certificate checks, delete on the server.
        let work = tempfile::tempdir().unwrap();
        let mbox = work.path().join("fetched.mbox");
        let rc = work.path().join("fetchmailrc");
        std::fs::write(
            &rc,
            format!(
                "poll 127.0.0.1 service {port} protocol pop3 auth password\n  user \"alice@example.test\" password \"{PASSWORD}\"\n  \
                 ssl sslcertck sslcertfile \"{cert}\" sslcommonname localhost\n  nokeep mda \"/bin/sh -c 'cat >> {out}'\"\n",
                port = pop3s.port(),
                out = mbox.display()
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let home = work.path().display().to_string();
        let out = run(
            "env",
            "fetchmail",
            &[
                &format!("HOME={home}"),
                "fetchmail",
                "-f",
                rc.to_str().unwrap(),
                "--nodetach",
                "--nosyslog",
                "-v",
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "fetchmail fetched mail:\n{}",
            text(&out)
        );
        let fetched = std::fs::read_to_string(&mbox).unwrap_or_default();
        assert!(
            fetched.contains("This is message one.") && fetched.contains("This is message two."),
            "{fetched}\n{}",
            text(&out)
        );
        // nokeep: DELE + QUIT emptied the INBOX that IMAP sees too.
        let inbox = ts.store().require_mailbox(alice.id, "INBOX").await.unwrap();
        assert!(
            ts.store()
                .messages(inbox.id, UidRange::all())
                .await
                .unwrap()
                .is_empty(),
            "{backend:?}"
        );
        ts.stop().await;
    }
}
