//! Invites (v1-identity §4.6 with D11, D16): list, create and cancel inside a workspace
//! (admin+); accept and decline by the invitee (mode F). Emails match
//! case-insensitively; invites expire after `auth.invite_ttl_days`, and an expired
//! invite is treated as absent everywhere (not listed, not accepted, not cancelled, and
//! no obstacle to inviting the same email again).

use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::me::open_invites_for;
use super::members::parse_role;
use super::workspaces::{authorize, workspace_json};
use crate::clock;
use crate::domain::limits::EMAIL_CHARS;
use crate::domain::roles::{check_invite_role, invite_expires_at, invite_is_open};
use crate::domain::{AccessError, InviteStatus, Role};
use crate::http::request::{path_uuid, reject, too_long};
use crate::http::response::{created, no_content, ok, ApiError, ApiResult};
use crate::http::{AppState, Req};
use crate::store::identity::{self, InviteRow, UserRow, INVITES};
use crate::store::{Reader, StoreError};

fn invite_not_found() -> ApiError {
    ApiError::not_found("Invite not found")
}

/// InviteResponse: `{"id","email","role","status","invited_by_email"}`.
fn invite_json(r: &impl Reader, inv: &InviteRow) -> Result<Value, StoreError> {
    let by = match inv.invited_by {
        Some(id) => identity::user(r, id)?.map(|u| u.email),
        None => None,
    };
    Ok(json!({
        "id": inv.id,
        "email": inv.email,
        "role": inv.role.as_str(),
        "status": inv.status.as_str(),
        "invited_by_email": by,
    }))
}

/// `GET …/invites`: admin+; open invites only, oldest first.
pub async fn list(state: &AppState, rq: Req, ws: String) -> ApiResult {
    let user = rq.caller.user()?.id;
    let ws = path_uuid("workspace_id", &ws)?;
    let now = clock::now_micros();
    let invites = state
        .store
        .read(move |tx| -> Result<Vec<Value>, ApiError> {
            authorize(tx, ws, user, Role::Admin)?;
            let mut out = Vec::new();
            for inv in identity::rows_of::<InviteRow>(tx, INVITES, "invites", ws)? {
                if invite_is_open(inv.status, inv.expires_at, now) {
                    out.push(invite_json(tx, &inv)?);
                }
            }
            Ok(out)
        })
        .await?;
    Ok(ok(&invites))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = invites::CreateBody)]
pub(crate) struct CreateBody {
    email: String,
    #[serde(default = "member_role")]
    #[schema(value_type = Object)]
    role: Value,
}

fn member_role() -> Value {
    json!(Role::Member.as_str())
}

/// `POST …/invites`: admin+; only owners invite owners (D16); never into a personal
/// workspace; not for members or emails with an open invite.
pub async fn create(state: &AppState, rq: Req, ws: String) -> ApiResult {
    let caller = rq.caller.user()?.clone();
    let ws = path_uuid("workspace_id", &ws)?;
    let body: CreateBody = rq.json()?;
    reject(
        too_long("email", &body.email, EMAIL_CHARS)
            .into_iter()
            .collect(),
    )?;
    let role = parse_role(&body.role)?;
    let email = body.email;
    let ttl_days = u32::try_from(state.config.auth.invite_ttl_days).unwrap_or(u32::MAX);
    let answer = state
        .store
        .write(move |tx| -> Result<Value, ApiError> {
            let me = authorize(tx, ws, caller.id, Role::Admin)?;
            check_invite_role(me.role, role)?;
            let workspace =
                identity::workspace(tx, ws)?.ok_or(ApiError::from(AccessError::NotAMember))?;
            if workspace.is_personal {
                return Err(ApiError::Forbidden(
                    "Cannot invite members to a personal workspace".into(),
                ));
            }
            if let Some(user) = identity::user_by_email(tx, &email)? {
                if identity::membership(tx, ws, user.id)?.is_some() {
                    return Err(ApiError::Conflict("User is already a member".into()));
                }
            }
            let now = clock::now_micros();
            if open_invites_for(tx, &email, now)?
                .iter()
                .any(|i| i.workspace_id == ws)
            {
                return Err(ApiError::Conflict(
                    "Invite already pending for this email".into(),
                ));
            }
            let invite = InviteRow {
                id: Uuid::now_v7(),
                workspace_id: ws,
                email,
                role,
                status: InviteStatus::Pending,
                invited_by: Some(caller.id),
                expires_at: invite_expires_at(now, ttl_days),
                created_at: now,
            };
            identity::put_invite(tx, &invite)?;
            Ok(json!({
                "id": invite.id,
                "email": invite.email,
                "role": invite.role.as_str(),
                "status": invite.status.as_str(),
                "invited_by_email": caller.email,
            }))
        })
        .await?;
    Ok(created(&answer))
}

/// `DELETE …/invites/{invite_id}`: admin+; the invite must be open and in this workspace.
pub async fn cancel(state: &AppState, rq: Req, ws: String, invite: String) -> ApiResult {
    let user = rq.caller.user()?.id;
    let ws = path_uuid("workspace_id", &ws)?;
    let invite = path_uuid("invite_id", &invite)?;
    state
        .store
        .write(move |tx| -> Result<(), ApiError> {
            authorize(tx, ws, user, Role::Admin)?;
            let mut row = identity::row_of::<InviteRow>(tx, INVITES, "invites", ws, invite)?
                .filter(|i| invite_is_open(i.status, i.expires_at, clock::now_micros()))
                .ok_or_else(invite_not_found)?;
            row.status = InviteStatus::Cancelled;
            identity::put_invite(tx, &row)?;
            Ok(())
        })
        .await?;
    Ok(no_content())
}

/// The caller's own open invite, or 404 `Invite not found` (also for someone else's, so
/// that existence does not leak).
fn own_open_invite(r: &impl Reader, id: Uuid, user: &UserRow) -> Result<InviteRow, ApiError> {
    identity::invite(r, id)?
        .filter(|i| {
            identity::lower(&i.email) == identity::lower(&user.email)
                && invite_is_open(i.status, i.expires_at, clock::now_micros())
        })
        .ok_or_else(invite_not_found)
}

/// `POST /ui/workspaces/invites/{invite_id}/accept` (mode F): joins the workspace with the
/// invite's role; 409 when already a member (D16), leaving the invite pending.
pub async fn accept(state: &AppState, rq: Req, invite: String) -> ApiResult {
    let user = rq.caller.user()?.clone();
    let invite = path_uuid("invite_id", &invite)?;
    let ws = state
        .store
        .write(move |tx| -> Result<_, ApiError> {
            let mut row = own_open_invite(tx, invite, &user)?;
            let ws = identity::workspace(tx, row.workspace_id)?.ok_or_else(invite_not_found)?;
            if identity::membership(tx, ws.id, user.id)?.is_some() {
                return Err(ApiError::Conflict(
                    "Already a member of this workspace".into(),
                ));
            }
            identity::add_member(tx, ws.id, user.id, row.role)?;
            row.status = InviteStatus::Accepted;
            identity::put_invite(tx, &row)?;
            Ok(ws)
        })
        .await?;
    Ok(ok(&workspace_json(&ws)))
}

/// `POST /ui/workspaces/invites/{invite_id}/decline` (mode F).
pub async fn decline(state: &AppState, rq: Req, invite: String) -> ApiResult {
    let user = rq.caller.user()?.clone();
    let invite = path_uuid("invite_id", &invite)?;
    state
        .store
        .write(move |tx| -> Result<(), ApiError> {
            let mut row = own_open_invite(tx, invite, &user)?;
            row.status = InviteStatus::Declined;
            identity::put_invite(tx, &row)?;
            Ok(())
        })
        .await?;
    Ok(no_content())
}
