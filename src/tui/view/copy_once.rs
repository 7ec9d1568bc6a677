//! The copy-once modal: the whole secret, on its own line, selectable by hand.
//! The secret's span borrows the modal's wiped buffer: drawing makes no copy.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::super::app::App;
use super::super::format;
use super::super::keymap::{self, Context};
use super::super::popup::CopyOnce;
use super::centered;

pub const TITLE: &str = "Copy your API key now — it will not be shown again";

pub fn draw(frame: &mut Frame, app: &App, modal: &CopyOnce, area: Rect) {
    let theme = &app.theme;
    let key = &modal.key;
    let mut lines = vec![
        Line::from(Span::styled(TITLE, theme.title())),
        Line::from(""),
        Line::from(format!("“{}” · {}", key.name, format::scopes_short(&key.scopes))),
        Line::from(""),
        Line::from(Span::styled(modal.secret.expose(), theme.secret())),
        Line::from(""),
        Line::from("Store it in a secure location (e.g., GitHub Secrets, AWS Secrets Manager, HashiCorp Vault)."),
        Line::from("If you lose it, revoke this key and create a new one."),
    ];
    if let Some(previous) = &modal.previous {
        let ends = match (previous.revoked_at, previous.expires_at) {
            (Some(_), _) => "The old key was revoked and no longer works.".to_owned(),
            (None, Some(at)) => format!(
                "The old key keeps working until {} ({}).",
                app.tz.exact(at),
                format::relative(at, app.clock.now())
            ),
            (None, None) => "The old key keeps working.".to_owned(),
        };
        lines.push(Line::from(""));
        lines.push(Line::from(ends));
    }
    lines.push(Line::from(""));
    match &modal.copied {
        Some(done) => lines.push(Line::from(Span::styled(
            format!("✓ {done}"),
            theme.status(crate::key::KeyStatus::Active),
        ))),
        None => {
            let hints = keymap::footer(Context::CopyOnce, Default::default());
            let mut spans = Vec::new();
            for (i, (keys, what)) in hints.iter().enumerate() {
                let gap = if i + 1 < hints.len() { "   " } else { "" };
                spans.push(Span::styled(*keys, theme.key_hint()));
                spans.push(Span::raw(format!(" {what}{gap}")));
            }
            lines.push(Line::from(spans));
        }
    }
    let width = area.width.min(80);
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = centered(area, width, height + 2);
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(" New API key ");
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        popup,
    );
}
