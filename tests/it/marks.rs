//! Marks (`Space`) are visible and local: the count in the title and the
//! footer, the gutter column, `Esc` and a tab switch clearing them, and `d`
//! acting only on the marked keys shown, saying exactly which — checked
//! against the real service in-process, in `TestBackend`.

use crate::common;

use std::collections::BTreeSet;

use chrono::Duration;
use common::ui::{past_gutter, start_time, World};
use crossterm::event::KeyCode;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use serde_json::{json, Value};

const PLAIN: Theme = Theme { color: false };

/// The first line (the title) and the last line with text (the footer).
fn title_and_footer(ui: &mut Harness) -> (String, String) {
    let screen = ui.screen();
    let title = screen.lines().next().unwrap_or_default().to_owned();
    let footer = screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_owned();
    (title, footer)
}

/// The table line of the row named `name` (gutter included).
fn row(screen: &str, name: &str) -> String {
    screen
        .lines()
        .find(|l| past_gutter(l).starts_with(&format!("{name}  ")))
        .unwrap_or_else(|| panic!("a row for {name} in:\n{screen}"))
        .to_owned()
}

fn selected(ui: &Harness) -> String {
    ui.app.selected_key().unwrap().name.clone()
}

/// The status the service now gives the key named `name`.
async fn status(w: &World, name: &str) -> Value {
    let keys = w.keys().await;
    keys.iter().find(|k| k["name"] == name).unwrap()["status"].clone()
}

/// The names of the keys marked in the UI.
fn marked_names(ui: &Harness) -> BTreeSet<String> {
    ui.app
        .marked()
        .iter()
        .map(|id| ui.app.key_by_id(id).unwrap().name.clone())
        .collect()
}

/// Two active keys and one expired, newest first: bravo, alpha, lapsed.
async fn two_active_one_expired(w: &World) -> [String; 3] {
    let lapsed = w
        .create(json!({"name": "lapsed", "scopes": ["sessions:read"],
            "expires_at": start_time() + Duration::minutes(5)}))
        .await;
    w.clock.advance(Duration::seconds(1));
    let (_, alpha) = w.server.create_key("alpha", &["sessions:read"]).await;
    w.clock.advance(Duration::seconds(1));
    let (_, bravo) = w.server.create_key("bravo", &["sessions:read"]).await;
    w.clock.advance(Duration::minutes(10));
    let lapsed = lapsed["secret"].as_str().unwrap().to_owned();
    [alpha, bravo, lapsed]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_shows_in_the_title_and_the_footer_and_esc_clears_the_marks() {
    let w = World::new().await;
    two_active_one_expired(&w).await;
    let mut ui = w.ui(PLAIN, 100, 24).await;
    let (title, footer) = title_and_footer(&mut ui);
    assert!(!title.contains("marked") && !footer.contains("marked"));
    assert!(footer.contains("d revoke"), "{footer}");

    // Space marks the row and moves down.
    assert_eq!(selected(&ui), "bravo");
    ui.press(KeyCode::Char(' ')).await;
    assert_eq!(selected(&ui), "alpha", "Space moved down");
    ui.press(KeyCode::Char(' ')).await;
    assert_eq!(selected(&ui), "lapsed");
    assert_eq!(
        marked_names(&ui),
        ["alpha", "bravo"].map(String::from).into()
    );
    let (title, footer) = title_and_footer(&mut ui);
    assert!(title.ends_with("2 marked · 3 keys"), "{title}");
    assert!(
        footer.contains("d revoke 2 marked") && footer.contains("Esc clear marks"),
        "{footer}"
    );
    // The mark is in its own column before the name.
    let screen = ui.screen();
    assert!(row(&screen, "bravo").starts_with("✓ bravo"), "{screen}");
    assert!(row(&screen, "alpha").starts_with("✓ alpha"), "{screen}");
    assert!(row(&screen, "lapsed").starts_with("  lapsed"), "{screen}");
    insta::with_settings!({filters => vec![(r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"), (r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX...")]}, {
        insta::assert_snapshot!("two_marked", screen);
    });

    // Space on a marked row unmarks it.
    ui.press(KeyCode::Char('k')).await;
    ui.press(KeyCode::Char(' ')).await;
    assert_eq!(marked_names(&ui), ["bravo"].map(String::from).into());
    assert!(title_and_footer(&mut ui).1.contains("d revoke 1 marked"));

    // Esc clears the marks, and says so.
    ui.press(KeyCode::Esc).await;
    assert!(ui.app.marked().is_empty());
    let screen = ui.screen();
    assert!(screen.contains("1 key unmarked."), "{screen}");
    assert!(row(&screen, "bravo").starts_with("  bravo"), "{screen}");
    let (title, footer) = title_and_footer(&mut ui);
    assert!(
        title.ends_with(" 3 keys") && !title.contains("marked"),
        "{title}"
    );
    assert!(
        footer.contains("d revoke") && !footer.contains("marked") && !footer.contains("Esc"),
        "{footer}"
    );
    // With nothing marked, d is about the selected key again.
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke API key") && screen.contains("“lapsed”"),
        "{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_switch_clears_the_marks_so_d_never_offers_keys_not_on_screen() {
    let w = World::new().await;
    let [alpha, bravo, lapsed] = two_active_one_expired(&w).await;
    let mut ui = w.ui(PLAIN, 100, 24).await;
    ui.press(KeyCode::Char(' ')).await;
    ui.press(KeyCode::Char(' ')).await;
    assert_eq!(ui.app.marked().len(), 2);

    // The Expired tab: the two Active keys' marks go, and the screen says so.
    ui.press(KeyCode::Char('3')).await;
    assert!(ui.app.marked().is_empty());
    let screen = ui.screen();
    assert!(
        screen.contains("2 keys unmarked (marks stay on their tab)."),
        "{screen}"
    );
    assert!(!title_and_footer(&mut ui).0.contains("marked"));
    // d asks about the expired key on screen, and only about it.
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke API key") && screen.contains("“lapsed”"),
        "{screen}"
    );
    assert!(
        !screen.contains("alpha") && !screen.contains("bravo") && !screen.contains("marked"),
        "{screen}"
    );
    ui.press(KeyCode::Char('y')).await;
    assert_eq!(status(&w, "lapsed").await, "revoked");
    assert_eq!(status(&w, "alpha").await, "active");
    assert_eq!(status(&w, "bravo").await, "active");
    assert_eq!(w.auth(&alpha, "sessions:read").await, 200);
    assert_eq!(w.auth(&bravo, "sessions:read").await, 200);
    assert_eq!(w.auth(&lapsed, "sessions:read").await, 401);

    // Tab (the next tab) clears them too; the same tab again does not.
    ui.press(KeyCode::Char('1')).await;
    ui.press(KeyCode::Home).await;
    ui.press(KeyCode::Char(' ')).await;
    ui.press(KeyCode::Char('1')).await;
    assert_eq!(marked_names(&ui), ["bravo"].map(String::from).into());
    ui.press(KeyCode::Tab).await;
    assert!(ui.app.marked().is_empty());
    ui.press(KeyCode::BackTab).await;
    assert!(title_and_footer(&mut ui).1.contains("d revoke"));
    assert!(!title_and_footer(&mut ui).1.contains("marked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_revokes_exactly_the_marked_keys_the_filter_shows_and_the_dialog_lists_them() {
    let w = World::new().await;
    let (_, charlie) = w
        .server
        .create_key("batch charlie", &["sessions:read"])
        .await;
    w.clock.advance(Duration::seconds(1));
    let (_, alpha) = w.server.create_key("web alpha", &["sessions:read"]).await;
    w.clock.advance(Duration::seconds(1));
    let (_, bravo) = w.server.create_key("web bravo", &["sessions:read"]).await;
    w.clock.advance(Duration::seconds(1));
    let mut ui = w.ui(PLAIN, 100, 24).await;
    for _ in 0..3 {
        ui.press(KeyCode::Char(' ')).await;
    }
    assert_eq!(ui.app.marked().len(), 3);

    // The filter hides one marked key: it stays marked, and the title says so.
    ui.press(KeyCode::Char('/')).await;
    ui.type_text("web").await;
    ui.press(KeyCode::Enter).await;
    let (title, footer) = title_and_footer(&mut ui);
    assert!(
        title.ends_with("3 marked, 1 hidden · 2 of 3 keys"),
        "{title}"
    );
    assert!(footer.contains("d revoke 2 marked"), "{footer}");
    // Esc would clear the filter first, so it does not offer to clear marks.
    assert!(
        footer.contains("Esc clear filter") && !footer.contains("clear marks"),
        "{footer}"
    );

    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke the marked keys: 2 keys?")
            && screen.contains("• “web bravo”")
            && screen.contains("• “web alpha”")
            && screen.contains("1 marked key the filter hides is left alone (still marked)."),
        "{screen}"
    );
    assert!(!screen.contains("charlie"), "{screen}");
    insta::with_settings!({filters => vec![(r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"), (r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX...")]}, {
        insta::assert_snapshot!("revoke_marked_under_a_filter", screen);
    });
    ui.press(KeyCode::Char('y')).await;
    assert_eq!(status(&w, "web alpha").await, "revoked");
    assert_eq!(status(&w, "web bravo").await, "revoked");
    assert_eq!(status(&w, "batch charlie").await, "active");
    assert_eq!(w.auth(&alpha, "sessions:read").await, 401);
    assert_eq!(w.auth(&bravo, "sessions:read").await, 401);
    assert_eq!(w.auth(&charlie, "sessions:read").await, 200);
    assert_eq!(
        marked_names(&ui),
        ["batch charlie"].map(String::from).into()
    );
    assert!(title_and_footer(&mut ui)
        .0
        .ends_with("1 marked, 1 hidden · 2 of 3 keys"));

    // Every mark shown is gone and the rest are hidden: d revokes nothing.
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Nothing to revoke")
            && screen.contains("1 marked key the filter hides is left alone"),
        "{screen}"
    );
    ui.press(KeyCode::Enter).await;
    assert_eq!(status(&w, "batch charlie").await, "active");

    // Esc clears the filter (the hidden mark shows again), then the marks.
    ui.press(KeyCode::Esc).await;
    let screen = ui.screen();
    assert!(
        row(&screen, "batch charlie").starts_with("✓ batch charlie"),
        "{screen}"
    );
    assert!(title_and_footer(&mut ui).0.ends_with("1 marked · 3 keys"));

    // A marked key already revoked is left out, and the dialog says so.
    ui.press(KeyCode::Home).await;
    ui.press(KeyCode::Char(' ')).await;
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke the marked keys: 1 key?")
            && screen.contains("• “batch charlie”")
            && screen.contains("1 key marked already revoked: nothing more to do for it."),
        "{screen}"
    );
    assert!(!screen.contains("• “web"), "{screen}");
    ui.press(KeyCode::Char('n')).await;
    ui.press(KeyCode::Esc).await;
    assert!(ui.app.marked().is_empty());
    assert_eq!(status(&w, "batch charlie").await, "active");
}
