//! The UI's request wrapper, its error type and the HTML answers with their security
//! headers (ui.md §3.4: strict CSP without inline script, `no-store`).

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use maud::{html, Markup};

use crate::http::request::{read_body, BodyLimits, Query};
use crate::http::response::{ApiError, HttpResponse};
use crate::http::{AppState, RequestCtx};
use crate::store::StoreError;

/// The policy of every UI answer: nothing but this origin, no inline script or style,
/// no framing, forms only to this origin.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
form-action 'self'";

/// Largest form body the UI reads (forms carry names and short texts).
const FORM_BYTES: u64 = 64 * 1024;

pub struct UiReq {
    pub parts: http::request::Parts,
    pub ctx: RequestCtx,
    pub query: Query,
}

impl UiReq {
    pub fn new(_state: &AppState, parts: http::request::Parts, ctx: &RequestCtx) -> UiReq {
        let query = Query::parse(parts.uri.query());
        UiReq {
            parts,
            ctx: ctx.clone(),
            query,
        }
    }

    /// The path and query, as a `next` target after signing in.
    pub fn path_and_query(&self) -> String {
        self.parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into())
    }

    /// An `application/x-www-form-urlencoded` body (what a plain HTML form sends).
    pub async fn form(&self, state: &AppState, body: Incoming) -> Result<Query, UiError> {
        let limits = BodyLimits {
            max_bytes: FORM_BYTES,
            read_timeout: state.body_limits.read_timeout,
        };
        let raw = read_body(&self.parts.headers, body, limits).await?;
        let text = std::str::from_utf8(&raw)
            .map_err(|_| ApiError::BadRequest("Form body is not UTF-8".into()))?;
        Ok(Query::parse(Some(text)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Unknown, or not the caller's: never says which (D9).
    #[error("Not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    /// No valid session: pages go to the login form, with `next` back here.
    #[error("Not authenticated")]
    SignIn { next: String, expired: bool },
    /// A POST without a valid CSRF token or from another origin.
    #[error("Forbidden")]
    Csrf,
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        UiError::Api(e.into())
    }
}

impl UiError {
    /// The JSON answer of the polling endpoints.
    pub fn into_api(self) -> ApiError {
        match self {
            UiError::Api(e) => e,
            UiError::NotFound => ApiError::not_found("Not Found"),
            UiError::Forbidden(m) => ApiError::Forbidden(m),
            UiError::SignIn { .. } => ApiError::Unauthorized {
                detail: "Not authenticated".into(),
                challenge: None,
            },
            UiError::Csrf => ApiError::Forbidden("CSRF check failed".into()),
        }
    }
}

/// An HTML answer with the UI's headers.
pub fn html(status: StatusCode, page: Markup) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(page.into_string())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    security_headers(h);
    resp
}

/// CSP, framing, referrer and caching headers of every UI answer. Pages are never
/// cached (they may show secrets, and the back button after sign-out must not show
/// them); `same-origin` referrers keep the `Origin` header on form POSTs.
pub fn security_headers(h: &mut http::HeaderMap) {
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `303 See Other` to a same-origin path.
pub fn redirect(location: &str) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    security_headers(resp.headers_mut());
    resp
}

/// A JSON answer for the polling endpoints, with the UI's headers.
pub fn json(value: &serde_json::Value, etag: Option<&str>) -> HttpResponse {
    let mut resp = crate::http::response::ok(value);
    let h = resp.headers_mut();
    security_headers(h);
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(t).ok()) {
        h.insert(http::header::ETAG, tag);
    }
    resp
}

/// A weak ETag over a fingerprint of the state.
pub fn etag_of(fingerprint: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, fingerprint.as_bytes());
    let hex: String = d.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("W/\"{hex}\"")
}

/// The request's `If-None-Match`, for a check made inside a read.
pub fn sent_etags(rq: &UiReq) -> Option<String> {
    rq.parts
        .headers
        .get(http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Whether an `If-None-Match` value names `etag`.
pub fn etag_listed(sent: Option<&str>, etag: &str) -> bool {
    sent.is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
}

/// Whether the request's `If-None-Match` names `etag`.
pub fn if_none_match(rq: &UiReq, etag: &str) -> bool {
    etag_listed(sent_etags(rq).as_deref(), etag)
}

/// `304 Not Modified` for a poll whose state did not change.
pub fn not_modified(etag: &str) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    let h = resp.headers_mut();
    security_headers(h);
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(http::header::ETAG, v);
    }
    resp
}

/// The HTML page for an error (ui.md §4 "Errors").
pub fn error_page(state: &AppState, e: UiError) -> HttpResponse {
    let (status, title, text) = match &e {
        UiError::SignIn { next, expired } => {
            let mut to = format!("/login?next={}", super::layout::url_encode(next));
            if *expired {
                to.push_str("&expired=1");
            }
            return redirect(&to);
        }
        UiError::NotFound => (
            StatusCode::NOT_FOUND,
            "Not found",
            "Not found — or you are not a member of this workspace.".to_owned(),
        ),
        UiError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m.clone()),
        UiError::Csrf => (
            StatusCode::FORBIDDEN,
            "Form refused",
            "This form expired or did not come from this site. Go back, reload the page \
             and try again."
                .to_owned(),
        ),
        UiError::Api(api) => {
            let status = api.status();
            let text = match status {
                StatusCode::NOT_FOUND => {
                    "Not found — or you are not a member of this workspace.".to_owned()
                }
                StatusCode::INTERNAL_SERVER_ERROR => "Internal server error".to_owned(),
                _ => super::layout::detail_text(&api.detail()),
            };
            let title = match status {
                StatusCode::NOT_FOUND => "Not found",
                StatusCode::TOO_MANY_REQUESTS => "Too many requests",
                StatusCode::FORBIDDEN => "Not allowed",
                s if s.is_server_error() => "Server error",
                _ => "Request refused",
            };
            if let ApiError::Internal(cause) = api {
                tracing::error!(cause = %cause, "UI internal error");
            }
            (status, title, text)
        }
    };
    let body = html! {
        section.card.error-page {
            h1 { (title) }
            p { (text) }
            p { a href="/" { "Back to the start page" } }
        }
    };
    let mut resp = html(status, super::layout::bare(state, title, body));
    if let UiError::Api(api) = e {
        if let Some(v) = api.into_response().headers().get(http::header::RETRY_AFTER) {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, v.clone());
        }
    }
    resp
}
