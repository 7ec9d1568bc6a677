//! The `keydeck` binary run as scripts run it: a real `keydeck serve` to talk
//! to, an isolated home and config file, no terminal, and nothing inherited
//! from the caller's environment that could choose a service, token or profile.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tempfile::TempDir;

pub use crate::common::bin::BIN;
use crate::common::bin::{keydeck, scrubbed};
use crate::common::process::ServerProcess;
use crate::common::Backend;

/// A `keydeck serve` process on SQLite, and its bootstrap admin's token.
pub struct Service {
    // Declared first: dropped (killed) before its data dir goes.
    pub server: ServerProcess,
    pub backend: Backend,
    pub token: String,
}

impl Service {
    pub fn start() -> Self {
        let backend = Backend::sqlite();
        let dir = backend.data_dir.path();
        let server = ServerProcess::spawn(&backend, dir, &dir.join("serve.log"));
        let token = std::fs::read_to_string(dir.join("admin-token"))
            .expect("bootstrap wrote the admin token")
            .trim()
            .to_owned();
        Self {
            server,
            backend,
            token,
        }
    }

    pub fn url(&self) -> &str {
        &self.server.base
    }

    pub fn data_dir(&self) -> &Path {
        self.backend.data_dir.path()
    }

    /// `keydeck admin ARGS` on this service's database; its stdout, trimmed.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = keydeck()
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("admin")
            .args(args)
            .output()
            .expect("run keydeck admin");
        assert!(
            out.status.success(),
            "keydeck admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A new user's access token.
    pub fn add_user(&self, org: &str, email: &str, role: &str) -> String {
        self.admin(&[
            "users", "add", "--org", org, "--email", email, "--role", role,
        ])
    }
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit code 0.
    pub fn ok(self) -> Self {
        self.code(0)
    }

    /// Asserts the exit code.
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code, expected,
            "keydeck {:?} exited {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "keydeck {:?}: stdout is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }

    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "keydeck {:?}: {needle:?} not in stderr:\n{}",
            self.args,
            self.stderr
        );
        self
    }
}

/// A user of the command line: a home directory and config file of their own.
pub struct User {
    pub home: TempDir,
    vars: Vec<(String, String)>,
}

impl Default for User {
    fn default() -> Self {
        Self::new()
    }
}

impl User {
    pub fn new() -> Self {
        Self {
            home: tempfile::tempdir().expect("temp dir"),
            vars: Vec::new(),
        }
    }

    /// One with `KEYDECK_URL` and `KEYDECK_TOKEN` set for `service`'s admin.
    pub fn of(service: &Service) -> Self {
        Self::new()
            .env("KEYDECK_URL", service.url())
            .env("KEYDECK_TOKEN", &service.token)
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.vars.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The config file (`KEYDECK_CONFIG`).
    pub fn config(&self) -> PathBuf {
        self.home.path().join(".config/keydeck/config.toml")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// Runs with extra variables (an empty value removes the variable) and
    /// optional standard input (otherwise none: not a terminal).
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut cmd = keydeck();
        cmd.args(args).current_dir(self.home.path());
        cmd.env("HOME", self.home.path())
            .env("KEYDECK_CONFIG", self.config());
        for (k, v) in self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(env.iter().copied())
        {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn keydeck");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait for keydeck");
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
        }
    }

    /// `keys list --json` (with `extra` arguments): the keys.
    pub fn keys(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["keys", "list", "--json"];
        args.extend_from_slice(extra);
        self.run(&args)
            .ok()
            .json()
            .as_array()
            .expect("array")
            .clone()
    }
}

/// The key with this id in a `keys list --json` answer.
pub fn find<'a>(keys: &'a [Value], id: &str) -> Option<&'a Value> {
    keys.iter().find(|k| k["id"] == id)
}

/// Whether `s` is a well-formed default-format secret: `eg_live_` + 38 base62 characters.
pub fn is_secret(s: &str) -> bool {
    s.strip_prefix("eg_live_")
        .is_some_and(|rest| rest.len() == 38 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `GET /v1/auth` with `secret`, requiring `scope`: the status code.
pub fn auth_status(base: &str, secret: &str, scope: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{base}/v1/auth"))
            .query(&[("scope", scope)])
            .header("x-api-key", secret)
            .send()
            .await
            .expect("auth request")
            .status()
            .as_u16()
    })
}

/// What a run in a pseudo-terminal showed, and how it ended.
pub struct TerminalRun {
    pub code: u32,
    /// Everything written to the terminal, escape sequences included.
    pub screen: String,
}

/// Linux's `ECHO` bit of the terminal's local flags.
const ECHO: u32 = 0o10;

impl User {
    /// Runs `keydeck ARGS` on a real pseudo-terminal (stdin, stdout and stderr
    /// all a terminal), answering each prompt of `dialogue` as it appears.
    /// A reply starting with `hidden:` is typed only once the terminal stops echoing.
    pub fn run_in_terminal(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        dialogue: &[(&str, &str)],
    ) -> TerminalRun {
        use portable_pty::{native_pty_system, CommandBuilder, PtySize};
        use std::io::Read;
        use std::sync::{Arc, Mutex};

        fn text(screen: &Mutex<Vec<u8>>) -> String {
            String::from_utf8_lossy(&screen.lock().unwrap()).into_owned()
        }
        /// Polls `done` until it holds; fails after a while, showing the terminal.
        fn wait_until(what: &str, screen: &Mutex<Vec<u8>>, done: impl FnMut() -> bool) {
            crate::common::util::wait_until(what, done, || {
                format!("; the terminal shows:\n{}", text(screen))
            });
        }

        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 200,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let mut cmd = CommandBuilder::new(BIN);
        cmd.args(args);
        cmd.cwd(self.home.path());
        for var in scrubbed() {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.home.path());
        cmd.env("KEYDECK_CONFIG", self.config());
        cmd.env("TERM", "xterm-256color");
        for (k, v) in self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(env.iter().copied())
        {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let mut child = pair.slave.spawn_command(cmd).expect("spawn in pty");
        drop(pair.slave);
        let screen = Arc::new(Mutex::new(Vec::<u8>::new()));
        let mut reader = pair.master.try_clone_reader().unwrap();
        let sink = Arc::clone(&screen);
        let reading = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut writer = pair.master.take_writer().unwrap();
        let mut seen = 0;
        for (prompt, reply) in dialogue {
            wait_until(&format!("the prompt {prompt:?}"), &screen, || {
                let shown = text(&screen);
                match shown.get(seen..).and_then(|rest| rest.find(prompt)) {
                    Some(at) => {
                        seen += at + prompt.len();
                        true
                    }
                    None => false,
                }
            });
            let reply = match reply.strip_prefix("hidden:") {
                Some(secret) => {
                    wait_until("the terminal to stop echoing", &screen, || {
                        pair.master
                            .get_termios()
                            .is_some_and(|t| t.local_flags.bits() & ECHO == 0)
                    });
                    secret
                }
                None => reply,
            };
            writer.write_all(reply.as_bytes()).unwrap();
            writer.flush().unwrap();
        }
        let mut status = None;
        wait_until("keydeck to exit", &screen, || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        drop(writer);
        drop(pair.master);
        let _ = reading.join();
        TerminalRun {
            code: status.unwrap().exit_code(),
            screen: text(&screen),
        }
    }
}
