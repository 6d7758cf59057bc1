//! STARTTLS (RFC 3207).

use crate::session::{Session, reply};
use pillarbox_net::Connection;

/// `Err` ends the session (the handshake failed or the client left).
pub(crate) async fn starttls(conn: &mut Connection, session: &mut Session) -> Result<(), ()> {
    if !conn.can_start_tls() {
        reply(conn, 503, "5.5.1", "TLS is already active");
        return Ok(());
    }
    if conn
        .send(b"220 2.0.0 Ready to start TLS\r\n")
        .await
        .is_err()
    {
        return Err(());
    }
    if conn.start_tls().await.is_err() {
        return Err(());
    }
    // RFC 3207 §4.2: forget everything learned before TLS.
    *session = Session::new(session.submission);
    Ok(())
}
