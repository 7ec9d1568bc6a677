//! The key table: only the rows on screen are built, so tens of thousands of
//! keys scroll as fast as ten.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::super::app::App;
use crate::api::ApiKey;
use crate::present;
use crate::present::status_text;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Name,
    Prefix,
    Scopes,
    LastUsed,
    Status,
    Created,
    Expires,
}

impl Column {
    /// Display order.
    const ORDER: [Column; 7] = [
        Column::Name,
        Column::Prefix,
        Column::Scopes,
        Column::LastUsed,
        Column::Status,
        Column::Created,
        Column::Expires,
    ];
    /// Which columns stay when the terminal narrows, most important first.
    const PRIORITY: [Column; 7] = [
        Column::Name,
        Column::Status,
        Column::Prefix,
        Column::LastUsed,
        Column::Scopes,
        Column::Created,
        Column::Expires,
    ];

    fn title(self) -> &'static str {
        match self {
            Column::Name => "Name",
            Column::Prefix => "Key Prefix",
            Column::Scopes => "Scopes",
            Column::LastUsed => "Last Used",
            Column::Status => "Status",
            Column::Created => "Created",
            Column::Expires => "Expires",
        }
    }

    fn min_width(self) -> u16 {
        match self {
            Column::Name => 18,
            Column::Prefix => 15,
            Column::Scopes => 14,
            Column::LastUsed => 9,
            Column::Status => 9,
            Column::Created => 8,
            Column::Expires => 8,
        }
    }

    fn constraint(self) -> Constraint {
        match self {
            Column::Name => Constraint::Fill(3),
            Column::Scopes => Constraint::Fill(2),
            other => Constraint::Length(other.min_width()),
        }
    }
}

/// The columns that fit in `width`, in display order.
fn columns_for(width: u16) -> Vec<Column> {
    let mut chosen = Vec::new();
    let mut used = 0u16;
    for col in Column::PRIORITY {
        let extra = col.min_width() + u16::from(!chosen.is_empty());
        if used + extra <= width {
            used += extra;
            chosen.push(col);
        }
    }
    Column::ORDER
        .into_iter()
        .filter(|c| chosen.contains(c))
        .collect()
}

fn cell<'a>(app: &App, key: &'a ApiKey, col: Column) -> Cell<'a> {
    let now = app.clock.now();
    match col {
        Column::Name if app.marked.contains(&key.id) => {
            Cell::from(format!("✓ {}", key.name)).style(app.theme.title())
        }
        Column::Name => Cell::from(key.name.as_str()),
        Column::Prefix => Cell::from(present::prefix(&key.prefix)),
        Column::Scopes => Cell::from(present::scopes_short(&key.scopes, &app.scopes)),
        Column::LastUsed => Cell::from(
            key.last_used_at
                .map_or_else(|| "Never".into(), |t| present::relative(t, now)),
        ),
        Column::Status => {
            let status = app.status_of(key);
            Cell::from(status_text(status)).style(app.theme.status(status))
        }
        Column::Created => Cell::from(present::relative(key.created_at, now)),
        Column::Expires => Cell::from(
            key.expires_at
                .map_or_else(|| "Never".into(), |t| present::relative(t, now)),
        ),
    }
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let columns = columns_for(area.width);
    let header = Row::new(columns.iter().map(|c| Cell::from(c.title()))).style(app.theme.header());
    if app.rows.is_empty() {
        frame.render_widget(
            Table::new(Vec::<Row>::new(), columns.iter().map(|c| c.constraint())).header(header),
            area,
        );
        let message_area = Rect {
            y: area.y + 2,
            height: area.height.saturating_sub(2),
            ..area
        };
        frame.render_widget(
            Paragraph::new(empty_message(app)).wrap(Wrap { trim: false }),
            message_area,
        );
        return;
    }
    let visible = usize::from(area.height.saturating_sub(1));
    let rows = app
        .rows
        .iter()
        .enumerate()
        .skip(app.offset)
        .take(visible)
        .map(|(i, &k)| {
            let key = &app.keys[k];
            let row = Row::new(columns.iter().map(|&c| cell(app, key, c)));
            if i == app.selected {
                row.style(app.theme.selected())
            } else {
                row
            }
        });
    let table = Table::new(rows, columns.iter().map(|c| c.constraint()))
        .header(header)
        .column_spacing(1);
    frame.render_widget(table, area);
}

fn empty_message(app: &App) -> Vec<Line<'static>> {
    if !app.loaded {
        return vec![Line::from(if app.banner.is_some() {
            "  No keys loaded yet."
        } else {
            "  Loading keys…"
        })];
    }
    if app.keys.is_empty() {
        return vec![
            Line::from("  No API keys yet."),
            Line::from(""),
            Line::from("  Press n to create the first one."),
        ];
    }
    vec![
        Line::from(format!(
            "  No {} keys match.",
            app.tab.label().to_lowercase()
        )),
        Line::from("  Esc clears the filter; 1 shows all keys."),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_drop_by_priority_as_the_terminal_narrows() {
        assert_eq!(columns_for(120).len(), 7);
        let at_80 = columns_for(80);
        assert!(!at_80.contains(&Column::Expires));
        assert!(at_80.contains(&Column::Scopes) && at_80.contains(&Column::LastUsed));
        assert_eq!(
            columns_for(45),
            [Column::Name, Column::Prefix, Column::Status]
        );
        assert_eq!(
            columns_for(40),
            [Column::Name, Column::LastUsed, Column::Status]
        );
        assert_eq!(columns_for(20), [Column::Name]);
    }
}
