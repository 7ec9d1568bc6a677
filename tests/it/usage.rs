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
    unused_counts_only_good_checks_in_the_policy_window,
    a_mostly_refused_key_is_refused_everywhere,
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

/// Now, to the second (the clock the tests below move ends here, close to
/// the real time the CLI reads).
fn real_now() -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

/// Creates a key through the API at the clock's time; its id and secret.
async fn key_expiring(
    s: &TestServer,
    name: &str,
    expires: Option<chrono::DateTime<Utc>>,
) -> (String, String) {
    let mut body = serde_json::json!({"name": name, "scopes": ["sessions:read"]});
    if let Some(at) = expires {
        body["expires_at"] = serde_json::json!(at);
    }
    let r = s.create_key_as(&s.admin_token, body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: Value = r.json().await.unwrap();
    (
        made["api_key"]["id"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    )
}

/// The listed keys of `tab`, by name: (name, health ids, the whole key).
async fn listed(s: &TestServer, tab: &str) -> Vec<(String, Vec<String>, Value)> {
    let body = s
        .get_json(&format!("/v1/api-keys?tab={tab}"), &s.admin_token)
        .await;
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let health = k["health"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_str().unwrap().to_owned())
                .collect();
            (k["name"].as_str().unwrap().to_owned(), health, k.clone())
        })
        .collect()
}

fn health_of(keys: &[(String, Vec<String>, Value)], name: &str) -> Vec<String> {
    keys.iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, h, _)| h.clone())
        .unwrap_or_else(|| panic!("{name} listed in {keys:?}"))
}

/// Health (a): `unused` reads `last_used_at`, which only the last-used
/// flush of a *good* check writes (`AppState::check_key` records the use
/// after every refusal has returned). So a key checked well within the
/// policy's 30 days is not unused, and a key whose checks within them were
/// all refused (insufficient scope; rate limited: a good key from a
/// locked-out address) is unused, though it was checked.
async fn unused_counts_only_good_checks_in_the_policy_window(backend: Backend) {
    let now = real_now();
    let clock = common::manual_clock(now - chrono::Duration::days(40));
    let s = TestServer::start_with(&backend, clock.clone(), |c| {
        c.usage.flush = Duration::from_millis(100);
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.max_failed_auth = 3;
    })
    .await;
    let expires = Some(now + chrono::Duration::days(100));
    // A second apart, so that the Attention order (unused longest first) is fixed.
    let (_, used) = key_expiring(&s, "Used", expires).await;
    clock.advance(chrono::Duration::seconds(1));
    let (_, scoped) = key_expiring(&s, "Refused only", expires).await;
    clock.advance(chrono::Duration::seconds(1));
    let (limited_id, limited) = key_expiring(&s, "Rate limited", expires).await;
    clock.set(now - chrono::Duration::days(1));
    let from = |secret: &str, addr: &str, scope: &str| {
        s.http
            .get(s.url("/v1/auth"))
            .query(&[("scope", scope)])
            .header("x-api-key", secret.to_owned())
            .header("x-forwarded-for", addr.to_owned())
            .send()
    };
    let status = |r: reqwest::Result<reqwest::Response>| r.unwrap().status();
    assert_eq!(status(from(&used, "10.0.0.1", "sessions:read").await), 200);
    for _ in 0..3 {
        assert_eq!(
            status(from(&scoped, "10.0.0.2", "resources:read").await),
            403
        );
    }
    // The rate-limited key: checked from an address that bad keys locked
    // out. Such a check is counted only while the key is in the key cache
    // (a locked-out client never costs a lookup), so the key is looked up
    // first, refused a scope; again if a cache clear got in between.
    for _ in 0..3 {
        assert_eq!(
            status(from("eg_live_nope", "10.9.9.9", "sessions:read").await),
            401
        );
    }
    let path = format!("/v1/api-keys/{limited_id}/usage?window=7d");
    let mut body = Value::Null;
    for _ in 0..10 {
        assert_eq!(
            status(from(&limited, "10.0.0.3", "resources:read").await),
            403
        );
        assert_eq!(
            status(from(&limited, "10.9.9.9", "sessions:read").await),
            429
        );
        body = wait_for(&s, &path, &s.admin_token, Duration::from_secs(1), |b| {
            total(b, "rate_limited") >= 1
        })
        .await;
        if total(&body, "rate_limited") >= 1 {
            break;
        }
    }
    assert!(total(&body, "rate_limited") >= 1, "{body}");
    assert!(total(&body, "insufficient_scope") >= 1, "{body}");
    assert_eq!(total(&body, "valid"), 0, "{body}");
    clock.set(now);

    let all = listed(&s, "all").await;
    assert!(health_of(&all, "Used").is_empty(), "{all:?}");
    for name in ["Refused only", "Rate limited"] {
        assert_eq!(health_of(&all, name), ["unused"], "{name}: {all:?}");
        let key = &all.iter().find(|(n, _, _)| n == name).unwrap().2;
        assert!(key["last_used_at"].is_null(), "{key}");
        assert!(key["refusals"].is_null(), "too few checks: {key}");
    }
    // The tab reads `last_used_at` as stored: once the last-used flush wrote it.
    let names = |keys: Vec<(String, Vec<String>, Value)>| -> Vec<String> {
        keys.into_iter().map(|k| k.0).collect()
    };
    let started = Instant::now();
    while names(listed(&s, "attention").await).len() > 2
        && started.elapsed() < Duration::from_secs(3)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        names(listed(&s, "attention").await),
        ["Refused only", "Rate limited"]
    );
    let counts = s.get_json("/v1/api-keys/counts", &s.admin_token).await;
    assert_eq!(counts["summary"]["unused"], 2, "{counts}");
    s.stop().await;
}

/// Health (b): twelve checks refused for their scope make a key `refused`
/// — in the API's list (`health`, `refusals`, the counts), the Attention
/// order (after `expiring`, before `no_expiry`), `keys list` and `keys
/// show`, the UI's Health column and details — and a key with fewer checks,
/// or mostly good ones, is not; 24 h later the service's sweep takes it off.
async fn a_mostly_refused_key_is_refused_everywhere(backend: Backend) {
    use crossterm::event::KeyCode;
    use keydeck::client::Client;
    use keydeck::key::Secret;
    use keydeck::tui::testing::Harness;
    use keydeck::tui::theme::Theme;

    let now = real_now();
    let clock = common::manual_clock(now - chrono::Duration::days(10));
    let s = TestServer::start_with(&backend, clock.clone(), |c| {
        c.usage.flush = Duration::from_millis(100);
    })
    .await;
    let later = Some(now + chrono::Duration::days(100));
    // A second apart, so that the table (newest first) has them in this order.
    let mut made = Vec::new();
    for (name, expires) in [
        ("Forever", None),
        ("Few refused", later),
        ("Mostly good", later),
        ("Misconfigured", later),
        ("Expiring", Some(now + chrono::Duration::days(2))),
    ] {
        made.push(key_expiring(&s, name, expires).await);
        clock.advance(chrono::Duration::seconds(1));
    }
    let secret = |i: usize| made[i].1.clone();
    clock.set(now - chrono::Duration::hours(1));
    for _ in 0..12 {
        assert_eq!(
            s.auth(&secret(3), Some("resources:read")).await.status(),
            403
        );
    }
    for _ in 0..5 {
        assert_eq!(
            s.auth(&secret(1), Some("resources:read")).await.status(),
            403
        );
    }
    for i in 0..16 {
        let (scope, code) = if i < 6 {
            ("resources:read", 403)
        } else {
            ("sessions:read", 200)
        };
        assert_eq!(s.auth(&secret(2), Some(scope)).await.status(), code);
    }
    clock.set(now);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        // Mostly good: marked for a moment if a flush saw 6 of its first 10
        // checks refused, unmarked by the flush of its good checks.
        let all = listed(&s, "all").await;
        if health_of(&all, "Misconfigured") == ["refused"]
            && health_of(&all, "Mostly good").is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The API: the badge, its numbers, the counts and the Attention order.
    let all = listed(&s, "all").await;
    assert_eq!(health_of(&all, "Misconfigured"), ["refused"], "{all:?}");
    assert!(health_of(&all, "Few refused").is_empty(), "under 10 checks");
    assert!(health_of(&all, "Mostly good").is_empty(), "6 of 16 refused");
    let key = &all.iter().find(|k| k.0 == "Misconfigured").unwrap().2;
    assert_eq!(key["refusals"]["checks"], 12, "{key}");
    assert_eq!(key["refusals"]["refused"], 12, "{key}");
    assert_eq!(key["refusals"]["most"], "insufficient_scope", "{key}");
    let attention: Vec<String> = listed(&s, "attention")
        .await
        .into_iter()
        .map(|k| k.0)
        .collect();
    assert_eq!(attention, ["Expiring", "Misconfigured", "Forever"]);
    let counts = s.get_json("/v1/api-keys/counts", &s.admin_token).await;
    assert_eq!(counts["summary"]["refused"], 1, "{counts}");
    assert_eq!(counts["tabs"]["attention"], 3, "{counts}");

    // The CLI: HEALTH in the Attention order, the reason in `keys show`.
    let cli = common::cli::User::new()
        .env("KEYDECK_URL", &s.base)
        .env("KEYDECK_TOKEN", &s.admin_token)
        .env("TZ", "UTC");
    let (list, show, json) = tokio::task::spawn_blocking(move || {
        (
            cli.run(&["keys", "list", "--attention"]).ok().stdout,
            cli.run(&["keys", "show", "Misconfigured"]).ok().stdout,
            cli.run(&["keys", "list", "--json"]).ok().json(),
        )
    })
    .await
    .unwrap();
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{list}");
    for (row, (name, badge)) in rows.iter().zip([
        ("Expiring", "expiring"),
        ("Misconfigured", "refused"),
        ("Forever", "no expiry"),
    ]) {
        assert!(row.contains(name) && row.contains(badge), "{list}");
    }
    assert!(
        show.contains(
            "100 % of 12 checks in 24 h refused (insufficient_scope): a misconfigured client?"
        ),
        "{show}"
    );
    let listed_json = json
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "Misconfigured")
        .unwrap()
        .clone();
    assert_eq!(listed_json["health"], serde_json::json!(["refused"]));

    // The UI: the Health column, the summary line, the Attention tab and details.
    let client = Client::new(&s.base, Secret::new(s.admin_token.clone())).unwrap();
    let mut ui = Harness::start(client, clock.clone(), Theme { color: true }, 100, 12).await;
    ui.app.set_refresh_every(chrono::Duration::days(1));
    let screen = ui.screen();
    assert!(screen.contains("1 mostly refused"), "{screen}");
    ui.press(KeyCode::Char('5')).await;
    let attention = ui.screen();
    let order: Vec<&str> = ["Expiring", "Misconfigured", "Forever"]
        .into_iter()
        .filter_map(|n| attention.find(n).map(|_| n))
        .collect();
    assert_eq!(order.len(), 3, "{attention}");
    assert!(
        attention.find("Expiring") < attention.find("Misconfigured")
            && attention.find("Misconfigured") < attention.find("Forever"),
        "{attention}"
    );
    insta::with_settings!({filters => vec![(r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX...")]}, {
        insta::assert_snapshot!("refused_attention", attention);
    });
    ui.press(KeyCode::Char('j')).await;
    ui.press(KeyCode::Enter).await;
    assert!(ui.screen().contains("Misconfigured"));
    // The Health section is further down the details: scroll to it.
    let reason = "100 % of 12 checks in 24 h refused (insufficient_scope)";
    let mut details = ui.screen();
    for _ in 0..20 {
        if details.contains(reason) {
            break;
        }
        ui.press(KeyCode::Char('j')).await;
        details.push_str(&ui.screen());
    }
    assert!(details.contains(reason), "{details}");

    // A day later the refusals are out of the window: the sweep takes the
    // badge off (within a minute of the service's clock).
    clock.advance(chrono::Duration::hours(25));
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3)
        && !health_of(&listed(&s, "all").await, "Misconfigured").is_empty()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = listed(&s, "all").await;
    assert!(health_of(&all, "Misconfigured").is_empty(), "{all:?}");
    let key = &all.iter().find(|k| k.0 == "Misconfigured").unwrap().2;
    assert!(key["refusals"].is_null(), "{key}");
    s.stop().await;
}
