//! The accept loop: connection caps (total and per IP), one task per
//! connection, graceful shutdown.

use crate::budget::MemoryBudget;
use crate::config::{ListenerConfig, TlsMode};
use crate::connection::{Connection, Timeouts};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Connections the kernel completes and queues for `accept` at most. The
/// usual 128 overflows when thousands of clients reconnect at once (after a
/// restart, say): a connection beyond it is dropped by the server while the
/// client believes it is open and waits for a greeting that never comes.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listening socket with [`LISTEN_BACKLOG`] (the kernel caps it at
/// `net.core.somaxconn`).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's listeners do: a restarted server may bind while old
    // connections are still in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A protocol's session handler.
pub trait Handler: Send + Sync + 'static {
    /// Protocol name for logs: `smtp`, `pop3`, `imap`.
    fn protocol(&self) -> &'static str;
    /// How long a client may stay silent when the listener sets no timeout.
    fn default_idle_timeout(&self) -> Duration;
    /// How long a client that has not logged in may take over each command
    /// when the listener sets no timeout; the idle timeout unless the
    /// protocol wants clients to authenticate sooner.
    fn default_login_timeout(&self) -> Duration {
        self.default_idle_timeout()
    }
    /// The line sent (in clear, before any TLS) to a client refused because
    /// of a connection limit, e.g. `421 4.7.0 …\r\n` or `* BYE …\r\n`.
    fn too_many_connections(&self) -> &'static [u8];
    /// Runs one session to its end.
    fn handle(&self, connection: Connection) -> impl Future<Output = ()> + Send;
}

/// What a session knows of its listener.
pub struct ListenerInfo {
    /// The listener's name in the configuration (`submission`, `imaps`, …).
    pub name: String,
    pub mode: TlsMode,
    pub config: ListenerConfig,
    /// `None` when no certificate is available (STARTTLS then not offered).
    pub tls: Option<TlsAcceptor>,
    pub shutdown: CancellationToken,
    /// The server-wide budget for bytes buffered from clients, shared by
    /// every listener.
    pub budget: MemoryBudget,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    unauthenticated_per_ip: HashMap<IpAddr, usize>,
}

/// Takes one from a per-IP count, forgetting the IP at zero (the maps hold
/// only addresses with connections open).
fn decrement(map: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = map.get_mut(&ip) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&ip);
        }
    }
}

/// Connection caps of one listener: in total, per client IP, and per client
/// IP for connections not logged in. Every listener (the mail protocols and
/// HTTP) takes a [`Slot`] per connection.
#[derive(Clone)]
pub struct ConnectionLimits {
    counts: Arc<Mutex<Counts>>,
    max_total: usize,
    max_per_ip: usize,
    max_unauthenticated_per_ip: usize,
}

impl ConnectionLimits {
    pub fn new(config: &ListenerConfig) -> ConnectionLimits {
        ConnectionLimits {
            counts: Arc::default(),
            max_total: config.max_connections,
            max_per_ip: config.max_connections_per_ip,
            max_unauthenticated_per_ip: config.max_unauthenticated_per_ip,
        }
    }

    /// A slot for a new (not yet logged in) connection from `ip`, or `None`
    /// when a cap is reached. The slot is given back when dropped.
    pub fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        let unauthenticated = c.unauthenticated_per_ip.get(&ip).copied().unwrap_or(0);
        if c.total >= self.max_total
            || from_ip >= self.max_per_ip
            || unauthenticated >= self.max_unauthenticated_per_ip
        {
            return None;
        }
        c.total += 1;
        *c.per_ip.entry(ip).or_default() += 1;
        *c.unauthenticated_per_ip.entry(ip).or_default() += 1;
        Some(Slot {
            counts: Arc::clone(&self.counts),
            ip,
            authenticated: false,
        })
    }
}

/// One admitted connection; see [`ConnectionLimits::admit`].
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
    authenticated: bool,
}

impl Slot {
    /// The client logged in: it no longer counts against
    /// `max_unauthenticated_per_ip`.
    pub fn authenticated(&mut self) {
        if !self.authenticated {
            self.authenticated = true;
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            decrement(&mut counts.unauthenticated_per_ip, self.ip);
        }
    }

    /// The client logged out but stays connected (IMAP UNAUTHENTICATE): it
    /// counts as not logged in again.
    pub fn unauthenticated(&mut self) {
        if self.authenticated {
            self.authenticated = false;
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            *counts.unauthenticated_per_ip.entry(self.ip).or_insert(0) += 1;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        decrement(&mut counts.per_ip, self.ip);
        if !self.authenticated {
            decrement(&mut counts.unauthenticated_per_ip, self.ip);
        }
    }
}

/// Accepts connections until `info.shutdown` fires, then waits (up to
/// `grace`) for sessions to say goodbye and end.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    info: Arc<ListenerInfo>,
    handler: Arc<H>,
    grace: Duration,
) {
    let limits = ConnectionLimits::new(&info.config);
    let tasks = TaskTracker::new();
    let idle = info.config.idle_timeout(handler.default_idle_timeout());
    let timeouts = Timeouts {
        idle,
        login: info
            .config
            .login_timeout(handler.default_login_timeout(), idle),
    };
    loop {
        let accepted = tokio::select! {
            _ = info.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (mut tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(listener = %info.name, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = limits.admit(peer.ip());
        let Some(slot) = slot else {
            tracing::info!(listener = %info.name, %peer, "connection refused: too many connections");
            let reply = handler.too_many_connections();
            // Implicit TLS listeners cannot speak before the handshake: just close.
            if info.mode != TlsMode::Implicit {
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), tcp.write_all(reply)).await;
                });
            }
            continue;
        };
        metrics::counter!("pillarbox_connections_total", "protocol" => handler.protocol(), "listener" => info.name.clone())
            .increment(1);
        let handler = Arc::clone(&handler);
        let info = Arc::clone(&info);
        let span = tracing::info_span!("session", protocol = handler.protocol(), listener = %info.name, %peer, account = tracing::field::Empty);
        tasks.spawn(
            async move {
                let gauge =
                    metrics::gauge!("pillarbox_connections_open", "protocol" => handler.protocol());
                gauge.increment(1.0);
                let _open = scopeguard_open(gauge);
                match Connection::accept(tcp, peer, info, timeouts, slot).await {
                    Ok(connection) => {
                        tracing::debug!("connected");
                        // On the heap, not in the task: the task stays small
                        // while the session waits.
                        Box::pin(handler.handle(connection)).await;
                        tracing::debug!("disconnected");
                    }
                    Err(error) => {
                        tracing::info!(%error, "connection failed before the session began")
                    }
                }
            }
            .instrument(span),
        );
    }
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!(listener = %info.name, "sessions still running after the shutdown grace period");
    }
}

/// Decrements the open-connections gauge when the session ends, however it ends.
fn scopeguard_open(gauge: metrics::Gauge) -> impl Drop {
    struct Open(metrics::Gauge);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.decrement(1.0);
        }
    }
    Open(gauge)
}
