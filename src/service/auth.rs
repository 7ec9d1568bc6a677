//! Who is calling: the client address, admin access tokens, and API keys.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::error::ApiError;
use super::store::{AuthRecord, Org, Plan, Role, User};
use super::AppState;
use crate::key::scope;
use crate::key::SecretFormat;

/// The address a request came from: the peer, or for a trusted proxy the
/// address it reports in `X-Real-IP` or (rightmost) `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| ApiError::Internal("no peer address on the connection".into()))?;
        if !state.trusted_proxies.contains(&peer) {
            return Ok(Self(peer));
        }
        let reported = header_str(&parts.headers, "x-real-ip")
            .and_then(|v| v.trim().parse().ok())
            .or_else(|| {
                header_str(&parts.headers, "x-forwarded-for")
                    .and_then(|v| v.rsplit(',').next())
                    .and_then(|v| v.trim().parse().ok())
            });
        Ok(Self(reported.unwrap_or(peer)))
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The credential in `Authorization: Bearer …`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, header::AUTHORIZATION.as_str())?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// An admin of a paid organisation, authenticated by access token.
#[derive(Debug, Clone)]
pub struct Admin {
    pub user: User,
    pub org: Org,
    pub addr: IpAddr,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state).await?;
        let token = bearer(&parts.headers).ok_or(ApiError::MissingCredentials)?;
        let (user, org) = state.check_user_token(token, addr).await?;
        Ok(Self { user, org, addr })
    }
}

/// Whoever may read the audit log: an admin, or an API key with `audit_logs:read`.
#[derive(Debug, Clone)]
pub enum AuditReader {
    Admin(Admin),
    Key(AuthRecord),
}

impl AuditReader {
    pub fn org_id(&self) -> &str {
        match self {
            Self::Admin(a) => &a.org.id,
            Self::Key(k) => &k.org_id,
        }
    }
}

impl FromRequestParts<AppState> for AuditReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state).await?;
        let credential = bearer(&parts.headers)
            .or_else(|| header_str(&parts.headers, "x-api-key"))
            .ok_or(ApiError::MissingCredentials)?;
        if credential.starts_with(state.key_format.prefix()) {
            let key = state
                .check_key(credential, addr, Some("audit_logs:read"))
                .await?;
            Ok(Self::Key(key))
        } else {
            let (user, org) = state.check_user_token(credential, addr).await?;
            Ok(Self::Admin(Admin { user, org, addr }))
        }
    }
}

impl AppState {
    /// Checks a user access token: 401, 402 or 403 unless it is a paid org's admin.
    pub async fn check_user_token(
        &self,
        token: &str,
        addr: IpAddr,
    ) -> Result<(User, Org), ApiError> {
        let now = self.clock.now();
        self.limiter
            .check(addr, now)
            .map_err(|retry_after| ApiError::TooManyFailures { retry_after })?;
        let found = match SecretFormat::user_token().parse(token) {
            Ok(secret) => self.store.user_by_token(&secret.digest()).await?,
            Err(_) => None,
        };
        let Some((user, org)) = found else {
            self.limiter.record_failure(addr, now);
            return Err(ApiError::InvalidCredentials);
        };
        if org.plan != Plan::Paid {
            return Err(ApiError::PlanRequired);
        }
        if user.role != Role::Admin {
            return Err(ApiError::AdminRequired);
        }
        Ok((user, org))
    }

    /// The key check: checksum, one lookup by digest, status, plan and scope.
    ///
    /// Only unknown or malformed keys count as failures for the limiter: a
    /// revoked or expired key proves its holder once had it, and a client stuck
    /// retrying one should not lock out its neighbours behind the same address.
    pub async fn check_key(
        &self,
        raw: &str,
        addr: IpAddr,
        required_scope: Option<&str>,
    ) -> Result<AuthRecord, ApiError> {
        let now = self.clock.now();
        self.limiter
            .check(addr, now)
            .map_err(|retry_after| ApiError::TooManyFailures { retry_after })?;
        let found = match self.key_format.parse(raw) {
            Ok(secret) => self.store.key_by_digest(&secret.digest()).await?,
            Err(_) => None,
        };
        let Some(key) = found else {
            self.limiter.record_failure(addr, now);
            return Err(ApiError::InvalidCredentials);
        };
        let expired = key.expires_at.is_some_and(|at| at <= now);
        if key.revoked_at.is_some() || expired || key.org_plan != Plan::Paid {
            return Err(ApiError::InvalidCredentials);
        }
        if let Some(required) = required_scope {
            if !scope::grants(&key.scopes, required) {
                return Err(ApiError::InsufficientScope(required.to_owned()));
            }
        }
        self.last_used.record(&key.id, now);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }
}
