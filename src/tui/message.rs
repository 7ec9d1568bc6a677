//! What a failed request means for the admin, in one line: the banner, the
//! flashes and the popups say it the same way.

use crate::client::ClientError;
use crate::tui::keymap::{self, Command, Context};

/// What a failed request means for the admin, in one line. `retry`: the
/// command that sends it again where the line shows (the table's refresh,
/// a screen's reload), whose key the line names as the keymap binds it;
/// `None` where no key does (a revoke's or a rotation's flash), and then
/// the line names none.
pub fn banner_message(
    error: &ClientError,
    source: &str,
    retry: Option<(Context, Command)>,
) -> String {
    match error {
        ClientError::Unreachable(_) => format!(
            "Cannot reach the key service at {source}. {}",
            then(retry, "check that it is running.")
        ),
        ClientError::Timeout => format!(
            "The key service at {source} did not answer in time. {}",
            then(retry, "check its load and the network.")
        ),
        ClientError::Unauthorized(_) => "The access token was refused (401). Set KEYDECK_TOKEN or run `keydeck login`, then restart.".into(),
        ClientError::PlanRequired(_) => "API keys are available on the Paid plan only. Ask your organisation's owner to upgrade.".into(),
        ClientError::Forbidden(_) => "Only organisation admins can manage API keys (403). Ask an admin for the admin role.".into(),
        ClientError::RateLimited(m) => format!("{m} (429)"),
        other => {
            let said = format!(
                "The key service answered with an error: {}.",
                other.to_string().trim_end_matches('.')
            );
            match retry.and_then(|(context, command)| keymap::key_of(context, command)) {
                Some(key) => format!("{said} Press {key} to retry."),
                None => said,
            }
        }
    }
}

/// The rest of a line about a service out of reach: only the table's load
/// retries by itself; elsewhere the line names the key that retries, as the
/// keymap binds it, or just what to check (a create, revoke or rotation is
/// never sent again behind the admin's back).
fn then(retry: Option<(Context, Command)>, check: &str) -> String {
    let key = match retry {
        Some((Context::Table, Command::Refresh)) => return format!("Retrying by itself; {check}"),
        Some((context, command)) => keymap::key_of(context, command),
        None => None,
    };
    match key {
        Some(key) => format!("Press {key} to retry; {check}"),
        None => {
            let mut chars = check.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_sentence_names_the_keymaps_key_or_is_left_out() {
        let error = ClientError::Server("database busy".into());
        let table = banner_message(&error, "x", Some((Context::Table, Command::Refresh)));
        let r = keymap::key_of(Context::Table, Command::Refresh).unwrap();
        assert_eq!(
            table,
            format!("The key service answered with an error: database busy. Press {r} to retry.")
        );
        let revoke = banner_message(&error, "x", None);
        assert_eq!(
            revoke,
            "The key service answered with an error: database busy."
        );
        // A command not bound where the line shows names no key.
        let unbound = banner_message(&error, "x", Some((Context::Create, Command::Refresh)));
        assert!(!unbound.contains("Press"), "{unbound}");
    }

    /// Out of reach: only the table's load says it retries by itself.
    #[test]
    fn only_the_tables_load_says_it_retries_by_itself() {
        let away = ClientError::Timeout;
        let table = banner_message(&away, "x", Some((Context::Table, Command::Refresh)));
        assert!(
            table.contains("Retrying by itself; check its load"),
            "{table}"
        );
        let create = banner_message(&away, "x", None);
        assert_eq!(
            create,
            "The key service at x did not answer in time. Check its load and the network."
        );
        let audit = banner_message(&away, "x", Some((Context::Audit, Command::Reload)));
        let key = keymap::key_of(Context::Audit, Command::Reload).unwrap();
        assert!(
            audit.contains(&format!("Press {key} to retry; check")),
            "{audit}"
        );
        assert!(!audit.contains("by itself"), "{audit}");
    }
}
