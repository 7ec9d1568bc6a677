//! The UI's state: [`App`] and what it reads out of itself (statuses,
//! badges, rows on screen, when to wake up). It changes only in `update`
//! (update.rs), `settle` (settle.rs) and the steps they call.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tui_input::Input;

use super::tabs::{SortBy, Tab};
use crate::api::{ApiKey, ScopeInfo};
use crate::clock::Clock;
use crate::key::health::{self, Summary};
use crate::key::policy::Policy;
use crate::key::{KeyStatus, SCOPES};
use crate::present::DisplayTz;
use crate::tui::action::{Effect, Request, RequestId};
use crate::tui::keymap::Context;
use crate::tui::popup::{Ctx, Popup};
use crate::tui::theme::{Palette, Styles, Theme};

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

/// A bulk revoke on its way: the keys not answered yet, and how the
/// answers so far went.
#[derive(Debug, Clone, Default)]
pub(super) struct RevokeBatch {
    /// Ids of the keys whose answer is still out.
    pub waiting: std::collections::BTreeSet<String>,
    pub revoked: usize,
    pub failed: usize,
    /// The first failure's message, for the status line.
    pub first_error: Option<String>,
}

pub struct App {
    pub(in crate::tui) clock: Arc<dyn Clock>,
    /// The time as of the last update: everything drawn is as of this instant,
    /// so drawing never reads the clock.
    pub(in crate::tui) now: DateTime<Utc>,
    pub(in crate::tui) theme: Styles,
    pub(super) tz: DisplayTz,
    /// Where the keys come from, for the title bar.
    pub(in crate::tui) source: String,
    pub(super) width: u16,
    pub(super) height: u16,
    /// Every key of the organisation, as last loaded.
    pub(in crate::tui) keys: Vec<ApiKey>,
    /// Indices into `keys` that the table shows, in order.
    pub(in crate::tui) rows: Vec<usize>,
    /// Keys per tab (All, Active, Expired, Revoked, Attention) that the
    /// filter lets through, kept with `rows`.
    pub(super) counts: [usize; 5],
    /// Keys the tab shows without the filter: the title's `8 of 12`.
    pub(super) tab_total: usize,
    /// The summary line's counts over all keys, kept with `rows`.
    pub(super) summary: Summary,
    /// The selected row, followed by id across refreshes and re-sorts.
    pub(super) selected_id: Option<String>,
    pub(in crate::tui) selected: usize,
    /// The first row on screen.
    pub(in crate::tui) offset: usize,
    pub(in crate::tui) tab: Tab,
    pub(in crate::tui) filter: Input,
    pub(in crate::tui) filtering: bool,
    pub(in crate::tui) sort: SortBy,
    pub(in crate::tui) sort_reversed: bool,
    /// Popups, the active one last (a confirmation can sit on a form).
    pub(in crate::tui) popups: Vec<Popup>,
    pub(in crate::tui) banner: Option<Banner>,
    /// A short note about what just happened ("Revoked …"), until the next key.
    pub(in crate::tui) flash: Option<String>,
    /// A bulk revoke (`X`, or `d` on marked keys) whose answers are still
    /// coming: the status line sums it up once the last one is in.
    pub(super) revoking: Option<RevokeBatch>,
    /// Keys marked with Space, for bulk revoke.
    pub(in crate::tui) marked: std::collections::BTreeSet<String>,
    /// The scope catalogue, from the service once loaded.
    pub(in crate::tui) scopes: Vec<ScopeInfo>,
    /// The organisation's key policy, loaded with the keys; the default
    /// (no rule, the page's thresholds) until then or if it cannot be read.
    pub policy: Policy,
    /// The first load has finished.
    pub(in crate::tui) loaded: bool,
    pub(in crate::tui) loading: bool,
    pub(super) refresh_every: Duration,
    pub(super) next_refresh: DateTime<Utc>,
    /// When the last load finished: the title says how old the data is.
    pub(in crate::tui) updated_at: Option<DateTime<Utc>>,
    /// When `r` was pressed, while its load has not finished (`refreshing…`).
    pub(in crate::tui) refreshing: Option<DateTime<Utc>>,
    /// The last load was asked for with `r`: its `updated just now` shows,
    /// where an automatic one stays quiet until the data is 5 s old.
    pub(in crate::tui) asked_refresh: bool,
    pub(super) should_quit: bool,
    /// Something on screen changed since the last draw.
    pub(super) dirty: bool,
    /// Requests sent and not yet answered, by id.
    pub(super) pending: BTreeMap<RequestId, Request>,
    pub(super) next_request: u64,
    /// Quit was asked for while changes to keys were out.
    pub(super) quit_pending: bool,
    pub(super) generation: u64,
    /// The pages of a load in progress, until its last page (a first load
    /// shows its pages as they come instead).
    pub(super) staging: Vec<ApiKey>,
    /// The service's cursor of the last finished load: a refresh asks only
    /// for the keys written since (`changed_since`).
    pub(super) sync_cursor: Option<String>,
    /// The cursor of the load in progress (from its first page).
    pub(super) sync_next: Option<String>,
    /// The `policy_tag` of the policy last asked for: a refresh re-reads the
    /// policy only when the key list's tag differs.
    pub(super) policy_tag: Option<String>,
    /// The policy asked for at start (beside the first page) has not
    /// answered yet: the first load's keys wait for it (`held_page`), so
    /// that the first frame with keys already has the policy's badges.
    pub(super) policy_awaited: bool,
    /// The first page of the first load (and its load's generation), held
    /// while the policy is awaited.
    pub(super) held_page: Option<(u64, crate::api::KeyList)>,
    pub(super) failures: u32,
    /// The next expiry the rows were built for: once it passes, statuses,
    /// tab counts and rows change.
    pub(super) shown_expiries: Option<DateTime<Utc>>,
    pub(super) effects: Vec<Effect>,
    /// The most keys held at once; an organisation with more is a window.
    pub(super) capacity: usize,
    /// Window mode (window.rs): the table is a window over the service.
    pub(super) window: Option<super::held::Window>,
    /// In window mode, the marked keys as they were when marked: a mark
    /// stays when its row leaves the window, and `d` still revokes it.
    pub(super) mark_cache: BTreeMap<String, ApiKey>,
    /// Told the most keys this app ever held (see [`App::report_held_to`]).
    pub(super) held_peak: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
    /// What the table's columns needed (name, prefix, scopes, health) on
    /// the last frame drawn without a filter: while a filter is set the
    /// widths stay these, so they do not jump with each keystroke. Written
    /// by the table as it draws.
    pub(in crate::tui) width_basis: WidthBasis,
}

/// Four column widths kept across frames that the view writes while it
/// draws from a shared `&App` (one atomic, so the app stays `Sync` for the
/// SSH sessions' tasks); none until the first frame.
#[derive(Debug)]
pub struct WidthBasis(std::sync::atomic::AtomicU64);

impl Default for WidthBasis {
    fn default() -> Self {
        Self(std::sync::atomic::AtomicU64::new(u64::MAX))
    }
}

impl WidthBasis {
    pub fn get(&self) -> Option<[u16; 4]> {
        let v = self.0.load(std::sync::atomic::Ordering::Relaxed);
        (v != u64::MAX).then(|| [0, 16, 32, 48].map(|s| (v >> s) as u16))
    }

    pub fn set(&self, widths: [u16; 4]) {
        let v = widths
            .iter()
            .zip([0, 16, 32, 48])
            .fold(0u64, |v, (w, s)| v | (u64::from(*w) << s));
        self.0.store(v, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How long `r`'s load runs before the title says `refreshing…`.
const SHOW_REFRESHING_AFTER: Duration = Duration::milliseconds(200);
/// The steps, in seconds, of the title's `updated 15s ago` under a minute:
/// the runner's own rhythm (it wakes at least every 15 s).
const FRESHNESS_STEP: i64 = 15;

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
            tab_total: 0,
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
            revoking: None,
            marked: Default::default(),
            scopes: SCOPES.iter().map(Into::into).collect(),
            policy: Policy::default(),
            loaded: false,
            loading: false,
            refresh_every: Duration::seconds(30),
            next_refresh: now,
            updated_at: None,
            refreshing: None,
            asked_refresh: false,
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
            policy_awaited: false,
            held_page: None,
            failures: 0,
            shown_expiries: None,
            effects: Vec::new(),
            capacity: super::held::DEFAULT_CAPACITY,
            window: None,
            mark_cache: BTreeMap::new(),
            held_peak: None,
            width_basis: WidthBasis::default(),
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
        self.theme = Styles::new(self.theme.theme(), palette);
        self.dirty = true;
    }

    /// A note on the status line until the next key: what the session
    /// asked for and did not get (an SSH `KEYDECK_THEME` that is no theme).
    pub fn note(&mut self, text: String) {
        self.flash = Some(text);
        self.dirty = true;
    }

    /// Rows the summary line takes: one once there are keys to sum up.
    pub fn summary_rows(&self) -> u16 {
        u16::from(self.loaded && self.key_total() > 0)
    }

    /// A new organisation policy: badges, the summary line and the Attention
    /// tab follow it at once.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
        self.rebuild_rows();
    }

    /// The summary line's counts over all keys, as of the last rebuild of the rows.
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// The health badges of a key as of the last update, under the policy.
    /// In window mode, the service's badges (sent with each key).
    pub fn badges_of(&self, key: &ApiKey) -> health::Badges {
        if let (Some(_), Some(ids)) = (&self.window, &key.health) {
            return ids
                .iter()
                .filter_map(|id| health::Badge::from_id(id))
                .collect();
        }
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
        self.key_at(self.selected)
    }

    pub fn key_by_id(&self, id: &str) -> Option<&ApiKey> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .or_else(|| self.mark_cache.get(id))
    }

    /// The zone exact times are shown in.
    pub fn tz(&self) -> DisplayTz {
        self.tz
    }

    /// Rows the error banner takes at the current width (it wraps, up to 3).
    pub fn banner_rows(&self) -> u16 {
        self.banner.as_ref().map_or(0, |b| {
            let len = b.message.chars().count() + 3;
            let width = usize::from(self.width.max(1));
            u16::try_from(len.div_ceil(width).min(3)).unwrap_or(3)
        })
    }

    /// Rows the table has room for.
    pub fn page_rows(&self) -> usize {
        // A status message sits over the table's last row: it never moves the table.
        let banner = self.banner_rows();
        let filter = u16::from(self.filtering || !self.filter.value().is_empty());
        let chrome = CHROME_ROWS + self.summary_rows();
        usize::from(self.height.saturating_sub(chrome + banner + filter)).max(1)
    }

    /// How many keys each tab shows (under the filter, if one is set), as
    /// of the last rebuild of the rows.
    pub fn tab_counts(&self) -> [usize; 5] {
        self.counts
    }

    /// How many keys the tab would show without the filter.
    pub fn tab_total(&self) -> usize {
        self.tab_total
    }

    /// When the runner should send the next `Tick`.
    pub fn next_wakeup(&self) -> DateTime<Utc> {
        let now = self.now;
        // Relative times ("3 min ago") stay true to the minute.
        let mut at = now + Duration::seconds(15);
        at = at.min(self.next_refresh);
        if let Some(next) = self.freshness_changes() {
            at = at.min(next);
        }
        if let Some(retry) = self.banner.as_ref().and_then(|b| b.retry_at) {
            at = at.min(retry);
        }
        if let Some(expiry) = self.next_expiry(now) {
            at = at.min(expiry);
        }
        at.max(now)
    }

    /// How old the data is, for the title: `refreshing…` once `r`'s load
    /// has been out [`SHOW_REFRESHING_AFTER`] (a quicker answer shows only
    /// its `updated just now`: an unchanged refresh draws next to nothing),
    /// `updated just now` (shown only after `r`), `updated 15s ago` in
    /// steps of [`FRESHNESS_STEP`] under a minute, then as
    /// [`present::relative`](crate::present::relative) words it.
    pub fn freshness(&self) -> Option<String> {
        if self
            .refreshing
            .is_some_and(|since| self.now - since >= SHOW_REFRESHING_AFTER)
        {
            return Some("refreshing…".into());
        }
        let updated = self.updated_at?;
        let (age, step) = ((self.now - updated).num_seconds().max(0), FRESHNESS_STEP);
        Some(match age {
            _ if age < step && self.asked_refresh => "updated just now".into(),
            _ if age < step => return None,
            0..=59 => format!("updated {}s ago", age - age % step),
            _ => format!("updated {}", crate::present::relative(updated, self.now)),
        })
    }

    /// When [`App::freshness`] next reads differently (`refreshing…`, the
    /// next step under a minute), so the runner wakes up to redraw it. The
    /// steps are as long as the runner's own rhythm, so they add no wake-ups
    /// of their own once the UI idles.
    fn freshness_changes(&self) -> Option<DateTime<Utc>> {
        if let Some(since) = self.refreshing.map(|s| s + SHOW_REFRESHING_AFTER) {
            if since > self.now {
                return Some(since);
            }
        }
        let updated = self.updated_at?;
        let age = (self.now - updated).num_seconds().max(0);
        (age < 60).then(|| updated + Duration::seconds(age - age % FRESHNESS_STEP + FRESHNESS_STEP))
    }

    pub(super) fn next_expiry(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.keys
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .filter_map(|k| k.expires_at)
            .filter(|e| *e > now)
            .min()
    }

    /// Whether the screen is too small for anything but the size notice.
    pub fn too_small(&self) -> bool {
        self.width < crate::tui::view::MIN_WIDTH || self.height < crate::tui::view::MIN_HEIGHT
    }

    /// Which screen or dialog has the keys now.
    pub fn context(&self) -> Context {
        match self.popups.last() {
            None if self.filtering => Context::Filter,
            None => Context::Table,
            Some(popup) => popup.context(),
        }
    }

    /// What a popup may read while it draws: the state as of [`App::now`].
    pub fn popup_ctx(&self) -> Ctx<'_> {
        Ctx {
            theme: &self.theme,
            now: self.now,
            tz: self.tz,
            policy: &self.policy,
            scopes: &self.scopes,
            keys: &self.keys,
            refresh_every: self.refresh_every,
        }
    }
}
