//! `Json`, `Query` and `Path` extractors whose rejections are our 400/413 error bodies,
//! never axum's plain-text ones.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::{field_error, ApiError};

/// A JSON object body (arrays, which serde would also map onto a struct, are refused).
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::BadRequest(
                "Send the body as JSON with Content-Type: application/json.".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        parse_object(&bytes).map(Self)
    }
}

/// Parses a JSON object body into `T`, with a message naming the bad field.
pub(super) fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "The body must be a JSON object.".into(),
        ));
    }
    axum::Json::<T>::from_bytes(bytes)
        .map(|axum::Json(value)| value)
        .map_err(|rejection: JsonRejection| {
            ApiError::BadRequest(format!("The body is not valid: {}", rejection.body_text()))
        })
}

pub(super) fn bytes_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // Not reached while every route's `DefaultBodyLimit` is at least what
        // `deadline::limit_time` lets through, which refuses first.
        ApiError::PayloadTooLarge(super::MAX_BODY_BYTES)
    } else {
        ApiError::BadRequest(format!(
            "The body could not be read: {}",
            rejection.body_text()
        ))
    }
}

pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

/// A query string that does not parse: a 400 naming the parameter in
/// `fields` when serde names one (`limit: invalid digit…`, `status: unknown
/// variant…`), as the handlers' own checks do.
fn query_rejection(rejection: QueryRejection) -> ApiError {
    let text = rejection.body_text();
    let why = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    match why.split_once(": ") {
        Some((field, rest))
            if !field.is_empty()
                && field
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            field_error(field, format!("{field} is not valid: {rest}"))
        }
        _ => ApiError::BadRequest(format!("The query string is not valid: {why}")),
    }
}

/// A path parameter. One that cannot be decoded (e.g. `%FF`, not UTF-8) names
/// nothing the service could have issued: 404, like any other unknown id.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::NotFound),
            Err(rejection) => Err(ApiError::Internal(rejection.body_text())),
        }
    }
}
