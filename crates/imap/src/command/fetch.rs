//! FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY): message data from
//! the store's parsed metadata (ENVELOPE, BODYSTRUCTURE, part offsets) and
//! the served bytes.

use crate::encode;
use crate::objectid;
use crate::parse::{FetchAttr, Section, SectionText};
use crate::sequence::SequenceSet;
use crate::session::{Done, Session};
use base64::Engine;
use pillarbox_store::meta::{BodyPart, MessageMeta};
use pillarbox_store::{FlagOp, Flags, Result, SystemFlag};

/// Flush the response buffer after this many octets of FETCH data.
const FLUSH_AT: usize = 256 * 1024;

impl Session<'_> {
    pub(crate) async fn fetch(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        attrs: &[FetchAttr],
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Result<Done> {
        // RFC 7162 §3.1: MODSEQ and CHANGEDSINCE enable CONDSTORE.
        if changed_since.is_some() || attrs.contains(&FetchAttr::ModSeq) {
            self.condstore = true;
        }
        let condstore = self.condstore;
        let store = self.server.store.clone();
        let rev2 = self.rev2;
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::Bad("No mailbox selected".into()));
        };
        let mut indexes = match selected.resolve(set, uid) {
            Ok(indexes) => indexes,
            Err(done) => return Ok(done),
        };
        let mut attrs = attrs.to_vec();
        if uid && !attrs.contains(&FetchAttr::Uid) {
            attrs.insert(0, FetchAttr::Uid);
        }
        // UID FETCH … (CHANGEDSINCE n VANISHED): first the UIDs of the set
        // expunged since n (RFC 7162 §3.2.6).
        if let (true, Some(since)) = (vanished, changed_since) {
            let mut out = Vec::new();
            selected
                .vanished_earlier(&store, pillarbox_store::ModSeq(since), Some(set), &mut out)
                .await?;
            self.conn.write(&out);
        }
        // CHANGEDSINCE: only messages changed after it, with their MODSEQ
        // (RFC 7162 §3.1.4.1).
        if let Some(since) = changed_since {
            indexes.retain(|i| selected.messages[*i].modseq.0 > since);
            if !attrs.contains(&FetchAttr::ModSeq) {
                attrs.push(FetchAttr::ModSeq);
            }
        }
        let needs_meta = attrs.iter().any(|a| {
            matches!(
                a,
                FetchAttr::Envelope
                    | FetchAttr::Body
                    | FetchAttr::BodyStructure
                    | FetchAttr::BodySection { .. }
                    | FetchAttr::Binary { .. }
                    | FetchAttr::BinarySize(_)
                    | FetchAttr::Rfc822Header
                    | FetchAttr::Rfc822Text
            )
        });
        let needs_bytes = attrs.iter().any(|a| {
            matches!(
                a,
                FetchAttr::BodySection { .. }
                    | FetchAttr::Binary { .. }
                    | FetchAttr::BinarySize(_)
                    | FetchAttr::Rfc822
                    | FetchAttr::Rfc822Header
                    | FetchAttr::Rfc822Text
            )
        });
        // Fetching a body sets \Seen (RFC 9051 §6.4.5); FLAGS is then reported.
        // A set: FETCH 1:* of a large mailbox checks every message against it.
        let mut seen_now = std::collections::BTreeSet::new();
        if !selected.read_only && attrs.iter().any(FetchAttr::sets_seen) {
            let unseen: Vec<_> = indexes
                .iter()
                .map(|i| &selected.messages[*i])
                .filter(|m| !m.flags.contains(SystemFlag::Seen) && !selected.gone.contains(&m.uid))
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let updates = store
                    .store_flags(
                        selected.mailbox.id,
                        &unseen,
                        FlagOp::Add,
                        &Flags::new().with(SystemFlag::Seen),
                        None,
                    )
                    .await?;
                seen_now = selected.apply(updates).into_iter().collect();
            }
        }
        // EMAILID (RFC 8474) is made from each message's content hash.
        let content_hashes = if attrs.contains(&FetchAttr::EmailId) {
            let ids: Vec<_> = indexes
                .iter()
                .map(|i| selected.messages[*i].message)
                .collect();
            store.content_hashes(&ids).await?
        } else {
            Default::default()
        };
        let mut pending = 0usize;
        // A message another session expunged, whose data is gone already.
        let mut expunge_issued = false;
        // Metadata for a window of messages at a time, not one query each.
        let mut metas = std::collections::HashMap::new();
        for (position, index) in indexes.iter().copied().enumerate() {
            let entry = selected.messages[index].clone();
            if selected.gone.contains(&entry.uid) {
                // Expunged by another session and not yet announced: no data.
                expunge_issued = true;
                continue;
            }
            if needs_meta && !metas.contains_key(&entry.message) {
                let window: Vec<_> = indexes[position..]
                    .iter()
                    .take(500)
                    .map(|i| selected.messages[*i].message)
                    .collect();
                metas = store.message_metas(&window).await?;
            }
            let meta = if needs_meta {
                match metas.remove(&entry.message) {
                    Some(meta) => Some(meta),
                    None => match store.message_meta(entry.message).await {
                        Ok(meta) => Some(meta),
                        Err(e) => {
                            expunge_issued |=
                                gone(&store, selected.mailbox.id, entry.uid, e).await?;
                            continue;
                        }
                    },
                }
            } else {
                None
            };
            let bytes = if needs_bytes {
                match store.message_bytes(entry.message).await {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        expunge_issued |= gone(&store, selected.mailbox.id, entry.uid, e).await?;
                        continue;
                    }
                }
            } else {
                None
            };
            let email_id = content_hashes
                .get(&entry.message)
                .map(|hash| objectid::email_id(entry.message, hash));
            if attrs.contains(&FetchAttr::EmailId) && email_id.is_none() {
                // Its row went with an expunge by another session.
                expunge_issued = true;
                continue;
            }
            let recent = !rev2 && selected.is_recent(entry.uid);
            let mut out = Vec::new();
            if attrs.contains(&FetchAttr::Flags) || seen_now.contains(&entry.uid) {
                selected.announce_keywords(&entry.flags, &mut out);
            }
            out.extend_from_slice(format!("* {} FETCH (", index + 1).as_bytes());
            let mut first = true;
            let mut flags_sent = false;
            let mut modseq_sent = false;
            for attr in &attrs {
                if !first {
                    out.push(b' ');
                }
                first = false;
                let meta = meta.as_ref();
                let bytes = bytes.as_deref().unwrap_or_default();
                match attr {
                    FetchAttr::Uid => {
                        out.extend_from_slice(format!("UID {}", entry.uid).as_bytes())
                    }
                    FetchAttr::EmailId => out.extend_from_slice(
                        format!("EMAILID ({})", email_id.as_deref().unwrap_or_default()).as_bytes(),
                    ),
                    FetchAttr::ThreadId => out.extend_from_slice(b"THREADID NIL"),
                    FetchAttr::SaveDate => {
                        out.extend_from_slice(b"SAVEDATE ");
                        match entry.saved_at {
                            Some(t) => out.extend_from_slice(encode::date_time(t).as_bytes()),
                            None => out.extend_from_slice(b"NIL"),
                        }
                    }
                    FetchAttr::Preview => {
                        // RFC 8970: the text's first 256 characters; NIL
                        // when it cannot be had (the message just went).
                        out.extend_from_slice(b"PREVIEW ");
                        match store.message_search_text(entry.message).await {
                            Ok((_, body)) => {
                                encode::string(&mut out, preview(&body).as_bytes(), rev2)
                            }
                            Err(_) => out.extend_from_slice(b"NIL"),
                        }
                    }
                    FetchAttr::ModSeq => {
                        out.extend_from_slice(format!("MODSEQ ({})", entry.modseq).as_bytes());
                        modseq_sent = true;
                    }
                    FetchAttr::Flags => {
                        out.extend_from_slice(b"FLAGS ");
                        encode::flags(&mut out, &entry.flags, recent);
                        flags_sent = true;
                    }
                    FetchAttr::InternalDate => {
                        out.extend_from_slice(b"INTERNALDATE ");
                        out.extend_from_slice(encode::date_time(entry.internal_date).as_bytes());
                    }
                    FetchAttr::Rfc822Size => {
                        out.extend_from_slice(format!("RFC822.SIZE {}", entry.size).as_bytes())
                    }
                    FetchAttr::Envelope => {
                        out.extend_from_slice(b"ENVELOPE ");
                        let envelope = meta.map(|m| m.envelope.clone()).unwrap_or_default();
                        encode::envelope(&mut out, &envelope, rev2);
                    }
                    FetchAttr::Body | FetchAttr::BodyStructure => {
                        let extended = *attr == FetchAttr::BodyStructure;
                        out.extend_from_slice(if extended {
                            b"BODYSTRUCTURE "
                        } else {
                            b"BODY "
                        });
                        let body = meta.map(|m| m.body.clone()).unwrap_or_default();
                        encode::body_structure(&mut out, &body, extended, rev2);
                    }
                    FetchAttr::Rfc822 => {
                        out.extend_from_slice(b"RFC822 ");
                        encode::literal(&mut out, bytes);
                    }
                    FetchAttr::Rfc822Header => {
                        out.extend_from_slice(b"RFC822.HEADER ");
                        let end = meta.map(|m| m.body.body_offset as usize).unwrap_or(0);
                        encode::literal(&mut out, slice(bytes, 0, end));
                    }
                    FetchAttr::Rfc822Text => {
                        out.extend_from_slice(b"RFC822.TEXT ");
                        let start = meta.map(|m| m.body.body_offset as usize).unwrap_or(0);
                        encode::literal(&mut out, slice(bytes, start, bytes.len()));
                    }
                    FetchAttr::BodySection {
                        section, partial, ..
                    } => {
                        out.extend_from_slice(
                            format!("BODY[{}]", section_name(section)).as_bytes(),
                        );
                        let data = meta.and_then(|m| section_bytes(bytes, m, section));
                        write_partial(&mut out, data, *partial);
                    }
                    FetchAttr::Binary { part, partial, .. } => {
                        let decoded = match meta.map(|m| binary(bytes, m, part)) {
                            Some(Ok(decoded)) => decoded,
                            Some(Err(())) | None => {
                                return Ok(Done::No(format!(
                                    "[UNKNOWN-CTE] Part {} has a content transfer encoding this server cannot decode",
                                    part_name(part)
                                )));
                            }
                        };
                        out.extend_from_slice(format!("BINARY[{}]", part_name(part)).as_bytes());
                        match decoded {
                            Some(data) => {
                                let data = match partial {
                                    Some((start, count)) => {
                                        out.extend_from_slice(format!("<{start}>").as_bytes());
                                        let start = *start as usize;
                                        slice(&data, start, start.saturating_add(*count as usize))
                                            .to_vec()
                                    }
                                    None => data,
                                };
                                out.push(b' ');
                                // RFC 3516 §4.2: binary data with NUL goes in a literal8.
                                if data.contains(&0) {
                                    encode::literal8(&mut out, &data);
                                } else {
                                    encode::literal(&mut out, &data);
                                }
                            }
                            None => out.extend_from_slice(b" NIL"),
                        }
                    }
                    FetchAttr::BinarySize(part) => {
                        let size = match meta.map(|m| binary(bytes, m, part)) {
                            Some(Ok(Some(data))) => data.len(),
                            Some(Ok(None)) => 0,
                            Some(Err(())) | None => {
                                return Ok(Done::No(format!(
                                    "[UNKNOWN-CTE] Part {} has a content transfer encoding this server cannot decode",
                                    part_name(part)
                                )));
                            }
                        };
                        out.extend_from_slice(
                            format!("BINARY.SIZE[{}] {size}", part_name(part)).as_bytes(),
                        );
                    }
                }
            }
            if !flags_sent && seen_now.contains(&entry.uid) {
                out.extend_from_slice(b" FLAGS ");
                encode::flags(&mut out, &entry.flags, recent);
                flags_sent = true;
            }
            // With CONDSTORE on, flags always come with their MODSEQ.
            if condstore && flags_sent && !modseq_sent {
                out.extend_from_slice(format!(" MODSEQ ({})", entry.modseq).as_bytes());
            }
            out.extend_from_slice(b")\r\n");
            pending += out.len();
            self.conn.write(&out);
            if pending >= FLUSH_AT {
                pending = 0;
                self.conn
                    .flush()
                    .await
                    .map_err(|e| pillarbox_store::StoreError::Blob {
                        path: "client connection".into(),
                        source: e,
                    })?;
            }
        }
        let verb = if uid { "UID FETCH" } else { "FETCH" };
        if expunge_issued {
            // RFC 2180 §4.1.2, RFC 5530: the rest was sent; NOOP brings the EXPUNGEs.
            return Ok(Done::No(format!(
                "[EXPUNGEISSUED] {verb}: some of the messages were expunged by another session; NOOP shows which"
            )));
        }
        Ok(Done::Ok(format!("{verb} completed")))
    }
}

/// A preview of a message's text (RFC 8970 §3): runs of white space made
/// one space, at most 256 characters.
pub(crate) fn preview(text: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        let space = (!out.is_empty()).then_some(' ');
        for c in space.into_iter().chain(word.chars()) {
            if chars == 256 {
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

/// After reading a message's data failed with `error`: `Ok(true)` when the
/// message has left the mailbox meanwhile (expunged by another session, its
/// data already removed), the error itself when it is still there.
async fn gone(
    store: &pillarbox_store::Store,
    mailbox: pillarbox_store::MailboxId,
    uid: pillarbox_store::Uid,
    error: pillarbox_store::StoreError,
) -> Result<bool> {
    match error {
        pillarbox_store::StoreError::MessageExpunged(_) => Ok(true),
        pillarbox_store::StoreError::BlobMissing(_)
            if store.message(mailbox, uid).await?.is_none() =>
        {
            Ok(true)
        }
        error => Err(error),
    }
}

pub(crate) fn slice(bytes: &[u8], start: usize, end: usize) -> &[u8] {
    let end = end.min(bytes.len());
    let start = start.min(end);
    &bytes[start..end]
}

fn part_name(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// The section as echoed in the response, e.g. `1.2.HEADER.FIELDS (FROM)`.
fn section_name(section: &Section) -> String {
    let mut name = part_name(&section.part);
    let text = match &section.text {
        None => return name,
        Some(SectionText::Header) => "HEADER".to_string(),
        Some(SectionText::Text) => "TEXT".to_string(),
        Some(SectionText::Mime) => "MIME".to_string(),
        Some(SectionText::HeaderFields(fields)) => {
            format!("HEADER.FIELDS ({})", fields.join(" ").to_ascii_uppercase())
        }
        Some(SectionText::HeaderFieldsNot(fields)) => {
            format!(
                "HEADER.FIELDS.NOT ({})",
                fields.join(" ").to_ascii_uppercase()
            )
        }
    };
    if !name.is_empty() {
        name.push('.');
    }
    name.push_str(&text);
    name
}

fn write_partial(out: &mut Vec<u8>, data: Option<Vec<u8>>, partial: Option<(u32, u32)>) {
    let Some(data) = data else {
        out.extend_from_slice(b" NIL");
        return;
    };
    match partial {
        Some((start, count)) => {
            out.extend_from_slice(format!("<{start}> ").as_bytes());
            let start = start as usize;
            encode::literal(
                out,
                slice(&data, start, start.saturating_add(count as usize)),
            );
        }
        None => {
            out.push(b' ');
            encode::literal(out, &data);
        }
    }
}

/// The part a path names (RFC 9051 §6.4.5): in a multipart, the n-th child;
/// a non-multipart message has one part, 1; a message/rfc822 part's parts
/// are those of the message it contains.
pub(crate) fn find_part<'a>(root: &'a BodyPart, path: &[u32]) -> Option<&'a BodyPart> {
    let mut current = root;
    for (depth, n) in path.iter().enumerate() {
        let n = *n as usize;
        let container = if depth > 0 && current.is_message() {
            &current.message.as_ref()?.body
        } else if depth > 0 && !current.is_multipart() {
            return None;
        } else {
            current
        };
        current = if container.is_multipart() && !container.parts.is_empty() {
            container.parts.get(n.checked_sub(1)?)?
        } else if n == 1 {
            container
        } else {
            return None;
        };
    }
    Some(current)
}

pub(crate) fn section_bytes(
    bytes: &[u8],
    meta: &MessageMeta,
    section: &Section,
) -> Option<Vec<u8>> {
    // The header block and body of the message the section text applies to.
    let (header, body): ((usize, usize), (usize, usize)) = if section.part.is_empty() {
        let b = &meta.body;
        (
            (0, b.body_offset as usize),
            (b.body_offset as usize, bytes.len()),
        )
    } else {
        let part = find_part(&meta.body, &section.part)?;
        match &section.text {
            None => {
                return Some(
                    slice(bytes, part.body_offset as usize, part.end_offset as usize).to_vec(),
                );
            }
            Some(SectionText::Mime) => {
                return Some(
                    slice(
                        bytes,
                        part.header_offset as usize,
                        part.body_offset as usize,
                    )
                    .to_vec(),
                );
            }
            Some(_) => {
                let nested = &part.message.as_ref()?.body;
                (
                    (nested.header_offset as usize, nested.body_offset as usize),
                    (nested.body_offset as usize, part.end_offset as usize),
                )
            }
        }
    };
    let header_bytes = slice(bytes, header.0, header.1);
    Some(match &section.text {
        None => {
            if section.part.is_empty() {
                bytes.to_vec()
            } else {
                header_bytes.to_vec()
            }
        }
        Some(SectionText::Header) => header_bytes.to_vec(),
        Some(SectionText::Text) => slice(bytes, body.0, body.1).to_vec(),
        Some(SectionText::Mime) => header_bytes.to_vec(),
        Some(SectionText::HeaderFields(fields)) => header_fields(header_bytes, fields, true),
        Some(SectionText::HeaderFieldsNot(fields)) => header_fields(header_bytes, fields, false),
    })
}

/// The header fields named (or all but those), followed by the blank line.
fn header_fields(header: &[u8], names: &[String], wanted: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ') | Some(b'\t')) {
            let name = line
                .iter()
                .position(|b| *b == b':')
                .map(|p| &line[..p])
                .unwrap_or_default();
            let name = String::from_utf8_lossy(name);
            let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name.trim()));
            keep = listed == wanted;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// BINARY[part]: the part's body with its content transfer encoding undone.
/// `Ok(None)` for a part that does not exist, `Err` for an unknown encoding.
pub(crate) fn binary(
    bytes: &[u8],
    meta: &MessageMeta,
    part: &[u32],
) -> Result<Option<Vec<u8>>, ()> {
    if part.is_empty() {
        return Ok(Some(bytes.to_vec()));
    }
    let Some(p) = find_part(&meta.body, part) else {
        return Ok(None);
    };
    if p.is_multipart() && !p.parts.is_empty() {
        return Err(());
    }
    let body = slice(bytes, p.body_offset as usize, p.end_offset as usize);
    match p.encoding.as_str() {
        "7BIT" | "8BIT" | "BINARY" | "" => Ok(Some(body.to_vec())),
        "BASE64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            );
            engine.decode(clean).map(Some).map_err(|_| ())
        }
        "QUOTED-PRINTABLE" => Ok(Some(decode_qp(body))),
        _ => Err(()),
    }
}

/// Undoes quoted-printable (RFC 2045 §6.7), line by line: blanks at the
/// end of a line were added in transport and go (rule 3); a line ending in
/// `=`, blanks after it or not, continues on the next (rule 5); `=XX` is
/// the octet XX; any other `=` is kept as it is.
fn decode_qp(body: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|b| *b == b'\n') {
        let (content, newline): (&[u8], &[u8]) = if let Some(c) = line.strip_suffix(b"\r\n") {
            (c, b"\r\n")
        } else if let Some(c) = line.strip_suffix(b"\n") {
            (c, b"\n")
        } else {
            (line, b"")
        };
        let end = content
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t'))
            .map_or(0, |p| p + 1);
        let mut content = &content[..end];
        let soft = content.last() == Some(&b'=');
        if soft {
            content = &content[..content.len() - 1];
        }
        let mut i = 0;
        while i < content.len() {
            if content[i] == b'='
                && let (Some(h), Some(l)) = (
                    content.get(i + 1).copied().and_then(hex),
                    content.get(i + 2).copied().and_then(hex),
                )
            {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            out.push(content[i]);
            i += 1;
        }
        if !soft {
            out.extend_from_slice(newline);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_256_characters_of_text() {
        assert_eq!(preview("  Hello,\r\n\r\n  world!\t\n"), "Hello, world!");
        assert_eq!(preview(""), "");
        let long = "Grüße ".repeat(100);
        let p = preview(&long);
        assert_eq!(p.chars().count(), 256);
        assert!(p.starts_with("Grüße Grüße"));
    }

    #[test]
    fn quoted_printable() {
        assert_eq!(
            decode_qp(b"caf=C3=A9 =\r\nau lait=3D"),
            "café au lait=".as_bytes()
        );
        // RFC 2045 §6.7 rule 3: blanks at a line's end were added in
        // transport and are dropped; encoded ones (=20) stay.
        assert_eq!(
            decode_qp(b"one  \r\ntwo\t\r\nthree=20\r\n"),
            b"one\r\ntwo\r\nthree \r\n"
        );
        // Rule 5: `=` then blanks is still a soft line break.
        assert_eq!(
            decode_qp(b"soft= \t\r\nbreak\nand=\nbare LF"),
            b"softbreak\nandbare LF"
        );
        // A stray `=` or a bad escape is kept; the last line's blanks go too.
        assert_eq!(decode_qp(b"a=b =Z1 =4  "), b"a=b =Z1 =4");
    }

    #[test]
    fn header_field_selection() {
        let header = b"From: a@b\r\nSubject: hi\r\n there\r\nTo: c@d\r\n\r\n";
        assert_eq!(
            header_fields(header, &["subject".into()], true),
            b"Subject: hi\r\n there\r\n\r\n"
        );
        assert_eq!(
            header_fields(header, &["SUBJECT".into()], false),
            b"From: a@b\r\nTo: c@d\r\n\r\n"
        );
    }

    #[test]
    fn parts_of_a_nested_message() {
        let raw = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--x--\r\n";
        let parsed = pillarbox_store::meta::parse(raw);
        let meta = parsed.meta;
        let one = find_part(&meta.body, &[1]).unwrap();
        assert_eq!(one.media_type, "text");
        let section = |part: Vec<u32>, text| Section { part, text };
        assert_eq!(
            section_bytes(raw, &meta, &section(vec![1], None)).unwrap(),
            b"hello"
        );
        assert_eq!(
            section_bytes(raw, &meta, &section(vec![2], Some(SectionText::Header))).unwrap(),
            b"Subject: inner\r\n\r\n"
        );
        assert_eq!(
            section_bytes(raw, &meta, &section(vec![2, 1], None)).unwrap(),
            b"inner body"
        );
        assert!(find_part(&meta.body, &[3]).is_none());
        assert_eq!(
            section_bytes(raw, &meta, &section(vec![], Some(SectionText::Header))).unwrap(),
            b"From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        );
    }
}
