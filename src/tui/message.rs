//! What a failed request means for the admin, in one line: the banner, the
//! flashes and the popups say it the same way.

use crate::client::ClientError;

/// What a failed request means for the admin, in one line.
pub fn banner_message(error: &ClientError, source: &str) -> String {
    match error {
        ClientError::Unreachable(_) => format!(
            "Cannot reach the key service at {source}. Retrying by itself; check that it is running."
        ),
        ClientError::Timeout => format!(
            "The key service at {source} did not answer in time. Retrying by itself; check its load and the network."
        ),
        ClientError::Unauthorized(_) => "The access token was refused (401). Set KEYDECK_TOKEN or run `keydeck login`, then restart.".into(),
        ClientError::PlanRequired(_) => "API keys are available on the Paid plan only. Ask your organisation's owner to upgrade.".into(),
        ClientError::Forbidden(_) => "Only organisation admins can manage API keys (403). Ask an admin for the admin role.".into(),
        ClientError::RateLimited(m) => format!("{m} (429)"),
        other => format!("The key service answered with an error: {other}. Press r to retry."),
    }
}
