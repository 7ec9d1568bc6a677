//! Last-used times: recorded in memory on each successful key check and
//! written in batches, so the key check never writes to the database.
//!
//! While the database is away the batch stays in memory and is written when
//! it is back, merged with newer uses (the latest time per key wins). The
//! buffer holds at most [`MAX_PENDING`] keys; uses of further keys are dropped,
//! and the flush logs how many.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use foldhash::fast::RandomState;
use tokio::sync::watch;

use crate::store::Store;

/// Most keys whose last use is kept in memory, waiting to be written.
pub const MAX_PENDING: usize = 100_000;

#[derive(Default)]
pub struct LastUsed {
    /// By key id (the service's own ids: a fast hash will do).
    pending: Mutex<HashMap<String, DateTime<Utc>, RandomState>>,
    /// Uses dropped because the buffer was full, since the last flush.
    dropped: AtomicU64,
}

impl LastUsed {
    /// Notes a use; only the latest time per key is kept.
    pub fn record(&self, key_id: &str, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().expect("last-used lock");
        let full = pending.len() >= MAX_PENDING;
        match pending.get_mut(key_id) {
            Some(t) if *t >= at => {}
            Some(t) => *t = at,
            None if full => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                pending.insert(key_id.to_owned(), at);
            }
        }
    }

    /// A use not yet written, to show fresher data than the database has.
    pub fn pending(&self, key_id: &str) -> Option<DateTime<Utc>> {
        self.pending
            .lock()
            .expect("last-used lock")
            .get(key_id)
            .copied()
    }

    /// Writes what is pending. On failure the uses are put back for the next flush.
    pub async fn flush(&self, store: &dyn Store) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "last-used times dropped: {MAX_PENDING} keys were already waiting to be written"
            );
        }
        let mut batch: Vec<(String, DateTime<Utc>)> = {
            let mut pending = self.pending.lock().expect("last-used lock");
            if pending.is_empty() {
                return;
            }
            pending.drain().collect()
        };
        // In one order, so that flushes of several replicas, which each lock
        // their whole batch's rows in one transaction, cannot deadlock on
        // each other (and drag a revoke waiting on one of those rows along).
        batch.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Err(e) = store.record_last_used(&batch).await {
            tracing::warn!(error = %e, keys = batch.len(), "could not write last-used times; will retry");
            for (id, at) in batch {
                self.record(&id, at);
            }
        }
    }

    /// Flushes every `every` until `stop` changes, then once more.
    pub async fn run(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush(store.as_ref()).await,
                _ = stop.changed() => break,
            }
        }
        self.flush(store.as_ref()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_keeps_the_latest_use_and_is_bounded() {
        let uses = LastUsed::default();
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t1 = t0 + chrono::Duration::seconds(1);
        uses.record("key_a", t1);
        uses.record("key_a", t0);
        assert_eq!(uses.pending("key_a"), Some(t1));
        for i in 1..MAX_PENDING + 10 {
            uses.record(&format!("key_{i}"), t0);
        }
        assert_eq!(uses.pending.lock().unwrap().len(), MAX_PENDING);
        assert_eq!(uses.dropped.load(Ordering::Relaxed), 10);
        // A key already waiting still moves forward when the buffer is full.
        uses.record("key_a", t1 + chrono::Duration::seconds(1));
        assert!(uses.pending("key_a") > Some(t1));
    }
}
