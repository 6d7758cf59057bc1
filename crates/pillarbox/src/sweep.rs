//! The store's housekeeping while the server runs: blobs of expunged
//! messages go once older than the grace period (`Store::sweep_blobs`),
//! and blob files a crash left with no row go at start and every hour
//! (`Store::sweep_orphan_files`). See the store's `gc.rs` for why neither
//! can take bytes a message still needs.

use pillarbox_net::CancellationToken;
use pillarbox_store::Store;
use std::time::Duration;

/// How often tombstoned blobs are looked at.
const SWEEP_EVERY: Duration = Duration::from_secs(300);
/// How often the blob directory is walked for files with no row.
const ORPHANS_EVERY: Duration = Duration::from_secs(3600);

/// Runs until `shutdown` fires.
pub async fn run(store: Store, grace: Duration, shutdown: CancellationToken) {
    let mut since_orphans: Option<std::time::Instant> = None;
    loop {
        if since_orphans.is_none_or(|at| at.elapsed() >= ORPHANS_EVERY) {
            since_orphans = Some(std::time::Instant::now());
            match store.sweep_orphan_files(grace).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed blob files with no database row"),
                Err(error) => {
                    tracing::warn!(%error, "orphan blob file sweep failed; retrying later")
                }
            }
        }
        match store.sweep_blobs(grace).await {
            Ok(report) if report.blobs_removed > 0 => {
                tracing::debug!(
                    removed = report.blobs_removed,
                    "swept blobs of expunged messages"
                )
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "blob sweep failed; retrying later"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}
