//! Target roots: named URI prefixes per environment (v1-identity §4.9), the SDK's view
//! of them (`GET /api/v1/target-roots`, mode S) and the workspace-wide list (D6).
//!
//! Order (D8): by name within an environment (names are unique there); the workspace
//! list goes environment by environment, oldest environment first.

use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::environments::{authorize, environment_in, path_ids, sort_environments};
use crate::clock::{self, format_micros};
use crate::domain::limits::{NAME_CHARS, URI_PREFIX_CHARS};
use crate::domain::WorkspaceAction;
use crate::http::request::{fields_too_long, reject};
use crate::http::response::{created, no_content, ok, ApiError, ApiResult, ValidationItem};
use crate::http::{AppState, Req};
use crate::store::identity::{self, TargetRootRow};
use crate::store::Reader;

const ROOT_NOT_FOUND: &str = "Target root not found";

/// TargetRootResponse (§4.9).
fn root_json(r: &TargetRootRow) -> Value {
    json!({
        "id": r.id,
        "environment_id": r.environment_id,
        "name": r.name,
        "uri_prefix": r.uri_prefix,
        "created_at": format_micros(r.created_at),
    })
}

fn roots_by_name(r: &impl Reader, env: Uuid) -> Result<Vec<TargetRootRow>, ApiError> {
    let mut roots = identity::target_roots_of(r, env)?;
    roots.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(roots)
}

fn name_taken(name: &str) -> ApiError {
    ApiError::Conflict(format!("Target root with name '{name}' already exists"))
}

/// §4.9.3–5 order: the root under the path environment (404 `Target root not found`),
/// then the environment under the workspace (404 `Environment not found`).
fn root_in(r: &impl Reader, ws: Uuid, env: Uuid, root: Uuid) -> Result<TargetRootRow, ApiError> {
    let row =
        identity::target_root(r, env, root)?.ok_or_else(|| ApiError::not_found(ROOT_NOT_FOUND))?;
    environment_in(r, ws, env)?;
    Ok(row)
}

fn field_errors(name: Option<&str>, uri_prefix: Option<&str>) -> Vec<ValidationItem> {
    fields_too_long(&[
        ("name", name, NAME_CHARS),
        ("uri_prefix", uri_prefix, URI_PREFIX_CHARS),
    ])
}

pub async fn list(state: &AppState, rq: Req, ws: &str, env: &str) -> ApiResult {
    let [ws, env] = path_ids([("workspace_id", ws), ("environment_id", env)])?;
    let user = rq.caller.user()?.id;
    let roots = state
        .store
        .read(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ListTargetRoots)?;
            environment_in(tx, ws, env)?;
            roots_by_name(tx, env)
        })
        .await?;
    Ok(ok(&roots.iter().map(root_json).collect::<Vec<_>>()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = target_roots::CreateBody)]
pub(crate) struct CreateBody {
    name: String,
    uri_prefix: String,
}

pub async fn create(state: &AppState, rq: Req, ws: &str, env: &str) -> ApiResult {
    let [ws, env] = path_ids([("workspace_id", ws), ("environment_id", env)])?;
    let body: CreateBody = rq.json()?;
    reject(field_errors(Some(&body.name), Some(&body.uri_prefix)))?;
    let user = rq.caller.user()?.id;
    let row = TargetRootRow {
        id: Uuid::now_v7(),
        environment_id: env,
        name: body.name,
        uri_prefix: body.uri_prefix,
        created_at: clock::now_micros(),
    };
    let row = state
        .store
        .write(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ManageTargetRoots)?;
            environment_in(tx, ws, env)?;
            if identity::target_root_by_name(tx, env, &row.name)?.is_some() {
                return Err(name_taken(&row.name));
            }
            identity::put_target_root(tx, &row)?;
            Ok(row)
        })
        .await?;
    Ok(created(&root_json(&row)))
}

pub async fn get(state: &AppState, rq: Req, ws: &str, env: &str, root: &str) -> ApiResult {
    let [ws, env, root] = path_ids([
        ("workspace_id", ws),
        ("environment_id", env),
        ("root_id", root),
    ])?;
    let user = rq.caller.user()?.id;
    let row = state
        .store
        .read(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::GetTargetRoot)?;
            root_in(tx, ws, env, root)
        })
        .await?;
    Ok(ok(&root_json(&row)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = target_roots::UpdateBody)]
pub(crate) struct UpdateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uri_prefix: Option<String>,
}

/// Absent or `null` fields stay unchanged.
pub async fn update(state: &AppState, rq: Req, ws: &str, env: &str, root: &str) -> ApiResult {
    let [ws, env, root] = path_ids([
        ("workspace_id", ws),
        ("environment_id", env),
        ("root_id", root),
    ])?;
    let body: UpdateBody = rq.json()?;
    reject(field_errors(
        body.name.as_deref(),
        body.uri_prefix.as_deref(),
    ))?;
    let user = rq.caller.user()?.id;
    let row = state
        .store
        .write(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ManageTargetRoots)?;
            let mut row = root_in(tx, ws, env, root)?;
            if let Some(name) = body.name {
                if name != row.name && identity::target_root_by_name(tx, env, &name)?.is_some() {
                    return Err(name_taken(&name));
                }
                row.name = name;
            }
            if let Some(uri_prefix) = body.uri_prefix {
                row.uri_prefix = uri_prefix;
            }
            identity::put_target_root(tx, &row)?;
            Ok(row)
        })
        .await?;
    Ok(ok(&root_json(&row)))
}

pub async fn delete(state: &AppState, rq: Req, ws: &str, env: &str, root: &str) -> ApiResult {
    let [ws, env, root] = path_ids([
        ("workspace_id", ws),
        ("environment_id", env),
        ("root_id", root),
    ])?;
    let user = rq.caller.user()?.id;
    state
        .store
        .write(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ManageTargetRoots)?;
            root_in(tx, ws, env, root)?;
            identity::delete_target_root(tx, env, root)?;
            Ok(())
        })
        .await?;
    Ok(no_content())
}

/// `GET /api/v1/target-roots` (§4.9.6): the roots of the caller's environment, which
/// authentication already resolved (API key, or internal token + `environment_id`).
pub async fn sdk_list(state: &AppState, rq: Req) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let roots = state.store.read(move |tx| roots_by_name(tx, env)).await?;
    let entries: Vec<Value> = roots
        .iter()
        .map(|r| json!({"name": r.name, "uri_prefix": r.uri_prefix}))
        .collect();
    Ok(ok(&entries))
}

/// `GET /api/v1/workspaces/{ws}/target-roots` (D6): the roots of every environment of
/// the workspace, as TargetRootResponse entries (they carry `environment_id`).
pub async fn workspace_list(state: &AppState, rq: Req, ws: &str) -> ApiResult {
    let [ws] = path_ids([("workspace_id", ws)])?;
    let user = rq.caller.user()?.id;
    let roots = state
        .store
        .read(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ListTargetRoots)?;
            let mut envs = identity::environments_of(tx, ws)?;
            sort_environments(&mut envs);
            let mut roots = Vec::new();
            for env in envs {
                roots.extend(roots_by_name(tx, env.id)?);
            }
            Ok(roots)
        })
        .await?;
    Ok(ok(&roots.iter().map(root_json).collect::<Vec<_>>()))
}
