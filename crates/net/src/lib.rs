//! pillarbox-net: listeners, TLS and connection framing shared by SMTP, POP3
//! and IMAP.
//!
//! A protocol crate implements [`Handler`]; the binary binds each configured
//! listener and runs [`serve`]. Every session gets a [`Connection`]: bounded,
//! time-limited line and byte reads, a write buffer, and `start_tls`, which
//! discards any plaintext the client pipelined after STARTTLS/STLS so that it
//! is never executed inside TLS, and `start_compression` (IMAP
//! COMPRESS=DEFLATE), which compresses both directions above TLS.

mod budget;
mod config;
mod connection;
pub mod deflate;
mod reference;
mod server;
pub mod tls;

pub use budget::{BudgetExceeded, MemoryBudget, Reservation};
pub use config::{ListenerConfig, TlsMode};
pub use connection::{Connection, ReadError, Timeouts};
pub use reference::error_reference;
pub use server::{ConnectionLimits, Handler, LISTEN_BACKLOG, ListenerInfo, Slot, bind, serve};
pub use tokio_util::sync::CancellationToken;
