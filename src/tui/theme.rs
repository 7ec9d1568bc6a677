//! Colours and symbols: status in colour *and* word with a symbol, the
//! terminal's own foreground for text, and no colour at all when the session
//! says so (the local adapter decides from the environment).

use ratatui::style::{Color, Modifier, Style};

use crate::key::KeyStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    pub fn status(&self, status: KeyStatus) -> Style {
        self.fg(match status {
            KeyStatus::Active => Color::Green,
            KeyStatus::Expired => Color::Yellow,
            KeyStatus::Revoked => Color::Red,
        })
    }

    pub fn title(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn header(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    /// The selected row: reversed, which reads on light and dark backgrounds alike.
    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn dim(&self) -> Style {
        Style::new().add_modifier(Modifier::DIM)
    }

    pub fn key_hint(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn error_banner(&self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    pub fn error_text(&self) -> Style {
        if self.color {
            Style::new().fg(Color::Red)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    pub fn field(&self) -> Style {
        Style::new().add_modifier(Modifier::UNDERLINED)
    }

    pub fn focused_field(&self) -> Style {
        Style::new().add_modifier(Modifier::UNDERLINED | Modifier::BOLD)
    }

    /// The secret in the copy-once modal: plain, so it can be selected cleanly.
    pub fn secret(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn active_tab(&self) -> Style {
        self.fg(Color::Cyan)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }
}
