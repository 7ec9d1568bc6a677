//! The key cache's watcher on SQLite: one serving process, whose own writes
//! clear the cache before they answer (the store's key-write hook), while
//! `keydeck admin` in another process may write the same file. A dedicated
//! connection (the store's [`DataVersion`]) reads the file's data version every [`POLL`]; a new value means
//! another connection committed, and the cache is cleared. Each poll that
//! answers trusts the cache for [`TRUST`] from the moment it started, so a
//! stuck poller stops the cache from answering within [`TRUST`], and a write
//! by another process is refused at the latest [`OTHER_PROCESS_BOUND`] after
//! it committed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::KeyCache;
use crate::store::{DataVersion, VersionSource};

/// How often the data version is read.
pub const POLL: Duration = Duration::from_millis(100);
/// How long one answered poll lets the cache answer, counted from its start.
pub const TRUST: Duration = Duration::from_millis(500);
/// The documented bound: a change written by another process is refused by
/// the key check at the latest this long after it committed.
pub const OTHER_PROCESS_BOUND: Duration = Duration::from_secs(1);

/// Opens the watcher's connection (the store's [`DataVersion`]) and polls until `stop`.
pub async fn start(
    versions: &VersionSource,
    cache: Arc<KeyCache>,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, sqlx::Error> {
    let version = versions.open().await?;
    Ok(tokio::spawn(watch_versions(version, cache, stop)))
}

async fn watch_versions(
    mut version: DataVersion,
    cache: Arc<KeyCache>,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen: Option<i64> = None;
    loop {
        let started = Instant::now();
        match tokio::time::timeout(TRUST, version.read()).await {
            Ok(Ok(v)) => {
                // A new value, or the first after a gap: whatever is cached
                // may predate a change.
                if seen != Some(v) {
                    cache.clear();
                    seen = Some(v);
                }
                cache.trust_until(started + TRUST);
            }
            failed => {
                if seen.is_some() {
                    match failed {
                        Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the database's data version; key checks go to the database until it answers"),
                        _ => tracing::warn!("the database's data version did not come in time; key checks go to the database until it does"),
                    }
                }
                cache.distrust();
                seen = None;
                version.reset();
            }
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            () = tokio::time::sleep(POLL) => {}
        }
    }
    cache.distrust();
    version.close().await;
}
