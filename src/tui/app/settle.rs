//! Requests out and answers in: each request gets an id, and its answer is
//! settled here, in one place, and routed to what asked for it (a page of
//! keys, the scopes, the policy, the audit log, a change to a key).

use chrono::Duration;

use super::state::{App, Banner, PAGE_SIZE};
use crate::api::ApiKey;
use crate::client::ClientError;
use crate::key::policy::Policy;
use crate::tui::action::{Answer, Effect, Request, RequestId, LOAD_RETRY};
use crate::tui::keymap::{self, Command, Context};
use crate::tui::message::banner_message;
use crate::tui::popup::policy::save_problem;
use crate::tui::popup::{PolicyEditor, Popup};

impl App {
    /// Starts loading the keys: every key the first time (or from a service
    /// without change cursors), afterwards only those written since the last
    /// load. Nothing is drawn for a refresh until its answer changes something.
    pub fn refresh(&mut self) {
        if self.window.is_some() {
            self.refresh_window();
            return;
        }
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
        let limit = self.page_limit();
        self.request(Request::LoadPage {
            generation: self.generation,
            cursor: None,
            changed_since,
            limit,
        });
    }

    /// Keys asked for per page of a load: a first load asks for no more
    /// than one key past the capacity, which tells it to become a window.
    fn page_limit(&self) -> u32 {
        if self.loaded {
            return PAGE_SIZE;
        }
        let room = (self.capacity + 1).saturating_sub(self.keys.len());
        u32::try_from(room).unwrap_or(PAGE_SIZE).clamp(1, PAGE_SIZE)
    }

    /// The first load: every key, the scope catalogue, and the policy beside
    /// them (its badges show on the first frame with keys).
    pub fn start(&mut self) {
        self.now = self.clock.now();
        self.refresh();
        self.request(Request::LoadScopes);
        self.policy_awaited = true;
        self.request(Request::LoadPolicy);
    }

    /// Sends a request; [`App::settle`] takes its answer.
    pub(super) fn request(&mut self, request: Request) {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.pending.insert(id, request.clone());
        self.effects.push(Effect::Send(id, request));
    }

    /// Stops the requests out that `unwanted` picks (never a change to a
    /// key or the policy): they are no longer pending, and the runner drops
    /// them, so the service stops their work.
    pub(super) fn cancel_requests(&mut self, unwanted: impl Fn(&Request) -> bool) {
        let ids: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, r)| !r.is_change() && unwanted(r))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.pending.remove(&id);
            self.effects.push(Effect::Cancel(id));
        }
    }

    /// Asks the runner for local work (the clipboard).
    pub(super) fn local(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether request `id` is out and changes a key or the policy.
    pub fn is_change(&self, id: RequestId) -> bool {
        self.pending.get(&id).is_some_and(Request::is_change)
    }

    /// Creates, revokes and rotations sent and not yet answered.
    pub fn mutations(&self) -> usize {
        self.pending.values().filter(|r| r.changes_keys()).count()
    }

    /// The policy the policy screen sent, while its answer is on its way
    /// (whether or not the screen is still open).
    pub fn policy_saving(&self) -> Option<Policy> {
        self.pending.values().find_map(|r| match r {
            Request::SetPolicy(policy) => Some(*policy),
            _ => None,
        })
    }

    /// `q` / Ctrl-C: quits, unless a change to a key or a policy save is
    /// still on its way; then it waits for the answer (a second press quits
    /// at once). A policy not saved after all stops the quit and says why.
    pub fn request_quit(&mut self) {
        let saving = self.policy_saving().is_some();
        if (self.mutations() == 0 && !saving) || self.quit_pending {
            self.should_quit = true;
            return;
        }
        self.quit_pending = true;
        let q = keymap::hint_for(Context::Table, Command::Quit).map_or("q", |(keys, _)| keys);
        self.flash = Some(if saving {
            format!("Saving the policy: keydeck quits once it is saved ({q} again: quit now).")
        } else {
            format!(
                "A change to a key is still being sent; keydeck quits when it is done ({q} again: quit now)."
            )
        });
    }

    /// An answer to a create, revoke, rotate or policy save arrived (after
    /// it was applied).
    pub(super) fn mutation_done(&mut self) {
        if self.mutations() > 0 || self.policy_saving().is_some() || !self.quit_pending {
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

    /// The answer to request `id`: the one place a request is settled, and
    /// routed to what asked for it.
    pub(super) fn settle(&mut self, id: RequestId, answer: Answer) {
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
            Answer::Window(result) => {
                if let Request::LoadWindow {
                    generation, fetch, ..
                } = request
                {
                    if self.current_window(generation) {
                        self.on_window_page(fetch, result);
                    }
                }
            }
            Answer::Counts(result) => {
                if let Request::LoadCounts { generation, q } = &request {
                    if self.current_counts(*generation, q.is_none()) {
                        self.on_counts(q.clone(), result);
                    }
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
            Answer::PolicySet(result) => {
                self.dirty = true;
                if let Request::SetPolicy(sent) = &request {
                    self.on_policy_set(*sent, result);
                }
            }
            Answer::Created(result) => {
                self.dirty = true;
                self.on_created(*result);
            }
            Answer::Revoked(result) => {
                self.dirty = true;
                let id = match &request {
                    Request::RevokeKey { id } => id.as_str(),
                    _ => "",
                };
                self.on_revoked(id, *result);
            }
            Answer::Rotated(result) => {
                self.dirty = true;
                self.on_rotated(*result);
            }
            Answer::Issued(result) => {
                self.dirty = true;
                self.on_issued(*result);
            }
            Answer::OrgUsage(result) => {
                self.dirty = true;
                if let Request::LoadOrgUsage { window } = &request {
                    self.on_org_usage(*window, &result);
                }
            }
            Answer::KeyUsage(result) => {
                self.dirty = true;
                if let Request::LoadKeyUsage { id, window } = &request {
                    self.on_key_usage(id, *window, &result);
                }
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
            Answer::Webhooks(answer) => {
                self.dirty = true;
                let source = self.source.clone();
                let screen = self.popups.iter_mut().rev().find_map(|p| match p {
                    Popup::Webhooks(view) => Some(view),
                    _ => None,
                });
                if let Some(view) = screen {
                    let intent = view.answered(answer, &source);
                    self.apply(intent);
                }
            }
        }
        if request.is_change() {
            self.mutation_done();
        }
    }

    /// The policy as the service has it now; one it cannot send (an older
    /// service, a failure) leaves the last one known.
    fn on_policy(&mut self, result: Result<Policy, ClientError>) {
        let awaited = std::mem::take(&mut self.policy_awaited);
        match result {
            Ok(policy) => {
                if awaited {
                    // The first page's tag says whether this is still the
                    // policy in force, so it is not read twice.
                    self.policy_tag = Some(policy.tag());
                }
                self.use_policy(policy);
            }
            // Asked again on the next refresh.
            Err(_) => self.policy_tag = None,
        }
        if let Some((generation, page)) = self.held_page.take() {
            // A page of a load that a newer one replaced is dropped.
            if generation == self.generation {
                self.on_page(Ok(page));
            }
        }
    }

    /// Puts `policy` in force here: badges, the summary line, the Attention
    /// tab and an open create form follow it.
    fn use_policy(&mut self, policy: Policy) {
        if policy != self.policy {
            self.dirty = true;
            // Badges, the summary line and the Attention tab follow the thresholds.
            self.set_policy(policy);
        }
        match self.popups.last_mut() {
            Some(Popup::Create(form)) if form.policy != policy && !form.submitting => {
                self.dirty = true;
                form.set_policy(policy);
            }
            Some(Popup::Policy(editor)) if editor.current != policy => {
                self.dirty = true;
                editor.reloaded(policy);
            }
            _ => {}
        }
    }

    /// The policy screen's save answered: saved, the policy is in force at
    /// once (badges, summary line, Attention) and the keys are read again
    /// (a window's badges come from the service); refused, the screen says
    /// why and nothing changed. The screen closed meanwhile: saved, the
    /// status line says so; not saved, the screen opens again with what was
    /// sent and why it was not saved (the status line says it alone when
    /// another screen is open). A quit waiting for the save does not happen
    /// if it failed, so that the admin learns the policy did not change.
    fn on_policy_set(&mut self, sent: Policy, result: Result<Policy, ClientError>) {
        // Nothing else open: a save that did not happen opens its screen again.
        let nothing_open = self.popups.is_empty();
        let editor = self.popups.iter_mut().rev().find_map(|p| match p {
            Popup::Policy(editor) => Some(editor),
            _ => None,
        });
        match result {
            Ok(policy) => {
                if editor.is_some() {
                    self.popups.retain(|p| !matches!(p, Popup::Policy(_)));
                }
                // A read of the policy still out may have read it before the
                // save: its answer would put the old one back.
                if !self.policy_awaited {
                    self.cancel_requests(|r| matches!(r, Request::LoadPolicy));
                }
                self.set_policy(policy);
                self.flash = Some("Policy saved: badges and new keys follow it.".into());
                self.refreshing.get_or_insert(self.now);
                if !self.loading {
                    self.refresh();
                }
            }
            Err(e) => {
                let quitting = std::mem::take(&mut self.quit_pending);
                match editor {
                    Some(editor) => {
                        editor.failed(e, &self.source);
                        if quitting {
                            self.flash = Some(
                                "Not quitting: the policy was not saved (see why above).".into(),
                            );
                        }
                    }
                    None if nothing_open => {
                        let mut editor = PolicyEditor::sending(self.policy, sent);
                        editor.failed(e, &self.source);
                        self.popups.push(Popup::Policy(Box::new(editor)));
                        self.flash = Some(if quitting {
                            "Not quitting: the policy was not saved (see why above).".into()
                        } else {
                            "Policy not saved: see why above.".into()
                        });
                    }
                    None => {
                        let why = save_problem(&e, &self.source);
                        self.flash = Some(if quitting {
                            format!("Not quitting: the policy was not saved: {why}")
                        } else {
                            format!("Policy not saved: {why}")
                        });
                    }
                }
            }
        }
    }

    fn on_page(&mut self, result: Result<crate::api::KeyList, ClientError>) {
        match result {
            Ok(page) if self.policy_awaited && !self.loaded => {
                // Shown with the policy's badges once it is in.
                self.held_page = Some((self.generation, page));
            }
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
                if first_load && self.keys.len() > self.capacity {
                    self.enter_window();
                    return;
                }
                match page.next_cursor {
                    Some(cursor) => {
                        if first_load {
                            self.rebuild_rows();
                        }
                        let changed_since = self.sync_cursor.clone().filter(|_| !first_load);
                        let limit = self.page_limit();
                        self.request(Request::LoadPage {
                            generation: self.generation,
                            cursor: Some(cursor),
                            changed_since,
                            limit,
                        });
                    }
                    None => self.load_done(first_load),
                }
                return;
            }
            Err(error) => {
                self.loading = false;
                // The banner says why; the title says how old what shows is.
                self.refreshing = None;
                self.failures += 1;
                let retry_at = LOAD_RETRY
                    .delay(&error, self.failures)
                    .map(|d| self.now + Duration::from_std(d).unwrap_or(Duration::seconds(8)));
                self.banner = Some(Banner {
                    message: banner_message(
                        &error,
                        &self.source,
                        Some((Context::Table, Command::Refresh)),
                    ),
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
        self.updated_at = Some(self.now);
        self.asked_refresh = self.refreshing.take().is_some();
        // An automatic refresh that changes nothing draws nothing.
        if self.asked_refresh {
            self.dirty = true;
        }
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
        if self.keys.len() > self.capacity {
            // The organisation outgrew what the UI holds.
            self.enter_window();
            return;
        }
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
}
