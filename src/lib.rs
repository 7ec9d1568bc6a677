//! keydeck: manage an organisation's API keys from the terminal, and serve them.

pub mod accounts;
pub mod api;
pub mod audit_action;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod fs;
pub mod interned;
pub mod key;
#[cfg(test)]
mod layers;
pub mod present;
pub mod run;
pub mod service;
pub mod ssh;
pub mod store;
pub mod tui;

/// Any error, boxed: what the binary's commands and the UI return.
pub type AnyError = Box<dyn std::error::Error + Send + Sync>;
