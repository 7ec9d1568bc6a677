//! The one error type of the service, and how each becomes an HTTP answer.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::{ApiKey, ErrorBody, ErrorDetail};
use crate::key::policy::Violation;
use crate::key::validate::FieldErrors;
use crate::key::KeyStatus;
use crate::present::{self, SpanUnit};

use crate::store::StoreError;

pub const PLAN_REQUIRED_MESSAGE: &str = "API keys are available on the Paid plan only.";

#[derive(Debug)]
pub enum ApiError {
    /// 400 with a message per field.
    InvalidFields(FieldErrors),
    /// 400 for a request that could not be read at all.
    BadRequest(String),
    /// 401: no credentials at all.
    MissingCredentials,
    /// 401: a token or key that is unknown, malformed, expired or revoked.
    InvalidCredentials,
    /// 402.
    PlanRequired,
    /// 403: a member calling an admin endpoint.
    AdminRequired,
    /// 403: a good key without the scope asked for.
    InsufficientScope(String),
    /// 404.
    NotFound,
    /// 409: an `Idempotency-Key` seen before; the key it created, never its secret.
    IdempotentRepeat(Box<ApiKey>),
    /// 422: an `Idempotency-Key` seen before with a different request.
    IdempotencyKeyReused,
    /// 409: the key is not in a state that allows this.
    KeyNotActive(Box<ApiKey>),
    /// 409: the key has its secret (issued before, or made with one), or is
    /// no longer active: a secret is issued once, only while it waits for one.
    SecretNotPending(Box<ApiKey>),
    /// 409: the key was rotated before: its successor is the one to rotate.
    /// `key_already_replaced` while it still works (winding down), else
    /// `key_not_active` as for any revoked or expired key.
    AlreadyReplaced {
        old: Box<ApiKey>,
        successor: Option<Box<ApiKey>>,
    },
    /// 413: the body is larger than the route's limit (bytes).
    PayloadTooLarge(usize),
    /// 408: the request body did not arrive within this long.
    RequestTimeout(std::time::Duration),
    /// 503: the request was not answered within its deadline of this long.
    DeadlineExceeded(std::time::Duration),
    /// 429, with seconds until the client may try again.
    TooManyFailures { retry_after: u64 },
    /// 429: too many requests of this kind from this caller (leak reports);
    /// seconds until it may try again.
    RateLimited { retry_after: u64 },
    /// 503: the database did not answer in time, or cannot be reached.
    DatabaseUnavailable,
    /// 500: logged in full, answered in general terms.
    Internal(String),
    /// 400 `policy_violation`: the key breaks these rules of the organisation's policy.
    PolicyViolation(Vec<Violation>),
}

/// Seconds a client is asked to wait after a 503 `database_unavailable`.
pub const DATABASE_RETRY_AFTER: u64 = 2;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::DatabaseUnavailable,
            StoreError::Busy(waited) => Self::DeadlineExceeded(waited),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidFields(_) | Self::BadRequest(_) | Self::PolicyViolation(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::MissingCredentials | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::PlanRequired => StatusCode::PAYMENT_REQUIRED,
            Self::AdminRequired | Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::IdempotentRepeat(_)
            | Self::KeyNotActive(_)
            | Self::SecretNotPending(_)
            | Self::AlreadyReplaced { .. } => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyFailures { .. } | Self::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::DeadlineExceeded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidFields(_) | Self::BadRequest(_) => "invalid_request",
            Self::MissingCredentials => "unauthorized",
            Self::InvalidCredentials => "invalid_token",
            Self::PlanRequired => "plan_required",
            Self::AdminRequired => "admin_required",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::NotFound => "not_found",
            Self::IdempotentRepeat(_) | Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::KeyNotActive(_) => "key_not_active",
            Self::SecretNotPending(key) if key.status != KeyStatus::Active => "key_not_active",
            Self::SecretNotPending(_) => "secret_already_issued",
            Self::AlreadyReplaced { old, .. } if old.status != KeyStatus::Active => {
                "key_not_active"
            }
            Self::AlreadyReplaced { .. } => "key_already_replaced",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::TooManyFailures { .. } => "too_many_failed_attempts",
            Self::RateLimited { .. } => "rate_limited",
            Self::RequestTimeout(_) => "request_timeout",
            Self::DeadlineExceeded(_) => "deadline_exceeded",
            Self::DatabaseUnavailable => "database_unavailable",
            Self::Internal(_) => "internal_error",
            Self::PolicyViolation(_) => "policy_violation",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::InvalidFields(fields) => {
                let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                format!("Invalid {}: see fields.", names.join(", "))
            }
            Self::BadRequest(m) => m.clone(),
            Self::MissingCredentials => {
                "Authentication required: send Authorization: Bearer <token>.".into()
            }
            Self::InvalidCredentials => {
                "The token or key is not valid (unknown, malformed, expired or revoked).".into()
            }
            Self::PlanRequired => PLAN_REQUIRED_MESSAGE.into(),
            Self::AdminRequired => "Only admins of the organisation can manage API keys.".into(),
            Self::InsufficientScope(scope) => format!("The key does not have the scope {scope}."),
            Self::NotFound => "No such resource.".into(),
            Self::IdempotentRepeat(_) => "This Idempotency-Key was used before: the key it created is \
                 returned without its secret, which is shown only once."
                .into(),
            Self::IdempotencyKeyReused => "This Idempotency-Key was used for a different request in \
                 the last 24 hours; send a new Idempotency-Key for a new request."
                .into(),
            Self::KeyNotActive(key) => format!(
                "The key is {}: only an active key can be rotated. Re-issue it instead: \
                 create a new key with the same name, description and scopes.",
                key.status.as_str()
            ),
            Self::SecretNotPending(key) if key.status != KeyStatus::Active => format!(
                "The key is {}: its secret can no longer be issued.",
                key.status.as_str()
            ),
            Self::SecretNotPending(_) => "The key's secret was issued before (a secret is shown \
                 once and never again): rotate the key for a new one."
                .into(),
            Self::AlreadyReplaced { old, successor } => already_replaced(old, successor.as_deref()),
            Self::PayloadTooLarge(limit) => {
                format!("The request body is larger than {} KiB.", limit / 1024)
            }
            Self::TooManyFailures { retry_after } => format!(
                "Too many failed authentication attempts from this address; try again in {retry_after} s."
            ),
            Self::RateLimited { retry_after } => format!(
                "Too many requests of this kind from this caller; try again in {retry_after} s."
            ),
            Self::RequestTimeout(limit) => format!(
                "The request body did not arrive within {}; send it at once, then try again.",
                seconds(*limit)
            ),
            Self::DeadlineExceeded(limit) => format!(
                "The service could not answer within {}; the request was cancelled, \
                 but check whether a change it asked for took effect before retrying.",
                seconds(*limit)
            ),
            Self::DatabaseUnavailable => format!(
                "The database is not answering right now; try again in {DATABASE_RETRY_AFTER} s."
            ),
            Self::Internal(_) => "Internal error; the service log has the details.".into(),
            Self::PolicyViolation(violations) => violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error");
        }
        let status = self.status();
        let www_authenticate = match &self {
            Self::MissingCredentials => Some("Bearer realm=\"keydeck\"".to_owned()),
            Self::InvalidCredentials => Some("Bearer error=\"invalid_token\"".to_owned()),
            Self::InsufficientScope(scope) => Some(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
            )),
            _ => None,
        };
        let retry_after = match &self {
            Self::TooManyFailures { retry_after } | Self::RateLimited { retry_after } => {
                Some(*retry_after)
            }
            Self::DatabaseUnavailable => Some(DATABASE_RETRY_AFTER),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.message(),
                fields: match &self {
                    Self::InvalidFields(f) => Some(f.clone()),
                    Self::PolicyViolation(v) => Some(policy_fields(v)),
                    _ => None,
                },
            },
            api_key: match self {
                Self::IdempotentRepeat(key)
                | Self::KeyNotActive(key)
                | Self::SecretNotPending(key)
                | Self::AlreadyReplaced { old: key, .. } => Some(*key),
                _ => None,
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(value) = www_authenticate.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// "This key is already being replaced by eg_live_6OG8... (rotated at
/// 2026-12-06 10:47 UTC; this key works until 2026-12-07 10:47 UTC); rotate
/// that key instead." Once it no longer works: "This key is expired: it was
/// replaced by …".
fn already_replaced(old: &ApiKey, successor: Option<&ApiKey>) -> String {
    let at = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let (is, until) = match (old.status, old.expires_at) {
        (KeyStatus::Active, Some(end)) => (
            "is already being".to_owned(),
            format!("; this key works until {}", at(end)),
        ),
        (KeyStatus::Active, None) => ("is already being".to_owned(), String::new()),
        (status, _) => (format!("is {}: it was", status.as_str()), String::new()),
    };
    let by = match successor {
        Some(s) => format!(
            "{} (rotated at {}{until})",
            present::prefix(&s.prefix),
            at(s.created_at)
        ),
        None => old
            .replaced_by
            .as_deref()
            .unwrap_or("another key")
            .to_owned(),
    };
    format!("This key {is} replaced by {by}; rotate that key instead.")
}

/// The request field each broken rule is about, with the rule's words.
fn policy_fields(violations: &[Violation]) -> FieldErrors {
    violations
        .iter()
        .map(|v| {
            let field = match v {
                Violation::NoExpiry | Violation::TooLong { .. } => "expires_at",
                Violation::NoDescription => "description",
            };
            (field.to_owned(), v.to_string())
        })
        .collect()
}

/// A single-field 400.
pub fn field_error(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidFields(FieldErrors::from([(field.to_owned(), message.into())]))
}

/// `15 s`, or `0.5 s` for limits under a second.
fn seconds(d: std::time::Duration) -> String {
    let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    present::duration(d, SpanUnit::Second..=SpanUnit::Second)
}
