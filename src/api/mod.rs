//! Handlers, one file per resource. [`dispatch`] is the second half of the route table:
//! authenticate per the endpoint's auth kind, read the JSON body (within a limit that
//! depends on the authentication), then a flat match from endpoint to handler.

mod api_keys;
mod assets;
pub(crate) mod auth;
mod builds;
mod environments;
mod health;
mod invites;
mod locks;
pub(crate) mod me;
mod members;
mod openapi;
pub mod provisioning;
pub mod search;
mod target_roots;
mod tasks;
pub(crate) mod v2;
mod wire;
mod workspaces;

/// Limits the UI states next to its forms (the handlers enforce them).
pub use environments::MAX_ENVIRONMENTS_PER_WORKSPACE;
pub use workspaces::MAX_WORKSPACES_PER_USER;

use http::Request;
use hyper::body::Incoming;

use crate::auth::Caller;
use crate::http::request::{parse_json_value, read_body, BodyLimits, Query, PRE_AUTH_BODY_BYTES};
use crate::http::response::{ApiError, ApiResult};
use crate::http::router::{AuthKind, Endpoint};
use crate::http::{AppState, Req, RequestCtx};

/// Authentication wrapped in the rate limits (D24). The outer `Err` is a rate limit's
/// refusal, answered before any body byte is read: requests without a credential count
/// against the client IP before anything else, failed authentications count against it
/// too (slowing guessing), and authenticated ones against their credential. The inner
/// result is the authentication, which a malformed body still outranks (see
/// [`dispatch`]).
async fn authenticate_limited(
    state: &AppState,
    endpoint: &Endpoint,
    headers: &http::HeaderMap,
    query: &Query,
    ctx: &RequestCtx,
) -> Result<Result<Caller, ApiError>, ApiError> {
    let exempt = matches!(endpoint, Endpoint::Health | Endpoint::Metrics);
    // A credential header on a route that takes none (login) verifies nothing, so it
    // must not lift the per-IP limit.
    let has_credential = endpoint.auth() != AuthKind::None
        && (headers.contains_key("x-api-key") || headers.contains_key(http::header::AUTHORIZATION));
    if !exempt && !has_credential {
        state.limits.check_ip(ctx.client_ip)?;
    }
    match crate::auth::authenticate(state, endpoint.auth(), headers, query).await {
        Ok(caller) => {
            if let Some(id) = caller.credential_id() {
                state.limits.check_credential(id)?;
            }
            Ok(Ok(caller))
        }
        Err(e) => {
            if has_credential && matches!(e, ApiError::Unauthorized { .. }) {
                state.limits.check_ip(ctx.client_ip)?;
            }
            Ok(Err(e))
        }
    }
}

/// The body limit: the configured one once a credential is verified. Anyone may send
/// login and registration bodies, and a request whose authentication failed is only
/// read to tell broken JSON (422) from the refusal: both get [`PRE_AUTH_BODY_BYTES`].
fn body_limits(state: &AppState, auth: &Result<Caller, ApiError>) -> BodyLimits {
    let verified = matches!(auth, Ok(caller) if caller.credential_id().is_some());
    if verified {
        state.body_limits
    } else {
        BodyLimits {
            max_bytes: state.body_limits.max_bytes.min(PRE_AUTH_BODY_BYTES),
            ..state.body_limits
        }
    }
}

/// Authenticates, then reads the JSON body within [`body_limits`]. Upstream answers 422
/// for broken JSON before 401, so a failed authentication is answered only after its
/// (small) body parsed; a body over the small limit gets the authentication's answer.
pub async fn dispatch(
    state: &AppState,
    endpoint: Endpoint,
    req: Request<Incoming>,
    ctx: &RequestCtx,
) -> ApiResult {
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    let auth = authenticate_limited(state, &endpoint, &parts.headers, &query, ctx).await?;
    let body = if endpoint.json_body() {
        match read_body(&parts.headers, body, body_limits(state, &auth)).await {
            Ok(raw) => parse_json_value(&parts.headers, &raw)?,
            Err(ApiError::PayloadTooLarge) => {
                return Err(auth.err().unwrap_or(ApiError::PayloadTooLarge))
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let caller = auth?;
    let rq = Req {
        ctx: ctx.clone(),
        caller,
        query,
        headers: parts.headers,
        body,
    };
    handle(state, endpoint, rq).await
}

/// The flat match from endpoint to handler, for an authenticated request. The web UI
/// calls it too (src/ui/api_call.rs), with the `Caller` it built from its session, so
/// UI actions run exactly the API's checks and writes.
pub async fn handle(state: &AppState, endpoint: Endpoint, rq: Req) -> ApiResult {
    use crate::domain::events::EventType as Ev;
    use Endpoint::*;
    match endpoint {
        Health => Ok(health::health(state)),
        Metrics => health::metrics(state, &rq.headers),
        Version => Ok(health::version()),
        OpenApi => Ok(openapi::openapi_json()),
        Docs => Ok(openapi::docs()),
        Jwks => auth::jwks(state),
        AuthConfig => auth::config(state),
        Exchange => auth::exchange(state, rq).await,
        Login => auth::login(state, rq).await,
        Register => auth::register(state, rq).await,
        ChangePassword => auth::change_password(state, rq).await,
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
        Ui(_) => Err(ApiError::Internal("UI routes are served by src/ui".into())),
    }
}
