//! Drives the UI without a terminal: real `App`, real HTTP client, drawn into
//! ratatui's `TestBackend`. Used by the UI tests; the runner is the same.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::action::Action;
use super::app::App;
use super::clipboard::RecordingClipboard;
use super::theme::Theme;
use super::{run_effects, view};
use crate::client::Client;
use crate::clock::Clock;
use crate::present::DisplayTz;

pub struct Harness {
    pub app: App,
    client: Client,
    tx: mpsc::UnboundedSender<Action>,
    rx: mpsc::UnboundedReceiver<Action>,
    pub terminal: Terminal<TestBackend>,
    /// What "copy" would have written to the terminal.
    pub clipboard: RecordingClipboard,
}

impl Harness {
    /// A UI of `width`×`height` on `client`, showing UTC times, after its first load.
    pub async fn start(
        client: Client,
        clock: Arc<dyn Clock>,
        theme: Theme,
        width: u16,
        height: u16,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut app = App::new(
            clock,
            theme,
            DisplayTz::Fixed(chrono::FixedOffset::east_opt(0).unwrap()),
            client.base_url().to_owned(),
        );
        app.source = "http://keydeck.test".into();
        app.update(Action::Resize(width, height));
        let terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        let mut h = Self {
            app,
            client,
            tx,
            rx,
            terminal,
            clipboard: RecordingClipboard::default(),
        };
        h.app.start();
        h.settle().await;
        h
    }

    /// Runs requested effects and applies their results until nothing is in flight.
    pub async fn settle(&mut self) {
        loop {
            run_effects(&mut self.app, &self.client, &self.tx, &mut self.clipboard);
            if self.app.in_flight() == 0 {
                return;
            }
            let action = tokio::time::timeout(Duration::from_secs(20), self.rx.recv())
                .await
                .expect("a request finished within 20 s")
                .expect("channel open");
            self.app.update(action);
        }
    }

    pub async fn send(&mut self, action: Action) {
        self.app.update(action);
        self.settle().await;
    }

    pub async fn press(&mut self, code: KeyCode) {
        self.send(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
            .await;
    }

    pub async fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.send(Action::Key(super::keymap::char_key(c))).await;
        }
    }

    pub async fn resize(&mut self, width: u16, height: u16) {
        self.terminal.backend_mut().resize(width, height);
        self.send(Action::Resize(width, height)).await;
    }

    /// Draws the current state and returns the buffer.
    pub fn draw(&mut self) -> &Buffer {
        let app = &self.app;
        self.terminal.draw(|f| view::draw(f, app)).expect("draw");
        self.terminal.backend().buffer()
    }

    /// The screen as text, one line per row, trailing spaces trimmed.
    pub fn screen(&mut self) -> String {
        buffer_text(self.draw())
    }
}

pub fn buffer_text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
