//! Registry assets (v1-tasks §4.2 upload, §4.3 read): markdown and JSON bodies attached
//! to a task, unique per (task, type, name). Uploads append no event.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::wire::{assets_out, both, random_u64, to_raw, AssetOut};
use crate::clock::now_micros;
use crate::domain::limits::{ASSET_NAME_CHARS, ASSET_TYPE_CHARS};
use crate::http::request::{path_uuid, reject, string_too_long};
use crate::http::response::{created, ok, ApiError, ApiResult, ValidationItem};
use crate::http::{AppState, Req};
use crate::store::redo::UploadAssets;
use crate::store::search::DocIndex;
use crate::store::tasks::{self, AssetInput};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = assets::AssetItem)]
pub(crate) struct AssetItem {
    #[serde(rename = "type")]
    asset_type: String,
    name: String,
    #[schema(value_type = Object)]
    body: Map<String, Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = assets::Assets)]
pub(crate) struct Assets<'a> {
    assets: Vec<AssetOut<'a>>,
}

/// `POST /builds/{b}/tasks/{t}/assets`: the build only authorises; assets belong to the
/// task. Answers the assets in request order.
pub async fn upload(state: &AppState, rq: Req, raw_build: &str, hash: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let (build, items) = both(
        path_uuid("build_id", raw_build),
        rq.json::<Vec<AssetItem>>(),
    )?;
    reject(items.iter().enumerate().flat_map(too_long_fields).collect())?;
    let items: Vec<AssetInput> = items
        .into_iter()
        .map(|i| AssetInput {
            search: DocIndex::asset(&i.name, &i.body),
            asset_type: i.asset_type,
            name: i.name,
            body: Value::Object(i.body).to_string(),
        })
        .collect();
    let stored = state
        .store
        .write_logged(UploadAssets {
            env,
            build,
            task: hash.to_owned(),
            items,
            salt: random_u64(),
            now: now_micros(),
        })
        .await?;
    Ok(created(&Assets {
        assets: assets_out(hash, &stored)?,
    }))
}

fn too_long_fields((i, item): (usize, &AssetItem)) -> Vec<ValidationItem> {
    let loc = |field: &str| vec![json!("body"), json!(i), json!(field)];
    [
        string_too_long(loc("type"), &item.asset_type, ASSET_TYPE_CHARS),
        string_too_long(loc("name"), &item.name, ASSET_NAME_CHARS),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `GET /tasks/{t}/assets`: oldest first.
pub async fn list(state: &AppState, rq: Req, hash: &str) -> ApiResult {
    let env = rq.caller.sdk()?.environment_id;
    let task = hash.to_owned();
    let body = state
        .store
        .read(move |tx| -> Result<Box<RawValue>, ApiError> {
            let stored = tasks::task_assets(tx, env, &task)?
                .ok_or_else(|| ApiError::not_found("Task not found"))?;
            to_raw(&Assets {
                assets: assets_out(&task, &stored)?,
            })
        })
        .await?;
    Ok(ok(&body))
}
