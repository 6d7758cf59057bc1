//! One SMTP session (RFC 5321 §4.1.4 ordering; RFC 2920 pipelining).

use crate::Server;
use crate::command::{Command, MAX_COMMAND_LINE, Reject, parse};
use crate::data::{DataError, read_data};
use pillarbox_directory::{Account, Recipient};
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
    /// Chunks received so far with BDAT (RFC 3030), `None` outside a BDAT transfer.
    chunks: Option<Vec<u8>>,
    /// A BDAT transfer that went over the size limit: later chunks are read and dropped.
    chunks_too_big: bool,
}

impl Session {
    fn new() -> Session {
        Session {
            helo: None,
            esmtp: false,
            authenticated: None,
            envelope: None,
            chunks: None,
            chunks_too_big: false,
        }
    }
}

pub(crate) fn reply(conn: &mut Connection, code: u16, enhanced: &str, text: &str) {
    conn.write(format!("{code} {enhanced} {text}\r\n").as_bytes());
}

/// Runs a session to its end.
pub async fn run(server: &Server, mut conn: Connection) {
    let submission = conn.listener().name != "smtp";
    let _ = conn
        .send(format!("220 {} ESMTP Pillarbox ready\r\n", server.hostname).as_bytes())
        .await;
    let mut session = Session::new();
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
                let _ = flush_unless_pipelined(&mut conn).await;
                continue;
            }
        };
        let quit = matches!(command, Command::Quit);
        // Boxed: between commands the session holds only what reading needs.
        if Box::pin(step(server, &mut conn, &mut session, command, submission))
            .await
            .is_err()
            || quit
        {
            break;
        }
        if flush_unless_pipelined(&mut conn).await.is_err() {
            break;
        }
    }
    conn.close().await;
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

/// `Err` ends the session.
async fn step(
    server: &Server,
    conn: &mut Connection,
    s: &mut Session,
    command: Command,
    submission: bool,
) -> Result<(), ()> {
    match command {
        Command::Ehlo(name) => {
            s.helo = Some(name);
            s.esmtp = true;
            s.envelope = None;
            let mut lines = vec![
                format!(
                    "{} greets {}",
                    server.hostname,
                    s.helo.as_deref().unwrap_or_default()
                ),
                "PIPELINING".into(),
                format!("SIZE {}", server.config.max_message_size),
                "8BITMIME".into(),
                "SMTPUTF8".into(),
                "ENHANCEDSTATUSCODES".into(),
                "CHUNKING".into(),
                "DSN".into(),
            ];
            if conn.can_start_tls() {
                lines.push("STARTTLS".into());
            }
            if submission && conn.plaintext_auth_allowed() && s.authenticated.is_none() {
                lines.push("AUTH PLAIN LOGIN".into());
            }
            lines.push("HELP".into());
            let last = lines.len() - 1;
            for (i, line) in lines.iter().enumerate() {
                conn.write(
                    format!("250{}{line}\r\n", if i == last { ' ' } else { '-' }).as_bytes(),
                );
            }
        }
        Command::Helo(name) => {
            s.helo = Some(name);
            s.esmtp = false;
            s.envelope = None;
            conn.write(format!("250 {}\r\n", server.hostname).as_bytes());
        }
        Command::StartTls => {
            if !conn.can_start_tls() {
                reply(conn, 503, "5.5.1", "TLS is already active");
            } else {
                if conn
                    .send(b"220 2.0.0 Ready to start TLS\r\n")
                    .await
                    .is_err()
                {
                    return Err(());
                }
                if conn.start_tls().await.is_err() {
                    return Err(());
                }
                // RFC 3207 §4.2: forget everything learned before TLS.
                *s = Session::new();
            }
        }
        Command::Auth { mechanism, initial } => {
            crate::auth::auth(server, conn, s, &mechanism, initial, submission).await?
        }
        Command::Mail { from, params } => {
            if s.helo.is_none() {
                reply(conn, 503, "5.5.1", "send EHLO first");
            } else if s.envelope.is_some() {
                reply(
                    conn,
                    503,
                    "5.5.1",
                    "a transaction is already open: send RSET first",
                );
            } else if submission && s.authenticated.is_none() {
                reply(conn, 530, "5.7.0", "authentication required: AUTH first");
            } else if let Some(bad) = params.iter().find(|(k, v)| {
                k == "SIZE"
                    && !v
                        .as_deref()
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }) {
                reply(
                    conn,
                    501,
                    "5.5.4",
                    &format!("{}: SIZE takes a number of octets", bad.0),
                );
            } else if let Some(size) = params
                .iter()
                .find(|(k, _)| k == "SIZE")
                .and_then(|(_, v)| v.as_deref())
                && size
                    .parse::<u64>()
                    .map(|n| n > server.config.max_message_size)
                    .unwrap_or(true)
            {
                reply(
                    conn,
                    552,
                    "5.3.4",
                    &format!(
                        "message too big: the limit is {} octets",
                        server.config.max_message_size
                    ),
                );
            } else {
                let dsn = match crate::dsn::mail_params(&params) {
                    Ok(dsn) => dsn,
                    Err(error) => {
                        reply(conn, 501, "5.5.4", &error);
                        return Ok(());
                    }
                };
                if let Some(account) = &s.authenticated {
                    let own = server
                        .directory
                        .addresses_of(account.id)
                        .await
                        .unwrap_or_default();
                    if !own.iter().any(|a| a.eq_ignore_ascii_case(&from)) {
                        reply(
                            conn,
                            553,
                            "5.7.1",
                            &format!("{} may not send as <{from}>", account.address),
                        );
                        return Ok(());
                    }
                }
                s.envelope = Some(Envelope {
                    from,
                    recipients: Vec::new(),
                    dsn,
                    recipient_dsn: Vec::new(),
                });
                reply(conn, 250, "2.1.0", "sender ok");
            }
        }
        Command::Rcpt { to, params } => {
            let Some(envelope) = s.envelope.as_mut() else {
                reply(conn, 503, "5.5.1", "send MAIL FROM first");
                return Ok(());
            };
            let dsn = match crate::dsn::rcpt_params(&params) {
                Ok(dsn) => dsn,
                Err(error) => {
                    reply(conn, 501, "5.5.4", &error);
                    return Ok(());
                }
            };
            if envelope.recipients.len() >= server.config.max_recipients {
                reply(
                    conn,
                    452,
                    "4.5.3",
                    &format!(
                        "too many recipients: at most {} per message",
                        server.config.max_recipients
                    ),
                );
                return Ok(());
            }
            match server.directory.resolve_recipient(&to).await {
                Ok(Recipient::Local(accounts)) => {
                    for account in &accounts {
                        let used = server.store.quota_used(account.id).await.unwrap_or(0);
                        if account.quota_bytes.is_some_and(|limit| used >= limit) {
                            reply(
                                conn,
                                452,
                                "4.2.2",
                                &format!("<{to}>: mailbox full, try again later"),
                            );
                            return Ok(());
                        }
                    }
                    envelope.recipients.push((to, accounts));
                    envelope.recipient_dsn.push(dsn);
                    reply(conn, 250, "2.1.5", "recipient ok");
                }
                Ok(Recipient::UnknownLocal) => {
                    reply(conn, 550, "5.1.1", &format!("<{to}>: no such user here"))
                }
                Ok(Recipient::NotLocal) if submission => {
                    // Authenticated submission: remote recipients go to the outbound queue.
                    envelope.recipients.push((to, Vec::new()));
                    envelope.recipient_dsn.push(dsn);
                    reply(conn, 250, "2.1.5", "recipient ok, will be relayed");
                }
                Ok(Recipient::NotLocal) => {
                    reply(conn, 550, "5.7.1", &format!("<{to}>: relay not permitted"))
                }
                Err(_) => reply(
                    conn,
                    501,
                    "5.1.3",
                    &format!("<{to}>: bad recipient address syntax"),
                ),
            }
        }
        Command::Data if s.chunks.is_some() => {
            reply(
                conn,
                503,
                "5.5.1",
                "DATA cannot follow BDAT in one transaction",
            );
        }
        Command::Data => {
            let ready = s
                .envelope
                .as_ref()
                .is_some_and(|e| !e.recipients.is_empty());
            if !ready {
                reply(conn, 503, "5.5.1", "send MAIL FROM and RCPT TO first");
                return Ok(());
            }
            if conn
                .send(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n")
                .await
                .is_err()
            {
                return Err(());
            }
            let envelope = s.envelope.take().ok_or(())?;
            match read_data(conn, server.config.max_message_size).await {
                Ok(raw) => crate::delivery::deliver(server, conn, s, envelope, raw).await,
                Err(DataError::TooBig) => reply(
                    conn,
                    552,
                    "5.3.4",
                    &format!(
                        "message too big: the limit is {} octets",
                        server.config.max_message_size
                    ),
                ),
                Err(DataError::Read(ReadError::Timeout(_))) => {
                    let _ = conn
                        .send(b"421 4.4.2 closing: no data for too long, nothing was delivered\r\n")
                        .await;
                    return Err(());
                }
                // Dropped mid-DATA: nothing is delivered.
                Err(DataError::Read(_)) => return Err(()),
            }
        }
        Command::Bdat { size, last } => {
            // RFC 3030 §2: the chunk is read even when the command is refused.
            let chunk = match read_chunk(conn, size).await {
                Ok(chunk) => chunk,
                Err(_) => return Err(()),
            };
            let ready = s
                .envelope
                .as_ref()
                .is_some_and(|e| !e.recipients.is_empty());
            if !ready {
                reply(conn, 503, "5.5.1", "send MAIL FROM and RCPT TO first");
                return Ok(());
            }
            let buffer = s.chunks.get_or_insert_with(Vec::new);
            if !s.chunks_too_big {
                if (buffer.len() as u64).saturating_add(size) > server.config.max_message_size {
                    s.chunks_too_big = true;
                    buffer.clear();
                } else if let Some(chunk) = &chunk {
                    buffer.extend_from_slice(chunk);
                }
            }
            if !last {
                reply(conn, 250, "2.0.0", &format!("{size} octets received"));
                return Ok(());
            }
            let raw = s.chunks.take().unwrap_or_default();
            let too_big = std::mem::take(&mut s.chunks_too_big);
            let envelope = s.envelope.take().ok_or(())?;
            if too_big {
                reply(
                    conn,
                    552,
                    "5.3.4",
                    &format!(
                        "message too big: the limit is {} octets",
                        server.config.max_message_size
                    ),
                );
            } else {
                crate::delivery::deliver(server, conn, s, envelope, raw).await;
            }
        }
        Command::Rset => {
            s.envelope = None;
            s.chunks = None;
            s.chunks_too_big = false;
            reply(conn, 250, "2.0.0", "reset");
        }
        Command::Noop => reply(conn, 250, "2.0.0", "ok"),
        Command::Vrfy => reply(
            conn,
            252,
            "2.5.0",
            "cannot verify the user, but will accept mail and attempt delivery",
        ),
        Command::Help => reply(
            conn,
            214,
            "2.0.0",
            "commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
        ),
        Command::Quit => {
            let _ = conn
                .send(format!("221 2.0.0 {} closing connection\r\n", server.hostname).as_bytes())
                .await;
        }
    }
    Ok(())
}

/// Reads a BDAT chunk of `size` octets in pieces; `None` when it is larger
/// than any message could be (it is read and dropped).
async fn read_chunk(conn: &mut Connection, size: u64) -> Result<Option<Vec<u8>>, ReadError> {
    const PIECE: u64 = 1 << 20;
    let mut chunk = Vec::new();
    let mut left = size;
    let keep = size <= 1 << 30;
    while left > 0 {
        let piece = conn.read_exact(left.min(PIECE) as usize).await?;
        left -= piece.len() as u64;
        if keep {
            chunk.extend_from_slice(&piece);
        }
    }
    Ok(keep.then_some(chunk))
}
