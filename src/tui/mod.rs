//! The terminal UI: the embedded key service, and the core loop that turns a
//! session's input events and finished requests into actions and redraws only
//! when something changed. The loop runs on any session: the local terminal
//! (`term::local`) or a byte stream (`term::bytes`).

pub mod action;
pub mod app;
pub mod audit;
pub mod clipboard;
pub mod copy_once;
pub mod create;
pub mod details;
pub mod dialog;
pub mod event;
pub mod filter;
pub mod health;
pub mod help;
pub mod keymap;
pub mod popup;
pub mod revoke;
pub mod rotate;
pub mod table;
pub mod term;
pub mod testing;
pub mod theme;
pub mod view;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use ratatui::Terminal;
use tokio::sync::mpsc;

use self::action::{Action, Answer, Effect, Request, RequestId};
use self::app::{App, PAGE_SIZE};
use self::clipboard::{Clipboard, TerminalClipboard};
use self::event::InputEvent;
use self::term::backend::Resizable;
use self::term::TermOptions;
use crate::api::KeyListQuery;
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

/// Runs `app` on one session until it quits: `input` is the session's
/// events (the end of it means the terminal is gone), frames go to
/// `terminal`, copies to `clipboard`, requests to `client`.
pub async fn event_loop<B, S>(
    terminal: &mut Terminal<B>,
    mut input: S,
    clipboard: &mut dyn Clipboard,
    app: &mut App,
    client: Client,
) -> Result<(), AnyError>
where
    B: Resizable,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = InputEvent> + Unpin,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut input_open = true;
    app.start();
    loop {
        run_effects(app, &client, &tx, clipboard);
        if app.should_quit() {
            settle_on_exit(app, &mut rx, &client).await;
            return Ok(());
        }
        if app.take_dirty() {
            terminal.draw(|f| view::draw(f, app))?;
        }
        let wait = (app.next_wakeup() - app.clock.now())
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            event = input.next(), if input_open => match event {
                Some(InputEvent::Key(key)) => app.update(Action::Key(key)),
                Some(InputEvent::Paste(text)) => app.update(Action::Paste(text)),
                Some(InputEvent::Resize(w, h)) => {
                    term::backend::resize(terminal, w, h)?;
                    app.update(Action::Resize(w, h));
                }
                Some(InputEvent::Quit(why)) => {
                    tracing::info!("{why}");
                    app.update(Action::Quit);
                }
                // No more input: the terminal is gone.
                None => {
                    input_open = false;
                    app.update(Action::Quit);
                }
            },
            Some(action) = rx.recv() => app.update(action),
            () = tokio::time::sleep(wait) => app.update(Action::Tick),
        }
    }
}

/// On the way out (a signal, or a forced quit) with creates or rotations
/// still on their way: waits briefly for their answers, and revokes any key
/// whose secret can no longer be shown, so no key is left that nobody knows.
async fn settle_on_exit(app: &App, rx: &mut mpsc::UnboundedReceiver<Action>, client: &Client) {
    let mut pending = app.mutations();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(700);
    while pending > 0 {
        let Ok(Some(action)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        let Action::Answer { id, answer } = action else {
            continue;
        };
        if !app.changes_keys(id) {
            continue;
        }
        pending -= 1;
        let unseen = match answer {
            Answer::Created(result) => match *result {
                Ok(created) => Some(created.api_key),
                Err(crate::client::ClientError::IdempotentRepeat(key)) => Some(*key),
                Err(_) => None,
            },
            Answer::Rotated(result) => (*result).ok().map(|rotated| rotated.api_key),
            _ => None,
        };
        if let Some(key) = unseen {
            tracing::warn!(key_id = %key.id, "created while keydeck was quitting; its secret was never shown, so it is revoked");
            let revoke = client.revoke_key(&key.id);
            if !matches!(
                tokio::time::timeout(std::time::Duration::from_millis(500), revoke).await,
                Ok(Ok(_))
            ) {
                tracing::error!(key_id = %key.id, "could not revoke it: revoke it by hand");
            }
        }
    }
    if pending > 0 {
        tracing::warn!(
            pending,
            "quit with changes to keys still unanswered; check the key list"
        );
    }
}

/// Runs what the app asked for: copies at once (they write to the terminal,
/// between frames), everything else in its own task that reports back.
pub fn run_effects(
    app: &mut App,
    client: &Client,
    tx: &mpsc::UnboundedSender<Action>,
    clipboard: &mut dyn Clipboard,
) {
    loop {
        let effects = app.take_effects();
        if effects.is_empty() {
            return;
        }
        for effect in effects {
            match effect {
                Effect::Copy(secret) => {
                    let system = clipboard.copy(secret.expose());
                    app.update(Action::Copied { system });
                }
                Effect::CopyText(text) => {
                    clipboard.copy(&text);
                }
                Effect::Send(id, request) => spawn_request(id, request, client.clone(), tx.clone()),
            }
        }
    }
}

/// Runs one request in its own task; its answer comes back as an action.
/// Creates and revokes are never cancelled half-way: the task finishes even
/// if the UI has moved on or quit.
fn spawn_request(
    id: RequestId,
    request: Request,
    client: Client,
    tx: mpsc::UnboundedSender<Action>,
) {
    tokio::spawn(async move {
        let answer = match request {
            Request::LoadPage {
                cursor,
                changed_since,
                ..
            } => {
                let query = KeyListQuery {
                    limit: Some(PAGE_SIZE),
                    cursor,
                    changed_since,
                    ..KeyListQuery::default()
                };
                let result = client.list_keys(&query).await;
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "loading keys failed");
                }
                Answer::Page(result)
            }
            Request::LoadScopes => Answer::Scopes(client.scopes().await),
            Request::LoadPolicy => Answer::Policy(client.policy().await),
            Request::CreateKey {
                request,
                idempotency_key,
            } => {
                let mut result = client.create_key(&request, Some(&idempotency_key)).await;
                let mut failures = 0;
                while let Err(e) = &result {
                    failures += 1;
                    let Some(delay) = action::CREATE_RETRY.delay(e, failures) else {
                        break;
                    };
                    tracing::warn!(error = %e, "create got no answer; retrying with the same Idempotency-Key");
                    tokio::time::sleep(delay).await;
                    result = client.create_key(&request, Some(&idempotency_key)).await;
                }
                if let Ok(created) = &result {
                    tracing::info!(key_id = %created.api_key.id, "key created");
                }
                Answer::Created(Box::new(result))
            }
            Request::RevokeKey { id } => Answer::Revoked(Box::new(client.revoke_key(&id).await)),
            Request::RotateKey { id, grace_seconds } => {
                Answer::Rotated(Box::new(client.rotate_key(&id, grace_seconds).await))
            }
            Request::LoadAudit => {
                let query = crate::api::AuditListQuery {
                    limit: Some(500),
                    cursor: None,
                };
                Answer::Audit(client.audit_logs(&query).await)
            }
        };
        // The UI may have quit meanwhile; then nobody needs the answer.
        let _ = tx.send(Action::Answer { id, answer });
    });
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
