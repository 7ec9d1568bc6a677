//! GitLab's Token Revocation API, as self-managed GitLab calls it for
//! automatic response to leaked secrets: `GET /v1/revocable_token_types`
//! and `POST /v1/revoke_tokens`, authenticated with the pre-shared token
//! configured on `keydeck serve` (only its digest is kept). Each token is
//! made a digest at once and answered as any leak report (`leaks.rs`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json as JsonBody;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::auth::{bearer, ClientAddr};
use super::error::{field_error, ApiError};
use super::extract::bytes_rejection;
use super::leaks::{token_digest, LeakActor, Report};
use super::AppState;
use crate::api::ErrorBody;
use crate::key::leak::{check_text, MAX_LOCATION, MAX_REPORTS};

/// The one token type keydeck revokes: the gitleaks rule id shipped in
/// `assets/gitleaks/keydeck.toml`, as GitLab's secret detection names it.
pub const GITLAB_TOKEN_TYPE: &str = "gitleaks_rule_id_keydeck_api_key";

/// `GET /v1/revocable_token_types`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevocableTokenTypes {
    pub types: Vec<String>,
}

/// One token GitLab found.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeToken {
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = String)]
    pub token: Zeroizing<String>,
    /// Where GitLab found it (a URL).
    #[serde(default)]
    pub location: String,
}

/// 401 unless the request carries the configured token (`Authorization:
/// TOKEN` or `Bearer TOKEN`); 404 when none is configured.
fn check_gitlab(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(want) = state.leaks.config.gitlab_token_digest else {
        return Err(ApiError::NotFound);
    };
    let sent = bearer(headers).or_else(|| {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    });
    match sent {
        Some(token) if crate::key::digest(token) == want => Ok(()),
        Some(_) => Err(ApiError::InvalidCredentials),
        None => Err(ApiError::MissingCredentials),
    }
}

/// The token types this service revokes (GitLab's Token Revocation API).
#[utoipa::path(get, path = "/v1/revocable_token_types", tag = "leaks",
    security(("gitlab" = [])),
    responses(
        (status = 200, body = RevocableTokenTypes),
        (status = 401, body = ErrorBody),
        (status = 429, description = "`rate_limited`: GitLab's requests this minute, this one included; Retry-After", body = ErrorBody),
        (status = 404, description = "No GitLab token is configured (`serve --gitlab-token-file`)", body = ErrorBody),
    ))]
pub async fn types(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<JsonBody<RevocableTokenTypes>, ApiError> {
    check_gitlab(&state, &headers)?;
    state.leaks.admit("gitlab", state.clock.now())?;
    Ok(JsonBody(RevocableTokenTypes {
        types: vec![GITLAB_TOKEN_TYPE.to_owned()],
    }))
}

/// Tokens GitLab found leaked: each that is a key of this service is
/// answered as any leak report (marked exposed, then the policy of its
/// organisation). Repeating a token changes nothing more.
#[utoipa::path(post, path = "/v1/revoke_tokens", tag = "leaks",
    security(("gitlab" = [])),
    request_body(content = Vec<RevokeToken>, description = "1-100 of `{type, token, location}`"),
    responses(
        (status = 204, description = "Accepted"),
        (status = 400, description = "Malformed, or a type other than gitleaks_rule_id_keydeck_api_key", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No GitLab token is configured", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 429, description = "`rate_limited`: retry later (Retry-After)", body = ErrorBody),
        (status = 503, description = "`database_unavailable`; Retry-After", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, ApiError> {
    check_gitlab(&state, &headers)?;
    state.leaks.admit("gitlab", state.clock.now())?;
    let body = body.map_err(bytes_rejection)?;
    let tokens: Vec<RevokeToken> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "The body must be a JSON array of {{type, token, location}} (line {}, column {}).",
            e.line(),
            e.column()
        ))
    })?;
    if tokens.is_empty() || tokens.len() > MAX_REPORTS {
        return Err(ApiError::BadRequest(format!(
            "Send 1 to {MAX_REPORTS} tokens."
        )));
    }
    let mut reports = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if t.kind != GITLAB_TOKEN_TYPE {
            return Err(field_error(
                &format!("[{i}].type"),
                format!("unsupported token type: only {GITLAB_TOKEN_TYPE}"),
            ));
        }
        check_text(&format!("[{i}].location"), &t.location, MAX_LOCATION)
            .map_err(|m| field_error(&format!("[{i}].location"), m))?;
        reports.push(Report {
            digest: token_digest(&state, &t.token, &format!("[{i}].token"))?,
            location: t.location.clone(),
            source: "gitlab".to_owned(),
        });
    }
    drop(tokens);
    let actor = LeakActor {
        kind: "code_host",
        id: "gitlab".into(),
        name: "GitLab".into(),
        addr: Some(addr.to_string()),
    };
    state.respond_all(reports, None, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
