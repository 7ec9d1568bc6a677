//! The command line: its clap definitions (`args.rs`, re-exported here), the
//! scriptable client commands (`keys`, `audit`, `policy`, `login`, `logout`,
//! `completions`, `man`: data on standard output, messages on standard error,
//! and exit codes a script can act on), the offline `scan` for leaked keys,
//! and the operator's `admin` (`admin.rs`, printing what `accounts` did).

pub mod admin;
mod args;
pub mod audit;
pub mod completions;
pub mod console;
mod finding;
#[cfg(test)]
mod fixtures;
pub mod keys;
mod list;
pub mod login;
mod output;
pub mod policy;
mod prompt;
mod sarif;
pub mod scan;
mod select;
pub mod usage;
pub mod webhooks;

use crate::client::{Client, ClientError};
use crate::config::{self, ConfigError, Remote};

pub use args::*;

/// Success.
pub const EXIT_OK: u8 = 0;
/// A usage error or invalid input (the message names the flag), or any other failure.
pub const EXIT_USAGE: u8 = 1;
/// No token, or the service refused it: bad token, free plan, not an admin.
pub const EXIT_REFUSED: u8 = 2;
/// The service could not be reached, or none is configured.
pub const EXIT_UNREACHABLE: u8 = 3;

/// A failed command: what to tell the user, and the exit code.
///
/// Printed printable: whatever part of the message came from a server, no
/// control or format character of it reaches the terminal (the message's own
/// lines stay).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", output::printable_lines(message))]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    pub fn unreachable(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_UNREACHABLE,
            message: message.into(),
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        let code = match e {
            ConfigError::NoToken { .. } | ConfigError::TokenCommand { .. } => EXIT_REFUSED,
            _ => EXIT_USAGE,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::usage(e.to_string())
    }
}

/// The server's words are made printable here, newlines included, so that a
/// hostile message can neither drive the terminal nor fake lines of its own.
impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        use ClientError as E;
        let safe = |m: &str| output::printable(m).into_owned();
        let (code, message) = match e {
            E::Unauthorized(m) => (
                EXIT_REFUSED,
                format!(
                    "{}\nThe access token was refused: run `keydeck login` again, or check {}.",
                    safe(&m),
                    config::TOKEN_ENV
                ),
            ),
            E::PlanRequired(m) => (EXIT_REFUSED, safe(&m)),
            E::Forbidden(m) => (EXIT_REFUSED, safe(&m)),
            e @ (E::Unreachable(_) | E::Timeout) => (EXIT_UNREACHABLE, safe(&e.to_string())),
            E::Invalid { message, fields } => {
                let mut text = safe(&message);
                // A policy violation's message already says each field's rule.
                for (field, problem) in fields.into_iter().filter(|(_, p)| !message.contains(p)) {
                    text.push_str(&format!(
                        "\n  {}: {}",
                        safe(&flag_of(&field)),
                        safe(&problem)
                    ));
                }
                (EXIT_USAGE, text)
            }
            e => (EXIT_USAGE, safe(&e.to_string())),
        };
        Self { code, message }
    }
}

/// The exit code of a command line that clap refused: `scan`'s 2 (its 1
/// means "keys found", as grep's means "matched"), else [`EXIT_USAGE`].
pub fn usage_exit_code<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let parsed = <Cli as clap::CommandFactory>::command()
        .ignore_errors(true)
        .try_get_matches_from(args);
    match parsed {
        Ok(m) if m.subcommand_name() == Some("scan") => scan::EXIT_ERROR,
        _ => EXIT_USAGE,
    }
}

/// The flag that sets an API field, for messages that name what to fix.
fn flag_of(field: &str) -> String {
    match field {
        "name" => "--name".into(),
        "description" => "--description".into(),
        "scopes" => "--scope".into(),
        "expires_at" => "--expires".into(),
        "grace_seconds" => "--grace".into(),
        "max_lifetime_days" => "--max-lifetime".into(),
        "rotate_after_days" => "--rotate-after".into(),
        "expiring_within_days" => "--expiring-within".into(),
        "unused_after_days" => "--unused-after".into(),
        other => other.into(),
    }
}

/// The global flags that choose a key service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// `--url` (or `KEYDECK_URL`).
    pub url: Option<&'a str>,
    /// `--profile` (or `KEYDECK_PROFILE`).
    pub profile: Option<&'a str>,
    /// `--allow-insecure-http` (or `KEYDECK_ALLOW_INSECURE_HTTP`).
    pub allow_insecure_http: bool,
}

/// Said when no key service is configured anywhere.
pub const NOT_CONFIGURED: &str = "no key service configured: run `keydeck login`, \
    or set KEYDECK_URL and KEYDECK_TOKEN (or pass --url), \
    or pass --data-dir DIR to use the local database as the terminal UI does";

impl Target<'_> {
    /// The key service these flags choose and the token to use there (see
    /// [`config::resolve_remote`]), refused when plain `http://` would carry
    /// the token off this machine; `None` when none is configured anywhere.
    /// The one resolution both the commands and the terminal UI use.
    pub fn remote(&self) -> Result<Option<Remote>, CliError> {
        let Some(remote) = config::resolve_remote(self.url, self.profile)? else {
            return Ok(None);
        };
        refuse_plain_http(&remote.url, *self)?;
        Ok(Some(remote))
    }
}

/// A client for the key service the flags, environment or profile choose;
/// `None` when none is configured anywhere (then `run` may start the embedded one).
pub fn configured(target: Target<'_>) -> Result<Option<Client>, CliError> {
    target
        .remote()?
        .map(|remote| client_for(&remote.url, remote.token))
        .transpose()
}

/// A token goes over plain `http://` only to this machine, unless allowed.
fn refuse_plain_http(url: &str, target: Target<'_>) -> Result<(), CliError> {
    crate::client::check_plain_http(url, target.allow_insecure_http).map_err(CliError::usage)
}

fn client_for(url: &str, token: crate::key::Secret) -> Result<Client, CliError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(CliError::usage(format!(
            "{url:?} is not a key service URL: use http://HOST:PORT or https://HOST"
        )));
    }
    Client::new(url, token).map_err(CliError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_map_to_the_documented_exit_codes() {
        let code = |e: ClientError| CliError::from(e).code;
        assert_eq!(code(ClientError::Unauthorized("x".into())), EXIT_REFUSED);
        assert_eq!(code(ClientError::PlanRequired("x".into())), EXIT_REFUSED);
        assert_eq!(code(ClientError::Forbidden("x".into())), EXIT_REFUSED);
        assert_eq!(code(ClientError::Unreachable("x".into())), EXIT_UNREACHABLE);
        assert_eq!(code(ClientError::Timeout), EXIT_UNREACHABLE);
        assert_eq!(code(ClientError::NotFound("x".into())), EXIT_USAGE);
        assert_eq!(code(ClientError::Server("x".into())), EXIT_USAGE);
        let invalid = CliError::from(ClientError::Invalid {
            message: "Invalid scopes: see fields.".into(),
            fields: [("scopes".to_owned(), "unknown scope \"x\"".to_owned())].into(),
        });
        assert_eq!(invalid.code, EXIT_USAGE);
        assert!(
            invalid.message.contains("--scope: unknown scope"),
            "{}",
            invalid.message
        );
    }

    #[test]
    fn scan_usage_errors_exit_2_and_others_1() {
        let code = |line: &str| usage_exit_code(line.split(' '));
        assert_eq!(code("keydeck scan --bogus"), 2);
        assert_eq!(code("keydeck scan --format xml"), 2);
        assert_eq!(
            code("keydeck --url http://127.0.0.1:9 scan --staged src"),
            2
        );
        assert_eq!(code("keydeck scan --prefix Bad"), 2);
        assert_eq!(code("keydeck keys list --bogus"), EXIT_USAGE);
        assert_eq!(code("keydeck --bogus"), EXIT_USAGE);
    }

    #[test]
    fn server_words_in_errors_are_printable() {
        let hostile = "no\u{1b}]52;c;aGk=\u{7}\nfake line\u{9b}2J";
        for e in [
            ClientError::Forbidden(hostile.into()),
            ClientError::NotFound(hostile.into()),
            ClientError::Unauthorized(hostile.into()),
            ClientError::Invalid {
                message: hostile.into(),
                fields: [(hostile.to_owned(), hostile.to_owned())].into(),
            },
        ] {
            let shown = CliError::from(e).to_string();
            assert!(!shown.contains(['\u{1b}', '\u{7}', '\u{9b}']), "{shown:?}");
            assert!(!shown.contains("\nfake line"), "{shown:?}");
            assert!(
                shown.contains("no\\u{1b}]52;c;aGk=\\u{7}\\u{a}fake line\\u{9b}2J"),
                "{shown:?}"
            );
        }
        // The message's own lines stay; anything else is escaped when printed.
        let ours = CliError::usage(format!("first\nsecond {}", "\u{1b}[2J"));
        assert_eq!(ours.to_string(), "first\nsecond \\u{1b}[2J");
    }
}
