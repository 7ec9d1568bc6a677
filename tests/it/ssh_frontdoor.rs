//! The SSH front door (issue 17): connection caps and the login deadline
//! against a `keydeck serve` process with a low open-files limit; session
//! slots, bare channels and the channel cap; bounded `env`; a failure for
//! every request the server does not handle; no key oracle; and the audit
//! entries of logins, refusals and session ends (SQLite, and PostgreSQL where
//! the database matters).

use crate::common;
use crate::common::cli as support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keydeck::store::{Plan, Role, Store};
use russh::client;
use russh::keys::PrivateKey;
use russh::ChannelMsg;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::conn::{connect_from, SshServerProcess};
use common::ssh::{self, TestClient, UiSession, TIMEOUT};
use common::{Backend, TestServer};

const ADMIN: &str = "admin@localhost";

on_both_backends!(
    members_free_organisations_bare_channels_and_the_session_caps,
    ssh_logins_refusals_and_session_ends_are_in_the_audit_log,
);

/// A loopback address of its own for a group of test connections.
fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// Sends a version line, then: did the server greet the connection (its
/// version line) rather than close it at once?
async fn greeted(stream: &mut tokio::net::TcpStream) -> bool {
    let _ = stream.write_all(b"SSH-2.0-x\r\n").await;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while got.len() < 8 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    got.starts_with(b"SSH-2.0-")
}

/// Reads until the server closes the connection; `false` if it is still
/// open at `deadline`.
async fn closed_by(stream: &mut tokio::net::TcpStream, deadline: tokio::time::Instant) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// `/healthz` and `/v1/auth` (with `secret`) both answer 200.
async fn http_answers(http: &reqwest::Client, server: &SshServerProcess, secret: &str) {
    let health = http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("/healthz answers");
    assert_eq!(health.status(), 200);
    let auth = http
        .get(server.url("/v1/auth"))
        .header("x-api-key", secret)
        .send()
        .await
        .expect("/v1/auth answers");
    assert_eq!(auth.status(), 200);
}

// Acceptance 1: more unauthenticated connections than the caps (and than
// the server's open-files limit), from one source and from many: those over
// a cap are closed at once, the HTTP API answers throughout, and the ones
// let in are closed at the login deadline; then a real login works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_over_the_caps_are_closed_and_http_keeps_answering() {
    const LOGIN_TIMEOUT: u64 = 20;
    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let server = SshServerProcess::spawn(
        &backend,
        &[
            "--max-connections",
            "32",
            "--ssh-max-connections",
            "64",
            "--ssh-max-unauthenticated",
            "40",
            "--ssh-max-unauthenticated-per-source",
            "8",
            "--ssh-max-sessions",
            "4",
            "--ssh-login-timeout",
            &LOGIN_TIMEOUT.to_string(),
        ],
        Some((128, 256)),
        &dir.path().join("serve.log"),
    )
    .expect("keydeck serve starts");
    // The soft limit was raised to the hard one, and said so.
    let log = server.log_text();
    assert!(
        log.contains("limit=256") && log.contains("raised_from=128"),
        "{log}"
    );
    let store = backend.store().await;
    let key = ssh::new_key();
    ssh::add_key(store.as_ref(), ADMIN, &key).await;
    let http = reqwest::Client::new();
    let token = std::fs::read_to_string(backend.data_dir.path().join("admin-token")).unwrap();
    let created: Value = http
        .post(server.url("/v1/api-keys"))
        .bearer_auth(token.trim())
        .json(&json!({ "name": "Gateway", "scopes": ["sessions:read"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().expect("a secret").to_owned();
    http_answers(&http, &server, &secret).await;

    let started = tokio::time::Instant::now();
    // 12 from one source (its cap: 8), then 300 from 50 others (6 each):
    // 312 in all, more than the server may open files.
    let mut one_source = Vec::new();
    for _ in 0..12 {
        one_source.push(
            connect_from(loopback(2), server.ssh)
                .await
                .expect("TCP connect"),
        );
    }
    let mut many = Vec::new();
    for i in 0..300u32 {
        let from = loopback(3 + (i % 50) as u8);
        many.push(connect_from(from, server.ssh).await.expect("TCP connect"));
        if i % 25 == 0 {
            http_answers(&http, &server, &secret).await;
        }
    }
    http_answers(&http, &server, &secret).await;
    let mut greeted_one_source = Vec::new();
    for mut stream in one_source {
        if greeted(&mut stream).await {
            greeted_one_source.push(stream);
        }
    }
    let mut greeted_many = Vec::new();
    for mut stream in many {
        if greeted(&mut stream).await {
            greeted_many.push(stream);
        }
    }
    let flood_took = started.elapsed();
    println!(
        "let in: {} of 12 from one source, {} of 300 from 50 sources; the flood took {flood_took:?}",
        greeted_one_source.len(),
        greeted_many.len()
    );
    assert!(
        flood_took < Duration::from_secs(LOGIN_TIMEOUT),
        "the flood ended before the first deadline, so the counts below mean what they say"
    );
    assert_eq!(greeted_one_source.len(), 8, "the per-source cap");
    assert_eq!(
        greeted_many.len(),
        40 - 8,
        "the cap on unauthenticated connections"
    );
    http_answers(&http, &server, &secret).await;

    // The ones let in never log in: closed at the login deadline.
    let deadline = started + Duration::from_secs(LOGIN_TIMEOUT + 20);
    for stream in greeted_one_source.iter_mut().chain(greeted_many.iter_mut()) {
        assert!(
            closed_by(stream, deadline).await,
            "closed at the login deadline"
        );
    }
    http_answers(&http, &server, &secret).await;
    // Their places are free again: a real login gets a session.
    let handle = ssh::connect(server.ssh, &key).await.expect("logged in");
    let done = ssh::exec(&handle, "keys list --json", false).await;
    assert_eq!(done.status, Some(0), "{done:?}");
    let log = server.log_text();
    assert!(log.contains("over a connection cap"), "{log}");
    assert!(log.contains("login deadline"), "{log}");
}

// The caps must fit in the open-files limit: with a hard limit of 200, the
// defaults (512 HTTP + 256 SSH connections and more) do not, and the
// server refuses to start, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_start_when_its_caps_cannot_fit_the_open_files_limit() {
    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let refused = SshServerProcess::spawn(
        &backend,
        &[],
        Some((200, 200)),
        &dir.path().join("serve.log"),
    )
    .err()
    .expect("refused to start");
    assert_ne!(refused.code, Some(0), "{refused:?}");
    for needle in ["file descriptors", "--ssh-max-connections", "RLIMIT_NOFILE"] {
        assert!(refused.log.contains(needle), "{needle}: {}", refused.log);
    }
}

/// A second admin of the default organisation, with an SSH key.
async fn second_admin(store: &dyn Store, email: &str) -> PrivateKey {
    keydeck::accounts::add_user(store, "default", email, Role::Admin, chrono::Utc::now())
        .await
        .unwrap();
    let key = ssh::new_key();
    ssh::add_key(store, email, &key).await;
    key
}

// Acceptance 2: members and free organisations are refused at
// authentication; bare channels take no session slot and are closed after
// the deadline; at most 10 channels a connection; a per-user session cap;
// an admin still gets a session while another user holds bare channels.
async fn members_free_organisations_bare_channels_and_the_session_caps(backend: Backend) {
    let server = ssh::start(&backend, |ssh| {
        ssh.max_sessions = 3;
        ssh.max_user_sessions = 2;
        ssh.channel_request_timeout = Duration::from_secs(2);
    })
    .await;
    let store = server.running.state.store.clone();
    let addr = ssh::addr(&server);
    let admin_key = ssh::new_key();
    ssh::add_key(store.as_ref(), ADMIN, &admin_key).await;
    let other_key = second_admin(store.as_ref(), "other@localhost").await;

    // Members and free organisations: refused.
    common::add_org(store.as_ref(), "freeorg", Plan::Free).await;
    keydeck::accounts::add_user(
        store.as_ref(),
        "default",
        "member@localhost",
        Role::Member,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    for email in [
        "member@freeorg.test",
        "admin@freeorg.test",
        "member@localhost",
    ] {
        let key = ssh::new_key();
        ssh::add_key(store.as_ref(), email, &key).await;
        assert!(ssh::connect(addr, &key).await.is_none(), "{email} refused");
    }

    // Another user holds bare channels on two connections: 10 each, the 11th refused.
    let other = ssh::connect(addr, &other_key).await.expect("logged in");
    let other_too = ssh::connect(addr, &other_key).await.expect("logged in");
    let mut bare = Vec::new();
    for handle in [&other, &other_too] {
        for _ in 0..10 {
            bare.push(handle.channel_open_session().await.expect("a channel"));
        }
        assert!(
            handle.channel_open_session().await.is_err(),
            "the 11th channel of a connection is refused"
        );
    }
    // Meanwhile the admin gets sessions (the server allows 3 at once).
    let admin = ssh::connect(addr, &admin_key).await.expect("logged in");
    let done = ssh::exec(&admin, "keys list --json", false).await;
    assert_eq!(done.status, Some(0), "{done:?}");

    // The bare channels are closed after the deadline, and their places free again.
    let deadline = Instant::now() + TIMEOUT;
    for channel in &mut bare {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, channel.wait())
                .await
                .expect("the bare channel is closed in time")
            {
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            }
        }
    }
    let again = other.channel_open_session().await.expect("a channel again");
    drop(again);

    // The per-user cap: two UI sessions of the admin's are open; a third is told why.
    let mut first = UiSession::open(&admin, 80, 24, &[]).await;
    first.wait_for("No API keys").await;
    let mut second = UiSession::open(&admin, 80, 24, &[]).await;
    second.wait_for("No API keys").await;
    let refused = ssh::exec(&admin, "keys list --json", false).await;
    assert_eq!(refused.status, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("as many SSH sessions open as one user may (2)"),
        "{refused:?}"
    );
    // Another user still gets one (3 at once on the server).
    let done = ssh::exec(&other, "keys list --json", false).await;
    assert_eq!(done.status, Some(0), "{done:?}");
    // One closed: the admin gets a third again.
    first.send(b"q").await;
    assert_eq!(first.wait_closed().await, Some(0));
    let done = ssh::exec(&admin, "keys list --json", false).await;
    assert_eq!(done.status, Some(0), "{done:?}");
    second.send(b"q").await;
    second.wait_closed().await;
    server.stop().await;
    backend.cleanup().await;
}

// Acceptance 4: 100 000 `env` requests on one channel leave the server's
// memory where it was: one value per allowed name, and past a few requests
// they are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_env_requests_leaves_the_servers_memory_as_it_was() {
    const FLOOD: usize = 100_000;
    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let server = SshServerProcess::spawn(
        &backend,
        &["--ssh-channel-request-timeout", "3600"],
        None,
        &dir.path().join("serve.log"),
    )
    .expect("keydeck serve starts");
    let key = ssh::new_key();
    ssh::add_key(backend.store().await.as_ref(), ADMIN, &key).await;
    let handle = ssh::connect(server.ssh, &key).await.expect("logged in");
    let mut channel = handle.channel_open_session().await.unwrap();
    let names = ["TERM", "NO_COLOR", "LANG", "LC_ALL", "KEYDECK_X"];
    let value = |i: usize| format!("{i:0>256}");
    // Until the server answered a request with want_reply: every earlier one is in.
    async fn answered(channel: &mut russh::Channel<client::Msg>) -> bool {
        channel.set_env(true, "TERM", "xterm").await.unwrap();
        loop {
            match tokio::time::timeout(TIMEOUT, channel.wait())
                .await
                .expect("an answer to env")
            {
                Some(ChannelMsg::Success) => return true,
                Some(ChannelMsg::Failure) => return false,
                Some(_) => {}
                None => panic!("the channel closed"),
            }
        }
    }
    // A warm-up, then the baseline.
    for i in 0..2_000 {
        channel
            .set_env(false, names[i % names.len()], value(i))
            .await
            .unwrap();
    }
    answered(&mut channel).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kib();
    let started = Instant::now();
    for i in 0..FLOOD {
        channel
            .set_env(false, names[i % names.len()], value(i))
            .await
            .unwrap();
    }
    assert!(
        !answered(&mut channel).await,
        "past the first requests, env is refused"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib();
    println!(
        "server RSS {before} KiB before {FLOOD} env requests, {after} KiB after ({:+} KiB); sent in {:?}",
        after as i64 - before as i64,
        started.elapsed()
    );
    assert!(after <= before + 8 * 1024, "{before} KiB → {after} KiB");
    // The channel still runs a command.
    channel.exec(true, "keys list --json").await.unwrap();
    let mut status = None;
    loop {
        match tokio::time::timeout(TIMEOUT, channel.wait())
            .await
            .expect("the command ends")
        {
            Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    assert_eq!(status, Some(0));
}

/// A signer that cannot sign: it notes that the server asked for a
/// signature, i.e. accepted the key offered without one.
struct Probe {
    asked: bool,
}

#[derive(Debug)]
struct CannotSign;

impl From<russh::SendError> for CannotSign {
    fn from(_: russh::SendError) -> Self {
        CannotSign
    }
}

impl russh::Signer for Probe {
    type Error = CannotSign;

    async fn auth_sign(
        &mut self,
        _key: &russh::keys::agent::AgentIdentity,
        _hash_alg: Option<russh::keys::HashAlg>,
        _to_sign: Vec<u8>,
    ) -> Result<Vec<u8>, CannotSign> {
        self.asked = true;
        Err(CannotSign)
    }
}

/// Offers `key`'s public half without a signature: did the server accept the offer?
async fn offer_accepted(addr: std::net::SocketAddr, key: &PrivateKey) -> bool {
    let mut handle = client::connect(Arc::new(client::Config::default()), addr, TestClient)
        .await
        .expect("SSH handshake");
    let mut probe = Probe { asked: false };
    let _ = handle
        .authenticate_publickey_with("anyone", key.public_key().clone(), None, &mut probe)
        .await;
    probe.asked
}

// Acceptance 6 (no key oracle): a registered and an unregistered key get the
// same answer to the unsigned query; connections that never authenticate
// count as failures of the address; a limited address is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unsigned_query_answers_alike_for_every_key_and_probes_count_as_failures() {
    let backend = Backend::sqlite();
    let server = TestServer::start_with_ssh(
        &backend,
        Arc::new(keydeck::clock::SystemClock),
        |config| config.max_failed_auth = 3,
        Some(keydeck::ssh::SshConfig::new("127.0.0.1:0".parse().unwrap())),
    )
    .await;
    let addr = ssh::addr(&server);
    let registered = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), ADMIN, &registered).await;
    let stranger = ssh::new_key();
    let known = offer_accepted(addr, &registered).await;
    let unknown = offer_accepted(addr, &stranger).await;
    assert_eq!(known, unknown, "the same answer for both keys");
    assert!(known, "the offer is accepted; the signature decides");
    // Two probing connections never logged in: two failures. A third makes three.
    assert!(offer_accepted(addr, &stranger).await);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match ssh::connect(addr, &registered).await {
            None => break,
            Some(handle) => drop(handle),
        }
        assert!(
            Instant::now() < deadline,
            "the address is locked out after three failed connections"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Locked out: every key is refused, offered or signed, alike.
    assert!(!offer_accepted(addr, &registered).await);
    assert!(!offer_accepted(addr, &stranger).await);
    server.stop().await;
}

// Acceptance 6 (x11-req) and every other request the server does not
// handle: a failure at once; the channel still works afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_server_does_not_handle_are_answered_with_failure() {
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();
    let mut channel = handle.channel_open_session().await.unwrap();
    async fn answer(channel: &mut russh::Channel<client::Msg>) -> &'static str {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), channel.wait())
                .await
                .expect("an answer at once")
            {
                Some(ChannelMsg::Success) => return "success",
                Some(ChannelMsg::Failure) => return "failure",
                Some(_) => {}
                None => panic!("the channel closed"),
            }
        }
    }
    channel
        .request_x11(true, false, "MIT-MAGIC-COOKIE-1", "0123456789abcdef", 0)
        .await
        .unwrap();
    assert_eq!(answer(&mut channel).await, "failure", "x11-req");
    channel.agent_forward(true).await.unwrap();
    assert_eq!(answer(&mut channel).await, "failure", "auth-agent-req");
    channel.request_subsystem(true, "sftp").await.unwrap();
    assert_eq!(answer(&mut channel).await, "failure", "subsystem");
    channel
        .set_env(true, "LD_PRELOAD", "/tmp/x.so")
        .await
        .unwrap();
    assert_eq!(answer(&mut channel).await, "failure", "env not allowed");
    channel.set_env(true, "NO_COLOR", "1").await.unwrap();
    assert_eq!(answer(&mut channel).await, "success", "env allowed");
    channel.exec(true, "keys list --json").await.unwrap();
    assert_eq!(answer(&mut channel).await, "success", "exec");
    server.stop().await;
}

// After login, only the user's input keeps a connection open: replies to
// the server's keepalives do not (they did reset russh's own timer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_login_only_the_users_input_keeps_a_connection_open() {
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |ssh| {
        ssh.idle_timeout = Duration::from_secs(2);
        ssh.keepalive = Duration::from_millis(300);
    })
    .await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    let addr = ssh::addr(&server);
    // One that only answers keepalives, one whose user types.
    let silent = ssh::connect(addr, &key).await.unwrap();
    let typing = ssh::connect(addr, &key).await.unwrap();
    let mut ui = UiSession::open(&typing, 80, 24, &[]).await;
    ui.wait_for("No API keys").await;
    // Typing for longer than the idle timeout and its grace (2 s + 2 s).
    let typed_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < typed_until {
        ui.send(b"j").await;
        ui.pump(Duration::from_millis(300)).await;
    }
    assert!(!typing.is_closed(), "input keeps the connection open");
    assert!(!ui.closed, "and its session");
    let deadline = Instant::now() + TIMEOUT;
    while !silent.is_closed() {
        assert!(
            Instant::now() < deadline,
            "a connection with only keepalive replies is closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Once the user stops typing, the session and then the connection end.
    assert_eq!(ui.wait_closed().await, Some(0));
    let deadline = Instant::now() + TIMEOUT;
    while !typing.is_closed() {
        assert!(Instant::now() < deadline, "closed once idle");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

/// The organisation's audit entries with `action`, newest first.
async fn entries(store: &dyn Store, org: &str, action: &str) -> Vec<Value> {
    let org = store.org_by_name(org).await.unwrap().expect("the org");
    store
        .list_audit(&org.id, 100, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == action)
        .map(|r| {
            json!({
                "actor": r.event.actor_name,
                "remote_addr": r.event.remote_addr,
                "details": r.event.details,
            })
        })
        .collect()
}

// Acceptance 6 (audit entries): a login, a refusal of a known user's key
// (a member, a removed user, a free organisation's admin) and the end of a
// session, in the organisation's audit log, as the API and `keydeck audit` show it.
async fn ssh_logins_refusals_and_session_ends_are_in_the_audit_log(backend: Backend) {
    let server = ssh::start(&backend, |_| {}).await;
    let store = server.running.state.store.clone();
    let addr = ssh::addr(&server);
    let key = ssh::new_key();
    let fingerprint = ssh::add_key(store.as_ref(), ADMIN, &key).await;
    let handle = ssh::connect(addr, &key).await.expect("logged in");
    let done = ssh::exec(&handle, "keys list --json", false).await;
    assert_eq!(done.status, Some(0), "{done:?}");

    keydeck::accounts::add_user(
        store.as_ref(),
        "default",
        "member@localhost",
        Role::Member,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let member = ssh::new_key();
    let member_fingerprint = ssh::add_key(store.as_ref(), "member@localhost", &member).await;
    assert!(ssh::connect(addr, &member).await.is_none());
    let gone = second_admin(store.as_ref(), "gone@localhost").await;
    keydeck::accounts::remove_user(store.as_ref(), "gone@localhost", false, chrono::Utc::now())
        .await
        .unwrap();
    assert!(ssh::connect(addr, &gone).await.is_none());
    common::add_org(store.as_ref(), "freeorg", Plan::Free).await;
    let free = ssh::new_key();
    ssh::add_key(store.as_ref(), "admin@freeorg.test", &free).await;
    assert!(ssh::connect(addr, &free).await.is_none());
    // A key nobody has: no user to name, no entry.
    assert!(ssh::connect(addr, &ssh::new_key()).await.is_none());

    let logins = entries(store.as_ref(), "default", "ssh.logged_in").await;
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0]["actor"], ADMIN);
    assert_eq!(logins[0]["remote_addr"], "127.0.0.1");
    assert_eq!(logins[0]["details"]["fingerprint"], fingerprint.as_str());
    let refused = entries(store.as_ref(), "default", "ssh.refused").await;
    let reason_of = |email: &str| {
        refused
            .iter()
            .find(|e| e["details"]["user_email"] == email)
            .map(|e| e["details"]["reason"].clone())
    };
    assert_eq!(
        reason_of("member@localhost"),
        Some(json!("not_an_admin")),
        "{refused:?}"
    );
    assert_eq!(
        reason_of("gone@localhost"),
        Some(json!("user_removed")),
        "{refused:?}"
    );
    assert!(refused.iter().any(
        |e| e["details"]["fingerprint"] == member_fingerprint.as_str()
            && e["remote_addr"] == "127.0.0.1"
    ));
    let free_refused = entries(store.as_ref(), "freeorg", "ssh.refused").await;
    assert_eq!(free_refused.len(), 1, "{free_refused:?}");
    assert_eq!(free_refused[0]["details"]["reason"], "free_plan");

    // The session's end is written once it closed.
    let deadline = Instant::now() + TIMEOUT;
    let ended = loop {
        let ended = entries(store.as_ref(), "default", "ssh.session_ended").await;
        if !ended.is_empty() {
            break ended;
        }
        assert!(Instant::now() < deadline, "ssh.session_ended written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ended[0]["details"]["kind"], "command");
    assert_eq!(ended[0]["details"]["exit_status"], 0);
    assert!(ended[0]["details"]["duration_s"].is_number(), "{ended:?}");
    assert_eq!(ended[0]["details"]["fingerprint"], fingerprint.as_str());

    // The API and `keydeck audit` show them.
    let api = server.get_json("/v1/audit-logs", &server.admin_token).await;
    let actions: Vec<&str> = api["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["ssh.logged_in", "ssh.refused", "ssh.session_ended"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let table = support::User::new()
        .env("KEYDECK_URL", &server.base)
        .env("KEYDECK_TOKEN", &server.admin_token)
        .run(&["audit"]);
    assert_eq!(table.code, 0, "{table:?}");
    let login_row = table
        .stdout
        .lines()
        .find(|l| l.contains("ssh.logged_in"))
        .unwrap_or_else(|| panic!("an ssh.logged_in row in:\n{}", table.stdout));
    assert!(
        login_row.contains(ADMIN)
            && login_row.contains("127.0.0.1")
            && login_row.contains("fingerprint=SHA256:"),
        "{login_row}"
    );
    server.stop().await;
    backend.cleanup().await;
}
