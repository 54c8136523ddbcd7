//! Handlers, one file per resource. [`dispatch`] is the second half of the route table:
//! a flat match from endpoint to handler.

mod health;

use http::Request;
use hyper::body::Incoming;

use crate::http::response::ApiResult;
use crate::http::router::Endpoint;
use crate::http::{AppState, RequestCtx};

pub async fn dispatch(
    state: &AppState,
    endpoint: Endpoint,
    _req: Request<Incoming>,
    _ctx: &RequestCtx,
) -> ApiResult {
    match endpoint {
        Endpoint::Health => Ok(health::health()),
        Endpoint::Metrics => health::metrics(state),
    }
}
