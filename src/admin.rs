//! `keydeck admin`: operator commands that work on the service's database directly.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use crate::cli::{AdminCommand, OrgCommand, UserCommand};
use crate::clock::Clock;
use crate::key::{Secret, SecretFormat, SCOPES};
use crate::service::new_id;
use crate::service::store::{
    AuditEvent, NewKey, NewUser, Org, Plan, Role, Store, StoreError, User,
};

pub const ORG_NAME_MAX: usize = 64;
pub const EMAIL_MAX: usize = 254;

#[derive(Debug)]
pub enum AdminError {
    Invalid(String),
    NotFound(String),
    Store(StoreError),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(m) | Self::NotFound(m) => f.write_str(m),
            Self::Store(StoreError::Duplicate(what)) => write!(f, "already exists ({what})"),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

type Result<T> = std::result::Result<T, AdminError>;

fn check_org_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= ORG_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then_some(()).ok_or_else(|| {
        AdminError::Invalid(format!(
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
        AdminError::Invalid(format!(
            "email must look like name@host, at most {EMAIL_MAX} characters"
        ))
    })
}

pub async fn org_named(store: &dyn Store, name: &str) -> Result<Org> {
    store.org_by_name(name).await?.ok_or_else(|| {
        AdminError::NotFound(format!(
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
    let user = NewUser {
        id: new_id("usr_"),
        org_id: org.id,
        email: email.to_owned(),
        role,
        token_digest: token.digest(),
        created_at: now,
    };
    store.create_user(&user).await?;
    let user = User {
        id: user.id,
        org_id: user.org_id,
        email: user.email,
        role,
        created_at: now,
    };
    Ok((user, token))
}

pub async fn reset_token(store: &dyn Store, email: &str) -> Result<Secret> {
    let token = SecretFormat::user_token().generate();
    if store.set_user_token(email, &token.digest()).await? {
        Ok(token)
    } else {
        Err(AdminError::NotFound(format!(
            "no user with email {email:?}"
        )))
    }
}

const DEMO_NAMES: &[(&str, &str)] = &[
    ("CI/CD Pipeline", "Used by GitHub Actions deploy workflow"),
    ("Billing worker", "Nightly invoice export"),
    (
        "Grafana dashboards",
        "Read-only metrics for the ops dashboard",
    ),
    ("Staging smoke tests", ""),
    ("Support console", "Lets support staff look up sessions"),
    ("Data warehouse sync", "Hourly export to the warehouse"),
    (
        "Mobile backend",
        "Session management for the iOS and Android apps",
    ),
    ("Audit exporter", "Ships audit logs to the SIEM"),
    ("Partner integration", "Acme Corp's read access"),
    ("Load test", "k6 runs before each release"),
];

/// Creates `count` demo keys in `org_name`: mostly active, some expired, some
/// revoked, with varied scopes and last-used times. Their secrets are discarded.
pub async fn seed(store: &dyn Store, org_name: &str, count: u32, clock: &dyn Clock) -> Result<u32> {
    let org = org_named(store, org_name).await?;
    let format = SecretFormat::default();
    let now = clock.now();
    let mut uses = Vec::new();
    for i in 0..count {
        let (name, description) = DEMO_NAMES[i as usize % DEMO_NAMES.len()];
        let name = if count as usize > DEMO_NAMES.len() {
            format!("{name} #{}", i + 1)
        } else {
            name.to_owned()
        };
        let age = Duration::hours(i64::from(i) * 7 + 3);
        let created_at = now - age;
        let scopes: Vec<String> = match i % 4 {
            0 => vec!["full_access".into()],
            1 => vec!["sessions:read".into(), "sessions:write".into()],
            2 => vec!["resources:read".into()],
            _ => vec!["audit_logs:read".into(), "resources:read".into()],
        };
        let expires_at = match i % 5 {
            // Expired: its expiry passed a day ago.
            3 => Some(now - Duration::days(1)),
            0 | 2 => Some(now + Duration::days(90)),
            _ => None,
        };
        let secret = format.generate();
        let key = NewKey {
            id: new_id("key_"),
            org_id: org.id.clone(),
            name,
            description: description.to_owned(),
            prefix: format.display_prefix(&secret),
            digest: secret.digest(),
            scopes: scopes
                .iter()
                .filter(|s| SCOPES.iter().any(|c| c.id == s.as_str()))
                .cloned()
                .collect(),
            created_at,
            created_by: "seed@keydeck".into(),
            expires_at,
        };
        let audit = AuditEvent {
            org_id: org.id.clone(),
            at: created_at,
            actor_kind: "user".into(),
            actor_id: "seed".into(),
            actor_name: "seed@keydeck".into(),
            action: "api_key.created".into(),
            api_key_id: key.id.clone(),
            remote_addr: None,
            details: serde_json::json!({ "name": key.name, "seeded": true }),
        };
        store.create_key(&key, None, &audit).await?;
        if i % 7 == 4 {
            let revoke = AuditEvent {
                action: "api_key.revoked".into(),
                at: now - age / 2,
                ..audit
            };
            store
                .revoke_key(&org.id, &key.id, now - age / 2, "seed@keydeck", &revoke)
                .await?;
        }
        if i % 3 != 2 {
            uses.push((key.id, now - Duration::minutes(i64::from(i % 50) * 13 + 1)));
        }
    }
    store.record_last_used(&uses).await?;
    Ok(count)
}

/// Runs one `keydeck admin` command, printing to stdout (tokens) and stderr (notes).
pub async fn run(command: AdminCommand, store: &dyn Store, clock: &dyn Clock) -> Result<()> {
    let now = clock.now();
    match command {
        AdminCommand::Orgs(OrgCommand::Add { name, plan }) => {
            let org = add_org(store, &name, plan, now).await?;
            println!("{}\t{}\t{}", org.id, org.name, org.plan.as_str());
        }
        AdminCommand::Orgs(OrgCommand::List) => {
            println!("{:<26} {:<24} {:<5} CREATED", "ID", "NAME", "PLAN");
            for org in store.list_orgs().await? {
                println!(
                    "{:<26} {:<24} {:<5} {}",
                    org.id,
                    org.name,
                    org.plan.as_str(),
                    org.created_at.format("%Y-%m-%d %H:%M UTC")
                );
            }
        }
        AdminCommand::Orgs(OrgCommand::SetPlan { name, plan }) => {
            let org = org_named(store, &name).await?;
            store.set_plan(&org.id, plan).await?;
            eprintln!("organisation {name} is now on the {} plan", plan.as_str());
        }
        AdminCommand::Users(UserCommand::Add { org, email, role }) => {
            let (user, token) = add_user(store, &org, &email, role, now).await?;
            eprintln!(
                "Added {} ({}) to {org}. Their access token, shown this once:",
                user.email,
                user.role.as_str()
            );
            println!("{}", token.expose());
        }
        AdminCommand::Users(UserCommand::List { org }) => {
            let org_id = match org {
                Some(name) => Some(org_named(store, &name).await?.id),
                None => None,
            };
            println!("{:<24} {:<32} {:<6} ORG", "ID", "EMAIL", "ROLE");
            for u in store.list_users(org_id.as_deref()).await? {
                println!(
                    "{:<24} {:<32} {:<6} {}",
                    u.id,
                    u.email,
                    u.role.as_str(),
                    u.org_id
                );
            }
        }
        AdminCommand::Users(UserCommand::ResetToken { email }) => {
            let token = reset_token(store, &email).await?;
            eprintln!(
                "New access token for {email}, shown this once (the old one no longer works):"
            );
            println!("{}", token.expose());
        }
        AdminCommand::Seed { org, count } => {
            let n = seed(store, &org, count, clock).await?;
            eprintln!("created {n} demo keys in {org}");
        }
    }
    Ok(())
}
