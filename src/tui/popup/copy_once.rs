//! The copy-once modal: the new secret, shown this one time, kept only in
//! memory that is zeroed when the modal closes.

use crate::api::ApiKey;
use crate::key::Secret;

pub struct CopyOnce {
    pub key: ApiKey,
    /// The only copy the modal keeps; drawing borrows it, never copies it.
    /// Zeroed by [`CopyOnce::close`] when the modal is dropped.
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

    /// The modal closes: its secret's bytes are zeroed in place now, before
    /// the memory is given back. Every way out (Enter, Esc after the
    /// question, quitting) drops the modal, and dropping calls this.
    pub fn close(&mut self) {
        self.secret.wipe();
    }
}

impl Drop for CopyOnce {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyStatus, SecretFormat};

    fn key() -> ApiKey {
        let now = chrono::Utc::now();
        ApiKey {
            id: "key_abc".into(),
            name: "CI".into(),
            description: String::new(),
            prefix: "eg_live_1a2B".into(),
            scopes: vec!["sessions:read".into()],
            status: KeyStatus::Active,
            created_at: now,
            created_by: "ops@example.com".into(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            revoked_by: None,
        }
    }

    #[test]
    fn closing_the_copy_once_modal_zeroes_the_secret_buffer() {
        let secret = SecretFormat::default().generate();
        let mut modal = CopyOnce::new(key(), secret, None);
        let (ptr, len) = (modal.secret.expose().as_ptr(), modal.secret.expose().len());
        assert_eq!(len, 46);
        // SAFETY: the buffer stays allocated while `modal` lives: wiping
        // clears the string in place and keeps its allocation.
        let bytes = || unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec();
        assert!(bytes().starts_with(b"eg_live_"));
        modal.close();
        assert_eq!(modal.secret.expose(), "");
        assert_eq!(modal.secret.expose().as_ptr(), ptr, "same allocation");
        assert!(bytes().iter().all(|&b| b == 0), "{:?}", bytes());
        drop(modal);
    }
}
