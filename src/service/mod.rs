//! The key service: configuration, router, bootstrap, start and graceful shutdown.

mod audit;
mod auth;
mod error;
mod extract;
mod forward_auth;
mod keys;
mod last_used;
mod openapi;
mod rate_limit;
mod shared_limit;
pub mod store;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
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
use utoipa::OpenApi;

use crate::api::ScopeList;
use crate::clock::{Clock, SystemClock};
use crate::key::{random_base62, Catalog, SecretFormat};

pub use error::{ApiError, PLAN_REQUIRED_MESSAGE};
use last_used::LastUsed;
pub use openapi::ApiDoc;
use rate_limit::FailureLimiter;
pub use rate_limit::MAX_TRACKED as FAILED_AUTH_MAX_TRACKED;
use store::{NewUser, Org, Plan, Role, Store, StoreError};

/// Largest request body accepted (413 above).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
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
        }
    }

    pub fn database_url(&self) -> String {
        database_url(self.database_url.as_deref(), &self.data_dir)
    }
}

/// The database URL to use: the one given, or the SQLite file in the data dir.
pub fn database_url(given: Option<&str>, data_dir: &Path) -> String {
    match given {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}", data_dir.join("keydeck.db").display()),
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
    trusted_proxies: Vec<IpAddr>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// A new random identifier such as `key_4ZP0tq8b1X7mUe2RwY9c`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", random_base62(20).as_str())
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/scopes", get(scopes))
        .route("/v1/api-keys", get(keys::list).post(keys::create))
        .route("/v1/api-keys/{id}", get(keys::get).delete(keys::revoke))
        .route(
            "/v1/api-keys/{id}/rotate",
            axum::routing::post(keys::rotate),
        )
        .route("/v1/audit-logs", get(audit::list))
        .route("/v1/auth", get(forward_auth::check))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(log_and_harden))
        .with_state(state)
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "ok")))]
async fn health() -> &'static str {
    "ok"
}

/// The scope catalogue, in display order.
#[utoipa::path(get, path = "/v1/scopes", tag = "meta", responses((status = 200, body = ScopeList)))]
async fn scopes(State(state): State<AppState>) -> JsonBody<ScopeList> {
    JsonBody(ScopeList {
        data: state.scopes.scopes().iter().map(Into::into).collect(),
    })
}

async fn openapi_json() -> JsonBody<utoipa::openapi::OpenApi> {
    JsonBody(ApiDoc::openapi())
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
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    flusher: JoinHandle<()>,
    /// The shared failed-check counter's writer and listener (PostgreSQL).
    background: Vec<JoinHandle<()>>,
}

impl RunningService {
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
    create_private_dir(&config.data_dir).map_err(|e| {
        StartError(format!(
            "cannot create data dir {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let key_format = SecretFormat::new(&config.key_prefix).map_err(StartError)?;
    let store = store::open(&config.database_url())
        .await
        .map_err(|e| StartError(format!("cannot open the database: {e}")))?;
    bootstrap(store.as_ref(), &config.data_dir, clock.as_ref())
        .await
        .map_err(|e| StartError(format!("cannot bootstrap the database: {e}")))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError(e.to_string()))?;

    let (stop, stop_rx) = watch::channel(false);
    let limiter = Arc::new(FailureLimiter::new(
        config.max_failed_auth,
        chrono::Duration::minutes(1),
    ));
    let database_url = config.database_url();
    let (shared_limit, background) =
        if config.max_failed_auth > 0 && store::is_postgres(&database_url) {
            let (shared, tasks) = shared_limit::start(
                &database_url,
                limiter.clone(),
                clock.clone(),
                stop_rx.clone(),
            )
            .await
            .map_err(|e| StartError(format!("cannot set up the shared failed-check limit: {e}")))?;
            (Some(shared), tasks)
        } else {
            (None, Vec::new())
        };
    let last_used = Arc::new(LastUsed::default());
    let state = AppState(Arc::new(Shared {
        store: store.clone(),
        clock,
        key_format,
        scopes: config.scopes.clone(),
        limiter,
        shared_limit,
        last_used: last_used.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
    }));
    let flusher = tokio::spawn(last_used.run(store, config.last_used_flush, stop_rx.clone()));
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let mut server_stop = stop_rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(%addr, "keydeck service listening on http://{addr}");
    Ok(RunningService {
        addr,
        state,
        stop,
        server,
        flusher,
        background,
    })
}

/// Starts with the system clock.
pub async fn start_default(config: ServiceConfig) -> Result<RunningService, StartError> {
    start(config, Arc::new(SystemClock)).await
}

/// Why the service could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

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

/// Creates a directory (and its parents) that only its owner can enter;
/// existing directories are left as they are.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Writes `contents` to a file only its owner can read.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    }
}
