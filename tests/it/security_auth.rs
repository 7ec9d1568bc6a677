//! The edges of authentication, over real HTTP: forward-auth refuses every
//! ambiguous required scope, the client address behind a trusted proxy cannot
//! be forged, and on PostgreSQL the failed-check limit is shared by replicas
//! and survives a restart.

use crate::common;

use std::time::{Duration, Instant};

use common::{error_code, Backend, TestServer};
use keydeck::clock::SystemClock;
use reqwest::header::HeaderValue;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    forward_auth_refuses_ambiguous_scopes,
    forward_auth_keeps_unambiguous_scopes,
    behind_a_trusted_proxy_the_client_is_the_rightmost_untrusted_hop,
    without_a_trusted_proxy_forwarding_headers_are_ignored,
);

/// `GET /v1/auth` with a key, the given `X-Required-Scope` values (raw bytes)
/// and query string.
async fn auth_with(
    s: &TestServer,
    key: &str,
    scope_headers: &[&[u8]],
    query: &str,
) -> reqwest::Response {
    let mut req = s
        .http
        .get(s.url(&format!("/v1/auth{query}")))
        .header("x-api-key", key);
    for value in scope_headers {
        req = req.header("x-required-scope", HeaderValue::from_bytes(value).unwrap());
    }
    req.send().await.expect("request")
}

/// A 400 `invalid_request` whose `fields.scope` mentions `reason`.
async fn assert_ambiguous(r: reqwest::Response, reason: &str, case: &str) {
    let (status, code, body) = error_code(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
    assert_eq!(code, "invalid_request", "{case}: {body}");
    let message = body["error"]["fields"]["scope"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(reason),
        "{case}: {message:?} should say {reason:?}"
    );
}

async fn forward_auth_refuses_ambiguous_scopes(backend: Backend) {
    let s = TestServer::start(&backend).await;
    // A key with resources:read only: a check that let the wrong scope win
    // would answer 200 where sessions:write was required.
    let (_, key) = s.create_key("reader", &["resources:read"]).await;
    let read: &[u8] = b"resources:read";
    let write: &[u8] = b"sessions:write";

    let r = auth_with(&s, &key, &[read, write], "").await;
    assert_ambiguous(r, "different scopes", "two headers, granted scope first").await;
    let r = auth_with(&s, &key, &[write, read], "").await;
    assert_ambiguous(r, "different scopes", "two headers, granted scope last").await;
    let r = auth_with(&s, &key, &[b""], "").await;
    assert_ambiguous(r, "empty", "empty header").await;
    let r = auth_with(&s, &key, &[b"   "], "").await;
    assert_ambiguous(r, "empty", "blank header").await;
    let r = auth_with(&s, &key, &[read, b""], "").await;
    assert_ambiguous(r, "empty", "a good header and an empty one").await;
    let r = auth_with(&s, &key, &[b"sessions:write\xff"], "").await;
    assert_ambiguous(r, "not readable", "non-UTF-8 header").await;
    let r = auth_with(&s, &key, &[b"\xe9"], "").await;
    assert_ambiguous(r, "not readable", "a lone Latin-1 byte").await;
    let r = auth_with(&s, &key, &[write], "?scope=resources:read").await;
    assert_ambiguous(r, "different scopes", "query granted, header not").await;
    let r = auth_with(&s, &key, &[read], "?scope=sessions:write").await;
    assert_ambiguous(r, "different scopes", "header granted, query not").await;
    let r = auth_with(&s, &key, &[], "?scope=").await;
    assert_ambiguous(r, "empty", "empty query").await;
    let r = auth_with(&s, &key, &[write], "?scope=").await;
    assert_ambiguous(r, "empty", "empty query with a header").await;
    // Two query parameters are refused too (no "first wins").
    let r = auth_with(&s, &key, &[], "?scope=resources:read&scope=sessions:write").await;
    let (status, code, _) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    // A huge scope is refused without being echoed back.
    let long = "x".repeat(5000);
    let r = auth_with(&s, &key, &[long.as_bytes()], "").await;
    let (status, _, body) = error_code(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.to_string().contains(&long));

    s.stop().await;
    backend.cleanup().await;
}

async fn forward_auth_keeps_unambiguous_scopes(backend: Backend) {
    let s = TestServer::start(&backend).await;
    let (_, key) = s.create_key("reader", &["resources:read"]).await;
    let read: &[u8] = b"resources:read";
    let write: &[u8] = b"sessions:write";
    for (headers, query, expected) in [
        (vec![], "", StatusCode::OK),
        (vec![read], "", StatusCode::OK),
        (vec![write], "", StatusCode::FORBIDDEN),
        (vec![read, read], "", StatusCode::OK),
        (vec![write, write], "", StatusCode::FORBIDDEN),
        (vec![b" resources:read " as &[u8]], "", StatusCode::OK),
        (vec![], "?scope=resources:read", StatusCode::OK),
        (vec![], "?scope=sessions:write", StatusCode::FORBIDDEN),
        (vec![read], "?scope=resources:read", StatusCode::OK),
        (vec![write], "?scope=sessions:write", StatusCode::FORBIDDEN),
    ] {
        let r = auth_with(&s, &key, &headers, query).await;
        assert_eq!(r.status(), expected, "headers {headers:?}, query {query:?}");
    }
    let r = auth_with(&s, &key, &[b"no:such"], "").await;
    let (status, _, body) = error_code(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["fields"]["scope"]
        .as_str()
        .unwrap()
        .contains("unknown scope"));

    // The rule is in the OpenAPI document.
    let doc = s.get_json("/openapi.json", "").await;
    let op = &doc["paths"]["/v1/auth"]["get"];
    assert!(
        op["description"]
            .as_str()
            .unwrap_or_default()
            .contains("unambiguous"),
        "{op}"
    );
    assert!(
        op["responses"]["400"]["description"]
            .as_str()
            .unwrap()
            .contains("X-Required-Scope"),
        "{op}"
    );
    s.stop().await;
    backend.cleanup().await;
}

/// Requests as a proxy on 127.0.0.1 would send them, with forwarding headers.
struct Forwarded<'a> {
    s: &'a TestServer,
}

impl Forwarded<'_> {
    async fn auth(&self, key: &str, headers: &[(&str, &str)]) -> StatusCode {
        let mut req = self
            .s
            .http
            .get(self.s.url("/v1/auth"))
            .header("x-api-key", key);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.expect("request").status()
    }

    /// Creates a key as the admin with these headers; the address the audit log records.
    async fn audited_addr(&self, headers: &[(&str, &str)]) -> String {
        let mut req = self
            .s
            .http
            .post(self.s.url("/v1/api-keys"))
            .bearer_auth(&self.s.admin_token)
            .json(&json!({"name": "audited", "scopes": ["resources:read"]}));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let r = req.send().await.expect("request");
        assert_eq!(r.status(), StatusCode::CREATED);
        let created: Value = r.json().await.unwrap();
        let log = self
            .s
            .get_json("/v1/audit-logs?limit=1", &self.s.admin_token)
            .await;
        let entry = &log["data"][0];
        assert_eq!(entry["api_key_id"], created["api_key"]["id"], "{log}");
        entry["remote_addr"]
            .as_str()
            .expect("remote_addr")
            .to_owned()
    }
}

const XFF: &str = "x-forwarded-for";
const REAL: &str = "x-real-ip";
/// `--max-failed-auth` in these tests.
const MAX: usize = 3;

fn bad_key(i: usize) -> String {
    format!("eg_live_wrong{i:03}")
}

async fn behind_a_trusted_proxy_the_client_is_the_rightmost_untrusted_hop(backend: Backend) {
    let s = TestServer::start_with(&backend, std::sync::Arc::new(SystemClock), |c| {
        c.max_failed_auth = MAX as u32;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap(), "10.0.0.254".parse().unwrap()];
    })
    .await;
    let (_, good) = s.create_key("good", &["resources:read"]).await;
    let p = Forwarded { s: &s };

    // --- who the audit log says it was --------------------------------------
    // Every X-Forwarded-For line counts, as one list read from the right;
    // X-Real-IP is ignored when X-Forwarded-For is there.
    let two_lines = [
        (XFF, "10.0.0.9"),
        (XFF, "10.1.1.1, 10.2.2.2"),
        (REAL, "10.7.7.7"),
    ];
    assert_eq!(p.audited_addr(&two_lines).await, "10.2.2.2");
    // Trusted hops are skipped.
    let via = [(XFF, "10.1.1.1, 10.3.3.3, 10.0.0.254"), (XFF, "127.0.0.1")];
    assert_eq!(p.audited_addr(&via).await, "10.3.3.3");
    // X-Real-IP alone is believed.
    assert_eq!(p.audited_addr(&[(REAL, "10.7.7.7")]).await, "10.7.7.7");
    // An unreadable entry stops the walk at the last trusted hop.
    let junk = [(XFF, "10.1.1.1, junk, 10.0.0.254")];
    assert_eq!(p.audited_addr(&junk).await, "10.0.0.254");

    // --- a client rotating what it writes is still one client ---------------
    // It varies the first X-Forwarded-For line and a forged X-Real-IP; the
    // proxy's own (last) entry stays 10.2.2.3.
    for i in 0..MAX {
        let first = format!("10.9.0.{i}");
        let real = format!("10.8.0.{i}");
        let h = [
            (XFF, first.as_str()),
            (XFF, "10.2.2.3"),
            (REAL, real.as_str()),
        ];
        assert_eq!(
            p.auth(&bad_key(i), &h).await,
            StatusCode::UNAUTHORIZED,
            "guess {i}"
        );
    }
    let h = [(XFF, "10.9.9.9"), (XFF, "10.2.2.3"), (REAL, "10.8.8.8")];
    assert_eq!(p.auth(&good, &h).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        p.auth(&good, &[(XFF, "10.2.2.3")]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy is not affected.
    assert_eq!(p.auth(&good, &[(XFF, "10.2.2.4")]).await, StatusCode::OK);

    // --- X-Real-IP, when it is all the proxy sends ---------------------------
    for i in 0..MAX {
        assert_eq!(
            p.auth(&bad_key(i), &[(REAL, "10.3.3.3")]).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        p.auth(&good, &[(REAL, "10.3.3.3")]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(p.auth(&good, &[(REAL, "10.3.3.4")]).await, StatusCode::OK);

    // --- an IPv6 client is its /64 -------------------------------------------
    for i in 0..MAX {
        let addr = format!("2001:db8:1:2::{:x}", i + 1);
        assert_eq!(
            p.auth(&bad_key(i), &[(XFF, &addr)]).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let same_64 = [(XFF, "2001:db8:1:2:abcd::99")];
    assert_eq!(p.auth(&good, &same_64).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        p.auth(&good, &[(XFF, "2001:db8:1:3::1")]).await,
        StatusCode::OK
    );

    // --- garbage from the right falls back to the proxy itself ---------------
    assert_eq!(p.auth(&good, &[]).await, StatusCode::OK);
    for i in 0..MAX {
        let h = [(XFF, "10.4.4.4, not-an-address")];
        assert_eq!(p.auth(&bad_key(i), &h).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(p.auth(&good, &[]).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(p.auth(&good, &[(XFF, "10.4.4.4")]).await, StatusCode::OK);

    s.stop().await;
    backend.cleanup().await;
}

async fn without_a_trusted_proxy_forwarding_headers_are_ignored(backend: Backend) {
    let s = TestServer::start_with(&backend, std::sync::Arc::new(SystemClock), |c| {
        c.max_failed_auth = MAX as u32;
    })
    .await;
    let (_, good) = s.create_key("good", &["resources:read"]).await;
    let p = Forwarded { s: &s };
    let forged = [(XFF, "10.1.1.1"), (REAL, "10.7.7.7")];
    assert_eq!(p.audited_addr(&forged).await, "127.0.0.1");
    for i in 0..MAX {
        let xff = format!("10.9.0.{i}");
        let real = format!("10.8.0.{i}");
        let h = [(XFF, xff.as_str()), (REAL, real.as_str())];
        assert_eq!(p.auth(&bad_key(i), &h).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        p.auth(&good, &[(XFF, "10.5.5.5")]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(p.auth(&good, &[]).await, StatusCode::TOO_MANY_REQUESTS);
    s.stop().await;
    backend.cleanup().await;
}

/// Polls `GET /v1/auth` with a good key from `client` until it answers 429 (at most 5 s).
async fn wait_for_lockout(s: &TestServer, client: &reqwest::Client, good: &str, which: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = client
            .get(s.url("/v1/auth"))
            .header("x-api-key", good)
            .send()
            .await
            .unwrap()
            .status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return;
        }
        assert_eq!(status, StatusCode::OK, "{which}");
        assert!(
            Instant::now() < deadline,
            "{which} did not lock the client out within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two replicas on one PostgreSQL database allow 20 failed checks from a
/// client in total, not 20 each; the lock holds on both and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(keydeck_pg),
    ignore = "set KEYDECK_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres to run"
)]
async fn failed_checks_are_counted_across_replicas_and_survive_a_restart() {
    let backend = Backend::postgres().await.expect("PostgreSQL");
    let a = TestServer::start(&backend).await;
    let b = TestServer::start(&backend).await;
    let (_, good) = a.create_key("good", &["resources:read"]).await;
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let attacker = from([127, 0, 0, 7]);
    let bystander = from([127, 0, 0, 8]);
    // The default limit, 20: 10 guesses through each replica.
    for i in 0..20 {
        let s = if i % 2 == 0 { &a } else { &b };
        let r = attacker
            .get(s.url("/v1/auth"))
            .header("x-api-key", bad_key(i))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    wait_for_lockout(&a, &attacker, &good, "replica a").await;
    wait_for_lockout(&b, &attacker, &good, "replica b").await;
    for s in [&a, &b] {
        let r = bystander
            .get(s.url("/v1/auth"))
            .header("x-api-key", &good)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    // A restarted replica still refuses the client for the rest of the window.
    a.stop().await;
    let a = TestServer::start(&backend).await;
    let r = attacker
        .get(a.url("/v1/auth"))
        .header("x-api-key", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let r = bystander
        .get(a.url("/v1/auth"))
        .header("x-api-key", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    a.stop().await;
    b.stop().await;
    backend.cleanup().await;
}
