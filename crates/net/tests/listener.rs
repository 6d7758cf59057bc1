//! The listener loop and connection framing over real sockets and real rustls.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_net::{
    CancellationToken, Connection, Handler, ListenerConfig, ListenerInfo, ReadError, TlsMode, serve,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// A line protocol just rich enough to exercise the framing: echoes lines,
/// upgrades on STARTTLS, reports read errors as words.
struct Echo;

impl Handler for Echo {
    fn protocol(&self) -> &'static str {
        "echo"
    }
    fn default_idle_timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
    fn too_many_connections(&self) -> &'static [u8] {
        b"BUSY\r\n"
    }
    async fn handle(&self, mut conn: Connection) {
        let _ = conn
            .send(if conn.is_tls() {
                b"HELLO TLS\r\n"
            } else {
                b"HELLO\r\n"
            })
            .await;
        loop {
            match conn.read_line(100).await {
                Ok(line) if line == b"STARTTLS\r\n" => {
                    let _ = conn.send(b"GO\r\n").await;
                    if conn.start_tls().await.is_err() {
                        return;
                    }
                }
                Ok(line) if line == b"LOGIN\r\n" => {
                    conn.set_authenticated();
                    let _ = conn.send(b"OK\r\n").await;
                }
                Ok(line) if line == b"BAD\r\n" => {
                    if conn.record_error() {
                        let _ = conn.send(b"TOO MANY ERRORS\r\n").await;
                        conn.close().await;
                        return;
                    }
                    let _ = conn.send(b"ERR\r\n").await;
                }
                Ok(line) if line == b"QUIT\r\n" => {
                    let _ = conn.send(b"BYE\r\n").await;
                    conn.close().await;
                    return;
                }
                Ok(line) => {
                    conn.write(b"ECHO ");
                    conn.write(&line);
                    let _ = conn.flush().await;
                }
                Err(ReadError::TooLong(_)) => {
                    let _ = conn.send(b"TOOLONG\r\n").await;
                }
                Err(ReadError::Timeout(_)) => {
                    let _ = conn.send(b"TIMEOUT\r\n").await;
                    return;
                }
                Err(ReadError::Shutdown) => {
                    let _ = conn.send(b"SHUTDOWN\r\n").await;
                    return;
                }
                Err(_) => return,
            }
        }
    }
}

struct Fixture {
    addr: SocketAddr,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    connector: TlsConnector,
    _dir: tempfile::TempDir,
}

async fn start(mode: TlsMode, tweak: impl FnOnce(&mut ListenerConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let acceptor =
        pillarbox_net::tls::self_signed_acceptor(dir.path(), "mail.example.test").unwrap();
    let (cert, _) = pillarbox_net::tls::self_signed_paths(dir.path());
    let connector = TlsConnector::from(pillarbox_net::tls::client_config_trusting(&cert).unwrap());
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let mut config = ListenerConfig::new(addr);
    tweak(&mut config);
    let shutdown = CancellationToken::new();
    let info = Arc::new(ListenerInfo {
        name: "test".into(),
        mode,
        config,
        tls: Some(acceptor),
        shutdown: shutdown.clone(),
        budget: pillarbox_net::MemoryBudget::new(64 << 20),
    });
    let server = tokio::spawn(serve(socket, info, Arc::new(Echo), Duration::from_secs(5)));
    Fixture {
        addr,
        shutdown,
        server,
        connector,
        _dir: dir,
    }
}

async fn line<S: AsyncRead + Unpin>(reader: &mut BufReader<S>) -> String {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .expect("server answered in time")
        .expect("read");
    line
}

async fn send<S: AsyncWrite + Unpin>(writer: &mut S, bytes: &[u8]) {
    writer.write_all(bytes).await.unwrap();
    writer.flush().await.unwrap();
}

#[tokio::test]
async fn implicit_tls_listener_speaks_tls_from_the_first_byte() {
    let f = start(TlsMode::Implicit, |_| {}).await;
    let tcp = TcpStream::connect(f.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("mail.example.test").unwrap();
    let tls = f
        .connector
        .connect(name, tcp)
        .await
        .expect("handshake with the self-signed certificate");
    let mut reader = BufReader::new(tls);
    assert_eq!(line(&mut reader).await, "HELLO TLS\r\n");
    send(reader.get_mut(), b"ping\r\n").await;
    assert_eq!(line(&mut reader).await, "ECHO ping\r\n");
}

#[tokio::test]
async fn plaintext_pipelined_after_starttls_is_discarded_not_run_inside_tls() {
    let f = start(TlsMode::StartTls, |_| {}).await;
    let tcp = TcpStream::connect(f.addr).await.unwrap();
    let mut reader = BufReader::new(tcp);
    assert_eq!(line(&mut reader).await, "HELLO\r\n");
    // The injected command rides in the same packet as STARTTLS.
    send(reader.get_mut(), b"STARTTLS\r\nINJECTED\r\n").await;
    assert_eq!(line(&mut reader).await, "GO\r\n");
    let tcp = reader.into_inner();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = f.connector.connect(name, tcp).await.expect("upgrade");
    let mut reader = BufReader::new(tls);
    send(reader.get_mut(), b"after\r\n").await;
    // The first thing the server answers inside TLS is our command, not the injected one.
    assert_eq!(line(&mut reader).await, "ECHO after\r\n");
}

#[tokio::test]
async fn a_too_long_line_is_refused_and_the_session_goes_on() {
    let f = start(TlsMode::StartTls, |_| {}).await;
    let mut reader = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    line(&mut reader).await;
    let long = format!("{}\r\n", "x".repeat(5000));
    send(reader.get_mut(), long.as_bytes()).await;
    assert_eq!(line(&mut reader).await, "TOOLONG\r\n");
    send(reader.get_mut(), b"short\r\n").await;
    assert_eq!(line(&mut reader).await, "ECHO short\r\n");
}

#[tokio::test]
async fn a_silent_client_times_out() {
    let f = start(TlsMode::StartTls, |c| c.idle_timeout_secs = Some(1)).await;
    let mut reader = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    line(&mut reader).await;
    assert_eq!(line(&mut reader).await, "TIMEOUT\r\n");
}

/// A client that sends one byte at a time never completes a command: the
/// timeout is a deadline for the whole line, not a limit on each silence.
#[tokio::test]
async fn a_client_trickling_bytes_is_cut_off_at_the_login_deadline() {
    let f = start(TlsMode::StartTls, |c| c.login_timeout_secs = Some(1)).await;
    let mut reader = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    line(&mut reader).await;
    let started = std::time::Instant::now();
    let mut answer = String::new();
    // Up to 8 s of one byte every 200 ms (each gap well under the timeout).
    for _ in 0..40 {
        send(reader.get_mut(), b"x").await;
        if let Ok(read) =
            tokio::time::timeout(Duration::from_millis(200), reader.read_line(&mut answer)).await
        {
            read.unwrap();
            break;
        }
    }
    assert_eq!(answer, "TIMEOUT\r\n", "the trickling client was cut off");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut off near the 1 s deadline, not after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn after_login_the_idle_timeout_applies_instead_of_the_login_timeout() {
    let f = start(TlsMode::StartTls, |c| {
        c.login_timeout_secs = Some(1);
        c.idle_timeout_secs = Some(30);
    })
    .await;
    let mut reader = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    line(&mut reader).await;
    send(reader.get_mut(), b"LOGIN\r\n").await;
    assert_eq!(line(&mut reader).await, "OK\r\n");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    send(reader.get_mut(), b"ping\r\n").await;
    assert_eq!(line(&mut reader).await, "ECHO ping\r\n");
}

#[tokio::test]
async fn connections_not_logged_in_are_capped_per_ip_and_a_login_frees_a_place() {
    let f = start(TlsMode::StartTls, |c| c.max_unauthenticated_per_ip = 2).await;
    let mut first = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    assert_eq!(line(&mut first).await, "HELLO\r\n");
    let mut second = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    assert_eq!(line(&mut second).await, "HELLO\r\n");
    let mut third = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    assert_eq!(line(&mut third).await, "BUSY\r\n");
    send(first.get_mut(), b"LOGIN\r\n").await;
    assert_eq!(line(&mut first).await, "OK\r\n");
    let mut fourth = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    assert_eq!(
        line(&mut fourth).await,
        "HELLO\r\n",
        "a logged-in connection no longer counts"
    );
    // The logged-in one still counts against the cap on all connections.
    drop(second);
    drop(fourth);
}

#[tokio::test]
async fn a_session_is_closed_after_max_errors_bad_commands() {
    let f = start(TlsMode::StartTls, |c| c.max_errors = 3).await;
    let mut reader = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    line(&mut reader).await;
    send(reader.get_mut(), b"BAD\r\nBAD\r\nBAD\r\nping\r\n").await;
    assert_eq!(line(&mut reader).await, "ERR\r\n");
    assert_eq!(line(&mut reader).await, "ERR\r\n");
    assert_eq!(line(&mut reader).await, "TOO MANY ERRORS\r\n");
    let mut rest = String::new();
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut rest))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not answering: {rest:?}"
    );
}

#[tokio::test]
async fn connections_over_the_per_ip_cap_are_told_to_come_back() {
    let f = start(TlsMode::StartTls, |c| c.max_connections_per_ip = 1).await;
    let mut first = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    assert_eq!(line(&mut first).await, "HELLO\r\n");
    let mut second = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    assert_eq!(line(&mut second).await, "BUSY\r\n");
    // When the first leaves, a new connection is served again.
    send(first.get_mut(), b"QUIT\r\n").await;
    assert_eq!(line(&mut first).await, "BYE\r\n");
    drop(first);
    let mut served = false;
    for _ in 0..50 {
        let mut third = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
        if line(&mut third).await == "HELLO\r\n" {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a slot freed by a closed session is reused");
}

#[tokio::test]
async fn shutdown_lets_sessions_say_goodbye_and_stops_accepting() {
    let f = start(TlsMode::StartTls, |_| {}).await;
    let mut reader = BufReader::new(TcpStream::connect(f.addr).await.unwrap());
    line(&mut reader).await;
    f.shutdown.cancel();
    assert_eq!(line(&mut reader).await, "SHUTDOWN\r\n");
    tokio::time::timeout(Duration::from_secs(10), f.server)
        .await
        .expect("serve returns after shutdown")
        .unwrap();
    assert!(
        TcpStream::connect(f.addr).await.is_err(),
        "the port is closed"
    );
}

/// A burst of connections larger than the usual listen backlog (128) is
/// queued by the kernel whole: every one can be accepted at once, none is
/// dropped while its client believes it open.
#[tokio::test]
async fn a_burst_of_connections_is_queued_whole() {
    let listener = pillarbox_net::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let addr = listener.local_addr().unwrap();
    let burst = 600;
    let mut clients = Vec::with_capacity(burst);
    for _ in 0..burst {
        clients.push(TcpStream::connect(addr).await.unwrap());
    }
    // Nothing was accepted while they connected; now all are there at once.
    let mut accepted = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await
    {
        accepted += 1;
        if accepted == burst {
            break;
        }
    }
    assert_eq!(accepted, burst, "connections queued for accept");
}
