//! Test harness: a real keydeck service on loopback, on SQLite or on a fresh
//! PostgreSQL database, and helpers to talk to it over HTTP.

pub mod bin;
pub mod cli;
pub mod conn;
pub mod draw;
pub mod lifecycle;
pub mod process;
pub mod pty;
pub mod ssh;
pub mod stress;
pub mod transport;
pub mod ui;
pub mod util;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use keydeck::clock::{Clock, ManualClock, SystemClock};
use keydeck::run::serve::Running;
use keydeck::service::{self, ServiceConfig};
use keydeck::ssh::SshConfig;
use keydeck::store::{self, Plan, Role, Store};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

/// The PostgreSQL server tests use, e.g. `postgres://root@127.0.0.1:5432/postgres`.
pub const PG_URL_VAR: &str = "KEYDECK_TEST_POSTGRES_URL";

/// Where a test's service keeps its data.
pub struct Backend {
    pub name: &'static str,
    pub data_dir: TempDir,
    database_url: Option<String>,
    pg: Option<(String, String)>,
}

impl Backend {
    pub fn sqlite() -> Self {
        Self {
            name: "sqlite",
            data_dir: tempfile::tempdir().expect("temp dir"),
            database_url: None,
            pg: None,
        }
    }

    /// A fresh database on the test PostgreSQL server.
    ///
    /// Tests that call this are marked `#[cfg_attr(not(keydeck_pg), ignore = …)]`
    /// (see `build.rs`), so without `KEYDECK_TEST_POSTGRES_URL` at build time
    /// they are reported as ignored, never as passed. Run anyway (with
    /// `--include-ignored`) without the variable, this fails with the reason.
    /// `.ci/run` always sets it.
    pub async fn postgres() -> Option<Self> {
        let admin_url = std::env::var(PG_URL_VAR).unwrap_or_else(|_| {
            panic!(
                "this test needs PostgreSQL: set {PG_URL_VAR}=postgres://USER@HOST:PORT/postgres"
            )
        });
        let db = format!("kd_test_{}", keydeck::key::random_base62(12).to_lowercase());
        let mut conn = connect_pg(&admin_url).await;
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {db}").as_str())
            .await
            .expect("create test database");
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .expect("URL with a database");
        Some(Self {
            name: "postgres",
            data_dir: tempfile::tempdir().expect("temp dir"),
            database_url: Some(format!("{base}/{db}")),
            pg: Some((admin_url, db)),
        })
    }

    pub fn database_url(&self) -> String {
        service::database_url(self.database_url.as_deref(), self.data_dir.path())
    }

    /// `--database-url` for a `keydeck` process, if not the default SQLite file.
    pub fn database_url_arg(&self) -> Option<String> {
        self.database_url.clone()
    }

    pub fn config(&self) -> ServiceConfig {
        let mut config = ServiceConfig::new(self.data_dir.path().to_path_buf());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database_url = self.database_url.clone();
        config
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        store::open(&self.database_url()).await.expect("open store")
    }

    /// Drops the PostgreSQL test database now (dropping the `Backend` does
    /// the same, also when a test panics).
    pub async fn cleanup(mut self) {
        if let Some((admin_url, db)) = self.pg.take() {
            drop_pg_database(&admin_url, &db).await;
        }
    }
}

/// Teardown that runs on panic too: a failing test leaves no `kd_test_%`
/// database behind. `Drop` cannot await, so the database is dropped from a
/// thread with its own runtime (the test's runtime may be unwinding).
impl Drop for Backend {
    fn drop(&mut self) {
        if let Some((admin_url, db)) = self.pg.take() {
            let dropped = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to drop the test database")
                    .block_on(drop_pg_database(&admin_url, &db))
            })
            .join();
            if dropped.is_err() && !std::thread::panicking() {
                panic!("could not drop the PostgreSQL test database");
            }
        }
    }
}

/// `DROP DATABASE … WITH (FORCE)`: also ends the service's open connections.
async fn drop_pg_database(admin_url: &str, db: &str) {
    let mut conn = connect_pg(admin_url).await;
    let _ = sqlx::Executor::execute(
        &mut conn,
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str(),
    )
    .await;
}

async fn connect_pg(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {url}: {e}"))
}

/// Runs a test body against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::sqlite()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(keydeck_pg),
                ignore = "set KEYDECK_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres to run"
            )]
            async fn postgres() {
                if let Some(backend) = $crate::common::Backend::postgres().await {
                    super::$name(backend).await
                }
            }
        }
    )*};
}

/// An in-process service on a random loopback port (and its SSH front end,
/// when asked for), with the bootstrap admin's token.
pub struct TestServer {
    pub base: String,
    pub admin_token: String,
    pub http: reqwest::Client,
    pub running: Running,
}

impl TestServer {
    pub async fn start(backend: &Backend) -> Self {
        Self::start_with(backend, Arc::new(SystemClock), |_| {}).await
    }

    pub async fn start_with(
        backend: &Backend,
        clock: Arc<dyn Clock>,
        tweak: impl FnOnce(&mut ServiceConfig),
    ) -> Self {
        Self::start_with_ssh(backend, clock, tweak, None).await
    }

    /// Started as `keydeck serve` starts it: the service, then SSH (if `ssh`).
    pub async fn start_with_ssh(
        backend: &Backend,
        clock: Arc<dyn Clock>,
        tweak: impl FnOnce(&mut ServiceConfig),
        ssh: Option<SshConfig>,
    ) -> Self {
        let mut config = backend.config();
        tweak(&mut config);
        let running = keydeck::run::serve::start(config, ssh, clock)
            .await
            .expect("service starts");
        let admin_token = std::fs::read_to_string(backend.data_dir.path().join("admin-token"))
            .expect("bootstrap wrote the admin token")
            .trim()
            .to_owned();
        Self {
            base: format!("http://{}", running.addr),
            admin_token,
            http: reqwest::Client::new(),
            running,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(token)
    }

    /// The ids of `GET /v1/scopes`, in order.
    pub async fn scope_ids(&self) -> Vec<String> {
        let scopes: Value = self
            .http
            .get(self.url("/v1/scopes"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("a JSON answer");
        scopes["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// `GET path` with `token`; the JSON answer.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("a JSON answer")
    }

    pub async fn create_key_as(&self, token: &str, body: Value) -> Response {
        self.http
            .post(self.url("/v1/api-keys"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// Creates a key as the admin; returns (key JSON, secret).
    pub async fn create_key(&self, name: &str, scopes: &[&str]) -> (Value, String) {
        let r = self
            .create_key_as(&self.admin_token, json!({ "name": name, "scopes": scopes }))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        let secret = body["secret"].as_str().unwrap().to_owned();
        (body["api_key"].clone(), secret)
    }

    /// `GET /v1/auth` with the key in `X-API-Key`, optionally requiring a scope.
    pub async fn auth(&self, secret: &str, scope: Option<&str>) -> Response {
        let mut req = self
            .http
            .get(self.url("/v1/auth"))
            .header("x-api-key", secret);
        if let Some(scope) = scope {
            req = req.query(&[("scope", scope)]);
        }
        req.send().await.expect("request")
    }

    pub async fn revoke(&self, id: &str) -> Response {
        self.http
            .delete(self.url(&format!("/v1/api-keys/{id}")))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.running.shutdown().await.expect("clean shutdown");
    }
}

/// Adds an organisation with an admin (and a member) and returns their tokens.
pub async fn add_org(store: &dyn Store, name: &str, plan: Plan) -> (String, String) {
    let now = Utc::now();
    keydeck::accounts::add_org(store, name, plan, now)
        .await
        .unwrap();
    let (_, admin) =
        keydeck::accounts::add_user(store, name, &format!("admin@{name}.test"), Role::Admin, now)
            .await
            .unwrap();
    let (_, member) = keydeck::accounts::add_user(
        store,
        name,
        &format!("member@{name}.test"),
        Role::Member,
        now,
    )
    .await
    .unwrap();
    (admin.expose().to_owned(), member.expose().to_owned())
}

pub fn manual_clock(start: DateTime<Utc>) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(start))
}

/// The error code of an error answer.
pub async fn error_code(r: Response) -> (StatusCode, String, Value) {
    let status = r.status();
    let text = r.text().await.expect("body");
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: error body is not JSON ({e}): {text:?}"));
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}: no error.code in {text}"))
        .to_owned();
    assert!(
        body["error"]["message"].is_string(),
        "error.message in {body}"
    );
    (status, code, body)
}
