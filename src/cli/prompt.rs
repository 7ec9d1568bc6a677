//! Questions on the terminal: confirmations, a line of input, a hidden token.
//! Questions go to standard error so that standard output stays data.

use std::io::{BufRead, IsTerminal, Write};

use super::CliError;
use crate::key::Secret;

/// Whether someone is at a terminal to answer.
pub fn interactive() -> bool {
    !super::console::in_session() && std::io::stdin().is_terminal()
}

/// Asks `question` and reads one line from standard input (without its newline).
pub fn ask(question: &str) -> Result<String, CliError> {
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "{question}")?;
    stderr.flush()?;
    drop(stderr);
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        return Err(CliError::usage("no answer (end of input)"));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `[y/N]`: yes only for `y` or `yes`.
pub fn confirm(question: &str) -> Result<bool, CliError> {
    let answer = ask(&format!("{question} [y/N] "))?;
    Ok(is_yes(&answer))
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Reads a secret from the terminal without echoing it.
pub fn ask_hidden(question: &str) -> Result<Secret, CliError> {
    let value = rpassword::prompt_password(question)
        .map_err(|e| CliError::usage(format!("cannot read from the terminal: {e}")))?;
    Ok(Secret::new(value.trim().to_owned()))
}

/// Everything on standard input, trimmed: a token piped in by a script.
pub fn read_stdin_secret() -> Result<Secret, CliError> {
    let mut value = zeroize::Zeroizing::new(String::new());
    std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut value)?;
    Ok(Secret::new(value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_is_yes() {
        for yes in ["y", "Y", "yes", " YES "] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "n", "no", "yep", "revoke"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
