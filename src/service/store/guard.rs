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
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::*;

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

/// A [`Store`] that puts [`GuardLimits`] on another one.
pub struct GuardedStore {
    inner: Arc<dyn Store>,
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
    /// Cleared after every write that may change what a key check answers.
    key_cache: Option<Arc<crate::service::keycache::KeyCache>>,
}

impl GuardedStore {
    pub fn new(inner: Arc<dyn Store>, limits: GuardLimits) -> Self {
        Self {
            inner,
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
            key_cache: None,
        }
    }

    /// Clears `cache` after each write that may change what a key check
    /// answers, before the write returns (whatever its outcome: a write given
    /// up on may still have committed).
    pub fn with_key_cache(mut self, cache: Arc<crate::service::keycache::KeyCache>) -> Self {
        self.key_cache = Some(cache);
        self
    }

    fn key_changed(&self) {
        if let Some(cache) = &self.key_cache {
            cache.clear();
        }
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

    async fn run<T>(
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

#[async_trait]
impl Store for GuardedStore {
    async fn create_org(&self, org: &Org) -> StoreResult<()> {
        self.run("create_org", self.inner.create_org(org)).await
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
        self.run("list_orgs", self.inner.list_orgs()).await
    }

    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
        self.run("org_by_name", self.inner.org_by_name(name)).await
    }

    async fn set_plan(&self, org_id: &str, plan: Plan) -> StoreResult<bool> {
        let result = self
            .run("set_plan", self.inner.set_plan(org_id, plan))
            .await;
        self.key_changed();
        result
    }

    async fn create_user(&self, user: &NewUser) -> StoreResult<()> {
        self.run("create_user", self.inner.create_user(user)).await
    }

    async fn add_user(&self, user: &NewUser, audit: &AuditEvent) -> StoreResult<()> {
        self.run("add_user", self.inner.add_user(user, audit)).await
    }

    async fn list_users(&self, org_id: Option<&str>) -> StoreResult<Vec<User>> {
        self.run("list_users", self.inner.list_users(org_id)).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.run("user_by_email", self.inner.user_by_email(email))
            .await
    }

    async fn change_user(
        &self,
        user_id: &str,
        change: &UserChange,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        self.run(
            "change_user",
            self.inner.change_user(user_id, change, audit),
        )
        .await
    }

    async fn set_user_token(&self, email: &str, token_digest: &[u8; 32]) -> StoreResult<bool> {
        self.run(
            "set_user_token",
            self.inner.set_user_token(email, token_digest),
        )
        .await
    }

    async fn user_by_token(&self, token_digest: &[u8; 32]) -> StoreResult<Option<(User, Org)>> {
        self.lookups_by_token.fetch_add(1, Ordering::Relaxed);
        self.run("user_by_token", self.inner.user_by_token(token_digest))
            .await
    }

    async fn create_key(
        &self,
        key: &NewKey,
        idempotency: Option<&Idempotency<'_>>,
        audit: &AuditEvent,
    ) -> StoreResult<CreateOutcome> {
        self.run("create_key", self.inner.create_key(key, idempotency, audit))
            .await
    }

    async fn list_keys(&self, org_id: &str, filter: &KeyFilter) -> StoreResult<Vec<KeyRecord>> {
        self.run("list_keys", self.inner.list_keys(org_id, filter))
            .await
    }

    async fn change_cursor(&self, org_id: &str) -> StoreResult<i64> {
        self.run("change_cursor", self.inner.change_cursor(org_id))
            .await
    }

    async fn get_key(&self, org_id: &str, id: &str) -> StoreResult<Option<KeyRecord>> {
        self.run("get_key", self.inner.get_key(org_id, id)).await
    }

    async fn revoke_key(
        &self,
        org_id: &str,
        id: &str,
        at: DateTime<Utc>,
        by: &str,
        audit: &AuditEvent,
    ) -> StoreResult<Option<KeyRecord>> {
        let result = self
            .run(
                "revoke_key",
                self.inner.revoke_key(org_id, id, at, by, audit),
            )
            .await;
        self.key_changed();
        result
    }

    async fn rotate_key(
        &self,
        org_id: &str,
        old_id: &str,
        now: DateTime<Utc>,
        end: OldKeyEnd,
        revoked_by: &str,
        new: &NewKey,
        audit: &AuditEvent,
    ) -> StoreResult<RotateOutcome> {
        let result = self
            .run(
                "rotate_key",
                self.inner
                    .rotate_key(org_id, old_id, now, end, revoked_by, new, audit),
            )
            .await;
        self.key_changed();
        result
    }

    async fn key_by_digest(&self, digest: &[u8; 32]) -> StoreResult<Option<AuthRecord>> {
        self.lookups_by_digest.fetch_add(1, Ordering::Relaxed);
        self.run("key_by_digest", self.inner.key_by_digest(digest))
            .await
    }

    async fn record_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> StoreResult<()> {
        self.run("record_last_used", self.inner.record_last_used(uses))
            .await
    }

    /// Not guarded: an operator's bulk load (`keydeck admin seed`), never on a
    /// request path, may rightly take longer than any deadline; it runs
    /// without one and without taking a slot.
    async fn insert_seed_keys(&self, keys: &[SeedKey], audit: &[AuditEvent]) -> StoreResult<()> {
        self.inner.insert_seed_keys(keys, audit).await
    }

    async fn list_audit(
        &self,
        org_id: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.run("list_audit", self.inner.list_audit(org_id, limit, before))
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run("ping", self.inner.ping()).await
    }

    async fn close(&self) {
        self.inner.close().await;
    }

    async fn policy(&self, org_id: &str) -> StoreResult<Policy> {
        self.run("policy", self.inner.policy(org_id)).await
    }

    async fn set_policy(
        &self,
        org_id: &str,
        policy: &Policy,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        self.run("set_policy", self.inner.set_policy(org_id, policy, audit))
            .await
    }

    async fn add_ssh_key(&self, key: &SshKey, audit: &AuditEvent) -> StoreResult<()> {
        self.run("add_ssh_key", self.inner.add_ssh_key(key, audit))
            .await
    }

    async fn list_ssh_keys(&self, user_id: Option<&str>) -> StoreResult<Vec<SshKey>> {
        self.run("list_ssh_keys", self.inner.list_ssh_keys(user_id))
            .await
    }

    async fn remove_ssh_key(
        &self,
        user_id: &str,
        fingerprint: &str,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        self.run(
            "remove_ssh_key",
            self.inner.remove_ssh_key(user_id, fingerprint, audit),
        )
        .await
    }

    async fn ssh_key_owner(&self, fingerprint: &str) -> StoreResult<Option<(User, Org)>> {
        self.run("ssh_key_owner", self.inner.ssh_key_owner(fingerprint))
            .await
    }

    async fn touch_ssh_key(&self, fingerprint: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.run("touch_ssh_key", self.inner.touch_ssh_key(fingerprint, at))
            .await
    }

    async fn ssh_key_holder(&self, fingerprint: &str) -> StoreResult<Option<SshKeyHolder>> {
        self.run("ssh_key_holder", self.inner.ssh_key_holder(fingerprint))
            .await
    }

    async fn record_audit(&self, audit: &AuditEvent) -> StoreResult<()> {
        self.run("record_audit", self.inner.record_audit(audit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call past its deadline is given up when nothing else is answered (the
    /// database is away), and waited for while other calls are (it is busy).
    #[tokio::test]
    async fn a_busy_database_gets_patience_and_an_absent_one_does_not() {
        let inner: Arc<dyn Store> =
            Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
        let limits = GuardLimits {
            deadline: Duration::from_millis(200),
            patience: Duration::from_secs(1),
            ..GuardLimits::default()
        };
        let guard = Arc::new(GuardedStore::new(inner, limits));
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
