//! Last-used times: recorded in memory on each successful key check and
//! written in batches, so the key check never writes to the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::store::Store;

#[derive(Default)]
pub struct LastUsed {
    pending: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl LastUsed {
    /// Notes a use; only the latest time per key is kept.
    pub fn record(&self, key_id: &str, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().expect("last-used lock");
        match pending.get_mut(key_id) {
            Some(t) if *t >= at => {}
            Some(t) => *t = at,
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
        let batch: Vec<(String, DateTime<Utc>)> = {
            let mut pending = self.pending.lock().expect("last-used lock");
            if pending.is_empty() {
                return;
            }
            pending.drain().collect()
        };
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
