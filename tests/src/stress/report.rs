//! What a stress run found: commands run per kind, valid non-OK outcomes,
//! failed commands with the server's exact text, and invariant violations
//! with the transcript tail of the session that saw them.

use std::collections::BTreeMap;
use std::fmt;

/// The invariants, each with the rule it enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    UidReused,
    UidOrder,
    UidNotNew,
    UidNextWentBack,
    UidValidityChanged,
    ExpungedUidReturned,
    SequenceMismatch,
    SequenceOutOfRange,
    ExistsShrank,
    ExpungeDuringFetch,
    ContentChanged,
    SizeMismatch,
    KeywordNotAnnounced,
    RecentInTwoSessions,
    FlagsDiverged,
    MessageMissing,
    MessageDuplicated,
    ClaimedGoneButPresent,
    QuotaMismatch,
    Pop3LockShared,
    Pop3Listing,
}

impl Rule {
    pub fn describe(self) -> &'static str {
        match self {
            Rule::UidReused => {
                "a UID shows another message than it did before (RFC 9051 §2.3.1.1: UIDs are never reused within a UIDVALIDITY)"
            }
            Rule::UidOrder => {
                "UIDs do not ascend with sequence numbers (RFC 9051 §2.3.1.1: strictly ascending)"
            }
            Rule::UidNotNew => {
                "a new message got a UID not above every UID seen before the command was sent (RFC 9051 §2.3.1.1)"
            }
            Rule::UidNextWentBack => {
                "UIDNEXT went back, or is not above a UID already seen (RFC 9051 §2.3.1.1)"
            }
            Rule::UidValidityChanged => {
                "UIDVALIDITY of a mailbox nobody renamed or deleted changed (RFC 9051 §2.3.1.1)"
            }
            Rule::ExpungedUidReturned => {
                "a UID expunged before the session selected the mailbox is shown again"
            }
            Rule::SequenceMismatch => {
                "a response's sequence number maps to another UID than the session was told (RFC 9051 §2.3.1.2)"
            }
            Rule::SequenceOutOfRange => {
                "a response names a sequence number the session was never told exists (RFC 9051 §2.3.1.2)"
            }
            Rule::ExistsShrank => {
                "EXISTS is below the count the session was told, without EXPUNGE (RFC 9051 §7.4.1)"
            }
            Rule::ExpungeDuringFetch => {
                "EXPUNGE sent while answering FETCH, STORE or SEARCH (RFC 9051 §7.5.1)"
            }
            Rule::ContentChanged => {
                "a FETCH of the same UID returned other bytes, ENVELOPE or RFC822.SIZE than before (RFC 9051 §2.3.1.1: a UID names one immutable message)"
            }
            Rule::SizeMismatch => {
                "RFC822.SIZE (or POP3 LIST) differs from the length of the message served (RFC 9051 §7.5.2)"
            }
            Rule::KeywordNotAnnounced => {
                "FETCH FLAGS shows a keyword no FLAGS response of the session listed (RFC 9051 §7.3.5)"
            }
            Rule::RecentInTwoSessions => {
                "\\Recent reported to more than one read-write session for one message (RFC 3501 §2.3.2)"
            }
            Rule::FlagsDiverged => {
                "after the run quiesced (NOOP, then FETCH 1:* FLAGS), sessions see different messages or flags"
            }
            Rule::MessageMissing => {
                "a message acknowledged (SMTP 250 after DATA, APPEND OK) is gone though the checker never deleted it"
            }
            Rule::MessageDuplicated => {
                "a message is present more times than it was delivered plus copied"
            }
            Rule::ClaimedGoneButPresent => {
                "a command was refused because a message was deleted, yet the message is still there at the end"
            }
            Rule::QuotaMismatch => {
                "the quota used differs from the sum of RFC822.SIZE of the messages present"
            }
            Rule::Pop3LockShared => {
                "two POP3 sessions of one account hold the maildrop at once (RFC 1939 §4, §8)"
            }
            Rule::Pop3Listing => {
                "a POP3 listing disagrees with itself or the store (STAT vs LIST, unique-ids, sizes)"
            }
        }
    }
}

/// A broken invariant, as the checking code finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub detail: String,
}

impl Finding {
    pub fn new(rule: Rule, detail: impl Into<String>) -> Finding {
        Finding {
            rule,
            detail: detail.into(),
        }
    }
}

/// A finding or a failed command with where it happened.
#[derive(Debug, Clone)]
pub struct Example {
    pub session: String,
    pub detail: String,
    pub transcript: Vec<String>,
}

/// Examples kept per rule or failure kind (all are counted).
const EXAMPLES: usize = 3;

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub header: Vec<String>,
    /// Commands run, by protocol and command ("IMAP UID FETCH").
    pub commands: BTreeMap<String, u64>,
    /// Answers other than OK that the rules allow ("POP3 PASS -ERR [IN-USE]").
    pub allowed: BTreeMap<String, u64>,
    /// Failed commands by kind ("IMAP FETCH NO [SERVERBUG]"): count and examples.
    pub failures: BTreeMap<String, (u64, Vec<Example>)>,
    pub violations: BTreeMap<Rule, (u64, Vec<Example>)>,
    /// What was checked how, or could not be checked.
    pub notes: Vec<String>,
}

impl Report {
    pub fn count(&mut self, kind: &str) {
        *self.commands.entry(kind.to_string()).or_default() += 1;
    }

    pub fn allow(&mut self, kind: String) {
        *self.allowed.entry(kind).or_default() += 1;
    }

    pub fn fail(&mut self, kind: String, session: &str, detail: String, transcript: Vec<String>) {
        let entry = self.failures.entry(kind).or_default();
        entry.0 += 1;
        if entry.1.len() < EXAMPLES {
            entry.1.push(Example {
                session: session.to_string(),
                detail,
                transcript,
            });
        }
    }

    pub fn violate(&mut self, finding: Finding, session: &str, transcript: Vec<String>) {
        let entry = self.violations.entry(finding.rule).or_default();
        entry.0 += 1;
        if entry.1.len() < EXAMPLES {
            entry.1.push(Example {
                session: session.to_string(),
                detail: finding.detail,
                transcript,
            });
        }
    }

    pub fn failure_count(&self) -> u64 {
        self.failures.values().map(|(n, _)| n).sum()
    }

    pub fn violation_count(&self) -> u64 {
        self.violations.values().map(|(n, _)| n).sum()
    }

    /// No failed command and no violation.
    pub fn is_clean(&self) -> bool {
        self.failure_count() == 0 && self.violation_count() == 0
    }
}

fn examples(f: &mut fmt::Formatter<'_>, examples: &[Example]) -> fmt::Result {
    for example in examples {
        writeln!(f, "    [{}] {}", example.session, example.detail)?;
        for line in &example.transcript {
            writeln!(f, "        {line}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.header {
            writeln!(f, "{line}")?;
        }
        let total: u64 = self.commands.values().sum();
        writeln!(f, "commands run: {total}")?;
        for (kind, n) in &self.commands {
            writeln!(f, "  {kind:<28} {n:>8}")?;
        }
        if !self.allowed.is_empty() {
            writeln!(f, "allowed outcomes (valid answers other than OK):")?;
            for (kind, n) in &self.allowed {
                writeln!(f, "  {kind:<60} {n:>6}")?;
            }
        }
        writeln!(f, "failed commands: {}", self.failure_count())?;
        for (kind, (n, list)) in &self.failures {
            writeln!(f, "  {n:>6} × {kind}")?;
            examples(f, list)?;
        }
        writeln!(f, "invariant violations: {}", self.violation_count())?;
        for (rule, (n, list)) in &self.violations {
            writeln!(f, "  {n:>6} × {rule:?}: {}", rule.describe())?;
            examples(f, list)?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}
