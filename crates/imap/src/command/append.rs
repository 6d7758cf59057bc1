//! APPEND (RFC 9051 §6.3.12) of one message or several (MULTIAPPEND, RFC
//! 3502), with APPENDUID (RFC 4315), APPENDLIMIT (RFC 7889), the UTF8
//! data item of UTF8=ACCEPT (RFC 6855 §4) and CATENATE (RFC 4469).

use crate::command::fetch::{section_bytes, slice};
use crate::command::to_flags;
use crate::imap_url;
use crate::parse::{AppendMessage, CatPart};
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
            let built;
            let message: &[u8] = if m.catenate.is_empty() {
                &m.message
            } else {
                built = match self.catenate(&m.catenate).await? {
                    Ok(bytes) => bytes,
                    Err(done) => return Ok(done),
                };
                &built
            };
            if message.is_empty() {
                return Ok(Done::No(format!(
                    "[CANNOT] {which} is empty: an empty message cannot be appended"
                )));
            }
            if message.len() as u64 > self.server.config.append_limit {
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
                raw: bytes::Bytes::copy_from_slice(message),
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

    /// The message a CATENATE describes: its TEXT parts as sent, its URL
    /// parts read from this account's mailboxes (RFC 4469 §3). A URL that
    /// names nothing stored is `NO [BADURL …]`; a message growing past the
    /// APPENDLIMIT on the way is `NO [TOOBIG]`.
    async fn catenate(&self, parts: &[CatPart]) -> Result<std::result::Result<Vec<u8>, Done>> {
        let limit = self.server.config.append_limit;
        let mut out = Vec::new();
        for part in parts {
            let piece = match part {
                CatPart::Text(text) => text.clone(),
                CatPart::Url(url) => match self.url_bytes(url).await? {
                    Some(bytes) => bytes,
                    None => {
                        // url-resp-text holds no ']' (RFC 4469 §6).
                        let shown: String = url.chars().filter(|c| *c != ']').take(200).collect();
                        return Ok(Err(Done::No(format!(
                            "[BADURL {shown}] The URL names no message or part stored in this account"
                        ))));
                    }
                },
            };
            if (out.len() + piece.len()) as u64 > limit {
                return Ok(Err(Done::No(format!(
                    "[TOOBIG] The message would be larger than the APPENDLIMIT of {limit} octets"
                ))));
            }
            out.extend_from_slice(&piece);
        }
        Ok(Ok(out))
    }

    /// The octets an IMAP URL names in this account, if it names any.
    async fn url_bytes(&self, url: &str) -> Result<Option<Vec<u8>>> {
        let Some(url) = imap_url::parse(url) else {
            return Ok(None);
        };
        let store = &self.server.store;
        let Some(mailbox) = store.mailbox(self.account_id(), &url.mailbox).await? else {
            return Ok(None);
        };
        if url
            .uid_validity
            .is_some_and(|v| v != mailbox.uid_validity.0)
        {
            return Ok(None);
        }
        let Some(entry) = store
            .message(mailbox.id, pillarbox_store::Uid(url.uid))
            .await?
        else {
            return Ok(None);
        };
        let Ok(bytes) = store.message_bytes(entry.message).await else {
            return Ok(None);
        };
        let mut data = match &url.section {
            None => bytes.to_vec(),
            Some(section) => {
                let Ok(meta) = store.message_meta(entry.message).await else {
                    return Ok(None);
                };
                match section_bytes(&bytes, &meta, section) {
                    Some(data) => data,
                    None => return Ok(None),
                }
            }
        };
        if let Some((offset, length)) = url.partial {
            let start = offset as usize;
            let end = length.map_or(usize::MAX, |l| start.saturating_add(l as usize));
            data = slice(&data, start, end).to_vec();
        }
        Ok(Some(data))
    }
}
