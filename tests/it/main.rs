//! The integration tests, one test binary: each module was once a test file of
//! its own (and its own binary, linking all of keydeck, sqlx and russh again).
//! `cargo test` runs them all; `cargo test --test it MODULE::` runs one module.
//!
//! Adding a test file: put it in `tests/it/`, add `mod NAME;` below (it uses
//! the helpers through `use crate::common;`), and its insta snapshots are
//! `tests/it/snapshots/it__NAME__*.snap`.

// First, so that `on_both_backends!` is in scope in every module after it.
#[macro_use]
mod common;

mod api;
mod audit_json;
mod burst;
mod bytestream;
mod cli;
mod cli_health;
mod cli_reach;
mod explain;
mod gateway;
mod hardening;
mod health_pty;
mod health_tui;
mod keycache;
mod leaks;
mod lifecycle;
mod list_stream;
mod load;
mod marks;
mod negative;
mod no_secret;
mod no_secret_marks;
mod openapi;
mod outage;
mod policy_api;
mod policy_cli;
mod policy_screen;
mod policy_seams;
mod policy_tui;
mod present;
mod process;
mod proptest_api;
mod proptest_parsers;
mod pty;
mod pty_screen;
mod readme;
mod refresh;
mod rotation;
mod scan;
mod security_auth;
mod seed;
mod slow_query;
mod spoofing;
mod ssh;
mod ssh_draw;
mod ssh_frontdoor;
mod ssh_internal;
mod ssh_openssh;
mod ssh_seams;
mod time_words;
mod tls_message;
mod transport;
mod tui;
mod tui_80x24;
mod tui_finish;
mod tui_flows;
mod tui_palette;
mod tui_seams;
mod tui_webhooks;
mod ui_window;
mod usage;
mod webhooks;
mod window;
mod window_faces;
