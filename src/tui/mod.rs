//! The terminal UI: its start on the local terminal, against a client that
//! the composition root (`run::ui`) hands it. `app/` owns the state, `popup/` the
//! dialogs (each drawn from a small context, never from the app), `view/` the
//! screen, `runner` the core loop that runs on any session: the local
//! terminal (`term::local`) or a byte stream (`term::bytes`).

pub mod action;
pub mod app;
pub mod clipboard;
pub mod event;
pub mod keymap;
pub mod message;
pub mod popup;
mod runner;
pub mod term;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod theme;
pub mod view;

pub use runner::{event_loop, run_effects, Running};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use self::action::Action;
use self::app::App;
use self::clipboard::TerminalClipboard;
use self::term::TermOptions;
use crate::client::Client;
use crate::clock::{Clock, SystemClock};
use crate::present::DisplayTz;

pub use crate::AnyError;

pub struct TuiOptions {
    pub refresh_every: chrono::Duration,
    /// The colour palette (the session's `NO_COLOR` still wins).
    pub theme: theme::Palette,
    /// The most keys the UI holds; more make the table a window over the
    /// service ([`app::DEFAULT_CAPACITY`] by default).
    pub capacity: usize,
}

/// What the UI runs against, once connected.
pub struct Connection {
    pub client: Client,
    /// Where the keys come from, as the header shows it.
    pub source: String,
    /// Done after the terminal is restored (e.g. stopping an embedded service).
    pub on_exit: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

/// Runs the UI until the user quits or a signal asks it to. The first frame
/// goes out before `connect` is awaited, so a slow start shows "starting…".
pub async fn run(
    options: TuiOptions,
    connect: impl Future<Output = Result<Connection, AnyError>>,
) -> Result<(), AnyError> {
    let mut terminal = term::local::enter();
    let size = terminal
        .size()
        .map(|s| (s.width, s.height))
        .unwrap_or((80, 24));
    let session = term::local::options_from_env(size);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut app = new_app(&session, clock, DisplayTz::Local, "starting…".into());
    app.set_refresh_every(options.refresh_every);
    app.set_palette(options.theme);
    app.set_capacity(options.capacity);
    // The first frame goes out before anything slow happens.
    term::backend::draw(&mut terminal, |f| view::draw(f, &app))?;
    let (outcome, on_exit) = match connect.await {
        Ok(Connection {
            client,
            source,
            on_exit,
        }) => {
            app.set_source(source);
            let outcome = match term::local::LocalInput::new() {
                Ok(input) => {
                    let mut clipboard = TerminalClipboard::new(session.clipboard);
                    event_loop(
                        &mut terminal,
                        input.into_stream(),
                        &mut clipboard,
                        &mut app,
                        client,
                    )
                    .await
                }
                Err(e) => Err(e.into()),
            };
            (outcome, on_exit)
        }
        Err(e) => (Err(e), None),
    };
    // The terminal first: it must be restored at once, even if `on_exit` is slow.
    term::local::leave();
    if let Some(on_exit) = on_exit {
        on_exit.await;
    }
    outcome
}

/// The app for one session: its colours and size from the session's options.
pub fn new_app(session: &TermOptions, clock: Arc<dyn Clock>, tz: DisplayTz, source: String) -> App {
    let mut app = App::new(clock, session.theme(), tz, source);
    app.update(Action::Resize(session.size.0, session.size.1));
    app
}
