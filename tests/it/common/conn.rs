//! The SSH front door's test helpers: `keydeck serve --ssh-listen` as a
//! process of its own (with its own open-files limit, its memory read from
//! `/proc`), and raw TCP clients from chosen loopback addresses.

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Backend;

/// A `keydeck serve --ssh-listen 127.0.0.1:0` process.
pub struct SshServerProcess {
    child: Child,
    pub base: String,
    pub ssh: SocketAddr,
    pub log: PathBuf,
}

/// `keydeck serve` did not start: its exit status and log.
#[derive(Debug)]
pub struct NotStarted {
    pub code: Option<i32>,
    pub log: String,
}

impl SshServerProcess {
    /// Starts the binary with `args` after the listeners, logging at `info`
    /// to `log`, with RLIMIT_NOFILE set to `nofile` (soft, hard) if given.
    pub fn spawn(
        backend: &Backend,
        args: &[&str],
        nofile: Option<(u64, u64)>,
        log: &Path,
    ) -> Result<Self, NotStarted> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keydeck"));
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ssh-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(backend.data_dir.path())
        .args(args)
        .env("RUST_LOG", "info,sqlx=warn")
        .env_remove("KEYDECK_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).expect("log file"));
        if let Some(url) = backend.database_url_arg() {
            cmd.args(["--database-url", &url]);
        }
        if let Some((soft, hard)) = nofile {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: soft as libc::rlim_t,
                        rlim_max: hard as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn keydeck serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let http = text
                .split("listening on http://")
                .nth(1)
                .map(|rest| rest.chars().take_while(|c| !c.is_whitespace()).collect());
            let ssh = text
                .split("keydeck SSH server listening")
                .nth(1)
                .and_then(|rest| rest.split("addr=").nth(1))
                .and_then(|rest| {
                    rest.chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect::<String>()
                        .parse()
                        .ok()
                });
            if let (Some(http), Some(ssh)) = (http, ssh) {
                let http: String = http;
                return Ok(Self {
                    child,
                    base: format!("http://{http}"),
                    ssh,
                    log: log.to_path_buf(),
                });
            }
            if let Some(status) = child.try_wait().expect("wait") {
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SshServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP connection to `to` from the loopback address `from` (any port).
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}
