//! `keydeck policy show / set` (also over SSH): the organisation's key policy
//! for scripts and admins; `set` shows what changes and asks first (`--yes`
//! for scripts), `set --dry-run` lists the keys a new policy would not accept.

use serde::Serialize;

use super::console::note;
use super::output::{self, Cell};
use super::{prompt, CliError};
use crate::api::ApiKey;
use crate::cli::{MaxLifetime, PolicyCommand, PolicySetArgs};
use crate::client::Client;
use crate::key::policy::Policy;
use crate::key::KeyStatus;
use crate::present;

/// Runs one command with `client` (over SSH: the session's own client).
pub async fn run_on(command: PolicyCommand, client: &Client) -> Result<(), CliError> {
    match command {
        PolicyCommand::Show { json } => {
            let policy = client.policy().await?;
            show(&policy, json)
        }
        PolicyCommand::Set(args) => set(client, args).await,
    }
}

fn show(policy: &Policy, json: bool) -> Result<(), CliError> {
    if json {
        output::print_json(policy)
    } else {
        output::print(&describe(policy))
    }
}

/// The policy for people: one line per field.
fn describe(policy: &Policy) -> String {
    let days = crate::key::policy::in_days;
    output::fields(
        vec![
            ("Max lifetime", max_lifetime(policy).into()),
            (
                "Expiry",
                rule(policy.require_expiry || policy.max_lifetime_days.is_some()).into(),
            ),
            ("Description", rule(policy.require_description).into()),
            ("Rotate after", days(policy.rotate_after_days).into()),
            (
                "Warn when",
                present::expiring_within(policy.expiring_within_days).into(),
            ),
            ("Unused after", days(policy.unused_after_days).into()),
            ("On leak", on_leak(policy).into()),
        ],
        false,
    )
}

/// `required` or `optional`.
fn rule(on: bool) -> &'static str {
    if on {
        "required"
    } else {
        "optional"
    }
}

/// `90 days`, or `none` for no maximum.
fn max_lifetime(policy: &Policy) -> String {
    policy
        .max_lifetime_days
        .map_or_else(|| "none".to_owned(), crate::key::policy::in_days)
}

/// `1 h`, `10 min`: how long a leaked key works beside its successor.
fn leak_grace(policy: &Policy) -> String {
    present::duration(
        chrono::Duration::seconds(policy.leak_grace_seconds.into()),
        present::SpanUnit::Second..=present::SpanUnit::Hour,
    )
}

/// Each field of the policy for people, one entry per field that `set`
/// changes (`policy show` words a few of them together).
fn settings(policy: &Policy) -> [(&'static str, String); 8] {
    let days = crate::key::policy::in_days;
    let expiry = match (policy.require_expiry, policy.max_lifetime_days) {
        (false, Some(_)) => "required by the max lifetime",
        (on, _) => rule(on),
    };
    [
        ("Max lifetime", max_lifetime(policy)),
        ("Expiry", expiry.to_owned()),
        ("Description", rule(policy.require_description).to_owned()),
        ("Rotate after", days(policy.rotate_after_days)),
        (
            "Warn when",
            present::expiring_within(policy.expiring_within_days),
        ),
        ("Unused after", days(policy.unused_after_days)),
        ("On leak", policy.on_leak.as_str().to_owned()),
        ("Leak grace", leak_grace(policy)),
    ]
}

/// The fields that differ from `old` to `new`, as `label  old → new` lines.
fn changes(old: &Policy, new: &Policy) -> String {
    let rows = settings(old)
        .into_iter()
        .zip(settings(new))
        .filter(|((_, was), (_, now))| was != now)
        .map(|((label, was), (_, now))| (label, Cell::from(format!("{was} → {now}"))))
        .collect();
    output::fields(rows, false)
}

/// `revoke`, `flag`, or `rotate (the leaked key works 1 h more)`.
fn on_leak(policy: &Policy) -> String {
    use crate::key::policy::OnLeak;
    match policy.on_leak {
        OnLeak::Rotate => format!("rotate (the leaked key works {} more)", leak_grace(policy)),
        other => other.as_str().to_owned(),
    }
}

/// The current policy with the flags given applied; `None` if no flag changes anything.
fn changed(current: Policy, args: &PolicySetArgs) -> Option<Policy> {
    let mut p = current;
    let mut touched = false;
    if let Some(max) = args.max_lifetime {
        p.max_lifetime_days = match max {
            MaxLifetime::Days(d) => Some(d),
            MaxLifetime::Unlimited => None,
        };
        touched = true;
    }
    for (on, off, field) in [
        (
            args.require_expiry,
            args.no_require_expiry,
            &mut p.require_expiry,
        ),
        (
            args.require_description,
            args.no_require_description,
            &mut p.require_description,
        ),
    ] {
        if on || off {
            *field = on;
            touched = true;
        }
    }
    for (given, field) in [
        (args.rotate_after, &mut p.rotate_after_days),
        (args.expiring_within, &mut p.expiring_within_days),
        (args.unused_after, &mut p.unused_after_days),
    ] {
        if let Some(days) = given {
            *field = days;
            touched = true;
        }
    }
    if let Some(on_leak) = args.on_leak {
        p.on_leak = on_leak;
        touched = true;
    }
    if let Some(grace) = args.leak_grace {
        p.leak_grace_seconds = grace;
        touched = true;
    }
    touched.then_some(p)
}

async fn set(client: &Client, args: PolicySetArgs) -> Result<(), CliError> {
    let current = client.policy().await?;
    let new = match changed(current, &args) {
        Some(new) => new,
        None if args.dry_run => current,
        None => {
            return Err(CliError::usage(
                "nothing to change: pass at least one of --max-lifetime, --require-expiry, \
                 --require-description (or their --no- forms), --rotate-after, \
                 --expiring-within, --unused-after, --on-leak, --leak-grace",
            ))
        }
    };
    if let Some((field, message)) = new.invalid_field() {
        return Err(CliError::usage(format!("{field}: {message}")));
    }
    if args.dry_run {
        return dry_run(client, &new, args.json).await;
    }
    if new == current {
        note!("The policy already is this; nothing changed.");
        return show(&current, args.json);
    }
    note!(
        "The policy changes:\n{}",
        changes(&current, &new).trim_end()
    );
    approved(args.yes)?;
    let now_in_force = client.set_policy(&new).await?;
    note!("Policy updated. Existing keys are not changed; new keys and rotations follow it.");
    show(&now_in_force, args.json)
}

/// Goes on with the change if `--yes`, or if the person at the terminal says
/// yes; refuses when no one can answer (a script, a command over SSH).
fn approved(yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !prompt::interactive() {
        return Err(CliError::usage(
            "refusing to change the policy without confirmation: standard input is not a \
             terminal. Nothing was changed; pass --yes to apply it.",
        ));
    }
    if prompt::confirm("Apply?")? {
        Ok(())
    } else {
        Err(CliError::usage("cancelled; nothing was changed"))
    }
}

/// An active key the policy would not accept, and why: each rule with its
/// numbers ("lifetime 150 days > 90").
#[derive(Debug, Serialize)]
struct NonCompliant<'a> {
    id: &'a str,
    name: &'a str,
    prefix: &'a str,
    why: Vec<String>,
}

/// The active keys `policy` would not accept if they were made now as they
/// were then; prints them and changes nothing.
async fn dry_run(client: &Client, policy: &Policy, json: bool) -> Result<(), CliError> {
    let keys = client.list_all_keys(Some(KeyStatus::Active)).await?;
    let found = non_compliant(&keys, policy);
    note!(
        "Dry run: {} of {} active keys would not comply with this policy; nothing was changed.",
        found.len(),
        keys.len()
    );
    if json {
        return output::print_json(&found);
    }
    if found.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<Cell>> = found
        .iter()
        .map(|k| {
            vec![
                output::truncate(k.name, 40),
                format!("{}...", k.prefix).into(),
                k.why.join("; ").into(),
            ]
        })
        .collect();
    output::print(&output::table(&["NAME", "PREFIX", "WHY"], &rows, false))
}

fn non_compliant<'a>(keys: &'a [ApiKey], policy: &Policy) -> Vec<NonCompliant<'a>> {
    keys.iter()
        .filter(|k| k.status == KeyStatus::Active)
        .filter_map(|k| {
            let why = policy.reasons(k.created_at, k.expires_at, &k.description);
            (!why.is_empty()).then_some(NonCompliant {
                id: &k.id,
                name: &k.name,
                prefix: &k.prefix,
                why,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> PolicySetArgs {
        PolicySetArgs {
            max_lifetime: None,
            require_expiry: false,
            no_require_expiry: false,
            require_description: false,
            no_require_description: false,
            rotate_after: None,
            expiring_within: None,
            unused_after: None,
            on_leak: None,
            leak_grace: None,
            dry_run: false,
            yes: false,
            json: false,
        }
    }

    #[test]
    fn flags_left_out_keep_their_value() {
        let current = Policy {
            require_description: true,
            rotate_after_days: 60,
            ..Policy::default()
        };
        assert_eq!(changed(current, &args()), None);
        let new = changed(
            current,
            &PolicySetArgs {
                max_lifetime: Some(MaxLifetime::Days(90)),
                no_require_description: true,
                ..args()
            },
        )
        .unwrap();
        assert_eq!(new.max_lifetime_days, Some(90));
        assert!(!new.require_description);
        assert_eq!(new.rotate_after_days, 60);
        let unlimited = changed(
            new,
            &PolicySetArgs {
                max_lifetime: Some(MaxLifetime::Unlimited),
                ..args()
            },
        )
        .unwrap();
        assert_eq!(unlimited.max_lifetime_days, None);
    }

    /// What `set` shows before it asks: only the fields that change, old → new.
    #[test]
    fn the_changes_are_the_fields_that_differ_old_to_new() {
        let old = Policy {
            max_lifetime_days: Some(90),
            ..Policy::default()
        };
        let new = Policy {
            max_lifetime_days: None,
            rotate_after_days: 60,
            leak_grace_seconds: 600,
            ..old
        };
        let text = changes(&old, &new);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "Max lifetime 90 days → none",
                "Expiry       required by the max lifetime → optional",
                "Rotate after 90 days → 60 days",
                "Leak grace   1 h → 10 min",
            ],
            "{text}"
        );
        assert_eq!(changes(&old, &old), "");
    }

    #[test]
    fn the_description_names_every_field() {
        let text = describe(&Policy {
            max_lifetime_days: Some(90),
            ..Policy::default()
        });
        assert!(text.contains("Max lifetime 90 days"), "{text}");
        assert!(text.contains("Expiry       required"), "{text}");
        assert!(text.contains("Unused after 30 days"), "{text}");
    }

    /// One wording for the warning window: `policy show` and the summary
    /// line (the UI's, from the same `Summary`) say `expiring within 14d`.
    #[test]
    fn policy_show_and_the_summary_word_the_window_alike() {
        let policy = Policy {
            expiring_within_days: 14,
            ..Policy::default()
        };
        let phrase = present::expiring_within(14);
        assert_eq!(phrase, "expiring within 14d");
        let text = describe(&policy);
        assert!(text.contains(&format!("Warn when    {phrase}")), "{text}");
        assert!(!text.contains("Expiring in"), "{text}");
        let now = chrono::Utc::now();
        let key = ApiKey {
            id: "key_a".into(),
            name: "Soon".into(),
            description: "".into(),
            prefix: "eg_live_1a2B".into(),
            scopes: vec!["sessions:read".into()].into(),
            status: KeyStatus::Active,
            created_at: now - chrono::Duration::days(1),
            created_by: "ops@example.com".into(),
            expires_at: Some(now + chrono::Duration::days(10)),
            last_used_at: Some(now),
            revoked_at: None,
            revoked_by: None,
            replaced_by: None,
            replaces: None,
            exposure: None,
            secret_pending: false,
            refusals: None,
            health: None,
        };
        let summary = crate::key::health::Summary::of(&[key], &policy, now).to_string();
        assert!(summary.contains(&format!("1 {phrase}")), "{summary}");
    }
}
