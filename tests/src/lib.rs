//! The end-to-end test harness: a real Pillarbox on loopback, on SQLite or on
//! PostgreSQL, with real TLS, and small helpers for raw-socket clients.

pub mod hostile;
pub mod imap;
pub mod store_fixture;
pub mod stress;

use pillarbox::config::Config;
use pillarbox::serve::RunningServer;
use pillarbox_directory::{Account, Directory};
pub use pillarbox_smtp::Verifier;
use pillarbox_store::{Store, StoreOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The environment variable naming the PostgreSQL server for tests.
pub const DATABASE_URL_VAR: &str = "PILLARBOX_TEST_DATABASE_URL";

/// The backends to run on: SQLite always, PostgreSQL when
/// `PILLARBOX_TEST_DATABASE_URL` is set (CI always sets it).
pub fn backends() -> Vec<Backend> {
    if std::env::var(DATABASE_URL_VAR).is_ok() {
        vec![Backend::Sqlite, Backend::Postgres]
    } else {
        eprintln!(
            "PostgreSQL tests skipped: set {DATABASE_URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
        vec![Backend::Sqlite]
    }
}

/// A fresh, empty database: a SQLite file in a temporary directory, or a new
/// PostgreSQL database dropped by [`TestDb::cleanup`].
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: tempfile::TempDir,
    admin_url: Option<String>,
    name: Option<String>,
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if base[..i].contains("//") && i > base.find("//").unwrap_or(0) + 1 => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

async fn admin(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {url}: {e}"))
}

/// Drops test databases left by earlier runs whose process is gone.
async fn sweep_stale(url: &str) {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let mut conn = admin(url).await;
            let names: Vec<(String,)> =
                sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'pbtest\\_%'")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap_or_default();
            for (name,) in names {
                let pid: Option<u32> = name.split('_').nth(1).and_then(|p| p.parse().ok());
                if let Some(pid) = pid
                    && pid != std::process::id()
                    && !std::path::Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            }
        })
        .await;
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend {
            Backend::Sqlite => TestDb {
                backend,
                url: format!("sqlite://{}", dir.path().join("pillarbox.db").display()),
                dir,
                admin_url: None,
                name: None,
            },
            Backend::Postgres => {
                static COUNTER: AtomicU32 = AtomicU32::new(0);
                let admin_url =
                    std::env::var(DATABASE_URL_VAR).expect("PILLARBOX_TEST_DATABASE_URL is set");
                sweep_stale(&admin_url).await;
                let name = format!(
                    "pbtest_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.subsec_nanos())
                        .unwrap_or(0)
                );
                let mut conn = admin(&admin_url).await;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
                TestDb {
                    backend,
                    url: with_database(&admin_url, &name),
                    dir,
                    admin_url: Some(admin_url),
                    name: Some(name),
                }
            }
        }
    }

    /// Store options as the server would use them (fs blobs with SQLite, db blobs with PostgreSQL).
    pub fn store_options(&self) -> StoreOptions {
        let options = StoreOptions::new(self.url.clone());
        match self.backend {
            Backend::Sqlite => options.blob_dir(self.dir.path().join("blobs")),
            Backend::Postgres => options,
        }
    }

    /// Opens a (new) store handle on this database.
    pub async fn store(&self) -> Store {
        Store::open(self.store_options())
            .await
            .expect("store opens")
    }

    /// Drops the PostgreSQL database (the SQLite file goes with the directory).
    pub async fn cleanup(self) {
        if let (Some(admin_url), Some(name)) = (&self.admin_url, &self.name) {
            let mut conn = admin(admin_url).await;
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// A running server with every listener on an ephemeral loopback port.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub db: TestDb,
    pub backend: Backend,
    /// SPF/DKIM/DMARC checks: never the network; DNS records are put in by hand.
    pub verifier: Arc<Verifier>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, |_| {}).await
    }

    /// Starts with a configuration the test may change first.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_with_verifier(backend, tweak, Arc::new(Verifier::offline())).await
    }

    /// Starts with a configuration change and an SPF/DKIM/DMARC verifier
    /// whose DNS records the test put in ([`Verifier::dns`]).
    pub async fn start_with_verifier(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        verifier: Arc<Verifier>,
    ) -> TestServer {
        let db = TestDb::new(backend).await;
        let config = TestServer::config_for(&db, tweak);
        let server = pillarbox::serve::start_with_verifier(config, verifier.clone())
            .await
            .expect("server starts");
        TestServer {
            server: Some(server),
            db,
            backend,
            verifier,
        }
    }

    /// The configuration a test server uses on `db`.
    pub fn config_for(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> Config {
        let mut config = Config {
            hostname: "mail.example.test".into(),
            data_dir: db.dir.path().join("data"),
            ..Config::default()
        };
        config.store.url = Some(db.url.clone());
        config.store.max_connections = 8;
        for listener in config.listener.values_mut() {
            listener.addr = SocketAddr::from(([127, 0, 0, 1], 0));
        }
        tweak(&mut config);
        config
    }

    /// Stops the server and starts a new one on the same data (a restart).
    pub async fn restart(&mut self) {
        let config = self.running().config.clone();
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        let mut config = config;
        for listener in config.listener.values_mut() {
            listener.addr = SocketAddr::from(([127, 0, 0, 1], 0));
        }
        self.server = Some(
            pillarbox::serve::start_with_verifier(config, self.verifier.clone())
                .await
                .expect("server restarts"),
        );
    }

    pub fn running(&self) -> &RunningServer {
        self.server.as_ref().expect("server is running")
    }

    /// The bound address of a listener.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.running()
            .addr(name)
            .unwrap_or_else(|| panic!("listener {name} is not enabled"))
    }

    pub fn store(&self) -> &Store {
        &self.running().store
    }

    pub fn directory(&self) -> &Directory {
        &self.running().directory
    }

    /// The server's self-signed certificate (PEM).
    pub fn cert_path(&self) -> PathBuf {
        self.running().config.data_dir.join("tls").join("cert.pem")
    }

    /// A TLS connector that trusts the server's certificate.
    pub fn tls_connector(&self) -> TlsConnector {
        TlsConnector::from(
            pillarbox_net::tls::client_config_trusting(&self.cert_path())
                .expect("certificate loads"),
        )
    }

    /// Adds an account (and its domain, if new).
    pub async fn add_account(&self, address: &str, password: &str) -> Account {
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .expect("address has a domain");
        if !self
            .directory()
            .is_local_domain(domain)
            .await
            .expect("directory answers")
        {
            self.directory()
                .add_domain(domain)
                .await
                .expect("domain added");
        }
        self.directory()
            .add_account(address, password)
            .await
            .expect("account added")
    }

    /// The messages in an account's INBOX, as served (trace headers included), by UID.
    pub async fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        let account = self
            .directory()
            .account_by_address(address)
            .await
            .expect("directory answers")
            .unwrap_or_else(|| panic!("no account {address}"));
        let inbox = self
            .store()
            .require_mailbox(account.id, "INBOX")
            .await
            .expect("INBOX exists");
        let mut out = Vec::new();
        for m in self
            .store()
            .messages(inbox.id, pillarbox_store::UidRange::all())
            .await
            .expect("store answers")
        {
            out.push(
                self.store()
                    .message_bytes(m.message)
                    .await
                    .expect("message readable")
                    .to_vec(),
            );
        }
        out
    }

    /// As [`TestServer::inbox`], each message as (lossy) text.
    pub async fn inbox_texts(&self, address: &str) -> Vec<String> {
        self.inbox(address)
            .await
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    /// Stops the server and drops its database.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.db.cleanup().await;
    }
}

/// How long a test waits for any one answer before failing.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A line-oriented client over plaintext or TLS, for raw protocol tests.
pub struct LineClient {
    stream: BufReader<Box<dyn Io>>,
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl LineClient {
    pub async fn connect(addr: SocketAddr) -> LineClient {
        let tcp = TcpStream::connect(addr).await.expect("connects");
        LineClient {
            stream: BufReader::new(Box::new(tcp)),
        }
    }

    /// Connects from a chosen loopback source address (127.0.0.2 …), so a
    /// test can act as several client IPs.
    pub async fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> LineClient {
        LineClient {
            stream: BufReader::new(Box::new(tcp_from(source, addr).await)),
        }
    }

    pub async fn connect_tls(addr: SocketAddr, connector: &TlsConnector) -> LineClient {
        let tcp = TcpStream::connect(addr).await.expect("connects");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("valid name");
        let tls = connector.connect(name, tcp).await.expect("TLS handshake");
        LineClient {
            stream: BufReader::new(Box::new(tls)),
        }
    }

    /// Upgrades this connection to TLS (after the server said go ahead).
    pub async fn start_tls(self, connector: &TlsConnector) -> LineClient {
        assert!(
            self.stream.buffer().is_empty(),
            "no unread bytes before the TLS handshake"
        );
        let inner = self.stream.into_inner();
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("valid name");
        let tls = connector.connect(name, inner).await.expect("TLS handshake");
        LineClient {
            stream: BufReader::new(Box::new(tls)),
        }
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        let stream = self.stream.get_mut();
        stream.write_all(bytes).await.expect("write");
        stream.flush().await.expect("flush");
    }

    /// Sends a line, adding CRLF.
    pub async fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\r\n").as_bytes()).await;
    }

    /// Reads one line (with its CRLF); panics after [`READ_TIMEOUT`].
    pub async fn read_line(&mut self) -> String {
        self.try_read_line(READ_TIMEOUT)
            .await
            .expect("the server answered in time")
    }

    /// Reads one line, or `None` on timeout or when the server closed.
    pub async fn try_read_line(&mut self, timeout: Duration) -> Option<String> {
        let mut line = Vec::new();
        match tokio::time::timeout(timeout, self.stream.read_until(b'\n', &mut line)).await {
            Ok(Ok(0)) => None,
            Ok(Ok(_)) => Some(String::from_utf8_lossy(&line).into_owned()),
            _ => None,
        }
    }

    /// Reads lines until one satisfies `done`; returns them all.
    pub async fn read_until(&mut self, done: impl Fn(&str) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line().await;
            let finished = done(&line);
            lines.push(line);
            if finished {
                return lines;
            }
        }
    }

    /// True when the server has closed the connection (reads EOF within the timeout).
    pub async fn is_closed(&mut self) -> bool {
        let mut buf = Vec::new();
        matches!(
            tokio::time::timeout(READ_TIMEOUT, self.stream.read_until(b'\n', &mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// A TCP connection to `addr` from the loopback address `source`.
pub async fn tcp_from(source: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("binds the source address");
    socket.connect(addr).await.expect("connects")
}

/// Runs a real client program (swaks, fetchmail, python3 …) with a 60 s time
/// limit; a missing program fails the test with the Debian package to install.
pub fn run_client(program: &str, package: &str, args: &[&str]) -> std::process::Output {
    let output = std::process::Command::new("timeout")
        .arg("60")
        .arg(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): apt-get install {package}"));
    assert_ne!(
        output.status.code(),
        Some(127),
        "{program} is not installed: apt-get install {package}"
    );
    output
}

/// A client's exit status and output, for assertion messages.
pub fn client_output(output: &std::process::Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
