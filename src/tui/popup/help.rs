//! Help (`?`): every key binding that works in this build, from the keymap,
//! searchable with `/`; its scrolling, searching and closing keys, and its
//! drawing.

use std::sync::atomic::{AtomicU16, Ordering};

use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

use super::{centered, clear_with_margin, scrollbar, Ctx, Intent};
use crate::tui::keymap::{self, Command, Context};

/// The help screen: how far it is scrolled, and what it is filtered by.
#[derive(Default)]
pub struct HelpView {
    scroll: u16,
    query: Input,
    /// Typing into the search line (`/`): keys edit it.
    searching: bool,
    /// The furthest the help can scroll, as of the last frame drawn.
    max_scroll: AtomicU16,
}

impl HelpView {
    /// Where the keys go: the search line while typing, else the help.
    pub fn context(&self) -> Context {
        if self.searching {
            Context::Filter
        } else {
            Context::Help
        }
    }

    /// What the help is filtered by (empty: everything).
    pub fn query(&self) -> &str {
        self.query.value()
    }

    pub fn handle(&mut self, command: Option<Command>, key: KeyEvent) -> Intent {
        if self.searching {
            match command {
                Some(Command::FilterKeep) => self.searching = false,
                Some(Command::FilterClear) => {
                    self.searching = false;
                    self.query.reset();
                }
                Some(Command::Down) => self.scroll = self.scroll.saturating_add(1),
                Some(Command::Up) => self.scroll = self.scroll.saturating_sub(1),
                _ => {
                    self.query.handle_event(&crossterm::event::Event::Key(key));
                    self.scroll = 0;
                }
            }
            return Intent::Stay;
        }
        let max = self.max_scroll.load(Ordering::Relaxed);
        match command {
            Some(Command::ScrollDown) => self.scroll = self.scroll.saturating_add(1).min(max),
            Some(Command::ScrollUp) => self.scroll = self.scroll.saturating_sub(1),
            Some(Command::ScrollPageDown) => self.scroll = self.scroll.saturating_add(10).min(max),
            Some(Command::ScrollPageUp) => self.scroll = self.scroll.saturating_sub(10),
            Some(Command::First) => self.scroll = 0,
            Some(Command::Last) => self.scroll = max,
            Some(Command::Filter) => self.searching = true,
            // Esc clears a search before it closes the help.
            Some(Command::Back)
                if key.code == crossterm::event::KeyCode::Esc && !self.query().is_empty() =>
            {
                self.query.reset();
                self.scroll = 0;
            }
            Some(Command::Back) => return Intent::Close,
            _ => {}
        }
        Intent::Stay
    }
}

/// The help's lines: each section's heading and the bindings whose keys or
/// words hold `query` (any case); a section with none is left out.
fn help_lines<'a>(ctx: &Ctx, query: &str) -> (Vec<Line<'a>>, usize, usize) {
    let query = query.to_lowercase();
    let (mut lines, mut shown, mut all) = (Vec::new(), 0, 0);
    for (heading, bindings) in keymap::help_sections(ctx.refresh_every) {
        all += bindings.len();
        let matching: Vec<_> = bindings
            .into_iter()
            .filter(|(keys, what)| {
                keys.to_lowercase().contains(&query) || what.to_lowercase().contains(&query)
            })
            .collect();
        if matching.is_empty() {
            continue;
        }
        shown += matching.len();
        lines.push(Line::from(Span::styled(heading, ctx.theme.title())));
        for (keys, what) in matching {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<13}"), ctx.theme.key_hint()),
                Span::raw(what),
            ]));
        }
    }
    (lines, shown, all)
}

/// How to read the Health column, after the keys (when not searching):
/// what `·` and `+N` mean.
pub const BADGE_NOTES: [(&str, &str); 2] = [
    (
        "rotate · unused",
        "two badges, · between them; details say why (Enter)",
    ),
    (
        "rotate +2",
        "the first badge and 2 more the column has no room for",
    ),
];

fn badge_notes<'a>(ctx: &Ctx) -> Vec<Line<'a>> {
    let mut lines = vec![Line::from(Span::styled("Health column", ctx.theme.title()))];
    for (shown, meaning) in BADGE_NOTES {
        lines.push(Line::from(vec![
            Span::raw(format!("  {shown:<17}")),
            Span::raw(meaning),
        ]));
    }
    lines
}

pub fn draw(frame: &mut Frame, ctx: &Ctx, view: &HelpView, area: Rect) {
    let (mut lines, shown, all) = help_lines(ctx, view.query());
    if view.query().is_empty() {
        lines.extend(badge_notes(ctx));
    }
    if lines.is_empty() {
        lines.push(Line::styled(
            format!("No key binding mentions “{}”.", view.query()),
            ctx.theme.dim(),
        ));
    }
    let search = (view.searching || !view.query().is_empty()).then(|| {
        let cursor = if view.searching { "█" } else { "" };
        Line::from(vec![
            Span::styled("/", ctx.theme.key_hint()),
            Span::raw(format!("{}{cursor}", view.query())),
        ])
    });
    let total = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    // The popup keeps its full height while searching: it does not jump.
    let (full, _, _) = help_lines(ctx, "");
    let full = u16::try_from(full.len() + badge_notes(ctx).len()).unwrap_or(u16::MAX);
    let popup = centered(area, 78, full + 2);
    let body = popup.height.saturating_sub(2 + u16::from(search.is_some()));
    view.max_scroll
        .store(total.saturating_sub(body), Ordering::Relaxed);
    let scroll = view.scroll.min(total.saturating_sub(body));
    let hint = |command| keymap::hint_for(Context::Help, command).unwrap_or_default();
    let (search_keys, search_what) = hint(Command::Filter);
    let more = if scroll + body < total {
        let (keys, what) = hint(Command::ScrollDown);
        format!(" {keys} {what} · {search_keys} {search_what} · ↓ more ")
    } else {
        let (keys, what) = hint(Command::Back);
        format!(" {search_keys} {search_what} · {keys} {what} ")
    };
    let title = if view.query().is_empty() {
        " Help ".to_owned()
    } else {
        format!(" Help · {shown} of {all} ")
    };
    let position = format!(
        " {}-{}/{total} ",
        (scroll + 1).min(total),
        (scroll + body).min(total)
    );
    clear_with_margin(frame, popup, area);
    let block = Block::bordered()
        .title(title)
        .title(Line::from(position).right_aligned())
        .title_bottom(more);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let mut text = inner;
    if let Some(search) = search {
        frame.render_widget(Paragraph::new(search), Rect { height: 1, ..inner });
        text = Rect {
            y: inner.y + 1,
            height: inner.height.saturating_sub(1),
            ..inner
        };
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        text,
    );
    let track = Rect {
        y: text.y,
        height: text.height,
        ..popup
    };
    scrollbar(
        frame,
        track,
        usize::from(total),
        usize::from(scroll),
        usize::from(body),
    );
}
