//! The table's window over the service (issue 19) in every face, on both
//! backends: a UI session over SSH on an organisation with more keys than
//! the session's capacity scrolls top to bottom and back, shows the
//! service's order, counts, filter, a key made elsewhere, and revokes only
//! the marked keys it shows, while the keys it holds stay bounded
//! (`SshStats::peak_held_keys`); the UI on replica A follows keys created,
//! revoked and rotated, and a policy set, through replica B (two services on
//! one database); and `keys list --json` and `audit --json` over SSH, of
//! more than a page, are complete and in order.

use crate::common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use common::ssh::{self, UiSession};
use common::ui::past_gutter;
use common::{manual_clock, Backend, TestServer};
use crossterm::event::KeyCode;
use keydeck::client::Client;
use keydeck::clock::{Clock, ManualClock, SystemClock};
use keydeck::key::Secret;
use keydeck::tui::action::Action;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use serde_json::{json, Value};

on_both_backends!(
    a_ui_session_over_ssh_is_a_bounded_window_over_the_service,
    the_ui_on_one_replica_follows_changes_made_through_another,
    json_lists_over_ssh_of_more_than_a_page_are_complete_and_in_order,
);

const ADMIN: &str = "admin@localhost";
const CAPACITY: usize = 50;
const KEYS: u32 = 320;
const WIDTH: u16 = 170;
const HEIGHT: u16 = 24;

/// The service's whole order of a query, page by page.
async fn listing(server: &TestServer, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/api-keys?limit=500&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = server.get_json(&path, &server.admin_token).await;
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

async fn counts(server: &TestServer, q: Option<&str>) -> Value {
    let path = match q {
        Some(q) => format!("/v1/api-keys/counts?q={q}"),
        None => "/v1/api-keys/counts".to_owned(),
    };
    server.get_json(&path, &server.admin_token).await
}

/// The tabs line's texts for `counts`, e.g. `1 All (320)`.
fn tab_texts(counts: &Value) -> Vec<String> {
    let tabs = &counts["tabs"];
    [
        ("All", "all"),
        ("Active", "active"),
        ("Expired", "expired"),
        ("Revoked", "revoked"),
        ("Attention", "attention"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (label, field))| format!("{} {label} ({})", i + 1, tabs[field]))
    .collect()
}

fn shows_tabs(screen: &str, counts: &Value) -> bool {
    tab_texts(counts).iter().all(|t| screen.contains(t))
}

/// Seeds `count` demo keys through a store of the test's own: the seed's
/// demo usage is one long write, which a busy machine's PostgreSQL may take
/// longer than a service's store waits for any call (10 s).
async fn seed(backend: &Backend, count: u32, clock: &dyn Clock) {
    let store = backend.store().await;
    keydeck::accounts::seed(store.as_ref(), "default", count, clock)
        .await
        .unwrap();
    store.close().await;
}

// ---------------------------------------------------------------------------
// The window over SSH.

/// Whether the SSH session's screen shows the service's order `order` with
/// row `at` selected: the title says `at+1/N`, the selected line is
/// `order[at]`'s, and every table line drawn (up to `page` of them) is the
/// service's row at its place. `Err` says what differs.
fn window_on(
    screen: &vt100::Screen,
    order: &[Value],
    at: usize,
    page: usize,
) -> Result<(), String> {
    // The title says where the selection is when the rows fill more than
    // the screen.
    let place = format!("{}/{} ·", at + 1, order.len());
    if order.len() > page && !screen.contents().contains(&place) {
        return Err(format!("no {place:?}"));
    }
    let lines: Vec<String> = screen.rows(0, screen.size().1).collect();
    let header = lines
        .iter()
        .position(|l| past_gutter(l).starts_with("Name"))
        .ok_or("no table header")?;
    let first = header + 1;
    let selected = (first..lines.len())
        .find(|&r| {
            screen
                .cell(u16::try_from(r).unwrap(), 0)
                .is_some_and(|c| c.inverse())
        })
        .ok_or("no selected line")?;
    let offset = at
        .checked_sub(selected - first)
        .ok_or("the selected line is below its row")?;
    let shown = page.min(order.len() - offset);
    for i in 0..shown {
        let name = order[offset + i]["name"].as_str().unwrap();
        let line = lines.get(first + i).map_or("", |l| past_gutter(l));
        if !line.starts_with(name) {
            return Err(format!("row {} is {name:?}, drawn {line:?}", offset + i));
        }
    }
    Ok(())
}

/// Waits until the session shows `order` with row `at` selected.
async fn wait_window(ui: &mut UiSession, order: &[Value], at: usize, page: usize, step: &str) {
    let what = format!(
        "{step}: row {} of {} selected, in the service's order",
        at + 1,
        order.len()
    );
    ui.wait_until(&what, |s| window_on(s, order, at, page).is_ok())
        .await;
}

/// The selected row's number (from 1) in the title's `n/N ·`.
fn place_on(screen: &str, total: usize) -> Option<usize> {
    let tail = format!("/{total} ·");
    let end = screen.find(&tail)?;
    let digits: String = screen[..end]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

/// A UI session over SSH with a capacity of 50 on 320 keys: `g`/`G`,
/// `PgDn`/`PgUp` from top to bottom and back show the service's rows; the
/// tabs are `GET /v1/api-keys/counts`; a filter shows the service's matches;
/// a key created over HTTP shows with the counts after `r`; marks on the
/// Active tab, some scrolled out of the window, and `d` revoke exactly the
/// marked keys; and the session never held more than its capacity.
async fn a_ui_session_over_ssh_is_a_bounded_window_over_the_service(backend: Backend) {
    let server = ssh::start(&backend, |s| s.ui_capacity = CAPACITY).await;
    let store = server.running.state.store.clone();
    seed(&backend, KEYS, &SystemClock).await;
    let stats = server.running.ssh.as_ref().unwrap().stats.clone();
    let key = ssh::new_key();
    ssh::add_key(store.as_ref(), ADMIN, &key).await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();
    let mut ui = UiSession::open(&handle, WIDTH, HEIGHT, &[]).await;

    let order = listing(&server, "tab=all").await;
    assert_eq!(order.len(), KEYS as usize);
    let now = counts(&server, None).await;
    let title = format!("{KEYS} keys");
    ui.wait_until("the first window and the counts", |s| {
        let screen = s.contents();
        shows_tabs(&screen, &now) && screen.contains(&title) && screen.contains("1/320 ·")
    })
    .await;

    // PgDn once: its step is a screen's rows.
    ui.send(b"\x1b[6~").await;
    let screen = ui
        .wait_until("PgDn moved", |s| {
            place_on(&s.contents(), order.len()).is_some_and(|n| n > 1)
        })
        .await;
    let page = place_on(&screen, order.len()).unwrap() - 1;
    assert!(
        (5..HEIGHT as usize).contains(&page),
        "{page} rows:\n{screen}"
    );
    let mut at = page;
    wait_window(&mut ui, &order, at, page, "PgDn").await;
    // Top to bottom with PgDn, back with PgUp.
    while at < order.len() - 1 {
        ui.send(b"\x1b[6~").await;
        at = (at + page).min(order.len() - 1);
        wait_window(&mut ui, &order, at, page, "PgDn").await;
    }
    while at > 0 {
        ui.send(b"\x1b[5~").await;
        at = at.saturating_sub(page);
        wait_window(&mut ui, &order, at, page, "PgUp").await;
    }
    // G and g jump without reading what lies between.
    ui.send(b"G").await;
    wait_window(&mut ui, &order, order.len() - 1, page, "G").await;
    ui.send(b"k").await;
    wait_window(&mut ui, &order, order.len() - 2, page, "k after G").await;
    ui.send(b"\x1b[5~").await;
    wait_window(
        &mut ui,
        &order,
        order.len() - 2 - page,
        page,
        "PgUp after G",
    )
    .await;
    ui.send(b"g").await;
    wait_window(&mut ui, &order, 0, page, "g").await;
    let held = stats.peak_held_keys.load(Ordering::Relaxed);
    assert!(
        (1..=CAPACITY).contains(&held),
        "the session held at most {CAPACITY} keys, not {held}"
    );

    // A filter: the service's matches, their counts, `n of N keys`.
    ui.send(b"/stripe\r").await;
    let matches = listing(&server, "tab=all&q=stripe").await;
    assert!(!matches.is_empty() && matches.len() < KEYS as usize);
    let filtered = counts(&server, Some("stripe")).await;
    let title = format!("{} of {KEYS} keys", matches.len());
    ui.wait_until("the filter's counts", |s| {
        shows_tabs(&s.contents(), &filtered) && s.contents().contains(&title)
    })
    .await;
    ui.send(b"g").await;
    wait_window(&mut ui, &matches, 0, page, "filtered").await;
    ui.send(b"\x1b").await;
    ui.wait_until("the filter cleared", |s| shows_tabs(&s.contents(), &now))
        .await;
    ui.send(b"g").await;
    wait_window(&mut ui, &order, 0, page, "the filter cleared").await;

    // A key made elsewhere (HTTP) shows after r, and the counts follow.
    let (made, _) = server
        .create_key("Made over HTTP", &["sessions:read"])
        .await;
    ui.send(b"r").await;
    let order = listing(&server, "tab=all").await;
    assert_eq!(order[0]["id"], made["id"]);
    let now = counts(&server, None).await;
    assert_eq!(now["tabs"]["all"], KEYS + 1);
    ui.wait_until("the new key's counts", |s| shows_tabs(&s.contents(), &now))
        .await;
    ui.send(b"g").await;
    wait_window(&mut ui, &order, 0, page, "after r").await;

    // Marks on the Active tab: two at the top, one at the end (the first
    // two leave the window), and d revokes those three and no other key.
    ui.send(b"2").await;
    let active = listing(&server, "tab=active").await;
    assert!(active.len() > CAPACITY);
    ui.send(b"g").await;
    wait_window(&mut ui, &active, 0, page, "Active").await;
    ui.send(b"  ").await;
    wait_window(&mut ui, &active, 2, page, "two marked").await;
    ui.send(b"G").await;
    wait_window(&mut ui, &active, active.len() - 1, page, "G on Active").await;
    ui.send(b" ").await;
    ui.wait_for("3 marked").await;
    let marked: Vec<&str> = [0, 1, active.len() - 1]
        .iter()
        .map(|&i| active[i]["id"].as_str().unwrap())
        .collect();
    let revoked_before = listing(&server, "tab=revoked").await;
    ui.send(b"d").await;
    ui.wait_for("Revoke API keys").await;
    ui.send(b"y").await;
    let after = {
        let mut after = counts(&server, None).await;
        for _ in 0..100 {
            if after["tabs"]["revoked"] == revoked_before.len() + 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            after = counts(&server, None).await;
        }
        after
    };
    let revoked_now = listing(&server, "tab=revoked").await;
    let mut newly: Vec<&str> = revoked_now
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .filter(|id| !revoked_before.iter().any(|k| k["id"] == *id))
        .collect();
    newly.sort_unstable();
    let mut want = marked.clone();
    want.sort_unstable();
    assert_eq!(newly, want, "exactly the marked keys were revoked");
    ui.wait_until("the counts after the revoke", |s| {
        shows_tabs(&s.contents(), &after) && !s.contents().contains("marked")
    })
    .await;
    let held = stats.peak_held_keys.load(Ordering::Relaxed);
    assert!(held <= CAPACITY, "the session held {held} keys");
    ui.send(b"q").await;
    ui.wait_closed().await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Two replicas.

/// Two services on one database (PostgreSQL: two replicas; SQLite: two
/// services on one file), on one clock.
async fn replicas(backend: &Backend, clock: &Arc<ManualClock>) -> (TestServer, TestServer) {
    let a = TestServer::start_with(backend, clock.clone(), |_| {}).await;
    let b = TestServer::start_with(backend, clock.clone(), |_| {}).await;
    (a, b)
}

async fn ui_on(server: &TestServer, clock: &Arc<ManualClock>) -> Harness {
    let client = Client::new(&server.base, Secret::new(server.admin_token.clone())).unwrap();
    let clock: Arc<dyn Clock> = clock.clone();
    let mut h = Harness::start_with(
        client,
        clock,
        Theme { color: false },
        (WIDTH, HEIGHT),
        |app| app.set_capacity(CAPACITY),
    )
    .await;
    h.app.set_refresh_every(Duration::seconds(30));
    h
}

/// The window (the rows held, in place) and the counts are the service's,
/// each row with the service's badges.
fn check_window(h: &mut Harness, order: &[Value], counts: &Value, step: &str) {
    assert!(h.app.windowed(), "{step}: a window");
    assert!(h.app.held() <= CAPACITY, "{step}: {} held", h.app.held());
    assert_eq!(h.app.row_count(), order.len(), "{step}: rows");
    let start = h.app.row_start();
    let held = h.app.keys().len();
    assert!(held > 0, "{step}: rows held");
    for (row, want) in order.iter().enumerate().skip(start).take(held) {
        let key = h.app.key_at(row).unwrap();
        assert_eq!(key.id, want["id"].as_str().unwrap(), "{step}: row {row}");
        let badges: Vec<&str> = h.app.badges_of(key).iter().map(|b| b.id()).collect();
        let listed: Vec<&str> = want["health"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap())
            .collect();
        assert_eq!(badges, listed, "{step}: row {row}'s badges");
    }
    let screen = h.screen();
    for text in tab_texts(counts) {
        assert!(screen.contains(&text), "{step}: {text}:\n{screen}");
    }
}

/// An automatic refresh (the clock past the refresh period, a tick).
async fn tick_refresh(h: &mut Harness, clock: &ManualClock) {
    clock.advance(Duration::seconds(31));
    h.send(Action::Tick).await;
}

/// The UI on replica A, in a window: keys created, revoked and rotated
/// through replica B show after an automatic refresh (A's change cursor
/// asked about B's writes) and after `r`; the rotated key shows as
/// `rotating`, not `rotate`; a policy set through B changes A's badges and
/// counts.
async fn the_ui_on_one_replica_follows_changes_made_through_another(backend: Backend) {
    let clock = manual_clock(Utc.with_ymd_and_hms(2030, 1, 15, 9, 0, 0).unwrap());
    let (a, b) = replicas(&backend, &clock).await;
    seed(&backend, KEYS, clock.as_ref()).await;
    let mut h = ui_on(&a, &clock).await;
    let order = listing(&a, "tab=all").await;
    check_window(&mut h, &order, &counts(&a, None).await, "first window");

    // Created and revoked through B: A's automatic refresh shows them.
    let (made, _) = b.create_key("Made on B", &["sessions:read"]).await;
    let revoked = order[2]["id"].as_str().unwrap().to_owned();
    assert_eq!(b.revoke(&revoked).await.status(), 200);
    tick_refresh(&mut h, &clock).await;
    let order = listing(&a, "tab=all").await;
    assert_eq!(order, listing(&b, "tab=all").await, "A and B list alike");
    assert_eq!(order[0]["id"], made["id"]);
    let now = counts(&a, None).await;
    assert_eq!(now, counts(&b, None).await);
    check_window(&mut h, &order, &now, "after B's create and revoke");
    assert!(h.app.key_by_id(&revoked).unwrap().revoked_at.is_some());

    // Rotated through B with a grace period: the old key is `rotating`.
    let old = order
        .iter()
        .take(20)
        .find(|k| {
            k["status"] == "active"
                && k["health"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|b| b == "rotate")
        })
        .or_else(|| order.iter().take(20).find(|k| k["status"] == "active"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = b
        .http
        .post(b.url(&format!("/v1/api-keys/{old}/rotate")))
        .bearer_auth(&b.admin_token)
        .json(&json!({"grace_seconds": 86_400}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    tick_refresh(&mut h, &clock).await;
    let order = listing(&a, "tab=all").await;
    let now = counts(&a, None).await;
    check_window(&mut h, &order, &now, "after B's rotation");
    let key = h.app.key_by_id(&old).unwrap();
    let badges: Vec<&str> = h.app.badges_of(key).iter().map(|b| b.id()).collect();
    assert!(badges.contains(&"rotating"), "{badges:?}");
    assert!(!badges.contains(&"rotate"), "{badges:?}");
    let name = key.name.clone();
    let screen = h.screen();
    let line = screen
        .lines()
        .map(past_gutter)
        .find(|l| l.starts_with(&name) && l.contains("rotating"));
    assert!(
        line.is_some_and(|l| !l.contains("rotate ")),
        "{name}:\n{screen}"
    );

    // A policy set through B: A's badges and counts follow on refresh.
    let attention_before = now["tabs"]["attention"].clone();
    let r = b
        .http
        .put(b.url("/v1/policy"))
        .bearer_auth(&b.admin_token)
        .json(&json!({"rotate_after_days": 1, "unused_after_days": 1, "expiring_within_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    tick_refresh(&mut h, &clock).await;
    let order = listing(&a, "tab=all").await;
    let now = counts(&a, None).await;
    assert_ne!(
        now["tabs"]["attention"], attention_before,
        "the policy counts"
    );
    check_window(&mut h, &order, &now, "after B's policy (automatic refresh)");

    // And r, further down the list: revoked through B, read again in place.
    for _ in 0..4 {
        h.press(KeyCode::PageDown).await;
    }
    let row = h.app.selected();
    let target = order[row]["id"].as_str().unwrap().to_owned();
    assert_eq!(b.revoke(&target).await.status(), 200);
    h.press(KeyCode::Char('r')).await;
    let order = listing(&a, "tab=all").await;
    check_window(
        &mut h,
        &order,
        &counts(&a, None).await,
        "r after B's revoke",
    );
    assert_eq!(h.app.selected(), row, "the selection stayed on its key");
    assert!(h.app.key_by_id(&target).unwrap().revoked_at.is_some());
    a.stop().await;
    b.stop().await;
}

// ---------------------------------------------------------------------------
// JSON lists over SSH.

/// `keys list --json` and `audit --json` over SSH, of more than a page (500)
/// each: one array of every key / entry, in the service's order.
async fn json_lists_over_ssh_of_more_than_a_page_are_complete_and_in_order(backend: Backend) {
    let server = ssh::start(&backend, |_| {}).await;
    let store = server.running.state.store.clone();
    keydeck::accounts::seed(store.as_ref(), "default", 1100, &SystemClock)
        .await
        .unwrap();
    let key = ssh::new_key();
    ssh::add_key(store.as_ref(), ADMIN, &key).await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();

    let listed = ssh::exec(&handle, "keys list --json", false).await;
    assert_eq!(listed.status, Some(0), "{}", listed.stderr);
    let keys: Vec<Value> = serde_json::from_str(&listed.stdout).expect("one JSON array");
    let ids: Vec<&str> = keys.iter().map(|k| k["id"].as_str().unwrap()).collect();
    let order = listing(&server, "tab=all").await;
    assert!(order.len() > 1000);
    let want: Vec<&str> = order.iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(ids, want, "every key once, in the service's order");

    // The session may write entries of its own while the list runs: the
    // list holds every entry up to its newest, and at least those before it.
    let org = store.org_by_name("default").await.unwrap().unwrap();
    let before = store.list_audit(&org.id, 1, None).await.unwrap()[0].id;
    let audit = ssh::exec(&handle, "audit --json --limit 100000", false).await;
    assert_eq!(audit.status, Some(0), "{}", audit.stderr);
    let entries: Vec<Value> = serde_json::from_str(&audit.stdout).expect("one JSON array");
    let got: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(got[0] >= before, "the newest entry {before} is listed");
    let stored = store
        .list_audit(&org.id, 100_000, Some(got[0] + 1))
        .await
        .unwrap();
    assert!(stored.len() > 1000, "{} entries", stored.len());
    let want: Vec<i64> = stored.iter().map(|e| e.id).collect();
    assert_eq!(got, want, "every entry once, newest first");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// `keydeck serve --ssh-listen` with KEYDECK_UI_CAPACITY, through OpenSSH.

#[test]
#[cfg_attr(
    not(keydeck_openssh),
    ignore = "needs the OpenSSH client (apt-get install openssh-client)"
)]
fn openssh_ui_sessions_of_keydeck_serve_take_the_capacity_from_the_environment_sqlite() {
    openssh_ui_sessions_take_the_capacity(Backend::sqlite());
}

#[test]
#[cfg_attr(
    any(not(keydeck_openssh), not(keydeck_pg)),
    ignore = "needs the OpenSSH client and KEYDECK_TEST_POSTGRES_URL"
)]
fn openssh_ui_sessions_of_keydeck_serve_take_the_capacity_from_the_environment_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if let Some(backend) = runtime.block_on(Backend::postgres()) {
        openssh_ui_sessions_take_the_capacity(backend);
    }
}

/// `KEYDECK_UI_CAPACITY=50 keydeck serve --ssh-listen …` on 320 keys: the UI
/// that `ssh -tt` opens is a window (its log says so, with the capacity),
/// and `G`, `g`, `PgDn` move through all 320 rows.
fn openssh_ui_sessions_take_the_capacity(backend: Backend) {
    use common::process::start_serve;
    use common::pty::{Session, TIMEOUT};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let mut cmd = common::bin::keydeck();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--ssh-listen",
        "127.0.0.1:0",
    ])
    .arg("--data-dir")
    .arg(backend.data_dir.path())
    .env("RUST_LOG", "info")
    .env("KEYDECK_UI_CAPACITY", CAPACITY.to_string())
    .stdout(std::process::Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    if let Some(url) = backend.database_url_arg() {
        cmd.args(["--database-url", &url]);
    }
    let ready = |text: &str| {
        let ssh = text
            .lines()
            .find(|l| l.contains("SSH server listening"))?
            .split("addr=")
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse::<std::net::SocketAddr>()
            .ok()?;
        common::process::listening_on(text).map(|_| ssh.port())
    };
    let (_serve, port) = start_serve(&mut cmd, &log, ready)
        .unwrap_or_else(|e| panic!("keydeck serve exited ({:?}):\n{}", e.code, e.log));
    let key = crate::ssh_openssh::keygen(dir.path(), "id_ed25519");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    runtime.block_on(async {
        seed(&backend, KEYS, &SystemClock).await;
        let store = backend.store().await;
        keydeck::accounts::ssh_keys::add_ssh_key(store.as_ref(), ADMIN, &public, Utc::now())
            .await
            .unwrap();
        store.close().await;
    });

    let mut args = crate::ssh_openssh::options(port, &key);
    args.extend(["-tt".into(), "anyone@127.0.0.1".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut ui = Session::start_program("ssh", &args, &[], WIDTH, HEIGHT);
    ui.wait_for(&format!("{KEYS} keys"));
    ui.wait_for("1/320 ·");
    ui.send("G");
    ui.wait_for("320/320 ·");
    ui.send("g");
    ui.wait_for("1/320 ·");
    ui.send("\x1b[6~");
    ui.wait_gone("1/320 ·");
    let text = std::fs::read_to_string(&log).unwrap();
    let window = format!("capacity={CAPACITY}");
    assert!(
        text.lines()
            .any(|l| l.contains("window mode") && l.contains(&window)),
        "the session's UI is a window of {CAPACITY} keys:\n{text}"
    );
    ui.send("q");
    let (code, _) = ui.wait_exit(TIMEOUT);
    assert_eq!(code, 0, "{}", ui.output());
    drop(runtime);
}
