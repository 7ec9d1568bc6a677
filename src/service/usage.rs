//! Key usage (issue 22): every key check counted in memory by key, minute
//! and outcome, with the key's client addresses, and written in batches
//! (like last-used times): the key check itself never writes to the
//! database. A check costs a hash, one of [`SHARDS`] locks and an increment;
//! it allocates only for a key (or an address) not yet seen since the last
//! flush.
//!
//! Memory is bounded: at most [`MAX_TRACKED_KEYS`] keys between flushes,
//! [`MAX_MINUTES_PER_KEY`] minute buckets and [`MAX_ADDRESSES_PER_KEY`]
//! addresses each; checks past a bound are dropped and the flush logs how
//! many. A batch the database refused is kept for the next flush (one batch).
//!
//! The flusher also prunes old rows (minute rows after 48 h, hour rows and
//! addresses after 90 days, by default) and writes the
//! `api_key.new_address` audit entries, rate-limited per key.
//!
//! And it keeps the `refused` health badge's mark on the keys
//! (`UsageStore::refresh_refusals`): after each write, for the keys the
//! batch refused a check of and the batch's keys already marked (good
//! checks may outnumber the refusals now); once a minute, with the pruning,
//! for every key marked, so a mark comes off within a minute of its
//! refusals ageing out of the 24 h.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use foldhash::fast::RandomState;
use tokio::sync::watch;

use crate::audit_action::AuditAction;
use crate::clock::Clock;
use crate::key::health::REFUSED_WINDOW_HOURS;
use crate::store::usage::{AddressUse, UsageBatch, UsageRow};
use crate::store::{AuditEvent, Store};

/// Locks the counters are spread over (by key id).
pub const SHARDS: usize = 16;
/// Most keys counted between two flushes; checks of further keys are dropped.
pub const MAX_TRACKED_KEYS: usize = 50_000;
/// Most minute buckets a key holds between flushes (more only while the database is away).
pub const MAX_MINUTES_PER_KEY: usize = 8;
/// Most distinct addresses a key holds between flushes.
pub const MAX_ADDRESSES_PER_KEY: usize = 10;

const MINUTE_MS: i64 = 60_000;

/// What a check of a known key came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Valid = 0,
    InsufficientScope = 1,
    Expired = 2,
    Revoked = 3,
    RateLimited = 4,
}

/// How usage is kept.
#[derive(Debug, Clone)]
pub struct UsageSettings {
    /// How often counts are written (at most 2 s: a `kill -9` loses at most this much).
    pub flush: Duration,
    /// How long minute rows are kept.
    pub minute_retention: chrono::Duration,
    /// How long hour rows (and addresses) are kept.
    pub hour_retention: chrono::Duration,
    /// A good use from an address the key was not seen from for this long is audited.
    pub new_address_after: chrono::Duration,
    /// At most this many `api_key.new_address` entries per key per window (0: none).
    pub new_address_audits: u32,
    pub new_address_window: chrono::Duration,
}

impl Default for UsageSettings {
    fn default() -> Self {
        Self {
            flush: Duration::from_secs(1),
            minute_retention: chrono::Duration::hours(48),
            hour_retention: chrono::Duration::days(90),
            new_address_after: chrono::Duration::days(30),
            new_address_audits: 5,
            new_address_window: chrono::Duration::hours(1),
        }
    }
}

struct AddrUse {
    ip: IpAddr,
    first: i64,
    last: i64,
    uses: u32,
    valid: bool,
}

struct Entry {
    org_id: Box<str>,
    /// (minute start in ms, counts by [`Outcome`]).
    minutes: Vec<(i64, [u32; 5])>,
    addrs: Vec<AddrUse>,
}

#[derive(Default)]
struct Shard {
    /// Key ids are the service's own (only found keys are counted): a fast hash will do.
    keys: HashMap<Box<str>, Entry, RandomState>,
}

/// The counters, shared by every request.
pub struct Usage {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// Well-formed keys that matched nothing, by minute.
    unknown: Mutex<Vec<(i64, u32)>>,
    tracked: AtomicUsize,
    dropped: AtomicU64,
    /// A batch the database refused, written with the next one.
    retry: Mutex<Option<UsageBatch>>,
    last_prune: Mutex<Option<DateTime<Utc>>>,
    /// When the marked keys were last re-read (first a minute after start:
    /// the marks are in the database, and a start is busy enough).
    last_sweep: Mutex<Option<DateTime<Utc>>>,
    settings: UsageSettings,
}

impl Usage {
    pub fn new(settings: UsageSettings) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
            unknown: Mutex::default(),
            tracked: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            retry: Mutex::default(),
            last_prune: Mutex::default(),
            last_sweep: Mutex::default(),
            settings,
        }
    }

    /// Counts a check of a known key from `addr`.
    pub fn record(
        &self,
        key_id: &str,
        org_id: &str,
        outcome: Outcome,
        addr: IpAddr,
        now: DateTime<Utc>,
    ) {
        let at = now.timestamp_millis();
        let minute = at.div_euclid(MINUTE_MS) * MINUTE_MS;
        let shard = self.hasher.hash_one(key_id) as usize % SHARDS;
        let mut shard = self.shards[shard].lock().expect("usage lock");
        let entry = match shard.keys.get_mut(key_id) {
            Some(entry) => entry,
            None => {
                if self.tracked.fetch_add(1, Ordering::Relaxed) >= MAX_TRACKED_KEYS {
                    self.tracked.fetch_sub(1, Ordering::Relaxed);
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                shard.keys.entry(key_id.into()).or_insert_with(|| Entry {
                    org_id: org_id.into(),
                    minutes: Vec::with_capacity(2),
                    addrs: Vec::with_capacity(1),
                })
            }
        };
        let valid = outcome == Outcome::Valid;
        let full = entry.minutes.len() >= MAX_MINUTES_PER_KEY;
        match entry.minutes.iter_mut().rev().find(|(m, _)| *m == minute) {
            Some((_, counts)) => counts[outcome as usize] += 1,
            None if full => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                let mut counts = [0; 5];
                counts[outcome as usize] = 1;
                entry.minutes.push((minute, counts));
            }
        }
        let full = entry.addrs.len() >= MAX_ADDRESSES_PER_KEY;
        match entry.addrs.iter_mut().find(|a| a.ip == addr) {
            Some(a) => {
                a.uses += 1;
                a.last = a.last.max(at);
                a.valid |= valid;
            }
            None if full => {}
            None => entry.addrs.push(AddrUse {
                ip: addr,
                first: at,
                last: at,
                uses: 1,
                valid,
            }),
        }
    }

    /// Counts a well-formed key that matched nothing.
    pub fn record_unknown(&self, now: DateTime<Utc>) {
        let minute = now.timestamp_millis().div_euclid(MINUTE_MS) * MINUTE_MS;
        let mut unknown = self.unknown.lock().expect("usage lock");
        let full = unknown.len() >= MAX_MINUTES_PER_KEY;
        match unknown.iter_mut().rev().find(|(m, _)| *m == minute) {
            Some((_, n)) => *n += 1,
            None if full => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            None => unknown.push((minute, 1)),
        }
    }

    /// Takes what was counted since the last call, as rows and addresses
    /// sorted by key (so that replicas lock rows in one order).
    fn take(&self) -> UsageBatch {
        let mut batch = UsageBatch::default();
        for shard in self.shards.iter() {
            let keys = std::mem::take(&mut shard.lock().expect("usage lock").keys);
            self.tracked.fetch_sub(keys.len(), Ordering::Relaxed);
            for (key_id, entry) in keys {
                for (minute, c) in entry.minutes {
                    let mut counts = [0; 6];
                    for (to, from) in counts.iter_mut().zip(c) {
                        *to = i64::from(from);
                    }
                    batch.rows.push(UsageRow {
                        key_id: key_id.to_string(),
                        org_id: entry.org_id.to_string(),
                        minute_ms: minute,
                        counts,
                    });
                }
                for a in entry.addrs {
                    batch.addresses.push(AddressUse {
                        key_id: key_id.to_string(),
                        org_id: entry.org_id.to_string(),
                        addr: a.ip.to_string(),
                        first_ms: a.first,
                        last_ms: a.last,
                        uses: i64::from(a.uses),
                        valid: a.valid,
                    });
                }
            }
        }
        for (minute, n) in std::mem::take(&mut *self.unknown.lock().expect("usage lock")) {
            batch.rows.push(UsageRow {
                key_id: String::new(),
                org_id: String::new(),
                minute_ms: minute,
                counts: [0, 0, 0, 0, 0, i64::from(n)],
            });
        }
        batch
            .rows
            .sort_unstable_by(|a, b| (&a.key_id, a.minute_ms).cmp(&(&b.key_id, b.minute_ms)));
        batch
            .addresses
            .sort_unstable_by(|a, b| (&a.key_id, &a.addr).cmp(&(&b.key_id, &b.addr)));
        batch
    }

    /// Writes what was counted, then the new-address audit entries, and
    /// prunes once a minute (of the service's clock).
    pub async fn flush(&self, store: &dyn Store, clock: &dyn Clock) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "key checks not counted: usage memory bounds reached (see README, Usage)"
            );
        }
        let now = clock.now();
        let mut batch = self.take();
        if let Some(earlier) = self.retry.lock().expect("usage lock").take() {
            let mut rows = earlier.rows;
            rows.append(&mut batch.rows);
            let mut addresses = earlier.addresses;
            addresses.append(&mut batch.addresses);
            batch.rows = rows;
            batch.addresses = addresses;
            batch
                .rows
                .sort_by(|a, b| (&a.key_id, a.minute_ms).cmp(&(&b.key_id, b.minute_ms)));
            batch
                .addresses
                .sort_by(|a, b| (&a.key_id, &a.addr).cmp(&(&b.key_id, &b.addr)));
        }
        if !batch.rows.is_empty() {
            batch.new_before_ms = (now - self.settings.new_address_after).timestamp_millis();
            match store.usage().record_usage(&batch).await {
                Ok(new) => {
                    for n in new {
                        self.audit_new_address(store, &n, now).await;
                    }
                    self.refresh_batch(store, &batch, now).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, rows = batch.rows.len(), "could not write key usage; will retry");
                    let cap = MAX_TRACKED_KEYS * MAX_MINUTES_PER_KEY;
                    if batch.rows.len() > cap {
                        batch.rows.truncate(cap);
                    }
                    *self.retry.lock().expect("usage lock") = Some(batch);
                }
            }
        }
        self.prune(store, now).await;
    }

    /// Marks or unmarks the batch's keys that may have changed: those it
    /// refused a check of, and those already marked (good checks may have
    /// outnumbered their refusals), read from the small index of the marked.
    async fn refresh_batch(&self, store: &dyn Store, batch: &UsageBatch, now: DateTime<Utc>) {
        let marked: std::collections::HashSet<String> =
            match store.usage().refused_keys(now.timestamp_millis()).await {
                Ok(marked) => marked.into_iter().collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the keys marked refused");
                    Default::default()
                }
            };
        let mut keys: Vec<String> = batch
            .rows
            .iter()
            .filter(|r| !r.key_id.is_empty())
            .filter(|r| r.counts[1..5].iter().any(|&n| n > 0) || marked.contains(&r.key_id))
            .map(|r| r.key_id.clone())
            .collect();
        keys.dedup();
        refresh_refusals(store, &keys, now).await;
    }

    async fn audit_new_address(
        &self,
        store: &dyn Store,
        n: &crate::store::usage::NewAddress,
        now: DateTime<Utc>,
    ) {
        let max = self.settings.new_address_audits;
        if max == 0 {
            return;
        }
        let cut = (now - self.settings.new_address_window).timestamp_millis();
        let claimed = store
            .usage()
            .claim_new_address_audit(&n.key_id, now.timestamp_millis(), cut, i64::from(max))
            .await;
        match claimed {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not note a key's new address");
                return;
            }
        }
        let at = DateTime::from_timestamp_millis(n.at_ms).unwrap_or(now);
        let event = AuditEvent {
            org_id: n.org_id.clone(),
            at,
            actor_kind: "api_key".into(),
            actor_id: n.key_id.clone(),
            actor_name: n.key_id.clone(),
            action: AuditAction::ApiKeyNewAddress.as_str().into(),
            api_key_id: n.key_id.clone(),
            remote_addr: Some(n.addr.clone()),
            details: serde_json::json!({
                "address": n.addr,
                "not_seen_for_days": self.settings.new_address_after.num_days(),
            }),
        };
        if let Err(e) = store.record_audit(&event).await {
            tracing::warn!(error = %e, "could not write a key's new-address audit entry");
        }
    }

    async fn prune(&self, store: &dyn Store, now: DateTime<Utc>) {
        {
            let mut last = self.last_prune.lock().expect("usage lock");
            if last.is_some_and(|t| now - t < chrono::Duration::minutes(1) && t <= now) {
                return;
            }
            *last = Some(now);
        }
        let minutes = (now - self.settings.minute_retention).timestamp_millis();
        let hours = (now - self.settings.hour_retention).timestamp_millis();
        match store.usage().prune_usage(minutes, hours).await {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "old key usage pruned"),
            Err(e) => tracing::warn!(error = %e, "could not prune key usage"),
        }
        {
            let mut last = self.last_sweep.lock().expect("usage lock");
            let due = last.is_some_and(|t| now - t >= chrono::Duration::minutes(1) || t > now);
            if last.is_none() {
                *last = Some(now);
            }
            if !due {
                return;
            }
            *last = Some(now);
        }
        match store.usage().refused_keys(now.timestamp_millis()).await {
            Ok(marked) => refresh_refusals(store, &marked, now).await,
            Err(e) => tracing::warn!(error = %e, "could not read the keys marked refused"),
        }
    }

    /// Flushes every `settings.flush` until `stop` changes, then once more.
    pub async fn run(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(self.settings.flush);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush(store.as_ref(), clock.as_ref()).await,
                _ = stop.changed() => break,
            }
        }
        self.flush(store.as_ref(), clock.as_ref()).await;
    }
}

/// Marks (or unmarks) `key_ids` by their checks of the last 24 h.
async fn refresh_refusals(store: &dyn Store, key_ids: &[String], now: DateTime<Utc>) {
    if key_ids.is_empty() {
        return;
    }
    let since = now - chrono::Duration::hours(REFUSED_WINDOW_HOURS);
    let refreshed = store
        .usage()
        .refresh_refusals(key_ids, since.timestamp_millis(), now.timestamp_millis())
        .await;
    match refreshed {
        Ok(0) => {}
        Ok(keys) => tracing::debug!(keys, "keys' refused marks written"),
        Err(e) => tracing::warn!(error = %e, "could not mark mostly refused keys"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_minute_and_outcome_and_stays_bounded() {
        let usage = Usage::new(UsageSettings::default());
        let t0 = DateTime::from_timestamp(1_700_000_040, 0).unwrap();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        usage.record("key_a", "org_1", Outcome::Valid, a, t0);
        usage.record("key_a", "org_1", Outcome::Valid, a, t0);
        usage.record("key_a", "org_1", Outcome::Revoked, a, t0);
        // The next minute is a bucket of its own.
        usage.record(
            "key_a",
            "org_1",
            Outcome::InsufficientScope,
            a,
            t0 + chrono::Duration::seconds(60),
        );
        for i in 0..50u8 {
            usage.record(
                "key_a",
                "org_1",
                Outcome::Valid,
                IpAddr::from([10, 1, 0, i]),
                t0,
            );
        }
        usage.record_unknown(t0);
        let batch = usage.take();
        assert_eq!(batch.rows.len(), 3, "{:?}", batch.rows);
        assert_eq!(batch.rows[0].key_id, "");
        assert_eq!(batch.rows[0].counts[5], 1);
        assert_eq!(batch.rows[1].counts, [52, 0, 0, 1, 0, 0]);
        assert_eq!(batch.rows[2].counts, [0, 1, 0, 0, 0, 0]);
        assert_eq!(batch.addresses.len(), MAX_ADDRESSES_PER_KEY);
        assert_eq!(usage.tracked.load(Ordering::Relaxed), 0);

        for i in 0..MAX_TRACKED_KEYS + 5 {
            usage.record(&format!("key_{i}"), "org_1", Outcome::Valid, a, t0);
        }
        assert_eq!(usage.dropped.load(Ordering::Relaxed), 5);
        assert_eq!(usage.take().rows.len(), MAX_TRACKED_KEYS);
    }
}
