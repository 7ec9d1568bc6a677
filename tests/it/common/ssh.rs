//! SSH test helpers: a service with an SSH listener, users' SSH keys, and an
//! in-process russh client whose terminal is read back with vt100.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use keydeck::clock::SystemClock;
use keydeck::ssh::SshConfig;
use keydeck::store::Store;
use russh::client::{self, Handle, Msg};
use russh::keys::{Algorithm, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg};

use super::{Backend, TestServer};

pub const TIMEOUT: Duration = Duration::from_secs(20);
const OSC52: &str = "\x1b]52;c;";

/// A service with an SSH listener on a free loopback port, `tweak`ed.
pub async fn start(backend: &Backend, tweak: impl FnOnce(&mut SshConfig)) -> TestServer {
    let mut ssh = SshConfig::new("127.0.0.1:0".parse().unwrap());
    tweak(&mut ssh);
    TestServer::start_with_ssh(backend, Arc::new(SystemClock), |_| {}, Some(ssh)).await
}

/// The SSH listener's address.
pub fn addr(server: &TestServer) -> SocketAddr {
    server.running.ssh.as_ref().expect("an SSH listener").addr
}

pub fn new_key() -> PrivateKey {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()
}

/// The key's public half as an OpenSSH line, with a comment.
pub fn public_line(key: &PrivateKey) -> String {
    format!("{} test@keydeck", key.public_key().to_openssh().unwrap())
}

/// Adds `key` to the user with `email`; its fingerprint.
pub async fn add_key(store: &dyn Store, email: &str, key: &PrivateKey) -> String {
    keydeck::accounts::ssh_keys::add_ssh_key(store, email, &public_line(key), chrono::Utc::now())
        .await
        .expect("key added")
        .fingerprint
}

/// Trusts any host key (the test made the server).
pub struct TestClient;

impl client::Handler for TestClient {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// Connects and authenticates with `key`; `None` when the key is refused.
pub async fn connect(addr: SocketAddr, key: &PrivateKey) -> Option<Handle<TestClient>> {
    connect_with(addr, key, client::Config::default()).await
}

pub async fn connect_with(
    addr: SocketAddr,
    key: &PrivateKey,
    config: client::Config,
) -> Option<Handle<TestClient>> {
    let mut handle = client::connect(Arc::new(config), addr, TestClient)
        .await
        .expect("SSH handshake");
    let auth = handle
        .authenticate_publickey(
            "any-login-name",
            PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
        )
        .await
        .expect("an answer to the authentication");
    auth.success().then_some(handle)
}

/// What a command printed and its exit status.
#[derive(Debug)]
pub struct Exec {
    pub status: Option<u32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` over a new session (with a PTY if `pty`).
pub async fn exec(handle: &Handle<TestClient>, command: &str, pty: bool) -> Exec {
    let mut channel = handle.channel_open_session().await.expect("a session");
    if pty {
        channel
            .request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .unwrap();
    }
    channel.exec(true, command).await.unwrap();
    let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), None);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, channel.wait())
            .await
            .expect("the command ended in time")
        {
            Some(ChannelMsg::Data { data }) => stdout.extend_from_slice(&data),
            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => stderr.extend_from_slice(&data),
            Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    Exec {
        status,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// A UI session: everything the server wrote, read as a terminal would.
pub struct UiSession {
    pub channel: Channel<Msg>,
    pub bytes: Vec<u8>,
    pub stderr: Vec<u8>,
    pub size: (u16, u16),
    pub exit_status: Option<u32>,
    pub closed: bool,
}

impl UiSession {
    /// Opens a session with a PTY of `width`×`height` and `env`, and a shell.
    pub async fn open(
        handle: &Handle<TestClient>,
        width: u16,
        height: u16,
        env: &[(&str, &str)],
    ) -> Self {
        let channel = handle.channel_open_session().await.expect("a session");
        for (name, value) in env {
            channel.set_env(false, *name, *value).await.unwrap();
        }
        channel
            .request_pty(
                true,
                "xterm-256color",
                width.into(),
                height.into(),
                0,
                0,
                &[],
            )
            .await
            .unwrap();
        channel.request_shell(true).await.unwrap();
        Self {
            channel,
            bytes: Vec::new(),
            stderr: Vec::new(),
            size: (width, height),
            exit_status: None,
            closed: false,
        }
    }

    pub async fn send(&self, bytes: &[u8]) {
        self.channel
            .data_bytes(bytes.to_vec())
            .await
            .expect("the session is open");
    }

    pub async fn resize(&mut self, width: u16, height: u16) {
        self.size = (width, height);
        self.channel
            .window_change(width.into(), height.into(), 0, 0)
            .await
            .unwrap();
    }

    /// Takes the next message (waiting at most `wait`); `false` if none came.
    pub async fn pump(&mut self, wait: Duration) -> bool {
        if self.closed {
            return false;
        }
        match tokio::time::timeout(wait, self.channel.wait()).await {
            Err(_) => false,
            Ok(Some(ChannelMsg::Data { data })) => {
                self.bytes.extend_from_slice(&data);
                true
            }
            Ok(Some(ChannelMsg::ExtendedData { data, .. })) => {
                self.stderr.extend_from_slice(&data);
                true
            }
            Ok(Some(ChannelMsg::ExitStatus { exit_status })) => {
                self.exit_status = Some(exit_status);
                true
            }
            Ok(Some(ChannelMsg::Close) | None) => {
                self.closed = true;
                false
            }
            Ok(Some(_)) => true,
        }
    }

    /// The terminal after everything received so far.
    pub fn terminal(&self) -> vt100::Parser {
        let mut parser = vt100::Parser::new(self.size.1, self.size.0, 0);
        parser.process(&self.bytes);
        parser
    }

    pub async fn wait_until(
        &mut self,
        what: &str,
        done: impl Fn(&vt100::Screen) -> bool,
    ) -> String {
        let mut first = true;
        let next = async || {
            if !std::mem::take(&mut first) {
                self.pump(Duration::from_millis(100)).await;
            }
            (self.terminal().screen().clone(), !self.closed)
        };
        super::util::wait_screen(what, next, done).await
    }

    pub async fn wait_for(&mut self, text: &str) -> String {
        self.wait_until(&format!("{text:?} on screen"), |s| {
            s.contents().contains(text)
        })
        .await
    }

    pub async fn wait_gone(&mut self, text: &str) -> String {
        self.wait_until(&format!("{text:?} gone"), |s| !s.contents().contains(text))
            .await
    }

    /// Reads until the server closes the channel; the exit status.
    pub async fn wait_closed(&mut self) -> Option<u32> {
        let deadline = Instant::now() + TIMEOUT;
        while !self.closed {
            assert!(Instant::now() < deadline, "the session closed in time");
            self.pump(Duration::from_millis(100)).await;
        }
        self.exit_status
    }

    /// Every OSC 52 payload received, decoded.
    pub fn osc52_payloads(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.bytes);
        text.match_indices(OSC52)
            .map(|(at, _)| {
                let rest = &text[at + OSC52.len()..];
                let end = rest.find('\x07').expect("the sequence ends with BEL");
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&rest[..end])
                    .expect("base64");
                String::from_utf8(bytes).unwrap()
            })
            .collect()
    }
}
