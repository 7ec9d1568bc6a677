//! The one [`Store`] implementation, generic over a [`Dialect`]: every query
//! is written here once, bound and run the same way on SQLite and
//! PostgreSQL, and run through the [`Guard`] when the store has one.
//! `sqlite.rs` and `postgres.rs` hold only what differs.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::database::Database;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Type};
use tokio::sync::mpsc::Receiver;

use super::guard::{Guard, Lookup};
use super::sql;
use super::window::{self, Bind, Statement, TextSearch};
use super::*;

mod usage;

/// What a backend does its own way; everything else is shared. Implemented
/// by the sqlx database types themselves (`sqlx::Sqlite`, `sqlx::Postgres`).
#[async_trait]
pub(super) trait Dialect: Database {
    /// What the dialect keeps besides its pool.
    type State: Send + Sync + 'static;

    /// Connects (with the backend's pool options), migrates, and loads the state.
    async fn connect(url: &str) -> StoreResult<(Pool<Self>, Self::State)>;

    /// The organisation's change cursor, as [`Store::change_cursor`] hands it out.
    async fn change_cursor(
        pool: &Pool<Self>,
        state: &Self::State,
        org_id: &str,
    ) -> StoreResult<i64>;

    /// A change cursor from [`Dialect::change_cursor`] made a `change_seq` again.
    fn open_cursor(state: &Self::State, org_id: &str, cursor: i64) -> i64;

    /// After a commit that may change what a key check answers, before the
    /// write returns: waits until every replica's key cache let go of it.
    async fn settle(pool: &Pool<Self>) -> StoreResult<()>;

    /// How caches over the store see other connections' writes.
    fn watch(pool: &Pool<Self>, state: &Self::State) -> Watch;

    /// Whether seeded keys are numbered (`change_seq`) by the insert itself,
    /// from [`sql::SQLITE_HIGHEST_CHANGE_SEQ`], rather than by the database.
    const NUMBERS_SEEDED_CHANGES: bool;

    /// Whether a multi-row insert numbers its parameters (`$1`, as
    /// PostgreSQL must) rather than leaving them anonymous (`?`). SQLite
    /// finds each `$N` by a linear scan of the statement's parameter names
    /// (`sqlite3_bind_parameter_name`), quadratic in the 14 000 parameters of
    /// a seed chunk; an anonymous one binds by position at once.
    const NUMBERED_PARAMS: bool = true;

    /// Run on the bulk load's connection before it ([`Store::insert_seed_keys`])
    /// and after it, e.g. a larger page cache for the load.
    const SEED_SETTINGS: (&'static [&'static str], &'static [&'static str]) = (&[], &[]);

    /// What a large bulk load sets aside and builds again once at the end,
    /// instead of updating it row by row: rows of (the statement that drops
    /// it, the one that creates it again), for the indexes of the table
    /// named by `$1` (`api_keys`, `audit_log`; but the ones its constraints
    /// own) and the key triggers the load does the work of itself
    /// ([`Dialect::SEED_CATCH_UP`], the `change_seq` it writes). An index
    /// built from the sorted rows costs a fraction of a million inserts at
    /// random places in it.
    const SEED_SET_ASIDE: &'static str;

    /// Run before the set-aside indexes are built again, e.g. temporary
    /// files back on disk for the sort of each index.
    const SEED_BEFORE_REBUILD: &'static [&'static str] = &[];

    /// After a load that set its triggers aside: what they would have done
    /// for the loaded rows, which are the ones whose `change_seq` is past
    /// `$1` (the highest before the load; only where the load numbers its
    /// rows itself, [`Dialect::NUMBERS_SEEDED_CHANGES`]). `None`: nothing to do.
    const SEED_CATCH_UP: Option<&'static str> = None;

    /// Run after a large load has committed, e.g. fresh planner statistics:
    /// a load by `COPY` leaves none, and where autovacuum is off nothing
    /// gathers them, so the planner guesses and the window's first page of
    /// a tab becomes a scan of every key (1.4 s at a million, issue 19).
    const SEED_AFTER: &'static [&'static str] = &[];

    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// Writes a batch of seeded keys and their audit entries the backend's
    /// fastest way, if it has one
    /// (PostgreSQL: `COPY`); `false`: the caller uses multi-row inserts.
    async fn copy_seed_batch(
        _conn: &mut Self::Connection,
        _batch: &SeedBatch,
    ) -> StoreResult<bool> {
        Ok(false)
    }

    /// How a write transaction starts. SQLite: `BEGIN IMMEDIATE`, taking the
    /// write lock at once (waiting for it as long as the busy timeout says):
    /// a deferred one that wrote the FTS5 filter table through a trigger
    /// came back "database is locked" at once when writers overlapped.
    const BEGIN_WRITE: &'static str;

    /// How `q` is found (`window::text_filter`).
    const TEXT_SEARCH: TextSearch;

    /// What shows a statement's plan, run before it (`explain_hot_queries`).
    #[cfg_attr(not(feature = "test-support"), allow(dead_code))]
    const EXPLAIN: &'static str;

    /// The column of a plan row that describes it.
    #[cfg_attr(not(feature = "test-support"), allow(dead_code))]
    const EXPLAIN_DETAIL: usize;

    /// Run on the connection before the plans are read, and the statement that undoes it.
    #[cfg_attr(not(feature = "test-support"), allow(dead_code))]
    const EXPLAIN_SETUP: Option<(&'static str, &'static str)>;

    /// How the guard cancels what a call given up still runs in the
    /// database, if the backend can (PostgreSQL).
    /// What claiming webhook deliveries adds to lock the rows it picks
    /// and skip those another replica holds (PostgreSQL).
    const SKIP_LOCKED: &'static str = "";

    fn canceller(_pool: &Pool<Self>) -> Option<super::guard::Canceller> {
        None
    }
}

/// Told after every write that may change what a key check answers,
/// whatever its outcome (a write given up on may still have committed).
pub trait KeyWrites: Send + Sync {
    fn key_changed(&self);
}

/// What an opened store is run with (both optional: `keydeck admin` and
/// tests open a bare store).
#[derive(Default, Clone)]
pub struct Hooks {
    /// Deadlines and bounds on every call (but the bulk seed load).
    pub guard: Option<Arc<Guard>>,
    pub key_writes: Option<Arc<dyn KeyWrites>>,
}

pub(super) struct SqlStore<DB: Dialect> {
    pub(super) pool: Pool<DB>,
    state: DB::State,
    hooks: Hooks,
}

impl<DB: Dialect> SqlStore<DB> {
    pub(super) async fn connect(url: &str, hooks: Hooks) -> StoreResult<Self>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    {
        let (pool, state) = DB::connect(url).await?;
        if let Some(guard) = &hooks.guard {
            guard.set_probe(super::guard::probe_for(&pool));
            if let Some(canceller) = DB::canceller(&pool) {
                guard.set_canceller(canceller);
            }
        }
        Ok(Self { pool, state, hooks })
    }

    /// Runs a call through the guard, if the store has one.
    pub(super) async fn run<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = StoreResult<T>> + Send,
    ) -> StoreResult<T> {
        match &self.hooks.guard {
            Some(guard) => guard.run(what, call).await,
            None => call.await,
        }
    }

    /// Runs a write that may change what a key check answers.
    async fn run_key_write<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = StoreResult<T>> + Send,
    ) -> StoreResult<T> {
        let result = self.run(what, call).await;
        if let Some(hook) = &self.hooks.key_writes {
            hook.key_changed();
        }
        result
    }

    fn count(&self, lookup: Lookup) {
        if let Some(guard) = &self.hooks.guard {
            guard.count(lookup);
        }
    }
}

/// A bulk load of at least this many keys, and of at least as many as the
/// database holds, sets indexes and triggers aside ([`Dialect::SEED_SET_ASIDE`]).
const SET_ASIDE_FROM: u64 = 10_000;

/// `head` followed by `VALUES` and `rows` rows of `columns` parameters each:
/// `($1, $2), ($3, $4)`, or `(?, ?), (?, ?)` when not `numbered`.
fn multi_row_insert(head: &str, rows: usize, columns: usize, numbered: bool) -> String {
    let row = |r: usize| {
        let params: Vec<String> = (1..=columns)
            .map(|c| match numbered {
                true => format!("${}", r * columns + c),
                false => "?".to_owned(),
            })
            .collect();
        format!("({})", params.join(", "))
    };
    let rows: Vec<String> = (0..rows).map(row).collect();
    format!("{head}VALUES {}", rows.join(", "))
}

/// A key read by a window, with its sort value (`window::segment_select`).
#[derive(sqlx::FromRow)]
struct WindowRow {
    #[sqlx(flatten)]
    key: KeyRow,
    sort_int: Option<i64>,
    sort_text: Option<String>,
}

/// The counts `window::counts` selects.
#[derive(sqlx::FromRow)]
struct CountsRow {
    all_keys: i64,
    active: i64,
    expired: i64,
    revoked: i64,
    attention: i64,
    expiring: i64,
    rotate: i64,
    unused: i64,
    rotating: i64,
    policy: i64,
    exposed: i64,
    refused: i64,
    no_secret: i64,
}

impl From<CountsRow> for KeyCounts {
    fn from(r: CountsRow) -> Self {
        Self {
            all: r.all_keys,
            active: r.active,
            expired: r.expired,
            revoked: r.revoked,
            attention: r.attention,
            expiring: r.expiring,
            rotate: r.rotate,
            unused: r.unused,
            rotating: r.rotating,
            policy: r.policy,
            exposed: r.exposed,
            refused: r.refused,
            no_secret: r.no_secret,
        }
    }
}

/// A statement of `window.rs` with its parameters bound.
fn bound<'q, DB: Database, O>(
    st: &'q Statement,
) -> sqlx::query::QueryAs<'q, DB, O, DB::Arguments<'q>>
where
    for<'r> O: sqlx::FromRow<'r, DB::Row>,
    for<'a> DB::Arguments<'a>: IntoArguments<'a, DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
{
    st.binds
        .iter()
        .fold(sqlx::query_as::<DB, O>(&st.text), |q, b| match b {
            Bind::Int(v) => q.bind(*v),
            Bind::Text(t) => q.bind(t.as_str()),
        })
}

/// The queries' helpers. The bounds (here and on the [`Store`] impl) are
/// what the shared queries need of a database: both sqlx backends meet them.
impl<DB: Dialect> SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> String: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q, 'r> i64: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q, 'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB>,
    for<'q, 'r> bool: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
{
    /// [`Store::list_audit`] and [`Store::list_audit_of_key`]: the
    /// organisation's entries (or, with `key_id`, that key's, from its
    /// index) older than `before`, newest first, fetched and mapped one way.
    async fn audit_entries(
        &self,
        org_id: &str,
        key_id: Option<&str>,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>> {
        let (what, statement) = match key_id {
            Some(_) => ("list_audit_of_key", sql::LIST_AUDIT_OF_KEY),
            None => ("list_audit", sql::LIST_AUDIT),
        };
        self.run(what, async {
            let mut query = sqlx::query_as::<DB, AuditRow>(statement).bind(org_id);
            if let Some(key_id) = key_id {
                query = query.bind(key_id);
            }
            query
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(AuditRecord::try_from)
                .collect()
        })
        .await
    }

    /// [`Store::list_window`]: the window's segments read in order until the page is full.
    async fn window_in(&self, org_id: &str, query: &KeyQuery) -> StoreResult<Vec<WindowKey>> {
        let changed_since = query
            .changed_since
            .map(|c| DB::open_cursor(&self.state, org_id, c));
        let limit = query.limit;
        let mut keys: Vec<WindowKey> = Vec::new();
        let search = self.text_search(query.q.as_deref()).await?;
        let (reads, backwards) = window::page_reads(org_id, query, search, changed_since, limit);
        for read in reads {
            let left = limit as usize - keys.len();
            if left == 0 {
                break;
            }
            let mut st = read.statement;
            // The last parameter is the LIMIT: what the segments before left.
            if let Some(Bind::Int(l)) = st.binds.last_mut() {
                *l = left as i64;
            }
            let rows: Vec<WindowRow> = bound::<DB, WindowRow>(&st).fetch_all(&self.pool).await?;
            for row in rows {
                let value = match (row.sort_int, row.sort_text) {
                    (Some(v), _) => SortValue::Int(v),
                    (None, Some(t)) => SortValue::Text(t),
                    (None, None) => {
                        return Err(StoreError::Corrupt("a key without a sort value".into()))
                    }
                };
                let key = KeyRecord::try_from(row.key)?;
                let position = KeyPosition {
                    sort: query.sort,
                    segment: read.segment,
                    value,
                    id: key.id.clone(),
                };
                keys.push(WindowKey { key, position });
            }
        }
        if backwards {
            keys.reverse();
        }
        Ok(keys)
    }

    /// How the dialect finds `q` here: with FTS5, whether its matches are
    /// few ([`window::fts_match_count`], at most [`window::FEW_MATCHES`]
    /// entries read).
    async fn text_search(&self, q: Option<&str>) -> StoreResult<TextSearch> {
        let Some(st) = q.and_then(|q| window::fts_match_count(q, DB::TEXT_SEARCH)) else {
            return Ok(DB::TEXT_SEARCH);
        };
        let (n,): (i64,) = bound::<DB, (i64,)>(&st).fetch_one(&self.pool).await?;
        Ok(if n < window::FEW_MATCHES {
            TextSearch::Fts5TrigramFew
        } else {
            DB::TEXT_SEARCH
        })
    }

    /// The plan rows of an `EXPLAIN` statement, their detail column as text.
    #[cfg(feature = "test-support")]
    async fn plan_lines(st: &Statement, conn: &mut DB::Connection) -> StoreResult<Vec<String>> {
        use sqlx::Row;
        let query = st
            .binds
            .iter()
            .fold(sqlx::query::<DB>(&st.text), |q, b| match b {
                Bind::Int(v) => q.bind(*v),
                Bind::Text(t) => q.bind(t.as_str()),
            });
        let rows = query.fetch_all(conn).await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, usize>(DB::EXPLAIN_DETAIL)?))
            .collect()
    }

    /// Inserts `key`; `replaces`: the key a rotation makes it the successor of.
    async fn insert_key(
        &self,
        tx: &mut DB::Connection,
        key: &NewKey,
        replaces: Option<&str>,
    ) -> StoreResult<KeyRecord> {
        sqlx::query_as::<DB, KeyRow>(sql::INSERT_KEY)
            .bind(&key.id)
            .bind(&key.org_id)
            .bind(&key.name)
            .bind(&key.description)
            .bind(&key.prefix)
            .bind(key.digest.as_slice())
            .bind(key.scopes.join(" "))
            .bind(ms(key.created_at))
            .bind(&key.created_by)
            .bind(key.expires_at.map(ms))
            .bind(replaces)
            .bind(key.secret_pending)
            .fetch_one(tx)
            .await?
            .try_into()
    }

    async fn insert_user<'e>(
        exec: impl Executor<'e, Database = DB>,
        user: &NewUser,
    ) -> StoreResult<()> {
        sqlx::query::<DB>(sql::INSERT_USER)
            .bind(&user.id)
            .bind(&user.org_id)
            .bind(&user.email)
            .bind(user.role.as_str())
            .bind(user.token_digest.as_slice())
            .bind(ms(user.created_at))
            .execute(exec)
            .await?;
        Ok(())
    }

    /// Writes the audit entry and, on the same connection (the change's
    /// transaction), the webhook events the change makes (the outbox).
    pub(super) async fn insert_audit(conn: &mut DB::Connection, a: &AuditEvent) -> StoreResult<()> {
        sqlx::query::<DB>(sql::INSERT_AUDIT)
            .bind(&a.org_id)
            .bind(ms(a.at))
            .bind(&a.actor_kind)
            .bind(&a.actor_id)
            .bind(&a.actor_name)
            .bind(&a.action)
            .bind(&a.api_key_id)
            .bind(&a.remote_addr)
            .bind(a.details.to_string())
            .execute(&mut *conn)
            .await?;
        Self::outbox(conn, a).await
    }

    /// Runs `query` in a transaction and, if it changed a row, writes
    /// `audit` with it; `false` (and nothing written) if it changed none.
    async fn change_with_audit<'q>(
        &self,
        query: sqlx::query::Query<'q, DB, DB::Arguments<'q>>,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let changed = DB::rows_affected(&query.execute(&mut *tx).await?);
        if changed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        Self::insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_key_in_tx(
        &self,
        key: &NewKey,
        idempotency: Option<&Idempotency<'_>>,
        audit: &AuditEvent,
    ) -> StoreResult<CreateOutcome> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        if let Some(Idempotency {
            key: idem,
            request_digest,
        }) = idempotency
        {
            // Idempotency keys are remembered for a day, as at Stripe;
            // the organisation's older ones are forgotten here.
            sqlx::query::<DB>(sql::FORGET_OLD_IDEMPOTENCY_KEYS)
                .bind(&key.org_id)
                .bind(ms(key.created_at - IDEMPOTENCY_WINDOW))
                .execute(&mut *tx)
                .await?;
            let claimed = sqlx::query::<DB>(sql::CLAIM_IDEMPOTENCY_KEY)
                .bind(&key.org_id)
                .bind(*idem)
                .bind(&key.id)
                .bind(ms(key.created_at))
                .bind(request_digest.as_slice())
                .execute(&mut *tx)
                .await?;
            if DB::rows_affected(&claimed) == 0 {
                // Rows from before request digests were kept have none: a repeat.
                let stored: Option<Vec<u8>> =
                    sqlx::query_scalar::<DB, _>(sql::IDEMPOTENCY_REQUEST_DIGEST)
                        .bind(&key.org_id)
                        .bind(*idem)
                        .fetch_one(&mut *tx)
                        .await?;
                if stored.is_some_and(|d| d.as_slice() != request_digest.as_slice()) {
                    tx.rollback().await?;
                    return Ok(CreateOutcome::Reused);
                }
                let earlier = sqlx::query_as::<DB, KeyRow>(sql::KEY_BY_IDEMPOTENCY_KEY)
                    .bind(&key.org_id)
                    .bind(*idem)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.rollback().await?;
                return Ok(CreateOutcome::Repeat(earlier.try_into()?));
            }
        }
        let created = self.insert_key(&mut tx, key, None).await?;
        Self::insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(CreateOutcome::Created(created))
    }

    async fn revoke_in_tx(
        &self,
        org_id: &str,
        id: &str,
        at: DateTime<Utc>,
        by: &str,
        audit: &AuditEvent,
    ) -> StoreResult<Option<KeyRecord>> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let row = sqlx::query_as::<DB, KeyRow>(sql::REVOKE_KEY)
            .bind(ms(at))
            .bind(by)
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            // Revoked already, perhaps by a call still settling: this
            // answer too waits until the replicas have caught up.
            DB::settle(&self.pool).await?;
            return self.key(org_id, id).await;
        };
        Self::insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        DB::settle(&self.pool).await?;
        Ok(Some(row.try_into()?))
    }

    async fn rotate_in_tx(&self, r: &Rotation<'_>) -> StoreResult<RotateOutcome> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let ended = match r.end {
            OldKeyEnd::RevokeNow => sqlx::query_as::<DB, KeyRow>(sql::ROTATE_REVOKE_OLD)
                .bind(ms(r.now))
                .bind(r.revoked_by),
            OldKeyEnd::ExpireAt(until) => sqlx::query_as::<DB, KeyRow>(sql::ROTATE_EXPIRE_OLD)
                .bind(ms(until))
                .bind(ms(r.now)),
        }
        .bind(r.org_id)
        .bind(r.old_id)
        .bind(&r.new.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(old) = ended else {
            tx.rollback().await?;
            return self.not_rotated(r.org_id, r.old_id).await;
        };
        let created = self.insert_key(&mut tx, r.new, Some(r.old_id)).await?;
        Self::insert_audit(&mut *tx, r.audit).await?;
        tx.commit().await?;
        DB::settle(&self.pool).await?;
        Ok(RotateOutcome::Rotated {
            old: Box::new(old.try_into()?),
            new: Box::new(created),
        })
    }

    /// Why a rotation left the key alone: there is none, it was replaced
    /// before (a successor wins over a status: the successor is what to
    /// rotate), or it is revoked or expired.
    async fn not_rotated(&self, org_id: &str, id: &str) -> StoreResult<RotateOutcome> {
        let Some(old) = self.key(org_id, id).await? else {
            return Ok(RotateOutcome::NotFound);
        };
        let Some(successor) = &old.replaced_by else {
            return Ok(RotateOutcome::NotActive(Box::new(old)));
        };
        let successor = self.key(org_id, successor).await?.map(Box::new);
        Ok(RotateOutcome::AlreadyReplaced {
            old: Box::new(old),
            successor,
        })
    }

    async fn key(&self, org_id: &str, id: &str) -> StoreResult<Option<KeyRecord>> {
        sqlx::query_as::<DB, KeyRow>(sql::GET_KEY)
            .bind(org_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(KeyRecord::try_from)
            .transpose()
    }

    async fn seed_in_tx(
        &self,
        mut batches: Receiver<SeedBatch>,
        expected: u64,
    ) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await?;
        for setting in DB::SEED_SETTINGS.0 {
            sqlx::query::<DB>(setting).execute(&mut *conn).await?;
        }
        let inserted = self.seed_on(&mut conn, &mut batches, expected).await;
        for setting in DB::SEED_SETTINGS.1 {
            sqlx::query::<DB>(setting).execute(&mut *conn).await?;
        }
        inserted
    }

    async fn seed_on(
        &self,
        conn: &mut DB::Connection,
        batches: &mut Receiver<SeedBatch>,
        expected: u64,
    ) -> StoreResult<u64> {
        let mut tx = sqlx::Connection::begin_with(conn, DB::BEGIN_WRITE).await?;
        let (head, mut change_seq) = if DB::NUMBERS_SEEDED_CHANGES {
            let highest: i64 = sqlx::query_scalar::<DB, _>(sql::SQLITE_HIGHEST_CHANGE_SEQ)
                .fetch_one(&mut *tx)
                .await?;
            (sql::SQLITE_INSERT_SEED_KEYS, Some(highest))
        } else {
            (sql::INSERT_SEED_KEYS, None)
        };
        let mut inserted = 0;
        let mut set_aside = Vec::new();
        let mut highest = 0;
        let mut keys_aside = false;
        if expected >= SET_ASIDE_FROM {
            highest = change_seq.unwrap_or_default();
            // Each table whose rows the load at least doubles: its indexes
            // cost less built once from the sorted rows than updated a
            // million times at random places (the keys' ids, the audit
            // entries' key ids).
            for (table, count) in [
                ("api_keys", sql::COUNT_KEYS),
                ("audit_log", sql::COUNT_AUDIT),
            ] {
                let existing: i64 = sqlx::query_scalar::<DB, _>(count)
                    .fetch_one(&mut *tx)
                    .await?;
                if expected < u64::try_from(existing).unwrap_or(0) {
                    continue;
                }
                let aside = sqlx::query_as::<DB, (String, String)>(DB::SEED_SET_ASIDE)
                    .bind(table)
                    .fetch_all(&mut *tx)
                    .await?;
                for (drop, _) in &aside {
                    sqlx::query::<DB>(drop).execute(&mut *tx).await?;
                }
                keys_aside |= table == "api_keys";
                set_aside.extend(aside);
            }
        }
        while let Some(batch) = batches.recv().await {
            if DB::copy_seed_batch(&mut tx, &batch).await? {
                inserted += batch.keys.len() as u64;
                continue;
            }
            for chunk in batch.keys.chunks(SEED_CHUNK) {
                Self::insert_seed_chunk(&mut tx, head, &mut change_seq, chunk).await?;
            }
            for chunk in batch.audit.chunks(SEED_CHUNK) {
                Self::insert_seed_audit_chunk(&mut tx, chunk).await?;
            }
            inserted += batch.keys.len() as u64;
        }
        if !set_aside.is_empty() {
            for setting in DB::SEED_BEFORE_REBUILD {
                sqlx::query::<DB>(setting).execute(&mut *tx).await?;
            }
            for (_, create) in &set_aside {
                sqlx::query::<DB>(create).execute(&mut *tx).await?;
            }
            if let (Some(catch_up), true, true) =
                (DB::SEED_CATCH_UP, DB::NUMBERS_SEEDED_CHANGES, keys_aside)
            {
                sqlx::query::<DB>(catch_up)
                    .bind(highest)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        if !set_aside.is_empty() {
            for statement in DB::SEED_AFTER {
                sqlx::query::<DB>(statement).execute(&mut *conn).await?;
            }
        }
        Ok(inserted)
    }

    /// One multi-row insert of seeded keys, numbered from `change_seq` when
    /// the dialect numbers them.
    async fn insert_seed_chunk(
        conn: &mut DB::Connection,
        head: &str,
        change_seq: &mut Option<i64>,
        chunk: &[SeedKey],
    ) -> StoreResult<()> {
        let columns = if change_seq.is_some() { 14 } else { 13 };
        let text = multi_row_insert(head, chunk.len(), columns, DB::NUMBERED_PARAMS);
        let mut insert = sqlx::query::<DB>(&text);
        for s in chunk {
            let k = &s.key;
            insert = insert
                .bind(&k.id)
                .bind(&k.org_id)
                .bind(&k.name)
                .bind(&k.description)
                .bind(&k.prefix)
                .bind(k.digest.as_slice())
                .bind(k.scopes.join(" "))
                .bind(ms(k.created_at))
                .bind(&k.created_by)
                .bind(k.expires_at.map(ms))
                .bind(s.last_used_at.map(ms))
                .bind(s.revoked.as_ref().map(|(at, _)| ms(*at)))
                .bind(s.revoked.as_ref().map(|(_, by)| by.as_str()));
            if let Some(seq) = change_seq.as_mut() {
                *seq += 1;
                insert = insert.bind(*seq);
            }
        }
        insert.execute(conn).await?;
        Ok(())
    }

    /// One multi-row insert of a bulk load's audit entries.
    async fn insert_seed_audit_chunk(
        conn: &mut DB::Connection,
        chunk: &[AuditEvent],
    ) -> StoreResult<()> {
        let text = multi_row_insert(
            sql::INSERT_SEED_AUDIT_ROWS,
            chunk.len(),
            9,
            DB::NUMBERED_PARAMS,
        );
        let mut insert = sqlx::query::<DB>(&text);
        for a in chunk {
            insert = insert
                .bind(&a.org_id)
                .bind(ms(a.at))
                .bind(&a.actor_kind)
                .bind(&a.actor_id)
                .bind(&a.actor_name)
                .bind(&a.action)
                .bind(&a.api_key_id)
                .bind(&a.remote_addr)
                .bind(a.details.to_string());
        }
        insert.execute(conn).await?;
        Ok(())
    }
}

#[async_trait]
impl<DB: Dialect> Store for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> String: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q, 'r> i64: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q, 'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB>,
    for<'q, 'r> bool: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
{
    async fn create_org(&self, org: &Org) -> StoreResult<()> {
        self.run("create_org", async {
            sqlx::query::<DB>(sql::INSERT_ORG)
                .bind(&org.id)
                .bind(&org.name)
                .bind(org.plan.as_str())
                .bind(ms(org.created_at))
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
        self.run("list_orgs", async {
            sqlx::query_as::<DB, OrgRow>(sql::LIST_ORGS)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(Org::try_from)
                .collect()
        })
        .await
    }

    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
        self.run("org_by_name", async {
            sqlx::query_as::<DB, OrgRow>(sql::ORG_BY_NAME)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .map(Org::try_from)
                .transpose()
        })
        .await
    }

    async fn set_plan(&self, org_id: &str, plan: Plan) -> StoreResult<bool> {
        self.run_key_write("set_plan", async {
            let done = sqlx::query::<DB>(sql::SET_PLAN)
                .bind(plan.as_str())
                .bind(org_id)
                .execute(&self.pool)
                .await?;
            DB::settle(&self.pool).await?;
            Ok(DB::rows_affected(&done) > 0)
        })
        .await
    }

    async fn create_user(&self, user: &NewUser) -> StoreResult<()> {
        self.run("create_user", Self::insert_user(&self.pool, user))
            .await
    }

    async fn add_user(&self, user: &NewUser, audit: &AuditEvent) -> StoreResult<()> {
        self.run("add_user", async {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            Self::insert_user(&mut *tx, user).await?;
            Self::insert_audit(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn list_users(&self, org_id: Option<&str>) -> StoreResult<Vec<User>> {
        self.run("list_users", async {
            sqlx::query_as::<DB, UserRow>(sql::LIST_USERS)
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(User::try_from)
                .collect()
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.run("user_by_email", async {
            sqlx::query_as::<DB, UserRow>(sql::USER_BY_EMAIL)
                .bind(email)
                .fetch_optional(&self.pool)
                .await?
                .map(User::try_from)
                .transpose()
        })
        .await
    }

    async fn change_user(
        &self,
        user_id: &str,
        change: &UserChange,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let query = match change {
            UserChange::Remove { at } => sqlx::query::<DB>(sql::REMOVE_USER).bind(ms(*at)),
            UserChange::SetRole(role) => sqlx::query(sql::SET_USER_ROLE).bind(role.as_str()),
            UserChange::SetToken(digest) => {
                sqlx::query(sql::SET_USER_TOKEN_BY_ID).bind(digest.as_ref().map(|d| d.to_vec()))
            }
        };
        self.run(
            "change_user",
            self.change_with_audit(query.bind(user_id), audit),
        )
        .await
    }

    async fn set_user_token(&self, email: &str, token_digest: &[u8; 32]) -> StoreResult<bool> {
        self.run("set_user_token", async {
            let done = sqlx::query::<DB>(sql::SET_USER_TOKEN_BY_EMAIL)
                .bind(token_digest.as_slice())
                .bind(email)
                .execute(&self.pool)
                .await?;
            Ok(DB::rows_affected(&done) > 0)
        })
        .await
    }

    async fn user_by_token(&self, token_digest: &[u8; 32]) -> StoreResult<Option<(User, Org)>> {
        self.count(Lookup::ByToken);
        self.run("user_by_token", async {
            sqlx::query_as::<DB, UserOrgRow>(sql::USER_BY_TOKEN)
                .bind(token_digest.as_slice())
                .fetch_optional(&self.pool)
                .await?
                .map(UserOrgRow::split)
                .transpose()
        })
        .await
    }

    async fn create_key(
        &self,
        key: &NewKey,
        idempotency: Option<&Idempotency<'_>>,
        audit: &AuditEvent,
    ) -> StoreResult<CreateOutcome> {
        self.run("create_key", self.create_key_in_tx(key, idempotency, audit))
            .await
    }

    async fn list_keys(&self, org_id: &str, f: &KeyFilter) -> StoreResult<Vec<KeyRecord>> {
        let query = KeyQuery {
            tab: match f.status {
                None => KeyTab::All,
                Some(KeyStatus::Active) => KeyTab::Active,
                Some(KeyStatus::Expired) => KeyTab::Expired,
                Some(KeyStatus::Revoked) => KeyTab::Revoked,
            },
            sort: KeySort::Created,
            descending: true,
            q: f.q.clone(),
            now: f.now,
            policy: Policy::default(),
            limit: f.limit,
            anchor: f.after.as_ref().map_or(Anchor::Start, |c| {
                Anchor::After(KeyPosition {
                    sort: KeySort::Created,
                    segment: 0,
                    value: SortValue::Int(c.created_at_ms),
                    id: c.id.clone(),
                })
            }),
            changed_since: f.changed_since,
        };
        let keys = self.list_window(org_id, &query).await?;
        Ok(keys.into_iter().map(|k| k.key).collect())
    }

    async fn list_window(&self, org_id: &str, query: &KeyQuery) -> StoreResult<Vec<WindowKey>> {
        self.run("list_keys", self.window_in(org_id, query)).await
    }

    async fn key_counts(
        &self,
        org_id: &str,
        q: Option<&str>,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> StoreResult<KeyCounts> {
        self.run("key_counts", async {
            let search = self.text_search(q).await?;
            let st = window::counts(org_id, q, policy, now, search);
            let row: CountsRow = bound::<DB, CountsRow>(&st).fetch_one(&self.pool).await?;
            Ok(row.into())
        })
        .await
    }

    #[cfg(feature = "test-support")]
    async fn explain_hot_queries(&self, org_id: &str) -> StoreResult<Vec<(String, Vec<String>)>> {
        let mut conn = self.pool.acquire().await?;
        if let Some((setup, _)) = DB::EXPLAIN_SETUP {
            sqlx::query::<DB>(setup).execute(&mut *conn).await?;
        }
        let mut plans = Vec::new();
        for (name, st) in window::hot_queries(org_id, DB::TEXT_SEARCH, Utc::now()) {
            let explain = Statement {
                text: format!("{} {}", DB::EXPLAIN, st.text),
                binds: st.binds,
            };
            let rows = Self::plan_lines(&explain, &mut conn).await?;
            plans.push((name, rows));
        }
        if let Some((_, undo)) = DB::EXPLAIN_SETUP {
            sqlx::query::<DB>(undo).execute(&mut *conn).await?;
        }
        Ok(plans)
    }

    async fn change_cursor(&self, org_id: &str) -> StoreResult<i64> {
        self.run(
            "change_cursor",
            DB::change_cursor(&self.pool, &self.state, org_id),
        )
        .await
    }

    async fn get_key(&self, org_id: &str, id: &str) -> StoreResult<Option<KeyRecord>> {
        self.run("get_key", self.key(org_id, id)).await
    }

    async fn revoke_key(
        &self,
        org_id: &str,
        id: &str,
        at: DateTime<Utc>,
        by: &str,
        audit: &AuditEvent,
    ) -> StoreResult<Option<KeyRecord>> {
        self.run_key_write("revoke_key", self.revoke_in_tx(org_id, id, at, by, audit))
            .await
    }

    async fn mark_exposed(
        &self,
        org_id: &str,
        id: &str,
        exposure: &Exposure,
        audit: &AuditEvent,
    ) -> StoreResult<Option<(KeyRecord, bool)>> {
        self.run("mark_exposed", async {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let row = sqlx::query_as::<DB, KeyRow>(sql::MARK_EXPOSED)
                .bind(ms(exposure.at))
                .bind(exposure_to_json(exposure))
                .bind(org_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(self.key(org_id, id).await?.map(|k| (k, false)));
            };
            Self::insert_audit(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(Some((row.try_into()?, true)))
        })
        .await
    }

    async fn rotate_key(&self, rotation: &Rotation<'_>) -> StoreResult<RotateOutcome> {
        self.run_key_write("rotate_key", self.rotate_in_tx(rotation))
            .await
    }

    async fn issue_secret(&self, issue: &IssueSecret<'_>) -> StoreResult<IssueOutcome> {
        self.run_key_write("issue_secret", async {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let row = sqlx::query_as::<DB, KeyRow>(sql::ISSUE_SECRET)
                .bind(issue.digest.as_slice())
                .bind(issue.prefix)
                .bind(issue.org_id)
                .bind(issue.id)
                .bind(ms(issue.now))
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(match self.key(issue.org_id, issue.id).await? {
                    Some(k) => IssueOutcome::NotPending(k),
                    None => IssueOutcome::NotFound,
                });
            };
            Self::insert_audit(&mut *tx, issue.audit).await?;
            tx.commit().await?;
            Ok(IssueOutcome::Issued(row.try_into()?))
        })
        .await
    }

    async fn key_by_digest(&self, digest: &[u8; 32]) -> StoreResult<Option<AuthRecord>> {
        self.count(Lookup::ByDigest);
        self.run("key_by_digest", async {
            sqlx::query_as::<DB, AuthRow>(sql::KEY_BY_DIGEST)
                .bind(digest.as_slice())
                .fetch_optional(&self.pool)
                .await?
                .map(AuthRecord::try_from)
                .transpose()
        })
        .await
    }

    async fn record_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> StoreResult<()> {
        self.run("record_last_used", async {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            for (id, at) in uses {
                sqlx::query::<DB>(sql::RECORD_LAST_USED)
                    .bind(ms(*at))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Not guarded: an operator's bulk load (`keydeck admin seed`), never on a
    /// request path, may rightly take longer than any deadline; it runs
    /// without one and without taking a slot.
    async fn insert_seed_keys(
        &self,
        batches: Receiver<SeedBatch>,
        expected: u64,
    ) -> StoreResult<u64> {
        self.seed_in_tx(batches, expected).await
    }

    async fn list_audit(
        &self,
        org_id: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.audit_entries(org_id, None, limit, before).await
    }

    async fn list_audit_of_key(
        &self,
        org_id: &str,
        key_id: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.audit_entries(org_id, Some(key_id), limit, before)
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run("ping", async {
            sqlx::query::<DB>(sql::PING).execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn watch(&self) -> Watch {
        DB::watch(&self.pool, &self.state)
    }

    fn webhooks(&self) -> &dyn WebhookStore {
        self
    }

    async fn policy(&self, org_id: &str) -> StoreResult<Policy> {
        self.run("policy", async {
            let json: Option<String> = sqlx::query_scalar::<DB, _>(sql::GET_POLICY)
                .bind(org_id)
                .fetch_optional(&self.pool)
                .await?;
            policy_from_json(json)
        })
        .await
    }

    async fn set_policy(
        &self,
        org_id: &str,
        policy: &Policy,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        self.run("set_policy", async {
            let json = policy_to_json(policy)?;
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            sqlx::query::<DB>(sql::SET_POLICY)
                .bind(org_id)
                .bind(json)
                .bind(ms(audit.at))
                .execute(&mut *tx)
                .await?;
            Self::insert_audit(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn add_ssh_key(&self, key: &SshKey, audit: &AuditEvent) -> StoreResult<()> {
        self.run("add_ssh_key", async {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            sqlx::query::<DB>(sql::INSERT_SSH_KEY)
                .bind(&key.fingerprint)
                .bind(&key.user_id)
                .bind(&key.algorithm)
                .bind(&key.public_key)
                .bind(&key.comment)
                .bind(ms(key.added_at))
                .execute(&mut *tx)
                .await?;
            Self::insert_audit(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn list_ssh_keys(&self, user_id: Option<&str>) -> StoreResult<Vec<SshKey>> {
        self.run("list_ssh_keys", async {
            sqlx::query_as::<DB, ssh_keys::SshKeyRow>(sql::LIST_SSH_KEYS)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(SshKey::try_from)
                .collect()
        })
        .await
    }

    async fn remove_ssh_key(
        &self,
        user_id: &str,
        fingerprint: &str,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let query = sqlx::query::<DB>(sql::REMOVE_SSH_KEY)
            .bind(user_id)
            .bind(fingerprint);
        self.run("remove_ssh_key", self.change_with_audit(query, audit))
            .await
    }

    async fn ssh_key_owner(&self, fingerprint: &str) -> StoreResult<Option<(User, Org)>> {
        self.run("ssh_key_owner", async {
            sqlx::query_as::<DB, UserOrgRow>(sql::SSH_KEY_OWNER)
                .bind(fingerprint)
                .fetch_optional(&self.pool)
                .await?
                .map(UserOrgRow::split)
                .transpose()
        })
        .await
    }

    async fn touch_ssh_key(&self, fingerprint: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.run("touch_ssh_key", async {
            sqlx::query::<DB>(sql::TOUCH_SSH_KEY)
                .bind(ms(at))
                .bind(fingerprint)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    async fn ssh_key_holder(&self, fingerprint: &str) -> StoreResult<Option<SshKeyHolder>> {
        self.run("ssh_key_holder", async {
            sqlx::query_as::<DB, ssh_keys::SshKeyHolderRow>(sql::SSH_KEY_HOLDER)
                .bind(fingerprint)
                .fetch_optional(&self.pool)
                .await?
                .map(SshKeyHolder::try_from)
                .transpose()
        })
        .await
    }

    async fn record_audit(&self, audit: &AuditEvent) -> StoreResult<()> {
        self.run("record_audit", async {
            let mut conn = self.pool.acquire().await?;
            Self::insert_audit(&mut conn, audit).await
        })
        .await
    }

    fn usage(&self) -> &dyn super::usage::UsageStore {
        self
    }
}
