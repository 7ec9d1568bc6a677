//! Notifications (issue 24): signed webhooks from the transactional outbox
//! the store writes with every change (`store/webhooks.rs`). The worker here
//! makes the time-based events, claims due deliveries and sends them, and
//! prunes what was delivered longer ago than the retention; `api.rs` is
//! `/v1/webhooks`.

pub mod api;
mod deliver;
mod produce;
mod prune;
pub mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::store::Store;

pub use deliver::{retry_at, GIVE_UP_AFTER};

/// How `keydeck serve` runs webhooks.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Let endpoints be private, loopback or link-local addresses (and plain
    /// http to loopback): for tests and closed networks.
    pub allow_private: bool,
    /// How often due deliveries are looked for.
    pub poll: Duration,
    /// How often the time-based events are looked for.
    pub scan: Duration,
    /// The hour (UTC, 0-23) from which each organisation's daily digest is sent.
    pub digest_hour: u32,
    /// How long delivered (or given-up) events and their deliveries are kept.
    pub retention: chrono::Duration,
}

/// [`WebhookConfig::retention`] by default.
pub const DEFAULT_RETENTION: chrono::Duration = chrono::Duration::days(7);

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            poll: Duration::from_secs(1),
            scan: Duration::from_secs(60),
            digest_hour: 8,
            retention: DEFAULT_RETENTION,
        }
    }
}

/// The worker: until `stop`, every `poll` sends what is due, every `scan`
/// makes the time-based events and prunes (at most once a minute of `clock`).
pub fn start(
    config: WebhookConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let sender = deliver::Sender::new(config.allow_private);
        let mut last_scan: Option<Instant> = None;
        let mut pruner = prune::Pruner::default();
        loop {
            if *stop.borrow() {
                return;
            }
            let scan = last_scan.is_none_or(|t| t.elapsed() >= config.scan);
            if scan {
                last_scan = Some(Instant::now());
            }
            let work = async {
                if scan {
                    let now = clock.now();
                    if let Err(e) = produce::scan(store.as_ref(), now, config.digest_hour).await {
                        tracing::warn!(error = %e, "webhooks: cannot make the time-based events");
                    }
                    pruner.run(store.as_ref(), now, config.retention).await;
                }
                deliver::run_due(&store, &clock, &sender).await;
            };
            // Stopping drops a send in flight: its lease runs out and it is
            // sent again (at least once), by this replica or another.
            tokio::select! {
                () = work => {}
                _ = stop.changed() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(config.poll) => {}
                _ = stop.changed() => return,
            }
        }
    })
}
