//! Rotating (`R`): the dialog's question and grace periods, what a yes
//! sends, and the answer: the new key's copy-once modal.

use super::action::Request;
use super::app::{banner_message, App};
use super::copy_once::CopyOnce;
use super::dialog::{Confirm, ConfirmKind};
use super::popup::Popup;
use crate::api::{ApiKey, RotatedKey};
use crate::client::ClientError;
use crate::key::KeyStatus;

/// Grace periods offered when rotating: (label, seconds).
pub const GRACE_CHOICES: [(&str, u32); 3] = [
    ("now", 0),
    ("after 1 hour", 3_600),
    ("after 24 hours", 86_400),
];

impl Confirm {
    pub fn rotate(key: &ApiKey) -> Self {
        let lines = vec![
            format!("“{}”  {}...", key.name, key.prefix),
            String::new(),
            "A new key with the same name, description, scopes and expiry is created and shown once.".into(),
            "The old key stops working (←/→ or 1-3 to choose):".into(),
        ];
        let mut c = Self::two_buttons(
            ConfirmKind::Rotate(Box::new(key.clone())),
            "Rotate API key",
            lines,
            "Rotate",
        );
        c.grace = 1;
        c
    }
}

impl App {
    pub(super) fn ask_rotate(&mut self) {
        let Some(key) = self.selected_key().cloned() else {
            return;
        };
        let popup = match self.status_of(&key) {
            KeyStatus::Active => {
                let mut dialog = Confirm::rotate(&key);
                // The service caps the new expiry as the policy says: say so first.
                let capped = self.policy.rotated_expiry(self.now, key.expires_at);
                if let (Some(at), true) = (capped, capped != key.expires_at) {
                    dialog.lines.insert(
                        3,
                        format!(
                            "The organisation's policy sets its expiry to {}.",
                            self.tz.weekday_time(at)
                        ),
                    );
                }
                dialog
            }
            status => Confirm::notice(
                "Cannot rotate",
                vec![format!(
                    "“{}” is {}: only an active key can be rotated. Press n to create a new key instead.",
                    key.name,
                    status.as_str()
                )],
            ),
        };
        self.popups.push(Popup::Confirm(Box::new(popup)));
    }

    /// Yes to the rotate dialog.
    pub(super) fn start_rotate(&mut self, key: ApiKey, grace_seconds: u32) {
        self.flash = Some(format!("Rotating “{}”…", key.name));
        self.request(Request::RotateKey {
            id: key.id,
            grace_seconds,
        });
    }

    /// A rotation's answer: the new key, shown once.
    pub(super) fn on_rotated(&mut self, result: Result<RotatedKey, ClientError>) {
        match result {
            Ok(rotated) => {
                self.flash = None;
                self.upsert_key(rotated.previous.clone(), false);
                self.upsert_key(rotated.api_key.clone(), true);
                let modal = CopyOnce::new(rotated.api_key, rotated.secret, Some(rotated.previous));
                self.popups.push(Popup::CopyOnce(Box::new(modal)));
            }
            Err(ClientError::Conflict(m)) => self.flash = Some(format!("Not rotated: {m}")),
            Err(e) => {
                self.flash = Some(format!("Not rotated: {}", banner_message(&e, &self.source)))
            }
        }
    }
}
