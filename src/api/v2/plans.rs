//! Plans (`v2-registry.md` §5.3): create, member chunks, seal, reads, and the build
//! frontier with its closure step (§6.4).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::wire::{
    frontier_members, items, plan_detail_out, plan_out, uuid, FrontierMemberOut, ItemBody,
};
use super::{env, now, path_id, raw, read};
use crate::domain::v2::{Code, Refusal, MAX_CHUNK_ITEMS};
use crate::http::response::{ok, ApiError, ApiResult};
use crate::http::{AppState, Req};
use crate::store::v2::lifecycle::unknown_build;
use crate::store::v2::ops;
use crate::store::v2::plans::{unknown_plan, ClosureOutcome, NewPlan};
use crate::store::v2::reads::{self, Frontier};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::plans::CreateBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    plan_id: Uuid,
    deployment_id: Uuid,
    #[serde(default)]
    #[schema(value_type = Object)]
    settings: Map<String, Value>,
    roots: Vec<ItemBody>,
}

/// `POST /builds/{id}/plans`: lookup-or-create by scope (201 when created).
pub async fn create(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let build = path_id("build_id", raw_id)?;
    let body: CreateBody = rq.json()?;
    let roots = items(body.roots, "roots")?;
    let (id, plan, was_created) = state
        .store
        .write_logged(ops::CreatePlan {
            env,
            build,
            plan: NewPlan {
                plan_id: body.plan_id.as_u128(),
                deployment: body.deployment_id.as_u128(),
                settings: Value::Object(body.settings).to_string(),
                roots,
            },
            now: now(),
        })
        .await?;
    let out = plan_out(id, &plan, was_created);
    Ok(ok(&out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::plans::MembersBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct MembersBody {
    items: Vec<ItemBody>,
}

/// `POST /plans/{id}/members`: one chunk of at most 1000 items, all or nothing.
pub async fn register_members(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let plan = path_id("plan_id", raw_id)?;
    let body: MembersBody = rq.json()?;
    if body.items.len() > MAX_CHUNK_ITEMS {
        return Err(Refusal::new(
            Code::ChunkTooLarge,
            format!("a chunk holds at most {MAX_CHUNK_ITEMS} items"),
        )
        .with("count", body.items.len())
        .into());
    }
    let items = items(body.items, "items")?;
    let counts = state
        .store
        .write_logged(ops::RegisterMembers {
            env,
            plan,
            items,
            now: now(),
        })
        .await?;
    Ok(ok(&counts))
}

/// `POST /plans/{id}/seal`.
pub async fn seal(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let plan = path_id("plan_id", raw_id)?;
    let row = state
        .store
        .write_logged(ops::SealPlan {
            env,
            plan,
            now: now(),
        })
        .await??;
    Ok(ok(&plan_out(plan, &row, false)))
}

pub async fn get(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let plan = path_id("plan_id", raw_id)?;
    read(state, move |s| {
        let d = reads::plan_detail(s, env, plan)?.ok_or_else(|| unknown_plan(plan))?;
        raw(&plan_detail_out(&d))
    })
    .await
}

/// `GET /plans/{id}/roots`.
pub async fn roots(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let plan = path_id("plan_id", raw_id)?;
    read(state, move |s| {
        let (p, roots) = reads::plan_roots(s, env, plan)?.ok_or_else(|| unknown_plan(plan))?;
        raw(&json!({
            "plan_id": uuid(plan),
            "build_id": uuid(p.build),
            "deployment_id": uuid(p.deployment),
            "settings_hash": p.settings_hash,
            "roots": frontier_members(&roots)?,
        }))
    })
    .await
}

/// `GET /builds/{id}/plans`: newest generation first.
pub async fn list(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let build = path_id("build_id", raw_id)?;
    read(state, move |s| {
        reads::build_row(s, env, build)?.ok_or_else(|| unknown_build(build))?;
        let plans = reads::build_plans(s, env, build)?;
        let out: Vec<_> = plans.iter().map(plan_detail_out).collect();
        raw(&json!({ "build_id": uuid(build), "plans": out }))
    })
    .await
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::plans::ConflictOut)]
pub(crate) struct ConflictOut<'a> {
    task_id: &'a str,
    fields: &'a [String],
    member_instance_id: Uuid,
    other_instance_id: Uuid,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::plans::ClosureOut)]
pub(crate) struct ClosureOut<'a> {
    admitted: u64,
    conflicts: Vec<ConflictOut<'a>>,
    build_failed: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::plans::FrontierOut)]
pub(crate) struct FrontierOut<'a> {
    build_id: Uuid,
    plan_id: Option<Uuid>,
    deployment_id: Option<Uuid>,
    settings_hash: Option<&'a str>,
    sealed: bool,
    plan_complete: bool,
    build_status: &'static str,
    reactive_app_name: Option<&'a str>,
    #[schema(value_type = Option<Object>)]
    reactive_tick_kwargs: Option<&'a serde_json::value::RawValue>,
    runnable: Vec<FrontierMemberOut<'a>>,
    discovery_jobs: Vec<FrontierMemberOut<'a>>,
    running: Vec<FrontierMemberOut<'a>>,
    closure: Option<ClosureOut<'a>>,
}

fn frontier_out<'a>(
    id: u128,
    f: &'a Frontier,
    closure: Option<&'a ClosureOutcome>,
) -> Result<FrontierOut<'a>, ApiError> {
    let plan = f.plan.as_ref();
    Ok(FrontierOut {
        build_id: uuid(id),
        plan_id: plan.map(|(pid, _)| uuid(*pid)),
        deployment_id: plan.map(|(_, p)| uuid(p.deployment)),
        settings_hash: plan.map(|(_, p)| p.settings_hash.as_str()),
        sealed: plan.is_some_and(|(_, p)| p.sealed_at.is_some()),
        plan_complete: f.plan_complete,
        build_status: f.build.status.as_str(),
        reactive_app_name: f.build.reactive_app_name.as_deref(),
        reactive_tick_kwargs: f
            .build
            .reactive_tick_kwargs
            .as_deref()
            .map(super::super::wire::raw)
            .transpose()?,
        runnable: frontier_members(&f.runnable)?,
        discovery_jobs: frontier_members(&f.discovery_jobs)?,
        running: frontier_members(&f.running)?,
        closure: closure.map(|c| ClosureOut {
            admitted: c.admitted,
            build_failed: c.build_failed,
            conflicts: c
                .conflicts
                .iter()
                .map(|k| ConflictOut {
                    task_id: &k.task_id,
                    fields: &k.fields,
                    member_instance_id: uuid(k.member_instance),
                    other_instance_id: uuid(k.other_instance),
                })
                .collect(),
        }),
    })
}

async fn read_frontier(state: &AppState, env: u128, id: u128) -> Result<Arc<Frontier>, ApiError> {
    let now = now();
    let memo = state.frontiers.clone();
    let log = state.store.change_log();
    state
        .store
        .read(move |tx| -> Result<Arc<Frontier>, ApiError> {
            Ok(memo
                .read(tx, &log, env, id, now)?
                .ok_or_else(|| unknown_build(id))?)
        })
        .await
}

/// `GET /builds/{id}/frontier` (§6.4). The closure step runs first; the read writes
/// only when it admits something or finds a conflict not yet failing the build (D33).
pub async fn frontier(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let mut f = read_frontier(state, env, id).await?;
    let mut closure = None;
    if !f.closure.is_empty() {
        let must_write = !f.closure.admit.is_empty() || !f.build.status.is_terminal();
        if must_write {
            let outcome = state
                .store
                .write_logged(ops::ClosePlan {
                    env,
                    build: id,
                    now: now(),
                })
                .await?;
            f = read_frontier(state, env, id).await?;
            closure = Some(outcome);
        } else {
            closure = Some(ClosureOutcome {
                admitted: 0,
                build_failed: f.build.status == crate::domain::v2::BuildStatus::Failed,
                conflicts: f.closure.conflicts.clone(),
            });
        }
    }
    Ok(ok(&frontier_out(id, &f, closure.as_ref())?))
}
