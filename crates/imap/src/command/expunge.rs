//! EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, §6.4.9).

use crate::command::select::deleted_uids;
use crate::sequence::{SequenceSet, compact};
use crate::session::{Done, Session};
use pillarbox_store::{Result, Uid};
use std::collections::BTreeSet;

impl Session<'_> {
    /// EXPUNGE, or UID EXPUNGE with a set (RFC 4315).
    pub(crate) async fn expunge(&mut self, uids: Option<&SequenceSet>) -> Result<Done> {
        let store = self.server.store.clone();
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::Bad("No mailbox selected".into()));
        };
        if selected.read_only {
            return Ok(Done::No(
                "[READ-ONLY] Mailbox was opened with EXAMINE: SELECT it to expunge".into(),
            ));
        }
        let allowed: Option<BTreeSet<Uid>> = match uids {
            Some(set) => match selected.resolve(set, true) {
                Ok(indexes) => Some(
                    indexes
                        .into_iter()
                        .map(|i| selected.messages[i].uid)
                        .collect(),
                ),
                Err(done) => return Ok(done),
            },
            None => None,
        };
        let targets: Vec<Uid> = deleted_uids(&store, selected.mailbox.id)
            .await?
            .into_iter()
            .filter(|u| allowed.as_ref().is_none_or(|a| a.contains(u)))
            .collect();
        if !targets.is_empty() {
            store.expunge(selected.mailbox.id, &targets).await?;
        }
        tracing::debug!(uids = %compact(&targets.iter().map(|u| u.0).collect::<Vec<_>>()), "expunged");
        Ok(Done::Ok(format!(
            "{}EXPUNGE completed",
            if uids.is_some() { "UID " } else { "" }
        )))
    }
}
