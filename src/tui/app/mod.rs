//! The one owner of the UI's state (ratatui's async guidelines): [`App`]
//! holds it (state.rs); `update` is where actions come in (update.rs);
//! `settle` where answers to requests land (settle.rs); the changes to keys
//! (changes.rs) and the table's rows (rows.rs, over tabs.rs) are the steps
//! they take.
//! Popups never reach in here: they return an intent that `update` carries out.

mod changes;
mod held;
mod rows;
mod settle;
mod state;
mod tabs;
mod update;
mod usage;
mod window;

pub use held::DEFAULT_CAPACITY;
pub use state::{App, Banner, CHROME_ROWS, PAGE_SIZE};
pub use tabs::{SortBy, Tab};
