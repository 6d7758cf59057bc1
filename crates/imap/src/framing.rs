//! Reading one whole command off the wire: the command line, and for each
//! literal `{N}` (synchronizing: answered with `+`) or `{N+}` (LITERAL+) its
//! N octets and the rest of the line, until a line ends without a literal.
//! The result is the command with its literals inline, ready for the parser.
//!
//! Every limit is checked before the bytes it bounds are read, once here
//! for every command (the parser never sees more than these bounds):
//!
//! - Before login a command is small: at most [`MAX_COMMAND_BEFORE_LOGIN`]
//!   octets in all, literals included, and [`MAX_LITERALS_BEFORE_LOGIN`]
//!   literals (LOGIN with a literal user name and password needs two).
//! - After login a command is at most [`MAX_COMMAND`] octets and
//!   [`MAX_LITERALS`] literals, each at most [`MAX_OTHER_LITERAL`] octets,
//!   except APPEND's messages: each may be as large as the APPENDLIMIT
//!   (RFC 7889) and is not counted in the command's size; the messages of
//!   one APPEND (MULTIAPPEND, RFC 3502) together at most
//!   [`Limits::max_append_total`].
//! - A synchronizing literal over a limit is refused with a tagged answer
//!   and no `+`: the client never sends it. A non-synchronizing one is
//!   already on its way; RFC 7888 §4 leaves the server two choices, reading
//!   and dropping it or closing the connection. After login it is dropped
//!   when it is at most twice the APPENDLIMIT; otherwise, and always before
//!   login, the server answers and closes.

use crate::parse::parse_tag;
use pillarbox_net::{Connection, ReadError, Reservation};

/// Longest command line (without literals) accepted.
pub const MAX_LINE: usize = 64 * 1024;
/// Largest literal outside APPEND's message (user names, passwords, search
/// strings, mailbox names).
pub const MAX_OTHER_LITERAL: u64 = 64 * 1024;
/// Largest command after login, lines and literals, APPEND's message aside.
pub const MAX_COMMAND: usize = 1024 * 1024;
/// Literals in one command after login, at most.
pub const MAX_LITERALS: usize = 64;
/// Largest command before login, lines and literals: enough for LOGIN with
/// long literal credentials, AUTHENTICATE and a client's ID.
pub const MAX_COMMAND_BEFORE_LOGIN: usize = 8 * 1024;
/// Largest literal before login.
pub const MAX_LITERAL_BEFORE_LOGIN: u64 = 4 * 1024;
/// Literals in one command before login, at most.
pub const MAX_LITERALS_BEFORE_LOGIN: usize = 4;
/// The messages of one MULTIAPPEND together, at most (unless the
/// APPENDLIMIT is larger): they are held in memory until all have arrived,
/// since all or none are stored.
pub const MULTIAPPEND_TOTAL: u64 = 64 << 20;

/// The limits that apply to the next command, which depend on the session.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The client has logged in.
    pub authenticated: bool,
    /// The largest message APPEND accepts (advertised as APPENDLIMIT).
    pub append_limit: u64,
}

impl Limits {
    fn max_command(&self) -> usize {
        if self.authenticated {
            MAX_COMMAND
        } else {
            MAX_COMMAND_BEFORE_LOGIN
        }
    }

    fn max_literals(&self) -> usize {
        if self.authenticated {
            MAX_LITERALS
        } else {
            MAX_LITERALS_BEFORE_LOGIN
        }
    }

    /// The most octets the messages of one APPEND may hold together: one
    /// message of the APPENDLIMIT, or several up to [`MULTIAPPEND_TOTAL`].
    pub fn max_append_total(&self) -> u64 {
        self.append_limit.max(MULTIAPPEND_TOTAL)
    }

    /// The largest non-synchronizing literal over a limit that is read and
    /// dropped rather than answered by closing the connection.
    fn max_discard(&self) -> u64 {
        if self.authenticated {
            self.append_limit.saturating_mul(2).max(MAX_OTHER_LITERAL)
        } else {
            0
        }
    }
}

/// What the client sent.
pub enum Frame {
    /// A complete command, literals inline, and the share of the server's
    /// memory budget its literals hold until the command is done.
    Command(Vec<u8>, Option<Reservation>),
    /// A first line longer than the limit (given); it was read and dropped.
    LineTooLong(usize),
    /// The command was refused before all of it was read. `answer` is the
    /// tagged status and its text (`NO [TOOBIG] …`, `BAD [LIMIT] …`); with
    /// `close`, the rest of it was not read and the session must end.
    Refused {
        tag: Option<String>,
        answer: String,
        close: bool,
    },
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

/// Why a literal is refused, as the tagged answer's status and text.
/// `appended` is what earlier messages of the same APPEND hold.
fn refusal(
    limits: Limits,
    literals: usize,
    size: u64,
    room: u64,
    append: bool,
    appended: u64,
) -> Option<String> {
    if literals > limits.max_literals() {
        return Some(format!(
            "BAD [LIMIT] More than {} literals in one command",
            limits.max_literals()
        ));
    }
    if !limits.authenticated {
        if size > MAX_LITERAL_BEFORE_LOGIN.min(room) {
            return Some(format!(
                "BAD [TOOBIG] Literal of {size} octets is larger than the {} octets allowed before login",
                MAX_LITERAL_BEFORE_LOGIN.min(room)
            ));
        }
        return None;
    }
    // RFC 7889 §4: a message over the APPENDLIMIT gets NO [TOOBIG].
    if append && size > limits.append_limit {
        return Some(format!(
            "NO [TOOBIG] Message of {size} octets is larger than the APPENDLIMIT of {} octets",
            limits.append_limit
        ));
    }
    if append && appended.saturating_add(size) > limits.max_append_total() {
        return Some(format!(
            "NO [TOOBIG] The messages of this APPEND come to more than {} octets: append them in several commands",
            limits.max_append_total()
        ));
    }
    if size <= MAX_OTHER_LITERAL.min(room) || append {
        return None;
    }
    if size > MAX_OTHER_LITERAL {
        return Some(format!(
            "BAD [TOOBIG] Literal of {size} octets is larger than {MAX_OTHER_LITERAL} octets"
        ));
    }
    Some(format!(
        "BAD [TOOBIG] Command larger than {} octets",
        limits.max_command()
    ))
}

/// Reads one command under `limits`.
pub async fn read_command(conn: &mut Connection, limits: Limits) -> Result<Frame, ReadError> {
    let mut command = Vec::new();
    let mut literals = 0;
    // APPEND's messages: not counted in the command's size.
    let mut uncounted = 0;
    let mut reservation: Option<Reservation> = None;
    loop {
        let room = limits
            .max_command()
            .saturating_sub(command.len() - uncounted);
        let line = match conn.read_line(MAX_LINE.min(room)).await {
            Ok(line) => line,
            Err(ReadError::TooLong(limit)) if command.is_empty() => {
                return Ok(Frame::LineTooLong(limit));
            }
            Err(ReadError::TooLong(_)) => {
                // The line was read to its end and dropped; a literal it
                // announced cannot be known, so the command is abandoned
                // and the session goes on with the next line.
                return Ok(Frame::Refused {
                    tag: parse_tag(&command),
                    answer: format!(
                        "BAD [TOOBIG] Command larger than {} octets",
                        limits.max_command()
                    ),
                    close: false,
                });
            }
            Err(e) => return Err(e),
        };
        command.extend_from_slice(&line);
        let Some((size, non_sync)) = trailing_literal(&line) else {
            return Ok(Frame::Command(command, reservation));
        };
        literals += 1;
        let room = limits
            .max_command()
            .saturating_sub(command.len() - uncounted) as u64;
        let append = limits.authenticated && is_append(&command);
        if let Some(answer) = refusal(limits, literals, size, room, append, uncounted as u64) {
            let tag = parse_tag(&command);
            if !non_sync {
                // RFC 9051 §4.3: without `+` the client sends no literal.
                return Ok(Frame::Refused {
                    tag,
                    answer,
                    close: false,
                });
            }
            if size > limits.max_discard() {
                return Ok(Frame::Refused {
                    tag,
                    answer,
                    close: true,
                });
            }
            discard(conn, size).await?;
            let close = !discard_rest(conn, limits).await?;
            return Ok(Frame::Refused { tag, answer, close });
        }
        // Bounded above: by the command's room, or the APPENDLIMIT.
        let size = size as usize;
        if size as u64 > MAX_OTHER_LITERAL.min(room) {
            // Only APPEND's messages get here (see `refusal`).
            uncounted += size;
        }
        // Charged to the server-wide budget before it is read (and, for a
        // synchronizing literal, before the client is told to send it).
        let charged = match reservation.as_mut() {
            Some(reservation) => reservation.grow(size as u64).await,
            None => conn
                .budget()
                .reserve(size as u64)
                .await
                .map(|r| reservation = Some(r)),
        };
        if charged.is_err() {
            return Ok(Frame::Refused {
                tag: parse_tag(&command),
                answer: "NO [UNAVAILABLE] The server is busy, try again shortly".into(),
                // A non-synchronizing literal is on its way and has no room.
                close: non_sync,
            });
        }
        if !non_sync {
            conn.send(b"+ Ready for literal data\r\n").await?;
        }
        let data = conn.read_exact(size).await?;
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
/// literals) until a line that announces no literal. False when the rest
/// is too large to drop (the session must end).
async fn discard_rest(conn: &mut Connection, limits: Limits) -> Result<bool, ReadError> {
    let mut budget = limits.max_discard();
    loop {
        let line = match conn.read_line(MAX_LINE).await {
            Ok(line) => line,
            Err(ReadError::TooLong(_)) => continue,
            Err(e) => return Err(e),
        };
        match trailing_literal(&line) {
            Some((size, true)) if size <= budget => {
                budget -= size;
                discard(conn, size).await?;
            }
            Some((_, true)) => return Ok(false),
            _ => return Ok(true),
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

    const BEFORE_LOGIN: Limits = Limits {
        authenticated: false,
        append_limit: 50 << 20,
    };
    const AFTER_LOGIN: Limits = Limits {
        authenticated: true,
        append_limit: 50 << 20,
    };

    fn refused(limits: Limits, literals: usize, size: u64, append: bool) -> Option<String> {
        refusal(limits, literals, size, 1 << 20, append, 0)
    }

    #[test]
    fn before_login_only_small_literals() {
        // LOGIN with literal credentials.
        assert_eq!(refused(BEFORE_LOGIN, 2, 200, false), None);
        // Issue 16: APPEND's 50 MB literal before login, and many literals.
        let answer = refused(BEFORE_LOGIN, 1, 52_428_800, false).unwrap_or_default();
        assert!(answer.starts_with("BAD [TOOBIG]"), "{answer}");
        let answer = refused(BEFORE_LOGIN, 5, 10, false).unwrap_or_default();
        assert!(answer.starts_with("BAD [LIMIT]"), "{answer}");
        // The command's total counts: little room left refuses a small literal.
        assert!(refusal(BEFORE_LOGIN, 1, 100, 50, false, 0).is_some());
        assert_eq!(BEFORE_LOGIN.max_discard(), 0);
    }

    #[test]
    fn after_login_one_message_sized_literal_for_append() {
        assert_eq!(refused(AFTER_LOGIN, 1, 10 << 20, true), None);
        let answer = refused(AFTER_LOGIN, 1, 60 << 20, true).unwrap_or_default();
        assert!(answer.starts_with("NO [TOOBIG]"), "{answer}");
        let answer = refused(AFTER_LOGIN, 1, 10 << 20, false).unwrap_or_default();
        assert!(answer.starts_with("BAD [TOOBIG]"), "{answer}");
        assert_eq!(refused(AFTER_LOGIN, 64, 100, false), None);
        // A small APPENDLIMIT holds for small messages too.
        let small = Limits {
            append_limit: 1000,
            ..AFTER_LOGIN
        };
        assert!(refused(small, 1, 5000, true).is_some_and(|a| a.starts_with("NO [TOOBIG]")));
        assert_eq!(refused(small, 1, 900, true), None);
        assert!(refused(AFTER_LOGIN, 65, 100, false).is_some());
        // A small literal that does not fit in what is left of the command.
        let answer = refusal(AFTER_LOGIN, 2, 1000, 10, false, 0).unwrap_or_default();
        assert!(answer.contains("Command larger"), "{answer}");
    }

    #[test]
    fn multiappend_messages_share_one_total() {
        // Two 30 MiB messages fit in 64 MiB; a third does not.
        let thirty = 30 << 20;
        assert_eq!(refusal(AFTER_LOGIN, 2, thirty, 1 << 20, true, thirty), None);
        let answer = refusal(AFTER_LOGIN, 3, thirty, 1 << 20, true, 2 * thirty).unwrap_or_default();
        assert!(
            answer.starts_with("NO [TOOBIG]") && answer.contains("several commands"),
            "{answer}"
        );
        // A larger APPENDLIMIT raises the total with it.
        let big = Limits {
            append_limit: 200 << 20,
            ..AFTER_LOGIN
        };
        assert_eq!(big.max_append_total(), 200 << 20);
        assert_eq!(refusal(big, 3, thirty, 1 << 20, true, 2 * thirty), None);
    }
}
