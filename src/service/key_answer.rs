//! A good key's forward-auth answer headers (`X-Key-Id`, `X-Key-Scopes`,
//! `X-Org-Id`), made once per key read from the store and kept with it in
//! the key cache ([`super::keycache::CheckedKey`]): a check answered from the
//! cache copies no string, each value is a shared buffer.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::store::AuthRecord;

// Made once: a custom name given as `&str` is parsed, and copied when
// inserted, at every use.
const X_KEY_ID: HeaderName = HeaderName::from_static("x-key-id");
const X_KEY_SCOPES: HeaderName = HeaderName::from_static("x-key-scopes");
const X_ORG_ID: HeaderName = HeaderName::from_static("x-org-id");

/// The answer headers of one key.
#[derive(Debug)]
pub struct AnswerHeaders(Vec<(HeaderName, HeaderValue)>);

impl AnswerHeaders {
    pub fn of(key: &AuthRecord) -> Self {
        let scopes = key.scopes.join(" ");
        let values = [
            (X_KEY_ID, key.id.as_str()),
            (X_KEY_SCOPES, scopes.as_str()),
            (X_ORG_ID, key.org_id.as_str()),
        ];
        // Ids and scope ids are plain ASCII; a value that is not cannot be a
        // header and is left out rather than sent mangled.
        Self(
            values
                .into_iter()
                .filter_map(|(name, value)| Some((name, HeaderValue::from_str(value).ok()?)))
                .collect(),
        )
    }

    /// Sets them on an answer.
    pub fn set(&self, headers: &mut HeaderMap) {
        headers.reserve(self.0.len());
        for (name, value) in &self.0 {
            headers.insert(name.clone(), value.clone());
        }
    }
}
