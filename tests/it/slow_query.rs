//! A slow query is not an outage (issue 19, acceptance 3): a call held past
//! the guard's 1.5 s deadline by a lock another connection holds, while the
//! database is up, gets its answer rather than 503 `database_unavailable`
//! (the guard's probe finds the database there); past the guard's patience
//! it is 503 `deadline_exceeded`, never `database_unavailable`; and on
//! PostgreSQL a query whose client gave up, or that the guard gave up, is
//! cancelled in the database rather than left waiting.
//!
//! The outages themselves (stopped, black-holed, cut mid-transaction: 503
//! within 2 s) are `outage.rs`.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{error_code, Backend, TestServer};
use keydeck::clock::SystemClock;
use reqwest::StatusCode;
use sqlx::{Connection, Executor};

/// How long the lock is held: well past the guard's 1.5 s deadline.
const HELD: Duration = Duration::from_secs(3);

on_both_backends!(
    a_write_held_behind_a_lock_gets_its_answer_not_503,
    a_call_past_the_patience_is_deadline_exceeded_not_unavailable
);

/// Another connection that holds the write lock a revoke of `key_id` needs:
/// SQLite's database write lock, PostgreSQL's lock on the key's row.
enum Holder {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Holder {
    async fn lock(backend: &Backend, key_id: &str) -> Self {
        let url = backend.database_url();
        if backend.name == "sqlite" {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            conn.execute("BEGIN IMMEDIATE").await.unwrap();
            Self::Sqlite(conn)
        } else {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            conn.execute("BEGIN").await.unwrap();
            sqlx::query("SELECT id FROM api_keys WHERE id = $1 FOR UPDATE")
                .bind(key_id)
                .execute(&mut conn)
                .await
                .unwrap();
            Self::Postgres(conn)
        }
    }

    async fn release(self) {
        match self {
            Self::Sqlite(mut c) => {
                c.execute("ROLLBACK").await.unwrap();
                c.close().await.unwrap();
            }
            Self::Postgres(mut c) => {
                c.execute("ROLLBACK").await.unwrap();
                c.close().await.unwrap();
            }
        }
    }
}

/// `DELETE /v1/api-keys/{id}` on a task of its own: its status, error code
/// and how long it took.
fn revoke_later(
    s: &TestServer,
    id: &str,
) -> tokio::task::JoinHandle<(StatusCode, String, Duration)> {
    let (http, url, token) = (
        s.http.clone(),
        s.url(&format!("/v1/api-keys/{id}")),
        s.admin_token.clone(),
    );
    tokio::spawn(async move {
        let sent = Instant::now();
        let r = http.delete(url).bearer_auth(token).send().await.unwrap();
        let took = sent.elapsed();
        let code = match r.status() {
            StatusCode::OK => String::new(),
            _ => error_code(r).await.1,
        };
        (status_of(&code), code, took)
    })
}

/// The status a revoke answered with its error code (none for 200).
fn status_of(code: &str) -> StatusCode {
    match code {
        "" => StatusCode::OK,
        "deadline_exceeded" | "database_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A revoke waits 3 s for a lock another connection holds: past the 1.5 s
/// deadline nothing else is answered, but the probe is, so the revoke waits
/// on and succeeds once the lock is let go.
async fn a_write_held_behind_a_lock_gets_its_answer_not_503(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let (key, _) = s.create_key("held", &["sessions:read"]).await;
    let id = key["id"].as_str().unwrap().to_owned();
    let guard = s.running.store_guard.clone();
    let before = guard.stats();

    let holder = Holder::lock(&backend, &id).await;
    let revoke = revoke_later(&s, &id);
    tokio::time::sleep(HELD).await;
    holder.release().await;
    let (status, code, took) = revoke.await.unwrap();

    let after = guard.stats();
    println!(
        "{}: revoke behind a lock held {HELD:?} answered {status} in {took:?}; probes answered {}",
        backend.name,
        after.probes_answered - before.probes_answered
    );
    assert_eq!(status, StatusCode::OK, "{code}");
    assert!(took >= HELD, "the revoke waited for the lock: {took:?}");
    assert!(
        after.probes_answered > before.probes_answered,
        "the guard asked the database past the deadline"
    );
    assert_eq!(
        after.timed_out, before.timed_out,
        "nothing was taken for an outage"
    );
    let now = s
        .get_json(&format!("/v1/api-keys/{id}"), &s.admin_token)
        .await;
    assert_eq!(now["status"], "revoked");
    s.stop().await;
    backend.cleanup().await;
}

/// With a patience of 3 s and the lock held for 6 s, the revoke is given up
/// at its patience as 503 `deadline_exceeded` (the database is there, busy),
/// not `database_unavailable`; on PostgreSQL its waiting query is cancelled.
async fn a_call_past_the_patience_is_deadline_exceeded_not_unavailable(backend: Backend) {
    let patience = Duration::from_secs(3);
    let s = TestServer::start_with(&backend, Arc::new(SystemClock), |c| {
        c.database_limits.patience = patience;
    })
    .await;
    let (key, _) = s.create_key("held long", &["sessions:read"]).await;
    let id = key["id"].as_str().unwrap().to_owned();

    let holder = Holder::lock(&backend, &id).await;
    let (status, code, took) = revoke_later(&s, &id).await.unwrap();
    println!(
        "{}: revoke past the patience: {status} {code} in {took:?}",
        backend.name
    );
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "deadline_exceeded")
    );
    assert!(took >= patience && took < patience * 2, "{took:?}");
    if backend.name == "postgres" {
        let gone = waiting_calls_gone(&backend, Duration::from_secs(3)).await;
        assert!(gone, "the given-up revoke still waits in the database");
    }
    holder.release().await;
    let now = s
        .get_json(&format!("/v1/api-keys/{id}"), &s.admin_token)
        .await;
    assert_eq!(now["status"], "active", "the given-up revoke did nothing");
    s.stop().await;
    backend.cleanup().await;
}

/// A listing whose client gives up after 1 s, while the key table is locked
/// by another connection: its query, seen waiting in `pg_stat_activity`,
/// is gone within 3 s of the client leaving, though the lock is still held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(keydeck_pg),
    ignore = "set KEYDECK_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres to run"
)]
async fn a_query_whose_client_left_is_cancelled_in_the_database() {
    let backend = Backend::postgres().await.expect("PostgreSQL");
    let s = TestServer::start(&backend).await;
    s.create_key("listed", &["sessions:read"]).await;

    let mut lock = sqlx::PgConnection::connect(&backend.database_url())
        .await
        .unwrap();
    lock.execute("BEGIN").await.unwrap();
    lock.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let listing = tokio::spawn(
        impatient
            .get(s.url("/v1/api-keys"))
            .bearer_auth(&s.admin_token)
            .send(),
    );
    let waited = waiting_calls_seen(&backend, Duration::from_millis(900)).await;
    let r = listing.await.unwrap();
    assert!(
        r.as_ref().is_err_and(reqwest::Error::is_timeout),
        "the listing waits on the lock: {r:?}"
    );
    let left = Instant::now();
    assert!(
        waited,
        "the listing's query waits on the lock in the database"
    );
    let gone = waiting_calls_gone(&backend, Duration::from_secs(3)).await;
    println!(
        "query of a client that left: gone after {:?}",
        left.elapsed()
    );
    assert!(
        gone,
        "the listing's query still waits, 3 s after its client left"
    );

    lock.execute("ROLLBACK").await.unwrap();
    lock.close().await.unwrap();
    let r = s.get("/v1/api-keys", &s.admin_token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the service answers as before");
    s.stop().await;
    backend.cleanup().await;
}

/// Queries of the service's guarded calls waiting on a lock.
async fn waiting_calls(backend: &Backend) -> i64 {
    let mut conn = sqlx::PgConnection::connect(&backend.database_url())
        .await
        .unwrap();
    let n = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name LIKE 'keydeck-call-%' AND wait_event_type = 'Lock'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    n
}

/// Whether a guarded call's query is seen waiting on a lock within `within`.
async fn waiting_calls_seen(backend: &Backend, within: Duration) -> bool {
    let until = Instant::now() + within;
    loop {
        if waiting_calls(backend).await > 0 {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether no guarded call's query waits on a lock any more, within `within`.
async fn waiting_calls_gone(backend: &Backend, within: Duration) -> bool {
    let until = Instant::now() + within;
    loop {
        if waiting_calls(backend).await == 0 {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
