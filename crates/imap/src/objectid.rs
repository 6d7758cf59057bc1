//! Object identifiers (RFC 8474 OBJECTID): MAILBOXID and EMAILID.
//!
//! - MAILBOXID is `F` and the mailbox's UIDVALIDITY: the store hands out
//!   UIDVALIDITY values from one counter for every mailbox of every
//!   account, so no two mailboxes ever share one, a RENAME keeps it, and a
//!   mailbox deleted and created again under the same name gets a new one.
//! - EMAILID is `M`, the first 16 hex digits of the message's content hash
//!   and its row id in hex. COPY and MOVE keep the row, so the EMAILID stays
//!   with the message (RFC 8474 §5.1). A row id a database hands out again
//!   after a delete (SQLite may) names a different content hash, so an
//!   EMAILID never names two different messages.
//! - THREADID is NIL: threads are computed per SORT/THREAD command, not
//!   kept per message (RFC 8474 §5.2 allows NIL).

use pillarbox_store::{Mailbox, MessageId};

/// Hex digits of the content hash in an EMAILID.
const HASH_DIGITS: usize = 16;

pub fn mailbox_id(mailbox: &Mailbox) -> String {
    format!("F{}", mailbox.uid_validity)
}

pub fn email_id(message: MessageId, content_hash: &str) -> String {
    let hash = content_hash.get(..HASH_DIGITS).unwrap_or(content_hash);
    format!("M{hash}{:x}", message.0)
}

/// The row id an EMAILID names, if it is of our form.
pub fn email_id_message(id: &str) -> Option<MessageId> {
    let rest = id.strip_prefix('M')?;
    let hex = rest.get(HASH_DIGITS..)?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    i64::from_str_radix(hex, 16).ok().map(MessageId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_ids_round_trip_and_follow_the_objectid_syntax() {
        let hash = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
        let id = email_id(MessageId(4_660), hash);
        assert_eq!(id, "Maf1349b9f5f9a1a61234");
        // RFC 8474 §3: objectid = 1*255(ALPHA / DIGIT / "_" / "-").
        assert!(id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(email_id_message(&id), Some(MessageId(4_660)));
        assert_eq!(email_id_message("Maf1349b9f5f9a1a6"), None);
        assert_eq!(email_id_message("F1234"), None);
        assert_eq!(email_id_message("Maf1349b9f5f9a1a6zz"), None);
    }
}
