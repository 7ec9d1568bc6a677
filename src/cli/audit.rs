//! `keydeck audit`: the organisation's audit log, newest first, as a table or JSON.

use std::collections::HashMap;

use super::console::{self, note};
use super::output::{self, Cell};
use super::CliError;
use crate::api::{ApiKey, AuditEntry, AuditListQuery, KeyListQuery};
use crate::cli::AuditArgs;
use crate::client::Client;

/// Runs the command with `client` (over SSH: the session's own client).
pub async fn run_on(args: AuditArgs, client: &Client) -> Result<(), CliError> {
    let wanted = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let query = AuditListQuery {
        limit: Some(args.limit.min(500)),
        cursor: None,
        api_key_id: args.key.clone(),
    };
    if args.json {
        return output::print_json_pages(client, query, wanted).await;
    }
    let entries = client.all_pages(query, wanted).await?;
    if entries.is_empty() {
        note!("The audit log is empty.");
        return Ok(());
    }
    // The keys, to name each entry's key as the TUI does; without them
    // (a listing refused or failed) the ids still say which key.
    let query = KeyListQuery {
        limit: Some(500),
        ..KeyListQuery::default()
    };
    let keys = client.all_pages(query, KEYS_MAX).await.unwrap_or_default();
    output::print(&audit_table(&entries, &keys))
}

/// Keys read to name the entries' keys.
const KEYS_MAX: usize = 100_000;

/// The table; `keys`: the organisation's keys, for their names and prefixes.
fn audit_table(entries: &[AuditEntry], keys: &[ApiKey]) -> String {
    let by_id: HashMap<&str, &ApiKey> = keys.iter().map(|k| (k.id.as_str(), k)).collect();
    let rows: Vec<Vec<Cell>> = entries
        .iter()
        .map(|e| {
            let key = by_id.get(e.api_key_id.as_str()).copied();
            vec![
                console::display_tz().date_time(e.at).into(),
                e.action.as_str().into(),
                output::truncate(&e.actor.name, 40),
                output::truncate(&crate::present::audit_subject(e, key), 60),
                e.api_key_id.as_str().into(),
                e.remote_addr.as_deref().unwrap_or_default().into(),
                output::truncate(&summary(&e.details), 60),
            ]
        })
        .collect();
    output::table(
        &[
            "TIME", "ACTION", "BY", "KEY/USER", "KEY ID", "FROM", "DETAILS",
        ],
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
        let text = audit_table(&[entry], &[]);
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

    #[test]
    fn a_key_at_hand_is_named_with_its_prefix_and_id() {
        let entry = AuditEntry {
            id: 2,
            at: chrono::Utc::now(),
            action: AuditAction::ApiKeyRevoked.to_string(),
            actor: Actor {
                kind: "user".into(),
                id: "usr_1".into(),
                name: "ops@example.com".into(),
            },
            api_key_id: "key_abc".into(),
            remote_addr: None,
            details: serde_json::json!({}),
        };
        let key: ApiKey = serde_json::from_value(serde_json::json!({
            "id": "key_abc", "name": "CI deploy", "description": "", "prefix": "eg_live_1a2B",
            "scopes": ["sessions:read"], "status": "revoked", "created_at": "2030-01-01T00:00:00Z",
            "created_by": "ops@example.com", "expires_at": null, "last_used_at": null,
            "revoked_at": "2030-01-02T00:00:00Z", "revoked_by": "ops@example.com",
            "replaced_by": null, "replaces": null
        }))
        .unwrap();
        let text = audit_table(std::slice::from_ref(&entry), &[key]);
        let row = text.lines().nth(1).unwrap();
        assert!(row.contains("“CI deploy” eg_live_1a2B…  key_abc"), "{row}");
        // Without the key: its id, as before.
        let text = audit_table(&[entry], &[]);
        assert!(!text.contains("CI deploy") && text.contains("key_abc"));
    }
}
