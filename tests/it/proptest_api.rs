//! Property tests of the HTTP API: generated requests (bodies, headers, paths,
//! query strings, key strings, methods) to every route of one real service on
//! SQLite never get a 5xx, always get the documented error shape, and only get
//! statuses that `/openapi.json` documents for their route and method.
//!
//! Every request comes from its own loopback source address (127.1.x.y), so
//! the failed-authentication limiter never turns a case into a plain 429;
//! `too_many_failures_is_a_documented_429_on_every_authenticated_route`
//! trips it on purpose.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::{Backend, TestServer};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Map, Value};

/// Cases per property (6 properties plus one plain test; a few seconds in all).
const CASES: u32 = 256;
const BODY_LIMIT: usize = 16 * 1024;

/// The service shared by every property of this file.
struct Harness {
    rt: tokio::runtime::Runtime,
    server: TestServer,
    _backend: Backend,
    /// `(path template, lower-case method)` → documented statuses.
    documented: BTreeMap<(String, String), BTreeSet<u16>>,
    scope_ids: Vec<String>,
    next_addr: AtomicU32,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let backend = Backend::sqlite_in_target_tmp("proptest-api-");
        let (server, doc, scope_ids) = rt.block_on(async {
            let server = TestServer::start(&backend).await;
            let doc: Value = server.get_json("/openapi.json", "").await;
            // The gateway's scopes: keydeck's own reporter scope, listed
            // last, is never checked by a gateway nor combined with another.
            let mut scope_ids = server.scope_ids().await;
            scope_ids.retain(|s| s != "leaks:report");
            (server, doc, scope_ids)
        });
        let mut documented = BTreeMap::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let statuses = op["responses"]
                    .as_object()
                    .map(|r| r.keys().filter_map(|s| s.parse().ok()).collect())
                    .unwrap_or_default();
                documented.insert((path.clone(), method.clone()), statuses);
            }
        }
        Harness {
            rt,
            server,
            _backend: backend,
            documented,
            scope_ids,
            next_addr: AtomicU32::new(0),
        }
    })
}

/// One generated HTTP request. `path` and `query` are sent as written
/// (the URL parser only percent-encodes what cannot be sent raw).
#[derive(Debug, Clone)]
struct Req {
    method: Method,
    path: String,
    query: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl Req {
    fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: None,
            headers: Vec::new(),
            body: None,
        }
    }

    fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn admin(self) -> Self {
        let token = format!("Bearer {}", harness().server.admin_token);
        self.header("authorization", token)
    }

    fn json(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self.header("content-type", "application/json")
    }
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    /// The path as sent, after URL normalisation.
    path: String,
}

/// What a property saw: statuses the document does not list for the route
/// and method (with an example), and how often each status came.
#[derive(Default)]
struct Mismatches {
    undocumented: Mutex<BTreeMap<String, String>>,
    statuses: Mutex<BTreeMap<u16, usize>>,
}

impl Harness {
    /// A client bound to a loopback address no other request has used.
    fn client(&self) -> reqwest::Client {
        let n = self.next_addr.fetch_add(1, Ordering::Relaxed);
        let ip = Ipv4Addr::new(
            127,
            1 + (n / 62_500) as u8,
            (n / 250 % 250) as u8,
            (n % 250 + 1) as u8,
        );
        self.client_from(IpAddr::V4(ip))
    }

    fn client_from(&self, ip: IpAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(ip)
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    async fn send(&self, client: &reqwest::Client, req: &Req) -> Option<Answer> {
        let mut url = format!("{}{}", self.server.base, req.path);
        if let Some(q) = &req.query {
            url.push('?');
            url.push_str(q);
        }
        let url = reqwest::Url::parse(&url).ok()?;
        let path = url.path().to_owned();
        let mut builder = client.request(req.method.clone(), url);
        for (name, value) in &req.headers {
            // Only what HTTP can carry: a value with a control character cannot be sent.
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).ok()?;
            let value = reqwest::header::HeaderValue::from_bytes(value).ok()?;
            builder = builder.header(name, value);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let r = builder
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {}: no answer: {e}", req.method, req.path));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.expect("the body").to_vec();
        Some(Answer {
            status,
            headers,
            body,
            path,
        })
    }

    /// Sends `req` from a fresh address and checks the answer against the
    /// invariants; returns it (`None` if the URL could not be formed).
    fn exchange(
        &self,
        req: &Req,
        mismatches: &Mismatches,
    ) -> Result<Option<Answer>, TestCaseError> {
        let client = self.client();
        let Some(answer) = self.rt.block_on(self.send(&client, req)) else {
            return Ok(None);
        };
        self.check(req, &answer, mismatches)?;
        Ok(Some(answer))
    }

    fn check(&self, req: &Req, a: &Answer, mismatches: &Mismatches) -> Result<(), TestCaseError> {
        *mismatches
            .statuses
            .lock()
            .unwrap()
            .entry(a.status)
            .or_default() += 1;
        let shown = String::from_utf8_lossy(&a.body[..a.body.len().min(300)]).into_owned();
        prop_assert!(
            a.status < 500,
            "{} {} → {}: {}",
            req.method,
            a.path,
            a.status,
            shown
        );
        if a.status >= 400 && req.method != Method::HEAD {
            let content_type = a
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            prop_assert!(
                content_type.starts_with("application/json"),
                "{} {} → {} with content-type {:?}: {}",
                req.method,
                a.path,
                a.status,
                content_type,
                shown
            );
            let body: Value = serde_json::from_slice(&a.body).map_err(|e| {
                TestCaseError::fail(format!(
                    "{} → {}: not JSON ({e}): {shown}",
                    a.path, a.status
                ))
            })?;
            prop_assert!(
                body["error"]["code"].is_string() && body["error"]["message"].is_string(),
                "{} {} → {}: no error.code/message: {}",
                req.method,
                a.path,
                a.status,
                shown
            );
        }
        if a.status == 401 {
            prop_assert!(
                a.headers.contains_key("www-authenticate"),
                "{} {} → 401 without WWW-Authenticate",
                req.method,
                a.path
            );
        }
        let method = if req.method == Method::HEAD {
            "get".to_owned()
        } else {
            req.method.as_str().to_ascii_lowercase()
        };
        // A body over 16 KiB is refused (413) before routing, on any path and
        // method: the document lists 413 on every route.
        let expected: Option<BTreeSet<u16>> = match route_of(&a.path) {
            None => Some(BTreeSet::from([404, 413])),
            Some("/openapi.json") if method == "get" => Some(BTreeSet::from([200, 413])),
            Some(template) => match self.documented.get(&(template.to_owned(), method.clone())) {
                Some(statuses) => Some(statuses.clone()),
                None if self.documented.keys().any(|(p, _)| p == template)
                    || template == "/openapi.json" =>
                {
                    Some(BTreeSet::from([405, 413]))
                }
                None => None,
            },
        };
        if let Some(expected) = expected {
            if !expected.contains(&a.status) {
                let route = route_of(&a.path).unwrap_or("(no route)");
                mismatches
                    .undocumented
                    .lock()
                    .unwrap()
                    .entry(format!("{} {route} → {}", method.to_uppercase(), a.status))
                    .or_insert_with(|| format!("{:?} {}: {shown}", req.query, a.path));
            }
        }
        Ok(())
    }

    fn assert_up(&self) {
        let status = self.rt.block_on(async {
            self.client()
                .get(self.server.url("/healthz"))
                .send()
                .await
                .expect("the service still answers")
                .status()
        });
        assert_eq!(status, 200, "/healthz after the property");
    }

    /// A fresh key with every scope; returns (id, secret).
    fn new_key(&self) -> (String, String) {
        self.rt.block_on(async {
            let (key, secret) = self.server.create_key("prop", &["full_access"]).await;
            (key["id"].as_str().unwrap().to_owned(), secret)
        })
    }
}

/// The route template an (encoded) path matches, as axum's router would.
fn route_of(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["", "healthz"] => Some("/healthz"),
        ["", "openapi.json"] => Some("/openapi.json"),
        ["", "v1", "scopes"] => Some("/v1/scopes"),
        ["", "v1", "api-keys"] => Some("/v1/api-keys"),
        ["", "v1", "api-keys", id] if !id.is_empty() => Some("/v1/api-keys/{id}"),
        // The router matches an empty id in the middle of a path (`//rotate`),
        // but not at its end (`/v1/api-keys/`).
        ["", "v1", "api-keys", _, "rotate"] => Some("/v1/api-keys/{id}/rotate"),
        ["", "v1", "audit-logs"] => Some("/v1/audit-logs"),
        ["", "v1", "auth"] => Some("/v1/auth"),
        _ => None,
    }
}

/// Runs `test` on `CASES` values of `strategy`, then asserts that the service
/// is up and that no status was seen that the OpenAPI document lacks.
fn run_property<S>(strategy: S, test: impl Fn(S::Value, &Mismatches) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let h = harness();
    let mismatches = Mismatches::default();
    let config = Config {
        failure_persistence: None,
        ..Config::with_cases(CASES)
    };
    // In CI the same cases every run, so a submission is judged on its code,
    // not on the draw; on a developer's machine new cases each run.
    let mut runner = if std::env::var_os("CI").is_some() {
        let rng = proptest::test_runner::TestRng::deterministic_rng(config.rng_algorithm);
        TestRunner::new_with_rng(config, rng)
    } else {
        TestRunner::new(config)
    };
    if let Err(e) = runner.run(&strategy, |v| test(v, &mismatches)) {
        panic!("{e}");
    }
    h.assert_up();
    eprintln!("statuses seen: {:?}", mismatches.statuses.lock().unwrap());
    let m = mismatches.undocumented.into_inner().unwrap();
    assert!(
        m.is_empty(),
        "statuses that /openapi.json does not document for the route:\n{m:#?}"
    );
}

// ---------- generators ----------

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        8 => Just(Method::GET),
        6 => Just(Method::POST),
        3 => Just(Method::DELETE),
        1 => Just(Method::PUT),
        1 => Just(Method::PATCH),
        1 => Just(Method::HEAD),
        1 => Just(Method::OPTIONS),
        1 => Just(Method::TRACE),
        1 => "[A-Z]{1,12}"
            .prop_filter("CONNECT tunnels", |m| m != "CONNECT")
            .prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

/// Large strings at and around the limits.
fn sized(c: char, lens: &'static [usize]) -> impl Strategy<Value = String> {
    select(lens).prop_map(move |n| std::iter::repeat_n(c, n).collect())
}

/// A path segment where a key id goes.
fn id_segment(real: String) -> BoxedStrategy<String> {
    prop_oneof![
        3 => Just(real),
        2 => "key_[A-Za-z0-9]{20}",
        1 => "key_[A-Za-z0-9]{0,70}",
        1 => "[^/?#]{1,20}",
        1 => "(%[0-9A-Fa-f]{2}){1,6}",
        1 => Just("%FF%FE".to_owned()),
        1 => Just("key_%00".to_owned()),
        1 => Just("key_%2F..%2F".to_owned()),
        1 => sized('k', &[65, 5000]),
    ]
    .boxed()
}

fn path(real_id: String) -> impl Strategy<Value = String> {
    let id = id_segment(real_id);
    prop_oneof![
        1 => Just("/healthz".to_owned()),
        1 => Just("/openapi.json".to_owned()),
        1 => Just("/v1/scopes".to_owned()),
        3 => Just("/v1/api-keys".to_owned()),
        3 => id.clone().prop_map(|id| format!("/v1/api-keys/{id}")),
        3 => id.prop_map(|id| format!("/v1/api-keys/{id}/rotate")),
        2 => Just("/v1/audit-logs".to_owned()),
        3 => Just("/v1/auth".to_owned()),
        1 => "/[a-z0-9/._%-]{0,40}",
        1 => "/v1/api-keys/[a-z0-9]{0,8}/[a-z/]{0,10}",
    ]
}

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "active",
                "expired",
                "revoked",
                "all",
                "ACTIVE",
                "",
                "0",
                "1",
                "100",
                "500",
                "501",
                "-1",
                "1.5",
                "99999999999999999999",
                "%FF",
                "%00",
                "%C3%28",
                "sessions:read",
                "full_access",
                "a%26b=c",
                "eyJ4Ijo%3D"
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-zA-Z0-9:_.~-]{0,30}",
        "\\PC{0,20}".prop_map(|s| s.replace(['&', '#', '%'], "")),
        sized('q', &[100, 101, 4000]),
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    let pair = (
        prop_oneof![
            select(&["status", "q", "limit", "cursor", "scope"][..]).prop_map(str::to_owned),
            "[a-z_]{1,8}",
        ],
        query_value(),
    );
    proptest::option::weighted(
        0.6,
        prop_oneof![
            4 => prop::collection::vec(pair, 0..4).prop_map(|pairs| {
                pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
            }),
            1 => "[ -~]{0,60}",
        ],
    )
}

/// Header value bytes that HTTP can carry: no CR, LF, NUL or other controls
/// except tab; bytes above 0x7F (not UTF-8) included.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[ -~]{0,40}".prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<u8>(), 0..48).prop_map(|mut b| {
            for c in &mut b {
                if (*c < 0x20 && *c != b'\t') || *c == 0x7f {
                    *c = b'?';
                }
            }
            b
        }),
        1 => sized('h', &[BODY_LIMIT, BODY_LIMIT + 1000]).prop_map(String::into_bytes),
    ]
}

/// Key strings around a real secret: the key itself and near misses.
#[derive(Debug, Clone)]
enum KeyString {
    Exact,
    Padded(String, String),
    Changed(prop::sample::Index, char),
    NearMissChecksum(prop::sample::Index, char),
    Truncated(prop::sample::Index),
    Extended(String),
    FlippedCase(prop::sample::Index),
    OtherPrefix(String),
    Doubled,
    Junk(Vec<u8>),
}

impl KeyString {
    fn apply(&self, secret: &str) -> Vec<u8> {
        let chars: Vec<char> = secret.chars().collect();
        let replace = |i: usize, c: char| {
            let mut v = chars.clone();
            v[i] = c;
            v.into_iter().collect::<String>()
        };
        let s = match self {
            Self::Exact => secret.to_owned(),
            Self::Padded(a, b) => format!("{a}{secret}{b}"),
            Self::Changed(i, c) => replace(i.index(chars.len()), *c),
            Self::NearMissChecksum(i, c) => replace(chars.len() - 6 + i.index(6), *c),
            Self::Truncated(i) => chars[..i.index(chars.len())].iter().collect(),
            Self::Extended(tail) => format!("{secret}{tail}"),
            Self::FlippedCase(i) => {
                let i = i.index(chars.len());
                let c = chars[i];
                replace(
                    i,
                    if c.is_ascii_uppercase() {
                        c.to_ascii_lowercase()
                    } else {
                        c.to_ascii_uppercase()
                    },
                )
            }
            Self::OtherPrefix(p) => format!("{p}{}", &secret[8..]),
            Self::Doubled => format!("{secret}{secret}"),
            Self::Junk(b) => return b.clone(),
        };
        s.into_bytes()
    }
}

fn key_string() -> impl Strategy<Value = KeyString> {
    let base62 = "[0-9A-Za-z]".prop_map(|s| s.chars().next().unwrap());
    prop_oneof![
        2 => Just(KeyString::Exact),
        1 => ("[ \t]{0,3}", "[ \t]{0,3}").prop_map(|(a, b)| KeyString::Padded(a, b)),
        3 => (any::<prop::sample::Index>(), prop_oneof![base62.clone(), any::<char>()])
            .prop_map(|(i, c)| KeyString::Changed(i, c)),
        3 => (any::<prop::sample::Index>(), base62).prop_map(|(i, c)| KeyString::NearMissChecksum(i, c)),
        1 => any::<prop::sample::Index>().prop_map(KeyString::Truncated),
        1 => "[0-9A-Za-z=_ ]{1,8}".prop_map(KeyString::Extended),
        1 => any::<prop::sample::Index>().prop_map(KeyString::FlippedCase),
        1 => "[a-z_]{1,12}".prop_map(KeyString::OtherPrefix),
        1 => Just(KeyString::Doubled),
        1 => header_bytes().prop_map(KeyString::Junk),
    ]
}

/// JSON of any shape, including deep nesting.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::String),
        "[\\x00-\\x1f\\x7f]{1,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(&["name", "description", "scopes", "expires_at", "grace_seconds"][..]).prop_map(str::to_owned),
        1 => "[a-z_]{1,10}",
        1 => "\\PC{0,6}",
    ]
}

fn text_field(max_ok: usize) -> impl Strategy<Value = Value> {
    let lens: &'static [usize] = if max_ok == 100 {
        &[100, 101, 5000, BODY_LIMIT - 60, BODY_LIMIT + 1]
    } else {
        &[500, 501, 5000, BODY_LIMIT - 60, BODY_LIMIT + 1]
    };
    prop_oneof![
        12 => "[a-zA-Z0-9 ._-]{1,40}".prop_map(Value::String),
        1 => Just(json!("")),
        1 => Just(json!("   ")),
        1 => "\\PC{1,60}".prop_map(Value::String),
        1 => "[a-z]{0,4}[\\x00-\\x1f\\x7f\\u{85}][a-z]{0,4}".prop_map(Value::String),
        1 => sized('é', lens).prop_map(Value::String),
        1 => json_value(),
    ]
}

fn scopes_field(ids: Vec<String>) -> impl Strategy<Value = Value> {
    prop_oneof![
        12 => prop::sample::subsequence(ids.clone(), 1..=ids.len()).prop_map(|s| json!(s)),
        1 => Just(json!([])),
        1 => prop::collection::vec("[a-z:_]{0,20}", 1..4).prop_map(|s| json!(s)),
        1 => select(ids).prop_map(|id| json!(vec![id; 3000])),
        1 => Just(json!("sessions:read")),
        1 => json_value(),
    ]
}

fn expires_field() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.5,
        prop_oneof![
            4 => (1i64..3600).prop_map(|d| json!((chrono::Utc::now() + chrono::Duration::days(d)).to_rfc3339())),
            1 => (1i64..4000).prop_map(|d| json!((chrono::Utc::now() - chrono::Duration::days(d)).to_rfc3339())),
            1 => select(&["9999-12-31T23:59:59Z", "+275760-09-13T00:00:00Z", "2030-02-30T00:00:00Z",
                "2030-01-01", "tomorrow", "", "2030-01-01T00:00:00+25:00"][..]).prop_map(|s| json!(s)),
            1 => json_value(),
        ],
    )
}

/// A create body: a mostly well-formed object, then perhaps mangled.
#[derive(Debug, Clone)]
enum Mangle {
    None,
    DuplicateName(String),
    Truncate(prop::sample::Index),
    NonUtf8(Vec<u8>),
    DeepNesting(usize),
    Array,
    Padded(usize),
}

fn mangle() -> impl Strategy<Value = Mangle> {
    prop_oneof![
        24 => Just(Mangle::None),
        1 => "[a-z]{1,8}".prop_map(Mangle::DuplicateName),
        1 => any::<prop::sample::Index>().prop_map(Mangle::Truncate),
        1 => prop::collection::vec(0x80u8..=0xff, 1..6).prop_map(Mangle::NonUtf8),
        1 => select(&[64usize, 127, 128, 129, 5000][..]).prop_map(Mangle::DeepNesting),
        1 => Just(Mangle::Array),
        1 => select(&[BODY_LIMIT, BODY_LIMIT * 2][..]).prop_map(Mangle::Padded),
    ]
}

fn mangled(object: &Map<String, Value>, how: &Mangle) -> Vec<u8> {
    let text = serde_json::to_string(object).unwrap();
    match how {
        Mangle::None => text.into_bytes(),
        Mangle::DuplicateName(n) => format!("{{\"name\":\"{n}\",{}", &text[1..]).into_bytes(),
        Mangle::Truncate(i) => text.as_bytes()[..i.index(text.len().max(1))].to_vec(),
        Mangle::NonUtf8(bytes) => {
            let mut b = b"{\"name\":\"".to_vec();
            b.extend_from_slice(bytes);
            b.extend_from_slice(b"\",\"scopes\":[\"sessions:read\"]}");
            b
        }
        Mangle::DeepNesting(depth) => format!(
            "{{\"name\":{}{},\"scopes\":[\"sessions:read\"]}}",
            "[".repeat(*depth),
            "]".repeat(*depth)
        )
        .into_bytes(),
        Mangle::Array => format!("[{text}]").into_bytes(),
        Mangle::Padded(n) => format!("{text}{}", " ".repeat(*n)).into_bytes(),
    }
}

fn create_body(scope_ids: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::option::weighted(0.95, text_field(100)),
        prop::option::weighted(0.4, text_field(500)),
        prop::option::weighted(0.95, scopes_field(scope_ids)),
        expires_field(),
        prop::option::weighted(0.1, (field_name(), json_value())),
        mangle(),
    )
        .prop_map(|(name, description, scopes, expires, extra, how)| {
            let mut o = Map::new();
            for (k, v) in [
                ("name", name),
                ("description", description),
                ("scopes", scopes),
                ("expires_at", expires),
            ] {
                if let Some(v) = v {
                    o.insert(k.to_owned(), v);
                }
            }
            if let Some((k, v)) = extra {
                o.insert(k, v);
            }
            mangled(&o, &how)
        })
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        8 => Just(Some("application/json")),
        1 => Just(Some("application/json; charset=utf-8")),
        1 => Just(Some("application/merge-patch+json")),
        1 => Just(Some("text/plain")),
        1 => Just(Some("application/x-www-form-urlencoded")),
        1 => Just(None),
    ]
}

fn idempotency_key() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::weighted(
        0.3,
        prop_oneof![
            3 => select(&["retry-1", "retry-2", "retry-3"][..]).prop_map(|s| s.as_bytes().to_vec()),
            1 => "[!-~]{256}".prop_map(String::into_bytes),
            1 => header_bytes(),
        ],
    )
}

// ---------- properties ----------

#[test]
fn any_request_to_any_route_gets_a_documented_non_5xx_answer() {
    let h = harness();
    let (id, secret) = h.new_key();
    let admin = format!("Bearer {}", h.server.admin_token);
    let credential = prop_oneof![
        4 => Just(Some(("authorization".to_owned(), admin.into_bytes()))),
        1 => Just(Some(("authorization".to_owned(), format!("Bearer {secret}").into_bytes()))),
        1 => Just(Some(("x-api-key".to_owned(), secret.clone().into_bytes()))),
        1 => header_bytes().prop_map(|b| Some(("authorization".to_owned(), b))),
        1 => Just(None),
    ];
    let body = prop::option::weighted(
        0.5,
        prop_oneof![
            2 => create_body(h.scope_ids.clone()),
            1 => json_value().prop_map(|v| v.to_string().into_bytes()),
            1 => prop::collection::vec(any::<u8>(), 0..200),
            1 => sized(' ', &[BODY_LIMIT + 1]).prop_map(String::into_bytes),
        ],
    );
    let strategy = (
        method(),
        path(id),
        query(),
        credential,
        content_type(),
        body,
    );
    run_property(
        strategy,
        |(method, path, query, credential, ct, body), m| {
            let mut req = Req::new(method, path);
            req.query = query;
            if let Some((name, value)) = credential {
                req = req.header(&name, value);
            }
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            req.body = body;
            h.exchange(&req, m).map(drop)
        },
    );
}

#[test]
fn generated_create_bodies_are_created_or_refused_with_a_reason() {
    let h = harness();
    let strategy = (
        create_body(h.scope_ids.clone()),
        content_type(),
        idempotency_key(),
    );
    run_property(strategy, |(body, ct, idem), m| {
        let mut req = Req::new(Method::POST, "/v1/api-keys").admin();
        req.body = Some(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        if let Some(idem) = idem {
            req = req.header("idempotency-key", idem);
        }
        let Some(a) = h.exchange(&req, m)? else {
            return Ok(());
        };
        if a.status == 201 {
            let created: Value = serde_json::from_slice(&a.body).unwrap();
            let secret = created["secret"].as_str().unwrap_or_default();
            prop_assert!(keydeck::key::SecretFormat::default().parse(secret).is_ok());
            prop_assert!(created["api_key"]["id"].is_string());
        }
        if a.status == 400 {
            let body: Value = serde_json::from_slice(&a.body).unwrap();
            let message = body["error"]["message"].as_str().unwrap_or_default();
            prop_assert!(!message.trim().is_empty(), "a 400 without a message");
        }
        Ok(())
    });
}

#[test]
fn generated_rotate_bodies_and_ids_never_fail_the_service() {
    let h = harness();
    let grace = prop_oneof![
        select(
            &[
                "0",
                "1",
                "86400",
                "86401",
                "-1",
                "1.5",
                "\"10\"",
                "null",
                "18446744073709551616",
                "1e3",
                "[]"
            ][..]
        )
        .prop_map(|g| format!("{{\"grace_seconds\":{g}}}").into_bytes()),
        Just(Vec::new()),
        Just(b"  \n ".to_vec()),
        Just(b"{}".to_vec()),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 1..64),
        sized('x', &[BODY_LIMIT + 1]).prop_map(String::into_bytes),
    ];
    let strategy = (
        any::<bool>(),
        id_segment("FRESH".into()),
        grace,
        content_type(),
    );
    run_property(strategy, |(fresh, id, body, ct), m| {
        let id = if fresh || id == "FRESH" {
            h.new_key().0
        } else {
            id
        };
        let mut req = Req::new(Method::POST, format!("/v1/api-keys/{id}/rotate")).admin();
        req.body = Some(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        h.exchange(&req, m).map(drop)
    });
}

#[test]
fn generated_query_strings_on_the_lists_are_answered_or_refused() {
    let h = harness();
    let route = select(&["/v1/api-keys", "/v1/audit-logs", "/v1/auth", "/v1/scopes"][..]);
    run_property((route, query()), |(route, query), m| {
        let mut req = Req::new(Method::GET, route).admin();
        req.query = query;
        h.exchange(&req, m).map(drop)
    });
}

#[test]
fn only_the_exact_key_passes_forward_auth_and_near_misses_get_401() {
    let h = harness();
    let (_, secret) = h.new_key();
    let placement = select(&["bearer", "lower-bearer", "x-api-key"][..]);
    let scope = prop_oneof![
        3 => Just(None),
        2 => select(h.scope_ids.clone()).prop_map(|s| Some(("query", s))),
        2 => select(h.scope_ids.clone()).prop_map(|s| Some(("header", s))),
        1 => "[a-z:_]{1,12}".prop_map(|s| Some(("query", s))),
    ];
    let route = select(&["/v1/auth", "/v1/audit-logs"][..]);
    run_property(
        (key_string(), placement, scope, route),
        |(ks, placement, scope, route), m| {
            let candidate = ks.apply(&secret);
            let mut req = Req::new(Method::GET, route);
            let value = match placement {
                "bearer" => [b"Bearer ".as_slice(), &candidate].concat(),
                "lower-bearer" => [b"bearer ".as_slice(), &candidate].concat(),
                _ => candidate.clone(),
            };
            req = req.header(
                if placement == "x-api-key" {
                    "x-api-key"
                } else {
                    "authorization"
                },
                value,
            );
            let known_scope =
                route != "/v1/auth" || scope.as_ref().is_none_or(|(_, s)| h.scope_ids.contains(s));
            match &scope {
                Some(("query", s)) if route == "/v1/auth" => req.query = Some(format!("scope={s}")),
                Some((_, s)) if route == "/v1/auth" => {
                    req = req.header("x-required-scope", s.as_str())
                }
                _ => {}
            }
            let Some(a) = h.exchange(&req, m)? else {
                return Ok(());
            };
            let exact = String::from_utf8_lossy(&candidate).trim() == secret;
            if a.status == 200 {
                prop_assert!(
                    exact,
                    "a near miss was accepted: {:?}",
                    String::from_utf8_lossy(&candidate)
                );
            }
            if exact && known_scope {
                prop_assert_eq!(a.status, 200, "the key itself was refused");
            }
            if !exact && known_scope {
                prop_assert_eq!(a.status, 401, "a near miss got {} instead of 401", a.status);
            }
            Ok(())
        },
    );
}

#[test]
fn generated_headers_never_fail_the_service() {
    let h = harness();
    let (id, secret) = h.new_key();
    let admin = format!("Bearer {}", h.server.admin_token);
    let name = prop_oneof![
        3 => select(&["authorization", "x-api-key", "idempotency-key", "content-type", "x-required-scope",
            "x-forwarded-for", "x-real-ip", "accept", "content-encoding", "accept-encoding", "forwarded",
            "cookie", "origin"][..]).prop_map(str::to_owned),
        1 => "x-[a-z-]{1,12}",
    ];
    let value = prop_oneof![
        4 => header_bytes(),
        1 => Just(admin.into_bytes()),
        1 => Just(secret.into_bytes()),
        1 => select(&["127.0.0.1", "::1", "1.2.3.4, 5.6.7.8", "unknown", "999.1.1.1", "for=1.2.3.4"][..])
            .prop_map(|s| s.as_bytes().to_vec()),
    ];
    let headers = prop::collection::vec((name, value), 0..8);
    let body = prop::option::of(create_body(h.scope_ids.clone()));
    run_property(
        (method(), path(id), headers, body),
        |(method, path, headers, body), m| {
            let mut req = Req::new(method, path);
            req.headers = headers;
            req.body = body;
            h.exchange(&req, m).map(drop)
        },
    );
}

#[test]
fn too_many_failures_is_a_documented_429_on_every_authenticated_route() {
    let h = harness();
    let (id, secret) = h.new_key();
    let m = Mismatches::default();
    // An address of its own, outside the range the properties use.
    let client = h.client_from(IpAddr::V4(Ipv4Addr::new(127, 99, 0, 1)));
    let send = |req: Req| {
        let a = h.rt.block_on(h.send(&client, &req)).expect("a URL");
        h.check(&req, &a, &m).unwrap_or_else(|e| panic!("{e}"));
        a
    };
    let mut tripped = false;
    for _ in 0..100 {
        let a =
            send(Req::new(Method::GET, "/v1/api-keys").header("authorization", "Bearer kdt_wrong"));
        if a.status == 429 {
            tripped = true;
            break;
        }
        assert_eq!(a.status, 401);
    }
    assert!(
        tripped,
        "100 failed authentications from one address and no 429"
    );
    let body = b"{\"name\":\"n\",\"scopes\":[\"sessions:read\"]}".to_vec();
    let requests = [
        Req::new(Method::GET, "/v1/api-keys").admin(),
        Req::new(Method::POST, "/v1/api-keys").admin().json(body),
        Req::new(Method::GET, format!("/v1/api-keys/{id}")).admin(),
        Req::new(Method::DELETE, format!("/v1/api-keys/{id}")).admin(),
        Req::new(Method::POST, format!("/v1/api-keys/{id}/rotate")).admin(),
        Req::new(Method::GET, "/v1/audit-logs").admin(),
        Req::new(Method::GET, "/v1/auth").header("x-api-key", secret),
    ];
    for req in requests {
        let a = send(req.clone());
        assert_eq!(a.status, 429, "{} {}", req.method, req.path);
        assert!(
            a.headers.contains_key("retry-after"),
            "429 without Retry-After"
        );
    }
    // The properties' addresses are not affected.
    h.assert_up();
    let m = m.undocumented.into_inner().unwrap();
    assert!(
        m.is_empty(),
        "statuses that /openapi.json does not document:\n{m:#?}"
    );
}
