//! COPY and MOVE (RFC 9051 §6.4.7-6.4.8, RFC 6851), with COPYUID (RFC 4315).

use crate::sequence::{SequenceSet, in_order};
use crate::session::{Done, Session};
use pillarbox_store::{Result, Uid};

impl Session<'_> {
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
