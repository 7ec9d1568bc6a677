//! Key usage as stored (issue 22): checks counted by outcome per key per
//! minute and per hour, the last client addresses of each key, and the
//! rate limit of the "used from a new address" audit entries. The service
//! writes batches ([`UsageStore::record_usage`]) and prunes old rows itself.
//! Times are Unix milliseconds; the counts add up across replicas (upserts
//! that add).

use async_trait::async_trait;

use super::StoreResult;

/// How many outcomes a bucket counts, in the order of [`OUTCOMES`].
pub const OUTCOME_COUNT: usize = 6;

/// The outcomes' names, as the columns and the API spell them.
pub const OUTCOMES: [&str; OUTCOME_COUNT] = [
    "valid",
    "insufficient_scope",
    "expired",
    "revoked",
    "rate_limited",
    "unknown",
];

/// Checks by outcome, in the order of [`OUTCOMES`].
pub type OutcomeCounts = [i64; OUTCOME_COUNT];

/// Distinct addresses kept per key.
pub const ADDRESSES_KEPT: i64 = 10;

/// One key's (or, with an empty key id, the unknown keys') checks in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub key_id: String,
    pub org_id: String,
    /// The minute's start.
    pub minute_ms: i64,
    pub counts: OutcomeCounts,
}

/// A key's checks from one client address since the last batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressUse {
    pub key_id: String,
    pub org_id: String,
    pub addr: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub uses: i64,
    /// Whether one of the checks was a good one (only those can be "new").
    pub valid: bool,
}

/// What a flush writes.
#[derive(Debug, Clone, Default)]
pub struct UsageBatch {
    pub rows: Vec<UsageRow>,
    pub addresses: Vec<AddressUse>,
    /// An address last seen before this (or never) is new for its key.
    pub new_before_ms: i64,
}

/// A good check from an address its key had not been seen from lately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAddress {
    pub key_id: String,
    pub org_id: String,
    pub addr: String,
    pub at_ms: i64,
}

/// Which table a read uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageTier {
    Minute,
    Hour,
}

/// One bucket read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBucketRow {
    pub at_ms: i64,
    pub counts: OutcomeCounts,
}

/// One of a key's last addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRow {
    pub addr: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub uses: i64,
}

/// A key among the organisation's most used (or most refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopKeyRow {
    pub key_id: String,
    pub name: String,
    pub prefix: String,
    pub checks: i64,
    pub refused: i64,
}

/// The usage tables.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Adds the batch's counts to the minute and hour tables and its
    /// addresses to the keys' last addresses (keeping [`ADDRESSES_KEPT`] a
    /// key), in one transaction; returns the good uses from addresses not
    /// seen since `new_before_ms`.
    async fn record_usage(&self, batch: &UsageBatch) -> StoreResult<Vec<NewAddress>>;
    /// Takes one of the key's `max` new-address audit entries of the window
    /// that started after `window_cut_ms` (a new window starts at `now_ms`
    /// when the last one is older): `false` when they are used up.
    async fn claim_new_address_audit(
        &self,
        key_id: &str,
        now_ms: i64,
        window_cut_ms: i64,
        max: i64,
    ) -> StoreResult<bool>;
    /// Deletes minute rows older than `minute_before_ms`, hour rows and
    /// addresses older than `hour_before_ms`; returns the rows deleted.
    async fn prune_usage(&self, minute_before_ms: i64, hour_before_ms: i64) -> StoreResult<u64>;
    /// Buckets of `step_ms` from `from_ms` on, of one key or (with `None`)
    /// of the organisation, with the service-wide unknown checks.
    async fn usage_buckets(
        &self,
        tier: UsageTier,
        org_id: &str,
        key_id: Option<&str>,
        from_ms: i64,
        step_ms: i64,
    ) -> StoreResult<Vec<UsageBucketRow>>;
    /// A key's last addresses, latest first.
    async fn usage_addresses(&self, key_id: &str) -> StoreResult<Vec<AddressRow>>;
    /// Re-reads the checks of `key_ids` since `since_ms` (the minute rows)
    /// and marks each key whose checks are mostly refused
    /// (`health::mostly_refused`: badge `refused`) with its numbers, or
    /// takes the mark off one that no longer is; a key's row is written only
    /// when its mark changes, and only an active key is marked. Returns the
    /// keys written.
    async fn refresh_refusals(
        &self,
        key_ids: &[String],
        since_ms: i64,
        now_ms: i64,
    ) -> StoreResult<u64>;
    /// The keys marked refused, for the sweep that takes the mark off as
    /// their refusals age out (index `api_keys_refused_sweep`).
    async fn refused_keys(&self, now_ms: i64) -> StoreResult<Vec<String>>;
    /// The organisation's keys with the most checks (or refusals) since `from_ms`.
    async fn usage_top_keys(
        &self,
        tier: UsageTier,
        org_id: &str,
        from_ms: i64,
        by_refused: bool,
        limit: i64,
    ) -> StoreResult<Vec<TopKeyRow>>;
}

/// The SQL, the same text on both backends (`at` and counts are BIGINT on
/// PostgreSQL; sums are cast back, as PostgreSQL sums BIGINT to NUMERIC).
pub(super) mod sql {
    /// Parameters per row of [`upsert`]: key, org, at, then the six counts.
    pub const UPSERT_PARAMS: usize = 3 + super::OUTCOME_COUNT;

    /// Adds `rows` rows to `{table}` in one statement: parameters
    /// [`UPSERT_PARAMS`] per row, in the order key, org, at, counts. The rows
    /// must differ in (key, at): PostgreSQL updates a row once per statement.
    pub fn upsert(table: &str, rows: usize) -> String {
        format!(
            "INSERT INTO {table} (key_id, org_id, at, valid, insufficient_scope, expired, revoked, \
             rate_limited, unknown) VALUES {} \
             ON CONFLICT (key_id, at) DO UPDATE SET \
             valid = {table}.valid + excluded.valid, \
             insufficient_scope = {table}.insufficient_scope + excluded.insufficient_scope, \
             expired = {table}.expired + excluded.expired, \
             revoked = {table}.revoked + excluded.revoked, \
             rate_limited = {table}.rate_limited + excluded.rate_limited, \
             unknown = {table}.unknown + excluded.unknown",
            values(rows, UPSERT_PARAMS)
        )
    }

    /// `rows` tuples of `per_row` numbered parameters from `$1`: `($1, $2), ($3, $4)`.
    fn values(rows: usize, per_row: usize) -> String {
        let tuples: Vec<String> = (0..rows)
            .map(|r| format!("({})", list(r * per_row + 1, per_row)))
            .collect();
        tuples.join(", ")
    }

    /// `count` numbered parameters from `$first`: `$3, $4, $5`.
    fn list(first: usize, count: usize) -> String {
        let params: Vec<String> = (first..first + count).map(|p| format!("${p}")).collect();
        params.join(", ")
    }

    /// Parameters per row of [`upsert_addresses`]: key, address, first seen, last seen, uses.
    pub const ADDRESS_PARAMS: usize = 5;

    /// Adds `rows` addresses' uses in one statement ([`ADDRESS_PARAMS`] each;
    /// the rows must differ in (key, address)).
    pub fn upsert_addresses(rows: usize) -> String {
        format!(
            "INSERT INTO usage_addresses (key_id, addr, first_seen, last_seen, uses) VALUES {} \
             ON CONFLICT (key_id, addr) DO UPDATE SET \
             last_seen = CASE WHEN excluded.last_seen > usage_addresses.last_seen \
             THEN excluded.last_seen ELSE usage_addresses.last_seen END, \
             uses = usage_addresses.uses + excluded.uses",
            values(rows, ADDRESS_PARAMS)
        )
    }

    /// The addresses of the keys `$1`…`$keys`, with when each was last seen.
    pub fn addresses_of(keys: usize) -> String {
        format!(
            "SELECT key_id, addr, last_seen FROM usage_addresses WHERE key_id IN ({})",
            list(1, keys)
        )
    }

    /// Keeps the last addresses of the keys `$1`…`$keys`, as many as the
    /// next parameter says, each.
    pub fn trim_addresses(keys: usize) -> String {
        let keys_list = list(1, keys);
        let keep = keys + 1;
        format!(
            "DELETE FROM usage_addresses WHERE key_id IN ({keys_list}) AND (key_id, addr) IN \
             (SELECT key_id, addr FROM (SELECT key_id, addr, ROW_NUMBER() OVER \
             (PARTITION BY key_id ORDER BY last_seen DESC, addr) AS n \
             FROM usage_addresses WHERE key_id IN ({keys_list})) AS ranked WHERE n > ${keep})"
        )
    }

    /// `$1` key, `$2` now, `$3` the cut: a window older than it starts again.
    pub const CLAIM_NEW_ADDRESS: &str =
        "INSERT INTO usage_new_address (key_id, window_start, audits) VALUES ($1, $2, 1) \
         ON CONFLICT (key_id) DO UPDATE SET \
         audits = CASE WHEN usage_new_address.window_start <= $3 THEN 1 \
         ELSE usage_new_address.audits + 1 END, \
         window_start = CASE WHEN usage_new_address.window_start <= $3 THEN $2 \
         ELSE usage_new_address.window_start END \
         RETURNING audits";

    /// A key's checks by outcome since `$2` (`$1` the key): the primary key's range.
    pub const REFUSAL_SUMS: &str = "SELECT CAST(COALESCE(SUM(valid), 0) AS BIGINT) AS valid, \
         CAST(COALESCE(SUM(insufficient_scope), 0) AS BIGINT) AS insufficient_scope, \
         CAST(COALESCE(SUM(expired), 0) AS BIGINT) AS expired, \
         CAST(COALESCE(SUM(revoked), 0) AS BIGINT) AS revoked, \
         CAST(COALESCE(SUM(rate_limited), 0) AS BIGINT) AS rate_limited \
         FROM usage_minute WHERE key_id = $1 AND at >= $2";

    /// Marks key `$1` refused since `$2` (now; kept if it already was),
    /// with its numbers `$3` (JSON): only an active key, only a change.
    pub const MARK_REFUSED: &str =
        "UPDATE api_keys SET refused_since = COALESCE(refused_since, $2), refusals = $3 \
         WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) \
         AND (refusals IS NULL OR refusals <> $3)";

    /// Takes key `$1`'s refused mark off, if it has one.
    pub const CLEAR_REFUSED: &str = "UPDATE api_keys SET refused_since = NULL, refusals = NULL \
         WHERE id = $1 AND refused_since IS NOT NULL";

    /// The keys marked refused (`$1` now): from the partial index of the marked ones.
    pub const REFUSED_SWEEP: &str =
        "SELECT id FROM api_keys WHERE refused_since IS NOT NULL AND refused_since <= $1";

    pub const PRUNE_MINUTES: &str = "DELETE FROM usage_minute WHERE at < $1";
    pub const PRUNE_HOURS: &str = "DELETE FROM usage_hour WHERE at < $1";
    pub const PRUNE_ADDRESSES: &str = "DELETE FROM usage_addresses WHERE last_seen < $1";
    pub const PRUNE_NEW_ADDRESS: &str = "DELETE FROM usage_new_address WHERE window_start < $1";

    const SUMS: &str = "CAST(SUM(valid) AS BIGINT) AS valid, \
         CAST(SUM(insufficient_scope) AS BIGINT) AS insufficient_scope, \
         CAST(SUM(expired) AS BIGINT) AS expired, CAST(SUM(revoked) AS BIGINT) AS revoked, \
         CAST(SUM(rate_limited) AS BIGINT) AS rate_limited, CAST(SUM(unknown) AS BIGINT) AS unknown";

    /// `$1` org, `$2` from, `$3` step; one key (`$4`) or the org with the unknown row.
    pub fn buckets(table: &str, one_key: bool) -> String {
        let whose = if one_key {
            "org_id = $1 AND key_id = $4"
        } else {
            "org_id IN ($1, '')"
        };
        format!(
            "SELECT CAST((at / $3) * $3 AS BIGINT) AS bucket, {SUMS} FROM {table} \
             WHERE {whose} AND at >= $2 GROUP BY bucket ORDER BY bucket"
        )
    }

    pub const ADDRESSES: &str = "SELECT addr, first_seen, last_seen, uses FROM usage_addresses \
         WHERE key_id = $1 ORDER BY last_seen DESC, addr";

    /// `$1` org, `$2` from, `$3` limit.
    pub fn top_keys(table: &str, by_refused: bool) -> String {
        let (order, counted) = if by_refused {
            (
                "refused",
                "u.insufficient_scope + u.expired + u.revoked + u.rate_limited",
            )
        } else {
            (
                "checks",
                "u.valid + u.insufficient_scope + u.expired + u.revoked + u.rate_limited",
            )
        };
        format!(
            "SELECT u.key_id AS key_id, k.name AS name, k.prefix AS prefix, \
             CAST(SUM(u.valid + u.insufficient_scope + u.expired + u.revoked + u.rate_limited) \
             AS BIGINT) AS checks, \
             CAST(SUM(u.insufficient_scope + u.expired + u.revoked + u.rate_limited) AS BIGINT) \
             AS refused \
             FROM {table} u JOIN api_keys k ON k.id = u.key_id \
             WHERE u.org_id = $1 AND u.at >= $2 \
             GROUP BY u.key_id, k.name, k.prefix \
             HAVING SUM({counted}) > 0 ORDER BY {order} DESC, u.key_id LIMIT $3"
        )
    }
}
