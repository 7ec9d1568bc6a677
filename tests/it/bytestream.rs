//! The whole UI core without a terminal: raw input bytes in (as an SSH channel
//! would deliver them, sequences split across reads, a bracketed paste, a lone
//! Esc), escape sequences out into an in-memory writer, the screen read back
//! with vt100, against the real service in-process.

use crate::common;

use std::time::Duration;

use base64::Engine;
use common::ui::{secret_on, Output, World};
use common::util::wait_screen;
use keydeck::client::Client;
use keydeck::key::Secret;
use keydeck::present::DisplayTz;
use keydeck::tui::term::bytes::{self, SessionInput};
use keydeck::tui::term::{ClipboardMethod, TermOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(20);
const OSC52: &str = "\x1b]52;c;";

/// A UI session over bytes, and what it has written so far.
struct ByteSession {
    input: Option<mpsc::Sender<SessionInput>>,
    output: Output,
    size: (u16, u16),
    task: JoinHandle<Result<(), String>>,
}

impl ByteSession {
    fn start(w: &World, width: u16, height: u16) -> Self {
        let (tx, rx) = mpsc::channel(64);
        let output = Output::default();
        let options = TermOptions {
            color: false,
            clipboard: ClipboardMethod::Osc52,
            size: (width, height),
        };
        let client =
            Client::new(&w.server.base, Secret::new(w.server.admin_token.clone())).unwrap();
        // The clock stands still, so no auto-refresh comes in between.
        let mut app = keydeck::tui::new_app(
            &options,
            w.clock.clone(),
            DisplayTz::Fixed(chrono::FixedOffset::east_opt(0).unwrap()),
            "bytes://session".into(),
        );
        let out = output.clone();
        let task = tokio::spawn(async move {
            bytes::run(rx, out, options, &mut app, client)
                .await
                .map_err(|e| e.to_string())
        });
        Self {
            input: Some(tx),
            output,
            size: (width, height),
            task,
        }
    }

    /// One read's worth of bytes.
    async fn send(&self, bytes: &[u8]) {
        self.input
            .as_ref()
            .expect("input open")
            .send(SessionInput::Data(bytes.to_vec()))
            .await
            .expect("the session is running");
    }

    async fn resize(&mut self, width: u16, height: u16) {
        self.size = (width, height);
        self.input
            .as_ref()
            .unwrap()
            .send(SessionInput::Resize(width, height))
            .await
            .unwrap();
    }

    fn bytes(&self) -> Vec<u8> {
        self.output.0.lock().unwrap().clone()
    }

    /// The terminal as a peer would see it after everything written so far.
    fn terminal(&self) -> vt100::Parser {
        let mut parser = vt100::Parser::new(self.size.1, self.size.0, 0);
        parser.process(&self.bytes());
        parser
    }

    /// Polls the screen until `done` holds for it.
    async fn wait_until(&self, what: &str, done: impl Fn(&vt100::Screen) -> bool) -> String {
        let next = async || {
            tokio::time::sleep(Duration::from_millis(20)).await;
            (self.terminal().screen().clone(), true)
        };
        wait_screen(what, next, done).await
    }

    async fn wait_for(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?} on screen"), |s| {
            s.contents().contains(text)
        })
        .await
    }

    async fn wait_gone(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?} gone"), |s| !s.contents().contains(text))
            .await
    }

    /// Ends the session and returns how it ended.
    async fn finish(mut self) -> (Result<(), String>, Self) {
        let result = tokio::time::timeout(TIMEOUT, &mut self.task)
            .await
            .expect("the session ended in time")
            .expect("the session's task did not panic");
        self.input = None;
        (result, self)
    }
}

/// The row (0-based) whose text starts with `name`.
fn row_of(screen: &vt100::Screen, name: &str) -> u16 {
    screen
        .rows(0, screen.size().1)
        .position(|row| common::ui::past_gutter(&row).starts_with(name))
        .map(|row| u16::try_from(row).unwrap())
        .unwrap_or_else(|| panic!("a row {name:?} in:\n{}", screen.contents()))
}

fn selected(screen: &vt100::Screen, name: &str) -> bool {
    screen.cell(row_of(screen, name), 0).unwrap().inverse()
}

/// Every OSC 52 payload in `bytes`, decoded.
fn osc52_payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices(OSC52)
        .map(|(at, _)| {
            let rest = &text[at + OSC52.len()..];
            let end = rest.find('\x07').expect("the sequence ends with BEL");
            base64::engine::general_purpose::STANDARD
                .decode(&rest[..end])
                .expect("base64")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_copy_once_and_revoke_from_raw_bytes() {
    let w = World::new().await;
    w.server.create_key("Alpha key", &["sessions:read"]).await;
    w.server.create_key("Beta key", &["sessions:read"]).await;
    let session = ByteSession::start(&w, 100, 32);

    // The table appears, the first row selected, on the alternate screen with
    // bracketed paste on and the cursor hidden.
    let screen = session.wait_for("Alpha key").await;
    assert!(screen.contains("Beta key"), "{screen}");
    let terminal = session.terminal();
    let s = terminal.screen();
    assert!(s.alternate_screen() && s.bracketed_paste() && s.hide_cursor());
    let (first, second) = if row_of(s, "Alpha key") < row_of(s, "Beta key") {
        ("Alpha key", "Beta key")
    } else {
        ("Beta key", "Alpha key")
    };
    assert!(selected(s, first) && !selected(s, second), "{screen}");

    // ↓ arrives in two reads: ESC [ … B. It moves the selection, and types nothing.
    session.send(b"\x1b[").await;
    session.send(b"B").await;
    session
        .wait_until("the second row selected", |s| {
            selected(s, second) && !selected(s, first)
        })
        .await;

    // n opens the form; the name arrives as a bracketed paste.
    session.send(b"n").await;
    session.wait_for("New API key").await;
    session.send(b"\x1b[200~CI/CD Pipeline\x1b[201~").await;
    let screen = session.wait_for("CI/CD Pipeline").await;
    assert!(
        screen
            .lines()
            .any(|l| l.contains("Name") && l.contains("CI/CD Pipeline")),
        "the paste landed in the name field:\n{screen}"
    );
    // Tab to the first scope and tick it (several keys in one read).
    session.send(b"\t\t\t ").await;
    session.wait_for("[x] Sessions:R").await;
    session.send(b"\r").await;

    // The copy-once modal shows the secret, read off the peer's screen.
    let screen = session
        .wait_for("Copy your API key now — it will not be shown again")
        .await;
    let secret = secret_on(&screen);
    assert_eq!(w.auth(&secret, "sessions:read").await, 200);

    // c: OSC 52 goes into the session's own output, carrying the secret.
    assert!(osc52_payloads(&session.bytes()).is_empty());
    session.send(b"c").await;
    session
        .wait_for("Sent to your terminal's clipboard (OSC 52)")
        .await;
    let payloads = osc52_payloads(&session.bytes());
    assert_eq!(payloads.len(), 1);
    let copied = String::from_utf8(payloads[0].clone()).unwrap();
    assert_eq!(copied, secret);
    assert_eq!(w.auth(&copied, "sessions:read").await, 200);

    // Close; the new key is selected.
    session.send(b"\r").await;
    session.wait_gone(&secret).await;

    // d opens the revoke dialog; a lone Esc (nothing follows it) cancels it.
    let question = "Are you sure you want to revoke this API key?";
    session.send(b"d").await;
    let screen = session.wait_for(question).await;
    assert!(screen.contains("CI/CD Pipeline"), "{screen}");
    session.send(b"\x1b").await;
    session.wait_gone(question).await;
    assert_eq!(w.auth(&secret, "sessions:read").await, 200);

    // d then y revokes it.
    session.send(b"d").await;
    session.wait_for(question).await;
    session.send(b"y").await;
    session.wait_for("Revoked “CI/CD Pipeline”").await;
    assert_eq!(w.auth(&secret, "sessions:read").await, 401);

    // q quits; the terminal modes are switched back off in the output.
    session.send(b"q").await;
    let (result, session) = session.finish().await;
    assert_eq!(result, Ok(()));
    let terminal = session.terminal();
    let s = terminal.screen();
    assert!(!s.alternate_screen() && !s.bracketed_paste() && !s.hide_cursor());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_sets_the_size_and_closing_the_input_ends_the_session() {
    let w = World::new().await;
    w.server.create_key("Sized key", &["sessions:read"]).await;
    let mut session = ByteSession::start(&w, 100, 30);
    let screen = session.wait_for("Sized key").await;
    assert!(
        screen.contains(" eg_live_ "),
        "wide: every column, the prefix's under its shared part\n{screen}"
    );

    // A resize from the peer (SSH window-change): the next frame fits 40×12 (no room for the prefix).
    session.resize(40, 12).await;
    let screen = session
        .wait_until("the table laid out for 40 columns", |s| {
            !s.contents().contains("eg_live_") && s.contents().contains("Sized key")
        })
        .await;
    assert!(screen.lines().all(|l| l.chars().count() <= 40), "{screen}");

    // The peer goes away: the session ends, modes restored.
    let (result, session) = {
        session.input = None;
        session.finish().await
    };
    assert_eq!(result, Ok(()));
    let terminal = session.terminal();
    assert!(!terminal.screen().alternate_screen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_synchronized_and_quitting_after_a_resize_leaves_the_screen_clean() {
    let w = World::new().await;
    w.server.create_key("Synced key", &["sessions:read"]).await;
    let mut session = ByteSession::start(&w, 100, 30);
    session.wait_for("Synced key").await;
    // The peer's terminal: a shell line on it before the session began,
    // resized where the session was told of the resize.
    let mut peer = vt100::Parser::new(30, 100, 0);
    peer.process(b"MARKER before keydeck\r\n");
    let before = session.bytes().len();
    session.resize(40, 12).await;
    session
        .wait_until("the table laid out for 40 columns", |s| {
            !s.contents().contains("eg_live_")
        })
        .await;
    session.send(b"q").await;
    let (result, session) = session.finish().await;
    assert_eq!(result, Ok(()));
    let bytes = session.bytes();
    peer.process(&bytes[..before]);
    peer.screen_mut().set_size(12, 40);
    peer.process(&bytes[before..]);
    let screen = peer.screen().contents();
    assert_eq!(screen.trim_end(), "MARKER before keydeck", "{screen}");

    let out = String::from_utf8_lossy(&bytes);
    let (begin, end) = ("\x1b[?2026h", "\x1b[?2026l");
    let frames = out.matches(begin).count();
    assert!(frames >= 2, "{frames} frames wrapped");
    assert_eq!(frames, out.matches(end).count());
    let first = out.find(begin).unwrap();
    assert!(
        first < out.find("Synced key").unwrap(),
        "the first frame too"
    );
    let left = out.rfind("\x1b[?1049l").unwrap();
    let last_frame = out.rfind(end).unwrap();
    assert!(last_frame < left);
    // Blanked after the last frame, before the alternate screen is left.
    assert!(out[last_frame..left].contains("\x1b[2J"));
}
