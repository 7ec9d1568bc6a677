//! What a terminal session feeds the UI core: keys, pastes, resizes, and a
//! request to quit (a signal, a dropped connection). Every adapter (the local
//! terminal, a byte stream) produces these; the core turns them into actions.

use crossterm::event::KeyEvent;

/// One input event from a session's terminal. Keys are crossterm's
/// `KeyEvent`s used as plain data, whatever terminal they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    Key(KeyEvent),
    /// Text pasted into the terminal (bracketed paste), as one event.
    Paste(String),
    /// The terminal is now `width`×`height` cells.
    Resize(u16, u16),
    /// The session asks the UI to quit; the text says why (for the log).
    Quit(&'static str),
}
