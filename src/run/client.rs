//! The client commands (`keys`, `audit`, `policy`, `scan --report`) on the key service the
//! flags, environment or profile choose; with none configured and an explicit
//! `--data-dir`, on the embedded service over that data dir, started the way
//! the UI starts it, and stopped when the command is done.

use std::path::PathBuf;

use crate::api::LeakReports;
use crate::cli::{
    self, AuditArgs, CliError, KeysCommand, PolicyCommand, ScanArgs, Target, UsageArgs,
    WebhooksCommand,
};
use crate::client::Client;
use crate::AnyError;

/// One client command.
pub enum ClientCommand {
    Keys(KeysCommand),
    Audit(AuditArgs),
    Policy(PolicyCommand),
    Usage(UsageArgs),
    Webhooks(WebhooksCommand),
    /// `scan --report`'s digests.
    Report(LeakReports),
}

/// `keydeck scan`: offline; with `--report` and keys found, their digests go
/// to the service as the other client commands reach it. Every failure of the
/// report exits 2, as `scan`'s other errors do.
pub async fn scan(
    args: ScanArgs,
    target: Target<'_>,
    data_dir: Option<PathBuf>,
) -> Result<(), AnyError> {
    let found = cli::scan::scan(&args)?;
    if args.report && !found.hits.is_empty() {
        if let Err(e) = run(ClientCommand::Report(found.reports()), target, data_dir).await {
            let message = e
                .downcast_ref::<CliError>()
                .map_or_else(|| e.to_string(), |c| c.message.clone());
            eprintln!("keydeck: {}", found.verdict().unwrap_err().message);
            return Err(CliError {
                code: cli::scan::EXIT_ERROR,
                message,
            }
            .into());
        }
    }
    Ok(found.verdict()?)
}

/// Runs `command`; `data_dir` is the `--data-dir` (or `KEYDECK_DATA_DIR`)
/// given, if one was.
pub async fn run(
    command: ClientCommand,
    target: Target<'_>,
    data_dir: Option<PathBuf>,
) -> Result<(), AnyError> {
    if let Some(client) = cli::configured(target)? {
        return Ok(on(command, &client).await?);
    }
    let Some(data_dir) = data_dir else {
        return Err(CliError::unreachable(cli::NOT_CONFIGURED).into());
    };
    let (client, running) = super::ui::start_embedded(&data_dir).await.map_err(|e| {
        CliError::unreachable(format!(
            "cannot start the key service on the data dir {}: {e}",
            data_dir.display()
        ))
    })?;
    let result = on(command, &client).await;
    super::ui::stop_embedded(running).await;
    Ok(result?)
}

async fn on(command: ClientCommand, client: &Client) -> Result<(), CliError> {
    match command {
        ClientCommand::Keys(command) => cli::keys::run_on(command, client).await,
        ClientCommand::Audit(args) => cli::audit::run_on(args, client).await,
        ClientCommand::Policy(command) => cli::policy::run_on(command, client).await,
        ClientCommand::Usage(args) => cli::usage::org(client, args).await,
        ClientCommand::Webhooks(command) => cli::webhooks::run_on(command, client).await,
        ClientCommand::Report(reports) => cli::scan::report_on(reports, client).await,
    }
}
