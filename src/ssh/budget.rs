//! The SSH listener's connection budget: a cap on connections, and caps on
//! those not authenticated yet, in all and per source address (OpenSSH's
//! `MaxStartups` and `PerSourceMaxStartups`); a connection over a cap is closed
//! at once. Also what a connection's watchdog needs: whether it logged in,
//! when its user last typed, and a switch that closes its socket whatever
//! the SSH session is doing.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::service::gate::AddrKey;

/// The caps; see [`super::SshConfig`].
pub(super) struct Budget {
    max_connections: usize,
    max_unauthenticated: usize,
    max_unauthenticated_per_source: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    connections: usize,
    unauthenticated: usize,
    /// Connections not authenticated yet, by source (an IPv4 address or an IPv6 /64).
    by_source: HashMap<AddrKey, usize>,
    /// Connections refused since the last warning, and when that was.
    refused: u64,
    warned: Option<Instant>,
}

/// Which cap a connection ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Full {
    Connections,
    Unauthenticated,
    Source,
}

impl Budget {
    pub fn new(
        max_connections: usize,
        max_unauthenticated: usize,
        max_unauthenticated_per_source: usize,
    ) -> Self {
        Self {
            max_connections: max_connections.max(1),
            max_unauthenticated: max_unauthenticated.max(1),
            max_unauthenticated_per_source: max_unauthenticated_per_source.max(1),
            counts: Mutex::default(),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a new, unauthenticated connection from `addr`, or the cap it is over.
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Ticket, Full> {
        let source = AddrKey::from(addr);
        let mut counts = self.counts();
        let from_source = counts.by_source.get(&source).copied().unwrap_or(0);
        let full = if counts.connections >= self.max_connections {
            Some(Full::Connections)
        } else if counts.unauthenticated >= self.max_unauthenticated {
            Some(Full::Unauthenticated)
        } else if from_source >= self.max_unauthenticated_per_source {
            Some(Full::Source)
        } else {
            None
        };
        if let Some(full) = full {
            counts.refused += 1;
            let now = Instant::now();
            if counts
                .warned
                .is_none_or(|at| now.duration_since(at).as_secs() >= 10)
            {
                tracing::warn!(
                    refused = counts.refused,
                    cap = ?full,
                    last_from = %source,
                    "SSH connections refused at once: over a connection cap"
                );
                counts.refused = 0;
                counts.warned = Some(now);
            }
            return Err(full);
        }
        counts.connections += 1;
        counts.unauthenticated += 1;
        *counts.by_source.entry(source).or_default() += 1;
        Ok(Ticket {
            budget: self.clone(),
            source,
            unauthenticated: true,
        })
    }

    fn leave_unauthenticated(&self, counts: &mut Counts, source: AddrKey) {
        counts.unauthenticated -= 1;
        if let Some(n) = counts.by_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                counts.by_source.remove(&source);
            }
        }
    }

    /// Connections open now, and of those not authenticated yet.
    #[cfg(test)]
    fn open(&self) -> (usize, usize) {
        let counts = self.counts();
        (counts.connections, counts.unauthenticated)
    }
}

/// A connection's place in the budget, given back when it is dropped.
pub(super) struct Ticket {
    budget: Arc<Budget>,
    source: AddrKey,
    unauthenticated: bool,
}

impl Ticket {
    /// The connection logged in: it no longer counts as unauthenticated.
    pub fn authenticated(&mut self) {
        if std::mem::take(&mut self.unauthenticated) {
            let mut counts = self.budget.counts();
            self.budget.leave_unauthenticated(&mut counts, self.source);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.budget.counts();
        counts.connections -= 1;
        if self.unauthenticated {
            self.budget.leave_unauthenticated(&mut counts, self.source);
        }
    }
}

/// What a connection's watchdog reads: set by its handler and sessions.
pub(super) struct Liveness {
    started: Instant,
    authenticated: AtomicBool,
    /// Milliseconds from `started` to the user's last channel data (or the login).
    last_input_ms: std::sync::atomic::AtomicU64,
    /// Commands running now: a command's own time is not idleness.
    running: AtomicUsize,
    /// Told of the login (which may bring the watchdog's deadline forward).
    login: tokio::sync::Notify,
}

impl Liveness {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            authenticated: AtomicBool::new(false),
            last_input_ms: Default::default(),
            running: AtomicUsize::new(0),
            login: tokio::sync::Notify::new(),
        }
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Acquire)
    }

    pub fn logged_in(&self) {
        self.input();
        self.authenticated.store(true, Ordering::Release);
        self.login.notify_one();
    }

    /// Resolves once the connection logged in.
    pub async fn login(&self) {
        if !self.authenticated() {
            self.login.notified().await;
        }
    }

    /// The user sent channel data (keystrokes, a pasted line): keepalive
    /// replies and other protocol traffic never come here.
    pub fn input(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_input_ms.fetch_max(ms, Ordering::Relaxed);
    }

    pub fn last_input(&self) -> Instant {
        self.started + std::time::Duration::from_millis(self.last_input_ms.load(Ordering::Relaxed))
    }

    /// A command started; it counts as activity until the guard is dropped.
    pub fn command(self: &Arc<Self>) -> CommandGuard {
        self.running.fetch_add(1, Ordering::Relaxed);
        CommandGuard(self.clone())
    }

    pub fn busy(&self) -> bool {
        self.running.load(Ordering::Relaxed) > 0
    }
}

pub(super) struct CommandGuard(Arc<Liveness>);

impl Drop for CommandGuard {
    fn drop(&mut self) {
        self.0.input();
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Closes a connection's socket from outside its SSH session: once killed,
/// every read and write of the [`Killable`] stream fails, whatever the
/// session was waiting for (a client that stopped reading included).
#[derive(Default)]
pub(super) struct KillSwitch {
    killed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl KillSwitch {
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.reader.wake();
        self.writer.wake();
    }

    fn check(&self, waker: &AtomicWaker, cx: &Context<'_>) -> io::Result<()> {
        waker.register(cx.waker());
        if self.killed.load(Ordering::Acquire) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed by the server",
            ))
        } else {
            Ok(())
        }
    }
}

/// A stream its [`KillSwitch`] can end.
pub(super) struct Killable<S> {
    inner: S,
    switch: Arc<KillSwitch>,
}

impl<S> Killable<S> {
    pub fn new(inner: S, switch: Arc<KillSwitch>) -> Self {
        Self { inner, switch }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Err(e) = this.switch.check(&this.switch.reader, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Err(e) = this.switch.check(&this.switch.writer, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Err(e) = this.switch.check(&this.switch.writer, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_cap_refuses_and_a_login_or_a_close_gives_the_place_back() {
        let budget = Arc::new(Budget::new(4, 3, 2));
        let mut a1 = budget.admit(ip("10.0.0.1")).unwrap();
        let _a2 = budget.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(budget.admit(ip("10.0.0.1")).err(), Some(Full::Source));
        let b1 = budget.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(
            budget.admit(ip("10.0.0.3")).err(),
            Some(Full::Unauthenticated)
        );
        // A login frees its unauthenticated place, not its connection.
        a1.authenticated();
        a1.authenticated();
        assert_eq!(budget.open(), (3, 2));
        let _a3 = budget.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(budget.admit(ip("10.0.0.4")).err(), Some(Full::Connections));
        drop(b1);
        drop(a1);
        assert_eq!(budget.open(), (2, 2));
        // One IPv6 /64 is one source.
        let budget = Arc::new(Budget::new(10, 10, 1));
        let _c1 = budget.admit(ip("2001:db8::1")).unwrap();
        assert_eq!(budget.admit(ip("2001:db8::2")).err(), Some(Full::Source));
        let _d1 = budget.admit(ip("2001:db8:0:1::1")).unwrap();
    }
}
