//! keydeck over SSH, with russh's client in-process against the real service
//! (SQLite, and PostgreSQL for the key store): the UI on a PTY, commands,
//! SSH keys as identity, attribution, and the limits of a session.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use keydeck::store::{Plan, Role};
use serde_json::Value;

use common::lifecycle::{admin, admin_ok};
use common::ssh::{self, UiSession, TIMEOUT};
use common::ui::{past_gutter, secret_on};
use common::{Backend, TestServer};

const ADMIN: &str = "admin@localhost";

on_both_backends!(ssh_keys_are_added_listed_and_removed_and_a_removed_key_is_refused);

fn row_of(screen: &vt100::Screen, name: &str) -> u16 {
    screen
        .rows(0, screen.size().1)
        .position(|row| past_gutter(&row).starts_with(name))
        .map(|row| u16::try_from(row).unwrap())
        .unwrap_or_else(|| panic!("a row {name:?} in:\n{}", screen.contents()))
}

fn selected(screen: &vt100::Screen, name: &str) -> bool {
    screen.cell(row_of(screen, name), 0).unwrap().inverse()
}

/// The audit log as the admin reads it over HTTP.
async fn audit(server: &TestServer) -> Vec<Value> {
    server.get_json("/v1/audit-logs", &server.admin_token).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

// Acceptance 1 and 4: the UI over SSH at 80×24: create, copy-once through
// OSC 52, revoke, a window change, `q`; the changes are attributed to the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_over_ssh_creates_copies_revokes_relays_and_quits() {
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    let fingerprint = ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    server.create_key("Alpha key", &["sessions:read"]).await;
    let handle = ssh::connect(ssh::addr(&server), &key)
        .await
        .expect("the key is accepted");
    let mut ui = UiSession::open(&handle, 80, 24, &[]).await;

    let screen = ui.wait_for("Alpha key").await;
    assert!(
        screen.contains("Name") && screen.contains("Status"),
        "{screen}"
    );
    assert!(
        !screen.contains("Expires"),
        "no room for Expires at 80 columns:\n{screen}"
    );
    let terminal = ui.terminal();
    let s = terminal.screen();
    assert!(s.alternate_screen() && s.hide_cursor() && s.bracketed_paste());

    // Create: n, the name as a paste, the first scope, Enter.
    ui.send(b"n").await;
    ui.wait_for("New API key").await;
    ui.send(b"\x1b[200~SSH made\x1b[201~").await;
    ui.wait_for("SSH made").await;
    ui.send(b"\t\t\t ").await;
    ui.wait_for("[x] Sessions:R").await;
    ui.send(b"\r").await;
    let screen = ui
        .wait_for("Copy your API key now — it will not be shown again")
        .await;
    let secret = secret_on(&screen);

    // c: the secret travels as OSC 52 in the session's output; the service takes it.
    assert!(ui.osc52_payloads().is_empty());
    ui.send(b"c").await;
    ui.wait_for("Sent to your terminal's clipboard (OSC 52)")
        .await;
    let copied = ui.osc52_payloads();
    assert_eq!(copied, vec![secret.clone()]);
    assert_eq!(
        server
            .auth(&copied[0], Some("sessions:read"))
            .await
            .status(),
        200
    );

    // Close the modal; revoke the new key (selected): 401 from then on.
    ui.send(b"\r").await;
    ui.wait_gone(&secret).await;
    ui.send(b"d").await;
    ui.wait_for("Are you sure you want to revoke this API key?")
        .await;
    ui.send(b"y").await;
    ui.wait_for("Revoked “SSH made”").await;
    assert_eq!(
        server.auth(&secret, Some("sessions:read")).await.status(),
        401
    );

    // A window change re-lays the table at once: 120 columns have room for Expires.
    ui.resize(120, 40).await;
    let screen = ui
        .wait_until("the table laid out for 120×40", |s| {
            s.contents().contains("Expires")
        })
        .await;
    assert!(screen.contains("Alpha key"), "{screen}");

    // q: exit status 0, the terminal restored before the channel closed.
    ui.send(b"q").await;
    assert_eq!(ui.wait_closed().await, Some(0));
    let terminal = ui.terminal();
    let s = terminal.screen();
    assert!(!s.alternate_screen() && !s.hide_cursor() && !s.bracketed_paste());

    // Acceptance 4: both changes name the user, the address and the key.
    let entries = audit(&server).await;
    for action in ["api_key.created", "api_key.revoked"] {
        let entry = entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} in {entries:?}"));
        assert_eq!(entry["actor"]["name"], ADMIN, "{entry}");
        assert_eq!(entry["remote_addr"], "127.0.0.1", "{entry}");
        assert_eq!(
            entry["details"]["via"],
            format!("ssh {fingerprint}"),
            "{entry}"
        );
    }
    server.stop().await;
}

// Commands over SSH: the same output and exit codes as on the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_over_ssh_answer_as_the_command_line_does() {
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    let fingerprint = ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    let (made, _) = server.create_key("Listed key", &["sessions:read"]).await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();

    let listed = ssh::exec(&handle, "keys list --json", false).await;
    assert_eq!(listed.status, Some(0), "{listed:?}");
    let keys: Vec<Value> = serde_json::from_str(&listed.stdout).expect("a JSON array");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], made["id"]);

    let unknown = ssh::exec(&handle, "keys show key_unknown1", false).await;
    assert_eq!(unknown.status, Some(1), "{unknown:?}");
    assert!(unknown.stdout.is_empty());

    // A secret alone on stdout; then revoke without --yes refuses (no terminal to ask on).
    let created = ssh::exec(
        &handle,
        "keys create --name 'From ssh' --scope sessions:read",
        false,
    )
    .await;
    assert_eq!(created.status, Some(0), "{created:?}");
    let secret = created.stdout.trim().to_owned();
    assert_eq!(
        server.auth(&secret, Some("sessions:read")).await.status(),
        200
    );
    let prefix = &secret[..12];
    let refused = ssh::exec(&handle, &format!("keys revoke {prefix}"), false).await;
    assert_eq!(refused.status, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("without confirmation"),
        "{refused:?}"
    );
    assert_eq!(
        server.auth(&secret, Some("sessions:read")).await.status(),
        200
    );
    let revoked = ssh::exec(&handle, &format!("keys revoke {prefix} --yes"), false).await;
    assert_eq!(revoked.status, Some(0), "{revoked:?}");
    assert_eq!(
        server.auth(&secret, Some("sessions:read")).await.status(),
        401
    );

    // The audit log over SSH shows both changes, attributed to the key.
    let log = ssh::exec(&handle, "audit --json", false).await;
    assert_eq!(log.status, Some(0), "{log:?}");
    let entries: Vec<Value> = serde_json::from_str(&log.stdout).unwrap();
    let via = format!("ssh {fingerprint}");
    assert!(entries
        .iter()
        .any(|e| e["action"] == "api_key.created" && e["details"]["via"] == via));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "api_key.revoked" && e["details"]["via"] == via));

    // Anything else: a short usage message, exit 1. With a PTY: \r\n.
    for other in ["ls -la", "serve", "admin users list", ""] {
        let done = ssh::exec(&handle, other, false).await;
        assert_eq!(done.status, Some(1), "{other:?}: {done:?}");
        assert!(done.stderr.contains("Usage"), "{other:?}: {done:?}");
    }
    let table = ssh::exec(&handle, "keys list", true).await;
    assert_eq!(table.status, Some(0), "{table:?}");
    assert!(
        table.stdout.contains("Listed key") && table.stdout.contains("\r\n"),
        "{table:?}"
    );
    assert!(
        !table.stdout.replace("\r\n", "").contains('\n'),
        "{table:?}"
    );
    server.stop().await;
}

// Members and users of free organisations could do nothing over SSH but
// read 403 and 402 banners: their keys are refused at authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_free_organisations_are_refused_at_authentication() {
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |_| {}).await;
    let store = server.running.state.store.clone();
    common::add_org(store.as_ref(), "freeorg", Plan::Free).await;
    let member = ssh::new_key();
    ssh::add_key(store.as_ref(), "member@freeorg.test", &member).await;
    let free_admin = ssh::new_key();
    ssh::add_key(store.as_ref(), "admin@freeorg.test", &free_admin).await;
    for key in [&member, &free_admin] {
        assert!(
            ssh::connect(ssh::addr(&server), key).await.is_none(),
            "refused"
        );
    }
    // A member of a paid organisation: refused too.
    keydeck::accounts::add_user(
        store.as_ref(),
        "default",
        "member@localhost",
        Role::Member,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let paid_member = ssh::new_key();
    ssh::add_key(store.as_ref(), "member@localhost", &paid_member).await;
    assert!(ssh::connect(ssh::addr(&server), &paid_member)
        .await
        .is_none());
    // The paid organisation's admin still gets in.
    let admin_key = ssh::new_key();
    ssh::add_key(store.as_ref(), ADMIN, &admin_key).await;
    let handle = ssh::connect(ssh::addr(&server), &admin_key)
        .await
        .expect("accepted");
    let done = ssh::exec(&handle, "keys list --json", false).await;
    assert_eq!(done.status, Some(0), "{done:?}");
    server.stop().await;
}

// Acceptance 3: add, list and remove through `keydeck admin`; a removed key
// (and a key nobody added) is refused at authentication.
async fn ssh_keys_are_added_listed_and_removed_and_a_removed_key_is_refused(backend: Backend) {
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    let dir = tempfile::tempdir().unwrap();
    let pub_file = dir.path().join("id_ed25519.pub");
    std::fs::write(&pub_file, ssh::public_line(&key) + "\n").unwrap();

    let added = admin(
        &backend,
        &["users", "add-ssh-key", ADMIN, pub_file.to_str().unwrap()],
    );
    assert!(added.ok, "{}", added.stderr);
    let fingerprint = added
        .stderr
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .expect("the fingerprint is said")
        .to_owned();
    // One key, one user.
    let again = admin(
        &backend,
        &["users", "add-ssh-key", ADMIN, &ssh::public_line(&key)],
    );
    assert!(
        !again.ok && again.stderr.contains("already added"),
        "{}",
        again.stderr
    );
    let bad = admin(
        &backend,
        &["users", "add-ssh-key", ADMIN, "ssh-ed25519 AAAAnotakey"],
    );
    assert!(
        !bad.ok && bad.stderr.contains("not an OpenSSH public key"),
        "{}",
        bad.stderr
    );

    let listed = admin_ok(&backend, &["users", "list-ssh-keys", ADMIN]);
    assert!(
        listed.contains(&fingerprint) && listed.contains("test@keydeck"),
        "{listed}"
    );
    assert!(listed.contains("never"), "not used yet: {listed}");

    let handle = ssh::connect(ssh::addr(&server), &key)
        .await
        .expect("accepted");
    drop(handle);
    let listed = admin_ok(&backend, &["users", "list-ssh-keys"]);
    assert!(
        listed.contains(&fingerprint) && !listed.contains("never"),
        "last used: {listed}"
    );

    let unknown = ssh::new_key();
    assert!(ssh::connect(ssh::addr(&server), &unknown).await.is_none());

    admin_ok(&backend, &["users", "remove-ssh-key", ADMIN, &fingerprint]);
    let listed = admin_ok(&backend, &["users", "list-ssh-keys"]);
    assert!(!listed.contains(&fingerprint), "{listed}");
    assert!(
        ssh::connect(ssh::addr(&server), &key).await.is_none(),
        "refused once removed"
    );
    let missing = admin(&backend, &["users", "remove-ssh-key", ADMIN, &fingerprint]);
    assert!(!missing.ok, "{}", missing.stdout);

    // Both changes are in the organisation's audit log, by the operator.
    let entries = audit(&server).await;
    for action in ["user.ssh_key_added", "user.ssh_key_removed"] {
        assert!(
            entries
                .iter()
                .any(|e| e["action"] == action
                    && e["details"]["fingerprint"] == fingerprint.as_str()),
            "{action} in {entries:?}"
        );
    }
    server.stop().await;
    backend.cleanup().await;
}

// Acceptance 5: the idle timeout ends a UI session with the terminal
// restored; over the session limit, the next session is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_end_restored_and_the_session_limit_is_explained() {
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |ssh| {
        ssh.idle_timeout = Duration::from_secs(2);
        ssh.max_sessions = 1;
    })
    .await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    server.create_key("Idle key", &["sessions:read"]).await;
    let addr = ssh::addr(&server);

    let first = ssh::connect(addr, &key).await.unwrap();
    let mut ui = UiSession::open(&first, 80, 24, &[]).await;
    ui.wait_for("Idle key").await;

    // A second session while the first is open: told why, exit status 1.
    let second = ssh::connect(addr, &key).await.unwrap();
    let refused = ssh::exec(&second, "keys list", false).await;
    assert_eq!(refused.status, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("as many SSH sessions as it allows (1)"),
        "{refused:?}"
    );
    assert!(refused.stdout.is_empty());

    // No input: the first ends by itself, restored, with a word on stderr.
    assert_eq!(ui.wait_closed().await, Some(0));
    let terminal = ui.terminal();
    let s = terminal.screen();
    assert!(!s.alternate_screen() && !s.hide_cursor(), "restored");
    assert!(String::from_utf8_lossy(&ui.stderr).contains("without input"));

    // The slot is free again.
    let done = ssh::exec(&second, "keys list --json", false).await;
    assert_eq!(done.status, Some(0), "{done:?}");
    server.stop().await;
}

// The server shutting down ends UI sessions with the terminal restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_restores_the_terminal_of_open_sessions() {
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();
    let mut ui = UiSession::open(&handle, 80, 24, &[("NO_COLOR", "1")]).await;
    ui.wait_for("No API keys").await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(ui.wait_closed().await, Some(0));
    let terminal = ui.terminal();
    assert!(!terminal.screen().alternate_screen());
    assert!(String::from_utf8_lossy(&ui.stderr).contains("shutting down"));
    stopping.await.unwrap();
}

// Acceptance 6: a client that stops reading while the UI redraws again and
// again: the server holds a bounded amount, drops frames, and redraws the
// whole screen once the client reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_cannot_grow_the_servers_buffer() {
    const LIMIT: usize = 8 * 1024;
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |ssh| ssh.output_buffer = LIMIT).await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    server.create_key("First key", &["sessions:read"]).await;
    server.create_key("Second key", &["sessions:read"]).await;
    let stats = server.running.ssh.as_ref().unwrap().stats.clone();
    // A small window and channel buffer: once this client stops reading, the
    // server can send little more.
    let config = russh::client::Config {
        window_size: 4096,
        channel_buffer_size: 2,
        ..Default::default()
    };
    let handle = ssh::connect_with(ssh::addr(&server), &key, config)
        .await
        .unwrap();
    let mut ui = UiSession::open(&handle, 80, 24, &[]).await;
    ui.wait_for("Second key").await;
    let top = {
        let t = ui.terminal();
        if row_of(t.screen(), "First key") < row_of(t.screen(), "Second key") {
            "First key"
        } else {
            "Second key"
        }
    };

    // 4000 moves (j k j k …): a redraw each. The client reads nothing meanwhile.
    ui.send(&b"jk".repeat(2000)).await;
    let start = Instant::now();
    while stats.peak_buffered.load(Ordering::Relaxed) < LIMIT {
        assert!(start.elapsed() < TIMEOUT, "the server's buffer filled up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = stats.peak_buffered.load(Ordering::Relaxed);
    println!("peak output buffered for a stalled client: {peak} bytes (limit {LIMIT})");
    assert!(peak <= LIMIT + 4096, "bounded: {peak}");

    // The client reads again: the frames kept, then one full redraw; the
    // session goes on as if nothing happened.
    let resynced = stats.clone();
    ui.wait_until("a full redraw after the stall", move |_| {
        resynced.resyncs.load(Ordering::Relaxed) >= 1
    })
    .await;
    let other = if top == "First key" {
        "Second key"
    } else {
        "First key"
    };
    ui.send(b"j").await;
    ui.wait_until("the second row selected", |s| {
        selected(s, other) && !selected(s, top)
    })
    .await;
    ui.send(b"q").await;
    assert_eq!(ui.wait_closed().await, Some(0));
    server.stop().await;
}

// Keys nobody added count as failed authentications of the address (once per
// connection), in the limiter the HTTP API uses: past the limit, even a known
// key from that address is refused, and so is an access token over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_count_in_the_failed_authentication_limiter() {
    let backend = Backend::sqlite();
    let server = TestServer::start_with_ssh(
        &backend,
        std::sync::Arc::new(keydeck::clock::SystemClock),
        |config| config.max_failed_auth = 3,
        Some(keydeck::ssh::SshConfig::new("127.0.0.1:0".parse().unwrap())),
    )
    .await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    let addr = ssh::addr(&server);
    assert!(ssh::connect(addr, &key).await.is_some(), "accepted before");
    for _ in 0..3 {
        assert!(ssh::connect(addr, &ssh::new_key()).await.is_none());
    }
    assert!(
        ssh::connect(addr, &key).await.is_none(),
        "the address is locked out"
    );
    let locked = server
        .get("/v1/api-keys", &server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(locked.status(), 429);
    server.stop().await;
}

/// The foreground a palette draws an active key's status in, as a terminal
/// reads it from the bytes (`ESC[32m` is index 2, `ESC[38;5;28m` index 28).
pub(crate) fn active_fg(palette: keydeck::tui::theme::Palette) -> vt100::Color {
    use keydeck::key::KeyStatus;
    use keydeck::tui::theme::{Styles, Theme};
    use ratatui::style::Color;
    let styles = Styles::new(Theme { color: true }, palette);
    match styles.status(KeyStatus::Active).fg.expect("a colour") {
        Color::Indexed(n) => vt100::Color::Idx(n),
        Color::Green => vt100::Color::Idx(2),
        Color::LightGreen => vt100::Color::Idx(10),
        other => panic!("a colour this test knows: {other:?}"),
    }
}

/// The colour of the `●` of the row `name`.
pub(crate) fn status_fg(screen: &vt100::Screen, name: &str) -> vt100::Color {
    let row = row_of(screen, name);
    (0..screen.size().1)
        .filter_map(|col| screen.cell(row, col))
        .find(|cell| cell.contents() == "●")
        .unwrap_or_else(|| panic!("a ● on the row of {name:?}:\n{}", screen.contents()))
        .fgcolor()
}

// Issue 20: `ssh -o SetEnv=KEYDECK_THEME=light` picks the palette as the
// local `--theme` does (one value, any case); without it, dark; a value that
// is no theme is not taken: dark, and the status line says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keydeck_theme_from_set_env_picks_the_palette() {
    use keydeck::tui::theme::Palette;
    let backend = Backend::sqlite();
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), ADMIN, &key).await;
    server.create_key("Themed", &["sessions:read"]).await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();
    assert_ne!(active_fg(Palette::Light), active_fg(Palette::Dark));
    for (env, palette) in [
        (vec![("KEYDECK_THEME", "light")], Palette::Light),
        (
            vec![("KEYDECK_THEME", "High-Contrast")],
            Palette::HighContrast,
        ),
        (vec![], Palette::Dark),
        (vec![("KEYDECK_THEME", "dark")], Palette::Dark),
    ] {
        let mut ui = UiSession::open(&handle, 100, 30, &env).await;
        let screen = ui.wait_for("Themed").await;
        assert!(!screen.contains("is not a theme"), "{screen}");
        let terminal = ui.terminal();
        assert_eq!(
            status_fg(terminal.screen(), "Themed"),
            active_fg(palette),
            "{env:?}"
        );
        ui.send(b"q").await;
        assert_eq!(ui.wait_closed().await, Some(0));
    }
    let mut ui = UiSession::open(&handle, 100, 30, &[("KEYDECK_THEME", "lite")]).await;
    ui.wait_for("Themed").await;
    let screen = ui
        .wait_for("KEYDECK_THEME=\"lite\" is not a theme (dark, light, high-contrast): using dark.")
        .await;
    assert!(screen.contains("Themed"));
    assert_eq!(
        status_fg(ui.terminal().screen(), "Themed"),
        active_fg(Palette::Dark)
    );
    ui.send(b"q").await;
    assert_eq!(ui.wait_closed().await, Some(0));
    server.stop().await;
}
