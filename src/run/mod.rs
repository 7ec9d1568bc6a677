//! The composition root, the only place that wires the layers together: the
//! command line's choice becomes the service (+ SSH) to serve, the UI with
//! its client, an admin job on the database, or a client command.

pub mod admin;
pub mod serve;
pub mod ui;

use crate::cli::{Cli, Command};
use crate::commands;
use crate::AnyError;

/// Runs what the command line asks for.
pub async fn command(cli: Cli) -> Result<(), AnyError> {
    let data_dir = cli.data_dir();
    let target = commands::Target {
        url: cli.url.as_deref(),
        profile: cli.profile.as_deref(),
        allow_insecure_http: cli.allow_insecure_http,
    };
    match cli.command {
        Some(Command::Serve(args)) => serve::serve(*args, data_dir).await,
        Some(Command::Admin(args)) => admin::admin(args, data_dir).await,
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
            let ui = ui::UiArgs {
                data_dir,
                remote,
                refresh_every: chrono::Duration::seconds(i64::from(cli.refresh)),
                theme: crate::config::resolve_theme(cli.theme)?,
            };
            ui::ui(ui).await
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
