//! The key cache keeps revocation instant: a revoke, an expiry, a plan change
//! (also by `keydeck admin` in another process), a user removal and a
//! rotation are each refused on the very next key check, on SQLite and on two
//! PostgreSQL replicas, after the cache was shown to be answering. Plus the
//! revoke-under-load count on two PostgreSQL replicas.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Duration as ChronoDuration, Utc};
use keydeck::clock::{Clock, SystemClock};
use keydeck::service::SQLITE_OTHER_PROCESS_BOUND;
use reqwest::StatusCode;
use serde_json::{json, Value};

use common::lifecycle::admin_ok;
use common::util::poll;
use common::{manual_clock, Backend, TestServer};

on_both_backends!(
    a_revoked_key_is_refused_at_once_on_every_replica,
    an_expired_key_is_refused_from_its_expiry_on,
    a_plan_change_by_keydeck_admin_in_another_process_is_refused,
    a_removed_users_token_is_refused_and_the_org_keys_they_made_are_not,
    a_rotated_key_ends_as_the_rotation_says_on_every_replica,
    the_cache_spares_the_database_and_the_knob_turns_it_off,
);

/// One service on SQLite (one process); two replicas on one PostgreSQL database.
async fn replicas(backend: &Backend, clock: Arc<dyn Clock>) -> Vec<TestServer> {
    let count = if backend.name == "postgres" { 2 } else { 1 };
    let mut servers = Vec::new();
    for _ in 0..count {
        servers.push(
            TestServer::start_with(backend, clock.clone(), |c| {
                // Last-used flushes are writes too: keep them out of the way
                // so that what clears the cache is what the test does.
                c.last_used_flush = Duration::from_secs(3600);
            })
            .await,
        );
    }
    if let Some(b) = servers.get(1) {
        // Replica B lets go of each change late: a writer that answered
        // without waiting for B would leave B accepting a changed key.
        b.running.state.key_cache.set_ack_delay(ACK_DELAY);
    }
    servers
}

/// How late replica B acknowledges a change (fault injection).
const ACK_DELAY: Duration = Duration::from_millis(300);

async fn stop_all(servers: Vec<TestServer>, backend: Backend) {
    for s in servers {
        s.stop().await;
    }
    backend.cleanup().await;
}

fn hits(server: &TestServer) -> u64 {
    server.running.state.key_cache.stats().hits
}

/// Checks `secret` on `server` until a check is answered from the cache (200),
/// proving the cache is warm and trusted there.
async fn warm(server: &TestServer, secret: &str) {
    let answered = poll(Duration::from_secs(10), || async move {
        let before = hits(server);
        let r = server.auth(secret, None).await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "the key works before the change"
        );
        (hits(server) > before).then_some(())
    })
    .await;
    assert!(
        answered.is_some(),
        "the cache never answered on {}",
        server.base
    );
}

async fn warm_all(servers: &[TestServer], secret: &str) {
    for s in servers {
        warm(s, secret).await;
    }
}

async fn assert_refused_everywhere(servers: &[TestServer], secret: &str, what: &str) {
    for s in servers {
        let r = s.auth(secret, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what} on {}", s.base);
    }
}

/// Creates a key as `token` would; its secret.
async fn created_secret(server: &TestServer, token: &str, body: Value) -> String {
    let r = server.create_key_as(token, body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `keydeck admin ARGS` in another process, without holding up the service's tasks.
fn admin_elsewhere(backend: &Backend, args: &[&str]) -> String {
    tokio::task::block_in_place(|| admin_ok(backend, args))
}

async fn a_revoked_key_is_refused_at_once_on_every_replica(backend: Backend) {
    let servers = replicas(&backend, Arc::new(SystemClock)).await;
    let a = &servers[0];
    let (key, secret) = a.create_key("revoked soon", &["sessions:read"]).await;
    let (_, other) = a.create_key("bystander", &["sessions:read"]).await;
    warm_all(&servers, &secret).await;
    warm_all(&servers, &other).await;
    let r = a.revoke(key["id"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_refused_everywhere(&servers, &secret, "revoked").await;
    // Repeating the revoke is harmless, and other keys keep working.
    assert_eq!(
        a.revoke(key["id"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );
    assert_refused_everywhere(&servers, &secret, "revoked twice").await;
    for s in &servers {
        assert_eq!(s.auth(&other, None).await.status(), StatusCode::OK);
    }
    stop_all(servers, backend).await;
}

async fn an_expired_key_is_refused_from_its_expiry_on(backend: Backend) {
    let start = Utc::now();
    let clock = manual_clock(start);
    let servers = replicas(&backend, clock.clone()).await;
    let a = &servers[0];
    let expires = start + ChronoDuration::hours(1);
    let secret = created_secret(
        a,
        &a.admin_token,
        json!({"name": "short", "scopes": ["sessions:read"], "expires_at": expires}),
    )
    .await;
    warm_all(&servers, &secret).await;
    clock.set(expires - ChronoDuration::milliseconds(1));
    for s in &servers {
        let before = hits(s);
        assert_eq!(s.auth(&secret, None).await.status(), StatusCode::OK);
        assert!(
            hits(s) > before,
            "answered from the cache just before expiry"
        );
    }
    clock.set(expires);
    for s in &servers {
        let before = hits(s);
        assert_eq!(
            s.auth(&secret, None).await.status(),
            StatusCode::UNAUTHORIZED,
            "expired, on {}",
            s.base
        );
        assert!(
            hits(s) > before,
            "the cached record itself was found expired"
        );
    }
    stop_all(servers, backend).await;
}

async fn a_plan_change_by_keydeck_admin_in_another_process_is_refused(backend: Backend) {
    let servers = replicas(&backend, Arc::new(SystemClock)).await;
    let (_, secret) = servers[0].create_key("plan", &["sessions:read"]).await;
    warm_all(&servers, &secret).await;
    admin_elsewhere(&backend, &["orgs", "set-plan", "default", "free"]);
    if backend.name == "sqlite" {
        // Another process's write reaches the SQLite service's cache within
        // the documented bound (a poll of `PRAGMA data_version`).
        tokio::time::sleep(SQLITE_OTHER_PROCESS_BOUND).await;
    }
    // On PostgreSQL `keydeck admin` answered only once every replica let go.
    assert_refused_everywhere(&servers, &secret, "free plan").await;
    admin_elsewhere(&backend, &["orgs", "set-plan", "default", "paid"]);
    if backend.name == "sqlite" {
        tokio::time::sleep(SQLITE_OTHER_PROCESS_BOUND).await;
    }
    for s in &servers {
        assert_eq!(
            s.auth(&secret, None).await.status(),
            StatusCode::OK,
            "paid again"
        );
    }
    stop_all(servers, backend).await;
}

/// A key belongs to its organisation, not to the user who made it: removing
/// the user takes their access token away at once (tokens are never cached),
/// and their keys keep answering as before, from the cache.
async fn a_removed_users_token_is_refused_and_the_org_keys_they_made_are_not(backend: Backend) {
    let servers = replicas(&backend, Arc::new(SystemClock)).await;
    let email = "leaver@example.test";
    let token = admin_elsewhere(
        &backend,
        &[
            "users", "add", "--org", "default", "--email", email, "--role", "admin",
        ],
    );
    let secret = created_secret(
        &servers[0],
        &token,
        json!({"name": "made by the leaver", "scopes": ["sessions:read"]}),
    )
    .await;
    warm_all(&servers, &secret).await;
    admin_elsewhere(&backend, &["users", "remove", email]);
    for s in &servers {
        let r = s.get("/v1/api-keys", &token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "removed user's token");
        assert_eq!(s.auth(&secret, None).await.status(), StatusCode::OK);
    }
    stop_all(servers, backend).await;
}

async fn rotate(server: &TestServer, id: &str, grace_seconds: u32) -> Value {
    let r = server
        .http
        .post(server.url(&format!("/v1/api-keys/{id}/rotate")))
        .bearer_auth(&server.admin_token)
        .json(&json!({ "grace_seconds": grace_seconds }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// Rotation changes the old key's end (revoked now, or an expiry moved in)
/// and hands its scopes to a new key: every replica answers by the new state.
async fn a_rotated_key_ends_as_the_rotation_says_on_every_replica(backend: Backend) {
    let start = Utc::now();
    let clock = manual_clock(start);
    let servers = replicas(&backend, clock.clone()).await;
    let a = &servers[0];
    let (key, old) = a.create_key("rotated", &["sessions:read"]).await;
    warm_all(&servers, &old).await;
    // With a grace period: the cached old record had no expiry; now it has one.
    let rotated = rotate(a, key["id"].as_str().unwrap(), 60).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    for s in &servers {
        assert_eq!(s.auth(&old, None).await.status(), StatusCode::OK, "grace");
    }
    warm_all(&servers, &old).await;
    clock.advance(ChronoDuration::seconds(60));
    assert_refused_everywhere(&servers, &old, "after the grace period").await;
    for s in &servers {
        let r = s.auth(&new, Some("sessions:read")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-key-scopes"], "sessions:read");
        let r = s.auth(&new, Some("audit_logs:read")).await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "only the old key's scopes"
        );
    }
    // Without one: the new key's predecessor is refused at once.
    warm_all(&servers, &new).await;
    let id = rotated["api_key"]["id"].as_str().unwrap();
    let newest = rotate(a, id, 0).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_refused_everywhere(&servers, &new, "rotated without grace").await;
    for s in &servers {
        assert_eq!(s.auth(&newest, None).await.status(), StatusCode::OK);
    }
    stop_all(servers, backend).await;
}

async fn the_cache_spares_the_database_and_the_knob_turns_it_off(backend: Backend) {
    let servers = replicas(&backend, Arc::new(SystemClock)).await;
    let (_, secret) = servers[0].create_key("hot", &["sessions:read"]).await;
    warm_all(&servers, &secret).await;
    for s in &servers {
        let lookups = s.running.store_guard.stats().lookups_by_digest;
        for _ in 0..20 {
            assert_eq!(s.auth(&secret, None).await.status(), StatusCode::OK);
        }
        // A clear (e.g. a lease resynchronisation) may cost a lookup or two, not 20.
        let more = s.running.store_guard.stats().lookups_by_digest - lookups;
        assert!(more < 20, "{more} lookups for 20 checks of a cached key");
    }
    for s in servers {
        s.stop().await;
    }
    let off =
        TestServer::start_with(&backend, Arc::new(SystemClock), |c| c.key_cache = false).await;
    let lookups = off.running.store_guard.stats().lookups_by_digest;
    for _ in 0..20 {
        assert_eq!(off.auth(&secret, None).await.status(), StatusCode::OK);
    }
    let stats = off.running.state.key_cache.stats();
    assert_eq!((stats.hits, stats.misses), (0, 0));
    assert_eq!(
        off.running.store_guard.stats().lookups_by_digest - lookups,
        20
    );
    off.stop().await;
    backend.cleanup().await;
}

/// Replica B under load while A revokes the key B is checking: no request
/// sent to B after A's revoke returned is accepted. Prints the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(keydeck_pg),
    ignore = "set KEYDECK_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres to run"
)]
async fn no_request_is_accepted_on_replica_b_after_a_revoke_through_a_returned() {
    const CLIENTS: usize = 8;
    let backend = Backend::postgres().await.expect("postgres");
    let servers = replicas(&backend, Arc::new(SystemClock)).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (key, secret) = a.create_key("under load", &["sessions:read"]).await;
    warm(b, &secret).await;
    let hits_before = hits(b);
    let stop = Arc::new(AtomicBool::new(false));
    // (sent at, accepted) for every check on B.
    let results: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
    let mut load = Vec::new();
    for _ in 0..CLIENTS {
        let (stop, results) = (stop.clone(), results.clone());
        let (url, secret) = (b.url("/v1/auth"), secret.clone());
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let r = http.get(&url).bearer_auth(&secret).send().await.unwrap();
                let accepted = r.status() == StatusCode::OK;
                results.lock().unwrap().push((sent, accepted));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = a.revoke(key["id"].as_str().unwrap()).await;
    let returned = Instant::now();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let results = std::mem::take(&mut *results.lock().unwrap());
    let before = results.iter().filter(|(at, _)| *at < returned).count();
    let accepted_before = results
        .iter()
        .filter(|(at, ok)| *at < returned && *ok)
        .count();
    let after = results.len() - before;
    let accepted_after = results
        .iter()
        .filter(|(at, ok)| *at >= returned && *ok)
        .count();
    let served_from_cache = hits(b) - hits_before;
    println!(
        "[keycache] revoke under load on 2 PostgreSQL replicas: {} checks on B ({CLIENTS} clients), \
         {served_from_cache} from B's cache; before the revoke returned {before} sent, {accepted_before} accepted; \
         after: {after} sent, {accepted_after} accepted",
        results.len()
    );
    assert!(accepted_before > 0 && after > 0, "load ran on both sides");
    assert!(
        served_from_cache > 0,
        "B answered from its cache under load"
    );
    assert_eq!(accepted_after, 0, "accepted on B after A's revoke returned");
    stop_all(servers, backend).await;
}

/// A replica whose `LISTEN` connection is cut misses the notice of a revoke
/// made right then; the revoke still does not answer until that replica has
/// let go (it catches up at its next lease renewal), and the replica answers
/// from its cache again only after resynchronising.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(keydeck_pg),
    ignore = "set KEYDECK_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres to run"
)]
async fn a_replica_that_lost_its_listener_still_refuses_a_revoked_key() {
    let backend = Backend::postgres().await.expect("postgres");
    let servers = replicas(&backend, Arc::new(SystemClock)).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (key, secret) = a.create_key("deaf replica", &["sessions:read"]).await;
    let (_, other) = a.create_key("still fine", &["sessions:read"]).await;
    warm(b, &secret).await;
    warm(b, &other).await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&backend.database_url())
        .await
        .unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE '%keydeck_keycheck%' \
         AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(cut.len(), 2, "one listener per replica");
    let r = a.revoke(key["id"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_refused_everywhere(&servers, &secret, "revoked while B was deaf").await;
    // Back to answering from the cache once the listener is back and the lease renewed.
    warm(b, &other).await;
    stop_all(servers, backend).await;
}
