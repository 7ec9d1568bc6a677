//! The HTTP side of SSH sessions: the credentials of open sessions, the
//! internal socket's middleware that lets only those in ([`internal_gate`]),
//! and what the extractors read from a request it let in. The SSH front end
//! mints the credentials through [`super::gate`]; it never sees this file.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::{bearer, Admin};
use super::error::ApiError;
use super::gate::{Identity, SessionToken};
use super::AppState;
use crate::key::digest;
use crate::store::{Org, Plan, Role, User};

/// Prefix of session credentials; they are accepted only on the internal socket.
pub const SESSION_TOKEN_PREFIX: &str = "kds_";

/// Marks a request that came in on the SSH sessions' internal socket with a
/// live session credential, and says whose session it is.
#[derive(Debug, Clone)]
pub struct InternalListener(pub Identity);

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

    /// The credential with `digest` is `identity`'s, until [`revoke`](Self::revoke)d.
    pub(super) fn insert(&self, digest: [u8; 32], identity: Identity) {
        self.lock().insert(digest, identity);
    }

    pub(super) fn revoke(&self, digest: &[u8; 32]) {
        self.lock().remove(digest);
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
pub(super) async fn internal_gate(
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
    pub(super) async fn ssh_session_user(
        &self,
        parts: &Parts,
    ) -> Option<Result<(User, Org), ApiError>> {
        let InternalListener(identity) = parts.extensions.get::<InternalListener>()?;
        Some(self.check_ssh_session(identity).await)
    }

    /// Like [`ssh_session_user`](Self::ssh_session_user), for admins only
    /// (403 for a member), attributed to the key.
    pub(super) async fn ssh_session_admin(&self, parts: &Parts) -> Option<Result<Admin, ApiError>> {
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
}
