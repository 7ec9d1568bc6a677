//! Failed-authentication limiting: after `max` failed checks from one client
//! (an IPv4 address, or an IPv6 /64 network) within a window, that client gets
//! 429 until the window ends. Memory and work per request are bounded, so a
//! flood of failures from many addresses cannot slow the good checks down.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Locks are sharded by client so that concurrent checks rarely wait on each other.
const SHARDS: usize = 16;
/// Counting windows kept at most (over all shards), and likewise locks: past
/// it the oldest window (or lock) is forgotten.
pub const MAX_TRACKED: usize = 65_536;
/// Expired windows removed per recorded failure: sweeping is spread over requests.
const SWEEP_PER_CALL: usize = 4;

/// Whom failures count against: an IPv4 address, or the /64 network of an
/// IPv6 address (one subscriber usually has a whole /64 to rotate through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrKey {
    V4(Ipv4Addr),
    /// The upper 64 bits of the address.
    V6Net(u64),
}

impl From<IpAddr> for AddrKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6Net((u128::from(v6) >> 64) as u64),
        }
    }
}

impl fmt::Display for AddrKey {
    /// `203.0.113.7` or `2001:db8:1:2::/64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6Net(net) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*net) << 64)),
        }
    }
}

impl FromStr for AddrKey {
    type Err = String;
    /// Reads what `Display` writes.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("not a client address key: {s:?}");
        match s.strip_suffix("/64") {
            Some(net) => net
                .parse::<Ipv6Addr>()
                .map(|v6| Self::V6Net((u128::from(v6) >> 64) as u64))
                .map_err(|_| bad()),
            None => s.parse::<Ipv4Addr>().map(Self::V4).map_err(|_| bad()),
        }
    }
}

pub struct FailureLimiter {
    max: u32,
    window_ms: i64,
    per_shard: usize,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Clone, Copy)]
struct Window {
    started: i64,
    failures: u32,
}

#[derive(Default)]
struct Shard {
    counting: HashMap<AddrKey, Window>,
    /// (client, window start) in the order windows began; entries whose
    /// window is gone or restarted are skipped when they reach the front.
    order: VecDeque<(AddrKey, i64)>,
    /// Locked-out clients and the instant (ms) their lock ends.
    locked: HashMap<AddrKey, i64>,
    lock_order: VecDeque<(AddrKey, i64)>,
}

impl Shard {
    fn window_is(&self, key: &AddrKey, started: i64) -> bool {
        self.counting.get(key).is_some_and(|w| w.started == started)
    }

    /// Removes a few expired windows and locks from the front of the queues.
    fn sweep(&mut self, now: i64, window_ms: i64) {
        for _ in 0..SWEEP_PER_CALL {
            let Some(&(key, started)) = self.order.front() else {
                break;
            };
            let live = self.window_is(&key, started);
            if live && now < started + window_ms {
                break;
            }
            self.order.pop_front();
            if live {
                self.counting.remove(&key);
            }
        }
        for _ in 0..SWEEP_PER_CALL {
            let Some(&(key, until)) = self.lock_order.front() else {
                break;
            };
            let live = self.locked.get(&key) == Some(&until);
            if live && now < until {
                break;
            }
            self.lock_order.pop_front();
            if live {
                self.locked.remove(&key);
            }
        }
    }

    /// Makes room for one more counting window by forgetting the oldest.
    fn evict_counting(&mut self, cap: usize) {
        while self.counting.len() >= cap {
            let Some((key, started)) = self.order.pop_front() else {
                break;
            };
            if self.window_is(&key, started) {
                self.counting.remove(&key);
            }
        }
        // Skipped entries pile up only between evictions; drop them all at
        // once when they outnumber the live ones (amortised O(1)).
        if self.order.len() > 2 * cap + 64 {
            let counting = &self.counting;
            self.order
                .retain(|(k, s)| counting.get(k).is_some_and(|w| w.started == *s));
        }
    }

    fn lock(&mut self, key: AddrKey, until: i64, cap: usize) {
        if self.locked.get(&key).is_some_and(|&u| u >= until) {
            return;
        }
        if !self.locked.contains_key(&key) {
            while self.locked.len() >= cap {
                let Some((old, old_until)) = self.lock_order.pop_front() else {
                    break;
                };
                if self.locked.get(&old) == Some(&old_until) {
                    self.locked.remove(&old);
                }
            }
        }
        self.counting.remove(&key);
        self.locked.insert(key, until);
        self.lock_order.push_back((key, until));
        if self.lock_order.len() > 2 * cap + 64 {
            let locked = &self.locked;
            self.lock_order.retain(|(k, u)| locked.get(k) == Some(u));
        }
    }
}

impl FailureLimiter {
    /// `max` failures per `window`; `max == 0` turns limiting off.
    pub fn new(max: u32, window: Duration) -> Self {
        Self::with_capacity(max, window, MAX_TRACKED)
    }

    /// Like [`new`](Self::new), tracking at most about `capacity` clients
    /// (counting windows and locks each).
    pub fn with_capacity(max: u32, window: Duration, capacity: usize) -> Self {
        Self {
            max,
            window_ms: window.num_milliseconds().max(1),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    pub fn window(&self) -> Duration {
        Duration::milliseconds(self.window_ms)
    }

    fn shard(&self, key: &AddrKey) -> std::sync::MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic while holding the lock cannot leave a shard inconsistent
        // in a way that matters here, so a poisoned lock is used as is.
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(seconds to wait)` if `addr` has used up its failures in the current window.
    pub fn check(&self, addr: IpAddr, now: DateTime<Utc>) -> Result<(), u64> {
        if self.max == 0 {
            return Ok(());
        }
        let key = AddrKey::from(addr);
        let now = now.timestamp_millis();
        match self.shard(&key).locked.get(&key) {
            Some(&until) if now < until => {
                let secs = (until - now + 999) / 1000;
                Err(u64::try_from(secs).unwrap_or(1).max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts one failed check from `addr`; `Some(end of the lock)` if this
    /// failure used up its allowance.
    pub fn record_failure(&self, addr: IpAddr, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.max == 0 {
            return None;
        }
        let key = AddrKey::from(addr);
        let now = now.timestamp_millis();
        let window_ms = self.window_ms;
        let mut shard = self.shard(&key);
        shard.sweep(now, window_ms);
        if shard.locked.get(&key).is_some_and(|&until| now < until) {
            return None;
        }
        let current = shard
            .counting
            .get(&key)
            .copied()
            .filter(|w| now < w.started + window_ms);
        let w = match current {
            Some(mut w) => {
                w.failures = w.failures.saturating_add(1);
                shard.counting.insert(key, w);
                w
            }
            None => {
                if !shard.counting.contains_key(&key) {
                    shard.evict_counting(self.per_shard);
                }
                let fresh = Window {
                    started: now,
                    failures: 1,
                };
                shard.counting.insert(key, fresh);
                shard.order.push_back((key, now));
                fresh
            }
        };
        if w.failures < self.max {
            return None;
        }
        let until = w.started + window_ms;
        shard.lock(key, until, self.per_shard);
        DateTime::from_timestamp_millis(until)
    }

    /// Locks `key` out until `until` (a lock decided elsewhere: another
    /// replica, or the shared counter in the database).
    pub fn lock(&self, key: AddrKey, until: DateTime<Utc>) {
        if self.max == 0 {
            return;
        }
        self.shard(&key)
            .lock(key, until.timestamp_millis(), self.per_shard);
    }

    /// Failures counted against `addr` in its current window (`max` while it
    /// is locked out): read-only, for tests and diagnostics.
    pub fn failures(&self, addr: IpAddr, now: DateTime<Utc>) -> u32 {
        if self.max == 0 {
            return 0;
        }
        let key = AddrKey::from(addr);
        let now = now.timestamp_millis();
        let shard = self.shard(&key);
        if shard.locked.get(&key).is_some_and(|&until| now < until) {
            return self.max;
        }
        shard
            .counting
            .get(&key)
            .filter(|w| now < w.started + self.window_ms)
            .map_or(0, |w| w.failures)
    }

    /// How many clients are tracked now (counting windows plus locks).
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                s.counting.len() + s.locked.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn limits_per_address_and_window() {
        let l = FailureLimiter::new(3, Duration::minutes(1));
        let a = ip("10.0.0.1");
        let b = ip("10.0.0.2");
        let t0 = Utc::now();
        for i in 0..3 {
            assert!(l.check(a, t0).is_ok());
            assert_eq!(l.record_failure(a, t0).is_some(), i == 2);
        }
        assert_eq!(l.check(a, t0), Err(60));
        assert_eq!(l.failures(a, t0), 3, "locked: all used");
        assert_eq!(l.failures(b, t0), 0);
        assert_eq!(l.check(a, t0 + Duration::seconds(30)), Err(30));
        assert!(l.check(b, t0).is_ok());
        assert!(l.check(a, t0 + Duration::minutes(1)).is_ok());
        l.record_failure(a, t0 + Duration::minutes(1));
        assert!(l.check(a, t0 + Duration::minutes(1)).is_ok());
        assert_eq!(l.failures(a, t0 + Duration::minutes(1)), 1);
        assert_eq!(
            l.failures(a, t0 + Duration::minutes(2)),
            0,
            "the window ended"
        );
    }

    #[test]
    fn zero_turns_it_off() {
        let l = FailureLimiter::new(0, Duration::minutes(1));
        let a = ip("10.0.0.1");
        for _ in 0..100 {
            l.record_failure(a, Utc::now());
        }
        l.lock(AddrKey::from(a), Utc::now() + Duration::minutes(1));
        assert!(l.check(a, Utc::now()).is_ok());
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let l = FailureLimiter::new(4, Duration::minutes(1));
        let now = Utc::now();
        // Four different addresses of one /64 share one allowance.
        for a in [
            "2001:db8:1:2::1",
            "2001:db8:1:2::2",
            "2001:db8:1:2:ffff::9",
            "2001:db8:1:2::1",
        ] {
            assert!(l.check(ip(a), now).is_ok());
            l.record_failure(ip(a), now);
        }
        assert_eq!(l.check(ip("2001:db8:1:2:abcd::1"), now), Err(60));
        // The neighbouring /64 is another client.
        assert!(l.check(ip("2001:db8:1:3::1"), now).is_ok());
        assert_eq!(
            AddrKey::from(ip("2001:db8:1:2:abcd::1")).to_string(),
            "2001:db8:1:2::/64"
        );
        // An IPv4-mapped IPv6 address is the IPv4 address.
        for _ in 0..4 {
            l.record_failure(ip("::ffff:192.0.2.1"), now);
        }
        assert_eq!(l.check(ip("192.0.2.1"), now), Err(60));
        for key in ["192.0.2.1", "2001:db8:1:2::/64"] {
            assert_eq!(key.parse::<AddrKey>().unwrap().to_string(), key);
        }
        assert!("2001:db8::1".parse::<AddrKey>().is_err());
        assert!("x".parse::<AddrKey>().is_err());
    }

    #[test]
    fn the_map_is_bounded_and_locks_outlive_a_flood() {
        let l = FailureLimiter::with_capacity(2, Duration::minutes(1), 1024);
        let now = Utc::now();
        let victim = ip("198.51.100.1");
        l.record_failure(victim, now);
        l.record_failure(victim, now);
        assert!(l.check(victim, now).is_err());
        // 100 000 addresses failing once each, within the window.
        for i in 0..100_000u32 {
            let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            l.record_failure(a, now + Duration::milliseconds(i64::from(i / 100)));
            if i % 10_000 == 0 {
                assert!(l.tracked() <= 1024 + 1, "{}", l.tracked());
            }
        }
        // At most 1024 counting windows, plus the victim's lock.
        assert!(l.tracked() <= 1024 + 1, "{}", l.tracked());
        assert!(l.tracked() >= 1000, "{}", l.tracked());
        // The flood only pushed out counting windows: the lock holds.
        assert!(l.check(victim, now + Duration::seconds(30)).is_err());
        assert!(l.check(victim, now + Duration::minutes(1)).is_ok());
    }

    #[test]
    fn locks_from_elsewhere_are_kept_until_their_end() {
        let l = FailureLimiter::new(5, Duration::minutes(1));
        let now = Utc::now();
        let key: AddrKey = "203.0.113.9".parse().unwrap();
        l.lock(key, now + Duration::seconds(10));
        assert_eq!(l.check(ip("203.0.113.9"), now), Err(10));
        // An earlier end never shortens a lock.
        l.lock(key, now + Duration::seconds(5));
        assert_eq!(l.check(ip("203.0.113.9"), now), Err(10));
        assert!(l
            .check(ip("203.0.113.9"), now + Duration::seconds(10))
            .is_ok());
    }
}
