//! Serving connections: our own accept loop over hyper, so that slow or idle
//! clients cannot hold the service (time limits on headers, idle keep-alive
//! and TLS handshakes, a cap on connections), with optional TLS and graceful
//! shutdown; on TCP (the API) or a Unix socket (the SSH sessions').

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Connections served at once by default: well under the usual soft limit of
/// 1024 open files, leaving room for the database pool and log files.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Time limits on connections and requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To send a request's headers: from a new connection (or its TLS
    /// handshake), or from a kept-alive connection's first byte of the next request.
    pub header: Duration,
    /// To send a request's whole body (at most 16 KiB), once its headers are in.
    pub body: Duration,
    /// A request's whole life, from its headers to its answer.
    pub request: Duration,
    /// How long a kept-alive connection may wait, silent, for its next request.
    pub idle: Duration,
}

impl Default for Timeouts {
    /// Headers 10 s: a few hundred bytes, which any live client sends at once.
    /// Body 15 s: 16 KiB at most, so only a stalled client takes that long.
    /// Request 30 s: twice the client's own 15 s limit; the database answers
    /// or is reported unavailable well before. Idle 60 s: reuse across a
    /// UI's refreshes without holding connections of clients that left.
    fn default() -> Self {
        Self {
            header: Duration::from_secs(10),
            body: Duration::from_secs(15),
            request: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        }
    }
}

/// What the accept loop serves: TCP, or a Unix socket (whose peers have no address).
pub(super) trait Listener: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;
    /// The next connection, and its peer's address if it has one.
    fn next(
        &self,
    ) -> impl Future<Output = std::io::Result<(Self::Stream, Option<SocketAddr>)>> + Send;
    /// Writes what fits into the socket's buffer now, without waiting.
    fn write_now(stream: &Self::Stream, bytes: &[u8]);
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    async fn next(&self) -> std::io::Result<(TcpStream, Option<SocketAddr>)> {
        let (stream, peer) = self.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, Some(peer)))
    }
    fn write_now(stream: &TcpStream, bytes: &[u8]) {
        let _ = stream.try_write(bytes);
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    async fn next(&self) -> std::io::Result<(UnixStream, Option<SocketAddr>)> {
        Ok((self.accept().await?.0, None))
    }
    fn write_now(stream: &UnixStream, bytes: &[u8]) {
        let _ = stream.try_write(bytes);
    }
}

/// How the listener is served.
pub(super) struct Serving {
    pub app: Router,
    pub tls: Option<TlsAcceptor>,
    pub timeouts: Timeouts,
    pub max_connections: usize,
    /// Connections accepted so far (refused ones at the cap included): a
    /// gateway that keeps its connections alive adds one per connection it
    /// opens, not one per request.
    pub accepted: Arc<AtomicU64>,
}

/// Accepts connections until `stop`, then lets every open connection finish
/// its request in flight (idle ones close at once) and returns.
///
/// At the connection cap, a new connection is answered at once (plain HTTP:
/// 503 `too_many_connections` with the JSON error body; HTTPS: closed) rather
/// than left waiting, so that a flood of idle clients cannot make others hang.
pub(super) async fn serve<L: Listener>(
    listener: L,
    serving: Serving,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let serving = Arc::new(serving);
    let permits = Arc::new(Semaphore::new(serving.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let refusal = Refusal::new(serving.max_connections);
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.next() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                };
                serving.accepted.fetch_add(1, Ordering::Relaxed);
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    refusal.refuse::<L>(stream, serving.tls.is_none());
                    continue;
                };
                let connection = serve_connection(stream, peer, serving.clone(), graceful.watcher());
                connections.spawn(async move {
                    connection.await;
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Resolves when told to stop, or when the sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// A failed `accept`: the peer's problem (try the next one), or ours, such as
/// running out of file descriptors (pause, so as not to spin).
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    ) {
        return;
    }
    tracing::warn!(error = %e, "cannot accept a connection; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The answer to a connection over the cap, and when we last logged one.
struct Refusal {
    response: Vec<u8>,
    last_logged: Mutex<Option<Instant>>,
    max_connections: usize,
}

impl Refusal {
    fn new(max_connections: usize) -> Self {
        let body = serde_json::json!({"error": {
            "code": "too_many_connections",
            "message": "The service is serving as many connections as it allows; try again shortly.",
        }})
        .to_string();
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nretry-after: 1\r\ncache-control: no-store\r\n\
             connection: close\r\n\r\n",
            body.len()
        );
        Self {
            response: [head.into_bytes(), body.into_bytes()].concat(),
            last_logged: Mutex::new(None),
            max_connections,
        }
    }

    /// Answers without waiting (the answer fits in the socket's buffer) and closes.
    fn refuse<L: Listener>(&self, stream: L::Stream, plain_http: bool) {
        if plain_http {
            L::write_now(&stream, &self.response);
        }
        drop(stream);
        let mut last = self.last_logged.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(
                max_connections = self.max_connections,
                "connection limit reached: refusing new connections (logged at most every 10 s)"
            );
        }
    }
}

/// One connection, from its TLS handshake (if any) to its close.
async fn serve_connection<S: Io + 'static>(
    stream: S,
    peer: Option<SocketAddr>,
    serving: Arc<Serving>,
    watcher: Watcher,
) {
    let timeouts = serving.timeouts;
    let io: Box<dyn Io> = match &serving.tls {
        None => Box::new(stream),
        Some(acceptor) => {
            match tokio::time::timeout(timeouts.header, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => Box::new(tls),
                Ok(Err(e)) => {
                    tracing::debug!(?peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(?peer, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Counted {
        inner: io,
        bytes_read: activity.clone(),
    });
    let app = serving.app.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        if let Some(peer) = peer {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        let mut app = app.clone();
        tower_service::Service::call(&mut app, request)
    });
    let timer = ConnTimer {
        bytes_read: activity,
        heads: Arc::new(AtomicU64::new(0)),
        header: timeouts.header,
        idle: timeouts.idle,
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(timer)
        .header_read_timeout(timeouts.header)
        .serve_connection(io, service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(?peer, error = %e, "connection closed");
    }
}

/// A plain or TLS stream.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A stream that counts the bytes read from it, so that the header timer
/// knows when a kept-alive connection's next request started.
struct Counted {
    inner: Box<dyn Io>,
    bytes_read: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        if read > 0 {
            self.bytes_read.fetch_add(read, Ordering::Relaxed);
        }
        result
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// hyper's timer for one connection. hyper starts its header timer as soon
/// as it waits for a request, so on a kept-alive connection it would also
/// bound the pause between requests. This timer makes that pause `idle`
/// long, and gives the headers `header` from the next request's first byte.
struct ConnTimer {
    bytes_read: Arc<AtomicU64>,
    /// Header timers started so far: the first is the connection's first request.
    heads: Arc<AtomicU64>,
    header: Duration,
    idle: Duration,
}

impl hyper::rt::Timer for ConnTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        hyper_util::rt::TokioTimer::new().sleep(duration)
    }

    /// hyper's HTTP/1 server asks for a deadline only to time a request's
    /// head; the deadline it passes is `now + header`, which [`HeadSleep`] refines.
    fn sleep_until(&self, _deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let first_request = self.heads.fetch_add(1, Ordering::Relaxed) == 0;
        let started = Instant::now();
        let wait = if first_request {
            self.header
        } else {
            self.idle
        };
        Box::pin(HeadSleep {
            bytes_read: self.bytes_read.clone(),
            bytes_at_start: self.bytes_read.load(Ordering::Relaxed),
            started,
            first_request,
            first_byte_at: None,
            header: self.header,
            idle: self.idle,
            sleep: Box::pin(tokio::time::sleep_until((started + wait).into())),
        })
    }
}

/// Fires when a request's head is late: on a new connection `header` after
/// it opened; on a kept-alive one, `idle` after the last answer if nothing
/// came, else `header` after the next request's first byte. (Bytes of a
/// pipelined request read before the answer count as "nothing came": such a
/// request's head is bounded by `idle`.)
struct HeadSleep {
    bytes_read: Arc<AtomicU64>,
    bytes_at_start: u64,
    started: Instant,
    first_request: bool,
    first_byte_at: Option<Instant>,
    header: Duration,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let deadline = if this.first_request {
            this.started + this.header
        } else {
            if this.first_byte_at.is_none()
                && this.bytes_read.load(Ordering::Relaxed) != this.bytes_at_start
            {
                this.first_byte_at = Some(Instant::now());
            }
            match this.first_byte_at {
                Some(at) => at + this.header,
                None => this.started + this.idle,
            }
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if this.sleep.deadline() != deadline {
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}
