//! The yes/no dialog every question uses (gitui's confirm popup shape): it
//! stores the action it will fire; focus starts on the safe button; `y` is
//! yes, `n`/`Esc` no. Its state, keys and drawing; what revoke and rotate ask
//! is in revoke.rs and rotate.rs.

use crossterm::event::KeyEvent;

use super::app::App;
use super::popup::{cycle, Outcome};
use super::rotate::GRACE_CHOICES;
use super::view::{button, centered};
use crate::api::ApiKey;
use crate::tui::keymap::{self, Command, Context};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

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

    pub(super) fn two_buttons(
        kind: ConfirmKind,
        title: &str,
        lines: Vec<String>,
        yes: &'static str,
    ) -> Self {
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

    /// What a key does to the dialog, as the app should carry it out.
    pub fn handle(&mut self, command: Option<Command>) -> Outcome {
        let yes = match self.on_command(command) {
            Decision::Undecided => return Outcome::Stay,
            Decision::Yes => true,
            Decision::No => false,
        };
        Outcome::Decided {
            kind: self.kind.clone(),
            yes,
            grace_seconds: GRACE_CHOICES[self.grace].1,
        }
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

pub fn draw(frame: &mut Frame, app: &App, dialog: &Confirm, area: Rect) {
    let theme = &app.theme;
    let width = area.width.min(72);
    let mut lines: Vec<Line> = dialog.lines.iter().map(|l| Line::from(l.clone())).collect();
    if dialog.is_rotate() {
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
    }
    lines.push(Line::from(""));
    let mut buttons = vec![Span::raw("  ")];
    for (i, label) in dialog.buttons.iter().enumerate() {
        buttons.push(button(label, i == dialog.focus, theme));
        buttons.push(Span::raw("  "));
    }
    lines.push(Line::from(buttons));
    // Wrapped text may need more rows than lines.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let height = u16::try_from(rows + 2).unwrap_or(u16::MAX);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    let hint = keymap::border(dialog.context());
    let block = Block::bordered()
        .title(format!(" {} ", dialog.title))
        .title_bottom(hint);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        popup,
    );
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
