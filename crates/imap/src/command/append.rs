//! APPEND (RFC 9051 §6.3.12) of one message or several (MULTIAPPEND, RFC
//! 3502), with APPENDUID (RFC 4315), APPENDLIMIT (RFC 7889) and the UTF8
//! data item of UTF8=ACCEPT (RFC 6855 §4).

use crate::command::to_flags;
use crate::parse::AppendMessage;
use crate::sequence;
use crate::session::{Done, Session};
use pillarbox_store::{NewMessage, Result, Target};

impl Session<'_> {
    /// Every message is stored or none is (RFC 3502 §6.3.11): one
    /// transaction, the quota checked for all of them together.
    pub(crate) async fn append(&mut self, raw: &[u8], messages: &[AppendMessage]) -> Result<Done> {
        if messages.iter().any(|m| m.utf8) && !self.utf8_accept {
            // RFC 6855 §4: only after ENABLE UTF8=ACCEPT.
            return Ok(Done::Bad(
                "APPEND … UTF8 (…) needs ENABLE UTF8=ACCEPT first (RFC 6855 §4)".into(),
            ));
        }
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        let account = self.account_id();
        let Some(mailbox) = self.server.store.mailbox(account, &name).await? else {
            return Ok(Done::No(format!(
                "[TRYCREATE] Mailbox {name:?} does not exist: CREATE it first"
            )));
        };
        let several = messages.len() > 1;
        let mut batch = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let which = if several {
                format!("Message {} of {}", i + 1, messages.len())
            } else {
                "Message".to_string()
            };
            if m.message.is_empty() {
                return Ok(Done::No(format!(
                    "[CANNOT] {which} is empty: an empty message cannot be appended"
                )));
            }
            if m.message.len() as u64 > self.server.config.append_limit {
                return Ok(Done::No(format!(
                    "[TOOBIG] {which} is larger than the APPENDLIMIT of {} octets",
                    self.server.config.append_limit
                )));
            }
            let flags = match to_flags(&m.flags) {
                Ok(flags) => flags,
                Err(done) => return Ok(done),
            };
            let new = NewMessage {
                raw: bytes::Bytes::copy_from_slice(&m.message),
                trace_headers: Vec::new(),
                internal_date: m.date,
            };
            let target = Target {
                account,
                mailbox: mailbox.id,
                flags,
            };
            batch.push((new, vec![target]));
        }
        // Over quota comes back as an error and is answered NO [OVERQUOTA].
        let delivered = if several {
            self.server.store.deliver_batch(&batch).await?
        } else {
            let (new, targets) = &batch[0];
            vec![self.server.store.deliver(new, targets).await?]
        };
        let uids: Vec<u32> = delivered
            .iter()
            .filter_map(|d| d.first().map(|d| d.uid.0))
            .collect();
        if uids.len() != messages.len() {
            return Ok(Done::No("[SERVERBUG] Message was not stored".into()));
        }
        Ok(Done::Ok(format!(
            "[APPENDUID {} {}] APPEND completed",
            mailbox.uid_validity,
            sequence::in_order(&uids)
        )))
    }
}
