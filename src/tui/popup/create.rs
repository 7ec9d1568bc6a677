//! The create form: Name, Description, Expiry, one checkbox per scope (Full
//! Access last, then the reporter scope apart), then Create and Cancel;
//! validated here before anything is sent.

use chrono::{DateTime, NaiveDate, Utc};
use crossterm::event::{Event, KeyEvent};
use tui_input::backend::crossterm::EventHandler;
use tui_input::{Input, InputRequest};

use crate::api::{ApiKey, CreateKeyRequest, ScopeInfo};
use crate::key::policy::{in_days, Policy, Violation};
use crate::key::scope::{self, FULL_ACCESS, LEAKS_REPORT};
use crate::key::validate::{self, FieldErrors};
use crate::key::{random_base62, Catalog, KeyStatus, ScopeDef};

use super::{button, centered, cycle, Confirm, Ctx, Intent, Popup, Then};
use crate::client::ClientError;
use crate::present::{self, DisplayTz};
use crate::tui::keymap::{self, Command, Context};
use crate::tui::theme::Styles;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

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
    /// The catalogue, in order, Full Access then the reporter scope
    /// (`leaks:report`, apart) last; and whether each is ticked.
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
    /// The organisation's policy the key must follow, checked before sending.
    pub policy: Policy,
    /// The expiry the policy filled in (its maximum), which is not "typed".
    prefilled_expiry: String,
    /// Re-issuing a key that no longer works: what the form says first.
    pub reissues: Option<String>,
}

impl CreateForm {
    pub fn new(catalogue: &[ScopeInfo]) -> Self {
        let mut scopes: Vec<(ScopeInfo, bool)> = catalogue
            .iter()
            .filter(|s| s.id != FULL_ACCESS && s.id != LEAKS_REPORT)
            .map(|s| (s.clone(), false))
            .collect();
        for last in [FULL_ACCESS, LEAKS_REPORT] {
            scopes.extend(
                catalogue
                    .iter()
                    .filter(|s| s.id == last)
                    .map(|s| (s.clone(), false)),
            );
        }
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
            policy: Policy::default(),
            prefilled_expiry: String::new(),
            reissues: None,
        }
    }

    /// The form filled in to re-issue `key` (expired or revoked, `status`):
    /// its name, description and scopes; the expiry is chosen anew, under
    /// the policy, like any new key's.
    pub fn reissue(mut self, key: &ApiKey, status: KeyStatus) -> Self {
        self.name = Input::new(key.name.clone());
        self.description = Input::new(key.description.to_string());
        let has = |id: &str| key.scopes.iter().any(|s| s == id);
        for (scope, on) in &mut self.scopes {
            *on = has(&scope.id) && scope.id != FULL_ACCESS;
        }
        if has(FULL_ACCESS) {
            if let Some(i) = self.scopes.iter().position(|(s, _)| s.id == FULL_ACCESS) {
                self.toggle(i);
            }
        }
        self.focus = Field::Expiry;
        self.reissues = Some(format!(
            "Re-issue “{}” ({} {}...): a new key with its name, description and \
             scopes. Choose its expiry.",
            key.name,
            status.as_str(),
            key.prefix
        ));
        self
    }

    /// The form under `policy`: when it sets a maximum lifetime, the Expiry
    /// field starts at that maximum.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.set_policy(policy);
        self
    }

    /// Follows a policy that arrived (or changed) while the form is open; an
    /// expiry the admin typed is kept.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
        if self.expiry.value() == self.prefilled_expiry {
            self.prefilled_expiry = policy
                .max_lifetime_days
                .map_or_else(String::new, |d| format!("{d}d"));
            self.expiry = Input::new(self.prefilled_expiry.clone());
        }
    }

    /// Whether anything was typed or ticked (then Esc asks first).
    pub fn is_touched(&self) -> bool {
        !self.name.value().is_empty()
            || !self.description.value().is_empty()
            || self.expiry.value() != self.prefilled_expiry
            || self.scopes.iter().any(|(_, on)| *on)
    }

    fn order(&self) -> Vec<Field> {
        let mut order = vec![Field::Name, Field::Description, Field::Expiry];
        order.extend((0..self.scopes.len()).map(Field::Scope));
        order.extend([Field::Create, Field::Cancel]);
        order
    }

    /// Focus the first field (in the form's order) with a problem, if any:
    /// after a failed Enter the cursor is where the fix goes.
    fn focus_first_problem(&mut self) {
        let bad = self.order().into_iter().find(|f| {
            let key = match f {
                Field::Scope(0) => Some("scopes"),
                other => field_key(*other),
            };
            key.is_some_and(|k| self.errors.contains_key(k))
        });
        if let Some(field) = bad {
            self.focus = field;
        }
    }

    fn move_focus(&mut self, forward: bool) {
        let order = self.order();
        let at = order.iter().position(|f| *f == self.focus).unwrap_or(0);
        self.focus = order[cycle(at, order.len(), forward)];
    }

    fn input_mut(&mut self) -> Option<&mut Input> {
        match self.focus {
            Field::Name => Some(&mut self.name),
            Field::Description => Some(&mut self.description),
            Field::Expiry => Some(&mut self.expiry),
            _ => None,
        }
    }

    /// Ticks or unticks scope `i`. Full Access ticks every scope but the
    /// reporter's (which stands alone); unticking it restores the choice made before.
    pub fn toggle(&mut self, i: usize) {
        let Some((scope, on)) = self.scopes.get(i).map(|(s, on)| (s.id.clone(), *on)) else {
            return;
        };
        if scope == FULL_ACCESS {
            if on {
                let before = self.before_full_access.take();
                for (j, entry) in self.scopes.iter_mut().enumerate() {
                    // Full Access never touched the reporter's box.
                    if entry.0.id == LEAKS_REPORT {
                        continue;
                    }
                    entry.1 = before
                        .as_ref()
                        .and_then(|b| b.get(j).copied())
                        .unwrap_or(false)
                        && entry.0.id != FULL_ACCESS;
                }
            } else {
                self.before_full_access = Some(self.scopes.iter().map(|(_, on)| *on).collect());
                for entry in &mut self.scopes {
                    entry.1 |= entry.0.id != LEAKS_REPORT;
                }
            }
        } else {
            self.scopes[i].1 = !on;
            // A narrower choice while Full Access is on means Full Access is off.
            if on && scope != LEAKS_REPORT {
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

    /// What a key does to the form, as the app should carry it out.
    pub fn handle(
        &mut self,
        command: Option<Command>,
        key: KeyEvent,
        now: DateTime<Utc>,
        tz: DisplayTz,
    ) -> Intent {
        match self.on_command(command, key) {
            FormOutcome::Stay => Intent::Stay,
            FormOutcome::Cancel if self.submitting => {
                self.status =
                    Some("Creating… the request will finish; wait for its answer.".into());
                Intent::Stay
            }
            FormOutcome::Cancel if self.is_touched() => {
                Intent::Open(Popup::Confirm(Box::new(discard_question())))
            }
            FormOutcome::Cancel => Intent::Close,
            FormOutcome::Submit => match self.request(now, tz) {
                Err(errors) => {
                    self.errors = errors;
                    self.status = None;
                    self.focus_first_problem();
                    Intent::Stay
                }
                Ok(request) => {
                    self.errors.clear();
                    self.submitting = true;
                    self.status = Some("Creating…".into());
                    Intent::Create {
                        request,
                        idempotency_key: self.idempotency_key.clone(),
                    }
                }
            },
        }
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
        // The service's own catalogue, as the form shows it (the reporter
        // scope is every catalogue's, listed in none).
        let catalog = Catalog::new(
            self.scopes
                .iter()
                .filter(|(s, _)| s.id != LEAKS_REPORT)
                .map(|(s, _)| ScopeDef::from(s))
                .collect(),
        )
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
        let mut errors = validate::new_key(&name, &description, &scopes, expires_at, now, &catalog)
            .err()
            .unwrap_or_default();
        self.policy_errors(now, expires_at, &description, &mut errors);
        if let Some(problem) = scope::reporter_not_alone(&scopes) {
            errors.entry("scopes".into()).or_insert(problem);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CreateKeyRequest {
            name,
            description: (!description.is_empty()).then_some(description),
            expires_at,
            scopes,
        })
    }

    /// The rules of the policy this key breaks, at the field each is about
    /// (a field's own error comes first).
    fn policy_errors(
        &self,
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        description: &str,
        errors: &mut FieldErrors,
    ) {
        for violation in self.policy.violations(now, expires_at, description) {
            let field = match violation {
                Violation::NoDescription => "description",
                Violation::NoExpiry | Violation::TooLong { .. } => "expires_at",
            };
            errors
                .entry(field.into())
                .or_insert_with(|| violation.to_string());
        }
    }

    /// The live line under the Expiry field: the expiry typed, or what is
    /// wrong with it, the policy's refusal included ("at most 90 days: Mon
    /// 2030-04-15 09:00 is the latest"), before Enter.
    pub fn expiry_preview(&self, now: DateTime<Utc>, tz: DisplayTz) -> Result<String, String> {
        let input = self.expiry.value().trim();
        let policy = self.policy;
        let required = policy.require_expiry || policy.max_lifetime_days.is_some();
        let limit = policy.max_lifetime_days.zip(policy.latest_expiry(now));
        match tz.parse_expiry(input, now) {
            Ok(None) if required => Err(match policy.max_lifetime_days {
                Some(d) => format!("an expiry is required (at most {})", in_days(d)),
                None => "an expiry is required".into(),
            }),
            Ok(Some(at)) if limit.is_some_and(|(_, latest)| at > latest) => {
                let (days, latest) = limit.unwrap_or_default();
                Err(format!(
                    "at most {}: {} is the latest",
                    in_days(days),
                    tz.weekday_time(latest)
                ))
            }
            Ok(None) => Ok("No expiry: the key stays valid until it is revoked.".into()),
            Ok(Some(at)) => Ok(match NaiveDate::parse_from_str(input, "%Y-%m-%d") {
                Ok(date) => format!(
                    "expires {} (valid through that whole day)",
                    date.format("%a %Y-%m-%d")
                ),
                Err(_) => format!("expires {}", tz.weekday_time(at)),
            }),
            // The generic words offer `1y` and an empty field: under a rule,
            // the examples line under this one has what the policy allows.
            Err(crate::key::ExpiryError::Unrecognised) if required => {
                Err("not a date or a span like the examples below".into())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// The examples under Expiry, only what the policy allows: `e.g. 30d,
    /// 90d, 1y, 2027-01-31; empty for none` without a rule; under a maximum
    /// of 90 days `e.g. 7d, 30d, 90d or a date up to 2030-04-14`; "empty for
    /// none" only when no expiry is allowed.
    pub fn expiry_examples(&self, now: DateTime<Utc>, tz: DisplayTz) -> String {
        let policy = self.policy;
        let Some(max) = policy.max_lifetime_days else {
            return if policy.require_expiry {
                "e.g. 30d, 90d, 1y, 2027-01-31".into()
            } else {
                "e.g. 30d, 90d, 1y, 2027-01-31; empty for none".into()
            };
        };
        let word = |d: u32| {
            if d == 365 {
                "1y".to_owned()
            } else {
                format!("{d}d")
            }
        };
        let mut spans: Vec<String> = [7, 30, 90, 365]
            .into_iter()
            .filter(|d| *d <= max)
            .map(word)
            .collect();
        if !spans.contains(&word(max)) {
            spans.push(word(max));
        }
        let spans = spans[spans.len().saturating_sub(3)..].join(", ");
        match self.latest_date(now, tz) {
            Some(date) => format!("e.g. {spans} or a date up to {date}"),
            None => format!("e.g. {spans}"),
        }
    }

    /// The last whole day (`YYYY-MM-DD`, valid through that day) the policy's
    /// maximum allows, if there is a maximum and such a day.
    fn latest_date(&self, now: DateTime<Utc>, tz: DisplayTz) -> Option<String> {
        let latest = self.policy.latest_expiry(now)?;
        [latest, latest - chrono::Duration::days(1)]
            .into_iter()
            .map(|t| tz.date(t))
            .find(|date| matches!(tz.parse_expiry(date, now), Ok(Some(at)) if at <= latest))
    }

    /// A new key for the next, separate creation (after a definite answer).
    pub fn renew_idempotency_key(&mut self) {
        self.idempotency_key = new_idempotency_key();
    }
}

fn new_idempotency_key() -> String {
    format!("keydeck-tui-{}", random_base62(24).as_str())
}

impl CreateForm {
    /// The create failed (`message` says why, for the admin): the form says
    /// so, at the fields the service named. Only a failure that may pass by
    /// itself keeps the idempotency key, so trying again can only make one key.
    pub fn failed(&mut self, error: ClientError, message: String) {
        self.submitting = false;
        match error {
            ClientError::Invalid { message, fields } => {
                self.renew_idempotency_key();
                self.errors = fields
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
                // Said once: at its field when the form has that field,
                // else above the buttons.
                let shown = ["name", "description", "expires_at", "scopes"];
                self.status = if !self.errors.is_empty()
                    && self.errors.keys().all(|k| shown.contains(&k.as_str()))
                {
                    None
                } else {
                    Some(message)
                };
                self.focus_first_problem();
            }
            e if e.is_transient() => {
                // Whether the key exists is unknown: keep the idempotency key so
                // that trying again can only ever make one.
                self.status = Some(format!(
                    "{message} The key may or may not exist; Enter tries again safely (it cannot create two)."
                ));
            }
            _ => {
                self.renew_idempotency_key();
                self.status = Some(message);
            }
        }
    }
}

/// Esc on a form with something in it: a yes throws the form away.
pub fn discard_question() -> Confirm {
    let lines = vec!["Discard this new key? What you typed will be lost.".into()];
    Confirm::ask("Discard new key", lines, "Discard", Then::CloseParent).no_label("Keep editing")
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

const LABEL: usize = 13;

pub fn draw(frame: &mut Frame, ctx: &Ctx, form: &CreateForm, area: Rect) {
    let width = area.width.min(76);
    let inner_width = usize::from(width.saturating_sub(2));
    let field_width = inner_width.saturating_sub(LABEL + 1).max(8);
    let mut lines: Vec<Line> = Vec::new();
    if let Some(note) = &form.reissues {
        lines.push(Line::from(note.clone()));
        lines.push(Line::from(""));
    }
    let cursor = text_fields(&mut lines, ctx, form, field_width);
    scope_boxes(&mut lines, ctx.theme, form, inner_width);
    error_line(&mut lines, ctx.theme, form, "scopes");
    // The message and the buttons always show whole, under the fields.
    let mut tail = vec![Line::from("")];
    status_and_buttons(&mut tail, ctx.theme, form);
    let text_width = width.saturating_sub(2);
    let body_rows = super::details::wrapped_rows(&lines, text_width);
    let tail_rows = super::details::wrapped_rows(&tail, text_width);
    // Centred as it is without its problem lines (✗ …) and message, and
    // growing down from there: a line that comes or goes does not move it.
    let problems = lines.iter().filter(|l| is_problem(l)).count();
    let rest_rows = (body_rows + 2 + 2).saturating_sub(u16::try_from(problems).unwrap_or(0));
    let popup = anchored(area, width, rest_rows, body_rows + tail_rows + 2);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(if form.reissues.is_some() {
            " Re-issue API key "
        } else {
            " New API key "
        })
        .title_bottom(keymap::border(Context::Create));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let tail_rows = tail_rows.min(inner.height);
    let [fields, bottom] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(tail_rows)]).areas(inner);
    // Fields that do not fit scroll so that the focused one shows.
    let scroll = cursor.map_or(0, |(_, y)| (y + 1).saturating_sub(fields.height));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        fields,
    );
    frame.render_widget(Paragraph::new(tail).wrap(Wrap { trim: false }), bottom);
    if let Some((x, y)) = cursor {
        if y >= scroll && y - scroll < fields.height {
            frame.set_cursor_position(Position::new(fields.x + x, fields.y + y - scroll));
        }
    }
}

/// A `✗ …` line: a problem with a field, there only while it lasts.
fn is_problem(line: &Line) -> bool {
    line.spans.iter().any(|s| s.content.starts_with("✗ "))
}

/// A `width` × `height` rectangle in `area`, placed where one `rest` rows
/// high would be centred, kept inside `area` (moved up only if it must).
fn anchored(area: Rect, width: u16, rest: u16, height: u16) -> Rect {
    let resting = centered(area, width, rest.min(height));
    let height = height.min(area.height);
    let y = resting.y.min(area.bottom().saturating_sub(height));
    Rect {
        y,
        height,
        ..resting
    }
}

/// Name, Description and Expiry, each with what is said under it; the
/// cursor's place (column, line) in the focused one.
fn text_fields(
    lines: &mut Vec<Line<'static>>,
    ctx: &Ctx,
    form: &CreateForm,
    field_width: usize,
) -> Option<(u16, u16)> {
    let theme = ctx.theme;
    let mut cursor = None;
    for (field, label, input, key) in [
        (Field::Name, "Name", &form.name, "name"),
        (
            Field::Description,
            "Description",
            &form.description,
            "description",
        ),
        (Field::Expiry, "Expiry", &form.expiry, "expires_at"),
    ] {
        let focused = form.focus == field;
        let (text, cursor_x) = visible(input, field_width);
        if focused {
            cursor = Some((
                u16::try_from(LABEL + cursor_x).unwrap_or(0),
                u16::try_from(lines.len()).unwrap_or(0),
            ));
        }
        let field_style = if focused {
            theme.focused_field()
        } else {
            theme.field()
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!("{label:<LABEL$}"),
                if focused { theme.title() } else { Style::new() },
            ),
            Span::styled(format!("{text:<field_width$}"), field_style),
        ]));
        if field == Field::Expiry {
            expiry_help(lines, ctx, form);
        }
        if field == Field::Description && form.policy.require_description {
            lines.push(policy_line("description required", theme));
        }
        error_line(lines, theme, form, key);
    }
    cursor
}

/// Under the Expiry field: the live preview (or what is wrong with it), the
/// accepted forms, and the policy's rule.
fn expiry_help(lines: &mut Vec<Line<'static>>, ctx: &Ctx, form: &CreateForm) {
    let theme = ctx.theme;
    let flagged = form.errors.contains_key("expires_at");
    match form.expiry_preview(ctx.now, ctx.tz) {
        Ok(preview) if !flagged => {
            lines.push(Line::from(vec![
                Span::raw(" ".repeat(LABEL)),
                Span::styled(preview, theme.dim()),
            ]));
        }
        Ok(_) => {}
        Err(problem) if !flagged => {
            lines.push(Line::from(vec![
                Span::raw(" ".repeat(LABEL)),
                Span::styled(format!("✗ {problem}"), theme.error_text()),
            ]));
        }
        Err(_) => {}
    }
    lines.push(Line::from(Span::styled(
        format!("{:LABEL$}{}", "", form.expiry_examples(ctx.now, ctx.tz)),
        theme.dim(),
    )));
    if let Some(rule) = form.policy.expiry_rule() {
        lines.push(policy_line(&rule, theme));
    }
}

/// The service's (or the form's) problem with `field`, under it.
fn error_line(lines: &mut Vec<Line<'static>>, theme: &Styles, form: &CreateForm, field: &str) {
    if let Some(problem) = form.errors.get(field) {
        lines.push(Line::from(vec![
            Span::raw(" ".repeat(LABEL)),
            Span::styled(format!("✗ {problem}"), theme.error_text()),
        ]));
    }
}

/// One checkbox per scope, by the name the table and details give it, the
/// focused one reversed; the full label, dimmed, after the names where it
/// says more (`[x] Sessions:R   Sessions (Read)`), cut with `…` to stay on
/// its line in `width` columns.
fn scope_boxes(lines: &mut Vec<Line<'static>>, theme: &Styles, form: &CreateForm, width: usize) {
    let names: Vec<String> = form
        .scopes
        .iter()
        .map(|(s, _)| present::scope_name_of(s))
        .collect();
    let name_width = names.iter().map(|n| n.width()).max().unwrap_or(0);
    for (i, ((scope, on), name)) in form.scopes.iter().zip(&names).enumerate() {
        let focused = form.focus == Field::Scope(i);
        let reporter = scope.id == LEAKS_REPORT;
        let label = match (i, reporter) {
            (_, true) => "Reporter",
            (0, _) => "Scopes",
            _ => "",
        };
        if reporter {
            lines.push(Line::from(""));
        }
        let mark = if *on { "[x]" } else { "[ ]" };
        let mut spans = vec![
            Span::raw(format!("{label:<LABEL$}")),
            Span::styled(
                format!("{mark} {name}"),
                if focused {
                    theme.selected()
                } else {
                    Style::new()
                },
            ),
        ];
        let room = width.saturating_sub(LABEL + 4 + name_width + 2);
        if *name != scope.label && room >= 4 {
            let pad = " ".repeat(name_width - name.width() + 2);
            let label = cut(&scope.label, room);
            spans.push(Span::styled(format!("{pad}{label}"), theme.dim()));
        }
        lines.push(Line::from(spans));
        if reporter {
            // Apart from the others: what it is for, since it allows nothing else.
            let what = "for a scanner or CI: can only report leaked keys";
            lines.push(Line::from(Span::styled(
                format!("{:LABEL$}{}", "", cut(what, width.saturating_sub(LABEL))),
                theme.dim(),
            )));
        }
    }
}

/// The last attempt's message, then Create and Cancel.
fn status_and_buttons(lines: &mut Vec<Line<'static>>, theme: &Styles, form: &CreateForm) {
    if let Some(status) = &form.status {
        lines.push(Line::from(Span::styled(
            status.clone(),
            if form.submitting {
                theme.dim()
            } else {
                theme.error_text()
            },
        )));
    }
    lines.push(Line::from(vec![
        Span::raw(" ".repeat(LABEL)),
        button("Create", form.focus == Field::Create, theme),
        Span::raw("  "),
        button("Cancel", form.focus == Field::Cancel, theme),
    ]));
}

/// "policy: expiry required, at most 90 days", under the field it is about.
fn policy_line(rule: &str, theme: &Styles) -> Line<'static> {
    Line::from(vec![
        Span::raw(" ".repeat(LABEL)),
        Span::styled(format!("policy: {rule}"), theme.title()),
    ])
}

/// `text` in at most `width` columns, cut with `…` when longer.
fn cut(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        used += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + 1 > width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// The part of an input that fits in `width`, and the cursor's column in it.
fn visible(input: &Input, width: usize) -> (String, usize) {
    let scroll = input.visual_scroll(width.saturating_sub(1));
    let text: String = input.value().chars().skip(scroll).take(width).collect();
    (text, input.visual_cursor().saturating_sub(scroll))
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
    fn each_scope_reads_its_name_then_its_label_on_one_line() {
        let long = ScopeInfo {
            id: "reports:export".into(),
            label: "Quarterly financial reports export for the board and auditors".into(),
            description: String::new(),
        };
        let mut catalogue: Vec<ScopeInfo> = SCOPES.iter().map(Into::into).collect();
        catalogue.insert(0, long);
        let f = CreateForm::new(&catalogue);
        let theme = Styles::new(
            crate::tui::theme::Theme { color: false },
            crate::present::Palette::Dark,
        );
        let mut lines = Vec::new();
        scope_boxes(&mut lines, &theme, &f, 74);
        let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
        assert_eq!(
            text[1].trim_end(),
            "             [ ] Sessions:R            Sessions (Read)"
        );
        assert!(text[0].starts_with("Scopes       [ ] Quarterly financial…  Quarterly"));
        assert!(text[0].ends_with('…'), "{}", text[0]);
        assert!(text.iter().all(|l| l.width() <= 74), "{text:#?}");
        assert_eq!(cut("Quarterly financial", 10), "Quarterly…");
        assert_eq!(cut("Export", 6), "Export");
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
    fn the_reporter_scope_is_apart_and_refused_with_another() {
        let mut catalogue: Vec<ScopeInfo> = SCOPES.iter().map(Into::into).collect();
        catalogue.insert(0, (&scope::REPORTER).into());
        let mut f = CreateForm::new(&catalogue);
        let ids: Vec<&str> = f.scopes.iter().map(|(s, _)| s.id.as_str()).collect();
        assert_eq!(
            ids[4..],
            [FULL_ACCESS, LEAKS_REPORT],
            "last, after Full Access"
        );
        f.toggle(4);
        assert_eq!(
            ticked(&f),
            [true, true, true, true, true, false],
            "not in Full Access"
        );
        f.toggle(4);
        f.name = Input::new("CI".into());
        let now = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let utc = DisplayTz::Fixed(chrono::FixedOffset::east_opt(0).unwrap());
        f.toggle(5);
        assert_eq!(f.request(now, utc).unwrap().scopes, [LEAKS_REPORT]);
        f.toggle(0);
        assert_eq!(ticked(&f), [true, false, false, false, false, true]);
        let errors = f.request(now, utc).unwrap_err();
        assert!(
            errors["scopes"].contains("cannot be combined"),
            "{errors:?}"
        );
    }

    #[test]
    fn the_examples_are_only_what_the_policy_allows() {
        let utc = DisplayTz::Fixed(chrono::FixedOffset::east_opt(0).unwrap());
        let now = DateTime::from_timestamp(1_900_000_000, 0).unwrap(); // 2030-03-17 17:46
        let under = |policy| form().with_policy(policy).expiry_examples(now, utc);
        let max = |d| Policy {
            max_lifetime_days: Some(d),
            ..Policy::default()
        };
        assert_eq!(
            under(Policy::default()),
            "e.g. 30d, 90d, 1y, 2027-01-31; empty for none"
        );
        assert_eq!(
            under(Policy {
                require_expiry: true,
                ..Policy::default()
            }),
            "e.g. 30d, 90d, 1y, 2027-01-31"
        );
        assert_eq!(
            under(max(90)),
            "e.g. 7d, 30d, 90d or a date up to 2030-06-14"
        );
        assert_eq!(
            under(max(45)),
            "e.g. 7d, 30d, 45d or a date up to 2030-04-30"
        );
        assert_eq!(
            under(max(400)),
            "e.g. 90d, 1y, 400d or a date up to 2031-04-20"
        );
        assert_eq!(under(max(1)), "e.g. 1d or a date up to 2030-03-17");
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
