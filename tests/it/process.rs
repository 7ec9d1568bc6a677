//! The service as operators run it: `keydeck serve` processes killed, signalled,
//! and run side by side on one PostgreSQL database.

use crate::common;

use common::process::ServerProcess;
use common::util::admin_token;
use common::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    a_created_key_survives_kill_9,
    no_secret_in_database_log_or_data_dir,
    sigterm_shuts_down_cleanly_and_flushes_last_used,
);

async fn create(
    http: &reqwest::Client,
    server: &ServerProcess,
    token: &str,
    name: &str,
    scopes: &[&str],
) -> Value {
    let r = http
        .post(server.url("/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({"name": name, "scopes": scopes}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn auth(
    http: &reqwest::Client,
    server: &ServerProcess,
    secret: &str,
    scope: &str,
) -> StatusCode {
    http.get(server.url("/v1/auth"))
        .query(&[("scope", scope)])
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .status()
}

async fn a_created_key_survives_kill_9(backend: Backend) {
    let dir = backend.data_dir.path().to_path_buf();
    let http = reqwest::Client::new();
    let server = ServerProcess::spawn(&backend, &dir, &dir.join("serve-1.log"));
    let t = admin_token(&dir);
    let created = create(&http, &server, &t, "survivor", &["sessions:read"]).await;
    server.kill_9();

    let server = ServerProcess::spawn(&backend, &dir, &dir.join("serve-2.log"));
    let list: Value = http
        .get(server.url("/v1/api-keys"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["id"])
        .collect();
    assert_eq!(ids, [&created["api_key"]["id"]]);
    assert_eq!(
        auth(
            &http,
            &server,
            created["secret"].as_str().unwrap(),
            "sessions:read"
        )
        .await,
        StatusCode::OK
    );
    drop(server);
    backend.cleanup().await;
}

async fn no_secret_in_database_log_or_data_dir(backend: Backend) {
    let dir = backend.data_dir.path().to_path_buf();
    let log = std::env::temp_dir().join(format!(
        "keydeck-secrets-{}.log",
        keydeck::key::random_base62(8).as_str()
    ));
    let http = reqwest::Client::new();
    let server = ServerProcess::spawn(&backend, &dir, &log);
    let t = admin_token(&dir);
    let mut secrets = Vec::new();
    for (name, scopes) in [
        ("a", &["sessions:read"][..]),
        ("b", &["full_access"][..]),
        ("c", &["resources:read"][..]),
    ] {
        let k = create(&http, &server, &t, name, scopes).await;
        secrets.push(k["secret"].as_str().unwrap().to_owned());
        assert_eq!(
            auth(&http, &server, &secrets[secrets.len() - 1], "sessions:read").await,
            if name == "c" {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::OK
            }
        );
        // A mistyped variant is refused; it must not be logged either.
        let mut typo = secrets[secrets.len() - 1].clone();
        typo.pop();
        typo.push('!');
        assert_eq!(
            auth(&http, &server, &typo, "sessions:read").await,
            StatusCode::UNAUTHORIZED
        );
        let id = k["api_key"]["id"].as_str().unwrap();
        if name == "a" {
            let r: Value = http
                .post(server.url(&format!("/v1/api-keys/{id}/rotate")))
                .bearer_auth(&t)
                .json(&json!({"grace_seconds": 60}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            secrets.push(r["secret"].as_str().unwrap().to_owned());
        } else if name == "b" {
            http.delete(server.url(&format!("/v1/api-keys/{id}")))
                .bearer_auth(&t)
                .send()
                .await
                .unwrap();
            assert_eq!(
                auth(&http, &server, &secrets[secrets.len() - 1], "sessions:read").await,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    assert!(server.terminate().success());

    // Every secret in full, and its random part alone.
    let needles: Vec<String> = secrets
        .iter()
        .flat_map(|s| [s.clone(), s[8..40].to_owned()])
        .collect();
    let log_text = std::fs::read(&log).unwrap();
    assert!(
        String::from_utf8_lossy(&log_text).contains("api key created"),
        "the log is the real one"
    );
    let mut haystacks = vec![(log.display().to_string(), log_text)];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        haystacks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    if let Some(url) = backend.database_url_arg() {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        for table in [
            "organisations",
            "users",
            "api_keys",
            "idempotency_keys",
            "audit_log",
        ] {
            let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT t::text FROM {table} t"))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            let dump = rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n");
            haystacks.push((format!("table {table}"), dump.into_bytes()));
        }
    }
    // The admin's access token is in its own file by design, and nowhere else.
    let admin_token = admin_token(&dir);
    for (name, bytes) in &haystacks {
        for needle in &needles {
            assert!(
                !contains(bytes, needle.as_bytes()),
                "a secret was found in {name}"
            );
        }
        if !name.ends_with("admin-token") {
            assert!(
                !contains(bytes, admin_token.as_bytes()),
                "the admin token was found in {name}"
            );
        }
    }
    let _ = std::fs::remove_file(&log);
    backend.cleanup().await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn sigterm_shuts_down_cleanly_and_flushes_last_used(backend: Backend) {
    let dir = backend.data_dir.path().to_path_buf();
    let http = reqwest::Client::new();
    let server = ServerProcess::spawn(&backend, &dir, &dir.join("serve.log"));
    let t = admin_token(&dir);
    let k = create(
        &http,
        &server,
        &t,
        "used just before shutdown",
        &["sessions:read"],
    )
    .await;
    assert_eq!(
        auth(
            &http,
            &server,
            k["secret"].as_str().unwrap(),
            "sessions:read"
        )
        .await,
        StatusCode::OK
    );
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    assert!(log.contains("stopped"), "{log}");

    // The use was written on the way out, though the periodic flush may not have run.
    let store = backend.store().await;
    let org = store.org_by_name("default").await.unwrap().unwrap();
    let key = store
        .get_key(&org.id, k["api_key"]["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(key.last_used_at.is_some());
    store.close().await;
    backend.cleanup().await;
}

/// Two `keydeck serve` replicas on one PostgreSQL database: a revoke through one
/// is seen by the other on its very next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(keydeck_pg),
    ignore = "set KEYDECK_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres to run"
)]
async fn revocation_is_immediate_across_replicas() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let dir_a = backend.data_dir.path().join("a");
    let dir_b = backend.data_dir.path().join("b");
    let http = reqwest::Client::new();
    let a = ServerProcess::spawn(&backend, &dir_a, &backend.data_dir.path().join("a.log"));
    let b = ServerProcess::spawn(&backend, &dir_b, &backend.data_dir.path().join("b.log"));
    let t = admin_token(&dir_a);
    assert!(
        !dir_b.join("admin-token").exists(),
        "only the first replica bootstraps"
    );
    for round in 0..5 {
        let k = create(
            &http,
            &a,
            &t,
            &format!("replicated {round}"),
            &["sessions:read"],
        )
        .await;
        let secret = k["secret"].as_str().unwrap();
        assert_eq!(
            auth(&http, &b, secret, "sessions:read").await,
            StatusCode::OK
        );
        let id = k["api_key"]["id"].as_str().unwrap();
        let r = http
            .delete(a.url(&format!("/v1/api-keys/{id}")))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = http
            .get(b.url("/v1/auth"))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "round {round}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
    }
    drop((a, b));
    backend.cleanup().await;
}

/// The bootstrap token file is private, and `keydeck admin` manages orgs and users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_and_admin_commands() {
    use std::os::unix::fs::PermissionsExt;
    let backend = Backend::sqlite();
    let dir = backend.data_dir.path().to_path_buf();
    let admin = |args: &[&str]| {
        let out = common::bin::keydeck()
            .arg("admin")
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (ok, stdout, _) = admin(&["orgs", "add", "acme", "--plan", "free"]);
    assert!(ok);
    assert!(stdout.contains("acme"));
    let mode = std::fs::metadata(dir.join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (ok, stdout, stderr) = admin(&[
        "users",
        "add",
        "--org",
        "acme",
        "--email",
        "ops@acme.test",
        "--role",
        "admin",
    ]);
    assert!(ok, "{stderr}");
    let acme_token = stdout.trim().to_owned();
    assert!(
        acme_token.starts_with("kdt_") && !stdout.trim().contains('\n'),
        "only the token on stdout: {stdout:?}"
    );
    assert!(!stderr.contains(&acme_token));
    let (ok, _, stderr) = admin(&["users", "add", "--org", "nope", "--email", "x@y.z"]);
    assert!(!ok && stderr.contains("no organisation named"), "{stderr}");
    let (ok, _, stderr) = admin(&["orgs", "add", "bad name!"]);
    assert!(!ok && stderr.contains("organisation name"), "{stderr}");
    let (ok, stdout, _) = admin(&["users", "list", "--org", "acme"]);
    assert!(ok && stdout.contains("ops@acme.test") && stdout.contains("admin"));
    let (ok, stdout, _) = admin(&["orgs", "list"]);
    assert!(ok && stdout.contains("default") && stdout.contains("free"));

    let http = reqwest::Client::new();
    let server = ServerProcess::spawn(&backend, &dir, &dir.join("serve.log"));
    let get = |token: String| {
        http.get(server.url("/v1/api-keys"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        get(acme_token.clone()).await.unwrap().status(),
        StatusCode::PAYMENT_REQUIRED
    );
    assert!(admin(&["orgs", "set-plan", "acme", "paid"]).0);
    assert_eq!(
        get(acme_token.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    let (ok, stdout, _) = admin(&["users", "reset-token", "ops@acme.test"]);
    assert!(ok);
    assert_eq!(
        get(acme_token).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(stdout.trim().to_owned()).await.unwrap().status(),
        StatusCode::OK
    );
    let (ok, _, _) = admin(&["seed", "--org", "acme", "--count", "12"]);
    assert!(ok);
    let list: Value = get(admin_token(&dir)).await.unwrap().json().await.unwrap();
    assert!(
        list["data"].as_array().unwrap().is_empty(),
        "seeded into acme, not default"
    );
    drop(server);
}

/// A new data dir is private to its owner: it holds the admin token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_data_dir_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let backend = Backend::sqlite();
    let dir = backend.data_dir.path().join("nested").join("keydeck");
    let server = ServerProcess::spawn(&backend, &dir, &backend.data_dir.path().join("serve.log"));
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    drop(server);
}
