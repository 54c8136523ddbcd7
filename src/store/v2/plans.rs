//! Plans (`v2-registry.md` §5.3, §6.2): create (lookup-or-create by scope), member
//! chunks, seal, the closure step's write, exclusion and skip-blocked (§6.5).

use redb::ReadableTable;
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lifecycle::{deployment_not_current, named, unknown_build};
use super::registration::{
    admit_closure, apply_chunk, check_chunk, Admission, ClosureConflict, Item, PlanGraph, Scope,
};
use super::schema::*;
use super::{
    append_event, build, current_deployment, deployment, end_build, member, move_task, plan,
    save_build, save_member, save_plan, task, Answer, Ending, NewEvent, V2Result,
};
use crate::domain::v2::rules::{self, MemberNode};
use crate::domain::v2::{
    BuildStatus, Code, DeploymentKind, EventType, ExcludedReason, Refusal, TaskStatus,
};
use crate::store::tables::Tables;
use crate::store::StoreError;

pub fn unknown_plan(id: u128) -> Refusal {
    Refusal::new(
        Code::UnknownPlan,
        format!("no plan {}", uuid::Uuid::from_u128(id)),
    )
    .with("plan_id", uuid::Uuid::from_u128(id).to_string())
}

pub fn not_a_member(plan: u128, task_id: &str) -> Refusal {
    Refusal::new(
        Code::NotAMember,
        format!(
            "task {task_id} is not a member of plan {}",
            uuid::Uuid::from_u128(plan)
        ),
    )
    .with("task_id", task_id)
    .with("plan_id", uuid::Uuid::from_u128(plan).to_string())
}

pub(crate) fn the_plan(r: &impl Rows, env: u128, id: u128) -> V2Result<PlanRow> {
    Ok(plan(r, env, id)?.ok_or_else(|| unknown_plan(id))?)
}

fn scope(id: u128, p: &PlanRow) -> Scope<'_> {
    Scope {
        plan: id,
        build: p.build,
        deployment: p.deployment,
        settings_hash: &p.settings_hash,
    }
}

/// `POST /builds/{id}/plans` input; `settings` is the posted object as JSON text,
/// checked here so the refusal order of §5.3 holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewPlan {
    pub plan_id: u128,
    pub deployment: u128,
    pub settings: String,
    pub roots: Vec<Item>,
}

/// Creates the plan of (build, deployment, settings), or finds it (its roots are
/// registered again). Returns its id, row, and whether it was created.
pub fn create_plan(
    t: &Tables,
    env: u128,
    build_id: u128,
    n: NewPlan,
    now: i64,
) -> V2Result<(u128, PlanRow, bool)> {
    if n.roots.is_empty() {
        return Err(Refusal::new(Code::NoRoots, "a plan needs its roots").into());
    }
    if n.roots.iter().any(|r| r.declared_upstreams.is_some()) {
        return Err(Refusal::new(
            Code::RootDeclaredUpstreams,
            "roots are registered unexpanded (declared_upstreams null)",
        )
        .into());
    }
    let mut b = build(t, env, build_id)?.ok_or_else(|| unknown_build(build_id))?;
    let posted: HashSet<&str> = n.roots.iter().map(|r| r.task_id.as_str()).collect();
    let wanted: HashSet<&str> = b.root_task_ids.iter().map(String::as_str).collect();
    if posted != wanted {
        return Err(Refusal::new(
            Code::RootMismatch,
            "the roots are not the build's root_task_ids",
        )
        .into());
    }
    let d = deployment(t, env, n.deployment)?.ok_or_else(|| {
        Refusal::new(Code::UnknownDeployment, "no such deployment").with_status(400)
    })?;
    if d.activated_at.is_none() {
        return Err(Refusal::new(
            Code::DeploymentNotActivated,
            "the deployment is not activated",
        )
        .into());
    }
    let settings = match serde_json::from_str::<Value>(&n.settings) {
        Ok(Value::Object(m)) => rules::check_settings(&m)?,
        _ => return Err(Refusal::new(Code::InvalidSettings, "settings must be an object").into()),
    };
    let settings_hash = rules::settings_hash(&settings);
    let existing = t
        .v2_plan_scopes()?
        .get((env, build_id, n.deployment, settings_hash.as_str()))?
        .map(|g| g.value());
    if let Some(plan_id) = existing {
        let p = the_plan(t, env, plan_id)?;
        check_root_instances(t, env, plan_id, &n.roots)?;
        let checked = check_chunk(t, env, scope(plan_id, &p), &n.roots, Admission::Roots, now)?;
        apply_chunk(t, env, scope(plan_id, &p), checked, now)?;
        return Ok((plan_id, p, false));
    }
    if plan(t, env, n.plan_id)?.is_some() {
        return Err(Refusal::new(Code::PlanIdConflict, "this plan id is taken").into());
    }
    let generation = b.generations + 1;
    let p = PlanRow {
        build: build_id,
        deployment: n.deployment,
        settings_hash: settings_hash.clone(),
        generation,
        created_at: now,
        activated_at: (generation == 1).then_some(now),
        sealed_at: None,
        superseded_at: None,
    };
    let checked = check_chunk(
        t,
        env,
        scope(n.plan_id, &p),
        &n.roots,
        Admission::Roots,
        now,
    )?;
    super::lifecycle::store_settings(t, env, &settings_hash, &rules::settings_json(&settings))?;
    save_plan(t, env, n.plan_id, &p)?;
    t.v2_build_plans()?
        .insert((env, build_id, generation), n.plan_id)?;
    t.v2_plan_scopes()?.insert(
        (env, build_id, n.deployment, settings_hash.as_str()),
        n.plan_id,
    )?;
    let before = b.key();
    b.generations = generation;
    if generation == 1 {
        b.active_plan = Some(n.plan_id);
    }
    save_build(t, env, build_id, Some(before), &b)?;
    apply_chunk(t, env, scope(n.plan_id, &p), checked, now)?;
    Ok((n.plan_id, p, true))
}

/// The roots posted to an existing plan must be the ones it recorded.
fn check_root_instances(t: &Tables, env: u128, plan_id: u128, roots: &[Item]) -> V2Result<()> {
    let mut recorded = HashSet::new();
    for (_, m) in super::members(t, env, plan_id)? {
        if m.is_root {
            if let Some(head) = super::instance_head(t, env, m.instance)? {
                recorded.insert(head.instance_hash);
            }
        }
    }
    let posted: HashSet<String> = roots.iter().map(|r| r.instance_hash.clone()).collect();
    if recorded != posted {
        return Err(Refusal::new(
            Code::RootInstanceConflict,
            "this scope's plan holds other root instances: start a new build",
        )
        .into());
    }
    Ok(())
}

/// `POST /plans/{id}/members`: one chunk, all or nothing.
pub fn register_members(
    t: &Tables,
    env: u128,
    plan_id: u128,
    items: Vec<Item>,
    now: i64,
) -> V2Result<MembersCounts> {
    let p = the_plan(t, env, plan_id)?;
    let checked = check_chunk(t, env, scope(plan_id, &p), &items, Admission::Members, now)?;
    Ok(apply_chunk(t, env, scope(plan_id, &p), checked, now)?)
}

/// `POST /plans/{id}/seal` (§5.3): the closure step, the roots check, the deployment
/// check, then sealed (and activated, superseding the active plan, if it was not).
pub fn seal(t: &Tables, env: u128, plan_id: u128, now: i64) -> V2Result<Answer<PlanRow>> {
    let mut p = the_plan(t, env, plan_id)?;
    if p.sealed_at.is_some() {
        return Ok(Ok(p));
    }
    let mut b = build(t, env, p.build)?.ok_or_else(|| unknown_build(p.build))?;
    let graph = PlanGraph::load(t, env, plan_id)?;
    let closure = graph.closure(t, env)?;
    if !closure.conflicts.is_empty() {
        admit_closure(t, env, scope(plan_id, &p), &closure, now)?;
        let refusal =
            fail_for_conflicts(t, env, p.build, &mut b, plan_id, &closure.conflicts, now)?;
        return Ok(Err(refusal));
    }
    let mut unexpanded = Vec::new();
    for (task_id, m) in graph.members.iter().filter(|(_, m)| m.is_root) {
        let expanded = m.expanded;
        let completed = task(t, env, task_id)?.is_some_and(|r| r.status == TaskStatus::Completed);
        if !expanded && !completed {
            unexpanded.push(task_id.as_str());
        }
    }
    if !unexpanded.is_empty() {
        return Err(Refusal::new(
            Code::PlanIncompleteRegistration,
            "roots are neither expanded nor completed",
        )
        .with("reason", "roots_unexpanded")
        .with("task_ids", named(&unexpanded))
        .into());
    }
    let d = deployment(t, env, p.deployment)?
        .ok_or_else(|| Refusal::new(Code::UnknownDeployment, "no such deployment"))?;
    if d.kind != DeploymentKind::Local
        && current_deployment(t, env, d.kind, &d.app_name)? != Some(p.deployment)
    {
        return Err(deployment_not_current(p.deployment).into());
    }
    if b.generations > p.generation {
        return Err(Refusal::new(
            Code::PlanSuperseded,
            "a later plan of this build exists; the latest request wins",
        )
        .with("plan_id", uuid::Uuid::from_u128(plan_id).to_string())
        .into());
    }
    admit_closure(t, env, scope(plan_id, &p), &closure, now)?;
    p.sealed_at = Some(now);
    if p.activated_at.is_none() {
        if let Some(active_id) = b.active_plan.filter(|a| *a != plan_id) {
            if let Some(mut active) = plan(t, env, active_id)? {
                active.superseded_at = Some(now);
                save_plan(t, env, active_id, &active)?;
            }
        }
        p.activated_at = Some(now);
        let before = b.key();
        b.active_plan = Some(plan_id);
        save_build(t, env, p.build, Some(before), &b)?;
    }
    save_plan(t, env, plan_id, &p)?;
    Ok(Ok(p))
}

/// What the closure step did (the frontier's `closure`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClosureOutcome {
    pub admitted: u64,
    pub conflicts: Vec<ClosureConflict>,
    pub build_failed: bool,
}

/// The closure step of a frontier read, as a write: admits what it reaches; a conflict
/// fails the build (once).
pub fn close(t: &Tables, env: u128, build_id: u128, now: i64) -> V2Result<ClosureOutcome> {
    let mut b = build(t, env, build_id)?.ok_or_else(|| unknown_build(build_id))?;
    let Some(plan_id) = b.active_plan else {
        return Ok(ClosureOutcome::default());
    };
    let p = the_plan(t, env, plan_id)?;
    let graph = PlanGraph::load(t, env, plan_id)?;
    let closure = graph.closure(t, env)?;
    let admitted = admit_closure(t, env, scope(plan_id, &p), &closure, now)?;
    if !closure.conflicts.is_empty() {
        fail_for_conflicts(t, env, build_id, &mut b, plan_id, &closure.conflicts, now)?;
    }
    Ok(ClosureOutcome {
        admitted,
        build_failed: !closure.conflicts.is_empty() && b.status == BuildStatus::Failed,
        conflicts: closure.conflicts,
    })
}

/// Fails the build over closure conflicts (unless it already ended) and returns the
/// `instance_conflict` refusal naming the first.
pub(crate) fn fail_for_conflicts(
    t: &Tables,
    env: u128,
    build_id: u128,
    b: &mut BuildRow,
    plan_id: u128,
    conflicts: &[ClosureConflict],
    now: i64,
) -> Result<Refusal, StoreError> {
    if !b.status.is_terminal() {
        let message = format!(
            "instance_conflict: {}",
            conflicts
                .iter()
                .map(|c| format!(
                    "plan {} holds instance {} of task {}, and an edge reaches instance {} (fields that differ: {})",
                    uuid::Uuid::from_u128(plan_id),
                    uuid::Uuid::from_u128(c.member_instance),
                    c.task_id,
                    uuid::Uuid::from_u128(c.other_instance),
                    if c.fields.is_empty() { "-".into() } else { c.fields.join(", ") },
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let metadata = serde_json::json!({
            "reason": "instance_conflict",
            "plan_id": uuid::Uuid::from_u128(plan_id).to_string(),
        })
        .to_string();
        let before = b.key();
        let ending = Ending {
            status: BuildStatus::Failed,
            error_message: Some(message),
            metadata: Some(metadata),
        };
        end_build(t, env, build_id, b, ending, now)?;
        save_build(t, env, build_id, Some(before), b)?;
    }
    let first = &conflicts[0];
    Ok(Refusal::new(
        Code::InstanceConflict,
        format!("the plan holds another instance of task {}", first.task_id),
    )
    .with("task_id", first.task_id.clone())
    .with("fields", first.fields.clone())
    .with("build_failed", b.status == BuildStatus::Failed))
}

/// What an exclusion did (ExclusionResult).
#[derive(Debug, Clone, Default)]
pub struct Excluded {
    pub excluded: Vec<String>,
    pub roots_excluded: Vec<String>,
    pub build_failed: bool,
}

/// `exclude` / `discovery-failed` (§6.5): the member and its downstream cascade; an
/// excluded root fails the build. Already excluded: an empty answer, nothing written.
pub fn exclude(
    t: &Tables,
    env: u128,
    plan_id: u128,
    task_id: &str,
    reason: ExcludedReason,
    message: Option<String>,
    now: i64,
) -> V2Result<Excluded> {
    let p = the_plan(t, env, plan_id)?;
    let m = member(t, env, plan_id, task_id)?.ok_or_else(|| not_a_member(plan_id, task_id))?;
    if m.excluded_reason.is_some() {
        return Ok(Excluded::default());
    }
    let graph = PlanGraph::load(t, env, plan_id)?;
    let mut nodes = Vec::with_capacity(graph.members.len());
    let mut roots = HashSet::new();
    for (id, m) in &graph.members {
        let status = task(t, env, id)?.map_or(TaskStatus::Pending, |r| r.status);
        let upstreams = m.upstreams.iter().map(|e| e.instance).collect();
        if m.is_root {
            roots.insert(id.as_str());
        }
        nodes.push(MemberNode {
            task_id: id.clone(),
            instance: m.instance,
            upstreams,
            status,
            excluded: m.excluded_reason.is_some(),
        });
    }
    let excluded = rules::exclusion_cascade(&nodes, task_id);
    let by_task: HashMap<&str, &MemberRow> =
        graph.members.iter().map(|(t, m)| (t.as_str(), m)).collect();
    for (i, id) in excluded.iter().enumerate() {
        let Some(row) = by_task.get(id.as_str()) else {
            continue;
        };
        let mut row = (*row).clone();
        row.excluded_reason = Some(if i == 0 {
            reason
        } else {
            ExcludedReason::UpstreamExcluded
        });
        row.excluded_at = Some(now);
        save_member(t, env, (p.build, plan_id), id, &row, false)?;
        let mut e = NewEvent::task(EventType::TaskExcluded, now, id, plan_id, p.build);
        e.error_message = if i == 0 { message.clone() } else { None };
        e.metadata = Some(
            serde_json::json!({"reason": row.excluded_reason.map(|r| r.as_str())}).to_string(),
        );
        append_event(t, env, e)?;
    }
    let mut roots_excluded: Vec<String> = excluded
        .iter()
        .filter(|t| roots.contains(t.as_str()))
        .cloned()
        .collect();
    roots_excluded.sort();
    let mut build_failed = false;
    if !roots_excluded.is_empty() {
        let mut b = build(t, env, p.build)?.ok_or_else(|| unknown_build(p.build))?;
        if !b.status.is_terminal() {
            let before = b.key();
            let text = format!(
                "a root was excluded: {}",
                message.as_deref().unwrap_or("excluded")
            );
            let ending = Ending {
                error_message: Some(text),
                ..Ending::new(BuildStatus::Failed)
            };
            end_build(t, env, p.build, &mut b, ending, now)?;
            save_build(t, env, p.build, Some(before), &b)?;
            build_failed = true;
        }
    }
    Ok(Excluded {
        excluded,
        roots_excluded,
        build_failed,
    })
}

/// `POST /builds/{id}/skip-blocked`: members of the active plan waiting on a failed,
/// cancelled or skipped upstream become skipped. Returns them and the plan.
pub fn skip_blocked(
    t: &Tables,
    env: u128,
    build_id: u128,
    now: i64,
) -> V2Result<(Vec<String>, Option<u128>)> {
    let b = build(t, env, build_id)?.ok_or_else(|| unknown_build(build_id))?;
    if matches!(b.status, BuildStatus::Cancelled | BuildStatus::Completed) {
        return Ok((Vec::new(), b.active_plan));
    }
    let Some(plan_id) = b.active_plan else {
        return Ok((Vec::new(), None));
    };
    let graph = PlanGraph::load(t, env, plan_id)?;
    let mut statuses: HashMap<String, TaskStatus> = HashMap::new();
    let mut upstream_tasks: HashMap<String, Vec<String>> = HashMap::new();
    let mut ids = Vec::with_capacity(graph.members.len());
    for (id, m) in &graph.members {
        ids.push(id.clone());
        let ups: Vec<String> = m.upstreams.iter().map(|e| e.task_id.clone()).collect();
        for u in ups.iter().chain(std::iter::once(id)) {
            if !statuses.contains_key(u) {
                if let Some(row) = task(t, env, u)? {
                    statuses.insert(u.clone(), row.status);
                }
            }
        }
        upstream_tasks.insert(id.clone(), ups);
    }
    let skipped = rules::skip_blocked(&ids, &upstream_tasks, &mut statuses);
    for id in &skipped {
        let Some(mut row) = task(t, env, id)? else {
            continue;
        };
        let before = row.key();
        move_task(
            t,
            env,
            id,
            &mut row,
            TaskStatus::Skipped,
            now,
            Some(build_id),
        )?;
        super::save_task(t, env, id, Some(before), &row)?;
        append_event(
            t,
            env,
            NewEvent::task(EventType::TaskSkipped, now, id, plan_id, build_id),
        )?;
    }
    Ok((skipped, Some(plan_id)))
}
