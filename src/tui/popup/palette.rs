//! The command palette (`:`, as in k9s): every command of the table by its
//! name in the keymap, completed as it is typed; its keys and drawing.

use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

use super::{clear_with_margin, Ctx, Intent};
use crate::tui::keymap::{self, Command, Context, PaletteEntry};
use crate::tui::view::cut;

/// Completions shown under the line at most.
const SHOWN: usize = 8;

#[derive(Default)]
pub struct CommandPalette {
    input: Input,
    /// The chosen completion, an index into [`CommandPalette::completions`].
    chosen: usize,
    /// What Enter found nothing for, said until the next key.
    unknown: Option<String>,
}

impl CommandPalette {
    pub fn new() -> Self {
        Self::default()
    }

    /// What is typed after the `:`.
    pub fn typed(&self) -> &str {
        self.input.value()
    }

    /// The commands what is typed may name, best first.
    pub fn completions(&self) -> Vec<PaletteEntry> {
        keymap::complete(self.input.value())
    }

    /// What a key does to the palette: Enter runs the chosen completion.
    pub fn handle(&mut self, command: Option<Command>, key: KeyEvent) -> Intent {
        self.unknown = None;
        let completions = self.completions();
        let len = completions.len().max(1);
        match command {
            Some(Command::Cancel) => return Intent::Close,
            Some(Command::Down) => self.chosen = (self.chosen + 1) % len,
            Some(Command::Up) => self.chosen = (self.chosen + len - 1) % len,
            Some(Command::Complete) => {
                if let Some(entry) = completions.get(self.chosen) {
                    self.input = Input::new(entry.name.to_owned());
                    self.chosen = 0;
                }
            }
            Some(Command::Submit) => match completions.get(self.chosen) {
                Some(entry) => return Intent::Run(entry.command),
                None => self.unknown = Some(self.input.value().trim().to_owned()),
            },
            _ => {
                let before = self.input.value().to_owned();
                self.input.handle_event(&crossterm::event::Event::Key(key));
                if self.input.value() != before {
                    self.chosen = 0;
                }
            }
        }
        Intent::Stay
    }
}

/// The line (`:rev█`) on top, the completions under it, each with its keys
/// and what it does; the chosen one highlighted.
pub fn draw(frame: &mut Frame, ctx: &Ctx, palette: &CommandPalette, area: Rect) {
    let theme = ctx.theme;
    let completions = palette.completions();
    let refresh = keymap::interval(ctx.refresh_every);
    let mut lines = vec![Line::from(vec![
        Span::styled(":", theme.key_hint()),
        Span::raw(format!("{}█", palette.typed())),
    ])];
    if let Some(unknown) = &palette.unknown {
        lines.push(Line::styled(
            format!("No command “{unknown}”: Esc closes, Backspace edits."),
            theme.error_text(),
        ));
    } else if completions.is_empty() {
        lines.push(Line::styled("No command by that name.", theme.dim()));
    }
    // The chosen completion stays in the window.
    let first = palette.chosen.saturating_sub(SHOWN - 1);
    let width = area.width.saturating_sub(2).min(78);
    let room = usize::from(width.saturating_sub(2));
    for (i, entry) in completions.iter().enumerate().skip(first).take(SHOWN) {
        let text = format!(
            " {:<20}{:<12}{}",
            entry.name,
            entry.keys,
            entry.about.replace("{refresh}", &refresh)
        );
        let text = cut::end(&text, room);
        lines.push(if i == palette.chosen {
            Line::styled(text, theme.selected())
        } else {
            Line::from(text)
        });
    }
    let position = match completions.len() {
        0 => " 0 commands ".to_owned(),
        n => format!(" {} of {n} ", palette.chosen + 1),
    };
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + 1,
        width,
        height.min(area.height.saturating_sub(1)),
    );
    clear_with_margin(frame, popup, area);
    let block = Block::bordered()
        .title(" Command ")
        .title(Line::from(position).right_aligned())
        .title_bottom(keymap::border(Context::Palette));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
