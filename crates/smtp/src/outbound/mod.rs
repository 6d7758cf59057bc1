//! Outbound delivery: the queue worker. It claims due recipients from the
//! store as long as it has room for more deliveries, delivers each message
//! to each destination (its recipients' domain, or the smarthost) as its own
//! task — one SMTP transaction with all the recipients there — renews the
//! leases of what is in flight, records each recipient's outcome, retries
//! temporary failures on a schedule and reports permanent ones to the sender
//! (RFC 3464).

mod attempt;
pub mod bounce;
pub mod client;
pub mod dkim;
mod finish;
mod worker;

pub use worker::run;
