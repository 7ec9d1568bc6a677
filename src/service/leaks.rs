//! Leak response: `POST /v1/leaks` for reporters (an admin, or a key with
//! the scope `leaks:report` that can do nothing else), and the one response
//! every report gets, whoever sent it (this endpoint, GitLab's token
//! revocation, GitHub's secret scanning): the key is marked exposed
//! (audited `api_key.exposed`, first report only), then the organisation's
//! leak policy revokes it, rotates it or only flags it.
//!
//! What a reporter learns: "accepted", never whether a digest is a key (the
//! admin's answer lists the organisation's keys it named). What is kept: the
//! exposure (source, location, when) on the key; never a raw token, never a
//! digest that named no key. What a reporter reaches: its own organisation's
//! keys only (a code host's report carries the token itself, proof enough).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json as JsonBody;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::auth::{bearer, Admin, ClientAddr};
use super::error::{field_error, ApiError};
use super::extract::{bytes_rejection, parse_object};
use super::AppState;
use crate::api::{ErrorBody, LeakAnswer, LeakMatch};
use crate::audit_action::AuditAction;
use crate::key::leak::{
    check_text, parse_sha256, Exposure, MAX_LOCATION, MAX_REPORTS, MAX_SOURCE, MAX_TOKEN,
};
use crate::key::new_id;
use crate::key::policy::OnLeak;
use crate::key::scope::LEAKS_REPORT;
use crate::store::{AuditEvent, AuthRecord, NewKey, OldKeyEnd, RotateOutcome, Rotation};

pub use super::leaks_github::{GithubKeys, GITHUB_PATH};

/// Largest body of a leak report request (the service's default is 16 KiB):
/// [`MAX_REPORTS`] reports with the longest fields fit.
pub const MAX_LEAK_BODY_BYTES: usize = 128 * 1024;

/// Requests a reporter may send per minute by default.
pub const DEFAULT_LEAK_REQUESTS_PER_MINUTE: u32 = 60;

/// Most reporters the rate limiter tracks at once; past it, the window starts over.
const MAX_TRACKED_REPORTERS: usize = 10_000;

/// What `keydeck serve` is told about leak reports.
#[derive(Clone, Default)]
pub struct LeakConfig {
    /// Requests per reporter (a key, an admin, GitLab, GitHub) per minute; 0: the default.
    pub requests_per_minute: u32,
    /// The SHA-256 of the token GitLab sends to the token revocation API;
    /// `None`: that API answers 404. Only the digest is kept.
    pub gitlab_token_digest: Option<[u8; 32]>,
    /// GitHub's secret-scanning public keys; empty: that endpoint answers 404.
    pub github_keys: GithubKeys,
}

impl std::fmt::Debug for LeakConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakConfig")
            .field("requests_per_minute", &self.requests_per_minute)
            .field("gitlab", &self.gitlab_token_digest.map(|_| "***"))
            .field("github_keys", &self.github_keys.len())
            .finish()
    }
}

/// The leak endpoints' settings and their rate limiter.
pub struct LeakDesk {
    pub(super) config: LeakConfig,
    /// Per reporter: (the minute, requests in it).
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl LeakDesk {
    pub fn new(config: LeakConfig) -> Self {
        Self {
            config,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// One more request from `who` at `now`: 429 past the limit in this
    /// minute, with the seconds left in it.
    pub(super) fn admit(&self, who: &str, now: DateTime<Utc>) -> Result<(), ApiError> {
        let limit = match self.config.requests_per_minute {
            0 => DEFAULT_LEAK_REQUESTS_PER_MINUTE,
            n => n,
        };
        let minute = now.timestamp().div_euclid(60);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_TRACKED_REPORTERS && !windows.contains_key(who) {
            windows.retain(|_, (m, _)| *m == minute);
            if windows.len() >= MAX_TRACKED_REPORTERS {
                windows.clear();
            }
        }
        let entry = windows.entry(who.to_owned()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= limit {
            let retry_after = 60 - now.timestamp().rem_euclid(60);
            return Err(ApiError::RateLimited {
                retry_after: retry_after.max(1) as u64,
            });
        }
        entry.1 += 1;
        Ok(())
    }
}

/// Who acts on a report, as the audit log names them.
#[derive(Debug, Clone)]
pub(super) struct LeakActor {
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    pub addr: Option<String>,
}

/// Whoever may report leaked keys: an admin, or a key with `leaks:report`.
#[derive(Debug, Clone)]
pub enum Reporter {
    Admin(Admin),
    Key(AuthRecord, std::net::IpAddr),
}

impl FromRequestParts<AppState> for Reporter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = bearer(&parts.headers).map(|c| Zeroizing::new(c.to_owned()));
        match credential {
            Some(c) if c.starts_with(state.key_format.prefix()) => {
                let ClientAddr(addr) = ClientAddr::from_request_parts(parts, state).await?;
                // Exactly this scope: Full Access is for the gateway's APIs.
                let key = state.check_key(&c, addr, None).await?;
                if !key.scopes.iter().any(|s| s == LEAKS_REPORT) {
                    return Err(ApiError::InsufficientScope(LEAKS_REPORT.to_owned()));
                }
                Ok(Self::Key(key.record.clone(), addr))
            }
            _ => Admin::from_request_parts(parts, state)
                .await
                .map(Self::Admin),
        }
    }
}

impl Reporter {
    fn org_id(&self) -> &str {
        match self {
            Self::Admin(a) => &a.org.id,
            Self::Key(k, _) => &k.org_id,
        }
    }

    fn actor(&self) -> LeakActor {
        match self {
            Self::Admin(a) => LeakActor {
                kind: "user",
                id: a.user.id.clone(),
                name: a.user.email.clone(),
                addr: Some(a.addr.to_string()),
            },
            Self::Key(k, addr) => LeakActor {
                kind: "api_key",
                id: k.id.clone(),
                name: k.name.clone(),
                addr: Some(addr.to_string()),
            },
        }
    }
}

/// A new key's scopes: `leaks:report` only alone (a reporter key can do nothing else).
pub(super) fn check_reporter_scopes(scopes: &[String]) -> Result<(), ApiError> {
    match crate::key::scope::reporter_not_alone(scopes) {
        Some(problem) => Err(field_error("scopes", problem)),
        None => Ok(()),
    }
}

/// One report as `POST /v1/leaks` takes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportIn {
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    token: Option<Zeroizing<String>>,
    #[serde(default)]
    location: String,
    #[serde(default)]
    source: String,
}

/// The body: `{"reports":[…]}`, or one report.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportsIn {
    #[serde(default)]
    reports: Option<Vec<ReportIn>>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    token: Option<Zeroizing<String>>,
    #[serde(default)]
    location: String,
    #[serde(default)]
    source: String,
}

/// A checked report: the digest to look up (none for a token that is not
/// in this deployment's key format: accepted, and nothing else).
pub(super) struct Report {
    pub digest: Option<[u8; 32]>,
    pub location: String,
    pub source: String,
}

fn check_report(i: usize, r: ReportIn, state: &AppState) -> Result<Report, ApiError> {
    let field = |name: &str| format!("reports[{i}].{name}");
    check_text(&field("location"), &r.location, MAX_LOCATION)
        .and_then(|()| check_text(&field("source"), &r.source, MAX_SOURCE))
        .map_err(|m| field_error(&m.clone(), m))?;
    let digest = match (r.sha256, r.token) {
        (Some(hex), None) => Some(parse_sha256(&hex).ok_or_else(|| {
            field_error(
                &field("sha256"),
                format!("{} must be 64 hexadecimal digits", field("sha256")),
            )
        })?),
        (None, Some(token)) => token_digest(state, &token, &field("token"))?,
        _ => {
            return Err(field_error(
                &format!("reports[{i}]"),
                format!("reports[{i}] needs exactly one of sha256 and token"),
            ))
        }
    };
    Ok(Report {
        digest,
        location: r.location,
        source: if r.source.is_empty() {
            "unknown".to_owned()
        } else {
            r.source
        },
    })
}

/// A raw token's digest if it is in this deployment's key format (its
/// checksum holds); `None` otherwise. The token itself goes no further.
pub(super) fn token_digest(
    state: &AppState,
    token: &str,
    field: &str,
) -> Result<Option<[u8; 32]>, ApiError> {
    if token.len() > MAX_TOKEN {
        return Err(field_error(
            field,
            format!("{field} must be at most {MAX_TOKEN} characters"),
        ));
    }
    Ok(state.key_format.parse(token).ok().map(|s| s.digest()))
}

/// Report keys seen where they should not be (a repository, a log, a chat).
/// Each report names a key by its SHA-256 (or the token itself, made a
/// digest at once); the organisation's leak policy acts on each of its keys
/// named, once per key.
#[utoipa::path(post, path = "/v1/leaks", tag = "leaks", security(("bearer" = [])),
    request_body(content = crate::api::LeakReports, description = "`{\"reports\":[…]}` (1-100) or one report; \
        each with exactly one of `sha256` (64 hex digits) or `token`, and `location` (≤ 500) and `source` (≤ 100)"),
    responses(
        (status = 200, description = "Accepted. `matched` (admins only; `[]` for a reporter key) lists the organisation's keys named and the action taken", body = LeakAnswer),
        (status = 400, description = "`invalid_request`: a field out of its limits (named in `fields`), too many reports", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, description = "`admin_required` (a member) or `insufficient_scope` (a key without `leaks:report`)", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many reports from this reporter this minute; Retry-After", body = ErrorBody),
        (status = 500, description = "`internal_error`: a fault of the service, logged in full", body = ErrorBody),
        (status = 503, description = "`database_unavailable`: the database did not answer in time; Retry-After", body = ErrorBody),
    ))]
pub async fn report(
    State(state): State<AppState>,
    reporter: Reporter,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<JsonBody<LeakAnswer>, ApiError> {
    let actor = reporter.actor();
    state
        .leaks
        .admit(&format!("{}:{}", actor.kind, actor.id), state.clock.now())?;
    let body = body.map_err(bytes_rejection)?;
    let input: ReportsIn = parse_object(&body)?;
    let single = input.sha256.is_some() || input.token.is_some();
    let raw = match (input.reports, single) {
        (Some(reports), false) => reports,
        (None, true) => vec![ReportIn {
            sha256: input.sha256,
            token: input.token,
            location: input.location,
            source: input.source,
        }],
        _ => {
            return Err(ApiError::BadRequest(
                "Send {\"reports\":[…]} or one report with sha256 or token.".into(),
            ))
        }
    };
    if raw.is_empty() || raw.len() > MAX_REPORTS {
        return Err(field_error(
            "reports",
            format!("reports must hold 1 to {MAX_REPORTS} reports"),
        ));
    }
    let reports = raw
        .into_iter()
        .enumerate()
        .map(|(i, r)| check_report(i, r, &state))
        .collect::<Result<Vec<_>, _>>()?;
    let accepted = reports.len() as u64;
    let org_id = reporter.org_id().to_owned();
    let matched = state
        .respond_all(reports, Some(&org_id), &actor)
        .await?
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    Ok(JsonBody(LeakAnswer {
        accepted,
        matched: match reporter {
            Reporter::Admin(_) => matched,
            Reporter::Key(..) => Vec::new(),
        },
    }))
}

impl AppState {
    /// Responds to each report once per digest (the first report of a
    /// digest in the batch wins): finds the key, within `org_id` if given,
    /// and applies the policy. The keys found, with their digests.
    pub(super) async fn respond_all(
        &self,
        reports: Vec<Report>,
        org_id: Option<&str>,
        actor: &LeakActor,
    ) -> Result<Vec<(LeakMatch, [u8; 32])>, ApiError> {
        let mut seen = std::collections::HashSet::new();
        let mut matched = Vec::new();
        for report in reports {
            let Some(digest) = report.digest else {
                continue;
            };
            if !seen.insert(digest) {
                continue;
            }
            let Some(key) = self.store.key_by_digest(&digest).await? else {
                continue;
            };
            if org_id.is_some_and(|org| org != key.org_id) {
                continue;
            }
            if let Some(m) = self.respond(&key, &report, actor).await? {
                matched.push((m, digest));
            }
        }
        Ok(matched)
    }

    /// Marks `key` exposed and applies its organisation's leak policy, on
    /// the first report of it; a later report changes nothing and writes
    /// nothing (action `already_reported`).
    async fn respond(
        &self,
        key: &AuthRecord,
        report: &Report,
        actor: &LeakActor,
    ) -> Result<Option<LeakMatch>, ApiError> {
        let now = self.clock.now();
        let policy = self.store.policy(&key.org_id).await?;
        let exposure = Exposure {
            at: now,
            source: report.source.clone(),
            location: report.location.clone(),
        };
        let audit = |action: AuditAction, details: serde_json::Value| AuditEvent {
            org_id: key.org_id.clone(),
            at: now,
            actor_kind: actor.kind.into(),
            actor_id: actor.id.clone(),
            actor_name: actor.name.clone(),
            action: action.to_string(),
            api_key_id: key.id.clone(),
            remote_addr: actor.addr.clone(),
            details,
        };
        let exposed = audit(
            AuditAction::ApiKeyExposed,
            json!({ "source": exposure.source, "location": exposure.location,
                    "on_leak": policy.on_leak.as_str() }),
        );
        let Some((record, newly)) = self
            .store
            .mark_exposed(&key.org_id, &key.id, &exposure, &exposed)
            .await?
        else {
            return Ok(None);
        };
        let mut action = policy.on_leak.as_str().to_owned();
        if !newly {
            action = "already_reported".to_owned();
        } else if record.status(now) != crate::key::KeyStatus::Active {
            action = "none".to_owned();
        } else {
            let by = format!("leak report ({})", actor.name);
            match policy.on_leak {
                OnLeak::Flag => {}
                OnLeak::Revoke => {
                    let revoked = audit(AuditAction::ApiKeyRevoked, json!({ "reason": "leaked" }));
                    self.store
                        .revoke_key(&key.org_id, &key.id, now, &by, &revoked)
                        .await?;
                }
                OnLeak::Rotate => {
                    let grace = policy.leak_grace_seconds;
                    // The successor has no secret yet: a report comes from a
                    // machine, so no one is there to be shown one. An admin
                    // issues it (`POST /v1/api-keys/{id}/secret`); until then
                    // no token authenticates as it (its digest is of random
                    // text in no key's format, and a key check skips it).
                    let new = NewKey {
                        id: new_id("key_"),
                        org_id: key.org_id.clone(),
                        name: record.name.clone(),
                        description: record.description.clone(),
                        prefix: self.key_format.prefix().to_owned(),
                        digest: crate::key::secret::digest(&crate::key::random_base62(48)),
                        scopes: record.scopes.clone(),
                        created_at: now,
                        created_by: by.clone(),
                        expires_at: policy.rotated_expiry(now, record.expires_at),
                        secret_pending: true,
                    };
                    let rotated = audit(
                        AuditAction::ApiKeyRotated,
                        json!({ "new_key_id": new.id, "grace_seconds": grace, "reason": "leaked" }),
                    );
                    let end = match grace {
                        0 => OldKeyEnd::RevokeNow,
                        s => OldKeyEnd::ExpireAt(now + Duration::seconds(i64::from(s))),
                    };
                    let outcome = self
                        .store
                        .rotate_key(&Rotation {
                            org_id: &key.org_id,
                            old_id: &key.id,
                            now,
                            end,
                            revoked_by: &by,
                            new: &new,
                            audit: &rotated,
                        })
                        .await?;
                    if !matches!(outcome, RotateOutcome::Rotated { .. }) {
                        // Replaced before (its successor stands) or ended meanwhile.
                        action = "none".to_owned();
                    }
                }
            }
        }
        tracing::warn!(key_id = %key.id, org_id = %key.org_id, source = %report.source,
            action = %action, "api key reported leaked");
        Ok(Some(LeakMatch {
            id: record.id,
            name: record.name,
            prefix: record.prefix,
            action,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_counts_per_reporter_per_minute() {
        let desk = LeakDesk::new(LeakConfig {
            requests_per_minute: 2,
            ..LeakConfig::default()
        });
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(desk.admit("a", t).is_ok());
        assert!(desk.admit("a", t).is_ok());
        assert!(matches!(
            desk.admit("a", t),
            Err(ApiError::RateLimited { retry_after: 60 })
        ));
        assert!(desk.admit("b", t).is_ok());
        assert!(desk.admit("a", t + Duration::seconds(60)).is_ok());
    }

    #[test]
    fn a_reporter_scope_stands_alone() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_reporter_scopes(&v(&["leaks:report"])).is_ok());
        assert!(check_reporter_scopes(&v(&["sessions:read", "audit_logs:read"])).is_ok());
        assert!(check_reporter_scopes(&v(&["leaks:report", "sessions:read"])).is_err());
    }
}
