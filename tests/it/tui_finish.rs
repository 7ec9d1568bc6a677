//! The rest of issue 21 at 80×24: details as a place to act (`d`, `R`, `y`,
//! `a`), the audit screen's compact times and `via ssh`, `A` for a key's own
//! log, `s` on Attention, help's badge notes, the create form's server error
//! at its field, and status messages that never move the table; driven
//! through the real UI against the real service, drawn in `TestBackend`.

use crate::common;

use chrono::Duration;
use common::ui::World;
use crossterm::event::KeyCode;
use keydeck::tui::theme::Theme;
use serde_json::json;

const PLAIN: Theme = Theme { color: false };

macro_rules! assert_screen {
    ($name:expr, $screen:expr) => {
        insta::with_settings!({filters => vec![
            (r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"),
            (r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX..."),
            (r"key_[0-9A-Za-z]+", "key_ID"),
        ]}, {
            insta::assert_snapshot!($name, $screen);
        });
    };
}

/// The service's status of the key named `name`.
async fn status(w: &World, name: &str) -> String {
    let keys = w.keys().await;
    let key = keys.iter().find(|k| k["name"] == name).unwrap();
    key["status"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_revoke_rotate_copy_and_audit_the_key_shown() {
    let w = World::new().await;
    let first = w
        .create(json!({"name": "Deploy bot", "scopes": ["sessions:read"]}))
        .await;
    w.clock.advance(Duration::minutes(1));
    w.create(json!({"name": "Billing worker", "scopes": ["sessions:read"]}))
        .await;
    w.clock.advance(Duration::minutes(1));
    let mut ui = w.ui(PLAIN, 80, 24).await;
    // A mark on the other key: the details act on the key shown, never on marks.
    ui.press(KeyCode::Char(' ')).await;
    assert_eq!(ui.app.selected_key().unwrap().name, "Deploy bot");
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    let footer = screen.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert!(
        footer.contains("d revoke") && footer.contains("R rotate") && footer.contains("y copy id"),
        "{screen}"
    );
    assert_screen!("details_actions_80x24", screen);
    // y: the prefix and id on the clipboard, said on screen, details still open.
    ui.press(KeyCode::Char('y')).await;
    let screen = ui.screen();
    let id = first["api_key"]["id"].as_str().unwrap();
    assert!(
        screen.contains("Copied “") && screen.contains("Key details"),
        "{screen}"
    );
    assert_eq!(ui.clipboard.written.len(), 1);
    // R: the rotate dialog for this key; n leaves the details.
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Rotate") && screen.contains("“Deploy bot”"),
        "{screen}"
    );
    ui.press(KeyCode::Char('n')).await;
    assert!(ui.screen().contains("Key details"));
    // d: revoke this key (not the marked one), asked first.
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke API key") && screen.contains("“Deploy bot”"),
        "{screen}"
    );
    assert!(!screen.contains("marked keys"), "{screen}");
    ui.press(KeyCode::Char('y')).await;
    assert_eq!(status(&w, "Deploy bot").await, "revoked");
    assert_eq!(status(&w, "Billing worker").await, "active");
    let screen = ui.screen();
    assert!(screen.contains("Key details"), "details stay: {screen}");
    assert!(screen.contains("Revoked"), "{screen}");
    // a: its audit log alone, and back to the details.
    ui.press(KeyCode::Char('a')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Audit log of “Deploy bot” · 2 entries")
            && screen.contains("revoked")
            && !screen.contains("Billing worker"),
        "{screen}"
    );
    ui.press(KeyCode::Esc).await;
    assert!(ui.screen().contains("Key details"));
    assert!(!id.is_empty());
    w.server.stop().await;
}
