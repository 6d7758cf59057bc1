//! The blob lifecycle: how message bytes leave the store without a message
//! ever losing them.
//!
//! 1. The transaction that removes the last mailbox row of a message
//!    (expunge, move, mailbox or account delete) deletes the message row and
//!    gives its blob a tombstone when no other message uses it
//!    (`release_messages_in!` in `tx.rs`): a few indexed lookups per message,
//!    never a scan of the store.
//! 2. A delivery that references a blob holds its row (an upsert), deletes
//!    its tombstone and, for a blob kept in a file, makes sure the file is
//!    there — all in its own transaction (`deliver.rs`).
//! 3. [`Store::sweep_blobs`] takes tombstones older than a grace period and,
//!    holding the blob rows (PostgreSQL row locks; SQLite's one writer),
//!    re-checks that no message uses them, deletes rows and tombstones and
//!    removes the files, then commits. A file goes only while its row is
//!    held and unused, so a delivery either sees the row gone (and writes
//!    the file again from its own bytes) or keeps it.
//! 4. [`Store::sweep_orphan_files`] removes files with no row (a crash
//!    between writing the file and committing), under the same rule.
//!
//! The server runs both in the background (`pillarbox serve`).

use crate::dialect::{LockMailboxes, WritePool};
use crate::error::Result;
use crate::{Store, with_pool};
use std::time::Duration;

/// How long a blob stays after its last message went, unless configured
/// otherwise (`[store] blob_grace_secs`).
pub const BLOB_GRACE: Duration = Duration::from_secs(300);

/// Tombstones handled per transaction of the sweep.
const SWEEP_BATCH: i64 = 200;

/// What one [`Store::sweep_blobs`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Blobs removed (rows, and their files).
    pub blobs_removed: u64,
    /// Tombstones of blobs a message uses again, dropped with the blob kept.
    pub blobs_kept: u64,
}

/// Hashes as the text of an SQL `IN (…)` list. A hash is lowercase hex
/// (`blob::hash`); anything else is left out, so the text is safe to put
/// into a statement.
pub(crate) fn hash_list(hashes: &[String]) -> String {
    hashes
        .iter()
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|h| format!("'{h}'"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Store {
    /// Removes blobs that lost their last message more than `grace` ago
    /// (see the module header), in batches of a few hundred, one
    /// transaction each.
    pub async fn sweep_blobs(&self, grace: Duration) -> Result<SweepReport> {
        let cutoff = crate::queue::unix_now().saturating_sub(grace.as_secs() as i64);
        let mut report = SweepReport::default();
        loop {
            let (batch, removed, kept, missing) = self.sweep_batch(cutoff).await?;
            report.blobs_removed += removed;
            report.blobs_kept += kept;
            if !missing.is_empty() {
                self.drop_stray_tombstones(&missing).await?;
            }
            if batch < SWEEP_BATCH as usize {
                break;
            }
        }
        if report.blobs_removed > 0 {
            metrics::counter!("pillarbox_blobs_swept_total").increment(report.blobs_removed);
        }
        Ok(report)
    }

    /// One batch: evaluates to (tombstones looked at, blobs removed, blobs
    /// kept, tombstones whose blob row does not exist).
    async fn sweep_batch(&self, cutoff: i64) -> Result<(usize, u64, u64, Vec<String>)> {
        with_pool!(self.db_write(), pool => {
            let mut tx = pool.begin_write().await?;
            let batch: Vec<(String,)> = sqlx::query_as(
                "SELECT hash FROM blob_tombstones WHERE since <= $1 ORDER BY since, hash LIMIT $2",
            )
            .bind(cutoff)
            .bind(SWEEP_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            if batch.is_empty() {
                return Ok((0, 0, 0, Vec::new()));
            }
            let mut hashes: Vec<String> = batch.into_iter().map(|(h,)| h).collect();
            hashes.sort_unstable();
            let list = hash_list(&hashes);
            // Blobs before tombstones, in hash order: the order a delivery
            // takes them, so the two cannot deadlock.
            let locked: Vec<(String, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT hash, data IS NULL FROM blobs WHERE hash IN ({list}) ORDER BY hash{}",
                tx.for_update()
            )))
            .fetch_all(&mut *tx)
            .await?;
            let missing: Vec<String> = hashes
                .iter()
                .filter(|h| !locked.iter().any(|(l, _)| l == *h))
                .cloned()
                .collect();
            if locked.is_empty() {
                tx.commit().await?;
                return Ok((hashes.len(), 0, 0, missing));
            }
            let held: Vec<String> = locked.iter().map(|(h, _)| h.clone()).collect();
            let held_list = hash_list(&held);
            // A fresh statement: on PostgreSQL it sees every message
            // committed before the row locks above were granted.
            let used: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT blob_hash FROM messages WHERE blob_hash IN ({held_list})"
            )))
            .fetch_all(&mut *tx)
            .await?;
            let gone: Vec<(String, bool)> = locked
                .into_iter()
                .filter(|(h, _)| !used.iter().any(|(u,)| u == h))
                .collect();
            if !gone.is_empty() {
                let gone_hashes: Vec<String> = gone.iter().map(|(h, _)| h.clone()).collect();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM blobs WHERE hash IN ({})",
                    hash_list(&gone_hashes)
                )))
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM blob_tombstones WHERE hash IN ({held_list})"
            )))
            .execute(&mut *tx)
            .await?;
            // The files go while the rows are held: a delivery waiting for
            // one of them finds it gone and writes its file again. Should
            // the commit fail after this, the rows and tombstones stay and
            // the next sweep (or a delivery) sets things right.
            for (hash, in_file) in &gone {
                if *in_file {
                    self.inner.blobs.remove_file(hash).await?;
                }
            }
            tx.commit().await?;
            Ok((hashes.len(), gone.len() as u64, used.len() as u64, missing))
        })
    }

    /// Tombstones whose blob row is gone (another node's sweep got there
    /// first): dropped in a transaction of their own, holding no blob row.
    async fn drop_stray_tombstones(&self, hashes: &[String]) -> Result<()> {
        let list = hash_list(hashes);
        with_pool!(self.db_write(), pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM blob_tombstones WHERE hash IN ({list}) AND NOT EXISTS \
                 (SELECT 1 FROM blobs b WHERE b.hash = blob_tombstones.hash)"
            )))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Removes blob files that no database row refers to (left by a crash
    /// between writing a file and the commit that would have used it), and
    /// temporary files of writes a crash interrupted. Only files older than
    /// `min_age` go. Each removal holds the blob's row key (an uncommitted
    /// placeholder row, deleted before the commit), so a delivery of the
    /// same bytes running at that moment waits, then writes its file again.
    pub async fn sweep_orphan_files(&self, min_age: Duration) -> Result<usize> {
        let mut removed = self.inner.blobs.remove_stale_temporaries(min_age).await?;
        for hash in self.inner.blobs.list_files().await? {
            let young = self
                .inner
                .blobs
                .file_age(&hash)
                .await
                .is_none_or(|age| age < min_age);
            if young {
                continue;
            }
            let known: Option<(i64,)> = with_pool!(self.db(), pool => {
                sqlx::query_as("SELECT size FROM blobs WHERE hash = $1")
                    .bind(&hash)
                    .fetch_optional(pool)
                    .await?
            });
            if known.is_some() {
                continue;
            }
            let gone = with_pool!(self.db_write(), pool => {
                let mut tx = pool.begin_write().await?;
                let placeholder: Option<(String,)> = sqlx::query_as(
                    "INSERT INTO blobs (hash, size, data) VALUES ($1, 0, NULL) \
                     ON CONFLICT (hash) DO NOTHING RETURNING hash",
                )
                .bind(&hash)
                .fetch_optional(&mut *tx)
                .await?;
                if placeholder.is_some() {
                    self.inner.blobs.remove_file(&hash).await?;
                    sqlx::query("DELETE FROM blobs WHERE hash = $1")
                        .bind(&hash)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                placeholder.is_some()
            });
            removed += usize::from(gone);
        }
        Ok(removed)
    }

    /// Blobs waiting for the sweep (for checks and metrics).
    pub async fn blob_tombstone_count(&self) -> Result<u64> {
        let (count,): (i64,) = with_pool!(self.db(), pool => {
            sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM blob_tombstones")
                .fetch_one(pool)
                .await?
        });
        Ok(count as u64)
    }
}
