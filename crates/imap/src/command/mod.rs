//! One file per IMAP command or command family: each holds the command from
//! its parsed form to its answer. The session (`session.rs`) only
//! dispatches and keeps the state; the parser is in `parse`.
//!
//! | Command | File |
//! |---|---|
//! | STARTTLS, COMPRESS, AUTHENTICATE, LOGIN, UNAUTHENTICATE | `auth.rs` |
//! | SELECT, EXAMINE, CLOSE, UNSELECT | `select.rs` |
//! | CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE | `mailbox.rs` |
//! | LIST, LSUB | `list.rs` |
//! | STATUS | `status.rs` |
//! | GETQUOTA, GETQUOTAROOT (SETQUOTA is refused) | `quota.rs` |
//! | GETMETADATA, SETMETADATA | `metadata.rs` |
//! | APPEND | `append.rs` |
//! | IDLE | `idle.rs` |
//! | FETCH | `fetch.rs` |
//! | SEARCH | `search.rs` |
//! | SORT, THREAD | `sort.rs` (keys in `sort_keys.rs`) |
//! | STORE | `store.rs` |
//! | COPY, MOVE | `copy.rs` |
//! | EXPUNGE, UID EXPUNGE | `expunge.rs` |
//!
//! CAPABILITY, NOOP, LOGOUT, ENABLE, ID and NAMESPACE answer in one line
//! each and stay in the session's dispatch.

mod append;
mod auth;
mod copy;
mod expunge;
pub(crate) mod fetch;
mod idle;
pub(crate) mod list;
mod mailbox;
mod metadata;
mod quota;
pub(crate) mod search;
pub(crate) mod select;
mod sort;
mod status;
mod store;

use crate::session::Done;
use pillarbox_store::{Flags, SystemFlag};

/// Flags from a client, as the store keeps them. `\Recent` cannot be set.
pub(crate) fn to_flags(names: &[String]) -> Result<Flags, Done> {
    let mut flags = Flags::new();
    for name in names {
        if let Some(flag) = SystemFlag::from_imap(name) {
            flags.insert(flag);
        } else if name.starts_with('\\') {
            if name.eq_ignore_ascii_case("\\Recent") {
                continue;
            }
            return Err(Done::Bad(format!(
                "{name} is not a flag: use \\Seen \\Answered \\Flagged \\Deleted \\Draft or a keyword"
            )));
        } else {
            flags.insert_keyword(name);
        }
    }
    Ok(flags)
}
