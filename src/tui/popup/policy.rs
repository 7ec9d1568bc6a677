//! The policy screen (`P`): every field of the organisation's key policy with
//! its value and what it means, edited in place (digits into numbers, Space
//! toggles a rule or cycles the leak action); Enter lists the changes old →
//! new and asks before the app sends them (`PUT /v1/policy`). The same
//! limits as the service's ([`Policy::invalid_field`]) are checked first, and
//! the service's own objections are shown at their field. While the save
//! is on its way Esc still closes the screen: the app then says the outcome
//! on its status line. Every key a hint names is the keymap's.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::details::hanging;
use super::{centered, Confirm, Ctx, Intent, Popup, Then};
use crate::client::ClientError;
use crate::key::policy::{in_days, OnLeak, Policy};
use crate::tui::keymap::{self, Command, Context};
use crate::tui::view::cut;

/// Digits a number field holds at most (enough to type one over its limit).
const DIGITS_MAX: usize = 7;

/// One field of the policy, in the order the screen lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ExpiringWithin,
    RotateAfter,
    UnusedAfter,
    MaxLifetime,
    RequireExpiry,
    RequireDescription,
    OnLeak,
    LeakGrace,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::ExpiringWithin,
        Field::RotateAfter,
        Field::UnusedAfter,
        Field::MaxLifetime,
        Field::RequireExpiry,
        Field::RequireDescription,
        Field::OnLeak,
        Field::LeakGrace,
    ];

    /// Its name in the API's JSON (and in the service's `error.fields`).
    pub fn id(self) -> &'static str {
        match self {
            Field::ExpiringWithin => "expiring_within_days",
            Field::RotateAfter => "rotate_after_days",
            Field::UnusedAfter => "unused_after_days",
            Field::MaxLifetime => "max_lifetime_days",
            Field::RequireExpiry => "require_expiry",
            Field::RequireDescription => "require_description",
            Field::OnLeak => "on_leak",
            Field::LeakGrace => "leak_grace_seconds",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Field::ExpiringWithin => "Expiring within",
            Field::RotateAfter => "Rotation due after",
            Field::UnusedAfter => "Unused after",
            Field::MaxLifetime => "Max lifetime",
            Field::RequireExpiry => "Require expiry",
            Field::RequireDescription => "Require description",
            Field::OnLeak => "On leak",
            Field::LeakGrace => "Leak grace",
        }
    }

    /// What it means, in a few words (at most 42 columns: whole at 80).
    pub fn meaning(self) -> &'static str {
        match self {
            Field::ExpiringWithin => "badge expiring: active, expiring this soon",
            Field::RotateAfter => "badge rotate: active, created longer ago",
            Field::UnusedAfter => "badge unused: active, not used this long",
            Field::MaxLifetime => "longest expiry of a new key (empty: none)",
            Field::RequireExpiry => "new keys must have an expiry date",
            Field::RequireDescription => "new keys must have a description",
            Field::OnLeak => "a leak report: revoke, rotate or flag it",
            Field::LeakGrace => "rotate on leak: old key works this long",
        }
    }

    /// Whether digits are typed into it.
    fn is_number(self) -> bool {
        matches!(
            self,
            Field::ExpiringWithin
                | Field::RotateAfter
                | Field::UnusedAfter
                | Field::MaxLifetime
                | Field::LeakGrace
        )
    }

    /// Its value in `policy`, as the screen and the confirmation say it.
    pub fn shown(self, policy: &Policy) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
        match self {
            Field::ExpiringWithin => in_days(policy.expiring_within_days),
            Field::RotateAfter => in_days(policy.rotate_after_days),
            Field::UnusedAfter => in_days(policy.unused_after_days),
            Field::MaxLifetime => policy
                .max_lifetime_days
                .map_or_else(|| "none".to_owned(), in_days),
            Field::RequireExpiry => yes_no(policy.require_expiry),
            Field::RequireDescription => yes_no(policy.require_description),
            Field::OnLeak => policy.on_leak.as_str().to_owned(),
            Field::LeakGrace => format!("{} s", policy.leak_grace_seconds),
        }
    }

    /// The unit after a number field's digits.
    fn unit(self) -> &'static str {
        if self == Field::LeakGrace {
            "s"
        } else {
            "days"
        }
    }

    fn of_id(id: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.id() == id)
    }
}

/// The policy screen's state: the policy as the service has it, the draft
/// being edited, and what the last try said.
#[derive(Debug, Clone)]
pub struct PolicyEditor {
    /// The policy in force (what Esc leaves).
    pub current: Policy,
    /// The rules and the leak action as edited (numbers are in `text`).
    draft: Policy,
    /// The digits typed into each number field, by [`Field::ALL`]'s index.
    text: [String; 8],
    pub selected: usize,
    /// A problem with one field (its index), in the service's words.
    pub field_error: Option<(usize, String)>,
    /// A problem with the whole (the service unreachable, 403).
    pub error: Option<String>,
    /// Sent, waiting for the answer.
    pub saving: bool,
    /// Enter with nothing changed says so.
    pub note: Option<String>,
}

impl PolicyEditor {
    pub fn new(current: Policy) -> Self {
        let mut editor = Self {
            current,
            draft: current,
            text: Default::default(),
            selected: 0,
            field_error: None,
            error: None,
            saving: false,
            note: None,
        };
        editor.reset_to(current);
        editor
    }

    /// The screen opened again while its save is on its way: the policy
    /// sent, waiting for the answer as the screen that sent it did.
    pub fn sending(current: Policy, sent: Policy) -> Self {
        let mut editor = Self::new(sent);
        editor.current = current;
        editor.sent();
        editor
    }

    fn reset_to(&mut self, policy: Policy) {
        self.current = policy;
        self.draft = policy;
        for (i, field) in Field::ALL.into_iter().enumerate() {
            self.text[i] = match field {
                Field::ExpiringWithin => policy.expiring_within_days.to_string(),
                Field::RotateAfter => policy.rotate_after_days.to_string(),
                Field::UnusedAfter => policy.unused_after_days.to_string(),
                Field::MaxLifetime => policy
                    .max_lifetime_days
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                Field::LeakGrace => policy.leak_grace_seconds.to_string(),
                _ => String::new(),
            };
        }
    }

    /// Whether anything was edited.
    pub fn touched(&self) -> bool {
        self.policy() != Ok(self.current)
    }

    /// The policy loaded again (another admin may have changed it): taken
    /// as it is unless something was edited or sent.
    pub fn reloaded(&mut self, policy: Policy) {
        if !self.saving && !self.touched() {
            self.reset_to(policy);
        }
    }

    pub fn selected_field(&self) -> Field {
        Field::ALL[self.selected]
    }

    /// The policy as edited, or the first number field that is no number
    /// (its index and why).
    pub fn policy(&self) -> Result<Policy, (usize, String)> {
        let mut policy = self.draft;
        for (i, field) in Field::ALL.into_iter().enumerate() {
            if !field.is_number() {
                continue;
            }
            let text = &self.text[i];
            if field == Field::MaxLifetime && text.is_empty() {
                policy.max_lifetime_days = None;
                continue;
            }
            let Ok(n) = text.parse::<u32>() else {
                return Err((
                    i,
                    format!("{}: type a number of {}", field.id(), field.unit()),
                ));
            };
            match field {
                Field::ExpiringWithin => policy.expiring_within_days = n,
                Field::RotateAfter => policy.rotate_after_days = n,
                Field::UnusedAfter => policy.unused_after_days = n,
                Field::MaxLifetime => policy.max_lifetime_days = Some(n),
                Field::LeakGrace => policy.leak_grace_seconds = n,
                _ => {}
            }
        }
        Ok(policy)
    }

    /// The fields `new` changes from the policy in force, as "old → new" lines.
    pub fn changes(&self, new: &Policy) -> Vec<String> {
        Field::ALL
            .into_iter()
            .filter(|f| f.shown(&self.current) != f.shown(new))
            .map(|f| {
                format!(
                    "{}: {} → {}",
                    f.label(),
                    f.shown(&self.current),
                    f.shown(new)
                )
            })
            .collect()
    }

    /// What a key does to the screen, as the app should carry it out.
    pub fn handle(&mut self, command: Option<Command>, key: KeyEvent) -> Intent {
        if command == Some(Command::Cancel) {
            return Intent::Close;
        }
        if self.saving {
            return Intent::Stay;
        }
        self.note = None;
        if self.typed(command, &key) {
            return Intent::Stay;
        }
        match command {
            Some(Command::Down) => self.selected = (self.selected + 1).min(Field::ALL.len() - 1),
            Some(Command::Up) => self.selected = self.selected.saturating_sub(1),
            Some(Command::Tick) => self.toggle(),
            Some(Command::Submit) => return self.submit(),
            _ => {}
        }
        Intent::Stay
    }

    /// Space: a rule on or off, the next leak action.
    fn toggle(&mut self) {
        match self.selected_field() {
            Field::RequireExpiry => self.draft.require_expiry = !self.draft.require_expiry,
            Field::RequireDescription => {
                self.draft.require_description = !self.draft.require_description;
            }
            Field::OnLeak => {
                self.draft.on_leak = match self.draft.on_leak {
                    OnLeak::Revoke => OnLeak::Rotate,
                    OnLeak::Rotate => OnLeak::Flag,
                    OnLeak::Flag => OnLeak::Revoke,
                };
            }
            _ => return,
        }
        self.clear_error_at(self.selected);
    }

    /// A digit typed, or the last one erased, in the number field selected.
    fn typed(&mut self, command: Option<Command>, key: &KeyEvent) -> bool {
        let field = self.selected_field();
        if !field.is_number() || !(key.modifiers - KeyModifiers::SHIFT).is_empty() {
            return false;
        }
        let text = &mut self.text[self.selected];
        match key.code {
            KeyCode::Char(c) if c.is_ascii_digit() => {
                if text.len() < DIGITS_MAX {
                    text.push(c);
                }
            }
            _ if command == Some(Command::Erase) => {
                text.pop();
            }
            _ => return false,
        }
        self.clear_error_at(self.selected);
        true
    }

    fn clear_error_at(&mut self, index: usize) {
        if self.field_error.as_ref().is_some_and(|(i, _)| *i == index) {
            self.field_error = None;
        }
        self.error = None;
    }

    /// Enter: the policy's limits checked here as the service checks them,
    /// then the changes, old → new, in a question whose yes saves them.
    fn submit(&mut self) -> Intent {
        let policy = match self.policy() {
            Ok(policy) => policy,
            Err(problem) => return self.refuse(problem),
        };
        if let Some((id, message)) = policy.invalid_field() {
            let index = Field::of_id(id).map_or(self.selected, |f| f as usize);
            return self.refuse((index, message));
        }
        let changes = self.changes(&policy);
        if changes.is_empty() {
            self.note = Some("Nothing changed: the policy is as it was.".into());
            return Intent::Stay;
        }
        let mut lines = changes;
        lines.push(String::new());
        lines.push("Existing keys are not changed; badges and new keys follow it.".into());
        Intent::Open(Popup::Confirm(Box::new(Confirm::ask(
            "Change the policy?",
            lines,
            "Save",
            Then::SavePolicy(policy),
        ))))
    }

    fn refuse(&mut self, (index, message): (usize, String)) -> Intent {
        self.selected = index;
        self.field_error = Some((index, message));
        Intent::Stay
    }

    /// The save was sent.
    pub fn sent(&mut self) {
        self.saving = true;
        self.error = None;
        self.field_error = None;
    }

    /// The service refused the save: its words at the field it names, else
    /// over the fields. Nothing was changed.
    pub fn failed(&mut self, error: ClientError, source: &str) {
        self.saving = false;
        if let ClientError::Invalid { fields, .. } = &error {
            let named = fields
                .iter()
                .find_map(|(id, message)| Some((Field::of_id(id)? as usize, message.clone())));
            if let Some(problem) = named {
                self.refuse(problem);
                return;
            }
        }
        self.error = Some(save_problem(&error, source));
    }
}

/// The key bound to `command` on this screen (or in `context`), as hints say it.
fn key(context: Context, command: Command) -> String {
    keymap::key_of(context, command).unwrap_or_default()
}

/// Why a save did not happen, in one line, for the screen and (when it was
/// closed meanwhile) the status line: the service's own words, and what to
/// do with the keymap's keys. Not the table's banner ("press r to retry"):
/// a save is never retried by itself.
pub fn save_problem(error: &ClientError, source: &str) -> String {
    let again = key(Context::Policy, Command::Submit);
    let open = key(Context::Table, Command::Policy);
    match error {
        ClientError::Unreachable(_) => format!(
            "Cannot reach the key service at {source} ({again} on the policy screen sends it again)."
        ),
        ClientError::Timeout => format!(
            "The key service at {source} did not answer in time: {open} shows whether the policy changed."
        ),
        ClientError::Forbidden(message) => format!("{} (403).", message.trim_end_matches('.')),
        ClientError::Invalid { message, fields } => {
            let message = message.trim_end_matches('.');
            let fields: Vec<String> = fields.iter().map(|(id, m)| format!("{id}: {m}")).collect();
            if fields.is_empty() {
                format!("{message} (400).")
            } else {
                format!("{message} (400): {}.", fields.join("; "))
            }
        }
        ClientError::Server(message) => format!(
            "The key service failed: {message} ({open} shows the policy in force)"
        ),
        other => format!("{other}."),
    }
}

/// One field's line: label, value (the cursor in a number being edited) and
/// meaning, cut to `width`.
fn field_line<'a>(ctx: &Ctx, editor: &PolicyEditor, index: usize, width: usize) -> Line<'a> {
    const LABEL: usize = 20;
    const VALUE: usize = 13;
    let theme = ctx.theme;
    let field = Field::ALL[index];
    let focused = index == editor.selected;
    let value = match field {
        Field::RequireExpiry => check(editor.draft.require_expiry),
        Field::RequireDescription => check(editor.draft.require_description),
        Field::OnLeak => format!("‹ {} ›", editor.draft.on_leak.as_str()),
        _ => {
            let text = &editor.text[index];
            let cursor = if focused { "█" } else { "" };
            if text.is_empty() && !focused {
                "none".to_owned()
            } else {
                format!("{text}{cursor} {}", field.unit())
            }
        }
    };
    let value_style = if focused {
        theme.focused_field()
    } else {
        theme.field()
    };
    let marker = if focused { "› " } else { "  " };
    let meaning = cut::end(field.meaning(), width.saturating_sub(2 + LABEL + VALUE + 1));
    Line::from(vec![
        Span::raw(marker),
        Span::styled(format!("{:<LABEL$}", field.label()), theme.title()),
        Span::styled(format!("{value:<VALUE$}"), value_style),
        Span::raw(" "),
        Span::styled(meaning, theme.dim()),
    ])
}

fn check(on: bool) -> String {
    if on { "[x] yes" } else { "[ ] no" }.to_owned()
}

pub fn draw(frame: &mut Frame, ctx: &Ctx, editor: &PolicyEditor, area: Rect) {
    let theme = ctx.theme;
    let width = area.width.min(86);
    let inner = usize::from(width.saturating_sub(2));
    let erase = key(Context::Policy, Command::Erase);
    let toggle = key(Context::Policy, Command::Tick);
    let mut lines = vec![
        Line::from("Badge thresholds, rules for new keys and what a leak report does."),
        Line::styled(
            format!("Digits type into a number, {erase} deletes; {toggle} toggles or cycles."),
            theme.dim(),
        ),
        Line::from(""),
    ];
    for index in 0..Field::ALL.len() {
        lines.push(field_line(ctx, editor, index, inner));
        if let Some((i, message)) = &editor.field_error {
            if *i == index {
                let line = Line::styled(format!("    ✗ {message}"), theme.error_text());
                lines.extend(hanging(line, inner, 6));
            }
        }
    }
    let mut said = |line: Line<'static>| {
        lines.push(Line::from(""));
        lines.extend(hanging(line, inner, 0));
    };
    if let Some(error) = &editor.error {
        said(Line::styled(error.clone(), theme.error_text()));
    }
    if let Some(note) = &editor.note {
        said(Line::from(note.clone()));
    }
    if editor.saving {
        let close = key(Context::Policy, Command::Cancel);
        said(Line::from(format!(
            "Saving… ({close} closes the screen; the status line says how it went.)"
        )));
    }
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(" Organisation policy ")
        .title_bottom(keymap::border(Context::Policy));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn press(editor: &mut PolicyEditor, code: KeyCode) -> Intent {
        let event = key(code);
        let command = keymap::command(Context::Policy, &event);
        editor.handle(command, event)
    }

    #[test]
    fn digits_edit_a_number_and_space_cycles_the_leak_action() {
        let mut editor = PolicyEditor::new(Policy::default());
        press(&mut editor, KeyCode::Down); // Rotation due after
        press(&mut editor, KeyCode::Backspace);
        press(&mut editor, KeyCode::Backspace);
        press(&mut editor, KeyCode::Char('6'));
        press(&mut editor, KeyCode::Char('0'));
        for _ in 0..5 {
            press(&mut editor, KeyCode::Down);
        }
        assert_eq!(editor.selected_field(), Field::OnLeak);
        press(&mut editor, KeyCode::Char(' '));
        let policy = editor.policy().unwrap();
        assert_eq!(policy.rotate_after_days, 60);
        assert_eq!(policy.on_leak, OnLeak::Rotate);
        assert_eq!(
            editor.changes(&policy),
            [
                "Rotation due after: 90 days → 60 days",
                "On leak: revoke → rotate"
            ]
        );
        assert!(matches!(
            press(&mut editor, KeyCode::Enter),
            Intent::Open(Popup::Confirm(_))
        ));
    }

    #[test]
    fn a_value_out_of_its_limits_is_refused_at_its_field() {
        let mut editor = PolicyEditor::new(Policy::default());
        press(&mut editor, KeyCode::Down);
        press(&mut editor, KeyCode::Down); // Unused after
        press(&mut editor, KeyCode::Backspace);
        press(&mut editor, KeyCode::Backspace);
        press(&mut editor, KeyCode::Char('0'));
        press(&mut editor, KeyCode::Up);
        assert!(matches!(press(&mut editor, KeyCode::Enter), Intent::Stay));
        assert_eq!(editor.selected_field(), Field::UnusedAfter);
        assert_eq!(
            editor.field_error,
            Some((
                2,
                "unused_after_days must be between 1 and 3650 days, not 0".into()
            ))
        );
    }

    #[test]
    fn the_services_field_error_is_shown_at_its_field() {
        let mut editor = PolicyEditor::new(Policy::default());
        editor.sent();
        let mut fields = crate::key::validate::FieldErrors::new();
        fields.insert("leak_grace_seconds".into(), "too long".into());
        editor.failed(
            ClientError::Invalid {
                message: "invalid".into(),
                fields,
            },
            "here",
        );
        assert!(!editor.saving);
        assert_eq!(editor.field_error, Some((7, "too long".into())));
        assert_eq!(editor.selected_field(), Field::LeakGrace);
    }
}
