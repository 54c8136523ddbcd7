//! P7 — `/ws/{ws}/env/{env}/tasks?filter&q&sort&page`: the task explorer. The query
//! string is the whole state (shareable, back button works). The filter language is
//! the API's (docs/search.md): parsed by `domain::search::Query::parse` and answered by
//! `store::search::search`, exactly as `GET /api/v1/tasks/search` does. Works without
//! JS: a GET form, chips whose × is a plain link, sort and page links, and a
//! `<datalist>` of the environment's search keys.

use http::StatusCode;
use maud::{html, Markup};

use crate::domain::search::{FilterErrors, Query, Sort, SortField};
use crate::http::response::HttpResponse;
use crate::http::AppState;
use crate::store::search::{self, Counted, Found};
use crate::ui::layout::{self, seg, url_encode, Nav};
use crate::ui::response::{html as html_page, redirect, UiError, UiReq};
use crate::ui::scope;
use crate::ui::session::Session;

const PAGE_SIZE: usize = 50;
/// Pages beyond this are this one (no arithmetic overflow from a hand-made URL).
const MAX_PAGE: usize = 1_000_000;
/// Discovered `param.`/`asset.` keys offered in the datalist, per kind.
const SUGGESTED_KEYS: usize = 50;
/// The core keys of the filter language (docs/search.md).
const CORE_KEYS: [&str; 8] = [
    "task_name",
    "task_namespace",
    "task_id",
    "status",
    "build_id",
    "build_name",
    "created_at",
    "version",
];

/// The explorer's state, as read from (and written back to) the query string.
#[derive(Clone, Default)]
struct State {
    filter: String,
    q: String,
    sort: String,
    page: usize,
}

impl State {
    fn read(rq: &UiReq) -> State {
        let get = |k: &str| rq.query.get(k).unwrap_or("").trim().to_owned();
        State {
            filter: parts(&get("filter")).join(","),
            q: get("q"),
            sort: get("sort"),
            page: get("page")
                .parse::<usize>()
                .ok()
                .filter(|p| *p >= 1)
                .unwrap_or(1)
                .min(MAX_PAGE),
        }
    }

    /// The URL of this state; defaults are left out so links stay short.
    fn url(&self, base: &str) -> String {
        let mut q = Vec::new();
        if !self.filter.is_empty() {
            q.push(format!("filter={}", url_encode(&self.filter)));
        }
        if !self.q.is_empty() {
            q.push(format!("q={}", url_encode(&self.q)));
        }
        if !self.sort.is_empty() {
            q.push(format!("sort={}", url_encode(&self.sort)));
        }
        if self.page > 1 {
            q.push(format!("page={}", self.page));
        }
        if q.is_empty() {
            format!("{base}/tasks")
        } else {
            format!("{base}/tasks?{}", q.join("&"))
        }
    }

    fn with_filter(&self, filter: String) -> State {
        State {
            filter,
            page: 1,
            ..self.clone()
        }
    }

    fn with_page(&self, page: usize) -> State {
        State {
            page,
            ..self.clone()
        }
    }

    fn with_sort(&self, sort: &str) -> State {
        State {
            sort: sort.to_owned(),
            page: 1,
            ..self.clone()
        }
    }
}

/// The filter's parts as the parser splits them (comma-separated, trimmed, no empties).
fn parts(filter: &str) -> Vec<String> {
    filter
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// "1 234", or "10 000+" when the search only counted up to a bound.
pub fn total_text(n: u64, lower_bound: bool) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    if lower_bound {
        out.push('+');
    }
    out
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
    let st = State::read(rq);
    // "Add a condition" appends to the filter and lands on the canonical URL.
    if let Some(add) = rq.query.get("add").map(str::trim).filter(|a| !a.is_empty()) {
        let mut all = parts(&st.filter);
        all.extend(parts(add));
        return Ok(redirect(&st.with_filter(all.join(",")).url(&base)));
    }
    let parsed = Query::parse(
        Some(&st.filter),
        Some(&st.q),
        Some(&st.sort).filter(|s| !s.is_empty()).map(String::as_str),
    );
    let offset = ((st.page - 1) * PAGE_SIZE) as u64;
    let (found, keys, any_task) = state
        .store
        .read(move |tx| -> Result<_, UiError> {
            let found = match &parsed {
                Ok(query) => Ok(search::search(tx, env_id, query, offset, PAGE_SIZE)?),
                Err(errors) => Err(errors.clone()),
            };
            let (params, assets) = search::discovered_keys(tx, env_id)?;
            let any = match &found {
                Ok(f) if f.total > 0 => true,
                _ => {
                    let all = Query::parse(None, None, None).map_err(|_| UiError::NotFound)?;
                    search::search(tx, env_id, &all, 0, 1)?.total > 0
                }
            };
            Ok((found, (params, assets), any))
        })
        .await?;
    let status = if found.is_err() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = html! {
        div.page-head {
            h1 { "Task explorer" }
            p.muted { "Search the tasks of " (scope.env()?.name) " by name, status, build, parameters and assets." }
        }
        (search_form(&base, &st, &keys))
        (chips(&base, &st, found.as_ref().err()))
        @match &found {
            Err(errors) => (filter_errors(errors)),
            Ok(found) => (results(&base, &st, found, any_task)),
        }
    };
    Ok(html_page(
        status,
        layout::page(state, who, Some(&scope), Nav::Tasks, "Task explorer", body),
    ))
}

fn search_form(base: &str, st: &State, keys: &(Vec<Counted>, Vec<Counted>)) -> Markup {
    html! {
        form.explorer-search.card method="get" action=(format!("{base}/tasks")) role="search" {
            div.field.wide {
                label for="filter" { "Filter" }
                input #filter type="text" name="filter" value=(st.filter)
                    placeholder="task_name:=:train,param.lr:>:0.005" autocomplete="off" spellcheck="false";
            }
            div.field {
                label for="add" { "Add a condition" }
                input #add type="text" name="add" list="search-keys" placeholder="key:op:value"
                    autocomplete="off" spellcheck="false";
            }
            div.field {
                label for="q" { "Name contains" }
                input #q type="text" name="q" value=(st.q) placeholder="text";
            }
            @if !st.sort.is_empty() { input type="hidden" name="sort" value=(st.sort); }
            button.primary type="submit" { "Search" }
            datalist #search-keys {
                @for k in CORE_KEYS { option value=(format!("{k}:=:")) {} }
                @for c in keys.0.iter().take(SUGGESTED_KEYS).chain(keys.1.iter().take(SUGGESTED_KEYS)) {
                    option value=(format!("{}:=:", c.text)) label=(format!("{} ({} tasks)", c.text, c.count)) {}
                }
            }
            p.hint {
                "Conditions are " code { "key:op:value" } ", comma-separated; operators "
                code { "= != > < >= <= ~" } ". Keys: " code { "task_name" } ", " code { "status" } ", "
                code { "build_name" } ", " code { "created_at" } ", " code { "param.<path>" } ", "
                code { "asset.<name>.<path>" } "."
            }
        }
    }
}

/// One chip per filter part; × is the URL without that part. A refused part is marked.
fn chips(base: &str, st: &State, errors: Option<&FilterErrors>) -> Markup {
    let all = parts(&st.filter);
    if all.is_empty() {
        return html! {};
    }
    html! {
        ul.chips aria-label="Filter conditions" {
            @for (i, part) in all.iter().enumerate() {
                @let bad = errors.and_then(|e| e.0.iter().find(|x| &x.part == part));
                @let rest: Vec<&str> = all.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| p.as_str()).collect();
                li.chip.bad[bad.is_some()] {
                    code { (part) }
                    @if let Some(e) = bad { span.chip-reason { (e.reason) } }
                    a.chip-x href=(st.with_filter(rest.join(",")).url(base))
                        title=(format!("Remove {part}")) aria-label=(format!("Remove {part}")) { "×" }
                }
            }
            li { a.clear href=(st.with_filter(String::new()).url(base)) { "Clear all" } }
        }
    }
}

fn filter_errors(errors: &FilterErrors) -> Markup {
    html! {
        div.notice.error.filter-error role="alert" {
            strong { "The filter was not understood." }
            ul {
                @for e in &errors.0 { li { code { (e.part) } ": " (e.reason) } }
            }
        }
    }
}

fn results(base: &str, st: &State, found: &Found, any_task: bool) -> Markup {
    if found.hits.is_empty() && st.page == 1 {
        let all = parts(&st.filter);
        return html! {
            section.card.empty {
                @if !any_task {
                    h2 { "No tasks yet" }
                    p { "Tasks appear when builds register them. " a href=(format!("{base}/connect")) { "Connect the SDK →" } }
                } @else {
                    h2 { "No tasks match" }
                    @if !all.is_empty() {
                        p { a href=(st.with_filter(all[..all.len() - 1].join(",")).url(base)) { "Remove the last condition" } }
                    }
                }
            }
        };
    }
    let first = (st.page - 1) * PAGE_SIZE + 1;
    let last = first + found.hits.len() - usize::from(!found.hits.is_empty());
    let total = total_text(found.total, found.total_is_lower_bound);
    let more = if found.total_is_lower_bound {
        found.hits.len() == PAGE_SIZE
    } else {
        (last as u64) < found.total
    };
    html! {
        p.result-count data-total=(found.total) data-lower-bound=(found.total_is_lower_bound) {
            @if found.hits.is_empty() { "No tasks on this page" } @else { (first) "–" (last) }
            " of " span.total { (total) } " task" @if found.total != 1 || found.total_is_lower_bound { "s" }
        }
        @if !found.hits.is_empty() {
            table.list.explorer {
                thead { tr {
                    (sort_th(base, st, "task_name", "Name"))
                    (sort_th(base, st, "task_namespace", "Namespace"))
                    th { "Status" }
                    th { "Build" }
                    (sort_th(base, st, "created_at", "Created"))
                } }
                tbody {
                    @for hit in &found.hits {
                        tr data-task=(hit.row.task_id) {
                            td {
                                a.strong href=(format!("{base}/tasks/{}", seg(&hit.row.task_id))) { (hit.row.task_name) }
                                div.small.muted { code { (layout::short(&hit.row.task_id)) } }
                            }
                            td { (hit.row.task_namespace) }
                            td { (layout::badge(hit.state.global.status.as_str())) }
                            td {
                                @if let Some((id, name)) = &hit.build {
                                    a href=(format!("{base}/builds/{id}")) { (name) }
                                } @else { span.muted { "—" } }
                            }
                            td { (layout::time(hit.row.created_at)) }
                        }
                    }
                }
            }
        }
        @if st.page > 1 || more {
            nav.pager aria-label="Pages" {
                @if st.page > 1 { a rel="prev" href=(st.with_page(st.page - 1).url(base)) { "← Previous" } }
                span { "Page " (st.page) }
                @if more { a rel="next" href=(st.with_page(st.page + 1).url(base)) { "Next →" } }
            }
        }
    }
}

/// A column header whose link sorts by `field`: ascending first, then the other way round.
fn sort_th(base: &str, st: &State, field: &str, label: &str) -> Markup {
    let current = Sort::parse(Some(&st.sort).filter(|s| !s.is_empty()).map(String::as_str));
    let field_now = match current.field {
        SortField::CreatedAt => "created_at",
        SortField::TaskName => "task_name",
        SortField::TaskNamespace => "task_namespace",
    };
    let active = field_now == field;
    let next = if active && !current.descending {
        format!("{field}:desc")
    } else if active || field != "created_at" {
        format!("{field}:asc")
    } else {
        format!("{field}:desc")
    };
    let arrow = match (active, current.descending) {
        (false, _) => "",
        (true, true) => " ▼",
        (true, false) => " ▲",
    };
    let sorted = match (active, current.descending) {
        (false, _) => "none",
        (true, true) => "descending",
        (true, false) => "ascending",
    };
    html! {
        th aria-sort=(sorted) {
            a.sort href=(st.with_sort(&next).url(base)) data-sort=(next) { (label) (arrow) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::total_text;

    #[test]
    fn totals_group_thousands_and_mark_lower_bounds() {
        assert_eq!(total_text(0, false), "0");
        assert_eq!(total_text(999, false), "999");
        assert_eq!(total_text(1234, false), "1 234");
        assert_eq!(total_text(10_000, true), "10 000+");
        assert_eq!(total_text(1_234_567, false), "1 234 567");
    }
}
