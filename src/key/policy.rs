//! The organisation's key policy: the rules every new key must follow and the
//! best-practice thresholds behind the health badges. One type, shared by the
//! service (enforcement), the client commands and the terminal UI.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::key::expiry::{duration, SpanUnit};

/// "Warn before expiry": a key expiring within this many days is `expiring`.
pub const DEFAULT_EXPIRING_WITHIN_DAYS: u32 = 7;
/// "Rotate keys every 90 days".
pub const DEFAULT_ROTATE_AFTER_DAYS: u32 = 90;
/// "Monitor Last Used": active keys unused this long are `unused`.
pub const DEFAULT_UNUSED_AFTER_DAYS: u32 = 30;
/// Largest number of days any policy field accepts (ten years).
pub const MAX_POLICY_DAYS: u32 = 3650;
/// How long a leaked key keeps working beside its successor when the leak
/// policy rotates it: an hour, for what uses it to move over.
pub const DEFAULT_LEAK_GRACE_SECONDS: u32 = 3600;
/// The longest leak grace a policy may set: a day, as a rotation's grace.
pub const MAX_LEAK_GRACE_SECONDS: u32 = 86_400;

/// What a leak report does to the key it names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnLeak {
    /// Revoke it at once.
    #[default]
    Revoke,
    /// Make a successor (as a rotation does) and let the leaked key work
    /// for the policy's `leak_grace_seconds`, then stop.
    Rotate,
    /// Only mark it exposed (badge `exposed`, top of Attention).
    Flag,
}

impl OnLeak {
    pub fn as_str(self) -> &'static str {
        match self {
            OnLeak::Revoke => "revoke",
            OnLeak::Rotate => "rotate",
            OnLeak::Flag => "flag",
        }
    }
}

impl std::str::FromStr for OnLeak {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "revoke" => Ok(OnLeak::Revoke),
            "rotate" => Ok(OnLeak::Rotate),
            "flag" => Ok(OnLeak::Flag),
            other => Err(format!(
                "on_leak must be revoke, rotate or flag, not {other:?}"
            )),
        }
    }
}

/// An organisation's policy. The default is no rule and the page's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Longest lifetime a new key may have, in days; `null`: no limit.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    pub max_lifetime_days: Option<u32>,
    /// New keys must have an expiry date.
    #[serde(default)]
    pub require_expiry: bool,
    /// New keys must have a description.
    #[serde(default)]
    pub require_description: bool,
    /// Badge `expiring`: active and expiring within this many days.
    #[serde(default = "default_expiring_within")]
    #[schema(minimum = 1, maximum = 3650)]
    pub expiring_within_days: u32,
    /// Badge `rotate`: active and created more than this many days ago.
    #[serde(default = "default_rotate_after")]
    #[schema(minimum = 1, maximum = 3650)]
    pub rotate_after_days: u32,
    /// Badge `unused`: active, older than this, and not used for this many days.
    #[serde(default = "default_unused_after")]
    #[schema(minimum = 1, maximum = 3650)]
    pub unused_after_days: u32,
    /// What a leak report does to the key it names (left out of the JSON
    /// while it is the default, `revoke`).
    #[serde(default, skip_serializing_if = "is_default_on_leak")]
    pub on_leak: OnLeak,
    /// With `on_leak = rotate`: seconds the leaked key keeps working beside
    /// its successor (left out of the JSON while it is the default, 3600).
    #[serde(
        default = "default_leak_grace",
        skip_serializing_if = "is_default_leak_grace"
    )]
    #[schema(minimum = 0, maximum = 86400)]
    pub leak_grace_seconds: u32,
}

fn is_default_on_leak(v: &OnLeak) -> bool {
    *v == OnLeak::default()
}
fn default_leak_grace() -> u32 {
    DEFAULT_LEAK_GRACE_SECONDS
}
fn is_default_leak_grace(v: &u32) -> bool {
    *v == DEFAULT_LEAK_GRACE_SECONDS
}

fn default_expiring_within() -> u32 {
    DEFAULT_EXPIRING_WITHIN_DAYS
}
fn default_rotate_after() -> u32 {
    DEFAULT_ROTATE_AFTER_DAYS
}
fn default_unused_after() -> u32 {
    DEFAULT_UNUSED_AFTER_DAYS
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_lifetime_days: None,
            require_expiry: false,
            require_description: false,
            expiring_within_days: DEFAULT_EXPIRING_WITHIN_DAYS,
            rotate_after_days: DEFAULT_ROTATE_AFTER_DAYS,
            unused_after_days: DEFAULT_UNUSED_AFTER_DAYS,
            on_leak: OnLeak::default(),
            leak_grace_seconds: DEFAULT_LEAK_GRACE_SECONDS,
        }
    }
}

/// One rule a key breaks, worded for the admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// No expiry date, and the policy requires one.
    NoExpiry,
    /// No expiry or a later one than the maximum lifetime allows.
    TooLong { max_days: u32 },
    /// An empty description, and the policy requires one.
    NoDescription,
}

/// `90 days`, `1 day`: a policy's number of days in words.
pub fn in_days(days: u32) -> String {
    duration(Duration::days(days.into()), SpanUnit::Day..=SpanUnit::Day)
}

/// The one wording of the warning window, `expiring within 7d`, in the words
/// of its flag (`--expiring-within`): the summary line's term and `policy
/// show`'s line. Here because the summary is built in the domain; people's
/// code reaches it as `present::expiring_within`.
pub fn expiring_within(days: u32) -> String {
    format!("expiring within {days}d")
}

/// `150 days`, `90 days 5 h`: a key's lifetime, to the nearest hour (the
/// expiry was computed a moment before the key was stored).
fn lifetime(span: Duration) -> String {
    let span = span + Duration::minutes(30);
    let hours = span.num_hours() % 24;
    let days = in_days(u32::try_from(span.num_days()).unwrap_or(u32::MAX));
    if hours == 0 {
        days
    } else {
        format!("{days} {hours} h")
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::NoExpiry => f.write_str("this organisation requires an expiry date"),
            Violation::TooLong { max_days } => write!(
                f,
                "this organisation requires an expiry of at most {}",
                in_days(*max_days)
            ),
            Violation::NoDescription => f.write_str("this organisation requires a description"),
        }
    }
}

impl Policy {
    /// A short tag that changes whenever the policy does: the CRC-32 of its
    /// JSON, in hex. A key list's first page carries the tag of the policy
    /// in force (`KeyList::policy_tag`); a client that read the policy itself
    /// compares the two to know whether what it read is still in force.
    pub fn tag(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{:08x}", crc32fast::hash(&json))
    }

    /// Whether the policy's fields are within their limits; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        match self.invalid_field() {
            Some((_, message)) => Err(message),
            None => Ok(()),
        }
    }

    /// The first field out of its limits, and the message that names it.
    pub fn invalid_field(&self) -> Option<(&'static str, String)> {
        let days = [
            ("max_lifetime_days", self.max_lifetime_days),
            ("expiring_within_days", Some(self.expiring_within_days)),
            ("rotate_after_days", Some(self.rotate_after_days)),
            ("unused_after_days", Some(self.unused_after_days)),
        ];
        for (field, value) in days {
            if let Some(v) = value {
                if !(1..=MAX_POLICY_DAYS).contains(&v) {
                    return Some((
                        field,
                        format!("{field} must be between 1 and {MAX_POLICY_DAYS} days, not {v}"),
                    ));
                }
            }
        }
        if self.leak_grace_seconds > MAX_LEAK_GRACE_SECONDS {
            return Some((
                "leak_grace_seconds",
                format!(
                    "leak_grace_seconds must be between 0 and {MAX_LEAK_GRACE_SECONDS}, not {}",
                    self.leak_grace_seconds
                ),
            ));
        }
        None
    }

    /// The rules a key created at `created_at` with this expiry and
    /// description breaks (empty: it complies).
    pub fn violations(
        &self,
        created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        description: &str,
    ) -> Vec<Violation> {
        let mut found = Vec::new();
        match (self.max_lifetime_days, expires_at) {
            (Some(max_days), None) => found.push(Violation::TooLong { max_days }),
            (Some(max_days), Some(at)) if at > created_at + Duration::days(max_days.into()) => {
                found.push(Violation::TooLong { max_days })
            }
            (None, None) if self.require_expiry => found.push(Violation::NoExpiry),
            _ => {}
        }
        if self.require_description && description.trim().is_empty() {
            found.push(Violation::NoDescription);
        }
        found
    }

    /// Why a key created at `created_at` with this expiry and description
    /// breaks the policy, each rule with its numbers: "lifetime 150 days >
    /// 90", "no expiry, but the policy requires one (at most 90 days)", "no
    /// description, but the policy requires one" (empty: it complies).
    pub fn reasons(
        &self,
        created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        description: &str,
    ) -> Vec<String> {
        self.violations(created_at, expires_at, description)
            .into_iter()
            .map(|v| match (v, expires_at) {
                (Violation::TooLong { max_days }, Some(at)) => {
                    format!("lifetime {} > {max_days}", lifetime(at - created_at))
                }
                (Violation::TooLong { max_days }, None) => format!(
                    "no expiry, but the policy requires one (at most {})",
                    in_days(max_days)
                ),
                (Violation::NoExpiry, _) => "no expiry, but the policy requires one".to_owned(),
                (Violation::NoDescription, _) => {
                    "no description, but the policy requires one".to_owned()
                }
            })
            .collect()
    }

    /// The latest expiry a key created at `now` may have, if there is a maximum.
    pub fn latest_expiry(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.max_lifetime_days
            .map(|d| now + Duration::days(d.into()))
    }

    /// `expires_at` capped to the maximum lifetime (a rotated key's new expiry).
    pub fn cap_expiry(
        &self,
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        match (expires_at, self.latest_expiry(now)) {
            (Some(at), Some(latest)) => Some(at.min(latest)),
            (None, latest) => latest,
            (at, None) => at,
        }
    }

    /// The new expiry of a key rotated at `now` that had `expires_at`: capped
    /// to the maximum lifetime; a key without an expiry, under a policy that
    /// requires one but sets no maximum, gets one rotation period
    /// (`rotate_after_days`), when it is due to be rotated again anyway.
    /// Rotation never fails for the old key's lack of an expiry.
    pub fn rotated_expiry(
        &self,
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        match self.cap_expiry(now, expires_at) {
            None if self.require_expiry => {
                Some(now + Duration::days(self.rotate_after_days.into()))
            }
            capped => capped,
        }
    }

    /// The expiry rules in a few words, e.g. "expiry required, at most 90
    /// days"; `None` when new keys may have any expiry or none.
    pub fn expiry_rule(&self) -> Option<String> {
        match (self.require_expiry, self.max_lifetime_days) {
            (_, Some(d)) => Some(format!("expiry required, at most {}", in_days(d))),
            (true, None) => Some("expiry required".to_owned()),
            (false, None) => None,
        }
    }

    /// The rules for new keys in a few words, e.g. "expiry required, at most
    /// 90 days"; `None` when there is no rule.
    pub fn summary(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(rule) = self.expiry_rule() {
            parts.push(rule);
        }
        if self.require_description {
            parts.push("description required".to_owned());
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::days(days)
    }

    #[test]
    fn the_default_has_no_rule_and_the_pages_thresholds() {
        let p = Policy::default();
        assert!(p.violations(at(0), None, "").is_empty());
        assert_eq!(p.summary(), None);
        assert_eq!(
            (
                p.expiring_within_days,
                p.rotate_after_days,
                p.unused_after_days
            ),
            (7, 90, 30)
        );
        let parsed: Policy = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, p);
    }

    #[test]
    fn each_rule_names_itself() {
        let p = Policy {
            max_lifetime_days: Some(90),
            require_expiry: true,
            require_description: true,
            ..Policy::default()
        };
        assert_eq!(
            p.violations(at(0), None, " "),
            [
                Violation::TooLong { max_days: 90 },
                Violation::NoDescription
            ]
        );
        assert_eq!(
            p.violations(at(0), Some(at(91)), "x")[0].to_string(),
            "this organisation requires an expiry of at most 90 days"
        );
        assert!(p.violations(at(0), Some(at(90)), "x").is_empty());
        let expiry_only = Policy {
            require_expiry: true,
            ..Policy::default()
        };
        assert_eq!(
            expiry_only.violations(at(0), None, ""),
            [Violation::NoExpiry]
        );
        assert_eq!(
            p.summary().as_deref(),
            Some("expiry required, at most 90 days, description required")
        );
    }

    #[test]
    fn reasons_name_the_rule_and_the_numbers() {
        let p = Policy {
            max_lifetime_days: Some(90),
            require_description: true,
            ..Policy::default()
        };
        assert_eq!(
            p.reasons(at(0), Some(at(150)), "x"),
            ["lifetime 150 days > 90"]
        );
        assert_eq!(
            p.reasons(at(0), Some(at(90) + Duration::hours(5)), "x"),
            ["lifetime 90 days 5 h > 90"]
        );
        assert_eq!(
            p.reasons(at(0), None, ""),
            [
                "no expiry, but the policy requires one (at most 90 days)",
                "no description, but the policy requires one"
            ]
        );
        assert_eq!(
            p.reasons(at(0), Some(at(150) - Duration::milliseconds(40)), "x"),
            ["lifetime 150 days > 90"],
            "to the nearest hour"
        );
        assert!(p.reasons(at(0), Some(at(1)), "x").is_empty());
        let expiry_only = Policy {
            require_expiry: true,
            ..Policy::default()
        };
        assert_eq!(
            expiry_only.reasons(at(0), None, "x"),
            ["no expiry, but the policy requires one"]
        );
    }

    #[test]
    fn rotation_caps_the_expiry() {
        let p = Policy {
            max_lifetime_days: Some(30),
            ..Policy::default()
        };
        assert_eq!(p.cap_expiry(at(0), None), Some(at(30)));
        assert_eq!(p.cap_expiry(at(0), Some(at(100))), Some(at(30)));
        assert_eq!(p.cap_expiry(at(0), Some(at(10))), Some(at(10)));
        assert_eq!(Policy::default().cap_expiry(at(0), None), None);
    }

    #[test]
    fn rotation_without_a_maximum_gives_one_rotation_period_when_expiry_is_required() {
        let p = Policy {
            require_expiry: true,
            ..Policy::default()
        };
        assert_eq!(p.rotated_expiry(at(0), None), Some(at(90)));
        assert_eq!(p.rotated_expiry(at(0), Some(at(400))), Some(at(400)));
        assert_eq!(Policy::default().rotated_expiry(at(0), None), None);
        assert_eq!(p.expiry_rule().as_deref(), Some("expiry required"));
    }

    /// The tag the service puts on a key list and the tag a client computes
    /// from the policy it read agree, and move with any field.
    #[test]
    fn the_tag_follows_the_policy_through_its_json() {
        let p = Policy {
            max_lifetime_days: Some(90),
            ..Policy::default()
        };
        let read: Policy = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(read.tag(), p.tag());
        assert_eq!(p.tag().len(), 8);
        let moved = Policy {
            rotate_after_days: 60,
            ..p
        };
        assert_ne!(moved.tag(), p.tag());
        assert_ne!(Policy::default().tag(), p.tag());
    }

    #[test]
    fn limits_are_checked() {
        let mut p = Policy::default();
        assert!(p.validate().is_ok());
        p.rotate_after_days = 0;
        assert!(p.validate().unwrap_err().contains("rotate_after_days"));
        p.rotate_after_days = 90;
        p.max_lifetime_days = Some(MAX_POLICY_DAYS + 1);
        assert!(p.validate().unwrap_err().contains("max_lifetime_days"));
    }

    #[test]
    fn the_leak_policy_is_left_out_of_the_json_while_default_and_has_limits() {
        let json = serde_json::to_value(Policy::default()).unwrap();
        assert!(json.get("on_leak").is_none(), "{json}");
        let p: Policy =
            serde_json::from_str(r#"{"on_leak":"rotate","leak_grace_seconds":600}"#).unwrap();
        assert_eq!((p.on_leak, p.leak_grace_seconds), (OnLeak::Rotate, 600));
        let json = serde_json::to_value(p).unwrap();
        assert_eq!(json["on_leak"], "rotate");
        assert_eq!(json["leak_grace_seconds"], 600);
        assert!(serde_json::from_str::<Policy>(r#"{"on_leak":"ignore"}"#).is_err());
        let p = Policy {
            leak_grace_seconds: MAX_LEAK_GRACE_SECONDS + 1,
            ..Policy::default()
        };
        assert!(p.validate().unwrap_err().contains("leak_grace_seconds"));
        assert_eq!("flag".parse::<OnLeak>(), Ok(OnLeak::Flag));
        assert!("nope".parse::<OnLeak>().is_err());
    }
}
