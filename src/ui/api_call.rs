//! UI actions run the API's own handlers (`api::handle`) with the `Caller` the UI built
//! from its session: the same validation, role checks, error texts and writes as the
//! JSON API, with nothing copied.

use http_body_util::BodyExt;
use serde_json::Value;

use super::response::UiReq;
use crate::auth::Caller;
use crate::http::request::Query;
use crate::http::response::ApiError;
use crate::http::router::Endpoint;
use crate::http::{AppState, Req};

/// Calls `endpoint` as `caller` with an optional JSON body and query string; the
/// handler's JSON answer (`Null` for 204), or its error.
pub async fn call(
    state: &AppState,
    rq: &UiReq,
    caller: Caller,
    endpoint: Endpoint,
    query: &str,
    body: Option<Value>,
) -> Result<Value, ApiError> {
    let req = Req {
        ctx: rq.ctx.clone(),
        caller,
        query: Query::parse(Some(query)),
        headers: http::HeaderMap::new(),
        body,
    };
    let resp = crate::api::handle(state, endpoint, req).await?;
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::Internal(format!("reading a handler's answer: {e}")))?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Internal(format!("handler answer: {e}")))
}
