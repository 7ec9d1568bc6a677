//! The stored form of users' SSH public keys (their identity over SSH), read
//! by column name like every other row.

use chrono::{DateTime, Utc};

use super::{from_ms, from_opt_ms, Org, StoreError, StoreResult, User, UserOrgRow};

/// A user's SSH public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub user_id: String,
    /// The user's email (filled in by listings; ignored when inserting).
    pub user_email: String,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, …
    pub algorithm: String,
    /// The OpenSSH line without its comment: `ssh-ed25519 AAAA…`.
    pub public_key: String,
    pub comment: String,
    pub added_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// An `ssh_keys` row joined with its user's email.
#[derive(sqlx::FromRow)]
pub(super) struct SshKeyRow {
    fingerprint: String,
    user_id: String,
    email: String,
    algorithm: String,
    public_key: String,
    comment: String,
    added_at: i64,
    last_used_at: Option<i64>,
}

impl TryFrom<SshKeyRow> for SshKey {
    type Error = StoreError;
    fn try_from(r: SshKeyRow) -> StoreResult<Self> {
        Ok(Self {
            fingerprint: r.fingerprint,
            user_id: r.user_id,
            user_email: r.email,
            algorithm: r.algorithm,
            public_key: r.public_key,
            comment: r.comment,
            added_at: from_ms(r.added_at)?,
            last_used_at: from_opt_ms(r.last_used_at)?,
        })
    }
}

/// Who holds an SSH key: its user, removed or not, and their organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKeyHolder {
    pub user: User,
    pub org: Org,
    /// The user was removed (the key stays stored, and is refused).
    pub removed: bool,
}

/// An `ssh_keys` row's user and organisation (`sql::SSH_KEY_HOLDER`): the
/// owner's columns as `SSH_KEY_OWNER` reads them, and whether the user is
/// disabled or removed.
#[derive(sqlx::FromRow)]
pub(super) struct SshKeyHolderRow {
    #[sqlx(flatten)]
    owner: UserOrgRow,
    has_token: bool,
    removed: bool,
}

impl TryFrom<SshKeyHolderRow> for SshKeyHolder {
    type Error = StoreError;
    fn try_from(r: SshKeyHolderRow) -> StoreResult<Self> {
        let (mut user, org) = r.owner.split()?;
        user.has_token = r.has_token;
        Ok(Self {
            user,
            org,
            removed: r.removed,
        })
    }
}
