//! Key details (`Enter`): every field, exact times in the admin's zone, each
//! health badge with its reason; its keys and drawing.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::{Ctx, Intent};
use crate::api::ApiKey;
use crate::key::health;
use crate::present;
use crate::present::status_text;
use crate::tui::keymap::{self, Command, Context};

/// What a key does on the details screen.
pub fn on_command(command: Option<Command>) -> Intent {
    if command == Some(Command::Back) {
        Intent::Close
    } else {
        Intent::Stay
    }
}

pub fn draw(frame: &mut Frame, ctx: &Ctx, key: &ApiKey, area: Rect) {
    let mut lines = fields(ctx, key);
    lines.extend(health_lines(ctx, key));
    lines.extend(scopes_and_description(ctx, key));
    let height = u16::try_from(lines.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let popup = Rect { height, ..area };
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .title(" Key details ")
        .title_bottom(keymap::border(Context::Details));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        popup,
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
    let name = |id: &str| match ctx.key_by_id(id) {
        Some(k) => format!("{} “{}” ({id})", present::prefix_short(&k.prefix), k.name),
        None => id.to_owned(),
    };
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
