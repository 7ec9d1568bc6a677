//! The state of the table's window over the service (issue 19), apart from
//! the steps that move it (window.rs), so that `App` can hold it without
//! importing those steps: the pages held, where they sit in the whole list,
//! the counts, and the generations that drop stale answers.

use std::collections::VecDeque;

use crate::api::KeyCounts;

/// How many keys the app holds at most unless told otherwise: above it, the
/// table is a window over the service.
pub const DEFAULT_CAPACITY: usize = 2_000;

/// One page held: its length and the positions before and after it (`None`:
/// nothing lies that way, the list's start or end).
#[derive(Debug, Clone)]
pub(super) struct PageMark {
    pub(super) len: usize,
    pub(super) prev: Option<String>,
    pub(super) next: Option<String>,
}

/// Where the rows held are in the whole list: `Start(n)`, the first row held
/// is row `n`; `End(n)`, the last row held is `n` rows before the last one
/// (after a jump to the end, before the start's distance is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Base {
    Start(usize),
    End(usize),
}

/// Where the selection goes when a new query's first page lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Land {
    /// On the same key if it is there, else where it was.
    Follow,
    /// On the same key if it is there, else on the first row.
    Top,
    First,
    Last,
}

/// Which counts a new query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recount {
    /// None: those held are the query's (a tab or sort change, a jump).
    No,
    /// The filter's (a new filter): the summary line's stay.
    Filtered,
    /// The filter's and all keys' (a refresh, entering the window).
    All,
}

/// Where a new query's first page starts.
#[derive(Debug, Clone)]
pub(super) enum ReadFrom {
    Start,
    End,
    /// After this position, known to be row `n - 1`.
    After(String, usize),
}

/// The window's state, besides the rows themselves (`App::keys`).
#[derive(Debug, Clone)]
pub(in crate::tui) struct Window {
    pub(super) pages: VecDeque<PageMark>,
    pub(super) base: Base,
    /// Rows the query lists (the tab under the filter), from the counts.
    pub(super) total: usize,
    /// The counts of the keys the filter lets through (the tabs).
    pub(super) counts: KeyCounts,
    /// The counts of all keys (the summary line, the title's `of 12`).
    pub(super) all: KeyCounts,
    pub(super) generation: u64,
    /// The counts asked for last (a jump to either end asks for none, and
    /// keeps the counts on their way).
    pub(super) counts_generation: u64,
    /// The counts of all keys asked for last (a filter keystroke asks for
    /// the filter's alone: those on their way stay wanted).
    pub(super) all_generation: u64,
    /// The filter (`q`) whose counts `counts` holds or are on their way
    /// (`None`: not known). Counts do not depend on the tab or the sort: a
    /// tab or sort change with the same filter asks for none.
    pub(super) counts_for: Option<Option<String>>,
    /// A page ahead / behind is on its way.
    pub(super) ahead: bool,
    pub(super) behind: bool,
    /// A new query's first page is on its way: it replaces the rows.
    pub(super) resetting: bool,
    pub(super) land: Land,
    /// Where the new query's first page starts, if known.
    pub(super) reset_base: Base,
    /// The service's change cursor as of the last read of the window.
    pub(super) sync_cursor: Option<String>,
    /// When the window and the counts were last read: an automatic refresh
    /// reads them again after [`REREAD_EVERY`] even if no key was written
    /// (keys expire, badges change with time).
    pub(super) read_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Window {
    pub(super) fn new() -> Self {
        Self {
            pages: VecDeque::new(),
            base: Base::Start(0),
            total: 0,
            counts: KeyCounts::default(),
            all: KeyCounts::default(),
            generation: 0,
            counts_generation: 0,
            all_generation: 0,
            counts_for: None,
            ahead: false,
            behind: false,
            resetting: false,
            land: Land::Follow,
            reset_base: Base::Start(0),
            sync_cursor: None,
            read_at: None,
        }
    }

    pub(super) fn start(&self, held: usize) -> usize {
        match self.base {
            Base::Start(n) => n,
            Base::End(n) => self.total.saturating_sub(n + held),
        }
    }

    pub(super) fn at_start(&self) -> bool {
        self.pages.front().is_some_and(|p| p.prev.is_none())
    }

    pub(super) fn at_end(&self) -> bool {
        self.pages.back().is_some_and(|p| p.next.is_none())
    }
}
