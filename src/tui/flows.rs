//! The flows that change keys: create form, copy-once modal, revoke and rotate
//! dialogs; what their keys do and what their answers change.

use crossterm::event::KeyEvent;

use super::action::{Action, Effect};
use super::app::{banner_message, App};
use super::keymap::Command;
use super::popup::confirm::{Decision, GRACE_CHOICES};
use super::popup::create_form::FormOutcome;
use super::popup::{Confirm, ConfirmKind, CopyOnce, Popup};
use crate::client::ClientError;

impl App {
    pub(super) fn on_popup_key(&mut self, command: Option<Command>, key: KeyEvent) {
        let Some(top) = self.popups.last_mut() else {
            return;
        };
        match top {
            Popup::Help(scroll) => match command {
                Some(Command::ScrollDown) => *scroll = scroll.saturating_add(1),
                Some(Command::ScrollUp) => *scroll = scroll.saturating_sub(1),
                Some(Command::ScrollPageDown) => *scroll = scroll.saturating_add(10),
                Some(Command::ScrollPageUp) => *scroll = scroll.saturating_sub(10),
                Some(Command::Back) => {
                    self.popups.pop();
                }
                _ => {}
            },
            Popup::Audit(view) => match command {
                Some(Command::ScrollDown) => {
                    view.scroll = (view.scroll + 1).min(view.entries.len().saturating_sub(1))
                }
                Some(Command::ScrollUp) => view.scroll = view.scroll.saturating_sub(1),
                Some(Command::ScrollPageDown) => {
                    view.scroll = (view.scroll + 10).min(view.entries.len().saturating_sub(1))
                }
                Some(Command::ScrollPageUp) => view.scroll = view.scroll.saturating_sub(10),
                Some(Command::Reload) if !view.loading => {
                    view.loading = true;
                    self.request(Effect::LoadAudit);
                }
                Some(Command::Back) => {
                    self.popups.pop();
                }
                _ => {}
            },
            Popup::Details(_) => {
                if command == Some(Command::Back) {
                    self.popups.pop();
                }
            }
            Popup::Create(form) => match form.on_command(command, key) {
                FormOutcome::Stay => {}
                FormOutcome::Cancel if form.submitting => {
                    form.status =
                        Some("Creating… the request will finish; wait for its answer.".into());
                }
                FormOutcome::Cancel if form.is_touched() => {
                    self.popups
                        .push(Popup::Confirm(Box::new(Confirm::discard_form())));
                }
                FormOutcome::Cancel => {
                    self.popups.pop();
                }
                FormOutcome::Submit => {
                    let now = self.clock.now();
                    match form.request(now, self.tz) {
                        Err(errors) => {
                            form.errors = errors;
                            form.status = None;
                        }
                        Ok(request) => {
                            form.errors.clear();
                            form.submitting = true;
                            form.status = Some("Creating…".into());
                            let idempotency_key = form.idempotency_key.clone();
                            self.request(Effect::CreateKey {
                                request,
                                idempotency_key,
                            });
                        }
                    }
                }
            },
            Popup::CopyOnce(modal) => match command {
                Some(Command::Copy) => {
                    let secret = modal.secret.clone();
                    self.request(Effect::Copy(secret));
                }
                Some(Command::Close) => {
                    if modal.copied.is_some() {
                        // Dropping the modal wipes the secret.
                        self.popups.pop();
                    } else {
                        self.popups
                            .push(Popup::Confirm(Box::new(Confirm::close_uncopied())));
                    }
                }
                _ => {}
            },
            Popup::Confirm(dialog) => {
                let decision = dialog.on_command(command);
                let kind = dialog.kind.clone();
                let grace = GRACE_CHOICES[dialog.grace].1;
                match decision {
                    Decision::Undecided => {}
                    Decision::No => {
                        self.popups.pop();
                        if let ConfirmKind::RevokeOrphan(k) = kind {
                            self.flash = Some(format!(
                                "Kept “{}”; its secret is unknown, so nothing can use it.",
                                k.name
                            ));
                        }
                    }
                    Decision::Yes => {
                        self.popups.pop();
                        self.confirmed(kind, grace);
                    }
                }
            }
        }
    }

    fn confirmed(&mut self, kind: ConfirmKind, grace_seconds: u32) {
        match kind {
            ConfirmKind::Revoke(key) | ConfirmKind::RevokeOrphan(key) => {
                self.flash = Some(format!("Revoking “{}”…", key.name));
                self.request(Effect::RevokeKey { id: key.id });
            }
            ConfirmKind::RevokeMany(keys) => {
                self.flash = Some(format!("Revoking {} keys…", keys.len()));
                self.marked.clear();
                for key in keys {
                    self.request(Effect::RevokeKey { id: key.id });
                }
            }
            ConfirmKind::Rotate(key) => {
                self.flash = Some(format!("Rotating “{}”…", key.name));
                self.request(Effect::RotateKey {
                    id: key.id,
                    grace_seconds,
                });
            }
            // The form (or the copy modal, and with it the secret) goes too.
            ConfirmKind::DiscardForm | ConfirmKind::CloseUncopied => {
                self.popups.pop();
            }
            ConfirmKind::Notice => {}
        }
    }

    pub(super) fn on_flow_action(&mut self, action: Action) {
        self.dirty = true;
        match action {
            Action::Paste(text) => {
                if let Some(Popup::Create(form)) = self.popups.last_mut() {
                    form.paste(&text);
                }
            }
            Action::ScopesLoaded(result) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                if let Ok(scopes) = result {
                    if !scopes.is_empty() {
                        self.scopes = scopes;
                    }
                }
            }
            Action::Created(result) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                self.on_created(*result);
                self.mutation_done();
            }
            Action::Revoked(result) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                match result {
                    Ok(key) => {
                        self.flash = Some(format!(
                            "Revoked “{}”: it no longer works anywhere.",
                            key.name
                        ));
                        self.upsert_key(key, false);
                    }
                    Err(e) => {
                        self.flash =
                            Some(format!("Not revoked: {}", banner_message(&e, &self.source)))
                    }
                }
                self.mutation_done();
            }
            Action::Rotated(result) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                match *result {
                    Ok(rotated) => {
                        self.flash = None;
                        self.upsert_key(rotated.previous.clone(), false);
                        self.upsert_key(rotated.api_key.clone(), true);
                        let modal =
                            CopyOnce::new(rotated.api_key, rotated.secret, Some(rotated.previous));
                        self.popups.push(Popup::CopyOnce(Box::new(modal)));
                    }
                    Err(ClientError::Conflict(m)) => self.flash = Some(format!("Not rotated: {m}")),
                    Err(e) => {
                        self.flash =
                            Some(format!("Not rotated: {}", banner_message(&e, &self.source)))
                    }
                }
                self.mutation_done();
            }
            Action::CopiedText => self.in_flight = self.in_flight.saturating_sub(1),
            Action::AuditLoaded(result) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                if let Some(Popup::Audit(view)) = self
                    .popups
                    .iter_mut()
                    .rev()
                    .find(|p| matches!(p, Popup::Audit(_)))
                {
                    view.loading = false;
                    match result {
                        Ok(list) => {
                            view.entries = list.data;
                            view.error = None;
                        }
                        Err(e) => view.error = Some(banner_message(&e, &self.source)),
                    }
                }
            }
            Action::Copied { system } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                if let Some(Popup::CopyOnce(modal)) = self.popups.last_mut() {
                    modal.copied = Some(if system {
                        "Copied to clipboard (and sent to your terminal's clipboard, OSC 52)."
                            .into()
                    } else {
                        "Sent to your terminal's clipboard (OSC 52).".into()
                    });
                }
            }
            _ => {}
        }
    }

    fn on_created(&mut self, result: Result<crate::api::CreatedKey, ClientError>) {
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
                self.popups
                    .push(Popup::Confirm(Box::new(Confirm::revoke_orphan(&key))));
            }
            Err(ClientError::Invalid { message, fields }) => {
                form.renew_idempotency_key();
                form.status = Some(message);
                form.errors = fields
                    .into_iter()
                    .map(|(field, problem)| {
                        (
                            if field == "Idempotency-Key" {
                                "name".into()
                            } else {
                                field
                            },
                            problem,
                        )
                    })
                    .collect();
            }
            Err(e) if e.is_transient() => {
                // Whether the key exists is unknown: keep the idempotency key so
                // that trying again can only ever make one.
                form.status = Some(format!(
                    "{} The key may or may not exist; Enter tries again safely (it cannot create two).",
                    banner_message(&e, &self.source)
                ));
            }
            Err(e) => {
                form.renew_idempotency_key();
                form.status = Some(banner_message(&e, &self.source));
            }
        }
    }
}
