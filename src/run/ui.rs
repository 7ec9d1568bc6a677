//! The UI on the local terminal: against a remote key service, or against the
//! embedded one (started here on the data dir's SQLite database, its admin
//! token repaired if lost) handed to the TUI as a client.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::client::Client;
use crate::clock::SystemClock;
use crate::config::Remote;
use crate::key::Secret;
use crate::present::Palette;
use crate::service::{self, RunningService, ServiceConfig, ADMIN_TOKEN_FILE};
use crate::tui::{self, Connection, TuiOptions};
use crate::AnyError;

/// Name of the UI's log file in the data dir.
pub const LOG_FILE: &str = "keydeck.log";

/// What the UI is started with.
pub struct UiArgs {
    pub data_dir: PathBuf,
    /// `None`: start the embedded service on the SQLite database in `data_dir`.
    pub remote: Option<Remote>,
    pub refresh_every: chrono::Duration,
    /// The colour palette (the session's `NO_COLOR` still wins).
    pub theme: Palette,
}

/// Runs the UI until the user quits or a signal asks it to.
pub async fn ui(args: UiArgs) -> Result<(), AnyError> {
    crate::fs::prepare_data_dir(&args.data_dir)?;
    init_file_logging(&args.data_dir.join(LOG_FILE))?;
    color_eyre::install().map_err(|e| e.to_string())?;
    let options = TuiOptions {
        refresh_every: args.refresh_every,
        theme: args.theme,
        capacity: super::window_capacity(),
    };
    // The TUI draws its first frame before it waits for the connection.
    tui::run(options, connect(args.remote, args.data_dir)).await
}

/// The client to use; with the embedded service, stopping it is what the UI does on exit.
async fn connect(remote: Option<Remote>, data_dir: PathBuf) -> Result<Connection, AnyError> {
    if let Some(remote) = remote {
        let client = Client::new(&remote.url, remote.token.clone())?;
        return Ok(Connection {
            source: client.base_url().to_owned(),
            client,
            on_exit: None,
        });
    }
    let (client, running) = start_embedded(&data_dir).await?;
    Ok(Connection {
        client,
        source: format!("local · {}", data_dir.display()),
        on_exit: Some(Box::pin(async move {
            tracing::info!("stopping the embedded key service");
            stop_embedded(running).await;
        })),
    })
}

/// The embedded key service on the data dir's SQLite database, on a free
/// loopback port, and a client of it with the local admin's token. Another
/// process (a UI, a `keys` command) may have its own service on the same
/// database at the same time: SQLite's WAL and busy timeout share it.
pub(super) async fn start_embedded(data_dir: &Path) -> Result<(Client, RunningService), AnyError> {
    let mut config = ServiceConfig::new(data_dir.to_path_buf());
    config.listen = "127.0.0.1:0".parse()?;
    let running = service::start(config, Arc::new(SystemClock)).await?;
    let token = local_admin_token(&running, data_dir).await?;
    let url = format!("http://{}", running.addr);
    tracing::info!(%url, "embedded key service started");
    Ok((Client::new(&url, token)?, running))
}

/// Stops the embedded service (its last-used times written first).
pub(super) async fn stop_embedded(running: RunningService) {
    let _ = running
        .shutdown_within(std::time::Duration::from_millis(300))
        .await;
}

/// The local admin's token; a new one if its file was lost.
async fn local_admin_token(running: &RunningService, data_dir: &Path) -> Result<Secret, AnyError> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) => Ok(Secret::new(token.trim().to_owned())),
        Err(_) => {
            let token =
                crate::accounts::reset_token(running.state.store.as_ref(), "admin@localhost")
                    .await?;
            crate::fs::write_private(&path, token.expose())?;
            Ok(token)
        }
    }
}

/// Logs go to a file in the data dir, never to the screen; `RUST_LOG` works.
fn init_file_logging(path: &Path) -> Result<(), AnyError> {
    let file = crate::fs::open_private_log(path)?;
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
