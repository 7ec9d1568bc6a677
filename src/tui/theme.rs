//! Colours and symbols: status in colour *and* word with a symbol, the
//! terminal's own foreground for text, and no colour at all when the session
//! says so (the local adapter decides from the environment). Three palettes
//! (dark, light, high contrast); `NO_COLOR` wins over any of them.

use ratatui::style::{Color, Modifier, Style};

use crate::key::health::Badge;
use crate::key::KeyStatus;
pub use crate::present::Palette;

/// The session's colour choice: colour, or none at all (`NO_COLOR`, a dumb
/// terminal; the adapter decides). The styles themselves are [`Styles`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

/// What the UI draws with: the session's [`Theme`] (colour or not) in a
/// [`Palette`]. The one table of styles, status and badge colours included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Styles {
    color: bool,
    pub palette: Palette,
}

impl Styles {
    pub fn new(theme: Theme, palette: Palette) -> Self {
        Self {
            color: theme.color,
            palette,
        }
    }

    /// The session's colour choice these styles were made for.
    pub fn theme(&self) -> Theme {
        Theme { color: self.color }
    }

    /// A foreground per palette; bold in high contrast; nothing without colour.
    fn pick(&self, dark: Color, light: Color, high: Color) -> Style {
        match self.palette {
            _ if !self.color => Style::new(),
            Palette::Dark => Style::new().fg(dark),
            Palette::Light => Style::new().fg(light),
            Palette::HighContrast => Style::new().fg(high).add_modifier(Modifier::BOLD),
        }
    }

    /// A key's status: green, yellow, red (always with its word and symbol).
    pub fn status(&self, status: KeyStatus) -> Style {
        match status {
            KeyStatus::Active => self.pick(Color::Green, Color::Indexed(28), Color::LightGreen),
            KeyStatus::Expired => self.pick(Color::Yellow, Color::Indexed(130), Color::LightYellow),
            KeyStatus::Revoked => self.pick(Color::Red, Color::Indexed(124), Color::LightRed),
        }
    }

    /// A health badge: urgent ones (expired, expiring) in the warning colour,
    /// `refused` in red (refused checks' colour), advice in another, a
    /// rotation winding down (a state, not advice) in a third; bold without colour, so the word stands out anyway.
    pub fn badge(&self, badge: Badge) -> Style {
        if !self.color {
            return Style::new().add_modifier(Modifier::BOLD);
        }
        let urgent = badge.urgent();
        match self.palette {
            Palette::HighContrast => Style::new()
                .fg(Color::Black)
                .bg(if urgent {
                    Color::LightYellow
                } else {
                    Color::LightCyan
                })
                .add_modifier(Modifier::BOLD),
            _ if urgent => self.status(KeyStatus::Expired),
            // A client refused now, in the usage's refused colour.
            _ if badge == Badge::Refused => self.status(KeyStatus::Revoked),
            _ if badge == Badge::Rotating => {
                self.pick(Color::LightBlue, Color::Indexed(25), Color::LightBlue)
            }
            _ => self.pick(Color::Magenta, Color::Indexed(90), Color::LightMagenta),
        }
    }

    pub fn key_hint(&self) -> Style {
        self.pick(Color::Cyan, Color::Indexed(25), Color::LightCyan)
            .add_modifier(Modifier::BOLD)
    }

    pub fn active_tab(&self) -> Style {
        self.key_hint().add_modifier(Modifier::UNDERLINED)
    }

    pub fn error_text(&self) -> Style {
        if self.color {
            self.pick(Color::Red, Color::Indexed(124), Color::LightRed)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
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

    /// Secondary text; high contrast dims nothing.
    pub fn dim(&self) -> Style {
        match self.palette {
            Palette::HighContrast => Style::new(),
            _ => Style::new().add_modifier(Modifier::DIM),
        }
    }

    /// What the filter matched in a cell: coloured, and underlined bold so
    /// it shows without colour too.
    pub fn matched(&self) -> Style {
        self.pick(Color::Yellow, Color::Indexed(130), Color::LightYellow)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
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
}
