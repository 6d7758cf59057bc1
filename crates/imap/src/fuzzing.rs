//! Ways in for the fuzz targets under `fuzz/` at the top of the repository:
//! the crate's own framing rules, LIST matcher, SEARCH evaluation and FETCH
//! encoders, run over bytes alone (no connection, no store), so that each
//! target exercises the code the server runs and stays a few lines long.
//! Nothing in the server calls these.

use crate::command::fetch::{binary, section_bytes};
use crate::encode;
use crate::framing::{MAX_LINE, MAX_LITERALS, MAX_OTHER_LITERAL, is_append, trailing_literal};
use crate::parse::{SearchKey, Section, SectionText};
use crate::selected::Selected;
use pillarbox_store::meta::{self, BodyPart};
use pillarbox_store::{
    AccountId, Flags, Mailbox, MailboxId, MessageEntry, MessageId, ModSeq, SystemFlag, TextFilter,
    Uid, UidValidity,
};
use std::collections::BTreeSet;

/// The APPEND literal limit the framing is run with (the default APPENDLIMIT).
pub const APPEND_LIMIT: u64 = 50 << 20;

/// Reads one command off `input` as [`crate::framing::read_command`] reads it
/// off a connection (lines, then the announced literals inline, under the
/// same limits), and returns it with the bytes after it. `None` where the
/// server would refuse the command before parsing it, or wait for more input.
pub fn frame(input: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut command = Vec::new();
    let mut rest = input;
    let mut literals = 0;
    loop {
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .map_or(rest.len(), |p| p + 1);
        let (line, after) = rest.split_at(end);
        if line.len() > MAX_LINE {
            return None;
        }
        command.extend_from_slice(line);
        rest = after;
        let Some((size, _)) = trailing_literal(line) else {
            return Some((command, rest));
        };
        literals += 1;
        let limit = if is_append(&command) {
            APPEND_LIMIT
        } else {
            MAX_OTHER_LITERAL
        };
        if literals > MAX_LITERALS || size > limit || size > rest.len() as u64 {
            return None;
        }
        let (literal, after) = rest.split_at(size as usize);
        command.extend_from_slice(literal);
        rest = after;
    }
}

/// Whether LIST/LSUB pattern `pattern` matches mailbox name `name`.
pub fn list_matches(pattern: &str, name: &str) -> bool {
    crate::command::list::ListPattern::new(pattern).matches(name)
}

/// What SEARCH decided about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchOutcome {
    /// Whether the message matches the key.
    pub matches: bool,
    /// The condition the store checks first (`None`: every message is read).
    pub prefilter: Option<TextFilter>,
    /// The texts the store keeps for the message, which SEARCH reads.
    pub header: String,
    pub body: String,
    pub fields: String,
}

/// Evaluates `key` against `message`, delivered as the only message of a
/// selected mailbox with the given flags and arrival time, as IMAP4rev2
/// (`rev2`) or IMAP4rev1 evaluates it.
pub fn search(
    key: &SearchKey,
    message: &[u8],
    flags: Flags,
    internal_date: i64,
    rev2: bool,
) -> SearchOutcome {
    let parsed = meta::parse(message);
    let entry = MessageEntry {
        uid: Uid(7),
        message: MessageId(1),
        modseq: ModSeq(1),
        flags,
        size: message.len() as u64,
        internal_date,
        downloaded: false,
        saved_at: Some(internal_date),
    };
    let selected = Selected {
        mailbox: Mailbox {
            id: MailboxId(1),
            account: AccountId(1),
            name: pillarbox_store::INBOX.to_string(),
            special_use: None,
            uid_validity: UidValidity(1),
            uid_next: Uid(8),
            highest_modseq: ModSeq(1),
        },
        read_only: true,
        messages: vec![entry.clone()],
        modseq: ModSeq(1),
        gone: BTreeSet::new(),
        recent: vec![(Uid(7), Uid(8))],
        keywords: BTreeSet::new(),
        saved: vec![Uid(7)],
        told_exists: 1,
    };
    let matches = crate::command::search::matches_texts(
        &selected,
        rev2,
        key,
        1,
        &entry,
        &parsed.header_text,
        &parsed.body_text,
        &parsed.search_fields,
    );
    SearchOutcome {
        matches,
        prefilter: crate::command::search::prefilter(key),
        header: parsed.header_text,
        body: parsed.body_text,
        fields: parsed.search_fields,
    }
}

/// Flags from one byte (a bit per system flag), for building messages.
pub fn flags_from_bits(bits: u8) -> Flags {
    let mut flags = Flags::new();
    for (i, flag) in SystemFlag::ALL.iter().enumerate() {
        if bits & (1 << i) != 0 {
            flags.insert(*flag);
        }
    }
    if bits & 0x80 != 0 {
        flags.insert_keyword("$Forwarded");
    }
    flags
}

/// Most parts the FETCH encoding walks in one message.
const MAX_PARTS: usize = 64;

/// The FETCH response for `message` with ENVELOPE, BODYSTRUCTURE, BODY, and
/// for each of its parts (up to 64) BINARY, BINARY.SIZE, BODY[part],
/// BODY[part.MIME] and BODY[part.HEADER], written as the server writes them,
/// in IMAP4rev2 (`utf8`) or IMAP4rev1 form. One line ending in CRLF, with
/// literals inline.
pub fn fetch_response(message: &[u8], utf8: bool) -> Vec<u8> {
    let parsed = meta::parse(message);
    let meta = &parsed.meta;
    let mut out = b"* 1 FETCH (ENVELOPE ".to_vec();
    encode::envelope(&mut out, &meta.envelope, utf8);
    out.extend_from_slice(b" BODYSTRUCTURE ");
    encode::body_structure(&mut out, &meta.body, true, utf8);
    out.extend_from_slice(b" BODY ");
    encode::body_structure(&mut out, &meta.body, false, utf8);
    for path in part_paths(&meta.body) {
        let name = path
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".");
        match binary(message, meta, &path) {
            Ok(Some(data)) => {
                out.extend_from_slice(format!(" BINARY[{name}] ").as_bytes());
                // RFC 3516 §4.2: binary data with NUL goes in a literal8.
                if data.contains(&0) {
                    encode::literal8(&mut out, &data);
                } else {
                    encode::literal(&mut out, &data);
                }
                out.extend_from_slice(format!(" BINARY.SIZE[{name}] {}", data.len()).as_bytes());
            }
            Ok(None) => out.extend_from_slice(format!(" BINARY[{name}] NIL").as_bytes()),
            // The server answers NO [UNKNOWN-CTE] for the whole FETCH.
            Err(()) => {}
        }
        for (text, label) in [
            (None, ""),
            (Some(SectionText::Mime), ".MIME"),
            (Some(SectionText::Header), ".HEADER"),
            (Some(SectionText::Text), ".TEXT"),
        ] {
            let section = Section {
                part: path.clone(),
                text,
            };
            out.extend_from_slice(format!(" BODY[{name}{label}]").as_bytes());
            match section_bytes(message, meta, &section) {
                Some(data) => {
                    out.push(b' ');
                    encode::literal(&mut out, &data);
                }
                None => out.extend_from_slice(b" NIL"),
            }
        }
    }
    out.extend_from_slice(b")\r\n");
    out
}

/// Paths of the parts of a MIME tree (`1`, `1.2`, …) as [`find_part`]
/// follows them, breadth first, at most [`MAX_PARTS`].
///
/// [`find_part`]: crate::command::fetch::find_part
fn part_paths(root: &BodyPart) -> Vec<Vec<u32>> {
    let mut paths = Vec::new();
    let mut queue = std::collections::VecDeque::from([(Vec::new(), root)]);
    while let Some((path, part)) = queue.pop_front() {
        let container = if path.is_empty() {
            part
        } else if part.is_message() {
            match &part.message {
                Some(nested) => &nested.body,
                None => continue,
            }
        } else if part.is_multipart() {
            part
        } else {
            continue;
        };
        let children: Vec<&BodyPart> = if container.is_multipart() && !container.parts.is_empty() {
            container.parts.iter().collect()
        } else {
            vec![container]
        };
        for (i, child) in children.into_iter().enumerate() {
            if paths.len() >= MAX_PARTS {
                return paths;
            }
            let mut child_path = path.clone();
            child_path.push(i as u32 + 1);
            paths.push(child_path.clone());
            queue.push_back((child_path, child));
        }
    }
    paths
}

/// THREAD=REFERENCES over messages described one per line as
/// `message-id|references|subject` (`number` = line number from 1): the
/// answer, and the base subject of each subject.
pub fn thread_references(input: &str) -> (String, Vec<String>) {
    let mut messages = Vec::new();
    let mut subjects = Vec::new();
    for (i, line) in input.lines().enumerate().take(2_000) {
        let mut fields = line.splitn(3, '|');
        let id = fields.next().unwrap_or_default();
        let references = fields.next().unwrap_or_default();
        let subject = fields.next().unwrap_or_default();
        subjects.push(crate::sort_keys::base_subject(subject));
        messages.push(crate::threading::ThreadInput {
            number: i as u32 + 1,
            seq: i as u32 + 1,
            date: (i % 7) as i64,
            message_id: crate::threading::message_ids(id).into_iter().next(),
            references: crate::threading::message_ids(references),
            subject: subject.to_string(),
        });
    }
    (crate::threading::references(&messages), subjects)
}
