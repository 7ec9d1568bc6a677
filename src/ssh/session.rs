//! One SSH connection (a russh handler) and its sessions: a PTY and no
//! command opens the terminal UI; a command runs it (see [`super::exec`]).
//! Each session runs in its own task on the SSH sessions' own runtime
//! ([`super::runtime`]), its user acting through a credential that lives as
//! long as the session; its start and end are logged, its end also in the
//! audit log. A channel takes a session slot (the server's and its user's)
//! only once it asks for a shell or a command, and is closed if it asks for
//! neither in time; every request the server does not handle is answered
//! with a failure at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::server::{Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelMsg, ChannelOpenFailure, Sig};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use super::budget::{Liveness, Ticket};
use super::exec;
use super::output::{self, Sent, SessionOutput};
use super::Ctx;
use crate::cli::console::Terminal;
use crate::client::Client;
use crate::key::ssh::fingerprint;
use crate::present::{DisplayTz, Palette};
use crate::service::gate::{Identity, Refusal};
use crate::tui::term::bytes::{self, SessionInput};
use crate::tui::term::{ClipboardMethod, TermOptions};

/// What the client's terminal gets back at the end of a UI session, whatever
/// was dropped before: end any half-sent sequence, bracketed paste off, the
/// cursor shown, the main screen back.
const RESTORE: &[u8] = b"\x18\x1b[?2004l\x1b[?25h\x1b[?1049l";

/// Environment variables a session may set (`ssh -o SetEnv=NO_COLOR=1`,
/// `SetEnv=KEYDECK_THEME=light`).
const SESSION_ENV: &[&str] = &["NO_COLOR", "TERM", "KEYDECK_THEME"];

/// `env` requests a channel may make; later ones are ignored (and refused).
/// OpenSSH sends one for each `SendEnv` variable set (Debian: `LANG LC_*`).
const MAX_ENV_REQUESTS: usize = 32;

/// Longest value an `env` request may set.
const MAX_ENV_VALUE: usize = 256;

/// Session channels one connection may have open at once.
pub const MAX_CHANNELS: usize = 10;

/// Whether the `nth` (from 1) `env` request of a channel is taken.
fn env_taken(nth: usize, name: &str, value: &str) -> bool {
    nth <= MAX_ENV_REQUESTS && SESSION_ENV.contains(&name) && value.len() <= MAX_ENV_VALUE
}

/// What a session channel asked for so far, as the handler answers it.
#[derive(Default)]
struct Requests {
    env: usize,
    started: bool,
}

/// A connection's session channels open now, by id.
type OpenChannels = Arc<Mutex<HashMap<ChannelId, Requests>>>;

/// Takes a channel off its connection's list when its task ends.
struct OpenChannel {
    channels: OpenChannels,
    id: ChannelId,
}

impl Drop for OpenChannel {
    fn drop(&mut self) {
        lock(&self.channels).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sessions open, by user id.
#[derive(Default)]
pub(super) struct UserSessions(Arc<Mutex<HashMap<String, usize>>>);

impl UserSessions {
    /// One of the user's `max` slots, if one is free.
    fn take(&self, user_id: &str, max: usize) -> Option<UserSlot> {
        let mut open = lock(&self.0);
        let n = open.entry(user_id.to_owned()).or_default();
        if *n >= max.max(1) {
            return None;
        }
        *n += 1;
        Some(UserSlot {
            open: self.0.clone(),
            user_id: user_id.to_owned(),
        })
    }
}

/// A session's slot among its user's, given back when dropped.
struct UserSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    user_id: String,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(n) = open.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

/// One SSH connection.
pub struct Connection {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    identity: Option<Identity>,
    /// A failed authentication was counted for this connection already (or
    /// must not be: the database did not answer).
    failure_counted: bool,
    /// The client offered or signed with a key.
    attempted: bool,
    /// A refused key was written to the audit log already (once per connection).
    refusal_audited: bool,
    /// Its place in the connection budget.
    ticket: Ticket,
    live: Arc<Liveness>,
    channels: OpenChannels,
}

impl Connection {
    pub(super) fn new(
        ctx: Arc<Ctx>,
        peer: SocketAddr,
        ticket: Ticket,
        live: Arc<Liveness>,
    ) -> Self {
        Self {
            ctx,
            peer,
            identity: None,
            failure_counted: false,
            attempted: false,
            refusal_audited: false,
            ticket,
            live,
            channels: OpenChannels::default(),
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Answers a channel request `taken` or not (if the client wants an answer).
    fn answer(session: &mut Session, channel: ChannelId, taken: bool) -> Result<(), russh::Error> {
        if taken {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }
}

/// A connection that tried a key and never logged in failed authentication:
/// counted for its address, once (a refused signature counted already).
impl Drop for Connection {
    fn drop(&mut self) {
        if self.attempted && self.identity.is_none() && !self.failure_counted {
            self.ctx.gate.note_failure(self.peer.ip());
        }
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    /// The same answer for every key, so that nobody learns whose keys are
    /// registered without holding them: the decision waits for the signature.
    /// An address locked out by failed authentications is refused.
    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        _offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        self.attempted = true;
        Ok(if self.ctx.gate.locked_out(self.peer.ip()) {
            Auth::reject()
        } else {
            Auth::Accept
        })
    }

    /// The login name is ignored: the key says who this is.
    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        self.attempted = true;
        let fingerprint = fingerprint(key.public_key);
        let addr = self.peer.ip();
        let gate = &self.ctx.gate;
        let who = match gate
            .identify(&fingerprint, addr, &mut self.failure_counted)
            .await
        {
            Ok(who) => who,
            Err(refused) => {
                if refused.reason == Refusal::Unavailable {
                    // The server's fault, not the client's: never counted.
                    self.failure_counted = true;
                }
                tracing::info!(%addr, %fingerprint, user = refused.holder_email(),
                    reason = refused.reason.as_str(), "SSH key refused");
                if refused.holder_email().is_some() && !self.refusal_audited {
                    self.refusal_audited = true;
                    gate.refused(&refused, &fingerprint, addr).await;
                }
                return Ok(Auth::reject());
            }
        };
        tracing::info!(user = %who.email(), org = %who.org_name(), %addr, %fingerprint, "SSH login");
        gate.logged_in(&who).await;
        self.identity = Some(who);
        self.ticket.authenticated();
        self.live.logged_in();
        Ok(Auth::Accept)
    }

    /// At most [`MAX_CHANNELS`] at once; a slot is taken only by a shell or a command.
    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(identity) = self.identity.clone() else {
            return Ok(());
        };
        let room = {
            let mut open = lock(&self.channels);
            let room = open.len() < MAX_CHANNELS;
            if room {
                open.insert(channel.id(), Requests::default());
            }
            room
        };
        if !room {
            tracing::info!(user = %identity.email(), addr = %identity.addr(),
                "SSH channel refused: {MAX_CHANNELS} open on the connection already");
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        let open = OpenChannel {
            channels: self.channels.clone(),
            id: channel.id(),
        };
        reply.accept().await;
        self.ctx.runtime.spawn(run(
            channel,
            self.ctx.clone(),
            identity,
            open,
            self.live.clone(),
        ));
        Ok(())
    }

    /// The user's input: what keeps the connection from being idle.
    async fn data(
        &mut self,
        _channel: ChannelId,
        _data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.live.input();
        Ok(())
    }

    async fn extended_data(
        &mut self,
        _channel: ChannelId,
        _code: u32,
        _data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.live.input();
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    /// Taken as [`env_taken`] says (the session applies the same rule).
    async fn env_request(
        &mut self,
        channel: ChannelId,
        variable_name: &str,
        variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let taken = lock(&self.channels).get_mut(&channel).is_some_and(|r| {
            r.env += 1;
            env_taken(r.env, variable_name, variable_value)
        });
        Self::answer(session, channel, taken)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let first = self.start(channel);
        Self::answer(session, channel, first)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let first = self.start(channel);
        Self::answer(session, channel, first)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    /// No X11 forwarding.
    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    /// No agent forwarding (russh answers the failure).
    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    #[allow(clippy::too_many_arguments)]
    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    /// Signals are not passed on (a failure, if an answer is wanted).
    async fn signal(
        &mut self,
        channel: ChannelId,
        _signal: Sig,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }
}

impl Connection {
    /// The channel's first shell or command request: `true`; any later one: `false`.
    fn start(&mut self, channel: ChannelId) -> bool {
        lock(&self.channels)
            .get_mut(&channel)
            .is_some_and(|r| !std::mem::replace(&mut r.started, true))
    }
}

/// The client's terminal, as its PTY request and environment describe it.
#[derive(Debug, Clone)]
struct Pty {
    term: String,
    size: (u16, u16),
}

/// What the session asked for: the UI (a shell) or a command.
enum Start {
    Shell,
    Exec(Vec<u8>),
}

/// The largest terminal a session draws, columns × rows: a bigger one gets a
/// frame of this size in its top-left corner, so that no client can make a
/// frame cost more than a real terminal's.
const MAX_SIZE: (u16, u16) = (500, 200);

/// Window changes reach the UI at most this often; the latest size wins.
const RESIZE_EVERY: Duration = Duration::from_millis(50);

/// How long a closing message (or the terminal's restore) may wait for a
/// client that takes none of it.
const MESSAGE_PROGRESS: Duration = Duration::from_secs(5);

/// A PTY request's or window change's size, as the UI draws it.
fn size(col_width: u32, row_height: u32) -> (u16, u16) {
    let clamp = |v: u32, max: u16| v.clamp(1, max.into()) as u16;
    (clamp(col_width, MAX_SIZE.0), clamp(row_height, MAX_SIZE.1))
}

/// What a channel asked for before its shell or command.
#[derive(Default)]
struct Asked {
    pty: Option<Pty>,
    /// One value per name, the last one set.
    env: Vec<(String, String)>,
    env_requests: usize,
}

impl Asked {
    /// Notes a PTY, window change or `env` request.
    fn note(&mut self, message: ChannelMsg) {
        match message {
            ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                ..
            } => {
                self.pty = Some(Pty {
                    term,
                    size: size(col_width, row_height),
                })
            }
            ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            } => {
                if let Some(pty) = &mut self.pty {
                    pty.size = size(col_width, row_height);
                }
            }
            ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            } => {
                self.env_requests += 1;
                if env_taken(self.env_requests, &variable_name, &variable_value) {
                    match self.env.iter_mut().find(|(name, _)| *name == variable_name) {
                        Some((_, value)) => *value = variable_value,
                        None => self.env.push((variable_name, variable_value)),
                    }
                }
            }
            _ => {}
        }
    }
}

/// One session channel, from its requests to its close: a shell or a
/// command within the deadline, then a slot (the server's and the user's).
async fn run(
    mut channel: Channel<Msg>,
    ctx: Arc<Ctx>,
    who: Identity,
    _open: OpenChannel,
    live: Arc<Liveness>,
) {
    let Some((start, asked)) = requests(&mut channel, &ctx, &who).await else {
        return;
    };
    let Some((permit, user_slot)) = slots(&mut channel, &ctx, &who).await else {
        return;
    };
    let mut slot = Some(permit);
    ctx.stats.open_sessions.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let kind = match (&start, &asked.pty) {
        (Start::Shell, Some(_)) => "ui",
        (Start::Shell, None) => "shell",
        (Start::Exec(_), _) => "command",
    };
    tracing::info!(user = %who.email(), org = %who.org_name(), addr = %who.addr(), fingerprint = %who.fingerprint(), kind, "SSH session started");
    let token = ctx.gate.mint(&who);
    let status = match Client::over_socket(&ctx.internal_socket, token.secret.clone()) {
        Err(e) => {
            tracing::error!(error = %e, "no client for the SSH session");
            let internal = b"keydeck: internal error\r\n";
            finish(&mut channel, &[], internal, 1, &mut slot).await;
            1
        }
        Ok(client) => {
            let session = (&ctx, &who, &live);
            serve(&mut channel, session, (start, asked), client, &mut slot).await
        }
    };
    drop(token);
    drop(user_slot);
    ctx.stats.open_sessions.fetch_sub(1, Ordering::Relaxed);
    ended(&ctx, &who, kind, started, status).await;
}

/// The channel's requests until its shell or command; `None` when it asked
/// for neither in time, or went away (the channel then closed).
async fn requests(channel: &mut Channel<Msg>, ctx: &Ctx, who: &Identity) -> Option<(Start, Asked)> {
    let mut asked = Asked::default();
    let deadline = tokio::time::Instant::now() + ctx.config.channel_request_timeout;
    loop {
        let Ok(message) = tokio::time::timeout_at(deadline, channel.wait()).await else {
            tracing::info!(user = %who.email(), addr = %who.addr(),
                "SSH channel closed: it asked for neither a shell nor a command in time");
            let _ = channel.close().await;
            return None;
        };
        match message {
            Some(ChannelMsg::RequestShell { .. }) => return Some((Start::Shell, asked)),
            Some(ChannelMsg::Exec { command, .. }) => return Some((Start::Exec(command), asked)),
            Some(ChannelMsg::Eof) => {
                let _ = channel.close().await;
                return None;
            }
            Some(ChannelMsg::Close) | None => return None,
            Some(message) => asked.note(message),
        }
    }
}

/// A session slot of the server's and one of the user's; `None` (the
/// client told why, the channel closed) when either is full.
async fn slots(
    channel: &mut Channel<Msg>,
    ctx: &Ctx,
    who: &Identity,
) -> Option<(OwnedSemaphorePermit, UserSlot)> {
    let Ok(permit) = ctx.sessions.clone().try_acquire_owned() else {
        let message = format!(
            "keydeck: this server already serves as many SSH sessions as it allows ({}); \
             try again shortly.\r\n",
            ctx.config.max_sessions
        );
        tracing::warn!(user = %who.email(), addr = %who.addr(), "SSH session refused: session limit reached");
        finish(channel, &[], message.as_bytes(), 1, &mut None).await;
        return None;
    };
    let max_user_sessions = ctx.config.max_user_sessions;
    let Some(user_slot) = ctx.user_sessions.take(who.user_id(), max_user_sessions) else {
        let message = format!(
            "keydeck: {} has as many SSH sessions open as one user may ({max_user_sessions}); \
             close one and try again.\r\n",
            who.email()
        );
        tracing::warn!(user = %who.email(), addr = %who.addr(), "SSH session refused: the user's session limit reached");
        finish(channel, &[], message.as_bytes(), 1, &mut None).await;
        return None;
    };
    Some((permit, user_slot))
}

/// The session itself, with its client: the UI, a command, or the note that
/// a shell without a terminal is not one. Its exit status.
async fn serve(
    channel: &mut Channel<Msg>,
    (ctx, who, live): (&Arc<Ctx>, &Identity, &Arc<Liveness>),
    (start, asked): (Start, Asked),
    client: Client,
    slot: &mut Option<OwnedSemaphorePermit>,
) -> u32 {
    match (start, asked.pty) {
        (Start::Shell, Some(pty)) => ui(channel, ctx, who, (pty, &asked.env), client, slot).await,
        (Start::Shell, None) => {
            let message = "keydeck: the terminal UI needs a terminal: connect with `ssh -t`, \
                or run a command such as `keys list` (`--help` lists them).\n";
            finish(channel, &[], message.as_bytes(), 1, slot).await;
            1
        }
        (Start::Exec(command), pty) => {
            // A command's own time is not idleness of the connection.
            let _running = live.command();
            let terminal = pty.as_ref().map(|p| Terminal {
                width: usize::from(p.size.0),
                colour: term_options(p, &asked.env).color,
            });
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let progress = ctx.config.exec_progress_timeout;
            let (mut done, streamed) = tokio::join!(
                exec::run_streaming(&command, client, terminal, tx),
                stream_out(channel, rx, pty.is_some(), progress)
            );
            if let Streamed::Cut { sent, total } = streamed {
                // Nothing more goes to stdout; stderr says how far it got.
                let total = total + done.stdout.len();
                done.stdout = Zeroizing::new(Vec::new());
                if done.status == 0 {
                    done.status = exec::EXIT_CUT;
                }
                let note = format!(
                    "keydeck: output cut: the client took none of it for {} s; \
                     {sent} of {total} bytes of standard output sent\n",
                    progress.as_secs()
                );
                tracing::warn!(
                    sent,
                    total,
                    "SSH command output cut: the client stopped reading"
                );
                crate::cli::console::append(&mut done.stderr, note.as_bytes());
            }
            reply(channel, ctx, done, pty.is_some(), slot).await
        }
    }
}

/// How a running command's standard output went.
enum Streamed {
    /// All of it (or the client left: nothing to tell it).
    Whole,
    /// The client took none of it for the time allowed: `sent` bytes of the
    /// `total` streamed went.
    Cut { sent: usize, total: usize },
}

/// Sends a running command's standard output on as it comes (`\r\n` line
/// ends for a terminal), as fast as the client takes it; once the client
/// took nothing for `progress` (or left), the rest is taken and dropped so
/// that the command ends.
async fn stream_out(
    channel: &mut Channel<Msg>,
    mut rx: tokio::sync::mpsc::Receiver<crate::cli::console::Buffer>,
    pty: bool,
    progress: Duration,
) -> Streamed {
    let (mut state, mut sent, mut total) = (Sent::Whole, 0, 0);
    while let Some(chunk) = rx.recv().await {
        let chunk = if pty { exec::crlf(&chunk) } else { chunk };
        total += chunk.len();
        if state != Sent::Whole {
            continue;
        }
        state = output::send_all(&mut channel.make_writer(), &chunk, progress).await;
        sent += match state {
            Sent::Whole => chunk.len(),
            Sent::Cut(at) => at,
            Sent::Gone => 0,
        };
    }
    match state {
        Sent::Cut(_) => Streamed::Cut { sent, total },
        _ => Streamed::Whole,
    }
}

/// The session's end, in the service log and the audit log.
async fn ended(ctx: &Ctx, who: &Identity, kind: &str, started: Instant, status: u32) {
    let duration_s = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    tracing::info!(
        user = %who.email(),
        addr = %who.addr(),
        fingerprint = %who.fingerprint(),
        kind,
        exit_status = status,
        duration_s,
        "SSH session ended"
    );
    let details =
        serde_json::json!({ "kind": kind, "duration_s": duration_s, "exit_status": status });
    ctx.gate.session_ended(who, details).await;
}

/// Sends what is left, gives the session's slot back (`slot`), then the exit
/// status, and closes the channel; a client that takes nothing for a few
/// seconds is not waited for.
async fn finish(
    channel: &mut Channel<Msg>,
    stdout: &[u8],
    stderr: &[u8],
    status: u32,
    slot: &mut Option<OwnedSemaphorePermit>,
) {
    let sending = Sending {
        progress: MESSAGE_PROGRESS,
        newline: "\r\n",
    };
    finish_within(channel, (stdout, stderr), status, slot, sending).await;
}

/// A command's output (`\r\n` line ends for a terminal), its exit status,
/// and the channel closed: [`finish_within`] with the configured patience.
async fn reply(
    channel: &mut Channel<Msg>,
    ctx: &Ctx,
    done: exec::Finished,
    pty: bool,
    slot: &mut Option<OwnedSemaphorePermit>,
) -> u32 {
    let status = done.status.into();
    let (out, err) = if pty {
        (exec::crlf(&done.stdout), exec::crlf(&done.stderr))
    } else {
        (done.stdout, done.stderr)
    };
    let sending = Sending {
        progress: ctx.config.exec_progress_timeout,
        newline: if pty { "\r\n" } else { "\n" },
    };
    finish_within(channel, (&out, &err), status, slot, sending).await
}

/// How output is sent at the end of a session.
struct Sending {
    /// A client that takes none of it for this long gets it cut.
    progress: Duration,
    /// Line end of the note that says so.
    newline: &'static str,
}

/// Sends `stdout` and `stderr` as fast as the client takes them, gives the
/// session's slot back (`slot`), then the exit status, and closes the
/// channel. Output the client took nothing of for `sending.progress` is cut:
/// the exit status is then non-zero (1 unless it was already) and standard
/// error ends with a line that says so. The status sent.
async fn finish_within(
    channel: &mut Channel<Msg>,
    (stdout, stderr): (&[u8], &[u8]),
    mut status: u32,
    slot: &mut Option<OwnedSemaphorePermit>,
    sending: Sending,
) -> u32 {
    let progress = sending.progress;
    let out = output::send_all(&mut channel.make_writer(), stdout, progress).await;
    if out != Sent::Gone {
        let mut err = channel.make_writer_ext(Some(1));
        let sent = if let Sent::Cut(at) = out {
            status = cut_status(status);
            let note = format!(
                "keydeck: output cut: the client took none of it for {} s; \
                 {at} of {} bytes of standard output sent{}",
                progress.as_secs(),
                stdout.len(),
                sending.newline
            );
            tracing::warn!(
                sent = at,
                total = stdout.len(),
                "SSH command output cut: the client stopped reading"
            );
            let mut rest = Zeroizing::new(Vec::with_capacity(stderr.len() + note.len()));
            rest.extend_from_slice(stderr);
            rest.extend_from_slice(note.as_bytes());
            output::send_all(&mut err, &rest, progress).await
        } else {
            output::send_all(&mut err, stderr, progress).await
        };
        if let Sent::Cut(at) = sent {
            status = cut_status(status);
            tracing::warn!(
                sent = at,
                "SSH command standard error cut: the client stopped reading"
            );
        }
    }
    drop(slot.take());
    // Bounded too: a connection that floods us may not take these at once.
    let _ = tokio::time::timeout(MESSAGE_PROGRESS, async {
        let _ = channel.exit_status(status).await;
        let _ = channel.eof().await;
        let _ = channel.close().await;
    })
    .await;
    status
}

/// The exit status of a command whose output was cut: never success.
fn cut_status(status: u32) -> u32 {
    if status == 0 {
        exec::EXIT_CUT.into()
    } else {
        status
    }
}

/// Window changes (and other requests that are not input) a UI session
/// reads per second, after a burst of as many. Input waits for the UI to take
/// it; these would not, so past this the session stops reading its channel
/// for a while, and russh stops reading the client's connection: a client
/// that floods them costs the server's transport (on the runtime that serves
/// HTTP) no more than this.
const REQUESTS_PER_SECOND: f64 = 100.0;

/// Requests over [`REQUESTS_PER_SECOND`] add one each to a flood score that
/// drains by [`FLOOD_DRAIN`] a second; past [`FLOOD_SCORE`] the session is
/// ended: a flood, not a terminal being resized (one that stays just over
/// the rate would need minutes). A client that left with a flood still
/// queued is so found out in seconds, not once all of it was read (unless
/// the session reads below the rate anyway).
const FLOOD_SCORE: f64 = 300.0;
const FLOOD_DRAIN: f64 = 10.0;

/// A token bucket of [`REQUESTS_PER_SECOND`], and a flood score.
struct RequestBudget {
    tokens: f64,
    at: tokio::time::Instant,
    flood: f64,
}

/// What to do after a request.
#[derive(Debug, PartialEq, Eq)]
enum Pace {
    /// Read on.
    Go,
    /// Read the next one then.
    Wait(tokio::time::Instant),
    /// Past [`FLOOD_SCORE`]: end the session.
    Flood,
}

impl RequestBudget {
    fn new() -> Self {
        Self {
            tokens: REQUESTS_PER_SECOND,
            at: tokio::time::Instant::now(),
            flood: 0.0,
        }
    }

    /// Spends one request.
    fn take(&mut self) -> Pace {
        let now = tokio::time::Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * REQUESTS_PER_SECOND).min(REQUESTS_PER_SECOND) - 1.0;
        self.flood = (self.flood - elapsed * FLOOD_DRAIN).max(0.0);
        if self.tokens >= 0.0 {
            return Pace::Go;
        }
        self.flood += 1.0;
        if self.flood > FLOOD_SCORE {
            return Pace::Flood;
        }
        Pace::Wait(now + Duration::from_secs_f64(-self.tokens / REQUESTS_PER_SECOND))
    }
}

/// When a paused session reads again (`otherwise` if it is not paused).
fn paused_until(pace: &Pace, otherwise: tokio::time::Instant) -> tokio::time::Instant {
    match pace {
        Pace::Wait(at) => *at,
        _ => otherwise,
    }
}

/// Window changes not yet passed on to the UI.
struct Resize {
    /// The client's latest size.
    wanted: (u16, u16),
    /// The size the UI was last given.
    drawn: (u16, u16),
    /// When `wanted` goes to the UI, if it is to.
    due: Option<tokio::time::Instant>,
    /// The earliest time the next one may.
    next: tokio::time::Instant,
}

/// The terminal UI on this channel, until `q`, the client leaving, the idle
/// timeout or the server's shutdown; the terminal restored in every case.
async fn ui(
    channel: &mut Channel<Msg>,
    ctx: &Arc<Ctx>,
    who: &Identity,
    (pty, env): (Pty, &[(String, String)]),
    client: Client,
    slot: &mut Option<OwnedSemaphorePermit>,
) -> u32 {
    let options = term_options(&pty, env);
    let palette = session_palette(env);
    let (tx, rx) = mpsc::channel(64);
    let current_size = Arc::new(Mutex::new(pty.size));
    let output = SessionOutput::new(ctx.config.output_buffer, ctx.stats.clone());
    let forwarder = tokio::spawn(output.clone().forward(
        channel.make_writer(),
        tx.downgrade(),
        current_size.clone(),
    ));
    let mut session_ui = spawn_ui(ctx, who, (options, palette), (rx, output.clone()), client);
    let mut side = UiChannel::new(who, tx, current_size, ctx.config.idle_timeout);
    let outcome = side.serve(channel, &mut session_ui, ctx.stop.clone()).await;
    output.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), forwarder).await;
    let status = match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            tracing::warn!(user = %who.email(), error = %e, "SSH UI session failed");
            1
        }
        Err(e) => {
            tracing::error!(user = %who.email(), error = %e, "SSH UI session panicked; only it ended");
            side.farewell = b"keydeck: internal error; the session ended.\r\n";
            1
        }
    };
    if side.open {
        finish(channel, RESTORE, side.farewell, status, slot).await;
    }
    status
}

/// The session's terminal, as its PTY request and `env` requests describe it.
fn term_options(pty: &Pty, env: &[(String, String)]) -> TermOptions {
    let var = |name: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let term = var("TERM").unwrap_or(&pty.term);
    TermOptions {
        color: var("NO_COLOR").is_none_or(str::is_empty) && term != "dumb",
        clipboard: ClipboardMethod::Osc52,
        size: pty.size,
    }
}

/// The palette a session asked for with `KEYDECK_THEME` (one value, as the
/// local `--theme` takes it: dark, light, high-contrast), else dark. A value
/// that is no theme is not taken: dark, and the note that says why.
fn session_palette(env: &[(String, String)]) -> Result<Palette, String> {
    let Some((_, value)) = env.iter().rev().find(|(n, _)| n == "KEYDECK_THEME") else {
        return Ok(Palette::default());
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(Palette::default());
    }
    <Palette as clap::ValueEnum>::from_str(value, true).map_err(|_| {
        let shown: String = value.chars().take(20).collect();
        format!("KEYDECK_THEME={shown:?} is not a theme (dark, light, high-contrast): using dark.")
    })
}

/// The UI itself, in its own task: a panic in it ends this session only.
fn spawn_ui(
    ctx: &Ctx,
    who: &Identity,
    (options, palette): (TermOptions, Result<Palette, String>),
    (input, output): (mpsc::Receiver<SessionInput>, SessionOutput),
    client: Client,
) -> JoinHandle<Result<(), String>> {
    let mut app = crate::tui::new_app(
        &options,
        ctx.gate.clock(),
        DisplayTz::utc(),
        format!("ssh · {}", who.email()),
    );
    match palette {
        Ok(palette) => app.set_palette(palette),
        Err(note) => app.note(note),
    }
    app.set_capacity(ctx.config.ui_capacity);
    app.report_held_to(Arc::clone(&ctx.stats.peak_held_keys));
    tokio::spawn(async move {
        bytes::run(input, output, options, &mut app, client)
            .await
            .map_err(|e| e.to_string())
    })
}

/// A UI session's channel side: the client's input and window changes
/// passed on to the UI, paced, until the UI ends.
struct UiChannel<'a> {
    who: &'a Identity,
    /// To the UI; `None` once it is told to end.
    input: Option<mpsc::Sender<SessionInput>>,
    /// The channel is still open (the terminal can be restored).
    open: bool,
    idle: Duration,
    deadline: tokio::time::Instant,
    /// Said to the client once the UI has ended, if anything.
    farewell: &'static [u8],
    resize: Resize,
    /// The client's latest size, for the output's full redraws.
    current_size: Arc<Mutex<(u16, u16)>>,
    /// Requests that cost the UI nothing (window changes) are read only so
    /// fast: past that, the client's connection waits (see [`RequestBudget`]).
    requests: RequestBudget,
    pace: Pace,
}

impl<'a> UiChannel<'a> {
    fn new(
        who: &'a Identity,
        input: mpsc::Sender<SessionInput>,
        current_size: Arc<Mutex<(u16, u16)>>,
        idle: Duration,
    ) -> Self {
        let size = *lock(&current_size);
        Self {
            who,
            input: Some(input),
            open: true,
            idle,
            deadline: tokio::time::Instant::now() + idle,
            farewell: b"",
            resize: Resize {
                wanted: size,
                drawn: size,
                due: None,
                next: tokio::time::Instant::now(),
            },
            current_size,
            requests: RequestBudget::new(),
            pace: Pace::Go,
        }
    }

    /// Tells the UI to end (its input closed); `farewell` is said after.
    fn end(&mut self, farewell: &'static [u8]) {
        self.farewell = farewell;
        self.input = None;
    }

    /// Reads the channel until the UI ends; how it ended.
    async fn serve(
        &mut self,
        channel: &mut Channel<Msg>,
        session_ui: &mut JoinHandle<Result<(), String>>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Result<(), String>, tokio::task::JoinError> {
        loop {
            if self.pace == Pace::Flood && self.input.is_some() {
                tracing::warn!(user = %self.who.email(), addr = %self.who.addr(), "SSH session flooded with requests: ending it");
                self.end(b"keydeck: too many requests (window changes); the session ended.\r\n");
            }
            let paused = matches!(self.pace, Pace::Wait(_));
            tokio::select! {
                outcome = &mut *session_ui => return outcome,
                message = channel.wait(), if self.open && self.pace == Pace::Go => {
                    self.on_message(message).await;
                }
                () = tokio::time::sleep_until(paused_until(&self.pace, self.deadline)), if paused => {
                    self.pace = Pace::Go;
                }
                () = tokio::time::sleep_until(self.resize.due.unwrap_or(self.deadline)), if self.resize.due.is_some() => {
                    self.on_resize_due().await;
                }
                () = tokio::time::sleep_until(self.deadline), if self.input.is_some() => {
                    tracing::info!(user = %self.who.email(), addr = %self.who.addr(), "SSH session idle: closing it");
                    self.end(b"keydeck: closed after a long time without input.\r\n");
                }
                () = super::stopped(&mut stop), if self.input.is_some() => {
                    self.end(b"keydeck: the server is shutting down.\r\n");
                }
            }
        }
    }

    /// A message from the client: input, a window change, its end.
    async fn on_message(&mut self, message: Option<ChannelMsg>) {
        match message {
            Some(ChannelMsg::Data { data }) => {
                self.deadline = tokio::time::Instant::now() + self.idle;
                if let Some(tx) = &self.input {
                    let _ = tx.send(SessionInput::Data(data.to_vec())).await;
                }
            }
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            }) => {
                self.deadline = tokio::time::Instant::now() + self.idle;
                let wanted = size(col_width, row_height);
                *lock(&self.current_size) = wanted;
                // Coalesced: the UI redraws for the latest size, at most every RESIZE_EVERY.
                self.resize.wanted = wanted;
                self.resize.due.get_or_insert(self.resize.next);
                self.pace = self.requests.take();
            }
            Some(ChannelMsg::Eof) => self.input = None,
            Some(ChannelMsg::Close) | None => {
                self.open = false;
                self.input = None;
            }
            Some(_) => self.pace = self.requests.take(),
        }
    }

    /// The latest size goes to the UI, if it is new.
    async fn on_resize_due(&mut self) {
        self.resize.due = None;
        if self.resize.wanted == self.resize.drawn {
            return;
        }
        if let Some(tx) = &self.input {
            let (w, h) = self.resize.wanted;
            let _ = tx.send(SessionInput::Resize(w, h)).await;
            self.resize.drawn = self.resize.wanted;
            self.resize.next = tokio::time::Instant::now() + RESIZE_EVERY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_clamped_to_a_real_terminals() {
        assert_eq!(size(1000, 1000), MAX_SIZE);
        assert_eq!(size(999, 1000), MAX_SIZE);
        assert_eq!(size(u32::MAX, 0), (MAX_SIZE.0, 1));
        assert_eq!(size(120, 40), (120, 40));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_past_the_budget_wait_their_turn() {
        let mut budget = RequestBudget::new();
        let burst = (0..1000).take_while(|_| budget.take() == Pace::Go).count();
        assert!((99..=100).contains(&burst), "{burst}");
        // Then one every 10 ms.
        let Pace::Wait(next) = budget.take() else {
            panic!("a wait")
        };
        assert!(next > tokio::time::Instant::now());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let steady = (0..1000).take_while(|_| budget.take() == Pace::Go).count();
        assert!((90..110).contains(&steady), "{steady}");
        // A break: the budget is back, and no flood is seen.
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(budget.take(), Pace::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_over_budget_for_seconds_is_a_flood() {
        let mut budget = RequestBudget::new();
        let started = tokio::time::Instant::now();
        loop {
            match budget.take() {
                Pace::Go => {}
                Pace::Wait(at) => tokio::time::sleep_until(at).await,
                Pace::Flood => break,
            }
        }
        let took = started.elapsed();
        assert!(
            took > Duration::from_secs(3) && took < Duration::from_secs(10),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_terminal_resized_by_hand_is_never_a_flood() {
        let mut budget = RequestBudget::new();
        // Dragged for a minute at 60 changes a second, or in bursts of 150.
        for _ in 0..3600 {
            assert_ne!(budget.take(), Pace::Flood);
            tokio::time::sleep(Duration::from_micros(16_667)).await;
        }
        for _ in 0..20 {
            for _ in 0..150 {
                match budget.take() {
                    Pace::Flood => panic!("a flood"),
                    Pace::Wait(at) => tokio::time::sleep_until(at).await,
                    Pace::Go => {}
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
}
