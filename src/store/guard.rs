//! A guard around the store: a deadline on every call, a bound on the calls
//! in flight and waiting, and connection failures reported as
//! [`StoreError::Unavailable`], so a database that is away or slow gets a
//! quick 503 `database_unavailable`, never a hang or a 500.
//!
//! The deadline tells a database that is away from one that is busy: a call
//! past its deadline is given up only if no other call got an answer
//! meanwhile and the database does not answer a probe (`SELECT 1` on a
//! connection of its own, within a short timeout) either. While others are
//! being answered, or the probe is, the database is there, merely queueing
//! under load or running a long query, and the call waits on, up to its
//! patience; past that it is given up as [`StoreError::Busy`] (503
//! `deadline_exceeded`), not taken for an outage.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore, SemaphorePermit};

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
    /// Longest the probe (`SELECT 1` on a connection of its own) may take
    /// to tell a busy database from an absent one.
    pub probe_timeout: Duration,
}

impl Default for GuardLimits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(1500),
            patience: Duration::from_secs(10),
            max_in_flight: 64,
            max_waiting: 1024,
            probe_timeout: Duration::from_millis(500),
        }
    }
}

/// Counts since start, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardStats {
    /// Calls refused at once because too many were waiting.
    pub refused: u64,
    /// Calls that ran out of time while the database did not answer (away).
    pub timed_out: u64,
    /// Calls that ran out of patience while the database answered others or
    /// the probe (busy, or a long query).
    pub busy: u64,
    /// Probes that found the database there.
    pub probes_answered: u64,
    /// Probes that failed or did not answer in time.
    pub probes_failed: u64,
    /// Calls that failed because the connection to the database failed.
    pub connection_failed: u64,
    /// API key lookups by digest passed to the database (the key check).
    pub lookups_by_digest: u64,
    /// User access token lookups passed to the database (the admin check).
    pub lookups_by_token: u64,
    /// The most calls that held a slot at once (since start or
    /// [`Guard::reset_peaks`]): never above [`GuardLimits::max_in_flight`].
    pub peak_in_flight: usize,
    /// The most calls that waited for a slot at once (since start or
    /// [`Guard::reset_peaks`]): never above [`GuardLimits::max_waiting`].
    pub peak_waiting: usize,
}

/// Asks the database for a trivial answer on a connection of its own:
/// whether it is there. Installed by the store ([`Guard::set_probe`]).
pub type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Cancels, in the database, what a guarded call given up (or whose client
/// went away) still runs there: given the call's tag ([`call_tag`]).
/// Installed by the store of a backend that can ([`Guard::set_canceller`]).
pub type Canceller = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Longest a cancellation may take before it is left alone.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// Numbers the guarded calls, for their tags.
static CALLS: AtomicU64 = AtomicU64::new(1);

/// The guarded call running on this task: its number, and whether it took a
/// database connection (tagged with it, [`call_tag`]).
struct Call {
    id: u64,
    tagged: AtomicBool,
}

tokio::task_local! {
    static CALL: Arc<Call>;
}

/// The tag of a connection handed to the guarded call running on this task
/// (`keydeck-call-7`), or `keydeck` outside one. A backend that can cancel
/// names each connection it hands out so (PostgreSQL: `application_name`),
/// so that [`Canceller`] finds what a call given up still runs.
pub(super) fn call_tag() -> String {
    CALL.try_with(|call| {
        call.tagged.store(true, Ordering::Relaxed);
        format!("keydeck-call-{}", call.id)
    })
    .unwrap_or_else(|_| "keydeck".to_owned())
}

/// Cancels the call's work in the database when dropped before [`Abandon::done`]:
/// the call was given up, or the request it served was dropped.
struct Abandon<'a> {
    call: Arc<Call>,
    canceller: Option<&'a Canceller>,
    done: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        let Some(cancel) = self.canceller else { return };
        if self.done || !self.call.tagged.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cancelling = cancel(format!("keydeck-call-{}", self.call.id));
        runtime.spawn(async move {
            let _ = tokio::time::timeout(CANCEL_TIMEOUT, cancelling).await;
        });
    }
}

/// A probe's verdict is shared by the calls that reach their deadline within
/// this long of it, so that a burst of slow calls probes once.
const PROBE_REUSE: Duration = Duration::from_millis(250);

/// Puts [`GuardLimits`] on the store's calls: the shared store runs each
/// call through [`Guard::run`].
pub struct Guard {
    limits: GuardLimits,
    slots: Semaphore,
    waiting: AtomicUsize,
    reachable: AtomicBool,
    refused: AtomicU64,
    timed_out: AtomicU64,
    busy: AtomicU64,
    probes_answered: AtomicU64,
    probes_failed: AtomicU64,
    probe: OnceLock<Probe>,
    canceller: OnceLock<Canceller>,
    /// The last probe: when it finished and whether the database answered.
    last_probe: Mutex<Option<(tokio::time::Instant, bool)>>,
    connection_failed: AtomicU64,
    lookups_by_digest: AtomicU64,
    lookups_by_token: AtomicU64,
    peak_in_flight: AtomicUsize,
    peak_waiting: AtomicUsize,
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
            busy: AtomicU64::new(0),
            probes_answered: AtomicU64::new(0),
            probes_failed: AtomicU64::new(0),
            probe: OnceLock::new(),
            canceller: OnceLock::new(),
            last_probe: Mutex::new(None),
            connection_failed: AtomicU64::new(0),
            lookups_by_digest: AtomicU64::new(0),
            lookups_by_token: AtomicU64::new(0),
            peak_in_flight: AtomicUsize::new(0),
            peak_waiting: AtomicUsize::new(0),
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
            busy: self.busy.load(Ordering::Relaxed),
            probes_answered: self.probes_answered.load(Ordering::Relaxed),
            probes_failed: self.probes_failed.load(Ordering::Relaxed),
            connection_failed: self.connection_failed.load(Ordering::Relaxed),
            lookups_by_digest: self.lookups_by_digest.load(Ordering::Relaxed),
            lookups_by_token: self.lookups_by_token.load(Ordering::Relaxed),
            peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
            peak_waiting: self.peak_waiting.load(Ordering::Relaxed),
        }
    }

    /// Starts [`GuardStats::peak_in_flight`] and [`GuardStats::peak_waiting`]
    /// afresh from the calls there are now, so that a test can read the
    /// peaks of one burst.
    #[doc(hidden)]
    pub fn reset_peaks(&self) {
        self.peak_in_flight
            .store(self.in_flight(), Ordering::Relaxed);
        self.peak_waiting
            .store(self.waiting.load(Ordering::SeqCst), Ordering::Relaxed);
    }

    /// Calls holding a slot now.
    fn in_flight(&self) -> usize {
        self.limits
            .max_in_flight
            .max(1)
            .saturating_sub(self.slots.available_permits())
    }

    /// How the guard asks the database whether it is there (the store
    /// installs it once, when it connects). Without one, a call that gets
    /// no answer by its deadline while no other call does is given up.
    pub fn set_probe(&self, probe: Probe) {
        let _ = self.probe.set(probe);
    }

    /// How the guard cancels what a call given up still runs in the
    /// database (installed once by a store whose backend can).
    pub fn set_canceller(&self, canceller: Canceller) {
        let _ = self.canceller.set(canceller);
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
            Ok(permit) => {
                self.note_in_flight();
                Slot::Held(permit)
            }
            Err(_) => {
                let ahead = self.waiting.fetch_add(1, Ordering::SeqCst);
                if ahead >= self.limits.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(what, "store call refused: too many calls waiting");
                    return Err(StoreError::Unavailable(
                        "too many calls waiting for the database".into(),
                    ));
                }
                self.peak_waiting.fetch_max(ahead + 1, Ordering::Relaxed);
                Slot::Waiting(Waiting(&self.waiting))
            }
        };
        let guarded = async {
            let _permit = match slot {
                Slot::Held(permit) => permit,
                Slot::Waiting(waiting) => {
                    let permit = self.slots.acquire().await;
                    drop(waiting);
                    let permit = permit
                        .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
                    self.note_in_flight();
                    permit
                }
            };
            let delay = self.delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            call.await
        };
        let call = Arc::new(Call {
            id: CALLS.fetch_add(1, Ordering::Relaxed),
            tagged: AtomicBool::new(false),
        });
        let mut abandon = Abandon {
            call: call.clone(),
            canceller: self.canceller.get(),
            done: false,
        };
        let waited = self.wait(CALL.scope(call, guarded)).await;
        abandon.done = waited.is_ok();
        drop(abandon);
        let result = match waited {
            Ok(Err(StoreError::Database(e))) if is_connection_error(&e) => {
                self.connection_failed.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Unavailable(e.to_string()))
            }
            Ok(result) => result,
            Err(GaveUp::Away) => {
                self.timed_out.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Unavailable(format!(
                    "no answer within {} ms, while no other call and no probe got one either",
                    self.limits.deadline.as_millis()
                )))
            }
            Err(GaveUp::Busy(waited)) => {
                self.busy.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Busy(waited))
            }
        };
        if !matches!(result, Err(StoreError::Unavailable(_))) {
            self.note_answer();
        }
        self.note(what, &result);
        result
    }

    /// Raises [`GuardStats::peak_in_flight`] to the calls holding a slot now.
    fn note_in_flight(&self) {
        self.peak_in_flight
            .fetch_max(self.in_flight(), Ordering::Relaxed);
    }

    /// Records that the database answered now.
    fn note_answer(&self) {
        self.last_answer_ms
            .fetch_max(self.millis_since_epoch().max(1), Ordering::Relaxed);
    }

    /// [`Guard::wait`], `None` when it gave up.
    #[cfg(test)]
    async fn wait_for<T>(&self, call: impl Future<Output = T>) -> Option<T> {
        self.wait(call).await.ok()
    }

    /// Waits for `call` until its deadline; past that, only for as long as
    /// the database is there (other calls keep getting answers within one
    /// deadline, or it answers the probe), and never past the patience.
    /// With a probe, the probe starts its timeout before the deadline, so
    /// that an absent database is told by the deadline.
    async fn wait<T>(&self, call: impl Future<Output = T>) -> Result<T, GaveUp> {
        let started = tokio::time::Instant::now();
        let limits = self.limits;
        let give_up = started + limits.patience.max(limits.deadline);
        let probe = self.probe.get();
        let lead = match probe {
            Some(_) => limits.probe_timeout.min(limits.deadline),
            None => Duration::ZERO,
        };
        let mut check_at = started + (limits.deadline - lead);
        tokio::pin!(call);
        loop {
            tokio::select! {
                result = &mut call => return Ok(result),
                () = tokio::time::sleep_until(check_at) => {}
            }
            let now = tokio::time::Instant::now();
            if now >= give_up {
                return Err(GaveUp::Busy(now - started));
            }
            check_at = (now + Duration::from_millis(100)).min(give_up);
            let window_start = now.checked_sub(limits.deadline).unwrap_or(started);
            if self.answered_since(window_start.max(started)) {
                continue;
            }
            let Some(probe) = probe else {
                return Err(GaveUp::Away);
            };
            let there = tokio::select! {
                result = &mut call => return Ok(result),
                there = self.probe(probe) => there,
            };
            if !there {
                // Away: the call still has until its deadline.
                let deadline = started + limits.deadline;
                tokio::select! {
                    result = &mut call => return Ok(result),
                    () = tokio::time::sleep_until(deadline) => return Err(GaveUp::Away),
                }
            }
        }
    }

    /// Whether the database answers `SELECT 1` on a connection of its own
    /// within the probe timeout; a verdict of the last [`PROBE_REUSE`] is
    /// reused. The injected delay ([`Guard::set_delay`]) slows the probe too.
    async fn probe(&self, probe: &Probe) -> bool {
        let mut last = self.last_probe.lock().await;
        if let Some((at, there)) = *last {
            if at.elapsed() < PROBE_REUSE {
                return there;
            }
        }
        let delay = Duration::from_millis(self.delay_ms.load(Ordering::Relaxed));
        let asked = async {
            tokio::time::sleep(delay).await;
            probe().await
        };
        let there = tokio::time::timeout(self.limits.probe_timeout, asked)
            .await
            .unwrap_or(false);
        *last = Some((tokio::time::Instant::now(), there));
        if there {
            self.probes_answered.fetch_add(1, Ordering::Relaxed);
            self.note_answer();
        } else {
            self.probes_failed.fetch_add(1, Ordering::Relaxed);
        }
        there
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

/// The probe of a pool's database: `SELECT 1` on an idle connection of the
/// pool if there is one (cheap, and not one a slow call holds), else on a
/// connection of its own, opened as the pool opens them (the pool's may all
/// be busy); a failure on the idle one is tried again on a new one.
pub(super) fn probe_for<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> Probe
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let pool = pool.clone();
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            use sqlx::{Connection, Executor};
            if let Some(mut idle) = pool.try_acquire() {
                if idle.execute(super::sql::PING).await.is_ok() {
                    return true;
                }
                idle.close_on_drop();
            }
            let options = pool.connect_options();
            let Ok(mut conn) = DB::Connection::connect_with(&options).await else {
                return false;
            };
            conn.execute(super::sql::PING).await.is_ok()
        })
    })
}

/// Why [`Guard::wait`] gave a call up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GaveUp {
    /// Nothing answered by the deadline, not even the probe.
    Away,
    /// The database was there, but the call did not end within the patience.
    Busy(Duration),
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

    /// A burst of calls against a database that does not answer: as many as
    /// there are slots run, as many as may wait wait, the rest are refused
    /// at once; the peaks say so.
    #[tokio::test]
    async fn a_burst_fills_the_slots_and_the_queue_and_no_more() {
        let limits = GuardLimits {
            deadline: Duration::from_millis(200),
            max_in_flight: 2,
            max_waiting: 3,
            ..GuardLimits::default()
        };
        let guard = Arc::new(Guard::new(limits));
        tokio::time::pause();
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let guard = guard.clone();
                tokio::spawn(async move {
                    guard
                        .run("test", std::future::pending::<StoreResult<()>>())
                        .await
                })
            })
            .collect();
        for call in calls {
            assert!(matches!(
                call.await.unwrap(),
                Err(StoreError::Unavailable(_))
            ));
        }
        let stats = guard.stats();
        assert_eq!((stats.peak_in_flight, stats.peak_waiting), (2, 3));
        assert_eq!(stats.refused, 5);
        assert_eq!(stats.timed_out, 5);
        guard.reset_peaks();
        let stats = guard.stats();
        assert_eq!((stats.peak_in_flight, stats.peak_waiting), (0, 0));
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
