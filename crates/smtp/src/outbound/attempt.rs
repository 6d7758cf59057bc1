//! One delivery attempt: the recipients of one message at one destination
//! (their domain's MX hosts in preference order, or the smarthost), one SMTP
//! transaction, an outcome per recipient; temporary failures get their next
//! attempt from the retry schedule.

use super::client::{self, Security, SessionError, Transaction};
use crate::{RelayTls, Server};
use pillarbox_store::queue::{Outcome, QueuedMessage, QueuedRecipient};
use std::net::SocketAddr;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
pub(super) async fn attempt(
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
