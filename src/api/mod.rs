//! Handlers, one file per resource. [`dispatch`] is the second half of the route table:
//! read the JSON body (before auth, as upstream), authenticate per the endpoint's auth
//! kind, then a flat match from endpoint to handler.

mod assets;
mod auth;
mod builds;
mod health;
mod me;
pub mod provisioning;
mod tasks;
mod wire;

use http::Request;
use hyper::body::Incoming;

use crate::http::request::{parse_json_value, read_body, Query};
use crate::http::response::{ApiError, ApiResult};
use crate::http::router::Endpoint;
use crate::http::{AppState, Req, RequestCtx};

pub async fn dispatch(
    state: &AppState,
    endpoint: Endpoint,
    req: Request<Incoming>,
    ctx: &RequestCtx,
) -> ApiResult {
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    let body = if endpoint.json_body() {
        let raw = read_body(&parts.headers, body, state.body_limits).await?;
        parse_json_value(&parts.headers, &raw)?
    } else {
        None
    };
    let caller = crate::auth::authenticate(state, endpoint.auth(), &parts.headers, &query).await?;
    let rq = Req {
        ctx: ctx.clone(),
        caller,
        query,
        headers: parts.headers,
        body,
    };
    use crate::domain::events::EventType as Ev;
    use Endpoint::*;
    match endpoint {
        Health => Ok(health::health()),
        Metrics => health::metrics(state),
        Jwks => auth::jwks(state),
        AuthConfig => auth::config(state),
        Exchange => auth::exchange(state, rq).await,
        Login => auth::login(state, rq).await,
        Register => auth::register(state, rq).await,
        Me => me::me(state, rq).await,
        MyInvites => me::my_invites(state, rq).await,
        ListWorkspaces => me::list_workspaces(state, rq).await,
        CreateBuild => builds::create(state, rq).await,
        ListBuilds => builds::list(state, rq).await,
        GetBuild { build } => builds::get(state, rq, &build).await,
        PatchBuild { build } => builds::patch(state, rq, &build).await,
        CompleteBuild { build } => builds::transition(state, rq, &build, Ev::BuildCompleted).await,
        FailBuild { build } => builds::transition(state, rq, &build, Ev::BuildFailed).await,
        CancelBuild { build } => builds::transition(state, rq, &build, Ev::BuildCancelled).await,
        ExitEarlyBuild { build } => builds::transition(state, rq, &build, Ev::BuildExitEarly).await,
        RegisterTask { build } => tasks::register(state, rq, &build).await,
        RegisterTaskSeed => tasks::register_seed(state, rq).await,
        StartTask { build, task } => tasks::event(state, rq, &build, &task, Ev::TaskStarted).await,
        CompleteTask { build, task } => {
            tasks::event(state, rq, &build, &task, Ev::TaskCompleted).await
        }
        FailTask { build, task } => tasks::event(state, rq, &build, &task, Ev::TaskFailed).await,
        SuspendTask { build, task } => {
            tasks::event(state, rq, &build, &task, Ev::TaskSuspended).await
        }
        ResumeTask { build, task } => tasks::event(state, rq, &build, &task, Ev::TaskResumed).await,
        CancelTask { build, task } => {
            tasks::event(state, rq, &build, &task, Ev::TaskCancelled).await
        }
        TaskWaitingForLock { build, task } => {
            tasks::event(state, rq, &build, &task, Ev::TaskWaitingForLock).await
        }
        UploadAssets { build, task } => assets::upload(state, rq, &build, &task).await,
        BuildTasks { build } => tasks::build_tasks(state, rq, &build).await,
        BuildEvents { build } => tasks::build_events(state, rq, &build).await,
        BuildGraph { build } => tasks::build_graph(state, rq, &build).await,
        ListTasks => tasks::list(state, rq).await,
        GetTask { task } => tasks::get(state, rq, &task).await,
        TaskAssets { task } => assets::list(state, rq, &task).await,
        TaskEvents { task } => tasks::events(state, rq, &task).await,
        TaskMetadata { task } => tasks::metadata(state, rq, &task).await,
        // Filled in by the resource modules of the identity issue.
        _ => Err(ApiError::not_found("Not Found")),
    }
}
