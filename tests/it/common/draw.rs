//! The H2 attack of issue 17, shared by `tests/ssh_draw.rs` and
//! `benches/ssh_flood.rs` (which includes this file by path, so it uses no
//! other helper): a `keydeck serve --ssh-listen` process, UI sessions at
//! 1000×1000 whose width flips in a loop, `GET /v1/auth` latencies measured
//! from a thread of their own, and the server's resident memory.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{Algorithm, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::ChannelMsg;

/// The bootstrap admin of a new data dir.
const ADMIN: &str = "admin@localhost";

/// A `keydeck serve` process with an SSH listener.
pub struct Served {
    child: Child,
    bin: PathBuf,
    pub data_dir: PathBuf,
    database_url: Option<String>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub ssh: SocketAddr,
    pub log: PathBuf,
}

impl Served {
    /// Starts `bin serve` on free loopback ports, logging at `info` to `DATA_DIR/serve.log`.
    pub fn spawn(bin: &str, data_dir: &Path, database_url: Option<&str>) -> Self {
        let log = data_dir.join("serve.log");
        let mut cmd = Command::new(bin);
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ssh-listen",
            "127.0.0.1:0",
            // The attack holds 4 UI sessions of one admin, the per-user
            // default; the check that SSH still serves needs a fifth.
            "--ssh-max-sessions-per-user",
            "5",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("KEYDECK_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
        if let Some(url) = database_url {
            cmd.args(["--database-url", url]);
        }
        let mut served = Self {
            child: cmd.spawn().expect("spawn keydeck serve"),
            bin: bin.into(),
            data_dir: data_dir.into(),
            database_url: database_url.map(str::to_owned),
            base: String::new(),
            ssh: "0.0.0.0:0".parse().unwrap(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&served.log).unwrap_or_default();
            let word_after = |marker: &str| {
                text.split(marker).nth(1).map(|rest| {
                    rest.chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect::<String>()
                })
            };
            let ssh = text
                .lines()
                .find(|l| l.contains("SSH server listening"))
                .and_then(|l| l.split("addr=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|addr| addr.parse().ok());
            if let (Some(http), Some(ssh)) = (word_after("listening on http://"), ssh) {
                served.base = format!("http://{http}");
                served.ssh = ssh;
                return served;
            }
            assert!(
                Instant::now() < deadline,
                "keydeck serve did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most a minute) until the server logged the end of `count`
    /// sessions in all (a flood still queued is worked through first);
    /// whether it did.
    pub fn wait_sessions_ended(&self, count: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.matches("SSH session ended").count() >= count {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Lets the bootstrap admin in over SSH with `key`, with the `admin` CLI.
    pub fn add_admin_ssh_key(&self, key: &PrivateKey) {
        let line = format!("{} draw@keydeck", key.public_key().to_openssh().unwrap());
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .args(["admin", "users", "add-ssh-key", ADMIN, &line])
            .env_remove("KEYDECK_DATABASE_URL")
            .stdout(Stdio::null());
        if let Some(url) = &self.database_url {
            cmd.args(["--database-url", url]);
        }
        let status = cmd.status().expect("run keydeck admin");
        assert!(status.success(), "add-ssh-key failed");
    }

    /// A new API key with scope `sessions:read`: its secret.
    pub async fn create_key(&self) -> String {
        let token = std::fs::read_to_string(self.data_dir.join("admin-token")).unwrap();
        let created: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/v1/api-keys", self.base))
            .bearer_auth(token.trim())
            .json(&serde_json::json!({"name": "draw", "scopes": ["sessions:read"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["secret"].as_str().expect("a secret").to_owned()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

pub fn new_key() -> PrivateKey {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()
}

/// Trusts any host key (the test made the server).
pub struct AnyHost;

impl client::Handler for AnyHost {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

pub async fn connect(addr: SocketAddr, key: &PrivateKey) -> Handle<AnyHost> {
    let mut handle = client::connect(Arc::new(client::Config::default()), addr, AnyHost)
        .await
        .expect("SSH handshake");
    let auth = handle
        .authenticate_publickey(
            "attacker",
            PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
        )
        .await
        .expect("an answer to the authentication");
    assert!(auth.success(), "the attacker's key is accepted");
    handle
}

/// UI sessions flipping their width as fast as they can send.
pub struct Attack {
    stop: Arc<AtomicBool>,
    /// Window changes sent, bytes of screen received.
    pub resizes: Arc<AtomicU64>,
    pub received: Arc<AtomicU64>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    writers: Vec<tokio::task::JoinHandle<()>>,
    connections: Vec<Handle<AnyHost>>,
}

impl Attack {
    /// `sessions` UI sessions (one connection each) with a `1000`-row PTY,
    /// their width flipping between `widths` in a loop; each reads what it
    /// is sent, as a terminal would. Returns once every session drew.
    pub async fn start(
        addr: SocketAddr,
        key: &PrivateKey,
        sessions: usize,
        widths: (u32, u32),
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let resizes = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let (mut readers, mut writers, mut connections) = (Vec::new(), Vec::new(), Vec::new());
        let mut drawn = Vec::new();
        for _ in 0..sessions {
            let handle = connect(addr, key).await;
            let channel = handle.channel_open_session().await.expect("a session");
            channel
                .request_pty(false, "xterm-256color", widths.1, 1000, 0, 0, &[])
                .await
                .unwrap();
            channel.request_shell(false).await.unwrap();
            let (mut read, write) = channel.split();
            let (first, first_rx) = tokio::sync::oneshot::channel();
            drawn.push(first_rx);
            let got = received.clone();
            readers.push(tokio::spawn(async move {
                let mut first = Some(first);
                while let Some(message) = read.wait().await {
                    if let ChannelMsg::Data { data } = message {
                        got.fetch_add(data.len() as u64, Ordering::Relaxed);
                        if let Some(first) = first.take() {
                            let _ = first.send(());
                        }
                    }
                }
            }));
            let (stop, count) = (stop.clone(), resizes.clone());
            connections.push(handle);
            writers.push(tokio::spawn(async move {
                let mut flip = false;
                while !stop.load(Ordering::Relaxed) {
                    let width = if flip { widths.0 } else { widths.1 };
                    flip = !flip;
                    if write.window_change(width, 1000, 0, 0).await.is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
                let _ = write.close().await;
            }));
        }
        for first in drawn {
            let _ = tokio::time::timeout(Duration::from_secs(30), first).await;
        }
        Self {
            stop,
            resizes,
            received,
            readers,
            writers,
            connections,
        }
    }

    /// Stops flipping and disconnects (the server may still be working
    /// through what was sent: see [`Served::wait_sessions_ended`]).
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for writer in self.writers {
            writer.abort();
            let _ = writer.await;
        }
        for connection in &self.connections {
            let bye = connection.disconnect(russh::Disconnect::ByApplication, "", "en");
            let _ = tokio::time::timeout(Duration::from_secs(2), bye).await;
        }
        for reader in self.readers {
            reader.abort();
            let _ = reader.await;
        }
    }
}

/// `GET /v1/auth` latencies over some time.
#[derive(Debug, Clone)]
pub struct Probe {
    pub latencies: Vec<Duration>,
    /// Answers other than 200, and requests that got no answer.
    pub failures: Vec<String>,
    /// The server's peak resident memory seen meanwhile, in KiB.
    pub peak_rss_kib: u64,
}

impl Probe {
    pub fn p50(&self) -> Duration {
        self.percentile(50)
    }

    pub fn percentile(&self, p: usize) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted
            .get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or(Duration::MAX)
    }
}

/// `GET /v1/auth` with `secret`, one request at a time (a few ms apart, over
/// one keep-alive connection) for `length`, from a thread and runtime of its
/// own, so the caller's runtime (the attackers') does not delay it. Samples
/// the resident memory of `pid` meanwhile.
pub fn probe(base: &str, secret: &str, length: Duration, pid: u32) -> Probe {
    let (url, secret) = (
        format!("{base}/v1/auth?scope=sessions:read"),
        secret.to_owned(),
    );
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mut probe = Probe {
                latencies: Vec::new(),
                failures: Vec::new(),
                peak_rss_kib: rss_kib(pid),
            };
            let end = Instant::now() + length;
            let mut sampled = Instant::now();
            while Instant::now() < end {
                let started = Instant::now();
                match http.get(&url).header("x-api-key", &secret).send().await {
                    Ok(r) if r.status() == 200 => probe.latencies.push(started.elapsed()),
                    Ok(r) => probe.failures.push(format!("status {}", r.status())),
                    Err(e) => probe.failures.push(format!("no answer: {e}")),
                }
                if sampled.elapsed() > Duration::from_millis(50) {
                    probe.peak_rss_kib = probe.peak_rss_kib.max(rss_kib(pid));
                    sampled = Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            probe.peak_rss_kib = probe.peak_rss_kib.max(rss_kib(pid));
            probe
        })
    })
    .join()
    .expect("the probe thread")
}

/// One line of figures: p50 and p99, and their count.
pub fn describe(probe: &Probe) -> String {
    format!(
        "p50 {:>8.2} ms  p99 {:>8.2} ms  ({} answers, {} failures)",
        probe.p50().as_secs_f64() * 1e3,
        probe.percentile(99).as_secs_f64() * 1e3,
        probe.latencies.len(),
        probe.failures.len()
    )
}

/// CPU time (in clock ticks, usually 1/100 s) each thread name of process
/// `pid` has used so far: `tokio-runtime-w` for the runtime that serves HTTP,
/// `keydeck-ssh` for the SSH sessions' own.
pub fn cpu_by_thread(pid: u32) -> std::collections::BTreeMap<String, u64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid … utime stime: fields 14 and 15, counted after the ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        *by_name.entry(name).or_insert(0) += ticks(11) + ticks(12);
    }
    by_name
}

/// The CPU each thread name used between two [`cpu_by_thread`] readings, as
/// a share of one core over `seconds`: `name 57%, other 3%`.
pub fn cpu_shares(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
    seconds: f64,
) -> String {
    let per_second = 100.0; // USER_HZ on Linux
    after
        .iter()
        .filter_map(|(name, &ticks)| {
            let used = ticks.saturating_sub(before.get(name).copied().unwrap_or(0));
            let share = used as f64 / per_second / seconds * 100.0;
            (share >= 1.0).then(|| format!("{name} {share:.0}%"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many times `needle` occurs in the writable memory of process `pid`
/// (`/proc/PID/mem`, as its owner or root may read it).
pub fn copies_in_memory(pid: u32, needle: &[u8]) -> usize {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("/proc maps");
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("/proc mem");
    let mut copies = 0;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with("rw") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        let mut region = vec![0; (end - start) as usize];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut region).is_err() {
            continue;
        }
        copies += region
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count();
    }
    copies
}

/// Runs `command` on a new channel (with a PTY if `pty`): its standard output.
pub async fn exec_stdout(handle: &Handle<AnyHost>, command: &str, pty: bool) -> String {
    let mut channel = handle.channel_open_session().await.expect("a session");
    if pty {
        channel
            .request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .unwrap();
    }
    channel.exec(true, command).await.unwrap();
    let mut stdout = Vec::new();
    while let Some(message) = channel.wait().await {
        if let ChannelMsg::Data { data } = message {
            stdout.extend_from_slice(&data);
        }
    }
    String::from_utf8(stdout).unwrap()
}
