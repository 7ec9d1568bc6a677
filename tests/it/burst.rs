//! `kill -9` in the middle of a burst of 200 concurrent creates: after a
//! restart on the same data, every create that was answered 201 is there and
//! authenticates, and every key in the database belongs to a client that was
//! told about it (a 201, or a 409 naming it when the client re-sent its
//! Idempotency-Key after the restart).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::process::ServerProcess;
use common::util::admin_token;
use common::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::Notify;

on_both_backends!(kill_9_during_a_burst_of_creates_loses_no_answered_key_and_invents_none);

const CLIENTS: usize = 200;

/// What one client learned from one create.
#[derive(Debug, Clone)]
enum Outcome {
    Created {
        id: String,
        secret: String,
    },
    Repeat {
        id: String,
    },
    /// No answer (the connection died) or an error status.
    Failed(String),
}

fn spawn(backend: &Backend, dir: &Path, log: &str) -> ServerProcess {
    // Quiet logs (debug binary, 200 concurrent writers); no failed-auth limiter
    // needed, since every request carries the admin token.
    ServerProcess::spawn_with(backend, dir, &dir.join(log), &[("RUST_LOG", "info")])
}

/// `POST /v1/api-keys` for client `i`, with its own Idempotency-Key.
async fn create(http: &reqwest::Client, base: &str, token: &str, i: usize) -> Outcome {
    let sent = http
        .post(format!("{base}/v1/api-keys"))
        .bearer_auth(token)
        .header("idempotency-key", format!("burst-{i}"))
        .json(&json!({ "name": format!("burst-{i}"), "scopes": ["sessions:read"] }))
        .send()
        .await;
    let r = match sent {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("no answer: {e}")),
    };
    let status = r.status();
    let body: Value = match r.json().await {
        Ok(body) => body,
        Err(e) => return Outcome::Failed(format!("{status}, body cut off: {e}")),
    };
    match status {
        StatusCode::CREATED => Outcome::Created {
            id: body["api_key"]["id"].as_str().unwrap().to_owned(),
            secret: body["secret"].as_str().unwrap().to_owned(),
        },
        StatusCode::CONFLICT => {
            assert!(body.get("secret").is_none(), "a repeat shows no secret");
            Outcome::Repeat {
                id: body["api_key"]["id"].as_str().unwrap().to_owned(),
            }
        }
        other => Outcome::Failed(format!("{other}: {body}")),
    }
}

async fn kill_9_during_a_burst_of_creates_loses_no_answered_key_and_invents_none(backend: Backend) {
    let dir = backend.data_dir.path().to_path_buf();
    let server = spawn(&backend, &dir, "serve-1.log");
    let t = admin_token(&dir);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // Kill after a random number (30-70) of 201s have arrived.
    let kill_after = 30 + usize::from(keydeck::key::random_base62(1).as_bytes()[0]) % 41;
    let created = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (http, base, t) = (http.clone(), server.base.clone(), t.clone());
            let (created, enough) = (created.clone(), enough.clone());
            tokio::spawn(async move {
                let outcome = create(&http, &base, &t, i).await;
                if matches!(outcome, Outcome::Created { .. })
                    && created.fetch_add(1, Ordering::SeqCst) + 1 == kill_after
                {
                    enough.notify_one();
                }
                outcome
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(120), enough.notified())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "only {} creates answered 201; log:\n{}",
                created.load(Ordering::SeqCst),
                std::fs::read_to_string(dir.join("serve-1.log")).unwrap_or_default()
            )
        });
    server.kill_9();
    let mut first = Vec::new();
    for task in tasks {
        first.push(task.await.unwrap());
    }
    let answered = first
        .iter()
        .filter(|o| matches!(o, Outcome::Created { .. }))
        .count();
    let failed = first
        .iter()
        .filter(|o| matches!(o, Outcome::Failed(_)))
        .count();
    let example = first.iter().find_map(|o| match o {
        Outcome::Failed(why) => Some(why.as_str()),
        _ => None,
    });
    eprintln!(
        "[{}] kill -9 after {kill_after} × 201: {answered} answered 201, {failed} got no answer (e.g. {example:?})",
        backend.name
    );
    assert!(
        failed > 0,
        "all {CLIENTS} creates finished before the kill: the crash hit nothing"
    );
    assert_eq!(
        answered + failed,
        CLIENTS,
        "only 201s or failures before the kill: {first:?}"
    );

    let server = spawn(&backend, &dir, "serve-2.log");
    // Every client re-sends its create with the same Idempotency-Key: one that
    // was answered 201 must now get 409 naming the same key; one that got no
    // answer gets 201 (never created) or 409 (created, answer lost).
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    let mut secrets = Vec::new();
    let (mut lost_answers, mut recreated) = (0, 0);
    for (i, before) in first.iter().enumerate() {
        let again = create(&http, &server.base, &t, i).await;
        let id = match (before, &again) {
            (Outcome::Created { id, secret }, Outcome::Repeat { id: same }) => {
                assert_eq!(same, id, "client {i}: the repeat names another key");
                secrets.push(secret.clone());
                id.clone()
            }
            (Outcome::Failed(_), Outcome::Created { id, secret }) => {
                recreated += 1;
                secrets.push(secret.clone());
                id.clone()
            }
            (Outcome::Failed(_), Outcome::Repeat { id }) => {
                lost_answers += 1;
                id.clone()
            }
            _ => panic!("client {i}: {before:?} before the kill, then {again:?}"),
        };
        assert!(
            owner.insert(id, i).is_none(),
            "two clients were given one key"
        );
    }
    eprintln!(
        "[{}] after restart: {lost_answers} created without an answer (409 on retry), {recreated} created on retry",
        backend.name
    );

    // The keys in the database are exactly the ones clients were told about.
    let mut listed: BTreeMap<String, String> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = http
            .get(server.url("/v1/api-keys"))
            .bearer_auth(&t)
            .query(&[("limit", "500")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        for k in page["data"].as_array().unwrap() {
            listed.insert(
                k["id"].as_str().unwrap().to_owned(),
                k["name"].as_str().unwrap().to_owned(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let told: BTreeSet<&String> = owner.keys().collect();
    let stored: BTreeSet<&String> = listed.keys().collect();
    assert_eq!(
        stored, told,
        "keys in the database vs keys clients were told about"
    );
    for (id, i) in &owner {
        assert_eq!(
            listed[id],
            format!("burst-{i}"),
            "{id} belongs to client {i}"
        );
    }
    for secret in &secrets {
        let status = http
            .get(server.url("/v1/auth"))
            .header("x-api-key", secret)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(
            status,
            StatusCode::OK,
            "an answered key does not authenticate"
        );
    }
    drop(server);
    backend.cleanup().await;
}
