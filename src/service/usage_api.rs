//! `GET /v1/api-keys/{id}/usage` and `GET /v1/usage`: key checks by outcome
//! over a window, a key's last addresses, the organisation's top keys.
//! For admins, and for API keys with `audit_logs:read`.

use axum::extract::State;
use axum::Json as JsonBody;
use chrono::{DateTime, Utc};

use super::auth::AuditReader;
use super::error::{field_error, ApiError};
use super::extract::{Path, Query};
use super::AppState;
use crate::api::{
    ErrorBody, KeyUsage, OrgUsage, TopKey, UsageAddress, UsageBucket, UsageCounts, UsageQuery,
    UsageWindow,
};
use crate::store::usage::{OutcomeCounts, TopKeyRow, UsageBucketRow, UsageTier};

/// Keys listed in each top list.
const TOP_KEYS: i64 = 10;

fn window(query: &UsageQuery) -> Result<UsageWindow, ApiError> {
    match query.window.as_deref() {
        None => Ok(UsageWindow::Day),
        Some(w) => w.parse().map_err(|e: String| field_error("window", e)),
    }
}

/// The window's buckets: the table read, the step and the first bucket's start.
fn span(window: UsageWindow, now: DateTime<Utc>) -> (UsageTier, i64, usize, i64) {
    let (seconds, n) = window.buckets();
    let step = seconds * 1000;
    let tier = if window == UsageWindow::Hour {
        UsageTier::Minute
    } else {
        UsageTier::Hour
    };
    let last = now.timestamp_millis().div_euclid(step) * step;
    (tier, step, n, last - (n as i64 - 1) * step)
}

fn counts(c: &OutcomeCounts) -> UsageCounts {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    UsageCounts {
        valid: n(c[0]),
        insufficient_scope: n(c[1]),
        expired: n(c[2]),
        revoked: n(c[3]),
        rate_limited: n(c[4]),
        unknown: n(c[5]),
    }
}

/// Every bucket of the window, the empty ones too, and their totals.
fn fill(
    rows: &[UsageBucketRow],
    from: i64,
    step: i64,
    n: usize,
) -> (Vec<UsageBucket>, UsageCounts) {
    let mut buckets: Vec<UsageBucket> = (0..n)
        .map(|i| UsageBucket {
            start: DateTime::from_timestamp_millis(from + i as i64 * step).unwrap_or_default(),
            counts: UsageCounts::default(),
        })
        .collect();
    let mut totals = UsageCounts::default();
    for row in rows {
        let i = (row.at_ms - from).div_euclid(step);
        if let Some(bucket) = usize::try_from(i).ok().and_then(|i| buckets.get_mut(i)) {
            let c = counts(&row.counts);
            bucket.counts.add(&c);
            totals.add(&c);
        }
    }
    (buckets, totals)
}

fn top(rows: Vec<TopKeyRow>) -> Vec<TopKey> {
    rows.into_iter()
        .map(|r| TopKey {
            key_id: r.key_id,
            name: r.name,
            prefix: r.prefix,
            checks: u64::try_from(r.checks).unwrap_or(0),
            refused: u64::try_from(r.refused).unwrap_or(0),
        })
        .collect()
}

/// A key's checks by outcome over the window, and its last client addresses.
///
/// Counts are written in batches: a check shows here within about a second
/// (the flush interval, at most 2 s). The addresses are the clients of
/// `/v1/auth` (behind a trusted proxy, the client it reports).
#[utoipa::path(get, path = "/v1/api-keys/{id}/usage", tag = "usage", security(("bearer" = [])),
    params(("id" = String, Path), UsageQuery),
    responses(
        (status = 200, body = KeyUsage),
        (status = 400, description = "`invalid_request`: a window other than 1h, 24h, 7d, 30d or 90d (error.fields.window)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, description = "Neither an admin nor a key with audit_logs:read", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn key_usage(
    State(state): State<AppState>,
    reader: AuditReader,
    Path(id): Path<String>,
    Query(query): Query<UsageQuery>,
) -> Result<JsonBody<KeyUsage>, ApiError> {
    let window = window(&query)?;
    super::keys::check_id(&id)?;
    let org_id = reader.org_id();
    state
        .store
        .get_key(org_id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let (tier, step, n, from) = span(window, state.clock.now());
    let usage = state.store.usage();
    let rows = usage
        .usage_buckets(tier, org_id, Some(&id), from, step)
        .await?;
    let (buckets, totals) = fill(&rows, from, step, n);
    let addresses = usage
        .usage_addresses(&id)
        .await?
        .into_iter()
        .map(|a| UsageAddress {
            address: a.addr,
            first_seen: DateTime::from_timestamp_millis(a.first_ms).unwrap_or_default(),
            last_seen: DateTime::from_timestamp_millis(a.last_ms).unwrap_or_default(),
            uses: u64::try_from(a.uses).unwrap_or(0),
        })
        .collect();
    Ok(JsonBody(KeyUsage {
        key_id: id,
        window: window.as_str().into(),
        bucket_seconds: (step / 1000) as u32,
        buckets,
        totals,
        addresses,
    }))
}

/// The organisation's key checks by outcome over the window (with the
/// service-wide `unknown` checks), and its top keys by checks and by refusals.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", security(("bearer" = [])),
    params(UsageQuery),
    responses(
        (status = 200, body = OrgUsage),
        (status = 400, description = "`invalid_request`: a window other than 1h, 24h, 7d, 30d or 90d (error.fields.window)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, description = "Neither an admin nor a key with audit_logs:read", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn org_usage(
    State(state): State<AppState>,
    reader: AuditReader,
    Query(query): Query<UsageQuery>,
) -> Result<JsonBody<OrgUsage>, ApiError> {
    let window = window(&query)?;
    let org_id = reader.org_id();
    let (tier, step, n, from) = span(window, state.clock.now());
    let usage = state.store.usage();
    let rows = usage.usage_buckets(tier, org_id, None, from, step).await?;
    let (buckets, totals) = fill(&rows, from, step, n);
    let by_checks = usage
        .usage_top_keys(tier, org_id, from, false, TOP_KEYS)
        .await?;
    let by_refusals = usage
        .usage_top_keys(tier, org_id, from, true, TOP_KEYS)
        .await?;
    Ok(JsonBody(OrgUsage {
        window: window.as_str().into(),
        bucket_seconds: (step / 1000) as u32,
        buckets,
        totals,
        top_by_checks: top(by_checks),
        top_by_refusals: top(by_refusals),
    }))
}
