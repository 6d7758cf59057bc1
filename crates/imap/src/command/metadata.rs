//! GETMETADATA and SETMETADATA (RFC 5464): annotations on a mailbox, or
//! on the server (mailbox name `""`), kept by the store.
//!
//! - Entry names start with `/private` or `/shared` and are compared
//!   without regard to case (kept lower-cased). A mailbox here belongs to
//!   one account, so its `/shared` entries are seen by that account alone;
//!   the server's `/shared` entries would reach every account and are
//!   refused (`NO [NOPERM]`), its `/private` ones are the account's own.
//! - Bounds: a value is at most [`MAX_VALUE`] octets (`NO [METADATA
//!   MAXSIZE …]`), an account keeps at most [`MAX_ENTRIES`] entries
//!   (`NO [METADATA TOOMANY]`), and a SETMETADATA changes all its entries
//!   or none.

use crate::encode;
use crate::parse::MetadataDepth;
use crate::session::{Done, Session};
use pillarbox_store::{MetadataScope, Result, StoreError};
use std::collections::BTreeMap;

/// The largest value one entry may hold.
pub const MAX_VALUE: usize = 16 * 1024;
/// Entries one account may keep, on all its mailboxes and the server.
pub const MAX_ENTRIES: u32 = 1_000;

/// An entry name as kept (lower-cased), or why it is not one (RFC 5464
/// §3.2.1). `root` allows `/private` and `/shared` themselves, which can be
/// read below but not set.
fn entry_name(raw: &[u8], root: bool) -> std::result::Result<String, Done> {
    let bad = |why: &str| {
        Done::Bad(format!(
            "{why}: a metadata entry is /private/… or /shared/… (RFC 5464 §3.2)"
        ))
    };
    let Ok(name) = std::str::from_utf8(raw) else {
        return Err(bad("entry name is not ASCII"));
    };
    if !name
        .bytes()
        .all(|b| (0x21..0x7f).contains(&b) && b != b'*' && b != b'%')
    {
        return Err(bad("entry names hold printable ASCII without * or %"));
    }
    if name.contains("//") || name.ends_with('/') {
        return Err(bad("entry name has an empty component"));
    }
    let name = name.to_ascii_lowercase();
    let under = |prefix: &str| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/') || (root && rest.is_empty()))
    };
    if !under("/private") && !under("/shared") {
        return Err(bad("entry name does not start with /private/ or /shared/"));
    }
    Ok(name)
}

/// Whether `name` is what `wanted` asks for at `depth`.
fn wanted(name: &str, wanted: &str, depth: MetadataDepth) -> bool {
    if name == wanted {
        return true;
    }
    let Some(rest) = name
        .strip_prefix(wanted)
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return false;
    };
    match depth {
        MetadataDepth::Zero => false,
        MetadataDepth::One => !rest.contains('/'),
        MetadataDepth::Infinity => true,
    }
}

impl Session<'_> {
    /// `""` is the server; any other name a mailbox of this account.
    async fn metadata_scope(&self, raw: &[u8]) -> Result<std::result::Result<MetadataScope, Done>> {
        if raw.is_empty() {
            return Ok(Ok(MetadataScope::Server));
        }
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(Err(done)),
        };
        Ok(
            match self.server.store.mailbox(self.account_id(), &name).await? {
                Some(mailbox) => Ok(MetadataScope::Mailbox(mailbox.id)),
                None => Err(Done::No(format!(
                    "[NONEXISTENT] Mailbox {name:?} does not exist"
                ))),
            },
        )
    }

    pub(crate) async fn get_metadata(
        &mut self,
        raw: &[u8],
        entries: &[Vec<u8>],
        max_size: Option<u32>,
        depth: MetadataDepth,
    ) -> Result<Done> {
        let mut names = Vec::with_capacity(entries.len());
        for raw_entry in entries {
            match entry_name(raw_entry, true) {
                Ok(name) => names.push(name),
                Err(done) => return Ok(done),
            }
        }
        let scope = match self.metadata_scope(raw).await? {
            Ok(scope) => scope,
            Err(done) => return Ok(done),
        };
        let stored = self.server.store.metadata(self.account_id(), scope).await?;
        // Each entry once, in name order, whichever names asked for it.
        let mut found: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
        let mut longest_left_out = 0usize;
        for name in &names {
            let mut exists = false;
            for (entry, value) in stored.iter().filter(|(e, _)| wanted(e, name, depth)) {
                exists |= entry == name;
                if max_size.is_some_and(|max| value.len() > max as usize) {
                    longest_left_out = longest_left_out.max(value.len());
                } else {
                    found.insert(entry, Some(value));
                }
            }
            if !exists && depth == MetadataDepth::Zero {
                found.entry(name).or_insert(None);
            }
        }
        if !found.is_empty() {
            let utf8 = self.utf8_names();
            let mut line = b"* METADATA ".to_vec();
            match scope {
                MetadataScope::Server => line.extend_from_slice(b"\"\""),
                MetadataScope::Mailbox(_) => {
                    let name = self.mailbox_name(raw).unwrap_or_default();
                    encode::mailbox(&mut line, &name, utf8);
                }
            }
            line.extend_from_slice(b" (");
            for (i, (entry, value)) in found.iter().enumerate() {
                if i > 0 {
                    line.push(b' ');
                }
                encode::string(&mut line, entry.as_bytes(), false);
                line.push(b' ');
                match value {
                    None => line.extend_from_slice(b"NIL"),
                    // A value may hold any octet: NUL only in a literal8.
                    Some(v) if v.contains(&0) => encode::literal8(&mut line, v),
                    Some(v) => encode::string(&mut line, v, utf8),
                }
            }
            line.extend_from_slice(b")\r\n");
            self.conn.write(&line);
        }
        Ok(Done::Ok(if longest_left_out > 0 {
            // RFC 5464 §4.2.1: the size of the largest value not sent.
            format!("[METADATA LONGENTRIES {longest_left_out}] GETMETADATA completed")
        } else {
            "GETMETADATA completed".into()
        }))
    }

    pub(crate) async fn set_metadata(
        &mut self,
        raw: &[u8],
        entries: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<Done> {
        let mut changes = Vec::with_capacity(entries.len());
        for (raw_entry, value) in entries {
            let name = match entry_name(raw_entry, false) {
                Ok(name) => name,
                Err(done) => return Ok(done),
            };
            if raw.is_empty() && name.starts_with("/shared") {
                return Ok(Done::No(
                    "[NOPERM] The server's /shared entries are the administrator's: set a /private entry"
                        .into(),
                ));
            }
            if value.as_ref().is_some_and(|v| v.len() > MAX_VALUE) {
                return Ok(Done::No(format!(
                    "[METADATA MAXSIZE {MAX_VALUE}] A metadata value is at most {MAX_VALUE} octets"
                )));
            }
            changes.push((name, value.clone()));
        }
        let scope = match self.metadata_scope(raw).await? {
            Ok(scope) => scope,
            Err(done) => return Ok(done),
        };
        match self
            .server
            .store
            .set_metadata(self.account_id(), scope, &changes, MAX_ENTRIES)
            .await
        {
            Ok(()) => Ok(Done::Ok("SETMETADATA completed".into())),
            Err(StoreError::MetadataLimit { limit }) => Ok(Done::No(format!(
                "[METADATA TOOMANY] An account keeps at most {limit} metadata entries: remove some first"
            ))),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_follow_rfc_5464() {
        assert_eq!(
            entry_name(b"/Private/Comment", false).ok().as_deref(),
            Some("/private/comment")
        );
        assert!(entry_name(b"/shared/vendor/x/y", false).is_ok());
        assert!(entry_name(b"/private", true).is_ok());
        for bad in [
            &b"/private"[..],
            b"/privatex/a",
            b"/other/a",
            b"private/a",
            b"/private//a",
            b"/private/a/",
            b"/private/a*",
            b"/private/%",
            b"/private/\xc3\xa9",
            b"/private/a b",
        ] {
            assert!(
                entry_name(bad, false).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn depth_picks_the_entry_its_children_or_all_below() {
        let w = "/private/filters";
        assert!(wanted("/private/filters", w, MetadataDepth::Zero));
        assert!(!wanted("/private/filters/a", w, MetadataDepth::Zero));
        assert!(wanted("/private/filters/a", w, MetadataDepth::One));
        assert!(!wanted("/private/filters/a/b", w, MetadataDepth::One));
        assert!(wanted("/private/filters/a/b", w, MetadataDepth::Infinity));
        assert!(!wanted("/private/filtersx", w, MetadataDepth::Infinity));
    }
}
