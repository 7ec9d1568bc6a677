//! Expiry input: a date `YYYY-MM-DD` (valid through that whole local day), a
//! relative span (`7d`, `2w`, `1y`, `12h`) or nothing (never expires); and
//! spans of time said for people (`90 days`, `1 h`, `30 s`).

use std::ops::RangeInclusive;

use chrono::{DateTime, Duration, Months, NaiveDate, TimeZone, Utc};

/// The furthest ahead an expiry may lie.
pub const MAX_YEARS_AHEAD: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    /// Not a date or span we understand.
    #[error(
        "use a date like 2027-01-31, a span like 7d, 30d, 90d or 1y, or leave empty for no expiry"
    )]
    Unrecognised,
    /// Looks like a date but is not one (e.g. `2027-02-30`).
    #[error("that date does not exist")]
    ImpossibleDate,
    /// The instant is not in the future.
    #[error("the expiry must be in the future")]
    InPast,
    /// Further ahead than [`MAX_YEARS_AHEAD`].
    #[error("the expiry must be at most {MAX_YEARS_AHEAD} years ahead")]
    TooFar,
}

/// The instant a key with this expiry input stops working, or `None` for no expiry.
///
/// A date means the key works through that whole day in `tz` and expires at
/// the start of the next day.
pub fn parse_expiry<Tz: TimeZone>(
    input: &str,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Result<Option<DateTime<Utc>>, ExpiryError> {
    let input = input.trim();
    if input.is_empty() || input.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let at = if looks_like_date(input) {
        let date = NaiveDate::parse_from_str(input, "%Y-%m-%d")
            .map_err(|_| ExpiryError::ImpossibleDate)?;
        start_of_next_day(date, tz).ok_or(ExpiryError::ImpossibleDate)?
    } else {
        add_span(input, now).ok_or(ExpiryError::Unrecognised)?
    };
    check_expiry(at, now)?;
    Ok(Some(at))
}

/// Refuses an expiry that is not in the future or too far ahead.
pub fn check_expiry(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), ExpiryError> {
    if at <= now {
        return Err(ExpiryError::InPast);
    }
    let limit = now
        .checked_add_months(Months::new(12 * MAX_YEARS_AHEAD))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if at > limit + Duration::days(2) {
        return Err(ExpiryError::TooFar);
    }
    Ok(())
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn start_of_next_day<Tz: TimeZone>(date: NaiveDate, tz: &Tz) -> Option<DateTime<Utc>> {
    let midnight = date.succ_opt()?.and_hms_opt(0, 0, 0)?;
    // Midnight can fall into a DST gap in a few zones; take the first instant that exists.
    let local = tz.from_local_datetime(&midnight).earliest().or_else(|| {
        tz.from_local_datetime(&(midnight + Duration::hours(1)))
            .earliest()
    })?;
    Some(local.with_timezone(&Utc))
}

fn add_span(input: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let span = parse_span(input, None)?;
    if span.n == 0 {
        return None;
    }
    let n = i64::from(span.n);
    match span.unit {
        SpanUnit::Hour => now.checked_add_signed(Duration::hours(n)),
        SpanUnit::Day => now.checked_add_signed(Duration::days(n)),
        SpanUnit::Week => now.checked_add_signed(Duration::weeks(n)),
        SpanUnit::Year => now.checked_add_months(Months::new(span.n.checked_mul(12)?)),
        SpanUnit::Second | SpanUnit::Minute => None,
    }
}

/// A span as people type it: a whole number and a unit letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub n: u32,
    pub unit: SpanUnit,
}

/// The unit letters of a [`Span`]: `s`, `m`, `h`, `d`, `w`, `y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpanUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Year,
}

impl Span {
    /// The span in seconds; `None` for years, whose length depends on the calendar.
    pub fn seconds(self) -> Option<u64> {
        let unit: u64 = match self.unit {
            SpanUnit::Second => 1,
            SpanUnit::Minute => 60,
            SpanUnit::Hour => 3600,
            SpanUnit::Day => 86_400,
            SpanUnit::Week => 7 * 86_400,
            SpanUnit::Year => return None,
        };
        u64::from(self.n).checked_mul(unit)
    }
}

/// The one way a span of time is said for people (re-exported as
/// `present::duration`): in the largest of `units` that says it exactly,
/// after rounding it down to the smallest: `3 days`, `1 day`, `24 h`,
/// `90 min`, `30 s`; in seconds, to the millisecond (`0.5 s`). Under one of
/// the smallest unit (minutes or longer): `less than a day`. Weeks and years
/// are not used: a span is said in days at most.
pub fn duration(d: Duration, units: RangeInclusive<SpanUnit>) -> String {
    let (smallest, largest) = (
        (*units.start()).min(SpanUnit::Day),
        (*units.end()).min(SpanUnit::Day),
    );
    // Seconds are said to the millisecond; otherwise rounded down to whole units.
    let step = match smallest {
        SpanUnit::Second => 1,
        unit => unit_millis(unit),
    };
    let ms = d.num_milliseconds() / step * step;
    if ms == 0 {
        return match smallest {
            SpanUnit::Second => "0 s".to_owned(),
            SpanUnit::Minute => "less than a minute".to_owned(),
            SpanUnit::Hour => "less than an hour".to_owned(),
            _ => "less than a day".to_owned(),
        };
    }
    let said = [
        SpanUnit::Day,
        SpanUnit::Hour,
        SpanUnit::Minute,
        SpanUnit::Second,
    ]
    .into_iter()
    .filter(|u| (smallest..=largest).contains(u))
    .find(|u| ms % unit_millis(*u) == 0);
    match said {
        Some(SpanUnit::Day) if ms == unit_millis(SpanUnit::Day) => "1 day".to_owned(),
        Some(SpanUnit::Day) => format!("{} days", ms / unit_millis(SpanUnit::Day)),
        Some(SpanUnit::Hour) => format!("{} h", ms / unit_millis(SpanUnit::Hour)),
        Some(SpanUnit::Minute) => format!("{} min", ms / unit_millis(SpanUnit::Minute)),
        Some(_) if ms % 1000 == 0 => format!("{} s", ms / 1000),
        // Only seconds are said with a fraction: a larger smallest unit divides `ms`.
        _ => format!("{} s", ms as f64 / 1000.0),
    }
}

/// A span rounded to the nearest whole unit, in the unit it is read in at a
/// glance: minutes below 59 min 30 s, hours up to 24 (24 h 29 min is 24 h),
/// days below 365, then years; `largest` caps the unit (health reasons count
/// in days). Half a unit rounds up; the sign is ignored; `None` under a
/// minute. The one rounding behind the tables' relative times (`in 7d`,
/// `present::relative`) and the health reasons' spans (`Expires in 7 days`),
/// so that the two never say different numbers for the same key.
pub fn nearest(d: Duration, largest: SpanUnit) -> Option<Span> {
    let seconds = d.num_seconds().unsigned_abs();
    if seconds < 60 {
        return None;
    }
    let round = |unit: u64| (seconds + unit / 2) / unit;
    let (n, unit) = match (round(60), round(3600), round(86_400)) {
        (minutes, _, _) if minutes < 60 || largest < SpanUnit::Hour => (minutes, SpanUnit::Minute),
        (_, hours, _) if hours <= 24 || largest < SpanUnit::Day => (hours, SpanUnit::Hour),
        (_, _, days) if days < 365 || largest < SpanUnit::Year => (days, SpanUnit::Day),
        _ => (round(365 * 86_400), SpanUnit::Year),
    };
    Some(Span {
        n: u32::try_from(n).unwrap_or(u32::MAX),
        unit,
    })
}

/// A unit's length in milliseconds, up to a day.
fn unit_millis(unit: SpanUnit) -> i64 {
    match unit {
        SpanUnit::Second => 1000,
        SpanUnit::Minute => 60_000,
        SpanUnit::Hour => 3_600_000,
        _ => 86_400_000,
    }
}

/// The one parser of spans (`30s`, `30m`, `12h`, `7d`, `2w`, `1y`; the unit
/// in either case). A bare number is a span of `bare`, when given. Each caller
/// applies its own bounds and units: expiry ([`parse_expiry`]) and the grace
/// period of a rotation (`keydeck keys rotate --grace`).
pub fn parse_span(input: &str, bare: Option<SpanUnit>) -> Option<Span> {
    let last = input.chars().last()?;
    let (digits, unit) = if last.is_ascii_digit() {
        (input, bare?)
    } else {
        // Cut by the unit's UTF-8 length: a multi-byte last character must not split.
        let digits = &input[..input.len() - last.len_utf8()];
        let unit = match last.to_ascii_lowercase() {
            's' => SpanUnit::Second,
            'm' => SpanUnit::Minute,
            'h' => SpanUnit::Hour,
            'd' => SpanUnit::Day,
            'w' => SpanUnit::Week,
            'y' => SpanUnit::Year,
            _ => return None,
        };
        (digits, unit)
    };
    Some(Span {
        n: digits.parse().ok()?,
        unit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
    }

    #[test]
    fn empty_means_no_expiry() {
        assert_eq!(parse_expiry("", now(), &Utc), Ok(None));
        assert_eq!(parse_expiry("  ", now(), &Utc), Ok(None));
        assert_eq!(parse_expiry("never", now(), &Utc), Ok(None));
    }

    #[test]
    fn spans_add_to_now() {
        for (input, days) in [("7d", 7), ("30d", 30), ("60d", 60), ("90d", 90), ("2w", 14)] {
            assert_eq!(
                parse_expiry(input, now(), &Utc),
                Ok(Some(now() + Duration::days(days))),
                "{input}"
            );
        }
        assert_eq!(
            parse_expiry("1y", now(), &Utc),
            Ok(Some(Utc.with_ymd_and_hms(2027, 11, 27, 12, 0, 0).unwrap()))
        );
        assert_eq!(
            parse_expiry("12h", now(), &Utc),
            Ok(Some(now() + Duration::hours(12)))
        );
    }

    #[test]
    fn a_date_works_through_that_whole_local_day() {
        let tz = FixedOffset::east_opt(2 * 3600).unwrap();
        let at = parse_expiry("2027-01-30", now(), &tz).unwrap().unwrap();
        // Midnight starting 2027-01-31 at UTC+2 is 22:00 UTC on the 30th.
        assert_eq!(at, Utc.with_ymd_and_hms(2027, 1, 30, 22, 0, 0).unwrap());
    }

    #[test]
    fn bad_inputs_are_refused_with_their_reason() {
        assert_eq!(
            parse_expiry("abc", now(), &Utc),
            Err(ExpiryError::Unrecognised)
        );
        assert_eq!(
            parse_expiry("0d", now(), &Utc),
            Err(ExpiryError::Unrecognised)
        );
        assert_eq!(
            parse_expiry("-5d", now(), &Utc),
            Err(ExpiryError::Unrecognised)
        );
        assert_eq!(
            parse_expiry("2027-02-30", now(), &Utc),
            Err(ExpiryError::ImpossibleDate)
        );
        assert_eq!(
            parse_expiry("2020-01-01", now(), &Utc),
            Err(ExpiryError::InPast)
        );
        assert_eq!(parse_expiry("11y", now(), &Utc), Err(ExpiryError::TooFar));
        assert_eq!(
            parse_expiry("99999999999d", now(), &Utc),
            Err(ExpiryError::Unrecognised)
        );
        // A multi-byte last character once split the string and panicked.
        for input in ["7€", "𑛀", "é"] {
            assert_eq!(
                parse_expiry(input, now(), &Utc),
                Err(ExpiryError::Unrecognised)
            );
        }
    }

    #[test]
    fn spans_are_said_in_the_largest_unit_that_fits() {
        let upto_hours = SpanUnit::Second..=SpanUnit::Hour;
        assert_eq!(duration(Duration::hours(24), upto_hours.clone()), "24 h");
        assert_eq!(
            duration(Duration::minutes(90), upto_hours.clone()),
            "90 min"
        );
        assert_eq!(duration(Duration::seconds(90), upto_hours), "90 s");
        let seconds = SpanUnit::Second..=SpanUnit::Second;
        assert_eq!(duration(Duration::minutes(1), seconds.clone()), "60 s");
        assert_eq!(
            duration(Duration::milliseconds(500), seconds.clone()),
            "0.5 s"
        );
        assert_eq!(
            duration(Duration::milliseconds(1250), seconds.clone()),
            "1.25 s"
        );
        assert_eq!(duration(Duration::zero(), seconds), "0 s");
        assert_eq!(
            duration(Duration::hours(1), SpanUnit::Second..=SpanUnit::Minute),
            "60 min"
        );
        let days = SpanUnit::Day..=SpanUnit::Day;
        assert_eq!(
            duration(Duration::hours(23), days.clone()),
            "less than a day"
        );
        assert_eq!(duration(Duration::hours(47), days.clone()), "1 day");
        assert_eq!(duration(Duration::days(90), days.clone()), "90 days");
        assert_eq!(
            duration(Duration::weeks(2), SpanUnit::Day..=SpanUnit::Year),
            "14 days"
        );
    }

    #[test]
    fn nearest_rounds_half_a_unit_up_in_the_unit_read_at_a_glance() {
        let (m, h, d) = (Duration::minutes, Duration::hours, Duration::days);
        let said = |span: Duration, largest| nearest(span, largest).map(|s| (s.n, s.unit));
        assert_eq!(said(Duration::seconds(59), SpanUnit::Year), None);
        assert_eq!(
            said(m(59) + Duration::seconds(29), SpanUnit::Year),
            Some((59, SpanUnit::Minute))
        );
        assert_eq!(
            said(m(59) + Duration::seconds(30), SpanUnit::Year),
            Some((1, SpanUnit::Hour))
        );
        assert_eq!(
            said(h(24) + m(29), SpanUnit::Year),
            Some((24, SpanUnit::Hour))
        );
        assert_eq!(
            said(h(24) + m(30), SpanUnit::Year),
            Some((1, SpanUnit::Day))
        );
        // 6 days 23 hours is 7 days, as the Expires column says `in 7d`.
        assert_eq!(said(d(6) + h(23), SpanUnit::Day), Some((7, SpanUnit::Day)));
        assert_eq!(
            said(-(d(6) + h(11)), SpanUnit::Day),
            Some((6, SpanUnit::Day))
        );
        assert_eq!(said(d(400), SpanUnit::Year), Some((1, SpanUnit::Year)));
        assert_eq!(said(d(400), SpanUnit::Day), Some((400, SpanUnit::Day)));
    }

    #[test]
    fn one_span_parser_each_caller_with_its_own_units() {
        let span = |n, unit| Some(Span { n, unit });
        assert_eq!(parse_span("30m", None), span(30, SpanUnit::Minute));
        assert_eq!(parse_span("2W", None), span(2, SpanUnit::Week));
        assert_eq!(parse_span("90", None), None);
        assert_eq!(
            parse_span("90", Some(SpanUnit::Second)),
            span(90, SpanUnit::Second)
        );
        assert_eq!(parse_span("7€", None), None);
        assert_eq!(parse_span("-1h", None), None);
        assert_eq!(parse_span("", Some(SpanUnit::Second)), None);
        assert_eq!(span(2, SpanUnit::Hour).unwrap().seconds(), Some(7200));
        assert_eq!(span(1, SpanUnit::Year).unwrap().seconds(), None);
        // Expiry takes hours to years; minutes are too short to mean a key's life.
        assert_eq!(
            parse_expiry("30m", now(), &Utc),
            Err(ExpiryError::Unrecognised)
        );
    }

    #[test]
    fn today_is_still_valid_until_midnight() {
        assert!(parse_expiry("2026-11-27", now(), &Utc).unwrap().is_some());
        assert_eq!(
            parse_expiry("2026-11-26", now(), &Utc),
            Err(ExpiryError::InPast)
        );
    }
}
