//! What can happen to the UI (actions, handled by `App::update`) and what the
//! UI asks to have done: requests to the service, each with an id and settled
//! in one place when its answer comes back, and local work (the clipboard)
//! that the runner does at once.

use crossterm::event::KeyEvent;

use crate::api::{ApiKey, AuditList, CreateKeyRequest, CreatedKey, KeyList, RotatedKey, ScopeInfo};
use crate::client::ClientError;
use crate::key::Secret;

#[derive(Debug)]
pub enum Action {
    Key(KeyEvent),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
    Resize(u16, u16),
    /// Time passed: auto-refresh, retries, expiries, relative times.
    Tick,
    /// The answer to request `id`.
    Answer {
        id: RequestId,
        answer: Answer,
    },
    /// The secret was sent to the clipboard; `system` if the local one took it too.
    Copied {
        system: bool,
    },
    Quit,
}

/// Names one request, so its answer settles exactly it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A request to the key service.
#[derive(Debug, Clone)]
pub enum Request {
    /// Fetch one page of keys (from the start when `cursor` is `None`) for
    /// load number `generation`.
    LoadPage {
        generation: u64,
        cursor: Option<String>,
    },
    LoadScopes,
    /// Create a key; a lost answer is retried with the same idempotency key.
    CreateKey {
        request: CreateKeyRequest,
        idempotency_key: String,
    },
    RevokeKey {
        id: String,
    },
    RotateKey {
        id: String,
        grace_seconds: u32,
    },
    LoadAudit,
}

impl Request {
    /// Whether it changes a key (then quitting waits for its answer): the one
    /// list of such requests.
    pub fn changes_keys(&self) -> bool {
        matches!(
            self,
            Request::CreateKey { .. } | Request::RevokeKey { .. } | Request::RotateKey { .. }
        )
    }
}

/// What came back for a request (the same kind as the request).
#[derive(Debug)]
pub enum Answer {
    Page(Result<KeyList, ClientError>),
    Scopes(Result<Vec<ScopeInfo>, ClientError>),
    /// The final answer to a create, after any retries.
    Created(Box<Result<CreatedKey, ClientError>>),
    Revoked(Result<ApiKey, ClientError>),
    Rotated(Box<Result<RotatedKey, ClientError>>),
    Audit(Result<AuditList, ClientError>),
}

/// Work for the runner.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send a request; its answer comes back as [`Action::Answer`].
    Send(RequestId, Request),
    /// Put a secret on the clipboard (OSC 52, and the system clipboard locally).
    Copy(Secret),
    /// Put something that is not a secret on the clipboard.
    CopyText(String),
}
