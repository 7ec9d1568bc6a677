//! The UI's terminals. A session is an input-event stream, a backend that
//! writes to any `Write`, a clipboard and its options; the local terminal
//! ([`local`]) and a raw byte stream ([`bytes`], e.g. an SSH channel) are the
//! two adapters. Nothing here or in the core reads the process environment:
//! only the local adapter does, to fill [`TermOptions`].

pub mod backend;
pub mod bytes;
pub mod keys;
pub mod local;

/// Where a copied secret goes in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipboardMethod {
    /// OSC 52 to the session's own terminal only (remote sessions).
    Osc52,
    /// OSC 52, and the local system clipboard as well (a local graphical session).
    Osc52AndSystem,
}

/// The terminal-specific choices of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermOptions {
    /// Colour, or none (no-color.org, decided by the adapter).
    pub color: bool,
    /// How copies reach the clipboard: OSC 52 always goes to the session's
    /// own output; the system clipboard only where the session is local.
    pub clipboard: ClipboardMethod,
    /// Columns and rows at the start; later sizes arrive as resize events.
    pub size: (u16, u16),
}

impl TermOptions {
    /// The UI's colours for this session.
    pub fn theme(&self) -> super::theme::Theme {
        super::theme::Theme { color: self.color }
    }
}
