//! Task reads (`v2-registry.md` §5.5): list, get with instances, executions, events,
//! artifacts.

use serde::Serialize;
use serde_json::json;

use super::wire::{artifact_out, event_out, execution_out, instance_out, task_out, TaskOut};
use super::{env, limit, raw, read};
use crate::domain::v2::TaskStatus;
use crate::http::request::invalid_param;
use crate::http::response::{ApiError, ApiResult};
use crate::http::{AppState, Req};
use crate::store::v2::claims::unknown_task;
use crate::store::v2::reads;
use crate::store::v2::schema::{Snapshot, TaskRow};

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::tasks::TaskPage)]
pub(crate) struct TaskPage<'a> {
    tasks: Vec<TaskOut<'a>>,
    next_cursor: Option<String>,
}

/// The start of a task's current execution.
fn started_at(s: &Snapshot, env: u128, t: &TaskRow) -> Result<Option<i64>, ApiError> {
    Ok(match t.execution {
        Some(e) => reads::execution_row(s, env, e)?.map(|e| e.started_at),
        None => None,
    })
}

/// `GET /tasks`: newest status first, cursor-paged.
pub async fn list(state: &AppState, rq: Req) -> ApiResult {
    let env = env(&rq)?;
    let limit = limit(&rq.query, 100, 500)?;
    let status = match rq.query.get("status") {
        None => None,
        Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
            invalid_param(
                "query",
                "status",
                "enum",
                "Input should be a task status",
                s,
            )
        })?),
    };
    let after =
        match rq.query.get("cursor").filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(reads::parse_cursor(c).ok_or_else(|| {
                invalid_param("query", "cursor", "value_error", "Invalid cursor", c)
            })?),
        };
    read(state, move |s| {
        let page = reads::list_tasks(s, env, status, limit, after)?;
        let mut starts = Vec::with_capacity(page.rows.len());
        for (_, t) in &page.rows {
            starts.push(started_at(s, env, t)?);
        }
        let tasks = page
            .rows
            .iter()
            .zip(starts)
            .map(|((id, t), at)| task_out(id, t, at))
            .collect();
        raw(&TaskPage {
            tasks,
            next_cursor: page.next,
        })
    })
    .await
}

/// `GET /tasks/{id}`: with its instances, newest first (`limit`, default 50).
pub async fn get(state: &AppState, rq: Req, task_id: String) -> ApiResult {
    let env = env(&rq)?;
    let limit = limit(&rq.query, 50, 500)?;
    read(state, move |s| {
        let t = reads::task_row(s, env, &task_id)?.ok_or_else(|| unknown_task(&task_id))?;
        let at = started_at(s, env, &t)?;
        let instances = reads::task_instances(s, env, &task_id, limit)?;
        let out = instances
            .iter()
            .map(|(id, i)| instance_out(*id, i))
            .collect::<Result<Vec<_>, _>>()?;
        raw(&task_out(&task_id, &t, at).with_instances(out))
    })
    .await
}

/// `GET /tasks/{id}/executions`: newest first, across builds.
pub async fn executions(state: &AppState, rq: Req, task_id: String) -> ApiResult {
    let env = env(&rq)?;
    let include_ended = rq.query.bool_or("include_ended", true)?;
    let limit = limit(&rq.query, 100, 500)?;
    read(state, move |s| {
        reads::task_row(s, env, &task_id)?.ok_or_else(|| unknown_task(&task_id))?;
        let rows = reads::task_executions(s, env, &task_id, include_ended, limit)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, e) in &rows {
            out.push(execution_out(*id, e, reads::in_current_plan(s, env, e)?)?);
        }
        raw(&json!({ "task_id": task_id, "executions": out }))
    })
    .await
}

/// `GET /tasks/{id}/events`: oldest first.
pub async fn events(state: &AppState, rq: Req, task_id: String) -> ApiResult {
    let env = env(&rq)?;
    let limit = limit(&rq.query, 500, 500)?;
    read(state, move |s| {
        reads::task_row(s, env, &task_id)?.ok_or_else(|| unknown_task(&task_id))?;
        let rows = reads::task_events(s, env, &task_id, limit)?;
        let out = rows.iter().map(event_out).collect::<Result<Vec<_>, _>>()?;
        raw(&json!({ "task_id": task_id, "events": out }))
    })
    .await
}

pub async fn artifacts(state: &AppState, rq: Req, task_id: String) -> ApiResult {
    let env = env(&rq)?;
    read(state, move |s| {
        reads::task_row(s, env, &task_id)?.ok_or_else(|| unknown_task(&task_id))?;
        let rows = reads::task_artifacts(s, env, &task_id)?;
        let out = rows
            .iter()
            .map(|(kind, name, a)| artifact_out(&task_id, kind, name, a))
            .collect::<Result<Vec<_>, _>>()?;
        raw(&json!({ "task_id": task_id, "artifacts": out }))
    })
    .await
}
