//! The error shapes every route may answer (src/http/response.rs builds them).

#![allow(dead_code)] // Only their schemas are used: the answers are built by ApiError.

use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `{"detail": "..."}`: v1 and identity refusals, 401, 404, 405, 413, 500.
#[derive(ToSchema)]
#[schema(as = errors::Detail)]
pub struct Detail {
    detail: String,
}

/// One entry of FastAPI's 422 list.
#[derive(ToSchema)]
#[schema(as = errors::ValidationItem)]
pub struct ValidationItem {
    #[schema(rename = "type")]
    kind: String,
    /// Where: `"body"`, `"query"` or `"path"`, then field names and list indexes.
    #[schema(value_type = Vec<Value>)]
    loc: Vec<Value>,
    msg: String,
    #[schema(value_type = Value)]
    input: Value,
}

/// 422: `{"detail": [{"type", "loc", "msg", "input"}, …]}`.
#[derive(ToSchema)]
#[schema(as = errors::ValidationError)]
pub struct ValidationError {
    detail: Vec<ValidationItem>,
}

/// `{"code", "message", …}`: v2 refusals carry the ids v2-registry §8 lists next to
/// them; rate limits use code `RATE_LIMIT`.
#[derive(ToSchema)]
#[schema(as = errors::RefusalDetail)]
pub struct RefusalDetail {
    code: String,
    message: String,
    #[schema(value_type = Object)]
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// `{"detail": {"code", "message", …}}`.
#[derive(ToSchema)]
#[schema(as = errors::Refusal)]
pub struct Refusal {
    detail: RefusalDetail,
}
