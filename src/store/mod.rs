//! Persistence: one [`Store`] trait, with SQLite and PostgreSQL behind it.
//!
//! Times are stored as Unix milliseconds and secrets only as SHA-256 digests.
//! One implementation (`sql_store.rs`) runs the SQL text in `sql.rs` and reads
//! the row types here (by column name) on either backend; `sqlite.rs` and
//! `postgres.rs` are only the dialects: connection set-up, `sqlx::migrate!`
//! migrations, the change cursor. `replicas.rs` is what PostgreSQL replicas
//! share on the same pool. No SQL is written, and no pool opened, anywhere
//! else (`layers.rs` checks).

pub mod guard;
mod postgres;
mod replicas;
mod sql;
mod sql_store;
mod sqlite;
mod ssh_keys;
mod sync_cursor;
pub mod usage;
mod webhooks;
mod window;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use crate::key::health::Refusals;
pub use crate::key::leak::Exposure;
pub use crate::key::org::{Plan, Role};
pub use crate::key::policy::Policy;
use crate::key::KeyStatus;

pub use postgres::KEY_CACHE_LEASE;
pub use replicas::{Channel, Replicas};
pub use sql_store::{Hooks, KeyWrites};
pub use sqlite::{DataVersion, VersionSource};
pub use ssh_keys::{SshKey, SshKeyHolder};
pub use webhooks::{
    key_payload, new_event, Attempt, Claimed, Delivery, DeliveryPage, Endpoint, NewEndpoint,
    NewEvent, Once, WebhookStore,
};
pub use window::{
    Anchor, KeyCounts, KeyPosition, KeyQuery, KeySort, KeyTab, SortValue, WindowKey,
    MAX_POSITION_LEN,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub plan: Plan,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// `false` once their token is revoked (until it is reset).
    pub has_token: bool,
}

/// A change to a current user (see [`Store::change_user`]).
#[derive(Debug, Clone)]
pub enum UserChange {
    /// Marks the user removed (the row stays, so the audit log still names
    /// them) and takes their token away.
    Remove {
        at: DateTime<Utc>,
    },
    SetRole(Role),
    /// A new token's digest, or `None`: no working token until the next reset.
    SetToken(Option<[u8; 32]>),
}

/// An `Idempotency-Key` and the SHA-256 of the normalised request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency<'a> {
    pub key: &'a str,
    pub request_digest: [u8; 32],
}

/// A user to insert; `token_digest` is the SHA-256 of their access token.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: Role,
    pub token_digest: [u8; 32],
    pub created_at: DateTime<Utc>,
}

/// A stored API key (no secret, no digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    /// The key a rotation replaced this one by.
    pub replaced_by: Option<String>,
    /// The key this one replaced (it was made by rotating that one).
    pub replaces: Option<String>,
    /// Where and when it was first reported leaked (its `exposed_at` is `at`).
    pub exposure: Option<Exposure>,
    /// Made without a secret (the `rotate` leak policy's successor): no
    /// token authenticates as it until an admin issues its secret.
    pub secret_pending: bool,
    /// Its checks of the last 24 h, while most are refused (its
    /// `refused_since` is `since`; the usage flusher writes it).
    pub refusals: Option<Refusals>,
}

impl KeyRecord {
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        KeyStatus::derive(self.revoked_at, self.expires_at, now)
    }
}

/// A key to insert.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    pub prefix: String,
    pub digest: [u8; 32],
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// No secret yet: `digest` is of none that was ever shown, and no token
    /// authenticates as the key until [`Store::issue_secret`].
    pub secret_pending: bool,
}

/// A demo key for [`Store::insert_seed_keys`], its history already decided:
/// last use and revocation are stored as given.
#[derive(Debug, Clone)]
pub struct SeedKey {
    pub key: NewKey,
    pub last_used_at: Option<DateTime<Utc>>,
    /// When and by whom it was revoked, if it was.
    pub revoked: Option<(DateTime<Utc>, String)>,
}

/// Demo keys and their audit entries, one batch of a bulk load
/// ([`Store::insert_seed_keys`]).
#[derive(Debug, Default)]
pub struct SeedBatch {
    pub keys: Vec<SeedKey>,
    /// In order of time, after every earlier batch's: the load writes them
    /// to the audit log as they come, so the log reads oldest first.
    pub audit: Vec<AuditEvent>,
}

/// Rows per multi-row `INSERT` in [`Store::insert_seed_keys`] (where the
/// backend has no `COPY`): 14 parameters a key row, well under SQLite's
/// 32 766 per statement. Each statement's journal holds the pages it changes
/// (in memory during the load): ~2 random index pages a key.
pub(crate) const SEED_CHUNK: usize = 500;

/// What the key check needs, found by digest in one indexed lookup.
#[derive(Debug, Clone)]
pub struct AuthRecord {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub org_plan: Plan,
}

/// An audit log entry to write in the same transaction as its change.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub org_id: String,
    pub at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: String,
    pub actor_name: String,
    pub action: String,
    pub api_key_id: String,
    pub remote_addr: Option<String>,
    pub details: serde_json::Value,
}

/// A stored audit entry.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub event: AuditEvent,
}

/// Position after which a key listing continues: (created_at, id) of the last row shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCursor {
    pub created_at_ms: i64,
    pub id: String,
}

impl KeyCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at_ms, self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (ms, id) = s.split_once('.')?;
        let valid_id = id.len() <= 64
            && id.starts_with("key_")
            && id[4..].bytes().all(|b| b.is_ascii_alphanumeric());
        Some(Self {
            created_at_ms: ms.parse().ok()?,
            id: valid_id.then(|| id.to_owned())?,
        })
    }
}

/// Which keys to list.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    pub status: Option<KeyStatus>,
    pub q: Option<String>,
    pub now: DateTime<Utc>,
    pub limit: u32,
    pub after: Option<KeyCursor>,
    /// Only keys written at or after this change cursor, as
    /// [`Store::change_cursor`] gave it (opaque: PostgreSQL seals it).
    pub changed_since: Option<i64>,
}

/// A rotation (see [`Store::rotate_key`]): end the old key as `end` says
/// and insert `new`, if the old key is still active at `now`.
#[derive(Debug, Clone)]
pub struct Rotation<'a> {
    pub org_id: &'a str,
    pub old_id: &'a str,
    pub now: DateTime<Utc>,
    pub end: OldKeyEnd,
    pub revoked_by: &'a str,
    pub new: &'a NewKey,
    pub audit: &'a AuditEvent,
}

/// How a rotated key ends.
#[derive(Debug, Clone, Copy)]
pub enum OldKeyEnd {
    /// Revoked at the time of the rotation.
    RevokeNow,
    /// Keeps working until this instant (never later than its own expiry).
    ExpireAt(DateTime<Utc>),
}

#[derive(Debug)]
pub enum CreateOutcome {
    Created(KeyRecord),
    /// The idempotency key was used before for the same request: the key it created.
    Repeat(KeyRecord),
    /// The idempotency key was used before for a different request.
    Reused,
}

/// A secret to issue ([`Store::issue_secret`]).
#[derive(Debug)]
pub struct IssueSecret<'a> {
    pub org_id: &'a str,
    pub id: &'a str,
    pub now: DateTime<Utc>,
    pub digest: [u8; 32],
    pub prefix: &'a str,
    pub audit: &'a AuditEvent,
}

#[derive(Debug)]
pub enum IssueOutcome {
    /// The key, now with its secret.
    Issued(KeyRecord),
    /// The key has its secret already, or is no longer active: nothing changed.
    NotPending(KeyRecord),
    NotFound,
}

#[derive(Debug)]
pub enum RotateOutcome {
    Rotated {
        old: Box<KeyRecord>,
        new: Box<KeyRecord>,
    },
    NotFound,
    /// The old key is revoked or expired: nothing to rotate.
    NotActive(Box<KeyRecord>),
    /// The old key was rotated before (it may still be winding down): it
    /// is not rotated twice. With its successor, if that can be read.
    AlreadyReplaced {
        old: Box<KeyRecord>,
        successor: Option<Box<KeyRecord>>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint: the org name or email is taken.
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
    /// The database did not answer in time or the connection to it failed:
    /// worth retrying in a moment (503 `database_unavailable`).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database is there (it answers others, or a probe) but did not
    /// end this call within the guard's patience: a long query or a queue
    /// under load, not an outage (503 `deadline_exceeded`).
    #[error("the database is busy: no answer to this call within {} ms", .0.as_millis())]
    Busy(std::time::Duration),
}

/// A unique violation names its constraint ([`StoreError::Duplicate`]).
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                Self::Duplicate(d.constraint().unwrap_or("a row with that value").to_owned())
            }
            _ => Self::Database(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// Everything the service keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn create_org(&self, org: &Org) -> StoreResult<()>;
    async fn list_orgs(&self) -> StoreResult<Vec<Org>>;
    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>>;
    /// `false` if there is no such organisation.
    async fn set_plan(&self, org_id: &str, plan: Plan) -> StoreResult<bool>;

    async fn create_user(&self, user: &NewUser) -> StoreResult<()>;
    /// Inserts the user and its audit entry in one transaction.
    async fn add_user(&self, user: &NewUser, audit: &AuditEvent) -> StoreResult<()>;
    /// Current users (not removed), by email.
    async fn list_users(&self, org_id: Option<&str>) -> StoreResult<Vec<User>>;
    /// The current (not removed) user with this email.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Applies `change` to a current user and writes `audit`, in one
    /// transaction; `false` (and nothing written) if there is no such user.
    async fn change_user(
        &self,
        user_id: &str,
        change: &UserChange,
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// `false` if there is no current user with that email.
    async fn set_user_token(&self, email: &str, token_digest: &[u8; 32]) -> StoreResult<bool>;
    /// A current user's token (never a removed user's).
    async fn user_by_token(&self, token_digest: &[u8; 32]) -> StoreResult<Option<(User, Org)>>;

    /// Inserts the key and its audit entry in one transaction. With an
    /// idempotency key seen in the last [`IDEMPOTENCY_WINDOW`], inserts
    /// nothing and returns the earlier key (or, if it came with a different
    /// request, [`CreateOutcome::Reused`]).
    async fn create_key(
        &self,
        key: &NewKey,
        idempotency: Option<&Idempotency<'_>>,
        audit: &AuditEvent,
    ) -> StoreResult<CreateOutcome>;
    /// Newest first, as [`KeyFilter`] says (a window of the created order).
    async fn list_keys(&self, org_id: &str, filter: &KeyFilter) -> StoreResult<Vec<KeyRecord>>;
    /// One page of a window over the organisation's keys, each read from an
    /// index in the window's order (`window.rs`), with each key's position.
    async fn list_window(&self, org_id: &str, query: &KeyQuery) -> StoreResult<Vec<WindowKey>>;
    /// The counts per tab and the summary line's numbers of the keys
    /// matching `q`, with `policy`'s thresholds at `now`.
    async fn key_counts(
        &self,
        org_id: &str,
        q: Option<&str>,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> StoreResult<KeyCounts>;
    /// The plan the database chooses for each hot query of key listing
    /// (`window::hot_queries`), one line per plan row, by query name: what a
    /// test reads to tell an index from a full scan.
    #[cfg(feature = "test-support")]
    async fn explain_hot_queries(&self, org_id: &str) -> StoreResult<Vec<(String, Vec<String>)>>;
    /// A change cursor taken before a list is read: every write to the
    /// organisation's keys that the list may miss is at or past it
    /// ([`KeyFilter::changed_since`]). It tells nothing about other
    /// organisations' writes.
    async fn change_cursor(&self, org_id: &str) -> StoreResult<i64>;
    async fn get_key(&self, org_id: &str, id: &str) -> StoreResult<Option<KeyRecord>>;
    /// Revokes the key if it is not revoked yet (writing `audit` then); returns it as it now is.
    async fn revoke_key(
        &self,
        org_id: &str,
        id: &str,
        at: DateTime<Utc>,
        by: &str,
        audit: &AuditEvent,
    ) -> StoreResult<Option<KeyRecord>>;
    /// Ends the old key and inserts the new one, in one transaction, if the
    /// old key is still active (see [`Rotation`]).
    async fn rotate_key(&self, rotation: &Rotation<'_>) -> StoreResult<RotateOutcome>;
    /// Gives a key that waits for its secret ([`NewKey::secret_pending`])
    /// the one whose `digest` and display `prefix` are given, and writes
    /// `audit`, in one transaction; once only.
    async fn issue_secret(&self, issue: &IssueSecret<'_>) -> StoreResult<IssueOutcome>;
    /// Marks the organisation's key exposed and writes `audit`, in one
    /// transaction, if no report marked it before (the first report's
    /// exposure stays). The key as it now is and whether this call marked
    /// it; `None` if the organisation has no such key.
    async fn mark_exposed(
        &self,
        org_id: &str,
        id: &str,
        exposure: &Exposure,
        audit: &AuditEvent,
    ) -> StoreResult<Option<(KeyRecord, bool)>>;

    /// The key check's one indexed lookup.
    async fn key_by_digest(&self, digest: &[u8; 32]) -> StoreResult<Option<AuthRecord>>;
    /// Moves `last_used_at` forward (never back) for each (key id, time).
    async fn record_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> StoreResult<()>;
    /// Bulk load for `keydeck admin seed`: the batches as they arrive, in
    /// one transaction, by multi-row inserts of [`SEED_CHUNK`] rows, holding
    /// one batch at a time (any number of keys in bounded memory); the audit
    /// entries come in order of time and go to the audit log as they come.
    /// `expected`: how many keys will come;
    /// a load of many sets the key table's and the audit log's indexes
    /// aside and builds them again at the end. Returns the keys inserted.
    async fn insert_seed_keys(
        &self,
        batches: tokio::sync::mpsc::Receiver<SeedBatch>,
        expected: u64,
    ) -> StoreResult<u64>;

    /// Newest first, entries with id below `before` if given.
    async fn list_audit(
        &self,
        org_id: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>>;

    /// One key's entries, newest first, below `before` if given.
    async fn list_audit_of_key(
        &self,
        org_id: &str,
        key_id: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>>;

    /// A trivial query (`SELECT 1`): is the database answering?
    async fn ping(&self) -> StoreResult<()>;

    async fn close(&self);

    /// The organisation's key policy; the default if it never set one.
    async fn policy(&self, org_id: &str) -> StoreResult<Policy>;
    /// Replaces the organisation's policy and writes `audit`, in one transaction.
    async fn set_policy(
        &self,
        org_id: &str,
        policy: &Policy,
        audit: &AuditEvent,
    ) -> StoreResult<()>;

    /// How a cache kept over this store sees the writes it is not told of.
    fn watch(&self) -> Watch;

    /// Webhook endpoints, the events outbox and deliveries (`webhooks.rs`).
    fn webhooks(&self) -> &dyn WebhookStore;

    // SSH keys: who a connection to `keydeck serve --ssh-listen` is.

    /// Inserts the key and its audit entry in one transaction; a fingerprint
    /// already stored is [`StoreError::Duplicate`].
    async fn add_ssh_key(&self, key: &SshKey, audit: &AuditEvent) -> StoreResult<()>;
    /// Current users' keys (of one user if given), by email and age.
    async fn list_ssh_keys(&self, user_id: Option<&str>) -> StoreResult<Vec<SshKey>>;
    /// Deletes the user's key and writes `audit`, in one transaction;
    /// `false` (and nothing written) if the user has no such key.
    async fn remove_ssh_key(
        &self,
        user_id: &str,
        fingerprint: &str,
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// The current (not removed) user a key belongs to, with their organisation.
    async fn ssh_key_owner(&self, fingerprint: &str) -> StoreResult<Option<(User, Org)>>;
    /// Notes a login with the key.
    async fn touch_ssh_key(&self, fingerprint: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// The user a key belongs to, removed or not, with their organisation:
    /// tells a key nobody has from a known user's key that is refused.
    async fn ssh_key_holder(&self, fingerprint: &str) -> StoreResult<Option<SshKeyHolder>>;
    /// Writes an audit entry that goes with no change of its own (an SSH
    /// login, a refused key, the end of an SSH session).
    async fn record_audit(&self, audit: &AuditEvent) -> StoreResult<()>;
    /// The usage tables (issue 22), on the same pool.
    fn usage(&self) -> &dyn usage::UsageStore;
}

/// A policy as stored: JSON.
fn policy_to_json(policy: &Policy) -> StoreResult<String> {
    serde_json::to_string(policy).map_err(|e| StoreError::Corrupt(format!("policy: {e}")))
}

/// A stored policy, read back from its JSON.
fn policy_from_json(json: Option<String>) -> StoreResult<Policy> {
    json.map_or(Ok(Policy::default()), |j| {
        serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(format!("policy: {e}")))
    })
}

/// How a cache kept over the store (the service's key cache) sees writes
/// made by other connections than its store's hooked calls.
#[derive(Clone)]
pub enum Watch {
    /// One serving process per file: other processes' commits show in the
    /// file's data version.
    Sqlite(VersionSource),
    /// Replicas sharing the database, on the store's own pool.
    Postgres(Replicas),
}

/// Which database a URL names, decided once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://PATH` (or `sqlite::memory:`).
    Sqlite(String),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

impl Backend {
    pub fn from_url(url: &str) -> StoreResult<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(url.to_owned()))
        } else {
            Err(StoreError::Corrupt(format!(
                "unsupported database URL scheme in {:?}: use sqlite://PATH or postgres://…",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite(url) | Self::Postgres(url) => url,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Opens the store, migrates it, and runs it with `hooks`.
    pub async fn connect(&self, hooks: Hooks) -> StoreResult<std::sync::Arc<dyn Store>> {
        Ok(match self {
            Self::Sqlite(url) => {
                std::sync::Arc::new(sql_store::SqlStore::<sqlx::Sqlite>::connect(url, hooks).await?)
            }
            Self::Postgres(url) => std::sync::Arc::new(
                sql_store::SqlStore::<sqlx::Postgres>::connect(url, hooks).await?,
            ),
        })
    }
}

/// Opens the store a database URL names (`sqlite://PATH` or `postgres://…`)
/// and migrates it, with no guard and no hooks.
pub async fn open(database_url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    Backend::from_url(database_url)?
        .connect(Hooks::default())
        .await
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| StoreError::Corrupt(format!("time {v}")))
}

fn from_opt_ms(v: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    v.map(from_ms).transpose()
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// An `api_keys` row as `sql::key_columns!` selects it.
#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    org_id: String,
    name: String,
    description: String,
    prefix: String,
    scopes: String,
    created_at: i64,
    created_by: String,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
    revoked_by: Option<String>,
    replaced_by: Option<String>,
    replaces: Option<String>,
    exposed_at: Option<i64>,
    exposure: Option<String>,
    secret_pending: bool,
    refused_since: Option<i64>,
    refusals: Option<String>,
}

/// The stored exposure: its JSON (source and location) and `exposed_at`.
fn exposure_from_row(at: Option<i64>, json: Option<String>) -> StoreResult<Option<Exposure>> {
    #[derive(serde::Deserialize)]
    struct Stored {
        source: String,
        location: String,
    }
    let (Some(at), Some(json)) = (at, json) else {
        return Ok(None);
    };
    let stored: Stored =
        serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("exposure: {e}")))?;
    Ok(Some(Exposure {
        at: from_ms(at)?,
        source: stored.source,
        location: stored.location,
    }))
}

/// The stored refusals: their JSON (checks, refused, most) and `refused_since`.
fn refusals_from_row(since: Option<i64>, json: Option<String>) -> StoreResult<Option<Refusals>> {
    #[derive(serde::Deserialize)]
    struct Stored {
        checks: u64,
        refused: u64,
        most: String,
    }
    let (Some(since), Some(json)) = (since, json) else {
        return Ok(None);
    };
    let stored: Stored =
        serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("refusals: {e}")))?;
    Ok(Some(Refusals {
        since: from_ms(since)?,
        checks: stored.checks,
        refused: stored.refused,
        most: stored.most,
    }))
}

/// An exposure as stored: its source and location as JSON (`at` is `exposed_at`).
fn exposure_to_json(e: &Exposure) -> String {
    serde_json::json!({ "source": e.source, "location": e.location }).to_string()
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            description: r.description,
            prefix: r.prefix,
            scopes: split_scopes(&r.scopes),
            created_at: from_ms(r.created_at)?,
            created_by: r.created_by,
            expires_at: from_opt_ms(r.expires_at)?,
            last_used_at: from_opt_ms(r.last_used_at)?,
            revoked_at: from_opt_ms(r.revoked_at)?,
            revoked_by: r.revoked_by,
            replaced_by: r.replaced_by,
            replaces: r.replaces,
            exposure: exposure_from_row(r.exposed_at, r.exposure)?,
            secret_pending: r.secret_pending,
            refusals: refusals_from_row(r.refused_since, r.refusals)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: String,
    name: String,
    plan: String,
    created_at: i64,
}

impl TryFrom<OrgRow> for Org {
    type Error = StoreError;
    fn try_from(r: OrgRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            name: r.name,
            plan: r.plan.parse().map_err(StoreError::Corrupt)?,
            created_at: from_ms(r.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    org_id: String,
    email: String,
    role: String,
    created_at: i64,
    has_token: bool,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            org_id: r.org_id,
            email: r.email,
            role: r.role.parse().map_err(StoreError::Corrupt)?,
            created_at: from_ms(r.created_at)?,
            has_token: r.has_token,
        })
    }
}

/// A user found by their token, with their organisation.
#[derive(sqlx::FromRow)]
struct UserOrgRow {
    id: String,
    org_id: String,
    email: String,
    role: String,
    created_at: i64,
    org_name: String,
    org_plan: String,
    org_created_at: i64,
}

impl UserOrgRow {
    fn split(self) -> StoreResult<(User, Org)> {
        let org = Org::try_from(OrgRow {
            id: self.org_id.clone(),
            name: self.org_name,
            plan: self.org_plan,
            created_at: self.org_created_at,
        })?;
        let user = User::try_from(UserRow {
            id: self.id,
            org_id: self.org_id,
            email: self.email,
            role: self.role,
            created_at: self.created_at,
            has_token: true,
        })?;
        Ok((user, org))
    }
}

#[derive(sqlx::FromRow)]
struct AuthRow {
    id: String,
    org_id: String,
    name: String,
    scopes: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    org_plan: String,
}

impl TryFrom<AuthRow> for AuthRecord {
    type Error = StoreError;
    fn try_from(r: AuthRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            scopes: split_scopes(&r.scopes),
            expires_at: from_opt_ms(r.expires_at)?,
            revoked_at: from_opt_ms(r.revoked_at)?,
            org_plan: r.org_plan.parse().map_err(StoreError::Corrupt)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    org_id: String,
    at: i64,
    actor_kind: String,
    actor_id: String,
    actor_name: String,
    action: String,
    api_key_id: String,
    remote_addr: Option<String>,
    details: String,
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            event: AuditEvent {
                org_id: r.org_id,
                at: from_ms(r.at)?,
                actor_kind: r.actor_kind,
                actor_id: r.actor_id,
                actor_name: r.actor_name,
                action: r.action,
                api_key_id: r.api_key_id,
                remote_addr: r.remote_addr,
                details: serde_json::from_str(&r.details)
                    .map_err(|e| StoreError::Corrupt(format!("audit details: {e}")))?,
            },
        })
    }
}

/// `%text%` for LIKE, with the wildcards in `text` escaped (with `\`).
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = KeyCursor {
            created_at_ms: 1_700_000_000_000,
            id: "key_abc123".into(),
        };
        assert_eq!(KeyCursor::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "abc",
            "1.",
            ".key_a",
            "x.key_a",
            "1.usr_a",
            "1.key_a'--",
        ] {
            assert_eq!(KeyCursor::decode(bad), None, "{bad}");
        }
    }

    /// Databases migrated before `sqlx::migrate!` were migrated by a
    /// hand-built migrator (same versions, SQL from the same files); the
    /// checksums must match or opening them fails with `VersionMismatch`.
    #[test]
    fn embedded_migrations_match_the_hand_built_ones() {
        let before: [(&sqlx::migrate::Migrator, [&str; 3]); 2] = [
            (
                &sqlite::MIGRATOR,
                [
                    include_str!("../../migrations/sqlite/0001_init.sql"),
                    include_str!("../../migrations/sqlite/0002_failed_auth.sql"),
                    include_str!("../../migrations/sqlite/0003_lifecycle.sql"),
                ],
            ),
            (
                &postgres::MIGRATOR,
                [
                    include_str!("../../migrations/postgres/0001_init.sql"),
                    include_str!("../../migrations/postgres/0002_failed_auth.sql"),
                    include_str!("../../migrations/postgres/0003_lifecycle.sql"),
                ],
            ),
        ];
        for (migrator, sqls) in before {
            // Later migrations are new; the first ones must not have changed.
            let now: Vec<_> = migrator.iter().collect();
            assert!(now.len() >= sqls.len());
            for (i, (m, sql)) in now.into_iter().zip(sqls).enumerate() {
                let old = sqlx::migrate::Migration::new(
                    i as i64 + 1,
                    "".into(),
                    sqlx::migrate::MigrationType::Simple,
                    sql.into(),
                    false,
                );
                assert_eq!(m.version, old.version);
                assert_eq!(m.migration_type, old.migration_type);
                assert_eq!(m.checksum, old.checksum, "migration {}", m.version);
                assert!(!m.no_tx);
            }
        }
    }

    #[tokio::test]
    async fn a_database_the_hand_built_migrator_made_still_opens() {
        use sqlx::migrate::{Migration, MigrationType, Migrator};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        let old = Migrator {
            migrations: std::borrow::Cow::Owned(
                [
                    (
                        1,
                        "init",
                        include_str!("../../migrations/sqlite/0001_init.sql"),
                    ),
                    (
                        2,
                        "failed_auth",
                        include_str!("../../migrations/sqlite/0002_failed_auth.sql"),
                    ),
                    (
                        3,
                        "lifecycle",
                        include_str!("../../migrations/sqlite/0003_lifecycle.sql"),
                    ),
                ]
                .into_iter()
                .map(|(v, d, sql)| {
                    Migration::new(v, d.into(), MigrationType::Simple, sql.into(), false)
                })
                .collect(),
            ),
            ..Migrator::DEFAULT
        };
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
            .await
            .unwrap();
        old.run(&pool).await.unwrap();
        pool.close().await;
        let store = open(&url).await.unwrap();
        assert!(store.list_orgs().await.unwrap().is_empty());
        store.close().await;
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("A_b%"), "%a\\_b\\%%");
    }
}
