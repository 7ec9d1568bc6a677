//! The H2 attack of issue 17 against the built `keydeck serve --ssh-listen`
//! (SQLite): 4 UI sessions at 1000×1000 whose width flips 999↔1000 as fast
//! as they can send, then 499↔500 (inside the largest size drawn, so every
//! change is a new size). Prints `GET /v1/auth` p50 (and p99) idle and under
//! each attack, their ratio (issue 17's target: at most 3×), and the
//! server's resident memory idle and at its peak under attack (target: less
//! than 64 MiB more). The attackers and the probe run on the same 2 cores.
//!
//! Run: `cargo bench --bench ssh_flood` (`KEYDECK_BENCH_BIN=PATH` measures
//! another build of keydeck, e.g. an older one; `KEYDECK_BENCH_SECONDS=N`
//! probes each phase for N seconds, default 10).

#[path = "../tests/it/common/draw.rs"]
mod draw;

use std::time::Duration;

use draw::{Attack, Served};

fn main() {
    let bin = std::env::var("KEYDECK_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_keydeck").to_owned());
    let seconds = std::env::var("KEYDECK_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let length = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let served = Served::spawn(&bin, dir.path(), None);
        let key = draw::new_key();
        served.add_admin_ssh_key(&key);
        let secret = served.create_key().await;
        let probe = |length: Duration| {
            let (base, secret, pid) = (served.base.clone(), secret.clone(), served.pid());
            tokio::task::spawn_blocking(move || draw::probe(&base, &secret, length, pid))
        };
        // Warm up: connections, caches.
        probe(Duration::from_secs(1)).await.unwrap();
        let idle = probe(length).await.unwrap();
        let idle_rss = served.rss_kib();
        println!("SSH drawing against the key check ({bin})");
        println!(
            "  idle                     /v1/auth {}",
            draw::describe(&idle)
        );
        println!("  idle                     RSS {:>7} KiB", idle_rss);
        secret_copies(&served, &key, &secret).await;
        let mut ended = 0;
        for widths in [(999, 1000), (499, 500)] {
            let attack = Attack::start(served.ssh, &key, 4, widths).await;
            let cpu = draw::cpu_by_thread(served.pid());
            let under = probe(length).await.unwrap();
            let cpu = draw::cpu_shares(
                &cpu,
                &draw::cpu_by_thread(served.pid()),
                length.as_secs_f64(),
            );
            let resizes = attack.resizes.load(std::sync::atomic::Ordering::Relaxed);
            let received = attack.received.load(std::sync::atomic::Ordering::Relaxed);
            attack.stop().await;
            let label = format!("4 × flip {}↔{}", widths.0, widths.1);
            println!("  {label:<24} /v1/auth {}", draw::describe(&under));
            println!(
                "  {label:<24} p50 ratio {:.1}× (target ≤ 3×)",
                under.p50().as_secs_f64() / idle.p50().as_secs_f64()
            );
            println!(
                "  {label:<24} peak RSS {:>7} KiB, +{} KiB over idle (target < 65536)",
                under.peak_rss_kib,
                under.peak_rss_kib.saturating_sub(idle_rss)
            );
            println!(
                "  {label:<24} {resizes} window changes sent, {} MB drawn",
                received / 1_000_000
            );
            println!("  {label:<24} server CPU by thread: {cpu}");
            ended += 4;
            let wait = std::time::Instant::now();
            let gone = served.wait_sessions_ended(ended);
            println!(
                "  {label:<24} sessions {} {:.1} s after the attackers left; RSS {:>7} KiB then",
                if gone { "ended" } else { "still open" },
                wait.elapsed().as_secs_f64(),
                served.rss_kib()
            );
        }
    });
}

/// Issue 17 L5: copies of a new key's secret left in the server's memory
/// once the session that created it is over (over HTTP for comparison). The
/// copies that remain are in buffers freed unwiped outside keydeck's code
/// (russh's packets, hyper's buffers), so the count depends on whether the
/// allocator reused them yet: printed, never asserted.
async fn secret_copies(served: &Served, key: &russh::keys::PrivateKey, over_http: &str) {
    let handle = draw::connect(served.ssh, key).await;
    let mut over_ssh = Vec::new();
    for pty in [false, true] {
        over_ssh.push((
            pty,
            draw::exec_stdout(
                &handle,
                "keys create --name scan --scope sessions:read",
                pty,
            )
            .await,
        ));
    }
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    served.wait_sessions_ended(2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let http = draw::copies_in_memory(served.pid(), over_http.as_bytes());
    println!("  copies of a new secret in server memory afterwards: created over HTTP {http}");
    for (pty, secret) in over_ssh {
        let copies = draw::copies_in_memory(served.pid(), secret.trim().as_bytes());
        println!("  copies of a new secret in server memory afterwards: created over SSH (pty: {pty}) {copies}");
    }
}
