//! Minimal protocol clients for load generation: raw lines over TCP, with
//! IMAP literals read properly. Every read has a time limit.

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one answer may take, unless a workload says otherwise.
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Client {
    stream: BufReader<TcpStream>,
    /// How long one answer may take.
    pub timeout: Duration,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .context("connect timed out")?
            .with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        Ok(Client {
            stream: BufReader::with_capacity(64 * 1024, tcp),
            timeout: TIMEOUT,
        })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.get_mut().write_all(bytes).await?;
        Ok(())
    }

    pub async fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let n = tokio::time::timeout(self.timeout, self.stream.read_line(&mut line))
            .await
            .context("the server did not answer in time")??;
        if n == 0 {
            bail!("the server closed the connection");
        }
        Ok(line)
    }

    /// A line, waiting as long as it takes (the caller bounds the wait).
    pub async fn line_untimed(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            bail!("the server closed the connection");
        }
        Ok(line)
    }

    /// An SMTP reply (multi-line replies collapsed to the last line).
    pub async fn smtp_reply(&mut self) -> anyhow::Result<String> {
        loop {
            let line = self.line().await?;
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line);
            }
        }
    }

    /// A POP3 multi-line answer: the lines up to the terminating dot; returns octets read.
    pub async fn pop3_multiline(&mut self) -> anyhow::Result<usize> {
        let first = self.line().await?;
        if !first.starts_with("+OK") {
            bail!("POP3 error: {first}");
        }
        let mut octets = 0;
        loop {
            let line = self.line().await?;
            if line == ".\r\n" {
                return Ok(octets);
            }
            octets += line.len();
        }
    }

    /// IMAP: reads to the tagged answer, literals included; returns the
    /// untagged lines (literal data not kept) and literal octets seen.
    pub async fn imap_until(&mut self, tag: &str) -> anyhow::Result<(Vec<String>, usize)> {
        let mut lines = Vec::new();
        let mut octets = 0;
        let prefix = format!("{tag} ");
        loop {
            let line = self.line().await?;
            if let Some(n) = literal_size(&line) {
                let mut buf = vec![0u8; n];
                tokio::time::timeout(self.timeout, self.stream.read_exact(&mut buf))
                    .await
                    .context("literal timed out")??;
                octets += n;
            }
            if line.starts_with(&prefix) {
                if !line[prefix.len()..].starts_with("OK") {
                    bail!("IMAP command failed: {line}");
                }
                return Ok((lines, octets));
            }
            lines.push(line);
        }
    }
}

fn literal_size(line: &str) -> Option<usize> {
    let line = line.strip_suffix("\r\n")?.strip_suffix('}')?;
    let open = line.rfind('{')?;
    line[open + 1..].parse().ok()
}

/// A deterministic message of about `size` octets.
pub fn message(i: usize, size: usize, to: &str) -> Vec<u8> {
    let header = format!(
        "From: Bench Sender {s} <sender{s}@bench.test>\r\nTo: {to}\r\nSubject: bench message {i} protocol sync\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\nMessage-ID: <{i}@bench.test>\r\n\r\n",
        s = i % 97
    );
    let mut out = header.into_bytes();
    let words = [
        "alpha", "beta", "gamma", "delta", "mail", "server", "inbox", "folder", "offline",
    ];
    let mut n = i;
    while out.len() < size {
        for _ in 0..12 {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(words[(n >> 33) % words.len()].as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Messages of an mbox file (mboxo/mboxrd `>From ` unquoted), CRLF endings.
pub fn read_mbox(path: &std::path::Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut messages = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for line in data.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            if !current.is_empty() {
                messages.push(std::mem::take(&mut current));
            }
            continue;
        }
        let unquoted = if line.starts_with(b">")
            && line
                .iter()
                .skip_while(|b| **b == b'>')
                .take(5)
                .eq(b"From ".iter())
        {
            &line[1..]
        } else {
            line
        };
        let body = unquoted.strip_suffix(b"\n").unwrap_or(unquoted);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        current.extend_from_slice(body);
        current.extend_from_slice(b"\r\n");
    }
    if !current.is_empty() {
        messages.push(current);
    }
    Ok(messages)
}
