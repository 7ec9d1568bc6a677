//! Finding the key a command is about, from its id (`key_...`) or the prefix
//! the table shows (`eg_live_1a2B...`, or any leading part of it that goes past
//! the literal `eg_live_`), or for `keys show` its exact name. Several
//! matches are an error that lists them.

use std::ops::ControlFlow;

use super::output;
use super::CliError;
use crate::api::{ApiKey, KeyListQuery};
use crate::client::{Client, ClientError};
use crate::key::validate::NAME_MAX;

/// Longer than any display prefix (a 16-character literal prefix and 4 more):
/// such input is not looked up, so a pasted secret never leaves in a query.
const MAX_PREFIX_LEN: usize = 20;

/// The input without the `...` (or `…`) the table shows after a prefix.
fn strip_dots(input: &str) -> &str {
    let input = input.trim();
    input
        .strip_suffix("...")
        .or_else(|| input.strip_suffix('…'))
        .unwrap_or(input)
}

/// Whether `input` is a leading part of the display prefix `key_prefix` that
/// goes past its literal part (`eg_live_`) by at least one character.
fn prefix_matches(key_prefix: &str, input: &str) -> bool {
    let literal = key_prefix.rfind('_').map_or(0, |i| i + 1);
    input.len() > literal && key_prefix.starts_with(input)
}

fn looks_like_prefix(input: &str) -> bool {
    !input.is_empty()
        && input.len() <= MAX_PREFIX_LEN
        && input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// How to name a key, for the messages that say what was not found.
/// (`keys list`, not `keydeck keys list`: over SSH there is no `keydeck`.)
const BY_ID_OR_PREFIX: &str = "give the key's id (key_...) or its prefix as \
    `keys list` shows it (at least eg_live_ and one more character)";

/// The one key that `input` names: its id or its prefix.
pub async fn find_key(client: &Client, input: &str) -> Result<ApiKey, CliError> {
    let input = input.trim();
    let matches = by_id_or_prefix(client, input).await?;
    choose(
        input,
        matches,
        Some(BY_ID_OR_PREFIX),
        ", so nothing was changed; give more of the prefix, or the id",
    )
}

/// The one key that `input` names: its id, its prefix, or else its exact name
/// (`keys show "CI deploy"`); several keys of that name are listed, none chosen.
pub async fn find_key_or_named(client: &Client, input: &str) -> Result<ApiKey, CliError> {
    let trimmed = input.trim();
    let matches = by_id_or_prefix(client, trimmed).await?;
    if !matches.is_empty() {
        return choose(
            trimmed,
            matches,
            None,
            ", so nothing was changed; give more of the prefix, or the id",
        );
    }
    let named = by_name(client, input).await?;
    if named.is_empty() {
        return choose(
            trimmed,
            named,
            Some(&format!("{BY_ID_OR_PREFIX}, or its exact name")),
            "",
        );
    }
    choose(
        input,
        named,
        None,
        "; give the id or the prefix of the one you mean",
    )
}

/// The key whose id is `input`, or those whose prefix starts with it.
async fn by_id_or_prefix(client: &Client, input: &str) -> Result<Vec<ApiKey>, CliError> {
    if input.starts_with("key_") {
        match client.get_key(input).await {
            Ok(key) => return Ok(vec![key]),
            Err(ClientError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let prefix = strip_dots(input);
    let mut matches = Vec::new();
    if looks_like_prefix(prefix) {
        let query = KeyListQuery {
            q: Some(prefix.to_owned()),
            limit: Some(500),
            ..KeyListQuery::default()
        };
        client
            .each_page(query, |page| {
                matches.extend(
                    page.into_iter()
                        .filter(|k| prefix_matches(&k.prefix, prefix)),
                );
                ControlFlow::Continue(())
            })
            .await?;
    }
    Ok(matches)
}

/// The keys named exactly `name` (as typed, or trimmed).
async fn by_name(client: &Client, name: &str) -> Result<Vec<ApiKey>, CliError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > NAME_MAX {
        return Ok(Vec::new());
    }
    let query = KeyListQuery {
        q: Some(trimmed.to_owned()),
        limit: Some(500),
        ..KeyListQuery::default()
    };
    let mut matches = Vec::new();
    client
        .each_page(query, |page| {
            matches.extend(
                page.into_iter()
                    .filter(|k| k.name == name || k.name == trimmed),
            );
            ControlFlow::Continue(())
        })
        .await?;
    Ok(matches)
}

/// The one match; none is an error saying how to name a key (`how`), several
/// an error listing them and what to give instead (`narrow`).
fn choose(
    input: &str,
    mut matches: Vec<ApiKey>,
    how: Option<&str>,
    narrow: &str,
) -> Result<ApiKey, CliError> {
    match matches.len() {
        0 => Err(CliError::usage(format!(
            "no key matches {input:?}: {}",
            how.unwrap_or(BY_ID_OR_PREFIX)
        ))),
        1 => Ok(matches.remove(0)),
        n => {
            let rows: Vec<Vec<output::Cell>> = matches
                .iter()
                .map(|k| {
                    vec![
                        format!("{}...", k.prefix).into(),
                        k.id.clone().into(),
                        output::status_cell(k.status),
                        output::truncate(&k.name, 40),
                    ]
                })
                .collect();
            let list = output::table(&["PREFIX", "ID", "STATUS", "NAME"], &rows, false);
            Err(CliError::usage(format!(
                "{input:?} matches {n} keys{narrow}:\n{}",
                list.trim_end()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_must_go_past_the_literal_part() {
        assert!(prefix_matches("eg_live_1a2B", "eg_live_1a2B"));
        assert!(prefix_matches("eg_live_1a2B", "eg_live_1"));
        assert!(!prefix_matches("eg_live_1a2B", "eg_live_"));
        assert!(!prefix_matches("eg_live_1a2B", "eg_live"));
        assert!(
            !prefix_matches("eg_live_1a2B", "eg_live_1A"),
            "case matters"
        );
        assert!(!prefix_matches("eg_live_1a2B", "eg_live_1a2B3"));
        assert!(prefix_matches("k_9xYz", "k_9"));
    }

    #[test]
    fn the_tables_dots_are_accepted() {
        assert_eq!(strip_dots("eg_live_1a2B..."), "eg_live_1a2B");
        assert_eq!(strip_dots("eg_live_1a2B…"), "eg_live_1a2B");
        assert_eq!(strip_dots(" eg_live_1a "), "eg_live_1a");
    }

    #[test]
    fn secrets_and_odd_input_are_never_looked_up() {
        assert!(looks_like_prefix("eg_live_1a2B"));
        assert!(!looks_like_prefix(
            "eg_live_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R9s"
        ));
        assert!(!looks_like_prefix("eg live"));
        assert!(!looks_like_prefix(""));
    }
}
