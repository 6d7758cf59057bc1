//! APPEND (RFC 9051 §6.3.12), with APPENDUID (RFC 4315) and APPENDLIMIT
//! (RFC 7889).

use crate::command::to_flags;
use crate::session::{Done, Session};
use pillarbox_store::{NewMessage, Result, Target};

impl Session<'_> {
    pub(crate) async fn append(
        &mut self,
        raw: &[u8],
        flag_names: &[String],
        date: Option<i64>,
        message: &[u8],
    ) -> Result<Done> {
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
        if message.is_empty() {
            return Ok(Done::No(
                "[CANNOT] An empty message cannot be appended".into(),
            ));
        }
        if message.len() as u64 > self.server.config.append_limit {
            return Ok(Done::No(format!(
                "[TOOBIG] Message is larger than the APPENDLIMIT of {} octets",
                self.server.config.append_limit
            )));
        }
        let flags = match to_flags(flag_names) {
            Ok(flags) => flags,
            Err(done) => return Ok(done),
        };
        let new = NewMessage {
            raw: bytes::Bytes::copy_from_slice(message),
            trace_headers: Vec::new(),
            internal_date: date,
        };
        let target = Target {
            account,
            mailbox: mailbox.id,
            flags,
        };
        // Over quota comes back as an error and is answered NO [OVERQUOTA].
        let delivered = self.server.store.deliver(&new, &[target]).await?;
        let Some(d) = delivered.first() else {
            return Ok(Done::No("[SERVERBUG] Message was not stored".into()));
        };
        Ok(Done::Ok(format!(
            "[APPENDUID {} {}] APPEND completed",
            mailbox.uid_validity, d.uid
        )))
    }
}
