//! The copy-once modal: the new secret, shown this one time.

use crate::api::ApiKey;
use crate::key::Secret;

pub struct CopyOnce {
    pub key: ApiKey,
    /// Wiped when the modal (and so this) is dropped.
    pub secret: Secret,
    /// What the last `c` did, for the admin to read.
    pub copied: Option<String>,
    /// For a rotation: when the old key stops working.
    pub previous: Option<ApiKey>,
}

impl CopyOnce {
    pub fn new(key: ApiKey, secret: Secret, previous: Option<ApiKey>) -> Self {
        Self {
            key,
            secret,
            copied: None,
            previous,
        }
    }
}
