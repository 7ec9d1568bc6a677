//! What can happen to the UI (actions, handled by `App::update`) and what the
//! UI asks to have done (effects, run by the runner, which reports back).

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
    /// A page of keys arrived (or failed) for load number `generation`.
    PageLoaded {
        generation: u64,
        result: Result<KeyList, ClientError>,
    },
    ScopesLoaded(Result<Vec<ScopeInfo>, ClientError>),
    /// The final answer to a create, after any retries.
    Created(Box<Result<CreatedKey, ClientError>>),
    Revoked(Result<ApiKey, ClientError>),
    Rotated(Box<Result<RotatedKey, ClientError>>),
    /// The secret was sent to the clipboard; `system` if the local one took it too.
    Copied {
        system: bool,
    },
    /// A prefix and id were sent to the clipboard.
    CopiedText,
    AuditLoaded(Result<AuditList, ClientError>),
    Quit,
}

/// Work for the runner.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Fetch one page of keys (from the start when `cursor` is `None`).
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
    /// Put a secret on the clipboard (OSC 52, and the system clipboard locally).
    Copy(Secret),
    /// Put something that is not a secret on the clipboard.
    CopyText(String),
    LoadAudit,
}
