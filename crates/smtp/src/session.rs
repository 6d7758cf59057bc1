//! One SMTP session (RFC 5321 §4.1.4 ordering; RFC 2920 pipelining): it
//! reads command lines, keeps the session's state and hands each command to
//! its verb in `verbs/`.

use crate::Server;
use crate::command::{Command, MAX_COMMAND_LINE, Reject, parse};
use crate::verbs;
use pillarbox_directory::Account;
use pillarbox_net::{Connection, ReadError};

pub(crate) struct Envelope {
    pub(crate) from: String,
    /// (address as given, accounts it resolves to)
    pub(crate) recipients: Vec<(String, Vec<Account>)>,
    /// RET and ENVID of MAIL (RFC 3461).
    pub(crate) dsn: crate::dsn::MailDsn,
    /// NOTIFY and ORCPT of each RCPT, in the order of `recipients`.
    pub(crate) recipient_dsn: Vec<crate::dsn::RcptDsn>,
}

pub(crate) struct Session {
    pub(crate) helo: Option<String>,
    pub(crate) esmtp: bool,
    pub(crate) authenticated: Option<Account>,
    pub(crate) envelope: Option<Envelope>,
    /// Chunks received so far with BDAT (RFC 3030), `None` outside a BDAT
    /// transfer; never more than `max_message_size` octets.
    pub(crate) chunks: Option<Vec<u8>>,
    /// The chunks' share of the server-wide memory budget, held until the
    /// message is stored or dropped.
    pub(crate) chunks_budget: Option<pillarbox_net::Reservation>,
    /// True on the submission listeners (587, 465): AUTH is offered and required.
    pub(crate) submission: bool,
}

impl Session {
    pub(crate) fn new(submission: bool) -> Session {
        Session {
            helo: None,
            esmtp: false,
            authenticated: None,
            envelope: None,
            chunks: None,
            chunks_budget: None,
            submission,
        }
    }

    /// Ends the mail transaction with any BDAT chunks already received
    /// (RFC 5321 §4.1.1.5 RSET, §4.1.4 EHLO/HELO): an aborted transaction's
    /// chunks must never become part of the next message.
    pub(crate) fn reset_transaction(&mut self) {
        self.envelope = None;
        self.chunks = None;
        self.chunks_budget = None;
    }

    /// True once MAIL FROM and at least one RCPT TO were accepted.
    pub(crate) fn ready_for_data(&self) -> bool {
        self.envelope
            .as_ref()
            .is_some_and(|envelope| !envelope.recipients.is_empty())
    }
}

/// Queues a reply. A reply that refuses a bad command (RFC 5321 §4.2.2:
/// 500–504 syntax and sequence errors, 530 authentication required) or a
/// failed login (RFC 4954 §6: 535) counts against the session's `max_errors`.
pub(crate) fn reply(conn: &mut Connection, code: u16, enhanced: &str, text: &str) {
    conn.write(format!("{code} {enhanced} {text}\r\n").as_bytes());
    if matches!(code, 500..=504 | 530 | 535) {
        conn.record_error();
    }
}

/// The text of a 552 5.3.4 refusal for a message over `max_message_size`
/// (MAIL's SIZE, DATA and BDAT all say the same).
pub(crate) fn too_big_text(limit: u64) -> String {
    format!("message too big: the limit is {limit} octets")
}

/// Runs a session to its end.
pub async fn run(server: &Server, mut conn: Connection) {
    let submission = conn.listener().name != "smtp";
    let _ = conn
        .send(format!("220 {} ESMTP Pillarbox ready\r\n", server.hostname).as_bytes())
        .await;
    let mut session = Session::new(submission);
    loop {
        let line = match conn.read_line(MAX_COMMAND_LINE).await {
            Ok(line) => line,
            Err(ReadError::TooLong(_)) => {
                reply(
                    &mut conn,
                    500,
                    "5.5.6",
                    "line too long: commands are at most 1000 octets",
                );
                if too_many_errors(server, &mut conn).await {
                    break;
                }
                let _ = conn.flush().await;
                continue;
            }
            Err(ReadError::Timeout(_)) => {
                let _ = conn
                    .send(
                        format!(
                            "421 4.4.2 {} closing: no command for too long\r\n",
                            server.hostname
                        )
                        .as_bytes(),
                    )
                    .await;
                break;
            }
            Err(ReadError::Shutdown) => {
                let _ = conn
                    .send(
                        format!(
                            "421 4.3.2 {} shutting down, try again later\r\n",
                            server.hostname
                        )
                        .as_bytes(),
                    )
                    .await;
                break;
            }
            Err(_) => break,
        };
        let command = match parse(&line) {
            Ok(command) => command,
            Err(Reject(code, enhanced, text)) => {
                reply(&mut conn, code, enhanced, &text);
                if too_many_errors(server, &mut conn).await {
                    break;
                }
                let _ = flush_unless_pipelined(&mut conn).await;
                continue;
            }
        };
        let quit = matches!(command, Command::Quit);
        // Boxed: between commands the session holds only what reading needs.
        if Box::pin(step(server, &mut conn, &mut session, command))
            .await
            .is_err()
            || quit
        {
            break;
        }
        if too_many_errors(server, &mut conn).await
            || flush_unless_pipelined(&mut conn).await.is_err()
        {
            break;
        }
    }
    conn.close().await;
}

/// After `max_errors` bad commands the client gets a final 421 and the
/// connection closes (as Postfix's smtpd_hard_error_limit does): a client
/// that only sends garbage is not answered forever.
async fn too_many_errors(server: &Server, conn: &mut Connection) -> bool {
    if !conn.too_many_errors() {
        return false;
    }
    tracing::info!(peer = %conn.peer(), "SMTP client closed: too many errors");
    let _ = conn
        .send(format!("421 4.7.0 {} Error: too many errors\r\n", server.hostname).as_bytes())
        .await;
    true
}

/// RFC 2920 §3.2: answers to pipelined commands may wait until the client's
/// queued commands are read.
async fn flush_unless_pipelined(conn: &mut Connection) -> std::io::Result<()> {
    if conn.has_buffered_input() {
        Ok(())
    } else {
        conn.flush().await
    }
}

/// Runs one command. `Err` ends the session.
async fn step(
    server: &Server,
    conn: &mut Connection,
    session: &mut Session,
    command: Command,
) -> Result<(), ()> {
    match command {
        Command::Ehlo(name) => verbs::hello::ehlo(server, conn, session, name),
        Command::Helo(name) => verbs::hello::helo(server, conn, session, name),
        Command::StartTls => return verbs::starttls::starttls(conn, session).await,
        Command::Auth { mechanism, initial } => {
            let submission = session.submission;
            return crate::auth::auth(server, conn, session, &mechanism, initial, submission).await;
        }
        Command::Mail { from, params } => {
            verbs::mail::mail(server, conn, session, from, params).await
        }
        Command::Rcpt { to, params } => verbs::rcpt::rcpt(server, conn, session, to, params).await,
        Command::Data => return verbs::data::data(server, conn, session).await,
        Command::Bdat { size, last } => {
            return verbs::bdat::bdat(server, conn, session, size, last).await;
        }
        Command::Rset => verbs::rset::rset(conn, session),
        Command::Noop => verbs::noop::noop(conn),
        Command::Vrfy => verbs::noop::vrfy(conn),
        Command::Help => verbs::noop::help(conn),
        Command::Quit => verbs::quit::quit(server, conn).await,
    }
    Ok(())
}
