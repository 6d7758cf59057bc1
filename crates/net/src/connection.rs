//! One client connection: plaintext or TLS, with bounded reads and a write buffer.

use crate::budget::MemoryBudget;
use crate::deflate::Deflate;
use crate::server::{ListenerInfo, Slot};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// Why a read gave no data.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the client sent nothing for {0:?}")]
    Timeout(Duration),
    #[error("line longer than {0} octets")]
    TooLong(usize),
    #[error("the client closed the connection")]
    Closed,
    #[error("the server is shutting down")]
    Shutdown,
    #[error("network error: {0}")]
    Io(#[from] io::Error),
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while upgrading.
    Upgrading,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::Error::other("stream is being upgraded"))),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::Error::other("stream is being upgraded"))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// Size of one socket read.
const READ_CHUNK: usize = 16 * 1024;
/// How much of a response is compressed and sent at a time.
const COMPRESS_STEP: usize = 256 * 1024;
/// Time a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take, before and after it logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For each command (and each read of a large body) once logged in.
    pub idle: Duration,
    /// For each command before the client logged in.
    pub login: Duration,
}

/// A client connection as a protocol session sees it.
pub struct Connection {
    stream: Stream,
    /// Bytes read from the socket and not yet consumed.
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    peer: SocketAddr,
    local: SocketAddr,
    info: Arc<ListenerInfo>,
    timeouts: Timeouts,
    authenticated: bool,
    /// This connection's place in the listener's caps; `None` for a
    /// connection made outside a listener's accept loop.
    slot: Option<Slot>,
    /// Bad commands so far; see [`Connection::record_error`].
    errors: u32,
    /// Both directions compressed (IMAP COMPRESS=DEFLATE), above TLS.
    deflate: Option<Box<Deflate>>,
}

impl Connection {
    pub(crate) async fn accept(
        tcp: TcpStream,
        peer: SocketAddr,
        info: Arc<ListenerInfo>,
        timeouts: Timeouts,
        slot: Slot,
    ) -> io::Result<Connection> {
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr()?;
        let stream = match (&info.mode, &info.tls) {
            (crate::TlsMode::Implicit, Some(acceptor)) => {
                let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                    })??;
                Stream::Tls(Box::new(tls))
            }
            (crate::TlsMode::Implicit, None) => {
                return Err(io::Error::other(
                    "implicit TLS listener without a certificate",
                ));
            }
            _ => Stream::Plain(tcp),
        };
        Ok(Connection {
            stream,
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            peer,
            local,
            info,
            timeouts,
            authenticated: false,
            slot: Some(slot),
            errors: 0,
            deflate: None,
        })
    }

    /// Connects a session to an already-established stream (for tests of a
    /// protocol over a local socket pair); no connection caps apply.
    pub fn from_tcp(
        tcp: TcpStream,
        info: Arc<ListenerInfo>,
        timeouts: Timeouts,
    ) -> io::Result<Connection> {
        Ok(Connection {
            peer: tcp.peer_addr()?,
            local: tcp.local_addr()?,
            stream: Stream::Plain(tcp),
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            info,
            timeouts,
            authenticated: false,
            slot: None,
            errors: 0,
            deflate: None,
        })
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The listener this connection came in on (name, settings).
    pub fn listener(&self) -> &ListenerInfo {
        &self.info
    }

    /// Fires when the server is shutting down; the session should say goodbye.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.info.shutdown
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// True when STARTTLS/STLS can be offered: not yet TLS, and a certificate exists.
    pub fn can_start_tls(&self) -> bool {
        !self.is_tls() && self.info.tls.is_some()
    }

    /// True when the protocol may accept a plaintext password now.
    pub fn plaintext_auth_allowed(&self) -> bool {
        self.is_tls() || self.info.config.allow_plaintext_auth
    }

    /// How long the client may take over its next command: the login
    /// timeout until it logged in, the idle timeout after.
    pub fn idle_timeout(&self) -> Duration {
        if self.authenticated {
            self.timeouts.idle
        } else {
            self.timeouts.login
        }
    }

    /// The client logged in: from now on the idle timeout applies, and the
    /// connection no longer counts against the listener's
    /// `max_unauthenticated_per_ip`.
    pub fn set_authenticated(&mut self) {
        self.authenticated = true;
        if let Some(slot) = self.slot.as_mut() {
            slot.authenticated();
        }
    }

    /// The client is no longer logged in (IMAP UNAUTHENTICATE): the login
    /// timeout applies again, and it counts as not logged in.
    pub fn set_unauthenticated(&mut self) {
        self.authenticated = false;
        if let Some(slot) = self.slot.as_mut() {
            slot.unauthenticated();
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Counts one bad command (a syntax error, an unknown command, a command
    /// in the wrong state, an over-long line, a failed login). True when the
    /// session has reached the listener's `max_errors`: the protocol then
    /// sends its final error and closes the connection.
    pub fn record_error(&mut self) -> bool {
        self.errors = self.errors.saturating_add(1);
        self.errors >= self.info.config.max_errors
    }

    /// True once [`Connection::record_error`] reached `max_errors` (for a
    /// protocol that counts its errors where it answers them).
    pub fn too_many_errors(&self) -> bool {
        self.errors >= self.info.config.max_errors
    }

    /// The server-wide budget for bytes buffered from clients: reserve
    /// before reading anything large (a literal, a BDAT chunk, DATA).
    pub fn budget(&self) -> &MemoryBudget {
        &self.info.budget
    }

    /// True when the client has sent bytes not yet consumed (pipelining).
    /// On a compressed connection, what has arrived is inflated first (at
    /// most one step), so the answer is about plaintext.
    pub fn has_buffered_input(&mut self) -> bool {
        if self.read_buf.is_empty()
            && let Some(deflate) = self.deflate.as_mut()
            && deflate.has_pending()
        {
            // An error shows again at the next read, which ends the session.
            let _ = deflate.inflate(&mut self.read_buf);
        }
        !self.read_buf.is_empty()
    }

    /// True once both directions are compressed.
    pub fn is_compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Compresses both directions from now on (IMAP COMPRESS=DEFLATE, RFC
    /// 4978): what is queued is sent first, uncompressed (the command's
    /// tagged OK), and bytes that already arrived are the client's first
    /// compressed ones.
    pub async fn start_compression(&mut self) -> io::Result<()> {
        if self.deflate.is_some() {
            return Err(io::Error::other("compression is already active"));
        }
        self.flush().await?;
        let mut deflate = Box::new(Deflate::new());
        deflate.push_input(&std::mem::take(&mut self.read_buf));
        self.deflate = Some(deflate);
        Ok(())
    }

    /// Reads into the buffer once; cancel-safe (nothing read is lost if the
    /// future is dropped). The socket is read into a buffer on the stack of
    /// each poll and what arrived is appended: waiting holds no buffer, so
    /// an idle connection (thousands of them in IMAP IDLE) costs a few
    /// hundred bytes, not a read buffer each.
    async fn fill(&mut self, timeout: Duration) -> Result<(), ReadError> {
        self.fill_until(tokio::time::Instant::now() + timeout, timeout)
            .await
    }

    /// As [`Connection::fill`], giving up at `deadline`; `timeout` is what a
    /// timeout error reports.
    async fn fill_until(
        &mut self,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<(), ReadError> {
        let shutdown = self.info.shutdown.clone();
        loop {
            if let Some(deflate) = self.deflate.as_mut() {
                if deflate.has_pending() && deflate.inflate(&mut self.read_buf)? > 0 {
                    return Ok(());
                }
                // The session waits for the client: the compressor's tables
                // are not needed until the next response.
                deflate.release_compressor();
            }
            let read = std::future::poll_fn(|cx| {
                let mut chunk = [0u8; READ_CHUNK];
                let mut buf = ReadBuf::new(&mut chunk);
                match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) => {
                        match self.deflate.as_mut() {
                            Some(deflate) => deflate.push_input(buf.filled()),
                            None => self.read_buf.extend_from_slice(buf.filled()),
                        }
                        Poll::Ready(Ok(buf.filled().len()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            });
            let read = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Err(ReadError::Shutdown),
                read = tokio::time::timeout_at(deadline, read) => read,
            };
            match read {
                Err(_) => return Err(ReadError::Timeout(timeout)),
                Ok(Ok(0)) => return Err(ReadError::Closed),
                Ok(Ok(_)) if self.deflate.is_none() => return Ok(()),
                // Compressed: inflate what came, or read on.
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// Gives the read buffer's memory back once everything in it was used.
    fn release_read_buffer(&mut self) {
        if self.read_buf.is_empty() && self.read_buf.capacity() > 0 {
            self.read_buf = Vec::new();
        }
    }

    /// Reads one line, returned with its line ending (`\n` or `\r\n`). A line
    /// longer than `max_len` (ending included) is read to its end and dropped,
    /// and `TooLong` is returned, so the session can answer and go on. The
    /// whole line must arrive within [`Connection::idle_timeout`]: a client
    /// that trickles a byte at a time does not keep the session alive.
    pub async fn read_line(&mut self, max_len: usize) -> Result<Vec<u8>, ReadError> {
        self.read_line_timeout(max_len, self.idle_timeout()).await
    }

    /// As [`Connection::read_line`], with a timeout other than the session's.
    pub async fn read_line_timeout(
        &mut self,
        max_len: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, ReadError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.read_buf[scanned..].iter().position(|b| *b == b'\n') {
                let end = scanned + pos + 1;
                if end > max_len {
                    self.read_buf.drain(..end);
                    self.release_read_buffer();
                    return Err(ReadError::TooLong(max_len));
                }
                let line = self.read_buf.drain(..end).collect();
                self.release_read_buffer();
                return Ok(line);
            }
            scanned = self.read_buf.len();
            if self.read_buf.len() > max_len {
                // Drop what we have and keep dropping until the end of the line.
                self.read_buf.clear();
                loop {
                    self.fill_until(deadline, timeout).await?;
                    if let Some(pos) = self.read_buf.iter().position(|b| *b == b'\n') {
                        self.read_buf.drain(..=pos);
                        return Err(ReadError::TooLong(max_len));
                    }
                    self.read_buf.clear();
                }
            }
            self.fill_until(deadline, timeout).await?;
        }
    }

    /// Reads exactly `len` bytes (IMAP literals, SMTP BDAT chunks); each read
    /// of the socket must bring something within the session's timeout. The
    /// caller bounds `len` (and charges it to [`Connection::budget`]) first.
    pub async fn read_exact(&mut self, len: usize) -> Result<Vec<u8>, ReadError> {
        // Room for the whole literal plus one socket read past it, once, so
        // the buffer is not doubled as it grows (up to twice what the
        // caller charged to the memory budget).
        let wanted = len.saturating_add(READ_CHUNK);
        if self.read_buf.capacity() < wanted {
            self.read_buf
                .reserve_exact(wanted.saturating_sub(self.read_buf.len()));
        }
        while self.read_buf.len() < len {
            self.fill(self.idle_timeout()).await?;
        }
        // The literal keeps the buffer it arrived in; only what the client
        // sent after it (at most one socket read) is copied out, so a large
        // literal is never held twice.
        let rest = self.read_buf.split_off(len);
        let bytes = std::mem::replace(&mut self.read_buf, rest);
        self.release_read_buffer();
        Ok(bytes)
    }

    /// Reads whatever is available (at least one byte), for streaming bodies.
    pub async fn read_some(&mut self) -> Result<Vec<u8>, ReadError> {
        if self.read_buf.is_empty() {
            self.fill(self.idle_timeout()).await?;
        }
        Ok(std::mem::take(&mut self.read_buf))
    }

    /// Puts bytes back in front of the read buffer (after `read_some` took too much).
    pub fn unread(&mut self, bytes: &[u8]) {
        let mut joined = bytes.to_vec();
        joined.extend_from_slice(&self.read_buf);
        self.read_buf = joined;
    }

    /// Queues bytes to send; [`Connection::flush`] sends them.
    pub fn write(&mut self, bytes: &[u8]) {
        self.write_buf.extend_from_slice(bytes);
    }

    /// Queues bytes and sends everything queued.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write(bytes);
        self.flush().await
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.write_buf.is_empty() {
            let buf = std::mem::take(&mut self.write_buf);
            if self.deflate.is_some() {
                // Compressed a step at a time, so a large response is not
                // held twice (plain and compressed) in memory.
                let mut out = Vec::new();
                for step in buf.chunks(COMPRESS_STEP) {
                    if let Some(deflate) = self.deflate.as_mut() {
                        deflate.deflate(step, &mut out)?;
                    }
                    self.write_all(&out).await?;
                    out.clear();
                }
            } else {
                self.write_all(&buf).await?;
            }
        }
        self.stream.flush().await
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match tokio::time::timeout(self.timeouts.idle, self.stream.write_all(bytes)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client does not read",
            )),
        }
    }

    /// Upgrades to TLS (after the protocol said "go ahead"). Bytes the client
    /// pipelined after the STARTTLS command are discarded (RFC 3207 §4.2,
    /// RFC 2595 §3.1): they were sent in clear and must not run inside TLS.
    pub async fn start_tls(&mut self) -> Result<(), ReadError> {
        let Some(acceptor) = self.info.tls.clone() else {
            return Err(ReadError::Io(io::Error::other(
                "no TLS certificate configured",
            )));
        };
        if self.deflate.is_some() {
            return Err(ReadError::Io(io::Error::other(
                "TLS cannot start inside compression",
            )));
        }
        self.flush().await?;
        if !self.read_buf.is_empty() {
            tracing::warn!(peer = %self.peer, bytes = self.read_buf.len(), "discarding plaintext pipelined after STARTTLS");
            self.read_buf.clear();
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(ReadError::Io(io::Error::other("already using TLS")));
        };
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::accept(&acceptor, tcp))
            .await
            .map_err(|_| ReadError::Timeout(HANDSHAKE_TIMEOUT))??;
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Closes the connection (TLS close_notify included).
    pub async fn close(mut self) {
        let _ = self.flush().await;
        if let Some(deflate) = &self.deflate {
            let (plain_out, wire_out) = deflate.output_totals();
            let (wire_in, plain_in) = deflate.input_totals();
            tracing::debug!(
                plain_out,
                wire_out,
                plain_in,
                wire_in,
                "compressed connection closed"
            );
        }
        let _ = self.stream.shutdown().await;
    }
}
