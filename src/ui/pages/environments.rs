//! P9d environments and P9f target roots of a workspace. Everyone sees the lists;
//! admins get the forms. Deleting an environment asks for its slug to be typed (the
//! check is the UI's: the API has no confirmation); the last one cannot go (the API's
//! 400, the button disabled with the reason).

use http::StatusCode;
use maud::html;
use serde_json::{json, Value};

use super::settings::{
    self, confirmed, done_notice, frame, refused, slug_or_from, Notice, Section,
};
use crate::api::MAX_ENVIRONMENTS_PER_WORKSPACE;
use crate::http::request::Query;
use crate::http::response::HttpResponse;
use crate::http::router::{Endpoint, SettingsPage};
use crate::http::AppState;
use crate::store::identity::{self, EnvironmentRow};
use crate::ui::api_call::call;
use crate::ui::layout::{self, seg};
use crate::ui::response::{redirect, UiError, UiReq};
use crate::ui::scope::Scope;
use crate::ui::session::Session;

/// The lock limit as the API takes it: empty is unlimited (`null`), digits a number,
/// anything else goes as text so that the API's 422 explains it.
fn lock_limit(form: &Query) -> Value {
    match form.get("max_concurrent_locks").map(str::trim) {
        None | Some("") => Value::Null,
        Some(t) => t
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| json!(t)),
    }
}

/// A non-empty text field, else absent (the API keeps the stored value).
fn text_field(form: &Query, name: &str) -> Option<String> {
    form.get(name)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// P9d — `/ws/{ws}/settings/environments`.
pub async fn environments(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    scope: &Scope,
    status: StatusCode,
    notice: Notice,
) -> Result<HttpResponse, UiError> {
    let envs = &scope.ws().envs;
    let admin = scope.is_admin();
    let base = settings::base(scope);
    let ws = seg(&scope.ws().ws.slug);
    let last = envs.len() <= 1;
    let full = envs.len() >= MAX_ENVIRONMENTS_PER_WORKSPACE;
    let notice = notice.or_else(|| done_notice(rq));
    let body = html! {
        section.card {
            table.list.envs {
                thead { tr { th { "Name" } th { "Slug" } th { "Description" } th { "Lock limit" } th { "Links" } } }
                tbody {
                    @for e in envs {
                        @let env = format!("/ws/{ws}/env/{}", seg(&e.slug));
                        tr data-env=(e.slug) {
                            td { (e.name) }
                            td { code { (e.slug) } }
                            td.desc { (e.description.as_deref().unwrap_or("—")) }
                            td { @match e.max_concurrent_locks { Some(n) => { (n) }, None => { span.muted { "unlimited" } } } }
                            td.links {
                                a href=(format!("{env}/builds")) { "Builds" } " · "
                                a href=(format!("{env}/connect")) { "Connect" } " · "
                                a href=(format!("{base}/api-keys")) { "API keys" } " · "
                                a href=(format!("{base}/target-roots?env={}", layout::url_encode(&e.slug))) { "Target roots" }
                            }
                        }
                    }
                }
            }
        }
        @if admin {
            section.card {
                h2 { "New environment" }
                @if full {
                    p.muted { "A workspace has at most " (MAX_ENVIRONMENTS_PER_WORKSPACE) " environments." }
                } @else {
                    form.inline method="post" action=(format!("{base}/environments")) {
                        (layout::csrf_field(state, who))
                        label for="env-name" { "Name" }
                        input #env-name type="text" name="name" required maxlength="255" placeholder="Staging";
                        label for="env-slug" { "Slug" }
                        input #env-slug type="text" name="slug" maxlength="64" pattern="[a-z0-9][a-z0-9_\\-]*[a-z0-9]" placeholder="staging" data-slug-from="env-name";
                        label for="env-desc" { "Description" }
                        input #env-desc type="text" name="description" maxlength="1000";
                        label for="env-locks" { "Lock limit" }
                        input #env-locks type="text" name="max_concurrent_locks" inputmode="numeric" size="6" placeholder="unlimited";
                        button.primary type="submit" { "Create" }
                    }
                    p.hint { "Slugs: lower-case letters, digits, - and _, 2–64 characters; they cannot change later. An empty slug is made from the name." }
                }
            }
            @for e in envs {
                section.card.env-edit data-env=(e.slug) {
                    h2 { (e.name) " " span.muted.small { (e.slug) } }
                    form.inline method="post" action=(format!("{base}/environments/{}/edit", seg(&e.slug))) {
                        (layout::csrf_field(state, who))
                        label for=(format!("name-{}", e.id)) { "Name" }
                        input id=(format!("name-{}", e.id)) type="text" name="name" required maxlength="255" value=(e.name);
                        label for=(format!("desc-{}", e.id)) { "Description" }
                        input id=(format!("desc-{}", e.id)) type="text" name="description" maxlength="1000" value=(e.description.as_deref().unwrap_or(""));
                        label for=(format!("locks-{}", e.id)) { "Lock limit" }
                        input id=(format!("locks-{}", e.id)) type="text" name="max_concurrent_locks" inputmode="numeric" size="6"
                            placeholder="unlimited" value=(e.max_concurrent_locks.map(|n| n.to_string()).unwrap_or_default());
                        button type="submit" { "Save" }
                    }
                    (delete_form(state, who, &base, e, last))
                }
            }
            p.hint { "An empty description keeps the current one; an empty lock limit means unlimited." }
        }
    };
    Ok(frame(
        state,
        who,
        scope,
        Section::Page(SettingsPage::Environments),
        status,
        notice,
        body,
    ))
}

fn delete_form(
    state: &AppState,
    who: &Session,
    base: &str,
    e: &EnvironmentRow,
    last: bool,
) -> maud::Markup {
    let field = format!("confirm-{}", e.id);
    html! {
        form.inline.delete method="post" action=(format!("{base}/environments/{}/delete", seg(&e.slug))) {
            (layout::csrf_field(state, who))
            label for=(field) { "Type " code { (e.slug) } " to delete it with all its builds, tasks, keys and target roots" }
            input id=(field) type="text" name="confirm" autocomplete="off" disabled[last];
            button.danger type="submit" disabled[last] { "Delete environment" }
            @if last { span.hint { "The last environment cannot be deleted." } }
        }
    }
}

/// P9f — `/ws/{ws}/settings/target-roots?env=<slug>` (default: the first environment).
pub async fn target_roots(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    scope: &Scope,
    env_slug: Option<&str>,
    status: StatusCode,
    notice: Notice,
) -> Result<HttpResponse, UiError> {
    let envs = &scope.ws().envs;
    let env = match env_slug {
        Some(slug) => envs.iter().find(|e| e.slug == slug),
        None => envs.first(),
    }
    .ok_or(UiError::NotFound)?
    .clone();
    let env_id = env.id;
    let mut roots = state
        .store
        .read(move |tx| identity::target_roots_of(tx, env_id))
        .await?;
    roots.sort_by(|a, b| a.name.cmp(&b.name));
    let admin = scope.is_admin();
    let base = settings::base(scope);
    let notice = notice.or_else(|| done_notice(rq));
    let body = html! {
        p.lede {
            "Target roots name where task outputs live (" code { "name → URI prefix" } "). The SDK 0.1.0 reads them from the registry; "
            code { "STARDAG_TARGET_ROOTS" } " on a machine overrides them. The Connect page builds its snippet from these."
        }
        nav.env-pick aria-label="Environment" {
            "Environment: "
            @for e in envs {
                a.current[e.id == env.id] href=(format!("{base}/target-roots?env={}", layout::url_encode(&e.slug))) { (e.name) } " "
            }
        }
        section.card {
            @if roots.is_empty() { p.muted { "No target roots in " (env.name) "." } } @else {
                table.list.roots {
                    thead { tr { th { "Name" } th { "URI prefix" } th { "Created" } @if admin { th { "Edit" } th {} } } }
                    tbody {
                        @for r in &roots {
                            tr data-root=(r.name) {
                                td { (r.name) }
                                td { code { (r.uri_prefix) } }
                                td { (layout::time(r.created_at)) }
                                @if admin {
                                    td {
                                        form.inline method="post" action=(format!("{base}/target-roots/{}/edit", r.id)) {
                                            (layout::csrf_field(state, who))
                                            input type="hidden" name="env" value=(env.slug);
                                            label.sr-only for=(format!("rn-{}", r.id)) { "Name" }
                                            input id=(format!("rn-{}", r.id)) type="text" name="name" required maxlength="255" size="10" value=(r.name);
                                            label.sr-only for=(format!("ru-{}", r.id)) { "URI prefix" }
                                            input id=(format!("ru-{}", r.id)) type="text" name="uri_prefix" required maxlength="1000" value=(r.uri_prefix);
                                            button.small type="submit" { "Save" }
                                        }
                                    }
                                    td {
                                        form method="post" action=(format!("{base}/target-roots/{}/delete", r.id)) {
                                            (layout::csrf_field(state, who))
                                            input type="hidden" name="env" value=(env.slug);
                                            button.danger.small type="submit" data-confirm=(format!("Delete the target root {}?", r.name)) { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if admin {
            section.card {
                h2 { "Add a target root to " (env.name) }
                form.inline method="post" action=(format!("{base}/target-roots")) {
                    (layout::csrf_field(state, who))
                    input type="hidden" name="env" value=(env.slug);
                    label for="root-name" { "Name" }
                    input #root-name type="text" name="name" required maxlength="255" placeholder="default";
                    label for="root-uri" { "URI prefix" }
                    input #root-uri type="text" name="uri_prefix" required maxlength="1000" placeholder="s3://bucket/stardag/";
                    button.primary type="submit" { "Add" }
                }
            }
        }
    };
    Ok(frame(
        state,
        who,
        scope,
        Section::Page(SettingsPage::TargetRoots),
        status,
        notice,
        body,
    ))
}

/// An environments or target-roots form.
pub enum Action {
    Create,
    Update(String),
    Delete(String),
    CreateRoot,
    UpdateRoot(String),
    DeleteRoot(String),
}

/// Runs the form's API handler; back to the page with a confirmation, or the page
/// again with the refusal (the API's, or a mistyped confirmation: 422, nothing deleted).
pub async fn act(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    scope: &Scope,
    action: Action,
    form: &Query,
) -> Result<HttpResponse, UiError> {
    let ws = scope.ws().ws.id.to_string();
    let env_named = |slug: &str| -> Result<EnvironmentRow, UiError> {
        scope
            .ws()
            .envs
            .iter()
            .find(|e| e.slug == slug)
            .cloned()
            .ok_or(UiError::NotFound)
    };
    let roots_env = || env_named(form.get("env").unwrap_or(""));
    let (endpoint, body, done, env_page) = match &action {
        Action::Create => (
            Endpoint::CreateEnvironment { ws },
            Some(json!({
                "name": form.get("name").unwrap_or("").trim(),
                // None only when the name gives none either: the API's 422 then.
                "slug": slug_or_from(form, "slug", "name").unwrap_or_default(),
                "description": text_field(form, "description"),
                "max_concurrent_locks": lock_limit(form),
            })),
            "env-created",
            None,
        ),
        Action::Update(slug) => {
            let env = env_named(slug)?;
            let mut body = json!({"max_concurrent_locks": lock_limit(form)});
            for field in ["name", "description"] {
                if let Some(v) = text_field(form, field) {
                    body[field] = json!(v);
                }
            }
            (
                Endpoint::UpdateEnvironment {
                    ws,
                    env: env.id.to_string(),
                },
                Some(body),
                "env-saved",
                None,
            )
        }
        Action::Delete(slug) => {
            let env = env_named(slug)?;
            if let Err((status, text)) = confirmed(form, &env.slug) {
                return environments(state, rq, who, scope, status, Some(("error", text))).await;
            }
            (
                Endpoint::DeleteEnvironment {
                    ws,
                    env: env.id.to_string(),
                },
                None,
                "env-deleted",
                None,
            )
        }
        Action::CreateRoot => {
            let env = roots_env()?;
            (
                Endpoint::CreateTargetRoot {
                    ws,
                    env: env.id.to_string(),
                },
                Some(json!({
                    "name": form.get("name").unwrap_or("").trim(),
                    "uri_prefix": form.get("uri_prefix").unwrap_or("").trim(),
                })),
                "root-created",
                Some(env.slug),
            )
        }
        Action::UpdateRoot(root) => {
            let env = roots_env()?;
            (
                Endpoint::UpdateTargetRoot {
                    ws,
                    env: env.id.to_string(),
                    root: root.clone(),
                },
                Some(json!({
                    "name": form.get("name").unwrap_or("").trim(),
                    "uri_prefix": form.get("uri_prefix").unwrap_or("").trim(),
                })),
                "root-saved",
                Some(env.slug),
            )
        }
        Action::DeleteRoot(root) => {
            let env = roots_env()?;
            (
                Endpoint::DeleteTargetRoot {
                    ws,
                    env: env.id.to_string(),
                    root: root.clone(),
                },
                None,
                "root-deleted",
                Some(env.slug),
            )
        }
    };
    let base = settings::base(scope);
    match call(state, rq, scope.user_caller(&who.user), endpoint, "", body).await {
        Ok(_) => Ok(redirect(&match &env_page {
            Some(slug) => format!(
                "{base}/target-roots?env={}&done={done}",
                layout::url_encode(slug)
            ),
            None => format!("{base}/environments?done={done}"),
        })),
        Err(e) => {
            let (status, text) = refused(e)?;
            let notice = Some(("error", text));
            match env_page {
                Some(slug) => {
                    target_roots(state, rq, who, scope, Some(&slug), status, notice).await
                }
                None => environments(state, rq, who, scope, status, notice).await,
            }
        }
    }
}
