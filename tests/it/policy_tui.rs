//! The create form under an organisation policy, driven by key events in
//! `TestBackend` against the real service: the policy shown under Expiry, the
//! maximum filled in, a later expiry refused inline (nothing sent), and a
//! compliant key created.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::ui::{secret_on, start_time, World};
use crossterm::event::KeyCode;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use serde_json::{json, Value};

const COLOR: Theme = Theme { color: true };

async fn set_policy(w: &World, body: Value) {
    let r = w
        .server
        .http
        .put(w.server.url("/v1/policy"))
        .bearer_auth(&w.server.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn press_n(ui: &mut Harness, code: KeyCode, times: usize) {
    for _ in 0..times {
        ui.press(code).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_shows_the_policy_refuses_a_later_expiry_and_creates_a_compliant_key() {
    let w = World::new().await;
    set_policy(&w, json!({"max_lifetime_days": 30, "require_expiry": true})).await;
    let mut ui = w.ui(COLOR, 100, 34).await;
    assert_eq!(
        ui.app.policy.max_lifetime_days,
        Some(30),
        "loaded with the keys"
    );

    // The rule under Expiry, and its maximum filled in.
    ui.press(KeyCode::Char('n')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("policy: expiry required, at most 30 days"),
        "{screen}"
    );
    assert!(
        screen.contains("30d") && screen.contains("expires Thu 2030-02-14 09:00"),
        "the maximum is filled in:\n{screen}"
    );
    // Filled in by the policy is not typed: Esc closes without asking.
    ui.press(KeyCode::Esc).await;
    assert!(ui.app.popups().is_empty(), "{}", ui.screen());

    ui.press(KeyCode::Char('n')).await;
    ui.type_text("Nightly export").await;
    press_n(&mut ui, KeyCode::Tab, 2).await; // Expiry
    press_n(&mut ui, KeyCode::Backspace, 3).await;
    ui.type_text("60d").await;
    ui.press(KeyCode::Tab).await; // Sessions (Read)
    ui.press(KeyCode::Char(' ')).await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("✗ this organisation requires an expiry of at most 30 days"),
        "refused inline:\n{screen}"
    );
    assert!(w.keys().await.is_empty(), "nothing was sent");

    // No expiry at all is refused too (the failed Enter took the focus
    // to Expiry, the first field with a problem).
    press_n(&mut ui, KeyCode::Backspace, 3).await;
    ui.press(KeyCode::Enter).await;
    assert!(ui
        .screen()
        .contains("✗ this organisation requires an expiry of at most 30 days"));
    assert!(w.keys().await.is_empty(), "nothing was sent");

    // Within the maximum: created, and the secret shown once.
    ui.type_text("2030-02-10").await;
    ui.press(KeyCode::Enter).await;
    let secret = secret_on(&ui.screen());
    assert_eq!(w.auth(&secret, "sessions:read").await, 200);
    let keys = w.keys().await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["name"], "Nightly export");
    let expires: DateTime<Utc> = keys[0]["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires <= start_time() + Duration::days(30), "{expires}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_reaches_the_form_on_refresh() {
    let w = World::new().await;
    let mut ui = w.ui(COLOR, 100, 34).await;
    ui.press(KeyCode::Char('n')).await;
    let screen = ui.screen();
    assert!(!screen.contains("policy:"), "no rule, no line:\n{screen}");
    ui.press(KeyCode::Esc).await;

    set_policy(
        &w,
        json!({"require_description": true, "require_expiry": true}),
    )
    .await;
    ui.press(KeyCode::Char('r')).await;
    assert!(ui.app.policy.require_description);
    ui.press(KeyCode::Char('n')).await;
    let screen = ui.screen();
    assert!(screen.contains("policy: description required"), "{screen}");
    assert!(screen.contains("policy: expiry required"), "{screen}");
    ui.type_text("No description").await;
    press_n(&mut ui, KeyCode::Tab, 3).await; // Sessions (Read)
    ui.press(KeyCode::Char(' ')).await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("✗ this organisation requires a description")
            && screen.contains("✗ this organisation requires an expiry date"),
        "{screen}"
    );
    assert!(w.keys().await.is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_an_old_key_says_the_policy_caps_its_expiry() {
    let w = World::new().await;
    w.create(json!({"name": "Forever", "scopes": ["sessions:read"]}))
        .await;
    set_policy(&w, json!({"max_lifetime_days": 30})).await;
    let mut ui = w.ui(COLOR, 100, 34).await;
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("New expiry: Thu 2030-02-14 09:00 (policy: at most 30 days)."),
        "{screen}"
    );
    ui.press(KeyCode::Char('y')).await;
    let secret = secret_on(&ui.screen());
    assert_eq!(w.auth(&secret, "sessions:read").await, 200);
    // The old key keeps working for the grace period (1 hour), until 10:00.
    let rotated = w
        .keys()
        .await
        .into_iter()
        .find(|k| k["prefix"].as_str() == Some(&secret[..12]))
        .unwrap();
    assert_eq!(
        rotated["expires_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        start_time() + Duration::days(30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_counts_the_keys_that_break_the_policy() {
    let w = World::new().await;
    let at = |days| (start_time() + Duration::days(days)).to_rfc3339();
    w.create(json!({"name": "Forever", "scopes": ["sessions:read"]}))
        .await;
    w.create(json!({"name": "Long", "scopes": ["sessions:read"], "expires_at": at(200)}))
        .await;
    w.create(json!({"name": "Short", "scopes": ["sessions:read"], "expires_at": at(60)}))
        .await;
    let mut ui = w.ui(COLOR, 120, 34).await;
    let summary = |ui: &mut Harness| ui.screen().lines().nth(1).unwrap().trim().to_owned();
    assert_eq!(summary(&mut ui), "3 active", "no policy, nothing breaks it");

    set_policy(&w, json!({"max_lifetime_days": 90})).await;
    ui.press(KeyCode::Char('r')).await;
    assert_eq!(summary(&mut ui), "3 active · 2 break policy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_offers_only_what_the_policy_allows_and_refuses_before_enter() {
    let w = World::new().await;
    set_policy(&w, json!({"max_lifetime_days": 90})).await;
    let mut ui = w.ui(COLOR, 100, 34).await;
    ui.press(KeyCode::Char('n')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("e.g. 7d, 30d, 90d or a date up to 2030-04-14"),
        "examples within 90 days:\n{screen}"
    );
    assert!(
        !screen.contains("1y") && !screen.contains("empty for none"),
        "{screen}"
    );
    ui.type_text("Nightly export").await;
    press_n(&mut ui, KeyCode::Tab, 2).await; // Expiry
    press_n(&mut ui, KeyCode::Backspace, 3).await;

    // Empty is refused at once, before Enter.
    let screen = ui.screen();
    assert!(
        screen.contains("✗ an expiry is required (at most 90 days)")
            && !screen.contains("No expiry: the key stays valid"),
        "{screen}"
    );

    // A longer span: the refusal, with the latest expiry, as it is typed.
    ui.type_text("1y").await;
    let screen = ui.screen();
    assert!(
        screen.contains("✗ at most 90 days: Mon 2030-04-15 09:00 is the latest")
            && !screen.contains("expires "),
        "{screen}"
    );
    insta::assert_snapshot!("policy_form_live_refusal", screen);
    assert!(w.keys().await.is_empty(), "nothing was sent");

    // The latest date offered is accepted, the day after it is not.
    press_n(&mut ui, KeyCode::Backspace, 2).await;
    ui.type_text("2030-04-14").await;
    assert!(
        ui.screen()
            .contains("expires Sun 2030-04-14 (valid through that whole day)"),
        "{}",
        ui.screen()
    );
    ui.press(KeyCode::Backspace).await;
    ui.type_text("5").await;
    assert!(
        ui.screen().contains("✗ at most 90 days:"),
        "{}",
        ui.screen()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_required_without_a_maximum_is_asked_for_at_once() {
    let w = World::new().await;
    set_policy(&w, json!({"require_expiry": true})).await;
    let mut ui = w.ui(COLOR, 100, 34).await;
    ui.press(KeyCode::Char('n')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("e.g. 30d, 90d, 1y, 2027-01-31") && !screen.contains("empty for none"),
        "{screen}"
    );
    assert!(screen.contains("✗ an expiry is required"), "{screen}");
    press_n(&mut ui, KeyCode::Tab, 2).await; // Expiry
    ui.type_text("1y").await;
    let screen = ui.screen();
    assert!(
        screen.contains("expires ") && !screen.contains("✗"),
        "no maximum: a year is fine\n{screen}"
    );
}

// Something that is neither a date nor a span, under a policy: the refusal
// gives the policy's examples, not the generic words offering `1y` and an
// empty field (found walking the form over SSH at 80×24).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_under_a_policy_is_answered_with_the_policys_examples() {
    let w = World::new().await;
    for (policy, examples) in [
        (
            json!({"max_lifetime_days": 90}),
            "e.g. 7d, 30d, 90d or a date up to 2030-04-14",
        ),
        (
            json!({"max_lifetime_days": null, "require_expiry": true}),
            "e.g. 30d, 90d, 1y, 2027-01-31",
        ),
    ] {
        set_policy(&w, policy).await;
        let mut ui = w.ui(COLOR, 100, 34).await;
        ui.press(KeyCode::Char('n')).await;
        ui.type_text("Nightly export").await;
        press_n(&mut ui, KeyCode::Tab, 2).await; // Expiry
        press_n(&mut ui, KeyCode::Backspace, 3).await;
        ui.type_text("abc").await;
        let screen = ui.screen();
        let lines: Vec<&str> = screen.lines().map(|l| l.trim_matches([' ', '│'])).collect();
        let at = lines
            .iter()
            .position(|l| *l == "✗ not a date or a span like the examples below")
            .unwrap_or_else(|| panic!("the refusal on a line of its own:\n{screen}"));
        assert_eq!(lines[at + 1], examples, "{screen}");
        assert!(!screen.contains("leave empty"), "{screen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotate_dialog_says_once_what_the_new_expiry_will_be_and_why() {
    let w = World::new().await;
    let at = |days| (start_time() + Duration::days(days)).to_rfc3339();
    w.create(json!({"name": "Long", "scopes": ["sessions:read"], "expires_at": at(200)}))
        .await;
    w.create(json!({"name": "Short", "scopes": ["sessions:read"], "expires_at": at(10)}))
        .await;
    set_policy(&w, json!({"max_lifetime_days": 30})).await;
    let mut ui = w.ui(COLOR, 100, 34).await;

    ui.press(KeyCode::Char('/')).await;
    ui.type_text("Long").await;
    ui.press(KeyCode::Enter).await;
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("New expiry: Thu 2030-02-14 09:00 (policy: at most 30 days)."),
        "{screen}"
    );
    assert!(
        !screen.contains("scopes and expiry") && screen.matches("expiry").count() == 1,
        "said once:\n{screen}"
    );
    insta::with_settings!({filters => vec![(r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"), (r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX...")]}, {
        insta::assert_snapshot!("policy_rotate_dialog", screen);
    });
    ui.press(KeyCode::Esc).await;
    ui.press(KeyCode::Esc).await; // the filter

    ui.press(KeyCode::Char('/')).await;
    ui.type_text("Short").await;
    ui.press(KeyCode::Enter).await;
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("New expiry: Fri 2030-01-25 09:00 (the same as the old key)."),
        "{screen}"
    );
}
