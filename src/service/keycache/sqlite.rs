//! The key cache's watcher on SQLite: one serving process, whose own writes
//! clear the cache before they answer (see `store::guard`), while
//! `keydeck admin` in another process may write the same file. A dedicated
//! connection reads `PRAGMA data_version` every [`POLL`]; a new value means
//! another connection committed, and the cache is cleared. Each poll that
//! answers trusts the cache for [`TRUST`] from the moment it started, so a
//! stuck poller stops the cache from answering within [`TRUST`], and a write
//! by another process is refused at the latest [`OTHER_PROCESS_BOUND`] after
//! it committed.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};
use sqlx::Connection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::KeyCache;

/// How often the data version is read.
pub const POLL: Duration = Duration::from_millis(100);
/// How long one answered poll lets the cache answer, counted from its start.
pub const TRUST: Duration = Duration::from_millis(500);
/// The documented bound: a change written by another process is refused by
/// the key check at the latest this long after it committed.
pub const OTHER_PROCESS_BOUND: Duration = Duration::from_secs(1);

/// Opens the watcher's connection and polls until `stop`.
pub async fn start(
    url: &str,
    cache: Arc<KeyCache>,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, sqlx::Error> {
    // WAL as the store sets it: opening must not change the journal mode.
    let options = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(1));
    let conn = SqliteConnection::connect_with(&options).await?;
    Ok(tokio::spawn(watch_versions(options, conn, cache, stop)))
}

async fn watch_versions(
    options: SqliteConnectOptions,
    conn: SqliteConnection,
    cache: Arc<KeyCache>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn = Some(conn);
    let mut seen: Option<i64> = None;
    loop {
        let started = Instant::now();
        let version = match conn.as_mut() {
            Some(c) => tokio::time::timeout(TRUST, data_version(c)).await,
            None => match SqliteConnection::connect_with(&options).await {
                Ok(mut c) => {
                    let v = tokio::time::timeout(TRUST, data_version(&mut c)).await;
                    conn = Some(c);
                    v
                }
                Err(e) => Ok(Err(e)),
            },
        };
        match version {
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
                conn = None;
            }
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            () = tokio::time::sleep(POLL) => {}
        }
    }
    cache.distrust();
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

async fn data_version(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(conn)
        .await
}
