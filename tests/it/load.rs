//! Load: 200 concurrent clients for `KEYDECK_LOAD_SECS` (default 30) seconds
//! mixing create, list, rotate, revoke and key checks against `keydeck serve`
//! on SQLite (one process) and on PostgreSQL (two replicas on one database,
//! clients spread over both). No 5xx, every created key in the final list, no
//! revoked key accepted by the other replica after its revoke returned, and
//! resident memory flat after warm-up. Prints the figures.
//!
//! The servers run with `KEYDECK_MAX_FAILED_AUTH=0` (no failed-auth limiter):
//! all 200 clients share 127.0.0.1, and the limiter is not what is measured.

use crate::common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::ServerProcess;
use common::stress::rss_kib;
use common::util::admin_token;
use common::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(two_hundred_clients_mixing_every_operation);

const CLIENTS: usize = 200;
/// Active keys a client keeps at most; past that it revokes instead of creating.
const MAX_OWN_KEYS: usize = 8;

/// The two load variants must not share the machine's two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn load_secs() -> u64 {
    std::env::var("KEYDECK_LOAD_SECS")
        .ok()
        .map(|v| v.parse().expect("KEYDECK_LOAD_SECS is a number of seconds"))
        .unwrap_or(30)
        .max(3)
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    unexpected: AtomicU64,
    created: AtomicU64,
    rotated: AtomicU64,
    revoked: AtomicU64,
    checks: AtomicU64,
    checks_after_revoke: AtomicU64,
    refused_after_revoke: AtomicU64,
    violations: AtomicU64,
    examples: Mutex<Vec<String>>,
}

impl Stats {
    fn note(&self, what: String) {
        let mut examples = self.examples.lock().unwrap();
        if examples.len() < 10 {
            examples.push(what);
        }
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

struct Load {
    http: reqwest::Client,
    bases: Vec<String>,
    token: String,
    stats: Stats,
    /// Every key id a 201 (create or rotate) told a client about.
    created_ids: Mutex<Vec<String>>,
}

struct OwnKey {
    id: String,
    secret: String,
}

/// A small xorshift generator: each client its own, no shared state.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

impl Load {
    /// Sends a request; `None` (counted) for a transport error or a 5xx.
    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Option<(StatusCode, Value)> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                self.stats.note(format!("{what}: {e}"));
                return None;
            }
        };
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_server_error() {
            self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
            self.stats.note(format!("{what}: {status} {body}"));
            return None;
        }
        Some((status, body))
    }

    fn unexpected(&self, what: &str, status: StatusCode, body: &Value) {
        self.stats.unexpected.fetch_add(1, Ordering::Relaxed);
        self.stats
            .note(format!("{what}: unexpected {status} {body}"));
    }

    /// A key check on replica `base`; `Some(true)` if accepted.
    async fn check(&self, base: &str, secret: &str) -> Option<bool> {
        let req = self
            .http
            .get(format!("{base}/v1/auth"))
            .query(&[("scope", "sessions:read")])
            .header("x-api-key", secret);
        let (status, body) = self.send(req, "check").await?;
        match status {
            StatusCode::OK => Some(true),
            StatusCode::UNAUTHORIZED => Some(false),
            _ => {
                self.unexpected("check", status, &body);
                None
            }
        }
    }

    /// After a revoke (or rotation) of `secret` returned: the other replica must refuse it.
    async fn check_revoked(&self, other: &str, secret: &str) {
        if let Some(accepted) = self.check(other, secret).await {
            self.stats
                .checks_after_revoke
                .fetch_add(1, Ordering::Relaxed);
            if accepted {
                self.stats.violations.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .note("a revoked key was accepted after its revoke returned".into());
            } else {
                self.stats
                    .refused_after_revoke
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn created(&self, body: &Value) -> OwnKey {
        let id = body["api_key"]["id"].as_str().unwrap().to_owned();
        self.created_ids.lock().unwrap().push(id.clone());
        OwnKey {
            id,
            secret: body["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// One client: its own keys, random operations until `deadline`.
    async fn client(&self, n: usize, deadline: Instant) {
        let base = &self.bases[n % self.bases.len()];
        let other = &self.bases[(n + 1) % self.bases.len()];
        let mut rng =
            Rng(0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let mut active: Vec<OwnKey> = Vec::new();
        let mut revoked: Vec<String> = Vec::new();
        let mut seq = 0;
        while Instant::now() < deadline {
            let roll = rng.below(100);
            if active.is_empty() || (roll < 20 && active.len() < MAX_OWN_KEYS) {
                seq += 1;
                let req = self
                    .http
                    .post(format!("{base}/v1/api-keys"))
                    .bearer_auth(&self.token)
                    .json(&json!({"name": format!("load-{n}-{seq}"), "scopes": ["sessions:read"]}));
                if let Some((status, body)) = self.send(req, "create").await {
                    if status == StatusCode::CREATED {
                        self.stats.created.fetch_add(1, Ordering::Relaxed);
                        active.push(self.created(&body));
                    } else {
                        self.unexpected("create", status, &body);
                    }
                }
            } else if roll < 35 {
                let req = self
                    .http
                    .get(format!("{base}/v1/api-keys"))
                    .bearer_auth(&self.token)
                    .query(&[("limit", "20")]);
                if let Some((status, body)) = self.send(req, "list").await {
                    if status != StatusCode::OK {
                        self.unexpected("list", status, &body);
                    }
                }
            } else if roll < 45 {
                let old = active.swap_remove(rng.below(active.len()));
                let req = self
                    .http
                    .post(format!("{base}/v1/api-keys/{}/rotate", old.id))
                    .bearer_auth(&self.token);
                if let Some((status, body)) = self.send(req, "rotate").await {
                    if status == StatusCode::CREATED {
                        self.stats.rotated.fetch_add(1, Ordering::Relaxed);
                        active.push(self.created(&body));
                        self.check_revoked(other, &old.secret).await;
                        revoked.push(old.secret);
                    } else {
                        self.unexpected("rotate", status, &body);
                    }
                }
            } else if roll < 55 || active.len() >= MAX_OWN_KEYS {
                let key = active.swap_remove(rng.below(active.len()));
                let req = self
                    .http
                    .delete(format!("{base}/v1/api-keys/{}", key.id))
                    .bearer_auth(&self.token);
                if let Some((status, body)) = self.send(req, "revoke").await {
                    if status == StatusCode::OK && body["status"] == "revoked" {
                        self.stats.revoked.fetch_add(1, Ordering::Relaxed);
                        self.check_revoked(other, &key.secret).await;
                        revoked.push(key.secret);
                    } else {
                        self.unexpected("revoke", status, &body);
                    }
                }
            } else if roll < 60 && !revoked.is_empty() {
                // A key revoked a while ago stays refused, on either replica.
                let secret = revoked[rng.below(revoked.len())].clone();
                let replica = if rng.below(2) == 0 { base } else { other };
                self.check_revoked(replica, &secret).await;
            } else {
                let key = &active[rng.below(active.len())];
                let replica = if rng.below(2) == 0 { base } else { other };
                self.stats.checks.fetch_add(1, Ordering::Relaxed);
                if self.check(replica, &key.secret).await == Some(false) {
                    self.stats.unexpected.fetch_add(1, Ordering::Relaxed);
                    self.stats.note("an active key was refused".into());
                }
            }
        }
    }

    /// Every key id in the organisation, following the cursor.
    async fn list_all(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .http
                .get(format!("{}/v1/api-keys", self.bases[0]))
                .bearer_auth(&self.token)
                .query(&[("limit", "500")]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let r = req.send().await.expect("list");
            assert_eq!(r.status(), StatusCode::OK);
            let page: Value = r.json().await.unwrap();
            for k in page["data"].as_array().unwrap() {
                ids.insert(k["id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
        }
    }
}

async fn two_hundred_clients_mixing_every_operation(backend: Backend) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let secs = load_secs();
    let dir = backend.data_dir.path().to_path_buf();
    let replicas = if backend.name == "postgres" { 2 } else { 1 };
    let envs = [
        ("RUST_LOG", "warn,keydeck=info"),
        ("KEYDECK_MAX_FAILED_AUTH", "0"),
    ];
    let servers: Vec<ServerProcess> = (0..replicas)
        .map(|i| {
            ServerProcess::spawn_with(&backend, &dir, &dir.join(format!("serve-{i}.log")), &envs)
        })
        .collect();
    let load = Arc::new(Load {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(CLIENTS)
            .build()
            .unwrap(),
        bases: servers.iter().map(|s| s.base.clone()).collect(),
        token: admin_token(&dir),
        stats: Stats::default(),
        created_ids: Mutex::new(Vec::new()),
    });

    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let load = load.clone();
            tokio::spawn(async move { load.client(n, deadline).await })
        })
        .collect();
    // Memory after warm-up (10 s, or a third of a shorter run) and at the end.
    let warm = Duration::from_secs(secs.min(30) / 3).min(Duration::from_secs(10));
    tokio::time::sleep_until((started + warm).into()).await;
    let rss_warm: Vec<u64> = servers.iter().map(|s| rss_kib(s.pid())).collect();
    for c in clients {
        c.await.unwrap();
    }
    let elapsed = started.elapsed();
    let rss_end: Vec<u64> = servers.iter().map(|s| rss_kib(s.pid())).collect();

    let listed = load.list_all().await;
    let created: BTreeSet<String> = load.created_ids.lock().unwrap().iter().cloned().collect();
    let accounted = created.intersection(&listed).count();
    let s = &load.stats;
    let requests = Stats::get(&s.requests);
    let figures = format!(
        "[load {}] {CLIENTS} clients, {replicas} replica(s), {:.1} s: {requests} requests ({:.0}/s), \
         {} server errors (5xx), {} transport errors, {} unexpected answers; \
         {} keys created ({} by create, {} by rotate), {accounted} accounted for in the final list of {}; \
         {} revokes; {} checks of active keys; {} checks after revoke, {} refused, {} accepted (violations); \
         server RSS at {} s: {:?} KiB, at {:.0} s: {:?} KiB",
        backend.name,
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        Stats::get(&s.server_errors),
        Stats::get(&s.transport_errors),
        Stats::get(&s.unexpected),
        created.len(),
        Stats::get(&s.created),
        Stats::get(&s.rotated),
        listed.len(),
        Stats::get(&s.revoked),
        Stats::get(&s.checks),
        Stats::get(&s.checks_after_revoke),
        Stats::get(&s.refused_after_revoke),
        Stats::get(&s.violations),
        warm.as_secs(),
        rss_warm,
        elapsed.as_secs_f64(),
        rss_end,
    );
    println!("\n{figures}");
    // Also kept in a file, so that `.ci/run` prints the figures of a passing run.
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("load-figures.txt");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(kept)
    {
        use std::io::Write;
        let _ = writeln!(file, "{figures}");
    }
    let examples = s.examples.lock().unwrap().clone();
    if Stats::get(&s.server_errors) > 0 {
        // What the servers said about them.
        for i in 0..replicas {
            let log =
                std::fs::read_to_string(dir.join(format!("serve-{i}.log"))).unwrap_or_default();
            for line in log
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            {
                eprintln!("[serve-{i}] {line}");
            }
        }
    }
    assert_eq!(
        Stats::get(&s.server_errors),
        0,
        "5xx answers: {examples:#?}"
    );
    assert_eq!(
        Stats::get(&s.transport_errors),
        0,
        "no answer: {examples:#?}"
    );
    assert_eq!(
        Stats::get(&s.unexpected),
        0,
        "unexpected answers: {examples:#?}"
    );
    assert_eq!(
        Stats::get(&s.violations),
        0,
        "revoked keys accepted: {examples:#?}"
    );
    assert!(
        Stats::get(&s.checks_after_revoke) > 0,
        "no revoke was checked"
    );
    assert_eq!(
        accounted,
        created.len(),
        "created keys missing from the list"
    );
    assert_eq!(
        listed.len(),
        created.len(),
        "keys in the list that no client created"
    );
    // Lenient: the allocator and connection pools may still grow a little.
    for (warm_kib, end_kib) in rss_warm.iter().zip(&rss_end) {
        assert!(
            *end_kib <= warm_kib * 3 / 2 + 16 * 1024,
            "server memory grew from {warm_kib} KiB to {end_kib} KiB"
        );
    }
    drop(servers);
    backend.cleanup().await;
}
