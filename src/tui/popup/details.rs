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
}

impl DetailsView {
    pub fn new(id: String) -> Self {
        Self {
            id,
            ..Self::default()
        }
    }

    /// What a key does on the details screen: scroll, or go back.
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
            Some(Command::Audit) => return Intent::AuditOf(self.id.clone()),
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

pub fn draw(frame: &mut Frame, ctx: &Ctx, view: &DetailsView, key: &ApiKey, area: Rect) {
    let mut lines = fields(ctx, key);
    lines.extend(exposure_lines(ctx, key));
    lines.extend(health_lines(ctx, key));
    lines.extend(scopes_and_description(ctx, key));
    let total = wrapped_rows(&lines, area.width.saturating_sub(2));
    let height = total.saturating_add(2).min(area.height);
    let popup = Rect { height, ..area };
    let visible = height.saturating_sub(2);
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
    Span::styled(format!("{text:<12}"), ctx.theme.title())
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
    if !badges.is_empty() {
        lines.push(Line::from(label(ctx, "Health")));
    }
    for badge in badges.iter() {
        lines.push(Line::from(vec![
            Span::raw("  "),
            Span::styled(badge.word(), ctx.theme.badge(badge)),
            Span::raw(format!(
                ": {}",
                health::reason(badge, key, ctx.policy, ctx.now)
            )),
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
