//! STORE (RFC 9051 §6.4.6): flags of messages in the selected mailbox.

use crate::command::to_flags;
use crate::encode;
use crate::parse::StoreOp;
use crate::sequence::SequenceSet;
use crate::session::{Done, Session};
use pillarbox_store::{FlagOp, Result, Uid};

impl Session<'_> {
    pub(crate) async fn store(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        op: StoreOp,
        silent: bool,
        flag_names: &[String],
    ) -> Result<Done> {
        let store = self.server.store.clone();
        let rev2 = self.rev2;
        let flags = match to_flags(flag_names) {
            Ok(flags) => flags,
            Err(done) => return Ok(done),
        };
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::Bad("No mailbox selected".into()));
        };
        if selected.read_only {
            return Ok(Done::No(
                "[READ-ONLY] Mailbox was opened with EXAMINE: SELECT it to change flags".into(),
            ));
        }
        let indexes = match selected.resolve(set, uid) {
            Ok(indexes) => indexes,
            Err(done) => return Ok(done),
        };
        let uids: Vec<Uid> = indexes
            .iter()
            .map(|i| selected.messages[*i].uid)
            .filter(|u| !selected.gone.contains(u))
            .collect();
        let op = match op {
            StoreOp::Replace => FlagOp::Replace,
            StoreOp::Add => FlagOp::Add,
            StoreOp::Remove => FlagOp::Remove,
        };
        let updates = store
            .store_flags(selected.mailbox.id, &uids, op, &flags, None)
            .await?;
        selected.apply(updates);
        // A keyword new to this mailbox is announced (FLAGS, PERMANENTFLAGS)
        // before any FETCH shows it, even when the FETCHes are silenced.
        let mut out = Vec::new();
        for index in &indexes {
            let flags = selected.messages[*index].flags.clone();
            selected.announce_keywords(&flags, &mut out);
        }
        if !silent {
            // RFC 9051 §6.4.6: the flags of every message named, changed or not.
            for index in indexes {
                let m = &selected.messages[index];
                if selected.gone.contains(&m.uid) {
                    continue;
                }
                let recent = !rev2 && selected.is_recent(m.uid);
                out.extend_from_slice(format!("* {} FETCH (", index + 1).as_bytes());
                if uid {
                    out.extend_from_slice(format!("UID {} ", m.uid).as_bytes());
                }
                out.extend_from_slice(b"FLAGS ");
                encode::flags(&mut out, &m.flags, recent);
                out.extend_from_slice(b")\r\n");
            }
        }
        self.conn.write(&out);
        Ok(Done::Ok(format!(
            "{}STORE completed",
            if uid { "UID " } else { "" }
        )))
    }
}
