//! Wire types of `/v1/webhooks` (issue 24): endpoints, their deliveries, the
//! signing secret shown once.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::key::webhook::DebugUrl;
use crate::key::Secret;

/// A webhook endpoint (never its secret). `Debug` shows the URL redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    /// The URL whole: this is the endpoint's own record. Audit entries and
    /// lists show it with the query string's values as `REDACTED`.
    pub url: String,
    /// The event types it is sent.
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// `healthy`, `failing` (3 or more failed attempts in a row) or `disabled`
    /// (a day of failures: nothing is sent until it is enabled again).
    pub health: String,
    pub consecutive_failures: i64,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// After a secret rotation: until then the previous secret signs too.
    pub previous_secret_until: Option<DateTime<Utc>>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &DebugUrl(&self.url))
            .field("events", &self.events)
            .field("created_at", &self.created_at)
            .field("created_by", &self.created_by)
            .field("health", &self.health)
            .field("consecutive_failures", &self.consecutive_failures)
            .field("failing_since", &self.failing_since)
            .field("disabled_at", &self.disabled_at)
            .field("previous_secret_until", &self.previous_secret_until)
            .finish()
    }
}

/// `GET /v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub data: Vec<Webhook>,
}

/// `POST /v1/webhooks`. `Debug` shows the URL redacted.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// `https://…` (plain `http://` only to a loopback address), at most 2048 characters.
    pub url: String,
    /// 1-10 event types, e.g. `["api_key.expiring", "api_key.revoked"]`.
    pub events: Vec<String>,
}

impl fmt::Debug for CreateWebhookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateWebhookRequest")
            .field("url", &DebugUrl(&self.url))
            .field("events", &self.events)
            .finish()
    }
}

/// An endpoint and its signing secret (`whsec_…`), shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    #[schema(value_type = String, example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: Secret,
}

/// `POST /v1/webhooks/{id}/rotate-secret`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookSecretRequest {
    /// Seconds the previous secret keeps signing (both signatures are sent),
    /// 0-604800 (default 86400).
    pub overlap_seconds: Option<u32>,
}

/// `POST /v1/webhooks/{id}/test` answer: the event queued for this endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookTestQueued {
    /// Its `webhook-id`.
    pub event_id: String,
}

/// One event's delivery to an endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: i64,
    /// The `webhook-id`, the same on every attempt.
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed` (given up after a day of retries).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The last answer's HTTP status, if there was one.
    pub last_response_code: Option<i64>,
    /// Why the last attempt failed, briefly (never the answer's body).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A page of `GET /v1/webhooks/{id}/deliveries`, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveryList {
    pub data: Vec<WebhookDelivery>,
    /// Pass as `cursor` for the page after this one (older); `null` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
    /// Pass as `before` for the page before this one (newer); absent on the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_cursor: Option<String>,
}

/// `GET /v1/webhooks/{id}/deliveries` parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListQuery {
    /// 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of a page: the page after it (older deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(max_length = 20)]
    pub cursor: Option<String>,
    /// `prev_cursor` of a page: the page before it (newer deliveries), for scrolling up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(max_length = 20)]
    pub before: Option<String>,
    /// `end`: the oldest page, without reading what lies before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(max_length = 8)]
    pub from: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_token_of_the_url_nor_the_secret() {
        let url = "https://hooks.example/x?token=SECRET";
        let webhook = Webhook {
            id: "wh_1".into(),
            url: url.into(),
            events: vec!["api_key.revoked".into()],
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            created_by: "admin@example.test".into(),
            health: "healthy".into(),
            consecutive_failures: 0,
            failing_since: None,
            disabled_at: None,
            previous_secret_until: None,
        };
        let created = CreatedWebhook {
            webhook: webhook.clone(),
            secret: Secret::new("whsec_SECRET".into()),
        };
        let list = WebhookList {
            data: vec![webhook.clone()],
        };
        let request = CreateWebhookRequest {
            url: url.into(),
            events: vec![],
        };
        for shown in [
            format!("{webhook:?}"),
            format!("{created:#?}"),
            format!("{list:?}"),
            format!("{request:?}"),
        ] {
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(
                shown.contains("\"https://hooks.example/x?token=REDACTED\""),
                "{shown}"
            );
        }
    }
}
