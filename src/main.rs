//! keydeck's entry point: parse the command line, start the runtime, and hand
//! the command to the composition root (`run`).

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use keydeck::cli::{usage_exit_code, Cli, CliError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(usage_exit_code(std::env::args_os())),
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
    match runtime.block_on(keydeck::run::command(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keydeck: {e}");
            // The client commands' documented codes; anything else is 1.
            e.downcast_ref::<CliError>()
                .map_or(ExitCode::FAILURE, |c| ExitCode::from(c.code))
        }
    }
}
