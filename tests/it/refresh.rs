//! A refresh costs what changed: the UI over a byte stream (as over SSH),
//! talking to the real service through a counting proxy, on SQLite and on
//! PostgreSQL. An unchanged refresh is one small request, whatever the
//! number of keys, and writes (almost) nothing to the terminal; a key
//! created, revoked or used elsewhere shows after the next refresh, with the
//! selection kept.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ui::Output;
use common::util::wait_screen;
use common::{Backend, TestServer};
use keydeck::client::Client;
use keydeck::clock::{Clock, ManualClock};
use keydeck::key::Secret;
use keydeck::present::DisplayTz;
use keydeck::tui::term::bytes::{self, SessionInput};
use keydeck::tui::term::{ClipboardMethod, TermOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const TIMEOUT: Duration = Duration::from_secs(20);
/// What an unchanged refresh may write to the terminal.
const UNCHANGED_REFRESH_BYTES: usize = 128;
/// What an unchanged refresh's answer may weigh (headers and body): a
/// handful of keys' worth, where the whole list is hundreds of kilobytes.
const UNCHANGED_ANSWER_BYTES: usize = 1024;

/// What went through the proxy: list requests seen, and the answers' sizes.
#[derive(Default)]
struct Traffic {
    list_requests: usize,
    /// Bytes of each complete answer (head and body), in order.
    answers: Vec<usize>,
}

/// A TCP proxy in front of the service that counts `GET /v1/api-keys`
/// requests and measures each HTTP answer (by its `Content-Length`).
struct CountingProxy {
    base: String,
    traffic: Arc<Mutex<Traffic>>,
}

impl CountingProxy {
    async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let traffic = Arc::new(Mutex::new(Traffic::default()));
        let counts = traffic.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(pipe(client, server, counts.clone()));
            }
        });
        Self { base, traffic }
    }

    fn list_requests(&self) -> usize {
        self.traffic.lock().unwrap().list_requests
    }

    fn answers(&self) -> Vec<usize> {
        self.traffic.lock().unwrap().answers.clone()
    }
}

async fn pipe(client: TcpStream, server: TcpStream, traffic: Arc<Mutex<Traffic>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = traffic.clone();
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = client_read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let seen = String::from_utf8_lossy(&buf[..n])
                .matches("GET /v1/api-keys")
                .count();
            requests.lock().unwrap().list_requests += seen;
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = server_read.read(&mut buf).await {
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(len) = complete_answer(&pending) {
            traffic.lock().unwrap().answers.push(len);
            pending.drain(..len);
        }
        if client_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    up.abort();
}

/// The length of the first whole HTTP answer in `bytes`, once it is all there.
fn complete_answer(bytes: &[u8]) -> Option<usize> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().expect("a Content-Length"))
        .expect("answers carry a Content-Length");
    (bytes.len() >= head_end + length).then_some(head_end + length)
}

/// The UI on a byte stream of 120×40, through the proxy.
struct Session {
    input: mpsc::Sender<SessionInput>,
    output: Output,
    proxy: CountingProxy,
}

impl Session {
    async fn start(server: &TestServer, clock: Arc<ManualClock>) -> Self {
        let proxy = CountingProxy::start(&server.base).await;
        let (input, rx) = mpsc::channel(64);
        let output = Output::default();
        let options = TermOptions {
            color: false,
            clipboard: ClipboardMethod::Osc52,
            size: (120, 40),
        };
        let client = Client::new(&proxy.base, Secret::new(server.admin_token.clone())).unwrap();
        let clock: Arc<dyn Clock> = clock;
        let mut app = keydeck::tui::new_app(
            &options,
            clock,
            DisplayTz::Fixed(chrono::FixedOffset::east_opt(0).unwrap()),
            "bytes://refresh".into(),
        );
        // Refreshes only when the test presses r.
        app.set_refresh_every(chrono::Duration::days(1));
        let out = output.clone();
        tokio::spawn(async move {
            bytes::run(rx, out, options, &mut app, client)
                .await
                .map_err(|e| e.to_string())
        });
        Self {
            input,
            output,
            proxy,
        }
    }

    async fn send(&self, bytes: &[u8]) {
        self.input
            .send(SessionInput::Data(bytes.to_vec()))
            .await
            .expect("the session is running");
    }

    fn written(&self) -> usize {
        self.output.0.lock().unwrap().len()
    }

    fn screen(&self) -> vt100::Screen {
        let mut parser = vt100::Parser::new(40, 120, 0);
        parser.process(&self.output.0.lock().unwrap());
        parser.screen().clone()
    }

    async fn wait_until(&self, what: &str, done: impl Fn(&vt100::Screen) -> bool) {
        let next = async || {
            tokio::time::sleep(Duration::from_millis(20)).await;
            (self.screen(), true)
        };
        wait_screen(what, next, done).await;
    }

    /// Presses `r` and waits until its answer has come and the UI had time
    /// to draw what it would (its output quiet for a moment); returns the
    /// list requests it made, the answers' sizes and the bytes written.
    async fn refresh(&self) -> (usize, Vec<usize>, usize) {
        let (requests, answers, written) = (
            self.proxy.list_requests(),
            self.proxy.answers().len(),
            self.written(),
        );
        self.send(b"r").await;
        let start = Instant::now();
        while self.proxy.answers().len() == answers {
            assert!(start.elapsed() < TIMEOUT, "the refresh was answered");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.quiet().await;
        (
            self.proxy.list_requests() - requests,
            self.proxy.answers()[answers..].to_vec(),
            self.written() - written,
        )
    }

    /// Waits until nothing has been written for 300 ms.
    async fn quiet(&self) {
        let mut last = self.written();
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = self.written();
            if now == last {
                return;
            }
            last = now;
        }
    }
}

/// The text of the screen row that starts with `name`.
fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| common::ui::past_gutter(l).starts_with(name))
}

fn selected_row(screen: &vt100::Screen) -> String {
    (0..40u16)
        .find(|&y| screen.cell(y, 0).is_some_and(|c| c.inverse()))
        .map(|y| {
            let row = screen.rows(0, 120).nth(usize::from(y)).unwrap();
            common::ui::past_gutter(&row).to_owned()
        })
        .expect("a selected row")
}

async fn unchanged_refresh_is_one_small_request_and_changes_show(backend: Backend) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let server = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let store = server.running.state.store.clone();
    keydeck::accounts::seed(store.as_ref(), "default", 600, clock.as_ref())
        .await
        .unwrap();
    let session = Session::start(&server, clock.clone()).await;
    session
        .wait_until("the first load", |s| s.contents().contains("600 keys"))
        .await;
    session.quiet().await;

    // Unchanged: one request, a small answer, next to nothing drawn.
    let (requests, answers, written) = session.refresh().await;
    assert_eq!(
        (requests, answers.len()),
        (1, 1),
        "one request: {answers:?}"
    );
    assert!(answers[0] <= UNCHANGED_ANSWER_BYTES, "{answers:?}");
    assert!(written <= UNCHANGED_REFRESH_BYTES, "{written} bytes");
    let small = answers[0];

    // Three times the keys: the unchanged refresh's answer is no bigger.
    keydeck::accounts::seed(store.as_ref(), "default", 1200, clock.as_ref())
        .await
        .unwrap();
    let (requests, answers, written) = session.refresh().await;
    assert!(requests >= 3, "the 1200 new keys, in pages of 500");
    assert!(answers.iter().sum::<usize>() > 100 * small, "{answers:?}");
    assert!(written > UNCHANGED_REFRESH_BYTES);
    session
        .wait_until("1800 keys", |s| s.contents().contains("1800 keys"))
        .await;
    let (requests, answers, written) = session.refresh().await;
    assert_eq!(
        (requests, answers.len()),
        (1, 1),
        "one request: {answers:?}"
    );
    // The same answer but for the cursor's digits.
    assert!(answers[0] <= small + 4, "{answers:?} vs {small}");
    assert!(written <= UNCHANGED_REFRESH_BYTES, "{written} bytes");

    // Select the third row; a key created elsewhere shows after r, the
    // selection stays on the same key.
    session.send(b"jj").await;
    session
        .wait_until("the third row selected", |s| {
            (0..40u16).any(|y| y > 4 && s.cell(y, 0).is_some_and(|c| c.inverse()))
        })
        .await;
    session.quiet().await;
    let chosen = selected_row(&session.screen());
    let chosen_name = chosen.split("  ").next().unwrap().to_owned();
    let (fresh, secret) = server
        .create_key("Made elsewhere", &["sessions:read"])
        .await;
    session.refresh().await;
    session
        .wait_until("the new key", |s| s.contents().contains("Made elsewhere"))
        .await;
    let screen = session.screen();
    assert!(
        screen.contents().contains("1801 keys"),
        "{}",
        screen.contents()
    );
    assert!(
        selected_row(&screen).starts_with(&chosen_name),
        "{chosen_name:?} still selected:\n{}",
        screen.contents()
    );

    // Used elsewhere: its Last Used changes from Never once the use is
    // written (about a second), after a refresh.
    let row_now = |s: &vt100::Screen| row(&s.contents(), "Made elsewhere").map(str::to_owned);
    let before = row_now(&session.screen()).expect("the row");
    assert_eq!(before.matches("Never").count(), 2, "{before}");
    assert_eq!(
        server.auth(&secret, Some("sessions:read")).await.status(),
        200
    );
    let start = Instant::now();
    loop {
        session.refresh().await;
        let now = row_now(&session.screen()).expect("the row");
        if now.matches("Never").count() == 1 {
            assert!(now.contains("just now"), "{now}");
            break;
        }
        assert!(start.elapsed() < TIMEOUT, "the use shows: {now}");
    }

    // Revoked elsewhere: Revoked after a refresh.
    let id = fresh["id"].as_str().unwrap();
    assert_eq!(server.revoke(id).await.status(), 200);
    session.refresh().await;
    session
        .wait_until("the key revoked", |s| {
            row(&s.contents(), "Made elsewhere").is_some_and(|r| r.contains("Revoked"))
        })
        .await;

    // And then nothing changed again.
    let (requests, answers, written) = session.refresh().await;
    assert_eq!((requests, answers.len()), (1, 1));
    assert!(answers[0] <= UNCHANGED_ANSWER_BYTES, "{answers:?}");
    assert!(written <= UNCHANGED_REFRESH_BYTES, "{written} bytes");
    drop(session);
    server.stop().await;
    backend.cleanup().await;
}

/// `changed_since` takes only cursors the service issued.
async fn changed_since_rejects_what_it_did_not_issue(backend: Backend) {
    let server = TestServer::start(&backend).await;
    let list = server
        .get_json("/v1/api-keys?limit=1", &server.admin_token)
        .await;
    let cursor = list["sync_cursor"]
        .as_str()
        .expect("a sync_cursor")
        .to_owned();
    let (key, _) = server
        .create_key("After the cursor", &["sessions:read"])
        .await;
    let changed = server
        .get_json(
            &format!("/v1/api-keys?changed_since={cursor}"),
            &server.admin_token,
        )
        .await;
    let ids: Vec<&str> = changed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&key["id"].as_str().unwrap()), "{changed}");
    for bad in ["", "12", "c", "c-1", "cx", "c99999999999999999999"] {
        let r = server
            .get(
                &format!("/v1/api-keys?changed_since={bad}"),
                &server.admin_token,
            )
            .send()
            .await
            .unwrap();
        let (status, code, body) = common::error_code(r).await;
        assert_eq!((status.as_u16(), code.as_str()), (400, "invalid_request"));
        assert!(
            body["error"]["fields"]["changed_since"].is_string(),
            "{body}"
        );
    }
    server.stop().await;
    backend.cleanup().await;
}

on_both_backends!(
    unchanged_refresh_is_one_small_request_and_changes_show,
    changed_since_rejects_what_it_did_not_issue,
);
