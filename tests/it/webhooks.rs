//! Webhook notifications (issue 24): a receiver in the test (axum on
//! loopback) gets the events, and checks their Standard Webhooks signatures
//! with its own HMAC, not the service's code.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::process::ServerProcess;
use crate::common::util::admin_token;
use crate::common::{manual_clock, Backend, TestServer};
use keydeck::clock::{Clock, SystemClock};

on_both_backends!(
    changes_arrive_signed_each_once,
    a_failing_receiver_gets_the_same_id_with_growing_delays,
    a_receiver_that_never_answers_2xx_gets_its_endpoint_disabled,
    a_failed_transaction_makes_no_event,
    a_revoke_survives_kill_9,
    two_replicas_send_each_of_100_changes_once,
    expiring_expired_and_digest_fire_once_on_two_replicas,
    targets_are_checked_and_a_rotated_secret_signs_with_both,
    users_added_and_removed_by_an_operator_are_events,
    a_leak_report_sends_exposed_then_revoked_for_a_leak,
    delivered_events_are_pruned_after_the_retention_never_pending_ones,
    deliveries_are_read_a_page_at_a_time_from_either_end,
    the_cli_reads_every_delivery_once_following_the_pages,
    an_endpoint_urls_credentials_stay_out_of_audit_lists_and_the_log,
);

/// What the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
    path: String,
}

impl Arrival {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub(crate) fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap().to_owned()
    }
}

#[derive(Default)]
struct Inbox {
    arrivals: Vec<Arrival>,
    /// Statuses to answer next, in order; 200 once empty (or `always`).
    script: Vec<u16>,
    always: Option<u16>,
}

/// A receiver on loopback (axum) that records what it gets.
#[derive(Clone)]
pub(crate) struct Receiver {
    inbox: Arc<Mutex<Inbox>>,
    base: String,
}

async fn receive(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let h = |n: &str| {
        headers
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let mut inbox = inbox.lock().unwrap();
    inbox.arrivals.push(Arrival {
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp").parse().unwrap_or(-1),
        signature: h("webhook-signature"),
        body,
        path: uri.path().to_owned(),
    });
    if uri.path() == "/redirect" {
        return (AxStatus::FOUND, [("location", "/elsewhere")], "").into_response();
    }
    let status = match inbox.always {
        Some(s) => s,
        None if inbox.script.is_empty() => 200,
        None => inbox.script.remove(0),
    };
    (
        AxStatus::from_u16(status).unwrap(),
        "a body that is never logged",
    )
        .into_response()
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let app = axum::Router::new()
            .route("/{*path}", post(receive))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            inbox,
            base: format!("http://{addr}"),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn arrivals(&self) -> Vec<Arrival> {
        self.inbox.lock().unwrap().arrivals.clone()
    }

    /// Waits (up to 15 s) until `done` holds of the arrivals.
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&[Arrival]) -> bool,
    ) -> Vec<Arrival> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.arrivals();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; got {:#?}",
                got.iter()
                    .map(|a| (a.kind(), a.id.clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The Standard Webhooks check, written here from the specification: the
/// HMAC-SHA256 of `id.timestamp.body` with the base64-decoded part of the
/// `whsec_` secret, base64, among the header's space-separated `v1,` signatures.
pub(crate) fn verifies(secret: &str, a: &Arrival) -> bool {
    let key_bytes = B64
        .decode(secret.strip_prefix("whsec_").expect("whsec_ secret"))
        .expect("base64 secret");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_bytes);
    let signed = format!("{}.{}.{}", a.id, a.timestamp, a.body);
    a.signature.split(' ').any(|sig| {
        sig.strip_prefix("v1,")
            .and_then(|b| B64.decode(b).ok())
            .is_some_and(|mac| ring::hmac::verify(&key, signed.as_bytes(), &mac).is_ok())
    })
}

fn allow_private(config: &mut keydeck::service::ServiceConfig) {
    config.webhooks.allow_private = true;
    config.webhooks.poll = Duration::from_millis(30);
    config.webhooks.scan = Duration::from_millis(30);
}

async fn start(backend: &Backend, clock: Arc<dyn Clock>) -> TestServer {
    TestServer::start_with(backend, clock, allow_private).await
}

/// `POST /v1/webhooks`; (webhook id, secret).
pub(crate) async fn add_webhook(s: &TestServer, url: &str, events: &[&str]) -> (String, String) {
    let r = s
        .http
        .post(s.url("/v1/webhooks"))
        .bearer_auth(&s.admin_token)
        .json(&json!({ "url": url, "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    (
        v["webhook"]["id"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    )
}

async fn deliveries(s: &TestServer, id: &str) -> Vec<Value> {
    let v = s
        .get_json(&format!("/v1/webhooks/{id}/deliveries"), &s.admin_token)
        .await;
    v["data"].as_array().unwrap().clone()
}

async fn audit_actions(s: &TestServer) -> Vec<String> {
    let v = s.get_json("/v1/audit-logs", &s.admin_token).await;
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn changes_arrive_signed_each_once(backend: Backend) {
    let rx = Receiver::start().await;
    let s = start(&backend, Arc::new(SystemClock)).await;
    let (_, secret) = add_webhook(
        &s,
        &rx.url("/hook"),
        &[
            "api_key.created",
            "api_key.revoked",
            "api_key.rotated",
            "policy.updated",
        ],
    )
    .await;
    let (a, a_secret) = s.create_key("alpha", &["sessions:read"]).await;
    assert_eq!(
        s.revoke(a["id"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );
    let (b, _) = s.create_key("beta", &["sessions:read"]).await;
    let rotated: Value = s
        .http
        .post(s.url(&format!(
            "/v1/api-keys/{}/rotate",
            b["id"].as_str().unwrap()
        )))
        .bearer_auth(&s.admin_token)
        .json(&json!({ "grace_seconds": 60 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = s
        .http
        .put(s.url("/v1/policy"))
        .bearer_auth(&s.admin_token)
        .json(&json!({ "require_description": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let got = rx.wait_for("5 events", |a| a.len() >= 5).await;
    // Sent concurrently: in no promised order.
    let mut kinds: Vec<String> = got.iter().map(Arrival::kind).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "api_key.created",
            "api_key.created",
            "api_key.revoked",
            "api_key.rotated",
            "policy.updated"
        ],
    );
    for a in &got {
        assert!(verifies(&secret, a), "signature of {}", a.body);
        assert!(!verifies("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", a));
        assert!(a.id.starts_with("msg_"));
        assert!(!a.body.contains(&a_secret), "no key secret in a payload");
        assert!(!a.body.contains(rotated["secret"].as_str().unwrap()));
    }
    let mut ids: Vec<&str> = got.iter().map(|a| a.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "webhook-ids repeat only on retries");
    let of = |kind: &str| got.iter().find(|a| a.kind() == kind).unwrap().json();
    let revoked = of("api_key.revoked");
    assert_eq!(revoked["data"]["api_key"]["id"], a["id"]);
    assert_eq!(revoked["data"]["api_key"]["name"], "alpha");
    assert_eq!(revoked["data"]["api_key"]["prefix"], a["prefix"]);
    assert_eq!(revoked["data"]["reason"], "admin");
    let rot = of("api_key.rotated");
    assert_eq!(rot["data"]["api_key"]["id"], b["id"]);
    assert_eq!(rot["data"]["new_api_key"]["id"], rotated["api_key"]["id"]);
    assert_eq!(
        of("policy.updated")["data"]["policy"]["require_description"],
        true
    );
    // Nothing more (no duplicate) a moment later.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.arrivals().len(), 5);
    s.stop().await;
    backend.cleanup().await;
}

/// Moves the manual clock to each next try until `done`; the delays between tries.
async fn a_failing_receiver_gets_the_same_id_with_growing_delays(backend: Backend) {
    let rx = Receiver::start().await;
    rx.inbox.lock().unwrap().script = vec![500, 500, 500];
    let clock = manual_clock("2030-01-01T09:00:00Z".parse().unwrap());
    let s = start(&backend, clock.clone()).await;
    let (hook, secret) = add_webhook(&s, &rx.url("/hook"), &["api_key.created"]).await;
    s.create_key("gamma", &["sessions:read"]).await;
    let mut delays = Vec::new();
    for n in 1..=3 {
        rx.wait_for("an attempt", |a| a.len() == n).await;
        let d = wait_delivery(&s, &hook, |d| d["attempts"] == n as i64).await;
        assert_eq!(d["status"], "pending");
        assert_eq!(d["last_response_code"], 500);
        let next = time(&d["next_attempt_at"]);
        delays.push(next - time(&d["last_attempt_at"]));
        clock.set(next);
    }
    let got = rx.wait_for("the fourth attempt", |a| a.len() == 4).await;
    let d = wait_delivery(&s, &hook, |d| d["status"] == "delivered").await;
    assert_eq!(d["attempts"], 4);
    assert_eq!(d["last_response_code"], 200);
    assert!(
        got.iter().all(|a| a.id == got[0].id),
        "one webhook-id on every retry"
    );
    assert!(got.iter().all(|a| verifies(&secret, a)));
    assert!(
        delays.windows(2).all(|w| w[0] < w[1]) && delays[0] >= chrono::Duration::seconds(4),
        "growing delays: {delays:?}"
    );
    let list = s.get_json("/v1/webhooks", &s.admin_token).await;
    assert_eq!(list["data"][0]["health"], "healthy");
    s.stop().await;
    backend.cleanup().await;
}

/// The endpoint's newest delivery, once `done` holds of it (up to 15 s).
async fn wait_delivery(s: &TestServer, hook: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = deliveries(s, hook).await;
        if let Some(d) = list.first().filter(|d| done(d)) {
            return d.clone();
        }
        assert!(
            Instant::now() < deadline,
            "delivery never got there: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_receiver_that_never_answers_2xx_gets_its_endpoint_disabled(backend: Backend) {
    let rx = Receiver::start().await;
    rx.inbox.lock().unwrap().always = Some(503);
    let start_at: DateTime<Utc> = "2030-01-01T09:00:00Z".parse().unwrap();
    let clock = manual_clock(start_at);
    let s = start(&backend, clock.clone()).await;
    let (hook, _) = add_webhook(&s, &rx.url("/hook"), &["api_key.created"]).await;
    s.create_key("delta", &["sessions:read"]).await;
    let mut attempts = 0;
    let last = loop {
        attempts += 1;
        assert!(attempts < 30, "still retried after {attempts} attempts");
        let d = wait_delivery(&s, &hook, |d| d["attempts"] == attempts).await;
        if d["status"] != "pending" {
            break d;
        }
        clock.set(time(&d["next_attempt_at"]));
    };
    assert_eq!(last["status"], "failed");
    assert!(time(&last["last_attempt_at"]) - start_at >= chrono::Duration::hours(24));
    assert!(time(&last["last_attempt_at"]) - start_at <= chrono::Duration::hours(25));
    assert_eq!(rx.arrivals().len() as i64, attempts);
    let list = s.get_json("/v1/webhooks", &s.admin_token).await;
    assert_eq!(list["data"][0]["health"], "disabled", "{list}");
    assert!(audit_actions(&s)
        .await
        .contains(&"webhook.disabled".to_owned()));

    // Disabled: a new event waits; enabling sends it.
    s.create_key("epsilon", &["sessions:read"]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        rx.arrivals().len() as i64,
        attempts,
        "nothing sent while disabled"
    );
    rx.inbox.lock().unwrap().always = None;
    let r = s
        .http
        .post(s.url(&format!("/v1/webhooks/{hook}/enable")))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    rx.wait_for("the event after enabling", |a| {
        a.last()
            .is_some_and(|a| a.json()["data"]["api_key"]["name"] == "epsilon")
    })
    .await;
    assert!(audit_actions(&s)
        .await
        .contains(&"webhook.enabled".to_owned()));
    s.stop().await;
    backend.cleanup().await;
}

async fn a_failed_transaction_makes_no_event(backend: Backend) {
    let rx = Receiver::start().await;
    let s = start(&backend, Arc::new(SystemClock)).await;
    let (hook, _) = add_webhook(&s, &rx.url("/hook"), &["api_key.created"]).await;
    // The event's insert fails for one key, after the key, its audit entry
    // and its delivery were written in the same transaction: the whole
    // change must be undone.
    let url = backend.database_url();
    let ddl: &[&str] = if backend.name == "postgres" {
        &[
            "CREATE FUNCTION doomed() RETURNS trigger AS $$ BEGIN \
             IF NEW.payload LIKE '%doomed%' THEN RAISE EXCEPTION 'doomed'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER doomed AFTER INSERT ON webhook_events \
             FOR EACH ROW EXECUTE FUNCTION doomed()",
        ]
    } else {
        &["CREATE TRIGGER doomed AFTER INSERT ON webhook_events \
           WHEN NEW.payload LIKE '%doomed%' BEGIN SELECT RAISE(ABORT, 'doomed'); END"]
    };
    run_sql(&url, ddl).await;
    let r = s
        .create_key_as(
            &s.admin_token,
            json!({ "name": "doomed", "scopes": ["sessions:read"] }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    s.create_key("fine", &["sessions:read"]).await;
    let got = rx
        .wait_for("the event of the key that exists", |a| !a.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got_now = rx.arrivals();
    assert_eq!(got_now.len(), 1, "{got:?}");
    assert_eq!(got_now[0].json()["data"]["api_key"]["name"], "fine");
    assert_eq!(deliveries(&s, &hook).await.len(), 1);
    let keys = s.get_json("/v1/api-keys", &s.admin_token).await;
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        1,
        "the failed key is not there"
    );
    assert_eq!(
        count_sql(
            &url,
            "SELECT COUNT(*) FROM webhook_events WHERE payload LIKE '%doomed%'"
        )
        .await,
        0
    );
    s.stop().await;
    backend.cleanup().await;
}

pub(crate) async fn run_sql(url: &str, statements: &[&str]) {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        for st in statements {
            sqlx::Executor::execute(&mut c, *st).await.unwrap();
        }
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        for st in statements {
            sqlx::Executor::execute(&mut c, *st).await.unwrap();
        }
    }
}

pub(crate) async fn count_sql(url: &str, query: &str) -> i64 {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(query).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(query).fetch_one(&mut c).await.unwrap()
    }
}

async fn a_revoke_survives_kill_9(backend: Backend) {
    let rx = Receiver::start().await;
    let dir = backend.data_dir.path().to_path_buf();
    let http = reqwest::Client::new();
    let env = [("KEYDECK_WEBHOOKS_ALLOW_PRIVATE", "true")];
    let server = ServerProcess::spawn_with(&backend, &dir, &dir.join("serve-1.log"), &env);
    let t = admin_token(&dir);
    let r = http
        .post(server.url("/v1/webhooks"))
        .bearer_auth(&t)
        .json(&json!({ "url": rx.url("/hook"), "events": ["api_key.revoked"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let secret = r.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let k: Value = http
        .post(server.url("/v1/api-keys"))
        .bearer_auth(&t)
        .json(&json!({ "name": "doomed-process", "scopes": ["sessions:read"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = k["api_key"]["id"].as_str().unwrap();
    let r = http
        .delete(server.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    server.kill_9();
    let server = ServerProcess::spawn_with(&backend, &dir, &dir.join("serve-2.log"), &env);
    let got = rx
        .wait_for("the revoke's event", |a| {
            a.iter().any(|a| a.kind() == "api_key.revoked")
        })
        .await;
    let revoked = got.iter().find(|a| a.kind() == "api_key.revoked").unwrap();
    assert_eq!(revoked.json()["data"]["api_key"]["id"], id);
    assert!(verifies(&secret, revoked));
    drop(server);
    backend.cleanup().await;
}

async fn two_replicas_send_each_of_100_changes_once(backend: Backend) {
    let rx = Receiver::start().await;
    let a = start(&backend, Arc::new(SystemClock)).await;
    let b = start(&backend, Arc::new(SystemClock)).await;
    add_webhook(&a, &rx.url("/hook"), &["api_key.created"]).await;
    for i in 0..100 {
        let s = if i % 2 == 0 { &a } else { &b };
        s.create_key(&format!("k{i}"), &["sessions:read"]).await;
    }
    rx.wait_for("100 events", |got| got.len() >= 100).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.arrivals();
    let mut ids: Vec<&str> = got.iter().map(|a| a.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 100, "100 distinct webhook-ids");
    assert_eq!(got.len(), 100, "each sent once: no retries were needed");
    a.stop().await;
    b.stop().await;
    backend.cleanup().await;
}

async fn expiring_expired_and_digest_fire_once_on_two_replicas(backend: Backend) {
    let rx = Receiver::start().await;
    let t0: DateTime<Utc> = "2030-01-01T06:00:00Z".parse().unwrap();
    let clock = manual_clock(t0);
    let a = start(&backend, clock.clone()).await;
    let b = start(&backend, clock.clone()).await;
    add_webhook(
        &a,
        &rx.url("/hook"),
        &["api_key.expiring", "api_key.expired", "digest.daily"],
    )
    .await;
    let r = a
        .create_key_as(
            &a.admin_token,
            json!({ "name": "short", "scopes": ["sessions:read"],
                    "expires_at": (t0 + chrono::Duration::days(3)).to_rfc3339() }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let key: Value = r.json().await.unwrap();
    let id = key["api_key"]["id"].as_str().unwrap().to_owned();
    // Events by their webhook-id: delivery is at least once, and the test's
    // clock jumps (hours at a time) can end a claim whose send is in flight,
    // so that the other replica sends the same event again (seen: the first
    // digest twice, one id). Each event is produced once: one id.
    let of = |kind: &'static str| {
        move |got: &[Arrival]| {
            let mut ids: Vec<&str> = got
                .iter()
                .filter(|a| a.kind() == kind)
                .map(|a| a.id.as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len()
        }
    };
    // Within the policy's 7 days: once. No digest before 08:00.
    rx.wait_for("expiring", |g| of("api_key.expiring")(g) == 1)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(of("api_key.expiring")(&rx.arrivals()), 1);
    assert_eq!(of("digest.daily")(&rx.arrivals()), 0);
    // 08:00: the day's digest, once.
    clock.set(t0 + chrono::Duration::hours(3));
    rx.wait_for("digest", |g| of("digest.daily")(g) == 1).await;
    // A day before expiry: the second expiring, once.
    clock.set(t0 + chrono::Duration::hours(60));
    rx.wait_for("expiring a day before", |g| of("api_key.expiring")(g) == 2)
        .await;
    // Past it: expired, once; and the next day's digest.
    clock.set(t0 + chrono::Duration::hours(73));
    rx.wait_for("expired", |g| of("api_key.expired")(g) == 1)
        .await;
    rx.wait_for("second digest", |g| of("digest.daily")(g) == 2)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.arrivals();
    assert_eq!(of("api_key.expiring")(&got), 2);
    assert_eq!(of("api_key.expired")(&got), 1);
    assert_eq!(of("digest.daily")(&got), 2);
    let mut seen = std::collections::HashSet::new();
    let expiring: Vec<Value> = got
        .iter()
        .filter(|a| a.kind() == "api_key.expiring" && seen.insert(a.id.clone()))
        .map(Arrival::json)
        .collect();
    assert_eq!(expiring[0]["data"]["api_key"]["id"], id.as_str());
    assert_eq!(expiring[0]["data"]["threshold"], "policy");
    assert_eq!(expiring[1]["data"]["threshold"], "one_day");
    let digest = got
        .iter()
        .find(|a| a.kind() == "digest.daily")
        .unwrap()
        .json();
    assert_eq!(digest["data"]["counts"]["active"], 1);
    assert_eq!(
        digest["data"]["expiring_within_7_days"][0]["id"],
        id.as_str()
    );
    a.stop().await;
    b.stop().await;
    backend.cleanup().await;
}

async fn targets_are_checked_and_a_rotated_secret_signs_with_both(backend: Backend) {
    let rx = Receiver::start().await;
    // Without the flag: loopback, private and link-local are refused, http off loopback too.
    let strict = TestServer::start(&backend).await;
    for url in [
        rx.url("/hook"),
        "https://10.1.2.3/hook".to_owned(),
        "https://169.254.169.254/latest".to_owned(),
        "https://[::1]/hook".to_owned(),
        "http://example.com/hook".to_owned(),
        "ftp://example.com/hook".to_owned(),
    ] {
        let r = strict
            .http
            .post(strict.url("/v1/webhooks"))
            .bearer_auth(&strict.admin_token)
            .json(&json!({ "url": url, "events": ["api_key.created"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["fields"]["url"].is_string(), "{body}");
    }
    let r = strict
        .http
        .post(strict.url("/v1/webhooks"))
        .bearer_auth(&strict.admin_token)
        .json(&json!({ "url": "https://example.com/", "events": ["no.such"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    strict.stop().await;

    let s = start(&backend, Arc::new(SystemClock)).await;
    // A redirect is not followed.
    let (redirect, _) = add_webhook(&s, &rx.url("/redirect"), &["api_key.created"]).await;
    s.create_key("zeta", &["sessions:read"]).await;
    let d = wait_delivery(&s, &redirect, |d| d["attempts"] == 1).await;
    assert_eq!(d["last_response_code"], 302);
    assert!(d["last_error"].as_str().unwrap().contains("redirect"));
    assert!(rx.arrivals().iter().all(|a| a.path != "/elsewhere"));
    let r = s
        .http
        .delete(s.url(&format!("/v1/webhooks/{redirect}")))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A rotated secret: both sign during the overlap.
    let (hook, old) = add_webhook(&s, &rx.url("/hook"), &["api_key.created"]).await;
    let r = s
        .http
        .post(s.url(&format!("/v1/webhooks/{hook}/rotate-secret")))
        .bearer_auth(&s.admin_token)
        .json(&json!({ "overlap_seconds": 3600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    s.create_key("eta", &["sessions:read"]).await;
    let got = rx
        .wait_for("the event after rotating", |g| {
            g.iter().any(|a| a.path == "/hook")
        })
        .await;
    let a = got.iter().find(|a| a.path == "/hook").unwrap();
    assert_eq!(a.signature.split(' ').count(), 2, "{}", a.signature);
    assert!(verifies(&new, a) && verifies(&old, a));
    // The test event, to that endpoint only.
    let r = s
        .http
        .post(s.url(&format!("/v1/webhooks/{hook}/test")))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    rx.wait_for("the test event", |g| {
        g.iter().any(|a| a.kind() == "webhook.test")
    })
    .await;
    let actions = audit_actions(&s).await;
    for action in [
        "webhook.created",
        "webhook.removed",
        "webhook.secret_rotated",
        "webhook.tested",
    ] {
        assert!(
            actions.contains(&action.to_owned()),
            "{action} in {actions:?}"
        );
    }
    // Members may not manage webhooks.
    let (_, member) = crate::common::add_org(
        backend.store().await.as_ref(),
        "other",
        keydeck::store::Plan::Paid,
    )
    .await;
    let r = s.get("/v1/webhooks", &member).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    s.stop().await;
    backend.cleanup().await;
}

/// `keydeck webhooks …` on the command line and over SSH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_ssh_manage_webhooks() {
    use crate::common::cli::User;
    use crate::common::ssh;
    let backend = Backend::sqlite();
    let rx = Receiver::start().await;
    let sshc = keydeck::ssh::SshConfig::new("127.0.0.1:0".parse().unwrap());
    let s = TestServer::start_with_ssh(&backend, Arc::new(SystemClock), allow_private, Some(sshc))
        .await;
    let user = User::new()
        .env("KEYDECK_URL", &s.base)
        .env("KEYDECK_TOKEN", &s.admin_token);
    let bad = user.run(&[
        "webhooks",
        "add",
        &rx.url("/cli"),
        "--events",
        "api_key.nope",
    ]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("not an event type"), "{}", bad.stderr);
    let added = user.run(&[
        "webhooks",
        "add",
        &rx.url("/cli"),
        "--events",
        "api_key.created,api_key.revoked",
    ]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let secret = added.stdout.trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{}", added.stdout);
    let list = user.run(&["webhooks", "list", "--json"]);
    let list: Value = serde_json::from_str(&list.stdout).unwrap();
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        list["data"][0]["events"],
        json!(["api_key.created", "api_key.revoked"])
    );
    let table = user.run(&["webhooks", "list"]);
    assert!(
        table.stdout.contains(&id) && table.stdout.contains("healthy"),
        "{}",
        table.stdout
    );
    let test = user.run(&["webhooks", "test", &id]);
    assert_eq!(test.code, 0, "{}", test.stderr);
    let got = rx
        .wait_for("the test event", |g| {
            g.iter().any(|a| a.kind() == "webhook.test")
        })
        .await;
    let a = got.iter().find(|a| a.kind() == "webhook.test").unwrap();
    assert_eq!(a.id, test.stdout.trim());
    assert!(verifies(&secret, a));
    wait_delivery(&s, &id, |d| d["status"] == "delivered").await;
    let deliveries = user.run(&["webhooks", "deliveries", &id]);
    assert!(
        deliveries.stdout.contains("webhook.test") && deliveries.stdout.contains("delivered"),
        "{}",
        deliveries.stdout
    );

    // Over SSH, as the admin with a key.
    let key = ssh::new_key();
    ssh::add_key(backend.store().await.as_ref(), "admin@localhost", &key).await;
    let handle = ssh::connect(ssh::addr(&s), &key).await.expect("logged in");
    let over = ssh::exec(
        &handle,
        &format!("webhooks add {} --events api_key.created", rx.url("/ssh")),
        false,
    )
    .await;
    assert_eq!(over.status, Some(0), "{}", over.stderr);
    let ssh_secret = over.stdout.trim().to_owned();
    assert!(ssh_secret.starts_with("whsec_"));
    let listed = ssh::exec(&handle, "webhooks list --json", false).await;
    let listed: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    s.create_key("theta", &["sessions:read"]).await;
    let got = rx
        .wait_for("the created event at /ssh", |g| {
            g.iter().any(|a| a.path == "/ssh")
        })
        .await;
    assert!(verifies(
        &ssh_secret,
        got.iter().find(|a| a.path == "/ssh").unwrap()
    ));
    let removed = user.run(&["webhooks", "remove", &id]);
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    let list: Value =
        serde_json::from_str(&user.run(&["webhooks", "list", "--json"]).stdout).unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    s.stop().await;
}

/// `keydeck admin users add/remove` write through the store, in another
/// process than the service: the outbox is the store's, so their events go
/// out all the same.
async fn users_added_and_removed_by_an_operator_are_events(backend: Backend) {
    use keydeck::store::Role;
    let rx = Receiver::start().await;
    let s = start(&backend, Arc::new(SystemClock)).await;
    let (_, secret) = add_webhook(&s, &rx.url("/hook"), &["user.added", "user.removed"]).await;
    let store = backend.store().await;
    let now = Utc::now();
    keydeck::accounts::add_user(
        store.as_ref(),
        "default",
        "new@example.test",
        Role::Member,
        now,
    )
    .await
    .unwrap();
    keydeck::accounts::remove_user(store.as_ref(), "new@example.test", false, now)
        .await
        .unwrap();
    store.close().await;
    let got = rx.wait_for("two user events", |g| g.len() == 2).await;
    let mut kinds: Vec<String> = got.iter().map(Arrival::kind).collect();
    kinds.sort();
    assert_eq!(kinds, ["user.added", "user.removed"]);
    for a in &got {
        assert!(verifies(&secret, a));
        let v = a.json();
        assert_eq!(v["data"]["user"]["email"], "new@example.test");
        assert_eq!(v["data"]["user"]["role"], "member");
        assert_eq!(v["data"]["actor"]["kind"], "operator");
    }
    s.stop().await;
    backend.cleanup().await;
}

/// Leak response (issue 23) × notifications: a report of a live key under
/// the default policy (`on_leak = revoke`) sends `api_key.exposed` with
/// where it was found, then `api_key.revoked` with reason `leak`, signed,
/// never with the secret; a second report of the same key sends nothing.
async fn a_leak_report_sends_exposed_then_revoked_for_a_leak(backend: Backend) {
    let rx = Receiver::start().await;
    let s = start(&backend, Arc::new(SystemClock)).await;
    let (_, secret) = add_webhook(
        &s,
        &rx.url("/hook"),
        &["api_key.exposed", "api_key.revoked"],
    )
    .await;
    let (key, key_secret) = s.create_key("leaky", &["sessions:read"]).await;
    let report = json!({ "reports": [{
        "token": key_secret, "location": "github.com/acme/shop/.env:3", "source": "ci-scan",
    }] });
    for _ in 0..2 {
        let r = s
            .http
            .post(s.url("/v1/leaks"))
            .bearer_auth(&s.admin_token)
            .json(&report)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let got = rx.wait_for("2 events", |a| a.len() >= 2).await;
    let mut kinds: Vec<String> = got.iter().map(Arrival::kind).collect();
    kinds.sort();
    assert_eq!(kinds, ["api_key.exposed", "api_key.revoked"]);
    for a in &got {
        assert!(verifies(&secret, a), "signature of {}", a.body);
        assert!(!a.body.contains(&key_secret), "no key secret in a payload");
    }
    let of = |kind: &str| got.iter().find(|a| a.kind() == kind).unwrap().json();
    let exposed = of("api_key.exposed");
    assert_eq!(exposed["data"]["api_key"]["id"], key["id"]);
    assert_eq!(exposed["data"]["exposure"]["source"], "ci-scan");
    assert_eq!(
        exposed["data"]["exposure"]["location"],
        "github.com/acme/shop/.env:3"
    );
    assert_eq!(exposed["data"]["on_leak"], "revoke");
    let revoked = of("api_key.revoked");
    assert_eq!(revoked["data"]["api_key"]["id"], key["id"]);
    assert_eq!(revoked["data"]["reason"], "leak");
    // The second report of the same key changed nothing and sent nothing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.arrivals().len(), 2);
    s.stop().await;
    backend.cleanup().await;
}

/// Events (of these types) in the outbox.
async fn events_of(url: &str, types: &str) -> i64 {
    count_sql(
        url,
        &format!("SELECT COUNT(*) FROM webhook_events WHERE type IN ({types})"),
    )
    .await
}

/// Waits (up to 10 s) until `query` counts `n`.
async fn wait_count(url: &str, query: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = count_sql(url, query).await;
        if got == n {
            return;
        }
        assert!(Instant::now() < deadline, "{query}: {got}, not {n}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Waits (up to 15 s) until the endpoint has `n` deliveries, each recorded
/// as delivered. The receiver sees a send before the service records it:
/// a test that moves its clock on before then has the attempt recorded at
/// the new time, or pruned over while still pending, and the pruner looks
/// again only a minute later of that clock, which such a test never gives it.
async fn wait_delivered(s: &TestServer, hook: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = deliveries(s, hook).await;
        if list.len() == n && list.iter().all(|d| d["status"] == "delivered") {
            return;
        }
        assert!(Instant::now() < deadline, "not {n} delivered: {list:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// Retention (7 days by default) with a manual clock: a delivered event goes
// with its deliveries; one with a delivery pending (its endpoint disabled)
// stays however old until it is delivered; a time-based event stays while it
// makes itself happen once (an `api_key.expiring` until the key expires), so
// pruning never sends it twice.
async fn delivered_events_are_pruned_after_the_retention_never_pending_ones(backend: Backend) {
    let rx = Receiver::start().await;
    let t0: DateTime<Utc> = "2030-01-01T06:00:00Z".parse().unwrap();
    let day = chrono::Duration::days;
    let clock = manual_clock(t0);
    let s = start(&backend, clock.clone()).await;
    let url = backend.database_url();
    let r = s
        .http
        .put(s.url("/v1/policy"))
        .bearer_auth(&s.admin_token)
        .json(&json!({ "expiring_within_days": 30 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (a, _) = add_webhook(&s, &rx.url("/a"), &["api_key.created", "api_key.expiring"]).await;
    let (b, _) = add_webhook(&s, &rx.url("/b"), &["api_key.revoked"]).await;
    // B is disabled (as a day of failures would): what it is sent waits.
    run_sql(
        &url,
        &[&format!(
            "UPDATE webhook_endpoints SET disabled_at = 1 WHERE id = '{b}'"
        )],
    )
    .await;
    let (gone, _) = s.create_key("gone", &["sessions:read"]).await;
    assert_eq!(s.revoke(gone["id"].as_str().unwrap()).await.status(), 200);
    let r = s
        .create_key_as(
            &s.admin_token,
            json!({ "name": "soon", "scopes": ["sessions:read"],
                    "expires_at": (t0 + day(10)).to_rfc3339() }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let expiring = |got: &[Arrival]| {
        got.iter()
            .filter(|a| a.kind() == "api_key.expiring")
            .count()
    };
    rx.wait_for("2 created and 1 expiring", |g| {
        g.len() == 3 && expiring(g) == 1
    })
    .await;
    wait_delivered(&s, &a, 3).await;
    let kinds = "'api_key.created', 'api_key.revoked', 'api_key.expiring'";
    assert_eq!(events_of(&url, kinds).await, 4);

    // Six days on: nothing is old enough.
    clock.set(t0 + day(6));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(events_of(&url, kinds).await, 4);
    assert_eq!(deliveries(&s, &a).await.len(), 3);

    // Eight days on: the delivered changes go, with their deliveries; the
    // revoke waiting for B stays, and so does the expiring (the key has not
    // expired yet): it is not made, nor sent, again.
    clock.set(t0 + day(8));
    wait_count(
        &url,
        "SELECT COUNT(*) FROM webhook_events WHERE type = 'api_key.created'",
        0,
    )
    .await;
    let left: Vec<String> = deliveries(&s, &a)
        .await
        .iter()
        .map(|d| d["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, ["api_key.expiring"]);
    let waiting = deliveries(&s, &b).await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["status"], "pending");
    assert_eq!(events_of(&url, kinds).await, 2);
    assert_eq!(
        count_sql(
            &url,
            "SELECT COUNT(*) FROM webhook_deliveries d WHERE NOT EXISTS \
             (SELECT 1 FROM webhook_events e WHERE e.id = d.event_id)"
        )
        .await,
        0,
        "no delivery outlives its event"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(expiring(&rx.arrivals()), 1, "the expiring event once");

    // A day before expiry: the second expiring. Past the key's expiry and
    // the retention: both expiring events go; the pending revoke still stays.
    clock.set(t0 + day(9) + chrono::Duration::hours(1));
    rx.wait_for("the second expiring", |g| expiring(g) == 2)
        .await;
    wait_delivered(&s, &a, 2).await;
    clock.set(t0 + day(18));
    wait_count(
        &url,
        "SELECT COUNT(*) FROM webhook_events WHERE type = 'api_key.expiring'",
        0,
    )
    .await;
    assert_eq!(events_of(&url, kinds).await, 1);
    assert_eq!(deliveries(&s, &b).await[0]["status"], "pending");

    // Enabled, the revoke is delivered; a retention later it goes too.
    let r = s
        .http
        .post(s.url(&format!("/v1/webhooks/{b}/enable")))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    rx.wait_for("the revoke", |g| g.iter().any(|a| a.path == "/b"))
        .await;
    wait_delivery(&s, &b, |d| d["status"] == "delivered").await;
    clock.set(t0 + day(26));
    wait_count(
        &url,
        "SELECT COUNT(*) FROM webhook_events WHERE type = 'api_key.revoked'",
        0,
    )
    .await;
    assert!(deliveries(&s, &b).await.is_empty());
    assert_eq!(expiring(&rx.arrivals()), 2, "nothing sent twice");
    s.stop().await;
    backend.cleanup().await;
}

/// `GET /v1/webhooks/{id}/deliveries` with `limit`, `cursor`, `before`, `from=end`: the ids.
async fn page(s: &TestServer, hook: &str, query: &str) -> (Vec<i64>, Value) {
    let v = s
        .get_json(
            &format!("/v1/webhooks/{hook}/deliveries?{query}"),
            &s.admin_token,
        )
        .await;
    let ids = v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{query}: {v}"))
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    (ids, v)
}

// The deliveries come a bounded page at a time: down with `cursor`, up with
// `before`, the oldest with `from=end`; a cursor the service did not issue is a 400.
/// The 400 body of a deliveries page asked for with a bad `query`.
async fn refused_page(s: &TestServer, hook: &str, query: &str) -> Value {
    let r = s
        .get(
            &format!("/v1/webhooks/{hook}/deliveries?{query}"),
            &s.admin_token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
    r.json().await.unwrap()
}

async fn deliveries_are_read_a_page_at_a_time_from_either_end(backend: Backend) {
    let rx = Receiver::start().await;
    let s = start(&backend, Arc::new(SystemClock)).await;
    let (hook, _) = add_webhook(&s, &rx.url("/hook"), &["api_key.created"]).await;
    for _ in 0..7 {
        let r = s
            .http
            .post(s.url(&format!("/v1/webhooks/{hook}/test")))
            .bearer_auth(&s.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let (all, _) = page(&s, &hook, "limit=100").await;
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");

    let (first, v) = page(&s, &hook, "limit=3").await;
    assert_eq!(first, all[..3]);
    assert!(v.get("prev_cursor").is_none(), "{v}");
    let cursor = v["next_cursor"].as_str().unwrap().to_owned();
    let (second, v) = page(&s, &hook, &format!("limit=3&cursor={cursor}")).await;
    assert_eq!(second, all[3..6]);
    let back = v["prev_cursor"].as_str().unwrap().to_owned();
    let cursor = v["next_cursor"].as_str().unwrap().to_owned();
    let (third, v) = page(&s, &hook, &format!("limit=3&cursor={cursor}")).await;
    assert_eq!(third, all[6..]);
    assert!(v["next_cursor"].is_null(), "the last page: {v}");
    // Up again from the second page: the first.
    let (up, v) = page(&s, &hook, &format!("limit=3&before={back}")).await;
    assert_eq!(up, all[..3]);
    assert!(v.get("prev_cursor").is_none(), "{v}");
    // The oldest without the rest, then the page before it.
    let (oldest, v) = page(&s, &hook, "limit=3&from=end").await;
    assert_eq!(oldest, all[4..]);
    assert!(v["next_cursor"].is_null(), "{v}");
    let back = v["prev_cursor"].as_str().unwrap().to_owned();
    let (before, _) = page(&s, &hook, &format!("limit=3&before={back}")).await;
    assert_eq!(before, all[1..4]);

    for (query, field) in [
        ("cursor=abc", "cursor"),
        ("cursor=-4", "cursor"),
        ("before=0", "before"),
        ("from=start", "from"),
        ("cursor=5&from=end", "cursor"),
        ("limit=0", "limit"),
    ] {
        let body = refused_page(&s, &hook, query).await;
        assert!(
            body["error"]["fields"][field].is_string(),
            "{query}: {body}"
        );
    }
    s.stop().await;
    backend.cleanup().await;
}

// `keydeck webhooks deliveries` follows the service's pages (500 at a time)
// as `keydeck audit` does: over three pages, every delivery once, newest
// first, the same as the API's; a cursor the service did not issue is a 400
// that says so, however it is malformed.
async fn the_cli_reads_every_delivery_once_following_the_pages(backend: Backend) {
    use crate::common::cli::User;
    const MADE: usize = 1_010;
    let rx = Receiver::start().await;
    let s = start(&backend, Arc::new(SystemClock)).await;
    let (hook, _) = add_webhook(&s, &rx.url("/hook"), &["api_key.created"]).await;
    let test = || async {
        let r = s
            .http
            .post(s.url(&format!("/v1/webhooks/{hook}/test")))
            .bearer_auth(&s.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    };
    for _ in 0..MADE / 10 {
        futures_util::future::join_all((0..10).map(|_| test())).await;
    }
    // What the API pages say, newest first.
    let mut api = Vec::new();
    let mut query = "limit=500".to_owned();
    loop {
        let (ids, v) = page(&s, &hook, &query).await;
        api.extend(ids);
        match v["next_cursor"].as_str() {
            Some(next) => query = format!("limit=500&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(api.len(), MADE);

    let user = User::new()
        .env("KEYDECK_URL", &s.base)
        .env("KEYDECK_TOKEN", &s.admin_token);
    let ids = |args: &[&str]| -> Vec<i64> {
        let run = user.run(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        let v: Value = serde_json::from_str(&run.stdout).unwrap();
        v.as_array()
            .unwrap_or_else(|| panic!("a JSON array: {}", run.stdout))
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect()
    };
    let all = ids(&[
        "webhooks",
        "deliveries",
        &hook,
        "--limit",
        "100000",
        "--json",
    ]);
    let once: std::collections::HashSet<i64> = all.iter().copied().collect();
    assert_eq!(once.len(), MADE, "each delivery once");
    assert_eq!(all, api, "the API's deliveries, in its order");
    // A limit that ends inside the second page.
    let some = ids(&["webhooks", "deliveries", &hook, "--limit", "510", "--json"]);
    assert_eq!(some, api[..510]);
    // The table: the newest 100 by default.
    let table = user.run(&["webhooks", "deliveries", &hook]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert_eq!(
        table
            .stdout
            .lines()
            .filter(|l| l.contains("webhook.test"))
            .count(),
        100,
        "{}",
        table.stdout
    );

    for (query, field) in [
        ("cursor=abc", "cursor"),
        ("cursor=99999999999999999999", "cursor"),
        ("cursor=1.5", "cursor"),
        ("cursor=%00", "cursor"),
        ("cursor=0", "cursor"),
        ("before=-1", "before"),
        ("before=9e9", "before"),
    ] {
        let body = refused_page(&s, &hook, query).await;
        let said = body["error"]["fields"][field].as_str().unwrap_or_default();
        assert!(
            said.contains("not one this service issued"),
            "{query}: {body}"
        );
    }
    s.stop().await;
    backend.cleanup().await;
}

// A URL may carry credentials: a user name and password are refused (the
// answer does not repeat them); a query string's values are kept for
// sending but shown as REDACTED in the audit log (created, removed) and the
// CLI's list, and never reach the service's log (`RUST_LOG=trace`); only
// the endpoint's own record has the URL whole.
async fn an_endpoint_urls_credentials_stay_out_of_audit_lists_and_the_log(backend: Backend) {
    use crate::common::cli::User;
    const PASSWORD: &str = "pw-K3v8sQ";
    const TOKEN: &str = "abc-q7Z9wT";
    let rx = Receiver::start().await;
    let dir = backend.data_dir.path().to_path_buf();
    let log = std::env::temp_dir().join(format!(
        "keydeck-webhook-url-{}.log",
        keydeck::key::random_base62(8).as_str()
    ));
    let env = [("KEYDECK_WEBHOOKS_ALLOW_PRIVATE", "true")];
    let server = ServerProcess::spawn_with(&backend, &dir, &log, &env);
    let t = admin_token(&dir);
    let http = reqwest::Client::new();
    let add = |url: String| {
        http.post(server.url("/v1/webhooks"))
            .bearer_auth(&t)
            .json(&json!({ "url": url, "events": ["api_key.created"] }))
            .send()
    };
    let loopback = rx.url("/h");
    let with_user = loopback.replacen("http://", &format!("http://u:{PASSWORD}@"), 1);
    for url in [
        "https://u:p@example.test/h?token=abc".to_owned(),
        format!("{with_user}?token={TOKEN}"),
    ] {
        let r = add(url.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        let body = r.text().await.unwrap();
        assert!(body.contains("user name or password"), "{body}");
        for secret in ["u:p@", "abc", PASSWORD, TOKEN] {
            assert!(!body.contains(secret), "{secret} in {body}");
        }
    }
    let url = format!("{loopback}?token={TOKEN}&v=1");
    let r = add(url.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["webhook"]["url"], url, "the endpoint's own record");
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    // Sent to the URL whole.
    let r = http
        .post(server.url(&format!("/v1/webhooks/{id}/test")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    rx.wait_for("the test event", |a| {
        a.iter().any(|a| a.kind() == "webhook.test")
    })
    .await;

    let user = User::new()
        .env("KEYDECK_URL", &server.base)
        .env("KEYDECK_TOKEN", &t);
    let table = user.run(&["webhooks", "list"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("/h?token=REDACTED&v=REDACTED") && !table.stdout.contains(TOKEN),
        "{}",
        table.stdout
    );
    let whole = user.run(&["webhooks", "list", "--json"]);
    assert!(
        whole.stdout.contains(TOKEN),
        "--json is the record: {}",
        whole.stdout
    );
    let removed = user.run(&["webhooks", "remove", &id]);
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(!removed.stderr.contains(TOKEN), "{}", removed.stderr);

    let audit = http
        .get(server.url("/v1/audit-logs"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&audit).unwrap();
    let redacted = format!("{loopback}?token=REDACTED&v=REDACTED");
    for action in ["webhook.created", "webhook.removed"] {
        let entry = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} in {audit}"));
        assert_eq!(entry["details"]["url"], redacted.as_str(), "{entry}");
    }
    for secret in [PASSWORD, TOKEN, "u:p@"] {
        assert!(
            !audit.contains(secret),
            "{secret} in the audit log: {audit}"
        );
    }
    assert!(server.terminate().success());
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    let _ = std::fs::remove_file(&log);
    assert!(
        text.contains("webhook endpoint added"),
        "the log is the real one"
    );
    for secret in [PASSWORD, TOKEN] {
        assert!(!text.contains(secret), "{secret} in the service's log");
    }
    backend.cleanup().await;
}
