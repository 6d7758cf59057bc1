//! A client connection for the checker: plain TCP from a chosen loopback
//! address, a read buffer kept across reads (so a timed-out read loses
//! nothing), every read bounded in time and size, and the session's
//! transcript tail for reports.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long any one answer may take before the command counts as failed
/// (a deadlock or a lost response shows up as this).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response the checker reads (its messages are far smaller).
const MAX_RESPONSE: usize = 64 << 20;
/// Transcript lines kept per session, and characters kept per line.
const TRANSCRIPT_LINES: usize = 20;
const TRANSCRIPT_WIDTH: usize = 240;

/// Why a connection stopped answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    Timeout,
    Closed,
    Io(String),
    TooLarge,
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Timeout => write!(f, "no answer within {} s", ANSWER_TIMEOUT.as_secs()),
            Lost::Closed => f.write_str("the server closed the connection"),
            Lost::Io(e) => write!(f, "connection error: {e}"),
            Lost::TooLarge => write!(f, "response larger than {MAX_RESPONSE} octets"),
        }
    }
}

/// The last lines a session sent and received.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    lines: VecDeque<String>,
}

impl Transcript {
    pub fn client(&mut self, bytes: &[u8]) {
        self.push("C: ", bytes);
    }

    pub fn server(&mut self, bytes: &[u8]) {
        self.push("S: ", bytes);
    }

    pub fn note(&mut self, text: &str) {
        self.push("-- ", text.as_bytes());
    }

    /// The first line of `bytes`, printable, cut to the width; what follows
    /// the first line (literal data) is summarised by its size.
    fn push(&mut self, prefix: &str, bytes: &[u8]) {
        let first_end = bytes
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(bytes.len());
        let first = bytes[..first_end]
            .strip_suffix(b"\r")
            .unwrap_or(&bytes[..first_end]);
        let mut line = String::from(prefix);
        for ch in String::from_utf8_lossy(first).chars() {
            if line.len() >= TRANSCRIPT_WIDTH {
                line.push('…');
                break;
            }
            line.push(if ch.is_control() { '.' } else { ch });
        }
        let rest = bytes.len().saturating_sub(first_end + 1);
        if rest > 0 {
            line.push_str(&format!(" …(+{rest} octets)"));
        }
        if self.lines.len() == TRANSCRIPT_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    pub fn tail(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    pub transcript: Transcript,
}

/// A loopback source address for client `n` (127.77.x.y), so that the
/// server's per-IP limits and login throttle count each client on its own.
pub fn source_ip(n: usize) -> IpAddr {
    IpAddr::from([127, 77, (n / 250) as u8, (n % 250) as u8 + 2])
}

impl Conn {
    pub async fn connect(source: IpAddr, addr: SocketAddr) -> Result<Conn, Lost> {
        let attempt = async {
            let socket = TcpSocket::new_v4()?;
            // Any loopback source reaches a loopback server; a target
            // elsewhere is refused before we get here.
            socket.bind(SocketAddr::new(source, 0))?;
            socket.connect(addr).await
        };
        let stream = tokio::time::timeout(ANSWER_TIMEOUT, attempt)
            .await
            .map_err(|_| Lost::Timeout)?
            .map_err(|e| Lost::Io(format!("cannot connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: Vec::new(),
            transcript: Transcript::default(),
        })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), Lost> {
        self.transcript.client(bytes);
        self.send_quiet(bytes).await
    }

    /// Sends without a transcript line (message data after its command).
    pub async fn send_quiet(&mut self, bytes: &[u8]) -> Result<(), Lost> {
        tokio::time::timeout(ANSWER_TIMEOUT, self.stream.write_all(bytes))
            .await
            .map_err(|_| Lost::Timeout)?
            .map_err(|e| Lost::Io(e.to_string()))
    }

    /// Reads until `complete` finds a whole unit at the start of the buffer,
    /// or the deadline passes. Cancel-safe: bytes read stay in the buffer.
    async fn read_unit(
        &mut self,
        complete: fn(&[u8]) -> Option<usize>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<u8>, Lost> {
        loop {
            if let Some(n) = complete(&self.buf) {
                let unit: Vec<u8> = self.buf.drain(..n).collect();
                return Ok(unit);
            }
            if self.buf.len() > MAX_RESPONSE {
                return Err(Lost::TooLarge);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .map_err(|_| Lost::Timeout)?
                .map_err(|e| Lost::Io(e.to_string()))?;
            if n == 0 {
                return Err(Lost::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One IMAP response (its line and literals), within [`ANSWER_TIMEOUT`].
    pub async fn imap_response(&mut self) -> Result<Vec<u8>, Lost> {
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        self.imap_response_until(deadline).await
    }

    /// One IMAP response, or [`Lost::Timeout`] at `deadline` with nothing lost.
    pub async fn imap_response_until(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<u8>, Lost> {
        let raw = self.read_unit(super::wire::complete_len, deadline).await?;
        self.transcript.server(&raw);
        Ok(raw)
    }

    /// One line with its CRLF (POP3, SMTP).
    pub async fn line(&mut self) -> Result<Vec<u8>, Lost> {
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        let line = self
            .read_unit(
                |b| b.iter().position(|c| *c == b'\n').map(|i| i + 1),
                deadline,
            )
            .await?;
        self.transcript.server(&line);
        Ok(line)
    }

    /// A POP3 multi-line body up to the lone `.`, dot-unstuffed (RFC 1939 §3),
    /// with CRLF line ends; the transcript gets one summary line.
    pub async fn pop3_multiline(&mut self) -> Result<Vec<u8>, Lost> {
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        let raw = self.read_unit(multiline_len, deadline).await?;
        self.transcript
            .note(&format!("(multi-line answer, {} octets)", raw.len()));
        Ok(unstuff(&raw))
    }
}

/// The length of a POP3 multi-line body up to and including `.CRLF`.
fn multiline_len(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let end = at + buf[at..].iter().position(|b| *b == b'\n')? + 1;
        let line = &buf[at..end];
        if line == b".\r\n" || line == b".\n" {
            return Some(end);
        }
        at = end;
    }
}

fn unstuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for line in raw.split_inclusive(|b| *b == b'\n') {
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop3_bodies_end_at_the_lone_dot_and_are_unstuffed() {
        let raw = b"a\r\n..b\r\n.\r\nnext";
        assert_eq!(multiline_len(raw), Some(11));
        assert_eq!(unstuff(&raw[..11]), b"a\r\n.b\r\n");
        assert_eq!(multiline_len(b"a\r\n..\r\n"), None);
    }

    #[test]
    fn transcript_keeps_the_tail_and_summarises_literals() {
        let mut t = Transcript::default();
        for i in 0..50 {
            t.client(format!("a{i} NOOP\r\n").as_bytes());
        }
        t.server(b"* 1 FETCH (BODY[] {3}\r\nabc)\r\n");
        let tail = t.tail();
        assert_eq!(tail.len(), TRANSCRIPT_LINES);
        assert_eq!(tail[0], "C: a31 NOOP");
        assert_eq!(
            tail[TRANSCRIPT_LINES - 1],
            "S: * 1 FETCH (BODY[] {3} …(+6 octets)"
        );
    }
}
