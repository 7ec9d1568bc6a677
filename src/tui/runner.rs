//! The core loop of one session: input events and finished requests become
//! actions, what the app asks for is run (requests in their own tasks,
//! copies at once), and a frame is drawn only when something changed.

use std::collections::HashMap;

use futures_util::{Stream, StreamExt};
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::action::{self, Action, Answer, Effect, Request, RequestId, WebhookAnswer, WebhookOp};
use super::app::{App, PAGE_SIZE};
use super::clipboard::Clipboard;
use super::event::InputEvent;
use super::term::backend::Resizable;
use super::{term, view, AnyError};
use crate::api::KeyListQuery;
use crate::client::Client;

/// Runs `app` on one session until it quits: `input` is the session's
/// events (the end of it means the terminal is gone), frames go to
/// `terminal`, copies to `clipboard`, requests to `client`.
pub async fn event_loop<B, S>(
    terminal: &mut Terminal<B>,
    mut input: S,
    clipboard: &mut dyn Clipboard,
    app: &mut App,
    client: Client,
) -> Result<(), AnyError>
where
    B: Resizable,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = InputEvent> + Unpin,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut running = Running::default();
    let mut input_open = true;
    app.start();
    loop {
        run_effects(app, &client, &tx, clipboard, &mut running);
        if app.should_quit() {
            settle_on_exit(app, &mut rx, &client).await;
            return Ok(());
        }
        if app.take_dirty() {
            term::backend::draw(terminal, |f| view::draw(f, app))?;
        }
        let wait = (app.next_wakeup() - app.clock.now())
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            event = input.next(), if input_open => match event {
                Some(InputEvent::Key(key)) => app.update(Action::Key(key)),
                Some(InputEvent::Paste(text)) => app.update(Action::Paste(text)),
                Some(InputEvent::Resize(w, h)) => {
                    term::backend::resize(terminal, w, h)?;
                    app.update(Action::Resize(w, h));
                }
                Some(InputEvent::Quit(why)) => {
                    tracing::info!("{why}");
                    app.update(Action::Quit);
                }
                // No more input: the terminal is gone.
                None => {
                    input_open = false;
                    app.update(Action::Quit);
                }
            },
            Some(action) = rx.recv() => app.update(action),
            () = tokio::time::sleep(wait) => app.update(Action::Tick),
        }
    }
}

/// On the way out (a signal, or a forced quit) with creates, rotations or a
/// policy save still on their way: waits briefly for their answers, revokes
/// any key whose secret can no longer be shown, so no key is left that
/// nobody knows, and logs whether the policy was saved.
async fn settle_on_exit(app: &App, rx: &mut mpsc::UnboundedReceiver<Action>, client: &Client) {
    let mut pending = app.mutations() + usize::from(app.policy_saving().is_some());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(700);
    while pending > 0 {
        let Ok(Some(action)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        let Action::Answer { id, answer } = action else {
            continue;
        };
        if !app.is_change(id) {
            continue;
        }
        pending -= 1;
        let unseen = match answer {
            Answer::Created(result) => match *result {
                Ok(created) => Some(created.api_key),
                Err(crate::client::ClientError::IdempotentRepeat(key)) => Some(*key),
                Err(_) => None,
            },
            Answer::Rotated(result) => (*result).ok().map(|rotated| rotated.api_key),
            Answer::Issued(result) => (*result).ok().map(|issued| issued.api_key),
            Answer::PolicySet(result) => {
                match result {
                    Ok(_) => tracing::info!("the policy was saved while keydeck was quitting"),
                    Err(e) => tracing::warn!(error = %e, "the policy was not saved"),
                }
                None
            }
            _ => None,
        };
        if let Some(key) = unseen {
            tracing::warn!(key_id = %key.id, "created while keydeck was quitting; its secret was never shown, so it is revoked");
            let revoke = client.revoke_key(&key.id);
            if !matches!(
                tokio::time::timeout(std::time::Duration::from_millis(500), revoke).await,
                Ok(Ok(_))
            ) {
                tracing::error!(key_id = %key.id, "could not revoke it: revoke it by hand");
            }
        }
    }
    if pending > 0 {
        tracing::warn!(
            pending,
            "quit with changes to keys or the policy still unanswered; check the key list and the policy"
        );
    }
}

/// The requests running in their own tasks, so that one the app no longer
/// wants ([`Effect::Cancel`]) can be stopped.
#[derive(Debug, Default)]
pub struct Running(HashMap<RequestId, tokio::task::AbortHandle>);

impl Running {
    fn started(&mut self, id: RequestId, task: tokio::task::AbortHandle) {
        // Those that finished are forgotten as new ones start: the map holds
        // about what runs now.
        self.0.retain(|_, t| !t.is_finished());
        self.0.insert(id, task);
    }

    fn cancel(&mut self, id: RequestId) {
        if let Some(task) = self.0.remove(&id) {
            task.abort();
        }
    }
}

/// Runs what the app asked for: copies at once (they write to the terminal,
/// between frames), everything else in its own task that reports back, and
/// stops the requests it no longer wants.
pub fn run_effects(
    app: &mut App,
    client: &Client,
    tx: &mpsc::UnboundedSender<Action>,
    clipboard: &mut dyn Clipboard,
    running: &mut Running,
) {
    loop {
        let effects = app.take_effects();
        if effects.is_empty() {
            return;
        }
        for effect in effects {
            match effect {
                Effect::Copy(secret) => {
                    let system = clipboard.copy(secret.expose());
                    app.update(Action::Copied { system });
                }
                Effect::CopyText(text) => {
                    clipboard.copy(&text);
                }
                Effect::Send(id, request) => {
                    let cancellable = !request.is_change();
                    let task = spawn_request(id, request, client.clone(), tx.clone());
                    if cancellable {
                        running.started(id, task);
                    }
                }
                Effect::Cancel(id) => running.cancel(id),
            }
        }
    }
}

/// One request of the webhooks screen, its answer.
async fn webhook_request(client: &Client, op: WebhookOp) -> WebhookAnswer {
    use crate::client::WebhookCall;
    match op {
        WebhookOp::List => WebhookAnswer::List(client.webhooks(WebhookCall::List).await),
        WebhookOp::Deliveries { id, page } => {
            use crate::api::webhooks::DeliveryListQuery;
            use action::DeliveriesPage;
            let mut query = DeliveryListQuery {
                limit: Some(crate::tui::popup::webhook_deliveries::PAGE),
                ..DeliveryListQuery::default()
            };
            match &page {
                DeliveriesPage::Newest => {}
                DeliveriesPage::Older(cursor) => query.cursor = Some(cursor.clone()),
                DeliveriesPage::Newer(cursor) => query.before = Some(cursor.clone()),
                DeliveriesPage::Oldest => query.from = Some("end".into()),
            }
            let result = client.webhooks(WebhookCall::Deliveries(&id, &query)).await;
            WebhookAnswer::Deliveries(id, page, result)
        }
        WebhookOp::Add(body) => {
            WebhookAnswer::Added(Box::new(client.webhooks(WebhookCall::Add(&body)).await))
        }
        WebhookOp::Test(id) => WebhookAnswer::Tested(client.webhooks(WebhookCall::Test(&id)).await),
        WebhookOp::Remove(id) => {
            let result = client.webhooks(WebhookCall::Remove(&id)).await;
            WebhookAnswer::Removed(id, result)
        }
        WebhookOp::Enable(id) => {
            WebhookAnswer::Enabled(client.webhooks(WebhookCall::Enable(&id)).await)
        }
        WebhookOp::RotateSecret(id) => {
            // The service's overlap: the old secret signs too for a day.
            let body = crate::api::webhooks::RotateWebhookSecretRequest::default();
            let result = client.webhooks(WebhookCall::RotateSecret(&id, &body)).await;
            WebhookAnswer::SecretRotated(Box::new(result))
        }
    }
}

/// Runs one request in its own task; its answer comes back as an action.
/// Creates and revokes are never cancelled half-way: the task finishes even
/// if the UI has moved on or quit.
fn spawn_request(
    id: RequestId,
    request: Request,
    client: Client,
    tx: mpsc::UnboundedSender<Action>,
) -> tokio::task::AbortHandle {
    let task = tokio::spawn(async move {
        let answer = match request {
            Request::LoadPage {
                cursor,
                changed_since,
                limit,
                ..
            } => {
                let query = KeyListQuery {
                    limit: Some(limit.min(PAGE_SIZE)),
                    cursor,
                    changed_since,
                    ..KeyListQuery::default()
                };
                let result = client.list_keys(&query).await;
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "loading keys failed");
                }
                Answer::Page(result)
            }
            Request::LoadWindow { query, .. } => {
                let result = client.list_keys(&query).await;
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "loading a page of keys failed");
                }
                Answer::Window(result)
            }
            Request::LoadCounts { q, .. } => {
                let query = crate::api::KeyCountsQuery { q };
                Answer::Counts(client.key_counts(&query).await)
            }
            Request::LoadScopes => Answer::Scopes(client.scopes().await),
            Request::LoadPolicy => Answer::Policy(client.policy().await),
            Request::SetPolicy(policy) => Answer::PolicySet(client.set_policy(&policy).await),
            Request::CreateKey {
                request,
                idempotency_key,
            } => {
                let mut result = client.create_key(&request, Some(&idempotency_key)).await;
                let mut failures = 0;
                while let Err(e) = &result {
                    failures += 1;
                    let Some(delay) = action::CREATE_RETRY.delay(e, failures) else {
                        break;
                    };
                    tracing::warn!(error = %e, "create got no answer; retrying with the same Idempotency-Key");
                    tokio::time::sleep(delay).await;
                    result = client.create_key(&request, Some(&idempotency_key)).await;
                }
                if let Ok(created) = &result {
                    tracing::info!(key_id = %created.api_key.id, "key created");
                }
                Answer::Created(Box::new(result))
            }
            Request::RevokeKey { id } => Answer::Revoked(Box::new(client.revoke_key(&id).await)),
            Request::RotateKey { id, grace_seconds } => {
                Answer::Rotated(Box::new(client.rotate_key(&id, grace_seconds).await))
            }
            Request::IssueSecret { id } => Answer::Issued(Box::new(client.issue_secret(&id).await)),
            Request::LoadAudit { key } => {
                let query = crate::api::AuditListQuery {
                    limit: Some(500),
                    cursor: None,
                    api_key_id: key,
                };
                Answer::Audit(client.audit_logs(&query).await)
            }
            Request::LoadOrgUsage { window } => {
                Answer::OrgUsage(Box::new(client.org_usage(window).await))
            }
            Request::LoadKeyUsage { id, window } => {
                Answer::KeyUsage(Box::new(client.key_usage(&id, window).await))
            }
            Request::Webhooks(op) => Answer::Webhooks(webhook_request(&client, op).await),
        };
        // The UI may have quit meanwhile; then nobody needs the answer.
        let _ = tx.send(Action::Answer { id, answer });
    });
    task.abort_handle()
}
