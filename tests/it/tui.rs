//! The terminal UI drawn into ratatui's `TestBackend`, driven by key events,
//! against the real key service in-process over HTTP (no mocked client).

use crate::common;

use std::sync::Arc;

use chrono::Duration;
use common::add_org;
use common::ui::{start_time, World};
use crossterm::event::KeyCode;
use keydeck::client::Client;
use keydeck::clock::Clock;
use keydeck::key::Secret;
use keydeck::store::Plan;
use keydeck::tui::action::Action;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use ratatui::style::Color;
use serde_json::json;

const COLOR: Theme = Theme { color: true };
const NO_COLOR: Theme = Theme { color: false };

/// Random parts of prefixes and ids, masked so snapshots are stable.
macro_rules! assert_screen {
    ($name:expr, $screen:expr) => {
        insta::with_settings!({filters => vec![
            (r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"), (r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX..."),
            (r"key_[0-9A-Za-z]{20}", "key_XXXXXXXXXXXXXXXXXXXX"),
            (r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:PORT"),
        ]}, {
            insta::assert_snapshot!($name, $screen);
        });
    };
}

/// Keys in all three statuses, created over an hour of the shared clock.
async fn seed_all_statuses(w: &World) {
    w.create(json!({"name": "Billing worker", "description": "Nightly invoice export", "scopes": ["resources:read"],
            "expires_at": start_time() + Duration::minutes(30)}))
            .await;
    w.clock.advance(Duration::minutes(10));
    let revoked = w
        .create(json!({"name": "Old deploy key", "scopes": ["sessions:read", "sessions:write"]}))
        .await;
    w.server
        .revoke(revoked["api_key"]["id"].as_str().unwrap())
        .await;
    w.clock.advance(Duration::minutes(10));
    let used = w
            .create(json!({"name": "CI/CD Pipeline", "description": "Used by GitHub Actions deploy workflow",
                "scopes": ["sessions:read", "resources:read"], "expires_at": start_time() + Duration::days(90)}))
            .await;
    w.clock.advance(Duration::minutes(5));
    assert_eq!(
        w.server
            .auth(used["secret"].as_str().unwrap(), None)
            .await
            .status(),
        200
    );
    w.clock.advance(Duration::minutes(5));
    w.create(json!({"name": "Grafana dashboards", "scopes": ["full_access"]}))
        .await;
    // The billing key's expiry passes.
    w.clock.advance(Duration::minutes(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_at_80x24_and_120x40_with_every_status() {
    let w = World::new().await;
    seed_all_statuses(&w).await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    assert_screen!("table_80x24", ui.screen());
    ui.resize(120, 40).await;
    assert_screen!("table_120x40", ui.screen());
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_state_says_how_to_create_the_first_key() {
    let w = World::new().await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    let screen = ui.screen();
    assert!(screen.contains("No API keys yet"));
    assert_screen!("empty_80x24", screen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_every_binding() {
    let w = World::new().await;
    let mut ui = w.ui(COLOR, 100, 50).await;
    // The help says the configured refresh interval; this is the default one.
    ui.app.set_refresh_every(Duration::seconds(30));
    ui.press(KeyCode::Char('?')).await;
    let screen = ui.screen();
    // Every line, read a page at a time (the help is longer than 50 rows).
    let mut read = screen.clone();
    loop {
        let before = ui.screen();
        ui.press(KeyCode::PageDown).await;
        let after = ui.screen();
        if after == before {
            break;
        }
        read.push_str(&after);
    }
    ui.press(KeyCode::Char('g')).await;
    for binding in keydeck::tui::keymap::help_sections(Duration::seconds(30))
        .iter()
        .flat_map(|(_, b)| b.iter())
    {
        assert!(
            read.contains(binding.0) && read.contains(&binding.1),
            "{binding:?} in help:\n{read}"
        );
    }
    for binding in [
        "j / ↓",
        "PgDn / PgUp",
        "g / Home",
        "G / End",
        "1-5 / Tab",
        "s / S",
        "q / Ctrl-C",
        "d / Delete",
    ] {
        assert!(read.contains(binding), "{binding} in help:\n{read}");
    }
    assert_screen!("help_100x50", screen);
    ui.press(KeyCode::Esc).await;
    assert!(!ui.screen().contains("Help"));
    // At 80×24 it scrolls.
    ui.resize(80, 24).await;
    ui.press(KeyCode::Char('?')).await;
    let top = ui.screen();
    assert!(
        top.contains("↓ more") && !top.contains("q / Ctrl-C"),
        "{top}"
    );
    assert_screen!("help_80x24", top);
    ui.press(KeyCode::End).await;
    let bottom = ui.screen();
    assert!(
        bottom.contains("q / Ctrl-C") && bottom.contains("Esc back"),
        "{bottom}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_show_every_field_in_exact_time() {
    let w = World::new().await;
    seed_all_statuses(&w).await;
    let mut ui = w.ui(COLOR, 100, 30).await;
    // Sorted by creation, newest first: Grafana, CI/CD, Old deploy, Billing.
    ui.press(KeyCode::Char('j')).await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    for expected in [
        "CI/CD Pipeline",
        "Used by GitHub Actions deploy workflow",
        "2030-01-15 09:20:00 +00:00",
        "admin@localhost",
        "2030-04-15 09:00:00 +00:00",
        "2030-01-15 09:25:00 +00:00",
        "Sessions:R · Sessions (Read) · sessions:read",
        "Resources (Read)",
    ] {
        assert!(screen.contains(expected), "{expected} in:\n{screen}");
    }
    assert_screen!("details_100x30", screen);
    // A revoked key says who revoked it and when.
    ui.press(KeyCode::Esc).await;
    ui.press(KeyCode::Char('j')).await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoked")
            && screen.contains("2030-01-15 09:10:00 +00:00 (")
            && screen.contains("by admin@localhost"),
        "{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_banners_say_what_to_do() {
    let w = World::new().await;
    let store = w.backend.store().await;
    let (_, member) = add_org(store.as_ref(), "acme", Plan::Paid).await;
    let (free_admin, _) = add_org(store.as_ref(), "cheapco", Plan::Free).await;
    let clock: Arc<dyn Clock> = w.clock.clone();
    let cases = [
        (
            "banner_401",
            Secret::new("kdt_not_a_real_token".into()),
            "access token was refused",
        ),
        (
            "banner_402",
            Secret::new(free_admin),
            "API keys are available on the Paid plan only.",
        ),
        (
            "banner_403",
            Secret::new(member),
            "Only organisation admins",
        ),
    ];
    for (name, token, expected) in cases {
        let client = Client::new(&w.server.base, token).unwrap();
        let mut ui = Harness::start(client, clock.clone(), COLOR, 80, 24).await;
        let screen = ui.screen();
        assert!(screen.contains(expected), "{name}: {screen}");
        assert_screen!(name, screen);
    }
    // Timeout: something accepts connections but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let client = Client::with_timeout(
        &silent_url,
        Secret::new("kdt_x".into()),
        std::time::Duration::from_millis(300),
    )
    .unwrap();
    let mut ui = Harness::start(client, clock.clone(), COLOR, 80, 24).await;
    let screen = ui.screen();
    assert!(screen.contains("did not answer in time"), "{screen}");
    assert_screen!("banner_timeout", screen);
    assert!(
        ui.app.banner().unwrap().retry_at.is_some(),
        "retries by itself"
    );
    held.abort();
    // Unreachable: nothing listens on the port any more.
    let base = w.server.base.clone();
    w.server.stop().await;
    let client = Client::new(&base, Secret::new("kdt_x".into())).unwrap();
    let mut ui = Harness::start(client, clock, COLOR, 80, 24).await;
    let screen = ui.screen();
    assert!(screen.contains("Cannot reach the key service"), "{screen}");
    assert_screen!("banner_unreachable", screen);
    assert!(
        ui.app.banner().unwrap().retry_at.is_some(),
        "retries by itself"
    );
}

/// The Status cell of the row whose Name starts with `name`: its symbol and style.
fn status_cell(ui: &mut Harness, name: &str, word: &str) -> (String, Option<Color>) {
    let buffer = ui.draw().clone();
    let area = buffer.area;
    for y in 0..area.height {
        let line: String = (0..area.width)
            .map(|x| buffer[(x, y)].symbol().to_owned())
            .collect();
        if !line.trim_start().starts_with(name) {
            continue;
        }
        let col = line
            .find(word)
            .unwrap_or_else(|| panic!("{word} in row {line:?}"));
        let x = u16::try_from(line[..col].chars().count()).unwrap();
        let symbol = buffer[(x - 2, y)].symbol().to_owned();
        let fg = buffer[(x, y)].fg;
        assert_eq!(
            buffer[(x - 2, y)].fg,
            fg,
            "the symbol has the word's colour"
        );
        return (symbol, (fg != Color::Reset).then_some(fg));
    }
    panic!("no row for {name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_colours_and_no_color() {
    let w = World::new().await;
    seed_all_statuses(&w).await;
    let mut ui = w.ui(COLOR, 120, 30).await;
    // Move the selection away so the rows checked are not reversed.
    ui.press(KeyCode::Char('G')).await;
    assert_eq!(
        status_cell(&mut ui, "Grafana", "Active"),
        ("●".into(), Some(Color::Green))
    );
    assert_eq!(
        status_cell(&mut ui, "Old deploy", "Revoked"),
        ("✕".into(), Some(Color::Red))
    );
    ui.press(KeyCode::Char('g')).await;
    assert_eq!(
        status_cell(&mut ui, "Billing", "Expired"),
        ("◷".into(), Some(Color::Yellow))
    );

    let mut plain = w.ui(NO_COLOR, 120, 30).await;
    plain.press(KeyCode::Char('G')).await;
    assert_eq!(
        status_cell(&mut plain, "Grafana", "Active"),
        ("●".into(), None)
    );
    assert_eq!(
        status_cell(&mut plain, "Old deploy", "Revoked"),
        ("✕".into(), None)
    );
    plain.press(KeyCode::Char('g')).await;
    assert_eq!(
        status_cell(&mut plain, "Billing", "Expired"),
        ("◷".into(), None)
    );
    let buffer = plain.draw().clone();
    assert!(
        buffer
            .content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "no colour at all under NO_COLOR"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_turns_expired_when_its_expiry_passes_without_a_refresh() {
    let w = World::new().await;
    w.create(json!({"name": "Short lived", "scopes": ["sessions:read"], "expires_at": start_time() + Duration::minutes(2)})).await;
    let mut ui = w.ui(COLOR, 100, 20).await;
    ui.press(KeyCode::Char('2')).await;
    assert!(ui.screen().contains("Active"));
    // The UI wakes up at the expiry instant.
    w.clock.set(start_time() + Duration::seconds(110));
    ui.send(Action::Tick).await;
    assert_eq!(ui.app.next_wakeup(), start_time() + Duration::minutes(2));
    // The service is gone: whatever changes now comes from the UI alone.
    w.server.stop().await;
    w.clock.set(start_time() + Duration::minutes(2));
    ui.send(Action::Tick).await;
    let screen = ui.screen();
    assert!(
        screen.contains("2 Active (0)") && screen.contains("3 Expired (1)"),
        "{screen}"
    );
    assert!(
        !screen.contains("Short lived"),
        "the Active tab no longer shows it"
    );
    ui.press(KeyCode::Char('3')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Short lived") && screen.contains("◷ Expired"),
        "{screen}"
    );
    assert!(ui.app.banner().is_none(), "no request was needed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn navigation_filter_tabs_and_sort() {
    let w = World::new().await;
    for name in ["alpha", "bravo", "charlie", "delta", "echo"] {
        w.create(json!({"name": name, "scopes": ["sessions:read"]}))
            .await;
        w.clock.advance(Duration::minutes(1));
    }
    let mut ui = w.ui(COLOR, 80, 24).await;
    let selected = |ui: &Harness| ui.app.selected_key().unwrap().name.clone();
    assert_eq!(selected(&ui), "echo");
    ui.press(KeyCode::Char('j')).await;
    ui.press(KeyCode::Down).await;
    assert_eq!(selected(&ui), "charlie");
    ui.press(KeyCode::Char('k')).await;
    assert_eq!(selected(&ui), "delta");
    ui.press(KeyCode::Char('G')).await;
    assert_eq!(selected(&ui), "alpha");
    ui.press(KeyCode::Home).await;
    assert_eq!(selected(&ui), "echo");
    ui.press(KeyCode::End).await;
    ui.press(KeyCode::Char('g')).await;
    ui.press(KeyCode::PageDown).await;
    assert_eq!(selected(&ui), "alpha");
    ui.press(KeyCode::PageUp).await;
    assert_eq!(selected(&ui), "echo");

    // The selection stays on the same key across a refresh that adds one above it.
    ui.press(KeyCode::Char('j')).await;
    w.create(json!({"name": "foxtrot", "scopes": ["sessions:read"]}))
        .await;
    ui.press(KeyCode::Char('r')).await;
    assert_eq!(ui.app.keys().len(), 6);
    assert_eq!(selected(&ui), "delta");

    // Sort by name, then reversed.
    ui.press(KeyCode::Char('s')).await;
    assert!(ui.screen().contains("sort: Name ↓"));
    let names = |ui: &Harness| {
        ui.app
            .rows()
            .iter()
            .map(|&i| ui.app.keys()[i].name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&ui),
        ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    );
    ui.press(KeyCode::Char('S')).await;
    assert_eq!(names(&ui)[0], "foxtrot");
    assert_eq!(selected(&ui), "delta");

    // Filter, then Esc clears it.
    ui.press(KeyCode::Char('/')).await;
    ui.type_text("ha").await;
    // The filter also matches the display prefix, whose four random characters
    // can hold "ha" (about 1 run in 100): such a row must be explained by it.
    let shown = names(&ui);
    let by_name: Vec<_> = shown.iter().filter(|n| n.contains("ha")).collect();
    assert_eq!(by_name, ["charlie", "alpha"]);
    for &i in ui.app.rows() {
        let k = &ui.app.keys()[i];
        assert!(
            k.name.contains("ha") || k.prefix.to_lowercase().contains("ha"),
            "{} matches neither by name nor by prefix {}",
            k.name,
            k.prefix
        );
    }
    ui.press(KeyCode::Enter).await;
    assert!(ui.screen().contains("/ ha"));
    ui.press(KeyCode::Esc).await;
    assert_eq!(names(&ui).len(), 6);

    // Scopes match by the name the table shows, the label and the id alike.
    for (needle, rows) in [
        ("Sessions:R", 6),
        ("sessions (read)", 6),
        ("sessions:read", 6),
        ("Resources:R", 0),
    ] {
        ui.press(KeyCode::Char('/')).await;
        ui.type_text(needle).await;
        assert_eq!(names(&ui).len(), rows, "filter {needle}");
        ui.press(KeyCode::Esc).await;
    }
    assert_eq!(names(&ui).len(), 6);

    // Tabs: nothing is revoked.
    ui.press(KeyCode::Char('4')).await;
    assert!(ui.screen().contains("No revoked keys match"));
    ui.press(KeyCode::Tab).await;
    assert_eq!(names(&ui).len(), 6, "Tab wraps around to All");
    ui.press(KeyCode::Char('q')).await;
    assert!(ui.app.should_quit());
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_organisations_page_through_the_cursor_and_draw_only_visible_rows() {
    let w = World::new().await;
    let store = w.backend.store().await;
    keydeck::accounts::seed(store.as_ref(), "default", 1_234, w.clock.as_ref())
        .await
        .unwrap();
    store.close().await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    assert_eq!(ui.app.keys().len(), 1_234, "three pages of 500 joined");
    ui.press(KeyCode::End).await;
    assert_eq!(ui.app.selected(), 1_233);
    let screen = ui.screen();
    assert!(screen.contains("1234 keys"));
    assert_eq!(ui.app.offset(), 1_234 - ui.app.page_rows());
    ui.press(KeyCode::PageUp).await;
    assert_eq!(ui.app.selected(), 1_233 - ui.app.page_rows());
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_terminals_get_a_notice_not_a_panic() {
    let w = World::new().await;
    seed_all_statuses(&w).await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    ui.resize(40, 10).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Name") && screen.contains("Status"),
        "{screen}"
    );
    ui.resize(20, 5).await;
    assert!(ui.screen().contains("too small"));
    ui.resize(1, 1).await;
    ui.screen();
    ui.resize(80, 24).await;
    assert!(ui.screen().contains("Name") && ui.screen().contains(" eg_live_ "));
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footer_at_80_columns_keeps_quit_and_filter_and_ends_with_more() {
    let w = World::new().await;
    seed_all_statuses(&w).await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    let screen = ui.screen();
    let footer = screen.lines().last().unwrap().trim_end().to_owned();
    assert!(footer.ends_with("… ? more"), "{footer}");
    assert!(
        footer.contains("q quit") && footer.contains("/ filter"),
        "{footer}"
    );
    assert_screen!("footer_80x24", footer);
    // Wide enough for everything: no ellipsis, `? help` in its place.
    ui.resize(200, 24).await;
    let screen = ui.screen();
    let footer = screen.lines().last().unwrap();
    assert!(
        !footer.contains('…') && footer.contains("? help") && footer.contains("1-5 tabs"),
        "{footer}"
    );
    w.server.stop().await;
}
