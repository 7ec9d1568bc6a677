//! Wire types of the HTTP API (v1), shared by the service and its clients.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::interned::{ScopeSet, SharedStr};
use crate::key::health::KeyFacts;
pub use crate::key::health::Refusals;
pub use crate::key::leak::Exposure;
use crate::key::{KeyStatus, Scope, ScopeDef, Secret};

pub mod webhooks;

/// One entry of the scope catalogue, as sent over the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScopeInfo {
    /// Machine name, e.g. `sessions:read`.
    pub id: String,
    /// What people see, e.g. `Sessions (Read)`.
    pub label: String,
    pub description: String,
}

impl From<&ScopeDef> for ScopeInfo {
    fn from(s: &ScopeDef) -> Self {
        Self {
            id: s.id.clone(),
            label: s.label.clone(),
            description: s.description.clone(),
        }
    }
}

impl From<&ScopeInfo> for ScopeDef {
    fn from(s: &ScopeInfo) -> Self {
        Self {
            id: s.id.clone(),
            label: s.label.clone(),
            description: s.description.clone(),
        }
    }
}

impl From<&Scope> for ScopeInfo {
    fn from(s: &Scope) -> Self {
        Self {
            id: s.id.to_owned(),
            label: s.label.to_owned(),
            description: s.description.to_owned(),
        }
    }
}

/// An API key as the API shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    /// Stable identifier, e.g. `key_3Xk9...`.
    pub id: String,
    pub name: String,
    /// Shared between keys with the same text (keys made from one template).
    #[schema(value_type = String)]
    pub description: SharedStr,
    /// The first characters of the secret, e.g. `eg_live_1a2B`.
    pub prefix: String,
    /// Scope ids in catalogue order.
    #[schema(value_type = Vec<String>)]
    pub scopes: ScopeSet,
    /// Derived at the time of the response.
    pub status: KeyStatus,
    pub created_at: DateTime<Utc>,
    /// Email of the admin who created it.
    #[schema(value_type = String)]
    pub created_by: SharedStr,
    pub expires_at: Option<DateTime<Utc>>,
    /// Last successful authentication (accurate to about a second).
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>)]
    pub revoked_by: Option<SharedStr>,
    /// The key a rotation replaced this one by (`key_…`), null if it was
    /// never rotated. While its grace period runs this key still works: it
    /// is "rotating", and cannot be rotated again (409 `key_already_replaced`).
    pub replaced_by: Option<String>,
    /// The key this one replaced (rotating that key made this one), null
    /// for a key created directly.
    pub replaces: Option<String>,
    /// Where and when the key was first reported leaked (`POST /v1/leaks`,
    /// GitLab's or GitHub's report); null if it never was.
    #[serde(default)]
    #[schema(value_type = Option<Exposure>)]
    pub exposure: Option<Box<Exposure>>,
    /// `true` while the key waits for its secret: the `rotate` leak policy
    /// made it without one, and no token authenticates as it until an admin
    /// issues it (`POST /v1/api-keys/{id}/secret`, once).
    #[serde(default)]
    pub secret_pending: bool,
    /// Its checks of the last 24 h while most of them are refused (badge
    /// `refused`: at least 10 checks, more than half refused); null otherwise.
    #[serde(default)]
    #[schema(value_type = Option<Refusals>)]
    pub refusals: Option<Box<Refusals>>,
    /// In lists only ([`ListedKey::health`]): the key's health badges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub health: Option<Vec<String>>,
}

/// The health rules (`key::health`) read a key through these.
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
    fn exposed_at(&self) -> Option<DateTime<Utc>> {
        self.exposure.as_ref().map(|e| e.at)
    }
    fn refusals(&self) -> Option<&Refusals> {
        self.refusals.as_deref()
    }
    fn secret_pending(&self) -> bool {
        self.secret_pending
    }
}

/// `POST /v1/api-keys` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// 1–100 characters, without control characters (C0, DEL, C1), bidirectional
    /// or other format characters (category Cf: U+202E, U+200B, U+FEFF…) or line
    /// and paragraph separators; a 400 names the character and its position.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// 0–500 characters; the same characters refused as in the name, except
    /// newline and tab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// When the key stops working (RFC 3339); must be in the future. Omit for no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// At least one scope id from `GET /v1/scopes`.
    #[schema(min_items = 1)]
    pub scopes: Vec<String>,
}

/// `POST /v1/api-keys/{id}/rotate` body (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// Seconds the old key keeps working, 0–86400; 0 (the default) revokes it now.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 86400)]
    pub grace_seconds: u32,
}

/// A newly created key and its secret, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub api_key: ApiKey,
    #[schema(value_type = String, example = "eg_live_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R9s")]
    pub secret: Secret,
}

/// `POST /v1/api-keys/{id}/rotate` answer: the new key with its secret, and the old key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotatedKey {
    pub api_key: ApiKey,
    #[schema(value_type = String)]
    pub secret: Secret,
    /// The key that was rotated, now revoked or expiring at the end of the grace period.
    pub previous: ApiKey,
}

/// A key as `GET /v1/api-keys` lists it (documentation only: the wire
/// type is [`ApiKey`] with `health` set).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The key's health badges under the organisation's policy at the time
    /// of the answer, worst first (`exposed`, `no_secret`, `expired`,
    /// `expiring`, `refused`, `rotate`, `unused`, `no_expiry`, `policy`, `rotating`);
    /// `[]` for a healthy or revoked key.
    pub health: Vec<String>,
}

/// A page of keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    #[schema(value_type = Vec<ListedKey>)]
    pub data: Vec<ApiKey>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// Pass as `before` for the page before this one; absent on the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_cursor: Option<String>,
    /// Pass as `changed_since` on a later list to get only the keys written
    /// (created, revoked, rotated, used…) since this answer was read. Taken
    /// before the page is read, so a key may come again, never be missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_cursor: Option<String>,
    /// On a first page (no `cursor`): a short tag of the organisation's
    /// policy (`GET /v1/policy`) that changes whenever the policy does, so a
    /// client re-reads the policy only then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_tag: Option<String>,
}

/// Query parameters of `GET /v1/api-keys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyListQuery {
    /// Only keys with this status (the same as `tab`; give one or the other).
    pub status: Option<KeyStatus>,
    /// `all` (default), `active`, `expired`, `revoked` or `attention` (keys
    /// with at least one health badge under the organisation's policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(max_length = 16)]
    pub tab: Option<String>,
    /// `created` (default), `name`, `last_used`, `expires`, `status`, or
    /// `attention` (worst badge first, then the worst of that kind: the
    /// default, and only with, `tab=attention`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(max_length = 16)]
    pub sort: Option<String>,
    /// `asc` or `desc`; by default each sort's natural order: `created` and
    /// `last_used` newest first (`desc`), the others `asc` (`expires`: soonest
    /// first, no expiry last; `status`: active, expired, revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(max_length = 4)]
    pub order: Option<String>,
    /// Case-insensitive text found in the name, prefix, description or a scope id (at most 100 characters).
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Page size, 1–500 (default 100); outside that range, 400.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page: the page after it.
    #[param(max_length = 1024)]
    pub cursor: Option<String>,
    /// `prev_cursor` (or any key's position, as `next_cursor` gives it) of
    /// a page: the page before it, for scrolling up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(max_length = 1024)]
    pub before: Option<String>,
    /// `end`: the last page, without reading what lies before it (`G`/`End`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(max_length = 8)]
    pub from: Option<String>,
    /// `sync_cursor` of an earlier answer: only keys written since it (keys
    /// are never deleted, so the changed ones bring a copy up to date).
    #[param(max_length = 20)]
    pub changed_since: Option<String>,
}

/// Query parameters of `GET /v1/api-keys/counts`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyCountsQuery {
    /// Count only the keys this text is found in, as `GET /v1/api-keys?q=` lists them.
    #[param(max_length = 100)]
    pub q: Option<String>,
}

/// `GET /v1/api-keys/counts`: how many keys each tab lists, and the summary line's numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyCounts {
    pub tabs: TabCounts,
    pub summary: SummaryCounts,
}

/// Keys per tab of `GET /v1/api-keys?tab=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TabCounts {
    pub all: u64,
    pub active: u64,
    pub expired: u64,
    pub revoked: u64,
    /// Keys with at least one health badge.
    pub attention: u64,
}

/// The summary line: active keys, and keys per health badge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SummaryCounts {
    pub active: u64,
    pub expiring: u64,
    pub rotate: u64,
    pub unused: u64,
    /// Expired and not revoked.
    pub expired: u64,
    pub rotating: u64,
    pub policy: u64,
    pub attention: u64,
    /// Active keys reported leaked (badge `exposed`); left out while 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exposed: u64,
    /// Active keys whose checks of the last 24 h are mostly refused (badge
    /// `refused`); left out while 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused: u64,
    /// Active keys whose secret was never issued (badge `no_secret`: the
    /// `rotate` leak policy's successors); left out while 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub no_secret: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Query parameters of `GET /v1/audit-logs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditListQuery {
    /// Page size, 1–500 (default 100); outside that range, 400.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 20)]
    pub cursor: Option<String>,
    /// Only the entries of this key (its id, `key_…`): its whole history,
    /// newest first, read from an index however long the log.
    #[param(max_length = 64)]
    pub api_key_id: Option<String>,
}

/// The scope catalogue, in display order (Full Access last).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScopeList {
    pub data: Vec<ScopeInfo>,
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Actor {
    /// `user`, `api_key`, or `operator` (someone running `keydeck admin`, named `$USER@HOST`).
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// The user's email, or the key's name.
    pub name: String,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// What happened ([`AuditAction`](crate::audit_action::AuditAction)):
    /// `api_key.created`, `api_key.revoked`, `api_key.rotated`,
    /// `policy.updated`; a change to a user by an operator: `user.added`,
    /// `user.removed`, `user.role_changed`, `user.token_reset`,
    /// `user.token_revoked`, `user.ssh_key_added`, `user.ssh_key_removed`; SSH:
    /// `ssh.logged_in`, `ssh.refused`, `ssh.session_ended`. Entries written as
    /// `policy.update` or `ssh.login` by older versions read as today's words.
    pub action: String,
    pub actor: Actor,
    /// The key the entry is about; empty for `user.*` entries, whose
    /// `details` hold `user_id` and `user_email`.
    pub api_key_id: String,
    /// The client address the request came from.
    pub remote_addr: Option<String>,
    /// Action-specific details, e.g. the new key id of a rotation.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl AuditEntry {
    /// What the entry is about: the user's email for a `user.*` entry, else the key id.
    pub fn target(&self) -> &str {
        match self.details.get("user_email").and_then(|e| e.as_str()) {
            Some(email) if self.api_key_id.is_empty() => email,
            _ => &self.api_key_id,
        }
    }
}

/// A page of audit entries, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    pub data: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// `GET /v1/auth` answer for a good key, as JSON for `Accept: application/json` only
/// (by default the answer is its `X-Key-Id`, `X-Key-Scopes` and `X-Org-Id` headers, with an empty body).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthOk {
    pub key_id: String,
    pub org_id: String,
    pub scopes: Vec<String>,
}

/// `GET /readyz` answer when the database answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// `ok`.
    pub database: String,
}

/// Every error answer: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// On a 409: for an `Idempotency-Key` repeat, the key the first request
    /// created, without its secret; for a refused rotation, the key as it is
    /// (`replaced_by` names its successor, if a rotation replaced it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_request`, `plan_required`.
    pub code: String,
    /// What went wrong and what to do, for people.
    pub message: String,
    /// Field name → message, on 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

/// `POST /v1/leaks`: where keys were seen, as their SHA-256 digests only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LeakReports {
    pub reports: Vec<LeakReport>,
}

/// One key seen somewhere: never the key, only its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LeakReport {
    /// The SHA-256 of the key, 64 lowercase hex digits.
    pub sha256: String,
    /// Where it was seen, e.g. `src/deploy.rs:12:9`.
    pub location: String,
    /// Who saw it, e.g. `keydeck-scan`.
    pub source: String,
}

/// The answer to `POST /v1/leaks`: how many reports were taken and, for an
/// admin, which of the organisation's keys they named and what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LeakAnswer {
    pub accepted: u64,
    #[serde(default)]
    pub matched: Vec<LeakMatch>,
}

/// A reported key of the organisation, and the leak policy's action on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LeakMatch {
    pub id: String,
    pub name: String,
    pub prefix: String,
    /// `revoke`, `rotate` or `flag`.
    pub action: String,
}

/// The span a usage answer covers (`?window=`), and its buckets: `1h` (60
/// one-minute buckets), `24h` (24 hours), `7d` (168 hours), `30d` and `90d`
/// (days, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum UsageWindow {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
    #[serde(rename = "90d")]
    Quarter,
}

impl UsageWindow {
    pub const ALL: [Self; 5] = [
        Self::Hour,
        Self::Day,
        Self::Week,
        Self::Month,
        Self::Quarter,
    ];

    /// `1h`, `24h`, `7d`, `30d`, `90d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
            Self::Quarter => "90d",
        }
    }

    /// Seconds per bucket and how many buckets.
    pub fn buckets(self) -> (i64, usize) {
        match self {
            Self::Hour => (60, 60),
            Self::Day => (3600, 24),
            Self::Week => (3600, 168),
            Self::Month => (86_400, 30),
            Self::Quarter => (86_400, 90),
        }
    }
}

impl std::str::FromStr for UsageWindow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| "window must be one of 1h, 24h, 7d, 30d, 90d".to_owned())
    }
}

/// Query parameters of the usage endpoints.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// `1h`, `24h` (default), `7d`, `30d` or `90d`; anything else is refused (400).
    #[param(value_type = Option<UsageWindow>)]
    pub window: Option<String>,
}

/// Key checks by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageCounts {
    /// Good checks.
    pub valid: u64,
    /// A good key without the scope asked for (403).
    pub insufficient_scope: u64,
    pub expired: u64,
    pub revoked: u64,
    /// A good key refused because its client address was locked out by the failed-check limit.
    pub rate_limited: u64,
    /// Well-formed keys that matched none (organisation totals only, counted for
    /// the whole service: such a key belongs to no organisation).
    pub unknown: u64,
}

impl UsageCounts {
    /// Checks of known keys, good or refused.
    pub fn checks(&self) -> u64 {
        self.valid + self.refused()
    }

    /// Checks of known keys that were refused.
    pub fn refused(&self) -> u64 {
        self.insufficient_scope + self.expired + self.revoked + self.rate_limited
    }

    pub fn add(&mut self, other: &Self) {
        self.valid += other.valid;
        self.insufficient_scope += other.insufficient_scope;
        self.expired += other.expired;
        self.revoked += other.revoked;
        self.rate_limited += other.rate_limited;
        self.unknown += other.unknown;
    }
}

/// One bucket of a usage answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageBucket {
    /// The bucket's start.
    pub start: DateTime<Utc>,
    pub counts: UsageCounts,
}

/// A client address a key was used from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageAddress {
    /// The client (behind a trusted proxy: the client it reports).
    pub address: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Checks from it (of any outcome) since it was first seen.
    pub uses: u64,
}

/// `GET /v1/api-keys/{id}/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyUsage {
    pub key_id: String,
    /// `1h`, `24h`, `7d`, `30d` or `90d`.
    pub window: String,
    pub bucket_seconds: u32,
    /// Oldest first, every bucket of the window (empty ones too).
    pub buckets: Vec<UsageBucket>,
    pub totals: UsageCounts,
    /// The key's last distinct client addresses (at most 10), latest first.
    pub addresses: Vec<UsageAddress>,
}

/// One of the organisation's top keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TopKey {
    pub key_id: String,
    pub name: String,
    pub prefix: String,
    /// Checks in the window, good or refused.
    pub checks: u64,
    /// Refused checks in the window.
    pub refused: u64,
}

/// `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrgUsage {
    pub window: String,
    pub bucket_seconds: u32,
    /// Oldest first, every bucket of the window.
    pub buckets: Vec<UsageBucket>,
    pub totals: UsageCounts,
    /// At most 10 keys, most checks first.
    pub top_by_checks: Vec<TopKey>,
    /// At most 10 keys with refusals, most refusals first.
    pub top_by_refusals: Vec<TopKey>,
}
