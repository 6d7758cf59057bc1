//! `pillarbox serve`: open the store, bind every enabled listener, run until
//! told to stop, then stop cleanly.

use crate::config::{BlobsKind, Config};
use anyhow::{Context, bail};
use pillarbox_directory::Directory;
use pillarbox_net::{CancellationToken, Handler, ListenerInfo, TlsMode, serve};
use pillarbox_store::{Store, StoreOptions};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How long sessions get to say goodbye on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A server running in this process.
pub struct RunningServer {
    /// Bound address of each enabled listener, by name.
    pub addrs: BTreeMap<String, SocketAddr>,
    pub store: Store,
    pub directory: Directory,
    pub config: Config,
    shutdown: CancellationToken,
    listeners: JoinSet<()>,
}

impl RunningServer {
    /// The bound address of a listener (panics in tests if it is off).
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.addrs.get(name).copied()
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, lets sessions say goodbye, closes the store.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.listeners.join_next().await.is_some() {}
        self.store.close().await;
    }

    /// Waits until the server has stopped (after its shutdown token fired).
    pub async fn wait(mut self) {
        while self.listeners.join_next().await.is_some() {}
        self.store.close().await;
    }
}

/// Opens the store described by the configuration (and applies migrations).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    refuse_root_on_someone_elses_data(&config.data_dir)?;
    let url = config.store_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
    }
    let blobs = config.store.blobs.unwrap_or(if url.starts_with("sqlite:") {
        BlobsKind::Fs
    } else {
        BlobsKind::Db
    });
    let mut options = StoreOptions::new(url);
    options.max_connections = config.store.max_connections;
    options.max_mailboxes = config.store.max_mailboxes;
    options.max_mailbox_depth = config.store.max_mailbox_depth;
    if blobs == BlobsKind::Fs {
        options = options.blob_dir(config.data_dir.join("blobs"));
    }
    Ok(Store::open(options).await?)
}

/// Root working on a data directory that belongs to the server's user
/// would leave root-owned files (blobs, the database's journal) that the
/// server can then not write: mail delivery would fail later, far from the
/// cause. Refused at once, saying how to run it instead.
fn refuse_root_on_someone_elses_data(data_dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to this process's effective user.
    let me = std::fs::metadata("/proc/self").map(|m| m.uid());
    let owner = std::fs::metadata(data_dir).map(|m| m.uid());
    if let (Ok(0), Ok(owner)) = (me, owner)
        && owner != 0
    {
        bail!(
            "the data directory {} belongs to uid {owner}, and this runs as root: files made now would be root's and the server could not write them. Run the command as that user (e.g. `runuser -u pillarbox -- pillarbox …`, or `docker-compose exec` without `-u root`)",
            data_dir.display()
        );
    }
    Ok(())
}

fn tls_acceptor(config: &Config) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    Ok(match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => pillarbox_net::tls::load_acceptor(cert, key)?,
        (None, None) => pillarbox_net::tls::self_signed_acceptor(
            &config.data_dir.join("tls"),
            &config.hostname,
        )?,
        _ => bail!(
            "tls.cert and tls.key must be set together (or neither, for a self-signed certificate)"
        ),
    })
}

/// Starts the server: every enabled listener is bound when this returns.
/// SPF/DKIM/DMARC checks use the system's DNS resolver.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let verifier = Arc::new(if config.smtp.auth_checks {
        pillarbox_smtp::Verifier::system()
    } else {
        pillarbox_smtp::Verifier::offline()
    });
    start_with_verifier(config, verifier).await
}

/// As [`start`], with the SPF/DKIM/DMARC verifier given (tests give one
/// with DNS records put in by hand, so they need no network).
pub async fn start_with_verifier(
    config: Config,
    verifier: Arc<pillarbox_smtp::Verifier>,
) -> anyhow::Result<RunningServer> {
    crate::http::init_metrics();
    pillarbox_net::tls::install_crypto_provider();
    let store = open_store(&config).await?;
    let directory = Directory::new(store.clone())
        .with_throttle(config.auth.clone())
        .with_account_metrics(config.metrics.account_labels);
    let tls = tls_acceptor(&config)?;
    let shutdown = CancellationToken::new();

    let smtp = Arc::new(pillarbox_smtp::Server::new(
        store.clone(),
        directory.clone(),
        config.smtp.clone(),
        config.hostname.clone(),
        verifier,
    ));
    let pop3 = Arc::new(pillarbox_pop3::Server::new(
        store.clone(),
        directory.clone(),
        config.pop3.clone(),
        config.hostname.clone(),
    ));
    let imap = Arc::new(pillarbox_imap::Server::new(
        store.clone(),
        directory.clone(),
        config.imap.clone(),
        config.hostname.clone(),
    ));

    let mut addrs = BTreeMap::new();
    let mut listeners = JoinSet::new();
    // One budget for what clients send, shared by every listener.
    let budget = pillarbox_net::MemoryBudget::new(config.limits.memory_budget_mib << 20);
    let mut http_socket: Option<(TcpListener, pillarbox_net::ListenerConfig)> = None;
    for (name, listener_config) in &config.listener {
        if !listener_config.enabled {
            continue;
        }
        let Some(mode) = Config::tls_mode(name) else {
            bail!(
                "unknown listener [listener.{name}]: use smtp, submission, submissions, pop3, pop3s, imap or imaps"
            );
        };
        let socket = pillarbox_net::bind(listener_config.addr).with_context(|| {
            format!(
                "cannot listen on {} for [listener.{name}]",
                listener_config.addr
            )
        })?;
        let bound = socket.local_addr()?;
        addrs.insert(name.clone(), bound);
        if mode == TlsMode::Plain {
            http_socket = Some((socket, listener_config.clone()));
            continue;
        }
        let info = Arc::new(ListenerInfo {
            name: name.clone(),
            mode,
            config: listener_config.clone(),
            tls: Some(tls.clone()),
            shutdown: shutdown.clone(),
            budget: budget.clone(),
        });
        match name.as_str() {
            "smtp" | "submission" | "submissions" => spawn(&mut listeners, socket, info, &smtp),
            "pop3" | "pop3s" => spawn(&mut listeners, socket, info, &pop3),
            _ => spawn(&mut listeners, socket, info, &imap),
        }
    }
    // The blob sweep: bytes of expunged messages after the grace period,
    // and files a crash left behind.
    listeners.spawn(crate::sweep::run(
        store.clone(),
        Duration::from_secs(config.store.blob_grace_secs),
        shutdown.clone(),
    ));
    // The outbound queue: remote recipients of authenticated submissions, bounces.
    listeners.spawn(pillarbox_smtp::outbound::run(
        smtp.clone(),
        shutdown.clone(),
    ));
    if let Some((socket, http_config)) = http_socket {
        let state = Arc::new(crate::http::HttpState {
            store: store.clone(),
            directory: directory.clone(),
            config: config.clone(),
            addrs: addrs.clone(),
            lab: config.lab.enabled.then(|| {
                match (&config.lab.demo_account, &config.lab.demo_password) {
                    (Some(account), Some(password)) => crate::lab::Lab::demo(account, password),
                    _ => crate::lab::Lab::default(),
                }
            }),
            shutdown: shutdown.clone(),
        });
        listeners.spawn(crate::http::serve(
            socket,
            state,
            http_config,
            shutdown.clone(),
        ));
    }
    Ok(RunningServer {
        addrs,
        store,
        directory,
        config,
        shutdown,
        listeners,
    })
}

fn spawn<H: Handler>(
    set: &mut JoinSet<()>,
    socket: TcpListener,
    info: Arc<ListenerInfo>,
    handler: &Arc<H>,
) {
    set.spawn(serve(socket, info, Arc::clone(handler), SHUTDOWN_GRACE));
}

/// The banner `serve` prints: one line per endpoint.
pub fn banner(server: &RunningServer) -> String {
    let mut out = format!(
        "Pillarbox {} is running as {} (store: {})\n",
        env!("CARGO_PKG_VERSION"),
        server.config.hostname,
        server.store.url()
    );
    for (name, addr) in &server.addrs {
        let mode = match Config::tls_mode(name) {
            Some(TlsMode::Implicit) => "TLS",
            Some(TlsMode::Plain) => "plain",
            _ => "STARTTLS",
        };
        let what = match name.as_str() {
            "smtp" => "SMTP (incoming mail, MX)",
            "submission" => "SMTP submission",
            "submissions" => "SMTP submission",
            "pop3" | "pop3s" => "POP3",
            "http" => "HTTP (health, metrics, client autoconfiguration)",
            _ => "IMAP",
        };
        out.push_str(&format!("  {name:<12} {addr:<22} {what} [{mode}]\n"));
    }
    out.push_str("Stop with Ctrl-C (or SIGTERM).\n");
    out
}

/// Runs until Ctrl-C or SIGTERM, then stops cleanly.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let server = start(config).await?;
    print!("{}", banner(&server));
    serve_until_signal(server).await
}

/// `pillarbox lab`: a throw-away server with a demo domain and account, and
/// the lab page on the HTTP listener.
pub async fn run_lab(mut config: Config) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("pillarbox-lab-{}", std::process::id()));
    config.data_dir = dir.clone();
    config.store.url = None;
    config.hostname = "lab.test".into();
    config.smtp.auth_checks = false;
    config.lab.enabled = true;
    config.lab.demo_account = Some("alice@lab.test".into());
    config.lab.demo_password = Some("lab-password".into());
    let server = start(config).await?;
    let directory = &server.directory;
    directory.add_domain("lab.test").await?;
    directory
        .add_account("alice@lab.test", "lab-password")
        .await?;
    print!("{}", banner(&server));
    if let Some(http) = server.addr("http") {
        println!(
            "The lab: http://{http}/lab  (account alice@lab.test, data in {}, removed at exit)",
            dir.display()
        );
    }
    let result = serve_until_signal(server).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn serve_until_signal(server: RunningServer) -> anyhow::Result<()> {
    let token = server.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    server.wait().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
