//! The keys SORT orders by (RFC 5256 §3, RFC 5957 SORT=DISPLAY), from a
//! message's envelope: the base subject of RFC 5256 §2.1, the first
//! address's mailbox, the display name, the sent date.
//!
//! Everything here is a loop over the input: subjects and addresses come
//! from anyone.

use mail_parser::MessageParser;
use pillarbox_store::meta::{Address, Envelope};

/// A subject with its RFC 2047 encoded words decoded.
pub fn decode_header(raw: &str) -> String {
    if !raw.contains("=?") {
        return raw.to_string();
    }
    let text = format!("Subject: {raw}\r\n\r\n");
    MessageParser::default()
        .parse_headers(text.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| raw.to_string())
}

/// The base subject (RFC 5256 §2.1) of an already decoded subject, for
/// comparison with i;ascii-casemap (ASCII letters folded to upper case).
/// Linear in the subject's length: each step consumes what it looks at.
pub fn base_subject(subject: &str) -> String {
    base_subject_and_reply(subject).0
}

/// The base subject, and whether extracting it removed a reply or forward
/// marker (`Re:`, `Fwd:`, `(fwd)`, `[Fwd: …]`): THREAD=REFERENCES then
/// counts the message as a reply (RFC 5256 §2.1).
pub fn base_subject_and_reply(subject: &str) -> (String, bool) {
    let mut reply = false;
    // (1) White space runs become one space, ends trimmed.
    let collapsed = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s: &str = &collapsed;
    loop {
        // (2) Trailing "(fwd)" and white space, repeatedly.
        loop {
            let trimmed = s.trim_end();
            match strip_suffix_ci(trimmed, "(fwd)") {
                Some(rest) => {
                    s = rest;
                    reply = true;
                }
                None => {
                    s = trimmed;
                    break;
                }
            }
        }
        // (3) A leader (blobs, then re/fw/fwd, its blobs, a colon), and
        // (4) leading blobs while something follows them, repeatedly.
        loop {
            s = s.trim_start();
            let mut rest = s;
            let mut last_blob = None;
            while let Some(after) = strip_blob(rest) {
                last_blob = Some(rest);
                rest = after;
            }
            if let Some(after) = strip_refwd(rest) {
                s = after;
                reply = true;
                continue;
            }
            // No leader: the blobs go, but never the last thing left.
            s = if rest.is_empty() {
                last_blob.unwrap_or(s)
            } else {
                rest
            };
            break;
        }
        // (5) "[fwd: … ]" around the whole subject: unwrap, start again.
        if let Some(inner) = strip_prefix_ci(s, "[fwd:").and_then(|r| r.strip_suffix(']')) {
            s = inner.trim();
            reply = true;
            continue;
        }
        break;
    }
    (s.to_ascii_uppercase(), reply)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let start = s.len().checked_sub(suffix.len())?;
    let tail = s.get(start..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..start])
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: what follows one at the start.
fn strip_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find([']', '['])?;
    if rest.as_bytes()[end] != b']' {
        return None;
    }
    Some(rest[end + 1..].trim_start())
}

/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`: what follows.
fn strip_refwd(s: &str) -> Option<&str> {
    let after = strip_prefix_ci(s, "fwd")
        .or_else(|| strip_prefix_ci(s, "fw"))
        .or_else(|| strip_prefix_ci(s, "re"))?;
    let mut after = after.trim_start();
    if let Some(next) = strip_blob(after) {
        after = next;
    }
    Some(after.strip_prefix(':')?.trim_start())
}

/// SORT's FROM/TO/CC key: the first address's mailbox (local part),
/// upper-cased; empty when there is none.
pub fn mailbox_key(addresses: &[Address]) -> String {
    addresses
        .iter()
        .find(|a| a.host.is_some())
        .and_then(|a| a.mailbox.clone())
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// SORT=DISPLAY's DISPLAYFROM/DISPLAYTO key (RFC 5957 §2): the first
/// address's decoded display name, or its address when it has none.
pub fn display_key(addresses: &[Address]) -> String {
    let Some(first) = addresses.iter().find(|a| a.host.is_some()) else {
        return String::new();
    };
    let name = first
        .name
        .as_deref()
        .map(decode_header)
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    name.unwrap_or_else(|| {
        format!(
            "{}@{}",
            first.mailbox.as_deref().unwrap_or_default(),
            first.host.as_deref().unwrap_or_default()
        )
    })
    .to_ascii_uppercase()
}

/// SORT's DATE key: the Date header in Unix seconds (RFC 5256: its zone
/// taken into account), or `internal_date` when it is missing or unreadable.
pub fn sent_date(envelope: &Envelope, internal_date: i64) -> i64 {
    envelope
        .date
        .as_deref()
        .and_then(|d| mail_parser::DateTime::parse_rfc822(d.trim()))
        .map(|d| d.to_timestamp())
        .unwrap_or(internal_date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects_by_rfc_5256() {
        for (subject, base) in [
            ("Hello", "HELLO"),
            ("Re: Hello", "HELLO"),
            ("RE: re: Fwd: Hello", "HELLO"),
            ("Re[2]: Hello", "HELLO"),
            ("Re: [list] Hello", "HELLO"),
            ("[list] Re: Hello", "HELLO"),
            ("Hello (fwd)", "HELLO"),
            ("Hello (fwd) (FWD)  ", "HELLO"),
            ("[Fwd: Re: Hello]", "HELLO"),
            ("[fwd: [Fwd: Hello (fwd)]]", "HELLO"),
            ("  Hello \t  world  ", "HELLO WORLD"),
            // A blob that is the whole subject stays.
            ("[list]", "[LIST]"),
            ("Re: [list]", "[LIST]"),
            // Not a leader: no colon, or a longer word.
            ("Reply needed", "REPLY NEEDED"),
            ("Fwd Hello", "FWD HELLO"),
            ("Regarding: x", "REGARDING: X"),
            ("", ""),
        ] {
            assert_eq!(base_subject(subject), base, "{subject:?}");
        }
    }

    #[test]
    fn encoded_subjects_are_decoded_first() {
        let decoded = decode_header("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=");
        assert_eq!(decoded, "Grüße");
        assert_eq!(
            base_subject(&decode_header("Re: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=")),
            "GRüßE"
        );
    }

    #[test]
    fn hostile_subjects_are_linear() {
        let many = "Re: ".repeat(20_000) + "x";
        assert_eq!(base_subject(&many), "X");
        let blobs = "[a]".repeat(20_000) + " y";
        assert_eq!(base_subject(&blobs), "Y");
        let fwd = "[Fwd: ".repeat(2_000) + "z" + &"]".repeat(2_000);
        assert_eq!(base_subject(&fwd), "Z");
    }

    #[test]
    fn address_keys() {
        let a = |name: Option<&str>, mailbox: &str, host: &str| Address {
            name: name.map(str::to_string),
            adl: None,
            mailbox: Some(mailbox.to_string()),
            host: Some(host.to_string()),
        };
        let list = vec![
            a(Some("=?UTF-8?Q?J=C3=BCrgen?="), "j", "x.test"),
            a(None, "b", "y.test"),
        ];
        assert_eq!(mailbox_key(&list), "J");
        assert_eq!(display_key(&list), "JüRGEN");
        assert_eq!(display_key(&[a(None, "Bob", "y.test")]), "BOB@Y.TEST");
        assert_eq!(mailbox_key(&[]), "");
    }
}
