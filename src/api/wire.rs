//! Response shapes of the task-tracking routes (v1-tasks §4.0), built from store rows,
//! and the request helpers those routes share.

use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::clock::format_micros;
use crate::domain::events::{BuildStatus, EventType, TaskStatus};
use crate::http::request::Query;
use crate::http::response::ApiError;
use crate::store::identity;
use crate::store::tasks::{BuildRow, StoredAsset, StoredEvent, TaskRow, TaskStateRow};
use crate::store::{Reader, StoreError};

/// Random bits for ids drawn off the writer thread. From the thread's seeded CSPRNG
/// (`rand`), not the OS: a `getrandom` call per id was two system calls per request.
/// Secrets (API keys, passwords' salts, signing keys) still come from ring's
/// `SystemRandom`.
pub fn random_u64() -> u64 {
    rand::random()
}

fn ts_opt(micros: Option<i64>) -> Option<String> {
    micros.map(format_micros)
}

/// Serialises a response inside a read closure: the result owns its text, so borrowed
/// shapes need no intermediate `Value` tree.
pub fn to_raw<T: Serialize>(v: &T) -> Result<Box<RawValue>, ApiError> {
    serde_json::value::to_raw_value(v).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Stored JSON text, embedded as is (it was valid JSON when stored).
pub fn raw(text: &str) -> Result<&RawValue, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::Internal(format!("stored JSON: {e}")))
}

/// Runs two validations and answers every failure at once, as FastAPI lists all
/// invalid parameters in one 422.
pub fn both<A, B>(a: Result<A, ApiError>, b: Result<B, ApiError>) -> Result<(A, B), ApiError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(ApiError::Validation(mut x)), Err(ApiError::Validation(y))) => {
            x.extend(y);
            Err(ApiError::Validation(x))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// `page` (≥ 1) and `page_size` (1..=100) with the given default size, as (offset, page,
/// page_size).
pub fn paging(query: &Query, default_size: i64) -> Result<(usize, i64, i64), ApiError> {
    let (page, size) = both(
        query.int_in("page", 1, 1, i64::MAX),
        query.int_in("page_size", default_size, 1, 100),
    )?;
    let offset = (page - 1).saturating_mul(size);
    Ok((usize::try_from(offset).unwrap_or(usize::MAX), page, size))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = wire::TriggeredBy)]
pub struct TriggeredBy {
    id: String,
    email: String,
    display_name: Option<String>,
}

/// §3.2: the winning event's `triggered_by_user_id` names a user by `external_id`.
pub fn triggered_by(r: &impl Reader, row: &BuildRow) -> Result<Option<TriggeredBy>, StoreError> {
    let Some(ext) = row.state.triggered_by_user_id.as_deref() else {
        return Ok(None);
    };
    Ok(identity::user_by_external(r, ext)?.map(|u| TriggeredBy {
        id: u.external_id,
        email: u.email,
        display_name: u.display_name,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = wire::BuildOut)]
pub struct BuildOut<'a> {
    id: Uuid,
    environment_id: Uuid,
    user_id: Option<Uuid>,
    name: &'a str,
    description: Option<&'a str>,
    commit_hash: Option<&'a str>,
    root_task_ids: &'a [String],
    created_at: String,
    status: BuildStatus,
    started_at: Option<String>,
    completed_at: Option<String>,
    status_triggered_by_user: Option<TriggeredBy>,
}

pub fn build_out(env: Uuid, row: &BuildRow, user: Option<TriggeredBy>) -> BuildOut<'_> {
    BuildOut {
        id: row.id,
        environment_id: env,
        user_id: row.user_id,
        name: &row.name,
        description: row.description.as_deref(),
        commit_hash: row.commit_hash.as_deref(),
        root_task_ids: &row.root_task_ids,
        created_at: format_micros(row.created_at),
        status: row.state.status,
        started_at: ts_opt(row.state.started_at),
        completed_at: ts_opt(row.state.completed_at),
        status_triggered_by_user: user,
    }
}

/// A task's stored fields as every task answer shows them: [`TaskOut`] puts the id in
/// front, a search result (which has no id) its status columns after.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = wire::TaskFields)]
pub struct TaskFields<'a> {
    task_id: &'a str,
    environment_id: Uuid,
    task_namespace: &'a str,
    task_name: &'a str,
    #[schema(value_type = Object)]
    task_data: &'a RawValue,
    version: Option<&'a str>,
    output_uri: Option<&'a str>,
    created_at: String,
}

pub fn task_fields(env: Uuid, row: &TaskRow) -> Result<TaskFields<'_>, ApiError> {
    Ok(TaskFields {
        task_id: &row.task_id,
        environment_id: env,
        task_namespace: &row.task_namespace,
        task_name: &row.task_name,
        task_data: raw(&row.task_data)?,
        version: row.version.as_deref(),
        output_uri: row.output_uri.as_deref(),
        created_at: format_micros(row.created_at),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = wire::TaskOut)]
pub struct TaskOut<'a> {
    id: Uuid,
    #[serde(flatten)]
    fields: TaskFields<'a>,
}

pub fn task_out(env: Uuid, row: &TaskRow) -> Result<TaskOut<'_>, ApiError> {
    Ok(TaskOut {
        id: row.id,
        fields: task_fields(env, row)?,
    })
}

/// TaskWithStatusResponse: the task plus its global status (§3.4 batched, D18).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = wire::TaskWithStatusOut)]
pub struct TaskWithStatusOut<'a> {
    #[serde(flatten)]
    task: TaskOut<'a>,
    status: TaskStatus,
    started_at: Option<String>,
    completed_at: Option<String>,
    error_message: Option<&'a str>,
    asset_count: u64,
    waiting_for_lock: bool,
    status_build_id: Option<Uuid>,
}

pub fn task_with_status_out<'a>(
    env: Uuid,
    row: &'a TaskRow,
    state: &'a TaskStateRow,
) -> Result<TaskWithStatusOut<'a>, ApiError> {
    let g = &state.global;
    Ok(TaskWithStatusOut {
        task: task_out(env, row)?,
        status: g.status,
        started_at: ts_opt(g.started_at),
        completed_at: ts_opt(g.completed_at),
        error_message: g.error_message.as_deref(),
        asset_count: state.asset_count,
        waiting_for_lock: g.waiting_for_lock,
        status_build_id: g.status_build_id.map(Uuid::from_u128),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = wire::EventOut)]
pub struct EventOut<'a> {
    id: Uuid,
    build_id: Uuid,
    /// The internal task id, not the hash (§4.0).
    task_id: Option<Uuid>,
    event_type: EventType,
    created_at: String,
    error_message: Option<&'a str>,
    #[schema(value_type = Option<Object>)]
    event_metadata: Option<&'a RawValue>,
}

pub fn event_out(e: &StoredEvent) -> Result<EventOut<'_>, ApiError> {
    Ok(EventOut {
        id: e.id,
        build_id: e.build_id,
        task_id: e.row.task,
        event_type: e.row.event_type,
        created_at: format_micros(e.row.at),
        error_message: e.row.error_message.as_deref(),
        event_metadata: e.row.metadata.as_deref().map(raw).transpose()?,
    })
}

pub fn events_out(events: &[StoredEvent]) -> Result<Vec<EventOut<'_>>, ApiError> {
    events.iter().map(event_out).collect()
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = wire::AssetOut)]
pub struct AssetOut<'a> {
    id: Uuid,
    /// The task hash (§4.0).
    task_id: &'a str,
    asset_type: &'a str,
    name: &'a str,
    #[schema(value_type = Object)]
    body: &'a RawValue,
    created_at: String,
}

pub fn assets_out<'a>(
    hash: &'a str,
    assets: &'a [StoredAsset],
) -> Result<Vec<AssetOut<'a>>, ApiError> {
    assets
        .iter()
        .map(|a| {
            Ok(AssetOut {
                id: a.row.id,
                task_id: hash,
                asset_type: &a.asset_type,
                name: &a.name,
                body: raw(&a.row.body)?,
                created_at: format_micros(a.row.created_at),
            })
        })
        .collect()
}
