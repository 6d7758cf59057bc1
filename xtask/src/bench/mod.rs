//! `cargo xtask bench <workload>`: a protocol-level load generator that
//! starts Pillarbox (release build, loopback, throw-away data) — or talks to
//! any server given by address — runs one workload, prints a table and writes
//! `target/bench/<workload>.json`.

mod client;
mod expunge_cost;
mod peer;
mod resync;
mod server;
mod workloads;

use anyhow::{Context, bail};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask bench")]
pub struct Args {
    /// smtp-ingest, pop3-drain, imap-sync, imap-resync, imap-search,
    /// idle-fanout, mixed, startup or expunge-cost (the store API alone, no
    /// server).
    pub workload: String,
    /// Store of the server started for the run: sqlite (default) or a postgres:// URL.
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// Concurrent connections (smtp-ingest).
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Seconds to run (smtp-ingest, mixed).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Messages: per account (pop3-drain), in the mailbox (imap-sync,
    /// imap-search) or in the store (expunge-cost).
    #[arg(long)]
    pub messages: Option<usize>,
    /// Accounts (pop3-drain).
    #[arg(long, default_value_t = 8)]
    pub accounts: usize,
    /// IDLE clients (idle-fanout).
    #[arg(long, default_value_t = 5000)]
    pub clients: usize,
    /// Use these messages (e.g. `python3 xtask/bench/make_mbox.py bench.mbox 10000`).
    #[arg(long)]
    pub mbox: Option<PathBuf>,
    /// Talk to a running server instead of starting one (loopback only):
    /// SMTP, POP3 and IMAP addresses; accounts user0..N@example.test with the bench password.
    #[arg(long, num_args = 3, value_names = ["SMTP", "POP3", "IMAP"])]
    pub target: Option<Vec<SocketAddr>>,
    /// IMAP clients send COMPRESS DEFLATE after login (idle-fanout).
    #[arg(long)]
    pub compress: bool,
    /// Compare with a peer server in the same run.
    #[arg(long)]
    pub vs: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Targets {
    pub smtp: SocketAddr,
    pub pop3: SocketAddr,
    pub imap: SocketAddr,
}

impl Targets {
    /// Loopback addresses on these ports.
    /// The addresses of `--target` (SMTP, POP3, IMAP), loopback only.
    fn given(addrs: &[SocketAddr]) -> anyhow::Result<Targets> {
        if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            bail!(
                "{bad} is not a loopback address: the bench only talks to servers on this machine"
            );
        }
        let [smtp, pop3, imap] = addrs else {
            bail!("--target takes three addresses: SMTP, POP3 and IMAP");
        };
        Ok(Targets {
            smtp: *smtp,
            pop3: *pop3,
            imap: *imap,
        })
    }

    fn loopback(smtp: u16, pop3: u16, imap: u16) -> Targets {
        let ip = std::net::Ipv4Addr::LOCALHOST;
        Targets {
            smtp: SocketAddr::from((ip, smtp)),
            pop3: SocketAddr::from((ip, pop3)),
            imap: SocketAddr::from((ip, imap)),
        }
    }

    /// The Pillarbox the bench starts.
    fn pillarbox() -> Targets {
        Targets::loopback(server::PORTS.smtp, server::PORTS.pop3, server::PORTS.imap)
    }
}

/// Named figures in order, with units.
pub struct Figures(Vec<(String, f64, String)>);

impl Figures {
    pub fn new() -> Figures {
        Figures(Vec::new())
    }

    pub fn push(&mut self, name: &str, value: f64, unit: &str) {
        self.0.push((name.to_string(), value, unit.to_string()));
    }
}

fn load_messages(args: &Args, default: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    match &args.mbox {
        Some(path) => {
            let mut all = client::read_mbox(path)?;
            if let Some(n) = args.messages {
                all.truncate(n);
            }
            Ok(all)
        }
        None => Ok((0..args.messages.unwrap_or(default))
            .map(|i| {
                client::message(
                    i,
                    if i % 10 == 0 { 40 << 10 } else { 4 << 10 },
                    "user0@example.test",
                )
            })
            .collect()),
    }
}

/// One workload against one server; `memory` reads the server's memory (KiB).
async fn run_workload(
    args: &Args,
    targets: &Targets,
    memory: &dyn Fn() -> u64,
    messages: &dyn Fn(usize) -> anyhow::Result<Vec<Vec<u8>>>,
) -> anyhow::Result<Figures> {
    let accounts = args.accounts.max(16);
    match args.workload.as_str() {
        "smtp-ingest" => {
            let mut f = workloads::smtp_ingest(
                targets,
                args.connections,
                Duration::from_secs(args.seconds),
                accounts,
            )
            .await?;
            f.push("memory after ingest", memory() as f64 / 1024.0, "MiB");
            Ok(f)
        }
        "pop3-drain" => {
            workloads::pop3_drain(targets, args.accounts, args.messages.unwrap_or(200)).await
        }
        "imap-sync" => workloads::imap_sync(targets, &messages(10_000)?).await,
        "imap-resync" => resync::imap_resync(targets, &messages(10_000)?).await,
        "imap-search" => workloads::imap_search(targets, &messages(100_000)?).await,
        "idle-fanout" => workloads::idle_fanout(targets, args.clients, args.compress, memory).await,
        "mixed" => workloads::mixed(targets, Duration::from_secs(args.seconds)).await,
        "startup" => Ok(Figures::new()),
        other => bail!(
            "unknown workload {other:?}: use smtp-ingest, pop3-drain, imap-sync, imap-resync, imap-search, idle-fanout, mixed, startup or expunge-cost"
        ),
    }
}

/// `--vs dovecot`: Pillarbox and Postfix+Dovecot, fresh each round, A B A
/// B; the mean of each figure and the ratio Pillarbox/peer.
fn versus(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let binary = server::build()?;
    let url = store_url(args)?;
    let accounts = args.accounts.max(16);
    let messages = |default: usize| load_messages(args, default);
    let mut ours: Vec<Figures> = Vec::new();
    let mut theirs: Vec<Figures> = Vec::new();
    for round in 1..=2 {
        eprintln!("round {round}: Pillarbox");
        let s = server::Server::start(&binary, url)?;
        s.add_accounts(accounts)?;
        let memory = || s.memory_kib();
        ours.push(until_interrupted(
            &runtime,
            run_workload(args, &Targets::pillarbox(), &memory, &messages),
        )?);
        drop(s);
        eprintln!("round {round}: Postfix + Dovecot");
        let peer = peer::Peer::start(accounts)?;
        let targets = Targets::loopback(peer::SMTP_PORT, peer::POP3_PORT, peer::IMAP_PORT);
        let memory = || peer.memory_kib();
        theirs.push(until_interrupted(
            &runtime,
            run_workload(args, &targets, &memory, &messages),
        )?);
        drop(peer);
    }
    let mean =
        |runs: &[Figures], i: usize| runs.iter().map(|f| f.0[i].1).sum::<f64>() / runs.len() as f64;
    let store = store_name(args);
    println!(
        "\n{} — Pillarbox ({store}) vs Postfix+Dovecot (A B A B; commit {})",
        args.workload,
        commit()
    );
    println!(
        "  {:<34} {:>12} {:>12} {:>8}",
        "figure", "Pillarbox", "peer", "ratio"
    );
    let mut rows = Vec::new();
    for (i, (name, _, unit)) in ours[0].0.iter().enumerate() {
        let (a, b) = (mean(&ours, i), mean(&theirs, i));
        let ratio = if b != 0.0 { a / b } else { f64::NAN };
        println!("  {name:<34} {a:>12.2} {b:>12.2} {ratio:>8.2}  {unit}");
        rows.push(serde_json::json!({"name": name, "unit": unit, "pillarbox": a, "peer": b, "ratio": ratio}));
    }
    let path = results_dir()?.join(format!("{}-vs-dovecot.json", args.workload));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::json!({
            "workload": args.workload,
            "peer": "Postfix + Dovecot (LMTP)",
            "store": store,
            "commit": commit(),
            "date": date(),
            "figures": rows,
        }))?,
    )?;
    println!("  written to {}", path.display());
    Ok(())
}

/// Runs a workload to its end or to Ctrl-C; either way the caller's
/// servers are then dropped, so nothing the bench started keeps running.
fn until_interrupted<T>(
    runtime: &tokio::runtime::Runtime,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    runtime.block_on(async {
        tokio::select! {
            result = work => result,
            _ = tokio::signal::ctrl_c() => bail!("interrupted: stopping the servers"),
        }
    })
}

/// `--store`: None for the embedded SQLite, else the PostgreSQL URL.
fn store_url(args: &Args) -> anyhow::Result<Option<&str>> {
    let url = (args.store != "sqlite").then_some(args.store.as_str());
    if let Some(url) = url
        && !url.starts_with("postgres://")
    {
        bail!("--store takes sqlite or a postgres:// URL");
    }
    Ok(url)
}

/// The store named in results: `sqlite` or the PostgreSQL host and database.
fn store_name(args: &Args) -> String {
    args.store.split('@').next_back().unwrap_or("").to_string()
}

fn results_dir() -> anyhow::Result<PathBuf> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let dir = PathBuf::from(target).join("bench");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn date() -> Option<String> {
    std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub fn main(args: Args) -> anyhow::Result<()> {
    if let Some(peer) = &args.vs {
        if peer != "dovecot" {
            bail!("--vs {peer}: the peer this tool can start is dovecot (with Postfix for SMTP)");
        }
        return versus(&args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.workload == "expunge-cost" {
        let figures = until_interrupted(
            &runtime,
            expunge_cost::run(store_url(&args)?, args.messages.unwrap_or(100_000)),
        )?;
        return report(&args, "store API", &figures);
    }
    let started;
    let (targets, server) = match &args.target {
        Some(addrs) => {
            started = None;
            (Targets::given(addrs)?, None)
        }
        None => {
            let binary = server::build()?;
            let s = server::Server::start(&binary, store_url(&args)?)?;
            s.add_accounts(args.accounts.max(16))?;
            started = Some((s.startup, s.memory_kib()));
            (Targets::pillarbox(), Some(s))
        }
    };
    let memory = || server.as_ref().map(|s| s.memory_kib()).unwrap_or(0);
    let messages = |default: usize| load_messages(&args, default);
    let mut figures =
        until_interrupted(&runtime, run_workload(&args, &targets, &memory, &messages))?;
    if let Some((startup, memory_at_start)) = started {
        figures.push(
            "startup (serve → accepting)",
            startup.as_secs_f64() * 1000.0,
            "ms",
        );
        figures.push("memory after start", memory_at_start as f64 / 1024.0, "MiB");
    }
    report(
        &args,
        if args.target.is_some() {
            "external server"
        } else {
            "Pillarbox"
        },
        &figures,
    )?;
    drop(server);
    Ok(())
}

/// Prints the figures and writes `target/bench/<workload>.json`.
fn report(args: &Args, server: &str, figures: &Figures) -> anyhow::Result<()> {
    let store = if args.target.is_some() {
        "external".to_string()
    } else {
        store_name(args)
    };
    println!(
        "\n{} — {server} (store: {store}, commit {})",
        args.workload,
        commit()
    );
    for (name, value, unit) in &figures.0 {
        println!("  {name:<34} {value:>12.2} {unit}");
    }
    let json = serde_json::json!({
        "workload": args.workload,
        "server": server,
        "store": store,
        "commit": commit(),
        "date": date(),
        "figures": figures.0.iter().map(|(n, v, u)| serde_json::json!({"name": n, "value": v, "unit": u})).collect::<Vec<_>>(),
    });
    let path = results_dir()?.join(format!("{}.json", args.workload));
    std::fs::write(&path, serde_json::to_string_pretty(&json)?)
        .context("cannot write the results")?;
    println!("  written to {}", path.display());
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::Targets;
    use std::net::SocketAddr;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn targets_outside_loopback_are_refused() {
        for outside in [
            "192.0.2.1:25",
            "10.0.0.1:25",
            "0.0.0.0:25",
            "[2001:db8::1]:25",
        ] {
            let error = Targets::given(&addrs(&[outside, "127.0.0.1:110", "127.0.0.1:143"]))
                .err()
                .unwrap_or_else(|| panic!("{outside} was accepted"));
            assert!(
                error.to_string().contains("not a loopback address"),
                "{error}"
            );
        }
        let t = Targets::given(&addrs(&["127.0.0.1:25", "[::1]:110", "127.0.0.2:143"])).unwrap();
        assert_eq!(t.imap.port(), 143);
        assert!(Targets::given(&addrs(&["127.0.0.1:25"])).is_err());
    }
}
