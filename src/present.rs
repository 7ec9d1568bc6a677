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
/// `expiring within 7d`: the summary line and `policy show` say it alike.
pub use crate::key::policy::expiring_within;

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

/// How a rotation's link reads in a key's details, in the TUI and in
/// `keys show`: `eg_live_1a2B… “Name” (id)` when the key is at hand, else
/// its id alone.
pub fn linked_key_named(id: &str, found: Option<&ApiKey>) -> String {
    found.map_or_else(
        || id.to_owned(),
        |k| format!("{} “{}” ({id})", prefix_short(&k.prefix), k.name),
    )
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
/// "2y ago"; "in <1m", "in 3d" for the future. Rounded to the nearest unit,
/// so that a key made to last 30 days reads `in 30d` from its first second
/// (29d 23h 59m is `30d`). The unit is the largest the rounded span reaches:
/// minutes below 59m 30s, hours up to 24 (a day's grace reads `24h`, and so
/// does anything that rounds to it: 24h 29m), days below 365, then years.
/// Under a minute there is no number: "just now", "in <1m".
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let future = (now - t).num_seconds() < 0;
    let Some(span) = crate::key::expiry::nearest(now - t, SpanUnit::Year) else {
        return if future { "in <1m" } else { "just now" }.to_owned();
    };
    let unit = match span.unit {
        SpanUnit::Minute => "m",
        SpanUnit::Hour => "h",
        SpanUnit::Day => "d",
        _ => "y",
    };
    if future {
        format!("in {}{unit}", span.n)
    } else {
        format!("{}{unit} ago", span.n)
    }
}

/// What a revoked key shows where others show their expiry: nothing is
/// ahead of it, whatever expiry it was given.
pub const REVOKED_EXPIRY: &str = "—";

/// A key's Expires cell, the same in the TUI's table and `keys list`:
/// `in 30d`, `2d ago`, `Never`; [`REVOKED_EXPIRY`] for a revoked key.
pub fn expires_relative(key: &ApiKey, now: DateTime<Utc>) -> String {
    match key.expires_at {
        _ if is_revoked(key) => REVOKED_EXPIRY.to_owned(),
        Some(at) => relative(at, now),
        None => "Never".to_owned(),
    }
}

/// A key's Expires field, the same in the TUI's details and `keys show`:
/// `2030-02-14 09:00:00 +00:00 (in 30d)`, `Never (valid until revoked)`;
/// [`REVOKED_EXPIRY`] for a revoked key.
pub fn expires_exact(key: &ApiKey, tz: DisplayTz, now: DateTime<Utc>) -> String {
    match key.expires_at {
        _ if is_revoked(key) => REVOKED_EXPIRY.to_owned(),
        Some(at) => exact_relative(at, tz, now),
        None => "Never (valid until revoked)".to_owned(),
    }
}

/// An instant in a details field: exact in the display zone, then relative,
/// `2030-01-15 09:20:00 +00:00 (40m ago)`.
pub fn exact_relative(t: DateTime<Utc>, tz: DisplayTz, now: DateTime<Utc>) -> String {
    format!("{} ({})", tz.exact(t), relative(t, now))
}

fn is_revoked(key: &ApiKey) -> bool {
    key.revoked_at.is_some() || key.status == KeyStatus::Revoked
}

/// In words, for a sentence: "just now", "3 min ago", "5 hours ago",
/// "12 days ago"; past 60 days, the local date. Not for a column or a
/// details field: those say [`relative`], the same in the TUI and the CLI.
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

/// Where exact times are shown: the admin's local zone, or a fixed offset
/// (UTC over SSH, where the server's zone is not the admin's; tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayTz {
    Local,
    Fixed(FixedOffset),
}

impl DisplayTz {
    /// UTC: the zone of everything said over SSH, the UI and the commands
    /// alike.
    pub fn utc() -> Self {
        Self::Fixed(FixedOffset::east_opt(0).expect("UTC is an offset"))
    }

    /// An expiry as typed (`30d`, `2027-01-31`), a date read in this zone
    /// (`key::parse_expiry`).
    pub fn parse_expiry(
        &self,
        input: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, crate::key::ExpiryError> {
        match self {
            DisplayTz::Local => crate::key::parse_expiry(input, now, &Local),
            DisplayTz::Fixed(offset) => crate::key::parse_expiry(input, now, offset),
        }
    }

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

/// The one name a person reads for a scope, in the TUI's table, form and
/// details and in the CLI's tables and lines alike: its label in short
/// (`Sessions (Read)` reads `Sessions:R`), `Full Access` for full access.
/// Machines get the id (`sessions:read`): `--json`, `--scope`, the CLI's
/// SCOPES column.
pub fn scope_name_of(scope: &ScopeInfo) -> String {
    if scope.id == FULL_ACCESS {
        "Full Access".to_owned()
    } else {
        short_label(&scope.label)
    }
}

/// [`scope_name_of`] the scope `id` in `catalogue`; an id the catalogue does
/// not know is its own name.
pub fn scope_name(id: &str, catalogue: &[ScopeInfo]) -> String {
    match catalogue.iter().find(|s| s.id == id) {
        Some(s) => scope_name_of(s),
        None if id == FULL_ACCESS => "Full Access".to_owned(),
        None => id.to_owned(),
    }
}

/// A key's scopes by name, `Sessions:R, Resources:R`; `Full Access` alone
/// when the key has it.
pub fn scopes_short(scopes: &[String], catalogue: &[ScopeInfo]) -> String {
    if scopes.iter().any(|s| s == FULL_ACCESS) {
        return "Full Access".into();
    }
    scopes
        .iter()
        .map(|s| scope_name(s, catalogue))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A key's scopes for a details screen, one per scope: the name, then the
/// full label when it says more, then the id, `Sessions:R · Sessions (Read)
/// · sessions:read`; an id the catalogue does not know shows alone.
pub fn scope_labels(scopes: &[String], catalogue: &[ScopeInfo]) -> Vec<String> {
    scopes
        .iter()
        .map(|s| match catalogue.iter().find(|e| &e.id == s) {
            Some(e) => {
                let name = scope_name_of(e);
                if name == e.label {
                    format!("{name} · {}", e.id)
                } else {
                    format!("{name} · {} · {}", e.label, e.id)
                }
            }
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
    // keydeck's own reporter scope: accepted by every catalogue, listed by none.
    if catalogue.is_empty() || input == crate::key::scope::LEAKS_REPORT {
        return Ok(input.to_owned());
    }
    let wanted = input.to_lowercase();
    // The short form of full access is what `scopes_short` shows for it.
    let names = |s: &ScopeInfo| {
        [
            s.id.to_lowercase(),
            s.label.to_lowercase(),
            scope_name_of(s).to_lowercase(),
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
    fn relative_times_round_to_the_nearest_unit() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let ahead = |d: Duration| relative(now + d, now);
        let (m, h, d) = (Duration::minutes, Duration::hours, Duration::days);
        // A key made with 30d, 90d, a 24 h grace: read a moment later.
        assert_eq!(ahead(d(30) - m(1)), "in 30d");
        assert_eq!(ahead(d(90) - Duration::seconds(5)), "in 90d");
        assert_eq!(ahead(h(24) - Duration::seconds(30)), "in 24h");
        assert_eq!(ahead(h(24)), "in 24h");
        // Half a unit rounds up, less rounds down.
        assert_eq!(ahead(d(3) + h(11) + m(59)), "in 3d");
        assert_eq!(ahead(d(3) + h(12)), "in 4d");
        assert_eq!(ahead(h(5) + m(30)), "in 6h");
        assert_eq!(ahead(m(2) + Duration::seconds(29)), "in 2m");
        assert_eq!(ahead(m(2) + Duration::seconds(30)), "in 3m");
        // At each unit's end the rounded span moves to the next unit.
        assert_eq!(ahead(Duration::seconds(59)), "in <1m");
        assert_eq!(ahead(Duration::seconds(60)), "in 1m");
        assert_eq!(ahead(m(59) + Duration::seconds(29)), "in 59m");
        assert_eq!(ahead(m(59) + Duration::seconds(30)), "in 1h");
        assert_eq!(ahead(h(24) + m(29)), "in 24h");
        assert_eq!(ahead(h(24) + m(30)), "in 1d");
        assert_eq!(ahead(d(364) + h(11)), "in 364d");
        assert_eq!(ahead(d(364) + h(12)), "in 1y");
        assert_eq!(ahead(d(547)), "in 1y");
        assert_eq!(ahead(d(548)), "in 2y");
        // The past rounds the same way.
        assert_eq!(relative(now - d(59) - h(13), now), "60d ago");
        assert_eq!(relative(now - Duration::seconds(59), now), "just now");
        assert_eq!(relative(now - m(89), now), "1h ago");
        assert_eq!(relative(now - m(90), now), "2h ago");
    }

    #[test]
    fn a_revoked_key_has_no_expiry_ahead() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let tz = DisplayTz::Fixed(FixedOffset::east_opt(0).unwrap());
        let key = ApiKey {
            id: "key_abc".into(),
            name: "Old deploy key".into(),
            description: "".into(),
            prefix: "eg_live_1a2B".into(),
            scopes: vec!["sessions:read".into()].into(),
            status: KeyStatus::Active,
            created_at: now - Duration::days(2),
            created_by: "ops@example.com".into(),
            expires_at: Some(now + Duration::days(158)),
            last_used_at: None,
            revoked_at: None,
            revoked_by: None,
            replaced_by: None,
            replaces: None,
            exposure: None,
            secret_pending: false,
            refusals: None,
            health: None,
        };
        assert_eq!(expires_relative(&key, now), "in 158d");
        assert_eq!(
            expires_exact(&key, tz, now),
            "2027-05-04 12:00:00 +00:00 (in 158d)"
        );
        let revoked = ApiKey {
            revoked_at: Some(now - Duration::hours(1)),
            status: KeyStatus::Revoked,
            ..key.clone()
        };
        assert_eq!(expires_relative(&revoked, now), REVOKED_EXPIRY);
        assert_eq!(expires_exact(&revoked, tz, now), REVOKED_EXPIRY);
        let never = ApiKey {
            expires_at: None,
            ..key.clone()
        };
        assert_eq!(expires_relative(&never, now), "Never");
        assert_eq!(
            expires_exact(&never, tz, now),
            "Never (valid until revoked)"
        );
        let never_revoked = ApiKey {
            revoked_at: Some(now),
            ..never
        };
        assert_eq!(expires_relative(&never_revoked, now), REVOKED_EXPIRY);
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
    fn a_scope_has_one_name_for_people() {
        let c = builtin();
        assert_eq!(scope_name("sessions:read", &c), "Sessions:R");
        assert_eq!(scope_name("sessions:write", &c), "Sessions:W");
        assert_eq!(scope_name("full_access", &c), "Full Access");
        assert_eq!(scope_name("full_access", &[]), "Full Access");
        assert_eq!(scope_name("sessions:read", &[]), "sessions:read");
        assert_eq!(scope_name("unknown:x", &c), "unknown:x");
        // The table, the details and the CLI's input all agree on it.
        for s in &c {
            let name = scope_name_of(s);
            assert!(
                scopes_short(std::slice::from_ref(&s.id), &c) == name,
                "{name}"
            );
            assert!(
                scope_labels(std::slice::from_ref(&s.id), &c)[0].starts_with(&format!("{name} · ")),
                "{name}"
            );
            assert_eq!(scope_id(&name, &c).as_deref(), Ok(s.id.as_str()));
        }
    }

    #[test]
    fn details_give_the_name_then_what_it_does_not_say_then_the_id() {
        let c = builtin();
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            scope_labels(&v(&["sessions:read", "full_access", "unknown:x"]), &c),
            [
                "Sessions:R · Sessions (Read) · sessions:read",
                "Full Access · Full Access (grants all scopes) · full_access",
                "unknown:x"
            ]
        );
        let plain = [ScopeInfo {
            id: "export".into(),
            label: "Export".into(),
            description: String::new(),
        }];
        assert_eq!(scope_labels(&v(&["export"]), &plain), ["Export · export"]);
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
                "Billing:R · Billing (Read) · billing:read",
                "Quarterly financial… · Quarterly financial reports export · reports:export"
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

/// A count with thin groups of three: `1 234 567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `values` in at most `width` columns of block characters (`▁▂▃▄▅▆▇█`, a
/// space for none), neighbouring values added when there are more values
/// than columns.
pub fn sparkline(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let per = values.len().div_ceil(width);
    let bins: Vec<u64> = values.chunks(per).map(|c| c.iter().sum()).collect();
    let max = bins.iter().copied().max().unwrap_or(0).max(1);
    bins.iter()
        .map(|&v| match v {
            0 => ' ',
            v => BARS[((v * 8 - 1) / max).min(7) as usize],
        })
        .collect()
}

/// What the revoke dialog says about a key's use, from its 24 h usage:
/// "Used 1 234 times in the last 24 h, last from 10.0.4.7, 2 min ago", or
/// "No use in 30 days: safe to revoke". Refused checks count as uses: a
/// client still trying the key still depends on it.
pub fn usage_sentence(usage: &crate::api::KeyUsage, now: DateTime<Utc>) -> String {
    let last = usage.addresses.iter().max_by_key(|a| a.last_seen);
    let recent = last.filter(|a| now - a.last_seen <= chrono::Duration::days(30));
    let checks = usage.totals.checks();
    match (checks, recent) {
        (_, None) if checks == 0 => "No use in 30 days: safe to revoke".to_owned(),
        (0, Some(a)) => format!(
            "No use in the last 24 h; last from {}, {}",
            a.address,
            ago(a.last_seen, now)
        ),
        (n, Some(a)) => format!(
            "Used {} in the last 24 h, last from {}, {}",
            count_grouped(n),
            a.address,
            ago(a.last_seen, now)
        ),
        (n, None) => format!("Used {} in the last 24 h", count_grouped(n)),
    }
}

fn count_grouped(n: u64) -> String {
    if n == 1 {
        "once".to_owned()
    } else {
        format!("{} times", grouped(n))
    }
}

#[cfg(test)]
mod usage_words {
    use super::*;

    #[test]
    fn counts_group_and_sparklines_scale() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(1234), "1 234");
        assert_eq!(grouped(1_234_567), "1 234 567");
        assert_eq!(sparkline(&[0, 1, 2, 8], 4), " ▁▂█");
        assert_eq!(sparkline(&[1, 1, 0, 0, 4, 4], 3), "▂ █");
        assert_eq!(sparkline(&[], 3), "");
    }
}
