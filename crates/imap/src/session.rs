//! One IMAP session: the command loop, states (RFC 9051 §3), capabilities,
//! dispatch to the commands (one file each under `command/`), and the
//! mapping of store errors to response codes.

use crate::Server;
use crate::framing::{self, Frame};
use crate::mutf7;
use crate::parse::{Command, Request, parse_request};
use crate::selected::Selected;
use pillarbox_directory::Account;
use pillarbox_net::{Connection, ReadError};
use pillarbox_store::StoreError;

/// How a command ended: the tagged status and its text (which may start
/// with a response code), or nothing more to send.
pub(crate) enum Done {
    Ok(String),
    No(String),
    Bad(String),
    /// The command wrote its own tagged answer (STARTTLS).
    Sent,
    /// LOGOUT: `* BYE` and the tagged OK, then the session ends.
    Logout,
    /// The session ends with nothing more to send (timeout, broken connection).
    Close,
}

pub(crate) struct Session<'a> {
    pub server: &'a Server,
    pub conn: Connection,
    pub account: Option<Account>,
    /// `ENABLE IMAP4rev2` was given: RFC 9051 behaviour.
    pub rev2: bool,
    /// CONDSTORE is enabled (RFC 7162 §3.1): by ENABLE, SELECT (CONDSTORE)
    /// or the first command using a mod-sequence; from then on every FETCH
    /// response that carries FLAGS carries MODSEQ too.
    pub condstore: bool,
    /// `ENABLE QRESYNC` (RFC 7162 §3.2.3): expunges are reported as
    /// `VANISHED`, and SELECT takes the QRESYNC parameter.
    pub qresync: bool,
    /// `ENABLE UTF8=ACCEPT` (RFC 6855): mailbox names in UTF-8, APPEND's
    /// UTF8 data item accepted, SEARCH without a CHARSET.
    pub utf8_accept: bool,
    pub selected: Option<Selected>,
}

/// Runs a session to its end.
pub async fn run(server: &Server, conn: Connection) {
    let mut session = Session {
        server,
        conn,
        account: None,
        rev2: false,
        condstore: false,
        qresync: false,
        utf8_accept: false,
        selected: None,
    };
    let greeting = format!(
        "* OK [CAPABILITY {}] {} Pillarbox IMAP ready\r\n",
        session.capabilities(),
        server.hostname
    );
    if session.conn.send(greeting.as_bytes()).await.is_err() {
        return;
    }
    loop {
        let limits = framing::Limits {
            authenticated: session.account.is_some(),
            append_limit: server.config.append_limit,
        };
        let frame = match framing::read_command(&mut session.conn, limits).await {
            Ok(frame) => frame,
            Err(ReadError::Timeout(_)) => {
                session
                    .conn
                    .write(b"* BYE Autologout: idle for too long, log in again\r\n");
                break;
            }
            Err(ReadError::Shutdown) => {
                session
                    .conn
                    .write(b"* BYE [UNAVAILABLE] Server shutting down, reconnect shortly\r\n");
                break;
            }
            Err(_) => break,
        };
        let flow = match frame {
            // Boxed: the session waits for the next command holding only
            // what reading needs.
            Frame::Command(bytes, reservation) => {
                let flow = Box::pin(session.command(&bytes)).await;
                // The command's literals are stored or dropped by now.
                drop(reservation);
                flow
            }
            Frame::LineTooLong(limit) => {
                session.conn.write(
                    format!("* BAD [TOOBIG] Command line longer than {limit} octets\r\n")
                        .as_bytes(),
                );
                session.count_error()
            }
            Frame::Refused { tag, answer, close } => {
                let tag = tag.unwrap_or_else(|| "*".into());
                let busy = answer.contains("[UNAVAILABLE]");
                session.conn.write(format!("{tag} {answer}\r\n").as_bytes());
                if close {
                    // The rest of the command is still coming and will not be read.
                    session
                        .conn
                        .write(b"* BYE [TOOBIG] Closing: the command is too large to read\r\n");
                }
                // A busy server is not the client's error.
                !close && (busy || session.count_error())
            }
        };
        if !flow {
            break;
        }
        if !session.conn.has_buffered_input() && session.conn.flush().await.is_err() {
            break;
        }
    }
    let _ = session.conn.flush().await;
    session.conn.close().await;
}

impl Session<'_> {
    /// Runs one command; false when the session ends.
    async fn command(&mut self, bytes: &[u8]) -> bool {
        let request = match parse_request(bytes) {
            Ok(request) => request,
            Err((tag, error)) => {
                let tag = tag.unwrap_or_else(|| "*".into());
                self.conn
                    .write(format!("{tag} BAD {}\r\n", error.0).as_bytes());
                return self.count_error();
            }
        };
        let Request { tag, command } = request;
        tracing::debug!(command = command.name(), "command");
        let done = match command {
            // IDLE may last for hours: it runs in a future of its own size,
            // the others in a boxed one sized for the largest command.
            Command::Idle if self.account.is_some() => self
                .idle()
                .await
                .unwrap_or_else(|error| store_failure(&error)),
            _ => Box::pin(self.execute(&tag, &command)).await,
        };
        if self.selected.is_some() && sends_updates(&command) {
            let allow_expunge = !matches!(
                command,
                Command::Fetch { uid: false, .. }
                    | Command::Store { uid: false, .. }
                    | Command::Search { uid: false, .. }
            );
            Box::pin(self.send_updates(allow_expunge)).await;
        }
        // A command in the wrong state, unknown or malformed, and a failed
        // login count towards the session's error limit.
        let bad = matches!(&done, Done::Bad(_))
            || matches!(&done, Done::No(text) if text.starts_with("[AUTHENTICATIONFAILED]"));
        let line = match done {
            Done::Ok(text) => format!("{tag} OK {text}\r\n"),
            Done::No(text) => format!("{tag} NO {text}\r\n"),
            Done::Bad(text) => format!("{tag} BAD {text}\r\n"),
            Done::Sent => return true,
            Done::Close => return false,
            Done::Logout => {
                self.conn.write(
                    format!(
                        "* BYE {} logging out\r\n{tag} OK LOGOUT completed\r\n",
                        self.server.hostname
                    )
                    .as_bytes(),
                );
                return false;
            }
        };
        self.conn.write(line.as_bytes());
        !bad || self.count_error()
    }

    /// Counts a bad command; at the listener's `max_errors` the session
    /// says goodbye (as Postfix drops a client after 20 errors) and false
    /// is returned: the session ends.
    pub(crate) fn count_error(&mut self) -> bool {
        if self.conn.record_error() {
            self.conn.write(b"* BYE Too many errors\r\n");
            return false;
        }
        true
    }

    /// Untagged EXISTS / EXPUNGE / FETCH for changes by others.
    pub(crate) async fn send_updates(&mut self, allow_expunge: bool) {
        let Some(selected) = self.selected.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        if let Err(error) = selected
            .refresh(
                &self.server.store,
                allow_expunge,
                self.rev2,
                self.condstore,
                self.qresync,
                &mut out,
            )
            .await
        {
            tracing::warn!(%error, "cannot read mailbox changes");
        }
        self.conn.write(&out);
    }

    /// Each command's future is boxed on its own: this one stays small, so
    /// a command waiting (a login storm queues thousands of LOGINs for
    /// password checks) holds only its own state, not the largest command's.
    async fn execute(&mut self, tag: &str, command: &Command) -> Done {
        let authenticated = self.account.is_some();
        let selected = self.selected.is_some();
        match command {
            Command::Capability => {
                self.untagged(&format!("CAPABILITY {}", self.capabilities()));
                return Done::Ok("CAPABILITY completed".into());
            }
            Command::Noop | Command::Check => {
                return Done::Ok(format!("{} completed", command.name()));
            }
            Command::Logout => return Done::Logout,
            Command::Id(params) => {
                if !params.is_empty() {
                    tracing::debug!(?params, "client ID");
                }
                self.untagged(concat!(
                    "ID (\"name\" \"Pillarbox\" \"version\" \"",
                    env!("CARGO_PKG_VERSION"),
                    "\")"
                ));
                return Done::Ok("ID completed".into());
            }
            _ => {}
        }
        match command {
            Command::StartTls | Command::Login { .. } | Command::Authenticate { .. } => {
                if authenticated {
                    return Done::Bad("Already logged in".into());
                }
                return match command {
                    Command::StartTls => Box::pin(self.starttls(tag)).await,
                    Command::Login { user, password } => {
                        if !self.conn.plaintext_auth_allowed() {
                            return Done::No("[PRIVACYREQUIRED] LOGIN is disabled until TLS is active: send STARTTLS first or use port 993".into());
                        }
                        Box::pin(self.login(user, password)).await
                    }
                    Command::Authenticate { mechanism, initial } => {
                        Box::pin(self.authenticate(mechanism, initial.as_deref())).await
                    }
                    _ => Done::Bad("unreachable".into()),
                };
            }
            _ => {}
        }
        if !authenticated {
            return Done::Bad(format!(
                "{} needs a login first: use LOGIN or AUTHENTICATE PLAIN",
                command.name()
            ));
        }
        let result = match command {
            Command::Unauthenticate => Ok(self.unauthenticate()),
            Command::Compress(mechanism) => Ok(Box::pin(self.compress(tag, mechanism)).await),
            Command::Enable(caps) => {
                if selected {
                    return Done::Bad("ENABLE must come before SELECT or EXAMINE".into());
                }
                let mut enabled = Vec::new();
                for cap in caps {
                    if cap == "IMAP4REV2" && !self.rev2 {
                        self.rev2 = true;
                        enabled.push("IMAP4rev2");
                    }
                    if cap == "CONDSTORE" && !self.condstore {
                        self.condstore = true;
                        enabled.push("CONDSTORE");
                    }
                    if cap == "UTF8=ACCEPT" && !self.utf8_accept {
                        self.utf8_accept = true;
                        enabled.push("UTF8=ACCEPT");
                    }
                    // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                    if cap == "QRESYNC" && !self.qresync {
                        self.qresync = true;
                        self.condstore = true;
                        enabled.push("QRESYNC");
                    }
                }
                self.untagged(format!("ENABLED {}", enabled.join(" ")).trim_end());
                Ok(Done::Ok("ENABLE completed".into()))
            }
            Command::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => {
                if qresync.is_some() && !self.qresync {
                    return Done::Bad(
                        "SELECT (QRESYNC …) needs ENABLE QRESYNC first (RFC 7162 §3.2.5)".into(),
                    );
                }
                self.condstore |= *condstore;
                Box::pin(self.select(mailbox, *read_only, qresync.as_ref())).await
            }
            Command::Create {
                mailbox,
                special_use,
            } => Box::pin(self.create(mailbox, special_use)).await,
            Command::GetMetadata {
                mailbox,
                entries,
                max_size,
                depth,
            } => Box::pin(self.get_metadata(mailbox, entries, *max_size, *depth)).await,
            Command::SetMetadata { mailbox, entries } => {
                Box::pin(self.set_metadata(mailbox, entries)).await
            }
            Command::GetQuota(root) => Box::pin(self.get_quota(root)).await,
            Command::GetQuotaRoot(mailbox) => Box::pin(self.get_quota_root(mailbox)).await,
            Command::SetQuota => Ok(Done::No(
                "[NOPERM] Quotas are set by the server's administrator".into(),
            )),
            Command::Delete(name) => Box::pin(self.delete(name)).await,
            Command::Rename { from, to } => Box::pin(self.rename(from, to)).await,
            Command::Subscribe(name) => Box::pin(self.subscribe(name, true)).await,
            Command::Unsubscribe(name) => Box::pin(self.subscribe(name, false)).await,
            Command::List {
                reference,
                patterns,
                select,
                ret,
                extended,
            } => Box::pin(self.list(reference, patterns, select, ret, *extended)).await,
            Command::Lsub { reference, pattern } => Box::pin(self.lsub(reference, pattern)).await,
            Command::Namespace => {
                self.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
                Ok(Done::Ok("NAMESPACE completed".into()))
            }
            Command::Status { mailbox, items } => Box::pin(self.status(mailbox, items)).await,
            Command::Append { mailbox, messages } => Box::pin(self.append(mailbox, messages)).await,
            Command::Idle => Box::pin(self.idle()).await,
            _ if !selected => {
                return Done::Bad(format!(
                    "{} needs a selected mailbox: use SELECT or EXAMINE first",
                    command.name()
                ));
            }
            Command::Close => Box::pin(self.close(true)).await,
            Command::Unselect => Box::pin(self.close(false)).await,
            Command::Expunge { uids } => Box::pin(self.expunge(uids.as_ref())).await,
            Command::Search {
                uid,
                ret,
                charset,
                key,
            } => Box::pin(self.search(tag, *uid, ret.as_deref(), charset.as_deref(), key)).await,
            Command::Sort {
                uid,
                ret,
                criteria,
                charset,
                key,
            } => Box::pin(self.sort(tag, *uid, ret.as_deref(), criteria, charset, key)).await,
            Command::Thread {
                uid,
                algorithm,
                charset,
                key,
            } => Box::pin(self.thread(*uid, algorithm, charset, key)).await,
            Command::Fetch {
                uid,
                set,
                attrs,
                changed_since,
                vanished,
            } => {
                if *vanished && !self.qresync {
                    return Done::Bad(
                        "the VANISHED modifier needs ENABLE QRESYNC first (RFC 7162 §3.2.6)".into(),
                    );
                }
                Box::pin(self.fetch(*uid, set, attrs, *changed_since, *vanished)).await
            }
            Command::Store {
                uid,
                set,
                op,
                silent,
                flags,
                unchanged_since,
            } => Box::pin(self.store(*uid, set, *op, *silent, flags, *unchanged_since)).await,
            Command::Copy { uid, set, mailbox } => {
                Box::pin(self.copy(*uid, set, mailbox, false)).await
            }
            Command::Move { uid, set, mailbox } => {
                Box::pin(self.copy(*uid, set, mailbox, true)).await
            }
            _ => Ok(Done::Bad("command not valid here".into())),
        };
        result.unwrap_or_else(|error| store_failure(&error))
    }

    pub(crate) fn account_id(&self) -> pillarbox_store::AccountId {
        self.account.as_ref().map(|a| a.id).unwrap_or_default()
    }

    pub(crate) fn untagged(&mut self, text: &str) {
        self.conn.write(format!("* {text}\r\n").as_bytes());
    }

    pub(crate) fn capabilities(&self) -> String {
        let mut caps = String::from(
            "IMAP4rev1 IMAP4rev2 LITERAL+ ENABLE IDLE NAMESPACE ID UNSELECT UIDPLUS MOVE CHILDREN \
             LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH SEARCHRES STATUS=SIZE BINARY SASL-IR \
             CONDSTORE QRESYNC WITHIN CREATE-SPECIAL-USE QUOTA QUOTA=RES-STORAGE PREVIEW SAVEDATE \
             UNAUTHENTICATE SORT SORT=DISPLAY ESORT MULTIAPPEND UTF8=ACCEPT OBJECTID \
             METADATA METADATA-SERVER CATENATE \
             THREAD=ORDEREDSUBJECT THREAD=REFERENCES",
        );
        if self.account.is_some() && !self.conn.is_compressed() {
            caps.push_str(" COMPRESS=DEFLATE");
        }
        caps.push_str(&format!(" APPENDLIMIT={}", self.server.config.append_limit));
        if self.account.is_none() {
            if self.conn.can_start_tls() {
                caps.push_str(" STARTTLS");
            }
            if self.conn.plaintext_auth_allowed() {
                caps.push_str(" AUTH=PLAIN");
            } else {
                caps.push_str(" LOGINDISABLED");
            }
        }
        caps
    }

    /// Mailbox names travel in UTF-8 (IMAP4rev2, or UTF8=ACCEPT enabled),
    /// not in modified UTF-7.
    pub(crate) fn utf8_names(&self) -> bool {
        self.rev2 || self.utf8_accept
    }

    /// The client's spelling of a mailbox name as the store's UTF-8 name.
    ///
    /// A name that cannot be decoded is well-formed IMAP all the same: it
    /// names no mailbox, so the answer is NO (LIST: no match), never BAD.
    pub(crate) fn mailbox_name(&self, raw: &[u8]) -> Result<String, Done> {
        let text = std::str::from_utf8(raw).map_err(|_| {
            Done::No("[CANNOT] mailbox name is not valid UTF-8, so no mailbox has it".into())
        })?;
        if self.utf8_names() || !text.is_ascii() {
            // IMAP4rev2 names are UTF-8; a rev1 client sending raw UTF-8 is
            // taken at its word rather than refused.
            return Ok(text.to_string());
        }
        mutf7::decode(text).ok_or_else(|| {
            Done::No(format!(
                "[CANNOT] mailbox name {text:?} is not valid modified UTF-7 (RFC 3501 §5.1.3), so no mailbox has it"
            ))
        })
    }
}

/// Commands after which changes by others are reported (RFC 9051 §5.2–5.3).
fn sends_updates(command: &Command) -> bool {
    !matches!(
        command,
        Command::Select { .. }
            | Command::Close
            | Command::Unselect
            | Command::Logout
            | Command::Idle
            | Command::StartTls
            | Command::Compress(_)
    )
}

/// The answer to a store error a client can meet.
pub(crate) fn store_failure(error: &StoreError) -> Done {
    match error {
        StoreError::MailboxNotFound(name) => {
            Done::No(format!("[NONEXISTENT] Mailbox {name:?} does not exist"))
        }
        StoreError::MailboxIdNotFound(_) => {
            Done::No("[NONEXISTENT] The mailbox was deleted by another session".into())
        }
        StoreError::MailboxExists(name) => {
            Done::No(format!("[ALREADYEXISTS] Mailbox {name:?} already exists"))
        }
        StoreError::InvalidMailboxName { name, reason } => Done::No(format!(
            "[CANNOT] Mailbox name {name:?} is not allowed: {reason}"
        )),
        StoreError::MessageExpunged(_) => Done::No(
            "[EXPUNGEISSUED] A message was expunged by another session: NOOP shows which".into(),
        ),
        StoreError::MailboxLimit { .. } => Done::No(format!("[LIMIT] {error}")),
        StoreError::CannotDeleteInbox => Done::No("[CANNOT] The INBOX cannot be deleted".into()),
        StoreError::OverQuota { used, limit, .. } => Done::No(format!(
            "[OVERQUOTA] Mailbox is full ({used} of {limit} octets used): delete some messages first"
        )),
        error if error.is_temporary() => {
            let reference = error_reference();
            tracing::warn!(%error, %reference, "store error");
            Done::No(format!(
                "[UNAVAILABLE] Temporary server error, try again (reference {reference})"
            ))
        }
        error => {
            // Clients never see internal error text (it names files, tables
            // and ids): the log has it under a reference the client is given.
            let reference = error_reference();
            tracing::error!(%error, %reference, "store error");
            Done::No(format!("[SERVERBUG] Internal error, reference {reference}"))
        }
    }
}

pub(crate) use pillarbox_net::error_reference;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_are_answered_without_their_text() {
        let error = StoreError::BlobMissing("blobs/ab/cdef0123 of message 42".into());
        let Done::No(text) = store_failure(&error) else {
            panic!("a store error is answered NO");
        };
        assert!(
            text.starts_with("[SERVERBUG] Internal error, reference "),
            "{text}"
        );
        // The reference is random hex: it may hold "42" by chance.
        let (words, reference) = text.rsplit_once(' ').unwrap_or_default();
        assert!(!words.contains("blob") && !words.contains("42"), "{text}");
        assert_eq!(reference.len(), 8, "{text}");
        assert!(reference.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
        let error = StoreError::Blob {
            path: "/var/lib/pillarbox/blobs/ab".into(),
            source: std::io::Error::other("disk on fire"),
        };
        let Done::No(text) = store_failure(&error) else {
            panic!("a store error is answered NO");
        };
        assert!(
            text.starts_with("[UNAVAILABLE]") && !text.contains("/var"),
            "{text}"
        );
    }
}
