//! IDLE (RFC 2177, RFC 9051 §6.3.13): changes to the selected mailbox are
//! pushed as they commit, from the store's change feed, until `DONE`.

use crate::framing::MAX_LINE;
use crate::session::{Done, Session};
use pillarbox_net::ReadError;
use pillarbox_store::Result;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Re-check the mailbox this often even without an event (a lost
/// notification must not leave a client waiting forever).
const RECHECK: Duration = Duration::from_secs(30);

impl Session<'_> {
    pub(crate) async fn idle(&mut self) -> Result<Done> {
        // Subscribe before the first check, so nothing committed in between is missed.
        let mut feed = self.server.store.subscribe();
        let mailbox = self.selected.as_ref().map(|s| s.mailbox.id);
        Box::pin(self.send_updates(true)).await;
        if self.conn.send(b"+ idling\r\n").await.is_err() {
            return Ok(Done::Close);
        }
        let timeout = self.conn.idle_timeout();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut check = false;
            tokio::select! {
                line = self.conn.read_line_timeout(MAX_LINE, RECHECK) => match line {
                    Ok(line) => {
                        let text = String::from_utf8_lossy(&line);
                        return Ok(if text.trim().eq_ignore_ascii_case("DONE") {
                            Done::Ok("IDLE terminated".into())
                        } else {
                            Done::Bad("Expected DONE to end IDLE".into())
                        });
                    }
                    Err(ReadError::Timeout(_)) => {
                        if tokio::time::Instant::now() >= deadline {
                            self.conn.write(b"* BYE Autologout: idle for too long, log in again\r\n");
                            return Ok(Done::Close);
                        }
                        check = true;
                    }
                    Err(ReadError::TooLong(_)) => {
                        return Ok(Done::Bad("Expected DONE to end IDLE".into()));
                    }
                    Err(ReadError::Shutdown) => {
                        self.conn.write(b"* BYE [UNAVAILABLE] Server shutting down, reconnect shortly\r\n");
                        return Ok(Done::Close);
                    }
                    Err(_) => return Ok(Done::Close),
                },
                event = feed.recv(), if mailbox.is_some() => match event {
                    Ok(event) => check = Some(event.mailbox) == mailbox,
                    Err(RecvError::Lagged(_)) => check = true,
                    Err(RecvError::Closed) => {
                        // The store is closing: fall back to periodic checks.
                        feed = self.server.store.subscribe();
                    }
                },
            }
            if check {
                // Boxed, so a waiting IDLE does not carry this state.
                Box::pin(self.send_updates(true)).await;
                if self.conn.flush().await.is_err() {
                    return Ok(Done::Close);
                }
            }
        }
    }
}
