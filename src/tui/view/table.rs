//! The key table's drawing: the mark gutter, which columns fit, their
//! widths, the cells of the rows on screen (only those are built, so tens of
//! thousands of keys scroll as fast as ten), and what an empty table says.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use crate::api::ApiKey;
use crate::key::health::Badge;
use crate::present;
use crate::present::status_text;
use crate::present::KeyColumn as Column;
use crate::tui::app::{App, Tab};
use crate::tui::view::cut;

/// How the TUI shows a column: its title and the least width it takes. The
/// columns, their order and which stay first are [`present::KeyColumn`]'s,
/// shared with `keys list`.
trait Look {
    fn title(self) -> &'static str;
    fn min_width(self) -> u16;
}

impl Look for Column {
    fn title(self) -> &'static str {
        match self {
            Column::Name => "Name",
            Column::Prefix => "Key Prefix",
            Column::Scopes => "Scopes",
            Column::LastUsed => "Last Used",
            Column::Status => "Status",
            Column::Health => "Health",
            Column::Created => "Created",
            Column::Expires => "Expires",
        }
    }

    fn min_width(self) -> u16 {
        match self {
            // 18 with the mark gutter and its gap before it.
            Column::Name => 16,
            Column::Prefix => 15,
            Column::Scopes => 14,
            Column::LastUsed => 9,
            Column::Status => 9,
            Column::Health => 9,
            Column::Created => 8,
            Column::Expires => 8,
        }
    }
}

/// Room for most key names, before Created gets a column.
const NAME_COMFORT: u16 = 24;

/// What the rows on screen need, in columns: the content-based widths.
#[derive(Debug, Clone, Copy)]
struct Needs {
    /// The widest name.
    name: u16,
    /// The widest prefix after the shared part, with its header.
    prefix: u16,
    /// The widest scopes, all named.
    scopes: u16,
    /// What the widest badges need.
    health: u16,
    /// The column the rows are sorted by, whose header carries the arrow.
    sorted: Option<Column>,
}

impl Needs {
    /// No content yet: every column as wide as it may grow.
    #[cfg(test)]
    fn any(health: u16) -> Self {
        Self {
            name: u16::MAX,
            prefix: Column::Prefix.min_width(),
            scopes: u16::MAX,
            health,
            sorted: None,
        }
    }

    fn min_width(&self, col: Column) -> u16 {
        let least = match col {
            Column::Prefix => self.prefix,
            col => col.min_width(),
        };
        // The sorted column's header and its arrow show whole.
        if self.sorted == Some(col) {
            least.max(u16::try_from(col.title().chars().count() + 2).unwrap_or(u16::MAX))
        } else {
            least
        }
    }
}

/// Each column's width within `width`: its minimum (the prefix column as
/// wide as its content), then what is spare goes first to Name (up to
/// [`NAME_COMFORT`] or its widest name), then to Health (what its badges
/// need), then to Scopes (what its widest scopes need, at most 32), and the
/// rest half each to Name and Scopes as far as their content needs; what
/// no content needs goes to Name.
fn widths(columns: &[Column], width: u16, needs: Needs) -> Vec<u16> {
    let mut widths: Vec<u16> = columns.iter().map(|c| needs.min_width(*c)).collect();
    let gaps = u16::try_from(columns.len().saturating_sub(1)).unwrap_or(u16::MAX);
    let mut spare = width.saturating_sub(widths.iter().sum::<u16>() + gaps);
    let mut grow = |col: Column, upto: u16, spare: &mut u16| {
        if let Some(i) = columns.iter().position(|c| *c == col) {
            let add = upto.saturating_sub(widths[i]).min(*spare);
            widths[i] += add;
            *spare -= add;
        }
    };
    grow(Column::Name, NAME_COMFORT.min(needs.name), &mut spare);
    grow(Column::Health, needs.health, &mut spare);
    grow(Column::Scopes, needs.scopes.min(32), &mut spare);
    let half = if columns.contains(&Column::Scopes) {
        spare / 2
    } else {
        0
    };
    let mut to_scopes = half;
    grow(Column::Scopes, needs.scopes, &mut to_scopes);
    spare -= half - to_scopes;
    grow(Column::Name, needs.name, &mut spare);
    grow(Column::Scopes, needs.scopes, &mut spare);
    // Room no content needs: the name's, so the row reads to the edge.
    grow(Column::Name, u16::MAX, &mut spare);
    widths
}

/// The columns that fit in `width`, in display order. Created, the least
/// needed, joins only where the name keeps [`NAME_COMFORT`] columns.
fn columns_for(width: u16, needs: Needs) -> Vec<Column> {
    let mut chosen = Vec::new();
    let mut used = 0u16;
    for col in Column::PRIORITY {
        let extra = needs.min_width(col) + u16::from(!chosen.is_empty());
        let reserve = match col {
            Column::Created => NAME_COMFORT - Column::Name.min_width(),
            _ => 0,
        };
        if used + extra + reserve <= width {
            used += extra;
            chosen.push(col);
        }
    }
    Column::ORDER
        .into_iter()
        .filter(|c| chosen.contains(c))
        .collect()
}

/// The part of the prefixes on screen they all share, up to and with its
/// last `_` (`eg_live_`): the prefix column's header says it once and the
/// rows show what differs.
fn shared_prefix<'k>(mut prefixes: impl Iterator<Item = &'k str>) -> &'k str {
    let Some(first) = prefixes.next() else {
        return "";
    };
    let mut len = first.len();
    for p in prefixes {
        len = first
            .bytes()
            .zip(p.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    let common = &first[..len];
    common.rfind('_').map_or("", |i| &first[..=i])
}

/// The prefix column's header: the shared part (`eg_live_`), else its title.
fn prefix_header(shared: &str) -> String {
    if shared.is_empty() {
        Column::Prefix.title().to_owned()
    } else {
        shared.to_owned()
    }
}

/// A key's scopes in `width` columns: all named when they fit, else as many
/// as fit and how many more (`Sessions:R +2`), the last resort cut with `…`.
fn scopes_text(key: &ApiKey, catalogue: &[crate::api::ScopeInfo], width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    let all = present::scopes_short(&key.scopes, catalogue);
    if all.width() <= width || all == "Full Access" {
        return cut::end(&all, width);
    }
    let names: Vec<String> = key
        .scopes
        .iter()
        .map(|s| present::scope_name(s, catalogue))
        .collect();
    for shown in (1..names.len()).rev() {
        let text = format!("{} +{}", names[..shown].join(", "), names.len() - shown);
        if text.width() <= width {
            return text;
        }
    }
    let more = format!(" +{}", names.len() - 1);
    let first = cut::end(&names[0], width.saturating_sub(more.len()));
    cut::end(&format!("{first}{more}"), width)
}

/// The width the widest badges on screen need.
fn health_need<'k>(app: &App, keys: impl Iterator<Item = &'k ApiKey>) -> u16 {
    keys.map(|k| {
        let words = app.badges_of(k).iter().filter(|b| b.in_column());
        let (count, len) = words.fold((0, 0), |(n, l), b| {
            let text = badge_text(app, k, b, usize::MAX);
            (n + 1, l + text.chars().count())
        });
        u16::try_from(len + BADGE_GAP.chars().count() * (count.max(1) - 1)).unwrap_or(u16::MAX)
    })
    .max()
    .unwrap_or(0)
}

/// Between two badges: `rotate · unused` reads as two badges, not two words.
const BADGE_GAP: &str = " · ";

/// A badge as the Health column says it ([`present::badge_text`]).
fn badge_text(app: &App, key: &ApiKey, badge: Badge, width: usize) -> String {
    let successor = key.replaced_by.as_deref().and_then(|id| app.key_by_id(id));
    present::badge_text(badge, key, successor, app.tz(), app.now, width)
}

/// The badges as words, worst first, as many as fit in `width` and a count
/// of the rest ("rotate +2"), which always shows: the first word is cut
/// with `…` to make room for it ("expiri… +1").
fn health_cell<'a>(app: &App, key: &ApiKey, width: u16) -> Cell<'a> {
    let words: Vec<_> = app
        .badges_of(key)
        .iter()
        .filter(|b| b.in_column())
        .collect();
    let mut spans = Vec::new();
    let mut used = 0;
    for (i, badge) in words.iter().enumerate() {
        let gap = if i > 0 { BADGE_GAP.chars().count() } else { 0 };
        let rest = words.len() - i - 1;
        let more = if rest > 0 {
            format!(" +{rest}").len()
        } else {
            0
        };
        // The first word leaves room for the count, cut with `…` if need be.
        let room = usize::from(width).saturating_sub(if i == 0 { more } else { 0 });
        let mut word = badge_text(app, key, *badge, room);
        if i == 0 {
            word = cut::end(&word, room);
        }
        if i > 0 && used + gap + word.chars().count() + more > usize::from(width) {
            spans.push(Span::raw(format!(" +{}", words.len() - i)));
            break;
        }
        if gap > 0 {
            spans.push(Span::styled(BADGE_GAP, app.theme.dim()));
        }
        used += gap + word.chars().count();
        spans.push(Span::styled(word, app.theme.badge(*badge)));
    }
    Cell::from(Line::from(spans))
}

/// A row's cell in `col`, cut to `width` with `…` (the name in its middle,
/// keeping its last words); `shared` is the prefix part the header shows.
fn cell<'a>(app: &App, key: &'a ApiKey, col: Column, width: u16, shared: &str) -> Cell<'a> {
    let now = app.now;
    let fit = |text: String| Cell::from(cut::end(&text, usize::from(width)));
    match col {
        Column::Name => Cell::from(highlighted(
            &cut::middle(&key.name, usize::from(width)),
            &app.filter.value().to_lowercase(),
            app.theme.matched(),
        )),
        Column::Prefix => fit(present::prefix(
            key.prefix.strip_prefix(shared).unwrap_or(&key.prefix),
        )),
        Column::Scopes => Cell::from(scopes_text(key, &app.scopes, usize::from(width))),
        Column::LastUsed => fit(key
            .last_used_at
            .map_or_else(|| "Never".into(), |t| present::relative(t, now))),
        Column::Status => {
            let status = app.status_of(key);
            Cell::from(status_text(status)).style(app.theme.status(status))
        }
        Column::Health => health_cell(app, key, width),
        Column::Created => fit(present::relative(key.created_at, now)),
        Column::Expires => fit(present::expires_relative(key, now)),
    }
}

/// `text` with each (case-blind) occurrence of `needle` in `style`.
fn highlighted<'a>(text: &str, needle: &str, style: Style) -> Line<'a> {
    let lower: Vec<char> = text
        .chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect();
    let needle: Vec<char> = needle.chars().collect();
    let chars: Vec<char> = text.chars().collect();
    if needle.is_empty() {
        return Line::from(text.to_owned());
    }
    let (mut spans, mut plain, mut i) = (Vec::new(), String::new(), 0);
    while i < chars.len() {
        if lower[i..].starts_with(&needle) {
            spans.push(Span::raw(std::mem::take(&mut plain)));
            let hit: String = chars[i..i + needle.len()].iter().collect();
            spans.push(Span::styled(hit, style));
            i += needle.len();
        } else {
            plain.push(chars[i]);
            i += 1;
        }
    }
    spans.push(Span::raw(plain));
    Line::from(spans)
}

/// The mark gutter: one column before the others, `✓` on a marked row.
const GUTTER: u16 = 1;

/// The gutter's cell for `key`.
fn mark_cell<'a>(app: &App, key: &ApiKey) -> Cell<'a> {
    if app.marked.contains(&key.id) {
        Cell::from("✓").style(app.theme.title())
    } else {
        Cell::from(" ")
    }
}

/// The gutter's width, then the columns' (the gutter and its gap come off
/// the width the columns share).
fn constraints(widths: &[u16]) -> Vec<Constraint> {
    std::iter::once(GUTTER)
        .chain(widths.iter().copied())
        .map(Constraint::Length)
        .collect()
}

/// The column the rows are sorted by: none on Attention (worst first).
fn sorted_column(app: &App) -> Option<Column> {
    use crate::tui::app::SortBy;
    if app.tab == Tab::Attention {
        return None;
    }
    Some(match app.sort {
        SortBy::Created => Column::Created,
        SortBy::Name => Column::Name,
        SortBy::LastUsed => Column::LastUsed,
        SortBy::Expires => Column::Expires,
        SortBy::Status => Column::Status,
    })
}

/// What the rows on screen need (the content-based widths) and the prefix
/// part they share.
fn needs<'k>(app: &App, keys: &[&'k ApiKey]) -> (Needs, &'k str) {
    use unicode_width::UnicodeWidthStr;
    let shared = shared_prefix(keys.iter().map(|k| k.prefix.as_str()));
    let widest = |f: &dyn Fn(&ApiKey) -> usize| {
        u16::try_from(keys.iter().map(|k| f(k)).max().unwrap_or(0)).unwrap_or(u16::MAX)
    };
    let prefix = widest(&|k| present::prefix(&k.prefix[shared.len()..]).width());
    let needs = Needs {
        name: widest(&|k| k.name.width()),
        prefix: prefix.max(u16::try_from(prefix_header(shared).width()).unwrap_or(0)),
        scopes: widest(&|k| present::scopes_short(&k.scopes, &app.scopes).width()),
        health: health_need(app, keys.iter().copied()),
        sorted: sorted_column(app),
    };
    (needs, shared)
}

/// Under a filter, the content widths of the last frame without one, so the
/// columns do not jump with each keystroke (the rows that no longer fit are
/// cut with `…`); without a filter, what the rows on screen need, kept.
fn stable_while_filtering(app: &App, needs: Needs) -> Needs {
    match app.width_basis.get() {
        Some([name, prefix, scopes, health]) if !app.filter.value().is_empty() => Needs {
            name,
            prefix,
            scopes,
            health,
            ..needs
        },
        _ => {
            let basis = [needs.name, needs.prefix, needs.scopes, needs.health];
            app.width_basis.set(basis);
            needs
        }
    }
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let visible = usize::from(area.height.saturating_sub(1));
    // More rows than room: the last column is the scrollbar's.
    let total = app.row_count();
    let scrolls = total > visible;
    let area = if scrolls {
        let track = Rect {
            x: area.right().saturating_sub(1),
            y: area.y + 1,
            width: 1,
            height: area.height.saturating_sub(1),
        };
        crate::tui::popup::scrollbar(frame, track, total, app.offset, visible);
        Rect {
            width: area.width.saturating_sub(1),
            ..area
        }
    } else {
        area
    };
    let room = area.width.saturating_sub(GUTTER + 1);
    // In window mode a row not held yet (its page is on its way) is blank.
    let on_screen: Vec<Option<&ApiKey>> = (app.offset..total.min(app.offset + visible))
        .map(|row| app.key_at(row))
        .collect();
    let held: Vec<&ApiKey> = on_screen.iter().flatten().copied().collect();
    let (needs, shared) = needs(app, &held);
    let needs = stable_while_filtering(app, needs);
    let columns = columns_for(room, needs);
    let arrow = if app.sort_reversed { "↑" } else { "↓" };
    let titles = columns.iter().map(|&c| match c {
        Column::Prefix => Cell::from(prefix_header(shared)),
        c if needs.sorted == Some(c) => Cell::from(format!("{} {arrow}", c.title())),
        c => Cell::from(c.title()),
    });
    let header = Row::new(std::iter::once(Cell::from("")).chain(titles)).style(app.theme.header());
    if total == 0 {
        let widths = widths(&columns, room, needs);
        frame.render_widget(
            Table::new(Vec::<Row>::new(), constraints(&widths))
                .header(header)
                .column_spacing(1),
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
    let widths = widths(&columns, room, needs);
    let rows = on_screen.iter().enumerate().map(|(i, key)| {
        let row = match key {
            Some(key) => {
                let cells = columns
                    .iter()
                    .zip(&widths)
                    .map(|(&c, &w)| cell(app, key, c, w, shared));
                Row::new(std::iter::once(mark_cell(app, key)).chain(cells))
            }
            None => Row::new([Cell::from(" "), Cell::from("…")]),
        };
        if app.offset + i == app.selected {
            row.style(app.theme.selected())
        } else {
            row
        }
    });
    let table = Table::new(rows, constraints(&widths))
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
    if app.key_total() == 0 {
        return vec![
            Line::from("  No API keys yet."),
            Line::from(""),
            Line::from("  Press n to create the first one."),
        ];
    }
    if app.tab == Tab::Attention && app.filter.value().is_empty() {
        return vec![Line::from(
            "  Nothing needs attention: every key follows the best practices.",
        )];
    }
    // Words that fit the tab: on All, no "all keys" and no "1 shows all".
    let keys = match app.tab {
        Tab::All => "keys".to_owned(),
        tab => format!("{} keys", tab.label().to_lowercase()),
    };
    let filter = app.filter.value();
    let (what, hint) = match (filter.is_empty(), app.tab) {
        (true, _) => (format!("  No {keys} match."), "  1 shows all keys."),
        (false, Tab::All) => (
            format!("  No {keys} match “{filter}”."),
            "  Esc clears the filter.",
        ),
        (false, _) => (
            format!("  No {keys} match “{filter}”."),
            "  Esc clears the filter; 1 shows all keys.",
        ),
    };
    vec![Line::from(what), Line::from(hint)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_drop_by_priority_as_the_terminal_narrows() {
        assert_eq!(columns_for(120, Needs::any(9)).len(), 8);
        let at_80 = columns_for(80, Needs::any(9));
        assert!(!at_80.contains(&Column::Expires));
        assert!(at_80.contains(&Column::Scopes) && at_80.contains(&Column::LastUsed));
        assert!(at_80.contains(&Column::Health));
        assert_eq!(
            columns_for(55, Needs::any(9)),
            [Column::Name, Column::Prefix, Column::Status, Column::Health]
        );
        assert_eq!(
            columns_for(40, Needs::any(9)),
            [Column::Name, Column::Status, Column::Health]
        );
        // Health goes last but one: only the name outlasts it.
        assert_eq!(
            columns_for(30, Needs::any(9)),
            [Column::Name, Column::Health]
        );
        assert_eq!(columns_for(20, Needs::any(9)), [Column::Name]);
    }

    #[test]
    fn spare_room_goes_to_the_name_then_health_then_scopes() {
        let seven = columns_for(100, Needs::any(9));
        assert!(!seven.contains(&Column::Created), "the name keeps its room");
        let at = |cols: &[Column], w: &[u16], c| w[cols.iter().position(|x| *x == c).unwrap()];
        let w = widths(&seven, 100, Needs::any(9));
        assert_eq!(
            (at(&seven, &w, Column::Name), at(&seven, &w, Column::Scopes)),
            (24, 20)
        );
        let all = columns_for(120, Needs::any(9));
        assert_eq!(all.len(), 8);
        let at = |w: &[u16], c| at(&all, w, c);
        let w = widths(&all, 140, Needs::any(16));
        assert_eq!(at(&w, Column::Health), 16);
        assert!(at(&w, Column::Scopes) >= 32, "{w:?}");
        assert_eq!(w.iter().sum::<u16>() + 7, 140, "the whole width is used");
        let narrow = columns_for(40, Needs::any(9));
        assert_eq!(
            widths(&narrow, 40, Needs::any(20)).iter().sum::<u16>() + 2,
            40
        );
    }

    #[test]
    fn the_shared_prefix_ends_at_an_underscore() {
        let shared = |ps: &[&'static str]| shared_prefix(ps.iter().copied());
        assert_eq!(shared(&["eg_live_ab12", "eg_live_ab34"]), "eg_live_");
        assert_eq!(shared(&["eg_live_ab12"]), "eg_live_");
        assert_eq!(shared(&["eg_live_ab12", "eg_test_cd34"]), "eg_");
        assert_eq!(shared(&["abc", "abd"]), "");
        assert_eq!(shared(&[]), "");
        assert_eq!(prefix_header(""), "Key Prefix");
    }

    #[test]
    fn scopes_that_do_not_fit_say_how_many_more() {
        let catalogue: Vec<crate::api::ScopeInfo> =
            crate::key::SCOPES.iter().map(Into::into).collect();
        let key = |scopes: &[&str]| ApiKey {
            scopes: scopes
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>()
                .into(),
            ..crate::tui::testing::synthetic_keys(1, chrono::Utc::now()).remove(0)
        };
        let three = key(&["sessions:read", "sessions:write", "resources:read"]);
        assert_eq!(
            scopes_text(&three, &catalogue, 40),
            "Sessions:R, Sessions:W, Resources:R"
        );
        assert_eq!(
            scopes_text(&three, &catalogue, 25),
            "Sessions:R, Sessions:W +1"
        );
        assert_eq!(scopes_text(&three, &catalogue, 14), "Sessions:R +2");
        assert_eq!(scopes_text(&three, &catalogue, 9), "Sessi… +2");
        assert!(scopes_text(&three, &catalogue, 9).chars().count() <= 9);
        let full = key(&["full_access"]);
        assert_eq!(scopes_text(&full, &catalogue, 8), "Full Ac…");
    }
}
