//! The built binary in a real pseudo-terminal, as an admin runs it: start-up on
//! the embedded service, refresh, quit, signals, a service outage, resizes.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::bin::keydeck;
use common::process::{start_http, Reaped};
use common::pty::{Session, TIMEOUT};
use common::util::{admin_token, free_port};
use serde_json::{json, Value};

/// The embedded service's URL, from the UI's log file.
pub(crate) fn embedded_url(data_dir: &Path) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let log = std::fs::read_to_string(data_dir.join("keydeck.log")).unwrap_or_default();
        if let Some(rest) = log.split("url=http://").nth(1) {
            let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            return format!("http://{addr}");
        }
        assert!(
            Instant::now() < deadline,
            "no embedded service URL in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub(crate) async fn create_key(base: &str, token: &str, name: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({"name": name, "scopes": ["sessions:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// The UI at 100×30 with a home of its own and `--data-dir`, plus `env`.
fn ui_in(home: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Session {
    let home = home.display().to_string();
    let data_dir = data_dir.display().to_string();
    let mut all = vec![("HOME", home.as_str())];
    all.extend_from_slice(env);
    Session::start(&["--data-dir", &data_dir], &all, 100, 30)
}

/// A fresh home and data dir, and the UI on them (so on an embedded service).
fn fresh_ui(env: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, Session) {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("data");
    let ui = ui_in(home.path(), &dir, env);
    (home, dir, ui)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_on_a_fresh_data_dir_refreshes_and_quits_cleanly() {
    let (_home, dir, mut ui) = fresh_ui(&[]);
    ui.wait_for("Key Prefix");
    ui.wait_for("No API keys yet");

    let base = embedded_url(&dir);
    create_key(&base, &admin_token(&dir), "Made through the API").await;
    ui.send("r");
    let screen = ui.wait_for("Made through the API");
    assert!(screen.contains("● Active"), "{screen}");
    ui.send("q");
    let (code, _) = ui.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0);
    ui.assert_terminal_restored();
    // Logs went to the file, not the screen.
    assert!(!ui.output().contains("embedded key service started"));
    assert!(std::fs::read_to_string(dir.join("keydeck.log"))
        .unwrap()
        .contains("embedded key service started"));
}

async fn ends_on_signal(signal: &str) {
    let (_home, dir, mut ui) = fresh_ui(&[]);
    ui.wait_for("No API keys yet");
    let base = embedded_url(&dir);
    let created = create_key(&base, &admin_token(&dir), "Kept across the signal").await;
    ui.send("r");
    ui.wait_for("Kept across the signal");
    ui.signal(signal);
    let (_, took) = ui.wait_exit(Duration::from_secs(5));
    eprintln!("{signal}: ended {took:?} after the signal");
    assert!(
        took < Duration::from_secs(1),
        "{signal}: ended after {took:?}"
    );
    ui.assert_terminal_restored();

    // The embedded service's SQLite file is intact, with the key in it.
    let backend_url = format!("sqlite://{}", dir.join("keydeck.db").display());
    let store = keydeck::store::open(&backend_url).await.unwrap();
    let org = store.org_by_name("default").await.unwrap().unwrap();
    let id = created["api_key"]["id"].as_str().unwrap();
    assert!(store.get_key(&org.id, id).await.unwrap().is_some());
    store.close().await;
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&backend_url).await.unwrap();
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_ends_it_within_a_second_with_the_terminal_restored() {
    ends_on_signal("HUP").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_it_within_a_second_with_the_terminal_restored() {
    ends_on_signal("TERM").await;
}

/// `keydeck serve` on a fixed port, so that it can come back where it was;
/// killed when dropped, even by a failing test (an orphan would keep the test
/// runner's output pipe open).
fn serve_on(port: u16, dir: &Path, log: PathBuf) -> Reaped {
    let mut cmd = keydeck();
    cmd.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(dir)
    .stdout(std::process::Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    start_http(&mut cmd, &log).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_outage_shows_a_banner_and_recovers_by_itself() {
    let home = tempfile::tempdir().unwrap();
    let service_dir = home.path().join("service");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let service = serve_on(port, &service_dir, home.path().join("serve-1.log"));
    let t = admin_token(&service_dir);
    create_key(&base, &t, "Before the outage").await;

    let remote = [
        ("KEYDECK_URL", base.as_str()),
        ("KEYDECK_TOKEN", t.as_str()),
    ];
    let mut ui = ui_in(home.path(), &home.path().join("ui"), &remote);
    ui.wait_for("Before the outage");

    drop(service);
    ui.send("r");
    ui.wait_for("Cannot reach the key service");
    // Still responsive: help opens and closes, the table is still there.
    ui.send("?");
    ui.wait_for("Help");
    ui.send("\x1b");
    let screen = ui.wait_gone("this help");
    assert!(screen.contains("Before the outage"));

    let service = serve_on(port, &service_dir, home.path().join("serve-2.log"));
    create_key(&base, &t, "After the outage").await;
    // No key pressed: the UI retries by itself.
    ui.wait_for("After the outage");
    ui.wait_gone("Cannot reach");
    ui.send("q");
    assert_eq!(ui.wait_exit(Duration::from_secs(10)).0, 0);
    drop(service);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resizing_to_tiny_and_back_never_panics() {
    let (_home, dir, mut ui) = fresh_ui(&[]);
    ui.wait_for("No API keys yet");
    create_key(&embedded_url(&dir), &admin_token(&dir), "Resized").await;
    ui.send("r");
    ui.wait_for("Resized");
    ui.resize(40, 10);
    // At 40 columns the table keeps Name, Status and Health (Health sits
    // beyond column 40 at 100 columns, so seeing it proves the redraw).
    let screen = ui.wait_for("Health");
    assert!(
        screen.contains("Resized") && screen.contains("Status") && !screen.contains("eg_live_"),
        "{screen}"
    );
    ui.resize(20, 5);
    ui.wait_for("too small");
    ui.resize(100, 30);
    ui.wait_for(" eg_live_ ");
    assert!(ui.child.try_wait().unwrap().is_none(), "still running");
    ui.send("q");
    assert_eq!(ui.wait_exit(Duration::from_secs(10)).0, 0);
    ui.assert_terminal_restored();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_sends_osc52_and_the_secret_never_appears_again() {
    let (_home, dir, mut ui) = fresh_ui(&[("RUST_LOG", "trace")]);
    ui.wait_for("No API keys yet");
    ui.send("n");
    ui.wait_for("New API key");
    ui.send("Copied key\t\t\t ");
    ui.wait_for("[x] Sessions:R");
    ui.send("\r");
    let screen = ui.wait_for("Copy your API key now — it will not be shown again");
    let secret = common::ui::secret_on(&screen);

    ui.send("c");
    ui.wait_for("Sent to your terminal's clipboard (OSC 52)");
    let out = ui.output();
    let start = out.find("\x1b]52;c;").expect("an OSC 52 sequence") + 7;
    let end = start + out[start..].find('\x07').expect("OSC 52 terminator");
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &out[start..end])
            .unwrap();
    assert_eq!(
        decoded,
        secret.as_bytes(),
        "the OSC 52 payload is exactly the secret"
    );

    let closed_at = ui.output.lock().unwrap().len();
    ui.send("\r");
    ui.wait_gone("Copy your API key now");
    // Redraw everything a few ways: refresh, help, details, a resize.
    ui.send("r?");
    ui.wait_for("Help");
    ui.send("\x1b");
    ui.wait_gone("this help");
    ui.send("\r");
    ui.wait_for("Key details");
    ui.send("\x1b");
    ui.wait_gone("Key details");
    ui.resize(80, 24);
    // The header as laid out for 80 columns: the UI has handled the resize.
    // (crossterm can hold back a key that arrives together with a resize
    // until the next key; waiting here keeps the test about our behaviour.)
    ui.wait_for(&format!("Name{}eg_live_", " ".repeat(21)));
    ui.send("q");
    assert_eq!(ui.wait_exit(Duration::from_secs(10)).0, 0);
    let after = ui.output.lock().unwrap()[closed_at..].to_vec();
    let random_part = &secret[8..40];
    assert!(
        !String::from_utf8_lossy(&after).contains(random_part),
        "the secret was written again after the modal closed"
    );

    // Nor is it in the log (at trace level) or anywhere in the data dir.
    let log = std::fs::read_to_string(dir.join("keydeck.log")).unwrap();
    assert!(log.contains("key created"), "the log is the real one");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(32).any(|w| w == random_part.as_bytes()),
            "the secret is in {}",
            path.display()
        );
    }
}
