//! Registration of one chunk (plan roots, members, yield items), all or nothing
//! (`v2-registry.md` §6.3), and the closure step (§6.4).
//!
//! A chunk is checked whole before its first write: [`check_chunk`] walks the items in
//! `(task_id, instance_hash)` order against the stored rows and what the chunk itself
//! adds, and returns the admissions; [`apply_chunk`] then writes tasks, instances,
//! edges, members and observations. A refusal anywhere writes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::schema::*;
use super::{
    append_event, close_claim, instance, instance_edges, instance_head, member, move_task,
    save_instance, save_member, save_task, task, NewEvent, Rows, V2Result,
};
use crate::domain::v2::rules::{self, Observation};
use crate::domain::v2::{
    AdmittedBy, ClaimOutcome, Code, EventType, Refusal, TaskStatus, CLOCK_SKEW_TOLERANCE,
};
use crate::store::tables::Tables;
use crate::store::StoreError;

/// One registration item (§3.1), as the handler validated it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub task_id: String,
    pub identity: Identity,
    pub instance_hash: String,
    /// Canonical JSON text of the body object.
    pub body: String,
    pub declared_upstreams: Option<Vec<String>>,
    pub observed_complete: bool,
    pub observed_at: i64,
}

/// How a chunk's items are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission<'a> {
    /// Plan roots: `admitted_by = root`, `is_root`.
    Roots,
    Members,
    /// Yield items: the yielded hashes are admitted `dynamic`.
    Yield(&'a HashSet<String>),
}

/// The plan a chunk registers into: its id, build and scope.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub plan: u128,
    pub build: u128,
    pub deployment: u128,
    pub settings_hash: &'a str,
}

impl Scope<'_> {
    fn instance_id(&self, env: u128, hash: &str) -> u128 {
        instance_id(env, self.deployment, self.settings_hash, hash)
    }
}

/// What checking a chunk found: the admissions to make, and the instances involved.
pub struct Checked<'i> {
    /// Items de-duplicated by hash, in `(task_id, instance_hash)` order.
    items: Vec<&'i Item>,
    new_tasks: HashSet<&'i str>,
    /// Stored instances of the chunk's items, by id (edges are added to them).
    stored: HashMap<u128, InstanceRow>,
    /// Task ids of every instance an item names as upstream.
    upstream_tasks: HashMap<u128, String>,
    admissions: Vec<Admit>,
    root_marks: Vec<String>,
}

struct Admit {
    task_id: String,
    instance: u128,
    by: AdmittedBy,
    is_root: bool,
}

fn clock_skew(item: &Item, now: i64) -> Refusal {
    Refusal::new(
        Code::ClockSkew,
        "observed_at is ahead of the registry clock",
    )
    .with("task_id", item.task_id.clone())
    .with("observed_at", crate::clock::format_micros(item.observed_at))
    .with("server_time", crate::clock::format_micros(now))
}

fn body_conflict(hash: &str) -> Refusal {
    Refusal::new(
        Code::InstanceBodyConflict,
        "two bodies under one instance hash",
    )
    .with("instance_hash", hash)
}

/// Checks a chunk against the stored rows (steps 1–5 of §6.3) without writing.
pub fn check_chunk<'i>(
    r: &impl Rows,
    env: u128,
    scope: Scope,
    items: &'i [Item],
    mode: Admission,
    now: i64,
) -> V2Result<Checked<'i>> {
    let mut by_hash: BTreeMap<&str, &Item> = BTreeMap::new();
    for item in items {
        if item.observed_at > now + CLOCK_SKEW_TOLERANCE {
            return Err(clock_skew(item, now).into());
        }
        if let Some(seen) = by_hash.insert(&item.instance_hash, item) {
            if seen.body != item.body || seen.task_id != item.task_id {
                return Err(body_conflict(&item.instance_hash).into());
            }
        }
    }
    let mut ordered: Vec<&Item> = by_hash.into_values().collect();
    ordered.sort_by(|a, b| (&a.task_id, &a.instance_hash).cmp(&(&b.task_id, &b.instance_hash)));

    let mut new_tasks: HashMap<&str, &Identity> = HashMap::new();
    let mut stored = HashMap::new();
    let mut chunk_instances: HashMap<&str, (u128, &str)> = HashMap::new();
    for item in &ordered {
        check_task(r, env, item, &mut new_tasks)?;
        let id = scope.instance_id(env, &item.instance_hash);
        if let Some(row) = instance(r, env, id)? {
            if row.task_id != item.task_id || row.body != item.body {
                return Err(body_conflict(&item.instance_hash).into());
            }
            stored.insert(id, row);
        }
        chunk_instances.insert(&item.instance_hash, (id, &item.task_id));
    }

    let by_id: HashMap<u128, &Item> = ordered
        .iter()
        .map(|i| (scope.instance_id(env, &i.instance_hash), *i))
        .collect();
    let mut upstream_tasks: HashMap<u128, String> = HashMap::new();
    let mut sim = Membership::new(env, scope.plan);
    let mut admissions = Vec::new();
    let mut root_marks = Vec::new();
    for item in &ordered {
        for hash in item.declared_upstreams.iter().flatten() {
            let (up, up_task) = upstream(r, env, scope, hash, &chunk_instances)?;
            if sim.admit(r, &up_task, up, &by_id)? {
                admissions.push(Admit {
                    task_id: up_task.clone(),
                    instance: up,
                    by: AdmittedBy::Closure,
                    is_root: false,
                });
            }
            upstream_tasks.insert(up, up_task);
        }
        let id = scope.instance_id(env, &item.instance_hash);
        let (by, is_root) = match mode {
            Admission::Roots => (AdmittedBy::Root, true),
            Admission::Yield(dynamic) if dynamic.contains(&item.instance_hash) => {
                (AdmittedBy::Dynamic, false)
            }
            _ => (AdmittedBy::Static, false),
        };
        if sim.admit(r, &item.task_id, id, &by_id)? {
            admissions.push(Admit {
                task_id: item.task_id.clone(),
                instance: id,
                by,
                is_root,
            });
        } else if is_root {
            root_marks.push(item.task_id.clone());
        }
    }
    Ok(Checked {
        new_tasks: new_tasks.into_keys().collect(),
        items: ordered,
        stored,
        upstream_tasks,
        admissions,
        root_marks,
    })
}

/// Step 2: a task is new, or has the item's identity.
fn check_task<'i>(
    r: &impl Rows,
    env: u128,
    item: &'i Item,
    new_tasks: &mut HashMap<&'i str, &'i Identity>,
) -> V2Result<()> {
    let differences = match new_tasks.get(item.task_id.as_str()) {
        Some(first) => first.differences(&item.identity),
        None => match task(r, env, &item.task_id)? {
            Some(row) => row.identity().differences(&item.identity),
            None => {
                new_tasks.insert(&item.task_id, &item.identity);
                Vec::new()
            }
        },
    };
    if differences.is_empty() {
        return Ok(());
    }
    Err(Refusal::new(
        Code::TaskIdentityConflict,
        format!("task {} was registered with another identity", item.task_id),
    )
    .with("task_id", item.task_id.clone())
    .with("fields", differences)
    .into())
}

/// Step 4: a declared upstream is an instance of the scope, stored or in the chunk.
fn upstream(
    r: &impl Rows,
    env: u128,
    scope: Scope,
    hash: &str,
    chunk: &HashMap<&str, (u128, &str)>,
) -> V2Result<(u128, String)> {
    if let Some((id, task_id)) = chunk.get(hash) {
        return Ok((*id, (*task_id).to_owned()));
    }
    let id = scope.instance_id(env, hash);
    match instance_head(r, env, id)? {
        Some(head) => Ok((id, head.task_id)),
        None => Err(Refusal::new(
            Code::UnknownUpstream,
            format!("upstream {hash} is not an instance in this scope"),
        )
        .with("instance_hash", hash)
        .into()),
    }
}

/// A plan's membership as a chunk (or the closure) would leave it: stored members,
/// looked up once, plus the admissions decided so far.
struct Membership {
    env: u128,
    plan: u128,
    held: HashMap<String, Option<u128>>,
}

impl Membership {
    fn new(env: u128, plan: u128) -> Membership {
        Membership {
            env,
            plan,
            held: HashMap::new(),
        }
    }

    fn holder(&mut self, r: &impl Rows, task_id: &str) -> Result<Option<u128>, StoreError> {
        if let Some(h) = self.held.get(task_id) {
            return Ok(*h);
        }
        let h = member(r, self.env, self.plan, task_id)?.map(|m| m.instance);
        self.held.insert(task_id.to_owned(), h);
        Ok(h)
    }

    /// Admits `task_id` through `inst` (true), finds it already held through it
    /// (false), or refuses `instance_conflict` when another instance holds it.
    fn admit(
        &mut self,
        r: &impl Rows,
        task_id: &str,
        inst: u128,
        chunk: &HashMap<u128, &Item>,
    ) -> V2Result<bool> {
        match self.holder(r, task_id)? {
            None => {
                self.held.insert(task_id.to_owned(), Some(inst));
                Ok(true)
            }
            Some(held) if held == inst => Ok(false),
            Some(held) => Err(instance_conflict(r, self.env, task_id, held, inst, chunk)?.into()),
        }
    }
}

/// 409 `instance_conflict`: the plan holds `held` of the task; `other` was asked for.
fn instance_conflict(
    r: &impl Rows,
    env: u128,
    task_id: &str,
    held: u128,
    other: u128,
    chunk: &HashMap<u128, &Item>,
) -> Result<Refusal, StoreError> {
    let held_body = body_of(r, env, held, chunk.get(&held).copied())?;
    let other_body = body_of(r, env, other, chunk.get(&other).copied())?;
    let fields = rules::differing_fields(&held_body, &other_body);
    Ok(Refusal::new(
        Code::InstanceConflict,
        format!("the plan already holds another instance of task {task_id}"),
    )
    .with("task_id", task_id)
    .with("fields", fields))
}

/// An instance's body: stored, or (not yet stored) the item's.
fn body_of(
    r: &impl Rows,
    env: u128,
    id: u128,
    item: Option<&Item>,
) -> Result<Map<String, Value>, StoreError> {
    let text = match instance(r, env, id)? {
        Some(row) => row.body,
        None => item.map(|i| i.body.clone()).unwrap_or_default(),
    };
    Ok(match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    })
}

/// Writes a checked chunk: tasks, instances, edges, admissions, observations.
pub fn apply_chunk(
    t: &Tables,
    env: u128,
    scope: Scope,
    checked: Checked,
    now: i64,
) -> Result<MembersCounts, StoreError> {
    let mut counts = MembersCounts::default();
    for item in &checked.items {
        if checked.new_tasks.contains(item.task_id.as_str()) {
            let row = TaskRow::new(item.identity.clone(), now);
            save_task(t, env, &item.task_id, None, &row)?;
            counts.tasks_created += 1;
        }
    }
    let mut stored = checked.stored;
    for item in &checked.items {
        let id = scope.instance_id(env, &item.instance_hash);
        let existed = stored.contains_key(&id);
        let mut row = match stored.remove(&id) {
            Some(row) => row,
            None => {
                counts.instances_created += 1;
                t.v2_tasks()?
                    .insert(Part::Instance.key(env, &item.task_id, now, id), NO_VALUE)?;
                InstanceRow {
                    deployment: scope.deployment,
                    settings_hash: scope.settings_hash.to_owned(),
                    instance_hash: item.instance_hash.clone(),
                    task_id: item.task_id.clone(),
                    created_at: now,
                    expanded_at: None,
                    upstreams: Vec::new(),
                    body: item.body.clone(),
                }
            }
        };
        let mut grown = false;
        if let Some(declared) = &item.declared_upstreams {
            let added = add_edges(&mut row, env, scope, declared, &checked.upstream_tasks);
            grown = existed && (added > 0 || row.expanded_at.is_none());
            counts.edges_created += added;
            if row.expanded_at.is_some() && added > 0 {
                counts.diverged += 1;
                let e = NewEvent::task(
                    EventType::TaskStructureDiverged,
                    now,
                    &item.task_id,
                    scope.plan,
                    scope.build,
                );
                append_event(t, env, e)?;
            }
            row.expanded_at.get_or_insert(now);
        }
        save_instance(t, env, id, &row, grown)?;
    }
    for a in &checked.admissions {
        admit(
            t,
            env,
            scope,
            a,
            checked.new_tasks.contains(a.task_id.as_str()),
            now,
        )?;
        match a.by {
            AdmittedBy::Closure => counts.closure_admitted += 1,
            _ => counts.members_admitted += 1,
        }
    }
    for task_id in &checked.root_marks {
        if let Some(mut m) = member(t, env, scope.plan, task_id)? {
            if !m.is_root {
                m.is_root = true;
                save_member(t, env, (scope.build, scope.plan), task_id, &m, false)?;
            }
        }
    }
    for item in &checked.items {
        observe(t, env, scope, item, &mut counts, now)?;
    }
    Ok(counts)
}

/// Adds the static edges an item declares that the instance lacks; returns how many.
fn add_edges(
    row: &mut InstanceRow,
    env: u128,
    scope: Scope,
    declared: &[String],
    upstream_tasks: &HashMap<u128, String>,
) -> u64 {
    let mut added = 0;
    for hash in declared {
        let up = scope.instance_id(env, hash);
        if row.upstreams.iter().any(|e| e.instance == up) {
            continue;
        }
        row.upstreams.push(Edge {
            instance: up,
            task_id: upstream_tasks.get(&up).cloned().unwrap_or_default(),
            dynamic: false,
        });
        added += 1;
    }
    added
}

fn admit(
    t: &Tables,
    env: u128,
    scope: Scope,
    a: &Admit,
    new_task: bool,
    now: i64,
) -> Result<(), StoreError> {
    let edges = instance_edges(t, env, a.instance)?;
    let row = MemberRow {
        instance: a.instance,
        is_root: a.is_root,
        admitted_by: a.by,
        excluded_reason: None,
        excluded_at: None,
        expanded: edges.as_ref().is_some_and(|e| e.expanded_at.is_some()),
        upstreams: edges.map(|e| e.upstreams).unwrap_or_default(),
    };
    save_member(t, env, (scope.build, scope.plan), &a.task_id, &row, true)?;
    let kind = if new_task {
        EventType::TaskPending
    } else {
        EventType::TaskReferenced
    };
    let e = NewEvent::task(kind, now, &a.task_id, scope.plan, scope.build);
    append_event(t, env, e)
}

/// Step 6: the item's observation of its target, on the task as it is now.
fn observe(
    t: &Tables,
    env: u128,
    scope: Scope,
    item: &Item,
    counts: &mut MembersCounts,
    now: i64,
) -> Result<(), StoreError> {
    let Some(mut row) = task(t, env, &item.task_id)? else {
        return Ok(());
    };
    let decision = rules::observe(
        row.status,
        row.live(now),
        row.completed_at,
        item.observed_complete,
        item.observed_at,
    );
    let before = row.key();
    let event = match decision {
        Observation::Nothing => return Ok(()),
        Observation::Complete { close_lapsed } => {
            if close_lapsed {
                close_claim(t, env, &item.task_id, &mut row, ClaimOutcome::Lapsed, now)?;
            }
            move_task(
                t,
                env,
                &item.task_id,
                &mut row,
                TaskStatus::Completed,
                now,
                None,
            )?;
            row.completed_at = Some(now);
            counts.completed += 1;
            EventType::TaskObservedComplete
        }
        Observation::Invalidate => {
            move_task(
                t,
                env,
                &item.task_id,
                &mut row,
                TaskStatus::Pending,
                now,
                None,
            )?;
            row.completed_at = None;
            counts.invalidated += 1;
            EventType::TaskInvalidated
        }
    };
    save_task(t, env, &item.task_id, Some(before), &row)?;
    let e = NewEvent::task(event, now, &item.task_id, scope.plan, scope.build);
    append_event(t, env, e)
}

// ---------------------------------------------------------------------------------
// The closure step (§6.4)

/// Two instances of one task that one plan cannot both hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClosureConflict {
    pub task_id: String,
    pub member_instance: u128,
    pub other_instance: u128,
    pub fields: Vec<String>,
}

/// What the closure step would do to a plan: the upstream instances to admit, and
/// the conflicts that fail the build.
#[derive(Debug, Default)]
pub struct Closure {
    pub admit: Vec<(String, u128)>,
    pub conflicts: Vec<ClosureConflict>,
}

impl Closure {
    pub fn is_empty(&self) -> bool {
        self.admit.is_empty() && self.conflicts.is_empty()
    }
}

/// A plan's members, each with its instance's edges: what the closure step and the
/// frontier read.
pub struct PlanGraph {
    pub members: Vec<(String, MemberRow)>,
}

impl PlanGraph {
    pub fn load(r: &impl Rows, env: u128, plan: u128) -> Result<PlanGraph, StoreError> {
        Ok(PlanGraph {
            members: super::members(r, env, plan)?,
        })
    }

    /// Every instance reachable over edges from a member that is not a member itself:
    /// admitted when its task is not a member (and it is the only one of its task),
    /// else a conflict. Non-member instances are read once each.
    pub fn closure(&self, r: &impl Rows, env: u128) -> Result<Closure, StoreError> {
        let mut seen: HashSet<u128> = self.members.iter().map(|(_, m)| m.instance).collect();
        // Edges leaving the plan: the common case is none, so the walk below is rare.
        let mut stack: Vec<(u128, String)> = Vec::new();
        for e in self.members.iter().flat_map(|(_, m)| &m.upstreams) {
            if seen.insert(e.instance) {
                stack.push((e.instance, e.task_id.clone()));
            }
        }
        if stack.is_empty() {
            return Ok(Closure::default());
        }
        let mut reached: BTreeMap<String, Vec<(String, u128)>> = BTreeMap::new();
        while let Some((inst, task_id)) = stack.pop() {
            let Some(head) = instance_head(r, env, inst)? else {
                continue;
            };
            for e in &head.upstreams {
                if seen.insert(e.instance) {
                    stack.push((e.instance, e.task_id.clone()));
                }
            }
            reached
                .entry(task_id)
                .or_default()
                .push((head.instance_hash, inst));
        }
        let held: HashMap<&str, u128> = self
            .members
            .iter()
            .map(|(t, m)| (t.as_str(), m.instance))
            .collect();
        let mut out = Closure::default();
        for (task_id, mut rows) in reached {
            rows.sort();
            let conflict =
                |member_instance: u128, other: u128| -> Result<ClosureConflict, StoreError> {
                    let fields = rules::differing_fields(
                        &body_of(r, env, member_instance, None)?,
                        &body_of(r, env, other, None)?,
                    );
                    Ok(ClosureConflict {
                        task_id: task_id.clone(),
                        member_instance,
                        other_instance: other,
                        fields,
                    })
                };
            if let Some(&member_instance) = held.get(task_id.as_str()) {
                for (_, other) in &rows {
                    out.conflicts.push(conflict(member_instance, *other)?);
                }
            } else if rows.len() > 1 {
                let first = rows[0].1;
                for (_, other) in &rows[1..] {
                    out.conflicts.push(conflict(first, *other)?);
                }
            } else {
                out.admit.push((task_id.clone(), rows[0].1));
            }
        }
        Ok(out)
    }
}

/// Admits the closure's instances (`admitted_by = closure`); returns how many.
pub fn admit_closure(
    t: &Tables,
    env: u128,
    scope: Scope,
    closure: &Closure,
    now: i64,
) -> Result<u64, StoreError> {
    for (task_id, inst) in &closure.admit {
        let a = Admit {
            task_id: task_id.clone(),
            instance: *inst,
            by: AdmittedBy::Closure,
            is_root: false,
        };
        admit(t, env, scope, &a, false, now)?;
    }
    Ok(closure.admit.len() as u64)
}
