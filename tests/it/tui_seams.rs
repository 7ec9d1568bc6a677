//! Seams of the key table's dialogs and lines, in `TestBackend` against the
//! real service on both backends: a failed request's line names the key
//! that sends it again only where one does (the keymap's); the revoke
//! dialog for marked keys lists them in the table's order (in a window too)
//! and says which keys nothing can use (no secret yet); `R` with keys
//! marked says it rotates the selected key alone; quitting's help line says
//! it waits for changes on their way, as it does.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use keydeck::client::Client;
use keydeck::clock::ManualClock;
use keydeck::key::Secret;
use keydeck::tui::action::Action;
use keydeck::tui::keymap::{self, Command, Context};
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use serde_json::{json, Value};

use crate::common::ui::{start_time, World};
use crate::common::{manual_clock, Backend, TestServer};

on_both_backends!(
    a_failed_requests_line_names_the_key_that_retries_it_only_where_one_does,
    the_marked_revoke_dialog_lists_the_table_order_in_a_window,
    the_marked_revoke_dialog_says_which_keys_nothing_can_use,
    the_marked_revoke_dialog_says_which_keys_nothing_can_use_in_a_window,
    rotate_with_keys_marked_says_it_rotates_the_selected_key_alone,
);

const PLAIN: Theme = Theme { color: false };

/// Longer than the store guard's deadline (1.5 s): a request fails (503).
const STUCK: StdDuration = StdDuration::from_secs(5);

async fn world(backend: Backend) -> World {
    let clock = Arc::new(ManualClock::new(start_time()));
    let server = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    World {
        server,
        clock,
        backend,
    }
}

/// The key the keymap binds to `command` in `context`, as a key press.
fn key_event(context: Context, command: Command) -> KeyCode {
    let label = keymap::key_of(context, command).expect("a key for it");
    let mut chars = label.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => KeyCode::Char(c),
        _ => panic!("not a one-character key: {label}"),
    }
}

async fn a_failed_requests_line_names_the_key_that_retries_it_only_where_one_does(
    backend: Backend,
) {
    let w = world(backend).await;
    w.server.create_key("alpha", &["sessions:read"]).await;
    let mut ui = w.ui(PLAIN, 120, 32).await;
    let refresh = keymap::key_of(Context::Table, Command::Refresh).unwrap();

    // A revoke that fails (503): nothing sends it again by itself and `r`
    // would only refresh, so its line names no key.
    ui.press(KeyCode::Char('d')).await;
    w.server.running.store_guard.set_delay(STUCK);
    ui.press(KeyCode::Char('y')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Not revoked: The key service answered with an error:"),
        "{screen}"
    );
    assert!(!screen.contains("Press"), "{screen}");

    // The list fails to load: the banner names the table's refresh key,
    // and that key loads it again.
    ui.press(key_event(Context::Table, Command::Refresh)).await;
    let screen = ui.screen();
    assert!(
        screen.contains(&format!("Press {refresh} to retry.")),
        "{screen}"
    );
    // The service's words end a sentence once.
    assert!(!screen.contains(".. Press"), "{screen}");
    w.server.running.store_guard.set_delay(StdDuration::ZERO);
    ui.press(key_event(Context::Table, Command::Refresh)).await;
    let screen = ui.screen();
    assert!(!screen.contains("to retry"), "{screen}");
    assert_eq!(w.keys().await[0]["status"], "active");
    w.server.stop().await;
    w.backend.cleanup().await;
}

/// The text inside the popup on top (between its side borders), its
/// wrapped lines joined, spaces collapsed: what it says, as one line.
fn popup_text(screen: &str) -> String {
    let inside: Vec<&str> = screen
        .lines()
        .filter_map(|l| l.split_once('│').map(|(_, rest)| rest))
        .map(|rest| rest.rfind(['│', '█', '║']).map_or(rest, |end| &rest[..end]))
        .collect();
    inside
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The names in the dialog's list (`  • “name”  …`), in order.
fn listed(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| l.split_once("• “"))
        .filter_map(|(_, rest)| rest.split_once('”'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

async fn the_marked_revoke_dialog_lists_the_table_order_in_a_window(backend: Backend) {
    let w = world(backend).await;
    for i in 0..40 {
        w.server
            .create_key(&format!("key{i:02}"), &["sessions:read"])
            .await;
        w.clock.advance(Duration::seconds(1));
    }
    let client = Client::new(&w.server.base, Secret::new(w.server.admin_token.clone())).unwrap();
    let mut ui = Harness::start_with(client, w.clock.clone(), PLAIN, (120, 24), |app| {
        app.set_capacity(20)
    })
    .await;
    ui.app.set_refresh_every(Duration::days(1));
    assert!(ui.app.windowed());
    // The top three rows marked (newest first), and the bottom three; back
    // at the top, the bottom ones are not held.
    ui.press(KeyCode::Home).await;
    for _ in 0..3 {
        ui.press(KeyCode::Char(' ')).await;
    }
    ui.press(KeyCode::End).await;
    ui.press(KeyCode::Up).await;
    ui.press(KeyCode::Up).await;
    for _ in 0..3 {
        ui.press(KeyCode::Char(' ')).await;
    }
    ui.press(KeyCode::Home).await;
    assert_eq!(ui.app.marked().len(), 6);
    let marked_held: Vec<String> = ui
        .app
        .keys()
        .iter()
        .filter(|k| ui.app.marked().contains(&k.id))
        .map(|k| k.name.clone())
        .collect();
    assert_eq!(
        marked_held,
        ["key39", "key38", "key37"],
        "the table's top rows"
    );
    assert!(ui.app.keys().len() < 37, "the bottom rows are not held");
    // Those not held after them, by id.
    let mut rest: Vec<(String, String)> = w
        .keys()
        .await
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_owned(),
                k["name"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(_, name)| ["key00", "key01", "key02"].contains(&name.as_str()))
        .collect();
    rest.sort();
    let mut want = marked_held.clone();
    want.extend(rest.into_iter().map(|(_, name)| name));

    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke the marked keys: 6 keys?"),
        "{screen}"
    );
    assert_eq!(listed(&screen), want, "{screen}");
    ui.press(KeyCode::Char('n')).await;
    w.server.stop().await;
    w.backend.cleanup().await;
}

async fn the_marked_revoke_dialog_says_which_keys_nothing_can_use(backend: Backend) {
    no_secret_scenario(backend, None).await
}

async fn the_marked_revoke_dialog_says_which_keys_nothing_can_use_in_a_window(backend: Backend) {
    no_secret_scenario(backend, Some(2)).await
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

/// Selects the row of the key named `name` (from the top, a row at a time).
async fn select(ui: &mut Harness, name: &str) {
    ui.press(KeyCode::Home).await;
    for _ in 0..10 {
        if ui.app.selected_key().is_some_and(|k| k.name == name) {
            return;
        }
        ui.press(KeyCode::Down).await;
    }
    panic!("no row for {name} in:\n{}", ui.screen());
}

async fn mark(ui: &mut Harness, names: &[&str]) {
    for name in names {
        select(ui, name).await;
        ui.press(KeyCode::Char(' ')).await;
    }
}

/// alpha, bravo and Billing, whose leak (policy: rotate) made a successor
/// without a secret, also named Billing.
async fn no_secret_scenario(backend: Backend, capacity: Option<usize>) {
    let now: DateTime<Utc> = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let clock = manual_clock(now - Duration::days(10));
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    send(
        &s,
        reqwest::Method::PUT,
        "/v1/policy",
        json!({"on_leak": "rotate", "leak_grace_seconds": 3600}),
    )
    .await;
    let mut billing_secret = String::new();
    for name in ["alpha", "bravo", "Billing"] {
        let (_, secret) = s.create_key(name, &["sessions:read"]).await;
        billing_secret = secret;
        clock.advance(Duration::seconds(1));
    }
    clock.set(now - Duration::minutes(10));
    send(
        &s,
        reqwest::Method::POST,
        "/v1/leaks",
        json!({"token": billing_secret, "location": ".env:3", "source": "keydeck-scan"}),
    )
    .await;
    clock.set(now);
    let client = Client::new(&s.base, Secret::new(s.admin_token.clone())).unwrap();
    let mut ui = Harness::start_with(client, clock.clone(), PLAIN, (120, 30), |app| {
        if let Some(n) = capacity {
            app.set_capacity(n)
        }
    })
    .await;
    ui.app.set_refresh_every(Duration::days(1));
    let successor = ui
        .app
        .keys()
        .iter()
        .find(|k| k.secret_pending)
        .map(|k| k.id.clone());
    // The successor is the newest key: the top row.
    ui.press(KeyCode::Home).await;
    let top = ui.app.selected_key().unwrap().clone();
    assert!(top.secret_pending, "{top:?}");
    if let Some(id) = successor {
        assert_eq!(id, top.id);
    }

    // The successor alone: it has no secret, and nothing can use it.
    ui.press(KeyCode::Char(' ')).await;
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke the marked keys: 1 key?")
            && screen.contains("• “Billing”  no secret yet"),
        "{screen}"
    );
    assert!(!screen.contains("eg_live_..."), "{screen}");
    assert!(
        popup_text(&screen)
            .contains("Nothing can use it: it has no secret yet, so no application loses access."),
        "{screen}"
    );
    assert!(!screen.contains("immediately"), "{screen}");
    ui.press(KeyCode::Char('n')).await;

    // With alpha: only alpha's applications lose access.
    mark(&mut ui, &["alpha"]).await;
    assert_eq!(ui.app.marked().len(), 2);
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke the marked keys: 2 keys?")
            && screen.contains("• “Billing”  no secret yet")
            && screen.contains("• “alpha”  eg_live_"),
        "{screen}"
    );
    let flat = popup_text(&screen);
    assert!(
        flat.contains("Any applications using the 1 key that works will immediately lose access; nothing can use the other 1 (1 has no secret yet)."),
        "{screen}"
    );
    ui.press(KeyCode::Char('y')).await;
    let keys = s.get_json("/v1/api-keys", &s.admin_token).await;
    for k in keys["data"].as_array().unwrap() {
        let revoked = !k["revoked_at"].is_null();
        let marked = k["id"] == top.id.as_str() || k["name"] == "alpha";
        assert_eq!(revoked, marked, "{k}");
    }
    s.stop().await;
    backend.cleanup().await;
}

async fn rotate_with_keys_marked_says_it_rotates_the_selected_key_alone(backend: Backend) {
    let w = world(backend).await;
    for name in ["alpha", "bravo", "charlie"] {
        w.server.create_key(name, &["sessions:read"]).await;
        w.clock.advance(Duration::seconds(1));
    }
    let mut ui = w.ui(PLAIN, 120, 32).await;
    let revoke = keymap::key_of(Context::Table, Command::Revoke).unwrap();
    // No marks: the dialog says nothing of them.
    select(&mut ui, "bravo").await;
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    assert!(screen.contains("“bravo”"), "{screen}");
    assert!(!screen.contains("marked"), "{screen}");
    ui.press(KeyCode::Esc).await;

    // alpha and charlie marked, bravo selected: R is about bravo alone.
    mark(&mut ui, &["alpha", "charlie"]).await;
    assert_eq!(ui.app.marked().len(), 2);
    select(&mut ui, "bravo").await;
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    let flat = popup_text(&screen);
    assert!(
        flat.contains(&format!(
            "Only this key, the selected one, is rotated: the 2 marked keys are for {revoke} (revoke) and stay marked."
        )),
        "{screen}"
    );
    assert!(
        screen.contains("“bravo”") && !screen.contains("“alpha”"),
        "{screen}"
    );
    assert_eq!(
        keymap::command(
            Context::Table,
            &keymap::char_key(revoke.chars().next().unwrap())
        ),
        Some(Command::Revoke)
    );
    // Yes rotates bravo; the marks stay.
    ui.press(KeyCode::Char('y')).await;
    let keys = w.keys().await;
    let replaced = |name: &str| {
        keys.iter()
            .filter(|k| k["name"] == name)
            .any(|k| !k["replaced_by"].is_null())
    };
    assert!(replaced("bravo"));
    assert!(!replaced("alpha") && !replaced("charlie"));
    assert_eq!(ui.app.marked().len(), 2);
    w.server.stop().await;
    w.backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quits_help_line_says_it_waits_for_changes_on_their_way_as_it_does() {
    let w = World::new().await;
    w.server.create_key("Going away", &["sessions:read"]).await;
    let mut ui = w.ui(PLAIN, 120, 40).await;
    // The help screen's quit line (searched for).
    ui.press(KeyCode::Char('?')).await;
    ui.press(KeyCode::Char('/')).await;
    ui.type_text("Ctrl-C").await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    let flat = popup_text(&screen);
    assert!(
        flat.contains("q / Ctrl-C quit (in a popup, Esc goes back first) q / Ctrl-C first waits for a key create/revoke/rotate, a policy save"),
        "{screen}"
    );
    while !ui.app.popups().is_empty() {
        ui.press(KeyCode::Esc).await;
    }
    // As it does: q while a revoke is on its way waits; q again quits now.
    let key = |c: char| Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    ui.press(KeyCode::Char('d')).await;
    ui.app.update(key('y'));
    ui.app.update(key('q'));
    assert!(!ui.app.should_quit() && ui.app.quit_pending());
    ui.app.update(key('q'));
    assert!(ui.app.should_quit());
}
