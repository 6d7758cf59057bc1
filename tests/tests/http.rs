//! The HTTP endpoint over a real socket: health, Prometheus metrics and the
//! client autoconfiguration documents, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_tests::{LineClient, TestServer, backends};
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
