//! How SSH sessions reach the service (issue 17, M3 and I7): a Unix socket of
//! mode 0600 in the data dir where a session's credential works on every
//! route an admin uses and every request is the SSH client's, nowhere else;
//! the SSH UI loads the policy without a failed login for 127.0.0.1; and
//! `policy show / set` as SSH commands answer as the command line does.

use crate::common;
use crate::common::cli;

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::ssh::{self, UiSession};
use common::{error_code, Backend, TestServer};

const ADMIN: &str = "admin@localhost";
/// Where the tests' made-up SSH sessions come from.
const SSH_CLIENT: &str = "192.0.2.7";
const LOOPBACK: &str = "127.0.0.1";

on_both_backends!(
    every_route_takes_a_session_credential_on_the_internal_socket_only,
    the_ssh_ui_loads_the_policy_and_its_refreshes_fail_no_login,
    policy_commands_over_ssh_answer_as_the_command_line_does,
    keys_issue_over_ssh_prints_a_leak_successors_secret_once,
);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn socket_of(server: &TestServer) -> PathBuf {
    server
        .running
        .ssh_sessions_socket
        .clone()
        .expect("an SSH sessions' socket")
}

/// A client of the internal socket, as the sessions' own.
fn socket_client(socket: &Path) -> reqwest::Client {
    reqwest::Client::builder()
        .unix_socket(socket)
        .build()
        .unwrap()
}

fn internal(path: &str) -> String {
    format!("http://keydeck.internal{path}")
}

/// Every (method, path) of the OpenAPI document.
async fn documented_routes(server: &TestServer) -> Vec<(Method, String)> {
    let doc: Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if let Ok(method) = method.to_uppercase().parse::<Method>() {
                if ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&method.as_str()) {
                    routes.push((method, path.clone()));
                }
            }
        }
    }
    routes
}

/// The body the walk sends to a route (a new route gets `{}` if it takes one).
fn body_for(method: &Method, path: &str, scope: &str) -> Option<Value> {
    match (method.as_str(), path) {
        ("POST", "/v1/api-keys") => Some(json!({"name": "Walked", "scopes": [scope]})),
        ("POST", p) if p.ends_with("/rotate") => Some(json!({"grace_seconds": 60})),
        ("PUT", "/v1/policy") => Some(json!({"rotate_after_days": 120})),
        ("POST", "/v1/webhooks") => Some(WEBHOOK.clone()),
        ("POST", "/v1/leaks") => Some(json!({"sha256": "ab".repeat(32)})),
        ("POST" | "PUT" | "PATCH", _) => Some(json!({})),
        _ => None,
    }
}

/// A webhook endpoint at a public address (an IP literal: nothing to resolve).
static WEBHOOK: std::sync::LazyLock<Value> = std::sync::LazyLock::new(
    || json!({"url": "https://192.0.2.10/hook", "events": ["api_key.created"]}),
);

/// A webhook endpoint of its own for a `/v1/webhooks/{id}…` route; its id.
async fn webhook_target(server: &TestServer) -> String {
    let made: Value = server
        .http
        .post(server.url("/v1/webhooks"))
        .bearer_auth(&server.admin_token)
        .json(&*WEBHOOK)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    made["webhook"]["id"].as_str().unwrap().to_owned()
}

/// A key waiting for its secret (the `rotate` leak policy's successor), to
/// issue it; the policy is put back to `revoke`.
async fn pending_target(server: &TestServer) -> String {
    let put = |on_leak: &str| {
        server
            .http
            .put(server.url("/v1/policy"))
            .bearer_auth(&server.admin_token)
            .json(&serde_json::json!({ "on_leak": on_leak }))
            .send()
    };
    assert!(put("rotate").await.unwrap().status().is_success());
    let scope = server.scope_ids().await.remove(0);
    let (leaked, secret) = server.create_key("Leaked", &[&scope]).await;
    let r = server
        .http
        .post(server.url("/v1/leaks"))
        .bearer_auth(&server.admin_token)
        .json(&serde_json::json!({ "token": secret, "location": "x", "source": "test" }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert!(put("revoke").await.unwrap().status().is_success());
    let id = leaked["id"].as_str().unwrap();
    let old = server
        .get_json(&format!("/v1/api-keys/{id}"), &server.admin_token)
        .await;
    old["replaced_by"].as_str().unwrap().to_owned()
}

// Issue 17, M3/I7: the internal socket is private; with a session's
// credential every route of the OpenAPI document answers (none 401/429), as
// the SSH client's address; nothing else gets in there; and nothing counts as
// a failed login for 127.0.0.1.
async fn every_route_takes_a_session_credential_on_the_internal_socket_only(backend: Backend) {
    let server = ssh::start(&backend, |_| {}).await;
    let socket = socket_of(&server);
    assert_eq!(socket, backend.data_dir.path().join("ssh-sessions.sock"));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is its owner's only");

    let key = ssh::new_key();
    let fingerprint = ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    let session = server
        .running
        .state
        .ssh_session_for(&fingerprint, ip(SSH_CLIENT))
        .await
        .expect("the admin's key");
    let credential = session.secret.expose().to_owned();
    let http = socket_client(&socket);
    let scope = server.scope_ids().await.remove(0);

    let routes = documented_routes(&server).await;
    assert!(
        routes.len() >= 10,
        "the document lists the routes: {routes:?}"
    );
    let mut answers = Vec::new();
    for (method, template) in &routes {
        // A key of its own for each route on one key: revoke and rotate do not meet.
        let path = if template.contains('{') {
            let id = if template.starts_with("/v1/webhooks/") {
                webhook_target(&server).await
            } else if template.ends_with("/secret") {
                pending_target(&server).await
            } else {
                let (made, _) = server.create_key("Route target", &[&scope]).await;
                made["id"].as_str().unwrap().to_owned()
            };
            let start = template.find('{').unwrap();
            let end = template.find('}').unwrap();
            format!("{}{id}{}", &template[..start], &template[end + 1..])
        } else {
            template.clone()
        };
        let mut request = http
            .request(method.clone(), internal(&path))
            .bearer_auth(&credential);
        if let Some(body) = body_for(method, template, &scope) {
            request = request.json(&body);
        }
        let status = request.send().await.expect("an answer").status();
        answers.push(format!("{method} {path} -> {status}"));
        assert!(
            ![StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&status),
            "{method} {path} refused the session credential: {status}"
        );
        if template == "/v1/auth"
            || [
                "/v1/revocable_token_types",
                "/v1/revoke_tokens",
                "/v1/github/secret-scanning",
            ]
            .contains(&template.as_str())
        {
            // Forward-auth checks API keys for gateways, and the code hosts'
            // leak routes their own credentials; sessions never use them.
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        } else {
            assert!(status.is_success(), "{method} {path} -> {status}");
        }
    }
    println!("{}", answers.join("\n"));

    // The session's changes carry the SSH client's address, and its key.
    let log = server
        .get_json("/v1/audit-logs?limit=100", &server.admin_token)
        .await;
    let walked = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "api_key.created" && e["details"]["name"] == "Walked")
        .unwrap_or_else(|| panic!("the walk's key in the audit log: {log}"));
    assert_eq!(walked["remote_addr"], SSH_CLIENT, "{walked}");
    assert_eq!(walked["details"]["via"], format!("ssh {fingerprint}"));

    // Only a live session credential gets in: no credential, an admin's
    // access token, a made-up or an ended session's credential: 401, and
    // counted against nobody.
    let admin_token = server.admin_token.clone();
    let made_up = format!("kds_{}", "x".repeat(43));
    drop(session);
    for token in [None, Some(&admin_token), Some(&made_up), Some(&credential)] {
        let mut request = http.get(internal("/v1/api-keys"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let (status, code, _) = error_code(request.send().await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
    }
    let state = &server.running.state;
    assert_eq!(state.failed_auth_count(ip(LOOPBACK)), 0);
    assert_eq!(state.failed_auth_count(ip(SSH_CLIENT)), 0);
    assert_eq!(state.failed_auth_tracked(), 0, "nothing was counted at all");

    server.stop().await;
    assert!(!socket.exists(), "the socket is removed at shutdown");
    backend.cleanup().await;
}

// A session credential on the public listener is an ordinary bad token:
// 401, counted against the caller like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_credential_on_the_public_listener_is_a_bad_token() {
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    let fingerprint = ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    let session = server
        .running
        .state
        .ssh_session_for(&fingerprint, ip(SSH_CLIENT))
        .await
        .unwrap();
    let credential = session.secret.expose();
    for path in ["/v1/api-keys", "/v1/policy", "/v1/audit-logs"] {
        let r = server.get(path, credential).send().await.unwrap();
        let (status, code, _) = error_code(r).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "{path}"
        );
    }
    let state = &server.running.state;
    assert_eq!(state.failed_auth_count(ip(LOOPBACK)), 3);
    assert_eq!(state.failed_auth_count(ip(SSH_CLIENT)), 0);
    // The socket serves it, of course.
    let r = socket_client(&socket_of(&server))
        .get(internal("/v1/policy"))
        .bearer_auth(credential)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop(session);
    server.stop().await;
}

/// `keydeck COMMAND` (words split at spaces), without holding up the runtime.
fn run_cli(cli: &cli::User, command: &str) -> cli::Run {
    let args: Vec<&str> = command.split(' ').collect();
    tokio::task::block_in_place(|| cli.run(&args))
}

async fn set_policy(server: &TestServer, body: Value) {
    let r = server
        .http
        .put(server.url("/v1/policy"))
        .bearer_auth(&server.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Opens the create form, reads the policy's line under Expiry, closes it.
async fn create_form_rule(ui: &mut UiSession, rule: &str) -> String {
    ui.send(b"n").await;
    let screen = ui.wait_for(rule).await;
    ui.send(b"\x1b").await;
    ui.wait_gone("New API key").await;
    screen
}

// Issue 17, acceptance 5: an SSH UI session loads the policy (its create
// form shows the rule, and a change of policy), 50 refreshes leave the
// failed-login count of 127.0.0.1 at 0, and the CLI on this host still gets in.
async fn the_ssh_ui_loads_the_policy_and_its_refreshes_fail_no_login(backend: Backend) {
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    server.create_key("Alpha key", &["sessions:read"]).await;
    set_policy(
        &server,
        json!({"max_lifetime_days": 30, "require_expiry": true}),
    )
    .await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();
    let mut ui = UiSession::open(&handle, 100, 34, &[]).await;
    ui.wait_for("Alpha key").await;
    create_form_rule(&mut ui, "policy: expiry required, at most 30 days").await;

    for _ in 0..50 {
        ui.send(b"r").await;
        ui.pump(Duration::from_millis(30)).await;
    }
    // The refreshes went through: a key made meanwhile shows after one more.
    let expires = chrono::Utc::now() + chrono::Duration::days(10);
    let r = server
        .create_key_as(
            &server.admin_token,
            json!({"name": "Omega key", "scopes": ["sessions:read"], "expires_at": expires}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    ui.send(b"r").await;
    ui.wait_for("Omega key").await;
    let state = &server.running.state;
    assert_eq!(
        state.failed_auth_count(ip(LOOPBACK)),
        0,
        "no failed login for 127.0.0.1"
    );

    // A new policy reaches the session on its next refresh.
    set_policy(
        &server,
        json!({"max_lifetime_days": 60, "require_expiry": true}),
    )
    .await;
    ui.send(b"r").await;
    let mut seen = String::new();
    for _ in 0..50 {
        seen = create_form_rule(&mut ui, "policy: expiry required").await;
        if seen.contains("at most 60 days") {
            break;
        }
        ui.send(b"r").await;
        ui.pump(Duration::from_millis(100)).await;
    }
    assert!(seen.contains("at most 60 days"), "{seen}");

    // The command line on this host, and plain HTTP from 127.0.0.1: 200.
    let cli = cli::User::new()
        .env("KEYDECK_URL", &server.base)
        .env("KEYDECK_TOKEN", &server.admin_token);
    let shown = run_cli(&cli, "policy show --json").ok().json();
    assert_eq!(shown["max_lifetime_days"], 60);
    let r = server
        .get("/v1/api-keys", &server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(state.failed_auth_count(ip(LOOPBACK)), 0);

    ui.send(b"q").await;
    ui.wait_closed().await;
    server.stop().await;
    backend.cleanup().await;
}

// Issue 17: `policy show` and `policy set [--dry-run]` over SSH print what
// `keydeck policy …` prints, with its exit codes, as the key's admin.
async fn policy_commands_over_ssh_answer_as_the_command_line_does(backend: Backend) {
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    let fingerprint = ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    server.create_key("No expiry", &["sessions:read"]).await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();
    let cli = cli::User::new()
        .env("KEYDECK_URL", &server.base)
        .env("KEYDECK_TOKEN", &server.admin_token);

    for command in [
        "policy show",
        "policy show --json",
        "policy set --max-lifetime 90d --dry-run",
        "policy set --max-lifetime 90d --dry-run --json",
    ] {
        let over_ssh = ssh::exec(&handle, command, false).await;
        let local = run_cli(&cli, command).ok();
        assert_eq!(over_ssh.status, Some(0), "{command}: {over_ssh:?}");
        assert_eq!(over_ssh.stdout, local.stdout, "{command}");
        assert_eq!(over_ssh.stderr, local.stderr, "{command}");
    }
    let shown = ssh::exec(&handle, "policy show", false).await;
    assert!(
        shown.stdout.contains("Max lifetime none"),
        "{}",
        shown.stdout
    );
    let dry = ssh::exec(&handle, "policy set --max-lifetime 90d --dry-run", false).await;
    assert!(
        dry.stdout.contains("No expiry") && dry.stderr.contains("Dry run: 1 of 1"),
        "{dry:?}"
    );
    let policy = server.get_json("/v1/policy", &server.admin_token).await;
    assert_eq!(
        policy["max_lifetime_days"],
        Value::Null,
        "a dry run changes nothing"
    );

    let set = ssh::exec(
        &handle,
        "policy set --max-lifetime 90d --require-description --yes",
        false,
    )
    .await;
    assert_eq!(set.status, Some(0), "{set:?}");
    assert!(set.stderr.contains("Policy updated"), "{set:?}");
    assert!(set.stdout.contains("Max lifetime 90 days"), "{set:?}");
    let policy = server.get_json("/v1/policy", &server.admin_token).await;
    assert_eq!(policy["max_lifetime_days"], 90);
    assert_eq!(policy["require_description"], true);
    let log = server.get_json("/v1/audit-logs", &server.admin_token).await;
    let update = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "policy.updated")
        .unwrap_or_else(|| panic!("policy.updated in {log}"));
    assert_eq!(update["remote_addr"], LOOPBACK, "the SSH client's address");
    assert_eq!(update["details"]["via"], format!("ssh {fingerprint}"));
    assert_eq!(update["details"]["new"]["max_lifetime_days"], 90);

    // Usage errors and refusals: the command line's exit codes.
    for (command, status) in [
        ("policy set", 1),
        ("policy set --rotate-after 0d", 1),
        ("policy", 1),
    ] {
        let over_ssh = ssh::exec(&handle, command, false).await;
        let local = run_cli(&cli, command);
        assert_eq!(over_ssh.status, Some(status), "{command}: {over_ssh:?}");
        assert_eq!(local.code, status as i32, "{command}: {local:?}");
        assert!(over_ssh.stdout.is_empty(), "{command}: {over_ssh:?}");
    }
    server.stop().await;
    backend.cleanup().await;
}

/// `keys issue ID` over SSH, as on the command line: the secret of the
/// `rotate` leak policy's successor alone on standard output, once; a
/// second issue is refused and prints no secret.
async fn keys_issue_over_ssh_prints_a_leak_successors_secret_once(backend: Backend) {
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    let successor = pending_target(&server).await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();
    let command = format!("keys issue {successor}");
    let issued = ssh::exec(&handle, &command, false).await;
    assert_eq!(issued.status, Some(0), "{issued:?}");
    let secret = issued.stdout.trim();
    assert!(secret.starts_with("eg_live_"), "{issued:?}");
    assert_eq!(server.auth(secret, None).await.status(), StatusCode::OK);
    let again = ssh::exec(&handle, &command, false).await;
    assert_ne!(again.status, Some(0), "{again:?}");
    assert!(again.stdout.is_empty(), "{again:?}");
}
