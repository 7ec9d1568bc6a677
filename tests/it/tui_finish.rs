//! The rest of issue 21 at 80×24: details as a place to act (`d`, `R`, `y`,
//! `a`), the audit screen's compact times and `via ssh`, `A` for a key's own
//! log, `s` on Attention, help's badge notes, the create form's server error
//! at its field, and status messages that never move the table; driven
//! through the real UI against the real service, drawn in `TestBackend`.

use crate::common;

use chrono::Duration;
use common::ui::World;
use crossterm::event::KeyCode;
use keydeck::clock::Clock;
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

/// Revokes the key `id` as an admin over SSH would: the audit entry says
/// `via ssh <fingerprint>` (written through the store, as the service does
/// for an SSH session's change).
async fn revoke_via_ssh(w: &World, id: &str, fingerprint: &str) {
    let store = w.backend.store().await;
    let admin = store
        .user_by_email("admin@localhost")
        .await
        .unwrap()
        .expect("the test admin");
    let audit = keydeck::store::AuditEvent {
        org_id: admin.org_id.clone(),
        at: w.clock.now(),
        actor_kind: "user".into(),
        actor_id: admin.id.clone(),
        actor_name: admin.email.clone(),
        action: "api_key.revoked".into(),
        api_key_id: id.into(),
        remote_addr: Some("192.0.2.7".into()),
        details: json!({ "via": format!("ssh {fingerprint}") }),
    };
    store
        .revoke_key(&admin.org_id, id, w.clock.now(), &admin.email, &audit)
        .await
        .unwrap()
        .expect("revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_screen_has_compact_times_the_zone_once_and_via_ssh() {
    let w = World::new().await;
    let mut ids = Vec::new();
    for i in 1..=20 {
        let made = w
            .create(json!({"name": format!("Key {i:02}"), "scopes": ["sessions:read"]}))
            .await;
        ids.push(made["api_key"]["id"].as_str().unwrap().to_owned());
        w.clock.advance(Duration::minutes(1));
    }
    revoke_via_ssh(&w, &ids[19], "SHA256:q1w2e3r4").await;
    w.clock.advance(Duration::minutes(1));
    let mut ui = w.ui(PLAIN, 80, 24).await;
    ui.press(KeyCode::Char('a')).await;
    let screen = ui.screen();
    // The zone once, in the title; each row's time without it.
    assert!(
        screen.contains("Audit log · 21 entries · times in UTC"),
        "{screen}"
    );
    assert!(!screen.contains("+00:00"), "{screen}");
    assert!(
        screen.contains("2030-01-15 09:20  revoked  “Key 20” eg_live_"),
        "{screen}"
    );
    // The SSH revoke says so, as the CLI's `via=` does; a row too long is cut with `…`.
    let revoked = screen
        .lines()
        .find(|l| l.contains("revoked  “Key 20”"))
        .unwrap();
    assert!(
        revoked.contains("by admin@localhost via ssh ") && revoked.contains('…'),
        "{revoked}"
    );
    assert_screen!("audit_compact_80x24", screen);
    // The whole entry, where the screen is wide enough.
    ui.resize(160, 24).await;
    let screen = ui.screen();
    assert!(
        screen.contains("by admin@localhost via ssh SHA256:q1w2e3r4 from 192.0.2.7"),
        "{screen}"
    );
    ui.resize(80, 24).await;
    ui.press(KeyCode::Esc).await;
    // A on the table: the selected key's own log.
    ui.press(KeyCode::Char('A')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Audit log of “Key 20” · 2 entries")
            && screen.contains("revoked")
            && !screen.contains("“Key 19”"),
        "{screen}"
    );
    ui.press(KeyCode::Esc).await;
    assert!(!ui.screen().contains("Audit log"));
    w.server.stop().await;
}

/// Every line of `a` and `b` but the one at `except` is the same.
fn same_but(a: &str, b: &str, except: usize) {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if i != except {
            assert_eq!(
                x,
                y,
                "line {i} moved:\n{}\n---\n{}",
                a.join("\n"),
                b.join("\n")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_messages_never_move_the_table_and_s_on_attention_explains() {
    let w = World::new().await;
    for i in 1..=30 {
        w.create(json!({"name": format!("Key {i:02}"), "scopes": ["sessions:read"]}))
            .await;
        w.clock.advance(Duration::minutes(1));
    }
    let mut ui = w.ui(PLAIN, 80, 24).await;
    ui.press(KeyCode::Char('j')).await;
    let before = ui.screen();
    // y: the message sits on the table's last row (row 22, over the footer's
    // row 23); the header and the other rows stay where they were.
    ui.press(KeyCode::Char('y')).await;
    let after = ui.screen();
    let status = after.lines().nth(22).unwrap();
    assert!(
        status.starts_with(" Copied “eg_live_") && status.ends_with('…'),
        "{after}"
    );
    same_but(&before, &after, 22);
    assert_screen!("status_over_the_table_80x24", after);
    // The next key takes it away; the row is back, nothing else changed.
    ui.press(KeyCode::Char('k')).await;
    ui.press(KeyCode::Char('j')).await;
    assert_eq!(ui.screen(), before);
    // Over the selected row it is not: at the bottom, the row above it.
    ui.press(KeyCode::Char('G')).await;
    let bottom = ui.screen();
    ui.press(KeyCode::Char('y')).await;
    let screen = ui.screen();
    assert!(
        screen.lines().nth(21).unwrap().starts_with(" Copied “"),
        "{screen}"
    );
    same_but(&bottom, &screen, 21);
    ui.press(KeyCode::Char('g')).await;
    // s on Attention says why nothing is sorted, and sorts nothing.
    ui.press(KeyCode::Char('5')).await;
    ui.press(KeyCode::Char('g')).await;
    let attention = ui.screen();
    ui.press(KeyCode::Char('s')).await;
    let screen = ui.screen();
    assert!(
        screen
            .contains("Attention is ordered worst first, not by a column; s sorts the other tabs."),
        "{screen}"
    );
    same_but(&attention, &screen, 22);
    ui.press(KeyCode::Char('1')).await;
    assert!(
        ui.screen().lines().nth(2).unwrap().ends_with("Created ↓"),
        "the sort stays"
    );
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_and_details_say_what_the_dot_and_plus_n_of_the_health_column_mean() {
    let w = World::new().await;
    w.create(json!({"name": "Idle worker", "scopes": ["sessions:read"]}))
        .await;
    // Never used in 40 days, no expiry: two badges.
    w.clock.advance(Duration::days(40));
    let mut ui = w.ui(PLAIN, 80, 24).await;
    let row = ui
        .screen()
        .lines()
        .find(|l| l.contains("Idle worker"))
        .unwrap()
        .to_owned();
    assert!(row.contains("unused +1"), "{row}");
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Health      unused · no expiry  (the table: unused +1)"),
        "{screen}"
    );
    ui.press(KeyCode::Esc).await;
    ui.press(KeyCode::Char('?')).await;
    assert!(ui.screen().contains(" Help "));
    ui.press(KeyCode::Char('G')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Health column")
            && screen.contains("rotate · unused  two badges, · between them")
            && screen.contains("rotate +2        the first badge and 2 more"),
        "{screen}"
    );
    assert_screen!("help_badges_80x24", screen);
    w.server.stop().await;
}

/// The screen row where the create form's top border is.
fn form_top(screen: &str) -> usize {
    screen
        .lines()
        .position(|l| l.contains("┌ New API key"))
        .unwrap_or_else(|| panic!("the form:\n{screen}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusal_shows_once_at_its_field_which_gets_the_focus_and_the_form_stays_put() {
    use keydeck::tui::popup::{create::Field, Popup};
    let w = World::new().await;
    let mut ui = w.ui(PLAIN, 80, 24).await;
    ui.press(KeyCode::Char('n')).await;
    ui.type_text("Nightly export").await;
    for _ in 0..3 {
        ui.press(KeyCode::Tab).await;
    }
    ui.press(KeyCode::Char(' ')).await; // Sessions (Read)
    let before = ui.screen();
    let top = form_top(&before);
    // The organisation's policy changes while the form is open: the service
    // refuses what the form let through, naming the field.
    let r = w
        .server
        .http
        .put(w.server.url("/v1/policy"))
        .bearer_auth(&w.server.admin_token)
        .json(&json!({"require_description": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert_eq!(
        screen.matches("requires a description").count(),
        1,
        "said once:\n{screen}"
    );
    // At its field: the line under Description.
    let lines: Vec<&str> = screen.lines().collect();
    let at = lines.iter().position(|l| l.contains('✗')).unwrap();
    assert!(lines[at - 1].contains("Description"), "{screen}");
    assert_eq!(form_top(&screen), top, "the form did not move:\n{screen}");
    let Some(Popup::Create(form)) = ui.app.popups().last() else {
        panic!("the form stays open");
    };
    assert_eq!(form.focus, Field::Description, "focus on the field to fix");
    assert_screen!("create_server_refusal_80x24", screen);
    // Fixing it takes the line away; the form still does not move.
    ui.type_text("Exports the night's sessions").await;
    assert_eq!(form_top(&ui.screen()), top);
    w.server.stop().await;
}

/// `A`'s log is the key's whole history, however long the organisation's
/// log: the service filters (`GET /v1/audit-logs?api_key_id=`, from an
/// index), so a key whose entries are older than the newest 500 still has
/// them; a bad id is a 400 naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_audit_is_its_whole_history_past_the_newest_500() {
    let w = World::new().await;
    let oldest = w
        .create(json!({"name": "Oldest", "scopes": ["sessions:read"]}))
        .await;
    let id = oldest["api_key"]["id"].as_str().unwrap().to_owned();
    w.clock.advance(Duration::minutes(1));
    for chunk in (0..505).collect::<Vec<_>>().chunks(50) {
        let creates = chunk
            .iter()
            .map(|n| w.create(json!({"name": format!("Newer {n}"), "scopes": ["sessions:read"]})));
        futures_util::future::join_all(creates).await;
    }
    let s = &w.server;
    let newest = s.get_json("/v1/audit-logs?limit=500", &s.admin_token).await;
    let newest = newest["data"].as_array().unwrap();
    assert_eq!(newest.len(), 500);
    assert!(newest.iter().all(|e| e["api_key_id"] != id.as_str()));
    let of_key = s
        .get_json(&format!("/v1/audit-logs?api_key_id={id}"), &s.admin_token)
        .await;
    let of_key = of_key["data"].as_array().unwrap();
    assert_eq!(of_key.len(), 1, "{of_key:?}");
    assert_eq!(of_key[0]["action"], "api_key.created");
    assert_eq!(of_key[0]["api_key_id"], id.as_str());
    let bad = s
        .http
        .get(s.url("/v1/audit-logs?api_key_id=key%27%20OR%201"))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(body.to_string().contains("api_key_id"), "{body}");

    // The UI: the oldest key is the last row (newest first); `A` opens its log.
    let mut ui = w.ui(PLAIN, 80, 24).await;
    ui.press(KeyCode::Char('G')).await;
    ui.press(KeyCode::Char('A')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Audit log of “Oldest” · 1 entr") && screen.contains("created"),
        "{screen}"
    );
    w.server.stop().await;
}
