//! One vocabulary for people, used by both the TUI and the CLI: the symbol and
//! word of each status, counts with the right plural, relative and exact
//! times, and scope labels taken from the service's catalogue.

use chrono::{DateTime, Duration, FixedOffset, Local, NaiveTime, Utc};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::api::{ApiKey, AuditEntry, ScopeInfo};
use crate::key::health::Badge;
use crate::key::scope::FULL_ACCESS;
use crate::key::KeyStatus;

use serde::{Deserialize, Serialize};

pub use crate::key::expiry::{duration, parse_span, Span, SpanUnit};

/// The symbol shown before the status word, the same in the TUI and the CLI.
pub fn status_symbol(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "●",
        KeyStatus::Expired => "◷",
        KeyStatus::Revoked => "✕",
    }
}

/// `● Active`, `◷ Expired`, `✕ Revoked`.
pub fn status_text(status: KeyStatus) -> String {
    format!("{} {}", status_symbol(status), status.label())
}

/// `1 key`, `2 keys`, `0 keys`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `eg_live_1a2B...`, as the admin page shows prefixes.
pub fn prefix(p: &str) -> String {
    format!("{p}...")
}

/// `eg_live_1a2B…`: a prefix inside a sentence or a badge.
pub fn prefix_short(p: &str) -> String {
    format!("{p}…")
}

/// How a rotation's other key is named to people: its prefix (`eg_live_1a2B…`)
/// when it is at hand, else its id.
pub fn linked_key(id: &str, found: Option<&ApiKey>) -> String {
    found.map_or_else(|| id.to_owned(), |k| prefix_short(&k.prefix))
}

/// The key table's columns, the same in the TUI and in `keys list` (which
/// also shows the scope ids and the key id, columns of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyColumn {
    Name,
    Prefix,
    /// The scopes' short labels.
    Scopes,
    LastUsed,
    Status,
    Health,
    Created,
    Expires,
}

impl KeyColumn {
    /// Display order.
    pub const ORDER: [KeyColumn; 8] = [
        KeyColumn::Name,
        KeyColumn::Prefix,
        KeyColumn::Scopes,
        KeyColumn::LastUsed,
        KeyColumn::Status,
        KeyColumn::Health,
        KeyColumn::Created,
        KeyColumn::Expires,
    ];
    /// Which columns stay when the terminal narrows, most important first:
    /// the TUI's table and `keys list` on a terminal both drop from the end.
    pub const PRIORITY: [KeyColumn; 8] = [
        KeyColumn::Name,
        KeyColumn::Health,
        KeyColumn::Status,
        KeyColumn::Prefix,
        KeyColumn::LastUsed,
        KeyColumn::Scopes,
        KeyColumn::Expires,
        KeyColumn::Created,
    ];
}

/// A badge as the Health column says it: its word; the old half of a
/// rotation says until when and by which key (`successor`, when it is at
/// hand), `⟳ rotating until 07:47 → eg_live_6OG8…`, shortened to what fits
/// in `width` columns.
pub fn badge_text(
    badge: Badge,
    key: &ApiKey,
    successor: Option<&ApiKey>,
    tz: DisplayTz,
    now: DateTime<Utc>,
    width: usize,
) -> String {
    let (Badge::Rotating, Some(successor_id)) = (badge, key.replaced_by.as_deref()) else {
        return badge.word().to_owned();
    };
    let until = key.expires_at.map(|end| {
        if end - now <= Duration::hours(24) {
            tz.time(end)
        } else {
            tz.date_time(end)
        }
    });
    let short = match &until {
        Some(until) => format!("⟳ rotating until {until}"),
        None => "⟳ rotating".to_owned(),
    };
    let full = format!("{short} → {}", linked_key(successor_id, successor));
    [full, short, "⟳ rotating".to_owned()]
        .into_iter()
        .find(|t| t.chars().count() <= width)
        .unwrap_or_else(|| badge.word().to_owned())
}

/// Compact, for table cells: "just now", "3m ago", "5h ago", "12d ago",
/// "2y ago"; "in <1m", "in 3d" for the future.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let delta = now - t;
    let (span, future) = if delta < Duration::zero() {
        (-delta, true)
    } else {
        (delta, false)
    };
    let text = if span < Duration::minutes(1) {
        return if future {
            "in <1m".into()
        } else {
            "just now".into()
        };
    } else if span < Duration::hours(1) {
        format!("{}m", span.num_minutes())
    } else if span < Duration::days(1) {
        format!("{}h", span.num_hours())
    } else if span < Duration::days(365) {
        format!("{}d", span.num_days())
    } else {
        format!("{}y", span.num_days() / 365)
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// In words, for the CLI's lines: "just now", "3 min ago", "5 hours ago",
/// "12 days ago"; past 60 days, the local date.
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - then).num_seconds();
    let plural =
        |n: i64, unit: &str| format!("{} ago", count(n as usize, unit, &format!("{unit}s")));
    match seconds {
        ..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => plural(seconds / 3600, "hour"),
        86_400..5_184_000 => plural(seconds / 86_400, "day"),
        _ => DisplayTz::Local.date(then),
    }
}

/// Where exact times are shown: the admin's local zone, or a fixed offset (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayTz {
    Local,
    Fixed(FixedOffset),
}

impl DisplayTz {
    fn format(&self, t: DateTime<Utc>, format: &str) -> String {
        match self {
            Self::Local => t.with_timezone(&Local).format(format).to_string(),
            Self::Fixed(offset) => t.with_timezone(offset).format(format).to_string(),
        }
    }

    /// `2026-11-27 14:05:09 +01:00`.
    pub fn exact(&self, t: DateTime<Utc>) -> String {
        self.format(t, "%Y-%m-%d %H:%M:%S %:z")
    }

    /// `Sat 2027-01-30 14:05`, in the display zone.
    pub fn weekday_time(&self, t: DateTime<Utc>) -> String {
        self.format(t, "%a %Y-%m-%d %H:%M")
    }

    /// `2026-11-27 14:03`, in the display zone.
    pub fn date_time(&self, t: DateTime<Utc>) -> String {
        self.format(t, "%Y-%m-%d %H:%M")
    }

    /// `14:03`, in the display zone.
    pub fn time(&self, t: DateTime<Utc>) -> String {
        self.format(t, "%H:%M")
    }

    /// `2026-11-27`, in the display zone.
    pub fn date(&self, t: DateTime<Utc>) -> String {
        self.format(t, "%Y-%m-%d")
    }

    /// An expiry as admins enter it: a key that expires at midnight shows the
    /// last day it works (`--expires 2027-01-31` shows `2027-01-31`); any
    /// other instant shows its date and time; none shows `Never`.
    pub fn expiry(&self, at: Option<DateTime<Utc>>) -> String {
        let Some(at) = at else {
            return "Never".to_owned();
        };
        let midnight_day = match self {
            Self::Local => {
                let local = at.with_timezone(&Local);
                (local.time() == NaiveTime::MIN).then(|| local.date_naive())
            }
            Self::Fixed(offset) => {
                let local = at.with_timezone(offset);
                (local.time() == NaiveTime::MIN).then(|| local.date_naive())
            }
        };
        if let Some(day) = midnight_day.and_then(|d| d.pred_opt()) {
            return day.format("%Y-%m-%d").to_string();
        }
        self.date_time(at)
    }
}

/// Longest short scope label, in columns; longer ones end in `…`.
pub const SHORT_LABEL_MAX: usize = 20;

/// The catalogue's label for scope `id`, or the id itself when the catalogue
/// does not know it.
pub fn scope_label<'a>(id: &'a str, catalogue: &'a [ScopeInfo]) -> &'a str {
    catalogue
        .iter()
        .find(|s| s.id == id)
        .map_or(id, |s| s.label.as_str())
}

/// A label in a few columns: `Sessions (Read)` reads `Sessions:R`, `(Write)`
/// reads `:W`; what is still longer than [`SHORT_LABEL_MAX`] is cut with `…`.
pub fn short_label(label: &str) -> String {
    let short = label.replace(" (Read)", ":R").replace(" (Write)", ":W");
    if short.width() <= SHORT_LABEL_MAX {
        return short;
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in short.chars() {
        used += c.width().unwrap_or(0);
        if used > SHORT_LABEL_MAX - 1 {
            break;
        }
        cut.push(c);
    }
    cut.push('…');
    cut
}

/// A key's scopes in short labels, `Sessions:R, Resources:R`; `Full Access`
/// alone when the key has it.
pub fn scopes_short(scopes: &[String], catalogue: &[ScopeInfo]) -> String {
    if scopes.iter().any(|s| s == FULL_ACCESS) {
        return "Full Access".into();
    }
    scopes
        .iter()
        .map(|s| short_label(scope_label(s, catalogue)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A key's scopes as full labels with their ids, `Sessions (Read) (sessions:read)`,
/// one per scope; an id the catalogue does not know shows alone.
pub fn scope_labels(scopes: &[String], catalogue: &[ScopeInfo]) -> Vec<String> {
    scopes
        .iter()
        .map(|s| match catalogue.iter().find(|e| &e.id == s) {
            Some(e) => format!("{} ({})", e.label, e.id),
            None => s.clone(),
        })
        .collect()
}

/// The scope id that `input` names: the id (`sessions:read`), the label
/// (`Sessions (Read)`) or the short label (`Sessions:R`), any case. An
/// unknown name is refused with the nearest one suggested; with no catalogue
/// (a service that could not send it) the input goes on as it is, for the
/// service to judge.
pub fn scope_id(input: &str, catalogue: &[ScopeInfo]) -> Result<String, String> {
    let input = input.trim();
    if catalogue.is_empty() {
        return Ok(input.to_owned());
    }
    let wanted = input.to_lowercase();
    // The short form of full access is what `scopes_short` shows for it.
    let names = |s: &ScopeInfo| {
        let short = if s.id == FULL_ACCESS {
            "Full Access".to_owned()
        } else {
            short_label(&s.label)
        };
        [
            s.id.to_lowercase(),
            s.label.to_lowercase(),
            short.to_lowercase(),
        ]
    };
    if let Some(found) = catalogue.iter().find(|s| names(s).contains(&wanted)) {
        return Ok(found.id.clone());
    }
    let nearest = catalogue
        .iter()
        .map(|s| {
            let distance = names(s)
                .iter()
                .map(|n| strsim::levenshtein(n, &wanted))
                .min()
                .unwrap_or(usize::MAX);
            (distance, s)
        })
        .min_by_key(|(distance, _)| *distance)
        .filter(|(distance, _)| *distance <= (wanted.chars().count() / 3).max(2));
    Err(match nearest {
        Some((_, s)) => format!("unknown scope '{input}'; did you mean {}?", s.id),
        None => format!(
            "unknown scope '{input}'; the scopes are {}",
            catalogue
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The colour palettes: `theme = "light"` in the config file, or `--theme`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Palette {
    /// For dark terminal backgrounds (the default).
    #[default]
    Dark,
    /// Darker colours that read on a light background.
    Light,
    /// Bright, bold colours; badges on a coloured background; nothing dimmed.
    HighContrast,
}

// ---- Audit entries: which key an entry is about ----

/// Which key (or user) an audit entry is about, for `keydeck audit`: the
/// key's name as the TUI's audit log quotes it, and its prefix, when the key
/// is at hand (`“CI deploy” eg_live_1a2B…`), else the entry's target (a
/// user's email, or the id of a key not at hand).
pub fn audit_subject(entry: &AuditEntry, key: Option<&ApiKey>) -> String {
    match key {
        Some(key) => format!("“{}” {}", key.name, prefix_short(&key.prefix)),
        None => entry.target().to_owned(),
    }
}

// ---- Grace periods: the choices rotation offers in the TUI and the CLI ----

/// A grace period rotation offers: the span the CLI's `--grace` takes, the
/// words the TUI's rotate dialog says, and its seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraceChoice {
    pub span: &'static str,
    pub label: &'static str,
    pub seconds: u32,
}

/// The grace periods both faces offer, in order (the TUI's keys 1-3); any
/// other span up to [`GRACE_MAX_SECONDS`] is taken as well (the TUI's
/// "other" field, any `--grace` span).
pub const GRACE_CHOICES: [GraceChoice; 3] = [
    GraceChoice {
        span: "0",
        label: "now",
        seconds: 0,
    },
    GraceChoice {
        span: "1h",
        label: "after 1 hour",
        seconds: 3_600,
    },
    GraceChoice {
        span: "24h",
        label: "after 24 hours",
        seconds: 86_400,
    },
];

/// The longest grace period: 24 hours (the API's limit).
pub const GRACE_MAX_SECONDS: u32 = 86_400;

/// How a custom grace period is asked for, in both faces.
pub const GRACE_CUSTOM_HINT: &str = "any span up to 24h, like 30m or 2h";

/// A grace period in seconds: `0`, one of the choices, or any span with `s`,
/// `m`, `h` or `d` (a bare number is seconds), at most 24 hours.
pub fn parse_grace(input: &str) -> Result<u32, String> {
    let input = input.trim();
    let invalid = || {
        let shown: String = input.chars().take(20).collect();
        let spans: Vec<&str> = GRACE_CHOICES.iter().map(|c| c.span).collect();
        format!(
            "{shown:?} is not a grace period: use {}, or {GRACE_CUSTOM_HINT}",
            spans.join(", ")
        )
    };
    let span = parse_span(input, Some(SpanUnit::Second)).ok_or_else(invalid)?;
    if matches!(span.unit, SpanUnit::Week | SpanUnit::Year) {
        return Err(invalid());
    }
    match span.seconds() {
        Some(s) if s <= u64::from(GRACE_MAX_SECONDS) => Ok(s as u32),
        _ => Err(format!(
            "{:?} is too long: the grace period is at most 24h",
            input.chars().take(20).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn builtin() -> Vec<ScopeInfo> {
        crate::key::SCOPES.iter().map(Into::into).collect()
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = Utc::now();
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now - Duration::minutes(3), now), "3m ago");
        assert_eq!(relative(now - Duration::hours(5), now), "5h ago");
        assert_eq!(relative(now - Duration::days(12), now), "12d ago");
        assert_eq!(
            relative(now + Duration::days(3) + Duration::hours(1), now),
            "in 3d"
        );
    }

    #[test]
    fn relative_times_in_words() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        assert_eq!(ago(now - Duration::seconds(5), now), "just now");
        assert_eq!(ago(now + Duration::seconds(5), now), "just now");
        assert_eq!(ago(now - Duration::minutes(3), now), "3 min ago");
        assert_eq!(ago(now - Duration::hours(1), now), "1 hour ago");
        assert_eq!(ago(now - Duration::hours(5), now), "5 hours ago");
        assert_eq!(ago(now - Duration::days(12), now), "12 days ago");
        assert_eq!(
            ago(now - Duration::days(400), now),
            DisplayTz::Local.date(now - Duration::days(400))
        );
    }

    #[test]
    fn a_date_expiry_shows_the_last_day_it_works() {
        let now = Utc::now();
        let day = (Local::now() + Duration::days(400))
            .format("%Y-%m-%d")
            .to_string();
        let at = crate::key::parse_expiry(&day, now, &Local).unwrap();
        assert_eq!(DisplayTz::Local.expiry(at), day);
        assert_eq!(DisplayTz::Local.expiry(None), "Never");
        let span = now + Duration::days(30);
        assert_eq!(
            DisplayTz::Local.expiry(Some(span)),
            DisplayTz::Local.date_time(span)
        );
    }

    #[test]
    fn spans_for_people() {
        let grace = |s: i64| duration(Duration::seconds(s), SpanUnit::Second..=SpanUnit::Hour);
        assert_eq!(grace(3600), "1 h");
        assert_eq!(grace(1800), "30 min");
        assert_eq!(grace(90), "90 s");
    }

    #[test]
    fn counts_have_the_right_plural() {
        assert_eq!(count(0, "key", "keys"), "0 keys");
        assert_eq!(count(1, "key", "keys"), "1 key");
        assert_eq!(count(2, "key", "keys"), "2 keys");
    }

    #[test]
    fn every_status_has_one_symbol_and_word() {
        assert_eq!(status_text(KeyStatus::Active), "● Active");
        assert_eq!(status_text(KeyStatus::Expired), "◷ Expired");
        assert_eq!(status_text(KeyStatus::Revoked), "✕ Revoked");
    }

    #[test]
    fn a_scope_is_named_by_its_id_label_or_short_label_in_any_case() {
        let c = builtin();
        for input in [
            "sessions:read",
            "Sessions (Read)",
            "Sessions:R",
            "SESSIONS:r",
            " sessions (read) ",
        ] {
            assert_eq!(
                scope_id(input, &c).as_deref(),
                Ok("sessions:read"),
                "{input:?}"
            );
        }
        assert_eq!(scope_id("Full Access", &c).as_deref(), Ok("full_access"));
        assert_eq!(scope_id("anything", &[]).as_deref(), Ok("anything"));
    }

    #[test]
    fn a_misspelt_scope_gets_the_nearest_suggested() {
        let c = builtin();
        assert_eq!(
            scope_id("sesions:read", &c),
            Err("unknown scope 'sesions:read'; did you mean sessions:read?".into())
        );
        assert_eq!(scope_id("Sessions:W ", &c).as_deref(), Ok("sessions:write"));
        assert!(scope_id("Sesions (Writ)", &c)
            .unwrap_err()
            .ends_with("did you mean sessions:write?"));
        let far = scope_id("zzzzzzzz", &c).unwrap_err();
        assert!(
            far.contains("the scopes are") && far.contains("sessions:read"),
            "{far}"
        );
    }

    #[test]
    fn scopes_are_shortened() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let c = builtin();
        assert_eq!(
            scopes_short(&v(&["sessions:read", "full_access"]), &c),
            "Full Access"
        );
        assert_eq!(
            scopes_short(&v(&["sessions:read", "sessions:write"]), &c),
            "Sessions:R, Sessions:W"
        );
        assert_eq!(scopes_short(&v(&["audit_logs:read"]), &c), "Audit Logs:R");
        assert_eq!(scopes_short(&v(&["unknown:x"]), &c), "unknown:x");
    }

    #[test]
    fn custom_labels_come_from_the_catalogue_and_long_ones_are_cut() {
        let c = vec![
            ScopeInfo {
                id: "billing:read".into(),
                label: "Billing (Read)".into(),
                description: String::new(),
            },
            ScopeInfo {
                id: "reports:export".into(),
                label: "Quarterly financial reports export".into(),
                description: String::new(),
            },
        ];
        let ids = vec!["billing:read".to_string(), "reports:export".to_string()];
        let short = scopes_short(&ids, &c);
        assert_eq!(short, "Billing:R, Quarterly financial…");
        assert_eq!("Quarterly financial…".width(), SHORT_LABEL_MAX);
        assert_eq!(
            scope_labels(&ids, &c),
            [
                "Billing (Read) (billing:read)",
                "Quarterly financial reports export (reports:export)"
            ]
        );
    }

    #[test]
    fn exact_times_in_the_display_zone() {
        let tz = DisplayTz::Fixed(FixedOffset::east_opt(3600).unwrap());
        let t = Utc.with_ymd_and_hms(2027, 1, 30, 13, 5, 9).unwrap();
        assert_eq!(tz.exact(t), "2027-01-30 14:05:09 +01:00");
        assert_eq!(tz.weekday_time(t), "Sat 2027-01-30 14:05");
        assert_eq!(tz.date(t), "2027-01-30");
        let midnight = Utc.with_ymd_and_hms(2027, 1, 30, 23, 0, 0).unwrap();
        assert_eq!(tz.expiry(Some(midnight)), "2027-01-30");
    }
}
