//! Terminal input: crossterm's event stream, turned into actions.

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;

use super::action::Action;

/// Terminal events as actions; `None` when the terminal is gone (then SIGHUP
/// or the end of input quits).
pub struct Input {
    events: EventStream,
}

impl Input {
    pub fn new() -> Self {
        Self {
            events: EventStream::new(),
        }
    }

    /// The next key, paste or resize; other events (mouse, focus) are skipped.
    pub async fn next(&mut self) -> Option<Action> {
        loop {
            match self.events.next().await? {
                Ok(Event::Key(key)) => return Some(Action::Key(key)),
                Ok(Event::Resize(w, h)) => return Some(Action::Resize(w, h)),
                Ok(Event::Paste(text)) => return Some(Action::Paste(text)),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
    }
}

impl Default for Input {
    fn default() -> Self {
        Self::new()
    }
}
