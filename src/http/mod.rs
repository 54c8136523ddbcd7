//! The request path: request id → route → (auth) → handler → JSON answer, with the
//! security headers and one access-log line added to every answer.

pub mod client_ip;
pub mod cors;
pub mod metrics;
pub mod ratelimit;
pub mod request;
pub mod response;
pub mod router;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{HeaderName, HeaderValue};
use http::Request;
use hyper::body::Incoming;

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::api;
use crate::auth::keys::KeySet;
use crate::auth::oidc::OidcVerifier;
use crate::auth::throttle::LoginThrottle;
use crate::config::{AuthMode, Config};
use crate::store::Store;
use client_ip::Cidr;
use cors::Cors;
use ratelimit::RateLimits;
use request::BodyLimits;
use response::{ApiError, HttpResponse};

/// Everything a handler may use; shared by all connections.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub body_limits: BodyLimits,
    /// HSTS is only sent over TLS.
    pub tls: bool,
    keys: KeySet,
    /// The web UI's per-process secrets and asset table (src/ui).
    pub ui: crate::ui::UiState,
    verified: crate::auth::keys::VerifiedTokens,
    /// Set in OIDC mode; local mode verifies its own session tokens instead.
    pub oidc: Option<OidcVerifier>,
    pub login_throttle: LoginThrottle,
    pub limits: RateLimits,
    pub cors: Option<Cors>,
    trusted_proxies: Vec<Cidr>,
    /// When each API key's `last_used_at` was last written (D14: at most once a minute).
    key_stamps: Mutex<HashMap<Uuid, Instant>>,
    /// Requests by route and status, and their latency (`GET /metrics`).
    pub requests: metrics::RequestMetrics,
    /// v2 frontiers by build, stamped with the build's change counter.
    pub frontiers: Arc<crate::store::v2::reads::FrontierMemo>,
}

/// `last_used_at` is written at most this often per key.
const KEY_STAMP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

impl AppState {
    /// `oidc` must be set exactly in OIDC mode (built at start, see `server::run`).
    pub fn new(
        config: Arc<Config>,
        store: Store,
        keys: KeySet,
        oidc: Option<OidcVerifier>,
        tls: bool,
    ) -> AppState {
        debug_assert_eq!(oidc.is_some(), config.auth.mode == AuthMode::Oidc);
        let body_limits = BodyLimits {
            max_bytes: config.http.max_body_bytes,
            read_timeout: std::time::Duration::from_secs(config.http.body_read_timeout_seconds),
        };
        let limits = RateLimits::new(&config.rate_limit);
        let cors = Cors::new(&config.http.cors_origins);
        // Entries were validated with the config.
        let trusted_proxies = config
            .http
            .trusted_proxies
            .iter()
            .filter_map(|p| Cidr::parse(p))
            .collect();
        AppState {
            config,
            store,
            body_limits,
            tls,
            keys,
            ui: crate::ui::UiState::new(),
            verified: Default::default(),
            oidc,
            login_throttle: LoginThrottle::default(),
            limits,
            cors,
            trusted_proxies,
            key_stamps: Mutex::new(HashMap::new()),
            requests: Default::default(),
            frontiers: Default::default(),
        }
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Internal-token verification, memoised per token (see `VerifiedTokens`).
    pub fn verify_internal(
        &self,
        token: &str,
    ) -> Result<crate::auth::jwt::InternalClaims, crate::auth::jwt::TokenError> {
        self.verified.verify_internal(&self.keys, token)
    }

    /// Records an API key use off the request path: a background write, at most once a
    /// minute per key, so authentication never waits for a commit.
    pub fn api_key_used(&self, env: Uuid, key: Uuid) {
        let now = Instant::now();
        {
            let mut stamps = match self.key_stamps.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            if stamps
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < KEY_STAMP_INTERVAL)
            {
                return;
            }
            stamps.insert(key, now);
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            let at = crate::clock::now_micros();
            let res: Result<(), crate::store::StoreError> = store
                .write(move |tx| crate::store::identity::stamp_api_key(tx, env, key, at))
                .await;
            if let Err(e) = res {
                tracing::warn!(error = %e, "could not record API key use");
            }
        });
    }
}

/// Facts about the request that are not in it.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub request_id: String,
    pub peer: SocketAddr,
    /// The socket peer, or the forwarded client behind a trusted proxy.
    pub client_ip: std::net::IpAddr,
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// hyper's service function: never fails, every error becomes an answer.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<HttpResponse, Infallible> {
    let started = Instant::now();
    let request_id = incoming_request_id(&req).unwrap_or_else(new_request_id);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let ctx = RequestCtx {
        request_id: request_id.clone(),
        peer,
        client_ip: client_ip::client_ip(peer.ip(), req.headers(), &state.trusted_proxies),
    };
    let request_headers = state.cors.as_ref().map(|_| req.headers().clone());

    let preflight = state
        .cors
        .as_ref()
        .and_then(|c| c.preflight(&method, req.headers()));
    let mut close = false;
    let (name, result) = match (preflight, router::route(&method, &path)) {
        (Some(answer), _) => ("cors_preflight", Ok(answer)),
        (None, Ok(router::Endpoint::Ui(route))) if state.config.ui.enabled => (
            route.name(),
            crate::ui::dispatch(&state, route, req, &ctx).await,
        ),
        (None, Ok(router::Endpoint::Ui(_))) => ("unmatched", Err(ApiError::not_found("Not Found"))),
        (None, Ok(endpoint)) => {
            close = endpoint.is_lock_route() && sdk_lock_client(req.headers());
            // A handler that panics (redb does on some damaged pages) answers a JSON 500;
            // the hook logged the panic, and the connection and the server go on.
            let name = endpoint.name();
            let answer = crate::panics::CatchPanic(api::dispatch(&state, endpoint, req, &ctx))
                .await
                .unwrap_or_else(|panic| Err(ApiError::Internal(format!("panic: {panic}"))));
            (name, answer)
        }
        (None, Err(e)) => ("unmatched", Err(e)),
    };
    let mut resp = result.unwrap_or_else(|e| {
        if let ApiError::Internal(cause) = &e {
            tracing::error!(request_id = %request_id, endpoint = name, cause = %cause, "internal error");
        }
        e.into_response()
    });
    add_common_headers(resp.headers_mut(), &request_id, state.tls);
    if close {
        // hyper ends the connection after an answer that says so.
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let (Some(cors), Some(headers)) = (&state.cors, &request_headers) {
        cors.decorate(headers, &mut resp);
    }
    let (status, elapsed) = (resp.status().as_u16(), started.elapsed());
    state.requests.record(name, status, elapsed);
    tracing::info!(
        target: "access",
        method = %method,
        path = %path,
        endpoint = name,
        status,
        latency_us = elapsed.as_micros() as u64,
        request_id = %request_id,
        "request"
    );
    Ok(resp)
}

/// The SDK's lock manager (httpx's async client) is driven by `build_sequential`
/// through a new event loop per call, and a kept-alive connection bound to the previous,
/// closed loop makes its next lock call fail client-side (docs/sdk-0.1.0-wire.md §5.2).
/// Closing the connection after each lock answer to httpx clients avoids that; other
/// clients keep their connections, so lock throughput does not pay a TCP handshake per
/// call (docs/locks.md).
fn sdk_lock_client(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::USER_AGENT)
        .is_some_and(|ua| ua.as_bytes().starts_with(b"python-httpx/"))
}

/// A client-sent id is echoed if it is short, printable ASCII; otherwise we make one.
fn incoming_request_id(req: &Request<Incoming>) -> Option<String> {
    let v = req.headers().get(&X_REQUEST_ID)?.to_str().ok()?;
    let ok = !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| v.to_owned())
}

/// A UUIDv7 as 32 hex digits; its random bits come from `rand` like
/// [`crate::api::wire::random_u64`], not from a system call.
fn new_request_id() -> String {
    let millis = crate::clock::now_micros().div_euclid(1000) as u64;
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random())
        .into_uuid()
        .simple()
        .to_string()
}

/// The answer to a request head refused before hyper parsed it
/// (`server/head_check.rs`), with the headers, metrics and access-log line of every
/// other answer.
pub fn head_refusal(
    state: &AppState,
    peer: SocketAddr,
    err: ApiError,
) -> (http::response::Parts, bytes::Bytes) {
    let request_id = new_request_id();
    let (mut parts, body) = err.into_parts();
    add_common_headers(&mut parts.headers, &request_id, state.tls);
    let status = parts.status.as_u16();
    let name = "bad_request_head";
    state
        .requests
        .record(name, status, std::time::Duration::ZERO);
    tracing::info!(
        target: "access",
        peer = %peer,
        endpoint = name,
        status,
        request_id = %request_id,
        "request"
    );
    (parts, body)
}

fn add_common_headers(h: &mut http::HeaderMap, request_id: &str, tls: bool) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(X_REQUEST_ID.clone(), v);
    }
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // UI pages set `same-origin` (their form POSTs must carry an `Origin`).
    h.entry(http::header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    if tls {
        h.insert(
            http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

/// What a handler gets: the authenticated caller, the query, and the JSON body (broken
/// JSON is refused before a failed authentication, as upstream does).
pub struct Req {
    pub ctx: RequestCtx,
    pub caller: crate::auth::Caller,
    pub query: request::Query,
    pub headers: http::HeaderMap,
    pub body: Option<serde_json::Value>,
}

impl Req {
    /// The required body, typed; absent → 422 `missing`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        match &self.body {
            Some(v) => request::from_value(v),
            None => Err(missing_body()),
        }
    }

    /// A body whose fields all have defaults: absent means `{}`.
    pub fn json_or_default<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        match &self.body {
            Some(v) => request::from_value(v),
            None => Ok(T::default()),
        }
    }
}

/// FastAPI's 422 for a required body that was not sent.
pub fn missing_body() -> ApiError {
    ApiError::Validation(vec![response::ValidationItem::new(
        "missing",
        vec![serde_json::json!("body")],
        "Field required",
        serde_json::Value::Null,
    )])
}
