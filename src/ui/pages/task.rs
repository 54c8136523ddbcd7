//! P6 — `/ws/{ws}/env/{env}/tasks/{task_id}`: one task of either protocol — identity,
//! global status (with the build that decided it), parameters, assets (markdown
//! rendered safely, JSON pretty-printed) and its events across builds; v2 tasks also
//! list their executions.

use http::StatusCode;
use maud::{html, Markup, PreEscaped};
use uuid::Uuid;

use crate::http::response::HttpResponse;
use crate::http::AppState;
use crate::store::tasks;
use crate::store::v2::reads as v2reads;
use crate::store::v2::schema::Snapshot;
use crate::ui::layout::{self, seg, Nav};
use crate::ui::markdown;
use crate::ui::reads::{self, Neighbour, NeighbourView};
use crate::ui::response::{html as html_page, UiError, UiReq};
use crate::ui::scope;
use crate::ui::session::Session;

struct AssetView {
    kind: String,
    name: String,
    at: i64,
    body: String,
}

struct EventLine {
    at: i64,
    kind: String,
    build: Option<(Uuid, String)>,
    detail: Option<String>,
}

struct TaskData {
    task_id: String,
    name: String,
    namespace: String,
    version: Option<String>,
    output_uri: Option<String>,
    status: &'static str,
    status_build: Option<(Uuid, String)>,
    waiting_for_lock: bool,
    registered: Option<i64>,
    started: Option<i64>,
    completed: Option<i64>,
    error: Option<String>,
    params: Option<String>,
    assets: Vec<AssetView>,
    events: Vec<EventLine>,
    /// v2: (started, executor, claim outcome, outcome, ended, build)
    executions: Option<Vec<crate::store::v2::schema::ExecutionRow>>,
    deps: NeighbourView,
}

fn pretty(json_text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json_text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| json_text.to_owned())
}

fn build_name(
    tx: &crate::store::ReadSnapshot,
    env: Uuid,
    b: Uuid,
) -> Result<Option<String>, UiError> {
    if let Some(row) = tasks::build(tx, env, b)? {
        return Ok(Some(row.name));
    }
    let s = Snapshot::new(tx);
    Ok(crate::store::v2::build(&s, env.as_u128(), b.as_u128())?.map(|r| r.name))
}

fn load(
    tx: &crate::store::ReadSnapshot,
    env: Uuid,
    hash: &str,
) -> Result<Option<TaskData>, UiError> {
    if let Some((t, st)) = tasks::task_with_state(tx, env, hash)? {
        let g = &st.global;
        let status_build = match g.status_build_id.map(Uuid::from_u128) {
            Some(b) => build_name(tx, env, b)?.map(|n| (b, n)),
            None => None,
        };
        let assets = tasks::task_assets(tx, env, hash)?
            .unwrap_or_default()
            .into_iter()
            .map(|a| AssetView {
                kind: a.asset_type,
                name: a.name,
                at: a.row.created_at,
                body: a.row.body,
            })
            .collect();
        let mut names = std::collections::HashMap::new();
        let mut events = Vec::new();
        for e in tasks::task_events(tx, env, hash)?.unwrap_or_default() {
            if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(e.build_id) {
                slot.insert(build_name(tx, env, e.build_id)?.unwrap_or_default());
            }
            events.push(EventLine {
                at: e.row.at,
                kind: e.row.event_type.as_str().to_owned(),
                build: Some((e.build_id, names[&e.build_id].clone())),
                detail: e.row.error_message.or(e.row.metadata),
            });
        }
        return Ok(Some(TaskData {
            task_id: t.task_id,
            name: t.task_name,
            namespace: t.task_namespace,
            version: t.version,
            output_uri: t.output_uri,
            status: g.status.as_str(),
            status_build,
            waiting_for_lock: g.waiting_for_lock,
            registered: Some(t.created_at),
            started: g.started_at,
            completed: g.completed_at,
            error: g.error_message.clone(),
            params: Some(pretty(&t.task_data)),
            assets,
            events,
            executions: None,
            deps: reads::v1_neighbours(tx, env, hash)?.unwrap_or_default(),
        }));
    }
    let s = Snapshot::new(tx);
    let e = env.as_u128();
    let Some(t) = crate::store::v2::task(&s, e, hash)? else {
        return Ok(None);
    };
    let status_build = match t.claim_build.map(Uuid::from_u128) {
        Some(b) => build_name(tx, env, b)?.map(|n| (b, n)),
        None => None,
    };
    let assets = v2reads::task_artifacts(&s, e, hash)?
        .into_iter()
        .map(|(kind, name, a)| AssetView {
            kind,
            name,
            at: a.created_at,
            body: a.body,
        })
        .collect();
    let mut events = Vec::new();
    for ev in v2reads::task_events(&s, e, hash, 500)? {
        let build = match ev.build.map(Uuid::from_u128) {
            Some(b) => build_name(tx, env, b)?.map(|n| (b, n)),
            None => None,
        };
        events.push(EventLine {
            at: ev.created_at,
            kind: ev.event_type.as_str().to_owned(),
            build,
            detail: ev.error_message.or(ev.metadata),
        });
    }
    let executions = v2reads::task_executions(&s, e, hash, true, 200)?
        .into_iter()
        .map(|(_, x)| x)
        .collect();
    Ok(Some(TaskData {
        task_id: hash.to_owned(),
        name: t.name,
        namespace: t.namespace,
        version: t.version,
        output_uri: t.output_uri,
        status: t.status.as_str(),
        status_build,
        waiting_for_lock: false,
        registered: None,
        started: None,
        completed: t.completed_at,
        error: t.error_message,
        params: None,
        assets,
        events,
        executions: Some(executions),
        deps: reads::v2_neighbours(&s, env, hash)?,
    }))
}

pub async fn page(
    state: &AppState,
    _rq: &UiReq,
    who: &Session,
    ws: &str,
    env: &str,
    task: &str,
) -> Result<HttpResponse, UiError> {
    let scope = scope::resolve(state, who, ws, Some(env)).await?;
    let env_id = scope.env()?.id;
    let hash = task.to_owned();
    let t = state
        .store
        .read(move |tx| load(tx, env_id, &hash))
        .await?
        .ok_or(UiError::NotFound)?;
    let base = scope.base();
    // The build whose graph shows this task: the one that decided its status, else its
    // latest event's.
    let graph_build = t.status_build.as_ref().map(|(b, _)| *b).or_else(|| {
        t.events
            .iter()
            .max_by_key(|e| e.at)
            .and_then(|e| e.build.as_ref().map(|(b, _)| *b))
    });
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href=(format!("{base}/builds")) { "Builds" } " / task / " (t.name) }
        div.page-head {
            h1 { (t.name) " " (layout::badge(t.status)) @if t.waiting_for_lock { " 🔒" } }
            @if !t.namespace.is_empty() { p.muted { (t.namespace) } }
            p.small.task-links {
                @if let Some(b) = graph_build {
                    a.show-in-graph href=(format!("{base}/builds/{b}?tab=graph&highlight={}", layout::url_encode(&t.task_id))) { "Show in build graph" }
                    " · "
                }
                a href=(format!("{base}/tasks?filter={}", layout::url_encode(&format!("task_name:=:{}", t.name)))) { "Open in explorer" }
            }
        }
        section.card {
            dl.facts {
                dt { "Task id" } dd { (layout::copy_field("Task id", &t.task_id)) }
                @if let Some(v) = &t.version { dt { "Version" } dd { (v) } }
                @if let Some((b, n)) = &t.status_build {
                    dt { "Status from" } dd { a href=(format!("{base}/builds/{b}")) { (n) " ↗" } }
                }
                @if let Some(r) = t.registered { dt { "Registered" } dd { (layout::time(r)) } }
                dt { "Started" } dd { (layout::time_opt(t.started)) }
                dt { "Completed" } dd { (layout::time_opt(t.completed)) }
                @if let Some(u) = &t.output_uri { dt { "Output" } dd { (layout::copy_field("Output URI", u)) } }
            }
            @if let Some(e) = &t.error { h3 { "Error" } pre.error-text { (e) } }
        }
        @if let Some(p) = &t.params {
            section.card { h2 { "Parameters" } pre.json { code { (p) } } }
        }
        (dependencies(&base, &t.deps))
        section.card {
            h2 { "Assets" }
            @if t.assets.is_empty() { p.muted { "No assets." } }
            @for a in &t.assets { (asset(a)) }
        }
        @if let Some(execs) = &t.executions {
            section.card {
                h2 { "Executions" }
                @if execs.is_empty() { p.muted { "Never run." } } @else {
                    table.list {
                        thead { tr { th { "Started" } th { "Executor" } th { "Claim" } th { "Outcome" } th { "Ended" } th { "Build" } } }
                        tbody {
                            @for x in execs {
                                tr {
                                    td { (layout::time(x.started_at)) }
                                    td { (x.executor.as_deref().unwrap_or("—")) }
                                    td { @match x.claim_outcome { Some(c) => { (c.as_str()) } None => { span.muted { "held" } } } }
                                    td { @match x.outcome { Some(o) => { (layout::badge(o.as_str())) } None => { (layout::badge("running")) } } }
                                    td { (layout::time_opt(x.ended_at)) }
                                    td { a href=(format!("{base}/builds/{}", Uuid::from_u128(x.build))) { code { (layout::short(&Uuid::from_u128(x.build).to_string())) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Events across builds" }
            @if t.events.is_empty() { p.muted { "Registered, never started." } } @else {
                table.list.events {
                    thead { tr { th { "Time" } th { "Event" } th { "Build" } th { "Details" } } }
                    tbody {
                        @for e in &t.events {
                            tr {
                                td { (layout::time(e.at)) }
                                td { code { (e.kind) } }
                                td { @if let Some((b, n)) = &e.build { a href=(format!("{base}/builds/{b}")) { (n) } } }
                                td.err { @if let Some(d) = &e.detail { (d) } }
                            }
                        }
                    }
                }
            }
        }
        p.small { a href=(format!("{base}/tasks/{}", seg(&t.task_id))) { "Permalink" } }
    };
    Ok(html_page(
        StatusCode::OK,
        layout::page(state, who, Some(&scope), Nav::Builds, &t.name, body),
    ))
}

/// "Depends on" and "Used by": linked, bounded lists with their counts.
fn dependencies(base: &str, d: &NeighbourView) -> Markup {
    let list = |id: &str, title: &str, rows: &[Neighbour], total: u64, empty: &str| {
        html! {
            div.deps {
                h3 #(id) { (title) " " span.count data-count-of=(id) { "(" (total) @if total >= crate::store::tasks::NEIGHBOUR_COUNT_CAP { "+" } ")" } }
                @if rows.is_empty() { p.muted { (empty) } } @else {
                    ul.dep-list aria-labelledby=(id) {
                        @for n in rows {
                            li {
                                a href=(format!("{base}/tasks/{}", seg(&n.task_id))) { (n.name) }
                                " " (layout::badge(n.status)) " " code.small { (layout::short(&n.task_id)) }
                            }
                        }
                    }
                    @if total > rows.len() as u64 { p.small.muted { "Showing " (rows.len()) " of " (total) "." } }
                }
            }
        }
    };
    html! {
        section.card.dependencies {
            h2 { "Dependencies" }
            div.deps-grid {
                (list("depends-on", "Depends on", &d.depends_on, d.depends_on_total, "No dependencies."))
                (list("used-by", "Used by", &d.used_by, d.used_by_total, "No task uses it."))
            }
            @if d.plans_capped { p.small.muted { "From the task's " (reads::V2_PLANS_READ) " newest plans." } }
        }
    }
}

fn asset(a: &AssetView) -> Markup {
    let body: serde_json::Value = serde_json::from_str(&a.body).unwrap_or(serde_json::Value::Null);
    let markdown_text = (a.kind == "markdown")
        .then(|| {
            body.get("content")
                .and_then(|c| c.as_str())
                .map(str::to_owned)
        })
        .flatten();
    html! {
        article.asset {
            header { strong { (a.name) } " " span.tag { (a.kind) } " " span.small.muted { (layout::time(a.at)) } }
            @if let Some(md) = markdown_text {
                // markdown::to_html escapes raw HTML and drops unsafe links and images.
                div.markdown { (PreEscaped(markdown::to_html(&md))) }
            } @else {
                pre.json { code { (serde_json::to_string_pretty(&body).unwrap_or_default()) } }
            }
        }
    }
}
