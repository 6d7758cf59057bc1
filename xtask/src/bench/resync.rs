//! `imap-resync`: how fast a client that was away catches up with a large
//! mailbox. The mailbox (default 10,000 messages) is loaded, a client
//! notes UIDVALIDITY and HIGHESTMODSEQ, then another session changes the
//! flags of 100 messages and expunges 10. Timed, from login to the tagged
//! OK, each the median of several runs:
//!
//! - QRESYNC (RFC 7162): `ENABLE QRESYNC`, `SELECT INBOX (QRESYNC (v m
//!   known-uids))`: the server sends only the 10 VANISHED UIDs and the
//!   changed messages' flags;
//! - full FLAGS: `SELECT INBOX`, `FETCH 1:* (FLAGS)`, as a client without
//!   QRESYNC does, and as `imap-sync`'s incremental figure measures.
//!
//! Each is also timed from the end of the login (one password check, the
//! same whatever follows) to the tagged OK: the re-sync's own cost.
//!
//! Both are checked: the QRESYNC answer must name exactly the expunged
//! UIDs and at least every changed message.

use super::Figures;
use super::Targets;
use super::client::Client;
use super::workloads::preload_imap;
use anyhow::bail;
use std::time::Instant;

const USER: &str = "user0@example.test";
const CHANGED: usize = 100;
const EXPUNGED: usize = 10;
const RUNS: usize = 5;

/// `[NAME n]` in a SELECT's untagged OK lines.
fn code(lines: &[String], name: &str) -> anyhow::Result<u64> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("* OK [{name} ")))
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("the SELECT answer has no {name}: {lines:?}"))
}

async fn login(t: &Targets) -> anyhow::Result<Client> {
    let mut c = Client::connect(t.imap).await?;
    c.line().await?;
    c.send(format!("l LOGIN {USER} \"{}\"\r\n", super::server::PASSWORD).as_bytes())
        .await?;
    c.imap_until("l").await?;
    Ok(c)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub async fn imap_resync(t: &Targets, messages: &[Vec<u8>]) -> anyhow::Result<Figures> {
    preload_imap(t, USER, messages).await?;
    let n = messages.len();
    if n < CHANGED * 2 {
        bail!("imap-resync needs at least {} messages", CHANGED * 2);
    }
    // What the client knew when it left.
    let mut c = login(t).await?;
    c.send(b"e ENABLE QRESYNC\r\n").await?;
    c.imap_until("e").await?;
    c.send(b"s SELECT INBOX\r\n").await?;
    let (lines, _) = c.imap_until("s").await?;
    let validity = code(&lines, "UIDVALIDITY")?;
    let modseq = code(&lines, "HIGHESTMODSEQ")?;
    let uid_next = code(&lines, "UIDNEXT")?;
    c.send(b"o LOGOUT\r\n").await?;
    drop(c);

    // Meanwhile, on another device: 100 messages flagged, 10 expunged.
    let mut other = login(t).await?;
    other.send(b"s SELECT INBOX\r\n").await?;
    other.imap_until("s").await?;
    let step = n / CHANGED;
    let flagged: Vec<String> = (0..CHANGED).map(|i| (1 + i * step).to_string()).collect();
    other
        .send(
            format!(
                "f STORE {} +FLAGS.SILENT (\\Flagged)\r\n",
                flagged.join(",")
            )
            .as_bytes(),
        )
        .await?;
    other.imap_until("f").await?;
    let doomed: Vec<String> = (0..EXPUNGED).map(|i| (2 + i * step).to_string()).collect();
    other
        .send(format!("d STORE {} +FLAGS.SILENT (\\Deleted)\r\n", doomed.join(",")).as_bytes())
        .await?;
    other.imap_until("d").await?;
    other.send(b"x EXPUNGE\r\n").await?;
    other.imap_until("x").await?;
    drop(other);

    let mut qresync = Vec::new();
    let mut full = Vec::new();
    // The same without the login (one password check, the same for any
    // re-sync): what the re-sync itself costs.
    let mut qresync_alone = Vec::new();
    let mut full_alone = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut c = login(t).await?;
        let logged_in = Instant::now();
        c.send(b"e ENABLE QRESYNC\r\n").await?;
        c.imap_until("e").await?;
        c.send(
            format!(
                "s SELECT INBOX (QRESYNC ({validity} {modseq} 1:{}))\r\n",
                uid_next - 1
            )
            .as_bytes(),
        )
        .await?;
        let (lines, _) = c.imap_until("s").await?;
        qresync.push(start.elapsed().as_secs_f64());
        qresync_alone.push(logged_in.elapsed().as_secs_f64());
        let vanished: usize = lines
            .iter()
            .filter_map(|l| l.strip_prefix("* VANISHED (EARLIER) "))
            .map(|set| {
                set.trim_end()
                    .split(',')
                    .map(|r| match r.split_once(':') {
                        Some((a, b)) => {
                            b.parse::<usize>().unwrap_or(0) + 1 - a.parse::<usize>().unwrap_or(0)
                        }
                        None => 1,
                    })
                    .sum::<usize>()
            })
            .sum();
        let fetched = lines.iter().filter(|l| l.contains(" FETCH (")).count();
        if vanished != EXPUNGED || fetched < CHANGED - EXPUNGED {
            bail!(
                "QRESYNC reported {vanished} vanished (want {EXPUNGED}) and {fetched} changed (want ≥ {})",
                CHANGED - EXPUNGED
            );
        }

        let start = Instant::now();
        let mut c = login(t).await?;
        let logged_in = Instant::now();
        c.send(b"s SELECT INBOX\r\n").await?;
        c.imap_until("s").await?;
        c.send(b"f FETCH 1:* (FLAGS)\r\n").await?;
        let (lines, _) = c.imap_until("f").await?;
        full.push(start.elapsed().as_secs_f64());
        full_alone.push(logged_in.elapsed().as_secs_f64());
        let fetched = lines.iter().filter(|l| l.contains(" FETCH (")).count();
        if fetched != n - EXPUNGED {
            bail!("full FLAGS fetched {fetched} of {} messages", n - EXPUNGED);
        }
    }
    let mut f = Figures::new();
    f.push("messages", n as f64, "");
    f.push("QRESYNC re-sync (login to OK)", median(qresync), "s");
    f.push("full FLAGS re-sync (login to OK)", median(full), "s");
    f.push(
        "QRESYNC re-sync after login",
        median(qresync_alone) * 1000.0,
        "ms",
    );
    f.push(
        "full FLAGS re-sync after login",
        median(full_alone) * 1000.0,
        "ms",
    );
    Ok(f)
}
