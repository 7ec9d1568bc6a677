//! The `no secret` badge crossed with marks, on both backends, in
//! `TestBackend` against the real service, the whole list held and as a
//! window over the service: a leak successor without a secret marked with
//! other keys is revoked with exactly them (the dialog counts and lists
//! them), a tab switch unmarks it while its badge stays, and neither `d` nor
//! `R` ever acts on a mark of another tab.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::{manual_clock, Backend, TestServer};
use crossterm::event::KeyCode;
use keydeck::client::Client;
use keydeck::key::Secret;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    marks_on_a_key_without_a_secret_act_on_exactly_the_marked,
    marks_on_a_key_without_a_secret_act_on_exactly_the_marked_in_a_window
);

async fn marks_on_a_key_without_a_secret_act_on_exactly_the_marked(backend: Backend) {
    scenario(backend, None).await
}

/// The same with 2 keys held of 5: marks outside the window are acted on
/// from the keys the service last sent.
async fn marks_on_a_key_without_a_secret_act_on_exactly_the_marked_in_a_window(backend: Backend) {
    scenario(backend, Some(2)).await
}

/// A key made at the clock's time: its id and secret.
async fn key(s: &TestServer, name: &str, expires: Option<DateTime<Utc>>) -> (String, String) {
    let mut body = json!({"name": name, "scopes": ["sessions:read"]});
    if let Some(at) = expires {
        body["expires_at"] = json!(at);
    }
    let r = s.create_key_as(&s.admin_token, body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: Value = r.json().await.unwrap();
    (
        made["api_key"]["id"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    )
}

async fn send(s: &TestServer, method: reqwest::Method, path: &str, body: Value) {
    let r = s
        .http
        .request(method, s.url(path))
        .bearer_auth(&s.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

/// The key as the service has it now.
async fn stored(s: &TestServer, id: &str) -> Value {
    s.get_json(&format!("/v1/api-keys/{id}"), &s.admin_token)
        .await
}

/// Whether the service has the key revoked.
async fn revoked(s: &TestServer, id: &str) -> bool {
    !stored(s, id).await["revoked_at"].is_null()
}

/// Selects the row of key `id` (from the top, a row at a time).
async fn select(ui: &mut Harness, id: &str) {
    ui.press(KeyCode::Home).await;
    for _ in 0..10 {
        if ui.app.selected_key().is_some_and(|k| k.id == id) {
            return;
        }
        ui.press(KeyCode::Down).await;
    }
    panic!("no row for {id} in:\n{}", ui.screen());
}

/// Marks the keys `ids` (Space on each row).
async fn mark(ui: &mut Harness, ids: &[&str]) {
    for id in ids {
        select(ui, id).await;
        ui.press(KeyCode::Char(' ')).await;
    }
    let marked: Vec<&str> = ui.app.marked().iter().map(String::as_str).collect();
    let mut want = ids.to_vec();
    want.sort();
    assert_eq!(marked, want);
}

/// The table line of the key with `prefix` (`eg_live_abcd...`; the table
/// shows `abcd...` under an `eg_live_` heading); `None` if not on screen.
fn row_of(screen: &str, prefix: &str) -> Option<String> {
    let shown = prefix.rsplit('_').next().unwrap();
    screen
        .lines()
        .find(|l| l.contains(shown) && !l.contains('•'))
        .map(str::to_owned)
}

/// The table line of the successor: the one row with the `no secret` badge
/// (it has no prefix yet: the table shows `...`).
fn successor_row(screen: &str) -> Option<String> {
    let rows: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("no secret") && l.contains("Billing"))
        .collect();
    assert!(rows.len() <= 1, "{screen}");
    rows.first().map(|l| l.to_string())
}

async fn scenario(backend: Backend, capacity: Option<usize>) {
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let clock = manual_clock(now - Duration::days(10));
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    send(
        &s,
        reqwest::Method::PUT,
        "/v1/policy",
        json!({"on_leak": "rotate", "leak_grace_seconds": 3600}),
    )
    .await;
    // Healthy alpha and bravo, Forever (no expiry), and Billing, to leak.
    let mut made = Vec::new();
    for (name, expires) in [
        ("alpha", Some(now + Duration::days(100))),
        ("bravo", Some(now + Duration::days(100))),
        ("Forever", None),
        ("Billing", Some(now + Duration::days(100))),
    ] {
        made.push(key(&s, name, expires).await);
        clock.advance(Duration::seconds(1));
    }
    let [alpha, bravo, forever, billing] = made.try_into().unwrap();
    clock.set(now - Duration::minutes(10));
    send(
        &s,
        reqwest::Method::POST,
        "/v1/leaks",
        json!({"token": billing.1, "location": ".env:3", "source": "keydeck-scan"}),
    )
    .await;
    clock.set(now);
    let successor = stored(&s, &billing.0).await["replaced_by"]
        .as_str()
        .expect("a successor without a secret")
        .to_owned();
    let prefix = |k: Value| format!("{}...", k["prefix"].as_str().unwrap());
    let leaked_prefix = prefix(stored(&s, &billing.0).await);
    let forever_prefix = prefix(stored(&s, &forever.0).await);
    let alpha_prefix = prefix(stored(&s, &alpha.0).await);
    assert_eq!(
        stored(&s, &successor).await["secret_pending"],
        true,
        "the successor has no secret"
    );

    let client = Client::new(&s.base, Secret::new(s.admin_token.clone())).unwrap();
    let mut ui = Harness::start_with(
        client,
        clock.clone(),
        Theme { color: false },
        (120, 24),
        |app| {
            if let Some(n) = capacity {
                app.set_capacity(n)
            }
        },
    )
    .await;
    ui.app.set_refresh_every(Duration::days(1));
    let screen = ui.screen();
    assert!(screen.contains(" · 1 without a secret"), "{screen}");

    // All: the successor and alpha marked; the Attention tab unmarks both,
    // and the successor still shows its badge there, unmarked.
    mark(&mut ui, &[&successor, &alpha.0]).await;
    let screen = ui.screen();
    assert!(
        screen.lines().next().unwrap().contains("2 marked"),
        "{screen}"
    );
    let row = successor_row(&screen).unwrap();
    assert!(
        row.starts_with('✓') && row.contains("no secret"),
        "{screen}"
    );
    ui.press(KeyCode::Char('5')).await;
    assert!(ui.app.marked().is_empty());
    let screen = ui.screen();
    assert!(
        screen.contains("2 keys unmarked (marks stay on their tab)."),
        "{screen}"
    );
    assert!(screen.contains("5 Attention (3)"), "{screen}");
    let row = successor_row(&screen).expect("the successor in Attention");
    assert!(
        !row.starts_with('✓') && row.contains("no secret"),
        "{screen}"
    );
    assert!(row_of(&screen, &alpha_prefix).is_none(), "{screen}");
    // d is about the selected key alone: none of the old marks.
    select(&mut ui, &forever.0).await;
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke API key") && screen.contains("“Forever”"),
        "{screen}"
    );
    assert!(
        !screen.contains("marked") && !screen.contains("alpha"),
        "{screen}"
    );
    ui.press(KeyCode::Char('n')).await;

    // Attention: the successor and Forever marked, not the leaked key shown
    // between them; d asks about exactly these two, and revokes them.
    mark(&mut ui, &[&successor, &forever.0]).await;
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke the marked keys: 2 keys?"),
        "{screen}"
    );
    let listed: Vec<&str> = screen.lines().filter(|l| l.contains('•')).collect();
    assert_eq!(listed.len(), 2, "{screen}");
    assert!(
        listed
            .iter()
            .any(|l| l.contains("“Billing”") && !l.contains(&leaked_prefix))
            && listed
                .iter()
                .any(|l| l.contains("“Forever”") && l.contains(&forever_prefix)),
        "{screen}"
    );
    assert!(
        !listed.iter().any(|l| l.contains(&leaked_prefix)),
        "{screen}"
    );
    ui.press(KeyCode::Char('y')).await;
    assert!(revoked(&s, &successor).await);
    assert!(revoked(&s, &forever.0).await);
    for id in [&billing.0, &alpha.0, &bravo.0] {
        assert!(!revoked(&s, id).await, "{id} was not marked");
    }
    // The leaked key still works through its grace; alpha and bravo too.
    for secret in [&billing.1, &alpha.1, &bravo.1] {
        assert_eq!(s.auth(secret, None).await.status(), StatusCode::OK);
    }
    assert!(ui.app.marked().is_empty());
    let screen = ui.screen();
    assert!(screen.contains("5 Attention (1)"), "{screen}");
    assert!(!screen.contains("without a secret"), "{screen}");
    assert!(successor_row(&screen).is_none(), "{screen}");
    let counts = s.get_json("/v1/api-keys/counts", &s.admin_token).await;
    assert!(counts["summary"].get("no_secret").is_none(), "{counts}");

    // The leaked key marked on Attention: back on All, the mark is gone, and
    // neither d nor R is about it.
    mark(&mut ui, &[&billing.0]).await;
    ui.press(KeyCode::Char('1')).await;
    assert!(ui.app.marked().is_empty());
    select(&mut ui, &bravo.0).await;
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke API key") && screen.contains("“bravo”"),
        "{screen}"
    );
    assert!(!screen.contains(&leaked_prefix), "{screen}");
    ui.press(KeyCode::Char('n')).await;

    // R rotates the selected key, never a marked one: alpha marked, bravo selected.
    mark(&mut ui, &[&alpha.0]).await;
    select(&mut ui, &bravo.0).await;
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    assert!(screen.contains("“bravo”"), "{screen}");
    assert!(!screen.contains("“alpha”"), "{screen}");
    ui.press(KeyCode::Esc).await;
    ui.press(KeyCode::Esc).await;
    assert!(!revoked(&s, &billing.0).await);
    assert!(!revoked(&s, &bravo.0).await);
    assert!(stored(&s, &alpha.0).await["replaced_by"].is_null());
    assert!(stored(&s, &bravo.0).await["replaced_by"].is_null());
    s.stop().await;
    backend.cleanup().await;
}
