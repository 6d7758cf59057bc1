//! DATA (RFC 5321 §4.1.1.4): the message follows, up to `<CRLF>.<CRLF>`
//! (read by `crate::data`).

use crate::Server;
use crate::data::{DataError, read_data};
use crate::session::{Session, reply};
use pillarbox_net::{Connection, ReadError};

/// `Err` ends the session (the client left or went silent mid-message).
pub(crate) async fn data(
    server: &Server,
    conn: &mut Connection,
    session: &mut Session,
) -> Result<(), ()> {
    if session.chunks.is_some() {
        // RFC 3030 §2: DATA and BDAT do not mix in one transaction.
        reply(
            conn,
            503,
            "5.5.1",
            "DATA cannot follow BDAT in one transaction",
        );
        return Ok(());
    }
    if !session.ready_for_data() {
        reply(conn, 503, "5.5.1", "send MAIL FROM and RCPT TO first");
        return Ok(());
    }
    if conn
        .send(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n")
        .await
        .is_err()
    {
        return Err(());
    }
    let envelope = session.envelope.take().ok_or(())?;
    match read_data(conn, server.config.max_message_size).await {
        Ok((raw, _reservation)) => {
            // The reservation is held until the message is stored.
            crate::delivery::deliver(server, conn, session, envelope, raw).await
        }
        Err(DataError::Busy) => reply(
            conn,
            452,
            "4.3.1",
            "insufficient system storage for the message now, try again later",
        ),
        Err(DataError::TooBig) => reply(
            conn,
            552,
            "5.3.4",
            &crate::session::too_big_text(server.config.max_message_size),
        ),
        Err(DataError::Read(ReadError::Timeout(_))) => {
            let _ = conn
                .send(b"421 4.4.2 closing: no data for too long, nothing was delivered\r\n")
                .await;
            return Err(());
        }
        // Dropped mid-DATA: nothing is delivered.
        Err(DataError::Read(_)) => return Err(()),
    }
    Ok(())
}
