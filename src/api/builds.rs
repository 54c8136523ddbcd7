//! Builds (v1-tasks §4.1, D6 `PATCH /builds/{id}`): create, list, get, and the four
//! terminal transitions. Every lookup is keyed by the caller's environment, so a foreign
//! build answers like a missing one (D9).

use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::wire::{both, build_out, paging, random_u64, to_raw, triggered_by, BuildOut};
use crate::clock::now_micros;
use crate::domain::events::{non_empty, BuildStatus, EventType};
use crate::domain::limits::{COMMIT_HASH_CHARS, DESCRIPTION_CHARS, TASK_ID_CHARS, USER_REF_CHARS};
use crate::domain::slug;
use crate::http::request::{fields_too_long, items_too_long, path_uuid, reject, string_too_long};
use crate::http::response::{created, ok, ApiError, ApiResult, ValidationItem};
use crate::http::{AppState, Req};
use crate::store::redo::{CreateBuild, TransitionBuild};
use crate::store::tasks::{self, NewBuild};

/// `POST /builds` body; `environment_id` and `user_id` are accepted and ignored (§4.1).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = builds::CreateBody)]
pub(crate) struct CreateBody {
    #[serde(default)]
    commit_hash: Option<String>,
    #[serde(default)]
    root_task_ids: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

pub async fn create(state: &AppState, rq: Req) -> ApiResult {
    let scope = rq.caller.sdk()?;
    let body: CreateBody = rq.json()?;
    let mut errors = fields_too_long(&[
        (
            "commit_hash",
            body.commit_hash.as_deref(),
            COMMIT_HASH_CHARS,
        ),
        (
            "description",
            body.description.as_deref(),
            DESCRIPTION_CHARS,
        ),
    ]);
    errors.extend(items_too_long(
        "root_task_ids",
        &body.root_task_ids,
        TASK_ID_CHARS,
    ));
    reject(errors)?;
    let env = scope.environment_id;
    let new = NewBuild {
        user_id: scope.user_id,
        name: slug::build_name(random_u64()),
        description: body.description,
        commit_hash: body.commit_hash,
        root_task_ids: body.root_task_ids,
        salt: random_u64(),
    };
    let row = state
        .store
        .write_logged(CreateBuild {
            env,
            new,
            now: now_micros(),
        })
        .await?;
    Ok(created(&build_out(env, &row, None)))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = builds::BuildPage)]
pub(crate) struct BuildPage<'a> {
    builds: Vec<BuildOut<'a>>,
    total: u64,
    page: i64,
    page_size: i64,
}

/// `GET /builds`: newest first.
pub async fn list(state: &AppState, rq: Req) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let (offset, page, page_size) = paging(&rq.query, 20)?;
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let (rows, total) = tasks::list_builds(tx, env, offset, page_size as usize)?;
            let mut builds = Vec::with_capacity(rows.len());
            for row in &rows {
                builds.push(build_out(env, row, triggered_by(tx, row)?));
            }
            to_raw(&BuildPage {
                builds,
                total,
                page,
                page_size,
            })
        })
        .await?;
    Ok(ok(&body))
}

pub async fn get(state: &AppState, rq: Req, raw_build: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let build = path_uuid("build_id", raw_build)?;
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let row = tasks::build(tx, env, build)?
                .ok_or_else(|| ApiError::not_found("Build not found"))?;
            let user = triggered_by(tx, &row)?;
            to_raw(&build_out(env, &row, user))
        })
        .await?;
    Ok(ok(&body))
}

/// `POST /builds/{b}/complete|fail|cancel|exit-early` (§4.1). Bodies are ignored;
/// `error_message` (fail) and `reason` (exit-early) become the event's message, and
/// `triggered_by_user_id` its metadata (not for exit-early).
pub async fn transition(state: &AppState, rq: Req, raw_build: &str, event: EventType) -> ApiResult {
    let scope = rq.caller.sdk()?;
    let build = path_uuid("build_id", raw_build)?;
    let message = match event {
        EventType::BuildFailed => rq.query.get("error_message"),
        EventType::BuildExitEarly => rq.query.get("reason"),
        _ => None,
    };
    let triggered = match event {
        EventType::BuildExitEarly => None,
        _ => triggered_by_param(&rq)?,
    };
    apply_transition(
        state,
        scope.environment_id,
        build,
        event,
        message.map(str::to_owned),
        triggered,
    )
    .await
}

/// `?triggered_by_user_id=`: a user's `external_id`, stored in the event's metadata.
fn triggered_by_param(rq: &Req) -> Result<Option<String>, ApiError> {
    let value = non_empty(rq.query.get("triggered_by_user_id"));
    if let Some(v) = value {
        let loc = vec![json!("query"), json!("triggered_by_user_id")];
        reject(
            string_too_long(loc, v, USER_REF_CHARS)
                .into_iter()
                .collect(),
        )?;
    }
    Ok(value.map(str::to_owned))
}

async fn apply_transition(
    state: &AppState,
    env: Uuid,
    build: Uuid,
    event: EventType,
    message: Option<String>,
    triggered: Option<String>,
) -> ApiResult {
    let row = state
        .store
        .write_logged(TransitionBuild {
            env,
            build,
            event,
            message,
            triggered_by: triggered,
            now: now_micros(),
        })
        .await?;
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let user = triggered_by(tx, &row)?;
            to_raw(&build_out(env, &row, user))
        })
        .await?;
    Ok(ok(&body))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = builds::PatchBody)]
pub(crate) struct PatchBody {
    status: String,
    #[serde(default)]
    error_message: Option<String>,
}

/// `PATCH /builds/{id}` (D6): the same as the POST transition named by `status`.
pub async fn patch(state: &AppState, rq: Req, raw_build: &str) -> ApiResult {
    let scope = rq.caller.sdk()?;
    let body = rq.json::<PatchBody>().and_then(|b| {
        let event = BuildStatus::parse(&b.status)
            .and_then(EventType::from_build_patch_status)
            .ok_or_else(|| {
                ApiError::Validation(vec![ValidationItem::new(
                    "enum",
                    vec![json!("body"), json!("status")],
                    "Input should be 'completed', 'failed', 'cancelled' or 'exit_early'",
                    json!(b.status),
                )])
            })?;
        Ok((event, b.error_message))
    });
    let (build, (event, message)) = both(path_uuid("build_id", raw_build), body)?;
    let message = match event {
        EventType::BuildFailed | EventType::BuildExitEarly => message,
        _ => None,
    };
    let triggered = match event {
        EventType::BuildExitEarly => None,
        _ => triggered_by_param(&rq)?,
    };
    apply_transition(
        state,
        scope.environment_id,
        build,
        event,
        message,
        triggered,
    )
    .await
}
