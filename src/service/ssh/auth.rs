//! Who an SSH connection is: public-key authentication against the keys
//! `keydeck admin users add-ssh-key` stored, and the per-session credential
//! that lets the session's client act as that user through the service's own
//! Unix socket ([`internal_gate`]), with the key's fingerprint and the SSH
//! client's address attached to everything it does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::super::auth::{bearer, Admin};
use super::super::error::ApiError;
use super::super::AppState;
use crate::key::{digest, random_base62, Secret};
use crate::store::{Org, Plan, Role, User};

/// Prefix of session credentials; they are accepted only on the internal socket.
pub const SESSION_TOKEN_PREFIX: &str = "kds_";

/// Marks a request that came in on the SSH sessions' internal socket with a
/// live session credential, and says whose session it is.
#[derive(Debug, Clone)]
pub struct InternalListener(pub Identity);

/// A user who authenticated with one of their SSH keys.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: User,
    pub org: Org,
    /// `SHA256:…` of the key they authenticated with.
    pub fingerprint: String,
    /// The SSH client's address.
    pub addr: IpAddr,
}

/// The credentials of open sessions, by digest: in memory only, each dropped
/// when its session ends (see [`SessionToken`]).
#[derive(Default)]
pub struct SessionTokens(Mutex<HashMap<[u8; 32], Identity>>);

impl SessionTokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Identity>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, digest: &[u8; 32]) -> Option<Identity> {
        self.lock().get(digest).cloned()
    }
}

/// A session's credential; it stops working when this is dropped.
pub struct SessionToken {
    state: AppState,
    digest: [u8; 32],
    pub secret: Secret,
}

impl SessionToken {
    /// A new random credential for `identity`, valid until dropped.
    pub fn mint(state: &AppState, identity: Identity) -> Self {
        let secret = Secret::new(format!(
            "{SESSION_TOKEN_PREFIX}{}",
            random_base62(43).as_str()
        ));
        let digest = digest(secret.expose());
        state.ssh_tokens.lock().insert(digest, identity);
        Self {
            state: state.clone(),
            digest,
            secret,
        }
    }
}

impl Drop for SessionToken {
    fn drop(&mut self) {
        self.state.ssh_tokens.lock().remove(&self.digest);
    }
}

/// The internal socket's gate, in front of the router: only a live session
/// credential gets in, and its request is marked with the session's identity
/// ([`InternalListener`]), so that every extractor takes the credential and
/// the request's client address is the SSH client's, never this host's.
/// Nothing is counted as a failed login here: the socket is the service's
/// own (mode 0600), and a credential that is not (or no longer) live has no
/// client address to count against. Forward-auth (`/v1/auth`) checks API keys
/// for gateways, never sessions: 404 here.
pub(in crate::service) async fn internal_gate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let identity = bearer(request.headers())
        .filter(|token| token.starts_with(SESSION_TOKEN_PREFIX))
        .and_then(|token| state.ssh_tokens.get(&digest(token)));
    let Some(identity) = identity else {
        tracing::debug!("internal socket: a request without a live session credential");
        return ApiError::InvalidCredentials.into_response();
    };
    if request.uri().path() == "/v1/auth" {
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
    pub(in crate::service) async fn ssh_session_user(
        &self,
        parts: &Parts,
    ) -> Option<Result<(User, Org), ApiError>> {
        let InternalListener(identity) = parts.extensions.get::<InternalListener>()?;
        Some(self.check_ssh_session(identity).await)
    }

    /// Like [`ssh_session_user`](Self::ssh_session_user), for admins only
    /// (403 for a member), attributed to the key.
    pub(in crate::service) async fn ssh_session_admin(
        &self,
        parts: &Parts,
    ) -> Option<Result<Admin, ApiError>> {
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

    /// The credential an SSH login with the key `fingerprint` from `addr`
    /// would get, live until dropped; `None` if nobody has the key. For tests
    /// of the internal socket, which cannot read a session's credential.
    #[doc(hidden)]
    pub async fn ssh_session_for(&self, fingerprint: &str, addr: IpAddr) -> Option<SessionToken> {
        let (user, org) = self.store.ssh_key_owner(fingerprint).await.ok()??;
        Some(SessionToken::mint(
            self,
            Identity {
                user,
                org,
                fingerprint: fingerprint.to_owned(),
                addr,
            },
        ))
    }

    /// The admin of a paid organisation an SSH key belongs to, if the client
    /// at `addr` may log in: members and users of free organisations are
    /// refused here (they could do nothing but read 403 and 402 banners), as
    /// are removed users' keys and keys nobody added. Every refusal but a
    /// limited address or an unavailable database counts as a failed
    /// authentication of the address, once per connection (`counted`), as a
    /// bad token does. A refused key's user, when there is one, comes with
    /// the refusal (for the audit log).
    pub(super) async fn ssh_key_user(
        &self,
        fingerprint: &str,
        addr: IpAddr,
        counted: &mut bool,
    ) -> Result<(User, Org), (Refusal, Option<User>)> {
        let now = self.clock.now();
        if self.limiter.check(addr, now).is_err() {
            tracing::debug!(%addr, "SSH authentication refused: too many failures from this address");
            return Err((Refusal::Limited, None));
        }
        let holder = match self.store.ssh_key_holder(fingerprint).await {
            Ok(holder) => holder,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up an SSH key");
                return Err((Refusal::Unavailable, None));
            }
        };
        let refusal = match &holder {
            None => Refusal::Unknown,
            Some(h) if h.removed => Refusal::Removed,
            Some(h) if !h.user.has_token => Refusal::Disabled,
            Some(h) if h.org.plan != Plan::Paid => Refusal::FreePlan,
            Some(h) if h.user.role != Role::Admin => Refusal::Member,
            Some(h) => return Ok((h.user.clone(), h.org.clone())),
        };
        if !*counted {
            *counted = true;
            self.note_failure(addr, now);
        }
        Err((refusal, holder.map(|h| h.user)))
    }
}

/// Why a key was refused at authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Too many failed authentications from the address lately.
    Limited,
    /// The database did not answer.
    Unavailable,
    /// Nobody added the key.
    Unknown,
    Removed,
    /// The user's access token was revoked (`admin users revoke-token`):
    /// their SSH keys are refused too until `reset-token`.
    Disabled,
    FreePlan,
    Member,
}

impl Refusal {
    /// As the audit log and the service log say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Limited => "too_many_failures",
            Self::Unavailable => "database_unavailable",
            Self::Unknown => "unknown_key",
            Self::Removed => "user_removed",
            Self::Disabled => "user_disabled",
            Self::FreePlan => "free_plan",
            Self::Member => "not_an_admin",
        }
    }
}
