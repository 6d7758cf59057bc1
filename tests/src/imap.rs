//! A raw IMAP client for tests: log in over implicit TLS, send a tagged
//! command and read to its tagged answer, APPEND a message.

use crate::{LineClient, TestServer};

/// A logged-in session over implicit TLS (port `imaps`).
pub async fn login(ts: &TestServer, address: &str, password: &str) -> LineClient {
    let mut c = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
    let greeting = c.read_line().await;
    assert!(greeting.starts_with("* OK "), "{greeting}");
    let lines = command(&mut c, &format!("l LOGIN {address} \"{password}\"")).await;
    assert!(last(&lines).starts_with("l OK"), "{lines:?}");
    c
}

/// Sends a tagged command (tag = the first word) and reads up to and
/// including its tagged answer.
pub async fn command(c: &mut LineClient, line: &str) -> Vec<String> {
    let tag = line.split(' ').next().unwrap_or_default().to_string();
    c.send_line(line).await;
    c.read_until(|l| l.starts_with(&format!("{tag} "))).await
}

/// The last line of an answer: the tagged status.
pub fn last(lines: &[String]) -> &str {
    lines.last().map(String::as_str).unwrap_or_default()
}

/// Asserts that the answer ended in `tag OK`.
pub fn ok(lines: &[String], tag: &str) {
    assert!(last(lines).starts_with(&format!("{tag} OK")), "{lines:?}");
}

/// True when some line contains `text`.
pub fn has(lines: &[String], text: &str) -> bool {
    lines.iter().any(|l| l.contains(text))
}

/// APPENDs `message` with a synchronizing literal; returns the tagged answer.
pub async fn append(c: &mut LineClient, mailbox: &str, flags: &str, message: &str) -> String {
    c.send_line(&format!(
        "ap APPEND {mailbox} {flags} {{{}}}",
        message.len()
    ))
    .await;
    let go = c.read_line().await;
    assert!(go.starts_with("+ "), "{go}");
    c.send(message.as_bytes()).await;
    c.send(b"\r\n").await;
    let lines = c.read_until(|l| l.starts_with("ap ")).await;
    last(&lines).to_string()
}

/// The number in the first `* N <word>` line (e.g. `RECENT`), if any.
pub fn untagged_number(lines: &[String], word: &str) -> Option<u32> {
    lines.iter().find_map(|l| {
        let rest = l.strip_prefix("* ")?;
        let (n, tail) = rest.split_once(' ')?;
        (tail.trim_end() == word).then(|| n.parse().ok())?
    })
}
