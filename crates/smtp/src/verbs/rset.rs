//! RSET (RFC 5321 §4.1.1.5): abort the transaction, BDAT chunks included.

use crate::session::{Session, reply};
use pillarbox_net::Connection;

pub(crate) fn rset(conn: &mut Connection, session: &mut Session) {
    session.reset_transaction();
    reply(conn, 250, "2.0.0", "reset");
}
