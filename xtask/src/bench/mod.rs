//! `cargo xtask bench <workload>`: a protocol-level load generator that
//! starts Pillarbox (release build, loopback, throw-away data) — or talks to
//! any server given by address — runs one workload, prints a table and writes
//! `target/bench/<workload>.json`.

mod client;
mod peer;
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
    /// smtp-ingest, pop3-drain, imap-sync, imap-search, idle-fanout, mixed or startup.
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
    /// Messages: per account (pop3-drain) or in the mailbox (imap-sync, imap-search).
    #[arg(long)]
    pub messages: Option<usize>,
    /// Accounts (pop3-drain).
    #[arg(long, default_value_t = 8)]
    pub accounts: usize,
    /// IDLE clients (idle-fanout).
    #[arg(long, default_value_t = 5000)]
    pub clients: usize,
    /// Use these messages (e.g. `python3 ../shared/bench/make_mbox.py bench.mbox 10000`).
    #[arg(long)]
    pub mbox: Option<PathBuf>,
    /// Talk to a running server instead of starting one (loopback only):
    /// SMTP, POP3 and IMAP addresses; accounts user0..N@example.test with the bench password.
    #[arg(long, num_args = 3, value_names = ["SMTP", "POP3", "IMAP"])]
    pub target: Option<Vec<SocketAddr>>,
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

/// One workload against one server. `peer` = the server has no SMTP (the
/// comparison preloads and triggers over IMAP for both sides).
async fn run_workload(
    args: &Args,
    targets: &Targets,
    rss: &dyn Fn() -> u64,
    messages: &dyn Fn(usize) -> anyhow::Result<Vec<Vec<u8>>>,
    peer: bool,
) -> anyhow::Result<Figures> {
    match args.workload.as_str() {
        "smtp-ingest" if peer => bail!(
            "smtp-ingest against Postfix+Dovecot is not built: Postfix is not set up by this tool"
        ),
        "smtp-ingest" => {
            let mut f = workloads::smtp_ingest(
                targets,
                args.connections,
                Duration::from_secs(args.seconds),
                16,
            )
            .await?;
            f.push("RSS after ingest", rss() as f64 / 1024.0, "MiB");
            Ok(f)
        }
        "pop3-drain" => {
            workloads::pop3_drain(targets, args.accounts, args.messages.unwrap_or(200), peer).await
        }
        "imap-sync" => workloads::imap_sync(targets, &messages(10_000)?).await,
        "imap-search" => workloads::imap_search(targets, &messages(100_000)?).await,
        "idle-fanout" => workloads::idle_fanout(targets, args.clients, rss, peer).await,
        "mixed" if peer => bail!("mixed needs SMTP: not available against Dovecot alone"),
        "mixed" => workloads::mixed(targets, Duration::from_secs(args.seconds)).await,
        "startup" => Ok(Figures::new()),
        other => bail!(
            "unknown workload {other:?}: use smtp-ingest, pop3-drain, imap-sync, imap-search, idle-fanout, mixed or startup"
        ),
    }
}

/// `--vs dovecot`: Pillarbox and Dovecot, fresh each round, A B A B; the
/// mean of each figure and the ratio Pillarbox/Dovecot.
fn versus(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let binary = server::build()?;
    let accounts = args.accounts.max(16);
    let messages = |default: usize| load_messages(args, default);
    let mut ours: Vec<Figures> = Vec::new();
    let mut theirs: Vec<Figures> = Vec::new();
    for round in 1..=2 {
        eprintln!("round {round}: Pillarbox");
        let s = server::Server::start(&binary, None)?;
        s.add_accounts(accounts)?;
        let targets = Targets::pillarbox();
        let rss = || s.rss_kib();
        ours.push(runtime.block_on(run_workload(args, &targets, &rss, &messages, true))?);
        drop(s);
        eprintln!("round {round}: Dovecot");
        let d = peer::Dovecot::start(accounts)?;
        // Dovecot alone has no SMTP: port 1 is never used (peer runs load over IMAP).
        let targets = Targets::loopback(1, peer::POP3_PORT, peer::IMAP_PORT);
        let rss = || d.rss_kib();
        theirs.push(runtime.block_on(run_workload(args, &targets, &rss, &messages, true))?);
        drop(d);
    }
    let mean =
        |runs: &[Figures], i: usize| runs.iter().map(|f| f.0[i].1).sum::<f64>() / runs.len() as f64;
    println!(
        "\n{} — Pillarbox vs Dovecot (SQLite; A B A B; commit {})",
        args.workload,
        commit()
    );
    println!(
        "  {:<34} {:>12} {:>12} {:>8}",
        "figure", "Pillarbox", "Dovecot", "ratio"
    );
    let mut rows = Vec::new();
    for (i, (name, _, unit)) in ours[0].0.iter().enumerate() {
        let (a, b) = (mean(&ours, i), mean(&theirs, i));
        let ratio = if b != 0.0 { a / b } else { f64::NAN };
        println!("  {name:<34} {a:>12.2} {b:>12.2} {ratio:>8.2}  {unit}");
        rows.push(serde_json::json!({"name": name, "unit": unit, "pillarbox": a, "dovecot": b, "ratio": ratio}));
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let dir = PathBuf::from(target).join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}-vs-dovecot.json", args.workload));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(
            &serde_json::json!({"workload": args.workload, "commit": commit(), "figures": rows}),
        )?,
    )?;
    println!("  written to {}", path.display());
    Ok(())
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
            bail!("--vs {peer}: the peer this tool can start is dovecot");
        }
        return versus(&args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started;
    let (targets, server) = match &args.target {
        Some(addrs) => {
            if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                bail!(
                    "{bad} is not a loopback address: the bench only talks to servers on this machine"
                );
            }
            started = None;
            (
                Targets {
                    smtp: addrs[0],
                    pop3: addrs[1],
                    imap: addrs[2],
                },
                None,
            )
        }
        None => {
            let binary = server::build()?;
            let url = (args.store != "sqlite").then_some(args.store.as_str());
            if let Some(url) = url
                && !url.starts_with("postgres://")
            {
                bail!("--store takes sqlite or a postgres:// URL");
            }
            let s = server::Server::start(&binary, url)?;
            let accounts = args.accounts.max(16);
            s.add_accounts(accounts)?;
            started = Some((s.startup, s.rss_kib()));
            (Targets::pillarbox(), Some(s))
        }
    };
    let rss = || server.as_ref().map(|s| s.rss_kib()).unwrap_or(0);
    let messages = |default: usize| -> anyhow::Result<Vec<Vec<u8>>> {
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
    };
    let mut figures = runtime.block_on(run_workload(&args, &targets, &rss, &messages, false))?;
    if let Some((startup, rss_start)) = started {
        figures.push(
            "startup (serve → accepting)",
            startup.as_secs_f64() * 1000.0,
            "ms",
        );
        figures.push("RSS after start", rss_start as f64 / 1024.0, "MiB");
    }
    let store = if args.target.is_some() {
        "external".to_string()
    } else {
        args.store.split('@').next_back().unwrap_or("").to_string()
    };
    println!(
        "\n{} — {} (store: {store}, commit {})",
        args.workload,
        if args.target.is_some() {
            "external server"
        } else {
            "Pillarbox"
        },
        commit()
    );
    for (name, value, unit) in &figures.0 {
        println!("  {name:<34} {value:>12.2} {unit}");
    }
    let json = serde_json::json!({
        "workload": args.workload,
        "server": if args.target.is_some() { "external" } else { "pillarbox" },
        "store": store,
        "commit": commit(),
        "date": std::process::Command::new("date").arg("-u").arg("+%Y-%m-%dT%H:%M:%SZ").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()),
        "figures": figures.0.iter().map(|(n, v, u)| serde_json::json!({"name": n, "value": v, "unit": u})).collect::<Vec<_>>(),
    });
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let dir = PathBuf::from(target).join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}.json", args.workload));
    std::fs::write(&path, serde_json::to_string_pretty(&json)?)
        .context("cannot write the results")?;
    println!("  written to {}", path.display());
    drop(server);
    Ok(())
}
