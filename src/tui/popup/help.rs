//! Help (`?`): every key binding that works in this build, from the keymap;
//! its scrolling and closing keys, and its drawing.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::{centered, Ctx, Intent};
use crate::tui::keymap::{self, Command, Context};

/// What a key does to the help screen, scrolled down `scroll` lines.
pub fn on_command(scroll: &mut u16, command: Option<Command>) -> Intent {
    match command {
        Some(Command::ScrollDown) => *scroll = scroll.saturating_add(1),
        Some(Command::ScrollUp) => *scroll = scroll.saturating_sub(1),
        Some(Command::ScrollPageDown) => *scroll = scroll.saturating_add(10),
        Some(Command::ScrollPageUp) => *scroll = scroll.saturating_sub(10),
        Some(Command::Back) => return Intent::Close,
        _ => {}
    }
    Intent::Stay
}

pub fn draw(frame: &mut Frame, ctx: &Ctx, scroll: u16, area: Rect) {
    let mut lines = Vec::new();
    for (heading, bindings) in keymap::help_sections(ctx.refresh_every) {
        lines.push(Line::from(Span::styled(heading, ctx.theme.title())));
        for (keys, what) in bindings {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<13}"), ctx.theme.key_hint()),
                Span::raw(what),
            ]));
        }
    }
    let total = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let popup = centered(area, 78, total + 2);
    let visible = popup.height.saturating_sub(2);
    let scroll = scroll.min(total.saturating_sub(visible));
    let hint = |command| keymap::hint_for(Context::Help, command).unwrap_or_default();
    let more = if scroll + visible < total {
        let (keys, what) = hint(Command::ScrollDown);
        format!(" {keys} {what} · ↓ more ")
    } else {
        let (keys, what) = hint(Command::Back);
        format!(" {keys} {what} ")
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
