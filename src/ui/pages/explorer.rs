//! P7 — `/ws/{ws}/env/{env}/tasks?filter&q&sort&page`: the task explorer. The query
//! string is the whole state (shareable, back button works). The filter language is
//! the API's (docs/search.md): parsed by `domain::search::Query::parse` and answered by
//! `store::search::search`, exactly as `GET /api/v1/tasks/search` does. Works without
//! JS: a GET form, chips whose × is a plain link, sort and page links, and a
//! `<datalist>` of the environment's search keys.

use crate::http::request::comma_list;
use http::StatusCode;
use maud::{html, Markup};

use crate::domain::search::{
    asset_key, scalar_in_text, FilterErrors, Path, Query, Sort, SortField,
};
use crate::http::response::HttpResponse;
use crate::http::router::Endpoint;
use crate::http::AppState;
use crate::store::search::{self, Counted, Found};
use crate::ui::api_call::call;
use crate::ui::layout::{self, seg, Nav};
use crate::ui::listing;
use crate::ui::response::{html as html_page, json, redirect, UiError, UiReq};
use crate::ui::scope;
use crate::ui::session::Session;

const PAGE_SIZE: usize = 50;
/// Discovered `param.`/`asset.` keys offered in the datalist, per kind.
const SUGGESTED_KEYS: usize = 50;
/// The core keys of the filter language (docs/search.md).
pub const CORE_KEYS: [&str; 8] = [
    "task_name",
    "task_namespace",
    "task_id",
    "status",
    "build_id",
    "build_name",
    "created_at",
    "version",
];
/// Extra columns besides `param.<path>` and `asset.<name>.<path>` ones (`cols=`).
const CORE_COLUMNS: [&str; 3] = ["task_id", "version", "build_id"];
/// At most this many extra columns.
const MAX_COLUMNS: usize = 12;

/// The explorer's state, as read from (and written back to) the query string.
#[derive(Clone, Default)]
struct State {
    filter: String,
    q: String,
    sort: String,
    /// Extra columns: core names, `param.<path>` or `asset.<name>.<path>`.
    cols: Vec<String>,
    page: usize,
}

impl State {
    fn read(rq: &UiReq) -> State {
        // The no-JS column chooser sends one `col` per ticked box (and `cols_form=1`).
        let cols = if rq.query.get("cols_form").is_some() {
            rq.query.get_all("col").map(str::to_owned).collect()
        } else {
            comma_list(&listing::param(rq, "cols"))
        };
        State {
            filter: comma_list(&listing::param(rq, "filter")).join(","),
            q: listing::param(rq, "q"),
            sort: listing::param(rq, "sort"),
            cols: cols
                .into_iter()
                .filter(|c| column_ok(c))
                .take(MAX_COLUMNS)
                .collect(),
            page: listing::page_no(rq),
        }
    }

    /// The URL of this state; defaults are left out so links stay short.
    fn url(&self, base: &str) -> String {
        let cols = self.cols.join(",");
        listing::url(
            &format!("{base}/tasks"),
            &[
                ("filter", &self.filter),
                ("q", &self.q),
                ("sort", &self.sort),
                ("cols", &cols),
            ],
            self.page,
        )
    }

    /// The asset names of the `asset.` columns, each once: what the search reads with
    /// the results (the API's `include_assets`).
    fn asset_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for c in &self.cols {
            if let Some(Ok((name, _))) = c.strip_prefix("asset.").map(asset_key) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
        names
    }

    fn with_filter(&self, filter: String) -> State {
        State {
            filter,
            page: 1,
            ..self.clone()
        }
    }

    /// This state plus the condition `key:op:value` ("click a cell to filter").
    fn adding(&self, key: &str, op: &str, value: &str) -> State {
        let mut all = comma_list(&self.filter);
        all.push(format!("{key}:{op}:{value}"));
        self.with_filter(all.join(","))
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

/// A column the chooser accepts: a core one, `param.<path>` with a valid path, or
/// `asset.<name>.<path>` as the filter language reads it.
fn column_ok(c: &str) -> bool {
    CORE_COLUMNS.contains(&c)
        || c.strip_prefix("param.")
            .is_some_and(|p| Path::parse(p).is_ok())
        || c.strip_prefix("asset.")
            .is_some_and(|rest| asset_key(rest).is_ok())
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
    // "Add a condition" appends to the filter and lands on the canonical URL; so does
    // the no-JS column chooser.
    if let Some(add) = rq.query.get("add").map(str::trim).filter(|a| !a.is_empty()) {
        let mut all = comma_list(&st.filter);
        all.extend(comma_list(add));
        return Ok(redirect(&st.with_filter(all.join(",")).url(&base)));
    }
    if rq.query.get("cols_form").is_some() {
        return Ok(redirect(&st.url(&base)));
    }
    let parsed = Query::parse(
        Some(&st.filter),
        Some(&st.q),
        Some(&st.sort).filter(|s| !s.is_empty()).map(String::as_str),
    );
    let offset = ((st.page - 1) * PAGE_SIZE) as u64;
    let names = st.asset_names();
    let (found, assets, keys, any_task) = state
        .store
        .read(move |tx| -> Result<_, UiError> {
            let found = match &parsed {
                Ok(query) => Ok(search::search(tx, env_id, query, offset, PAGE_SIZE)?),
                Err(errors) => Err(errors.clone()),
            };
            // The bodies of the assets the columns name, per hit, as the API's
            // `include_assets` reads them.
            let mut assets = Vec::new();
            if let (Ok(found), false) = (&found, names.is_empty()) {
                for hit in &found.hits {
                    assets.push(search::asset_bodies(tx, env_id, hit.row.id, &names)?);
                }
            }
            let (params, assets_keys) = search::discovered_keys(tx, env_id)?;
            let any = match &found {
                Ok(f) if f.total > 0 => true,
                _ => {
                    let all = Query::parse(None, None, None).map_err(|_| UiError::NotFound)?;
                    search::search(tx, env_id, &all, 0, 1)?.total > 0
                }
            };
            Ok((found, assets, (params, assets_keys), any))
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
            Ok(found) => {
                (column_chooser(&base, &st, &keys))
                (results(&base, &st, found, &assets, any_task))
            }
        }
    };
    Ok(html_page(
        status,
        layout::page(state, who, Some(&scope), Nav::Tasks, "Task explorer", body),
    ))
}

/// `GET …/-/search/keys|values`: the autocomplete's JSON, answered by the API's own
/// `/tasks/search/keys|values` handlers with this user's caller (same limits and 422s).
pub async fn suggest(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    env: &str,
    values: bool,
) -> Result<HttpResponse, UiError> {
    let scope = scope::resolve(state, who, ws, Some(env)).await?;
    let endpoint = if values {
        Endpoint::SearchValues
    } else {
        Endpoint::SearchKeys
    };
    let query = rq.parts.uri.query().unwrap_or("").to_owned();
    let answer = call(
        state,
        rq,
        scope.sdk_caller(&who.user)?,
        endpoint,
        &query,
        None,
    )
    .await?;
    Ok(json(&answer, None))
}

fn search_form(base: &str, st: &State, keys: &(Vec<Counted>, Vec<Counted>)) -> Markup {
    html! {
        form.explorer-search.card method="get" action=(format!("{base}/tasks")) role="search"
            data-keys-url=(format!("{base}/-/search/keys")) data-values-url=(format!("{base}/-/search/values")) {
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
            @if !st.cols.is_empty() { input type="hidden" name="cols" value=(st.cols.join(",")); }
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
    let all = comma_list(&st.filter);
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

fn results(
    base: &str,
    st: &State,
    found: &Found,
    assets: &[Vec<(String, String)>],
    any_task: bool,
) -> Markup {
    if found.hits.is_empty() && st.page == 1 {
        let all = comma_list(&st.filter);
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
            p.hint.click-hint { "Click a value to filter by it; Shift- or Alt-click to exclude it." }
            table.list.explorer {
                thead { tr {
                    (sort_th(base, st, "task_name", "Name"))
                    (sort_th(base, st, "task_namespace", "Namespace"))
                    th { "Status" }
                    th { "Build" }
                    (sort_th(base, st, "created_at", "Created"))
                    @for c in &st.cols { th.param-col scope="col" { code { (c) } } }
                } }
                tbody {
                    @for (i, hit) in found.hits.iter().enumerate() {
                        (result_row(base, st, hit, assets.get(i).map(Vec::as_slice).unwrap_or(&[])))
                    }
                }
            }
        }
        (listing::pager(
            (st.page > 1).then(|| (st.with_page(st.page - 1).url(base), "← Previous")),
            html! { "Page " (st.page) },
            more.then(|| (st.with_page(st.page + 1).url(base), "Next →")),
        ))
    }
}

/// A value that filters when clicked: a plain link to the URL with `key = value` added
/// (no JS needed); the script turns Shift/Alt-click into `!=` via `data-*`.
fn filter_cell(base: &str, st: &State, key: &str, value: &str, shown: Markup) -> Markup {
    if value.is_empty() || value.contains(',') {
        // The wire format cannot carry a comma inside a value.
        return shown;
    }
    html! {
        a.cell-filter href=(st.adding(key, "=", value).url(base))
            data-exclude=(st.adding(key, "!=", value).url(base))
            title=(format!("Filter {key} = {value}")) { (shown) }
    }
}

fn result_row(base: &str, st: &State, hit: &search::Hit, assets: &[(String, String)]) -> Markup {
    let status = hit.state.global.status.as_str();
    let data: Option<serde_json::Map<String, serde_json::Value>> =
        if st.cols.iter().any(|c| c.starts_with("param.")) {
            serde_json::from_str(&hit.row.task_data).ok()
        } else {
            None
        };
    html! {
        tr data-task=(hit.row.task_id) {
            td {
                a.strong href=(format!("{base}/tasks/{}", seg(&hit.row.task_id))) { (hit.row.task_name) }
                " " (filter_cell(base, st, "task_name", &hit.row.task_name, html! { span.small { "=" } }))
                div.small.muted { code { (layout::short(&hit.row.task_id)) } }
            }
            td { (filter_cell(base, st, "task_namespace", &hit.row.task_namespace, html! { (hit.row.task_namespace) })) }
            td { (filter_cell(base, st, "status", status, layout::badge(status))) }
            td {
                @if let Some((id, name)) = &hit.build {
                    a href=(format!("{base}/builds/{id}")) { (name) }
                    div.small {
                        a.show-in-graph href=(format!("{base}/builds/{id}?tab=graph&highlight={}", layout::url_encode(&hit.row.task_id)))
                            title="Show this task in its build's graph" { "show in graph" }
                    }
                } @else { span.muted { "—" } }
            }
            td { (layout::time(hit.row.created_at)) }
            @for c in &st.cols {
                td.param-col {
                    @let v = column_value(c, hit, data.as_ref(), assets);
                    @match v {
                        Some(v) => (filter_cell(base, st, c, &v, html! { code { (v) } })),
                        None => span.muted { "—" },
                    }
                }
            }
        }
    }
}

/// The text of column `c` for a hit (`None`: the task has no such value). `asset.`
/// columns read the scalar at the path of the named asset's body (its filter text, so
/// a click filters by exactly what is shown).
fn column_value(
    c: &str,
    hit: &search::Hit,
    data: Option<&serde_json::Map<String, serde_json::Value>>,
    assets: &[(String, String)],
) -> Option<String> {
    match c {
        "task_id" => Some(hit.row.task_id.clone()),
        "version" => hit.row.version.clone(),
        "build_id" => hit.build.as_ref().map(|(id, _)| id.to_string()),
        _ => {
            if let Some(rest) = c.strip_prefix("asset.") {
                let (name, path) = asset_key(rest).ok()?;
                let (_, body) = assets.iter().find(|(n, _)| n == name)?;
                return scalar_in_text(&path, body).map(|v| v.as_scalar().text());
            }
            let path = Path::parse(c.strip_prefix("param.")?).ok()?;
            path.get(data?).map(|v| v.text())
        }
    }
}

/// The "Columns" chooser: a `<details>` GET form of checkboxes (core columns and the
/// environment's most frequent `param.` and `asset.` keys, as `/tasks/search/columns`
/// offers them), so it works without JS.
fn column_chooser(base: &str, st: &State, keys: &(Vec<Counted>, Vec<Counted>)) -> Markup {
    let (params, assets) = keys;
    let discovered = params
        .iter()
        .take(SUGGESTED_KEYS)
        .chain(assets.iter().take(SUGGESTED_KEYS))
        .map(|c| c.text.clone())
        .filter(|c| column_ok(c));
    let offered: Vec<String> = CORE_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(discovered)
        .chain(st.cols.iter().cloned())
        .fold(Vec::new(), |mut acc, c| {
            if !acc.contains(&c) {
                acc.push(c);
            }
            acc
        });
    html! {
        details.columns {
            summary { "Columns" @if !st.cols.is_empty() { " (" (st.cols.len()) ")" } }
            form method="get" action=(format!("{base}/tasks")) {
                input type="hidden" name="cols_form" value="1";
                @if !st.filter.is_empty() { input type="hidden" name="filter" value=(st.filter); }
                @if !st.q.is_empty() { input type="hidden" name="q" value=(st.q); }
                @if !st.sort.is_empty() { input type="hidden" name="sort" value=(st.sort); }
                fieldset {
                    legend { "Extra columns" }
                    @for c in &offered {
                        label.col-choice {
                            input type="checkbox" name="col" value=(c) checked[st.cols.contains(c)];
                            " " code { (c) }
                        }
                    }
                }
                button type="submit" { "Apply" }
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
