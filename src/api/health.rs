//! `GET /health` and `GET /metrics` (Prometheus text).

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::HeaderMap;
use http::Response;
use http_body_util::Full;
use serde::Serialize;
use serde_json::json;

use crate::auth::api_key::{digests_equal, hash};
use crate::auth::caller::not_authenticated;
use crate::http::metrics::write_histogram;
use crate::http::response::{ok, ApiError, ApiResult, HttpResponse};
use crate::http::AppState;
use crate::store::{WriterStats, BATCH_BOUNDS};

/// `{"status": "healthy"}` as upstream; while the disk is full (writes refused, reads
/// served) still 200, so that a load balancer keeps sending reads, but
/// `{"status": "degraded", "disk": "full", "writes": "refused"}`.
pub fn health(state: &AppState) -> HttpResponse {
    if state.store.disk_full() {
        ok(&json!({ "status": "degraded", "disk": "full", "writes": "refused" }))
    } else {
        ok(&json!({ "status": "healthy" }))
    }
}

/// `GET /api/v1/version` (upstream's web UI footer reads it). `api_version` names the
/// protocol generation of this path; `/api/v2` is served next to it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = health::VersionOut)]
pub struct VersionOut {
    server_version: &'static str,
    api_version: &'static str,
}

pub fn version() -> HttpResponse {
    ok(&VersionOut {
        server_version: crate::VERSION,
        api_version: "v1",
    })
}

pub fn metrics(state: &AppState, headers: &HeaderMap) -> ApiResult {
    if !state.config.metrics.enabled {
        return Err(ApiError::not_found("Not Found"));
    }
    if let Some(token) = &state.config.metrics.token {
        check_token(token, headers)?;
    }
    let s = state.store.writer_stats();
    let db_bytes = std::fs::metadata(state.config.db_path())
        .map(|m| m.len())
        .unwrap_or(0);
    let mut text = format!(
        "# HELP stardag_server_build_info The running binary's version (always 1).\n\
         # TYPE stardag_server_build_info gauge\n\
         stardag_server_build_info{{version=\"{}\"}} 1\n\
         # HELP stardag_store_commits_total Write transactions committed (one per batch).\n\
         # TYPE stardag_store_commits_total counter\n\
         stardag_store_commits_total {}\n\
         # HELP stardag_store_durable_commits_total Commits synced to the database file (checkpoints).\n\
         # TYPE stardag_store_durable_commits_total counter\n\
         stardag_store_durable_commits_total {}\n\
         # HELP stardag_store_journal_syncs_total Journal appends synced (each one fdatasync).\n\
         # TYPE stardag_store_journal_syncs_total counter\n\
         stardag_store_journal_syncs_total {}\n\
         # HELP stardag_store_write_ops_total Write operations applied (several per commit).\n\
         # TYPE stardag_store_write_ops_total counter\n\
         stardag_store_write_ops_total {}\n\
         # HELP stardag_store_max_batch Largest number of operations in one commit.\n\
         # TYPE stardag_store_max_batch gauge\n\
         stardag_store_max_batch {}\n\
         # HELP stardag_store_failed_batches_total Commits that failed as a whole.\n\
         # TYPE stardag_store_failed_batches_total counter\n\
         stardag_store_failed_batches_total {}\n\
         # HELP stardag_store_file_bytes Size of the database file.\n\
         # TYPE stardag_store_file_bytes gauge\n\
         stardag_store_file_bytes {}\n\
         # HELP stardag_store_disk_full 1 while writes are refused for lack of disk space (store.min_free_bytes).\n\
         # TYPE stardag_store_disk_full gauge\n\
         stardag_store_disk_full {}\n\
         # HELP stardag_store_disk_free_bytes Free bytes on the data dir's filesystem at the last check.\n\
         # TYPE stardag_store_disk_free_bytes gauge\n\
         stardag_store_disk_free_bytes {}\n",
        crate::VERSION,
        s.commits,
        s.durable_commits,
        s.journal_syncs,
        s.ops,
        s.max_batch,
        s.failed_batches,
        db_bytes,
        u8::from(state.store.disk_full()),
        state.store.free_bytes()
    );
    batch_histogram(&s, &mut text);
    state.requests.render(&mut text);
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(resp)
}

/// Operations per commit: the sum is every operation, the count every commit.
fn batch_histogram(s: &WriterStats, out: &mut String) {
    out.push_str(
        "# HELP stardag_store_batch_size Write operations per commit (group commit).\n\
         # TYPE stardag_store_batch_size histogram\n",
    );
    write_histogram(
        out,
        "stardag_store_batch_size",
        "",
        |i| BATCH_BOUNDS[i].to_string(),
        &s.batch_buckets,
        s.ops,
    );
}

/// `metrics.token` is set: the scraper must present it as a bearer token. Digests are
/// compared in constant time, like API keys.
fn check_token(token: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = presented.is_some_and(|p| digests_equal(&hash(p), &hash(token)));
    if ok {
        Ok(())
    } else {
        Err(not_authenticated())
    }
}
