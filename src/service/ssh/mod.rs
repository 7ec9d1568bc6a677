//! keydeck over SSH (`keydeck serve --ssh-listen`): an SSH server next to the
//! HTTP API, in the same process, over the same store. Public-key
//! authentication only, the key being the user's identity ([`auth`]); a PTY
//! opens the terminal UI, a command runs the client commands ([`session`],
//! [`exec`]). Sessions reach the service through an internal plain-HTTP
//! listener on loopback, as their user, with a credential that lives as long
//! as the session, so every answer and audit entry is the HTTP API's own.

mod auth;
mod exec;
mod host_key;
mod output;
mod runtime;
mod session;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

pub use auth::{InternalListener, SessionTokens};
pub use host_key::HOST_KEY_FILE;
pub use output::SshStats;

use super::AppState;

/// How the SSH server runs.
#[derive(Debug, Clone)]
pub struct SshConfig {
    pub listen: SocketAddr,
    /// The host key; `None`: `DATA_DIR/ssh_host_ed25519_key`, made on first start.
    pub host_key: Option<PathBuf>,
    /// A UI session without input for this long is closed (terminal restored).
    pub idle_timeout: Duration,
    /// Sessions open at once; the next one is told so and closed.
    pub max_sessions: usize,
    /// Keepalives to a silent client this often (three unanswered end the connection).
    pub keepalive: Duration,
    /// Bytes of a UI session's output held for a client that does not read
    /// before frames are dropped (and the screen later redrawn in full).
    pub output_buffer: usize,
    /// A command's output is cut (exit status non-zero, a line on its
    /// standard error) when the client takes none of it for this long.
    pub exec_progress_timeout: Duration,
}

impl SshConfig {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            host_key: None,
            idle_timeout: Duration::from_secs(15 * 60),
            max_sessions: 32,
            keepalive: Duration::from_secs(30),
            output_buffer: 256 * 1024,
            exec_progress_timeout: Duration::from_secs(30),
        }
    }
}

/// A running SSH server.
#[derive(Debug, Clone)]
pub struct SshInfo {
    pub addr: SocketAddr,
    /// The host key's `SHA256:…` fingerprint.
    pub host_key_fingerprint: String,
    pub stats: Arc<SshStats>,
}

/// What every connection's handler shares.
pub(crate) struct Ctx {
    state: AppState,
    config: SshConfig,
    /// `http://127.0.0.1:PORT`: the internal listener.
    internal_url: String,
    sessions: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    stats: Arc<SshStats>,
    /// Where sessions run: not on the runtime that serves HTTP ([`runtime`]).
    /// Sessions reach the store through the HTTP API only: a PostgreSQL
    /// connection opened from this runtime would be driven by its thread.
    runtime: tokio::runtime::Handle,
}

/// Loads (or makes) the host key, binds, and serves in the background until `stop`.
pub(super) async fn start(
    config: &SshConfig,
    data_dir: &Path,
    state: AppState,
    internal: SocketAddr,
    stop: watch::Receiver<bool>,
) -> Result<(SshInfo, JoinHandle<()>), String> {
    let path = config
        .host_key
        .clone()
        .unwrap_or_else(|| data_dir.join(HOST_KEY_FILE));
    let key = host_key::load_or_create(&path)?;
    let host_key_fingerprint = crate::admin::ssh_keys::fingerprint(key.public_key());
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen for SSH on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let russh_config = Arc::new(russh::server::Config {
        methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        inactivity_timeout: Some(config.idle_timeout + Duration::from_secs(60)),
        keepalive_interval: Some(config.keepalive),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    });
    let stats = Arc::new(SshStats::default());
    let sessions_runtime = runtime::SessionRuntime::start()?;
    let ctx = Arc::new(Ctx {
        state,
        config: config.clone(),
        internal_url: format!("http://{internal}"),
        sessions: Arc::new(Semaphore::new(config.max_sessions.max(1))),
        stop: stop.clone(),
        stats: stats.clone(),
        runtime: sessions_runtime.handle(),
    });
    tracing::info!(%addr, host_key = %path.display(), fingerprint = %host_key_fingerprint, "keydeck SSH server listening");
    let task = tokio::spawn(async move {
        accept(listener, russh_config, ctx, stop).await;
        sessions_runtime.stop().await;
    });
    Ok((
        SshInfo {
            addr,
            host_key_fingerprint,
            stats,
        },
        task,
    ))
}

/// Accepts connections until `stop`; then open sessions restore their
/// terminals and close (they watch `stop` too) and connections are ended.
async fn accept(
    listener: TcpListener,
    config: Arc<russh::server::Config>,
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handler = session::Connection::new(ctx.clone(), peer);
                    connections.spawn(connection(config.clone(), socket, handler, stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept an SSH connection; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let all_closed = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), all_closed)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

/// One connection, until the client leaves or the server stops.
async fn connection(
    config: Arc<russh::server::Config>,
    socket: tokio::net::TcpStream,
    handler: session::Connection,
    mut stop: watch::Receiver<bool>,
) {
    let mut running = match russh::server::run_stream(config, socket, handler).await {
        Ok(running) => running,
        Err(e) => {
            tracing::debug!(error = %e, "SSH connection setup failed");
            return;
        }
    };
    let handle = running.handle();
    tokio::select! {
        result = &mut running => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "SSH connection closed");
            }
        }
        () = stopped(&mut stop) => {
            // The sessions restore their terminals and close first.
            if tokio::time::timeout(Duration::from_secs(2), &mut running).await.is_err() {
                let _ = handle
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        "the server is shutting down".into(),
                        "en".into(),
                    )
                    .await;
            }
        }
    }
}

/// Resolves when told to stop, or when the sender is gone.
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
