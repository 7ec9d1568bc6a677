//! One key and the built-in scope catalogue for the CLI's unit tests (the
//! details and the list print the same fixture).

use chrono::{Duration, Utc};

use crate::api::{ApiKey, ScopeInfo};
use crate::key::KeyStatus;

/// The built-in scopes, as the service's catalogue lists them.
pub(super) fn builtin() -> Vec<ScopeInfo> {
    crate::key::SCOPES.iter().map(Into::into).collect()
}

/// A key in `status`, created three days ago and used three minutes ago.
pub(super) fn key(status: KeyStatus) -> ApiKey {
    let now = Utc::now();
    ApiKey {
        id: "key_abc".into(),
        name: "CI/CD Pipeline".into(),
        description: "GitHub Actions deploy".into(),
        prefix: "eg_live_1a2B".into(),
        scopes: vec!["sessions:read".into(), "sessions:write".into()].into(),
        status,
        created_at: now - Duration::days(3),
        created_by: "ops@example.com".into(),
        expires_at: None,
        last_used_at: Some(now - Duration::minutes(3)),
        revoked_at: None,
        revoked_by: None,
        replaced_by: None,
        replaces: None,
        exposure: None,
        secret_pending: false,
        refusals: None,
        health: None,
    }
}
