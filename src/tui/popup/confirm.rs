//! Confirmation dialogs. Each stores the action it will fire (gitui's confirm
//! popup shape); focus starts on the safe button; `y` is yes, `n`/`Esc` no.

use crossterm::event::KeyEvent;

use super::cycle;
use crate::api::ApiKey;
use crate::tui::keymap::{self, Command, Context};

/// What a "yes" does.
#[derive(Debug, Clone)]
pub enum ConfirmKind {
    /// Revoke this key.
    Revoke(Box<ApiKey>),
    /// Revoke all of these (marked keys, or every expired key).
    RevokeMany(Vec<ApiKey>),
    /// Rotate this key, the old one working for the chosen grace period.
    Rotate(Box<ApiKey>),
    /// Throw away a half-filled create form.
    DiscardForm,
    /// Close the copy-once modal without having copied the secret.
    CloseUncopied,
    /// A create's answer was lost and the key exists without a known secret: revoke it.
    RevokeOrphan(Box<ApiKey>),
    /// Nothing to decide: an explanation with one button.
    Notice,
}

/// Grace periods offered when rotating: (label, seconds).
pub const GRACE_CHOICES: [(&str, u32); 3] = [
    ("now", 0),
    ("after 1 hour", 3_600),
    ("after 24 hours", 86_400),
];

#[derive(Debug, Clone)]
pub struct Confirm {
    pub kind: ConfirmKind,
    pub title: String,
    pub lines: Vec<String>,
    /// Button labels; the last one is "no".
    pub buttons: Vec<&'static str>,
    pub focus: usize,
    /// For rotation: index into [`GRACE_CHOICES`].
    pub grace: usize,
}

/// What a key press in a dialog decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Yes,
    No,
    Undecided,
}

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

    pub fn discard_form() -> Self {
        let lines = vec!["Discard this new key? What you typed will be lost.".into()];
        Self::two_buttons(
            ConfirmKind::DiscardForm,
            "Discard new key",
            lines,
            "Discard",
        )
    }

    pub fn close_uncopied() -> Self {
        let lines = vec![
            "You have not copied the key. It will not be shown again.".into(),
            "Close anyway?".into(),
        ];
        let mut c = Self::two_buttons(
            ConfirmKind::CloseUncopied,
            "Close without copying?",
            lines,
            "Close",
        );
        c.buttons = vec!["Close", "Back"];
        c
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

    pub fn notice(title: &str, lines: Vec<String>) -> Self {
        Self {
            kind: ConfirmKind::Notice,
            title: title.into(),
            lines,
            buttons: vec!["OK"],
            focus: 0,
            grace: 0,
        }
    }

    fn two_buttons(kind: ConfirmKind, title: &str, lines: Vec<String>, yes: &'static str) -> Self {
        // Focus starts on the safe button: Cancel.
        Self {
            kind,
            title: title.into(),
            lines,
            buttons: vec![yes, "Cancel"],
            focus: 1,
            grace: 0,
        }
    }

    pub fn is_rotate(&self) -> bool {
        matches!(self.kind, ConfirmKind::Rotate(_))
    }

    /// Where this dialog sits in the keymap.
    pub fn context(&self) -> Context {
        if self.buttons.len() == 1 {
            Context::Notice
        } else if self.is_rotate() {
            Context::Rotate
        } else {
            Context::Confirm
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Decision {
        self.on_command(keymap::command(self.context(), &key))
    }

    pub fn on_command(&mut self, command: Option<Command>) -> Decision {
        let n = self.buttons.len();
        let no = n - 1;
        match command {
            Some(Command::Yes) => Decision::Yes,
            Some(Command::No) => Decision::No,
            Some(Command::Press) if self.focus == no => Decision::No,
            Some(Command::Press) => Decision::Yes,
            Some(Command::NextButton | Command::PrevButton) => {
                self.focus = cycle(self.focus, n, command == Some(Command::NextButton));
                Decision::Undecided
            }
            Some(Command::GraceNext | Command::GracePrev) => {
                let forward = command == Some(Command::GraceNext);
                self.grace = cycle(self.grace, GRACE_CHOICES.len(), forward);
                Decision::Undecided
            }
            Some(Command::Grace(i)) => {
                self.grace = usize::from(i).min(GRACE_CHOICES.len() - 1);
                Decision::Undecided
            }
            _ => Decision::Undecided,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn press(c: &mut Confirm, code: KeyCode) -> Decision {
        c.on_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn type_char(c: &mut Confirm, ch: char) -> Decision {
        c.on_key(keymap::char_key(ch))
    }

    #[test]
    fn enter_on_the_default_button_is_no_and_y_is_yes() {
        let mut c = Confirm::discard_form();
        assert_eq!(press(&mut c, KeyCode::Enter), Decision::No);
        assert_eq!(type_char(&mut c, 'y'), Decision::Yes);
        assert_eq!(press(&mut c, KeyCode::Esc), Decision::No);
        assert_eq!(press(&mut c, KeyCode::Left), Decision::Undecided);
        assert_eq!(press(&mut c, KeyCode::Enter), Decision::Yes);
    }

    #[test]
    fn rotation_offers_three_grace_periods() {
        let key = crate::api::ApiKey {
            id: "key_a".into(),
            name: "n".into(),
            description: String::new(),
            prefix: "eg_live_abcd".into(),
            scopes: vec![],
            status: crate::key::KeyStatus::Active,
            created_at: chrono::Utc::now(),
            created_by: "a@b".into(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            revoked_by: None,
        };
        let mut c = Confirm::rotate(&key);
        assert_eq!(GRACE_CHOICES[c.grace].1, 3_600);
        type_char(&mut c, '1');
        assert_eq!(GRACE_CHOICES[c.grace].1, 0);
        press(&mut c, KeyCode::Left);
        assert_eq!(GRACE_CHOICES[c.grace].1, 86_400);
        assert_eq!(
            press(&mut c, KeyCode::Enter),
            Decision::No,
            "focus is on Cancel"
        );
    }
}
