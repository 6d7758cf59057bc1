//! mbox import (mboxo and mboxrd quoting), streamed line by line.

use super::{Importer, asctime};
use pillarbox_store::{Flags, SystemFlag};
use std::io::BufRead;

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

/// Imports every message of `reader` into `folder`.
pub async fn import(
    importer: &mut Importer<'_>,
    reader: impl BufRead,
    folder: &str,
) -> anyhow::Result<()> {
    let target = importer.folder(folder).await?;
    importer.progress.set_prefix(folder.to_string());
    let mut current: Option<(Vec<u8>, Option<i64>)> = None;
    for line in reader.split(b'\n') {
        let line = line?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.starts_with(b"From ") {
            if let Some((message, date)) = current.take() {
                finish(importer, target, message, date).await?;
            }
            let date = std::str::from_utf8(&line[5..])
                .ok()
                .and_then(|rest| rest.split_once(' ').map(|(_, d)| d))
                .and_then(asctime);
            current = Some((Vec::new(), date));
            continue;
        }
        let Some((message, _)) = current.as_mut() else {
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
    if let Some((message, date)) = current.take() {
        finish(importer, target, message, date).await?;
    }
    Ok(())
}

async fn finish(
    importer: &mut Importer<'_>,
    target: pillarbox_store::MailboxId,
    mut message: Vec<u8>,
    date: Option<i64>,
) -> anyhow::Result<()> {
    // The blank line before the next `From ` line belongs to the mbox.
    if message.ends_with(b"\r\n\r\n") {
        message.truncate(message.len() - 2);
    }
    let flags = take_status(&mut message);
    importer.add(target, message, flags, date).await
}
