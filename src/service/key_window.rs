//! `GET /v1/api-keys` and `GET /v1/api-keys/counts`: the key list as a
//! window the store reads from an index (a tab, a sort, pages both ways from
//! a position, the last page directly), each key with its health badges, and
//! the counts per tab and of the summary line — what a client needs to show
//! any part of a million keys while holding only what is on screen.

use axum::extract::State;
use axum::Json as JsonBody;
use chrono::{DateTime, Utc};

use super::auth::Admin;
use super::error::{field_error, ApiError};
use super::extract::Query;
use super::keys::{decode_sync_cursor, encode_sync_cursor, page_limit, MAX_QUERY_LEN};
use super::AppState;
use crate::api::{
    ErrorBody, KeyCounts, KeyCountsQuery, KeyList, KeyListQuery, SummaryCounts, TabCounts,
};
use crate::key::health;
use crate::key::KeyStatus;
use crate::store::{Anchor, KeyPosition, KeyQuery, KeySort, KeyTab};

/// List the organisation's keys: one page of a tab in a sort order. Pages
/// continue from `cursor` (after) or `before`; `from=end` is the last page.
/// With `changed_since` (the `sync_cursor` of an earlier answer), only the
/// keys written since: a refresh of a list already held costs what changed,
/// not the number of keys.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", params(KeyListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = KeyList),
        (status = 400, description = "`invalid_request`: the field in `fields` (`tab`, `sort`, `order`, `cursor`, `before`, `from`, `q`, `limit`, `changed_since`)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<KeyListQuery>,
) -> Result<JsonBody<KeyList>, ApiError> {
    let limit = page_limit(query.limit)?;
    let tab = tab(&query)?;
    let sort = sort(query.sort.as_deref(), tab)?;
    let descending = descending(query.order.as_deref(), sort)?;
    let anchor = anchor(&query, sort)?;
    let changed_since = match query.changed_since.as_deref() {
        None => None,
        Some(c) => decode_sync_cursor(c).ok_or_else(|| {
            field_error(
                "changed_since",
                "changed_since is not a sync_cursor this service issued; list without it",
            )
        })?,
    };
    let now = to_ms(state.clock.now());
    let policy = state.store.policy(&admin.org.id).await?;
    let first = anchor == Anchor::Start;
    let backwards = matches!(anchor, Anchor::Before(_) | Anchor::End);
    let has_after = matches!(anchor, Anchor::Before(_));
    let has_before = matches!(anchor, Anchor::After(_));
    let window = KeyQuery {
        tab,
        sort,
        descending,
        q: text(query.q)?,
        now,
        policy,
        limit: limit + 1,
        anchor,
        changed_since,
    };
    // Taken before the rows are read: a write the rows miss is past it.
    let sync_cursor = state.store.change_cursor(&admin.org.id).await?;
    let mut rows = state.store.list_window(&admin.org.id, &window).await?;
    let more = rows.len() > limit as usize;
    if more && backwards {
        rows.remove(0);
    } else if more {
        rows.truncate(limit as usize);
    }
    let position = |k: Option<&crate::store::WindowKey>| k.map(|k| k.position.encode());
    let next_cursor = (has_after || (more && !backwards))
        .then(|| position(rows.last()))
        .flatten();
    let prev_cursor = (has_before || (more && backwards))
        .then(|| position(rows.first()))
        .flatten();
    let data = rows
        .into_iter()
        .map(|w| {
            let mut key = state.api_key(w.key, now);
            let badges = health::badges(&key, &policy, now);
            key.health = Some(badges.iter().map(|b| b.id().to_owned()).collect());
            key
        })
        .collect();
    Ok(JsonBody(KeyList {
        data,
        next_cursor,
        prev_cursor,
        sync_cursor: Some(encode_sync_cursor(sync_cursor)),
        policy_tag: first.then(|| policy.tag()),
    }))
}

/// How many keys each tab lists and the summary line's numbers, of the keys
/// matching `q` (as the list finds them), under the organisation's policy.
#[utoipa::path(get, path = "/v1/api-keys/counts", tag = "api-keys", params(KeyCountsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = KeyCounts),
        (status = 400, description = "`invalid_request`: `q` too long", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn counts(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<KeyCountsQuery>,
) -> Result<JsonBody<KeyCounts>, ApiError> {
    let q = text(query.q)?;
    let now = to_ms(state.clock.now());
    let policy = state.store.policy(&admin.org.id).await?;
    let c = state
        .store
        .key_counts(&admin.org.id, q.as_deref(), &policy, now)
        .await?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(JsonBody(KeyCounts {
        tabs: TabCounts {
            all: n(c.all),
            active: n(c.active),
            expired: n(c.expired),
            revoked: n(c.revoked),
            attention: n(c.attention),
        },
        summary: SummaryCounts {
            active: n(c.active),
            expiring: n(c.expiring),
            rotate: n(c.rotate),
            unused: n(c.unused),
            expired: n(c.expired),
            rotating: n(c.rotating),
            policy: n(c.policy),
            attention: n(c.attention),
            exposed: n(c.exposed),
            refused: n(c.refused),
            no_secret: n(c.no_secret),
        },
    }))
}

/// `now` to the millisecond, as times are stored: the SQL's rules and the
/// badges computed here read the same instant.
fn to_ms(now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// The filter text, trimmed; none if empty.
fn text(q: Option<String>) -> Result<Option<String>, ApiError> {
    let q = q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
    if q.as_ref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_LEN)
    {
        return Err(field_error(
            "q",
            format!("q must be at most {MAX_QUERY_LEN} characters"),
        ));
    }
    Ok(q)
}

/// The tab, from `tab` or (as before tabs) `status`.
fn tab(query: &KeyListQuery) -> Result<KeyTab, ApiError> {
    let from_status = query.status.map(|s| match s {
        KeyStatus::Active => KeyTab::Active,
        KeyStatus::Expired => KeyTab::Expired,
        KeyStatus::Revoked => KeyTab::Revoked,
    });
    let Some(name) = query.tab.as_deref() else {
        return Ok(from_status.unwrap_or(KeyTab::All));
    };
    let tab = match name {
        "all" => KeyTab::All,
        "active" => KeyTab::Active,
        "expired" => KeyTab::Expired,
        "revoked" => KeyTab::Revoked,
        "attention" => KeyTab::Attention,
        _ => {
            return Err(field_error(
                "tab",
                "tab must be all, active, expired, revoked or attention",
            ))
        }
    };
    match from_status {
        Some(s) if s != tab => Err(field_error(
            "tab",
            "tab and status disagree: give one of them",
        )),
        _ => Ok(tab),
    }
}

/// The sort; by default the creation date, or the Attention order on that tab.
fn sort(name: Option<&str>, tab: KeyTab) -> Result<KeySort, ApiError> {
    if name == Some("attention") && tab != KeyTab::Attention {
        return Err(field_error(
            "sort",
            "sort=attention is the order of the attention tab: add tab=attention",
        ));
    }
    Ok(match name {
        None if tab == KeyTab::Attention => KeySort::Attention,
        None | Some("created") => KeySort::Created,
        Some("name") => KeySort::Name,
        Some("last_used") => KeySort::LastUsed,
        Some("expires") => KeySort::Expires,
        Some("status") => KeySort::Status,
        Some("attention") => KeySort::Attention,
        Some(_) => {
            return Err(field_error(
                "sort",
                "sort must be created, name, last_used, expires, status or attention",
            ))
        }
    })
}

/// Whether the order runs against the sort's ascending one.
fn descending(order: Option<&str>, sort: KeySort) -> Result<bool, ApiError> {
    match order {
        None => Ok(matches!(sort, KeySort::Created | KeySort::LastUsed)),
        Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(_) => Err(field_error("order", "order must be asc or desc")),
    }
}

/// Where the page starts: at most one of `cursor`, `before` and `from`.
fn anchor(query: &KeyListQuery, sort: KeySort) -> Result<Anchor, ApiError> {
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().filter(|s| !s.is_empty())
    }
    let position = |field: &str, text: &str| {
        KeyPosition::decode(text, sort).ok_or_else(|| {
            field_error(
                field,
                format!("{field} is not a position this service issued for this sort; start again without it"),
            )
        })
    };
    match (
        given(&query.cursor),
        given(&query.before),
        given(&query.from),
    ) {
        (None, None, None) => Ok(Anchor::Start),
        (Some(c), None, None) => Ok(Anchor::After(position("cursor", c)?)),
        (None, Some(b), None) => Ok(Anchor::Before(position("before", b)?)),
        (None, None, Some("end")) => Ok(Anchor::End),
        (None, None, Some(_)) => Err(field_error("from", "from must be end")),
        _ => Err(field_error(
            "cursor",
            "give at most one of cursor, before and from",
        )),
    }
}
