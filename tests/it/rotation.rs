//! Rotation as a state everyone sees (issue 20, acceptance 1): the old half
//! of a rotation links to its successor and back (API, UI details, `keys
//! show --json`), shows as rotating rather than "rotate me" and sits last in
//! Attention; a second rotation of it is refused in the API (both backends),
//! the UI and the CLI; an expired key is re-issued through the pre-filled
//! create form.

use crate::common;
use crate::common::cli as support;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use common::ui::{secret_on, start_time, World};
use common::{error_code, manual_clock, Backend, TestServer};
use crossterm::event::KeyCode;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{auth_status, Service, User};

const COLOR: Theme = Theme { color: true };

/// Random parts of prefixes and ids, masked so snapshots are stable.
macro_rules! assert_screen {
    ($name:expr, $screen:expr) => {
        insta::with_settings!({filters => vec![
            (r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"), (r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX..."),
            (r"key_[0-9A-Za-z]{20}", "key_XXXXXXXXXXXXXXXXXXXX"),
        ]}, {
            insta::assert_snapshot!($name, $screen);
        });
    };
}

on_both_backends!(a_second_rotation_is_refused_naming_the_successor);

/// `POST /v1/api-keys/{id}/rotate` with `body`.
async fn rotate(s: &TestServer, id: &str, body: Value) -> reqwest::Response {
    s.http
        .post(s.url(&format!("/v1/api-keys/{id}/rotate")))
        .bearer_auth(&s.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn a_second_rotation_is_refused_naming_the_successor(backend: Backend) {
    let start = Utc::now().trunc_subsecs(3);
    let clock = manual_clock(start);
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let (old, old_secret) = s.create_key("svc", &["sessions:read"]).await;
    let old_id = old["id"].as_str().unwrap().to_owned();
    assert!(old["replaced_by"].is_null() && old["replaces"].is_null());

    let r = rotate(&s, &old_id, json!({"grace_seconds": 3600})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let rotated: Value = r.json().await.unwrap();
    let new_id = rotated["api_key"]["id"].as_str().unwrap().to_owned();
    let new_prefix = rotated["api_key"]["prefix"].as_str().unwrap().to_owned();
    assert_eq!(rotated["previous"]["replaced_by"], new_id.as_str());
    assert_eq!(rotated["api_key"]["replaces"], old_id.as_str());
    links_both_ways(&s, &old_id, &new_id).await;

    // Rotating it again, while it winds down, is refused, naming the
    // successor; its grace stays as it was and no third key appears.
    clock.advance(Duration::minutes(10));
    refused_while_winding_down(&s, &old_id, &new_prefix).await;
    let old_after = s
        .get_json(&format!("/v1/api-keys/{old_id}"), &s.admin_token)
        .await;
    assert_eq!(at(&old_after["expires_at"]), start + Duration::hours(1));
    assert_eq!(
        s.auth(&old_secret, None).await.status(),
        StatusCode::OK,
        "still in its grace"
    );

    successor_then_stopped(&s, &new_id).await;
    openapi_and_a_race(&s).await;
    s.stop().await;
    backend.cleanup().await;
}

/// Both links, on each key and in the list.
async fn links_both_ways(s: &TestServer, old_id: &str, new_id: &str) {
    let old_now = s
        .get_json(&format!("/v1/api-keys/{old_id}"), &s.admin_token)
        .await;
    assert_eq!(old_now["replaced_by"], new_id);
    assert!(old_now["replaces"].is_null());
    let new_now = s
        .get_json(&format!("/v1/api-keys/{new_id}"), &s.admin_token)
        .await;
    assert_eq!(new_now["replaces"], old_id);
    assert!(new_now["replaced_by"].is_null());
    let list = s.get_json("/v1/api-keys", &s.admin_token).await;
    let item = |id: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(item(old_id)["replaced_by"], new_id);
    assert_eq!(item(new_id)["replaces"], old_id);
}

/// A second rotation while the key winds down: 409 `key_already_replaced`,
/// naming the successor; still two keys.
async fn refused_while_winding_down(s: &TestServer, old_id: &str, new_prefix: &str) {
    let (status, code, body) =
        error_code(rotate(s, old_id, json!({"grace_seconds": 60})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "key_already_replaced")
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "This key is already being replaced by {new_prefix}... (rotated at "
        )) && message.ends_with("; rotate that key instead."),
        "{message}"
    );
    assert_eq!(body["api_key"]["id"], old_id);
    let list = s.get_json("/v1/api-keys", &s.admin_token).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

/// The successor is the one to rotate, and can be; revoked by that
/// rotation, it is refused as not active, naming its own successor.
async fn successor_then_stopped(s: &TestServer, new_id: &str) {
    let r = rotate(s, new_id, json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let third: Value = r.json().await.unwrap();
    let (status, code, body) = error_code(rotate(s, new_id, json!({})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "key_not_active")
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "This key is revoked: it was replaced by {}...",
            third["api_key"]["prefix"].as_str().unwrap()
        )),
        "{message}"
    );
}

/// The OpenAPI document has both links and the new 409; of two rotations
/// of one key at once, one wins and the other is refused.
async fn openapi_and_a_race(s: &TestServer) {
    let doc = s.get_json("/openapi.json", "").await;
    let props = &doc["components"]["schemas"]["ApiKey"]["properties"];
    assert!(
        props["replaced_by"].is_object() && props["replaces"].is_object(),
        "{props}"
    );
    let conflict = doc["paths"]["/v1/api-keys/{id}/rotate"]["post"]["responses"]["409"]
        ["description"]
        .as_str()
        .unwrap();
    assert!(conflict.contains("`key_already_replaced`"), "{conflict}");

    let (racer, _) = s.create_key("racer", &["sessions:read"]).await;
    let racer = racer["id"].as_str().unwrap();
    let (a, b) = tokio::join!(
        rotate(s, racer, json!({"grace_seconds": 60})),
        rotate(s, racer, json!({"grace_seconds": 60}))
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
}

/// Day `d` of the UI tests' clock (the keys are looked at on day 100).
fn day(d: i64) -> DateTime<Utc> {
    start_time() + Duration::days(d)
}

/// Creates a key at day `at` of the clock; returns the API's answer.
async fn key_at(w: &World, at: i64, body: Value) -> Value {
    w.clock.set(day(at));
    w.create(body).await
}

/// Moves the selection to the key `id`.
async fn select_id(ui: &mut Harness, id: &str) {
    ui.press(KeyCode::Home).await;
    let at = ui
        .app
        .rows()
        .iter()
        .position(|&i| ui.app.keys()[i].id == id)
        .unwrap_or_else(|| panic!("{id} in the table"));
    for _ in 0..at {
        ui.press(KeyCode::Char('j')).await;
    }
    assert_eq!(ui.app.selected_key().unwrap().id, id);
}

/// The screen line that shows `prefix` (the prefix column shows what
/// follows the shared `eg_live_` of its header).
fn row_of(screen: &str, prefix: &str) -> String {
    let shown = prefix.strip_prefix("eg_live_").unwrap_or(prefix);
    screen
        .lines()
        .find(|l| l.contains(&format!(" {shown}...")))
        .unwrap_or_else(|| panic!("a row for {prefix} in:\n{screen}"))
        .to_owned()
}

/// The names of the rows, in order, with the ids.
fn rows(ui: &Harness) -> Vec<(String, String)> {
    ui.app
        .rows()
        .iter()
        .map(|&i| {
            let k = &ui.app.keys()[i];
            (k.name.clone(), k.id.clone())
        })
        .collect()
}

/// Three keys at day 100: one due for rotation, one expiring in 3 days, one
/// expired 2 days ago.
async fn seed(w: &World) -> (Value, Value, Value) {
    let deploy = key_at(
        w,
        0,
        json!({"name": "Deploy bot", "description": "Deploys", "scopes": ["sessions:read"],
            "expires_at": day(300)}),
    )
    .await;
    let lapsed = key_at(
        w,
        60,
        json!({"name": "Lapsed", "description": "Nightly export",
            "scopes": ["sessions:read", "resources:read"], "expires_at": day(98)}),
    )
    .await;
    let expiring = key_at(
        w,
        90,
        json!({"name": "Expiring", "scopes": ["sessions:read"], "expires_at": day(103)}),
    )
    .await;
    w.clock.set(day(100));
    (deploy, lapsed, expiring)
}

/// The keys of one rotation made in the UI: (id, prefix) of the old and the new.
struct Pair {
    old: (String, String),
    new: (String, String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_half_shows_as_rotating_links_both_ways_and_is_not_rotated_twice() {
    let w = World::new().await;
    let (deploy, _, expiring) = seed(&w).await;
    let old_id = deploy["api_key"]["id"].as_str().unwrap().to_owned();
    let old_prefix = deploy["api_key"]["prefix"].as_str().unwrap().to_owned();
    let mut ui = w.ui(COLOR, 140, 20).await;
    assert!(row_of(&ui.screen(), &old_prefix).contains(" rotate "));

    // R with 24 hours of grace.
    select_id(&mut ui, &old_id).await;
    ui.press(KeyCode::Char('R')).await;
    ui.press(KeyCode::Char('3')).await;
    ui.press(KeyCode::Char('y')).await;
    let new_prefix = secret_on(&ui.screen())[..12].to_owned();
    ui.press(KeyCode::Char('c')).await;
    ui.press(KeyCode::Esc).await;
    let new_id = ui.app.selected_key().unwrap().id.clone();
    assert_ne!(new_id, old_id);
    let pair = Pair {
        old: (old_id, old_prefix),
        new: (new_id, new_prefix),
    };

    badge_and_attention(&mut ui, &pair).await;
    details_link_both_ways(&mut ui, &pair).await;
    refused_in_the_ui(&w, &mut ui, &pair, &expiring).await;
    w.server.stop().await;
}

/// The badge says until when and by which key (no "expiring" or "rotate");
/// in Attention every key that asks for action comes first, the rotating one last.
async fn badge_and_attention(ui: &mut Harness, pair: &Pair) {
    let ((old_id, old_prefix), (_, new_prefix)) = (&pair.old, &pair.new);
    let screen = ui.screen();
    let old_row = row_of(&screen, old_prefix);
    assert!(
        old_row.contains(&format!("⟳ rotating until 09:00 → {new_prefix}…")),
        "{screen}"
    );
    assert!(
        !old_row.contains(" rotate ") && !old_row.contains("expiring"),
        "{old_row}"
    );
    assert_eq!(
        screen.lines().nth(1).unwrap().trim(),
        "3 active · 1 expiring within 7d · 1 expired, not revoked · 1 rotating",
        "{screen}"
    );
    assert_screen!("rotating_row", screen);

    ui.press(KeyCode::Char('5')).await;
    let attention = rows(ui);
    let names: Vec<&str> = attention.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Lapsed", "Expiring", "Deploy bot"]);
    assert_eq!(&attention[2].1, old_id, "the old half, not its successor");
    ui.press(KeyCode::Char('1')).await;
}

/// "Replaced by" on the old key, "Replaces" on the new one.
async fn details_link_both_ways(ui: &mut Harness, pair: &Pair) {
    let ((old_id, old_prefix), (new_id, new_prefix)) = (&pair.old, &pair.new);
    select_id(ui, old_id).await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains(&format!(
            "Replaced by {new_prefix}… “Deploy bot” ({new_id})"
        )),
        "{screen}"
    );
    assert!(
        screen.contains("rotating: Replaced by a rotation; it keeps working for 24 h more"),
        "{screen}"
    );
    assert!(!screen.contains("rotate it before"), "{screen}");
    assert_screen!("rotating_details", screen);
    ui.press(KeyCode::Esc).await;
    select_id(ui, new_id).await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains(&format!(
            "Replaces    {old_prefix}… “Deploy bot” ({old_id})"
        )),
        "{screen}"
    );
    ui.press(KeyCode::Esc).await;
}

/// R on the old half again is refused, naming the successor, and nothing is
/// sent; a key rotated elsewhere meanwhile (the UI has not reloaded) gets
/// the service's refusal, shown as such, and the list catches up.
async fn refused_in_the_ui(w: &World, ui: &mut Harness, pair: &Pair, expiring: &Value) {
    let new_prefix = &pair.new.1;
    select_id(ui, &pair.old.0).await;
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Already rotated")
            && screen.contains(&format!(
                "“Deploy bot” is already being replaced by {new_prefix}…"
            ))
            && screen.contains(&format!("Rotate {new_prefix}… instead.")),
        "{screen}"
    );
    ui.press(KeyCode::Enter).await;
    assert!(ui.app.popups().is_empty());
    assert_eq!(w.keys().await.len(), 4);

    let expiring_id = expiring["api_key"]["id"].as_str().unwrap();
    let r = rotate(&w.server, expiring_id, json!({"grace_seconds": 3600})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    select_id(ui, expiring_id).await;
    ui.press(KeyCode::Char('R')).await;
    ui.press(KeyCode::Char('y')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Cannot rotate")
            && screen.contains("This key is already being replaced by"),
        "{screen}"
    );
    ui.press(KeyCode::Enter).await;
    assert_eq!(w.keys().await.len(), 5, "no third key");
    let expiring_prefix = expiring["api_key"]["prefix"].as_str().unwrap();
    assert!(
        row_of(&ui.screen(), expiring_prefix).contains("⟳ rotating until 10:00"),
        "{}",
        ui.screen()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_is_re_issued_through_the_pre_filled_form() {
    let w = World::new().await;
    let (_, lapsed, _) = seed(&w).await;
    let lapsed_id = lapsed["api_key"]["id"].as_str().unwrap().to_owned();
    let mut ui = w.ui(COLOR, 100, 32).await;
    select_id(&mut ui, &lapsed_id).await;
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    for needle in [
        "Re-issue API key",
        "Re-issue “Lapsed” (expired eg_live_",
        "Name         Lapsed",
        "Description  Nightly export",
        "[x] Sessions:R",
        "[ ] Sessions:W",
        "[x] Resources:R",
        "[ ] Full Access",
    ] {
        assert!(screen.contains(needle), "{needle:?} in:\n{screen}");
    }
    assert_screen!("reissue_form", screen);

    // Enter creates it (the focus starts on Expiry: none, as the policy allows).
    ui.press(KeyCode::Enter).await;
    let secret = secret_on(&ui.screen());
    assert_eq!(w.auth(&secret, "resources:read").await, 200);
    let keys = w.keys().await;
    let lapsed: Vec<&Value> = keys.iter().filter(|k| k["name"] == "Lapsed").collect();
    assert_eq!(lapsed.len(), 2, "{keys:?}");
    let new = lapsed
        .iter()
        .find(|k| k["id"] != lapsed_id.as_str())
        .unwrap();
    assert_eq!(new["status"], "active");
    assert_eq!(new["description"], "Nightly export");
    assert_eq!(new["scopes"], json!(["sessions:read", "resources:read"]));
    assert_eq!(new["prefix"].as_str().unwrap(), &secret[..12]);
    w.server.stop().await;
}

#[test]
fn the_cli_shows_both_links_and_refuses_a_second_rotation() {
    let service = Service::start();
    let user = User::of(&service);
    let created = user
        .run(&[
            "keys",
            "create",
            "--name",
            "Deploy bot",
            "--scope",
            "sessions:read",
            "--json",
        ])
        .ok()
        .json();
    let old_id = created["api_key"]["id"].as_str().unwrap().to_owned();
    let old_secret = created["secret"].as_str().unwrap().to_owned();
    let new_secret = user
        .run(&["keys", "rotate", &old_id, "--grace", "1h", "--yes"])
        .ok()
        .stdout
        .trim()
        .to_owned();

    let old = user.run(&["keys", "show", &old_id, "--json"]).ok().json();
    let new_id = old["replaced_by"].as_str().unwrap().to_owned();
    let new = user.run(&["keys", "show", &new_id, "--json"]).ok().json();
    assert_eq!(new["replaces"], old_id.as_str());
    assert!(new["replaced_by"].is_null());
    assert_eq!(new["prefix"].as_str().unwrap(), &new_secret[..12]);
    // The CLI names the linked key as the TUI's details do: prefix, name, id.
    let shown = user.run(&["keys", "show", &old_id]).ok().stdout;
    let successor = format!("{}… “Deploy bot” ({new_id})", &new_secret[..12]);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("Replaced by") && l.ends_with(&successor)),
        "{shown}"
    );
    let shown = user.run(&["keys", "show", &new_id]).ok().stdout;
    let predecessor = format!("{}… “Deploy bot” ({old_id})", &old_secret[..12]);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("Replaces") && l.ends_with(&predecessor)),
        "{shown}"
    );

    // Again: refused (exit 1), naming the successor and what to run instead.
    user.run(&["keys", "rotate", &old_id, "--grace", "1h", "--yes"])
        .code(1)
        .stderr_has(&format!(
            "is already being replaced by {}... (rotated at",
            &new_secret[..12]
        ))
        .stderr_has(&format!(
            "Rotate that key instead: keydeck keys rotate {new_id}"
        ));
    assert_eq!(user.keys(&[]).len(), 2, "no third key");
    assert_eq!(
        auth_status(service.url(), &old_secret, "sessions:read"),
        200
    );

    reissue_hint_for_a_revoked_key(&user);
    assert_eq!(user.keys(&[]).len(), 3);
}

/// A revoked key is re-issued, not rotated: the CLI gives the command to run.
fn reissue_hint_for_a_revoked_key(user: &User) {
    let retired = user
        .run(&[
            "keys",
            "create",
            "--name",
            "It's retired",
            "--scope",
            "sessions:read",
            "--scope",
            "resources:read",
            "--json",
        ])
        .ok()
        .json();
    let retired_id = retired["api_key"]["id"].as_str().unwrap();
    user.run(&["keys", "revoke", retired_id, "--yes"]).ok();
    user.run(&["keys", "rotate", retired_id, "--yes"])
        .code(1)
        .stderr_has("is revoked: only an active key can be rotated. Re-issue it instead")
        .stderr_has(
            "keydeck keys create --name 'It'\\''s retired' --scope 'sessions:read' \
             --scope 'resources:read'",
        );
}
