//! `pillarbox import` and `pillarbox export`: bringing mail in from mbox
//! files and Maildir trees, and taking it out again. Messages go through the
//! store's batch delivery (one transaction per batch), a message already in
//! the target folder (same bytes) is skipped, and files are read as streams:
//! memory stays flat whatever the mailbox size.

pub mod export;
pub mod imap;
pub mod maildir;
pub mod mbox;
pub mod names;

use indicatif::{ProgressBar, ProgressStyle};
use pillarbox_store::{AccountId, Flags, MailboxId, NewMessage, SpecialUse, Store, Target, blob};
use std::collections::{HashMap, HashSet};

/// Messages per store transaction.
const BATCH: usize = 200;

/// What an import did.
#[derive(Debug, Default)]
pub struct Summary {
    pub copied: u64,
    pub skipped: u64,
    /// Messages whose flags were brought up to date from the source.
    pub flags_updated: u64,
    pub failed: Vec<String>,
    pub bytes: u64,
}

impl Summary {
    pub fn print(&self, dry_run: bool) {
        let verb = if dry_run { "would copy" } else { "copied" };
        println!(
            "{verb} {} messages ({:.1} MB), skipped {} already present, {} failed",
            self.copied,
            self.bytes as f64 / 1e6,
            self.skipped,
            self.failed.len()
        );
        if self.flags_updated > 0 {
            println!(
                "flags brought up to date on {} messages",
                self.flags_updated
            );
        }
        for reason in &self.failed {
            println!("  failed: {reason}");
        }
    }
}

/// Collects messages into batches for one account.
pub struct Importer<'a> {
    store: &'a Store,
    account: AccountId,
    dry_run: bool,
    batch: Vec<(NewMessage, Vec<Target>)>,
    /// The source UID of each batched message, when it has one (IMAP).
    remote: Vec<Option<u32>>,
    folders: HashMap<String, MailboxId>,
    present: HashMap<MailboxId, HashSet<String>>,
    pub summary: Summary,
    pub progress: ProgressBar,
}

impl<'a> Importer<'a> {
    pub fn new(store: &'a Store, account: AccountId, dry_run: bool) -> Importer<'a> {
        let progress = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::hidden()
        };
        progress.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix:<24} {pos} messages, {msg} [{elapsed_precise}, {per_sec}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Importer {
            store,
            account,
            dry_run,
            batch: Vec::new(),
            remote: Vec::new(),
            folders: HashMap::new(),
            present: HashMap::new(),
            summary: Summary::default(),
            progress,
        }
    }

    /// The folder's mailbox, made when missing (with its parents). Well-known
    /// names map onto the account's special-use folders.
    pub async fn folder(&mut self, name: &str) -> anyhow::Result<MailboxId> {
        let name = map_special(name).unwrap_or_else(|| name.to_string());
        if let Some(id) = self.folders.get(&name) {
            return Ok(*id);
        }
        let mailbox = match self.store.mailbox(self.account, &name).await? {
            Some(m) => m,
            None if self.dry_run => {
                // Nothing is made in a dry run: a placeholder id that holds nothing.
                let id = MailboxId(-(self.folders.len() as i64) - 1);
                self.folders.insert(name, id);
                return Ok(id);
            }
            None => self.store.create_mailbox(self.account, &name, None).await?,
        };
        self.folders.insert(name, mailbox.id);
        let hashes = self.store.mailbox_hashes(mailbox.id).await?;
        self.present.insert(mailbox.id, hashes);
        Ok(mailbox.id)
    }

    /// Queues one message; stores the batch when full.
    pub async fn add(
        &mut self,
        folder: MailboxId,
        raw: Vec<u8>,
        flags: Flags,
        internal_date: Option<i64>,
    ) -> anyhow::Result<()> {
        self.add_from(folder, raw, flags, internal_date, None)
            .await
            .map(|_| ())
    }

    /// As [`Importer::add`], remembering the source UID; returns the
    /// (source UID, mailbox, local UID) of messages stored by a full batch.
    pub async fn add_from(
        &mut self,
        folder: MailboxId,
        raw: Vec<u8>,
        flags: Flags,
        internal_date: Option<i64>,
        remote: Option<u32>,
    ) -> anyhow::Result<Vec<(u32, MailboxId, pillarbox_store::Uid)>> {
        if raw.is_empty() {
            self.summary.failed.push("an empty message".into());
            return Ok(Vec::new());
        }
        let hash = blob::hash(&raw);
        let present = self.present.entry(folder).or_default();
        if !present.insert(hash) {
            self.summary.skipped += 1;
            return Ok(Vec::new());
        }
        self.summary.copied += 1;
        self.summary.bytes += raw.len() as u64;
        self.progress.inc(1);
        self.progress
            .set_message(format!("{:.1} MB", self.summary.bytes as f64 / 1e6));
        if self.dry_run {
            return Ok(Vec::new());
        }
        self.remote.push(remote);
        self.batch.push((
            NewMessage {
                raw: raw.into(),
                trace_headers: Vec::new(),
                internal_date,
            },
            vec![Target {
                account: self.account,
                mailbox: folder,
                flags,
            }],
        ));
        if self.batch.len() >= BATCH {
            return self.flush().await;
        }
        Ok(Vec::new())
    }

    /// Stores the batch; returns where messages with a source UID went.
    pub async fn flush(&mut self) -> anyhow::Result<Vec<(u32, MailboxId, pillarbox_store::Uid)>> {
        if self.batch.is_empty() {
            return Ok(Vec::new());
        }
        let batch = std::mem::take(&mut self.batch);
        let remote = std::mem::take(&mut self.remote);
        let delivered = self.store.deliver_batch(&batch).await?;
        Ok(remote
            .into_iter()
            .zip(delivered)
            .filter_map(|(r, d)| Some((r?, d.first()?.mailbox, d.first()?.uid)))
            .collect())
    }

    pub async fn finish(mut self) -> anyhow::Result<Summary> {
        self.flush().await?;
        self.progress.finish_and_clear();
        Ok(self.summary)
    }
}

/// Folder names other systems use for the special-use folders.
fn map_special(name: &str) -> Option<String> {
    let last = name
        .rsplit(['/', '.'])
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase();
    let special = match last.as_str() {
        "sent" | "sent mail" | "sent items" | "sent messages" | "gesendet" => SpecialUse::Sent,
        "drafts" | "draft" | "entwürfe" => SpecialUse::Drafts,
        "trash" | "deleted items" | "deleted messages" | "bin" | "papierkorb" => SpecialUse::Trash,
        "junk" | "spam" | "junk e-mail" | "junk email" => SpecialUse::Junk,
        "archive" | "archives" | "all mail" => SpecialUse::Archive,
        "inbox" if !name.contains(['/', '.']) || name.eq_ignore_ascii_case("[gmail]/inbox") => {
            return Some("INBOX".into());
        }
        _ => return None,
    };
    // The account's folder of that use has the standard name.
    Some(
        match special {
            SpecialUse::Sent => "Sent",
            SpecialUse::Drafts => "Drafts",
            SpecialUse::Trash => "Trash",
            SpecialUse::Junk => "Junk",
            _ => "Archive",
        }
        .to_string(),
    )
}

/// Parses an asctime-style date of an mbox `From ` line: `Sat Jan  1 00:00:00 2022`.
pub(crate) fn asctime(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, month, day, time, year, ..] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| m.eq_ignore_ascii_case(month))? as u8 + 1;
    let day: u8 = day.parse().ok()?;
    let year: i32 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<u8>().ok());
    let (h, m, s) = (
        hms.next()??,
        hms.next()??,
        hms.next().flatten().unwrap_or(0),
    );
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    let t = time::Time::from_hms(h, m, s).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_folder_names() {
        assert_eq!(map_special("[Gmail]/Sent Mail").as_deref(), Some("Sent"));
        assert_eq!(map_special("Deleted Items").as_deref(), Some("Trash"));
        assert_eq!(map_special("INBOX").as_deref(), Some("INBOX"));
        assert_eq!(map_special("Projects"), None);
        assert_eq!(asctime("Sat Jan  1 00:00:00 2022"), Some(1640995200));
    }
}
