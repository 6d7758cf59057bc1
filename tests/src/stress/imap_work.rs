//! What an IMAP client of the stress run does: random valid commands on
//! the shared mailboxes until the deadline — SELECT/EXAMINE, FETCH, STORE,
//! EXPUNGE, APPEND, COPY, MOVE, SEARCH, NOOP, IDLE, CLOSE, STATUS — keeping
//! the ledger of what it asked for (deletions, copies, deliveries).

use super::Plan;
use super::conn::source_ip;
use super::imap::{ImapClient, lock, quote};
use super::message;
use super::model::{MailboxKey, SessionModel};
use rand::Rng;
use rand::rngs::StdRng;
use std::sync::Arc;
use std::time::Duration;

/// Flags the clients set: system flags and five keywords.
const FLAGS: &[&str] = &[
    "\\Seen",
    "\\Answered",
    "\\Flagged",
    "\\Draft",
    "$Label1",
    "$Label2",
    "$Label3",
    "$Label4",
    "$Label5",
];

/// Past this many messages a client mostly deletes (keeps each SELECT cheap).
const CROWDED: usize = 150;

pub struct ImapWorker {
    pub plan: Arc<Plan>,
    pub index: usize,
    pub rng: StdRng,
    connections: usize,
    appended: u64,
}

impl ImapWorker {
    pub fn new(plan: Arc<Plan>, index: usize, rng: StdRng) -> ImapWorker {
        ImapWorker {
            plan,
            index,
            rng,
            connections: 0,
            appended: 0,
        }
    }

    /// Runs until the deadline; returns the session still open (for the
    /// convergence check), if any.
    pub async fn run(mut self) -> Option<ImapClient> {
        let mut client: Option<ImapClient> = None;
        while tokio::time::Instant::now() < self.plan.deadline {
            let mut current = match client.take() {
                Some(c) if !c.dead => c,
                _ => match self.connect().await {
                    Some(c) => c,
                    None => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                },
            };
            // Now and then a session ends and a new one begins.
            if self.rng.random_bool(0.01) {
                let _ = current.command("LOGOUT", "", None, None, &[]).await;
                continue;
            }
            let _ = self.step(&mut current).await;
            client = Some(current);
        }
        client.filter(|c| !c.dead)
    }

    async fn connect(&mut self) -> Option<ImapClient> {
        let plan = self.plan.clone();
        self.connections += 1;
        let node = self.index % plan.nodes.len();
        let account = plan.accounts[self.index % plan.accounts.len()].clone();
        let id = {
            let mut shared = lock(&plan.shared);
            shared.world.tick()
        };
        let name = format!("imap{}.{}@node{node}", self.index, self.connections);
        let model = SessionModel::new(id, name, &account);
        // One client in four speaks IMAP4rev2 (no \Recent, ESEARCH, UTF-8).
        let rev2 = self.index % 4 == 3;
        ImapClient::login(
            &plan.shared,
            source_ip(self.index),
            plan.nodes[node].imap,
            model,
            &plan.password,
            rev2,
        )
        .await
    }

    fn mailbox(&mut self) -> &'static str {
        super::MAILBOXES[self.rng.random_range(0..super::MAILBOXES.len())]
    }

    async fn step(&mut self, c: &mut ImapClient) -> Result<(), super::conn::Lost> {
        let Some(sel) = c.model.selected.as_ref() else {
            return match self.rng.random_range(0..10) {
                0 => self.status(c).await,
                1 => self.append(c).await,
                _ => self.select(c).await,
            };
        };
        let read_only = sel.read_only;
        if sel.uids.is_empty() {
            return match self.rng.random_range(0..4) {
                0 => self.append(c).await,
                1 => self.select(c).await,
                2 => c.idle(Duration::from_millis(300)).await.map(drop),
                _ => c.command("NOOP", "", None, None, &[]).await.map(drop),
            };
        }
        let crowded = sel.uids.len() > CROWDED;
        let roll = self.rng.random_range(0..100);
        match roll {
            _ if crowded && roll < 30 && !read_only => self.store(c, true).await,
            _ if crowded && roll < 45 && !read_only => self.expunge(c).await,
            0..=21 => self.fetch(c).await,
            22..=39 if !read_only => self.store(c, false).await,
            40..=44 if !read_only => self.store(c, true).await,
            45..=49 if !read_only => self.expunge(c).await,
            50..=56 => self.append(c).await,
            57..=62 => self.copy(c, false).await,
            63..=66 if !read_only => self.copy(c, true).await,
            67..=72 => self.search(c).await,
            73..=78 => c.command("NOOP", "", None, None, &[]).await.map(drop),
            79..=82 => {
                let wait = Duration::from_millis(self.rng.random_range(100..600));
                c.idle(wait).await.map(drop)
            }
            83..=85 => c.command("CLOSE", "", None, None, &[]).await.map(drop),
            86..=89 => self.status(c).await,
            90..=94 => self.select(c).await,
            _ => self.fetch(c).await,
        }
    }

    async fn select(&mut self, c: &mut ImapClient) -> Result<(), super::conn::Lost> {
        let mailbox = self.mailbox();
        let key = MailboxKey::new(&c.model.account, mailbox);
        let verb = if self.rng.random_bool(0.2) {
            "EXAMINE"
        } else {
            "SELECT"
        };
        let answer = c
            .command(verb, &quote(mailbox), None, Some(key), &[])
            .await?;
        if answer.ok() {
            sync(c).await?;
        }
        Ok(())
    }

    async fn status(&mut self, c: &mut ImapClient) -> Result<(), super::conn::Lost> {
        let mailbox = self.mailbox();
        let key = MailboxKey::new(&c.model.account, mailbox);
        let args = format!("{} (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)", quote(mailbox));
        c.command("STATUS", &args, None, Some(key), &[])
            .await
            .map(drop)
    }

    /// Message numbers (1–3 of them) of the selected mailbox; with
    /// `ours_only`, only messages whose UID and Message-ID are known and
    /// that this run made (so the ledger can follow what is done to them).
    fn pick(&mut self, c: &ImapClient, ours_only: bool) -> Vec<(u32, Option<u32>, Option<String>)> {
        let Some(sel) = c.model.selected.as_ref() else {
            return Vec::new();
        };
        let shared = lock(c.shared());
        let candidates: Vec<(u32, Option<u32>, Option<String>)> = sel
            .uids
            .iter()
            .enumerate()
            .map(|(i, uid)| {
                let id = uid.and_then(|u| shared.world.message_id(&sel.key, u).map(str::to_string));
                (i as u32 + 1, *uid, id)
            })
            .filter(|(_, uid, id)| {
                !ours_only
                    || (uid.is_some()
                        && id
                            .as_ref()
                            .is_some_and(|id| shared.world.ledger.contains_key(id)))
            })
            .collect();
        drop(shared);
        if candidates.is_empty() {
            return Vec::new();
        }
        let n = self.rng.random_range(1..=3usize).min(candidates.len());
        let mut picked: Vec<_> = (0..n)
            .map(|_| candidates[self.rng.random_range(0..candidates.len())].clone())
            .collect();
        picked.sort_by_key(|p| p.0);
        picked.dedup_by_key(|p| p.0);
        picked
    }

    async fn fetch(&mut self, c: &mut ImapClient) -> Result<(), super::conn::Lost> {
        let mut items = vec!["UID"];
        for item in ["FLAGS", "BODY.PEEK[]", "ENVELOPE", "RFC822.SIZE"] {
            if self.rng.random_bool(0.5) {
                items.push(item);
            }
        }
        let items = format!("({})", items.join(" "));
        let picked = self.pick(c, false);
        if picked.is_empty() {
            return c.command("NOOP", "", None, None, &[]).await.map(drop);
        }
        let uids: Vec<u32> = picked.iter().filter_map(|p| p.1).collect();
        if !uids.is_empty() && self.rng.random_bool(0.4) {
            let args = format!("{} {items}", join(&uids));
            return c
                .command("UID FETCH", &args, None, None, &[])
                .await
                .map(drop);
        }
        let seqs: Vec<u32> = picked.iter().map(|p| p.0).collect();
        let set = if self.rng.random_bool(0.2) && seqs.len() > 1 {
            format!("{}:{}", seqs[0], seqs[seqs.len() - 1])
        } else {
            join(&seqs)
        };
        c.command("FETCH", &format!("{set} {items}"), None, None, &[])
            .await
            .map(drop)
    }

    /// STORE +FLAGS/-FLAGS/FLAGS (.SILENT sometimes); `delete` sets \Deleted
    /// on messages of this run (their deletion is then intended).
    async fn store(&mut self, c: &mut ImapClient, delete: bool) -> Result<(), super::conn::Lost> {
        let picked = self.pick(c, delete);
        if picked.is_empty() {
            return Ok(());
        }
        let op = if delete {
            "+FLAGS"
        } else {
            match self.rng.random_range(0..10) {
                0..=4 => "+FLAGS",
                5..=7 => "-FLAGS",
                _ => "FLAGS",
            }
        };
        let silent = if self.rng.random_bool(0.2) {
            ".SILENT"
        } else {
            ""
        };
        let mut flags: Vec<&str> = (0..self.rng.random_range(1..=2))
            .map(|_| FLAGS[self.rng.random_range(0..FLAGS.len())])
            .collect();
        if delete {
            flags.push("\\Deleted");
            let mut shared = lock(c.shared());
            for (_, _, id) in &picked {
                if let Some(id) = id {
                    shared.world.intend_delete(id);
                }
            }
        }
        flags.sort_unstable();
        flags.dedup();
        let flags = flags.join(" ");
        let uids: Vec<u32> = picked.iter().filter_map(|p| p.1).collect();
        if uids.len() == picked.len() && self.rng.random_bool(0.4) {
            let args = format!("{} {op}{silent} ({flags})", join(&uids));
            return c
                .command("UID STORE", &args, None, None, &[])
                .await
                .map(drop);
        }
        let seqs: Vec<u32> = picked.iter().map(|p| p.0).collect();
        let args = format!("{} {op}{silent} ({flags})", join(&seqs));
        c.command("STORE", &args, None, None, &[]).await.map(drop)
    }

    async fn expunge(&mut self, c: &mut ImapClient) -> Result<(), super::conn::Lost> {
        let deleted: Vec<u32> = c
            .model
            .selected
            .as_ref()
            .map(|sel| {
                sel.flags
                    .iter()
                    .filter(|(_, f)| f.contains("\\deleted"))
                    .map(|(uid, _)| *uid)
                    .collect()
            })
            .unwrap_or_default();
        if !deleted.is_empty() && self.rng.random_bool(0.4) {
            let mut uids = deleted;
            uids.sort_unstable();
            return c
                .command("UID EXPUNGE", &join(&uids), None, None, &[])
                .await
                .map(drop);
        }
        c.command("EXPUNGE", "", None, None, &[]).await.map(drop)
    }

    async fn append(&mut self, c: &mut ImapClient) -> Result<(), super::conn::Lost> {
        let mailbox = self.mailbox();
        let key = MailboxKey::new(&c.model.account, mailbox);
        self.appended += 1;
        let n = format!("i{}.{}", self.index, self.appended);
        let made = message::make(&mut self.rng, &self.plan.run, &n, &c.model.account);
        let mut flags: Vec<&str> = FLAGS
            .iter()
            .copied()
            .filter(|_| self.rng.random_bool(0.15))
            .collect();
        flags.dedup();
        lock(c.shared())
            .world
            .attempt(&made.message_id, &c.model.account, "APPEND");
        let args = format!("{} ({})", quote(mailbox), flags.join(" "));
        let answer = c
            .command("APPEND", &args, Some(&made.bytes), Some(key.clone()), &[])
            .await?;
        if answer.ok() {
            let before = c.last_before(&key);
            let mut shared = lock(c.shared());
            shared.world.acknowledge(&made.message_id);
            if let Some((validity, uid)) =
                answer.code("APPENDUID").and_then(|code| code.append_uid())
            {
                let mut findings = shared.world.see_uid_validity(&key, validity);
                findings.extend(shared.world.new_uid(&key, uid, before));
                findings.extend(shared.world.see_uid(&key, uid, Some(&made.message_id), 0));
                drop(shared);
                c.record_findings(findings);
            }
        }
        Ok(())
    }

    /// COPY or MOVE of messages of this run to another mailbox; COPYUID
    /// says which copies exist (the ledger counts them).
    async fn copy(&mut self, c: &mut ImapClient, is_move: bool) -> Result<(), super::conn::Lost> {
        let picked = self.pick(c, true);
        let Some(current) = c.model.selected.as_ref().map(|s| s.key.clone()) else {
            return Ok(());
        };
        if picked.is_empty() {
            return Ok(());
        }
        let target = loop {
            let m = self.mailbox();
            if MailboxKey::new(&c.model.account, m) != current {
                break m;
            }
        };
        let key = MailboxKey::new(&c.model.account, target);
        let uid_form = self.rng.random_bool(0.4);
        let set = if uid_form {
            join(&picked.iter().filter_map(|p| p.1).collect::<Vec<_>>())
        } else {
            join(&picked.iter().map(|p| p.0).collect::<Vec<_>>())
        };
        let name = match (is_move, uid_form) {
            (false, false) => "COPY",
            (false, true) => "UID COPY",
            (true, false) => "MOVE",
            (true, true) => "UID MOVE",
        };
        let ids: Vec<String> = picked.iter().filter_map(|p| p.2.clone()).collect();
        let result = c
            .command(
                name,
                &format!("{set} {}", quote(target)),
                None,
                Some(key.clone()),
                &[],
            )
            .await;
        let answer = match result {
            Ok(answer) => answer,
            Err(lost) => {
                if !is_move {
                    let mut shared = lock(c.shared());
                    ids.iter().for_each(|id| shared.world.copies_unknown(id));
                }
                return Err(lost);
            }
        };
        let before = c.last_before(&key);
        let mapping = answer.code("COPYUID").and_then(|code| code.copy_uid());
        let mut shared = lock(c.shared());
        match mapping {
            Some((validity, pairs)) => {
                let mut findings = shared.world.see_uid_validity(&key, validity);
                for (from, to) in pairs {
                    let id = shared.world.message_id(&current, from).map(str::to_string);
                    findings.extend(shared.world.new_uid(&key, to, before));
                    findings.extend(shared.world.see_uid(&key, to, id.as_deref(), 0));
                    if let (Some(id), false) = (id, is_move) {
                        shared.world.copied(&id);
                    }
                }
                drop(shared);
                c.record_findings(findings);
            }
            None if !is_move && answer.ok() && !answer.text.contains("no messages") => {
                ids.iter().for_each(|id| shared.world.copies_unknown(id));
            }
            None => {}
        }
        Ok(())
    }

    async fn search(&mut self, c: &mut ImapClient) -> Result<(), super::conn::Lost> {
        let key = match self.rng.random_range(0..8) {
            0 => "ALL".to_string(),
            1 => "UNSEEN".to_string(),
            2 => "FLAGGED".to_string(),
            3 => format!("KEYWORD $Label{}", self.rng.random_range(1..=5)),
            4 => "DELETED".to_string(),
            5 => "SUBJECT invoice".to_string(),
            6 => "LARGER 10000".to_string(),
            _ => "UID 1:*".to_string(),
        };
        let name = if self.rng.random_bool(0.5) {
            "UID SEARCH"
        } else {
            "SEARCH"
        };
        c.command(name, &key, None, None, &[]).await.map(drop)
    }
}

/// After SELECT/EXAMINE: learns every message's UID, flags and Message-ID.
pub async fn sync(c: &mut ImapClient) -> Result<(), super::conn::Lost> {
    let count = c.model.selected.as_ref().map_or(0, |s| s.uids.len());
    if count > 0 {
        c.command("FETCH", "1:* (UID FLAGS ENVELOPE)", None, None, &[])
            .await?;
    }
    Ok(())
}

fn join(numbers: &[u32]) -> String {
    numbers
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
