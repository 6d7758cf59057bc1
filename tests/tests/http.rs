//! The HTTP endpoint over a real socket: health, Prometheus metrics and the
//! client autoconfiguration documents, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_tests::{Backend, LineClient, TestServer, backends};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request; returns (status line, headers + body).
async fn http(ts: &TestServer, method: &str, path: &str, body: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(ts.addr("http"))
        .await
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: mail.example.test\r\nConnection: close\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    let status = response.lines().next().unwrap_or_default().to_string();
    (status, response)
}

#[tokio::test]
async fn health_metrics_and_autoconfiguration() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", "pw").await;

        let (status, body) = http(&ts, "GET", "/healthz", "").await;
        assert!(status.contains("200"), "{body}");
        assert!(
            body.contains("\"store\":\"ok\"") && body.contains("\"imaps\":"),
            "{body}"
        );

        // Activity shows in the metrics: a connection and a failed and a good login.
        let mut c = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
        c.read_line().await;
        c.send_line("a LOGIN alice@example.test pw").await;
        assert!(c.read_line().await.starts_with("a OK"));
        let (status, body) = http(&ts, "GET", "/metrics", "").await;
        assert!(status.contains("200"), "{body}");
        assert!(
            body.contains("pillarbox_connections_total{protocol=\"imap\",listener=\"imaps\"}"),
            "{body}"
        );
        assert!(
            body.contains("pillarbox_logins_total{protocol=\"imap\",result=\"ok\"}"),
            "{body}"
        );
        assert!(body.contains("pillarbox_queue_messages 0"), "{body}");
        assert!(body.contains("pillarbox_store_ping_seconds"), "{body}");

        // Thunderbird.
        let imaps = ts.addr("imaps").port();
        let (status, body) = http(
            &ts,
            "GET",
            "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.test",
            "",
        )
        .await;
        assert!(status.contains("200"), "{body}");
        assert!(body.contains("<domain>example.test</domain>"), "{body}");
        assert!(body.contains(&format!("<incomingServer type=\"imap\">\n      <hostname>mail.example.test</hostname>\n      <port>{imaps}</port>\n      <socketType>SSL</socketType>")), "{body}");
        assert!(
            body.contains("<incomingServer type=\"pop3\">")
                && body.contains("<socketType>STARTTLS</socketType>"),
            "{body}"
        );

        // Outlook.
        let request = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>alice@example.test</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>";
        let (status, body) = http(&ts, "POST", "/autodiscover/autodiscover.xml", request).await;
        assert!(status.contains("200"), "{body}");
        assert!(body.contains(&format!("<Type>IMAP</Type>\n        <Server>mail.example.test</Server>\n        <Port>{imaps}</Port>\n        <LoginName>alice@example.test</LoginName>")), "{body}");
        let (status, _) = http(&ts, "POST", "/autodiscover/autodiscover.xml", "<nothing/>").await;
        assert!(status.contains("400"), "{status}");

        // Apple.
        let (status, body) = http(
            &ts,
            "GET",
            "/apple/pillarbox.mobileconfig?emailaddress=alice@example.test",
            "",
        )
        .await;
        assert!(status.contains("200"), "{body}");
        assert!(body.contains("application/x-apple-aspen-config"), "{body}");
        assert!(
            body.contains("<key>IncomingMailServerPortNumber</key><integer>")
                && body.contains("com.apple.mail.managed"),
            "{body}"
        );
        let (status, _) = http(&ts, "GET", "/nowhere", "").await;
        assert!(status.contains("404"), "{status}");
        ts.stop().await;
    }
}

/// The value of one Prometheus sample (`name{labels}` as rendered), 0 when absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// The metrics as a scrape sees them.
async fn scrape(ts: &TestServer) -> String {
    let (status, body) = http(ts, "GET", "/metrics", "").await;
    assert!(status.contains("200"), "{body}");
    body
}

#[tokio::test]
async fn metrics_move_with_a_delivery_and_a_failed_login_and_name_no_account() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("carol@example.test", "right password").await;
        let delivered = "pillarbox_messages_delivered_total";
        let failed = "pillarbox_logins_total{protocol=\"imap\",result=\"failed\"}";
        let before = scrape(&ts).await;

        let mut c = LineClient::connect(ts.addr("smtp")).await;
        c.read_line().await;
        for (command, code) in [
            ("EHLO client.test", "250 "),
            ("MAIL FROM:<x@remote.test>", "250"),
            ("RCPT TO:<carol@example.test>", "250"),
            ("DATA", "354"),
        ] {
            c.send_line(command).await;
            let mut line = c.read_line().await;
            while !line.starts_with(code) {
                assert!(!line.is_empty(), "{command}");
                line = c.read_line().await;
            }
        }
        c.send(b"Subject: counted\r\n\r\nhello\r\n.\r\n").await;
        assert!(c.read_line().await.starts_with("250"));

        let mut i = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
        i.read_line().await;
        i.send_line("a LOGIN carol@example.test wrong").await;
        assert!(i.read_line().await.starts_with("a NO"));

        let after = scrape(&ts).await;
        // Other tests in this process count too: the counters only have to move.
        assert!(
            sample(&after, delivered) >= sample(&before, delivered) + 1.0,
            "{delivered}: {} -> {}",
            sample(&before, delivered),
            sample(&after, delivered)
        );
        assert!(
            sample(&after, failed) >= sample(&before, failed) + 1.0,
            "{failed}:\n{after}"
        );
        assert!(
            !after.contains("carol"),
            "no account name in /metrics by default:\n{after}"
        );
        ts.stop().await;
    }
}

#[tokio::test]
async fn account_labels_when_configured() {
    let ts = TestServer::start_with(Backend::Sqlite, |c| c.metrics.account_labels = true).await;
    ts.add_account("dave@example.test", "pw").await;
    let mut i = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
    i.read_line().await;
    i.send_line("a LOGIN dave@example.test pw").await;
    assert!(i.read_line().await.starts_with("a OK"));
    // A guessed user name never becomes a label.
    let mut j = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
    j.read_line().await;
    j.send_line("b LOGIN nobody-guessed@example.test pw").await;
    assert!(j.read_line().await.starts_with("b NO"));
    let metrics = scrape(&ts).await;
    assert!(
        sample(
            &metrics,
            "pillarbox_account_logins_total{account=\"dave@example.test\",protocol=\"imap\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert!(!metrics.contains("nobody-guessed"), "{metrics}");
    ts.stop().await;
}

#[tokio::test]
async fn autoconfiguration_is_only_for_our_domains_and_escapes_what_it_echoes() {
    let ts = TestServer::start(Backend::Sqlite).await;
    ts.add_account("alice@example.test", "pw").await;
    // Someone else's domain: no document that would send them here.
    for (method, path, body) in [
        (
            "GET",
            "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob%40other.test",
            "",
        ),
        (
            "GET",
            "/apple/pillarbox.mobileconfig?emailaddress=bob@other.test",
            "",
        ),
        (
            "POST",
            "/autodiscover/autodiscover.xml",
            "<Autodiscover><Request><EMailAddress>bob@other.test</EMailAddress></Request></Autodiscover>",
        ),
    ] {
        let (status, response) = http(&ts, method, path, body).await;
        assert!(status.contains("404"), "{path}: {response}");
        assert!(!response.contains("<?xml"), "{response}");
    }
    // Without emailaddress, Thunderbird's domain is in the Host header
    // (autoconfig.DOMAIN); `http` sends Host: mail.example.test.
    let (status, _) = http(&ts, "GET", "/mail/config-v1.1.xml", "").await;
    assert!(
        status.contains("404"),
        "mail.example.test is not a mail domain"
    );
    let mut stream = tokio::net::TcpStream::connect(ts.addr("http"))
        .await
        .unwrap();
    stream
        .write_all(b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.example.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("<domain>example.test</domain>"),
        "{response}"
    );

    // Odd characters in the local part come back escaped, never as markup.
    let request = "<Autodiscover><Request><EMailAddress>o'neil&amp;&lt;b&gt;\"x\"@example.test</EMailAddress></Request></Autodiscover>";
    let (status, body) = http(&ts, "POST", "/autodiscover/autodiscover.xml", request).await;
    assert!(status.contains("200"), "{body}");
    assert!(
        body.contains("<LoginName>o&apos;neil&amp;&lt;b&gt;&quot;x&quot;@example.test</LoginName>"),
        "{body}"
    );
    let (status, body) = http(
        &ts,
        "GET",
        "/apple/pillarbox.mobileconfig?emailaddress=a%3Cb%3E%26c@example.test",
        "",
    )
    .await;
    assert!(status.contains("200"), "{body}");
    assert!(
        body.contains("<string>a&lt;b&gt;&amp;c@example.test</string>") && !body.contains("<b>"),
        "{body}"
    );
    ts.stop().await;
}

#[tokio::test]
async fn oversized_requests_and_slow_clients_are_cut_off() {
    let ts = TestServer::start_with(Backend::Sqlite, |c| {
        if let Some(http) = c.listener.get_mut("http") {
            http.idle_timeout_secs = Some(1);
        }
    })
    .await;
    ts.add_account("alice@example.test", "pw").await;

    // Headers over 64 KiB.
    let mut stream = tokio::net::TcpStream::connect(ts.addr("http"))
        .await
        .unwrap();
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let _ = stream.write_all(big.as_bytes()).await;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response:?}");

    // A body over 64 KiB.
    let body = format!(
        "<Autodiscover><Request><EMailAddress>alice@example.test</EMailAddress></Request>{}</Autodiscover>",
        " ".repeat(70 * 1024)
    );
    let (status, _) = http(&ts, "POST", "/autodiscover/autodiscover.xml", &body).await;
    assert!(status.contains("413"), "{status}");

    // Headers sent slowly: the connection is closed after the timeout.
    let mut slow = tokio::net::TcpStream::connect(ts.addr("http"))
        .await
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok(),
        "a client that never finishes its headers is cut off"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A body that never arrives: 408 after the timeout.
    let mut slow = tokio::net::TcpStream::connect(ts.addr("http"))
        .await
        .unwrap();
    slow.write_all(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<Autodiscover>")
        .await
        .unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut response)).await;
    assert!(read.is_ok(), "a body that never arrives is cut off");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");

    // And the endpoint still answers.
    let (status, _) = http(&ts, "GET", "/healthz", "").await;
    assert!(status.contains("200"));
    ts.stop().await;
}
