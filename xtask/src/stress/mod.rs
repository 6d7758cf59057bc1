//! `cargo xtask stress`: many IMAP, POP3 and SMTP clients on shared
//! mailboxes against Pillarbox started on loopback with a fresh store (or
//! any loopback server given with `--target`), every response checked
//! against the protocol's invariants. The checker itself is
//! `pillarbox_tests::stress` (the test suite runs a short one); this is its
//! command line: options, the server's log, the summary and the exit code.

use anyhow::{Context, bail};
use clap::Parser;
use pillarbox_tests::stress::servers::{Launched, Setup};
use pillarbox_tests::stress::{self, Node, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Server log lines printed after the summary (all are in the file).
const LOG_LINES_SHOWN: usize = 12;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask stress",
    about = "Many IMAP/POP3/SMTP clients on shared mailboxes; invariants checked after every response"
)]
pub struct Args {
    /// Server to start: sqlite, postgres or two-nodes (two Pillarbox nodes on
    /// one PostgreSQL database). PostgreSQL needs PILLARBOX_TEST_DATABASE_URL;
    /// each run makes a fresh database there.
    #[arg(long, default_value = "sqlite")]
    pub backend: String,
    /// Seconds of load (the final checks come after).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent IMAP clients.
    #[arg(long, default_value_t = 8)]
    pub imap: usize,
    /// Concurrent POP3 clients.
    #[arg(long, default_value_t = 2)]
    pub pop3: usize,
    /// Concurrent SMTP clients delivering to the shared accounts.
    #[arg(long, default_value_t = 2)]
    pub smtp: usize,
    /// Seed of the command generator (printed; the same seed repeats a run's choices).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Shared accounts.
    #[arg(long, default_value_t = 2)]
    pub accounts: usize,
    /// Messages delivered to each account before the clients start.
    #[arg(long, default_value_t = 5)]
    pub initial: usize,
    /// Talk to a running server instead (loopback only): SMTP, POP3 and IMAP
    /// addresses, plaintext login allowed; accounts user0..N-1@example.test
    /// with --password, SMTP accepting mail for them from sender@remote.test.
    #[arg(long, num_args = 3, value_names = ["SMTP", "POP3", "IMAP"])]
    pub target: Option<Vec<SocketAddr>>,
    /// The accounts' password with --target.
    #[arg(long, default_value = "bench password")]
    pub password: String,
    /// Where the started server's warnings and errors go.
    #[arg(long, default_value = "target/stress/server.log")]
    pub log: PathBuf,
}

/// Runs the checker; true when it found nothing.
pub fn main(args: Args) -> anyhow::Result<bool> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    eprintln!("stress: seed {seed}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args, seed))
}

async fn run(args: Args, seed: u64) -> anyhow::Result<bool> {
    let mut settings = Settings {
        seconds: args.seconds,
        imap: args.imap,
        pop3: args.pop3,
        smtp: args.smtp,
        seed,
        accounts: Settings::accounts(args.accounts),
        password: "stress password".into(),
        initial: args.initial,
    };
    let report = match &args.target {
        Some(addrs) => {
            if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                bail!(
                    "{bad} is not a loopback address: the stress checker only talks to servers on this machine"
                );
            }
            let [smtp, pop3, imap] = addrs[..] else {
                bail!("--target takes three addresses: SMTP, POP3 and IMAP");
            };
            settings.accounts = (0..args.accounts)
                .map(|i| format!("user{i}@example.test"))
                .collect();
            settings.password = args.password.clone();
            let node = Node { smtp, pop3, imap };
            let label = format!("the server at {imap}");
            stress::run(&settings, vec![node], None, &label).await
        }
        None => {
            let setup = Setup::parse(&args.backend).with_context(|| {
                format!(
                    "unknown backend {:?}: use sqlite, postgres or two-nodes",
                    args.backend
                )
            })?;
            log_to(&args.log)?;
            let launched = Launched::start(setup, &settings.accounts, &settings.password).await?;
            let label = format!("Pillarbox ({})", setup.name());
            let quota = launched.quota();
            let report = stress::run(&settings, launched.nodes.clone(), Some(quota), &label).await;
            launched.stop().await;
            report
        }
    };
    println!("{report}");
    if args.target.is_none() {
        // The log ties a failure's "reference" to the server's reason.
        let text = std::fs::read_to_string(&args.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        println!(
            "server log: {} warning/error lines in {}",
            lines.len(),
            args.log.display()
        );
        for line in lines.iter().take(LOG_LINES_SHOWN) {
            let cut: String = line.chars().take(300).collect();
            println!("  {cut}");
        }
    }
    println!(
        "result: {} failed commands, {} invariant violations",
        report.failure_count(),
        report.violation_count()
    );
    Ok(report.is_clean())
}

/// The server runs in this process: its warnings and errors (store errors
/// with the reference a client was given) go to `path`.
fn log_to(path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot write the server log {}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up the server log: {e}"))
}
