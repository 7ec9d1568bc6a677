//! The policy screen's seams, against the real service: closed while its
//! save is on its way (slowed by the service's store-guard delay), the
//! status line still says how the save went — saved, refused and why,
//! failed — and quitting waits for the save, a failed one stopping the quit;
//! locally (`TestBackend`, both backends) and over SSH (the real runner).
//! Every key the screen names is the one the keymap binds to what it says.
//! And on two PostgreSQL replicas, a policy saved from a UI on A is B's at
//! once: `keydeck policy show` on B, and B's badges (UI and `keys list`).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use keydeck::client::Client;
use keydeck::clock::{Clock, ManualClock};
use keydeck::key::Secret;
use keydeck::store::Role;
use keydeck::tui::action::Action;
use keydeck::tui::keymap::{self, Command, Context};
use keydeck::tui::popup::Popup;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use serde_json::{json, Value};

use crate::common::ui::{past_gutter, start_time, World};
use crate::common::{Backend, TestServer};

on_both_backends!(
    closed_while_saving_the_status_line_says_it_was_saved,
    closed_while_saving_the_status_line_says_why_it_was_refused_or_failed,
    quitting_while_saving_waits_and_a_failed_save_stops_the_quit,
);

const NO_COLOR: Theme = Theme { color: false };

/// Each store call waits this long: a save takes a few of them, so it is
/// on its way long enough to close the screen (or quit) meanwhile.
const SLOW: StdDuration = StdDuration::from_millis(300);

/// Longer than the store guard's deadline (1.5 s): the save fails (503).
const STUCK: StdDuration = StdDuration::from_secs(5);

async fn world(backend: Backend) -> World {
    let clock = Arc::new(ManualClock::new(start_time()));
    let server = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    World {
        server,
        clock,
        backend,
    }
}

async fn policy(server: &TestServer) -> Value {
    server.get_json("/v1/policy", &server.admin_token).await
}

/// A key press the app takes at once; its requests are not sent yet.
fn key(ui: &mut Harness, code: KeyCode) {
    ui.app
        .update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn ctrl_c(ui: &mut Harness) {
    ui.app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
}

/// The screen opened, Rotation due after set to `days`, Enter: the
/// question whose yes saves it is up.
async fn ask_to_save_rotation(ui: &mut Harness, days: &str) {
    ui.press(KeyCode::Char('P')).await;
    ui.press(KeyCode::Char('j')).await; // Rotation due after
    for _ in 0..4 {
        ui.press(KeyCode::Backspace).await;
    }
    ui.type_text(days).await;
    ui.press(KeyCode::Enter).await;
    assert!(
        ui.screen().contains("Change the policy?"),
        "{}",
        ui.screen()
    );
}

/// Yes to the question: the save is sent and on its way, unanswered.
fn say_yes(ui: &mut Harness) {
    key(ui, KeyCode::Char('y'));
    ui.send_requests();
    assert!(ui.app.policy_saving().is_some(), "the save is on its way");
}

/// The screen line of the row for `name`.
fn row(screen: &str, name: &str) -> String {
    screen
        .lines()
        .find(|l| past_gutter(l).trim_start().starts_with(name))
        .unwrap_or_else(|| panic!("no row {name}:\n{screen}"))
        .to_owned()
}

/// The key a hint names, as the terminal would send it.
fn key_named(name: &str) -> KeyEvent {
    let code = match name {
        "Space" => KeyCode::Char(' '),
        "Enter" => KeyCode::Enter,
        "Esc" => KeyCode::Esc,
        "Backspace" => KeyCode::Backspace,
        one if one.chars().count() == 1 => KeyCode::Char(one.chars().next().unwrap()),
        other => panic!("a key name the test does not know: {other}"),
    };
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// The word just before `words` in `text` (the key a hint names).
fn word_before<'a>(text: &'a str, words: &str) -> &'a str {
    let at = text
        .find(words)
        .unwrap_or_else(|| panic!("{words:?} in:\n{text}"));
    text[..at]
        .split(|c: char| c.is_whitespace() || c == '(')
        .next_back()
        .unwrap()
}

/// Closed while the save is on its way: the table says it is being saved,
/// opened again the screen shows what was sent and waits, and once the
/// answer is in, the status line says it was saved and the badges follow.
async fn closed_while_saving_the_status_line_says_it_was_saved(backend: Backend) {
    let w = world(backend).await;
    w.create(json!({"name": "Nightly export", "scopes": ["sessions:read"]}))
        .await;
    w.clock.set(start_time() + Duration::days(40));
    let mut ui = w.ui(NO_COLOR, 120, 32).await;
    assert!(!row(&ui.screen(), "Nightly export").contains("rotate"));
    ask_to_save_rotation(&mut ui, "30").await;

    w.server.running.store_guard.set_delay(SLOW);
    say_yes(&mut ui);
    let screen = ui.screen();
    assert!(screen.contains("Saving…"), "{screen}");
    let close = word_before(&screen, " closes the screen");
    assert_eq!(
        keymap::command(Context::Policy, &key_named(close)),
        Some(Command::Cancel),
        "the key the screen names closes it:\n{screen}"
    );
    key(&mut ui, KeyCode::Esc);
    assert!(ui.app.popups().is_empty(), "Esc closes it while saving");
    let screen = ui.screen();
    assert!(
        screen.contains("Saving the policy: this line will say whether it was saved."),
        "{screen}"
    );

    // Opened again while the answer is still out: what was sent, waiting.
    key(&mut ui, KeyCode::Char('P'));
    ui.send_requests();
    let screen = ui.screen();
    assert!(screen.contains("Saving…"), "{screen}");
    let rotation = screen
        .lines()
        .find(|l| l.contains("Rotation due after"))
        .unwrap();
    assert!(rotation.contains("30 days"), "{screen}");
    key(&mut ui, KeyCode::Char('5'));
    assert!(
        ui.screen().contains("30 days"),
        "no edit while saving:\n{}",
        ui.screen()
    );
    key(&mut ui, KeyCode::Esc);
    assert!(ui.app.popups().is_empty());
    assert!(ui.app.policy_saving().is_some(), "still on its way");

    ui.settle().await;
    w.server.running.store_guard.set_delay(StdDuration::ZERO);
    let screen = ui.screen();
    assert!(
        screen.contains("Policy saved: badges and new keys follow it."),
        "{screen}"
    );
    assert!(
        row(&screen, "Nightly export").contains("rotate"),
        "{screen}"
    );
    assert!(screen.contains("1 rotation due"), "{screen}");
    assert_eq!(policy(&w.server).await["rotate_after_days"], 30);
}

/// Closed while the save is on its way, and the save does not happen —
/// refused (a member: 403) or failed (the database slower than the store
/// guard's deadline: 503): the screen opens again with what was sent and
/// why, the status line says it was not saved, and nothing changed.
async fn closed_while_saving_the_status_line_says_why_it_was_refused_or_failed(backend: Backend) {
    let w = world(backend).await;
    let before = policy(&w.server).await;

    // Refused: the service says why.
    let store = w.backend.store().await;
    let (_, member) = keydeck::accounts::add_user(
        store.as_ref(),
        "default",
        "member@default.test",
        Role::Member,
        w.clock.now(),
    )
    .await
    .unwrap();
    let client = Client::new(&w.server.base, member).unwrap();
    let clock: Arc<dyn Clock> = w.clock.clone();
    let mut ui = Harness::start(client, clock, NO_COLOR, 120, 32).await;
    ask_to_save_rotation(&mut ui, "30").await;
    say_yes(&mut ui);
    key(&mut ui, KeyCode::Esc);
    assert!(ui.app.popups().is_empty());
    ui.settle().await;
    let screen = ui.screen();
    let refused = "Only admins of the organisation can manage API keys (403).";
    assert!(screen.contains(refused), "{screen}");
    assert_eq!(editor_error(&ui).as_deref(), Some(refused));
    assert!(
        screen.contains("Policy not saved: see why above."),
        "{screen}"
    );
    assert!(!screen.contains("Press r"), "{screen}");
    let rotation = screen
        .lines()
        .find(|l| l.contains("Rotation due after"))
        .unwrap();
    assert!(rotation.contains("30 days"), "what was sent:\n{screen}");
    assert_eq!(policy(&w.server).await, before);

    // Failed: the database does not answer within the deadline.
    let mut ui = w.ui(NO_COLOR, 120, 32).await;
    ask_to_save_rotation(&mut ui, "30").await;
    w.server.running.store_guard.set_delay(STUCK);
    say_yes(&mut ui);
    key(&mut ui, KeyCode::Esc);
    ui.settle().await;
    w.server.running.store_guard.set_delay(StdDuration::ZERO);
    let screen = ui.screen();
    assert!(
        screen.contains("Policy not saved: see why above."),
        "{screen}"
    );
    assert!(screen.contains("The key service failed:"), "{screen}");
    let error = editor_error(&ui).expect("why, on the screen");
    // The key it names opens the policy screen.
    let open = word_before(&error, " shows the policy in force");
    assert_eq!(
        keymap::command(Context::Table, &key_named(open)),
        Some(Command::Policy),
        "{error}"
    );
    assert_eq!(policy(&w.server).await, before, "nothing changed");
    // Esc leaves it; nothing is on its way any more.
    ui.press(KeyCode::Esc).await;
    assert!(ui.app.popups().is_empty() && ui.app.policy_saving().is_none());
}

/// What the policy screen on top says is wrong with the whole.
fn editor_error(ui: &Harness) -> Option<String> {
    match ui.app.popups().last() {
        Some(Popup::Policy(editor)) => editor.error.clone(),
        _ => None,
    }
}

/// `q` (or Ctrl-C) while the save is on its way: keydeck says it is saving
/// and quits once it is saved; a save that fails stops the quit and says
/// why, so the admin is not left not knowing.
async fn quitting_while_saving_waits_and_a_failed_save_stops_the_quit(backend: Backend) {
    let w = world(backend).await;

    // Saved, then quit.
    let mut ui = w.ui(NO_COLOR, 120, 32).await;
    ask_to_save_rotation(&mut ui, "30").await;
    w.server.running.store_guard.set_delay(SLOW);
    say_yes(&mut ui);
    key(&mut ui, KeyCode::Esc);
    key(&mut ui, KeyCode::Char('q'));
    assert!(
        !ui.app.should_quit() && ui.app.quit_pending(),
        "waits for the save"
    );
    let screen = ui.screen();
    assert!(
        screen.contains("Saving the policy: keydeck quits once it is saved (q again: quit now)."),
        "{screen}"
    );
    ui.settle().await;
    w.server.running.store_guard.set_delay(StdDuration::ZERO);
    assert!(ui.app.should_quit(), "quits once saved");
    assert_eq!(policy(&w.server).await["rotate_after_days"], 30);

    // Ctrl-C on the screen while saving, and the save fails: no quit, and
    // the screen and the status line say why.
    let mut ui = w.ui(NO_COLOR, 120, 32).await;
    ask_to_save_rotation(&mut ui, "60").await;
    w.server.running.store_guard.set_delay(STUCK);
    say_yes(&mut ui);
    ctrl_c(&mut ui);
    assert!(ui.app.quit_pending() && !ui.app.should_quit());
    ui.settle().await;
    w.server.running.store_guard.set_delay(StdDuration::ZERO);
    assert!(
        !ui.app.should_quit() && !ui.app.quit_pending(),
        "a failed save stops the quit"
    );
    let screen = ui.screen();
    assert!(screen.contains("Organisation policy"), "{screen}");
    assert!(screen.contains("The key service failed"), "{screen}");
    assert!(
        screen.contains("Not quitting: the policy was not saved"),
        "{screen}"
    );
    assert_eq!(policy(&w.server).await["rotate_after_days"], 30);
    // The screen still edits: Enter asks again.
    ui.press(KeyCode::Enter).await;
    assert!(ui
        .screen()
        .contains("Rotation due after: 30 days → 60 days"));

    // Closed, then q, and the save fails: no quit; the screen opens again
    // with why.
    w.server.running.store_guard.set_delay(STUCK);
    say_yes(&mut ui);
    key(&mut ui, KeyCode::Esc);
    key(&mut ui, KeyCode::Char('q'));
    assert!(ui.app.quit_pending());
    ui.settle().await;
    w.server.running.store_guard.set_delay(StdDuration::ZERO);
    assert!(!ui.app.should_quit() && !ui.app.quit_pending());
    let screen = ui.screen();
    assert!(
        screen.contains("Not quitting: the policy was not saved (see why above)."),
        "{screen}"
    );
    assert!(editor_error(&ui).is_some_and(|e| e.contains("The key service failed")));
    assert_eq!(policy(&w.server).await["rotate_after_days"], 30);
}

/// Every key the screen's hints name is bound, on this screen, to what the
/// hint says it does (the border's hints are the keymap's already).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screens_hints_name_the_keys_the_keymap_binds() {
    let w = world(Backend::sqlite()).await;
    let mut ui = w.ui(NO_COLOR, 120, 32).await;
    ui.press(KeyCode::Char('P')).await;
    let screen = ui.screen();
    let erase = word_before(&screen, " deletes;");
    assert_eq!(
        keymap::command(Context::Policy, &key_named(erase)),
        Some(Command::Erase),
        "{screen}"
    );
    let toggle = word_before(&screen, " toggles or cycles.");
    assert_eq!(
        keymap::command(Context::Policy, &key_named(toggle)),
        Some(Command::Tick),
        "{screen}"
    );
    assert_eq!(
        keymap::key_of(Context::Policy, Command::Tick).as_deref(),
        Some(toggle)
    );
    // The border: each "KEY label" part, the key doing what the label says.
    for (label, command) in [
        ("toggle", Command::Tick),
        ("save", Command::Submit),
        ("cancel", Command::Cancel),
    ] {
        let named = word_before(&screen, &format!(" {label} "));
        assert_eq!(
            keymap::command(Context::Policy, &key_named(named)),
            Some(command),
            "{label}:\n{screen}"
        );
    }
}

/// Two replicas on one PostgreSQL database: a policy saved from the policy
/// screen of a UI on replica A is in force on replica B at once —
/// `keydeck policy show` on B says it, B's `keys list` and a UI on B show
/// the key turned `rotate` (the rotation days lowered under its age).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(keydeck_pg),
    ignore = "set KEYDECK_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres to run"
)]
async fn a_policy_saved_on_replica_a_is_in_force_on_replica_b() {
    let backend = Backend::postgres().await.expect("postgres");
    let clock = Arc::new(ManualClock::new(start_time()));
    let a = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let b = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    a.create_key("Nightly export", &["sessions:read"]).await;
    clock.set(start_time() + Duration::days(40));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let harness = |server: &TestServer| {
        let client = Client::new(&server.base, Secret::new(server.admin_token.clone())).unwrap();
        Harness::start(client, dyn_clock.clone(), NO_COLOR, 120, 32)
    };
    let mut on_b = harness(&b).await;
    let screen = on_b.screen();
    assert!(
        !row(&screen, "Nightly export").contains("rotate"),
        "{screen}"
    );
    assert!(!screen.contains("rotation due"), "{screen}");

    // Saved on A.
    let mut on_a = harness(&a).await;
    ask_to_save_rotation(&mut on_a, "30").await;
    on_a.press(KeyCode::Char('y')).await;
    assert!(on_a.screen().contains("Policy saved"), "{}", on_a.screen());

    // B's CLI: the policy, and the key's badge.
    let cli = |args: &'static [&'static str]| {
        let user = crate::common::cli::User::new()
            .env("KEYDECK_URL", &b.base)
            .env("KEYDECK_TOKEN", &b.admin_token);
        tokio::task::spawn_blocking(move || user.run(args).ok().json())
    };
    let shown = cli(&["policy", "show", "--json"]).await.unwrap();
    assert_eq!(shown["rotate_after_days"], 30, "{shown}");
    let keys = cli(&["keys", "list", "--json"]).await.unwrap();
    let health = &keys[0]["health"];
    assert!(
        health.as_array().unwrap().contains(&json!("rotate")),
        "{keys}"
    );

    // B's UI: its next refresh sees the policy changed, and the badges follow.
    on_b.press(KeyCode::Char('r')).await;
    assert_eq!(on_b.app.policy.rotate_after_days, 30);
    let screen = on_b.screen();
    assert!(
        row(&screen, "Nightly export").contains("rotate"),
        "{screen}"
    );
    assert!(screen.contains("1 rotation due"), "{screen}");
    a.stop().await;
    b.stop().await;
    backend.cleanup().await;
}

// Over SSH (russh's client, the real runner on the session's PTY, 80×24):
// Esc while a slow save is on its way closes the screen, and the status
// line says the policy was saved; then `q` while another is on its way
// says so, and the session ends once it is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_ssh_closing_or_quitting_while_saving_still_ends_in_the_saved_policy() {
    use crate::common::ssh::{self, UiSession};
    let backend = Backend::sqlite();
    let server = TestServer::start_with_ssh(
        &backend,
        Arc::new(keydeck::clock::SystemClock),
        |_| {},
        Some(keydeck::ssh::SshConfig::new("127.0.0.1:0".parse().unwrap())),
    )
    .await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), "admin@localhost", &key).await;
    let handle = ssh::connect(ssh::addr(&server), &key)
        .await
        .expect("the key is accepted");
    let mut ui = UiSession::open(&handle, 80, 24, &[]).await;
    ui.wait_for("0 keys").await;
    ui.send(b"P").await;
    ui.wait_for("Organisation policy").await;
    ui.send(b"j\x7f\x7f30").await;
    ui.wait_for("30█ days").await;
    ui.send(b"\r").await;
    ui.wait_for("Rotation due after: 90 days → 30 days").await;
    server
        .running
        .store_guard
        .set_delay(StdDuration::from_millis(700));
    ui.send(b"y").await;
    ui.wait_for("Saving…").await;
    ui.send(b"\x1b").await;
    ui.wait_gone("Organisation policy").await;
    ui.wait_for("Policy saved").await;
    assert_eq!(policy(&server).await["rotate_after_days"], 30);

    ui.send(b"P").await;
    ui.wait_for("Organisation policy").await;
    ui.send(b"j\x7f\x7f45").await;
    ui.wait_for("45█ days").await;
    ui.send(b"\r").await;
    ui.wait_for("Rotation due after: 30 days → 45 days").await;
    ui.send(b"y").await;
    ui.wait_for("Saving…").await;
    ui.send(b"\x1b").await;
    ui.wait_gone("Organisation policy").await;
    ui.send(b"q").await;
    ui.wait_for("keydeck quits once it is saved").await;
    ui.wait_closed().await;
    server.running.store_guard.set_delay(StdDuration::ZERO);
    assert_eq!(policy(&server).await["rotate_after_days"], 45);
    server.stop().await;
}
