//! `keydeck webhooks add / list / remove / test / deliveries / rotate-secret /
//! enable` (also over SSH): the organisation's webhook endpoints, for admins.

use super::console::note;
use super::output::{self, Cell};
use super::CliError;
use crate::api::webhooks::{
    CreateWebhookRequest, CreatedWebhook, DeliveryListQuery, RotateWebhookSecretRequest, Webhook,
    WebhookList, WebhookTestQueued,
};
use crate::cli::WebhooksCommand;
use crate::client::{Client, DeliveriesQuery, WebhookCall};
use crate::key::webhook::redacted_url;

/// Runs one command with `client` (over SSH: the session's own client).
pub async fn run_on(command: WebhooksCommand, client: &Client) -> Result<(), CliError> {
    match command {
        WebhooksCommand::Add {
            endpoint,
            events,
            json,
        } => {
            let events = events.into_iter().map(|e| e.trim().to_owned()).collect();
            let body = CreateWebhookRequest {
                url: endpoint,
                events,
            };
            let created: CreatedWebhook = client.webhooks(WebhookCall::Add(&body)).await?;
            if json {
                return output::print_json(&created);
            }
            output::print_secret(&created.secret)?;
            note!(
                "Added webhook {} for {}: its signing secret is above, shown this once.",
                output::printable(&created.webhook.id),
                output::printable(&redacted_url(&created.webhook.url)),
            );
            Ok(())
        }
        WebhooksCommand::List { json } => {
            let list: WebhookList = client.webhooks(WebhookCall::List).await?;
            if json {
                return output::print_json(&list);
            }
            output::print(&table(&list.data))
        }
        WebhooksCommand::Remove { id } => {
            let gone: Webhook = client.webhooks(WebhookCall::Remove(&id)).await?;
            note!(
                "Removed webhook {} ({}).",
                output::printable(&gone.id),
                output::printable(&redacted_url(&gone.url))
            );
            Ok(())
        }
        WebhooksCommand::Test { id } => {
            let queued: WebhookTestQueued = client.webhooks(WebhookCall::Test(&id)).await?;
            output::print(&format!("{}\n", output::printable(&queued.event_id)))?;
            note!(
                "Queued a webhook.test event: see `keydeck webhooks deliveries {}`.",
                output::printable(&id)
            );
            Ok(())
        }
        WebhooksCommand::Deliveries { id, limit, json } => {
            let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
            let query = DeliveriesQuery {
                id,
                query: DeliveryListQuery {
                    limit: Some(limit.min(500)),
                    ..DeliveryListQuery::default()
                },
            };
            if json {
                return output::print_json_pages(client, query, wanted).await;
            }
            let list = client.all_pages(query, wanted).await?;
            let rows: Vec<Vec<Cell>> = list
                .iter()
                .map(|d| {
                    vec![
                        Cell::from(d.event_id.as_str()),
                        Cell::from(d.event_type.as_str()),
                        Cell::from(d.status.as_str()),
                        Cell::from(d.attempts.to_string().as_str()),
                        Cell::from(
                            d.last_response_code
                                .map_or("-".into(), |c| c.to_string())
                                .as_str(),
                        ),
                        Cell::from(
                            d.next_attempt_at
                                .map_or("-".into(), |t| t.to_rfc3339())
                                .as_str(),
                        ),
                        Cell::from(d.last_error.as_deref().unwrap_or("")),
                    ]
                })
                .collect();
            output::print(&output::table(
                &[
                    "EVENT", "TYPE", "STATUS", "ATTEMPTS", "LAST", "NEXT TRY", "ERROR",
                ],
                &rows,
                false,
            ))
        }
        WebhooksCommand::RotateSecret {
            id,
            overlap_seconds,
        } => {
            let body = RotateWebhookSecretRequest { overlap_seconds };
            let rotated: CreatedWebhook = client
                .webhooks(WebhookCall::RotateSecret(&id, &body))
                .await?;
            output::print_secret(&rotated.secret)?;
            match rotated.webhook.previous_secret_until {
                Some(until) => note!(
                    "New signing secret above; the previous one also signs until {}.",
                    until.to_rfc3339()
                ),
                None => note!("New signing secret above."),
            }
            Ok(())
        }
        WebhooksCommand::Enable { id } => {
            let on: Webhook = client.webhooks(WebhookCall::Enable(&id)).await?;
            note!("Webhook {} is {}.", output::printable(&on.id), on.health);
            Ok(())
        }
    }
}

/// The endpoints as a table: id, health, events, URL (credentials it may
/// hold redacted: `--json` has it whole).
fn table(hooks: &[Webhook]) -> String {
    let rows: Vec<Vec<Cell>> = hooks
        .iter()
        .map(|h| {
            vec![
                Cell::from(h.id.as_str()),
                Cell::from(h.health.as_str()),
                Cell::from(h.events.join(",").as_str()),
                Cell::from(redacted_url(&h.url).as_str()),
            ]
        })
        .collect();
    output::table(&["ID", "HEALTH", "EVENTS", "URL"], &rows, false)
}
