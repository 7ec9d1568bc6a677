//! The SQL text both backends run. PostgreSQL and SQLite (through sqlx) both
//! accept `$N` parameters, `RETURNING` and `ON CONFLICT DO NOTHING`, so one
//! text serves both; `sqlite.rs` and `postgres.rs` bind and run it.

/// The `api_keys` columns a [`super::KeyRow`] is read from, as a literal for `concat!`.
macro_rules! key_columns {
    () => {
        "id, org_id, name, description, prefix, scopes, created_at, created_by, \
         expires_at, last_used_at, revoked_at, revoked_by, replaced_by, replaces, \
         exposed_at, exposure, secret_pending, refused_since, refusals"
    };
}

pub const INSERT_ORG: &str =
    "INSERT INTO organisations (id, name, plan, created_at) VALUES ($1, $2, $3, $4)";

pub const LIST_ORGS: &str = "SELECT id, name, plan, created_at FROM organisations ORDER BY name";

pub const ORG_BY_NAME: &str =
    "SELECT id, name, plan, created_at FROM organisations WHERE name = $1";

pub const SET_PLAN: &str = "UPDATE organisations SET plan = $1 WHERE id = $2";

pub const INSERT_USER: &str =
    "INSERT INTO users (id, org_id, email, role, token_digest, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

pub const LIST_USERS: &str =
    "SELECT id, org_id, email, role, created_at, token_digest IS NOT NULL AS has_token FROM users \
     WHERE ($1 IS NULL OR org_id = $1) AND removed_at IS NULL ORDER BY email";

pub const USER_BY_EMAIL: &str =
    "SELECT id, org_id, email, role, created_at, token_digest IS NOT NULL AS has_token FROM users \
     WHERE email = $1 AND removed_at IS NULL";

/// `$1` the time, `$2` the user.
pub const REMOVE_USER: &str = "UPDATE users SET removed_at = $1, token_digest = NULL \
     WHERE id = $2 AND removed_at IS NULL";

/// `$1` the role, `$2` the user.
pub const SET_USER_ROLE: &str = "UPDATE users SET role = $1 WHERE id = $2 AND removed_at IS NULL";

/// `$1` the digest (or NULL), `$2` the user.
pub const SET_USER_TOKEN_BY_ID: &str =
    "UPDATE users SET token_digest = $1 WHERE id = $2 AND removed_at IS NULL";

pub const SET_USER_TOKEN_BY_EMAIL: &str =
    "UPDATE users SET token_digest = $1 WHERE email = $2 AND removed_at IS NULL";

pub const USER_BY_TOKEN: &str = "SELECT u.id, u.org_id, u.email, u.role, u.created_at, \
     o.name AS org_name, o.plan AS org_plan, o.created_at AS org_created_at \
     FROM users u JOIN organisations o ON o.id = u.org_id \
     WHERE u.token_digest = $1 AND u.removed_at IS NULL";

pub const FORGET_OLD_IDEMPOTENCY_KEYS: &str =
    "DELETE FROM idempotency_keys WHERE org_id = $1 AND created_at < $2";

pub const CLAIM_IDEMPOTENCY_KEY: &str =
    "INSERT INTO idempotency_keys (org_id, idempotency_key, api_key_id, created_at, \
     request_digest) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

pub const IDEMPOTENCY_REQUEST_DIGEST: &str = "SELECT request_digest FROM idempotency_keys \
     WHERE org_id = $1 AND idempotency_key = $2";

pub const KEY_BY_IDEMPOTENCY_KEY: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys WHERE id = \
     (SELECT api_key_id FROM idempotency_keys WHERE org_id = $1 AND idempotency_key = $2)"
);

pub const INSERT_KEY: &str = concat!(
    "INSERT INTO api_keys (id, org_id, name, description, prefix, digest, scopes, \
     created_at, created_by, expires_at, replaces, secret_pending) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ",
    key_columns!()
);

/// The `api_keys` columns a [`super::KeyRow`] is read from (`window.rs` builds its queries on them).
pub const KEY_COLUMNS: &str = key_columns!();

/// SQLite's change cursor of an organisation (`$1`): the `change_seq` its
/// next write will get (writers take turns, so every later write is at or past it).
pub const SQLITE_CHANGE_CURSOR: &str =
    "SELECT COALESCE(MAX(change_seq), 0) + 1 FROM api_keys WHERE org_id = $1";

/// PostgreSQL's change cursor of an organisation (`$1`), before it is made
/// opaque (`sync_cursor.rs`): the least of
/// - the snapshot-safe point: the oldest transaction still running that may
///   write this database, else the next transaction id. Every transaction not
///   visible yet has an id at or past it. Transaction ids are server-wide: one
///   running in another database (seen so in `pg_stat_activity`, whatever the
///   order in which the two are read) cannot write here, so it does not hold
///   the cursor back; one that cannot be placed counts, to be safe;
/// - one past the organisation's own highest `change_seq` (the index
///   `api_keys_by_change` finds it).
///
/// Never past the snapshot-safe point, so no write a list may miss is before
/// it; and while only other organisations write, it stays at the second,
/// which moves only with this organisation's own writes.
pub const PG_CHANGE_CURSOR: &str = "SELECT LEAST(pg_snapshot_xmax(s)::text::bigint, \
     (SELECT MIN(x::text::bigint) FROM pg_snapshot_xip(s) AS x WHERE NOT EXISTS \
        (SELECT 1 FROM pg_stat_activity a WHERE a.backend_xid IS NOT NULL \
         AND a.datname IS DISTINCT FROM current_database() \
         AND a.backend_xid::text::bigint = x::text::bigint % 4294967296)), \
     (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM api_keys WHERE org_id = $1)) \
     FROM pg_current_snapshot() AS s";

/// `$1` the secret's name, `$2` 32 random bytes, `$3` now: kept unless
/// another replica made that secret first (PostgreSQL).
pub const PG_ADD_SERVER_SECRET: &str = "INSERT INTO server_secrets (name, secret, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";

/// The secret named `$1` (PostgreSQL).
pub const PG_SERVER_SECRET: &str = "SELECT secret FROM server_secrets WHERE name = $1";

pub const GET_KEY: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys WHERE org_id = $1 AND id = $2"
);

/// `$1` time, `$2` by whom, `$3` org, `$4` key.
pub const REVOKE_KEY: &str = concat!(
    "UPDATE api_keys SET revoked_at = $1, revoked_by = $2 \
     WHERE org_id = $3 AND id = $4 AND revoked_at IS NULL RETURNING ",
    key_columns!()
);

/// Rotation that revokes the old key: `$1` now, `$2` by whom, `$3` org, `$4`
/// key, `$5` its successor. A key already replaced is left alone (a second
/// rotation is refused, whatever the order two of them commit in).
pub const ROTATE_REVOKE_OLD: &str = concat!(
    "UPDATE api_keys SET revoked_at = $1, revoked_by = $2, replaced_by = $5 \
     WHERE org_id = $3 AND id = $4 AND revoked_at IS NULL AND replaced_by IS NULL \
     AND (expires_at IS NULL OR expires_at > $1) RETURNING ",
    key_columns!()
);

/// Rotation that lets the old key expire: `$1` until, `$2` now, `$3` org,
/// `$4` key, `$5` its successor; as [`ROTATE_REVOKE_OLD`], never twice.
pub const ROTATE_EXPIRE_OLD: &str = concat!(
    "UPDATE api_keys SET expires_at = \
       CASE WHEN expires_at IS NOT NULL AND expires_at < $1 THEN expires_at ELSE $1 END, \
       replaced_by = $5 \
     WHERE org_id = $3 AND id = $4 AND revoked_at IS NULL AND replaced_by IS NULL \
     AND (expires_at IS NULL OR expires_at > $2) RETURNING ",
    key_columns!()
);

/// A leak report's mark, first report only: `$1` when, `$2` the exposure
/// (JSON), `$3` org, `$4` key.
pub const MARK_EXPOSED: &str = concat!(
    "UPDATE api_keys SET exposed_at = $1, exposure = $2 \
     WHERE org_id = $3 AND id = $4 AND exposed_at IS NULL RETURNING ",
    key_columns!()
);

pub const KEY_BY_DIGEST: &str =
    "SELECT k.id, k.org_id, k.name, k.scopes, k.expires_at, k.revoked_at, o.plan AS org_plan \
     FROM api_keys k JOIN organisations o ON o.id = k.org_id \
     WHERE k.digest = $1 AND NOT k.secret_pending";

/// Issues the secret of a key that waits for one (the leak policy's
/// successor): `$1` its digest, `$2` its display prefix, `$3` org, `$4` key,
/// `$5` now. Once only, and only while the key is active: a key that has its
/// secret (or is revoked or expired) is left alone.
pub const ISSUE_SECRET: &str = concat!(
    "UPDATE api_keys SET digest = $1, prefix = $2, secret_pending = FALSE \
     WHERE org_id = $3 AND id = $4 AND secret_pending AND revoked_at IS NULL \
     AND (expires_at IS NULL OR expires_at > $5) RETURNING ",
    key_columns!()
);

pub const RECORD_LAST_USED: &str = "UPDATE api_keys SET last_used_at = $1 \
     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)";

pub const LIST_AUDIT: &str =
    "SELECT id, org_id, at, actor_kind, actor_id, actor_name, action, api_key_id, \
     remote_addr, details FROM audit_log \
     WHERE org_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3";

/// One key's entries (`audit_log_key` index).
pub const LIST_AUDIT_OF_KEY: &str =
    "SELECT id, org_id, at, actor_kind, actor_id, actor_name, action, api_key_id, \
     remote_addr, details FROM audit_log \
     WHERE org_id = $1 AND api_key_id = $2 AND ($3 IS NULL OR id < $3) \
     ORDER BY id DESC LIMIT $4";

pub const INSERT_AUDIT: &str =
    "INSERT INTO audit_log (org_id, at, actor_kind, actor_id, actor_name, action, \
     api_key_id, remote_addr, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Head of the multi-row insert of seeded keys; the `VALUES` rows follow.
pub const INSERT_SEED_KEYS: &str =
    "INSERT INTO api_keys (id, org_id, name, description, prefix, digest, scopes, \
     created_at, created_by, expires_at, last_used_at, revoked_at, revoked_by) ";

/// SQLite's head of the multi-row insert of seeded keys, numbering their
/// changes itself (past [`SQLITE_HIGHEST_CHANGE_SEQ`]) so that the insert
/// trigger has nothing to do.
pub const SQLITE_INSERT_SEED_KEYS: &str =
    "INSERT INTO api_keys (id, org_id, name, description, prefix, digest, scopes, \
     created_at, created_by, expires_at, last_used_at, revoked_at, revoked_by, change_seq) ";

/// The highest `change_seq` of every organisation (SQLite).
pub const SQLITE_HIGHEST_CHANGE_SEQ: &str = "SELECT COALESCE(MAX(change_seq), 0) FROM api_keys";

/// Every key of every organisation.
pub const COUNT_KEYS: &str = "SELECT COUNT(*) FROM api_keys";

/// Every audit entry of every organisation.
pub const COUNT_AUDIT: &str = "SELECT COUNT(*) FROM audit_log";

/// PostgreSQL's bulk load of seeded keys (text format), numbered as the
/// `api_keys_changed` trigger numbers them ([`PG_CURRENT_XACT`]).
pub const PG_COPY_SEED_KEYS: &str = "COPY api_keys (id, org_id, name, description, prefix, \
     digest, scopes, created_at, created_by, expires_at, last_used_at, revoked_at, revoked_by, \
     change_seq) FROM STDIN";

/// The `change_seq` the `api_keys_changed` trigger gives the transaction's writes.
pub const PG_CURRENT_XACT: &str = "SELECT pg_current_xact_id()::text::bigint";

/// PostgreSQL's bulk load of audit entries, in order of time.
pub const PG_COPY_SEED_AUDIT: &str = "COPY audit_log (org_id, at, actor_kind, actor_id, \
     actor_name, action, api_key_id, remote_addr, details) FROM STDIN";

/// Head of the multi-row insert of a bulk load's audit entries, which come
/// in order of time; the `VALUES` rows follow.
pub const INSERT_SEED_AUDIT_ROWS: &str =
    "INSERT INTO audit_log (org_id, at, actor_kind, actor_id, actor_name, action, \
     api_key_id, remote_addr, details) ";

pub const PING: &str = "SELECT 1";

/// Cancels the running queries of the connections named `$1` (PostgreSQL);
/// how many.
pub const PG_CANCEL_CALL: &str = "SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) \
     FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 \
     AND state = 'active' AND pid <> pg_backend_pid()";

/// The organisation's policy as JSON, if it set one.
pub const GET_POLICY: &str = "SELECT policy FROM org_policies WHERE org_id = $1";

/// `$1` org, `$2` the policy as JSON, `$3` when.
pub const SET_POLICY: &str = "INSERT INTO org_policies (org_id, policy, updated_at) \
     VALUES ($1, $2, $3) ON CONFLICT (org_id) DO UPDATE \
     SET policy = excluded.policy, updated_at = excluded.updated_at";

// SSH keys.

pub const INSERT_SSH_KEY: &str =
    "INSERT INTO ssh_keys (fingerprint, user_id, algorithm, public_key, comment, added_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

pub const LIST_SSH_KEYS: &str =
    "SELECT k.fingerprint, k.user_id, u.email, k.algorithm, k.public_key, k.comment, \
     k.added_at, k.last_used_at FROM ssh_keys k JOIN users u ON u.id = k.user_id \
     WHERE ($1 IS NULL OR k.user_id = $1) AND u.removed_at IS NULL \
     ORDER BY u.email, k.added_at, k.fingerprint";

pub const REMOVE_SSH_KEY: &str = "DELETE FROM ssh_keys WHERE user_id = $1 AND fingerprint = $2";

/// The user an SSH key lets in: none once the user is removed, or disabled
/// (their access token revoked, until `reset-token` gives them a new one).
pub const SSH_KEY_OWNER: &str = "SELECT u.id, u.org_id, u.email, u.role, u.created_at, \
     o.name AS org_name, o.plan AS org_plan, o.created_at AS org_created_at \
     FROM ssh_keys k JOIN users u ON u.id = k.user_id JOIN organisations o ON o.id = u.org_id \
     WHERE k.fingerprint = $1 AND u.removed_at IS NULL AND u.token_digest IS NOT NULL";

pub const TOUCH_SSH_KEY: &str = "UPDATE ssh_keys SET last_used_at = $1 WHERE fingerprint = $2";

/// The user a key belongs to, removed or not (`removed`), with their organisation.
pub const SSH_KEY_HOLDER: &str = "SELECT u.id, u.org_id, u.email, u.role, u.created_at, \
     u.token_digest IS NOT NULL AS has_token, u.removed_at IS NOT NULL AS removed, \
     o.name AS org_name, o.plan AS org_plan, o.created_at AS org_created_at \
     FROM ssh_keys k JOIN users u ON u.id = k.user_id JOIN organisations o ON o.id = u.org_id \
     WHERE k.fingerprint = $1";

// What replicas sharing one PostgreSQL database tell each other (`replicas.rs`).

/// The database's clock in Unix milliseconds, as a literal for `concat!`:
/// every lease is read and written against this one clock.
macro_rules! pg_now_ms {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// The newest key-check epoch (bumped by a trigger on every change to what
/// a key check answers).
pub const PG_KEYCHECK_EPOCH: &str = "SELECT epoch FROM keycheck_epoch WHERE id = 1";

/// Replicas with a live lease (on the database's clock) that have not
/// cleared their caches for epoch `$1` yet.
pub const PG_REPLICAS_BEHIND: &str = concat!(
    "SELECT COUNT(*) FROM keycheck_replicas WHERE acked < $1 AND lease_until > ",
    pg_now_ms!()
);

/// Deletes the lease rows of replicas gone for `$1` milliseconds.
pub const PG_FORGET_GONE_REPLICAS: &str = concat!(
    "DELETE FROM keycheck_replicas WHERE lease_until < ",
    pg_now_ms!(),
    " - $1"
);

/// A replica `$1` joins with a lease of `$2` ms, acknowledging the newest
/// epoch (its cache starts empty); returns that epoch.
pub const PG_JOIN_REPLICAS: &str = concat!(
    "INSERT INTO keycheck_replicas (id, lease_until, acked) VALUES ($1, ",
    pg_now_ms!(),
    " + $2, (SELECT epoch FROM keycheck_epoch WHERE id = 1)) RETURNING acked"
);

/// Renews replica `$1`'s lease for `$2` ms with its acknowledgement `$3`
/// (never moved back); returns the newest epoch.
pub const PG_RENEW_LEASE: &str = concat!(
    "INSERT INTO keycheck_replicas (id, lease_until, acked) VALUES ($1, ",
    pg_now_ms!(),
    " + $2, $3) ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until, \
     acked = GREATEST(keycheck_replicas.acked, EXCLUDED.acked) \
     RETURNING (SELECT epoch FROM keycheck_epoch WHERE id = 1)"
);

/// Replica `$1` has cleared its cache for epoch `$2`.
pub const PG_ACKNOWLEDGE: &str =
    "UPDATE keycheck_replicas SET acked = GREATEST(acked, $2) WHERE id = $1";

/// Replica `$1` is gone: writers need not wait for it.
pub const PG_LEAVE_REPLICAS: &str = "DELETE FROM keycheck_replicas WHERE id = $1";

/// Clients whose shared failure count is at least `$1` in a window that
/// started after `$2`: (address, window start).
pub const PG_FAILURE_LOCKS: &str =
    "SELECT addr, window_start FROM failed_auth WHERE failures >= $1 AND window_start > $2";

/// Adds `$3` failures at `$2` to client `$1`'s window, restarting a window
/// that started at or before `$4`; returns (window start, total).
pub const PG_ADD_FAILURES: &str =
    "INSERT INTO failed_auth (addr, window_start, failures) VALUES ($1, $2, $3) \
     ON CONFLICT (addr) DO UPDATE SET \
       window_start = CASE WHEN failed_auth.window_start <= $4 \
         THEN EXCLUDED.window_start ELSE failed_auth.window_start END, \
       failures = CASE WHEN failed_auth.window_start <= $4 \
         THEN EXCLUDED.failures ELSE failed_auth.failures + EXCLUDED.failures END \
     RETURNING window_start, failures";

/// Deletes the failure windows that started at or before `$1`.
pub const PG_FORGET_FAILURES: &str = "DELETE FROM failed_auth WHERE window_start <= $1";

/// Sends notice `$2` on channel `$1`, at the transaction's commit.
pub const PG_NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// SQLite's count of commits by other connections, as this connection saw them.
pub const SQLITE_DATA_VERSION: &str = "PRAGMA data_version";
