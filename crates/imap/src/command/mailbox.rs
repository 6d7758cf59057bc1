//! CREATE, DELETE, RENAME (RFC 9051 §6.3.4-6.3.6) and SUBSCRIBE,
//! UNSUBSCRIBE (§6.3.7-6.3.8).

use crate::session::{Done, Session};
use pillarbox_store::{DELIMITER, INBOX, Result, SpecialUse};

impl Session<'_> {
    /// CREATE, with `(USE (…))` (RFC 6154 §3, CREATE-SPECIAL-USE): a
    /// mailbox has at most one special use here.
    pub(crate) async fn create(&mut self, raw: &[u8], uses: &[String]) -> Result<Done> {
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        let special_use = match uses {
            [] => None,
            [one] => match SpecialUse::from_imap(one) {
                Some(special_use) => Some(special_use),
                None => {
                    return Ok(Done::No(format!(
                        "[USEATTR] {one} is not a special use: use \\All, \\Archive, \\Drafts, \\Flagged, \\Junk, \\Sent or \\Trash"
                    )));
                }
            },
            _ => {
                return Ok(Done::No(
                    "[USEATTR] A mailbox has at most one special use here".into(),
                ));
            }
        };
        // RFC 9051 §6.3.4: a trailing delimiter only says a child may follow.
        let name = name.trim_end_matches(DELIMITER);
        if name.eq_ignore_ascii_case(INBOX) {
            return Ok(Done::No("[ALREADYEXISTS] INBOX always exists".into()));
        }
        let mailbox = self
            .server
            .store
            .create_mailbox(self.account_id(), name, special_use)
            .await?;
        // RFC 8474 §4.1: the new mailbox's id in the tagged OK.
        Ok(Done::Ok(format!(
            "[MAILBOXID ({})] CREATE completed",
            crate::objectid::mailbox_id(&mailbox)
        )))
    }

    pub(crate) async fn delete(&mut self, raw: &[u8]) -> Result<Done> {
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        let account = self.account_id();
        let mailbox = self.server.store.require_mailbox(account, &name).await?;
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.mailbox.id == mailbox.id)
        {
            self.selected = None;
        }
        self.server.store.delete_mailbox(account, &name).await?;
        Ok(Done::Ok("DELETE completed".into()))
    }

    pub(crate) async fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<Done> {
        let (from, to) = match (self.mailbox_name(from), self.mailbox_name(to)) {
            (Ok(from), Ok(to)) => (from, to),
            (Err(done), _) | (_, Err(done)) => return Ok(done),
        };
        let account = self.account_id();
        self.server
            .store
            .rename_mailbox(account, &from, to.trim_end_matches(DELIMITER))
            .await?;
        Ok(Done::Ok("RENAME completed".into()))
    }

    pub(crate) async fn subscribe(&mut self, raw: &[u8], on: bool) -> Result<Done> {
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        self.server
            .store
            .set_subscribed(self.account_id(), &name, on)
            .await?;
        Ok(Done::Ok(format!(
            "{} completed",
            if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" }
        )))
    }
}
