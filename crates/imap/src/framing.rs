//! Reading one whole command off the wire: the command line, and for each
//! literal `{N}` (synchronizing: answered with `+`) or `{N+}` (LITERAL+) its
//! N octets and the rest of the line, until a line ends without a literal.
//! The result is the command with its literals inline, ready for the parser.
//!
//! Limits are checked before a literal is read: APPEND's message literal may
//! be as large as the APPENDLIMIT, any other literal 64 KiB.

use crate::parse::parse_tag;
use pillarbox_net::{Connection, ReadError};

/// Longest command line (without literals) accepted.
pub const MAX_LINE: usize = 64 * 1024;
/// Largest literal outside APPEND (user names, passwords, search strings).
pub const MAX_OTHER_LITERAL: u64 = 64 * 1024;
/// Literals in one command, at most.
pub const MAX_LITERALS: usize = 64;

/// What the client sent.
pub enum Frame {
    /// A complete command, literals inline.
    Command(Vec<u8>),
    /// A line longer than [`MAX_LINE`]; it was read and dropped.
    LineTooLong,
    /// A literal larger than allowed. A synchronizing literal was never
    /// sent by the client; a non-synchronizing one was read and dropped.
    LiteralTooBig {
        tag: Option<String>,
        size: u64,
        limit: u64,
        append: bool,
    },
    /// Too many literals in one command.
    TooManyLiterals { tag: Option<String> },
}

/// A literal announced at the end of a line: `{N}`, `{N+}`, `{N-}`, `~{N}`.
pub(crate) fn trailing_literal(line: &[u8]) -> Option<(u64, bool)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let (line, non_sync) = match line.last() {
        Some(b'+') => (&line[..line.len() - 1], true),
        Some(b'-') => (&line[..line.len() - 1], false),
        _ => (line, false),
    };
    let open = line.iter().rposition(|b| *b == b'{')?;
    let digits = &line[open + 1..];
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((n, non_sync))
}

/// Whether the command (its first line) is APPEND.
pub(crate) fn is_append(first_line: &[u8]) -> bool {
    let mut words = first_line.split(|b| *b == b' ');
    words.next();
    words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"))
}

/// Reads one command. `append_limit` bounds APPEND's message literal.
pub async fn read_command(conn: &mut Connection, append_limit: u64) -> Result<Frame, ReadError> {
    let mut command = Vec::new();
    let mut literals = 0;
    loop {
        let line = match conn.read_line(MAX_LINE).await {
            Ok(line) => line,
            Err(ReadError::TooLong(_)) => return Ok(Frame::LineTooLong),
            Err(e) => return Err(e),
        };
        command.extend_from_slice(&line);
        let Some((size, non_sync)) = trailing_literal(&line) else {
            return Ok(Frame::Command(command));
        };
        literals += 1;
        let tag = parse_tag(&command);
        if literals > MAX_LITERALS {
            if non_sync {
                discard(conn, size).await?;
            }
            discard_rest(conn).await?;
            return Ok(Frame::TooManyLiterals { tag });
        }
        let append = is_append(&command);
        let limit = if append {
            append_limit
        } else {
            MAX_OTHER_LITERAL
        };
        if size > limit {
            if non_sync {
                // RFC 7888 §4: the client sends it anyway; read it and drop it.
                discard(conn, size).await?;
                discard_rest(conn).await?;
            }
            return Ok(Frame::LiteralTooBig {
                tag,
                size,
                limit,
                append,
            });
        }
        if !non_sync {
            conn.send(b"+ Ready for literal data\r\n").await?;
        }
        let data = conn.read_exact(size as usize).await?;
        command.extend_from_slice(&data);
    }
}

/// Reads and drops `size` octets.
async fn discard(conn: &mut Connection, mut size: u64) -> Result<(), ReadError> {
    while size > 0 {
        let chunk = size.min(64 * 1024) as usize;
        conn.read_exact(chunk).await?;
        size -= chunk as u64;
    }
    Ok(())
}

/// Drops the rest of a refused command: lines (and their non-synchronizing
/// literals) until a line that announces no literal.
async fn discard_rest(conn: &mut Connection) -> Result<(), ReadError> {
    loop {
        let line = match conn.read_line(MAX_LINE).await {
            Ok(line) => line,
            Err(ReadError::TooLong(_)) => continue,
            Err(e) => return Err(e),
        };
        match trailing_literal(&line) {
            Some((size, true)) => discard(conn, size).await?,
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_markers() {
        assert_eq!(trailing_literal(b"a APPEND x {12}\r\n"), Some((12, false)));
        assert_eq!(trailing_literal(b"a APPEND x {12+}\r\n"), Some((12, true)));
        assert_eq!(trailing_literal(b"a APPEND x ~{5}\r\n"), Some((5, false)));
        assert_eq!(trailing_literal(b"a LOGIN {x}\r\n"), None);
        assert_eq!(trailing_literal(b"a NOOP\r\n"), None);
        assert_eq!(trailing_literal(b"a X {99999999999999999999}\r\n"), None);
        assert!(is_append(b"a1 append INBOX {3}\r\n"));
        assert!(!is_append(b"a1 LOGIN {3}\r\n"));
    }
}
