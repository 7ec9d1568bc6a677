//! What `keydeck serve` replicas sharing one PostgreSQL database tell each
//! other, on the store's own pool (one pool per replica): the key caches'
//! leases and acknowledgements, the shared failed-check counter, and the
//! listeners for their notices. The rules that use these (when to clear, to
//! trust, to lock a client out) live with the service's key cache and limiter.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

use super::sql;

/// A `LISTEN`/`NOTIFY` channel between replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Sent by a trigger (migration 0006) in every transaction that changes
    /// what a key check answers; the payload is the new key-check epoch.
    KeyChanges,
    /// Sent by [`Replicas::add_failures`] when a client reaches the limit;
    /// the payload reads `ADDR UNTIL_MS`.
    FailureLocks,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Self::KeyChanges => "keydeck_keycheck",
            Self::FailureLocks => "keydeck_failed_auth",
        }
    }
}

/// The store's PostgreSQL pool, for what replicas share (see the module
/// doc). Cheap to clone.
#[derive(Clone)]
pub struct Replicas {
    pool: PgPool,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Replicas {
    pub(super) fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// A listener on `channel`, on a connection taken from the store's pool
    /// (held until the listener is dropped).
    pub async fn listen(&self, channel: Channel) -> sqlx::Result<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(channel.name()).await?;
        Ok(listener)
    }

    // The key caches' leases (see `service::keycache::postgres`).

    /// Deletes the leases of replicas gone for `gone_for`, then registers
    /// replica `id` with a lease of `lease`, acknowledging the newest
    /// key-check epoch (its cache starts empty); returns that epoch.
    pub async fn join(&self, id: &str, lease: Duration, gone_for: Duration) -> sqlx::Result<i64> {
        sqlx::query(sql::PG_FORGET_GONE_REPLICAS)
            .bind(millis(gone_for))
            .execute(&self.pool)
            .await?;
        sqlx::query_scalar(sql::PG_JOIN_REPLICAS)
            .bind(id)
            .bind(millis(lease))
            .fetch_one(&self.pool)
            .await
    }

    /// Renews replica `id`'s lease for `lease` (on the database's clock),
    /// with its acknowledgement `acked`; returns the newest key-check epoch.
    pub async fn renew(&self, id: &str, lease: Duration, acked: i64) -> sqlx::Result<i64> {
        sqlx::query_scalar(sql::PG_RENEW_LEASE)
            .bind(id)
            .bind(millis(lease))
            .bind(acked)
            .fetch_one(&self.pool)
            .await
    }

    /// Replica `id` has cleared its cache for `epoch` (never moved back).
    pub async fn acknowledge(&self, id: &str, epoch: i64) -> sqlx::Result<()> {
        sqlx::query(sql::PG_ACKNOWLEDGE)
            .bind(id)
            .bind(epoch)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replica `id` is gone: writers need not wait for it any more.
    pub async fn leave(&self, id: &str) -> sqlx::Result<()> {
        sqlx::query(sql::PG_LEAVE_REPLICAS)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // The shared failed-check counter (see `service::shared_limit`).

    /// Clients with at least `max` failures in a window that started after
    /// `since_ms`: (address, window start in Unix ms).
    pub async fn failure_locks(&self, max: i64, since_ms: i64) -> sqlx::Result<Vec<(String, i64)>> {
        sqlx::query_as(sql::PG_FAILURE_LOCKS)
            .bind(max)
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await
    }

    /// Adds each client's failures (address, count) to its window at
    /// `now_ms`, restarting a window older than `window_ms`, in one
    /// transaction and in the order given (give every replica the same
    /// order, so that concurrent batches cannot deadlock). For each client
    /// whose total is at `max` or more, calls `locked(index, until_ms)`;
    /// those that reached it with this batch are sent on
    /// [`Channel::FailureLocks`] at the commit.
    pub async fn add_failures(
        &self,
        counts: &[(String, i64)],
        now_ms: i64,
        window_ms: i64,
        max: i64,
        mut locked: impl FnMut(usize, i64) + Send,
    ) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        for (i, (addr, n)) in counts.iter().enumerate() {
            let (start, total): (i64, i64) = sqlx::query_as(sql::PG_ADD_FAILURES)
                .bind(addr)
                .bind(now_ms)
                .bind(n)
                .bind(now_ms - window_ms)
                .fetch_one(&mut *tx)
                .await?;
            if total < max {
                continue;
            }
            let until = start + window_ms;
            locked(i, until);
            if total - n < max {
                sqlx::query(sql::PG_NOTIFY)
                    .bind(Channel::FailureLocks.name())
                    .bind(format!("{addr} {until}"))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await
    }

    /// Deletes the failure windows that started at or before `ended_ms`.
    pub async fn forget_failures(&self, ended_ms: i64) -> sqlx::Result<()> {
        sqlx::query(sql::PG_FORGET_FAILURES)
            .bind(ended_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
