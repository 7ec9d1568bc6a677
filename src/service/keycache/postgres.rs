//! The key cache's watcher on PostgreSQL, where several replicas share one
//! database: leases, `LISTEN`/`NOTIFY` and acknowledgements.
//!
//! - A trigger (migration 0006) bumps `keycheck_epoch` and sends
//!   `NOTIFY keydeck_keycheck` in every transaction that changes what a key
//!   check answers (revocation, expiry, scopes, plan), whoever wrote it.
//! - Each replica with a cache holds a lease row in `keycheck_replicas`,
//!   renewed every [`HEARTBEAT`] for [`LEASE`], with the epoch it has cleared
//!   its cache for (`acked`). A notice, or a renewal that finds a newer
//!   epoch, clears the cache and then acknowledges.
//! - A writer, after its commit and before it answers, waits (the store's `settle`)
//!   until every replica with a live lease acknowledged its epoch, or
//!   [`LEASE`] passed: a replica that could not renew for that long has
//!   stopped answering from its cache by then, because it trusts its cache
//!   only until its last renewal was *sent* plus [`LEASE`] minus a margin,
//!   and only while its listener is connected. Trust that lapsed resumes
//!   only after a renewal that cleared the cache (a resynchronisation).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::KeyCache;
// How long a renewal keeps a replica's lease: the store's writers wait at
// most this long for the replicas' acknowledgements.
use crate::store::KEY_CACHE_LEASE as LEASE;

/// The channel the migration's trigger notifies; the payload is the new epoch.
const CHANNEL: &str = "keydeck_keycheck";
/// How often a replica renews its lease.
pub const HEARTBEAT: Duration = Duration::from_millis(200);
/// A replica stops trusting its cache this long before its lease ends.
const MARGIN: Duration = Duration::from_millis(100);
/// Lease rows of replicas gone for this long are deleted when a replica starts.
const FORGET_AFTER_MS: i64 = 3_600_000;
/// The database's clock in Unix milliseconds: every lease is read and written
/// against this one clock.
const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

struct Ctx {
    pool: PgPool,
    id: String,
    cache: Arc<KeyCache>,
    /// The newest epoch the cache was cleared for.
    cleared_for: AtomicI64,
    /// Whether the listener is connected and listening now.
    listening: AtomicBool,
    /// Bumped each time the listener is lost, so that a renewal that
    /// overlapped a loss does not restore trust.
    losses: AtomicU64,
}

/// Registers this replica's lease and starts the heartbeat and the listener.
pub async fn start(
    url: &str,
    cache: Arc<KeyCache>,
    stop: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(2))
        .connect(url)
        .await?;
    // Listening before registering: no change after registration is missed.
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    sqlx::query("DELETE FROM keycheck_replicas WHERE lease_until < $1")
        .bind(now_ms(&pool).await? - FORGET_AFTER_MS)
        .execute(&pool)
        .await?;
    let id = crate::service::new_id("rep_");
    let epoch: i64 = sqlx::query_scalar(&format!(
        "INSERT INTO keycheck_replicas (id, lease_until, acked) \
         VALUES ($1, {DB_NOW_MS} + $2, (SELECT epoch FROM keycheck_epoch WHERE id = 1)) \
         RETURNING acked"
    ))
    .bind(&id)
    .bind(lease_ms())
    .fetch_one(&pool)
    .await?;
    let ctx = Arc::new(Ctx {
        pool,
        id,
        cache,
        cleared_for: AtomicI64::new(epoch),
        listening: AtomicBool::new(true),
        losses: AtomicU64::new(0),
    });
    ctx.cache.clear();
    let heartbeat = tokio::spawn(heartbeat(ctx.clone(), stop.clone()));
    let listen = tokio::spawn(listen(ctx, listener, stop));
    Ok(vec![heartbeat, listen])
}

fn lease_ms() -> i64 {
    i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX)
}

async fn now_ms(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!("SELECT {DB_NOW_MS}"))
        .fetch_one(pool)
        .await
}

/// Clears the cache for `epoch` if it is newer than the last one, then
/// records the acknowledgement.
async fn acknowledge(ctx: &Ctx, epoch: i64) -> Result<(), sqlx::Error> {
    if epoch > ctx.cleared_for.load(Ordering::SeqCst) {
        let delay = ctx.cache.ack_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        ctx.cache.clear();
        ctx.cleared_for.fetch_max(epoch, Ordering::SeqCst);
    }
    sqlx::query("UPDATE keycheck_replicas SET acked = GREATEST(acked, $2) WHERE id = $1")
        .bind(&ctx.id)
        .bind(ctx.cleared_for.load(Ordering::SeqCst))
        .execute(&ctx.pool)
        .await?;
    Ok(())
}

/// Renews the lease every [`HEARTBEAT`], catching up with any epoch a lost
/// notice did not bring, and extends the cache's trust after each renewal.
async fn heartbeat(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let renew = format!(
        "INSERT INTO keycheck_replicas (id, lease_until, acked) VALUES ($1, {DB_NOW_MS} + $2, $3) \
         ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until, \
           acked = GREATEST(keycheck_replicas.acked, EXCLUDED.acked) \
         RETURNING (SELECT epoch FROM keycheck_epoch WHERE id = 1)"
    );
    let mut failing = false;
    loop {
        let losses = ctx.losses.load(Ordering::SeqCst);
        let listening = ctx.listening.load(Ordering::SeqCst);
        let sent = Instant::now();
        let renewed = tokio::time::timeout(LEASE - MARGIN, async {
            let epoch: i64 = sqlx::query_scalar(&renew)
                .bind(&ctx.id)
                .bind(lease_ms())
                .bind(ctx.cleared_for.load(Ordering::SeqCst))
                .fetch_one(&ctx.pool)
                .await?;
            // Trust that lapsed meanwhile (or never began) may have missed a
            // writer that did not wait for this replica: resynchronise.
            if !ctx.cache.trusted(Instant::now()) {
                ctx.cache.clear();
            }
            acknowledge(&ctx, epoch).await
        })
        .await;
        match renewed {
            Ok(Ok(())) => {
                failing = false;
                if listening
                    && ctx.listening.load(Ordering::SeqCst)
                    && ctx.losses.load(Ordering::SeqCst) == losses
                {
                    ctx.cache.trust_until(sent + LEASE - MARGIN);
                }
            }
            Ok(Err(e)) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot renew the key cache's lease; key checks go to the database until it is renewed");
                }
                failing = true;
            }
            Err(_) => {
                if !failing {
                    tracing::warn!("renewing the key cache's lease timed out; key checks go to the database until it is renewed");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            () = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
    ctx.cache.distrust();
    // Gone: writers need not wait for this replica any more (if the
    // database is away, its lease simply runs out).
    let forget = sqlx::query("DELETE FROM keycheck_replicas WHERE id = $1")
        .bind(&ctx.id)
        .execute(&ctx.pool);
    let _ = tokio::time::timeout(LEASE, forget).await;
    ctx.pool.close().await;
}

/// Clears and acknowledges on each notice. When the connection is lost the
/// cache stops answering at once; a new listener is set up, and trust comes
/// back with the next renewal after it.
async fn listen(ctx: Arc<Ctx>, mut listener: PgListener, mut stop: watch::Receiver<bool>) {
    loop {
        let received = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            received = listener.try_recv() => received,
        };
        match received {
            Ok(Some(notice)) => match notice.payload().parse::<i64>() {
                Ok(epoch) => {
                    if let Err(e) = acknowledge(&ctx, epoch).await {
                        tracing::debug!(error = %e, "could not acknowledge a key change; the next renewal will");
                    }
                }
                // Not ours to read: clear anyway; the renewal acknowledges.
                Err(_) => ctx.cache.clear(),
            },
            lost => {
                ctx.losses.fetch_add(1, Ordering::SeqCst);
                ctx.listening.store(false, Ordering::SeqCst);
                ctx.cache.distrust();
                match lost {
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the key change listener; key checks go to the database until it is back")
                    }
                    _ => tracing::warn!(
                        "lost the key change listener; key checks go to the database until it is back"
                    ),
                }
                listener = loop {
                    match relisten(&ctx.pool).await {
                        Ok(l) => break l,
                        Err(_) => {
                            tokio::select! {
                                _ = stop.wait_for(|stop| *stop) => return,
                                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            }
                        }
                    }
                };
                ctx.listening.store(true, Ordering::SeqCst);
                tracing::info!("key change listener back; the cache answers again after the next lease renewal");
            }
        }
    }
}

async fn relisten(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
