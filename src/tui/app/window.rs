//! Window mode (issue 19): when the organisation has more keys than the app
//! may hold ([`App::capacity`]), the table is a window over the service. The
//! app holds the pages around the viewport (`keys`, in the service's order),
//! asks for the next or previous page before the selection reaches the edge
//! of what it holds, drops pages far from the viewport, jumps to either end
//! without reading what lies between, and takes the tab counts and the
//! summary line from `GET /v1/api-keys/counts`. A tab, sort or filter change
//! is a new query; answers to an older one are dropped by its generation.
//! The selection, `offset` and the scrollbar are absolute positions in the
//! whole ordered list: the rows held start at [`App::row_start`].

use super::held::{Base, PageMark, Recount, Window};
pub(super) use super::held::{Land, ReadFrom};
use super::state::{App, Banner};
use super::tabs::{SortBy, Tab};
use crate::api::{KeyCounts, KeyList, KeyListQuery};
use crate::client::ClientError;
use crate::key::health::Summary;
use crate::tui::action::{Fetch, Request, LOAD_RETRY};
use crate::tui::keymap::{Command, Context};
use crate::tui::message::banner_message;

/// The longest filter the service takes (`q`).
const MAX_Q: usize = 100;

/// How long an automatic refresh that finds no key written may skip
/// reading the window and the counts again.
const REREAD_EVERY: chrono::Duration = chrono::Duration::minutes(5);

/// A tab's count in `counts`.
fn tab_count(counts: &KeyCounts, tab: Tab) -> usize {
    let n = match tab {
        Tab::All => counts.tabs.all,
        Tab::Active => counts.tabs.active,
        Tab::Expired => counts.tabs.expired,
        Tab::Revoked => counts.tabs.revoked,
        Tab::Attention => counts.tabs.attention,
    };
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn sort_name(sort: SortBy) -> &'static str {
    match sort {
        SortBy::Created => "created",
        SortBy::Name => "name",
        SortBy::LastUsed => "last_used",
        SortBy::Expires => "expires",
        SortBy::Status => "status",
    }
}

impl App {
    /// The most keys the app holds; an organisation with more is shown as a
    /// window over the service. Set before the first load.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
    }

    /// Keys the app holds right now (the rows held, and a load's pages not
    /// applied yet): at most about [`App::set_capacity`]'s bound.
    pub fn held(&self) -> usize {
        self.keys.len() + self.staging.len()
    }

    /// After every action, `peak` is raised to the keys held if fewer: how
    /// a server with many sessions (SSH) watches that each holds only its
    /// window.
    pub fn report_held_to(&mut self, peak: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        self.held_peak = Some(peak);
    }

    /// Whether the table is a window over the service (more keys than the
    /// app may hold).
    pub fn windowed(&self) -> bool {
        self.window.is_some()
    }

    /// The absolute position of the first row held (0 unless windowed).
    pub fn row_start(&self) -> usize {
        self.window.as_ref().map_or(0, |w| w.start(self.keys.len()))
    }

    /// How many rows the table has (the tab under the filter), held or not.
    pub fn row_count(&self) -> usize {
        match &self.window {
            Some(w) => w.total.max(w.start(self.keys.len()) + self.keys.len()),
            None => self.rows.len(),
        }
    }

    /// How many keys the organisation has.
    pub fn key_total(&self) -> usize {
        match &self.window {
            // Before the counts come, at least the keys held.
            Some(w) => usize::try_from(w.all.tabs.all)
                .unwrap_or(usize::MAX)
                .max(self.keys.len()),
            None => self.keys.len(),
        }
    }

    /// The key at absolute row `row`, if it is held.
    pub fn key_at(&self, row: usize) -> Option<&crate::api::ApiKey> {
        let i = row.checked_sub(self.row_start())?;
        self.rows.get(i).map(|&k| &self.keys[k])
    }

    /// Rows fetched per window page: small enough that the pages covering the
    /// screen and a page's margin each side, and one more on its way, stay
    /// within the capacity.
    fn window_page(&self) -> usize {
        (self.capacity.saturating_sub(self.page_rows()) / 5).clamp(1, 500)
    }

    /// The absolute rows that should be held: the screen and a page either side.
    fn wanted(&self) -> (usize, usize) {
        let page = self.window_page();
        let lo = self.offset.saturating_sub(page);
        let hi = (self.offset + self.page_rows() + page).min(self.row_count());
        (lo, hi)
    }

    /// The list query of the table's tab, sort and filter.
    fn window_query(&self) -> KeyListQuery {
        let attention = self.tab == Tab::Attention;
        let default_desc = !attention && matches!(self.sort, SortBy::Created | SortBy::LastUsed);
        let q: String = self.filter.value().trim().chars().take(MAX_Q).collect();
        KeyListQuery {
            tab: Some(self.tab.label().to_lowercase()),
            sort: (!attention).then(|| sort_name(self.sort).to_owned()),
            order: self
                .sort_reversed
                .then(|| if default_desc { "asc" } else { "desc" }.to_owned()),
            q: (!q.is_empty()).then_some(q),
            limit: Some(u32::try_from(self.window_page()).unwrap_or(500)),
            ..KeyListQuery::default()
        }
    }

    /// Leaves whole mode: the keys loaded go, the window is read from the start.
    pub(super) fn enter_window(&mut self) {
        tracing::info!(
            capacity = self.capacity,
            "more keys than the UI holds: window mode"
        );
        self.keys = Vec::new();
        self.rows = Vec::new();
        self.staging = Vec::new();
        self.sync_cursor = None;
        self.sync_next = None;
        self.window = Some(Window::new());
        self.requery(ReadFrom::Start, Land::Follow, Recount::All);
    }

    /// Back to whole mode: every key is loaded again.
    fn leave_window(&mut self) {
        tracing::info!(
            capacity = self.capacity,
            "the keys fit the UI again: whole mode"
        );
        self.window = None;
        self.mark_cache.clear();
        self.loaded = false;
        self.loading = false;
        self.refresh();
    }

    /// A tab, sort or filter change: a new query in window mode, else the
    /// rows are rebuilt here. Counts depend on the filter alone: a tab or
    /// sort change asks for none, a filter keystroke for the filter's (the
    /// summary line's, of all keys, stay), a cleared filter takes all keys'.
    pub(super) fn query_changed(&mut self) {
        let q = self.window_query().q;
        let tab = self.tab;
        let Some(w) = self.window.as_mut() else {
            self.rebuild_rows();
            return;
        };
        let recount = if w.counts_for.as_ref() == Some(&q) {
            Recount::No
        } else if q.is_none() {
            w.counts = w.all;
            w.counts_for = Some(None);
            Recount::No
        } else {
            Recount::Filtered
        };
        w.total = tab_count(&w.counts, tab);
        // The rows shown stay until the new query's first page replaces them.
        self.requery(ReadFrom::Start, Land::Top, recount);
        self.dirty = true;
    }

    /// Asks for a new query's first page (replacing the rows held when it
    /// lands) and the counts `recount` says. What an older query still
    /// waits for is cancelled: a keystroke while a page or counts are on
    /// their way supersedes them, and the service stops reading them.
    pub(super) fn requery(&mut self, from: ReadFrom, land: Land, recount: Recount) {
        let mut query = self.window_query();
        let q = query.q.clone();
        let Some(w) = self.window.as_mut() else {
            return;
        };
        w.generation += 1;
        w.ahead = false;
        w.behind = false;
        w.resetting = true;
        w.land = land;
        w.reset_base = match &from {
            ReadFrom::Start => Base::Start(0),
            ReadFrom::End => Base::End(0),
            ReadFrom::After(_, n) => Base::Start(*n),
        };
        match from {
            ReadFrom::Start => {}
            ReadFrom::End => query.from = Some("end".into()),
            ReadFrom::After(cursor, _) => query.cursor = Some(cursor),
        }
        let generation = w.generation;
        // Which counts to ask for: the filter's, and all keys'.
        let (filtered, all) = match recount {
            Recount::No => (false, false),
            Recount::Filtered => (q.is_some(), q.is_none()),
            Recount::All => (q.is_some(), true),
        };
        if recount != Recount::No {
            w.counts_generation += 1;
            w.counts_for = Some(q.clone());
        }
        if all {
            w.all_generation += 1;
        }
        let (counts_generation, all_generation) = (w.counts_generation, w.all_generation);
        self.cancel_requests(|r| match r {
            Request::LoadWindow { generation: g, .. } => *g != generation,
            Request::LoadCounts { generation: g, q } => match q {
                Some(_) => *g != counts_generation,
                None => all && *g != all_generation,
            },
            _ => false,
        });
        self.loading = true;
        self.request(Request::LoadWindow {
            generation,
            query: Box::new(query),
            fetch: Fetch::Reset,
        });
        if filtered {
            self.request(Request::LoadCounts {
                generation: counts_generation,
                q,
            });
        }
        if all {
            self.request(Request::LoadCounts {
                generation: all_generation,
                q: None,
            });
        }
    }

    /// A refresh in window mode: the rows around the first one held are read
    /// again, and the counts.
    pub(super) fn refresh_window(&mut self) {
        self.next_refresh = self.now + self.refresh_every;
        let Some(w) = &self.window else {
            return;
        };
        // An automatic refresh first asks whether anything was written since.
        let recent = w.read_at.is_some_and(|at| self.now - at < REREAD_EVERY);
        if let (Some(since), true, false, false) = (
            w.sync_cursor.clone(),
            recent,
            w.resetting,
            self.refreshing.is_some(),
        ) {
            let generation = w.generation;
            self.loading = true;
            let query = KeyListQuery {
                changed_since: Some(since),
                limit: Some(1),
                ..KeyListQuery::default()
            };
            self.request(Request::LoadWindow {
                generation,
                query: Box::new(query),
                fetch: Fetch::Probe,
            });
            return;
        }
        self.reread_window();
    }

    /// Reads the window again from its first row held, and the counts.
    pub(super) fn reread_window(&mut self) {
        let Some(w) = &self.window else {
            return;
        };
        let start = w.start(self.keys.len());
        let from = if w.pages.is_empty() || w.at_start() {
            ReadFrom::Start
        } else if w.at_end() {
            ReadFrom::End
        } else {
            match w.pages.front().and_then(|p| p.prev.clone()) {
                Some(cursor) => ReadFrom::After(cursor, start + 1),
                None => ReadFrom::Start,
            }
        };
        self.requery(from, Land::Follow, Recount::All);
    }

    /// `g`: the first row, read from the start unless it is held. While a
    /// new query is on its way (`resetting`, e.g. after `G`), the rows held
    /// are the old query's: `g` asks again, superseding it.
    pub(super) fn window_first(&mut self) {
        if self
            .window
            .as_ref()
            .is_some_and(|w| !w.resetting && w.at_start())
        {
            self.select(0);
            return;
        }
        self.selected = 0;
        self.offset = 0;
        self.requery(ReadFrom::Start, Land::First, Recount::No);
    }

    /// `G`: the last row, read from the end unless it is held (and not
    /// being replaced, as for `g`).
    pub(super) fn window_last(&mut self) {
        if self
            .window
            .as_ref()
            .is_some_and(|w| !w.resetting && w.at_end())
        {
            self.select(self.row_count().saturating_sub(1));
            return;
        }
        let last = self.row_count().saturating_sub(1);
        self.selected = last;
        self.offset = (last + 1).saturating_sub(self.page_rows());
        self.requery(ReadFrom::End, Land::Last, Recount::No);
    }

    /// Whether a window answer belongs to the query now shown.
    pub(super) fn current_window(&self, generation: u64) -> bool {
        self.window
            .as_ref()
            .is_some_and(|w| w.generation == generation)
    }

    /// Whether counts are the last asked for: of the filter (`counts_generation`)
    /// or, with `all`, of all keys (`all_generation`).
    pub(super) fn current_counts(&self, generation: u64, all: bool) -> bool {
        self.window.as_ref().is_some_and(|w| {
            generation
                == if all {
                    w.all_generation
                } else {
                    w.counts_generation
                }
        })
    }

    /// A page of the window came (or failed).
    pub(super) fn on_window_page(&mut self, fetch: Fetch, result: Result<KeyList, ClientError>) {
        let page = match result {
            Ok(page) => page,
            Err(error) => {
                self.dirty = true;
                if let Some(w) = self.window.as_mut() {
                    match fetch {
                        Fetch::Ahead => w.ahead = false,
                        Fetch::Behind => w.behind = false,
                        Fetch::Reset => w.resetting = false,
                        Fetch::Probe => {}
                    }
                }
                self.loading = false;
                self.refreshing = None;
                self.failures += 1;
                let retry_at = LOAD_RETRY.delay(&error, self.failures).map(|d| {
                    self.now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(8))
                });
                self.banner = Some(Banner {
                    message: banner_message(
                        &error,
                        &self.source,
                        Some((Context::Table, Command::Refresh)),
                    ),
                    retry_at,
                });
                return;
            }
        };
        self.failures = 0;
        if self.banner.take().is_some() {
            self.dirty = true;
        }
        if fetch == Fetch::Probe {
            self.loading = false;
            // `r` pressed meanwhile reads the window again whatever the answer;
            // so does a policy set since (on this replica or another): no
            // key was written, but badges and counts follow the policy.
            let policy_changed = page.policy_tag.is_some() && page.policy_tag != self.policy_tag;
            if page.data.is_empty() && self.refreshing.is_none() && !policy_changed {
                // Nothing written since: what shows is up to date, and the
                // screen stays as it is.
                self.updated_at = Some(self.now);
                self.asked_refresh = false;
            } else {
                self.reread_window();
            }
            return;
        }
        self.dirty = true;
        if page.policy_tag.is_some() && page.policy_tag != self.policy_tag {
            self.policy_tag = page.policy_tag.clone();
            self.request(Request::LoadPolicy);
        }
        let Some(w) = self.window.as_mut() else {
            return;
        };
        let n = page.data.len();
        let mark = PageMark {
            len: n,
            prev: page.prev_cursor,
            next: page.next_cursor,
        };
        let mut land = None;
        match fetch {
            Fetch::Probe => {}
            Fetch::Reset => {
                w.resetting = false;
                w.sync_cursor = page.sync_cursor;
                w.read_at = Some(self.now);
                w.pages.clear();
                w.base = if mark.prev.is_none() {
                    Base::Start(0)
                } else if mark.next.is_none() {
                    Base::End(0)
                } else {
                    w.reset_base
                };
                w.pages.push_back(mark);
                self.keys = page.data;
                land = Some(w.land);
                self.loaded = true;
                self.loading = false;
                self.updated_at = Some(self.now);
                self.asked_refresh = self.refreshing.take().is_some();
            }
            Fetch::Ahead => {
                w.ahead = false;
                if let Base::End(d) = &mut w.base {
                    *d = d.saturating_sub(n);
                }
                match w.pages.back_mut() {
                    Some(last) if n == 0 => last.next = None,
                    _ => w.pages.push_back(mark),
                }
                self.keys.extend(page.data);
            }
            Fetch::Behind => {
                w.behind = false;
                if let Base::Start(s) = &mut w.base {
                    *s = s.saturating_sub(n);
                }
                match w.pages.front_mut() {
                    Some(first) if n == 0 => first.prev = None,
                    _ => w.pages.push_front(mark),
                }
                if w.at_start() {
                    w.base = Base::Start(0);
                }
                self.keys.splice(0..0, page.data);
            }
        }
        match land {
            // `g` and `G` selected the first or last row when they asked;
            // a move made since (PgDn, k) stands.
            Some(Land::First | Land::Last) => self.selected_id = None,
            Some(Land::Top) => {
                let id = self.selected_id.as_deref();
                if !self.keys.iter().any(|k| Some(k.id.as_str()) == id) {
                    self.selected = 0;
                    self.offset = 0;
                }
            }
            Some(Land::Follow) | None => {}
        }
        self.trim_window();
        self.rebuild_rows();
    }

    /// Drops pages far from the viewport while more keys are held than the
    /// capacity: the farther side first, never a page the screen or its
    /// margin needs.
    fn trim_window(&mut self) {
        let (lo, hi) = self.wanted();
        loop {
            let start = self.row_start();
            let held = self.keys.len();
            let Some(w) = self.window.as_mut() else {
                return;
            };
            if held <= self.capacity || w.pages.len() < 2 {
                return;
            }
            let end = start + held;
            let first = w.pages.front().map_or(0, |p| p.len);
            let last = w.pages.back().map_or(0, |p| p.len);
            let front_far = start + first <= lo;
            let back_far = end.saturating_sub(last) >= hi;
            if front_far && (!back_far || lo - start >= end - hi) {
                w.pages.pop_front();
                if let Base::Start(s) = &mut w.base {
                    *s += first;
                }
                self.keys.drain(..first);
            } else if back_far {
                w.pages.pop_back();
                if let Base::End(d) = &mut w.base {
                    *d += last;
                }
                self.keys.truncate(held - last);
            } else {
                return;
            }
        }
    }

    /// Asks for the page ahead or behind when the screen and its margin are
    /// not all held (one of each on its way at a time).
    pub(super) fn ensure_window(&mut self) {
        let (lo, hi) = self.wanted();
        let start = self.row_start();
        let end = start + self.keys.len();
        let query = self.window_query();
        let Some(w) = self.window.as_mut() else {
            return;
        };
        if w.resetting {
            return;
        }
        let generation = w.generation;
        let mut asks = Vec::new();
        if end < hi && !w.ahead {
            if let Some(cursor) = w.pages.back().and_then(|p| p.next.clone()) {
                w.ahead = true;
                let query = KeyListQuery {
                    cursor: Some(cursor),
                    ..query.clone()
                };
                asks.push((query, Fetch::Ahead));
            }
        }
        if start > lo && !w.behind {
            if let Some(before) = w.pages.front().and_then(|p| p.prev.clone()) {
                w.behind = true;
                let query = KeyListQuery {
                    before: Some(before),
                    ..query
                };
                asks.push((query, Fetch::Behind));
            }
        }
        for (query, fetch) in asks {
            self.request(Request::LoadWindow {
                generation,
                query: Box::new(query),
                fetch,
            });
        }
    }

    /// Counts came: of the filter's keys (`filtered`), or of all keys.
    pub(super) fn on_counts(&mut self, q: Option<String>, result: Result<KeyCounts, ClientError>) {
        let tab = self.tab;
        let now = self.window_query().q;
        let filtered = now.is_some();
        let Some(w) = self.window.as_mut() else {
            return;
        };
        let Ok(counts) = result else {
            // Asked again on the next refresh or filter change; the last counts stay.
            if q.is_some() && w.counts_for.as_ref() == Some(&q) {
                w.counts_for = None;
            }
            return;
        };
        if q.is_some() && q != now {
            // Of a filter cleared since.
            return;
        }
        if q.is_none() {
            w.all = counts;
            if !filtered {
                w.counts = counts;
            }
        } else {
            w.counts = counts;
        }
        w.total = tab_count(&w.counts, tab);
        if q.is_none() && tab_count(&counts, Tab::All) <= self.capacity {
            self.leave_window();
            return;
        }
        self.rebuild_rows();
    }

    /// The window's part of rebuilding the rows: every row held shows, the
    /// counts and the summary line are the service's.
    pub(super) fn rebuild_window_rows(&mut self) {
        let Some(w) = &self.window else {
            return;
        };
        let (counts, all, resetting) = (w.counts, w.all, w.resetting);
        self.rows = (0..self.keys.len()).collect();
        self.counts = Tab::ALL.map(|t| tab_count(&counts, t));
        self.tab_total = tab_count(&all, self.tab);
        let mut summary = Summary::of::<crate::api::ApiKey>(&[], &self.policy, self.now);
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        summary.active = n(all.summary.active);
        summary.expiring = n(all.summary.expiring);
        summary.rotate = n(all.summary.rotate);
        summary.unused = n(all.summary.unused);
        summary.expired = n(all.summary.expired);
        summary.rotating = n(all.summary.rotating);
        summary.policy = n(all.summary.policy);
        summary.refused = n(all.summary.refused);
        summary.no_secret = n(all.summary.no_secret);
        summary.exposed = n(all.summary.exposed);
        summary.attention = n(all.summary.attention);
        self.summary = summary;
        if resetting {
            // The rows held are the last query's until its answer lands: the
            // selection waits for it.
            self.dirty = true;
            return;
        }
        let start = self.row_start();
        let followed = self
            .selected_id
            .as_ref()
            .and_then(|id| self.keys.iter().position(|k| &k.id == id));
        self.selected = match followed {
            Some(i) => start + i,
            None => self.selected.min(self.row_count().saturating_sub(1)),
        };
        self.remember_selection();
        self.keep_selection_visible();
        self.dirty = true;
    }
}
