//! LIST (RFC 9051 §6.3.9, RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS,
//! RFC 6154 SPECIAL-USE) and LSUB (RFC 3501 §6.3.9), with the pattern
//! matcher both use.

use crate::encode;
use crate::parse::{ListReturn, ListSelect};
use crate::session::{Done, Session};
use pillarbox_store::{DELIMITER, INBOX, Mailbox, Result};
use std::collections::BTreeMap;

/// A compiled LIST/LSUB pattern (RFC 9051 §6.3.9): `*` matches anything,
/// `%` anything but the hierarchy delimiter.
///
/// Patterns come from clients, so matching must not recurse or backtrack:
/// runs of wildcards collapse to one (`*%*` is `*`), and a name is matched
/// by simulating the pattern's automaton over the name once, with the set
/// of live pattern positions as a bit set. The cost is O(name × pattern /
/// 64) whatever the pattern, and a pattern with more literal characters
/// than the longest possible name is known to match nothing before any
/// name is looked at.
pub(crate) struct ListPattern {
    /// Literal characters and wildcards, wildcard runs collapsed.
    tokens: Vec<Token>,
    /// Positions holding `*`, `%` and wildcards of either kind.
    star: Vec<u64>,
    percent: Vec<u64>,
    wildcard: Vec<u64>,
    /// For each literal character, the positions holding it.
    literals: BTreeMap<char, Vec<u64>>,
    /// More literal characters than any mailbox name has.
    matches_nothing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`
    Any,
    /// `%`
    Level,
}

/// A mailbox name is at most this many octets (the store refuses longer
/// ones), so it has at most this many characters.
const MAX_NAME_CHARS: usize = 1000;

impl ListPattern {
    pub(crate) fn new(pattern: &str) -> ListPattern {
        let mut tokens: Vec<Token> = Vec::new();
        let mut literal_count = 0usize;
        for c in pattern.chars() {
            let token = match c {
                '*' => Token::Any,
                '%' => Token::Level,
                c => Token::Literal(c),
            };
            match (tokens.last_mut(), token) {
                // A run of wildcards is one wildcard: `*` if the run has one.
                (Some(last @ (Token::Any | Token::Level)), Token::Any | Token::Level) => {
                    if token == Token::Any {
                        *last = Token::Any;
                    }
                    continue;
                }
                (_, Token::Literal(_)) => literal_count += 1,
                _ => {}
            }
            if literal_count > MAX_NAME_CHARS {
                return ListPattern::nothing();
            }
            tokens.push(token);
        }
        // One bit per position, plus the accepting position after the last token.
        let words = (tokens.len() + 1).div_ceil(64);
        let mut star = vec![0u64; words];
        let mut percent = vec![0u64; words];
        let mut literals: BTreeMap<char, Vec<u64>> = BTreeMap::new();
        for (position, token) in tokens.iter().enumerate() {
            let (word, bit) = (position / 64, 1u64 << (position % 64));
            match token {
                Token::Any => star[word] |= bit,
                Token::Level => percent[word] |= bit,
                Token::Literal(c) => {
                    literals.entry(*c).or_insert_with(|| vec![0u64; words])[word] |= bit
                }
            }
        }
        let wildcard = star.iter().zip(&percent).map(|(s, p)| s | p).collect();
        ListPattern {
            tokens,
            star,
            percent,
            wildcard,
            literals,
            matches_nothing: false,
        }
    }

    fn nothing() -> ListPattern {
        ListPattern {
            tokens: Vec::new(),
            star: Vec::new(),
            percent: Vec::new(),
            wildcard: Vec::new(),
            literals: BTreeMap::new(),
            matches_nothing: true,
        }
    }

    /// Whether `name` matches the whole pattern.
    pub(crate) fn matches(&self, name: &str) -> bool {
        if self.matches_nothing {
            return false;
        }
        let words = self.star.len();
        let accept = self.tokens.len();
        let mut live = vec![0u64; words];
        live[0] = 1;
        self.skip_wildcards(&mut live);
        let mut next = vec![0u64; words];
        for c in name.chars() {
            // Through a literal equal to c: the position after it.
            next.iter_mut().for_each(|w| *w = 0);
            if let Some(positions) = self.literals.get(&c) {
                let mut carry = 0;
                for (i, word) in next.iter_mut().enumerate() {
                    let through = live[i] & positions[i];
                    *word = (through << 1) | carry;
                    carry = through >> 63;
                }
            }
            // A wildcard consumes c and stays; `%` never consumes the delimiter.
            for i in 0..words {
                next[i] |= live[i] & self.star[i];
                if c != DELIMITER {
                    next[i] |= live[i] & self.percent[i];
                }
            }
            self.skip_wildcards(&mut next);
            std::mem::swap(&mut live, &mut next);
            if live.iter().all(|w| *w == 0) {
                return false;
            }
        }
        live[accept / 64] & (1 << (accept % 64)) != 0
    }

    /// A wildcard may match nothing: a live wildcard makes the position
    /// after it live too. Runs are collapsed, so one step is enough.
    fn skip_wildcards(&self, live: &mut [u64]) {
        let mut carry = 0;
        for (i, word) in live.iter_mut().enumerate() {
            let skipping = *word & self.wildcard[i];
            *word |= (skipping << 1) | carry;
            carry = skipping >> 63;
        }
    }
}

/// `INBOX` is case-insensitive, also as the first level of a pattern.
fn canonical_pattern(pattern: &str) -> String {
    let (first, rest) = match pattern.split_once(DELIMITER) {
        Some((first, rest)) => (first, Some(rest)),
        None => (pattern, None),
    };
    let first = if first.eq_ignore_ascii_case(INBOX) {
        INBOX
    } else {
        first
    };
    match rest {
        Some(rest) => format!("{first}{DELIMITER}{rest}"),
        None => first.to_string(),
    }
}

/// One name LIST or LSUB may return: a mailbox, a parent only implied by
/// a child's name, or a subscribed name (which may name no mailbox).
#[derive(Default)]
struct Entry<'a> {
    mailbox: Option<&'a Mailbox>,
    /// Some existing mailbox is below this name.
    has_children: bool,
    /// The name is in the subscription list.
    subscribed: bool,
    /// Some subscribed name is below this name.
    subscribed_below: bool,
    /// Some subscribed name below this name does not match the pattern
    /// (LSUB shows such a parent `\Noselect`, RFC 3501 §6.3.9).
    subscribed_below_unmatched: bool,
}

impl Session<'_> {
    pub(crate) async fn list(
        &mut self,
        reference: &[u8],
        patterns: &[Vec<u8>],
        select: &ListSelect,
        ret: &ListReturn,
        extended: bool,
    ) -> Result<Done> {
        // A reference or pattern no mailbox name can match matches nothing.
        let Ok(reference) = self.mailbox_name(reference) else {
            return Ok(Done::Ok("LIST completed".into()));
        };
        // RFC 9051 §6.3.9: an empty pattern asks for the delimiter.
        if !extended && patterns.len() == 1 && patterns[0].is_empty() {
            self.untagged("LIST (\\Noselect) \"/\" \"\"");
            return Ok(Done::Ok("LIST completed".into()));
        }
        let mut compiled = Vec::new();
        for pattern in patterns {
            let Ok(pattern) = self.mailbox_name(pattern) else {
                continue;
            };
            if pattern.is_empty() {
                continue;
            }
            let full = if pattern.starts_with(DELIMITER) || reference.is_empty() {
                pattern
            } else if reference.ends_with(DELIMITER) {
                format!("{reference}{pattern}")
            } else {
                format!("{reference}{DELIMITER}{pattern}")
            };
            compiled.push(ListPattern::new(&canonical_pattern(&full)));
        }
        let account = self.account_id();
        let mailboxes = self.server.store.list_mailboxes(account).await?;
        let subscriptions = self.server.store.subscriptions(account).await?;
        let entries = entries(&mailboxes, &subscriptions, None);
        let show_subscribed = select.subscribed || ret.subscribed;
        let utf8 = self.utf8_names();
        for (name, entry) in &entries {
            if !compiled.iter().any(|p| p.matches(name)) {
                continue;
            }
            // RFC 5258 §3: with RECURSIVEMATCH, a name with a subscribed
            // name below it carries CHILDINFO, listed or not on its own.
            let child_info = select.recursive_match && entry.subscribed_below;
            let listed = if select.subscribed {
                // Subscribed names, whether or not a mailbox has them.
                entry.subscribed || child_info
            } else {
                entry.mailbox.is_some() || entry.has_children
            };
            if !listed {
                continue;
            }
            if select.special_use && entry.mailbox.and_then(|m| m.special_use).is_none() {
                continue;
            }
            let mut attributes: Vec<&str> = Vec::new();
            match entry.mailbox {
                None if utf8 || extended => attributes.push("\\NonExistent"),
                None => attributes.push("\\Noselect"),
                Some(m) => {
                    if let Some(special) = m.special_use {
                        attributes.push(special.as_imap());
                    }
                }
            }
            attributes.push(if entry.has_children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
            if show_subscribed && entry.subscribed {
                attributes.push("\\Subscribed");
            }
            let mut line = format!("* LIST ({}) \"/\" ", attributes.join(" ")).into_bytes();
            encode::mailbox(&mut line, name, utf8);
            if child_info {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            line.extend_from_slice(b"\r\n");
            self.conn.write(&line);
            if let (Some(items), Some(m)) = (&ret.status, entry.mailbox) {
                // RFC 5819: STATUS right after its LIST line.
                self.write_status(m, items).await?;
            }
        }
        Ok(Done::Ok("LIST completed".into()))
    }

    pub(crate) async fn lsub(&mut self, reference: &[u8], pattern: &[u8]) -> Result<Done> {
        let (Ok(reference), Ok(pattern)) =
            (self.mailbox_name(reference), self.mailbox_name(pattern))
        else {
            return Ok(Done::Ok("LSUB completed".into()));
        };
        let pattern = ListPattern::new(&canonical_pattern(&format!("{reference}{pattern}")));
        let account = self.account_id();
        let mailboxes = self.server.store.list_mailboxes(account).await?;
        let subscriptions = self.server.store.subscriptions(account).await?;
        for (name, entry) in &entries(&mailboxes, &subscriptions, Some(&pattern)) {
            // A subscribed name; or, under `%`, a parent of subscribed names
            // the pattern does not reach, as \Noselect (RFC 3501 §6.3.9).
            let attributes = if entry.subscribed {
                "()"
            } else if entry.subscribed_below_unmatched {
                "(\\Noselect)"
            } else {
                continue;
            };
            if pattern.matches(name) {
                let mut line = format!("* LSUB {attributes} \"/\" ").into_bytes();
                encode::mailbox(&mut line, name, self.utf8_names());
                line.extend_from_slice(b"\r\n");
                self.conn.write(&line);
            }
        }
        Ok(Done::Ok("LSUB completed".into()))
    }
}

/// Every name LIST or LSUB may return: the mailboxes, the subscribed names
/// and the parents both imply. `lsub` is LSUB's pattern, for
/// `subscribed_below_unmatched`.
fn entries<'a>(
    mailboxes: &'a [Mailbox],
    subscriptions: &[String],
    lsub: Option<&ListPattern>,
) -> BTreeMap<String, Entry<'a>> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for m in mailboxes {
        entries.entry(m.name.clone()).or_default().mailbox = Some(m);
        for parent in parents(&m.name) {
            entries.entry(parent.to_string()).or_default().has_children = true;
        }
    }
    for name in subscriptions {
        entries.entry(name.clone()).or_default().subscribed = true;
        let unmatched = lsub.is_some_and(|p| !p.matches(name));
        for parent in parents(name) {
            let entry = entries.entry(parent.to_string()).or_default();
            entry.subscribed_below = true;
            entry.subscribed_below_unmatched |= unmatched;
        }
    }
    entries
}

/// `a/b/c` → `a/b`, `a`.
fn parents(name: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(name.rsplit_once(DELIMITER).map(|(p, _)| p), |p| {
        p.rsplit_once(DELIMITER).map(|(p, _)| p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        ListPattern::new(p).matches(n)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", "a/b/c"));
        assert!(m("%", "a"));
        assert!(!m("%", "a/b"));
        assert!(m("a/%", "a/b"));
        assert!(!m("a/%", "a/b/c"));
        assert!(m("a*c", "a/b/c"));
        assert!(m("INBOX", "INBOX"));
        assert!(!m("INBOX", "INBOX/x"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert_eq!(canonical_pattern("inbox/%"), "INBOX/%");
    }

    #[test]
    fn rfc_9051_list_examples() {
        // RFC 9051 §6.3.9: "foo*" matches foo, foo/bar and foobar/baz;
        // "%" only the top level; "foo/%" the children of foo.
        for name in ["foo", "foo/bar", "foobar/baz", "foobar"] {
            assert!(m("foo*", name), "{name}");
        }
        assert!(!m("foo*", "fo"));
        assert!(m("%", "foo") && !m("%", "foo/bar"));
        assert!(m("foo/%", "foo/bar") && !m("foo/%", "foo/bar/baz"));
        assert!(m("foo%", "foobar") && !m("foo%", "foobar/baz"));
        assert!(m("~smith/Mail/%", "~smith/Mail/foo"));
        assert!(m("#news.comp.mail.misc", "#news.comp.mail.misc"));
        assert!(m("/usr/staff/jones", "/usr/staff/jones"));
    }

    #[test]
    fn mixed_wildcards() {
        assert!(m("*%", "a/b"));
        assert!(m("%*", "a/b"));
        assert!(m("%/*", "a/b/c"));
        assert!(!m("%/%", "a/b/c"));
        assert!(m("%/%/%", "a/b/c"));
        assert!(m("a%b*c", "axb/c") && !m("a%b*c", "a/b/c"));
        assert!(m("*b%", "a/b/bx") && !m("*b%", "a/b/c"));
        assert!(m("%b*", "ab/c") && !m("%b*", "a/b"));
        // Pattern positions past 64 (several words of the bit set).
        let long = "x".repeat(100);
        assert!(m(&format!("{long}*%y"), &format!("{long}/q/y")));
        assert!(m(&format!("%{long}%"), &format!("a{long}b")));
        assert!(!m(&format!("%{long}%"), &format!("a/{long}b")));
    }

    #[test]
    fn hostile_patterns_answer_quickly() {
        let name = "a/".repeat(400) + "b";
        // 60,000 wildcards: one after collapsing.
        assert!(m(&"*".repeat(60_000), &name));
        assert!(m(&"*%".repeat(30_000), &name));
        assert!(!m(&"%".repeat(60_000), &name));
        // Exponential for a backtracking matcher.
        let pattern = "*a".repeat(500) + "*c";
        let started = std::time::Instant::now();
        for _ in 0..100 {
            assert!(!m(&pattern, &name));
            assert!(!m(&"%a".repeat(500), &("a".repeat(998) + "b")));
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // More literal characters than any name can have match nothing.
        assert!(!m(&"a".repeat(1001), &"a".repeat(1001)));
        assert!(!m(
            &("*".to_string() + &"a*".repeat(5000)),
            &"a".repeat(999)
        ));
    }
}
