//! The v2 reads (`v2-registry.md` §5): lists with cursors, the frontier with its
//! closure check, plans with their counts, tasks with instances, executions, events,
//! artifacts, deployments, limits and the reactive state. They run on a [`Snapshot`];
//! the frontier's closure check also runs in the writer (`plans::close`).

use redb::ReadableTable;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::claims::live_holders;
use super::lifecycle::reactive_builds;
use super::registration::{Closure, PlanGraph};
use super::schema::*;
use super::{
    build, current_deployment, deployment, execution, get, instance, plan, task, task_state,
};
use crate::domain::v2::rules::{self, Place, Stall};
use crate::domain::v2::{BuildStatus, DeploymentKind, TaskStatus};
use crate::store::change_log::{ChangeLog, Changed};
use crate::store::stamped_cache::StampedCache;
use crate::store::{ReadSnapshot, StoreError};

/// A page of a list: rows, and the cursor of the next page.
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<String>,
}

/// Cursors are `<micros>:<id>` of the last row served; opaque to clients.
fn cursor(at: i64, id: &str) -> String {
    format!("{at}:{id}")
}

/// Parses a cursor; `None` for a malformed one (the handler answers 422).
pub fn parse_cursor(raw: &str) -> Option<(i64, String)> {
    let (at, id) = raw.split_once(':')?;
    Some((at.parse().ok()?, id.to_owned()))
}

/// `GET /builds`: most recently active first, then id; with the total of matches.
pub fn list_builds(
    s: &Snapshot,
    env: u128,
    status: Option<BuildStatus>,
    reactive_app: Option<&str>,
    limit: usize,
    after: Option<(i64, u128)>,
) -> Result<(Page<(u128, BuildRow)>, u64), StoreError> {
    let keys: Vec<(i64, u128)> = match status {
        Some(st) => {
            let table = s.builds_by_status()?;
            let lo = (env, st.tag(), i64::MIN, 0u128);
            let hi = match after {
                Some((at, id)) => (env, st.tag(), at, id),
                None => (env, st.tag(), i64::MAX, u128::MAX),
            };
            let mut out = Vec::new();
            for entry in table.range(lo..hi)?.rev() {
                let k = entry?.0.value();
                out.push((k.2, k.3));
                if reactive_app.is_none() && out.len() > limit {
                    break;
                }
            }
            out
        }
        None => {
            let table = s.builds_by_activity()?;
            let lo = (env, i64::MIN, 0u128);
            let hi = match after {
                Some((at, id)) => (env, at, id),
                None => (env, i64::MAX, u128::MAX),
            };
            let mut out = Vec::new();
            for entry in table.range(lo..hi)?.rev() {
                let k = entry?.0.value();
                out.push((k.1, k.2));
                if reactive_app.is_none() && out.len() > limit {
                    break;
                }
            }
            out
        }
    };
    let mut rows = Vec::new();
    let mut more = false;
    for (_, id) in keys {
        let Some(row) = build(s, env, id)? else {
            continue;
        };
        if reactive_app.is_some_and(|app| row.reactive_app_name.as_deref() != Some(app)) {
            continue;
        }
        if rows.len() == limit {
            more = true;
            break;
        }
        rows.push((id, row));
    }
    let next = match rows.last() {
        Some((id, row)) if more => Some(cursor(
            row.last_active_at,
            &uuid::Uuid::from_u128(*id).to_string(),
        )),
        _ => None,
    };
    let total = match reactive_app {
        None => build_count(s, env, status)?,
        Some(app) => count_reactive(s, env, status, app)?,
    };
    Ok((Page { rows, next }, total))
}

fn build_count(s: &Snapshot, env: u128, status: Option<BuildStatus>) -> Result<u64, StoreError> {
    let table = s.build_counts()?;
    let mut total = 0;
    for st in BuildStatus::ALL {
        if status.is_none_or(|want| want == *st) {
            total += table.get((env, st.tag()))?.map_or(0, |g| g.value());
        }
    }
    Ok(total)
}

fn count_reactive(
    s: &Snapshot,
    env: u128,
    status: Option<BuildStatus>,
    app: &str,
) -> Result<u64, StoreError> {
    let table = s.builds()?;
    let mut n = 0;
    for entry in table.range(super::env_bounds(env, |x| (x, 0u128)))? {
        let (_, v) = entry?;
        let row: BuildRow = crate::store::codec::decode("v2_builds", v.value())?;
        if row.reactive_app_name.as_deref() == Some(app) && status.is_none_or(|st| st == row.status)
        {
            n += 1;
        }
    }
    Ok(n)
}

/// A member as the frontier and the plan roots list it.
#[derive(Debug, Clone)]
pub struct FrontierMember {
    pub task_id: String,
    pub instance_id: u128,
    pub instance_hash: String,
    pub status: TaskStatus,
    pub is_root: bool,
    /// JSON text.
    pub body: String,
    pub attempts: u64,
    pub interruptions: u64,
    pub restart_expected_by: Option<i64>,
}

/// `GET /builds/{id}/frontier` (§6.4), before the closure is written.
pub struct Frontier {
    pub build: BuildRow,
    pub plan: Option<(u128, PlanRow)>,
    pub plan_complete: bool,
    pub runnable: Vec<FrontierMember>,
    pub discovery_jobs: Vec<FrontierMember>,
    pub running: Vec<FrontierMember>,
    /// What the closure step would admit or find in conflict.
    pub closure: Closure,
    /// The `now` the members were placed at, and the earliest expiry among their live
    /// claims: only `live(now)` depends on the time, so the same rows place the same
    /// way at any time in `[read_at, live_until)` (see [`Frontier::holds_at`]).
    pub read_at: i64,
    pub live_until: Option<i64>,
    /// What a kept frontier was computed from, so that a later read can reread only the
    /// members whose tasks changed (`None` for a frontier that is not kept).
    basis: Option<Basis>,
}

/// The plan's shape and its members' task states, by member position.
struct Basis {
    shape: Arc<PlanShape>,
    states: Vec<Option<TaskState>>,
}

impl Frontier {
    fn empty(build: BuildRow, now: i64) -> Frontier {
        Frontier {
            build,
            plan: None,
            plan_complete: false,
            runnable: Vec::new(),
            discovery_jobs: Vec::new(),
            running: Vec::new(),
            closure: Closure::default(),
            read_at: now,
            live_until: None,
            basis: None,
        }
    }

    /// Roughly the bytes the frontier holds (its listed members and member states).
    fn weight(&self) -> usize {
        let states = self.basis.as_ref().map_or(0, |b| {
            b.states.len() * std::mem::size_of::<Option<TaskState>>()
        });
        [&self.runnable, &self.discovery_jobs, &self.running]
            .into_iter()
            .flatten()
            .map(|m| m.body.len() + m.task_id.len() + m.instance_hash.len() + ROW_OVERHEAD)
            .sum::<usize>()
            + states
            + ROW_OVERHEAD
    }

    /// The listed members by task id, with where they were listed.
    fn listed(&self) -> HashMap<&str, (Place, &FrontierMember)> {
        let lists = [
            (Place::Runnable, &self.runnable),
            (Place::Discovery, &self.discovery_jobs),
            (Place::Running, &self.running),
        ];
        lists
            .into_iter()
            .flat_map(|(place, list)| list.iter().map(move |m| (m.task_id.as_str(), (place, m))))
            .collect()
    }

    /// Whether this frontier, read at `read_at`, is what the same rows give at `now`.
    pub fn holds_at(&self, now: i64) -> bool {
        now >= self.read_at && self.live_until.is_none_or(|until| now < until)
    }
}

/// A plan's members as the frontier walks them: each member's upstreams resolved to
/// member positions once, instead of by task id on every read.
struct PlanShape {
    graph: PlanGraph,
    /// Per member, its upstreams: a member's position, or (outside the plan) its task id.
    upstreams: Vec<Vec<Upstream>>,
    /// Whether an edge leaves the plan: then the closure step may have work, and the
    /// states beyond the edge are read by task id.
    leaves_plan: bool,
}

enum Upstream {
    Member(usize),
    Outside(String),
}

/// Bytes a kept row costs besides its strings (struct, allocation and map overhead),
/// roughly: the budgets are approximate by design.
const ROW_OVERHEAD: usize = 128;

impl PlanShape {
    /// Roughly the bytes the shape holds.
    fn weight(&self) -> usize {
        let edges = |m: &MemberRow| {
            m.upstreams
                .iter()
                .map(|e| e.task_id.len() + 64)
                .sum::<usize>()
        };
        self.graph
            .members
            .iter()
            .zip(&self.upstreams)
            .map(|((task_id, m), ups)| task_id.len() + ROW_OVERHEAD + edges(m) + ups.len() * 32)
            .sum()
    }

    fn load(r: &impl Rows, env: u128, plan_id: u128) -> Result<PlanShape, StoreError> {
        let graph = PlanGraph::load(r, env, plan_id)?;
        let position: HashMap<&str, usize> = graph
            .members
            .iter()
            .enumerate()
            .map(|(i, (task_id, _))| (task_id.as_str(), i))
            .collect();
        let instances: HashSet<u128> = graph.members.iter().map(|(_, m)| m.instance).collect();
        let mut leaves_plan = false;
        let upstreams = graph
            .members
            .iter()
            .map(|(_, m)| {
                m.upstreams
                    .iter()
                    .map(|e| {
                        leaves_plan |= !instances.contains(&e.instance);
                        match position.get(e.task_id.as_str()) {
                            Some(&i) => Upstream::Member(i),
                            None => Upstream::Outside(e.task_id.clone()),
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(PlanShape {
            graph,
            upstreams,
            leaves_plan,
        })
    }
}

/// Frontiers by build, each valid while its build's change counter and the environment's
/// generation stand (every write a frontier reads bumps them: the build, its plans,
/// their members, the members' tasks, executions) and the clock is before its first
/// live claim's expiry; and plan shapes by plan, valid while the plan's member rows are
/// unchanged (`changes::bump_members`). A read after a task changed state walks the
/// kept shape and reads only the changed members' states; one after a plan or member
/// row changed places the plan again, still with the kept states of the tasks the
/// change log does not name. Frontiers of plans with edges
/// leaving them (closure work, conflicts) are not kept: the tasks beyond the edges are
/// not the build's to stamp.
pub struct FrontierMemo {
    frontiers: StampedCache<Arc<Frontier>>,
    shapes: StampedCache<Arc<PlanShape>>,
}

/// Frontiers kept: at most 64, and 32 MiB of them (a frontier listing 10 000 members
/// with 1 KB bodies weighs ~11 MB).
const FRONTIERS_KEPT: (usize, usize) = (64, 32 << 20);
/// Plan shapes kept: at most 16, and 64 MiB of them (~3 MB for 10 000 members).
const SHAPES_KEPT: (usize, usize) = (16, 64 << 20);

impl Default for FrontierMemo {
    fn default() -> Self {
        FrontierMemo {
            frontiers: StampedCache::with_budget(FRONTIERS_KEPT.0, FRONTIERS_KEPT.1, |f| {
                f.weight()
            }),
            shapes: StampedCache::with_budget(SHAPES_KEPT.0, SHAPES_KEPT.1, |s| s.weight()),
        }
    }
}

impl FrontierMemo {
    /// The frontier of a build's active plan (§6.4) at `now` on `tx`: the kept one when
    /// it still holds, or the kept one with only what `log` says changed reread.
    pub fn read(
        &self,
        tx: &ReadSnapshot,
        log: &ChangeLog,
        env: u128,
        build_id: u128,
        now: i64,
    ) -> Result<Option<Arc<Frontier>>, StoreError> {
        let (stamp, kept) = self.frontiers.lookup_latest(tx, env, build_id)?;
        let mut updated = None;
        let mut known = None;
        if let Some((kept_stamp, prev)) = kept {
            if kept_stamp == stamp && prev.holds_at(now) {
                return Ok(Some(prev));
            }
            // The same generation, and every batch since known: reread what moved.
            let changed = (kept_stamp.1 == stamp.1)
                .then(|| log.between(env, build_id, kept_stamp.0, stamp.0))
                .flatten()
                .filter(|c| !c.overflow);
            if let Some(changed) = changed {
                if !changed.other {
                    updated = self.update(tx, env, build_id, &prev, &changed, now)?;
                }
                known = Some(KnownStates {
                    prev,
                    changed: changed.tasks,
                });
            }
        }
        let (f, keep) = match updated {
            Some(f) => (f, true),
            None => match self.frontier(tx, env, build_id, now, known.as_ref())? {
                Some(computed) => computed,
                None => return Ok(None),
            },
        };
        let f = Arc::new(f);
        if keep {
            self.frontiers.put(env, build_id, stamp, f.clone());
            log.watch(env, build_id);
        }
        Ok(Some(f))
    }

    /// `prev` brought up to date with `changed` (the tasks whose states or executions
    /// moved, and whether the build row did), or `None` when only a full recompute can
    /// tell (the build left the plan, or `prev` was not kept with its basis).
    fn update(
        &self,
        tx: &ReadSnapshot,
        env: u128,
        build_id: u128,
        prev: &Frontier,
        changed: &Changed,
        now: i64,
    ) -> Result<Option<Frontier>, StoreError> {
        let (Some(basis), Some((plan_id, p))) = (&prev.basis, &prev.plan) else {
            return Ok(None);
        };
        let s = &Snapshot::new(tx);
        let b = match changed.build {
            true => match build(s, env, build_id)? {
                Some(b) => b,
                None => return Ok(None),
            },
            false => prev.build.clone(),
        };
        if b.active_plan != Some(*plan_id) {
            return Ok(None);
        }
        let members = &basis.shape.graph.members;
        let mut states = basis.states.clone();
        for task_id in &changed.tasks {
            // Members are sorted by task id; a task of another plan is not listed.
            if let Ok(i) = members.binary_search_by(|(id, _)| id.as_str().cmp(task_id)) {
                states[i] = task_state(s, env, task_id)?;
            }
        }
        let mut f = Frontier::empty(b, now);
        let reuse = Reuse {
            listed: prev.listed(),
            changed: &changed.tasks,
        };
        f.place_members(s, env, build_id, &basis.shape, &states, p, Some(&reuse))?;
        f.plan = Some((*plan_id, p.clone()));
        f.basis = Some(Basis {
            shape: basis.shape.clone(),
            states,
        });
        Ok(Some(f))
    }

    /// The frontier, and whether it may be kept: not when an edge leaves the plan (the
    /// states beyond it are not the build's to stamp). A member's state is read unless
    /// `known` still holds it.
    fn frontier(
        &self,
        tx: &ReadSnapshot,
        env: u128,
        build_id: u128,
        now: i64,
        known: Option<&KnownStates>,
    ) -> Result<Option<(Frontier, bool)>, StoreError> {
        let s = &Snapshot::new(tx);
        let Some(b) = build(s, env, build_id)? else {
            return Ok(None);
        };
        let mut f = Frontier::empty(b, now);
        let Some((plan_id, p)) = f
            .build
            .active_plan
            .and_then(|id| plan(s, env, id).transpose().map(|r| r.map(|p| (id, p))))
            .transpose()?
        else {
            return Ok(Some((f, true)));
        };
        let shape = self.shapes.get_or_compute(tx, env, plan_id, || {
            PlanShape::load(s, env, plan_id).map(Arc::new)
        })?;
        if shape.leaves_plan {
            f.closure = shape.graph.closure(s, env)?;
        }
        let members = &shape.graph.members;
        let kept = known.map(|k| k.states(members));
        let states = members
            .iter()
            .enumerate()
            .map(|(i, (task_id, _))| match kept.as_ref().and_then(|k| k[i]) {
                Some(state) => Ok(Some(state)),
                None => task_state(s, env, task_id),
            })
            .collect::<Result<Vec<_>, _>>()?;
        f.place_members(s, env, build_id, &shape, &states, &p, None)?;
        f.plan = Some((plan_id, p));
        let keep = !shape.leaves_plan;
        if keep {
            f.basis = Some(Basis { shape, states });
        }
        Ok(Some((f, keep)))
    }
}

/// The member states a kept frontier read, and the tasks changed since: what a
/// frontier placed again after its plan or member rows changed takes from it. Task
/// states are the same whatever plan a task is in, and a task's change is logged for
/// every build whose plans hold it, so a member of the kept plan that is not named
/// still has the state kept.
struct KnownStates {
    prev: Arc<Frontier>,
    changed: BTreeSet<String>,
}

impl KnownStates {
    /// Per member of `members` (sorted by task id, as the kept shape's are), its kept
    /// state if it still holds; `None` to read it (a task named as changed, a member
    /// the kept shape did not have, or one without a task row then). One walk over
    /// both sorted lists: a binary search per member compared long ids ~14 times each.
    fn states(&self, members: &[(String, MemberRow)]) -> Vec<Option<TaskState>> {
        let Some(basis) = self.prev.basis.as_ref() else {
            return vec![None; members.len()];
        };
        let old = &basis.shape.graph.members;
        let mut j = 0;
        members
            .iter()
            .map(|(task_id, _)| {
                while j < old.len() && old[j].0 < *task_id {
                    j += 1;
                }
                let same = j < old.len() && old[j].0 == *task_id;
                (same && !self.changed.contains(task_id))
                    .then(|| basis.states[j])
                    .flatten()
            })
            .collect()
    }
}

/// What a frontier brought up to date may take from the one before it: the members it
/// listed, except those of the tasks that changed.
struct Reuse<'a> {
    listed: HashMap<&'a str, (Place, &'a FrontierMember)>,
    changed: &'a BTreeSet<String>,
}

impl Frontier {
    /// Places every member of the plan by its state in `states` (by position) at
    /// `read_at` (§6.4), and lists the runnable, running and discovery ones. A member
    /// `reuse` listed in the same place, whose task did not change, is listed as it was.
    #[allow(clippy::too_many_arguments)]
    fn place_members(
        &mut self,
        s: &Snapshot,
        env: u128,
        build_id: u128,
        shape: &PlanShape,
        states: &[Option<TaskState>],
        p: &PlanRow,
        reuse: Option<&Reuse>,
    ) -> Result<(), StoreError> {
        let now = self.read_at;
        let f = self;
        f.plan_complete = p.sealed_at.is_some() && f.closure.admit.is_empty();
        for (i, (task_id, m)) in shape.graph.members.iter().enumerate() {
            if m.excluded_reason.is_some() {
                continue;
            }
            let Some(row) = states[i] else {
                continue;
            };
            if row.status != TaskStatus::Completed {
                f.plan_complete = false;
            }
            let live = row.live(now);
            if let (true, Some(at)) = (live, row.claim_expires_at) {
                f.live_until = Some(f.live_until.map_or(at, |until| until.min(at)));
            }
            let mut upstreams_done = true;
            for u in &shape.upstreams[i] {
                let state = match u {
                    Upstream::Member(j) => states[*j],
                    Upstream::Outside(id) => task_state(s, env, id)?,
                };
                if state.is_none_or(|u| u.status != TaskStatus::Completed) {
                    upstreams_done = false;
                    break;
                }
            }
            let place = rules::place(row.status, live, m.expanded, upstreams_done);
            if place == Place::Elsewhere {
                continue;
            }
            let kept = reuse
                .filter(|r| !r.changed.contains(task_id))
                .and_then(|r| r.listed.get(task_id.as_str()))
                .filter(|(was, _)| *was == place);
            let item = match kept {
                Some((_, item)) => (*item).clone(),
                None => {
                    let counts = place != Place::Discovery;
                    let mut item = frontier_member(s, env, build_id, task_id, m, &row, counts)?;
                    if place == Place::Running {
                        item.restart_expected_by = row.preempted_at.and(row.claim_expires_at);
                    }
                    item
                }
            };
            match place {
                Place::Running => f.running.push(item),
                Place::Discovery => f.discovery_jobs.push(item),
                Place::Runnable => f.runnable.push(item),
                Place::Elsewhere => {}
            }
        }
        Ok(())
    }
}

/// One member with its instance body and, if `counts`, its attempts in the build.
fn frontier_member(
    s: &Snapshot,
    env: u128,
    build_id: u128,
    task_id: &str,
    m: &MemberRow,
    row: &TaskState,
    counts: bool,
) -> Result<FrontierMember, StoreError> {
    let inst = instance(s, env, m.instance)?;
    let (attempts, interruptions) = if counts {
        attempt_counts(s, env, build_id, task_id)?
    } else {
        (0, 0)
    };
    Ok(FrontierMember {
        task_id: task_id.to_owned(),
        instance_id: m.instance,
        instance_hash: inst
            .as_ref()
            .map(|i| i.instance_hash.clone())
            .unwrap_or_default(),
        status: row.status,
        is_root: m.is_root,
        body: inst.map(|i| i.body).unwrap_or_else(|| "{}".into()),
        attempts,
        interruptions,
        restart_expected_by: None,
    })
}

/// Executions of a task under any of the build's plans, and how many were interrupted.
fn attempt_counts(
    s: &Snapshot,
    env: u128,
    build_id: u128,
    task_id: &str,
) -> Result<(u64, u64), StoreError> {
    let ids: Vec<u128> = {
        let table = s.build_executions()?;
        let mut out = Vec::new();
        for entry in
            table.range((env, build_id, task_id, 0u128)..=(env, build_id, task_id, u128::MAX))?
        {
            out.push(entry?.0.value().3);
        }
        out
    };
    let mut interrupted = 0;
    for id in &ids {
        if execution(s, env, *id)?.is_some_and(|e| e.interrupted()) {
            interrupted += 1;
        }
    }
    Ok((ids.len() as u64, interrupted))
}

/// `GET /plans/{id}/roots`: the root members.
pub fn plan_roots(
    s: &Snapshot,
    env: u128,
    plan_id: u128,
) -> Result<Option<(PlanRow, Vec<FrontierMember>)>, StoreError> {
    let Some(p) = plan(s, env, plan_id)? else {
        return Ok(None);
    };
    let mut roots = Vec::new();
    for (task_id, m) in super::members(s, env, plan_id)? {
        if !m.is_root {
            continue;
        }
        let Some(row) = task_state(s, env, &task_id)? else {
            continue;
        };
        roots.push(frontier_member(s, env, p.build, &task_id, &m, &row, false)?);
    }
    Ok(Some((p, roots)))
}

/// A plan with its deployment and member counts (PlanDetail).
pub struct PlanDetail {
    pub id: u128,
    pub plan: PlanRow,
    pub deployment: Option<(DeploymentRow, bool)>,
    pub member_count: u64,
    pub root_count: u64,
    pub excluded_count: u64,
    pub member_counts: BTreeMap<&'static str, u64>,
}

pub fn plan_detail(
    s: &Snapshot,
    env: u128,
    plan_id: u128,
) -> Result<Option<PlanDetail>, StoreError> {
    let Some(p) = plan(s, env, plan_id)? else {
        return Ok(None);
    };
    let mut d = PlanDetail {
        id: plan_id,
        deployment: deployment_with_current(s, env, p.deployment)?,
        plan: p,
        member_count: 0,
        root_count: 0,
        excluded_count: 0,
        member_counts: BTreeMap::new(),
    };
    for (task_id, m) in super::members(s, env, plan_id)? {
        d.member_count += 1;
        d.root_count += u64::from(m.is_root);
        if m.excluded_reason.is_some() {
            d.excluded_count += 1;
            continue;
        }
        if let Some(row) = task(s, env, &task_id)? {
            *d.member_counts.entry(row.status.as_str()).or_default() += 1;
        }
    }
    Ok(Some(d))
}

/// A deployment and whether it is its app's current one.
pub fn deployment_with_current(
    s: &Snapshot,
    env: u128,
    id: u128,
) -> Result<Option<(DeploymentRow, bool)>, StoreError> {
    let Some(d) = deployment(s, env, id)? else {
        return Ok(None);
    };
    let current = current_deployment(s, env, d.kind, &d.app_name)? == Some(id);
    Ok(Some((d, current)))
}

/// `GET /builds/{id}/plans`: newest generation first.
pub fn build_plans(s: &Snapshot, env: u128, build_id: u128) -> Result<Vec<PlanDetail>, StoreError> {
    let ids: Vec<u128> = {
        let table = s.build_plans()?;
        let mut out = Vec::new();
        for entry in table
            .range((env, build_id, 0u64)..=(env, build_id, u64::MAX))?
            .rev()
        {
            out.push(entry?.1.value());
        }
        out
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(d) = plan_detail(s, env, id)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// `GET /builds/{id}/executions`: oldest start first; by default only unended ones.
pub fn build_executions(
    s: &Snapshot,
    env: u128,
    build_id: u128,
    active_plan: Option<u128>,
    not_in_current_plan: bool,
    include_ended: bool,
) -> Result<Vec<(u128, ExecutionRow, bool)>, StoreError> {
    let ids: Vec<u128> = {
        let table = s.build_executions()?;
        let mut out = Vec::new();
        let end = (env, build_id.wrapping_add(1), "", 0u128);
        for entry in table.range((env, build_id, "", 0u128)..end)? {
            out.push(entry?.0.value().3);
        }
        out
    };
    let mut rows = Vec::new();
    for id in ids {
        let Some(e) = execution(s, env, id)? else {
            continue;
        };
        let current = active_plan == Some(e.plan);
        if (!include_ended && e.ended_at.is_some()) || (not_in_current_plan && current) {
            continue;
        }
        rows.push((id, e, current));
    }
    rows.sort_by_key(|(id, e, _)| (e.started_at, *id));
    Ok(rows)
}

/// Whether an execution's plan is its build's active plan.
pub fn in_current_plan(s: &Snapshot, env: u128, e: &ExecutionRow) -> Result<bool, StoreError> {
    Ok(build(s, env, e.build)?.is_some_and(|b| b.active_plan == Some(e.plan)))
}

/// `GET /tasks`: tasks by status time, newest first.
pub fn list_tasks(
    s: &Snapshot,
    env: u128,
    status: Option<TaskStatus>,
    limit: usize,
    after: Option<(i64, String)>,
) -> Result<Page<(String, TaskRow)>, StoreError> {
    // One index by (status, status_at): a status filter reads its range; the whole
    // list merges the newest `limit + 1` of every status.
    let statuses: Vec<TaskStatus> = match status {
        Some(st) => vec![st],
        None => TaskStatus::ALL.to_vec(),
    };
    let table = s.tasks_by_status()?;
    let mut ids: Vec<(i64, String)> = Vec::new();
    for st in statuses {
        let lo = (env, st.tag(), i64::MIN, "");
        let range = match &after {
            Some((at, id)) => table.range(lo..(env, st.tag(), *at, id.as_str()))?,
            None => table.range(lo..(env, st.tag() + 1, i64::MIN, ""))?,
        };
        for entry in range.rev().take(limit + 1) {
            let (k, _) = entry?;
            let k = k.value();
            ids.push((k.2, k.3.to_owned()));
        }
    }
    ids.sort_by(|a, b| b.cmp(a));
    ids.truncate(limit + 1);
    let more = ids.len() > limit;
    let mut rows = Vec::with_capacity(limit);
    for (_, id) in ids.into_iter().take(limit) {
        if let Some(row) = task(s, env, &id)? {
            rows.push((id, row));
        }
    }
    let next = match rows.last() {
        Some((id, row)) if more => Some(cursor(row.status_at, id)),
        _ => None,
    };
    Ok(Page { rows, next })
}

/// A task's instances, newest first, at most `limit`.
pub fn task_instances(
    s: &Snapshot,
    env: u128,
    task_id: &str,
    limit: usize,
) -> Result<Vec<(u128, InstanceRow)>, StoreError> {
    let ids: Vec<u128> = {
        let table = s.tasks()?;
        let mut out = Vec::new();
        for entry in table
            .range(Part::Instance.range(env, task_id))?
            .rev()
            .take(limit)
        {
            out.push(entry?.0.value().4);
        }
        out
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = instance(s, env, id)? {
            out.push((id, row));
        }
    }
    Ok(out)
}

/// `GET /tasks/{id}/executions`: newest start first.
pub fn task_executions(
    s: &Snapshot,
    env: u128,
    task_id: &str,
    include_ended: bool,
    limit: usize,
) -> Result<Vec<(u128, ExecutionRow)>, StoreError> {
    let ids: Vec<u128> = {
        let table = s.tasks()?;
        let mut out = Vec::new();
        for entry in table.range(Part::Execution.range(env, task_id))?.rev() {
            out.push(entry?.0.value().4);
        }
        out
    };
    let mut rows = Vec::new();
    for id in ids {
        if rows.len() == limit {
            break;
        }
        if let Some(e) = execution(s, env, id)? {
            if include_ended || e.ended_at.is_none() {
                rows.push((id, e));
            }
        }
    }
    Ok(rows)
}

/// `GET /tasks/{id}/events`: oldest first, at most `limit`.
pub fn task_events(
    s: &Snapshot,
    env: u128,
    task_id: &str,
    limit: usize,
) -> Result<Vec<EventRow>, StoreError> {
    let keys: Vec<(u128, u64)> = {
        let table = s.tasks()?;
        let mut out = Vec::new();
        for entry in table.range(Part::Event.range(env, task_id))?.take(limit) {
            let (k, v) = entry?;
            let event = event_of(k.value(), v.value()).ok_or_else(|| StoreError::Corrupt {
                table: "v2_task_entries",
                why: "an event entry's value is not a build id".into(),
            })?;
            out.push(event);
        }
        out
    };
    let table = s.build_events()?;
    let mut out = Vec::with_capacity(keys.len());
    for (build, seq) in keys {
        if let Some(row) = get(&*table, "v2_build_events", (env, build, seq))? {
            out.push(row);
        }
    }
    Ok(out)
}

/// A build's events, oldest first, at most `limit` (the UI's build page).
pub fn build_events(
    s: &Snapshot,
    env: u128,
    build_id: u128,
    limit: usize,
) -> Result<Vec<EventRow>, StoreError> {
    let table = s.build_events()?;
    let mut out = Vec::new();
    for entry in table
        .range((env, build_id, 0u64)..=(env, build_id, u64::MAX))?
        .take(limit)
    {
        let (_, v) = entry?;
        out.push(crate::store::codec::decode("v2_build_events", v.value())?);
    }
    Ok(out)
}

/// A task's artifacts, by (type, name).
pub fn task_artifacts(
    s: &Snapshot,
    env: u128,
    task_id: &str,
) -> Result<Vec<(String, String, ArtifactRow)>, StoreError> {
    let table = s.artifacts()?;
    let mut out = Vec::new();
    let hi = (env, task_id, "\u{10FFFF}", "");
    for entry in table.range((env, task_id, "", "")..hi)? {
        let (k, v) = entry?;
        let (_, _, kind, name) = k.value();
        out.push((
            kind.to_owned(),
            name.to_owned(),
            crate::store::codec::decode("v2_artifacts", v.value())?,
        ));
    }
    Ok(out)
}

/// `GET /deployments`: newest first, filtered, at most `limit`.
pub fn list_deployments(
    s: &Snapshot,
    env: u128,
    kind: Option<DeploymentKind>,
    app: Option<&str>,
    current_only: bool,
    limit: usize,
) -> Result<Vec<(u128, DeploymentRow, bool)>, StoreError> {
    let mut rows: Vec<(u128, DeploymentRow)> = Vec::new();
    {
        let table = s.deployments()?;
        for entry in table.range(super::env_bounds(env, |x| (x, 0u128)))? {
            let (k, v) = entry?;
            let row: DeploymentRow = crate::store::codec::decode("v2_deployments", v.value())?;
            if kind.is_none_or(|k| k == row.kind) && app.is_none_or(|a| a == row.app_name) {
                rows.push((k.value().1, row));
            }
        }
    }
    rows.sort_by_key(|(id, d)| std::cmp::Reverse((d.deployed_at, *id)));
    let mut out = Vec::new();
    for (id, d) in rows {
        let current = current_deployment(s, env, d.kind, &d.app_name)? == Some(id);
        if current_only && !current {
            continue;
        }
        out.push((id, d, current));
        if out.len() == limit {
            break;
        }
    }
    Ok(out)
}

/// A concurrency limit with its live holders.
pub struct LimitInfo {
    pub key: String,
    pub max: u64,
    pub holders: Vec<(String, TaskRow, Option<ExecutionRow>)>,
}

/// `GET /concurrency-limits`, by key.
pub fn limits(s: &Snapshot, env: u128, now: i64) -> Result<Vec<LimitInfo>, StoreError> {
    let keys: Vec<(String, u64)> = {
        let table = s.limits()?;
        let mut out = Vec::new();
        for entry in table.range(super::env_bounds(env, |x| (x, "")))? {
            let (k, v) = entry?;
            out.push((k.value().1.to_owned(), v.value()));
        }
        out
    };
    let mut out = Vec::with_capacity(keys.len());
    for (key, max) in keys {
        let mut holders = Vec::new();
        for (id, row) in live_holders(s, env, &key, now)? {
            let exec = match row.execution {
                Some(e) => execution(s, env, e)?,
                None => None,
            };
            holders.push((id, row, exec));
        }
        holders.sort_by(|a, b| {
            let key = |h: &(String, TaskRow, Option<ExecutionRow>)| {
                (h.2.as_ref().map(|e| e.started_at), h.0.clone())
            };
            key(a).cmp(&key(b))
        });
        out.push(LimitInfo { key, max, holders });
    }
    Ok(out)
}

/// `GET /stalled-builds`: oldest `since` first.
pub fn stalled(
    s: &Snapshot,
    env: u128,
    cutoff: i64,
    limit: usize,
    now: i64,
) -> Result<Vec<(u128, String, Stall, i64)>, StoreError> {
    let mut out = Vec::new();
    for id in reactive_builds(s, env)? {
        let Some(b) = build(s, env, id)? else {
            continue;
        };
        if !b.is_reactive_running() || b.wake.lease_live(now) {
            continue;
        }
        if let Some((why, since)) = b.wake.stalled(cutoff) {
            out.push((id, b.reactive_app_name.unwrap_or_default(), why, since));
        }
    }
    out.sort_by_key(|(id, _, _, since)| (*since, *id));
    out.truncate(limit);
    Ok(out)
}

/// `GET /builds/{id}/tick-summaries`: newest first.
pub fn tick_summaries(
    s: &Snapshot,
    env: u128,
    build_id: u128,
    limit: usize,
) -> Result<Vec<TickRow>, StoreError> {
    let table = s.ticks()?;
    let mut out = Vec::new();
    for entry in table
        .range((env, build_id, 0u64)..=(env, build_id, u64::MAX))?
        .rev()
        .take(limit)
    {
        let (_, v) = entry?;
        out.push(crate::store::codec::decode("v2_ticks", v.value())?);
    }
    Ok(out)
}

pub use super::lifecycle::settings;
pub use super::{
    build as build_row, execution as execution_row, plan as plan_row, task as task_row,
};

/// Whether every one of `task_ids` is running under a live claim held through
/// another build than `build`: the members a `complete` of `build` may wait for
/// (see `api::v2::builds::complete`).
pub fn held_by_other_builds(
    s: &Snapshot,
    env: u128,
    build: u128,
    task_ids: &[String],
    now: i64,
) -> Result<bool, StoreError> {
    for id in task_ids {
        let held = super::task(s, env, id)?
            .is_some_and(|t| t.live(now) && t.claim_build.is_some_and(|b| b != build));
        if !held {
            return Ok(false);
        }
    }
    Ok(!task_ids.is_empty())
}
