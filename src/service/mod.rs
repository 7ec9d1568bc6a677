//! The key service: configuration, router, bootstrap, start and graceful shutdown.

mod audit;
mod auth;
mod deadline;
mod error;
mod extract;
mod fd_budget;
mod forward_auth;
pub mod gate;
mod internal;
mod key_answer;
mod key_window;
mod keycache;
mod keys;
mod last_used;
mod leaks;
mod leaks_github;
mod leaks_gitlab;
mod negative;
mod openapi;
mod policy;
mod rate_limit;
mod reporter;
mod serve;
mod sessions;
mod shared_limit;
mod tls;
mod usage;
mod usage_api;
pub mod webhooks;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json as JsonBody, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::ScopeList;
use crate::clock::{Clock, SystemClock};
use crate::key::{new_id, Catalog, SecretFormat};

pub use crate::fs::{
    check_data_dir, create_private_dir, create_private_file, database_url, open_private_log,
    prepare_data_dir, write_private,
};
use crate::store;
use crate::store::guard::{Guard, GuardLimits};
use crate::store::{NewUser, Org, Plan, Role, Store, StoreError};
pub use error::{ApiError, PLAN_REQUIRED_MESSAGE};
pub use fd_budget::{needed as descriptors_needed, OtherDescriptors};
pub use internal::SOCKET_FILE as SSH_SESSIONS_SOCKET;
pub use keycache::sqlite::OTHER_PROCESS_BOUND as SQLITE_OTHER_PROCESS_BOUND;
pub use keycache::{KeyCacheStats, KeyLookup};
use last_used::LastUsed;
pub use leaks::{GithubKeys, LeakConfig, GITHUB_PATH, MAX_LEAK_BODY_BYTES};
pub use openapi::ApiDoc;
use rate_limit::FailureLimiter;
pub use rate_limit::MAX_TRACKED as FAILED_AUTH_MAX_TRACKED;
pub use serve::{Timeouts, DEFAULT_MAX_CONNECTIONS};
pub use tls::TlsFiles;
pub use usage::UsageSettings;

/// Largest request body accepted (413 above), but on the leak endpoints
/// ([`body_limit`]).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The largest body a request to `path` may send: [`MAX_LEAK_BODY_BYTES`]
/// on the leak endpoints (batches of reports, GitHub's and GitLab's
/// included), [`MAX_BODY_BYTES`] everywhere else. Read by
/// [`deadline::limit_time`], which reads every body before routing.
fn body_limit(path: &str) -> usize {
    if [LEAKS_PATH, REVOKE_TOKENS_PATH, GITHUB_PATH].contains(&path) {
        MAX_LEAK_BODY_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

const LEAKS_PATH: &str = "/v1/leaks";
const REVOKE_TOKENS_PATH: &str = "/v1/revoke_tokens";
/// Name of the file in the data dir that receives the bootstrap admin's token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Everything `keydeck serve` can be told.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; `None` means `sqlite://DATA_DIR/keydeck.db`.
    pub database_url: Option<String>,
    pub key_prefix: String,
    /// Failed key checks per client (IPv4 address or IPv6 /64) per minute before
    /// 429, shared by all replicas on PostgreSQL; 0 turns it off.
    pub max_failed_auth: u32,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed (see `auth::client_behind`).
    pub trusted_proxies: Vec<IpAddr>,
    pub last_used_flush: Duration,
    /// The scopes keys may have.
    pub scopes: Catalog,
    /// HTTPS with this certificate and key; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Time limits on connections and requests.
    pub timeouts: Timeouts,
    /// Connections served at once; more are refused (503) until some close.
    pub max_connections: usize,
    /// Deadline per database call and how many calls may queue (503 beyond).
    pub database_limits: GuardLimits,
    /// File descriptors the process's other listeners may hold (the SSH
    /// front end's caps), checked with the service's own at start.
    pub other_descriptors: Option<OtherDescriptors>,
    /// Answer key checks from the key cache while nothing changed (see
    /// `keycache`); `false` looks every key up, for comparison.
    pub key_cache: bool,
    /// Key usage: flush interval, retention, new-address audits (see `usage`).
    pub usage: UsageSettings,
    /// Webhook notifications: safe targets, the worker's pace, the digest's hour.
    pub webhooks: webhooks::WebhookConfig,
    /// Leak reports: their rate, GitLab's token, GitHub's keys (`leaks`).
    pub leaks: LeakConfig,
}

impl ServiceConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir,
            database_url: None,
            key_prefix: crate::key::secret::DEFAULT_KEY_PREFIX.to_owned(),
            max_failed_auth: 20,
            trusted_proxies: Vec::new(),
            last_used_flush: Duration::from_secs(1),
            scopes: Catalog::default(),
            tls: None,
            timeouts: Timeouts::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            database_limits: GuardLimits::default(),
            other_descriptors: None,
            key_cache: true,
            usage: UsageSettings::default(),
            webhooks: webhooks::WebhookConfig::default(),
            leaks: LeakConfig::default(),
        }
    }

    pub fn database_url(&self) -> String {
        database_url(self.database_url.as_deref(), &self.data_dir)
    }
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub key_format: SecretFormat,
    pub scopes: Catalog,
    limiter: Arc<FailureLimiter>,
    shared_limit: Option<shared_limit::SharedLimit>,
    last_used: Arc<LastUsed>,
    /// Key checks counted by outcome, written in batches (see [`usage`]).
    usage: Arc<usage::Usage>,
    /// User token digests recently looked up and not found (see [`negative`]).
    missing_tokens: negative::NegativeCache,
    /// The key check's lookup: API keys found, while nothing changed, and
    /// digests not found, for a second (see [`keycache`]).
    pub key_cache: KeyLookup,
    trusted_proxies: Vec<IpAddr>,
    timeouts: Timeouts,
    /// Credentials of open SSH sessions.
    ssh_tokens: sessions::SessionTokens,
    pub webhooks: webhooks::WebhookConfig,
    /// The leak endpoints' settings and rate limiter.
    leaks: leaks::LeakDesk,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/scopes", get(scopes))
        .route("/v1/api-keys", get(key_window::list).post(keys::create))
        .route("/v1/api-keys/counts", get(key_window::counts))
        .route("/v1/api-keys/{id}", get(keys::get).delete(keys::revoke))
        .route(
            "/v1/api-keys/{id}/rotate",
            axum::routing::post(keys::rotate),
        )
        .route(
            "/v1/api-keys/{id}/secret",
            axum::routing::post(keys::issue_secret),
        )
        .route("/v1/audit-logs", get(audit::list))
        .route("/v1/auth", get(forward_auth::check))
        .route("/v1/policy", get(policy::get).put(policy::put))
        .route("/v1/api-keys/{id}/usage", get(usage_api::key_usage))
        .route("/v1/usage", get(usage_api::org_usage))
        .merge(webhook_routes())
        .merge(leak_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            deadline::limit_time,
        ))
        .layer(middleware::from_fn(log_and_harden))
        .with_state(state)
}

/// `/v1/webhooks` (`webhooks::api`).
fn webhook_routes() -> Router<AppState> {
    use axum::routing::post;
    use webhooks::api;
    Router::new()
        .route("/v1/webhooks", get(api::list).post(api::create))
        .route("/v1/webhooks/{id}", axum::routing::delete(api::remove))
        .route("/v1/webhooks/{id}/test", post(api::test))
        .route("/v1/webhooks/{id}/deliveries", get(api::deliveries))
        .route("/v1/webhooks/{id}/rotate-secret", post(api::rotate_secret))
        .route("/v1/webhooks/{id}/enable", post(api::enable))
}

/// The leak endpoints, with their own (larger) body limit.
fn leak_routes() -> Router<AppState> {
    Router::new()
        .route(LEAKS_PATH, axum::routing::post(leaks::report))
        .route("/v1/revocable_token_types", get(leaks_gitlab::types))
        .route(
            REVOKE_TOKENS_PATH,
            axum::routing::post(leaks_gitlab::revoke),
        )
        .route(GITHUB_PATH, axum::routing::post(leaks_github::receive))
        .layer(DefaultBodyLimit::max(MAX_LEAK_BODY_BYTES))
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "ok")))]
async fn health() -> &'static str {
    "ok"
}

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// Readiness: 200 when the database answers `SELECT 1` within a second, else 503.
#[utoipa::path(get, path = "/readyz", tag = "meta", responses(
    (status = 200, description = "The database answers", body = crate::api::Readiness),
    (status = 503, description = "`database_unavailable`, with Retry-After", body = crate::api::ErrorBody),
))]
async fn ready(State(state): State<AppState>) -> Result<JsonBody<crate::api::Readiness>, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(JsonBody(crate::api::Readiness {
            status: "ready".into(),
            database: "ok".into(),
        })),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "not ready");
            Err(ApiError::DatabaseUnavailable)
        }
        Err(_) => Err(ApiError::DatabaseUnavailable),
    }
}

/// The scope catalogue, in display order (Full Access last), then keydeck's
/// own reporter scope `leaks:report`, apart: Full Access does not grant it
/// and a key with it has no other.
#[utoipa::path(get, path = "/v1/scopes", tag = "meta", responses((status = 200, body = ScopeList)))]
async fn scopes(State(state): State<AppState>) -> JsonBody<ScopeList> {
    let reporter = std::iter::once((&crate::key::scope::REPORTER).into());
    JsonBody(ScopeList {
        data: state
            .scopes
            .scopes()
            .iter()
            .map(Into::into)
            .chain(reporter)
            .collect(),
    })
}

async fn openapi_json(State(state): State<AppState>) -> JsonBody<serde_json::Value> {
    JsonBody(openapi::document(&state.scopes))
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> Response {
    let mut r =
        ApiError::BadRequest("This method is not allowed on this path.".into()).into_response();
    *r.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// Logs method, path (never the query or headers), status and time; forbids caching.
async fn log_and_harden(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if path != "/v1/auth" || status >= 500 {
        tracing::info!(%method, %path, status, ms = (ms * 10.0).round() / 10.0, "request");
    } else {
        tracing::debug!(%method, %path, status, ms = (ms * 10.0).round() / 10.0, "request");
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A running service: its address, and how to stop it.
pub struct RunningService {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The guard every database call goes through (its counters; fault injection in tests).
    pub store_guard: Arc<Guard>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    flusher: JoinHandle<()>,
    /// The shared failed-check counter's writer and listener (PostgreSQL),
    /// the key cache's watchers.
    background: Vec<JoinHandle<()>>,
    /// TCP connections accepted on `addr` so far.
    accepted: Arc<AtomicU64>,
    /// What the SSH front end is handed.
    gate: gate::Gate,
}

impl RunningService {
    /// TCP connections accepted on the HTTP listener since the start: with a
    /// gateway that keeps its connections alive, far fewer than its requests.
    pub fn accepted_connections(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The narrow way in for the SSH front end (see [`gate`]).
    pub fn gate(&self) -> gate::Gate {
        self.gate.clone()
    }

    /// Stops accepting, lets in-flight requests finish (for up to 10 s),
    /// flushes last-used times and closes the database.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.shutdown_within(Duration::from_secs(10)).await
    }

    /// Like [`shutdown`](Self::shutdown), but connections still open after
    /// `grace` are dropped: last-used times are flushed either way.
    pub async fn shutdown_within(mut self, grace: Duration) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        let served = match tokio::time::timeout(grace, &mut self.server).await {
            Ok(result) => result.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "connections still open after the grace period; closing them"
                );
                self.server.abort();
                Ok(())
            }
        };
        let _ = self.flusher.await;
        for task in self.background.drain(..) {
            let _ = task.await;
        }
        self.state.store.close().await;
        served
    }
}

/// Opens the store, bootstraps an empty database, binds and serves in the background.
pub async fn start(
    config: ServiceConfig,
    clock: Arc<dyn Clock>,
) -> Result<RunningService, StartError> {
    let Checked {
        backend,
        key_format,
        tls,
    } = check(&config)?;
    let (store, store_guard, key_cache) = open_store(&config, &backend, clock.as_ref()).await?;
    let listen = |source| StartError::Listen {
        addr: config.listen,
        source,
    };
    let listener = TcpListener::bind(config.listen).await.map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;

    let (stop, stop_rx) = watch::channel(false);
    let limiter = Arc::new(FailureLimiter::new(
        config.max_failed_auth,
        chrono::Duration::minutes(1),
    ));
    let (shared_limit, mut background) =
        start_shared_limit(&config, store.as_ref(), &limiter, &clock, &stop_rx).await?;
    background.extend(
        key_cache
            .watch(stop_rx.clone())
            .await
            .map_err(StartError::KeyCache)?,
    );
    let last_used = Arc::new(LastUsed::default());
    let usage = Arc::new(usage::Usage::new(config.usage.clone()));
    background.push(tokio::spawn(usage.clone().run(
        store.clone(),
        clock.clone(),
        stop_rx.clone(),
    )));
    let state = AppState(Arc::new(Shared {
        store: store.clone(),
        clock,
        key_format,
        scopes: config.scopes.clone(),
        limiter,
        shared_limit,
        last_used: last_used.clone(),
        usage,
        missing_tokens: negative::NegativeCache::default(),
        key_cache,
        trusted_proxies: config.trusted_proxies.clone(),
        timeouts: config.timeouts,
        ssh_tokens: sessions::SessionTokens::default(),
        webhooks: config.webhooks.clone(),
        leaks: leaks::LeakDesk::new(config.leaks.clone()),
    }));
    background.push(webhooks::start(
        config.webhooks.clone(),
        state.store.clone(),
        state.clock.clone(),
        stop_rx.clone(),
    ));
    let gate = gate::Gate::new(
        state.clone(),
        config.data_dir.clone(),
        config.max_connections,
    );
    let flusher = tokio::spawn(last_used.run(store, config.last_used_flush, stop_rx.clone()));
    let accepted = Arc::new(AtomicU64::new(0));
    let server = serve_http(listener, addr, &state, &config, tls, &accepted, stop_rx);
    Ok(RunningService {
        accepted,
        addr,
        state,
        store_guard,
        stop,
        server,
        flusher,
        background,
        gate,
    })
}

/// What checking the configuration yields: the key format and the TLS acceptor.
struct Checked {
    backend: store::Backend,
    key_format: SecretFormat,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Before anything opens: the data dir and its files, the open-files limit,
/// the key prefix and the TLS files.
fn check(config: &ServiceConfig) -> Result<Checked, StartError> {
    prepare_data_dir(&config.data_dir).map_err(StartError::Setup)?;
    let backend =
        store::Backend::from_url(&config.database_url()).map_err(StartError::OpenDatabase)?;
    check_files(config).map_err(StartError::Setup)?;
    fd_budget::ensure(
        config.max_connections.max(1),
        config.other_descriptors.as_ref(),
    )
    .map_err(StartError::Setup)?;
    let key_format = key_format(&config.key_prefix).map_err(StartError::Setup)?;
    let tls = config
        .tls
        .as_ref()
        .map(tls::acceptor)
        .transpose()
        .map_err(StartError::Setup)?;
    Ok(Checked {
        backend,
        key_format,
        tls,
    })
}

/// The store, every call under its guard's deadlines and the key cache
/// cleared on writes, with an empty database bootstrapped.
async fn open_store(
    config: &ServiceConfig,
    backend: &store::Backend,
    clock: &dyn Clock,
) -> Result<(Arc<dyn Store>, Arc<Guard>, KeyLookup), StartError> {
    let guard = Arc::new(Guard::new(config.database_limits));
    let hooks = store::Hooks {
        guard: Some(guard.clone()),
        key_writes: None,
    };
    let (store, key_cache) = KeyLookup::open(backend, hooks, config.key_cache)
        .await
        .map_err(StartError::OpenDatabase)?;
    bootstrap(store.as_ref(), &config.data_dir, clock)
        .await
        .map_err(StartError::Bootstrap)?;
    Ok((store, guard, key_cache))
}

/// The failed-check limit shared by replicas on one PostgreSQL database
/// (none on SQLite, or without a limit), on the store's pool, and its tasks.
async fn start_shared_limit(
    config: &ServiceConfig,
    store: &dyn Store,
    limiter: &Arc<FailureLimiter>,
    clock: &Arc<dyn Clock>,
    stop: &watch::Receiver<bool>,
) -> Result<(Option<shared_limit::SharedLimit>, Vec<JoinHandle<()>>), StartError> {
    let store::Watch::Postgres(replicas) = store.watch() else {
        return Ok((None, Vec::new()));
    };
    if config.max_failed_auth == 0 {
        return Ok((None, Vec::new()));
    }
    let (shared, tasks) =
        shared_limit::start(replicas, limiter.clone(), clock.clone(), stop.clone())
            .await
            .map_err(StartError::SharedLimit)?;
    Ok((Some(shared), tasks))
}

/// The HTTP(S) server on `listener`, in the background.
fn serve_http(
    listener: TcpListener,
    addr: SocketAddr,
    state: &AppState,
    config: &ServiceConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    accepted: &Arc<AtomicU64>,
    stop: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let serving = serve::Serving {
        app: router(state.clone()),
        tls,
        timeouts: config.timeouts,
        max_connections: config.max_connections.max(1),
        accepted: accepted.clone(),
    };
    let server = tokio::spawn(serve::serve(listener, serving, stop));
    tracing::info!(%addr, "keydeck service listening on {scheme}://{addr}");
    server
}

/// Starts with the system clock.
pub async fn start_default(config: ServiceConfig) -> Result<RunningService, StartError> {
    start(config, Arc::new(SystemClock)).await
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data dir, a file in it, the open-files limit, the key prefix or
    /// the TLS files: the message says which and why.
    #[error("{0}")]
    Setup(String),
    #[error("cannot open the database: {0}")]
    OpenDatabase(StoreError),
    #[error("cannot bootstrap the database: {0}")]
    Bootstrap(StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up the shared failed-check limit: {0}")]
    SharedLimit(sqlx::Error),
    #[error("cannot set up the key cache: {0}")]
    KeyCache(sqlx::Error),
}

/// On an empty database: organisation `default` (paid) and an admin whose
/// token goes to `DATA_DIR/admin-token` (mode 0600), never to the log.
pub async fn bootstrap(
    store: &dyn Store,
    data_dir: &Path,
    clock: &dyn Clock,
) -> Result<(), StoreError> {
    if !store.list_orgs().await?.is_empty() {
        return Ok(());
    }
    let now = clock.now();
    let org = Org {
        id: new_id("org_"),
        name: "default".into(),
        plan: Plan::Paid,
        created_at: now,
    };
    match store.create_org(&org).await {
        Ok(()) => {}
        // Another replica bootstrapped the same database first.
        Err(StoreError::Duplicate(_)) => return Ok(()),
        Err(e) => return Err(e),
    }
    let token = SecretFormat::user_token().generate();
    store
        .create_user(&NewUser {
            id: new_id("usr_"),
            org_id: org.id,
            email: "admin@localhost".into(),
            role: Role::Admin,
            token_digest: token.digest(),
            created_at: now,
        })
        .await?;
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    write_private(&path, token.expose())
        .map_err(|e| StoreError::Corrupt(format!("cannot write {}: {e}", path.display())))?;
    tracing::info!(path = %path.display(), "bootstrapped organisation 'default'; admin token written");
    Ok(())
}

/// At start: the admin token file made private if others may read it (the
/// database is made so where it is opened).
fn check_files(config: &ServiceConfig) -> Result<(), String> {
    crate::fs::make_private(&config.data_dir.join(ADMIN_TOKEN_FILE), "admin token file")
}

/// The API key format for `prefix`, which must not be confused with user
/// access tokens (`kdt_…`) nor with SSH session credentials (`kds_…`): the
/// audit log endpoint and the session check tell them apart by prefix.
pub fn key_format(prefix: &str) -> Result<SecretFormat, String> {
    let format = SecretFormat::new(prefix).map_err(|e| e.to_string())?;
    let token = SecretFormat::user_token();
    for (taken, what) in [
        (token.prefix(), "user access tokens"),
        (sessions::SESSION_TOKEN_PREFIX, "SSH session credentials"),
    ] {
        if prefix.starts_with(taken) || taken.starts_with(prefix) {
            return Err(format!(
                "key prefix {prefix:?} clashes with the prefix of {what} ({taken:?}): \
                 keys and {what} could not be told apart; choose another, e.g. \"eg_live_\""
            ));
        }
    }
    Ok(format)
}
