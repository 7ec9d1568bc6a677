//! The rotate dialog (`R`): the question, the grace period the old key keeps
//! working (now, 1 hour, 24 hours, or another span typed in), its keys and
//! drawing; a yes asks the app to rotate. A key a rotation already replaced gets a notice naming its
//! successor (rotate that one); an expired or revoked key is re-issued
//! through the create form, filled in with its name, description and scopes.

use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::confirm::{self, decide, Decision};
use super::{cycle, Confirm, CreateForm, Ctx, Intent, Popup, Then};
use crate::api::ApiKey;
use crate::key::policy::{in_days, Policy};
use crate::key::KeyStatus;
use crate::present::{self, DisplayTz};
use crate::tui::keymap::{self, Command, Context};
use chrono::{DateTime, Utc};

/// Grace periods offered when rotating: (label, seconds), the choices the
/// CLI's `--grace` offers too ([`present::GRACE_CHOICES`]); one more, the
/// "other" field (key 4), takes any span up to 24 hours.
pub const GRACE_CHOICES: [(&str, u32); 3] = [
    (
        present::GRACE_CHOICES[0].label,
        present::GRACE_CHOICES[0].seconds,
    ),
    (
        present::GRACE_CHOICES[1].label,
        present::GRACE_CHOICES[1].seconds,
    ),
    (
        present::GRACE_CHOICES[2].label,
        present::GRACE_CHOICES[2].seconds,
    ),
];

/// The index of the "other" choice: a span typed in.
pub const GRACE_OTHER: usize = GRACE_CHOICES.len();

/// Characters the "other" field holds at most (`24h`, `1440m`, `86400`).
const OTHER_MAX: usize = 8;

const BUTTONS: [&str; 2] = ["Rotate", "Cancel"];

#[derive(Debug, Clone)]
pub struct Rotate {
    pub key: ApiKey,
    pub lines: Vec<String>,
    /// The focused button (starts on Cancel).
    pub focus: usize,
    /// Index into [`GRACE_CHOICES`], or [`GRACE_OTHER`].
    pub grace: usize,
    /// The span typed into the "other" field.
    pub other: String,
    /// Why the "other" span was not taken, until it changes.
    pub error: Option<String>,
}

/// What `R` opens for `key` (`ctx`: every key, for its successor, and the
/// scope catalogue): the rotate dialog (saying once what the new key's
/// expiry will be and why), the notice that a rotation already replaced it, or the
/// create form to re-issue a key that no longer works.
pub fn ask(key: &ApiKey, ctx: &Ctx) -> Popup {
    let (policy, now, tz) = (ctx.policy, ctx.now, ctx.tz);
    let status = KeyStatus::derive(key.revoked_at, key.expires_at, now);
    if let Some(successor) = &key.replaced_by {
        return Popup::Confirm(Box::new(already_replaced(key, status, successor, ctx)));
    }
    match status {
        KeyStatus::Active => Popup::Rotate(Box::new(Rotate::new(
            key,
            new_key_expiry(key, policy, now, tz),
        ))),
        KeyStatus::Expired | KeyStatus::Revoked => Popup::Create(Box::new(
            CreateForm::new(ctx.scopes)
                .with_policy(*policy)
                .reissue(key, status),
        )),
    }
}

/// The one line that says what the new key's expiry will be and why: the
/// old key's own (the service keeps it), or the policy's, which caps it to
/// the maximum lifetime or gives a key without one a rotation period. Short
/// enough for one line of the dialog.
pub fn new_key_expiry(key: &ApiKey, policy: &Policy, now: DateTime<Utc>, tz: DisplayTz) -> String {
    let new = policy.rotated_expiry(now, key.expires_at);
    match (new, policy.max_lifetime_days) {
        (None, _) => "New expiry: none (the same as the old key).".to_owned(),
        (Some(at), _) if new == key.expires_at => format!(
            "New expiry: {} (the same as the old key).",
            tz.weekday_time(at)
        ),
        (Some(at), Some(max)) => format!(
            "New expiry: {} (policy: at most {}).",
            tz.weekday_time(at),
            in_days(max)
        ),
        (Some(at), None) => format!(
            "New expiry: {} (required by policy: {}).",
            tz.weekday_time(at),
            in_days(policy.rotate_after_days)
        ),
    }
}

/// "“svc” is already being replaced by eg_live_6OG8… (rotated Mon 2030-01-15
/// 09:00; it keeps working until 10:00). Rotate that key instead." — the
/// same refusal the service answers with (409).
fn already_replaced(key: &ApiKey, status: KeyStatus, successor: &str, ctx: &Ctx) -> Confirm {
    let found = ctx.key_by_id(successor);
    let by = crate::present::linked_key(successor, found);
    let rotated = found.map_or_else(String::new, |k| {
        format!(" (rotated {})", ctx.tz.weekday_time(k.created_at))
    });
    let first = match (status, key.expires_at) {
        (KeyStatus::Active, Some(end)) => format!(
            "“{}” is already being replaced by {by}{rotated}; it keeps working until {}.",
            key.name,
            ctx.tz.weekday_time(end)
        ),
        (KeyStatus::Active, None) => {
            format!("“{}” is already being replaced by {by}{rotated}.", key.name)
        }
        (status, _) => format!(
            "“{}” is {} and was replaced by {by}{rotated}.",
            key.name,
            status.as_str()
        ),
    };
    Confirm::notice(
        "Already rotated",
        vec![first, format!("Rotate {by} instead.")],
    )
}

/// The service refused a rotation (409): another admin rotated the key
/// first, or it stopped working meanwhile. Its words, as a notice.
pub fn refused(message: &str) -> Popup {
    Popup::Confirm(Box::new(Confirm::notice(
        "Cannot rotate",
        vec![message.to_owned()],
    )))
}

impl Rotate {
    /// The dialog for `key`; `expiry`: what the new key's expiry will be
    /// and why ([`new_key_expiry`]).
    pub fn new(key: &ApiKey, expiry: String) -> Self {
        let lines = vec![
            format!("“{}”  {}...", key.name, key.prefix),
            String::new(),
            "A new key with the same name, description and scopes, shown once.".into(),
            expiry,
            "The old key stops working (←/→ or 1-4 to choose):".into(),
        ];
        Self {
            key: key.clone(),
            lines,
            focus: 1,
            grace: 1,
            other: String::new(),
            error: None,
        }
    }

    /// `R` on the table while `marked` keys are marked: the dialog says it
    /// rotates the selected key alone, as every action on one key does
    /// (marks are for revoke, the keymap's key for it), and the marks stay.
    pub fn with_marks(mut self, marked: usize) -> Self {
        if marked == 0 {
            return self;
        }
        let revoke = keymap::key_of(Context::Table, Command::Revoke).unwrap_or_default();
        let (are, stay) = if marked == 1 {
            ("is", "stays")
        } else {
            ("are", "stay")
        };
        self.lines.insert(
            1,
            format!(
                "Only this key, the selected one, is rotated: the {} {are} for {revoke} (revoke) and {stay} marked.",
                present::count(marked, "marked key", "marked keys")
            ),
        );
        self
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Decision {
        if self.typed(&key) {
            return Decision::Undecided;
        }
        self.on_command(keymap::command(Context::Rotate, &key))
    }

    /// What a key does to the dialog, as the app should carry it out: with
    /// "other" chosen, digits, `s`, `m`, `h`, `d` and Backspace edit its span.
    pub fn handle(&mut self, command: Option<Command>, key: KeyEvent) -> Intent {
        if self.typed(&key) {
            return Intent::Stay;
        }
        match self.on_command(command) {
            Decision::Undecided => Intent::Stay,
            Decision::No => Intent::Close,
            Decision::Yes => match self.grace_seconds() {
                Ok(grace_seconds) => Intent::CloseThen(Then::Rotate {
                    key: self.key.clone(),
                    grace_seconds,
                }),
                Err(error) => {
                    self.error = Some(error);
                    Intent::Stay
                }
            },
        }
    }

    /// The grace period chosen, or why the "other" span is not one.
    pub fn grace_seconds(&self) -> Result<u32, String> {
        match GRACE_CHOICES.get(self.grace) {
            Some((_, seconds)) => Ok(*seconds),
            None if self.other.is_empty() => Err(format!(
                "Type the grace period: {}.",
                present::GRACE_CUSTOM_HINT
            )),
            None => present::parse_grace(&self.other),
        }
    }

    /// A key typed into the "other" field (only while it is chosen).
    fn typed(&mut self, key: &KeyEvent) -> bool {
        use crossterm::event::{KeyCode, KeyModifiers};
        if self.grace != GRACE_OTHER || !(key.modifiers - KeyModifiers::SHIFT).is_empty() {
            return false;
        }
        match key.code {
            KeyCode::Char(c) if c.is_ascii_digit() || "smhd".contains(c) => {
                if self.other.len() < OTHER_MAX {
                    self.other.push(c);
                }
            }
            KeyCode::Backspace => {
                self.other.pop();
            }
            _ => return false,
        }
        self.error = None;
        true
    }

    pub fn on_command(&mut self, command: Option<Command>) -> Decision {
        match command {
            Some(Command::GraceNext | Command::GracePrev) => {
                // ←/→ go round the fixed choices; "other" is key 4.
                let forward = command == Some(Command::GraceNext);
                self.grace = match self.grace {
                    GRACE_OTHER if forward => 0,
                    GRACE_OTHER => GRACE_CHOICES.len() - 1,
                    i => cycle(i, GRACE_CHOICES.len(), forward),
                };
                Decision::Undecided
            }
            Some(Command::Grace(i)) => {
                self.grace = usize::from(i).min(GRACE_OTHER);
                Decision::Undecided
            }
            _ => decide(&mut self.focus, BUTTONS.len(), command),
        }
    }
}

pub fn draw(frame: &mut Frame, ctx: &Ctx, dialog: &Rotate, area: Rect) {
    let theme = ctx.theme;
    let mut lines: Vec<Line> = dialog.lines.iter().map(|l| Line::from(l.clone())).collect();
    let mut choices = vec![Span::raw("  ")];
    for (i, (label, _)) in GRACE_CHOICES.iter().enumerate() {
        let mark = if i == dialog.grace { "(•)" } else { "( )" };
        let style = if i == dialog.grace {
            theme.title()
        } else {
            theme.dim()
        };
        choices.push(Span::styled(format!("{mark} {} {label}", i + 1), style));
        choices.push(Span::raw("  "));
    }
    lines.push(Line::from(choices));
    lines.push(other_line(ctx, dialog));
    if let Some(error) = &dialog.error {
        lines.push(Line::styled(error.clone(), theme.error_text()));
    }
    let buttons = confirm::buttons(&BUTTONS, dialog.focus, theme);
    confirm::draw_box(
        frame,
        area,
        "Rotate API key",
        lines,
        buttons,
        Context::Rotate,
    );
}

/// `  ( ) 4 other: 30m▏  any span up to 24h, like 30m or 2h`.
fn other_line<'a>(ctx: &Ctx, dialog: &Rotate) -> Line<'a> {
    let chosen = dialog.grace == GRACE_OTHER;
    let (mark, style) = if chosen {
        ("(•)", ctx.theme.title())
    } else {
        ("( )", ctx.theme.dim())
    };
    let field = if chosen {
        format!("{}▏", dialog.other)
    } else {
        dialog.other.clone()
    };
    Line::from(vec![
        Span::raw("  "),
        Span::styled(format!("{mark} {} other: {field}", GRACE_OTHER + 1), style),
        Span::styled(format!("  {}", present::GRACE_CUSTOM_HINT), ctx.theme.dim()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn press(c: &mut Rotate, code: KeyCode) -> Decision {
        c.on_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn type_char(c: &mut Rotate, ch: char) -> Decision {
        c.on_key(keymap::char_key(ch))
    }

    fn key(expires_at: Option<DateTime<Utc>>) -> ApiKey {
        crate::api::ApiKey {
            id: "key_a".into(),
            name: "n".into(),
            description: String::new().into(),
            prefix: "eg_live_abcd".into(),
            scopes: Vec::new().into(),
            status: crate::key::KeyStatus::Active,
            created_at: now(),
            created_by: "a@b".into(),
            expires_at,
            last_used_at: None,
            revoked_at: None,
            revoked_by: None,
            replaced_by: None,
            replaces: None,
            exposure: None,
            secret_pending: false,
            refusals: None,
            health: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).unwrap()
    }

    #[test]
    fn the_new_expiry_is_said_once_with_its_reason() {
        let utc = DisplayTz::Fixed(chrono::FixedOffset::east_opt(0).unwrap());
        let days = |d| Some(now() + chrono::Duration::days(d));
        let said = |p: &Policy, at| new_key_expiry(&key(at), p, now(), utc);
        let none = Policy::default();
        assert_eq!(
            said(&none, None),
            "New expiry: none (the same as the old key)."
        );
        assert_eq!(
            said(&none, days(10)),
            "New expiry: Wed 2030-03-27 17:46 (the same as the old key)."
        );
        let max = Policy {
            max_lifetime_days: Some(30),
            ..Policy::default()
        };
        assert_eq!(
            said(&max, days(10)),
            "New expiry: Wed 2030-03-27 17:46 (the same as the old key)."
        );
        let capped = "New expiry: Tue 2030-04-16 17:46 (policy: at most 30 days).";
        assert_eq!(said(&max, days(100)), capped);
        assert_eq!(said(&max, None), capped);
        let required = Policy {
            require_expiry: true,
            ..Policy::default()
        };
        assert_eq!(
            said(&required, None),
            "New expiry: Sat 2030-06-15 17:46 (required by policy: 90 days)."
        );
    }

    #[test]
    fn rotation_offers_three_grace_periods() {
        let key = crate::api::ApiKey {
            id: "key_a".into(),
            name: "n".into(),
            description: String::new().into(),
            prefix: "eg_live_abcd".into(),
            scopes: Vec::new().into(),
            status: crate::key::KeyStatus::Active,
            created_at: chrono::Utc::now(),
            created_by: "a@b".into(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            revoked_by: None,
            replaced_by: None,
            replaces: None,
            exposure: None,
            secret_pending: false,
            refusals: None,
            health: None,
        };
        let mut c = Rotate::new(&key, String::new());
        assert_eq!(GRACE_CHOICES[c.grace].1, 3_600);
        type_char(&mut c, '1');
        assert_eq!(GRACE_CHOICES[c.grace].1, 0);
        press(&mut c, KeyCode::Left);
        assert_eq!(GRACE_CHOICES[c.grace].1, 86_400);
        assert_eq!(
            press(&mut c, KeyCode::Enter),
            Decision::No,
            "focus is on Cancel"
        );
    }
}
