//! SELECT and EXAMINE (RFC 9051 §6.3.2-6.3.3), CLOSE and UNSELECT
//! (§6.4.1, RFC 3691).

use crate::encode;
use crate::objectid;
use crate::parse::QresyncParams;
use crate::selected::Selected;
use crate::session::{Done, Session};
use pillarbox_store::{ModSeq, Result, Store, SystemFlag, Uid, UidRange};

impl Session<'_> {
    pub(crate) async fn select(
        &mut self,
        raw: &[u8],
        read_only: bool,
        qresync: Option<&QresyncParams>,
    ) -> Result<Done> {
        // RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected.
        // RFC 7162 §3.2.11: a QRESYNC client is told where the old one's
        // responses end.
        if self.selected.take().is_some() && self.qresync {
            self.untagged("OK [CLOSED] Previous mailbox closed");
        }
        let account = self.account_id();
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        let Some(mailbox) = self.server.store.mailbox(account, &name).await? else {
            return Ok(Done::No(format!(
                "[NONEXISTENT] Mailbox {name:?} does not exist"
            )));
        };
        let selected = Selected::open(&self.server.store, mailbox, read_only).await?;
        self.untagged(&format!("{} EXISTS", selected.exists()));
        if !self.rev2 {
            self.untagged(&format!("{} RECENT", selected.recent_count()));
            if let Some(i) = selected
                .messages
                .iter()
                .position(|m| !m.flags.contains(SystemFlag::Seen))
            {
                self.untagged(&format!("OK [UNSEEN {}] First unseen message", i + 1));
            }
        }
        self.untagged(&format!(
            "OK [UIDVALIDITY {}] UIDs valid",
            selected.mailbox.uid_validity
        ));
        self.untagged(&format!(
            "OK [UIDNEXT {}] Predicted next UID",
            selected.mailbox.uid_next
        ));
        self.untagged(&format!(
            "OK [MAILBOXID ({})] Ok",
            objectid::mailbox_id(&selected.mailbox)
        ));
        // RFC 7162 §3.1.2.1: mod-sequences are kept for every mailbox.
        self.untagged(&format!("OK [HIGHESTMODSEQ {}] Highest", selected.modseq));
        let mut flags = Vec::new();
        selected.write_flags(&mut flags);
        self.conn.write(&flags);
        if self.rev2 {
            // RFC 9051 §6.3.2: the mailbox name as a LIST response.
            let mut line = b"* LIST () \"/\" ".to_vec();
            encode::mailbox(&mut line, &selected.mailbox.name, true);
            line.extend_from_slice(b"\r\n");
            self.conn.write(&line);
        }
        if let Some(params) = qresync
            && params.uid_validity == selected.mailbox.uid_validity.0
        {
            self.resync(&selected, params).await?;
        }
        let code = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        self.selected = Some(selected);
        Ok(Done::Ok(format!("[{code}] {verb} completed")))
    }

    /// RFC 7162 §3.2.5.2: what changed since the client's mod-sequence, in
    /// place of a full re-read: the UIDs expunged since (among the ones it
    /// knows, when it said), then the flags of every message changed since.
    async fn resync(&mut self, selected: &Selected, params: &QresyncParams) -> Result<()> {
        let store = &self.server.store;
        let since = ModSeq(params.modseq);
        let mut out = Vec::new();
        selected
            .vanished_earlier(store, since, params.known_uids.as_ref(), &mut out)
            .await?;
        for (index, m) in selected.messages.iter().enumerate() {
            if m.modseq <= since {
                continue;
            }
            out.extend_from_slice(
                format!("* {} FETCH (UID {} FLAGS ", index + 1, m.uid).as_bytes(),
            );
            encode::flags(&mut out, &m.flags, !self.rev2 && selected.is_recent(m.uid));
            out.extend_from_slice(format!(" MODSEQ ({}))\r\n", m.modseq).as_bytes());
        }
        self.conn.write(&out);
        Ok(())
    }

    /// CLOSE (`expunge` = true: silently remove `\Deleted` messages) or UNSELECT.
    pub(crate) async fn close(&mut self, expunge: bool) -> Result<Done> {
        let Some(selected) = self.selected.take() else {
            return Ok(Done::Bad("No mailbox selected".into()));
        };
        if expunge && !selected.read_only {
            let uids = deleted_uids(&self.server.store, selected.mailbox.id).await?;
            if !uids.is_empty() {
                self.server
                    .store
                    .expunge(selected.mailbox.id, &uids)
                    .await?;
            }
        }
        Ok(Done::Ok(format!(
            "{} completed",
            if expunge { "CLOSE" } else { "UNSELECT" }
        )))
    }
}

/// UIDs flagged `\Deleted` in the store now (not as last reported).
pub(crate) async fn deleted_uids(
    store: &Store,
    mailbox: pillarbox_store::MailboxId,
) -> Result<Vec<Uid>> {
    Ok(store
        .messages(mailbox, UidRange::all())
        .await?
        .into_iter()
        .filter(|m| m.flags.contains(SystemFlag::Deleted))
        .map(|m| m.uid)
        .collect())
}
