//! P9e — `/ws/{ws}/settings/api-keys`: the workspace's API keys per environment.
//! Admins create keys (the full key is shown once, on the answer to the POST, which
//! like every UI page is `no-store`) and revoke them; members see metadata only. Both
//! actions are the API's handlers.

use http::StatusCode;
use maud::html;
use serde_json::json;

use crate::http::request::Query;
use crate::http::response::{ApiError, HttpResponse};
use crate::http::router::Endpoint;
use crate::http::AppState;
use crate::store::identity;
use crate::ui::api_call::call;
use crate::ui::layout::{self, Nav};
use crate::ui::response::{html as html_page, redirect, UiError, UiReq};
use crate::ui::scope::{self, Scope};
use crate::ui::session::Session;

/// What the last action produced: a new key (env name, key) or an error text.
pub type Outcome = Option<Result<(String, String), String>>;

pub async fn api_keys(
    state: &AppState,
    _rq: &UiReq,
    who: &Session,
    ws: &str,
    outcome: Outcome,
) -> Result<HttpResponse, UiError> {
    let scope = scope::resolve(state, who, ws, None).await?;
    let envs = scope.ws().envs.clone();
    let env_ids: Vec<_> = envs.iter().map(|e| e.id).collect();
    let (keys, users) = state
        .store
        .read(move |tx| -> Result<_, UiError> {
            let mut out = Vec::new();
            let mut users = std::collections::HashMap::new();
            for env in env_ids {
                let mut ks = identity::api_keys_of(tx, env)?;
                ks.sort_by_key(|k| std::cmp::Reverse((k.created_at, k.id)));
                for k in &ks {
                    if let Some(u) = k.created_by {
                        if let Some(row) = identity::user(tx, u)? {
                            users.insert(u, row.email);
                        }
                    }
                }
                out.push(ks);
            }
            Ok((out, users))
        })
        .await?;
    let admin = scope.is_admin();
    let ws_slug = layout::seg(&scope.ws().ws.slug);
    let body = html! {
        h1 { "API keys" }
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
                form.inline method="post" action=(format!("/ws/{ws_slug}/settings/api-keys")) {
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
        @for (env, ks) in envs.iter().zip(&keys) {
            section.card {
                h2 { (env.name) " " span.muted.small { (env.slug) } }
                @if ks.is_empty() { p.muted { "No keys." } } @else {
                    table.list.keys {
                        thead { tr { th { "Name" } th { "Key" } th { "Created by" } th { "Created" } th { "Last used" } th { "State" } @if admin { th {} } } }
                        tbody {
                            @for k in ks {
                                tr data-key=(k.id) {
                                    td { (k.name) }
                                    td { code { "sk_" (k.key_prefix) "…" } }
                                    td { (k.created_by.and_then(|u| users.get(&u)).map(String::as_str).unwrap_or("—")) }
                                    td { (layout::time(k.created_at)) }
                                    td { (layout::time_opt(k.last_used_at)) }
                                    td { @if k.revoked_at.is_some() { span.tag.revoked { "revoked" } } @else { span.tag.active { "active" } } }
                                    @if admin {
                                        td {
                                            @if k.revoked_at.is_none() {
                                                form method="post" action=(format!("/ws/{ws_slug}/settings/api-keys/{}/revoke", k.id)) {
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
    Ok(html_page(
        StatusCode::OK,
        layout::page(state, who, Some(&scope), Nav::Settings, "API keys", body),
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
        Ok(_) => Ok(redirect(&format!(
            "/ws/{}/settings/api-keys",
            layout::seg(&scope.ws().ws.slug)
        ))),
        Err(ApiError::NotFound(_)) | Err(ApiError::Validation(_)) => Err(UiError::NotFound),
        Err(e) => {
            let text = shown(e)?;
            api_keys(state, rq, who, ws, Some(Err(text))).await
        }
    }
}
