//! The gate: everything the SSH front end (`crate::ssh`) needs from the
//! service, and nothing more. Who an SSH key belongs to (or why it is
//! refused), the failed-login limiter, a session credential that lives as
//! long as the session, the internal Unix socket its sessions' clients reach
//! the service through, and the `ssh.*` audit entries. [`Gate`] is an opaque
//! handle from [`RunningService::gate`](super::RunningService::gate): the
//! service's state never leaves it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::middleware;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::auth::internal_gate;
use super::{internal, router, serve, AppState};
use crate::audit_action::AuditAction;
use crate::clock::Clock;
use crate::store::{AuditEvent, Plan, Role, User};

pub use super::sessions::{Identity, SessionToken};

/// Whom connection caps count against: an IPv4 address, or an IPv6 /64
/// (the failed-login limiter's own notion of a source).
pub use super::rate_limit::AddrKey;

/// The service, as the SSH front end reaches it.
#[derive(Clone)]
pub struct Gate {
    state: AppState,
    data_dir: PathBuf,
    max_connections: usize,
}

/// Why a key was refused at authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
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

/// A refused key: why, and its user when there is one (for the audit log).
#[derive(Debug)]
pub struct Refused {
    pub reason: Refusal,
    holder: Option<User>,
}

impl Refused {
    /// The email of the key's user, if anybody holds the key.
    pub fn holder_email(&self) -> Option<&str> {
        self.holder.as_ref().map(|u| u.email.as_str())
    }
}

/// The internal socket, served until the `stop` it was given; the socket
/// file goes when it stops.
pub struct SessionsSocket {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl SessionsSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the requests in flight (for up to `grace`), then closes.
    pub async fn closed(mut self, grace: Duration) {
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.task.abort();
            let _ = self.task.await;
        }
    }
}

impl Gate {
    pub(super) fn new(state: AppState, data_dir: PathBuf, max_connections: usize) -> Self {
        Self {
            state,
            data_dir,
            max_connections,
        }
    }

    /// The service's clock (the sessions' UI and their audit entries use it).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.state.clock.clone()
    }

    /// Whether the failed-login limiter locks `addr` out now.
    pub fn locked_out(&self, addr: IpAddr) -> bool {
        self.state
            .limiter
            .check(addr, self.state.clock.now())
            .is_err()
    }

    /// Counts a failed authentication of `addr`, as a bad token counts.
    pub fn note_failure(&self, addr: IpAddr) {
        self.state.note_failure(addr, self.state.clock.now());
    }

    /// The admin of a paid organisation an SSH key belongs to, if the client
    /// at `addr` may log in: members and users of free organisations are
    /// refused here (they could do nothing but read 403 and 402 banners), as
    /// are removed users' keys and keys nobody added. Every refusal but a
    /// limited address or an unavailable database counts as a failed
    /// authentication of the address, once per connection (`counted`), as a
    /// bad token does.
    pub async fn identify(
        &self,
        fingerprint: &str,
        addr: IpAddr,
        counted: &mut bool,
    ) -> Result<Identity, Refused> {
        let state = &self.state;
        let now = state.clock.now();
        let refused = |reason, holder| Refused { reason, holder };
        if state.limiter.check(addr, now).is_err() {
            tracing::debug!(%addr, "SSH authentication refused: too many failures from this address");
            return Err(refused(Refusal::Limited, None));
        }
        let holder = match state.store.ssh_key_holder(fingerprint).await {
            Ok(holder) => holder,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up an SSH key");
                return Err(refused(Refusal::Unavailable, None));
            }
        };
        let reason = match &holder {
            None => Refusal::Unknown,
            Some(h) if h.removed => Refusal::Removed,
            Some(h) if !h.user.has_token => Refusal::Disabled,
            Some(h) if h.org.plan != Plan::Paid => Refusal::FreePlan,
            Some(h) if h.user.role != Role::Admin => Refusal::Member,
            Some(h) => {
                return Ok(Identity {
                    user: h.user.clone(),
                    org: h.org.clone(),
                    fingerprint: fingerprint.to_owned(),
                    addr,
                })
            }
        };
        if !*counted {
            *counted = true;
            state.note_failure(addr, now);
        }
        Err(refused(reason, holder.map(|h| h.user)))
    }

    /// A login: the key's last use noted, `ssh.logged_in` written.
    pub async fn logged_in(&self, who: &Identity) {
        let state = &self.state;
        if let Err(e) = state
            .store
            .touch_ssh_key(&who.fingerprint, state.clock.now())
            .await
        {
            tracing::warn!(error = %e, "cannot note the SSH key's use");
        }
        self.record(who, AuditAction::SshLoggedIn, json!({})).await;
    }

    /// `ssh.refused` for a known user's key (nothing for a key nobody holds).
    pub async fn refused(&self, refused: &Refused, fingerprint: &str, addr: IpAddr) {
        let Some(user) = &refused.holder else {
            return;
        };
        let why = json!({ "reason": refused.reason.as_str() });
        let event = self.event(user, AuditAction::SshRefused, fingerprint, addr, why);
        self.write(event).await;
    }

    /// `ssh.session_ended`, with the session's kind, duration and exit status.
    pub async fn session_ended(&self, who: &Identity, details: Value) {
        self.record(who, AuditAction::SshSessionEnded, details)
            .await;
    }

    /// A credential for `who`'s session, live until dropped.
    pub fn mint(&self, who: &Identity) -> SessionToken {
        SessionToken::mint(&self.state, who.clone())
    }

    /// The router on a Unix socket of mode 0600 (see [`internal`]), for the
    /// sessions' clients: only their credentials get in, and only there
    /// ([`internal_gate`]); each request's client address is its SSH
    /// client's. Served until `stop`; the socket goes then.
    pub fn serve_sessions_socket(
        &self,
        stop: watch::Receiver<bool>,
    ) -> Result<SessionsSocket, String> {
        let (socket, listener) = internal::InternalSocket::bind(&self.data_dir)?;
        let path = socket.path().to_path_buf();
        let state = self.state.clone();
        let serving = serve::Serving {
            app: router(state.clone())
                .layer(middleware::from_fn_with_state(state.clone(), internal_gate)),
            tls: None,
            timeouts: state.timeouts,
            max_connections: self.max_connections.max(1),
            accepted: Arc::default(),
        };
        let task = tokio::spawn(async move {
            if let Err(e) = serve::serve(listener, serving, stop).await {
                tracing::warn!(error = %e, "the SSH sessions' socket failed");
            }
            drop(socket);
        });
        Ok(SessionsSocket { path, task })
    }

    async fn record(&self, who: &Identity, action: AuditAction, more: Value) {
        let event = self.event(&who.user, action, &who.fingerprint, who.addr, more);
        self.write(event).await;
    }

    /// An entry about `user`, done by them over SSH from `addr` with the key `fingerprint`.
    fn event(
        &self,
        user: &User,
        action: AuditAction,
        fingerprint: &str,
        addr: IpAddr,
        more: Value,
    ) -> AuditEvent {
        let mut details = json!({
            "user_id": user.id,
            "user_email": user.email,
            "fingerprint": fingerprint,
        });
        if let (Some(all), Value::Object(more)) = (details.as_object_mut(), more) {
            all.extend(more);
        }
        AuditEvent {
            org_id: user.org_id.clone(),
            at: self.state.clock.now(),
            actor_kind: "user".into(),
            actor_id: user.id.clone(),
            actor_name: user.email.clone(),
            action: action.to_string(),
            api_key_id: String::new(),
            remote_addr: Some(addr.to_canonical().to_string()),
            details,
        }
    }

    /// Writes the entry; a database that fails is logged, never the session's problem.
    async fn write(&self, event: AuditEvent) {
        if let Err(e) = self.state.store.record_audit(&event).await {
            tracing::warn!(error = %e, action = %event.action, "cannot write an SSH audit entry");
        }
    }
}

impl AppState {
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
