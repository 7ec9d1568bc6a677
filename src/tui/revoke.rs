//! Revoking: what `d`, `X` and a lost create's answer ask (one key, the
//! marked keys, every expired key, an orphan), what a yes sends, and what
//! the answer changes.

use super::action::Request;
use super::app::{banner_message, App};
use super::dialog::Confirm;
use super::dialog::ConfirmKind;
use super::popup::Popup;
use crate::api::ApiKey;
use crate::client::ClientError;
use crate::key::KeyStatus;

impl Confirm {
    pub fn revoke(key: &ApiKey, expired: bool) -> Self {
        let mut lines = vec![
            format!("“{}”  {}...", key.name, key.prefix),
            String::new(),
            "Are you sure you want to revoke this API key? Any applications using it will immediately lose access.".into(),
        ];
        if expired {
            lines.push(String::new());
            lines.push("This key has already expired and no longer works; revoking it records that it must never be used again.".into());
        }
        Self::two_buttons(
            ConfirmKind::Revoke(Box::new(key.clone())),
            "Revoke API key",
            lines,
            "Revoke",
        )
    }

    pub fn revoke_many(keys: Vec<ApiKey>, which: &str) -> Self {
        let mut lines = vec![format!(
            "Revoke {which}: {} key{}?",
            keys.len(),
            if keys.len() == 1 { "" } else { "s" }
        )];
        for k in keys.iter().take(6) {
            lines.push(format!("  • “{}”  {}...", k.name, k.prefix));
        }
        if keys.len() > 6 {
            lines.push(format!("  … and {} more", keys.len() - 6));
        }
        lines.push(String::new());
        lines.push("Any applications using them will immediately lose access.".into());
        Self::two_buttons(
            ConfirmKind::RevokeMany(keys),
            "Revoke API keys",
            lines,
            "Revoke all",
        )
    }

    pub fn revoke_orphan(key: &ApiKey) -> Self {
        let lines = vec![
            format!("The key “{}” ({}...) was created, but the answer carrying its secret was lost on the way.", key.name, key.prefix),
            "The secret cannot be shown again, so nobody can use this key.".into(),
            String::new(),
            "Revoke it now? (Recommended; then create a new one.)".into(),
        ];
        let mut c = Self::two_buttons(
            ConfirmKind::RevokeOrphan(Box::new(key.clone())),
            "Key created, secret lost",
            lines,
            "Revoke",
        );
        c.buttons = vec!["Revoke", "Keep"];
        c.focus = 0;
        c
    }
}

impl App {
    pub(super) fn ask_revoke(&mut self) {
        let marked: Vec<ApiKey> = self
            .keys
            .iter()
            .filter(|k| self.marked.contains(&k.id) && k.revoked_at.is_none())
            .cloned()
            .collect();
        if !self.marked.is_empty() {
            let popup = if marked.is_empty() {
                Confirm::notice(
                    "Nothing to revoke",
                    vec!["Every marked key is already revoked.".into()],
                )
            } else {
                Confirm::revoke_many(marked, "the marked keys")
            };
            self.popups.push(Popup::Confirm(Box::new(popup)));
            return;
        }
        let Some(key) = self.selected_key().cloned() else {
            return;
        };
        let popup = match self.status_of(&key) {
            KeyStatus::Revoked => Confirm::notice(
                "Already revoked",
                vec![format!(
                    "“{}” was revoked {} by {}. It no longer works; there is nothing more to do.",
                    key.name,
                    key.revoked_at
                        .map_or_else(String::new, |t| self.tz.exact(t)),
                    key.revoked_by.as_deref().unwrap_or("an admin"),
                )],
            ),
            status => Confirm::revoke(&key, status == KeyStatus::Expired),
        };
        self.popups.push(Popup::Confirm(Box::new(popup)));
    }

    pub(super) fn ask_revoke_expired(&mut self) {
        let now = self.now;
        let expired: Vec<ApiKey> = self
            .keys
            .iter()
            .filter(|k| KeyStatus::derive(k.revoked_at, k.expires_at, now) == KeyStatus::Expired)
            .cloned()
            .collect();
        let popup = if expired.is_empty() {
            Confirm::notice(
                "No expired keys",
                vec!["There are no expired keys to clean up.".into()],
            )
        } else {
            Confirm::revoke_many(expired, "every expired key")
        };
        self.popups.push(Popup::Confirm(Box::new(popup)));
    }

    /// Yes to revoking one key.
    pub(super) fn start_revoke(&mut self, key: ApiKey) {
        self.flash = Some(format!("Revoking “{}”…", key.name));
        self.request(Request::RevokeKey { id: key.id });
    }

    /// Yes to revoking the marked (or every expired) key.
    pub(super) fn start_revoke_many(&mut self, keys: Vec<ApiKey>) {
        self.flash = Some(format!("Revoking {} keys…", keys.len()));
        self.marked.clear();
        for key in keys {
            self.request(Request::RevokeKey { id: key.id });
        }
    }

    /// No to revoking a key whose secret was lost.
    pub(super) fn kept_orphan(&mut self, key: &ApiKey) {
        self.flash = Some(format!(
            "Kept “{}”; its secret is unknown, so nothing can use it.",
            key.name
        ));
    }

    /// A revoke's answer.
    pub(super) fn on_revoked(&mut self, result: Result<ApiKey, ClientError>) {
        match result {
            Ok(key) => {
                self.flash = Some(format!(
                    "Revoked “{}”: it no longer works anywhere.",
                    key.name
                ));
                self.upsert_key(key, false);
            }
            Err(e) => {
                self.flash = Some(format!("Not revoked: {}", banner_message(&e, &self.source)))
            }
        }
    }
}
