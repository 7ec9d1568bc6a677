//! Helpers for the stress tests (property, burst and load): a SQLite backend
//! under cargo's target tmp dir, and a process's resident memory.

use super::Backend;

impl Backend {
    /// A SQLite backend in a fresh directory under cargo's `CARGO_TARGET_TMPDIR`,
    /// for a service that lives as long as the test process (a `static` never
    /// drops its temp dir, so it should not litter `/tmp`).
    pub fn sqlite_in_target_tmp(prefix: &str) -> Self {
        Self {
            name: "sqlite",
            data_dir: tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .expect("temp dir"),
            database_url: None,
            pg: None,
        }
    }
}

/// Resident memory of process `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}
