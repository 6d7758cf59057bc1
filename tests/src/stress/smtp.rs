//! The SMTP clients of the stress run: deliveries over the MX listener to
//! the shared accounts, each message with a Message-ID of its own; a 250
//! after DATA puts it in the ledger as acknowledged (RFC 5321 §4.1.1.4:
//! the server has taken responsibility for it).

use super::Plan;
use super::conn::{Conn, Lost, source_ip};
use super::imap::lock;
use super::message;
use super::outcomes::{self, Verdict};
use rand::Rng;
use rand::rngs::StdRng;
use std::sync::Arc;
use std::time::Duration;

pub struct SmtpWorker {
    pub plan: Arc<Plan>,
    pub index: usize,
    pub rng: StdRng,
    sent: u64,
    connections: usize,
}

impl SmtpWorker {
    pub fn new(plan: Arc<Plan>, index: usize, rng: StdRng) -> SmtpWorker {
        SmtpWorker {
            plan,
            index,
            rng,
            sent: 0,
            connections: 0,
        }
    }

    pub async fn run(mut self) {
        while tokio::time::Instant::now() < self.plan.deadline {
            let result = self.connection(None).await;
            if let Err((name, lost, tail)) = result {
                lock(&self.plan.shared).report.fail(
                    format!("SMTP {}", lost_kind(&lost)),
                    &name,
                    lost.to_string(),
                    tail,
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Delivers `initial` messages to each account (before the run), or
    /// random deliveries until the deadline.
    pub async fn connection(
        &mut self,
        initial: Option<usize>,
    ) -> Result<(), (String, Lost, Vec<String>)> {
        self.connections += 1;
        let plan = self.plan.clone();
        let node = self.index % plan.nodes.len();
        let name = format!("smtp{}.{}@node{node}", self.index, self.connections);
        let mut conn = Conn::connect(source_ip(2000 + self.index), plan.nodes[node].smtp)
            .await
            .map_err(|lost| (name.clone(), lost, Vec::new()))?;
        let result = self.deliveries(&mut conn, &name, initial).await;
        result.map_err(|lost| (name, lost, conn.transcript.tail()))
    }

    async fn deliveries(
        &mut self,
        conn: &mut Conn,
        name: &str,
        initial: Option<usize>,
    ) -> Result<(), Lost> {
        let greeting = reply(conn).await?;
        if let Verdict::Failed(kind) = outcomes::smtp("greeting", &greeting, '2') {
            let tail = conn.transcript.tail();
            lock(&self.plan.shared)
                .report
                .fail(kind, name, greeting, tail);
            return Ok(());
        }
        if !self
            .step(conn, name, "EHLO", "EHLO stress.remote.test", '2')
            .await?
        {
            return Ok(());
        }
        match initial {
            Some(per_account) => {
                for account in self.plan.accounts.clone() {
                    for _ in 0..per_account {
                        self.deliver(conn, name, &account).await?;
                    }
                }
            }
            // A connection carries a few messages, then a new one is made.
            None => {
                for _ in 0..self.rng.random_range(1..=8) {
                    if tokio::time::Instant::now() >= self.plan.deadline {
                        break;
                    }
                    let accounts = &self.plan.accounts;
                    let account = accounts[self.rng.random_range(0..accounts.len())].clone();
                    self.deliver(conn, name, &account).await?;
                    let pause = self.rng.random_range(50..300);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }
        self.step(conn, name, "QUIT", "QUIT", '2').await?;
        Ok(())
    }

    async fn deliver(&mut self, conn: &mut Conn, name: &str, account: &str) -> Result<(), Lost> {
        self.sent += 1;
        let n = format!("m{}.{}", self.index, self.sent);
        let made = message::make(&mut self.rng, &self.plan.run, &n, account);
        lock(&self.plan.shared)
            .world
            .attempt(&made.message_id, account, "SMTP");
        let mail = "MAIL FROM:<sender@remote.test>";
        if !self.step(conn, name, "MAIL", mail, '2').await? {
            return self.reset(conn, name).await;
        }
        let rcpt = format!("RCPT TO:<{account}>");
        if !self.step(conn, name, "RCPT", &rcpt, '2').await? {
            return self.reset(conn, name).await;
        }
        if !self.step(conn, name, "DATA", "DATA", '3').await? {
            return self.reset(conn, name).await;
        }
        let mut data = Vec::with_capacity(made.bytes.len() + 8);
        for line in made.bytes.split_inclusive(|b| *b == b'\n') {
            if line.first() == Some(&b'.') {
                data.push(b'.');
            }
            data.extend_from_slice(line);
        }
        data.extend_from_slice(b".\r\n");
        conn.send_quiet(&data).await?;
        conn.transcript.note(&format!(
            "(message {} sent, {} octets)",
            made.message_id,
            data.len()
        ));
        lock(&self.plan.shared).report.count("SMTP message");
        let answer = reply(conn).await?;
        match outcomes::smtp("end of DATA", &answer, '2') {
            Verdict::Ok => lock(&self.plan.shared).world.acknowledge(&made.message_id),
            Verdict::Allowed(kind) => lock(&self.plan.shared).report.allow(kind),
            Verdict::Failed(kind) => {
                let tail = conn.transcript.tail();
                lock(&self.plan.shared)
                    .report
                    .fail(kind, name, format!(". → {answer}"), tail);
            }
        }
        Ok(())
    }

    async fn reset(&mut self, conn: &mut Conn, name: &str) -> Result<(), Lost> {
        self.step(conn, name, "RSET", "RSET", '2').await.map(drop)
    }

    /// Sends a command; true when the reply starts with `expect`.
    async fn step(
        &mut self,
        conn: &mut Conn,
        name: &str,
        command: &str,
        line: &str,
        expect: char,
    ) -> Result<bool, Lost> {
        lock(&self.plan.shared)
            .report
            .count(&format!("SMTP {command}"));
        conn.send(format!("{line}\r\n").as_bytes()).await?;
        let answer = reply(conn).await?;
        match outcomes::smtp(command, &answer, expect) {
            Verdict::Ok => Ok(true),
            Verdict::Allowed(kind) => {
                lock(&self.plan.shared).report.allow(kind);
                Ok(false)
            }
            Verdict::Failed(kind) => {
                let tail = conn.transcript.tail();
                lock(&self.plan.shared)
                    .report
                    .fail(kind, name, format!("{line} → {answer}"), tail);
                Ok(false)
            }
        }
    }
}

/// One reply, its lines joined (`250-…` continuation lines read through).
async fn reply(conn: &mut Conn) -> Result<String, Lost> {
    let mut text = String::new();
    // RFC 5321 §4.2.1: continuation lines have '-' after the code; a
    // reply of more than 100 lines is not one we asked for.
    for _ in 0..100 {
        let line = conn.line().await?;
        let line = String::from_utf8_lossy(&line).trim_end().to_string();
        let last = line.as_bytes().get(3) != Some(&b'-');
        if !text.is_empty() {
            text.push_str(" / ");
        }
        text.push_str(&line);
        if last {
            return Ok(text);
        }
    }
    Err(Lost::TooLarge)
}

fn lost_kind(lost: &Lost) -> &'static str {
    match lost {
        Lost::Timeout => "no answer",
        Lost::Closed => "connection closed",
        Lost::Io(_) => "connection error",
        Lost::TooLarge => "reply too long",
    }
}
