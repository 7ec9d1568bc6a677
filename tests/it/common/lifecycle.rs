//! The binary as an operator runs it for the lifecycle tests: `keydeck admin`
//! on a test backend, and `keydeck serve` or the UI under `umask 022`.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::Backend;

pub const BIN: &str = env!("CARGO_BIN_EXE_keydeck");

/// The login name `keydeck admin` runs under in these tests; the audit log
/// names the operator `OPERATOR@HOST`.
pub const OPERATOR: &str = "ops-tester";

/// Variables of the caller's environment that must not reach the binary.
const SCRUBBED: &[&str] = &[
    "KEYDECK_URL",
    "KEYDECK_TOKEN",
    "KEYDECK_PROFILE",
    "KEYDECK_CONFIG",
    "KEYDECK_DATA_DIR",
    "KEYDECK_DATABASE_URL",
    "KEYDECK_KEY_PREFIX",
    "RUST_LOG",
];

/// The permission bits of `path` (not following a link).
pub fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// A `keydeck` command with a clean environment and `umask 022` (through `sh`).
pub fn keydeck_umask_022(args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args);
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// A result of `keydeck admin`.
pub struct AdminRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// `keydeck admin ARGS` on `backend`'s database, as [`OPERATOR`].
pub fn admin(backend: &Backend, args: &[&str]) -> AdminRun {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(backend.data_dir.path())
        .arg("admin");
    if let Some(url) = backend.database_url_arg() {
        cmd.args(["--database-url", &url]);
    }
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    let out: Output = cmd
        .args(args)
        .env("USER", OPERATOR)
        .stdin(Stdio::null())
        .output()
        .expect("run keydeck admin");
    AdminRun {
        ok: out.status.success(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `keydeck admin ARGS` that must succeed; its standard output, trimmed.
pub fn admin_ok(backend: &Backend, args: &[&str]) -> String {
    let run = admin(backend, args);
    assert!(run.ok, "keydeck admin {args:?} failed: {}", run.stderr);
    run.stdout.trim().to_owned()
}

/// `keydeck serve` under `umask 022` on the SQLite database in `data_dir`.
pub struct UmaskServer {
    child: Child,
    pub base: String,
}

impl UmaskServer {
    /// Starts it and waits until it listens; `log` takes its standard error.
    pub fn start(data_dir: &Path, log: &Path) -> Self {
        let dir = data_dir.display().to_string();
        let mut cmd = keydeck_umask_022(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &dir]);
        cmd.stdout(Stdio::null())
            .stderr(File::create(log).expect("log file"));
        let mut server = Self {
            child: cmd.spawn().expect("spawn keydeck serve"),
            base: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(rest) = text.split("listening on http://").nth(1) {
                let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                server.base = format!("http://{addr}");
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("keydeck serve exited ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "keydeck serve did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for UmaskServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `keydeck ARGS` under `umask 022` to its end (at most 30 s): it must
/// fail on its own before serving anything. Its exit status and standard error.
pub fn run_to_end(args: &[&str], home: &Path) -> (ExitStatus, String) {
    let mut cmd = keydeck_umask_022(args);
    cmd.env("HOME", home)
        .env("KEYDECK_CONFIG", home.join("config.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn keydeck");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            return (status, stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keydeck {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `done` (at most 20 s) until it holds.
pub fn wait_until(what: &str, done: impl FnMut() -> bool) {
    super::util::wait_for(Duration::from_secs(20), done, || {
        format!("timed out waiting for {what}")
    });
}

/// `DIR/NAME` for each name.
pub fn files(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|n| dir.join(n)).collect()
}
