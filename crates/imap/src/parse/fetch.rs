//! FETCH data items (RFC 9051 §6.4.5, RFC 3516 BINARY).

use super::{Cursor, PResult, ParseError};

/// The text part of a section specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

/// `[1.2.HEADER]`: a part path and what of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    Envelope,
    Flags,
    InternalDate,
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    Body,
    BodyStructure,
    Uid,
    BodySection {
        section: Section,
        /// `<start.count>`
        partial: Option<(u32, u32)>,
        peek: bool,
    },
    Binary {
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
        peek: bool,
    },
    BinarySize(Vec<u32>),
    /// MODSEQ (RFC 7162 §3.1.4).
    ModSeq,
    /// PREVIEW (RFC 8970), with or without `(LAZY)`: always made at once.
    Preview,
    /// SAVEDATE (RFC 8514).
    SaveDate,
    /// EMAILID and THREADID (RFC 8474 §5).
    EmailId,
    ThreadId,
}

impl FetchAttr {
    /// Whether fetching this item sets `\Seen` (RFC 9051 §6.4.5).
    pub fn sets_seen(&self) -> bool {
        matches!(
            self,
            FetchAttr::Rfc822
                | FetchAttr::Rfc822Text
                | FetchAttr::BodySection { peek: false, .. }
                | FetchAttr::Binary { peek: false, .. }
        )
    }
}

/// `ALL`, `FAST`, `FULL`, one item or a parenthesised list.
pub(crate) fn parse_fetch_attrs(c: &mut Cursor) -> PResult<Vec<FetchAttr>> {
    if c.eat(b'(') {
        let mut attrs = Vec::new();
        loop {
            attrs.push(attr(c)?);
            if c.eat(b')') {
                return Ok(attrs);
            }
            c.sp()?;
        }
    }
    if c.eat_word("ALL")
        && !c
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.')
    {
        return Ok(vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
        ]);
    }
    if c.eat_word("FAST") {
        return Ok(vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
        ]);
    }
    if c.eat_word("FULL") {
        return Ok(vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
            FetchAttr::Body,
        ]);
    }
    Ok(vec![attr(c)?])
}

fn name(c: &mut Cursor) -> String {
    let mut out = String::new();
    while let Some(b) = c.peek() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            out.push(b.to_ascii_uppercase() as char);
            c.eat(b);
        } else {
            break;
        }
    }
    out
}

fn attr(c: &mut Cursor) -> PResult<FetchAttr> {
    let item = name(c);
    Ok(match item.as_str() {
        "ENVELOPE" => FetchAttr::Envelope,
        "FLAGS" => FetchAttr::Flags,
        "INTERNALDATE" => FetchAttr::InternalDate,
        "RFC822" => FetchAttr::Rfc822,
        "RFC822.HEADER" => FetchAttr::Rfc822Header,
        "RFC822.SIZE" => FetchAttr::Rfc822Size,
        "RFC822.TEXT" => FetchAttr::Rfc822Text,
        "BODYSTRUCTURE" => FetchAttr::BodyStructure,
        "UID" => FetchAttr::Uid,
        "MODSEQ" => FetchAttr::ModSeq,
        "SAVEDATE" => FetchAttr::SaveDate,
        "EMAILID" => FetchAttr::EmailId,
        "THREADID" => FetchAttr::ThreadId,
        "PREVIEW" => {
            // `PREVIEW (LAZY)`; a `(` starting anything else is the FETCH
            // modifiers after a lone PREVIEW.
            let rest = c.rest_upper(7);
            if rest == " (LAZY)" || rest.starts_with(" (LAZY ") {
                c.sp()?;
                c.expect(b'(', "'('")?;
                loop {
                    let modifier = name(c);
                    if modifier != "LAZY" {
                        return Err(ParseError::new(format!(
                            "PREVIEW modifier {modifier} is not known: only LAZY is"
                        )));
                    }
                    if c.eat(b')') {
                        break;
                    }
                    c.sp()?;
                }
            }
            FetchAttr::Preview
        }
        "BODY" | "BODY.PEEK" => {
            if c.peek() != Some(b'[') {
                if item == "BODY" {
                    return Ok(FetchAttr::Body);
                }
                return Err(c.error("'[' after BODY.PEEK"));
            }
            let section = section(c)?;
            FetchAttr::BodySection {
                section,
                partial: partial(c)?,
                peek: item == "BODY.PEEK",
            }
        }
        "BINARY" | "BINARY.PEEK" => {
            let part = binary_part(c)?;
            FetchAttr::Binary {
                part,
                partial: partial(c)?,
                peek: item == "BINARY.PEEK",
            }
        }
        "BINARY.SIZE" => FetchAttr::BinarySize(binary_part(c)?),
        "" => return Err(c.error("a FETCH item")),
        _ => return Err(ParseError::new(format!("unknown FETCH item {item}"))),
    })
}

fn part_numbers(c: &mut Cursor) -> PResult<Vec<u32>> {
    let mut part = Vec::new();
    while c.peek().is_some_and(|b| b.is_ascii_digit()) {
        part.push(c.nz_number()?);
        if part.len() > 64 {
            return Err(ParseError::new("section part path too deep"));
        }
        if !c.eat(b'.') {
            break;
        }
    }
    Ok(part)
}

fn binary_part(c: &mut Cursor) -> PResult<Vec<u32>> {
    c.expect(b'[', "'['")?;
    let part = part_numbers(c)?;
    c.expect(b']', "']' closing the section")?;
    Ok(part)
}

/// A section specification alone (`[1.2.MIME]`), as an IMAP URL's
/// `;SECTION=` holds one; `None` unless it is exactly one.
pub(crate) fn section_spec(text: &str) -> Option<Section> {
    let mut c = Cursor::new(text.as_bytes());
    let section = section(&mut c).ok()?;
    c.at_end().then_some(section)
}

fn section(c: &mut Cursor) -> PResult<Section> {
    c.expect(b'[', "'['")?;
    let part = part_numbers(c)?;
    let text = if c.peek() == Some(b']') {
        None
    } else {
        let word = name(c);
        Some(match word.as_str() {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" if !part.is_empty() => SectionText::Mime,
            "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
                c.sp()?;
                c.expect(b'(', "'(' opening the header field list")?;
                let mut fields = Vec::new();
                loop {
                    let field = String::from_utf8(c.astring()?)
                        .map_err(|_| ParseError::new("header field name is not ASCII"))?;
                    fields.push(field);
                    if c.eat(b')') {
                        break;
                    }
                    c.sp()?;
                }
                if word == "HEADER.FIELDS" {
                    SectionText::HeaderFields(fields)
                } else {
                    SectionText::HeaderFieldsNot(fields)
                }
            }
            _ => {
                return Err(ParseError::new(format!(
                    "unknown section {word:?}: use HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME"
                )));
            }
        })
    };
    c.expect(b']', "']' closing the section")?;
    Ok(Section { part, text })
}

fn partial(c: &mut Cursor) -> PResult<Option<(u32, u32)>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let start = c.number()?;
    c.expect(b'.', "'.' in <start.count>")?;
    let count = c.nz_number()?;
    c.expect(b'>', "'>'")?;
    Ok(Some((start, count)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(s: &str) -> Vec<FetchAttr> {
        parse_fetch_attrs(&mut Cursor::new(s.as_bytes())).unwrap()
    }

    #[test]
    fn rfc_examples() {
        // RFC 9051 §6.4.5: FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])
        assert_eq!(
            attrs("(FLAGS BODY[HEADER.FIELDS (DATE FROM)])"),
            vec![
                FetchAttr::Flags,
                FetchAttr::BodySection {
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields(vec![
                            "DATE".into(),
                            "FROM".into()
                        ]))
                    },
                    partial: None,
                    peek: false
                }
            ]
        );
        assert_eq!(
            attrs("BODY.PEEK[1.2.MIME]<0.100>"),
            vec![FetchAttr::BodySection {
                section: Section {
                    part: vec![1, 2],
                    text: Some(SectionText::Mime)
                },
                partial: Some((0, 100)),
                peek: true
            }]
        );
        assert_eq!(attrs("ALL").len(), 4);
        assert_eq!(attrs("FULL").len(), 5);
        assert_eq!(
            attrs("BINARY.SIZE[1]"),
            vec![FetchAttr::BinarySize(vec![1])]
        );
        assert_eq!(attrs("BODY[]").len(), 1);
        assert!(parse_fetch_attrs(&mut Cursor::new(b"BODY[MIME]")).is_err());
        assert!(parse_fetch_attrs(&mut Cursor::new(b"(FLAGS")).is_err());
    }
}
