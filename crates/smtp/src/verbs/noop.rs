//! Commands that change nothing: NOOP (RFC 5321 §4.1.1.9), VRFY and EXPN
//! (§3.5.3: 252 when we do not tell), HELP (§4.1.1.8).

use crate::session::reply;
use pillarbox_net::Connection;

pub(crate) fn noop(conn: &mut Connection) {
    reply(conn, 250, "2.0.0", "ok");
}

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
