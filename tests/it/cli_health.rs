//! `keys list` has the TUI's health: against one real service (keys in every
//! health state, made with a hand-moved clock that ends at the real time the
//! binary reads), `keys list --attention` lists the Attention tab's rows in
//! its order with the same badges (table and `--json`), and on an 80-column
//! terminal the table fits, keeping HEALTH.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use crossterm::event::KeyCode;
use keydeck::client::Client;
use keydeck::clock::{Clock, ManualClock};
use keydeck::key::Secret;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use serde_json::{json, Value};
use unicode_width::UnicodeWidthStr;

use crate::common::cli::User;
use crate::common::pty::{Session, TIMEOUT};
use crate::common::ui::past_gutter;
use crate::common::{Backend, TestServer};

/// A service whose clock the test moves, ending at the real time.
struct Seeded {
    server: TestServer,
    clock: Arc<ManualClock>,
    _backend: Backend,
}

impl Seeded {
    fn user(&self) -> User {
        User::new()
            .env("KEYDECK_URL", &self.server.base)
            .env("KEYDECK_TOKEN", &self.server.admin_token)
            .env("TZ", "UTC")
    }

    /// Creates a key `at` (expiring at `expires`, if any); its secret and id.
    async fn key_at(
        &self,
        at: DateTime<Utc>,
        name: &str,
        expires: Option<DateTime<Utc>>,
    ) -> (String, String) {
        self.clock.set(at);
        let mut body = json!({"name": name, "scopes": ["sessions:read"]});
        if let Some(e) = expires {
            body["expires_at"] = json!(e);
        }
        let r = self
            .server
            .create_key_as(&self.server.admin_token, body)
            .await;
        assert_eq!(r.status(), 201);
        let created: Value = r.json().await.unwrap();
        (
            created["secret"].as_str().unwrap().to_owned(),
            created["api_key"]["id"].as_str().unwrap().to_owned(),
        )
    }
}

/// One key in each health state, days before or after the real now:
///
/// | key | created | expires | last used | badges |
/// | --- | --- | --- | --- | --- |
/// | Neglected | -200 | never | never | rotate, unused, no expiry, policy |
/// | Ancient rotate | -120 | +200 | -1 | rotate, policy |
/// | Idle | -45 | +100 | never | unused, policy |
/// | Lapsed | -40 | -2 | never | expired |
/// | Rotated | -30 | +60 | -1 | rotating (replaced now, 1 h grace) |
/// | Expiring soon | -20 | +3 | -1 | expiring |
/// | Expiring sooner | -19 | +1 | -1 | expiring |
/// | Healthy | -10 | +60 | -1 | none |
/// | Forever | -5 | never | -1 | no expiry, policy |
/// | Retired | -4 | never | never | none (revoked) |
/// | Long-lived | -3 | +200 | -1 | policy |
///
/// The policy's 90-day maximum lifetime comes last: keys longer-lived than
/// that (or without an expiry) also break it.
async fn seed() -> Seeded {
    let start = Utc::now();
    let day = |d: i64| start + Duration::days(d);
    let clock = Arc::new(ManualClock::new(day(-300)));
    let backend = Backend::sqlite();
    let server = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let s = Seeded {
        server,
        clock,
        _backend: backend,
    };
    let mut used = Vec::new();
    s.key_at(day(-200), "Neglected", None).await;
    used.push(s.key_at(day(-120), "Ancient rotate", Some(day(200))).await);
    s.key_at(day(-45), "Idle", Some(day(100))).await;
    s.key_at(day(-40), "Lapsed", Some(day(-2))).await;
    let rotated = s.key_at(day(-30), "Rotated", Some(day(60))).await;
    used.push(rotated.clone());
    used.push(s.key_at(day(-20), "Expiring soon", Some(day(3))).await);
    used.push(s.key_at(day(-19), "Expiring sooner", Some(day(1))).await);
    used.push(s.key_at(day(-10), "Healthy", Some(day(60))).await);
    used.push(s.key_at(day(-5), "Forever", None).await);
    let (_, retired) = s.key_at(day(-4), "Retired", None).await;
    assert_eq!(s.server.revoke(&retired).await.status(), 200);
    used.push(s.key_at(day(-3), "Long-lived", Some(day(200))).await);
    s.clock.set(day(-1));
    for (secret, _) in &used {
        assert_eq!(s.server.auth(secret, None).await.status(), 200);
    }
    s.clock.set(Utc::now());
    let rotate = s
        .server
        .http
        .post(s.server.url(&format!("/v1/api-keys/{}/rotate", rotated.1)))
        .bearer_auth(&s.server.admin_token)
        .json(&json!({"grace_seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotate.status(), 201, "{:?}", rotate.text().await);
    let policy = s
        .server
        .http
        .put(s.server.url("/v1/policy"))
        .bearer_auth(&s.server.admin_token)
        .json(&json!({"max_lifetime_days": 90}))
        .send()
        .await
        .unwrap();
    assert_eq!(policy.status(), 200, "{:?}", policy.text().await);
    s
}

/// The table's header line (its first) and the key rows, by the ID at their end.
fn cli_rows(table: &str) -> (&str, Vec<(&str, &str)>) {
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let rows = lines
        .map(|l| (l.split_whitespace().last().expect("an ID"), l))
        .collect();
    (header, rows)
}

/// The text of `line` under `title` in `header`, up to the next title
/// (`next`), trimmed; by characters (the header is ASCII).
fn under(header: &str, line: &str, title: &str, next: &str) -> String {
    let start = header
        .find(title)
        .unwrap_or_else(|| panic!("{title} in {header}"));
    let end = header
        .find(next)
        .unwrap_or_else(|| panic!("{next} in {header}"));
    line.chars()
        .skip(start)
        .take(end - start)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The TUI's Health cell for the row of `name` (rows start with the name).
fn tui_health(screen: &str, name: &str) -> String {
    let header = screen
        .lines()
        .map(past_gutter)
        .find(|l| l.starts_with("Name "))
        .unwrap_or_else(|| panic!("a header in:\n{screen}"));
    let row = screen
        .lines()
        .map(past_gutter)
        .find(|l| l.starts_with(&format!("{name}  ")))
        .unwrap_or_else(|| panic!("a row for {name} in:\n{screen}"));
    under(header, row, "Health", "Created")
}

// Acceptance 4: `keys list --attention` is the Attention tab: the same keys,
// in the same order, with the same badges, in the table and in `--json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attention_in_the_cli_is_the_tuis_attention_tab() {
    let s = seed().await;
    let client = Client::new(&s.server.base, Secret::new(s.server.admin_token.clone())).unwrap();
    let clock: Arc<dyn Clock> = s.clock.clone();
    let mut ui = Harness::start(client, clock, Theme { color: false }, 170, 30).await;
    ui.press(KeyCode::Char('5')).await;
    let screen = ui.screen();
    let tab: Vec<(String, String, Vec<&str>)> = ui
        .app
        .rows()
        .iter()
        .map(|&i| {
            let k = &ui.app.keys()[i];
            let ids = ui.app.badges_of(k).iter().map(|b| b.id()).collect();
            (k.id.clone(), k.name.clone(), ids)
        })
        .collect();
    let names: Vec<&str> = tab.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Lapsed",
            "Expiring sooner",
            "Expiring soon",
            "Neglected",
            "Ancient rotate",
            "Idle",
            "Forever",
            "Long-lived",
            "Rotated"
        ],
        "the Attention tab as the seed means it:\n{screen}"
    );

    let user = s.user();
    let (table, listed) = tokio::task::spawn_blocking(move || {
        (
            user.run(&["keys", "list", "--attention"]).ok().stdout,
            user.run(&["keys", "list", "--attention", "--json"])
                .ok()
                .json(),
        )
    })
    .await
    .unwrap();

    println!("{table}");
    let (header, rows) = cli_rows(&table);
    let cli_ids: Vec<&str> = rows.iter().map(|(id, _)| *id).collect();
    let tab_ids: Vec<&str> = tab.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(
        cli_ids, tab_ids,
        "the same rows in the same order:\n{table}"
    );
    for ((_, line), (_, name, _)) in rows.iter().zip(&tab) {
        let cli = under(header, line, "HEALTH", "CREATED");
        assert_eq!(
            cli,
            tui_health(&screen, name),
            "{name}: the CLI's HEALTH {cli:?} and the TUI's Health\n{table}\n{screen}"
        );
    }
    let neglected = rows
        .iter()
        .find(|(_, l)| l.starts_with("Neglected "))
        .unwrap();
    assert_eq!(
        under(header, neglected.1, "HEALTH", "CREATED"),
        "rotate · unused · no expiry · policy"
    );
    let rotating = rows
        .iter()
        .find(|(_, l)| l.starts_with("Rotated "))
        .unwrap();
    assert!(
        under(header, rotating.1, "HEALTH", "CREATED").starts_with("⟳ rotating until "),
        "{table}"
    );

    let listed = listed.as_array().expect("a JSON array");
    let json_ids: Vec<&str> = listed.iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(json_ids, tab_ids);
    for (key, (_, name, badges)) in listed.iter().zip(&tab) {
        assert_eq!(key["name"], name.as_str());
        assert_eq!(key["health"], json!(badges), "{name}");
        assert!(
            key["prefix"].is_string() && key["scopes"].is_array(),
            "{key}"
        );
    }
    assert_eq!(listed[0]["health"], json!(["expired"]));
    assert_eq!(
        listed[3]["health"],
        json!(["rotate", "unused", "no_expiry", "policy"])
    );
}

// `--json` carries every key's badges, `[]` for a healthy or revoked key;
// piped, the table has every column, HEALTH among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_carries_its_badges_and_piped_tables_keep_every_column() {
    let s = seed().await;
    let user = s.user();
    let (all, table) = tokio::task::spawn_blocking(move || {
        (user.keys(&[]), user.run(&["keys", "list"]).ok().stdout)
    })
    .await
    .unwrap();
    assert_eq!(all.len(), 12, "every key, the rotation's new one too");
    let health = |name: &str| -> Vec<Value> {
        all.iter()
            .filter(|k| k["name"] == name)
            .map(|k| k["health"].clone())
            .collect()
    };
    assert_eq!(health("Healthy"), [json!([])]);
    assert_eq!(health("Retired"), [json!([])]);
    assert_eq!(health("Long-lived"), [json!(["policy"])]);
    assert_eq!(health("Expiring soon"), [json!(["expiring"])]);
    let mut rotated = health("Rotated");
    rotated.sort_by_key(|h| h.as_array().map_or(0, Vec::len));
    assert_eq!(rotated, [json!([]), json!(["rotating"])]);

    let (header, rows) = cli_rows(&table);
    let titles: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(
        titles,
        [
            "NAME",
            "PREFIX",
            "SCOPES",
            "LABELS",
            "LAST USED",
            "STATUS",
            "HEALTH",
            "CREATED",
            "EXPIRES",
            "ID"
        ]
    );
    assert_eq!(rows.len(), 12);
    assert!(table
        .lines()
        .any(|l| l.starts_with("Idle ") && l.contains("  unused · policy  ")));
}

/// `keydeck ARGS` on an 80×24 terminal for `s`'s admin: every line it wrote,
/// colour taken out.
fn in_terminal(s: &Seeded, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    let mut vars = vec![
        ("KEYDECK_URL", s.server.base.as_str()),
        ("KEYDECK_TOKEN", s.server.admin_token.as_str()),
        ("HOME", home.path().to_str().unwrap()),
        ("KEYDECK_CONFIG", config.to_str().unwrap()),
        ("TZ", "UTC"),
    ];
    vars.extend_from_slice(env);
    let mut run = Session::start(args, &vars, 80, 24);
    let (code, _) = run.wait_exit(TIMEOUT);
    assert_eq!(code, 0, "{}", run.output());
    // The reader may still be catching up with the last lines.
    crate::common::util::wait_until(
        "the whole table",
        || run.output().contains("Retired"),
        || run.output(),
    );
    let out = run.output();
    assert!(out.contains("\x1b[32m● Active\x1b[0m"), "coloured: {out:?}");
    out.split('\n')
        .map(|l| strip_sgr(l.trim_end_matches('\r')))
        .filter(|l| !l.is_empty())
        .collect()
}

/// `line` without its SGR (colour) sequences.
fn strip_sgr(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find('m').expect("an SGR sequence ends in m");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

// Acceptance 4: at 80 columns the table fits, dropping columns in the UI's
// order and keeping HEALTH; `--wide` keeps them all; `$COLUMNS` wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_an_80_column_terminal_the_table_fits_and_keeps_health() {
    let s = seed().await;
    let fitted = in_terminal(&s, &["keys", "list"], &[]);
    println!("{}", fitted.join("\n"));
    for line in &fitted {
        assert!(line.width() <= 80, "{} columns: {line:?}", line.width());
    }
    let header = &fitted[0];
    for kept in ["NAME", "HEALTH", "STATUS"] {
        assert!(header.contains(kept), "{header}");
    }
    assert!(
        !header.contains("ID") && !header.contains("SCOPES"),
        "{header}"
    );
    assert_eq!(fitted.len(), 13, "a header and every key: {fitted:#?}");
    let neglected = fitted.iter().find(|l| l.starts_with("Neglected ")).unwrap();
    assert!(neglected.contains("rotate"), "{neglected}");

    let wide = in_terminal(&s, &["keys", "list", "--wide"], &[]);
    assert!(
        wide[0].contains("SCOPES") && wide[0].ends_with("ID"),
        "{}",
        wide[0]
    );
    assert!(
        wide.iter().any(|l| l.width() > 80),
        "--wide keeps every column"
    );

    let narrow = in_terminal(&s, &["keys", "list"], &[("COLUMNS", "50")]);
    for line in &narrow {
        assert!(line.width() <= 50, "{} columns: {line:?}", line.width());
    }
    assert!(
        narrow[0].starts_with("NAME") && narrow[0].contains("HEALTH"),
        "{}",
        narrow[0]
    );
}
