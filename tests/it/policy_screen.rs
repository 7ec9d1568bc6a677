//! The policy screen (`P`) driven by key events in `TestBackend` against the
//! real service, both backends: every field shown with its value and
//! meaning; rotation and unused days changed, the changes old → new asked
//! for, then in force (`GET /v1/policy`) and in the table's badges and
//! summary line at once, in a small table and in a window; a value out of
//! its limits refused at its field with the service's words and nothing
//! sent; Esc and a no change nothing; and over SSH, audited with its key.

use std::sync::Arc;

use chrono::Duration;
use crossterm::event::KeyCode;
use keydeck::client::Client;
use keydeck::clock::{Clock, ManualClock};
use keydeck::key::Secret;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use serde_json::{json, Value};

use crate::common::ui::{past_gutter, start_time, World};
use crate::common::{Backend, TestServer};

on_both_backends!(
    the_screen_shows_every_field_and_a_save_moves_the_badges,
    a_value_out_of_its_limits_is_refused_at_its_field_and_esc_changes_nothing,
    in_a_window_the_badges_follow_the_saved_policy,
);

const NO_COLOR: Theme = Theme { color: false };

async fn world(backend: Backend) -> World {
    let clock = Arc::new(ManualClock::new(start_time()));
    let server = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    World {
        server,
        clock,
        backend,
    }
}

async fn policy(w: &World) -> Value {
    let r = w
        .server
        .get("/v1/policy", &w.server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A key made at the start, never used, and the clock 40 days on: under
/// the default policy it is `unused` (30 days) and not yet due for
/// rotation (90 days).
async fn idle_key(w: &World, name: &str) {
    w.create(json!({"name": name, "scopes": ["sessions:read"]}))
        .await;
    w.clock.set(start_time() + Duration::days(40));
}

/// The screen line of the row for `name`.
fn row(screen: &str, name: &str) -> String {
    screen
        .lines()
        .find(|l| past_gutter(l).trim_start().starts_with(name))
        .unwrap_or_else(|| panic!("no row {name}:\n{screen}"))
        .to_owned()
}

async fn press_n(ui: &mut Harness, code: KeyCode, times: usize) {
    for _ in 0..times {
        ui.press(code).await;
    }
}

/// From the screen's first field: rotation due after 30 days, unused after 60.
async fn edit_rotation_and_unused(ui: &mut Harness) {
    ui.press(KeyCode::Char('j')).await; // Rotation due after
    press_n(ui, KeyCode::Backspace, 2).await;
    ui.type_text("30").await;
    ui.press(KeyCode::Down).await; // Unused after
    press_n(ui, KeyCode::Backspace, 2).await;
    ui.type_text("60").await;
}

async fn the_screen_shows_every_field_and_a_save_moves_the_badges(backend: Backend) {
    let w = world(backend).await;
    idle_key(&w, "Nightly export").await;
    let mut ui = w.ui(NO_COLOR, 120, 32).await;
    let screen = ui.screen();
    let before = row(&screen, "Nightly export");
    assert!(
        before.contains("unused") && !before.contains("rotate"),
        "{screen}"
    );
    assert!(screen.contains("1 unused 30d+"), "{screen}");
    assert!(!screen.contains("rotation due"), "{screen}");

    // Every field, its value and its meaning.
    ui.press(KeyCode::Char('P')).await;
    let screen = ui.screen();
    for (label, value, meaning) in [
        ("Expiring within", "7█ days", "badge expiring"), // selected: the cursor
        ("Rotation due after", "90 days", "badge rotate"),
        ("Unused after", "30 days", "badge unused"),
        ("Max lifetime", "none", "longest expiry of a new key"),
        (
            "Require expiry",
            "[ ] no",
            "new keys must have an expiry date",
        ),
        (
            "Require description",
            "[ ] no",
            "new keys must have a description",
        ),
        (
            "On leak",
            "‹ revoke ›",
            "a leak report: revoke, rotate or flag",
        ),
        ("Leak grace", "3600 s", "old key works this long"),
    ] {
        let line = screen
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no {label}:\n{screen}"));
        assert!(
            line.contains(value) && line.contains(meaning),
            "{label}: {line}\n{screen}"
        );
    }
    assert!(screen.contains("Organisation policy"), "{screen}");
    assert!(
        screen.contains("j/k move · Space toggle · Enter save · Esc cancel"),
        "{screen}"
    );

    // Changed, then the changes asked for: a no keeps the screen and sends nothing.
    edit_rotation_and_unused(&mut ui).await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Rotation due after: 90 days → 30 days"),
        "{screen}"
    );
    assert!(
        screen.contains("Unused after: 30 days → 60 days"),
        "{screen}"
    );
    assert!(
        !screen.contains("Expiring within:"),
        "only what changed:\n{screen}"
    );
    ui.press(KeyCode::Char('n')).await;
    assert_eq!(ui.app.popups().len(), 1, "back on the screen");
    assert_eq!(policy(&w).await["rotate_after_days"], 90, "nothing sent");

    // Yes: saved, in force, and the table's badges and summary follow.
    ui.press(KeyCode::Enter).await;
    ui.press(KeyCode::Char('y')).await;
    assert!(ui.app.popups().is_empty(), "{}", ui.screen());
    let saved = policy(&w).await;
    assert_eq!(saved["rotate_after_days"], 30, "{saved}");
    assert_eq!(saved["unused_after_days"], 60, "{saved}");
    assert_eq!(saved["expiring_within_days"], 7, "{saved}");
    assert_eq!(ui.app.policy.rotate_after_days, 30);
    let screen = ui.screen();
    let after = row(&screen, "Nightly export");
    assert!(
        after.contains("rotate") && !after.contains("unused"),
        "{screen}"
    );
    assert!(screen.contains("1 rotation due"), "{screen}");
    assert!(!screen.contains("unused 30d+"), "{screen}");
    assert!(screen.contains("Policy saved"), "{screen}");

    // Opened again, it shows the policy in force.
    ui.press(KeyCode::Char('P')).await;
    let screen = ui.screen();
    let line = screen
        .lines()
        .find(|l| l.contains("Rotation due after"))
        .unwrap();
    assert!(line.contains("30 days"), "{screen}");
}

async fn a_value_out_of_its_limits_is_refused_at_its_field_and_esc_changes_nothing(
    backend: Backend,
) {
    let w = world(backend).await;
    idle_key(&w, "Nightly export").await;
    let mut ui = w.ui(NO_COLOR, 120, 32).await;
    let default = policy(&w).await;

    ui.press(KeyCode::Char('P')).await;
    ui.press(KeyCode::Char('j')).await; // Rotation due after
    press_n(&mut ui, KeyCode::Backspace, 2).await;
    ui.type_text("0").await;
    ui.press(KeyCode::Down).await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("✗ rotate_after_days must be between 1 and 3650 days, not 0"),
        "{screen}"
    );
    assert_eq!(ui.app.popups().len(), 1, "no question asked:\n{screen}");
    // The message sits under its field, and the focus went back to it.
    let lines: Vec<&str> = screen.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("Rotation due after"))
        .unwrap();
    assert!(lines[at].contains('›'), "{screen}");
    assert!(lines[at + 1].contains("✗ rotate_after_days"), "{screen}");

    // Over the limit, the same; and the leak grace's own limit.
    ui.press(KeyCode::Backspace).await;
    ui.type_text("4000").await;
    ui.press(KeyCode::Enter).await;
    assert!(ui
        .screen()
        .contains("✗ rotate_after_days must be between 1 and 3650 days, not 4000"));
    press_n(&mut ui, KeyCode::Backspace, 4).await;
    assert!(!ui.screen().contains('✗'), "typing clears it");
    ui.type_text("90").await;
    press_n(&mut ui, KeyCode::Down, 6).await; // Leak grace
    ui.type_text("0").await; // 36000
    ui.press(KeyCode::Enter).await;
    assert_eq!(ui.app.popups().len(), 2, "36000 s is within a day");
    ui.press(KeyCode::Esc).await; // no
    ui.type_text("0").await; // 360000
    ui.press(KeyCode::Enter).await;
    assert!(
        ui.screen()
            .contains("✗ leak_grace_seconds must be between 0 and 86400, not 360000"),
        "{}",
        ui.screen()
    );
    assert_eq!(policy(&w).await, default, "nothing was sent");

    // Esc leaves without a change, edits and all.
    ui.press(KeyCode::Esc).await;
    assert!(ui.app.popups().is_empty(), "{}", ui.screen());
    assert_eq!(policy(&w).await, default);
    assert_eq!(ui.app.policy.leak_grace_seconds, 3600);
    let screen = ui.screen();
    assert!(
        row(&screen, "Nightly export").contains("unused"),
        "{screen}"
    );

    // Edited, then Esc: still nothing.
    ui.press(KeyCode::Char('P')).await;
    edit_rotation_and_unused(&mut ui).await;
    ui.press(KeyCode::Char(' ')).await; // nothing to toggle on a number
    press_n(&mut ui, KeyCode::Down, 3).await; // Require description
    ui.press(KeyCode::Char(' ')).await;
    assert!(ui.screen().contains("[x] yes"), "{}", ui.screen());
    ui.press(KeyCode::Esc).await;
    assert!(ui.app.popups().is_empty());
    assert_eq!(policy(&w).await, default);
    assert_eq!(ui.app.policy.rotate_after_days, 90);

    // Nothing changed: Enter says so and asks nothing.
    ui.press(KeyCode::Char('P')).await;
    ui.press(KeyCode::Enter).await;
    assert!(ui.screen().contains("Nothing changed"), "{}", ui.screen());
    assert_eq!(ui.app.popups().len(), 1);
}

async fn in_a_window_the_badges_follow_the_saved_policy(backend: Backend) {
    let w = world(backend).await;
    for i in 0..4 {
        w.create(json!({"name": format!("Batch {i}"), "scopes": ["sessions:read"]}))
            .await;
    }
    w.clock.set(start_time() + Duration::days(40));
    let client = Client::new(&w.server.base, Secret::new(w.server.admin_token.clone())).unwrap();
    let clock: Arc<dyn Clock> = w.clock.clone();
    // A table that holds 2 keys: the 4 are read as a window, badges from the service.
    let mut ui = Harness::start_with(client, clock, NO_COLOR, (120, 32), |app| {
        app.set_capacity(2);
        app.set_refresh_every(Duration::days(1));
    })
    .await;
    let screen = ui.screen();
    assert!(row(&screen, "Batch 3").contains("unused"), "{screen}");

    ui.press(KeyCode::Char('P')).await;
    edit_rotation_and_unused(&mut ui).await;
    ui.press(KeyCode::Enter).await;
    ui.press(KeyCode::Char('y')).await;
    assert_eq!(policy(&w).await["unused_after_days"], 60);
    let screen = ui.screen();
    let after = row(&screen, "Batch 3");
    assert!(
        after.contains("rotate") && !after.contains("unused"),
        "{screen}"
    );
    assert!(screen.contains("4 rotation due"), "{screen}");
}

// Over SSH (russh's client, the UI on its PTY, 80×24): the same screen and
// save; the change audited with the SSH key that made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_saves_over_ssh() {
    use crate::common::ssh::{self, UiSession};
    let backend = Backend::sqlite();
    let server = TestServer::start_with_ssh(
        &backend,
        Arc::new(keydeck::clock::SystemClock),
        |_| {},
        Some(keydeck::ssh::SshConfig::new("127.0.0.1:0".parse().unwrap())),
    )
    .await;
    let key = ssh::new_key();
    let fingerprint =
        ssh::add_key(server.running.state.store.as_ref(), "admin@localhost", &key).await;
    let handle = ssh::connect(ssh::addr(&server), &key)
        .await
        .expect("the key is accepted");
    let mut ui = UiSession::open(&handle, 80, 24, &[]).await;
    ui.wait_for("0 keys").await;
    ui.send(b"P").await;
    let screen = ui.wait_for("Organisation policy").await;
    assert!(screen.contains("Rotation due after  90 days"), "{screen}");
    assert!(screen.contains("Leak grace          3600 s"), "{screen}");
    ui.send(b"j\x7f\x7f30").await;
    ui.wait_for("30█ days").await;
    ui.send(b"\r").await;
    ui.wait_for("Rotation due after: 90 days → 30 days").await;
    ui.send(b"y").await;
    ui.wait_for("Policy saved").await;
    let policy = server.get_json("/v1/policy", &server.admin_token).await;
    assert_eq!(policy["rotate_after_days"], 30, "{policy}");
    let audit = server.get_json("/v1/audit-logs", &server.admin_token).await;
    let entry = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "policy.updated")
        .unwrap_or_else(|| panic!("policy.updated in {audit}"))
        .clone();
    assert_eq!(
        entry["details"]["via"],
        format!("ssh {fingerprint}"),
        "{entry}"
    );
    assert_eq!(entry["details"]["old"]["rotate_after_days"], 90, "{entry}");
    assert_eq!(entry["details"]["new"]["rotate_after_days"], 30, "{entry}");
    server.stop().await;
}

/// The screen at 80×24, no colour: what an admin sees on a small terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_at_80x24() {
    let w = world(Backend::sqlite()).await;
    idle_key(&w, "Nightly export").await;
    let mut ui = w.ui(NO_COLOR, 80, 24).await;
    ui.press(KeyCode::Char('P')).await;
    press_n(&mut ui, KeyCode::Down, 4).await; // Require expiry
    ui.press(KeyCode::Char(' ')).await;
    insta::with_settings!({filters => vec![(r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX...")]}, {
        insta::assert_snapshot!("policy_screen_80x24", ui.screen());
    });
}
