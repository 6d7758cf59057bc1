//! MAIL FROM (RFC 5321 §4.1.1.2), with SIZE (RFC 1870) and DSN (RFC 3461)
//! parameters; on submission the sender must be one of the account's addresses.

use crate::Server;
use crate::command::Params;
use crate::session::{Envelope, Session, reply};
use pillarbox_net::Connection;

pub(crate) async fn mail(
    server: &Server,
    conn: &mut Connection,
    session: &mut Session,
    from: String,
    params: Params,
) {
    if session.helo.is_none() {
        reply(conn, 503, "5.5.1", "send EHLO first");
        return;
    }
    if session.envelope.is_some() {
        reply(
            conn,
            503,
            "5.5.1",
            "a transaction is already open: send RSET first",
        );
        return;
    }
    if session.submission && session.authenticated.is_none() {
        reply(conn, 530, "5.7.0", "authentication required: AUTH first");
        return;
    }
    if let Some(bad) = params.iter().find(|(k, v)| {
        k == "SIZE"
            && !v
                .as_deref()
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }) {
        reply(
            conn,
            501,
            "5.5.4",
            &format!("{}: SIZE takes a number of octets", bad.0),
        );
        return;
    }
    if let Some(size) = params
        .iter()
        .find(|(k, _)| k == "SIZE")
        .and_then(|(_, v)| v.as_deref())
        && size
            .parse::<u64>()
            .map(|n| n > server.config.max_message_size)
            .unwrap_or(true)
    {
        reply(
            conn,
            552,
            "5.3.4",
            &crate::session::too_big_text(server.config.max_message_size),
        );
        return;
    }
    let dsn = match crate::dsn::mail_params(&params) {
        Ok(dsn) => dsn,
        Err(error) => {
            reply(conn, 501, "5.5.4", &error);
            return;
        }
    };
    if let Some(account) = &session.authenticated {
        let own = server
            .directory
            .addresses_of(account.id)
            .await
            .unwrap_or_default();
        if !own.iter().any(|a| a.eq_ignore_ascii_case(&from)) {
            reply(
                conn,
                553,
                "5.7.1",
                &format!("{} may not send as <{from}>", account.address),
            );
            return;
        }
    }
    session.envelope = Some(Envelope {
        from,
        recipients: Vec::new(),
        dsn,
        recipient_dsn: Vec::new(),
    });
    reply(conn, 250, "2.1.0", "sender ok");
}
