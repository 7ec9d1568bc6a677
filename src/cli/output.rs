//! What the client commands print: aligned tables, status words with symbol and
//! colour, local and relative times, JSON, and writes that survive a closed pipe.
//! Text from a server reaches the terminal only through [`printable`]: a hostile
//! name cannot set the window title, clear the screen or write the clipboard.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;

use serde::Serialize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::CliError;
use crate::client::{Client, PageQuery};
use crate::key::validate::hidden_kind;
use crate::key::KeyStatus;
use crate::present;

const RESET: &str = "\x1b[0m";

/// Colour on standard output: only on a terminal, and never with `NO_COLOR` set
/// (to anything but the empty string) or `TERM=dumb`; over SSH, the client's
/// terminal and environment say (`ssh -t HOST keys list`).
pub fn stdout_colour() -> bool {
    if let Some(terminal) = super::console::session_terminal() {
        return terminal.is_some_and(|t| t.colour);
    }
    colour_allowed(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    )
}

/// The width a table on standard output should fit: on a terminal of ours,
/// `$COLUMNS` when it is a number, else the terminal's width; over SSH, the
/// width of the client's terminal when it asked for one (`ssh -t HOST keys
/// list`). `None` elsewhere (a pipe, a file, a command over SSH without a
/// terminal): such output keeps every column, whatever its width.
pub fn stdout_width() -> Option<usize> {
    if let Some(terminal) = super::console::session_terminal() {
        return terminal.map(|t| t.width);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    columns(std::env::var("COLUMNS").ok().as_deref())
        .or_else(|| {
            crossterm::terminal::size()
                .ok()
                .map(|(w, _)| usize::from(w))
        })
        .filter(|w| *w > 0)
}

/// `$COLUMNS` as a width, when it is one.
fn columns(value: Option<&str>) -> Option<usize> {
    value?.trim().parse().ok().filter(|w| *w > 0)
}

fn colour_allowed(
    terminal: bool,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

/// `text` as it may reach a terminal: every control character (C0, DEL, C1),
/// bidirectional or invisible format character and line or paragraph separator
/// replaced by its visible escape, `\u{1b}`. Everything else is kept.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| hidden_kind(c).is_some()) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_printable(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`printable`], but newlines are kept: for messages of several lines.
pub fn printable_lines(text: &str) -> String {
    text.split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n")
}

fn push_printable(out: &mut String, c: char) {
    if hidden_kind(c).is_some() {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

/// How many terminal columns `c` takes once printable.
fn printable_width(c: char) -> usize {
    if hidden_kind(c).is_some() {
        c.escape_unicode().count()
    } else {
        c.width().unwrap_or(0)
    }
}

/// Columns `text` takes on a terminal (wide characters count two).
pub fn width(text: &str) -> usize {
    text.width()
}

/// A server-supplied string shown in quotes, `"CI/CD Pipeline"`, made printable.
pub fn quoted(text: &str) -> String {
    format!("\"{}\"", printable(text))
}

/// A key as messages name it: `"CI/CD Pipeline" (eg_live_1a2B..., key_abc)`.
pub fn key_label(key: &crate::api::ApiKey) -> String {
    format!(
        "{} ({}..., {})",
        quoted(&key.name),
        printable(&key.prefix),
        printable(&key.id)
    )
}

/// One table cell: its printable text, and the colour (an SGR code) to show it
/// in. Made from a string, the text goes through [`printable`], so a cell can
/// hold whatever a server sent.
pub struct Cell {
    text: String,
    colour: Option<&'static str>,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        let text = match printable(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(safe) => safe,
        };
        Self { text, colour: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self {
            text: printable(text).into_owned(),
            colour: None,
        }
    }
}

impl Cell {
    /// The cell shown in `sgr` (an SGR colour code) where colour is allowed.
    pub fn coloured(self, sgr: &'static str) -> Self {
        Self {
            colour: Some(sgr),
            ..self
        }
    }

    /// Columns the cell takes.
    pub fn width(&self) -> usize {
        width(&self.text)
    }
}

/// The status as a symbol and word (`● Active`, [`present::status_text`]),
/// coloured green, yellow or red.
pub fn status_cell(status: KeyStatus) -> Cell {
    let colour = match status {
        KeyStatus::Active => "32",
        KeyStatus::Expired => "33",
        KeyStatus::Revoked => "31",
    };
    Cell {
        text: present::status_text(status),
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

/// `text` made printable and cut to `max` columns, ending in `…` when cut. The
/// cut never falls inside a character or an escape.
pub fn truncate(text: &str, max: usize) -> Cell {
    let total: usize = text.chars().map(printable_width).sum();
    if total <= max {
        return Cell::from(text);
    }
    let room = max.saturating_sub(1);
    let mut cut = String::new();
    let mut used = 0;
    for c in text.chars() {
        used += printable_width(c);
        if used > room {
            break;
        }
        push_printable(&mut cut, c);
    }
    cut.push('…');
    Cell {
        text: cut,
        colour: None,
    }
}

/// Labels of [`fields`] are padded to this many columns.
const LABEL_WIDTH: usize = 12;

/// `label  value` lines, values in one column after the labels; each value is
/// printable (a status cell keeps its colour). A value of several lines (a
/// description) continues under the first, indented.
pub fn fields(rows: Vec<(&str, Cell)>, colour: bool) -> String {
    let mut out = String::new();
    for (label, cell) in rows {
        let pad = " ".repeat(LABEL_WIDTH.saturating_sub(width(label)));
        out.push_str(&format!("{label}{pad} {}\n", paint(&cell, colour)));
    }
    out
}

/// A value of several lines as [`fields`] rows: the first under `label`, the
/// rest under an empty label.
pub fn multiline<'a>(label: &'a str, text: &str) -> Vec<(&'a str, Cell)> {
    text.split('\n')
        .enumerate()
        .map(|(i, line)| (if i == 0 { label } else { "" }, Cell::from(line)))
        .collect()
}

/// Writes `text` to standard output. A reader that went away (`| head`) is not an error.
pub fn print(text: &str) -> Result<(), CliError> {
    match super::console::write_out(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::usage(format!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}

/// A new secret alone on its line, on standard output, with no copy left
/// behind in unwiped memory. Only a hostile server sends a secret that is not
/// printable as it is; it is escaped like any other server text.
pub fn print_secret(secret: &crate::key::Secret) -> Result<(), CliError> {
    let shown = printable(secret.expose());
    let mut line = zeroize::Zeroizing::new(String::with_capacity(shown.len() + 1));
    line.push_str(&shown);
    line.push('\n');
    drop(shown);
    print(&line)
}

/// Pretty JSON on standard output. It parses back to exactly what the server
/// sent; hidden characters that JSON allows raw (C1 controls, bidi and format
/// characters, separators) are written as `\uXXXX` escapes, so a terminal
/// never sees them either.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let mut text = json_text(value)?;
    text.push('\n');
    print(&text)
}

/// At most `wanted` items of a paged listing (from `query`'s page on) as one
/// JSON array, written page by page as the pages come: memory for one page,
/// whatever the number of items.
pub async fn print_json_pages<Q: PageQuery>(
    client: &Client,
    query: Q,
    wanted: usize,
) -> Result<(), CliError>
where
    Q::Item: Serialize,
{
    let mut array = JsonArray::default();
    let mut left = wanted;
    let mut failed = None;
    client
        .each_page(query, |items| {
            for item in items.iter().take(left) {
                if let Err(e) = array.push(item) {
                    failed = Some(e);
                    return ControlFlow::Break(());
                }
            }
            left = left.saturating_sub(items.len());
            if left == 0 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await?;
    match failed {
        Some(e) => Err(e),
        None => array.finish(),
    }
}

/// A JSON array written to standard output an item at a time, laid out as
/// [`print_json`] lays out the whole array: what a listing streams page by
/// page, holding one page.
#[derive(Default)]
pub struct JsonArray {
    /// Items written so far.
    written: usize,
}

impl JsonArray {
    /// Writes the next item (the array's opening bracket before the first).
    pub fn push<T: Serialize + ?Sized>(&mut self, item: &T) -> Result<(), CliError> {
        let mut out = String::new();
        self.append(&mut out, item)?;
        print(&out)
    }

    /// Writes the next items in one write: a page of a listing.
    pub fn push_page<T: Serialize>(&mut self, items: &[T]) -> Result<(), CliError> {
        let mut out = String::new();
        for item in items {
            self.append(&mut out, item)?;
        }
        if out.is_empty() {
            return Ok(());
        }
        print(&out)
    }

    /// Closes the array (`[]` when nothing was written).
    pub fn finish(self) -> Result<(), CliError> {
        print(self.closing())
    }

    /// The next item's text, laid out as [`print_json`] lays it out inside
    /// the whole array, after the bracket or comma it follows.
    fn append<T: Serialize + ?Sized>(
        &mut self,
        out: &mut String,
        item: &T,
    ) -> Result<(), CliError> {
        let text = json_text(item)?;
        out.reserve(text.len() + text.len() / 8 + 4);
        out.push_str(if self.written == 0 { "[\n" } else { ",\n" });
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("  ");
            out.push_str(line);
        }
        self.written += 1;
        Ok(())
    }

    /// What closes the array.
    fn closing(&self) -> &'static str {
        if self.written == 0 {
            "[]\n"
        } else {
            "\n]\n"
        }
    }
}

fn json_text<T: Serialize + ?Sized>(value: &T) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, SafeJson::default());
    value
        .serialize(&mut serializer)
        .map_err(|e| CliError::usage(format!("cannot encode JSON: {e}")))?;
    String::from_utf8(bytes).map_err(|e| CliError::usage(format!("cannot encode JSON: {e}")))
}

/// serde_json's pretty layout, with every hidden character escaped.
#[derive(Default)]
struct SafeJson(serde_json::ser::PrettyFormatter<'static>);

/// Forwards the layout methods to the pretty formatter.
macro_rules! pretty {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $name<W: ?Sized + Write>(&mut self, writer: &mut W $(, $arg: $ty)*) -> std::io::Result<()> {
            self.0.$name(writer $(, $arg)*)
        }
    )*};
}

impl serde_json::ser::Formatter for SafeJson {
    pretty! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        begin_object_value();
        end_object_value();
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| hidden_kind(*c).is_some()) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn array_items_written_in_pages_make_the_whole_array() {
        for n in [0, 1, 5] {
            let keys: Vec<serde_json::Value> = (0..n)
                .map(|i| serde_json::json!({"n": i, "s": ["a"]}))
                .collect();
            let mut array = JsonArray::default();
            let mut whole = String::new();
            for page in keys.chunks(2) {
                for key in page {
                    array.append(&mut whole, key).unwrap();
                }
            }
            whole.push_str(array.closing());
            assert_eq!(
                whole,
                format!("{}\n", json_text(&keys).unwrap()),
                "{n} items"
            );
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_allowed(true, None, Some(OsStr::new("xterm"))));
        assert!(colour_allowed(true, Some(OsStr::new("")), None));
        assert!(!colour_allowed(false, None, None));
        assert!(!colour_allowed(true, Some(OsStr::new("1")), None));
        assert!(!colour_allowed(true, None, Some(OsStr::new("dumb"))));
    }

    #[test]
    fn columns_is_a_positive_number_or_nothing() {
        assert_eq!(columns(Some("80")), Some(80));
        assert_eq!(columns(Some(" 132 ")), Some(132));
        for bad in [None, Some(""), Some("0"), Some("wide"), Some("-5")] {
            assert_eq!(columns(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn status_has_a_word_a_symbol_and_its_colour() {
        let cases = [
            (KeyStatus::Active, "● Active", "\x1b[32m"),
            (KeyStatus::Expired, "◷ Expired", "\x1b[33m"),
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
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("short", 10).text, "short");
        assert_eq!(truncate("a very long name", 6).text, "a ver…");
        assert_eq!(truncate("日本語の名前", 6).text, "日本…");
    }

    /// Every class of hidden character, as a server might send it.
    const HOSTILE: &[(&str, &str)] = &[
        ("\u{1b}]0;pwned\u{7}", "\\u{1b}]0;pwned\\u{7}"),
        ("\u{1b}]52;c;aGk=\u{7}", "\\u{1b}]52;c;aGk=\\u{7}"),
        ("\u{1b}[2J", "\\u{1b}[2J"),
        ("a\u{9b}31m", "a\\u{9b}31m"),
        ("del\u{7f}", "del\\u{7f}"),
        ("\u{202e}gnp.exe", "\\u{202e}gnp.exe"),
        ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
        ("zero\u{200b}width", "zero\\u{200b}width"),
        ("\u{feff}bom", "\\u{feff}bom"),
        ("soft\u{ad}hyphen", "soft\\u{ad}hyphen"),
        ("line\u{2028}sep\u{2029}", "line\\u{2028}sep\\u{2029}"),
        ("tab\there\nnewline\r", "tab\\u{9}here\\u{a}newline\\u{d}"),
    ];

    #[test]
    fn printable_escapes_every_hidden_class() {
        for (hostile, shown) in HOSTILE {
            assert_eq!(printable(hostile), *shown);
            assert!(printable(hostile)
                .chars()
                .all(|c| hidden_kind(c).is_none() && !c.is_control()));
            assert_eq!(Cell::from(*hostile).text, *shown);
            assert_eq!(Cell::from(hostile.to_string()).text, *shown);
        }
        assert!(matches!(printable("CI/CD — 日本"), Cow::Borrowed(_)));
        assert_eq!(printable_lines("one\u{1b}\ntwo"), "one\\u{1b}\ntwo");
        assert_eq!(quoted("a\u{7}"), "\"a\\u{7}\"");
    }

    #[test]
    fn columns_count_the_escapes_and_wide_characters() {
        let rows = vec![
            vec![Cell::from("\u{1b}[2J"), "x".into()],
            vec![Cell::from("日本"), "y".into()],
        ];
        assert_eq!(
            table(&["NAME", "ID"], &rows, false),
            "NAME       ID\n\
             \\u{1b}[2J  x\n\
             日本       y\n"
        );
    }

    #[test]
    fn truncation_never_splits_an_escape_or_a_character() {
        // "ab" then ESC (6 columns as \u{1b}): cut before the escape, not inside it.
        assert_eq!(truncate("ab\u{1b}cdef", 6).text, "ab…");
        assert_eq!(truncate("ab\u{1b}cdef", 9).text, "ab\\u{1b}…");
        assert_eq!(truncate("ab\u{1b}", 8).text, "ab\\u{1b}");
        // A wide character that does not fit whole is left out.
        assert_eq!(truncate("a日本語", 4).text, "a日…");
        for max in 0..12 {
            let cut = truncate("x\u{202e}日\u{9b}y", max);
            assert!(width(&cut.text) <= max.max(1), "{max}: {}", cut.text);
            assert!(!cut.text.contains('\u{202e}') && !cut.text.contains('\u{9b}'));
            let before_dots = cut.text.trim_end_matches('…');
            assert!(
                !before_dots.ends_with('\\')
                    && before_dots.matches("\\u{").count() == before_dots.matches('}').count(),
                "{max}: {before_dots}"
            );
        }
    }

    #[test]
    fn json_is_exact_and_escapes_every_hidden_character() {
        let value = serde_json::json!({
            "names": HOSTILE.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
            "tag": "flag\u{e0067}",
            "plain": "CI/CD — 日本 🚀 \"quoted\" back\\slash",
        });
        let text = json_text(&value).unwrap();
        assert!(
            text.chars().all(|c| c == '\n' || hidden_kind(c).is_none()),
            "{text:?}"
        );
        assert!(
            text.contains("\\u202e") && text.contains("\\udb40\\udc67"),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
        let plain = serde_json::json!({"a": [1, "x"], "b": {}});
        assert_eq!(
            json_text(&plain).unwrap(),
            serde_json::to_string_pretty(&plain).unwrap()
        );
    }

    #[test]
    fn fields_align_labels_and_keep_lines() {
        let mut rows = vec![("Name", Cell::from("a\u{1b}b"))];
        rows.extend(multiline("Description", "one\ntwo\u{7}"));
        assert_eq!(
            fields(rows, false),
            "Name         a\\u{1b}b\n\
             Description  one\n\
             \x20            two\\u{7}\n"
        );
    }
}
