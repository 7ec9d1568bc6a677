//! The OpenAPI document is the truth: every status the test can provoke on
//! each route, by real requests, is documented for that route, errors come as
//! JSON in the documented `ErrorBody` shape, and the request constraints
//! (lengths, counts, bounds, the running scope catalogue) are in the schema,
//! and the query parameters' limits it states are the ones the code keeps.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{add_org, Backend, TestServer};
use keydeck::clock::SystemClock;
use keydeck::key::Catalog;
use keydeck::store::Plan;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    every_provoked_status_is_documented,
    the_schema_states_the_request_constraints,
    every_documented_query_limit_is_the_code_s,
    the_cursors_the_service_gives_fit_the_document
);

const CATALOGUE: &str = "[[scope]]\nid = \"billing:read\"\nlabel = \"Billing (Read)\"\n\
                         [[scope]]\nid = \"billing:write\"\nlabel = \"Billing (Write)\"\n";

/// One request and the status it must get.
struct Case {
    /// The route as the document names it.
    route: &'static str,
    method: Method,
    path: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    expect: u16,
}

fn case(route: &'static str, method: Method, path: impl Into<String>, expect: u16) -> Case {
    Case {
        route,
        method,
        path: path.into(),
        token: None,
        headers: Vec::new(),
        body: None,
        expect,
    }
}

impl Case {
    fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }
    fn raw(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }
}

const GITLAB: &str = "gitlab-token-for-the-openapi-test";

/// The test's GitHub signing key (PKCS#8), made once.
fn github_pkcs8() -> &'static [u8] {
    static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &rng,
        )
        .unwrap()
        .as_ref()
        .to_vec()
    })
}

fn github_file() -> String {
    let pem = rcgen::KeyPair::try_from(github_pkcs8())
        .unwrap()
        .public_key_pem();
    json!({"public_keys": [{"key_identifier": "k1", "key": pem, "is_current": true}]}).to_string()
}

/// A case posting `body` to GitHub's endpoint, signed by the test key.
fn github_case(body: &[u8], expect: u16) -> Case {
    use base64::Engine as _;
    let rng = ring::rand::SystemRandom::new();
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        github_pkcs8(),
        &rng,
    )
    .unwrap();
    let sig = pair.sign(&rng, body).unwrap();
    let sig = base64::engine::general_purpose::STANDARD.encode(sig.as_ref());
    case(
        "/v1/github/secret-scanning",
        Method::POST,
        "/v1/github/secret-scanning",
        expect,
    )
    .header("github-public-key-identifier", "k1")
    .header("github-public-key-signature", &sig)
    .header("content-type", "application/json")
    .raw(body.to_vec())
}

/// Drives every route through requests that provoke each status it can give.
async fn every_provoked_status_is_documented(backend: Backend) {
    const MAX_FAILED_AUTH: u32 = 5;
    let s = TestServer::start_with(&backend, Arc::new(SystemClock), |c| {
        c.scopes = Catalog::from_toml(CATALOGUE).unwrap();
        c.max_failed_auth = MAX_FAILED_AUTH;
        c.database_limits.deadline = Duration::from_millis(300);
        // The slow-database cases must reach the database: a cached key
        // would be answered from memory (PostgreSQL keeps its lease while
        // only this process's calls are slowed).
        c.key_cache = false;
        c.leaks.gitlab_token_digest = Some(keydeck::key::digest(GITLAB));
        c.leaks.github_keys = keydeck::service::GithubKeys::from_json(&github_file()).unwrap();
        c.leaks.requests_per_minute = 1000;
    })
    .await;
    let doc = document(&s).await;
    let store = backend.store().await;
    let (_, member) = add_org(store.as_ref(), "acme", Plan::Paid).await;
    let (free_admin, _) = add_org(store.as_ref(), "thrifty", Plan::Free).await;
    store.close().await;
    let admin = s.admin_token.clone();
    let (reader, reader_secret) = s.create_key("reader", &["billing:read"]).await;
    let reader = reader["id"].as_str().unwrap().to_owned();
    let (revoked, revoked_secret) = s.create_key("revoked", &["billing:read"]).await;
    let revoked = revoked["id"].as_str().unwrap().to_owned();
    assert_eq!(s.revoke(&revoked).await.status(), StatusCode::OK);
    let throwaway = |name: &str| {
        let s = &s;
        let name = name.to_owned();
        async move {
            s.create_key(&name, &["billing:read"]).await.0["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let to_revoke = throwaway("to revoke").await;
    let to_rotate = throwaway("to rotate").await;
    // A key waiting for its secret: the `rotate` leak policy's successor.
    let (leaked, leaked_secret) = s.create_key("leaked", &["billing:read"]).await;
    let pending = {
        let put = |body: Value| {
            s.http
                .put(s.url("/v1/policy"))
                .bearer_auth(&admin)
                .json(&body)
                .send()
        };
        assert_eq!(
            put(json!({"on_leak": "rotate"})).await.unwrap().status(),
            200
        );
        let r = s
            .http
            .post(s.url("/v1/leaks"))
            .bearer_auth(&admin)
            .json(&json!({"token": leaked_secret, "location": "x", "source": "test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            put(json!({"on_leak": "revoke"})).await.unwrap().status(),
            200
        );
        let id = leaked["id"].as_str().unwrap();
        let old = s.get_json(&format!("/v1/api-keys/{id}"), &admin).await;
        old["replaced_by"].as_str().unwrap().to_owned()
    };
    let idem = s
        .http
        .post(s.url("/v1/api-keys"))
        .bearer_auth(&admin)
        .header("idempotency-key", "openapi-1")
        .json(&json!({"name": "idem", "scopes": ["billing:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(idem.status(), StatusCode::CREATED);
    let big = json!({"name": "x".repeat(20 * 1024), "scopes": ["billing:read"]});
    let good = json!({"name": "made", "scopes": ["billing:read"]});
    let unknown = "/v1/api-keys/key_doesNotExist000000";
    let one = |id: &str| format!("/v1/api-keys/{id}");
    let rotate = |id: &str| format!("/v1/api-keys/{id}/rotate");
    let issue = |id: &str| format!("/v1/api-keys/{id}/secret");
    const ISSUE: &str = "/v1/api-keys/{id}/secret";
    const KEYS: &str = "/v1/api-keys";
    const KEY: &str = "/v1/api-keys/{id}";
    const COUNTS: &str = "/v1/api-keys/counts";
    const ROTATE: &str = "/v1/api-keys/{id}/rotate";
    const AUDIT: &str = "/v1/audit-logs";
    const AUTH: &str = "/v1/auth";
    const POLICY: &str = "/v1/policy";
    const KEY_USAGE: &str = "/v1/api-keys/{id}/usage";
    const ORG_USAGE: &str = "/v1/usage";
    let key_usage = |id: &str| format!("/v1/api-keys/{id}/usage");
    const LEAKS: &str = "/v1/leaks";
    const TYPES: &str = "/v1/revocable_token_types";
    const REVOKE_TOKENS: &str = "/v1/revoke_tokens";
    const GITHUB: &str = "/v1/github/secret-scanning";
    let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);
    let (hook, hook_to_remove) = (add_webhook(&s).await, add_webhook(&s).await);
    let hooks = webhook_cases(&hook, &hook_to_remove, &admin, &member, &free_admin);

    let mut cases = vec![
        case("/healthz", get.clone(), "/healthz", 200),
        case("/healthz", post.clone(), "/healthz", 405),
        case("/readyz", get.clone(), "/readyz", 200),
        case("/readyz", delete.clone(), "/readyz", 405),
        case("/v1/scopes", get.clone(), "/v1/scopes", 200),
        case("/v1/scopes", post.clone(), "/v1/scopes", 405),
        // list
        case(KEYS, get.clone(), KEYS, 200).token(&admin),
        case(KEYS, get.clone(), "/v1/api-keys?limit=0", 400).token(&admin),
        case(KEYS, get.clone(), "/v1/api-keys?limit=501", 400).token(&admin),
        case(KEYS, get.clone(), "/v1/api-keys?colour=red", 400).token(&admin),
        case(KEYS, get.clone(), KEYS, 401),
        case(KEYS, get.clone(), KEYS, 402).token(&free_admin),
        case(KEYS, get.clone(), KEYS, 403).token(&member),
        case(KEYS, put.clone(), KEYS, 405).token(&admin),
        case(KEYS, get.clone(), "/v1/api-keys?tab=gone", 400).token(&admin),
        case(KEYS, get.clone(), "/v1/api-keys?sort=colour", 400).token(&admin),
        case(KEYS, get.clone(), "/v1/api-keys?from=start", 400).token(&admin),
        // counts
        case(COUNTS, get.clone(), COUNTS, 200).token(&admin),
        case(
            COUNTS,
            get.clone(),
            format!("{COUNTS}?q={}", "x".repeat(101)),
            400,
        )
        .token(&admin),
        case(COUNTS, get.clone(), COUNTS, 401),
        case(COUNTS, get.clone(), COUNTS, 402).token(&free_admin),
        case(COUNTS, get.clone(), COUNTS, 403).token(&member),
        case(COUNTS, post.clone(), COUNTS, 405).token(&admin),
        // create
        case(KEYS, post.clone(), KEYS, 201)
            .token(&admin)
            .json(good.clone()),
        case(KEYS, post.clone(), KEYS, 400)
            .token(&admin)
            .json(json!({"name": "", "scopes": []})),
        case(KEYS, post.clone(), KEYS, 400)
            .token(&admin)
            .json(good.clone())
            .header("idempotency-key", ""),
        case(KEYS, post.clone(), KEYS, 401).json(good.clone()),
        case(KEYS, post.clone(), KEYS, 402)
            .token(&free_admin)
            .json(good.clone()),
        case(KEYS, post.clone(), KEYS, 403)
            .token(&member)
            .json(good.clone()),
        case(KEYS, post.clone(), KEYS, 409)
            .token(&admin)
            .header("idempotency-key", "openapi-1")
            .json(json!({"name": "idem", "scopes": ["billing:read"]})),
        case(KEYS, post.clone(), KEYS, 413)
            .token(&admin)
            .json(big.clone()),
        // one key
        case(KEY, get.clone(), one(&reader), 200).token(&admin),
        case(KEY, get.clone(), one(&reader), 401),
        case(KEY, get.clone(), one(&reader), 402).token(&free_admin),
        case(KEY, get.clone(), one(&reader), 403).token(&member),
        case(KEY, get.clone(), unknown, 404).token(&admin),
        case(KEY, put.clone(), one(&reader), 405).token(&admin),
        // revoke
        case(KEY, delete.clone(), one(&to_revoke), 200).token(&admin),
        case(KEY, delete.clone(), one(&reader), 401),
        case(KEY, delete.clone(), one(&reader), 402).token(&free_admin),
        case(KEY, delete.clone(), one(&reader), 403).token(&member),
        case(KEY, delete.clone(), unknown, 404).token(&admin),
        // rotate
        case(ROTATE, post.clone(), rotate(&to_rotate), 201).token(&admin),
        case(ROTATE, post.clone(), rotate(&reader), 400)
            .token(&admin)
            .json(json!({"grace_seconds": 86_401})),
        case(ROTATE, post.clone(), rotate(&reader), 401),
        case(ROTATE, post.clone(), rotate(&reader), 402).token(&free_admin),
        case(ROTATE, post.clone(), rotate(&reader), 403).token(&member),
        case(ROTATE, post.clone(), format!("{unknown}/rotate"), 404).token(&admin),
        case(ROTATE, post.clone(), rotate(&revoked), 409).token(&admin),
        case(ROTATE, post.clone(), rotate(&reader), 413)
            .token(&admin)
            .raw(vec![b' '; 20 * 1024]),
        case(ROTATE, get.clone(), rotate(&reader), 405).token(&admin),
        // issue a pending key's secret
        case(ISSUE, post.clone(), issue(&pending), 401),
        case(ISSUE, post.clone(), issue(&pending), 402).token(&free_admin),
        case(ISSUE, post.clone(), issue(&pending), 403).token(&member),
        case(ISSUE, post.clone(), format!("{unknown}/secret"), 404).token(&admin),
        case(ISSUE, post.clone(), issue(&pending), 201).token(&admin),
        case(ISSUE, post.clone(), issue(&pending), 409).token(&admin),
        case(ISSUE, get.clone(), issue(&pending), 405).token(&admin),
        // audit log
        case(AUDIT, get.clone(), AUDIT, 200).token(&admin),
        case(AUDIT, get.clone(), AUDIT, 200).token(&reader_secret_with_audit(&s).await),
        case(AUDIT, get.clone(), "/v1/audit-logs?limit=0", 400).token(&admin),
        case(AUDIT, get.clone(), "/v1/audit-logs?limit=501", 400).token(&admin),
        case(AUDIT, get.clone(), AUDIT, 401),
        case(AUDIT, get.clone(), AUDIT, 402).token(&free_admin),
        case(AUDIT, get.clone(), AUDIT, 403).token(&member),
        case(AUDIT, get.clone(), AUDIT, 403).token(&reader_secret),
        case(AUDIT, post.clone(), AUDIT, 405).token(&admin),
        case(KEY_USAGE, get.clone(), key_usage(&reader), 200).token(&admin),
        case(
            KEY_USAGE,
            get.clone(),
            key_usage(&reader) + "?window=2h",
            400,
        )
        .token(&admin),
        case(KEY_USAGE, get.clone(), key_usage(&reader), 401),
        case(KEY_USAGE, get.clone(), key_usage(&reader), 402).token(&free_admin),
        case(KEY_USAGE, get.clone(), key_usage(&reader), 403).token(&member),
        case(
            KEY_USAGE,
            get.clone(),
            key_usage("key_doesNotExist000000"),
            404,
        )
        .token(&admin),
        case(ORG_USAGE, get.clone(), ORG_USAGE, 200).token(&admin),
        case(ORG_USAGE, get.clone(), "/v1/usage?window=1y", 400).token(&admin),
        case(ORG_USAGE, get.clone(), ORG_USAGE, 401),
        case(ORG_USAGE, get.clone(), ORG_USAGE, 402).token(&free_admin),
        case(ORG_USAGE, get.clone(), ORG_USAGE, 403).token(&reader_secret),
        // forward-auth
        case(AUTH, get.clone(), "/v1/auth?scope=billing:read", 200)
            .header("x-api-key", &reader_secret),
        case(AUTH, get.clone(), "/v1/auth?scope=nope:nope", 400)
            .header("x-api-key", &reader_secret),
        case(AUTH, get.clone(), AUTH, 401),
        case(AUTH, get.clone(), AUTH, 401).header("x-api-key", &revoked_secret),
        case(AUTH, get.clone(), "/v1/auth?scope=billing:write", 403)
            .header("x-api-key", &reader_secret),
        case(AUTH, post.clone(), AUTH, 405).header("x-api-key", &reader_secret),
        // the organisation's policy
        case(POLICY, get.clone(), POLICY, 200).token(&admin),
        case(POLICY, get.clone(), POLICY, 200).token(&member),
        case(POLICY, get.clone(), POLICY, 401),
        case(POLICY, get.clone(), POLICY, 402).token(&free_admin),
        case(POLICY, put.clone(), POLICY, 200)
            .token(&admin)
            .json(json!({})),
        case(POLICY, put.clone(), POLICY, 400)
            .token(&admin)
            .json(json!({"rotate_after_days": 0})),
        case(POLICY, put.clone(), POLICY, 401).json(json!({})),
        case(POLICY, put.clone(), POLICY, 402)
            .token(&free_admin)
            .json(json!({})),
        case(POLICY, put.clone(), POLICY, 403)
            .token(&member)
            .json(json!({})),
        case(POLICY, put.clone(), POLICY, 413)
            .token(&admin)
            .raw(vec![b' '; 20 * 1024]),
        case(POLICY, delete.clone(), POLICY, 405).token(&admin),
        // leak reports
        case(LEAKS, post.clone(), LEAKS, 200)
            .token(&admin)
            .json(json!({"sha256": "ab".repeat(32), "location": "x", "source": "t"})),
        case(LEAKS, post.clone(), LEAKS, 400)
            .token(&admin)
            .json(json!({"sha256": "xyz"})),
        case(LEAKS, post.clone(), LEAKS, 401).json(json!({"sha256": "ab".repeat(32)})),
        case(LEAKS, post.clone(), LEAKS, 402)
            .token(&free_admin)
            .json(json!({"sha256": "ab".repeat(32)})),
        case(LEAKS, post.clone(), LEAKS, 403)
            .token(&member)
            .json(json!({"sha256": "ab".repeat(32)})),
        // A little over the leak endpoints' own limit (128 KiB, not the
        // 16 KiB of the rest); far over it is `leaks::batches_past_16_kib_…`.
        case(LEAKS, post.clone(), LEAKS, 413)
            .token(&admin)
            .raw(vec![b' '; keydeck::service::MAX_LEAK_BODY_BYTES + 4 * 1024]),
        case(LEAKS, get.clone(), LEAKS, 405).token(&admin),
        case(TYPES, get.clone(), TYPES, 200).header("authorization", GITLAB),
        case(TYPES, get.clone(), TYPES, 401).header("authorization", "wrong"),
        case(TYPES, post.clone(), TYPES, 405).header("authorization", GITLAB),
        case(REVOKE_TOKENS, post.clone(), REVOKE_TOKENS, 204)
            .header("authorization", GITLAB)
            .json(
                json!([{"type": "gitleaks_rule_id_keydeck_api_key", "token": "x", "location": ""}]),
            ),
        case(REVOKE_TOKENS, post.clone(), REVOKE_TOKENS, 400)
            .header("authorization", GITLAB)
            .json(json!([{"type": "other", "token": "x", "location": ""}])),
        case(REVOKE_TOKENS, post.clone(), REVOKE_TOKENS, 401).json(json!([])),
        case(REVOKE_TOKENS, get.clone(), REVOKE_TOKENS, 405).header("authorization", GITLAB),
        github_case(
            br#"[{"token":"x","type":"t","url":"u","source":"content"}]"#,
            200,
        ),
        github_case(b"[1]", 400),
        case(GITHUB, post.clone(), GITHUB, 401).json(json!([])),
        case(GITHUB, get.clone(), GITHUB, 405),
    ];
    cases.extend(hooks);

    // Every route that uses the database, with a database slower than the deadline.
    let slow = vec![
        case("/readyz", get.clone(), "/readyz", 503),
        case(KEYS, get.clone(), KEYS, 503).token(&admin),
        case(KEYS, post.clone(), KEYS, 503)
            .token(&admin)
            .json(good.clone()),
        case(KEY, get.clone(), one(&reader), 503).token(&admin),
        case(KEY, delete.clone(), one(&reader), 503).token(&admin),
        case(ROTATE, post.clone(), rotate(&reader), 503).token(&admin),
        case(ISSUE, post.clone(), issue(&reader), 503).token(&admin),
        case(AUDIT, get.clone(), AUDIT, 503).token(&admin),
        case(AUTH, get.clone(), AUTH, 503).header("x-api-key", &reader_secret),
        case(POLICY, get.clone(), POLICY, 503).token(&admin),
        case(POLICY, put.clone(), POLICY, 503)
            .token(&admin)
            .json(json!({})),
        case(LEAKS, post.clone(), LEAKS, 503)
            .token(&admin)
            .json(json!({"sha256": "ab".repeat(32)})),
    ];
    // Every authenticated route, once this address has failed too often.
    let mut limited: Vec<Case> = (0..MAX_FAILED_AUTH)
        .map(|_| case(KEYS, get.clone(), KEYS, 401).token("kdt_not_a_real_token"))
        .collect();
    limited.extend([
        case(KEYS, get.clone(), KEYS, 429).token(&admin),
        case(KEYS, post.clone(), KEYS, 429)
            .token(&admin)
            .json(good.clone()),
        case(KEY, get.clone(), one(&reader), 429).token(&admin),
        case(KEY, delete.clone(), one(&reader), 429).token(&admin),
        case(ROTATE, post.clone(), rotate(&reader), 429).token(&admin),
        case(ISSUE, post.clone(), issue(&reader), 429).token(&admin),
        case(AUDIT, get.clone(), AUDIT, 429).token(&admin),
        case(AUTH, get.clone(), AUTH, 429).header("x-api-key", &reader_secret),
        case(POLICY, get.clone(), POLICY, 429).token(&admin),
        case(POLICY, put.clone(), POLICY, 429)
            .token(&admin)
            .json(json!({})),
        case(LEAKS, post.clone(), LEAKS, 429)
            .token(&admin)
            .json(json!({"sha256": "ab".repeat(32)})),
    ]);

    let mut provoked: BTreeMap<(String, String), BTreeSet<u16>> = BTreeMap::new();
    for c in &cases {
        check(&s, &doc, c, &mut provoked).await;
    }
    s.running.store_guard.set_delay(Duration::from_secs(5));
    for c in &slow {
        check(&s, &doc, c, &mut provoked).await;
    }
    s.running.store_guard.set_delay(Duration::ZERO);
    // Headers beyond what the HTTP layer accepts, on every route.
    let mut huge = Vec::new();
    for c in cases.iter().filter(|c| c.expect < 300) {
        let mut c = case(c.route, c.method.clone(), c.path.clone(), 431);
        for i in 0..150 {
            c = c.header(&format!("x-filler-{i}"), "x");
        }
        huge.push(c);
    }
    for c in &huge {
        check(&s, &doc, c, &mut provoked).await;
    }
    for c in &limited {
        check(&s, &doc, c, &mut provoked).await;
    }
    cases.extend(slow);

    // Every documented operation was driven to success at least once.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let statuses = provoked
                .get(&(path.clone(), method.clone()))
                .unwrap_or_else(|| panic!("{method} {path} was not exercised"));
            assert!(
                statuses.iter().any(|s| (200..300).contains(s)),
                "{method} {path}: no success provoked ({statuses:?})"
            );
        }
    }
    for ((path, method), statuses) in &provoked {
        println!("{method:6} {path:28} provoked {statuses:?}");
    }
    s.stop().await;
    backend.cleanup().await;
}

/// A webhook endpoint at a public address (an IP literal: nothing to resolve); its id.
async fn add_webhook(s: &TestServer) -> String {
    let r = s
        .http
        .post(s.url("/v1/webhooks"))
        .bearer_auth(&s.admin_token)
        .json(&json!({"url": "https://192.0.2.10/hook", "events": ["api_key.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `/v1/webhooks` (issue 24): each operation's answers.
fn webhook_cases(hook: &str, to_remove: &str, admin: &str, member: &str, free: &str) -> Vec<Case> {
    const HOOKS: &str = "/v1/webhooks";
    const HOOK: &str = "/v1/webhooks/{id}";
    const TEST: &str = "/v1/webhooks/{id}/test";
    const DELIVERIES: &str = "/v1/webhooks/{id}/deliveries";
    const ROTATE: &str = "/v1/webhooks/{id}/rotate-secret";
    const ENABLE: &str = "/v1/webhooks/{id}/enable";
    let (get, post, delete) = (Method::GET, Method::POST, Method::DELETE);
    let good = json!({"url": "https://192.0.2.11/hook", "events": ["api_key.revoked"]});
    let unknown = "whk_doesNotExist000000";
    let mut cases = vec![
        case(HOOKS, get.clone(), HOOKS, 200).token(admin),
        case(HOOKS, post.clone(), HOOKS, 201)
            .token(admin)
            .json(good.clone()),
        case(HOOKS, post.clone(), HOOKS, 400)
            .token(admin)
            .json(json!({"url": "http://192.0.2.11/", "events": ["api_key.revoked"]})),
        case(HOOKS, post.clone(), HOOKS, 400)
            .token(admin)
            .json(json!({"url": "https://192.0.2.11/", "events": []})),
        case(HOOKS, post.clone(), HOOKS, 413)
            .token(admin)
            .raw(vec![b' '; 20 * 1024]),
        case(HOOK, delete.clone(), format!("{HOOKS}/{to_remove}"), 200).token(admin),
        case(HOOK, delete.clone(), format!("{HOOKS}/{unknown}"), 404).token(admin),
        case(TEST, post.clone(), format!("{HOOKS}/{hook}/test"), 202).token(admin),
        case(
            DELIVERIES,
            get.clone(),
            format!("{HOOKS}/{hook}/deliveries"),
            200,
        )
        .token(admin),
        case(
            DELIVERIES,
            get.clone(),
            format!("{HOOKS}/{hook}/deliveries?limit=0"),
            400,
        )
        .token(admin),
        case(
            ROTATE,
            post.clone(),
            format!("{HOOKS}/{hook}/rotate-secret"),
            200,
        )
        .token(admin),
        case(
            ROTATE,
            post.clone(),
            format!("{HOOKS}/{hook}/rotate-secret"),
            400,
        )
        .token(admin)
        .json(json!({"overlap_seconds": 10_000_000})),
        case(
            ROTATE,
            post.clone(),
            format!("{HOOKS}/{hook}/rotate-secret"),
            413,
        )
        .token(admin)
        .raw(vec![b' '; 20 * 1024]),
        case(ENABLE, post.clone(), format!("{HOOKS}/{hook}/enable"), 200).token(admin),
    ];
    for (route, method, path) in [
        (HOOKS, get.clone(), HOOKS.to_owned()),
        (HOOK, delete.clone(), format!("{HOOKS}/{hook}")),
        (TEST, post.clone(), format!("{HOOKS}/{hook}/test")),
        (
            DELIVERIES,
            get.clone(),
            format!("{HOOKS}/{hook}/deliveries"),
        ),
        (
            ROTATE,
            post.clone(),
            format!("{HOOKS}/{hook}/rotate-secret"),
        ),
        (ENABLE, post.clone(), format!("{HOOKS}/{hook}/enable")),
    ] {
        cases.push(case(route, method.clone(), path.clone(), 401));
        cases.push(case(route, method.clone(), path.clone(), 402).token(free));
        cases.push(case(route, method.clone(), path.clone(), 403).token(member));
        if route != HOOKS {
            let other = path.replace(hook, unknown);
            cases.push(case(route, method.clone(), other, 404).token(admin));
        }
    }
    cases
}

/// A key that may read the audit log (an API key is also an audit reader).
async fn reader_secret_with_audit(s: &TestServer) -> String {
    s.create_key("auditor", &["full_access"]).await.1
}

/// Sends one case; checks its status, that the document lists it for the
/// route, and that an error answer is JSON in the documented `ErrorBody` shape.
async fn check(
    s: &TestServer,
    doc: &Value,
    c: &Case,
    provoked: &mut BTreeMap<(String, String), BTreeSet<u16>>,
) {
    let mut req = s.http.request(c.method.clone(), s.url(&c.path));
    if let Some(token) = &c.token {
        req = req.bearer_auth(token);
    }
    for (name, value) in &c.headers {
        req = req.header(name, value);
    }
    if let Some(body) = &c.body {
        req = req
            .header("content-type", "application/json")
            .body(body.clone());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = r.text().await.unwrap();
    let what = format!("{} {} ({})", c.method, c.path, c.route);
    assert_eq!(status, c.expect, "{what}: {text}");
    let method = c.method.as_str().to_lowercase();
    let item = &doc["paths"][c.route];
    assert!(item.is_object(), "{} is not in the document", c.route);
    // A method the route does not take: its 405 is documented on the route's operations.
    let documented: Vec<&Value> = if item.get(&method).is_some() {
        vec![&item[&method]["responses"][status.to_string()]]
    } else {
        assert_eq!(status, 405, "{what}: undocumented method");
        item.as_object()
            .unwrap()
            .values()
            .map(|op| &op["responses"]["405"])
            .collect()
    };
    for response in &documented {
        assert!(
            response.is_object(),
            "{what}: {status} is not documented: {item}"
        );
    }
    provoked
        .entry((c.route.to_owned(), method))
        .or_default()
        .insert(status);
    if status < 400 || status == 431 {
        return;
    }
    assert!(
        content_type.starts_with("application/json"),
        "{what}: {content_type}"
    );
    for response in documented {
        assert_eq!(
            response["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{what}: documented body of {status}"
        );
    }
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    assert_error_body(&what, doc, &body);
}

/// `body` has exactly the shape the document gives `ErrorBody` and `ErrorDetail`.
fn assert_error_body(what: &str, doc: &Value, body: &Value) {
    let schemas = &doc["components"]["schemas"];
    let allowed = |schema: &str| -> BTreeSet<String> {
        schemas[schema]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let keys: BTreeSet<String> = body.as_object().unwrap().keys().cloned().collect();
    assert!(keys.is_subset(&allowed("ErrorBody")), "{what}: {body}");
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: {body}"));
    let keys: BTreeSet<String> = error.keys().cloned().collect();
    assert!(keys.is_subset(&allowed("ErrorDetail")), "{what}: {body}");
    for required in schemas["ErrorDetail"]["required"].as_array().unwrap() {
        let field = required.as_str().unwrap();
        assert!(
            error[field].as_str().is_some_and(|v| !v.is_empty()),
            "{what}: error.{field} in {body}"
        );
    }
    if let Some(fields) = error.get("fields") {
        assert!(
            fields.as_object().unwrap().values().all(Value::is_string),
            "{what}: {body}"
        );
    }
}

async fn document(s: &TestServer) -> Value {
    let r = s.http.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Lengths, counts, bounds and the scope ids are in the schema.
async fn the_schema_states_the_request_constraints(backend: Backend) {
    let s = TestServer::start_with(&backend, Arc::new(SystemClock), |c| {
        c.scopes = Catalog::from_toml(CATALOGUE).unwrap();
    })
    .await;
    let doc = document(&s).await;
    let schemas = &doc["components"]["schemas"];
    let create = &schemas["CreateKeyRequest"]["properties"];
    assert_eq!(create["name"]["minLength"], 1, "{create}");
    assert_eq!(create["name"]["maxLength"], 100, "{create}");
    assert_eq!(create["description"]["maxLength"], 500, "{create}");
    assert_eq!(create["scopes"]["minItems"], 1, "{create}");
    // The running catalogue's ids, not the default one's.
    // (then keydeck's own reporter scope, which a key may have alone).
    let ids = s.scope_ids().await;
    assert_eq!(
        ids,
        [
            "billing:read",
            "billing:write",
            "full_access",
            "leaks:report"
        ]
    );
    assert_eq!(create["scopes"]["items"]["enum"], json!(ids), "{create}");
    let rotate = &schemas["RotateKeyRequest"]["properties"]["grace_seconds"];
    assert_eq!(rotate["minimum"], 0, "{rotate}");
    assert_eq!(rotate["maximum"], 86_400, "{rotate}");

    let param = |path: &str, name: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} documents {name}"))["schema"]
            .clone()
    };
    // Query parameters are documented as such, and optional.
    for path in ["/v1/api-keys", "/v1/audit-logs", "/v1/auth"] {
        for p in doc["paths"][path]["get"]["parameters"].as_array().unwrap() {
            if p["in"] != "header" {
                assert_eq!(p["in"], "query", "{path}: {p}");
                assert_ne!(p["required"], true, "{path}: {p}");
            }
        }
    }
    for path in ["/v1/api-keys", "/v1/audit-logs"] {
        let limit = param(path, "limit");
        assert_eq!(limit["minimum"], 1, "{path}: {limit}");
        assert_eq!(limit["maximum"], 500, "{path}: {limit}");
    }
    assert_eq!(param("/v1/api-keys", "q")["maxLength"], 100);
    // A gateway never checks keydeck's own reporter scope (listed last).
    assert_eq!(
        param("/v1/auth", "scope")["enum"],
        json!(ids[..ids.len() - 1])
    );

    // The bounds are enforced, not clamped.
    for (path, limit) in [
        ("/v1/api-keys", 0),
        ("/v1/api-keys", 501),
        ("/v1/audit-logs", 501),
    ] {
        let r = s
            .get(&format!("{path}?limit={limit}"), &s.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}?limit={limit}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["fields"]["limit"].is_string(), "{body}");
    }
    let r = s
        .get("/v1/api-keys?limit=500", &s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Statuses every route can give: 503 too, since any request can pass its
    // deadline or find the connection cap reached (database routes add
    // `database_unavailable`).
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = &op["responses"];
            for status in ["405", "408", "413", "431", "503"] {
                assert!(responses.get(status).is_some(), "{method} {path}: {status}");
            }
            let authenticated = path.starts_with("/v1/") && path != "/v1/scopes";
            assert_eq!(
                responses.get("429").is_some(),
                authenticated,
                "{method} {path}: 429"
            );
        }
    }
    let create_op = &doc["paths"]["/v1/api-keys"]["post"]["responses"];
    assert!(create_op.get("422").is_some());
    s.stop().await;
    backend.cleanup().await;
}

/// The list endpoints whose query parameters are checked against their limits.
const LIST_ROUTES: &[&str] = &[
    "/v1/api-keys",
    "/v1/api-keys/counts",
    "/v1/audit-logs",
    "/v1/webhooks/{id}/deliveries",
    "/v1/usage",
    "/v1/api-keys/{id}/usage",
];

/// A well-formed value of exactly `len` characters for a query parameter
/// documented with a `maxLength`, one the code would take but for its
/// length: at the limit it is answered, one past it refused for its length.
fn value_of_length(route: &str, name: &str, len: usize) -> Option<String> {
    let padded = |tail: &str| format!("{:0>width$}{tail}", 1, width = len - tail.len());
    match (route, name) {
        (_, "q") => Some("a".repeat(len)),
        // A created-order position: leading zeros keep it one.
        ("/v1/api-keys", "cursor" | "before") => Some(padded(".key_a")),
        ("/v1/api-keys", "changed_since") => Some(format!("c{:0>width$}", 1, width = len - 1)),
        ("/v1/audit-logs", "api_key_id") => Some(format!("key_{}", "a".repeat(len - 4))),
        ("/v1/audit-logs" | "/v1/webhooks/{id}/deliveries", "cursor" | "before") => {
            Some(padded(""))
        }
        _ => None,
    }
}

/// The values of a parameter the code takes from a closed set, and what the
/// query needs beside it.
fn choices_of(route: &str, name: &str) -> Option<(&'static [&'static str], &'static str)> {
    match (route, name) {
        ("/v1/api-keys", "tab") => {
            Some((&["all", "active", "expired", "revoked", "attention"], ""))
        }
        // `sort=attention` is the attention tab's order.
        ("/v1/api-keys", "sort") => Some((
            &[
                "created",
                "name",
                "last_used",
                "expires",
                "status",
                "attention",
            ],
            "&tab=attention",
        )),
        ("/v1/api-keys", "order") => Some((&["asc", "desc"], "")),
        (_, "from") => Some((&["end"], "")),
        _ => None,
    }
}

/// The `enum` of a parameter's schema, through a `$ref` or a nullable `oneOf`.
fn enum_of(doc: &Value, schema: &Value) -> Option<Vec<String>> {
    if let Some(values) = schema["enum"].as_array() {
        return Some(
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        );
    }
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return enum_of(doc, &doc["components"]["schemas"][name]);
    }
    ["oneOf", "anyOf", "allOf"]
        .iter()
        .filter_map(|k| schema[*k].as_array())
        .flatten()
        .find_map(|s| enum_of(doc, s))
}

/// GET `route` (as `path`) with one query; its status and JSON answer.
async fn ask(s: &TestServer, path: &str, query: &str) -> (StatusCode, Value) {
    let r = s
        .get(&format!("{path}?{query}"), &s.admin_token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every query parameter of the list endpoints has a limit in the document
/// (a length, a range or a set of values), and the service keeps exactly
/// that limit: a value at it is answered, one past it is a 400 naming the
/// parameter. A limit changed on one side only fails here.
async fn every_documented_query_limit_is_the_code_s(backend: Backend) {
    let s = TestServer::start_with(&backend, Arc::new(SystemClock), |_| {}).await;
    let doc = document(&s).await;
    let hook = add_webhook(&s).await;
    let (key, _) = s.create_key("limits", &["full_access"]).await;
    let key_id = key["id"].as_str().unwrap().to_owned();
    let mut checked = 0;
    for route in LIST_ROUTES {
        let path = route
            .replace("/v1/webhooks/{id}", &format!("/v1/webhooks/{hook}"))
            .replace("/v1/api-keys/{id}", &format!("/v1/api-keys/{key_id}"));
        let params = doc["paths"][route]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{route} documents its parameters"));
        for p in params.iter().filter(|p| p["in"] == "query") {
            let name = p["name"].as_str().unwrap();
            let schema = &p["schema"];
            let what = format!("GET {route} ?{name}");
            let accepted = |query: String, status: StatusCode, body: Value| {
                assert_eq!(status, StatusCode::OK, "{what}: {query}: {body}");
            };
            let refused = |query: String, status: StatusCode, body: Value| {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {query}: {body}");
                assert!(
                    body["error"]["fields"][name].is_string(),
                    "{what}: {query}: the field is not named: {body}"
                );
            };
            if let Some(max) = schema["maxLength"].as_u64() {
                let max = max as usize;
                if let Some(at) = value_of_length(route, name, max) {
                    assert_eq!(at.chars().count(), max, "{what}: {at}");
                    let query = format!("{name}={at}");
                    let (status, body) = ask(&s, &path, &query).await;
                    accepted(query, status, body);
                    let past = value_of_length(route, name, max + 1).unwrap();
                    let query = format!("{name}={past}");
                    let (status, body) = ask(&s, &path, &query).await;
                    refused(query, status, body);
                } else if let Some((values, extra)) = choices_of(route, name) {
                    for v in values {
                        assert!(v.len() <= max, "{what}: {v} is longer than {max}");
                        let query = format!("{name}={v}{extra}");
                        let (status, body) = ask(&s, &path, &query).await;
                        accepted(query, status, body);
                    }
                    let query = format!("{name}={}{extra}", "a".repeat(max + 1));
                    let (status, body) = ask(&s, &path, &query).await;
                    refused(query, status, body);
                } else {
                    panic!(
                        "{what}: maxLength {max} is documented, and this test has no value for it"
                    );
                }
            } else if let (Some(min), Some(max)) =
                (schema["minimum"].as_i64(), schema["maximum"].as_i64())
            {
                for n in [min, max] {
                    let query = format!("{name}={n}");
                    let (status, body) = ask(&s, &path, &query).await;
                    accepted(query, status, body);
                }
                for n in [min - 1, max + 1] {
                    let query = format!("{name}={n}");
                    let (status, body) = ask(&s, &path, &query).await;
                    refused(query, status, body);
                }
            } else if let Some(values) = enum_of(&doc, schema) {
                assert!(!values.is_empty(), "{what}: {schema}");
                for v in &values {
                    let query = format!("{name}={v}");
                    let (status, body) = ask(&s, &path, &query).await;
                    accepted(query, status, body);
                }
                let query = format!("{name}=none-of-these");
                let (status, body) = ask(&s, &path, &query).await;
                refused(query, status, body);
            } else {
                panic!("{what}: no limit documented (maxLength, minimum/maximum or enum): {p}");
            }
            checked += 1;
        }
    }
    // Every list endpoint's parameters: a route losing them would pass unseen.
    assert!(checked >= 20, "only {checked} parameters checked");
    s.stop().await;
    backend.cleanup().await;
}

/// The positions the service hands out fit the length the document gives
/// `cursor` and `before`, and are taken back: the longest, a name sort's of
/// a 100-character name of 4-byte characters, included.
async fn the_cursors_the_service_gives_fit_the_document(backend: Backend) {
    let s = TestServer::start_with(&backend, Arc::new(SystemClock), |_| {}).await;
    let doc = document(&s).await;
    let max = |name: &str| -> usize {
        doc["paths"]["/v1/api-keys"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["schema"]["maxLength"]
            .as_u64()
            .unwrap() as usize
    };
    let long = |last: char| format!("{}{last}", "\u{1F600}".repeat(99));
    let (first, _) = s.create_key(&long('a'), &["full_access"]).await;
    let (second, _) = s.create_key(&long('b'), &["full_access"]).await;
    let page = s
        .get_json("/v1/api-keys?sort=name&limit=1", &s.admin_token)
        .await;
    assert_eq!(page["data"][0]["id"], first["id"], "{page}");
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    assert!(
        next.len() > 512,
        "the longest kind of position: {}",
        next.len()
    );
    assert!(
        next.len() <= max("cursor"),
        "{} > {}",
        next.len(),
        max("cursor")
    );
    let (status, page) = ask(
        &s,
        "/v1/api-keys",
        &format!("sort=name&limit=1&cursor={next}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"][0]["id"], second["id"], "{page}");
    let prev = page["prev_cursor"].as_str().unwrap().to_owned();
    assert!(
        prev.len() <= max("before"),
        "{} > {}",
        prev.len(),
        max("before")
    );
    let (status, page) = ask(
        &s,
        "/v1/api-keys",
        &format!("sort=name&limit=1&before={prev}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"][0]["id"], first["id"], "{page}");
    let sync = page["sync_cursor"].as_str().unwrap();
    assert!(sync.len() <= max("changed_since"), "{sync}");
    s.stop().await;
    backend.cleanup().await;
}
