//! API key management of an environment (v1-identity §4.8, D8, D9, D14). Keys are
//! stored as SHA-256 digests (`auth::api_key`); the full key leaves the server once, in
//! the create answer.

use ring::rand::SystemRandom;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::environments::{authorize, environment_in, path_ids};
use crate::auth::api_key;
use crate::clock::{self, format_micros};
use crate::domain::limits::NAME_CHARS;
use crate::domain::WorkspaceAction;
use crate::http::request::{reject, too_long};
use crate::http::response::{created, no_content, ok, ApiError, ApiResult};
use crate::http::{AppState, Req};
use crate::store::identity::{self, ApiKeyRow};

/// ApiKeyResponse (§4.8.1): metadata only, never the key or its digest.
fn api_key_json(k: &ApiKeyRow) -> Value {
    json!({
        "id": k.id,
        "environment_id": k.environment_id,
        "name": k.name,
        "key_prefix": k.key_prefix,
        "created_by_id": k.created_by,
        "created_at": format_micros(k.created_at),
        "last_used_at": k.last_used_at.map(format_micros),
        "revoked_at": k.revoked_at.map(format_micros),
    })
}

/// Any member may read key metadata. Newest first, ties by id (D8).
pub async fn list(state: &AppState, rq: Req, ws: &str, env: &str) -> ApiResult {
    let [ws, env] = path_ids([("workspace_id", ws), ("environment_id", env)])?;
    let include_revoked = rq.query.bool_or("include_revoked", false)?;
    let user = rq.caller.user()?.id;
    let mut keys = state
        .store
        .read(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ListApiKeys)?;
            environment_in(tx, ws, env)?;
            Ok(identity::api_keys_of(tx, env)?)
        })
        .await?;
    keys.retain(|k| include_revoked || k.revoked_at.is_none());
    keys.sort_by_key(|k| std::cmp::Reverse((k.created_at, k.id)));
    Ok(ok(&keys.iter().map(api_key_json).collect::<Vec<_>>()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = api_keys::CreateBody)]
pub(crate) struct CreateBody {
    name: String,
}

pub async fn create(state: &AppState, rq: Req, ws: &str, env: &str) -> ApiResult {
    let [ws, env] = path_ids([("workspace_id", ws), ("environment_id", env)])?;
    let body: CreateBody = rq.json()?;
    reject(
        too_long("name", &body.name, NAME_CHARS)
            .into_iter()
            .collect(),
    )?;
    let user = rq.caller.user()?.id;
    let generated = api_key::generate(&env, &SystemRandom::new())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let row = ApiKeyRow {
        id: Uuid::now_v7(),
        environment_id: env,
        name: body.name,
        key_prefix: generated.key_prefix.clone(),
        key_hash: generated.hash,
        created_by: Some(user),
        created_at: clock::now_micros(),
        last_used_at: None,
        revoked_at: None,
    };
    let row = state
        .store
        .write(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ManageApiKeys)?;
            environment_in(tx, ws, env)?;
            identity::put_api_key(tx, &row)?;
            Ok(row)
        })
        .await?;
    let mut answer = api_key_json(&row);
    answer["key"] = json!(generated.key);
    Ok(created(&answer))
}

/// Soft revocation: `revoked_at = now`, also when already revoked (§3.6.3). The key stops
/// authenticating with the commit. 404 order as §4.8.3: the key under the path
/// environment first, then the environment under the workspace.
pub async fn revoke(state: &AppState, rq: Req, ws: &str, env: &str, key: &str) -> ApiResult {
    let [ws, env, key] = path_ids([
        ("workspace_id", ws),
        ("environment_id", env),
        ("key_id", key),
    ])?;
    let user = rq.caller.user()?.id;
    state
        .store
        .write(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ManageApiKeys)?;
            let mut row = identity::api_key(tx, env, key)?
                .ok_or_else(|| ApiError::not_found("API key not found"))?;
            environment_in(tx, ws, env)?;
            row.revoked_at = Some(clock::now_micros());
            identity::put_api_key(tx, &row)?;
            Ok(())
        })
        .await?;
    Ok(no_content())
}
