//! Help (`?`): every key binding that works in this build.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::super::app::App;
use super::centered;

/// (keys, what they do), grouped by heading.
pub const BINDINGS: &[(&str, &[(&str, &str)])] = &[
    (
        "Move",
        &[
            ("j / ↓", "next key"),
            ("k / ↑", "previous key"),
            ("PgDn / PgUp", "a page down / up"),
            ("g / Home", "first key"),
            ("G / End", "last key"),
        ],
    ),
    (
        "View",
        &[
            ("Enter", "details of the selected key"),
            ("/", "filter by name, prefix, description or scope"),
            ("Esc", "clear the filter; close a popup"),
            ("1-4 / Tab", "tabs All / Active / Expired / Revoked"),
            ("s / S", "cycle the sort column / reverse it"),
            ("r", "refresh now (also every 30 s)"),
            ("?", "this help"),
        ],
    ),
    (
        "Keys",
        &[
            ("n", "new key: the create form"),
            ("d / Delete", "revoke the selected key (asks first)"),
            ("R", "rotate the selected key (asks, with a grace period)"),
            ("Space", "mark the row; d then revokes every marked key"),
            ("X", "revoke every expired key (asks first)"),
            (
                "y",
                "copy the selected key's prefix and id (never a secret)",
            ),
            ("a", "audit log: who created, revoked, rotated what"),
        ],
    ),
    (
        "Create form",
        &[
            ("Tab / ↓", "next field (Shift-Tab / ↑ back)"),
            ("Space", "tick the focused scope"),
            ("Enter", "create, from any field"),
            ("Esc", "cancel (asks if something was typed)"),
        ],
    ),
    (
        "Dialogs",
        &[
            ("y / n", "yes / no (Esc is no too)"),
            ("←/→ / Tab", "choose a button; Enter presses it"),
            ("c", "copy the new secret (copy-once modal)"),
        ],
    ),
    (
        "Quit",
        &[("q / Ctrl-C", "quit (in a popup, Esc goes back first)")],
    ),
];

pub fn draw(frame: &mut Frame, app: &App, scroll: u16, area: Rect) {
    let mut lines = Vec::new();
    for (heading, bindings) in BINDINGS {
        lines.push(Line::from(Span::styled(*heading, app.theme.title())));
        for (keys, what) in *bindings {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<13}"), app.theme.key_hint()),
                Span::raw(*what),
            ]));
        }
    }
    let total = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let popup = centered(area, 78, total + 2);
    let visible = popup.height.saturating_sub(2);
    let scroll = scroll.min(total.saturating_sub(visible));
    let more = if scroll + visible < total {
        " j/k scroll · ↓ more "
    } else {
        " Esc back "
    };
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(" Help ").title_bottom(more);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(block),
        popup,
    );
}
