//! The audit log screen (`a`): newest first, with the key's name where known.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::super::app::App;
use super::super::keymap::{self, Context};
use super::super::popup::AuditView;

pub fn draw(frame: &mut Frame, app: &App, view: &AuditView, area: Rect) {
    let theme = &app.theme;
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
        let key = app
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
            Span::styled(app.tz.exact(entry.at), theme.dim()),
            Span::raw("  "),
            Span::styled(format!("{action:<8}"), theme.title()),
            Span::raw(format!(" {key} by {}{from}", entry.actor.name)),
        ]));
    }
    frame.render_widget(Clear, area);
    let title = format!(" Audit log · {} entries ", view.entries.len());
    let block = Block::bordered()
        .title(title)
        .title_bottom(keymap::border(Context::Audit));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
