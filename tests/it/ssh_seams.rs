//! Issue 20's seams over SSH: a feature is done when it works in every face.
//! One real service (SQLite or PostgreSQL, a hand-moved clock that ends at
//! the real time) with a rotated key, a key that breaks the policy and keys
//! in other health states; the UI over SSH (russh's client, the terminal read
//! back with vt100) is compared with the UI run locally (`TestBackend`) on
//! the same service, and `keys list` over SSH with the UI's Health column.

use crate::common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use crossterm::event::KeyCode;
use keydeck::client::Client;
use keydeck::clock::{Clock, ManualClock};
use keydeck::key::Secret;
use keydeck::ssh::SshConfig;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use russh::keys::PrivateKey;
use serde_json::{json, Value};
use unicode_width::UnicodeWidthStr;

use common::conn::SshServerProcess;
use common::pty::{Session, TIMEOUT as PTY_TIMEOUT};
use common::ssh::{self, UiSession};
use common::ui::past_gutter;
use common::{Backend, TestServer};

on_both_backends!(
    the_ui_over_ssh_shows_rotation_policy_and_attention_as_locally,
    the_first_frame_with_keys_over_ssh_has_the_policys_badges,
);

const WIDTH: u16 = 150;
const HEIGHT: u16 = 30;

/// A service with an SSH listener whose clock the test moves, and the
/// admin's SSH key.
struct Seeded {
    server: TestServer,
    clock: Arc<ManualClock>,
    key: PrivateKey,
}

impl Seeded {
    /// A service with an SSH listener and the admin's SSH key, its clock at `at`.
    async fn start(backend: &Backend, at: DateTime<Utc>) -> Self {
        let clock = Arc::new(ManualClock::new(at));
        let listen = SshConfig::new("127.0.0.1:0".parse().unwrap());
        let server = TestServer::start_with_ssh(backend, clock.clone(), |_| {}, Some(listen)).await;
        let key = ssh::new_key();
        ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
        Self { server, clock, key }
    }

    /// Sets the organisation's policy to `body`.
    async fn set_policy(&self, body: Value) {
        self.send(reqwest::Method::PUT, "/v1/policy", body, 200)
            .await;
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

    /// `method path` as the admin, with `body`; asserts `status`.
    async fn send(&self, method: reqwest::Method, path: &str, body: Value, status: u16) {
        let r = self
            .server
            .http
            .request(method, self.server.url(path))
            .bearer_auth(&self.server.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}: {:?}", r.text().await);
    }

    /// The UI run locally on this service, at the size the SSH session has.
    async fn local_ui(&self) -> Harness {
        let client = Client::new(
            &self.server.base,
            Secret::new(self.server.admin_token.clone()),
        )
        .unwrap();
        let clock: Arc<dyn Clock> = self.clock.clone();
        Harness::start(client, clock, Theme { color: false }, WIDTH, HEIGHT).await
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// Keys in days before the real now (the last one is a rotation's new key):
///
/// | key | created | expires | last used | badges |
/// | --- | --- | --- | --- | --- |
/// | Lapsed | -40 | -2 | never | expired |
/// | Rotated | -30 | +60 | -1 | rotating (replaced now, 1 h grace) |
/// | Expiring soon | -20 | +3 | -1 | expiring |
/// | Healthy | -10 | +60 | -1 | none |
/// | Long-lived | -3 | +200 | -1 | policy (90-day maximum set last) |
async fn seed(backend: &Backend) -> Seeded {
    let start = Utc::now();
    let day = |d: i64| start + Duration::days(d);
    let s = Seeded::start(backend, day(-100)).await;
    s.key_at(day(-40), "Lapsed", Some(day(-2))).await;
    let rotated = s.key_at(day(-30), "Rotated", Some(day(60))).await;
    let used = [
        rotated.clone(),
        s.key_at(day(-20), "Expiring soon", Some(day(3))).await,
        s.key_at(day(-10), "Healthy", Some(day(60))).await,
        s.key_at(day(-3), "Long-lived", Some(day(200))).await,
    ];
    s.clock.set(day(-1));
    for (secret, _) in &used {
        assert_eq!(s.server.auth(secret, None).await.status(), 200);
    }
    s.clock.set(start);
    let rotate = format!("/v1/api-keys/{}/rotate", rotated.1);
    s.send(
        reqwest::Method::POST,
        &rotate,
        json!({"grace_seconds": 3600}),
        201,
    )
    .await;
    s.set_policy(json!({"max_lifetime_days": 90})).await;
    s
}

const ADMIN: &str = "admin@localhost";

/// The table as a screen shows it: the header line (past the mark gutter)
/// and every row under it, trailing spaces trimmed, up to the first blank line.
fn table(screen: &str) -> Vec<String> {
    screen
        .lines()
        .map(|l| past_gutter(l).trim_end().to_owned())
        .skip_while(|l| !l.starts_with("Name "))
        .take_while(|l| !l.is_empty())
        .collect()
}

/// The Health cells of the rows of `name` (a rotation's two keys share it),
/// under the header's Health title, in the table's order.
fn health(table: &[String], name: &str) -> Vec<String> {
    let header = &table[0];
    let start = header.find("Health").expect("a Health column");
    let end = header.find("Created").expect("a Created column");
    table
        .iter()
        .filter(|l| l.starts_with(&format!("{name}  ")))
        .map(|row| {
            row.chars()
                .skip(start)
                .take(end - start)
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .collect()
}

/// The names of the rows, in order.
fn names(table: &[String]) -> Vec<String> {
    table[1..]
        .iter()
        .map(|l| l.split("  ").next().unwrap().to_owned())
        .collect()
}

// (a) A rotated key shows `⟳ rotating until … → …` and sits last in
// Attention over SSH just as locally; (c) the policy is loaded over SSH: the
// key that breaks it has its `policy` badge and the summary counts it. The
// table over SSH is the local table, row for row, on All and on Attention.
async fn the_ui_over_ssh_shows_rotation_policy_and_attention_as_locally(backend: Backend) {
    let s = seed(&backend).await;
    let handle = ssh::connect(ssh::addr(&s.server), &s.key).await.unwrap();
    let mut remote = UiSession::open(&handle, WIDTH, HEIGHT, &[]).await;
    let mut local = s.local_ui().await;

    // The keys come first, the policy's badges as soon as it is read.
    let screen = remote.wait_for("break policy").await;
    let over_ssh = table(&screen);
    assert_eq!(over_ssh, table(&local.screen()), "over SSH:\n{screen}");
    // Newest first: the rotation's new key, healthy, then the old one.
    let rotated = health(&over_ssh, "Rotated");
    assert_eq!(rotated.len(), 2, "{screen}");
    assert_eq!(rotated[0], "", "{screen}");
    assert!(
        rotated[1].starts_with("⟳ rotating until ") && rotated[1].contains(" → eg_live_"),
        "{screen}"
    );
    assert_eq!(health(&over_ssh, "Long-lived"), ["policy"], "{screen}");
    let summary = screen.lines().nth(1).unwrap();
    assert!(summary.contains("1 break policy"), "{screen}");
    assert!(summary.contains("1 rotating"), "{screen}");
    assert_eq!(
        summary.trim(),
        local.screen().lines().nth(1).unwrap().trim(),
        "the summary line over SSH and locally"
    );

    // Attention (5): worst first, the rotating key last, on both faces.
    remote.send(b"5").await;
    let screen = remote.wait_gone("Healthy").await;
    local.press(KeyCode::Char('5')).await;
    let attention = table(&screen);
    assert_eq!(
        names(&attention),
        ["Lapsed", "Expiring soon", "Long-lived", "Rotated"],
        "{screen}"
    );
    assert_eq!(attention, table(&local.screen()), "over SSH:\n{screen}");

    remote.send(b"q").await;
    assert_eq!(remote.wait_closed().await, Some(0));
    s.stop().await;
}

/// The screens the session showed, one per frame (up to the end of each
/// synchronized update), in order.
fn frames(ui: &UiSession) -> Vec<String> {
    const END: &[u8] = b"\x1b[?2026l";
    let mut parser = vt100::Parser::new(ui.size.1, ui.size.0, 0);
    let mut read = 0;
    let mut screens = Vec::new();
    for end in (0..ui.bytes.len()).filter(|&at| ui.bytes[at..].starts_with(END)) {
        parser.process(&ui.bytes[read..end + END.len()]);
        read = end + END.len();
        screens.push(parser.screen().contents());
    }
    screens
}

// The policy is read beside the first page and the keys wait for it: the
// first frame over SSH that shows a key already has the policy's badges (a
// key 45 days old is `rotate` under a 30-day rotation, not under the
// default 90), and the summary line counts it.
async fn the_first_frame_with_keys_over_ssh_has_the_policys_badges(backend: Backend) {
    let start = Utc::now();
    let day = |d: i64| start + Duration::days(d);
    let s = Seeded::start(&backend, day(-45)).await;
    let (secret, _) = s.key_at(day(-45), "Old key", Some(day(60))).await;
    s.clock.set(day(-1));
    assert_eq!(s.server.auth(&secret, None).await.status(), 200);
    s.clock.set(start);
    s.set_policy(json!({"rotate_after_days": 30})).await;

    let handle = ssh::connect(ssh::addr(&s.server), &s.key).await.unwrap();
    let mut remote = UiSession::open(&handle, WIDTH, HEIGHT, &[]).await;
    remote.wait_for("Old key").await;
    let frames = frames(&remote);
    let first = frames
        .iter()
        .find(|screen| screen.contains("Old key"))
        .expect("a frame with the key");
    assert_eq!(health(&table(first), "Old key"), ["rotate"], "{first}");
    let summary = first.lines().nth(1).unwrap();
    assert!(summary.contains("1 rotation due"), "{first}");
    assert!(
        frames.len() > 1 && !frames[0].contains("Old key"),
        "the first frame (before any answer) came as before: {frames:?}"
    );

    remote.send(b"q").await;
    assert_eq!(remote.wait_closed().await, Some(0));
    s.stop().await;
}

/// The first line (the title) and the last line with text (the footer).
fn title_and_footer(screen: &str) -> (String, String) {
    let title = screen.lines().next().unwrap_or_default().to_owned();
    let footer = screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_owned();
    (title, footer)
}

/// The marked rows' names: the rows whose gutter holds `✓`.
fn marked(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter(|l| l.trim_start().starts_with('✓'))
        .map(|l| past_gutter(l).split("  ").next().unwrap().to_owned())
        .collect()
}

// (b) Marks over SSH: Space marks and moves down, the count shows in the
// title and the footer (at 80×24 too), a tab switch clears the marks (and
// says so), and `Esc` (a lone ESC byte through the session) clears them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_over_ssh_count_and_clear_as_locally() {
    let backend = Backend::sqlite();
    let s = seed(&backend).await;
    let handle = ssh::connect(ssh::addr(&s.server), &s.key).await.unwrap();
    let mut ui = UiSession::open(&handle, WIDTH, HEIGHT, &[]).await;
    let screen = ui.wait_for("break policy").await;
    let (title, footer) = title_and_footer(&screen);
    assert!(!title.contains("marked") && !footer.contains("marked"));

    ui.send(b"  ").await;
    let screen = ui.wait_for("2 marked").await;
    assert_eq!(marked(&screen), ["Rotated", "Long-lived"], "{screen}");
    let (title, footer) = title_and_footer(&screen);
    assert!(title.ends_with("2 marked · 6 keys"), "{title}");
    assert!(
        footer.contains("d revoke 2 marked") && footer.contains("Esc clear marks"),
        "{footer}"
    );

    // At 80×24 the footer still says what `d` will do to the marks.
    ui.resize(80, 24).await;
    let screen = ui
        .wait_until("the footer laid out for 80 columns", |s| {
            s.contents().lines().any(|l| l.contains("… ? more"))
        })
        .await;
    let (title, footer) = title_and_footer(&screen);
    assert!(title.ends_with("2 marked · 6 keys"), "{title}");
    assert!(
        footer.contains("d revoke 2 marked") && footer.contains("Esc clear marks"),
        "{screen}"
    );
    ui.resize(WIDTH, HEIGHT).await;
    ui.wait_until("the table laid out again", |s| {
        s.contents().contains("Expires")
    })
    .await;

    // The Active tab: the marks go, and the status line says so.
    ui.send(b"2").await;
    let screen = ui
        .wait_for("2 keys unmarked (marks stay on their tab).")
        .await;
    assert!(marked(&screen).is_empty(), "{screen}");
    let (title, footer) = title_and_footer(&screen);
    assert!(!title.contains("marked") && !footer.contains("marked"));

    // Two marks on this tab, then Esc.
    // The selection stayed on Healthy; the title counts every key.
    ui.send(b"  ").await;
    let screen = ui.wait_for("2 marked · 6 keys").await;
    assert_eq!(marked(&screen), ["Healthy", "Expiring soon"], "{screen}");
    ui.send(b"\x1b").await;
    let screen = ui.wait_for("2 keys unmarked.").await;
    assert!(marked(&screen).is_empty(), "{screen}");
    let (title, footer) = title_and_footer(&screen);
    assert!(
        title.ends_with(" 6 keys") && !title.contains("marked"),
        "{title}"
    );
    assert!(
        footer.contains("d revoke") && !footer.contains("marked"),
        "{footer}"
    );

    ui.send(b"q").await;
    assert_eq!(ui.wait_closed().await, Some(0));
    s.stop().await;
}

/// The rows of a piped `keys list` (every column): the header, and each
/// row's (prefix, HEALTH), the HEALTH's ` · ` said as the UI's spaces.
fn cli_health(table: &str) -> Vec<(String, String)> {
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let cell = |line: &str, title: &str, next: &str| -> String {
        let (start, end) = (header.find(title).unwrap(), header.find(next).unwrap());
        let text: String = line.chars().skip(start).take(end - start).collect();
        text.trim().trim_end_matches('.').replace(" · ", " ")
    };
    lines
        .map(|l| (cell(l, "PREFIX", "SCOPES"), cell(l, "HEALTH", "CREATED")))
        .collect()
}

/// The UI's rows as (prefix, Health): the prefix as the CLI prints it (the
/// UI says the shared `eg_live_` once, in the column's header).
fn ui_health(table: &[String]) -> Vec<(String, String)> {
    let header = &table[0];
    let cell = |line: &str, title: &str, next: &str| -> String {
        let (start, end) = (header.find(title).unwrap(), header.find(next).unwrap());
        let text: String = line.chars().skip(start).take(end - start).collect();
        text.trim().to_owned()
    };
    table[1..]
        .iter()
        .map(|l| {
            (
                // The column shows what follows its header's shared `eg_live_`.
                format!(
                    "eg_live_{}",
                    cell(l, "eg_live_", "Scopes").trim_end_matches('.')
                ),
                cell(l, "Health", "Created"),
            )
        })
        .collect()
}

// (d) `ssh HOST keys list` is the CLI over SSH: its HEALTH column has the
// badges the UI over SSH shows, key for key, and `--attention` lists the
// Attention tab's rows in its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_list_over_ssh_has_the_health_the_ui_over_ssh_shows() {
    let backend = Backend::sqlite();
    let s = seed(&backend).await;
    let handle = ssh::connect(ssh::addr(&s.server), &s.key).await.unwrap();
    let mut ui = UiSession::open(&handle, WIDTH, HEIGHT, &[]).await;
    let screen = ui.wait_for("break policy").await;
    let all = table(&screen);
    ui.send(b"5").await;
    let attention = table(&ui.wait_gone("Healthy").await);
    ui.send(b"q").await;
    assert_eq!(ui.wait_closed().await, Some(0));

    let mut ui_rows = ui_health(&all);
    let listed = ssh::exec(&handle, "keys list", false).await;
    assert_eq!(listed.status, Some(0), "{listed:?}");
    let mut cli_rows = cli_health(&listed.stdout);
    ui_rows.sort();
    cli_rows.sort();
    assert_eq!(cli_rows, ui_rows, "keys list over SSH:\n{}", listed.stdout);
    assert!(
        cli_rows.iter().any(|(_, h)| h == "policy")
            && cli_rows
                .iter()
                .any(|(_, h)| h.starts_with("⟳ rotating until ")),
        "{}",
        listed.stdout
    );

    let listed = ssh::exec(&handle, "keys list --attention", false).await;
    assert_eq!(listed.status, Some(0), "{listed:?}");
    assert_eq!(
        cli_health(&listed.stdout),
        ui_health(&attention),
        "keys list --attention over SSH:\n{}",
        listed.stdout
    );
    s.stop().await;
}

/// The line of `text` that starts with `field`.
fn field_line<'a>(text: &'a str, field: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("a {field} line in:\n{text}"))
}

// Over SSH the commands say times in UTC, as the UI over SSH does, whatever
// the server's own zone: with `keydeck serve` in New York, the UI's
// `⟳ rotating until HH:MM` and `keys list`'s were five hours apart, and
// `keys create --expires DATE` read the date in New York.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_ssh_the_commands_say_times_in_the_uis_zone_not_the_servers() {
    const ZONE: (&str, &str) = ("TZ", "America/New_York");
    let backend = Backend::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let server =
        SshServerProcess::spawn_with_env(&backend, &[], &[ZONE], None, &dir.path().join("log"))
            .expect("keydeck serve starts");
    let key = ssh::new_key();
    ssh::add_key(backend.store().await.as_ref(), ADMIN, &key).await;
    let token = common::util::admin_token(backend.data_dir.path());
    let http = reqwest::Client::new();
    let created: Value = http
        .post(server.url("/v1/api-keys"))
        .bearer_auth(&token)
        .json(&json!({"name": "Zoned", "scopes": ["sessions:read"],
                      "expires_at": Utc::now() + Duration::days(60)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old = created["api_key"]["id"].as_str().unwrap().to_owned();
    let rotated = http
        .post(server.url(&format!("/v1/api-keys/{old}/rotate")))
        .bearer_auth(&token)
        .json(&json!({"grace_seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 201);

    // The zone is real: the command line on this machine, in New York, says -05:00 or -04:00.
    let user = common::cli::User::new()
        .env("KEYDECK_URL", &server.base)
        .env("KEYDECK_TOKEN", &token)
        .env(ZONE.0, ZONE.1);
    let here = tokio::task::spawn_blocking(move || user.run(&["keys", "show", &old]).ok().stdout)
        .await
        .unwrap();
    let expires = field_line(&here, "Expires");
    assert!(
        expires.contains(" -05:00 ") || expires.contains(" -04:00 "),
        "{here}"
    );

    let handle = ssh::connect(server.ssh, &key).await.unwrap();
    let mut ui = UiSession::open(&handle, WIDTH, HEIGHT, &[]).await;
    let screen = ui.wait_for("rotating until").await;
    let ui_rows = ui_health(&table(&screen));
    ui.send(b"q").await;
    assert_eq!(ui.wait_closed().await, Some(0));
    let listed = ssh::exec(&handle, "keys list", false).await;
    assert_eq!(listed.status, Some(0), "{listed:?}");
    let (mut cli_rows, mut ui_rows) = (cli_health(&listed.stdout), ui_rows);
    cli_rows.sort();
    ui_rows.sort();
    assert_eq!(
        cli_rows, ui_rows,
        "keys list over SSH:\n{}\nthe UI over SSH:\n{screen}",
        listed.stdout
    );

    let id = created["api_key"]["id"].as_str().unwrap();
    let shown = ssh::exec(&handle, &format!("keys show {id}"), false).await;
    assert!(
        field_line(&shown.stdout, "Expires").contains(" +00:00 "),
        "{shown:?}"
    );
    // A date typed over SSH is read in UTC: it works through 2030-01-31 UTC.
    let made = ssh::exec(
        &handle,
        "keys create --name Dated --scope sessions:read --expires 2030-01-31 --json",
        false,
    )
    .await;
    assert_eq!(made.status, Some(0), "{made:?}");
    let made: Value = serde_json::from_str(&made.stdout).unwrap();
    let at: DateTime<Utc> = made["api_key"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(at.to_rfc3339(), "2030-02-01T00:00:00+00:00");
}

/// `keydeck keys list` on this machine, on an 80×24 terminal of its own,
/// for the admin of `s` (times in UTC): every line it wrote, colours kept.
fn local_list_in_terminal(s: &Seeded) -> Vec<String> {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    let vars = [
        ("KEYDECK_URL", s.server.base.as_str()),
        ("KEYDECK_TOKEN", s.server.admin_token.as_str()),
        ("HOME", home.path().to_str().unwrap()),
        ("KEYDECK_CONFIG", config.to_str().unwrap()),
        ("TZ", "UTC"),
    ];
    let mut run = Session::start(&["keys", "list"], &vars, 80, 24);
    let (code, _) = run.wait_exit(PTY_TIMEOUT);
    assert_eq!(code, 0, "{}", run.output());
    common::util::wait_until(
        "the whole table",
        || run.output().contains("Lapsed"),
        || run.output(),
    );
    lines(&run.output())
}

/// The non-empty lines of a terminal's output, without their `\r`.
fn lines(output: &str) -> Vec<String> {
    output
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_owned())
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

/// `command` over a new session with an 80×24 terminal and `env`: its output.
async fn exec_on_terminal(
    handle: &russh::client::Handle<ssh::TestClient>,
    command: &str,
    env: &[(&str, &str)],
) -> String {
    let mut channel = handle.channel_open_session().await.unwrap();
    for (name, value) in env {
        channel.set_env(false, *name, *value).await.unwrap();
    }
    channel
        .request_pty(true, "xterm-256color", 80, 24, 0, 0, &[])
        .await
        .unwrap();
    channel.exec(true, command).await.unwrap();
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(ssh::TIMEOUT, channel.wait())
            .await
            .expect("the command ended in time")
        {
            Some(russh::ChannelMsg::Data { data }) => out.extend_from_slice(&data),
            Some(russh::ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    String::from_utf8(out).unwrap()
}

// `ssh -t HOST keys list` is `keys list` on the client's terminal, as on a
// local one: at 80 columns the same columns dropped and the same lines, in
// the same colours; `NO_COLOR` through SetEnv turns the colour off (without
// a terminal, over SSH as locally, every column stays and no colour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_ssh_with_a_terminal_keys_list_fits_it_as_locally() {
    let backend = Backend::sqlite();
    let s = seed(&backend).await;
    let handle = ssh::connect(ssh::addr(&s.server), &s.key).await.unwrap();
    let remote = lines(&exec_on_terminal(&handle, "keys list", &[]).await);
    for line in &remote {
        let shown = strip_sgr(line);
        assert!(shown.width() <= 80, "{} columns: {shown:?}", shown.width());
    }
    assert!(
        remote[0].contains("HEALTH") && !remote[0].contains("ID"),
        "{remote:#?}"
    );
    assert!(
        remote.iter().any(|l| l.contains("\x1b[32m● Active\x1b[0m")),
        "coloured: {remote:#?}"
    );
    let plain = exec_on_terminal(&handle, "keys list", &[("NO_COLOR", "1")]).await;
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert_eq!(
        lines(&plain),
        remote.iter().map(|l| strip_sgr(l)).collect::<Vec<_>>()
    );

    let s = Arc::new(s);
    let local = {
        let s = s.clone();
        tokio::task::spawn_blocking(move || local_list_in_terminal(&s))
            .await
            .unwrap()
    };
    assert_eq!(remote, local, "over SSH and on this machine, at 80 columns");
    if let Ok(s) = Arc::try_unwrap(s) {
        s.stop().await;
    }
}

// Over SSH the command to run next is what follows `ssh HOST`: the refused
// second rotation and the re-issue of a revoked key suggest `keys …`, not a
// `keydeck` the admin may not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_ssh_the_next_command_is_what_follows_ssh_host() {
    let backend = Backend::sqlite();
    let s = seed(&backend).await;
    let handle = ssh::connect(ssh::addr(&s.server), &s.key).await.unwrap();
    let listed = ssh::exec(&handle, "keys list --json", false).await;
    let keys: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    let id_of = |name: &str, replaced: bool| {
        keys.iter()
            .find(|k| k["name"] == name && k["replaced_by"].is_string() == replaced)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let old = keys
        .iter()
        .find(|k| k["replaced_by"].is_string())
        .expect("the rotation's old key");
    let again = ssh::exec(
        &handle,
        &format!("keys rotate {} --yes", old["id"].as_str().unwrap()),
        false,
    )
    .await;
    assert_eq!(again.status, Some(1), "{again:?}");
    let successor = old["replaced_by"].as_str().unwrap();
    assert!(
        again
            .stderr
            .contains(&format!("Rotate that key instead: keys rotate {successor}")),
        "{again:?}"
    );
    assert!(!again.stderr.contains("keydeck keys"), "{again:?}");

    let healthy = id_of("Healthy", false);
    assert_eq!(s.server.revoke(&healthy).await.status(), 200);
    let reissue = ssh::exec(&handle, &format!("keys rotate {healthy} --yes"), false).await;
    assert_eq!(reissue.status, Some(1), "{reissue:?}");
    assert!(
        reissue.stderr.contains("\n  keys create --name 'Healthy' "),
        "{reissue:?}"
    );
    assert!(!reissue.stderr.contains("keydeck keys"), "{reissue:?}");
    s.stop().await;
}
