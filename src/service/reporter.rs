//! Who may not pass as an admin although their key is live: a reporter key
//! (`leaks:report`) is refused on every route but the leak reports, and the
//! code hosts' routes (GitLab's, GitHub's) take only their own credential.
//! Apart from `leaks` so that `auth` can ask without importing the leak
//! endpoints, which import `auth`.

use super::error::ApiError;
use super::AppState;
use crate::key::scope::LEAKS_REPORT;

/// Where GitHub posts its matches.
pub const GITHUB_PATH: &str = "/v1/github/secret-scanning";

/// 403 for a reporter key on any other admin route: it can report, nothing
/// else. `None` when `token` is not a live key with `leaks:report` (the
/// caller goes on as before).
pub(super) async fn refuse_reporter_key(state: &AppState, token: &str) -> Option<ApiError> {
    let secret = state.key_format.parse(token).ok()?;
    // Looked up without counting a use or a failure: anything but a live
    // reporter key goes on as before (a 401 counted once by the caller).
    let key = state.key_cache.by_digest(&secret.digest()).await.ok()??;
    let live = key.revoked_at.is_none() && key.expires_at.is_none_or(|at| at > state.clock.now());
    (live && key.scopes.iter().any(|s| s == LEAKS_REPORT)).then_some(ApiError::AdminRequired)
}

/// The routes a code host calls with its own credential (GitLab's token,
/// GitHub's signature), never an admin's or a session's.
pub(super) fn is_code_host_path(path: &str) -> bool {
    matches!(
        path,
        "/v1/revocable_token_types" | "/v1/revoke_tokens" | GITHUB_PATH
    )
}
