//! The POP3-vs-IMAP lab over real HTTP: every action runs a real session on
//! the server's own listeners; the page's state and live events follow.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use base64::Engine;
use pillarbox_tests::{TestServer, backends};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

async fn http(
    ts: &TestServer,
    method: &str,
    path: &str,
    body: &str,
    auth: Option<&str>,
) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(ts.addr("http"))
        .await
        .unwrap();
    let auth = auth
        .map(|a| {
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(a)
            )
        })
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        stream.read_to_string(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn state(ts: &TestServer) -> serde_json::Value {
    let (status, body) = http(ts, "GET", "/lab/state", "", None).await;
    assert!(status.contains("200"), "{status} {body}");
    serde_json::from_str(&body).unwrap()
}

fn inbox(state: &serde_json::Value) -> Vec<serde_json::Value> {
    state["imap"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "INBOX")
        .unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn lab_actions_run_real_sessions_and_show_transcripts() {
    for backend in backends() {
        let ts = TestServer::start_with(backend, |c| {
            c.lab.enabled = true;
            c.lab.demo_account = Some("alice@example.test".into());
            c.lab.demo_password = Some("lab pw".into());
        })
        .await;
        ts.add_account("alice@example.test", "lab pw").await;

        let (status, page) = http(&ts, "GET", "/lab", "", None).await;
        assert!(
            status.contains("200") && page.contains("POP3 and IMAP on the same mailbox"),
            "{status}"
        );

        // Live events: subscribe before acting.
        let mut events = tokio::net::TcpStream::connect(ts.addr("http"))
            .await
            .unwrap();
        events
            .write_all(b"GET /lab/events HTTP/1.1\r\nHost: lab\r\n\r\n")
            .await
            .unwrap();
        let mut events = BufReader::new(events);
        // The response head comes once the stream is subscribed.
        let mut line = String::new();
        loop {
            line.clear();
            tokio::time::timeout(Duration::from_secs(10), events.read_line(&mut line))
                .await
                .unwrap()
                .unwrap();
            if line == "\r\n" {
                break;
            }
        }

        let (_, body) = http(
            &ts,
            "POST",
            "/lab/send",
            r#"{"subject":"Lab one","body":"hello"}"#,
            None,
        )
        .await;
        let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(sent["ok"], true, "{body}");
        let transcript: Vec<String> = serde_json::from_value(sent["transcript"].clone()).unwrap();
        assert!(
            transcript
                .iter()
                .any(|l| l == "C: RCPT TO:<alice@example.test>"),
            "{transcript:?}"
        );
        assert!(
            transcript.iter().any(|l| l.starts_with("S: 250 2.0.0")),
            "{transcript:?}"
        );

        // The event arrives.
        let got_event = tokio::time::timeout(Duration::from_secs(10), async {
            let mut line = String::new();
            loop {
                line.clear();
                events.read_line(&mut line).await.unwrap();
                if line.starts_with("event: changed") {
                    return true;
                }
            }
        })
        .await
        .unwrap_or(false);
        assert!(got_event, "no server-sent event after the delivery");

        let s = state(&ts).await;
        assert_eq!(inbox(&s).len(), 1);
        assert_eq!(inbox(&s)[0]["subject"], "Lab one");
        assert_eq!(s["pop3"].as_array().unwrap().len(), 1);

        // The laptop downloads with "leave a copy" off: RETR, DELE, QUIT; the phone loses it.
        let (_, body) = http(&ts, "POST", "/lab/pop3", r#"{"leave_copy":false}"#, None).await;
        let pop: serde_json::Value = serde_json::from_str(&body).unwrap();
        let transcript: Vec<String> = serde_json::from_value(pop["transcript"].clone()).unwrap();
        assert!(
            transcript.iter().any(|l| l == "C: PASS ••••••"),
            "password masked: {transcript:?}"
        );
        assert!(
            !transcript.iter().any(|l| l.contains("lab pw")),
            "{transcript:?}"
        );
        for expected in ["C: RETR 1", "C: DELE 1", "C: QUIT"] {
            assert!(
                transcript.iter().any(|l| l == expected),
                "{expected}: {transcript:?}"
            );
        }
        assert!(inbox(&state(&ts).await).is_empty());

        // Outlook-style protected deletes: the same download leaves the message.
        let (status, _) = http(
            &ts,
            "POST",
            "/lab/policy",
            r#"{"honour_deletes":false}"#,
            None,
        )
        .await;
        assert!(status.contains("200"));
        http(
            &ts,
            "POST",
            "/lab/send",
            r#"{"subject":"Lab two","body":"x"}"#,
            None,
        )
        .await;
        http(&ts, "POST", "/lab/pop3", r#"{"leave_copy":false}"#, None).await;
        let s = state(&ts).await;
        assert_eq!(inbox(&s).len(), 1, "{s}");
        assert_eq!(s["policy"]["honour_deletes"], false);
        assert_eq!(s["pop3"][0]["on_laptop"], true);

        // An IMAP action over a real IMAP session.
        let uid = inbox(&s)[0]["uid"].as_u64().unwrap();
        let (_, body) = http(
            &ts,
            "POST",
            "/lab/imap",
            &format!(r#"{{"action":"flag","uid":{uid}}}"#),
            None,
        )
        .await;
        let imap: serde_json::Value = serde_json::from_str(&body).unwrap();
        let transcript: Vec<String> = serde_json::from_value(imap["transcript"].clone()).unwrap();
        assert!(
            transcript
                .iter()
                .any(|l| l == &format!("C: c UID STORE {uid} +FLAGS (\\Flagged)")),
            "{transcript:?}"
        );
        assert!(
            transcript
                .iter()
                .any(|l| l.starts_with("C: a LOGIN alice@example.test \"••••••\"")),
            "{transcript:?}"
        );
        let s = state(&ts).await;
        assert!(
            inbox(&s)[0]["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "\\Flagged"),
            "{s}"
        );
        let (status, _) = http(
            &ts,
            "POST",
            "/lab/imap",
            r#"{"action":"explode","uid":1}"#,
            None,
        )
        .await;
        assert!(status.contains("400"));
        ts.stop().await;
    }
}

#[tokio::test]
async fn lab_on_a_real_server_asks_for_the_accounts_own_login() {
    let ts =
        TestServer::start_with(pillarbox_tests::Backend::Sqlite, |c| c.lab.enabled = true).await;
    ts.add_account("bob@example.test", "bob pw").await;
    let (status, _) = http(&ts, "GET", "/lab", "", None).await;
    assert!(status.contains("401"), "{status}");
    let (status, _) = http(&ts, "GET", "/lab/state", "", Some("bob@example.test:wrong")).await;
    assert!(status.contains("401"), "{status}");
    let (status, body) = http(
        &ts,
        "GET",
        "/lab/state",
        "",
        Some("bob@example.test:bob pw"),
    )
    .await;
    assert!(
        status.contains("200") && body.contains("bob@example.test"),
        "{status} {body}"
    );
    ts.stop().await;

    let ts = TestServer::start(pillarbox_tests::Backend::Sqlite).await;
    let (status, _) = http(&ts, "GET", "/lab", "", None).await;
    assert!(
        status.contains("404"),
        "the lab is off by default: {status}"
    );
    ts.stop().await;
}
