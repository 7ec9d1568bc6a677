//! `GET /v1/auth`: forward-auth for gateways (nginx `auth_request`, Traefik
//! ForwardAuth, Envoy). The hot path: checksum, one indexed lookup, no write.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{bearer, ClientAddr};
use super::error::{field_error, ApiError};
use super::extract::Query;
use super::AppState;
use crate::api::{AuthOk, ErrorBody};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuthQuery {
    /// The scope the request needs (or the `X-Required-Scope` header); omit to accept any good key.
    pub scope: Option<String>,
}

/// Check an API key, and optionally that it has a scope.
#[utoipa::path(get, path = "/v1/auth", tag = "auth", params(AuthQuery,
        ("X-API-Key" = Option<String>, Header, description = "The API key, if not in Authorization: Bearer"),
        ("X-Required-Scope" = Option<String>, Header, description = "The scope required, if not in ?scope=")),
    responses(
        (status = 200, description = "Good key; also in headers X-Key-Id, X-Key-Scopes (space-separated), X-Org-Id", body = AuthOk),
        (status = 400, description = "Unknown scope asked for", body = ErrorBody),
        (status = 401, description = "No key, or an unknown, malformed, expired or revoked one; WWW-Authenticate: Bearer error=\"invalid_token\"", body = ErrorBody),
        (status = 403, description = "The key lacks the scope; WWW-Authenticate: Bearer error=\"insufficient_scope\"", body = ErrorBody),
        (status = 429, description = "Too many failed checks from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn check(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Query(query): Query<AuthQuery>,
) -> Result<Response, ApiError> {
    let required = query.scope.as_deref().or_else(|| {
        headers
            .get("x-required-scope")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    });
    if let Some(required) = required {
        if state.scopes.find(required).is_none() {
            return Err(field_error("scope", format!("unknown scope {required:?}")));
        }
    }
    let raw = bearer(&headers)
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::MissingCredentials)?;
    let key = state.check_key(raw, addr, required).await?;
    let scopes = key.scopes.join(" ");
    let mut response = JsonBody(AuthOk {
        key_id: key.id.clone(),
        org_id: key.org_id.clone(),
        scopes: key.scopes,
    })
    .into_response();
    let h = response.headers_mut();
    for (name, value) in [
        ("x-key-id", &key.id),
        ("x-key-scopes", &scopes),
        ("x-org-id", &key.org_id),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    Ok(response)
}
