//! Environments of a workspace (v1-identity §4.7, D9, D19), plus the checks that every
//! workspace-scoped route of this group (environments, API keys, target roots) shares:
//! path ids, workspace access, environment lookup and field limits.
//!
//! Order of checks, as upstream: authentication (dispatch) → path ids, query and body
//! (422) → membership of the path workspace (404 `Workspace not found`) → role (403) →
//! the resources named in the path (their own 404s). Writes run every check inside the
//! writer's transaction before their first write, so a refused op writes nothing.

use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::clock;
use crate::domain::limits::{DESCRIPTION_CHARS, NAME_CHARS};
use crate::domain::{slug, Role, WorkspaceAction};
use crate::http::request::{fields_too_long, path_uuid, reject};
use crate::http::response::{created, no_content, ok, ApiError, ApiResult, ValidationItem};
use crate::http::{AppState, Req};
use crate::store::identity::{self, EnvironmentRow};
use crate::store::Reader;

pub(super) const ENVIRONMENT_NOT_FOUND: &str = "Environment not found";
/// v1-identity §2.5.
pub const MAX_ENVIRONMENTS_PER_WORKSPACE: usize = 6;
/// Upstream's `max_concurrent_locks` column is a 32-bit signed int.
const MAX_LOCK_LIMIT: i64 = i32::MAX as i64;

/// Parses every path id at once, so one 422 names all malformed ones (as FastAPI does).
pub(super) fn path_ids<const N: usize>(ids: [(&str, &str); N]) -> Result<[Uuid; N], ApiError> {
    let mut out = [Uuid::nil(); N];
    let mut errors = Vec::new();
    for (slot, (name, raw)) in out.iter_mut().zip(ids) {
        match path_uuid(name, raw) {
            Ok(id) => *slot = id,
            Err(ApiError::Validation(items)) => errors.extend(items),
            Err(other) => return Err(other),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Membership of the path workspace decides access (D31), never the token's workspace
/// claim: a non-member gets 404 `Workspace not found`, a too-low role 403.
pub(super) fn authorize(
    r: &impl Reader,
    ws: Uuid,
    user: Uuid,
    action: WorkspaceAction,
) -> Result<Role, ApiError> {
    let role = identity::membership(r, ws, user)?.map(|m| m.role);
    Ok(action.authorize(role)?)
}

/// The environment, if it belongs to `ws`; a foreign one looks absent (D9).
pub(super) fn environment_in(
    r: &impl Reader,
    ws: Uuid,
    env: Uuid,
) -> Result<EnvironmentRow, ApiError> {
    identity::environment(r, ws, env)?.ok_or_else(|| ApiError::not_found(ENVIRONMENT_NOT_FOUND))
}

fn bad_slug(value: &str) -> Option<ValidationItem> {
    slug::validate_slug(value).err().map(|e| {
        ValidationItem::new(
            slug::SLUG_ERROR_TYPE,
            vec![json!("body"), json!("slug")],
            e.pydantic_msg(),
            json!(value),
        )
    })
}

/// Keeps an explicit `null` apart from an absent field (both are `None` for plain
/// `Option`): for `max_concurrent_locks`, `null` means "unlimited".
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `max_concurrent_locks` (D19): `null` = unlimited, else an integer in 1..=2^31-1.
fn lock_limit(v: &Value) -> Result<Option<u32>, ValidationItem> {
    let item = |kind: &str, msg: &str| {
        ValidationItem::new(
            kind,
            vec![json!("body"), json!("max_concurrent_locks")],
            msg,
            v.clone(),
        )
    };
    let n = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n,
        _ => return Err(item("int_type", "Input should be a valid integer")),
    };
    // Integral floats (`3.0`) pass, as in pydantic's lax mode.
    let int = match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i,
        (None, Some(_), _) => MAX_LOCK_LIMIT + 1,
        // Clamped into just outside the valid range, so the checks below name the bound.
        (None, None, Some(f)) if f.fract() == 0.0 => {
            f.clamp(0.0, (MAX_LOCK_LIMIT + 1) as f64) as i64
        }
        _ => {
            return Err(item(
                "int_from_float",
                "Input should be a valid integer, got a number with a fractional part",
            ))
        }
    };
    if int < 1 {
        return Err(item(
            "greater_than_equal",
            "Input should be greater than or equal to 1",
        ));
    }
    u32::try_from(int)
        .ok()
        .filter(|_| int <= MAX_LOCK_LIMIT)
        .map(Some)
        .ok_or_else(|| {
            item(
                "less_than_equal",
                &format!("Input should be less than or equal to {MAX_LOCK_LIMIT}"),
            )
        })
}

/// EnvironmentResponse (§4.7.1) plus `max_concurrent_locks` (D19). `owner_id` is
/// upstream's deprecated field, never set by this API.
pub(super) fn environment_json(e: &EnvironmentRow) -> Value {
    json!({
        "id": e.id,
        "workspace_id": e.workspace_id,
        "name": e.name,
        "slug": e.slug,
        "description": e.description,
        "owner_id": null,
        "max_concurrent_locks": e.max_concurrent_locks,
    })
}

/// Oldest first, ties by id (D8).
pub(super) fn sort_environments(envs: &mut [EnvironmentRow]) {
    envs.sort_by_key(|e| (e.created_at, e.id));
}

fn user_id(rq: &Req) -> Result<Uuid, ApiError> {
    Ok(rq.caller.user()?.id)
}

pub async fn list(state: &AppState, rq: Req, ws: &str) -> ApiResult {
    let [ws] = path_ids([("workspace_id", ws)])?;
    let user = user_id(&rq)?;
    let envs = state
        .store
        .read(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ListEnvironments)?;
            let mut envs = identity::environments_of(tx, ws)?;
            sort_environments(&mut envs);
            Ok(envs)
        })
        .await?;
    Ok(ok(&envs.iter().map(environment_json).collect::<Vec<_>>()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = environments::CreateBody)]
pub(crate) struct CreateBody {
    name: String,
    slug: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    max_concurrent_locks: Option<Value>,
}

pub async fn create(state: &AppState, rq: Req, ws: &str) -> ApiResult {
    let [ws] = path_ids([("workspace_id", ws)])?;
    let body: CreateBody = rq.json()?;
    let mut errors = fields_too_long(&[
        ("name", Some(&body.name), NAME_CHARS),
        (
            "description",
            body.description.as_deref(),
            DESCRIPTION_CHARS,
        ),
    ]);
    errors.extend(bad_slug(&body.slug));
    let limit = match body.max_concurrent_locks.as_ref().map(lock_limit) {
        Some(Ok(limit)) => limit,
        Some(Err(item)) => {
            errors.push(item);
            None
        }
        None => None,
    };
    reject(errors)?;
    let user = user_id(&rq)?;
    let row = EnvironmentRow {
        id: Uuid::now_v7(),
        workspace_id: ws,
        name: body.name,
        slug: body.slug,
        description: body.description,
        max_concurrent_locks: limit,
        created_at: clock::now_micros(),
    };
    let row = state
        .store
        .write(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ManageEnvironments)?;
            let existing = identity::environments_of(tx, ws)?;
            if existing.len() >= MAX_ENVIRONMENTS_PER_WORKSPACE {
                return Err(ApiError::Forbidden(format!(
                    "Workspace can have at most {MAX_ENVIRONMENTS_PER_WORKSPACE} environments"
                )));
            }
            if existing.iter().any(|e| e.slug == row.slug) {
                return Err(ApiError::Conflict(
                    "Environment slug already exists in this workspace".into(),
                ));
            }
            identity::put_environment(tx, &row)?;
            Ok(row)
        })
        .await?;
    Ok(created(&environment_json(&row)))
}

pub async fn get(state: &AppState, rq: Req, ws: &str, env: &str) -> ApiResult {
    let [ws, env] = path_ids([("workspace_id", ws), ("environment_id", env)])?;
    let user = user_id(&rq)?;
    let row = state
        .store
        .read(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::GetEnvironment)?;
            environment_in(tx, ws, env)
        })
        .await?;
    Ok(ok(&environment_json(&row)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = environments::UpdateBody)]
pub(crate) struct UpdateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    max_concurrent_locks: Option<Value>,
}

/// Absent or `null` name/description stay unchanged (upstream; the description cannot
/// be cleared). `max_concurrent_locks`: absent = unchanged, `null` = unlimited (D19).
pub async fn update(state: &AppState, rq: Req, ws: &str, env: &str) -> ApiResult {
    let [ws, env] = path_ids([("workspace_id", ws), ("environment_id", env)])?;
    let body: UpdateBody = rq.json()?;
    let mut errors = fields_too_long(&[
        ("name", body.name.as_deref(), NAME_CHARS),
        (
            "description",
            body.description.as_deref(),
            DESCRIPTION_CHARS,
        ),
    ]);
    let limit = match body.max_concurrent_locks.as_ref().map(lock_limit) {
        Some(Ok(limit)) => Some(limit),
        Some(Err(item)) => {
            errors.push(item);
            None
        }
        None => None,
    };
    reject(errors)?;
    let user = user_id(&rq)?;
    let row = state
        .store
        .write(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ManageEnvironments)?;
            let mut row = environment_in(tx, ws, env)?;
            if let Some(name) = body.name {
                row.name = name;
            }
            if let Some(description) = body.description {
                row.description = Some(description);
            }
            if let Some(limit) = limit {
                row.max_concurrent_locks = limit;
            }
            identity::put_environment(tx, &row)?;
            Ok(row)
        })
        .await?;
    Ok(ok(&environment_json(&row)))
}

/// Deletes the environment with everything in it (keys, roots, builds, tasks, locks).
pub async fn delete(state: &AppState, rq: Req, ws: &str, env: &str) -> ApiResult {
    let [ws, env] = path_ids([("workspace_id", ws), ("environment_id", env)])?;
    let user = user_id(&rq)?;
    state
        .store
        .write(move |tx| -> Result<_, ApiError> {
            authorize(tx, ws, user, WorkspaceAction::ManageEnvironments)?;
            environment_in(tx, ws, env)?;
            if identity::environments_of(tx, ws)?.len() <= 1 {
                return Err(ApiError::BadRequest(
                    "Cannot delete the last environment".into(),
                ));
            }
            identity::delete_environment(tx, ws, env)?;
            Ok(())
        })
        .await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_limit_accepts_null_and_positive_integers() {
        assert_eq!(lock_limit(&json!(null)), Ok(None));
        assert_eq!(lock_limit(&json!(1)), Ok(Some(1)));
        assert_eq!(lock_limit(&json!(3.0)), Ok(Some(3)));
        assert_eq!(
            lock_limit(&json!(MAX_LOCK_LIMIT)),
            Ok(Some(i32::MAX as u32))
        );
    }

    #[test]
    fn lock_limit_refuses_the_rest() {
        let kind = |v: Value| lock_limit(&v).unwrap_err().kind;
        assert_eq!(kind(json!(0)), "greater_than_equal");
        assert_eq!(kind(json!(-5)), "greater_than_equal");
        assert_eq!(kind(json!(-5.0)), "greater_than_equal");
        assert_eq!(kind(json!(MAX_LOCK_LIMIT + 1)), "less_than_equal");
        assert_eq!(kind(json!(u64::MAX)), "less_than_equal");
        assert_eq!(kind(json!(1e30)), "less_than_equal");
        assert_eq!(kind(json!(2.5)), "int_from_float");
        assert_eq!(kind(json!("3")), "int_type");
        assert_eq!(kind(json!(true)), "int_type");
    }
}
