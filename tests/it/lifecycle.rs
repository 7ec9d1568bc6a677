//! Private files and links in the data dir, the Idempotency-Key body check,
//! key prefixes that clash with access tokens, and the user lifecycle of
//! `keydeck admin` (remove, set-role, revoke-token, reset-token), audited.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use chrono::Utc;
use crossterm::event::KeyCode;
use keydeck::store::Role;
use reqwest::StatusCode;
use serde_json::Value;

use common::bin::keydeck;
use common::lifecycle::{admin, admin_ok, files, mode, run_to_end, UmaskServer, BIN, OPERATOR};
use common::pty::Session;
use common::ui::World;
use common::util::wait_until;
use common::{error_code, Backend, TestServer};

on_both_backends!(
    an_idempotency_key_reused_for_another_request_is_refused,
    users_are_removed_re_roled_and_lose_their_token_audited,
    a_removed_user_or_revoked_token_is_refused_at_once_on_another_replica,
);

// Item 7: files are private whatever the umask, and links are not followed.

#[test]
fn serve_keeps_its_files_private_under_umask_022() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new").join("keydeck");
    let server = UmaskServer::start(&dir, &tmp.path().join("serve.log"));
    // A write, so that the WAL is surely in use.
    let token = std::fs::read_to_string(dir.join("admin-token")).unwrap();
    let created = blocking_status(
        reqwest::Method::POST,
        &server.url("/v1/api-keys"),
        token.trim(),
    );
    assert_eq!(created, 201);
    assert_eq!(mode(&dir), 0o700, "the data dir");
    assert_eq!(mode(&tmp.path().join("new")), 0o700, "a parent it created");
    for file in files(
        &dir,
        &[
            "keydeck.db",
            "keydeck.db-wal",
            "keydeck.db-shm",
            "admin-token",
        ],
    ) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(server);
}

/// `method url` with `token` on a runtime of its own (the process tests stay synchronous); the status.
fn blocking_status(method: reqwest::Method, url: &str, token: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new()
            .request(method.clone(), url)
            .bearer_auth(token);
        if method == reqwest::Method::POST {
            req = req.json(&serde_json::json!({"name": "wal", "scopes": ["sessions:read"]}));
        }
        req.send().await.unwrap().status().as_u16()
    })
}

#[test]
fn the_ui_keeps_its_log_and_embedded_database_private_under_umask_022() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("data");
    let config = home.path().join("config.toml");
    let mut ui = Session::start_program(
        "sh",
        &[
            "-c",
            "umask 022; exec \"$0\" \"$@\"",
            BIN,
            "--data-dir",
            dir.to_str().unwrap(),
        ],
        &[
            ("HOME", home.path().to_str().unwrap()),
            ("KEYDECK_CONFIG", config.to_str().unwrap()),
        ],
        100,
        30,
    );
    let log = dir.join("keydeck.log");
    wait_until(
        "the embedded service to start",
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("embedded key service started")
        },
        String::new,
    );
    assert_eq!(mode(&dir), 0o700, "the data dir");
    for file in files(
        &dir,
        &[
            "keydeck.log",
            "keydeck.db",
            "keydeck.db-wal",
            "keydeck.db-shm",
            "admin-token",
        ],
    ) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    ui.send("q");
    ui.wait_exit(Duration::from_secs(20));
}

#[test]
fn a_link_planted_at_admin_token_is_replaced_not_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "untouched\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("admin-token")).unwrap();

    let server = UmaskServer::start(&dir, &tmp.path().join("serve.log"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
    assert_eq!(mode(&victim), 0o644);
    let token_file = dir.join("admin-token");
    let meta = std::fs::symlink_metadata(&token_file).unwrap();
    assert!(meta.file_type().is_file(), "a regular file, not the link");
    assert_eq!(mode(&token_file), 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(token.starts_with("kdt_"), "the token is in the new file");
    assert_eq!(
        blocking_status(
            reqwest::Method::GET,
            &server.url("/v1/api-keys"),
            token.trim()
        ),
        200
    );
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("admin-token"))
        .collect();
    assert_eq!(names, ["admin-token"]);
    drop(server);
}

#[test]
fn a_data_dir_others_can_write_is_refused_by_serve_admin_and_the_ui() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    for (dir_mode, who) in [(0o777, "group and others"), (0o775, "its group")] {
        let dir = tmp.path().join(format!("shared-{dir_mode:o}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
        let d = dir.to_str().unwrap();
        for args in [
            vec!["serve", "--listen", "127.0.0.1:0", "--data-dir", d],
            vec!["--data-dir", d, "admin", "orgs", "list"],
            vec!["--data-dir", d],
        ] {
            let (status, stderr) = run_to_end(&args, &home);
            assert!(!status.success(), "{args:?} was accepted");
            assert!(
                stderr.contains(d) && stderr.contains(&format!("chmod go-w {d}")),
                "{args:?}: the message names the dir and the fix: {stderr}"
            );
            assert!(stderr.contains(who), "{args:?}: {stderr}");
        }
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "nothing was written into {d}"
        );
    }
}

// Item 9: a key prefix that clashes with the access-token prefix.

#[test]
fn serve_refuses_a_key_prefix_that_clashes_with_access_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    for prefix in ["kdt_", "kdt_live_"] {
        let dir = tmp.path().join(prefix);
        let d = dir.to_str().unwrap();
        let (status, stderr) = run_to_end(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                d,
                "--key-prefix",
                prefix,
            ],
            tmp.path(),
        );
        assert!(!status.success(), "{prefix} was accepted");
        assert!(
            stderr.contains(&format!("key prefix {prefix:?} clashes"))
                && stderr.contains("\"kdt_\""),
            "{prefix}: {stderr}"
        );
    }
}

#[test]
fn only_prefixes_that_overlap_the_token_prefix_clash() {
    for prefix in ["kdt_", "kdt_live_", "kdt_kdt_"] {
        let e = keydeck::service::key_format(prefix).unwrap_err();
        assert!(e.contains("clashes"), "{prefix}: {e}");
    }
    // Neither starts with the other: a key and a token are told apart.
    for prefix in ["eg_live_", "kd_", "k_", "kdtest_", "ab_kdt_"] {
        assert!(keydeck::service::key_format(prefix).is_ok(), "{prefix}");
    }
    // The format rules still apply first.
    assert!(keydeck::service::key_format("KDT_").is_err());
}

// Item 8: an Idempotency-Key reused with another body.

async fn an_idempotency_key_reused_for_another_request_is_refused(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let send = |body: String| {
        s.http
            .post(s.url("/v1/api-keys"))
            .bearer_auth(&s.admin_token)
            .header("idempotency-key", "deploy-7")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let first = send(r#"{"name":"deploy","scopes":["sessions:write","sessions:read"]}"#.into())
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let id = first["api_key"]["id"].as_str().unwrap();
    let secret = first["secret"].as_str().unwrap();

    // The same request written differently: spaces, field order, scope order.
    let same = send(
        r#"{ "scopes": [ "sessions:read", "sessions:write" ],
             "description": "", "name": "deploy" }"#
            .into(),
    )
    .await
    .unwrap();
    assert_eq!(same.status(), StatusCode::CONFLICT);
    let text = same.text().await.unwrap();
    let same: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(same["error"]["code"], "idempotency_key_reused");
    assert_eq!(same["api_key"]["id"], id);
    assert!(same.get("secret").is_none() && !text.contains(secret));

    // Another request under the same key: 422, and neither key nor secret.
    let in_a_month = (Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    for other in [
        r#"{"name":"deploy 2","scopes":["sessions:write","sessions:read"]}"#.to_owned(),
        r#"{"name":"deploy","scopes":["sessions:read"]}"#.to_owned(),
        r#"{"name":"deploy","description":"prod","scopes":["sessions:write","sessions:read"]}"#
            .to_owned(),
        format!(
            r#"{{"name":"deploy","expires_at":"{in_a_month}","scopes":["sessions:write","sessions:read"]}}"#
        ),
    ] {
        let r = send(other.clone()).await.unwrap();
        let (status, code, body) = error_code(r).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
        assert_eq!(code, "idempotency_key_reused");
        assert!(body.get("api_key").is_none(), "{body}");
        assert!(!body.to_string().contains(id), "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("different request"),
            "{body}"
        );
    }
    let list = s.get_json("/v1/api-keys", &s.admin_token).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deploy"], "no second key was created");
    s.stop().await;
    backend.cleanup().await;
}

// Item 11: the user lifecycle, audited.

async fn status_of(s: &TestServer, token: &str) -> StatusCode {
    s.get("/v1/api-keys", token).send().await.unwrap().status()
}

/// The operator's entries of the audit log, newest first: (action, user email, details).
async fn operator_entries(s: &TestServer) -> Vec<(String, String, Value)> {
    let log = s.get_json("/v1/audit-logs?limit=500", &s.admin_token).await;
    log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["type"] == "operator")
        .map(|e| {
            assert!(
                e["actor"]["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{OPERATOR}@")),
                "the operator is named $USER@HOST: {e}"
            );
            assert_eq!(e["api_key_id"], "", "{e}");
            assert!(e["details"]["user_id"]
                .as_str()
                .unwrap()
                .starts_with("usr_"));
            (
                e["action"].as_str().unwrap().to_owned(),
                e["details"]["user_email"].as_str().unwrap().to_owned(),
                e["details"].clone(),
            )
        })
        .collect()
}

async fn users_are_removed_re_roled_and_lose_their_token_audited(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let dev = "dev@example.test";
    let t1 = admin_ok(
        &backend,
        &[
            "users", "add", "--org", "default", "--email", dev, "--role", "admin",
        ],
    );
    assert_eq!(status_of(&s, &t1).await, StatusCode::OK);

    // set-role: a member is refused (403), an admin again accepted.
    admin_ok(&backend, &["users", "set-role", dev, "member"]);
    assert_eq!(status_of(&s, &t1).await, StatusCode::FORBIDDEN);
    admin_ok(&backend, &["users", "set-role", dev, "admin"]);
    assert_eq!(status_of(&s, &t1).await, StatusCode::OK);
    let again = admin(&backend, &["users", "set-role", dev, "admin"]);
    assert!(
        again.ok && again.stderr.contains("nothing changed"),
        "{}",
        again.stderr
    );
    let bad = admin(&backend, &["users", "set-role", dev, "owner"]);
    assert!(
        !bad.ok && bad.stderr.contains("use admin or member"),
        "{}",
        bad.stderr
    );

    // revoke-token: the user stays, without a working token.
    admin_ok(&backend, &["users", "revoke-token", dev]);
    let r = s.get("/v1/api-keys", &t1).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    let list = admin_ok(&backend, &["users", "list", "--org", "default"]);
    let row = list
        .lines()
        .find(|l| l.contains(dev))
        .expect("still listed");
    assert!(row.contains("revoked"), "{list}");

    // reset-token: a new token works, the old one does not.
    let t2 = admin_ok(&backend, &["users", "reset-token", dev]);
    assert!(t2.starts_with("kdt_") && t2 != t1);
    assert_eq!(status_of(&s, &t2).await, StatusCode::OK);
    assert_eq!(status_of(&s, &t1).await, StatusCode::UNAUTHORIZED);
    let made = s
        .create_key_as(
            &t2,
            serde_json::json!({"name": "dev's", "scopes": ["sessions:read"]}),
        )
        .await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.unwrap();
    let dev_secret = made["secret"].as_str().unwrap().to_owned();

    // The last admin stays, unless forced.
    admin_ok(&backend, &["users", "remove", dev]);
    for args in [
        &["users", "remove", "admin@localhost"][..],
        &["users", "set-role", "admin@localhost", "member"][..],
    ] {
        let refused = admin(&backend, args);
        assert!(!refused.ok, "{args:?}");
        assert!(
            refused.stderr.contains("last admin") && refused.stderr.contains("--force"),
            "{args:?}: {}",
            refused.stderr
        );
    }
    assert_eq!(status_of(&s, &s.admin_token).await, StatusCode::OK);

    // remove: the token is refused at once; the user is no longer listed;
    // the keys they created keep working.
    assert_eq!(status_of(&s, &t2).await, StatusCode::UNAUTHORIZED);
    let list = admin_ok(&backend, &["users", "list"]);
    assert!(!list.contains(dev), "{list}");
    assert_eq!(s.auth(&dev_secret, None).await.status(), StatusCode::OK);
    let gone = admin(&backend, &["users", "remove", dev]);
    assert!(
        !gone.ok && gone.stderr.contains("no user with email"),
        "{}",
        gone.stderr
    );
    for args in [
        &["users", "reset-token", dev][..],
        &["users", "revoke-token", dev][..],
        &["users", "set-role", dev, "member"][..],
    ] {
        let run = admin(&backend, args);
        assert!(
            !run.ok && run.stderr.contains("no user with email"),
            "{args:?}"
        );
    }
    // The email may be given to a new user.
    let t3 = admin_ok(
        &backend,
        &[
            "users", "add", "--org", "default", "--email", dev, "--role", "member",
        ],
    );
    assert_eq!(status_of(&s, &t3).await, StatusCode::FORBIDDEN);
    let dup = admin(
        &backend,
        &["users", "add", "--org", "default", "--email", dev],
    );
    assert!(
        !dup.ok && dup.stderr.contains("already exists"),
        "{}",
        dup.stderr
    );

    // Each change is in the audit log, by the operator, naming the user.
    let entries = operator_entries(&s).await;
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|(a, e, _)| (a.as_str(), e.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("user.added", dev),
            ("user.removed", dev),
            ("user.token_reset", dev),
            ("user.token_revoked", dev),
            ("user.role_changed", dev),
            ("user.role_changed", dev),
            ("user.added", dev),
        ]
    );
    assert_eq!(entries[0].2["role"], "member");
    assert_eq!(entries[4].2["from"], "member");
    assert_eq!(entries[4].2["to"], "admin");
    assert_eq!(entries[5].2["from"], "admin");
    assert_eq!(entries[5].2["to"], "member");
    assert_ne!(
        entries[0].2["user_id"], entries[1].2["user_id"],
        "a new user, not the removed one back"
    );

    // `keydeck audit` names the user too.
    let home = tempfile::tempdir().unwrap();
    let out = keydeck()
        .arg("audit")
        .env("HOME", home.path())
        .env("KEYDECK_CONFIG", home.path().join("config.toml"))
        .env("KEYDECK_URL", &s.base)
        .env("KEYDECK_TOKEN", &s.admin_token)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let removed = table
        .lines()
        .find(|l| l.contains("user.removed"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        removed.contains(dev) && removed.contains(&format!("{OPERATOR}@")),
        "{removed}"
    );
    s.stop().await;
    backend.cleanup().await;
}

async fn a_removed_user_or_revoked_token_is_refused_at_once_on_another_replica(backend: Backend) {
    let a = TestServer::start(&backend).await;
    let b = TestServer::start(&backend).await;
    for (email, command) in [
        ("leaver@example.test", "remove"),
        ("suspect@example.test", "revoke-token"),
    ] {
        let token = admin_ok(
            &backend,
            &[
                "users", "add", "--org", "default", "--email", email, "--role", "admin",
            ],
        );
        assert_eq!(status_of(&b, &token).await, StatusCode::OK);
        assert_eq!(status_of(&a, &token).await, StatusCode::OK);
        admin_ok(&backend, &["users", command, email]);
        for replica in [&b, &a] {
            let r = replica.get("/v1/api-keys", &token).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{command}");
            assert_eq!(
                r.headers()["www-authenticate"],
                "Bearer error=\"invalid_token\""
            );
        }
    }
    a.stop().await;
    b.stop().await;
    backend.cleanup().await;
}

// The TUI's audit screen names the user of an operator's change.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_screen_shows_the_user_of_an_operators_change() {
    let w = World::new().await;
    let store = w.backend.store().await;
    let now = Utc::now();
    keydeck::accounts::add_user(
        store.as_ref(),
        "default",
        "dev@example.test",
        Role::Member,
        now,
    )
    .await
    .unwrap();
    keydeck::accounts::remove_user(store.as_ref(), "dev@example.test", false, now)
        .await
        .unwrap();
    store.close().await;
    let mut ui = w
        .ui(keydeck::tui::theme::Theme { color: false }, 120, 20)
        .await;
    ui.press(KeyCode::Char('a')).await;
    let screen = ui.screen();
    let operator = keydeck::accounts::operator_name();
    for action in ["user.added", "user.removed"] {
        let line = screen
            .lines()
            .find(|l| l.contains(action))
            .unwrap_or_else(|| panic!("{action}:\n{screen}"));
        assert!(
            line.contains(&format!("dev@example.test by {operator}")),
            "{line}"
        );
    }
}
