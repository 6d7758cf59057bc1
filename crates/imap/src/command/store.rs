//! STORE (RFC 9051 §6.4.6): flags of messages in the selected mailbox.

use crate::command::to_flags;
use crate::encode;
use crate::parse::StoreOp;
use crate::sequence::SequenceSet;
use crate::session::{Done, Session};
use pillarbox_store::{FlagOp, ModSeq, Result, Uid};

impl Session<'_> {
    pub(crate) async fn store(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        op: StoreOp,
        silent: bool,
        flag_names: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<Done> {
        // RFC 7162 §3.1: UNCHANGEDSINCE enables CONDSTORE.
        self.condstore |= unchanged_since.is_some();
        let condstore = self.condstore;
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
        let (updates, modified) = store
            .store_flags_checked(
                selected.mailbox.id,
                &uids,
                op,
                &flags,
                unchanged_since.map(ModSeq),
            )
            .await?;
        let changed: std::collections::BTreeSet<Uid> =
            selected.apply(updates).into_iter().collect();
        let modified: std::collections::BTreeSet<Uid> = modified.into_iter().collect();
        // A keyword new to this mailbox is announced (FLAGS, PERMANENTFLAGS)
        // before any FETCH shows it, even when the FETCHes are silenced.
        let mut out = Vec::new();
        for index in &indexes {
            let flags = selected.messages[*index].flags.clone();
            selected.announce_keywords(&flags, &mut out);
        }
        // RFC 9051 §6.4.6: the flags of every message named, changed or
        // not; with .SILENT none, except that under CONDSTORE a changed
        // message still gets its new MODSEQ (RFC 7162 §3.1.3). A message
        // that failed UNCHANGEDSINCE is left out: MODIFIED names it.
        let mut failed = Vec::new();
        for index in &indexes {
            let m = &selected.messages[*index];
            if selected.gone.contains(&m.uid) {
                continue;
            }
            if modified.contains(&m.uid) {
                failed.push(if uid { m.uid.0 } else { *index as u32 + 1 });
                continue;
            }
            if silent && !(condstore && changed.contains(&m.uid)) {
                continue;
            }
            out.extend_from_slice(format!("* {} FETCH (", index + 1).as_bytes());
            let mut items = Vec::new();
            if uid {
                items.push(format!("UID {}", m.uid).into_bytes());
            }
            if !silent {
                let mut flags = b"FLAGS ".to_vec();
                encode::flags(&mut flags, &m.flags, !rev2 && selected.is_recent(m.uid));
                items.push(flags);
            }
            if condstore {
                items.push(format!("MODSEQ ({})", m.modseq).into_bytes());
            }
            out.extend_from_slice(&items.join(&b' '));
            out.extend_from_slice(b")\r\n");
        }
        self.conn.write(&out);
        let verb = if uid { "UID STORE" } else { "STORE" };
        if !failed.is_empty() {
            failed.sort_unstable();
            return Ok(Done::Ok(format!(
                "[MODIFIED {}] {verb}: some messages changed since the given mod-sequence and were left alone",
                crate::sequence::compact(&failed)
            )));
        }
        Ok(Done::Ok(format!("{verb} completed")))
    }
}
