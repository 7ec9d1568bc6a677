//! The PTY driver: a program in a real pseudo-terminal, with everything it
//! wrote and a vt100 model of the screen, driven by keystrokes and signals.

use std::io::{Read, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize, SlavePty};

use super::bin::{scrubbed, BIN};
use super::util::wait_until;

/// How long a wait for the screen may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The keydeck UI in a PTY, with everything it wrote and a vt100 model of the screen.
pub struct Session {
    pub child: Box<dyn Child + Send + Sync>,
    master: Box<dyn MasterPty + Send>,
    // Kept open so the terminal's modes can be read after the UI exits.
    _slave: Box<dyn SlavePty + Send>,
    writer: Box<dyn Write + Send>,
    pub output: Arc<Mutex<Vec<u8>>>,
    screen: Arc<Mutex<vt100::Parser>>,
}

impl Session {
    pub fn start(args: &[&str], env: &[(&str, &str)], cols: u16, rows: u16) -> Self {
        Self::start_program(BIN, args, env, cols, rows)
    }

    /// Runs `program` (e.g. a shell that execs keydeck) instead of keydeck itself.
    pub fn start_program(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        cols: u16,
        rows: u16,
    ) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new(program);
        cmd.args(args);
        for var in scrubbed() {
            cmd.env_remove(var);
        }
        cmd.env("TERM", "xterm-256color");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair
            .slave
            .spawn_command(cmd)
            .expect("spawn keydeck in a PTY");
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let (out, scr) = (output.clone(), screen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().unwrap().extend_from_slice(&buf[..n]);
                scr.lock().unwrap().process(&buf[..n]);
            }
        });
        Self {
            child,
            master: pair.master,
            _slave: pair.slave,
            writer,
            output,
            screen,
        }
    }

    pub fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// The screen as the terminal has it now, cells and colours included.
    pub fn screen(&self) -> vt100::Screen {
        self.screen.lock().unwrap().screen().clone()
    }

    /// Waits until the screen shows `text` (and returns the screen).
    pub fn wait_for(&self, text: &str) -> String {
        self.wait_screen(&format!("{text:?} to appear"), |s| s.contains(text))
    }

    pub fn wait_gone(&self, text: &str) -> String {
        self.wait_screen(&format!("{text:?} to go away"), |s| !s.contains(text))
    }

    /// Waits until `done` holds for the screen's text, and returns that text.
    fn wait_screen(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let mut screen = String::new();
        wait_until(
            what,
            || {
                screen = self.contents();
                done(&screen)
            },
            || format!("; the screen:\n{}", self.contents()),
        );
        screen
    }

    pub fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.screen
            .lock()
            .unwrap()
            .screen_mut()
            .set_size(rows, cols);
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.process_id().expect("pid")
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits (at most `limit`) for the process to end; returns its exit code and how long it took.
    pub fn wait_exit(&mut self, limit: Duration) -> (u32, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.exit_code(), started.elapsed());
            }
            assert!(
                started.elapsed() < limit,
                "still running after {limit:?}:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Everything the program wrote, as (lossy) text.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// The terminal was left as it was found: main screen back, cursor shown,
    /// and (read from the terminal itself) canonical mode and echo on again.
    pub fn assert_terminal_restored(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let out = loop {
            let out = self.output();
            // The reader thread may still be catching up with the last writes.
            let entered = out.rfind("\x1b[?1049h");
            let restored = out.rfind("\x1b[?1049l") > entered && out.rfind("\x1b[?25h") > entered;
            if restored || Instant::now() > deadline {
                break out;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let entered = out
            .rfind("\x1b[?1049h")
            .expect("entered the alternate screen");
        let left = out.rfind("\x1b[?1049l").expect("left the alternate screen");
        assert!(
            left > entered,
            "the alternate screen was left after it was last entered"
        );
        let shown = out.rfind("\x1b[?25h").expect("cursor shown");
        assert!(shown > entered, "the cursor was shown again at exit");
        let tty = self.master.tty_name().expect("the PTY's device name");
        let modes = Command::new("stty")
            .arg("-a")
            .arg("-F")
            .arg(&tty)
            .output()
            .unwrap();
        let modes = String::from_utf8_lossy(&modes.stdout);
        let words: Vec<&str> = modes.split_whitespace().collect();
        assert!(
            words.contains(&"icanon") && words.contains(&"echo"),
            "raw mode is off again: {modes}"
        );
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
