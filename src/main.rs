//! keydeck's entry point: parse the command line and dispatch.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::Parser;
use keydeck::cli::{Cli, Command, ServeArgs};
use keydeck::clock::SystemClock;
use keydeck::commands;
use keydeck::service::{self, store, ServiceConfig};
use keydeck::AnyError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(commands::EXIT_USAGE),
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keydeck: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let data_dir = cli.data_dir();
    let target = commands::Target {
        url: cli.url.as_deref(),
        profile: cli.profile.as_deref(),
        allow_insecure_http: cli.allow_insecure_http,
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Serve(args)) => serve(*args, data_dir).await,
            Some(Command::Admin(args)) => {
                init_logging("warn");
                service::prepare_data_dir(&data_dir)?;
                let store = store::open(&args.storage.database_url(&data_dir)).await?;
                service::bootstrap(store.as_ref(), &data_dir, &SystemClock).await?;
                let result = keydeck::admin::run(args.command, store.as_ref(), &SystemClock).await;
                store.close().await;
                result.map_err(Into::into)
            }
            Some(Command::Keys(args)) => Ok(commands::keys::run(args.command, target).await?),
            Some(Command::Audit(args)) => Ok(commands::audit::run(args, target).await?),
            Some(Command::Policy(args)) => Ok(commands::policy::run(args.command, target).await?),
            Some(Command::Login(args)) => Ok(commands::login::login(args, target).await?),
            Some(Command::Logout) => Ok(commands::login::logout(target)?),
            Some(Command::Completions { shell }) => Ok(commands::completions::completions(shell)?),
            Some(Command::Man(args)) => Ok(commands::completions::man(args)?),
            None => {
                // Exit code 1 on any of these, as the UI always had.
                let remote = target.remote().map_err(|e| AnyError::from(e.message))?;
                let options = keydeck::tui::TuiOptions {
                    data_dir,
                    remote,
                    refresh_every: chrono::Duration::seconds(i64::from(cli.refresh)),
                    theme: keydeck::config::resolve_theme(cli.theme)?,
                };
                keydeck::tui::run(options).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keydeck: {e}");
            // The client commands' documented codes; anything else is 1.
            e.downcast_ref::<commands::CliError>()
                .map_or(ExitCode::FAILURE, |c| ExitCode::from(c.code))
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides `default`.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn serve(args: ServeArgs, data_dir: std::path::PathBuf) -> Result<(), AnyError> {
    init_logging("info,sqlx=warn");
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
        config.scopes = keydeck::key::Catalog::from_toml(&text)
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
