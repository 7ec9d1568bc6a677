//! PostgreSQL, for several `keydeck serve` replicas sharing one database: its
//! pool options (the replica's only pool), its opaque change cursor and the
//! cross-replica settle after key writes; the queries are shared
//! (`sql_store.rs`), what replicas tell each other is `replicas.rs`.
//!
//! Key checks may be answered from each replica's key cache; every write that
//! changes what they answer waits, before it returns, until every replica's
//! cache has let go of it (`service::keycache::postgres`), so a revocation
//! through one replica is seen by every other on its next key check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnection, PgPoolOptions, PgQueryResult};
use sqlx::{Connection, Executor, PgPool, Postgres};

use super::guard::{call_tag, Canceller};
use super::replicas::Replicas;
use super::sql;
use super::sql_store::Dialect;
use super::sync_cursor::CursorKey;
use super::window::TextSearch;
use super::{ms, SeedBatch, StoreError, StoreResult, Watch};

/// `migrations/postgres/*.sql`, embedded at build time.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a replica's key-cache lease lasts: a writer waits at most this
/// long for the replicas to acknowledge a key change (see `settle`).
pub const KEY_CACHE_LEASE: Duration = Duration::from_millis(1000);

/// The name of the sync cursors' secret in `server_secrets`.
const SYNC_CURSOR_SECRET: &str = "sync_cursor";

/// Names the connection for the guarded call it is handed to ([`call_tag`]).
async fn tag(conn: &mut PgConnection) -> sqlx::Result<()> {
    // The tag is ours, letters, digits and dashes: safe to quote as is.
    let set = format!("SET application_name = '{}'", call_tag());
    conn.execute(set.as_str()).await.map(drop)
}

/// The sync cursors' key, shared by every replica: the first replica to
/// start makes its secret, the others read that one.
async fn load_cursor_key(pool: &PgPool) -> StoreResult<CursorKey> {
    let mut fresh = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(fresh.as_mut_slice())
        .map_err(|e| StoreError::Corrupt(format!("the OS random number generator failed: {e}")))?;
    sqlx::query(sql::PG_ADD_SERVER_SECRET)
        .bind(SYNC_CURSOR_SECRET)
        .bind(fresh.as_slice())
        .bind(ms(Utc::now()))
        .execute(pool)
        .await?;
    let secret = zeroize::Zeroizing::new(
        sqlx::query_scalar::<_, Vec<u8>>(sql::PG_SERVER_SECRET)
            .bind(SYNC_CURSOR_SECRET)
            .fetch_one(pool)
            .await?,
    );
    if secret.len() < 32 {
        return Err(StoreError::Corrupt(format!(
            "the {SYNC_CURSOR_SECRET:?} server secret is {} bytes, not 32",
            secret.len()
        )));
    }
    Ok(CursorKey::new(&secret))
}

#[async_trait]
impl Dialect for Postgres {
    /// Makes change cursors opaque (`sync_cursor`), the same on every replica.
    type State = CursorKey;

    /// Connects to a `postgres://` URL and migrates the database.
    async fn connect(url: &str) -> StoreResult<(PgPool, CursorKey)> {
        // The guard decides how long a call may wait: 1.5 s when the database
        // answers nobody, up to its patience (10 s) while it answers others,
        // as when every connection is busy under load. The pool's own acquire
        // timeout must not cut that patience short. After an outage the pool
        // reconnects on the next call, and a dead connection is found by the
        // test before it is handed out. The replica's one pool: 16
        // connections for store calls, and 4 for what replicas share
        // ([`Replicas`]): two listeners that hold theirs, the key cache's
        // lease renewals and the failed-check counter's batches.
        // Each connection is named for the guarded call it is handed to
        // (`application_name`, [`call_tag`]), so that what a call given up
        // still runs can be cancelled ([`Dialect::canceller`]); naming it
        // also tests it, in place of the pool's ping.
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .after_connect(|conn, _| Box::pin(async move { tag(conn).await }))
            .before_acquire(|conn, _| Box::pin(async move { tag(conn).await.map(|()| true) }))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let cursor_key = load_cursor_key(&pool).await?;
        Ok((pool, cursor_key))
    }

    /// Cancels the queries still running on connections named for the call
    /// ([`call_tag`]), from a connection of its own (the pool's may all be
    /// busy). A connection handed to another call since is named for that
    /// one first, so only this call's work is cancelled.
    fn canceller(pool: &PgPool) -> Option<Canceller> {
        let options = pool.connect_options();
        Some(Arc::new(move |tag: String| {
            let options = options.clone();
            Box::pin(async move {
                let cancelled = async {
                    let mut conn = PgConnection::connect_with(&options).await?;
                    let n: i64 = sqlx::query_scalar(sql::PG_CANCEL_CALL)
                        .bind(&tag)
                        .fetch_one(&mut conn)
                        .await?;
                    conn.close().await?;
                    Ok::<_, sqlx::Error>(n)
                };
                match cancelled.await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!(call = %tag, queries = n, "cancelled a given-up call's queries")
                    }
                    Err(e) => {
                        tracing::debug!(call = %tag, error = %e, "could not cancel a given-up call's queries")
                    }
                }
            })
        }))
    }

    /// Opaque: sealed for the organisation (`sync_cursor`), opened again by
    /// [`Dialect::open_cursor`]. Anything else opens to some value, which
    /// lists more or fewer of the organisation's own keys, never another's.
    async fn change_cursor(pool: &PgPool, key: &CursorKey, org_id: &str) -> StoreResult<i64> {
        let cursor = sqlx::query_scalar::<_, i64>(sql::PG_CHANGE_CURSOR)
            .bind(org_id)
            .fetch_one(pool)
            .await?;
        Ok(key.seal(org_id, cursor as u64) as i64)
    }

    fn open_cursor(key: &CursorKey, org_id: &str, cursor: i64) -> i64 {
        key.open(org_id, cursor as u64) as i64
    }

    /// The replicas' leases, acknowledgements and notices, on this pool.
    fn watch(pool: &PgPool, _: &CursorKey) -> Watch {
        Watch::Postgres(Replicas::new(pool.clone()))
    }

    /// Waits until every replica holding a live lease has cleared its key
    /// cache for the change, or [`KEY_CACHE_LEASE`] passed (by then a replica
    /// that did not acknowledge has stopped answering from its cache). In
    /// the service and in `keydeck admin` alike.
    async fn settle(pool: &PgPool) -> StoreResult<()> {
        let started = Instant::now();
        let epoch: i64 = sqlx::query_scalar(sql::PG_KEYCHECK_EPOCH)
            .fetch_one(pool)
            .await?;
        let mut pause = Duration::from_millis(1);
        loop {
            let waiting: i64 = sqlx::query_scalar(sql::PG_REPLICAS_BEHIND)
                .bind(epoch)
                .fetch_one(pool)
                .await?;
            if waiting == 0 {
                return Ok(());
            }
            if started.elapsed() >= KEY_CACHE_LEASE {
                tracing::warn!(
                    replicas = waiting,
                    "replicas did not acknowledge a key change within their lease; they no longer answer from their caches"
                );
                return Ok(());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    const NUMBERS_SEEDED_CHANGES: bool = false;

    const SEED_AFTER: &'static [&'static str] = &["ANALYZE api_keys", "ANALYZE audit_log"];

    /// The table's (`$1`) indexes but its constraints' (primary keys, the
    /// keys' unique digest): the list's B-trees, the filter's trigram GIN
    /// indexes, the audit log's by organisation and by key; and the keys'
    /// per-row trigger that numbers their changes, since the load's `COPY`
    /// writes the same number itself (`copy_seed_batch`): a PL/pgSQL call
    /// per row, set aside (dropped and created again in the transaction,
    /// which holds the table's exclusive lock from its first `DROP INDEX`).
    const SEED_SET_ASIDE: &'static str = "SELECT drop_it, create_it FROM ( \
         SELECT 0 AS pass, i.relname::text AS name, \
         'DROP INDEX ' || quote_ident(i.relname) AS drop_it, pg_get_indexdef(i.oid) AS create_it \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
         WHERE x.indrelid = $1::text::regclass \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
         UNION ALL \
         SELECT 1, t.tgname::text, \
         'DROP TRIGGER ' || quote_ident(t.tgname) || ' ON api_keys', pg_get_triggerdef(t.oid) \
         FROM pg_trigger t \
         WHERE t.tgrelid = $1::text::regclass AND t.tgname = 'api_keys_changed' \
         ) aside ORDER BY pass, name";

    /// One `COPY … FROM STDIN` for the keys and one for their audit
    /// entries: rows streamed as text, no statement to parse or bind.
    async fn copy_seed_batch(conn: &mut PgConnection, batch: &SeedBatch) -> StoreResult<bool> {
        // What the `api_keys_changed` trigger writes: the transaction's id.
        let change_seq: i64 = sqlx::query_scalar(sql::PG_CURRENT_XACT)
            .fetch_one(&mut *conn)
            .await?;
        let change_seq = change_seq.to_string();
        let mut text = String::with_capacity(batch.keys.len() * 256);
        for s in &batch.keys {
            let k = &s.key;
            copy_row(
                &mut text,
                &[
                    Some(k.id.as_str()),
                    Some(&k.org_id),
                    Some(&k.name),
                    Some(&k.description),
                    Some(&k.prefix),
                    Some(&bytea(&k.digest)),
                    Some(&k.scopes.join(" ")),
                    Some(&ms(k.created_at).to_string()),
                    Some(&k.created_by),
                    k.expires_at.map(|t| ms(t).to_string()).as_deref(),
                    s.last_used_at.map(|t| ms(t).to_string()).as_deref(),
                    s.revoked
                        .as_ref()
                        .map(|(at, _)| ms(*at).to_string())
                        .as_deref(),
                    s.revoked.as_ref().map(|(_, by)| by.as_str()),
                    Some(&change_seq),
                ],
            );
        }
        copy_in(conn, sql::PG_COPY_SEED_KEYS, text).await?;
        let mut text = String::with_capacity(batch.audit.len() * 192);
        for a in &batch.audit {
            copy_row(
                &mut text,
                &[
                    Some(a.org_id.as_str()),
                    Some(&ms(a.at).to_string()),
                    Some(&a.actor_kind),
                    Some(&a.actor_id),
                    Some(&a.actor_name),
                    Some(&a.action),
                    Some(&a.api_key_id),
                    a.remote_addr.as_deref(),
                    Some(&a.details.to_string()),
                ],
            );
        }
        copy_in(conn, sql::PG_COPY_SEED_AUDIT, text).await?;
        Ok(true)
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    const BEGIN_WRITE: &'static str = "BEGIN";

    const SKIP_LOCKED: &'static str = "FOR UPDATE OF d SKIP LOCKED";

    const TEXT_SEARCH: TextSearch = TextSearch::Like;

    const EXPLAIN: &'static str = "EXPLAIN";

    const EXPLAIN_DETAIL: usize = 0;

    /// A test's tables hold a handful of rows, which a sequential scan reads
    /// fastest: the planner's choice would say nothing of a million keys.
    /// With sequential scans priced out, it takes an index whenever one can
    /// serve the query, and still scans the table when none can: a missing
    /// index shows.
    const EXPLAIN_SETUP: Option<(&'static str, &'static str)> =
        Some(("SET enable_seqscan = off", "RESET enable_seqscan"));
}

/// `rows` (COPY's text format) into `COPY … FROM STDIN`.
async fn copy_in(conn: &mut PgConnection, copy: &str, rows: String) -> StoreResult<()> {
    let mut copy = conn.copy_in_raw(copy).await?;
    if let Err(e) = copy.send(rows.into_bytes()).await {
        copy.abort(e.to_string()).await?;
        return Err(e.into());
    }
    copy.finish().await?;
    Ok(())
}

/// One row of COPY's text format: fields by tabs, `\N` for NULL, and the
/// backslash, tab, newline and carriage return escaped within a field.
fn copy_row(out: &mut String, fields: &[Option<&str>]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match field {
            None => out.push_str("\\N"),
            Some(text) => {
                for c in text.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
    out.push('\n');
}

/// A `bytea` in its hex input form (`\x…`), as COPY reads it before
/// unescaping: [`copy_row`] doubles the backslash.
fn bytea(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut hex = String::with_capacity(2 + bytes.len() * 2);
    hex.push_str("\\x");
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::{bytea, copy_row};

    #[test]
    fn copy_rows_escape_what_the_text_format_reads_specially() {
        let mut out = String::new();
        copy_row(
            &mut out,
            &[Some("a\tb\\c\nd\re"), None, Some(&bytea(&[0, 255]))],
        );
        assert_eq!(out, "a\\tb\\\\c\\nd\\re\t\\N\t\\\\x00ff\n");
    }
}
