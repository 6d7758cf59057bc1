//! Commands on messages of the selected mailbox: STORE, COPY and MOVE
//! (RFC 6851), with COPYUID (RFC 4315).

use crate::encode;
use crate::mailboxes::to_flags;
use crate::parse::StoreOp;
use crate::sequence::{SequenceSet, in_order};
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

    pub(crate) async fn copy(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        raw: &[u8],
        is_move: bool,
    ) -> Result<Done> {
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        let store = self.server.store.clone();
        let account = self.account_id();
        let verb = match (uid, is_move) {
            (false, false) => "COPY",
            (true, false) => "UID COPY",
            (false, true) => "MOVE",
            (true, true) => "UID MOVE",
        };
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::Bad("No mailbox selected".into()));
        };
        if is_move && selected.read_only {
            return Ok(Done::No(
                "[READ-ONLY] Mailbox was opened with EXAMINE: SELECT it to move messages".into(),
            ));
        }
        let Some(target) = store.mailbox(account, &name).await? else {
            return Ok(Done::No(format!(
                "[TRYCREATE] Mailbox {name:?} does not exist: CREATE it first"
            )));
        };
        let indexes = match selected.resolve(set, uid) {
            Ok(indexes) => indexes,
            Err(done) => return Ok(done),
        };
        let uids: Vec<Uid> = indexes
            .iter()
            .map(|i| selected.messages[*i].uid)
            .filter(|u| !selected.gone.contains(u))
            .collect();
        if uids.is_empty() {
            return Ok(Done::Ok(format!("{verb} completed: no messages")));
        }
        let result = if is_move {
            store
                .move_messages(selected.mailbox.id, &uids, target.id)
                .await?
        } else {
            store
                .copy_messages(selected.mailbox.id, &uids, target.id)
                .await?
        };
        if result.mapping.is_empty() {
            return Ok(Done::Ok(format!("{verb} completed: no messages")));
        }
        let from: Vec<u32> = result.mapping.iter().map(|(s, _)| s.0).collect();
        let to: Vec<u32> = result.mapping.iter().map(|(_, d)| d.0).collect();
        let code = format!(
            "COPYUID {} {} {}",
            result.uid_validity,
            in_order(&from),
            in_order(&to)
        );
        if is_move {
            // RFC 6851 §4.3: COPYUID in an untagged OK, then the EXPUNGEs
            // (sent by the update that follows every command).
            self.untagged(&format!("OK [{code}] Moved"));
            return Ok(Done::Ok(format!("{verb} completed")));
        }
        Ok(Done::Ok(format!("[{code}] {verb} completed")))
    }
}
