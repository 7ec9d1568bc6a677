//! Raw terminal input bytes → [`InputEvent`]s: termina's incremental parser
//! (sequences split across reads are kept until complete), its events turned
//! into the crossterm `KeyEvent`s the app consumes, and the lone-Esc rule: an
//! Esc with nothing after it is a key press once the caller says no more bytes
//! followed in time ([`InputParser::flush`]). Bracketed pastes are cut out
//! here, before termina, so that a long paste costs linear time and has a
//! limit; so has any other unfinished sequence.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::tui::event::InputEvent;

const ESC: u8 = 0x1b;
const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";
/// The most of one paste that is kept; the rest of it is dropped.
pub const MAX_PASTE: usize = 16 * 1024;
/// Bytes given to termina at once, and how many may wait in it without
/// making an event before they are dropped as a broken sequence.
const PIECE: usize = 1024;
const MAX_UNFINISHED: usize = 4 * 1024;

/// Turns chunks of input bytes into events.
#[derive(Debug, Default)]
pub struct InputParser {
    parser: termina::Parser,
    /// The end of the last chunk, held back: it may begin a paste marker.
    carry: Vec<u8>,
    /// Inside a bracketed paste: its text so far.
    paste: Option<Vec<u8>>,
    /// Bytes given to termina since it last made an event.
    unfinished: usize,
}

impl InputParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one chunk; an incomplete sequence at its end waits for the next chunk.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<InputEvent> {
        let mut events = Vec::new();
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(bytes);
        let mut rest = &data[..];
        loop {
            if let Some(paste) = &mut self.paste {
                if let Some(at) = find(rest, PASTE_END) {
                    append_bounded(paste, &rest[..at]);
                    let text = String::from_utf8_lossy(paste).into_owned();
                    self.paste = None;
                    events.push(InputEvent::Paste(text));
                    rest = &rest[at + PASTE_END.len()..];
                    continue;
                }
                let keep = partial_marker(rest, PASTE_END);
                append_bounded(paste, &rest[..rest.len() - keep]);
                self.carry = rest[rest.len() - keep..].to_vec();
                return events;
            }
            if let Some(at) = find(rest, PASTE_START) {
                self.parse(&rest[..at], &mut events);
                self.paste = Some(Vec::new());
                rest = &rest[at + PASTE_START.len()..];
                continue;
            }
            let keep = partial_marker(rest, PASTE_START);
            self.parse(&rest[..rest.len() - keep], &mut events);
            self.carry = rest[rest.len() - keep..].to_vec();
            return events;
        }
    }

    /// Whether an Esc at the end of the input is still undecided; if no byte
    /// follows soon, call [`Self::flush`].
    pub fn esc_pending(&self) -> bool {
        self.paste.is_none() && self.carry == [ESC]
    }

    /// No more bytes followed: a waiting lone Esc is the Esc key (an
    /// unfinished sequence keeps waiting for its end).
    pub fn flush(&mut self) -> Vec<InputEvent> {
        let mut events = Vec::new();
        if self.paste.is_none() {
            let carry = std::mem::take(&mut self.carry);
            self.parser.parse(&carry, false);
            self.drain(&mut events);
        }
        events
    }

    fn parse(&mut self, bytes: &[u8], events: &mut Vec<InputEvent>) {
        for piece in bytes.chunks(PIECE) {
            self.parser.parse(piece, true);
            let before = events.len();
            self.drain(events);
            if events.len() > before {
                self.unfinished = 0;
            } else {
                self.unfinished += piece.len();
            }
            if self.unfinished > MAX_UNFINISHED {
                tracing::warn!(
                    "dropped {} bytes of terminal input that made no key",
                    self.unfinished
                );
                self.parser = termina::Parser::default();
                self.unfinished = 0;
            }
        }
    }

    fn drain(&mut self, events: &mut Vec<InputEvent>) {
        let mut made = false;
        while let Some(event) = self.parser.pop() {
            made = true;
            events.extend(convert(event));
        }
        if made {
            self.unfinished = 0;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// How many bytes at the end of `data` are the start of `marker`.
fn partial_marker(data: &[u8], marker: &[u8]) -> usize {
    (1..marker.len().min(data.len() + 1))
        .rev()
        .find(|&n| data.ends_with(&marker[..n]))
        .unwrap_or(0)
}

fn append_bounded(paste: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_PASTE.saturating_sub(paste.len());
    paste.extend_from_slice(&bytes[..bytes.len().min(room)]);
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
        ];
        for (bytes, want) in cases {
            assert_eq!(p.feed(bytes), vec![want.clone()], "{bytes:?}");
            assert!(p.flush().is_empty(), "nothing left after {bytes:?}");
        }
        // Esc Esc is one Esc, as in termina; the second one could begin a
        // paste marker, so it waits to be flushed like a lone Esc.
        assert!(p.feed(b"\x1b\x1b").is_empty());
        assert!(p.esc_pending());
        assert_eq!(p.flush(), vec![plain(KeyCode::Esc)]);
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
    fn a_paste_marker_split_anywhere_still_makes_one_paste() {
        let all = b"a\x1b[200~x\x1b[B\x1b[201~b";
        for cut in 0..=all.len() {
            for cut2 in cut..=all.len() {
                let mut p = InputParser::new();
                let mut events = p.feed(&all[..cut]);
                events.extend(p.feed(&all[cut..cut2]));
                events.extend(p.feed(&all[cut2..]));
                assert_eq!(
                    events,
                    vec![
                        plain(KeyCode::Char('a')),
                        InputEvent::Paste("x\x1b[B".into()),
                        plain(KeyCode::Char('b')),
                    ],
                    "cut at {cut} and {cut2}"
                );
            }
        }
    }

    #[test]
    fn a_long_paste_is_cut_at_its_limit_and_broken_sequences_are_dropped() {
        let mut p = InputParser::new();
        assert!(p.feed(b"\x1b[200~").is_empty());
        for _ in 0..100 {
            assert!(p.feed(&[b'x'; 1000]).is_empty());
        }
        let events = p.feed(b"\x1b[201~q");
        let InputEvent::Paste(text) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(text.len(), MAX_PASTE);
        assert_eq!(events[1], plain(KeyCode::Char('q')));
        // An OSC that never ends does not grow without bound: after the
        // limit it is dropped and keys work again.
        assert!(p.feed(b"\x1b]52;c;").is_empty());
        for _ in 0..10 {
            p.feed(&[b'A'; 1000]);
        }
        assert!(p.unfinished <= MAX_UNFINISHED);
        assert_eq!(p.feed(b"\x07n").last(), Some(&plain(KeyCode::Char('n'))));
    }

    #[test]
    fn mouse_and_focus_reports_are_skipped() {
        let mut p = InputParser::new();
        assert_eq!(p.feed(b"\x1b[I\x1b[Oq"), vec![plain(KeyCode::Char('q'))]);
    }
}
