//! The SMTP client of the outbound queue: one connection, one transaction
//! with several recipients (RFC 5321), STARTTLS (RFC 3207), AUTH PLAIN/LOGIN
//! for smarthosts (RFC 4954), PIPELINING (RFC 2920) when offered.

use base64::Engine;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Time for connecting and for each reply (RFC 5321 §4.5.3.2 suggests more
/// for some; a mail server that is this slow is retried later).
const TIMEOUT: Duration = Duration::from_secs(60);
/// Time for the reply to the end of DATA (RFC 5321 §4.5.3.2.6: 10 minutes).
const DATA_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest reply line read, CRLF included (RFC 5321 §4.5.3.1.5: 512; some
/// servers send longer texts).
const MAX_REPLY_LINE: usize = 2048;
/// Most lines in one multi-line reply (an EHLO reply has a few dozen).
const MAX_REPLY_LINES: usize = 100;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A reply: code and the text of its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Why a session failed as a whole (every recipient of it is deferred or failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// Network trouble or a timeout: try again later.
    Network(String),
    /// The server answered with an error at a stage before RCPT.
    Reply { stage: &'static str, reply: Reply },
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Network(e) => write!(f, "{e}"),
            SessionError::Reply { stage, reply } => write!(f, "{stage}: {reply}"),
        }
    }
}

/// How to secure the connection.
#[derive(Clone)]
pub enum Security {
    /// STARTTLS when offered, any certificate (MX delivery).
    Opportunistic(Arc<rustls::ClientConfig>),
    /// STARTTLS required, certificate checked.
    RequireStartTls(Arc<rustls::ClientConfig>),
    /// TLS from the first byte, certificate checked.
    Implicit(Arc<rustls::ClientConfig>),
    None,
}

pub struct Transaction<'a> {
    pub helo: &'a str,
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub data: &'a [u8],
    pub credentials: Option<(&'a str, &'a str)>,
    /// DSN parameters for MAIL (` RET=… ENVID=…`), sent when the server offers DSN.
    pub dsn_mail: String,
    /// DSN parameters per RCPT (` NOTIFY=… ORCPT=…`).
    pub dsn_rcpt: Vec<String>,
}

/// Per-recipient RCPT replies, and the reply to the data (when any recipient was accepted).
pub struct Result {
    pub rcpt: Vec<Reply>,
    pub data: Option<Reply>,
    pub tls: bool,
}

struct Conn {
    stream: BufReader<Box<dyn Io>>,
}

impl Conn {
    /// Reads one reply, its lines bounded as they are read: a remote server
    /// is as untrusted as a client, so neither a line without an end nor an
    /// endless multi-line reply nor a trickle of bytes can hold us.
    async fn read_reply(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<(Reply, Vec<String>), SessionError> {
        // The timeout covers the whole reply, not each read.
        tokio::time::timeout(timeout, self.read_reply_lines())
            .await
            .map_err(|_| SessionError::Network("timed out waiting for the server".into()))?
    }

    async fn read_reply_lines(
        &mut self,
    ) -> std::result::Result<(Reply, Vec<String>), SessionError> {
        let mut lines = Vec::new();
        loop {
            if lines.len() >= MAX_REPLY_LINES {
                return Err(SessionError::Network(
                    "the server's reply has too many lines".into(),
                ));
            }
            let mut bytes = Vec::new();
            // One octet over the bound tells a line that is too long from
            // one that just fits.
            let n = (&mut self.stream)
                .take(MAX_REPLY_LINE as u64 + 1)
                .read_until(b'\n', &mut bytes)
                .await
                .map_err(|e| SessionError::Network(format!("read failed: {e}")))?;
            if n == 0 {
                return Err(SessionError::Network(
                    "the server closed the connection".into(),
                ));
            }
            if bytes.len() > MAX_REPLY_LINE {
                return Err(SessionError::Network(
                    "the server's reply is too long".into(),
                ));
            }
            let line = String::from_utf8_lossy(&bytes).trim_end().to_string();
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| SessionError::Network(format!("not an SMTP reply: {line:?}")))?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            let text = line.get(4..).unwrap_or_default().to_string();
            lines.push(text.clone());
            if last {
                return Ok((Reply { code, text }, lines));
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> std::result::Result<(), SessionError> {
        let stream = self.stream.get_mut();
        tokio::time::timeout(TIMEOUT, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| SessionError::Network("timed out sending".into()))?
        .map_err(|e| SessionError::Network(format!("write failed: {e}")))
    }

    async fn command(
        &mut self,
        line: &str,
        stage: &'static str,
    ) -> std::result::Result<(Reply, Vec<String>), SessionError> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        let (reply, lines) = self.read_reply(TIMEOUT).await?;
        if !reply.is_positive() {
            return Err(SessionError::Reply { stage, reply });
        }
        Ok((reply, lines))
    }
}

async fn tls(
    stream: Box<dyn Io>,
    config: &Arc<rustls::ClientConfig>,
    host: &str,
) -> std::result::Result<Box<dyn Io>, SessionError> {
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| SessionError::Network(format!("{host} is not a valid TLS server name")))?;
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    let tls = tokio::time::timeout(TIMEOUT, connector.connect(name, stream))
        .await
        .map_err(|_| SessionError::Network("TLS handshake timed out".into()))?
        .map_err(|e| SessionError::Network(format!("TLS handshake failed: {e}")))?;
    Ok(Box::new(tls))
}

/// Dot-stuffs the data and ends it with CRLF.CRLF (RFC 5321 §4.5.2).
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut at_line_start = true;
    for &b in data {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Runs one transaction against `host` (the name for TLS) at `addr`.
pub async fn deliver(
    addr: std::net::SocketAddr,
    host: &str,
    security: &Security,
    t: &Transaction<'_>,
) -> std::result::Result<Result, SessionError> {
    let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| SessionError::Network(format!("connecting to {addr} timed out")))?
        .map_err(|e| SessionError::Network(format!("cannot connect to {addr}: {e}")))?;
    let mut stream: Box<dyn Io> = Box::new(tcp);
    let mut secure = false;
    if let Security::Implicit(config) = security {
        stream = tls(stream, config, host).await?;
        secure = true;
    }
    let mut conn = Conn {
        stream: BufReader::new(stream),
    };
    let (greeting, _) = conn.read_reply(TIMEOUT).await?;
    if greeting.code != 220 {
        return Err(SessionError::Reply {
            stage: "greeting",
            reply: greeting,
        });
    }
    let (_, mut caps) = conn.command(&format!("EHLO {}", t.helo), "EHLO").await?;
    let has = |caps: &[String], name: &str| {
        caps.iter().any(|c| {
            c.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(name))
        })
    };
    let starttls = match security {
        Security::Opportunistic(config) if has(&caps, "STARTTLS") => Some(config),
        Security::RequireStartTls(config) => {
            if !has(&caps, "STARTTLS") {
                return Err(SessionError::Network(
                    "the relay does not offer STARTTLS, which the configuration requires".into(),
                ));
            }
            Some(config)
        }
        _ => None,
    };
    if let Some(config) = starttls {
        conn.command("STARTTLS", "STARTTLS").await?;
        let inner = conn.stream.into_inner();
        conn = Conn {
            stream: BufReader::new(tls(inner, config, host).await?),
        };
        secure = true;
        caps = conn.command(&format!("EHLO {}", t.helo), "EHLO").await?.1;
    }
    if let Some((user, password)) = t.credentials {
        let mechanisms: Vec<String> = caps
            .iter()
            .filter(|c| c.to_ascii_uppercase().starts_with("AUTH"))
            .flat_map(|c| {
                c.split_whitespace()
                    .skip(1)
                    .map(str::to_ascii_uppercase)
                    .collect::<Vec<_>>()
            })
            .collect();
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        if mechanisms.iter().any(|m| m == "PLAIN") {
            let token = b64(format!("\0{user}\0{password}").as_bytes());
            conn.command(&format!("AUTH PLAIN {token}"), "AUTH").await?;
        } else if mechanisms.iter().any(|m| m == "LOGIN") {
            conn.command("AUTH LOGIN", "AUTH").await?;
            conn.command(&b64(user.as_bytes()), "AUTH").await?;
            conn.command(&b64(password.as_bytes()), "AUTH").await?;
        } else {
            return Err(SessionError::Network(
                "the relay offers neither AUTH PLAIN nor AUTH LOGIN".into(),
            ));
        }
    }
    let eight_bit = t.data.iter().any(|b| *b >= 0x80);
    let utf8_addresses = !t.sender.is_ascii() || t.recipients.iter().any(|r| !r.is_ascii());
    let mut mail = format!("MAIL FROM:<{}>", t.sender);
    if has(&caps, "SIZE") {
        mail.push_str(&format!(" SIZE={}", t.data.len()));
    }
    if eight_bit && has(&caps, "8BITMIME") {
        mail.push_str(" BODY=8BITMIME");
    }
    if utf8_addresses {
        if !has(&caps, "SMTPUTF8") {
            return Err(SessionError::Reply {
                stage: "MAIL",
                reply: Reply {
                    code: 553,
                    text: "5.6.7 the remote server does not accept UTF-8 addresses (no SMTPUTF8)"
                        .into(),
                },
            });
        }
        mail.push_str(" SMTPUTF8");
    }
    let dsn = has(&caps, "DSN");
    if dsn {
        mail.push_str(&t.dsn_mail);
    }
    let rcpt_line = |i: usize, r: &str| {
        let params = if dsn {
            t.dsn_rcpt.get(i).map(String::as_str).unwrap_or_default()
        } else {
            ""
        };
        format!("RCPT TO:<{r}>{params}\r\n")
    };
    let pipelining = has(&caps, "PIPELINING");
    let mut rcpt = Vec::with_capacity(t.recipients.len());
    if pipelining {
        // RFC 2920: MAIL, every RCPT and DATA in one write; replies in order.
        let mut batch = format!("{mail}\r\n");
        for (i, r) in t.recipients.iter().enumerate() {
            batch.push_str(&rcpt_line(i, r));
        }
        batch.push_str("DATA\r\n");
        conn.send(batch.as_bytes()).await?;
        let (mail_reply, _) = conn.read_reply(TIMEOUT).await?;
        for _ in t.recipients {
            rcpt.push(conn.read_reply(TIMEOUT).await?.0);
        }
        let (data_reply, _) = conn.read_reply(TIMEOUT).await?;
        if !mail_reply.is_positive() {
            let _ = conn.send(b"QUIT\r\n").await;
            return Err(SessionError::Reply {
                stage: "MAIL",
                reply: mail_reply,
            });
        }
        if data_reply.code != 354 {
            let _ = conn.send(b"QUIT\r\n").await;
            return Ok(Result {
                rcpt,
                data: None,
                tls: secure,
            });
        }
        if !rcpt.iter().any(Reply::is_positive) {
            // Data was invited although nobody was accepted: send an empty message? No: abort.
            let _ = conn.send(b".\r\nQUIT\r\n").await;
            return Ok(Result {
                rcpt,
                data: None,
                tls: secure,
            });
        }
    } else {
        conn.command(&mail, "MAIL").await?;
        for (i, r) in t.recipients.iter().enumerate() {
            conn.send(rcpt_line(i, r).as_bytes()).await?;
            rcpt.push(conn.read_reply(TIMEOUT).await?.0);
        }
        if !rcpt.iter().any(Reply::is_positive) {
            let _ = conn.send(b"QUIT\r\n").await;
            return Ok(Result {
                rcpt,
                data: None,
                tls: secure,
            });
        }
        let (go, _) = conn.command("DATA", "DATA").await?;
        if go.code != 354 {
            return Err(SessionError::Reply {
                stage: "DATA",
                reply: go,
            });
        }
    }
    conn.send(&dot_stuff(t.data)).await?;
    let (done, _) = conn.read_reply(DATA_TIMEOUT).await?;
    let _ = conn.send(b"QUIT\r\n").await;
    Ok(Result {
        rcpt,
        data: Some(done),
        tls: secure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn_to(server: tokio::io::DuplexStream) -> Conn {
        Conn {
            stream: BufReader::new(Box::new(server)),
        }
    }

    #[tokio::test]
    async fn a_reply_line_without_end_is_refused_once_it_is_too_long() {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        // A hostile server: one line of 16 MiB, never ended, and the
        // connection held open.
        tokio::spawn(async move {
            let _ = theirs.write_all(b"220 ").await;
            let block = vec![b'x'; 64 * 1024];
            for _ in 0..256 {
                if theirs.write_all(&block).await.is_err() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        });
        let mut conn = conn_to(ours);
        let started = std::time::Instant::now();
        let error = conn
            .read_reply(Duration::from_secs(30))
            .await
            .expect_err("refused");
        assert_eq!(
            error,
            SessionError::Network("the server's reply is too long".into())
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        // Nothing beyond the bound (and the reader's buffer) was read.
        assert!(conn.stream.buffer().len() <= 8 * 1024);
    }

    #[tokio::test]
    async fn an_endless_multiline_reply_is_refused() {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            loop {
                if theirs.write_all(b"250-more\r\n").await.is_err() {
                    return;
                }
            }
        });
        let error = conn_to(ours)
            .read_reply(Duration::from_secs(30))
            .await
            .expect_err("refused");
        assert_eq!(
            error,
            SessionError::Network("the server's reply has too many lines".into())
        );
    }

    #[tokio::test]
    async fn a_trickled_reply_is_cut_off_at_the_reply_timeout() {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            loop {
                if theirs.write_all(b"2").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let started = std::time::Instant::now();
        let error = conn_to(ours)
            .read_reply(Duration::from_millis(500))
            .await
            .expect_err("cut off");
        assert_eq!(
            error,
            SessionError::Network("timed out waiting for the server".into())
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_multiline_reply_is_read_whole() {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        theirs
            .write_all(b"250-mx.example greets you\r\n250-PIPELINING\r\n250 SIZE 1000\r\n")
            .await
            .expect("written");
        let (reply, lines) = conn_to(ours)
            .read_reply(Duration::from_secs(5))
            .await
            .expect("a reply");
        assert_eq!(reply.code, 250);
        assert_eq!(lines, ["mx.example greets you", "PIPELINING", "SIZE 1000"]);
    }

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
    }
}
