//! Task search for the UI's Task Explorer (v1-tasks §4.4 as made exact by D20, see
//! docs/search.md): `GET /tasks/search` and its `keys`, `values` and `columns`
//! suggestions. Everything is answered from the search indexes, read fresh each time.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::wire::{both, paging, raw, task_fields, to_raw, TaskFields};
use crate::clock::format_micros;
use crate::domain::events::TaskStatus;
use crate::domain::search::{Path, Query};
use crate::http::request::Query as Params;
use crate::http::response::{ok, ApiError, ApiResult, ValidationItem};
use crate::http::{AppState, Req};
use crate::store::search::{self, Counted, Found, FIELD_NAME, FIELD_NAMESPACE};

/// Upstream's fixed `available_columns`.
const AVAILABLE_COLUMNS: [&str; 5] = [
    "task_name",
    "task_namespace",
    "status",
    "build_name",
    "created_at",
];

/// `/search/columns` core list.
const CORE_COLUMNS: [&str; 9] = [
    "task_id",
    "task_name",
    "task_namespace",
    "status",
    "build_id",
    "build_name",
    "created_at",
    "started_at",
    "completed_at",
];

/// `/search/keys` core keys, in upstream's order, with their types.
const CORE_KEYS: [(&str, &str); 7] = [
    ("task_name", "string"),
    ("task_namespace", "string"),
    ("task_id", "string"),
    ("status", "string"),
    ("build_id", "string"),
    ("build_name", "string"),
    ("created_at", "datetime"),
];

/// Upstream's suggestion list for status; `cancelled` is observable too (§3.4).
const STATUS_VALUES: [TaskStatus; 5] = [
    TaskStatus::Pending,
    TaskStatus::Running,
    TaskStatus::Completed,
    TaskStatus::Failed,
    TaskStatus::Cancelled,
];

/// Columns listed by `/search/columns` per kind.
const TOP_COLUMNS: usize = 50;

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = search::ResultOut)]
pub(crate) struct ResultOut<'a> {
    #[serde(flatten)]
    task: TaskFields<'a>,
    build_id: Option<Uuid>,
    build_name: Option<&'a str>,
    status: TaskStatus,
    started_at: Option<String>,
    completed_at: Option<String>,
    error_message: Option<&'a str>,
    asset_count: u64,
    /// Asset name → its body.
    #[schema(value_type = Object)]
    asset_data: BTreeMap<&'a str, &'a RawValue>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = search::SearchOut)]
pub(crate) struct SearchOut<'a> {
    tasks: Vec<ResultOut<'a>>,
    total: u64,
    /// New next to `total` (issue 20): `total` counts at most a bound, or what a work
    /// budget reached; then this is true and more may match. v1 clients ignore it.
    total_is_lower_bound: bool,
    page: i64,
    page_size: i64,
    available_columns: [&'static str; 5],
}

/// Renders a result page; shared with the benchmark so it measures what is served.
pub fn render(
    env: Uuid,
    found: &Found,
    assets: &[Vec<(String, String)>],
    page: i64,
    page_size: i64,
) -> Result<Box<RawValue>, ApiError> {
    let mut tasks = Vec::with_capacity(found.hits.len());
    for (i, hit) in found.hits.iter().enumerate() {
        let (row, g) = (&hit.row, &hit.state.global);
        let mut asset_data = BTreeMap::new();
        for (name, body) in assets.get(i).map(Vec::as_slice).unwrap_or(&[]) {
            asset_data.insert(name.as_str(), raw(body)?);
        }
        tasks.push(ResultOut {
            task: task_fields(env, row)?,
            build_id: hit.build.as_ref().map(|b| b.0),
            build_name: hit.build.as_ref().map(|b| b.1.as_str()),
            status: g.status,
            started_at: g.started_at.map(format_micros),
            completed_at: g.completed_at.map(format_micros),
            error_message: g.error_message.as_deref(),
            asset_count: hit.state.asset_count,
            asset_data,
        });
    }
    to_raw(&SearchOut {
        tasks,
        total: found.total,
        total_is_lower_bound: found.total_is_lower_bound,
        page,
        page_size,
        available_columns: AVAILABLE_COLUMNS,
    })
}

/// `GET /tasks/search`.
pub async fn tasks(state: &AppState, rq: Req) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let p = &rq.query;
    let parsed = Query::parse(p.get("filter"), p.get("q"), p.get("sort")).map_err(ApiError::from);
    let ((offset, page, page_size), query) = both(paging(p, 50), parsed)?;
    let names = p.list("include_assets");
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let found = search::search(tx, env, &query, offset as u64, page_size as usize)?;
            let mut assets = Vec::with_capacity(found.hits.len());
            for hit in &found.hits {
                assets.push(search::asset_bodies(tx, env, hit.row.id, &names)?);
            }
            render(env, &found, &assets, page, page_size)
        })
        .await?;
    Ok(ok(&body))
}

/// Suggestion limits: a positive bound instead of upstream's unchecked integer.
fn limit(params: &Params) -> Result<usize, ApiError> {
    Ok(params.int_in("limit", 20, 1, 1000)? as usize)
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = search::KeyOut)]
pub(crate) struct KeyOut {
    key: String,
    #[serde(rename = "type")]
    kind: &'static str,
    count: u64,
}

/// `GET /tasks/search/keys`: core keys, then `param.` and `asset.` keys by frequency,
/// each kept when it starts with `prefix`, at most `limit`.
pub async fn keys(state: &AppState, rq: Req) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let prefix = rq.query.get("prefix").unwrap_or("").to_owned();
    let limit = limit(&rq.query)?;
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let (params, assets) = search::discovered_keys(tx, env)?;
            let core = CORE_KEYS.iter().map(|(k, t)| KeyOut {
                key: (*k).to_owned(),
                kind: t,
                count: 0,
            });
            let found = params.into_iter().chain(assets).map(|c| KeyOut {
                key: c.text,
                kind: "string",
                count: c.count,
            });
            let keys: Vec<KeyOut> = core
                .chain(found)
                .filter(|k| k.key.starts_with(&prefix))
                .take(limit)
                .collect();
            to_raw(&json!({ "keys": keys }))
        })
        .await?;
    Ok(ok(&body))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = search::ValueOut)]
pub(crate) struct ValueOut {
    value: String,
    count: u64,
}

impl From<Counted> for ValueOut {
    fn from(c: Counted) -> Self {
        ValueOut {
            value: c.text,
            count: c.count,
        }
    }
}

fn starts_with_ci(text: &str, prefix: &str) -> bool {
    text.to_lowercase().starts_with(&prefix.to_lowercase())
}

/// `GET /tasks/search/values?key=`: the values of one key with their frequencies.
pub async fn values(state: &AppState, rq: Req) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let key = rq.query.get("key").map(str::to_owned);
    let (key, limit) = both(
        key.ok_or_else(|| {
            ApiError::Validation(vec![ValidationItem::new(
                "missing",
                vec![json!("query"), json!("key")],
                "Field required",
                json!(null),
            )])
        }),
        limit(&rq.query),
    )?;
    let prefix = rq.query.get("prefix").unwrap_or("").to_owned();
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let values: Vec<ValueOut> = match key.as_str() {
                "status" => {
                    let counts = search::status_counts(tx, env)?;
                    STATUS_VALUES
                        .iter()
                        .filter(|s| s.as_str().starts_with(&prefix))
                        .map(|s| ValueOut {
                            value: s.as_str().to_owned(),
                            count: counts.iter().find(|(x, _)| x == s).map_or(0, |(_, n)| *n),
                        })
                        .collect()
                }
                "build_id" => search::build_values(tx, env)?
                    .into_iter()
                    .map(|(id, _, count)| ValueOut {
                        value: id.to_string(),
                        count,
                    })
                    .filter(|v| starts_with_ci(&v.value, &prefix))
                    .take(limit)
                    .collect(),
                "build_name" => {
                    let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
                    for (_, name, count) in search::build_values(tx, env)? {
                        *by_name.entry(name).or_default() += count;
                    }
                    let mut out: Vec<ValueOut> = by_name
                        .into_iter()
                        .filter(|(name, _)| starts_with_ci(name, &prefix))
                        .map(|(value, count)| ValueOut { value, count })
                        .collect();
                    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
                    out.truncate(limit);
                    out
                }
                "task_name" | "task_namespace" => {
                    let field = if key == "task_name" {
                        FIELD_NAME
                    } else {
                        FIELD_NAMESPACE
                    };
                    search::name_values(tx, env, field, &prefix, limit)?
                        .into_iter()
                        .map(ValueOut::from)
                        .collect()
                }
                other => match indexed_field(other) {
                    Some(field) => search::field_values(tx, env, &field, &prefix, limit)?
                        .into_iter()
                        .map(ValueOut::from)
                        .collect(),
                    None => Vec::new(),
                },
            };
            to_raw(&json!({ "values": values }))
        })
        .await?;
    Ok(ok(&body))
}

/// The index field of a `param.<path>` or `asset.<name>.<path>` key, if it is one.
fn indexed_field(key: &str) -> Option<String> {
    if let Some(path) = key.strip_prefix("param.") {
        return Some(format!("param.{}", Path::parse(path).ok()?.canonical()));
    }
    let (name, path) = key.strip_prefix("asset.")?.split_once('.')?;
    Some(format!(
        "asset.{name}.{}",
        Path::parse(path).ok()?.canonical()
    ))
}

/// `GET /tasks/search/columns`: core columns and the most frequent discovered keys.
pub async fn columns(state: &AppState, rq: Req) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let (params, assets) = search::discovered_keys(tx, env)?;
            let top = |v: Vec<Counted>| -> Vec<String> {
                v.into_iter().take(TOP_COLUMNS).map(|c| c.text).collect()
            };
            to_raw(&json!({
                "core": CORE_COLUMNS,
                "params": top(params),
                "assets": top(assets),
            }))
        })
        .await?;
    Ok(ok(&body))
}
