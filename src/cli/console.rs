//! Where a client command's output goes: the process's standard output and
//! error, or, for a command run over SSH, the session's own buffers (a
//! task-local console), so that the same code answers in both places. A
//! session's buffers may hold a new key's secret: they never leave a copy
//! behind in unwiped memory, not even when they grow.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use zeroize::Zeroizing;

use crate::present::DisplayTz;

/// A buffer wiped when dropped.
pub type Buffer = Zeroizing<Vec<u8>>;

/// Standard output and error of one command run inside a session, and the
/// client's terminal when it asked for one (`ssh -t`).
#[derive(Clone, Default)]
pub struct SessionConsole {
    out: Arc<Mutex<Buffer>>,
    err: Arc<Mutex<Buffer>>,
    terminal: Option<Terminal>,
    /// Told when standard output grows (the session may send it on).
    written: Arc<Notify>,
    /// Told when the session took standard output away.
    drained: Arc<Notify>,
}

/// The terminal of a client over SSH, as its PTY request and environment
/// describe it: what a local terminal tells a command about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    pub width: usize,
    /// Neither `NO_COLOR` (set to anything but empty) nor `TERM=dumb`.
    pub colour: bool,
}

/// Standard output a command inside a session may hold before [`pace`]
/// waits for the session to send it on.
pub const PACE_BYTES: usize = 256 * 1024;

impl SessionConsole {
    /// A console for a client with this terminal (`None`: none).
    pub fn with_terminal(terminal: Option<Terminal>) -> Self {
        Self {
            terminal,
            ..Self::default()
        }
    }

    /// Waits until the command writes to standard output.
    pub async fn written(&self) {
        self.written.notified().await
    }

    /// What the command wrote to standard output so far (moved out), for
    /// the session to send while the command goes on.
    pub fn take_out(&self) -> Buffer {
        let out = std::mem::take(&mut *self.out.lock().unwrap_or_else(|e| e.into_inner()));
        self.drained.notify_waiters();
        out
    }

    fn out_len(&self) -> usize {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// What the command wrote to its standard output and standard error
    /// (moved out, not copied: the console is empty afterwards).
    pub fn take(&self) -> (Buffer, Buffer) {
        let take =
            |b: &Mutex<Buffer>| std::mem::take(&mut *b.lock().unwrap_or_else(|e| e.into_inner()));
        (take(&self.out), take(&self.err))
    }
}

/// Appends `bytes` to `buffer`. When it must grow, the contents move to a
/// bigger buffer and the old one is wiped before it is freed (a `Vec`'s own
/// growth would free it as it is).
pub fn append(buffer: &mut Buffer, bytes: &[u8]) {
    let needed = buffer.len() + bytes.len();
    if needed > buffer.capacity() {
        let mut bigger = Vec::with_capacity(needed.max(buffer.capacity() * 2).max(256));
        bigger.extend_from_slice(buffer);
        // The old buffer is wiped as it drops.
        *buffer = Zeroizing::new(bigger);
    }
    buffer.extend_from_slice(bytes);
}

tokio::task_local! {
    static CONSOLE: SessionConsole;
}

/// Runs `command` with its output going to `console` instead of the process's.
pub async fn capture<F: Future>(console: SessionConsole, command: F) -> F::Output {
    CONSOLE.scope(console, command).await
}

/// Inside a session, waits until the session has sent standard output on
/// while it holds more than [`PACE_BYTES`]: a command writing page after
/// page (`keys list --json`) holds about one page, whatever the total.
/// Outside one, output went straight to the process's standard output.
pub async fn pace() {
    let Ok(console) = CONSOLE.try_with(SessionConsole::clone) else {
        return;
    };
    loop {
        // Registered before the check: a drain in between is not missed.
        let drained = console.drained.notified();
        if console.out_len() <= PACE_BYTES {
            return;
        }
        drained.await;
    }
}

/// Whether this command runs inside a session (no terminal of ours to ask on).
pub fn in_session() -> bool {
    CONSOLE.try_with(|_| ()).is_ok()
}

/// Inside a session: `Some` with the client's terminal, if it asked for
/// one. Outside: `None`.
pub fn session_terminal() -> Option<Option<Terminal>> {
    CONSOLE.try_with(|c| c.terminal).ok()
}

/// A command to run next, as its reader types it: `keydeck keys rotate ID`
/// here, `keys rotate ID` (what follows `ssh HOST`) inside a session.
pub fn command(words: &str) -> String {
    if in_session() {
        words.to_owned()
    } else {
        format!("keydeck {words}")
    }
}

/// The zone a command says times in: the machine's own, or inside a
/// session UTC, as the UI over SSH says them (the server's zone is not the
/// admin's). Dates typed to `--expires` are read in it too.
pub fn display_tz() -> DisplayTz {
    if in_session() {
        DisplayTz::utc()
    } else {
        DisplayTz::Local
    }
}

/// Writes to standard output, or to the session's.
pub fn write_out(bytes: &[u8]) -> std::io::Result<()> {
    match CONSOLE.try_with(|c| {
        append(&mut c.out.lock().unwrap_or_else(|e| e.into_inner()), bytes);
        c.written.notify_one();
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
            append(
                &mut c.err.lock().unwrap_or_else(|e| e.into_inner()),
                line.as_bytes(),
            )
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
        $crate::cli::console::write_note(format_args!($($arg)*))
    };
}
pub(crate) use note;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_moves_to_a_bigger_buffer_and_keeps_everything() {
        let mut buffer = Buffer::default();
        let mut expected = Vec::new();
        let mut moves = 0;
        for i in 0..2_000u32 {
            let before = (buffer.as_ptr(), buffer.capacity());
            let line = format!("kd_live_{i:05}\n");
            append(&mut buffer, line.as_bytes());
            expected.extend_from_slice(line.as_bytes());
            if buffer.capacity() != before.1 {
                moves += 1;
                // Only ever grown by us, at least doubling: a handful of moves.
                assert!(buffer.capacity() >= 2 * before.1, "{before:?}");
            }
        }
        assert_eq!(buffer.as_slice(), expected.as_slice());
        assert!(moves <= 10, "{moves} moves");
    }

    #[tokio::test]
    async fn a_session_knows_the_clients_terminal() {
        assert_eq!(session_terminal(), None);
        let terminal = |console| capture(console, async { session_terminal() });
        assert_eq!(terminal(SessionConsole::default()).await, Some(None));
        let vt = Terminal {
            width: 80,
            colour: true,
        };
        assert_eq!(
            terminal(SessionConsole::with_terminal(Some(vt))).await,
            Some(Some(vt))
        );
    }

    #[tokio::test]
    async fn a_command_to_run_next_has_no_keydeck_over_ssh() {
        assert_eq!(command("keys list"), "keydeck keys list");
        let inside = capture(SessionConsole::default(), async { command("keys list") }).await;
        assert_eq!(inside, "keys list");
    }

    #[tokio::test]
    async fn a_session_says_times_in_utc_as_the_ui_over_ssh_does() {
        assert_eq!(display_tz(), DisplayTz::Local);
        let inside = capture(SessionConsole::default(), async { display_tz() }).await;
        assert_eq!(inside, DisplayTz::utc());
    }

    #[tokio::test]
    async fn pace_holds_a_command_until_the_session_took_its_output() {
        let console = SessionConsole::default();
        let mut command = tokio::spawn(capture(console.clone(), async {
            write_out(&vec![b'x'; PACE_BYTES + 1]).unwrap();
            pace().await;
            write_out(b"after").unwrap();
        }));
        console.written().await;
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(100), &mut command).await;
        assert!(waited.is_err(), "pace returned with the output still held");
        assert_eq!(console.take_out().len(), PACE_BYTES + 1);
        command.await.unwrap();
        assert_eq!(console.take().0.as_slice(), b"after");
    }

    #[tokio::test]
    async fn a_sessions_output_is_moved_out_whole_and_the_console_left_empty() {
        let console = SessionConsole::default();
        capture(console.clone(), async {
            write_out(b"kd_live_secret\n").unwrap();
            note!("a note");
        })
        .await;
        let (out, err): (Buffer, Buffer) = console.take();
        assert_eq!(out.as_slice(), b"kd_live_secret\n");
        assert_eq!(err.as_slice(), b"a note\n");
        let (out, err) = console.take();
        assert_eq!(
            (out.capacity(), err.capacity()),
            (0, 0),
            "nothing left behind"
        );
    }
}
