//! The key service's HTTP client: one method per endpoint, typed errors, one
//! `reqwest::Client`, over TCP or (for SSH sessions) the service's Unix
//! socket. The terminal UI and the client commands all use it.

use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use crate::api::{
    ApiKey, AuditEntry, AuditList, AuditListQuery, CreateKeyRequest, CreatedKey, ErrorBody,
    KeyList, KeyListQuery, KeyUsage, LeakAnswer, LeakReports, OrgUsage, RotateKeyRequest,
    RotatedKey, ScopeInfo, ScopeList, UsageWindow,
};
use crate::key::policy::Policy;
use crate::key::validate::FieldErrors;
use crate::key::{KeyStatus, Secret};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What went wrong talking to the service, by what the user should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered at the URL: "at URL: why" (the URL always named).
    #[error("cannot reach the key service {0}")]
    Unreachable(String),
    /// The service did not answer in time.
    #[error("the key service did not answer in time")]
    Timeout,
    /// 401: no token or a bad one.
    #[error("{0}")]
    Unauthorized(String),
    /// 402: the organisation is on the free plan.
    #[error("{0}")]
    PlanRequired(String),
    /// 403: not an admin (or a key without the scope).
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 400, with per-field messages.
    #[error("{message}{}", field_lines(fields))]
    Invalid {
        message: String,
        fields: FieldErrors,
    },
    /// 409 on an Idempotency-Key repeat: the key exists, its secret is gone.
    #[error(
        "the key {} ({}) was already created by an earlier attempt; its secret cannot be shown again",
        .0.name,
        .0.prefix
    )]
    IdempotentRepeat(Box<ApiKey>),
    /// 409: the key is revoked or expired.
    #[error("{0}")]
    Conflict(String),
    /// 429.
    #[error("{0}")]
    RateLimited(String),
    /// 5xx, or an answer we could not read.
    #[error("{0}")]
    Server(String),
}

impl ClientError {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Timeout | Self::Server(_))
    }
}

/// The per-field problems of a 400, one indented line each.
fn field_lines(fields: &FieldErrors) -> String {
    fields
        .iter()
        .map(|(field, problem)| format!("\n  {field}: {problem}"))
        .collect()
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A client for one service URL with one access token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(base_url: &str, token: Secret) -> Result<Self> {
        Self::with_timeout(base_url, token, REQUEST_TIMEOUT)
    }

    /// Like [`new`](Self::new), with a whole-request time limit other than 15 s.
    pub fn with_timeout(base_url: &str, token: Secret, timeout: Duration) -> Result<Self> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Unreachable(format!(
                "at {base_url:?}: not an http:// or https:// URL"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(concat!("keydeck/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unreachable(format!("at {base}: {e}")))?;
        Ok(Self { http, base, token })
    }

    /// A client of the service behind the Unix socket at `socket` (how SSH
    /// sessions reach the service they run in), with the usual time limits.
    pub fn over_socket(socket: &Path, token: Secret) -> Result<Self> {
        let http = reqwest::Client::builder()
            .unix_socket(socket)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("keydeck/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unreachable(format!("at {}: {e}", socket.display())))?;
        Ok(Self {
            http,
            // Only the path and the Host header come from the URL.
            base: "http://keydeck.internal".to_owned(),
            token,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.expose())
    }

    async fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let response = req
            .send()
            .await
            .map_err(|e| transport_error(e, &self.base))?;
        let status = response.status();
        if status.is_success() {
            return response.json::<T>().await.map_err(|e| {
                ClientError::Server(format!("unreadable answer from the service: {e}"))
            });
        }
        let body: Option<ErrorBody> = response.json().await.ok();
        Err(status_error(status, body))
    }

    /// The scope catalogue, in display order.
    pub async fn scopes(&self) -> Result<Vec<ScopeInfo>> {
        let list: ScopeList = self.send(self.request(Method::GET, "/v1/scopes")).await?;
        Ok(list.data)
    }

    /// One page of keys.
    pub async fn list_keys(&self, query: &KeyListQuery) -> Result<KeyList> {
        self.send(self.request(Method::GET, "/v1/api-keys").query(query))
            .await
    }

    /// How many keys each tab lists and the summary line's numbers, of the
    /// keys matching `q` (`GET /v1/api-keys/counts`).
    pub async fn key_counts(
        &self,
        query: &crate::api::KeyCountsQuery,
    ) -> Result<crate::api::KeyCounts> {
        self.send(
            self.request(Method::GET, "/v1/api-keys/counts")
                .query(query),
        )
        .await
    }

    /// Every key (optionally of one status), following the cursor.
    pub async fn list_all_keys(&self, status: Option<KeyStatus>) -> Result<Vec<ApiKey>> {
        let query = KeyListQuery {
            status,
            limit: Some(500),
            ..KeyListQuery::default()
        };
        self.all_pages(query, usize::MAX).await
    }

    /// The one loop that follows `next_cursor`: from `query`'s page on, each
    /// page's items go to `each` as they come, until the last page or until
    /// `each` breaks.
    pub async fn each_page<Q: PageQuery>(
        &self,
        mut query: Q,
        mut each: impl FnMut(Vec<Q::Item>) -> ControlFlow<()>,
    ) -> Result<()> {
        loop {
            let (items, next) = query.fetch(self).await?;
            if each(items).is_break() {
                return Ok(());
            }
            match next {
                Some(cursor) => query.set_cursor(cursor),
                None => return Ok(()),
            }
        }
    }

    /// At most `max` items of a paged listing, in order, from `query`'s page on.
    pub async fn all_pages<Q: PageQuery>(&self, query: Q, max: usize) -> Result<Vec<Q::Item>> {
        let mut all = Vec::new();
        self.each_page(query, |items| {
            all.extend(items);
            if all.len() < max {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        })
        .await?;
        all.truncate(max);
        Ok(all)
    }

    pub async fn get_key(&self, id: &str) -> Result<ApiKey> {
        self.send(self.request(Method::GET, &format!("/v1/api-keys/{}", path_segment(id))))
            .await
    }

    /// Creates a key. With an idempotency key, a retry after a lost answer
    /// cannot create a second key: it gets [`ClientError::IdempotentRepeat`].
    pub async fn create_key(
        &self,
        request: &CreateKeyRequest,
        idempotency_key: Option<&str>,
    ) -> Result<CreatedKey> {
        let mut req = self.request(Method::POST, "/v1/api-keys").json(request);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        self.send(req).await
    }

    pub async fn revoke_key(&self, id: &str) -> Result<ApiKey> {
        self.send(self.request(
            Method::DELETE,
            &format!("/v1/api-keys/{}", path_segment(id)),
        ))
        .await
    }

    pub async fn rotate_key(&self, id: &str, grace_seconds: u32) -> Result<RotatedKey> {
        let body = RotateKeyRequest { grace_seconds };
        self.send(
            self.request(
                Method::POST,
                &format!("/v1/api-keys/{}/rotate", path_segment(id)),
            )
            .json(&body),
        )
        .await
    }

    /// Issues the secret of a key made without one (`POST /v1/api-keys/{id}/secret`), once.
    pub async fn issue_secret(&self, id: &str) -> Result<CreatedKey> {
        self.send(self.request(
            Method::POST,
            &format!("/v1/api-keys/{}/secret", path_segment(id)),
        ))
        .await
    }

    pub async fn audit_logs(&self, query: &AuditListQuery) -> Result<AuditList> {
        self.send(self.request(Method::GET, "/v1/audit-logs").query(query))
            .await
    }

    /// The organisation's key policy.
    pub async fn policy(&self) -> Result<Policy> {
        self.send(self.request(Method::GET, "/v1/policy")).await
    }

    /// Reports keys seen somewhere, by their digests (`POST /v1/leaks`).
    pub async fn report_leaks(&self, reports: &LeakReports) -> Result<LeakAnswer> {
        self.send(self.request(Method::POST, "/v1/leaks").json(reports))
            .await
    }

    /// A key's checks by outcome over `window`, and its last addresses.
    pub async fn key_usage(&self, id: &str, window: UsageWindow) -> Result<KeyUsage> {
        self.send(
            self.request(
                Method::GET,
                &format!("/v1/api-keys/{}/usage", path_segment(id)),
            )
            .query(&[("window", window.as_str())]),
        )
        .await
    }

    /// The organisation's checks over `window` and its top keys.
    pub async fn org_usage(&self, window: UsageWindow) -> Result<OrgUsage> {
        self.send(
            self.request(Method::GET, "/v1/usage")
                .query(&[("window", window.as_str())]),
        )
        .await
    }

    /// Replaces the organisation's key policy (admins only); the policy now in force.
    pub async fn set_policy(&self, policy: &Policy) -> Result<Policy> {
        self.send(self.request(Method::PUT, "/v1/policy").json(policy))
            .await
    }

    /// `/v1/webhooks` (issue 24): one request of the webhook commands, its JSON answer.
    pub async fn webhooks<T: DeserializeOwned>(&self, call: WebhookCall<'_>) -> Result<T> {
        let one = |id: &str, tail: &str| format!("/v1/webhooks/{}{tail}", path_segment(id));
        let req = match call {
            WebhookCall::List => self.request(Method::GET, "/v1/webhooks"),
            WebhookCall::Add(body) => self.request(Method::POST, "/v1/webhooks").json(body),
            WebhookCall::Remove(id) => self.request(Method::DELETE, &one(id, "")),
            WebhookCall::Test(id) => self.request(Method::POST, &one(id, "/test")),
            WebhookCall::Deliveries(id, query) => self
                .request(Method::GET, &one(id, "/deliveries"))
                .query(query),
            WebhookCall::RotateSecret(id, body) => self
                .request(Method::POST, &one(id, "/rotate-secret"))
                .json(body),
            WebhookCall::Enable(id) => self.request(Method::POST, &one(id, "/enable")),
        };
        self.send(req).await
    }
}

/// One request of [`Client::webhooks`].
pub enum WebhookCall<'a> {
    List,
    Add(&'a crate::api::webhooks::CreateWebhookRequest),
    Remove(&'a str),
    Test(&'a str),
    /// A page of an endpoint's deliveries.
    Deliveries(&'a str, &'a crate::api::webhooks::DeliveryListQuery),
    RotateSecret(
        &'a str,
        &'a crate::api::webhooks::RotateWebhookSecretRequest,
    ),
    Enable(&'a str),
}

/// The query of a listing the service pages with `next_cursor` (keys, audit
/// log): how one page is fetched and where the next one starts.
pub trait PageQuery {
    type Item;
    fn set_cursor(&mut self, cursor: String);
    /// One page: its items and the cursor of the next, if any.
    fn fetch<'a>(
        &'a self,
        client: &'a Client,
    ) -> impl Future<Output = Result<(Vec<Self::Item>, Option<String>)>> + Send + 'a;
}

impl PageQuery for KeyListQuery {
    type Item = ApiKey;

    fn set_cursor(&mut self, cursor: String) {
        self.cursor = Some(cursor);
    }

    async fn fetch(&self, client: &Client) -> Result<(Vec<ApiKey>, Option<String>)> {
        let page = client.list_keys(self).await?;
        Ok((page.data, page.next_cursor))
    }
}

impl PageQuery for AuditListQuery {
    type Item = AuditEntry;

    fn set_cursor(&mut self, cursor: String) {
        self.cursor = Some(cursor);
    }

    async fn fetch(&self, client: &Client) -> Result<(Vec<AuditEntry>, Option<String>)> {
        let page = client.audit_logs(self).await?;
        Ok((page.data, page.next_cursor))
    }
}

/// An endpoint's deliveries (`GET /v1/webhooks/{id}/deliveries`), newest
/// first, paged with `next_cursor` as the keys and the audit log are.
pub struct DeliveriesQuery {
    /// The endpoint's id (`whk_…`).
    pub id: String,
    pub query: crate::api::webhooks::DeliveryListQuery,
}

impl PageQuery for DeliveriesQuery {
    type Item = crate::api::webhooks::WebhookDelivery;

    fn set_cursor(&mut self, cursor: String) {
        self.query.cursor = Some(cursor);
    }

    async fn fetch(&self, client: &Client) -> Result<(Vec<Self::Item>, Option<String>)> {
        let page: crate::api::webhooks::WebhookDeliveryList = client
            .webhooks(WebhookCall::Deliveries(&self.id, &self.query))
            .await?;
        Ok((page.data, page.next_cursor))
    }
}

/// Refuses a plain `http://` URL to a host other than this machine (literally
/// `localhost`, or a loopback address), where the access token would cross
/// the network in the clear. With `allow` it warns on standard error instead.
/// Decided from the URL alone, before any connection.
pub fn check_plain_http(url: &str, allow: bool) -> std::result::Result<(), String> {
    let Some(host) = remote_plain_http_host(url) else {
        return Ok(());
    };
    if allow {
        eprintln!(
            "keydeck: warning: sending the access token over plain http:// to {host}, \
             where anyone on the network path can read it; use https://"
        );
        return Ok(());
    }
    Err(format!(
        "refusing to send the access token over plain http:// to {host}: use https:// \
         (plain http:// is only for localhost; on a network you trust, pass \
         --allow-insecure-http or set KEYDECK_ALLOW_INSECURE_HTTP=1)"
    ))
}

/// The host of a plain `http://` URL, unless it is this machine.
fn remote_plain_http_host(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url.trim()).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let host = url.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let local = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!local).then(|| host.to_owned())
}

/// Keeps an id from escaping its path segment.
fn path_segment(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// What a server certificate that is a CA certificate gets (rustls refuses
/// it: `CaUsedAsEndEntity`); `openssl req -x509` makes one by default, and
/// trusting it through `SSL_CERT_FILE` does not help.
const CA_AS_SERVER_CERT: &str = "the service's certificate is a CA certificate \
     (basicConstraints CA:TRUE, what `openssl req -x509` makes by default) used as the \
     server's own certificate, which is refused (CaUsedAsEndEntity). Make a server \
     certificate that is not a CA, e.g. `openssl req -x509 -newkey ec -pkeyopt \
     ec_paramgen_curve:P-256 -nodes -days 365 -keyout key.pem -out cert.pem -subj /CN=HOST \
     -addext subjectAltName=DNS:HOST -addext basicConstraints=critical,CA:FALSE`, serve it \
     with --tls-cert cert.pem --tls-key key.pem and point SSL_CERT_FILE at cert.pem";

fn transport_error(e: reqwest::Error, base: &str) -> ClientError {
    let at = |why: String| ClientError::Unreachable(format!("at {base}: {why}"));
    if e.is_timeout() {
        ClientError::Timeout
    } else if e.is_connect() {
        let cause = root_cause(&e);
        if cause.contains("CaUsedAsEndEntity") {
            at(CA_AS_SERVER_CERT.to_owned())
        } else if cause.contains("certificate") {
            at(format!(
                "{cause} (if the service's certificate comes from a private CA, \
                 set SSL_CERT_FILE to that CA's PEM file)"
            ))
        } else {
            at(cause)
        }
    } else {
        ClientError::Server(root_cause(&e))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn status_error(status: StatusCode, body: Option<ErrorBody>) -> ClientError {
    let message = body
        .as_ref()
        .map(|b| b.error.message.clone())
        .unwrap_or_else(|| format!("the key service answered {status}"));
    match status {
        StatusCode::UNAUTHORIZED => ClientError::Unauthorized(message),
        StatusCode::PAYMENT_REQUIRED => ClientError::PlanRequired(message),
        StatusCode::FORBIDDEN => ClientError::Forbidden(message),
        StatusCode::NOT_FOUND => ClientError::NotFound(message),
        StatusCode::CONFLICT => match body.and_then(|b| {
            (b.error.code == "idempotency_key_reused")
                .then_some(b.api_key)
                .flatten()
        }) {
            Some(key) => ClientError::IdempotentRepeat(Box::new(key)),
            None => ClientError::Conflict(message),
        },
        StatusCode::TOO_MANY_REQUESTS => ClientError::RateLimited(message),
        s if s.is_client_error() => ClientError::Invalid {
            message,
            fields: body.and_then(|b| b.error.fields).unwrap_or_default(),
        },
        _ => ClientError::Server(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_this_machine() {
        for local in [
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://127.0.0.1:9",
            "http://127.8.9.10/",
            "http://[::1]:8080",
            "https://keys.example.com",
            "https://192.0.2.1",
        ] {
            assert_eq!(remote_plain_http_host(local), None, "{local}");
            assert!(check_plain_http(local, false).is_ok(), "{local}");
        }
        for (remote, host) in [
            ("http://keys.example.com", "keys.example.com"),
            ("http://192.0.2.1:8080", "192.0.2.1"),
            ("http://[2001:db8::1]/", "[2001:db8::1]"),
            ("http://localhost.example.com", "localhost.example.com"),
            ("http://0.0.0.0:8080", "0.0.0.0"),
        ] {
            assert_eq!(remote_plain_http_host(remote).as_deref(), Some(host));
            let refusal = check_plain_http(remote, false).unwrap_err();
            assert!(refusal.contains("use https://"), "{refusal}");
            assert!(check_plain_http(remote, true).is_ok());
        }
    }
}
