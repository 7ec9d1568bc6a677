//! A `keydeck serve` process, as operators run it, for crash, signal and replica tests.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Backend;

pub struct ServerProcess {
    child: Child,
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keydeck"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "trace")
            .env_remove("KEYDECK_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(log).expect("log file"))
            .envs(envs.iter().copied());
        if let Some(url) = backend.database_url_arg() {
            cmd.args(["--database-url", &url]);
        }
        // Owned by `server` at once, so that its Drop reaps it if start-up fails.
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, then wait (at most 10 s) for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "keydeck serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
