//! `keydeck admin`: operator commands that work on the service's database directly.
//!
//! Every change to a user is written to their organisation's audit log, with
//! the operator (`$USER@HOST`, actor type `operator`) as the actor.

use chrono::{DateTime, Duration, Utc};

use crate::audit_action::AuditAction;
use crate::cli::{AdminCommand, OrgCommand, UserCommand};
use crate::clock::Clock;
use crate::key::{Secret, SecretFormat, SCOPES};
use crate::service::new_id;
use crate::store::{
    AuditEvent, NewKey, NewUser, Org, Plan, Role, SeedKey, Store, StoreError, User, UserChange,
};

pub mod ssh_keys;

pub const ORG_NAME_MAX: usize = 64;
pub const EMAIL_MAX: usize = 254;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
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
        AdminError::NotFound(format!(
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
        Err(AdminError::NotFound(format!(
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
        return Err(AdminError::Invalid(format!(
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
        Err(StoreError::Duplicate(_)) => Err(AdminError::Invalid(format!(
            "a user with email {email:?} already exists (see `keydeck admin users list`)"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Gives a user a new access token (the old one stops working) and returns it.
pub async fn reset_token(store: &dyn Store, email: &str) -> Result<Secret> {
    reset_token_at(store, email, Utc::now()).await
}

pub async fn reset_token_at(store: &dyn Store, email: &str, now: DateTime<Utc>) -> Result<Secret> {
    let user = user_named(store, email).await?;
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
    Ok(token)
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

/// `1 SSH key`, `2 SSH keys`.
fn ssh_keys_phrase(n: usize) -> String {
    format!("{n} SSH key{}", if n == 1 { "" } else { "s" })
}

/// The `SSH` column of `users list`: `-` without keys, else how many, and
/// `refused` while the user is disabled (token revoked).
fn ssh_column(keys: usize, has_token: bool) -> String {
    match (keys, has_token) {
        (0, _) => "-".to_owned(),
        (1, true) => "1 key".to_owned(),
        (n, true) => format!("{n} keys"),
        (n, false) => format!("{n} refused"),
    }
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

/// Integrations demo keys are named after, with what they do.
const DEMO_NAMES: &[(&str, &str)] = &[
    ("GitHub Actions deploy", "Deploys main to production"),
    ("Datadog agent", "Ships service metrics"),
    ("Stripe webhook relay", "Forwards Stripe events to billing"),
    ("Terraform Cloud", "Provisions infrastructure"),
    (
        "Grafana dashboards",
        "Read-only metrics for the ops dashboard",
    ),
    ("Billing worker", "Nightly invoice export"),
    ("Snowflake sync", "Hourly export to the warehouse"),
    ("PagerDuty integration", "Opens incidents from alerts"),
    ("Slack bot", "Posts key events to #security"),
    ("Zapier automation", ""),
    ("Segment source", "Product analytics events"),
    ("CircleCI pipeline", "Runs the integration suite"),
    (
        "Mobile backend",
        "Session management for the iOS and Android apps",
    ),
    ("Support console", "Lets support staff look up sessions"),
    ("Splunk forwarder", "Ships audit logs to the SIEM"),
    ("Okta SCIM provisioning", "Syncs users from the directory"),
    ("Vercel preview builds", ""),
    ("Sentry release hook", "Marks releases in Sentry"),
    ("Airflow DAGs", "Batch jobs in the data platform"),
    ("Staging smoke tests", "Runs after every staging deploy"),
    ("k6 load test", "Runs before each release"),
    ("Partner API (Acme Corp)", "Acme Corp's read access"),
    ("Zendesk app", "Shows sessions next to tickets"),
    ("Jenkins nightly", "Legacy nightly build"),
    ("Fivetran connector", "Loads resources into the warehouse"),
    ("Retool admin panel", "Internal tools"),
    ("HubSpot sync", "Keeps customer records in step"),
    ("Auth0 migration", "One-off user import"),
];

/// Scope sets demo keys get, the narrow ones most often (as in practice).
const DEMO_SCOPES: &[&[&str]] = &[
    &["resources:read"],
    &["sessions:read"],
    &["sessions:read", "sessions:write"],
    &["audit_logs:read"],
    &["audit_logs:read", "resources:read"],
    &["resources:read", "sessions:read"],
    &["full_access"],
];

/// Who created and revoked demo keys.
const DEMO_PEOPLE: &[&str] = &[
    "maya@example.com",
    "jonas@example.com",
    "priya@example.com",
    "sam@example.com",
];

/// Demo keys are created within this many days before now.
pub const SEED_MAX_AGE_DAYS: i64 = 3 * 365;

/// A small PRNG (SplitMix64) seeded from the OS: demo data needs spread, not secrecy.
struct Spread(u64);

impl Spread {
    fn from_os() -> Self {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).expect("the OS random number generator failed");
        Self(u64::from_le_bytes(seed))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the bias is negligible for demo data).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len() as u64) as usize]
    }
}

/// A time `fraction` of the way from `from` to `to`.
fn between(from: DateTime<Utc>, to: DateTime<Utc>, fraction: f64) -> DateTime<Utc> {
    let span = (to - from).num_milliseconds().max(0) as f64;
    from + Duration::milliseconds((span * fraction) as i64)
}

/// When a demo key was created, expires, was revoked (and by whom) and last used.
struct DemoHistory {
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked: Option<(DateTime<Utc>, String)>,
    last_used_at: Option<DateTime<Utc>>,
}

/// A demo key's history. `slot` picks its status: 0-6 of every ten active,
/// 7-8 expired, 9 revoked.
fn demo_history(rng: &mut Spread, slot: u32, now: DateTime<Utc>) -> DemoHistory {
    let max_age_ms = (SEED_MAX_AGE_DAYS * 86_400_000) as u64;
    // At least a minute old, so that its history fits before now.
    let created_at = now - Duration::milliseconds((60_000 + rng.below(max_age_ms - 60_000)) as i64);
    let mut expires_at = match rng.below(2) {
        0 => None,
        _ => Some(now + Duration::days(7 + rng.below(358) as i64)),
    };
    let mut revoked = None;
    // Its last moment of use: now, or when it expired or was revoked.
    let mut end = now;
    match slot {
        7 | 8 => {
            let at = between(
                created_at,
                now - Duration::seconds(1),
                0.05 + 0.95 * rng.unit(),
            );
            expires_at = Some(at);
            end = at;
        }
        9 => {
            let at = between(created_at, now, 0.05 + 0.95 * rng.unit());
            revoked = Some((at, rng.pick(DEMO_PEOPLE).to_string()));
            end = at;
        }
        _ => {}
    }
    // A quarter never used; the rest last used shortly before their end.
    let last_used_at =
        (rng.below(4) != 0).then(|| between(created_at, end, 1.0 - rng.unit().powi(4)).min(end));
    DemoHistory {
        created_at,
        expires_at,
        revoked,
        last_used_at,
    }
}

/// One demo key, its history and audit entries (see [`demo_history`]).
fn demo_key(
    rng: &mut Spread,
    org_id: &str,
    (name, description): (String, &str),
    slot: u32,
    now: DateTime<Utc>,
    format: &SecretFormat,
    audit: &mut Vec<AuditEvent>,
) -> SeedKey {
    let DemoHistory {
        created_at,
        expires_at,
        revoked,
        last_used_at,
    } = demo_history(rng, slot, now);
    let secret = format.generate();
    let scopes = rng
        .pick(DEMO_SCOPES)
        .iter()
        .filter(|s| SCOPES.iter().any(|c| c.id == **s))
        .map(|s| (*s).to_owned())
        .collect();
    let created_by = (*rng.pick(DEMO_PEOPLE)).to_owned();
    let key = NewKey {
        id: new_id("key_"),
        org_id: org_id.to_owned(),
        name,
        description: description.to_owned(),
        prefix: format.display_prefix(&secret),
        digest: secret.digest(),
        scopes,
        created_at,
        created_by: created_by.clone(),
        expires_at,
    };
    let created = AuditEvent {
        org_id: org_id.to_owned(),
        at: created_at,
        actor_kind: "user".into(),
        actor_id: "seed".into(),
        actor_name: created_by,
        action: AuditAction::ApiKeyCreated.to_string(),
        api_key_id: key.id.clone(),
        remote_addr: None,
        details: serde_json::json!({ "name": key.name, "seeded": true }),
    };
    if let Some((at, by)) = &revoked {
        audit.push(AuditEvent {
            at: *at,
            actor_name: by.clone(),
            action: AuditAction::ApiKeyRevoked.to_string(),
            ..created.clone()
        });
    }
    audit.push(created);
    SeedKey {
        key,
        last_used_at,
        revoked,
    }
}

/// Creates `count` demo keys in `org_name` in one transaction: created within
/// the last three years, 70 % active, 20 % expired and 10 % revoked, with
/// varied scopes and last use, named after real-looking integrations. Their
/// secrets are discarded.
pub async fn seed(store: &dyn Store, org_name: &str, count: u32, clock: &dyn Clock) -> Result<u32> {
    let org = org_named(store, org_name).await?;
    let format = SecretFormat::default();
    let now = clock.now();
    let mut rng = Spread::from_os();
    let mut keys = Vec::with_capacity(count as usize);
    let mut audit = Vec::with_capacity(count as usize * 11 / 10);
    for i in 0..count {
        let (name, description) = DEMO_NAMES[i as usize % DEMO_NAMES.len()];
        let name = if count as usize > DEMO_NAMES.len() {
            format!("{name} #{}", i as usize / DEMO_NAMES.len() + 1)
        } else {
            name.to_owned()
        };
        let key = demo_key(
            &mut rng,
            &org.id,
            (name, description),
            i % 10,
            now,
            &format,
            &mut audit,
        );
        keys.push(key);
    }
    // The audit log reads in insertion order: oldest entries first.
    audit.sort_by_key(|a| a.at);
    store.insert_seed_keys(&keys, &audit).await?;
    Ok(count)
}

/// Runs one `keydeck admin` command, printing to stdout (tokens) and stderr (notes).
pub async fn run(command: AdminCommand, store: &dyn Store, clock: &dyn Clock) -> Result<()> {
    let now = clock.now();
    match command {
        AdminCommand::Orgs(command) => run_orgs(command, store, now).await,
        AdminCommand::Users(command) => run_users(command, store, now).await,
        AdminCommand::Seed { org, count } => {
            let n = seed(store, &org, count, clock).await?;
            eprintln!("created {n} demo keys in {org}");
            Ok(())
        }
    }
}

/// `keydeck admin orgs …`.
async fn run_orgs(command: OrgCommand, store: &dyn Store, now: DateTime<Utc>) -> Result<()> {
    match command {
        OrgCommand::Add { name, plan } => {
            let org = add_org(store, &name, plan, now).await?;
            println!("{}\t{}\t{}", org.id, org.name, org.plan.as_str());
        }
        OrgCommand::List => {
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
        OrgCommand::SetPlan { name, plan } => {
            let org = org_named(store, &name).await?;
            store.set_plan(&org.id, plan).await?;
            eprintln!("organisation {name} is now on the {} plan", plan.as_str());
        }
    }
    Ok(())
}

/// `keydeck admin users …`.
async fn run_users(command: UserCommand, store: &dyn Store, now: DateTime<Utc>) -> Result<()> {
    match command {
        UserCommand::Add { org, email, role } => {
            let (user, token) = add_user(store, &org, &email, role, now).await?;
            eprintln!(
                "Added {} ({}) to {org}. Their access token, shown this once:",
                user.email,
                user.role.as_str()
            );
            println!("{}", token.expose());
        }
        UserCommand::List { org } => print_users(store, org).await?,
        UserCommand::ResetToken { email } => print_reset_token(store, &email, now).await?,
        UserCommand::RevokeToken { email } => {
            let (_, ssh_keys) = revoke_token(store, &email, now).await?;
            let ssh = match ssh_keys {
                0 => String::new(),
                n => format!(
                    " Their {} {} refused too, and open SSH sessions stop at their next request.",
                    ssh_keys_phrase(n),
                    if n == 1 { "is" } else { "are" }
                ),
            };
            eprintln!(
                "{email} is disabled: their access token no longer works.{ssh} \
                 `keydeck admin users reset-token {email}` gives them a new token and lets them in again."
            );
        }
        UserCommand::SetRole { email, role, force } => {
            if set_role(store, &email, role, force, now).await? {
                eprintln!("{email} is now {}", role.as_str());
            } else {
                eprintln!("{email} already is {}; nothing changed", role.as_str());
            }
        }
        UserCommand::Remove { email, force } => {
            remove_user(store, &email, force, now).await?;
            eprintln!(
                "Removed {email}: their access token no longer works. The keys they created keep working."
            );
        }
        UserCommand::AddSshKey { email, key } => {
            print_add_ssh_key(store, &email, &key, now).await?
        }
        UserCommand::ListSshKeys { email } => {
            let keys = ssh_keys::list_ssh_keys(store, email.as_deref()).await?;
            print!("{}", ssh_keys::table(&keys));
        }
        UserCommand::RemoveSshKey { email, fingerprint } => {
            ssh_keys::remove_ssh_key(store, &email, &fingerprint, now).await?;
            eprintln!("Removed {fingerprint} from {email}: connections with it are refused.");
        }
    }
    Ok(())
}

/// `users list`: one line per user, with their token's state and SSH keys.
async fn print_users(store: &dyn Store, org: Option<String>) -> Result<()> {
    let org_id = match org {
        Some(name) => Some(org_named(store, &name).await?.id),
        None => None,
    };
    let mut ssh_keys = std::collections::HashMap::<String, usize>::new();
    for key in store.list_ssh_keys(None).await? {
        *ssh_keys.entry(key.user_id).or_default() += 1;
    }
    println!(
        "{:<24} {:<32} {:<6} {:<7} {:<10} ORG",
        "ID", "EMAIL", "ROLE", "TOKEN", "SSH"
    );
    let mut disabled = false;
    for u in store.list_users(org_id.as_deref()).await? {
        disabled |= !u.has_token;
        println!(
            "{:<24} {:<32} {:<6} {:<7} {:<10} {}",
            u.id,
            u.email,
            u.role.as_str(),
            if u.has_token { "active" } else { "revoked" },
            ssh_column(ssh_keys.get(&u.id).copied().unwrap_or(0), u.has_token),
            u.org_id
        );
    }
    if disabled {
        eprintln!(
            "A user whose token is revoked is disabled: their SSH keys are refused too, \
             until `keydeck admin users reset-token EMAIL`."
        );
    }
    Ok(())
}

/// `users reset-token`: the new token, and whether the user is enabled again.
async fn print_reset_token(store: &dyn Store, email: &str, now: DateTime<Utc>) -> Result<()> {
    let user = user_named(store, email).await?;
    let ssh_keys = store.list_ssh_keys(Some(&user.id)).await?.len();
    let token = reset_token_at(store, email, now).await?;
    if user.has_token {
        eprintln!("New access token for {email}, shown this once (the old one no longer works):");
    } else if ssh_keys > 0 {
        eprintln!(
            "{email} is enabled again: their {} work again. Their new access token, \
             shown this once:",
            ssh_keys_phrase(ssh_keys)
        );
    } else {
        eprintln!("{email} is enabled again. Their new access token, shown this once:");
    }
    println!("{}", token.expose());
    Ok(())
}

/// `users add-ssh-key`: the key added, and whether it lets the user in now.
async fn print_add_ssh_key(
    store: &dyn Store,
    email: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let text = ssh_keys::read_key_arg(key)?;
    let key = ssh_keys::add_ssh_key(store, email, &text, now).await?;
    if user_named(store, email).await?.has_token {
        eprintln!(
            "{email} can now connect over SSH with {} ({}).",
            key.fingerprint, key.algorithm
        );
    } else {
        eprintln!(
            "Added {} ({}) to {email}, who is disabled (token revoked): it is refused \
             until `keydeck admin users reset-token {email}`.",
            key.fingerprint, key.algorithm
        );
    }
    Ok(())
}
