//! Key usage (issue 22): checks through `/v1/auth` counted by outcome and
//! read back through the usage API, addresses behind a trusted proxy, the
//! new-address audit entries and their limit, retention with a manual clock,
//! replicas adding up on PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use keydeck::clock::SystemClock;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{self, Backend, TestServer};

on_both_backends!(
    checks_appear_by_outcome_within_two_seconds,
    addresses_come_from_trusted_proxies_and_new_ones_are_audited_with_a_limit,
    old_usage_is_pruned_by_the_service,
    bad_windows_and_readers_are_refused,
    replicas_add_up,
    kill_9_loses_at_most_the_last_flush_interval,
    seeded_demo_keys_have_usage,
);

/// Polls `path` until `done` holds for its JSON (at most `within`).
pub async fn wait_for(
    s: &TestServer,
    path: &str,
    token: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let body = s.get_json(path, token).await;
        if done(&body) || started.elapsed() > within {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn total(body: &Value, outcome: &str) -> u64 {
    body["totals"][outcome].as_u64().unwrap_or(0)
}

async fn checks_appear_by_outcome_within_two_seconds(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let (key, secret) = s.create_key("counted", &["sessions:read"]).await;
    let (gone, gone_secret) = s.create_key("gone", &["sessions:read"]).await;
    let id = key["id"].as_str().unwrap();
    assert_eq!(s.revoke(gone["id"].as_str().unwrap()).await.status(), 200);
    let (n, m, k) = (7, 4, 3);
    for _ in 0..n {
        assert_eq!(s.auth(&secret, Some("sessions:read")).await.status(), 200);
    }
    for _ in 0..m {
        assert_eq!(s.auth(&secret, Some("resources:read")).await.status(), 403);
    }
    for _ in 0..k {
        assert_eq!(s.auth(&gone_secret, None).await.status(), 401);
    }
    // A well-formed key that matches nothing.
    let unknown = keydeck::key::SecretFormat::new("eg_live_")
        .unwrap()
        .generate();
    assert_eq!(s.auth(unknown.expose(), None).await.status(), 401);

    let started = Instant::now();
    let path = format!("/v1/api-keys/{id}/usage?window=1h");
    let body = wait_for(&s, &path, &s.admin_token, Duration::from_secs(2), |b| {
        total(b, "valid") == n && total(b, "insufficient_scope") == m
    })
    .await;
    assert!(started.elapsed() <= Duration::from_secs(2), "{body}");
    assert_eq!(total(&body, "valid"), n, "{body}");
    assert_eq!(total(&body, "insufficient_scope"), m, "{body}");
    assert_eq!(total(&body, "revoked"), 0);
    assert_eq!(body["buckets"].as_array().unwrap().len(), 60);
    assert_eq!(body["bucket_seconds"], 60);
    let addresses = body["addresses"].as_array().unwrap();
    assert_eq!(addresses.len(), 1, "{body}");
    assert_eq!(addresses[0]["address"], "127.0.0.1");
    assert_eq!(addresses[0]["uses"], n + m);

    let gone_usage = s
        .get_json(
            &format!("/v1/api-keys/{}/usage", gone["id"].as_str().unwrap()),
            &s.admin_token,
        )
        .await;
    assert_eq!(total(&gone_usage, "revoked"), k, "{gone_usage}");
    assert_eq!(gone_usage["window"], "24h");
    assert_eq!(gone_usage["buckets"].as_array().unwrap().len(), 24);

    // The organisation: totals over its keys, the top keys in order.
    let org = s.get_json("/v1/usage?window=7d", &s.admin_token).await;
    assert_eq!(total(&org, "valid"), n, "{org}");
    assert_eq!(total(&org, "revoked"), k);
    assert_eq!(total(&org, "unknown"), 1);
    let top: Vec<&str> = org["top_by_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(top, ["counted", "gone"]);
    assert_eq!(org["top_by_refusals"][0]["name"], "counted");
    assert_eq!(org["top_by_refusals"][0]["refused"], m);

    // The CLI reads the same numbers.
    let cli = common::cli::User::new()
        .env("KEYDECK_URL", &s.base)
        .env("KEYDECK_TOKEN", &s.admin_token);
    let key_id = id.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        cli.run(&["keys", "usage", &key_id, "--window", "1h", "--json"])
            .ok()
            .json()
    })
    .await
    .unwrap();
    assert_eq!(out["totals"]["valid"], n, "{out}");
    assert_eq!(out["totals"]["insufficient_scope"], m);
    s.stop().await;
}

async fn addresses_come_from_trusted_proxies_and_new_ones_are_audited_with_a_limit(
    backend: Backend,
) {
    let s = TestServer::start_with(&backend, Arc::new(SystemClock), |c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.usage.new_address_audits = 3;
    })
    .await;
    let (key, secret) = s.create_key("pool", &["sessions:read"]).await;
    let id = key["id"].as_str().unwrap();
    let check = |from: String| {
        s.http
            .get(s.url("/v1/auth"))
            .header("x-api-key", &secret)
            .header("x-forwarded-for", from)
            .send()
    };
    // One new address: one entry.
    assert_eq!(check("10.0.4.7".into()).await.unwrap().status(), 200);
    let audited = |b: &Value| {
        b["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "api_key.new_address")
            .count()
    };
    let log = wait_for(
        &s,
        "/v1/audit-logs",
        &s.admin_token,
        Duration::from_secs(3),
        |b| audited(b) == 1,
    )
    .await;
    assert_eq!(audited(&log), 1, "{log}");
    let entry = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "api_key.new_address")
        .unwrap();
    assert_eq!(entry["api_key_id"], id);
    assert_eq!(entry["remote_addr"], "10.0.4.7");
    // Again from it: nothing new.
    assert_eq!(check("10.0.4.7".into()).await.unwrap().status(), 200);

    // 1 000 checks from 100 addresses: at most 10 kept, at most 3 entries.
    for i in 0..1000 {
        let r = check(format!("10.9.{}.{}", i % 100 / 10, i % 10))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let path = format!("/v1/api-keys/{id}/usage?window=1h");
    let body = wait_for(&s, &path, &s.admin_token, Duration::from_secs(3), |b| {
        total(b, "valid") == 1002
    })
    .await;
    assert_eq!(total(&body, "valid"), 1002, "{body}");
    let addresses = body["addresses"].as_array().unwrap();
    assert!(addresses.len() <= 10, "{body}");
    assert!(addresses.len() >= 2, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = s.get_json("/v1/audit-logs", &s.admin_token).await;
    assert!(audited(&log) <= 3, "{log}");
    s.stop().await;
}

async fn old_usage_is_pruned_by_the_service(backend: Backend) {
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let clock = common::manual_clock(start);
    let s = TestServer::start_with(&backend, clock.clone(), |c| {
        c.usage.flush = Duration::from_millis(100);
    })
    .await;
    let (key, secret) = s.create_key("old", &["sessions:read"]).await;
    let id = key["id"].as_str().unwrap();
    for _ in 0..5 {
        assert_eq!(s.auth(&secret, None).await.status(), 200);
    }
    let day = format!("/v1/api-keys/{id}/usage?window=24h");
    let hour = format!("/v1/api-keys/{id}/usage?window=1h");
    let body = wait_for(&s, &hour, &s.admin_token, Duration::from_secs(2), |b| {
        total(b, "valid") == 5
    })
    .await;
    assert_eq!(total(&body, "valid"), 5);

    // 47 h later the minute rows are still there (a 1h window no longer covers them).
    clock.advance(chrono::Duration::hours(47));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = backend.store().await;
    let org = store.list_orgs().await.unwrap()[0].id.clone();
    let rows = |tier| {
        let (store, org) = (store.clone(), org.clone());
        async move {
            store
                .usage()
                .usage_buckets(tier, &org, Some(id), 0, 60_000)
                .await
                .unwrap()
                .len()
        }
    };
    use keydeck::store::usage::UsageTier::{Hour, Minute};
    assert_eq!(rows(Minute).await, 1);
    // Past 48 h they are pruned; the hour rows stay for 90 days.
    clock.advance(chrono::Duration::hours(2));
    let waited = Instant::now();
    while rows(Minute).await != 0 && waited.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows(Minute).await, 0);
    assert_eq!(rows(Hour).await, 1);
    let week = s
        .get_json(
            &format!("/v1/api-keys/{id}/usage?window=7d"),
            &s.admin_token,
        )
        .await;
    assert_eq!(total(&week, "valid"), 5, "{week}");
    assert_eq!(total(&s.get_json(&day, &s.admin_token).await, "valid"), 0);
    clock.advance(chrono::Duration::days(90));
    let waited = Instant::now();
    while rows(Hour).await != 0 && waited.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows(Hour).await, 0, "hour rows pruned after 90 days");
    s.stop().await;
}

async fn bad_windows_and_readers_are_refused(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let (key, _) = s.create_key("k", &["sessions:read"]).await;
    let (_, reader) = s.create_key("reader", &["audit_logs:read"]).await;
    let (_, other) = s.create_key("other", &["sessions:read"]).await;
    let id = key["id"].as_str().unwrap();
    for w in ["2h", "", "24H", "1h&window=7d"] {
        let r = s
            .get(
                &format!("/v1/api-keys/{id}/usage?window={w}"),
                &s.admin_token,
            )
            .send()
            .await
            .unwrap();
        let (status, code, body) = common::error_code(r).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{w}: {body}");
        assert_eq!(code, "invalid_request", "{body}");
    }
    let r = s
        .get("/v1/usage?window=1y", &s.admin_token)
        .send()
        .await
        .unwrap();
    let (_, _, body) = common::error_code(r).await;
    assert!(
        body["error"]["fields"]["window"]
            .as_str()
            .unwrap()
            .contains("1h, 24h, 7d, 30d, 90d"),
        "{body}"
    );
    // A key with audit_logs:read may read; another key may not.
    let ok = s
        .get(&format!("/v1/api-keys/{id}/usage"), &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = s.get("/v1/usage", &other).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let missing = s
        .get("/v1/api-keys/key_nothere/usage", &s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    s.stop().await;
}

/// One service on SQLite; two replicas on one PostgreSQL database, the
/// checks spread over both: the usage API (of either) shows their sum.
async fn replicas_add_up(backend: Backend) {
    let count = if backend.name == "postgres" { 2 } else { 1 };
    let mut servers = Vec::new();
    for _ in 0..count {
        servers.push(TestServer::start(&backend).await);
    }
    let (key, secret) = servers[0].create_key("shared", &["sessions:read"]).await;
    let id = key["id"].as_str().unwrap();
    let (mut valid, mut refused) = (0, 0);
    for i in 0..40 {
        let s = &servers[i % servers.len()];
        if i % 4 == 0 {
            assert_eq!(s.auth(&secret, Some("resources:read")).await.status(), 403);
            refused += 1;
        } else {
            assert_eq!(s.auth(&secret, Some("sessions:read")).await.status(), 200);
            valid += 1;
        }
    }
    let path = format!("/v1/api-keys/{id}/usage?window=1h");
    for s in &servers {
        let body = wait_for(s, &path, &s.admin_token, Duration::from_secs(2), |b| {
            total(b, "valid") == valid && total(b, "insufficient_scope") == refused
        })
        .await;
        assert_eq!(total(&body, "valid"), valid, "{body}");
        assert_eq!(total(&body, "insufficient_scope"), refused, "{body}");
        let org = s.get_json("/v1/usage?window=1h", &s.admin_token).await;
        assert_eq!(org["top_by_checks"][0]["checks"], valid + refused, "{org}");
    }
    for s in servers {
        s.stop().await;
    }
}

/// `kill -9` after a burst of checks: after a restart, the counts are short
/// by at most the checks answered in the last 2 s before the kill (the flush
/// interval, 1 s, plus a flush in flight).
async fn kill_9_loses_at_most_the_last_flush_interval(backend: Backend) {
    use crate::common::process::ServerProcess;
    let dir = backend.data_dir.path().to_path_buf();
    let http = reqwest::Client::new();
    let server = ServerProcess::spawn_with(
        &backend,
        &dir,
        &dir.join("serve-1.log"),
        &[("RUST_LOG", "info")],
    );
    let token = crate::common::util::admin_token(&dir);
    let created: Value = http
        .post(server.url("/v1/api-keys"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "burst", "scopes": ["sessions:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["api_key"]["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let mut answered: Vec<Instant> = Vec::new();
    while started.elapsed() < Duration::from_millis(3500) {
        let r = http
            .get(server.url("/v1/auth"))
            .header("x-api-key", &secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        answered.push(Instant::now());
    }
    let killed = Instant::now();
    server.kill_9();
    const BOUND: Duration = Duration::from_secs(2);
    let safe = answered.iter().filter(|t| killed - **t > BOUND).count() as u64;
    let total_checks = answered.len() as u64;

    let server = ServerProcess::spawn_with(
        &backend,
        &dir,
        &dir.join("serve-2.log"),
        &[("RUST_LOG", "info")],
    );
    let usage: Value = http
        .get(server.url(&format!("/v1/api-keys/{id}/usage?window=1h")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let counted = total(&usage, "valid");
    assert!(
        counted >= safe && counted <= total_checks,
        "{counted} counted of {total_checks} checks; {safe} were answered more than {BOUND:?} before the kill"
    );
    println!("{counted} of {total_checks} checks counted after kill -9 (at least {safe} required)");
    server.terminate();
}

/// The UI: details show the sparkline, the totals and the addresses (keys
/// `1`–`3` switch the window); the revoke dialog says who still uses the key,
/// or that nobody did in 30 days.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_shows_usage_in_details_and_before_revoking() {
    use crossterm::event::KeyCode;
    use keydeck::client::Client;
    use keydeck::key::Secret;
    use keydeck::tui::testing::Harness;
    use keydeck::tui::theme::Theme;

    let backend = Backend::sqlite();
    let clock = common::manual_clock(common::ui::start_time());
    let s = TestServer::start_with(&backend, clock.clone(), |c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.usage.flush = Duration::from_millis(100);
    })
    .await;
    // A second apart, so that the table (newest first) has them in this order.
    s.create_key("Idle key", &["sessions:read"]).await;
    clock.advance(chrono::Duration::seconds(1));
    let (_, quiet) = s.create_key("Quiet key", &["sessions:read"]).await;
    assert_eq!(s.auth(&quiet, None).await.status(), 200);
    clock.advance(chrono::Duration::seconds(1));
    let (busy, secret) = s.create_key("Busy key", &["sessions:read"]).await;
    let check = |from: &'static str, scope: &'static str| {
        s.http
            .get(s.url("/v1/auth"))
            .query(&[("scope", scope)])
            .header("x-api-key", &secret)
            .header("x-forwarded-for", from)
            .send()
    };
    for _ in 0..5 {
        assert_eq!(
            check("10.0.4.7", "sessions:read").await.unwrap().status(),
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            check("10.0.4.8", "resources:read").await.unwrap().status(),
            403
        );
    }
    let path = format!("/v1/api-keys/{}/usage", busy["id"].as_str().unwrap());
    let body = wait_for(&s, &path, &s.admin_token, Duration::from_secs(2), |b| {
        total(b, "valid") == 5 && total(b, "insufficient_scope") == 2
    })
    .await;
    assert_eq!(total(&body, "valid"), 5, "{body}");
    clock.advance(chrono::Duration::minutes(2));

    let client = Client::new(&s.base, Secret::new(s.admin_token.clone())).unwrap();
    let mut ui = Harness::start(client, clock.clone(), Theme { color: true }, 100, 32).await;
    ui.app.set_refresh_every(chrono::Duration::days(1));
    ui.press(KeyCode::Enter).await;
    let details = ui.screen();
    assert!(details.contains("Busy key"), "{details}");
    assert!(details.contains("[1 24h]"), "{details}");
    assert!(
        details.contains("7 checks: valid 5  insufficient scope 2"),
        "{details}"
    );
    assert!(
        details.contains("10.0.4.8") && details.contains("10.0.4.7"),
        "{details}"
    );
    assert!(details.contains('█'), "the sparkline: {details}");
    insta::with_settings!({filters => vec![(r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"), (r"key_[0-9A-Za-z]{20}", "key_XXXXXXXXXXXXXXXXXXXX")]}, {
        insta::assert_snapshot!("usage_details", details);
    });
    ui.press(KeyCode::Char('3')).await;
    let month = ui.screen();
    assert!(
        month.contains("[3 30d]") && month.contains("7 checks"),
        "{month}"
    );
    ui.press(KeyCode::Esc).await;

    ui.press(KeyCode::Char('d')).await;
    let dialog = ui.screen();
    assert!(
        dialog.contains("Used 7 times in the last 24 h, last from 10.0.4.8, 2 min ago"),
        "{dialog}"
    );
    ui.press(KeyCode::Esc).await;

    // The usage screen: the organisation's checks, the top keys in order;
    // Enter opens a key's details.
    ui.press(KeyCode::Char('u')).await;
    let screen = ui.screen();
    let busy_at = screen.find("Busy key").expect("Busy key listed");
    let quiet_at = screen.find("Quiet key").expect("Quiet key listed");
    assert!(busy_at < quiet_at, "most checks first:\n{screen}");
    assert!(!screen.contains("Idle key"), "{screen}");
    assert!(
        screen.contains("8 checks: valid 6  insufficient scope 2"),
        "{screen}"
    );
    insta::with_settings!({filters => vec![(r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX")]}, {
        insta::assert_snapshot!("usage_screen", screen);
    });
    ui.press(KeyCode::Char('j')).await;
    ui.press(KeyCode::Enter).await;
    let details = ui.screen();
    assert!(
        details.contains("Key details") && details.contains("Quiet key"),
        "{details}"
    );
    ui.press(KeyCode::Esc).await;
    ui.press(KeyCode::Esc).await;
    assert!(ui.app.popups().is_empty());

    ui.press(KeyCode::Char('j')).await;
    ui.press(KeyCode::Char('j')).await;
    ui.press(KeyCode::Char('d')).await;
    let dialog = ui.screen();
    assert!(dialog.contains("Idle key"), "{dialog}");
    assert!(
        dialog.contains("No use in 30 days: safe to revoke"),
        "{dialog}"
    );
    s.stop().await;
}

/// `admin seed` gives its demo keys plausible usage: a month of checks with
/// a daily rhythm, and addresses.
async fn seeded_demo_keys_have_usage(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let store = backend.store().await;
    keydeck::accounts::seed(store.as_ref(), "default", 12, &SystemClock)
        .await
        .unwrap();
    let org = s.get_json("/v1/usage?window=30d", &s.admin_token).await;
    assert!(total(&org, "valid") > 0, "{org}");
    let top = org["top_by_checks"].as_array().unwrap();
    assert!(!top.is_empty(), "{org}");
    let id = top[0]["key_id"].as_str().unwrap();
    let day = s
        .get_json(
            &format!("/v1/api-keys/{id}/usage?window=24h"),
            &s.admin_token,
        )
        .await;
    let busy_hours = day["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["counts"]["valid"].as_u64().unwrap() > 0)
        .count();
    assert!(busy_hours >= 20, "a daily rhythm, not one spike: {day}");
    assert!(!day["addresses"].as_array().unwrap().is_empty(), "{day}");
    store.close().await;
    s.stop().await;
}

/// Over SSH, `keys usage` and `usage` answer as on the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_commands_over_ssh() {
    use crate::common::ssh;
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), "admin@localhost", &key).await;
    let (made, secret) = server.create_key("Over ssh", &["sessions:read"]).await;
    let id = made["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(server.auth(&secret, None).await.status(), 200);
    }
    let path = format!("/v1/api-keys/{id}/usage?window=1h");
    wait_for(
        &server,
        &path,
        &server.admin_token,
        Duration::from_secs(2),
        |b| total(b, "valid") == 3,
    )
    .await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();
    let one = ssh::exec(
        &handle,
        &format!("keys usage {id} --window 1h --json"),
        false,
    )
    .await;
    assert_eq!(one.status, Some(0), "{one:?}");
    let body: Value = serde_json::from_str(&one.stdout).expect("JSON");
    assert_eq!(body["totals"]["valid"], 3, "{body}");
    let text = ssh::exec(&handle, "usage --window 24h", false).await;
    assert_eq!(text.status, Some(0), "{text:?}");
    assert!(text.stdout.contains("3 checks"), "{}", text.stdout);
    assert!(text.stdout.contains("Over ssh"), "{}", text.stdout);
    let bad = ssh::exec(&handle, "usage --window 2d", false).await;
    assert_eq!(bad.status, Some(1), "{bad:?}");
    assert!(bad.stderr.contains("1h, 24h, 7d, 30d, 90d"), "{bad:?}");
    server.stop().await;
}
