//! What the server logs: a debug-level JSON log of full SMTP, POP3 and IMAP
//! sessions names the peer, protocol and account of each connection, and
//! never the password or the message body.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use base64::Engine;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Tr0ub4dor&3-horse";
const BODY_MARKER: &str = "the-secret-body-line-7c1f";

fn admin(dir: &Path, args: &[&str], stdin: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pillarbox"))
        .args(args)
        .current_dir(dir)
        .env_remove("PILLARBOX_CONFIG")
        .env("PILLARBOX_DATA_DIR", dir.join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "pillarbox {args:?}");
}

struct Line {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Line {
    fn connect(addr: SocketAddr) -> Line {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Line {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn read(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    /// Reads until a line starting with `prefix`; returns everything read.
    fn until(&mut self, prefix: &str) -> String {
        let mut all = String::new();
        loop {
            let line = self.read();
            assert!(!line.is_empty(), "connection closed; got {all}");
            all.push_str(&line);
            if line.starts_with(prefix) {
                return all;
            }
        }
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
        self.writer.write_all(b"\r\n").unwrap();
    }
}

fn start(dir: &Path) -> (Child, Vec<(String, SocketAddr)>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pillarbox"));
    command
        .arg("serve")
        .current_dir(dir)
        .env_remove("PILLARBOX_CONFIG")
        .env_remove("RUST_LOG")
        .env("PILLARBOX_DATA_DIR", dir.join("data"))
        .env("PILLARBOX_HOSTNAME", "mail.example.test")
        .env("PILLARBOX_LOG__LEVEL", "debug")
        .env("PILLARBOX_LOG__FORMAT", "json")
        .env("PILLARBOX_SMTP__AUTH_CHECKS", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in [
        "SMTP",
        "SUBMISSION",
        "SUBMISSIONS",
        "POP3",
        "POP3S",
        "IMAP",
        "IMAPS",
        "HTTP",
    ] {
        command.env(format!("PILLARBOX_LISTENER__{name}__ADDR"), "127.0.0.1:0");
    }
    // Passwords in clear over loopback, so the test needs no TLS client:
    // what is logged does not depend on the transport.
    for name in ["SUBMISSION", "POP3", "IMAP"] {
        command.env(
            format!("PILLARBOX_LISTENER__{name}__ALLOW_PLAINTEXT_AUTH"),
            "true",
        );
    }
    let mut child = command.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut banner = String::new();
    while !banner.contains("Stop with") && started.elapsed() < Duration::from_secs(30) {
        let mut buf = [0u8; 1024];
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        banner.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let addrs = banner
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?.to_string();
            let addr = words.next()?.parse().ok()?;
            Some((name, addr))
        })
        .collect();
    (child, addrs)
}

#[test]
fn a_debug_log_of_full_sessions_names_peers_and_accounts_but_never_passwords_or_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    admin(d, &["domain", "add", "example.test"], "");
    admin(
        d,
        &["account", "add", "alice@example.test", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    let (mut child, addrs) = start(d);
    let addr = |name: &str| {
        addrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("{name} in the banner: {addrs:?}"))
    };
    let plain = base64::engine::general_purpose::STANDARD
        .encode(format!("\0alice@example.test\0{PASSWORD}"));

    // SMTP submission with AUTH PLAIN, delivering a message to alice.
    let mut s = Line::connect(addr("submission"));
    s.until("220 ");
    s.send("EHLO client.example.test");
    s.until("250 ");
    s.send(&format!("AUTH PLAIN {plain}"));
    assert!(s.until("235").starts_with("235"));
    s.send("MAIL FROM:<alice@example.test>");
    s.until("250");
    s.send("RCPT TO:<alice@example.test>");
    s.until("250");
    s.send("DATA");
    s.until("354");
    s.send(&format!(
        "From: alice@example.test\r\nTo: alice@example.test\r\nSubject: logs\r\n\r\n{BODY_MARKER}\r\n."
    ));
    assert!(s.until("250").starts_with("250"), "delivered");
    s.send("QUIT");
    s.until("221");

    // IMAP: LOGIN, SELECT, the whole message.
    let mut i = Line::connect(addr("imap"));
    i.until("* OK");
    i.send(&format!("a LOGIN alice@example.test \"{PASSWORD}\""));
    assert!(i.until("a ").starts_with("a OK"));
    i.send("b SELECT INBOX");
    i.until("b OK");
    i.send("c FETCH 1 BODY[]");
    assert!(i.until("c OK").contains(BODY_MARKER), "the body is served");
    i.send("d LOGOUT");
    i.until("d OK");

    // POP3: USER/PASS, RETR.
    let mut p = Line::connect(addr("pop3"));
    p.until("+OK");
    p.send("USER alice@example.test");
    p.until("+OK");
    p.send(&format!("PASS {PASSWORD}"));
    assert!(p.read().starts_with("+OK"));
    p.send("RETR 1");
    assert!(p.until(".\r").contains(BODY_MARKER));
    p.send("QUIT");
    p.until("+OK");

    // A failed login is logged too, still without the password tried.
    let mut i = Line::connect(addr("imap"));
    i.until("* OK");
    i.send(&format!("a LOGIN alice@example.test \"{PASSWORD}-wrong\""));
    assert!(i.until("a ").starts_with("a NO"));
    drop(i);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child.wait().unwrap();

    assert!(log.lines().count() > 10, "a debug log was written:\n{log}");
    for secret in [PASSWORD, plain.as_str(), BODY_MARKER] {
        assert!(
            !log.contains(secret),
            "{secret:?} is in the log:\n{}",
            log.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // Every line is JSON; sessions carry their peer, protocol and account.
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for protocol in ["smtp", "imap", "pop3"] {
        let session = lines
            .iter()
            .filter_map(|l| l.get("span"))
            .find(|span| span["protocol"] == protocol && span["account"] == "alice@example.test")
            .unwrap_or_else(|| panic!("a {protocol} line with the account in its span:\n{log}"));
        let peer = session["peer"].as_str().unwrap_or_default();
        assert!(peer.starts_with("127.0.0.1:"), "{session}");
    }
}
