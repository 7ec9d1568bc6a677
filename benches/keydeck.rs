//! Benchmarks that print figures: the key check (parse, store lookup, and the
//! whole forward-auth request over loopback HTTP), and the UI with a large
//! organisation (building the rows, drawing a frame, moving the selection).
//!
//! Run: `cargo bench --bench keydeck` (add `KEYDECK_TEST_POSTGRES_URL=…` for
//! the PostgreSQL lookup figures). Figures are medians of several rounds on
//! this machine; compare runs on the same machine only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use crossterm::event::KeyCode;
use keydeck::clock::SystemClock;
use keydeck::key::SecretFormat;
use keydeck::service::{self, ServiceConfig};
use keydeck::tui::action::Action;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `f` `n` times per round over 5 rounds; median nanoseconds per call.
fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    let rounds = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    median(rounds)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("keydeck benchmarks (median of 5 rounds)\n");
    key_check_domain();
    rt.block_on(key_check_service());
    ui_large_organisation();
}

fn key_check_domain() {
    let format = SecretFormat::default();
    let secret = format.generate();
    let text = secret.expose().to_owned();
    let parse = per_call(200_000, || {
        std::hint::black_box(format.parse(std::hint::black_box(&text)).is_ok());
    });
    let digest = per_call(200_000, || {
        std::hint::black_box(keydeck::key::digest(std::hint::black_box(&text)));
    });
    let mut typo = text.clone();
    typo.replace_range(20..21, if &text[20..21] == "a" { "b" } else { "a" });
    let reject = per_call(200_000, || {
        std::hint::black_box(format.parse(std::hint::black_box(&typo)).is_err());
    });
    println!("key check, pure domain");
    println!("  parse + checksum (good key)      {parse:>9.0} ns");
    println!("  reject a mistyped key            {reject:>9.0} ns   (no lookup)");
    println!("  SHA-256 digest                   {digest:>9.0} ns\n");
}

async fn key_check_service() {
    let dir = tempfile::tempdir().unwrap();
    let mut backends = vec![("SQLite", None)];
    if let Ok(url) = std::env::var("KEYDECK_TEST_POSTGRES_URL") {
        backends.push(("PostgreSQL", Some(url)));
    }
    for (name, url) in backends {
        let mut config = ServiceConfig::new(dir.path().join(name));
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database_url = url;
        config.max_failed_auth = 0;
        let running = service::start(config, Arc::new(SystemClock)).await.unwrap();
        let token = std::fs::read_to_string(dir.path().join(name).join("admin-token")).unwrap();
        let base = format!("http://{}", running.addr);
        let http = reqwest::Client::new();
        let created: serde_json::Value = http
            .post(format!("{base}/v1/api-keys"))
            .bearer_auth(token.trim())
            .json(&serde_json::json!({"name": "bench", "scopes": ["sessions:read"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let secret = created["secret"].as_str().unwrap().to_owned();
        let digest = keydeck::key::digest(&secret);

        // The store's one indexed lookup, without HTTP.
        let store = running.state.store.clone();
        let mut rounds = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..2_000 {
                assert!(store.key_by_digest(&digest).await.unwrap().is_some());
            }
            rounds.push(t.elapsed().as_nanos() as f64 / 2_000.0 / 1_000.0);
        }
        let lookup = median(rounds);

        // The whole forward-auth request, 16 concurrent clients over keep-alive.
        let total = 20_000usize;
        let concurrency = 16;
        let url = format!("{base}/v1/auth?scope=sessions:read");
        let mut latencies: Vec<Duration> = Vec::with_capacity(total);
        let started = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (http, url, secret) = (http.clone(), url.clone(), secret.clone());
                tokio::spawn(async move {
                    let mut own = Vec::with_capacity(total / concurrency);
                    for _ in 0..total / concurrency {
                        let t = Instant::now();
                        let r = http
                            .get(&url)
                            .header("x-api-key", &secret)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 200);
                        own.push(t.elapsed());
                    }
                    own
                })
            })
            .collect();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let pct = |p: f64| {
            latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_micros()
        };
        println!("key check, {name}");
        println!("  store lookup by digest           {lookup:>9.1} µs");
        println!(
            "  GET /v1/auth over loopback       {:>9.0} req/s  (p50 {} µs, p99 {} µs; {total} requests, {concurrency} clients, client on the same 2 cores)\n",
            total as f64 / elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99)
        );
        running.shutdown().await.unwrap();
    }
}

fn ui_large_organisation() {
    let keys = keydeck::tui::testing::synthetic_keys(50_000, Utc::now());
    // The keys arrive as the answer to the first load, as in the real UI.
    let mut app = keydeck::tui::testing::loaded_app(Arc::new(SystemClock), keys, 120, 40);
    let rebuild = per_call(10, || app.rebuild_rows());
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let draw = per_call(200, || {
        terminal
            .draw(|f| keydeck::tui::view::draw(f, &app))
            .unwrap();
    });
    let key = |code| {
        Action::Key(crossterm::event::KeyEvent::new(
            code,
            crossterm::event::KeyModifiers::NONE,
        ))
    };
    let step = per_call(2_000, || app.update(key(KeyCode::Char('j'))));
    let resort = per_call(5, || app.update(key(KeyCode::Char('s'))));
    println!("UI with 50 000 keys (120×40)");
    println!(
        "  draw one frame                   {:>9.1} µs   (only visible rows are built)",
        draw / 1_000.0
    );
    println!(
        "  move the selection (j)           {:>9.1} µs",
        step / 1_000.0
    );
    println!(
        "  filter/sort all rows (rebuild)   {:>9.1} ms",
        rebuild / 1_000_000.0
    );
    println!(
        "  change the sort column (s)       {:>9.1} ms",
        resort / 1_000_000.0
    );
}
