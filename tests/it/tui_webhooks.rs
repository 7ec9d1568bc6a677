//! The webhooks screen (`W`, issue 24) through the real UI against the real
//! service (its targets on loopback allowed): add an endpoint (the service's
//! objection at the field, then the secret in the copy-once modal), see it
//! listed with its health, test it (the receiver, axum on loopback, gets the
//! event, the deliveries say so), remove it; enable a disabled endpoint and
//! give one a new signing secret (asked first, shown once; both secrets sign
//! during the overlap), here and over SSH; scroll a long list of deliveries
//! read a page at a time; the help (`?`) says every key of these screens.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use crossterm::event::KeyCode;
use keydeck::clock::ManualClock;
use keydeck::tui::keymap;
use keydeck::tui::theme::Theme;

use crate::common::ui::{start_time, World};
use crate::common::{Backend, TestServer};
use crate::webhooks::{add_webhook, run_sql, verifies, Receiver as Inbox};

on_both_backends!(
    add_test_and_remove_an_endpoint_from_the_screen,
    enable_and_a_new_signing_secret_from_the_screen,
    deliveries_scroll_a_page_at_a_time,
);

/// The event types each request the receiver got was.
#[derive(Clone, Default)]
struct Receiver {
    types: Arc<Mutex<Vec<String>>>,
}

async fn receive(State(rx): State<Receiver>, body: String) -> &'static str {
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let kind = v["type"].as_str().unwrap_or("?").to_owned();
    rx.types.lock().unwrap().push(kind);
    "ok"
}

/// A receiver on loopback; its `/hook` URL.
async fn receiver() -> (Receiver, String) {
    let rx = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (rx, format!("http://{addr}/hook"))
}

async fn world(backend: Backend) -> World {
    let clock = Arc::new(ManualClock::new(start_time()));
    let server = TestServer::start_with(&backend, clock.clone(), |config| {
        config.webhooks.allow_private = true;
        config.webhooks.poll = Duration::from_millis(30);
        config.webhooks.scan = Duration::from_millis(30);
    })
    .await;
    World {
        server,
        clock,
        backend,
    }
}

/// `?` then `End`: the help's webhooks sections, each key of the endpoints,
/// deliveries and add-form screens with what it does, under its heading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_says_every_key_of_the_webhook_screens() {
    let w = World::new().await;
    let mut ui = w.ui(Theme { color: false }, 100, 50).await;
    ui.press(KeyCode::Char('?')).await;
    assert!(ui.screen().contains(" Help "));
    ui.press(KeyCode::End).await;
    let screen = ui.screen();
    let sections = keymap::help_sections(chrono::Duration::seconds(30));
    let mut at = 0;
    for heading in [
        "Webhooks (W)",
        "Webhook deliveries (Enter on an endpoint)",
        "Webhook add form (a)",
    ] {
        let (_, lines) = sections.iter().find(|(h, _)| *h == heading).unwrap();
        assert!(lines.len() >= 3, "{heading}: {lines:?}");
        // The heading, then its lines in order, after the section before.
        at += screen[at..]
            .find(&format!("│{heading}"))
            .unwrap_or_else(|| panic!("{heading} after the last section:\n{screen}"));
        for (keys, text) in lines {
            let line = format!("  {keys:<13}{text}");
            at += screen[at..]
                .find(&line)
                .unwrap_or_else(|| panic!("{line:?} under {heading}:\n{screen}"));
        }
    }
    for said in [
        "  j / ↓        next endpoint",
        "  a / n        add an endpoint: its URL and events",
        "  t            send the selected endpoint a webhook.test event",
        "  e            enable an endpoint disabled after a day of failures",
        "  d / Delete   remove the selected endpoint and its deliveries (asks)",
        "  G / End      the oldest deliveries",
        "  Esc / q / W  back to the endpoints",
        "  Tab / ↓      next field (Shift-Tab / ↑ back)",
    ] {
        assert!(screen.contains(said), "{said:?} in help:\n{screen}");
    }
    // `/` finds them by their words too.
    ui.press(KeyCode::Char('/')).await;
    ui.type_text("endpoint").await;
    let found = ui.screen();
    assert!(
        found.contains("Webhooks (W)")
            && found.contains("  Enter        the selected endpoint's deliveries"),
        "{found}"
    );
    assert!(!found.contains("next key"), "{found}");
    w.server.stop().await;
}

async fn add_test_and_remove_an_endpoint_from_the_screen(backend: Backend) {
    let (rx, url) = receiver().await;
    let w = world(backend).await;
    let mut ui = w.ui(Theme { color: false }, 80, 24).await;

    ui.press(KeyCode::Char('W')).await;
    let screen = ui.screen();
    assert!(screen.contains("Webhooks · 0 endpoints"), "{screen}");
    assert!(screen.contains("No endpoints yet"), "{screen}");

    // The service refuses a URL it cannot send to: its words at the field.
    ui.press(KeyCode::Char('a')).await;
    ui.type_text("ftp://example.com/x").await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    let lines: Vec<&str> = screen.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("URL"))
        .unwrap_or_else(|| panic!("no URL field:\n{screen}"));
    assert!(
        lines[at + 1].contains("✗") && lines[at + 1].contains("http"),
        "the service's message under the URL:\n{screen}"
    );
    for _ in 0.."ftp://example.com/x".len() {
        ui.press(KeyCode::Backspace).await;
    }
    ui.type_text(&url).await;
    ui.press(KeyCode::Enter).await;

    // The secret, once, in the copy-once modal.
    let screen = ui.screen();
    assert!(
        screen.contains("Copy the signing secret now"),
        "copy-once modal:\n{screen}"
    );
    let secret = screen
        .split(|c: char| c.is_whitespace() || c == '│')
        .find(|w| w.starts_with("whsec_"))
        .unwrap_or_else(|| panic!("no secret shown:\n{screen}"))
        .to_owned();
    assert!(secret.len() > 20, "{secret}");
    ui.press(KeyCode::Char('c')).await;
    assert_eq!(ui.clipboard.written.len(), 1);
    assert!(ui.screen().contains("✓ Sent to your terminal's clipboard"));
    ui.press(KeyCode::Enter).await;

    // Listed, with its health; the service has it.
    let screen = ui.screen();
    assert!(screen.contains("healthy"), "{screen}");
    assert!(screen.contains(" 1 of 1 "), "{screen}");
    insta::with_settings!({filters => vec![
        // A loopback port is 5 digits (the ephemeral range): the columns stay.
        (r"127\.0\.0\.1:\d{5}", "127.0.0.1:XXXXX"),
    ]}, {
        insta::assert_snapshot!("webhooks_list_80x24", screen);
    });
    let listed = w
        .server
        .get_json("/v1/webhooks", &w.server.admin_token)
        .await;
    assert_eq!(listed["data"][0]["url"], url.as_str());

    // Test: the receiver gets it, and the deliveries say delivered.
    ui.press(KeyCode::Char('t')).await;
    let screen = ui.screen();
    assert!(screen.contains("Test event msg_"), "{screen}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rx.types.lock().unwrap().iter().any(|t| t == "webhook.test") {
        assert!(Instant::now() < deadline, "the test event never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ui.press(KeyCode::Enter).await;
    loop {
        let screen = ui.screen();
        assert!(
            screen.contains("Deliveries to http://127.0.0.1:"),
            "{screen}"
        );
        if screen.contains("webhook.test") && screen.contains("delivered") {
            assert!(screen.contains("HTTP 200"), "{screen}");
            break;
        }
        assert!(Instant::now() < deadline, "never delivered:\n{screen}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        ui.press(KeyCode::Char('r')).await;
    }

    // Remove: asks, then it is gone, here and in the service.
    ui.press(KeyCode::Esc).await;
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(screen.contains("Remove webhook endpoint"), "{screen}");
    ui.press(KeyCode::Char('y')).await;
    let screen = ui.screen();
    assert!(screen.contains("No endpoints yet"), "{screen}");
    assert!(screen.contains("Removed http://127.0.0.1:"), "{screen}");
    let listed = w
        .server
        .get_json("/v1/webhooks", &w.server.admin_token)
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
    ui.press(KeyCode::Esc).await;
    assert!(!ui.screen().contains("Webhooks ·"));
}

/// Keeps the columns of a loopback port (5 digits, the ephemeral range) in snapshots.
fn port_filter() -> Vec<(&'static str, &'static str)> {
    vec![(r"127\.0\.0\.1:\d{5}", "127.0.0.1:XXXXX")]
}

/// The `whsec_…` secret on `screen`.
fn signing_secret_on(screen: &str) -> String {
    screen
        .split(|c: char| c.is_whitespace() || c == '│')
        .find(|w| w.starts_with("whsec_"))
        .unwrap_or_else(|| panic!("no signing secret shown:\n{screen}"))
        .to_owned()
}

/// Marks endpoint `id` disabled in the database, as a day of failures would.
async fn disable(backend: &Backend, id: &str) {
    run_sql(
        &backend.database_url(),
        &[&format!(
            "UPDATE webhook_endpoints SET disabled_at = 1, consecutive_failures = 9, \
             failing_since = 1 WHERE id = '{id}'"
        )],
    )
    .await;
}

async fn audit_actions(server: &TestServer) -> Vec<serde_json::Value> {
    server.get_json("/v1/audit-logs", &server.admin_token).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn enable_and_a_new_signing_secret_from_the_screen(backend: Backend) {
    let rx = Inbox::start().await;
    let w = world(backend).await;
    let (hook, old_secret) = add_webhook(&w.server, &rx.url("/hook"), &["api_key.created"]).await;
    disable(&w.backend, &hook).await;
    let mut ui = w.ui(Theme { color: false }, 80, 24).await;

    // Disabled: the border and the footer offer e.
    ui.press(KeyCode::Char('W')).await;
    let screen = ui.screen();
    assert!(screen.contains("disabled"), "{screen}");
    assert!(screen.contains("e enable"), "{screen}");
    insta::with_settings!({filters => port_filter()}, {
        insta::assert_snapshot!("webhooks_disabled_80x24", screen);
    });
    ui.press(KeyCode::Char('e')).await;
    let screen = ui.screen();
    assert!(screen.contains("healthy"), "{screen}");
    assert!(screen.contains("Enabled http://127.0.0.1:"), "{screen}");
    assert!(
        !screen.contains("e enable"),
        "e only for a disabled endpoint:\n{screen}"
    );
    let listed = w
        .server
        .get_json("/v1/webhooks", &w.server.admin_token)
        .await;
    assert_eq!(listed["data"][0]["health"], "healthy");
    let entries = audit_actions(&w.server).await;
    assert!(entries.iter().any(|e| e["action"] == "webhook.enabled"));
    // e on an enabled endpoint asks nothing of the service.
    ui.press(KeyCode::Char('e')).await;
    assert!(ui.screen().contains("nothing to enable"), "{}", ui.screen());

    // R asks first, Cancel focused: n changes nothing.
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    assert!(screen.contains("New signing secret"), "{screen}");
    assert!(screen.contains("24 hours"), "{screen}");
    insta::with_settings!({filters => port_filter()}, {
        insta::assert_snapshot!("webhooks_new_secret_asked_80x24", screen);
    });
    ui.press(KeyCode::Char('n')).await;
    let listed = w
        .server
        .get_json("/v1/webhooks", &w.server.admin_token)
        .await;
    assert!(
        listed["data"][0]["previous_secret_until"].is_null(),
        "{listed}"
    );
    assert!(!audit_actions(&w.server)
        .await
        .iter()
        .any(|e| e["action"] == "webhook.secret_rotated"));

    // y: the new secret, once, in the copy-once modal; the old one still signs a day.
    ui.press(KeyCode::Char('R')).await;
    ui.press(KeyCode::Char('y')).await;
    let screen = ui.screen();
    assert!(screen.contains("Copy the signing secret now"), "{screen}");
    assert!(screen.contains("New signing secret"), "{screen}");
    assert!(
        screen.contains("The previous secret signs too until"),
        "{screen}"
    );
    let secret = signing_secret_on(&screen);
    assert_ne!(secret, old_secret);
    ui.press(KeyCode::Char('c')).await;
    assert_eq!(ui.clipboard.written.len(), 1);
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(!screen.contains(&secret), "shown once:\n{screen}");
    let listed = w
        .server
        .get_json("/v1/webhooks", &w.server.admin_token)
        .await;
    assert!(
        listed["data"][0]["previous_secret_until"].is_string(),
        "{listed}"
    );

    // A test event: signed with both the new secret and the old one.
    ui.press(KeyCode::Char('t')).await;
    let got = rx
        .wait_for("the test event", |a| {
            a.iter().any(|a| a.kind() == "webhook.test")
        })
        .await;
    let test = got.iter().find(|a| a.kind() == "webhook.test").unwrap();
    assert!(verifies(&secret, test), "the new secret signs");
    assert!(verifies(&old_secret, test), "the old one too, for a day");
    w.server.stop().await;
    w.backend.cleanup().await;
}

async fn deliveries_scroll_a_page_at_a_time(backend: Backend) {
    let rx = Inbox::start().await;
    let w = world(backend).await;
    let (hook, _) = add_webhook(&w.server, &rx.url("/hook"), &["api_key.created"]).await;
    // 130 deliveries: more than the 50 the screen reads at once.
    let total = 130;
    let created = w
        .create(serde_json::json!({ "name": "first", "scopes": ["sessions:read"] }))
        .await;
    assert!(created["api_key"]["id"].is_string());
    for _ in 1..total {
        let r = w
            .server
            .http
            .post(w.server.url(&format!("/v1/webhooks/{hook}/test")))
            .bearer_auth(&w.server.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    rx.wait_for("every delivery", |a| a.len() == total).await;
    let mut ui = w.ui(Theme { color: false }, 80, 24).await;
    ui.press(KeyCode::Char('W')).await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(screen.contains(" 1-18 "), "{screen}");
    assert!(screen.contains("webhook.test"), "{screen}");
    assert!(
        !screen.contains("api_key.created"),
        "the oldest is not read:\n{screen}"
    );
    // Down, past what the first page held: the next pages come.
    for _ in 0..100 {
        ui.press(KeyCode::Char('j')).await;
    }
    let screen = ui.screen();
    assert!(screen.contains(" 101-118 "), "{screen}");
    ui.press(KeyCode::PageDown).await;
    assert!(ui.screen().contains(" 113-130 of 130 "), "{}", ui.screen());
    assert!(
        ui.screen().contains("api_key.created"),
        "the oldest, last:\n{}",
        ui.screen()
    );
    ui.press(KeyCode::Char('j')).await;
    assert!(
        ui.screen().contains(" 113-130 of 130 "),
        "no scrolling past the end"
    );
    // g: the newest (all 130 are held: no page is read again).
    ui.press(KeyCode::Char('g')).await;
    assert!(ui.screen().contains(" 1-18 "), "{}", ui.screen());
    ui.press(KeyCode::PageDown).await;
    assert!(ui.screen().contains(" 19-36 "), "{}", ui.screen());
    // Opened again, only the newest page is read: G reads the oldest page
    // alone, without the 30 between.
    ui.press(KeyCode::Esc).await;
    ui.press(KeyCode::Enter).await;
    assert!(ui.screen().contains(" 1-18 "), "{}", ui.screen());
    ui.press(KeyCode::Char('G')).await;
    let screen = ui.screen();
    assert!(screen.contains(" oldest "), "{screen}");
    assert!(screen.contains("api_key.created"), "{screen}");
    insta::with_settings!({filters => port_filter()}, {
        insta::assert_snapshot!("webhook_deliveries_oldest_80x24", screen);
    });
    // Up from there: the page before comes as the screen nears its top.
    for _ in 0..40 {
        ui.press(KeyCode::Char('k')).await;
    }
    let screen = ui.screen();
    assert!(screen.contains(" 40 older "), "{screen}");
    ui.press(KeyCode::Esc).await;
    assert!(
        ui.screen().contains("Webhooks · 1 endpoint"),
        "{}",
        ui.screen()
    );
    w.server.stop().await;
    w.backend.cleanup().await;
}

// Over SSH (russh's client, the UI on its PTY): e enables, R gives a new
// secret whose copy travels as OSC 52; both audited with the SSH key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enable_and_a_new_signing_secret_over_ssh() {
    use crate::common::ssh::{self, UiSession};
    let rx = Inbox::start().await;
    let backend = Backend::sqlite();
    let server = TestServer::start_with_ssh(
        &backend,
        Arc::new(keydeck::clock::SystemClock),
        |config| config.webhooks.allow_private = true,
        Some(keydeck::ssh::SshConfig::new("127.0.0.1:0".parse().unwrap())),
    )
    .await;
    let key = ssh::new_key();
    let fingerprint =
        ssh::add_key(server.running.state.store.as_ref(), "admin@localhost", &key).await;
    let (hook, old_secret) = add_webhook(&server, &rx.url("/hook"), &["api_key.created"]).await;
    disable(&backend, &hook).await;
    let handle = ssh::connect(ssh::addr(&server), &key)
        .await
        .expect("the key is accepted");
    let mut ui = UiSession::open(&handle, 80, 24, &[]).await;
    ui.wait_for("0 keys").await;
    ui.send(b"W").await;
    ui.wait_for("disabled").await;
    ui.send(b"e").await;
    ui.wait_for("Enabled http://127.0.0.1:").await;
    ui.send(b"R").await;
    ui.wait_for("New signing secret").await;
    ui.send(b"y").await;
    let screen = ui.wait_for("Copy the signing secret now").await;
    let secret = signing_secret_on(&screen);
    assert_ne!(secret, old_secret);
    ui.send(b"c").await;
    ui.wait_for("Sent to your terminal's clipboard (OSC 52)")
        .await;
    assert_eq!(ui.osc52_payloads(), vec![secret.clone()]);
    let listed = server.get_json("/v1/webhooks", &server.admin_token).await;
    assert_eq!(listed["data"][0]["health"], "healthy");
    let entries = audit_actions(&server).await;
    for action in ["webhook.enabled", "webhook.secret_rotated"] {
        let entry = entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} in {entries:?}"));
        assert_eq!(
            entry["details"]["via"],
            format!("ssh {fingerprint}"),
            "{entry}"
        );
    }
    server.stop().await;
}
