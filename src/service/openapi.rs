//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::deadline::TimeLimitResponses;
use crate::api;
use crate::key::KeyStatus;

#[derive(OpenApi)]
#[openapi(
    info(title = "keydeck", description = "API keys: create, list, revoke, rotate, and check them."),
    paths(
        super::health,
        super::scopes,
        super::keys::list,
        super::keys::create,
        super::keys::get,
        super::keys::revoke,
        super::keys::rotate,
        super::audit::list,
        super::forward_auth::check,
    ),
    components(schemas(
        api::ApiKey, api::CreateKeyRequest, api::CreatedKey, api::RotateKeyRequest, api::RotatedKey,
        api::KeyList, api::ScopeList, api::AuditEntry, api::AuditList, api::Actor, api::AuthOk,
        api::ErrorBody, api::ErrorDetail, api::ScopeInfo, KeyStatus,
    )),
    modifiers(&BearerAuth, &TimeLimitResponses),
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
    }
}
