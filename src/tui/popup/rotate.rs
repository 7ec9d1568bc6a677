//! The rotate dialog (`R`): the question, the grace period the old key keeps
//! working (now, 1 hour, 24 hours), its keys and drawing; a yes asks the app
//! to rotate. A key that is not active gets a notice instead.

use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::confirm::{self, decide, Decision};
use super::{cycle, Confirm, Ctx, Intent, Popup, Then};
use crate::api::ApiKey;
use crate::key::KeyStatus;
use crate::policy::Policy;
use crate::present::DisplayTz;
use crate::tui::keymap::{self, Command, Context};

/// Grace periods offered when rotating: (label, seconds).
pub const GRACE_CHOICES: [(&str, u32); 3] = [
    ("now", 0),
    ("after 1 hour", 3_600),
    ("after 24 hours", 86_400),
];

const BUTTONS: [&str; 2] = ["Rotate", "Cancel"];

#[derive(Debug, Clone)]
pub struct Rotate {
    pub key: ApiKey,
    pub lines: Vec<String>,
    /// The focused button (starts on Cancel).
    pub focus: usize,
    /// Index into [`GRACE_CHOICES`].
    pub grace: usize,
}

/// What `R` opens for `key`: the rotate dialog (saying the expiry the
/// policy gives the new key), or why it cannot be rotated.
pub fn ask(key: &ApiKey, policy: &Policy, now: DateTime<Utc>, tz: DisplayTz) -> Popup {
    match KeyStatus::derive(key.revoked_at, key.expires_at, now) {
        KeyStatus::Active => {
            let mut dialog = Rotate::new(key);
            // The service caps the new expiry as the policy says: say so first.
            let capped = policy.rotated_expiry(now, key.expires_at);
            if let (Some(at), true) = (capped, capped != key.expires_at) {
                dialog.lines.insert(
                    3,
                    format!(
                        "The organisation's policy sets its expiry to {}.",
                        tz.weekday_time(at)
                    ),
                );
            }
            Popup::Rotate(Box::new(dialog))
        }
        status => Popup::Confirm(Box::new(Confirm::notice(
            "Cannot rotate",
            vec![format!(
                "“{}” is {}: only an active key can be rotated. Press n to create a new key instead.",
                key.name,
                status.as_str()
            )],
        ))),
    }
}

impl Rotate {
    pub fn new(key: &ApiKey) -> Self {
        let lines = vec![
            format!("“{}”  {}...", key.name, key.prefix),
            String::new(),
            "A new key with the same name, description, scopes and expiry is created and shown once.".into(),
            "The old key stops working (←/→ or 1-3 to choose):".into(),
        ];
        Self {
            key: key.clone(),
            lines,
            focus: 1,
            grace: 1,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Decision {
        self.on_command(keymap::command(Context::Rotate, &key))
    }

    /// What a key does to the dialog, as the app should carry it out.
    pub fn handle(&mut self, command: Option<Command>) -> Intent {
        match self.on_command(command) {
            Decision::Undecided => Intent::Stay,
            Decision::No => Intent::Close,
            Decision::Yes => Intent::CloseThen(Then::Rotate {
                key: self.key.clone(),
                grace_seconds: GRACE_CHOICES[self.grace].1,
            }),
        }
    }

    pub fn on_command(&mut self, command: Option<Command>) -> Decision {
        match command {
            Some(Command::GraceNext | Command::GracePrev) => {
                let forward = command == Some(Command::GraceNext);
                self.grace = cycle(self.grace, GRACE_CHOICES.len(), forward);
                Decision::Undecided
            }
            Some(Command::Grace(i)) => {
                self.grace = usize::from(i).min(GRACE_CHOICES.len() - 1);
                Decision::Undecided
            }
            _ => decide(&mut self.focus, BUTTONS.len(), command),
        }
    }
}

pub fn draw(frame: &mut Frame, ctx: &Ctx, dialog: &Rotate, area: Rect) {
    let theme = ctx.theme;
    let mut lines: Vec<Line> = dialog.lines.iter().map(|l| Line::from(l.clone())).collect();
    let mut choices = vec![Span::raw("  ")];
    for (i, (label, _)) in GRACE_CHOICES.iter().enumerate() {
        let mark = if i == dialog.grace { "(•)" } else { "( )" };
        let style = if i == dialog.grace {
            theme.title()
        } else {
            theme.dim()
        };
        choices.push(Span::styled(format!("{mark} {} {label}", i + 1), style));
        choices.push(Span::raw("  "));
    }
    lines.push(Line::from(choices));
    let buttons = confirm::buttons(&BUTTONS, dialog.focus, theme);
    confirm::draw_box(
        frame,
        area,
        "Rotate API key",
        lines,
        buttons,
        Context::Rotate,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn press(c: &mut Rotate, code: KeyCode) -> Decision {
        c.on_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn type_char(c: &mut Rotate, ch: char) -> Decision {
        c.on_key(keymap::char_key(ch))
    }

    #[test]
    fn rotation_offers_three_grace_periods() {
        let key = crate::api::ApiKey {
            id: "key_a".into(),
            name: "n".into(),
            description: String::new().into(),
            prefix: "eg_live_abcd".into(),
            scopes: Vec::new().into(),
            status: crate::key::KeyStatus::Active,
            created_at: chrono::Utc::now(),
            created_by: "a@b".into(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            revoked_by: None,
        };
        let mut c = Rotate::new(&key);
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
