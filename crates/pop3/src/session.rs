//! One POP3 session: AUTHORIZATION → TRANSACTION → UPDATE (RFC 1939 §3).

use crate::Server;
use crate::maildrop::Maildrop;
use crate::parse::{Command, MAX_COMMAND_LINE, parse};
use base64::Engine;
use pillarbox_directory::{AuthError, Protocol};
use pillarbox_net::{Connection, ReadError};

/// Longest line read at all; AUTH continuation lines may pass the 255-octet
/// command limit (RFC 5034 §4), everything else may not.
const MAX_LINE: usize = 2048;

enum State {
    Authorization {
        user: Option<String>,
    },
    /// The lock is held for as long as the session is in TRANSACTION.
    Transaction {
        maildrop: Box<Maildrop>,
        _lock: pillarbox_store::AccountLock,
    },
}

/// Runs a session to its end.
pub async fn run(server: &Server, mut conn: Connection) {
    let _ = conn
        .send(format!("+OK {} POP3 server ready\r\n", server.hostname).as_bytes())
        .await;
    let mut state = State::Authorization { user: None };
    loop {
        let line = match conn.read_line(MAX_LINE).await {
            Ok(line) => line,
            Err(ReadError::TooLong(_)) => {
                conn.write(b"-ERR line too long: commands are at most 255 octets\r\n");
                if too_many_errors(&mut conn) {
                    break;
                }
                let _ = conn.flush().await;
                continue;
            }
            Err(ReadError::Timeout(_)) => {
                // RFC 1939 §3: an autologout timer closes without entering UPDATE.
                let _ = conn
                    .send(b"-ERR autologout: idle for too long, no messages were deleted\r\n")
                    .await;
                break;
            }
            Err(ReadError::Shutdown) => {
                let _ = conn
                    .send(b"-ERR [SYS/TEMP] server shutting down, no messages were deleted\r\n")
                    .await;
                break;
            }
            Err(_) => break,
        };
        let is_auth = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"AUTH");
        if line.len() > MAX_COMMAND_LINE && !is_auth {
            conn.write(b"-ERR line too long: commands are at most 255 octets\r\n");
            if too_many_errors(&mut conn) {
                break;
            }
            let _ = flush_unless_pipelined(&mut conn).await;
            continue;
        }
        let command = match parse(&line) {
            Ok(command) => command,
            Err(error) => {
                conn.write(format!("-ERR {}\r\n", error.0).as_bytes());
                if too_many_errors(&mut conn) {
                    break;
                }
                let _ = flush_unless_pipelined(&mut conn).await;
                continue;
            }
        };
        // Boxed: between commands the session holds only what reading needs.
        match Box::pin(step(server, &mut conn, &mut state, command)).await {
            Flow::Continue => {}
            Flow::Error => {
                if too_many_errors(&mut conn) {
                    break;
                }
            }
            Flow::Close => break,
        }
        if flush_unless_pipelined(&mut conn).await.is_err() {
            break;
        }
    }
    let _ = conn.flush().await;
    conn.close().await;
}

/// RFC 2449 §6.6 (PIPELINING): answers may be sent together; flush when the
/// client has nothing more queued.
async fn flush_unless_pipelined(conn: &mut Connection) -> std::io::Result<()> {
    if conn.has_buffered_input() {
        Ok(())
    } else {
        conn.flush().await
    }
}

/// Counts a bad command (syntax error, unknown command, wrong state, line
/// too long, failed login); at the listener's `max_errors`, queues the final
/// answer: the session then ends, as Postfix ends one after 20 errors.
fn too_many_errors(conn: &mut Connection) -> bool {
    let over = conn.record_error();
    if over {
        conn.write(b"-ERR too many errors\r\n");
    }
    over
}

enum Flow {
    Continue,
    /// The command was refused as a bad command (counted towards `max_errors`).
    Error,
    Close,
}

fn capabilities(conn: &Connection, authorized: bool) -> String {
    let mut capa = String::from(
        "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n",
    );
    if !authorized && conn.plaintext_auth_allowed() {
        capa.push_str("USER\r\nSASL PLAIN\r\n");
    }
    if !authorized && conn.can_start_tls() {
        capa.push_str("STLS\r\n");
    }
    capa.push_str(concat!(
        "IMPLEMENTATION Pillarbox-",
        env!("CARGO_PKG_VERSION"),
        "\r\n.\r\n"
    ));
    capa
}

async fn step(server: &Server, conn: &mut Connection, state: &mut State, command: Command) -> Flow {
    let authorized = matches!(state, State::Transaction { .. });
    match (&mut *state, command) {
        (_, Command::Capa) => conn.write(capabilities(conn, authorized).as_bytes()),
        (State::Authorization { .. }, Command::Quit) => {
            conn.write(format!("+OK {} POP3 server signing off\r\n", server.hostname).as_bytes());
            return Flow::Close;
        }
        (State::Authorization { .. }, Command::Stls) => {
            if !conn.can_start_tls() {
                conn.write(b"-ERR TLS is already active\r\n");
            } else {
                let _ = conn.send(b"+OK begin TLS negotiation\r\n").await;
                if conn.start_tls().await.is_err() {
                    return Flow::Close;
                }
                *state = State::Authorization { user: None };
            }
        }
        (State::Authorization { user }, Command::User(name)) => {
            if !conn.plaintext_auth_allowed() {
                conn.write(
                    b"-ERR [AUTH] send STLS first: passwords are not accepted without TLS\r\n",
                );
            } else {
                *user = Some(name);
                conn.write(b"+OK send PASS\r\n");
            }
        }
        (State::Authorization { user }, Command::Pass(password)) => {
            let Some(name) = user.take() else {
                conn.write(b"-ERR send USER first\r\n");
                return Flow::Error;
            };
            if !conn.plaintext_auth_allowed() {
                conn.write(
                    b"-ERR [AUTH] send STLS first: passwords are not accepted without TLS\r\n",
                );
                return Flow::Continue;
            }
            return login(server, conn, state, &name, &password).await;
        }
        (State::Authorization { .. }, Command::Auth { mechanism, initial }) => {
            let Some(mechanism) = mechanism else {
                conn.write(b"+OK\r\nPLAIN\r\n.\r\n");
                return Flow::Continue;
            };
            if mechanism != "PLAIN" {
                conn.write(b"-ERR unsupported mechanism: use AUTH PLAIN\r\n");
                return Flow::Error;
            }
            if !conn.plaintext_auth_allowed() {
                conn.write(
                    b"-ERR [AUTH] send STLS first: passwords are not accepted without TLS\r\n",
                );
                return Flow::Continue;
            }
            let response = match initial {
                Some(initial) => initial,
                None => {
                    // RFC 5034 §4: an empty challenge, then the client's response.
                    if conn.send(b"+ \r\n").await.is_err() {
                        return Flow::Close;
                    }
                    match conn.read_line(MAX_LINE).await {
                        Ok(line) => String::from_utf8_lossy(&line).trim_end().to_string(),
                        Err(_) => return Flow::Close,
                    }
                }
            };
            if response == "*" {
                conn.write(b"-ERR authentication cancelled\r\n");
                return Flow::Continue;
            }
            let Some((login_name, password)) = decode_plain(&response) else {
                conn.write(
                    b"-ERR malformed AUTH PLAIN response: send base64 of \\0user\\0password\r\n",
                );
                return Flow::Error;
            };
            return login(server, conn, state, &login_name, &password).await;
        }
        (State::Authorization { .. }, _) => {
            conn.write(b"-ERR not logged in yet: use USER and PASS, or AUTH PLAIN\r\n");
            return Flow::Error;
        }
        (
            State::Transaction { .. },
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::Stls,
        ) => {
            conn.write(b"-ERR already logged in\r\n");
            return Flow::Error;
        }
        (State::Transaction { maildrop: drop, .. }, command) => {
            return transaction(server, conn, drop, command).await;
        }
    }
    Flow::Continue
}

fn decode_plain(response: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split('\0');
    let (_authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() {
        return None;
    }
    Some((authcid.to_string(), password.to_string()))
}

async fn login(
    server: &Server,
    conn: &mut Connection,
    state: &mut State,
    login: &str,
    password: &str,
) -> Flow {
    let ip = conn.peer().ip();
    // The shared throttle waits for this IP's turn and delays failures.
    let account = match server
        .directory
        .login(ip, login, password, Protocol::Pop3)
        .await
    {
        Ok(account) => account,
        Err(AuthError::InvalidCredentials) => {
            tracing::info!(login = ?login, "POP3 login failed");
            conn.write(b"-ERR [AUTH] invalid user name or password\r\n");
            return Flow::Error;
        }
        Err(AuthError::ProtocolDisabled(_)) => {
            conn.write(b"-ERR [AUTH] POP3 access is disabled for this account\r\n");
            return Flow::Continue;
        }
        Err(AuthError::Temporary(error)) => {
            temporary_failure(conn, &error, "account service unavailable");
            return Flow::Continue;
        }
    };
    tracing::Span::current().record("account", account.address.as_str());
    // From here on the idle timeout applies, and the connection no longer
    // counts among its IP's connections not logged in.
    conn.set_authenticated();
    // RFC 1939 §8: the maildrop is locked against other POP3 sessions, on
    // every node sharing the store; IMAP is not affected.
    let guard = match server.store.try_lock_account("pop3", account.id).await {
        Ok(Some(guard)) => guard,
        Ok(None) => {
            conn.write(b"-ERR [IN-USE] another POP3 session of this account is active; try again when it ends\r\n");
            return Flow::Continue;
        }
        Err(error) => {
            temporary_failure(conn, &error, "cannot lock the mailbox now");
            return Flow::Continue;
        }
    };
    match Maildrop::open(&server.store, account.id, account.pop3_policy).await {
        Ok(maildrop) => {
            let (count, size) = maildrop.stat();
            conn.write(
                format!("+OK maildrop locked and ready, {count} messages ({size} octets)\r\n")
                    .as_bytes(),
            );
            *state = State::Transaction {
                maildrop: Box::new(maildrop),
                _lock: guard,
            };
        }
        Err(error) => {
            temporary_failure(conn, &error, "cannot open the mailbox now");
        }
    }
    Flow::Continue
}

/// Writes a message (or its first lines) dot-stuffed, CRLF line endings,
/// ending with `.` (RFC 1939 §3).
/// Answers a server-side failure: the client gets what failed and a
/// reference, never the error's text; the log has both (RFC 3206 SYS/TEMP).
fn temporary_failure(conn: &mut Connection, error: &dyn std::fmt::Display, what: &str) {
    let reference = pillarbox_net::error_reference();
    tracing::warn!(%error, %reference, "{what}");
    conn.write(
        format!("-ERR [SYS/TEMP] {what}, try again shortly (reference {reference})\r\n").as_bytes(),
    );
}

fn write_multiline(conn: &mut Connection, bytes: &[u8], body_lines: Option<u32>) {
    let mut in_body = false;
    let mut body_left = body_lines;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let content = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(line);
        if in_body {
            match &mut body_left {
                Some(0) => break,
                Some(n) => *n -= 1,
                None => {}
            }
        }
        if content.first() == Some(&b'.') {
            conn.write(b".");
        }
        conn.write(content);
        conn.write(b"\r\n");
        if !in_body && content.is_empty() {
            in_body = true;
        }
    }
    conn.write(b".\r\n");
}

async fn transaction(
    server: &Server,
    conn: &mut Connection,
    drop: &mut Maildrop,
    command: Command,
) -> Flow {
    match command {
        Command::Stat => {
            let (count, size) = drop.stat();
            conn.write(format!("+OK {count} {size}\r\n").as_bytes());
        }
        Command::List(None) | Command::Uidl(None) => {
            let uidl = matches!(command, Command::Uidl(_));
            let (count, size) = drop.stat();
            conn.write(format!("+OK {count} messages ({size} octets)\r\n").as_bytes());
            let lines: Vec<String> = drop
                .live()
                .map(|(n, e)| {
                    if uidl {
                        format!("{n} {}\r\n", drop.unique_id(e))
                    } else {
                        format!("{n} {}\r\n", e.size)
                    }
                })
                .collect();
            for line in lines {
                conn.write(line.as_bytes());
            }
            conn.write(b".\r\n");
        }
        Command::List(Some(n)) => match drop.get(n) {
            Ok(e) => conn.write(format!("+OK {n} {}\r\n", e.size).as_bytes()),
            Err(why) => conn.write(format!("-ERR {why}\r\n").as_bytes()),
        },
        Command::Uidl(Some(n)) => match drop.get(n) {
            Ok(e) => conn.write(format!("+OK {n} {}\r\n", drop.unique_id(e)).as_bytes()),
            Err(why) => conn.write(format!("-ERR {why}\r\n").as_bytes()),
        },
        Command::Retr(n) | Command::Top(n, _) => {
            let entry = match drop.get(n) {
                Ok(e) => e.clone(),
                Err(why) => {
                    conn.write(format!("-ERR {why}\r\n").as_bytes());
                    return Flow::Continue;
                }
            };
            // The message may have been expunged by IMAP since login.
            let bytes = match server
                .store
                .message_bytes_at(drop.inbox.id, entry.uid)
                .await
            {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    conn.write(
                        format!(
                            "-ERR message {n} was deleted by another client since you logged in\r\n"
                        )
                        .as_bytes(),
                    );
                    return Flow::Continue;
                }
                Err(error) => {
                    temporary_failure(conn, &error, "cannot read the message now");
                    return Flow::Continue;
                }
            };
            match command {
                Command::Top(_, lines) => {
                    conn.write(b"+OK top of message follows\r\n");
                    write_multiline(conn, &bytes, Some(lines));
                }
                _ => {
                    conn.write(format!("+OK {} octets\r\n", entry.size).as_bytes());
                    write_multiline(conn, &bytes, None);
                    if let Err(error) = drop.downloaded(&server.store, n).await {
                        tracing::warn!(%error, "cannot record the download");
                    }
                }
            }
        }
        Command::Dele(n) => match drop.get(n) {
            Ok(_) => {
                drop.deleted[n as usize - 1] = true;
                conn.write(format!("+OK message {n} deleted\r\n").as_bytes());
            }
            Err(why) => conn.write(format!("-ERR {why}\r\n").as_bytes()),
        },
        Command::Rset => {
            drop.deleted.iter_mut().for_each(|d| *d = false);
            let (count, size) = drop.stat();
            conn.write(format!("+OK maildrop has {count} messages ({size} octets)\r\n").as_bytes());
        }
        Command::Quit => {
            // UPDATE state: only here do deletions happen.
            match drop.commit(&server.store).await {
                Ok(_) => {
                    let (left, _) = Maildrop::open(&server.store, drop.account, drop.policy)
                        .await
                        .map(|d| d.stat())
                        .unwrap_or((0, 0));
                    conn.write(
                        format!(
                            "+OK {} POP3 server signing off ({left} messages left)\r\n",
                            server.hostname
                        )
                        .as_bytes(),
                    );
                }
                Err(error) => {
                    temporary_failure(conn, &error, "some deleted messages were not removed");
                }
            }
            return Flow::Close;
        }
        Command::Noop => conn.write(b"+OK\r\n"),
        Command::Capa
        | Command::User(_)
        | Command::Pass(_)
        | Command::Auth { .. }
        | Command::Stls => {
            conn.write(b"-ERR already logged in\r\n");
        }
    }
    Flow::Continue
}
