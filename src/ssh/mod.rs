//! keydeck over SSH (`keydeck serve --ssh-listen`): the SSH front end, a
//! client of the service like the TUI and the CLI, run next to it in the
//! same process (`run::serve` wires them). Public-key authentication only,
//! the key being the user's identity (asked of the service's
//! [`gate`](crate::service::gate), its only way in); a PTY opens the
//! terminal UI, a command runs the client commands ([`session`], [`exec`]).
//! Sessions reach the service through its own Unix socket (mode 0600), as
//! their user, with a credential that lives as long as the session, so every
//! answer and audit entry is the HTTP API's own. The front door's limits
//! (connection caps, login deadline, idle timeout) are kept here and in
//! [`budget`].

mod budget;
mod exec;
mod host_key;
mod output;
mod runtime;
mod session;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

pub use host_key::HOST_KEY_FILE;
pub use output::SshStats;

use crate::service::gate::{Gate, SessionsSocket};

/// Descriptors an SSH session may use on top of its connection: its
/// client's connections to the internal socket, both ends.
pub const FDS_PER_SESSION: u64 = 4;

/// How the SSH server runs.
#[derive(Debug, Clone)]
pub struct SshConfig {
    pub listen: SocketAddr,
    /// The host key; `None`: `DATA_DIR/ssh_host_ed25519_key`, made on first start.
    pub host_key: Option<PathBuf>,
    /// A UI session without input for this long is closed (terminal restored);
    /// a connection without input (channel data from the user: keepalive
    /// replies do not count) and no command running, a minute later (or as
    /// long again, if shorter).
    pub idle_timeout: Duration,
    /// Sessions (a shell or a command) open at once; the next one is told so and closed.
    pub max_sessions: usize,
    /// Sessions one user may have open at once; the next one is told so and closed.
    pub max_user_sessions: usize,
    /// SSH connections open at once; more are closed at once.
    pub max_connections: usize,
    /// Connections not authenticated yet, in all; more are closed at once.
    pub max_unauthenticated: usize,
    /// Connections not authenticated yet from one address (an IPv6 /64);
    /// more are closed at once.
    pub max_unauthenticated_per_source: usize,
    /// A connection not authenticated this long after it was accepted is closed.
    pub login_timeout: Duration,
    /// A session channel that has asked for neither a shell nor a command
    /// this long after it opened is closed.
    pub channel_request_timeout: Duration,
    /// Keepalives to a silent client this often (three unanswered end the connection).
    pub keepalive: Duration,
    /// Bytes of a UI session's output held for a client that does not read
    /// before frames are dropped (and the screen later redrawn in full).
    pub output_buffer: usize,
    /// A command's output is cut (exit status non-zero, a line on its
    /// standard error) when the client takes none of it for this long.
    pub exec_progress_timeout: Duration,
    /// The most keys a UI session holds; an organisation with more is shown
    /// as a window over the service (`KEYDECK_UI_CAPACITY` for `keydeck
    /// serve`, as for the local UI).
    pub ui_capacity: usize,
}

impl SshConfig {
    /// File descriptors the caps may take at most, and the flags that say so
    /// (for the service's open-files check).
    pub fn descriptors(&self) -> (u64, String) {
        let count = self.max_connections as u64 + self.max_sessions as u64 * FDS_PER_SESSION;
        let flags = format!(
            "--ssh-max-connections {} + {FDS_PER_SESSION} for each of --ssh-max-sessions {}",
            self.max_connections, self.max_sessions
        );
        (count, flags)
    }

    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            host_key: None,
            idle_timeout: Duration::from_secs(15 * 60),
            max_sessions: 32,
            max_user_sessions: 4,
            max_connections: 256,
            max_unauthenticated: 100,
            max_unauthenticated_per_source: 10,
            login_timeout: Duration::from_secs(30),
            channel_request_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(30),
            output_buffer: 256 * 1024,
            exec_progress_timeout: Duration::from_secs(30),
            ui_capacity: crate::tui::app::DEFAULT_CAPACITY,
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
struct Ctx {
    gate: Gate,
    config: SshConfig,
    /// The Unix socket the sessions' clients reach the service through.
    internal_socket: PathBuf,
    sessions: Arc<Semaphore>,
    /// Sessions open, by user id.
    user_sessions: session::UserSessions,
    budget: Arc<budget::Budget>,
    stop: watch::Receiver<bool>,
    stats: Arc<SshStats>,
    /// Where sessions run: not on the runtime that serves HTTP ([`runtime`]).
    /// Sessions reach the store through the HTTP API only: a PostgreSQL
    /// connection opened from this runtime would be driven by its thread.
    runtime: tokio::runtime::Handle,
}

/// A connection's idle time allowed past the UI session's own idle timeout,
/// so that the session closes first, with its terminal restored: a minute,
/// or as long again as the idle timeout if that is shorter.
fn idle_grace(idle_timeout: Duration) -> Duration {
    idle_timeout.min(Duration::from_secs(60))
}

/// An SSH server whose host key is loaded (or made), not serving yet: done
/// before the service starts, so that a bad host key stops the start before
/// anything listens, and the key file is private by the time anything does.
pub struct Prepared {
    config: SshConfig,
    key: PrivateKey,
    key_path: PathBuf,
}

/// Loads the host key (`config.host_key`, or the one in `data_dir`, made there on first start).
pub fn prepare(config: &SshConfig, data_dir: &Path) -> Result<Prepared, String> {
    let key_path = config
        .host_key
        .clone()
        .unwrap_or_else(|| data_dir.join(HOST_KEY_FILE));
    let key = host_key::load_or_create(&key_path)?;
    Ok(Prepared {
        config: config.clone(),
        key,
        key_path,
    })
}

/// A serving SSH server, and how to stop it.
pub struct RunningSsh {
    pub info: SshInfo,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    socket: SessionsSocket,
    /// Stops the sessions' socket, once the sessions are gone.
    socket_stop: watch::Sender<bool>,
}

impl RunningSsh {
    /// The Unix socket the sessions reach the service through.
    pub fn sessions_socket(&self) -> &Path {
        self.socket.path()
    }

    /// Stops accepting, lets open sessions restore their terminals and
    /// close, ends the connections, then closes the sessions' socket.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let _ = self.socket_stop.send(true);
        self.socket.closed(Duration::from_secs(10)).await;
    }
}

impl Prepared {
    /// Binds, and serves in the background (the sessions through `gate`)
    /// until [`RunningSsh::shutdown`].
    pub async fn start(self, gate: Gate) -> Result<RunningSsh, String> {
        let Self {
            config,
            key,
            key_path,
        } = self;
        let (stop, stop_rx) = watch::channel(false);
        let host_key_fingerprint = crate::key::ssh::fingerprint(key.public_key());
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen for SSH on {}: {e}", config.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (socket_stop, socket_stop_rx) = watch::channel(false);
        let socket = gate.serve_sessions_socket(socket_stop_rx)?;
        let stats = Arc::new(SshStats::default());
        let sessions_runtime = runtime::SessionRuntime::start()?;
        let ctx = Arc::new(Ctx {
            gate,
            config: config.clone(),
            internal_socket: socket.path().to_path_buf(),
            sessions: Arc::new(Semaphore::new(config.max_sessions.max(1))),
            user_sessions: session::UserSessions::default(),
            budget: Arc::new(budget::Budget::new(
                config.max_connections,
                config.max_unauthenticated,
                config.max_unauthenticated_per_source,
            )),
            stop: stop_rx.clone(),
            stats: stats.clone(),
            runtime: sessions_runtime.handle(),
        });
        tracing::info!(%addr, host_key = %key_path.display(), fingerprint = %host_key_fingerprint,
            max_connections = config.max_connections,
            max_unauthenticated = config.max_unauthenticated,
            max_unauthenticated_per_source = config.max_unauthenticated_per_source,
            login_timeout_s = config.login_timeout.as_secs(),
            "keydeck SSH server listening");
        let russh_config = russh_config(&config, key);
        let task = tokio::spawn(async move {
            accept(listener, russh_config, ctx, stop_rx).await;
            sessions_runtime.stop().await;
        });
        let info = SshInfo {
            addr,
            host_key_fingerprint,
            stats,
        };
        Ok(RunningSsh {
            info,
            stop,
            task,
            socket,
            socket_stop,
        })
    }
}

/// russh's settings: public keys only, keepalives; no inactivity timeout of its own.
fn russh_config(config: &SshConfig, key: PrivateKey) -> Arc<russh::server::Config> {
    Arc::new(russh::server::Config {
        methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        // Replies to keepalives reset russh's own timer: the connection's
        // watchdog (`connection`) keeps the login deadline and the idle timeout.
        inactivity_timeout: None,
        keepalive_interval: Some(config.keepalive),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    })
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
                    // Over a cap: closed at once (dropped), before any work.
                    let Ok(ticket) = ctx.budget.admit(peer.ip()) else {
                        continue;
                    };
                    let _ = socket.set_nodelay(true);
                    let live = Arc::new(budget::Liveness::new());
                    let handler = session::Connection::new(ctx.clone(), peer, ticket, live.clone());
                    connections.spawn(connection(config.clone(), socket, handler, live, ctx.clone()));
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

/// One connection, until the client leaves, the server stops, or its
/// watchdog closes it: not authenticated by the login deadline, or no input
/// from the user (and no command running) for the idle timeout and a minute.
async fn connection(
    config: Arc<russh::server::Config>,
    socket: tokio::net::TcpStream,
    handler: session::Connection,
    live: Arc<budget::Liveness>,
    ctx: Arc<Ctx>,
) {
    let login_deadline = tokio::time::Instant::now() + ctx.config.login_timeout;
    let addr = handler.peer();
    let switch = Arc::new(budget::KillSwitch::default());
    let socket = budget::Killable::new(socket, switch.clone());
    // The client's version line is read before the session exists: within the deadline too.
    let mut running = match tokio::time::timeout_at(
        login_deadline,
        russh::server::run_stream(config, socket, handler),
    )
    .await
    {
        Ok(Ok(running)) => running,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, %addr, "SSH connection setup failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%addr, "SSH connection closed: no version line before the login deadline");
            return;
        }
    };
    let handle = running.handle();
    let idle = ctx.config.idle_timeout + idle_grace(ctx.config.idle_timeout);
    let mut stop = ctx.stop.clone();
    let stopping = loop {
        let deadline = if live.authenticated() {
            live.last_input() + idle
        } else {
            login_deadline
        };
        tokio::select! {
            result = &mut running => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %addr, "SSH connection closed");
                }
                return;
            }
            () = stopped(&mut stop) => break true,
            // The idle deadline may come before the login deadline.
            () = live.login(), if !live.authenticated() => {}
            () = tokio::time::sleep_until(deadline) => {
                if !live.authenticated() {
                    tracing::info!(%addr, "SSH connection closed: not authenticated within the login deadline");
                    break false;
                }
                if live.busy() {
                    // A command's own time is not idleness.
                    live.input();
                } else if live.last_input() + idle <= tokio::time::Instant::now() {
                    tracing::info!(%addr, "SSH connection closed: no input for the idle timeout");
                    say_goodbye(&handle, "closed after a long time without input").await;
                    break false;
                }
            }
        }
    };
    if stopping {
        // The sessions restore their terminals and close first.
        if tokio::time::timeout(Duration::from_secs(2), &mut running)
            .await
            .is_ok()
        {
            return;
        }
        say_goodbye(&handle, "the server is shutting down").await;
    }
    // Its next read or write fails, whatever the session waits for.
    switch.kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), &mut running).await;
}

/// Tells the client why the connection ends, if it takes that in a second.
async fn say_goodbye(handle: &russh::server::Handle, why: &str) {
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        handle.disconnect(russh::Disconnect::ByApplication, why.into(), "en".into()),
    )
    .await;
}

/// Resolves when told to stop, or when the sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
