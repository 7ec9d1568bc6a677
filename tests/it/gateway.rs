//! End to end: the shipped nginx example (`assets/deploy/nginx-auth-request.conf`)
//! puts a real `keydeck serve` in front of an application, unchanged but for
//! its addresses and ports.
//!
//! The test runs three processes on loopback: `keydeck serve --trusted-proxy
//! 127.0.0.1`, a small echo application (in this test), and nginx with a copy
//! of the example. Every request goes through nginx, as a client's would.
//! Without nginx at build time (see `build.rs`) the test is reported as
//! ignored, with the reason; `.ci/run` sets `KEYDECK_REQUIRE_NGINX`, and then a
//! missing nginx fails it.

use crate::common;

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::bin::keydeck;
use common::process::{start_http, Reaped};
use common::util::free_port;
use serde_json::{json, Value};
use tempfile::TempDir;

/// The example, as shipped.
const EXAMPLE: &str = include_str!("../../assets/deploy/nginx-auth-request.conf");

/// keydeck's default `--max-failed-auth`.
const MAX_FAILED_AUTH: usize = 20;

/// A marker in the URI of every request that nginx must refuse: the
/// application fails the test if one of them reaches it.
const MUST_NOT_REACH: &str = "must-not-reach-the-app";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(keydeck_nginx),
    ignore = "needs nginx with http_auth_request_module (apt-get install nginx-light)"
)]
async fn nginx_example_puts_keydeck_in_front_of_the_app() {
    let nginx_bin = find_nginx().expect(
        "this test needs nginx with http_auth_request_module (apt-get install nginx-light)",
    );

    let app = App::start().await;
    let mut keydeck = Keydeck::spawn().await;
    let nginx = Nginx::start(&nginx_bin, keydeck.addr, app.addr).await;
    let _logs = LogsOnFailure(vec![
        keydeck.log.clone(),
        nginx.prefix.path().join("error.log"),
        nginx.prefix.path().join("access.log"),
    ]);

    // Keys are made through keydeck's own API, as an operator would.
    let admin = keydeck.admin_token();
    let reader = keydeck
        .create_key(&admin, "reader", &["resources:read"])
        .await;
    let sessions = keydeck
        .create_key(&admin, "sessions", &["sessions:read", "sessions:write"])
        .await;
    let doomed = keydeck
        .create_key(&admin, "doomed", &["resources:read"])
        .await;

    let client = client_from(Ipv4Addr::LOCALHOST);

    // --- a public location: no key needed, and no identity to fake ---------
    let r = client
        .get(nginx.url("/healthz"))
        .header("x-key-id", "forged-id")
        .header("x-key-scopes", "full_access")
        .send()
        .await
        .unwrap();
    let seen = app_saw(r, StatusCode::OK).await;
    assert_eq!(seen["x_key_id"], json!([]), "{seen}");
    assert_eq!(seen["x_key_scopes"], json!([]), "{seen}");

    // --- no key: 401 with keydeck's WWW-Authenticate -------------------------
    let r = client
        .get(nginx.url(&format!("/api/things?{MUST_NOT_REACH}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        www_authenticate(&r).starts_with("Bearer"),
        "{:?}",
        r.headers()
    );

    // --- an unknown key: 401 invalid_token -----------------------------------
    let r = client
        .get(nginx.url(&format!("/api/things?{MUST_NOT_REACH}")))
        .bearer_auth("eg_live_notarealkeynotarealkeynotarealkey")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        www_authenticate(&r).contains(r#"error="invalid_token""#),
        "{:?}",
        r.headers()
    );

    // --- a good key, in Authorization: Bearer --------------------------------
    // The client's own X-Key-Id / X-Key-Scopes never reach the application.
    let r = client
        .get(nginx.url("/api/things?page=2"))
        .bearer_auth(&reader.secret)
        .header("x-key-id", "forged-id")
        .header("x-key-scopes", "full_access")
        .send()
        .await
        .unwrap();
    let seen = app_saw(r, StatusCode::OK).await;
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["uri"], "/api/things?page=2");
    assert_eq!(seen["x_key_id"], json!([reader.id]), "{seen}");
    assert_eq!(seen["x_key_scopes"], json!(["resources:read"]), "{seen}");
    assert_eq!(seen["x_real_ip"], json!(["127.0.0.1"]), "{seen}");

    // --- the same key in X-API-Key, on the catch-all location ----------------
    let r = client
        .get(nginx.url("/dashboard"))
        .header("x-api-key", &reader.secret)
        .header("x-key-id", "forged-id")
        .send()
        .await
        .unwrap();
    let seen = app_saw(r, StatusCode::OK).await;
    assert_eq!(seen["uri"], "/dashboard");
    assert_eq!(seen["x_key_id"], json!([reader.id]), "{seen}");
    assert_eq!(seen["x_key_scopes"], json!(["resources:read"]), "{seen}");

    // --- keys lacking the location's scope: 403 insufficient_scope -----------
    // POST /api/ needs full_access (the method map).
    let r = client
        .post(nginx.url(&format!("/api/things?{MUST_NOT_REACH}")))
        .header("x-api-key", &reader.secret)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_insufficient_scope(r, "full_access").await;
    // /api/sessions needs sessions:write.
    let r = client
        .get(nginx.url(&format!("/api/sessions?{MUST_NOT_REACH}")))
        .bearer_auth(&reader.secret)
        .send()
        .await
        .unwrap();
    assert_insufficient_scope(r, "sessions:write").await;
    // / needs resources:read, which a sessions-only key lacks ...
    let r = client
        .get(nginx.url(&format!("/dashboard?{MUST_NOT_REACH}")))
        .bearer_auth(&sessions.secret)
        .send()
        .await
        .unwrap();
    assert_insufficient_scope(r, "resources:read").await;
    // ... while it may write sessions, with all its scopes passed on.
    let r = client
        .post(nginx.url("/api/sessions/42"))
        .header("x-api-key", &sessions.secret)
        .body("{}")
        .send()
        .await
        .unwrap();
    let seen = app_saw(r, StatusCode::OK).await;
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["x_key_id"], json!([sessions.id]), "{seen}");
    assert_eq!(
        scope_set(&seen["x_key_scopes"]),
        vec!["sessions:read", "sessions:write"],
        "{seen}"
    );

    // --- the application's own 403 reaches the client unchanged --------------
    let r = client
        .get(nginx.url("/app-forbidden"))
        .bearer_auth(&reader.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("www-authenticate").is_none());
    assert_eq!(r.text().await.unwrap(), APP_FORBIDDEN_BODY);

    // --- a revoked key: 401 from the next request on -------------------------
    let r = client
        .get(nginx.url("/api/things"))
        .bearer_auth(&doomed.secret)
        .send()
        .await
        .unwrap();
    app_saw(r, StatusCode::OK).await;
    keydeck.revoke(&admin, &doomed.id).await;
    let r = client
        .get(nginx.url(&format!("/api/things?{MUST_NOT_REACH}")))
        .bearer_auth(&doomed.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        www_authenticate(&r).contains(r#"error="invalid_token""#),
        "{:?}",
        r.headers()
    );

    // --- the failed-attempt limit sees each client's own address -------------
    // The attacker (127.0.0.2) also sends forged X-Real-IP / X-Forwarded-For
    // headers, which nginx must replace with the real address.
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 2));
    for i in 0..MAX_FAILED_AUTH {
        let r = attacker
            .get(nginx.url(&format!("/api/things?{MUST_NOT_REACH}")))
            .bearer_auth(format!("eg_live_guess{i:03}"))
            .header("x-real-ip", format!("10.9.8.{i}"))
            .header("x-forwarded-for", format!("10.9.8.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "bad key #{}", i + 1);
    }
    let r = attacker
        .get(nginx.url(&format!("/api/things?{MUST_NOT_REACH}")))
        .bearer_auth("eg_live_oneguesstoomany")
        .header("x-real-ip", "10.9.8.254")
        .header("x-forwarded-for", "10.9.8.254")
        .send()
        .await
        .unwrap();
    assert_too_many(r).await;
    // Blocked is blocked: even a good key from that address waits.
    let r = attacker
        .get(nginx.url(&format!("/api/things?{MUST_NOT_REACH}")))
        .bearer_auth(&reader.secret)
        .send()
        .await
        .unwrap();
    assert_too_many(r).await;
    // Another client is not locked out by the attacker.
    let bystander = client_from(Ipv4Addr::new(127, 0, 0, 3));
    let r = bystander
        .get(nginx.url("/api/things"))
        .bearer_auth(&reader.secret)
        .send()
        .await
        .unwrap();
    let seen = app_saw(r, StatusCode::OK).await;
    assert_eq!(seen["x_key_id"], json!([reader.id]), "{seen}");
    assert_eq!(seen["x_real_ip"], json!(["127.0.0.3"]), "{seen}");

    // --- keydeck down: fail closed with 503 ----------------------------------
    keydeck.kill();
    let r = client
        .get(nginx.url(&format!("/api/things?{MUST_NOT_REACH}")))
        .bearer_auth(&reader.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "auth_unavailable"})
    );

    // Nothing nginx refused ever reached the application: it saw exactly the
    // six requests let through above (and the public /healthz).
    let reached: Vec<String> = app
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|uri| *uri != "/healthz")
        .cloned()
        .collect();
    assert_eq!(
        reached,
        [
            "/api/things?page=2",
            "/dashboard",
            "/api/sessions/42",
            "/app-forbidden",
            "/api/things",
            "/api/things",
        ],
        "refused requests must not reach the app"
    );
}

// --- assertions -------------------------------------------------------------

/// The request went through to the application: what it saw.
async fn app_saw(r: reqwest::Response, status: StatusCode) -> Value {
    let got = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    let seen: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not an answer from the app ({e}): {text}"));
    assert_eq!(seen["app"], "echo", "{seen}");
    seen
}

async fn assert_insufficient_scope(r: reqwest::Response, scope: &str) {
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let challenge = www_authenticate(&r);
    assert!(
        challenge.contains(r#"error="insufficient_scope""#)
            && challenge.contains(&format!(r#"scope="{scope}""#)),
        "{challenge:?}"
    );
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "insufficient_scope"})
    );
}

async fn assert_too_many(r: reqwest::Response) {
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = r
        .headers()
        .get("retry-after")
        .expect("Retry-After on a 429")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "too_many_requests"})
    );
}

fn www_authenticate(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The scopes of an `X-Key-Scopes` header as the app saw it (one header), sorted.
fn scope_set(headers: &Value) -> Vec<String> {
    let values = headers.as_array().expect("header values");
    assert_eq!(values.len(), 1, "one X-Key-Scopes header: {headers}");
    let mut scopes: Vec<String> = values[0]
        .as_str()
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect();
    scopes.sort();
    scopes
}

/// An HTTP client whose connections come from `local` (any 127.0.0.0/8
/// address is this machine on Linux), and never through a proxy.
fn client_from(local: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(Some(IpAddr::V4(local)))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Prints the processes' logs if the test fails.
struct LogsOnFailure(Vec<PathBuf>);

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for path in &self.0 {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                eprintln!("\n--- {} ---\n{text}", path.display());
            }
        }
    }
}

// --- the protected application ---------------------------------------------

const APP_FORBIDDEN_BODY: &str = "forbidden by the app itself\n";

/// Echoes, as JSON, what it received; `/app-forbidden` answers its own 403.
struct App {
    addr: SocketAddr,
    /// The URI of every request that reached it.
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl App {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let router = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap| async move {
                log.lock().unwrap().push(uri.to_string());
                echo(method, uri, headers)
            },
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            addr,
            requests,
            task,
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn echo(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if uri.path() == "/app-forbidden" {
        return (StatusCode::FORBIDDEN, APP_FORBIDDEN_BODY).into_response();
    }
    let all = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    axum::Json(json!({
        "app": "echo",
        "method": method.as_str(),
        "uri": uri.to_string(),
        "x_key_id": all("x-key-id"),
        "x_key_scopes": all("x-key-scopes"),
        "x_real_ip": all("x-real-ip"),
    }))
    .into_response()
}

// --- keydeck ----------------------------------------------------------------

struct Created {
    id: String,
    secret: String,
}

/// `keydeck serve --listen 127.0.0.1:0 --trusted-proxy 127.0.0.1`, as the
/// example tells operators to run it.
struct Keydeck {
    // First: killed before its data dir goes.
    child: Reaped,
    addr: SocketAddr,
    data_dir: TempDir,
    log: PathBuf,
    http: reqwest::Client,
}

impl Keydeck {
    async fn spawn() -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let log = data_dir.path().join("keydeck.log");
        let mut cmd = keydeck();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .args(["--trusted-proxy", "127.0.0.1"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"));
        let (child, base) = start_http(&mut cmd, &log);
        let addr = base.strip_prefix("http://").expect("plain HTTP");
        Self {
            child,
            addr: addr
                .parse()
                .unwrap_or_else(|e| panic!("address {addr:?} ({e})")),
            data_dir,
            log,
            http: client_from(Ipv4Addr::LOCALHOST),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn admin_token(&self) -> String {
        common::util::admin_token(self.data_dir.path())
    }

    async fn create_key(&self, admin: &str, name: &str, scopes: &[&str]) -> Created {
        let r = self
            .http
            .post(self.url("/v1/api-keys"))
            .bearer_auth(admin)
            .json(&json!({ "name": name, "scopes": scopes }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        Created {
            id: body["api_key"]["id"].as_str().unwrap().to_owned(),
            secret: body["secret"].as_str().unwrap().to_owned(),
        }
    }

    async fn revoke(&self, admin: &str, id: &str) {
        let r = self
            .http
            .delete(self.url(&format!("/v1/api-keys/{id}")))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}

impl Keydeck {
    /// SIGKILL, keeping the data dir (and the log) until the end of the test.
    fn kill(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }
}

// --- nginx ------------------------------------------------------------------

/// The nginx binary, if installed with the auth_request module.
fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("nginx"));
    for bin in candidates {
        if !bin.is_file() {
            continue;
        }
        let out = Command::new(&bin).arg("-V").output().ok()?;
        let build = String::from_utf8_lossy(&out.stderr);
        if build.contains("http_auth_request_module") {
            return Some(bin);
        }
        eprintln!("{} lacks http_auth_request_module:\n{build}", bin.display());
        return None;
    }
    None
}

/// nginx (master and one worker, in the foreground) serving a copy of the
/// example on a free port of 127.0.0.1; everything it writes is in `prefix`.
struct Nginx {
    child: Child,
    port: u16,
    prefix: TempDir,
}

impl Nginx {
    async fn start(bin: &Path, keydeck: SocketAddr, app: SocketAddr) -> Self {
        // The port is picked by binding and closing it: another process could
        // take it before nginx does, so a lost race is retried.
        for attempt in 1.. {
            let port = free_port();
            let prefix = tempfile::tempdir().expect("temp dir");
            // Readable by nginx's worker user when the test runs as root.
            std::fs::set_permissions(
                prefix.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            let p = prefix.path().display().to_string();
            std::fs::write(
                prefix.path().join("keydeck-app.conf"),
                example_for(keydeck, app, port),
            )
            .unwrap();
            let conf = prefix.path().join("nginx.conf");
            std::fs::write(&conf, main_conf(&p)).unwrap();

            let command = |extra: &[&str]| {
                let mut cmd = Command::new(bin);
                cmd.arg("-p")
                    .arg(format!("{p}/"))
                    .arg("-c")
                    .arg(&conf)
                    .arg("-e")
                    .arg(format!("{p}/error.log"))
                    .args(extra)
                    .stdin(Stdio::null());
                cmd
            };
            let test = command(&["-t", "-q"]).output().expect("run nginx -t");
            assert!(
                test.status.success(),
                "nginx -t refuses the example:\n{}{}",
                String::from_utf8_lossy(&test.stdout),
                String::from_utf8_lossy(&test.stderr)
            );
            let child = command(&[])
                .stdout(Stdio::null())
                .stderr(File::create(prefix.path().join("stderr.log")).unwrap())
                .spawn()
                .expect("spawn nginx");
            let mut nginx = Self {
                child,
                port,
                prefix,
            };
            match nginx.wait_ready().await {
                Ok(()) => return nginx,
                Err(log) if log.contains("Address already in use") && attempt < 5 => {
                    eprintln!("nginx: port {port} was taken; trying another");
                }
                Err(log) => panic!("nginx did not start:\n{log}"),
            }
        }
        unreachable!()
    }

    /// Until nginx answers on its port (the public /healthz, served by the app).
    async fn wait_ready(&mut self) -> Result<(), String> {
        let http = client_from(Ipv4Addr::LOCALHOST);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = |name| std::fs::read_to_string(self.prefix.path().join(name));
                return Err(format!(
                    "exited with {status}\n{}{}",
                    log("error.log").unwrap_or_default(),
                    log("stderr.log").unwrap_or_default()
                ));
            }
            if let Ok(r) = http.get(self.url("/healthz")).send().await {
                if r.status() == StatusCode::OK {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.prefix.path().join("error.log"));
                panic!(
                    "nginx did not answer within 30 s:\n{}",
                    log.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    /// SIGTERM first: a SIGKILLed master would leave its worker running.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example with only its addresses and ports replaced: keydeck's and the
/// app's, and the listening port (on 127.0.0.1 only, so its IPv6 listener
/// goes). Each replaced text must occur exactly once.
fn example_for(keydeck: SocketAddr, app: SocketAddr, port: u16) -> String {
    let mut conf = EXAMPLE.to_owned();
    for (from, to) in [
        ("server 127.0.0.1:8080;", format!("server {keydeck};")),
        ("server 127.0.0.1:3000;", format!("server {app};")),
        ("listen 80;", format!("listen 127.0.0.1:{port};")),
        (
            "listen [::]:80;",
            "# (IPv6 listener left out by tests/gateway.rs)".to_owned(),
        ),
    ] {
        assert_eq!(
            conf.matches(from).count(),
            1,
            "the example should have {from:?} exactly once"
        );
        conf = conf.replace(from, &to);
    }
    conf
}

/// What a distribution's nginx.conf provides around conf.d/*.conf, with
/// every file nginx writes kept under `prefix`.
fn main_conf(prefix: &str) -> String {
    format!(
        "daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body_temp;
    proxy_temp_path {prefix}/proxy_temp;
    fastcgi_temp_path {prefix}/fastcgi_temp;
    uwsgi_temp_path {prefix}/uwsgi_temp;
    scgi_temp_path {prefix}/scgi_temp;
    include {prefix}/keydeck-app.conf;
}}
"
    )
}

/// A client cannot pick the scope a location requires: the example replaces
/// any `X-Required-Scope` the client sends, and the auth subrequest carries
/// no query string, so the client's own `?scope=` never reaches keydeck.
/// (Were either to get through alongside the gateway's scope, keydeck would
/// refuse the ambiguity with 400, which nginx turns into 503: never 200.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(keydeck_nginx),
    ignore = "needs nginx with http_auth_request_module (apt-get install nginx-light)"
)]
async fn a_client_cannot_choose_the_scope_nginx_requires() {
    let nginx_bin = find_nginx().expect(
        "this test needs nginx with http_auth_request_module (apt-get install nginx-light)",
    );
    let app = App::start().await;
    let keydeck = Keydeck::spawn().await;
    let nginx = Nginx::start(&nginx_bin, keydeck.addr, app.addr).await;
    let _logs = LogsOnFailure(vec![
        keydeck.log.clone(),
        nginx.prefix.path().join("error.log"),
    ]);
    let admin = keydeck.admin_token();
    let reader = keydeck
        .create_key(&admin, "reader", &["resources:read"])
        .await;
    let client = client_from(Ipv4Addr::LOCALHOST);

    // /api/sessions needs sessions:write, whatever the client asks for.
    let attempts: [(&str, &[&str]); 6] = [
        ("", &["resources:read"]),
        ("", &["resources:read", "resources:read"]),
        ("", &["resources:read", "sessions:write"]),
        ("", &[""]),
        ("&scope=resources:read", &[]),
        ("&scope=resources:read", &["resources:read"]),
    ];
    for (query, scopes) in attempts {
        let mut req = client
            .get(nginx.url(&format!("/api/sessions/1?{MUST_NOT_REACH}{query}")))
            .bearer_auth(&reader.secret);
        for scope in scopes {
            req = req.header("x-required-scope", *scope);
        }
        let r = req.send().await.unwrap();
        assert_insufficient_scope(r, "sessions:write").await;
    }
    // Nor can it make a location stricter or looser: its header is simply replaced.
    let r = client
        .get(nginx.url("/dashboard?scope=sessions:write"))
        .bearer_auth(&reader.secret)
        .header("x-required-scope", "sessions:write")
        .send()
        .await
        .unwrap();
    let seen = app_saw(r, StatusCode::OK).await;
    assert_eq!(seen["x_key_id"], json!([reader.id]), "{seen}");
    let reached: Vec<String> = app
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|uri| *uri != "/healthz")
        .cloned()
        .collect();
    assert_eq!(
        reached,
        ["/dashboard?scope=sessions:write"],
        "refused requests must not reach the app"
    );
}

/// Good checks sent one after another through the example's nginx.
const SEQUENTIAL_CHECKS: usize = 60;
/// Then this many clients at once, each sending [`CHECKS_PER_CLIENT`].
const PARALLEL_CLIENTS: usize = 4;
const CHECKS_PER_CLIENT: usize = 20;

/// nginx keeps its connection to keydeck from one check to the next: keydeck
/// answers a good key with an empty body, which `auth_request` (that never
/// reads a subrequest's body) can leave the connection open after. With a
/// body (as `/v1/auth` had before), nginx closed it and opened a new one for
/// every check. keydeck runs in this process here, so that its count of
/// accepted connections can be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(keydeck_nginx),
    ignore = "needs nginx with http_auth_request_module (apt-get install nginx-light)"
)]
async fn nginx_keeps_its_connection_to_keydeck_across_checks() {
    let nginx_bin = find_nginx().expect(
        "this test needs nginx with http_auth_request_module (apt-get install nginx-light)",
    );
    let app = App::start().await;
    let backend = common::Backend::sqlite();
    let s = common::TestServer::start(&backend).await;
    let nginx = Nginx::start(&nginx_bin, s.running.addr, app.addr).await;
    let _logs = LogsOnFailure(vec![nginx.prefix.path().join("error.log")]);
    let (key, secret) = s.create_key("gateway", &["resources:read"]).await;
    let client = client_from(Ipv4Addr::LOCALHOST);

    // One after another: one connection serves them all. (nginx may open a
    // second one if keydeck's idle timer closed the first in between: not
    // within this test's few seconds.) Every other client asks for JSON: the
    // example does not pass the client's Accept on, so keydeck's answer to
    // nginx stays empty.
    let before = s.running.accepted_connections();
    for i in 0..SEQUENTIAL_CHECKS {
        let accept = if i % 2 == 0 {
            "application/json"
        } else {
            "*/*"
        };
        let r = client
            .get(nginx.url(&format!("/api/things?n={i}")))
            .bearer_auth(&secret)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        let seen = app_saw(r, StatusCode::OK).await;
        assert_eq!(seen["x_key_id"], json!([key["id"]]), "{seen}");
    }
    let opened = s.running.accepted_connections() - before;
    assert!(
        opened <= 2,
        "nginx opened {opened} connections to keydeck for {SEQUENTIAL_CHECKS} checks in a row \
         (one per check means the upstream connection is not kept alive)"
    );

    // Several clients at once: at most one connection each (nginx's one
    // worker keeps up to 64 idle), whatever the number of checks.
    let before = s.running.accepted_connections();
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..PARALLEL_CLIENTS {
        let (client, url, secret) = (
            client_from(Ipv4Addr::LOCALHOST),
            nginx.url(&format!("/api/things?client={c}")),
            secret.clone(),
        );
        clients.spawn(async move {
            for _ in 0..CHECKS_PER_CLIENT {
                let r = client.get(&url).bearer_auth(&secret).send().await.unwrap();
                app_saw(r, StatusCode::OK).await;
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    let opened = s.running.accepted_connections() - before;
    assert!(
        opened <= PARALLEL_CLIENTS as u64 + 2,
        "nginx opened {opened} connections to keydeck for {} checks from {PARALLEL_CLIENTS} clients",
        PARALLEL_CLIENTS * CHECKS_PER_CLIENT
    );
    let reached = app
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|uri| *uri != "/healthz")
        .count();
    assert_eq!(
        reached,
        SEQUENTIAL_CHECKS + PARALLEL_CLIENTS * CHECKS_PER_CLIENT,
        "every check reached the app"
    );
    drop(nginx);
    s.stop().await;
}

/// A good key is answered with its headers and an empty body, unless the
/// caller asks for JSON: `Content-Length: 0`, so that a gateway that never
/// reads the body (nginx) can keep the connection.
#[tokio::test]
async fn a_good_key_is_answered_with_an_empty_body_unless_json_is_asked_for() {
    let backend = common::Backend::sqlite();
    let s = common::TestServer::start(&backend).await;
    let (key, secret) = s
        .create_key("gateway", &["resources:read", "sessions:read"])
        .await;
    let check = |accept: Option<&'static str>| {
        let mut req = s
            .http
            .get(s.url("/v1/auth?scope=sessions:read"))
            .bearer_auth(&secret);
        if let Some(accept) = accept {
            req = req.header("accept", accept);
        }
        req.send()
    };
    let scopes: Vec<&str> = key["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(scopes.len(), 2, "{key}");
    let mut orgs = std::collections::BTreeSet::new();
    for accept in [None, Some("*/*"), Some("text/html, */*;q=0.8")] {
        let r = check(accept).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{accept:?}");
        assert_eq!(r.headers()["content-length"], "0", "{accept:?}");
        assert!(r.headers().get("content-type").is_none(), "{accept:?}");
        assert_eq!(r.headers()["x-key-id"], key["id"].as_str().unwrap());
        assert_eq!(r.headers()["x-key-scopes"], scopes.join(" "));
        orgs.insert(r.headers()["x-org-id"].to_str().unwrap().to_owned());
        assert_eq!(r.text().await.unwrap(), "", "{accept:?}");
    }
    let org = orgs.pop_first().unwrap();
    assert!(orgs.is_empty() && !org.is_empty(), "{org:?} {orgs:?}");
    for accept in ["application/json", "text/html, application/json;q=0.9"] {
        let r = check(Some(accept)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{accept}");
        assert_eq!(r.headers()["x-key-id"], key["id"].as_str().unwrap());
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({
                "key_id": key["id"],
                "org_id": org,
                "scopes": scopes,
            }),
            "{accept}"
        );
    }
    // Refusals keep their JSON error body, whatever the Accept: Traefik and
    // Caddy show it to the client.
    let r = s
        .http
        .get(s.url("/v1/auth?scope=audit_logs:read"))
        .bearer_auth(&secret)
        .header("accept", "*/*")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "insufficient_scope"
    );
    s.stop().await;
}

/// Key usage behind the example's nginx (issue 22, acceptance 1): checks
/// through the gateway are counted by outcome, exactly, and the address
/// recorded is the gateway's client (the example passes its `$remote_addr`
/// as `X-Forwarded-For`, whatever the client sent) when keydeck trusts
/// nginx as a proxy; without `--trusted-proxy` it is nginx itself, the peer.
async fn usage_through_nginx_is_the_gateways_clients(backend: common::Backend) {
    use crate::usage::wait_for;

    let nginx_bin = find_nginx().expect(
        "this test needs nginx with http_auth_request_module (apt-get install nginx-light)",
    );
    let app = App::start().await;
    let client_ip = Ipv4Addr::new(127, 0, 0, 5);
    let client = client_from(client_ip);
    for trusted in [true, false] {
        let s =
            common::TestServer::start_with(&backend, Arc::new(keydeck::clock::SystemClock), |c| {
                c.trusted_proxies = if trusted {
                    vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
                } else {
                    Vec::new()
                };
            })
            .await;
        let nginx = Nginx::start(&nginx_bin, s.running.addr, app.addr).await;
        let _logs = LogsOnFailure(vec![nginx.prefix.path().join("error.log")]);
        let name = format!("gateway trusted={trusted}");
        let (key, secret) = s.create_key(&name, &["resources:read"]).await;
        let (gone, gone_secret) = s.create_key("gone", &["resources:read"]).await;
        let id = key["id"].as_str().unwrap().to_owned();
        let gone_id = gone["id"].as_str().unwrap();
        assert_eq!(s.revoke(gone_id).await.status(), 200);
        let (n, m, k) = (6, 4, 3);
        let through = |path: &str, secret: &str| {
            client
                .get(nginx.url(path))
                .bearer_auth(secret)
                // Forged: the example replaces it with the address it sees.
                .header("x-forwarded-for", "10.6.6.6")
                .send()
        };
        for i in 0..n {
            let r = through(&format!("/api/things?n={i}"), &secret)
                .await
                .unwrap();
            app_saw(r, StatusCode::OK).await;
        }
        for _ in 0..m {
            let r = through(&format!("/api/sessions/1?{MUST_NOT_REACH}"), &secret)
                .await
                .unwrap();
            assert_insufficient_scope(r, "sessions:write").await;
        }
        for _ in 0..k {
            let r = through(&format!("/api/things?{MUST_NOT_REACH}"), &gone_secret)
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        let total = |b: &Value, outcome: &str| b["totals"][outcome].as_u64().unwrap_or(0);
        let path = format!("/v1/api-keys/{id}/usage?window=1h");
        let started = Instant::now();
        let body = wait_for(&s, &path, &s.admin_token, Duration::from_secs(2), |b| {
            total(b, "valid") == n && total(b, "insufficient_scope") == m
        })
        .await;
        assert!(started.elapsed() <= Duration::from_secs(2), "{body}");
        assert_eq!(total(&body, "valid"), n, "{body}");
        assert_eq!(total(&body, "insufficient_scope"), m, "{body}");
        assert_eq!(total(&body, "revoked"), 0, "{body}");
        let gone_usage = s
            .get_json(
                &format!("/v1/api-keys/{gone_id}/usage?window=1h"),
                &s.admin_token,
            )
            .await;
        assert_eq!(total(&gone_usage, "revoked"), k, "{gone_usage}");
        let expected = if trusted { "127.0.0.5" } else { "127.0.0.1" };
        for usage in [&body, &gone_usage] {
            let addresses: Vec<&str> = usage["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["address"].as_str().unwrap())
                .collect();
            assert_eq!(addresses, [expected], "trusted={trusted}: {usage}");
        }
        assert_eq!(body["addresses"][0]["uses"], n + m, "{body}");
        // The CLI reads the same numbers.
        let cli = common::cli::User::new()
            .env("KEYDECK_URL", &s.base)
            .env("KEYDECK_TOKEN", &s.admin_token);
        let out = tokio::task::spawn_blocking(move || {
            cli.run(&["keys", "usage", &id, "--window", "1h", "--json"])
                .ok()
                .json()
        })
        .await
        .unwrap();
        assert_eq!(out["totals"]["valid"], n, "{out}");
        assert_eq!(out["totals"]["insufficient_scope"], m, "{out}");
        assert_eq!(out["addresses"][0]["address"], expected, "{out}");
        drop(nginx);
        s.stop().await;
    }
    assert!(
        app.requests
            .lock()
            .unwrap()
            .iter()
            .all(|uri| !uri.contains(MUST_NOT_REACH)),
        "refused requests must not reach the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(keydeck_nginx),
    ignore = "needs nginx with http_auth_request_module (apt-get install nginx-light)"
)]
async fn usage_through_nginx_sqlite() {
    usage_through_nginx_is_the_gateways_clients(common::Backend::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(not(keydeck_nginx), not(keydeck_pg)),
    ignore = "needs nginx (apt-get install nginx-light) and KEYDECK_TEST_POSTGRES_URL"
)]
async fn usage_through_nginx_postgres() {
    if let Some(backend) = common::Backend::postgres().await {
        usage_through_nginx_is_the_gateways_clients(backend).await;
    }
}
