//! How times, prefixes and scopes read on screen.

use chrono::{DateTime, Duration, FixedOffset, Local, Utc};

use crate::key::scope;

/// Where exact times are shown: the admin's local zone, or a fixed offset (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayTz {
    Local,
    Fixed(FixedOffset),
}

impl DisplayTz {
    /// `2026-11-27 14:05:09 +01:00`.
    pub fn exact(&self, t: DateTime<Utc>) -> String {
        const FORMAT: &str = "%Y-%m-%d %H:%M:%S %:z";
        match self {
            Self::Local => t.with_timezone(&Local).format(FORMAT).to_string(),
            Self::Fixed(offset) => t.with_timezone(offset).format(FORMAT).to_string(),
        }
    }

    /// `Sat 2027-01-30 14:05`, in the display zone.
    pub fn weekday_time(&self, t: DateTime<Utc>) -> String {
        const FORMAT: &str = "%a %Y-%m-%d %H:%M";
        match self {
            Self::Local => t.with_timezone(&Local).format(FORMAT).to_string(),
            Self::Fixed(offset) => t.with_timezone(offset).format(FORMAT).to_string(),
        }
    }

    /// `2026-11-27`, in the display zone.
    pub fn date(&self, t: DateTime<Utc>) -> String {
        match self {
            Self::Local => t.with_timezone(&Local).format("%Y-%m-%d").to_string(),
            Self::Fixed(offset) => t.with_timezone(offset).format("%Y-%m-%d").to_string(),
        }
    }
}

/// "just now", "3m ago", "5h ago", "12d ago"; "in 3d" for the future.
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

/// `eg_live_1a2B...`, as the admin page shows prefixes.
pub fn prefix(p: &str) -> String {
    format!("{p}...")
}

/// Short scope labels: `Full Access` alone when the key has it.
pub fn scopes_short(scopes: &[String]) -> String {
    if scopes.iter().any(|s| s == scope::FULL_ACCESS) {
        return "Full Access".into();
    }
    scopes
        .iter()
        .map(|s| match scope::find(s) {
            Some(entry) => entry
                .label
                .replace(" (Read)", ":R")
                .replace(" (Write)", ":W"),
            None => s.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Full scope labels, one per entry.
pub fn scope_labels(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .map(|s| scope::find(s).map_or_else(|| s.clone(), |e| format!("{} ({})", e.label, e.id)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn scopes_are_shortened() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            scopes_short(&v(&["sessions:read", "full_access"])),
            "Full Access"
        );
        assert_eq!(
            scopes_short(&v(&["sessions:read", "sessions:write"])),
            "Sessions:R, Sessions:W"
        );
        assert_eq!(scopes_short(&v(&["audit_logs:read"])), "Audit Logs:R");
    }
}
