//! `/v1/api-keys`: list, create, show, revoke and rotate an organisation's keys.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json as JsonBody;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::auth::Admin;
use super::error::{field_error, ApiError};
use super::extract::{bytes_rejection, parse_object, Json, Path};
use super::AppState;
use crate::api::{ApiKey, CreateKeyRequest, CreatedKey, ErrorBody, RotateKeyRequest, RotatedKey};
use crate::audit_action::AuditAction;
use crate::key::new_id;
use crate::key::validate;
use crate::store::{
    AuditEvent, CreateOutcome, Idempotency, IssueOutcome, IssueSecret, KeyRecord, NewKey,
    OldKeyEnd, RotateOutcome, Rotation,
};

pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 500;
pub const MAX_QUERY_LEN: usize = 100;
pub const MAX_GRACE_SECONDS: u32 = 86_400;
const IDEMPOTENCY_KEY_MAX: usize = 255;

/// A list's `limit`: [`DEFAULT_PAGE`] when left out, a 400 naming the field
/// outside 1–[`MAX_PAGE`] (never clamped).
pub(super) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(field_error(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

/// The longest row cursor (`next_cursor` of the audit log, of an endpoint's
/// deliveries): a positive `i64` has at most 19 digits.
pub const MAX_ROW_CURSOR_LEN: usize = 20;

/// A row cursor the service issued (a positive row id), or a 400 naming
/// `field`: of at most [`MAX_ROW_CURSOR_LEN`] characters, as the document says.
pub(super) fn row_cursor(field: &'static str, text: &str) -> Result<i64, ApiError> {
    (text.len() <= MAX_ROW_CURSOR_LEN)
        .then(|| text.parse::<i64>().ok())
        .flatten()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            field_error(
                field,
                format!("{field} is not one this service issued; start again without it"),
            )
        })
}

impl AppState {
    /// The API view of a stored key, with a last use not yet flushed folded in.
    pub(super) fn api_key(&self, k: KeyRecord, now: DateTime<Utc>) -> ApiKey {
        let last_used_at = match (k.last_used_at, self.last_used.pending(&k.id)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        ApiKey {
            status: k.status(now),
            id: k.id,
            name: k.name,
            description: k.description.into(),
            prefix: k.prefix,
            scopes: k.scopes.into(),
            created_at: k.created_at,
            created_by: k.created_by.into(),
            expires_at: k.expires_at,
            last_used_at,
            revoked_at: k.revoked_at,
            revoked_by: k.revoked_by.map(Into::into),
            replaced_by: k.replaced_by,
            replaces: k.replaces,
            exposure: k.exposure.map(Box::new),
            secret_pending: k.secret_pending,
            refusals: k.refusals.map(Box::new),
            health: None,
        }
    }

    fn audit(
        &self,
        admin: &Admin,
        action: AuditAction,
        key_id: &str,
        details: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent {
            org_id: admin.org.id.clone(),
            at: self.clock.now(),
            actor_kind: "user".into(),
            actor_id: admin.user.id.clone(),
            actor_name: admin.user.email.clone(),
            action: action.to_string(),
            api_key_id: key_id.into(),
            remote_addr: Some(admin.addr.to_string()),
            details: with_via(details, admin.via.as_deref()),
        }
    }

    fn new_key(
        &self,
        admin: &Admin,
        template: KeyTemplate,
        now: DateTime<Utc>,
    ) -> (NewKey, crate::key::Secret) {
        let secret = self.key_format.generate();
        let key = NewKey {
            id: new_id("key_"),
            org_id: admin.org.id.clone(),
            name: template.name,
            description: template.description,
            prefix: self.key_format.display_prefix(&secret),
            digest: secret.digest(),
            scopes: template.scopes,
            created_at: now,
            created_by: admin.user.email.clone(),
            expires_at: template.expires_at,
            secret_pending: false,
        };
        (key, secret)
    }
}

/// An audit entry's details, with how the admin came in (`"via": "ssh SHA256:…"`) if not by token.
fn with_via(mut details: serde_json::Value, via: Option<&str>) -> serde_json::Value {
    if let (Some(via), Some(map)) = (via, details.as_object_mut()) {
        map.insert("via".into(), via.into());
    }
    details
}

struct KeyTemplate {
    name: String,
    description: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
}

impl KeyTemplate {
    /// SHA-256 of the request in a canonical form (validated fields, sorted
    /// scopes, expiry in stored milliseconds): two bodies that differ only in
    /// whitespace, field order or scope order are the same request.
    fn request_digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        scopes.sort_unstable();
        scopes.dedup();
        let canonical = json!([
            "create-key/v1",
            self.name,
            self.description,
            self.expires_at.map(|t| t.timestamp_millis()),
            scopes,
        ]);
        Sha256::digest(canonical.to_string().as_bytes()).into()
    }
}

/// A key id as we issue them; anything else cannot exist, so it is a 404.
pub(super) fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = id.len() <= 64
        && id.starts_with("key_")
        && id[4..].bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// A `sync_cursor` as [`list`] writes it: `s` and the store's cursor (opaque
/// on PostgreSQL) as 16 hex digits.
pub(super) fn encode_sync_cursor(cursor: i64) -> String {
    format!("s{:016x}", cursor as u64)
}

/// The change cursor a `changed_since` gives: `None` if it is not a
/// `sync_cursor`; `Some(None)`, every key, for one of an older version (`c`
/// and a number: on PostgreSQL a transaction id, which is no longer accepted
/// as such), so that a client that held it across an upgrade loses nothing.
pub(super) fn decode_sync_cursor(text: &str) -> Option<Option<i64>> {
    if let Some(hex) = text.strip_prefix('s') {
        if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok().map(|c| Some(c as i64));
    }
    let digits = text.strip_prefix('c')?;
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok().map(|_| None)
}

/// Create a key. The secret is in this answer only.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateKeyRequest,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1-255 visible ASCII characters; a repeat answers 409 with the key it created, \
            the same key with a different request 422")),
    responses(
        (status = 201, body = CreatedKey),
        (status = 400, description = "`invalid_request` (per-field messages), or `policy_violation`: \
            the organisation's policy refuses the key (its rule in `message`, the field in `fields`)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "Idempotency-Key repeat: the existing key in `api_key`, no secret", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the Idempotency-Key came before with a different body", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Json(req): Json<CreateKeyRequest>,
) -> Result<(StatusCode, JsonBody<CreatedKey>), ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let now = state.clock.now();
    let description = req.description.unwrap_or_default();
    let scopes = validate::new_key(
        &req.name,
        &description,
        &req.scopes,
        req.expires_at,
        now,
        &state.scopes,
    )
    .map_err(ApiError::InvalidFields)?;
    super::leaks::check_reporter_scopes(&scopes)?;
    let policy = state.store.policy(&admin.org.id).await?;
    super::policy::check(&policy, now, req.expires_at, &description)?;
    let template = KeyTemplate {
        name: req.name,
        description,
        scopes,
        expires_at: req.expires_at,
    };
    let idempotency = idempotency_key.map(|key| Idempotency {
        key,
        request_digest: template.request_digest(),
    });
    let (key, secret) = state.new_key(&admin, template, now);
    let audit = state.audit(
        &admin,
        AuditAction::ApiKeyCreated,
        &key.id,
        json!({ "name": key.name, "scopes": key.scopes }),
    );
    match state
        .store
        .create_key(&key, idempotency.as_ref(), &audit)
        .await?
    {
        CreateOutcome::Created(record) => {
            tracing::info!(key_id = %record.id, org_id = %record.org_id, by = %admin.user.email, "api key created");
            Ok((
                StatusCode::CREATED,
                JsonBody(CreatedKey {
                    api_key: state.api_key(record, now),
                    secret,
                }),
            ))
        }
        CreateOutcome::Repeat(record) => Err(ApiError::IdempotentRepeat(Box::new(
            state.api_key(record, now),
        ))),
        CreateOutcome::Reused => Err(ApiError::IdempotencyKeyReused),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(v)
            if !v.is_empty()
                && v.len() <= IDEMPOTENCY_KEY_MAX
                && v.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(v))
        }
        _ => Err(field_error(
            "Idempotency-Key",
            format!("Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} visible ASCII characters"),
        )),
    }
}

/// One key.
#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = ApiKey),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<JsonBody<ApiKey>, ApiError> {
    check_id(&id)?;
    let key = state
        .store
        .get_key(&admin.org.id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(JsonBody(state.api_key(key, state.clock.now())))
}

/// Revoke a key, effective on every replica at once. Repeating it is harmless.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The key, now revoked", body = ApiKey),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<JsonBody<ApiKey>, ApiError> {
    check_id(&id)?;
    let now = state.clock.now();
    let audit = state.audit(&admin, AuditAction::ApiKeyRevoked, &id, json!({}));
    let key = state
        .store
        .revoke_key(&admin.org.id, &id, now, &admin.user.email, &audit)
        .await?
        .ok_or(ApiError::NotFound)?;
    tracing::info!(key_id = %id, org_id = %admin.org.id, by = %admin.user.email, "api key revoked");
    Ok(JsonBody(state.api_key(key, now)))
}

/// Replace a key by a new one with the same name, description, scopes and
/// expiry; the organisation's policy caps the new expiry (a key without one
/// gets the maximum lifetime).
#[utoipa::path(post, path = "/v1/api-keys/{id}/rotate", tag = "api-keys", security(("bearer" = [])),
    params(("id" = String, Path)), request_body(content = Option<RotateKeyRequest>),
    responses(
        (status = 201, body = RotatedKey),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`key_not_active`: the key is revoked or expired (re-issue it: create a key with its name, description and scopes); \
            `key_already_replaced`: the key was rotated before, perhaps still in its grace period (the message names its successor: rotate that one)", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn rotate(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, JsonBody<RotatedKey>), ApiError> {
    check_id(&id)?;
    let body = body.map_err(bytes_rejection)?;
    let req: RotateKeyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateKeyRequest::default()
    } else {
        parse_object(&body)?
    };
    if req.grace_seconds > MAX_GRACE_SECONDS {
        return Err(field_error(
            "grace_seconds",
            format!("grace_seconds must be between 0 and {MAX_GRACE_SECONDS}"),
        ));
    }
    let now = state.clock.now();
    let old = state
        .store
        .get_key(&admin.org.id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // The policy caps the new key's expiry; rotating is never refused for it.
    let policy = state.store.policy(&admin.org.id).await?;
    let template = KeyTemplate {
        name: old.name.clone(),
        description: old.description.clone(),
        scopes: old.scopes.clone(),
        expires_at: policy.rotated_expiry(now, old.expires_at),
    };
    let (new, secret) = state.new_key(&admin, template, now);
    let end = match req.grace_seconds {
        0 => OldKeyEnd::RevokeNow,
        secs => OldKeyEnd::ExpireAt(now + Duration::seconds(i64::from(secs))),
    };
    let audit = state.audit(
        &admin,
        AuditAction::ApiKeyRotated,
        &id,
        json!({ "new_key_id": new.id, "grace_seconds": req.grace_seconds }),
    );
    match state
        .store
        .rotate_key(&Rotation {
            org_id: &admin.org.id,
            old_id: &id,
            now,
            end,
            revoked_by: &admin.user.email,
            new: &new,
            audit: &audit,
        })
        .await?
    {
        RotateOutcome::Rotated { old, new } => {
            tracing::info!(key_id = %old.id, new_key_id = %new.id, by = %admin.user.email, "api key rotated");
            Ok((
                StatusCode::CREATED,
                JsonBody(RotatedKey {
                    api_key: state.api_key(*new, now),
                    secret,
                    previous: state.api_key(*old, now),
                }),
            ))
        }
        RotateOutcome::NotActive(k) => {
            Err(ApiError::KeyNotActive(Box::new(state.api_key(*k, now))))
        }
        RotateOutcome::AlreadyReplaced { old, successor } => Err(ApiError::AlreadyReplaced {
            old: Box::new(state.api_key(*old, now)),
            successor: successor.map(|k| Box::new(state.api_key(*k, now))),
        }),
        RotateOutcome::NotFound => Err(ApiError::NotFound),
    }
}

/// Issue the secret of a key made without one (the `rotate` leak policy's
/// successor, `secret_pending`): the secret is in this answer only, and
/// from now on the key authenticates. Once: a key that has its secret is a 409.
#[utoipa::path(post, path = "/v1/api-keys/{id}/secret", tag = "api-keys", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 201, description = "The key, now usable, and its secret (shown this once)", body = CreatedKey),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`secret_already_issued`: the key has its secret (issued before, or made with one); \
            `key_not_active`: the key is revoked or expired", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn issue_secret(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<(StatusCode, JsonBody<CreatedKey>), ApiError> {
    check_id(&id)?;
    let now = state.clock.now();
    let secret = state.key_format.generate();
    let prefix = state.key_format.display_prefix(&secret);
    let audit = state.audit(
        &admin,
        AuditAction::ApiKeySecretIssued,
        &id,
        json!({ "prefix": prefix }),
    );
    let outcome = state
        .store
        .issue_secret(&IssueSecret {
            org_id: &admin.org.id,
            id: &id,
            now,
            digest: secret.digest(),
            prefix: &prefix,
            audit: &audit,
        })
        .await?;
    match outcome {
        IssueOutcome::Issued(record) => {
            tracing::info!(key_id = %record.id, org_id = %record.org_id, by = %admin.user.email, "api key secret issued");
            Ok((
                StatusCode::CREATED,
                JsonBody(CreatedKey {
                    api_key: state.api_key(record, now),
                    secret,
                }),
            ))
        }
        IssueOutcome::NotPending(k) => {
            Err(ApiError::SecretNotPending(Box::new(state.api_key(k, now))))
        }
        IssueOutcome::NotFound => Err(ApiError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_cursors_round_trip_and_older_ones_list_everything() {
        for cursor in [0, 1, 812_345, i64::MAX, -1, i64::MIN] {
            let text = encode_sync_cursor(cursor);
            assert_eq!(text.len(), 17, "{text}");
            assert_eq!(decode_sync_cursor(&text), Some(Some(cursor)), "{text}");
        }
        assert_eq!(decode_sync_cursor("c812345"), Some(None));
        for bad in [
            "",
            "s",
            "s12",
            "S0000000000000001",
            "s000000000000000G",
            "s000000000000000A",
            "s00000000000000001",
            "+s0000000000000001",
            "c",
            "c-1",
            "cx",
            "c99999999999999999999",
        ] {
            assert_eq!(decode_sync_cursor(bad), None, "{bad:?}");
        }
    }
}
