//! What the SSH front door writes to the organisation's audit log:
//! `ssh.logged_in`, `ssh.refused` (a known user's key that was refused) and
//! `ssh.session_ended`, each naming the user, the key's fingerprint and the
//! SSH client's address, so that they show in the audit screen and `keydeck audit`.

use std::net::IpAddr;

use serde_json::{json, Value};

use super::super::AppState;
use crate::audit_action::AuditAction;
use crate::store::{AuditEvent, User};

/// A user logged in with a key.
pub const LOGIN: AuditAction = AuditAction::SshLoggedIn;
/// A known user's key was refused (removed user, member, free organisation, …).
pub const REFUSED: AuditAction = AuditAction::SshRefused;
/// A session (the UI or a command) ended; its kind and duration.
pub const SESSION_ENDED: AuditAction = AuditAction::SshSessionEnded;

/// An entry about `user`, done by them over SSH from `addr` with the key `fingerprint`.
pub fn event(
    state: &AppState,
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
        at: state.clock.now(),
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
pub async fn record(state: &AppState, event: AuditEvent) {
    if let Err(e) = state.store.record_audit(&event).await {
        tracing::warn!(error = %e, action = %event.action, "cannot write an SSH audit entry");
    }
}
