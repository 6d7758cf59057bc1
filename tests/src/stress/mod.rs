//! The stress checker: many IMAP, POP3 and SMTP clients on shared
//! mailboxes at once, random valid commands from a seeded generator, and
//! the protocol's invariants checked after every response.
//!
//! - Clients: [`imap_work`] (IMAP sessions), [`pop3`], [`smtp`]; the wire in
//!   [`conn`] and [`wire`].
//! - What is known and checked: [`model`], [`invariants`] (every response),
//!   [`finish`] (after the run), [`outcomes`] (which refusals are valid).
//! - [`report`]: what a run found; [`servers`]: the servers it can start.
//!
//! `cargo xtask stress` runs it from the command line; `tests/tests/stress.rs`
//! runs a short one per configuration.

pub mod conn;
pub mod finish;
pub mod imap;
pub mod imap_work;
pub mod invariants;
pub mod message;
pub mod model;
pub mod outcomes;
pub mod pop3;
pub mod report;
pub mod servers;
pub mod smtp;
pub mod wire;

use finish::QuotaSource;
use imap::{ImapClient, lock, quote};
use model::{SessionModel, Shared};
use rand::SeedableRng;
use rand::rngs::StdRng;
use report::Report;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The mailboxes every account's clients share (Archive exists for every
/// new Pillarbox account; Work is made by the run).
pub const MAILBOXES: &[&str] = &["INBOX", "Work", "Archive"];

/// How long stopping may take after the deadline (one answer timeout and
/// the end of the command in flight) before a client counts as stuck.
const STOP_GRACE: Duration = Duration::from_secs(90);

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub seconds: u64,
    pub imap: usize,
    pub pop3: usize,
    pub smtp: usize,
    pub seed: u64,
    /// The shared accounts (addresses); all have `password`.
    pub accounts: Vec<String>,
    pub password: String,
    /// Messages delivered to each account before the clients start.
    pub initial: usize,
}

impl Settings {
    /// `count` accounts `stress0@example.test`… for a server the run starts.
    pub fn accounts(count: usize) -> Vec<String> {
        (0..count)
            .map(|i| format!("stress{i}@example.test"))
            .collect()
    }
}

/// One server node's listeners.
#[derive(Debug, Clone)]
pub struct Node {
    pub smtp: SocketAddr,
    pub pop3: SocketAddr,
    pub imap: SocketAddr,
}

/// What every client of a run shares.
pub struct Plan {
    pub nodes: Vec<Node>,
    pub accounts: Vec<String>,
    pub password: String,
    /// Unique to the run: part of every Message-ID it makes.
    pub run: String,
    pub deadline: tokio::time::Instant,
    pub shared: Arc<Mutex<Shared>>,
}

/// A generator for client `index` of a kind, from the run's seed.
fn rng(seed: u64, kind: u64, index: usize) -> StdRng {
    let salt = (kind << 32) ^ index as u64;
    StdRng::seed_from_u64(seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Runs the checker against `nodes` and returns what it found. `label`
/// names the configuration in the report; `quota` reads the store's quota
/// figure when the server has no QUOTA capability.
pub async fn run(
    settings: &Settings,
    nodes: Vec<Node>,
    quota: Option<Arc<dyn QuotaSource>>,
    label: &str,
) -> Report {
    let started = std::time::Instant::now();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let shared = Arc::new(Mutex::new(Shared::default()));
    let mut plan = Plan {
        nodes,
        accounts: settings.accounts.clone(),
        password: settings.password.clone(),
        run: format!("s{:x}-{nanos:x}", settings.seed),
        deadline: tokio::time::Instant::now(),
        shared: shared.clone(),
    };
    setup(&plan, settings).await;
    plan.deadline = tokio::time::Instant::now() + Duration::from_secs(settings.seconds);
    let plan = Arc::new(plan);
    let mut imap_tasks = Vec::new();
    for i in 0..settings.imap {
        let worker = imap_work::ImapWorker::new(plan.clone(), i, rng(settings.seed, 1, i));
        imap_tasks.push(tokio::spawn(worker.run()));
    }
    let mut other_tasks = Vec::new();
    for i in 0..settings.pop3 {
        let worker = pop3::Pop3Worker::new(plan.clone(), i, rng(settings.seed, 2, i));
        other_tasks.push(tokio::spawn(worker.run()));
    }
    for i in 0..settings.smtp {
        let worker = smtp::SmtpWorker::new(plan.clone(), i + 1, rng(settings.seed, 3, i));
        other_tasks.push(tokio::spawn(worker.run()));
    }
    let stop_by = plan.deadline + STOP_GRACE;
    let mut open: Vec<ImapClient> = Vec::new();
    for mut task in imap_tasks {
        match tokio::time::timeout_at(stop_by, &mut task).await {
            Ok(Ok(Some(client))) => open.push(client),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => stuck(&plan, format!("an IMAP client task failed: {error}")),
            Err(_) => {
                task.abort();
                stuck(&plan, "an IMAP client did not stop".into());
            }
        }
    }
    for mut task in other_tasks {
        match tokio::time::timeout_at(stop_by, &mut task).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => stuck(&plan, format!("a client task failed: {error}")),
            Err(_) => {
                task.abort();
                stuck(&plan, "a POP3 or SMTP client did not stop".into());
            }
        }
    }
    let ran = started.elapsed();
    finish::converge(&plan, &mut open).await;
    finish::accounts(&plan, quota.as_ref()).await;
    for mut client in open {
        let _ = client.command("LOGOUT", "", None, None, &[]).await;
    }
    let mut report = std::mem::take(&mut lock(&shared).report);
    let total: u64 = report.commands.values().sum();
    report.header = vec![
        format!(
            "stress run on {label}: seed {} (repeat with --seed {})",
            settings.seed, settings.seed
        ),
        format!(
            "{} s of load with {} IMAP, {} POP3, {} SMTP clients on {} accounts, {} node(s); run id {}",
            settings.seconds,
            settings.imap,
            settings.pop3,
            settings.smtp,
            settings.accounts.len(),
            plan.nodes.len(),
            plan.run
        ),
        format!(
            "{:.1} s until every client stopped, {:.1} s in all; {:.0} commands/s",
            ran.as_secs_f64(),
            started.elapsed().as_secs_f64(),
            total as f64 / ran.as_secs_f64().max(0.001)
        ),
    ];
    report
}

fn stuck(plan: &Plan, detail: String) {
    lock(&plan.shared)
        .report
        .fail("client stuck".into(), "run", detail, Vec::new());
}

/// Before the clients start: the shared mailboxes in every account (made
/// unless they exist), and a few messages in every INBOX.
async fn setup(plan: &Plan, settings: &Settings) {
    for account in &plan.accounts {
        let id = lock(&plan.shared).world.tick();
        let model = SessionModel::new(id, format!("setup@{account}"), account);
        let source = conn::source_ip(3001);
        let Some(mut client) = ImapClient::login(
            &plan.shared,
            source,
            plan.nodes[0].imap,
            model,
            &plan.password,
            false,
        )
        .await
        else {
            continue;
        };
        for mailbox in MAILBOXES.iter().filter(|m| **m != "INBOX") {
            let _ = client
                .command("CREATE", &quote(mailbox), None, None, &["ALREADYEXISTS"])
                .await;
        }
        let _ = client.command("LOGOUT", "", None, None, &[]).await;
    }
    if settings.initial > 0 {
        let detached = Plan {
            nodes: plan.nodes.clone(),
            accounts: plan.accounts.clone(),
            password: plan.password.clone(),
            run: plan.run.clone(),
            deadline: tokio::time::Instant::now() + Duration::from_secs(600),
            shared: plan.shared.clone(),
        };
        let mut worker = smtp::SmtpWorker::new(Arc::new(detached), 0, rng(settings.seed, 4, 0));
        if let Err((name, lost, tail)) = worker.connection(Some(settings.initial)).await {
            lock(&plan.shared)
                .report
                .fail("SMTP setup".into(), &name, lost.to_string(), tail);
        }
    }
}
