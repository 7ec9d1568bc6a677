//! The `keydeck` binary: its path, and one clean environment for every run
//! of it. Self-contained (the `ui_pty` bench includes it with `common/pty.rs`).

use std::process::{Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_keydeck");

/// Variables of the environment `cargo test` runs in that must not reach the
/// binary: they could choose its service, token, profile, config file, data
/// dir, database, key format, proxy trust, lockout, colours or log level.
/// Every other `KEYDECK_*` variable is removed too (see [`scrub`]), so a new
/// setting cannot leak in from a developer's shell.
/// A test that wants one sets it after the scrub.
pub const SCRUBBED: &[&str] = &[
    "KEYDECK_URL",
    "KEYDECK_TOKEN",
    "KEYDECK_PROFILE",
    "KEYDECK_CONFIG",
    "KEYDECK_DATA_DIR",
    "KEYDECK_DATABASE_URL",
    "KEYDECK_KEY_PREFIX",
    "KEYDECK_TRUSTED_PROXIES",
    "KEYDECK_MAX_FAILED_AUTH",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "NO_COLOR",
    "RUST_LOG",
];

/// What a child must not inherit: [`SCRUBBED`] and every `KEYDECK_*`
/// variable of this process's environment.
pub fn scrubbed() -> Vec<std::ffi::OsString> {
    let own = std::env::vars_os()
        .map(|(var, _)| var)
        .filter(|var| var.to_string_lossy().starts_with("KEYDECK_"));
    SCRUBBED.iter().map(Into::into).chain(own).collect()
}

/// Removes [`scrubbed`] from `cmd`'s environment.
pub fn scrub(cmd: &mut Command) -> &mut Command {
    for var in scrubbed() {
        cmd.env_remove(var);
    }
    cmd
}

/// `keydeck` with none of [`SCRUBBED`] and no standard input.
pub fn keydeck() -> Command {
    let mut cmd = Command::new(BIN);
    scrub(&mut cmd).stdin(Stdio::null());
    cmd
}
