//! Who is calling: the client address, admin access tokens (or an SSH
//! session's credential, and the internal socket's middleware that admits
//! only those), and API keys.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::keycache::CheckedKey;
use super::sessions::{Identity, InternalListener, SESSION_TOKEN_PREFIX};
use super::usage::Outcome;
use super::AppState;
use crate::key::scope;
use crate::key::SecretFormat;
use crate::store::{AuthRecord, Org, Plan, Role, User};

/// The address a request came from: the peer, or, when the peer is a trusted
/// proxy, the client it reports (see [`client_behind`]); for a request from
/// an SSH session (on the internal socket), the SSH client's address.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(InternalListener(session)) = parts.extensions.get::<InternalListener>() {
            return Ok(Self(session.addr));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| ApiError::Internal("no peer address on the connection".into()))?;
        Ok(Self(client_behind(
            peer,
            &parts.headers,
            &state.trusted_proxies,
        )))
    }
}

/// The client address for a request from `peer`. Only a trusted proxy's
/// headers are believed, and only the part that proxy wrote itself:
///
/// - every `X-Forwarded-For` line is read, in order, as one list, and walked
///   from the right past trusted proxies; the first other address is the
///   client (a client can prepend anything, but not append);
/// - an entry that is not an IP address stops the walk: the last trusted hop
///   (or the peer) is then the client, so garbage never picks an address;
/// - `X-Real-IP` counts only when the proxy sent no `X-Forwarded-For` at all.
pub fn client_behind(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let lines: Vec<&HeaderValue> = headers.get_all("x-forwarded-for").iter().collect();
    if lines.is_empty() {
        return header_str(headers, "x-real-ip")
            .and_then(parse_hop)
            .unwrap_or(peer);
    }
    let mut hop = peer;
    for line in lines.iter().rev() {
        let Ok(text) = line.to_str() else {
            return hop;
        };
        for entry in text.rsplit(',') {
            match parse_hop(entry) {
                Some(ip) if is_trusted(&ip) => hop = ip,
                Some(ip) => return ip,
                None => return hop,
            }
        }
    }
    hop
}

/// An address in a forwarding header: `192.0.2.1`, `2001:db8::1`, or either with a port.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
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

/// An admin of a paid organisation, authenticated by access token (or, on
/// the internal socket, by an SSH session's credential).
#[derive(Debug, Clone)]
pub struct Admin {
    pub user: User,
    pub org: Org,
    pub addr: IpAddr,
    /// How they came in when not with an access token: `ssh SHA256:…`.
    pub via: Option<String>,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(admin) = state.ssh_session_admin(parts).await {
            return admin;
        }
        let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state).await?;
        let token = bearer(&parts.headers).ok_or(ApiError::MissingCredentials)?;
        if let Some(refused) = super::reporter::refuse_reporter_key(state, token).await {
            return Err(refused);
        }
        let (user, org) = state.check_user_token(token, addr).await?;
        Ok(Self {
            user,
            org,
            addr,
            via: None,
        })
    }
}

/// Any user (admin or member) of a paid organisation, authenticated by access
/// token (or, on the internal socket, by an SSH session's credential).
#[derive(Debug, Clone)]
pub struct OrgUser {
    pub org: Org,
}

impl FromRequestParts<AppState> for OrgUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(session) = state.ssh_session_user(parts).await {
            return session.map(|(_, org)| Self { org });
        }
        let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state).await?;
        let token = bearer(&parts.headers).ok_or(ApiError::MissingCredentials)?;
        if let Some(refused) = super::reporter::refuse_reporter_key(state, token).await {
            return Err(refused);
        }
        let (_, org) = state.check_org_user(token, addr).await?;
        Ok(Self { org })
    }
}

/// The internal socket's gate, in front of the router: only a live session
/// credential gets in, and its request is marked with the session's identity
/// ([`InternalListener`]), so that every extractor takes the credential and
/// the request's client address is the SSH client's, never this host's.
/// Nothing is counted as a failed login here: the socket is the service's
/// own (mode 0600), and a credential that is not (or no longer) live has no
/// client address to count against. Forward-auth (`/v1/auth`) checks API keys
/// for gateways, never sessions: 404 here, as the code hosts' leak routes
/// (GitLab's, GitHub's), which take their own credentials.
pub(super) async fn internal_gate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let identity = bearer(request.headers())
        .filter(|token| token.starts_with(SESSION_TOKEN_PREFIX))
        .and_then(|token| state.ssh_tokens.get(token));
    let Some(identity) = identity else {
        tracing::debug!("internal socket: a request without a live session credential");
        return ApiError::InvalidCredentials.into_response();
    };
    if request.uri().path() == "/v1/auth"
        || super::reporter::is_code_host_path(request.uri().path())
    {
        return ApiError::NotFound.into_response();
    }
    request.extensions_mut().insert(InternalListener(identity));
    next.run(request).await
}

impl AppState {
    /// The user (any role) behind a request from an SSH session (see
    /// [`internal_gate`]), checked now as an access token would be: 401 once
    /// the key is removed or given to someone else, 402 for a free
    /// organisation. `None` when the request did not come through the
    /// internal socket. Never counted as a failed login: the holder proved
    /// the key at login (as a revoked API key proves its holder had it).
    async fn ssh_session_user(&self, parts: &Parts) -> Option<Result<(User, Org), ApiError>> {
        let InternalListener(identity) = parts.extensions.get::<InternalListener>()?;
        Some(self.check_ssh_session(identity).await)
    }

    /// Like [`ssh_session_user`](Self::ssh_session_user), for admins only
    /// (403 for a member), attributed to the key.
    async fn ssh_session_admin(&self, parts: &Parts) -> Option<Result<Admin, ApiError>> {
        let InternalListener(identity) = parts.extensions.get::<InternalListener>()?;
        Some(
            self.check_ssh_session(identity)
                .await
                .and_then(|(user, org)| {
                    if user.role != Role::Admin {
                        return Err(ApiError::AdminRequired);
                    }
                    Ok(Admin {
                        user,
                        org,
                        addr: identity.addr,
                        via: Some(format!("ssh {}", identity.fingerprint)),
                    })
                }),
        )
    }

    async fn check_ssh_session(&self, identity: &Identity) -> Result<(User, Org), ApiError> {
        let (user, org) = self
            .store
            .ssh_key_owner(&identity.fingerprint)
            .await?
            .filter(|(user, _)| user.id == identity.user.id)
            .ok_or(ApiError::InvalidCredentials)?;
        if org.plan != Plan::Paid {
            return Err(ApiError::PlanRequired);
        }
        Ok((user, org))
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
        if let Some(admin) = state.ssh_session_admin(parts).await {
            return admin.map(Self::Admin);
        }
        let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state).await?;
        let credential = bearer(&parts.headers)
            .or_else(|| header_str(&parts.headers, "x-api-key"))
            .ok_or(ApiError::MissingCredentials)?;
        if credential.starts_with(state.key_format.prefix()) {
            let key = state
                .check_key(credential, addr, Some("audit_logs:read"))
                .await?;
            Ok(Self::Key(key.record.clone()))
        } else {
            let (user, org) = state.check_user_token(credential, addr).await?;
            Ok(Self::Admin(Admin {
                user,
                org,
                addr,
                via: None,
            }))
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
        let (user, org) = self.check_org_user(token, addr).await?;
        if user.role != Role::Admin {
            return Err(ApiError::AdminRequired);
        }
        Ok((user, org))
    }

    /// Checks a user access token: 401 or 402 unless it is a paid org's user (any role).
    pub async fn check_org_user(&self, token: &str, addr: IpAddr) -> Result<(User, Org), ApiError> {
        let now = self.clock.now();
        self.limiter
            .check(addr, now)
            .map_err(|retry_after| ApiError::TooManyFailures { retry_after })?;
        let found = match SecretFormat::user_token().parse(token) {
            Ok(secret) => {
                let digest = secret.digest();
                let at = Instant::now();
                if self.missing_tokens.contains(&digest, at) {
                    None
                } else {
                    let found = self.store.user_by_token(&digest).await?;
                    if found.is_none() {
                        self.missing_tokens.insert(digest, at);
                    }
                    found
                }
            }
            Err(_) => None,
        };
        let Some((user, org)) = found else {
            self.note_failure(addr, now);
            return Err(ApiError::InvalidCredentials);
        };
        if org.plan != Plan::Paid {
            return Err(ApiError::PlanRequired);
        }
        Ok((user, org))
    }

    /// Failed checks counted against `addr` in its current window (the
    /// maximum while it is locked out): read-only, for tests.
    pub fn failed_auth_count(&self, addr: IpAddr) -> u32 {
        self.limiter.failures(addr, self.clock.now())
    }

    /// How many clients the failed-check limiter tracks now (at most about
    /// 2 × 65 536: counting windows plus locks).
    pub fn failed_auth_tracked(&self) -> usize {
        self.limiter.tracked()
    }

    /// Counts a failed check here, and in the counter shared by all replicas if there is one.
    pub(super) fn note_failure(&self, addr: IpAddr, now: chrono::DateTime<chrono::Utc>) {
        if self.limiter.max() == 0 {
            return;
        }
        self.limiter.record_failure(addr, now);
        if let Some(shared) = &self.shared_limit {
            shared.report(addr.into());
        }
    }

    /// The key check: checksum, one lookup by digest (through the key cache,
    /// [`super::keycache`]), then status, expiry against the clock, plan and
    /// scope, at every request.
    ///
    /// Malformed keys never reach the store. A well-formed key whose digest
    /// was not found is remembered for a second ([`super::negative`]), so
    /// repeating it costs at most one lookup a second; it is answered and
    /// counted as a failure exactly like a fresh miss. This is safe: a digest
    /// not found can only become valid by a key being created with exactly
    /// that secret, which the service generates at random, and revocation or
    /// expiry only make keys invalid. Found keys are remembered only under
    /// the key cache's rule: a change is refused on the next request.
    ///
    /// Only unknown or malformed keys count as failures for the limiter: a
    /// revoked or expired key proves its holder once had it, and a client stuck
    /// retrying one should not lock out its neighbours behind the same address.
    pub async fn check_key(
        &self,
        raw: &str,
        addr: IpAddr,
        required_scope: Option<&str>,
    ) -> Result<Arc<CheckedKey>, ApiError> {
        let now = self.clock.now();
        if let Err(retry_after) = self.limiter.check(addr, now) {
            self.count_locked_out(raw, addr, now);
            return Err(ApiError::TooManyFailures { retry_after });
        }
        let (found, well_formed) = match self.key_format.parse(raw) {
            Ok(secret) => (self.key_cache.by_digest(&secret.digest()).await?, true),
            Err(_) => (None, false),
        };
        let Some(key) = found else {
            if well_formed {
                self.usage.record_unknown(now);
            }
            self.note_failure(addr, now);
            return Err(ApiError::InvalidCredentials);
        };
        let count = |outcome| self.usage.record(&key.id, &key.org_id, outcome, addr, now);
        if key.revoked_at.is_some() {
            count(Outcome::Revoked);
            return Err(ApiError::InvalidCredentials);
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            count(Outcome::Expired);
            return Err(ApiError::InvalidCredentials);
        }
        if key.org_plan != Plan::Paid {
            return Err(ApiError::InvalidCredentials);
        }
        if let Some(required) = required_scope {
            if !scope::grants(&key.scopes, required) {
                count(Outcome::InsufficientScope);
                return Err(ApiError::InsufficientScope(required.to_owned()));
            }
        }
        count(Outcome::Valid);
        self.last_used.record(&key.id, now);
        Ok(key)
    }
}

impl AppState {
    /// A check refused because its address is locked out: counted as
    /// `rate_limited` for its key if the key is good and in the key cache
    /// (never a lookup in the store for a locked-out client).
    fn count_locked_out(&self, raw: &str, addr: IpAddr, now: chrono::DateTime<chrono::Utc>) {
        let Ok(secret) = self.key_format.parse(raw) else {
            return;
        };
        if let Some(key) = self.key_cache.cached(&secret.digest()) {
            let good = key.revoked_at.is_none() && key.expires_at.is_none_or(|at| at > now);
            if good {
                self.usage
                    .record(&key.id, &key.org_id, Outcome::RateLimited, addr, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(peer: &str, headers: &[(&str, &[u8])], trusted: &[&str]) -> String {
        let mut h = HeaderMap::new();
        for (name, value) in headers {
            h.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let trusted: Vec<IpAddr> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client_behind(peer.parse().unwrap(), &h, &trusted).to_string()
    }

    #[test]
    fn forwarding_headers_are_read_right_to_left_from_trusted_proxies_only() {
        let p = &["127.0.0.1", "10.0.0.254"];
        let xff = "x-forwarded-for";
        // Not a trusted peer: headers ignored.
        assert_eq!(client("192.0.2.9", &[(xff, b"10.1.1.1")], p), "192.0.2.9");
        // Several lines are one list; the rightmost untrusted entry wins.
        assert_eq!(
            client(
                "127.0.0.1",
                &[(xff, b"10.1.1.1"), (xff, b"10.2.2.2, 10.3.3.3")],
                p
            ),
            "10.3.3.3"
        );
        // Trusted hops are skipped.
        assert_eq!(
            client(
                "127.0.0.1",
                &[(xff, b"10.1.1.1, 10.0.0.254"), (xff, b"127.0.0.1")],
                p
            ),
            "10.1.1.1"
        );
        // X-Real-IP only without X-Forwarded-For.
        assert_eq!(
            client(
                "127.0.0.1",
                &[("x-real-ip", b"10.9.9.9"), (xff, b"10.1.1.1")],
                p
            ),
            "10.1.1.1"
        );
        assert_eq!(
            client("127.0.0.1", &[("x-real-ip", b"10.9.9.9")], p),
            "10.9.9.9"
        );
        assert_eq!(
            client("127.0.0.1", &[("x-real-ip", b"nonsense")], p),
            "127.0.0.1"
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            client("127.0.0.1", &[(xff, b"10.1.1.1, junk")], p),
            "127.0.0.1"
        );
        assert_eq!(
            client("127.0.0.1", &[(xff, b"10.1.1.1, junk, 10.0.0.254")], p),
            "10.0.0.254"
        );
        assert_eq!(
            client("127.0.0.1", &[(xff, b"junk, 10.1.1.1")], p),
            "10.1.1.1"
        );
        assert_eq!(client("127.0.0.1", &[(xff, b"10.1.1.1,")], p), "127.0.0.1");
        assert_eq!(
            client("127.0.0.1", &[(xff, b"\xff10.1.1.1")], p),
            "127.0.0.1"
        );
        // Ports and IPv4-mapped peers.
        assert_eq!(
            client("127.0.0.1", &[(xff, b"[2001:db8::1]:443")], p),
            "2001:db8::1"
        );
        assert_eq!(
            client("::ffff:127.0.0.1", &[(xff, b"10.1.1.1")], p),
            "10.1.1.1"
        );
        // Only trusted hops: the leftmost one.
        assert_eq!(
            client("127.0.0.1", &[(xff, b"10.0.0.254")], p),
            "10.0.0.254"
        );
    }

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
