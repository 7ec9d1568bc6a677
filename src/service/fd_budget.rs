//! The process's file-descriptor budget: at start the soft `RLIMIT_NOFILE` is
//! raised to the hard one, and the service refuses to start when its
//! connection cap, the other listeners' (the SSH front end's, as plain
//! numbers) and a reserve cannot fit in what is left, so that a full listener
//! is refused connections instead of running out of descriptors for the
//! database, the logs and the other listener.

/// Descriptors kept for everything but client connections: the database pool
/// (at most 16, plus 6 for the key cache's and the failed-check limit's
/// PostgreSQL listeners), the listeners, logs, host key, standard streams.
pub const RESERVE: u64 = 64;

/// Descriptors the process's other listeners may hold at most (the SSH
/// front end's connections and sessions), on top of the service's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherDescriptors {
    pub count: u64,
    /// The flags that set `count`, for the refusal message: e.g.
    /// `--ssh-max-connections 256 + 4 for each of --ssh-max-sessions 32`.
    pub flags: String,
}

/// What the caps may need at most.
pub fn needed(http_max_connections: usize, other: Option<&OtherDescriptors>) -> u64 {
    http_max_connections as u64 + other.map_or(0, |o| o.count) + RESERVE
}

/// Raises the soft limit to the hard one, logs the limit in effect, and
/// checks that the caps fit in it.
pub fn ensure(http_max_connections: usize, other: Option<&OtherDescriptors>) -> Result<(), String> {
    let needed = needed(http_max_connections, other);
    let Some(limit) = raise_nofile_limit() else {
        return Ok(());
    };
    if limit.soft > limit.before {
        tracing::info!(
            limit = limit.soft,
            raised_from = limit.before,
            needed,
            "file descriptor limit raised to the hard limit"
        );
    } else {
        tracing::info!(limit = limit.soft, needed, "file descriptor limit");
    }
    if needed <= limit.soft {
        return Ok(());
    }
    let other_part = other.map_or_else(String::new, |o| format!(" + {}", o.flags));
    Err(format!(
        "the connection caps need up to {needed} file descriptors \
         (--max-connections {http_max_connections}{other_part} + {RESERVE} for the database, \
         logs and listeners), but this process may open only {} (RLIMIT_NOFILE, hard limit {}): \
         lower the caps, or raise the limit (systemd: LimitNOFILE=; a shell: ulimit -n)",
        limit.soft, limit.hard
    ))
}

/// The open-files limit before and after raising it.
struct NofileLimit {
    before: u64,
    soft: u64,
    hard: u64,
}

/// `None` where the limit cannot be read (then nothing is checked).
#[cfg(unix)]
fn raise_nofile_limit() -> Option<NofileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the file descriptor limit");
        return None;
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max && limit.rlim_max != libc::RLIM_INFINITY {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to
        // the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        } else {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot raise the file descriptor limit");
        }
    }
    #[allow(clippy::unnecessary_cast)] // `rlim_t` is not `u64` everywhere
    let as_u64 = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            u64::MAX
        } else {
            v as u64
        }
    };
    Some(NofileLimit {
        before: as_u64(before),
        soft: as_u64(limit.rlim_cur),
        hard: as_u64(limit.rlim_max),
    })
}

#[cfg(not(unix))]
fn raise_nofile_limit() -> Option<NofileLimit> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caps_and_the_reserve_add_up() {
        assert_eq!(needed(512, None), 512 + RESERVE);
        let other = OtherDescriptors {
            count: 384,
            flags: "--ssh-max-connections 256 + 4 for each of --ssh-max-sessions 32".into(),
        };
        assert_eq!(needed(512, Some(&other)), 512 + 384 + RESERVE);
    }
}
