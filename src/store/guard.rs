//! A guard around the store: a deadline on every call, a bound on the calls
//! in flight and waiting, and connection failures reported as
//! [`StoreError::Unavailable`], so a database that is away or slow gets a
//! quick 503 `database_unavailable`, never a hang or a 500.
//!
//! The deadline tells a database that is away from one that is busy: a call
//! past its deadline is given up only if no other call got an answer
//! meanwhile. While others are being answered the database is there, merely
//! queueing under load, and the call waits on, up to its patience.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::{StoreError, StoreResult};

/// How long a store call may take and how many may queue for the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardLimits {
    /// Longest a call may take, waiting for a slot included, when no other
    /// call gets an answer meanwhile (the database is away or stuck).
    pub deadline: Duration,
    /// Longest a call may take while other calls are being answered (the
    /// database is there but busy).
    pub patience: Duration,
    /// Calls running against the database at once.
    pub max_in_flight: usize,
    /// Calls waiting for one of those slots; beyond that a call is refused at once.
    pub max_waiting: usize,
}

impl Default for GuardLimits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(1500),
            patience: Duration::from_secs(10),
            max_in_flight: 64,
            max_waiting: 1024,
        }
    }
}

/// Counts since start, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardStats {
    /// Calls refused at once because too many were waiting.
    pub refused: u64,
    /// Calls that ran out of time.
    pub timed_out: u64,
    /// Calls that failed because the connection to the database failed.
    pub connection_failed: u64,
    /// API key lookups by digest passed to the database (the key check).
    pub lookups_by_digest: u64,
    /// User access token lookups passed to the database (the admin check).
    pub lookups_by_token: u64,
}

/// Puts [`GuardLimits`] on the store's calls: the shared store runs each
/// call through [`Guard::run`].
pub struct Guard {
    limits: GuardLimits,
    slots: Semaphore,
    waiting: AtomicUsize,
    reachable: AtomicBool,
    refused: AtomicU64,
    timed_out: AtomicU64,
    connection_failed: AtomicU64,
    lookups_by_digest: AtomicU64,
    lookups_by_token: AtomicU64,
    delay_ms: AtomicU64,
    /// When `last_answer_ms` counts from.
    epoch: tokio::time::Instant,
    /// Milliseconds from `epoch` to the last call that got an answer from the
    /// database (one that was not [`StoreError::Unavailable`]).
    last_answer_ms: AtomicU64,
}

/// The lookups [`GuardStats`] counts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Lookup {
    ByDigest,
    ByToken,
}

impl Guard {
    pub fn new(limits: GuardLimits) -> Self {
        Self {
            limits,
            slots: Semaphore::new(limits.max_in_flight.max(1)),
            waiting: AtomicUsize::new(0),
            reachable: AtomicBool::new(true),
            refused: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            connection_failed: AtomicU64::new(0),
            lookups_by_digest: AtomicU64::new(0),
            lookups_by_token: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
            epoch: tokio::time::Instant::now(),
            last_answer_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn count(&self, lookup: Lookup) {
        match lookup {
            Lookup::ByDigest => &self.lookups_by_digest,
            Lookup::ByToken => &self.lookups_by_token,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    fn millis_since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether some call got an answer after `since`.
    fn answered_since(&self, since: tokio::time::Instant) -> bool {
        let since_ms = u64::try_from(since.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        self.last_answer_ms.load(Ordering::Relaxed) > since_ms
    }

    pub fn limits(&self) -> GuardLimits {
        self.limits
    }

    pub fn stats(&self) -> GuardStats {
        GuardStats {
            refused: self.refused.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            connection_failed: self.connection_failed.load(Ordering::Relaxed),
            lookups_by_digest: self.lookups_by_digest.load(Ordering::Relaxed),
            lookups_by_token: self.lookups_by_token.load(Ordering::Relaxed),
        }
    }

    /// Fault injection for tests: every call first sleeps this long while
    /// holding its slot, like a database that answers slowly. Zero turns it off.
    #[doc(hidden)]
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Runs `call` under the limits.
    pub(super) async fn run<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let slot = match self.slots.try_acquire() {
            Ok(permit) => Slot::Held(permit),
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.limits.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(what, "store call refused: too many calls waiting");
                    return Err(StoreError::Unavailable(
                        "too many calls waiting for the database".into(),
                    ));
                }
                Slot::Waiting(Waiting(&self.waiting))
            }
        };
        let guarded = async {
            let _permit = match slot {
                Slot::Held(permit) => permit,
                Slot::Waiting(waiting) => {
                    let permit = self.slots.acquire().await;
                    drop(waiting);
                    permit.map_err(|_| StoreError::Unavailable("the store is closed".into()))?
                }
            };
            let delay = self.delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            call.await
        };
        let result = match self.wait_for(guarded).await {
            Some(Err(StoreError::Database(e))) if is_connection_error(&e) => {
                self.connection_failed.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Unavailable(e.to_string()))
            }
            Some(result) => result,
            None => {
                self.timed_out.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Unavailable(format!(
                    "no answer within {} ms, while no other call got one either",
                    self.limits.deadline.as_millis()
                )))
            }
        };
        if !matches!(result, Err(StoreError::Unavailable(_))) {
            self.last_answer_ms
                .fetch_max(self.millis_since_epoch().max(1), Ordering::Relaxed);
        }
        self.note(what, &result);
        result
    }

    /// Waits for `call` until its deadline; past that, only for as long as
    /// other calls keep getting answers within one deadline, and never past
    /// the patience. `None` when it gave up.
    async fn wait_for<T>(&self, call: impl Future<Output = T>) -> Option<T> {
        let started = tokio::time::Instant::now();
        let give_up = started + self.limits.patience.max(self.limits.deadline);
        let mut check_at = started + self.limits.deadline;
        tokio::pin!(call);
        loop {
            tokio::select! {
                result = &mut call => return Some(result),
                () = tokio::time::sleep_until(check_at) => {
                    let now = tokio::time::Instant::now();
                    let window_start = now.checked_sub(self.limits.deadline).unwrap_or(started);
                    if now >= give_up || !self.answered_since(window_start.max(started)) {
                        return None;
                    }
                    check_at = (now + Duration::from_millis(100)).min(give_up);
                }
            }
        }
    }

    /// Logs when the database goes away and when it is back, not every failure.
    fn note<T>(&self, what: &str, result: &StoreResult<T>) {
        match result {
            Err(StoreError::Unavailable(why)) => {
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!(call = what, reason = %why, "database unavailable; answering 503 until it is back");
                }
            }
            _ => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    tracing::info!("database reachable again");
                }
            }
        }
    }
}

enum Slot<'a> {
    Held(SemaphorePermit<'a>),
    Waiting(Waiting<'a>),
}

/// One call counted as waiting, until it gets a slot or gives up.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Errors that say the database cannot be reached right now, rather than
/// that the request or the data is wrong: worth a retry in a moment.
pub fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|code| unavailable_code(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs of class 08 (connection exception), 57P01-57P03
/// (shutting down, cannot connect now), 53300 (too many connections);
/// SQLite's busy and locked codes, and cannot-open.
fn unavailable_code(code: &str) -> bool {
    code.starts_with("08")
        || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        || matches!(code, "5" | "6" | "14" | "261" | "262" | "517")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A call past its deadline is given up when nothing else is answered (the
    /// database is away), and waited for while other calls are (it is busy).
    #[tokio::test]
    async fn a_busy_database_gets_patience_and_an_absent_one_does_not() {
        let limits = GuardLimits {
            deadline: Duration::from_millis(200),
            patience: Duration::from_secs(1),
            ..GuardLimits::default()
        };
        let guard = Arc::new(Guard::new(limits));
        tokio::time::pause();

        let started = tokio::time::Instant::now();
        assert!(guard.wait_for(std::future::pending::<()>()).await.is_none());
        let waited = started.elapsed();
        assert!(
            waited >= limits.deadline && waited < limits.deadline * 2,
            "{waited:?}"
        );

        let others = guard.clone();
        let answers = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let now = others.millis_since_epoch();
                others.last_answer_ms.fetch_max(now, Ordering::Relaxed);
            }
        });
        let started = tokio::time::Instant::now();
        assert!(guard.wait_for(std::future::pending::<()>()).await.is_none());
        let waited = started.elapsed();
        assert!(waited >= limits.patience, "{waited:?}");
        let slow = async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            7
        };
        assert_eq!(guard.wait_for(slow).await, Some(7));
        answers.abort();
    }

    #[test]
    fn connection_failures_are_told_from_bad_requests() {
        assert!(is_connection_error(&sqlx::Error::PoolTimedOut));
        assert!(is_connection_error(&sqlx::Error::Io(
            std::io::ErrorKind::ConnectionRefused.into()
        )));
        assert!(!is_connection_error(&sqlx::Error::RowNotFound));
        for code in ["08006", "08001", "57P01", "57P03", "5", "517"] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in ["23505", "42P01", "19", "2067"] {
            assert!(!unavailable_code(code), "{code}");
        }
    }
}
