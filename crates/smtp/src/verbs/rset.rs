//! RSET (RFC 5321 §4.1.1.5): abort the transaction, BDAT chunks included.

use crate::session::{Session, reply};
use pillarbox_net::Connection;

pub(crate) fn rset(conn: &mut Connection, session: &mut Session) {
    session.envelope = None;
    session.chunks = None;
    session.chunks_too_big = false;
    reply(conn, 250, "2.0.0", "reset");
}
