//! `keydeck admin`: the operator commands' clap dispatch and everything they
//! print (tokens alone on stdout, notes on stderr); the work itself is
//! [`crate::accounts`]'s.

use chrono::{DateTime, Utc};

use super::{AdminCommand, OrgCommand, UserCommand};
use crate::accounts::{self, ssh_keys, AccountsError, Result};
use crate::clock::Clock;
use crate::key::ssh::KEY_LINE_MAX;
use crate::store::{SshKey, Store};

/// Runs one `keydeck admin` command, printing to stdout (tokens) and stderr (notes).
pub async fn run(command: AdminCommand, store: &dyn Store, clock: &dyn Clock) -> Result<()> {
    let now = clock.now();
    match command {
        AdminCommand::Orgs(command) => run_orgs(command, store, now).await,
        AdminCommand::Users(command) => run_users(command, store, now).await,
        AdminCommand::Seed { org, count } => {
            let n = accounts::seed(store, &org, count, clock).await?;
            eprintln!("created {n} demo keys in {org}");
            Ok(())
        }
    }
}

/// `keydeck admin orgs …`.
async fn run_orgs(command: OrgCommand, store: &dyn Store, now: DateTime<Utc>) -> Result<()> {
    match command {
        OrgCommand::Add { name, plan } => {
            let org = accounts::add_org(store, &name, plan, now).await?;
            println!("{}\t{}\t{}", org.id, org.name, org.plan.as_str());
        }
        OrgCommand::List => {
            println!("{:<26} {:<24} {:<5} CREATED", "ID", "NAME", "PLAN");
            for org in accounts::list_orgs(store).await? {
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
            accounts::set_plan(store, &name, plan).await?;
            eprintln!("organisation {name} is now on the {} plan", plan.as_str());
        }
    }
    Ok(())
}

/// `keydeck admin users …`.
async fn run_users(command: UserCommand, store: &dyn Store, now: DateTime<Utc>) -> Result<()> {
    match command {
        UserCommand::Add { org, email, role } => {
            let (user, token) = accounts::add_user(store, &org, &email, role, now).await?;
            eprintln!(
                "Added {} ({}) to {org}. Their access token, shown this once:",
                user.email,
                user.role.as_str()
            );
            println!("{}", token.expose());
        }
        UserCommand::List { org } => print_users(store, org.as_deref()).await?,
        UserCommand::ResetToken { email } => print_reset_token(store, &email, now).await?,
        UserCommand::RevokeToken { email } => {
            let (_, ssh_keys) = accounts::revoke_token(store, &email, now).await?;
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
            if accounts::set_role(store, &email, role, force, now).await? {
                eprintln!("{email} is now {}", role.as_str());
            } else {
                eprintln!("{email} already is {}; nothing changed", role.as_str());
            }
        }
        UserCommand::Remove { email, force } => {
            accounts::remove_user(store, &email, force, now).await?;
            eprintln!(
                "Removed {email}: their access token no longer works. The keys they created keep working."
            );
        }
        UserCommand::AddSshKey { email, key } => {
            print_add_ssh_key(store, &email, &key, now).await?
        }
        UserCommand::ListSshKeys { email } => {
            let keys = ssh_keys::list_ssh_keys(store, email.as_deref()).await?;
            print!("{}", ssh_table(&keys));
        }
        UserCommand::RemoveSshKey { email, fingerprint } => {
            ssh_keys::remove_ssh_key(store, &email, &fingerprint, now).await?;
            eprintln!("Removed {fingerprint} from {email}: connections with it are refused.");
        }
    }
    Ok(())
}

/// `users list`: one line per user, with their token's state and SSH keys.
async fn print_users(store: &dyn Store, org: Option<&str>) -> Result<()> {
    let users = accounts::list_users(store, org).await?;
    println!(
        "{:<24} {:<32} {:<6} {:<7} {:<10} ORG",
        "ID", "EMAIL", "ROLE", "TOKEN", "SSH"
    );
    let mut disabled = false;
    for accounts::UserListing {
        user: u,
        org_name,
        ssh_keys,
    } in users
    {
        disabled |= !u.has_token;
        println!(
            "{:<24} {:<32} {:<6} {:<7} {:<10} {}",
            u.id,
            u.email,
            u.role.as_str(),
            if u.has_token { "active" } else { "revoked" },
            ssh_column(ssh_keys, u.has_token),
            org_name
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
    let accounts::TokenReset {
        token,
        was_enabled,
        ssh_keys,
    } = accounts::reset_token_at(store, email, now).await?;
    if was_enabled {
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
    let text = read_key_arg(key)?;
    let key = ssh_keys::add_ssh_key(store, email, &text, now).await?;
    if accounts::user_named(store, email).await?.has_token {
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

/// The key text `KEY` stands for: `-` reads standard input, a line that
/// looks like a key is the key, anything else is a path to a `.pub` file.
fn read_key_arg(arg: &str) -> Result<String> {
    use std::io::Read;
    let limited = |reader: &mut dyn Read, what: &str| -> Result<String> {
        let mut text = String::new();
        reader
            .take(KEY_LINE_MAX as u64 + 1)
            .read_to_string(&mut text)
            .map_err(|e| AccountsError::Invalid(format!("cannot read {what}: {e}")))?;
        Ok(text)
    };
    if arg == "-" {
        return limited(&mut std::io::stdin().lock(), "standard input");
    }
    if arg.split_whitespace().nth(1).is_some() {
        return Ok(arg.to_owned());
    }
    let mut file = std::fs::File::open(arg).map_err(|e| {
        AccountsError::Invalid(format!(
            "{arg:?} is neither a public key line nor a readable file: {e}"
        ))
    })?;
    limited(&mut file, arg)
}

/// The table `list-ssh-keys` prints.
fn ssh_table(keys: &[SshKey]) -> String {
    let mut out = format!(
        "{:<32} {:<51} {:<19} {:<19} COMMENT\n",
        "EMAIL", "FINGERPRINT", "ADDED", "LAST USED"
    );
    let time = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    for k in keys {
        out.push_str(&format!(
            "{:<32} {:<51} {:<19} {:<19} {}\n",
            k.user_email,
            k.fingerprint,
            time(k.added_at),
            k.last_used_at.map_or_else(|| "never".to_owned(), time),
            k.comment
        ));
    }
    out
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
