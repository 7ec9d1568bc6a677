//! Per-request time limits: the body must arrive within the body timeout and
//! the whole request must be answered within the request deadline; otherwise
//! the client gets a JSON error (408 or 503), never a hang.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body as _;

use super::error::ApiError;
use super::{AppState, MAX_BODY_BYTES};

/// Reads the body (at most [`MAX_BODY_BYTES`]) within the body timeout, then
/// runs the request within what is left of the request deadline.
pub(super) async fn limit_time(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let timeouts = state.timeouts;
    let deadline = tokio::time::Instant::now() + timeouts.request;
    let (parts, body) = request.into_parts();
    let body = if body.is_end_stream() {
        body
    } else {
        let read_by = deadline.min(tokio::time::Instant::now() + timeouts.body);
        let limit = timeouts.body.min(timeouts.request);
        match tokio::time::timeout_at(read_by, Limited::new(body, MAX_BODY_BYTES).collect()).await {
            Ok(Ok(collected)) => Body::from(collected.to_bytes()),
            Ok(Err(e)) if e.is::<LengthLimitError>() => {
                return ApiError::PayloadTooLarge.into_response()
            }
            Ok(Err(e)) => {
                return ApiError::BadRequest(format!("The body could not be read: {e}."))
                    .into_response()
            }
            Err(_) => return ApiError::RequestTimeout(limit).into_response(),
        }
    };
    match tokio::time::timeout_at(deadline, next.run(Request::from_parts(parts, body))).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("a request ran past its deadline and was cancelled");
            ApiError::DeadlineExceeded(timeouts.request).into_response()
        }
    }
}
