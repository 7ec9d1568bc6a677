//! SQLite, the embedded default (one file in the data dir): how its pool is
//! opened and its change cursor read; the queries are shared (`sql_store.rs`).
//!
//! WAL with `synchronous = FULL`: a transaction that returned is on disk, so a
//! key reported created survives `kill -9` and power loss.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool};

use super::sql;
use super::sql_store::Dialect;
use super::StoreResult;

/// `migrations/sqlite/*.sql`, embedded at build time.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

#[async_trait]
impl Dialect for Sqlite {
    type State = ();

    /// Opens (creating if missing) the database at a `sqlite://PATH` URL and migrates it.
    async fn connect(url: &str) -> StoreResult<(SqlitePool, ())> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // Created private before SQLite opens it: SQLite gives `-wal` and
        // `-shm` the database file's mode, so they are private too. Files an
        // older build (or a copy, a restore) left readable by others are made
        // private first, or refused with the command that fixes them.
        let file = options.get_filename();
        let name = file.to_string_lossy();
        if !name.is_empty() && !name.starts_with(':') && !name.starts_with("file:") {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = file.as_os_str().to_owned();
                path.push(suffix);
                crate::fs::make_private(std::path::Path::new(&path), "database file")
                    .map_err(|e| sqlx::Error::Configuration(e.into()))?;
            }
            crate::fs::create_private_file(file).map_err(sqlx::Error::Io)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok((pool, ()))
    }

    /// The `change_seq` the organisation's next write will get (writers take
    /// turns, so every later write is at or past it).
    async fn change_cursor(pool: &SqlitePool, (): &(), org_id: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(sql::SQLITE_CHANGE_CURSOR)
            .bind(org_id)
            .fetch_one(pool)
            .await?)
    }

    fn open_cursor((): &(), _org_id: &str, cursor: i64) -> i64 {
        cursor
    }

    /// One process per database file: its own cache is cleared by the
    /// store's key-write hook, and other processes' by their watchers.
    async fn settle(_pool: &SqlitePool) -> StoreResult<()> {
        Ok(())
    }

    const NUMBERS_SEEDED_CHANGES: bool = true;

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}
