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

pub mod cut;
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
    let filter_rows = u16::from(app.filtering || !app.filter.value().is_empty());
    let [title, summary, tabs, banner, filter, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(app.summary_rows()),
        Constraint::Length(1),
        Constraint::Length(app.banner_rows()),
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
    if let Some(flash) = &app.flash {
        draw_status(frame, app, flash, body);
    }
}

/// A status message (`Copied …`, `Revoked …`) until the next key, on the
/// last row of `body` (the table's place), over whatever is there (the row
/// above when that is the selected row): it never moves the table, and
/// shows over a popup too. Cut with `…` to its row.
fn draw_status(frame: &mut Frame, app: &App, flash: &str, body: Rect) {
    let Some(mut y) = body.bottom().checked_sub(1).filter(|y| *y > body.y) else {
        return;
    };
    // Not over the selected row (the header is the body's first row): the
    // one above it then.
    let last_shown = app.offset + usize::from(body.height).saturating_sub(2);
    if app.popups.is_empty() && app.selected == last_shown && y > body.y + 1 {
        y -= 1;
    }
    let row = Rect::new(body.x, y, body.width, 1);
    let text = cut::end(&format!(" {flash} "), usize::from(row.width));
    frame.render_widget(ratatui::widgets::Clear, row);
    frame.render_widget(Paragraph::new(text).style(app.theme.title()), row);
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
    // An automatic refresh is not shown while it runs: an unchanged one
    // draws nothing. `r` shows `refreshing…` (see [`App::freshness`]).
    let state = if app.loading && !app.loaded {
        "loading…".to_owned()
    } else if !app.filter.value().is_empty() {
        // What the filter left of the tab: `8 of 12 keys`, `2 of 5 active keys`.
        let tab = match app.tab {
            Tab::All => String::new(),
            tab => format!("{} ", tab.label().to_lowercase()),
        };
        let noun = if app.tab_total() == 1 { "key" } else { "keys" };
        format!("{} of {} {tab}{noun}", app.row_count(), app.tab_total())
    } else {
        present::count(app.key_total(), "key", "keys")
    };
    // Where the selection is, once the rows do not all fit: `12/40`.
    let state = if app.row_count() > app.page_rows() {
        format!("{}/{} · {state}", app.selected + 1, app.row_count())
    } else {
        state
    };
    let state = match marks_text(app) {
        Some(marks) => format!("{marks} · {state}"),
        None => state,
    };
    let left = Span::styled(" keydeck ", app.theme.title());
    let right = match app.freshness() {
        Some(fresh) => format!("{fresh} · {state} "),
        None => format!("{state} "),
    };
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

/// `2 marked`, and how many of them the filter hides (`d` leaves those).
fn marks_text(app: &App) -> Option<String> {
    if app.marked.is_empty() {
        return None;
    }
    let shown = app.marked_shown().len();
    let hidden = app.marked.len() - shown;
    Some(match hidden {
        0 => format!("{shown} marked"),
        _ => format!("{} marked, {hidden} hidden", app.marked.len()),
    })
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
pub fn footer_hints(app: &App) -> Vec<keymap::Hint> {
    let state = keymap::FooterState {
        has_rows: app.row_count() > 0,
        filtered: !app.filter.value().is_empty(),
        attention: app.tab == Tab::Attention,
        marked: app.marked_shown().len(),
        marks: !app.marked.is_empty(),
        endpoint_disabled: matches!(
            app.popups.last(),
            Some(crate::tui::popup::Popup::Webhooks(view)) if view.selected_is_disabled()
        ),
    };
    keymap::footer_ranked(app.context(), state)
}

/// Columns one footer hint takes: its keys, a space, its label, two spaces.
fn hint_width(hint: &keymap::Hint) -> usize {
    hint.keys.chars().count() + hint.text().chars().count() + 3
}

/// What ends a footer that dropped something: `… ? more` where `?` opens
/// the help (which lists every key), else `…`.
fn footer_tail(help: Option<(&'static str, &'static str)>) -> Vec<&'static str> {
    match help {
        Some((keys, _)) => vec!["…", keys, "more"],
        None => vec!["…"],
    }
}

/// The hints that fit in `width` columns (after the one-column margin), in
/// footer order, and whether any was dropped. Dropped first: the largest
/// priority (the last of equals); when something goes, `help` (the `?` hint)
/// becomes the tail `… ? more`, whose room is kept.
pub fn fit_footer(
    mut hints: Vec<keymap::Hint>,
    width: usize,
    help: Option<(&'static str, &'static str)>,
) -> (Vec<keymap::Hint>, bool) {
    let used = |hints: &[keymap::Hint]| 1 + hints.iter().map(hint_width).sum::<usize>();
    if used(&hints) <= width {
        return (hints, false);
    }
    if let Some((keys, _)) = help {
        hints.retain(|h| h.keys != keys);
    }
    let tail: usize = footer_tail(help)
        .iter()
        .map(|s| s.chars().count() + 1)
        .sum();
    while !hints.is_empty() && used(&hints) + tail > width {
        let worst = (0..hints.len())
            .max_by_key(|&i| hints[i].priority)
            .unwrap_or(0);
        hints.remove(worst);
    }
    (hints, true)
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let help = keymap::hint_for(app.context(), keymap::Command::Help);
    let (hints, dropped) = fit_footer(footer_hints(app), usize::from(area.width), help);
    let mut spans = vec![Span::raw(" ")];
    for hint in hints {
        spans.push(Span::styled(hint.keys, app.theme.key_hint()));
        spans.push(Span::raw(format!(" {}  ", hint.text())));
    }
    if dropped {
        let tail = footer_tail(help);
        spans.push(Span::styled(tail[0], app.theme.dim()));
        if let [_, keys, more] = tail[..] {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(keys, app.theme.key_hint()));
            spans.push(Span::raw(format!(" {more}")));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymap::{Context, FooterState};

    fn table_hints() -> Vec<keymap::Hint> {
        let state = FooterState {
            has_rows: true,
            ..FooterState::default()
        };
        keymap::footer_ranked(Context::Table, state)
    }

    fn keys(hints: &[keymap::Hint]) -> Vec<&str> {
        hints.iter().map(|h| h.keys).collect()
    }

    #[test]
    fn a_narrow_footer_keeps_quit_and_filter_and_says_there_is_more() {
        let help = keymap::hint_for(Context::Table, keymap::Command::Help);
        assert_eq!(help, Some(("?", "help")));
        let (wide, dropped) = fit_footer(table_hints(), 200, help);
        assert!(!dropped);
        assert_eq!(wide.len(), table_hints().len());
        assert!(keys(&wide).contains(&"?"));
        for width in [80, 60, 40] {
            let (shown, dropped) = fit_footer(table_hints(), width, help);
            let shown = keys(&shown);
            assert!(dropped, "{width}: {shown:?}");
            assert!(
                shown.contains(&"q") && shown.contains(&"/"),
                "{width}: {shown:?}"
            );
            assert!(!shown.contains(&"?"), "? becomes the tail: {shown:?}");
        }
    }

    #[test]
    fn at_80_columns_marks_keep_what_acts_on_them() {
        let help = keymap::hint_for(Context::Table, keymap::Command::Help);
        let state = FooterState {
            has_rows: true,
            marked: 2,
            marks: true,
            ..FooterState::default()
        };
        let (shown, dropped) = fit_footer(keymap::footer_ranked(Context::Table, state), 80, help);
        let texts: Vec<String> = shown
            .iter()
            .map(|h| format!("{} {}", h.keys, h.text()))
            .collect();
        assert!(dropped, "{texts:?}");
        assert!(
            texts.contains(&"d revoke 2 marked".to_owned())
                && texts.contains(&"Esc clear marks".to_owned()),
            "{texts:?}"
        );
    }

    #[test]
    fn without_help_a_cut_footer_ends_with_an_ellipsis_only() {
        let hints = keymap::footer_ranked(Context::Create, FooterState::default());
        let all = hints.len();
        let (shown, dropped) = fit_footer(hints, 30, None);
        assert!(dropped && shown.len() < all);
        assert_eq!(footer_tail(None), vec!["…"]);
        let used = 1 + shown.iter().map(hint_width).sum::<usize>() + 2;
        assert!(used <= 30, "{used}");
    }
}
