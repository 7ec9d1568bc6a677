//! The terminal UI: its start on the local terminal (with the embedded key
//! service when there is no remote one). `app/` owns the state, `popup/` the
//! dialogs (each drawn from a small context, never from the app), `view/` the
//! screen, `runner` the core loop that runs on any session: the local
//! terminal (`term::local`) or a byte stream (`term::bytes`).

pub mod action;
pub mod app;
pub mod clipboard;
pub mod event;
pub mod health;
pub mod keymap;
pub mod message;
pub mod popup;
mod runner;
pub mod term;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod theme;
pub mod view;

pub use runner::{event_loop, run_effects};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::action::Action;
use self::app::App;
use self::clipboard::TerminalClipboard;
use self::term::TermOptions;
use crate::client::Client;
use crate::clock::{Clock, SystemClock};
use crate::key::Secret;
use crate::present::DisplayTz;
use crate::service::{self, RunningService, ServiceConfig, ADMIN_TOKEN_FILE};

pub use crate::AnyError;

pub struct TuiOptions {
    pub data_dir: PathBuf,
    /// `None`: start the embedded service on the SQLite database in `data_dir`.
    pub remote: Option<crate::config::Remote>,
    pub refresh_every: chrono::Duration,
    /// The colour palette (the session's `NO_COLOR` still wins).
    pub theme: theme::Palette,
}

/// Name of the UI's log file in the data dir.
pub const LOG_FILE: &str = "keydeck.log";

/// Runs the UI until the user quits or a signal asks it to.
pub async fn run(options: TuiOptions) -> Result<(), AnyError> {
    service::prepare_data_dir(&options.data_dir)?;
    init_file_logging(&options.data_dir.join(LOG_FILE))?;
    color_eyre::install().map_err(|e| e.to_string())?;
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
    // The first frame goes out before anything slow happens.
    terminal.draw(|f| view::draw(f, &app))?;
    let (outcome, embedded) = match connect(&options).await {
        Ok((client, embedded)) => {
            app.set_source(match &embedded {
                Some(_) => format!("local · {}", options.data_dir.display()),
                None => client.base_url().to_owned(),
            });
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
            (outcome, embedded)
        }
        Err(e) => (Err(e), None),
    };
    // The terminal first: it must be restored at once, even if the service is slow to stop.
    term::local::leave();
    if let Some(running) = embedded {
        tracing::info!("stopping the embedded key service");
        let _ = running
            .shutdown_within(std::time::Duration::from_millis(300))
            .await;
    }
    outcome
}

/// The app for one session: its colours and size from the session's options.
pub fn new_app(session: &TermOptions, clock: Arc<dyn Clock>, tz: DisplayTz, source: String) -> App {
    let mut app = App::new(clock, session.theme(), tz, source);
    app.update(Action::Resize(session.size.0, session.size.1));
    app
}

/// The client to use, and the embedded service if we started one.
async fn connect(options: &TuiOptions) -> Result<(Client, Option<RunningService>), AnyError> {
    if let Some(remote) = &options.remote {
        return Ok((Client::new(&remote.url, remote.token.clone())?, None));
    }
    let mut config = ServiceConfig::new(options.data_dir.clone());
    config.listen = "127.0.0.1:0".parse()?;
    let running = service::start(config, Arc::new(SystemClock)).await?;
    let token = local_admin_token(&running, &options.data_dir).await?;
    let url = format!("http://{}", running.addr);
    tracing::info!(%url, "embedded key service started");
    Ok((Client::new(&url, token)?, Some(running)))
}

/// The local admin's token; a new one if its file was lost.
async fn local_admin_token(running: &RunningService, data_dir: &Path) -> Result<Secret, AnyError> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) => Ok(Secret::new(token.trim().to_owned())),
        Err(_) => {
            let token =
                crate::admin::reset_token(running.state.store.as_ref(), "admin@localhost").await?;
            service::write_private(&path, token.expose())?;
            Ok(token)
        }
    }
}

/// Logs go to a file in the data dir, never to the screen; `RUST_LOG` works.
fn init_file_logging(path: &Path) -> Result<(), AnyError> {
    let file = service::open_private_log(path)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(())
}
