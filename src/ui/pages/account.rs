//! P12 — `/account`: who I am, my workspaces and roles, the session's expiry, and the
//! change-password form (local mode). The form runs `POST /api/v1/auth/change-password`,
//! which ends every earlier session; the answer's fresh session replaces the cookie, so
//! the user stays signed in here and nowhere else.

use http::StatusCode;
use maud::html;
use serde_json::json;

use super::settings::{done_notice, refused, Notice};
use crate::auth::Caller;
use crate::config::AuthMode;
use crate::http::request::Query;
use crate::http::response::HttpResponse;
use crate::http::router::Endpoint;
use crate::http::AppState;
use crate::ui::api_call::call;
use crate::ui::layout::{self, seg, Nav};
use crate::ui::response::{html as html_page, redirect, UiError, UiReq};
use crate::ui::scope;
use crate::ui::session::{self, Session};

pub async fn page(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    status: StatusCode,
    notice: Notice,
) -> Result<HttpResponse, UiError> {
    let notice = notice.or_else(|| done_notice(rq));
    let local = state.config.auth.mode == AuthMode::Local && who.user.password_hash.is_some();
    let user = who.user.id;
    let mine = state
        .store
        .read(move |tx| scope::my_workspaces(tx, user))
        .await?;
    let body = html! {
        h1 { "Account" }
        @if let Some((kind, text)) = &notice { (layout::notice(kind, html! { (text) })) }
        section.card {
            dl.facts {
                dt { "Email" } dd { (who.user.email) }
                dt { "Display name" } dd { (who.user.display_name.as_deref().unwrap_or("—")) }
                dt { "External id" } dd { code { (who.user.external_id) } }
                dt { "Session expires" } dd { (layout::time(who.expires_at * 1_000_000)) }
            }
        }
        section.card {
            h2 { "Workspaces and roles" }
            table.list {
                thead { tr { th { "Workspace" } th { "Role" } th { "Environments" } } }
                tbody {
                    @for w in &mine {
                        tr {
                            td { (w.ws.name) @if w.ws.is_personal { " " span.tag { "personal" } } }
                            td { (w.role.as_str()) }
                            td {
                                @for e in &w.envs {
                                    a href=(format!("/ws/{}/env/{}/builds", seg(&w.ws.slug), seg(&e.slug))) { (e.name) } " "
                                }
                            }
                        }
                    }
                }
            }
            p { a href="/invites" { "Pending invites" } " · " a href="/workspaces/new" { "New workspace" } }
        }
        section.card {
            h2 { "Change password" }
            @if local {
                form.stack.password method="post" action="/account/password" {
                    (layout::csrf_field(state, who))
                    label for="pw-current" { "Current password" }
                    input #pw-current type="password" name="current_password" required autocomplete="current-password";
                    label for="pw-new" { "New password" }
                    input #pw-new type="password" name="new_password" required minlength="8" autocomplete="new-password";
                    label for="pw-again" { "New password again" }
                    input #pw-again type="password" name="new_password_again" required minlength="8" autocomplete="new-password";
                    p.hint { "At least 8 characters. Every other session of this account is signed out." }
                    div { button.primary type="submit" { "Change password" } }
                }
            } @else {
                p { "This account signs in through the identity provider; its password is managed there." }
            }
        }
    };
    Ok(html_page(
        status,
        layout::page(state, who, None, Nav::Account, "Account", body),
    ))
}

/// `POST /account/password`: the two new passwords must match (the UI's check), then the
/// API decides (401 wrong current password, 422 length, 429 throttled).
pub async fn change_password(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    form: Query,
) -> Result<HttpResponse, UiError> {
    let new = form.get("new_password").unwrap_or("");
    if form.get("new_password_again").unwrap_or("") != new {
        let text = "The new passwords do not match. Nothing was changed.".to_owned();
        return page(
            state,
            rq,
            who,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("error", text)),
        )
        .await;
    }
    let body = json!({
        "current_password": form.get("current_password").unwrap_or(""),
        "new_password": new,
    });
    let caller = Caller::User {
        user: who.user.clone(),
        token_workspace: None,
    };
    match call(state, rq, caller, Endpoint::ChangePassword, "", Some(body)).await {
        Ok(answer) => {
            let mut resp = redirect("/account?done=password");
            let token = answer["session_token"].as_str().unwrap_or_default();
            session::set_cookie(state, &mut resp, token);
            Ok(resp)
        }
        Err(e) => {
            let (status, text) = refused(e)?;
            page(state, rq, who, status, Some(("error", text))).await
        }
    }
}
