//! The byte-stream adapter: the UI over any pair of byte pipes, as an SSH
//! channel gives them. Input bytes (and resizes, which arrive out of band)
//! come in on a channel and go through [`InputParser`]; frames, the terminal
//! modes and OSC 52 copies go out to any `Write`. The size is the caller's.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::mpsc;

use super::backend;
use super::keys::InputParser;
use super::TermOptions;
use crate::client::Client;
use crate::tui::app::App;
use crate::tui::clipboard::SessionClipboard;
use crate::tui::event::InputEvent;
use crate::tui::AnyError;

/// How long an Esc at the end of the input waits for the rest of a sequence
/// before it counts as the Esc key.
pub const ESC_TIMEOUT: Duration = Duration::from_millis(50);

/// What the session's peer sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionInput {
    /// Bytes typed or pasted, as they were read.
    Data(Vec<u8>),
    /// The peer's terminal is now `width`×`height` (e.g. SSH window-change).
    Resize(u16, u16),
}

/// The session's input as events; ends when the sender is dropped.
pub struct ByteInput {
    rx: mpsc::Receiver<SessionInput>,
    parser: InputParser,
    ready: VecDeque<InputEvent>,
    closed: bool,
}

impl ByteInput {
    pub fn new(rx: mpsc::Receiver<SessionInput>) -> Self {
        Self {
            rx,
            parser: InputParser::new(),
            ready: VecDeque::new(),
            closed: false,
        }
    }

    pub async fn next(&mut self) -> Option<InputEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.closed {
                return None;
            }
            let received = if self.parser.esc_pending() {
                match tokio::time::timeout(ESC_TIMEOUT, self.rx.recv()).await {
                    Ok(received) => received,
                    Err(_) => {
                        self.ready.extend(self.parser.flush());
                        continue;
                    }
                }
            } else {
                self.rx.recv().await
            };
            match received {
                Some(SessionInput::Data(bytes)) => self.ready.extend(self.parser.feed(&bytes)),
                Some(SessionInput::Resize(w, h)) => self.ready.push_back(InputEvent::Resize(w, h)),
                None => {
                    self.closed = true;
                    self.ready.extend(self.parser.flush());
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

/// One writer shared by the frames and the clipboard, so that both go out in
/// order on the session's one output.
pub struct SharedWriter<W>(Arc<Mutex<W>>);

impl<W> SharedWriter<W> {
    pub fn new(out: W) -> Self {
        Self(Arc::new(Mutex::new(out)))
    }
}

impl<W> Clone for SharedWriter<W> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<W: Write> Write for SharedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.lock().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().flush()
    }
}

impl<W> SharedWriter<W> {
    fn lock(&self) -> std::sync::MutexGuard<'_, W> {
        // A panic while writing leaves bytes, not broken invariants.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs `app` (made with [`crate::tui::new_app`] from the same `options`) on
/// a byte-stream session until it quits or the input ends: the alternate
/// screen, a hidden cursor and bracketed paste are switched on at the start
/// and off at the end, written to `output` like everything else.
pub async fn run<W: Write + Send + 'static>(
    input: mpsc::Receiver<SessionInput>,
    output: W,
    options: TermOptions,
    app: &mut App,
    client: Client,
) -> Result<(), AnyError> {
    let out = SharedWriter::new(output);
    let mut modes = out.clone();
    crossterm::execute!(
        modes,
        crossterm::terminal::EnterAlternateScreen,
        crossterm::cursor::Hide,
        crossterm::event::EnableBracketedPaste,
    )?;
    let (width, height) = options.size;
    let mut terminal = backend::terminal(out.clone(), width, height)?;
    let mut clipboard = SessionClipboard::new(out.clone(), options.clipboard);
    let outcome = crate::tui::event_loop(
        &mut terminal,
        ByteInput::new(input).into_stream(),
        &mut clipboard,
        app,
        client,
    )
    .await;
    let restored = crossterm::execute!(modes, crossterm::event::DisableBracketedPaste)
        .and_then(|()| backend::blank(&mut modes))
        .and_then(|()| crossterm::execute!(modes, crossterm::terminal::LeaveAlternateScreen));
    outcome?;
    Ok(restored?)
}
