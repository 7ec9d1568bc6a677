//! `keydeck serve`: the key service (and its SSH front door when asked for)
//! from the command line's flags, until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::ServeArgs;
use crate::clock::SystemClock;
use crate::service::{self, ServiceConfig};
use crate::AnyError;

/// Serves until a signal asks to stop, then finishes the requests in flight.
pub async fn serve(args: ServeArgs, data_dir: PathBuf) -> Result<(), AnyError> {
    super::init_logging("info,sqlx=warn");
    let mut config = ServiceConfig::new(data_dir);
    config.listen = args.listen;
    config.database_url = args.storage.database_url.clone();
    config.key_prefix = args.key_prefix;
    config.max_failed_auth = args.max_failed_auth;
    config.key_cache = args.key_cache;
    config.trusted_proxies = args.trusted_proxies;
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(service::TlsFiles { cert, key });
    }
    config.timeouts = service::Timeouts {
        header: Duration::from_secs(args.header_timeout),
        body: Duration::from_secs(args.body_timeout),
        request: Duration::from_secs(args.request_timeout),
        idle: Duration::from_secs(args.idle_timeout),
    };
    config.max_connections = args.max_connections as usize;
    if let Some(listen) = args.ssh_listen {
        let mut ssh = service::SshConfig::new(listen);
        ssh.host_key = args.ssh_host_key;
        ssh.idle_timeout = Duration::from_secs(args.ssh_idle_timeout * 60);
        ssh.max_sessions = args.ssh_max_sessions as usize;
        ssh.max_user_sessions = args.ssh_max_sessions_per_user as usize;
        ssh.max_connections = args.ssh_max_connections as usize;
        ssh.max_unauthenticated = args.ssh_max_unauthenticated as usize;
        ssh.max_unauthenticated_per_source = args.ssh_max_unauthenticated_per_source as usize;
        ssh.login_timeout = Duration::from_secs(args.ssh_login_timeout);
        ssh.channel_request_timeout = Duration::from_secs(args.ssh_channel_request_timeout);
        config.ssh = Some(ssh);
    }
    if let Some(path) = &args.scopes_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the scopes file {}: {e}", path.display()))?;
        config.scopes = crate::key::Catalog::from_toml(&text)
            .map_err(|e| format!("the scopes file {} is not valid: {e}", path.display()))?;
    }
    let running = service::start(config, Arc::new(SystemClock)).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    running.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
