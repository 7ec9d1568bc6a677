//! Webhook retention: the worker deletes delivered (or given-up) events and
//! their deliveries once they are older than the retention, in small
//! batches, at most once a minute of the service's clock. An event with a
//! delivery still pending (retrying, or waiting for a disabled endpoint) is
//! never pruned; nor a time-based event while it still makes itself happen once.

use chrono::{DateTime, Duration, Utc};

use crate::store::Store;

/// Events deleted per transaction.
const BATCH: u32 = 500;
/// Batches per pass at most: a backlog goes over a few passes, never in one long one.
const MAX_BATCHES: u32 = 20;

/// When the outbox was last pruned (of the service's clock).
#[derive(Debug, Default)]
pub struct Pruner {
    last: Option<DateTime<Utc>>,
}

impl Pruner {
    /// Prunes what is older than `retention` at `now`, unless it did less
    /// than a minute ago. How many events went.
    pub async fn run(&mut self, store: &dyn Store, now: DateTime<Utc>, retention: Duration) -> u64 {
        // A clock set back prunes again at once.
        if self
            .last
            .is_some_and(|t| t <= now && now - t < Duration::minutes(1))
        {
            return 0;
        }
        self.last = Some(now);
        let before = now - retention;
        let mut pruned = 0;
        for _ in 0..MAX_BATCHES {
            match store.webhooks().prune_events(before, now, BATCH).await {
                Ok(n) => {
                    pruned += n;
                    if n < u64::from(BATCH) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: cannot prune delivered events");
                    break;
                }
            }
        }
        if pruned > 0 {
            tracing::debug!(events = pruned, "webhooks: delivered events pruned");
        }
        pruned
    }
}
