//! Key usage in the UI (issue 22): the details view's usage section (a
//! sparkline of checks over 24 h, 7 d or 30 d, keys `1`–`3`; the totals by
//! outcome in their colours; the client addresses) and the revoke dialog's
//! line about who still uses the key. Drawn from the service's
//! `GET /v1/api-keys/{id}/usage` answer, as the app hands it over.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Sparkline;
use ratatui::Frame;

use super::{Confirm, Ctx, Intent, Then};
use crate::api::{KeyUsage, UsageWindow};
use crate::client::ClientError;
use crate::key::KeyStatus;
use crate::present;

/// The windows the details view switches between (`1`, `2`, `3`).
pub const DETAILS_WINDOWS: [UsageWindow; 3] =
    [UsageWindow::Day, UsageWindow::Week, UsageWindow::Month];

/// Rows the sparkline takes at the bottom of the details view.
pub const SPARK_ROWS: u16 = 3;

/// The details view's usage: the window asked for and what came back.
#[derive(Debug, Default)]
pub struct UsagePane {
    pub window: usize,
    pub state: PaneState,
}

#[derive(Debug, Default)]
pub enum PaneState {
    #[default]
    Loading,
    Loaded(Box<KeyUsage>),
    Failed(String),
}

impl UsagePane {
    /// The window asked for.
    pub fn window(&self) -> UsageWindow {
        DETAILS_WINDOWS[self.window.min(DETAILS_WINDOWS.len() - 1)]
    }

    /// `1`–`3`: another window, loaded.
    pub fn choose(&mut self, i: u8, id: &str) -> Intent {
        self.window = usize::from(i).min(DETAILS_WINDOWS.len() - 1);
        self.state = PaneState::Loading;
        Intent::LoadUsage {
            id: id.to_owned(),
            window: self.window(),
        }
    }

    /// The service's answer for `window` (a late answer for another window is dropped).
    pub fn loaded(&mut self, window: UsageWindow, result: &Result<KeyUsage, ClientError>) {
        if window != self.window() {
            return;
        }
        self.state = match result {
            Ok(usage) => PaneState::Loaded(Box::new(usage.clone())),
            Err(e) => PaneState::Failed(e.to_string()),
        };
    }

    /// Whether a sparkline is drawn under the text.
    pub fn has_sparkline(&self) -> bool {
        matches!(self.state, PaneState::Loaded(_))
    }
}

/// The usage section's lines: title, totals by outcome, addresses.
pub fn lines(ctx: &Ctx, pane: &UsagePane) -> Vec<Line<'static>> {
    let window = pane.window();
    let windows: Vec<String> = DETAILS_WINDOWS
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if *w == window {
                format!("[{} {}]", i + 1, w.as_str())
            } else {
                format!("{} {}", i + 1, w.as_str())
            }
        })
        .collect();
    let mut lines = vec![
        Line::default(),
        Line::from(vec![
            Span::styled(format!("{:<12}", "Usage"), ctx.theme.title()),
            Span::raw(windows.join("  ")),
        ]),
    ];
    let usage = match &pane.state {
        PaneState::Loading => {
            lines.push(Line::from("            loading…"));
            return lines;
        }
        PaneState::Failed(e) => {
            lines.push(Line::from(format!("            not available: {e}")));
            return lines;
        }
        PaneState::Loaded(usage) => usage,
    };
    let t = &usage.totals;
    let green = ctx.theme.status(KeyStatus::Active);
    let yellow = ctx.theme.status(KeyStatus::Expired);
    let red = ctx.theme.status(KeyStatus::Revoked);
    let part = |label: &str, n: u64, style: Style| {
        let style = if n == 0 { Style::default() } else { style };
        Span::styled(format!("{label} {}  ", present::grouped(n)), style)
    };
    lines.push(Line::from(vec![
        Span::raw(format!(
            "            {} checks: ",
            present::grouped(t.checks())
        )),
        part("valid", t.valid, green),
        part("insufficient scope", t.insufficient_scope, yellow),
        part("expired", t.expired, red),
        part("revoked", t.revoked, red),
        part("rate limited", t.rate_limited, yellow),
    ]));
    if usage.addresses.is_empty() {
        lines.push(Line::from("            no client address seen"));
    }
    for (i, a) in usage.addresses.iter().enumerate() {
        let label = if i == 0 { "Addresses" } else { "" };
        lines.push(Line::from(vec![
            Span::styled(format!("{label:<12}"), ctx.theme.title()),
            Span::raw(format!(
                "{:<16} {} uses, last {}, first {}",
                a.address,
                present::grouped(a.uses),
                present::relative(a.last_seen, ctx.now),
                present::relative(a.first_seen, ctx.now)
            )),
        ]));
    }
    lines
}

/// The sparkline of checks per bucket in `area` (the window's buckets, the
/// newest on the right), when the usage is loaded.
pub fn draw_sparkline(frame: &mut Frame, ctx: &Ctx, pane: &UsagePane, area: Rect) {
    let PaneState::Loaded(usage) = &pane.state else {
        return;
    };
    let values: Vec<u64> = usage.buckets.iter().map(|b| b.counts.checks()).collect();
    // The newest buckets when the area is narrower than the window.
    let skip = values.len().saturating_sub(usize::from(area.width));
    frame.render_widget(ratatui::widgets::Clear, area);
    frame.render_widget(
        Sparkline::default()
            .data(&values[skip..])
            .style(ctx.theme.status(KeyStatus::Active)),
        area,
    );
}

/// The line the revoke dialog shows for `usage` (24 h), in place of its
/// "checking…" line: "Used 1 234 times in the last 24 h, last from
/// 10.0.4.7, 2 min ago", or "No use in 30 days: safe to revoke".
pub fn revoke_line(
    dialog: &mut Confirm,
    id: &str,
    usage: &KeyUsage,
    ctx_now: chrono::DateTime<chrono::Utc>,
) {
    if !matches!(dialog.yes_then(), Some(Then::Revoke(key)) if key.id == id) {
        return;
    }
    let line = present::usage_sentence(usage, ctx_now);
    match dialog.lines.iter_mut().find(|l| l.as_str() == CHECKING) {
        Some(l) => *l = line,
        None => dialog.lines.insert(1, line),
    }
}

/// The usage could not be read: the dialog says so instead of guessing.
pub fn revoke_unknown(dialog: &mut Confirm, id: &str) {
    if !matches!(dialog.yes_then(), Some(Then::Revoke(key)) if key.id == id) {
        return;
    }
    if let Some(l) = dialog.lines.iter_mut().find(|l| l.as_str() == CHECKING) {
        *l = "Who still uses this key is not known (usage could not be read).".to_owned();
    }
}

/// What the revoke dialog says until the usage is in.
pub const CHECKING: &str = "Checking who still uses this key…";

/// The organisation's usage screen (`u`): its checks over 24 h, 7 d or 30 d
/// (`1`–`3`) as a sparkline, the totals, and the top keys by checks (`j`/`k`
/// move, `Enter` opens a key's details) and by refusals.
#[derive(Debug, Default)]
pub struct UsageScreen {
    window: usize,
    state: ScreenState,
    selected: usize,
}

#[derive(Debug, Default)]
enum ScreenState {
    #[default]
    Loading,
    Loaded(Box<crate::api::OrgUsage>),
    Failed(String),
}

impl UsageScreen {
    pub fn window(&self) -> UsageWindow {
        DETAILS_WINDOWS[self.window.min(DETAILS_WINDOWS.len() - 1)]
    }

    /// The key rows in order: the top keys by checks.
    fn rows(&self) -> &[crate::api::TopKey] {
        match &self.state {
            ScreenState::Loaded(u) => &u.top_by_checks,
            _ => &[],
        }
    }

    pub fn handle(&mut self, command: Option<crate::tui::keymap::Command>) -> Intent {
        use crate::tui::keymap::Command;
        let rows = self.rows().len();
        match command {
            Some(Command::Down) => self.selected = (self.selected + 1).min(rows.saturating_sub(1)),
            Some(Command::Up) => self.selected = self.selected.saturating_sub(1),
            Some(Command::Details) => {
                if let Some(k) = self.rows().get(self.selected) {
                    return Intent::DetailsOf(k.key_id.clone());
                }
            }
            Some(Command::UsageWindow(i)) => {
                self.window = usize::from(i).min(DETAILS_WINDOWS.len() - 1);
                self.state = ScreenState::Loading;
                self.selected = 0;
                return Intent::LoadOrgUsage(self.window());
            }
            Some(Command::Back) => return Intent::Close,
            _ => {}
        }
        Intent::Stay
    }

    pub fn loaded(
        &mut self,
        window: UsageWindow,
        result: &Result<crate::api::OrgUsage, ClientError>,
    ) {
        if window != self.window() {
            return;
        }
        self.state = match result {
            Ok(u) => ScreenState::Loaded(Box::new(u.clone())),
            Err(e) => ScreenState::Failed(e.to_string()),
        };
        self.selected = self.selected.min(self.rows().len().saturating_sub(1));
    }
}

/// The usage screen over `area` (the table's place).
pub fn draw_screen(frame: &mut Frame, ctx: &Ctx, screen: &UsageScreen, area: Rect) {
    use ratatui::layout::{Constraint, Layout};
    use ratatui::widgets::{Block, Paragraph};
    frame.render_widget(ratatui::widgets::Clear, area);
    let block = Block::bordered()
        .title(" Usage ")
        .title_bottom(crate::tui::keymap::border(
            crate::tui::keymap::Context::Usage,
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let window = screen.window();
    let windows: Vec<String> = DETAILS_WINDOWS
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if *w == window {
                format!("[{} {}]", i + 1, w.as_str())
            } else {
                format!("{} {}", i + 1, w.as_str())
            }
        })
        .collect();
    let [head, spark, rest] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(SPARK_ROWS),
        Constraint::Min(0),
    ])
    .areas(inner);
    let usage = match &screen.state {
        ScreenState::Loading => {
            frame.render_widget(
                Paragraph::new(vec![Line::from(windows.join("  ")), Line::from("loading…")]),
                head,
            );
            return;
        }
        ScreenState::Failed(e) => {
            frame.render_widget(
                Paragraph::new(vec![
                    Line::from(windows.join("  ")),
                    Line::from(format!("not available: {e}")),
                ]),
                head,
            );
            return;
        }
        ScreenState::Loaded(u) => u,
    };
    let t = &usage.totals;
    let part = |label: &str, n: u64, status: KeyStatus| {
        let style = if n == 0 {
            Style::default()
        } else {
            ctx.theme.status(status)
        };
        Span::styled(format!("{label} {}  ", present::grouped(n)), style)
    };
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled("Key checks  ", ctx.theme.title()),
                Span::raw(windows.join("  ")),
            ]),
            Line::from(vec![
                Span::raw(format!("{} checks: ", present::grouped(t.checks()))),
                part("valid", t.valid, KeyStatus::Active),
                part(
                    "insufficient scope",
                    t.insufficient_scope,
                    KeyStatus::Expired,
                ),
                part("expired", t.expired, KeyStatus::Revoked),
                part("revoked", t.revoked, KeyStatus::Revoked),
                part("rate limited", t.rate_limited, KeyStatus::Expired),
                part("unknown keys", t.unknown, KeyStatus::Expired),
            ]),
        ]),
        head,
    );
    let values: Vec<u64> = usage.buckets.iter().map(|b| b.counts.checks()).collect();
    let skip = values.len().saturating_sub(usize::from(spark.width));
    frame.render_widget(
        Sparkline::default()
            .data(&values[skip..])
            .style(ctx.theme.status(KeyStatus::Active)),
        spark,
    );
    let mut lines = vec![
        Line::default(),
        Line::styled("Most checks", ctx.theme.title()),
    ];
    if usage.top_by_checks.is_empty() {
        lines.push(Line::from("  no key was checked"));
    }
    let row = |k: &crate::api::TopKey| {
        format!(
            "{:<32} {:<18} {:>10} checks {:>8} refused",
            short(&k.name, 32),
            present::prefix(&k.prefix),
            present::grouped(k.checks),
            present::grouped(k.refused)
        )
    };
    for (i, k) in usage.top_by_checks.iter().enumerate() {
        let text = format!(
            "{} {}",
            if i == screen.selected { "›" } else { " " },
            row(k)
        );
        if i == screen.selected {
            lines.push(Line::styled(text, ctx.theme.selected()));
        } else {
            lines.push(Line::from(text));
        }
    }
    lines.push(Line::default());
    lines.push(Line::styled("Most refusals", ctx.theme.title()));
    if usage.top_by_refusals.is_empty() {
        lines.push(Line::from("  no refused checks"));
    }
    for k in &usage.top_by_refusals {
        lines.push(Line::from(format!("  {}", row(k))));
    }
    frame.render_widget(Paragraph::new(lines), rest);
}

/// `text` cut to `max` characters, with `…` when cut.
fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
