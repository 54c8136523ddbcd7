//! Handlers, one file per resource. [`dispatch`] is the second half of the route table:
//! read the JSON body (before auth, as upstream), authenticate per the endpoint's auth
//! kind, then a flat match from endpoint to handler.

mod api_keys;
mod assets;
mod auth;
mod builds;
mod environments;
mod health;
mod invites;
mod locks;
mod me;
mod members;
pub mod provisioning;
pub mod search;
mod target_roots;
mod tasks;
mod v2;
mod wire;
mod workspaces;

use http::Request;
use hyper::body::Incoming;

use crate::auth::Caller;
use crate::http::request::{parse_json_value, read_body, Query};
use crate::http::response::{ApiError, ApiResult};
use crate::http::router::Endpoint;
use crate::http::{AppState, Req, RequestCtx};

/// Authentication wrapped in the rate limits (D24): requests without a credential count
/// against the client IP before anything else, failed authentications count against it
/// too (slowing guessing), and authenticated ones against their credential.
async fn authenticate_limited(
    state: &AppState,
    endpoint: &Endpoint,
    headers: &http::HeaderMap,
    query: &Query,
    ctx: &RequestCtx,
) -> Result<Caller, ApiError> {
    let exempt = matches!(endpoint, Endpoint::Health | Endpoint::Metrics);
    let has_credential =
        headers.contains_key("x-api-key") || headers.contains_key(http::header::AUTHORIZATION);
    if !exempt && !has_credential {
        state.limits.check_ip(ctx.client_ip)?;
    }
    match crate::auth::authenticate(state, endpoint.auth(), headers, query).await {
        Ok(caller) => {
            if let Some(id) = caller.credential_id() {
                state.limits.check_credential(id)?;
            }
            Ok(caller)
        }
        Err(e) => {
            if has_credential && matches!(e, ApiError::Unauthorized { .. }) {
                state.limits.check_ip(ctx.client_ip)?;
            }
            Err(e)
        }
    }
}

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
    let caller = authenticate_limited(state, &endpoint, &parts.headers, &query, ctx).await?;
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
        Metrics => health::metrics(state, &rq.headers),
        Jwks => auth::jwks(state),
        AuthConfig => auth::config(state),
        Exchange => auth::exchange(state, rq).await,
        Login => auth::login(state, rq).await,
        Register => auth::register(state, rq).await,
        Me => me::me(state, rq).await,
        MyInvites => me::my_invites(state, rq).await,
        ListWorkspaces => me::list_workspaces(state, rq).await,
        CreateWorkspace => workspaces::create(state, rq).await,
        GetWorkspace { ws } => workspaces::get(state, rq, ws).await,
        UpdateWorkspace { ws } => workspaces::update(state, rq, ws).await,
        DeleteWorkspace { ws } => workspaces::delete(state, rq, ws).await,
        ListMembers { ws } => members::list(state, rq, ws).await,
        UpdateMember { ws, member } => members::update(state, rq, ws, member).await,
        RemoveMember { ws, member } => members::remove(state, rq, ws, member).await,
        ListInvites { ws } => invites::list(state, rq, ws).await,
        CreateInvite { ws } => invites::create(state, rq, ws).await,
        CancelInvite { ws, invite } => invites::cancel(state, rq, ws, invite).await,
        AcceptInvite { invite } => invites::accept(state, rq, invite).await,
        DeclineInvite { invite } => invites::decline(state, rq, invite).await,
        ListEnvironments { ws } => environments::list(state, rq, &ws).await,
        CreateEnvironment { ws } => environments::create(state, rq, &ws).await,
        GetEnvironment { ws, env } => environments::get(state, rq, &ws, &env).await,
        UpdateEnvironment { ws, env } => environments::update(state, rq, &ws, &env).await,
        DeleteEnvironment { ws, env } => environments::delete(state, rq, &ws, &env).await,
        ListApiKeys { ws, env } => api_keys::list(state, rq, &ws, &env).await,
        CreateApiKey { ws, env } => api_keys::create(state, rq, &ws, &env).await,
        RevokeApiKey { ws, env, key } => api_keys::revoke(state, rq, &ws, &env, &key).await,
        ListTargetRoots { ws, env } => target_roots::list(state, rq, &ws, &env).await,
        CreateTargetRoot { ws, env } => target_roots::create(state, rq, &ws, &env).await,
        GetTargetRoot { ws, env, root } => target_roots::get(state, rq, &ws, &env, &root).await,
        UpdateTargetRoot { ws, env, root } => {
            target_roots::update(state, rq, &ws, &env, &root).await
        }
        DeleteTargetRoot { ws, env, root } => {
            target_roots::delete(state, rq, &ws, &env, &root).await
        }
        SdkTargetRoots => target_roots::sdk_list(state, rq).await,
        WorkspaceTargetRoots { ws } => target_roots::workspace_list(state, rq, &ws).await,
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
        AcquireLock { name } => locks::acquire(state, rq, &name).await,
        RenewLock { name } => locks::renew(state, rq, &name).await,
        ReleaseLock { name } => locks::release(state, rq, &name).await,
        ListLocks => locks::list(state, rq).await,
        GetLock { name } => locks::get(state, rq, &name).await,
        LockCompletionStatus { task } => locks::completion_status(state, rq, &task).await,
        SearchTasks => search::tasks(state, rq).await,
        SearchKeys => search::keys(state, rq).await,
        SearchValues => search::values(state, rq).await,
        SearchColumns => search::columns(state, rq).await,
        V2(route) => v2::dispatch(state, rq, route).await,
    }
}
