//! Response encoding in one place: strings (quoted or literal), mailbox
//! names, flag lists, dates, ENVELOPE and BODYSTRUCTURE (RFC 9051 §7.5.2).

use crate::mutf7;
use crate::parse::{civil_from_days, month_name};
use pillarbox_store::meta::{Address, BodyPart, Envelope};
use pillarbox_store::{Flags, SystemFlag};

/// Appends a string as a quoted string when it can be one, else a literal.
/// Non-ASCII goes in a quoted string only when `utf8` (IMAP4rev2 / UTF-8 names).
pub fn string(out: &mut Vec<u8>, value: &[u8], utf8: bool) {
    let quotable = value.len() <= 1024
        && value
            .iter()
            .all(|b| !matches!(b, b'\r' | b'\n' | 0) && (utf8 || *b < 0x80));
    if quotable {
        out.push(b'"');
        for b in value {
            if matches!(b, b'"' | b'\\') {
                out.push(b'\\');
            }
            out.push(*b);
        }
        out.push(b'"');
    } else {
        literal(out, value);
    }
}

/// Appends a literal. RFC 9051 §4.3: a literal holds no NUL (only a
/// literal8, RFC 3516, may), so a NUL in a header value or a message sent as
/// BODY[…] goes out as 0x80, as Dovecot does: the size stays the one
/// RFC822.SIZE and BODY[…]<partial> count with; BINARY keeps the octets.
pub fn literal(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", value.len()).as_bytes());
    let start = out.len();
    out.extend_from_slice(value);
    if out[start..].contains(&0) {
        for b in &mut out[start..] {
            if *b == 0 {
                *b = 0x80;
            }
        }
    }
}

/// Appends a literal8 (RFC 3516 §4.2, `~{N}`), which may hold any octet.
pub fn literal8(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'~');
    out.extend_from_slice(format!("{{{}}}\r\n", value.len()).as_bytes());
    out.extend_from_slice(value);
}

pub fn nstring(out: &mut Vec<u8>, value: Option<&str>, utf8: bool) {
    match value {
        Some(v) => string(out, v.as_bytes(), utf8),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A mailbox name as the client's mode wants it: modified UTF-7 for
/// IMAP4rev1, UTF-8 for IMAP4rev2.
pub fn mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        string(out, name.as_bytes(), true);
    } else {
        string(out, mutf7::encode(name).as_bytes(), false);
    }
}

/// `(\Seen \Flagged keyword)`, with `\Recent` when asked.
pub fn flags(out: &mut Vec<u8>, flags: &Flags, recent: bool) {
    out.push(b'(');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b' ');
        }
        first = false;
    };
    for flag in flags.system_flags() {
        sep(out);
        out.extend_from_slice(flag.as_imap().as_bytes());
    }
    for keyword in flags.keywords() {
        sep(out);
        out.extend_from_slice(keyword.as_bytes());
    }
    if recent {
        sep(out);
        out.extend_from_slice(b"\\Recent");
    }
    out.push(b')');
}

/// The flags a mailbox knows, for SELECT's FLAGS and PERMANENTFLAGS.
pub fn system_flag_list() -> String {
    let names: Vec<&str> = SystemFlag::ALL.iter().map(|f| f.as_imap()).collect();
    names.join(" ")
}

/// `"17-Jul-1996 02:44:25 +0000"` (INTERNALDATE, always in UTC).
pub fn date_time(unix: i64) -> String {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "\"{:02}-{}-{:04} {:02}:{:02}:{:02} +0000\"",
        d,
        month_name(m),
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn address_list(out: &mut Vec<u8>, list: &[Address], utf8: bool) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        nstring(out, a.name.as_deref(), utf8);
        out.push(b' ');
        nstring(out, a.adl.as_deref(), utf8);
        out.push(b' ');
        nstring(out, a.mailbox.as_deref(), utf8);
        out.push(b' ');
        nstring(out, a.host.as_deref(), utf8);
        out.push(b')');
    }
    out.push(b')');
}

pub fn envelope(out: &mut Vec<u8>, e: &Envelope, utf8: bool) {
    out.push(b'(');
    nstring(out, e.date.as_deref(), utf8);
    out.push(b' ');
    nstring(out, e.subject.as_deref(), utf8);
    for list in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
        out.push(b' ');
        address_list(out, list, utf8);
    }
    out.push(b' ');
    nstring(out, e.in_reply_to.as_deref(), utf8);
    out.push(b' ');
    nstring(out, e.message_id.as_deref(), utf8);
    out.push(b')');
}

fn params(out: &mut Vec<u8>, params: &[(String, String)], utf8: bool) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, name.as_bytes(), utf8);
        out.push(b' ');
        string(out, value.as_bytes(), utf8);
    }
    out.push(b')');
}

/// Parts nested in parts (multipart or message/rfc822) described, at most.
/// Anyone can send a message whose MIME tree nests thousands of levels;
/// the description stops here: a part this deep is described as opaque
/// data (`APPLICATION/OCTET-STREAM`), still fetchable by its section number.
pub const MAX_BODY_DEPTH: usize = 32;

/// BODY (`extended` = false) or BODYSTRUCTURE (`extended` = true) of a part.
pub fn body_structure(out: &mut Vec<u8>, part: &BodyPart, extended: bool, utf8: bool) {
    part_structure(out, part, extended, utf8, 0);
}

fn part_structure(out: &mut Vec<u8>, part: &BodyPart, extended: bool, utf8: bool, depth: usize) {
    let opaque = depth >= MAX_BODY_DEPTH && (part.is_multipart() || part.is_message());
    out.push(b'(');
    if part.is_multipart() && !part.parts.is_empty() && !opaque {
        for child in &part.parts {
            part_structure(out, child, extended, utf8, depth + 1);
        }
        out.push(b' ');
        string(
            out,
            part.media_subtype.to_ascii_uppercase().as_bytes(),
            utf8,
        );
        if extended {
            out.push(b' ');
            params(out, &part.params, utf8);
            extension(out, part, utf8);
        }
    } else {
        let (media_type, media_subtype) = if opaque {
            ("APPLICATION".to_string(), "OCTET-STREAM".to_string())
        } else if part.is_multipart() {
            // A multipart with no parts is served as the text it is.
            ("TEXT".to_string(), "PLAIN".to_string())
        } else {
            (
                part.media_type.to_ascii_uppercase(),
                part.media_subtype.to_ascii_uppercase(),
            )
        };
        string(out, media_type.as_bytes(), utf8);
        out.push(b' ');
        string(out, media_subtype.as_bytes(), utf8);
        out.push(b' ');
        if opaque {
            out.extend_from_slice(b"NIL");
        } else {
            params(out, &part.params, utf8);
        }
        out.push(b' ');
        nstring(out, part.id.as_deref(), utf8);
        out.push(b' ');
        nstring(out, part.description.as_deref(), utf8);
        out.push(b' ');
        string(out, part.encoding.as_bytes(), utf8);
        out.extend_from_slice(format!(" {}", part.size).as_bytes());
        if opaque {
            // Nothing more is said of what is inside.
        } else if part.is_message() {
            out.push(b' ');
            match part.message.as_deref() {
                Some(nested) => {
                    envelope(out, &nested.envelope, utf8);
                    out.push(b' ');
                    part_structure(out, &nested.body, extended, utf8, depth + 1);
                }
                None => {
                    envelope(out, &Envelope::default(), utf8);
                    out.push(b' ');
                    part_structure(out, &BodyPart::default(), extended, utf8, depth + 1);
                }
            }
            out.extend_from_slice(format!(" {}", part.lines).as_bytes());
        } else if part.media_type == "text" {
            out.extend_from_slice(format!(" {}", part.lines).as_bytes());
        }
        if extended {
            out.push(b' ');
            nstring(out, part.md5.as_deref(), utf8);
            extension(out, part, utf8);
        }
    }
    out.push(b')');
}

/// body-ext: disposition, language, location.
fn extension(out: &mut Vec<u8>, part: &BodyPart, utf8: bool) {
    out.push(b' ');
    match &part.disposition {
        Some(d) => {
            out.push(b'(');
            string(out, d.kind.to_ascii_uppercase().as_bytes(), utf8);
            out.push(b' ');
            params(out, &d.params, utf8);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match part.language.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        [one] => string(out, one.as_bytes(), utf8),
        many => {
            out.push(b'(');
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, l.as_bytes(), utf8);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    nstring(out, part.location.as_deref(), utf8);
}

#[cfg(test)]
mod tests {

    /// Found by the imap_fetch_encode fuzz target: a NUL in a header value
    /// went out inside a plain literal, which the grammar forbids.
    #[test]
    fn a_plain_literal_never_carries_nul_but_a_literal8_keeps_it() {
        let mut out = Vec::new();
        string(&mut out, b"\0nul", false);
        assert_eq!(out, b"{4}\r\n\x80nul");
        let mut out = Vec::new();
        literal8(&mut out, b"a\0b");
        assert_eq!(out, b"~{3}\r\na\0b");
    }

    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings() {
        assert_eq!(s(|o| string(o, b"a \"b\"", false)), "\"a \\\"b\\\"\"");
        assert_eq!(s(|o| string(o, b"a\r\nb", false)), "{4}\r\na\r\nb");
        assert_eq!(s(|o| string(o, "ü".as_bytes(), false)), "{2}\r\nü");
        assert_eq!(s(|o| string(o, "ü".as_bytes(), true)), "\"ü\"");
        assert_eq!(s(|o| mailbox(o, "Entwürfe", false)), "\"Entw&APw-rfe\"");
    }

    #[test]
    fn internal_date() {
        assert_eq!(date_time(837596665), "\"17-Jul-1996 09:44:25 +0000\"");
        assert_eq!(date_time(0), "\"01-Jan-1970 00:00:00 +0000\"");
    }

    #[test]
    fn simple_text_body_structure() {
        let part = BodyPart {
            media_type: "text".into(),
            media_subtype: "plain".into(),
            params: vec![("charset".into(), "us-ascii".into())],
            encoding: "7BIT".into(),
            size: 3028,
            lines: 92,
            ..BodyPart::default()
        };
        // RFC 9051 §7.5.2 example.
        assert_eq!(
            s(|o| body_structure(o, &part, false, false)),
            "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 3028 92)"
        );
    }

    #[test]
    fn deep_trees_are_described_to_a_bounded_depth() {
        let leaf = BodyPart {
            media_type: "text".into(),
            media_subtype: "plain".into(),
            encoding: "7BIT".into(),
            ..BodyPart::default()
        };
        let mut part = leaf;
        for level in 0..200 {
            part = if level % 2 == 0 {
                BodyPart {
                    media_type: "multipart".into(),
                    media_subtype: "mixed".into(),
                    parts: vec![part],
                    ..BodyPart::default()
                }
            } else {
                BodyPart {
                    media_type: "message".into(),
                    media_subtype: "rfc822".into(),
                    encoding: "7BIT".into(),
                    message: Some(Box::new(pillarbox_store::meta::MessageMeta {
                        envelope: Envelope::default(),
                        body: part,
                    })),
                    ..BodyPart::default()
                }
            };
        }
        for extended in [false, true] {
            let text = s(|o| body_structure(o, &part, extended, false));
            let mut depth = 0i64;
            let mut deepest = 0;
            for b in text.bytes() {
                match b {
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    _ => {}
                }
                deepest = deepest.max(depth);
            }
            assert_eq!(depth, 0, "balanced: {text}");
            // Each level opens its own parenthesis, an envelope a few more.
            assert!(deepest <= MAX_BODY_DEPTH as i64 + 4, "{deepest}");
            assert!(text.contains("\"APPLICATION\" \"OCTET-STREAM\""), "{text}");
        }
    }
}
