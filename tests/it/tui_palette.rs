//! The command palette (`:`) and the searchable help (`?` then `/`), both
//! made from the keymap, driven through the real UI against the real
//! service (issue 21, acceptance 1's palette snapshot and acceptance 4).

use crate::common;

use common::ui::World;
use crossterm::event::KeyCode;
use keydeck::tui::keymap;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use ratatui::style::Color;
use serde_json::json;

const COLOR: Theme = Theme { color: true };

macro_rules! assert_screen {
    ($name:expr, $screen:expr) => {
        insta::with_settings!({filters => vec![
            (r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"), (r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX..."),
        ]}, {
            insta::assert_snapshot!($name, $screen);
        });
    };
}

async fn seeded(w: &World) -> Harness {
    for name in ["Billing worker", "CI/CD Pipeline", "Grafana dashboards"] {
        w.create(json!({"name": name, "scopes": ["sessions:read"]}))
            .await;
    }
    w.ui(COLOR, 80, 24).await
}

/// The line under the palette's `:` line: the chosen completion.
fn chosen_line(screen: &str, typed: &str) -> String {
    let mut lines = screen.lines();
    lines
        .find(|l| l.contains(&format!(":{typed}█")))
        .unwrap_or_else(|| panic!(":{typed} on screen:\n{screen}"));
    lines.next().unwrap_or_default().to_owned()
}

/// The colour of the footer's first key hint (`j` of `j/k move`).
fn hint_colour(ui: &mut Harness) -> Color {
    let buffer = ui.draw().clone();
    buffer[(1, buffer.area.height - 1)].fg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colon_opens_a_palette_that_completes_and_runs_commands() {
    let w = World::new().await;
    let mut ui = seeded(&w).await;
    ui.press(KeyCode::Char(':')).await;
    assert!(ui.screen().contains(" Command "), "{}", ui.screen());
    ui.type_text("rev").await;
    let screen = ui.screen();
    assert!(
        chosen_line(&screen, "rev").contains("revoke      "),
        "{screen}"
    );
    for name in ["revoke expired", "sort reverse"] {
        assert!(screen.contains(name), "{name}:\n{screen}");
    }
    assert!(!screen.contains("rotate"), "only what matches:\n{screen}");
    assert_screen!("palette_80x24", screen);
    // Enter runs the chosen completion: revoke asks about the selected key.
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke") && !screen.contains(" Command "),
        "{screen}"
    );
    ui.press(KeyCode::Esc).await;
    assert_eq!(w.keys().await.len(), 3);
    assert!(w.keys().await.iter().all(|k| k["status"] == "active"));

    // Down chooses the next completion; Tab completes the line to it.
    ui.press(KeyCode::Char(':')).await;
    ui.type_text("sort").await;
    ui.press(KeyCode::Down).await;
    ui.press(KeyCode::Tab).await;
    let screen = ui.screen();
    assert!(screen.contains(":sort reverse█"), "{screen}");
    ui.press(KeyCode::Esc).await;
    assert!(!ui.screen().contains(" Command "), "Esc closes");

    // A word of the name is enough: `:name` sorts by name.
    ui.press(KeyCode::Char(':')).await;
    ui.type_text("name").await;
    ui.press(KeyCode::Enter).await;
    assert!(ui.screen().contains("Name ↓"), "{}", ui.screen());

    // Letters in order: `:thl` is `theme light`.
    let dark = hint_colour(&mut ui);
    ui.press(KeyCode::Char(':')).await;
    ui.type_text("thl").await;
    assert!(chosen_line(&ui.screen(), "thl").contains("theme light"));
    ui.press(KeyCode::Enter).await;
    assert_ne!(hint_colour(&mut ui), dark, "the light palette draws");

    // Nothing by that name: said, and the palette stays.
    ui.press(KeyCode::Char(':')).await;
    ui.type_text("zzz").await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("No command “zzz”") && screen.contains(" Command "),
        "{screen}"
    );
    for _ in 0..3 {
        ui.press(KeyCode::Backspace).await;
    }
    // `:q` quits, as in k9s and vim.
    ui.type_text("q").await;
    ui.press(KeyCode::Enter).await;
    assert!(ui.app.should_quit());
    w.server.stop().await;
}

/// Every command of the keymap is reachable from `:` by its name, as drawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_palette_command_is_offered_by_its_name_on_screen() {
    let w = World::new().await;
    let mut ui = seeded(&w).await;
    let entries = keymap::palette();
    assert!(entries.len() > 25, "{}", entries.len());
    for entry in entries {
        ui.press(KeyCode::Char(':')).await;
        ui.type_text(entry.name).await;
        let chosen = chosen_line(&ui.screen(), entry.name);
        assert!(
            chosen.contains(&format!(" {} ", entry.name)) && chosen.contains(&entry.keys),
            "{}: {chosen}",
            entry.name
        );
        ui.press(KeyCode::Esc).await;
    }
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_filters_its_entries_as_you_type() {
    let w = World::new().await;
    let mut ui = seeded(&w).await;
    ui.app.set_refresh_every(chrono::Duration::seconds(30));
    ui.press(KeyCode::Char('?')).await;
    ui.press(KeyCode::Char('/')).await;
    ui.type_text("rotat").await;
    let screen = ui.screen();
    let all: usize = keymap::help_sections(chrono::Duration::seconds(30))
        .iter()
        .map(|(_, lines)| lines.len())
        .sum();
    let matching: Vec<_> = keymap::help_sections(chrono::Duration::seconds(30))
        .into_iter()
        .flat_map(|(_, lines)| lines)
        .filter(|(keys, text)| format!("{keys} {text}").to_lowercase().contains("rotat"))
        .collect();
    assert!(!matching.is_empty());
    assert!(
        screen.contains(&format!("Help · {} of {all}", matching.len())),
        "{screen}"
    );
    for (keys, text) in &matching {
        assert!(
            screen.contains(keys) && screen.contains(text),
            "{text}:\n{screen}"
        );
    }
    assert!(!screen.contains("next key"), "{screen}");
    assert_screen!("help_search_80x24", screen);
    // Enter keeps the search; Esc clears it, then closes the help.
    ui.press(KeyCode::Enter).await;
    assert!(ui.screen().contains("/rotat"));
    ui.press(KeyCode::Esc).await;
    let screen = ui.screen();
    assert!(
        screen.contains("next key") && screen.contains(" Help "),
        "{screen}"
    );
    // G shows the end at once, g the top; j past the end changes nothing.
    ui.press(KeyCode::Char('G')).await;
    let end = ui.screen();
    assert!(
        end.contains("q / Ctrl-C") && !end.contains("next key"),
        "{end}"
    );
    ui.press(KeyCode::Char('j')).await;
    assert_eq!(ui.screen(), end);
    ui.press(KeyCode::Char('k')).await;
    assert_ne!(ui.screen(), end, "one k scrolls back from the end");
    ui.press(KeyCode::Char('g')).await;
    assert!(ui.screen().contains("next key"));
    ui.press(KeyCode::Esc).await;
    assert!(!ui.screen().contains(" Help "));
    w.server.stop().await;
}
