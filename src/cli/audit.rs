//! `keydeck audit`: the organisation's audit log, newest first, as a table or JSON.

use super::console::note;
use super::output::{self, Cell};
use super::{connect, CliError, Target};
use crate::api::{AuditEntry, AuditListQuery};
use crate::cli::AuditArgs;
use crate::client::Client;
use crate::present::DisplayTz;

pub async fn run(args: AuditArgs, target: Target<'_>) -> Result<(), CliError> {
    run_on(args, &connect(target)?).await
}

/// Runs the command with `client` (over SSH: the session's own client).
pub async fn run_on(args: AuditArgs, client: &Client) -> Result<(), CliError> {
    let wanted = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let query = AuditListQuery {
        limit: Some(args.limit.min(500)),
        cursor: None,
    };
    let entries = client.all_pages(query, wanted).await?;
    if args.json {
        return output::print_json(&entries);
    }
    if entries.is_empty() {
        note!("The audit log is empty.");
        return Ok(());
    }
    output::print(&audit_table(&entries))
}

fn audit_table(entries: &[AuditEntry]) -> String {
    let rows: Vec<Vec<Cell>> = entries
        .iter()
        .map(|e| {
            vec![
                DisplayTz::Local.date_time(e.at).into(),
                e.action.as_str().into(),
                output::truncate(&e.actor.name, 40),
                e.target().into(),
                e.remote_addr.as_deref().unwrap_or_default().into(),
                output::truncate(&summary(&e.details), 60),
            ]
        })
        .collect();
    output::table(
        &["TIME", "ACTION", "BY", "KEY/USER", "FROM", "DETAILS"],
        &rows,
        false,
    )
}

/// An entry's details for people: `name=CI deploy scopes=sessions:read,full_access`;
/// the user's id and email are left out (the KEY/USER column names the user).
fn summary(details: &serde_json::Value) -> String {
    use serde_json::Value;
    let plain = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    match details {
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "user_id" | "user_email"))
            .map(|(k, v)| format!("{k}={}", plain(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => plain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Actor;
    use crate::audit_action::AuditAction;

    #[test]
    fn the_table_says_who_did_what_from_where() {
        let entry = AuditEntry {
            id: 1,
            at: chrono::Utc::now(),
            action: AuditAction::ApiKeyRevoked.to_string(),
            actor: Actor {
                kind: "user".into(),
                id: "usr_1".into(),
                name: "ops@example.com".into(),
            },
            api_key_id: "key_abc".into(),
            remote_addr: Some("127.0.0.1".into()),
            details: serde_json::json!({"name": "CI deploy", "scopes": ["sessions:read", "full_access"]}),
        };
        let text = audit_table(&[entry]);
        let row = text.lines().nth(1).unwrap();
        for cell in [
            "api_key.revoked",
            "ops@example.com",
            "key_abc",
            "127.0.0.1",
            "name=CI deploy scopes=sessions:read,full_access",
        ] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
    }
}
