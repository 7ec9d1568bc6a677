//! The HTTP API over real HTTP on loopback, against SQLite and PostgreSQL.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use common::{add_org, error_code, manual_clock, Backend, TestServer};
use keydeck::store::Plan;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    health_scopes_and_openapi,
    create_authenticate_revoke,
    full_access_passes_every_scope,
    expired_key_is_refused_from_its_expiry_instant,
    organisations_are_isolated_and_roles_enforced,
    one_changed_character_is_refused,
    idempotency_key_repeat_returns_the_key_without_secret,
    failed_checks_are_limited_per_address,
    last_used_is_flushed_and_never_moves_back,
    bad_input_gets_clear_errors_never_500,
    listing_pages_filters_and_searches,
    rotation_with_and_without_grace,
    audit_log_records_who_did_what,
    a_deployment_can_have_its_own_scope_catalogue,
    an_idempotency_key_is_remembered_for_a_day,
);

async fn health_scopes_and_openapi(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "ok");

    let ids = s.scope_ids().await;
    assert_eq!(
        ids,
        [
            "sessions:read",
            "sessions:write",
            "resources:read",
            "audit_logs:read",
            "full_access",
            "leaks:report"
        ]
    );
    let scopes = s.get_json("/v1/scopes", "").await;
    assert_eq!(
        scopes["data"][4]["label"],
        "Full Access (grants all scopes)"
    );

    // The document lists every route the router serves, with the codes it answers.
    let doc: Value = s
        .http
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected: &[(&str, &str, &[&str])] = &[
        ("/healthz", "get", &["200"]),
        ("/readyz", "get", &["200", "503"]),
        ("/v1/scopes", "get", &["200"]),
        (
            "/v1/api-keys",
            "get",
            &["200", "400", "401", "402", "403", "429"],
        ),
        (
            "/v1/api-keys/counts",
            "get",
            &["200", "400", "401", "402", "403", "429"],
        ),
        (
            "/v1/api-keys",
            "post",
            &["201", "400", "401", "402", "403", "409", "413", "429"],
        ),
        (
            "/v1/api-keys/{id}",
            "get",
            &["200", "401", "402", "403", "404"],
        ),
        (
            "/v1/api-keys/{id}",
            "delete",
            &["200", "401", "402", "403", "404"],
        ),
        (
            "/v1/api-keys/{id}/rotate",
            "post",
            &["201", "400", "401", "402", "403", "404", "409", "413"],
        ),
        (
            "/v1/api-keys/{id}/secret",
            "post",
            &["201", "401", "402", "403", "404", "409"],
        ),
        (
            "/v1/audit-logs",
            "get",
            &["200", "400", "401", "402", "403", "429"],
        ),
        ("/v1/auth", "get", &["200", "400", "401", "403", "429"]),
        (
            "/v1/api-keys/{id}/usage",
            "get",
            &["200", "400", "401", "402", "403", "404", "429"],
        ),
        (
            "/v1/usage",
            "get",
            &["200", "400", "401", "402", "403", "429"],
        ),
        ("/v1/policy", "get", &["200", "401", "402", "429"]),
        (
            "/v1/policy",
            "put",
            &["200", "400", "401", "402", "403", "413", "429"],
        ),
        // Webhooks (issue 24).
        ("/v1/webhooks", "get", &["200", "401", "402", "403", "429"]),
        (
            "/v1/webhooks",
            "post",
            &["201", "400", "401", "402", "403", "413", "429"],
        ),
        (
            "/v1/webhooks/{id}",
            "delete",
            &["200", "401", "402", "403", "404"],
        ),
        (
            "/v1/webhooks/{id}/test",
            "post",
            &["202", "401", "403", "404"],
        ),
        (
            "/v1/webhooks/{id}/deliveries",
            "get",
            &["200", "400", "403", "404"],
        ),
        (
            "/v1/webhooks/{id}/rotate-secret",
            "post",
            &["200", "400", "403", "404"],
        ),
        ("/v1/webhooks/{id}/enable", "post", &["200", "403", "404"]),
        (
            "/v1/leaks",
            "post",
            &["200", "400", "401", "402", "403", "413", "429"],
        ),
        ("/v1/revocable_token_types", "get", &["200", "401", "404"]),
        (
            "/v1/revoke_tokens",
            "post",
            &["204", "400", "401", "404", "429"],
        ),
        (
            "/v1/github/secret-scanning",
            "post",
            &["200", "400", "401", "404", "429"],
        ),
    ];
    for (path, method, codes) in expected {
        let responses = &doc["paths"][path][method]["responses"];
        for code in *codes {
            assert!(
                responses.get(code).is_some(),
                "{method} {path} documents {code}: {responses}"
            );
        }
    }
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let routed: BTreeSet<&str> = expected.iter().map(|e| e.0).collect();
    assert_eq!(paths, routed);
    // The documented key fields are the ones the service sends.
    let created = s.create_key("doc", &["sessions:read"]).await.0;
    let props: BTreeSet<String> = doc["components"]["schemas"]["ApiKey"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let sent: BTreeSet<String> = created.as_object().unwrap().keys().cloned().collect();
    assert_eq!(props, sent);
    s.stop().await;
    backend.cleanup().await;
}

async fn create_authenticate_revoke(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let r = s
        .create_key_as(
            &s.admin_token,
            json!({"name": "CI/CD Pipeline", "description": "Used by GitHub Actions deploy workflow",
                   "scopes": ["sessions:read", "resources:read"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let key = &created["api_key"];
    let secret = created["secret"].as_str().unwrap();
    let id = key["id"].as_str().unwrap();
    assert!(
        secret.starts_with("eg_live_") && secret.len() == 46,
        "{secret}"
    );
    assert_eq!(key["prefix"].as_str().unwrap(), &secret[..12]);
    assert_eq!(key["status"], "active");
    assert_eq!(key["created_by"], "admin@localhost");
    assert_eq!(key["scopes"], json!(["sessions:read", "resources:read"]));

    let ok = s.auth(secret, Some("resources:read")).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["x-key-id"], id);
    assert_eq!(ok.headers()["x-key-scopes"], "sessions:read resources:read");
    // Bearer and X-Required-Scope work as well as X-API-Key and ?scope=.
    let bearer = s
        .http
        .get(s.url("/v1/auth"))
        .bearer_auth(secret)
        .header("x-required-scope", "sessions:read")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);

    let denied = s.auth(secret, Some("sessions:write")).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert!(denied.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer error=\"insufficient_scope\""));
    assert_eq!(error_code(denied).await.1, "insufficient_scope");

    let revoked = s.revoke(id).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let revoked: Value = revoked.json().await.unwrap();
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revoked_by"], "admin@localhost");

    let refused = s.auth(secret, Some("resources:read")).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let no_scope = s.auth(secret, None).await;
    assert_eq!(no_scope.status(), StatusCode::UNAUTHORIZED);

    // Revoking again is harmless and keeps the first revocation time.
    let again: Value = s.revoke(id).await.json().await.unwrap();
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    // And the key is still listed, as revoked.
    let one: Value = s
        .get_json(&format!("/v1/api-keys/{id}"), &s.admin_token)
        .await;
    assert_eq!(one["status"], "revoked");
    assert_eq!(one["description"], "Used by GitHub Actions deploy workflow");
    // No key at all: 401 without an error code, as RFC 6750 asks.
    let none = s.http.get(s.url("/v1/auth")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.headers()["www-authenticate"],
        "Bearer realm=\"keydeck\""
    );
    s.stop().await;
    backend.cleanup().await;
}

async fn full_access_passes_every_scope(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let (_, full) = s.create_key("root", &["full_access"]).await;
    let (_, narrow) = s.create_key("narrow", &["audit_logs:read"]).await;
    for scope in keydeck::key::SCOPES {
        assert_eq!(
            s.auth(&full, Some(scope.id)).await.status(),
            StatusCode::OK,
            "{}",
            scope.id
        );
        let expected = if scope.id == "audit_logs:read" {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(
            s.auth(&narrow, Some(scope.id)).await.status(),
            expected,
            "{}",
            scope.id
        );
    }
    s.stop().await;
    backend.cleanup().await;
}

async fn expired_key_is_refused_from_its_expiry_instant(backend: Backend) {
    let start = Utc::now().trunc_subsecs(3);
    let clock = manual_clock(start);
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let expires = start + Duration::hours(1);
    let r = s
        .create_key_as(
            &s.admin_token,
            json!({"name": "temp", "scopes": ["sessions:read"], "expires_at": expires}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap();
    let id = body["api_key"]["id"].as_str().unwrap();
    assert_eq!(
        body["api_key"]["expires_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        expires
    );

    clock.set(expires - Duration::milliseconds(1));
    assert_eq!(s.auth(secret, None).await.status(), StatusCode::OK);
    clock.set(expires);
    let refused = s.auth(secret, None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let shown: Value = s
        .get_json(&format!("/v1/api-keys/{id}"), &s.admin_token)
        .await;
    assert_eq!(shown["status"], "expired");

    // An expiry that is not in the future is refused at creation.
    let past = s
        .create_key_as(
            &s.admin_token,
            json!({"name": "late", "scopes": ["sessions:read"], "expires_at": expires}),
        )
        .await;
    let (status, code, body) = error_code(past).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert!(body["error"]["fields"]["expires_at"]
        .as_str()
        .unwrap()
        .contains("future"));
    s.stop().await;
    backend.cleanup().await;
}

async fn organisations_are_isolated_and_roles_enforced(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let store = backend.store().await;
    let (other_admin, member) = add_org(store.as_ref(), "acme", Plan::Paid).await;
    let (free_admin, _) = add_org(store.as_ref(), "cheapco", Plan::Free).await;
    let (key, secret) = s.create_key("mine", &["sessions:read"]).await;
    let id = key["id"].as_str().unwrap();
    let path = format!("/v1/api-keys/{id}");

    // Another organisation's admin: 404 on the id, never 403, and an empty list.
    assert_eq!(
        s.get(&path, &other_admin).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let del = s
        .http
        .delete(s.url(&path))
        .bearer_auth(&other_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NOT_FOUND);
    let rot = s
        .http
        .post(s.url(&format!("{path}/rotate")))
        .bearer_auth(&other_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(rot.status(), StatusCode::NOT_FOUND);
    let theirs: Value = s.get_json("/v1/api-keys", &other_admin).await;
    assert_eq!(theirs["data"], json!([]));
    assert_eq!(
        s.auth(&secret, None).await.status(),
        StatusCode::OK,
        "their failed revoke changed nothing"
    );

    // A member: 403 admin_required on every admin endpoint.
    for r in [
        s.get("/v1/api-keys", &member).send().await.unwrap(),
        s.get(&path, &member).send().await.unwrap(),
        s.create_key_as(&member, json!({"name": "x", "scopes": ["sessions:read"]}))
            .await,
        s.get("/v1/audit-logs", &member).send().await.unwrap(),
    ] {
        let (status, code, _) = error_code(r).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "admin_required")
        );
    }

    // A free-plan admin: 402 with the page's words.
    let (status, code, body) =
        error_code(s.get("/v1/api-keys", &free_admin).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYMENT_REQUIRED, "plan_required")
    );
    assert_eq!(
        body["error"]["message"],
        "API keys are available on the Paid plan only."
    );

    // No token, a bad token, an API key in place of a token: 401 with WWW-Authenticate.
    let none = s.http.get(s.url("/v1/api-keys")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.headers().contains_key("www-authenticate"));
    for bad in ["kdt_nonsense", &secret, "Basic abc"] {
        let r = s.get("/v1/api-keys", bad).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
    }

    // A downgraded organisation's keys stop working too. This store is
    // another connection, as `keydeck admin` would be: on SQLite its write
    // reaches the service's key cache within the documented bound.
    let default_org = store.org_by_name("default").await.unwrap().unwrap();
    store.set_plan(&default_org.id, Plan::Free).await.unwrap();
    if backend.name == "sqlite" {
        tokio::time::sleep(keydeck::service::SQLITE_OTHER_PROCESS_BOUND).await;
    }
    assert_eq!(
        s.auth(&secret, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    store.close().await;
    s.stop().await;
    backend.cleanup().await;
}

async fn one_changed_character_is_refused(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let (_, secret) = s.create_key("typo", &["sessions:read"]).await;
    assert_eq!(s.auth(&secret, None).await.status(), StatusCode::OK);
    for i in [8, 20, 39, 45] {
        let mut changed = secret.clone().into_bytes();
        changed[i] = if changed[i] == b'x' { b'y' } else { b'x' };
        let changed = String::from_utf8(changed).unwrap();
        assert!(keydeck::key::SecretFormat::default()
            .parse(&changed)
            .is_err());
        let r = s.auth(&changed, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "position {i}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
    }
    s.stop().await;
    backend.cleanup().await;
}

async fn idempotency_key_repeat_returns_the_key_without_secret(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let send = |idem: String| {
        s.http
            .post(s.url("/v1/api-keys"))
            .bearer_auth(&s.admin_token)
            .header("idempotency-key", idem)
            .json(&json!({"name": "deploy", "scopes": ["sessions:write"]}))
            .send()
    };
    let first = send("create-deploy-1".into()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let repeat = send("create-deploy-1".into()).await.unwrap();
    assert_eq!(repeat.status(), StatusCode::CONFLICT);
    let text = repeat.text().await.unwrap();
    let repeat: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(repeat["error"]["code"], "idempotency_key_reused");
    assert_eq!(repeat["api_key"]["id"], first["api_key"]["id"]);
    assert!(repeat.get("secret").is_none());
    assert!(!text.contains(first["secret"].as_str().unwrap()));
    let list: Value = s.get_json("/v1/api-keys", &s.admin_token).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let bad = send("x".repeat(256)).await.unwrap();
    let (status, _, body) = error_code(bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["fields"]["Idempotency-Key"].is_string());
    s.stop().await;
    backend.cleanup().await;
}

async fn failed_checks_are_limited_per_address(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let (_, secret) = s.create_key("good", &["sessions:read"]).await;
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let attacker = from([127, 0, 0, 2]);
    let neighbour = from([127, 0, 0, 3]);
    let check = |client: &reqwest::Client, key: &str| {
        client
            .get(s.url("/v1/auth"))
            .header("x-api-key", key.to_owned())
            .send()
    };
    let format = keydeck::key::SecretFormat::default();
    for i in 0..20 {
        let guess = format.generate();
        let r = check(&attacker, guess.expose()).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let limited = check(&attacker, format.generate().expose()).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(error_code(limited).await.1, "too_many_failed_attempts");
    // The limited address is refused even with a good key for the rest of the window…
    assert_eq!(
        check(&attacker, &secret).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // …while other clients are unaffected.
    assert_eq!(
        check(&neighbour, &secret).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(s.auth(&secret, None).await.status(), StatusCode::OK);
    // Admin token guesses count too.
    for _ in 0..21 {
        neighbour
            .get(s.url("/v1/api-keys"))
            .bearer_auth("kdt_wrong")
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        check(&neighbour, &secret).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    s.stop().await;
    backend.cleanup().await;
}

async fn last_used_is_flushed_and_never_moves_back(backend: Backend) {
    let start = Utc::now().trunc_subsecs(3);
    let clock = manual_clock(start);
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let (key, secret) = s.create_key("used", &["sessions:read"]).await;
    let id = key["id"].as_str().unwrap().to_owned();
    assert_eq!(key["last_used_at"], Value::Null);
    let store = backend.store().await;
    let org = store.org_by_name("default").await.unwrap().unwrap();

    let used_at = start + Duration::seconds(5);
    clock.set(used_at);
    assert_eq!(s.auth(&secret, None).await.status(), StatusCode::OK);
    // Written to the database by the batch flush within about a second.
    let deadline = std::time::Instant::now() + StdDuration::from_secs(3);
    loop {
        let stored = store
            .get_key(&org.id, &id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at;
        if stored == Some(used_at) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "last_used_at not flushed: {stored:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    // An older flush (e.g. from a slower replica) does not move it back.
    store
        .record_last_used(&[(id.clone(), start + Duration::seconds(1))])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_key(&org.id, &id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(used_at)
    );
    let shown: Value = s
        .get_json(&format!("/v1/api-keys/{id}"), &s.admin_token)
        .await;
    assert_eq!(
        shown["last_used_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        used_at
    );
    // A failed check does not count as a use.
    clock.set(used_at + Duration::minutes(1));
    assert_eq!(
        s.auth(&secret, Some("sessions:write")).await.status(),
        StatusCode::FORBIDDEN
    );
    s.stop().await;
    assert_eq!(
        store
            .get_key(&org.id, &id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(used_at)
    );
    store.close().await;
    backend.cleanup().await;
}

async fn bad_input_gets_clear_errors_never_500(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let t = s.admin_token.clone();
    let create = |body: Value| s.create_key_as(&t, body);
    let field_cases: Vec<(Value, &str)> = vec![
        (json!({"name": "", "scopes": ["sessions:read"]}), "name"),
        (
            json!({"name": "a".repeat(101), "scopes": ["sessions:read"]}),
            "name",
        ),
        (
            json!({"name": "bell\u{7}", "scopes": ["sessions:read"]}),
            "name",
        ),
        (
            json!({"name": "ok", "description": "d".repeat(501), "scopes": ["sessions:read"]}),
            "description",
        ),
        (json!({"name": "ok", "scopes": []}), "scopes"),
        (json!({"name": "ok", "scopes": ["root"]}), "scopes"),
        (
            json!({"name": "ok", "scopes": ["sessions:read"], "expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "ok", "scopes": ["sessions:read"], "expires_at": "2999-01-01T00:00:00Z"}),
            "expires_at",
        ),
    ];
    for (body, field) in field_cases {
        let (status, code, err) = error_code(create(body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body}"
        );
        assert!(
            err["error"]["fields"][field].is_string(),
            "{field} message for {body}: {err}"
        );
    }
    // Exactly 100 characters is fine; so is 500 of description.
    assert_eq!(
        create(json!({"name": "é".repeat(100), "description": "d".repeat(500), "scopes": ["sessions:read"]})).await.status(),
        StatusCode::CREATED
    );

    let raw = |body: &'static str, content_type: &'static str| {
        s.http
            .post(s.url("/v1/api-keys"))
            .bearer_auth(&t)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (body, ct) in [
        ("{not json", "application/json"),
        (
            r#"{"name": 5, "scopes": ["sessions:read"]}"#,
            "application/json",
        ),
        (
            r#"{"name": "x", "scopes": ["sessions:read"], "admin": true}"#,
            "application/json",
        ),
        (r#"{"scopes": ["sessions:read"]}"#, "application/json"),
        (
            r#"{"name": "x", "scopes": ["sessions:read"], "expires_at": "tomorrow"}"#,
            "application/json",
        ),
        (
            r#"{"name": "x", "scopes": ["sessions:read"]}"#,
            "text/plain",
        ),
        ("", "application/json"),
    ] {
        let (status, code, _) = error_code(raw(body, ct).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body:?} as {ct}"
        );
    }
    let huge = json!({"name": "x", "scopes": ["sessions:read"], "description": "d".repeat(20_000)});
    let (status, code, _) = error_code(create(huge).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    for query in [
        "limit=0",
        "limit=501",
        "limit=abc",
        "status=bogus",
        "cursor=nonsense",
        "extra=1",
        &format!("q={}", "q".repeat(101)),
    ] {
        let (status, _, _) = error_code(
            s.get(&format!("/v1/api-keys?{query}"), &t)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
    }
    for query in ["limit=0", "cursor=-4", "cursor=abc"] {
        let (status, _, _) = error_code(
            s.get(&format!("/v1/audit-logs?{query}"), &t)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "audit {query}");
    }
    for id in ["nope", "key_%27--", &format!("key_{}", "a".repeat(100))] {
        let (status, _, _) = error_code(
            s.get(&format!("/v1/api-keys/{id}"), &t)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
    }
    let (key, _) = s.create_key("rot", &["sessions:read"]).await;
    let rotate = format!("/v1/api-keys/{}/rotate", key["id"].as_str().unwrap());
    for body in [
        r#"{"grace_seconds": 86401}"#,
        r#"{"grace_seconds": -1}"#,
        r#"{"grace": 5}"#,
        "[]",
    ] {
        let r = s
            .http
            .post(s.url(&rotate))
            .bearer_auth(&t)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(r).await.0, StatusCode::BAD_REQUEST, "{body}");
    }
    let (status, _, _) = error_code(
        s.http
            .get(s.url("/v1/auth?scope=root"))
            .header("x-api-key", "x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = error_code(s.http.get(s.url("/v1/nothing")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = error_code(
        s.http
            .put(s.url("/v1/api-keys"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    s.stop().await;
    backend.cleanup().await;
}

async fn listing_pages_filters_and_searches(backend: Backend) {
    let start = Utc::now().trunc_subsecs(3);
    let clock = manual_clock(start);
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let mut ids = Vec::new();
    for (i, (name, scopes)) in [
        ("alpha", vec!["sessions:read"]),
        ("beta 100%", vec!["resources:read"]),
        ("gamma", vec!["full_access"]),
        ("delta", vec!["audit_logs:read"]),
        ("epsilon", vec!["sessions:write"]),
    ]
    .into_iter()
    .enumerate()
    {
        clock.set(start + Duration::seconds(i as i64));
        let expires_at = (name == "gamma").then(|| start + Duration::seconds(30));
        let r = s
            .create_key_as(&s.admin_token, json!({"name": name, "scopes": scopes, "expires_at": expires_at, "description": format!("{name} service")}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        ids.push(v["api_key"]["id"].as_str().unwrap().to_owned());
    }
    s.revoke(&ids[3]).await;
    clock.set(start + Duration::minutes(1));

    // Pages of two, newest first, until next_cursor is null.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/api-keys?limit=2".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = s.get_json(&path, &s.admin_token).await;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let names = |v: Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let get = |q: &str| s.get(&format!("/v1/api-keys?{q}"), &s.admin_token).send();
    assert_eq!(
        names(get("status=revoked").await.unwrap().json().await.unwrap()),
        ["delta"]
    );
    assert_eq!(
        names(get("status=expired").await.unwrap().json().await.unwrap()),
        ["gamma"]
    );
    assert_eq!(
        names(get("status=active").await.unwrap().json().await.unwrap()),
        ["epsilon", "beta 100%", "alpha"]
    );
    assert_eq!(
        names(get("q=ALPHA").await.unwrap().json().await.unwrap()),
        ["alpha"]
    );
    assert_eq!(
        names(get("q=sessions:").await.unwrap().json().await.unwrap()),
        ["epsilon", "alpha"]
    );
    assert_eq!(
        names(get("q=100%25").await.unwrap().json().await.unwrap()),
        ["beta 100%"]
    );
    assert_eq!(
        names(get("q=_").await.unwrap().json().await.unwrap()).len(),
        5,
        "every prefix has eg_live_"
    );
    assert_eq!(
        names(
            get("q=gamma%20service")
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        ),
        ["gamma"]
    );
    let all: Value = get("").await.unwrap().json().await.unwrap();
    let prefix = all["data"][0]["prefix"].as_str().unwrap().to_owned();
    assert_eq!(
        names(
            get(&format!("q={prefix}"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        ),
        ["epsilon"]
    );
    s.stop().await;
    backend.cleanup().await;
}

async fn rotation_with_and_without_grace(backend: Backend) {
    let start = Utc::now().trunc_subsecs(3);
    let clock = manual_clock(start);
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let expires = start + Duration::days(30);
    let r = s
        .create_key_as(&s.admin_token, json!({"name": "svc", "description": "d", "scopes": ["resources:read", "sessions:read"], "expires_at": expires}))
        .await;
    let created: Value = r.json().await.unwrap();
    let (old_id, old_secret) = (
        created["api_key"]["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );

    let rotate = |id: &str, body: Value| {
        s.http
            .post(s.url(&format!("/v1/api-keys/{id}/rotate")))
            .bearer_auth(&s.admin_token)
            .json(&body)
            .send()
    };
    let r = rotate(&old_id, json!({"grace_seconds": 3600}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let rotated: Value = r.json().await.unwrap();
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    let new_key = &rotated["api_key"];
    assert_ne!(new_key["id"], old_id.as_str());
    assert_eq!(new_key["name"], "svc");
    assert_eq!(new_key["description"], "d");
    assert_eq!(
        new_key["scopes"],
        json!(["sessions:read", "resources:read"])
    );
    assert_eq!(
        new_key["expires_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        expires
    );
    let old_ends = rotated["previous"]["expires_at"]
        .as_str()
        .unwrap()
        .parse::<DateTime<Utc>>()
        .unwrap();
    assert_eq!(old_ends, start + Duration::hours(1));
    assert_eq!(rotated["previous"]["status"], "active");
    // During the grace period both keys work; at its end only the new one.
    assert_eq!(
        s.auth(&old_secret, Some("resources:read")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        s.auth(&new_secret, Some("resources:read")).await.status(),
        StatusCode::OK
    );
    clock.set(start + Duration::hours(1));
    assert_eq!(
        s.auth(&old_secret, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.auth(&new_secret, None).await.status(), StatusCode::OK);
    // The old key is now expired: it cannot be rotated again.
    let (status, code, body) = error_code(rotate(&old_id, json!({})).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "key_not_active")
    );
    assert_eq!(body["api_key"]["status"], "expired");

    // Without grace (no body at all), the old key is revoked at once.
    let new_id = new_key["id"].as_str().unwrap().to_owned();
    let r = s
        .http
        .post(s.url(&format!("/v1/api-keys/{new_id}/rotate")))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let third: Value = r.json().await.unwrap();
    assert_eq!(third["previous"]["status"], "revoked");
    assert_eq!(
        s.auth(&new_secret, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.auth(third["secret"].as_str().unwrap(), Some("sessions:read"))
            .await
            .status(),
        StatusCode::OK
    );
    let (status, _, _) = error_code(rotate(&new_id, json!({})).await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    s.stop().await;
    backend.cleanup().await;
}

async fn audit_log_records_who_did_what(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let (key, _) = s.create_key("audited", &["sessions:read"]).await;
    let id = key["id"].as_str().unwrap();
    s.http
        .post(s.url(&format!("/v1/api-keys/{id}/rotate")))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    let (reader, reader_secret) = s.create_key("auditor", &["audit_logs:read"]).await;
    s.revoke(reader["id"].as_str().unwrap()).await;
    let (_, auditor) = s.create_key("auditor 2", &["audit_logs:read"]).await;
    let (_, nosy) = s.create_key("nosy", &["sessions:read"]).await;

    let log: Value = s.get_json("/v1/audit-logs", &s.admin_token).await;
    let entries = log["data"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["api_key_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions[2],
        ("api_key.revoked", reader["id"].as_str().unwrap())
    );
    assert_eq!(
        actions[3],
        ("api_key.created", reader["id"].as_str().unwrap())
    );
    assert_eq!(actions[4], ("api_key.rotated", id));
    assert_eq!(actions[5], ("api_key.created", id));
    assert_eq!(entries.len(), 6);
    for e in entries {
        assert_eq!(e["actor"]["name"], "admin@localhost");
        assert_eq!(e["actor"]["type"], "user");
        assert_eq!(e["remote_addr"], "127.0.0.1");
        assert!(e["at"].as_str().unwrap().parse::<DateTime<Utc>>().is_ok());
    }
    assert!(entries[4]["details"]["new_key_id"].is_string());

    // Keys with audit_logs:read may read it; others, and revoked ones, may not.
    let with_key = s
        .http
        .get(s.url("/v1/audit-logs?limit=2"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), StatusCode::OK);
    let page: Value = with_key.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let next: Value = s
        .http
        .get(s.url(&format!(
            "/v1/audit-logs?limit=10&cursor={}",
            page["next_cursor"].as_str().unwrap()
        )))
        .header("x-api-key", &auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(next["data"].as_array().unwrap().len(), 4);
    assert_eq!(next["next_cursor"], Value::Null);
    let (status, code, _) = error_code(s.get("/v1/audit-logs", &nosy).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    assert_eq!(
        s.get("/v1/audit-logs", &reader_secret)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
    backend.cleanup().await;
}

async fn a_deployment_can_have_its_own_scope_catalogue(backend: Backend) {
    let catalogue = keydeck::key::Catalog::from_toml(
        "[[scope]]\nid = \"billing:read\"\nlabel = \"Billing (Read)\"\ndescription = \"Read invoices.\"\n",
    )
    .unwrap();
    let s = TestServer::start_with(
        &backend,
        std::sync::Arc::new(keydeck::clock::SystemClock),
        |c| c.scopes = catalogue,
    )
    .await;
    let ids = s.scope_ids().await;
    assert_eq!(ids, ["billing:read", "full_access", "leaks:report"]);
    let (_, secret) = s.create_key("invoices", &["billing:read"]).await;
    assert_eq!(
        s.auth(&secret, Some("billing:read")).await.status(),
        StatusCode::OK
    );
    // The default catalogue's scopes are unknown here, in requests and in checks.
    let (status, _, body) = error_code(
        s.create_key_as(
            &s.admin_token,
            json!({"name": "x", "scopes": ["sessions:read"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["error"]["fields"]["scopes"].as_str().unwrap();
    assert!(message.contains("billing:read, full_access"), "{message}");
    assert_eq!(
        s.auth(&secret, Some("sessions:read")).await.status(),
        StatusCode::BAD_REQUEST
    );
    s.stop().await;
    backend.cleanup().await;
}

async fn an_idempotency_key_is_remembered_for_a_day(backend: Backend) {
    let start = Utc::now().trunc_subsecs(3);
    let clock = manual_clock(start);
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let send = || {
        s.http
            .post(s.url("/v1/api-keys"))
            .bearer_auth(&s.admin_token)
            .header("idempotency-key", "nightly-rotation")
            .json(&json!({"name": "nightly", "scopes": ["sessions:read"]}))
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    clock.set(start + Duration::hours(23));
    let repeat = send().await.unwrap();
    assert_eq!(repeat.status(), StatusCode::CONFLICT);
    // A day later the same key names a new request.
    clock.set(start + Duration::hours(25));
    let later = send().await.unwrap();
    assert_eq!(later.status(), StatusCode::CREATED);
    let later: Value = later.json().await.unwrap();
    assert_ne!(later["api_key"]["id"], first["api_key"]["id"]);
    let repeat: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(repeat["api_key"]["id"], later["api_key"]["id"]);
    s.stop().await;
    backend.cleanup().await;
}
