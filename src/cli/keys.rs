//! `keydeck keys list / create / show / revoke / rotate`: the key service's key
//! endpoints for scripts. A new secret alone goes to standard output.

use chrono::{DateTime, Duration, Utc};

use super::console::{self, note};
use super::output::{self, Cell};
use super::{prompt, select, CliError};
use crate::api::{ApiKey, CreateKeyRequest, ScopeInfo};
use crate::cli::{CreateArgs, IssueArgs, KeysCommand, RotateArgs, ShowArgs, TargetArgs};
use crate::client::Client;
use crate::key::health;
use crate::key::policy::Policy;
use crate::key::validate::{description_error, name_error};
use crate::key::{ExpiryError, KeyStatus};
use crate::present::{self, SpanUnit};

/// Runs one command with `client` (over SSH: the session's own client).
pub async fn run_on(command: KeysCommand, client: &Client) -> Result<(), CliError> {
    match command {
        KeysCommand::List(args) => super::list::run(client, args).await,
        KeysCommand::Create(args) => create(client, args).await,
        KeysCommand::Show(args) => show(client, args).await,
        KeysCommand::Revoke(args) => revoke(client, args).await,
        KeysCommand::Rotate(args) => rotate(client, args).await,
        KeysCommand::Issue(args) => issue(client, args).await,
        KeysCommand::Usage(args) => super::usage::key(client, args).await,
    }
}

/// The service's scope catalogue, fetched once per command, for labels. A
/// service that cannot send it leaves the scopes shown by their ids.
async fn catalogue(client: &Client) -> Vec<ScopeInfo> {
    client.scopes().await.unwrap_or_default()
}

async fn create(client: &Client, args: CreateArgs) -> Result<(), CliError> {
    let now = Utc::now();
    let mut problems = Vec::new();
    let catalogue = catalogue(client).await;
    let scopes = scope_ids(&args.scopes, &catalogue, &mut problems);
    if let Some(e) = name_error(&args.name) {
        problems.push(format!("--name: {e}"));
    }
    if let Some(e) = args.description.as_deref().and_then(description_error) {
        problems.push(format!("--description: {e}"));
    }
    let expires_at = match args.expires.as_deref().map(|e| expires_at(e, now)) {
        Some(Ok(at)) => at,
        Some(Err(e)) => {
            problems.push(format!("--expires: {e}"));
            None
        }
        None => None,
    };
    if !problems.is_empty() {
        return Err(CliError::usage(format!(
            "invalid key:\n  {}",
            problems.join("\n  ")
        )));
    }
    let request = CreateKeyRequest {
        name: args.name,
        description: args.description,
        expires_at,
        scopes,
    };
    let created = client.create_key(&request, None).await?;
    if args.json {
        return output::print_json(&created);
    }
    output::print_secret(&created.secret)?;
    let key = &created.api_key;
    note!(
        "Created API key {}; scopes {}; expires {}.",
        output::key_label(key),
        output::printable(&present::scopes_short(&key.scopes, &catalogue)),
        console::display_tz().expiry(key.expires_at)
    );
    note!("Copy your API key now — it will not be shown again.");
    Ok(())
}

/// `--expires`, read in the command's zone. Not a date or a span: the
/// examples, without the form's "leave empty" (here: leave the option out).
fn expires_at(input: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, String> {
    console::display_tz()
        .parse_expiry(input, now)
        .map_err(|e| match e {
            ExpiryError::Unrecognised => {
                "use a date like 2027-01-31 or a span like 7d, 30d, 90d or 1y".to_owned()
            }
            e => e.to_string(),
        })
}

/// The ids of the scopes given to `--scope` by id, label or short label; each
/// unknown one is a problem that suggests the nearest.
fn scope_ids(given: &[String], catalogue: &[ScopeInfo], problems: &mut Vec<String>) -> Vec<String> {
    given
        .iter()
        .filter_map(|s| match present::scope_id(s, catalogue) {
            Ok(id) => Some(id),
            Err(e) => {
                problems.push(format!("--scope: {e}"));
                None
            }
        })
        .collect()
}

async fn show(client: &Client, args: ShowArgs) -> Result<(), CliError> {
    let key = select::find_key_or_named(client, &args.key).await?;
    if args.json {
        return output::print_json(&key);
    }
    let catalogue = catalogue(client).await;
    let policy = super::list::policy(client).await;
    let linked = linked_keys(client, &key).await;
    let shown = details(&key, &linked, &catalogue, &policy, output::stdout_colour());
    output::print(&shown)
}

/// The keys a rotation links this one to (its successor, its predecessor),
/// those the service still finds: `keys show` names them as the TUI does.
async fn linked_keys(client: &Client, key: &ApiKey) -> Vec<ApiKey> {
    let mut found = Vec::new();
    for id in [&key.replaced_by, &key.replaces].into_iter().flatten() {
        if let Ok(linked) = client.get_key(id).await {
            found.push(linked);
        }
    }
    found
}

/// `keys show`: one field a line, every value printable; one line per scope,
/// its name as the table shows it, then its label and id; each health badge
/// with its reason, as the UI's details give them.
fn details(
    key: &ApiKey,
    linked: &[ApiKey],
    catalogue: &[ScopeInfo],
    policy: &Policy,
    colour: bool,
) -> String {
    let now = Utc::now();
    let time = |at| console::display_tz().exact(at);
    let when = |at| present::exact_relative(at, console::display_tz(), now);
    let mut fields: Vec<(&str, Cell)> = vec![
        ("Name", key.name.as_str().into()),
        ("ID", key.id.as_str().into()),
        ("Prefix", format!("{}...", key.prefix).into()),
        ("Status", output::status_cell(key.status)),
    ];
    for (i, label) in present::scope_labels(&key.scopes, catalogue)
        .into_iter()
        .enumerate()
    {
        fields.push((if i == 0 { "Scopes" } else { "" }, label.into()));
    }
    fields.extend([
        (
            "Created",
            format!("{} by {}", when(key.created_at), key.created_by).into(),
        ),
        (
            "Expires",
            present::expires_exact(key, console::display_tz(), now).into(),
        ),
        (
            "Last used",
            key.last_used_at
                .map_or_else(|| "Never".to_owned(), when)
                .into(),
        ),
    ]);
    if let Some(at) = key.revoked_at {
        let by = key.revoked_by.as_deref().unwrap_or("unknown");
        fields.push(("Revoked", format!("{} by {by}", time(at)).into()));
    }
    if let Some(e) = &key.exposure {
        let line = format!("{} by {}, at {}", time(e.at), e.source, e.location);
        fields.push(("Exposed", line.into()));
    }
    if key.secret_pending {
        fields.push(("Secret", "not issued yet (made by the leak policy)".into()));
    }
    for (label, link) in [
        ("Replaced by", &key.replaced_by),
        ("Replaces", &key.replaces),
    ] {
        if let Some(id) = link {
            let found = linked.iter().find(|k| &k.id == id);
            fields.push((label, present::linked_key_named(id, found).into()));
        }
    }
    for (i, badge) in health::badges(key, policy, now).iter().enumerate() {
        let mut reason = health::reason(badge, key, policy, now);
        if badge == health::Badge::NoSecret {
            let issue = format!("keys issue {}", output::printable(&key.id));
            reason = format!(
                "{reason} — run {} {}",
                console::command(&issue),
                health::ISSUE_ACTION
            );
        }
        let line = format!("{}: {reason}", badge.word());
        fields.push((if i == 0 { "Health" } else { "" }, line.into()));
    }
    if !key.description.is_empty() {
        fields.extend(output::multiline("Description", &key.description));
    }
    output::fields(fields, colour)
}

/// A key a rotation already replaced is not rotated again (the service
/// refuses it too, 409): the message names its successor, to rotate instead.
async fn already_replaced(client: &Client, key: &ApiKey, successor: &str) -> CliError {
    let found = client.get_key(successor).await.ok();
    let by = found.as_ref().map_or_else(
        || output::printable(successor).into_owned(),
        |s| {
            format!(
                "{}... (rotated at {})",
                output::printable(&s.prefix),
                console::display_tz().date_time(s.created_at)
            )
        },
    );
    let state = match (key.status, key.expires_at) {
        (KeyStatus::Active, Some(end)) => format!(
            "is already being replaced by {by}; it works until {}",
            console::display_tz().date_time(end)
        ),
        (KeyStatus::Active, None) => format!("is already being replaced by {by}"),
        (status, _) => format!("is {} and was replaced by {by}", status.as_str()),
    };
    let instead = console::command(&format!("keys rotate {}", output::printable(successor)));
    CliError::usage(format!(
        "{} {state}. Rotate that key instead: {instead}",
        output::key_label(key),
    ))
}

/// An expired or revoked key cannot be rotated: re-issue it, as a new key
/// with its name, description and scopes (the policy sets the expiry).
fn reissue_hint(key: &ApiKey) -> String {
    let quote = |s: &str| format!("'{}'", output::printable(s).replace('\'', r"'\''"));
    let mut command = format!("keys create --name {}", quote(&key.name));
    if !key.description.is_empty() && !key.description.contains('\n') {
        command.push_str(&format!(" --description {}", quote(&key.description)));
    }
    for scope in key.scopes.iter() {
        command.push_str(&format!(" --scope {}", quote(scope)));
    }
    format!(
        "{} is {}: only an active key can be rotated. Re-issue it instead, as a new key \
         with the same name, description and scopes (add --expires as needed):\n  {}",
        output::key_label(key),
        key.status.as_str(),
        console::command(&command)
    )
}

/// Asks before a change, unless `--yes`; refuses when no one can answer.
fn confirmed(args: &TargetArgs, verb: &str, key: &ApiKey, warning: &str) -> Result<(), CliError> {
    if args.yes {
        return Ok(());
    }
    let what = output::key_label(key);
    if !prompt::interactive() {
        return Err(CliError::usage(format!(
            "refusing to {verb} {what} without confirmation: standard input is not a terminal. \
             Nothing was changed; pass --yes to {verb} it."
        )));
    }
    note!("{warning}");
    if prompt::confirm(&format!("{} {what}?", capitalise(verb)))? {
        Ok(())
    } else {
        Err(CliError::usage("cancelled; nothing was changed"))
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

async fn revoke(client: &Client, args: TargetArgs) -> Result<(), CliError> {
    let key = select::find_key(client, &args.key).await?;
    if key.status == KeyStatus::Revoked {
        note!(
            "{} was already revoked; nothing to do.",
            output::key_label(&key)
        );
        return if args.json {
            output::print_json(&key)
        } else {
            Ok(())
        };
    }
    confirmed(
        &args,
        "revoke",
        &key,
        "Are you sure you want to revoke this API key? Any applications using it will immediately lose access.",
    )?;
    let revoked = client.revoke_key(&key.id).await?;
    if args.json {
        output::print_json(&revoked)?;
    }
    note!("Revoked API key {}.", output::key_label(&revoked));
    Ok(())
}

async fn rotate(client: &Client, args: RotateArgs) -> Result<(), CliError> {
    let key = select::find_key(client, &args.target.key).await?;
    if let Some(successor) = key.replaced_by.as_deref() {
        return Err(already_replaced(client, &key, successor).await);
    }
    if key.status != KeyStatus::Active {
        return Err(CliError::usage(reissue_hint(&key)));
    }
    let old_fate = match args.grace {
        0 => "the old key is revoked at once".to_owned(),
        s => format!(
            "the old key keeps working for {} more",
            present::duration(
                Duration::seconds(s.into()),
                SpanUnit::Second..=SpanUnit::Hour
            )
        ),
    };
    confirmed(
        &args.target,
        "rotate",
        &key,
        &format!("Rotating creates a new key with the same name, scopes and expiry; {old_fate}."),
    )?;
    let rotated = client.rotate_key(&key.id, args.grace).await?;
    if args.target.json {
        return output::print_json(&rotated);
    }
    output::print_secret(&rotated.secret)?;
    let old = &rotated.previous;
    let old_state = match (old.status, old.expires_at) {
        (KeyStatus::Revoked, _) => "revoked".to_owned(),
        (_, Some(at)) => format!("works until {}", console::display_tz().date_time(at)),
        (_, None) => old.status.as_str().to_owned(),
    };
    note!(
        "Rotated: new key {}; old key {}... {old_state}.",
        output::key_label(&rotated.api_key),
        output::printable(&old.prefix)
    );
    note!("Copy your API key now — it will not be shown again.");
    Ok(())
}

/// `keys issue ID`: the secret of a key made without one, printed once.
async fn issue(client: &Client, args: IssueArgs) -> Result<(), CliError> {
    let issued = client.issue_secret(args.key.trim()).await?;
    if args.json {
        return output::print_json(&issued);
    }
    output::print_secret(&issued.secret)?;
    note!(
        "Issued the secret of {}: the key works from now on.",
        output::key_label(&issued.api_key)
    );
    note!("Copy your API key now — it will not be shown again.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::fixtures::{builtin, key};

    #[test]
    fn expires_offers_what_the_option_takes() {
        let now = Utc::now();
        assert_eq!(
            expires_at("abc", now),
            Err("use a date like 2027-01-31 or a span like 7d, 30d, 90d or 1y".to_owned())
        );
        assert_eq!(
            expires_at("2001-01-01", now),
            Err("the expiry must be in the future".to_owned())
        );
        assert_eq!(expires_at("7d", now), Ok(Some(now + Duration::days(7))));
    }

    #[test]
    fn details_show_who_and_when() {
        let text = details(
            &key(KeyStatus::Active),
            &[],
            &builtin(),
            &Policy::default(),
            false,
        );
        assert!(text.contains("Name         CI/CD Pipeline\n"), "{text}");
        assert!(text.contains("by ops@example.com"), "{text}");
        assert!(
            text.contains("Description  GitHub Actions deploy"),
            "{text}"
        );
    }

    #[test]
    fn details_name_a_found_link_as_the_tui_does_and_a_lost_one_by_id() {
        let mut old = key(KeyStatus::Active);
        old.replaced_by = Some("key_new".into());
        old.replaces = Some("key_gone".into());
        let mut new = key(KeyStatus::Active);
        new.id = "key_new".into();
        new.prefix = "eg_live_9xYz".into();
        let text = details(&old, &[new], &builtin(), &Policy::default(), false);
        assert!(
            text.contains("Replaced by  eg_live_9xYz… “CI/CD Pipeline” (key_new)\n"),
            "{text}"
        );
        assert!(text.contains("Replaces     key_gone\n"), "{text}");
    }
}
