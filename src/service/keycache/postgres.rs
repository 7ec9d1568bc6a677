//! The key cache's watcher on PostgreSQL, where several replicas share one
//! database: leases, `LISTEN`/`NOTIFY` and acknowledgements (their SQL is
//! the store's [`Replicas`], on the store's pool).
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

use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::KeyCache;
// How long a renewal keeps a replica's lease: the store's writers wait at
// most this long for the replicas' acknowledgements.
use crate::store::KEY_CACHE_LEASE as LEASE;
use crate::store::{Channel, Replicas};
/// How often a replica renews its lease.
pub const HEARTBEAT: Duration = Duration::from_millis(200);
/// A replica stops trusting its cache this long before its lease ends.
const MARGIN: Duration = Duration::from_millis(100);
/// Lease rows of replicas gone for this long are deleted when a replica starts.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

struct Ctx {
    replicas: Replicas,
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
    replicas: Replicas,
    cache: Arc<KeyCache>,
    stop: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, sqlx::Error> {
    // Listening before registering: no change after registration is missed.
    let listener = replicas.listen(Channel::KeyChanges).await?;
    let id = crate::key::new_id("rep_");
    let epoch = replicas.join(&id, LEASE, FORGET_AFTER).await?;
    let ctx = Arc::new(Ctx {
        replicas,
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
    ctx.replicas
        .acknowledge(&ctx.id, ctx.cleared_for.load(Ordering::SeqCst))
        .await
}

/// Renews the lease every [`HEARTBEAT`], catching up with any epoch a lost
/// notice did not bring, and extends the cache's trust after each renewal.
async fn heartbeat(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut failing = false;
    loop {
        let losses = ctx.losses.load(Ordering::SeqCst);
        let listening = ctx.listening.load(Ordering::SeqCst);
        let sent = Instant::now();
        let renewed = tokio::time::timeout(LEASE - MARGIN, async {
            let acked = ctx.cleared_for.load(Ordering::SeqCst);
            let epoch = ctx.replicas.renew(&ctx.id, LEASE, acked).await?;
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
    // database is away, its lease simply runs out). The pool is the
    // store's: it closes with the store.
    let _ = tokio::time::timeout(LEASE, ctx.replicas.leave(&ctx.id)).await;
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
                    let relistened = tokio::select! {
                        _ = stop.wait_for(|stop| *stop) => return,
                        l = ctx.replicas.listen(Channel::KeyChanges) => l,
                    };
                    match relistened {
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
