//! The composition root, the only place that wires the layers together: the
//! command line's choice becomes the service (+ SSH) to serve, the UI with
//! its client, an admin job on the database, or a client command.

pub mod admin;
pub mod client;
pub mod serve;
pub mod ui;

use crate::cli::{self, Cli, Command};
use crate::AnyError;
use client::ClientCommand::{Audit, Keys, Policy, Usage, Webhooks};

/// Runs what the command line asks for.
pub async fn command(line: Cli) -> Result<(), AnyError> {
    let data_dir = line.data_dir();
    let target = cli::Target {
        url: line.url.as_deref(),
        profile: line.profile.as_deref(),
        allow_insecure_http: line.allow_insecure_http,
    };
    match line.command {
        Some(Command::Serve(args)) => serve::serve(*args, data_dir).await,
        Some(Command::Admin(args)) => admin::admin(args, data_dir).await,
        Some(Command::Keys(args)) => client::run(Keys(args.command), target, line.data_dir).await,
        Some(Command::Audit(args)) => client::run(Audit(args), target, line.data_dir).await,
        Some(Command::Policy(args)) => {
            client::run(Policy(args.command), target, line.data_dir).await
        }
        Some(Command::Usage(args)) => client::run(Usage(args), target, line.data_dir).await,
        Some(Command::Webhooks(args)) => {
            client::run(Webhooks(args.command), target, line.data_dir).await
        }
        Some(Command::Scan(args)) => client::scan(args, target, line.data_dir).await,
        Some(Command::Login(args)) => Ok(cli::login::login(args, target).await?),
        Some(Command::Logout) => Ok(cli::login::logout(target)?),
        Some(Command::Completions { shell }) => Ok(cli::completions::completions(shell)?),
        Some(Command::Man(args)) => Ok(cli::completions::man(args)?),
        None => {
            // Exit code 1 on any of these, as the UI always had.
            let remote = target.remote().map_err(|e| AnyError::from(e.message))?;
            let ui = ui::UiArgs {
                data_dir,
                remote,
                refresh_every: chrono::Duration::seconds(i64::from(line.refresh)),
                theme: crate::config::resolve_theme(line.theme)?,
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

/// The most keys a UI holds, the local one's and every SSH session's
/// (`KEYDECK_UI_CAPACITY`, a hidden knob for tests and trials;
/// [`crate::tui::app::DEFAULT_CAPACITY`] by default).
fn window_capacity() -> usize {
    capacity_of(std::env::var("KEYDECK_UI_CAPACITY").ok().as_deref())
}

/// `KEYDECK_UI_CAPACITY`'s value read: a positive number, else the default.
fn capacity_of(value: Option<&str>) -> usize {
    value
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(crate::tui::app::DEFAULT_CAPACITY)
}

#[cfg(test)]
mod tests {
    use super::capacity_of;
    use crate::tui::app::DEFAULT_CAPACITY;

    #[test]
    fn the_capacity_is_a_positive_number_or_the_default() {
        assert_eq!(capacity_of(Some(" 50 ")), 50);
        for value in [None, Some(""), Some("0"), Some("-3"), Some("many")] {
            assert_eq!(capacity_of(value), DEFAULT_CAPACITY, "{value:?}");
        }
    }
}
