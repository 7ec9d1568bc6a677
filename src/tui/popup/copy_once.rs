//! The copy-once modal: the new secret (of an API key, or a webhook
//! endpoint's signing secret), shown this one time, kept only in memory that
//! is zeroed when the modal closes.

use super::{centered, Confirm, Ctx, Intent, Popup, Then};
use crate::api::webhooks::Webhook;
use crate::api::ApiKey;
use crate::key::webhook::redacted_url;
use crate::key::Secret;
use crate::present;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::keymap::{self, Command, Context};

/// Whose secret the modal shows.
pub enum Subject {
    Key(ApiKey),
    Webhook(Webhook),
    /// An endpoint's new secret after a rotation.
    WebhookRotated(Webhook),
}

pub struct CopyOnce {
    pub subject: Subject,
    /// The only copy the modal keeps; drawing borrows it, never copies it.
    /// Zeroed by [`CopyOnce::close`] when the modal is dropped.
    pub secret: Secret,
    /// What the last `c` did, for the admin to read.
    pub copied: Option<String>,
    /// For a rotation: when the old key stops working.
    pub previous: Option<ApiKey>,
}

impl CopyOnce {
    pub fn new(key: ApiKey, secret: Secret, previous: Option<ApiKey>) -> Self {
        Self {
            subject: Subject::Key(key),
            secret,
            copied: None,
            previous,
        }
    }

    /// A new webhook endpoint's signing secret (`whsec_…`).
    pub fn webhook(webhook: Webhook, secret: Secret) -> Self {
        Self {
            subject: Subject::Webhook(webhook),
            secret,
            copied: None,
            previous: None,
        }
    }

    /// A webhook endpoint's new signing secret, after a rotation.
    pub fn webhook_rotated(webhook: Webhook, secret: Secret) -> Self {
        Self {
            subject: Subject::WebhookRotated(webhook),
            secret,
            copied: None,
            previous: None,
        }
    }

    /// The modal closes: its secret's bytes are zeroed in place now, before
    /// the memory is given back. Every way out (Enter, Esc after the
    /// question, quitting) drops the modal, and dropping calls this.
    pub fn close(&mut self) {
        self.secret.wipe();
    }
}

impl CopyOnce {
    pub fn on_command(&mut self, command: Option<Command>) -> Intent {
        match command {
            Some(Command::Copy) => Intent::CopySecret(self.secret.clone()),
            // Dropping the modal wipes the secret.
            Some(Command::Close) if self.copied.is_some() => Intent::Close,
            Some(Command::Close) => Intent::Open(Popup::Confirm(Box::new(close_uncopied(
                !matches!(self.subject, Subject::Key(_)),
            )))),
            _ => Intent::Stay,
        }
    }

    /// The secret went to the clipboard; `system` if the local one took it too.
    pub fn copied(&mut self, system: bool) {
        self.copied = Some(if system {
            "Copied to clipboard (and sent to your terminal's clipboard, OSC 52).".into()
        } else {
            "Sent to your terminal's clipboard (OSC 52).".into()
        });
    }
}

/// Esc before the secret was copied: a yes closes the modal too.
fn close_uncopied(webhook: bool) -> Confirm {
    let what = if webhook {
        "the signing secret"
    } else {
        "the key"
    };
    let lines = vec![
        format!("You have not copied {what}. It will not be shown again."),
        "Close anyway?".into(),
    ];
    Confirm::ask("Close without copying?", lines, "Close", Then::CloseParent).no_label("Back")
}

impl Drop for CopyOnce {
    fn drop(&mut self) {
        self.close();
    }
}

pub const TITLE: &str = "Copy your API key now — it will not be shown again";
pub const WEBHOOK_TITLE: &str = "Copy the signing secret now — it will not be shown again";

/// How soon a part of the modal gives way when the screen is short: the
/// secret, the title and the keys ([`KEEP`]) never do.
const KEEP: u8 = 0;
const OLD_KEY: u8 = 1;
const NAME: u8 = 2;
const ADVICE: u8 = 3;
const SPACING: u8 = 4;

pub fn draw(frame: &mut Frame, ctx: &Ctx, modal: &CopyOnce, area: Rect) {
    let theme = ctx.theme;
    let width = area.width.min(80);
    let inner = usize::from(width.saturating_sub(2)).max(1);
    // Each part with how soon it gives way, already wrapped to the box, so
    // the box is as tall as what it shows and nothing is cut at its bottom.
    let text = |text: &str, style, rank| {
        wrap(text, inner)
            .into_iter()
            .map(move |l| (rank, Line::styled(l, style)))
    };
    let blank = || (SPACING, Line::from(""));
    let plain = ratatui::style::Style::default();
    let (title, name, advices, heading) = match &modal.subject {
        Subject::Key(key) => (
            TITLE,
            format!(
                "“{}” · {}",
                key.name,
                present::scopes_short(&key.scopes, ctx.scopes)
            ),
            vec![
                "Store it in a secure location (e.g., GitHub Secrets, AWS Secrets Manager, HashiCorp Vault).".to_owned(),
                "If you lose it, revoke this key and create a new one.".to_owned(),
            ],
            " New API key ",
        ),
        Subject::Webhook(webhook) => (
            WEBHOOK_TITLE,
            format!("{} · {}", redacted_url(&webhook.url), webhook.events.join(", ")),
            vec![
                "Your receiver checks each request's webhook-signature with it (Standard Webhooks).".to_owned(),
                "If you lose it, rotate it: R on the webhooks screen (W).".to_owned(),
            ],
            " New webhook endpoint ",
        ),
        Subject::WebhookRotated(webhook) => (
            WEBHOOK_TITLE,
            format!("{} · {}", redacted_url(&webhook.url), webhook.events.join(", ")),
            vec![
                "Your receiver checks each request's webhook-signature with it (Standard Webhooks).".to_owned(),
                match webhook.previous_secret_until {
                    Some(until) if until > ctx.now => format!(
                        "The previous secret signs too until {} ({}): update your receiver before then.",
                        ctx.tz.date_time(until),
                        present::relative(until, ctx.now),
                    ),
                    _ => "The previous secret no longer signs.".to_owned(),
                },
            ],
            " New signing secret ",
        ),
    };
    let mut parts: Vec<(u8, Line)> = text(title, theme.title(), KEEP).collect();
    parts.push(blank());
    parts.extend(text(&name, plain, NAME));
    parts.push(blank());
    // The secret wraps (never cut) only where the box is narrower than it.
    parts.extend(text(modal.secret.expose(), theme.secret(), KEEP));
    parts.push(blank());
    for advice in &advices {
        parts.extend(text(advice, plain, ADVICE));
    }
    if let Some(ends) = old_key_ends(ctx, modal) {
        parts.push(blank());
        parts.extend(text(&ends, plain, OLD_KEY));
    }
    parts.push(blank());
    match &modal.copied {
        Some(done) => parts.extend(text(
            &format!("✓ {done}"),
            theme.status(crate::key::KeyStatus::Active),
            KEEP,
        )),
        None => {
            let hints = keymap::footer(Context::CopyOnce, Default::default());
            let mut spans = Vec::new();
            for (i, (keys, what)) in hints.iter().enumerate() {
                let gap = if i + 1 < hints.len() { "   " } else { "" };
                spans.push(Span::styled(*keys, theme.key_hint()));
                spans.push(Span::raw(format!(" {what}{gap}")));
            }
            parts.push((KEEP, Line::from(spans)));
        }
    }
    // Short of rows: spacing goes first, then the advice, the name, the old key.
    let room = usize::from(area.height.saturating_sub(2));
    for rank in (OLD_KEY..=SPACING).rev() {
        if parts.len() <= room {
            break;
        }
        let over = parts.len() - room;
        let mut dropped = 0;
        parts.retain(|(r, _)| {
            let drop = *r == rank && dropped < over;
            dropped += usize::from(drop);
            !drop
        });
    }
    let lines: Vec<Line> = parts.into_iter().map(|(_, line)| line).collect();
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(heading);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

/// For a rotation: when the old key stops working.
fn old_key_ends(ctx: &Ctx, modal: &CopyOnce) -> Option<String> {
    let previous = modal.previous.as_ref()?;
    Some(match (previous.revoked_at, previous.expires_at) {
        (Some(_), _) => "The old key was revoked and no longer works.".to_owned(),
        (None, Some(at)) => format!(
            "The old key keeps working until {} ({}).",
            ctx.tz.exact(at),
            present::relative(at, ctx.now)
        ),
        (None, None) => "The old key keeps working.".to_owned(),
    })
}

/// `text` wrapped at spaces to lines of at most `width` columns; a word
/// longer than that (the secret in a narrow box) is split, never cut.
fn wrap(text: &str, width: usize) -> Vec<String> {
    use unicode_width::UnicodeWidthStr;
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split(' ') {
        let line = lines.last_mut().expect("one line at least");
        let gap = usize::from(!line.is_empty());
        if line.width() + gap + word.width() <= width {
            if gap == 1 {
                line.push(' ');
            }
            line.push_str(word);
            continue;
        }
        if !line.is_empty() {
            lines.push(String::new());
        }
        for c in word.chars() {
            let line = lines.last_mut().expect("one line at least");
            if line.width() + unicode_width::UnicodeWidthChar::width(c).unwrap_or(0) > width {
                lines.push(String::new());
            }
            lines.last_mut().expect("one line at least").push(c);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyStatus, SecretFormat};

    fn key() -> ApiKey {
        let now = chrono::Utc::now();
        ApiKey {
            id: "key_abc".into(),
            name: "CI".into(),
            description: String::new().into(),
            prefix: "eg_live_1a2B".into(),
            scopes: vec!["sessions:read".into()].into(),
            status: KeyStatus::Active,
            created_at: now,
            created_by: "ops@example.com".into(),
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
        }
    }

    #[test]
    fn closing_the_copy_once_modal_zeroes_the_secret_buffer() {
        let secret = SecretFormat::default().generate();
        let mut modal = CopyOnce::new(key(), secret, None);
        let (ptr, len) = (modal.secret.expose().as_ptr(), modal.secret.expose().len());
        assert_eq!(len, 46);
        // SAFETY: the buffer stays allocated while `modal` lives: wiping
        // clears the string in place and keeps its allocation.
        let bytes = || unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec();
        assert!(bytes().starts_with(b"eg_live_"));
        modal.close();
        assert_eq!(modal.secret.expose(), "");
        assert_eq!(modal.secret.expose().as_ptr(), ptr, "same allocation");
        assert!(bytes().iter().all(|&b| b == 0), "{:?}", bytes());
        drop(modal);
    }

    #[test]
    fn wrapping_splits_words_only_when_longer_than_the_line() {
        assert_eq!(wrap("ab cd ef", 5), ["ab cd", "ef"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("x abcdefgh", 4), ["x", "abcd", "efgh"]);
    }
}
