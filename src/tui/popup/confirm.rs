//! The yes/no dialog (gitui's confirm popup): it stores what a yes (and a
//! no) will do and fires it when answered; focus starts on the safe button;
//! `y` is yes, `n`/`Esc` no. With one button it is a notice. Its state, keys,
//! hints and drawing; the questions it asks are built where they belong
//! (revoke.rs, create.rs, copy_once.rs); rotate.rs draws with it too.

use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::{button, centered, cycle, Ctx, Intent, Then};
use crate::tui::keymap::{self, Command, Context};
use crate::tui::theme::Styles;

#[derive(Debug, Clone)]
pub struct Confirm {
    pub title: String,
    pub lines: Vec<String>,
    /// Button labels; the last one is "no".
    pub buttons: Vec<&'static str>,
    pub focus: usize,
    /// What a yes does once the dialog is closed (`None`: only close it).
    yes: Option<Then>,
    /// What a no does once the dialog is closed.
    no: Option<Then>,
}

/// What a key press in a dialog decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Yes,
    No,
    Undecided,
}

impl Confirm {
    /// An explanation with one button: nothing to decide.
    pub fn notice(title: &str, lines: Vec<String>) -> Self {
        Self {
            title: title.into(),
            lines,
            buttons: vec!["OK"],
            focus: 0,
            yes: None,
            no: None,
        }
    }

    /// A question whose yes (labelled `yes`) does `then`; focus starts on
    /// the safe button: Cancel.
    pub fn ask(title: &str, lines: Vec<String>, yes: &'static str, then: Then) -> Self {
        Self {
            title: title.into(),
            lines,
            buttons: vec![yes, "Cancel"],
            focus: 1,
            yes: Some(then),
            no: None,
        }
    }

    /// The "no" button says `label`.
    pub fn no_label(mut self, label: &'static str) -> Self {
        if let Some(no) = self.buttons.last_mut() {
            *no = label;
        }
        self
    }

    /// A no does `then`.
    pub fn on_no(mut self, then: Then) -> Self {
        self.no = Some(then);
        self
    }

    /// Focus starts on yes (when yes is the recommended answer).
    pub fn focus_yes(mut self) -> Self {
        self.focus = 0;
        self
    }

    /// Where this dialog sits in the keymap.
    /// What a yes does (the revoke dialog's usage line finds its key by it).
    pub fn yes_then(&self) -> Option<&Then> {
        self.yes.as_ref()
    }

    pub fn context(&self) -> Context {
        if self.buttons.len() == 1 {
            Context::Notice
        } else {
            Context::Confirm
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Decision {
        self.on_command(keymap::command(self.context(), &key))
    }

    /// What a key does to the dialog, as the app should carry it out.
    pub fn handle(&mut self, command: Option<Command>) -> Intent {
        let then = match self.on_command(command) {
            Decision::Undecided => return Intent::Stay,
            Decision::Yes => self.yes.take(),
            Decision::No => self.no.take(),
        };
        match then {
            Some(then) => Intent::CloseThen(then),
            None => Intent::Close,
        }
    }

    pub fn on_command(&mut self, command: Option<Command>) -> Decision {
        let n = self.buttons.len();
        decide(&mut self.focus, n, command)
    }
}

/// What `command` does to a dialog of `n` buttons, the last one "no",
/// focused on `focus`.
pub(super) fn decide(focus: &mut usize, n: usize, command: Option<Command>) -> Decision {
    match command {
        Some(Command::Yes) => Decision::Yes,
        Some(Command::No) => Decision::No,
        Some(Command::Press) if *focus == n - 1 => Decision::No,
        Some(Command::Press) => Decision::Yes,
        Some(Command::NextButton | Command::PrevButton) => {
            *focus = cycle(*focus, n, command == Some(Command::NextButton));
            Decision::Undecided
        }
        _ => Decision::Undecided,
    }
}

pub fn draw(frame: &mut Frame, ctx: &Ctx, dialog: &Confirm, area: Rect) {
    let lines: Vec<Line> = dialog.lines.iter().map(|l| Line::from(l.clone())).collect();
    let buttons = buttons(&dialog.buttons, dialog.focus, ctx.theme);
    draw_box(frame, area, &dialog.title, lines, buttons, dialog.context());
}

/// The row of buttons, the focused one reversed.
pub(super) fn buttons(labels: &[&str], focus: usize, theme: &Styles) -> Line<'static> {
    let mut buttons = vec![Span::raw("  ")];
    for (i, label) in labels.iter().enumerate() {
        buttons.push(button(label, i == focus, theme));
        buttons.push(Span::raw("  "));
    }
    Line::from(buttons)
}

/// A dialog box centred in `area`: `lines`, a blank line, `buttons`, and the
/// keys of `context` on its border; as tall as its wrapped text.
pub(super) fn draw_box<'a>(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    mut lines: Vec<Line<'a>>,
    buttons: Line<'a>,
    context: Context,
) {
    let width = area.width.min(72);
    lines.push(Line::from(""));
    lines.push(buttons);
    // Wrapped text may need more rows than lines.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let height = u16::try_from(rows + 2).unwrap_or(u16::MAX);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(format!(" {title} "))
        .title_bottom(keymap::border(context));
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
        let mut c = super::super::create::discard_question();
        assert_eq!(press(&mut c, KeyCode::Enter), Decision::No);
        assert_eq!(type_char(&mut c, 'y'), Decision::Yes);
        assert_eq!(press(&mut c, KeyCode::Esc), Decision::No);
        assert_eq!(press(&mut c, KeyCode::Left), Decision::Undecided);
        assert_eq!(press(&mut c, KeyCode::Enter), Decision::Yes);
    }
}
