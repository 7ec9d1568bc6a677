//! Organisations and users, the operator's work on the database (`keydeck
//! admin` runs it; the embedded UI repairs its admin token with it): plain
//! functions over the [`Store`] that return values and errors, and never
//! print or parse a command line (that is `cli/admin.rs`).
//!
//! Every change to a user is written to their organisation's audit log, with
//! the operator (`$USER@HOST`, actor type `operator`) as the actor.

use chrono::{DateTime, Utc};

use crate::audit_action::AuditAction;
use crate::key::{new_id, Secret, SecretFormat};
use crate::store::{AuditEvent, NewUser, Org, Plan, Role, Store, StoreError, User, UserChange};

pub mod seed;
pub mod ssh_keys;

pub use seed::{seed, SEED_MAX_AGE_DAYS};

/// The longest organisation name.
pub const ORG_NAME_MAX: usize = 64;
/// The longest email.
pub const EMAIL_MAX: usize = 254;

/// Why an operator job was refused: bad input, nothing by that name, or the store.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{}", store_message(.0))]
    Store(#[from] StoreError),
}

/// A duplicate says what is taken; other store errors speak for themselves.
fn store_message(e: &StoreError) -> String {
    match e {
        StoreError::Duplicate(what) => format!("already exists ({what})"),
        e => e.to_string(),
    }
}

/// What every operator job returns.
pub type Result<T> = std::result::Result<T, AccountsError>;

fn check_org_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= ORG_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then_some(()).ok_or_else(|| {
        AccountsError::Invalid(format!(
            "organisation name must be 1-{ORG_NAME_MAX} characters of letters, digits, '-', '_' and '.'"
        ))
    })
}

fn check_email(email: &str) -> Result<()> {
    let ok = email.len() <= EMAIL_MAX
        && email
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(()).ok_or_else(|| {
        AccountsError::Invalid(format!(
            "email must look like name@host, at most {EMAIL_MAX} characters"
        ))
    })
}

/// The organisation with this name.
pub async fn org_named(store: &dyn Store, name: &str) -> Result<Org> {
    store.org_by_name(name).await?.ok_or_else(|| {
        AccountsError::NotFound(format!(
            "no organisation named {name:?} (see `keydeck admin orgs list`)"
        ))
    })
}

pub async fn add_org(store: &dyn Store, name: &str, plan: Plan, now: DateTime<Utc>) -> Result<Org> {
    check_org_name(name)?;
    let org = Org {
        id: new_id("org_"),
        name: name.to_owned(),
        plan,
        created_at: now,
    };
    store.create_org(&org).await?;
    Ok(org)
}

/// Every organisation.
pub async fn list_orgs(store: &dyn Store) -> Result<Vec<Org>> {
    Ok(store.list_orgs().await?)
}

/// Moves an organisation to `plan` (on the free plan its keys stop authenticating).
pub async fn set_plan(store: &dyn Store, name: &str, plan: Plan) -> Result<()> {
    let org = org_named(store, name).await?;
    store.set_plan(&org.id, plan).await?;
    Ok(())
}

/// Who runs `keydeck admin`, as the audit log names them: `$USER@HOST`
/// (the login name from `USER` or `LOGNAME`, the kernel's host name).
pub fn operator_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean = |s: &str, default: &str| {
        let s: String = s
            .trim()
            .chars()
            .filter(|c| !c.is_control() && !c.is_whitespace() && *c != '@')
            .take(64)
            .collect();
        if s.is_empty() {
            default.to_owned()
        } else {
            s
        }
    };
    format!("{}@{}", clean(&user, "unknown"), clean(&host, "localhost"))
}

/// An audit entry about `user`, by the operator; `details` gain the user's id and email.
fn user_event(
    user: &User,
    action: AuditAction,
    now: DateTime<Utc>,
    details: serde_json::Value,
) -> AuditEvent {
    let operator = operator_name();
    let mut all = serde_json::json!({ "user_id": user.id, "user_email": user.email });
    if let (Some(all), serde_json::Value::Object(more)) = (all.as_object_mut(), details) {
        all.extend(more);
    }
    AuditEvent {
        org_id: user.org_id.clone(),
        at: now,
        actor_kind: "operator".into(),
        actor_id: operator.clone(),
        actor_name: operator,
        action: action.to_string(),
        api_key_id: String::new(),
        remote_addr: None,
        details: all,
    }
}

/// The current user with this email.
pub async fn user_named(store: &dyn Store, email: &str) -> Result<User> {
    store.user_by_email(email).await?.ok_or_else(|| {
        AccountsError::NotFound(format!(
            "no user with email {email:?} (see `keydeck admin users list`)"
        ))
    })
}

/// Applies `change` to `user`, audited; a user removed meanwhile is not found.
async fn change(
    store: &dyn Store,
    user: &User,
    change: UserChange,
    audit: AuditEvent,
) -> Result<()> {
    if store.change_user(&user.id, &change, &audit).await? {
        Ok(())
    } else {
        Err(AccountsError::NotFound(format!(
            "no user with email {:?} (removed meanwhile?)",
            user.email
        )))
    }
}

/// Refuses to leave an organisation without an admin, unless `force`.
async fn keep_an_admin(store: &dyn Store, user: &User, force: bool, doing: &str) -> Result<()> {
    if force || user.role != Role::Admin {
        return Ok(());
    }
    let others = store
        .list_users(Some(&user.org_id))
        .await?
        .into_iter()
        .filter(|u| u.role == Role::Admin && u.id != user.id)
        .count();
    if others == 0 {
        return Err(AccountsError::Invalid(format!(
            "{} is the last admin of their organisation: {doing} would leave nobody to manage \
             its keys. Make another user admin first, or pass --force",
            user.email
        )));
    }
    Ok(())
}

/// Adds a user and returns their access token, which is not kept anywhere.
pub async fn add_user(
    store: &dyn Store,
    org_name: &str,
    email: &str,
    role: Role,
    now: DateTime<Utc>,
) -> Result<(User, Secret)> {
    check_email(email)?;
    let org = org_named(store, org_name).await?;
    let token = SecretFormat::user_token().generate();
    let new = NewUser {
        id: new_id("usr_"),
        org_id: org.id,
        email: email.to_owned(),
        role,
        token_digest: token.digest(),
        created_at: now,
    };
    let user = User {
        id: new.id.clone(),
        org_id: new.org_id.clone(),
        email: new.email.clone(),
        role,
        created_at: now,
        has_token: true,
    };
    let audit = user_event(
        &user,
        AuditAction::UserAdded,
        now,
        serde_json::json!({ "role": role.as_str() }),
    );
    match store.add_user(&new, &audit).await {
        Ok(()) => Ok((user, token)),
        Err(StoreError::Duplicate(_)) => Err(AccountsError::Invalid(format!(
            "a user with email {email:?} already exists (see `keydeck admin users list`)"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A new access token, and the user it was for as they were before.
pub struct TokenReset {
    /// Shown once, kept nowhere.
    pub token: Secret,
    /// The user had a token: not disabled before the reset.
    pub was_enabled: bool,
    /// How many SSH keys they have (working again if they were disabled).
    pub ssh_keys: usize,
}

/// Gives a user a new access token (the old one stops working) and returns it.
pub async fn reset_token(store: &dyn Store, email: &str) -> Result<Secret> {
    Ok(reset_token_at(store, email, Utc::now()).await?.token)
}

/// Gives a user a new access token at `now`, which also enables a disabled
/// user again (their SSH keys work again).
pub async fn reset_token_at(
    store: &dyn Store,
    email: &str,
    now: DateTime<Utc>,
) -> Result<TokenReset> {
    let user = user_named(store, email).await?;
    let ssh_keys = store.list_ssh_keys(Some(&user.id)).await?.len();
    let token = SecretFormat::user_token().generate();
    let audit = user_event(
        &user,
        AuditAction::UserTokenReset,
        now,
        serde_json::json!({}),
    );
    change(
        store,
        &user,
        UserChange::SetToken(Some(token.digest())),
        audit,
    )
    .await?;
    Ok(TokenReset {
        token,
        was_enabled: user.has_token,
        ssh_keys,
    })
}

/// Takes a user's token away, which disables them: their token and their SSH
/// keys are refused (an open SSH session's next request too) until
/// `reset-token` gives them a new token. Returns the user and how many SSH
/// keys they have (all refused now).
pub async fn revoke_token(
    store: &dyn Store,
    email: &str,
    now: DateTime<Utc>,
) -> Result<(User, usize)> {
    let user = user_named(store, email).await?;
    let ssh_keys = store.list_ssh_keys(Some(&user.id)).await?.len();
    let audit = user_event(
        &user,
        AuditAction::UserTokenRevoked,
        now,
        serde_json::json!({ "ssh_keys_refused": ssh_keys }),
    );
    change(store, &user, UserChange::SetToken(None), audit).await?;
    Ok((user, ssh_keys))
}

/// Changes a user's role; `false` if it already was `role` (nothing written).
pub async fn set_role(
    store: &dyn Store,
    email: &str,
    role: Role,
    force: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let user = user_named(store, email).await?;
    if user.role == role {
        return Ok(false);
    }
    if role != Role::Admin {
        keep_an_admin(store, &user, force, "demoting them").await?;
    }
    let audit = user_event(
        &user,
        AuditAction::UserRoleChanged,
        now,
        serde_json::json!({ "from": user.role.as_str(), "to": role.as_str() }),
    );
    change(store, &user, UserChange::SetRole(role), audit).await?;
    Ok(true)
}

/// Removes a user: their token stops working at once. Their row stays (marked
/// removed) so that the audit log and `created_by` still name them; the keys
/// they created keep working.
pub async fn remove_user(
    store: &dyn Store,
    email: &str,
    force: bool,
    now: DateTime<Utc>,
) -> Result<User> {
    let user = user_named(store, email).await?;
    keep_an_admin(store, &user, force, "removing them").await?;
    let audit = user_event(
        &user,
        AuditAction::UserRemoved,
        now,
        serde_json::json!({ "role": user.role.as_str() }),
    );
    change(store, &user, UserChange::Remove { at: now }, audit).await?;
    Ok(user)
}

/// A user as `users list` shows them: with how many SSH keys they have.
pub struct UserListing {
    pub user: User,
    /// The organisation's name (its id if it has none on record).
    pub org_name: String,
    /// Refused while the user is disabled (token revoked).
    pub ssh_keys: usize,
}

/// Current users, of one organisation or all, each with their SSH key count.
pub async fn list_users(store: &dyn Store, org_name: Option<&str>) -> Result<Vec<UserListing>> {
    let org_id = match org_name {
        Some(name) => Some(org_named(store, name).await?.id),
        None => None,
    };
    let org_names: std::collections::HashMap<String, String> = list_orgs(store)
        .await?
        .into_iter()
        .map(|org| (org.id, org.name))
        .collect();
    let mut ssh_keys = std::collections::HashMap::<String, usize>::new();
    for key in store.list_ssh_keys(None).await? {
        *ssh_keys.entry(key.user_id).or_default() += 1;
    }
    Ok(store
        .list_users(org_id.as_deref())
        .await?
        .into_iter()
        .map(|user| UserListing {
            ssh_keys: ssh_keys.get(&user.id).copied().unwrap_or(0),
            org_name: org_names
                .get(&user.org_id)
                .cloned()
                .unwrap_or_else(|| user.org_id.clone()),
            user,
        })
        .collect())
}
