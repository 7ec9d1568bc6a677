//! Webhook endpoints, the events outbox and the deliveries (issue 24).
//!
//! The outbox: [`SqlStore::insert_audit`] writes, in the transaction of the
//! change it audits, the webhook event the change makes (`api_key.created`,
//! `api_key.revoked`, …) and one delivery per endpoint subscribed to it (no
//! row when none is), so a committed change always has its event and a
//! rolled-back one never does.
//! Replicas claim due deliveries with a lease (and, on PostgreSQL, `FOR UPDATE
//! SKIP LOCKED`), so each is sent by one of them at a time.
//!
//! The signing secret is stored in the clear (see the migration): it is the
//! HMAC key, read back to sign. It lives in [`Secret`] (its `Debug` shows `***`, wiped on drop).

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::sql_store::{Dialect, SqlStore};
use super::*;
use crate::audit_action::AuditAction;
use crate::key::webhook::{self as event, DebugUrl};
use crate::key::Secret;

/// An endpoint as listed (never its secrets). `Debug` shows the URL redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Failed attempts in a row.
    pub consecutive_failures: i64,
    /// When the current run of failures began.
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Until then the previous secret signs too.
    pub previous_secret_until: Option<DateTime<Utc>>,
}

/// An endpoint to insert. `Debug` shows the URL redacted.
#[derive(Clone)]
pub struct NewEndpoint {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: Secret,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// An event to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The `webhook-id`.
    pub id: String,
    pub org_id: String,
    pub kind: String,
    pub created_at: DateTime<Utc>,
    /// The whole body sent: `{"type", "timestamp", "data"}`.
    pub payload: Value,
    /// Time-based events: what makes them happen once.
    pub once: Option<Once>,
}

/// What makes a time-based event happen once: the outbox holds at most one
/// event with the `dedupe` text, and keeps it (pruning or not) `until` the
/// event could no longer be made again.
#[derive(Debug, Clone)]
pub struct Once {
    pub dedupe: String,
    pub until: DateTime<Utc>,
}

/// Which page of an endpoint's deliveries (newest first) to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryPage {
    /// The newest.
    Newest,
    /// Those older than this delivery (by id): the page after it.
    Older(i64),
    /// Those newer than this delivery: the page before it.
    Newer(i64),
    /// The oldest, without reading what lies before them.
    Oldest,
}

/// A delivery as `GET /v1/webhooks/{id}/deliveries` lists it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A delivery a replica claimed, with what it needs to send it. `Debug`
/// shows the URL redacted and the secrets as `***`.
pub struct Claimed {
    pub id: i64,
    pub event_id: String,
    pub payload: String,
    pub endpoint_id: String,
    pub org_id: String,
    pub url: String,
    /// The current secret, and the previous one while it still signs.
    pub secrets: Vec<Secret>,
    pub attempts: i64,
    /// When the delivery was made (retries stop a day after).
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("url", &DebugUrl(&self.url))
            .field("events", &self.events)
            .field("created_at", &self.created_at)
            .field("created_by", &self.created_by)
            .field("consecutive_failures", &self.consecutive_failures)
            .field("failing_since", &self.failing_since)
            .field("disabled_at", &self.disabled_at)
            .field("previous_secret_until", &self.previous_secret_until)
            .finish()
    }
}

impl fmt::Debug for NewEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewEndpoint")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("url", &DebugUrl(&self.url))
            .field("events", &self.events)
            .field("secret", &self.secret)
            .field("created_at", &self.created_at)
            .field("created_by", &self.created_by)
            .finish()
    }
}

impl fmt::Debug for Claimed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claimed")
            .field("id", &self.id)
            .field("event_id", &self.event_id)
            .field("payload", &self.payload)
            .field("endpoint_id", &self.endpoint_id)
            .field("org_id", &self.org_id)
            .field("url", &DebugUrl(&self.url))
            .field("secrets", &self.secrets)
            .field("attempts", &self.attempts)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// A 2xx.
    Delivered { status: u16 },
    /// Another status or no answer; tried again at `retry_at`, or given up.
    Failed {
        status: Option<u16>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// Webhooks' part of the store.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Inserts the endpoint and `audit` in one transaction.
    async fn add_endpoint(&self, endpoint: &NewEndpoint, audit: &AuditEvent) -> StoreResult<()>;
    /// The organisation's endpoints, oldest first.
    async fn list_endpoints(&self, org_id: &str) -> StoreResult<Vec<Endpoint>>;
    async fn endpoint(&self, org_id: &str, id: &str) -> StoreResult<Option<Endpoint>>;
    /// Deletes the endpoint and its deliveries, writing `audit`; `false` if there is none.
    async fn remove_endpoint(
        &self,
        org_id: &str,
        id: &str,
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// A new current secret; the old one signs too until `overlap_until`.
    async fn rotate_endpoint_secret(
        &self,
        org_id: &str,
        id: &str,
        secret: &Secret,
        overlap_until: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// Enables a disabled endpoint (its failures forgotten, its pending deliveries resumed).
    async fn enable_endpoint(
        &self,
        org_id: &str,
        id: &str,
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// Puts an event in the outbox with a delivery to each endpoint
    /// subscribed to it (or to `only` alone, subscribed or not). `false` if
    /// an event with its `dedupe` text is there already.
    async fn enqueue_event(&self, event: &NewEvent, only: Option<&str>) -> StoreResult<bool>;
    /// Up to `limit` of the endpoint's deliveries on `page`, newest first.
    async fn list_deliveries(
        &self,
        endpoint_id: &str,
        page: DeliveryPage,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    /// Leases up to `limit` deliveries due at `now` (pending, not leased, to
    /// an enabled endpoint) until `lease_until`.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Claimed>>;
    /// Records an attempt and the endpoint's health; an endpoint failing
    /// since `disable_before` or earlier is disabled, audited. `true` if it was disabled now.
    async fn finish_attempt(
        &self,
        delivery: &Claimed,
        at: DateTime<Utc>,
        attempt: &Attempt,
        disable_before: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Organisations with at least one enabled endpoint.
    async fn orgs_with_endpoints(&self) -> StoreResult<Vec<String>>;
    /// Deletes, with their deliveries, up to `limit` events made before
    /// `before` whose every delivery is done (delivered or given up) with
    /// its last attempt before `before`, and that no longer make a
    /// time-based event happen once (`keep_until` passed at `now`). Never an
    /// event with a delivery pending (retrying, or waiting for a disabled
    /// endpoint). How many events went.
    async fn prune_events(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64>;
}

const ENDPOINT_COLUMNS: &str = "id, org_id, url, events, created_at, created_by, \
     consecutive_failures, failing_since, disabled_at, previous_until";

const INSERT_ENDPOINT: &str = "INSERT INTO webhook_endpoints \
     (id, org_id, url, events, secret, created_at, created_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

const DELETE_ENDPOINT_DELIVERIES: &str = "DELETE FROM webhook_deliveries WHERE endpoint_id = \
     (SELECT id FROM webhook_endpoints WHERE org_id = $1 AND id = $2)";

const DELETE_ENDPOINT: &str = "DELETE FROM webhook_endpoints WHERE org_id = $1 AND id = $2";

/// `$1` the new secret, `$2` until when the old one signs, `$3` org, `$4` id.
const ROTATE_SECRET: &str = "UPDATE webhook_endpoints SET previous_secret = secret, \
     secret = $1, previous_until = $2 WHERE org_id = $3 AND id = $4";

/// Before enabling: the deliveries that waited get a day of retries from now (`$1`).
const RESUME_DELIVERIES: &str = "UPDATE webhook_deliveries SET created_at = $1, \
     next_attempt_at = $1 WHERE status = 'pending' AND endpoint_id = (SELECT id \
     FROM webhook_endpoints WHERE org_id = $2 AND id = $3 AND disabled_at IS NOT NULL)";

const ENABLE_ENDPOINT: &str = "UPDATE webhook_endpoints SET disabled_at = NULL, \
     consecutive_failures = 0, failing_since = NULL \
     WHERE org_id = $1 AND id = $2 AND disabled_at IS NOT NULL";

const INSERT_EVENT: &str =
    "INSERT INTO webhook_events (id, org_id, type, created_at, payload, dedupe, keep_until) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";

/// One delivery per endpoint of the organisation subscribed to the event
/// type (`$4`, matched in the space-separated list, its `_` escaped). A
/// disabled endpoint's wait: they are sent once it is enabled again.
const FAN_OUT: &str = "INSERT INTO webhook_deliveries \
     (event_id, endpoint_id, status, attempts, next_attempt_at, created_at) \
     SELECT $1, id, 'pending', 0, $2, $2 FROM webhook_endpoints \
     WHERE org_id = $3 AND (' ' || events || ' ') LIKE $4 ESCAPE '\\'";

const DELIVER_TO_ONE: &str = "INSERT INTO webhook_deliveries \
     (event_id, endpoint_id, status, attempts, next_attempt_at, created_at) \
     SELECT $1, id, 'pending', 0, $2, $2 FROM webhook_endpoints WHERE org_id = $3 AND id = $4";

/// `$1` the endpoint, `$2` how many, `$3` the delivery a page starts after
/// or before; `{page}` the condition and order of [`DeliveryPage`].
const LIST_DELIVERIES: &str = "SELECT d.id, d.event_id, e.type AS event_type, d.status, \
     d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.created_at \
     FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
     WHERE d.endpoint_id = $1 AND {page} LIMIT $2";

/// The events [`WebhookStore::prune_events`] takes: `$1` made (and last
/// tried) before, `$2` now, `$3` how many; oldest first.
const PRUNABLE: &str = "SELECT e.id FROM webhook_events e WHERE e.created_at < $1 \
     AND (e.keep_until IS NULL OR e.keep_until <= $2) \
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id \
     AND (d.status = 'pending' OR COALESCE(d.last_attempt_at, d.created_at) >= $1)) \
     ORDER BY e.created_at LIMIT $3";

/// `$1` the lease's end, `$2` now, `$3` how many; `{lock}` the dialect's row lock.
const CLAIM: &str = "UPDATE webhook_deliveries SET lease_until = $1 WHERE id IN ( \
     SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
     WHERE d.status = 'pending' AND d.next_attempt_at <= $2 \
     AND (d.lease_until IS NULL OR d.lease_until <= $2) AND w.disabled_at IS NULL \
     ORDER BY d.next_attempt_at LIMIT $3 {lock}) \
     AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $2) RETURNING id";

/// Whether any delivery is due at `$1`: what [`CLAIM`] would pick, read only.
const ANY_DUE: &str = "SELECT d.id FROM webhook_deliveries d \
     JOIN webhook_endpoints w ON w.id = d.endpoint_id \
     WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
     AND (d.lease_until IS NULL OR d.lease_until <= $1) AND w.disabled_at IS NULL LIMIT 1";

const CLAIMED: &str = "SELECT d.id, d.event_id, e.payload, d.endpoint_id, w.org_id, w.url, \
     w.secret, w.previous_secret, w.previous_until, d.attempts, d.created_at \
     FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
     JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = $1";

/// `$1` status, `$2` next attempt, `$3` at, `$4` response code, `$5` error, `$6` id.
const RECORD_ATTEMPT: &str = "UPDATE webhook_deliveries SET status = $1, \
     attempts = attempts + 1, next_attempt_at = $2, last_attempt_at = $3, last_status = $4, \
     last_error = $5, lease_until = NULL WHERE id = $6";

const ENDPOINT_SUCCEEDED: &str = "UPDATE webhook_endpoints SET consecutive_failures = 0, \
     failing_since = NULL WHERE id = $1";

const ENDPOINT_FAILED: &str = "UPDATE webhook_endpoints SET \
     consecutive_failures = consecutive_failures + 1, \
     failing_since = COALESCE(failing_since, $1) WHERE id = $2";

/// `$1` now, `$2` the failure run's latest start that disables, `$3` id.
const DISABLE_IF_FAILING: &str = "UPDATE webhook_endpoints SET disabled_at = $1 \
     WHERE id = $3 AND disabled_at IS NULL AND failing_since <= $2";

const ORGS_WITH_ENDPOINTS: &str =
    "SELECT DISTINCT org_id FROM webhook_endpoints WHERE disabled_at IS NULL ORDER BY org_id";

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: String,
    org_id: String,
    url: String,
    events: String,
    created_at: i64,
    created_by: String,
    consecutive_failures: i64,
    failing_since: Option<i64>,
    disabled_at: Option<i64>,
    previous_until: Option<i64>,
}

impl TryFrom<EndpointRow> for Endpoint {
    type Error = StoreError;
    fn try_from(r: EndpointRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            org_id: r.org_id,
            url: r.url,
            events: split_scopes(&r.events),
            created_at: from_ms(r.created_at)?,
            created_by: r.created_by,
            consecutive_failures: r.consecutive_failures,
            failing_since: from_opt_ms(r.failing_since)?,
            disabled_at: from_opt_ms(r.disabled_at)?,
            previous_secret_until: from_opt_ms(r.previous_until)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    last_attempt_at: Option<i64>,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            event_id: r.event_id,
            event_type: r.event_type,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: from_opt_ms(r.next_attempt_at)?,
            last_attempt_at: from_opt_ms(r.last_attempt_at)?,
            last_status: r.last_status,
            last_error: r.last_error,
            created_at: from_ms(r.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    event_id: String,
    payload: String,
    endpoint_id: String,
    org_id: String,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    previous_until: Option<i64>,
    attempts: i64,
    created_at: i64,
}

impl ClaimedRow {
    fn into_claimed(self, now: DateTime<Utc>) -> StoreResult<Claimed> {
        let mut secrets = vec![Secret::new(self.secret)];
        if let (Some(previous), Some(until)) = (self.previous_secret, self.previous_until) {
            if from_ms(until)? > now {
                secrets.push(Secret::new(previous));
            }
        }
        Ok(Claimed {
            id: self.id,
            event_id: self.event_id,
            payload: self.payload,
            endpoint_id: self.endpoint_id,
            org_id: self.org_id,
            url: self.url,
            secrets,
            attempts: self.attempts,
            created_at: from_ms(self.created_at)?,
        })
    }
}

/// The webhook event an audited change makes, if it makes one (one, or two
/// for a rotation that revokes the old key at once). `key` reads a key
/// of the organisation as the transaction sees it.
pub(super) fn events_of(
    audit: &AuditEvent,
    key: &dyn Fn(&str) -> Option<KeyRecord>,
) -> Vec<NewEvent> {
    let Ok(action) = audit.action.parse::<AuditAction>() else {
        return Vec::new();
    };
    let d = &audit.details;
    let actor = json!({
        "kind": audit.actor_kind, "id": audit.actor_id, "name": audit.actor_name,
    });
    let key_json = |id: &str| key(id).map(|k| key_payload(&k, audit.at));
    let mut out = Vec::new();
    let mut push = |kind: &str, data: Value| {
        out.push(new_event(&audit.org_id, kind, audit.at, data, None));
    };
    match action {
        AuditAction::ApiKeyCreated => {
            if let Some(k) = key_json(&audit.api_key_id) {
                push(
                    event::API_KEY_CREATED,
                    json!({ "api_key": k, "actor": actor }),
                );
            }
        }
        AuditAction::ApiKeyRevoked => {
            // The leak pipeline audits its revoke with reason `leaked`.
            let reason = d["reason"]
                .as_str()
                .map(|r| if r == "leaked" { "leak" } else { r })
                .filter(|r| event::REVOKE_REASONS.contains(r))
                .unwrap_or("admin");
            if let Some(k) = key_json(&audit.api_key_id) {
                push(
                    event::API_KEY_REVOKED,
                    json!({ "api_key": k, "reason": reason, "actor": actor }),
                );
            }
        }
        AuditAction::ApiKeyRotated => {
            let old = key_json(&audit.api_key_id);
            let new = d["new_key_id"].as_str().and_then(key_json);
            if let Some(old) = old {
                push(
                    event::API_KEY_ROTATED,
                    json!({
                        "api_key": old, "new_api_key": new,
                        "grace_seconds": d["grace_seconds"], "actor": actor,
                    }),
                );
                if d["grace_seconds"].as_u64() == Some(0) {
                    push(
                        event::API_KEY_REVOKED,
                        json!({ "api_key": old, "reason": "rotation", "actor": actor }),
                    );
                }
            }
        }
        AuditAction::ApiKeyExposed => {
            if let Some(k) = key_json(&audit.api_key_id) {
                push(
                    event::API_KEY_EXPOSED,
                    json!({
                        "api_key": k,
                        "exposure": { "at": audit.at, "source": d["source"], "location": d["location"] },
                        "on_leak": d["on_leak"], "actor": actor,
                    }),
                );
            }
        }
        AuditAction::ApiKeySecretIssued => {
            if let Some(k) = key_json(&audit.api_key_id) {
                push(
                    event::API_KEY_SECRET_ISSUED,
                    json!({ "api_key": k, "actor": actor }),
                );
            }
        }
        AuditAction::PolicyUpdated => push(
            event::POLICY_UPDATED,
            json!({ "policy": d["new"], "previous": d["old"], "actor": actor }),
        ),
        AuditAction::UserAdded | AuditAction::UserRemoved => {
            let kind = match action {
                AuditAction::UserAdded => event::USER_ADDED,
                _ => event::USER_REMOVED,
            };
            push(
                kind,
                json!({
                    "user": { "id": d["user_id"], "email": d["user_email"], "role": d["role"] },
                    "actor": actor,
                }),
            );
        }
        _ => {}
    }
    out
}

/// A key as events show it: id, name, prefix and dates, never a secret.
pub fn key_payload(k: &KeyRecord, now: DateTime<Utc>) -> Value {
    let mut payload = json!({
        "id": k.id, "name": k.name, "prefix": k.prefix,
        "status": k.status(now).as_str(),
        "created_at": k.created_at, "expires_at": k.expires_at,
        "revoked_at": k.revoked_at, "last_used_at": k.last_used_at,
    });
    // As the API says it: only while the key waits for its secret.
    if k.secret_pending {
        payload["secret_pending"] = true.into();
    }
    payload
}

/// An event with a fresh `webhook-id` and the Standard Webhooks body.
pub fn new_event(
    org_id: &str,
    kind: &str,
    at: DateTime<Utc>,
    data: Value,
    once: Option<Once>,
) -> NewEvent {
    let mut data = data;
    if let Some(map) = data.as_object_mut() {
        map.insert("organisation_id".into(), org_id.into());
    }
    NewEvent {
        id: crate::key::new_id("msg_"),
        org_id: org_id.to_owned(),
        kind: kind.to_owned(),
        created_at: at,
        payload: json!({ "type": kind, "timestamp": at, "data": data }),
        once,
    }
}

impl<DB: Dialect> SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q, 'r> String: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q, 'r> i64: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB>,
    for<'q, 'r> bool: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
{
    /// The outbox: the events `audit` makes, written on the audit's connection
    /// (its transaction), each with its deliveries.
    pub(super) async fn outbox(conn: &mut DB::Connection, audit: &AuditEvent) -> StoreResult<()> {
        let Ok(action) = audit.action.parse::<AuditAction>() else {
            return Ok(());
        };
        let mut keys = Vec::new();
        if matches!(
            action,
            AuditAction::ApiKeyCreated
                | AuditAction::ApiKeyRevoked
                | AuditAction::ApiKeyRotated
                | AuditAction::ApiKeyExposed
                | AuditAction::ApiKeySecretIssued
        ) {
            let ids = [
                Some(audit.api_key_id.as_str()),
                audit.details["new_key_id"].as_str(),
            ];
            for id in ids.into_iter().flatten() {
                let row = sqlx::query_as::<DB, KeyRow>(super::sql::GET_KEY)
                    .bind(&audit.org_id)
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                if let Some(row) = row {
                    keys.push(KeyRecord::try_from(row)?);
                }
            }
        }
        let find = |id: &str| keys.iter().find(|k| k.id == id).cloned();
        for e in events_of(audit, &find) {
            Self::enqueue_on(conn, &e, None).await?;
        }
        Ok(())
    }

    /// A change's event (no `dedupe`) is kept only if an endpoint is
    /// subscribed to it: its deliveries are written first, the event after
    /// them if there are any. A time-based one (with `dedupe`) is written
    /// first, its deliveries only if it was not there yet.
    async fn enqueue_on(
        conn: &mut DB::Connection,
        e: &NewEvent,
        only: Option<&str>,
    ) -> StoreResult<bool> {
        let insert_event = sqlx::query::<DB>(INSERT_EVENT)
            .bind(&e.id)
            .bind(&e.org_id)
            .bind(&e.kind)
            .bind(ms(e.created_at))
            .bind(e.payload.to_string())
            .bind(e.once.as_ref().map(|o| o.dedupe.as_str()))
            .bind(e.once.as_ref().map(|o| ms(o.until)));
        let deliveries = match only {
            Some(endpoint) => sqlx::query::<DB>(DELIVER_TO_ONE)
                .bind(&e.id)
                .bind(ms(e.created_at))
                .bind(&e.org_id)
                .bind(endpoint),
            None => sqlx::query::<DB>(FAN_OUT)
                .bind(&e.id)
                .bind(ms(e.created_at))
                .bind(&e.org_id)
                .bind(format!("% {} %", e.kind.replace('_', "\\_"))),
        };
        if e.once.is_some() {
            if DB::rows_affected(&insert_event.execute(&mut *conn).await?) == 0 {
                return Ok(false);
            }
            deliveries.execute(&mut *conn).await?;
            return Ok(true);
        }
        if DB::rows_affected(&deliveries.execute(&mut *conn).await?) == 0 {
            return Ok(false);
        }
        insert_event.execute(&mut *conn).await?;
        Ok(true)
    }

    /// Runs `query` and `audit` in one transaction if it changes a row.
    async fn endpoint_change<'q>(
        &self,
        what: &'static str,
        query: sqlx::query::Query<'q, DB, DB::Arguments<'q>>,
        before: Option<sqlx::query::Query<'q, DB, DB::Arguments<'q>>>,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        self.run(what, async {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            if let Some(before) = before {
                before.execute(&mut *tx).await?;
            }
            if DB::rows_affected(&query.execute(&mut *tx).await?) == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            Self::insert_audit(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }
}

#[async_trait]
impl<DB: Dialect> WebhookStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q, 'r> String: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q, 'r> i64: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB>,
    for<'q, 'r> bool: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
{
    async fn add_endpoint(&self, e: &NewEndpoint, audit: &AuditEvent) -> StoreResult<()> {
        self.run("add_webhook", async {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            sqlx::query::<DB>(INSERT_ENDPOINT)
                .bind(&e.id)
                .bind(&e.org_id)
                .bind(&e.url)
                .bind(e.events.join(" "))
                .bind(e.secret.expose())
                .bind(ms(e.created_at))
                .bind(&e.created_by)
                .execute(&mut *tx)
                .await?;
            Self::insert_audit(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn list_endpoints(&self, org_id: &str) -> StoreResult<Vec<Endpoint>> {
        let text = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 \
             ORDER BY created_at, id"
        );
        self.run("list_webhooks", async {
            sqlx::query_as::<DB, EndpointRow>(&text)
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(Endpoint::try_from)
                .collect()
        })
        .await
    }

    async fn endpoint(&self, org_id: &str, id: &str) -> StoreResult<Option<Endpoint>> {
        let text = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 AND id = $2"
        );
        self.run("get_webhook", async {
            sqlx::query_as::<DB, EndpointRow>(&text)
                .bind(org_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .map(Endpoint::try_from)
                .transpose()
        })
        .await
    }

    async fn remove_endpoint(
        &self,
        org_id: &str,
        id: &str,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let before = sqlx::query::<DB>(DELETE_ENDPOINT_DELIVERIES)
            .bind(org_id)
            .bind(id);
        let query = sqlx::query::<DB>(DELETE_ENDPOINT).bind(org_id).bind(id);
        self.endpoint_change("remove_webhook", query, Some(before), audit)
            .await
    }

    async fn rotate_endpoint_secret(
        &self,
        org_id: &str,
        id: &str,
        secret: &Secret,
        overlap_until: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let query = sqlx::query::<DB>(ROTATE_SECRET)
            .bind(secret.expose())
            .bind(ms(overlap_until))
            .bind(org_id)
            .bind(id);
        self.endpoint_change("rotate_webhook_secret", query, None, audit)
            .await
    }

    async fn enable_endpoint(
        &self,
        org_id: &str,
        id: &str,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let before = sqlx::query::<DB>(RESUME_DELIVERIES)
            .bind(ms(audit.at))
            .bind(org_id)
            .bind(id);
        let query = sqlx::query::<DB>(ENABLE_ENDPOINT).bind(org_id).bind(id);
        self.endpoint_change("enable_webhook", query, Some(before), audit)
            .await
    }

    async fn enqueue_event(&self, event: &NewEvent, only: Option<&str>) -> StoreResult<bool> {
        self.run("enqueue_webhook_event", async {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let added = Self::enqueue_on(&mut *tx, event, only).await?;
            tx.commit().await?;
            Ok(added)
        })
        .await
    }

    async fn list_deliveries(
        &self,
        endpoint_id: &str,
        page: DeliveryPage,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let (condition, from) = match page {
            DeliveryPage::Newest => ("d.id < $3 ORDER BY d.id DESC", i64::MAX),
            DeliveryPage::Older(id) => ("d.id < $3 ORDER BY d.id DESC", id),
            DeliveryPage::Newer(id) => ("d.id > $3 ORDER BY d.id", id),
            DeliveryPage::Oldest => ("d.id > $3 ORDER BY d.id", 0),
        };
        let text = LIST_DELIVERIES.replace("{page}", condition);
        self.run("list_webhook_deliveries", async {
            let mut rows = sqlx::query_as::<DB, DeliveryRow>(&text)
                .bind(endpoint_id)
                .bind(i64::from(limit))
                .bind(from)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(Delivery::try_from)
                .collect::<StoreResult<Vec<_>>>()?;
            // Read oldest first from their end; shown newest first.
            if matches!(page, DeliveryPage::Newer(_) | DeliveryPage::Oldest) {
                rows.reverse();
            }
            Ok(rows)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Claimed>> {
        // Not guarded: the worker's background poll never takes a request's
        // slot or deadline. A read first, so that a poll with nothing due
        // writes nothing (no SQLite data version moved, no PostgreSQL row locked).
        let due: Option<i64> = sqlx::query_scalar::<DB, i64>(ANY_DUE)
            .bind(ms(now))
            .fetch_optional(&self.pool)
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let text = CLAIM.replace("{lock}", DB::SKIP_LOCKED);
        let ids: Vec<i64> = sqlx::query_scalar::<DB, i64>(&text)
            .bind(ms(lease_until))
            .bind(ms(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query_as::<DB, ClaimedRow>(CLAIMED)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = row {
                claimed.push(row.into_claimed(now)?);
            }
        }
        Ok(claimed)
    }

    async fn finish_attempt(
        &self,
        d: &Claimed,
        at: DateTime<Utc>,
        attempt: &Attempt,
        disable_before: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.run("finish_webhook_attempt", async {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let (status, next, code, error) = match attempt {
                Attempt::Delivered { status } => ("delivered", None, Some(*status), None),
                Attempt::Failed {
                    status,
                    error,
                    retry_at,
                } => (
                    if retry_at.is_some() {
                        "pending"
                    } else {
                        "failed"
                    },
                    retry_at.map(ms),
                    *status,
                    Some(error.as_str()),
                ),
            };
            sqlx::query::<DB>(RECORD_ATTEMPT)
                .bind(status)
                .bind(next)
                .bind(ms(at))
                .bind(code.map(i64::from))
                .bind(error)
                .bind(d.id)
                .execute(&mut *tx)
                .await?;
            let mut disabled = false;
            if let Attempt::Delivered { .. } = attempt {
                sqlx::query::<DB>(ENDPOINT_SUCCEEDED)
                    .bind(&d.endpoint_id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query::<DB>(ENDPOINT_FAILED)
                    .bind(ms(at))
                    .bind(&d.endpoint_id)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query::<DB>(DISABLE_IF_FAILING)
                    .bind(ms(at))
                    .bind(ms(disable_before))
                    .bind(&d.endpoint_id)
                    .execute(&mut *tx)
                    .await?;
                if DB::rows_affected(&done) > 0 {
                    disabled = true;
                    let audit = AuditEvent {
                        org_id: d.org_id.clone(),
                        at,
                        actor_kind: "service".into(),
                        actor_id: "webhooks".into(),
                        actor_name: "keydeck".into(),
                        action: AuditAction::WebhookDisabled.to_string(),
                        api_key_id: String::new(),
                        remote_addr: None,
                        details: json!({
                            "webhook_id": d.endpoint_id, "url": crate::key::webhook::redacted_url(&d.url),
                            "reason": "every attempt failed for a day",
                        }),
                    };
                    Self::insert_audit(&mut *tx, &audit).await?;
                }
            }
            tx.commit().await?;
            Ok(disabled)
        })
        .await
    }

    async fn orgs_with_endpoints(&self) -> StoreResult<Vec<String>> {
        // Not guarded, as the claim: the worker's background poll.
        Ok(sqlx::query_scalar::<DB, String>(ORGS_WITH_ENDPOINTS)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn prune_events(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        self.run("prune_webhook_events", async {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let ids: Vec<String> = sqlx::query_scalar::<DB, String>(PRUNABLE)
                .bind(ms(before))
                .bind(ms(now))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
            if ids.is_empty() {
                tx.rollback().await?;
                return Ok(0);
            }
            // No delivery is ever added to an event already written, so the
            // ones read stay done until they go.
            let list = (1..=ids.len())
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut events = 0;
            for table in [
                "webhook_deliveries WHERE event_id",
                "webhook_events WHERE id",
            ] {
                let text = format!("DELETE FROM {table} IN ({list})");
                let mut query = sqlx::query::<DB>(&text);
                for id in &ids {
                    query = query.bind(id.as_str());
                }
                // The events' count is the last: another replica pruning
                // the same ones at once deletes none of them twice.
                events = DB::rows_affected(&query.execute(&mut *tx).await?);
            }
            tx.commit().await?;
            Ok(events)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN_URL: &str = "https://u:pw@hooks.example/x?token=SECRET#SECRET";

    #[test]
    fn debug_shows_no_token_of_the_url_nor_a_secret() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let endpoint = Endpoint {
            id: "wh_1".into(),
            org_id: "org_1".into(),
            url: TOKEN_URL.into(),
            events: vec!["api_key.revoked".into()],
            created_at: at,
            created_by: "admin@example.test".into(),
            consecutive_failures: 0,
            failing_since: None,
            disabled_at: None,
            previous_secret_until: None,
        };
        let new = NewEndpoint {
            id: "wh_1".into(),
            org_id: "org_1".into(),
            url: TOKEN_URL.into(),
            events: vec!["api_key.revoked".into()],
            secret: Secret::new("whsec_SECRET".into()),
            created_at: at,
            created_by: "admin@example.test".into(),
        };
        let claimed = Claimed {
            id: 1,
            event_id: "msg_1".into(),
            payload: "{}".into(),
            endpoint_id: "wh_1".into(),
            org_id: "org_1".into(),
            url: TOKEN_URL.into(),
            secrets: vec![
                Secret::new("whsec_SECRET".into()),
                Secret::new("whsec_OLD".into()),
            ],
            attempts: 0,
            created_at: at,
        };
        for shown in [
            format!("{endpoint:?}"),
            format!("{endpoint:#?}"),
            format!("{new:?}"),
            format!("{claimed:?}"),
            format!("{claimed:#?}"),
        ] {
            assert!(
                !shown.contains("SECRET") && !shown.contains("pw"),
                "{shown}"
            );
            assert!(!shown.contains("whsec_"), "{shown}");
            assert!(
                shown.contains("https://REDACTED@hooks.example/x?token=REDACTED#REDACTED"),
                "{shown}"
            );
        }
    }

    fn audit(action: AuditAction, key: &str, details: Value) -> AuditEvent {
        AuditEvent {
            org_id: "org_1".into(),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            actor_kind: "user".into(),
            actor_id: "usr_1".into(),
            actor_name: "admin@example.test".into(),
            action: action.to_string(),
            api_key_id: key.into(),
            remote_addr: None,
            details,
        }
    }

    fn key(id: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            org_id: "org_1".into(),
            name: format!("name of {id}"),
            description: String::new(),
            prefix: "eg_live_1a2B".into(),
            scopes: vec!["sessions:read".into()],
            created_at: DateTime::from_timestamp(1_600_000_000, 0).unwrap(),
            created_by: "admin@example.test".into(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            revoked_by: None,
            replaced_by: None,
            replaces: None,
            exposure: None,
            secret_pending: false,
            refusals: None,
        }
    }

    fn kinds(events: &[NewEvent]) -> Vec<&str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn a_leak_report_makes_exposed_then_revoked_with_reason_leak() {
        let find = |id: &str| Some(key(id));
        let details = json!({ "source": "gitlab", "location": "repo/a.rs:3", "on_leak": "revoke" });
        let exposed = events_of(&audit(AuditAction::ApiKeyExposed, "key_a", details), &find);
        assert_eq!(kinds(&exposed), ["api_key.exposed"]);
        let data = &exposed[0].payload["data"];
        assert_eq!(data["api_key"]["id"], "key_a");
        assert_eq!(data["exposure"]["source"], "gitlab");
        assert_eq!(data["exposure"]["location"], "repo/a.rs:3");
        assert_eq!(data["on_leak"], "revoke");
        let revoked = json!({ "reason": "leaked" });
        let revoked = events_of(&audit(AuditAction::ApiKeyRevoked, "key_a", revoked), &find);
        assert_eq!(revoked[0].payload["data"]["reason"], "leak");
    }

    #[test]
    fn changes_make_their_events_and_nothing_else_does() {
        let find = |id: &str| Some(key(id));
        let revoked = events_of(
            &audit(AuditAction::ApiKeyRevoked, "key_a", json!({})),
            &find,
        );
        assert_eq!(kinds(&revoked), ["api_key.revoked"]);
        assert_eq!(revoked[0].payload["data"]["reason"], "admin");
        assert_eq!(
            revoked[0].payload["data"]["api_key"]["name"],
            "name of key_a"
        );
        assert_eq!(revoked[0].payload["data"]["organisation_id"], "org_1");
        let leak = json!({ "reason": "leak" });
        let leaked = events_of(&audit(AuditAction::ApiKeyRevoked, "key_a", leak), &find);
        assert_eq!(leaked[0].payload["data"]["reason"], "leak");
        let odd = json!({ "reason": "whim" });
        let odd = events_of(&audit(AuditAction::ApiKeyRevoked, "key_a", odd), &find);
        assert_eq!(odd[0].payload["data"]["reason"], "admin");

        let now = json!({ "new_key_id": "key_b", "grace_seconds": 0 });
        let rotated = events_of(&audit(AuditAction::ApiKeyRotated, "key_a", now), &find);
        assert_eq!(kinds(&rotated), ["api_key.rotated", "api_key.revoked"]);
        assert_eq!(rotated[0].payload["data"]["new_api_key"]["id"], "key_b");
        assert_eq!(rotated[1].payload["data"]["reason"], "rotation");
        let later = json!({ "new_key_id": "key_b", "grace_seconds": 60 });
        let graced = events_of(&audit(AuditAction::ApiKeyRotated, "key_a", later), &find);
        assert_eq!(kinds(&graced), ["api_key.rotated"]);
        assert_ne!(rotated[0].id, graced[0].id, "each event its own webhook-id");
        let issued = audit(AuditAction::ApiKeySecretIssued, "key_a", json!({}));
        let issued = events_of(&issued, &find);
        assert_eq!(kinds(&issued), ["api_key.secret_issued"]);
        assert_eq!(issued[0].payload["data"]["api_key"]["id"], "key_a");
        assert!(
            !issued[0].payload.to_string().contains("eg_live_1a2B0"),
            "no secret"
        );

        for quiet in [
            AuditAction::SshLoggedIn,
            AuditAction::UserTokenReset,
            AuditAction::WebhookDisabled,
        ] {
            assert!(events_of(&audit(quiet, "", json!({})), &find).is_empty());
        }
        let gone = |_: &str| None;
        let created = audit(AuditAction::ApiKeyCreated, "key_x", json!({}));
        assert!(events_of(&created, &gone).is_empty(), "no key, no event");
    }
}
