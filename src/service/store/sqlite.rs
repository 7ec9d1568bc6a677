//! SQLite backend: the embedded default, one file in the data dir.
//!
//! WAL with `synchronous = FULL`: a transaction that returned is on disk, so a
//! key reported created survives `kill -9` and power loss.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::sql::{impl_store, HasDb};
use super::*;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "failed_auth",
        include_str!("../../../migrations/sqlite/0002_failed_auth.sql"),
    ),
    (
        3,
        "lifecycle",
        include_str!("../../../migrations/sqlite/0003_lifecycle.sql"),
    ),
];

pub struct SqliteStore {
    pool: SqlitePool,
}

impl HasDb for SqliteStore {
    type Db = sqlx::Sqlite;
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://PATH` URL and migrates it.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // Created private before SQLite opens it: SQLite gives `-wal` and
        // `-shm` the database file's mode, so they are private too.
        let file = options.get_filename();
        let name = file.to_string_lossy();
        if !name.is_empty() && !name.starts_with(':') && !name.starts_with("file:") {
            crate::service::create_private_file(file).map_err(sqlx::Error::Io)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        migrator(MIGRATIONS).run(&pool).await?;
        Ok(Self { pool })
    }
}

impl_store!(SqliteStore);
