//! The create form: fields, live expiry preview, scope checkboxes, buttons,
//! and each field's error right under it.

use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;
use tui_input::Input;

use super::super::app::App;
use super::super::keymap::{self, Context};
use super::super::popup::create_form::{CreateForm, Field};
use super::{button, centered};

const LABEL: usize = 13;

pub fn draw(frame: &mut Frame, app: &App, form: &CreateForm, area: Rect) {
    let width = area.width.min(76);
    let inner_width = usize::from(width.saturating_sub(2));
    let field_width = inner_width.saturating_sub(LABEL + 1).max(8);
    let theme = &app.theme;
    let mut lines: Vec<Line> = Vec::new();
    let mut cursor: Option<(u16, u16)> = None;
    let error_line = |lines: &mut Vec<Line>, field: &str| {
        if let Some(problem) = form.errors.get(field) {
            lines.push(Line::from(vec![
                Span::raw(" ".repeat(LABEL)),
                Span::styled(format!("✗ {problem}"), theme.error_text()),
            ]));
        }
    };
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
            let now = app.clock.now();
            match form.expiry_preview(now, app.tz) {
                Ok(preview) if !form.errors.contains_key(key) => {
                    lines.push(Line::from(vec![
                        Span::raw(" ".repeat(LABEL)),
                        Span::styled(preview, theme.dim()),
                    ]));
                }
                Ok(_) => {}
                Err(problem)
                    if !form.errors.contains_key(key) && !form.expiry.value().trim().is_empty() =>
                {
                    lines.push(Line::from(vec![
                        Span::raw(" ".repeat(LABEL)),
                        Span::styled(format!("✗ {problem}"), theme.error_text()),
                    ]));
                }
                Err(_) => {}
            }
            lines.push(Line::from(Span::styled(
                format!("{:LABEL$}e.g. 30d, 90d, 1y, 2027-01-31; empty for none", ""),
                theme.dim(),
            )));
        }
        error_line(&mut lines, key);
    }
    for (i, (scope, on)) in form.scopes.iter().enumerate() {
        let focused = form.focus == Field::Scope(i);
        let label = if i == 0 { "Scopes" } else { "" };
        let mark = if *on { "[x]" } else { "[ ]" };
        lines.push(Line::from(vec![
            Span::raw(format!("{label:<LABEL$}")),
            Span::styled(
                format!("{mark} {}", scope.label),
                if focused {
                    theme.selected()
                } else {
                    Style::new()
                },
            ),
        ]));
    }
    error_line(&mut lines, "scopes");
    lines.push(Line::from(""));
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
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(" New API key ")
        .title_bottom(keymap::border(Context::Create));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        popup,
    );
    if let Some((x, y)) = cursor {
        if y + 1 < popup.height {
            frame.set_cursor_position(Position::new(popup.x + 1 + x, popup.y + 1 + y));
        }
    }
}

/// The part of an input that fits in `width`, and the cursor's column in it.
fn visible(input: &Input, width: usize) -> (String, usize) {
    let scroll = input.visual_scroll(width.saturating_sub(1));
    let text: String = input.value().chars().skip(scroll).take(width).collect();
    (text, input.visual_cursor().saturating_sub(scroll))
}
