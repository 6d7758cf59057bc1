//! The commands that change little or nothing: RSET, NOOP, VRFY, HELP and
//! QUIT (RFC 5321 §4.1.1.5–§4.1.1.10).

use crate::Server;
use crate::session::{Session, reply};
use pillarbox_net::Connection;

/// RFC 5321 §4.1.1.5: RSET aborts the transaction, buffered chunks included.
pub(crate) fn rset(conn: &mut Connection, s: &mut Session) {
    s.envelope = None;
    s.chunks = None;
    s.chunks_too_big = false;
    reply(conn, 250, "2.0.0", "reset");
}

pub(crate) fn noop(conn: &mut Connection) {
    reply(conn, 250, "2.0.0", "ok");
}

/// RFC 5321 §3.5.3: 252 when the server will not verify addresses.
pub(crate) fn vrfy(conn: &mut Connection) {
    reply(
        conn,
        252,
        "2.5.0",
        "cannot verify the user, but will accept mail and attempt delivery",
    );
}

pub(crate) fn help(conn: &mut Connection) {
    reply(
        conn,
        214,
        "2.0.0",
        "commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
    );
}

pub(crate) async fn quit(server: &Server, conn: &mut Connection) {
    let _ = conn
        .send(format!("221 2.0.0 {} closing connection\r\n", server.hostname).as_bytes())
        .await;
}
