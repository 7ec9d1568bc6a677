//! Failed-check limiting across PostgreSQL replicas: failures are added to a
//! counter in the database (in batches, off the request path); when a client's
//! total reaches the limit, every replica locks it out, told by `NOTIFY`.
//! Good key checks never touch the database for this.
//!
//! If the database or the listener is away, each replica still limits on its
//! own count; and a replica whose own write finds the total at or above the
//! limit locks the client at once, so a lost notice costs at most one more
//! failure per replica. After its listener reconnects, a replica reloads the
//! current locks, as it does at start (so a restart does not reset them).
//! The SQL is the store's ([`Replicas`]), on the store's pool.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::DateTime;
use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::rate_limit::{AddrKey, FailureLimiter};
use crate::clock::Clock;
use crate::store::{Channel, Replicas};
/// Failures waiting to be written; past this they count on this replica only.
const QUEUE: usize = 8192;
/// Failures written per transaction at most.
const BATCH: usize = 512;
/// How often rows of ended windows are deleted.
const CLEANUP_EVERY: StdDuration = StdDuration::from_secs(60);

/// Hands failures to the background writer; never waits.
pub struct SharedLimit {
    tx: mpsc::Sender<AddrKey>,
}

impl SharedLimit {
    pub fn report(&self, key: AddrKey) {
        // A full queue (a flood, or the database away): this failure then
        // counts on this replica only.
        let _ = self.tx.try_send(key);
    }
}

#[derive(Clone)]
struct Ctx {
    replicas: Replicas,
    limiter: Arc<FailureLimiter>,
    clock: Arc<dyn Clock>,
}

/// Starts listening, loads the current locks into `limiter`, then runs the
/// writer and the listener until `stop`.
pub async fn start(
    replicas: Replicas,
    limiter: Arc<FailureLimiter>,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) -> Result<(SharedLimit, Vec<JoinHandle<()>>), sqlx::Error> {
    let ctx = Ctx {
        replicas,
        limiter,
        clock,
    };
    // Listening before loading: a lock decided in between is not missed.
    let listener = ctx.replicas.listen(Channel::FailureLocks).await?;
    load_locks(&ctx).await?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let writer = tokio::spawn(write_failures(ctx.clone(), rx, stop.clone()));
    let listen = tokio::spawn(listen_for_locks(ctx, listener, stop));
    Ok((SharedLimit { tx }, vec![writer, listen]))
}

/// Locks every client whose shared total is at the limit in a current window.
async fn load_locks(ctx: &Ctx) -> Result<usize, sqlx::Error> {
    let window = ctx.limiter.window();
    let now = ctx.clock.now();
    let rows = ctx
        .replicas
        .failure_locks(
            i64::from(ctx.limiter.max()),
            (now - window).timestamp_millis(),
        )
        .await?;
    let mut locked = 0;
    for (addr, start) in rows {
        let until = DateTime::from_timestamp_millis(start).map(|t| t + window);
        let (Ok(key), Some(until)) = (addr.parse::<AddrKey>(), until) else {
            continue;
        };
        ctx.limiter.lock(key, until);
        locked += 1;
    }
    Ok(locked)
}

async fn write_failures(
    ctx: Ctx,
    mut rx: mpsc::Receiver<AddrKey>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut last_cleanup = Instant::now();
    loop {
        let stopping = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n == 0,
            _ = stop.wait_for(|stop| *stop) => {
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(key) => batch.push(key),
                        Err(_) => break,
                    }
                }
                true
            }
        };
        if !batch.is_empty() {
            let mut counts: HashMap<AddrKey, i64> = HashMap::new();
            for key in batch.drain(..) {
                *counts.entry(key).or_default() += 1;
            }
            if let Err(e) = add_failures(&ctx, counts).await {
                tracing::warn!(error = %e, "could not add failed checks to the shared counter; they count on this replica only");
            }
        }
        if stopping {
            break;
        }
        if last_cleanup.elapsed() >= CLEANUP_EVERY {
            last_cleanup = Instant::now();
            let ended = (ctx.clock.now() - ctx.limiter.window()).timestamp_millis();
            if let Err(e) = ctx.replicas.forget_failures(ended).await {
                tracing::warn!(error = %e, "could not delete ended failed-check windows");
            }
        }
    }
}

/// Adds each client's failures to its shared window (restarting an ended
/// one), locks the clients at the limit here, and tells the other replicas
/// about those that just reached it.
async fn add_failures(ctx: &Ctx, counts: HashMap<AddrKey, i64>) -> Result<(), sqlx::Error> {
    let now = ctx.clock.now().timestamp_millis();
    let window_ms = ctx.limiter.window().num_milliseconds();
    let max = i64::from(ctx.limiter.max());
    // One order for every replica, so concurrent batches cannot deadlock.
    let mut counts: Vec<(AddrKey, (String, i64))> = counts
        .into_iter()
        .map(|(key, n)| (key, (key.to_string(), n)))
        .collect();
    counts.sort_unstable_by(|a, b| a.1 .0.cmp(&b.1 .0));
    let (keys, rows): (Vec<AddrKey>, Vec<(String, i64)>) = counts.into_iter().unzip();
    let lock = |i: usize, until: i64| {
        if let Some(at) = DateTime::from_timestamp_millis(until) {
            ctx.limiter.lock(keys[i], at);
        }
    };
    ctx.replicas
        .add_failures(&rows, now, window_ms, max, lock)
        .await
}

async fn listen_for_locks(ctx: Ctx, mut listener: PgListener, mut stop: watch::Receiver<bool>) {
    let mut reload = false;
    loop {
        let mut backoff = false;
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            received = listener.try_recv() => match received {
                Ok(Some(notice)) => apply_notice(&ctx, notice.payload()),
                Ok(None) => {
                    tracing::warn!("lost the connection that hears lock notices; reconnecting");
                    reload = true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot hear lock notices from other replicas; retrying in 1 s");
                    reload = true;
                    backoff = true;
                }
            }
        }
        if backoff {
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
            }
        }
        if reload {
            match load_locks(&ctx).await {
                Ok(n) => {
                    tracing::info!(locked = n, "reloaded failed-check locks");
                    reload = false;
                }
                Err(e) => tracing::warn!(error = %e, "could not reload failed-check locks"),
            }
        }
    }
}

fn apply_notice(ctx: &Ctx, payload: &str) {
    let parsed = payload.split_once(' ').and_then(|(addr, until)| {
        let key = addr.parse::<AddrKey>().ok()?;
        let until = DateTime::from_timestamp_millis(until.parse().ok()?)?;
        Some((key, until))
    });
    match parsed {
        Some((key, until)) => ctx.limiter.lock(key, until),
        None => tracing::debug!("ignored a malformed lock notice"),
    }
}
