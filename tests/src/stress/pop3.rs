//! The POP3 clients of the stress run: log in (a locked maildrop is a
//! valid answer), STAT, LIST, UIDL, RETR some, DELE some, QUIT — checking
//! the listing against itself and each message against what IMAP served
//! for the same INBOX UID (Pillarbox's unique-id is `UIDVALIDITY.UID`).

use super::Plan;
use super::conn::{Conn, Lost, source_ip};
use super::imap::lock;
use super::message;
use super::model::{MailboxKey, SessionId};
use super::outcomes::{self, Verdict};
use super::report::{Finding, Rule};
use rand::Rng;
use rand::rngs::StdRng;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

pub struct Pop3Worker {
    pub plan: Arc<Plan>,
    pub index: usize,
    pub rng: StdRng,
    sessions: usize,
}

struct Session {
    conn: Conn,
    id: SessionId,
    name: String,
    account: String,
    /// Holds the maildrop (between PASS +OK and QUIT).
    holding: bool,
}

impl Pop3Worker {
    pub fn new(plan: Arc<Plan>, index: usize, rng: StdRng) -> Pop3Worker {
        Pop3Worker {
            plan,
            index,
            rng,
            sessions: 0,
        }
    }

    pub async fn run(mut self) {
        while tokio::time::Instant::now() < self.plan.deadline {
            let mut session = match self.connect().await {
                Some(session) => session,
                None => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let result = self.transaction(&mut session).await;
            if session.holding {
                self.release(&session);
            }
            if let Err(lost) = result {
                self.fail(
                    &session,
                    format!("POP3 {}", lost_kind(&lost)),
                    lost.to_string(),
                );
            }
            let pause = self.rng.random_range(20..200);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    fn fail(&self, session: &Session, kind: String, detail: String) {
        lock(&self.plan.shared).report.fail(
            kind,
            &session.name,
            detail,
            session.conn.transcript.tail(),
        );
    }

    fn record(&self, session: &Session, findings: Vec<Finding>) {
        if findings.is_empty() {
            return;
        }
        let tail = session.conn.transcript.tail();
        let mut shared = lock(&self.plan.shared);
        for finding in findings {
            shared.report.violate(finding, &session.name, tail.clone());
        }
    }

    fn release(&self, session: &Session) {
        lock(&self.plan.shared)
            .world
            .pop3_logout(&session.account, session.id);
    }

    async fn connect(&mut self) -> Option<Session> {
        self.sessions += 1;
        let plan = self.plan.clone();
        let node = self.index % plan.nodes.len();
        let account = plan.accounts[self.rng.random_range(0..plan.accounts.len())].clone();
        let name = format!("pop3.{}.{}@node{node}", self.index, self.sessions);
        let source = source_ip(1000 + self.index);
        let conn = match Conn::connect(source, plan.nodes[node].pop3).await {
            Ok(conn) => conn,
            Err(lost) => {
                lock(&plan.shared).report.fail(
                    "POP3 connect".into(),
                    &name,
                    lost.to_string(),
                    Vec::new(),
                );
                return None;
            }
        };
        let id = lock(&plan.shared).world.tick();
        let mut session = Session {
            conn,
            id,
            name,
            account,
            holding: false,
        };
        match session.conn.line().await {
            Ok(line) if line.starts_with(b"+OK") => Some(session),
            Ok(line) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                self.fail(&session, "POP3 greeting".into(), text);
                None
            }
            Err(lost) => {
                self.fail(&session, "POP3 greeting".into(), lost.to_string());
                None
            }
        }
    }

    /// Sends a command and reads its status line, judged and recorded.
    async fn command(&self, session: &mut Session, name: &str, line: &str) -> Result<Reply, Lost> {
        lock(&self.plan.shared)
            .report
            .count(&format!("POP3 {name}"));
        session.conn.send(format!("{line}\r\n").as_bytes()).await?;
        let reply = session.conn.line().await?;
        let reply = String::from_utf8_lossy(&reply).trim_end().to_string();
        match outcomes::pop3(name, &reply) {
            Verdict::Ok => Ok(Reply::Ok(reply)),
            Verdict::Allowed(kind) => {
                lock(&self.plan.shared).report.allow(kind);
                Ok(Reply::Allowed)
            }
            Verdict::Failed(kind) => {
                let shown = if name == "PASS" { "PASS …" } else { line };
                self.fail(session, kind, format!("{shown} → {reply}"));
                Ok(Reply::Failed)
            }
        }
    }

    async fn transaction(&mut self, session: &mut Session) -> Result<(), Lost> {
        let user = format!("USER {}", session.account);
        if self.command(session, "USER", &user).await?.ok().is_none() {
            return Ok(());
        }
        let pass_sent = lock(&self.plan.shared).world.tick();
        let pass = format!("PASS {}", self.plan.password);
        if self.command(session, "PASS", &pass).await?.ok().is_none() {
            // Locked by another session (allowed) or refused (recorded).
            self.command(session, "QUIT", "QUIT").await?;
            return Ok(());
        }
        self.take_lock(session, pass_sent);
        let Some(stat) = self.command(session, "STAT", "STAT").await?.ok() else {
            return Ok(());
        };
        let (count, octets) = parse_stat(&stat);
        let Some(_) = self.command(session, "LIST", "LIST").await?.ok() else {
            return Ok(());
        };
        let list = listing(&session.conn.pop3_multiline().await?);
        let Some(_) = self.command(session, "UIDL", "UIDL").await?.ok() else {
            return Ok(());
        };
        let uidl = listing(&session.conn.pop3_multiline().await?);
        let inbox = MailboxKey::new(&session.account, "INBOX");
        let findings = self.check_listing(&inbox, count, octets, &list, &uidl, pass_sent);
        self.record(session, findings);
        let numbers: Vec<u32> = list.keys().copied().collect();
        let mut retrieved: BTreeMap<u32, Option<String>> = BTreeMap::new();
        for _ in 0..self.rng.random_range(0..=3) {
            if numbers.is_empty() {
                break;
            }
            let n = numbers[self.rng.random_range(0..numbers.len())];
            let reply = self.command(session, "RETR", &format!("RETR {n}")).await?;
            let uid = uidl.get(&n).and_then(|u| unique_uid(u));
            if !matches!(reply, Reply::Ok(_)) {
                // Allowed: expunged since login, so it must be gone at the end.
                if let (Reply::Allowed, Some(uid)) = (reply, uid) {
                    let claim = super::model::GoneClaim {
                        key: inbox.clone(),
                        uid,
                        session: session.name.clone(),
                        answer: format!("RETR {n} refused"),
                    };
                    lock(&self.plan.shared).world.gone_claims.push(claim);
                }
                continue;
            }
            let bytes = session.conn.pop3_multiline().await?;
            let id = message::message_id(&bytes);
            if let Some((validity, uid)) = uidl.get(&n).and_then(|u| unique_parts(u)) {
                let mut shared = lock(&self.plan.shared);
                let mut findings = shared.world.see_uid_validity(&inbox, validity);
                findings.extend(shared.world.see_uid(&inbox, uid, id.as_deref(), pass_sent));
                findings.extend(shared.world.see_body(&inbox, uid, &bytes, "POP3 RETR"));
                drop(shared);
                self.record(session, findings);
            }
            retrieved.insert(n, id);
        }
        // DELE a message retrieved here, of this run (so the ledger knows it
        // may go). Whether QUIT removes it is the account's POP3 policy; the
        // IMAP sessions see the EXPUNGE if it does.
        if self.rng.random_bool(0.3) {
            let ours: Vec<(u32, String)> = retrieved
                .iter()
                .filter_map(|(n, id)| id.clone().map(|id| (*n, id)))
                .filter(|(_, id)| lock(&self.plan.shared).world.ledger.contains_key(id))
                .collect();
            if let Some((n, id)) = ours.first() {
                lock(&self.plan.shared).world.intend_delete(id);
                self.command(session, "DELE", &format!("DELE {n}")).await?;
            }
        }
        self.release(session);
        session.holding = false;
        self.command(session, "QUIT", "QUIT").await?;
        Ok(())
    }

    /// PASS +OK: nobody else may hold the maildrop since before PASS was sent.
    fn take_lock(&self, session: &mut Session, pass_sent: u64) {
        let findings =
            lock(&self.plan.shared)
                .world
                .pop3_login(&session.account, session.id, pass_sent);
        session.holding = true;
        self.record(session, findings);
    }

    fn check_listing(
        &self,
        inbox: &MailboxKey,
        count: Option<u64>,
        octets: Option<u64>,
        list: &BTreeMap<u32, String>,
        uidl: &BTreeMap<u32, String>,
        pass_sent: u64,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let sizes: BTreeMap<u32, u64> = list
            .iter()
            .filter_map(|(n, s)| s.parse().ok().map(|s| (*n, s)))
            .collect();
        let total: u64 = sizes.values().sum();
        if count != Some(list.len() as u64) || octets != Some(total) {
            out.push(Finding::new(
                Rule::Pop3Listing,
                format!(
                    "{}: STAT says {count:?} messages, {octets:?} octets; LIST has {} messages, {total} octets",
                    inbox.account,
                    list.len()
                ),
            ));
        }
        let numbers: Vec<&u32> = list.keys().collect();
        if uidl.keys().collect::<Vec<_>>() != numbers {
            out.push(Finding::new(
                Rule::Pop3Listing,
                format!(
                    "{}: UIDL and LIST list different message numbers",
                    inbox.account
                ),
            ));
        }
        let unique: HashSet<&String> = uidl.values().collect();
        if unique.len() != uidl.len() {
            out.push(Finding::new(
                Rule::Pop3Listing,
                format!("{}: UIDL repeats a unique-id", inbox.account),
            ));
        }
        let mut shared = lock(&self.plan.shared);
        for (n, unique_id) in uidl {
            let Some((validity, uid)) = unique_parts(unique_id) else {
                continue;
            };
            out.extend(shared.world.see_uid_validity(inbox, validity));
            out.extend(shared.world.see_uid(inbox, uid, None, pass_sent));
            if let Some(size) = sizes.get(n) {
                out.extend(shared.world.see_size(inbox, uid, *size, "POP3 LIST size"));
            }
        }
        out
    }
}

/// A command's answer as judged.
enum Reply {
    Ok(String),
    /// Not +OK, but a valid outcome (see [`outcomes`]).
    Allowed,
    Failed,
}

impl Reply {
    fn ok(self) -> Option<String> {
        match self {
            Reply::Ok(line) => Some(line),
            _ => None,
        }
    }
}

fn lost_kind(lost: &Lost) -> &'static str {
    match lost {
        Lost::Timeout => "no answer",
        Lost::Closed => "connection closed",
        Lost::Io(_) => "connection error",
        Lost::TooLarge => "response too large",
    }
}

/// `+OK count octets`.
fn parse_stat(line: &str) -> (Option<u64>, Option<u64>) {
    let mut words = line.split_whitespace().skip(1);
    (
        words.next().and_then(|w| w.parse().ok()),
        words.next().and_then(|w| w.parse().ok()),
    )
}

/// `n value` lines of a LIST or UIDL answer.
fn listing(body: &[u8]) -> BTreeMap<u32, String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|line| {
            let (n, value) = line.trim().split_once(' ')?;
            Some((n.parse().ok()?, value.trim().to_string()))
        })
        .collect()
}

/// Pillarbox's unique-id `UIDVALIDITY.UID`; other servers' ids are not parsed.
fn unique_parts(unique_id: &str) -> Option<(u32, u32)> {
    let (validity, uid) = unique_id.split_once('.')?;
    Some((validity.parse().ok()?, uid.parse().ok()?))
}

fn unique_uid(unique_id: &str) -> Option<u32> {
    unique_parts(unique_id).map(|(_, uid)| uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_and_unique_ids() {
        assert_eq!(parse_stat("+OK 2 320"), (Some(2), Some(320)));
        let list = listing(b"1 120\r\n2 200\r\n");
        assert_eq!(list.get(&2).map(String::as_str), Some("200"));
        assert_eq!(unique_parts("17.4"), Some((17, 4)));
        assert_eq!(unique_parts("whatever"), None);
    }
}
