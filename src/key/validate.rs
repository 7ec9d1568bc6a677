//! Limits on what a client may send for a key, shared by the service and its clients.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{expiry, scope};

/// Field name → message, for every field that failed.
pub type FieldErrors = BTreeMap<String, String>;

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 500;

/// `None` if the name is acceptable, otherwise why not.
pub fn name_error(name: &str) -> Option<String> {
    let len = name.chars().count();
    if name.trim().is_empty() {
        Some("name is required".to_owned())
    } else if len > NAME_MAX {
        Some(format!(
            "name must be at most {NAME_MAX} characters (it has {len})"
        ))
    } else if name.chars().any(char::is_control) {
        Some("name must not contain control characters".to_owned())
    } else {
        None
    }
}

/// `None` if the description is acceptable, otherwise why not.
pub fn description_error(description: &str) -> Option<String> {
    let len = description.chars().count();
    if len > DESCRIPTION_MAX {
        Some(format!(
            "description must be at most {DESCRIPTION_MAX} characters (it has {len})"
        ))
    } else if description
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        Some(
            "description must not contain control characters other than newlines and tabs"
                .to_owned(),
        )
    } else {
        None
    }
}

/// Checks every field of a new key; on success, the scopes in catalogue order.
pub fn new_key(
    name: &str,
    description: &str,
    scopes: &[String],
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    catalog: &scope::Catalog,
) -> Result<Vec<String>, FieldErrors> {
    let mut errors = FieldErrors::new();
    if let Some(e) = name_error(name) {
        errors.insert("name".into(), e);
    }
    if let Some(e) = description_error(description) {
        errors.insert("description".into(), e);
    }
    if let Some(Err(e)) = expires_at.map(|at| expiry::check_expiry(at, now)) {
        errors.insert("expires_at".into(), e.to_string());
    }
    let normalized = match catalog.normalize(scopes) {
        Ok(s) if s.is_empty() => {
            errors.insert("scopes".into(), "choose at least one scope".into());
            s
        }
        Ok(s) => s,
        Err(unknown) => {
            errors.insert(
                "scopes".into(),
                format!("unknown scope {unknown:?}; known scopes: {}", catalog.ids()),
            );
            Vec::new()
        }
    };
    if errors.is_empty() {
        Ok(normalized)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_key_reports_every_bad_field() {
        let now = Utc::now();
        let catalog = scope::Catalog::default();
        let errors = new_key(
            "",
            &"x".repeat(501),
            &[],
            Some(now - chrono::Duration::seconds(1)),
            now,
            &catalog,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(fields, ["description", "expires_at", "name", "scopes"]);
        assert!(
            new_key("ok", "", &["nope".into()], None, now, &catalog).unwrap_err()["scopes"]
                .contains("nope")
        );
        assert_eq!(
            new_key(
                "ok",
                "",
                &["full_access".into(), "sessions:read".into()],
                None,
                now,
                &catalog
            )
            .unwrap(),
            ["sessions:read", "full_access"]
        );
    }

    #[test]
    fn names() {
        assert!(name_error("CI/CD Pipeline").is_none());
        assert!(name_error(&"é".repeat(100)).is_none());
        assert!(name_error("").is_some());
        assert!(name_error("   ").is_some());
        assert!(name_error(&"a".repeat(101)).is_some());
        assert!(name_error("a\u{7}b").is_some());
        assert!(name_error("a\nb").is_some());
    }

    #[test]
    fn descriptions() {
        assert!(description_error("").is_none());
        assert!(description_error("line one\nline two").is_none());
        assert!(description_error(&"x".repeat(501)).is_some());
        assert!(description_error("\u{1b}[31m").is_some());
    }
}
