//! SSH sessions' credentials, as data: who a session is ([`Identity`]), the
//! credentials of open sessions ([`SessionTokens`]), one credential that
//! works until dropped ([`SessionToken`]), and the mark a request from the
//! internal socket carries ([`InternalListener`]). The checks that read them
//! are in [`super::auth`]; the SSH front end mints them through [`super::gate`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use super::AppState;
use crate::key::{digest, random_base62, Secret};
use crate::store::{Org, User};

/// Prefix of session credentials; they are accepted only on the internal socket.
pub const SESSION_TOKEN_PREFIX: &str = "kds_";

/// A user who authenticated with one of their SSH keys.
#[derive(Debug, Clone)]
pub struct Identity {
    pub(super) user: User,
    pub(super) org: Org,
    /// `SHA256:…` of the key they authenticated with.
    pub(super) fingerprint: String,
    /// The SSH client's address.
    pub(super) addr: IpAddr,
}

impl Identity {
    pub fn user_id(&self) -> &str {
        &self.user.id
    }

    pub fn email(&self) -> &str {
        &self.user.email
    }

    pub fn org_name(&self) -> &str {
        &self.org.name
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }
}

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

    /// Whose live credential `token` is, if it is one.
    pub(super) fn get(&self, token: &str) -> Option<Identity> {
        self.lock().get(&digest(token)).cloned()
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
    pub(super) fn mint(state: &AppState, identity: Identity) -> Self {
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
