//! P4 — `/ws/{ws}/env/{env}/builds`: the environment's builds of both SDK protocols,
//! newest first, 20 a page, with a run-history strip and task progress per build.
//! `?state=1` answers the small JSON the page (and the Connect page) polls.

use http::StatusCode;
use maud::{html, Markup};
use serde_json::json;

use crate::http::response::HttpResponse;
use crate::http::AppState;
use crate::ui::layout::{self, Nav};
use crate::ui::reads::{self, BuildView, Protocol};
use crate::ui::response::{html as html_page, json, not_modified, UiError, UiReq};
use crate::ui::scope;
use crate::ui::session::Session;

const PAGE_SIZE: usize = 20;
const STRIP: usize = 30;

pub async fn page(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    env: &str,
) -> Result<HttpResponse, UiError> {
    let scope = scope::resolve(state, who, ws, Some(env)).await?;
    let env_id = scope.env()?.id;
    let base = scope.base();
    let page_no = rq
        .query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    if rq.query.get("state") == Some("1") {
        return poll_state(state, rq, env_id, &base).await;
    }
    let offset = (page_no - 1) * PAGE_SIZE;
    let (rows, strip, total) = state
        .store
        .read(move |tx| -> Result<_, UiError> {
            let (rows, total) = reads::builds_page(tx, env_id, offset, PAGE_SIZE)?;
            let strip = if page_no == 1 {
                reads::builds_page(tx, env_id, 0, STRIP)?.0
            } else {
                Vec::new()
            };
            Ok((rows, strip, total))
        })
        .await?;
    let pages = (total as usize).div_ceil(PAGE_SIZE).max(1);
    let env_name = scope.env()?.name.clone();
    let body = html! {
        div.page-head {
            h1 { "Builds" }
            p.muted data-builds-total=(total) { (total) " build" @if total != 1 { "s" } " in " (env_name) }
        }
        div.new-builds hidden data-watch-builds=(format!("{base}/builds?state=1")) data-initial=(total) {
            a href=(format!("{base}/builds")) { "New builds — show" }
        }
        @if total == 0 {
            section.card.empty {
                h2 { "No builds yet in " (env_name) }
                p { "Run a build with the Stardag SDK to see it here. " a href=(format!("{base}/connect")) { "Connect the SDK →" } }
            }
        } @else {
            @if !strip.is_empty() { (history_strip(&base, &strip)) }
            table.list.builds {
                thead { tr {
                    th { "Status" } th { "Build" } th { "Description" } th { "Commit" }
                    th { "Tasks" } th { "Started" } th { "Duration" } th { "Started by" }
                } }
                tbody {
                    @for b in &rows { (build_row(&base, b)) }
                }
            }
            @if pages > 1 {
                nav.pager aria-label="Pages" {
                    @if page_no > 1 { a href=(format!("{base}/builds?page={}", page_no - 1)) { "← Newer" } }
                    span { "Page " (page_no) " of " (pages) }
                    @if page_no < pages { a href=(format!("{base}/builds?page={}", page_no + 1)) { "Older →" } }
                }
            }
        }
    };
    Ok(html_page(
        StatusCode::OK,
        layout::page(state, who, Some(&scope), Nav::Builds, "Builds", body),
    ))
}

fn history_strip(base: &str, builds: &[BuildView]) -> Markup {
    html! {
        div.strip aria-label="Recent builds, newest first" {
            @for b in builds {
                a class=(format!("cell st-{}", b.status)) href=(format!("{base}/builds/{}", b.id))
                    title=(format!("{} — {}", b.name, b.status)) { span.sr-only { (b.name) " " (b.status) } }
            }
        }
    }
}

fn build_row(base: &str, b: &BuildView) -> Markup {
    let done = b.counts.get("completed").copied().unwrap_or(0);
    let failed = b.counts.get("failed").copied().unwrap_or(0);
    html! {
        tr data-build=(b.id) {
            td {
                (layout::badge(b.status))
                @if let Some(by) = &b.set_by { div.small.muted { "set by " (by) } }
            }
            td {
                a.strong href=(format!("{base}/builds/{}", b.id)) { (b.name) }
                div.small.muted { code { (layout::short(&b.id.to_string())) } @if b.protocol == Protocol::V2 { " " span.tag { "v2" } } }
            }
            td.desc { (b.description.as_deref().unwrap_or("")) }
            td { @if let Some(c) = &b.commit { code { (c.chars().take(7).collect::<String>()) } } }
            td.progress {
                @if b.total_tasks() > 0 {
                    (done) "/" (b.total_tasks()) " ✓"
                    @if failed > 0 { " · " span.fail { (failed) " ✕" } }
                } @else { span.muted { "—" } }
            }
            td { (layout::time_opt(b.started_at)) }
            td { @if let (Some(s), Some(e)) = (b.started_at, b.completed_at) { (layout::duration(s, e)) } @else if b.status == "running" { span.muted { "running" } } }
            td { (b.user_email.as_deref().unwrap_or("API key")) }
        }
    }
}

/// The builds list's poll answer: the total, the newest build, and the first page's
/// statuses; the etag covers all of them.
async fn poll_state(
    state: &AppState,
    rq: &UiReq,
    env_id: uuid::Uuid,
    base: &str,
) -> Result<HttpResponse, UiError> {
    let (rows, total) = state
        .store
        .read(move |tx| reads::builds_page(tx, env_id, 0, PAGE_SIZE).map_err(UiError::from))
        .await?;
    let mut fp = format!("{total}");
    for b in &rows {
        fp.push_str(&format!(";{}:{}:{}", b.id, b.status, b.total_tasks()));
    }
    let etag = super::build::etag_of(&fp);
    if super::build::if_none_match(rq, &etag) {
        return Ok(not_modified(&etag));
    }
    let newest = rows.first().map(|b| {
        json!({"id": b.id, "name": b.name, "status": b.status, "url": format!("{base}/builds/{}", b.id)})
    });
    let builds: Vec<_> = rows
        .iter()
        .map(|b| json!({"id": b.id, "status": b.status}))
        .collect();
    Ok(json(
        &json!({"etag": etag, "total": total, "newest": newest, "builds": builds}),
        Some(&etag),
    ))
}
