//! `expunge-cost`: what one IMAP EXPUNGE and one POP3 QUIT with deletes
//! cost the store when it holds many messages. Store API only (no server,
//! no sockets), so a 100,000-message store is made in a minute: the messages
//! of another account go in by imports (500 per transaction); then an
//! account expunges 1 message (EXPUNGE), and 10 (what QUIT does after ten
//! DELE), 20 times each, on messages delivered just before. The time is the
//! store call, commit included, as the session waits for it.

use super::Figures;
use super::client::message;
use anyhow::Context;
use pillarbox_store::{AccountId, Flags, Mailbox, NewMessage, Store, StoreOptions, Target, Uid};
use std::time::{Duration, Instant};

const ROUNDS: usize = 20;
const BATCH: usize = 500;

fn target(account: AccountId, mailbox: &Mailbox) -> Target {
    Target {
        account,
        mailbox: mailbox.id,
        flags: Flags::new(),
    }
}

fn new_message(i: usize, to: &str) -> NewMessage {
    NewMessage {
        raw: message(i, 4 << 10, to).into(),
        trace_headers: b"Return-Path: <sender@bench.test>\r\n".to_vec(),
        internal_date: None,
    }
}

fn quantile(mut samples: Vec<f64>, q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples.get(index).copied().unwrap_or(0.0)
}

/// Delivers `count` messages to `inbox` and expunges them in one call, `ROUNDS` times:
/// the expunge times in ms.
async fn expunges(
    store: &Store,
    account: AccountId,
    inbox: &Mailbox,
    count: usize,
    first: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let mut uids: Vec<Uid> = Vec::with_capacity(count);
        for n in 0..count {
            let m = new_message(first + round * count + n, "user@example.test");
            uids.push(store.deliver(&m, &[target(account, inbox)]).await?[0].uid);
        }
        let started = Instant::now();
        let expunged = store.expunge(inbox.id, &uids).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(expunged.len() == count, "expunged {expunged:?}");
    }
    Ok(times)
}

pub async fn run(url: Option<&str>, messages: usize) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir()?;
    let mut options = match url {
        Some(url) => StoreOptions::new(url),
        None => StoreOptions::new(format!(
            "sqlite://{}",
            dir.path().join("pillarbox.db").display()
        ))
        .blob_dir(dir.path().join("blobs")),
    };
    options.max_connections = 16;
    let store = Store::open(options)
        .await
        .context("while opening the store")?;
    let directory = pillarbox_directory::Directory::new(store.clone());
    directory.add_domain("example.test").await?;
    let mut accounts = Vec::new();
    for name in ["bulk", "user"] {
        let account = directory
            .add_account(&format!("{name}@example.test"), "bench password")
            .await?;
        let inbox = store.require_mailbox(account.id, "INBOX").await?;
        accounts.push((account.id, inbox));
    }
    let (bulk, bulk_inbox) = accounts[0].clone();
    let (user, user_inbox) = accounts[1].clone();

    let started = Instant::now();
    let mut made = 0;
    while made < messages {
        let batch: Vec<(NewMessage, Vec<Target>)> = (made..(made + BATCH).min(messages))
            .map(|i| {
                (
                    new_message(i, "bulk@example.test"),
                    vec![target(bulk, &bulk_inbox)],
                )
            })
            .collect();
        made += batch.len();
        store.deliver_batch(&batch).await?;
        if made % 20_000 == 0 {
            eprintln!("  {made} messages stored");
        }
    }
    let fill = started.elapsed();
    eprintln!(
        "  store filled: {messages} messages in {:.1} s",
        fill.as_secs_f64()
    );

    let mut figures = Figures::new();
    figures.push("messages in the store", messages as f64, "");
    figures.push(
        "fill (imports, 500 per commit)",
        messages as f64 / fill.as_secs_f64().max(1e-9),
        "msg/s",
    );
    let one = expunges(&store, user, &user_inbox, 1, 10_000_000).await?;
    figures.push(
        "EXPUNGE of 1 message, median",
        quantile(one.clone(), 0.5),
        "ms",
    );
    figures.push("EXPUNGE of 1 message, p90", quantile(one, 0.9), "ms");
    let ten = expunges(&store, user, &user_inbox, 10, 20_000_000).await?;
    figures.push(
        "QUIT after 10 DELE, median",
        quantile(ten.clone(), 0.5),
        "ms",
    );
    figures.push("QUIT after 10 DELE, p90", quantile(ten, 0.9), "ms");
    let started = Instant::now();
    let swept = store.sweep_blobs(Duration::ZERO).await?;
    figures.push(
        "background sweep of those blobs",
        started.elapsed().as_secs_f64() * 1000.0,
        "ms",
    );
    anyhow::ensure!(
        swept.blobs_removed as usize == ROUNDS * 11,
        "swept {swept:?}"
    );
    store.close().await;
    Ok(figures)
}
