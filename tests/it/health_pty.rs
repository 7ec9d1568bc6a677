//! Choosing a palette as an admin does, on the built binary in a real
//! pseudo-terminal: `theme = "…"` in the config file, `--theme` over it, and
//! `NO_COLOR` over both — read from the colour codes the UI writes.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::pty::Session;

/// The foreground the footer's key hints get in each palette, as written to
/// the terminal (with the background after it): dark cyan, a 256-colour
/// blue, bright cyan.
const DARK: &str = "\x1b[38;5;6;";
const LIGHT: &str = "\x1b[38;5;25;";
const HIGH_CONTRAST: &str = "\x1b[38;5;14;";

/// Everything the UI wrote until its empty table was on screen, then quit.
fn output(config: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let home = tempfile::tempdir().unwrap();
    let config_path = home.path().join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    // The file may hold tokens: keydeck reads it only when private.
    std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let data_dir = home.path().join("data").display().to_string();
    let home_dir = home.path().display().to_string();
    let config_path = config_path.display().to_string();
    let mut all_args = vec!["--data-dir", data_dir.as_str()];
    all_args.extend_from_slice(args);
    let mut all_env = vec![
        ("HOME", home_dir.as_str()),
        ("KEYDECK_CONFIG", config_path.as_str()),
    ];
    all_env.extend_from_slice(env);
    let mut ui = Session::start(&all_args, &all_env, 100, 30);
    ui.wait_for("No API keys yet");
    ui.send("q");
    assert_eq!(ui.wait_exit(Duration::from_secs(10)).0, 0);
    ui.output()
}

#[test]
fn the_config_file_picks_the_palette_the_flag_overrides_it_and_no_color_wins() {
    let dark = output("", &[], &[]);
    assert!(
        dark.contains(DARK) && !dark.contains(LIGHT),
        "dark by default"
    );

    let light = output("theme = \"light\"\n", &[], &[]);
    assert!(
        light.contains(LIGHT) && !light.contains(DARK),
        "from the file"
    );

    let flag = output("theme = \"light\"\n", &["--theme", "high-contrast"], &[]);
    assert!(
        flag.contains(HIGH_CONTRAST) && !flag.contains(LIGHT),
        "--theme wins over the file"
    );

    let plain = output(
        "theme = \"light\"\n",
        &["--theme", "light"],
        &[("NO_COLOR", "1")],
    );
    // (The screen was drawn: `output` waited for the empty table's words.)
    assert!(!plain.contains("\x1b[38;5;"), "NO_COLOR wins over both");
}
