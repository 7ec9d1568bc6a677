//! Key details (`Enter`): every field, exact times in the admin's zone, each
//! health badge with its reason; its keys and drawing.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use std::sync::atomic::{AtomicU16, Ordering};

use super::{scrollbar, Ctx, Intent};
use crate::api::ApiKey;
use crate::key::health;
use crate::present;
use crate::present::status_text;
use crate::tui::keymap::{self, Command, Context};

/// The details of one key, and how far they are scrolled.
#[derive(Debug, Default)]
pub struct DetailsView {
    /// The key shown.
    pub id: String,
    scroll: u16,
    /// The furthest the text can scroll, as of the last frame drawn.
    max_scroll: AtomicU16,
    /// The key's usage (issue 22; `usage.rs`).
    pub usage: super::usage::UsagePane,
}

impl DetailsView {
    pub fn new(id: String) -> Self {
        Self {
            id,
            ..Self::default()
        }
    }

    /// What a key does on the details screen: scroll, go back, or act on
    /// the key shown (revoke, rotate, copy its id, its audit log).
    pub fn handle(&mut self, command: Option<Command>) -> Intent {
        let max = self.max_scroll.load(Ordering::Relaxed);
        self.scroll = match command {
            Some(Command::ScrollDown) => self.scroll.saturating_add(1),
            Some(Command::ScrollUp) => self.scroll.saturating_sub(1),
            Some(Command::ScrollPageDown) => self.scroll.saturating_add(10),
            Some(Command::ScrollPageUp) => self.scroll.saturating_sub(10),
            Some(Command::First) => 0,
            Some(Command::Last) => max,
            Some(Command::Back) => return Intent::Close,
            Some(Command::AuditKey) => return Intent::AuditOf(self.id.clone()),
            Some(
                command @ (Command::Revoke
                | Command::Rotate
                | Command::CopyId
                | Command::IssueSecret),
            ) => return Intent::ForKey(command, self.id.clone()),
            Some(Command::UsageWindow(i)) => return self.usage.choose(i, &self.id),
            _ => self.scroll,
        }
        .min(max);
        Intent::Stay
    }
}

/// Rows `lines` take when wrapped at `width` columns.
pub(crate) fn wrapped_rows(lines: &[Line], width: u16) -> u16 {
    let width = usize::from(width.max(1));
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(width).max(1)).sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}

/// `line` wrapped at `width` columns, at a space where it can, each
/// continuation indented by `indent` columns (a hanging indent), so that a
/// wrapped value stays in its column. Styles stay with their characters.
pub(crate) fn hanging(line: Line<'static>, width: usize, indent: usize) -> Vec<Line<'static>> {
    use unicode_width::UnicodeWidthChar;
    if line.width() <= width || width == 0 {
        return vec![line];
    }
    // Too narrow to indent: wrap without.
    let indent = if width >= indent + 12 { indent } else { 0 };
    let chars: Vec<(char, ratatui::style::Style)> = line
        .spans
        .iter()
        .flat_map(|s| s.content.chars().map(move |c| (c, s.style)))
        .collect();
    let mut rows: Vec<Vec<(char, ratatui::style::Style)>> = vec![Vec::new()];
    let mut used = 0;
    for (c, style) in chars {
        let w = c.width().unwrap_or(0);
        // Never break inside the label (or the indent): the value wraps.
        let start = indent;
        if used + w > width {
            let row = rows.last_mut().expect("a row");
            // Break after the last space past the indent, else right here.
            let space = row
                .iter()
                .enumerate()
                .skip(start + 1)
                .rev()
                .find(|(_, (c, _))| *c == ' ')
                .map(|(i, _)| i);
            let moved: Vec<_> = match space {
                Some(i) => {
                    let tail = row.split_off(i + 1);
                    row.pop();
                    tail
                }
                None => Vec::new(),
            };
            let mut next: Vec<_> = std::iter::repeat_n((' ', ratatui::style::Style::new()), indent)
                .chain(moved)
                .collect();
            used = next.iter().map(|(c, _)| c.width().unwrap_or(0)).sum();
            if c == ' ' && used == indent {
                rows.push(next);
                continue;
            }
            next.push((c, style));
            used += w;
            rows.push(next);
            continue;
        }
        rows.last_mut().expect("a row").push((c, style));
        used += w;
    }
    rows.into_iter()
        .map(|row| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            for (c, style) in row {
                match spans.last_mut() {
                    Some(last) if last.style == style => last.content.to_mut().push(c),
                    _ => spans.push(Span::styled(c.to_string(), style)),
                }
            }
            Line::from(spans).style(line.style)
        })
        .collect()
}

/// Each of `lines` through [`hanging`].
fn hang_all(lines: Vec<Line<'static>>, width: usize, indent: usize) -> Vec<Line<'static>> {
    lines
        .into_iter()
        .flat_map(|l| hanging(l, width, indent))
        .collect()
}

/// The label column's width: a wrapped field value continues under itself.
const LABEL_WIDTH: usize = 12;

pub fn draw(frame: &mut Frame, ctx: &Ctx, view: &DetailsView, key: &ApiKey, area: Rect) {
    let width = usize::from(area.width.saturating_sub(2));
    let mut lines = hang_all(fields(ctx, key), width, LABEL_WIDTH);
    lines.extend(hang_all(exposure_lines(ctx, key), width, LABEL_WIDTH));
    lines.extend(hang_all(pending_lines(ctx, key), width, LABEL_WIDTH));
    lines.extend(hang_all(health_lines(ctx, key), width, 4));
    lines.extend(hang_all(scopes_and_description(ctx, key), width, 4));
    lines.extend(super::usage::lines(ctx, &view.usage));
    let spark = if view.usage.has_sparkline() {
        super::usage::SPARK_ROWS
    } else {
        0
    };
    let total = wrapped_rows(&lines, area.width.saturating_sub(2));
    let height = (total + spark).saturating_add(2).min(area.height);
    let popup = Rect { height, ..area };
    let visible = height.saturating_sub(2 + spark);
    let max = total.saturating_sub(visible);
    view.max_scroll.store(max, Ordering::Relaxed);
    let scroll = view.scroll.min(max);
    frame.render_widget(Clear, area);
    let mut bottom = keymap::border(Context::Details);
    if scroll < max {
        bottom.push_str("· j/k ↓ more ");
    }
    let mut block = Block::bordered()
        .title(" Key details ")
        .title_bottom(bottom);
    if max > 0 {
        let position = format!(" {}-{}/{total} ", scroll + 1, scroll + visible);
        block = block.title(Line::from(position).right_aligned());
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(block),
        popup,
    );
    if spark > 0 && popup.height > spark + 2 {
        let band = Rect {
            x: popup.x + 1,
            y: (popup.y + popup.height).saturating_sub(spark + 1),
            width: popup.width.saturating_sub(2),
            height: spark,
        };
        super::usage::draw_sparkline(frame, ctx, &view.usage, band);
    }
    let track = Rect {
        y: popup.y + 1,
        height: visible,
        ..popup
    };
    scrollbar(
        frame,
        track,
        usize::from(total),
        usize::from(scroll),
        usize::from(visible),
    );
}

/// A field's name, in the label column.
fn label(ctx: &Ctx, text: &'static str) -> Span<'static> {
    Span::styled(format!("{text:<LABEL_WIDTH$}"), ctx.theme.title())
}

/// Name, status, prefix, id and the key's times, exact in the admin's zone.
fn fields(ctx: &Ctx, key: &ApiKey) -> Vec<Line<'static>> {
    let status = ctx.status_of(key);
    let exact = |t: Option<chrono::DateTime<chrono::Utc>>, none: &str| match t {
        Some(t) => present::exact_relative(t, ctx.tz, ctx.now),
        None => none.to_owned(),
    };
    let label = |text| label(ctx, text);
    let mut lines = vec![
        Line::from(vec![label("Name"), Span::raw(key.name.clone())]),
        Line::from(vec![
            label("Status"),
            Span::styled(status_text(status), ctx.theme.status(status)),
        ]),
        Line::from(vec![
            label("Key Prefix"),
            Span::raw(present::prefix(&key.prefix)),
        ]),
        Line::from(vec![label("ID"), Span::raw(key.id.clone())]),
        Line::from(vec![
            label("Created"),
            Span::raw(format!(
                "{} by {}",
                exact(Some(key.created_at), ""),
                key.created_by
            )),
        ]),
        Line::from(vec![
            label("Expires"),
            Span::raw(present::expires_exact(key, ctx.tz, ctx.now)),
        ]),
        Line::from(vec![
            label("Last Used"),
            Span::raw(exact(key.last_used_at, "Never")),
        ]),
    ];
    if let Some(revoked_at) = key.revoked_at {
        let by = key.revoked_by.as_deref().unwrap_or("unknown");
        lines.push(Line::from(vec![
            label("Revoked"),
            Span::raw(format!("{} by {by}", exact(Some(revoked_at), ""))),
        ]));
    }
    lines.extend(links(ctx, key));
    lines
}

/// The rotation's links: the key that replaced this one, the one it
/// replaced — by prefix and name when the list has them, always by id.
fn links(ctx: &Ctx, key: &ApiKey) -> Vec<Line<'static>> {
    let name = |id: &str| present::linked_key_named(id, ctx.key_by_id(id));
    [
        ("Replaced by", &key.replaced_by),
        ("Replaces", &key.replaces),
    ]
    .into_iter()
    .filter_map(|(text, id)| Some((text, id.as_deref()?)))
    .map(|(text, id)| Line::from(vec![label(ctx, text), Span::raw(name(id))]))
    .collect()
}

/// Each health badge with the sentence behind it.
fn health_lines(ctx: &Ctx, key: &ApiKey) -> Vec<Line<'static>> {
    let badges = ctx.badges_of(key);
    let mut lines = Vec::new();
    // The badges as the table has them, `·` between, and what its `+N` is.
    let words: Vec<String> = badges.iter().map(|b| b.word().to_string()).collect();
    if let Some(first) = words.first() {
        let mut spans = vec![label(ctx, "Health"), Span::raw(words.join(" · "))];
        if words.len() > 1 {
            spans.push(Span::styled(
                format!("  (the table: {first} +{})", words.len() - 1),
                ctx.theme.dim(),
            ));
        }
        lines.push(Line::from(spans));
    }
    for badge in badges.iter() {
        let mut reason = health::reason(badge, key, ctx.policy, ctx.now);
        if badge == health::Badge::NoSecret {
            reason.push_str(" — press I ");
            reason.push_str(health::ISSUE_ACTION);
        }
        lines.push(Line::from(vec![
            Span::raw("  "),
            Span::styled(badge.word(), ctx.theme.badge(badge)),
            Span::raw(format!(": {reason}")),
        ]));
    }
    lines
}

/// The scopes by label, then the description.
fn scopes_and_description(ctx: &Ctx, key: &ApiKey) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(label(ctx, "Scopes"))];
    for scope in present::scope_labels(&key.scopes, ctx.scopes) {
        lines.push(Line::from(format!("  • {scope}")));
    }
    lines.push(Line::from(label(ctx, "Description")));
    if key.description.is_empty() {
        lines.push(Line::from(Span::styled("  (none)", ctx.theme.dim())));
    } else {
        lines.extend(
            key.description
                .lines()
                .map(|l| Line::from(format!("  {l}"))),
        );
    }
    lines
}

/// Where and when the key was reported leaked (issue 23), if it was: the
/// first report's time and source, then where it was seen.
fn exposure_lines(ctx: &Ctx, key: &ApiKey) -> Vec<Line<'static>> {
    let Some(e) = &key.exposure else {
        return Vec::new();
    };
    let when = present::exact_relative(e.at, ctx.tz, ctx.now);
    vec![
        Line::from(vec![
            label(ctx, "Exposed"),
            Span::styled(
                format!("{when} by {}", e.source),
                ctx.theme.badge(health::Badge::Exposed),
            ),
        ]),
        Line::from(vec![
            label(ctx, ""),
            Span::raw(format!("at {}", e.location)),
        ]),
    ]
}

/// A key made without a secret (the `rotate` leak policy's successor):
/// `no secret` and what that means; its badge's line in Health says why and
/// the key that issues it.
fn pending_lines(ctx: &Ctx, key: &ApiKey) -> Vec<Line<'static>> {
    if !key.secret_pending {
        return Vec::new();
    }
    vec![Line::from(vec![
        label(ctx, "Secret"),
        Span::styled("no secret", ctx.theme.badge(health::Badge::NoSecret)),
        Span::raw(": nothing authenticates as it yet"),
    ])]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn wrapped_lines_hang_under_their_value() {
        let line = Line::from(vec![
            Span::raw("Created     "),
            Span::raw("2030-01-15 09:00:00 +00:00 (3 days ago) by admin@example.com"),
        ]);
        let rows = texts(&hanging(line, 40, 12));
        assert_eq!(
            rows,
            [
                "Created     2030-01-15 09:00:00 +00:00",
                "            (3 days ago) by",
                "            admin@example.com",
            ]
        );
        for row in &rows {
            assert!(row.chars().count() <= 40, "{row}");
        }
        // A word longer than the room is cut where the row ends.
        let rows = texts(&hanging(Line::from("x".repeat(30)), 20, 4));
        assert_eq!(rows, ["x".repeat(20), format!("    {}", "x".repeat(10))]);
        // A value without spaces is cut, not moved off its label's line.
        let rows = texts(&hanging(
            Line::from("ID          key_0123456789abc"),
            24,
            12,
        ));
        assert_eq!(rows, ["ID          key_01234567", "            89abc"]);
        // What fits stays as it is.
        assert_eq!(texts(&hanging(Line::from("short"), 20, 4)), ["short"]);
    }
}
