//! The workloads. Each is bounded in count and in time.

use super::client::{Client, message};
use super::server::PASSWORD;
use super::{Figures, Targets};
use anyhow::bail;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// 70% 4 KB, 25% 40 KB, 5% 1 MB.
fn size_of(i: usize) -> usize {
    match i % 20 {
        0 => 1 << 20,
        1..=5 => 40 << 10,
        _ => 4 << 10,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// One SMTP session sending `messages` (or until `deadline`); returns latencies (s).
async fn smtp_session(
    targets: &Targets,
    first: usize,
    count: usize,
    deadline: Instant,
    to: impl Fn(usize) -> String,
    mix: bool,
) -> anyhow::Result<Vec<f64>> {
    let mut c = Client::connect(targets.smtp).await?;
    c.smtp_reply().await?;
    c.send(b"EHLO bench.test\r\n").await?;
    c.smtp_reply().await?;
    let mut latencies = Vec::new();
    for i in first..first + count {
        if Instant::now() >= deadline {
            break;
        }
        let rcpt = to(i);
        let body = message(i, if mix { size_of(i) } else { 4 << 10 }, &rcpt);
        c.send(format!("MAIL FROM:<sender@bench.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n").as_bytes())
            .await?;
        for _ in 0..2 {
            let r = c.smtp_reply().await?;
            if !r.starts_with('2') {
                bail!("SMTP refused: {r}");
            }
        }
        let r = c.smtp_reply().await?;
        if !r.starts_with("354") {
            bail!("SMTP refused DATA: {r}");
        }
        let mut data = Vec::with_capacity(body.len() + 8);
        for line in body.split_inclusive(|b| *b == b'\n') {
            if line.starts_with(b".") {
                data.push(b'.');
            }
            data.extend_from_slice(line);
        }
        data.extend_from_slice(b".\r\n");
        c.send(&data).await?;
        let sent = Instant::now();
        let r = c.smtp_reply().await?;
        if !r.starts_with("250") {
            bail!("message not accepted: {r}");
        }
        latencies.push(sent.elapsed().as_secs_f64());
    }
    c.send(b"QUIT\r\n").await?;
    Ok(latencies)
}

pub async fn smtp_ingest(
    t: &Targets,
    connections: usize,
    duration: Duration,
    accounts: usize,
) -> anyhow::Result<Figures> {
    let users: Vec<String> = (0..accounts)
        .map(|a| format!("user{a}@example.test"))
        .collect();
    // Logged in before the clock starts: logins are not part of the figure.
    let mut inboxes = Inboxes::open(t, &users).await?;
    let already = inboxes.total().await?;
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for conn in 0..connections {
        let t = t.clone();
        tasks.spawn(async move {
            smtp_session(
                &t,
                conn * 1_000_000,
                1_000_000,
                deadline,
                |i| format!("user{}@example.test", i % accounts.max(1)),
                true,
            )
            .await
        });
    }
    let mut latencies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        latencies.extend(r??);
    }
    let accepted = start.elapsed().as_secs_f64();
    // A 250 from a queueing server is not yet mail in a mailbox: wait for it.
    let in_mailboxes = inboxes.wait_for(already + latencies.len()).await?;
    let delivered = in_mailboxes.duration_since(start).as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let mut f = Figures::new();
    f.push("messages", latencies.len() as f64, "");
    f.push(
        "messages/s (250)",
        latencies.len() as f64 / accepted,
        "msg/s",
    );
    f.push(
        "messages/s (in mailboxes)",
        latencies.len() as f64 / delivered,
        "msg/s",
    );
    f.push(
        "p50 end-of-DATA→250",
        percentile(&latencies, 0.5) * 1000.0,
        "ms",
    );
    f.push(
        "p99 end-of-DATA→250",
        percentile(&latencies, 0.99) * 1000.0,
        "ms",
    );
    Ok(f)
}

/// One logged-in IMAP session per account, to count what has arrived.
pub struct Inboxes(Vec<Client>);

impl Inboxes {
    pub async fn open(t: &Targets, users: &[String]) -> anyhow::Result<Inboxes> {
        let mut clients = Vec::with_capacity(users.len());
        for user in users {
            clients.push(imap_login(t, user).await?);
        }
        Ok(Inboxes(clients))
    }

    /// Messages in all these INBOXes now (IMAP STATUS).
    pub async fn total(&mut self) -> anyhow::Result<usize> {
        let mut total = 0;
        for c in &mut self.0 {
            c.send(b"t STATUS INBOX (MESSAGES)\r\n").await?;
            let (lines, _) = c.imap_until("t").await?;
            total += lines
                .iter()
                .find_map(|l| {
                    let rest = l.split("(MESSAGES ").nth(1)?;
                    rest.split(')').next()?.trim().parse::<usize>().ok()
                })
                .unwrap_or(0);
        }
        Ok(total)
    }

    /// Polls until the INBOXes hold `total` messages between them (at most
    /// 5 minutes); returns when they did.
    pub async fn wait_for(&mut self, total: usize) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let seen = self.total().await?;
            if seen >= total {
                return Ok(Instant::now());
            }
            if Instant::now() >= deadline {
                bail!("only {seen} of {total} messages reached the mailboxes within 5 minutes");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Puts `count` messages into `user` over SMTP, `connections` at a time.
pub async fn preload_smtp(
    t: &Targets,
    user: &str,
    count: usize,
    connections: usize,
) -> anyhow::Result<()> {
    let per = count.div_ceil(connections.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for conn in 0..connections {
        let (t, user) = (t.clone(), user.to_string());
        let n = per.min(count.saturating_sub(conn * per));
        tasks.spawn(async move {
            smtp_session(
                &t,
                conn * per,
                n,
                Instant::now() + Duration::from_secs(3600),
                move |_| user.clone(),
                false,
            )
            .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

/// Puts `messages` into `user`'s INBOX with pipelined APPENDs (LITERAL+).
pub async fn preload_imap(t: &Targets, user: &str, messages: &[Vec<u8>]) -> anyhow::Result<()> {
    let mut c = Client::connect(t.imap).await?;
    c.line().await?;
    c.send(format!("l LOGIN {user} \"{PASSWORD}\"\r\n").as_bytes())
        .await?;
    c.imap_until("l").await?;
    for chunk in messages.chunks(50) {
        let mut batch = Vec::new();
        for (i, m) in chunk.iter().enumerate() {
            batch.extend_from_slice(format!("a{i} APPEND INBOX {{{}+}}\r\n", m.len()).as_bytes());
            batch.extend_from_slice(m);
            batch.extend_from_slice(b"\r\n");
        }
        c.send(&batch).await?;
        for i in 0..chunk.len() {
            c.imap_until(&format!("a{i}")).await?;
        }
    }
    Ok(())
}

pub async fn pop3_drain(t: &Targets, accounts: usize, messages: usize) -> anyhow::Result<Figures> {
    let users: Vec<String> = (0..accounts)
        .map(|a| format!("user{a}@example.test"))
        .collect();
    let mut inboxes = Inboxes::open(t, &users).await?;
    let expected = inboxes.total().await? + accounts * messages;
    for user in &users {
        preload_smtp(t, user, messages, 4).await?;
    }
    inboxes.wait_for(expected).await?;
    drop(inboxes);
    let start = Instant::now();
    let octets = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for a in 0..accounts {
        let (t, octets) = (t.clone(), octets.clone());
        tasks.spawn(async move {
            let mut c = Client::connect(t.pop3).await?;
            c.line().await?;
            c.send(format!("USER user{a}@example.test\r\nPASS {PASSWORD}\r\n").as_bytes())
                .await?;
            c.line().await?;
            let ok = c.line().await?;
            if !ok.starts_with("+OK") {
                bail!("POP3 login failed: {ok}");
            }
            c.send(b"LIST\r\n").await?;
            c.pop3_multiline().await?;
            c.send(b"UIDL\r\n").await?;
            c.pop3_multiline().await?;
            for i in 1..=messages {
                c.send(format!("RETR {i}\r\n").as_bytes()).await?;
                octets.fetch_add(c.pop3_multiline().await?, Ordering::Relaxed);
            }
            let mut dele = String::new();
            for i in 1..=messages {
                dele.push_str(&format!("DELE {i}\r\n"));
            }
            c.send(dele.as_bytes()).await?;
            for _ in 0..messages {
                c.line().await?;
            }
            c.send(b"QUIT\r\n").await?;
            let bye = c.line().await?;
            if !bye.starts_with("+OK") {
                bail!("QUIT failed: {bye}");
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = (accounts * messages) as f64;
    let mut f = Figures::new();
    f.push("messages", total, "");
    f.push("messages/s", total / elapsed, "msg/s");
    f.push(
        "throughput",
        octets.load(Ordering::Relaxed) as f64 / elapsed / 1e6,
        "MB/s",
    );
    Ok(f)
}

async fn imap_login(t: &Targets, user: &str) -> anyhow::Result<Client> {
    imap_login_within(t, user, None).await
}

/// Logs in, allowing `patience` for the answer (thousands of logins at once
/// queue for password checks: one argon2id per core at a time).
async fn imap_login_within(
    t: &Targets,
    user: &str,
    patience: Option<Duration>,
) -> anyhow::Result<Client> {
    imap_login_from(t, user, patience, None).await
}

/// As [`imap_login_within`], from a chosen loopback source address.
async fn imap_login_from(
    t: &Targets,
    user: &str,
    patience: Option<Duration>,
    source: Option<std::net::Ipv4Addr>,
) -> anyhow::Result<Client> {
    let mut c = Client::connect_from(t.imap, source).await?;
    let usual = c.timeout;
    if let Some(patience) = patience {
        c.timeout = patience;
    }
    c.line().await?;
    c.send(format!("l LOGIN {user} \"{PASSWORD}\"\r\n").as_bytes())
        .await?;
    c.imap_until("l").await?;
    c.timeout = usual;
    Ok(c)
}

pub async fn imap_sync(t: &Targets, messages: &[Vec<u8>]) -> anyhow::Result<Figures> {
    preload_imap(t, "user0@example.test", messages).await?;
    let n = messages.len();
    let start = Instant::now();
    let mut c = imap_login(t, "user0@example.test").await?;
    c.send(b"s SELECT INBOX\r\n").await?;
    c.imap_until("s").await?;
    c.send(b"f UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)\r\n")
        .await?;
    let (lines, _) = c.imap_until("f").await?;
    let fetched = lines.iter().filter(|l| l.contains(" FETCH ")).count();
    if fetched != n {
        bail!("first sync fetched {fetched} of {n} messages");
    }
    let newest = n.saturating_sub(500) + 1;
    c.send(format!("b FETCH {newest}:* (BODY.PEEK[])\r\n").as_bytes())
        .await?;
    let (_, octets) = c.imap_until("b").await?;
    let first = start.elapsed().as_secs_f64();
    // Incremental: a new session that knows the UIDs; flags of all, new ones only.
    let start = Instant::now();
    let mut c = imap_login(t, "user0@example.test").await?;
    c.send(b"s SELECT INBOX\r\n").await?;
    c.imap_until("s").await?;
    // One after the other: servers may answer pipelined commands out of order.
    c.send(format!("n UID FETCH {}:* (FLAGS)\r\n", n + 1).as_bytes())
        .await?;
    c.imap_until("n").await?;
    c.send(b"f FETCH 1:* (FLAGS)\r\n").await?;
    c.imap_until("f").await?;
    let incremental = start.elapsed().as_secs_f64();
    let mut f = Figures::new();
    f.push("messages", n as f64, "");
    f.push("first sync", first, "s");
    f.push("bodies fetched", octets as f64 / 1e6, "MB");
    f.push("incremental re-sync", incremental, "s");
    Ok(f)
}

pub async fn imap_search(t: &Targets, messages: &[Vec<u8>]) -> anyhow::Result<Figures> {
    preload_imap(t, "user0@example.test", messages).await?;
    let mut c = imap_login(t, "user0@example.test").await?;
    c.send(b"s SELECT INBOX\r\n").await?;
    c.imap_until("s").await?;
    c.send(b"x STORE 1:100 +FLAGS.SILENT (\\Flagged)\r\n")
        .await?;
    c.imap_until("x").await?;
    let mut f = Figures::new();
    f.push("messages", messages.len() as f64, "");
    for (name, query) in [
        ("by header (FROM)", "SEARCH FROM sender5"),
        ("by body text", "SEARCH BODY offline"),
        ("by flag (FLAGGED UNSEEN)", "SEARCH FLAGGED UNSEEN"),
    ] {
        let mut times = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            c.send(format!("q {query}\r\n").as_bytes()).await?;
            c.imap_until("q").await?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        f.push(name, times[1], "ms");
    }
    Ok(f)
}

/// K clients in IDLE; one delivery; time until the last sees EXISTS.
pub async fn idle_fanout(
    t: &Targets,
    clients: usize,
    compress: bool,
    memory: &dyn Fn() -> u64,
) -> anyhow::Result<Figures> {
    // Warm up first, so what is measured is the cost of each further
    // connection, not the one-time cost of the first logins (password
    // hashing buffers, pools, worker threads).
    let mut warm = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let t = t.clone();
        warm.spawn(async move {
            let mut c = imap_login(&t, "user0@example.test").await?;
            if compress {
                c = c.compress().await?;
            }
            c.send(b"s SELECT INBOX\r\n").await?;
            c.imap_until("s").await?;
            c.send(b"i IDLE\r\n").await?;
            c.line().await?;
            c.send(b"DONE\r\no LOGOUT\r\n").await?;
            c.imap_until("o").await?;
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = warm.join_next().await {
        r??;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = memory();
    let logging_in = Instant::now();
    // Each client says when it is in IDLE, or why it could not get there.
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<Result<(), String>>(clients.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..clients {
        let (t, ready) = (t.clone(), ready_tx.clone());
        tasks.spawn(async move {
            let reached = async {
                // 250 loopback addresses, a few clients each.
                let source = std::net::Ipv4Addr::new(127, 0, 0, 2 + (n % 250) as u8);
                let mut c = imap_login_from(
                    &t,
                    "user0@example.test",
                    Some(Duration::from_secs(900)),
                    Some(source),
                )
                .await?;
                if compress {
                    c = c.compress().await?;
                }
                c.send(b"s SELECT INBOX\r\n").await?;
                c.imap_until("s").await?;
                c.send(b"i IDLE\r\n").await?;
                let go = c.line().await?;
                if !go.starts_with('+') {
                    bail!("IDLE refused: {go}");
                }
                Ok(c)
            }
            .await;
            let mut c = match reached {
                Ok(c) => {
                    let _ = ready.send(Ok(())).await;
                    c
                }
                Err(error) => {
                    let _ = ready.send(Err(format!("client {n}: {error:#}"))).await;
                    return Err(error);
                }
            };
            // In IDLE until the delivery, which comes only once every
            // client is in: no time limit per read here, the overall one
            // below holds.
            loop {
                let line = c.line_untimed().await?;
                if line.contains("EXISTS") {
                    return Ok::<Instant, anyhow::Error>(Instant::now());
                }
            }
        });
    }
    drop(ready_tx);
    // Each login verifies an argon2id hash: thousands take a while.
    let deadline = Instant::now() + Duration::from_secs(900);
    for _ in 0..clients {
        match tokio::time::timeout_at(deadline.into(), ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(why))) => bail!("a client did not reach IDLE: {why}"),
            Ok(None) | Err(_) => bail!("not every client reached IDLE within 15 minutes"),
        }
    }
    let all_in = logging_in.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = memory();
    let sent = Instant::now();
    preload_smtp(t, "user0@example.test", 1, 1).await?;
    let accepted = Instant::now();
    let mut last = accepted;
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline.into(), tasks.join_next()).await {
        last = last.max(r??);
        seen += 1;
    }
    if seen < clients {
        bail!("only {seen} of {clients} clients saw the new message within 2 minutes");
    }
    let mut f = Figures::new();
    f.push("idle clients", clients as f64, "");
    f.push(
        "all logged in and in IDLE (from connect)",
        all_in.as_secs_f64(),
        "s",
    );
    f.push("memory before", before as f64 / 1024.0, "MiB");
    f.push("memory with clients idle", after as f64 / 1024.0, "MiB");
    f.push(
        "memory per idle connection",
        (after.saturating_sub(before)) as f64 * 1024.0 / clients.max(1) as f64,
        "bytes",
    );
    f.push(
        "delivery (SMTP)",
        accepted.duration_since(sent).as_secs_f64() * 1000.0,
        "ms",
    );
    f.push(
        "250 → last client sees EXISTS",
        last.duration_since(accepted).as_secs_f64() * 1000.0,
        "ms",
    );
    Ok(f)
}

/// A blend for a fixed time: SMTP ingest, IMAP readers polling and fetching, POP3 checks.
pub async fn mixed(t: &Targets, duration: Duration) -> anyhow::Result<Figures> {
    let deadline = Instant::now() + duration;
    let ops = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for conn in 0..4 {
        let t = t.clone();
        let ops = ops.clone();
        tasks.spawn(async move {
            let done = smtp_session(
                &t,
                conn * 1_000_000,
                1_000_000,
                deadline,
                |i| format!("user{}@example.test", i % 4),
                true,
            )
            .await?;
            ops.fetch_add(done.len(), Ordering::Relaxed);
            Ok::<_, anyhow::Error>(())
        });
    }
    for u in 0..4 {
        let (t, ops) = (t.clone(), ops.clone());
        tasks.spawn(async move {
            let mut c = imap_login(&t, &format!("user{u}@example.test")).await?;
            c.send(b"s SELECT INBOX\r\n").await?;
            c.imap_until("s").await?;
            while Instant::now() < deadline {
                c.send(b"n NOOP\r\n").await?;
                c.imap_until("n").await?;
                // UID FETCH: valid on an empty mailbox too (FETCH 1:* is not, for some servers).
                c.send(b"f UID FETCH 1:* (FLAGS)\r\n").await?;
                c.imap_until("f").await?;
                ops.fetch_add(2, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let mut f = Figures::new();
    f.push("operations", ops.load(Ordering::Relaxed) as f64, "");
    f.push(
        "operations/s",
        ops.load(Ordering::Relaxed) as f64 / duration.as_secs_f64(),
        "op/s",
    );
    Ok(f)
}
