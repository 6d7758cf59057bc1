//! Starting the server under test: a release build of Pillarbox on loopback
//! with a throw-away data directory, accounts made with its own CLI.

use anyhow::{Context, bail};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "bench password";

/// Ports the bench gives the server (unlikely to clash with a dev server).
pub struct Ports {
    pub smtp: u16,
    pub pop3: u16,
    pub imap: u16,
}

pub const PORTS: Ports = Ports {
    smtp: 12525,
    pop3: 11110,
    imap: 11143,
};

pub struct Server {
    child: Child,
    pub binary: PathBuf,
    /// Kept alive for the server's lifetime (removed on drop).
    _data: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    /// From spawn to the IMAP port accepting.
    pub startup: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn build() -> anyhow::Result<PathBuf> {
    eprintln!("$ cargo build --release -p pillarbox");
    let ok = Command::new("cargo")
        .args(["build", "--release", "-p", "pillarbox"])
        .status()
        .context("cannot run cargo")?
        .success();
    if !ok {
        bail!("the release build failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    Ok(Path::new(&target).join("release").join("pillarbox"))
}

fn wait_for(port: u16, limit: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while start.elapsed() < limit {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    bail!("the server did not accept connections on port {port} within {limit:?}")
}

/// Runs an admin command of the binary on the server's store.
fn admin(
    binary: &Path,
    env: &[(String, String)],
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<()> {
    let mut cmd = Command::new(binary);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(text.as_bytes())?;
    }
    if !child.wait()?.success() {
        bail!("pillarbox {} failed", args.join(" "));
    }
    Ok(())
}

impl Server {
    /// Starts `binary` with `store_url` (None = embedded SQLite).
    pub fn start(binary: &Path, store_url: Option<&str>) -> anyhow::Result<Server> {
        let data = tempfile::tempdir()?;
        let mut env = vec![
            (
                "PILLARBOX_DATA_DIR".to_string(),
                data.path().display().to_string(),
            ),
            ("PILLARBOX_HOSTNAME".into(), "bench.example.test".into()),
            ("PILLARBOX_LOG__LEVEL".into(), "warn".into()),
            (
                "PILLARBOX_LISTENER__SMTP__ADDR".into(),
                format!("127.0.0.1:{}", PORTS.smtp),
            ),
            (
                "PILLARBOX_LISTENER__POP3__ADDR".into(),
                format!("127.0.0.1:{}", PORTS.pop3),
            ),
            (
                "PILLARBOX_LISTENER__POP3__ALLOW_PLAINTEXT_AUTH".into(),
                "true".into(),
            ),
            (
                "PILLARBOX_LISTENER__IMAP__ADDR".into(),
                format!("127.0.0.1:{}", PORTS.imap),
            ),
            (
                "PILLARBOX_LISTENER__IMAP__ALLOW_PLAINTEXT_AUTH".into(),
                "true".into(),
            ),
            (
                "PILLARBOX_LISTENER__IMAP__MAX_CONNECTIONS_PER_IP".into(),
                "100000".into(),
            ),
            (
                "PILLARBOX_LISTENER__IMAP__MAX_CONNECTIONS".into(),
                "100000".into(),
            ),
            // Every bench client comes from 127.0.0.1, thousands of them
            // connecting before they log in (idle-fanout's login storm).
            (
                "PILLARBOX_LISTENER__IMAP__MAX_UNAUTHENTICATED_PER_IP".into(),
                "100000".into(),
            ),
            (
                "PILLARBOX_LISTENER__SMTP__MAX_UNAUTHENTICATED_PER_IP".into(),
                "10000".into(),
            ),
            (
                "PILLARBOX_LISTENER__POP3__MAX_UNAUTHENTICATED_PER_IP".into(),
                "10000".into(),
            ),
            (
                "PILLARBOX_LISTENER__SMTP__MAX_CONNECTIONS_PER_IP".into(),
                "10000".into(),
            ),
            (
                "PILLARBOX_LISTENER__POP3__MAX_CONNECTIONS_PER_IP".into(),
                "10000".into(),
            ),
            (
                "PILLARBOX_LISTENER__SUBMISSION__ENABLED".into(),
                "false".into(),
            ),
            (
                "PILLARBOX_LISTENER__SUBMISSIONS__ENABLED".into(),
                "false".into(),
            ),
            ("PILLARBOX_LISTENER__POP3S__ENABLED".into(), "false".into()),
            ("PILLARBOX_LISTENER__IMAPS__ENABLED".into(), "false".into()),
            ("PILLARBOX_LISTENER__HTTP__ENABLED".into(), "false".into()),
            // Local benchmark mail has no DNS to check.
            ("PILLARBOX_SMTP__AUTH_CHECKS".into(), "false".into()),
        ];
        if let Some(url) = store_url {
            env.push(("PILLARBOX_STORE__URL".into(), url.to_string()));
        }
        // Admin commands before the server runs (the same store).
        admin(binary, &env, &["domain", "add", "example.test"], None)?;
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let spawned = Instant::now();
        let child = cmd.spawn().context("cannot start the server")?;
        let mut server = Server {
            child,
            binary: binary.to_path_buf(),
            _data: data,
            env,
            startup: Duration::ZERO,
        };
        wait_for(PORTS.imap, Duration::from_secs(30))?;
        server.startup = spawned.elapsed();
        Ok(server)
    }

    /// Adds accounts user0..userN-1 @example.test (the server reads them at once).
    pub fn add_accounts(&self, count: usize) -> anyhow::Result<()> {
        for i in 0..count {
            let address = format!("user{i}@example.test");
            admin(
                &self.binary,
                &self.env,
                &["account", "add", &address, "--password-stdin"],
                Some(&format!("{PASSWORD}\n")),
            )?;
        }
        Ok(())
    }

    /// Memory of the server process (proportional set size), in KiB.
    pub fn memory_kib(&self) -> u64 {
        super::peer::pss_kib(std::path::Path::new(&format!("/proc/{}", self.child.id())))
    }
}
