//! The v2 registry's storage (`v2-registry.md`, docs/v2.md): tables and rows in
//! [`schema`], the writes in [`ops`] (journaled like the v1 hot path, each applied by
//! the one writer, so a re-delivery queued behind its first delivery sees it), and the
//! reads in [`reads`]. This module holds the primitives they share: typed gets and
//! puts, index upkeep, events, task moves, claim closing and build endings.
//!
//! Every write checks everything before its first write (a refusal leaves the batch's
//! transaction untouched), except the refusals the contract records: a late report's
//! ledger end, a refused terminal transition's event, a full limit's keys. Those are
//! written and answered as `Ok(Err(refusal))`.

pub mod ops;
pub mod reads;
pub mod registration;
pub mod schema;

pub mod claims;
pub mod lifecycle;
pub(crate) mod migrate;
pub mod plans;

use std::borrow::Borrow;

use redb::{Key, ReadableTable, Table, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::change_log::Change;
use super::codec::{decode, decode_prefix, encode};
use super::tables::Tables;
use super::tasks::env_bounds;
use super::StoreError;
use crate::domain::v2::{BuildStatus, ClaimOutcome, EventType, Refusal, TaskStatus};
use schema::*;

/// What a v2 write answers: a value, or a refusal that was recorded (written).
pub type Answer<T> = Result<T, Refusal>;

/// A v2 write's failure: a refusal (nothing written) or a store error.
#[derive(Debug, thiserror::Error)]
pub enum V2Error {
    #[error("{0}")]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for V2Error {
    fn from(r: Refusal) -> Self {
        V2Error::Refused(r)
    }
}

impl From<redb::StorageError> for V2Error {
    fn from(e: redb::StorageError) -> Self {
        V2Error::Store(e.into())
    }
}

pub type V2Result<T> = Result<T, V2Error>;

// ---------------------------------------------------------------------------------
// Typed gets and puts

pub(crate) fn get<'k, K: Key + 'static, T: DeserializeOwned>(
    table: &impl ReadableTable<K, &'static [u8]>,
    name: &'static str,
    key: impl Borrow<K::SelfType<'k>>,
) -> Result<Option<T>, StoreError> {
    table.get(key)?.map(|g| decode(name, g.value())).transpose()
}

fn put<'k, K: Key + 'static, T: Serialize>(
    table: &mut Table<'_, K, &'static [u8]>,
    key: impl Borrow<K::SelfType<'k>>,
    row: &T,
) -> Result<(), StoreError> {
    table.insert(key, encode(row)?.as_slice())?;
    Ok(())
}

pub fn build(r: &impl Rows, env: u128, id: u128) -> Result<Option<BuildRow>, StoreError> {
    get(&*r.builds()?, "v2_builds", (env, id))
}

pub fn plan(r: &impl Rows, env: u128, id: u128) -> Result<Option<PlanRow>, StoreError> {
    get(&*r.plans()?, "v2_plans", (env, id))
}

pub fn task(r: &impl Rows, env: u128, id: &str) -> Result<Option<TaskRow>, StoreError> {
    get(&*r.tasks()?, "v2_task_entries", row_key(env, id))
}

/// The plans holding `task_id` as a member, in id order (plan ids are time-ordered, so
/// the newest last); at most `max`.
pub fn plans_of(
    r: &impl Rows,
    env: u128,
    task_id: &str,
    max: usize,
) -> Result<Vec<u128>, StoreError> {
    let table = r.tasks()?;
    let mut out = Vec::new();
    for entry in table.range(Part::Plan.range(env, task_id))? {
        if out.len() == max {
            break;
        }
        out.push(entry?.0.value().4);
    }
    Ok(out)
}

pub fn instance(r: &impl Rows, env: u128, id: u128) -> Result<Option<InstanceRow>, StoreError> {
    get(&*r.instances()?, "v2_instances", (env, id))
}

/// An instance without its body (the frontier and the closure read many).
pub fn instance_head(
    r: &impl Rows,
    env: u128,
    id: u128,
) -> Result<Option<InstanceHead>, StoreError> {
    let table = r.instances()?;
    let row = table.get((env, id))?;
    row.map(|g| decode_prefix("v2_instances", g.value()))
        .transpose()
}

/// An instance's expansion and edges only.
pub fn instance_edges(
    r: &impl Rows,
    env: u128,
    id: u128,
) -> Result<Option<InstanceEdges>, StoreError> {
    let table = r.instances()?;
    let row = table.get((env, id))?;
    row.map(|g| decode_prefix("v2_instances", g.value()))
        .transpose()
}

/// A task's status and claim, without its strings.
pub fn task_state(r: &impl Rows, env: u128, id: &str) -> Result<Option<TaskState>, StoreError> {
    let table = r.tasks()?;
    let row = table.get(row_key(env, id))?;
    row.map(|g| decode_prefix("v2_task_entries", g.value()))
        .transpose()
}

pub fn member(
    r: &impl Rows,
    env: u128,
    plan: u128,
    task: &str,
) -> Result<Option<MemberRow>, StoreError> {
    get(&*r.members()?, "v2_members", (env, plan, task))
}

/// Every member of a plan, sorted by task id.
pub fn members(
    r: &impl Rows,
    env: u128,
    plan: u128,
) -> Result<Vec<(String, MemberRow)>, StoreError> {
    let table = r.members()?;
    let mut out = Vec::new();
    for entry in table.range((env, plan, "")..plan_end(env, plan))? {
        let (k, v) = entry?;
        out.push((k.value().2.to_owned(), decode("v2_members", v.value())?));
    }
    Ok(out)
}

/// The exclusive end of a plan's member keys.
fn plan_end(env: u128, plan: u128) -> (u128, u128, &'static str) {
    match plan.checked_add(1) {
        Some(next) => (env, next, ""),
        None => (env.saturating_add(1), 0, ""),
    }
}

pub fn execution(r: &impl Rows, env: u128, id: u128) -> Result<Option<ExecutionRow>, StoreError> {
    get(&*r.executions()?, "v2_executions", (env, id))
}

pub fn deployment(r: &impl Rows, env: u128, id: u128) -> Result<Option<DeploymentRow>, StoreError> {
    get(&*r.deployments()?, "v2_deployments", (env, id))
}

/// The current deployment of (kind, app): the activated row with the highest
/// generation. A local deployment is never current (§2).
pub fn current_deployment(
    r: &impl Rows,
    env: u128,
    kind: crate::domain::v2::DeploymentKind,
    app: &str,
) -> Result<Option<u128>, StoreError> {
    if kind == crate::domain::v2::DeploymentKind::Local {
        return Ok(None);
    }
    let ids: Vec<u128> = {
        let gens = r.deployment_generations()?;
        let range =
            gens.range((env, kind.as_str(), app, 0u64)..=(env, kind.as_str(), app, u64::MAX))?;
        let mut ids = Vec::new();
        for entry in range.rev() {
            ids.push(entry?.1.value());
        }
        ids
    };
    for id in ids {
        if deployment(r, env, id)?.is_some_and(|d| d.activated_at.is_some()) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------
// Rows with indexes

/// The indexed fields of a task, taken before a change so the index can follow it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskKey {
    status: TaskStatus,
    status_at: i64,
}

impl TaskRow {
    pub(crate) fn key(&self) -> TaskKey {
        TaskKey {
            status: self.status,
            status_at: self.status_at,
        }
    }
}

/// Writes a task row; `before` is its key as stored (`None` for a new task).
pub(crate) fn save_task(
    t: &Tables,
    env: u128,
    id: &str,
    before: Option<TaskKey>,
    row: &TaskRow,
) -> Result<(), StoreError> {
    put(&mut *t.v2_tasks()?, row_key(env, id), row)?;
    super::changes::bump_v2_task(t, env, id)?;
    let now = row.key();
    if before == Some(now) {
        return Ok(());
    }
    if let Some(b) = before {
        t.v2_tasks_by_status()?
            .remove((env, b.status.tag(), b.status_at, id))?;
    }
    t.v2_tasks_by_status()?
        .insert((env, now.status.tag(), now.status_at, id), ())?;
    Ok(())
}

/// The indexed fields of a build.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct BuildKey {
    status: BuildStatus,
    last_active_at: i64,
    reactive_running: bool,
}

impl BuildRow {
    pub(crate) fn key(&self) -> BuildKey {
        BuildKey {
            status: self.status,
            last_active_at: self.last_active_at,
            reactive_running: self.is_reactive_running(),
        }
    }
}

/// Writes a build row; `before` is its key as stored (`None` for a new build).
pub(crate) fn save_build(
    t: &Tables,
    env: u128,
    id: u128,
    before: Option<BuildKey>,
    row: &BuildRow,
) -> Result<(), StoreError> {
    put(&mut *t.v2_builds()?, (env, id), row)?;
    super::changes::bump(t, env, id, Change::Build)?;
    let now = row.key();
    let moved =
        before.is_none_or(|b| (b.status, b.last_active_at) != (now.status, now.last_active_at));
    if let (Some(b), true) = (before, moved) {
        t.v2_builds_by_activity()?
            .remove((env, b.last_active_at, id))?;
        t.v2_builds_by_status()?
            .remove((env, b.status.tag(), b.last_active_at, id))?;
    }
    if moved {
        t.v2_builds_by_activity()?
            .insert((env, now.last_active_at, id), ())?;
        t.v2_builds_by_status()?
            .insert((env, now.status.tag(), now.last_active_at, id), ())?;
    }
    if before.is_none_or(|b| b.status != now.status) {
        if let Some(b) = before {
            add_build_count(t, env, b.status, -1)?;
        }
        add_build_count(t, env, now.status, 1)?;
    }
    match (
        before.is_some_and(|b| b.reactive_running),
        now.reactive_running,
    ) {
        (false, true) => {
            t.v2_reactive()?.insert((env, id), ())?;
        }
        (true, false) => {
            t.v2_reactive()?.remove((env, id))?;
        }
        _ => {}
    }
    Ok(())
}

fn add_build_count(
    t: &Tables,
    env: u128,
    status: BuildStatus,
    delta: i64,
) -> Result<(), StoreError> {
    let mut counts = t.v2_build_counts()?;
    let key = (env, status.tag());
    let old = counts.get(key)?.map_or(0, |g| g.value());
    let new = old.saturating_add_signed(delta);
    if new == 0 {
        counts.remove(key)?;
    } else {
        counts.insert(key, new)?;
    }
    Ok(())
}

pub(crate) fn save_plan(t: &Tables, env: u128, id: u128, row: &PlanRow) -> Result<(), StoreError> {
    put(&mut *t.v2_plans()?, (env, id), row)?;
    super::changes::bump(t, env, row.build, Change::Other)
}

/// An index entry `what` that names a missing row.
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt {
        table: "v2",
        why: format!("{what} names a missing row"),
    }
}

/// Writes a member row of `plan`, a plan of `build`: bumps the build's change counter
/// and the plan's member counter.
pub(crate) fn save_member(
    t: &Tables,
    env: u128,
    (build, plan): (u128, u128),
    task: &str,
    row: &MemberRow,
    new: bool,
) -> Result<(), StoreError> {
    put(&mut *t.v2_members()?, (env, plan, task), row)?;
    if new {
        t.v2_tasks()?
            .insert(Part::Plan.key(env, task, 0, plan), NO_VALUE)?;
    }
    super::changes::bump(t, env, build, Change::Other)?;
    super::changes::bump_members(t, env, plan)
}

/// Writes an execution; its build's frontier counts it (attempts, interruptions).
pub(crate) fn save_execution(
    t: &Tables,
    env: u128,
    id: u128,
    row: &ExecutionRow,
) -> Result<(), StoreError> {
    put(&mut *t.v2_executions()?, (env, id), row)?;
    super::changes::bump(t, env, row.build, Change::Task(&row.task_id))
}

/// Writes an instance. When its expansion or edges changed (`grown`), the member rows
/// holding it in any plan get the new copy.
pub(crate) fn save_instance(
    t: &Tables,
    env: u128,
    id: u128,
    row: &InstanceRow,
    grown: bool,
) -> Result<(), StoreError> {
    put(&mut *t.v2_instances()?, (env, id), row)?;
    if !grown {
        return Ok(());
    }
    let task = row.task_id.as_str();
    for plan in plans_of(t, env, task, usize::MAX)? {
        let Some(mut m) = member(t, env, plan, task)? else {
            continue;
        };
        if m.instance == id {
            m.expanded = row.expanded_at.is_some();
            m.upstreams = row.upstreams.clone();
            let build = self::plan(t, env, plan)?
                .ok_or_else(|| corrupt("a task's plan index"))?
                .build;
            save_member(t, env, (build, plan), task, &m, false)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Events

/// An event to append (§6.6).
pub(crate) struct NewEvent<'a> {
    pub event_type: EventType,
    pub at: i64,
    /// Every event belongs to a build (task events to the build of their plan).
    pub build: u128,
    pub plan: Option<u128>,
    pub execution: Option<u128>,
    pub task_id: Option<&'a str>,
    pub applied: bool,
    pub error_message: Option<String>,
    pub metadata: Option<String>,
}

impl<'a> NewEvent<'a> {
    /// A build event.
    pub fn build(event_type: EventType, at: i64, build: u128) -> Self {
        NewEvent {
            event_type,
            at,
            build,
            plan: None,
            execution: None,
            task_id: None,
            applied: true,
            error_message: None,
            metadata: None,
        }
    }

    /// A task event in a plan of a build.
    pub fn task(event_type: EventType, at: i64, task: &'a str, plan: u128, build: u128) -> Self {
        NewEvent {
            task_id: Some(task),
            plan: Some(plan),
            ..NewEvent::build(event_type, at, build)
        }
    }
}

/// The next value of the v2 sequence (event and tick order).
pub(crate) fn next_seq(t: &Tables) -> Result<u64, StoreError> {
    let current = t
        .meta_value(SEQ_KEY)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_le_bytes);
    let next = current + 1;
    t.set_meta_value(SEQ_KEY, &next.to_le_bytes())?;
    Ok(next)
}

pub(crate) fn append_event(t: &Tables, env: u128, e: NewEvent) -> Result<(), StoreError> {
    let seq = next_seq(t)?;
    let row = EventRow {
        id: timed_id(e.at, seq),
        event_type: e.event_type,
        created_at: e.at,
        build: Some(e.build),
        plan: e.plan,
        execution: e.execution,
        task_id: e.task_id.map(str::to_owned),
        applied: e.applied,
        error_message: e.error_message,
        metadata: e.metadata,
    };
    put(&mut *t.v2_build_events()?, (env, e.build, seq), &row)?;
    super::changes::bump(t, env, e.build, Change::Event)?;
    if let Some(task) = e.task_id {
        let (key, build) = event_entry(env, task, seq, e.build);
        t.v2_tasks()?.insert(key, &build[..])?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Task moves, claims, build endings

/// Moves a task to `status` and flags the reactive builds whose active plan holds it
/// (§6.7), except `except_build` (the build the change came through). The caller
/// saves the task.
pub(crate) fn move_task(
    t: &Tables,
    env: u128,
    task_id: &str,
    task: &mut TaskRow,
    status: TaskStatus,
    now: i64,
    except_build: Option<u128>,
) -> Result<(), StoreError> {
    task.status = status;
    task.status_at = now;
    flag_holders(t, env, task_id, except_build, now)
}

/// Whether the environment has any running reactive build (one seek).
fn any_reactive(t: &Tables, env: u128) -> Result<bool, StoreError> {
    let table = t.v2_reactive()?;
    let any = table
        .range(env_bounds(env, |x| (x, 0u128)))?
        .next()
        .is_some();
    Ok(any)
}

fn flag_holders(
    t: &Tables,
    env: u128,
    task_id: &str,
    except_build: Option<u128>,
    now: i64,
) -> Result<(), StoreError> {
    if !any_reactive(t, env)? {
        return Ok(());
    }
    for plan_id in plans_of(t, env, task_id, usize::MAX)? {
        let Some(p) = plan(t, env, plan_id)? else {
            continue;
        };
        if Some(p.build) == except_build {
            continue;
        }
        let Some(mut b) = build(t, env, p.build)? else {
            continue;
        };
        if !b.is_reactive_running() || b.active_plan != Some(plan_id) {
            continue;
        }
        let excluded =
            member(t, env, plan_id, task_id)?.is_none_or(|m| m.excluded_reason.is_some());
        if excluded || b.wake.needs_tick_at.is_some() {
            continue;
        }
        let before = b.key();
        b.wake.flag(now);
        save_build(t, env, p.build, Some(before), &b)?;
    }
    Ok(())
}

/// Closes the claim of a task's current execution with `outcome` (if still open) and
/// clears the claim fields. The task keeps its current execution id.
pub(crate) fn close_claim(
    t: &Tables,
    env: u128,
    task_id: &str,
    task: &mut TaskRow,
    outcome: ClaimOutcome,
    now: i64,
) -> Result<(), StoreError> {
    if let Some(exec_id) = task.execution {
        if let Some(mut exec) = execution(t, env, exec_id)? {
            if exec.release_claim(outcome, now) {
                save_execution(t, env, exec_id, &exec)?;
            }
        }
    }
    clear_claim(t, env, task_id, task)
}

/// The task side of closing a claim: its index entries and claim fields (the caller
/// released the execution's claim).
pub(crate) fn clear_claim(
    t: &Tables,
    env: u128,
    task_id: &str,
    task: &mut TaskRow,
) -> Result<(), StoreError> {
    if task.claim_plan.is_some() {
        let mut holders = t.v2_limit_holders()?;
        for key in &task.limit_keys {
            holders.remove((env, key.as_str(), task_id))?;
        }
    }
    task.claim_plan = None;
    task.claim_build = None;
    task.preempted_at = None;
    task.claim_expires_at = None;
    Ok(())
}

/// Releases every claim (live or lapsed) held through the build's plans: claim
/// outcome `released`, task `cancelled`, event `task_cancelled` (§6.1).
fn release_build_claims(
    t: &Tables,
    env: u128,
    build_id: u128,
    now: i64,
) -> Result<u64, StoreError> {
    // The build's executions whose claim is still open: a build ends once, so this
    // scan is cheaper than an index of open claims kept at every start and report.
    let started: Vec<(String, u128)> = {
        let table = t.v2_build_executions()?;
        let mut out = Vec::new();
        let end = (env, build_id.wrapping_add(1), "", 0u128);
        for entry in table.range((env, build_id, "", 0u128)..end)? {
            let (k, _) = entry?;
            let k = k.value();
            out.push((k.2.to_owned(), k.3));
        }
        out
    };
    let mut held = Vec::new();
    for (task_id, exec) in started {
        if execution(t, env, exec)?.is_some_and(|e| e.claim_released_at.is_none()) {
            held.push(task_id);
        }
    }
    held.dedup();
    let mut released = 0;
    for task_id in held {
        let Some(mut task) = task(t, env, &task_id)? else {
            continue;
        };
        if task.status != TaskStatus::Running || task.claim_build != Some(build_id) {
            continue;
        }
        let before = task.key();
        let plan = task.claim_plan;
        close_claim(t, env, &task_id, &mut task, ClaimOutcome::Released, now)?;
        move_task(
            t,
            env,
            &task_id,
            &mut task,
            TaskStatus::Cancelled,
            now,
            Some(build_id),
        )?;
        save_task(t, env, &task_id, Some(before), &task)?;
        let mut e = NewEvent::build(EventType::TaskCancelled, now, build_id);
        e.task_id = Some(&task_id);
        e.plan = plan;
        e.execution = task.execution;
        append_event(t, env, e)?;
        released += 1;
    }
    Ok(released)
}

/// How a build ends: its new status, and the message and metadata of its event.
pub(crate) struct Ending {
    pub status: BuildStatus,
    pub error_message: Option<String>,
    pub metadata: Option<String>,
}

impl Ending {
    pub fn new(status: BuildStatus) -> Ending {
        Ending {
            status,
            error_message: None,
            metadata: None,
        }
    }
}

/// Ends a build (terminal, or exit-early): the terminal statuses release the build's
/// claims; the build event is appended. The caller checked the transition
/// ([`crate::domain::v2::rules::lifecycle`]) and saves the build.
pub(crate) fn end_build(
    t: &Tables,
    env: u128,
    build_id: u128,
    b: &mut BuildRow,
    ending: Ending,
    now: i64,
) -> Result<(), StoreError> {
    let status = ending.status;
    let released = if status.is_terminal() {
        release_build_claims(t, env, build_id, now)?
    } else {
        0
    };
    b.status = status;
    b.completed_at = Some(now);
    b.last_active_at = now;
    b.is_resumed = false;
    if status == BuildStatus::Failed {
        b.error_message = ending.error_message.clone();
    }
    let metadata = match (ending.metadata, released) {
        (Some(m), _) => Some(m),
        (None, 0) => None,
        (None, n) => Some(serde_json::json!({ "released_claims": n }).to_string()),
    };
    let mut e = NewEvent::build(status.event(), now, build_id);
    e.error_message = ending.error_message;
    e.metadata = metadata;
    append_event(t, env, e)
}

/// How often task transitions move a build's `last_active_at`: often enough to order
/// `GET /builds` by activity, rarely enough that a busy build does not rewrite its
/// row and two index entries at every start and report.
const TOUCH_EVERY: i64 = crate::domain::v2::SECOND;

/// Marks a running build active now (task transitions through its plans move it, so
/// `GET /builds` shows active builds first, as upstream), at most once a second.
pub(crate) fn touch_build(
    t: &Tables,
    env: u128,
    build_id: u128,
    now: i64,
) -> Result<(), StoreError> {
    let due = build_state(t, env, build_id)?
        .is_some_and(|s| s.status == BuildStatus::Running && now - s.last_active_at >= TOUCH_EVERY);
    if !due {
        return Ok(());
    }
    let Some(mut b) = build(t, env, build_id)? else {
        return Ok(());
    };
    let before = b.key();
    b.last_active_at = now;
    save_build(t, env, build_id, Some(before), &b)
}

/// A build's status and activity, without its strings.
pub fn build_state(r: &impl Rows, env: u128, id: u128) -> Result<Option<BuildState>, StoreError> {
    let table = r.builds()?;
    let row = table.get((env, id))?;
    row.map(|g| decode_prefix("v2_builds", g.value()))
        .transpose()
}

/// Removes an environment's v2 rows (the environment is being deleted).
pub fn purge_environment(tx: &WriteTransaction, env: u128) -> Result<(), StoreError> {
    macro_rules! purge {
        ($def:expr, $min:expr) => {
            tx.open_table($def)?
                .retain_in(env_bounds(env, $min), |_, _| false)?;
        };
    }
    purge!(BUILDS, |x| (x, 0u128));
    purge!(BUILDS_BY_ACTIVITY, |x| (x, i64::MIN, 0u128));
    purge!(BUILDS_BY_STATUS, |x| (x, 0u8, i64::MIN, 0u128));
    purge!(BUILD_COUNTS, |x| (x, 0u8));
    purge!(REACTIVE, |x| (x, 0u128));
    purge!(DEPLOYMENTS, |x| (x, 0u128));
    purge!(DEPLOYMENT_GENERATIONS, |x| (x, "", "", 0u64));
    purge!(LOCAL_DEPLOYMENTS, |x| (x, ""));
    purge!(SETTINGS, |x| (x, ""));
    purge!(TASKS, |x| (x, "", 0u8, i64::MIN, 0u128));
    purge!(TASKS_BY_STATUS, |x| (x, 0u8, i64::MIN, ""));
    purge!(INSTANCES, |x| (x, 0u128));
    purge!(PLANS, |x| (x, 0u128));
    purge!(BUILD_PLANS, |x| (x, 0u128, 0u64));
    purge!(PLAN_SCOPES, |x| (x, 0u128, 0u128, ""));
    purge!(MEMBERS, |x| (x, 0u128, ""));
    purge!(EXECUTIONS, |x| (x, 0u128));
    purge!(BUILD_EXECUTIONS, |x| (x, 0u128, "", 0u128));
    purge!(YIELDS, |x| (x, 0u128, 0u128));
    purge!(ARTIFACTS, |x| (x, "", "", ""));
    purge!(LIMITS, |x| (x, ""));
    purge!(LIMIT_HOLDERS, |x| (x, "", ""));
    purge!(BUILD_EVENTS, |x| (x, 0u128, 0u64));
    purge!(TICKS, |x| (x, 0u128, 0u64));
    tx.open_table(BUILD_ENVS)?.retain(|_, e| e != env)?;
    Ok(())
}
