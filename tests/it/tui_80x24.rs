//! The table at 80×24, the size of a default SSH window (issue 21): the
//! filter's `8 of 12` and highlighted matches, ellipses and the common
//! prefix, scrolling with a position, the audit screen; driven through the
//! real UI against the real service.

use crate::common;

use chrono::Duration;
use common::ui::World;
use crossterm::event::KeyCode;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use ratatui::style::{Color, Modifier};
use serde_json::json;

const COLOR: Theme = Theme { color: true };

macro_rules! assert_screen {
    ($name:expr, $screen:expr) => {
        insta::with_settings!({filters => vec![
            (r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"),
            (r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX..."),
        ]}, {
            insta::assert_snapshot!($name, $screen);
        });
    };
}

/// Twelve keys, eight of them deploy keys with long names that differ only
/// at their end, created a minute apart (the newest first in the table).
async fn twelve_keys(w: &World) {
    let deploys = [
        "GitHub Actions deploy workflow #1",
        "GitHub Actions deploy workflow #2",
        "GitHub Actions deploy workflow #3",
        "Staging deploy (eu-west-1)",
        "Production deploy (eu-west-1)",
        "Deploy bot",
        "Nightly deploy check",
        "Preview deploys",
    ];
    let others = [
        "Billing worker",
        "Grafana dashboards",
        "CI cache",
        "Metrics exporter",
    ];
    for name in deploys.iter().chain(&others) {
        w.create(
            json!({"name": name, "scopes": ["sessions:read", "sessions:write", "resources:read"]}),
        )
        .await;
        w.clock.advance(Duration::minutes(1));
    }
}

/// The screen row holding `text`, and its column (in characters).
fn find(ui: &mut Harness, text: &str) -> (u16, u16) {
    let screen = ui.screen();
    for (y, line) in screen.lines().enumerate() {
        if let Some(at) = line.find(text) {
            let x = line[..at].chars().count();
            return (u16::try_from(x).unwrap(), u16::try_from(y).unwrap());
        }
    }
    panic!("{text} not on screen:\n{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_says_8_of_12_and_highlights_the_matches() {
    let w = World::new().await;
    twelve_keys(&w).await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    assert!(ui.screen().contains("12 keys"));
    ui.press(KeyCode::Char('/')).await;
    ui.type_text("deploy").await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    let title = screen.lines().next().unwrap();
    assert!(title.ends_with("8 of 12 keys"), "{title}");
    assert!(
        screen.contains("1 All (8)") && screen.contains("2 Active (8)"),
        "{screen}"
    );
    assert_eq!(ui.app.rows().len(), 8);
    assert_screen!("filter_80x24", screen);
    // The match in a name is highlighted (the selected row aside, it is reversed).
    let (x, y) = find(&mut ui, "Deploy bot");
    let buffer = ui.draw().clone();
    for dx in 0..6 {
        let cell = &buffer[(x + dx, y)];
        assert_eq!(cell.fg, Color::Yellow, "{:?}", cell.symbol());
        assert!(cell.modifier.contains(Modifier::UNDERLINED));
    }
    let after = &buffer[(x + 6, y)];
    assert_ne!(after.fg, Color::Yellow, "only the match");
    // On a tab the filter leaves empty, the message names the tab and the filter.
    ui.press(KeyCode::Char('4')).await;
    let screen = ui.screen();
    assert!(screen.contains("0 of 0 revoked keys"), "{screen}");
    assert!(
        screen.contains("No revoked keys match “deploy”.")
            && screen.contains("Esc clears the filter; 1 shows all keys."),
        "{screen}"
    );
    // On All, nothing about "all keys".
    ui.press(KeyCode::Char('1')).await;
    ui.press(KeyCode::Char('/')).await;
    ui.type_text("zz").await;
    let screen = ui.screen();
    assert!(
        screen.contains("No keys match “deployzz”.") && !screen.contains("1 shows all"),
        "{screen}"
    );
    ui.press(KeyCode::Esc).await;
    let screen = ui.screen();
    assert!(
        screen.contains("12 keys") && screen.contains("1 All (12)"),
        "{screen}"
    );
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_names_and_scopes_end_in_ellipses_under_a_shared_prefix_header() {
    let w = World::new().await;
    twelve_keys(&w).await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    let screen = ui.screen();
    let lines: Vec<&str> = screen.lines().collect();
    let header = lines[3];
    // The shared `eg_live_` is said once, in the header; rows show what differs.
    assert!(
        header.contains(" eg_live_ ") && !header.contains("Key Prefix"),
        "{header}"
    );
    let rows = &lines[4..16];
    for row in rows {
        assert!(!row.contains("eg_live_"), "{row}");
    }
    // The three GitHub keys are told apart by their ends, cut in the middle.
    for n in 1..=3 {
        let end = format!("…workflow #{n}");
        assert!(rows.iter().any(|r| r.contains(&end)), "{end}:\n{screen}");
    }
    // Scopes that do not fit say how many more there are.
    assert!(rows.iter().all(|r| r.contains("Sessions:R +2")), "{screen}");
    // The room eg_live_ took goes to the names: these show whole.
    for name in ["Nightly deploy check", "Grafana dashboards"] {
        assert!(rows.iter().any(|r| r.contains(name)), "{name}:\n{screen}");
    }
    assert_screen!("table_long_names_80x24", screen);
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_scroll_to_the_description_with_a_position() {
    let w = World::new().await;
    let description: Vec<String> = (1..=10)
        .map(|i| format!("Line {i} of the runbook for this key."))
        .collect();
    w.create(
        json!({"name": "Runbook key", "description": description.join("\n"),
        "scopes": ["sessions:read", "sessions:write", "resources:read"]}),
    )
    .await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    ui.press(KeyCode::Enter).await;
    let top = ui.screen();
    assert!(
        top.contains("Key details") && top.contains("↓ more"),
        "{top}"
    );
    assert!(!top.contains("Line 10 of the runbook"), "{top}");
    let title = top.lines().nth(3).unwrap();
    assert!(
        title.contains(" 1-15/30 "),
        "a position in the title:\n{top}"
    );
    // j scrolls a line, G to the end: the Description shows whole.
    ui.press(KeyCode::Char('j')).await;
    assert!(ui.screen().contains(" 2-16/"), "{}", ui.screen());
    ui.press(KeyCode::Char('G')).await;
    let bottom = ui.screen();
    assert!(
        bottom.contains("Line 10 of the runbook") && bottom.contains("Usage"),
        "{bottom}"
    );
    assert!(!bottom.contains("↓ more"), "{bottom}");
    assert_screen!("details_scrolled_80x24", bottom);
    // Further down does nothing; k comes back up at once.
    ui.press(KeyCode::Char('j')).await;
    assert_eq!(ui.screen(), bottom);
    ui.press(KeyCode::Char('k')).await;
    assert!(ui.screen().contains("↓ more"));
    ui.press(KeyCode::Char('g')).await;
    assert_eq!(ui.screen(), top);
    ui.press(KeyCode::Esc).await;
    assert!(!ui.screen().contains("Key details"));
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_screen_has_a_position_g_and_g_a_filter_and_a_keys_own_log() {
    let w = World::new().await;
    for i in 1..=25 {
        w.create(json!({"name": format!("Key {i:02}"), "scopes": ["sessions:read"]}))
            .await;
        w.clock.advance(Duration::minutes(1));
    }
    let mut ui = w.ui(COLOR, 80, 24).await;
    ui.press(KeyCode::Char('a')).await;
    let top = ui.screen();
    assert!(
        top.contains("Audit log · 25 entries") && top.contains(" 1-18 of 25 "),
        "{top}"
    );
    // Each row names the key and its prefix.
    assert!(top.contains("created  “Key 25” eg_live_"), "{top}");
    // G to the end; further down and a page down stay there.
    ui.press(KeyCode::Char('G')).await;
    let bottom = ui.screen();
    assert!(
        bottom.contains(" 8-25 of 25 ") && bottom.contains("“Key 01”"),
        "{bottom}"
    );
    assert_screen!("audit_80x24", bottom);
    ui.press(KeyCode::Char('j')).await;
    ui.press(KeyCode::PageDown).await;
    assert_eq!(ui.screen(), bottom, "no scrolling past the end");
    ui.press(KeyCode::Char('g')).await;
    assert!(ui.screen().contains(" 1-18 of 25 "));
    // / filters the entries.
    ui.press(KeyCode::Char('/')).await;
    ui.type_text("key 1").await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Audit log · 10 entries")
            && screen.contains("“Key 19”")
            && !screen.contains("“Key 20”"),
        "{screen}"
    );
    ui.press(KeyCode::Esc).await;
    assert!(
        ui.screen().contains("Audit log · 25 entries"),
        "Esc clears the filter first"
    );
    ui.press(KeyCode::Esc).await;
    assert!(!ui.screen().contains("Audit log"));
    // From a key's details, a: that key's log alone.
    ui.press(KeyCode::Enter).await;
    ui.press(KeyCode::Char('a')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Audit log of “Key 25” · 1 entry") && !screen.contains("“Key 24”"),
        "{screen}"
    );
    ui.press(KeyCode::Esc).await;
    assert!(ui.screen().contains("Key details"), "back to the details");
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_longer_than_the_screen_shows_a_position_and_a_scrollbar() {
    let w = World::new().await;
    for i in 1..=30 {
        w.create(json!({"name": format!("Key {i:02}"), "scopes": ["sessions:read"]}))
            .await;
        w.clock.advance(Duration::minutes(1));
    }
    let mut ui = w.ui(COLOR, 80, 24).await;
    let screen = ui.screen();
    let title = screen.lines().next().unwrap();
    assert!(title.ends_with("1/30 · 30 keys"), "{title}");
    let track = |screen: &str| -> String {
        screen
            .lines()
            .skip(4)
            .take(ui_rows(screen))
            .map(|l| l.chars().nth(79).unwrap_or(' '))
            .collect()
    };
    // The thumb is at the top, then at the bottom after G.
    let top = track(&screen);
    assert!(
        top.starts_with('█') && top.ends_with('║'),
        "{top:?}\n{screen}"
    );
    ui.press(KeyCode::Char('G')).await;
    let screen = ui.screen();
    assert!(
        screen.lines().next().unwrap().ends_with("30/30 · 30 keys"),
        "{screen}"
    );
    let bottom = track(&screen);
    assert!(
        bottom.starts_with('║') && bottom.ends_with('█'),
        "{bottom:?}\n{screen}"
    );
    // Everything fits again: no position, no scrollbar.
    ui.resize(80, 40).await;
    let screen = ui.screen();
    assert!(
        screen.lines().next().unwrap().ends_with(" 30 keys") && !screen.contains("30/30"),
        "{screen}"
    );
    assert!(!screen.contains('█'), "{screen}");
    w.server.stop().await;
}

/// Rows of the table on an 80×24 screen: between the header and the footer.
fn ui_rows(screen: &str) -> usize {
    screen.lines().count().saturating_sub(5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_create_form_with_the_service_away_shows_the_whole_message_and_its_buttons() {
    let w = World::new().await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    ui.press(KeyCode::Char('n')).await;
    ui.type_text("Deploy bot").await;
    for _ in 0..3 {
        ui.press(KeyCode::Tab).await;
    }
    ui.press(KeyCode::Char(' ')).await;
    w.server.stop().await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    // The whole sentence, however it wraps, and both buttons.
    let text: String = screen
        .lines()
        .map(|l| l.trim_matches(|c| c == ' ' || c == '│'))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains(
            "The key may or may not exist; Enter tries again safely (it cannot create two)."
        ),
        "{screen}"
    );
    assert!(
        screen.contains("[ Create ]") && screen.contains("[ Cancel ]"),
        "{screen}"
    );
    assert!(
        screen.contains("Enter create"),
        "the border's hints: {screen}"
    );
    assert_screen!("create_service_away_80x24", screen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sorted_columns_header_carries_the_arrow() {
    let w = World::new().await;
    twelve_keys(&w).await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    let header = |ui: &mut Harness| ui.screen().lines().nth(3).unwrap().to_owned();
    // Sorted by Created, hidden at 80 columns: no header is marked.
    assert!(!header(&mut ui).contains('↓'), "{}", header(&mut ui));
    ui.press(KeyCode::Char('s')).await;
    assert!(header(&mut ui).contains("Name ↓"), "{}", header(&mut ui));
    ui.press(KeyCode::Char('S')).await;
    assert!(header(&mut ui).contains("Name ↑"), "{}", header(&mut ui));
    ui.press(KeyCode::Char('s')).await;
    assert!(
        header(&mut ui).contains("Last Used ↓"),
        "{}",
        header(&mut ui)
    );
    // Attention is ordered worst first: no column is marked.
    ui.press(KeyCode::Char('5')).await;
    assert!(!header(&mut ui).contains('↓'), "{}", header(&mut ui));
    w.server.stop().await;
}

/// The title's first line.
fn title(ui: &mut Harness) -> String {
    ui.screen().lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_title_says_how_fresh_the_data_is_and_r_shows_its_progress() {
    use keydeck::tui::action::Action;
    let w = World::new().await;
    twelve_keys(&w).await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    // Just loaded: nothing to say.
    assert!(!title(&mut ui).contains("updated"), "{}", title(&mut ui));
    w.clock.advance(Duration::seconds(14));
    ui.send(Action::Tick).await;
    assert!(!title(&mut ui).contains("updated"), "{}", title(&mut ui));
    // From 15 s on, in 15-second steps, and the runner wakes for the next one.
    w.clock.advance(Duration::seconds(3));
    ui.send(Action::Tick).await;
    let t = title(&mut ui);
    assert!(t.ends_with("updated 15s ago · 12 keys"), "{t}");
    assert_eq!(ui.app.next_wakeup(), ui.app.now() + Duration::seconds(13));
    // The automatic refresh (every 30 s) makes it fresh again.
    ui.app.set_refresh_every(Duration::hours(1));
    w.clock.advance(Duration::seconds(13));
    ui.send(Action::Tick).await;
    assert!(!title(&mut ui).contains("updated"), "{}", title(&mut ui));
    w.clock.advance(Duration::seconds(50));
    ui.send(Action::Tick).await;
    assert!(title(&mut ui).ends_with("updated 45s ago · 12 keys"));
    // Then rounded as the table's relative times are.
    w.clock.advance(Duration::seconds(125));
    ui.send(Action::Tick).await;
    assert!(title(&mut ui).ends_with("updated 3m ago · 12 keys"));
    // `r`: a quick answer shows as `updated just now`; one still out after
    // 200 ms as `refreshing…` (a key made meanwhile comes with it).
    w.create(json!({"name": "Made meanwhile", "scopes": ["sessions:read"]}))
        .await;
    ui.app.update(Action::Key(keymap_key('r')));
    assert!(title(&mut ui).ends_with("updated 3m ago · 12 keys"));
    assert_eq!(
        ui.app.next_wakeup(),
        ui.app.now() + Duration::milliseconds(200)
    );
    w.clock.advance(Duration::milliseconds(200));
    ui.app.update(Action::Tick);
    let screen = ui.screen();
    assert!(
        screen
            .lines()
            .next()
            .unwrap()
            .ends_with("refreshing… · 12 keys"),
        "{screen}"
    );
    assert_screen!("refreshing_80x24", screen);
    ui.settle().await;
    let t = title(&mut ui);
    assert!(t.ends_with("updated just now · 13 keys"), "{t}");
    w.clock.advance(Duration::seconds(16));
    ui.send(Action::Tick).await;
    assert!(title(&mut ui).ends_with("updated 15s ago · 13 keys"));
    // With the service away, `r` ends in the banner, and the title still
    // says how old what shows is.
    w.server.stop().await;
    w.clock.advance(Duration::seconds(50));
    ui.press(KeyCode::Char('r')).await;
    let screen = ui.screen();
    let t = screen.lines().next().unwrap();
    assert!(t.ends_with("updated 1m ago · 13 keys"), "{screen}");
    assert!(screen.contains("⚠"), "{screen}");
}

fn keymap_key(c: char) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(KeyCode::Char(c), crossterm::event::KeyModifiers::NONE)
}

/// Creates a key through the form and returns the secret its copy-once
/// modal shows.
async fn create_through_the_form(ui: &mut Harness) -> String {
    ui.press(KeyCode::Char('n')).await;
    ui.type_text("Deploy workflow for the payments service (production)")
        .await;
    for _ in 0..3 {
        ui.press(KeyCode::Tab).await;
    }
    ui.press(KeyCode::Char(' ')).await; // Sessions (Read)
    ui.press(KeyCode::Enter).await;
    common::ui::secret_on(&ui.screen())
}

/// What the copy-once modal must keep in view: the whole secret (on one
/// line, inside the border), its copy hint and its confirm key.
fn copy_once_whole(screen: &str, secret: &str) {
    let line = screen
        .lines()
        .find(|l| l.contains(secret))
        .unwrap_or_else(|| panic!("the whole secret on one line:\n{screen}"));
    assert!(
        line.trim().starts_with('│') && line.trim().ends_with('│'),
        "{line}"
    );
    assert!(
        screen.contains("c copy") && screen.contains("Enter/Esc close"),
        "{screen}"
    );
    assert!(
        screen.contains("Copy your API key now — it will not be shown again"),
        "{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_once_modal_keeps_the_secret_and_its_keys_at_80x24_and_60x20() {
    use keydeck::tui::action::Action;
    let w = World::new().await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    let secret = create_through_the_form(&mut ui).await;
    let mask = format!("eg_live_{}", "X".repeat(secret.len() - 8));
    let screen = ui.screen();
    copy_once_whole(&screen, &secret);
    assert_screen!("copy_once_80x24", screen.replace(&secret, &mask));
    ui.resize(60, 20).await;
    let screen = ui.screen();
    copy_once_whole(&screen, &secret);
    assert_screen!("copy_once_60x20", screen.replace(&secret, &mask));
    // At the minimum width the secret wraps inside the border, never cut;
    // the advice gives way before the keys do.
    ui.resize(40, 10).await;
    let screen = ui.screen();
    let (head, tail) = secret.split_at(38);
    let rows: Vec<&str> = screen.lines().collect();
    let at = rows
        .iter()
        .position(|l| l.contains(&format!("│{head}│")))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(rows[at + 1].starts_with(&format!("│{tail} ")), "{screen}");
    assert!(
        screen.contains("c copy") && !screen.contains("Store it"),
        "{screen}"
    );
    // Below the minimum: the notice, and `q` does not lose the secret.
    ui.resize(30, 8).await;
    assert!(ui.screen().contains("Terminal too small"));
    ui.press(KeyCode::Char('q')).await;
    assert!(!ui.app.should_quit());
    assert!(
        ui.screen().contains("Not quitting: the new secret")
            && ui.screen().contains("is not copied yet"),
        "{}",
        ui.screen()
    );
    // Back to 60×20: the same secret, whole, and it still works.
    ui.resize(60, 20).await;
    copy_once_whole(&ui.screen(), &secret);
    assert_eq!(w.auth(&secret, "sessions:read").await, 200);
    ui.send(Action::Resize(80, 24)).await;
    w.server.stop().await;
}
