//! AUTH (RFC 4954): PLAIN and LOGIN, only inside TLS unless the listener
//! allows plaintext; every attempt goes through the shared login throttle.

use crate::Server;
use crate::command::MAX_COMMAND_LINE;
use crate::session::{Session, reply};
use base64::Engine;
use pillarbox_directory::{AuthError, Protocol};
use pillarbox_net::Connection;

pub(crate) async fn auth(
    server: &Server,
    conn: &mut Connection,
    s: &mut Session,
    mechanism: &str,
    initial: Option<String>,
    submission: bool,
) -> Result<(), ()> {
    if !submission {
        reply(
            conn,
            503,
            "5.5.1",
            "AUTH is not offered on the MX port: use the submission port",
        );
        return Ok(());
    }
    if s.helo.is_none() || !s.esmtp {
        reply(conn, 503, "5.5.1", "send EHLO first");
        return Ok(());
    }
    if s.authenticated.is_some() {
        reply(conn, 503, "5.5.1", "already authenticated");
        return Ok(());
    }
    if !conn.plaintext_auth_allowed() {
        reply(conn, 530, "5.7.0", "must issue a STARTTLS command first");
        return Ok(());
    }
    let decode = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
    };
    let (login, password) = match mechanism {
        "PLAIN" => {
            let response = match initial {
                Some(initial) => initial,
                None => match challenge(conn, "").await? {
                    Some(r) => r,
                    None => return Ok(()),
                },
            };
            let Some(bytes) = decode(&response) else {
                reply(
                    conn,
                    501,
                    "5.5.2",
                    "cannot decode the AUTH response: send base64",
                );
                return Ok(());
            };
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let parts: Vec<&str> = text.split('\0').collect();
            if parts.len() != 3 {
                reply(
                    conn,
                    501,
                    "5.5.2",
                    "malformed PLAIN response: base64 of authzid\\0user\\0password",
                );
                return Ok(());
            }
            (parts[1].to_string(), parts[2].to_string())
        }
        "LOGIN" => {
            let user = match initial {
                Some(initial) => initial,
                None => match challenge(conn, "VXNlcm5hbWU6").await? {
                    Some(r) => r,
                    None => return Ok(()),
                },
            };
            let Some(user) = decode(&user) else {
                reply(
                    conn,
                    501,
                    "5.5.2",
                    "cannot decode the AUTH response: send base64",
                );
                return Ok(());
            };
            let Some(password) = challenge(conn, "UGFzc3dvcmQ6").await? else {
                return Ok(());
            };
            let Some(password) = decode(&password) else {
                reply(
                    conn,
                    501,
                    "5.5.2",
                    "cannot decode the AUTH response: send base64",
                );
                return Ok(());
            };
            (
                String::from_utf8_lossy(&user).into_owned(),
                String::from_utf8_lossy(&password).into_owned(),
            )
        }
        _ => {
            reply(
                conn,
                504,
                "5.5.4",
                "unsupported mechanism: use PLAIN or LOGIN",
            );
            return Ok(());
        }
    };
    let ip = conn.peer().ip();
    // The shared throttle waits for this IP's turn and delays failures.
    match server
        .directory
        .login(ip, &login, &password, Protocol::Submission)
        .await
    {
        Ok(account) => {
            tracing::Span::current().record("account", account.address.as_str());
            s.authenticated = Some(account);
            // The idle timeout from now on; no longer counted as not logged in.
            conn.set_authenticated();
            reply(conn, 235, "2.7.0", "authentication successful");
        }
        Err(AuthError::InvalidCredentials) => {
            tracing::info!(login = ?login, "SMTP AUTH failed");
            reply(conn, 535, "5.7.8", "authentication credentials invalid");
        }
        Err(AuthError::ProtocolDisabled(_)) => reply(
            conn,
            535,
            "5.7.8",
            "sending is disabled for this account: ask the administrator",
        ),
        Err(AuthError::Temporary(error)) => {
            let reference = pillarbox_net::error_reference();
            tracing::warn!(%error, %reference, "account service unavailable");
            reply(
                conn,
                454,
                "4.7.0",
                &format!("temporary authentication failure, try again (reference {reference})"),
            )
        }
    }
    Ok(())
}

/// Sends a `334` challenge and reads the answer; `None` when cancelled.
async fn challenge(conn: &mut Connection, text: &str) -> Result<Option<String>, ()> {
    conn.send(format!("334 {text}\r\n").as_bytes())
        .await
        .map_err(|_| ())?;
    let line = conn.read_line(MAX_COMMAND_LINE).await.map_err(|_| ())?;
    let line = String::from_utf8_lossy(&line).trim_end().to_string();
    if line == "*" {
        reply(conn, 501, "5.0.0", "authentication cancelled");
        return Ok(None);
    }
    Ok(Some(line))
}
