//! PostgreSQL backend: for several `keydeck serve` replicas sharing one database.
//!
//! Nothing is cached between requests, so a revocation through one replica is
//! seen by every other on its next key check.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::sql::{impl_store, HasDb};
use super::*;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "failed_auth",
        include_str!("../../../migrations/postgres/0002_failed_auth.sql"),
    ),
    (
        3,
        "lifecycle",
        include_str!("../../../migrations/postgres/0003_lifecycle.sql"),
    ),
];

pub struct PgStore {
    pool: PgPool,
}

impl HasDb for PgStore {
    type Db = sqlx::Postgres;
}

impl PgStore {
    /// Connects to a `postgres://` URL and migrates the database.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // The guard decides how long a call may wait: 1.5 s when the database
        // answers nobody, up to its patience (10 s) while it answers others,
        // as when every connection is busy under load. The pool's own acquire
        // timeout must not cut that patience short. After an outage the pool
        // reconnects on the next call, and a dead connection is found by the
        // test before it is handed out.
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(true)
            .connect(url)
            .await?;
        migrator(MIGRATIONS).run(&pool).await?;
        Ok(Self { pool })
    }
}

impl_store!(PgStore);
