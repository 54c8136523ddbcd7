//! P5 — `/ws/{ws}/env/{env}/builds/{build}`: one build of either protocol — header,
//! counters, the server-laid-out graph, the task table, events (v1) or plans and
//! executions (v2) — plus `…/state` (the JSON the page polls, with ETag/304),
//! `…/graph.svg` and the admin's status override (v1).

use http::StatusCode;
use maud::{html, Markup};
use serde_json::json;
use uuid::Uuid;

use crate::http::request::Query;
use crate::http::response::{ApiError, HttpResponse};
use crate::http::router::Endpoint;
use crate::http::AppState;
use crate::store::v2::reads as v2reads;
use crate::store::v2::schema::Snapshot;
use crate::store::{changes, tasks};
use crate::ui::api_call::call;
use crate::ui::dag_layout::Dir;
use crate::ui::dag_svg::{self, SvgNode};
use crate::ui::layout::{self, seg, Nav};
use crate::ui::reads::{self, BuildView, GraphView, NodeView, Protocol};
use crate::ui::response::{
    etag_listed, etag_of, html as html_page, json as json_answer, not_modified, redirect,
    sent_etags, UiError, UiReq,
};
use crate::ui::scope;
use crate::ui::session::Session;

/// Graphs above this many tasks are not drawn unless asked (`?draw=all`).
const DRAW_CAP: usize = 400;

/// A v1 build's own events.
pub struct EventView {
    pub at: i64,
    pub kind: String,
    pub task: Option<String>,
    pub detail: Option<String>,
}

/// What one build page needs.
struct BuildData {
    build: BuildView,
    graph: GraphView,
    events: Vec<EventView>,
    v2: Option<V2Extras>,
}

struct V2Extras {
    plans: Vec<v2reads::PlanDetail>,
    executions: Vec<(u128, crate::store::v2::schema::ExecutionRow, bool)>,
}

async fn load(state: &AppState, env: Uuid, build: Uuid) -> Result<BuildData, UiError> {
    state
        .store
        .read(move |tx| -> Result<BuildData, UiError> {
            let view = reads::build_view(tx, env, build)?.ok_or(UiError::NotFound)?;
            match view.protocol {
                Protocol::V1 => {
                    let graph = reads::v1_graph(tx, env, build)?.ok_or(UiError::NotFound)?;
                    let names: std::collections::HashMap<Uuid, String> =
                        tasks::build_tasks(tx, env, build)?
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(t, _)| (t.id, t.task_id))
                            .collect();
                    let events = tasks::build_events(tx, env, build)?
                        .unwrap_or_default()
                        .into_iter()
                        .map(|e| EventView {
                            at: e.row.at,
                            kind: e.row.event_type.as_str().to_owned(),
                            task: e.row.task.and_then(|t| names.get(&t).cloned()),
                            detail: e.row.error_message.or(e.row.metadata),
                        })
                        .collect();
                    Ok(BuildData {
                        build: view,
                        graph,
                        events,
                        v2: None,
                    })
                }
                Protocol::V2 => {
                    let s = Snapshot::new(tx);
                    let e = env.as_u128();
                    let graph = reads::v2_graph(&s, env, build)?.ok_or(UiError::NotFound)?;
                    let plans = v2reads::build_plans(&s, e, build.as_u128())?;
                    let active = crate::store::v2::build(&s, e, build.as_u128())?
                        .and_then(|b| b.active_plan);
                    let executions =
                        v2reads::build_executions(&s, e, build.as_u128(), active, false, true)?;
                    let events = v2reads::build_events(&s, e, build.as_u128(), 500)?
                        .into_iter()
                        .map(|ev| EventView {
                            at: ev.created_at,
                            kind: ev.event_type.as_str().to_owned(),
                            task: ev.task_id,
                            detail: ev.error_message.or(ev.metadata),
                        })
                        .collect();
                    Ok(BuildData {
                        build: view,
                        graph,
                        events,
                        v2: Some(V2Extras { plans, executions }),
                    })
                }
            }
        })
        .await
}

/// A hash of the sorted task ids: when it changes, the page swaps in a new graph.
fn node_set_of(graph: &GraphView) -> String {
    let mut ids: Vec<&str> = graph.nodes.iter().map(|n| n.task_id.as_str()).collect();
    ids.sort_unstable();
    etag_of(&ids.join("\n"))
}

fn counts_of(graph: &GraphView) -> std::collections::BTreeMap<&'static str, u64> {
    let mut c = std::collections::BTreeMap::new();
    for n in &graph.nodes {
        *c.entry(n.status).or_insert(0) += 1;
    }
    c
}

fn svg_nodes(base: &str, graph: &GraphView, highlight: &[String]) -> Vec<SvgNode> {
    graph
        .nodes
        .iter()
        .map(|n| SvgNode {
            task_id: n.task_id.clone(),
            name: n.name.clone(),
            status: n.status.to_owned(),
            href: format!("{base}/tasks/{}", seg(&n.task_id)),
            elsewhere: n.status_build.is_some(),
            waiting_for_lock: n.waiting_for_lock,
            has_assets: n.asset_count > 0,
            highlighted: highlight.contains(&n.task_id),
        })
        .collect()
}

fn dir_of(rq: &UiReq) -> Dir {
    match rq.query.get("dir") {
        Some("tb") => Dir::TopBottom,
        _ => Dir::LeftRight,
    }
}

pub async fn page(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    env: &str,
    raw_build: &str,
) -> Result<HttpResponse, UiError> {
    let path = scope::resolve_build(state, who, ws, env, raw_build).await?;
    let data = load(state, path.env, path.build).await?;
    let (scope, here) = (&path.scope, path.here());
    let base = scope.base();
    let tab = rq
        .query
        .get("tab")
        .filter(|t| matches!(*t, "tasks" | "events" | "plans" | "executions"))
        .unwrap_or("graph");
    let b = &data.build;
    let counts = counts_of(&data.graph);
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href=(format!("{base}/builds")) { "Builds" } " / " (b.name) }
        div.page-head.build-head data-poll-url=(format!("{here}/state")) data-running=(b.status == "running" || b.status == "pending")
            data-node-set=(node_set_of(&data.graph)) {
            h1 { (b.name) " " span data-build-status { (layout::badge(b.status)) } }
            @if let Some(by) = &b.set_by { p.small.muted { "Status set by " (by) } }
            p.live.small.muted aria-live="polite" { span.live-text { "" } }
        }
        div.notice.error.conn-lost hidden role="alert" { "Connection lost — retrying…" }
        section.card.facts-card {
            dl.facts {
                dt { "Id" } dd { (layout::copy_field("Build id", &b.id.to_string())) }
                dt { "Protocol" } dd { @if b.protocol == Protocol::V1 { "v1 (stardag 0.1)" } @else { "v2 (stardag 0.28)" } }
                @if let Some(c) = &b.commit { dt { "Commit" } dd { code { (c) } } }
                @if let Some(d) = &b.description { dt { "Description" } dd { (d) } }
                dt { "Created" } dd { (layout::time(b.created_at)) }
                dt { "Completed" } dd data-completed-at { (layout::time_opt(b.completed_at)) }
                @if let (Some(s), Some(e)) = (b.started_at, b.completed_at) { dt { "Duration" } dd { (layout::duration(s, e)) } }
                dt { "Started by" } dd { (b.user_email.as_deref().unwrap_or("API key")) }
            }
            div.counters {
                @for st in ["pending", "running", "completed", "failed", "cancelled"] {
                    a.counter class=(format!("st-{st}")) href=(format!("{here}?tab=tasks&status={st}")) {
                        span.n data-count=(st) { (counts.get(st).copied().unwrap_or(0)) } " " (st)
                    }
                }
            }
            @if b.protocol == Protocol::V1 && scope.is_admin() { (override_form(state, who, &here, b)) }
        }
        nav.tabs aria-label="Build views" {
            (tab_link(&here, "graph", html! { "Graph" }, tab))
            (tab_link(&here, "tasks", html! { "Tasks (" span data-task-total { (data.graph.nodes.len()) } ")" }, tab))
            @if data.v2.is_some() {
                (tab_link(&here, "plans", html! { "Plans" }, tab))
                (tab_link(&here, "executions", html! { "Executions" }, tab))
            }
            (tab_link(&here, "events", html! { "Events" }, tab))
        }
        @match tab {
            "tasks" => { (task_table(&base, &data.graph, rq.query.get("status"))) }
            "events" => { (event_table(&base, &data.events)) }
            "plans" => { @if let Some(v2) = &data.v2 { (plan_table(&v2.plans)) } }
            "executions" => { @if let Some(v2) = &data.v2 { (execution_table(&base, &v2.executions)) } }
            _ => { (graph_panel(rq, &base, &here, &data.graph, &b.name)) }
        }
    };
    Ok(html_page(
        StatusCode::OK,
        layout::page(state, who, Some(scope), Nav::Builds, &b.name, body),
    ))
}

fn tab_link(here: &str, key: &str, label: Markup, current: &str) -> Markup {
    html! { a.current[key == current] href=(format!("{here}?tab={key}")) aria-current=[(key == current).then_some("page")] { (label) } }
}

fn graph_panel(rq: &UiReq, base: &str, here: &str, graph: &GraphView, name: &str) -> Markup {
    let dir = dir_of(rq);
    let n = graph.nodes.len();
    let draw = n <= DRAW_CAP || rq.query.get("draw") == Some("all");
    let dir_q = if dir == Dir::TopBottom { "&dir=tb" } else { "" };
    // A highlight survives the direction toggle and the live graph swap.
    let hl = rq.query.list("highlight");
    let hl_q = if hl.is_empty() {
        String::new()
    } else {
        format!("&highlight={}", layout::url_encode(&hl.join(",")))
    };
    html! {
        section.card.graph-card {
            div.graph-tools {
                a.current[dir == Dir::LeftRight] href=(format!("{here}?tab=graph{hl_q}")) { "Left → right" }
                a.current[dir == Dir::TopBottom] href=(format!("{here}?tab=graph&dir=tb{hl_q}")) { "Top ↓ bottom" }
                a href=(format!("{here}/graph.svg?{}", dir_q.trim_start_matches('&'))) download="graph.svg" { "Download SVG" }
            }
            @if draw {
                // Live updates swap a new graph into #graph when tasks register.
                div.graph #graph data-svg-url=(format!("{here}/graph.svg?{}{hl_q}", dir_q.trim_start_matches('&'))) {
                    @if n == 0 {
                        p.muted.pad { "No tasks registered yet." }
                    } @else {
                        (dag_svg::render(&svg_nodes(base, graph, &hl), &graph.edges, dir, &format!("Task graph of {name}")))
                    }
                }
            } @else {
                p { "Graph has " (n) " tasks — showing the table. " a href=(format!("{here}?tab=graph&draw=all{dir_q}")) { "Draw anyway" } }
                (task_table(base, graph, None))
            }
        }
    }
}

fn task_table(base: &str, graph: &GraphView, status: Option<&str>) -> Markup {
    html! {
        section.card {
            @if let Some(st) = status { p.small { "Showing " (st) " tasks. " a href="?tab=tasks" { "Show all" } } }
            table.list.tasks {
                thead { tr { th { "Task" } th { "Id" } th { "Status" } th { "Started" } th { "Completed" } th { "Assets" } th { "Error" } } }
                tbody {
                    @for n in graph.nodes.iter().filter(|n| status.is_none_or(|s| s == n.status)) {
                        (task_row(base, n))
                    }
                }
            }
        }
    }
}

fn task_row(base: &str, n: &NodeView) -> Markup {
    html! {
        tr data-task=(n.task_id) {
            td {
                a href=(format!("{base}/tasks/{}", seg(&n.task_id))) { (n.name) }
                @if !n.namespace.is_empty() { div.small.muted { (n.namespace) } }
            }
            td { code { (layout::short(&n.task_id)) } }
            td.st {
                (layout::badge(n.status))
                @if let Some(b) = n.status_build { " " a.small href=(format!("{base}/builds/{b}")) title="Status from another build" { "↗" } }
                @if n.waiting_for_lock { " 🔒" }
            }
            td { (layout::time_opt(n.started_at)) }
            td { (layout::time_opt(n.completed_at)) }
            td { (n.asset_count) }
            td.err { @if let Some(e) = &n.error { (e.lines().next().unwrap_or("")) } }
        }
    }
}

fn event_table(base: &str, events: &[EventView]) -> Markup {
    html! {
        section.card {
            @if events.is_empty() { p.muted { "No events." } } @else {
                table.list.events {
                    thead { tr { th { "Time" } th { "Event" } th { "Task" } th { "Details" } } }
                    tbody {
                        @for e in events {
                            tr {
                                td { (layout::time(e.at)) }
                                td { code { (e.kind) } }
                                td { @if let Some(t) = &e.task { a href=(format!("{base}/tasks/{}", seg(t))) { code { (layout::short(t)) } } } }
                                td.err { @if let Some(d) = &e.detail { (d) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn plan_table(plans: &[v2reads::PlanDetail]) -> Markup {
    html! {
        section.card {
            @if plans.is_empty() { p.muted { "No plans yet." } } @else {
                table.list {
                    thead { tr { th { "Generation" } th { "Plan" } th { "Deployment" } th { "Created" } th { "Activated" } th { "Sealed" } th { "Superseded" } th { "Members" } th { "By status" } } }
                    tbody {
                        @for p in plans {
                            tr {
                                td { (p.plan.generation) }
                                td { code { (layout::short(&Uuid::from_u128(p.id).to_string())) } }
                                td { @if let Some((d, _)) = &p.deployment { (d.app_name) " " span.muted { (d.code_id) } } }
                                td { (layout::time(p.plan.created_at)) }
                                td { (layout::time_opt(p.plan.activated_at)) }
                                td { (layout::time_opt(p.plan.sealed_at)) }
                                td { (layout::time_opt(p.plan.superseded_at)) }
                                td { (p.member_count) " (" (p.root_count) " root)" }
                                td { @for (k, v) in &p.member_counts { @if *v > 0 { span.tag { (k) " " (v) } " " } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn execution_table(
    base: &str,
    rows: &[(u128, crate::store::v2::schema::ExecutionRow, bool)],
) -> Markup {
    html! {
        section.card {
            @if rows.is_empty() { p.muted { "No executions yet." } } @else {
                table.list {
                    thead { tr { th { "Task" } th { "Started" } th { "Executor" } th { "Claim" } th { "Outcome" } th { "Ended" } th { "Plan" } } }
                    tbody {
                        @for (_, e, current) in rows {
                            tr {
                                td { a href=(format!("{base}/tasks/{}", seg(&e.task_id))) { code { (layout::short(&e.task_id)) } } }
                                td { (layout::time(e.started_at)) }
                                td { (e.executor.as_deref().unwrap_or("—")) @if let Some(r) = &e.executor_ref { div.small.muted { (r) } } }
                                td { @match e.claim_outcome { Some(c) => { (c.as_str()) } None => { span.muted { "held" } } } }
                                td { @match e.outcome { Some(o) => { (layout::badge(o.as_str())) } None => { (layout::badge("running")) } } }
                                td { (layout::time_opt(e.ended_at)) }
                                td { @if *current { "current" } @else { span.muted { "earlier" } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn override_form(state: &AppState, who: &Session, here: &str, b: &BuildView) -> Markup {
    html! {
        details.override {
            summary { "Override status…" }
            form method="post" action=(format!("{here}/override")) {
                (layout::csrf_field(state, who))
                p.small { "Records a status for this build; it does not stop running workers. Current: " (b.status) "." }
                label for="ov-status" { "Mark as" }
                select #ov-status name="status" {
                    option value="completed" { "completed" }
                    option value="failed" { "failed" }
                    option value="cancelled" { "cancelled" }
                }
                label for="ov-msg" { "Message (failed only)" }
                input #ov-msg type="text" name="message" maxlength="2000";
                button.danger type="submit" { "Record status" }
            }
        }
    }
}

/// What a state poll read: nothing more than the ETag when it matched.
enum Polled {
    Same(String),
    Changed(String, Box<BuildView>, GraphView),
}

/// `GET …/state`: the poll answer (ui.md §3.5), 304 when the etag matches. The ETag is
/// the build's change counter and the environment-wide generation (`store::changes`),
/// read with the build's existence before anything else: an unchanged build costs two
/// lookups, not a read of its tasks.
pub async fn state(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    env: &str,
    raw_build: &str,
) -> Result<HttpResponse, UiError> {
    let path = scope::resolve_build(state, who, ws, env, raw_build).await?;
    let (env_id, build) = (path.env, path.build);
    let sent = sent_etags(rq);
    let polled = state
        .store
        .read(move |tx| -> Result<Polled, UiError> {
            if !reads::build_exists(tx, env_id, build)? {
                return Err(UiError::NotFound);
            }
            let (c, g) = changes::of(tx, env_id.as_u128(), build.as_u128())?;
            let etag = etag_of(&format!("build-state|{build}|{c}|{g}"));
            if etag_listed(sent.as_deref(), &etag) {
                return Ok(Polled::Same(etag));
            }
            let view = reads::build_view(tx, env_id, build)?.ok_or(UiError::NotFound)?;
            let graph = match view.protocol {
                Protocol::V1 => reads::v1_graph(tx, env_id, build)?,
                Protocol::V2 => reads::v2_graph(&Snapshot::new(tx), env_id, build)?,
            }
            .ok_or(UiError::NotFound)?;
            Ok(Polled::Changed(etag, Box::new(view), graph))
        })
        .await?;
    let (etag, view, graph) = match polled {
        Polled::Same(etag) => return Ok(not_modified(&etag)),
        Polled::Changed(etag, view, graph) => (etag, view, graph),
    };
    let nodes: Vec<_> = graph
        .nodes
        .iter()
        .map(|n| {
            json!({
                "task_id": n.task_id, "status": n.status, "waiting_for_lock": n.waiting_for_lock,
                "status_build_id": n.status_build, "asset_count": n.asset_count,
            })
        })
        .collect();
    let counts = counts_of(&graph);
    Ok(json_answer(
        &json!({
            "etag": etag,
            "build": {"status": view.status, "started_at": view.started_at.map(crate::clock::format_micros),
                      "completed_at": view.completed_at.map(crate::clock::format_micros), "triggered_by": view.set_by},
            "counts": counts,
            "nodes": nodes,
            "node_set": node_set_of(&graph),
        }),
        Some(&etag),
    ))
}

/// `GET …/graph.svg`: the graph alone (the live script swaps it when tasks appear).
pub async fn graph_svg(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    env: &str,
    raw_build: &str,
) -> Result<HttpResponse, UiError> {
    let path = scope::resolve_build(state, who, ws, env, raw_build).await?;
    let data = load(state, path.env, path.build).await?;
    let svg = dag_svg::render(
        &svg_nodes(&path.scope.base(), &data.graph, &rq.query.list("highlight")),
        &data.graph.edges,
        dir_of(rq),
        &format!("Task graph of {}", data.build.name),
    );
    let mut resp = html_page(StatusCode::OK, svg);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("image/svg+xml"),
    );
    Ok(resp)
}

/// `POST …/override` (admin+, v1 builds): the API's build transition, recorded as set
/// by this user.
pub async fn override_status(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    env: &str,
    raw_build: &str,
    form: Query,
) -> Result<HttpResponse, UiError> {
    let path = scope::resolve_build(state, who, ws, env, raw_build).await?;
    let (scope, build) = (&path.scope, path.build);
    if !scope.is_admin() {
        return Err(UiError::Forbidden("Needs admin role".into()));
    }
    let b = build.to_string();
    let endpoint = match form.get("status") {
        Some("completed") => Endpoint::CompleteBuild { build: b },
        Some("failed") => Endpoint::FailBuild { build: b },
        Some("cancelled") => Endpoint::CancelBuild { build: b },
        _ => return Err(ApiError::BadRequest("Unknown status".into()).into()),
    };
    let mut query = format!(
        "triggered_by_user_id={}",
        layout::url_encode(&who.user.external_id)
    );
    if let Some(m) = form.get("message").filter(|m| !m.is_empty()) {
        query.push_str(&format!("&error_message={}", layout::url_encode(m)));
    }
    call(
        state,
        rq,
        scope.sdk_caller(&who.user)?,
        endpoint,
        &query,
        None,
    )
    .await
    .map_err(|e| match e {
        ApiError::NotFound(_) => UiError::NotFound,
        e => e.into(),
    })?;
    Ok(redirect(&format!("{}/builds/{build}", scope.base())))
}
