//! `pillarbox export`: every folder of an account as mbox files (mboxrd,
//! flags in `Status:`/`X-Status:`) or as a Maildir++ tree (flags in the
//! `:2,` suffix, keywords in `dovecot-keywords`). Both import back.

use super::names;
use anyhow::Context;
use pillarbox_store::{AccountId, MessageEntry, Store, SystemFlag, UidRange};
use std::io::Write;
use std::path::{Path, PathBuf};

fn asctime(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
            ))
            .ok()
        })
        .unwrap_or_else(|| "Thu Jan  1 00:00:00 1970".into())
}

fn status_headers(m: &MessageEntry) -> String {
    let mut out = String::new();
    if m.flags.contains(SystemFlag::Seen) {
        out.push_str("Status: RO\r\n");
    }
    let mut x = String::new();
    for (f, c) in [
        (SystemFlag::Answered, 'A'),
        (SystemFlag::Flagged, 'F'),
        (SystemFlag::Deleted, 'D'),
        (SystemFlag::Draft, 'T'),
    ] {
        if m.flags.contains(f) {
            x.push(c);
        }
    }
    if !x.is_empty() {
        out.push_str(&format!("X-Status: {x}\r\n"));
    }
    out
}

/// Writes the account's folders under `dir`; returns messages written.
/// Every file goes inside `dir`, whatever the mailbox names are: they are
/// mapped as [`super::names`] describes, all of them before anything is
/// written, so a name that cannot be mapped stops the export at once.
pub async fn export(
    store: &Store,
    account: AccountId,
    format: &str,
    dir: &Path,
) -> anyhow::Result<u64> {
    let mailboxes = store.list_mailboxes(account).await?;
    let mut places = Vec::with_capacity(mailboxes.len());
    let mut seen = std::collections::HashSet::new();
    for mailbox in &mailboxes {
        let place = match format {
            "mbox" => names::mbox_path(&mailbox.name)?,
            _ => match names::maildir_folder(&mailbox.name)? {
                Some(folder) => PathBuf::from(folder),
                None => PathBuf::new(),
            },
        };
        // The mapping is one-to-one; this holds it to that.
        if !seen.insert(place.clone()) {
            anyhow::bail!(
                "mailboxes map to the same file {}: rename one and export again",
                place.display()
            );
        }
        places.push(place);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = 0;
    for (mailbox, place) in mailboxes.iter().zip(places) {
        let messages = store.messages(mailbox.id, UidRange::all()).await?;
        match format {
            "mbox" => {
                let path = dir.join(place);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut out = std::io::BufWriter::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("cannot write {}", path.display()))?,
                );
                for m in &messages {
                    let bytes = store.message_bytes(m.message).await?;
                    write!(out, "From MAILER-DAEMON {}\r\n", asctime(m.internal_date))?;
                    out.write_all(status_headers(m).as_bytes())?;
                    for line in bytes.split_inclusive(|b| *b == b'\n') {
                        if line
                            .iter()
                            .skip_while(|b| **b == b'>')
                            .take(5)
                            .eq(b"From ".iter())
                        {
                            out.write_all(b">")?;
                        }
                        out.write_all(line)?;
                    }
                    if !bytes.ends_with(b"\r\n") {
                        out.write_all(b"\r\n")?;
                    }
                    out.write_all(b"\r\n")?;
                    written += 1;
                }
                out.flush()?;
            }
            _ => {
                let folder = dir.join(place);
                for sub in ["cur", "new", "tmp"] {
                    std::fs::create_dir_all(folder.join(sub))?;
                }
                let mut keywords: Vec<String> = Vec::new();
                for m in &messages {
                    let mut info = String::new();
                    for (f, c) in [
                        (SystemFlag::Draft, 'D'),
                        (SystemFlag::Flagged, 'F'),
                        (SystemFlag::Answered, 'R'),
                        (SystemFlag::Seen, 'S'),
                        (SystemFlag::Deleted, 'T'),
                    ] {
                        if m.flags.contains(f) {
                            info.push(c);
                        }
                    }
                    for k in m.flags.keywords() {
                        let index = match keywords.iter().position(|x| x.eq_ignore_ascii_case(k)) {
                            Some(i) => i,
                            None if keywords.len() < 26 => {
                                keywords.push(k.clone());
                                keywords.len() - 1
                            }
                            None => continue,
                        };
                        info.push((b'a' + index as u8) as char);
                    }
                    let bytes = store.message_bytes(m.message).await?;
                    let name = format!(
                        "{}.P{}U{}.pillarbox:2,{info}",
                        m.internal_date, mailbox.uid_validity, m.uid
                    );
                    let path = folder.join("cur").join(name);
                    std::fs::write(&path, &bytes)?;
                    // The file's mtime carries the internal date (as Dovecot does).
                    let when = std::time::UNIX_EPOCH
                        + std::time::Duration::from_secs(m.internal_date.max(0) as u64);
                    std::fs::File::options()
                        .write(true)
                        .open(&path)?
                        .set_modified(when)?;
                    written += 1;
                }
                if !keywords.is_empty() {
                    let text: String = keywords
                        .iter()
                        .enumerate()
                        .map(|(i, k)| format!("{i} {k}\n"))
                        .collect();
                    std::fs::write(folder.join("dovecot-keywords"), text)?;
                }
            }
        }
    }
    Ok(written)
}
