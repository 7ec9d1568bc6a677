//! The SSH front door's test helpers: `keydeck serve --ssh-listen` as a
//! process of its own (with its own open-files limit, its memory read from
//! `/proc`), and raw TCP clients from chosen loopback addresses.

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::bin::keydeck;
use super::process::{listening_on, start_serve, NotStarted, Reaped};
use super::Backend;

/// A `keydeck serve --ssh-listen 127.0.0.1:0` process.
pub struct SshServerProcess {
    child: Reaped,
    pub base: String,
    pub ssh: SocketAddr,
    pub log: PathBuf,
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
        Self::spawn_with_env(backend, args, &[], nofile, log)
    }

    /// [`spawn`](Self::spawn) with `env` set for the server (e.g. its `TZ`).
    pub fn spawn_with_env(
        backend: &Backend,
        args: &[&str],
        env: &[(&str, &str)],
        nofile: Option<(u64, u64)>,
        log: &Path,
    ) -> Result<Self, NotStarted> {
        let mut cmd = keydeck();
        cmd.envs(env.iter().copied());
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
        let (child, (base, ssh)) = start_serve(&mut cmd, log, |text| {
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
                })?;
            Some((listening_on(text)?, ssh))
        })?;
        Ok(Self {
            child,
            base,
            ssh,
            log: log.to_path_buf(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        super::stress::rss_kib(self.child.0.id())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A TCP connection to `to` from the loopback address `from` (any port).
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}
