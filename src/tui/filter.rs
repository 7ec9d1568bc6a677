//! The filter line (`/`): what its keys do, which keys it matches, and its
//! drawing above the table.

use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use tui_input::backend::crossterm::EventHandler;

use super::app::App;
use super::keymap::Command;
use crate::api::ApiKey;

impl App {
    pub(super) fn on_filter_key(&mut self, command: Option<Command>, key: KeyEvent) {
        match command {
            Some(Command::FilterKeep) => self.filtering = false,
            Some(Command::FilterClear) => {
                self.filtering = false;
                self.filter.reset();
                self.rebuild_rows();
            }
            Some(command @ (Command::Down | Command::Up)) => {
                self.filtering = false;
                self.on_table_command(command);
            }
            _ => {
                let before = self.filter.value().len();
                if self
                    .filter
                    .handle_event(&crossterm::event::Event::Key(key))
                    .is_some()
                    || before != self.filter.value().len()
                {
                    self.rebuild_rows();
                }
            }
        }
        self.dirty = true;
    }
}

/// Whether a key matches the (lower-cased) filter text.
pub(super) fn matches_filter(k: &ApiKey, needle: &str) -> bool {
    k.name.to_lowercase().contains(needle)
        || k.prefix.to_lowercase().contains(needle)
        || k.description.to_lowercase().contains(needle)
        || k.scopes.iter().any(|s| s.contains(needle))
}

/// The filter line: what is typed, with a cursor while typing.
pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let cursor = if app.filtering { "█" } else { "" };
    let line = Line::from(vec![
        Span::styled(" / ", app.theme.key_hint()),
        Span::raw(format!("{}{cursor}", app.filter.value())),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}
