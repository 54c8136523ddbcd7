//! P4 — `/ws/{ws}/env/{env}/builds[?status=&q=&page=]`: the environment's builds of both
//! SDK protocols, newest first, 20 a page, with a run-history strip, status counters
//! that filter the list (`?status=`), a name/commit/id filter (`?q=`) and task
//! progress per build. `?state=1` (with the same filter) answers the small JSON the
//! page (and the Connect page) polls; its ETag comes from the per-build change
//! counters (`store::changes`), so an unchanged list costs no task reads.

use http::StatusCode;
use maud::{html, Markup};
use serde_json::json;

use crate::http::response::HttpResponse;
use crate::http::AppState;
use crate::store::changes;
use crate::ui::counts_cache::Counts;
use crate::ui::layout::{self, Nav};
use crate::ui::listing::{self, pager};
use crate::ui::reads::{self, BuildFilter, BuildView, Head, HeadPage, Protocol};
use crate::ui::response::{
    etag_of, html as html_page, if_none_match, json, not_modified, UiError, UiReq,
};
use crate::ui::scope;
use crate::ui::session::Session;

const PAGE_SIZE: usize = 20;
const STRIP: usize = 30;
/// The statuses the counters offer, in this order (both protocols' build statuses).
const STATUSES: [&str; 6] = [
    "running",
    "pending",
    "failed",
    "completed",
    "cancelled",
    "exit_early",
];

/// The list's state as read from the query string.
struct ListState {
    filter: BuildFilter,
    page: usize,
}

impl ListState {
    fn read(rq: &UiReq) -> ListState {
        let status = listing::param(rq, "status");
        let q = listing::param(rq, "q");
        ListState {
            filter: BuildFilter {
                status: STATUSES.contains(&status.as_str()).then_some(status),
                text: (!q.is_empty()).then_some(q),
            },
            page: listing::page_no(rq),
        }
    }

    fn status(&self) -> &str {
        self.filter.status.as_deref().unwrap_or("")
    }

    fn text(&self) -> &str {
        self.filter.text.as_deref().unwrap_or("")
    }

    /// This list's URL with another status and page (the text filter is kept).
    fn url(&self, base: &str, status: &str, page: usize) -> String {
        listing::url(
            &format!("{base}/builds"),
            &[("status", status), ("q", self.text())],
            page,
        )
    }
}

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
    let st = ListState::read(rq);
    if rq.query.get("state") == Some("1") {
        return poll_state(state, rq, env_id, &base, st.filter).await;
    }
    let offset = (st.page - 1) * PAGE_SIZE;
    let filter = st.filter.clone();
    let cache = state.ui.counts.clone();
    let (page, rows, strip) = state
        .store
        .read(move |tx| -> Result<_, UiError> {
            let page = reads::build_heads(tx, env_id, &filter, (offset, PAGE_SIZE), true)?;
            let rows = reads::views(tx, &cache, env_id, &page.heads)?;
            // The strip: the latest builds, on the first page of the unfiltered list.
            let strip = if offset == 0 && filter.is_empty() {
                let latest = reads::build_heads(tx, env_id, &filter, (0, STRIP), false)?;
                latest.heads
            } else {
                Vec::new()
            };
            Ok((page, rows, strip))
        })
        .await?;
    let total = page.total;
    let pages = (total as usize).div_ceil(PAGE_SIZE).max(1);
    let env_name = scope.env()?.name.clone();
    let filtered = !st.filter.is_empty();
    let all_total: u64 = page.by_status.values().sum();
    let more = if page.capped { "+" } else { "" };
    let body = html! {
        div.page-head {
            h1 { "Builds" }
            p.muted data-builds-total=(total) {
                (total) (more) " build" @if total != 1 { "s" }
                @if filtered { " match" @if total == 1 { "es" } } " in " (env_name)
            }
        }
        div.new-builds hidden data-watch-builds=(format!("{}{}state=1", st.url(&base, st.status(), 1), if filtered { "&" } else { "?" })) data-initial=(total) {
            a href=(st.url(&base, st.status(), 1)) { "New builds — show" }
        }
        @if all_total == 0 && !filtered {
            section.card.empty {
                h2 { "No builds yet in " (env_name) }
                p { "Run a build with the Stardag SDK to see it here. " a href=(format!("{base}/connect")) { "Connect the SDK →" } }
            }
        } @else {
            @if !strip.is_empty() { (history_strip(&base, &strip)) }
            (filter_bar(&base, &st, &page))
            @if rows.is_empty() {
                section.card.empty {
                    h2 { "No builds match" }
                    p { a href=(format!("{base}/builds")) { "Show all builds" } }
                }
            } @else {
                table.list.builds {
                    thead { tr {
                        th { "Status" } th { "Build" } th { "Description" } th { "Commit" }
                        th { "Tasks" } th { "Started" } th { "Duration" } th { "Started by" }
                    } }
                    tbody {
                        @for (b, counts) in &rows { (build_row(&base, b, counts)) }
                    }
                }
            }
            (pager(
                (st.page > 1).then(|| (st.url(&base, st.status(), st.page - 1), "← Newer")),
                html! { "Page " (st.page) " of " (pages) },
                (st.page < pages).then(|| (st.url(&base, st.status(), st.page + 1), "Older →")),
            ))
        }
    };
    Ok(html_page(
        StatusCode::OK,
        layout::page(state, who, Some(&scope), Nav::Builds, "Builds", body),
    ))
}

/// The status counters (links that filter, `aria-current` on the active one) and the
/// name/commit filter form; the form keeps the status, the links keep the text.
fn filter_bar(base: &str, st: &ListState, counts: &HeadPage) -> Markup {
    let more = if counts.capped { "+" } else { "" };
    let all: u64 = counts.by_status.values().sum();
    html! {
        div.build-filters {
            nav.counters.status-filter aria-label="Filter by status" {
                a.counter.current[st.filter.status.is_none()] href=(st.url(base, "", 1))
                    aria-current=[st.filter.status.is_none().then_some("page")] {
                    span.n { (all) (more) } " all"
                }
                @for s in STATUSES {
                    @let n = counts.by_status.get(s).copied().unwrap_or(0);
                    @if n > 0 || st.status() == s {
                        a.counter.current[st.status() == s] class=(format!("st-{s}")) href=(st.url(base, s, 1))
                            data-status-filter=(s) aria-current=[(st.status() == s).then_some("page")] {
                            span.n { (n) (more) } " " (s.replace('_', " "))
                        }
                    }
                }
            }
            form.build-search method="get" action=(format!("{base}/builds")) role="search" {
                @if !st.status().is_empty() { input type="hidden" name="status" value=(st.status()); }
                label for="build-q" { "Name, commit or id contains" }
                input #build-q type="search" name="q" value=(st.text()) autocomplete="off" spellcheck="false";
                button type="submit" { "Filter" }
                @if !st.text().is_empty() { " " a href=(st.url(base, st.status(), 1)) { "Clear" } }
            }
        }
    }
}

fn history_strip(base: &str, builds: &[Head]) -> Markup {
    html! {
        div.strip aria-label="Recent builds, newest first" {
            @for b in builds {
                a class=(format!("cell st-{}", b.status())) href=(format!("{base}/builds/{}", b.id()))
                    title=(format!("{} — {}", b.name(), b.status())) { span.sr-only { (b.name()) " " (b.status()) } }
            }
        }
    }
}

fn build_row(base: &str, b: &BuildView, counts: &Counts) -> Markup {
    let done = counts.get("completed").copied().unwrap_or(0);
    let failed = counts.get("failed").copied().unwrap_or(0);
    let total: u64 = counts.values().sum();
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
                @if total > 0 {
                    span title=(format!("{done} of {total} tasks completed, {failed} failed")) {
                        (done) "/" (total) " ✓"
                        @if failed > 0 { " · " span.fail { (failed) " ✕" } }
                    }
                } @else { span.muted { "—" } }
            }
            td { (layout::time_opt(b.started_at)) }
            td { @if let (Some(s), Some(e)) = (b.started_at, b.completed_at) { (layout::duration(s, e)) } @else if b.status == "running" { span.muted { "running" } } }
            td { (b.user_email.as_deref().unwrap_or("API key")) }
        }
    }
}

/// The builds list's poll answer: the total, the newest build, and the first page's
/// statuses. The ETag covers the total, the page's build ids and their change counters
/// (and the environment-wide generation), read on one snapshot before any task row.
async fn poll_state(
    state: &AppState,
    rq: &UiReq,
    env_id: uuid::Uuid,
    base: &str,
    filter: BuildFilter,
) -> Result<HttpResponse, UiError> {
    let (page, etag) = state
        .store
        .read(move |tx| -> Result<_, UiError> {
            let page = reads::build_heads(tx, env_id, &filter, (0, PAGE_SIZE), false)?;
            let mut fp = format!(
                "builds-v2|{}|{}",
                page.total,
                filter.status.as_deref().unwrap_or("")
            );
            let mut env_gen = 0;
            for h in &page.heads {
                let (c, g) = changes::of(tx, env_id.as_u128(), h.id().as_u128())?;
                env_gen = g;
                fp.push_str(&format!(";{}:{c}", h.id()));
            }
            fp.push_str(&format!("|{env_gen}"));
            Ok((page, etag_of(&fp)))
        })
        .await?;
    if if_none_match(rq, &etag) {
        return Ok(not_modified(&etag));
    }
    let newest = page.heads.first().map(|h| {
        json!({"id": h.id(), "name": h.name(), "status": h.status(), "url": format!("{base}/builds/{}", h.id())})
    });
    let builds: Vec<_> = page
        .heads
        .iter()
        .map(|h| json!({"id": h.id(), "status": h.status()}))
        .collect();
    Ok(json(
        &json!({"etag": etag, "total": page.total, "newest": newest, "builds": builds}),
        Some(&etag),
    ))
}
