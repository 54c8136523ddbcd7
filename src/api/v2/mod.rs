//! The v2 registry's handlers (`/api/v2`, `v2-registry.md`), the second route family
//! of the SDK: builds and reactive scheduling (`builds.rs`), plans and the frontier
//! (`plans.rs`), member transitions, claims and executions (`members.rs`), task reads
//! (`tasks.rs`), deployments, settings and limits (`deployments.rs`). Authentication
//! is v1's mode S; every id is looked up in the caller's environment (D9).

pub(crate) mod builds;
pub(crate) mod deployments;
pub(crate) mod members;
pub(crate) mod plans;
pub(crate) mod tasks;
pub(crate) mod wire;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::http::request::{path_uuid, Query};
use crate::http::response::{ok, ApiError, ApiResult};
use crate::http::router::V2;
use crate::http::{AppState, Req};
use crate::store::v2::schema::Snapshot;

pub async fn dispatch(state: &AppState, rq: Req, route: V2) -> ApiResult {
    use V2::*;
    match route {
        CreateDeployment => deployments::create(state, rq).await,
        ListDeployments => deployments::list(state, rq).await,
        GetDeployment { deployment } => deployments::get(state, rq, &deployment).await,
        ActivateDeployment { deployment } => deployments::activate(state, rq, &deployment).await,
        GetSettings { hash } => deployments::settings(state, rq, hash).await,
        ListLimits => deployments::list_limits(state, rq).await,
        PutLimit { key } => deployments::put_limit(state, rq, key).await,
        DeleteLimit { key } => deployments::delete_limit(state, rq, key).await,
        CreateBuild => builds::create(state, rq).await,
        ListBuilds => builds::list(state, rq).await,
        GetBuild { build } => builds::get(state, rq, &build).await,
        ResumeBuild { build } => builds::resume(state, rq, &build).await,
        CompleteBuild { build } => builds::complete(state, rq, &build).await,
        FailBuild { build } => builds::fail(state, rq, &build).await,
        CancelBuild { build } => builds::cancel(state, rq, &build).await,
        ExitEarlyBuild { build } => builds::exit_early(state, rq, &build).await,
        SkipBlocked { build } => builds::skip_blocked(state, rq, &build).await,
        Frontier { build } => plans::frontier(state, rq, &build).await,
        BuildExecutions { build } => builds::executions(state, rq, &build).await,
        BuildPlans { build } => plans::list(state, rq, &build).await,
        BuildEvents { build } => builds::events(state, rq, &build).await,
        CreatePlan { build } => plans::create(state, rq, &build).await,
        ReactiveMeta { build } => builds::reactive_meta(state, rq, &build).await,
        Notify { build } => builds::notify(state, rq, &build).await,
        GetNotify { build } => builds::get_notify(state, rq, &build).await,
        ClearNotify { build } => builds::clear_notify(state, rq, &build).await,
        WakeCandidates => builds::wake_candidates(state, rq).await,
        AcquireLease { build } => builds::acquire_lease(state, rq, &build).await,
        RenewLease { build } => builds::renew_lease(state, rq, &build).await,
        ReleaseLease { build } => builds::release_lease(state, rq, &build).await,
        AddTickSummary { build } => builds::add_tick_summary(state, rq, &build).await,
        ListTickSummaries { build } => builds::tick_summaries(state, rq, &build).await,
        StalledBuilds => builds::stalled(state, rq).await,
        RegisterMembers { plan } => plans::register_members(state, rq, &plan).await,
        SealPlan { plan } => plans::seal(state, rq, &plan).await,
        GetPlan { plan } => plans::get(state, rq, &plan).await,
        PlanRoots { plan } => plans::roots(state, rq, &plan).await,
        Member { plan, task, action } => members::act(state, rq, &plan, task, action).await,
        ListTasks => tasks::list(state, rq).await,
        GetTask { task } => tasks::get(state, rq, task).await,
        TaskExecutions { task } => tasks::executions(state, rq, task).await,
        TaskEvents { task } => tasks::events(state, rq, task).await,
        TaskArtifacts { task } => tasks::artifacts(state, rq, task).await,
        RenewClaim { task } => members::renew(state, rq, task).await,
        ExecutionStopped { execution } => members::stopped(state, rq, &execution).await,
    }
}

/// The caller's environment (mode S).
fn env(rq: &Req) -> Result<u128, ApiError> {
    Ok(rq.caller.sdk()?.environment_id.as_u128())
}

/// A path id that must be a UUID (422 otherwise, as FastAPI).
fn path_id(name: &str, raw: &str) -> Result<u128, ApiError> {
    Ok(path_uuid(name, raw)?.as_u128())
}

/// `limit` within 1..=`max` (422 otherwise, as upstream validates it).
fn limit(q: &Query, default: i64, max: i64) -> Result<usize, ApiError> {
    Ok(q.int_in("limit", default, 1, max)? as usize)
}

fn now() -> i64 {
    crate::clock::now_micros()
}

/// Runs a read on a v2 snapshot and answers its JSON.
async fn read<F>(state: &AppState, f: F) -> ApiResult
where
    F: FnOnce(&Snapshot) -> Result<Box<RawValue>, ApiError> + Send + 'static,
{
    let body = state.store.read_v2(f).await?;
    Ok(ok(&body))
}

/// Serialises an answer inside a read (borrowed shapes, no `Value` tree).
fn raw<T: Serialize>(v: &T) -> Result<Box<RawValue>, ApiError> {
    super::wire::to_raw(v)
}
