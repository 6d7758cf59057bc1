//! The IMAP command parser: pure functions over one complete command (the
//! command line with its literals inline, as [`crate::framing`] reads it).
//! Nothing here panics or allocates more than the input's size; every error
//! names what was expected so the `BAD` answer tells the client what to fix.

mod command;
mod fetch;
mod metadata;
mod search;

pub use command::{
    AppendMessage, CatPart, Command, ListReturn, ListSelect, QresyncParams, Request, StatusItem,
    StoreOp, parse_request, parse_tag,
};
pub(crate) use fetch::section_spec;
pub use fetch::{FetchAttr, Section, SectionText};
pub use metadata::{MAX_ENTRY_NAME, MetadataDepth};
pub use search::{SearchKey, SearchReturn, SortCriterion, SortKey};

use crate::sequence::{MAX_RANGES, SeqBound, SequenceSet};

/// Why a command could not be parsed; the text goes into the `BAD` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

/// Longest `BAD` text, in characters: texts quote what the client sent
/// (an unknown command or search key), and a reply line must not grow with it.
const MAX_ERROR_TEXT: usize = 120;

impl ParseError {
    pub(crate) fn new(text: impl Into<String>) -> ParseError {
        let mut text = text.into();
        if let Some((cut, _)) = text.char_indices().nth(MAX_ERROR_TEXT) {
            text.truncate(cut);
            text.push('…');
        }
        ParseError(text)
    }
}

pub(crate) type PResult<T> = Result<T, ParseError>;

/// Parenthesised lists nested deeper than this are refused.
pub const MAX_DEPTH: usize = 32;

/// A read position in one command.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

/// atom-specials of RFC 9051 §9 (besides CTL and SP).
fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// The next `n` octets (fewer at the end), in upper case, for looking ahead.
    pub(crate) fn rest_upper(&self, n: usize) -> String {
        let rest = self.rest();
        String::from_utf8_lossy(&rest[..n.min(rest.len())]).to_ascii_uppercase()
    }

    fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }

    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `word` when the input continues with it (case-insensitively).
    pub(crate) fn eat_word(&mut self, word: &str) -> bool {
        let rest = self.rest();
        if rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, b: u8, what: &str) -> PResult<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    pub(crate) fn error(&self, expected: &str) -> ParseError {
        match self.peek() {
            None | Some(b'\r') | Some(b'\n') => {
                ParseError::new(format!("expected {expected}, the command ended"))
            }
            Some(b) if b.is_ascii_graphic() => ParseError::new(format!(
                "expected {expected} at {:?}",
                String::from_utf8_lossy(&self.rest()[..self.rest().len().min(20)])
                    .split(['\r', '\n'])
                    .next()
                    .unwrap_or_default()
            )),
            Some(b) => ParseError::new(format!("expected {expected}, found byte 0x{b:02x}")),
        }
    }

    pub(crate) fn sp(&mut self) -> PResult<()> {
        self.expect(b' ', "a space")
    }

    /// True at CRLF (or a bare LF, which clients sometimes send) or the end.
    pub(crate) fn at_end(&self) -> bool {
        matches!(self.rest(), [] | [b'\n'] | [b'\r', b'\n'])
    }

    pub(crate) fn end(&mut self) -> PResult<()> {
        if self.at_end() {
            self.pos = self.buf.len();
            Ok(())
        } else {
            Err(self.error("the end of the command"))
        }
    }

    pub(crate) fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(ParseError::new(format!(
                "parentheses nested deeper than {MAX_DEPTH} levels"
            )))
        } else {
            Ok(())
        }
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    pub(crate) fn atom(&mut self) -> PResult<&'a str> {
        let atom = self.take_while(is_atom_char);
        if atom.is_empty() {
            return Err(self.error("an atom"));
        }
        // Atom chars are ASCII, so this cannot fail.
        std::str::from_utf8(atom).map_err(|_| ParseError::new("atom is not ASCII"))
    }

    /// An atom that may contain `]` (used for flags like `\Seen` and tags).
    pub(crate) fn astring_atom(&mut self) -> PResult<&'a str> {
        let atom = self.take_while(is_astring_char);
        if atom.is_empty() {
            return Err(self.error("an atom"));
        }
        std::str::from_utf8(atom).map_err(|_| ParseError::new("atom is not ASCII"))
    }

    pub(crate) fn number(&mut self) -> PResult<u32> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(self.error("a number"));
        }
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| ParseError::new("number too large (at most 4294967295)"))
    }

    pub(crate) fn number64(&mut self) -> PResult<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(self.error("a number"));
        }
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| ParseError::new("number too large"))
    }

    pub(crate) fn nz_number(&mut self) -> PResult<u32> {
        match self.number()? {
            0 => Err(ParseError::new(
                "0 is not a valid number here (they start at 1)",
            )),
            n => Ok(n),
        }
    }

    /// quoted = DQUOTE *QUOTED-CHAR DQUOTE, with `\"` and `\\` escapes.
    pub(crate) fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"', "a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => {
                    return Err(ParseError::new("unterminated quoted string"));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => {
                            return Err(ParseError::new(
                                "in a quoted string only \\\" and \\\\ may follow a backslash",
                            ));
                        }
                    }
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    /// literal = "{" number ["+" / "-"] "}" CRLF *OCTET (also `~{` literal8).
    pub(crate) fn literal(&mut self) -> PResult<&'a [u8]> {
        self.eat(b'~');
        self.expect(b'{', "a literal")?;
        let len = self.number()? as usize;
        if !self.eat(b'+') {
            self.eat(b'-');
        }
        self.expect(b'}', "'}' closing the literal length")?;
        self.eat(b'\r');
        self.expect(b'\n', "a line break after the literal length")?;
        let rest = self.rest();
        if rest.len() < len {
            return Err(ParseError::new("literal shorter than announced"));
        }
        self.pos += len;
        Ok(&rest[..len])
    }

    /// True when a literal starts here: `{`, or literal8's `~{`. A `~`
    /// not followed by `{` is an ordinary atom character (`~foo` is a
    /// mailbox name).
    pub(crate) fn at_literal(&self) -> bool {
        matches!(self.rest(), [b'{', ..] | [b'~', b'{', ..])
    }

    pub(crate) fn string(&mut self) -> PResult<Vec<u8>> {
        if self.at_literal() {
            return Ok(self.literal()?.to_vec());
        }
        match self.peek() {
            Some(b'"') => self.quoted(),
            _ => Err(self.error("a string")),
        }
    }

    pub(crate) fn astring(&mut self) -> PResult<Vec<u8>> {
        if self.at_literal() {
            return self.string();
        }
        match self.peek() {
            Some(b'"') => self.string(),
            _ => {
                let atom = self.take_while(is_astring_char);
                if atom.is_empty() {
                    return Err(self.error("an atom or a string"));
                }
                Ok(atom.to_vec())
            }
        }
    }

    /// list-mailbox = 1*list-char / string.
    pub(crate) fn list_mailbox(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let pattern = self.take_while(is_list_char);
                if pattern.is_empty() {
                    return Err(self.error("a mailbox pattern"));
                }
                Ok(pattern.to_vec())
            }
        }
    }

    /// A flag: `\Seen`-style system flag or a keyword atom.
    pub(crate) fn flag(&mut self) -> PResult<String> {
        let backslash = self.eat(b'\\');
        let atom = self.atom()?;
        Ok(if backslash {
            format!("\\{atom}")
        } else {
            atom.to_string()
        })
    }

    /// flag-list = "(" [flag *(SP flag)] ")".
    pub(crate) fn flag_list(&mut self) -> PResult<Vec<String>> {
        self.expect(b'(', "'(' opening a flag list")?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    /// sequence-set, including `$` (RFC 5182).
    pub(crate) fn sequence_set(&mut self) -> PResult<SequenceSet> {
        if self.eat(b'$') {
            return Ok(SequenceSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let first = self.seq_bound()?;
            let last = if self.eat(b':') {
                self.seq_bound()?
            } else {
                first
            };
            ranges.push((first, last));
            if ranges.len() > MAX_RANGES {
                return Err(ParseError::new(format!(
                    "sequence set with more than {MAX_RANGES} ranges: send the command in parts"
                )));
            }
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SequenceSet::from_ranges(&ranges))
    }

    fn seq_bound(&mut self) -> PResult<SeqBound> {
        if self.eat(b'*') {
            Ok(SeqBound::Star)
        } else if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            Ok(SeqBound::Num(self.nz_number().map_err(|_| {
                ParseError::new("invalid sequence set: numbers start at 1")
            })?))
        } else {
            Err(self.error("a sequence set (e.g. 1:5,7,9:*)"))
        }
    }

    /// date = day "-" month "-" year, optionally quoted; returns days since 1970-01-01.
    pub(crate) fn date(&mut self) -> PResult<i64> {
        let quoted = self.eat(b'"');
        let text = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-');
        let days = std::str::from_utf8(text)
            .ok()
            .and_then(parse_date)
            .ok_or_else(|| ParseError::new("expected a date like 1-Feb-2024"))?;
        if quoted {
            self.expect(b'"', "'\"' closing the date")?;
        }
        Ok(days)
    }

    /// date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE;
    /// returns Unix seconds.
    pub(crate) fn date_time(&mut self) -> PResult<i64> {
        let text = self.quoted()?;
        std::str::from_utf8(&text)
            .ok()
            .and_then(parse_date_time)
            .ok_or_else(|| {
                ParseError::new("expected a date-time like \"01-Feb-2024 13:05:00 +0100\"")
            })
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// (year, month, day) of a day number since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn month_name(month: u32) -> &'static str {
    MONTHS
        .get((month as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("Jan")
}

fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().split('-');
    let day: u32 = parts.next()?.trim().parse().ok()?;
    let month = parts.next()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=31).contains(&day) || !(1..=9999).contains(&year) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

fn parse_date_time(text: &str) -> Option<i64> {
    // " 1-Feb-2024 13:05:00 +0100" (day may be space-padded).
    let text = text.trim_start();
    let (date, rest) = text.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let days = parse_date(date)?;
    let mut hms = time.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let m: i64 = hms.next()?.parse().ok()?;
    let s: i64 = hms.next()?.parse().ok()?;
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let zone = zone.as_bytes();
    if zone.len() != 5 || !matches!(zone[0], b'+' | b'-') {
        return None;
    }
    let digits = std::str::from_utf8(&zone[1..]).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let zh: i64 = digits[..2].parse().ok()?;
    let zm: i64 = digits[2..].parse().ok()?;
    let offset = (zh * 60 + zm) * 60 * if zone[0] == b'-' { -1 } else { 1 };
    Some(days * 86400 + h * 3600 + m * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29), 19782);
        for days in [-1000, 0, 19782, 20000, 50000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn date_time_with_zone() {
        // RFC 9051 example: "17-Jul-1996 02:44:25 -0700"
        let t = parse_date_time("17-Jul-1996 02:44:25 -0700").unwrap();
        assert_eq!(t, 837596665);
        assert_eq!(
            parse_date_time(" 1-Feb-2024 00:00:00 +0000").unwrap(),
            days_from_civil(2024, 2, 1) * 86400
        );
        assert!(parse_date_time("17-Jux-1996 02:44:25 -0700").is_none());
        assert!(parse_date_time("17-Jul-1996 25:44:25 -0700").is_none());
    }

    #[test]
    fn quoted_strings_and_literals() {
        let mut c = Cursor::new(b"\"a \\\"b\\\\\" {3}\r\nxyz\r\n");
        assert_eq!(c.quoted().unwrap(), b"a \"b\\");
        c.sp().unwrap();
        assert_eq!(c.literal().unwrap(), b"xyz");
        c.end().unwrap();
        assert!(Cursor::new(b"\"abc\r\n").quoted().is_err());
        assert!(Cursor::new(b"{10}\r\nabc").literal().is_err());
    }
}
