//! mbox import (mboxo and mboxrd quoting), streamed line by line.

use super::{Importer, asctime, names};
use anyhow::Context;
use pillarbox_store::{Flags, SystemFlag};
use std::io::BufRead;
use std::path::Path;

/// Flags from the `Status:` / `X-Status:` headers mail programs write (and
/// `pillarbox export` writes); those two header lines are removed again.
fn take_status(message: &mut Vec<u8>) -> Flags {
    let mut flags = Flags::new();
    let mut out = Vec::with_capacity(message.len());
    let mut in_header = true;
    for line in message.split_inclusive(|b| *b == b'\n') {
        if in_header {
            if line == b"\r\n" || line == b"\n" {
                in_header = false;
            } else if let Some(value) = strip_header(line, b"Status:") {
                if value.contains(&b'R') {
                    flags.insert(SystemFlag::Seen);
                }
                continue;
            } else if let Some(value) = strip_header(line, b"X-Status:") {
                for (c, f) in [
                    (b'A', SystemFlag::Answered),
                    (b'F', SystemFlag::Flagged),
                    (b'D', SystemFlag::Deleted),
                    (b'T', SystemFlag::Draft),
                ] {
                    if value.contains(&c) {
                        flags.insert(f);
                    }
                }
                continue;
            }
        }
        out.extend_from_slice(line);
    }
    *message = out;
    flags
}

fn strip_header<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    (line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name))
        .then(|| &line[name.len()..])
}

/// One message of an mbox: its bytes (CRLF line ends, quoting undone,
/// `Status:` and `X-Status:` taken off), flags, and the date of its `From `
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub raw: Vec<u8>,
    pub flags: Flags,
    pub date: Option<i64>,
}

/// The messages of an mbox, read line by line: one message is in memory at
/// a time, whatever the file's size.
pub struct Messages<R> {
    lines: std::io::Split<R>,
    /// The message being read and the date of its `From ` line.
    current: Option<(Vec<u8>, Option<i64>)>,
}

/// Reads the messages of the mbox `reader` (mboxo and mboxrd quoting).
pub fn messages<R: BufRead>(reader: R) -> Messages<R> {
    Messages {
        lines: reader.split(b'\n'),
        current: None,
    }
}

impl<R: BufRead> Iterator for Messages<R> {
    type Item = std::io::Result<Message>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = match self.lines.next() {
                Some(Ok(line)) => line,
                Some(Err(e)) => return Some(Err(e)),
                None => return self.current.take().map(|(raw, date)| Ok(finish(raw, date))),
            };
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            if line.starts_with(b"From ") {
                let date = std::str::from_utf8(&line[5..])
                    .ok()
                    .and_then(|rest| rest.split_once(' ').map(|(_, d)| d))
                    .and_then(asctime);
                if let Some((raw, date)) = self.current.replace((Vec::new(), date)) {
                    return Some(Ok(finish(raw, date)));
                }
                continue;
            }
            let Some((message, _)) = self.current.as_mut() else {
                continue;
            };
            // mboxrd: one level of `>` comes off `>From `, `>>From `, ...
            let unquoted = if line.starts_with(b">")
                && line
                    .iter()
                    .skip_while(|b| **b == b'>')
                    .take(5)
                    .eq(b"From ".iter())
            {
                &line[1..]
            } else {
                line
            };
            message.extend_from_slice(unquoted);
            message.extend_from_slice(b"\r\n");
        }
    }
}

fn finish(mut raw: Vec<u8>, date: Option<i64>) -> Message {
    // The blank line before the next `From ` line belongs to the mbox.
    if raw.ends_with(b"\r\n\r\n") {
        raw.truncate(raw.len() - 2);
    }
    let flags = take_status(&mut raw);
    Message { raw, flags, date }
}

/// Imports every message of `reader` into `folder`.
pub async fn import(
    importer: &mut Importer<'_>,
    reader: impl BufRead,
    folder: &str,
) -> anyhow::Result<()> {
    let target = importer.folder(folder).await?;
    importer.progress.set_prefix(folder.to_string());
    for message in messages(reader) {
        let message = message?;
        importer
            .add(target, message.raw, message.flags, message.date)
            .await?;
    }
    Ok(())
}

/// Deepest directory level read under an mbox tree (a mailbox name of 1000
/// octets has at most 500 levels).
const MAX_TREE_DEPTH: usize = 500;

/// Imports a directory as `pillarbox export --format mbox` writes it: each
/// `*.mbox` file under `root` into the mailbox its path names (see
/// [`super::names`]). Only real files and directories inside `root` are
/// read: symbolic links are skipped, so nothing outside it is.
pub async fn import_tree(importer: &mut Importer<'_>, root: &Path) -> anyhow::Result<()> {
    let mut files = Vec::new();
    // Iterative, with a depth bound: the tree's shape is the input's.
    let mut pending = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries.filter_map(|e| e.ok()) {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && depth < MAX_TREE_DEPTH {
                pending.push((entry.path(), depth + 1));
            } else if kind.is_file() {
                let path = entry.path();
                let Ok(relative) = path.strip_prefix(root) else {
                    continue;
                };
                if let Some(mailbox) = names::mailbox_of_mbox(relative) {
                    files.push((mailbox, path));
                }
            }
        }
    }
    files.sort();
    for (mailbox, path) in files {
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        import(
            importer,
            std::io::BufReader::with_capacity(1 << 20, file),
            &mailbox,
        )
        .await?;
    }
    Ok(())
}
