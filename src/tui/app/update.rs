//! `update`: the one place an action comes in. Keys go to the popup on top,
//! the filter line or the table; what a popup asks for comes back as an
//! [`Intent`] and is carried out in [`App::apply`], once.

use crossterm::event::{KeyEvent, KeyEventKind, KeyModifiers};
use tui_input::backend::crossterm::EventHandler;

use super::state::App;
use super::tabs::{SortBy, Tab};
use crate::tui::action::{Action, Effect, Request, WebhookOp};
use crate::tui::keymap::{self, Command};
use crate::tui::popup::{
    revoke, rotate, AuditView, CommandPalette, CreateForm, DetailsView, Intent, PolicyEditor,
    Popup, Then, WebhooksView,
};

/// What a sort key says on the Attention tab.
pub(crate) const ATTENTION_ORDER: &str =
    "Attention is ordered worst first, not by a column; s sorts the other tabs.";

impl App {
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
            Action::Paste(_) if self.too_small() => {
                self.dirty = true;
                self.flash = Some(
                    "Paste ignored: the terminal is too small to show where it would go.".into(),
                );
            }
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
        if let Some(peak) = &self.held_peak {
            peak.fetch_max(self.held(), std::sync::atomic::Ordering::Relaxed);
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
        if self.too_small() {
            self.on_key_unseen(key);
            return;
        }
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

    /// A key while "Terminal too small" hides everything: nothing is acted
    /// on blind. Only the table's quit key `q` (and Ctrl-C, above) do
    /// anything: they quit, but `q` not while a new secret waits to be
    /// copied, since that would lose it.
    fn on_key_unseen(&mut self, key: KeyEvent) {
        // The table's quit key, whatever is on top.
        let q = keymap::command(keymap::Context::Table, &key) == Some(Command::Quit);
        if q && !matches!(self.popups.last(), Some(Popup::CopyOnce(_))) {
            self.request_quit();
            return;
        }
        self.flash = Some(if q {
            "Not quitting: the new secret is not copied yet (Ctrl-C quits anyway).".into()
        } else {
            "Key ignored: the terminal is too small to show what it would do.".into()
        });
    }

    pub(super) fn on_table_command(&mut self, command: Command) {
        let page = self.page_rows();
        match command {
            // Attention has one order; say so rather than ignore the key.
            Command::SortNext | Command::SortReverse | Command::SortBy(_)
                if self.tab == Tab::Attention =>
            {
                self.flash = Some(ATTENTION_ORDER.into());
            }
            Command::Quit => self.request_quit(),
            Command::Down => self.select(self.selected + 1),
            Command::Up => self.select(self.selected.saturating_sub(1)),
            Command::PageDown => self.select(self.selected + page),
            Command::PageUp => self.select(self.selected.saturating_sub(page)),
            Command::First if self.window.is_some() => self.window_first(),
            Command::Last if self.window.is_some() => self.window_last(),
            Command::First => self.select(0),
            Command::Last => self.select(self.rows.len().saturating_sub(1)),
            Command::Details => {
                if let Some(k) = self.selected_key() {
                    let id = k.id.clone();
                    self.popups
                        .push(Popup::Details(Box::new(DetailsView::new(id.clone()))));
                    self.request_usage(id);
                }
            }
            Command::Help => self.popups.push(Popup::Help(Box::default())),
            Command::Palette => self
                .popups
                .push(Popup::Palette(Box::new(CommandPalette::new()))),
            Command::SortBy(i) => {
                self.sort = SortBy::ALL[usize::from(i).min(SortBy::ALL.len() - 1)];
                self.sort_reversed = false;
                self.query_changed();
            }
            Command::Theme(palette) => self.set_palette(palette),
            Command::New => self.popups.push(Popup::Create(Box::new(
                CreateForm::new(&self.scopes).with_policy(self.policy),
            ))),
            Command::Revoke => self.ask_revoke(),
            Command::Rotate => self.ask_rotate(),
            Command::Mark => {
                if let Some(key) = self.selected_key().cloned() {
                    if self.marked.remove(&key.id) {
                        self.mark_cache.remove(&key.id);
                    } else {
                        self.marked.insert(key.id.clone());
                        if self.window.is_some() {
                            self.mark_cache.insert(key.id.clone(), key);
                        }
                    }
                    self.select(self.selected + 1);
                }
            }
            Command::RevokeExpired => self.ask_revoke_expired(),
            Command::Usage => self.open_usage(),
            Command::Audit => {
                self.popups
                    .push(Popup::Audit(Box::new(AuditView::loading())));
                self.request(Request::LoadAudit { key: None });
            }
            Command::Webhooks => {
                self.popups
                    .push(Popup::Webhooks(Box::new(WebhooksView::loading())));
                self.request(Request::Webhooks(WebhookOp::List));
            }
            // Shown as last loaded, and read again: another admin may have
            // changed it. Opened again while its save is on its way, it
            // shows what was sent and waits for the answer.
            Command::Policy => {
                let editor = match self.policy_saving() {
                    Some(sent) => PolicyEditor::sending(self.policy, sent),
                    None => PolicyEditor::new(self.policy),
                };
                self.popups.push(Popup::Policy(Box::new(editor)));
                self.request(Request::LoadPolicy);
            }
            Command::AuditKey => {
                if let Some(id) = self.selected_key().map(|k| k.id.clone()) {
                    self.apply(Intent::AuditOf(id));
                }
            }
            Command::CopyId => {
                if let Some(id) = self.selected_key().map(|k| k.id.clone()) {
                    self.copy_id(&id);
                }
            }
            // Seen at once (`refreshing…`), and when it is done (`updated just now`).
            Command::Refresh => {
                self.refreshing.get_or_insert(self.now);
                if !self.loading {
                    self.refresh();
                }
            }
            Command::Filter => {
                self.filtering = true;
                self.dirty = true;
            }
            // Esc: the filter first, then the marks.
            Command::ClearFilter if !self.filter.value().is_empty() => {
                self.filter.reset();
                self.query_changed();
            }
            Command::ClearFilter => self.clear_marks(""),
            Command::ShowTab(i) => self.show_tab(Tab::ALL[usize::from(i).min(Tab::ALL.len() - 1)]),
            Command::NextTab => self.show_tab(Tab::ALL[(self.tab.index() + 1) % Tab::ALL.len()]),
            Command::PrevTab => {
                self.show_tab(Tab::ALL[(self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()])
            }
            Command::SortNext => {
                self.sort = self.sort.next();
                self.sort_reversed = false;
                self.query_changed();
            }
            Command::SortReverse => {
                self.sort_reversed = !self.sort_reversed;
                self.query_changed();
            }
            _ => {}
        }
    }

    /// `y`: the key's prefix and id on the clipboard (never a secret).
    fn copy_id(&mut self, id: &str) {
        if let Some(k) = self.key_by_id(id) {
            let text = format!("{}... {}", k.prefix, k.id);
            self.flash = Some(format!("Copied “{text}” (prefix and id; never a secret)."));
            self.local(Effect::CopyText(text));
        }
    }

    /// A command of the table on the key `id` (from its details): its
    /// dialog opens over the details, which stay under it.
    fn on_key_command(&mut self, command: Command, id: &str) {
        let Some(key) = self.key_by_id(id).cloned() else {
            return;
        };
        let popup = match command {
            Command::Revoke => {
                let marks = revoke::Marks {
                    shown: &[],
                    hidden: 0,
                };
                revoke::ask(marks, Some(&key), self.now, self.tz)
            }
            Command::Rotate => Some(rotate::ask(&key, &self.popup_ctx())),
            Command::IssueSecret if key.secret_pending => {
                self.start_issue(key);
                None
            }
            Command::IssueSecret => {
                self.flash = Some(format!(
                    "“{}” has its secret: a secret is shown once. Rotate it (R) for a new one.",
                    key.name
                ));
                None
            }
            Command::CopyId => {
                self.copy_id(id);
                None
            }
            _ => None,
        };
        if let Some(popup) = popup {
            self.popups.push(popup);
        }
    }

    pub(super) fn on_filter_key(&mut self, command: Option<Command>, key: KeyEvent) {
        match command {
            Some(Command::FilterKeep) => self.filtering = false,
            Some(Command::FilterClear) => {
                self.filtering = false;
                self.filter.reset();
                self.query_changed();
            }
            Some(command @ (Command::Down | Command::Up)) => {
                self.filtering = false;
                self.on_table_command(command);
            }
            _ => {
                let before = self.filter.value().len();
                if self
                    .filter
                    .handle_event(&crossterm::event::Event::Key(key))
                    .is_some()
                    || before != self.filter.value().len()
                {
                    self.query_changed();
                }
            }
        }
        self.dirty = true;
    }

    /// A key for the popup on top: its own file says what it means.
    fn on_popup_key(&mut self, command: Option<Command>, key: KeyEvent) {
        let (now, tz) = (self.now, self.tz);
        let Some(popup) = self.popups.last_mut() else {
            return;
        };
        let intent = popup.on_key(command, key, now, tz);
        self.apply(intent);
    }

    /// Carries out what a popup asked for: the one place that does.
    pub(super) fn apply(&mut self, intent: Intent) {
        match intent {
            Intent::Stay => {}
            Intent::Open(popup) => self.popups.push(popup),
            Intent::Create {
                request,
                idempotency_key,
            } => self.request(Request::CreateKey {
                request,
                idempotency_key,
            }),
            Intent::ReloadAudit(key) => self.request(Request::LoadAudit { key }),
            Intent::LoadUsage { id, window } => self.request(Request::LoadKeyUsage { id, window }),
            Intent::LoadOrgUsage(window) => self.request(Request::LoadOrgUsage { window }),
            Intent::DetailsOf(id) => self.open_details(id),
            Intent::Webhooks(op) => self.request(Request::Webhooks(op)),
            Intent::AuditOf(id) => {
                self.popups
                    .push(Popup::Audit(Box::new(AuditView::of_key(id.clone()))));
                self.request(Request::LoadAudit { key: Some(id) });
            }
            Intent::ForKey(command, id) => self.on_key_command(command, &id),
            Intent::Run(command) => {
                self.popups.pop();
                self.on_table_command(command);
            }
            Intent::CopySecret(secret) => self.local(Effect::Copy(secret)),
            Intent::Close => {
                // The policy screen closed while its save is on its way: the
                // save goes on, and the status line will say how it went.
                if let Some(Popup::Policy(editor)) = self.popups.pop() {
                    if editor.saving {
                        self.flash = Some(
                            "Saving the policy: this line will say whether it was saved.".into(),
                        );
                    }
                }
            }
            Intent::CloseThen(then) => {
                self.popups.pop();
                match then {
                    // The form (or the copy modal, and with it the secret) goes too.
                    Then::CloseParent => {
                        self.popups.pop();
                    }
                    Then::Revoke(key) => self.start_revoke(key),
                    Then::RevokeMany(keys) => self.start_revoke_many(keys),
                    Then::Rotate { key, grace_seconds } => self.start_rotate(key, grace_seconds),
                    Then::KeepOrphan(key) => self.kept_orphan(&key),
                    Then::RemoveWebhook(id) => {
                        self.request(Request::Webhooks(WebhookOp::Remove(id)));
                    }
                    Then::RotateWebhookSecret(id) => {
                        self.request(Request::Webhooks(WebhookOp::RotateSecret(id)));
                    }
                    Then::SavePolicy(policy) => {
                        if let Some(Popup::Policy(editor)) = self.popups.last_mut() {
                            editor.sent();
                        }
                        self.request(Request::SetPolicy(policy));
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
}
