//! The terminal UI's state, and `update`: the one place it changes.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use crossterm::event::{KeyEvent, KeyEventKind, KeyModifiers};
use tui_input::Input;

use std::collections::BTreeMap;

use super::action::{Action, Answer, Effect, Request, RequestId, LOAD_RETRY};
use super::dialog::ConfirmKind;
use super::filter::matches_filter;
use super::health::{self, Summary};
use super::keymap::{self, Command, Context};
use super::popup::{Outcome, Popup};
pub use super::table::{SortBy, Tab};
use super::theme::{Palette, Styles, Theme};
use super::{details, help};
use crate::api::{ApiKey, ScopeInfo};
use crate::client::ClientError;
use crate::clock::Clock;
use crate::key::{KeyStatus, SCOPES};
use crate::policy::Policy;
use crate::present::DisplayTz;

/// Keys fetched per request while loading.
pub const PAGE_SIZE: u32 = 500;
/// Rows of chrome around the table: title, tabs, table header, footer.
pub const CHROME_ROWS: u16 = 4;

/// An error shown above the table, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    pub message: String,
    /// When to try again by itself, for errors that may pass.
    pub retry_at: Option<DateTime<Utc>>,
}

pub struct App {
    pub(super) clock: Arc<dyn Clock>,
    /// The time as of the last update: everything drawn is as of this instant,
    /// so drawing never reads the clock.
    pub(super) now: DateTime<Utc>,
    pub(super) theme: Styles,
    pub(super) tz: DisplayTz,
    /// Where the keys come from, for the title bar.
    pub(super) source: String,
    pub(super) width: u16,
    pub(super) height: u16,
    /// Every key of the organisation, as last loaded.
    pub(super) keys: Vec<ApiKey>,
    /// Indices into `keys` that the table shows, in order.
    pub(super) rows: Vec<usize>,
    /// Keys per tab (All, Active, Expired, Revoked, Attention), kept with `rows`.
    counts: [usize; 5],
    /// The summary line's counts over all keys, kept with `rows`.
    pub(super) summary: Summary,
    /// The selected row, followed by id across refreshes and re-sorts.
    pub(super) selected_id: Option<String>,
    pub(super) selected: usize,
    /// The first row on screen.
    pub(super) offset: usize,
    pub(super) tab: Tab,
    pub(super) filter: Input,
    pub(super) filtering: bool,
    pub(super) sort: SortBy,
    pub(super) sort_reversed: bool,
    /// Popups, the active one last (a confirmation can sit on a form).
    pub(super) popups: Vec<Popup>,
    pub(super) banner: Option<Banner>,
    /// A short note about what just happened ("Revoked …"), until the next key.
    pub(super) flash: Option<String>,
    /// Keys marked with Space, for bulk revoke.
    pub(super) marked: std::collections::BTreeSet<String>,
    /// The scope catalogue, from the service once loaded.
    pub(super) scopes: Vec<ScopeInfo>,
    /// The organisation's key policy, loaded with the keys; the default
    /// (no rule, the page's thresholds) until then or if it cannot be read.
    pub policy: Policy,
    /// The first load has finished.
    pub(super) loaded: bool,
    pub(super) loading: bool,
    pub(super) refresh_every: Duration,
    pub(super) next_refresh: DateTime<Utc>,
    pub(super) should_quit: bool,
    /// Something on screen changed since the last draw.
    pub(super) dirty: bool,
    /// Requests sent and not yet answered, by id.
    pending: BTreeMap<RequestId, Request>,
    next_request: u64,
    /// Quit was asked for while changes to keys were out.
    pub(super) quit_pending: bool,
    generation: u64,
    /// The pages of a load in progress, until its last page (a first load
    /// shows its pages as they come instead).
    staging: Vec<ApiKey>,
    /// The service's cursor of the last finished load: a refresh asks only
    /// for the keys written since (`changed_since`).
    sync_cursor: Option<String>,
    /// The cursor of the load in progress (from its first page).
    sync_next: Option<String>,
    /// The `policy_tag` of the policy last asked for: a refresh re-reads the
    /// policy only when the key list's tag differs.
    policy_tag: Option<String>,
    failures: u32,
    /// The next expiry the rows were built for: once it passes, statuses,
    /// tab counts and rows change.
    shown_expiries: Option<DateTime<Utc>>,
    effects: Vec<Effect>,
}

impl App {
    pub fn new(clock: Arc<dyn Clock>, theme: Theme, tz: DisplayTz, source: String) -> Self {
        let now = clock.now();
        Self {
            now,
            clock,
            theme: Styles::new(theme, Palette::Dark),
            tz,
            source,
            width: 80,
            height: 24,
            keys: Vec::new(),
            rows: Vec::new(),
            counts: [0; 5],
            summary: Summary::default(),
            selected_id: None,
            selected: 0,
            offset: 0,
            tab: Tab::All,
            filter: Input::default(),
            filtering: false,
            sort: SortBy::Created,
            sort_reversed: false,
            popups: Vec::new(),
            banner: None,
            flash: None,
            marked: Default::default(),
            scopes: SCOPES.iter().map(Into::into).collect(),
            policy: Policy::default(),
            loaded: false,
            loading: false,
            refresh_every: Duration::seconds(30),
            next_refresh: now,
            should_quit: false,
            dirty: true,
            pending: BTreeMap::new(),
            next_request: 0,
            quit_pending: false,
            generation: 0,
            staging: Vec::new(),
            sync_cursor: None,
            sync_next: None,
            policy_tag: None,
            failures: 0,
            shown_expiries: None,
            effects: Vec::new(),
        }
    }

    /// The instant the state (and so the screen) is as of.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Every key of the organisation, as last loaded.
    pub fn keys(&self) -> &[ApiKey] {
        &self.keys
    }

    /// Indices into [`App::keys`] that the table shows, in order.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// The selected row.
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// The first row on screen.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Popups, the active one last.
    pub fn popups(&self) -> &[Popup] {
        &self.popups
    }

    pub fn banner(&self) -> Option<&Banner> {
        self.banner.as_ref()
    }

    /// Keys marked with Space, for bulk revoke.
    pub fn marked(&self) -> &std::collections::BTreeSet<String> {
        &self.marked
    }

    pub fn should_quit(&self) -> bool {
        self.should_quit
    }

    /// Quit was asked for while a change to a key was still on its way.
    pub fn quit_pending(&self) -> bool {
        self.quit_pending
    }

    /// The colour palette (the session's colour choice still wins).
    pub fn set_palette(&mut self, palette: Palette) {
        self.theme = Styles::new(*self.theme, palette);
        self.dirty = true;
    }

    /// Rows the summary line takes: one once there are keys to sum up.
    pub fn summary_rows(&self) -> u16 {
        u16::from(self.loaded && !self.keys.is_empty())
    }

    /// A new organisation policy: badges, the summary line and the Attention
    /// tab follow it at once.
    /// The policy could not be read: the next refresh asks for it again.
    pub(super) fn forget_policy_tag(&mut self) {
        self.policy_tag = None;
    }

    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
        self.rebuild_rows();
    }

    /// The summary line's counts over all keys, as of the last rebuild of the rows.
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// The health badges of a key as of the last update, under the policy.
    pub fn badges_of(&self, key: &ApiKey) -> health::Badges {
        health::badges(key, &self.policy, self.now)
    }

    /// How often the table reloads by itself (the help says this interval).
    pub fn set_refresh_every(&mut self, every: Duration) {
        self.refresh_every = every;
    }

    /// Where the keys come from, as the title says it (`local · DIR` or a URL).
    pub fn set_source(&mut self, source: String) {
        self.source = source;
        self.dirty = true;
    }

    /// Whether something visible changed since the last frame; the runner
    /// draws only then, and this resets the flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Effects requested since the last call.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The status of a key as of the last update: a key turns Expired the
    /// moment its expiry passes (the runner wakes up then), without a refresh.
    pub fn status_of(&self, key: &ApiKey) -> KeyStatus {
        KeyStatus::derive(key.revoked_at, key.expires_at, self.now)
    }

    pub fn selected_key(&self) -> Option<&ApiKey> {
        self.rows.get(self.selected).map(|&i| &self.keys[i])
    }

    pub fn key_by_id(&self, id: &str) -> Option<&ApiKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Rows the table has room for.
    /// Rows the error banner takes at the current width (it wraps, up to 3).
    pub fn banner_rows(&self) -> u16 {
        self.banner.as_ref().map_or(0, |b| {
            let len = b.message.chars().count() + 3;
            let width = usize::from(self.width.max(1));
            u16::try_from(len.div_ceil(width).min(3)).unwrap_or(3)
        })
    }

    pub fn page_rows(&self) -> usize {
        let banner = self.banner_rows().max(u16::from(self.flash.is_some()));
        let filter = u16::from(self.filtering || !self.filter.value().is_empty());
        let chrome = CHROME_ROWS + self.summary_rows();
        usize::from(self.height.saturating_sub(chrome + banner + filter)).max(1)
    }

    /// How many keys each tab would show.
    /// How many keys each tab shows, as of the last rebuild of the rows.
    pub fn tab_counts(&self) -> [usize; 5] {
        self.counts
    }

    fn count_tabs(&self) -> [usize; 5] {
        let mut counts = [self.keys.len(), 0, 0, 0, self.summary.attention];
        for k in &self.keys {
            counts[match self.status_of(k) {
                KeyStatus::Active => 1,
                KeyStatus::Expired => 2,
                KeyStatus::Revoked => 3,
            }] += 1;
        }
        counts
    }

    /// When the runner should send the next `Tick`.
    pub fn next_wakeup(&self) -> DateTime<Utc> {
        let now = self.now;
        // Relative times ("3 min ago") stay true to the minute.
        let mut at = now + Duration::seconds(15);
        at = at.min(self.next_refresh);
        if let Some(retry) = self.banner.as_ref().and_then(|b| b.retry_at) {
            at = at.min(retry);
        }
        if let Some(expiry) = self.next_expiry(now) {
            at = at.min(expiry);
        }
        at.max(now)
    }

    fn next_expiry(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.keys
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .filter_map(|k| k.expires_at)
            .filter(|e| *e > now)
            .min()
    }

    /// Starts loading the keys: every key the first time (or from a service
    /// without change cursors), afterwards only those written since the last
    /// load. Nothing is drawn for a refresh until its answer changes something.
    pub fn refresh(&mut self) {
        self.generation += 1;
        self.staging.clear();
        self.sync_next = None;
        if !self.loaded {
            // A first load that failed half-way starts again from nothing.
            self.keys.clear();
            self.dirty = true;
        }
        self.loading = true;
        self.next_refresh = self.now + self.refresh_every;
        let changed_since = if self.loaded {
            self.sync_cursor.clone()
        } else {
            None
        };
        self.request(Request::LoadPage {
            generation: self.generation,
            cursor: None,
            changed_since,
        });
    }

    /// The first load: every key, and the scope catalogue.
    pub fn start(&mut self) {
        self.now = self.clock.now();
        self.refresh();
        self.request(Request::LoadScopes);
    }

    /// Sends a request; [`App::settle`] takes its answer.
    pub(super) fn request(&mut self, request: Request) {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.pending.insert(id, request.clone());
        self.effects.push(Effect::Send(id, request));
    }

    /// Asks the runner for local work (the clipboard).
    pub(super) fn local(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether request `id` is out and changes a key.
    pub fn changes_keys(&self, id: RequestId) -> bool {
        self.pending.get(&id).is_some_and(Request::changes_keys)
    }

    /// Creates, revokes and rotations sent and not yet answered.
    pub fn mutations(&self) -> usize {
        self.pending.values().filter(|r| r.changes_keys()).count()
    }

    /// `q` / Ctrl-C: quits, unless a change to a key is still on its way; then
    /// it waits for the answer (a second press quits at once).
    pub fn request_quit(&mut self) {
        if self.mutations() == 0 || self.quit_pending {
            self.should_quit = true;
            return;
        }
        self.quit_pending = true;
        self.flash = Some(
            "A change to a key is still being sent; keydeck quits when it is done (q again: quit now).".into(),
        );
    }

    /// An answer to a create, revoke or rotate arrived (after it was applied).
    fn mutation_done(&mut self) {
        if self.mutations() > 0 || !self.quit_pending {
            return;
        }
        self.quit_pending = false;
        if matches!(self.popups.last(), Some(Popup::CopyOnce(_))) {
            self.flash = Some(
                "Not quitting yet: copy the new key first, it will not be shown again.".into(),
            );
        } else {
            self.should_quit = true;
        }
    }

    pub fn update(&mut self, action: Action) {
        self.now = self.clock.now();
        match action {
            Action::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
            Action::Key(_) => {}
            Action::Resize(w, h) => {
                self.width = w;
                self.height = h;
                self.keep_selection_visible();
                self.dirty = true;
            }
            Action::Tick => self.on_tick(),
            Action::Quit => self.should_quit = true,
            Action::Answer { id, answer } => self.settle(id, answer),
            Action::Paste(text) => {
                self.dirty = true;
                if let Some(Popup::Create(form)) = self.popups.last_mut() {
                    form.paste(&text);
                }
            }
            Action::Copied { system } => {
                self.dirty = true;
                if let Some(Popup::CopyOnce(modal)) = self.popups.last_mut() {
                    modal.copied(system);
                }
            }
        }
    }

    /// The answer to request `id`: the one place a request is settled, and
    /// routed to what asked for it.
    fn settle(&mut self, id: RequestId, answer: Answer) {
        let Some(request) = self.pending.remove(&id) else {
            tracing::warn!(?id, "an answer to no pending request");
            return;
        };
        match answer {
            Answer::Page(result) => {
                // A page of a load that a newer one replaced is dropped.
                if matches!(request, Request::LoadPage { generation, .. } if generation == self.generation)
                {
                    self.on_page(result);
                }
            }
            Answer::Scopes(result) => {
                self.dirty = true;
                if let Ok(scopes) = result {
                    if !scopes.is_empty() {
                        self.scopes = scopes;
                    }
                }
            }
            Answer::Policy(result) => self.on_policy(result),
            Answer::Created(result) => {
                self.dirty = true;
                self.on_created(*result);
            }
            Answer::Revoked(result) => {
                self.dirty = true;
                self.on_revoked(*result);
            }
            Answer::Rotated(result) => {
                self.dirty = true;
                self.on_rotated(*result);
            }
            Answer::Audit(result) => {
                self.dirty = true;
                let audit = self.popups.iter_mut().rev().find_map(|p| match p {
                    Popup::Audit(view) => Some(view),
                    _ => None,
                });
                if let Some(view) = audit {
                    view.loaded(result, &self.source);
                }
            }
        }
        if request.changes_keys() {
            self.mutation_done();
        }
    }

    /// A key for the popup on top: its own file says what it means.
    fn on_popup_key(&mut self, command: Option<Command>, key: KeyEvent) {
        let now = self.now;
        let outcome = match self.popups.last_mut() {
            None => return,
            Some(Popup::Help(scroll)) => help::on_command(scroll, command),
            Some(Popup::Details(_)) => details::on_command(command),
            Some(Popup::Audit(view)) => view.on_command(command),
            Some(Popup::Create(form)) => form.handle(command, key, now, self.tz),
            Some(Popup::CopyOnce(modal)) => modal.on_command(command),
            Some(Popup::Confirm(dialog)) => dialog.handle(command),
        };
        self.apply(outcome);
    }

    /// Carries out what a popup asked for: the one place that does.
    fn apply(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Stay => {}
            Outcome::Close => {
                self.popups.pop();
            }
            Outcome::Open(popup) => self.popups.push(popup),
            Outcome::Request(request) => self.request(request),
            Outcome::Local(effect) => self.local(effect),
            Outcome::Decided {
                kind,
                yes,
                grace_seconds,
            } => {
                self.popups.pop();
                match (kind, yes) {
                    (ConfirmKind::RevokeOrphan(key), false) => self.kept_orphan(&key),
                    (_, false) | (ConfirmKind::Notice, true) => {}
                    (ConfirmKind::Revoke(key) | ConfirmKind::RevokeOrphan(key), true) => {
                        self.start_revoke(*key)
                    }
                    (ConfirmKind::RevokeMany(keys), true) => self.start_revoke_many(keys),
                    (ConfirmKind::Rotate(key), true) => self.start_rotate(*key, grace_seconds),
                    // The form (or the copy modal, and with it the secret) goes too.
                    (ConfirmKind::DiscardForm | ConfirmKind::CloseUncopied, true) => {
                        self.popups.pop();
                    }
                }
            }
        }
    }

    fn on_tick(&mut self) {
        let now = self.now;
        let retry_due = self
            .banner
            .as_ref()
            .and_then(|b| b.retry_at)
            .is_some_and(|r| r <= now);
        if (now >= self.next_refresh || retry_due) && !self.loading {
            self.refresh();
        }
        // A key that expired since the last tick changes status, tab counts and maybe rows.
        let next = self.next_expiry(now);
        if next != self.shown_expiries {
            self.shown_expiries = next;
            self.rebuild_rows();
        }
        self.dirty = true;
    }

    fn on_page(&mut self, result: Result<crate::api::KeyList, ClientError>) {
        match result {
            Ok(page) => {
                self.failures = 0;
                if self.banner.take().is_some() {
                    self.dirty = true;
                }
                // The first page's cursor: what later pages add is at or past it.
                if self.sync_next.is_none() {
                    self.sync_next = page.sync_cursor;
                }
                if page.policy_tag.is_some() && page.policy_tag != self.policy_tag {
                    self.policy_tag = page.policy_tag;
                    self.request(Request::LoadPolicy);
                }
                // The first load shows each page as it comes; a refresh
                // applies its answer at once, so nothing flickers.
                let first_load = !self.loaded;
                if first_load {
                    self.keys.extend(page.data);
                } else {
                    self.staging.extend(page.data);
                }
                match page.next_cursor {
                    Some(cursor) => {
                        if first_load {
                            self.rebuild_rows();
                        }
                        let changed_since = self.sync_cursor.clone().filter(|_| !first_load);
                        self.request(Request::LoadPage {
                            generation: self.generation,
                            cursor: Some(cursor),
                            changed_since,
                        });
                    }
                    None => self.load_done(first_load),
                }
                return;
            }
            Err(error) => {
                self.loading = false;
                self.failures += 1;
                let retry_at = LOAD_RETRY
                    .delay(&error, self.failures)
                    .map(|d| self.now + Duration::from_std(d).unwrap_or(Duration::seconds(8)));
                self.banner = Some(Banner {
                    message: banner_message(&error, &self.source),
                    retry_at,
                });
                self.keep_selection_visible();
            }
        }
        self.dirty = true;
    }

    /// The last page of a load came: a first load is shown already; a full
    /// reload replaces the list; changes since the last load are merged in,
    /// and the screen is redrawn only if one of them shows.
    fn load_done(&mut self, first_load: bool) {
        let incremental = !first_load && self.sync_cursor.is_some();
        self.sync_cursor = self.sync_next.take();
        self.loaded = true;
        self.loading = false;
        let changed = if first_load {
            self.keys.shrink_to_fit();
            true
        } else if incremental {
            let changes = std::mem::take(&mut self.staging);
            self.merge_changes(changes)
        } else {
            self.keys = std::mem::take(&mut self.staging);
            true
        };
        if changed {
            self.shown_expiries = self.next_expiry(self.now);
            self.rebuild_rows();
        }
    }

    /// Puts keys written since the last load into the list (by id, new ones
    /// first); whether any of them differs from what is shown.
    fn merge_changes(&mut self, changes: Vec<ApiKey>) -> bool {
        if changes.is_empty() {
            return false;
        }
        let mut by_id: std::collections::HashMap<String, ApiKey> =
            changes.into_iter().map(|k| (k.id.clone(), k)).collect();
        let mut changed = false;
        for existing in &mut self.keys {
            if let Some(mut key) = by_id.remove(&existing.id) {
                // The status is derived here, as of now; the service's copy of
                // it is not something that changed.
                key.status = existing.status;
                if *existing != key {
                    *existing = key;
                    changed = true;
                }
            }
            if by_id.is_empty() {
                break;
            }
        }
        if !by_id.is_empty() {
            let mut new: Vec<ApiKey> = by_id.into_values().collect();
            new.sort_by_key(|k| std::cmp::Reverse(k.created_at));
            self.keys.splice(0..0, new);
            changed = true;
        }
        changed
    }

    /// Recomputes the visible rows (tab, filter, sort) and keeps the same key selected.
    pub fn rebuild_rows(&mut self) {
        let needle = self.filter.value().to_lowercase();
        let mut rows: Vec<usize> = (0..self.keys.len())
            .filter(|&i| {
                let k = &self.keys[i];
                self.tab.admits(self.status_of(k), self.badges_of(k))
                    && (needle.is_empty() || matches_filter(k, &needle))
            })
            .collect();
        let keys = &self.keys;
        let now = self.now;
        match self.sort {
            _ if self.tab == Tab::Attention => {
                health::sort_attention(&mut rows, keys, &self.policy, now)
            }
            SortBy::Created => rows.sort_by(|&a, &b| keys[b].created_at.cmp(&keys[a].created_at)),
            SortBy::Name => rows.sort_by_cached_key(|&i| keys[i].name.to_lowercase()),
            SortBy::LastUsed => {
                rows.sort_by(|&a, &b| keys[b].last_used_at.cmp(&keys[a].last_used_at))
            }
            SortBy::Expires => {
                rows.sort_by_key(|&i| (keys[i].expires_at.is_none(), keys[i].expires_at))
            }
            SortBy::Status => rows.sort_by_key(|&i| {
                KeyStatus::derive(keys[i].revoked_at, keys[i].expires_at, now) as u8
            }),
        }
        if self.sort_reversed {
            rows.reverse();
        }
        self.rows = rows;
        self.summary = Summary::of(&self.keys, &self.policy, now);
        self.counts = self.count_tabs();
        self.selected = self
            .selected_id
            .as_ref()
            .and_then(|id| self.rows.iter().position(|&i| &self.keys[i].id == id))
            .unwrap_or(self.selected.min(self.rows.len().saturating_sub(1)));
        self.remember_selection();
        self.keep_selection_visible();
        self.dirty = true;
    }

    fn remember_selection(&mut self) {
        self.selected_id = self.selected_key().map(|k| k.id.clone());
    }

    fn keep_selection_visible(&mut self) {
        let page = self.page_rows();
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
        self.offset = self.offset.min(self.rows.len().saturating_sub(page));
    }

    pub(super) fn select(&mut self, index: usize) {
        self.selected = index.min(self.rows.len().saturating_sub(1));
        self.remember_selection();
        self.keep_selection_visible();
        self.dirty = true;
    }

    /// Which screen or dialog has the keys now.
    pub fn context(&self) -> Context {
        match self.popups.last() {
            None if self.filtering => Context::Filter,
            None => Context::Table,
            Some(Popup::Details(_)) => Context::Details,
            Some(Popup::Help(_)) => Context::Help,
            Some(Popup::Create(_)) => Context::Create,
            Some(Popup::CopyOnce(_)) => Context::CopyOnce,
            Some(Popup::Audit(_)) => Context::Audit,
            Some(Popup::Confirm(dialog)) => dialog.context(),
        }
    }

    fn on_key(&mut self, key: KeyEvent) {
        let command = keymap::command(self.context(), &key);
        if command == Some(Command::Quit) && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.request_quit();
            return;
        }
        // Nearly every key changes what is on screen; redraw after each.
        self.dirty = true;
        self.flash = None;
        if !self.popups.is_empty() {
            self.on_popup_key(command, key);
            return;
        }
        if self.filtering {
            self.on_filter_key(command, key);
            return;
        }
        if let Some(command) = command {
            self.on_table_command(command);
        }
    }

    /// Puts a key as the service now has it into the list (new or changed).
    pub(super) fn upsert_key(&mut self, key: ApiKey, select: bool) {
        if select {
            self.selected_id = Some(key.id.clone());
        }
        match self.keys.iter_mut().find(|k| k.id == key.id) {
            Some(existing) => *existing = key,
            None => self.keys.insert(0, key),
        }
        self.rebuild_rows();
    }
}

/// What a failed request means for the admin, in one line.
pub fn banner_message(error: &ClientError, source: &str) -> String {
    match error {
        ClientError::Unreachable(_) => format!(
            "Cannot reach the key service at {source}. Retrying by itself; check that it is running."
        ),
        ClientError::Timeout => format!(
            "The key service at {source} did not answer in time. Retrying by itself; check its load and the network."
        ),
        ClientError::Unauthorized(_) => "The access token was refused (401). Set KEYDECK_TOKEN or run `keydeck login`, then restart.".into(),
        ClientError::PlanRequired(_) => "API keys are available on the Paid plan only. Ask your organisation's owner to upgrade.".into(),
        ClientError::Forbidden(_) => "Only organisation admins can manage API keys (403). Ask an admin for the admin role.".into(),
        ClientError::RateLimited(m) => format!("{m} (429)"),
        other => format!("The key service answered with an error: {other}. Press r to retry."),
    }
}
