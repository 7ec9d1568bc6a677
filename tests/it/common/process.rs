//! `keydeck serve` as a process: started and waited for until its log says
//! where it listens (one way for every test that spawns it), and, as
//! operators run it, for crash, signal and replica tests: [`ServerProcess`].

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::bin::keydeck;
use super::Backend;

/// How long a `keydeck serve` may take to say it listens.
const START_WITHIN: Duration = Duration::from_secs(30);

/// A child process, killed and reaped when dropped (also when a test panics).
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `keydeck serve` did not start: its exit status and log.
#[derive(Debug)]
pub struct NotStarted {
    pub code: Option<i32>,
    pub log: String,
}

/// Spawns `cmd`, a `keydeck serve` whose standard error goes to `log`, and
/// waits until `ready` finds what it needs in the log. If the process exits
/// first, `Err` with how; if it is still silent after 30 s, a panic.
pub fn start_serve<T>(
    cmd: &mut Command,
    log: &Path,
    ready: impl Fn(&str) -> Option<T>,
) -> Result<(Reaped, T), NotStarted> {
    // Owned at once, so that it is reaped if start-up fails.
    let mut child = Reaped(cmd.spawn().expect("spawn keydeck serve"));
    let deadline = Instant::now() + START_WITHIN;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(found) = ready(&text) {
            return Ok((child, found));
        }
        if let Some(status) = child.0.try_wait().expect("wait") {
            return Err(NotStarted {
                code: status.code(),
                log: std::fs::read_to_string(log).unwrap_or_default(),
            });
        }
        assert!(
            Instant::now() < deadline,
            "keydeck serve did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`start_serve`] until the log says where HTTP listens (`http://ADDR` or
/// `https://ADDR`); a panic with the log if it exits first.
pub fn start_http(cmd: &mut Command, log: &Path) -> (Reaped, String) {
    start_serve(cmd, log, listening_on)
        .unwrap_or_else(|e| panic!("keydeck serve exited ({:?}):\n{}", e.code, e.log))
}

/// The `http://ADDR` (or `https://ADDR`) a `keydeck serve` log says it listens on.
pub fn listening_on(log: &str) -> Option<String> {
    let rest = log.split("listening on http").nth(1)?;
    Some(format!(
        "http{}",
        rest.chars()
            .take_while(|c| !c.is_whitespace())
            .collect::<String>()
    ))
}

pub struct ServerProcess {
    child: Reaped,
    pub base: String,
}

impl ServerProcess {
    /// Starts `keydeck serve` on a free loopback port, logging (at `RUST_LOG=trace`) to `log`.
    pub fn spawn(backend: &Backend, data_dir: &Path, log: &Path) -> Self {
        Self::spawn_with(backend, data_dir, log, &[])
    }

    /// Like [`spawn`](Self::spawn), with extra environment variables (set last,
    /// so `RUST_LOG` can be overridden), e.g. `KEYDECK_MAX_FAILED_AUTH`.
    pub fn spawn_with(
        backend: &Backend,
        data_dir: &Path,
        log: &Path,
        envs: &[(&str, &str)],
    ) -> Self {
        let mut cmd = keydeck();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(File::create(log).expect("log file"))
            .envs(envs.iter().copied());
        if let Some(url) = backend.database_url_arg() {
            cmd.args(["--database-url", &url]);
        }
        let (child, base) = start_http(&mut cmd, log);
        Self { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill_9(mut self) {
        self.child.0.kill().expect("SIGKILL");
        self.child.0.wait().expect("reap");
    }

    /// SIGTERM, then wait (at most 10 s) for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "keydeck serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
