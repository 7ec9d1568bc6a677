//! Where a client command's output goes: the process's standard output and
//! error, or, for a command run over SSH, the session's own buffers (a
//! task-local console), so that the same code answers in both places.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Standard output and error of one command run inside a session.
#[derive(Clone, Default)]
pub struct SessionConsole {
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
}

impl SessionConsole {
    /// What the command wrote to its standard output and standard error.
    pub fn take(&self) -> (Vec<u8>, Vec<u8>) {
        let take =
            |b: &Mutex<Vec<u8>>| std::mem::take(&mut *b.lock().unwrap_or_else(|e| e.into_inner()));
        (take(&self.out), take(&self.err))
    }
}

tokio::task_local! {
    static CONSOLE: SessionConsole;
}

/// Runs `command` with its output going to `console` instead of the process's.
pub async fn capture<F: Future>(console: SessionConsole, command: F) -> F::Output {
    CONSOLE.scope(console, command).await
}

/// Whether this command runs inside a session (no terminal of ours to ask on).
pub fn in_session() -> bool {
    CONSOLE.try_with(|_| ()).is_ok()
}

/// Writes to standard output, or to the session's.
pub fn write_out(bytes: &[u8]) -> std::io::Result<()> {
    match CONSOLE.try_with(|c| {
        c.out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes)
    }) {
        Ok(()) => Ok(()),
        Err(_) => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes).and_then(|()| stdout.flush())
        }
    }
}

/// A line for people on standard error, or on the session's.
pub fn write_note(args: std::fmt::Arguments<'_>) {
    let line = format!("{args}\n");
    if CONSOLE
        .try_with(|c| {
            c.err
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(line.as_bytes())
        })
        .is_err()
    {
        eprint!("{line}");
    }
}

/// `eprintln!` for the client commands: to the session's standard error when
/// the command runs inside one.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::commands::console::write_note(format_args!($($arg)*))
    };
}
pub(crate) use note;
