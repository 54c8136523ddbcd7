//! Tasks inside builds (v1-tasks §4.2: registration, the seven event routes, build task
//! lists, events and graph) and environment-wide task reads (§4.3). Statuses come
//! materialised from the store; nothing here folds events.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::wire::{
    both, events_out, paging, random_u64, raw, task_out, task_with_status_out, to_raw, TaskOut,
};
use crate::clock::{format_micros, now_micros};
use crate::domain::events::EventType;
use crate::domain::events::TaskStatus;
use crate::domain::limits::{OUTPUT_URI_CHARS, TASK_ID_CHARS, TASK_NAME_CHARS, TASK_VERSION_CHARS};
use crate::http::request::{fields_too_long, invalid_param, items_too_long, path_uuid, reject};
use crate::http::response::echo;
use crate::http::response::{created, ok, ApiError, ApiResult, ValidationItem};
use crate::http::{AppState, Req};
use crate::store::redo::{RegisterTask, TaskEvent};
use crate::store::search::DocIndex;
use crate::store::tasks::{self, NewEvent, Registration};

/// The registration body (§4.2); unknown fields (the seed's `build_id`) are ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = tasks::RegisterBody)]
pub(crate) struct RegisterBody {
    task_id: String,
    task_name: String,
    #[schema(value_type = Object)]
    task_data: Map<String, Value>,
    #[serde(default)]
    task_namespace: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    output_uri: Option<String>,
    #[serde(default)]
    dependency_task_ids: Vec<String>,
}

fn registration(body: RegisterBody) -> Result<Registration, ApiError> {
    let mut errors = fields_too_long(&[
        ("task_id", Some(&body.task_id), TASK_ID_CHARS),
        ("task_name", Some(&body.task_name), TASK_NAME_CHARS),
        (
            "task_namespace",
            Some(&body.task_namespace),
            TASK_NAME_CHARS,
        ),
        ("version", body.version.as_deref(), TASK_VERSION_CHARS),
        ("output_uri", body.output_uri.as_deref(), OUTPUT_URI_CHARS),
    ]);
    errors.extend(items_too_long(
        "dependency_task_ids",
        &body.dependency_task_ids,
        TASK_ID_CHARS,
    ));
    reject(errors)?;
    Ok(Registration {
        search: DocIndex::task_data(&body.task_data),
        task_data: Value::Object(body.task_data).to_string(),
        task_id: body.task_id,
        task_namespace: body.task_namespace,
        task_name: body.task_name,
        version: body.version,
        output_uri: body.output_uri,
        dependency_task_ids: body.dependency_task_ids,
        salt: random_u64(),
    })
}

async fn register_in(state: &AppState, env: Uuid, build: Uuid, reg: Registration) -> ApiResult {
    let now = now_micros();
    let row = state
        .store
        .write_logged(RegisterTask {
            env,
            build,
            reg,
            now,
        })
        .await?;
    Ok(created(&task_out(env, &row)?))
}

/// `POST /builds/{b}/tasks` (§4.2, D17).
pub async fn register(state: &AppState, rq: Req, raw_build: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let (build, body) = both(path_uuid("build_id", raw_build), rq.json::<RegisterBody>())?;
    register_in(state, env, build, registration(body)?).await
}

/// `POST /tasks` (D6): the registration body plus `build_id`.
pub async fn register_seed(state: &AppState, rq: Req) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let build = match rq.body.as_ref().and_then(|b| b.get("build_id")) {
        Some(Value::String(s)) => Uuid::parse_str(s).map_err(|_| {
            invalid_param(
                "body",
                "build_id",
                "uuid_parsing",
                "Input should be a valid UUID",
                s,
            )
        }),
        Some(other) => Err(ApiError::Validation(vec![ValidationItem::new(
            "uuid_type",
            vec![json!("body"), json!("build_id")],
            "UUID input should be a string, bytes or UUID object",
            other.clone(),
        )])),
        None if rq.body.is_some() => Err(ApiError::Validation(vec![ValidationItem::new(
            "missing",
            vec![json!("body"), json!("build_id")],
            "Field required",
            rq.body.as_ref().map(echo).unwrap_or(Value::Null),
        )])),
        // No body at all: the body's own `missing` answer says it.
        None => Ok(Uuid::nil()),
    };
    let (body, build) = both(rq.json::<RegisterBody>(), build)?;
    register_in(state, env, build, registration(body)?).await
}

/// The seven task-event routes (§4.2): append the event, answer the per-build status
/// (§3.3). `error_message` travels with `fail`, `lock_owner` with `waiting-for-lock`.
pub async fn event(
    state: &AppState,
    rq: Req,
    raw_build: &str,
    hash: &str,
    event: EventType,
) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let build = path_uuid("build_id", raw_build)?;
    let message = match event {
        EventType::TaskFailed => rq.query.get("error_message").map(str::to_owned),
        _ => None,
    };
    let lock_owner = match event {
        EventType::TaskWaitingForLock => rq.query.get("lock_owner").map(str::to_owned),
        _ => None,
    };
    let status = state
        .store
        .write_logged(TaskEvent {
            env,
            build,
            task: hash.to_owned(),
            event: NewEvent {
                event_type: event,
                error_message: message,
                lock_owner,
                now: now_micros(),
            },
        })
        .await?;
    Ok(ok(&json!({"task_id": hash, "status": status})))
}

fn build_not_found() -> ApiError {
    ApiError::not_found("Build not found")
}

fn task_not_found() -> ApiError {
    ApiError::not_found("Task not found")
}

/// `GET /builds/{b}/tasks`: member tasks with global status (D18), task creation order.
pub async fn build_tasks(state: &AppState, rq: Req, raw_build: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let build = path_uuid("build_id", raw_build)?;
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let rows = tasks::build_tasks(tx, env, build)?.ok_or_else(build_not_found)?;
            let out = rows
                .iter()
                .map(|(t, s)| task_with_status_out(env, t, s))
                .collect::<Result<Vec<_>, _>>()?;
            to_raw(&out)
        })
        .await?;
    Ok(ok(&body))
}

/// `GET /builds/{b}/events`: all events of the build, oldest first.
pub async fn build_events(state: &AppState, rq: Req, raw_build: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let build = path_uuid("build_id", raw_build)?;
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let events = tasks::build_events(tx, env, build)?.ok_or_else(build_not_found)?;
            to_raw(&events_out(&events)?)
        })
        .await?;
    Ok(ok(&body))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = tasks::Node)]
pub(crate) struct Node<'a> {
    id: Uuid,
    task_id: &'a str,
    task_name: &'a str,
    task_namespace: &'a str,
    status: TaskStatus,
    asset_count: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = tasks::Edge)]
pub(crate) struct Edge {
    source: Uuid,
    target: Uuid,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = tasks::Graph)]
pub(crate) struct Graph<'a> {
    nodes: Vec<Node<'a>>,
    edges: Vec<Edge>,
}

/// `GET /builds/{b}/graph`: member tasks as nodes, stored edges between them (edges are
/// environment-wide, so ones recorded by other builds show too).
pub async fn build_graph(state: &AppState, rq: Req, raw_build: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let build = path_uuid("build_id", raw_build)?;
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let (nodes, edges) = tasks::build_graph(tx, env, build)?.ok_or_else(build_not_found)?;
            to_raw(&Graph {
                nodes: nodes
                    .iter()
                    .map(|(t, s)| Node {
                        id: t.id,
                        task_id: &t.task_id,
                        task_name: &t.task_name,
                        task_namespace: &t.task_namespace,
                        status: s.global.status,
                        asset_count: s.asset_count,
                    })
                    .collect(),
                edges: edges
                    .into_iter()
                    .map(|(source, target)| Edge { source, target })
                    .collect(),
            })
        })
        .await?;
    Ok(ok(&body))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = tasks::TaskPage)]
pub(crate) struct TaskPage<'a> {
    tasks: Vec<TaskOut<'a>>,
    total: u64,
    page: i64,
    page_size: i64,
}

/// `GET /tasks`: newest first; `task_name` exact, `task_namespace` exact with "" meaning
/// no filter (§4.3).
pub async fn list(state: &AppState, rq: Req) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let (offset, page, page_size) = paging(&rq.query, 20)?;
    let name = rq.query.get("task_name").map(str::to_owned);
    let namespace = rq
        .query
        .get("task_namespace")
        .filter(|ns| !ns.is_empty())
        .map(str::to_owned);
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let (rows, total) = tasks::list_tasks(
                tx,
                env,
                name.as_deref(),
                namespace.as_deref(),
                offset,
                page_size as usize,
            )?;
            to_raw(&TaskPage {
                tasks: rows
                    .iter()
                    .map(|t| task_out(env, t))
                    .collect::<Result<Vec<_>, _>>()?,
                total,
                page,
                page_size,
            })
        })
        .await?;
    Ok(ok(&body))
}

/// `GET /tasks/{t}`.
pub async fn get(state: &AppState, rq: Req, hash: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let hash = hash.to_owned();
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let row = tasks::task_by_hash(tx, env, &hash)?.ok_or_else(task_not_found)?;
            to_raw(&task_out(env, &row)?)
        })
        .await?;
    Ok(ok(&body))
}

/// `GET /tasks/{t}/events`: the task's events across builds, newest first.
pub async fn events(state: &AppState, rq: Req, hash: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let hash = hash.to_owned();
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let events = tasks::task_events(tx, env, &hash)?.ok_or_else(task_not_found)?;
            to_raw(&events_out(&events)?)
        })
        .await?;
    Ok(ok(&body))
}

/// The SDK's `TaskMetadata`: all eleven keys present, `version` a string.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = tasks::Metadata)]
pub(crate) struct Metadata<'a> {
    id: &'a str,
    #[schema(value_type = Object)]
    body: &'a RawValue,
    name: &'a str,
    namespace: &'a str,
    version: &'a str,
    output_uri: Option<&'a str>,
    status: TaskStatus,
    registered_at: String,
    started_at: Option<String>,
    completed_at: Option<String>,
    error_message: Option<&'a str>,
}

/// `GET /tasks/{t}/metadata` (the SDK's `task_get_metadata`); status from the one global
/// derivation (D18).
pub async fn metadata(state: &AppState, rq: Req, hash: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let hash = hash.to_owned();
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let (row, st) = tasks::task_with_state(tx, env, &hash)?.ok_or_else(task_not_found)?;
            let g = &st.global;
            to_raw(&Metadata {
                id: &row.task_id,
                body: raw(&row.task_data)?,
                name: &row.task_name,
                namespace: &row.task_namespace,
                version: row.version.as_deref().unwrap_or(""),
                output_uri: row.output_uri.as_deref(),
                status: g.status,
                registered_at: format_micros(row.created_at),
                started_at: g.started_at.map(format_micros),
                completed_at: g.completed_at.map(format_micros),
                error_message: g.error_message.as_deref(),
            })
        })
        .await?;
    Ok(ok(&body))
}
