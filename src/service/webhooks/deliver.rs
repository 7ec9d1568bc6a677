//! Sending claimed deliveries: signed as Standard Webhooks say, retried with
//! exponential backoff and jitter for a day, the endpoint's health recorded.

use std::error::Error as _;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::target::{self, RefusedAddress, MAX_ANSWER_BYTES};
use crate::clock::Clock;
use crate::key::webhook::signature_header;
use crate::store::{Attempt, Claimed, Store};

/// The first retry's delay; each next one is 4 times longer, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::seconds(5);
const MAX_DELAY: Duration = Duration::hours(10);
/// A delivery is retried until a day after it was made, then given up; an
/// endpoint whose every attempt failed for a day is disabled.
pub const GIVE_UP_AFTER: Duration = Duration::hours(24);
/// How long a claimed delivery is held by the replica sending it.
pub const LEASE: Duration = Duration::seconds(60);
/// Deliveries claimed at once.
const BATCH: u32 = 16;

/// When to try again after `attempts` failed attempts (the one just made
/// included), with ±10 % jitter; `None` once a day has passed.
pub fn retry_at(
    attempts: i64,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let give_up = created + GIVE_UP_AFTER;
    if now >= give_up {
        return None;
    }
    let exp = attempts.clamp(1, 20) - 1;
    let base_ms = (FIRST_DELAY.num_milliseconds() as f64 * 4f64.powi(exp as i32))
        .min(MAX_DELAY.num_milliseconds() as f64);
    let jitter = 0.9 + 0.2 * (getrandom::u32().unwrap_or(0) as f64 / u32::MAX as f64);
    let next = now + Duration::milliseconds((base_ms * jitter) as i64);
    Some(next.min(give_up))
}

/// The HTTP client of webhook sends and whether it may reach internal addresses.
pub struct Sender {
    http: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    pub fn new(allow_private: bool) -> Self {
        Self {
            http: target::client(allow_private),
            allow_private,
        }
    }
}

/// Claims what is due and sends it, each delivery once per lease.
pub async fn run_due(store: &Arc<dyn Store>, clock: &Arc<dyn Clock>, sender: &Sender) {
    let now = clock.now();
    let claimed = match store
        .webhooks()
        .claim_deliveries(now, now + LEASE, BATCH)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "webhooks: cannot claim deliveries");
            return;
        }
    };
    let sends = claimed.into_iter().map(|d| async move {
        let attempt = send(sender, clock.as_ref(), &d).await;
        let at = clock.now();
        match &attempt {
            Attempt::Delivered { status } => {
                tracing::info!(delivery = d.id, event = %d.event_id, endpoint = %d.endpoint_id, status, "webhook delivered");
            }
            Attempt::Failed { error, retry_at, .. } => {
                tracing::info!(delivery = d.id, event = %d.event_id, endpoint = %d.endpoint_id, %error, retry = ?retry_at, "webhook attempt failed");
            }
        }
        match store
            .webhooks()
            .finish_attempt(&d, at, &attempt, at - GIVE_UP_AFTER)
            .await
        {
            Ok(true) => tracing::warn!(endpoint = %d.endpoint_id, "webhook endpoint disabled after a day of failures"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, delivery = d.id, "webhooks: cannot record an attempt"),
        }
    });
    futures_util::future::join_all(sends).await;
}

/// One attempt: POST the payload, signed with every secret that signs.
async fn send(sender: &Sender, clock: &dyn Clock, d: &Claimed) -> Attempt {
    let now = clock.now();
    let fail = |status: Option<u16>, error: String| Attempt::Failed {
        status,
        error,
        retry_at: retry_at(d.attempts + 1, d.created_at, now),
    };
    let url = match reqwest::Url::parse(&d.url) {
        Ok(u) => u,
        Err(_) => return fail(None, "the endpoint's URL is not valid".into()),
    };
    // A literal address is not resolved: checked here (names by the resolver).
    if let Some(ip) = url
        .host_str()
        .and_then(|h| h.trim_matches(['[', ']']).parse().ok())
    {
        if !target::allowed(ip, sender.allow_private) {
            return fail(None, RefusedAddress.to_string());
        }
    }
    let timestamp = now.timestamp();
    let body = d.payload.clone().into_bytes();
    let secrets: Vec<_> = d.secrets.iter().collect();
    let signature = signature_header(&secrets, &d.event_id, timestamp, &body);
    let sent = sender
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let mut answer = match sent {
        Ok(a) => a,
        Err(e) => return fail(None, describe(&e)),
    };
    let status = answer.status();
    // Read a little of the answer (so the connection can be reused), drop it.
    let mut read = 0;
    while read < MAX_ANSWER_BYTES {
        match answer.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    if status.is_success() {
        Attempt::Delivered {
            status: status.as_u16(),
        }
    } else if status.is_redirection() {
        fail(
            Some(status.as_u16()),
            format!("HTTP {}: redirects are not followed", status.as_u16()),
        )
    } else {
        fail(Some(status.as_u16()), format!("HTTP {}", status.as_u16()))
    }
}

/// A failed send, briefly: timeout, refused address, connection failure.
fn describe(e: &reqwest::Error) -> String {
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<RefusedAddress>() {
            return RefusedAddress.to_string();
        }
        source = s.source();
    }
    if e.is_timeout() {
        format!("no answer within {} s", target::SEND_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_grow_and_stop_after_a_day() {
        let created = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut now = created;
        let mut last = Duration::zero();
        let mut n = 0;
        while let Some(next) = retry_at(n + 1, created, now) {
            let delay = next - now;
            assert!(
                delay > last || next == created + GIVE_UP_AFTER || delay >= MAX_DELAY * 9 / 10,
                "{n}: {delay}"
            );
            assert!(delay <= MAX_DELAY * 11 / 10);
            last = delay;
            now = next;
            n += 1;
            assert!(n < 30);
        }
        assert_eq!(now, created + GIVE_UP_AFTER);
        let first = retry_at(1, created, created).unwrap() - created;
        assert!(first >= Duration::milliseconds(4500) && first <= Duration::milliseconds(5500));
    }
}
