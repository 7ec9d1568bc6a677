//! Users' SSH keys: the public keys that let a user in over SSH, added and
//! removed (audited like every other change to a user) and listed.

use chrono::{DateTime, Utc};

use super::{user_event, user_named, AccountsError, Result};
use crate::audit_action::AuditAction;
use crate::store::{SshKey, Store, StoreError};

pub use crate::key::ssh::{fingerprint, ParsedKey, COMMENT_MAX, KEY_LINE_MAX};

/// Parses one OpenSSH public key line (see [`crate::key::ssh::parse_public_key`]).
pub fn parse_public_key(text: &str) -> Result<ParsedKey> {
    crate::key::ssh::parse_public_key(text).map_err(|e| AccountsError::Invalid(e.0))
}

/// Adds a key to a user; a key that belongs to anyone already is refused.
pub async fn add_ssh_key(
    store: &dyn Store,
    email: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<SshKey> {
    let user = user_named(store, email).await?;
    let parsed = parse_public_key(text)?;
    let key = SshKey {
        fingerprint: parsed.fingerprint,
        user_id: user.id.clone(),
        user_email: user.email.clone(),
        algorithm: parsed.algorithm,
        public_key: parsed.public_key,
        comment: parsed.comment,
        added_at: now,
        last_used_at: None,
    };
    let audit = user_event(
        &user,
        AuditAction::UserSshKeyAdded,
        now,
        serde_json::json!({ "fingerprint": key.fingerprint, "comment": key.comment }),
    );
    match store.add_ssh_key(&key, &audit).await {
        Ok(()) => Ok(key),
        Err(StoreError::Duplicate(_)) => Err(AccountsError::Invalid(format!(
            "the key {} is already added (a key belongs to one user; see \
             `keydeck admin users list-ssh-keys`)",
            key.fingerprint
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Current users' keys, or one user's.
pub async fn list_ssh_keys(store: &dyn Store, email: Option<&str>) -> Result<Vec<SshKey>> {
    let user_id = match email {
        Some(email) => Some(user_named(store, email).await?.id),
        None => None,
    };
    Ok(store.list_ssh_keys(user_id.as_deref()).await?)
}

/// Removes one of a user's keys: the next connection with it is refused.
pub async fn remove_ssh_key(
    store: &dyn Store,
    email: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let user = user_named(store, email).await?;
    let audit = user_event(
        &user,
        AuditAction::UserSshKeyRemoved,
        now,
        serde_json::json!({ "fingerprint": fingerprint }),
    );
    if store.remove_ssh_key(&user.id, fingerprint, &audit).await? {
        Ok(())
    } else {
        Err(AccountsError::NotFound(format!(
            "{email} has no SSH key {fingerprint:?} (see `keydeck admin users list-ssh-keys {email}`)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHurtAh17zpzFM68GhsP+QXbpEtsP9AdOk8/6IyBHj3L ops@laptop";

    #[test]
    fn a_key_line_gives_its_fingerprint_and_comment() {
        let key = parse_public_key(&format!("# mine\n{ED25519}\n\n")).unwrap();
        // As `ssh-keygen -l` prints it.
        assert_eq!(
            key.fingerprint,
            "SHA256:NjYu66s1INtAyeVj24LWvg+ia7AKA7fj8Koqi3WJSlQ"
        );
        assert_eq!(key.algorithm, "ssh-ed25519");
        assert_eq!(key.comment, "ops@laptop");
        assert!(!key.public_key.contains("ops@laptop"));
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("ssh-ed25519 AAAA", "OpenSSH"),
            (&format!("{ED25519}\n{ED25519}"), "one at a time"),
            (&"x".repeat(KEY_LINE_MAX + 1), "longer"),
        ] {
            let e = parse_public_key(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
