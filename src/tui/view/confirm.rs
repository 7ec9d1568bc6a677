//! Confirmation dialogs: the question, the choices, and the buttons with the
//! focused one highlighted.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::super::app::App;
use super::super::keymap;
use super::super::popup::confirm::{Confirm, GRACE_CHOICES};
use super::{button, centered};

pub fn draw(frame: &mut Frame, app: &App, dialog: &Confirm, area: Rect) {
    let theme = &app.theme;
    let width = area.width.min(72);
    let mut lines: Vec<Line> = dialog.lines.iter().map(|l| Line::from(l.clone())).collect();
    if dialog.is_rotate() {
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
    }
    lines.push(Line::from(""));
    let mut buttons = vec![Span::raw("  ")];
    for (i, label) in dialog.buttons.iter().enumerate() {
        buttons.push(button(label, i == dialog.focus, theme));
        buttons.push(Span::raw("  "));
    }
    lines.push(Line::from(buttons));
    // Wrapped text may need more rows than lines.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let height = u16::try_from(rows + 2).unwrap_or(u16::MAX);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    let hint = keymap::border(dialog.context());
    let block = Block::bordered()
        .title(format!(" {} ", dialog.title))
        .title_bottom(hint);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        popup,
    );
}
