//! The UI as users run it, measured from outside: the built `keydeck` binary
//! in a real 120×40 pseudo-terminal on an embedded service with seeded keys.
//! Prints the time to the first frame with rows, the bytes written for one
//! `j`, one `PgDn` and an unchanged `r` refresh (10 000 keys), and the
//! process's peak and current memory with 100 000 keys loaded.
//!
//! Run: `cargo bench --bench ui_pty` (`KEYDECK_BENCH_KEYS=N` changes the
//! 10 000; `KEYDECK_BENCH_MEMORY_KEYS=N` the 100 000).
//!
//! With `KEYDECK_BENCH_DATA_DIR=DIR` (seeded already; PostgreSQL: and
//! `KEYDECK_BENCH_DATABASE_URL`) it measures that instead: the million-key
//! figures of issue 19 (`ui_pty/million.rs`; `scripts/million-bench.sh`
//! seeds and runs it on both backends).

#[allow(dead_code)]
#[path = "../tests/it/common/bin.rs"]
mod bin;
#[path = "../tests/it/common/draw.rs"]
mod draw;
#[path = "ui_pty/million.rs"]
mod million;
#[allow(dead_code)]
#[path = "../tests/it/common/pty.rs"]
mod pty;
#[allow(dead_code)]
#[path = "../tests/it/common/util.rs"]
mod util;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pty::Session;

const COLS: u16 = 120;
const ROWS: u16 = 40;

fn keys_from_env(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `keydeck admin seed --count N` on a fresh data dir, as a user would.
fn seed(data_dir: &Path, count: u32) -> Duration {
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_keydeck"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["admin", "seed", "--count", &count.to_string()])
        .env_remove("KEYDECK_DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run keydeck admin seed");
    assert!(status.success(), "admin seed failed");
    started.elapsed()
}

fn start_ui(data_dir: &Path) -> Session {
    Session::start(
        &["--data-dir", data_dir.to_str().expect("a UTF-8 path")],
        &[],
        COLS,
        ROWS,
    )
}

fn written(session: &Session) -> usize {
    session.output.lock().unwrap().len()
}

/// Waits until nothing has been written for `quiet`; the bytes written since `from`.
fn settle(session: &Session, from: usize, quiet: Duration) -> usize {
    let mut last = written(session);
    loop {
        std::thread::sleep(quiet);
        let now = written(session);
        if now == last {
            return now - from;
        }
        last = now;
    }
}

/// Waits (at most a minute) until the screen shows `text`.
fn wait_for(session: &Session, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !session.contents().contains(text) {
        assert!(Instant::now() < deadline, "{text:?} never showed");
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Bytes written for `keys`, once the UI is quiet again.
fn bytes_for(session: &mut Session, keys: &str, quiet: Duration) -> usize {
    let from = written(session);
    session.send(keys);
    settle(session, from, quiet)
}

fn status_line(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l[field.len()..].trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs nothing here.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if let Some(setup) = million::setup_from_env() {
        million::run(&setup);
        return;
    }
    let keys = keys_from_env("KEYDECK_BENCH_KEYS", 10_000);
    let memory_keys = keys_from_env("KEYDECK_BENCH_MEMORY_KEYS", 100_000);
    println!("keydeck in a {COLS}×{ROWS} PTY (the built binary, embedded service on SQLite)\n");

    let dir = tempfile::tempdir().expect("temp dir");
    let seeded = seed(dir.path(), keys);
    println!("  admin seed --count {keys:<7}             {seeded:>9.2?}");
    let started = Instant::now();
    let mut ui = start_ui(dir.path());
    // The UI's first frame ("loading…") goes out before the embedded
    // service starts; then a row's key prefix: the first frame with rows.
    while written(&ui) == 0 {
        std::thread::sleep(Duration::from_micros(200));
    }
    let first_output = started.elapsed();
    wait_for(&ui, "eg_live_");
    let first_rows = started.elapsed();
    wait_for(&ui, &format!("{keys} keys"));
    let all_loaded = started.elapsed();
    settle(&ui, 0, Duration::from_millis(500));
    println!(
        "  first frame with rows, {keys} keys      {first_rows:>9.3?}  (from exec; {:.3?} after the UI's first frame)",
        first_rows - first_output
    );
    println!("  every key loaded                      {all_loaded:>9.3?}");
    let quiet = Duration::from_millis(300);
    let j = bytes_for(&mut ui, "j", quiet);
    let page_down = bytes_for(&mut ui, "\x1b[6~", quiet);
    // A refresh draws only if something changed: nothing shows when it is
    // done, so wait long enough for its answer (and any redraw) to come.
    let refresh = bytes_for(&mut ui, "r", Duration::from_millis(1_500));
    println!("  bytes written for one j               {j:>9}");
    println!("  bytes written for one PgDn            {page_down:>9}");
    println!("  bytes written for r, nothing changed  {refresh:>9}");
    ui.send("q");
    ui.wait_exit(Duration::from_secs(10));

    let dir = tempfile::tempdir().expect("temp dir");
    let seeded = seed(dir.path(), memory_keys);
    println!("\n  admin seed --count {memory_keys:<7}             {seeded:>9.2?}");
    let started = Instant::now();
    let mut ui = start_ui(dir.path());
    wait_for(&ui, &format!("{memory_keys} keys"));
    let loaded = started.elapsed();
    settle(&ui, 0, Duration::from_millis(1_000));
    let pid = ui.pid();
    println!("  every key loaded                      {loaded:>9.3?}");
    println!(
        "  UI + embedded service, {memory_keys} keys: VmHWM {} / VmRSS {}",
        status_line(pid, "VmHWM:"),
        status_line(pid, "VmRSS:")
    );
    ui.send("q");
    ui.wait_exit(Duration::from_secs(10));
}
