//! The request path: request id → route → (auth) → handler → JSON answer, with the
//! security headers and one access-log line added to every answer.

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

use crate::api;
use crate::config::Config;
use crate::store::Store;
use request::BodyLimits;
use response::{ApiError, HttpResponse};

/// Everything a handler may use; shared by all connections.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub body_limits: BodyLimits,
    /// HSTS is only sent over TLS.
    pub tls: bool,
}

impl AppState {
    pub fn new(config: Arc<Config>, store: Store, tls: bool) -> AppState {
        let body_limits = BodyLimits {
            max_bytes: config.http.max_body_bytes,
            read_timeout: std::time::Duration::from_secs(config.http.body_read_timeout_seconds),
        };
        AppState {
            config,
            store,
            body_limits,
            tls,
        }
    }
}

/// Facts about the request that are not in it.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub request_id: String,
    pub peer: SocketAddr,
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
    };

    let (name, result) = match router::route(&method, &path) {
        Ok(endpoint) => (
            endpoint.name(),
            api::dispatch(&state, endpoint, req, &ctx).await,
        ),
        Err(e) => ("unmatched", Err(e)),
    };
    let mut resp = result.unwrap_or_else(|e| {
        if let ApiError::Internal(cause) = &e {
            tracing::error!(request_id = %request_id, endpoint = name, cause = %cause, "internal error");
        }
        e.into_response()
    });
    add_common_headers(&mut resp, &request_id, state.tls);
    tracing::info!(
        target: "access",
        method = %method,
        path = %path,
        endpoint = name,
        status = resp.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        request_id = %request_id,
        "request"
    );
    Ok(resp)
}

/// A client-sent id is echoed if it is short, printable ASCII; otherwise we make one.
fn incoming_request_id(req: &Request<Incoming>) -> Option<String> {
    let v = req.headers().get(&X_REQUEST_ID)?.to_str().ok()?;
    let ok = !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| v.to_owned())
}

fn new_request_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn add_common_headers(resp: &mut HttpResponse, request_id: &str, tls: bool) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(X_REQUEST_ID.clone(), v);
    }
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if tls {
        h.insert(
            http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}
