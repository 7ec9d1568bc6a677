//! `GET /v1/auth`: forward-auth for gateways (nginx `auth_request`, Traefik
//! ForwardAuth, Caddy `forward_auth`, Envoy). The hot path: checksum, one
//! indexed lookup, no write.
//!
//! A good key is answered 200 with an **empty body** (`Content-Length: 0`):
//! the answer is all in its headers (`X-Key-Id`, `X-Key-Scopes`,
//! `X-Org-Id`). nginx's `auth_request` never reads a subrequest's body
//! (`header_only`), and its proxy module keeps an upstream connection alive
//! only when the answer has no body to read: with a body, every check would
//! open a new TCP connection to keydeck (tests/it/gateway.rs counts them).
//! Callers that want the JSON ([`AuthOk`]) ask with `Accept: application/json`.
//!
//! Refusals (400, 401, 403, 429, 503) keep their JSON error body: Traefik's
//! ForwardAuth and Caddy's `forward_auth` hand keydeck's refusal to the client
//! as it is (status, headers and body), and every error of the API has that
//! shape. Both read the body to its end (Go's HTTP client), so they keep the
//! connection either way. Through nginx a refusal's body is discarded (the
//! shipped example rebuilds the answer in `@keydeck_denied`) and that
//! connection is closed: one new connection per *refused* check, never per
//! good one.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{bearer, ClientAddr};
use super::error::{field_error, ApiError};
use super::extract::Query;
use super::AppState;
use crate::api::{AuthOk, ErrorBody};

/// Longest scope id looked up (longer ones are refused without echoing them).
const MAX_SCOPE_LEN: usize = 100;

// The names the check reads, made once (a custom name given as `&str` is
// parsed at every use).
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const X_REQUIRED_SCOPE: HeaderName = HeaderName::from_static("x-required-scope");

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuthQuery {
    /// The scope the request needs. May be given here or in `X-Required-Scope`;
    /// if both, they must name the same scope. Empty is refused (400); omit to
    /// accept any good key.
    pub scope: Option<String>,
}

/// Check an API key, and optionally that it has a scope.
///
/// Fails closed: the required scope comes from exactly one unambiguous place.
/// Several `X-Required-Scope` headers naming different scopes, an empty or
/// unreadable (non-ASCII) one, an empty `?scope=`, or a `?scope=` that
/// differs from the header are refused with 400 `invalid_request`, never
/// answered 200. Repeating the same scope is fine.
#[utoipa::path(get, path = "/v1/auth", tag = "auth", params(AuthQuery,
        ("X-API-Key" = Option<String>, Header, description = "The API key, if not in Authorization: Bearer"),
        ("X-Required-Scope" = Option<String>, Header, description = "The scope required. May be repeated only with the same value; if `?scope=` is also given it must be the same scope; empty or non-ASCII values are refused (400)")),
    responses(
        (status = 200, description = "Good key: headers X-Key-Id, X-Key-Scopes (space-separated), X-Org-Id, and an empty body (Content-Length: 0) so that gateways keep the connection; the JSON body only for `Accept: application/json`", body = AuthOk),
        (status = 400, description = "invalid_request: unknown scope, or an ambiguous one (different X-Required-Scope headers, an empty or unreadable one, an empty ?scope=, or ?scope= differing from X-Required-Scope); the reason is in error.fields.scope", body = ErrorBody),
        (status = 401, description = "No key, or an unknown, malformed, expired or revoked one; WWW-Authenticate: Bearer error=\"invalid_token\"", body = ErrorBody),
        (status = 403, description = "The key lacks the scope; WWW-Authenticate: Bearer error=\"insufficient_scope\"", body = ErrorBody),
        (status = 429, description = "Too many failed checks from this client; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn check(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Query(query): Query<AuthQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    // Read in place: the check needs a few headers, not a copy of them all.
    let headers = request.headers();
    let required = required_scope(query.scope.as_deref(), headers)?;
    if let Some(required) = required {
        if required.len() > MAX_SCOPE_LEN {
            return Err(field_error(
                "scope",
                format!("the scope is longer than {MAX_SCOPE_LEN} characters"),
            ));
        }
        if state.scopes.find(required).is_none() {
            return Err(field_error("scope", format!("unknown scope {required:?}")));
        }
    }
    let raw = bearer(headers)
        .or_else(|| {
            headers
                .get(X_API_KEY)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::MissingCredentials)?;
    let key = state.check_key(raw, addr, required).await?;
    let mut response = if wants_json(headers) {
        JsonBody(AuthOk {
            key_id: key.id.clone(),
            org_id: key.org_id.clone(),
            scopes: key.scopes.clone(),
        })
        .into_response()
    } else {
        // An empty body: axum sends `Content-Length: 0`.
        ().into_response()
    };
    key.answer.set(response.headers_mut());
    Ok(response)
}

/// Whether `Accept` names `application/json` (or `application/*`) with a
/// non-zero quality. `*/*`, which most HTTP clients send by default, does not
/// count: a gateway forwarding its client's `Accept` must not get a body.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let json = media.eq_ignore_ascii_case("application/json")
                || media.eq_ignore_ascii_case("application/*");
            let refused = parts.any(|p| {
                p.split_once('=').is_some_and(|(k, q)| {
                    k.trim().eq_ignore_ascii_case("q") && q.trim().parse::<f32>() == Ok(0.0)
                })
            });
            json && !refused
        })
}

/// The one scope a check requires, if any: from `?scope=` or `X-Required-Scope`,
/// refusing every ambiguous form.
fn required_scope<'a>(
    query: Option<&'a str>,
    headers: &'a HeaderMap,
) -> Result<Option<&'a str>, ApiError> {
    let mut from_header: Option<&str> = None;
    for value in headers.get_all(X_REQUIRED_SCOPE) {
        let value = value
            .to_str()
            .map_err(|_| {
                field_error(
                    "scope",
                    "the X-Required-Scope header is not readable: send a scope id in plain ASCII",
                )
            })?
            .trim();
        if value.is_empty() {
            return Err(field_error(
                "scope",
                "the X-Required-Scope header is empty: name a scope, or leave the header out",
            ));
        }
        match from_header {
            Some(earlier) if earlier != value => {
                return Err(field_error(
                    "scope",
                    "several X-Required-Scope headers name different scopes: send one",
                ))
            }
            _ => from_header = Some(value),
        }
    }
    match (query, from_header) {
        (Some(q), _) if q.trim().is_empty() => Err(field_error(
            "scope",
            "?scope= is empty: name a scope, or leave the parameter out",
        )),
        (Some(q), Some(h)) if q != h => Err(field_error(
            "scope",
            "?scope= and the X-Required-Scope header name different scopes: send the scope in one place",
        )),
        (q, h) => Ok(q.or(h)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn json_only_when_asked_for() {
        for asked in [
            &["application/json"][..],
            &["Application/JSON; charset=utf-8"],
            &["text/html, application/json;q=0.5"],
            &["text/plain", "application/*"],
        ] {
            assert!(wants_json(&accept(asked)), "{asked:?}");
        }
        for not_asked in [
            &[][..],
            &["*/*"],
            &["text/html,application/xhtml+xml,*/*;q=0.8"],
            &["application/json;q=0"],
            &["application/json; q=0.0, */*"],
            &["application/jsonx"],
        ] {
            assert!(!wants_json(&accept(not_asked)), "{not_asked:?}");
        }
    }
}
