//! Reading the DATA section (RFC 5321 §4.1.1.4, §4.5.2).
//!
//! The data ends only at `<CRLF>.<CRLF>`: a `.` line counts as the end only
//! when it ends in CRLF *and* the line before it ended in CRLF. `<LF>.<LF>`,
//! `<LF>.<CR><LF>` and `<CR>.<CR>` are kept as data, so a message can never
//! be split in two (no SMTP smuggling).

use pillarbox_net::{Connection, ReadError};

/// Longest data line read at once; longer lines are kept whole (RFC 5321's
/// 1000-octet line limit is the sender's duty; we do not cut messages).
const MAX_DATA_LINE: usize = 1 << 20;

#[derive(Debug)]
pub enum DataError {
    /// Over the size limit; the rest was read and dropped.
    TooBig,
    Read(ReadError),
}

/// Reads the message up to the terminating dot, un-stuffing leading dots.
pub async fn read_data(conn: &mut Connection, max_size: u64) -> Result<Vec<u8>, DataError> {
    let mut message = Vec::new();
    let mut too_big = false;
    let mut previous_ended_crlf = true;
    loop {
        let line = match conn.read_line(MAX_DATA_LINE).await {
            Ok(line) => line,
            Err(ReadError::TooLong(_)) => {
                too_big |= true;
                previous_ended_crlf = true;
                continue;
            }
            Err(error) => return Err(DataError::Read(error)),
        };
        if previous_ended_crlf && line == b".\r\n" {
            break;
        }
        let content = if previous_ended_crlf && line.first() == Some(&b'.') {
            &line[1..]
        } else {
            &line[..]
        };
        previous_ended_crlf = line.ends_with(b"\r\n");
        if !too_big {
            if (message.len() + content.len()) as u64 > max_size {
                too_big = true;
                message = Vec::new();
            } else {
                message.extend_from_slice(content);
            }
        }
    }
    if too_big {
        Err(DataError::TooBig)
    } else {
        Ok(message)
    }
}
