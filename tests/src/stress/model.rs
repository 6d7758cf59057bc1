//! What the checker knows: per mailbox every UID ever seen (with its
//! Message-ID, content hashes, who saw it `\Recent`, when it was seen
//! expunged), the ledger of every message it sent and what it did to it,
//! the POP3 maildrop holders, and each IMAP session's own view (sequence
//! numbers → UIDs, flags, the keywords FLAGS announced).

use super::report::Report;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub type SessionId = u64;

/// A mailbox of an account (names as the checker writes them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxKey {
    pub account: String,
    pub mailbox: String,
}

impl MailboxKey {
    pub fn new(account: &str, mailbox: &str) -> MailboxKey {
        MailboxKey {
            account: account.to_string(),
            // INBOX is case-insensitive (RFC 9051 §5.1); other names are ours.
            mailbox: if mailbox.eq_ignore_ascii_case("INBOX") {
                "INBOX".to_string()
            } else {
                mailbox.to_string()
            },
        }
    }
}

impl std::fmt::Display for MailboxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account, self.mailbox)
    }
}

pub type Hash = [u8; 32];

pub fn hash(bytes: &[u8]) -> Hash {
    *blake3::hash(bytes).as_bytes()
}

/// One UID of one mailbox, as far as anyone has seen it.
#[derive(Debug, Default, Clone)]
pub struct UidRecord {
    pub message_id: Option<String>,
    /// BODY[] (or POP3 RETR) bytes: hash and length.
    pub body: Option<(Hash, usize)>,
    pub size: Option<u64>,
    /// ENVELOPE by session mode: IMAP4rev1, IMAP4rev2 (their encodings differ).
    pub envelope: [Option<Hash>; 2],
    /// The read-write session that saw `\Recent` on it first (id, name).
    pub recent_session: Option<(SessionId, String)>,
    pub recent_reported: bool,
    /// The clock when some session was told it was expunged.
    pub expunged_at: Option<u64>,
}

#[derive(Debug, Default, Clone)]
pub struct MailboxRecord {
    pub uid_validity: Option<u32>,
    /// The largest UID any answer has shown.
    pub max_uid: u32,
    pub max_uid_next: u32,
    pub uids: HashMap<u32, UidRecord>,
}

/// What the checker did with one message it made (by Message-ID).
#[derive(Debug, Clone)]
pub struct Ledger {
    pub account: String,
    /// "SMTP" or "APPEND".
    pub via: &'static str,
    /// 250 after DATA, or APPEND OK.
    pub acknowledged: bool,
    /// Copies made (COPYUID pairs of COPY, not MOVE).
    pub copies: u32,
    /// A COPY whose result is unknown (no COPYUID, no answer) named it.
    pub copies_unknown: bool,
    /// `\Deleted` was set on it, or POP3 DELE named it: it may be gone.
    pub delete_intent: bool,
}

/// A command's refusal that says a message is gone: checked at the end.
#[derive(Debug, Clone)]
pub struct GoneClaim {
    pub key: MailboxKey,
    pub uid: u32,
    pub session: String,
    pub answer: String,
}

#[derive(Debug, Default)]
pub struct World {
    /// Advances with every command sent and every response read: "before"
    /// and "after" between sessions (the lock makes it one order).
    pub clock: u64,
    pub mailboxes: HashMap<MailboxKey, MailboxRecord>,
    pub ledger: HashMap<String, Ledger>,
    /// POP3 sessions holding each account's maildrop: (session, clock of +OK).
    pub pop3_holders: HashMap<String, Vec<(SessionId, u64)>>,
    pub gone_claims: Vec<GoneClaim>,
}

/// Everything the client tasks share, behind one lock held only briefly.
#[derive(Debug, Default)]
pub struct Shared {
    pub world: World,
    pub report: Report,
}

impl World {
    pub fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub fn mailbox(&mut self, key: &MailboxKey) -> &mut MailboxRecord {
        self.mailboxes.entry(key.clone()).or_default()
    }

    /// (largest UID seen, largest UIDNEXT seen) now: new UIDs assigned by a
    /// command sent after this must be above.
    pub fn before(&self, key: &MailboxKey) -> (u32, u32) {
        self.mailboxes
            .get(key)
            .map(|m| (m.max_uid, m.max_uid_next))
            .unwrap_or((0, 0))
    }

    pub fn message_id(&self, key: &MailboxKey, uid: u32) -> Option<&str> {
        self.mailboxes
            .get(key)?
            .uids
            .get(&uid)?
            .message_id
            .as_deref()
    }

    pub fn attempt(&mut self, message_id: &str, account: &str, via: &'static str) {
        self.ledger.insert(
            message_id.to_string(),
            Ledger {
                account: account.to_string(),
                via,
                acknowledged: false,
                copies: 0,
                copies_unknown: false,
                delete_intent: false,
            },
        );
    }

    pub fn acknowledge(&mut self, message_id: &str) {
        if let Some(entry) = self.ledger.get_mut(message_id) {
            entry.acknowledged = true;
        }
    }

    pub fn intend_delete(&mut self, message_id: &str) {
        if let Some(entry) = self.ledger.get_mut(message_id) {
            entry.delete_intent = true;
        }
    }

    pub fn copied(&mut self, message_id: &str) {
        if let Some(entry) = self.ledger.get_mut(message_id) {
            entry.copies += 1;
        }
    }

    pub fn copies_unknown(&mut self, message_id: &str) {
        if let Some(entry) = self.ledger.get_mut(message_id) {
            entry.copies_unknown = true;
        }
    }
}

/// The selected mailbox as one session was told it is.
#[derive(Debug, Clone)]
pub struct SelectedModel {
    pub key: MailboxKey,
    pub read_only: bool,
    /// The clock when SELECT/EXAMINE was sent.
    pub selected_at: u64,
    /// Sequence number n is `uids[n - 1]`; `None` until a response names its UID.
    pub uids: Vec<Option<u32>>,
    /// Flags last reported per UID, lower-cased, without `\Recent`.
    pub flags: HashMap<u32, BTreeSet<String>>,
    /// Keywords (lower-cased) the last FLAGS response listed.
    pub announced: BTreeSet<String>,
}

impl SelectedModel {
    pub fn new(key: MailboxKey, read_only: bool, selected_at: u64) -> SelectedModel {
        SelectedModel {
            key,
            read_only,
            selected_at,
            uids: Vec::new(),
            flags: HashMap::new(),
            announced: BTreeSet::new(),
        }
    }

    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.uids
            .iter()
            .position(|u| *u == Some(uid))
            .map(|i| i as u32 + 1)
    }

    pub fn known_uids(&self) -> Vec<u32> {
        self.uids.iter().flatten().copied().collect()
    }
}

/// One IMAP session's model.
#[derive(Debug, Clone)]
pub struct SessionModel {
    pub id: SessionId,
    pub name: String,
    pub account: String,
    /// `ENABLE IMAP4rev2` was accepted.
    pub rev2: bool,
    pub selected: Option<SelectedModel>,
    /// Keywords already reported as unannounced in this session (one report each).
    pub unannounced_reported: BTreeSet<String>,
}

impl SessionModel {
    pub fn new(id: SessionId, name: String, account: &str) -> SessionModel {
        SessionModel {
            id,
            name,
            account: account.to_string(),
            rev2: false,
            selected: None,
            unannounced_reported: BTreeSet::new(),
        }
    }
}

/// Flags as a comparable set: lower-cased, `\Recent` left out.
pub fn normalize_flags(flags: &[String]) -> BTreeSet<String> {
    flags
        .iter()
        .map(|f| f.to_ascii_lowercase())
        .filter(|f| f != "\\recent")
        .collect()
}

/// A UID → flags view of one session, for the convergence check.
pub type FlagView = BTreeMap<u32, BTreeSet<String>>;
