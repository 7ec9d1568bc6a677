//! What can happen to the UI (actions, handled by `App::update`) and what the
//! UI asks to have done: requests to the service, each with an id and settled
//! in one place when its answer comes back, and local work (the clipboard)
//! that the runner does at once.

use crossterm::event::KeyEvent;

use crate::api::{
    ApiKey, AuditList, CreateKeyRequest, CreatedKey, KeyCounts, KeyList, KeyListQuery, RotatedKey,
    ScopeInfo,
};
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
    /// load number `generation`; only keys written since `changed_since`
    /// (an earlier list's `sync_cursor`) if set.
    LoadPage {
        generation: u64,
        cursor: Option<String>,
        changed_since: Option<String>,
        /// Keys per page (at most [`crate::tui::app::PAGE_SIZE`]).
        limit: u32,
    },
    /// One page of the table's window (a large organisation's keys: tab,
    /// sort, filter and position in `query`), for window query `generation`.
    LoadWindow {
        generation: u64,
        query: Box<KeyListQuery>,
        fetch: Fetch,
    },
    /// The tab counts and the summary line's numbers of the keys matching
    /// `q`, for the window's counts number `generation`.
    LoadCounts {
        generation: u64,
        q: Option<String>,
    },
    LoadScopes,
    /// The organisation's key policy, for the create form (and the badges).
    LoadPolicy,
    /// Replace the organisation's key policy (the policy screen's save).
    SetPolicy(crate::key::policy::Policy),
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
    /// Issue the secret of a key made without one.
    IssueSecret {
        id: String,
    },
    /// The newest audit entries, of one key's alone if `key` (the service
    /// filters: a key's whole history, however long the log).
    LoadAudit {
        key: Option<String>,
    },
    /// The organisation's usage over a window (the usage screen).
    LoadOrgUsage {
        window: crate::api::UsageWindow,
    },
    /// A key's usage over a window (details, the revoke dialog).
    LoadKeyUsage {
        id: String,
        window: crate::api::UsageWindow,
    },
    /// One request of the webhooks screen.
    Webhooks(WebhookOp),
}

/// What the webhooks screen asks of `/v1/webhooks`.
#[derive(Debug, Clone)]
pub enum WebhookOp {
    List,
    /// A page of the deliveries to this endpoint (by id).
    Deliveries {
        id: String,
        page: DeliveriesPage,
    },
    Add(crate::api::webhooks::CreateWebhookRequest),
    Test(String),
    Remove(String),
    /// Enable a disabled endpoint (by id).
    Enable(String),
    /// A new signing secret for this endpoint (by id).
    RotateSecret(String),
}

/// Which page of an endpoint's deliveries (newest first) to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveriesPage {
    Newest,
    /// The page after this `next_cursor` (older deliveries).
    Older(String),
    /// The page before this `prev_cursor` (newer deliveries).
    Newer(String),
    /// The oldest page (`G`).
    Oldest,
}

impl Request {
    /// Whether it changes a key (then quitting waits for its answer): the one
    /// list of such requests.
    pub fn changes_keys(&self) -> bool {
        matches!(
            self,
            Request::CreateKey { .. }
                | Request::RevokeKey { .. }
                | Request::RotateKey { .. }
                | Request::IssueSecret { .. }
        )
    }

    /// Whether it changes what the service holds (a key or the policy):
    /// never cancelled, and quitting waits for its answer.
    pub fn is_change(&self) -> bool {
        self.changes_keys() || matches!(self, Request::SetPolicy(_))
    }
}

/// Where a window page goes among the rows held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// It replaces them: a new query, a jump (`g`, `G`), a refresh.
    Reset,
    /// After the last row held (scrolling down).
    Ahead,
    /// Before the first row held (scrolling up).
    Behind,
    /// Whether any key was written since the window was read (an automatic
    /// refresh reads the window again only then).
    Probe,
}

/// What came back for a request (the same kind as the request).
#[derive(Debug)]
pub enum Answer {
    Page(Result<KeyList, ClientError>),
    Window(Result<KeyList, ClientError>),
    Counts(Result<KeyCounts, ClientError>),
    Scopes(Result<Vec<ScopeInfo>, ClientError>),
    Policy(Result<crate::key::policy::Policy, ClientError>),
    /// The policy now in force, after a save.
    PolicySet(Result<crate::key::policy::Policy, ClientError>),
    /// The final answer to a create, after any retries.
    Created(Box<Result<CreatedKey, ClientError>>),
    Revoked(Box<Result<ApiKey, ClientError>>),
    Rotated(Box<Result<RotatedKey, ClientError>>),
    Issued(Box<Result<CreatedKey, ClientError>>),
    Audit(Result<AuditList, ClientError>),
    KeyUsage(Box<Result<crate::api::KeyUsage, ClientError>>),
    OrgUsage(Box<Result<crate::api::OrgUsage, ClientError>>),
    Webhooks(WebhookAnswer),
}

/// What came back for a [`WebhookOp`] (the same kind).
#[derive(Debug)]
pub enum WebhookAnswer {
    List(Result<crate::api::webhooks::WebhookList, ClientError>),
    /// The endpoint's id, the page asked for, and the page.
    Deliveries(
        String,
        DeliveriesPage,
        Result<crate::api::webhooks::WebhookDeliveryList, ClientError>,
    ),
    /// The new endpoint and its secret (shown once).
    Added(Box<Result<crate::api::webhooks::CreatedWebhook, ClientError>>),
    Tested(Result<crate::api::webhooks::WebhookTestQueued, ClientError>),
    /// The endpoint's id, and the endpoint as it was.
    Removed(String, Result<crate::api::webhooks::Webhook, ClientError>),
    /// The endpoint as it is now.
    Enabled(Result<crate::api::webhooks::Webhook, ClientError>),
    /// The endpoint and its new secret (shown once).
    SecretRotated(Box<Result<crate::api::webhooks::CreatedWebhook, ClientError>>),
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
    /// Stop request `id` if it still runs: nobody wants its answer any more
    /// (a newer window query replaced it). Its HTTP request is dropped, so
    /// the service cancels its query; its answer never comes.
    Cancel(RequestId),
}

/// The one retry policy: a request that failed in a way that may pass by
/// itself ([`ClientError::is_transient`]: no answer, a timeout, an overloaded
/// service) is tried again after the n-th delay; the last delay repeats while
/// `forever`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub delays_ms: &'static [u64],
    pub forever: bool,
}

impl RetryPolicy {
    /// How long to wait before trying again after `failures` failures in a
    /// row (the last with `error`); `None`: do not try again by itself.
    pub fn delay(&self, error: &ClientError, failures: u32) -> Option<std::time::Duration> {
        if !error.is_transient() || failures == 0 {
            return None;
        }
        let index = usize::try_from(failures - 1).unwrap_or(usize::MAX);
        let ms = match self.delays_ms.get(index) {
            Some(ms) => *ms,
            None if self.forever => *self.delays_ms.last()?,
            None => return None,
        };
        Some(std::time::Duration::from_millis(ms))
    }
}

/// Loading the keys: 2 s, 4 s, then every 8 s, while the banner says so.
pub const LOAD_RETRY: RetryPolicy = RetryPolicy {
    delays_ms: &[2_000, 4_000, 8_000],
    forever: true,
};

/// A create whose answer was lost: three more tries, with the same
/// idempotency key, so at most one key is made.
pub const CREATE_RETRY: RetryPolicy = RetryPolicy {
    delays_ms: &[250, 750, 1_500],
    forever: false,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_back_off_and_others_are_not_retried() {
        let t = ClientError::Timeout;
        let ms = |p: &RetryPolicy, n| p.delay(&t, n).map(|d| d.as_millis());
        assert_eq!(
            (1..=5).map(|n| ms(&LOAD_RETRY, n)).collect::<Vec<_>>(),
            [
                Some(2_000),
                Some(4_000),
                Some(8_000),
                Some(8_000),
                Some(8_000)
            ]
        );
        assert_eq!(
            (1..=4).map(|n| ms(&CREATE_RETRY, n)).collect::<Vec<_>>(),
            [Some(250), Some(750), Some(1_500), None]
        );
        let refused = ClientError::Forbidden("no".into());
        assert_eq!(LOAD_RETRY.delay(&refused, 1), None);
    }
}
