//! The local terminal adapter: the process's own tty in raw mode on the
//! alternate screen with bracketed paste, crossterm's input events and the
//! signals that end a terminal session (SIGTERM, SIGHUP) as one input stream,
//! and the session options read from the environment — the only place the UI
//! looks at `NO_COLOR`, `DISPLAY` and the like.

use std::ffi::OsString;

use crossterm::event::{Event, EventStream};
use futures_util::{Stream, StreamExt};
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::{ClipboardMethod, TermOptions};
use crate::tui::event::InputEvent;

/// This process's terminal's options: colour unless `NO_COLOR` is set to
/// something non-empty (no-color.org); the system clipboard as well in a local
/// graphical session that is not an SSH one; the tty's size.
pub fn options_from_env(size: (u16, u16)) -> TermOptions {
    options_from(|name| std::env::var_os(name), size)
}

/// [`options_from_env`] with the environment given as a lookup.
fn options_from(var: impl Fn(&str) -> Option<OsString>, size: (u16, u16)) -> TermOptions {
    let set = |name: &str| var(name).is_some();
    let no_color = var("NO_COLOR").is_some_and(|v| !v.is_empty());
    let display = set("DISPLAY") || set("WAYLAND_DISPLAY");
    let ssh = set("SSH_CONNECTION") || set("SSH_TTY");
    TermOptions {
        color: !no_color,
        clipboard: if display && !ssh {
            ClipboardMethod::Osc52AndSystem
        } else {
            ClipboardMethod::Osc52
        },
        size,
    }
}

/// Takes over the terminal: raw mode, the alternate screen, bracketed paste
/// (pasting into the form arrives as one event), and a panic hook that
/// restores it before the report is printed. No mouse capture, ever, so the
/// secret in the copy-once modal can always be selected by hand.
pub fn enter() -> ratatui::DefaultTerminal {
    let terminal = ratatui::init();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableBracketedPaste);
    terminal
}

/// Gives the terminal back as it was: the alternate screen blanked
/// ([`super::backend::blank`]), then left, and raw mode off.
pub fn leave() {
    let mut out = std::io::stdout();
    let _ = crossterm::execute!(out, crossterm::event::DisableBracketedPaste);
    let _ = super::backend::blank(&mut out);
    ratatui::restore();
}

/// Keys, pastes and resizes from the tty, and a quit on SIGTERM or SIGHUP;
/// ends when the terminal is gone.
pub struct LocalInput {
    events: EventStream,
    terminate: Signal,
    hangup: Signal,
}

impl LocalInput {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            events: EventStream::new(),
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// The next event; other terminal events (mouse, focus) are skipped.
    pub async fn next(&mut self) -> Option<InputEvent> {
        loop {
            tokio::select! {
                event = self.events.next() => match event? {
                    Ok(Event::Key(key)) => return Some(InputEvent::Key(key)),
                    Ok(Event::Resize(w, h)) => return Some(InputEvent::Resize(w, h)),
                    Ok(Event::Paste(text)) => return Some(InputEvent::Paste(text)),
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return None,
                },
                _ = self.terminate.recv() => return Some(InputEvent::Quit("SIGTERM: quitting")),
                _ = self.hangup.recv() => {
                    return Some(InputEvent::Quit("SIGHUP (terminal gone): quitting"))
                }
            }
        }
    }

    pub fn into_stream(self) -> impl Stream<Item = InputEvent> + Unpin {
        Box::pin(futures_util::stream::unfold(self, |mut input| async move {
            input.next().await.map(|event| (event, input))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(vars: &[(&str, &str)]) -> TermOptions {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        options_from(
            |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            (80, 24),
        )
    }

    #[test]
    fn no_color_set_and_non_empty_turns_colour_off() {
        assert!(options(&[]).color);
        assert!(options(&[("NO_COLOR", "")]).color, "empty means unset");
        assert!(!options(&[("NO_COLOR", "1")]).color);
        assert_eq!(options(&[]).size, (80, 24));
    }

    #[test]
    fn the_system_clipboard_only_on_a_local_display_not_over_ssh() {
        use ClipboardMethod::*;
        assert_eq!(options(&[]).clipboard, Osc52);
        assert_eq!(options(&[("DISPLAY", ":0")]).clipboard, Osc52AndSystem);
        assert_eq!(
            options(&[("WAYLAND_DISPLAY", "wayland-0")]).clipboard,
            Osc52AndSystem
        );
        assert_eq!(
            options(&[("DISPLAY", ":0"), ("SSH_CONNECTION", "1 2 3 4")]).clipboard,
            Osc52
        );
        assert_eq!(
            options(&[("DISPLAY", ":0"), ("SSH_TTY", "/dev/pts/1")]).clipboard,
            Osc52
        );
    }
}
