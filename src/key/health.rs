//! Best practices at a glance: each key's health badges, the summary line
//! over all keys, the Attention tab's worst-first order and the sentence
//! behind each badge — all from the organisation's policy thresholds, as of
//! one instant. Pure: no clock, no I/O. The TUI colours the badges and the
//! CLI prints them; both read the rules here.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::key::expiry::SpanUnit;
use crate::key::policy::{Policy, DEFAULT_ROTATE_AFTER_DAYS};
use crate::key::KeyStatus;

/// What the health rules read of a key: its dates, its description (the
/// policy's rules look at it), its successor, if a rotation replaced it, and
/// its id (the Attention tab's last tiebreak).
/// The API's key implements it; the domain never sees the wire type.
pub trait KeyFacts {
    fn id(&self) -> &str;
    fn description(&self) -> &str;
    fn created_at(&self) -> DateTime<Utc>;
    fn expires_at(&self) -> Option<DateTime<Utc>>;
    fn last_used_at(&self) -> Option<DateTime<Utc>>;
    fn revoked_at(&self) -> Option<DateTime<Utc>>;
    /// The key a rotation replaced this one by.
    fn replaced_by(&self) -> Option<&str>;
    /// When the key was first reported leaked, if it was.
    fn exposed_at(&self) -> Option<DateTime<Utc>> {
        None
    }
    /// Its checks of the last [`REFUSED_WINDOW_HOURS`], if most were
    /// refused ([`mostly_refused`]): the usage flusher marks the key so.
    fn refusals(&self) -> Option<&Refusals> {
        None
    }
    /// Made without a secret (the `rotate` leak policy's successor of a
    /// leaked key) and not issued one yet: nothing authenticates as it.
    fn secret_pending(&self) -> bool {
        false
    }
}

/// The span of checks the `refused` badge looks at.
pub const REFUSED_WINDOW_HOURS: i64 = 24;
/// The fewest checks in that span that can make a key `refused`: one bad
/// check of a key used little flags nothing.
pub const REFUSED_MIN_CHECKS: u64 = 10;

/// Whether `refused` of `checks` is "mostly refused": more than half, of at
/// least [`REFUSED_MIN_CHECKS`] checks.
pub fn mostly_refused(checks: u64, refused: u64) -> bool {
    checks >= REFUSED_MIN_CHECKS && refused.saturating_mul(2) > checks
}

/// A key's checks of the last [`REFUSED_WINDOW_HOURS`] while most of them
/// are refused (badge `refused`): typically a client configured with the
/// wrong key or scope. Written by the usage flusher, cleared once the
/// refusals age out or good checks outnumber them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refusals {
    /// Since when most of its checks are refused (the Attention order: longest first).
    pub since: DateTime<Utc>,
    /// Its checks in the last 24 h (as of the last flush that saw them).
    pub checks: u64,
    /// Of them, refused: `insufficient_scope`, `rate_limited`, `expired`, `revoked`.
    pub refused: u64,
    /// The most frequent refusal, e.g. `insufficient_scope`.
    pub most: String,
}

/// Why a key needs attention, worst first: the Attention tab's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Badge {
    /// Active, and reported leaked (`POST /v1/leaks` or a code host): the
    /// worst of all, first in Attention, and the only badge it shows (an
    /// exposed key's one job is to be replaced).
    Exposed,
    /// Active, and made without a secret that was never issued since (the
    /// `rotate` leak policy's successor of a leaked key): nothing can use
    /// it yet, while the leaked key it replaces winds down. Second only to
    /// `exposed`: it is the other half of the same leak, and the leaked
    /// key's clients have nowhere to move until it is issued. The only
    /// badge it shows: advice on expiry, age or use is about a key in use.
    NoSecret,
    /// Expired and not revoked. The Status column already says "Expired",
    /// so the Health column shows no word for it.
    Expired,
    /// Active and expiring within the policy's warning window.
    Expiring,
    /// Active, and most of its checks of the last 24 h were refused
    /// (at least [`REFUSED_MIN_CHECKS`]): a misconfigured client, most likely.
    Refused,
    /// Active and created longer ago than the rotation interval.
    Rotate,
    /// Active, older than the unused window and not used within it.
    Unused,
    /// Active without an expiry date.
    NoExpiry,
    /// Active, created before a policy it breaks (grandfathered).
    Policy,
    /// Active, and replaced by a rotation: it works until its grace period
    /// ends, then stops by itself. A state to know, not advice to act on,
    /// so it comes last and replaces every other badge (an old half of a
    /// rotation is not "expiring" or "due for rotation": it is done).
    Rotating,
}

impl Badge {
    pub const ALL: [Badge; 10] = [
        Badge::Exposed,
        Badge::NoSecret,
        Badge::Expired,
        Badge::Expiring,
        Badge::Refused,
        Badge::Rotate,
        Badge::Unused,
        Badge::NoExpiry,
        Badge::Policy,
        Badge::Rotating,
    ];

    /// The badge as a word.
    pub fn word(self) -> &'static str {
        match self {
            Badge::Exposed => "exposed",
            Badge::NoSecret => "no secret",
            Badge::Expired => "expired",
            Badge::Expiring => "expiring",
            Badge::Refused => "refused",
            Badge::Rotate => "rotate",
            Badge::Unused => "unused",
            Badge::NoExpiry => "no expiry",
            Badge::Policy => "policy",
            Badge::Rotating => "rotating",
        }
    }

    /// The badge as a stable id, for machines (`keys list --json`): the word
    /// in snake case.
    pub fn id(self) -> &'static str {
        match self {
            Badge::NoExpiry => "no_expiry",
            Badge::NoSecret => "no_secret",
            other => other.word(),
        }
    }

    /// Whether the Health column shows it (the Status column shows `Expired`).
    pub fn in_column(self) -> bool {
        self != Badge::Expired
    }

    /// Needs action soon (the key stops, stopped or cannot start working),
    /// rather than advice.
    pub fn urgent(self) -> bool {
        matches!(
            self,
            Badge::Exposed | Badge::NoSecret | Badge::Expired | Badge::Expiring
        )
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// The badges of one key: a small set, cheap to compute for every row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Badges(u16);

impl Badges {
    pub fn contains(self, badge: Badge) -> bool {
        self.0 & badge.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The badges, worst first.
    pub fn iter(self) -> impl Iterator<Item = Badge> {
        Badge::ALL.into_iter().filter(move |b| self.contains(*b))
    }

    /// The worst badge, if any.
    pub fn worst(self) -> Option<Badge> {
        self.iter().next()
    }

    fn insert(&mut self, badge: Badge) {
        self.0 |= badge.bit();
    }
}

/// The set of badges given one by one (e.g. a listed key's `health` ids).
impl FromIterator<Badge> for Badges {
    fn from_iter<I: IntoIterator<Item = Badge>>(badges: I) -> Self {
        let mut found = Badges::default();
        for badge in badges {
            found.insert(badge);
        }
        found
    }
}

impl Badge {
    /// The badge whose [`Badge::id`] is `id`.
    pub fn from_id(id: &str) -> Option<Badge> {
        Badge::ALL.into_iter().find(|b| b.id() == id)
    }
}

fn days(n: u32) -> Duration {
    Duration::days(i64::from(n))
}

/// The badges of `key` at `now` under `policy`. Revoked keys have none.
pub fn badges(key: &impl KeyFacts, policy: &Policy, now: DateTime<Utc>) -> Badges {
    let mut found = Badges::default();
    match KeyStatus::derive(key.revoked_at(), key.expires_at(), now) {
        KeyStatus::Revoked => return found,
        KeyStatus::Expired => {
            found.insert(Badge::Expired);
            return found;
        }
        KeyStatus::Active => {}
    }
    if key.exposed_at().is_some() {
        found.insert(Badge::Exposed);
        return found;
    }
    if key.replaced_by().is_some() {
        found.insert(Badge::Rotating);
        return found;
    }
    if key.secret_pending() {
        found.insert(Badge::NoSecret);
        return found;
    }
    match key.expires_at() {
        Some(at) if at - now <= days(policy.expiring_within_days) => found.insert(Badge::Expiring),
        Some(_) => {}
        None => found.insert(Badge::NoExpiry),
    }
    if key.refusals().is_some() {
        found.insert(Badge::Refused);
    }
    let age = now - key.created_at();
    if age > days(policy.rotate_after_days) {
        found.insert(Badge::Rotate);
    }
    let unused_after = days(policy.unused_after_days);
    if age > unused_after && key.last_used_at().is_none_or(|t| now - t > unused_after) {
        found.insert(Badge::Unused);
    }
    if !policy
        .violations(key.created_at(), key.expires_at(), key.description())
        .is_empty()
    {
        found.insert(Badge::Policy);
    }
    found
}

/// The counts of the summary line, over all keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub active: usize,
    /// Active keys reported leaked (badge `exposed`).
    pub exposed: usize,
    /// Active keys whose secret was never issued (badge `no_secret`).
    pub no_secret: usize,
    pub expiring: usize,
    /// Active keys whose checks are mostly refused (badge `refused`).
    pub refused: usize,
    pub rotate: usize,
    pub unused: usize,
    pub expired: usize,
    /// Old halves of rotations, still working until their grace ends.
    pub rotating: usize,
    /// Active keys made before a policy they break (badge `policy`).
    pub policy: usize,
    /// Keys with at least one badge: the Attention tab's count.
    pub attention: usize,
    expiring_within_days: u32,
    unused_after_days: u32,
}

impl Summary {
    pub fn of<K: KeyFacts>(keys: &[K], policy: &Policy, now: DateTime<Utc>) -> Self {
        let mut s = Summary {
            expiring_within_days: policy.expiring_within_days,
            unused_after_days: policy.unused_after_days,
            ..Summary::default()
        };
        for key in keys {
            let b = badges(key, policy, now);
            if KeyStatus::derive(key.revoked_at(), key.expires_at(), now) == KeyStatus::Active {
                s.active += 1;
            }
            s.exposed += usize::from(b.contains(Badge::Exposed));
            s.no_secret += usize::from(b.contains(Badge::NoSecret));
            s.expiring += usize::from(b.contains(Badge::Expiring));
            s.refused += usize::from(b.contains(Badge::Refused));
            s.rotate += usize::from(b.contains(Badge::Rotate));
            s.unused += usize::from(b.contains(Badge::Unused));
            s.expired += usize::from(b.contains(Badge::Expired));
            s.rotating += usize::from(b.contains(Badge::Rotating));
            s.policy += usize::from(b.contains(Badge::Policy));
            s.attention += usize::from(!b.is_empty());
        }
        s
    }

    /// The line's terms in order, each with the badge whose colour it takes
    /// (`None`: the active count); terms that are zero are left out.
    /// `short`: the badges' words alone, for narrow terminals.
    pub fn terms(&self, short: bool) -> Vec<(String, Option<Badge>)> {
        [
            (self.active, "active".to_owned(), None),
            (self.exposed, "exposed".to_owned(), Some(Badge::Exposed)),
            (
                self.no_secret,
                "without a secret".to_owned(),
                Some(Badge::NoSecret),
            ),
            (
                self.expiring,
                crate::key::policy::expiring_within(self.expiring_within_days),
                Some(Badge::Expiring),
            ),
            (
                self.refused,
                "mostly refused".to_owned(),
                Some(Badge::Refused),
            ),
            (self.rotate, "rotation due".to_owned(), Some(Badge::Rotate)),
            (
                self.unused,
                format!("unused {}d+", self.unused_after_days),
                Some(Badge::Unused),
            ),
            (
                self.expired,
                "expired, not revoked".to_owned(),
                Some(Badge::Expired),
            ),
            (self.rotating, "rotating".to_owned(), Some(Badge::Rotating)),
            (self.policy, "break policy".to_owned(), Some(Badge::Policy)),
        ]
        .into_iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, what, badge)| match badge {
            Some(b) if short => (format!("{n} {}", b.word()), badge),
            _ => (format!("{n} {what}"), badge),
        })
        .collect()
    }
}

/// `12 active · 3 expiring within 7d · 2 rotation due · 4 unused 30d+ ·
/// 5 expired, not revoked · 2 break policy`; "no active keys" when every term is zero.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let terms: Vec<String> = self.terms(false).into_iter().map(|(t, _)| t).collect();
        if terms.is_empty() {
            f.write_str("no active keys")
        } else {
            f.write_str(&terms.join(" · "))
        }
    }
}

/// Where a key with `badges` stands in the Attention tab: its worst badge,
/// then the worst of that kind first (exposed longest ago, waiting for its
/// secret longest: created longest ago, expired longest ago, expiring soonest,
/// refused longest, created longest ago, unused longest, rotating: ending soonest). Rotating
/// keys come after every key that asks for action: they are listed so that
/// an admin sees what is winding down, not as work to do.
fn attention_rank(key: &impl KeyFacts, badges: Badges) -> (Option<Badge>, DateTime<Utc>) {
    let worst = badges.worst();
    let at = match worst {
        Some(Badge::Exposed) => key.exposed_at().unwrap_or(key.created_at()),
        Some(Badge::Expired | Badge::Expiring | Badge::Rotating) => {
            key.expires_at().unwrap_or(key.created_at())
        }
        Some(Badge::Unused) => key.last_used_at().unwrap_or(key.created_at()),
        Some(Badge::Refused) => key.refusals().map_or(key.created_at(), |r| r.since),
        _ => key.created_at(),
    };
    (worst, at)
}

/// Orders `rows` (indices into `keys`) worst first, as the Attention tab lists them.
pub fn sort_attention<K: KeyFacts>(
    rows: &mut [usize],
    keys: &[K],
    policy: &Policy,
    now: DateTime<Utc>,
) {
    rows.sort_by_cached_key(|&i| {
        let key = &keys[i];
        let (worst, at) = attention_rank(key, badges(key, policy, now));
        (worst, at, key.id().to_owned())
    });
}

/// The Attention tab's rows: the keys with a badge (indices into `keys`),
/// worst first. The TUI's tab and `keys list --attention` both show these.
pub fn attention<K: KeyFacts>(keys: &[K], policy: &Policy, now: DateTime<Utc>) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..keys.len())
        .filter(|&i| !badges(&keys[i], policy, now).is_empty())
        .collect();
    sort_attention(&mut rows, keys, policy, now);
    rows
}

/// "7 days", "1 day", "20 h", "45 min", "less than a minute": rounded to
/// the nearest unit as the Expires and Last Used columns round
/// (`key::expiry::nearest`), so a key expiring in 6 days 23 hours "Expires
/// in 7 days" beside its `in 7d`. Said in units up to `largest`: days for
/// ages and expiries (24 h is "1 day"; days stay days past a year, as the
/// policy counts them), hours for a grace period (a day's grace read a few
/// seconds after the rotation is "24 h", not "1439 min").
fn span(d: Duration, largest: SpanUnit) -> String {
    use crate::key::expiry::{duration, nearest};
    let Some(rounded) = nearest(d, largest) else {
        return "less than a minute".to_owned();
    };
    // At most u32::MAX days: far inside what a Duration holds.
    let seconds = rounded.seconds().and_then(|s| i64::try_from(s).ok());
    duration(
        Duration::seconds(seconds.unwrap_or_default()),
        rounded.unit..=largest,
    )
}

/// `1 234 567`: thousands grouped by a space, as the usage lines write counts.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A span said in days at most: ages and expiries.
fn days_span(d: Duration) -> String {
    span(d, SpanUnit::Day)
}

/// What to do about a `no secret` key, after the front end's way to do it
/// (`press I`, `run keydeck keys issue ID`): the secret is shown that once.
pub const ISSUE_ACTION: &str = "to issue its secret (shown once), then move the leaked key's \
     clients to it";

/// The sentence behind `badge` on `key`, for the details screen (for
/// `no secret`, without the action: [`ISSUE_ACTION`]).
pub fn reason(badge: Badge, key: &impl KeyFacts, policy: &Policy, now: DateTime<Utc>) -> String {
    let unused_after = policy.unused_after_days;
    match badge {
        Badge::Exposed => format!(
            "Reported leaked {} ago — anyone who saw it can use it: rotate or revoke it now",
            days_span(now - key.exposed_at().unwrap_or(now))
        ),
        // How to issue it is each front end's to say ([`ISSUE_ACTION`]).
        Badge::NoSecret => format!(
            "Made by the leak policy {} ago to replace a leaked key, without a secret: \
             nothing can use it yet",
            days_span(now - key.created_at())
        ),
        Badge::Expired => format!(
            "Expired {} ago and not revoked — recommended: revoke expired keys to clean up",
            days_span(now - key.expires_at().unwrap_or(now))
        ),
        Badge::Expiring => format!(
            "Expires in {} — rotate it before applications using it lose access",
            days_span(key.expires_at().unwrap_or(now) - now)
        ),
        Badge::Rotate if policy.rotate_after_days == DEFAULT_ROTATE_AFTER_DAYS => format!(
            "Created {} ago — recommended: rotate every {} days",
            days_span(now - key.created_at()),
            policy.rotate_after_days
        ),
        Badge::Rotate => format!(
            "Created {} ago — this organisation rotates keys every {} days",
            days_span(now - key.created_at()),
            policy.rotate_after_days
        ),
        Badge::Unused => match key.last_used_at() {
            Some(t) => format!(
                "Last used {} ago — policy: revoke keys unused for {unused_after} days",
                days_span(now - t)
            ),
            None => format!(
                "Never used in the {} since it was created — policy: revoke keys unused for {unused_after} days",
                days_span(now - key.created_at())
            ),
        },
        Badge::Refused => match key.refusals() {
            Some(r) => format!(
                "{} % of {} checks in 24 h refused ({}): a misconfigured client? \
                 — check the scopes and the key it sends",
                r.refused.saturating_mul(100) / r.checks.max(1),
                group(r.checks),
                r.most
            ),
            None => "Most of its checks in 24 h refused: a misconfigured client?".to_owned(),
        },
        Badge::NoExpiry => {
            "No expiry date: valid until revoked — recommended: set an expiry date".to_owned()
        }
        Badge::Rotating => match key.expires_at() {
            Some(end) if end > now => format!(
                "Replaced by a rotation; it keeps working for {} more, then stops by itself \
                 — move what uses it to the new key, or revoke it once nothing does",
                span(end - now, SpanUnit::Hour)
            ),
            _ => "Replaced by a rotation; it keeps working until it is revoked — move what \
                  uses it to the new key, then revoke it"
                .to_owned(),
        },
        // The rule and the numbers, as `policy set --dry-run` says them
        // ("lifetime 150 days > 90"), not the create form's refusal.
        Badge::Policy => format!(
            "Created before the current policy, so it keeps working, but breaks it: {} \
             — rotate it to comply",
            policy
                .reasons(key.created_at(), key.expires_at(), key.description())
                .join("; ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).unwrap()
    }

    fn ago(d: i64) -> DateTime<Utc> {
        now() - Duration::days(d)
    }

    /// The facts of a key the rules read, as a test writes them.
    struct ApiKey {
        id: String,
        description: String,
        created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        last_used_at: Option<DateTime<Utc>>,
        revoked_at: Option<DateTime<Utc>>,
        replaced_by: Option<String>,
        refusals: Option<Refusals>,
        secret_pending: bool,
    }

    impl KeyFacts for ApiKey {
        fn id(&self) -> &str {
            &self.id
        }
        fn description(&self) -> &str {
            &self.description
        }
        fn created_at(&self) -> DateTime<Utc> {
            self.created_at
        }
        fn expires_at(&self) -> Option<DateTime<Utc>> {
            self.expires_at
        }
        fn last_used_at(&self) -> Option<DateTime<Utc>> {
            self.last_used_at
        }
        fn revoked_at(&self) -> Option<DateTime<Utc>> {
            self.revoked_at
        }
        fn replaced_by(&self) -> Option<&str> {
            self.replaced_by.as_deref()
        }
        fn refusals(&self) -> Option<&Refusals> {
            self.refusals.as_ref()
        }
        fn secret_pending(&self) -> bool {
            self.secret_pending
        }
    }

    /// An active key created `age` days ago, used yesterday, expiring in 60 days.
    fn key(id: &str, age: i64) -> ApiKey {
        ApiKey {
            id: id.into(),
            description: String::new(),
            created_at: ago(age),
            expires_at: Some(ago(-60)),
            last_used_at: Some(ago(1)),
            revoked_at: None,
            replaced_by: None,
            refusals: None,
            secret_pending: false,
        }
    }

    fn words(k: &ApiKey, p: &Policy) -> Vec<&'static str> {
        badges(k, p, now()).iter().map(Badge::word).collect()
    }

    #[test]
    fn a_healthy_key_has_no_badge_and_each_rule_adds_its_own() {
        let p = Policy::default();
        assert!(badges(&key("ok", 10), &p, now()).is_empty());
        let expiring = ApiKey {
            expires_at: Some(ago(-7)),
            ..key("e", 10)
        };
        assert_eq!(words(&expiring, &p), ["expiring"]);
        let later = ApiKey {
            expires_at: Some(ago(-8)),
            ..key("e", 10)
        };
        assert!(badges(&later, &p, now()).is_empty());
        assert_eq!(words(&key("r", 91), &p), ["rotate"]);
        assert!(badges(&key("r", 90), &p, now()).is_empty());
        let unused = ApiKey {
            last_used_at: None,
            ..key("u", 31)
        };
        assert_eq!(words(&unused, &p), ["unused"]);
        let young = ApiKey {
            last_used_at: None,
            ..key("u", 29)
        };
        assert!(badges(&young, &p, now()).is_empty(), "too new to be unused");
        let stale = ApiKey {
            last_used_at: Some(ago(31)),
            ..key("u", 40)
        };
        assert_eq!(words(&stale, &p), ["unused"]);
        let forever = ApiKey {
            expires_at: None,
            ..key("f", 1)
        };
        assert_eq!(words(&forever, &p), ["no expiry"]);
        let all = ApiKey {
            expires_at: None,
            last_used_at: None,
            ..key("a", 100)
        };
        assert_eq!(words(&all, &p), ["rotate", "unused", "no expiry"]);
    }

    #[test]
    fn expired_keys_keep_their_status_and_revoked_ones_have_no_badge() {
        let p = Policy::default();
        let expired = ApiKey {
            expires_at: Some(ago(2)),
            ..key("x", 100)
        };
        let b = badges(&expired, &p, now());
        assert_eq!(b.iter().collect::<Vec<_>>(), [Badge::Expired]);
        assert!(!Badge::Expired.in_column());
        let revoked = ApiKey {
            revoked_at: Some(ago(1)),
            expires_at: None,
            ..key("v", 400)
        };
        assert!(badges(&revoked, &p, now()).is_empty());
    }

    #[test]
    fn grandfathered_keys_carry_the_policy_badge() {
        let p = Policy {
            max_lifetime_days: Some(90),
            ..Policy::default()
        };
        let long = ApiKey {
            expires_at: Some(ago(-200)),
            ..key("l", 10)
        };
        assert_eq!(words(&long, &p), ["policy"]);
        assert!(badges(&key("ok", 10), &p, now()).is_empty());
        assert_eq!(
            reason(Badge::Policy, &long, &p, now()),
            "Created before the current policy, so it keeps working, but breaks it: lifetime \
             210 days > 90 — rotate it to comply"
        );
    }

    #[test]
    fn the_summary_counts_keys_that_break_the_policy() {
        let p = Policy {
            max_lifetime_days: Some(90),
            ..Policy::default()
        };
        let long = ApiKey {
            expires_at: Some(now() + Duration::days(200)),
            ..key("long", 5)
        };
        let forever = ApiKey {
            expires_at: None,
            ..key("forever", 5)
        };
        let s = Summary::of(&[long, forever, key("ok", 5)], &p, now());
        assert_eq!(s.policy, 2);
        assert!(s.to_string().ends_with(" · 2 break policy"), "{s}");
        assert_eq!(
            s.terms(true).last().unwrap(),
            &("2 policy".to_owned(), Some(Badge::Policy))
        );
        let none = Summary::of(&[key("ok", 5)], &p, now());
        assert!(!none.to_string().contains("policy"), "{none}");
    }

    #[test]
    fn thresholds_come_from_the_policy() {
        let p = Policy {
            expiring_within_days: 30,
            rotate_after_days: 10,
            unused_after_days: 5,
            ..Policy::default()
        };
        let k = ApiKey {
            last_used_at: Some(ago(6)),
            expires_at: Some(ago(-20)),
            ..key("k", 11)
        };
        assert_eq!(words(&k, &p), ["expiring", "rotate", "unused"]);
        let s = Summary::of(&[k], &p, now());
        assert_eq!(
            s.to_string(),
            "1 active · 1 expiring within 30d · 1 rotation due · 1 unused 5d+"
        );
    }

    #[test]
    fn the_summary_counts_every_key_and_leaves_out_zero_terms() {
        let p = Policy::default();
        let keys = vec![
            key("ok", 10),
            ApiKey {
                expires_at: Some(ago(-3)),
                ..key("e", 10)
            },
            key("r1", 100),
            key("r2", 120),
            ApiKey {
                last_used_at: None,
                ..key("u", 45)
            },
            ApiKey {
                expires_at: Some(ago(1)),
                ..key("x", 20)
            },
            ApiKey {
                revoked_at: Some(ago(1)),
                ..key("v", 200)
            },
        ];
        let s = Summary::of(&keys, &p, now());
        assert_eq!(
            s.to_string(),
            "5 active · 1 expiring within 7d · 2 rotation due · 1 unused 30d+ · 1 expired, not revoked"
        );
        assert_eq!(s.attention, 5);
        let short: Vec<String> = s.terms(true).into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            short.join(" · "),
            "5 active · 1 expiring · 2 rotate · 1 unused · 1 expired"
        );
        assert_eq!(Summary::of(&keys[..1], &p, now()).to_string(), "1 active");
        assert_eq!(
            Summary::of(&keys[6..], &p, now()).to_string(),
            "no active keys"
        );
    }

    #[test]
    fn attention_lists_the_worst_first() {
        let p = Policy::default();
        let keys = vec![
            ApiKey {
                expires_at: None,
                ..key("no-expiry", 5)
            },
            ApiKey {
                last_used_at: None,
                ..key("unused", 45)
            },
            key("rotate-100", 100),
            key("rotate-120", 120),
            ApiKey {
                expires_at: Some(ago(-5)),
                ..key("expiring-5", 10)
            },
            ApiKey {
                expires_at: Some(ago(-2)),
                ..key("expiring-2", 10)
            },
            ApiKey {
                expires_at: Some(ago(1)),
                ..key("expired", 10)
            },
            key("healthy", 10),
        ];
        let rows = attention(&keys, &p, now());
        let ids: Vec<&str> = rows.iter().map(|&i| keys[i].id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "expired",
                "expiring-2",
                "expiring-5",
                "rotate-120",
                "rotate-100",
                "unused",
                "no-expiry"
            ]
        );
    }

    #[test]
    fn ids_are_stable_snake_case_words() {
        let ids: Vec<&str> = Badge::ALL.iter().map(|b| b.id()).collect();
        assert_eq!(
            ids,
            [
                "exposed",
                "no_secret",
                "expired",
                "expiring",
                "refused",
                "rotate",
                "unused",
                "no_expiry",
                "policy",
                "rotating"
            ]
        );
    }

    #[test]
    fn each_badge_has_a_sentence() {
        let p = Policy::default();
        assert_eq!(
            reason(Badge::Rotate, &key("r", 100), &p, now()),
            "Created 100 days ago — recommended: rotate every 90 days"
        );
        let expiring = ApiKey {
            expires_at: Some(ago(-3)),
            ..key("e", 10)
        };
        assert!(reason(Badge::Expiring, &expiring, &p, now()).starts_with("Expires in 3 days"));
        let expired = ApiKey {
            expires_at: Some(ago(2)),
            ..key("x", 10)
        };
        assert!(reason(Badge::Expired, &expired, &p, now()).starts_with("Expired 2 days ago"));
        let never = ApiKey {
            last_used_at: None,
            ..key("u", 45)
        };
        assert!(reason(Badge::Unused, &never, &p, now())
            .starts_with("Never used in the 45 days since it was created"));
        assert!(reason(Badge::Unused, &key("u", 45), &p, now()).starts_with("Last used 1 day ago"));
        assert!(reason(Badge::NoExpiry, &key("f", 1), &p, now()).contains("valid until revoked"));
        let custom = Policy {
            rotate_after_days: 30,
            ..p
        };
        assert!(reason(Badge::Rotate, &key("r", 31), &custom, now())
            .ends_with("this organisation rotates keys every 30 days"));
    }

    #[test]
    fn reasons_count_days_as_the_expires_column_rounds_them() {
        let p = Policy::default();
        let in_6d_23h = ApiKey {
            expires_at: Some(now() + Duration::days(6) + Duration::hours(23)),
            ..key("e", 10)
        };
        assert!(reason(Badge::Expiring, &in_6d_23h, &p, now()).starts_with("Expires in 7 days"));
        let in_20h = ApiKey {
            expires_at: Some(now() + Duration::hours(20)),
            ..key("e", 10)
        };
        assert!(reason(Badge::Expiring, &in_20h, &p, now()).starts_with("Expires in 20 h"));
        let old = ApiKey {
            created_at: now() - Duration::days(99) - Duration::hours(13),
            ..key("r", 0)
        };
        assert!(reason(Badge::Rotate, &old, &p, now()).starts_with("Created 100 days ago"));
    }

    /// The old half of a rotation: created long ago, expiring within the
    /// hour, never used — and yet only "rotating".
    fn winding_down(id: &str) -> ApiKey {
        ApiKey {
            expires_at: Some(now() + Duration::minutes(59)),
            last_used_at: None,
            replaced_by: Some("key_new".into()),
            ..key(id, 200)
        }
    }

    #[test]
    fn a_rotated_key_in_its_grace_is_rotating_and_nothing_else() {
        let p = Policy {
            max_lifetime_days: Some(90),
            ..Policy::default()
        };
        let old = winding_down("old");
        assert_eq!(words(&old, &p), ["rotating"]);
        assert!(!Badge::Rotating.urgent() && Badge::Rotating.in_column());
        assert!(reason(Badge::Rotating, &old, &p, now())
            .starts_with("Replaced by a rotation; it keeps working for 59 min more"));
        // Read moments after a day's grace began, it is a day, not 1439 min.
        let day = ApiKey {
            expires_at: Some(now() + Duration::hours(24) - Duration::seconds(5)),
            ..winding_down("day")
        };
        assert!(reason(Badge::Rotating, &day, &p, now())
            .starts_with("Replaced by a rotation; it keeps working for 24 h more"));
        // Once its grace is over it is an expired key like any other.
        let over = ApiKey {
            expires_at: Some(ago(1)),
            ..winding_down("over")
        };
        assert_eq!(words(&over, &p), ["expired"]);
        let s = Summary::of(&[old, over, key("ok", 10)], &Policy::default(), now());
        assert_eq!(
            s.to_string(),
            "2 active · 1 expired, not revoked · 1 rotating"
        );
        assert_eq!(s.attention, 2);
    }

    #[test]
    fn rotating_keys_come_after_every_key_that_asks_for_action() {
        let p = Policy::default();
        let keys = vec![
            winding_down("rotating"),
            ApiKey {
                expires_at: None,
                ..key("no-expiry", 5)
            },
            ApiKey {
                expires_at: Some(now() + Duration::hours(2)),
                ..key("expiring", 10)
            },
        ];
        let mut rows = vec![0, 1, 2];
        sort_attention(&mut rows, &keys, &p, now());
        let ids: Vec<&str> = rows.iter().map(|&i| keys[i].id.as_str()).collect();
        assert_eq!(ids, ["expiring", "no-expiry", "rotating"]);
    }

    /// A test key reported leaked at `at`.
    struct Leaked(ApiKey, DateTime<Utc>);

    impl KeyFacts for Leaked {
        fn id(&self) -> &str {
            self.0.id()
        }
        fn description(&self) -> &str {
            self.0.description()
        }
        fn created_at(&self) -> DateTime<Utc> {
            self.0.created_at
        }
        fn expires_at(&self) -> Option<DateTime<Utc>> {
            self.0.expires_at
        }
        fn last_used_at(&self) -> Option<DateTime<Utc>> {
            self.0.last_used_at
        }
        fn revoked_at(&self) -> Option<DateTime<Utc>> {
            self.0.revoked_at
        }
        fn replaced_by(&self) -> Option<&str> {
            self.0.replaced_by.as_deref()
        }
        fn exposed_at(&self) -> Option<DateTime<Utc>> {
            Some(self.1)
        }
    }

    #[test]
    fn an_exposed_key_is_worst_of_all_and_shows_only_that_badge() {
        let p = Policy::default();
        // Old, unused, without expiry and replaced: still only `exposed`.
        let mut old = key("key_old", 400);
        old.expires_at = None;
        old.last_used_at = None;
        old.replaced_by = Some("key_new".into());
        let leaked = Leaked(old, ago(2));
        let b = badges(&leaked, &p, now());
        assert_eq!(b.iter().collect::<Vec<_>>(), [Badge::Exposed]);
        assert!(Badge::Exposed < Badge::Expired && Badge::Exposed.urgent());
        assert!(
            reason(Badge::Exposed, &leaked, &p, now()).starts_with("Reported leaked 2 days ago")
        );
        // Revoked: no badge; expired: expired.
        let mut revoked = key("key_r", 1);
        revoked.revoked_at = Some(ago(1));
        assert!(badges(&Leaked(revoked, ago(1)), &p, now()).is_empty());
        let mut expired = key("key_e", 10);
        expired.expires_at = Some(ago(1));
        assert_eq!(
            badges(&Leaked(expired, ago(1)), &p, now()).worst(),
            Some(Badge::Expired)
        );
        // First in Attention, before an expired key; longest exposed first.
        let mut expired = key("key_x", 10);
        expired.expires_at = Some(ago(1));
        let keys = [
            Leaked(expired, ago(1)),
            Leaked(key("key_b", 1), ago(1)),
            Leaked(key("key_a", 1), ago(3)),
        ];
        assert_eq!(attention(&keys, &p, now()), [2, 1, 0]);
        let s = Summary::of(&keys, &p, now());
        assert_eq!((s.exposed, s.attention), (2, 3));
        assert!(s.to_string().starts_with("2 active · 2 exposed"), "{s}");
    }

    /// A key whose checks of the last hours were mostly refused.
    fn refusing(id: &str, since_hours: i64, checks: u64, refused: u64) -> ApiKey {
        ApiKey {
            refusals: Some(Refusals {
                since: now() - Duration::hours(since_hours),
                checks,
                refused,
                most: "insufficient_scope".into(),
            }),
            ..key(id, 10)
        }
    }

    #[test]
    fn mostly_refused_keys_carry_the_refused_badge_with_their_numbers() {
        assert!(!mostly_refused(9, 9), "too few checks to tell");
        assert!(!mostly_refused(240, 120), "half is not most");
        assert!(mostly_refused(240, 200));
        assert!(mostly_refused(10, 6));
        let p = Policy::default();
        let k = refusing("r", 2, 240, 200);
        assert_eq!(words(&k, &p), ["refused"]);
        assert_eq!(
            reason(Badge::Refused, &k, &p, now()),
            "83 % of 240 checks in 24 h refused (insufficient_scope): a misconfigured client? \
             — check the scopes and the key it sends"
        );
        // After expiring, before rotation; the longest refused first.
        let keys = vec![
            key("rotate", 100),
            refusing("refused-1h", 1, 20, 20),
            refusing("refused-5h", 5, 1_234, 1_000),
            ApiKey {
                expires_at: Some(ago(-2)),
                ..key("expiring", 10)
            },
        ];
        let rows = attention(&keys, &p, now());
        let ids: Vec<&str> = rows.iter().map(|&i| keys[i].id.as_str()).collect();
        assert_eq!(ids, ["expiring", "refused-5h", "refused-1h", "rotate"]);
        assert!(reason(Badge::Refused, &keys[2], &p, now()).contains("of 1 234 checks"));
        let s = Summary::of(&keys, &p, now());
        assert_eq!(s.refused, 2);
        assert!(s.to_string().contains(" · 2 mostly refused · "), "{s}");
        // Revoked, exposed or rotating keys show no `refused`.
        let revoked = ApiKey {
            revoked_at: Some(ago(1)),
            ..refusing("v", 1, 20, 20)
        };
        assert!(badges(&revoked, &p, now()).is_empty());
        assert_eq!(Badge::from_id("refused"), Some(Badge::Refused));
    }

    /// The successor the `rotate` leak policy made, created `age` days ago
    /// without a secret: no expiry and never used, as such a key often is.
    fn waiting(id: &str, age: i64) -> ApiKey {
        ApiKey {
            expires_at: None,
            last_used_at: None,
            secret_pending: true,
            ..key(id, age)
        }
    }

    #[test]
    fn a_key_whose_secret_was_never_issued_shows_no_secret_alone_right_after_exposed() {
        let p = Policy {
            require_expiry: true,
            ..Policy::default()
        };
        // Old, unused, without expiry, breaking the policy: only `no secret`.
        let k = waiting("key_n", 100);
        assert_eq!(words(&k, &p), ["no secret"]);
        assert_eq!(Badge::NoSecret.id(), "no_secret");
        assert_eq!(Badge::from_id("no_secret"), Some(Badge::NoSecret));
        assert!(Badge::NoSecret.urgent() && Badge::NoSecret.in_column());
        assert!(Badge::Exposed < Badge::NoSecret && Badge::NoSecret < Badge::Expired);
        assert_eq!(
            reason(Badge::NoSecret, &waiting("key_n", 2), &p, now()),
            "Made by the leak policy 2 days ago to replace a leaked key, without a secret: \
             nothing can use it yet"
        );
        // Issued: its own badges again.
        let issued = ApiKey {
            secret_pending: false,
            ..waiting("key_n", 100)
        };
        assert_eq!(
            words(&issued, &p),
            ["rotate", "unused", "no expiry", "policy"]
        );
        // Revoked: none; expired: expired; replaced by a rotation: rotating.
        let revoked = ApiKey {
            revoked_at: Some(ago(1)),
            ..waiting("v", 3)
        };
        assert!(badges(&revoked, &p, now()).is_empty());
        let expired = ApiKey {
            expires_at: Some(ago(1)),
            ..waiting("x", 3)
        };
        assert_eq!(words(&expired, &p), ["expired"]);
        let replaced = ApiKey {
            replaced_by: Some("key_r".into()),
            expires_at: Some(ago(-1)),
            ..waiting("r", 3)
        };
        assert_eq!(words(&replaced, &p), ["rotating"]);
        // Reported leaked too: exposed wins.
        assert_eq!(
            badges(&Leaked(waiting("l", 3), ago(1)), &p, now()).worst(),
            Some(Badge::Exposed)
        );
        // Attention: before expired; the longest waiting first.
        let mut expired = key("key_e", 10);
        expired.expires_at = Some(ago(1));
        let mut forever = key("key_f", 1);
        forever.expires_at = None;
        let keys = vec![expired, waiting("key_w1", 1), forever, waiting("key_w5", 5)];
        let ids: Vec<&str> = attention(&keys, &p, now())
            .into_iter()
            .map(|i| keys[i].id.as_str())
            .collect();
        assert_eq!(ids, ["key_w5", "key_w1", "key_e", "key_f"]);
        let s = Summary::of(&keys, &p, now());
        assert_eq!((s.no_secret, s.active, s.attention), (2, 3, 4));
        assert_eq!(
            s.to_string(),
            "3 active · 2 without a secret · 1 expired, not revoked · 1 break policy"
        );
        assert_eq!(
            s.terms(true)[1],
            ("2 no secret".to_owned(), Some(Badge::NoSecret))
        );
    }
}
