//! The queue worker's loop: continuous claims, one task per delivery, lease
//! renewal, shutdown.
//!
//! - At most `[smtp.queue] workers` deliveries are in flight. As soon as one
//!   ends the worker claims more, so a destination that answers slowly holds
//!   up only its own delivery. A claim brings every due recipient of the
//!   claimed messages, so deliveries can briefly outnumber the slots; they
//!   then wait for one.
//! - The worker holds a claim for `lease_secs` and renews the leases of every
//!   delivery in flight (or waiting for a slot) each `lease_renew_secs`, so a
//!   long delivery keeps its recipients and no other node sends them too.
//!   A delivery whose claim is gone (the message was removed, or the lease
//!   ended and another worker took it) is dropped — before the end of the
//!   data where it still can be — and records nothing. When renewals fail
//!   (the database is unreachable), a delivery is dropped before its lease
//!   can end unnoticed.
//! - On shutdown it stops claiming, lets deliveries in flight end for a
//!   while, then drops the rest and gives their claims back.

use super::attempt::attempt;
use super::finish::finish;
use crate::Server;
use pillarbox_net::CancellationToken;
use pillarbox_store::queue::{QueueHolder, QueuedMessage, QueuedRecipient};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Polling interval (other nodes queue too; their wake-ups do not reach us).
const POLL: Duration = Duration::from_secs(15);
/// How long deliveries in flight get to end on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Messages finished per sweep for those a stopped worker left behind.
const SWEEP: i64 = 100;

/// What the worker's tasks share.
struct Worker {
    server: Arc<Server>,
    holder: QueueHolder,
    lease: Duration,
    renew_every: Duration,
    /// One permit per delivery that may talk to a remote server at a time.
    slots: Semaphore,
    in_flight: Mutex<InFlight>,
}

/// The deliveries whose claims the worker renews.
#[derive(Default)]
struct InFlight {
    next: u64,
    deliveries: HashMap<u64, Claim>,
}

struct Claim {
    recipients: Vec<i64>,
    /// By when the lease surely ends unless renewed (measured from before
    /// the claim or renewal that set it, so never later than the store's).
    held_until: Instant,
    /// Cancelled when the claim is lost or cannot be kept.
    lost: CancellationToken,
}

/// A delivery's place in [`InFlight`]; dropping it ends the renewals.
struct Registration<'a> {
    worker: &'a Worker,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.worker.in_flight().deliveries.remove(&self.id);
    }
}

impl Worker {
    /// The in-flight table. A panic while it was held cannot leave it half
    /// changed (each change is one insert, remove or field write), so a
    /// poisoned lock is used as it is.
    fn in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn register(
        &self,
        recipients: Vec<i64>,
        claimed_at: Instant,
    ) -> (Registration<'_>, CancellationToken) {
        let lost = CancellationToken::new();
        let mut in_flight = self.in_flight();
        let id = in_flight.next;
        in_flight.next += 1;
        in_flight.deliveries.insert(
            id,
            Claim {
                recipients,
                held_until: claimed_at + self.lease,
                lost: lost.clone(),
            },
        );
        (Registration { worker: self, id }, lost)
    }

    /// Every recipient the worker holds a claim on.
    fn held(&self) -> Vec<i64> {
        self.in_flight()
            .deliveries
            .values()
            .flat_map(|c| c.recipients.iter().copied())
            .collect()
    }
}

/// The lease and its renewal interval from the configuration: a renewal
/// interval not shorter than the lease would let leases end between
/// renewals, so it is replaced by a third of the lease.
fn lease_times(server: &Server) -> (Duration, Duration) {
    let config = &server.config.queue;
    let lease = Duration::from_secs(config.lease_secs.max(1));
    let renew = config.lease_renew_secs;
    if renew == 0 || renew >= config.lease_secs {
        tracing::warn!(
            lease_secs = config.lease_secs,
            lease_renew_secs = renew,
            "[smtp.queue] lease_renew_secs must be at least 1 and less than lease_secs: \
             renewing every third of the lease instead"
        );
        (lease, lease / 3)
    } else {
        (lease, Duration::from_secs(renew))
    }
}

/// Runs the queue until `shutdown`.
pub async fn run(server: Arc<Server>, shutdown: CancellationToken) {
    let (lease, renew_every) = lease_times(&server);
    let slots = server.config.queue.workers.max(1);
    let worker = Arc::new(Worker {
        server: server.clone(),
        holder: QueueHolder::new(),
        lease,
        renew_every,
        slots: Semaphore::new(slots),
        in_flight: Mutex::default(),
    });
    tracing::info!(holder = %worker.holder, slots, lease_secs = lease.as_secs(), "outbound queue running");
    let renewals_stop = CancellationToken::new();
    let renewals = tokio::spawn(renew(worker.clone(), renewals_stop.clone()));
    let mut deliveries: JoinSet<()> = JoinSet::new();
    let mut swept = Instant::now();
    sweep(&worker).await;
    while !shutdown.is_cancelled() {
        while deliveries.try_join_next().is_some() {}
        if swept.elapsed() >= POLL {
            swept = Instant::now();
            sweep(&worker).await;
        }
        if deliveries.len() >= slots {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = deliveries.join_next() => continue,
            }
        }
        // Taken before the claim: mail queued while we claim still wakes us.
        let wakeup = server.store.queue_wakeup();
        let claimed_at = Instant::now();
        let free = (slots - deliveries.len()) as i64;
        let claimed = match server.store.queue_claim(&worker.holder, free, lease).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "cannot claim from the outbound queue; trying again shortly");
                Vec::new()
            }
        };
        if !claimed.is_empty() {
            for message in claimed {
                for (destination, recipients) in by_destination(&server, &message) {
                    deliveries.spawn(deliver(
                        worker.clone(),
                        message.clone(),
                        destination,
                        recipients,
                        claimed_at,
                    ));
                }
            }
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wakeup => {}
            Some(_) = deliveries.join_next(), if !deliveries.is_empty() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    stop(&worker, deliveries).await;
    renewals_stop.cancel();
    let _ = renewals.await;
}

/// The recipients of a message by destination: their domain, or one group
/// for the smarthost.
fn by_destination(
    server: &Server,
    message: &QueuedMessage,
) -> BTreeMap<String, Vec<QueuedRecipient>> {
    let mut groups: BTreeMap<String, Vec<QueuedRecipient>> = BTreeMap::new();
    for r in &message.recipients {
        let key = if server.config.relay.is_some() {
            String::new()
        } else {
            r.domain.clone()
        };
        groups.entry(key).or_default().push(r.clone());
    }
    groups
}

/// One delivery: waits for a slot, attempts, records, finishes the message
/// if it was the last. Dropped, recording nothing, when its claim is lost.
async fn deliver(
    worker: Arc<Worker>,
    message: QueuedMessage,
    destination: String,
    recipients: Vec<QueuedRecipient>,
    claimed_at: Instant,
) {
    let (registration, lost) =
        worker.register(recipients.iter().map(|r| r.id).collect(), claimed_at);
    let work = async {
        // The semaphore is never closed; a closed one would only mean no limit.
        let _slot = worker.slots.acquire().await;
        attempt(&worker.server, &message, &destination, &recipients).await
    };
    let outcomes = tokio::select! {
        outcomes = work => outcomes,
        _ = lost.cancelled() => {
            tracing::warn!(
                queue_id = %message.id,
                destination = %destination,
                "delivery dropped: its claim is gone (the message left the queue, or the lease \
                 ended and another worker holds it) or could not be renewed"
            );
            return;
        }
    };
    match worker
        .server
        .store
        .queue_record(&worker.holder, &outcomes)
        .await
    {
        Ok(lost) if !lost.is_empty() => tracing::warn!(
            queue_id = %message.id,
            recipients = ?lost,
            "outcome not recorded: the claim passed to another worker, whose state stands"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(
            %error,
            queue_id = %message.id,
            "cannot record delivery results; the recipients are tried again when the lease ends"
        ),
    }
    drop(registration);
    if let Err(error) = finish(&worker.server, &worker.holder, message.id, worker.lease).await {
        tracing::warn!(%error, queue_id = %message.id, "cannot finish a queued message; a later sweep will");
    }
}

/// Renews the leases of every delivery in flight each `renew_every`, and
/// drops deliveries whose claim is gone or would end before the next try.
async fn renew(worker: Arc<Worker>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(worker.renew_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (asked, ids): (HashSet<u64>, Vec<i64>) = {
            let in_flight = worker.in_flight();
            (
                in_flight.deliveries.keys().copied().collect(),
                in_flight
                    .deliveries
                    .values()
                    .flat_map(|c| c.recipients.iter().copied())
                    .collect(),
            )
        };
        if ids.is_empty() {
            continue;
        }
        let started = Instant::now();
        let renewed = worker
            .server
            .store
            .queue_renew(&worker.holder, &ids, worker.lease)
            .await;
        let mut in_flight = worker.in_flight();
        let asked_now = in_flight
            .deliveries
            .iter_mut()
            .filter(|(id, _)| asked.contains(id));
        match renewed {
            Ok(held) => {
                let held: HashSet<i64> = held.into_iter().collect();
                for (_, claim) in asked_now {
                    if claim.recipients.iter().all(|id| held.contains(id)) {
                        claim.held_until = started + worker.lease;
                    } else {
                        claim.lost.cancel();
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot renew the leases of deliveries in flight");
                let next_try = Instant::now() + worker.renew_every;
                for (_, claim) in asked_now {
                    if claim.held_until <= next_try {
                        claim.lost.cancel();
                    }
                }
            }
        }
    }
}

/// Finishes messages a stopped worker left with every recipient final.
async fn sweep(worker: &Worker) {
    match worker.server.store.queue_unfinished(SWEEP).await {
        Ok(ids) => {
            for id in ids {
                if let Err(error) = finish(&worker.server, &worker.holder, id, worker.lease).await {
                    tracing::warn!(%error, queue_id = %id, "cannot finish a queued message");
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot look for finished queued messages"),
    }
}

/// Lets deliveries in flight end for [`SHUTDOWN_GRACE`], then drops the rest
/// and gives their claims back, due at once for the next worker.
async fn stop(worker: &Worker, mut deliveries: JoinSet<()>) {
    let ended = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while deliveries.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    if ended {
        return;
    }
    let held = worker.held();
    deliveries.abort_all();
    while deliveries.join_next().await.is_some() {}
    match worker
        .server
        .store
        .queue_release(&worker.holder, &held)
        .await
    {
        Ok(released) => {
            tracing::info!(
                released,
                "outbound queue stopped; unfinished deliveries given back"
            )
        }
        Err(error) => tracing::warn!(
            %error,
            "cannot give back the claims of unfinished deliveries; they are due again when their lease ends"
        ),
    }
}
