//! RCPT TO (RFC 5321 §4.1.1.3): local accounts are checked for quota; remote
//! recipients are accepted only on authenticated submission (no open relay).

use crate::Server;
use crate::command::Params;
use crate::session::{Session, reply};
use pillarbox_directory::Recipient;
use pillarbox_net::Connection;

pub(crate) async fn rcpt(
    server: &Server,
    conn: &mut Connection,
    session: &mut Session,
    to: String,
    params: Params,
) {
    let submission = session.submission;
    let Some(envelope) = session.envelope.as_mut() else {
        reply(conn, 503, "5.5.1", "send MAIL FROM first");
        return;
    };
    let dsn = match crate::dsn::rcpt_params(&params) {
        Ok(dsn) => dsn,
        Err(error) => {
            reply(conn, 501, "5.5.4", &error);
            return;
        }
    };
    if envelope.recipients.len() >= server.config.max_recipients {
        reply(
            conn,
            452,
            "4.5.3",
            &format!(
                "too many recipients: at most {} per message",
                server.config.max_recipients
            ),
        );
        return;
    }
    match server.directory.resolve_recipient(&to).await {
        Ok(Recipient::Local(accounts)) => {
            for account in &accounts {
                let used = server.store.quota_used(account.id).await.unwrap_or(0);
                if account.quota_bytes.is_some_and(|limit| used >= limit) {
                    reply(
                        conn,
                        452,
                        "4.2.2",
                        &format!("<{to}>: mailbox full, try again later"),
                    );
                    return;
                }
            }
            envelope.recipients.push((to, accounts));
            envelope.recipient_dsn.push(dsn);
            reply(conn, 250, "2.1.5", "recipient ok");
        }
        Ok(Recipient::UnknownLocal) => {
            reply(conn, 550, "5.1.1", &format!("<{to}>: no such user here"))
        }
        Ok(Recipient::NotLocal) if submission => {
            // Authenticated submission: remote recipients go to the outbound queue.
            envelope.recipients.push((to, Vec::new()));
            envelope.recipient_dsn.push(dsn);
            reply(conn, 250, "2.1.5", "recipient ok, will be relayed");
        }
        Ok(Recipient::NotLocal) => {
            reply(conn, 550, "5.7.1", &format!("<{to}>: relay not permitted"))
        }
        Err(_) => reply(
            conn,
            501,
            "5.1.3",
            &format!("<{to}>: bad recipient address syntax"),
        ),
    }
}
