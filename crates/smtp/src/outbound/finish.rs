//! The end of a queued message: once every recipient is final, failures
//! are reported to the sender (RFC 3464) and the message leaves the queue.

use super::bounce;
use crate::Server;
use pillarbox_directory::Recipient;
use pillarbox_store::queue::{
    OutboundMessage, OutboundRecipient, QueueHolder, QueueId, RecipientState,
};
use pillarbox_store::{Flags, NewMessage, Target};
use std::time::Duration;

/// When every recipient of a message is final: report failures to the
/// sender (unless the sender is null or asked for no report) and drop the
/// message. Only one worker finishes a message, the one that takes it
/// ([`pillarbox_store::Store::queue_take_finished`]); if it stops before the
/// end, its lease ends and the message is finished by a later sweep.
pub(super) async fn finish(
    server: &Server,
    holder: &QueueHolder,
    id: QueueId,
    lease: Duration,
) -> pillarbox_store::Result<()> {
    let Some(message) = server.store.queue_take_finished(holder, id, lease).await? else {
        return Ok(());
    };
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
