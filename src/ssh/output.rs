//! A UI session's output over SSH. The UI writes frames without waiting (a
//! `Write`); a forwarder sends them on to the channel only as fast as the
//! client takes them (the channel's window). A client that stops reading
//! cannot make the server buffer without bound: past the limit, frames are
//! dropped rather than queued, and once the client has taken what was kept,
//! the screen is redrawn in full: every frame missed coalesced into one.
//! A command's output ([`send_all`]) goes out as fast as the client takes
//! it, and is cut only when the client takes none of it for a while.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};
use zeroize::Zeroize;

use crate::tui::term::bytes::SessionInput;

/// CAN: ends any escape sequence the client's terminal was in the middle
/// of, where output was cut.
const CANCEL: &[u8] = b"\x18";

/// Figures of the SSH server's sessions, for logs and tests.
#[derive(Debug, Default)]
pub struct SshStats {
    /// The most bytes a session's output buffer ever held.
    pub peak_buffered: AtomicUsize,
    /// How many times a session dropped frames for a slow client and redrew in full.
    pub resyncs: AtomicU64,
    /// Sessions open now.
    pub open_sessions: AtomicUsize,
    /// The most keys a UI session ever held (at most about its capacity,
    /// [`super::SshConfig::ui_capacity`], whatever the number of keys).
    pub peak_held_keys: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// `buf[..flushed]` is whole frames, ready to go.
    flushed: usize,
    /// Over the limit: writes are dropped until the client has caught up.
    dropping: bool,
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    ready: Notify,
    limit: usize,
    stats: Arc<SshStats>,
}

/// The UI's side: a `Write` that never blocks.
#[derive(Clone)]
pub struct SessionOutput(Arc<Shared>);

impl SessionOutput {
    /// Output that holds at most about `limit` bytes for a client that does not read.
    pub fn new(limit: usize, stats: Arc<SshStats>) -> Self {
        Self(Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            ready: Notify::new(),
            limit: limit.max(1024),
            stats,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.0.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// No more output: the forwarder sends what is ready and ends.
    pub fn close(&self) {
        self.lock().closed = true;
        self.0.ready.notify_one();
    }

    /// Sends frames to `out` until [`close`](Self::close), as fast as it
    /// takes them. After frames were dropped, asks the UI (through `input`,
    /// at the size in `size`) to draw the whole screen again.
    pub async fn forward<W: AsyncWrite + Unpin>(
        self,
        mut out: W,
        input: mpsc::WeakSender<SessionInput>,
        size: Arc<Mutex<(u16, u16)>>,
    ) {
        loop {
            let (chunk, resync, closed) = {
                let mut p = self.lock();
                if p.flushed > 0 {
                    let at = p.flushed;
                    let rest = p.buf.split_off(at);
                    p.flushed = 0;
                    (Some(std::mem::replace(&mut p.buf, rest)), false, false)
                } else if p.dropping {
                    // The client took everything kept: start again from a full frame.
                    p.dropping = false;
                    p.buf.extend_from_slice(CANCEL);
                    (None, true, false)
                } else {
                    (None, false, p.closed)
                }
            };
            if let Some(mut chunk) = chunk {
                let sent = out.write_all(&chunk).await.and(out.flush().await);
                chunk.zeroize();
                if sent.is_err() {
                    return;
                }
            } else if resync {
                self.0.stats.resyncs.fetch_add(1, Ordering::Relaxed);
                let (w, h) = *size.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(input) = input.upgrade() {
                    let _ = input.send(SessionInput::Resize(w, h)).await;
                }
            } else if closed {
                return;
            } else {
                self.0.ready.notified().await;
            }
        }
    }
}

impl Write for SessionOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut p = self.lock();
        if p.dropping || p.closed {
            return Ok(buf.len());
        }
        p.buf.extend_from_slice(buf);
        let held = p.buf.len();
        self.0
            .stats
            .peak_buffered
            .fetch_max(held, Ordering::Relaxed);
        if held > self.0.limit {
            // Keep whole frames only; the rest is drawn again later.
            let flushed = p.flushed;
            p.buf[flushed..].zeroize();
            p.buf.truncate(flushed);
            p.dropping = true;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut p = self.lock();
        if !p.dropping {
            p.flushed = p.buf.len();
        }
        drop(p);
        self.0.ready.notify_one();
        Ok(())
    }
}

/// What became of output sent with [`send_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// All of it.
    Whole,
    /// The client took nothing for the time allowed: this many bytes went.
    Cut(usize),
    /// The channel is gone.
    Gone,
}

/// Writes all of `bytes` to `out` as fast as it takes them, however long that
/// is, giving up only when it takes nothing for `progress` (an SSH channel:
/// no window space).
pub async fn send_all<W: AsyncWrite + Unpin>(
    out: &mut W,
    bytes: &[u8],
    progress: Duration,
) -> Sent {
    let mut at = 0;
    while at < bytes.len() {
        match tokio::time::timeout(progress, out.write(&bytes[at..])).await {
            Err(_) => return Sent::Cut(at),
            Ok(Ok(0) | Err(_)) => return Sent::Gone,
            Ok(Ok(n)) => at += n,
        }
    }
    match tokio::time::timeout(progress, out.flush()).await {
        Err(_) => Sent::Cut(at),
        Ok(Err(_)) => Sent::Gone,
        Ok(Ok(())) => Sent::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `pipe` in `chunk`-byte reads, `pause` apart; what it read.
    async fn read_slowly(
        mut pipe: tokio::io::DuplexStream,
        chunk: usize,
        pause: Duration,
    ) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0; chunk];
        loop {
            tokio::time::sleep(pause).await;
            match tokio::io::AsyncReadExt::read(&mut pipe, &mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn output_read_slowly_but_steadily_arrives_whole_however_long_it_takes() {
        let (mut server, client) = tokio::io::duplex(1024);
        let reader = tokio::spawn(read_slowly(client, 1024, Duration::from_millis(500)));
        let text: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let started = tokio::time::Instant::now();
        let sent = send_all(&mut server, &text, Duration::from_secs(2)).await;
        assert_eq!(sent, Sent::Whole);
        // Far longer than the 2 s allowed without progress: it is progress that counts.
        assert!(started.elapsed() > Duration::from_secs(60));
        drop(server);
        assert_eq!(reader.await.unwrap(), text);
    }

    #[tokio::test(start_paused = true)]
    async fn output_a_client_stops_taking_is_cut_after_the_time_allowed() {
        let (mut server, client) = tokio::io::duplex(1024);
        let sent = send_all(&mut server, &[b'x'; 10_000], Duration::from_secs(2)).await;
        assert_eq!(sent, Sent::Cut(1024));
        drop(client);
        assert_eq!(
            send_all(&mut server, b"more", Duration::from_secs(2)).await,
            Sent::Gone
        );
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_gets_a_bounded_buffer_then_one_full_frame() {
        let stats = Arc::new(SshStats::default());
        let mut output = SessionOutput::new(1024, stats.clone());
        for _ in 0..1000 {
            output.write_all(&[b'x'; 100]).unwrap();
            output.flush().unwrap();
        }
        assert!(stats.peak_buffered.load(Ordering::Relaxed) <= 1024 + 100);
        let (tx, mut rx) = mpsc::channel(4);
        let (client, mut server) = tokio::io::duplex(1 << 20);
        output.close();
        let forward = output.forward(client, tx.downgrade(), Arc::new(Mutex::new((80, 24))));
        forward.await;
        // What was kept went out, and a full redraw was asked for.
        assert_eq!(rx.recv().await, Some(SessionInput::Resize(80, 24)));
        let mut got = Vec::new();
        drop(tx);
        tokio::io::AsyncReadExt::read_to_end(&mut server, &mut got)
            .await
            .unwrap();
        assert_eq!(got.len(), 1000);
    }
}
