//! What the client commands print: aligned tables, status words with symbol and
//! colour, local and relative times, JSON, and writes that survive a closed pipe.

use std::io::{IsTerminal, Write};

use chrono::{DateTime, Local, NaiveTime, Utc};
use serde::Serialize;

use super::CliError;
use crate::key::KeyStatus;

const RESET: &str = "\x1b[0m";

/// Colour on standard output: only on a terminal, and never with `NO_COLOR` set
/// (to anything but the empty string) or `TERM=dumb`.
pub fn stdout_colour() -> bool {
    colour_allowed(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    )
}

fn colour_allowed(
    terminal: bool,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

/// One table cell: its text, and the colour (an SGR code) to show it in.
pub struct Cell {
    pub text: String,
    pub colour: Option<&'static str>,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self { text, colour: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::from(text.to_owned())
    }
}

/// The status as a symbol and word (`● Active`), coloured green, yellow or red.
pub fn status_cell(status: KeyStatus) -> Cell {
    let (symbol, colour) = match status {
        KeyStatus::Active => ('●', "32"),
        KeyStatus::Expired => ('◐', "33"),
        KeyStatus::Revoked => ('✕', "31"),
    };
    Cell {
        text: format!("{symbol} {}", status.label()),
        colour: Some(colour),
    }
}

/// A cell as printed: with its colour when `colour` is on.
pub fn paint(cell: &Cell, colour: bool) -> String {
    match cell.colour {
        Some(sgr) if colour => format!("\x1b[{sgr}m{}{RESET}", cell.text),
        _ => cell.text.clone(),
    }
}

/// Columns separated by two spaces, each as wide as its widest cell; no
/// padding after the last column.
pub fn table(headers: &[&str], rows: &[Vec<Cell>], colour: bool) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(&cell.text));
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<(String, usize)>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, (shown, plain_width)) in cells.into_iter().enumerate() {
            text.push_str(&shown);
            if i < last {
                text.push_str(&" ".repeat(widths[i] - plain_width + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| (h.to_string(), width(h))).collect());
    for row in rows {
        line(
            row.iter()
                .map(|c| (paint(c, colour), width(&c.text)))
                .collect(),
        );
    }
    out
}

/// `text` cut to `max` characters, ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// "just now", "3 min ago", "5 hours ago", "12 days ago", then the date.
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - then).num_seconds();
    let plural = |n: i64, unit: &str| format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" });
    match seconds {
        ..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => plural(seconds / 3600, "hour"),
        86_400..5_184_000 => plural(seconds / 86_400, "day"),
        _ => date(then),
    }
}

/// The local date, `2026-11-27`.
pub fn date(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%Y-%m-%d").to_string()
}

/// The local date and time, `2026-11-27 14:03`.
pub fn date_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// An expiry as admins enter it: a key that expires at local midnight shows
/// the last day it works (`--expires 2027-01-31` shows `2027-01-31`); any other
/// instant shows its date and time.
pub fn expiry(at: Option<DateTime<Utc>>) -> String {
    let Some(at) = at else {
        return "Never".to_owned();
    };
    let local = at.with_timezone(&Local);
    if local.time() == NaiveTime::MIN {
        if let Some(day) = local.date_naive().pred_opt() {
            return day.format("%Y-%m-%d").to_string();
        }
    }
    date_time(at)
}

/// Writes `text` to standard output. A reader that went away (`| head`) is not an error.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::usage(format!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}

/// Pretty JSON on standard output.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::usage(format!("cannot encode JSON: {e}")))?;
    text.push('\n');
    print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_allowed(true, None, Some(OsStr::new("xterm"))));
        assert!(colour_allowed(true, Some(OsStr::new("")), None));
        assert!(!colour_allowed(false, None, None));
        assert!(!colour_allowed(true, Some(OsStr::new("1")), None));
        assert!(!colour_allowed(true, None, Some(OsStr::new("dumb"))));
    }

    #[test]
    fn status_has_a_word_a_symbol_and_its_colour() {
        let cases = [
            (KeyStatus::Active, "● Active", "\x1b[32m"),
            (KeyStatus::Expired, "◐ Expired", "\x1b[33m"),
            (KeyStatus::Revoked, "✕ Revoked", "\x1b[31m"),
        ];
        for (status, plain, sgr) in cases {
            let cell = status_cell(status);
            assert_eq!(paint(&cell, false), plain);
            assert_eq!(paint(&cell, true), format!("{sgr}{plain}\x1b[0m"));
        }
    }

    #[test]
    fn tables_align_on_plain_width_even_when_coloured() {
        let rows = vec![
            vec![Cell::from("a"), status_cell(KeyStatus::Active), "x".into()],
            vec![
                Cell::from("long name"),
                status_cell(KeyStatus::Revoked),
                "y".into(),
            ],
        ];
        let plain = table(&["NAME", "STATUS", "ID"], &rows, false);
        assert_eq!(
            plain,
            "NAME       STATUS     ID\n\
             a          ● Active   x\n\
             long name  ✕ Revoked  y\n"
        );
        let coloured = table(&["NAME", "STATUS", "ID"], &rows, true);
        assert_eq!(
            coloured
                .replace("\x1b[32m", "")
                .replace("\x1b[31m", "")
                .replace(RESET, ""),
            plain
        );
    }

    #[test]
    fn relative_times() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        assert_eq!(ago(now - Duration::seconds(5), now), "just now");
        assert_eq!(ago(now + Duration::seconds(5), now), "just now");
        assert_eq!(ago(now - Duration::minutes(3), now), "3 min ago");
        assert_eq!(ago(now - Duration::hours(1), now), "1 hour ago");
        assert_eq!(ago(now - Duration::hours(5), now), "5 hours ago");
        assert_eq!(ago(now - Duration::days(12), now), "12 days ago");
        assert_eq!(
            ago(now - Duration::days(400), now),
            date(now - Duration::days(400))
        );
    }

    #[test]
    fn a_date_expiry_shows_the_last_day_it_works() {
        let now = Utc::now();
        let day = (Local::now() + Duration::days(400))
            .format("%Y-%m-%d")
            .to_string();
        let at = crate::key::parse_expiry(&day, now, &Local).unwrap();
        assert_eq!(expiry(at), day);
        assert_eq!(expiry(None), "Never");
        let span = now + Duration::days(30);
        assert_eq!(expiry(Some(span)), date_time(span));
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("a very long name", 6), "a ver…");
    }
}
