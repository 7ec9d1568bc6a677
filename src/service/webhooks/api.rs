//! `/v1/webhooks`: an organisation's webhook endpoints, for admins; every
//! change audited.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as JsonBody;
use chrono::Duration;
use serde_json::json;

use super::target;
use crate::api::webhooks::{
    CreateWebhookRequest, CreatedWebhook, DeliveryListQuery, RotateWebhookSecretRequest, Webhook,
    WebhookDelivery, WebhookDeliveryList, WebhookList, WebhookTestQueued,
};
use crate::api::ErrorBody;
use crate::audit_action::AuditAction;
use crate::key::webhook::{self as event, new_signing_secret, redacted_url, EVENT_TYPES};
use crate::key::{new_id, Secret};
use crate::service::auth::Admin;
use crate::service::error::{field_error, ApiError};
use crate::service::extract::{bytes_rejection, parse_object, Json, Path, Query};
use crate::service::keys::{page_limit, row_cursor};
use crate::service::AppState;
use crate::store::{new_event, AuditEvent, DeliveryPage, Endpoint, NewEndpoint};

/// Endpoints an organisation may have.
pub const MAX_ENDPOINTS: usize = 20;
/// Event types one endpoint may list.
pub const MAX_EVENTS: usize = EVENT_TYPES.len();
/// Failed attempts in a row from which an endpoint shows as failing.
pub const FAILING_AFTER: i64 = 3;
/// The previous secret signs this long after a rotation by default, at most [`MAX_OVERLAP`].
const DEFAULT_OVERLAP: u32 = 86_400;
const MAX_OVERLAP: u32 = 7 * 86_400;

fn webhook(e: Endpoint) -> Webhook {
    let health = if e.disabled_at.is_some() {
        "disabled"
    } else if e.consecutive_failures >= FAILING_AFTER {
        "failing"
    } else {
        "healthy"
    };
    Webhook {
        health: health.into(),
        id: e.id,
        url: e.url,
        events: e.events,
        created_at: e.created_at,
        created_by: e.created_by,
        consecutive_failures: e.consecutive_failures,
        failing_since: e.failing_since,
        disabled_at: e.disabled_at,
        previous_secret_until: e.previous_secret_until,
    }
}

fn audit(
    state: &AppState,
    admin: &Admin,
    action: AuditAction,
    details: serde_json::Value,
) -> AuditEvent {
    let mut details = details;
    if let (Some(via), Some(map)) = (&admin.via, details.as_object_mut()) {
        map.insert("via".into(), via.clone().into());
    }
    AuditEvent {
        org_id: admin.org.id.clone(),
        at: state.clock.now(),
        actor_kind: "user".into(),
        actor_id: admin.user.id.clone(),
        actor_name: admin.user.email.clone(),
        action: action.to_string(),
        api_key_id: String::new(),
        remote_addr: Some(admin.addr.to_string()),
        details,
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = id.len() <= 64
        && id.starts_with("whk_")
        && id[4..].bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some(()).ok_or(ApiError::NotFound)
}

/// The admin's organisation's endpoint `id`, or 404 (a malformed id and
/// another organisation's alike).
async fn endpoint_of(state: &AppState, admin: &Admin, id: &str) -> Result<Endpoint, ApiError> {
    check_id(id)?;
    state
        .store
        .webhooks()
        .endpoint(&admin.org.id, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// A change [`change_endpoint`] makes.
enum Change<'a> {
    Remove,
    RotateSecret {
        secret: &'a Secret,
        until: chrono::DateTime<chrono::Utc>,
    },
    Enable,
}

/// The one shape of a change to an endpoint: the endpoint or 404; the
/// change, in one transaction with its audit entry (`action`, `details` of
/// the endpoint); 404 if the endpoint went meanwhile. An endpoint already
/// enabled is no 404: nothing changes and nothing is audited. The endpoint
/// as it was before the change.
async fn change_endpoint(
    state: &AppState,
    admin: &Admin,
    id: &str,
    change: Change<'_>,
    action: AuditAction,
    details: impl FnOnce(&Endpoint) -> serde_json::Value,
) -> Result<Endpoint, ApiError> {
    let before = endpoint_of(state, admin, id).await?;
    let a = audit(state, admin, action, details(&before));
    let hooks = state.store.webhooks();
    let org = &admin.org.id;
    let changed = match change {
        Change::Remove => hooks.remove_endpoint(org, id, &a).await?,
        Change::RotateSecret { secret, until } => {
            hooks
                .rotate_endpoint_secret(org, id, secret, until, &a)
                .await?
        }
        Change::Enable => {
            hooks.enable_endpoint(org, id, &a).await?;
            true
        }
    };
    if !changed {
        return Err(ApiError::NotFound);
    }
    Ok(before)
}

/// The organisation's webhook endpoints, oldest first, with their health.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses(
        (status = 200, body = WebhookList),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
) -> Result<JsonBody<WebhookList>, ApiError> {
    let data = state.store.webhooks().list_endpoints(&admin.org.id).await?;
    Ok(JsonBody(WebhookList {
        data: data.into_iter().map(webhook).collect(),
    }))
}

/// Add an endpoint; its signing secret (`whsec_…`) is in this answer only.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, body = CreatedWebhook),
        (status = 400, description = "`invalid_request`: the url (not https off loopback, a private, loopback or link-local address without `serve --webhooks-allow-private`, too long) or the events (none, unknown, too many), named in `fields`; or the organisation has 20 endpoints already", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    Json(req): Json<CreateWebhookRequest>,
) -> Result<(StatusCode, JsonBody<CreatedWebhook>), ApiError> {
    let allow = state.webhooks.allow_private;
    let url = target::check_url(req.url.trim(), allow).map_err(|m| field_error("url", m))?;
    let mut events: Vec<String> = Vec::new();
    if req.events.is_empty() || req.events.len() > MAX_EVENTS {
        return Err(field_error(
            "events",
            format!("events must list 1-{MAX_EVENTS} event types, e.g. [\"api_key.revoked\"]"),
        ));
    }
    for e in &req.events {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(field_error(
                "events",
                format!(
                    "{:?} is not an event type; one of: {}",
                    e.chars().take(64).collect::<String>(),
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !events.contains(e) {
            events.push(e.clone());
        }
    }
    let existing = state.store.webhooks().list_endpoints(&admin.org.id).await?;
    if existing.len() >= MAX_ENDPOINTS {
        return Err(field_error(
            "url",
            format!(
                "an organisation has at most {MAX_ENDPOINTS} webhook endpoints: remove one first"
            ),
        ));
    }
    target::check_resolves(&url, allow)
        .await
        .map_err(|m| field_error("url", m))?;
    let secret = new_signing_secret();
    let new = NewEndpoint {
        id: new_id("whk_"),
        org_id: admin.org.id.clone(),
        url: url.to_string(),
        events,
        secret,
        created_at: state.clock.now(),
        created_by: admin.user.email.clone(),
    };
    let a = audit(
        &state,
        &admin,
        AuditAction::WebhookCreated,
        json!({ "webhook_id": new.id, "url": redacted_url(&new.url), "events": new.events }),
    );
    state.store.webhooks().add_endpoint(&new, &a).await?;
    tracing::info!(webhook = %new.id, org_id = %admin.org.id, by = %admin.user.email, "webhook endpoint added");
    let created = endpoint_of(&state, &admin, &new.id).await?;
    Ok((
        StatusCode::CREATED,
        JsonBody(CreatedWebhook {
            webhook: webhook(created),
            secret: new.secret,
        }),
    ))
}

/// Remove an endpoint and its deliveries.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The endpoint removed", body = Webhook),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<JsonBody<Webhook>, ApiError> {
    let e = change_endpoint(
        &state,
        &admin,
        &id,
        Change::Remove,
        AuditAction::WebhookRemoved,
        |e| json!({ "webhook_id": id, "url": redacted_url(&e.url) }),
    )
    .await?;
    tracing::info!(webhook = %id, org_id = %admin.org.id, by = %admin.user.email, "webhook endpoint removed");
    Ok(JsonBody(webhook(e)))
}

/// Send a `webhook.test` event to this endpoint (queued: see its deliveries).
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 202, body = WebhookTestQueued),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
    ))]
pub async fn test(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<(StatusCode, JsonBody<WebhookTestQueued>), ApiError> {
    endpoint_of(&state, &admin, &id).await?;
    let now = state.clock.now();
    let e = new_event(
        &admin.org.id,
        event::WEBHOOK_TEST,
        now,
        json!({ "webhook_id": id, "sent_by": admin.user.email }),
        None,
    );
    state.store.webhooks().enqueue_event(&e, Some(&id)).await?;
    let a = audit(
        &state,
        &admin,
        AuditAction::WebhookTested,
        json!({ "webhook_id": id, "event_id": e.id }),
    );
    state.store.record_audit(&a).await?;
    Ok((
        StatusCode::ACCEPTED,
        JsonBody(WebhookTestQueued { event_id: e.id }),
    ))
}

/// The endpoint's deliveries, newest first, a page at a time: status,
/// attempts, next try, last answer.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path), DeliveryListQuery),
    responses(
        (status = 200, body = WebhookDeliveryList),
        (status = 400, description = "`invalid_request`: limit out of 1-500, a cursor or before this service did not issue, from other than end, or more than one of cursor, before and from", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(query): Query<DeliveryListQuery>,
) -> Result<JsonBody<WebhookDeliveryList>, ApiError> {
    let limit = page_limit(query.limit)?;
    let page = delivery_page(&query)?;
    endpoint_of(&state, &admin, &id).await?;
    let mut rows = state
        .store
        .webhooks()
        .list_deliveries(&id, page, limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    // The row past the page is at the end the page was read from.
    let from_oldest = matches!(page, DeliveryPage::Newer(_) | DeliveryPage::Oldest);
    if more && from_oldest {
        rows.remove(0);
    } else if more {
        rows.truncate(limit as usize);
    }
    let first = rows.first().map(|d| d.id);
    let last = rows.last().map(|d| d.id);
    let (next, prev) = match page {
        DeliveryPage::Newest => (last.filter(|_| more), None),
        DeliveryPage::Older(after) => (last.filter(|_| more), first.or(Some(after))),
        DeliveryPage::Newer(before) => (last.or(Some(before)), first.filter(|_| more)),
        DeliveryPage::Oldest => (None, first.filter(|_| more)),
    };
    Ok(JsonBody(WebhookDeliveryList {
        data: rows
            .into_iter()
            .map(|d| WebhookDelivery {
                id: d.id,
                event_id: d.event_id,
                event_type: d.event_type,
                status: d.status,
                attempts: d.attempts,
                next_attempt_at: d.next_attempt_at,
                last_attempt_at: d.last_attempt_at,
                last_response_code: d.last_status,
                last_error: d.last_error,
                created_at: d.created_at,
            })
            .collect(),
        next_cursor: next.map(|id| id.to_string()),
        prev_cursor: prev.map(|id| id.to_string()),
    }))
}

/// Which page `cursor`, `before` or `from=end` ask for (at most one of them).
fn delivery_page(query: &DeliveryListQuery) -> Result<DeliveryPage, ApiError> {
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().filter(|v| !v.is_empty())
    }
    match (
        given(&query.cursor),
        given(&query.before),
        given(&query.from),
    ) {
        (None, None, None) => Ok(DeliveryPage::Newest),
        (Some(c), None, None) => Ok(DeliveryPage::Older(row_cursor("cursor", c)?)),
        (None, Some(b), None) => Ok(DeliveryPage::Newer(row_cursor("before", b)?)),
        (None, None, Some("end")) => Ok(DeliveryPage::Oldest),
        (None, None, Some(_)) => Err(field_error(
            "from",
            "from takes one value: end (the oldest deliveries)",
        )),
        _ => Err(field_error(
            "cursor",
            "give at most one of cursor, before and from",
        )),
    }
}

/// A new signing secret, in this answer only; the previous one keeps signing
/// (a second `v1,` signature) for `overlap_seconds`.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)), request_body(content = Option<RotateWebhookSecretRequest>),
    responses(
        (status = 200, body = CreatedWebhook),
        (status = 400, description = "`invalid_request`: overlap_seconds out of 0-604800", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
    ))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<JsonBody<CreatedWebhook>, ApiError> {
    let body = body.map_err(bytes_rejection)?;
    let req: RotateWebhookSecretRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateWebhookSecretRequest::default()
    } else {
        parse_object(&body)?
    };
    let overlap = req.overlap_seconds.unwrap_or(DEFAULT_OVERLAP);
    if overlap > MAX_OVERLAP {
        return Err(field_error(
            "overlap_seconds",
            format!("overlap_seconds must be between 0 and {MAX_OVERLAP}"),
        ));
    }
    let secret = new_signing_secret();
    let change = Change::RotateSecret {
        secret: &secret,
        until: state.clock.now() + Duration::seconds(i64::from(overlap)),
    };
    change_endpoint(
        &state,
        &admin,
        &id,
        change,
        AuditAction::WebhookSecretRotated,
        |_| json!({ "webhook_id": id, "overlap_seconds": overlap }),
    )
    .await?;
    let e = endpoint_of(&state, &admin, &id).await?;
    Ok(JsonBody(CreatedWebhook {
        webhook: webhook(e),
        secret,
    }))
}

/// Enable a disabled endpoint: its failures are forgotten and what it was
/// not sent while disabled (and not given up) is sent.
#[utoipa::path(post, path = "/v1/webhooks/{id}/enable", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = Webhook),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
    ))]
pub async fn enable(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<JsonBody<Webhook>, ApiError> {
    // Already enabled: nothing to change, nothing audited.
    change_endpoint(
        &state,
        &admin,
        &id,
        Change::Enable,
        AuditAction::WebhookEnabled,
        |_| json!({ "webhook_id": id }),
    )
    .await?;
    Ok(JsonBody(webhook(endpoint_of(&state, &admin, &id).await?)))
}
