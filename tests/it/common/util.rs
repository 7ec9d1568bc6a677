//! Small helpers every test file shares: the bootstrap admin's token, a free
//! loopback port, and polling until something holds or a deadline passes
//! (never a fixed sleep): [`poll`] for a value, [`wait_until`] for a
//! condition, [`wait_screen`] for a terminal's screen.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

/// The bootstrap admin's token, which the service wrote to `DATA_DIR/admin-token`.
pub fn admin_token(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("admin-token"))
        .expect("bootstrap wrote the admin token")
        .trim()
        .to_owned()
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How often the pollers below look again.
const INTERVAL: Duration = Duration::from_millis(20);

/// Calls `check` until it gives `Some`, or `within` has passed (then `None`).
pub async fn poll<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// How long [`wait_until`] waits for something that must happen.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Blocks until `done` holds; after [`PATIENCE`], fails saying what it
/// waited for and what `shows` (e.g. `"; the terminal shows: …"`).
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool, shows: impl Fn() -> String) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}{}",
            shows()
        );
        std::thread::sleep(INTERVAL);
    }
}

/// The async [`wait_until`] for a terminal: `next` lets time pass (sleeps,
/// or reads what a peer sent) and gives the screen, and whether more can
/// still come. Returns the screen's text once `done` holds for it; fails
/// showing it after [`PATIENCE`], or at once when nothing more can come.
pub async fn wait_screen(
    what: &str,
    mut next: impl AsyncFnMut() -> (vt100::Screen, bool),
    done: impl Fn(&vt100::Screen) -> bool,
) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (screen, open) = next().await;
        if done(&screen) {
            return screen.contents();
        }
        assert!(
            open && Instant::now() < deadline,
            "{what} within {PATIENCE:?}; the screen:\n{}",
            screen.contents()
        );
    }
}
