//! Minimal protocol clients for load generation: raw lines over TCP, with
//! IMAP literals read properly. Every read has a time limit.

use anyhow::{Context, bail};
use pillarbox_net::deflate::Deflate;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::TcpStream;

/// What a client talks over: TCP, or TCP under IMAP COMPRESS=DEFLATE.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How long one answer may take, unless a workload says otherwise.
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Client {
    stream: BufReader<Box<dyn Io>>,
    /// After COMPRESS DEFLATE: what this client sends is compressed here
    /// (the stream inflates what it reads).
    deflate: Option<Deflate>,
    /// How long one answer may take.
    pub timeout: Duration,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
        Client::connect_from(addr, None).await
    }

    /// Connects from a chosen loopback source address (127.0.0.2 …): a
    /// login storm spread over many addresses, as many users' devices
    /// are, rather than one address the server's per-address login
    /// throttle holds back.
    pub async fn connect_from(
        addr: SocketAddr,
        source: Option<std::net::Ipv4Addr>,
    ) -> anyhow::Result<Client> {
        let connect = async {
            match source {
                Some(source) => {
                    let socket = tokio::net::TcpSocket::new_v4()?;
                    socket.bind(SocketAddr::new(source.into(), 0))?;
                    socket.connect(addr).await
                }
                None => TcpStream::connect(addr).await,
            }
        };
        let tcp = tokio::time::timeout(TIMEOUT, connect)
            .await
            .context("connect timed out")?
            .with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        Ok(Client {
            stream: BufReader::with_capacity(64 * 1024, Box::new(tcp)),
            deflate: None,
            timeout: TIMEOUT,
        })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match self.deflate.as_mut() {
            Some(deflate) => {
                let mut wire = Vec::new();
                deflate.deflate(bytes, &mut wire)?;
                self.stream.get_mut().write_all(&wire).await?;
            }
            None => self.stream.get_mut().write_all(bytes).await?,
        }
        Ok(())
    }

    /// IMAP `COMPRESS DEFLATE` (RFC 4978): from its OK on, both directions
    /// are compressed.
    pub async fn compress(mut self) -> anyhow::Result<Client> {
        self.send(b"z COMPRESS DEFLATE\r\n").await?;
        self.imap_until("z").await?;
        if !self.stream.buffer().is_empty() {
            bail!("the server sent data after COMPRESS's OK before any command");
        }
        let inflating: Box<dyn Io> = Box::new(Inflating {
            inner: self.stream.into_inner(),
            codec: Deflate::new(),
            plain: Vec::new(),
        });
        Ok(Client {
            stream: BufReader::with_capacity(64 * 1024, inflating),
            deflate: Some(Deflate::new()),
            timeout: self.timeout,
        })
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

/// A stream whose reads inflate what the server sent (writes go through
/// as they are: [`Client::send`] compresses them).
struct Inflating {
    inner: Box<dyn Io>,
    codec: Deflate,
    /// Inflated and not yet read.
    plain: Vec<u8>,
}

impl AsyncRead for Inflating {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain.is_empty() && this.codec.has_pending() {
                this.codec.inflate(&mut this.plain)?;
            }
            if !this.plain.is_empty() {
                let n = this.plain.len().min(buf.remaining());
                buf.put_slice(&this.plain[..n]);
                this.plain.drain(..n);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut raw = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut raw) {
                Poll::Ready(Ok(())) if raw.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => this.codec.push_input(raw.filled()),
                other => return other,
            }
        }
    }
}

impl AsyncWrite for Inflating {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
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
