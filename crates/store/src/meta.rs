//! What IMAP needs of a message again and again, parsed once at delivery with
//! mail-parser: the envelope, the MIME tree with byte offsets of every part,
//! and the text that SEARCH looks in. Stored as JSON beside the message.
//!
//! Offsets are into the message as served (trace headers + stored bytes).

use mail_parser::{HeaderName, HeaderValue, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

/// An address as IMAP's ENVELOPE carries it (RFC 9051 §7.5.2). A group is
/// written as a start marker (`mailbox` = group name, `host` = None) and an
/// end marker (all None), as in RFC 9051.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: Option<String>,
    /// The source route (`@a.test,@b.test`) of an obsolete route address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adl: Option<String>,
    pub mailbox: Option<String>,
    pub host: Option<String>,
}

/// The envelope: raw (unfolded, not decoded) header values as IMAP sends them,
/// and parsed address lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub date: Option<String>,
    pub subject: Option<String>,
    pub from: Vec<Address>,
    pub sender: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub in_reply_to: Option<String>,
    pub message_id: Option<String>,
}

/// Content-Disposition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    pub kind: String,
    pub params: Vec<(String, String)>,
}

/// One node of the MIME tree (BODYSTRUCTURE).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyPart {
    /// Lowercase, e.g. `text`.
    pub media_type: String,
    /// Lowercase, e.g. `plain`.
    pub media_subtype: String,
    pub params: Vec<(String, String)>,
    pub id: Option<String>,
    pub description: Option<String>,
    /// Content-Transfer-Encoding, uppercase; `7BIT` when absent.
    pub encoding: String,
    /// Octets of the (encoded) body.
    pub size: u64,
    /// Lines of the body, for `text/*` and `message/rfc822`.
    pub lines: u64,
    pub md5: Option<String>,
    pub disposition: Option<Disposition>,
    pub language: Vec<String>,
    pub location: Option<String>,
    /// Offset of the part's first header line.
    pub header_offset: u64,
    /// Offset of the part's body (after the blank line).
    pub body_offset: u64,
    /// Offset one past the part's body.
    pub end_offset: u64,
    /// Children of a multipart.
    pub parts: Vec<BodyPart>,
    /// The embedded message of a `message/rfc822` part.
    pub message: Option<Box<MessageMeta>>,
}

impl BodyPart {
    pub fn is_multipart(&self) -> bool {
        self.media_type == "multipart"
    }

    pub fn is_message(&self) -> bool {
        self.media_type == "message"
            && (self.media_subtype == "rfc822" || self.media_subtype == "global")
    }
}

/// Envelope and MIME tree of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    pub envelope: Envelope,
    pub body: BodyPart,
}

/// Everything derived from a message at delivery.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub meta: MessageMeta,
    /// The top-level header block as text (lossy UTF-8), for header SEARCH.
    pub header_text: String,
    /// Decoded text of the text parts, for BODY/TEXT SEARCH.
    pub body_text: String,
    /// The header fields, for header SEARCH keys (see [`header_fields`]).
    pub search_fields: String,
}

/// The header fields of a header block, one per line as `name:value` (name
/// in lowercase, value unfolded: RFC 5322 §2.2.3), followed by a second
/// `name:value` line with the decoded value when it has RFC 2047 encoded
/// words, and for address fields one with the addresses as ENVELOPE parses
/// them (`Name <local@host>`, comments and routes gone). SEARCH matches a
/// field if any line of it matches.
pub fn header_fields(header_text: &str) -> String {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in header_text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        if line.starts_with([' ', '\t'])
            && let Some((_, value)) = fields.last_mut()
        {
            value.push_str(content);
            continue;
        }
        // A broken line (no colon, or a continuation before any field) is
        // kept as a field with no name, with its continuations: SEARCH TEXT
        // reads the whole header block, and the store's prefilter on these
        // fields must never drop a message that the exact check would match.
        let (name, value) = content
            .split_once(':')
            .map_or((String::new(), content), |(name, value)| {
                (name.trim().to_ascii_lowercase(), value)
            });
        fields.push((name, value.to_string()));
    }
    let mut out = String::with_capacity(header_text.len() + 64);
    for (name, value) in &fields {
        // One line per field: line breaks inside a value would start a new one.
        let one_line = |v: &str| v.replace(['\r', '\n'], " ");
        out.push_str(&format!("{name}:{}\n", one_line(value)));
        if value.contains("=?") {
            let text = format!("Subject:{value}\r\n\r\n");
            if let Some(decoded) = MessageParser::default()
                .parse_headers(text.as_bytes())
                .and_then(|m| m.subject().map(str::to_string))
            {
                out.push_str(&format!("{name}:{}\n", one_line(&decoded)));
            }
        }
        if matches!(
            name.as_str(),
            "from" | "to" | "cc" | "bcc" | "sender" | "reply-to"
        ) {
            let parsed: Vec<String> = crate::address::parse_address_list(value)
                .iter()
                .filter_map(|a| {
                    let (mailbox, host) = (a.mailbox.as_deref()?, a.host.as_deref()?);
                    Some(match &a.name {
                        Some(name) => format!("{name} <{mailbox}@{host}>"),
                        None => format!("<{mailbox}@{host}>"),
                    })
                })
                .collect();
            let parsed = one_line(&parsed.join(", "));
            if !parsed.is_empty() && parsed != value.trim() {
                out.push_str(&format!("{name}:{parsed}\n"));
            }
        }
    }
    out
}

/// The values of field `name` (any case) in [`header_fields`] text.
pub fn field_values<'a>(fields: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    let name = name.to_ascii_lowercase();
    fields.lines().filter_map(move |line| {
        let (field, value) = line.split_once(':')?;
        (field == name).then_some(value)
    })
}

/// Nested messages deeper than this are treated as opaque bytes.
const MAX_DEPTH: usize = 8;
/// Parts nested in parts (multiparts and messages together) deeper than
/// this are kept without their children. Anyone can deliver a message that
/// nests thousands of levels; the tree built here, its JSON (serde_json
/// reads at most 128 levels back) and every walk over it stay bounded.
pub const MAX_NESTING: usize = 32;
/// Parts kept in one message's tree, nested messages included; the rest
/// are left out. Broken MIME can make mail-parser name a part as a child
/// of several parts (or of itself): without a count, 2 KB of such nesting
/// made a tree of twenty million parts.
pub const MAX_PARTS: usize = 10_000;
/// Search text kept per message (the rest is not searchable by body).
const MAX_BODY_TEXT: usize = 1 << 20;

/// Parses a whole message. Never fails: unreadable MIME becomes a single
/// `text/plain` part covering the bytes, as RFC 9051 asks of servers.
pub fn parse(raw: &[u8]) -> Parsed {
    let mut parts_left = MAX_PARTS;
    let meta = parse_meta(raw, 0, 0, 0, &mut parts_left);
    let header_end = meta.body.body_offset.min(raw.len() as u64) as usize;
    let header_text = String::from_utf8_lossy(&raw[..header_end]).into_owned();
    let mut body_text = String::new();
    if let Some(message) = MessageParser::default().parse(raw) {
        for index in 0..message.parts.len() {
            if let Some(text) = message.body_text(index) {
                if body_text.len() + text.len() > MAX_BODY_TEXT {
                    break;
                }
                body_text.push_str(&text);
                body_text.push('\n');
            }
        }
        for index in 0..message.parts.len() {
            if let Some(part) = message.parts.get(index)
                && let PartType::Html(html) = &part.body
            {
                if message.text_body.iter().any(|id| *id as usize == index) {
                    continue;
                }
                if body_text.len() + html.len() > MAX_BODY_TEXT {
                    break;
                }
                body_text.push_str(html);
                body_text.push('\n');
            }
        }
    }
    // PostgreSQL text cannot hold NUL (SQLite can): both keep U+FFFD in its
    // place, so a message with NUL in its header or text is stored, and
    // searched alike, on either backend. No SEARCH string can name a NUL.
    let header_text = header_text.replace('\0', "\u{FFFD}");
    let body_text = body_text.replace('\0', "\u{FFFD}");
    let search_fields = header_fields(&header_text);
    Parsed {
        meta,
        header_text,
        body_text,
        search_fields,
    }
}

/// `parts_left` counts down the parts the whole tree may still take.
fn parse_meta(
    raw: &[u8],
    base: u64,
    depth: usize,
    nesting: usize,
    parts_left: &mut usize,
) -> MessageMeta {
    let Some(message) = MessageParser::default().parse(raw) else {
        return MessageMeta {
            envelope: Envelope::default(),
            body: opaque_text(raw, base),
        };
    };
    let envelope = envelope_of(raw, &message.parts[0].headers);
    // Each part of this parse is visited once, from a parent before it in
    // the message: a child list naming a part again cannot repeat or loop.
    let mut visited = vec![false; message.parts.len()];
    let body = part_tree(
        &message,
        0,
        raw,
        base,
        depth,
        nesting,
        &mut Walk {
            visited: &mut visited,
            parts_left,
        },
    );
    MessageMeta { envelope, body }
}

/// What a walk over one parse shares: parts already in the tree, and the
/// parts the whole message may still take.
struct Walk<'a> {
    visited: &'a mut [bool],
    parts_left: &'a mut usize,
}

fn opaque_text(raw: &[u8], base: u64) -> BodyPart {
    let body_start = find_body_start(raw);
    BodyPart {
        media_type: "text".into(),
        media_subtype: "plain".into(),
        params: vec![("charset".into(), "us-ascii".into())],
        encoding: "7BIT".into(),
        size: (raw.len() - body_start) as u64,
        lines: count_lines(&raw[body_start..]),
        header_offset: base,
        body_offset: base + body_start as u64,
        end_offset: base + raw.len() as u64,
        ..BodyPart::default()
    }
}

fn find_body_start(raw: &[u8]) -> usize {
    if raw.starts_with(b"\r\n") {
        return 2;
    }
    raw.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(raw.len())
}

fn count_lines(body: &[u8]) -> u64 {
    let newlines = body.iter().filter(|b| **b == b'\n').count() as u64;
    if body.last().is_some_and(|b| *b != b'\n') {
        newlines + 1
    } else {
        newlines
    }
}

fn part_tree(
    message: &mail_parser::Message<'_>,
    index: usize,
    raw: &[u8],
    base: u64,
    depth: usize,
    nesting: usize,
    walk: &mut Walk<'_>,
) -> BodyPart {
    let Some(part) = message.parts.get(index) else {
        return opaque_text(raw, base);
    };
    if let Some(seen) = walk.visited.get_mut(index) {
        *seen = true;
    }
    *walk.parts_left = walk.parts_left.saturating_sub(1);
    let (media_type, media_subtype, params) = match part.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype()
                .map(str::to_ascii_lowercase)
                .unwrap_or_else(|| default_subtype(ct.ctype())),
            ct.attributes()
                .unwrap_or_default()
                .iter()
                .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
                .collect(),
        ),
        None => {
            // RFC 2046 §5.1.5: parts of multipart/digest default to message/rfc822.
            if matches!(part.body, PartType::Message(_)) {
                ("message".into(), "rfc822".into(), Vec::new())
            } else {
                (
                    "text".into(),
                    "plain".into(),
                    vec![("charset".into(), "us-ascii".into())],
                )
            }
        }
    };
    let header_offset = part.offset_header as u64;
    let body_offset = (part.offset_body as u64).min(raw.len() as u64);
    let end_offset = (part.offset_end as u64).clamp(body_offset, raw.len() as u64);
    let body_bytes = &raw[body_offset as usize..end_offset as usize];
    let mut node = BodyPart {
        media_type,
        media_subtype,
        params,
        id: part.content_id().map(|s| format!("<{s}>")),
        description: part.content_description().map(str::to_string),
        encoding: part
            .content_transfer_encoding()
            .map(str::to_ascii_uppercase)
            .unwrap_or_else(|| "7BIT".into()),
        size: body_bytes.len() as u64,
        lines: 0,
        md5: None,
        disposition: part.content_disposition().map(|d| Disposition {
            kind: d.ctype().to_ascii_lowercase(),
            params: d
                .attributes()
                .unwrap_or_default()
                .iter()
                .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
                .collect(),
        }),
        language: match part.content_language() {
            HeaderValue::Text(t) => vec![t.to_string()],
            HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
            _ => Vec::new(),
        },
        location: part.content_location().map(str::to_string),
        header_offset: base + header_offset,
        body_offset: base + body_offset,
        end_offset: base + end_offset,
        parts: Vec::new(),
        message: None,
    };
    if node.media_type == "text" {
        node.lines = count_lines(body_bytes);
    }
    match &part.body {
        PartType::Multipart(children) => {
            node.media_type = "multipart".into();
            if nesting < MAX_NESTING {
                for child in children.iter().map(|c| *c as usize) {
                    let fresh = child > index && walk.visited.get(child) == Some(&false);
                    if !fresh || *walk.parts_left == 0 {
                        continue;
                    }
                    let tree = part_tree(message, child, raw, base, depth, nesting + 1, walk);
                    node.parts.push(tree);
                }
            }
        }
        _ if node.is_message()
            && node.encoding != "BASE64"
            && node.encoding != "QUOTED-PRINTABLE" =>
        {
            node.lines = count_lines(body_bytes);
            if depth < MAX_DEPTH && nesting < MAX_NESTING && *walk.parts_left > 0 {
                let nested = parse_meta(
                    body_bytes,
                    base + body_offset,
                    depth + 1,
                    nesting + 1,
                    walk.parts_left,
                );
                node.message = Some(Box::new(nested));
            }
        }
        _ => {}
    }
    node
}

fn default_subtype(media_type: &str) -> String {
    if media_type.eq_ignore_ascii_case("text") {
        "plain".into()
    } else {
        "octet-stream".into()
    }
}

fn envelope_of(raw: &[u8], headers: &[mail_parser::Header<'_>]) -> Envelope {
    let raw_value = |name: HeaderName<'_>| -> Option<String> {
        headers.iter().find(|h| h.name == name).map(|h| {
            let start = (h.offset_start as usize).min(raw.len());
            let end = (h.offset_end as usize).clamp(start, raw.len());
            unfold(&String::from_utf8_lossy(&raw[start..end]))
        })
    };
    // Parsed from the raw value, not mail-parser's reading of it: groups,
    // comments and source routes as ENVELOPE needs them.
    let addresses = |name: HeaderName<'_>| -> Vec<Address> {
        raw_value(name)
            .map(|value| crate::address::parse_address_list(&value))
            .unwrap_or_default()
    };
    let from = addresses(HeaderName::From);
    let sender = match addresses(HeaderName::Sender) {
        list if list.is_empty() => from.clone(),
        list => list,
    };
    let reply_to = match addresses(HeaderName::ReplyTo) {
        list if list.is_empty() => from.clone(),
        list => list,
    };
    Envelope {
        date: raw_value(HeaderName::Date),
        subject: raw_value(HeaderName::Subject),
        from,
        sender,
        reply_to,
        to: addresses(HeaderName::To),
        cc: addresses(HeaderName::Cc),
        bcc: addresses(HeaderName::Bcc),
        in_reply_to: raw_value(HeaderName::InReplyTo),
        message_id: raw_value(HeaderName::MessageId),
    }
}

fn unfold(value: &str) -> String {
    value
        .replace("\r\n", "")
        .replace('\n', "")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {

    /// Found by the imap_fetch_encode fuzz target: a message/rfc822 part
    /// whose inner multipart is never closed reaches a debug_assert! inside
    /// mail-parser. The workspace turns that crate's debug assertions off
    /// (Cargo.toml), so every build parses it as the release build does.
    /// Found by the imap_fetch_encode fuzz target: 2.3 KB of nested
    /// message/rfc822 and multipart parts made a tree of millions of parts
    /// (over 2 GB to parse and encode).
    #[test]
    fn nested_messages_make_a_tree_bounded_by_the_message_size() {
        fn count(part: &BodyPart) -> usize {
            1 + part.parts.iter().map(count).sum::<usize>()
                + part.message.as_ref().map_or(0, |m| count(&m.body))
        }
        let raw = include_bytes!("../testdata/nested-rfc822-blowup.eml");
        let parsed = parse(raw);
        let parts = count(&parsed.meta.body);
        assert!(parts <= MAX_PARTS, "{parts} parts from {} bytes", raw.len());
        let json = serde_json::to_string(&parsed.meta).unwrap();
        let back: Result<MessageMeta, _> = serde_json::from_str(&json);
        assert!(back.is_ok(), "{:?} {}", back.err(), json.len());
        assert!(parsed.meta.body.is_multipart(), "{:?}", parsed.meta.body);
    }

    #[test]
    fn an_unclosed_nested_multipart_parses_without_a_panic() {
        let raw = include_bytes!("../testdata/unclosed-nested-multipart.eml");
        let parsed = parse(raw);
        assert!(parsed.meta.body.is_multipart(), "{:?}", parsed.meta.body);
    }

    /// Found by the imap_search fuzz target: a header line without a colon
    /// (and its continuations) was left out of the fields, so the store's
    /// prefilter dropped messages that SEARCH TEXT matches in the header.
    #[test]
    fn header_lines_without_a_colon_stay_in_the_fields() {
        let fields = header_fields("From: a@b\r\nbroken alpha line\r\n beta\r\nTo: c@d\r\n");
        assert!(fields.contains("broken alpha line beta"), "{fields}");
        assert!(fields.contains("from: a@b"), "{fields}");
        assert!(fields.contains("to: c@d"), "{fields}");
    }

    use super::*;

    /// Found by the imap_search fuzz target: continuation lines before the
    /// first field were dropped, so the prefilter lost text SEARCH TEXT finds.
    #[test]
    fn continuation_lines_before_the_first_field_stay_in_the_fields() {
        let fields = header_fields(" fort\r\n dXT alPhaport\r\nTo: c@d\r\n");
        assert!(fields.contains("fort dXT alPhaport"), "{fields}");
        assert!(fields.contains("to: c@d"), "{fields}");
    }

    #[test]
    fn envelope_keeps_raw_subject_and_parses_addresses() {
        let raw = b"From: Alice <alice@example.test>\r\nTo: bob@example.test, \"Carol C\" <carol@example.test>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n folded\r\nMessage-ID: <1@example.test>\r\n\r\nHello\r\n";
        let parsed = parse(raw);
        let env = &parsed.meta.envelope;
        assert_eq!(env.subject.as_deref(), Some("=?utf-8?q?caf=C3=A9?= folded"));
        assert_eq!(env.from[0].name.as_deref(), Some("Alice"));
        assert_eq!(env.from[0].mailbox.as_deref(), Some("alice"));
        assert_eq!(env.from[0].host.as_deref(), Some("example.test"));
        assert_eq!(env.sender, env.from);
        assert_eq!(env.to.len(), 2);
        assert_eq!(env.message_id.as_deref(), Some("<1@example.test>"));
        assert_eq!(parsed.meta.body.media_type, "text");
        assert_eq!(parsed.meta.body.size, 7);
        assert_eq!(parsed.meta.body.lines, 1);
        assert!(parsed.body_text.contains("Hello"));
    }

    #[test]
    fn multipart_offsets_point_at_each_part() {
        let raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\none\r\n--x\r\nContent-Type: text/html\r\n\r\n<b>two</b>\r\n--x--\r\n";
        let parsed = parse(raw);
        let body = &parsed.meta.body;
        assert!(body.is_multipart());
        assert_eq!(body.media_subtype, "mixed");
        assert_eq!(body.parts.len(), 2);
        let first = &body.parts[0];
        assert_eq!(
            &raw[first.body_offset as usize..first.end_offset as usize],
            b"one"
        );
        let second = &body.parts[1];
        assert_eq!(second.media_subtype, "html");
        assert_eq!(
            &raw[second.body_offset as usize..second.end_offset as usize],
            b"<b>two</b>"
        );
    }

    #[test]
    fn garbage_never_panics() {
        for raw in [
            &b""[..],
            b"\r\n",
            b"no header at all",
            b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
        ] {
            let _ = parse(raw);
        }
    }

    fn tree_depth(part: &BodyPart) -> usize {
        let children = part.parts.iter().map(tree_depth).max().unwrap_or(0);
        let nested = part.message.as_ref().map_or(0, |m| tree_depth(&m.body));
        1 + children.max(nested)
    }

    #[test]
    fn deeply_nested_parts_are_kept_to_a_bounded_depth() {
        let mut raw = String::from("Subject: nested\r\n");
        for level in 0..10_000 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n"
            ));
        }
        raw.push_str("Content-Type: text/plain\r\n\r\ninnermost\r\n");
        for level in (0..10_000).rev() {
            raw.push_str(&format!("--b{level}--\r\n"));
        }
        let parsed = parse(raw.as_bytes());
        assert!(tree_depth(&parsed.meta.body) <= MAX_NESTING + 1);
        assert_eq!(parsed.meta.envelope.subject.as_deref(), Some("nested"));
        // The stored form reads back.
        let json = serde_json::to_string(&parsed.meta).unwrap();
        let back: MessageMeta = serde_json::from_str(&json).unwrap();
        assert_eq!(back, parsed.meta);
        let mut raw = String::from("Subject: nested\r\n");
        for level in 0..10_000 {
            raw.push_str(&format!(
                "Content-Type: message/rfc822\r\n\r\nSubject: level {level}\r\n"
            ));
        }
        raw.push_str("\r\ninnermost\r\n");
        let parsed = parse(raw.as_bytes());
        assert!(tree_depth(&parsed.meta.body) <= MAX_NESTING + 1);
        let json = serde_json::to_string(&parsed.meta).unwrap();
        let back: MessageMeta = serde_json::from_str(&json).unwrap();
        assert_eq!(back, parsed.meta);
    }
}
