//! Builds (`v2-registry.md` §5.2): create, list, get, resume, the lifecycle
//! transitions, skip-blocked, executions, events, and reactive scheduling (§6.7).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

use super::wire::{
    build_out, check_str, execution_out, plan_out, ts, uuid, BuildOut, ExecutionOut,
};
use super::{env, limit, now, path_id, raw, read};
use crate::domain::limits;
use crate::domain::v2::refusal::{Code, Refusal};
use crate::domain::v2::BuildStatus;
use crate::domain::v2::{rules, SECOND};
use crate::http::request::invalid_param;
use crate::http::response::{created, ok, ApiError, ApiResult};
use crate::http::{AppState, Req};
use crate::store::v2::lifecycle::{self, End, LeaseOp, NewBuild, Resume};
use crate::store::v2::ops;
use crate::store::v2::reads;
use crate::store::v2::schema::BuildRow;
use crate::store::v2::V2Error;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::builds::CreateBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    root_task_ids: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    executor_metadata: Option<Map<String, Value>>,
}

/// A stored failure message: cut at 64 KiB rather than refused (D21).
pub(super) fn message(m: &str) -> String {
    limits::truncate_bytes(m, limits::MESSAGE_BYTES).to_owned()
}

fn object_text(m: Option<Map<String, Value>>) -> Option<String> {
    m.map(|m| Value::Object(m).to_string())
}

/// `POST /builds`: born running; the same id again answers the existing build.
pub async fn create(state: &AppState, rq: Req) -> ApiResult {
    let env = env(&rq)?;
    let user = rq.caller.sdk()?.user_id.map(|u| u.as_u128());
    let body: CreateBody = rq.json()?;
    if body.root_task_ids.is_empty() {
        return Err(super::wire::invalid(
            &["root_task_ids"],
            "too_short",
            "List should have at least 1 item after validation, not 0",
            json!([]),
        ));
    }
    for (i, id) in body.root_task_ids.iter().enumerate() {
        check_str(&["root_task_ids", &i.to_string()], id, 1, 64)?;
    }
    if let Some(name) = &body.name {
        check_str(&["name"], name, 1, limits::NAME_CHARS)?;
    }
    if let Some(d) = &body.description {
        check_str(&["description"], d, 0, limits::DESCRIPTION_CHARS)?;
    }
    let mut roots = body.root_task_ids;
    roots.sort();
    roots.dedup();
    let name = body
        .name
        .unwrap_or_else(|| crate::domain::slug::build_name(super::super::wire::random_u64()));
    let id = body.id.unwrap_or_else(Uuid::now_v7).as_u128();
    let row = state
        .store
        .write_logged(ops::CreateBuild {
            env,
            build: NewBuild {
                id,
                name,
                description: body.description,
                root_task_ids: roots,
                executor_metadata: object_text(body.executor_metadata),
                user_id: user,
            },
            now: now(),
        })
        .await?;
    Ok(ok(&build_out(id, &row)?))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::builds::BuildPage)]
pub(crate) struct BuildPage<'a> {
    builds: Vec<BuildOut<'a>>,
    total: u64,
    next_cursor: Option<String>,
}

/// `GET /builds`: most recently active first, cursor-paged, with the total.
pub async fn list(state: &AppState, rq: Req) -> ApiResult {
    let env = env(&rq)?;
    let limit = limit(&rq.query, 100, 500)?;
    let status = match rq.query.get("status") {
        None => None,
        Some(s) => Some(BuildStatus::parse(s).ok_or_else(|| {
            invalid_param(
                "query",
                "status",
                "enum",
                "Input should be 'pending', 'running', 'completed', 'failed', 'cancelled' or 'exit_early'",
                s,
            )
        })?),
    };
    let after = match rq.query.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            reads::parse_cursor(c)
                .and_then(|(at, id)| Some((at, Uuid::parse_str(&id).ok()?.as_u128())))
                .ok_or_else(|| {
                    invalid_param("query", "cursor", "value_error", "Invalid cursor", c)
                })?,
        ),
    };
    let app = rq.query.get("reactive_app_name").map(str::to_owned);
    read(state, move |s| {
        let (page, total) = reads::list_builds(s, env, status, app.as_deref(), limit, after)?;
        let builds = page
            .rows
            .iter()
            .map(|(id, b)| build_out(*id, b))
            .collect::<Result<Vec<_>, _>>()?;
        raw(&BuildPage {
            builds,
            total,
            next_cursor: page.next,
        })
    })
    .await
}

pub async fn get(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    read(state, move |s| {
        let b = reads::build_row(s, env, id)?.ok_or_else(|| lifecycle::unknown_build(id))?;
        raw(&build_out(id, &b)?)
    })
    .await
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = v2::builds::ResumeBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResumeBody {
    #[serde(default)]
    deployment_id: Option<Uuid>,
    #[serde(default)]
    #[schema(value_type = Object)]
    settings: Map<String, Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    executor_metadata: Option<Map<String, Value>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::builds::ResumeOut)]
pub(crate) struct ResumeOut<'a> {
    build: BuildOut<'a>,
    plan: Option<super::wire::PlanOut<'a>>,
    changed: bool,
}

/// `POST /builds/{id}/resume` (§6.1).
pub async fn resume(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let body: ResumeBody = rq.json_or_default()?;
    let settings = rules::check_settings(&body.settings)?;
    let r = state
        .store
        .write_logged(ops::ResumeBuild {
            env,
            id,
            resume: Resume {
                deployment: body.deployment_id.map(|d| d.as_u128()),
                settings_hash: rules::settings_hash(&settings),
                executor_metadata: object_text(body.executor_metadata),
            },
            now: now(),
        })
        .await?;
    Ok(ok(&ResumeOut {
        build: build_out(id, &r.build)?,
        plan: r.plan.as_ref().map(|(pid, p)| plan_out(*pid, p, false)),
        changed: r.changed,
    }))
}

async fn end(state: &AppState, rq: Req, raw_id: &str, end: End) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let row = end_build(state, env, id, end).await??;
    Ok(ok(&build_out(id, &row)?))
}

/// One lifecycle transition: the build row, or the refusal — whether it wrote
/// nothing (`V2Error::Refused`) or wrote (a closure conflict failed the build).
async fn end_build(
    state: &AppState,
    env: u128,
    id: u128,
    end: End,
) -> Result<Result<BuildRow, Refusal>, ApiError> {
    let op = ops::EndBuild {
        env,
        id,
        end,
        now: now(),
    };
    match state.store.write_logged(op).await {
        Ok(answer) => Ok(answer),
        Err(V2Error::Refused(refusal)) => Ok(Err(refusal)),
        Err(V2Error::Store(e)) => Err(e.into()),
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = v2::builds::CompleteBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteBody {
    #[serde(default)]
    force: bool,
}

/// How long `complete` waits for members that another build's live claim holds.
/// The SDK counts a task done as soon as its target exists, and the process that
/// ran it writes the target just before it reports the completion: a build that
/// only waited on that task calls `complete` in between. Both processes did their
/// part, so the answer should not depend on which request lands first.
const HELD_ELSEWHERE_WAIT: Duration = Duration::from_secs(10);
const HELD_ELSEWHERE_POLL: Duration = Duration::from_millis(50);

/// `POST /builds/{id}/complete`: refused with `members_incomplete` at once, unless
/// every outstanding member is running under another build's live claim; then it
/// waits until they end or [`HELD_ELSEWHERE_WAIT`] passes and asks again (docs/v2.md).
pub async fn complete(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let body: CompleteBody = rq.json_or_default()?;
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let deadline = Instant::now() + HELD_ELSEWHERE_WAIT;
    loop {
        let end = End::Complete { force: body.force };
        let refusal = match end_build(state, env, id, end).await? {
            Ok(row) => return Ok(ok(&build_out(id, &row)?)),
            Err(refusal) => refusal,
        };
        let waited = match incomplete_members(&refusal) {
            Some(ids) => wait_while_held(state, env, id, ids, deadline).await?,
            None => false,
        };
        if !waited {
            return Err(refusal.into());
        }
    }
}

/// Polls (reads only) while every one of `ids` is held by another build's live claim.
/// True when that changed after at least one wait: the completion is worth asking
/// again. False when they were not all held to begin with, or still are at `deadline`.
async fn wait_while_held(
    state: &AppState,
    env: u128,
    build: u128,
    ids: Vec<String>,
    deadline: Instant,
) -> Result<bool, ApiError> {
    let ids = std::sync::Arc::new(ids);
    let mut waited = false;
    loop {
        let (ids, now) = (ids.clone(), now());
        let held = state
            .store
            .read_v2(move |s| reads::held_by_other_builds(s, env, build, &ids, now))
            .await?;
        if !held {
            return Ok(waited);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(HELD_ELSEWHERE_POLL).await;
        waited = true;
    }
}

/// The task ids of a `members_incomplete` refusal, when it names all of them.
fn incomplete_members(r: &Refusal) -> Option<Vec<String>> {
    let reason = r.extra.get("reason").and_then(Value::as_str);
    if r.code != Code::PlanIncomplete || reason != Some("members_incomplete") {
        return None;
    }
    let ids: Vec<String> = r
        .extra
        .get("task_ids")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let count = r.extra.get("count").and_then(Value::as_u64)?;
    (ids.len() as u64 == count).then_some(ids)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = v2::builds::FailBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct FailBody {
    #[serde(default)]
    error_message: Option<String>,
}

pub async fn fail(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let body: FailBody = rq.json_or_default()?;
    let error_message = body.error_message.map(|m| message(&m));
    end(state, rq, raw_id, End::Fail { error_message }).await
}

pub async fn cancel(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    end(state, rq, raw_id, End::Cancel).await
}

pub async fn exit_early(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    end(state, rq, raw_id, End::ExitEarly).await
}

/// `POST /builds/{id}/skip-blocked`.
pub async fn skip_blocked(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let (skipped, plan) = state
        .store
        .write_logged(ops::SkipBlocked {
            env,
            build: id,
            now: now(),
        })
        .await?;
    Ok(ok(
        &json!({ "skipped": skipped, "plan_id": plan.map(uuid) }),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = v2::builds::ExecutionsOut)]
pub(crate) struct ExecutionsOut<'a> {
    build_id: Uuid,
    executions: Vec<ExecutionOut<'a>>,
}

/// `GET /builds/{id}/executions`: unended ones unless `include_ended`.
pub async fn executions(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let not_current = rq.query.bool_or("not_in_current_plan", false)?;
    let include_ended = rq.query.bool_or("include_ended", false)?;
    read(state, move |s| {
        let b = reads::build_row(s, env, id)?.ok_or_else(|| lifecycle::unknown_build(id))?;
        let rows = reads::build_executions(s, env, id, b.active_plan, not_current, include_ended)?;
        let executions = rows
            .iter()
            .map(|(eid, e, current)| execution_out(*eid, e, *current))
            .collect::<Result<Vec<_>, _>>()?;
        raw(&ExecutionsOut {
            build_id: uuid(id),
            executions,
        })
    })
    .await
}

/// `GET /builds/{id}/events`: the build's events, oldest first (for the web UI).
pub async fn events(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let limit = limit(&rq.query, 500, 5000)?;
    read(state, move |s| {
        reads::build_row(s, env, id)?.ok_or_else(|| lifecycle::unknown_build(id))?;
        let rows = reads::build_events(s, env, id, limit)?;
        let events = rows
            .iter()
            .map(super::wire::event_out)
            .collect::<Result<Vec<_>, _>>()?;
        raw(&json!({ "build_id": uuid(id), "events": events }))
    })
    .await
}

// ---------------------------------------------------------------------------------
// Reactive scheduling

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = v2::builds::ReactiveBody)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReactiveBody {
    app_name: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    tick_kwargs: Option<Map<String, Value>>,
}

/// `PUT /builds/{id}/reactive-meta`.
pub async fn reactive_meta(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let body: ReactiveBody = rq.json()?;
    check_str(&["app_name"], &body.app_name, 1, 64)?;
    let row = state
        .store
        .write_logged(ops::SetReactiveMeta {
            env,
            id,
            app_name: body.app_name,
            tick_kwargs: object_text(body.tick_kwargs),
        })
        .await?;
    Ok(ok(&build_out(id, &row)?))
}

fn notify_out(id: u128, n: lifecycle::Notified) -> Value {
    let mut out = json!({ "build_id": uuid(id), "needs_tick": n.needs_tick });
    if let Some(live) = n.scheduler_live {
        out["scheduler_live"] = json!(live);
    }
    out
}

/// `POST /builds/{id}/notify?can_spawn=`: flag the build (§6.7).
pub async fn notify(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let can_spawn = rq.query.bool_or("can_spawn", true)?;
    let n = state
        .store
        .write_logged(ops::Notify {
            env,
            id,
            set: Some(can_spawn),
            now: now(),
        })
        .await?;
    Ok(ok(&notify_out(id, n)))
}

pub async fn clear_notify(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let n = state
        .store
        .write_logged(ops::Notify {
            env,
            id,
            set: None,
            now: now(),
        })
        .await?;
    Ok(ok(&notify_out(id, n)))
}

pub async fn get_notify(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    read(state, move |s| {
        let b = reads::build_row(s, env, id)?.ok_or_else(|| lifecycle::unknown_build(id))?;
        raw(&json!({ "build_id": uuid(id), "needs_tick": b.wake.needs_tick_at.is_some() }))
    })
    .await
}

/// `POST /builds/wake-candidates?limit=`: a drain.
pub async fn wake_candidates(state: &AppState, rq: Req) -> ApiResult {
    let env = env(&rq)?;
    let limit = limit(&rq.query, 20, 20)?;
    let builds = state
        .store
        .write_logged(ops::WakeCandidates {
            env,
            limit,
            now: now(),
        })
        .await?;
    let builds: Vec<Value> = builds
        .into_iter()
        .map(|(id, app)| json!({ "build_id": uuid(id), "reactive_app_name": app }))
        .collect();
    Ok(ok(&json!({ "builds": builds })))
}

/// The lease query: `owner_id` (1..64) and, to acquire or renew, `ttl_seconds`
/// (5..3600, default 60).
fn lease_query(rq: &Req, with_ttl: bool) -> Result<(String, i64), ApiError> {
    let owner = rq
        .query
        .get("owner_id")
        .ok_or_else(|| {
            ApiError::Validation(vec![crate::http::response::ValidationItem::new(
                "missing",
                vec![json!("query"), json!("owner_id")],
                "Field required",
                Value::Null,
            )])
        })?
        .to_owned();
    if owner.is_empty() || owner.chars().count() > 64 {
        return Err(invalid_param(
            "query",
            "owner_id",
            "string_too_long",
            "owner_id must have 1..64 characters",
            &owner,
        ));
    }
    let ttl = if with_ttl {
        rq.query.int_in("ttl_seconds", 60, 5, 3600)?
    } else {
        0
    };
    Ok((owner, ttl * SECOND))
}

async fn lease(
    state: &AppState,
    rq: Req,
    raw_id: &str,
    op: fn(i64) -> LeaseOp,
    with_ttl: bool,
) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let (owner, ttl) = lease_query(&rq, with_ttl)?;
    let l = state
        .store
        .write_logged(ops::SchedulerLease {
            env,
            id,
            owner,
            op: op(ttl),
            now: now(),
        })
        .await?;
    Ok(ok(&json!({
        "held": l.held,
        "expires_at": l.expires_at.map(ts),
    })))
}

pub async fn acquire_lease(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    lease(state, rq, raw_id, |ttl| LeaseOp::Acquire { ttl }, true).await
}

pub async fn renew_lease(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    lease(state, rq, raw_id, |ttl| LeaseOp::Renew { ttl }, true).await
}

pub async fn release_lease(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    lease(state, rq, raw_id, |_| LeaseOp::Release, false).await
}

/// `POST /builds/{id}/tick-summaries`: a flat object with an `outcome`, kept verbatim.
pub async fn add_tick_summary(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let body: Map<String, Value> = rq.json()?;
    let outcome = match body.get("outcome") {
        Some(Value::String(o)) => {
            check_str(&["outcome"], o, 1, 32)?;
            o.clone()
        }
        _ => {
            return Err(super::wire::invalid(
                &["outcome"],
                "missing",
                "Field required",
                Value::Object(body),
            ))
        }
    };
    let summary = Value::Object(body).to_string();
    let row = state
        .store
        .write_logged(ops::AddTickSummary {
            env,
            id,
            outcome,
            summary,
            now: now(),
        })
        .await?;
    Ok(created(&tick_out(&row)?))
}

fn tick_out(t: &crate::store::v2::schema::TickRow) -> Result<Value, ApiError> {
    Ok(json!({
        "id": uuid(t.id),
        "outcome": t.outcome,
        "summary": super::super::wire::raw(&t.summary)?,
        "created_at": ts(t.created_at),
    }))
}

pub async fn tick_summaries(state: &AppState, rq: Req, raw_id: &str) -> ApiResult {
    let env = env(&rq)?;
    let id = path_id("build_id", raw_id)?;
    let limit = limit(&rq.query, 20, 200)?;
    read(state, move |s| {
        reads::build_row(s, env, id)?.ok_or_else(|| lifecycle::unknown_build(id))?;
        let rows = reads::tick_summaries(s, env, id, limit)?;
        let summaries = rows.iter().map(tick_out).collect::<Result<Vec<_>, _>>()?;
        raw(&json!({ "build_id": uuid(id), "summaries": summaries }))
    })
    .await
}

/// `GET /stalled-builds?older_than_seconds=&limit=`.
pub async fn stalled(state: &AppState, rq: Req) -> ApiResult {
    let env = env(&rq)?;
    let older = rq.query.int_in("older_than_seconds", 300, 0, 604_800)?;
    let limit = limit(&rq.query, 200, 200)?;
    let now = now();
    let cutoff = now - older * SECOND;
    read(state, move |s| {
        let rows = reads::stalled(s, env, cutoff, limit, now)?;
        let builds: Vec<Value> = rows
            .into_iter()
            .map(|(id, app, why, since)| {
                json!({
                    "build_id": uuid(id),
                    "reactive_app_name": app,
                    "reason": why.as_str(),
                    "since": ts(since),
                })
            })
            .collect();
        raw(&json!({ "builds": builds, "older_than_seconds": older }))
    })
    .await
}
