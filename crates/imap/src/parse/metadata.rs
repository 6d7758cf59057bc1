//! GETMETADATA and SETMETADATA (RFC 5464 §4.2–4.3, §5 formal syntax).

use super::command::Command;
use super::{Cursor, PResult, ParseError};

/// How far below a named entry GETMETADATA looks (RFC 5464 §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataDepth {
    /// The entry alone (the default).
    Zero,
    /// The entry and its children.
    One,
    /// The entry and everything below it.
    Infinity,
}

/// An entry name: astring, at most this long.
pub const MAX_ENTRY_NAME: usize = 1024;

fn entry(c: &mut Cursor) -> PResult<Vec<u8>> {
    let name = c.astring()?;
    if name.len() > MAX_ENTRY_NAME {
        return Err(ParseError::new(format!(
            "metadata entry names are at most {MAX_ENTRY_NAME} octets"
        )));
    }
    Ok(name)
}

/// `GETMETADATA [SP options] SP mailbox SP entries`, after the command name.
pub(super) fn getmetadata(c: &mut Cursor) -> PResult<Command> {
    c.sp()?;
    let mut max_size = None;
    let mut depth = MetadataDepth::Zero;
    if c.eat(b'(') {
        loop {
            let option = c.atom()?.to_ascii_uppercase();
            c.sp()?;
            match option.as_str() {
                "MAXSIZE" => max_size = Some(c.number()?),
                "DEPTH" => {
                    depth = match c.atom()?.to_ascii_lowercase().as_str() {
                        "0" => MetadataDepth::Zero,
                        "1" => MetadataDepth::One,
                        "infinity" => MetadataDepth::Infinity,
                        other => {
                            return Err(ParseError::new(format!(
                                "DEPTH is 0, 1 or infinity, not {}",
                                other.chars().take(20).collect::<String>()
                            )));
                        }
                    }
                }
                _ => {
                    return Err(ParseError::new(format!(
                        "GETMETADATA option {} is not known: use MAXSIZE or DEPTH",
                        option.chars().take(20).collect::<String>()
                    )));
                }
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
        c.sp()?;
    }
    let mailbox = c.astring()?;
    c.sp()?;
    let mut entries = Vec::new();
    if c.eat(b'(') {
        loop {
            entries.push(entry(c)?);
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    } else {
        entries.push(entry(c)?);
    }
    Ok(Command::GetMetadata {
        mailbox,
        entries,
        max_size,
        depth,
    })
}

/// `SETMETADATA SP mailbox SP "(" entry SP value *(SP entry SP value) ")"`.
pub(super) fn setmetadata(c: &mut Cursor) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.astring()?;
    c.sp()?;
    c.expect(b'(', "'(' opening the entries and values")?;
    let mut entries = Vec::new();
    loop {
        let name = entry(c)?;
        c.sp()?;
        // value = nstring / literal8; NIL removes the entry.
        let value = if !c.at_literal() && c.rest_upper(3) == "NIL" {
            let word = c.atom()?;
            if !word.eq_ignore_ascii_case("NIL") {
                return Err(ParseError::new("a metadata value is a string or NIL"));
            }
            None
        } else {
            Some(c.string()?)
        };
        entries.push((name, value));
        if c.eat(b')') {
            break;
        }
        c.sp()?;
    }
    Ok(Command::SetMetadata { mailbox, entries })
}
