//! `GET /v1/audit-logs`: who created, revoked and rotated which key, when, from where.
//! Entries written under an older spelling of their action read as today's.

use axum::extract::State;
use axum::Json as JsonBody;

use super::auth::AuditReader;
use super::error::{field_error, ApiError};
use super::extract::Query;
use super::keys::{page_limit, row_cursor};
use super::AppState;
use crate::api::{Actor, AuditEntry, AuditList, AuditListQuery, ErrorBody};
use crate::audit_action;

/// The longest `api_key_id` taken.
const MAX_KEY_ID: usize = 64;

/// The organisation's audit log, newest first: for admins, and for API keys with `audit_logs:read`.
#[utoipa::path(get, path = "/v1/audit-logs", tag = "audit", params(AuditListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AuditList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    reader: AuditReader,
    Query(query): Query<AuditListQuery>,
) -> Result<JsonBody<AuditList>, ApiError> {
    let limit = page_limit(query.limit)?;
    let before = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(row_cursor("cursor", c)?),
    };
    let mut rows = match query.api_key_id.as_deref() {
        None | Some("") => {
            state
                .store
                .list_audit(reader.org_id(), limit + 1, before)
                .await?
        }
        Some(id) => {
            if id.len() > MAX_KEY_ID || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(field_error(
                    "api_key_id",
                    format!("api_key_id is a key's id (key_…): letters, digits and _, at most {MAX_KEY_ID} characters"),
                ));
            }
            state
                .store
                .list_audit_of_key(reader.org_id(), id, limit + 1, before)
                .await?
        }
    };
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let data = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: r.event.at,
            action: audit_action::current(r.event.action),
            actor: Actor {
                kind: r.event.actor_kind,
                id: r.event.actor_id,
                name: r.event.actor_name,
            },
            api_key_id: r.event.api_key_id,
            remote_addr: r.event.remote_addr,
            details: r.event.details,
        })
        .collect();
    Ok(JsonBody(AuditList { data, next_cursor }))
}
