//! Raw terminal input bytes → [`InputEvent`]s: termina's incremental parser
//! (sequences split across reads are kept until complete), its events turned
//! into the crossterm `KeyEvent`s the app consumes, and the lone-Esc rule: an
//! Esc with nothing after it is a key press once the caller says no more bytes
//! followed in time ([`InputParser::flush`]).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::tui::event::InputEvent;

const ESC: u8 = 0x1b;

/// Turns chunks of input bytes into events.
#[derive(Debug, Default)]
pub struct InputParser {
    parser: termina::Parser,
    /// The last chunk ended in Esc: it may be a lone Esc or the start of a sequence.
    esc_pending: bool,
}

impl InputParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one chunk; an incomplete sequence at its end waits for the next chunk.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<InputEvent> {
        if bytes.is_empty() {
            return Vec::new();
        }
        self.parser.parse(bytes, true);
        self.esc_pending = bytes.last() == Some(&ESC);
        self.drain()
    }

    /// Whether an Esc at the end of the input is still undecided; if no byte
    /// follows soon, call [`Self::flush`].
    pub fn esc_pending(&self) -> bool {
        self.esc_pending
    }

    /// No more bytes followed: a waiting lone Esc is the Esc key.
    pub fn flush(&mut self) -> Vec<InputEvent> {
        self.esc_pending = false;
        self.parser.parse(&[], false);
        self.drain()
    }

    fn drain(&mut self) -> Vec<InputEvent> {
        std::iter::from_fn(|| self.parser.pop())
            .filter_map(convert)
            .collect()
    }
}

/// termina's event as ours; `None` for what the UI does not use (mouse,
/// focus, replies to queries, key releases).
fn convert(event: termina::Event) -> Option<InputEvent> {
    match event {
        termina::Event::Key(key) if key.kind == termina::event::KeyEventKind::Press => {
            Some(InputEvent::Key(KeyEvent::new_with_kind(
                key_code(key.code)?,
                modifiers(key.modifiers),
                KeyEventKind::Press,
            )))
        }
        termina::Event::Paste(text) => Some(InputEvent::Paste(text)),
        _ => None,
    }
}

fn key_code(code: termina::event::KeyCode) -> Option<KeyCode> {
    use termina::event::KeyCode as T;
    Some(match code {
        T::Char(c) => KeyCode::Char(c),
        T::Enter => KeyCode::Enter,
        T::Backspace => KeyCode::Backspace,
        T::Tab => KeyCode::Tab,
        T::BackTab => KeyCode::BackTab,
        T::Escape => KeyCode::Esc,
        T::Left => KeyCode::Left,
        T::Right => KeyCode::Right,
        T::Up => KeyCode::Up,
        T::Down => KeyCode::Down,
        T::Home => KeyCode::Home,
        T::End => KeyCode::End,
        T::PageUp => KeyCode::PageUp,
        T::PageDown => KeyCode::PageDown,
        T::Insert => KeyCode::Insert,
        T::Delete => KeyCode::Delete,
        T::Function(n) => KeyCode::F(n),
        _ => return None,
    })
}

fn modifiers(m: termina::event::Modifiers) -> KeyModifiers {
    use termina::event::Modifiers as T;
    let mut out = KeyModifiers::NONE;
    for (from, to) in [
        (T::SHIFT, KeyModifiers::SHIFT),
        (T::ALT, KeyModifiers::ALT),
        (T::CONTROL, KeyModifiers::CONTROL),
        (T::SUPER, KeyModifiers::SUPER),
        (T::HYPER, KeyModifiers::HYPER),
        (T::META, KeyModifiers::META),
    ] {
        if m.contains(from) {
            out |= to;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> InputEvent {
        InputEvent::Key(KeyEvent::new(code, modifiers))
    }

    fn plain(code: KeyCode) -> InputEvent {
        key(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_keys_the_ui_uses() {
        let mut p = InputParser::new();
        let cases: &[(&[u8], InputEvent)] = &[
            (b"\x1b[A", plain(KeyCode::Up)),
            (b"\x1b[B", plain(KeyCode::Down)),
            (b"\x1bOB", plain(KeyCode::Down)),
            (b"\x1b[C", plain(KeyCode::Right)),
            (b"\x1b[D", plain(KeyCode::Left)),
            (b"\x1b[H", plain(KeyCode::Home)),
            (b"\x1b[F", plain(KeyCode::End)),
            (b"\x1b[1~", plain(KeyCode::Home)),
            (b"\x1b[4~", plain(KeyCode::End)),
            (b"\x1b[5~", plain(KeyCode::PageUp)),
            (b"\x1b[6~", plain(KeyCode::PageDown)),
            (b"\x1b[3~", plain(KeyCode::Delete)),
            (b"\t", plain(KeyCode::Tab)),
            (b"\x1b[Z", key(KeyCode::BackTab, KeyModifiers::SHIFT)),
            (b"\r", plain(KeyCode::Enter)),
            (b"\x7f", plain(KeyCode::Backspace)),
            (b"\x03", key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            (b"\x15", key(KeyCode::Char('u'), KeyModifiers::CONTROL)),
            (b"n", plain(KeyCode::Char('n'))),
            (b"G", key(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            (b" ", plain(KeyCode::Char(' '))),
            ("é".as_bytes(), plain(KeyCode::Char('é'))),
            (b"\x1bx", key(KeyCode::Char('x'), KeyModifiers::ALT)),
            (b"\x1b\x1b", plain(KeyCode::Esc)),
        ];
        for (bytes, want) in cases {
            assert_eq!(p.feed(bytes), vec![want.clone()], "{bytes:?}");
            assert!(p.flush().is_empty(), "nothing left after {bytes:?}");
        }
    }

    #[test]
    fn sequences_split_across_reads_are_joined() {
        let mut p = InputParser::new();
        assert!(p.feed(b"\x1b").is_empty());
        assert!(p.esc_pending());
        assert!(p.feed(b"[").is_empty());
        assert_eq!(p.feed(b"B"), vec![plain(KeyCode::Down)]);
        assert!(p.feed(b"\x1b[3").is_empty());
        assert_eq!(
            p.feed(b"~x"),
            vec![plain(KeyCode::Delete), plain(KeyCode::Char('x'))]
        );
        // A character's UTF-8 bytes split between reads.
        let e = "é".as_bytes();
        assert!(p.feed(&e[..1]).is_empty());
        assert_eq!(p.feed(&e[1..]), vec![plain(KeyCode::Char('é'))]);
    }

    #[test]
    fn a_lone_esc_is_a_key_once_nothing_follows() {
        let mut p = InputParser::new();
        assert!(p.feed(b"\x1b").is_empty(), "could still be a sequence");
        assert!(p.esc_pending());
        assert_eq!(p.flush(), vec![plain(KeyCode::Esc)]);
        assert!(!p.esc_pending());
        // An unfinished sequence is not an Esc: it waits for its end.
        assert!(p.feed(b"\x1b[").is_empty());
        assert!(!p.esc_pending());
        assert!(p.flush().is_empty());
        assert_eq!(p.feed(b"A"), vec![plain(KeyCode::Up)]);
    }

    #[test]
    fn bracketed_paste_is_one_event_even_when_split() {
        let mut p = InputParser::new();
        assert_eq!(
            p.feed(b"\x1b[200~name with q and \x1b[B inside\x1b[201~"),
            vec![InputEvent::Paste("name with q and \x1b[B inside".into())]
        );
        assert!(p.feed(b"\x1b[200~Dep").is_empty());
        assert!(p.feed(b"loy bot").is_empty());
        assert_eq!(
            p.feed(b"\x1b[201~q"),
            vec![
                InputEvent::Paste("Deploy bot".into()),
                plain(KeyCode::Char('q'))
            ]
        );
    }

    #[test]
    fn mouse_and_focus_reports_are_skipped() {
        let mut p = InputParser::new();
        assert_eq!(p.feed(b"\x1b[I\x1b[Oq"), vec![plain(KeyCode::Char('q'))]);
    }
}
