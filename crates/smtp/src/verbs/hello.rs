//! EHLO and HELO (RFC 5321 §4.1.1.1): they name the client and, like RSET,
//! end any open transaction (§4.1.4).

use crate::Server;
use crate::session::Session;
use pillarbox_net::Connection;

pub(crate) fn ehlo(server: &Server, conn: &mut Connection, session: &mut Session, name: String) {
    session.helo = Some(name);
    session.esmtp = true;
    session.reset_transaction();
    let mut lines = vec![
        format!(
            "{} greets {}",
            server.hostname,
            session.helo.as_deref().unwrap_or_default()
        ),
        "PIPELINING".into(),
        format!("SIZE {}", server.config.max_message_size),
        "8BITMIME".into(),
        "SMTPUTF8".into(),
        "ENHANCEDSTATUSCODES".into(),
        "CHUNKING".into(),
        "DSN".into(),
    ];
    if conn.can_start_tls() {
        lines.push("STARTTLS".into());
    }
    if session.submission && conn.plaintext_auth_allowed() && session.authenticated.is_none() {
        lines.push("AUTH PLAIN LOGIN".into());
    }
    lines.push("HELP".into());
    let last = lines.len() - 1;
    for (i, line) in lines.iter().enumerate() {
        conn.write(format!("250{}{line}\r\n", if i == last { ' ' } else { '-' }).as_bytes());
    }
}

pub(crate) fn helo(server: &Server, conn: &mut Connection, session: &mut Session, name: String) {
    session.helo = Some(name);
    session.esmtp = false;
    session.reset_transaction();
    conn.write(format!("250 {}\r\n", server.hostname).as_bytes());
}
