//! The nouns of the store: identifiers, flags, mailbox and message records.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $inner:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An account (a mailbox owner) in the directory.
    AccountId,
    i64
);
id_type!(
    /// A mailbox (folder) of one account.
    MailboxId,
    i64
);
id_type!(
    /// One stored message: the blob plus the per-delivery trace headers. Several
    /// mailboxes can hold the same `MessageId` (one delivery to many recipients).
    MessageId,
    i64
);
id_type!(
    /// IMAP unique identifier inside one mailbox (RFC 9051 §2.3.1.1).
    Uid,
    u32
);
id_type!(
    /// Modification sequence of a mailbox (RFC 7162).
    ModSeq,
    u64
);
id_type!(
    /// UIDVALIDITY of a mailbox.
    UidValidity,
    u32
);

/// A system flag (RFC 9051 §2.3.2). `\Recent` is session state, not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SystemFlag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
}

impl SystemFlag {
    pub const ALL: [SystemFlag; 5] = [
        SystemFlag::Seen,
        SystemFlag::Answered,
        SystemFlag::Flagged,
        SystemFlag::Deleted,
        SystemFlag::Draft,
    ];

    fn bit(self) -> i64 {
        match self {
            SystemFlag::Seen => 1,
            SystemFlag::Answered => 2,
            SystemFlag::Flagged => 4,
            SystemFlag::Deleted => 8,
            SystemFlag::Draft => 16,
        }
    }

    /// The IMAP spelling, e.g. `\Seen`.
    pub fn as_imap(self) -> &'static str {
        match self {
            SystemFlag::Seen => "\\Seen",
            SystemFlag::Answered => "\\Answered",
            SystemFlag::Flagged => "\\Flagged",
            SystemFlag::Deleted => "\\Deleted",
            SystemFlag::Draft => "\\Draft",
        }
    }

    /// Parses the IMAP spelling, case-insensitively.
    pub fn from_imap(name: &str) -> Option<SystemFlag> {
        SystemFlag::ALL
            .into_iter()
            .find(|flag| flag.as_imap().eq_ignore_ascii_case(name))
    }
}

/// The flags of one message in one mailbox: system flags and keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    system: i64,
    keywords: Vec<String>,
}

impl Flags {
    pub fn new() -> Flags {
        Flags::default()
    }

    pub fn with(mut self, flag: SystemFlag) -> Flags {
        self.insert(flag);
        self
    }

    pub fn with_keyword(mut self, keyword: &str) -> Flags {
        self.insert_keyword(keyword);
        self
    }

    pub fn contains(&self, flag: SystemFlag) -> bool {
        self.system & flag.bit() != 0
    }

    pub fn insert(&mut self, flag: SystemFlag) {
        self.system |= flag.bit();
    }

    pub fn remove(&mut self, flag: SystemFlag) {
        self.system &= !flag.bit();
    }

    /// Keywords compare case-insensitively (RFC 9051 §2.3.2); the first spelling wins.
    pub fn has_keyword(&self, keyword: &str) -> bool {
        self.keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }

    pub fn insert_keyword(&mut self, keyword: &str) {
        if !self.has_keyword(keyword) {
            self.keywords.push(keyword.to_string());
        }
    }

    pub fn remove_keyword(&mut self, keyword: &str) {
        self.keywords.retain(|k| !k.eq_ignore_ascii_case(keyword));
    }

    pub fn system_flags(&self) -> impl Iterator<Item = SystemFlag> + '_ {
        SystemFlag::ALL.into_iter().filter(|f| self.contains(*f))
    }

    pub fn keywords(&self) -> &[String] {
        &self.keywords
    }

    pub fn is_empty(&self) -> bool {
        self.system == 0 && self.keywords.is_empty()
    }

    /// Applies a STORE-style operation and returns the result.
    pub fn apply(&self, op: FlagOp, change: &Flags) -> Flags {
        let mut out = self.clone();
        match op {
            FlagOp::Replace => out = change.clone(),
            FlagOp::Add => {
                out.system |= change.system;
                for k in &change.keywords {
                    out.insert_keyword(k);
                }
            }
            FlagOp::Remove => {
                out.system &= !change.system;
                for k in &change.keywords {
                    out.remove_keyword(k);
                }
            }
        }
        out
    }

    pub(crate) fn to_columns(&self) -> (i64, String) {
        (self.system, self.keywords.join(" "))
    }

    pub(crate) fn from_columns(system: i64, keywords: &str) -> Flags {
        Flags {
            system,
            keywords: keywords.split_whitespace().map(str::to_string).collect(),
        }
    }
}

/// How a flag change combines with the flags a message has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// Special-use attributes of RFC 6154.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpecialUse {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
}

impl SpecialUse {
    pub fn as_imap(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    pub fn from_imap(name: &str) -> Option<SpecialUse> {
        [
            SpecialUse::All,
            SpecialUse::Archive,
            SpecialUse::Drafts,
            SpecialUse::Flagged,
            SpecialUse::Junk,
            SpecialUse::Sent,
            SpecialUse::Trash,
        ]
        .into_iter()
        .find(|s| s.as_imap().eq_ignore_ascii_case(name))
    }

    pub(crate) fn as_column(self) -> &'static str {
        &self.as_imap()[1..]
    }

    pub(crate) fn from_column(value: &str) -> Option<SpecialUse> {
        SpecialUse::from_imap(&format!("\\{value}"))
    }
}

/// The hierarchy delimiter of mailbox names in the store.
pub const DELIMITER: char = '/';

/// The name every account's inbox has; matched case-insensitively.
pub const INBOX: &str = "INBOX";

/// A mailbox as listed: name, attributes and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: MailboxId,
    pub account: AccountId,
    /// Full UTF-8 name with `/` as the hierarchy delimiter; the inbox is `INBOX`.
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub uid_validity: UidValidity,
    pub uid_next: Uid,
    pub highest_modseq: ModSeq,
}

/// Counters of a mailbox, as STATUS reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailboxCounts {
    pub messages: u32,
    pub unseen: u32,
    /// Sum of message sizes in octets (STATUS SIZE, RFC 8438).
    pub size: u64,
}

/// One message in one mailbox, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEntry {
    pub uid: Uid,
    pub message: MessageId,
    pub modseq: ModSeq,
    pub flags: Flags,
    /// Size in octets of the message as served (trace headers plus the stored bytes).
    pub size: u64,
    /// Unix seconds when the message arrived (IMAP INTERNALDATE).
    pub internal_date: i64,
    /// Whether a POP3 client has downloaded (RETR) this message.
    pub downloaded: bool,
    /// Unix seconds when it was saved into this mailbox (IMAP SAVEDATE);
    /// `None` only for a row written by an older version mid-upgrade.
    pub saved_at: Option<i64>,
}

/// A message to store: the bytes as received plus the trace headers of this delivery.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The message as received (RFC 5322, CRLF line endings).
    pub raw: bytes::Bytes,
    /// Header lines added by this server for this delivery (`Return-Path:`,
    /// `Received:`, `Authentication-Results:`), each ending in CRLF; may be empty.
    pub trace_headers: Vec<u8>,
    /// Unix seconds; `None` means now.
    pub internal_date: Option<i64>,
}

/// Where one delivery goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub account: AccountId,
    pub mailbox: MailboxId,
    pub flags: Flags,
}

/// What one target of a delivery got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub account: AccountId,
    pub mailbox: MailboxId,
    pub uid: Uid,
    pub modseq: ModSeq,
    pub message: MessageId,
}

/// A UID range, inclusive on both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidRange {
    pub first: Uid,
    pub last: Uid,
}

impl UidRange {
    pub fn new(first: u32, last: u32) -> UidRange {
        UidRange {
            first: Uid(first.min(last)),
            last: Uid(first.max(last)),
        }
    }

    pub fn all() -> UidRange {
        UidRange::new(1, u32::MAX)
    }

    pub fn single(uid: Uid) -> UidRange {
        UidRange {
            first: uid,
            last: uid,
        }
    }
}

/// A flag change as the store applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUpdate {
    pub uid: Uid,
    pub modseq: ModSeq,
    pub flags: Flags,
}

/// What changed in a mailbox after a given MODSEQ (CONDSTORE/QRESYNC style).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxChanges {
    pub highest_modseq: ModSeq,
    /// Messages appended or whose flags changed, ordered by UID.
    pub changed: Vec<MessageEntry>,
    /// UIDs expunged after the given MODSEQ, ascending.
    pub expunged: Vec<Uid>,
}

/// A UID mapping produced by COPY or MOVE (RFC 4315 COPYUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    pub uid_validity: UidValidity,
    /// (source UID, new UID in the target), ascending by source UID.
    pub mapping: Vec<(Uid, Uid)>,
}
