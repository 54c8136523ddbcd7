//! Handlers, one file per resource. [`dispatch`] is the second half of the route table:
//! read the JSON body (before auth, as upstream), authenticate per the endpoint's auth
//! kind, then a flat match from endpoint to handler.

mod api_keys;
mod auth;
mod environments;
mod health;
mod me;
pub mod provisioning;
mod target_roots;

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
        // Filled in by the resource modules of the identity issue.
        _ => Err(ApiError::not_found("Not Found")),
    }
}
