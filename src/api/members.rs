//! Workspace members (v1-identity §4.5 with D16): list, change role, remove. `member_id`
//! is the membership id, not the user id.

use serde::Deserialize;
use serde_json::{json, Value};

use super::workspaces::authorize;
use crate::domain::roles::{check_member_removal, check_role_change};
use crate::domain::Role;
use crate::http::request::path_uuid;
use crate::http::response::{no_content, ok, ApiError, ApiResult, ValidationItem};
use crate::http::{AppState, Req};
use crate::store::identity::{self, MemberRow};
use crate::store::{Reader, StoreError};

/// A `role` body field, with pydantic's enum 422 for anything but the three wire values.
pub fn parse_role(value: &Value) -> Result<Role, ApiError> {
    value.as_str().and_then(Role::parse).ok_or_else(|| {
        ApiError::Validation(vec![ValidationItem::new(
            "enum",
            vec![json!("body"), json!("role")],
            "Input should be 'owner', 'admin' or 'member'",
            value.clone(),
        )])
    })
}

/// MemberResponse; `None` when the user row is gone (upstream's inner join drops it).
fn member_json(r: &impl Reader, m: &MemberRow) -> Result<Option<Value>, StoreError> {
    Ok(identity::user(r, m.user_id)?.map(|u| {
        json!({
            "id": m.id,
            "user_id": m.user_id,
            "email": u.email,
            "display_name": u.display_name,
            "role": m.role.as_str(),
        })
    }))
}

fn member_not_found() -> ApiError {
    ApiError::not_found("Member not found")
}

/// `GET …/members`: any member; oldest membership first.
pub async fn list(state: &AppState, rq: Req, ws: String) -> ApiResult {
    let user = rq.caller.user()?.id;
    let ws = path_uuid("workspace_id", &ws)?;
    let members = state
        .store
        .read(move |tx| -> Result<Vec<Value>, ApiError> {
            authorize(tx, ws, user, Role::Member)?;
            let mut out = Vec::new();
            for m in identity::members_of(tx, ws)? {
                out.extend(member_json(tx, &m)?);
            }
            Ok(out)
        })
        .await?;
    Ok(ok(&members))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = members::UpdateBody)]
pub(crate) struct UpdateBody {
    #[schema(value_type = Object)]
    role: Value,
}

/// `PATCH …/members/{member_id}`: admin+; owner rules and the last-owner guard (D16).
pub async fn update(state: &AppState, rq: Req, ws: String, member: String) -> ApiResult {
    let user = rq.caller.user()?.id;
    let ws = path_uuid("workspace_id", &ws)?;
    let member = path_uuid("member_id", &member)?;
    let body: UpdateBody = rq.json()?;
    let new_role = parse_role(&body.role)?;
    let answer = state
        .store
        .write(move |tx| -> Result<Value, ApiError> {
            let caller = authorize(tx, ws, user, Role::Admin)?;
            let mut target = identity::member(tx, ws, member)?.ok_or_else(member_not_found)?;
            check_role_change(
                caller.role,
                target.role,
                new_role,
                identity::owner_count(tx, ws)?,
            )?;
            let changed = target.role != new_role;
            target.role = new_role;
            // Answer built before writing: a refusal must leave the batch untouched.
            let answer = member_json(tx, &target)?.ok_or_else(member_not_found)?;
            if changed {
                identity::put_member(tx, &target)?;
            }
            Ok(answer)
        })
        .await?;
    Ok(ok(&answer))
}

/// `DELETE …/members/{member_id}`: admin+; only owners remove owners; never the last one.
pub async fn remove(state: &AppState, rq: Req, ws: String, member: String) -> ApiResult {
    let user = rq.caller.user()?.id;
    let ws = path_uuid("workspace_id", &ws)?;
    let member = path_uuid("member_id", &member)?;
    state
        .store
        .write(move |tx| -> Result<(), ApiError> {
            let caller = authorize(tx, ws, user, Role::Admin)?;
            let target = identity::member(tx, ws, member)?.ok_or_else(member_not_found)?;
            check_member_removal(caller.role, target.role, identity::owner_count(tx, ws)?)?;
            identity::remove_member(tx, &target)?;
            Ok(())
        })
        .await?;
    Ok(no_content())
}
