//! Changes to keys, from the app's side: which dialog `d`, `X` and `R` open
//! (the dialogs themselves are in popup/), what a yes sends, and what each
//! answer changes in the list and on screen.

use std::collections::BTreeSet;

use super::state::{App, RevokeBatch};
use crate::api::{ApiKey, CreatedKey, RotatedKey};
use crate::client::ClientError;
use crate::tui::action::Request;
use crate::tui::message::banner_message;
use crate::tui::popup::{revoke, rotate, CopyOnce, Popup};

impl App {
    /// `d`: revoke the marked keys shown, or the selected one.
    pub(super) fn ask_revoke(&mut self) {
        let shown = self.marked_shown();
        let marks = revoke::Marks {
            shown: &shown,
            hidden: self.marked.len() - shown.len(),
        };
        let popup = revoke::ask(marks, self.selected_key(), self.now, self.tz);
        if let Some(popup) = popup {
            self.popups.push(popup);
            self.ask_revoke_usage();
        }
    }

    /// `X`: revoke every expired key.
    pub(super) fn ask_revoke_expired(&mut self) {
        if self.window.is_some() {
            // Not every expired key is held: the Expired tab lists them.
            self.flash = Some(format!(
                "X needs every key loaded (at most {}); on tab 3 Expired, mark keys with Space and press d.",
                self.capacity
            ));
            return;
        }
        self.popups.push(revoke::ask_expired(&self.keys, self.now));
    }

    /// `R`: rotate the selected key (only it, marks or not: the dialog says so).
    pub(super) fn ask_rotate(&mut self) {
        let Some(key) = self.selected_key() else {
            return;
        };
        let popup = match rotate::ask(key, &self.popup_ctx()) {
            Popup::Rotate(dialog) => {
                Popup::Rotate(Box::new((*dialog).with_marks(self.marked.len())))
            }
            other => other,
        };
        self.popups.push(popup);
    }

    /// Yes to revoking one key.
    pub(super) fn start_revoke(&mut self, key: ApiKey) {
        self.flash = Some(format!("Revoking “{}”…", key.name));
        self.request(Request::RevokeKey { id: key.id });
    }

    /// Yes to revoking the marked (or every expired) keys: their marks go,
    /// and so do marks on keys already revoked; a mark the filter hid on a
    /// working key stays.
    pub(super) fn start_revoke_many(&mut self, keys: Vec<ApiKey>) {
        self.flash = Some(format!(
            "Revoking {}…",
            crate::present::count(keys.len(), "key", "keys")
        ));
        let revoking: BTreeSet<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        let keep: BTreeSet<String> = self
            .marked
            .iter()
            .filter(|id| !revoking.contains(id.as_str()))
            .filter(|id| self.key_by_id(id).is_some_and(|k| k.revoked_at.is_none()))
            .cloned()
            .collect();
        self.mark_cache.retain(|id, _| keep.contains(id));
        self.marked = keep;
        self.revoking = Some(RevokeBatch {
            waiting: revoking.iter().map(|id| (*id).to_owned()).collect(),
            ..RevokeBatch::default()
        });
        for key in keys {
            self.request(Request::RevokeKey { id: key.id });
        }
    }

    /// No to revoking a key whose secret was lost.
    pub(super) fn kept_orphan(&mut self, key: &ApiKey) {
        self.flash = Some(format!(
            "Kept “{}”; its secret is unknown, so nothing can use it.",
            key.name
        ));
    }

    /// Yes to the rotate dialog.
    pub(super) fn start_rotate(&mut self, key: ApiKey, grace_seconds: u32) {
        self.flash = Some(format!("Rotating “{}”…", key.name));
        self.request(Request::RotateKey {
            id: key.id,
            grace_seconds,
        });
    }

    /// `I` on a key made without a secret: the service issues it, once.
    pub(super) fn start_issue(&mut self, key: ApiKey) {
        self.flash = Some(format!("Issuing the secret of “{}”…", key.name));
        self.request(Request::IssueSecret { id: key.id });
    }

    /// An issue's answer: the secret, shown once in the copy-once modal.
    pub(super) fn on_issued(&mut self, result: Result<CreatedKey, ClientError>) {
        match result {
            Ok(issued) => {
                self.flash = None;
                self.upsert_key(issued.api_key.clone(), true);
                let modal = CopyOnce::new(issued.api_key, issued.secret, None);
                self.popups.push(Popup::CopyOnce(Box::new(modal)));
            }
            Err(e) => {
                self.flash = Some(format!(
                    "Secret not issued: {}",
                    banner_message(&e, &self.source, None)
                ));
                self.refresh();
            }
        }
    }

    /// A create's final answer (after any retries): the new key's copy-once
    /// modal, the orphan question, or the form says what went wrong.
    pub(super) fn on_created(&mut self, result: Result<CreatedKey, ClientError>) {
        let Some(Popup::Create(form)) = self.popups.last_mut() else {
            // The form is gone (it cannot be while submitting); keep any key visible.
            if let Ok(created) = result {
                self.upsert_key(created.api_key, true);
            }
            return;
        };
        form.submitting = false;
        match result {
            Ok(created) => {
                self.popups.pop();
                self.upsert_key(created.api_key.clone(), true);
                self.popups.push(Popup::CopyOnce(Box::new(CopyOnce::new(
                    created.api_key,
                    created.secret,
                    None,
                ))));
            }
            Err(ClientError::IdempotentRepeat(key)) => {
                // An earlier attempt created the key but its answer was lost.
                self.popups.pop();
                self.upsert_key((*key).clone(), true);
                self.popups.push(revoke::orphan(&key));
            }
            Err(error) => {
                let message = banner_message(&error, &self.source, None);
                form.failed(error, message);
            }
        }
    }

    /// A revoke's answer (for key `id`): one key's says its name; a bulk
    /// revoke's are counted, and the last one says how many were revoked.
    pub(super) fn on_revoked(&mut self, id: &str, result: Result<ApiKey, ClientError>) {
        let outcome = match result {
            Ok(key) => {
                let name = key.name.clone();
                self.upsert_key(key, false);
                Ok(name)
            }
            Err(e) => Err(banner_message(&e, &self.source, None)),
        };
        let in_batch = self
            .revoking
            .as_mut()
            .and_then(|batch| batch.waiting.remove(id).then_some(batch));
        let Some(batch) = in_batch else {
            self.flash = Some(match outcome {
                Ok(name) => format!("Revoked “{name}”: it no longer works anywhere."),
                Err(error) => format!("Not revoked: {error}"),
            });
            return;
        };
        match outcome {
            Ok(_) => batch.revoked += 1,
            Err(error) => {
                batch.failed += 1;
                batch.first_error.get_or_insert(error);
            }
        }
        let answered = batch.revoked + batch.failed;
        self.flash = Some(if batch.waiting.is_empty() {
            batch_summary(batch)
        } else {
            format!(
                "Revoking… {answered} of {} answered.",
                answered + batch.waiting.len()
            )
        });
        if batch.waiting.is_empty() {
            self.revoking = None;
        }
    }

    /// A rotation's answer: the new key, shown once.
    pub(super) fn on_rotated(&mut self, result: Result<RotatedKey, ClientError>) {
        match result {
            Ok(rotated) => {
                self.flash = None;
                self.upsert_key(rotated.previous.clone(), false);
                self.upsert_key(rotated.api_key.clone(), true);
                let modal = CopyOnce::new(rotated.api_key, rotated.secret, Some(rotated.previous));
                self.popups.push(Popup::CopyOnce(Box::new(modal)));
            }
            Err(ClientError::Conflict(m)) => {
                self.flash = None;
                self.popups.push(rotate::refused(&m));
                // The key changed meanwhile (rotated elsewhere, or expired): show it as it is.
                self.refresh();
            }
            Err(e) => {
                self.flash = Some(format!(
                    "Not rotated: {}",
                    banner_message(&e, &self.source, None)
                ))
            }
        }
    }

    /// Puts a key as the service now has it into the list (new or changed).
    pub(in crate::tui) fn upsert_key(&mut self, key: ApiKey, select: bool) {
        if select {
            self.selected_id = Some(key.id.clone());
        }
        if self.window.is_some() {
            // The key shows as it is now where it is held; its place in the
            // order and the counts come with the window read again, once
            // the last change on its way is answered.
            if let Some(held) = self.keys.iter_mut().find(|k| k.id == key.id) {
                *held = key;
            }
            if self.mutations() == 0 {
                self.reread_window();
            }
            self.rebuild_rows();
            return;
        }
        match self.keys.iter_mut().find(|k| k.id == key.id) {
            Some(existing) => *existing = key,
            None => self.keys.insert(0, key),
        }
        self.rebuild_rows();
    }
}

/// The status line after a bulk revoke: how many keys were revoked, and how
/// many were not (with the first reason).
fn batch_summary(batch: &RevokeBatch) -> String {
    let revoked = crate::present::count(batch.revoked, "key", "keys");
    match &batch.first_error {
        Some(error) if batch.failed > 0 => format!(
            "Revoked {revoked} of {}; {} not revoked: {error}",
            batch.revoked + batch.failed,
            batch.failed
        ),
        _ if batch.revoked == 1 => format!("Revoked {revoked}: it no longer works anywhere."),
        _ => format!("Revoked {revoked}: they no longer work anywhere."),
    }
}
