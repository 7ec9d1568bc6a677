//! The flows that change keys, driven by key events in `TestBackend` against
//! the real service in-process: create, validation, Full Access, copy-once,
//! revoke, rotate, and a create whose answer is lost on the way.

use crate::common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use common::ui::{past_gutter, secret_on, start_time, World};
use crossterm::event::KeyCode;
use keydeck::tui::popup::Popup;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use ratatui::style::Color;
use serde_json::{json, Value};

const COLOR: Theme = Theme { color: true };
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The secret the copy-once modal shows, read from the screen.
fn secret_on_screen(ui: &mut Harness) -> String {
    let screen = ui.screen();
    assert!(
        screen.contains("Copy your API key now — it will not be shown again"),
        "{screen}"
    );
    secret_on(&screen)
}

async fn tab(ui: &mut Harness, times: usize) {
    for _ in 0..times {
        ui.press(KeyCode::Tab).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_then_copy_once_then_the_new_row() {
    let w = World::new().await;
    let mut ui = w.ui(COLOR, 100, 32).await;
    ui.press(KeyCode::Char('n')).await;
    assert!(ui
        .screen()
        .contains("No expiry: the key stays valid until it is revoked."));
    ui.type_text("CI/CD Pipeline").await;
    tab(&mut ui, 2).await;
    ui.type_text("30d").await;
    let screen = ui.screen();
    assert!(
        screen.contains("expires Thu 2030-02-14 09:00"),
        "live expiry preview:\n{screen}"
    );
    tab(&mut ui, 1).await; // Sessions (Read)
    ui.press(KeyCode::Char(' ')).await;
    tab(&mut ui, 2).await; // Resources (Read)
    ui.press(KeyCode::Char(' ')).await;
    insta::assert_snapshot!("create_form", ui.screen());
    ui.press(KeyCode::Enter).await;

    let secret = secret_on_screen(&mut ui);
    assert_eq!(w.auth(&secret, "sessions:read").await, 200);
    assert_eq!(w.auth(&secret, "resources:read").await, 200);
    assert_eq!(w.auth(&secret, "sessions:write").await, 403);

    // Closing before copying asks once more; "n" goes back to the secret.
    ui.press(KeyCode::Esc).await;
    assert!(ui.screen().contains("You have not copied the key"));
    ui.press(KeyCode::Char('n')).await;
    assert!(ui.screen().contains(&secret));
    // Copy: the OSC 52 payload is the secret.
    ui.press(KeyCode::Char('c')).await;
    let written = ui.clipboard.written.clone();
    assert_eq!(written.len(), 1);
    let payload = written[0]
        .strip_prefix("\x1b]52;c;")
        .unwrap()
        .strip_suffix('\x07')
        .unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(payload)
            .unwrap(),
        secret.as_bytes()
    );
    assert!(ui
        .screen()
        .contains("Sent to your terminal's clipboard (OSC 52)"));
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        !screen.contains(&secret),
        "closed, the secret is gone from the screen"
    );
    assert!(ui.app.popups().is_empty());

    let row = screen
        .lines()
        .find(|l| past_gutter(l).starts_with("CI/CD Pipeline"))
        .expect("the new row");
    assert!(
        row.contains("● Active") && row.contains("Sessions:R, Res") && row.contains("in 30d"),
        "{row}"
    );
    assert_eq!(
        ui.app.selected_key().unwrap().scopes,
        ["sessions:read", "resources:read"]
    );
    assert_eq!(
        ui.app.selected_key().unwrap().name,
        "CI/CD Pipeline",
        "the new key is selected"
    );
    let keys = w.keys().await;
    assert_eq!(keys.len(), 1);
    assert_eq!(
        keys[0]["expires_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        start_time() + Duration::days(30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_shown_inline_and_nothing_is_sent() {
    let w = World::new().await;
    let mut ui = w.ui(COLOR, 100, 32).await;
    // (name, expiry, tick a scope, the message expected)
    let long_name = "x".repeat(101);
    let cases: Vec<(&str, &str, bool, &str)> = vec![
        ("", "", true, "name is required"),
        (&long_name, "", true, "name must be at most 100 characters"),
        (
            "bell\u{7}",
            "",
            true,
            "name must not contain U+0007 BELL (at character 5)",
        ),
        ("no scope", "", false, "choose at least one scope"),
        (
            "past",
            "2020-01-01",
            true,
            "the expiry must be in the future",
        ),
        ("impossible", "2031-02-30", true, "that date does not exist"),
        ("garbage", "abc", true, "use a date like 2027-01-31"),
    ];
    for (name, expiry, scope, expected) in cases {
        ui.press(KeyCode::Char('n')).await;
        ui.type_text(name).await;
        tab(&mut ui, 2).await;
        ui.type_text(expiry).await;
        if scope {
            tab(&mut ui, 1).await;
            ui.press(KeyCode::Char(' ')).await;
        }
        ui.press(KeyCode::Enter).await;
        let screen = ui.screen();
        assert!(
            screen.contains(expected),
            "{expected:?} for {name:?}/{expiry:?}:\n{screen}"
        );
        assert!(
            matches!(ui.app.popups().last(), Some(Popup::Create(_))),
            "the form stays open"
        );
        // Esc on a touched form asks first; y discards.
        ui.press(KeyCode::Esc).await;
        if !name.is_empty() || !expiry.is_empty() || scope {
            assert!(ui.screen().contains("Discard this new key?"));
            ui.press(KeyCode::Char('y')).await;
        }
        assert!(ui.app.popups().is_empty());
    }
    assert!(w.keys().await.is_empty(), "no request was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_access_checks_every_box_and_unchecking_restores_the_choice() {
    let w = World::new().await;
    let mut ui = w.ui(COLOR, 100, 32).await;
    ui.press(KeyCode::Char('n')).await;
    tab(&mut ui, 3).await;
    ui.press(KeyCode::Char(' ')).await; // Sessions (Read)
    tab(&mut ui, 2).await;
    ui.press(KeyCode::Char(' ')).await; // Resources (Read)
    let boxes = |ui: &mut Harness| -> Vec<String> {
        ui.screen()
            .lines()
            .filter_map(|l| l.find('[').map(|i| l[i..i + 3].to_owned()))
            .filter(|b| b == "[x]" || b == "[ ]")
            .collect()
    };
    // The last box is the reporter scope's, apart: Full Access leaves it.
    assert_eq!(boxes(&mut ui), ["[x]", "[ ]", "[x]", "[ ]", "[ ]", "[ ]"]);
    tab(&mut ui, 2).await; // Full Access
    ui.press(KeyCode::Char(' ')).await;
    assert_eq!(boxes(&mut ui), ["[x]", "[x]", "[x]", "[x]", "[x]", "[ ]"]);
    ui.press(KeyCode::Char(' ')).await;
    assert_eq!(boxes(&mut ui), ["[x]", "[ ]", "[x]", "[ ]", "[ ]", "[ ]"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_dialog_cancels_by_default_and_y_revokes() {
    let w = World::new().await;
    let (_, secret) = w
        .server
        .create_key("Production API", &["sessions:read"])
        .await;
    let mut ui = w.ui(COLOR, 100, 32).await;
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Are you sure you want to revoke this API key?")
            && screen.contains("immediately lose access."),
        "{screen}"
    );
    assert!(screen.contains("Production API") && screen.contains("eg_live_"));
    insta::with_settings!({filters => vec![(r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"), (r"\b[0-9A-Za-z]{4}\.\.\.", "XXXX...")]}, {
        insta::assert_snapshot!("revoke_dialog", screen);
    });
    // Enter on the default button (Cancel) changes nothing.
    ui.press(KeyCode::Enter).await;
    assert!(ui.app.popups().is_empty());
    assert_eq!(w.auth(&secret, "sessions:read").await, 200);
    // Delete opens it too; y revokes.
    ui.press(KeyCode::Delete).await;
    ui.press(KeyCode::Char('y')).await;
    assert_eq!(w.auth(&secret, "sessions:read").await, 401);
    let screen = ui.screen();
    assert!(screen.contains("Revoked “Production API”"), "{screen}");
    let buffer = ui.draw().clone();
    let y = (0..buffer.area.height)
        .find(|&y| {
            let line: String = (0..30).map(|x| buffer[(x, y)].symbol()).collect();
            past_gutter(&line).starts_with("Production API")
        })
        .unwrap();
    let line: String = (0..buffer.area.width)
        .map(|x| buffer[(x, y)].symbol())
        .collect();
    let x = u16::try_from(
        line[..line.find("Revoked").expect("the row says Revoked")]
            .chars()
            .count(),
    )
    .unwrap();
    // The selected row is reversed; its status keeps its red.
    assert_eq!(buffer[(x, y)].fg, Color::Red);
    // Revoking it again is explained, not an error.
    ui.press(KeyCode::Char('d')).await;
    assert!(ui.screen().contains("Already revoked"));
    ui.press(KeyCode::Enter).await;
    assert!(ui.app.popups().is_empty());
}

// Issue 20: the rotate dialog offers the CLI's grace choices (one list in
// `present`) and, on key 4, any other span up to 24h typed in, checked as
// `--grace` checks it before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_offers_the_clis_grace_choices_and_a_typed_span() {
    use keydeck::present::GRACE_CHOICES;
    let w = World::new().await;
    let (created, old_secret) = w
        .server
        .create_key("Typed grace", &["resources:read"])
        .await;
    let old_id = created["id"].as_str().unwrap().to_owned();
    let mut ui = w.ui(COLOR, 100, 32).await;
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    for (i, choice) in GRACE_CHOICES.iter().enumerate() {
        let offered = format!("{} {}", i + 1, choice.label);
        assert!(screen.contains(&offered), "{offered} in:\n{screen}");
    }
    assert!(
        screen.contains("( ) 4 other:   any span up to 24h, like 30m or 2h"),
        "{screen}"
    );

    // Other, empty: asks for a span and sends nothing.
    ui.press(KeyCode::Char('4')).await;
    ui.press(KeyCode::Char('y')).await;
    assert!(
        ui.screen()
            .contains("Type the grace period: any span up to 24h, like 30m or 2h."),
        "{}",
        ui.screen()
    );
    // Too long: the CLI's own words; `h` types (it does not move the choice).
    ui.type_text("25h").await;
    assert!(ui.screen().contains("(•) 4 other: 25h▏"), "{}", ui.screen());
    ui.press(KeyCode::Char('y')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("\"25h\" is too long: the grace period is at most 24h"),
        "{screen}"
    );
    assert!(matches!(ui.app.popups().last(), Some(Popup::Rotate(_))));
    assert_eq!(w.keys().await.len(), 1, "nothing was sent");

    // 2h: the old key works two more hours.
    for _ in 0..3 {
        ui.press(KeyCode::Backspace).await;
    }
    ui.type_text("2h").await;
    ui.press(KeyCode::Char('y')).await;
    let new_secret = secret_on_screen(&mut ui);
    assert_eq!(w.auth(&old_secret, "resources:read").await, 200);
    assert_eq!(w.auth(&new_secret, "resources:read").await, 200);
    let keys = w.keys().await;
    let old = keys.iter().find(|k| k["id"] == old_id.as_str()).unwrap();
    let until: DateTime<Utc> = old["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(until, start_time() + Duration::hours(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_with_an_hour_of_grace_then_at_once() {
    let w = World::new().await;
    let (_, old_secret) = w
        .server
        .create_key("Billing worker", &["resources:read"])
        .await;
    let mut ui = w.ui(COLOR, 100, 32).await;
    ui.press(KeyCode::Char('R')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("(•) 2 after 1 hour"),
        "1 hour is the default grace:\n{screen}"
    );
    ui.press(KeyCode::Char('y')).await;
    let new_secret = secret_on_screen(&mut ui);
    assert_ne!(new_secret, old_secret);
    assert!(ui
        .screen()
        .contains("The old key keeps working until 2030-01-15 10:00:00 +00:00 (in 1h)."));
    assert_eq!(w.auth(&old_secret, "resources:read").await, 200);
    assert_eq!(w.auth(&new_secret, "resources:read").await, 200);
    ui.press(KeyCode::Char('c')).await;
    ui.press(KeyCode::Esc).await;
    let screen = ui.screen();
    let rows: Vec<&str> = screen
        .lines()
        .filter(|l| past_gutter(l).starts_with("Billing worker"))
        .collect();
    assert_eq!(rows.len(), 2, "{screen}");
    assert!(
        rows.iter().any(|r| r.contains("in 1h")),
        "the old row shows when it stops working: {rows:?}"
    );

    // Now rotate the new key with no grace: it stops working at once.
    assert_eq!(ui.app.selected_key().unwrap().prefix, new_secret[..12]);
    ui.press(KeyCode::Char('R')).await;
    ui.press(KeyCode::Char('1')).await;
    ui.press(KeyCode::Char('y')).await;
    let newest = secret_on_screen(&mut ui);
    assert_eq!(w.auth(&new_secret, "resources:read").await, 401);
    assert_eq!(w.auth(&newest, "resources:read").await, 200);
    assert!(ui
        .screen()
        .contains("The old key was revoked and no longer works."));
}

/// A proxy to the service that forwards everything but swallows the answer to
/// the first `POST /v1/api-keys`, closing the connection instead.
async fn answer_dropping_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let flag = flag.clone();
            tokio::spawn(async move {
                let _ = relay(client, upstream, flag).await;
            });
        }
    });
    (addr, dropped)
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    dropped: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    let (mut from_client, mut from_server) = (Vec::new(), Vec::new());
    loop {
        let Some(request) = read_message(&mut client, &mut from_client).await? else {
            return Ok(());
        };
        server.write_all(&request).await?;
        let Some(response) = read_message(&mut server, &mut from_server).await? else {
            return Ok(());
        };
        if request.starts_with(b"POST /v1/api-keys ") && !dropped.swap(true, Ordering::SeqCst) {
            // The key was created; its answer never arrives.
            return Ok(());
        }
        client.write_all(&response).await?;
    }
}

/// One HTTP/1.1 message (headers and a Content-Length body), or `None` at EOF.
async fn read_message(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap_or(0));
            let total = end + 4 + length;
            if buf.len() >= total {
                return Ok(Some(buf.drain(..total).collect()));
            }
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_ends_with_one_key_and_the_admin_told() {
    let w = World::new().await;
    let (proxy, dropped) = answer_dropping_proxy(w.server.running.addr).await;
    let mut ui = w.ui_at(&format!("http://{proxy}"), COLOR, 100, 32).await;
    ui.press(KeyCode::Char('n')).await;
    ui.type_text("Deploy bot").await;
    tab(&mut ui, 3).await;
    ui.press(KeyCode::Char(' ')).await;
    ui.press(KeyCode::Enter).await;
    assert!(
        dropped.load(Ordering::SeqCst),
        "the first answer was dropped"
    );

    let keys = w.keys().await;
    assert_eq!(keys.len(), 1, "the retry did not create a second key");
    let screen = ui.screen();
    assert!(
        screen.contains("Key created, secret lost")
            && screen.contains("was created, but the answer"),
        "{screen}"
    );
    assert!(screen.contains("Deploy bot") && screen.contains("Revoke it now?"));
    // Revoke is offered first here: a key nobody has the secret of is of no use.
    ui.press(KeyCode::Enter).await;
    let keys = w.keys().await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["status"], "revoked");
    assert!(ui.screen().contains("Revoked “Deploy bot”"));
    w.clock.advance(Duration::seconds(1));
    let _ = json!({});
}

// Issue 20: `X` does not warn that applications will lose access (expired
// keys already fail authentication), and the status line after it counts
// every key it revoked, not the last one answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_says_expired_keys_already_fail_and_counts_what_it_revoked() {
    let w = World::new().await;
    let soon = |minutes| json!({"name": format!("lapsed {minutes}"), "scopes": ["sessions:read"], "expires_at": start_time() + Duration::minutes(minutes)});
    let (_, live) = w.server.create_key("still good", &["sessions:read"]).await;
    w.create(soon(5)).await;
    w.create(soon(6)).await;
    w.clock.advance(Duration::minutes(10));
    let mut ui = w.ui(COLOR, 100, 32).await;
    ui.press(KeyCode::Char('X')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke 2 expired keys (they already fail authentication)?"),
        "{screen}"
    );
    assert!(!screen.contains("lose access"), "{screen}");
    assert!(screen.contains("“lapsed 5”") && screen.contains("“lapsed 6”"));
    ui.press(KeyCode::Char('y')).await;
    ui.settle().await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoked 2 keys: they no longer work anywhere."),
        "{screen}"
    );
    let keys = w.keys().await;
    let status = |name: &str| keys.iter().find(|k| k["name"] == name).unwrap()["status"].clone();
    assert_eq!(status("lapsed 5"), "revoked");
    assert_eq!(status("lapsed 6"), "revoked");
    assert_eq!(status("still good"), "active");
    assert_eq!(w.auth(&live, "sessions:read").await, 200);

    // One expired key: the same words in the singular.
    w.create(soon(12)).await;
    w.clock.advance(Duration::minutes(5));
    ui.press(KeyCode::Char('r')).await;
    ui.settle().await;
    ui.press(KeyCode::Char('X')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke 1 expired key (it already fails authentication)?"),
        "{screen}"
    );
    ui.press(KeyCode::Char('y')).await;
    ui.settle().await;
    assert!(ui
        .screen()
        .contains("Revoked 1 key: it no longer works anywhere."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_bulk_revoke_expired_cleanup_audit_and_copy_id() {
    let w = World::new().await;
    let (_, a) = w.server.create_key("alpha", &["sessions:read"]).await;
    w.clock.advance(Duration::seconds(1));
    let (_, b) = w.server.create_key("bravo", &["sessions:read"]).await;
    w.clock.advance(Duration::seconds(1));
    let (_, c) = w.server.create_key("charlie", &["sessions:read"]).await;
    w.clock.advance(Duration::seconds(1));
    let r = w.server.create_key_as(&w.server.admin_token, json!({"name": "short", "scopes": ["sessions:read"], "expires_at": start_time() + Duration::minutes(5)})).await;
    let short: Value = r.json().await.unwrap();
    w.clock.advance(Duration::minutes(10));
    let mut ui = w.ui(COLOR, 100, 32).await;
    let selected = |ui: &Harness| ui.app.selected_key().unwrap().name.clone();
    // Sorted by creation, newest first: short, charlie, bravo, alpha.
    ui.press(KeyCode::Char('j')).await;
    assert_eq!(selected(&ui), "charlie");
    // Space marks and moves down; d revokes every marked key after asking.
    ui.press(KeyCode::Char(' ')).await;
    ui.press(KeyCode::Char('j')).await;
    ui.press(KeyCode::Char(' ')).await;
    assert!(ui.screen().contains("✓ charlie"));
    ui.press(KeyCode::Char('d')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Revoke the marked keys: 2 keys?")
            && screen.contains("charlie")
            && screen.contains("alpha"),
        "{screen}"
    );
    ui.press(KeyCode::Char('y')).await;
    assert_eq!(w.auth(&c, "sessions:read").await, 401);
    assert_eq!(w.auth(&a, "sessions:read").await, 401);
    assert_eq!(
        w.auth(&b, "sessions:read").await,
        200,
        "bravo was not marked"
    );
    assert!(ui.app.marked().is_empty());

    // X revokes every expired key, after asking.
    ui.press(KeyCode::Char('X')).await;
    assert!(ui
        .screen()
        .contains("Revoke 1 expired key (it already fails authentication)?"));
    ui.press(KeyCode::Char('y')).await;
    let keys = w.keys().await;
    let status = |name: &str| keys.iter().find(|k| k["name"] == name).unwrap()["status"].clone();
    assert_eq!(status("short"), "revoked");
    assert_eq!(status("bravo"), "active");
    assert_eq!(short["api_key"]["id"], keys[0]["id"]);

    // y copies the prefix and id, never a secret.
    ui.press(KeyCode::Home).await;
    ui.press(KeyCode::Char('y')).await;
    let copied = ui.clipboard.written.last().unwrap().clone();
    let payload = copied
        .strip_prefix("\x1b]52;c;")
        .unwrap()
        .strip_suffix('\x07')
        .unwrap();
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let key = ui.app.selected_key().unwrap();
    assert_eq!(text, format!("{}... {}", key.prefix, key.id));

    // a: the audit log, newest first, with key names.
    ui.press(KeyCode::Char('a')).await;
    let screen = ui.screen();
    assert!(screen.contains("Audit log · 7 entries"), "{screen}");
    let short = ui.app.keys().iter().find(|k| k.name == "short").unwrap();
    let alpha = ui.app.keys().iter().find(|k| k.name == "alpha").unwrap();
    assert!(
        screen.contains(&format!(
            "revoked  “short” {}… by admin@localhost from 127.0.0.1",
            short.prefix
        )),
        "{screen}"
    );
    assert!(
        screen.contains(&format!(
            "created  “alpha” {}… by admin@localhost",
            alpha.prefix
        )),
        "{screen}"
    );
    ui.press(KeyCode::Esc).await;
    assert!(ui.app.popups().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quitting_waits_for_a_change_on_its_way_and_never_hides_a_new_secret() {
    use crossterm::event::{KeyEvent, KeyModifiers};
    use keydeck::tui::action::Action;
    let key = |c: char| Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    let w = World::new().await;
    let (_, secret) = w.server.create_key("Going away", &["sessions:read"]).await;
    let mut ui = w.ui(COLOR, 100, 32).await;

    // q while a revoke is on its way: keydeck quits once it is answered.
    ui.press(KeyCode::Char('d')).await;
    ui.app.update(key('y'));
    ui.app.update(key('q'));
    assert!(
        !ui.app.should_quit() && ui.app.quit_pending(),
        "waits for the revoke"
    );
    assert!(ui.screen().contains("still being sent"));
    ui.settle().await;
    assert!(ui.app.should_quit());
    assert_eq!(
        w.auth(&secret, "sessions:read").await,
        401,
        "the revoke was not cut short"
    );

    // q while a create is on its way: the new secret is shown, not lost.
    let mut ui = w.ui(COLOR, 100, 32).await;
    ui.press(KeyCode::Char('n')).await;
    ui.type_text("Made while quitting").await;
    tab(&mut ui, 3).await;
    ui.press(KeyCode::Char(' ')).await;
    ui.app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    ui.app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert!(!ui.app.should_quit());
    ui.settle().await;
    assert!(!ui.app.should_quit(), "quitting now would lose the secret");
    let new_secret = secret_on_screen(&mut ui);
    assert!(ui.screen().contains("Not quitting yet"));
    assert_eq!(w.auth(&new_secret, "sessions:read").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pasted_text_lands_in_the_focused_field_and_editing_keys_work() {
    use keydeck::tui::action::Action;
    let w = World::new().await;
    let mut ui = w.ui(COLOR, 100, 32).await;
    ui.press(KeyCode::Char('n')).await;
    ui.send(Action::Paste("Pasted name\n".into())).await;
    // Home, a character, End, Backspace: tui-input's line editing.
    ui.press(KeyCode::Home).await;
    ui.press(KeyCode::Char('>')).await;
    ui.press(KeyCode::End).await;
    ui.press(KeyCode::Backspace).await;
    tab(&mut ui, 1).await;
    ui.send(Action::Paste("From the clipboard".into())).await;
    let Some(Popup::Create(form)) = ui.app.popups().last() else {
        panic!("the form is open")
    };
    assert_eq!(
        form.name.value(),
        ">Pasted nam",
        "the newline was dropped, the edits applied"
    );
    assert_eq!(form.description.value(), "From the clipboard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discard_question_offers_discard_or_keep_editing() {
    let w = World::new().await;
    let mut ui = w.ui(COLOR, 80, 24).await;
    ui.press(KeyCode::Char('n')).await;
    ui.type_text("Half typed").await;
    ui.press(KeyCode::Esc).await;
    let screen = ui.screen();
    let buttons = screen.lines().find(|l| l.contains("[ Discard ]"));
    assert!(
        buttons.is_some_and(|l| l.contains("[ Keep editing ]") && !l.contains("Cancel")),
        "{screen}"
    );
    // Keep editing (the focused, safe answer) goes back to the form as it was.
    ui.press(KeyCode::Enter).await;
    assert!(matches!(ui.app.popups().last(), Some(Popup::Create(_))));
    assert!(ui.screen().contains("Half typed"));
}
