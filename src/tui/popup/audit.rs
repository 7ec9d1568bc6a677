//! The audit log screen (`a`): who created, revoked and rotated which key;
//! its state, keys, answer and drawing.

use std::sync::atomic::{AtomicUsize, Ordering};

use crossterm::event::KeyEvent;
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

use super::{scrollbar, Ctx, Intent};
use crate::api::AuditEntry;
use crate::api::AuditList;
use crate::client::ClientError;
use crate::tui::keymap::{self, Command, Context};
use crate::tui::message::banner_message;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

#[derive(Default)]
pub struct AuditView {
    pub entries: Vec<AuditEntry>,
    pub loading: bool,
    pub error: Option<String>,
    /// The first entry on screen (of those the filter shows).
    pub scroll: usize,
    /// Only this key's entries ("audit of this key", from its details).
    pub key: Option<String>,
    /// What the entries are filtered by (`/`).
    query: Input,
    /// Typing into the filter line: keys edit it.
    searching: bool,
    /// The furthest the list can scroll, as of the last frame drawn.
    max_scroll: AtomicUsize,
}

impl AuditView {
    /// A view waiting for its first load.
    pub fn loading() -> Self {
        Self {
            loading: true,
            ..Self::default()
        }
    }

    /// A view of one key's entries, waiting for its first load.
    pub fn of_key(id: String) -> Self {
        Self {
            key: Some(id),
            ..Self::loading()
        }
    }

    /// Where the keys go: the filter line while typing, else the log.
    pub fn context(&self) -> Context {
        if self.searching {
            Context::Filter
        } else {
            Context::Audit
        }
    }

    pub fn on_command(&mut self, command: Option<Command>, key: KeyEvent) -> Intent {
        if self.searching {
            match command {
                Some(Command::FilterKeep) => self.searching = false,
                Some(Command::FilterClear) => {
                    self.searching = false;
                    self.query.reset();
                }
                _ => {
                    self.query.handle_event(&crossterm::event::Event::Key(key));
                    self.scroll = 0;
                }
            }
            return Intent::Stay;
        }
        let last = self.max_scroll.load(Ordering::Relaxed);
        match command {
            Some(Command::ScrollDown) => self.scroll = (self.scroll + 1).min(last),
            Some(Command::ScrollUp) => self.scroll = self.scroll.saturating_sub(1),
            Some(Command::ScrollPageDown) => self.scroll = (self.scroll + 10).min(last),
            Some(Command::ScrollPageUp) => self.scroll = self.scroll.saturating_sub(10),
            Some(Command::First) => self.scroll = 0,
            Some(Command::Last) => self.scroll = last,
            Some(Command::Filter) => self.searching = true,
            Some(Command::Reload) if !self.loading => {
                self.loading = true;
                return Intent::ReloadAudit(self.key.clone());
            }
            // Esc clears a filter before it closes the log.
            Some(Command::Back)
                if key.code == crossterm::event::KeyCode::Esc && !self.query.value().is_empty() =>
            {
                self.query.reset();
                self.scroll = 0;
            }
            Some(Command::Back) => return Intent::Close,
            _ => {}
        }
        Intent::Stay
    }

    /// The log arrived (or did not).
    pub fn loaded(&mut self, result: Result<AuditList, ClientError>, source: &str) {
        self.loading = false;
        match result {
            Ok(list) => {
                self.entries = list.data;
                self.error = None;
            }
            Err(e) => {
                self.error = Some(banner_message(
                    &e,
                    source,
                    Some((Context::Audit, Command::Reload)),
                ))
            }
        }
    }
}

/// One entry as a row: time (compact: the zone is in the title), action,
/// the key by name and prefix (or the user), who, from where, and what SSH
/// adds (`via ssh SHA256:…` when a key was changed over SSH, as the CLI's
/// `via=` says it).
fn row(ctx: &Ctx, entry: &AuditEntry) -> Line<'static> {
    let subject = crate::present::audit_subject(entry, ctx.key_by_id(&entry.api_key_id));
    let action = entry
        .action
        .strip_prefix("api_key.")
        .unwrap_or(&entry.action);
    let from = entry
        .remote_addr
        .as_deref()
        .map(|a| format!(" from {a}"))
        .unwrap_or_default();
    Line::from(vec![
        Span::styled(ctx.tz.date_time(entry.at), ctx.theme.dim()),
        Span::raw("  "),
        Span::styled(format!("{action:<8}"), ctx.theme.title()),
        Span::raw(format!(
            " {subject} by {}{}{from}{}",
            entry.actor.name,
            via(entry),
            ssh_note(entry)
        )),
    ])
}

/// ` via ssh SHA256:…`: the change came through the SSH front end, by this
/// admin key (the service records it as `via`).
fn via(entry: &AuditEntry) -> String {
    match entry.details.get("via").and_then(|v| v.as_str()) {
        Some(via) if !via.is_empty() => format!(" via {via}"),
        _ => String::new(),
    }
}

/// The zone the times are in, said once in the title: `UTC`, `+01:00`.
fn zone(ctx: &Ctx) -> String {
    let exact = ctx.tz.exact(ctx.now);
    match exact.rsplit(' ').next() {
        Some("+00:00") | None => "UTC".to_owned(),
        Some(offset) => offset.to_owned(),
    }
}

/// `line` cut to `width` columns, its last span ending in `…` when cut.
fn fit(mut line: Line<'static>, width: usize) -> Line<'static> {
    if line.width() <= width {
        return line;
    }
    let mut room = width;
    for span in &mut line.spans {
        let w = span.width();
        if w > room {
            span.content = crate::tui::view::cut::end(&span.content, room).into();
        }
        room = room.saturating_sub(w);
    }
    line
}

fn line_text(line: &Line) -> String {
    line.spans.iter().map(|s| s.content.as_ref()).collect()
}

pub fn draw(frame: &mut Frame, ctx: &Ctx, view: &AuditView, area: Rect) {
    let theme = ctx.theme;
    let needle = view.query.value().to_lowercase();
    let rows: Vec<Line> = view
        .entries
        .iter()
        .filter(|e| view.key.as_ref().is_none_or(|id| &e.api_key_id == id))
        .map(|e| row(ctx, e))
        .filter(|l| needle.is_empty() || line_text(l).to_lowercase().contains(&needle))
        .map(|l| fit(l, usize::from(area.width.saturating_sub(2))))
        .collect();
    let mut lines = Vec::new();
    if let Some(error) = &view.error {
        lines.push(Line::from(Span::styled(error.clone(), theme.error_text())));
    } else if view.loading && view.entries.is_empty() {
        lines.push(Line::from("Loading the audit log…"));
    } else if rows.is_empty() && !needle.is_empty() {
        lines.push(Line::from(format!(
            "No entry mentions “{}”.",
            view.query.value()
        )));
    } else if rows.is_empty() {
        lines.push(Line::from("Nothing has happened yet."));
    }
    let search = (view.searching || !needle.is_empty()).then(|| {
        let cursor = if view.searching { "█" } else { "" };
        Line::from(vec![
            Span::styled("/", theme.key_hint()),
            Span::raw(format!("{}{cursor}", view.query.value())),
        ])
    });
    let visible = usize::from(area.height.saturating_sub(2 + u16::from(search.is_some())));
    let max = rows.len().saturating_sub(visible);
    view.max_scroll.store(max, Ordering::Relaxed);
    let scroll = view.scroll.min(max);
    let total = rows.len();
    lines.extend(rows.into_iter().skip(scroll).take(visible));
    if let Some(search) = search {
        lines.insert(0, search);
    }
    frame.render_widget(Clear, area);
    let whose = match view.key.as_ref().and_then(|id| ctx.key_by_id(id)) {
        Some(key) => format!(" of “{}”", key.name),
        None => String::new(),
    };
    let title = format!(
        " Audit log{whose} · {} · times in {} ",
        crate::present::count(total, "entry", "entries"),
        zone(ctx)
    );
    let position = if total > 0 {
        format!(
            " {}-{} of {total} ",
            scroll + 1,
            (scroll + visible).min(total)
        )
    } else {
        String::new()
    };
    let block = Block::bordered()
        .title(title)
        .title(Line::from(position).right_aligned())
        .title_bottom(keymap::border(Context::Audit));
    frame.render_widget(Paragraph::new(lines).block(block), area);
    let track = Rect {
        y: area.y + 1 + u16::from(view.searching || !needle.is_empty()),
        height: u16::try_from(visible).unwrap_or(0),
        ..area
    };
    scrollbar(frame, track, total, scroll, visible);
}

/// What an SSH entry adds: the key used, why it was refused, how long a
/// session lasted (`· SHA256:… · command, 2.5 s`).
fn ssh_note(entry: &AuditEntry) -> String {
    if !entry.action.starts_with("ssh.") {
        return String::new();
    }
    let detail = |name: &str| entry.details.get(name);
    let mut note = String::new();
    if let Some(fingerprint) = detail("fingerprint").and_then(|f| f.as_str()) {
        note.push_str(&format!(" · {fingerprint}"));
    }
    if let Some(reason) = detail("reason").and_then(|r| r.as_str()) {
        note.push_str(&format!(" · {}", reason.replace('_', " ")));
    }
    if let (Some(kind), Some(seconds)) = (
        detail("kind").and_then(|k| k.as_str()),
        detail("duration_s").and_then(|d| d.as_f64()),
    ) {
        note.push_str(&format!(" · {kind}, {seconds} s"));
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_entries_say_which_key_why_and_how_long() {
        let entry = |action: &str, details: serde_json::Value| AuditEntry {
            id: 1,
            at: chrono::Utc::now(),
            action: action.into(),
            actor: crate::api::Actor {
                kind: "user".into(),
                id: "usr_1".into(),
                name: "ops@example.com".into(),
            },
            api_key_id: String::new(),
            remote_addr: Some("192.0.2.7".into()),
            details,
        };
        let fp = "SHA256:abc";
        assert_eq!(
            ssh_note(&entry(
                "ssh.session_ended",
                serde_json::json!({"fingerprint": fp, "kind": "ui", "duration_s": 2.5})
            )),
            " · SHA256:abc · ui, 2.5 s"
        );
        assert_eq!(
            ssh_note(&entry(
                "ssh.refused",
                serde_json::json!({"fingerprint": fp, "reason": "not_an_admin"})
            )),
            " · SHA256:abc · not an admin"
        );
        assert_eq!(
            ssh_note(&entry(
                "api_key.created",
                serde_json::json!({"fingerprint": fp})
            )),
            ""
        );
    }
}
