//! The OpenAPI document, generated from the handlers' annotations, with the
//! answers every route can give added once, and the running scope catalogue.

use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::api;
use crate::key::{Catalog, KeyStatus};

#[derive(OpenApi)]
#[openapi(
    info(title = "keydeck", description = "API keys: create, list, revoke, rotate, and check them."),
    paths(
        super::health,
        super::ready,
        super::scopes,
        super::key_window::list,
        super::key_window::counts,
        super::keys::create,
        super::keys::get,
        super::keys::revoke,
        super::keys::rotate,
        super::keys::issue_secret,
        super::audit::list,
        super::forward_auth::check,
        super::policy::get,
        super::policy::put,
        super::usage_api::key_usage,
        super::usage_api::org_usage,
        super::webhooks::api::list,
        super::webhooks::api::create,
        super::webhooks::api::remove,
        super::webhooks::api::test,
        super::webhooks::api::deliveries,
        super::webhooks::api::rotate_secret,
        super::webhooks::api::enable,
        super::leaks::report,
        super::leaks_gitlab::types,
        super::leaks_gitlab::revoke,
        super::leaks_github::receive,
    ),
    components(schemas(
        api::ApiKey, api::CreateKeyRequest, api::CreatedKey, api::RotateKeyRequest, api::RotatedKey,
        api::KeyList, api::ListedKey, api::KeyCounts, api::TabCounts, api::SummaryCounts, api::ScopeList, api::AuditEntry, api::AuditList, api::Actor, api::AuthOk,
        api::ErrorBody, api::ErrorDetail, api::ScopeInfo, api::Readiness, KeyStatus,
        crate::key::policy::Policy,
        api::UsageWindow, api::UsageCounts, api::UsageBucket, api::UsageAddress, api::KeyUsage,
        api::TopKey, api::OrgUsage,
        api::webhooks::Webhook, api::webhooks::WebhookList, api::webhooks::CreateWebhookRequest,
        api::webhooks::CreatedWebhook, api::webhooks::RotateWebhookSecretRequest,
        api::webhooks::WebhookTestQueued, api::webhooks::WebhookDelivery, api::webhooks::WebhookDeliveryList,
        crate::key::policy::Policy, crate::key::policy::OnLeak, crate::key::leak::Exposure, crate::key::health::Refusals,
        api::LeakReports, api::LeakReport, api::LeakAnswer, api::LeakMatch,
        super::leaks_gitlab::RevocableTokenTypes, super::leaks_gitlab::RevokeToken,
        super::leaks_github::GithubMatch, super::leaks_github::GithubFeedback,
    )),
    modifiers(&BearerAuth, &EveryRoute),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A user access token (kdt_...) of an organisation admin",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "gitlab",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "Authorization",
                    "The token configured with `serve --gitlab-token-file`, as GitLab sends it",
                ),
            )),
        );
    }
}

/// Answers any route can give, whatever its handler does.
struct EveryRoute;

const EVERY_ROUTE: &[(&str, &str, bool)] = &[
    (
        "405",
        "This path does not take that method (answered for the methods not listed here)",
        true,
    ),
    (
        "408",
        "The request took too long to arrive or to answer",
        true,
    ),
    (
        "503",
        "The request was not answered within its deadline (`deadline_exceeded`), the service \
         has too many connections open (`too_many_connections`), or its database is unavailable \
         (`database_unavailable`); Retry-After",
        true,
    ),
    (
        "413",
        "The request body is larger than the route's limit, 16 KiB (128 KiB on the leak \
         report endpoints) (`payload_too_large`): refused before the route looks at it, \
         whatever the method",
        true,
    ),
    (
        "431",
        "Request header fields too large: answered by the HTTP layer, without a body",
        false,
    ),
];

impl Modify for EveryRoute {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for &(status, description, with_body) in EVERY_ROUTE {
                    let mut response = ResponseBuilder::new().description(description);
                    if with_body {
                        response = response.content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .build(),
                        );
                    }
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| response.build().into());
                }
            }
        }
    }
}

/// The document as served: the scope ids of the running catalogue are the
/// only values `scopes` (and `/v1/auth`'s `scope`) accept.
pub fn document(catalog: &Catalog) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let ids: Vec<Value> = catalog
        .scopes()
        .iter()
        .map(|s| Value::from(s.id.as_str()))
        .collect();
    if let Some(items) =
        doc.pointer_mut("/components/schemas/CreateKeyRequest/properties/scopes/items")
    {
        // A key may be a reporter (alone); a gateway never checks for it.
        let mut with_reporter = ids.clone();
        with_reporter.push(crate::key::scope::LEAKS_REPORT.into());
        items["enum"] = Value::Array(with_reporter);
    }
    if let Some(params) = doc.pointer_mut("/paths/~1v1~1auth/get/parameters") {
        for param in params.as_array_mut().into_iter().flatten() {
            if param["name"] == "scope" || param["name"] == "X-Required-Scope" {
                param["schema"]["enum"] = Value::Array(ids.clone());
            }
        }
    }
    doc
}
