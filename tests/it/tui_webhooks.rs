//! The webhooks screen (`W`, issue 24) through the real UI against the real
//! service (its targets on loopback allowed): add an endpoint (the service's
//! objection at the field, then the secret in the copy-once modal), see it
//! listed with its health, test it (the receiver, axum on loopback, gets the
//! event, the deliveries say so), remove it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use crossterm::event::KeyCode;
use keydeck::clock::ManualClock;
use keydeck::tui::theme::Theme;

use crate::common::ui::{start_time, World};
use crate::common::{Backend, TestServer};

on_both_backends!(add_test_and_remove_an_endpoint_from_the_screen);

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
