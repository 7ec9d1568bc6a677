//! Drives the UI without a terminal: real `App`, real HTTP client, drawn into
//! ratatui's `TestBackend`. Used by the UI tests and benches; the runner is
//! the same. Built only for tests and with the `test-support` feature (which
//! the tests and benches turn on), never in a release build.

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
use super::{run_effects, view, Running};
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
    running: Running,
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
        Self::start_with(client, clock, theme, (width, height), |_| {}).await
    }

    /// As [`Harness::start`], with `set_up` run on the app before its
    /// first load (e.g. a small [`App::set_capacity`]).
    pub async fn start_with(
        client: Client,
        clock: Arc<dyn Clock>,
        theme: Theme,
        (width, height): (u16, u16),
        set_up: impl FnOnce(&mut App),
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
        set_up(&mut app);
        let terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        let mut h = Self {
            app,
            client,
            tx,
            rx,
            terminal,
            clipboard: RecordingClipboard::default(),
            running: Running::default(),
        };
        h.app.start();
        h.settle().await;
        h
    }

    /// Runs requested effects and applies their results until nothing is in flight.
    pub async fn settle(&mut self) {
        loop {
            self.send_requests();
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

    /// Sends the requests the app asked for, without waiting for their
    /// answers: they are on their way (to the service) while the test goes
    /// on; [`Harness::settle`] takes the answers.
    pub fn send_requests(&mut self) {
        run_effects(
            &mut self.app,
            &self.client,
            &self.tx,
            &mut self.clipboard,
            &mut self.running,
        );
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

/// `n` made-up keys, newest first, in every status, for benchmarks: real
/// lengths of names, prefixes and scopes, no service needed.
pub fn synthetic_keys(n: usize, now: chrono::DateTime<chrono::Utc>) -> Vec<crate::api::ApiKey> {
    use crate::key::KeyStatus;
    const SCOPES: [&[&str]; 3] = [
        &["sessions:read"],
        &["sessions:read", "sessions:write"],
        &["full_access"],
    ];
    (0..n)
        .map(|i| {
            let age = chrono::Duration::seconds(i64::try_from(i).unwrap_or(i64::MAX));
            crate::api::ApiKey {
                id: format!("key_{i:020}"),
                name: format!("Stripe webhook (production) #{i}"),
                description: String::new().into(),
                prefix: format!("eg_live_{:04}", i % 10_000),
                scopes: SCOPES[i % 3]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect::<Vec<_>>()
                    .into(),
                status: KeyStatus::Active,
                created_at: now - age,
                created_by: "bench@keydeck".into(),
                expires_at: (i % 3 == 0).then(|| now + chrono::Duration::days(30)),
                last_used_at: (i % 2 == 0).then(|| now - age / 2),
                revoked_at: (i % 10 == 9).then(|| now - age / 3),
                revoked_by: (i % 10 == 9).then(|| "bench@keydeck".into()),
                replaced_by: None,
                replaces: None,
                exposure: None,
                secret_pending: false,
                refusals: None,
                health: None,
            }
        })
        .collect()
}

/// An app of `width`×`height` on `clock`, with `keys` given to it as the
/// answer to its first load, and the default policy, as the runner would. It
/// holds them all (its capacity is at least their number): the local table,
/// no service behind it.
pub fn loaded_app(
    clock: Arc<dyn Clock>,
    keys: Vec<crate::api::ApiKey>,
    width: u16,
    height: u16,
) -> App {
    use super::action::{Answer, Effect, Request};
    let mut app = App::new(
        clock,
        Theme { color: true },
        DisplayTz::Local,
        "bench".into(),
    );
    app.update(Action::Resize(width, height));
    app.set_capacity(keys.len().max(super::app::DEFAULT_CAPACITY));
    app.start();
    let effects = app.take_effects();
    let asked = |wanted: fn(&Request) -> bool| {
        effects.iter().find_map(|effect| match effect {
            Effect::Send(id, request) if wanted(request) => Some(*id),
            _ => None,
        })
    };
    let load =
        asked(|r| matches!(r, Request::LoadPage { .. })).expect("the first load asks for a page");
    let policy =
        asked(|r| matches!(r, Request::LoadPolicy)).expect("the first load asks for the policy");
    app.update(Action::Answer {
        id: policy,
        answer: Answer::Policy(Ok(crate::key::policy::Policy::default())),
    });
    app.update(Action::Answer {
        id: load,
        answer: Answer::Page(Ok(crate::api::KeyList {
            data: keys,
            next_cursor: None,
            sync_cursor: None,
            policy_tag: None,
            prev_cursor: None,
        })),
    });
    app
}
