//! Mailbox names as file names, for export and import. A mailbox name is
//! whatever a client sent to CREATE, so it is mapped before it touches the
//! file system, and the mapping is reversed on import:
//!
//! - the name is split at `/` (the hierarchy delimiter) into levels;
//! - in each level, `%`, `.`, `\`, `:`, the characters Windows refuses in
//!   file names (`*?"<>|`) and every control character (NUL included) are
//!   written as `%XX` (upper-case hex of the UTF-8 byte); everything else,
//!   UTF-8 letters included, stays as it is;
//! - so no level is empty, `.` or `..`, none starts with a dot (no hidden
//!   files), and none contains a path separator: every path made from a
//!   name stays inside the export directory;
//! - mbox: levels become directories and the last one a file,
//!   `Projects/2024.mbox` for `Projects/2024`; Maildir++: the levels are
//!   joined with `.` under the root, `.Projects.2024` (INBOX is the root);
//! - a level longer than 255 bytes once mapped (with `.mbox` or the
//!   Maildir++ folder name as a whole) cannot be a file name: export says
//!   which mailbox and stops before writing anything.
//!
//! The mapping is one-to-one, so two mailboxes never share a file, and
//! import reads the names back exactly.

/// The longest file name (one path component) Linux and most file systems take.
pub const MAX_FILE_NAME: usize = 255;

/// Bytes written as `%XX` in a level.
fn needs_escape(byte: u8) -> bool {
    matches!(
        byte,
        b'%' | b'.' | b'/' | b'\\' | b':' | b'*' | b'?' | b'"' | b'<' | b'>' | b'|'
    ) || byte < 0x20
        || byte == 0x7f
}

/// One level of a mailbox name as a file name (never empty, never with a
/// separator or a leading dot).
pub fn encode_level(level: &str) -> String {
    if level.is_empty() {
        // Not a name the store accepts; still a file name of its own.
        return "%".to_string();
    }
    let mut out = String::with_capacity(level.len());
    for character in level.chars() {
        if character.is_ascii() && needs_escape(character as u8) {
            out.push_str(&format!("%{:02X}", character as u8));
        } else {
            out.push(character);
        }
    }
    out
}

/// Reverses [`encode_level`]; `%` not followed by two hex digits stays as it is.
pub fn decode_level(file_name: &str) -> String {
    if file_name == "%" {
        return String::new();
    }
    let bytes = file_name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a mailbox cannot be exported under its name.
#[derive(Debug, thiserror::Error)]
#[error(
    "mailbox {name:?} cannot be exported: {reason}; rename it (e.g. over IMAP) and export again"
)]
pub struct NameError {
    pub name: String,
    pub reason: &'static str,
}

/// The mbox file of a mailbox, relative to the export directory.
pub fn mbox_path(name: &str) -> Result<std::path::PathBuf, NameError> {
    let mut path = std::path::PathBuf::new();
    let levels: Vec<&str> = name.split('/').collect();
    for (index, level) in levels.iter().enumerate() {
        let mut file = encode_level(level);
        if index + 1 == levels.len() {
            file.push_str(".mbox");
        }
        if file.len() > MAX_FILE_NAME {
            return Err(NameError {
                name: name.to_string(),
                reason: "a level of its name is too long for a file name",
            });
        }
        path.push(file);
    }
    Ok(path)
}

/// The mailbox name of an mbox file, from its path relative to the export
/// directory; `None` for a file that does not end in `.mbox`.
pub fn mailbox_of_mbox(relative: &std::path::Path) -> Option<String> {
    let mut levels = Vec::new();
    let components: Vec<_> = relative.components().collect();
    for (index, component) in components.iter().enumerate() {
        let std::path::Component::Normal(part) = component else {
            return None;
        };
        let part = part.to_str()?;
        let part = if index + 1 == components.len() {
            part.strip_suffix(".mbox")?
        } else {
            part
        };
        levels.push(decode_level(part));
    }
    (!levels.is_empty()).then(|| levels.join("/"))
}

/// The Maildir++ folder directory of a mailbox (`.A.B`), or `None` for INBOX
/// (the Maildir's root).
pub fn maildir_folder(name: &str) -> Result<Option<String>, NameError> {
    if name == "INBOX" {
        return Ok(None);
    }
    let mut folder = String::new();
    for level in name.split('/') {
        folder.push('.');
        folder.push_str(&encode_level(level));
    }
    if folder.len() > MAX_FILE_NAME {
        return Err(NameError {
            name: name.to_string(),
            reason: "its name is too long for a Maildir++ folder",
        });
    }
    Ok(Some(folder))
}

/// The mailbox name of a Maildir++ folder directory (`.A.B` → `A/B`).
pub fn mailbox_of_maildir_folder(folder: &str) -> Option<String> {
    let rest = folder.strip_prefix('.')?;
    if rest.is_empty() || rest.starts_with('.') {
        return None;
    }
    Some(
        rest.split('.')
            .map(decode_level)
            .collect::<Vec<_>>()
            .join("/"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Component, Path};

    const HOSTILE: [&str; 12] = [
        "../../x/pwned",
        "/etc/passwd",
        "..",
        ".",
        ".hidden",
        "a\0b",
        "back\\slash\\..\\..",
        "C:\\Windows",
        "100%/50%2E",
        "a.b/c.mbox/..",
        "Entwürfe/日本",
        "x/./y/../z",
    ];

    fn stays_inside(path: &Path) -> bool {
        path.components()
            .all(|c| matches!(c, Component::Normal(p) if !p.to_string_lossy().starts_with('.') && !p.to_string_lossy().contains(['\0', '\\'])))
    }

    #[test]
    fn hostile_names_map_inside_the_directory_and_back() {
        for name in HOSTILE {
            let path = mbox_path(name).unwrap();
            assert!(stays_inside(&path), "{name:?} → {path:?}");
            assert_eq!(mailbox_of_mbox(&path).as_deref(), Some(name), "{path:?}");
            let folder = maildir_folder(name).unwrap().unwrap();
            assert!(!folder.contains(['/', '\\', '\0']), "{folder:?}");
            assert!(
                folder != "." && folder != ".." && !folder.starts_with(".."),
                "{folder:?}"
            );
            assert_eq!(mailbox_of_maildir_folder(&folder).as_deref(), Some(name));
        }
    }

    #[test]
    fn ordinary_names_stay_readable() {
        assert_eq!(mbox_path("Old Mail").unwrap(), Path::new("Old Mail.mbox"));
        assert_eq!(
            mbox_path("Projects/2024").unwrap(),
            Path::new("Projects/2024.mbox")
        );
        assert_eq!(
            maildir_folder("Projects/2024").unwrap().as_deref(),
            Some(".Projects.2024")
        );
        assert_eq!(maildir_folder("INBOX").unwrap(), None);
        assert_eq!(
            mailbox_of_maildir_folder(".Sent.2024").as_deref(),
            Some("Sent/2024")
        );
    }

    #[test]
    fn different_names_never_share_a_file() {
        // A folder and a child whose parent level ends in `.mbox`.
        let names = ["x", "x.mbox/y", "x.mbox", "a.b", "a/b", "a%2Eb"];
        let mut paths = std::collections::HashSet::new();
        let mut folders = std::collections::HashSet::new();
        for name in names {
            assert!(paths.insert(mbox_path(name).unwrap()), "{name}");
            assert!(folders.insert(maildir_folder(name).unwrap()), "{name}");
        }
        // A file and a directory of the same name would clash too.
        let file = mbox_path("x").unwrap();
        assert!(!paths.iter().any(|p| p.starts_with(&file) && *p != file));
    }

    #[test]
    fn names_too_long_for_a_file_are_refused_not_cut() {
        let long = "a".repeat(300);
        assert!(mbox_path(&long).is_err());
        assert!(maildir_folder(&format!("{}/{}", "b".repeat(200), "c".repeat(100))).is_err());
        assert!(mbox_path(&format!("{}/{}", "b".repeat(200), "c".repeat(100))).is_ok());
    }
}
