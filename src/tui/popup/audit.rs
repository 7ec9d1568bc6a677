//! The audit log screen (`a`): who created, revoked and rotated which key;
//! its state, keys, answer and drawing.

use super::{Ctx, Intent};
use crate::api::AuditEntry;
use crate::api::AuditList;
use crate::client::ClientError;
use crate::tui::keymap::{self, Command, Context};
use crate::tui::message::banner_message;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

#[derive(Default)]
pub struct AuditView {
    pub entries: Vec<AuditEntry>,
    pub loading: bool,
    pub error: Option<String>,
    /// The first entry on screen.
    pub scroll: usize,
}

impl AuditView {
    /// A view waiting for its first load.
    pub fn loading() -> Self {
        Self {
            loading: true,
            ..Self::default()
        }
    }

    pub fn on_command(&mut self, command: Option<Command>) -> Intent {
        let last = self.entries.len().saturating_sub(1);
        match command {
            Some(Command::ScrollDown) => self.scroll = (self.scroll + 1).min(last),
            Some(Command::ScrollUp) => self.scroll = self.scroll.saturating_sub(1),
            Some(Command::ScrollPageDown) => self.scroll = (self.scroll + 10).min(last),
            Some(Command::ScrollPageUp) => self.scroll = self.scroll.saturating_sub(10),
            Some(Command::Reload) if !self.loading => {
                self.loading = true;
                return Intent::ReloadAudit;
            }
            Some(Command::Back) => return Intent::Close,
            _ => {}
        }
        Intent::Stay
    }

    /// The log arrived (or did not).
    pub fn loaded(&mut self, result: Result<AuditList, ClientError>, source: &str) {
        self.loading = false;
        match result {
            Ok(list) => {
                self.entries = list.data;
                self.error = None;
            }
            Err(e) => self.error = Some(banner_message(&e, source)),
        }
    }
}

pub fn draw(frame: &mut Frame, ctx: &Ctx, view: &AuditView, area: Rect) {
    let theme = ctx.theme;
    let mut lines = Vec::new();
    if let Some(error) = &view.error {
        lines.push(Line::from(Span::styled(error.clone(), theme.error_text())));
    } else if view.loading && view.entries.is_empty() {
        lines.push(Line::from("Loading the audit log…"));
    } else if view.entries.is_empty() {
        lines.push(Line::from("Nothing has happened yet."));
    }
    let visible = usize::from(area.height.saturating_sub(2));
    for entry in view.entries.iter().skip(view.scroll).take(visible) {
        // A user's email for an operator's change to a user, else the key's name.
        let key = ctx
            .key_by_id(&entry.api_key_id)
            .map_or_else(|| entry.target().to_owned(), |k| format!("“{}”", k.name));
        let action = entry
            .action
            .strip_prefix("api_key.")
            .unwrap_or(&entry.action);
        let from = entry
            .remote_addr
            .as_deref()
            .map(|a| format!(" from {a}"))
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled(ctx.tz.exact(entry.at), theme.dim()),
            Span::raw("  "),
            Span::styled(format!("{action:<8}"), theme.title()),
            Span::raw(format!(
                " {key} by {}{from}{}",
                entry.actor.name,
                ssh_note(entry)
            )),
        ]));
    }
    frame.render_widget(Clear, area);
    let title = format!(
        " Audit log · {} ",
        crate::present::count(view.entries.len(), "entry", "entries")
    );
    let block = Block::bordered()
        .title(title)
        .title_bottom(keymap::border(Context::Audit));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// What an SSH entry adds: the key used, why it was refused, how long a
/// session lasted (`· SHA256:… · command, 2.5 s`).
fn ssh_note(entry: &AuditEntry) -> String {
    if !entry.action.starts_with("ssh.") {
        return String::new();
    }
    let detail = |name: &str| entry.details.get(name);
    let mut note = String::new();
    if let Some(fingerprint) = detail("fingerprint").and_then(|f| f.as_str()) {
        note.push_str(&format!(" · {fingerprint}"));
    }
    if let Some(reason) = detail("reason").and_then(|r| r.as_str()) {
        note.push_str(&format!(" · {}", reason.replace('_', " ")));
    }
    if let (Some(kind), Some(seconds)) = (
        detail("kind").and_then(|k| k.as_str()),
        detail("duration_s").and_then(|d| d.as_f64()),
    ) {
        note.push_str(&format!(" · {kind}, {seconds} s"));
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_entries_say_which_key_why_and_how_long() {
        let entry = |action: &str, details: serde_json::Value| AuditEntry {
            id: 1,
            at: chrono::Utc::now(),
            action: action.into(),
            actor: crate::api::Actor {
                kind: "user".into(),
                id: "usr_1".into(),
                name: "ops@example.com".into(),
            },
            api_key_id: String::new(),
            remote_addr: Some("192.0.2.7".into()),
            details,
        };
        let fp = "SHA256:abc";
        assert_eq!(
            ssh_note(&entry(
                "ssh.session_ended",
                serde_json::json!({"fingerprint": fp, "kind": "ui", "duration_s": 2.5})
            )),
            " · SHA256:abc · ui, 2.5 s"
        );
        assert_eq!(
            ssh_note(&entry(
                "ssh.refused",
                serde_json::json!({"fingerprint": fp, "reason": "not_an_admin"})
            )),
            " · SHA256:abc · not an admin"
        );
        assert_eq!(
            ssh_note(&entry(
                "api_key.created",
                serde_json::json!({"fingerprint": fp})
            )),
            ""
        );
    }
}
