//! The current user: `/ui/me`, `/ui/me/invites`, and the seed's `GET /workspaces` (D6).

use redb::ReadableTable;
use serde_json::{json, Value};

use crate::clock;
use crate::domain::roles::invite_is_open;
use crate::http::response::{ok, ApiError, ApiResult};
use crate::http::{AppState, Req};
use crate::store::identity::{self, InviteRow, UserRow, INVITES, INVITE_BY_EMAIL};
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
    let key = identity::lower(email);
    let mut ids = Vec::new();
    for entry in r
        .open(INVITE_BY_EMAIL)?
        .range((key.as_str(), 0u128)..=(key.as_str(), u128::MAX))?
    {
        let (k, ws) = entry?;
        ids.push((
            uuid::Uuid::from_u128(ws.value()),
            uuid::Uuid::from_u128(k.value().1),
        ));
    }
    let mut out = Vec::new();
    for (ws, invite) in ids {
        if let Some(row) = identity::row_of::<InviteRow>(r, INVITES, "invites", ws, invite)? {
            if invite_is_open(row.status, row.expires_at, now) {
                out.push(row);
            }
        }
    }
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
