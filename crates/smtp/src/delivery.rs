//! Local delivery at the end of DATA/BDAT: trace headers, one store
//! transaction for every recipient, `250` only after the commit.

use crate::Server;
use crate::session::{Envelope, Session, reply};
use pillarbox_net::Connection;
use pillarbox_store::queue::{OutboundMessage, OutboundRecipient};
use pillarbox_store::{AccountId, NewMessage, StoreError, Target};

fn rfc5322_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default()
}

pub(crate) async fn deliver(
    server: &Server,
    conn: &mut Connection,
    s: &Session,
    envelope: Envelope,
    raw: Vec<u8>,
) {
    let mut accounts: Vec<AccountId> = Vec::new();
    for (_, resolved) in &envelope.recipients {
        for account in resolved {
            if !accounts.contains(&account.id) {
                accounts.push(account.id);
            }
        }
    }
    let mut targets = Vec::with_capacity(accounts.len());
    for account in &accounts {
        match server.store.mailbox(*account, pillarbox_store::INBOX).await {
            Ok(Some(inbox)) => targets.push(Target {
                account: *account,
                mailbox: inbox.id,
                flags: Default::default(),
            }),
            other => {
                let reference = pillarbox_net::error_reference();
                match other {
                    Err(error) => {
                        tracing::warn!(%error, %reference, account = ?account, "cannot open a recipient's INBOX")
                    }
                    _ => tracing::warn!(%reference, account = ?account, "a recipient has no INBOX"),
                }
                reply(
                    conn,
                    451,
                    "4.3.0",
                    &format!(
                        "a recipient's mailbox is not available, try again later (reference {reference})"
                    ),
                );
                return;
            }
        }
    }
    let with = match (conn.is_tls(), s.authenticated.is_some()) {
        (true, true) => "ESMTPSA",
        (true, false) => "ESMTPS",
        (false, true) => "ESMTPA",
        (false, false) if s.esmtp => "ESMTP",
        _ => "SMTP",
    };
    let id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let for_clause = match envelope.recipients.as_slice() {
        [(single, _)] => format!("\r\n\tfor <{single}>"),
        _ => String::new(),
    };
    // SPF, DKIM and DMARC for mail from other servers (the MX listener).
    let mut auth_results = String::new();
    if conn.listener().name == "smtp" && server.config.auth_checks {
        let verdict = server
            .verifier
            .check(
                &server.hostname,
                conn.peer().ip(),
                s.helo.as_deref().unwrap_or_default(),
                &envelope.from,
                &raw,
            )
            .await;
        if let Some(domain) = verdict.dmarc_reject
            && server.config.reject_dmarc_failures
        {
            tracing::info!(%domain, from = %envelope.from, "rejected: DMARC policy reject");
            reply(
                conn,
                550,
                "5.7.1",
                &format!(
                    "message rejected: it fails DMARC and {domain} publishes p=reject (no aligned SPF or DKIM pass)"
                ),
            );
            return;
        }
        auth_results = verdict.header;
    }
    if envelope.recipient_dsn.iter().any(|d| d.notify.is_some()) || envelope.dsn.envid.is_some() {
        tracing::debug!(dsn = ?envelope.dsn, recipients = ?envelope.recipient_dsn, "DSN parameters");
    }
    let trace = format!(
        "Return-Path: <{}>\r\n{auth_results}Received: from {} ([{}])\r\n\tby {} (Pillarbox) with {with} id {id}{for_clause};\r\n\t{}\r\n",
        envelope.from,
        s.helo.as_deref().unwrap_or("unknown"),
        conn.peer().ip(),
        server.hostname,
        rfc5322_now()
    );
    // Remote recipients (authenticated submission only): the message as it
    // leaves, with our Received: line and, when the sender's domain has a
    // key, a DKIM signature, queued in the same transaction.
    let remote: Vec<OutboundRecipient> = envelope
        .recipients
        .iter()
        .zip(&envelope.recipient_dsn)
        .filter(|((_, accounts), _)| accounts.is_empty())
        .map(|((address, _), dsn)| OutboundRecipient {
            address: address.clone(),
            notify: dsn.notify.as_ref().map(|n| n.join(",")),
            orcpt: dsn
                .orcpt
                .as_ref()
                .map(|(kind, addr)| format!("{kind};{addr}")),
        })
        .collect();
    let outbound = if remote.is_empty() {
        None
    } else {
        let received_at = trace.find("Received:").unwrap_or(0);
        let mut data = trace.as_bytes()[received_at..].to_vec();
        data.extend_from_slice(&raw);
        let domain = envelope
            .from
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or_default();
        if let Some(signature) = crate::outbound::dkim::sign(&server.store, domain, &data).await {
            let mut signed = signature.into_bytes();
            signed.extend_from_slice(&data);
            data = signed;
        }
        Some(OutboundMessage {
            sender: envelope.from.clone(),
            data: data.into(),
            envid: envelope.dsn.envid.clone(),
            ret_full: envelope.dsn.ret != Some(crate::dsn::Ret::Headers),
            recipients: remote,
        })
    };
    let message = NewMessage {
        raw: raw.into(),
        trace_headers: trace.into_bytes(),
        internal_date: None,
    };
    // 250 only after the commit that delivered to every local recipient and
    // queued the message for the remote ones is durable.
    match server
        .store
        .deliver_and_queue(&message, &targets, outbound.as_ref())
        .await
    {
        Ok(_) => {
            if server.directory.account_metrics() {
                let mut counted: Vec<AccountId> = Vec::new();
                for account in envelope.recipients.iter().flat_map(|(_, a)| a) {
                    if !counted.contains(&account.id) {
                        counted.push(account.id);
                        metrics::counter!("pillarbox_account_messages_delivered_total", "account" => account.address.clone())
                            .increment(1);
                    }
                }
            }
            reply(
                conn,
                250,
                "2.0.0",
                &format!("message accepted for delivery as {id}"),
            )
        }
        Err(StoreError::OverQuota { .. }) => {
            reply(conn, 452, "4.2.2", "mailbox full, try again later")
        }
        Err(error) => {
            let reference = pillarbox_net::error_reference();
            tracing::warn!(%error, %reference, "delivery failed");
            reply(
                conn,
                451,
                "4.3.0",
                &format!("local delivery failed, try again later (reference {reference})"),
            )
        }
    }
}
