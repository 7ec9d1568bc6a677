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
