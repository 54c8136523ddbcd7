//! P9a general settings, P9g the danger zone (delete with the slug typed) and P10 —
//! `/workspaces/new`. All writes are the workspace API's handlers.

use http::StatusCode;
use maud::html;
use serde_json::json;

use super::settings::{
    self, confirmed, done_notice, frame, refused, slug_or_from, Notice, Section,
};
use crate::api::MAX_WORKSPACES_PER_USER;
use crate::auth::Caller;
use crate::domain::roles::Role;
use crate::http::request::Query;
use crate::http::response::HttpResponse;
use crate::http::router::{Endpoint, SettingsPage};
use crate::http::AppState;
use crate::store::identity;
use crate::ui::api_call::call;
use crate::ui::layout::{self, seg, Nav};
use crate::ui::response::{html as html_page, redirect, UiError, UiReq};
use crate::ui::scope::Scope;
use crate::ui::session::Session;

/// P9a — `/ws/{ws}/settings`: name and description (admin+ edit), the immutable slug.
pub async fn general(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    scope: &Scope,
    status: StatusCode,
    notice: Notice,
) -> Result<HttpResponse, UiError> {
    let ws = scope.ws().ws.clone();
    let id = ws.id;
    let members = state
        .store
        .read(move |tx| identity::members_of(tx, id))
        .await?
        .len();
    let notice = notice.or_else(|| done_notice(rq));
    let body = html! {
        section.card {
            dl.facts {
                dt { "Name" } dd.ws-title { (ws.name) @if ws.is_personal { " " span.tag { "personal" } } }
                dt { "Slug" } dd { code { (ws.slug) } " " span.hint { "(part of every URL; it cannot change)" } }
                dt { "Description" } dd { (ws.description.as_deref().unwrap_or("—")) }
                dt { "Members" } dd { (members) }
                dt { "Environments" } dd { (scope.ws().envs.len()) }
                dt { "Your role" } dd { (scope.role().as_str()) }
            }
        }
        @if scope.is_admin() {
            section.card {
                h2 { "Edit" }
                form.stack method="post" action=(settings::base(scope)) {
                    (layout::csrf_field(state, who))
                    label for="ws-name" { "Name" }
                    input #ws-name type="text" name="name" required maxlength="255" value=(ws.name);
                    label for="ws-desc" { "Description" }
                    input #ws-desc type="text" name="description" maxlength="1000" value=(ws.description.as_deref().unwrap_or(""));
                    p.hint { "A description cannot be removed, only replaced: an empty field keeps the current one." }
                    div { button.primary type="submit" { "Save" } }
                }
            }
        }
    };
    Ok(frame(
        state,
        who,
        scope,
        Section::Page(SettingsPage::General),
        status,
        notice,
        body,
    ))
}

/// P9g — `/ws/{ws}/settings/danger` (owners; others see why there is no form).
pub async fn danger(
    state: &AppState,
    who: &Session,
    scope: &Scope,
    status: StatusCode,
    notice: Notice,
) -> Result<HttpResponse, UiError> {
    let ws = &scope.ws().ws;
    let body = html! {
        section.card.danger-zone {
            h2 { "Delete this workspace" }
            p { "Deleting " strong { (ws.name) } " removes, for good:" }
            ul {
                li { (scope.ws().envs.len()) " environment(s), with all their builds, tasks, events, assets and locks" }
                li { "every API key (builds using them fail) and target root" }
                li { "every membership and pending invite" }
            }
            @if scope.role() == Role::Owner {
                form.stack method="post" action=(format!("{}/danger", settings::base(scope))) {
                    (layout::csrf_field(state, who))
                    label for="confirm-ws" { "Type " code { (ws.slug) } " to confirm" }
                    input #confirm-ws type="text" name="confirm" required autocomplete="off";
                    div { button.danger type="submit" { "Delete workspace" } }
                }
            } @else {
                p.muted { "Only an owner can delete a workspace." }
            }
        }
    };
    Ok(frame(
        state,
        who,
        scope,
        Section::Page(SettingsPage::Danger),
        status,
        notice,
        body,
    ))
}

/// Saves the general form, or deletes the workspace (the slug typed; then `/`).
pub async fn act(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    scope: &Scope,
    delete: bool,
    form: &Query,
) -> Result<HttpResponse, UiError> {
    let ws = scope.ws().ws.id.to_string();
    if delete {
        if let Err((status, text)) = confirmed(form, &scope.ws().ws.slug) {
            return danger(state, who, scope, status, Some(("error", text))).await;
        }
        let endpoint = Endpoint::DeleteWorkspace { ws };
        return match call(state, rq, scope.user_caller(&who.user), endpoint, "", None).await {
            Ok(_) => Ok(redirect("/")),
            Err(e) => {
                let (status, text) = refused(e)?;
                danger(state, who, scope, status, Some(("error", text))).await
            }
        };
    }
    let mut body = json!({"name": form.get("name").unwrap_or("").trim()});
    if let Some(d) = form
        .get("description")
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        body["description"] = json!(d);
    }
    let endpoint = Endpoint::UpdateWorkspace { ws };
    match call(
        state,
        rq,
        scope.user_caller(&who.user),
        endpoint,
        "",
        Some(body),
    )
    .await
    {
        Ok(_) => Ok(redirect(&format!("{}?done=saved", settings::base(scope)))),
        Err(e) => {
            let (status, text) = refused(e)?;
            general(state, rq, who, scope, status, Some(("error", text))).await
        }
    }
}

/// P10 — `/workspaces/new`: one form; `form` keeps what was typed after a refusal.
pub async fn new_form(
    state: &AppState,
    who: &Session,
    form: &Query,
    status: StatusCode,
    notice: Notice,
) -> Result<HttpResponse, UiError> {
    let user = who.user.id;
    let created = state
        .store
        .read(move |tx| identity::workspaces_created_by(tx, user))
        .await?;
    let v = |name: &str| form.get(name).unwrap_or("").to_owned();
    let env_name = form.get("initial_environment_name").unwrap_or("Main");
    let env_slug = form.get("initial_environment_slug").unwrap_or("main");
    let body = html! {
        h1 { "New workspace" }
        p.lede { "You have created " (created) " of " (MAX_WORKSPACES_PER_USER) " workspaces." }
        @if let Some((kind, text)) = &notice { (layout::notice(kind, html! { (text) })) }
        @if created >= MAX_WORKSPACES_PER_USER {
            section.card { p { "You have reached the limit of " (MAX_WORKSPACES_PER_USER) " workspaces you can create. Delete one (Settings → Danger zone) or ask to be invited to an existing one." } }
        } @else {
            section.card {
                form.stack.new-ws method="post" action="/workspaces/new" {
                    (layout::csrf_field(state, who))
                    label for="nw-name" { "Name" }
                    input #nw-name type="text" name="name" required maxlength="255" value=(v("name"));
                    label for="nw-slug" { "Slug" }
                    input #nw-slug type="text" name="slug" maxlength="64" value=(v("slug")) placeholder="my-team" data-slug-from="nw-name";
                    p.hint { "Lower-case letters, digits, - and _ (2–64, not starting or ending with - or _). Unique on this server; part of every URL; it cannot change. Left empty, it is made from the name." }
                    label for="nw-desc" { "Description (optional)" }
                    input #nw-desc type="text" name="description" maxlength="1000" value=(v("description"));
                    h3 { "First environment" }
                    label for="nw-env-name" { "Name" }
                    input #nw-env-name type="text" name="initial_environment_name" maxlength="255" value=(env_name);
                    label for="nw-env-slug" { "Slug" }
                    input #nw-env-slug type="text" name="initial_environment_slug" maxlength="64" value=(env_slug) data-slug-from="nw-env-name";
                    h3 { "First target root (optional)" }
                    label for="nw-root-name" { "Name" }
                    input #nw-root-name type="text" name="initial_target_root_name" maxlength="255" value=(v("initial_target_root_name")) placeholder="default";
                    label for="nw-root-uri" { "URI prefix" }
                    input #nw-root-uri type="text" name="initial_target_root_uri" maxlength="1000" value=(v("initial_target_root_uri")) placeholder="s3://bucket/stardag/";
                    div { button.primary type="submit" { "Create workspace" } }
                }
            }
        }
    };
    Ok(html_page(
        status,
        layout::page(state, who, None, Nav::Account, "New workspace", body),
    ))
}

/// Creates the workspace through the API, then its Connect page.
pub async fn create(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    form: Query,
) -> Result<HttpResponse, UiError> {
    let field = |name: &str| form.get(name).map(str::trim).filter(|t| !t.is_empty());
    let body = json!({
        "name": field("name").unwrap_or(""),
        "slug": slug_or_from(&form, "slug", "name").unwrap_or_default(),
        "description": field("description"),
        "initial_environment_name": field("initial_environment_name"),
        // With neither slug nor name, the API's default environment.
        "initial_environment_slug": slug_or_from(&form, "initial_environment_slug", "initial_environment_name"),
        "initial_target_root_name": field("initial_target_root_name"),
        "initial_target_root_uri": field("initial_target_root_uri"),
    });
    let caller = Caller::User {
        user: who.user.clone(),
        token_workspace: None,
    };
    match call(state, rq, caller, Endpoint::CreateWorkspace, "", Some(body)).await {
        Ok(ws) => {
            let slug = ws["slug"].as_str().unwrap_or_default().to_owned();
            let scope = crate::ui::scope::resolve(state, who, &slug, None).await?;
            Ok(redirect(&match scope.ws().envs.first() {
                Some(e) => format!("/ws/{}/env/{}/connect", seg(&slug), seg(&e.slug)),
                None => settings::base(&scope),
            }))
        }
        Err(e) => {
            let (status, text) = refused(e)?;
            new_form(state, who, &form, status, Some(("error", text))).await
        }
    }
}
