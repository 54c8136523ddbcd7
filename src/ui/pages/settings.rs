//! P9e — `/ws/{ws}/settings/api-keys`: the workspace's API keys per environment.
//! Admins create keys (the full key is shown once, on the answer to the POST, which
//! like every UI page is `no-store`) and revoke them; members see metadata only. Both
//! actions are the API's handlers.
//!
//! Also the pieces every settings page shares: the section menu, the page frame with
//! its notice, and how an API refusal becomes an inline message.

use http::StatusCode;
use maud::{html, Markup};
use serde_json::json;

use crate::domain::roles::Role;
use crate::domain::slug::slug_from_name;
use crate::http::request::Query;
use crate::http::response::{ApiError, HttpResponse};
use crate::http::router::{Endpoint, SettingsAction, SettingsPage};
use crate::http::AppState;
use crate::store::identity;
use crate::ui::api_call::call;
use crate::ui::layout::{self, Nav};
use crate::ui::response::{html as html_page, redirect, UiError, UiReq};
use crate::ui::scope::{self, Scope};
use crate::ui::session::Session;

/// What the last action produced: a new key (env name, key) or an error text.
pub type Outcome = Option<Result<(String, String), String>>;

/// One key of the list, as the API's `GET …/api-keys` answers it.
struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    created_by: Option<uuid::Uuid>,
    created_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked: bool,
}

impl KeyRow {
    fn of(v: &serde_json::Value) -> KeyRow {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let t = |k: &str| v[k].as_str().and_then(crate::clock::parse_rfc3339_micros);
        KeyRow {
            id: s("id"),
            name: s("name"),
            prefix: s("key_prefix"),
            created_by: v["created_by_id"].as_str().and_then(|u| u.parse().ok()),
            created_at: t("created_at"),
            last_used_at: t("last_used_at"),
            revoked: !v["revoked_at"].is_null(),
        }
    }
}

/// P9e — `GET /ws/{ws}/settings/api-keys[?include_revoked=true]`: the keys of every
/// environment, read through the API's list handler (`include_revoked` passed on, so
/// revoked keys are hidden unless asked for, as the API does).
pub async fn api_keys(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    outcome: Outcome,
) -> Result<HttpResponse, UiError> {
    let scope = scope::resolve(state, who, ws, None).await?;
    let envs = scope.ws().envs.clone();
    let with_revoked = rq.query.get("include_revoked") == Some("true");
    let query = if with_revoked {
        "include_revoked=true"
    } else {
        ""
    };
    let mut keys: Vec<Vec<KeyRow>> = Vec::with_capacity(envs.len());
    for env in &envs {
        let endpoint = Endpoint::ListApiKeys {
            ws: scope.ws().ws.id.to_string(),
            env: env.id.to_string(),
        };
        let list = call(
            state,
            rq,
            scope.user_caller(&who.user),
            endpoint,
            query,
            None,
        )
        .await?;
        keys.push(
            list.as_array()
                .into_iter()
                .flatten()
                .map(KeyRow::of)
                .collect(),
        );
    }
    let creators: Vec<uuid::Uuid> = keys.iter().flatten().filter_map(|k| k.created_by).collect();
    let users = state
        .store
        .read(move |tx| -> Result<_, UiError> {
            let mut users = std::collections::HashMap::new();
            for u in creators {
                if let Some(row) = identity::user(tx, u)? {
                    users.insert(u, row.email);
                }
            }
            Ok(users)
        })
        .await?;
    let admin = scope.is_admin();
    let ws_slug = layout::seg(&scope.ws().ws.slug);
    let page_url = format!("/ws/{ws_slug}/settings/api-keys");
    let body = html! {
        p.lede { "Keys let the SDK report builds to one environment of " strong { (scope.ws().ws.name) } "." }
        @match &outcome {
            Some(Ok((env, key))) => {
                section.card.secret {
                    (layout::notice("ok", html! { "New key for " strong { (env) } ". Store it now: it is never shown again." }))
                    (layout::copy_field("API key", key))
                }
            }
            Some(Err(e)) => { (layout::notice("error", html! { (e) })) }
            None => {}
        }
        @if admin {
            section.card {
                h2 { "Create a key" }
                form.inline method="post" action=(page_url) {
                    (layout::csrf_field(state, who))
                    label for="new-env" { "Environment" }
                    select #new-env name="env" {
                        @for e in &envs { option value=(e.slug) { (e.name) } }
                    }
                    label for="new-name" { "Name" }
                    input #new-name type="text" name="name" required maxlength="255" placeholder="ci";
                    button.primary type="submit" { "Create key" }
                }
            }
        }
        p.revoked-toggle {
            @if with_revoked {
                "Revoked keys are listed. " a #toggle-revoked href=(page_url) { "Hide revoked keys" }
            } @else {
                "Revoked keys are hidden. " a #toggle-revoked href=(format!("{page_url}?include_revoked=true")) { "Show revoked keys" }
            }
        }
        @for (env, ks) in envs.iter().zip(&keys) {
            section.card {
                h2 { (env.name) " " span.muted.small { (env.slug) } }
                @if ks.is_empty() { p.muted { @if with_revoked { "No keys." } @else { "No active keys." } } } @else {
                    table.list.keys {
                        thead { tr { th { "Name" } th { "Key" } th { "Created by" } th { "Created" } th { "Last used" } th { "State" } @if admin { th { span.sr-only { "Actions" } } } } }
                        tbody {
                            @for k in ks {
                                tr data-key=(k.id) data-state=(if k.revoked { "revoked" } else { "active" }) {
                                    td { (k.name) }
                                    td { code { "sk_" (k.prefix) "…" } }
                                    td { (k.created_by.and_then(|u| users.get(&u)).map(String::as_str).unwrap_or("—")) }
                                    td { (layout::time_opt(k.created_at)) }
                                    td { (layout::time_opt(k.last_used_at)) }
                                    td { @if k.revoked { span.tag.revoked { "revoked" } } @else { span.tag.active { "active" } } }
                                    @if admin {
                                        td {
                                            @if !k.revoked {
                                                form method="post" action=(format!("{page_url}/{}/revoke", layout::seg(&k.id))) {
                                                    (layout::csrf_field(state, who))
                                                    input type="hidden" name="env" value=(env.slug);
                                                    button.danger.small type="submit" data-confirm="Revoke this key? Builds using it will fail." { "Revoke" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(
        state,
        who,
        &scope,
        Section::ApiKeys,
        StatusCode::OK,
        if outcome.is_none() {
            done_notice(rq)
        } else {
            None
        },
        body,
    ))
}

fn env_of<'a>(scope: &'a Scope, form: &Query) -> Result<&'a identity::EnvironmentRow, UiError> {
    let slug = form.get("env").unwrap_or("");
    scope
        .ws()
        .envs
        .iter()
        .find(|e| e.slug == slug)
        .ok_or(UiError::NotFound)
}

fn shown(e: ApiError) -> Result<String, UiError> {
    match e {
        ApiError::Forbidden(_)
        | ApiError::Validation(_)
        | ApiError::Conflict(_)
        | ApiError::BadRequest(_) => Ok(layout::detail_text(&e.detail())),
        e => Err(e.into()),
    }
}

pub async fn create_api_key(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    form: Query,
) -> Result<HttpResponse, UiError> {
    let scope = scope::resolve(state, who, ws, None).await?;
    let env = env_of(&scope, &form)?.clone();
    let name = form.get("name").unwrap_or("").trim().to_owned();
    let endpoint = Endpoint::CreateApiKey {
        ws: scope.ws().ws.id.to_string(),
        env: env.id.to_string(),
    };
    let outcome = match call(
        state,
        rq,
        scope.user_caller(&who.user),
        endpoint,
        "",
        Some(json!({"name": name})),
    )
    .await
    {
        Ok(v) => Ok((
            env.name.clone(),
            v["key"].as_str().unwrap_or_default().to_owned(),
        )),
        Err(e) => Err(shown(e)?),
    };
    api_keys(state, rq, who, ws, Some(outcome)).await
}

pub async fn revoke_api_key(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    key: &str,
    form: Query,
) -> Result<HttpResponse, UiError> {
    let scope = scope::resolve(state, who, ws, None).await?;
    let env = env_of(&scope, &form)?.clone();
    let endpoint = Endpoint::RevokeApiKey {
        ws: scope.ws().ws.id.to_string(),
        env: env.id.to_string(),
        key: key.to_owned(),
    };
    match call(state, rq, scope.user_caller(&who.user), endpoint, "", None).await {
        // Back to the list with revoked keys shown, so the row reads "revoked".
        Ok(_) => Ok(redirect(&format!(
            "/ws/{}/settings/api-keys?include_revoked=true&done=key-revoked",
            layout::seg(&scope.ws().ws.slug)
        ))),
        Err(ApiError::NotFound(_)) | Err(ApiError::Validation(_)) => Err(UiError::NotFound),
        Err(e) => {
            let text = shown(e)?;
            api_keys(state, rq, who, ws, Some(Err(text))).await
        }
    }
}

/// A section of the settings menu (ui.md P9).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Page(SettingsPage),
    ApiKeys,
}

impl Section {
    fn title(self) -> &'static str {
        match self {
            Section::Page(SettingsPage::General) => "General",
            Section::Page(SettingsPage::Members) => "Members",
            Section::Page(SettingsPage::Invites) => "Invites",
            Section::Page(SettingsPage::Environments) => "Environments",
            Section::Page(SettingsPage::TargetRoots) => "Target roots",
            Section::Page(SettingsPage::Danger) => "Danger zone",
            Section::ApiKeys => "API keys",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Section::Page(SettingsPage::General) => "",
            Section::Page(SettingsPage::Members) => "/members",
            Section::Page(SettingsPage::Invites) => "/invites",
            Section::Page(SettingsPage::Environments) => "/environments",
            Section::Page(SettingsPage::TargetRoots) => "/target-roots",
            Section::Page(SettingsPage::Danger) => "/danger",
            Section::ApiKeys => "/api-keys",
        }
    }
}

/// `/ws/{ws}/settings` of the scope's workspace.
pub fn base(scope: &Scope) -> String {
    format!("/ws/{}/settings", layout::seg(&scope.ws().ws.slug))
}

/// The sections the user's role may use: invites for admins, the danger zone for owners.
fn menu(scope: &Scope, current: Section) -> Markup {
    use SettingsPage::*;
    let mut items = vec![Section::Page(General), Section::Page(Members)];
    if scope.is_admin() {
        items.push(Section::Page(Invites));
    }
    items.extend([
        Section::Page(Environments),
        Section::ApiKeys,
        Section::Page(TargetRoots),
    ]);
    if scope.role() == Role::Owner {
        items.push(Section::Page(Danger));
    }
    let base = base(scope);
    html! {
        nav.tabs.settings-tabs aria-label="Workspace settings" {
            @for s in items {
                a.current[s == current] href=(format!("{base}{}", s.path()))
                    aria-current=[(s == current).then_some("page")] { (s.title()) }
            }
        }
    }
}

/// A notice above a settings form: `("ok" | "error", text)`.
pub type Notice = Option<(&'static str, String)>;

/// A settings page: title, the section menu, an optional notice, then the body.
pub fn frame(
    state: &AppState,
    who: &Session,
    scope: &Scope,
    section: Section,
    status: StatusCode,
    notice: Notice,
    body: Markup,
) -> HttpResponse {
    let title = section.title();
    let body = html! {
        div.page-head {
            p.crumbs { (scope.ws().ws.name) " · Settings" }
            h1 { (title) }
        }
        (menu(scope, section))
        @if let Some((kind, text)) = &notice { (layout::notice(kind, html! { (text) })) }
        (body)
    };
    html_page(
        status,
        layout::page(state, who, Some(scope), Nav::Settings, title, body),
    )
}

/// An API refusal shown on the form that caused it, with the API's status; a missing
/// resource is the UI's 404 page, anything else its error page.
pub fn refused(e: ApiError) -> Result<(StatusCode, String), UiError> {
    match e {
        ApiError::Forbidden(_)
        | ApiError::Validation(_)
        | ApiError::Conflict(_)
        | ApiError::BadRequest(_)
        | ApiError::Unauthorized { .. } => Ok((e.status(), layout::detail_text(&e.detail()))),
        ApiError::NotFound(_) => Err(UiError::NotFound),
        e => Err(e.into()),
    }
}

/// The confirmation line after a successful form: `?done=<what>` from a fixed list, so
/// no text of the URL is ever shown.
pub fn done_notice(rq: &UiReq) -> Notice {
    let text = match rq.query.get("done")? {
        "saved" => "Saved.",
        "role" => "Role changed.",
        "removed" => "Member removed.",
        "invited" => "Invite created. No email is sent: tell them to sign in and open Invites.",
        "cancelled" => "Invite cancelled.",
        "env-created" => "Environment created.",
        "env-saved" => "Environment saved.",
        "env-deleted" => "Environment deleted.",
        "root-created" => "Target root added.",
        "root-saved" => "Target root saved.",
        "root-deleted" => "Target root deleted.",
        "declined" => "Invite declined.",
        "key-revoked" => "Key revoked. Builds using it now fail.",
        "password" => "Password changed. Other sessions are signed out.",
        _ => return None,
    };
    Some(("ok", text.to_owned()))
}

/// A create form's slug field, or when it is empty the slug made from its name field
/// (`domain::slug::slug_from_name`); `None` when neither gives one.
pub fn slug_or_from(form: &Query, slug: &str, name: &str) -> Option<String> {
    let field = |f: &str| form.get(f).map(str::trim).filter(|s| !s.is_empty());
    field(slug)
        .map(str::to_owned)
        .or_else(|| field(name).and_then(slug_from_name))
}

/// A typed confirmation: the form's `confirm` field must equal `expected`.
pub fn confirmed(form: &Query, expected: &str) -> Result<(), (StatusCode, String)> {
    if form.get("confirm").map(str::trim) == Some(expected) {
        Ok(())
    } else {
        Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Type {expected} exactly to confirm. Nothing was deleted."),
        ))
    }
}

/// `GET /ws/{ws}/settings[/…]`: the section's page.
pub async fn show(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    page: SettingsPage,
) -> Result<HttpResponse, UiError> {
    use super::{environments as envs, members, workspace};
    let scope = scope::resolve(state, who, ws, None).await?;
    let (ok, none) = (StatusCode::OK, None);
    match page {
        SettingsPage::General => workspace::general(state, rq, who, &scope, ok, none).await,
        SettingsPage::Members => members::members(state, rq, who, &scope, ok, none).await,
        SettingsPage::Invites => members::invites(state, rq, who, &scope, ok, none).await,
        SettingsPage::Environments => envs::environments(state, rq, who, &scope, ok, none).await,
        SettingsPage::TargetRoots => {
            let env = rq.query.get("env");
            envs::target_roots(state, rq, who, &scope, env, ok, none).await
        }
        SettingsPage::Danger => workspace::danger(state, who, &scope, ok, none).await,
    }
}

/// `POST /ws/{ws}/settings/…`: the form's action, in the workspace of the path (a
/// workspace the user is not in is not found before anything runs).
pub async fn post(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    action: SettingsAction,
    form: Query,
) -> Result<HttpResponse, UiError> {
    use super::environments::{self as envs, Action as E};
    use super::members::{self, Action as M};
    use super::workspace;
    use SettingsAction as A;
    let scope = scope::resolve(state, who, ws, None).await?;
    let s = &scope;
    match action {
        A::UpdateWorkspace => workspace::act(state, rq, who, s, false, &form).await,
        A::DeleteWorkspace => workspace::act(state, rq, who, s, true, &form).await,
        A::SetRole { member } => members::act(state, rq, who, s, M::SetRole(member), &form).await,
        A::RemoveMember { member } => {
            members::act(state, rq, who, s, M::Remove(member), &form).await
        }
        A::CreateInvite => members::act(state, rq, who, s, M::Invite, &form).await,
        A::CancelInvite { invite } => {
            members::act(state, rq, who, s, M::Cancel(invite), &form).await
        }
        A::CreateEnvironment => envs::act(state, rq, who, s, E::Create, &form).await,
        A::UpdateEnvironment { env } => envs::act(state, rq, who, s, E::Update(env), &form).await,
        A::DeleteEnvironment { env } => envs::act(state, rq, who, s, E::Delete(env), &form).await,
        A::CreateTargetRoot => envs::act(state, rq, who, s, E::CreateRoot, &form).await,
        A::UpdateTargetRoot { root } => {
            envs::act(state, rq, who, s, E::UpdateRoot(root), &form).await
        }
        A::DeleteTargetRoot { root } => {
            envs::act(state, rq, who, s, E::DeleteRoot(root), &form).await
        }
    }
}
