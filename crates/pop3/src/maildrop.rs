//! The maildrop of one POP3 session: the INBOX as listed at login, under the
//! account's policy, with the session's deletion marks (RFC 1939 §5-§6).

use pillarbox_directory::{AfterDownload, Pop3List, Pop3Policy};
use pillarbox_store::{
    AccountId, FlagOp, Flags, Mailbox, MessageEntry, SpecialUse, Store, StoreError, SystemFlag,
    Uid, UidRange,
};

/// Messages of the last 30 days, for the `recent` listing mode.
const RECENT_SECONDS: i64 = 30 * 24 * 60 * 60;

pub struct Maildrop {
    pub account: AccountId,
    pub inbox: Mailbox,
    pub policy: Pop3Policy,
    /// Message number n is `entries[n - 1]`; fixed for the session.
    pub entries: Vec<MessageEntry>,
    pub deleted: Vec<bool>,
    pub retrieved: Vec<bool>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Maildrop {
    /// Snapshots the INBOX as the policy lists it.
    pub async fn open(
        store: &Store,
        account: AccountId,
        policy: Pop3Policy,
    ) -> Result<Maildrop, StoreError> {
        let inbox = store
            .require_mailbox(account, pillarbox_store::INBOX)
            .await?;
        let cutoff = now() - RECENT_SECONDS;
        let entries: Vec<MessageEntry> = store
            .messages(inbox.id, UidRange::all())
            .await?
            .into_iter()
            .filter(|m| match policy.list {
                Pop3List::All => true,
                Pop3List::New => !m.downloaded,
                Pop3List::Recent => m.internal_date >= cutoff,
            })
            .collect();
        let n = entries.len();
        Ok(Maildrop {
            account,
            inbox,
            policy,
            entries,
            deleted: vec![false; n],
            retrieved: vec![false; n],
        })
    }

    /// The entry for message number `n`, unless it is out of range or marked deleted.
    pub fn get(&self, n: u32) -> Result<&MessageEntry, String> {
        let index = (n as usize).wrapping_sub(1);
        match self.entries.get(index) {
            None => Err(format!(
                "no message {n}; there are {} messages",
                self.entries.len()
            )),
            Some(_) if self.deleted[index] => Err(format!("message {n} is already deleted")),
            Some(entry) => Ok(entry),
        }
    }

    /// STAT: count and octets of the messages not marked deleted.
    pub fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(count, size), (_, e)| (count + 1, size + e.size))
    }

    /// (message number, entry) of the messages not marked deleted.
    pub fn live(&self) -> impl Iterator<Item = (u32, &MessageEntry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
            .map(|(i, e)| (i as u32 + 1, e))
    }

    /// A unique-id that stays the same across sessions, restarts and backends:
    /// the INBOX's UIDVALIDITY and the message's UID (RFC 1939 §7 allows
    /// any printable 1-70 characters).
    pub fn unique_id(&self, entry: &MessageEntry) -> String {
        format!("{}.{}", self.inbox.uid_validity, entry.uid)
    }

    /// What a completed download does at once: under `mark-seen`, set \Seen
    /// (IMAP sees it now). That it was downloaded (for the `new` listing
    /// mode) is recorded in the UPDATE state, with the deletions: a session
    /// that ends without QUIT changes nothing, so its client gets the
    /// messages listed again.
    pub async fn downloaded(&mut self, store: &Store, n: u32) -> Result<(), StoreError> {
        let index = n as usize - 1;
        let uid = self.entries[index].uid;
        self.retrieved[index] = true;
        if self.policy.after_download == AfterDownload::MarkSeen {
            store
                .store_flags(
                    self.inbox.id,
                    &[uid],
                    FlagOp::Add,
                    &Flags::new().with(SystemFlag::Seen),
                    None,
                )
                .await?;
        }
        Ok(())
    }

    /// The UPDATE state (RFC 1939 §6): apply deletions — when the account
    /// honours them — and the after-download policy. Returns how many
    /// messages left the INBOX.
    pub async fn commit(&self, store: &Store) -> Result<usize, StoreError> {
        let pick = |mask: &[bool]| -> Vec<Uid> {
            self.entries
                .iter()
                .zip(mask)
                .filter(|(_, m)| **m)
                .map(|(e, _)| e.uid)
                .collect()
        };
        let mut remove: Vec<Uid> = if self.policy.honour_deletes {
            pick(&self.deleted)
        } else {
            Vec::new()
        };
        let downloaded: Vec<Uid> = pick(&self.retrieved)
            .into_iter()
            .filter(|u| !remove.contains(u))
            .collect();
        let mut moved = 0;
        if !downloaded.is_empty()
            && matches!(
                self.policy.after_download,
                AfterDownload::Keep | AfterDownload::MarkSeen
            )
        {
            store.mark_downloaded(self.inbox.id, &downloaded).await?;
        }
        match self.policy.after_download {
            AfterDownload::Delete => remove.extend(downloaded),
            AfterDownload::Archive if !downloaded.is_empty() => {
                match store
                    .special_mailbox(self.account, SpecialUse::Archive)
                    .await?
                {
                    Some(archive) => {
                        moved = store
                            .move_messages(self.inbox.id, &downloaded, archive.id)
                            .await?
                            .mapping
                            .len();
                    }
                    None => tracing::warn!(
                        "after-download policy is archive, but the account has no Archive mailbox"
                    ),
                }
            }
            _ => {}
        }
        let removed = if remove.is_empty() {
            0
        } else {
            store.expunge(self.inbox.id, &remove).await?.len()
        };
        Ok(removed + moved)
    }
}
