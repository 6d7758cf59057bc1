//! Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST
//! (RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE),
//! LSUB, STATUS and APPEND.

use crate::encode;
use crate::parse::{ListReturn, ListSelect, StatusItem};
use crate::session::{Done, Session};
use pillarbox_store::{
    DELIMITER, Flags, INBOX, Mailbox, NewMessage, Result, SystemFlag, Target, UidRange,
};
use std::collections::BTreeMap;

/// Matches a LIST pattern: `*` matches anything, `%` anything but the delimiter.
pub(crate) fn pattern_matches(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|i| pattern_matches(rest, &name[i..])),
        Some(('%', rest)) => {
            for i in 0..=name.len() {
                if pattern_matches(rest, &name[i..]) {
                    return true;
                }
                if i < name.len() && name[i] == DELIMITER {
                    return false;
                }
            }
            false
        }
        Some((c, rest)) => name.first() == Some(c) && pattern_matches(rest, &name[1..]),
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

/// One name LIST may return: a real mailbox, or a parent only implied by a child.
struct Entry<'a> {
    mailbox: Option<&'a Mailbox>,
    has_children: bool,
    child_subscribed: bool,
}

impl Session<'_> {
    pub(crate) async fn create(&mut self, raw: &[u8]) -> Result<Done> {
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        // RFC 9051 §6.3.4: a trailing delimiter only says a child may follow.
        let name = name.trim_end_matches(DELIMITER);
        if name.eq_ignore_ascii_case(INBOX) {
            return Ok(Done::No("[ALREADYEXISTS] INBOX always exists".into()));
        }
        self.server
            .store
            .create_mailbox(self.account_id(), name, None)
            .await?;
        Ok(Done::Ok("CREATE completed".into()))
    }

    pub(crate) async fn delete(&mut self, raw: &[u8]) -> Result<Done> {
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        let account = self.account_id();
        let mailbox = self.server.store.require_mailbox(account, &name).await?;
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.mailbox.id == mailbox.id)
        {
            self.selected = None;
        }
        self.server.store.delete_mailbox(account, &name).await?;
        Ok(Done::Ok("DELETE completed".into()))
    }

    pub(crate) async fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<Done> {
        let (from, to) = match (self.mailbox_name(from), self.mailbox_name(to)) {
            (Ok(from), Ok(to)) => (from, to),
            (Err(done), _) | (_, Err(done)) => return Ok(done),
        };
        let account = self.account_id();
        self.server
            .store
            .rename_mailbox(account, &from, to.trim_end_matches(DELIMITER))
            .await?;
        Ok(Done::Ok("RENAME completed".into()))
    }

    pub(crate) async fn subscribe(&mut self, raw: &[u8], on: bool) -> Result<Done> {
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        self.server
            .store
            .set_subscribed(self.account_id(), &name, on)
            .await?;
        Ok(Done::Ok(format!(
            "{} completed",
            if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" }
        )))
    }

    pub(crate) async fn list(
        &mut self,
        reference: &[u8],
        patterns: &[Vec<u8>],
        select: &ListSelect,
        ret: &ListReturn,
        extended: bool,
    ) -> Result<Done> {
        let reference = match self.mailbox_name(reference) {
            Ok(r) => r,
            Err(done) => return Ok(done),
        };
        // RFC 9051 §6.3.9: an empty pattern asks for the delimiter.
        if !extended && patterns.len() == 1 && patterns[0].is_empty() {
            self.untagged("LIST (\\Noselect) \"/\" \"\"");
            return Ok(Done::Ok("LIST completed".into()));
        }
        let mut compiled = Vec::new();
        for pattern in patterns {
            let pattern = match self.mailbox_name(pattern) {
                Ok(p) => p,
                Err(done) => return Ok(done),
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
            compiled.push(canonical_pattern(&full).chars().collect::<Vec<char>>());
        }
        let mailboxes = self.server.store.list_mailboxes(self.account_id()).await?;
        let entries = entries(&mailboxes);
        let show_subscribed = select.subscribed || ret.subscribed;
        let utf8 = self.rev2;
        for (name, entry) in &entries {
            let chars: Vec<char> = name.chars().collect();
            if !compiled.iter().any(|p| pattern_matches(p, &chars)) {
                continue;
            }
            let subscribed = entry.mailbox.is_some_and(|m| m.subscribed);
            let mut child_info = false;
            if select.subscribed && !subscribed {
                if select.recursive_match && entry.child_subscribed {
                    child_info = true;
                } else {
                    continue;
                }
            }
            if select.special_use && entry.mailbox.and_then(|m| m.special_use).is_none() {
                continue;
            }
            let mut attributes: Vec<&str> = Vec::new();
            match entry.mailbox {
                None => attributes.push(if utf8 { "\\NonExistent" } else { "\\Noselect" }),
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
            if show_subscribed && subscribed {
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
        let (reference, pattern) = match (self.mailbox_name(reference), self.mailbox_name(pattern))
        {
            (Ok(r), Ok(p)) => (r, p),
            (Err(done), _) | (_, Err(done)) => return Ok(done),
        };
        let full = canonical_pattern(&format!("{reference}{pattern}"));
        let chars: Vec<char> = full.chars().collect();
        let mailboxes = self.server.store.list_mailboxes(self.account_id()).await?;
        for m in mailboxes.iter().filter(|m| m.subscribed) {
            let name: Vec<char> = m.name.chars().collect();
            if pattern_matches(&chars, &name) {
                let mut line = b"* LSUB () \"/\" ".to_vec();
                encode::mailbox(&mut line, &m.name, self.rev2);
                line.extend_from_slice(b"\r\n");
                self.conn.write(&line);
            }
        }
        Ok(Done::Ok("LSUB completed".into()))
    }

    pub(crate) async fn status(&mut self, raw: &[u8], items: &[StatusItem]) -> Result<Done> {
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        let mailbox = self
            .server
            .store
            .require_mailbox(self.account_id(), &name)
            .await?;
        self.write_status(&mailbox, items).await?;
        Ok(Done::Ok("STATUS completed".into()))
    }

    async fn write_status(&mut self, mailbox: &Mailbox, items: &[StatusItem]) -> Result<()> {
        let store = &self.server.store;
        let counts = store.mailbox_counts(mailbox.id).await?;
        let mut values = Vec::new();
        for item in items {
            let value = match item {
                StatusItem::Messages => format!("MESSAGES {}", counts.messages),
                StatusItem::UidNext => format!("UIDNEXT {}", mailbox.uid_next),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", mailbox.uid_validity),
                StatusItem::Unseen => format!("UNSEEN {}", counts.unseen),
                StatusItem::Size => format!("SIZE {}", counts.size),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", mailbox.highest_modseq),
                StatusItem::Recent => {
                    // \Recent is per session here: only the selected mailbox has any.
                    let recent = self
                        .selected
                        .as_ref()
                        .filter(|s| s.mailbox.id == mailbox.id)
                        .map(|s| s.recent_count())
                        .unwrap_or(0);
                    format!("RECENT {recent}")
                }
                StatusItem::Deleted => {
                    let deleted = store
                        .messages(mailbox.id, UidRange::all())
                        .await?
                        .iter()
                        .filter(|m| m.flags.contains(SystemFlag::Deleted))
                        .count();
                    format!("DELETED {deleted}")
                }
            };
            values.push(value);
        }
        let mut line = b"* STATUS ".to_vec();
        encode::mailbox(&mut line, &mailbox.name, self.rev2);
        line.extend_from_slice(format!(" ({})\r\n", values.join(" ")).as_bytes());
        self.conn.write(&line);
        Ok(())
    }

    pub(crate) async fn append(
        &mut self,
        raw: &[u8],
        flag_names: &[String],
        date: Option<i64>,
        message: &[u8],
    ) -> Result<Done> {
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        let account = self.account_id();
        let Some(mailbox) = self.server.store.mailbox(account, &name).await? else {
            return Ok(Done::No(format!(
                "[TRYCREATE] Mailbox {name:?} does not exist: CREATE it first"
            )));
        };
        if message.is_empty() {
            return Ok(Done::No(
                "[CANNOT] An empty message cannot be appended".into(),
            ));
        }
        if message.len() as u64 > self.server.config.append_limit {
            return Ok(Done::No(format!(
                "[TOOBIG] Message is larger than the APPENDLIMIT of {} octets",
                self.server.config.append_limit
            )));
        }
        let flags = match to_flags(flag_names) {
            Ok(flags) => flags,
            Err(done) => return Ok(done),
        };
        let new = NewMessage {
            raw: bytes::Bytes::copy_from_slice(message),
            trace_headers: Vec::new(),
            internal_date: date,
        };
        let target = Target {
            account,
            mailbox: mailbox.id,
            flags,
        };
        // Over quota comes back as an error and is answered NO [OVERQUOTA].
        let delivered = self.server.store.deliver(&new, &[target]).await?;
        let Some(d) = delivered.first() else {
            return Ok(Done::No("[SERVERBUG] Message was not stored".into()));
        };
        Ok(Done::Ok(format!(
            "[APPENDUID {} {}] APPEND completed",
            mailbox.uid_validity, d.uid
        )))
    }
}

/// Flags from a client, as the store keeps them. `\Recent` cannot be set.
pub(crate) fn to_flags(names: &[String]) -> Result<Flags, Done> {
    let mut flags = Flags::new();
    for name in names {
        if let Some(flag) = SystemFlag::from_imap(name) {
            flags.insert(flag);
        } else if name.starts_with('\\') {
            if name.eq_ignore_ascii_case("\\Recent") {
                continue;
            }
            return Err(Done::Bad(format!(
                "{name} is not a flag: use \\Seen \\Answered \\Flagged \\Deleted \\Draft or a keyword"
            )));
        } else {
            flags.insert_keyword(name);
        }
    }
    Ok(flags)
}

/// Every listable name: the mailboxes and the parents their names imply.
fn entries(mailboxes: &[Mailbox]) -> BTreeMap<String, Entry<'_>> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for m in mailboxes {
        entries
            .entry(m.name.clone())
            .or_insert(Entry {
                mailbox: None,
                has_children: false,
                child_subscribed: false,
            })
            .mailbox = Some(m);
        let mut parent = m.name.as_str();
        while let Some((p, _)) = parent.rsplit_once(DELIMITER) {
            let e = entries.entry(p.to_string()).or_insert(Entry {
                mailbox: None,
                has_children: false,
                child_subscribed: false,
            });
            e.has_children = true;
            if m.subscribed {
                e.child_subscribed = true;
            }
            parent = p;
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        pattern_matches(
            &p.chars().collect::<Vec<_>>(),
            &n.chars().collect::<Vec<_>>(),
        )
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
        assert_eq!(canonical_pattern("inbox/%"), "INBOX/%");
    }
}
