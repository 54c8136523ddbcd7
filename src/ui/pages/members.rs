//! P9b members and P9c invites of a workspace, and P11 — `/invites`, the signed-in
//! user's own pending invites. Lists and actions are the API's handlers; the page only
//! hides what the role may not do (D16: admins manage non-owners, owners everyone).

use http::StatusCode;
use maud::html;
use serde_json::{json, Value};

use super::settings::{self, done_notice, frame, refused, Notice, Section};
use crate::auth::Caller;
use crate::domain::roles::Role;
use crate::http::request::Query;
use crate::http::response::HttpResponse;
use crate::http::router::{Endpoint, SettingsPage};
use crate::http::AppState;
use crate::ui::api_call::call;
use crate::ui::layout::{self, Nav};
use crate::ui::response::{html as html_page, redirect, UiError, UiReq};
use crate::ui::scope::Scope;
use crate::ui::session::Session;

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// The roles `me` may hand out: owners any, admins admin or member.
fn grantable(me: Role) -> Vec<Role> {
    match me {
        Role::Owner => vec![Role::Owner, Role::Admin, Role::Member],
        _ => vec![Role::Admin, Role::Member],
    }
}

/// Whether `me` may change or remove a member whose role is `target` (D16).
fn may_manage(me: Role, target: Role) -> bool {
    me == Role::Owner || (me == Role::Admin && target != Role::Owner)
}

/// P9b — `/ws/{ws}/settings/members`.
pub async fn members(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    scope: &Scope,
    status: StatusCode,
    notice: Notice,
) -> Result<HttpResponse, UiError> {
    let ws_id = scope.ws().ws.id.to_string();
    let list = call(
        state,
        rq,
        scope.user_caller(&who.user),
        Endpoint::ListMembers { ws: ws_id },
        "",
        None,
    )
    .await?;
    let rows = list.as_array().cloned().unwrap_or_default();
    let me = scope.role();
    let base = settings::base(scope);
    let notice = notice.or_else(|| done_notice(rq));
    let body = html! {
        section.card {
            table.list.members {
                thead { tr { th { "Email" } th { "Name" } th { "Role" } @if me >= Role::Admin { th { "Change role" } th {} } } }
                tbody {
                    @for m in &rows {
                        @let role = Role::parse(str_of(m, "role")).unwrap_or(Role::Member);
                        @let id = str_of(m, "id");
                        @let is_me = str_of(m, "user_id") == who.user.id.to_string();
                        tr data-member=(str_of(m, "email")) {
                            td { (str_of(m, "email")) @if is_me { " " span.tag { "you" } } }
                            td { (m["display_name"].as_str().unwrap_or("—")) }
                            td.role { (role.as_str()) }
                            @if me >= Role::Admin {
                                td {
                                    @if may_manage(me, role) {
                                        form.inline method="post" action=(format!("{base}/members/{id}/role")) {
                                            (layout::csrf_field(state, who))
                                            label.sr-only for=(format!("role-{id}")) { "Role of " (str_of(m, "email")) }
                                            select id=(format!("role-{id}")) name="role" {
                                                @for r in grantable(me) {
                                                    option value=(r.as_str()) selected[r == role] { (r.as_str()) }
                                                }
                                            }
                                            button.small type="submit" { "Save" }
                                        }
                                    }
                                }
                                td {
                                    @if may_manage(me, role) {
                                        form method="post" action=(format!("{base}/members/{id}/remove")) {
                                            (layout::csrf_field(state, who))
                                            button.danger.small type="submit"
                                                data-confirm=(format!("Remove {} from this workspace?", str_of(m, "email"))) { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if me < Role::Admin { p.hint { "Only admins and owners change roles or remove members." } }
            @else if me == Role::Admin { p.hint { "Admins manage admins and members; only owners change or remove owners." } }
        }
    };
    Ok(frame(
        state,
        who,
        scope,
        Section::Page(SettingsPage::Members),
        status,
        notice,
        body,
    ))
}

/// P9c — `/ws/{ws}/settings/invites` (admin+; the API refuses members, and the page
/// shows its answer).
pub async fn invites(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    scope: &Scope,
    status: StatusCode,
    notice: Notice,
) -> Result<HttpResponse, UiError> {
    let ws = &scope.ws().ws;
    let listed = call(
        state,
        rq,
        scope.user_caller(&who.user),
        Endpoint::ListInvites {
            ws: ws.id.to_string(),
        },
        "",
        None,
    )
    .await;
    let section = Section::Page(SettingsPage::Invites);
    let rows = match listed {
        Ok(v) => v.as_array().cloned().unwrap_or_default(),
        Err(e) => {
            let (status, text) = refused(e)?;
            return Ok(frame(
                state,
                who,
                scope,
                section,
                status,
                Some(("error", text)),
                html! {},
            ));
        }
    };
    let base = settings::base(scope);
    let notice = notice.or_else(|| done_notice(rq));
    let days = state.config.auth.invite_ttl_days;
    let body = html! {
        section.card {
            h2 { "Invite someone" }
            @if ws.is_personal {
                p { "Personal workspaces cannot have invitations — " a href="/workspaces/new" { "create a team workspace" } "." }
            } @else {
                form.inline method="post" action=(format!("{base}/invites")) {
                    (layout::csrf_field(state, who))
                    label for="invite-email" { "Email" }
                    input #invite-email type="email" name="email" required maxlength="320" placeholder="name@example.org";
                    label for="invite-role" { "Role" }
                    select #invite-role name="role" {
                        @for r in grantable(scope.role()).into_iter().rev() { option value=(r.as_str()) { (r.as_str()) } }
                    }
                    button.primary type="submit" { "Invite" }
                }
                p.hint { "No email is sent. Tell them to sign in to this server and open Invites in their menu. Invites expire after " (days) " days." }
            }
        }
        section.card {
            h2 { "Pending" }
            @if rows.is_empty() { p.muted { "No pending invites." } } @else {
                table.list.invites {
                    thead { tr { th { "Email" } th { "Role" } th { "Invited by" } th {} } }
                    tbody {
                        @for i in &rows {
                            tr data-invite=(str_of(i, "email")) {
                                td { (str_of(i, "email")) }
                                td { (str_of(i, "role")) }
                                td { (i["invited_by_email"].as_str().unwrap_or("—")) }
                                td {
                                    form method="post" action=(format!("{base}/invites/{}/cancel", str_of(i, "id"))) {
                                        (layout::csrf_field(state, who))
                                        button.danger.small type="submit" { "Cancel" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(state, who, scope, section, status, notice, body))
}

/// The POSTs of both pages: each runs its API handler, then back to the page with a
/// confirmation, or the page again with the API's refusal.
pub async fn act(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    scope: &Scope,
    action: Action,
    form: &Query,
) -> Result<HttpResponse, UiError> {
    let ws = scope.ws().ws.id.to_string();
    let (endpoint, body, page, done) = match action {
        Action::SetRole(member) => (
            Endpoint::UpdateMember { ws, member },
            Some(json!({"role": form.get("role").unwrap_or("")})),
            SettingsPage::Members,
            "role",
        ),
        Action::Remove(member) => (
            Endpoint::RemoveMember { ws, member },
            None,
            SettingsPage::Members,
            "removed",
        ),
        Action::Invite => (
            Endpoint::CreateInvite { ws },
            Some(json!({
                "email": form.get("email").unwrap_or("").trim(),
                "role": form.get("role").unwrap_or("member"),
            })),
            SettingsPage::Invites,
            "invited",
        ),
        Action::Cancel(invite) => (
            Endpoint::CancelInvite { ws, invite },
            None,
            SettingsPage::Invites,
            "cancelled",
        ),
    };
    let answer = call(state, rq, scope.user_caller(&who.user), endpoint, "", body).await;
    let path = match page {
        SettingsPage::Members => "members",
        _ => "invites",
    };
    match answer {
        Ok(_) => {
            // Removing oneself leaves the workspace: its pages are 404 from now on.
            if done == "removed" && !still_member(state, who, scope).await? {
                return Ok(redirect("/"));
            }
            Ok(redirect(&format!(
                "{}/{path}?done={done}",
                settings::base(scope)
            )))
        }
        Err(e) => {
            let (status, text) = refused(e)?;
            let notice = Some(("error", text));
            match page {
                SettingsPage::Members => members(state, rq, who, scope, status, notice).await,
                _ => invites(state, rq, who, scope, status, notice).await,
            }
        }
    }
}

async fn still_member(state: &AppState, who: &Session, scope: &Scope) -> Result<bool, UiError> {
    let (ws, user) = (scope.ws().ws.id, who.user.id);
    Ok(state
        .store
        .read(move |tx| crate::store::identity::membership(tx, ws, user))
        .await?
        .is_some())
}

/// A members or invites form.
pub enum Action {
    SetRole(String),
    Remove(String),
    Invite,
    Cancel(String),
}

/// The caller of the user's own routes (my invites): no workspace in the token.
fn own_caller(who: &Session) -> Caller {
    Caller::User {
        user: who.user.clone(),
        token_workspace: None,
    }
}

/// P11 — `/invites`: pending invites to my email, with Accept and Decline.
pub async fn my_invites(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    status: StatusCode,
    notice: Notice,
) -> Result<HttpResponse, UiError> {
    let list = call(state, rq, own_caller(who), Endpoint::MyInvites, "", None).await?;
    let rows = list.as_array().cloned().unwrap_or_default();
    let notice = notice.or_else(|| done_notice(rq));
    let body = html! {
        h1 { "Invites" }
        p.lede { "Invitations to workspaces on this server, sent to " strong { (who.user.email) } "." }
        @if let Some((kind, text)) = &notice { (layout::notice(kind, html! { (text) })) }
        section.card {
            @if rows.is_empty() { p.muted { "No pending invites." } } @else {
                table.list.my-invites {
                    thead { tr { th { "Workspace" } th { "Role" } th { "Invited by" } th {} } }
                    tbody {
                        @for i in &rows {
                            @let id = str_of(i, "id");
                            tr data-invite=(str_of(i, "workspace_name")) {
                                td { (str_of(i, "workspace_name")) }
                                td { (str_of(i, "role")) }
                                td { (i["invited_by_email"].as_str().unwrap_or("—")) }
                                td.actions {
                                    form.inline method="post" action=(format!("/invites/{id}/accept")) {
                                        (layout::csrf_field(state, who))
                                        button.primary.small type="submit" { "Accept" }
                                    }
                                    form.inline method="post" action=(format!("/invites/{id}/decline")) {
                                        (layout::csrf_field(state, who))
                                        button.small type="submit" { "Decline" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html_page(
        status,
        layout::page(state, who, None, Nav::Account, "Invites", body),
    ))
}

/// Accept → the workspace's first environment; decline → back to the list.
pub async fn answer_invite(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    invite: &str,
    accept: bool,
) -> Result<HttpResponse, UiError> {
    let invite = invite.to_owned();
    let endpoint = if accept {
        Endpoint::AcceptInvite { invite }
    } else {
        Endpoint::DeclineInvite { invite }
    };
    match call(state, rq, own_caller(who), endpoint, "", None).await {
        Ok(ws) if accept => {
            let slug = str_of(&ws, "slug").to_owned();
            let scope = crate::ui::scope::resolve(state, who, &slug, None).await?;
            Ok(redirect(&match scope.ws().envs.first() {
                Some(e) => format!("{}/env/{}/builds", scope.base(), layout::seg(&e.slug)),
                None => settings::base(&scope),
            }))
        }
        Ok(_) => Ok(redirect("/invites?done=declined")),
        Err(e) => {
            let (status, text) = refused(e)?;
            my_invites(state, rq, who, status, Some(("error", text))).await
        }
    }
}
