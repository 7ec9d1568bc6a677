//! Failed-authentication limiting: after `max` failed checks from one client
//! address within a window, that address gets 429 until the window ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Past this many tracked addresses, expired windows are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

pub struct FailureLimiter {
    max: u32,
    window: Duration,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

impl FailureLimiter {
    /// `max` failures per `window`; `max == 0` turns limiting off.
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` if `addr` has used up its failures in the current window.
    pub fn check(&self, addr: IpAddr, now: DateTime<Utc>) -> Result<(), u64> {
        if self.max == 0 {
            return Ok(());
        }
        let windows = self.windows.lock().expect("limiter lock");
        match windows.get(&addr) {
            Some(w) if w.failures >= self.max && now < w.started + self.window => {
                let left = (w.started + self.window - now).num_milliseconds();
                Err(u64::try_from((left + 999) / 1000).unwrap_or(1).max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts one failed check from `addr`.
    pub fn record_failure(&self, addr: IpAddr, now: DateTime<Utc>) {
        if self.max == 0 {
            return;
        }
        let mut windows = self.windows.lock().expect("limiter lock");
        if windows.len() > SWEEP_ABOVE {
            let window = self.window;
            windows.retain(|_, w| now < w.started + window);
        }
        let w = windows.entry(addr).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + self.window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_window() {
        let l = FailureLimiter::new(3, Duration::minutes(1));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Utc::now();
        for _ in 0..3 {
            assert!(l.check(a, t0).is_ok());
            l.record_failure(a, t0);
        }
        assert_eq!(l.check(a, t0), Err(60));
        assert_eq!(l.check(a, t0 + Duration::seconds(30)), Err(30));
        assert!(l.check(b, t0).is_ok());
        assert!(l.check(a, t0 + Duration::minutes(1)).is_ok());
        l.record_failure(a, t0 + Duration::minutes(1));
        assert!(l.check(a, t0 + Duration::minutes(1)).is_ok());
    }

    #[test]
    fn zero_turns_it_off() {
        let l = FailureLimiter::new(0, Duration::minutes(1));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..100 {
            l.record_failure(a, Utc::now());
        }
        assert!(l.check(a, Utc::now()).is_ok());
    }
}
