//! IMAP URLs (RFC 5092) naming a message or a part of one, as CATENATE
//! (RFC 4469 §3) takes them: `imap://host/INBOX;UIDVALIDITY=9/;UID=20/;SECTION=1.2/;PARTIAL=0.100`,
//! or the same path alone (`/INBOX/;UID=20`). Pure: the session looks the
//! message up.

use crate::parse::Section;

/// A message (or part) an IMAP URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageUrl {
    /// The mailbox name, percent-decoded (UTF-8, RFC 5092 §5).
    pub mailbox: String,
    pub uid_validity: Option<u32>,
    pub uid: u32,
    pub section: Option<Section>,
    /// `;PARTIAL=offset[.length]`.
    pub partial: Option<(u32, Option<u32>)>,
}

/// Parses an IMAP URL naming a message; `None` when it is not one
/// (CATENATE then answers `NO [BADURL …]`). URLAUTH URLs are not taken.
pub fn parse(url: &str) -> Option<MessageUrl> {
    if url.len() > 4096 {
        return None;
    }
    let path = match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("imap://") => {
            // The authority names this server; the session resolves the
            // path in the logged-in account whatever it says.
            let rest = &url[7..];
            &rest[rest.find('/')?..]
        }
        _ => url,
    };
    let path = path.strip_prefix('/')?;
    let upper = path.to_ascii_uppercase();
    // The mailbox ends at ";UIDVALIDITY=" or at "/;UID=".
    let uid_at = upper.find("/;UID=")?;
    let (mailbox_part, uid_validity) = match upper[..uid_at].find(";UIDVALIDITY=") {
        Some(at) => (
            &path[..at],
            Some(nz_number(&path[at + ";UIDVALIDITY=".len()..uid_at])?),
        ),
        None => (&path[..uid_at], None),
    };
    let mailbox = percent_decode(mailbox_part)?;
    if mailbox.is_empty() {
        return None;
    }
    let mut uid = None;
    let mut section = None;
    let mut partial = None;
    for (i, segment) in path[uid_at + 1..].split("/;").enumerate() {
        let segment = segment.strip_prefix(';').unwrap_or(segment);
        let (name, value) = segment.split_once('=')?;
        match (i, name.to_ascii_uppercase().as_str()) {
            (0, "UID") => uid = Some(nz_number(value)?),
            (1, "SECTION") if section.is_none() => {
                section = Some(parse_section(&percent_decode(value)?)?)
            }
            (1 | 2, "PARTIAL") if partial.is_none() => {
                let (offset, length) = match value.split_once('.') {
                    Some((o, l)) => (o, Some(nz_number(l)?)),
                    None => (value, None),
                };
                partial = Some((number(offset)?, length));
            }
            _ => return None,
        }
    }
    Some(MessageUrl {
        mailbox,
        uid_validity,
        uid: uid?,
        section,
        partial,
    })
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn nz_number(text: &str) -> Option<u32> {
    number(text).filter(|n| *n > 0)
}

/// `%XX` escapes to octets; the result must be UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A URL's section (`1.2.MIME`, `HEADER.FIELDS (TO)`) as FETCH reads one.
fn parse_section(text: &str) -> Option<Section> {
    crate::parse::section_spec(&format!("[{text}]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::SectionText;

    #[test]
    fn rfc_4469_and_5092_forms() {
        // RFC 4469 §5's example.
        let url = parse("/Drafts;UIDVALIDITY=385759045/;UID=20/;SECTION=HEADER").unwrap();
        assert_eq!(url.mailbox, "Drafts");
        assert_eq!(url.uid_validity, Some(385_759_045));
        assert_eq!(url.uid, 20);
        assert_eq!(url.section.unwrap().text, Some(SectionText::Header));
        let url =
            parse("imap://alice@example.test/INBOX/;UID=5/;SECTION=1.2/;PARTIAL=10.20").unwrap();
        assert_eq!(url.mailbox, "INBOX");
        assert_eq!(url.section.unwrap().part, vec![1, 2]);
        assert_eq!(url.partial, Some((10, Some(20))));
        // Hierarchy and percent-encoded UTF-8 in the name.
        let url = parse("/Archive/Gr%C3%BC%C3%9Fe;uidvalidity=7/;uid=3").unwrap();
        assert_eq!(url.mailbox, "Archive/Grüße");
        assert_eq!(url.uid, 3);
    }

    #[test]
    fn what_is_not_a_message_url() {
        for bad in [
            "",
            "INBOX/;UID=1",
            "/INBOX",
            "/INBOX/;UID=0",
            "/INBOX/;UID=x",
            "/;UID=1",
            "/INBOX/;UID=1/;SECTION=BOGUS",
            "/INBOX/;UID=1/;URLAUTH=anonymous",
            "/INBOX/;UID=1/;PARTIAL=1.0",
            "/IN%ZZ/;UID=1",
            "/IN%FF/;UID=1",
            "imap://host-without-path",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
