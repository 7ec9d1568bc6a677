//! The table's rows: the filter's match, and the visible rows rebuilt from
//! the tab and sort order (tabs.rs), with the selection kept on the same key
//! and on screen.

use crate::api::{ApiKey, ScopeInfo};
use crate::key::health::{self, Summary};
use crate::key::KeyStatus;
use crate::present;

use super::state::App;
use super::tabs::{SortBy, Tab};

/// Whether a key matches the (lower-cased) filter text (`/`): its name,
/// prefix or description, or one of its scopes by the name the table shows
/// (`Sessions:R`), its label (`Sessions (Read)`) or its id (`sessions:read`).
fn matches_filter(k: &ApiKey, needle: &str, catalogue: &[ScopeInfo]) -> bool {
    k.name.to_lowercase().contains(needle)
        || k.prefix.to_lowercase().contains(needle)
        || k.description.to_lowercase().contains(needle)
        || k.scopes.iter().any(|id| {
            id.contains(needle)
                || present::scope_name(id, catalogue)
                    .to_lowercase()
                    .contains(needle)
                || present::scope_label(id, catalogue)
                    .to_lowercase()
                    .contains(needle)
        })
}

impl App {
    /// Recomputes the visible rows (tab, filter, sort) and keeps the same key selected.
    pub fn rebuild_rows(&mut self) {
        if self.window.is_some() {
            self.rebuild_window_rows();
            return;
        }
        let needle = self.filter.value().to_lowercase();
        let in_tab: Vec<usize> = (0..self.keys.len())
            .filter(|&i| {
                let k = &self.keys[i];
                self.tab.admits(self.status_of(k), self.badges_of(k))
            })
            .collect();
        self.tab_total = in_tab.len();
        let mut rows: Vec<usize> = in_tab
            .into_iter()
            .filter(|&i| needle.is_empty() || matches_filter(&self.keys[i], &needle, &self.scopes))
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

    /// The marked keys among the rows shown, in their order: what `d`
    /// revokes. A mark the filter hides stays, untouched, until it shows again.
    pub fn marked_shown(&self) -> Vec<&ApiKey> {
        if self.marked.is_empty() {
            return Vec::new();
        }
        if self.window.is_some() {
            // Marks may lie outside the window: the marked keys the tab and
            // the filter show, as the service last sent them. Those held
            // come in the table's order (the window's rows are the keys
            // held, in order), then those not held, by id.
            let needle = self.filter.value().to_lowercase();
            let held: Vec<&ApiKey> = self
                .keys
                .iter()
                .filter(|k| self.marked.contains(&k.id))
                .collect();
            let held_ids: std::collections::BTreeSet<&str> =
                held.iter().map(|k| k.id.as_str()).collect();
            let not_held = self
                .marked
                .iter()
                .filter(|id| !held_ids.contains(id.as_str()))
                .filter_map(|id| self.mark_cache.get(id));
            return held
                .into_iter()
                .chain(not_held)
                .filter(|k| self.tab.admits(self.status_of(k), self.badges_of(k)))
                .filter(|k| needle.is_empty() || matches_filter(k, &needle, &self.scopes))
                .collect();
        }
        self.rows
            .iter()
            .map(|&i| &self.keys[i])
            .filter(|k| self.marked.contains(&k.id))
            .collect()
    }

    /// Unmarks every key (`Esc`, a tab switch), saying so if any was marked.
    pub(super) fn clear_marks(&mut self, why: &str) {
        if self.marked.is_empty() {
            return;
        }
        let n = self.marked.len();
        self.marked.clear();
        self.mark_cache.clear();
        self.flash = Some(format!(
            "{} unmarked{why}.",
            if n == 1 {
                "1 key".to_owned()
            } else {
                format!("{n} keys")
            }
        ));
        self.dirty = true;
    }

    /// Shows `tab`; a switch to another tab unmarks every key, so `d` never
    /// acts on keys of a tab that is not on screen.
    pub(super) fn show_tab(&mut self, tab: Tab) {
        if tab != self.tab {
            self.clear_marks(" (marks stay on their tab)");
        }
        self.tab = tab;
        self.query_changed();
    }

    pub(super) fn remember_selection(&mut self) {
        self.selected_id = self.selected_key().map(|k| k.id.clone());
    }

    pub(super) fn keep_selection_visible(&mut self) {
        let page = self.page_rows();
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
        self.offset = self.offset.min(self.row_count().saturating_sub(page));
        if self.window.is_some() {
            self.ensure_window();
        }
    }

    pub(in crate::tui) fn select(&mut self, index: usize) {
        self.selected = index.min(self.row_count().saturating_sub(1));
        self.remember_selection();
        self.keep_selection_visible();
        self.dirty = true;
    }

    /// Keys per tab; under a filter, of the keys it lets through.
    pub(super) fn count_tabs(&self) -> [usize; 5] {
        let needle = self.filter.value().to_lowercase();
        if !needle.is_empty() {
            let mut counts = [0; 5];
            let shown = self
                .keys
                .iter()
                .filter(|k| matches_filter(k, &needle, &self.scopes));
            for k in shown {
                for (i, tab) in Tab::ALL.iter().enumerate() {
                    counts[i] += usize::from(tab.admits(self.status_of(k), self.badges_of(k)));
                }
            }
            return counts;
        }
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
}
