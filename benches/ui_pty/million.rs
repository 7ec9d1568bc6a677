//! The million-key mode of the `ui_pty` bench (issue 19): on a data dir (and,
//! for PostgreSQL, a database) already seeded with N keys, measured from the
//! outside only: what a real 120×40 PTY running the built binary shows, read
//! with vt100, and `/proc` for memory. Nothing here knows how the UI holds
//! its keys: "rows on screen" are lines with a status cell, "counts correct"
//! are the tab line's and the summary line's numbers equal to what the
//! service's `GET /v1/api-keys/counts` answered. Every wait has a limit, so
//! a UI that never gets there prints "not reached within N s" and the run
//! goes on.
//!
//! Figures: first frame with rows; summary line and tab counts correct (both
//! from `exec`); key → next frame for `j`, `PgDn`, `G`, a tab switch and a
//! sort change, and filter keystroke → filtered rows on screen (medians of
//! 20); the UI's memory (embedded: UI + service); the memory one SSH UI
//! session adds to `keydeck serve --ssh-listen` (4 sessions over russh).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::draw::{self, Served};
use super::pty::Session;

const COLS: u16 = 120;
const ROWS: u16 = 40;

/// Statuses as the Status column shows them: a line with one is a key's row.
const STATUS_CELLS: &[&str] = &["● Active", "◷ Expired", "✕ Revoked"];

/// No output for this long after a key: its frame (or frames) are drawn.
const QUIET: Duration = Duration::from_millis(150);

/// What to measure on.
pub struct Setup {
    pub bin: String,
    /// Seeded already (SQLite: its keydeck.db; PostgreSQL: its admin token).
    pub data_dir: PathBuf,
    /// PostgreSQL: the UI runs on `keydeck serve --database-url URL` (`--url`).
    pub database_url: Option<String>,
    /// How long any one wait may take ("not reached within …" after it).
    pub limit: Duration,
    /// How long one key (or keystroke) may take to show its frame.
    pub key_limit: Duration,
    pub name: String,
}

/// The numbers the UI must show, as the service counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    /// All, Active, Expired, Revoked, Attention.
    tabs: Vec<u64>,
    /// The summary line's nonzero terms in order.
    summary: Vec<u64>,
}

fn env_secs(var: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// From the environment: `KEYDECK_BENCH_DATA_DIR` (seeded), optional
/// `KEYDECK_BENCH_DATABASE_URL`, `KEYDECK_BENCH_BIN`, `KEYDECK_BENCH_LIMIT`
/// (seconds, default 60), `KEYDECK_BENCH_KEY_LIMIT` (default 10).
pub fn setup_from_env() -> Option<Setup> {
    let data_dir = PathBuf::from(std::env::var("KEYDECK_BENCH_DATA_DIR").ok()?);
    let database_url = std::env::var("KEYDECK_BENCH_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let name = if database_url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    Some(Setup {
        bin: std::env::var("KEYDECK_BENCH_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_keydeck").to_owned()),
        data_dir,
        database_url,
        limit: env_secs("KEYDECK_BENCH_LIMIT", 60),
        key_limit: env_secs("KEYDECK_BENCH_KEY_LIMIT", 10),
        name: name.to_owned(),
    })
}

pub fn run(setup: &Setup) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let name = &setup.name;
    println!(
        "{name}: keydeck at 120×40 on {} (limit {:?} a wait, {:?} a key)",
        setup.data_dir.display(),
        setup.limit,
        setup.key_limit
    );
    let served = Served::spawn(&setup.bin, &setup.data_dir, setup.database_url.as_deref());
    let token = std::fs::read_to_string(setup.data_dir.join("admin-token"))
        .expect("the service wrote the admin token")
        .trim()
        .to_owned();
    let started = Instant::now();
    let expected = runtime.block_on(expected_counts(&served.base, &token));
    println!(
        "{name}: GET /v1/api-keys/counts               {:>9.3?}  tabs {:?}, summary {:?}",
        started.elapsed(),
        expected.tabs,
        expected.summary
    );
    runtime.block_on(ssh_sessions(setup, &served, &expected));
    if setup.database_url.is_some() {
        // The UI on this service, as a remote UI runs.
        let ui_dir = tempfile::tempdir().expect("temp dir");
        let ui_data = ui_dir.path().to_str().expect("a UTF-8 path").to_owned();
        let args = ["--data-dir", &ui_data, "--url", &served.base];
        ui(
            setup,
            &args,
            &[("KEYDECK_TOKEN", &token)],
            &expected,
            Some(served.pid()),
        );
    } else {
        // The embedded service opens the SQLite file itself: nothing else on it.
        drop(served);
        let data = setup.data_dir.to_str().expect("a UTF-8 path").to_owned();
        ui(setup, &["--data-dir", &data], &[], &expected, None);
    }
}

async fn expected_counts(base: &str, token: &str) -> Expected {
    let counts: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/v1/api-keys/counts"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .expect("GET /v1/api-keys/counts")
        .error_for_status()
        .expect("counts answered 200")
        .json()
        .await
        .expect("counts as JSON");
    let n = |group: &str, field: &str| counts[group][field].as_u64().expect("a count");
    Expected {
        tabs: ["all", "active", "expired", "revoked", "attention"]
            .map(|f| n("tabs", f))
            .to_vec(),
        summary: [
            "active", "expiring", "rotate", "unused", "expired", "rotating", "policy",
        ]
        .map(|f| n("summary", f))
        .into_iter()
        .filter(|&v| v > 0)
        .collect(),
    }
}

/// The digits of `text` as one number (`1 000 000`, `1,000,000` and `1000000` alike).
fn number(text: &str) -> Option<u64> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The lines of the screen that are key rows.
fn rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|l| STATUS_CELLS.iter().any(|s| l.contains(s)))
        .collect()
}

/// The tab line's counts (`1 All (12)  2 Active (8) …`) and the summary
/// line's leading numbers (the lines between the title and the tabs).
fn shown_counts(screen: &str) -> Option<Expected> {
    let lines: Vec<&str> = screen.lines().collect();
    let tab_line = lines.iter().position(|l| l.contains("All ("))?;
    let tabs = lines[tab_line]
        .split('(')
        .skip(1)
        .map(|part| part.split(')').next().and_then(number))
        .collect::<Option<Vec<u64>>>()?;
    let summary = lines[1..tab_line]
        .join(" ")
        .split('·')
        .map(|term| {
            let lead: String = term
                .trim()
                .chars()
                .take_while(|c| !c.is_alphabetic())
                .collect();
            number(&lead)
        })
        .collect::<Option<Vec<u64>>>()?;
    Some(Expected { tabs, summary })
}

/// Waits until `done(screen)` holds or `limit` passes; how long that took.
fn wait_screen(ui: &Session, limit: Duration, done: impl Fn(&str) -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if done(&ui.contents()) {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn written(ui: &Session) -> usize {
    ui.output.lock().unwrap().len()
}

/// Waits until nothing was written for `quiet` (at most `limit`); whether it was.
fn wait_quiet(ui: &Session, quiet: Duration, limit: Duration) -> bool {
    let started = Instant::now();
    let mut last = written(ui);
    let mut since = Instant::now();
    while started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(2));
        let now = written(ui);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return true;
        }
    }
    false
}

/// Sends `key` and times its frame: until the screen (text and colours)
/// differs from before, `done` holds for it, and nothing more was written
/// for [`QUIET`]; the time of the last write before that quiet. `None` if
/// that did not happen within `limit`.
fn key_to_frame(
    ui: &mut Session,
    key: &str,
    limit: Duration,
    done: &dyn Fn(&str) -> bool,
) -> Option<Duration> {
    let before = ui.screen().contents_formatted();
    let mut last = written(ui);
    let sent = Instant::now();
    ui.send(key);
    let mut last_change = None;
    loop {
        let now = written(ui);
        if now != last {
            last = now;
            last_change = Some(sent.elapsed());
        }
        if let Some(at) = last_change {
            if sent.elapsed() >= at + QUIET {
                let screen = ui.screen();
                if screen.contents_formatted() != before && done(&screen.contents()) {
                    return Some(at);
                }
            }
        }
        if sent.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn describe(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    format!(
        "median {:>9.1?}  (min {:.1?}, max {:.1?}, n {})",
        median(sorted.clone()),
        sorted[0],
        sorted[sorted.len() - 1],
        sorted.len()
    )
}

/// `what` measured `count` times: `step(i)` gives key i's unmeasured set-up
/// (keys sent one at a time, each once the screen is quiet), its key, and
/// what its frame must show.
type Step = (Vec<String>, String, Box<dyn Fn(&str) -> bool>);

fn measure(
    setup: &Setup,
    ui: &mut Session,
    what: &str,
    count: usize,
    step: impl Fn(usize) -> Step,
) {
    let name = &setup.name;
    if !wait_quiet(ui, Duration::from_millis(300), setup.key_limit) {
        println!(
            "{name}: {what:<38} not measured: the screen did not go quiet within {:?}",
            setup.key_limit
        );
        return;
    }
    let mut times = Vec::new();
    for i in 0..count {
        let (prepare, key, done) = step(i);
        for prepare in prepare {
            ui.send(&prepare);
            if !wait_quiet(ui, Duration::from_millis(300), setup.key_limit) {
                println!("{name}: {what:<38} not measured: its set-up did not settle");
                return;
            }
        }
        match key_to_frame(ui, &key, setup.key_limit, &*done) {
            Some(t) => times.push(t),
            None => {
                println!(
                    "{name}: {what:<38} not reached within {:?} (key {} of {count}); the screen:\n{}",
                    setup.key_limit,
                    i + 1,
                    ui.contents()
                );
                return;
            }
        }
    }
    println!("{name}: {what:<38} {}", describe(&times));
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The UI in a PTY: first rows, counts, memory, then each key's frame.
fn ui(
    setup: &Setup,
    args: &[&str],
    env: &[(&str, &str)],
    expected: &Expected,
    service_pid: Option<u32>,
) {
    let name = &setup.name;
    let started = Instant::now();
    let mut ui = Session::start_program(&setup.bin, args, env, COLS, ROWS);
    let report = |what: &str, at: Option<Duration>| match at {
        Some(_) => println!(
            "{name}: {what:<38} {:>9.3?}  (from exec)",
            started.elapsed()
        ),
        None => println!("{name}: {what:<38} not reached within {:?}", setup.limit),
    };
    let first_rows = wait_screen(&ui, setup.limit, |s| !rows(s).is_empty());
    report("first frame with rows", first_rows);
    let counts = wait_screen(&ui, setup.limit, |s| {
        shown_counts(s).as_ref() == Some(expected)
    });
    report("summary line and tab counts correct", counts);
    if counts.is_none() {
        println!(
            "{name}: the UI shows {:?}, the service counts {:?}",
            shown_counts(&ui.contents()),
            expected
        );
    }
    wait_quiet(&ui, Duration::from_millis(500), setup.key_limit);
    let pid = ui.pid();
    let what = if service_pid.is_some() {
        "UI (the service apart)"
    } else {
        "UI + embedded service"
    };
    println!(
        "{name}: {what} memory                   VmRSS {}, VmHWM {}",
        mib(status_kib(pid, "VmRSS:")),
        mib(status_kib(pid, "VmHWM:"))
    );
    if let Some(service) = service_pid {
        println!(
            "{name}: the service's memory                  VmRSS {}, VmHWM {}",
            mib(status_kib(service, "VmRSS:")),
            mib(status_kib(service, "VmHWM:"))
        );
    }
    keys(setup, &mut ui);
    ui.send("q");
    let exit = Instant::now();
    while ui.child.try_wait().ok().flatten().is_none() {
        if exit.elapsed() > Duration::from_secs(20) {
            println!("{name}: the UI did not quit within 20 s; killed");
            let _ = ui.child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn has_rows(s: &str) -> bool {
    !rows(s).is_empty()
}

fn every_row(s: &str, text: &str) -> bool {
    let rows = rows(s);
    !rows.is_empty() && rows.iter().all(|r| r.contains(text))
}

/// Key → next frame for `j`, `PgDn`, `G`, a tab switch and a sort change;
/// filter keystroke → filtered rows; 20 of each.
fn keys(setup: &Setup, ui: &mut Session) {
    let key = |k: &str| -> Step { (Vec::new(), k.to_owned(), Box::new(|_: &str| true)) };
    measure(setup, ui, "key → frame: j", 20, |_| key("j"));
    measure(setup, ui, "key → frame: PgDn", 20, |_| {
        (Vec::new(), "\x1b[6~".into(), Box::new(has_rows))
    });
    // `G` from the top (`g` first, not measured).
    measure(setup, ui, "key → frame: G (from the top)", 20, |_| {
        (vec!["g".into()], "G".into(), Box::new(has_rows))
    });
    ui.send("g");
    // Active ↔ Expired: every row shows the tab's status.
    measure(setup, ui, "key → frame: tab switch (2 ↔ 3)", 20, |i| {
        let (key, status) = if i % 2 == 0 {
            ("2", "● Active")
        } else {
            ("3", "◷ Expired")
        };
        (
            Vec::new(),
            key.into(),
            Box::new(move |s: &str| every_row(s, status)),
        )
    });
    ui.send("1");
    measure(setup, ui, "key → frame: sort change (s)", 20, |_| {
        (Vec::new(), "s".into(), Box::new(has_rows))
    });
    // Back to the created order: `s` until the header says so.
    for _ in 0..12 {
        if ui.contents().contains("Created ↓") {
            break;
        }
        ui.send("s");
        wait_quiet(ui, Duration::from_millis(300), setup.key_limit);
    }
    // `/` then `#`, `1`, `2`, `3` (seeded names end in `#N`; nothing else
    // has a `#`): each keystroke narrows the rows, each row shows the text.
    // Five rounds of four, `Esc` and `/` between them (not measured).
    let rounds = ["123", "456", "789", "234", "567"];
    measure(setup, ui, "filter keystroke → filtered rows", 20, |i| {
        let (round, at) = (rounds[i / 4], i % 4);
        let text = format!("#{}", &round[..at]);
        let typed = if at == 0 {
            "#".to_owned()
        } else {
            round[at - 1..at].to_owned()
        };
        // `Esc` alone (sent with the `/` it would read as Alt+/).
        let prepare = match (at, i) {
            (0, 0) => vec!["/".to_owned()],
            (0, _) => vec!["\x1b".to_owned(), "/".to_owned()],
            _ => Vec::new(),
        };
        (
            prepare,
            typed,
            Box::new(move |s: &str| {
                s.lines()
                    .any(|l| l.trim_start().starts_with('/') && l.contains(&text))
                    && every_row(s, &text)
            }),
        )
    });
    // Alone: `Esc` with the `q` that follows would read as Alt+q.
    ui.send("\x1b");
    wait_quiet(ui, Duration::from_millis(300), setup.key_limit);
}

/// Four UI sessions over SSH (russh, 120×40): the server's resident memory
/// before and once each shows rows and correct counts (or the limit passed).
async fn ssh_sessions(setup: &Setup, served: &Served, expected: &Expected) {
    use russh::ChannelMsg;
    use std::sync::{Arc, Mutex};

    let name = &setup.name;
    let key = draw::new_key();
    served.add_admin_ssh_key(&key);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = served.rss_kib();
    let sessions = 4;
    let mut screens = Vec::new();
    let mut handles = Vec::new();
    let mut readers = Vec::new();
    let started = Instant::now();
    for _ in 0..sessions {
        let handle = draw::connect(served.ssh, &key).await;
        let channel = handle.channel_open_session().await.expect("a session");
        channel
            .request_pty(false, "xterm-256color", COLS.into(), ROWS.into(), 0, 0, &[])
            .await
            .unwrap();
        channel.request_shell(false).await.unwrap();
        let (mut read, write) = channel.split();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let into = screen.clone();
        readers.push(tokio::spawn(async move {
            while let Some(message) = read.wait().await {
                if let ChannelMsg::Data { data } = message {
                    into.lock().unwrap().process(&data);
                }
            }
        }));
        screens.push(screen);
        handles.push((handle, write));
    }
    let text = |i: usize| screens[i].lock().unwrap().screen().contents();
    let mut peak = before;
    let ready = loop {
        peak = peak.max(served.rss_kib());
        if (0..sessions)
            .all(|i| has_rows(&text(i)) && shown_counts(&text(i)).as_ref() == Some(expected))
        {
            break Some(started.elapsed());
        }
        if started.elapsed() > setup.limit {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if ready.is_some() {
        // Let them settle (a page fetched ahead, buffers given back).
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let after = served.rss_kib();
    peak = peak.max(after);
    let state = match ready {
        Some(t) => format!("all {sessions} showed rows and correct counts after {t:.1?}"),
        None => format!(
            "NOT all showing correct counts within {:?} (still loading?): measured then",
            setup.limit
        ),
    };
    println!(
        "{name}: SSH UI sessions: {state}; the server's RSS {} before, {} with {sessions} sessions (peak {})",
        mib(before),
        mib(after),
        mib(peak)
    );
    println!(
        "{name}: memory of one SSH UI session            {} (the increase ÷ {sessions})",
        mib(after.saturating_sub(before) / sessions as u64)
    );
    for (handle, write) in handles {
        let _ = write.close().await;
        let bye = handle.disconnect(russh::Disconnect::ByApplication, "", "en");
        let _ = tokio::time::timeout(Duration::from_secs(2), bye).await;
    }
    for reader in readers {
        reader.abort();
    }
}
