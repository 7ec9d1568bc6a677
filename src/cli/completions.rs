//! `keydeck completions SHELL` and `keydeck man`: shell completions and man
//! pages generated from the clap definitions, so they never drift from them.

use clap::CommandFactory;

use super::{output, CliError};
use crate::cli::{Cli, ManArgs};

pub fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "keydeck", &mut script);
    output::print(&String::from_utf8_lossy(&script))
}

pub fn man(args: ManArgs) -> Result<(), CliError> {
    let command = Cli::command();
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(command, &dir).map_err(|e| {
                CliError::usage(format!("cannot write man pages to {}: {e}", dir.display()))
            })?;
            eprintln!("Wrote the man pages to {}.", dir.display());
            Ok(())
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            output::print(&String::from_utf8_lossy(&page))
        }
    }
}
