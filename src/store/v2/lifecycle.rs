//! Builds, deployments, concurrency limits and reactive scheduling: the writes of
//! `v2-registry.md` §5.1, §5.2 and §6.7 that do not act on a plan's members.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::registration::{admit_closure, PlanGraph, Scope};
use super::schema::*;
use super::{
    append_event, build, corrupt, current_deployment, deployment, end_build, plan, put, save_build,
    save_plan, task, Answer, Ending, NewEvent, V2Result,
};
use crate::domain::v2::rules::{self, Lease, Lifecycle, Wake};
use crate::domain::v2::{
    BuildStatus, Code, DeploymentKind, EventType, Refusal, TaskStatus, MAX_NAMED_TASKS,
};
use crate::store::tables::Tables;
use crate::store::StoreError;

pub fn unknown_build(id: u128) -> Refusal {
    let id = uuid::Uuid::from_u128(id).to_string();
    Refusal::new(Code::UnknownBuild, format!("no build {id}")).with("build_id", id)
}

fn the_build(t: &Tables, env: u128, id: u128) -> V2Result<BuildRow> {
    Ok(build(t, env, id)?.ok_or_else(|| unknown_build(id))?)
}

// ---------------------------------------------------------------------------------
// Deployments and limits

/// `POST /deployments` input (§5.1); `id` is required for modal deployments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewDeployment {
    pub id: Option<u128>,
    pub kind: DeploymentKind,
    pub app_name: Option<String>,
    pub code_id: String,
    pub image_id: Option<String>,
    pub modal_app_id: Option<String>,
}

/// Creates a deployment, or finds the one a re-delivery (or the same local code)
/// names. Returns its id, row and whether it was created.
pub fn create_deployment(
    t: &Tables,
    env: u128,
    d: NewDeployment,
    now: i64,
) -> V2Result<(u128, DeploymentRow, bool)> {
    let app_name = match d.kind {
        DeploymentKind::Local => d.app_name.clone().unwrap_or_else(|| "local".into()),
        DeploymentKind::Modal if d.id.is_none() => {
            return Err(
                Refusal::new(Code::DeploymentIdRequired, "a modal deployment needs an id").into(),
            )
        }
        DeploymentKind::Modal => match &d.app_name {
            Some(name) if !name.is_empty() => name.clone(),
            _ => {
                return Err(Refusal::new(
                    Code::AppNameRequired,
                    "a modal deployment needs an app_name",
                )
                .into())
            }
        },
    };
    if d.kind == DeploymentKind::Local {
        let found = t
            .v2_local_deployments()?
            .get((env, d.code_id.as_str()))?
            .map(|g| g.value());
        if let Some(id) = found {
            let row = deployment(t, env, id)?.ok_or_else(|| corrupt("local deployment index"))?;
            if row.app_name != app_name {
                return Err(Refusal::new(
                    Code::LocalDeploymentConflict,
                    "this code is deployed locally under another app_name",
                )
                .into());
            }
            return Ok((id, row, false));
        }
    }
    let id =
        d.id.unwrap_or_else(|| derived_id(&[&env.to_be_bytes(), b"local", d.code_id.as_bytes()]));
    if let Some(row) = deployment(t, env, id)? {
        if (row.kind, row.app_name.as_str(), row.code_id.as_str())
            != (d.kind, app_name.as_str(), d.code_id.as_str())
        {
            return Err(Refusal::new(
                Code::DeploymentIdConflict,
                "this deployment id names another deployment",
            )
            .into());
        }
        return Ok((id, row, false));
    }
    let generation = last_generation(t, env, d.kind, &app_name)? + 1;
    let row = DeploymentRow {
        kind: d.kind,
        app_name,
        code_id: d.code_id,
        image_id: d.image_id,
        modal_app_id: d.modal_app_id,
        generation,
        deployed_at: now,
        activated_at: (d.kind == DeploymentKind::Local).then_some(now),
    };
    put(&mut *t.v2_deployments()?, (env, id), &row)?;
    t.v2_deployment_generations()?.insert(
        (env, row.kind.as_str(), row.app_name.as_str(), generation),
        id,
    )?;
    if row.kind == DeploymentKind::Local {
        t.v2_local_deployments()?
            .insert((env, row.code_id.as_str()), id)?;
    }
    Ok((id, row, true))
}

fn last_generation(
    t: &Tables,
    env: u128,
    kind: DeploymentKind,
    app: &str,
) -> Result<u64, StoreError> {
    let gens = t.v2_deployment_generations()?;
    let mut range =
        gens.range((env, kind.as_str(), app, 0u64)..=(env, kind.as_str(), app, u64::MAX))?;
    let last = match range.next_back() {
        Some(entry) => entry?.0.value().3,
        None => 0,
    };
    Ok(last)
}

/// `POST /deployments/{id}/activate`: a given value fills a null or must match.
pub fn activate_deployment(
    t: &Tables,
    env: u128,
    id: u128,
    modal_app_id: Option<String>,
    image_id: Option<String>,
    now: i64,
) -> V2Result<DeploymentRow> {
    let mut row = deployment(t, env, id)?
        .ok_or_else(|| Refusal::new(Code::UnknownDeployment, "no such deployment"))?;
    let mut clashing = Vec::new();
    if let (Some(given), Some(stored)) = (&image_id, &row.image_id) {
        if given != stored {
            clashing.push("image_id");
        }
    }
    if let (Some(given), Some(stored)) = (&modal_app_id, &row.modal_app_id) {
        if given != stored {
            clashing.push("modal_app_id");
        }
    }
    if !clashing.is_empty() {
        return Err(Refusal::new(
            Code::DeploymentActivationConflict,
            "the deployment was activated with other values",
        )
        .with("fields", clashing)
        .into());
    }
    row.image_id = row.image_id.or(image_id);
    row.modal_app_id = row.modal_app_id.or(modal_app_id);
    row.activated_at.get_or_insert(now);
    put(&mut *t.v2_deployments()?, (env, id), &row)?;
    Ok(row)
}

pub fn put_limit(t: &Tables, env: u128, key: &str, max: u64) -> Result<(), StoreError> {
    t.v2_limits()?.insert((env, key), max)?;
    Ok(())
}

pub fn delete_limit(t: &Tables, env: u128, key: &str) -> V2Result<()> {
    if t.v2_limits()?.remove((env, key))?.is_none() {
        return Err(Refusal::new(Code::UnknownLimit, format!("no limit {key:?}")).into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Builds

/// `POST /builds` input: the name is decided by the handler (generated when absent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewBuild {
    pub id: u128,
    pub name: String,
    pub description: Option<String>,
    pub root_task_ids: Vec<String>,
    pub executor_metadata: Option<String>,
    pub user_id: Option<u128>,
}

/// Creates a running build (`build_started`), or returns the existing one of that id.
pub fn create_build(t: &Tables, env: u128, n: NewBuild, now: i64) -> V2Result<BuildRow> {
    let owner = t.v2_build_envs()?.get(n.id)?.map(|g| g.value());
    match owner {
        Some(e) if e == env => return the_build(t, env, n.id),
        Some(_) => {
            return Err(
                Refusal::new(Code::BuildIdConflict, "this build id is taken")
                    .with("build_id", uuid::Uuid::from_u128(n.id).to_string())
                    .into(),
            )
        }
        None => {}
    }
    let row = BuildRow {
        name: n.name,
        description: n.description,
        status: BuildStatus::Running,
        root_task_ids: n.root_task_ids,
        created_at: now,
        completed_at: None,
        last_active_at: now,
        is_resumed: false,
        executor_metadata: n.executor_metadata,
        error_message: None,
        reactive_app_name: None,
        reactive_tick_kwargs: None,
        wake: Wake::default(),
        active_plan: None,
        generations: 0,
        user_id: n.user_id,
    };
    save_build(t, env, n.id, None, &row)?;
    t.v2_build_envs()?.insert(n.id, env)?;
    append_event(t, env, NewEvent::build(EventType::BuildStarted, now, n.id))?;
    Ok(row)
}

/// A lifecycle transition of §5.2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum End {
    Complete { force: bool },
    Fail { error_message: Option<String> },
    Cancel,
    ExitEarly,
}

impl End {
    fn status(&self) -> BuildStatus {
        match self {
            End::Complete { .. } => BuildStatus::Completed,
            End::Fail { .. } => BuildStatus::Failed,
            End::Cancel => BuildStatus::Cancelled,
            End::ExitEarly => BuildStatus::ExitEarly,
        }
    }
}

/// `complete`, `fail`, `cancel`, `exit-early` (§6.1): idempotent by state; another
/// terminal status is recorded and refused `build_terminal`.
pub fn end(t: &Tables, env: u128, id: u128, end: End, now: i64) -> V2Result<Answer<BuildRow>> {
    let mut b = the_build(t, env, id)?;
    let target = end.status();
    let uuid = uuid::Uuid::from_u128(id).to_string();
    match rules::lifecycle(&uuid, b.status, target) {
        Lifecycle::Noop => return Ok(Ok(b)),
        Lifecycle::Terminal(refusal) => {
            let mut e = NewEvent::build(target.event(), now, id);
            e.applied = false;
            e.metadata = Some(r#"{"refused":"build_terminal"}"#.into());
            append_event(t, env, e)?;
            return Ok(Err(refusal));
        }
        Lifecycle::Apply => {}
    }
    let before = b.key();
    let (message, metadata) = match end {
        End::Complete { force } => match verify_complete(t, env, id, &mut b, force, now)? {
            Ok(outstanding) => (
                None,
                force.then(|| {
                    serde_json::json!({"force": true, "outstanding": outstanding}).to_string()
                }),
            ),
            Err(refusal) => return Ok(Err(refusal)),
        },
        End::Fail { error_message } => (error_message, None),
        End::Cancel | End::ExitEarly => (None, None),
    };
    let ending = Ending {
        status: target,
        error_message: message,
        metadata,
    };
    end_build(t, env, id, &mut b, ending, now)?;
    save_build(t, env, id, Some(before), &b)?;
    Ok(Ok(b))
}

/// `complete`'s check (§5.2): the active plan is sealed, its closure admitted, no root
/// excluded, every non-excluded member completed (unless `force`). Returns how many
/// were outstanding. A closure conflict fails the build (written) and refuses.
fn verify_complete(
    t: &Tables,
    env: u128,
    id: u128,
    b: &mut BuildRow,
    force: bool,
    now: i64,
) -> V2Result<Answer<usize>> {
    let active = match b.active_plan {
        Some(p) => plan(t, env, p)?.map(|row| (p, row)),
        None => None,
    };
    let Some((plan_id, p)) = active.filter(|(_, p)| p.sealed_at.is_some()) else {
        let mut r = Refusal::new(
            Code::PlanIncomplete,
            "the build's active plan is not sealed (force does not override this)",
        )
        .with("reason", "not_sealed");
        if let Some(p) = b.active_plan {
            r = r.with("plan_id", uuid::Uuid::from_u128(p).to_string());
        }
        return Err(r.into());
    };
    let graph = PlanGraph::load(t, env, plan_id)?;
    let closure = graph.closure(t, env)?;
    let scope = Scope {
        plan: plan_id,
        build: id,
        deployment: p.deployment,
        settings_hash: &p.settings_hash,
    };
    if !closure.conflicts.is_empty() {
        admit_closure(t, env, scope, &closure, now)?;
        let refusal =
            super::plans::fail_for_conflicts(t, env, id, b, plan_id, &closure.conflicts, now)?;
        return Ok(Err(refusal));
    }
    let excluded_roots: Vec<&str> = graph
        .members
        .iter()
        .filter(|(_, m)| m.is_root && m.excluded_reason.is_some())
        .map(|(t, _)| t.as_str())
        .collect();
    if !excluded_roots.is_empty() {
        return Err(Refusal::new(
            Code::PlanIncomplete,
            "a root is excluded: the request cannot be met (force does not override this)",
        )
        .with("reason", "root_excluded")
        .with("task_ids", named(&excluded_roots))
        .into());
    }
    let mut outstanding = Vec::new();
    let candidates = graph
        .members
        .iter()
        .filter(|(_, m)| m.excluded_reason.is_none())
        .map(|(t, _)| t.as_str())
        .chain(closure.admit.iter().map(|(t, _)| t.as_str()));
    for task_id in candidates {
        let done = task(t, env, task_id)?.is_some_and(|row| row.status == TaskStatus::Completed);
        if !done {
            outstanding.push(task_id.to_owned());
        }
    }
    outstanding.sort();
    if !outstanding.is_empty() && !force {
        let ids: Vec<&str> = outstanding.iter().map(String::as_str).collect();
        return Err(
            Refusal::new(Code::PlanIncomplete, "members are not completed")
                .with("reason", "members_incomplete")
                .with("task_ids", named(&ids))
                .with("count", outstanding.len())
                .into(),
        );
    }
    admit_closure(t, env, scope, &closure, now)?;
    Ok(Ok(outstanding.len()))
}

/// At most [`MAX_NAMED_TASKS`] ids, for a refusal body.
pub fn named(ids: &[&str]) -> Vec<String> {
    ids.iter()
        .take(MAX_NAMED_TASKS)
        .map(|s| s.to_string())
        .collect()
}

/// `POST /builds/{id}/resume` input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resume {
    pub deployment: Option<u128>,
    pub settings_hash: String,
    pub executor_metadata: Option<String>,
}

/// What a resume answers: the build, the plan of the caller's scope, whether it changed.
pub struct Resumed {
    pub build: BuildRow,
    pub plan: Option<(u128, PlanRow)>,
    pub changed: bool,
}

/// Resume (§6.1): back to running; with a deployment, the plan of that scope, which is
/// reactivated if it was superseded.
pub fn resume(t: &Tables, env: u128, id: u128, r: Resume, now: i64) -> V2Result<Resumed> {
    let mut b = the_build(t, env, id)?;
    let before = b.key();
    let mut changed = false;
    let mut scope_plan = None;
    if let Some(dep) = r.deployment {
        let found = t
            .v2_plan_scopes()?
            .get((env, id, dep, r.settings_hash.as_str()))?
            .map(|g| g.value());
        if let Some(plan_id) = found {
            let mut p = plan(t, env, plan_id)?.ok_or_else(|| corrupt("plan scope index"))?;
            if p.superseded_at.is_some() {
                check_reactivation(t, env, id, &p)?;
                if let Some(active_id) = b.active_plan {
                    if let Some(mut active) = plan(t, env, active_id)? {
                        active.superseded_at = Some(now);
                        save_plan(t, env, active_id, &active)?;
                    }
                }
                p.superseded_at = None;
                p.activated_at = Some(now);
                save_plan(t, env, plan_id, &p)?;
                b.active_plan = Some(plan_id);
                changed = true;
            }
            scope_plan = Some((plan_id, p));
        }
    }
    if b.status != BuildStatus::Running {
        b.status = BuildStatus::Running;
        b.completed_at = None;
        b.error_message = None;
        changed = true;
    }
    if let Some(meta) = r.executor_metadata {
        b.executor_metadata = Some(meta);
    }
    if changed {
        b.is_resumed = true;
        b.last_active_at = now;
        append_event(t, env, NewEvent::build(EventType::BuildResumed, now, id))?;
    }
    save_build(t, env, id, Some(before), &b)?;
    Ok(Resumed {
        build: b,
        plan: scope_plan,
        changed,
    })
}

/// A superseded plan comes back only under its app's current deployment, and not past
/// a later plan still waiting for its seal.
fn check_reactivation(t: &Tables, env: u128, build_id: u128, p: &PlanRow) -> V2Result<()> {
    let d = deployment(t, env, p.deployment)?.ok_or_else(|| corrupt("plan deployment"))?;
    if d.kind != DeploymentKind::Local
        && current_deployment(t, env, d.kind, &d.app_name)? != Some(p.deployment)
    {
        return Err(deployment_not_current(p.deployment).into());
    }
    let later: Vec<u128> = {
        let plans = t.v2_build_plans()?;
        let mut out = Vec::new();
        for entry in plans.range((env, build_id, p.generation + 1)..=(env, build_id, u64::MAX))? {
            out.push(entry?.1.value());
        }
        out
    };
    for other in later {
        if plan(t, env, other)?.is_some_and(|o| o.activated_at.is_none()) {
            return Err(Refusal::new(
                Code::PlanSuperseded,
                "a later plan of this build waits for its seal",
            )
            .with("plan_id", uuid::Uuid::from_u128(other).to_string())
            .into());
        }
    }
    Ok(())
}

pub fn deployment_not_current(dep: u128) -> Refusal {
    Refusal::new(
        Code::DeploymentNotCurrent,
        "the plan's deployment is no longer its app's current one",
    )
    .with("deployment_id", uuid::Uuid::from_u128(dep).to_string())
}

// ---------------------------------------------------------------------------------
// Reactive scheduling

/// `PUT /builds/{id}/reactive-meta`; a null `tick_kwargs` keeps the stored one.
pub fn set_reactive_meta(
    t: &Tables,
    env: u128,
    id: u128,
    app_name: String,
    tick_kwargs: Option<String>,
) -> V2Result<BuildRow> {
    let mut b = the_build(t, env, id)?;
    let before = b.key();
    b.reactive_app_name = Some(app_name);
    if tick_kwargs.is_some() {
        b.reactive_tick_kwargs = tick_kwargs;
    }
    save_build(t, env, id, Some(before), &b)?;
    Ok(b)
}

/// The notify answer: whether a tick is needed, and (POST) whether a scheduler is live.
pub struct Notified {
    pub needs_tick: bool,
    pub scheduler_live: Option<bool>,
}

/// `POST notify` (flag, maybe a hand-out) or `DELETE notify` (clear).
pub fn notify(t: &Tables, env: u128, id: u128, set: Option<bool>, now: i64) -> V2Result<Notified> {
    let mut b = the_build(t, env, id)?;
    let before = b.key();
    let answer = match set {
        Some(_) if b.status != BuildStatus::Running => {
            return Ok(Notified {
                needs_tick: false,
                scheduler_live: Some(false),
            })
        }
        Some(can_spawn) => Notified {
            scheduler_live: Some(b.wake.notify(can_spawn, now)),
            needs_tick: true,
        },
        None => {
            b.wake.needs_tick_at = None;
            Notified {
                needs_tick: false,
                scheduler_live: None,
            }
        }
    };
    save_build(t, env, id, Some(before), &b)?;
    Ok(answer)
}

/// `POST /builds/wake-candidates`: hands out up to `limit` flagged builds without a
/// live scheduler, oldest flag first, and stamps each (a drain).
pub fn wake_candidates(
    t: &Tables,
    env: u128,
    limit: usize,
    now: i64,
) -> V2Result<Vec<(u128, String)>> {
    let mut chosen: Vec<(i64, u128, BuildRow)> = Vec::new();
    for id in reactive_builds(t, env)? {
        let Some(b) = build(t, env, id)? else {
            continue;
        };
        if b.is_reactive_running() && b.wake.wakeable(now) {
            chosen.push((b.wake.needs_tick_at.unwrap_or(now), id, b));
        }
    }
    chosen.sort_by_key(|(at, id, _)| (*at, *id));
    chosen.truncate(limit);
    let mut out = Vec::with_capacity(chosen.len());
    for (_, id, mut b) in chosen {
        let before = b.key();
        b.wake.handed_out_at = Some(now);
        save_build(t, env, id, Some(before), &b)?;
        out.push((id, b.reactive_app_name.unwrap_or_default()));
    }
    Ok(out)
}

/// The running reactive builds of an environment.
pub fn reactive_builds(r: &impl Rows, env: u128) -> Result<Vec<u128>, StoreError> {
    let table = r.reactive()?;
    let mut out = Vec::new();
    for entry in table.range(super::env_bounds(env, |x| (x, 0u128)))? {
        out.push(entry?.0.value().1);
    }
    Ok(out)
}

/// A scheduler-lease call.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum LeaseOp {
    Acquire { ttl: i64 },
    Renew { ttl: i64 },
    Release,
}

pub fn lease(
    t: &Tables,
    env: u128,
    id: u128,
    owner: &str,
    op: LeaseOp,
    now: i64,
) -> V2Result<Lease> {
    let mut b = the_build(t, env, id)?;
    let before = b.key();
    let answer = match op {
        LeaseOp::Acquire { ttl } => b.wake.acquire(owner, ttl, now),
        LeaseOp::Renew { ttl } => b.wake.renew(owner, ttl, now),
        LeaseOp::Release => b.wake.release(owner, now),
    };
    save_build(t, env, id, Some(before), &b)?;
    Ok(answer)
}

/// `POST /builds/{id}/tick-summaries`: one row per delivery.
pub fn add_tick_summary(
    t: &Tables,
    env: u128,
    id: u128,
    outcome: String,
    summary: String,
    now: i64,
) -> V2Result<TickRow> {
    the_build(t, env, id)?;
    let seq = super::next_seq(t)?;
    let row = TickRow {
        id: timed_id(now, seq),
        outcome,
        summary,
        created_at: now,
    };
    put(&mut *t.v2_ticks()?, (env, id, seq), &row)?;
    Ok(row)
}

/// Reads a settings body by hash.
pub fn settings(r: &impl Rows, env: u128, hash: &str) -> Result<Option<String>, StoreError> {
    let table = r.settings()?;
    let found = table.get((env, hash))?.map(|g| g.value().to_owned());
    Ok(found)
}

/// Stores a settings body under its hash (first write wins: the hash names the body).
pub fn store_settings(t: &Tables, env: u128, hash: &str, body: &str) -> Result<(), StoreError> {
    let mut table = t.v2_settings()?;
    if table.get((env, hash))?.is_none() {
        table.insert((env, hash), body)?;
    }
    Ok(())
}
