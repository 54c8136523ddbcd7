//! Typed errors and their one mapping to HTTP: status, headers and `{"detail": …}`.

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::search::FilterErrors;
use crate::domain::AccessError;
use crate::server::head_check::HeadError;
use crate::store::locks::LockError;
use crate::store::tasks::TrackError;
use crate::store::StoreError;

pub type Body = Full<Bytes>;
pub type HttpResponse = Response<Body>;

/// One entry of FastAPI's 422 list: `{"type","loc","msg","input"}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValidationItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
}

impl ValidationItem {
    /// `input`, `loc` (keys may come from the input) and `msg` (serde's messages quote
    /// the input) are kept as bounded prefixes (see [`echo`]).
    pub fn new(kind: &str, loc: Vec<Value>, msg: impl Into<String>, input: Value) -> Self {
        let msg: String = msg.into();
        ValidationItem {
            kind: kind.into(),
            loc: loc.iter().map(echo).collect(),
            msg: crate::domain::limits::truncate_bytes(&msg, ECHO_BYTES).to_owned(),
            input: echo(&input),
        }
    }
}

/// Most entries a 422 lists; the first ones are kept.
pub const MAX_VALIDATION_ITEMS: usize = 32;

/// About how many bytes of a refused input a 422 echoes. pydantic echoes all of it, so
/// a refused body of megabytes would come back whole.
pub const ECHO_BYTES: usize = 1024;

/// A prefix of `input` worth about [`ECHO_BYTES`] of JSON: strings and keys are cut,
/// arrays and objects end once the budget is spent. Small inputs come back unchanged.
pub fn echo(input: &Value) -> Value {
    let mut budget = ECHO_BYTES;
    prefix(input, &mut budget)
}

fn prefix(value: &Value, budget: &mut usize) -> Value {
    match value {
        Value::String(s) => Value::String(take_str(s, budget).to_owned()),
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                if *budget == 0 {
                    break;
                }
                *budget -= 1; // the separator
                out.push(prefix(item, budget));
            }
            Value::Array(out)
        }
        Value::Object(fields) => {
            let mut out = serde_json::Map::new();
            for (key, item) in fields {
                if *budget == 0 {
                    break;
                }
                *budget -= 1;
                let key = take_str(key, budget).to_owned();
                out.insert(key, prefix(item, budget));
            }
            Value::Object(out)
        }
        // Numbers print in at most 24 bytes, `true`/`false`/`null` in 5.
        Value::Number(_) => {
            *budget = budget.saturating_sub(24);
            value.clone()
        }
        Value::Bool(_) | Value::Null => {
            *budget = budget.saturating_sub(5);
            value.clone()
        }
    }
}

fn take_str<'a>(s: &'a str, budget: &mut usize) -> &'a str {
    let cut = crate::domain::limits::truncate_bytes(s, *budget);
    *budget -= cut.len();
    cut
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{detail}")]
    Unauthorized {
        detail: String,
        /// `WWW-Authenticate` value, where upstream sends one.
        challenge: Option<&'static str>,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Method Not Allowed")]
    MethodNotAllowed(Vec<Method>),
    #[error("{0}")]
    Conflict(String),
    #[error("Request timeout")]
    RequestTimeout,
    #[error("Request body too large")]
    PayloadTooLarge,
    #[error("Request target too long")]
    UriTooLong,
    #[error("Request header fields too large")]
    HeaderFieldsTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("validation failed")]
    Validation(Vec<ValidationItem>),
    /// A status with an object `detail` (lock refusals, rate limits).
    #[error("{status}")]
    Structured {
        status: StatusCode,
        detail: Value,
        retry_after: Option<u64>,
    },
    #[error("Service temporarily unavailable")]
    Unavailable { retry_after: u64 },
    /// The disk is full (`store/disk.rs`): writes are refused until space is freed.
    #[error("Insufficient storage: the server's disk is full; writes are refused until space is freed, reads still work")]
    InsufficientStorage,
    /// The cause goes to the log only; the client sees a generic 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy | StoreError::ShuttingDown | StoreError::BatchFailed(_) => {
                ApiError::Unavailable { retry_after: 1 }
            }
            StoreError::DiskFull => ApiError::InsufficientStorage,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Workspace access refusals keep their upstream status and `detail` (v1-identity §3.7).
impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        let detail = e.detail().to_owned();
        match e.status() {
            404 => ApiError::NotFound(detail),
            403 => ApiError::Forbidden(detail),
            409 => ApiError::Conflict(detail),
            _ => ApiError::BadRequest(detail),
        }
    }
}

impl From<TrackError> for ApiError {
    fn from(e: TrackError) -> Self {
        match e {
            TrackError::BuildNotFound => ApiError::not_found("Build not found"),
            TrackError::TaskNotFound => ApiError::not_found("Task not found"),
            TrackError::Store(e) => e.into(),
        }
    }
}

/// Acquire refusals carry an object `detail` (§1.3): the SDK reads
/// `detail.error_message` and retries only these two.
impl From<LockError> for ApiError {
    fn from(e: LockError) -> Self {
        let refusal = |status: StatusCode, kind: &str, e: &LockError| ApiError::Structured {
            status,
            detail: json!({"status": kind, "error_message": e.to_string()}),
            retry_after: None,
        };
        match e {
            LockError::HeldByOther => refusal(StatusCode::LOCKED, "held_by_other", &e),
            LockError::LimitReached(_) => refusal(
                StatusCode::TOO_MANY_REQUESTS,
                "concurrency_limit_reached",
                &e,
            ),
            LockError::NotOwned => ApiError::Conflict(e.to_string()),
            LockError::NotFound | LockError::BuildNotFound | LockError::EnvironmentNotFound => {
                ApiError::NotFound(e.to_string())
            }
            LockError::Store(e) => e.into(),
        }
    }
}

/// v2 refusals (`v2-registry.md` §1.4, §8): `{"detail": {"code", "message", ...}}`.
impl From<crate::domain::v2::Refusal> for ApiError {
    fn from(r: crate::domain::v2::Refusal) -> Self {
        ApiError::Structured {
            status: StatusCode::from_u16(r.status).unwrap_or(StatusCode::CONFLICT),
            detail: r.detail(),
            retry_after: None,
        }
    }
}

impl From<crate::store::v2::V2Error> for ApiError {
    fn from(e: crate::store::v2::V2Error) -> Self {
        match e {
            crate::store::v2::V2Error::Refused(r) => r.into(),
            crate::store::v2::V2Error::Store(e) => e.into(),
        }
    }
}

/// Request heads refused before hyper parsed them (`server/head_check.rs`): the
/// statuses hyper would have sent, with a `detail`.
impl From<HeadError> for ApiError {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::TargetTooLong => ApiError::UriTooLong,
            HeadError::TooLarge => ApiError::HeaderFieldsTooLarge,
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

/// D20: one 422 item per refused filter part, naming it.
impl From<FilterErrors> for ApiError {
    fn from(e: FilterErrors) -> Self {
        ApiError::Validation(
            e.0.into_iter()
                .map(|f| {
                    ValidationItem::new(
                        "value_error",
                        vec![json!("query"), json!("filter")],
                        f.to_string(),
                        json!(f.part),
                    )
                })
                .collect(),
        )
    }
}

impl ApiError {
    pub fn not_found(detail: &str) -> Self {
        ApiError::NotFound(detail.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong => StatusCode::URI_TOO_LONG,
            ApiError::HeaderFieldsTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Structured { status, .. } => *status,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn detail(&self) -> Value {
        match self {
            ApiError::Validation(items) => {
                json!(items[..items.len().min(MAX_VALIDATION_ITEMS)])
            }
            ApiError::Structured { detail, .. } => detail.clone(),
            ApiError::Internal(_) => json!("Internal server error"),
            other => json!(other.to_string()),
        }
    }

    /// The response every error becomes. Internal causes are logged by the caller, which
    /// knows the request id.
    pub fn into_response(self) -> HttpResponse {
        let (parts, body) = self.into_parts();
        Response::from_parts(parts, Full::new(body))
    }

    /// [`ApiError::into_response`] as its head and body bytes, for the one answer not
    /// written by hyper (a refused request head).
    pub fn into_parts(self) -> (http::response::Parts, Bytes) {
        let body = json_bytes(&json!({ "detail": self.detail() }));
        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = self.status();
        let headers = &mut parts.headers;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match &self {
            ApiError::Unauthorized {
                challenge: Some(c), ..
            } => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(c));
            }
            ApiError::MethodNotAllowed(methods) => {
                let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
                if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                    headers.insert(ALLOW, v);
                }
            }
            ApiError::Structured {
                retry_after: Some(secs),
                ..
            }
            | ApiError::Unavailable { retry_after: secs } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(*secs));
            }
            _ => {}
        }
        (parts, body)
    }
}

/// A JSON answer with the given status.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> HttpResponse {
    let mut resp = Response::new(Full::new(json_bytes(value)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn json_bytes<T: Serialize + ?Sized>(value: &T) -> Bytes {
    // Serializing our own DTOs cannot fail; fall back to an empty object rather than panic.
    Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
}

pub fn ok<T: Serialize + ?Sized>(value: &T) -> HttpResponse {
    json_response(StatusCode::OK, value)
}

pub fn created<T: Serialize + ?Sized>(value: &T) -> HttpResponse {
    json_response(StatusCode::CREATED, value)
}

pub fn no_content() -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

pub type ApiResult = Result<HttpResponse, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn text_len(v: &Value) -> usize {
        serde_json::to_string(v).unwrap().len()
    }

    #[test]
    fn echo_keeps_small_inputs_and_cuts_large_ones() {
        let small = json!({"email": "a@b.c", "n": [1, 2.5, true, null]});
        assert_eq!(echo(&small), small);

        let long = "é".repeat(1 << 20);
        let cut = echo(&json!(long));
        assert!(long.starts_with(cut.as_str().unwrap()));
        assert!(text_len(&cut) <= ECHO_BYTES + 2);

        let zeros = json!(vec![0; 1 << 20]);
        assert!(text_len(&echo(&zeros)) < 4 * ECHO_BYTES);

        let mut fields = serde_json::Map::new();
        fields.insert("k".repeat(1 << 20), json!("v".repeat(1 << 20)));
        for i in 0..10_000 {
            fields.insert(format!("f{i}"), json!(i));
        }
        assert!(text_len(&echo(&Value::Object(fields))) < 4 * ECHO_BYTES);
    }

    #[test]
    fn validation_items_echo_a_bounded_input() {
        let item = ValidationItem::new("t", vec![], "m", json!("x".repeat(100_000)));
        assert!(text_len(&item.input) <= ECHO_BYTES + 2);
    }
}
