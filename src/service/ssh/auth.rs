//! Who an SSH connection is: public-key authentication against the keys
//! `keydeck admin users add-ssh-key` stored, and the per-session credential
//! that lets the session's client act as that user on the service's own
//! internal listener, with the key's fingerprint and the client's address
//! attached to everything it does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::http::request::Parts;

use super::super::auth::Admin;
use super::super::error::ApiError;
use super::super::AppState;
use crate::key::{digest, random_base62, Secret};
use crate::service::store::{Org, Plan, Role, User};

/// Prefix of session credentials; they are accepted only on the internal listener.
pub const SESSION_TOKEN_PREFIX: &str = "kds_";

/// Marks requests that came in on the internal listener the SSH sessions use.
#[derive(Debug, Clone, Copy)]
pub struct InternalListener;

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

impl AppState {
    /// The admin behind an SSH session's credential, checked now as an
    /// access token would be (401 once the key or user is removed, 402 for a
    /// free organisation, 403 for a member); `None` when `token` is not a
    /// session credential on the internal listener.
    pub(in crate::service) async fn ssh_session_admin(
        &self,
        parts: &Parts,
        token: &str,
    ) -> Option<Result<Admin, ApiError>> {
        if !token.starts_with(SESSION_TOKEN_PREFIX)
            || parts.extensions.get::<InternalListener>().is_none()
        {
            return None;
        }
        Some(self.check_ssh_session(token).await)
    }

    async fn check_ssh_session(&self, token: &str) -> Result<Admin, ApiError> {
        let identity = self
            .ssh_tokens
            .get(&digest(token))
            .ok_or(ApiError::InvalidCredentials)?;
        let (user, org) = self
            .store
            .ssh_key_owner(&identity.fingerprint)
            .await?
            .filter(|(user, _)| user.id == identity.user.id)
            .ok_or(ApiError::InvalidCredentials)?;
        if org.plan != Plan::Paid {
            return Err(ApiError::PlanRequired);
        }
        if user.role != Role::Admin {
            return Err(ApiError::AdminRequired);
        }
        Ok(Admin {
            user,
            org,
            addr: identity.addr,
            via: Some(format!("ssh {}", identity.fingerprint)),
        })
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
            Self::FreePlan => "free_plan",
            Self::Member => "not_an_admin",
        }
    }
}
