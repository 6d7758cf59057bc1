//! STATUS (RFC 9051 §6.3.11, RFC 8438 STATUS=SIZE); also what LIST-STATUS
//! (RFC 5819) writes after each LIST line.

use crate::encode;
use crate::objectid;
use crate::parse::StatusItem;
use crate::session::{Done, Session};
use pillarbox_store::{Mailbox, Result, SystemFlag, UidRange};

impl Session<'_> {
    pub(crate) async fn status(&mut self, raw: &[u8], items: &[StatusItem]) -> Result<Done> {
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        let mailbox = self
            .server
            .store
            .require_mailbox(self.account_id(), &name)
            .await?;
        self.write_status(&mailbox, items).await?;
        Ok(Done::Ok("STATUS completed".into()))
    }

    pub(crate) async fn write_status(
        &mut self,
        mailbox: &Mailbox,
        items: &[StatusItem],
    ) -> Result<()> {
        let store = &self.server.store;
        let counts = store.mailbox_counts(mailbox.id).await?;
        let mut values = Vec::new();
        for item in items {
            let value = match item {
                StatusItem::Messages => format!("MESSAGES {}", counts.messages),
                StatusItem::UidNext => format!("UIDNEXT {}", mailbox.uid_next),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", mailbox.uid_validity),
                StatusItem::Unseen => format!("UNSEEN {}", counts.unseen),
                StatusItem::Size => format!("SIZE {}", counts.size),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", mailbox.highest_modseq),
                StatusItem::MailboxId => format!("MAILBOXID ({})", objectid::mailbox_id(mailbox)),
                StatusItem::Recent => {
                    // The selected mailbox: what this session holds as recent;
                    // another: what no session has claimed yet (RFC 3501 §2.3.2).
                    let recent = match self
                        .selected
                        .as_ref()
                        .filter(|s| s.mailbox.id == mailbox.id)
                    {
                        Some(selected) => selected.recent_count() as u32,
                        None => store.unclaimed_recent_count(mailbox.id).await?,
                    };
                    format!("RECENT {recent}")
                }
                StatusItem::Deleted => {
                    let deleted = store
                        .messages(mailbox.id, UidRange::all())
                        .await?
                        .iter()
                        .filter(|m| m.flags.contains(SystemFlag::Deleted))
                        .count();
                    format!("DELETED {deleted}")
                }
                StatusItem::DeletedStorage => {
                    let octets: u64 = store
                        .messages(mailbox.id, UidRange::all())
                        .await?
                        .iter()
                        .filter(|m| m.flags.contains(SystemFlag::Deleted))
                        .map(|m| m.size)
                        .sum();
                    format!("DELETED-STORAGE {octets}")
                }
            };
            values.push(value);
        }
        let mut line = b"* STATUS ".to_vec();
        encode::mailbox(&mut line, &mailbox.name, self.utf8_names());
        line.extend_from_slice(format!(" ({})\r\n", values.join(" ")).as_bytes());
        self.conn.write(&line);
        Ok(())
    }
}
