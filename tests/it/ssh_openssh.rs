//! keydeck over SSH with the real OpenSSH client: `ssh -tt` in a PTY opens the
//! UI, `ssh HOST keys …` runs commands, a key nobody added is refused, and
//! `-o SetEnv=KEYDECK_THEME=…` picks the palette.
//! Needs `ssh` and `ssh-keygen` (build.rs: cfg `keydeck_openssh`; `.ci/run`
//! installs openssh-client and requires it).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::pty::{Session, TIMEOUT};
use common::{ssh, Backend};

/// A new Ed25519 key pair made by `ssh-keygen` in `dir`; the private key's path.
pub(crate) fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e@keydeck", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs");
    assert!(made.success());
    path
}

/// OpenSSH's options for the test: this key only, no config, no agent, no known_hosts.
pub(crate) fn options(port: u16, key: &Path) -> Vec<String> {
    let mut args: Vec<String> = ["-F", "/dev/null", "-p", &port.to_string(), "-i"]
        .map(str::to_owned)
        .into();
    args.push(key.display().to_string());
    for option in [
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "LogLevel=ERROR",
    ] {
        args.push("-o".into());
        args.push(option.into());
    }
    args
}

fn run_ssh(port: u16, key: &Path, command: &[&str]) -> Output {
    Command::new("ssh")
        .args(options(port, key))
        .arg("anyone@127.0.0.1")
        .args(command)
        .output()
        .expect("ssh runs")
}

#[test]
#[cfg_attr(
    not(keydeck_openssh),
    ignore = "needs the OpenSSH client (apt-get install openssh-client)"
)]
fn openssh_opens_the_ui_runs_commands_and_refuses_unknown_keys() {
    // The service runs on its own runtime's threads while this thread drives ssh.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let backend = Backend::sqlite();
    let server = runtime.block_on(ssh::start(&backend, |_| {}));
    let port = ssh::addr(&server).port();
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
        server.create_key("OpenSSH key", &["sessions:read"]).await;
    });

    // The UI in a real terminal, through ssh -tt; q ends it with status 0,
    // the terminal as it was.
    let mut args = options(port, &key);
    args.extend(["-tt".into(), "anyone@127.0.0.1".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut ui = Session::start_program("ssh", &args, &[], 100, 30);
    let screen = ui.wait_for("OpenSSH key");
    assert!(screen.contains("Status"), "{screen}");
    ui.send("q");
    let (code, _) = ui.wait_exit(TIMEOUT);
    assert_eq!(code, 0, "{}", ui.output());
    ui.assert_terminal_restored();

    // Commands: the JSON array and 0; an unknown key id: 1.
    let listed = run_ssh(port, &key, &["keys", "list", "--json"]);
    assert_eq!(listed.status.code(), Some(0), "{listed:?}");
    let keys: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["name"], "OpenSSH key");
    let unknown = run_ssh(port, &key, &["keys", "show", "unknown"]);
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    assert!(unknown.stdout.is_empty());

    // A key nobody added: refused at authentication, ssh exits 255, nothing printed.
    let stranger = keygen(dir.path(), "stranger");
    let refused = run_ssh(port, &stranger, &["keys", "list", "--json"]);
    assert_eq!(refused.status.code(), Some(255), "{refused:?}");
    assert!(refused.stdout.is_empty(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Permission denied (publickey)"),
        "{refused:?}"
    );
    runtime.block_on(server.stop());
}

// Issue 20: with the real OpenSSH client, `ssh -o SetEnv=KEYDECK_THEME=NAME
// -tt` picks the palette: the `●` of an active key has that palette's
// colour, read from the bytes through vt100; without SetEnv, dark.
#[test]
#[cfg_attr(
    not(keydeck_openssh),
    ignore = "needs the OpenSSH client (apt-get install openssh-client)"
)]
fn openssh_set_env_keydeck_theme_picks_the_palette() {
    use crate::ssh::{active_fg, status_fg};
    use keydeck::tui::theme::Palette;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let backend = Backend::sqlite();
    let server = runtime.block_on(ssh::start(&backend, |_| {}));
    let port = ssh::addr(&server).port();
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
        server.create_key("Themed", &["sessions:read"]).await;
    });
    assert_ne!(active_fg(Palette::Light), active_fg(Palette::Dark));
    assert_ne!(active_fg(Palette::HighContrast), active_fg(Palette::Dark));

    for (set_env, palette) in [
        (Some("KEYDECK_THEME=light"), Palette::Light),
        (Some("KEYDECK_THEME=high-contrast"), Palette::HighContrast),
        (None, Palette::Dark),
    ] {
        let mut args = options(port, &key);
        if let Some(pair) = set_env {
            args.extend(["-o".into(), format!("SetEnv={pair}")]);
        }
        args.extend(["-tt".into(), "anyone@127.0.0.1".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut ui = Session::start_program("ssh", &args, &[], 100, 30);
        let screen = ui.wait_for("Themed");
        assert!(!screen.contains("is not a theme"), "{screen}");
        assert_eq!(
            status_fg(&ui.screen(), "Themed"),
            active_fg(palette),
            "{set_env:?}:\n{screen}"
        );
        ui.send("q");
        let (code, _) = ui.wait_exit(TIMEOUT);
        assert_eq!(code, 0, "{}", ui.output());
    }
    runtime.block_on(server.stop());
}
