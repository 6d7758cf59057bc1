//! Programs users actually run send mail through Pillarbox: swaks to the MX
//! listener, Python's smtplib to submission with STARTTLS and AUTH; Python's
//! poplib then downloads both. `.ci/run` installs them from Debian's packages
//! (`apt-get install swaks python3`).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_store::UidRange;
use pillarbox_tests::{TestServer, backends, client_output as text, run_client as run};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_and_smtplib_send_and_poplib_reads_it_back() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        let alice = ts.add_account("alice@example.test", PASSWORD).await;
        ts.add_account("bob@example.test", PASSWORD).await;
        let cert = ts.cert_path().display().to_string();
        let smtp = ts.addr("smtp");
        let submission = ts.addr("submission");

        let out = run(
            "swaks",
            "swaks",
            &[
                "--server",
                "127.0.0.1",
                "--port",
                &smtp.port().to_string(),
                "--from",
                "carol@remote.test",
                "--to",
                "alice@example.test",
                "--header",
                "Subject: hello from swaks",
                "--body",
                "Sent by swaks.",
            ],
        );
        assert!(out.status.success(), "swaks failed:\n{}", text(&out));

        let script = format!(
            r#"
import smtplib, ssl
from email.message import EmailMessage
ctx = ssl.create_default_context(cafile={cert:?})
ctx.check_hostname = False
m = EmailMessage()
m["From"] = "bob@example.test"; m["To"] = "alice@example.test"; m["Subject"] = "hello from smtplib"
m.set_content("Sent by Python's smtplib.")
with smtplib.SMTP("127.0.0.1", {port}, timeout=30) as s:
    s.starttls(context=ctx)
    s.login("bob@example.test", {PASSWORD:?})
    s.send_message(m)
print("sent")
"#,
            port = submission.port()
        );
        let out = run("python3", "python3", &["-c", &script]);
        assert!(out.status.success(), "smtplib failed:\n{}", text(&out));

        let inbox = ts.store().require_mailbox(alice.id, "INBOX").await.unwrap();
        let entries = ts
            .store()
            .messages(inbox.id, UidRange::all())
            .await
            .unwrap();
        assert_eq!(entries.len(), 2, "{backend:?}");
        let mut bodies = String::new();
        for entry in entries {
            bodies.push_str(&String::from_utf8_lossy(
                &ts.store().message_bytes(entry.message).await.unwrap(),
            ));
        }
        assert!(
            bodies.contains("Sent by swaks.") && bodies.contains("Sent by Python's smtplib."),
            "{bodies}"
        );
        assert!(
            bodies.contains("with ESMTPSA"),
            "submission trace header: {bodies}"
        );

        let script = format!(
            r#"
import poplib, ssl
ctx = ssl.create_default_context(cafile={cert:?})
ctx.check_hostname = False
p = poplib.POP3_SSL("127.0.0.1", {port}, context=ctx, timeout=30)
p.user("alice@example.test"); p.pass_({PASSWORD:?})
text = "".join(b"\n".join(p.retr(i)[1]).decode() for i in (1, 2))
assert "Sent by swaks." in text and "smtplib" in text, text
p.quit()
print("read")
"#,
            port = ts.addr("pop3s").port()
        );
        let out = run("python3", "python3", &["-c", &script]);
        assert!(out.status.success(), "poplib failed:\n{}", text(&out));
        ts.stop().await;
    }
}
