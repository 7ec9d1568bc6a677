//! The key check's lookup by digest as a decorator over the store
//! ([`KeyLookup`]), with the positive key cache it owns: found keys by
//! digest, so that a key check costs no database round trip while nothing
//! changed, and a change (revoke, rotation, plan change) is refused on the
//! very next request. Every rule of the cache lives in this module: the
//! lookup, the store's key-write hook that clears it, and the watchers.
//!
//! The cache answers only while it is *trusted*: a watcher ([`sqlite`] or
//! [`postgres`]) extends the trust as long as it can see every change made
//! by other connections, and clears the cache before trust resumes after a
//! gap. Every clear bumps a generation; a record read from the store is
//! inserted only if no clear happened since its lookup started, so a lookup
//! racing a change never puts the old answer back. Expiry is not cached
//! away: the key check compares the record's `expires_at` with the clock at
//! every request.

pub mod postgres;
pub mod sqlite;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use foldhash::fast::RandomState;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::key_answer::AnswerHeaders;
use super::negative::NegativeCache;
use crate::store::{self, AuthRecord, Backend, Hooks, Store, StoreResult};

/// Records kept at most (over all shards); past it a shard drops an arbitrary one.
pub const MAX_ENTRIES: usize = 65_536;
const SHARDS: usize = 16;

type Digest = [u8; 32];

/// A found key as the key check hands it out: the stored record, and the
/// values of forward-auth's answer headers, made once when the record is
/// read from the store rather than at every check it answers.
#[derive(Debug)]
pub struct CheckedKey {
    pub record: AuthRecord,
    pub answer: AnswerHeaders,
}

impl CheckedKey {
    pub fn new(record: AuthRecord) -> Self {
        let answer = AnswerHeaders::of(&record);
        Self { record, answer }
    }
}

/// A checked key reads as its record (`key.id`, `key.scopes`).
impl Deref for CheckedKey {
    type Target = AuthRecord;

    fn deref(&self) -> &AuthRecord {
        &self.record
    }
}

type Shard = HashMap<Digest, Arc<CheckedKey>, RandomState>;

/// Counts since start, for tests and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyCacheStats {
    /// Key checks answered from the cache.
    pub hits: u64,
    /// Key checks that went to the store (cache cold, cleared, or not trusted).
    pub misses: u64,
    /// Times the cache was cleared (own writes, other writers, resynchronisation).
    pub clears: u64,
}

/// The key check's lookup by digest: the cache first; on a miss, digests
/// not found lately ([`super::negative`]), then the store, whose answer is
/// kept under the generation rule. What the service calls; the store's own
/// writes clear the cache through its key-write hook before they answer.
pub struct KeyLookup {
    store: Arc<dyn Store>,
    cache: Arc<KeyCache>,
    /// Digests recently looked up and not found.
    missing: NegativeCache,
}

impl KeyLookup {
    /// Opens the store with `hooks` and the cache's key-write hook;
    /// `enabled = false` makes every check go to the store (the comparison
    /// knob). The store is returned for everything else the service does.
    pub async fn open(
        backend: &Backend,
        mut hooks: Hooks,
        enabled: bool,
    ) -> StoreResult<(Arc<dyn Store>, Self)> {
        let cache = Arc::new(KeyCache::new(enabled));
        hooks.key_writes = Some(cache.clone());
        let store = backend.connect(hooks).await?;
        let lookup = Self {
            store: store.clone(),
            cache,
            missing: NegativeCache::default(),
        };
        Ok((store, lookup))
    }

    /// The key with this digest, as the store has it now (or as it had it
    /// with no change since).
    pub async fn by_digest(&self, digest: &Digest) -> StoreResult<Option<Arc<CheckedKey>>> {
        if let Some(cached) = self.cache.get(digest) {
            return Ok(Some(cached));
        }
        let at = Instant::now();
        if self.missing.contains(digest, at) {
            return Ok(None);
        }
        let generation = self.cache.generation();
        let found = self
            .store
            .key_by_digest(digest)
            .await?
            .map(|record| Arc::new(CheckedKey::new(record)));
        match &found {
            Some(key) => self.cache.insert(*digest, key.clone(), generation),
            None => self.missing.insert(*digest, at),
        }
        Ok(found)
    }

    /// The key with this digest if the cache holds it now; never the store
    /// (for counting a check refused before its lookup, see `usage`).
    pub fn cached(&self, digest: &Digest) -> Option<Arc<CheckedKey>> {
        self.cache.get(digest)
    }

    /// Starts the watcher for the store's database (none when the cache is
    /// off); until it vouches for the cache, every key check goes to the store.
    pub async fn watch(
        &self,
        stop: watch::Receiver<bool>,
    ) -> Result<Vec<JoinHandle<()>>, sqlx::Error> {
        if !self.cache.enabled() {
            return Ok(Vec::new());
        }
        let cache = self.cache.clone();
        match self.store.watch() {
            store::Watch::Postgres(replicas) => postgres::start(replicas, cache, stop).await,
            store::Watch::Sqlite(versions) => {
                Ok(vec![sqlite::start(&versions, cache, stop).await?])
            }
        }
    }

    pub fn stats(&self) -> KeyCacheStats {
        self.cache.stats()
    }

    /// Fault injection for tests (see [`KeyCache::set_ack_delay`]).
    #[doc(hidden)]
    pub fn set_ack_delay(&self, delay: std::time::Duration) {
        self.cache.set_ack_delay(delay);
    }
}

/// Found keys by digest, served only while a watcher vouches for them.
pub struct KeyCache {
    enabled: bool,
    /// Shared records: a hit costs a reference count, not a copy of the key.
    /// Digests are SHA-256 outputs no client can choose, so a fast hash will do.
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    hasher: RandomState,
    generation: AtomicU64,
    /// When `trusted_until_us` counts from.
    epoch: Instant,
    /// Microseconds from `epoch` until which cached records may be served; 0: not trusted.
    trusted_until_us: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    clears: AtomicU64,
    /// Fault injection for tests: how long a watcher waits before it lets go
    /// of a change another replica made (milliseconds).
    ack_delay_ms: AtomicU64,
}

impl KeyCache {
    /// A cache; `enabled = false` makes every check go to the store (the comparison knob).
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: MAX_ENTRIES.div_ceil(SHARDS),
            hasher: RandomState::default(),
            generation: AtomicU64::new(0),
            epoch: Instant::now(),
            trusted_until_us: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            clears: AtomicU64::new(0),
            ack_delay_ms: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn stats(&self) -> KeyCacheStats {
        KeyCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            clears: self.clears.load(Ordering::Relaxed),
        }
    }

    fn shard(&self, digest: &Digest) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(digest) as usize) % SHARDS;
        // A poisoned lock only means a panic elsewhere mid-update; clear the
        // shard rather than trust what it holds.
        self.shards[i].lock().unwrap_or_else(|e| {
            let mut shard = e.into_inner();
            shard.clear();
            shard
        })
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// Whether cached records may be served at `now`.
    pub fn trusted(&self, now: Instant) -> bool {
        self.enabled && self.micros(now) < self.trusted_until_us.load(Ordering::SeqCst)
    }

    /// The cached record for `digest`, if the cache is trusted now and holds one.
    /// Counts a hit or a miss.
    pub fn get(&self, digest: &Digest) -> Option<Arc<CheckedKey>> {
        if !self.enabled {
            return None;
        }
        let found = if self.trusted(Instant::now()) {
            self.shard(digest).get(digest).cloned()
        } else {
            None
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The generation to pass to [`insert`](Self::insert): read it before the store lookup.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps `record`, read from the store after [`generation`](Self::generation)
    /// returned `generation`, unless the cache was cleared since.
    pub fn insert(&self, digest: Digest, record: Arc<CheckedKey>, generation: u64) {
        if !self.enabled {
            return;
        }
        let mut shard = self.shard(&digest);
        // Checked under the shard lock: a clear bumps the generation before it
        // empties the shards, so either we see the bump or it removes our entry.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if shard.len() >= self.per_shard && !shard.contains_key(&digest) {
            if let Some(victim) = shard.keys().next().copied() {
                shard.remove(&victim);
            }
        }
        shard.insert(digest, record);
    }

    /// Forgets every record, and any lookup in flight will not be kept.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.clears.fetch_add(1, Ordering::Relaxed);
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// Fault injection for tests: a replica slow to let go of other
    /// replicas' changes, so that tests see writers wait for it. Zero turns it off.
    #[doc(hidden)]
    pub fn set_ack_delay(&self, delay: std::time::Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.ack_delay_ms.store(ms, Ordering::Relaxed);
    }

    fn ack_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ack_delay_ms.load(Ordering::Relaxed))
    }

    /// Lets cached records be served until `until`.
    pub fn trust_until(&self, until: Instant) {
        self.trusted_until_us
            .store(self.micros(until).max(1), Ordering::SeqCst);
    }

    /// Stops serving from the cache and clears it: a watcher lost sight of
    /// changes. Trust resumes only through a watcher's resynchronisation.
    pub fn distrust(&self) {
        self.trusted_until_us.store(0, Ordering::SeqCst);
        self.clear();
    }
}

/// The store clears the cache after every write that may change what a key
/// check answers, before the write returns.
impl store::KeyWrites for KeyCache {
    fn key_changed(&self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Plan;
    use std::time::Duration;

    fn record(id: &str) -> Arc<CheckedKey> {
        Arc::new(CheckedKey::new(AuthRecord {
            id: id.into(),
            org_id: "org_a".into(),
            name: "n".into(),
            scopes: vec!["sessions:read".into()],
            expires_at: None,
            revoked_at: None,
            org_plan: Plan::Paid,
        }))
    }

    fn digest(i: u8) -> Digest {
        [i; 32]
    }

    #[test]
    fn records_are_served_only_while_trusted() {
        let cache = KeyCache::new(true);
        let g = cache.generation();
        cache.insert(digest(1), record("key_a"), g);
        assert!(cache.get(&digest(1)).is_none(), "not trusted yet");
        cache.trust_until(Instant::now() + Duration::from_secs(60));
        assert_eq!(cache.get(&digest(1)).unwrap().id, "key_a");
        assert!(cache.get(&digest(2)).is_none());
        cache.trust_until(Instant::now() - Duration::from_millis(1));
        assert!(cache.get(&digest(1)).is_none(), "trust ran out");
        cache.trust_until(Instant::now() + Duration::from_secs(60));
        cache.distrust();
        assert!(cache.get(&digest(1)).is_none(), "distrusted");
        cache.trust_until(Instant::now() + Duration::from_secs(60));
        assert!(cache.get(&digest(1)).is_none(), "distrust cleared it");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 5));
    }

    #[test]
    fn a_lookup_that_raced_a_clear_is_not_kept() {
        let cache = KeyCache::new(true);
        cache.trust_until(Instant::now() + Duration::from_secs(60));
        let before = cache.generation();
        cache.clear();
        cache.insert(digest(1), record("key_stale"), before);
        assert!(cache.get(&digest(1)).is_none());
        cache.insert(digest(1), record("key_fresh"), cache.generation());
        assert_eq!(cache.get(&digest(1)).unwrap().id, "key_fresh");
        cache.clear();
        assert!(cache.get(&digest(1)).is_none());
    }

    #[test]
    fn a_disabled_cache_never_answers_and_the_size_is_bounded() {
        let off = KeyCache::new(false);
        off.trust_until(Instant::now() + Duration::from_secs(60));
        off.insert(digest(1), record("key_a"), off.generation());
        assert!(off.get(&digest(1)).is_none());
        assert_eq!(off.stats(), KeyCacheStats::default());

        let cache = KeyCache::new(true);
        for i in 0..(MAX_ENTRIES as u32 + 1000) {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&i.to_le_bytes());
            cache.insert(d, record("key_a"), cache.generation());
        }
        let held: usize = cache.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= MAX_ENTRIES, "{held}");
    }
}
