//! `keydeck serve`: the key service and, when asked for, its SSH front end,
//! from the command line's flags, until SIGINT or SIGTERM. [`start`] is the
//! one way both are wired (the tests start them through it too): the
//! service first, then SSH with the service's gate; SSH stops first.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::ServeArgs;
use crate::clock::{Clock, SystemClock};
use crate::service::{self, OtherDescriptors, RunningService, ServiceConfig};
use crate::ssh::{self, RunningSsh, SshConfig, SshInfo};
use crate::store;
use crate::AnyError;

/// Serves until a signal asks to stop, then finishes the requests in flight.
pub async fn serve(args: ServeArgs, data_dir: PathBuf) -> Result<(), AnyError> {
    super::init_logging("info,sqlx=warn");
    let (config, ssh) = configs(args, data_dir)?;
    let running = start(config, ssh, Arc::new(SystemClock)).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    running.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// The service's and the SSH front end's settings from the flags.
fn configs(
    args: ServeArgs,
    data_dir: PathBuf,
) -> Result<(ServiceConfig, Option<SshConfig>), AnyError> {
    let mut config = ServiceConfig::new(data_dir);
    config.leaks = leak_config(&args)?;
    config.listen = args.listen;
    config.database_url = args.storage.database_url.clone();
    config.key_prefix = args.key_prefix;
    config.max_failed_auth = args.max_failed_auth;
    config.key_cache = args.key_cache;
    config.webhooks.allow_private = args.webhooks_allow_private;
    config.webhooks.digest_hour = args.webhook_digest_hour;
    config.webhooks.retention = args.webhook_retention;
    config.trusted_proxies = args.trusted_proxies;
    config.usage.minute_retention = chrono::Duration::hours(args.usage_minutes_hours.into());
    config.usage.hour_retention = chrono::Duration::days(args.usage_hours_days.into());
    config.usage.new_address_audits = args.new_address_audits;
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
    let ssh = args.ssh_listen.map(|listen| {
        let mut ssh = SshConfig::new(listen);
        ssh.host_key = args.ssh_host_key;
        ssh.idle_timeout = Duration::from_secs(args.ssh_idle_timeout * 60);
        ssh.max_sessions = args.ssh_max_sessions as usize;
        ssh.max_user_sessions = args.ssh_max_sessions_per_user as usize;
        ssh.max_connections = args.ssh_max_connections as usize;
        ssh.max_unauthenticated = args.ssh_max_unauthenticated as usize;
        ssh.max_unauthenticated_per_source = args.ssh_max_unauthenticated_per_source as usize;
        ssh.login_timeout = Duration::from_secs(args.ssh_login_timeout);
        ssh.channel_request_timeout = Duration::from_secs(args.ssh_channel_request_timeout);
        ssh.ui_capacity = super::window_capacity();
        ssh
    });
    if let Some(path) = &args.scopes_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the scopes file {}: {e}", path.display()))?;
        config.scopes = crate::key::Catalog::from_toml(&text)
            .map_err(|e| format!("the scopes file {} is not valid: {e}", path.display()))?;
    }
    Ok((config, ssh))
}

/// The leak endpoints' settings: the GitLab token (from its file, or
/// `KEYDECK_GITLAB_TOKEN`) kept only as its digest, GitHub's keys read once.
fn leak_config(args: &ServeArgs) -> Result<service::LeakConfig, AnyError> {
    let gitlab = match &args.gitlab_token_file {
        Some(path) => Some(zeroize::Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| {
                format!("cannot read the GitLab token file {}: {e}", path.display())
            })?,
        )),
        None => std::env::var("KEYDECK_GITLAB_TOKEN")
            .ok()
            .map(zeroize::Zeroizing::new),
    };
    let gitlab_token_digest = match gitlab.as_deref().map(|t| t.trim()) {
        Some(t) if t.len() < 16 || t.len() > 1024 => {
            return Err("the GitLab token must be 16 to 1024 characters".into())
        }
        Some(t) => Some(crate::key::digest(t)),
        None => None,
    };
    let github_keys = match &args.github_keys_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the GitHub keys file {}: {e}", path.display()))?;
            service::GithubKeys::from_json(&text)
                .map_err(|e| format!("the GitHub keys file {} is not valid: {e}", path.display()))?
        }
        None => service::GithubKeys::default(),
    };
    Ok(service::LeakConfig {
        requests_per_minute: args.leak_reports_per_minute,
        gitlab_token_digest,
        github_keys,
    })
}

/// The service and its SSH front end, running.
///
/// Derefs to the service, so that `running.addr` and `running.state` read
/// as they did when the service started SSH itself.
pub struct Running {
    pub service: RunningService,
    /// The SSH server, if one was asked for.
    pub ssh: Option<SshInfo>,
    /// The Unix socket the SSH sessions reach the service through (with the SSH server).
    pub ssh_sessions_socket: Option<PathBuf>,
    front_end: Option<RunningSsh>,
}

impl std::ops::Deref for Running {
    type Target = RunningService;
    fn deref(&self) -> &RunningService {
        &self.service
    }
}

impl Running {
    /// SSH first (its sessions restore their terminals and close, then its
    /// socket), then the service (in-flight requests, last-used times, the database).
    pub async fn shutdown(self) -> std::io::Result<()> {
        if let Some(ssh) = self.front_end {
            ssh.shutdown().await;
        }
        self.service.shutdown().await
    }
}

/// Why `keydeck serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Service(#[from] service::StartError),
    /// The SSH server: its host key, its listener, its sessions' socket.
    #[error("{0}")]
    Ssh(String),
}

/// Starts the service, then (with `ssh`) the SSH front end through the
/// service's gate. The SSH host key is loaded first, so that a bad one stops
/// the start before anything listens; if SSH cannot start, the service is
/// stopped again.
pub async fn start(
    mut config: ServiceConfig,
    ssh: Option<SshConfig>,
    clock: Arc<dyn Clock>,
) -> Result<Running, StartError> {
    let prepared = match &ssh {
        None => None,
        Some(ssh_config) => {
            crate::fs::prepare_data_dir(&config.data_dir).map_err(StartError::Ssh)?;
            warn_of_replica_host_keys(ssh_config, &config);
            let (count, flags) = ssh_config.descriptors();
            config.other_descriptors = Some(OtherDescriptors { count, flags });
            Some(ssh::prepare(ssh_config, &config.data_dir).map_err(StartError::Ssh)?)
        }
    };
    let service = service::start(config, clock).await?;
    let front_end = match prepared {
        None => None,
        Some(prepared) => match prepared.start(service.gate()).await {
            Ok(running) => Some(running),
            Err(e) => {
                let _ = service.shutdown().await;
                return Err(StartError::Ssh(e));
            }
        },
    };
    Ok(Running {
        ssh: front_end.as_ref().map(|s| s.info.clone()),
        ssh_sessions_socket: front_end
            .as_ref()
            .map(|s| s.sessions_socket().to_path_buf()),
        service,
        front_end,
    })
}

/// Replicas on one PostgreSQL database may each serve SSH: each with the
/// host key of its own data dir, unless given one, and clients behind a load
/// balancer would see it change. Said at start.
fn warn_of_replica_host_keys(ssh: &SshConfig, config: &ServiceConfig) {
    let shared = store::Backend::from_url(&config.database_url()).is_ok_and(|b| b.is_postgres());
    if ssh.host_key.is_none() && shared {
        tracing::warn!(
            host_key = %config.data_dir.join(ssh::HOST_KEY_FILE).display(),
            "the database is PostgreSQL, so other replicas may serve SSH too, each with the \
             host key of its own data dir: give every replica the same key with \
             --ssh-host-key PATH, or SSH clients see the host key change"
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_caps_fit_the_open_files_limit_systemd_gives() {
        let ssh = SshConfig::new("127.0.0.1:0".parse().unwrap());
        let (count, flags) = ssh.descriptors();
        assert_eq!(
            count,
            ssh.max_connections as u64 + ssh.max_sessions as u64 * ssh::FDS_PER_SESSION
        );
        let other = OtherDescriptors { count, flags };
        // The defaults fit in the 1024 descriptors systemd gives a service by default.
        assert!(
            service::descriptors_needed(service::DEFAULT_MAX_CONNECTIONS, Some(&other)) <= 1024
        );
    }
}
