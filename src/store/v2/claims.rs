//! The member transitions (`v2-registry.md` §5.4, §5.5, §6.5): claiming and
//! non-claiming starts, execution reports, preemption, yields, retry, skip, cancel,
//! claim renewal, stopped executions and artifacts. The decisions are the pure rules
//! of `domain::v2::rules`; this module gathers their facts and writes the outcome.

use redb::ReadableTable;
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::plans::{not_a_member, the_plan};
use super::registration::{apply_chunk, check_chunk, Admission, Item, Scope};
use super::schema::*;
use super::{
    append_event, clear_claim, close_claim, execution, instance, member, move_task, put,
    save_execution, save_instance, save_task, task, task_state, touch_build, Answer, NewEvent,
    V2Result,
};
use crate::domain::v2::rules::{self, ExecFacts, ReportDecision, Reset, StartDecision, StartFacts};
use crate::domain::v2::{
    ClaimOutcome, Code, EventType, ExecOutcome, Refusal, Report, TaskStatus, PREEMPT_GRACE,
};
use crate::store::tables::Tables;
use crate::store::StoreError;

/// The answer of a transition (TransitionResult): the task as the call left it.
#[derive(Debug, Clone)]
pub struct Transition {
    pub applied: bool,
    pub status: TaskStatus,
    pub execution: Option<u128>,
    pub claim_expires_at: Option<i64>,
}

impl Transition {
    fn of(task: &TaskRow, applied: bool) -> Transition {
        Transition {
            applied,
            status: task.status,
            execution: task.execution,
            claim_expires_at: task.claim_expires_at,
        }
    }
}

pub fn unknown_task(task_id: &str) -> Refusal {
    Refusal::new(Code::UnknownTask, format!("no task {task_id}")).with("task_id", task_id)
}

fn id_str(id: u128) -> String {
    uuid::Uuid::from_u128(id).to_string()
}

/// The plan, the member and its task of a member action (404s in §5.4's order).
fn resolve(
    t: &Tables,
    env: u128,
    plan_id: u128,
    task_id: &str,
) -> V2Result<(PlanRow, MemberRow, TaskRow)> {
    let p = the_plan(t, env, plan_id)?;
    let m = member(t, env, plan_id, task_id)?.ok_or_else(|| not_a_member(plan_id, task_id))?;
    let row = task(t, env, task_id)?.ok_or_else(|| unknown_task(task_id))?;
    Ok((p, m, row))
}

/// `start` input (§5.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Start {
    pub plan: u128,
    pub task_id: String,
    pub execution: u128,
    pub claim: bool,
    pub ttl_seconds: Option<i64>,
    pub executor: Option<String>,
    pub executor_ref: Option<String>,
    pub executor_metadata: Option<String>,
    /// Sorted, unique.
    pub limit_keys: Vec<String>,
}

pub fn start(t: &Tables, env: u128, s: Start, now: i64) -> V2Result<Answer<Transition>> {
    let (p, m, mut row) = resolve(t, env, s.plan, &s.task_id)?;
    if !s.claim {
        return report_running(t, env, &p, s, row, now);
    }
    let facts = start_facts(t, env, &s, &p, &m, &row, now)?;
    let (ttl, take_over) = match rules::start(&facts) {
        StartDecision::AlreadyHeld => return Ok(Ok(Transition::of(&row, false))),
        StartDecision::Refuse(r) => return Err(r.into()),
        StartDecision::RefuseKeepingKeys(r) => {
            if row.limit_keys != s.limit_keys {
                let before = row.key();
                row.limit_keys = s.limit_keys;
                save_task(t, env, &s.task_id, Some(before), &row)?;
            }
            return Ok(Err(r));
        }
        StartDecision::Grant { ttl, take_over } => (ttl, take_over),
    };
    let before = row.key();
    if take_over {
        close_claim(t, env, &s.task_id, &mut row, ClaimOutcome::TakenOver, now)?;
    }
    let exec = ExecutionRow {
        task_id: s.task_id.clone(),
        plan: s.plan,
        build: p.build,
        instance: m.instance,
        started_at: now,
        executor: s.executor,
        executor_ref: s.executor_ref,
        executor_metadata: s.executor_metadata,
        claim_released_at: None,
        claim_outcome: None,
        ended_at: None,
        outcome: None,
    };
    save_execution(t, env, s.execution, &exec)?;
    t.v2_tasks()?.insert(
        Part::Execution.key(env, &s.task_id, now, s.execution),
        NO_VALUE,
    )?;
    t.v2_build_executions()?
        .insert((env, p.build, s.task_id.as_str(), s.execution), ())?;
    {
        let mut holders = t.v2_limit_holders()?;
        for key in &s.limit_keys {
            holders.insert((env, key.as_str(), s.task_id.as_str()), ())?;
        }
    }
    row.claim_plan = Some(s.plan);
    row.claim_build = Some(p.build);
    row.execution = Some(s.execution);
    row.claim_expires_at = Some(now + ttl);
    row.error_message = None;
    row.preempted_at = None;
    row.limit_keys = s.limit_keys;
    move_task(
        t,
        env,
        &s.task_id,
        &mut row,
        TaskStatus::Running,
        now,
        Some(p.build),
    )?;
    save_task(t, env, &s.task_id, Some(before), &row)?;
    let mut e = NewEvent::task(EventType::TaskStarted, now, &s.task_id, s.plan, p.build);
    e.execution = Some(s.execution);
    append_event(t, env, e)?;
    touch_build(t, env, p.build, now)?;
    Ok(Ok(Transition::of(&row, true)))
}

fn start_facts(
    t: &Tables,
    env: u128,
    s: &Start,
    p: &PlanRow,
    m: &MemberRow,
    row: &TaskRow,
    now: i64,
) -> Result<StartFacts, StoreError> {
    let live = row.live(now);
    let mut incomplete = Vec::new();
    for e in &m.upstreams {
        let done =
            task_state(t, env, &e.task_id)?.is_some_and(|u| u.status == TaskStatus::Completed);
        if !done && !incomplete.contains(&e.task_id) {
            incomplete.push(e.task_id.clone());
        }
    }
    incomplete.sort();
    Ok(StartFacts {
        task_id: s.task_id.clone(),
        execution_id: id_str(s.execution),
        plan_id: id_str(s.plan),
        build_id: id_str(p.build),
        status: Some(row.status),
        live,
        same_execution: row.execution == Some(s.execution),
        execution_known: execution(t, env, s.execution)?.is_some(),
        plan_active: p.active(),
        build_status: super::build_state(t, env, p.build)?.map(|b| b.status),
        member_excluded: m.excluded_reason.is_some(),
        instance_expanded: m.expanded,
        incomplete_upstreams: incomplete,
        full_keys: full_keys(t, env, &s.limit_keys, now)?,
        ttl_seconds: s.ttl_seconds,
    })
}

/// The requested keys whose limit already has `max_concurrent` live holders.
fn full_keys(t: &Tables, env: u128, keys: &[String], now: i64) -> Result<Vec<String>, StoreError> {
    let mut full = Vec::new();
    for key in keys {
        let limit = t.v2_limits()?.get((env, key.as_str()))?.map(|g| g.value());
        let Some(max) = limit else { continue };
        if live_holders(t, env, key, now)?.len() as u64 >= max {
            full.push(key.clone());
        }
    }
    Ok(full)
}

/// The tasks holding a live claim under `key`.
pub fn live_holders(
    r: &impl Rows,
    env: u128,
    key: &str,
    now: i64,
) -> Result<Vec<(String, TaskRow)>, StoreError> {
    let ids: Vec<String> = {
        let table = r.limit_holders()?;
        let mut out = Vec::new();
        for entry in table.range((env, key, "")..=(env, key, "\u{10FFFF}\u{10FFFF}"))? {
            out.push(entry?.0.value().2.to_owned());
        }
        out
    };
    let mut out = Vec::new();
    for id in ids {
        if let Some(row) = task(r, env, &id)? {
            if row.live(now) {
                out.push((id, row));
            }
        }
    }
    Ok(out)
}

/// A non-claiming start: the claim holder's "I run" report (Modal workers).
fn report_running(
    t: &Tables,
    env: u128,
    p: &PlanRow,
    s: Start,
    mut row: TaskRow,
    now: i64,
) -> V2Result<Answer<Transition>> {
    let mut exec = execution(t, env, s.execution)?
        .filter(|e| e.task_id == s.task_id)
        .ok_or_else(|| unknown_execution(s.execution))?;
    if row.execution != Some(s.execution)
        || exec.claim_released_at.is_some()
        || exec.ended_at.is_some()
    {
        let mut e = NewEvent::task(EventType::TaskStarted, now, &s.task_id, s.plan, p.build);
        e.execution = Some(s.execution);
        e.applied = false;
        append_event(t, env, e)?;
        return Ok(Err(
            rules::execution_not_current().with("execution_id", id_str(s.execution))
        ));
    }
    if row.claim_plan != Some(s.plan) {
        return Err(rules::not_claim_holder().into());
    }
    let before = row.key();
    if row.preempted_at.is_some() {
        let ttl = rules::claim_ttl(s.ttl_seconds)?;
        row.claim_expires_at = Some(now + ttl);
        row.preempted_at = None;
    }
    exec.executor = s.executor.or(exec.executor);
    exec.executor_ref = s.executor_ref.or(exec.executor_ref);
    exec.executor_metadata = s.executor_metadata.or(exec.executor_metadata);
    save_execution(t, env, s.execution, &exec)?;
    save_task(t, env, &s.task_id, Some(before), &row)?;
    let mut e = NewEvent::task(EventType::TaskStarted, now, &s.task_id, s.plan, p.build);
    e.execution = Some(s.execution);
    append_event(t, env, e)?;
    Ok(Ok(Transition::of(&row, true)))
}

pub fn unknown_execution(id: u128) -> Refusal {
    Refusal::new(Code::UnknownExecution, "no such execution of this task")
        .with("execution_id", id_str(id))
}

/// `complete` / `fail` / `interrupt` input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportIn {
    pub plan: u128,
    pub task_id: String,
    pub execution: u128,
    pub report: Report,
    pub error_message: Option<String>,
}

/// An execution report (§5.4 report rules): a late one records its end and is refused.
pub fn report(t: &Tables, env: u128, r: ReportIn, now: i64) -> V2Result<Answer<Transition>> {
    let (p, _, row) = resolve(t, env, r.plan, &r.task_id)?;
    apply_report(t, env, &p, r, row, now)
}

fn apply_report(
    t: &Tables,
    env: u128,
    p: &PlanRow,
    r: ReportIn,
    mut row: TaskRow,
    now: i64,
) -> V2Result<Answer<Transition>> {
    let exec = execution(t, env, r.execution)?;
    let facts = exec.as_ref().map(|e| ExecFacts {
        of_task: e.task_id == r.task_id,
        ended: e.ended_at.is_some(),
        claim_released: e.claim_released_at.is_some(),
    });
    let is_current = row.execution == Some(r.execution);
    let decision = rules::report(
        &id_str(r.execution),
        facts,
        is_current,
        row.claim_plan == Some(r.plan),
    );
    let mut event = NewEvent::task(r.report.event(), now, &r.task_id, r.plan, p.build);
    event.execution = Some(r.execution);
    event.error_message = r.error_message.clone();
    match decision {
        ReportDecision::Refuse(refusal) => Err(refusal.into()),
        ReportDecision::AlreadyEnded => {
            let outcome = exec.and_then(|e| e.outcome).map(|o| o.as_str());
            event.applied = false;
            append_event(t, env, event)?;
            Ok(Err(Refusal::new(
                Code::ExecutionAlreadyEnded,
                "the execution already ended",
            )
            .with("execution_id", id_str(r.execution))
            .with("outcome", outcome)))
        }
        ReportDecision::Late => {
            if let Some(mut e) = exec {
                if e.end(r.report.exec_outcome(), now) {
                    save_execution(t, env, r.execution, &e)?;
                }
            }
            event.applied = false;
            append_event(t, env, event)?;
            Ok(Err(
                rules::execution_not_current().with("execution_id", id_str(r.execution))
            ))
        }
        ReportDecision::Apply => {
            // One write of the ledger row: its end and its claim's.
            if let Some(mut e) = exec {
                e.end(r.report.exec_outcome(), now);
                e.release_claim(r.report.claim_outcome(), now);
                save_execution(t, env, r.execution, &e)?;
            }
            let before = row.key();
            clear_claim(t, env, &r.task_id, &mut row)?;
            move_task(
                t,
                env,
                &r.task_id,
                &mut row,
                r.report.status(),
                now,
                Some(p.build),
            )?;
            match r.report {
                Report::Complete => {
                    row.completed_at = Some(now);
                    row.error_message = None;
                }
                Report::Fail | Report::Interrupt => row.error_message = r.error_message,
                Report::Suspend => {}
            }
            save_task(t, env, &r.task_id, Some(before), &row)?;
            append_event(t, env, event)?;
            touch_build(t, env, p.build, now)?;
            Ok(Ok(Transition::of(&row, true)))
        }
    }
}

/// Writes an execution's own end, if it has none yet.
fn end_execution(
    t: &Tables,
    env: u128,
    id: u128,
    outcome: ExecOutcome,
    now: i64,
) -> Result<(), StoreError> {
    if let Some(mut e) = execution(t, env, id)? {
        if e.end(outcome, now) {
            save_execution(t, env, id, &e)?;
        }
    }
    Ok(())
}

/// `preempt`: the claim stays live for the restart's grace (§5.4).
pub fn preempt(
    t: &Tables,
    env: u128,
    plan_id: u128,
    task_id: &str,
    exec: u128,
    now: i64,
) -> V2Result<Transition> {
    let (_, _, mut row) = resolve(t, env, plan_id, task_id)?;
    if row.execution != Some(exec) || !row.live(now) {
        return Err(rules::execution_not_current()
            .with("execution_id", id_str(exec))
            .into());
    }
    if row.claim_plan != Some(plan_id) {
        return Err(rules::not_claim_holder().into());
    }
    let before = row.key();
    row.claim_expires_at = row.claim_expires_at.map(|at| at.min(now + PREEMPT_GRACE));
    row.preempted_at = Some(now);
    save_task(t, env, task_id, Some(before), &row)?;
    Ok(Transition::of(&row, true))
}

/// `retry` / `skip` / `cancel` of a member.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum MemberAction {
    Retry,
    Skip,
    Cancel,
}

pub fn member_action(
    t: &Tables,
    env: u128,
    plan_id: u128,
    task_id: &str,
    action: MemberAction,
    now: i64,
) -> V2Result<Transition> {
    let (p, _, mut row) = resolve(t, env, plan_id, task_id)?;
    let live = row.live(now);
    let before = row.key();
    let (status, event, close) = match action {
        MemberAction::Cancel => {
            if !live {
                return Ok(Transition::of(&row, false));
            }
            let holder_build = row.claim_build;
            if holder_build != Some(p.build) {
                return Err(rules::not_claim_holder().into());
            }
            (
                TaskStatus::Cancelled,
                EventType::TaskCancelled,
                Some(ClaimOutcome::Cancelled),
            )
        }
        MemberAction::Retry | MemberAction::Skip => {
            let (decision, status, event) = match action {
                MemberAction::Retry => (
                    rules::retry(task_id, row.status, live),
                    TaskStatus::Pending,
                    EventType::TaskRetried,
                ),
                _ => (
                    rules::skip(task_id, row.status, live),
                    TaskStatus::Skipped,
                    EventType::TaskSkipped,
                ),
            };
            match decision {
                Reset::NotApplied => return Ok(Transition::of(&row, false)),
                Reset::Refuse(r) => return Err(r.into()),
                Reset::Apply { close_lapsed } => {
                    (status, event, close_lapsed.then_some(ClaimOutcome::Lapsed))
                }
            }
        }
    };
    let exec = row.execution;
    let claim_plan = row.claim_plan;
    if let Some(outcome) = close {
        close_claim(t, env, task_id, &mut row, outcome, now)?;
    }
    move_task(t, env, task_id, &mut row, status, now, None)?;
    if status == TaskStatus::Pending {
        row.error_message = None;
    }
    save_task(t, env, task_id, Some(before), &row)?;
    let mut e = NewEvent::task(event, now, task_id, plan_id, p.build);
    if close.is_some() {
        e.execution = exec;
        e.plan = claim_plan.or(Some(plan_id));
    }
    append_event(t, env, e)?;
    Ok(Transition::of(&row, true))
}

/// `POST /tasks/{id}/claim/renew` (§5.5).
pub fn renew(
    t: &Tables,
    env: u128,
    task_id: &str,
    exec: u128,
    ttl_seconds: Option<i64>,
    now: i64,
) -> V2Result<Transition> {
    let mut row = task(t, env, task_id)?.ok_or_else(|| unknown_task(task_id))?;
    if row.execution != Some(exec) || !row.live(now) {
        let outcome = execution(t, env, exec)?
            .and_then(|e| e.claim_outcome)
            .map(|o| o.as_str());
        return Err(Refusal::new(
            Code::ClaimNotHeld,
            "the execution does not hold a live claim",
        )
        .with("claim_outcome", outcome)
        .into());
    }
    let ttl = rules::claim_ttl(ttl_seconds)?;
    let before = row.key();
    row.claim_expires_at = Some(now + ttl);
    row.preempted_at = None;
    save_task(t, env, task_id, Some(before), &row)?;
    Ok(Transition::of(&row, true))
}

/// `POST /executions/{id}/stopped` (§5.5): ends the execution; its open claim on a
/// running task is cancelled.
pub fn stopped(
    t: &Tables,
    env: u128,
    exec_id: u128,
    outcome: ExecOutcome,
    now: i64,
) -> V2Result<Transition> {
    let exec =
        execution(t, env, exec_id)?.ok_or_else(|| unknown_execution(exec_id).with_status(404))?;
    let mut row = task(t, env, &exec.task_id)?.ok_or_else(|| unknown_task(&exec.task_id))?;
    end_execution(t, env, exec_id, outcome, now)?;
    if row.execution == Some(exec_id)
        && exec.claim_released_at.is_none()
        && row.status == TaskStatus::Running
    {
        let before = row.key();
        let plan = row.claim_plan;
        close_claim(
            t,
            env,
            &exec.task_id,
            &mut row,
            ClaimOutcome::Cancelled,
            now,
        )?;
        move_task(
            t,
            env,
            &exec.task_id,
            &mut row,
            TaskStatus::Cancelled,
            now,
            None,
        )?;
        save_task(t, env, &exec.task_id, Some(before), &row)?;
        let mut e = NewEvent::task(
            EventType::TaskCancelled,
            now,
            &exec.task_id,
            plan.unwrap_or(exec.plan),
            exec.build,
        );
        e.execution = Some(exec_id);
        append_event(t, env, e)?;
    }
    Ok(Transition::of(&row, true))
}

/// `yield` input (§5.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct YieldIn {
    pub plan: u128,
    pub task_id: String,
    pub execution: u128,
    pub deployment: u128,
    pub batch: u128,
    pub items: Vec<Item>,
    pub yielded: Vec<String>,
    pub suspend: bool,
}

/// A yield's answer and whether it is a replay of the stored one.
pub struct Yielded {
    pub row: YieldRow,
    pub replayed: bool,
}

/// `yield`: the children as a chunk (the yielded ones admitted `dynamic`), dynamic
/// edges from the parent, and with `suspend` the parent's suspension, atomically;
/// replayed for the same (execution, batch).
pub fn yield_(t: &Tables, env: u128, y: YieldIn, now: i64) -> V2Result<Yielded> {
    let stored: Option<YieldRow> =
        super::get(&*t.v2_yields()?, "v2_yields", (env, y.execution, y.batch))?;
    if let Some(row) = stored {
        return Ok(Yielded {
            row,
            replayed: true,
        });
    }
    let p = the_plan(t, env, y.plan)?;
    if y.deployment != p.deployment {
        return Err(Refusal::new(
            Code::DeploymentMismatch,
            "the plan is of another deployment",
        )
        .into());
    }
    let m = member(t, env, y.plan, &y.task_id)?.ok_or_else(|| not_a_member(y.plan, &y.task_id))?;
    let row = task(t, env, &y.task_id)?.ok_or_else(|| unknown_task(&y.task_id))?;
    let exec = execution(t, env, y.execution)?;
    let current = exec.as_ref().is_some_and(|e| {
        e.task_id == y.task_id && e.claim_released_at.is_none() && e.ended_at.is_none()
    }) && row.execution == Some(y.execution);
    if !current {
        return Err(rules::execution_not_current()
            .with("execution_id", id_str(y.execution))
            .into());
    }
    if row.claim_plan != Some(y.plan) {
        return Err(rules::not_claim_holder().into());
    }
    let hashes: HashSet<&str> = y.items.iter().map(|i| i.instance_hash.as_str()).collect();
    if y.yielded.is_empty() || !y.yielded.iter().all(|h| hashes.contains(h.as_str())) {
        return Err(Refusal::new(
            Code::YieldedNotInItems,
            "every yielded hash must be an item",
        )
        .into());
    }
    let scope = Scope {
        plan: y.plan,
        build: p.build,
        deployment: p.deployment,
        settings_hash: &p.settings_hash,
    };
    let dynamic: HashSet<String> = y.yielded.iter().cloned().collect();
    let checked = check_chunk(t, env, scope, &y.items, Admission::Yield(&dynamic), now)?;
    let members = apply_chunk(t, env, scope, checked, now)?;
    let dynamic_edges = add_dynamic_edges(t, env, &scope, m.instance, &y)?;
    let mut e = NewEvent::task(EventType::TaskYielded, now, &y.task_id, y.plan, p.build);
    e.execution = Some(y.execution);
    append_event(t, env, e)?;
    let row = if y.suspend {
        let r = ReportIn {
            plan: y.plan,
            task_id: y.task_id.clone(),
            execution: y.execution,
            report: Report::Suspend,
            error_message: None,
        };
        let row = task(t, env, &y.task_id)?.ok_or_else(|| unknown_task(&y.task_id))?;
        apply_report(t, env, &p, r, row, now)?.map_err(V2Error::from)?;
        task(t, env, &y.task_id)?.ok_or_else(|| unknown_task(&y.task_id))?
    } else {
        row
    };
    let answer = YieldRow {
        members,
        dynamic_edges_created: dynamic_edges,
        status: row.status,
        execution: row.execution,
        claim_expires_at: row.claim_expires_at,
    };
    put(&mut *t.v2_yields()?, (env, y.execution, y.batch), &answer)?;
    Ok(Yielded {
        row: answer,
        replayed: false,
    })
}

use super::V2Error;

/// Dynamic edges from the parent's instance to each yielded child instance.
fn add_dynamic_edges(
    t: &Tables,
    env: u128,
    scope: &Scope,
    parent: u128,
    y: &YieldIn,
) -> Result<u64, StoreError> {
    let Some(mut row) = instance(t, env, parent)? else {
        return Ok(0);
    };
    let mut added = 0;
    for hash in &y.yielded {
        let child = instance_id(env, scope.deployment, scope.settings_hash, hash);
        if row.upstreams.iter().any(|e| e.instance == child) {
            continue;
        }
        let task_id = y
            .items
            .iter()
            .find(|i| &i.instance_hash == hash)
            .map(|i| i.task_id.clone())
            .unwrap_or_default();
        row.upstreams.push(Edge {
            instance: child,
            task_id,
            dynamic: true,
        });
        added += 1;
    }
    if added > 0 {
        save_instance(t, env, parent, &row, true)?;
    }
    Ok(added)
}

/// One uploaded artifact (§3.2); `body` is JSON text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactIn {
    pub artifact_type: String,
    pub name: String,
    pub body: String,
}

/// `artifacts`: upsert per (task, type, name), keeping id and created_at.
pub fn upload_artifacts(
    t: &Tables,
    env: u128,
    plan_id: u128,
    task_id: &str,
    items: Vec<ArtifactIn>,
    now: i64,
) -> V2Result<Vec<(ArtifactIn, ArtifactRow)>> {
    the_plan(t, env, plan_id)?;
    member(t, env, plan_id, task_id)?.ok_or_else(|| not_a_member(plan_id, task_id))?;
    let mut out = Vec::with_capacity(items.len());
    for a in items {
        let key = (env, task_id, a.artifact_type.as_str(), a.name.as_str());
        let prior: Option<ArtifactRow> = super::get(&*t.v2_artifacts()?, "v2_artifacts", key)?;
        let row = ArtifactRow {
            id: prior.as_ref().map_or_else(
                || {
                    derived_id(&[
                        &env.to_be_bytes(),
                        task_id.as_bytes(),
                        a.artifact_type.as_bytes(),
                        a.name.as_bytes(),
                    ])
                },
                |p| p.id,
            ),
            created_at: prior.as_ref().map_or(now, |p| p.created_at),
            body: a.body.clone(),
        };
        put(&mut *t.v2_artifacts()?, key, &row)?;
        out.push((a, row));
    }
    // Build pages show each task's artifact count.
    crate::store::changes::bump_v2_task(t, env, task_id)?;
    Ok(out)
}
