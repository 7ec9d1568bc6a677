//! Time words (issue 20): relative times round to the nearest unit, so a key
//! made to last 30 days reads `in 30d` at once and a day's grace `in 24h`;
//! a revoked key shows no expiry ahead of it (`—`) — in the TUI's table and
//! details (`TestBackend`, the real service in-process on one hand-moved
//! clock) and in `keys list` / `keys show` (the built binary against a real
//! `keydeck serve`).

use crate::common;
use crate::common::cli as support;

use chrono::Duration;
use common::ui::{past_gutter, start_time, World};
use crossterm::event::KeyCode;
use keydeck::present::REVOKED_EXPIRY;
use keydeck::tui::theme::Theme;
use serde_json::json;
use support::{Service, User};

const PLAIN: Theme = Theme { color: false };

/// The table line of the row named `name`, past the mark gutter.
fn row<'a>(screen: &'a str, name: &str) -> &'a str {
    screen
        .lines()
        .map(past_gutter)
        .find(|l| l.starts_with(&format!("{name}  ")))
        .unwrap_or_else(|| panic!("a row for {name} in:\n{screen}"))
}

/// The details line of `field` (`Expires`), inside the popup's border.
fn field<'a>(screen: &'a str, name: &str) -> &'a str {
    screen
        .lines()
        .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace()))
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("a {name} field in:\n{screen}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_rounds_to_the_nearest_unit_and_a_revoked_key_expires_nothing() {
    let w = World::new().await;
    let t0 = start_time();
    w.create(json!({"name": "Thirty days", "scopes": ["sessions:read"],
                    "expires_at": t0 + Duration::days(30)}))
        .await;
    w.clock.advance(Duration::minutes(1));
    w.create(json!({"name": "Grace day", "scopes": ["sessions:read"],
                    "expires_at": t0 + Duration::minutes(1) + Duration::hours(24)}))
        .await;
    w.clock.advance(Duration::minutes(1));
    let retired = w
        .create(json!({"name": "Retired", "scopes": ["sessions:read"],
                       "expires_at": t0 + Duration::days(158)}))
        .await;
    let id = retired["api_key"]["id"].as_str().unwrap();
    assert_eq!(w.server.revoke(id).await.status(), 200);
    // Moments later: rounded down, these would read 29d, 23h and 157d.
    w.clock.advance(Duration::seconds(30));

    let mut ui = w.ui(PLAIN, 120, 30).await;
    let screen = ui.screen();
    let thirty = row(&screen, "Thirty days");
    assert!(thirty.trim_end().ends_with(" in 30d"), "{thirty}");
    let grace = row(&screen, "Grace day");
    assert!(grace.trim_end().ends_with(" in 24h"), "{grace}");
    let retired = row(&screen, "Retired");
    assert!(
        retired.contains("✕ Revoked")
            && retired.trim_end().ends_with(&format!(" {REVOKED_EXPIRY}")),
        "{retired}"
    );
    assert!(!retired.contains("in 1"), "no expiry ahead: {retired}");

    // Newest first: Retired is selected.
    ui.press(KeyCode::Enter).await;
    let details = ui.screen();
    assert_eq!(
        field(&details, "Expires"),
        format!("Expires     {REVOKED_EXPIRY}"),
        "{details}"
    );
    assert!(
        field(&details, "Revoked").contains("(just now)"),
        "{details}"
    );
    ui.press(KeyCode::Esc).await;
    ui.press(KeyCode::Char('j')).await;
    ui.press(KeyCode::Char('j')).await;
    ui.press(KeyCode::Enter).await;
    let details = ui.screen();
    assert_eq!(
        field(&details, "Expires"),
        "Expires     2030-02-14 09:00:00 +00:00 (in 30d)",
        "{details}"
    );
    assert!(field(&details, "Created").contains("(3m ago)"), "{details}");
}

/// The text of `line` under the header's `column`, up to the next column
/// (`next`), trimmed; columns counted in characters (the table pads by width,
/// and every character here is one column wide).
fn under(header: &str, line: &str, column: &str, next: &str) -> String {
    let start = header.find(column).expect("column");
    let end = header.find(next).expect("next column");
    line.chars()
        .skip(start)
        .take(end - start)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[test]
fn the_cli_says_times_as_the_ui_does() {
    let service = Service::start();
    let user = User::of(&service);
    let create = |name: &str, expires: &str| {
        let created = user
            .run(&[
                "keys",
                "create",
                "--name",
                name,
                "--scope",
                "sessions:read",
                "--expires",
                expires,
                "--json",
            ])
            .ok()
            .json();
        created["api_key"]["id"].as_str().unwrap().to_owned()
    };
    let thirty = create("Thirty days", "30d");
    let ninety = create("Ninety days", "90d");
    let retired = create("Retired", "158d");
    user.run(&["keys", "revoke", &retired, "--yes"]).ok();
    user.run(&["keys", "rotate", &ninety, "--grace", "24h", "--yes"])
        .ok();

    let table = user.run(&["keys", "list"]).ok().stdout;
    let header = table.lines().next().unwrap();
    let expires = |id: &str| {
        let line = table
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("a row for {id} in:\n{table}"));
        under(header, line, "EXPIRES", "ID")
    };
    assert_eq!(expires(&thirty), "in 30d", "{table}");
    assert_eq!(
        expires(&ninety),
        "in 24h",
        "the old half of the rotation:\n{table}"
    );
    assert_eq!(expires(&retired), REVOKED_EXPIRY, "{table}");
    let created = |id: &str| {
        let line = table.lines().find(|l| l.contains(id)).unwrap();
        under(header, line, "CREATED", "EXPIRES")
    };
    assert_eq!(created(&thirty), "just now", "{table}");
    let successor = table
        .lines()
        .skip(1)
        .find(|l| l.starts_with("Ninety days ") && !l.contains(&ninety))
        .expect("the rotation's new key");
    assert_eq!(
        under(header, successor, "EXPIRES", "ID"),
        "in 90d",
        "{table}"
    );

    let show = |id: &str| user.run(&["keys", "show", id]).ok().stdout;
    let expires_field = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("Expires "))
            .unwrap_or_else(|| panic!("an Expires field in:\n{text}"))
            .to_owned()
    };
    let shown = show(&thirty);
    assert!(expires_field(&shown).ends_with(" (in 30d)"), "{shown}");
    let shown = show(&retired);
    assert_eq!(
        expires_field(&shown).split_whitespace().collect::<Vec<_>>(),
        ["Expires", REVOKED_EXPIRY],
        "{shown}"
    );
}

/// The days of `expiring: Expires in N days — …` in a screen or an output.
fn reason_days(text: &str) -> &str {
    let at = text
        .find("expiring: Expires in ")
        .unwrap_or_else(|| panic!("an expiring reason in:\n{text}"));
    text[at..]
        .trim_start_matches("expiring: Expires in ")
        .split(' ')
        .next()
        .unwrap()
}

/// A key expiring in 6 days 23 hours: the table's Expires cell says `in 7d`
/// and the health reason says 7 days too (rounded down, it said "6 days").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_counts_the_days_of_a_health_reason_as_its_table_does() {
    let w = World::new().await;
    let t0 = start_time();
    w.create(json!({"name": "Almost a week", "scopes": ["sessions:read"],
                    "expires_at": t0 + Duration::days(6) + Duration::hours(23)}))
        .await;
    w.clock.advance(Duration::seconds(30));

    let mut ui = w.ui(PLAIN, 120, 30).await;
    let screen = ui.screen();
    let row = row(&screen, "Almost a week");
    assert!(row.contains("expiring"), "{row}");
    assert!(row.trim_end().ends_with(" in 7d"), "{row}");
    ui.press(KeyCode::Enter).await;
    let details = ui.screen();
    assert_eq!(reason_days(&details), "7", "{details}");
    assert!(field(&details, "Expires").ends_with("(in 7d)"), "{details}");
}

/// The same in the CLI, against a real `keydeck serve`: `keys list`'s
/// EXPIRES says `in 7d` beside its HEALTH badge, and `keys show` gives the
/// badge the UI's reason, with the same 7 days.
#[test]
fn the_cli_counts_the_days_of_a_health_reason_as_its_table_does() {
    let service = Service::start();
    let user = User::of(&service);
    let expires_at = chrono::Utc::now() + Duration::days(6) + Duration::hours(23);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let created: serde_json::Value = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/api-keys", service.url()))
            .bearer_auth(&service.token)
            .json(
                &json!({"name": "Almost a week", "scopes": ["sessions:read"],
                          "expires_at": expires_at}),
            )
            .send()
            .await
            .expect("create request");
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    });
    let id = created["api_key"]["id"].as_str().unwrap();

    let table = user.run(&["keys", "list"]).ok().stdout;
    let header = table.lines().next().unwrap();
    let line = table.lines().find(|l| l.contains(id)).unwrap();
    assert_eq!(under(header, line, "EXPIRES", "ID"), "in 7d", "{table}");
    assert_eq!(
        under(header, line, "HEALTH", "CREATED"),
        "expiring",
        "{table}"
    );

    let shown = user.run(&["keys", "show", id]).ok().stdout;
    assert!(
        shown.lines().any(|l| l.starts_with("Health ")),
        "a Health field in:\n{shown}"
    );
    assert_eq!(reason_days(&shown), "7", "{shown}");
}
