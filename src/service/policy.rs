//! `/v1/policy`: the organisation's key policy, read by its users and set by
//! its admins (audited); and its check on every path that creates a key.

use axum::extract::State;
use axum::Json as JsonBody;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::auth::{Admin, OrgUser};
use super::error::{field_error, ApiError};
use super::extract::Json;
use super::AppState;
use crate::api::ErrorBody;
use crate::audit_action::AuditAction;
use crate::key::policy::Policy;
use crate::store::AuditEvent;

/// The organisation's key policy: the rules new keys follow and the health
/// badge thresholds. Any user of the organisation may read it.
#[utoipa::path(get, path = "/v1/policy", tag = "policy", security(("bearer" = [])),
    responses(
        (status = 200, body = Policy),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    user: OrgUser,
) -> Result<JsonBody<Policy>, ApiError> {
    Ok(JsonBody(state.store.policy(&user.org.id).await?))
}

/// Replace the organisation's key policy (fields left out take their
/// defaults). Admins only; audited as `policy.updated` with the old and new
/// policy. Existing keys are never changed: only new keys and rotations follow it.
#[utoipa::path(put, path = "/v1/policy", tag = "policy", security(("bearer" = [])),
    request_body = Policy,
    responses(
        (status = 200, description = "The policy now in force", body = Policy),
        (status = 400, description = "`invalid_request`: an unknown field, a wrong type, or a number of days out of 1-3650 (named in `fields`)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, description = "`admin_required`: only admins set the policy", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn put(
    State(state): State<AppState>,
    admin: Admin,
    Json(policy): Json<Policy>,
) -> Result<JsonBody<Policy>, ApiError> {
    if let Some((field, message)) = policy.invalid_field() {
        return Err(field_error(field, message));
    }
    let old = state.store.policy(&admin.org.id).await?;
    let audit = AuditEvent {
        org_id: admin.org.id.clone(),
        at: state.clock.now(),
        actor_kind: "user".into(),
        actor_id: admin.user.id.clone(),
        actor_name: admin.user.email.clone(),
        action: AuditAction::PolicyUpdated.to_string(),
        api_key_id: String::new(),
        remote_addr: Some(admin.addr.to_string()),
        details: match &admin.via {
            // Over SSH: which key, as for changes to keys.
            Some(via) => json!({ "old": old, "new": policy, "via": via }),
            None => json!({ "old": old, "new": policy }),
        },
    };
    state
        .store
        .set_policy(&admin.org.id, &policy, &audit)
        .await?;
    tracing::info!(org_id = %admin.org.id, by = %admin.user.email, "policy updated");
    Ok(JsonBody(policy))
}

/// 400 `policy_violation` unless a key created at `now` with this expiry and
/// description follows the policy.
pub(super) fn check(
    policy: &Policy,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    description: &str,
) -> Result<(), ApiError> {
    let violations = policy.violations(now, expires_at, description);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::PolicyViolation(violations))
    }
}
