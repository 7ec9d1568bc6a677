//! Negative results are not an amplifier: over real HTTP, on both backends, a
//! repeated unknown (well-formed) key or user token reaches the database at
//! most once a second, is answered exactly like a fresh miss, and still counts
//! as a failure; good and revoked keys are never remembered.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{error_code, Backend, TestServer};
use keydeck::clock::SystemClock;
use keydeck::key::SecretFormat;
use reqwest::StatusCode;

on_both_backends!(
    an_unknown_key_is_looked_up_at_most_once_a_second,
    an_unknown_user_token_is_looked_up_at_most_once_a_second,
    remembered_misses_still_count_as_failures,
);

/// How often each unknown credential is sent in a row.
const REPEATS: u64 = 50;

fn key_lookups(s: &TestServer) -> u64 {
    s.running.store_guard.stats().lookups_by_digest
}

fn token_lookups(s: &TestServer) -> u64 {
    s.running.store_guard.stats().lookups_by_token
}

/// Status, `WWW-Authenticate` and body of a `GET /v1/auth` with `key`.
async fn auth_answer(s: &TestServer, key: &str) -> (StatusCode, Option<String>, String) {
    let r = s.auth(key, None).await;
    let status = r.status();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, www, r.text().await.unwrap())
}

/// At most one lookup per started second of `elapsed` (1 when under a second).
fn allowed(elapsed: Duration) -> u64 {
    1 + elapsed.as_secs()
}

async fn an_unknown_key_is_looked_up_at_most_once_a_second(backend: Backend) {
    // Without the key cache of found keys (tests/keycache.rs covers it), so
    // that the lookups counted below are the miss memory's alone.
    let s = TestServer::start_with(&backend, Arc::new(SystemClock), |c| {
        c.max_failed_auth = 0;
        c.key_cache = false;
    })
    .await;
    let unknown = s.running.state.key_format.generate();
    let unknown = unknown.expose();

    // The first check looks it up; the repeats within the second do not, and
    // are answered exactly like it.
    let before = key_lookups(&s);
    let started = Instant::now();
    let first = auth_answer(&s, unknown).await;
    assert_eq!(first.0, StatusCode::UNAUTHORIZED, "{first:?}");
    assert_eq!(
        first.1.as_deref(),
        Some(r#"Bearer error="invalid_token""#),
        "{first:?}"
    );
    for i in 1..REPEATS {
        assert_eq!(auth_answer(&s, unknown).await, first, "repeat {i}");
    }
    let elapsed = started.elapsed();
    let looked_up = key_lookups(&s) - before;
    println!("{REPEATS} checks of one unknown key in {elapsed:?}: {looked_up} lookup(s)");
    assert!(
        (1..=allowed(elapsed)).contains(&looked_up),
        "{looked_up} lookups for {REPEATS} checks in {elapsed:?}"
    );

    // Malformed keys (bad checksum) never reach the database at all.
    let mut malformed = unknown.to_owned();
    let last = malformed.pop().unwrap();
    malformed.push(if last == 'A' { 'B' } else { 'A' });
    let before = key_lookups(&s);
    for _ in 0..10 {
        assert_eq!(auth_answer(&s, &malformed).await, first);
    }
    assert_eq!(key_lookups(&s), before, "malformed keys are not looked up");

    // A second later the miss is forgotten: the next check looks it up again.
    // (The one-second memory is the point here, hence the sleep.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = key_lookups(&s);
    assert_eq!(auth_answer(&s, unknown).await, first);
    assert_eq!(
        key_lookups(&s),
        before + 1,
        "looked up again after a second"
    );
    assert_eq!(auth_answer(&s, unknown).await, first);
    assert_eq!(key_lookups(&s), before + 1, "and remembered again");

    // Good keys are never remembered: each check is a lookup, and a
    // revocation holds on the very next request.
    let (key, good) = s.create_key("good", &["resources:read"]).await;
    let before = key_lookups(&s);
    for _ in 0..3 {
        assert_eq!(s.auth(&good, None).await.status(), StatusCode::OK);
    }
    assert_eq!(key_lookups(&s), before + 3);
    assert_eq!(
        s.revoke(key["id"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );
    let before = key_lookups(&s);
    for _ in 0..3 {
        assert_eq!(auth_answer(&s, &good).await, first, "revoked: 401 at once");
    }
    assert_eq!(key_lookups(&s), before + 3, "revoked keys are looked up");
    s.stop().await;
    backend.cleanup().await;
}

async fn an_unknown_user_token_is_looked_up_at_most_once_a_second(backend: Backend) {
    let s =
        TestServer::start_with(&backend, Arc::new(SystemClock), |c| c.max_failed_auth = 0).await;
    let unknown = SecretFormat::user_token().generate();
    let unknown = unknown.expose();
    let list = |token: &str| s.get("/v1/api-keys", token).send();

    let before = token_lookups(&s);
    let started = Instant::now();
    for i in 0..REPEATS {
        let (status, code, _) = error_code(list(unknown).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "repeat {i}"
        );
    }
    let elapsed = started.elapsed();
    let looked_up = token_lookups(&s) - before;
    println!("{REPEATS} checks of one unknown token in {elapsed:?}: {looked_up} lookup(s)");
    assert!(
        (1..=allowed(elapsed)).contains(&looked_up),
        "{looked_up} lookups for {REPEATS} checks in {elapsed:?}"
    );

    // The admin's real token is looked up every time and still works.
    let before = token_lookups(&s);
    for _ in 0..3 {
        assert_eq!(list(&s.admin_token).await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(token_lookups(&s), before + 3);
    s.stop().await;
    backend.cleanup().await;
}

async fn remembered_misses_still_count_as_failures(backend: Backend) {
    const MAX: u32 = 3;
    let s =
        TestServer::start_with(&backend, Arc::new(SystemClock), |c| c.max_failed_auth = MAX).await;
    let unknown = s.running.state.key_format.generate();
    let before = key_lookups(&s);
    for i in 0..MAX {
        let status = s.auth(unknown.expose(), None).await.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Only the first was a lookup, yet all of them counted.
    assert!(key_lookups(&s) - before <= 2, "mostly remembered");
    let r = s.auth(unknown.expose(), None).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    s.stop().await;
    backend.cleanup().await;
}
