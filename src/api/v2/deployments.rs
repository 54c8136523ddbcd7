//! Deployments, settings and concurrency limits (`v2-registry.md` §5.1).

use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::wire::{check_opt, check_str, deployment_out, invalid, ts, uuid};
use super::{env, limit, now, path_id, raw, read};
use crate::domain::v2::{Code, DeploymentKind, Refusal};
use crate::http::request::invalid_param;
use crate::http::response::{no_content, ok, ApiError, ApiResult};
use crate::http::{AppState, Req};
use crate::store::v2::lifecycle::NewDeployment;
use crate::store::v2::ops;
use crate::store::v2::reads;

fn unknown_deployment() -> Refusal {
    Refusal::new(Code::UnknownDeployment, "no such deployment")
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::deployments::CreateBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    #[serde(default)]
    id: Option<Uuid>,
    kind: String,
    #[serde(default)]
    app_name: Option<String>,
    code_id: String,
    #[serde(default)]
    image_id: Option<String>,
    #[serde(default)]
    modal_app_id: Option<String>,
}

fn kind(raw: &str, loc: &[&str]) -> Result<DeploymentKind, ApiError> {
    DeploymentKind::parse(raw).ok_or_else(|| {
        invalid(
            loc,
            "literal_error",
            "Input should be 'local' or 'modal'",
            json!(raw),
        )
    })
}

/// `POST /deployments`: local ones are found by code, modal ones by id.
pub async fn create(state: &AppState, rq: Req) -> ApiResult {
    let env = env(&rq)?;
    let body: CreateBody = rq.json()?;
    let kind = kind(&body.kind, &["kind"])?;
    if let Some(app) = &body.app_name {
        check_str(&["app_name"], app, 1, 64)?;
    }
    check_str(&["code_id"], &body.code_id, 1, 64)?;
    check_opt(&["image_id"], &body.image_id, 128)?;
    check_opt(&["modal_app_id"], &body.modal_app_id, 64)?;
    let (id, row, was_created) = state
        .store
        .write_logged(ops::CreateDeployment {
            env,
            deployment: NewDeployment {
                id: body.id.map(|u| u.as_u128()),
                kind,
                app_name: body.app_name,
                code_id: body.code_id,
                image_id: body.image_id,
                modal_app_id: body.modal_app_id,
            },
            now: now(),
        })
        .await?;
    let current = state
        .store
        .read_v2(move |s| -> Result<bool, ApiError> {
            Ok(reads::deployment_with_current(s, env, id)?.is_some_and(|(_, c)| c))
        })
        .await?;
    let out = deployment_out(id, &row, current, was_created);
    Ok(ok(&out))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = v2::deployments::ActivateBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActivateBody {
    #[serde(default)]
    modal_app_id: Option<String>,
    #[serde(default)]
    image_id: Option<String>,
}

pub async fn activate(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("deployment_id", raw_id)?;
    let body: ActivateBody = rq.json_or_default()?;
    check_opt(&["image_id"], &body.image_id, 128)?;
    check_opt(&["modal_app_id"], &body.modal_app_id, 64)?;
    state
        .store
        .write_logged(ops::ActivateDeployment {
            env,
            id,
            modal_app_id: body.modal_app_id,
            image_id: body.image_id,
            now: now(),
        })
        .await?;
    get_by_id(state, env, id).await
}

async fn get_by_id(state: &AppState, env: u128, id: u128) -> ApiResult {
    read(state, move |s| {
        let (d, current) =
            reads::deployment_with_current(s, env, id)?.ok_or_else(unknown_deployment)?;
        raw(&deployment_out(id, &d, current, false))
    })
    .await
}

pub async fn get(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("deployment_id", raw_id)?;
    get_by_id(state, env, id).await
}

/// `GET /deployments?kind=&app_name=&current=&limit=`: newest first.
pub async fn list(state: &AppState, rq: Req) -> ApiResult {
    let env = env(&rq)?;
    let limit = limit(&rq.query, 100, 500)?;
    let kind = match rq.query.get("kind") {
        Some(k) => Some(DeploymentKind::parse(k).ok_or_else(|| {
            invalid_param(
                "query",
                "kind",
                "literal_error",
                "Input should be 'local' or 'modal'",
                k,
            )
        })?),
        None => None,
    };
    let app = rq.query.get("app_name").map(str::to_owned);
    let current = rq.query.bool_or("current", false)?;
    read(state, move |s| {
        let rows = reads::list_deployments(s, env, kind, app.as_deref(), current, limit)?;
        let out: Vec<_> = rows
            .iter()
            .map(|(id, d, cur)| deployment_out(*id, d, *cur, false))
            .collect();
        raw(&json!({ "deployments": out }))
    })
    .await
}

/// `GET /settings/{hash}`.
pub async fn settings(state: &AppState, rq: Req, hash: String) -> ApiResult {
    let env = env(&rq)?;
    read(state, move |s| {
        let body = reads::settings(s, env, &hash)?
            .ok_or_else(|| Refusal::new(Code::UnknownSettings, format!("no settings {hash}")))?;
        raw(&json!({ "hash": hash, "body": super::super::wire::raw(&body)? }))
    })
    .await
}

/// `GET /concurrency-limits?include_holders=`.
pub async fn list_limits(state: &AppState, rq: Req) -> ApiResult {
    let env = env(&rq)?;
    let include = rq.query.bool_or("include_holders", false)?;
    let now = now();
    read(state, move |s| {
        let limits = reads::limits(s, env, now)?;
        let out: Vec<Value> = limits
            .iter()
            .map(|l| {
                let mut v = json!({
                    "key": l.key,
                    "max_concurrent": l.max,
                    "in_use": l.holders.len(),
                });
                if include {
                    v["holders"] = l
                        .holders
                        .iter()
                        .map(|(id, t, e)| {
                            json!({
                                "task_id": id,
                                "task_name": t.name,
                                "build_id": t.claim_build.map(uuid),
                                "plan_id": t.claim_plan.map(uuid),
                                "execution_id": t.execution.map(uuid),
                                "started_at": e.as_ref().map(|e| ts(e.started_at)),
                            })
                        })
                        .collect();
                }
                v
            })
            .collect();
        raw(&json!({ "limits": out }))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::deployments::LimitBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitBody {
    max_concurrent: i64,
}

fn check_key(key: &str) -> Result<(), ApiError> {
    let n = key.chars().count();
    if (1..=255).contains(&n) {
        return Ok(());
    }
    Err(invalid_param(
        "path",
        "key",
        "string_too_long",
        "String should have at most 255 characters",
        &key.chars().take(64).collect::<String>(),
    ))
}

/// `PUT /concurrency-limits/{key}` (0 blocks the key).
pub async fn put_limit(state: &AppState, rq: Req, key: String) -> ApiResult {
    let env = env(&rq)?;
    check_key(&key)?;
    let body: LimitBody = rq.json()?;
    if body.max_concurrent < 0 {
        return Err(invalid(
            &["max_concurrent"],
            "greater_than_equal",
            "Input should be greater than or equal to 0",
            json!(body.max_concurrent),
        ));
    }
    let max = body.max_concurrent as u64;
    state
        .store
        .write_logged(ops::PutLimit {
            env,
            key: key.clone(),
            max,
        })
        .await?;
    Ok(ok(&json!({ "key": key, "max_concurrent": max })))
}

pub async fn delete_limit(state: &AppState, rq: Req, key: String) -> ApiResult {
    let env = env(&rq)?;
    check_key(&key)?;
    state
        .store
        .write_logged(ops::DeleteLimit { env, key })
        .await?;
    Ok(no_content())
}
