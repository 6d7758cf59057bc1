//! STARTTLS (RFC 9051 §6.2.1), COMPRESS (RFC 4978), AUTHENTICATE PLAIN with SASL-IR (§6.2.2,
//! RFC 4959) and LOGIN (§6.2.3), through the account service's throttle.

use crate::framing;
use crate::session::{Done, Session};
use base64::Engine;
use pillarbox_directory::{AuthError, Protocol};
use pillarbox_net::ReadError;

impl Session<'_> {
    /// UNAUTHENTICATE (RFC 8437): back to the not-authenticated state on
    /// the same connection (TLS stays): the mailbox is closed, what ENABLE
    /// turned on is off again, and the login timeout applies.
    pub(crate) fn unauthenticate(&mut self) -> Done {
        self.selected = None;
        self.account = None;
        self.rev2 = false;
        self.condstore = false;
        self.qresync = false;
        self.utf8_accept = false;
        self.conn.set_unauthenticated();
        tracing::Span::current().record("account", "");
        tracing::info!("IMAP logout without disconnecting (UNAUTHENTICATE)");
        Done::Ok("UNAUTHENTICATE completed: log in again".into())
    }

    pub(crate) async fn starttls(&mut self, tag: &str) -> Done {
        if !self.conn.can_start_tls() {
            return Done::Bad("TLS is already active or not available on this port".into());
        }
        self.conn
            .write(format!("{tag} OK Begin TLS negotiation now\r\n").as_bytes());
        match self.conn.start_tls().await {
            Ok(()) => Done::Sent,
            Err(error) => {
                tracing::info!(%error, "TLS handshake failed");
                Done::Close
            }
        }
    }

    /// COMPRESS DEFLATE (RFC 4978 §3): the tagged OK goes out uncompressed,
    /// and both directions are compressed from the octet after its CRLF.
    /// Valid once logged in; the compression layer sits above TLS.
    pub(crate) async fn compress(&mut self, tag: &str, mechanism: &str) -> Done {
        if mechanism != "DEFLATE" {
            return Done::Bad(format!(
                "compression mechanism {mechanism} is not supported: use COMPRESS DEFLATE"
            ));
        }
        if self.conn.is_compressed() {
            return Done::Bad("[COMPRESSIONACTIVE] DEFLATE is already active".into());
        }
        self.conn
            .write(format!("{tag} OK DEFLATE active\r\n").as_bytes());
        match self.conn.start_compression().await {
            Ok(()) => {
                tracing::debug!("COMPRESS=DEFLATE active");
                Done::Sent
            }
            Err(error) => {
                tracing::info!(%error, "cannot start compression");
                Done::Close
            }
        }
    }

    pub(crate) async fn authenticate(&mut self, mechanism: &str, initial: Option<&str>) -> Done {
        if mechanism != "PLAIN" {
            return Done::No(format!(
                "[CANNOT] mechanism {mechanism} is not supported: use AUTHENTICATE PLAIN"
            ));
        }
        if !self.conn.plaintext_auth_allowed() {
            return Done::No("[PRIVACYREQUIRED] Authentication is disabled until TLS is active: send STARTTLS first or use port 993".into());
        }
        let response = match initial {
            Some(initial) => initial.to_string(),
            None => {
                if self.conn.send(b"+ \r\n").await.is_err() {
                    return Done::Close;
                }
                // Only before login: the same few KiB as a whole command.
                match self.conn.read_line(framing::MAX_COMMAND_BEFORE_LOGIN).await {
                    Ok(line) => String::from_utf8_lossy(&line).trim_end().to_string(),
                    Err(ReadError::TooLong(max)) => {
                        let _ = self
                            .conn
                            .send(
                                format!("* BYE AUTHENTICATE response longer than {max} octets\r\n")
                                    .as_bytes(),
                            )
                            .await;
                        return Done::Close;
                    }
                    Err(_) => return Done::Close,
                }
            }
        };
        if response == "*" {
            return Done::Bad("Authentication cancelled".into());
        }
        let decoded = if response == "=" {
            Vec::new()
        } else {
            match base64::engine::general_purpose::STANDARD.decode(response.as_bytes()) {
                Ok(decoded) => decoded,
                Err(_) => {
                    return Done::Bad(
                        "Malformed AUTHENTICATE PLAIN response: send base64 of authzid\\0user\\0password".into(),
                    );
                }
            }
        };
        let mut fields = decoded.split(|b| *b == 0);
        let (Some(authzid), Some(user), Some(password), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Done::Bad(
                "Malformed AUTHENTICATE PLAIN response: send base64 of authzid\\0user\\0password"
                    .into(),
            );
        };
        let (Ok(authzid), Ok(user), Ok(password)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(user),
            std::str::from_utf8(password),
        ) else {
            return Done::Bad("User name and password must be UTF-8".into());
        };
        if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(user) {
            return Done::No(
                "[AUTHORIZATIONFAILED] Logging in as another user is not supported".into(),
            );
        }
        let (user, password) = (user.to_string(), password.to_string());
        self.login(&user, &password).await
    }

    pub(crate) async fn login(&mut self, user: &str, password: &str) -> Done {
        let ip = self.conn.peer().ip();
        let directory = &self.server.directory;
        // The shared throttle waits for this IP's turn and delays failures.
        match directory.login(ip, user, password, Protocol::Imap).await {
            Ok(account) => {
                tracing::Span::current().record("account", account.address.as_str());
                tracing::info!("IMAP login");
                // The idle timeout from now on; no longer counted as not logged in.
                self.conn.set_authenticated();
                self.account = Some(account);
                Done::Ok(format!("[CAPABILITY {}] Logged in", self.capabilities()))
            }
            Err(AuthError::InvalidCredentials) => {
                tracing::info!(login = ?user, "IMAP login failed");
                Done::No("[AUTHENTICATIONFAILED] Invalid user name or password".into())
            }
            Err(AuthError::ProtocolDisabled(_)) => Done::No(
                "[CONTACTADMIN] IMAP access is switched off for this account; ask your mail administrator to enable it".into(),
            ),
            Err(AuthError::Temporary(error)) => {
                let reference = pillarbox_net::error_reference();
                tracing::warn!(%error, %reference, "directory unavailable");
                Done::No(format!(
                    "[UNAVAILABLE] Account service unavailable, try again shortly (reference {reference})"
                ))
            }
        }
    }
}
