//! Issue 17's smaller hardening items, against the real service: a revoked
//! token ends SSH access too, loose file modes are tightened at start, a key
//! prefix cannot pass for a session credential, replicas share one SSH host
//! key, and PostgreSQL's sync cursors say nothing about other organisations.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use keydeck::store::Plan;
use reqwest::StatusCode;
use russh::client;
use russh::keys::PublicKeyOrCertificate;
use serde_json::{json, Value};

use common::lifecycle::{admin, admin_ok, mode, run_to_end};
use common::process::ServerProcess;
use common::ssh;
use common::{Backend, TestServer};

/// Runs a test body against PostgreSQL only (what it shows is PostgreSQL's).
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(keydeck_pg),
                ignore = "set KEYDECK_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres to run"
            )]
            async fn postgres() {
                if let Some(backend) = $crate::common::Backend::postgres().await {
                    super::$name(backend).await
                }
            }
        }
    )*};
}

// L1: `admin users revoke-token` ends SSH access too, until `reset-token`.

on_both_backends!(revoke_token_disables_ssh_access_until_reset_token);

async fn revoke_token_disables_ssh_access_until_reset_token(backend: Backend) {
    let server = ssh::start(&backend, |_| {}).await;
    let addr = ssh::addr(&server);
    let dev = "dev@example.test";
    let token = admin_ok(
        &backend,
        &[
            "users", "add", "--org", "default", "--email", dev, "--role", "admin",
        ],
    );
    let key = ssh::new_key();
    let added = admin(
        &backend,
        &["users", "add-ssh-key", dev, &ssh::public_line(&key)],
    );
    assert!(
        added.ok && added.stderr.contains("can now connect over SSH"),
        "{}",
        added.stderr
    );
    let open = ssh::connect(addr, &key).await.expect("the key is accepted");
    let made = ssh::exec(
        &open,
        "keys create --name Before --scope sessions:read",
        false,
    )
    .await;
    assert_eq!(made.status, Some(0), "{made:?}");

    let revoked = admin(&backend, &["users", "revoke-token", dev]);
    assert!(revoked.ok, "{}", revoked.stderr);
    for words in [
        "is disabled",
        "access token no longer works",
        "1 SSH key is refused too",
        "open SSH sessions stop at their next request",
        "reset-token",
    ] {
        assert!(
            revoked.stderr.contains(words),
            "{words:?}: {}",
            revoked.stderr
        );
    }
    let list = admin_ok(&backend, &["users", "list", "--org", "default"]);
    let row = list
        .lines()
        .find(|l| l.contains(dev))
        .expect("still listed");
    assert!(
        row.contains("revoked") && row.contains("1 refused"),
        "{list}"
    );

    // The token, a new SSH connection and the open session are all refused.
    let r = server.get("/v1/api-keys", &token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        ssh::connect(addr, &key).await.is_none(),
        "a disabled user's key is refused at authentication"
    );
    let after = ssh::exec(
        &open,
        "keys create --name After --scope sessions:read",
        false,
    )
    .await;
    assert_ne!(after.status, Some(0), "{after:?}");
    assert!(!after.stderr.is_empty(), "{after:?}");
    let names = key_names(&server).await;
    assert!(
        names.contains(&"Before".to_owned()) && !names.contains(&"After".to_owned()),
        "{names:?}"
    );
    // A key added while disabled says it is refused.
    let second = ssh::new_key();
    let added = admin(
        &backend,
        &["users", "add-ssh-key", dev, &ssh::public_line(&second)],
    );
    assert!(
        added.ok && added.stderr.contains("disabled") && added.stderr.contains("refused"),
        "{}",
        added.stderr
    );
    assert!(ssh::connect(addr, &second).await.is_none());

    // reset-token lifts it: both keys work again.
    let reset = admin(&backend, &["users", "reset-token", dev]);
    assert!(
        reset.ok && reset.stderr.contains("enabled again") && reset.stderr.contains("2 SSH keys"),
        "{}",
        reset.stderr
    );
    for key in [&key, &second] {
        let handle = ssh::connect(addr, key).await.expect("accepted again");
        let made = ssh::exec(
            &handle,
            "keys create --name Again --scope sessions:read",
            false,
        )
        .await;
        assert_eq!(made.status, Some(0), "{made:?}");
    }
    let list = admin_ok(&backend, &["users", "list", "--org", "default"]);
    let row = list.lines().find(|l| l.contains(dev)).expect("listed");
    assert!(row.contains("active") && row.contains("2 keys"), "{list}");
    drop(open);
    server.stop().await;
    backend.cleanup().await;
}

async fn key_names(server: &TestServer) -> Vec<String> {
    server.get_json("/v1/api-keys", &server.admin_token).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect()
}

// L4: files an older build left readable by others are made 0600 at start.

on_both_backends!(loose_files_are_made_private_at_start_and_logged);

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

async fn loose_files_are_made_private_at_start_and_logged(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let ssh_on = [("KEYDECK_SSH_LISTEN", "127.0.0.1:0")];
    // A first start makes the files; killed, so SQLite's -wal and -shm stay.
    ServerProcess::spawn_with(&backend, &dir, &tmp.path().join("first.log"), &ssh_on).kill_9();
    let mut files: Vec<PathBuf> = vec![
        dir.join("admin-token"),
        dir.join(keydeck::ssh::HOST_KEY_FILE),
    ];
    if backend.name == "sqlite" {
        for name in ["keydeck.db", "keydeck.db-wal", "keydeck.db-shm"] {
            files.push(dir.join(name));
        }
    }
    for file in &files {
        assert!(file.exists(), "{} was made", file.display());
        chmod(file, 0o644);
    }

    let log = tmp.path().join("second.log");
    let server = ServerProcess::spawn_with(&backend, &dir, &log, &ssh_on);
    // The SSH listener starts before the HTTP one says it listens.
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    let text = std::fs::read_to_string(&log).unwrap();
    for file in &files {
        let line = text
            .lines()
            .find(|l| l.contains("made it private") && l.contains(&*file.display().to_string()))
            .unwrap_or_else(|| panic!("a log line for {}:\n{text}", file.display()));
        assert!(line.contains("0644") && line.contains("0600"), "{line}");
    }
    let warned = text.contains("--ssh-host-key");
    assert_eq!(warned, backend.name == "postgres", "{text}");
    let r = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    server.kill_9();

    // Already private: nothing to say; a shared host key: no warning.
    let log = tmp.path().join("third.log");
    let key = dir.join(keydeck::ssh::HOST_KEY_FILE);
    let key = key.to_str().unwrap();
    let server = ServerProcess::spawn_with(
        &backend,
        &dir,
        &log,
        &[
            ("KEYDECK_SSH_LISTEN", "127.0.0.1:0"),
            ("KEYDECK_SSH_HOST_KEY", key),
        ],
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("made it private"), "{text}");
    assert!(!text.contains("--ssh-host-key"), "{text}");
    server.kill_9();
    backend.cleanup().await;
}

// I4: a key prefix that a session credential could pass for is refused.

#[test]
fn a_key_prefix_that_clashes_with_session_credentials_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for prefix in ["kds_", "kds_live_"] {
        let dir = tmp.path().join(prefix);
        let (status, stderr) = run_to_end(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                dir.to_str().unwrap(),
                "--key-prefix",
                prefix,
            ],
            tmp.path(),
        );
        assert!(!status.success(), "{prefix} was accepted");
        assert!(
            stderr.contains(&format!("key prefix {prefix:?} clashes"))
                && stderr.contains("SSH session credentials")
                && stderr.contains("\"kds_\""),
            "{prefix}: {stderr}"
        );
    }
    for prefix in ["kds_", "kds_x_", "kdt_"] {
        assert!(keydeck::service::key_format(prefix).is_err(), "{prefix}");
    }
    for prefix in ["kd_", "kdsx_", "eg_live_"] {
        assert!(keydeck::service::key_format(prefix).is_ok(), "{prefix}");
    }
}

// I3: replicas on one PostgreSQL database, given one host key, present it.

on_postgres!(replicas_given_one_host_key_present_the_same_fingerprint);

/// Remembers the host key the server presented.
struct Recorder(Arc<Mutex<Option<String>>>);

impl client::Handler for Recorder {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        if let PublicKeyOrCertificate::PublicKey { key, .. } = key {
            *self.0.lock().unwrap() = Some(keydeck::accounts::ssh_keys::fingerprint(key));
        }
        Ok(true)
    }
}

/// The fingerprint of the host key an SSH client is shown at `server`.
async fn presented_host_key(server: &TestServer) -> String {
    let seen = Arc::new(Mutex::new(None));
    let handle = client::connect(
        Arc::new(client::Config::default()),
        ssh::addr(server),
        Recorder(seen.clone()),
    )
    .await
    .expect("SSH handshake");
    drop(handle);
    let seen = seen.lock().unwrap().clone();
    seen.expect("a host key was presented")
}

async fn replicas_given_one_host_key_present_the_same_fingerprint(backend: Backend) {
    let shared = tempfile::tempdir().unwrap();
    let key = shared.path().join("ssh_host_ed25519_key");
    let other_dir = tempfile::tempdir().unwrap();
    let alone_dir = tempfile::tempdir().unwrap();
    let a = ssh::start(&backend, |ssh| ssh.host_key = Some(key.clone())).await;
    let mut ssh = keydeck::ssh::SshConfig::new("127.0.0.1:0".parse().unwrap());
    ssh.host_key = Some(key.clone());
    let b = TestServer::start_with_ssh(
        &backend,
        Arc::new(keydeck::clock::SystemClock),
        |config| config.data_dir = other_dir.path().to_path_buf(),
        Some(ssh),
    )
    .await;
    // A replica left to its own data dir makes a key of its own.
    let alone = TestServer::start_with_ssh(
        &backend,
        Arc::new(keydeck::clock::SystemClock),
        |config| config.data_dir = alone_dir.path().to_path_buf(),
        Some(keydeck::ssh::SshConfig::new("127.0.0.1:0".parse().unwrap())),
    )
    .await;
    let fingerprint = |s: &TestServer| s.running.ssh.as_ref().unwrap().host_key_fingerprint.clone();
    assert_eq!(fingerprint(&a), fingerprint(&b));
    assert_ne!(fingerprint(&a), fingerprint(&alone));
    assert_eq!(presented_host_key(&a).await, fingerprint(&a));
    assert_eq!(presented_host_key(&b).await, fingerprint(&a));
    assert_eq!(presented_host_key(&alone).await, fingerprint(&alone));
    assert_eq!(mode(&key), 0o600);
    for server in [a, b, alone] {
        server.stop().await;
    }
    backend.cleanup().await;
}

// L6: PostgreSQL's sync cursors are per organisation and opaque.

on_postgres!(
    an_orgs_sync_cursor_does_not_move_while_only_another_org_writes,
    a_write_in_a_transaction_open_while_the_cursor_was_read_is_not_missed,
);

/// `GET /v1/api-keys` (with `changed_since` if given) as `token`.
async fn list(server: &TestServer, token: &str, changed_since: Option<&str>) -> Value {
    let path = match changed_since {
        Some(c) => format!("/v1/api-keys?changed_since={c}"),
        None => "/v1/api-keys".to_owned(),
    };
    let r = server.get(&path, token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

async fn sync_cursor(server: &TestServer, token: &str) -> String {
    list(server, token, None).await["sync_cursor"]
        .as_str()
        .expect("a sync_cursor")
        .to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn create(server: &TestServer, token: &str, name: &str) -> String {
    let r = server
        .create_key_as(token, json!({ "name": name, "scopes": ["sessions:read"] }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    body["api_key"]["id"].as_str().unwrap().to_owned()
}

async fn an_orgs_sync_cursor_does_not_move_while_only_another_org_writes(backend: Backend) {
    let server = TestServer::start(&backend).await;
    let (b, _) = common::add_org(server.running.state.store.as_ref(), "orgb", Plan::Paid).await;
    let a = server.admin_token.clone();
    create(&server, &b, "B's first").await;
    let b_before = sync_cursor(&server, &b).await;
    let a_before = sync_cursor(&server, &a).await;

    // Only A writes: creates, a revocation, a rotation.
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(create(&server, &a, &format!("A's {i}")).await);
    }
    assert_eq!(server.revoke(&made[0]).await.status(), StatusCode::OK);
    let rotated = server
        .http
        .post(server.url(&format!("/v1/api-keys/{}/rotate", made[1])))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::CREATED);
    for _ in 0..3 {
        assert_eq!(sync_cursor(&server, &b).await, b_before, "B's cursor moved");
    }
    // A's own cursor moves, and B's cursor says nothing A could compare.
    let a_after = sync_cursor(&server, &a).await;
    assert_ne!(a_after, a_before);
    assert_ne!(b_before, a_before);

    // B's own write moves B's cursor, and comes with changed_since.
    let b_new = create(&server, &b, "B's second").await;
    let b_after = sync_cursor(&server, &b).await;
    assert_ne!(b_after, b_before);
    let changed = list(&server, &b, Some(&b_before)).await;
    assert!(ids(&changed).contains(&b_new), "{changed}");
    // Another organisation's cursor, or a made-up one, is no error and shows
    // only B's keys.
    for other in [a_after.as_str(), "s0000000000000000", "sffffffffffffffff"] {
        let listed = list(&server, &b, Some(other)).await;
        assert!(ids(&listed).iter().all(|id| !made.contains(id)), "{listed}");
    }
    server.stop().await;
    backend.cleanup().await;
}

async fn a_write_in_a_transaction_open_while_the_cursor_was_read_is_not_missed(backend: Backend) {
    use sqlx::Connection;
    let server = TestServer::start(&backend).await;
    let (b, _) = common::add_org(server.running.state.store.as_ref(), "orgb", Plan::Paid).await;
    let slow = create(&server, &b, "Written slowly").await;

    // A transaction writes B's key and stays open...
    let mut conn = sqlx::PgConnection::connect(&backend.database_url())
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("UPDATE api_keys SET description = 'changed late' WHERE id = $1")
        .bind(&slow)
        .execute(&mut *tx)
        .await
        .unwrap();
    // ...while B writes again (a later transaction id, committed) and reads
    // a cursor.
    let quick = create(&server, &b, "Written quickly").await;
    let listed = list(&server, &b, None).await;
    let cursor = listed["sync_cursor"].as_str().unwrap().to_owned();
    assert!(ids(&listed).contains(&quick));
    assert!(!listed.to_string().contains("changed late"), "{listed}");
    tx.commit().await.unwrap();
    conn.close().await.unwrap();

    // The late write is at or past the cursor.
    let changed = list(&server, &b, Some(&cursor)).await;
    let row = changed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == slow.as_str())
        .unwrap_or_else(|| panic!("the late write is listed: {changed}"));
    assert_eq!(row["description"], "changed late");

    // Every write made after a cursor is listed with it.
    for round in 0..5 {
        let cursor = sync_cursor(&server, &b).await;
        let id = create(&server, &b, &format!("Round {round}")).await;
        let changed = list(&server, &b, Some(&cursor)).await;
        assert!(ids(&changed).contains(&id), "round {round}: {changed}");
    }
    server.stop().await;
    backend.cleanup().await;
}
