//! The binary as an operator runs it for the lifecycle tests: `keydeck admin`
//! on a test backend, and `keydeck serve` or the UI under `umask 022`.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub use super::bin::BIN;
use super::bin::{keydeck, scrub};
use super::process::{start_http, Reaped};
use super::Backend;

/// The login name `keydeck admin` runs under in these tests; the audit log
/// names the operator `OPERATOR@HOST`.
pub const OPERATOR: &str = "ops-tester";

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
    scrub(&mut cmd).stdin(Stdio::null());
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
    let mut cmd = keydeck();
    cmd.arg("--data-dir")
        .arg(backend.data_dir.path())
        .arg("admin");
    if let Some(url) = backend.database_url_arg() {
        cmd.args(["--database-url", &url]);
    }
    let out: Output = cmd
        .args(args)
        .env("USER", OPERATOR)
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
    _child: Reaped,
    pub base: String,
}

impl UmaskServer {
    /// Starts it and waits until it listens; `log` takes its standard error.
    pub fn start(data_dir: &Path, log: &Path) -> Self {
        let dir = data_dir.display().to_string();
        let mut cmd = keydeck_umask_022(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &dir]);
        cmd.stdout(Stdio::null())
            .stderr(File::create(log).expect("log file"));
        let (child, base) = start_http(&mut cmd, log);
        Self {
            _child: child,
            base,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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

/// `DIR/NAME` for each name.
pub fn files(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|n| dir.join(n)).collect()
}
