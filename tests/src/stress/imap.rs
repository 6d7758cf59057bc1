//! One IMAP session of the checker: sends a command, reads every response
//! to its tagged answer, applies each untagged response to the session's
//! model as it arrives (the invariants are checked there), and judges the
//! tagged answer against the allowed list.

use super::conn::{Conn, Lost};
use super::invariants::{CommandContext, apply};
use super::model::{MailboxKey, SelectedModel, SessionModel, Shared};
use super::outcomes::{self, Verdict};
use super::report::Finding;
use super::wire::{self, Code, Response, Status, Untagged};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Untagged responses one command may get before the checker gives up on
/// it (a FETCH 1:* of the largest mailbox a run makes is far below).
const MAX_UNTAGGED: usize = 200_000;

/// A tagged answer and the untagged responses that came with it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: Status,
    pub code: Option<Code>,
    pub text: String,
    pub untagged: Vec<Untagged>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The response code of the tagged answer or of an untagged OK
    /// (MOVE sends COPYUID untagged, RFC 6851 §4.3).
    pub fn code(&self, name: &str) -> Option<&Code> {
        self.code.as_ref().filter(|c| c.name == name).or_else(|| {
            self.untagged.iter().find_map(|u| match u {
                Untagged::State {
                    code: Some(code), ..
                } if code.name == name => Some(code),
                _ => None,
            })
        })
    }
}

pub fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A client task that panicked leaves the lock poisoned; what it
    // recorded is still worth reporting.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct ImapClient {
    conn: Conn,
    pub model: SessionModel,
    tag: u64,
    shared: Arc<Mutex<Shared>>,
    /// The session ended (BYE, closed, timed out): no more commands.
    pub dead: bool,
    /// The last response read, its first line as sent (for failure reports).
    last_line: String,
    /// The mailbox the last command made UIDs in, with what had been seen
    /// of it when the command was sent ([`super::model::World::before`]).
    last_target: Option<(MailboxKey, (u32, u32))>,
}

/// Quotes a string for IMAP (our names and passwords are plain ASCII).
pub fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

impl ImapClient {
    /// Connects, reads the greeting and logs in; `None` when that failed
    /// (recorded as a failure).
    pub async fn login(
        shared: &Arc<Mutex<Shared>>,
        source: IpAddr,
        addr: SocketAddr,
        model: SessionModel,
        password: &str,
        rev2: bool,
    ) -> Option<ImapClient> {
        let conn = match Conn::connect(source, addr).await {
            Ok(conn) => conn,
            Err(lost) => {
                lock(shared).report.fail(
                    "IMAP connect".into(),
                    &model.name,
                    lost.to_string(),
                    Vec::new(),
                );
                return None;
            }
        };
        let mut client = ImapClient {
            conn,
            model,
            tag: 0,
            shared: shared.clone(),
            dead: false,
            last_line: String::new(),
            last_target: None,
        };
        match client.conn.imap_response().await {
            Ok(raw) if raw.starts_with(b"* OK") => {}
            Ok(raw) => {
                let text = String::from_utf8_lossy(&raw).trim_end().to_string();
                client.fail("IMAP greeting".into(), text);
                return None;
            }
            Err(lost) => {
                client.fail("IMAP greeting".into(), lost.to_string());
                return None;
            }
        }
        let account = client.model.account.clone();
        let args = format!("{} {}", quote(&account), quote(password));
        match client.command("LOGIN", &args, None, None, &[]).await {
            Ok(answer) if answer.ok() => {}
            _ => return None,
        }
        if rev2 {
            let answer = client.command("ENABLE", "IMAP4rev2", None, None, &[]).await;
            if let Ok(answer) = answer {
                client.model.rev2 = answer.untagged.iter().any(|u| {
                    matches!(u, Untagged::Other(text) if text.to_ascii_uppercase().contains("IMAP4REV2"))
                });
            }
        }
        Some(client)
    }

    fn fail(&mut self, kind: String, detail: String) {
        let tail = self.conn.transcript.tail();
        lock(&self.shared)
            .report
            .fail(kind, &self.model.name, detail, tail);
    }

    /// Records broken invariants with this session's transcript tail.
    pub fn record_findings(&mut self, findings: Vec<Finding>) {
        if findings.is_empty() {
            return;
        }
        let tail = self.conn.transcript.tail();
        let mut shared = lock(&self.shared);
        for finding in findings {
            shared
                .report
                .violate(finding, &self.model.name, tail.clone());
        }
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("a{}", self.tag)
    }

    fn context(&mut self, name: &'static str, target: Option<MailboxKey>) -> CommandContext {
        let mut shared = lock(&self.shared);
        let sent_at = shared.world.tick();
        let target = target.map(|key| {
            let before = shared.world.before(&key);
            (key, before)
        });
        drop(shared);
        self.last_target = target.clone();
        CommandContext {
            name,
            forbids_expunge: CommandContext::forbids_expunge(name),
            sent_at,
            target,
        }
    }

    /// What had been seen of `key` when the last command was sent.
    pub fn last_before(&self, key: &MailboxKey) -> (u32, u32) {
        match &self.last_target {
            Some((k, before)) if k == key => *before,
            _ => (0, 0),
        }
    }

    /// Reads one response and applies it; `Ok(None)` for an untagged one
    /// (kept in `untagged`), the tagged or continuation otherwise.
    async fn step(
        &mut self,
        ctx: &CommandContext,
        untagged: &mut Vec<Untagged>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<Response>, Lost> {
        let raw = match deadline {
            Some(deadline) => self.conn.imap_response_until(deadline).await?,
            None => self.conn.imap_response().await?,
        };
        let first = raw.split(|b| *b == b'\n').next().unwrap_or_default();
        self.last_line = String::from_utf8_lossy(first).trim_end().to_string();
        let response = match wire::parse(&raw) {
            Ok(response) => response,
            Err(error) => {
                let text = String::from_utf8_lossy(&raw[..raw.len().min(300)]).into_owned();
                self.fail(
                    format!("IMAP {} unparsable response", ctx.name),
                    format!("{}: {text}", error.0),
                );
                return Ok(None);
            }
        };
        match response {
            Response::Untagged(u) => {
                if let Untagged::State { status, text, .. } = &u
                    && status == "BYE"
                    && ctx.name != "LOGOUT"
                {
                    self.fail(format!("IMAP {} * BYE", ctx.name), format!("* BYE {text}"));
                    self.dead = true;
                }
                let findings = {
                    let mut shared = lock(&self.shared);
                    shared.world.tick();
                    apply(&mut self.model, &mut shared.world, ctx, &u)
                };
                self.record_findings(findings);
                untagged.push(u);
                Ok(None)
            }
            other => Ok(Some(other)),
        }
    }

    /// Sends `name args` (with a literal after the server's go-ahead) and
    /// reads to the tagged answer. `target` names the mailbox whose new
    /// UIDs the command makes or whose UIDNEXT it reports; `also` lists
    /// response codes this call accepts besides the allowed list.
    pub async fn command(
        &mut self,
        name: &'static str,
        args: &str,
        literal: Option<&[u8]>,
        target: Option<MailboxKey>,
        also: &[&str],
    ) -> Result<Answer, Lost> {
        if self.dead {
            return Err(Lost::Closed);
        }
        lock(&self.shared).report.count(&format!("IMAP {name}"));
        if matches!(name, "SELECT" | "EXAMINE") {
            // RFC 9051 §6.3.1: SELECT deselects first, even when it fails.
            self.model.selected = None;
        }
        let ctx = self.context(name, target.clone());
        if let (Some(key), "SELECT" | "EXAMINE") = (target, name) {
            self.model.selected = Some(SelectedModel::new(key, name == "EXAMINE", ctx.sent_at));
        }
        let tag = self.next_tag();
        let mut line = if args.is_empty() {
            format!("{tag} {name}")
        } else {
            format!("{tag} {name} {args}")
        };
        if let Some(literal) = literal {
            line.push_str(&format!(" {{{}}}", literal.len()));
        }
        line.push_str("\r\n");
        let result = self.exchange(&ctx, &tag, line.as_bytes(), literal).await;
        match result {
            Ok(answer) => {
                let verdict = outcomes::imap(name, answer.status, answer.code.as_ref(), also);
                match verdict {
                    Verdict::Ok => {}
                    Verdict::Allowed(kind) => lock(&self.shared).report.allow(kind),
                    Verdict::Failed(kind) => {
                        let text = format!("{} → {}", line.trim_end(), self.last_line);
                        self.fail(kind, text);
                    }
                }
                if matches!(name, "SELECT" | "EXAMINE") && !answer.ok() {
                    self.model.selected = None;
                }
                if matches!(name, "CLOSE" | "UNSELECT") {
                    // Refused or not, the server may have left the selected
                    // state (RFC 9051 §6.4.1 lists no NO); commands valid in
                    // both states come next, SELECT settles it.
                    self.model.selected = None;
                }
                if name == "LOGOUT" {
                    self.dead = true;
                }
                Ok(answer)
            }
            Err(lost) => {
                if !self.dead {
                    self.fail(
                        format!("IMAP {name} {}", lost_kind(&lost)),
                        lost.to_string(),
                    );
                }
                self.dead = true;
                Err(lost)
            }
        }
    }

    async fn exchange(
        &mut self,
        ctx: &CommandContext,
        tag: &str,
        line: &[u8],
        literal: Option<&[u8]>,
    ) -> Result<Answer, Lost> {
        self.conn.send(line).await?;
        let mut untagged = Vec::new();
        let mut literal = literal;
        loop {
            if untagged.len() > MAX_UNTAGGED {
                self.fail(
                    format!("IMAP {} endless answer", ctx.name),
                    format!("more than {MAX_UNTAGGED} untagged responses to one command"),
                );
                return Err(Lost::TooLarge);
            }
            match self.step(ctx, &mut untagged, None).await? {
                None => {}
                Some(Response::Continuation(_)) => match literal.take() {
                    Some(data) => {
                        self.conn.send_quiet(data).await?;
                        self.conn.send_quiet(b"\r\n").await?;
                        self.conn
                            .transcript
                            .note(&format!("(literal of {} octets sent)", data.len()));
                    }
                    None => {
                        self.fail(
                            format!("IMAP {} unexpected continuation", ctx.name),
                            "the server asked for data the command does not have".into(),
                        );
                        return Err(Lost::Closed);
                    }
                },
                Some(Response::Tagged {
                    tag: got,
                    status,
                    code,
                    text,
                }) => {
                    if got != tag {
                        self.fail(
                            format!("IMAP {} answer with another tag", ctx.name),
                            format!("expected {tag}, got {got} {status} {text}"),
                        );
                        continue;
                    }
                    return Ok(Answer {
                        status,
                        code,
                        text,
                        untagged,
                    });
                }
                Some(Response::Untagged(_)) => {}
            }
        }
    }

    /// IDLE for about `wait`, then DONE (RFC 2177): untagged responses
    /// that arrive meanwhile are checked like any other.
    pub async fn idle(&mut self, wait: Duration) -> Result<Answer, Lost> {
        if self.dead {
            return Err(Lost::Closed);
        }
        lock(&self.shared).report.count("IMAP IDLE");
        let ctx = self.context("IDLE", None);
        let tag = self.next_tag();
        let result = self.idle_exchange(&ctx, &tag, wait).await;
        match result {
            Ok(answer) => {
                if let Verdict::Failed(kind) =
                    outcomes::imap("IDLE", answer.status, answer.code.as_ref(), &[])
                {
                    let text = format!("{tag} IDLE → {}", self.last_line);
                    self.fail(kind, text);
                }
                Ok(answer)
            }
            Err(lost) => {
                if !self.dead {
                    self.fail(format!("IMAP IDLE {}", lost_kind(&lost)), lost.to_string());
                }
                self.dead = true;
                Err(lost)
            }
        }
    }

    async fn idle_exchange(
        &mut self,
        ctx: &CommandContext,
        tag: &str,
        wait: Duration,
    ) -> Result<Answer, Lost> {
        self.conn.send(format!("{tag} IDLE\r\n").as_bytes()).await?;
        let mut untagged = Vec::new();
        // Up to the go-ahead (a refusal ends the command at once).
        loop {
            if untagged.len() > MAX_UNTAGGED {
                return Err(Lost::TooLarge);
            }
            match self.step(ctx, &mut untagged, None).await? {
                Some(Response::Continuation(_)) => break,
                Some(Response::Tagged {
                    status, code, text, ..
                }) => {
                    return Ok(Answer {
                        status,
                        code,
                        text,
                        untagged,
                    });
                }
                _ => {}
            }
        }
        let until = tokio::time::Instant::now() + wait;
        loop {
            if untagged.len() > MAX_UNTAGGED {
                return Err(Lost::TooLarge);
            }
            match self.step(ctx, &mut untagged, Some(until)).await {
                Err(Lost::Timeout) => break,
                Err(other) => return Err(other),
                Ok(Some(Response::Tagged {
                    status, code, text, ..
                })) => {
                    // Ended by the server (e.g. shutting down).
                    return Ok(Answer {
                        status,
                        code,
                        text,
                        untagged,
                    });
                }
                Ok(_) => {}
            }
        }
        self.conn.send(b"DONE\r\n").await?;
        loop {
            if untagged.len() > MAX_UNTAGGED {
                return Err(Lost::TooLarge);
            }
            if let Some(Response::Tagged {
                status, code, text, ..
            }) = self.step(ctx, &mut untagged, None).await?
            {
                return Ok(Answer {
                    status,
                    code,
                    text,
                    untagged,
                });
            }
        }
    }

    pub fn transcript_tail(&self) -> Vec<String> {
        self.conn.transcript.tail()
    }

    pub fn shared(&self) -> &Arc<Mutex<Shared>> {
        &self.shared
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
