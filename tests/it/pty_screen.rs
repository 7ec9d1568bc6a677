//! The built binary in a real pseudo-terminal, about the screen itself:
//! nothing is acted on while "Terminal too small" hides it, frames are
//! wrapped in synchronized output, and quitting after a resize leaves the
//! shell's screen as it was.

use crate::common;
use crate::pty::{create_key, embedded_url};

use std::time::Duration;

use common::pty::Session;
use common::util::admin_token;

/// The key as the service has it now.
async fn key_now(base: &str, token: &str, id: &str) -> serde_json::Value {
    let r = reqwest::Client::new()
        .get(format!("{base}/v1/api-keys/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yes_while_the_terminal_is_too_small_revokes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("data");
    let (h, d) = (home.path().display().to_string(), dir.display().to_string());
    let mut ui = Session::start(&["--data-dir", &d], &[("HOME", h.as_str())], 100, 30);
    ui.wait_for("No API keys yet");
    let (base, token) = (embedded_url(&dir), admin_token(&dir));
    let created = create_key(&base, &token, "Kept while unseen").await;
    let id = created["api_key"]["id"].as_str().unwrap();
    ui.send("r");
    ui.wait_for("Kept while unseen");

    ui.send("d");
    ui.wait_for("Revoke API key");
    ui.resize(30, 8);
    ui.wait_for("too small");
    ui.send("y");
    let screen = ui.wait_for("Key ignored");
    assert!(!screen.contains("Revoke"), "{screen}");
    ui.resize(100, 30);
    // The dialog is still open, unanswered.
    ui.wait_for("Revoke API key");
    assert_eq!(key_now(&base, &token, id).await["status"], "active");

    // And still nothing after a while (a revoke sent would have landed).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(key_now(&base, &token, id).await["status"], "active");
    ui.send("\x1b");
    ui.wait_gone("Revoke API key");
    ui.send("q");
    assert_eq!(ui.wait_exit(Duration::from_secs(10)).0, 0);
}

/// A shell screen with a marker on it, then keydeck started from it (the
/// shell execs keydeck, so nothing else writes after the marker).
fn from_a_shell(home: &std::path::Path) -> Session {
    let dir = home.join("data").display().to_string();
    let h = home.display().to_string();
    let script = format!(
        "printf 'MARKER before keydeck\\n'; exec '{}' --data-dir '{dir}'",
        common::bin::BIN
    );
    Session::start_program("sh", &["-c", &script], &[("HOME", h.as_str())], 100, 30)
}

/// The screen's text, trailing blank lines and spaces dropped.
fn text(screen: &str) -> String {
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end().to_owned()
}

/// Waits until the UI has drawn for `rows` rows: its footer is on the last
/// one. (crossterm can hold back a key that arrives together with a resize
/// until the next key; waiting keeps the test about what is left on screen.)
fn laid_out_for(ui: &Session, rows: u16) {
    let deadline = std::time::Instant::now() + common::pty::TIMEOUT;
    loop {
        let screen = ui.contents();
        let last = screen.lines().nth(usize::from(rows) - 1).unwrap_or("");
        if last.contains("q quit") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not drawn for {rows} rows:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quitting_after_resizes_leaves_the_shell_screen_as_it_was() {
    for sizes in [
        &[(80, 24)][..],
        &[(120, 40), (60, 15)],
        &[(30, 8), (100, 30)],
    ] {
        let home = tempfile::tempdir().unwrap();
        let mut ui = from_a_shell(home.path());
        ui.wait_for("No API keys yet");
        for &(w, h) in sizes {
            ui.resize(w, h);
            if w < 40 || h < 8 {
                ui.wait_for("too small");
            } else {
                laid_out_for(&ui, h);
            }
        }
        ui.send("q");
        assert_eq!(ui.wait_exit(Duration::from_secs(10)).0, 0, "{sizes:?}");
        ui.assert_terminal_restored();
        // Wait for the reader to see the last bytes, then the screen.
        std::thread::sleep(Duration::from_millis(200));
        // The alternate screen was blanked after the last frame, before it was left.
        let out = ui.output();
        let left = out.rfind("\x1b[?1049l").unwrap();
        let last_frame = out.rfind("\x1b[?2026l").unwrap();
        assert!(out[last_frame..left].contains("\x1b[2J"), "{sizes:?}");
        assert_eq!(
            text(&ui.contents()),
            "MARKER before keydeck",
            "after {sizes:?}; everything written:\n{:?}",
            ui.output()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_is_wrapped_in_synchronized_output() {
    let home = tempfile::tempdir().unwrap();
    let mut ui = from_a_shell(home.path());
    ui.wait_for("No API keys yet");
    ui.resize(80, 24);
    laid_out_for(&ui, 24);
    ui.send("?");
    ui.wait_for("Help");
    ui.send("q");
    ui.wait_gone("Help");
    ui.send("q");
    assert_eq!(ui.wait_exit(Duration::from_secs(10)).0, 0);
    let out = ui.output();
    let (begin, end) = ("\x1b[?2026h", "\x1b[?2026l");
    let frames = out.matches(begin).count();
    assert!(frames >= 4, "{frames} frames wrapped");
    assert_eq!(frames, out.matches(end).count());
    // Every frame's text is inside a begin … end pair, and the pairs do not nest.
    let mut rest = out.as_str();
    while let Some(at) = rest.find(begin) {
        let after = &rest[at + begin.len()..];
        let close = after.find(end).expect("a begun frame ends");
        assert!(!after[..close].contains(begin), "nested");
        rest = &after[close + end.len()..];
    }
    let first = out.find(begin).unwrap();
    let keys = out.find("Key Prefix").unwrap();
    assert!(first < keys, "the first frame is wrapped too");
    assert!(out.rfind(end).unwrap() < out.rfind("\x1b[?1049l").unwrap());
}

/// The same over SSH: a shell line, then `ssh -tt` (the real OpenSSH client)
/// into keydeck's SSH server, resized, q → the shell screen as it was.
#[test]
#[cfg_attr(
    not(keydeck_openssh),
    ignore = "needs the OpenSSH client (apt-get install openssh-client)"
)]
fn over_ssh_quitting_after_a_resize_leaves_the_shell_screen_as_it_was() {
    use crate::ssh_openssh::{keygen, options};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let backend = common::Backend::sqlite();
    let server = runtime.block_on(common::ssh::start(&backend, |_| {}));
    let port = common::ssh::addr(&server).port();
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id_ed25519");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    runtime.block_on(async {
        keydeck::accounts::ssh_keys::add_ssh_key(
            server.running.state.store.as_ref(),
            "admin@localhost",
            &public,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        server.create_key("Over SSH", &["sessions:read"]).await;
    });
    let quoted: Vec<String> = options(port, &key)
        .into_iter()
        .map(|a| format!("'{a}'"))
        .collect();
    let script = format!(
        "printf 'MARKER before keydeck\\n'; exec ssh {} -tt anyone@127.0.0.1",
        quoted.join(" ")
    );
    let mut ui = Session::start_program("sh", &["-c", &script], &[], 100, 30);
    ui.wait_for("Over SSH");
    ui.resize(80, 24);
    laid_out_for(&ui, 24);
    ui.send("q");
    assert_eq!(ui.wait_exit(common::pty::TIMEOUT).0, 0, "{}", ui.output());
    std::thread::sleep(Duration::from_millis(200));
    let out = ui.output();
    assert!(out.contains("\x1b[?2026h") && out.contains("\x1b[?2026l"));
    assert_eq!(
        text(&ui.contents()),
        "MARKER before keydeck",
        "everything written:\n{out:?}"
    );
    runtime.block_on(server.stop());
}
