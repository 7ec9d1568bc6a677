//! Per-request limits: the body must be at most its route's size and arrive
//! within the body timeout, and the whole request must be answered within
//! the request deadline; otherwise the client gets a JSON error (413, 408 or
//! 503), never a hang or a broken connection.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper::body::Body as _;

use super::error::ApiError;
use super::{body_limit, AppState};

/// How much of a too-large body is read, and thrown away, before the 413 is
/// sent: a client still sending when the service closes the connection gets
/// a reset, which can overtake the answer and lose it (the client then sees
/// a broken connection, not why). Past this the service answers at once.
pub const DRAIN_BYTES: usize = 1024 * 1024;

/// Reads the body (at most its route's limit, [`body_limit`]) within the
/// body timeout, then runs the request within what is left of the request
/// deadline.
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
        let limit = body_limit(parts.uri.path());
        let waited = timeouts.body.min(timeouts.request);
        match tokio::time::timeout_at(read_by, read_body(body, limit)).await {
            Ok(Ok(bytes)) => Body::from(bytes),
            Ok(Err(Unread::TooLarge)) => return ApiError::PayloadTooLarge(limit).into_response(),
            Ok(Err(Unread::Broken(e))) => {
                return ApiError::BadRequest(format!("The body could not be read: {e}."))
                    .into_response()
            }
            // Still sending a too-large body when time ran out is still too large.
            Err(_) => return ApiError::RequestTimeout(waited).into_response(),
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

/// Why a body was not read.
enum Unread {
    TooLarge,
    Broken(axum::Error),
}

/// The body, if it is at most `limit` bytes. A larger one is read on, and
/// dropped, up to [`DRAIN_BYTES`] more (or refused at once when its declared
/// length is past that), so that the client has sent it all when the 413
/// comes.
async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, Unread> {
    let declared = body.size_hint().exact().unwrap_or(0);
    let drain_to = limit.saturating_add(DRAIN_BYTES);
    if usize::try_from(declared).unwrap_or(usize::MAX) > drain_to {
        return Err(Unread::TooLarge);
    }
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(Unread::Broken)?.into_data() else {
            continue; // trailers: not used by any route
        };
        seen = seen.saturating_add(data.len());
        if seen > drain_to {
            return Err(Unread::TooLarge);
        }
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if !kept.is_empty() {
            kept = Vec::new();
        }
    }
    if seen > limit {
        return Err(Unread::TooLarge);
    }
    Ok(Bytes::from(kept))
}
