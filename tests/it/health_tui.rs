//! Best practices at a glance, in the terminal UI against the real service:
//! keys in every state made with a hand-moved clock, then the summary line,
//! the Health badges, the Attention tab (order, footer, its one-key actions),
//! the reasons in the details, and the three palettes and `NO_COLOR` as
//! styled snapshots.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::ui::{past_gutter, start_time, World};
use crossterm::event::KeyCode;
use keydeck::key::policy::Policy;
use keydeck::tui::testing::{buffer_text, Harness};
use keydeck::tui::theme::{Palette, Theme};
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use serde_json::{json, Value};

const COLOR: Theme = Theme { color: true };
const NO_COLOR: Theme = Theme { color: false };

/// The instant the UI looks at the keys: 100 days after the clock starts.
fn now() -> DateTime<Utc> {
    start_time() + Duration::days(100)
}

fn day(d: i64) -> DateTime<Utc> {
    start_time() + Duration::days(d)
}

/// Creates a key at day `at` of the clock (expiring at day `expires`, if
/// any); returns its secret and id.
async fn key_at(w: &World, at: i64, name: &str, expires: Option<i64>) -> (String, String) {
    w.clock.set(day(at));
    let mut body = json!({"name": name, "scopes": ["sessions:read"]});
    if let Some(e) = expires {
        body["expires_at"] = json!(day(e));
    }
    let created: Value = w.create(body).await;
    (
        created["secret"].as_str().unwrap().to_owned(),
        created["api_key"]["id"].as_str().unwrap().to_owned(),
    )
}

/// One key in each health state, each created at its own instant (so the
/// table's order is fixed), and the clock at [`now`]:
///
/// | key | created | expires | last used | badge |
/// | --- | --- | --- | --- | --- |
/// | Ancient rotate | day -20 (120 days ago) | in 200 days | yesterday | rotate |
/// | Old rotate | day 0 (100 days ago) | in 200 days | yesterday | rotate |
/// | Idle | 45 days ago | in 100 days | never | unused |
/// | Lapsed | 40 days ago | 2 days ago | never | (expired, not revoked) |
/// | Expiring soon | 20 days ago | in 3 days | yesterday | expiring |
/// | Expiring sooner | 19 days ago | tomorrow | yesterday | expiring |
/// | Healthy | 10 days ago | in 60 days | yesterday | none |
/// | Forever | 5 days ago | never | yesterday | no expiry |
/// | Retired | 4 days ago | never | never | none (revoked) |
async fn seed_every_state(w: &World) {
    let (ancient, _) = key_at(w, -20, "Ancient rotate", Some(300)).await;
    let (old, _) = key_at(w, 0, "Old rotate", Some(300)).await;
    key_at(w, 55, "Idle", Some(200)).await;
    key_at(w, 60, "Lapsed", Some(98)).await;
    let (soon, _) = key_at(w, 80, "Expiring soon", Some(103)).await;
    let (sooner, _) = key_at(w, 81, "Expiring sooner", Some(101)).await;
    let (healthy, _) = key_at(w, 90, "Healthy", Some(160)).await;
    let (forever, _) = key_at(w, 95, "Forever", None).await;
    let (_, retired) = key_at(w, 96, "Retired", None).await;
    assert_eq!(w.server.revoke(&retired).await.status(), 200);
    w.clock.set(day(99));
    for secret in [&ancient, &old, &soon, &sooner, &healthy, &forever] {
        assert_eq!(w.server.auth(secret, None).await.status(), 200);
    }
    w.clock.set(now());
}

/// The screen line of the row for `name` (the Name column is wider than any name).
fn row<'a>(screen: &'a str, name: &str) -> &'a str {
    screen
        .lines()
        .find(|l| past_gutter(l).starts_with(&format!("{name}  ")))
        .unwrap_or_else(|| panic!("a row for {name} in:\n{screen}"))
}

/// The table's header line.
fn header(screen: &str) -> &str {
    screen
        .lines()
        .find(|l| past_gutter(l).starts_with("Name "))
        .unwrap_or_else(|| panic!("a table header in:\n{screen}"))
}

/// The Health cell of a row: the characters under the Health header, up to
/// the next column's header.
fn health_of(screen: &str, name: &str) -> String {
    let header = header(screen);
    let start = header.find("Health").expect("a Health column");
    let end = header[start..]
        .find(" C")
        .map(|gap| start + gap + 1)
        .unwrap_or(usize::MAX);
    let line: Vec<char> = row(screen, name).chars().collect();
    line[start.min(line.len())..end.min(line.len())]
        .iter()
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The names of the rows the table shows, in order.
fn names(ui: &Harness) -> Vec<String> {
    ui.app
        .rows()
        .iter()
        .map(|&i| ui.app.keys()[i].name.clone())
        .collect()
}

async fn select(ui: &mut Harness, name: &str) {
    ui.press(KeyCode::Home).await;
    let at = names(ui)
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("{name} in the table"));
    for _ in 0..at {
        ui.press(KeyCode::Char('j')).await;
    }
    assert_eq!(ui.app.selected_key().unwrap().name, name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_and_badges_over_every_state() {
    let w = World::new().await;
    seed_every_state(&w).await;
    let mut ui = w.ui(COLOR, 140, 20).await;
    let screen = ui.screen();
    assert_eq!(
        screen.lines().nth(1).unwrap().trim(),
        "7 active · 2 expiring within 7d · 2 rotation due · 1 unused 30d+ · 1 expired, not revoked",
        "{screen}"
    );
    for (name, badge) in [
        ("Ancient rotate", "rotate"),
        ("Old rotate", "rotate"),
        ("Idle", "unused"),
        ("Expiring soon", "expiring"),
        ("Expiring sooner", "expiring"),
        ("Forever", "no expiry"),
        ("Healthy", ""),
        ("Lapsed", ""),
        ("Retired", ""),
    ] {
        assert_eq!(health_of(&screen, name), badge, "{name}:\n{screen}");
    }
    assert!(
        row(&screen, "Lapsed").contains("◷ Expired"),
        "keeps its status"
    );
    assert!(screen.contains("5 Attention (7)"), "{screen}");

    // The summary counts every key, not the filtered ones.
    ui.press(KeyCode::Char('/')).await;
    ui.type_text("Healthy").await;
    ui.press(KeyCode::Enter).await;
    assert_eq!(names(&ui), ["Healthy"]);
    assert!(ui.screen().contains("7 active · 2 expiring within 7d"));
    ui.press(KeyCode::Esc).await;

    // The thresholds are the policy's: a longer warning window, a shorter rotation.
    ui.app.set_policy(Policy {
        expiring_within_days: 70,
        rotate_after_days: 7,
        ..Policy::default()
    });
    let screen = ui.screen();
    assert!(
        screen.contains("7 active · 3 expiring within 70d · 6 rotation due · 1 unused 30d+ · 1 expired, not revoked"),
        "{screen}"
    );
    assert_eq!(health_of(&screen, "Healthy"), "expiring · rotate");

    // A policy the older keys break: they keep working, with the policy badge.
    ui.app.set_policy(Policy {
        max_lifetime_days: Some(90),
        ..Policy::default()
    });
    let screen = ui.screen();
    assert_eq!(health_of(&screen, "Old rotate"), "rotate · policy");
    assert_eq!(health_of(&screen, "Forever"), "no expiry · policy");
    assert_eq!(health_of(&screen, "Healthy"), "", "70 days is within 90");
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrow_terminals_keep_the_health_column_until_last_but_one() {
    let w = World::new().await;
    seed_every_state(&w).await;
    let mut ui = w.ui(COLOR, 80, 20).await;
    let screen = ui.screen();
    let columns = header(&screen);
    assert!(
        columns.contains("Health") && !columns.contains("Created"),
        "{screen}"
    );
    assert_eq!(health_of(&screen, "Forever"), "no expiry");
    assert_eq!(
        screen.lines().nth(1).unwrap().trim(),
        "7 active · 2 expiring · 2 rotate · 1 unused · 1 expired",
        "the whole line does not fit in 80 columns: the badges' words alone"
    );
    ui.resize(40, 20).await;
    let screen = ui.screen();
    let columns = header(&screen);
    assert!(
        columns.contains("Health") && columns.contains("Status"),
        "{screen}"
    );
    assert!(!columns.contains("Key Prefix"), "{screen}");
    assert!(row(&screen, "Idle").contains("unused"), "{screen}");
    w.server.stop().await;
}

/// At 80×24 the Health column is narrow: a key with two badges still says
/// there is a second one (`+1`), its first word cut with `…` to make room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_badges_in_a_narrow_health_column_keep_their_count() {
    let w = World::new().await;
    seed_every_state(&w).await;
    // 45 days old, never used, expiring in 3 days: expiring and unused.
    // Its long name takes the table's spare room: Health keeps its least.
    let name = "GitHub Actions deploy workflow for production";
    key_at(&w, 55, name, Some(103)).await;
    w.clock.set(now());
    let mut ui = w.ui(COLOR, 80, 24).await;
    let screen = ui.screen();
    let start = header(&screen).find("Health").expect("a Health column");
    assert!(
        80 - start <= 10,
        "Health: the last column, narrow:\n{screen}"
    );
    let line = screen
        .lines()
        .find(|l| l.contains("GitHub Action…production"))
        .expect("its row");
    let cell: String = line.chars().skip(start).collect();
    assert_eq!(cell.trim(), "expir… +1", "{screen}");
    assert_eq!(
        health_of(&screen, "Forever"),
        "no expiry",
        "one badge: whole"
    );
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attention_lists_the_worst_first_and_acts_in_one_key() {
    let w = World::new().await;
    seed_every_state(&w).await;
    let mut ui = w.ui(COLOR, 140, 20).await;
    ui.press(KeyCode::Char('5')).await;
    let order = [
        "Lapsed",
        "Expiring sooner",
        "Expiring soon",
        "Ancient rotate",
        "Old rotate",
        "Idle",
        "Forever",
    ];
    assert_eq!(names(&ui), order);
    let screen = ui.screen();
    assert!(screen.contains("sort: worst first"), "{screen}");
    let footer = screen.lines().last().unwrap();
    for hint in ["d revoke", "R rotate", "X revoke all expired"] {
        assert!(footer.contains(hint), "{hint} in {footer:?}");
    }
    // It is in the Tab cycle: after Revoked, before All.
    ui.press(KeyCode::Char('4')).await;
    ui.press(KeyCode::Tab).await;
    assert_eq!(names(&ui), order);
    ui.press(KeyCode::Tab).await;
    assert_eq!(names(&ui).len(), 9, "then All");
    ui.press(KeyCode::BackTab).await;
    assert_eq!(names(&ui), order);

    // X revokes every expired key: the first row goes, and its summary term.
    ui.press(KeyCode::Char('X')).await;
    assert!(ui.screen().contains("Lapsed"));
    ui.press(KeyCode::Char('y')).await;
    assert_eq!(names(&ui), order[1..]);
    let screen = ui.screen();
    assert!(!screen.contains("expired, not revoked"), "{screen}");
    assert!(screen.contains("5 Attention (6)"), "{screen}");

    // d revokes the selected key; it leaves the tab and the active count.
    select(&mut ui, "Idle").await;
    ui.press(KeyCode::Char('d')).await;
    ui.press(KeyCode::Char('y')).await;
    assert!(!names(&ui).contains(&"Idle".to_owned()));
    let screen = ui.screen();
    assert!(
        screen.lines().nth(1).unwrap().trim() == "6 active · 2 expiring within 7d · 2 rotation due",
        "{screen}"
    );

    // R rotates: the new key is healthy, the old one revoked; neither needs attention.
    select(&mut ui, "Old rotate").await;
    ui.press(KeyCode::Char('R')).await;
    ui.press(KeyCode::Char('1')).await;
    ui.press(KeyCode::Char('y')).await;
    assert!(ui.screen().contains("Copy your API key now"));
    ui.press(KeyCode::Char('c')).await;
    ui.press(KeyCode::Enter).await;
    assert_eq!(
        names(&ui),
        [
            "Expiring sooner",
            "Expiring soon",
            "Ancient rotate",
            "Forever"
        ]
    );
    assert!(ui.screen().contains("1 rotation due"));
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_give_each_badge_its_reason() {
    let w = World::new().await;
    seed_every_state(&w).await;
    let mut ui = w.ui(COLOR, 140, 30).await;
    let cases = [
        (
            "Old rotate",
            vec!["rotate: Created 100 days ago — recommended: rotate every 90 days"],
        ),
        (
            "Idle",
            vec!["unused: Never used in the 45 days since it was created"],
        ),
        (
            "Lapsed",
            vec!["expired: Expired 2 days ago and not revoked — recommended: revoke expired keys"],
        ),
        (
            "Expiring sooner",
            vec!["expiring: Expires in 1 day — rotate it before applications using it lose access"],
        ),
        (
            "Forever",
            vec!["no expiry: No expiry date: valid until revoked"],
        ),
    ];
    for (name, reasons) in cases {
        select(&mut ui, name).await;
        ui.press(KeyCode::Enter).await;
        let screen = ui.screen();
        assert!(screen.contains("Health"), "{name}:\n{screen}");
        for reason in reasons {
            assert!(screen.contains(reason), "{reason} in:\n{screen}");
        }
        ui.press(KeyCode::Esc).await;
    }
    // A healthy key has no Health section.
    select(&mut ui, "Healthy").await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Key details") && !screen.contains("Health  "),
        "{screen}"
    );
    ui.press(KeyCode::Esc).await;
    // A grandfathered key says which rule it breaks.
    ui.app.set_policy(Policy {
        max_lifetime_days: Some(90),
        ..Policy::default()
    });
    select(&mut ui, "Forever").await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains(
            "policy: Created before the current policy, so it keeps working, but breaks it:"
        ),
        "{screen}"
    );
    assert!(
        screen.contains("no expiry, but the policy requires one (at most 90 days)"),
        "{screen}"
    );
    w.server.stop().await;
}

/// The screen as text, and under each line the runs of cells that are not
/// plain: columns, foreground, background, modifiers and the text they hold.
fn styled(buffer: &Buffer) -> String {
    let plain = (Color::Reset, Color::Reset, Modifier::empty());
    let text = buffer_text(buffer);
    let mut out = String::new();
    let area = buffer.area;
    for (y, line) in (0..area.height).zip(text.lines()) {
        out.push_str(line);
        out.push('\n');
        let mut x = 0;
        while x < area.width {
            let style = |x| {
                let c = &buffer[(x, y)];
                (c.fg, c.bg, c.modifier)
            };
            let (start, current) = (x, style(x));
            let mut run = String::new();
            while x < area.width && style(x) == current {
                run.push_str(buffer[(x, y)].symbol());
                x += 1;
            }
            if current != plain {
                out.push_str(&format!(
                    "    {start}..{x} fg={:?} bg={:?} {:?} {:?}\n",
                    current.0,
                    current.1,
                    current.2,
                    run.trim_end()
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn themes_and_no_color_as_styled_snapshots() {
    let w = World::new().await;
    seed_every_state(&w).await;
    let mut ui = w.ui(COLOR, 120, 16).await;
    // The selection on the revoked key, so the badges show their own style.
    select(&mut ui, "Retired").await;
    let mut dumps = Vec::new();
    for (name, palette) in [
        ("theme_dark", Palette::Dark),
        ("theme_light", Palette::Light),
        ("theme_high_contrast", Palette::HighContrast),
    ] {
        ui.app.set_palette(palette);
        let dump = styled(ui.draw());
        dumps.push(dump.clone());
        insta::with_settings!({filters => vec![(r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"), (r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX...")]}, {
            insta::assert_snapshot!(name, dump);
        });
    }
    assert!(
        dumps[0] != dumps[1] && dumps[1] != dumps[2] && dumps[0] != dumps[2],
        "each palette looks different"
    );
    // Badges are words in every palette, and styled apart from plain text.
    for dump in &dumps {
        assert!(dump.contains("\"no expiry\"") && dump.contains("\"rotate\""));
    }

    // NO_COLOR wins over any palette: no colour at all, the words stay.
    let mut plain = w.ui(NO_COLOR, 120, 16).await;
    select(&mut plain, "Retired").await;
    plain.app.set_palette(Palette::HighContrast);
    let buffer = plain.draw().clone();
    assert!(
        buffer
            .content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "no colour under NO_COLOR"
    );
    let dump = styled(&buffer);
    assert!(
        dump.contains("\"no expiry\"") && dump.contains("BOLD"),
        "{dump}"
    );
    insta::with_settings!({filters => vec![(r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"), (r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX...")]}, {
        insta::assert_snapshot!("theme_no_color", dump);
    });
    w.server.stop().await;
}

/// A grandfathered key's `policy` reason names the rule it breaks and the
/// numbers, as `policy set --dry-run` does ("lifetime 320 days > 90"), not
/// the create form's refusal ("requires an expiry of at most 90 days"),
/// which reads wrong for a key that has an expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grandfathered_key_names_the_rule_and_its_numbers() {
    let w = World::new().await;
    seed_every_state(&w).await;
    let mut ui = w.ui(COLOR, 140, 30).await;
    ui.app.set_policy(Policy {
        max_lifetime_days: Some(90),
        ..Policy::default()
    });
    // Created on day -20, expiring on day 300.
    select(&mut ui, "Ancient rotate").await;
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("but breaks it: lifetime 320 days > 90"),
        "{screen}"
    );
    assert!(!screen.contains("requires an expiry"), "{screen}");
    w.server.stop().await;
}
