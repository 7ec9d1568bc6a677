//! Drawing: the screen is a function of `App`, nothing here changes state.
//! The chrome (title, summary, tabs, banner, filter line, footer) is drawn
//! here, the table in table.rs, and each popup by its own file from a
//! [`Ctx`](super::popup::Ctx).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, Tab};
use super::keymap;
use crate::present;

pub mod table;

/// Below this the UI shows a notice instead of a squeezed table.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 8;

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let mut notice = vec![Line::from(format!(
            "Terminal too small ({}×{}). keydeck needs at least {MIN_WIDTH}×{MIN_HEIGHT}. q or Ctrl-C quits.",
            area.width, area.height
        ))];
        // What became of the last key (nothing is done blind).
        if let Some(flash) = &app.flash {
            notice.push(Line::styled(flash.as_str(), app.theme.title()));
        }
        frame.render_widget(Paragraph::new(notice).wrap(Wrap { trim: true }), area);
        return;
    }
    let banner_rows = app.banner_rows().max(u16::from(app.flash.is_some()));
    let filter_rows = u16::from(app.filtering || !app.filter.value().is_empty());
    let [title, summary, tabs, banner, filter, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(app.summary_rows()),
        Constraint::Length(1),
        Constraint::Length(banner_rows),
        Constraint::Length(filter_rows),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_title(frame, app, title);
    draw_summary(frame, app, summary);
    draw_tabs(frame, app, tabs);
    if let Some(b) = &app.banner {
        let text = Paragraph::new(format!(" ⚠ {}", b.message))
            .style(app.theme.error_banner())
            .wrap(Wrap { trim: false });
        frame.render_widget(text, banner);
    } else if let Some(flash) = &app.flash {
        frame.render_widget(
            Paragraph::new(format!(" {flash}")).style(app.theme.title()),
            banner,
        );
    }
    if filter_rows > 0 {
        draw_filter(frame, app, filter);
    }
    table::draw(frame, app, body);
    draw_footer(frame, app, footer);
    let ctx = app.popup_ctx();
    for popup in &app.popups {
        popup.draw(frame, &ctx, area, body);
    }
}

/// The filter line: what is typed, with a cursor while typing.
fn draw_filter(frame: &mut Frame, app: &App, area: Rect) {
    let cursor = if app.filtering { "█" } else { "" };
    let line = Line::from(vec![
        Span::styled(" / ", app.theme.key_hint()),
        Span::raw(format!("{}{cursor}", app.filter.value())),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_title(frame: &mut Frame, app: &App, area: Rect) {
    // A refresh is not shown while it runs: an unchanged one draws nothing.
    let state = if app.loading && !app.loaded {
        "loading…".to_owned()
    } else {
        present::count(app.keys.len(), "key", "keys")
    };
    let left = Span::styled(" keydeck ", app.theme.title());
    let right = format!("{state} ");
    let middle_width =
        usize::from(area.width).saturating_sub(left.width() + right.chars().count() + 1);
    let source: String = app.source.chars().take(middle_width).collect();
    let pad = middle_width.saturating_sub(source.chars().count());
    let line = Line::from(vec![
        left,
        Span::styled(source, app.theme.dim()),
        Span::raw(" ".repeat(pad)),
        Span::raw(right),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// The summary line over all keys: `12 active · 3 expiring within 7d · …`,
/// each warning in its badge's colour; the badges' words alone where the
/// whole line would not fit.
fn draw_summary(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::raw(" ")];
    let fits = app.summary().to_string().chars().count() < usize::from(area.width);
    let terms = app.summary().terms(!fits);
    if terms.is_empty() {
        spans.push(Span::styled(app.summary().to_string(), app.theme.dim()));
    }
    for (i, (text, badge)) in terms.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", app.theme.dim()));
        }
        spans.push(match badge {
            Some(badge) => Span::styled(text, app.theme.badge(badge)),
            None => Span::raw(text),
        });
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_tabs(frame: &mut Frame, app: &App, area: Rect) {
    let counts = app.tab_counts();
    let arrow = if app.sort_reversed { "↑" } else { "↓" };
    let sort = if app.tab == Tab::Attention {
        "worst first"
    } else {
        app.sort.label()
    };
    let mut texts: Vec<String> = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, tab)| format!("{} {} ({})", i + 1, tab.label(), counts[i]))
        .collect();
    texts.push(format!("sort: {sort} {arrow}"));
    // Five tabs and the sort order: narrower gaps, then a shorter sort label,
    // before anything is cut.
    let width = |texts: &[String], gap: usize| {
        1 + texts.iter().map(|t| t.chars().count() + gap).sum::<usize>() - gap
    };
    let room = usize::from(area.width);
    let gap = if width(&texts, 2) <= room { "  " } else { " " };
    if width(&texts, 1) > room {
        texts.pop();
        texts.push(format!("{sort} {arrow}"));
    }
    let mut spans = vec![Span::raw(" ")];
    for (i, text) in texts.into_iter().enumerate() {
        let style = match Tab::ALL.get(i) {
            Some(tab) if *tab == app.tab => app.theme.active_tab(),
            _ => app.theme.dim(),
        };
        if i > 0 {
            spans.push(Span::raw(gap));
        }
        spans.push(Span::styled(text, style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The keys that work right now, from the keymap for what is on screen.
pub fn footer_hints(app: &App) -> Vec<(&'static str, &'static str)> {
    let state = keymap::FooterState {
        has_rows: !app.rows.is_empty(),
        filtered: !app.filter.value().is_empty(),
        attention: app.tab == Tab::Attention,
    };
    keymap::footer(app.context(), state)
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::raw(" ")];
    let mut used = 1;
    for (key, what) in footer_hints(app) {
        let width = key.chars().count() + what.chars().count() + 3;
        if used + width > usize::from(area.width) {
            break;
        }
        used += width;
        spans.push(Span::styled(key, app.theme.key_hint()));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
