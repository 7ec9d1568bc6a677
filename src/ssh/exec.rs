//! `ssh HOST keys list --json`: the client commands (`keys …`, `audit`,
//! `policy …`) run as the session's user, with the same output, `--json` and
//! exit codes as on the command line; anything else gets a short usage
//! message and exit 1.
//! What a command prints may hold a new key's secret: every copy of it here
//! is wiped when dropped.

use clap::{Parser, Subcommand};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::cli::console::{self, SessionConsole, Terminal};
use crate::cli::{self, EXIT_OK, EXIT_USAGE};
use crate::cli::{AuditArgs, KeysArgs, PolicyArgs, UsageArgs, WebhooksArgs};
use crate::client::Client;

/// Longest command line accepted.
const COMMAND_MAX: usize = 4096;

/// What a command over SSH may be.
#[derive(Debug, Parser)]
#[command(
    name = "keydeck",
    about = "keydeck over SSH: without a command (and with a terminal), the terminal UI",
    after_help = "Examples:\n  ssh -p 2222 keys.example.com                      # the terminal UI\n  \
        ssh -p 2222 keys.example.com keys list --json\n  \
        ssh -p 2222 keys.example.com keys revoke eg_live_1a2B --yes\n  \
        ssh -p 2222 keys.example.com policy show"
)]
struct SshCommandLine {
    #[command(subcommand)]
    command: SshCommand,
}

#[derive(Debug, Subcommand)]
enum SshCommand {
    /// The organisation's API keys: list, create, show, rotate, revoke.
    Keys(KeysArgs),
    /// The organisation's audit log.
    Audit(AuditArgs),
    /// The organisation's key policy: show, or set (admins).
    Policy(PolicyArgs),
    /// The organisation's key checks by outcome, and its top keys.
    Usage(UsageArgs),
    /// The organisation's webhook endpoints (admins).
    Webhooks(WebhooksArgs),
}

/// The exit status of a command whose output the client stopped taking
/// (see `SshConfig::exec_progress_timeout`): a failure, whatever the command did.
pub const EXIT_CUT: u8 = EXIT_USAGE;

/// What a command printed (wiped when dropped), and its exit status.
#[derive(Default)]
pub struct Finished {
    pub status: u8,
    pub stdout: Zeroizing<Vec<u8>>,
    pub stderr: Zeroizing<Vec<u8>>,
}

/// Lengths only: the output may hold a secret.
impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finished")
            .field("status", &self.status)
            .field("stdout_bytes", &self.stdout.len())
            .field("stderr_bytes", &self.stderr.len())
            .finish()
    }
}

/// Runs `command` with `client` for a client with this `terminal` (if it
/// asked for one), its whole standard output in the answer.
#[cfg(test)]
pub async fn run(command: &[u8], client: Client, terminal: Option<Terminal>) -> Finished {
    let (tx, mut rx) = mpsc::channel::<console::Buffer>(1);
    let gather = async {
        let mut all = console::Buffer::default();
        while let Some(chunk) = rx.recv().await {
            console::append(&mut all, &chunk);
        }
        all
    };
    let (mut done, mut out) = tokio::join!(run_streaming(command, client, terminal, tx), gather);
    console::append(&mut out, &done.stdout);
    done.stdout = out;
    done
}

/// Runs `command` (as the client sent it) with `client`, for a client with
/// this `terminal` (if it asked for one). What it writes to
/// standard output while it runs goes to `stream` as it comes (a long
/// listing is sent page by page, never held whole); the rest, standard
/// error and the status come back at the end.
pub async fn run_streaming(
    command: &[u8],
    client: Client,
    terminal: Option<Terminal>,
    stream: mpsc::Sender<console::Buffer>,
) -> Finished {
    let words = std::str::from_utf8(command)
        .ok()
        .filter(|c| c.len() <= COMMAND_MAX)
        .and_then(|c| shell_words::split(c).ok());
    let Some(words) = words else {
        return usage("keydeck: the command is not valid UTF-8 text with balanced quotes, at most 4096 bytes\n");
    };
    let line =
        match SshCommandLine::try_parse_from(std::iter::once("keydeck".to_owned()).chain(words)) {
            Ok(line) => line,
            Err(e) => {
                let status = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
                let text = Zeroizing::new(e.render().to_string().into_bytes());
                return if e.use_stderr() {
                    Finished {
                        status,
                        stderr: text,
                        ..Finished::default()
                    }
                } else {
                    Finished {
                        status,
                        stdout: text,
                        ..Finished::default()
                    }
                };
            }
        };
    let session = SessionConsole::with_terminal(terminal);
    let captured = session.clone();
    // Its own task: a panic in a command ends that command only.
    let mut task = tokio::spawn(console::capture(captured, async move {
        match line.command {
            SshCommand::Keys(args) => cli::keys::run_on(args.command, &client).await,
            SshCommand::Audit(args) => cli::audit::run_on(args, &client).await,
            SshCommand::Policy(args) => cli::policy::run_on(args.command, &client).await,
            SshCommand::Usage(args) => cli::usage::org(&client, args).await,
            SshCommand::Webhooks(args) => cli::webhooks::run_on(args.command, &client).await,
        }
    }));
    let outcome = loop {
        tokio::select! {
            done = &mut task => break done,
            () = session.written() => {
                let chunk = session.take_out();
                // A session that stopped taking output: the rest is dropped (wiped).
                if !chunk.is_empty() {
                    let _ = stream.send(chunk).await;
                }
            }
        }
    };
    let (stdout, mut stderr) = session.take();
    let status = match outcome {
        Ok(Ok(())) => EXIT_OK,
        Ok(Err(e)) => {
            console::append(&mut stderr, format!("keydeck: {e}\n").as_bytes());
            e.code
        }
        Err(e) => {
            tracing::error!(error = %e, "a command over SSH failed");
            console::append(
                &mut stderr,
                b"keydeck: internal error; nothing more was done\n",
            );
            EXIT_USAGE
        }
    };
    Finished {
        status,
        stdout,
        stderr,
    }
}

fn usage(message: &str) -> Finished {
    Finished {
        status: EXIT_USAGE,
        stderr: Zeroizing::new(message.as_bytes().to_vec()),
        ..Finished::default()
    }
}

/// `\n` as `\r\n`, for a client that asked for a terminal (its own is in
/// raw mode): a copy made at its final size (no reallocation leaves a copy
/// behind), wiped when dropped.
pub fn crlf(text: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut previous = 0u8;
    let added = text
        .iter()
        .filter(|&&b| {
            let bare = b == b'\n' && previous != b'\r';
            previous = b;
            bare
        })
        .count();
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() + added));
    let mut previous = 0u8;
    for &b in text {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    debug_assert_eq!(out.len(), out.capacity());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_become_crlf_once_in_a_copy_of_its_final_size() {
        let text = crlf(b"a\nb\r\nc\n\n");
        assert_eq!(text.as_slice(), b"a\r\nb\r\nc\r\n\r\n");
        assert_eq!(text.capacity(), text.len());
    }

    #[test]
    fn finished_output_is_never_in_debug() {
        let done = Finished {
            status: 0,
            stdout: Zeroizing::new(b"kd_live_secret".to_vec()),
            stderr: Zeroizing::new(b"note".to_vec()),
        };
        let debug = format!("{done:?}");
        assert!(
            !debug.contains("secret") && !debug.contains("107"),
            "{debug}"
        );
        assert!(debug.contains("stdout_bytes: 14"), "{debug}");
    }

    #[tokio::test]
    async fn anything_but_keys_audit_and_policy_is_a_usage_error() {
        let client =
            Client::new("http://127.0.0.1:9", crate::key::Secret::new("x".into())).unwrap();
        for bad in [
            "",
            "serve",
            "admin users list",
            "keys",
            "policy",
            "policy set --max-lifetime forever",
            "ls -la",
            "keys list --url http://x",
            "\"unbalanced",
        ] {
            let done = run(bad.as_bytes(), client.clone(), None).await;
            assert_eq!(done.status, EXIT_USAGE, "{bad:?}");
            assert!(done.stdout.is_empty(), "{bad:?}");
            assert!(!done.stderr.is_empty(), "{bad:?}");
        }
        let help = run(b"keys --help", client, None).await;
        assert_eq!(help.status, EXIT_OK);
        assert!(String::from_utf8_lossy(&help.stdout).contains("revoke"));
    }
}
