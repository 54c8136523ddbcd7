//! The current user: `/ui/me`, `/ui/me/invites`, and the seed's `GET /workspaces` (D6).

use serde_json::{json, Value};

use crate::clock;
use crate::domain::roles::invite_is_open;
use crate::http::response::{ok, ApiError, ApiResult};
use crate::http::{AppState, Req};
use crate::store::identity::{self, InviteRow, UserRow};
use crate::store::{Reader, StoreError};

/// The `workspaces` entries of `/ui/me`, oldest workspace first.
fn workspace_entries(r: &impl Reader, user: &UserRow) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::new();
    for m in identity::memberships_of_user(r, user.id)? {
        if let Some(ws) = identity::workspace(r, m.workspace_id)? {
            out.push(json!({
                "id": ws.id,
                "name": ws.name,
                "slug": ws.slug,
                "role": m.role.as_str(),
                "is_personal": ws.is_personal,
            }));
        }
    }
    Ok(out)
}

pub async fn me(state: &AppState, rq: Req) -> ApiResult {
    let user = rq.caller.user()?.clone();
    let u = user.clone();
    let workspaces = state
        .store
        .read(move |tx| workspace_entries(tx, &u).map_err(ApiError::from))
        .await?;
    Ok(ok(&json!({
        "user": {
            "id": user.id,
            "external_id": user.external_id,
            "email": user.email,
            "display_name": user.display_name,
        },
        "workspaces": workspaces,
    })))
}

pub async fn list_workspaces(state: &AppState, rq: Req) -> ApiResult {
    let user = rq.caller.user()?.clone();
    let workspaces = state
        .store
        .read(move |tx| workspace_entries(tx, &user).map_err(ApiError::from))
        .await?;
    Ok(ok(&workspaces))
}

/// Open invites addressed to an email (case-insensitive, D11), oldest first.
pub fn open_invites_for(
    r: &impl Reader,
    email: &str,
    now: i64,
) -> Result<Vec<InviteRow>, StoreError> {
    let mut out = identity::invites_for_email(r, email)?;
    out.retain(|row| invite_is_open(row.status, row.expires_at, now));
    Ok(out)
}

pub async fn my_invites(state: &AppState, rq: Req) -> ApiResult {
    let user = rq.caller.user()?.clone();
    let now = clock::now_micros();
    let entries = state
        .store
        .read(move |tx| -> Result<Vec<Value>, ApiError> {
            let mut out = Vec::new();
            for inv in open_invites_for(tx, &user.email, now)? {
                let ws = identity::workspace(tx, inv.workspace_id)?;
                let by = match inv.invited_by {
                    Some(id) => identity::user(tx, id)?.map(|u| u.email),
                    None => None,
                };
                out.push(json!({
                    "id": inv.id,
                    "workspace_id": inv.workspace_id,
                    "workspace_name": ws.map(|w| w.name).unwrap_or_default(),
                    "role": inv.role.as_str(),
                    "invited_by_email": by,
                }));
            }
            Ok(out)
        })
        .await?;
    Ok(ok(&entries))
}
