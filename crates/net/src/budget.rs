//! The server-wide budget for bytes buffered from clients.
//!
//! Every protocol caps what one command or message may buffer (a literal, a
//! BDAT chunk, a DATA section), but a cap per connection times the number of
//! connections is still far more memory than the machine has. So each large
//! buffer is also charged to one budget shared by every listener: a session
//! reserves the bytes *before* it reads them, holds the [`Reservation`] while
//! the data lives, and gives them back by dropping it. When the budget is
//! spent, a reservation waits a little for others to finish and then fails,
//! and the protocol answers with a temporary error (SMTP 451/452 4.3.1, IMAP
//! `NO [LIMIT]`): the client retries later, nothing is lost, and the total
//! buffered can never exceed the budget whatever the number of connections.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget counts in units of this many bytes (a semaphore permit each),
/// so a budget of terabytes still fits the semaphore's `u32` requests.
const UNIT: u64 = 1024;
/// How long a reservation waits for room before it fails.
const WAIT: Duration = Duration::from_secs(5);

/// Why a reservation failed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the server is short of memory for buffered client data ({requested} bytes wanted, budget {total} bytes); try again later"
)]
pub struct BudgetExceeded {
    pub requested: u64,
    pub total: u64,
}

/// Bytes the server may buffer from clients at once; see the module docs.
#[derive(Clone)]
pub struct MemoryBudget {
    semaphore: Arc<Semaphore>,
    total_units: u64,
    wait: Duration,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("total_bytes", &self.total_bytes())
            .field("available_bytes", &self.available_bytes())
            .finish()
    }
}

impl MemoryBudget {
    /// A budget of `bytes` (rounded down to whole KiB, at least one).
    pub fn new(bytes: u64) -> MemoryBudget {
        let total_units = (bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        MemoryBudget {
            semaphore: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            wait: WAIT,
        }
    }

    /// As [`MemoryBudget::new`], waiting at most `wait` for room (tests).
    pub fn with_wait(bytes: u64, wait: Duration) -> MemoryBudget {
        MemoryBudget {
            wait,
            ..MemoryBudget::new(bytes)
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_units * UNIT
    }

    /// Bytes not reserved right now.
    pub fn available_bytes(&self) -> u64 {
        self.semaphore.available_permits() as u64 * UNIT
    }

    /// Reserves `bytes` before they are read, waiting a little for room.
    pub async fn reserve(&self, bytes: u64) -> Result<Reservation, BudgetExceeded> {
        let mut reservation = Reservation {
            budget: self.clone(),
            permit: None,
            bytes: 0,
        };
        reservation.grow(bytes).await?;
        Ok(reservation)
    }

    fn units(bytes: u64) -> u64 {
        bytes.div_ceil(UNIT)
    }
}

/// Bytes taken from a [`MemoryBudget`]; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    permit: Option<OwnedSemaphorePermit>,
    bytes: u64,
}

impl Reservation {
    /// Bytes this reservation holds.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Takes `extra` more bytes (a message that keeps growing), waiting a
    /// little for room; on failure the reservation keeps what it had.
    pub async fn grow(&mut self, extra: u64) -> Result<(), BudgetExceeded> {
        let wanted = self.bytes.saturating_add(extra);
        let held_units = self.permit.as_ref().map_or(0, |p| p.num_permits() as u64);
        let missing = MemoryBudget::units(wanted).saturating_sub(held_units);
        let exceeded = BudgetExceeded {
            requested: wanted,
            total: self.budget.total_bytes(),
        };
        if missing > 0 {
            if held_units + missing > self.budget.total_units {
                return Err(exceeded);
            }
            // `missing` ≤ total_units ≤ Semaphore::MAX_PERMITS; a request for
            // more than u32::MAX units is split.
            let mut remaining = missing;
            let mut taken: Option<OwnedSemaphorePermit> = None;
            while remaining > 0 {
                let step = remaining.min(u32::MAX as u64) as u32;
                let acquire = Arc::clone(&self.budget.semaphore).acquire_many_owned(step);
                let permit = match tokio::time::timeout(self.budget.wait, acquire).await {
                    Ok(Ok(permit)) => permit,
                    // Timed out, or the semaphore was closed (never done).
                    _ => return Err(exceeded),
                };
                match taken.as_mut() {
                    Some(all) => all.merge(permit),
                    None => taken = Some(permit),
                }
                remaining -= step as u64;
            }
            if let Some(new) = taken {
                match self.permit.as_mut() {
                    Some(held) => held.merge(new),
                    None => self.permit = Some(new),
                }
            }
        }
        self.bytes = wanted;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_never_exceed_the_budget_and_come_back_when_dropped() {
        let budget = MemoryBudget::with_wait(64 * 1024, Duration::from_millis(50));
        let first = budget.reserve(40 * 1024).await.unwrap();
        assert_eq!(budget.available_bytes(), 24 * 1024);
        let error = budget.reserve(40 * 1024).await.unwrap_err();
        assert_eq!(error.requested, 40 * 1024);
        assert_eq!(
            budget.available_bytes(),
            24 * 1024,
            "a failed reserve holds nothing"
        );
        drop(first);
        assert_eq!(budget.available_bytes(), 64 * 1024);
        assert!(budget.reserve(40 * 1024).await.is_ok());
    }

    #[tokio::test]
    async fn a_request_larger_than_the_budget_fails_at_once() {
        let budget = MemoryBudget::with_wait(1 << 20, Duration::from_secs(60));
        let started = std::time::Instant::now();
        assert!(budget.reserve(1 << 30).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(30), "no waiting");
    }

    #[tokio::test]
    async fn growing_charges_whole_units_and_keeps_what_it_had_on_failure() {
        let budget = MemoryBudget::with_wait(8 * 1024, Duration::from_millis(50));
        let mut reservation = budget.reserve(100).await.unwrap();
        assert_eq!(budget.available_bytes(), 7 * 1024);
        reservation.grow(900).await.unwrap();
        assert_eq!(reservation.bytes(), 1000);
        assert_eq!(budget.available_bytes(), 7 * 1024, "still within one unit");
        reservation.grow(5 * 1024).await.unwrap();
        assert_eq!(budget.available_bytes(), 2 * 1024);
        assert!(reservation.grow(4 * 1024).await.is_err());
        assert_eq!(reservation.bytes(), 1000 + 5 * 1024);
        drop(reservation);
        assert_eq!(budget.available_bytes(), 8 * 1024);
    }

    #[tokio::test]
    async fn a_waiting_reservation_gets_room_when_another_is_dropped() {
        let budget = MemoryBudget::with_wait(4 * 1024, Duration::from_secs(5));
        let held = budget.reserve(4 * 1024).await.unwrap();
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(2 * 1024).await.map(|r| r.bytes()) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert_eq!(waiter.await.unwrap().unwrap(), 2 * 1024);
    }
}
