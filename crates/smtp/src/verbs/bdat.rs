//! BDAT (RFC 3030 CHUNKING): the message in chunks of a stated size.
//!
//! A chunk is always read, to stay in step with the client (RFC 3030 §2:
//! the octets follow the command whatever the reply), but it is kept only
//! when it can be part of a message: inside a transaction, and within
//! `max_message_size` together with the chunks already kept. Otherwise it is
//! dropped as it streams past, so a client's announced size never decides
//! how much memory it gets.

use crate::Server;
use crate::session::{Session, reply};
use pillarbox_net::{Connection, ReadError};

/// `Err` ends the session (the client left or stalled mid-chunk).
pub(crate) async fn bdat(
    server: &Server,
    conn: &mut Connection,
    session: &mut Session,
    size: u64,
    last: bool,
) -> Result<(), ()> {
    if !session.ready_for_data() {
        skip(conn, size)
            .await
            .map_err(|error| timed_out(conn, error))?;
        reply(conn, 503, "5.5.1", "send MAIL FROM and RCPT TO first");
        return Ok(());
    }
    let limit = server.config.max_message_size;
    let buffered = session.chunks.as_ref().map_or(0, Vec::len) as u64;
    if size > limit.saturating_sub(buffered) {
        let text = crate::session::too_big_text(limit);
        return refuse(conn, session, size, 552, "5.3.4", &text).await;
    }
    // Charged to the server-wide budget before it is read: N connections
    // × max_message_size can never exceed `[limits] memory_budget_mib`.
    let charged = match session.chunks_budget.as_mut() {
        Some(reservation) => reservation.grow(size).await,
        None => conn.budget().reserve(size).await.map(|reservation| {
            session.chunks_budget = Some(reservation);
        }),
    };
    if charged.is_err() {
        let text = "insufficient system storage for the message now, try again later";
        return refuse(conn, session, size, 452, "4.3.1", text).await;
    }
    let chunks = session.chunks.get_or_insert_with(Vec::new);
    read_into(conn, size, chunks)
        .await
        .map_err(|error| timed_out(conn, error))?;
    if !last {
        reply(conn, 250, "2.0.0", &format!("{size} octets received"));
        return Ok(());
    }
    let raw = session.chunks.take().unwrap_or_default();
    let envelope = session.envelope.take().ok_or(())?;
    crate::delivery::deliver(server, conn, session, envelope, raw).await;
    // The message is stored (or refused): its memory goes back to the budget.
    session.chunks_budget = None;
    Ok(())
}

/// Drops the chunk as it streams past and ends the transaction with an
/// error reply: RFC 3030 §2, after an error reply the client sends no more
/// chunks of this message, so the chunks kept so far are dropped too.
async fn refuse(
    conn: &mut Connection,
    session: &mut Session,
    size: u64,
    code: u16,
    enhanced: &str,
    text: &str,
) -> Result<(), ()> {
    skip(conn, size)
        .await
        .map_err(|error| timed_out(conn, error))?;
    session.reset_transaction();
    reply(conn, code, enhanced, text);
    Ok(())
}

/// Queues the goodbye for a chunk that stopped arriving (the session ends).
fn timed_out(conn: &mut Connection, error: ReadError) {
    if matches!(error, ReadError::Timeout(_)) {
        conn.write(b"421 4.4.2 closing: no data for too long, nothing was delivered\r\n");
    }
}

/// Reads `size` octets and drops them as they arrive.
async fn skip(conn: &mut Connection, size: u64) -> Result<(), ReadError> {
    let mut left = size;
    while left > 0 {
        let input = conn.read_some().await?;
        let used = usize::try_from(left).map_or(input.len(), |left| left.min(input.len()));
        left -= used as u64;
        conn.unread(&input[used..]);
    }
    Ok(())
}

/// Reads `size` octets onto the end of `buffer` (the caller checked that
/// they fit within the message size limit).
async fn read_into(
    conn: &mut Connection,
    size: u64,
    buffer: &mut Vec<u8>,
) -> Result<(), ReadError> {
    // Grown once to its known size (charged to the memory budget), not by
    // doubling, which could hold up to twice what was charged.
    buffer.reserve_exact(usize::try_from(size).unwrap_or(0));
    let mut left = size;
    while left > 0 {
        let input = conn.read_some().await?;
        let used = usize::try_from(left).map_or(input.len(), |left| left.min(input.len()));
        buffer.extend_from_slice(&input[..used]);
        left -= used as u64;
        conn.unread(&input[used..]);
    }
    Ok(())
}
