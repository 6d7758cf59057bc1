//! Delivery: one message to many (account, mailbox) targets, bytes stored
//! once, each target getting the next UID of its mailbox — and group commit:
//! deliveries that arrive while a transaction is being written wait for the
//! next one and share it, so one commit (one fsync) makes many of them
//! durable. Each delivery still succeeds or fails on its own: a full mailbox
//! refuses only the message meant for it.

use crate::dialect::{LockMailboxes, Notify, WritePool};
use crate::error::{Result, StoreError};
use crate::feed::{ChangeEvent, ChangeKind};
use crate::meta;
use crate::open::Inner;
use crate::queue::{OutboundMessage, QueueId};
use crate::types::*;
use crate::{Store, blob, with_pool};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, oneshot};

/// Deliveries in one group commit at most, and their bytes.
const GROUP_MAX: usize = 64;
const GROUP_MAX_BYTES: usize = 16 << 20;

/// A message prepared outside the transaction: hashed and parsed.
pub(crate) struct Prepared {
    hash: String,
    raw: bytes::Bytes,
    trace_headers: Vec<u8>,
    size: i64,
    internal_date: i64,
    meta_json: String,
    header_text: String,
    body_text: String,
    search_fields: String,
}

fn prepare(message: &NewMessage) -> Prepared {
    let hash = blob::hash(&message.raw);
    let mut served = Vec::with_capacity(message.trace_headers.len() + message.raw.len());
    served.extend_from_slice(&message.trace_headers);
    served.extend_from_slice(&message.raw);
    let parsed = meta::parse(&served);
    Prepared {
        hash,
        raw: message.raw.clone(),
        trace_headers: message.trace_headers.clone(),
        size: served.len() as i64,
        internal_date: message.internal_date.unwrap_or_else(crate::queue::unix_now),
        meta_json: serde_json::to_string(&parsed.meta).unwrap_or_default(),
        header_text: parsed.header_text,
        body_text: parsed.body_text,
        search_fields: parsed.search_fields,
    }
}

/// What one delivery made: a copy per target, and the queue entry of its
/// remote part.
type Outcome = (Vec<Delivered>, Option<QueueId>);

/// One delivery of a transaction.
struct Job<'a> {
    prepared: &'a Prepared,
    targets: &'a [Target],
    outbound: Option<&'a OutboundMessage>,
}

/// A delivery waiting for the next group commit.
struct Pending {
    prepared: Prepared,
    targets: Vec<Target>,
    outbound: Option<OutboundMessage>,
    reply: oneshot::Sender<Result<Outcome>>,
}

impl Pending {
    fn job(&self) -> Job<'_> {
        Job {
            prepared: &self.prepared,
            targets: &self.targets,
            outbound: self.outbound.as_ref(),
        }
    }
}

/// The queue of deliveries in front of the group-commit task.
pub(crate) struct GroupCommit {
    sender: mpsc::UnboundedSender<Pending>,
}

impl GroupCommit {
    /// The queue, and `committers` tasks that commit what it holds, each a
    /// group at a time (they end when the store is dropped). SQLite has one
    /// writer, so one committer; PostgreSQL runs several transactions at
    /// once (mailbox rows are locked in id order, so they cannot deadlock).
    pub(crate) fn new(committers: usize) -> (GroupCommit, impl FnOnce(&Arc<Inner>)) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let queue = Arc::new(tokio::sync::Mutex::new(receiver));
        let start = move |inner: &Arc<Inner>| {
            for _ in 0..committers.max(1) {
                tokio::spawn(run(Arc::downgrade(inner), queue.clone()));
            }
        };
        (GroupCommit { sender }, start)
    }
}

/// The next group: the first delivery waiting, and whatever queued up behind
/// it while the last commit was written.
async fn next_group(
    queue: &tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
) -> Option<Vec<Pending>> {
    let mut queue = queue.lock().await;
    let first = queue.recv().await?;
    let mut bytes = first.prepared.raw.len();
    let mut group = vec![first];
    while group.len() < GROUP_MAX && bytes < GROUP_MAX_BYTES {
        match queue.try_recv() {
            Ok(next) => {
                bytes += next.prepared.raw.len();
                group.push(next);
            }
            Err(_) => break,
        }
    }
    Some(group)
}

async fn run(store: Weak<Inner>, queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>) {
    while let Some(group) = next_group(&queue).await {
        let Some(inner) = store.upgrade() else {
            return;
        };
        let store = Store { inner };
        let jobs: Vec<Job<'_>> = group.iter().map(Pending::job).collect();
        let outcomes = match store.commit_jobs(&jobs, false).await {
            Ok(outcomes) => outcomes,
            // The transaction failed as a whole: each delivery alone, so
            // each gets its own answer and one bad one sinks no others.
            Err(error) if group.len() == 1 => vec![Err(error)],
            Err(_) => {
                let mut outcomes = Vec::with_capacity(group.len());
                for job in &jobs {
                    outcomes.push(
                        match store.commit_jobs(std::slice::from_ref(job), false).await {
                            Ok(mut one) => one.pop().unwrap_or_else(|| Ok(Default::default())),
                            Err(error) => Err(error),
                        },
                    );
                }
                outcomes
            }
        };
        drop(jobs);
        for (pending, outcome) in group.into_iter().zip(outcomes) {
            let _ = pending.reply.send(outcome);
        }
    }
}

impl Store {
    /// Delivers one message to many (account, mailbox) targets: bytes stored
    /// once, each target gets the next UID of its mailbox. When this returns
    /// `Ok`, the delivery is durable.
    pub async fn deliver(
        &self,
        message: &NewMessage,
        targets: &[Target],
    ) -> Result<Vec<Delivered>> {
        Ok(self.deliver_and_queue(message, targets, None).await?.0)
    }

    /// Delivers one message to local targets and queues it for remote
    /// recipients, in one transaction (shared with concurrent deliveries):
    /// when this returns `Ok`, both are durable.
    pub async fn deliver_and_queue(
        &self,
        message: &NewMessage,
        targets: &[Target],
        outbound: Option<&OutboundMessage>,
    ) -> Result<Outcome> {
        let prepared = self
            .prepare_and_write(std::slice::from_ref(message), &[!targets.is_empty()])
            .await?
            .pop()
            .ok_or_else(|| StoreError::BlobMissing("the prepared message".into()))?;
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            prepared,
            targets: targets.to_vec(),
            outbound: outbound.cloned(),
            reply,
        };
        if self.inner.group_commit.sender.send(pending).is_err() {
            return Err(StoreError::Closed);
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Delivers several messages in one transaction (imports). All or
    /// nothing: on error no message of the batch is stored.
    pub async fn deliver_batch(
        &self,
        batch: &[(NewMessage, Vec<Target>)],
    ) -> Result<Vec<Vec<Delivered>>> {
        let messages: Vec<NewMessage> = batch.iter().map(|(m, _)| m.clone()).collect();
        let stored: Vec<bool> = batch.iter().map(|(_, t)| !t.is_empty()).collect();
        let prepared = self.prepare_and_write(&messages, &stored).await?;
        let jobs: Vec<Job<'_>> = prepared
            .iter()
            .zip(batch)
            .map(|(prepared, (_, targets))| Job {
                prepared,
                targets,
                outbound: None,
            })
            .collect();
        self.commit_jobs(&jobs, true)
            .await?
            .into_iter()
            .map(|outcome| outcome.map(|(delivered, _)| delivered))
            .collect()
    }

    /// Hashes and parses off the async runtime, then makes the bytes durable
    /// on disk (file-system blobs) before any commit refers to them: a crash
    /// in between leaves an orphan file (removed by `sweep_orphan_files`
    /// once older than the grace period), never a dangling row. The commit
    /// checks again that the file is there (`commit_jobs`).
    async fn prepare_and_write(
        &self,
        messages: &[NewMessage],
        stored: &[bool],
    ) -> Result<Vec<Prepared>> {
        let inputs = messages.to_vec();
        let prepared =
            tokio::task::spawn_blocking(move || inputs.iter().map(prepare).collect::<Vec<_>>())
                .await
                .map_err(|e| StoreError::Blob {
                    path: String::new(),
                    source: std::io::Error::other(e),
                })?;
        for (p, stored) in prepared.iter().zip(stored) {
            if *stored && !self.inner.blobs.in_row(p.raw.len()) {
                self.inner.blobs.write_file(&p.hash, &p.raw).await?;
            }
        }
        Ok(prepared)
    }

    /// Runs `jobs` in one transaction. A job whose account is over quota is
    /// refused alone (its `Err` in the list) unless `all_or_nothing`; any
    /// other error fails the whole transaction.
    async fn commit_jobs(
        &self,
        jobs: &[Job<'_>],
        all_or_nothing: bool,
    ) -> Result<Vec<Result<Outcome>>> {
        let started = std::time::Instant::now();
        let mut events: BTreeMap<MailboxId, ChangeEvent> = BTreeMap::new();
        let outcomes = with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            let mailbox_ids: Vec<i64> = jobs.iter().flat_map(|j| j.targets.iter().map(|t| t.mailbox.0)).collect();
            tx.lock_mailboxes(&mailbox_ids).await?;
            let account_ids: Vec<i64> = jobs.iter().flat_map(|j| j.targets.iter().map(|t| t.account.0)).collect();
            tx.lock_accounts(&account_ids).await?;
            // Quota first, per account of each delivery: a refused one stores nothing.
            let mut outcomes: Vec<Option<Result<Outcome>>> = Vec::with_capacity(jobs.len());
            for job in jobs {
                let p = job.prepared;
                let mut added: BTreeMap<AccountId, i64> = BTreeMap::new();
                for target in job.targets {
                    *added.entry(target.account).or_default() += p.size;
                }
                let mut charged: Vec<(AccountId, i64)> = Vec::new();
                let mut refused = None;
                for (account, bytes) in added {
                    match charge_quota!(&mut tx, account, bytes) {
                        Ok(()) => charged.push((account, bytes)),
                        Err(error @ StoreError::OverQuota { .. }) => {
                            refused = Some(error);
                            break;
                        }
                        Err(error) => return Err(error),
                    }
                }
                if let Some(error) = refused {
                    if all_or_nothing {
                        return Err(error);
                    }
                    for (account, bytes) in charged {
                        sqlx::query("UPDATE accounts SET used_bytes = used_bytes - $1 WHERE id = $2")
                            .bind(bytes)
                            .bind(account.0)
                            .execute(&mut *tx)
                            .await?;
                    }
                    outcomes.push(Some(Err(error)));
                } else {
                    outcomes.push(None);
                }
            }
            // The blob rows of the deliveries going ahead, in hash order
            // (two group commits holding the same blobs cannot deadlock).
            let mut blobs: BTreeMap<&str, &Prepared> = BTreeMap::new();
            for (job, outcome) in jobs.iter().zip(&outcomes) {
                if outcome.is_none() && !job.targets.is_empty() {
                    blobs.insert(&job.prepared.hash, job.prepared);
                }
            }
            for p in blobs.values() {
                let in_row = self.inner.blobs.in_row(p.raw.len());
                let data: Option<&[u8]> = if in_row { Some(&p.raw) } else { None };
                // An upsert, so the row is held (PostgreSQL) until the
                // commit: the blob sweep cannot take it away meanwhile, and
                // if it did just before, the row is made again here.
                let (in_file,): (bool,) = sqlx::query_as(
                    "INSERT INTO blobs (hash, size, data) VALUES ($1, $2, $3) \
                     ON CONFLICT (hash) DO UPDATE SET data = COALESCE(blobs.data, excluded.data) \
                     RETURNING data IS NULL",
                )
                .bind(&p.hash)
                .bind(p.raw.len() as i64)
                .bind(data)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM blob_tombstones WHERE hash = $1")
                    .bind(&p.hash)
                    .execute(&mut *tx)
                    .await?;
                if in_file {
                    // Written before the transaction, but a sweep may have
                    // removed a file of the same bytes since: write it again
                    // (a no-op when it is there) before the commit.
                    self.inner.blobs.write_file(&p.hash, &p.raw).await?;
                }
            }
            for (job, outcome) in jobs.iter().zip(outcomes.iter_mut()) {
                if outcome.is_some() {
                    continue;
                }
                let p = job.prepared;
                let mut delivered = Vec::with_capacity(job.targets.len());
                if !job.targets.is_empty() {
                    let (message_id,): (i64,) = sqlx::query_as(
                        "INSERT INTO messages (blob_hash, trace_headers, size, internal_date, meta, header_text, body_text) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    )
                    .bind(&p.hash)
                    .bind(&p.trace_headers)
                    .bind(p.size)
                    .bind(p.internal_date)
                    .bind(&p.meta_json)
                    .bind(&p.header_text)
                    .bind(&p.body_text)
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query("INSERT INTO message_fields (message_id, fields) VALUES ($1, $2)")
                        .bind(message_id)
                        .bind(&p.search_fields)
                        .execute(&mut *tx)
                        .await?;
                    for target in job.targets {
                        let allocated: Option<(i64, i64)> = sqlx::query_as(
                            "UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1 \
                             WHERE id = $1 AND account_id = $2 RETURNING uid_next - 1, highest_modseq",
                        )
                        .bind(target.mailbox.0)
                        .bind(target.account.0)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let Some((uid, modseq)) = allocated else {
                            return Err(StoreError::MailboxIdNotFound(target.mailbox));
                        };
                        let (flags, keywords) = target.flags.to_columns();
                        sqlx::query(
                            "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, modseq, flags, keywords, size, internal_date, saved_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        )
                        .bind(target.mailbox.0)
                        .bind(uid)
                        .bind(message_id)
                        .bind(modseq)
                        .bind(flags)
                        .bind(keywords)
                        .bind(p.size)
                        .bind(p.internal_date)
                        .bind(crate::queue::unix_now())
                        .execute(&mut *tx)
                        .await?;
                        events.insert(target.mailbox, ChangeEvent {
                            account: target.account,
                            mailbox: target.mailbox,
                            kind: ChangeKind::Appended,
                            modseq: ModSeq(modseq as u64),
                        });
                        delivered.push(Delivered {
                            account: target.account,
                            mailbox: target.mailbox,
                            uid: Uid(uid as u32),
                            modseq: ModSeq(modseq as u64),
                            message: MessageId(message_id),
                        });
                    }
                }
                let queued = match job.outbound {
                    Some(outbound) => Some(queue_in!(&mut tx, outbound)?),
                    None => None,
                };
                *outcome = Some(Ok((delivered, queued)));
            }
            let events: Vec<ChangeEvent> = events.values().copied().collect();
            tx.notify(&events).await?;
            tx.commit().await?;
            outcomes
        });
        // Every job got its outcome in one of the two loops above.
        let outcomes: Vec<Result<Outcome>> = outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| Ok(Default::default())))
            .collect();
        let events: Vec<ChangeEvent> = events.into_values().collect();
        self.inner.feed.publish_committed(&events);
        let mut copies = 0;
        let mut queued = false;
        for (delivered, queue_id) in outcomes.iter().flatten() {
            copies += delivered.len();
            queued |= queue_id.is_some();
        }
        metrics::counter!("pillarbox_messages_delivered_total").increment(copies as u64);
        metrics::histogram!("pillarbox_store_delivery_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("pillarbox_store_deliveries_per_commit").record(jobs.len() as f64);
        if queued {
            self.inner.queue_wakeup.notify_waiters();
        }
        Ok(outcomes)
    }
}
