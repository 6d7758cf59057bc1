//! Maildir import: `cur/` and `new/` of the root (INBOX) and of Maildir++
//! folders (`.Sent`, `.Projects.2024`), flags from the `:2,` suffix and
//! keywords from Dovecot's `dovecot-keywords` file.

use super::{Importer, names};
use anyhow::Context;
use pillarbox_store::{Flags, SystemFlag};
use std::path::Path;

/// Flags of a Maildir file name (`…:2,FRS`), with keyword letters a–z
/// looked up in `keywords`.
pub fn flags_of(name: &str, keywords: &[String]) -> Flags {
    let mut flags = Flags::new();
    let Some((_, info)) = name.rsplit_once(":2,") else {
        return flags;
    };
    for c in info.chars() {
        match c {
            'S' => flags.insert(SystemFlag::Seen),
            'R' => flags.insert(SystemFlag::Answered),
            'F' => flags.insert(SystemFlag::Flagged),
            'T' => flags.insert(SystemFlag::Deleted),
            'D' => flags.insert(SystemFlag::Draft),
            'a'..='z' => {
                // A letter with no (valid) keyword defined sets nothing.
                if let Some(k) = keywords.get((c as u8 - b'a') as usize)
                    && !k.is_empty()
                {
                    flags.insert_keyword(k);
                }
            }
            _ => {}
        }
    }
    flags
}

/// `dovecot-keywords`: lines of `INDEX NAME`.
fn keywords(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("dovecot-keywords")).unwrap_or_default();
    parse_keywords(&text)
}

/// Whether `name` is a keyword an IMAP client can read back: printable
/// ASCII, no space, none of `(){%*"\]`, not starting with `\`.
fn is_keyword_atom(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('\\')
        && name
            .bytes()
            .all(|b| b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b))
}

/// The keywords of a `dovecot-keywords` file's text, indexed by letter
/// (`a` is 0); 26 entries, empty where none is defined.
pub fn parse_keywords(text: &str) -> Vec<String> {
    let mut out = vec![String::new(); 26];
    for line in text.lines() {
        if let Some((i, name)) = line.split_once(' ')
            && let Ok(i) = i.parse::<usize>()
            && i < 26
        {
            let name = name.trim();
            // Only a name FETCH FLAGS can write back: an IMAP atom
            // (RFC 9051 §9 flag-keyword), not a system flag.
            if is_keyword_atom(name) {
                out[i] = name.to_string();
            }
        }
    }
    out
}

async fn import_folder(
    importer: &mut Importer<'_>,
    dir: &Path,
    folder: &str,
) -> anyhow::Result<()> {
    let target = importer.folder(folder).await?;
    importer.progress.set_prefix(folder.to_string());
    let keywords = keywords(dir);
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        // Regular files only: a symbolic link in a Maildir from elsewhere
        // must not make import read a file outside it.
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let raw = match std::fs::read(&path) {
                Ok(raw) => raw,
                Err(e) => {
                    importer
                        .summary
                        .failed
                        .push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            // Maildir files use LF; the store keeps CRLF.
            let raw = to_crlf(&raw);
            let date = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64);
            importer
                .add(target, raw, flags_of(&name, &keywords), date)
                .await?;
        }
    }
    Ok(())
}

/// Bare LF line ends become CRLF; CRLF stays.
pub fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    for (i, b) in raw.iter().enumerate() {
        if *b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}

pub async fn import(importer: &mut Importer<'_>, root: &Path) -> anyhow::Result<()> {
    if !root.join("cur").is_dir() && !root.join("new").is_dir() {
        anyhow::bail!(
            "{} is not a Maildir (no cur/ or new/ inside)",
            root.display()
        );
    }
    import_folder(importer, root, "INBOX").await?;
    // Folders are real directories directly under the root (a symbolic link
    // could lead anywhere), named as `pillarbox export` names them.
    let mut folders: Vec<(String, String)> = std::fs::read_dir(root)
        .with_context(|| format!("cannot read {}", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let file_name = e.file_name().to_str()?.to_string();
            let mailbox = names::mailbox_of_maildir_folder(&file_name)?;
            Some((file_name, mailbox))
        })
        .collect();
    folders.sort();
    for (file_name, mailbox) in folders {
        import_folder(importer, &root.join(&file_name), &mailbox).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    /// Found by the import_maildir fuzz target: a flag letter with no
    /// keyword defined set the empty keyword, and a name with a space was
    /// kept; FETCH FLAGS could not write either back.
    #[test]
    fn only_keywords_imap_can_write_back_are_imported() {
        let keywords = parse_keywords("0 $Label1\n1 two words\n2 \\Seen\n3 ok]\n");
        assert_eq!(keywords[0], "$Label1");
        assert!(keywords[1..4].iter().all(String::is_empty), "{keywords:?}");
        assert!(keywords[4..].iter().all(String::is_empty));
    }

    use super::*;

    #[test]
    fn maildir_flags() {
        let kw = vec!["$Forwarded".to_string(), "Work".into()];
        let f = flags_of("1700000000.1.host:2,FRSb", &kw);
        assert!(
            f.contains(SystemFlag::Flagged)
                && f.contains(SystemFlag::Answered)
                && f.contains(SystemFlag::Seen)
        );
        assert!(f.has_keyword("Work") && !f.has_keyword("$Forwarded"));
        assert!(flags_of("new-message", &kw).is_empty());
        assert_eq!(to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    }
}
