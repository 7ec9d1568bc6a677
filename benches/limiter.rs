//! Benchmark: the failed-attempt limiter under a flood. Prints the median (and
//! p99) latency of a good key check on an idle service and while 100 000
//! distinct client addresses send failed checks, their ratio, and how many
//! clients the limiter tracks afterwards (its bound).
//!
//! Run: `cargo bench --bench limiter` (SQLite, in-process `AppState::check_key`,
//! a few seconds). The flood uses malformed keys, so each failure costs the
//! limiter and not a database lookup: the figures isolate the limiter.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keydeck::service::{self, AppState, ServiceConfig};
use serde_json::{json, Value};

/// Distinct addresses in the flood.
const FLOOD_ADDRS: u32 = 100_000;
/// Failed checks per second the flood aims at (in bursts of `BURST`).
const FLOOD_RATE: u32 = 50_000;
const BURST: u32 = 500;
/// Good checks timed on the idle service.
const IDLE_CHECKS: usize = 4_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServiceConfig::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let running = service::start_default(config)
        .await
        .expect("service starts");
    let secret = create_key(&running.addr.to_string(), dir.path()).await;
    let state = running.state.clone();
    let good_client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    // Warm up the connection pool and caches.
    for _ in 0..500 {
        good_check(&state, &secret, good_client).await;
    }
    let mut idle = Vec::with_capacity(IDLE_CHECKS);
    for _ in 0..IDLE_CHECKS {
        idle.push(good_check(&state, &secret, good_client).await);
    }

    let done = Arc::new(AtomicBool::new(false));
    let flood = tokio::spawn(flood(state.clone(), done.clone()));
    let mut during = Vec::new();
    while !done.load(Ordering::Relaxed) {
        during.push(good_check(&state, &secret, good_client).await);
    }
    let (failures, flood_time) = flood.await.unwrap();
    let tracked = state.failed_auth_tracked();

    let (idle_p50, idle_p99) = percentiles(idle);
    let samples = during.len();
    let (flood_p50, flood_p99) = percentiles(during);
    println!(
        "failed-attempt limiter under a flood (SQLite, in-process check_key, 2 worker threads)\n"
    );
    println!(
        "  flood: {failures} failed checks from {FLOOD_ADDRS} addresses in {:.2} s ({:.0}/s)",
        flood_time.as_secs_f64(),
        f64::from(failures) / flood_time.as_secs_f64()
    );
    println!("  good check, idle          p50 {idle_p50:>7.1} µs   p99 {idle_p99:>7.1} µs   ({IDLE_CHECKS} checks)");
    println!("  good check, during flood  p50 {flood_p50:>7.1} µs   p99 {flood_p99:>7.1} µs   ({samples} checks)");
    println!("  median ratio flood/idle   {:.2}x", flood_p50 / idle_p50);
    println!(
        "  clients tracked after the flood: {tracked} (bound {} windows + as many locks)",
        keydeck::service::FAILED_AUTH_MAX_TRACKED
    );
    running.shutdown().await.unwrap();
}

/// One good check; its latency in microseconds.
async fn good_check(state: &AppState, secret: &str, addr: IpAddr) -> f64 {
    let t = Instant::now();
    let checked = state.check_key(secret, addr, Some("resources:read")).await;
    let us = t.elapsed().as_secs_f64() * 1e6;
    assert!(checked.is_ok(), "the good key must pass");
    us
}

/// Failed checks from `FLOOD_ADDRS` distinct addresses at about `FLOOD_RATE` per second.
async fn flood(state: AppState, done: Arc<AtomicBool>) -> (u32, Duration) {
    let started = Instant::now();
    let mut sent = 0u32;
    while sent < FLOOD_ADDRS {
        for _ in 0..BURST.min(FLOOD_ADDRS - sent) {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + sent));
            let refused = state.check_key("eg_live_not-a-key", addr, None).await;
            assert!(refused.is_err());
            sent += 1;
        }
        let due = Duration::from_secs_f64(f64::from(sent) / f64::from(FLOOD_RATE));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
    done.store(true, Ordering::Relaxed);
    (sent, started.elapsed())
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

/// Creates a `resources:read` key through the API as the bootstrap admin.
async fn create_key(addr: &str, data_dir: &std::path::Path) -> String {
    let token = std::fs::read_to_string(data_dir.join(service::ADMIN_TOKEN_FILE)).unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/api-keys"))
        .bearer_auth(token.trim())
        .json(&json!({"name": "bench", "scopes": ["resources:read"]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let body: Value = r.json().await.unwrap();
    body["secret"].as_str().unwrap().to_owned()
}
