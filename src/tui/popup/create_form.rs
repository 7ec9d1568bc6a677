//! The create form: Name, Description, Expiry, one checkbox per scope (Full
//! Access last), then Create and Cancel; validated here before anything is sent.

use chrono::{DateTime, NaiveDate, Utc};
use crossterm::event::{Event, KeyEvent};
use tui_input::backend::crossterm::EventHandler;
use tui_input::{Input, InputRequest};

use crate::api::{CreateKeyRequest, ScopeInfo};
use crate::key::scope::FULL_ACCESS;
use crate::key::validate::{self, FieldErrors};
use crate::key::{parse_expiry, random_base62, Catalog, ScopeDef};

use super::super::format::DisplayTz;
use super::super::keymap::{self, Command, Context};

/// What has the focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Description,
    Expiry,
    /// The n-th scope checkbox.
    Scope(usize),
    Create,
    Cancel,
}

/// What a key press in the form asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormOutcome {
    Stay,
    Submit,
    Cancel,
}

pub struct CreateForm {
    pub name: Input,
    pub description: Input,
    pub expiry: Input,
    /// The catalogue, in order, Full Access last; and whether each is ticked.
    pub scopes: Vec<(ScopeInfo, bool)>,
    /// The ticks as they were before Full Access was checked, to restore.
    before_full_access: Option<Vec<bool>>,
    pub focus: Field,
    pub errors: FieldErrors,
    /// A request is out; keys other than Esc wait.
    pub submitting: bool,
    /// Sent with every attempt of this form, so a retry after a lost answer
    /// can never create a second key. Renewed once an answer is definite.
    pub idempotency_key: String,
    /// A message about the last attempt, shown above the buttons.
    pub status: Option<String>,
}

impl CreateForm {
    pub fn new(catalogue: &[ScopeInfo]) -> Self {
        let mut scopes: Vec<(ScopeInfo, bool)> = catalogue
            .iter()
            .filter(|s| s.id != FULL_ACCESS)
            .map(|s| (s.clone(), false))
            .collect();
        scopes.extend(
            catalogue
                .iter()
                .filter(|s| s.id == FULL_ACCESS)
                .map(|s| (s.clone(), false)),
        );
        Self {
            name: Input::default(),
            description: Input::default(),
            expiry: Input::default(),
            scopes,
            before_full_access: None,
            focus: Field::Name,
            errors: FieldErrors::new(),
            submitting: false,
            idempotency_key: new_idempotency_key(),
            status: None,
        }
    }

    /// Whether anything was typed or ticked (then Esc asks first).
    pub fn is_touched(&self) -> bool {
        !self.name.value().is_empty()
            || !self.description.value().is_empty()
            || !self.expiry.value().is_empty()
            || self.scopes.iter().any(|(_, on)| *on)
    }

    fn order(&self) -> Vec<Field> {
        let mut order = vec![Field::Name, Field::Description, Field::Expiry];
        order.extend((0..self.scopes.len()).map(Field::Scope));
        order.extend([Field::Create, Field::Cancel]);
        order
    }

    fn move_focus(&mut self, forward: bool) {
        let order = self.order();
        let at = order.iter().position(|f| *f == self.focus).unwrap_or(0);
        self.focus = order[super::cycle(at, order.len(), forward)];
    }

    fn input_mut(&mut self) -> Option<&mut Input> {
        match self.focus {
            Field::Name => Some(&mut self.name),
            Field::Description => Some(&mut self.description),
            Field::Expiry => Some(&mut self.expiry),
            _ => None,
        }
    }

    /// Ticks or unticks scope `i`. Full Access ticks every scope; unticking it
    /// restores the choice made before.
    pub fn toggle(&mut self, i: usize) {
        let Some((scope, on)) = self.scopes.get(i).map(|(s, on)| (s.id.clone(), *on)) else {
            return;
        };
        if scope == FULL_ACCESS {
            if on {
                let before = self.before_full_access.take();
                for (j, entry) in self.scopes.iter_mut().enumerate() {
                    entry.1 = before
                        .as_ref()
                        .and_then(|b| b.get(j).copied())
                        .unwrap_or(false)
                        && entry.0.id != FULL_ACCESS;
                }
            } else {
                self.before_full_access = Some(self.scopes.iter().map(|(_, on)| *on).collect());
                for entry in &mut self.scopes {
                    entry.1 = true;
                }
            }
        } else {
            self.scopes[i].1 = !on;
            // A narrower choice while Full Access is on means Full Access is off.
            if on {
                if let Some(full) = self.scopes.iter_mut().find(|(s, _)| s.id == FULL_ACCESS) {
                    full.1 = false;
                }
                self.before_full_access = None;
            }
        }
        self.errors.remove("scopes");
    }

    pub fn on_key(&mut self, key: KeyEvent) -> FormOutcome {
        self.on_command(keymap::command(Context::Create, &key), key)
    }

    /// What `command` (from `key`) does; other keys edit the focused field.
    pub fn on_command(&mut self, command: Option<Command>, key: KeyEvent) -> FormOutcome {
        if command == Some(Command::Cancel) {
            return FormOutcome::Cancel;
        }
        if self.submitting {
            return FormOutcome::Stay;
        }
        match command {
            Some(Command::FocusNext) => self.move_focus(true),
            Some(Command::FocusPrev) => self.move_focus(false),
            Some(Command::Submit) => {
                return if self.focus == Field::Cancel {
                    FormOutcome::Cancel
                } else {
                    FormOutcome::Submit
                };
            }
            Some(Command::Tick) if matches!(self.focus, Field::Scope(_)) => {
                if let Field::Scope(i) = self.focus {
                    self.toggle(i);
                }
            }
            Some(Command::Tick) if self.focus == Field::Create => return FormOutcome::Submit,
            Some(Command::Tick) if self.focus == Field::Cancel => return FormOutcome::Cancel,
            _ => {
                let field = field_key(self.focus);
                if let Some(input) = self.input_mut() {
                    if input.handle_event(&Event::Key(key)).is_some() {
                        if let Some(field) = field {
                            self.errors.remove(field);
                        }
                    }
                }
            }
        }
        FormOutcome::Stay
    }

    /// Pasted text goes into the focused text field.
    pub fn paste(&mut self, text: &str) {
        let field = field_key(self.focus);
        if let Some(input) = self.input_mut() {
            for c in text.chars().filter(|c| !c.is_control()) {
                input.handle(InputRequest::InsertChar(c));
            }
            if let Some(field) = field {
                self.errors.remove(field);
            }
        }
    }

    /// The request to send, or the message for each bad field.
    pub fn request(
        &self,
        now: DateTime<Utc>,
        tz: DisplayTz,
    ) -> Result<CreateKeyRequest, FieldErrors> {
        let name = self.name.value().trim().to_owned();
        let description = self.description.value().trim().to_owned();
        let scopes: Vec<String> = self
            .scopes
            .iter()
            .filter(|(_, on)| *on)
            .map(|(s, _)| s.id.clone())
            .collect();
        // The service's own catalogue, as the form shows it.
        let catalog = Catalog::new(self.scopes.iter().map(|(s, _)| ScopeDef::from(s)).collect())
            .unwrap_or_default();
        let expires_at = match tz.parse_expiry(self.expiry.value(), now) {
            Ok(at) => at,
            Err(e) => {
                let mut errors =
                    validate::new_key(&name, &description, &scopes, None, now, &catalog)
                        .err()
                        .unwrap_or_default();
                errors.insert("expires_at".into(), e.to_string());
                return Err(errors);
            }
        };
        validate::new_key(&name, &description, &scopes, expires_at, now, &catalog)?;
        Ok(CreateKeyRequest {
            name,
            description: (!description.is_empty()).then_some(description),
            expires_at,
            scopes,
        })
    }

    /// The live line under the Expiry field.
    pub fn expiry_preview(&self, now: DateTime<Utc>, tz: DisplayTz) -> Result<String, String> {
        let input = self.expiry.value().trim();
        match tz.parse_expiry(input, now) {
            Ok(None) => Ok("No expiry: the key stays valid until it is revoked.".into()),
            Ok(Some(at)) => Ok(match NaiveDate::parse_from_str(input, "%Y-%m-%d") {
                Ok(date) => format!(
                    "expires {} (valid through that whole day)",
                    date.format("%a %Y-%m-%d")
                ),
                Err(_) => format!("expires {}", tz.weekday_time(at)),
            }),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A new key for the next, separate creation (after a definite answer).
    pub fn renew_idempotency_key(&mut self) {
        self.idempotency_key = new_idempotency_key();
    }
}

fn new_idempotency_key() -> String {
    format!("keydeck-tui-{}", random_base62(24).as_str())
}

/// The service's name for the field a text input edits.
fn field_key(field: Field) -> Option<&'static str> {
    match field {
        Field::Name => Some("name"),
        Field::Description => Some("description"),
        Field::Expiry => Some("expires_at"),
        _ => None,
    }
}

impl DisplayTz {
    fn parse_expiry(
        &self,
        input: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, crate::key::ExpiryError> {
        match self {
            DisplayTz::Local => parse_expiry(input, now, &chrono::Local),
            DisplayTz::Fixed(offset) => parse_expiry(input, now, offset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::SCOPES;

    fn form() -> CreateForm {
        CreateForm::new(&SCOPES.iter().map(Into::into).collect::<Vec<ScopeInfo>>())
    }

    fn ticked(f: &CreateForm) -> Vec<bool> {
        f.scopes.iter().map(|(_, on)| *on).collect()
    }

    #[test]
    fn full_access_ticks_everything_and_unticking_restores_the_choice() {
        let mut f = form();
        assert_eq!(f.scopes.last().unwrap().0.id, FULL_ACCESS);
        f.toggle(0);
        f.toggle(2);
        assert_eq!(ticked(&f), [true, false, true, false, false]);
        f.toggle(4);
        assert_eq!(ticked(&f), [true; 5]);
        f.toggle(4);
        assert_eq!(ticked(&f), [true, false, true, false, false]);
        // Unticking a scope while Full Access is on turns Full Access off.
        f.toggle(4);
        f.toggle(1);
        assert_eq!(ticked(&f), [true, false, true, true, false]);
    }

    #[test]
    fn focus_order_is_fields_scopes_then_buttons() {
        let mut f = form();
        let mut seen = vec![f.focus];
        for _ in 0..9 {
            f.move_focus(true);
            seen.push(f.focus);
        }
        assert_eq!(
            seen,
            [
                Field::Name,
                Field::Description,
                Field::Expiry,
                Field::Scope(0),
                Field::Scope(1),
                Field::Scope(2),
                Field::Scope(3),
                Field::Scope(4),
                Field::Create,
                Field::Cancel
            ]
        );
        f.move_focus(true);
        assert_eq!(f.focus, Field::Name, "wraps around");
    }
}
