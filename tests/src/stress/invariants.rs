//! The checks made on every IMAP response as it is read: the session's
//! sequence numbers against the EXISTS/EXPUNGE it was told, UIDs against
//! every UID ever seen, content against earlier FETCHes, keywords against
//! the FLAGS announced, `\Recent` against other sessions.

use super::message;
use super::model::{MailboxKey, SessionModel, World, hash, normalize_flags};
use super::report::{Finding, Rule};
use super::wire::{Untagged, Value, item};

/// What a response arrives in answer to.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// "FETCH", "UID STORE", "IDLE" …
    pub name: &'static str,
    /// FETCH, STORE and SEARCH without UID: no EXPUNGE may be sent while
    /// they are answered (RFC 9051 §7.5.1).
    pub forbids_expunge: bool,
    /// The clock when the command was sent.
    pub sent_at: u64,
    /// For STATUS, APPEND, COPY, MOVE: the mailbox whose new UIDs and
    /// UIDNEXT are checked, with [`World::before`] when the command was sent.
    pub target: Option<(MailboxKey, (u32, u32))>,
}

impl CommandContext {
    pub fn forbids_expunge(name: &str) -> bool {
        matches!(name, "FETCH" | "STORE" | "SEARCH")
    }
}

impl World {
    pub fn see_uid_validity(&mut self, key: &MailboxKey, validity: u32) -> Vec<Finding> {
        let record = self.mailbox(key);
        match record.uid_validity {
            None => {
                record.uid_validity = Some(validity);
                Vec::new()
            }
            Some(known) if known == validity => Vec::new(),
            Some(known) => {
                record.uid_validity = Some(validity);
                vec![Finding::new(
                    Rule::UidValidityChanged,
                    format!("{key}: UIDVALIDITY {known}, now {validity}"),
                )]
            }
        }
    }

    /// UIDNEXT from SELECT/EXAMINE or STATUS, against what was seen before
    /// the command was sent.
    pub fn see_uid_next(
        &mut self,
        key: &MailboxKey,
        next: u32,
        before: (u32, u32),
    ) -> Vec<Finding> {
        let (max_uid, max_next) = before;
        let record = self.mailbox(key);
        record.max_uid_next = record.max_uid_next.max(next);
        let mut out = Vec::new();
        if next <= max_uid {
            out.push(Finding::new(
                Rule::UidNextWentBack,
                format!("{key}: UIDNEXT {next}, but UID {max_uid} was seen before the command"),
            ));
        }
        if next < max_next {
            out.push(Finding::new(
                Rule::UidNextWentBack,
                format!("{key}: UIDNEXT {next}, but UIDNEXT {max_next} was seen before"),
            ));
        }
        out
    }

    /// A UID a command just assigned (APPENDUID, COPYUID): above every UID
    /// seen before the command was sent.
    pub fn new_uid(&mut self, key: &MailboxKey, uid: u32, before: (u32, u32)) -> Vec<Finding> {
        let mut out = Vec::new();
        if uid <= before.0 {
            out.push(Finding::new(
                Rule::UidNotNew,
                format!(
                    "{key}: new UID {uid}, but UID {} was seen before the command",
                    before.0
                ),
            ));
        }
        if uid < before.1 {
            out.push(Finding::new(
                Rule::UidNotNew,
                format!(
                    "{key}: new UID {uid}, but UIDNEXT was {} before the command",
                    before.1
                ),
            ));
        }
        let record = self.mailbox(key);
        if let Some(existing) = record.uids.get(&uid)
            && existing.expunged_at.is_some()
        {
            out.push(Finding::new(
                Rule::UidReused,
                format!("{key}: UID {uid} assigned again after it was expunged"),
            ));
        }
        out
    }

    /// A UID shown to a session that selected at `selected_at`, with the
    /// Message-ID the response carried, if any.
    pub fn see_uid(
        &mut self,
        key: &MailboxKey,
        uid: u32,
        message_id: Option<&str>,
        selected_at: u64,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let record = self.mailbox(key);
        record.max_uid = record.max_uid.max(uid);
        let entry = record.uids.entry(uid).or_default();
        if let Some(expunged) = entry.expunged_at
            && expunged < selected_at
        {
            out.push(Finding::new(
                Rule::ExpungedUidReturned,
                format!(
                    "{key}: UID {uid} was seen expunged (clock {expunged}) before this session selected (clock {selected_at})"
                ),
            ));
        }
        if let Some(id) = message_id {
            match &entry.message_id {
                None => entry.message_id = Some(id.to_string()),
                Some(known) if known == id => {}
                Some(known) => out.push(Finding::new(
                    Rule::UidReused,
                    format!("{key}: UID {uid} was {known}, now {id}"),
                )),
            }
        }
        out
    }

    pub fn expunged(&mut self, key: &MailboxKey, uid: u32) {
        let now = self.clock;
        let entry = self.mailbox(key).uids.entry(uid).or_default();
        entry.expunged_at.get_or_insert(now);
    }

    /// Message bytes served for a UID (IMAP BODY[], POP3 RETR).
    pub fn see_body(
        &mut self,
        key: &MailboxKey,
        uid: u32,
        bytes: &[u8],
        how: &str,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let digest = (hash(bytes), bytes.len());
        let entry = self.mailbox(key).uids.entry(uid).or_default();
        match entry.body {
            None => entry.body = Some(digest),
            Some(known) if known == digest => {}
            Some((_, len)) => out.push(Finding::new(
                Rule::ContentChanged,
                format!(
                    "{key}: UID {uid}: {how} returned {} octets with another hash than the {len} octets served before",
                    bytes.len()
                ),
            )),
        }
        if let Some(size) = entry.size
            && size != bytes.len() as u64
        {
            out.push(Finding::new(
                Rule::SizeMismatch,
                format!(
                    "{key}: UID {uid}: size {size}, but {how} served {} octets",
                    bytes.len()
                ),
            ));
        }
        out
    }

    /// RFC822.SIZE (or a POP3 LIST size) of a UID.
    pub fn see_size(&mut self, key: &MailboxKey, uid: u32, size: u64, how: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        let entry = self.mailbox(key).uids.entry(uid).or_default();
        match entry.size {
            None => entry.size = Some(size),
            Some(known) if known == size => {}
            Some(known) => out.push(Finding::new(
                Rule::ContentChanged,
                format!("{key}: UID {uid}: {how} {size}, before {known}"),
            )),
        }
        if let Some((_, len)) = entry.body
            && len as u64 != size
        {
            out.push(Finding::new(
                Rule::SizeMismatch,
                format!("{key}: UID {uid}: {how} {size}, but the message served is {len} octets"),
            ));
        }
        out
    }

    pub fn see_envelope(
        &mut self,
        key: &MailboxKey,
        uid: u32,
        envelope: &Value,
        rev2: bool,
    ) -> Vec<Finding> {
        let mut canonical = Vec::new();
        envelope.canonical(&mut canonical);
        let digest = hash(&canonical);
        let entry = self.mailbox(key).uids.entry(uid).or_default();
        let slot = &mut entry.envelope[usize::from(rev2)];
        match slot {
            None => {
                *slot = Some(digest);
                Vec::new()
            }
            Some(known) if *known == digest => Vec::new(),
            Some(_) => vec![Finding::new(
                Rule::ContentChanged,
                format!(
                    "{key}: UID {uid}: ENVELOPE differs from the one served before: {}",
                    String::from_utf8_lossy(&canonical)
                ),
            )],
        }
    }

    /// `\Recent` shown to a session: at most one read-write session per message.
    pub fn see_recent(
        &mut self,
        key: &MailboxKey,
        uid: u32,
        session: u64,
        session_name: &str,
        read_write: bool,
    ) -> Vec<Finding> {
        if !read_write {
            // RFC 3501 §2.3.2: only a read-write session takes \Recent away
            // from the sessions after it.
            return Vec::new();
        }
        let entry = self.mailbox(key).uids.entry(uid).or_default();
        match &entry.recent_session {
            None => {
                entry.recent_session = Some((session, session_name.to_string()));
                Vec::new()
            }
            Some((first, _)) if *first == session => Vec::new(),
            Some((_, first)) if !entry.recent_reported => {
                let detail = format!(
                    "{key}: UID {uid} is \\Recent in session {session_name}, and was in session {first}"
                );
                entry.recent_reported = true;
                vec![Finding::new(Rule::RecentInTwoSessions, detail)]
            }
            Some(_) => Vec::new(),
        }
    }
}

impl World {
    /// A POP3 session got +OK to PASS: no other session may have held the
    /// maildrop since before PASS was sent (RFC 1939 §4: exclusive access).
    pub fn pop3_login(&mut self, account: &str, session: u64, pass_sent: u64) -> Vec<Finding> {
        let now = self.tick();
        let holders = self.pop3_holders.entry(account.to_string()).or_default();
        let others: Vec<String> = holders
            .iter()
            .filter(|(_, since)| *since < pass_sent)
            .map(|(id, since)| format!("session #{id} (holding since clock {since})"))
            .collect();
        holders.push((session, now));
        if others.is_empty() {
            return Vec::new();
        }
        vec![Finding::new(
            Rule::Pop3LockShared,
            format!(
                "{account}: PASS +OK while {} held the maildrop",
                others.join(", ")
            ),
        )]
    }

    /// The session sent QUIT (or lost its connection): it no longer holds the maildrop.
    pub fn pop3_logout(&mut self, account: &str, session: u64) {
        if let Some(holders) = self.pop3_holders.get_mut(account) {
            holders.retain(|(id, _)| *id != session);
        }
    }
}

/// Applies one untagged response to the session's model; returns what it broke.
pub fn apply(
    model: &mut SessionModel,
    world: &mut World,
    ctx: &CommandContext,
    response: &Untagged,
) -> Vec<Finding> {
    let mut out = Vec::new();
    match response {
        Untagged::Exists(n) => {
            if let Some(sel) = model.selected.as_mut() {
                let n = *n as usize;
                if n < sel.uids.len() {
                    out.push(Finding::new(
                        Rule::ExistsShrank,
                        format!(
                            "{}: EXISTS {n} after the session was told {}",
                            sel.key,
                            sel.uids.len()
                        ),
                    ));
                    // Follow the server: the next responses are checked against it.
                    sel.uids.truncate(n);
                } else {
                    sel.uids.resize(n, None);
                }
            }
        }
        Untagged::Expunge(seq) => {
            if ctx.forbids_expunge {
                out.push(Finding::new(
                    Rule::ExpungeDuringFetch,
                    format!("* {seq} EXPUNGE while answering {}", ctx.name),
                ));
            }
            if let Some(sel) = model.selected.as_mut() {
                let seq = *seq as usize;
                if seq == 0 || seq > sel.uids.len() {
                    out.push(Finding::new(
                        Rule::SequenceOutOfRange,
                        format!(
                            "{}: EXPUNGE {seq}, the session has {}",
                            sel.key,
                            sel.uids.len()
                        ),
                    ));
                } else if let Some(uid) = sel.uids.remove(seq - 1) {
                    sel.flags.remove(&uid);
                    world.expunged(&sel.key, uid);
                }
            }
        }
        Untagged::Vanished { earlier, uids } => {
            if let Some(sel) = model.selected.as_mut()
                && !earlier
            {
                for uid in uids {
                    if let Some(seq) = sel.seq_of(*uid) {
                        sel.uids.remove(seq as usize - 1);
                        sel.flags.remove(uid);
                        world.expunged(&sel.key, *uid);
                    }
                }
            }
        }
        Untagged::Flags(flags) => {
            if let Some(sel) = model.selected.as_mut() {
                sel.announced = flags
                    .iter()
                    .filter(|f| !f.starts_with('\\'))
                    .map(|f| f.to_ascii_lowercase())
                    .collect();
            }
        }
        Untagged::State {
            code: Some(code), ..
        } => match code.name.as_str() {
            "UIDVALIDITY" => {
                if let (Some(sel), Some(v)) = (model.selected.as_ref(), code.number()) {
                    out.extend(world.see_uid_validity(&sel.key.clone(), v));
                }
            }
            "UIDNEXT" => {
                if let (Some(sel), Some(next)) = (model.selected.as_ref(), code.number()) {
                    let key = sel.key.clone();
                    let before = ctx
                        .target
                        .as_ref()
                        .filter(|(k, _)| *k == key)
                        .map(|(_, b)| *b)
                        .unwrap_or((0, 0));
                    out.extend(world.see_uid_next(&key, next, before));
                }
            }
            _ => {}
        },
        Untagged::Status { mailbox, items } => {
            let key = MailboxKey::new(&model.account, mailbox);
            for (name, value) in items {
                let value = *value as u32;
                match name.as_str() {
                    "UIDVALIDITY" => out.extend(world.see_uid_validity(&key, value)),
                    "UIDNEXT" => {
                        let before = ctx
                            .target
                            .as_ref()
                            .filter(|(k, _)| *k == key)
                            .map(|(_, b)| *b)
                            .unwrap_or((0, 0));
                        out.extend(world.see_uid_next(&key, value, before));
                    }
                    _ => {}
                }
            }
        }
        Untagged::Search(numbers) => out.extend(search_results(model, ctx, numbers, None)),
        Untagged::Esearch { uid, all } => out.extend(search_results(model, ctx, all, Some(*uid))),
        Untagged::Fetch { seq, items } => out.extend(fetch(model, world, *seq, items)),
        _ => {}
    }
    out
}

/// SEARCH hits: sequence numbers the session has, or UIDs it has.
fn search_results(
    model: &SessionModel,
    ctx: &CommandContext,
    numbers: &[u32],
    esearch_uid: Option<bool>,
) -> Vec<Finding> {
    let Some(sel) = model.selected.as_ref() else {
        return Vec::new();
    };
    let uid = esearch_uid.unwrap_or(ctx.name == "UID SEARCH");
    let mut out = Vec::new();
    for n in numbers {
        if uid {
            let has_unknown = sel.uids.iter().any(Option::is_none);
            if !has_unknown && sel.seq_of(*n).is_none() {
                out.push(Finding::new(
                    Rule::SequenceOutOfRange,
                    format!(
                        "{}: {} found UID {n}, which the session does not have",
                        sel.key, ctx.name
                    ),
                ));
            }
        } else if *n == 0 || *n as usize > sel.uids.len() {
            out.push(Finding::new(
                Rule::SequenceOutOfRange,
                format!(
                    "{}: {} found message {n}, the session has {}",
                    sel.key,
                    ctx.name,
                    sel.uids.len()
                ),
            ));
        }
    }
    out
}

fn fetch(
    model: &mut SessionModel,
    world: &mut World,
    seq: u32,
    items: &[(String, Value)],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let session = model.id;
    let name = model.name.clone();
    let rev2 = model.rev2;
    let Some(sel) = model.selected.as_mut() else {
        return out;
    };
    let index = seq as usize;
    if index == 0 || index > sel.uids.len() {
        out.push(Finding::new(
            Rule::SequenceOutOfRange,
            format!(
                "{}: FETCH for message {seq}, the session has {}",
                sel.key,
                sel.uids.len()
            ),
        ));
        return out;
    }
    let told = sel.uids[index - 1];
    let uid = match item(items, "UID").and_then(Value::as_number) {
        Some(uid) => {
            let uid = uid as u32;
            match told {
                Some(known) if known != uid => {
                    out.push(Finding::new(
                        Rule::SequenceMismatch,
                        format!("{}: message {seq} is UID {known} for this session, FETCH says UID {uid}", sel.key),
                    ));
                }
                Some(_) => {}
                None => {
                    let below = sel.uids[..index - 1].iter().rev().flatten().next();
                    let above = sel.uids[index..].iter().flatten().next();
                    if below.is_some_and(|b| *b >= uid) || above.is_some_and(|a| *a <= uid) {
                        out.push(Finding::new(
                            Rule::UidOrder,
                            format!(
                                "{}: message {seq} has UID {uid}, between UIDs {below:?} and {above:?}",
                                sel.key
                            ),
                        ));
                    } else {
                        sel.uids[index - 1] = Some(uid);
                    }
                }
            }
            Some(uid)
        }
        None => told,
    };
    let Some(uid) = uid else {
        return out;
    };
    let key = sel.key.clone();
    let envelope = item(items, "ENVELOPE");
    let body = item(items, "BODY[]");
    let message_id = envelope
        .and_then(Value::as_list)
        .and_then(|e| e.get(9))
        .and_then(Value::as_text)
        .or_else(|| match body {
            Some(Value::Str(bytes)) => message::message_id(bytes),
            _ => None,
        });
    out.extend(world.see_uid(&key, uid, message_id.as_deref(), sel.selected_at));
    if let Some(Value::Str(bytes)) = body {
        out.extend(world.see_body(&key, uid, bytes, "BODY[]"));
    }
    if let Some(size) = item(items, "RFC822.SIZE").and_then(Value::as_number) {
        out.extend(world.see_size(&key, uid, size, "RFC822.SIZE"));
    }
    if let Some(envelope) = envelope {
        out.extend(world.see_envelope(&key, uid, envelope, rev2));
    }
    if let Some(flags) = item(items, "FLAGS").and_then(Value::as_list) {
        let flags: Vec<String> = flags.iter().filter_map(Value::as_text).collect();
        let normalized = normalize_flags(&flags);
        for keyword in normalized.iter().filter(|f| !f.starts_with('\\')) {
            if !sel.announced.contains(keyword)
                && model.unannounced_reported.insert(keyword.clone())
            {
                out.push(Finding::new(
                    Rule::KeywordNotAnnounced,
                    format!(
                        "{key}: UID {uid} has keyword {keyword}; the session's last FLAGS listed {:?}",
                        sel.announced
                    ),
                ));
            }
        }
        if flags.iter().any(|f| f.eq_ignore_ascii_case("\\Recent")) {
            out.extend(world.see_recent(&key, uid, session, &name, !sel.read_only));
        }
        sel.flags.insert(uid, normalized);
    }
    out
}

#[cfg(test)]
#[path = "invariants_tests.rs"]
mod tests;
