//! Leaked keys: what a report says (a digest, where it was seen, who saw
//! it), the limits on each of its fields, and the exposure a key keeps once
//! reported. Never the key itself: a raw token is made a digest at the door.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most reports in one request (`POST /v1/leaks`, the GitLab and GitHub shapes).
pub const MAX_REPORTS: usize = 100;
/// Longest `location` kept (characters).
pub const MAX_LOCATION: usize = 500;
/// Longest `source` kept (characters).
pub const MAX_SOURCE: usize = 100;
/// Longest raw token looked at; longer cannot be a key.
pub const MAX_TOKEN: usize = 200;

/// Where and when a key was first reported leaked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Exposure {
    /// When the first report came (the key's `exposed_at`).
    pub at: DateTime<Utc>,
    /// Who saw it, e.g. `keydeck-scan`, `gitlab`, `github`.
    pub source: String,
    /// Where it was seen, e.g. `src/deploy.rs:12:9` or a URL.
    pub location: String,
}

/// A SHA-256 digest written as 64 hex digits (either case).
pub fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A digest as 64 lowercase hex digits.
pub fn sha256_hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A report's free text (`location`, `source`): at most `max` characters,
/// no control characters; `Err` says why, naming `field`.
pub fn check_text(field: &str, text: &str, max: usize) -> Result<(), String> {
    if text.chars().count() > max {
        return Err(format!("{field} must be at most {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_from_64_hex_digits_only() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_sha256(&hex), Some([0xab; 32]));
        assert_eq!(parse_sha256(&hex.to_uppercase()), Some([0xab; 32]));
        assert_eq!(sha256_hex(&[0xab; 32]), hex);
        for bad in [
            "",
            "ab",
            &"zz".repeat(32),
            &"ab".repeat(33),
            &"é".repeat(32),
        ] {
            assert_eq!(parse_sha256(bad), None, "{bad}");
        }
    }

    #[test]
    fn free_text_has_a_limit_and_no_control_characters() {
        assert!(check_text("location", "src/a.rs:1:2", MAX_LOCATION).is_ok());
        assert!(
            check_text("location", &"x".repeat(MAX_LOCATION + 1), MAX_LOCATION)
                .unwrap_err()
                .contains("at most 500")
        );
        assert!(check_text("source", "a\u{1b}[31m", MAX_SOURCE)
            .unwrap_err()
            .contains("control"));
    }
}
