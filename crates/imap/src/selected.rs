//! The selected mailbox as this session sees it: message sequence numbers,
//! flags as last reported, and the changes by others not yet reported. The
//! commands that open and close it are in `command/select.rs`.

use crate::encode;
use crate::sequence::SequenceSet;
use crate::session::Done;
use pillarbox_store::{Mailbox, MessageEntry, ModSeq, Result, Store, Uid, UidRange};
use std::collections::BTreeSet;

pub(crate) struct Selected {
    pub mailbox: Mailbox,
    pub read_only: bool,
    /// In sequence-number order (ascending UID).
    pub messages: Vec<MessageEntry>,
    /// The mailbox's MODSEQ this view reflects.
    pub modseq: ModSeq,
    /// Expunged in the store, still numbered here until an EXPUNGE response
    /// may be sent (not during FETCH, STORE, SEARCH: RFC 9051 §7.5.1).
    pub gone: BTreeSet<Uid>,
    /// UID ranges `[first, end)` recent in this session (`\Recent`, RFC 3501
    /// §2.3.2): claimed from the store, so no other session has them.
    pub recent: Vec<(Uid, Uid)>,
    /// Keywords the client has been told of in a FLAGS response: a FETCH
    /// may only show a keyword announced first (RFC 9051 §7.3.5).
    pub keywords: BTreeSet<String>,
    /// The last `SEARCH RETURN (SAVE)` result (RFC 5182), as UIDs.
    pub saved: Vec<Uid>,
    /// The message count the client was last told (EXISTS minus EXPUNGEs since).
    pub told_exists: u32,
}

impl Selected {
    pub async fn open(store: &Store, mailbox: Mailbox, read_only: bool) -> Result<Selected> {
        // Read the MODSEQ first: anything committed after it is found again by refresh.
        let current = store.mailbox_by_id(mailbox.id).await?;
        let messages = store.messages(mailbox.id, UidRange::all()).await?;
        // SELECT takes the messages no session has seen as recent; EXAMINE
        // shows them as recent but leaves them to the next SELECT (RFC 3501
        // §6.3.2: EXAMINE must not make a message lose \Recent).
        let recent = if read_only {
            let (first, _) = store.recent_bounds(mailbox.id).await?;
            vec![(first, current.uid_next)]
        } else {
            store.claim_recent(mailbox.id).await?.into_iter().collect()
        };
        let keywords = messages
            .iter()
            .flat_map(|m| m.flags.keywords().iter().cloned())
            .collect();
        Ok(Selected {
            recent,
            keywords,
            modseq: current.highest_modseq,
            mailbox: current,
            read_only,
            told_exists: messages.len() as u32,
            gone: BTreeSet::new(),
            saved: Vec::new(),
            messages,
        })
    }

    pub fn exists(&self) -> u32 {
        self.messages.len() as u32
    }

    pub fn is_recent(&self, uid: Uid) -> bool {
        self.recent
            .iter()
            .any(|(first, end)| uid >= *first && uid < *end)
    }

    /// The flag list of this mailbox: the system flags and every keyword
    /// announced so far, as FLAGS and PERMANENTFLAGS give it.
    pub fn flag_list(&self) -> String {
        let mut flags = encode::system_flag_list();
        for keyword in &self.keywords {
            flags.push(' ');
            flags.push_str(keyword);
        }
        flags
    }

    /// Writes the FLAGS and PERMANENTFLAGS responses.
    pub fn write_flags(&self, out: &mut Vec<u8>) {
        let flags = self.flag_list();
        out.extend_from_slice(format!("* FLAGS ({flags})\r\n").as_bytes());
        if self.read_only {
            out.extend_from_slice(b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
        } else {
            out.extend_from_slice(
                format!("* OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted\r\n").as_bytes(),
            );
        }
    }

    /// Before a FETCH shows `flags`: announces, with FLAGS and
    /// PERMANENTFLAGS, any keyword the client has not been told of yet.
    pub fn announce_keywords(&mut self, flags: &pillarbox_store::Flags, out: &mut Vec<u8>) {
        let mut new = false;
        for keyword in flags.keywords() {
            if !self.keywords.contains(keyword) {
                self.keywords.insert(keyword.clone());
                new = true;
            }
        }
        if new {
            self.write_flags(out);
        }
    }

    pub fn recent_count(&self) -> usize {
        self.messages
            .iter()
            .filter(|m| self.is_recent(m.uid))
            .count()
    }

    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.messages
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// Takes flag changes this session made into its view; returns the UIDs updated.
    pub fn apply(&mut self, updates: Vec<pillarbox_store::FlagUpdate>) -> Vec<Uid> {
        let mut applied = Vec::with_capacity(updates.len());
        for update in updates {
            if let Some(seq) = self.seq_of(update.uid) {
                let m = &mut self.messages[seq as usize - 1];
                m.flags = update.flags;
                m.modseq = update.modseq;
                applied.push(update.uid);
            }
        }
        applied
    }

    pub fn largest_uid(&self) -> u32 {
        self.messages.last().map(|m| m.uid.0).unwrap_or(0)
    }

    /// Indexes into `messages` named by a set, ascending. With `uid`, numbers
    /// are UIDs (absent ones are skipped; `*` is the largest UID); without,
    /// sequence numbers, which must exist.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, Done> {
        if let SequenceSet::Saved = set {
            return Ok(self
                .saved
                .iter()
                .filter_map(|u| self.messages.binary_search_by_key(u, |m| m.uid).ok())
                .collect());
        }
        // The resolved ranges are sorted and disjoint: each message is
        // visited once, in order, however the client wrote the set.
        let mut out = Vec::new();
        if uid {
            // `*` in a UID set is the largest UID, or when empty nothing matches but
            // `n:*` still means n..=largest (RFC 9051 §6.4.8: "*" with no messages).
            let largest = self.largest_uid();
            for (low, high) in set.resolve(largest) {
                let start = self.messages.partition_point(|m| m.uid.0 < low);
                let end = self.messages.partition_point(|m| m.uid.0 <= high);
                out.extend(start..end.max(start));
            }
        } else {
            let exists = self.exists();
            // `1:*` on an empty mailbox names nothing (clients send it right after SELECT).
            if exists == 0
                && matches!(set, SequenceSet::Ranges(r) if r.iter().any(|(a, b)| matches!(a, crate::sequence::SeqBound::Star) || matches!(b, crate::sequence::SeqBound::Star)))
            {
                return Ok(Vec::new());
            }
            for (low, high) in set.resolve(exists) {
                if exists == 0 || high > exists || low == 0 {
                    return Err(Done::Bad(format!(
                        "Invalid message sequence number: the mailbox has {exists} messages"
                    )));
                }
                out.extend(low as usize - 1..high as usize);
            }
        }
        Ok(out)
    }

    /// `* VANISHED (EARLIER) …` (RFC 7162 §3.2.5-3.2.6) for the UIDs
    /// expunged from this mailbox after `since`, only those in `within` when
    /// given; nothing when there are none.
    pub async fn vanished_earlier(
        &self,
        store: &Store,
        since: ModSeq,
        within: Option<&SequenceSet>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let largest = self.mailbox.uid_next.0.saturating_sub(1);
        let gone: Vec<u32> = store
            .expunged_since(self.mailbox.id, since)
            .await?
            .into_iter()
            .map(|(uid, _)| uid.0)
            .filter(|uid| within.is_none_or(|set| set.contains(*uid, largest)))
            .collect();
        if !gone.is_empty() {
            out.extend_from_slice(
                format!(
                    "* VANISHED (EARLIER) {}\r\n",
                    crate::sequence::compact(&gone)
                )
                .as_bytes(),
            );
        }
        Ok(())
    }

    /// Brings the view up to date and writes untagged responses: flag changes,
    /// then expunges (when allowed), then the new EXISTS.
    pub async fn refresh(
        &mut self,
        store: &Store,
        allow_expunge: bool,
        rev2: bool,
        condstore: bool,
        qresync: bool,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let current = store.mailbox_by_id(self.mailbox.id).await?;
        if current.highest_modseq != self.modseq {
            let changes = store.changes_since(self.mailbox.id, self.modseq).await?;
            for uid in changes.expunged {
                if self.seq_of(uid).is_some() {
                    self.gone.insert(uid);
                }
            }
            let largest = self.largest_uid();
            let mut added = false;
            for entry in changes.changed {
                if entry.uid.0 > largest {
                    self.messages.push(entry);
                    added = true;
                    continue;
                }
                let Some(seq) = self.seq_of(entry.uid) else {
                    continue;
                };
                if self.gone.contains(&entry.uid) {
                    continue;
                }
                if self.messages[seq as usize - 1].flags != entry.flags {
                    self.announce_keywords(&entry.flags, out);
                    let known = &mut self.messages[seq as usize - 1];
                    known.flags = entry.flags.clone();
                    known.modseq = entry.modseq;
                    let recent = !rev2 && self.is_recent(entry.uid);
                    out.extend_from_slice(
                        format!("* {seq} FETCH (UID {} FLAGS ", entry.uid).as_bytes(),
                    );
                    encode::flags(out, &entry.flags, recent);
                    if condstore {
                        out.extend_from_slice(format!(" MODSEQ ({})", entry.modseq).as_bytes());
                    }
                    out.extend_from_slice(b")\r\n");
                }
            }
            self.modseq = changes.highest_modseq.max(current.highest_modseq);
            if added {
                self.messages.sort_by_key(|m| m.uid);
                self.messages.dedup_by_key(|m| m.uid);
                // New arrivals are recent here if this session learns of
                // them first; an EXAMINE session leaves them to a SELECT.
                if !self.read_only
                    && let Some(range) = store.claim_recent(self.mailbox.id).await?
                {
                    self.recent.push(range);
                }
            }
        }
        if allow_expunge && !self.gone.is_empty() {
            let gone = std::mem::take(&mut self.gone);
            let mut vanished = Vec::new();
            for uid in gone.iter().rev() {
                if let Some(seq) = self.seq_of(*uid) {
                    // QRESYNC: one VANISHED for them all (RFC 7162 §3.2.10).
                    if qresync {
                        vanished.push(uid.0);
                    } else {
                        out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
                    }
                    self.messages.remove(seq as usize - 1);
                    self.told_exists = self.told_exists.saturating_sub(1);
                }
            }
            if !vanished.is_empty() {
                vanished.sort_unstable();
                out.extend_from_slice(
                    format!("* VANISHED {}\r\n", crate::sequence::compact(&vanished)).as_bytes(),
                );
            }
            self.saved.retain(|u| !gone.contains(u));
        }
        self.mailbox.uid_next = current.uid_next;
        if self.exists() != self.told_exists {
            self.told_exists = self.exists();
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.told_exists).as_bytes());
            if !rev2 {
                out.extend_from_slice(format!("* {} RECENT\r\n", self.recent_count()).as_bytes());
            }
        }
        Ok(())
    }
}
