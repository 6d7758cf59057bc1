//! BDAT (RFC 3030 CHUNKING): the message comes in chunks of a stated size.

use crate::Server;
use crate::session::{Session, reply};
use pillarbox_net::{Connection, ReadError};

/// `Err` ends the session (the client left mid-chunk).
pub(crate) async fn bdat(
    server: &Server,
    conn: &mut Connection,
    session: &mut Session,
    size: u64,
    last: bool,
) -> Result<(), ()> {
    // RFC 3030 §2: the chunk is read even when the command is refused.
    let chunk = match read_chunk(conn, size).await {
        Ok(chunk) => chunk,
        Err(_) => return Err(()),
    };
    if !session.ready_for_data() {
        reply(conn, 503, "5.5.1", "send MAIL FROM and RCPT TO first");
        return Ok(());
    }
    let buffer = session.chunks.get_or_insert_with(Vec::new);
    if !session.chunks_too_big {
        if (buffer.len() as u64).saturating_add(size) > server.config.max_message_size {
            session.chunks_too_big = true;
            buffer.clear();
        } else if let Some(chunk) = &chunk {
            buffer.extend_from_slice(chunk);
        }
    }
    if !last {
        reply(conn, 250, "2.0.0", &format!("{size} octets received"));
        return Ok(());
    }
    let raw = session.chunks.take().unwrap_or_default();
    let too_big = std::mem::take(&mut session.chunks_too_big);
    let envelope = session.envelope.take().ok_or(())?;
    if too_big {
        reply(
            conn,
            552,
            "5.3.4",
            &format!(
                "message too big: the limit is {} octets",
                server.config.max_message_size
            ),
        );
    } else {
        crate::delivery::deliver(server, conn, session, envelope, raw).await;
    }
    Ok(())
}

/// Reads a BDAT chunk of `size` octets in pieces; `None` when it is larger
/// than any message could be (it is read and dropped).
async fn read_chunk(conn: &mut Connection, size: u64) -> Result<Option<Vec<u8>>, ReadError> {
    const PIECE: u64 = 1 << 20;
    let mut chunk = Vec::new();
    let mut left = size;
    let keep = size <= 1 << 30;
    while left > 0 {
        let piece = conn.read_exact(left.min(PIECE) as usize).await?;
        left -= piece.len() as u64;
        if keep {
            chunk.extend_from_slice(&piece);
        }
    }
    Ok(keep.then_some(chunk))
}
