//! Member transitions (`v2-registry.md` §5.4), claim renewal and stopped executions
//! (§5.5).

use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::wire::{
    artifact_out, check_opt, check_str, invalid, items, transition_out, uuid, ItemBody,
};
use super::{env, now, path_id};
use crate::domain::v2::{Code, ExcludedReason, ExecOutcome, Refusal, Report, MAX_CHUNK_ITEMS};
use crate::http::response::{ok, ApiError, ApiResult};
use crate::http::router::MemberAction as Action;
use crate::http::{AppState, Req};
use crate::store::v2::claims::{ArtifactIn, MemberAction, ReportIn, Start, YieldIn};
use crate::store::v2::ops;

/// `POST /plans/{plan}/members/{task}/<action>`.
pub async fn act(
    state: &AppState,
    rq: Req,
    raw_plan: &str,
    task: String,
    action: Action,
) -> ApiResult {
    let env = env(&rq)?;
    let plan = path_id("plan_id", raw_plan)?;
    check_task_id(&task)?;
    let now = now();
    let w = &state.store;
    match action {
        Action::Start => {
            let start = start_input(&rq, plan, task)?;
            let t = w
                .write_logged(ops::StartMember { env, start, now })
                .await??;
            Ok(ok(&transition_out(&t)))
        }
        Action::Complete | Action::Fail | Action::Interrupt => {
            let report = match action {
                Action::Complete => Report::Complete,
                Action::Fail => Report::Fail,
                _ => Report::Interrupt,
            };
            let body: ReportBody = rq.json()?;
            let report = ReportIn {
                plan,
                task_id: task,
                execution: body.execution_id.as_u128(),
                report,
                error_message: body.error_message.as_deref().map(super::builds::message),
            };
            let t = w
                .write_logged(ops::ReportMember { env, report, now })
                .await??;
            Ok(ok(&transition_out(&t)))
        }
        Action::Preempt => {
            let body: ReportBody = rq.json()?;
            let execution = body.execution_id.as_u128();
            let t = w
                .write_logged(ops::Preempt {
                    env,
                    plan,
                    task_id: task,
                    execution,
                    now,
                })
                .await?;
            Ok(ok(&transition_out(&t)))
        }
        Action::Retry | Action::Cancel | Action::Skip => {
            let action = match action {
                Action::Retry => MemberAction::Retry,
                Action::Cancel => MemberAction::Cancel,
                _ => MemberAction::Skip,
            };
            let t = w
                .write_logged(ops::ActOnMember {
                    env,
                    plan,
                    task_id: task,
                    action,
                    now,
                })
                .await?;
            Ok(ok(&transition_out(&t)))
        }
        Action::Yield => yield_(state, rq, env, plan, task).await,
        Action::Exclude | Action::DiscoveryFailed => {
            exclude(state, rq, env, plan, task, action).await
        }
        Action::Artifacts => artifacts(state, rq, env, plan, task).await,
    }
}

/// A task id in a path: the SDK's opaque 1..64-character id.
fn check_task_id(task: &str) -> Result<(), ApiError> {
    let n = task.chars().count();
    if (1..=64).contains(&n) {
        return Ok(());
    }
    Err(crate::http::request::invalid_param(
        "path",
        "task_id",
        "string_too_long",
        "String should have at most 64 characters",
        &task.chars().take(64).collect::<String>(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::members::StartBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartBody {
    execution_id: Uuid,
    #[serde(default = "yes")]
    claim: bool,
    #[serde(default)]
    claim_ttl_seconds: Option<i64>,
    #[serde(default)]
    executor: Option<String>,
    #[serde(default)]
    executor_ref: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    executor_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    limit_keys: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

fn start_input(rq: &Req, plan: u128, task_id: String) -> Result<Start, ApiError> {
    let body: StartBody = rq.json()?;
    check_opt(&["executor"], &body.executor, 32)?;
    check_opt(&["executor_ref"], &body.executor_ref, 255)?;
    let mut keys = body.limit_keys.unwrap_or_default();
    if keys.len() > 64 {
        return Err(invalid(
            &["limit_keys"],
            "too_long",
            "List should have at most 64 items",
            json!(keys.len()),
        ));
    }
    for (i, k) in keys.iter().enumerate() {
        check_str(&["limit_keys", &i.to_string()], k, 1, 255)?;
    }
    keys.sort();
    keys.dedup();
    Ok(Start {
        plan,
        task_id,
        execution: body.execution_id.as_u128(),
        claim: body.claim,
        ttl_seconds: body.claim_ttl_seconds,
        executor: body.executor,
        executor_ref: body.executor_ref,
        executor_metadata: body.executor_metadata.map(|m| Value::Object(m).to_string()),
        limit_keys: keys,
    })
}

/// `complete`, `fail`, `interrupt`, `preempt`: the execution and, for the failing
/// ones, a message.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::members::ReportBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportBody {
    execution_id: Uuid,
    #[serde(default)]
    error_message: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::members::YieldBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct YieldBody {
    execution_id: Uuid,
    deployment_id: Uuid,
    batch_id: Uuid,
    items: Vec<ItemBody>,
    yielded: Vec<String>,
    #[serde(default)]
    suspend: bool,
}

async fn yield_(state: &AppState, rq: Req, env: u128, plan: u128, task_id: String) -> ApiResult {
    let body: YieldBody = rq.json()?;
    if body.items.is_empty() || body.items.len() > MAX_CHUNK_ITEMS {
        return Err(Refusal::new(
            Code::ChunkTooLarge,
            format!("a yield carries 1..{MAX_CHUNK_ITEMS} items"),
        )
        .with("count", body.items.len())
        .into());
    }
    let input = YieldIn {
        plan,
        task_id,
        execution: body.execution_id.as_u128(),
        deployment: body.deployment_id.as_u128(),
        batch: body.batch_id.as_u128(),
        items: items(body.items, "items")?,
        yielded: body.yielded,
        suspend: body.suspend,
    };
    let y = state
        .store
        .write_logged(ops::Yield {
            env,
            input,
            now: now(),
        })
        .await?;
    let r = &y.row;
    Ok(ok(&json!({
        "members": r.members,
        "dynamic_edges_created": r.dynamic_edges_created,
        "status": r.status.as_str(),
        "execution_id": r.execution.map(uuid),
        "claim_expires_at": super::wire::ts_opt(r.claim_expires_at),
        "replayed": y.replayed,
    })))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = v2::members::ExcludeBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExcludeBody {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::members::DiscoveryFailedBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiscoveryFailedBody {
    error: String,
}

async fn exclude(
    state: &AppState,
    rq: Req,
    env: u128,
    plan: u128,
    task_id: String,
    action: Action,
) -> ApiResult {
    let (reason, message) = if action == Action::Exclude {
        let body: ExcludeBody = rq.json_or_default()?;
        check_opt(&["reason"], &body.reason, 2000)?;
        (ExcludedReason::Operator, body.reason)
    } else {
        let body: DiscoveryFailedBody = rq.json()?;
        check_str(&["error"], &body.error, 1, usize::MAX)?;
        let error = super::builds::message(&body.error);
        (ExcludedReason::DiscoveryFailed, Some(error))
    };
    let x = state
        .store
        .write_logged(ops::Exclude {
            env,
            plan,
            task_id,
            reason,
            message,
            now: now(),
        })
        .await?;
    Ok(ok(&json!({
        "plan_id": uuid(plan),
        "excluded": x.excluded,
        "roots_excluded": x.roots_excluded,
        "build_failed": x.build_failed,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::members::ArtifactsBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArtifactsBody {
    #[serde(default)]
    execution_id: Option<Uuid>,
    artifacts: Vec<ArtifactBody>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::members::ArtifactBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArtifactBody {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[schema(value_type = Object)]
    body: Map<String, Value>,
}

/// `artifacts`: upsert per (task, type, name); `execution_id` is informational.
async fn artifacts(state: &AppState, rq: Req, env: u128, plan: u128, task_id: String) -> ApiResult {
    let body: ArtifactsBody = rq.json()?;
    let _ = body.execution_id;
    if body.artifacts.len() > 100 {
        return Err(invalid(
            &["artifacts"],
            "too_long",
            "List should have at most 100 items",
            json!(body.artifacts.len()),
        ));
    }
    let mut items_in = Vec::with_capacity(body.artifacts.len());
    for (i, a) in body.artifacts.into_iter().enumerate() {
        let at = i.to_string();
        if a.kind != "markdown" && a.kind != "json" {
            return Err(invalid(
                &["artifacts", &at, "type"],
                "literal_error",
                "Input should be 'markdown' or 'json'",
                json!(a.kind),
            ));
        }
        check_str(&["artifacts", &at, "name"], &a.name, 1, 255)?;
        items_in.push(ArtifactIn {
            artifact_type: a.kind,
            name: a.name,
            body: Value::Object(a.body).to_string(),
        });
    }
    let stored = state
        .store
        .write_logged(ops::UploadArtifacts {
            env,
            plan,
            task_id: task_id.clone(),
            items: items_in,
            now: now(),
        })
        .await?;
    let out = stored
        .iter()
        .map(|(a, row)| artifact_out(&task_id, &a.artifact_type, &a.name, row))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(&json!({ "artifacts": out })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::members::RenewBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenewBody {
    execution_id: Uuid,
    #[serde(default)]
    claim_ttl_seconds: Option<i64>,
}

/// `POST /tasks/{id}/claim/renew`.
pub async fn renew(state: &AppState, rq: Req, task_id: String) -> ApiResult {
    let env = env(&rq)?;
    check_task_id(&task_id)?;
    let body: RenewBody = rq.json()?;
    let t = state
        .store
        .write_logged(ops::RenewClaim {
            env,
            task_id,
            execution: body.execution_id.as_u128(),
            ttl_seconds: body.claim_ttl_seconds,
            now: now(),
        })
        .await?;
    Ok(ok(&transition_out(&t)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::members::StoppedBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoppedBody {
    outcome: String,
}

/// `POST /executions/{id}/stopped` (`stopped` or `lost`).
pub async fn stopped(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let execution = path_id("execution_id", raw_id)?;
    let body: StoppedBody = rq.json()?;
    let outcome = match body.outcome.as_str() {
        "stopped" => ExecOutcome::Stopped,
        "lost" => ExecOutcome::Lost,
        other => {
            return Err(invalid(
                &["outcome"],
                "literal_error",
                "Input should be 'stopped' or 'lost'",
                json!(other),
            ))
        }
    };
    let t = state
        .store
        .write_logged(ops::ExecutionStopped {
            env,
            execution,
            outcome,
            now: now(),
        })
        .await?;
    Ok(ok(&transition_out(&t)))
}
