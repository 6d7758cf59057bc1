//! SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH results (RFC 4731)
//! and SEARCHRES (RFC 5182). Flags, sizes and dates come from the session's
//! view; header and text keys read the search text the store kept at delivery.

use crate::objectid;
use crate::parse::{SearchKey, SearchReturn};
use crate::selected::Selected;
use crate::sequence::compact;
use crate::session::{Done, Session};
use pillarbox_store::meta::{field_values, header_fields};
use pillarbox_store::{
    MessageEntry, MessageId, Result, Store, SystemFlag, TextColumns, TextFilter, Uid,
};
use std::collections::HashMap;

/// What a key needs besides the session's view.
#[derive(Default)]
struct Loaded {
    header: Option<String>,
    body: Option<String>,
    /// The header fields, unfolded and decoded (`meta::header_fields`).
    fields: Option<String>,
}

/// Calls `f` on every key of the tree that is not AND, OR or NOT (the
/// parser bounds the tree's depth).
fn for_each_leaf<'k>(key: &'k SearchKey, f: &mut impl FnMut(&'k SearchKey)) {
    match key {
        SearchKey::And(keys) | SearchKey::Or(keys) => keys.iter().for_each(|k| for_each_leaf(k, f)),
        SearchKey::Not(k) => for_each_leaf(k, f),
        leaf => f(leaf),
    }
}

/// Which stored texts a key reads.
fn needs_text(key: &SearchKey) -> TextColumns {
    let mut need = TextColumns::default();
    for_each_leaf(key, &mut |leaf| match leaf {
        // The fields, and the header block for messages stored before the
        // fields were kept.
        SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => {
            need.header = true;
            need.fields = true;
        }
        SearchKey::Body(_) => need.body = true,
        SearchKey::Text(_) => {
            need.header = true;
            need.body = true;
        }
        _ => {}
    });
    need
}

/// A condition the store can check on its own that every message matching
/// `key` meets (`None`: none; every message has to be looked at). Only
/// ASCII strings are handed down: the database folds ASCII case only.
pub(crate) fn prefilter(key: &SearchKey) -> Option<TextFilter> {
    let ascii = |s: &str| (!s.is_empty() && s.is_ascii()).then(|| s.to_string());
    // A header line may be folded at any whitespace (RFC 5322 §2.2.3): only
    // the words of a header value are sure to appear as written.
    let header_words = |s: &str| {
        let words: Vec<TextFilter> = s
            .split_ascii_whitespace()
            .map(|w| TextFilter::Header(w.to_string()))
            .collect();
        match words.len() {
            0 => None,
            1 => words.into_iter().next(),
            _ => Some(TextFilter::And(words)),
        }
    };
    match key {
        // An empty value asks for the field itself: its name is in the header.
        SearchKey::Header(name, value) if value.is_empty() => ascii(name).map(TextFilter::Header),
        SearchKey::Header(_, value) => ascii(value).and_then(|v| header_words(&v)),
        SearchKey::Body(text) => ascii(text).map(TextFilter::Body),
        SearchKey::Text(text) => {
            let text = ascii(text)?;
            Some(TextFilter::Or(vec![
                header_words(&text)?,
                TextFilter::Body(text),
            ]))
        }
        SearchKey::And(keys) => {
            let all: Vec<TextFilter> = keys.iter().filter_map(prefilter).collect();
            (!all.is_empty()).then_some(TextFilter::And(all))
        }
        // Every alternative must narrow, or the OR does not.
        SearchKey::Or(any) => Some(TextFilter::Or(
            any.iter().map(prefilter).collect::<Option<Vec<_>>>()?,
        )),
        _ => None,
    }
}

/// Case-insensitive substring test: the haystack lowercased (Unicode)
/// contains the needle lowercased. An ASCII needle is looked for without
/// copying anything: only two characters outside ASCII lowercase to ASCII
/// letters (U+0130 İ, U+212A Kelvin sign), and only a haystack with one of
/// them takes the slow way.
fn contains_ci(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if needle.is_ascii() {
        if contains_ascii_ci(haystack.as_bytes(), needle.as_bytes()) {
            return true;
        }
        if haystack.is_ascii() || !haystack.contains(['\u{130}', '\u{212a}']) {
            return false;
        }
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// ASCII case-insensitive substring search.
fn contains_ascii_ci(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let mut at = 0;
    while let Some(found) = memchr::memchr2(lower, upper, &haystack[at..]) {
        let start = at + found + 1;
        match haystack.get(start..start + rest.len()) {
            Some(window) if window.eq_ignore_ascii_case(rest) => return true,
            Some(_) => at = start,
            None => return false,
        }
    }
    false
}

/// Days since 1970-01-01 of the message's Date: header.
fn sent_day(fields: &str) -> Option<i64> {
    let value = field_values(fields, "Date").next()?;
    let date = mail_parser::DateTime::parse_rfc822(value.trim())?;
    // RFC 9051 §6.4.4: the date as written, time and zone disregarded.
    Some(crate::parse::days_from_civil(
        date.year as i64,
        date.month as u32,
        date.day as u32,
    ))
}

/// The day (since 1970-01-01, UTC) a message was saved into its mailbox.
fn saved_day(m: &MessageEntry) -> Option<i64> {
    m.saved_at.map(|t| t.div_euclid(86400))
}

struct Context<'a> {
    selected: &'a Selected,
    rev2: bool,
    /// Unix seconds when the search began (OLDER, YOUNGER).
    now: i64,
    /// The EMAILIDs of the messages an EMAILID key names (RFC 8474 §6).
    email_ids: HashMap<MessageId, String>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Context<'_> {
    fn matches(&self, key: &SearchKey, seq: u32, m: &MessageEntry, loaded: &Loaded) -> bool {
        let header = loaded.header.as_deref().unwrap_or_default();
        let body = loaded.body.as_deref().unwrap_or_default();
        let fields = loaded.fields.as_deref().unwrap_or_default();
        let day = m.internal_date.div_euclid(86400);
        let exists = self.selected.exists();
        match key {
            SearchKey::All => true,
            SearchKey::And(keys) => keys.iter().all(|k| self.matches(k, seq, m, loaded)),
            SearchKey::Or(any) => any.iter().any(|k| self.matches(k, seq, m, loaded)),
            SearchKey::Not(k) => !self.matches(k, seq, m, loaded),
            SearchKey::Seq(set) => match set {
                crate::sequence::SequenceSet::Saved => {
                    self.selected.saved.binary_search(&m.uid).is_ok()
                }
                set => set.contains(seq, exists),
            },
            SearchKey::Uid(set) => match set {
                crate::sequence::SequenceSet::Saved => {
                    self.selected.saved.binary_search(&m.uid).is_ok()
                }
                set => set.contains(m.uid.0, self.selected.largest_uid()),
            },
            SearchKey::Flag(name, wanted) => {
                SystemFlag::from_imap(name).is_some_and(|f| m.flags.contains(f)) == *wanted
            }
            SearchKey::Keyword(k, wanted) => {
                let has = match SystemFlag::from_imap(k) {
                    Some(f) => m.flags.contains(f),
                    None => m.flags.has_keyword(k),
                };
                has == *wanted
            }
            SearchKey::Recent => !self.rev2 && self.selected.is_recent(m.uid),
            SearchKey::New => {
                !self.rev2 && self.selected.is_recent(m.uid) && !m.flags.contains(SystemFlag::Seen)
            }
            SearchKey::Old => self.rev2 || !self.selected.is_recent(m.uid),
            SearchKey::Header(name, value) => {
                field_values(fields, name).any(|v| contains_ci(v, value))
            }
            SearchKey::Body(text) => contains_ci(body, text),
            SearchKey::Text(text) => contains_ci(header, text) || contains_ci(body, text),
            SearchKey::Before(d) => day < *d,
            SearchKey::On(d) => day == *d,
            SearchKey::Since(d) => day >= *d,
            SearchKey::SentBefore(d) => sent_day(fields).is_some_and(|s| s < *d),
            SearchKey::SentOn(d) => sent_day(fields).is_some_and(|s| s == *d),
            SearchKey::SentSince(d) => sent_day(fields).is_some_and(|s| s >= *d),
            SearchKey::Larger(n) => m.size > *n,
            SearchKey::ModSeq(n) => m.modseq.0 >= *n,
            SearchKey::SaveDateSupported => true,
            SearchKey::EmailId(id) => self.email_ids.get(&m.message) == Some(id),
            // THREADID is NIL for every message (see `objectid`).
            SearchKey::ThreadId(_) => false,
            SearchKey::SavedBefore(d) => saved_day(m).is_some_and(|s| s < *d),
            SearchKey::SavedOn(d) => saved_day(m).is_some_and(|s| s == *d),
            SearchKey::SavedSince(d) => saved_day(m).is_some_and(|s| s >= *d),
            SearchKey::Older(n) => m.internal_date < self.now - i64::from(*n),
            SearchKey::Younger(n) => m.internal_date >= self.now - i64::from(*n),
            SearchKey::Smaller(n) => m.size < *n,
        }
    }
}

/// Whether message `m` (number `seq` in `selected`) matches `key`, given the
/// texts the store keeps for it: SEARCH's own evaluation with nothing read
/// from the store (the `imap_search` fuzz target's way in).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matches_texts(
    selected: &Selected,
    rev2: bool,
    key: &SearchKey,
    seq: u32,
    m: &MessageEntry,
    header: &str,
    body: &str,
    fields: &str,
) -> bool {
    let loaded = Loaded {
        header: Some(header.to_string()),
        body: Some(body.to_string()),
        fields: Some(fields.to_string()),
    };
    Context {
        selected,
        rev2,
        now: unix_now(),
        email_ids: HashMap::new(),
    }
    .matches(key, seq, m, &loaded)
}

pub(crate) async fn run_search(
    store: &Store,
    selected: &Selected,
    key: &SearchKey,
    rev2: bool,
) -> Result<Vec<(u32, Uid)>> {
    // The messages an EMAILID key names (RFC 8474 §6).
    let mut messages: Vec<MessageId> = Vec::new();
    for_each_leaf(key, &mut |leaf| {
        if let SearchKey::EmailId(id) = leaf {
            messages.extend(objectid::email_id_message(id));
        }
    });
    let email_ids = store
        .content_hashes(&messages)
        .await?
        .into_iter()
        .map(|(message, hash)| (message, objectid::email_id(message, &hash)))
        .collect();
    let context = Context {
        selected,
        rev2,
        now: unix_now(),
        email_ids,
    };
    let columns = needs_text(key);
    let text = columns.header || columns.body;
    // The store narrows the messages down first where it can.
    let candidates = match prefilter(key) {
        Some(filter) if text => Some(
            store
                .search_candidates(selected.mailbox.id, &filter)
                .await?,
        ),
        _ => None,
    };
    let wanted = |m: &MessageEntry| {
        !selected.gone.contains(&m.uid)
            && candidates.as_ref().is_none_or(|c| c.contains(&m.message))
    };
    // Texts in batches, not one query per message.
    let mut texts = if text {
        let ids: Vec<_> = selected
            .messages
            .iter()
            .filter(|m| wanted(m))
            .map(|m| m.message)
            .collect();
        store.message_search_texts(&ids, columns).await?
    } else {
        Default::default()
    };
    let mut hits = Vec::new();
    for (i, m) in selected.messages.iter().enumerate() {
        if !wanted(m) {
            continue;
        }
        let loaded = match texts.remove(&m.message) {
            Some(t) => Loaded {
                fields: match t.fields {
                    Some(fields) => Some(fields),
                    None if columns.fields => Some(header_fields(&t.header)),
                    None => None,
                },
                header: Some(t.header),
                body: Some(t.body),
            },
            None => Loaded::default(),
        };
        if context.matches(key, i as u32 + 1, m, &loaded) {
            hits.push((i as u32 + 1, m.uid));
        }
    }
    Ok(hits)
}

/// The answer to a SEARCH, SORT or THREAD charset other than the two this
/// server searches in (search strings are matched as UTF-8).
fn unsupported_charset(charset: &str) -> Option<Done> {
    (!matches!(charset, "UTF-8" | "US-ASCII")).then(|| {
        Done::No(format!(
            "[BADCHARSET (UTF-8 US-ASCII)] Charset {charset} is not supported"
        ))
    })
}

impl Session<'_> {
    /// The answer to a CHARSET a command cannot take, if any: after ENABLE
    /// UTF8=ACCEPT, SEARCH takes none and SORT/THREAD only UTF-8 (RFC 6855
    /// §3 and its erratum 4029, "conflicting charset labels"); otherwise
    /// only UTF-8 and US-ASCII are known.
    pub(crate) fn refuse_charset(&self, charset: Option<&str>, optional: bool) -> Option<Done> {
        match charset {
            Some(_) if self.utf8_accept && optional => Some(Done::Bad(
                "SEARCH takes no CHARSET once UTF8=ACCEPT is enabled (RFC 6855 §3): strings are UTF-8"
                    .into(),
            )),
            Some(charset) if self.utf8_accept && charset != "UTF-8" => Some(Done::Bad(format!(
                "charset {charset} conflicts with UTF8=ACCEPT (RFC 6855 §3): use UTF-8"
            ))),
            Some(charset) => unsupported_charset(charset),
            None => None,
        }
    }
}

/// Whether a search key tests mod-sequences anywhere in its tree.
fn uses_modseq(key: &SearchKey) -> bool {
    let mut found = false;
    for_each_leaf(key, &mut |leaf| {
        found |= matches!(leaf, SearchKey::ModSeq(_))
    });
    found
}

impl Session<'_> {
    pub(crate) async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<&[SearchReturn]>,
        charset: Option<&str>,
        key: &SearchKey,
    ) -> Result<Done> {
        if let Some(refused) = self.refuse_charset(charset, true) {
            return Ok(refused);
        }
        // RFC 7162 §3.1.5: a MODSEQ key enables CONDSTORE, and the answer
        // then carries the highest mod-sequence of the messages found.
        let with_modseq = uses_modseq(key);
        self.condstore |= with_modseq;
        let store = self.server.store.clone();
        let rev2 = self.rev2;
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::Bad("No mailbox selected".into()));
        };
        let hits = run_search(&store, selected, key, rev2).await?;
        let numbers: Vec<u32> = hits
            .iter()
            .map(|(seq, u)| if uid { u.0 } else { *seq })
            .collect();
        let highest = hits
            .iter()
            .filter_map(|(seq, _)| selected.messages.get(*seq as usize - 1))
            .map(|m| m.modseq.0)
            .max()
            .filter(|_| with_modseq);
        // IMAP4rev2 has only ESEARCH; IMAP4rev1 gets ESEARCH when it asked with RETURN.
        let ret: Option<Vec<SearchReturn>> = match ret {
            Some([]) => Some(vec![SearchReturn::All]),
            Some(options) => Some(options.to_vec()),
            None if rev2 => Some(vec![SearchReturn::All]),
            None => None,
        };
        let Some(options) = ret else {
            let list: Vec<String> = numbers.iter().map(u32::to_string).collect();
            let line = match highest {
                _ if list.is_empty() => "* SEARCH\r\n".to_string(),
                Some(modseq) => format!("* SEARCH {} (MODSEQ {modseq})\r\n", list.join(" ")),
                None => format!("* SEARCH {}\r\n", list.join(" ")),
            };
            self.conn.write(line.as_bytes());
            return Ok(Done::Ok(format!(
                "{}SEARCH completed",
                if uid { "UID " } else { "" }
            )));
        };
        if options.contains(&SearchReturn::Save) {
            // RFC 5182: with MIN or MAX only, only those are saved.
            let only_min_max = options
                .iter()
                .any(|o| matches!(o, SearchReturn::Min | SearchReturn::Max))
                && !options
                    .iter()
                    .any(|o| matches!(o, SearchReturn::All | SearchReturn::Count));
            selected.saved = if only_min_max {
                let mut saved = Vec::new();
                if options.contains(&SearchReturn::Min)
                    && let Some(first) = hits.first()
                {
                    saved.push(first.1);
                }
                if options.contains(&SearchReturn::Max)
                    && let Some(last) = hits.last()
                    && !saved.contains(&last.1)
                {
                    saved.push(last.1);
                }
                saved
            } else {
                hits.iter().map(|(_, u)| *u).collect()
            };
        }
        let mut line = format!("* ESEARCH (TAG \"{tag}\")");
        if uid {
            line.push_str(" UID");
        }
        let only_save = options.iter().all(|o| *o == SearchReturn::Save);
        if !only_save {
            for option in &options {
                match option {
                    SearchReturn::Min => {
                        if let Some(min) = numbers.iter().min() {
                            line.push_str(&format!(" MIN {min}"));
                        }
                    }
                    SearchReturn::Max => {
                        if let Some(max) = numbers.iter().max() {
                            line.push_str(&format!(" MAX {max}"));
                        }
                    }
                    SearchReturn::All => {
                        if !numbers.is_empty() {
                            line.push_str(&format!(" ALL {}", compact(&numbers)));
                        }
                    }
                    SearchReturn::Count => line.push_str(&format!(" COUNT {}", numbers.len())),
                    SearchReturn::Save => {}
                }
            }
        }
        if let Some(modseq) = highest {
            line.push_str(&format!(" MODSEQ {modseq}"));
        }
        if !only_save {
            line.push_str("\r\n");
            self.conn.write(line.as_bytes());
        }
        Ok(Done::Ok(format!(
            "{}SEARCH completed",
            if uid { "UID " } else { "" }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_unfold_and_decode() {
        let header = "Subject: =?UTF-8?Q?Caf=C3=A9?=\r\n  menu\r\nFrom: Ann <a@b>\r\n\r\n";
        let fields = header_fields(header);
        let subject: Vec<&str> = field_values(&fields, "subject").collect();
        assert!(subject.iter().any(|v| v.contains("Café")), "{subject:?}");
        assert!(
            subject.iter().any(|v| v.contains("=?UTF-8?Q?")),
            "{subject:?}"
        );
        assert!(
            field_values(&fields, "FROM")
                .next()
                .unwrap_or_default()
                .contains("a@b")
        );
        assert!(field_values(&fields, "To").next().is_none());
    }

    #[test]
    fn case_insensitive_matching_and_prefilters() {
        assert!(contains_ci("From: Sender5 <s@x>", "sender5"));
        assert!(!contains_ci("From: Sender <s@x>", "sender5"));
        assert!(contains_ci("Grüße aus KÖLN", "köln"));
        assert!(contains_ci("anything", ""));
        assert!(contains_ci("résumé for the OFFLINE client", "offline"));
        assert!(!contains_ci("résumé for the client", "offline"));
        assert!(contains_ci("ab", "AB") && !contains_ci("a", "ab") && contains_ci("xxab", "ab"));
        // Non-ASCII letters that lowercase to ASCII ones.
        assert!(contains_ci("\u{212a}elvin", "kelvin"));
        assert!(contains_ci("\u{130}stanbul", "i"));
        let header = |v: &str| SearchKey::Header("FROM".into(), v.into());
        assert_eq!(
            prefilter(&header("Ann")),
            Some(TextFilter::Header("Ann".into()))
        );
        assert_eq!(
            prefilter(&header("")),
            Some(TextFilter::Header("FROM".into()))
        );
        // Words, since a folded line splits a value at its spaces.
        assert_eq!(
            prefilter(&header("Ann  Smith")),
            Some(TextFilter::And(vec![
                TextFilter::Header("Ann".into()),
                TextFilter::Header("Smith".into())
            ]))
        );
        let fields = header_fields("Subject: lunch\r\n menu\r\n\r\n");
        assert!(field_values(&fields, "subject").any(|v| v.contains("lunch menu")));
        // Non-ASCII is not handed to the database; NOT and a bare flag have no prefilter.
        assert_eq!(prefilter(&header("Köln")), None);
        assert_eq!(prefilter(&SearchKey::Not(Box::new(header("Ann")))), None);
        let flagged = SearchKey::Flag("\\Flagged", true);
        assert_eq!(
            prefilter(&SearchKey::And(vec![flagged.clone(), header("Ann")])),
            Some(TextFilter::And(vec![TextFilter::Header("Ann".into())]))
        );
        assert_eq!(
            prefilter(&SearchKey::Or(vec![flagged, header("Ann")])),
            None
        );
    }

    #[test]
    fn sent_date() {
        let fields = header_fields("Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n");
        assert_eq!(
            sent_day(&fields),
            Some(crate::parse::days_from_civil(1994, 2, 7))
        );
    }
}
