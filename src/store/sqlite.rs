//! SQLite, the embedded default (one file in the data dir): how its pool is
//! opened and its change cursor read; the queries are shared (`sql_store.rs`).
//!
//! WAL with `synchronous = FULL`: a transaction that returned is on disk, so a
//! key reported created survives `kill -9` and power loss.
//!
//! [`DataVersion`] is how a serving process sees other processes' commits
//! (`keydeck admin` writing the same file): not a pool, one connection.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteQueryResult, SqliteSynchronous,
};
use sqlx::{Connection, Sqlite, SqlitePool};

use super::sql;
use super::sql_store::Dialect;
use super::window::TextSearch;
use super::{StoreResult, Watch};

/// `migrations/sqlite/*.sql`, embedded at build time.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Counts commits by other connections to the database file: `PRAGMA
/// data_version` read on a connection of its own (a pooled one would count
/// the pool's own writes on its other connections).
pub struct DataVersion {
    options: Arc<SqliteConnectOptions>,
    conn: Option<SqliteConnection>,
}

impl DataVersion {
    /// The value now; on a new connection if the last one failed.
    pub async fn read(&mut self) -> sqlx::Result<i64> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self
                .conn
                .insert(SqliteConnection::connect_with(&self.options).await?),
        };
        let read = sqlx::query_scalar(sql::SQLITE_DATA_VERSION)
            .fetch_one(conn)
            .await;
        if read.is_err() {
            self.conn = None;
        }
        read
    }

    /// Gives up the connection (one that did not answer in time): the next
    /// read opens another.
    pub fn reset(&mut self) {
        self.conn = None;
    }

    pub async fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}

/// How [`DataVersion`]s are opened for the store's file.
#[derive(Clone)]
pub struct VersionSource(Arc<SqliteConnectOptions>);

impl VersionSource {
    fn new(url: &str) -> StoreResult<Self> {
        // WAL as the store sets it: opening must not change the journal mode.
        Ok(Self(Arc::new(
            SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(1)),
        )))
    }

    /// A data version on a connection opened now.
    pub async fn open(&self) -> sqlx::Result<DataVersion> {
        let conn = SqliteConnection::connect_with(&self.0).await?;
        Ok(DataVersion {
            options: self.0.clone(),
            conn: Some(conn),
        })
    }
}

#[async_trait]
impl Dialect for Sqlite {
    /// Where the key cache's watcher reads the data version from.
    type State = VersionSource;

    /// Opens (creating if missing) the database at a `sqlite://PATH` URL and migrates it.
    async fn connect(url: &str) -> StoreResult<(SqlitePool, VersionSource)> {
        let versions = VersionSource::new(url)?;
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
        Ok((pool, versions))
    }

    /// The `change_seq` the organisation's next write will get (writers take
    /// turns, so every later write is at or past it).
    async fn change_cursor(pool: &SqlitePool, _: &VersionSource, org_id: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(sql::SQLITE_CHANGE_CURSOR)
            .bind(org_id)
            .fetch_one(pool)
            .await?)
    }

    fn open_cursor(_: &VersionSource, _org_id: &str, cursor: i64) -> i64 {
        cursor
    }

    fn watch(_pool: &SqlitePool, versions: &VersionSource) -> Watch {
        Watch::Sqlite(versions.clone())
    }

    /// One process per database file: its own cache is cleared by the
    /// store's key-write hook, and other processes' by their watchers.
    async fn settle(_pool: &SqlitePool) -> StoreResult<()> {
        Ok(())
    }

    const NUMBERS_SEEDED_CHANGES: bool = true;

    const NUMBERED_PARAMS: bool = false;

    /// 32 MiB of page cache for the load (the default 2 MiB thrashes on the
    /// random ids and digests of a million keys), and temporary files in
    /// memory: each multi-row insert keeps the pages it changes in a
    /// statement journal (to undo the statement alone), ~5 KB a key of
    /// random ids and digests, written to a temporary file (14 GB for a
    /// million keys) and thrown away a statement later. Back to the defaults after.
    const SEED_SETTINGS: (&'static [&'static str], &'static [&'static str]) = (
        &["PRAGMA cache_size = -32768", "PRAGMA temp_store = MEMORY"],
        &["PRAGMA cache_size = -2000", "PRAGMA temp_store = DEFAULT"],
    );

    /// The table's (`$1`) own indexes (not the ones of its constraints:
    /// the keys' primary key and unique digest, which have no SQL) and the
    /// keys' FTS5 insert trigger.
    const SEED_SET_ASIDE: &'static str =
        "SELECT 'DROP ' || UPPER(type) || ' ' || name, sql FROM sqlite_master \
         WHERE tbl_name = $1 AND sql IS NOT NULL \
         AND (type = 'index' OR name = 'api_keys_fts_on_insert') ORDER BY type, name";

    /// Each index is built by a sort of all its entries: in memory (see
    /// `SEED_SETTINGS`) that is 100 MiB more at a million keys; in
    /// temporary files beyond the page cache, whose size is also what the
    /// sort holds in memory at a time (8 MiB here: the builds write their
    /// index in order and need no large cache). Allowed inside the
    /// transaction while the connection has no temporary table.
    const SEED_BEFORE_REBUILD: &'static [&'static str] =
        &["PRAGMA temp_store = DEFAULT", "PRAGMA cache_size = -8192"];

    /// The filter's trigram copy of the loaded keys, in one statement.
    const SEED_CATCH_UP: Option<&'static str> = Some(
        "INSERT INTO api_keys_fts (key_id, name, prefix, description, scopes) \
         SELECT id, name, prefix, description, scopes FROM api_keys WHERE change_seq > $1",
    );

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";

    const TEXT_SEARCH: TextSearch = TextSearch::Fts5Trigram;

    const EXPLAIN: &'static str = "EXPLAIN QUERY PLAN";

    const EXPLAIN_DETAIL: usize = 3;

    const EXPLAIN_SETUP: Option<(&'static str, &'static str)> = None;
}
