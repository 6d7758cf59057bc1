//! Outbound delivery: the queue worker. It claims due recipients from the
//! store, groups them by destination (or sends everything to the smarthost),
//! runs one SMTP transaction per destination with all its recipients, records
//! each recipient's outcome, retries temporary failures on a schedule and
//! reports permanent ones to the sender (RFC 3464).

pub mod bounce;
pub mod client;
pub mod dkim;

use crate::{RelayTls, Server};
use client::{Security, SessionError, Transaction};
use pillarbox_directory::Recipient;
use pillarbox_net::CancellationToken;
use pillarbox_store::queue::{
    OutboundMessage, OutboundRecipient, Outcome, QueueId, QueuedMessage, QueuedRecipient,
    RecipientState,
};
use pillarbox_store::{Flags, NewMessage, Target};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long a claim lasts; a node that dies mid-delivery frees its claims after it.
const LEASE_SECS: i64 = 15 * 60;
/// Recipients claimed per round.
const CLAIM: i64 = 200;
/// Polling interval (other nodes queue too; their wake-ups do not reach us).
const POLL: Duration = Duration::from_secs(15);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs the queue until `shutdown`.
pub async fn run(server: Arc<Server>, shutdown: CancellationToken) {
    tracing::info!("outbound queue running");
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let claimed = match server.store.queue_claim(CLAIM, LEASE_SECS).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "cannot read the outbound queue");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = server.store.queue_wait(POLL) => {}
            }
            continue;
        }
        let mut jobs = Vec::new();
        for message in claimed {
            let mut groups: BTreeMap<String, Vec<QueuedRecipient>> = BTreeMap::new();
            for r in &message.recipients {
                let key = if server.config.relay.is_some() {
                    String::new()
                } else {
                    r.domain.clone()
                };
                groups.entry(key).or_default().push(r.clone());
            }
            for (domain, recipients) in groups {
                jobs.push((message.clone(), domain, recipients));
            }
        }
        let permits = Arc::new(tokio::sync::Semaphore::new(
            server.config.queue.workers.max(1),
        ));
        let mut set = tokio::task::JoinSet::new();
        let mut messages: Vec<QueueId> = Vec::new();
        for (message, domain, recipients) in jobs {
            if !messages.contains(&message.id) {
                messages.push(message.id);
            }
            let server = server.clone();
            let permits = permits.clone();
            set.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let outcomes = attempt(&server, &message, &domain, &recipients).await;
                if let Err(error) = server.store.queue_record(&outcomes).await {
                    tracing::warn!(%error, queue_id = %message.id, "cannot record delivery results");
                }
            });
        }
        while set.join_next().await.is_some() {}
        for id in messages {
            if let Err(error) = finish(&server, id).await {
                tracing::warn!(%error, queue_id = %id, "cannot finish a queued message");
            }
        }
    }
}

/// A destination to try: the name (for TLS and logs), addresses, security.
struct Hop {
    host: String,
    addrs: Vec<SocketAddr>,
    security: Security,
}

async fn hops(server: &Server, domain: &str) -> Result<Vec<Hop>, (bool, String)> {
    if let Some(relay) = &server.config.relay {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((relay.host.as_str(), relay.port))
            .await
            .map_err(|e| {
                (
                    true,
                    format!("cannot resolve the relay {}: {e}", relay.host),
                )
            })?
            .collect();
        let tls_config = match &relay.ca_file {
            Some(path) => pillarbox_net::tls::client_config_trusting(path)
                .map_err(|e| (true, format!("relay ca_file: {e}")))?,
            None => pillarbox_net::tls::client_config_webpki(),
        };
        let security = match relay.tls {
            RelayTls::Starttls => Security::RequireStartTls(tls_config),
            RelayTls::Implicit => Security::Implicit(tls_config),
            RelayTls::None => Security::None,
        };
        return Ok(vec![Hop {
            host: relay.host.clone(),
            addrs,
            security,
        }]);
    }
    let hosts = server
        .verifier
        .mail_hosts(domain)
        .await
        .map_err(|e| (e.temporary, e.text))?;
    let opportunistic = pillarbox_net::tls::client_config_opportunistic();
    Ok(hosts
        .into_iter()
        .map(|(host, ips)| Hop {
            host,
            addrs: ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, server.config.queue.mx_port))
                .collect(),
            security: Security::Opportunistic(opportunistic.clone()),
        })
        .collect())
}

/// When a temporary failure is tried again; `None` once the message is too old.
fn next_attempt(server: &Server, message: &QueuedMessage, attempts: u32) -> Option<i64> {
    let schedule = &server.config.queue.retry_schedule_secs;
    let delay = schedule
        .get(attempts as usize)
        .or(schedule.last())
        .copied()
        .unwrap_or(3600) as i64;
    let next = now() + delay;
    (next - message.created_at <= server.config.queue.max_age_secs as i64).then_some(next)
}

fn temporary(
    server: &Server,
    message: &QueuedMessage,
    r: &QueuedRecipient,
    error: String,
) -> Outcome {
    match next_attempt(server, message, r.attempts) {
        Some(next_attempt) => Outcome::Deferred {
            next_attempt,
            error,
        },
        None => Outcome::Failed {
            error: format!(
                "4.4.7 gave up after {} days: {error}",
                server.config.queue.max_age_secs / 86400
            ),
        },
    }
}

fn dsn_mail(message: &QueuedMessage) -> String {
    let mut out = format!(" RET={}", if message.ret_full { "FULL" } else { "HDRS" });
    if let Some(envid) = &message.envid {
        out.push_str(&format!(" ENVID={}", xtext(envid)));
    }
    out
}

fn dsn_rcpt(r: &QueuedRecipient) -> String {
    let mut out = String::new();
    if let Some(notify) = &r.notify {
        out.push_str(&format!(
            " NOTIFY={}",
            if notify.is_empty() { "NEVER" } else { notify }
        ));
    }
    if let Some((kind, addr)) = r.orcpt.as_deref().and_then(|o| o.split_once(';')) {
        out.push_str(&format!(" ORCPT={kind};{}", xtext(addr)));
    }
    out
}

/// xtext encoding (RFC 3461 §4).
fn xtext(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if (33..=126).contains(&b) && b != b'+' && b != b'=' {
                (b as char).to_string()
            } else {
                format!("+{b:02X}")
            }
        })
        .collect()
}

/// One delivery attempt for the recipients of one message at one destination.
async fn attempt(
    server: &Server,
    message: &QueuedMessage,
    domain: &str,
    recipients: &[QueuedRecipient],
) -> Vec<(i64, Outcome)> {
    let all = |outcome: &dyn Fn(&QueuedRecipient) -> Outcome| {
        recipients
            .iter()
            .map(|r| (r.id, outcome(r)))
            .collect::<Vec<_>>()
    };
    let data = match server.store.queue_data(message.id).await {
        Ok(Some(data)) => data,
        Ok(None) => return Vec::new(),
        Err(error) => {
            let text = format!("4.3.0 queue unreadable: {error}");
            return all(&|r| temporary(server, message, r, text.clone()));
        }
    };
    let hops = match hops(server, domain).await {
        Ok(hops) => hops,
        Err((true, text)) => return all(&|r| temporary(server, message, r, text.clone())),
        Err((false, text)) => {
            return all(&|_| Outcome::Failed {
                error: format!("5.1.2 {text}"),
            });
        }
    };
    let addresses: Vec<String> = recipients.iter().map(|r| r.address.clone()).collect();
    let credentials = server
        .config
        .relay
        .as_ref()
        .and_then(|r| Some((r.username.as_deref()?, r.password.as_deref()?)));
    let transaction = Transaction {
        helo: &server.hostname,
        sender: &message.sender,
        recipients: &addresses,
        data: &data,
        credentials,
        dsn_mail: dsn_mail(message),
        dsn_rcpt: recipients.iter().map(dsn_rcpt).collect(),
    };
    let mut last_error = String::from("4.4.1 no mail host could be reached");
    for hop in &hops {
        for addr in &hop.addrs {
            match client::deliver(*addr, &hop.host, &hop.security, &transaction).await {
                Ok(result) => {
                    tracing::info!(queue_id = %message.id, host = %hop.host, %addr, tls = result.tls, "delivery attempt");
                    return recipients
                        .iter()
                        .zip(&result.rcpt)
                        .map(|(r, rcpt)| {
                            let outcome = if !rcpt.is_positive() {
                                if rcpt.is_permanent() {
                                    Outcome::Failed {
                                        error: format!("{} said: {rcpt}", hop.host),
                                    }
                                } else {
                                    temporary(
                                        server,
                                        message,
                                        r,
                                        format!("{} said: {rcpt}", hop.host),
                                    )
                                }
                            } else {
                                match &result.data {
                                    Some(done) if done.is_positive() => Outcome::Delivered {
                                        reply: format!("{} said: {done}", hop.host),
                                    },
                                    Some(done) if done.is_permanent() => Outcome::Failed {
                                        error: format!("{} said: {done}", hop.host),
                                    },
                                    Some(done) => temporary(
                                        server,
                                        message,
                                        r,
                                        format!("{} said: {done}", hop.host),
                                    ),
                                    None => temporary(
                                        server,
                                        message,
                                        r,
                                        format!("{} refused the data", hop.host),
                                    ),
                                }
                            };
                            (r.id, outcome)
                        })
                        .collect();
                }
                Err(SessionError::Reply { stage, reply }) if reply.is_permanent() => {
                    let text = format!("{} said at {stage}: {reply}", hop.host);
                    return all(&|_| Outcome::Failed {
                        error: text.clone(),
                    });
                }
                Err(error) => {
                    tracing::info!(queue_id = %message.id, host = %hop.host, %addr, %error, "delivery attempt failed");
                    last_error = format!("{}: {error}", hop.host);
                }
            }
        }
    }
    all(&|r| temporary(server, message, r, last_error.clone()))
}

/// When every recipient of a message is done: report failures to the
/// sender (unless the sender is null or asked for no report) and drop it.
async fn finish(server: &Server, id: QueueId) -> pillarbox_store::Result<()> {
    let Some(message) = server.store.queue_get(id).await? else {
        return Ok(());
    };
    if !message.recipients.iter().all(|r| r.state.is_final()) {
        return Ok(());
    }
    let failures: Vec<bounce::Failure> = message
        .recipients
        .iter()
        .filter(|r| r.state == RecipientState::Failed)
        .filter(|r| r.notify.as_deref().is_none_or(|n| n.contains("FAILURE")))
        .map(|r| {
            let diagnostic = r.last_error.clone().unwrap_or_default();
            let reply_text = diagnostic
                .split_once(" said: ")
                .map(|(_, reply)| reply.split_once(' ').map(|(_, t)| t).unwrap_or(reply))
                .unwrap_or(&diagnostic)
                .to_string();
            bounce::Failure {
                recipient: r.address.clone(),
                orcpt: r.orcpt.clone(),
                status: bounce::status_of(&reply_text, true),
                diagnostic,
                action: "failed",
            }
        })
        .collect();
    if !failures.is_empty() && !message.sender.is_empty() {
        let original = server.store.queue_data(id).await?.unwrap_or_default();
        let report = bounce::build(&bounce::Report {
            hostname: &server.hostname,
            to: &message.sender,
            envid: message.envid.as_deref(),
            arrival: message.created_at,
            failures: &failures,
            original: &original,
            full: message.ret_full,
        });
        send_report(server, &message.sender, report).await?;
        tracing::info!(queue_id = %id, to = %message.sender, failed = failures.len(), "bounce sent");
    }
    server.store.queue_remove(id).await?;
    Ok(())
}

/// Delivers a report to a local sender's INBOX, or queues it (null sender).
async fn send_report(server: &Server, to: &str, report: Vec<u8>) -> pillarbox_store::Result<()> {
    match server.directory.resolve_recipient(to).await {
        Ok(Recipient::Local(accounts)) => {
            let mut targets = Vec::new();
            for account in accounts {
                if let Some(inbox) = server
                    .store
                    .mailbox(account.id, pillarbox_store::INBOX)
                    .await?
                {
                    targets.push(Target {
                        account: account.id,
                        mailbox: inbox.id,
                        flags: Flags::new(),
                    });
                }
            }
            let message = NewMessage {
                raw: report.into(),
                trace_headers: b"Return-Path: <>\r\n".to_vec(),
                internal_date: None,
            };
            match server.store.deliver(&message, &targets).await {
                Ok(_) => Ok(()),
                // A full mailbox does not get the report; the queue entry goes anyway.
                Err(pillarbox_store::StoreError::OverQuota { .. }) => Ok(()),
                Err(error) => Err(error),
            }
        }
        Ok(Recipient::NotLocal) => {
            server
                .store
                .queue(&OutboundMessage {
                    sender: String::new(),
                    data: report.into(),
                    envid: None,
                    ret_full: false,
                    recipients: vec![OutboundRecipient {
                        address: to.to_string(),
                        notify: None,
                        orcpt: None,
                    }],
                })
                .await?;
            Ok(())
        }
        _ => {
            tracing::warn!(%to, "the sender of a failed message is unknown here: report dropped");
            Ok(())
        }
    }
}
