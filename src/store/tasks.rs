//! Task-tracking tables: builds, tasks, per-build membership, events, dependency edges
//! and registry assets (v1-tasks §2.4–§2.8, docs/tasks.md).
//!
//! Every key starts with the environment id, so a lookup can only see the caller's
//! environment (D9) and an environment is purged by range. Status is materialised in the
//! write that appends an event (O(1) reducers from `domain::status`), so reads never
//! replay the event log. Tasks are addressed internally by their UUIDv7 id (fixed-width
//! keys); the SDK hash maps to it through `TASK_IDS`.
//!
//! Time: one counter row gives every write op a block of event sequence numbers and
//! strictly increasing timestamps, so append order = time order (D8) and ids derived
//! from a timestamp sort like it.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::change_log::Change;
use super::changes;
use super::codec::{decode, decode_prefix, encode};
use super::search::{self, DocIndex};
use super::tables::{update_row, Row, Tables};
use super::{Reader, StoreError};
use crate::domain::events::{EventType, TaskStatus};
use crate::domain::status::{BuildState, GlobalTaskState, TaskInBuildState};

/// (env, build) → [`BuildRow`]; build ids sort by creation time.
pub const BUILDS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("builds");
/// (env, task hash) → task id: the one lookup every hash-addressed route starts with.
pub const TASK_IDS: TableDefinition<(u128, &str), u128> = TableDefinition::new("task_ids");
/// (env, task id) → [`TaskRow`], immutable after registration (first write wins).
pub const TASKS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("tasks");
/// (env, task id) → [`TaskStateRow`]: the small, often rewritten half of a task.
pub const TASK_STATES: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("task_states");
/// (env, task name, task id): `GET /tasks?task_name=`, newest first by reverse range.
pub const TASKS_BY_NAME: TableDefinition<(u128, &str, u128), ()> =
    TableDefinition::new("tasks_by_name");
/// (env, namespace, task id): `GET /tasks?task_namespace=`.
pub const TASKS_BY_NAMESPACE: TableDefinition<(u128, &str, u128), ()> =
    TableDefinition::new("tasks_by_namespace");
/// (env, build, task id) → [`TaskInBuildState`]: membership (≥1 event) and §3.3 status.
pub const BUILD_TASKS: TableDefinition<(u128, u128, u128), &[u8]> =
    TableDefinition::new("build_tasks");
/// (env, build, seq) → [`EventRow`]: every event, stored once, in append order.
pub const BUILD_EVENTS: TableDefinition<(u128, u128, u64), &[u8]> =
    TableDefinition::new("build_events");
/// (env, task id, seq) → build: a task's events across builds (rows live in BUILD_EVENTS).
pub const TASK_EVENTS: TableDefinition<(u128, u128, u64), u128> =
    TableDefinition::new("task_events");
/// (env, downstream id, upstream id): dependency edges (environment-wide, §2.7).
pub const TASK_EDGES: TableDefinition<(u128, u128, u128), ()> = TableDefinition::new("task_edges");
/// (env, upstream id, downstream id): [`TASK_EDGES`] the other way round, for a task's
/// "used by" list (ui.md §9 row 4). Written with every edge; schema version 3 filled it.
pub const TASK_DEPENDENTS: TableDefinition<(u128, u128, u128), ()> =
    TableDefinition::new("task_dependents");
/// (env, upstream hash, downstream id): edges whose upstream is not registered yet (D17).
pub const PENDING_EDGES: TableDefinition<(u128, &str, u128), ()> =
    TableDefinition::new("pending_edges");
/// (env, task id, asset type, name) → [`AssetRow`] (§2.8: unique per task, type, name).
pub const ASSETS: TableDefinition<(u128, u128, &str, &str), &[u8]> =
    TableDefinition::new("task_assets");
/// env → (builds, tasks): list totals without counting ranges.
pub const ENV_COUNTS: TableDefinition<u128, (u64, u64)> = TableDefinition::new("task_env_counts");

/// META key of the event clock: next sequence number and last timestamp handed out.
const CLOCK_KEY: &str = "task_clock";

/// Stored error messages are capped (D21).
pub const MAX_MESSAGE_BYTES: usize = crate::domain::limits::MESSAGE_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("Build not found")]
    BuildNotFound,
    #[error("Task not found")]
    TaskNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redb::StorageError> for TrackError {
    fn from(e: redb::StorageError) -> Self {
        TrackError::Store(e.into())
    }
}

impl From<redb::TableError> for TrackError {
    fn from(e: redb::TableError) -> Self {
        TrackError::Store(e.into())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BuildRow {
    pub id: Uuid,
    /// The JWT user; None for API keys.
    pub user_id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    pub commit_hash: Option<String>,
    pub root_task_ids: Vec<String>,
    pub created_at: i64,
    /// §3.2 status, materialised from the build-level events.
    pub state: BuildState,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskRow {
    pub id: Uuid,
    pub task_id: String,
    pub task_namespace: String,
    pub task_name: String,
    pub version: Option<String>,
    pub output_uri: Option<String>,
    pub created_at: i64,
    /// JSON object text (bincode cannot hold `serde_json::Value`).
    pub task_data: String,
}

/// The mutable half of a task, kept apart so an event never rewrites `task_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TaskStateRow {
    /// §3.4 batched status (D18), including the latest event's build for search.
    pub global: GlobalTaskState<u128>,
    pub asset_count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRow {
    /// Internal task id; None for build-level events.
    pub task: Option<Uuid>,
    pub event_type: EventType,
    pub at: i64,
    pub error_message: Option<String>,
    /// JSON object text.
    pub metadata: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AssetRow {
    pub id: Uuid,
    pub created_at: i64,
    /// JSON object text.
    pub body: String,
}

/// An event as reads return it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: Uuid,
    pub build_id: Uuid,
    pub row: EventRow,
}

/// An asset as reads and uploads return it.
#[derive(Debug, Clone)]
pub struct StoredAsset {
    pub asset_type: String,
    pub name: String,
    pub row: AssetRow,
}

pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(BUILDS)?;
    tx.open_table(TASK_IDS)?;
    tx.open_table(TASKS)?;
    tx.open_table(TASK_STATES)?;
    tx.open_table(TASKS_BY_NAME)?;
    tx.open_table(TASKS_BY_NAMESPACE)?;
    tx.open_table(BUILD_TASKS)?;
    tx.open_table(BUILD_EVENTS)?;
    tx.open_table(TASK_EVENTS)?;
    tx.open_table(TASK_EDGES)?;
    tx.open_table(TASK_DEPENDENTS)?;
    tx.open_table(PENDING_EDGES)?;
    tx.open_table(ASSETS)?;
    tx.open_table(ENV_COUNTS)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Ids, time, small helpers
// ---------------------------------------------------------------------------------------

/// A UUIDv7 whose 12 `rand_a` bits carry the microseconds within the millisecond
/// (RFC 9562 method 3), so ids sort exactly like their `at`; `low` fills the 62 random
/// bits.
pub fn v7_id(at: i64, low: u64) -> Uuid {
    let at = at.max(0) as u64;
    let ms = (at / 1000) & 0xFFFF_FFFF_FFFF;
    let hi = (ms << 16) | (0x7 << 12) | (at % 1000);
    let lo = (0b10 << 62) | (low & 0x3FFF_FFFF_FFFF_FFFF);
    Uuid::from_u64_pair(hi, lo)
}

/// Event ids need no randomness: the sequence number is already unique.
pub fn event_id(at: i64, seq: u64) -> Uuid {
    v7_id(at, seq)
}

/// Truncates at a character boundary to [`MAX_MESSAGE_BYTES`] (D21).
pub fn cap_message(mut s: String) -> String {
    if s.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The first of `n` consecutive (sequence number, timestamp) slots of one write op.
#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: u64,
    at: i64,
}

/// Reserves `n ≥ 1` slots. Timestamps are `max(now, last + 1)`: strictly increasing even
/// if the system clock steps back, so events sort by time exactly as they were appended.
/// Hands out `n` event sequence numbers and a timestamp: `now` (taken by the caller,
/// so a journal replay gets the same one), or just after the last one if the clock went
/// back.
fn reserve(t: &Tables, n: u64, now: i64) -> Result<Slot, StoreError> {
    let (next_seq, last_at) = match t.meta_value(CLOCK_KEY)? {
        Some(raw) => clock_of(&raw)?,
        None => (1, i64::MIN),
    };
    let at = now.max(last_at.saturating_add(1));
    let n = n.max(1);
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&(next_seq + n).to_le_bytes());
    raw[8..].copy_from_slice(&(at + n as i64 - 1).to_le_bytes());
    t.set_meta_value(CLOCK_KEY, &raw)?;
    Ok(Slot { seq: next_seq, at })
}

/// The stored clock: next sequence number, last timestamp.
fn clock_of(raw: &[u8]) -> Result<(u64, i64), StoreError> {
    let bad = || StoreError::Corrupt {
        table: "meta",
        why: "task_clock is not 16 bytes".into(),
    };
    let seq: [u8; 8] = raw
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    let at: [u8; 8] = raw
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    Ok((u64::from_le_bytes(seq), i64::from_le_bytes(at)))
}

/// Half-open bounds covering every key of one environment in a table whose key starts
/// with the environment and continues with `min` (the smallest rest).
pub(crate) fn env_bounds<T: Copy>(env: u128, min: impl Fn(u128) -> T) -> (Bound<T>, Bound<T>) {
    let upper = match env.checked_add(1) {
        Some(next) => Bound::Excluded(min(next)),
        None => Bound::Unbounded,
    };
    (Bound::Included(min(env)), upper)
}

fn metadata_json(key: &str, value: &str) -> String {
    let mut map = serde_json::Map::new();
    map.insert(key.to_owned(), serde_json::Value::String(value.to_owned()));
    serde_json::Value::Object(map).to_string()
}

pub(crate) fn build_exists(r: &impl Reader, env: u128, build: u128) -> Result<bool, StoreError> {
    Ok(r.open(BUILDS)?.get((env, build))?.is_some())
}

pub(crate) fn task_id_of(
    r: &impl Reader,
    env: u128,
    hash: &str,
) -> Result<Option<u128>, StoreError> {
    Ok(r.open(TASK_IDS)?.get((env, hash))?.map(|g| g.value()))
}

/// [`task_id_of`] inside a write batch.
pub(crate) fn task_id_in(t: &Tables, env: u128, hash: &str) -> Result<Option<u128>, StoreError> {
    Ok(t.task_ids()?.get((env, hash))?.map(|g| g.value()))
}

pub(crate) fn counts(r: &impl Reader, env: u128) -> Result<(u64, u64), StoreError> {
    Ok(r.open(ENV_COUNTS)?
        .get(env)?
        .map(|g| g.value())
        .unwrap_or((0, 0)))
}

// ---------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------

/// Input of [`create_build`]; ids and names are drawn by the caller (off the writer).
#[derive(Serialize, Deserialize)]
pub struct NewBuild {
    pub user_id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    pub commit_hash: Option<String>,
    pub root_task_ids: Vec<String>,
    pub salt: u64,
}

/// Inserts a build and its `build_started` event (§4.1).
pub fn create_build(
    t: &Tables,
    env: Uuid,
    new: NewBuild,
    now: i64,
) -> Result<BuildRow, TrackError> {
    let e = env.as_u128();
    let slot = reserve(t, 1, now)?;
    let mut state = BuildState::new();
    state.apply(EventType::BuildStarted, slot.at, None);
    let row = BuildRow {
        id: v7_id(slot.at, new.salt),
        user_id: new.user_id,
        name: new.name,
        description: new.description,
        commit_hash: new.commit_hash,
        root_task_ids: new.root_task_ids,
        created_at: slot.at,
        state,
    };
    let b = row.id.as_u128();
    t.builds()?.insert((e, b), encode(&row)?.as_slice())?;
    let event = EventRow {
        task: None,
        event_type: EventType::BuildStarted,
        at: slot.at,
        error_message: None,
        metadata: None,
    };
    t.build_events()?
        .insert((e, b, slot.seq), encode(&event)?.as_slice())?;
    t.add_env_counts(e, 1, 0)?;
    changes::bump(t, e, b, Change::Other)?;
    Ok(row)
}

/// Appends a build-level terminal event (§4.1, D6 PATCH) and returns the updated build.
/// Unconditional: a later terminal event replaces an earlier one (§3.2).
pub fn transition_build(
    t: &Tables,
    env: Uuid,
    build: Uuid,
    event_type: EventType,
    error_message: Option<String>,
    triggered_by: Option<String>,
    now: i64,
) -> Result<BuildRow, TrackError> {
    let (e, b) = (env.as_u128(), build.as_u128());
    let mut builds = t.builds()?;
    let mut row: BuildRow = match builds.get((e, b))? {
        Some(raw) => decode("builds", raw.value())?,
        None => return Err(TrackError::BuildNotFound),
    };
    let slot = reserve(t, 1, now)?;
    let triggered_by = triggered_by.filter(|t| !t.is_empty());
    row.state
        .apply(event_type, slot.at, triggered_by.as_deref());
    builds.insert((e, b), encode(&row)?.as_slice())?;
    drop(builds);
    let event = EventRow {
        task: None,
        event_type,
        at: slot.at,
        error_message: error_message.map(cap_message),
        metadata: triggered_by
            .as_deref()
            .map(|t| metadata_json(crate::domain::events::META_TRIGGERED_BY_USER_ID, t)),
    };
    t.build_events()?
        .insert((e, b, slot.seq), encode(&event)?.as_slice())?;
    changes::bump(t, e, b, Change::Other)?;
    Ok(row)
}

/// Records one task-level event: appends it, and folds it into the task's membership of
/// the build (§3.3) and its global state (§3.4) in the same transaction. Returns the
/// per-build state after the event. Reusable by every route that appends task events.
/// `row` is [`Row::New`] for the first event of a task registered by this op.
fn record_task_event(
    t: &Tables,
    env: u128,
    (build, task): (u128, u128),
    names: Option<search::Names<'_>>,
    row: Row,
    slot: Slot,
    event: &EventRow,
) -> Result<TaskInBuildState, StoreError> {
    let error = event.error_message.as_deref();
    let member = update_row(
        &mut *t.build_tasks()?,
        "build_tasks",
        (env, build, task),
        row,
        |m: &mut TaskInBuildState| {
            m.apply(event.event_type, slot.at, error);
        },
    )?;
    let mut before = None;
    let mut shown_before = None;
    let state = update_row(
        &mut *t.task_states()?,
        "task_states",
        (env, task),
        row,
        |s: &mut TaskStateRow| {
            let g = &s.global;
            before = (g.event_count > 0).then_some((g.status, g.latest_event_build_id));
            shown_before = Some(shown(g));
            s.global.apply(event.event_type, slot.at, build, error);
        },
    )?;
    let g = &state.global;
    let after = (g.status, g.latest_event_build_id);
    search::on_state_change(t, env, task, names, before, after)?;

    t.build_events()?
        .insert((env, build, slot.seq), encode(event)?.as_slice())?;
    t.task_events()?.insert((env, task, slot.seq), build)?;
    // Every build showing this task sees its new global state; else just this build.
    if shown_before.as_ref() != Some(&shown(&state.global)) {
        changes::bump_v1_task(t, env, task)?;
    } else {
        changes::bump(t, env, build, Change::Other)?;
    }
    Ok(member)
}

/// What build pages show of a task's global state (`changes.rs`).
fn shown(g: &GlobalTaskState<u128>) -> impl PartialEq {
    (
        g.status,
        g.waiting_for_lock,
        g.status_build_id,
        g.started_at,
        g.completed_at,
        g.error_message.clone(),
    )
}

/// Input of [`register_task`] (§4.2 body), already validated.
#[derive(Serialize, Deserialize)]
pub struct Registration {
    pub task_id: String,
    pub task_namespace: String,
    pub task_name: String,
    /// JSON object text.
    pub task_data: String,
    pub version: Option<String>,
    pub output_uri: Option<String>,
    pub dependency_task_ids: Vec<String>,
    pub salt: u64,
    /// The search entries of `task_data`, computed before the write.
    pub search: DocIndex,
}

/// Registers a task in a build (§4.2 as changed by D17). First write wins for the task's
/// fields; a known hash is `task_referenced`. Every listed dependency becomes an edge,
/// now if the upstream is registered, else as soon as it registers. The single writer
/// makes check-then-insert atomic: concurrent first registrations give one task.
pub fn register_task(
    t: &Tables,
    env: Uuid,
    build: Uuid,
    reg: Registration,
    now: i64,
) -> Result<TaskRow, TrackError> {
    let (e, b) = (env.as_u128(), build.as_u128());
    if !t.has_build(e, b)? {
        return Err(TrackError::BuildNotFound);
    }
    let existing = task_id_in(t, e, &reg.task_id)?;
    let slot = reserve(t, 1, now)?;

    let (task, created) = match existing {
        Some(id) => {
            let row = t
                .tasks()?
                .get((e, id))?
                .map(|raw| decode::<TaskRow>("tasks", raw.value()))
                .transpose()?
                .ok_or_else(|| StoreError::Corrupt {
                    table: "tasks",
                    why: format!("task id {id:x} listed in task_ids has no row"),
                })?;
            (row, false)
        }
        None => (insert_task(t, e, &reg, slot)?, true),
    };
    let id = task.id.as_u128();

    let event_type = if created {
        EventType::TaskPending
    } else {
        EventType::TaskReferenced
    };
    let event = EventRow {
        task: Some(task.id),
        event_type,
        at: slot.at,
        error_message: None,
        metadata: None,
    };
    let row = if created { Row::New } else { Row::Existing };
    let names = (task.task_name.as_str(), task.task_namespace.as_str());
    record_task_event(t, e, (b, id), Some(names), row, slot, &event)?;
    add_dependencies(t, e, id, &reg.task_id, &reg.dependency_task_ids)?;
    Ok(task)
}

/// Inserts a new task with its indexes, and turns the edges that waited for its hash
/// into real edges (D17).
fn insert_task(
    t: &Tables,
    env: u128,
    reg: &Registration,
    slot: Slot,
) -> Result<TaskRow, StoreError> {
    let row = TaskRow {
        id: v7_id(slot.at, reg.salt),
        task_id: reg.task_id.clone(),
        task_namespace: reg.task_namespace.clone(),
        task_name: reg.task_name.clone(),
        version: reg.version.clone(),
        output_uri: reg.output_uri.clone(),
        created_at: slot.at,
        task_data: reg.task_data.clone(),
    };
    let id = row.id.as_u128();
    t.tasks()?.insert((env, id), encode(&row)?.as_slice())?;
    t.task_ids()?.insert((env, row.task_id.as_str()), id)?;
    t.tasks_by_name()?
        .insert((env, row.task_name.as_str(), id), ())?;
    t.tasks_by_namespace()?
        .insert((env, row.task_namespace.as_str(), id), ())?;
    t.add_env_counts(env, 0, 1)?;
    search::index_task(t, env, &row, &reg.search)?;

    let hash = row.task_id.as_str();
    if !t.may_have_pending_edges(env)? {
        return Ok(row);
    }
    let mut waiting = Vec::new();
    {
        let mut pending = t.pending_edges()?;
        let range = (env, hash, 0u128)..=(env, hash, u128::MAX);
        for entry in pending.extract_from_if(range, |_, _| true)? {
            let (k, _) = entry?;
            waiting.push(k.value().2);
        }
    }
    let mut edges = t.task_edges()?;
    let mut dependents = t.task_dependents()?;
    for downstream in waiting {
        edges.insert((env, downstream, id), ())?;
        dependents.insert((env, id, downstream), ())?;
    }
    Ok(row)
}

/// Records `deps` as upstreams of `task`: an edge when the upstream is known, else a
/// pending edge. Idempotent (repeats and re-registrations add nothing twice).
fn add_dependencies(
    t: &Tables,
    env: u128,
    task: u128,
    own_hash: &str,
    deps: &[String],
) -> Result<(), StoreError> {
    if deps.is_empty() {
        return Ok(());
    }
    let mut seen = HashSet::new();
    let mut resolved = Vec::new();
    let mut unresolved = Vec::new();
    {
        let ids = t.task_ids()?;
        for dep in deps {
            if !seen.insert(dep.as_str()) {
                continue;
            }
            if dep == own_hash {
                resolved.push(task);
                continue;
            }
            match ids.get((env, dep.as_str()))? {
                Some(id) => resolved.push(id.value()),
                None => unresolved.push(dep.as_str()),
            }
        }
    }
    if !resolved.is_empty() {
        let mut edges = t.task_edges()?;
        let mut dependents = t.task_dependents()?;
        for up in resolved {
            if edges.get((env, task, up))?.is_none() {
                edges.insert((env, task, up), ())?;
                dependents.insert((env, up, task), ())?;
            }
        }
    }
    if !unresolved.is_empty() {
        let mut pending = t.pending_edges()?;
        for up in unresolved {
            if pending.get((env, up, task))?.is_none() {
                pending.insert((env, up, task), ())?;
            }
        }
        t.note_pending_edge(env);
    }
    Ok(())
}

/// A task-level event as a request gives it: `error_message` travels with `fail`,
/// `lock_owner` with `waiting-for-lock`; `now` is the caller's clock reading.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_type: EventType,
    pub error_message: Option<String>,
    pub lock_owner: Option<String>,
    pub now: i64,
}

impl NewEvent {
    pub fn plain(event_type: EventType, now: i64) -> NewEvent {
        NewEvent {
            event_type,
            error_message: None,
            lock_owner: None,
            now,
        }
    }
}

/// Appends one task-level event for a task of the environment (it need not be a member
/// of the build yet, §3.1) and returns the task's per-build status (§3.3).
pub fn task_event(
    t: &Tables,
    env: Uuid,
    build: Uuid,
    hash: &str,
    new: NewEvent,
) -> Result<TaskStatus, TrackError> {
    let NewEvent {
        event_type,
        error_message,
        lock_owner,
        now,
    } = new;
    let (e, b) = (env.as_u128(), build.as_u128());
    if !t.has_build(e, b)? {
        return Err(TrackError::BuildNotFound);
    }
    let task = task_id_in(t, e, hash)?.ok_or(TrackError::TaskNotFound)?;
    let slot = reserve(t, 1, now)?;
    let event = EventRow {
        task: Some(Uuid::from_u128(task)),
        event_type,
        at: slot.at,
        error_message: error_message.map(cap_message),
        metadata: lock_owner
            .filter(|o| !o.is_empty())
            .map(|o| metadata_json(crate::domain::events::META_LOCK_OWNER, &cap_message(o))),
    };
    Ok(record_task_event(t, e, (b, task), None, Row::Existing, slot, &event)?.status)
}

/// One item of an asset upload (§4.2), body as JSON object text.
#[derive(Serialize, Deserialize)]
pub struct AssetInput {
    pub asset_type: String,
    pub name: String,
    pub body: String,
    /// The body's search entries, computed before the write.
    pub search: DocIndex,
}

/// Upserts assets keyed by (task, type, name) in request order (§4.2): an existing one
/// keeps its id and created_at. A key repeated within the request is written once with
/// the last body, and every occurrence answers with that final state (as upstream).
pub fn upload_assets(
    t: &Tables,
    env: Uuid,
    build: Uuid,
    hash: &str,
    items: Vec<AssetInput>,
    salt: u64,
    now: i64,
) -> Result<Vec<StoredAsset>, TrackError> {
    let (e, b) = (env.as_u128(), build.as_u128());
    if !t.has_build(e, b)? {
        return Err(TrackError::BuildNotFound);
    }
    let task = task_id_in(t, e, hash)?.ok_or(TrackError::TaskNotFound)?;
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let slot = reserve(t, items.len() as u64, now)?;
    let mut assets = t.assets()?;
    // Final state per key, and the key of each request item.
    let mut finals: HashMap<(String, String), AssetRow> = HashMap::new();
    let mut order: Vec<(String, String)> = Vec::with_capacity(items.len());
    // Per key: the body stored before this request, and the final body's index.
    let mut reindex: HashMap<(String, String), (Option<String>, DocIndex)> = HashMap::new();
    let mut added = 0u64;
    for (i, item) in items.into_iter().enumerate() {
        let key = (item.asset_type, item.name);
        let current = match finals.get(&key) {
            Some(row) => Some((row.id, row.created_at)),
            None => {
                let stored = assets
                    .get((e, task, key.0.as_str(), key.1.as_str()))?
                    .map(|raw| decode::<AssetRow>("task_assets", raw.value()))
                    .transpose()?;
                let ids = stored.as_ref().map(|row| (row.id, row.created_at));
                reindex.insert(
                    key.clone(),
                    (stored.map(|row| row.body), DocIndex::default()),
                );
                ids
            }
        };
        if let Some(entry) = reindex.get_mut(&key) {
            entry.1 = item.search;
        }
        let (id, created_at) = current.unwrap_or_else(|| {
            added += 1;
            let at = slot.at + i as i64;
            (v7_id(at, salt.wrapping_add(i as u64)), at)
        });
        finals.insert(
            key.clone(),
            AssetRow {
                id,
                created_at,
                body: item.body,
            },
        );
        order.push(key);
    }
    // Old bodies are parsed before the first write (writer contract); an unchanged body
    // keeps its entries.
    let mut moves = Vec::with_capacity(reindex.len());
    for (key, (old_body, new)) in reindex {
        if finals.get(&key).map(|row| &row.body) == old_body.as_ref() {
            continue;
        }
        let old = old_body
            .as_deref()
            .map(|body| DocIndex::from_text(Some(&key.1), body))
            .transpose()?;
        moves.push((old, new));
    }
    for ((asset_type, name), row) in &finals {
        assets.insert(
            (e, task, asset_type.as_str(), name.as_str()),
            encode(row)?.as_slice(),
        )?;
    }
    drop(assets);
    for (old, new) in &moves {
        search::reindex_asset(t, e, task, old.as_ref(), new)?;
    }
    if added > 0 {
        update_row(
            &mut *t.task_states()?,
            "task_states",
            (e, task),
            Row::Existing,
            |s: &mut TaskStateRow| s.asset_count += added,
        )?;
        changes::bump_v1_task(t, e, task)?;
    }
    Ok(order
        .into_iter()
        .map(|key| {
            let row = finals[&key].clone();
            StoredAsset {
                asset_type: key.0,
                name: key.1,
                row,
            }
        })
        .collect())
}

/// Removes every task-tracking row of an environment (called when it is deleted).
pub fn purge_environment(tx: &WriteTransaction, env: Uuid) -> Result<(), StoreError> {
    let e = env.as_u128();
    tx.open_table(BUILDS)?
        .retain_in(env_bounds(e, |x| (x, 0u128)), |_, _| false)?;
    tx.open_table(TASK_IDS)?
        .retain_in(env_bounds(e, |x| (x, "")), |_, _| false)?;
    tx.open_table(TASKS)?
        .retain_in(env_bounds(e, |x| (x, 0u128)), |_, _| false)?;
    tx.open_table(TASK_STATES)?
        .retain_in(env_bounds(e, |x| (x, 0u128)), |_, _| false)?;
    tx.open_table(TASKS_BY_NAME)?
        .retain_in(env_bounds(e, |x| (x, "", 0u128)), |_, _| false)?;
    tx.open_table(TASKS_BY_NAMESPACE)?
        .retain_in(env_bounds(e, |x| (x, "", 0u128)), |_, _| false)?;
    tx.open_table(BUILD_TASKS)?
        .retain_in(env_bounds(e, |x| (x, 0u128, 0u128)), |_, _| false)?;
    tx.open_table(BUILD_EVENTS)?
        .retain_in(env_bounds(e, |x| (x, 0u128, 0u64)), |_, _| false)?;
    tx.open_table(TASK_EVENTS)?
        .retain_in(env_bounds(e, |x| (x, 0u128, 0u64)), |_, _| false)?;
    tx.open_table(TASK_EDGES)?
        .retain_in(env_bounds(e, |x| (x, 0u128, 0u128)), |_, _| false)?;
    tx.open_table(TASK_DEPENDENTS)?
        .retain_in(env_bounds(e, |x| (x, 0u128, 0u128)), |_, _| false)?;
    tx.open_table(PENDING_EDGES)?
        .retain_in(env_bounds(e, |x| (x, "", 0u128)), |_, _| false)?;
    tx.open_table(ASSETS)?
        .retain_in(env_bounds(e, |x| (x, 0u128, "", "")), |_, _| false)?;
    tx.open_table(ENV_COUNTS)?.remove(e)?;
    Ok(())
}

/// Schema 2 → 3: fills [`TASK_DEPENDENTS`] from [`TASK_EDGES`].
pub(crate) fn fill_dependents(tx: &WriteTransaction) -> Result<(), StoreError> {
    let edges = tx.open_table(TASK_EDGES)?;
    let mut dependents = tx.open_table(TASK_DEPENDENTS)?;
    for entry in edges.iter()? {
        let (env, down, up) = entry?.0.value();
        dependents.insert((env, up, down), ())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------

/// A build's name without decoding the rest of its row (search reads many).
pub(crate) fn build_name_of(raw: &[u8]) -> Result<String, StoreError> {
    #[derive(Deserialize)]
    struct BuildHead {
        #[allow(dead_code)]
        id: Uuid,
        #[allow(dead_code)]
        user_id: Option<Uuid>,
        name: String,
    }
    Ok(decode_prefix::<BuildHead>("builds", raw)?.name)
}

pub fn build(r: &impl Reader, env: Uuid, build: Uuid) -> Result<Option<BuildRow>, StoreError> {
    r.open(BUILDS)?
        .get((env.as_u128(), build.as_u128()))?
        .map(|raw| decode("builds", raw.value()))
        .transpose()
}

/// A page of the environment's builds, newest first, and the total.
/// A page of a tenant's rows, newest first: ids are UUIDv7, so key order is age order.
fn newest_first<T: serde::de::DeserializeOwned>(
    r: &impl Reader,
    def: TableDefinition<(u128, u128), &'static [u8]>,
    name: &'static str,
    env: u128,
    offset: usize,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let table = r.open(def)?;
    let mut out = Vec::with_capacity(limit);
    for entry in table
        .range((env, 0u128)..=(env, u128::MAX))?
        .rev()
        .skip(offset)
        .take(limit)
    {
        let (_, v) = entry?;
        out.push(decode(name, v.value())?);
    }
    Ok(out)
}

pub fn list_builds(
    r: &impl Reader,
    env: Uuid,
    offset: usize,
    limit: usize,
) -> Result<(Vec<BuildRow>, u64), StoreError> {
    let e = env.as_u128();
    let total = counts(r, e)?.0;
    Ok((newest_first(r, BUILDS, "builds", e, offset, limit)?, total))
}

fn task_row(r: &impl Reader, env: u128, task: u128) -> Result<Option<TaskRow>, StoreError> {
    r.open(TASKS)?
        .get((env, task))?
        .map(|raw| decode("tasks", raw.value()))
        .transpose()
}

fn task_state(r: &impl Reader, env: u128, task: u128) -> Result<TaskStateRow, StoreError> {
    state_in(&r.open(TASK_STATES)?, env, task)
}

/// A task's state from the `task_states` table of a read or a batch (default if none).
fn state_in(
    states: &impl ReadableTable<(u128, u128), &'static [u8]>,
    env: u128,
    task: u128,
) -> Result<TaskStateRow, StoreError> {
    Ok(states
        .get((env, task))?
        .map(|raw| decode("task_states", raw.value()))
        .transpose()?
        .unwrap_or_default())
}

pub fn task_by_hash(r: &impl Reader, env: Uuid, hash: &str) -> Result<Option<TaskRow>, StoreError> {
    let e = env.as_u128();
    match task_id_of(r, e, hash)? {
        Some(t) => task_row(r, e, t),
        None => Ok(None),
    }
}

/// The completion check of §3.4 used by locks: the hash is registered in the
/// environment and has a `task_completed` event in some build (completed is sticky in
/// the materialised global state, so one read answers it).
pub fn is_completed(r: &impl Reader, env: Uuid, hash: &str) -> Result<bool, StoreError> {
    let e = env.as_u128();
    match task_id_of(r, e, hash)? {
        Some(t) => Ok(task_state(r, e, t)?.global.is_completed()),
        None => Ok(false),
    }
}

/// [`is_completed`] inside a write batch.
pub(crate) fn is_completed_in(t: &Tables, env: u128, hash: &str) -> Result<bool, StoreError> {
    match task_id_in(t, env, hash)? {
        Some(task) => Ok(state_in(&*t.task_states()?, env, task)?
            .global
            .is_completed()),
        None => Ok(false),
    }
}

/// A task with its materialised state.
pub fn task_with_state(
    r: &impl Reader,
    env: Uuid,
    hash: &str,
) -> Result<Option<(TaskRow, TaskStateRow)>, StoreError> {
    let e = env.as_u128();
    let Some(t) = task_id_of(r, e, hash)? else {
        return Ok(None);
    };
    let Some(row) = task_row(r, e, t)? else {
        return Ok(None);
    };
    Ok(Some((row, task_state(r, e, t)?)))
}

/// A task's direct neighbours in the environment's dependency graph (§2.7 edges).
#[derive(Debug, Default)]
pub struct Neighbours {
    /// Its upstreams ("depends on"), at most the asked limit, in task creation order.
    pub depends_on: Vec<(TaskRow, TaskStateRow)>,
    /// How many upstreams it has (counted up to [`NEIGHBOUR_COUNT_CAP`]).
    pub depends_on_total: u64,
    /// Its downstreams ("used by"), from [`TASK_DEPENDENTS`].
    pub used_by: Vec<(TaskRow, TaskStateRow)>,
    pub used_by_total: u64,
}

/// Neighbour totals stop counting here (a hub task may have millions of dependents).
pub const NEIGHBOUR_COUNT_CAP: u64 = 10_000;

/// The first `limit` upstreams and downstreams of the task with hash `hash`, and their
/// counts. None when the task does not exist in the environment.
pub fn task_neighbours(
    r: &impl Reader,
    env: Uuid,
    hash: &str,
    limit: usize,
) -> Result<Option<Neighbours>, StoreError> {
    let e = env.as_u128();
    let Some(task) = task_id_of(r, e, hash)? else {
        return Ok(None);
    };
    let side = |def: TableDefinition<(u128, u128, u128), ()>| {
        let table = r.open(def)?;
        let mut rows = Vec::new();
        let mut total = 0u64;
        for entry in table.range((e, task, 0u128)..=(e, task, u128::MAX))? {
            let other = entry?.0.value().2;
            total += 1;
            if rows.len() < limit {
                if let Some(row) = task_row(r, e, other)? {
                    rows.push((row, task_state(r, e, other)?));
                }
            }
            if total >= NEIGHBOUR_COUNT_CAP {
                break;
            }
        }
        Ok::<_, StoreError>((rows, total))
    };
    let (depends_on, depends_on_total) = side(TASK_EDGES)?;
    let (used_by, used_by_total) = side(TASK_DEPENDENTS)?;
    Ok(Some(Neighbours {
        depends_on,
        depends_on_total,
        used_by,
        used_by_total,
    }))
}

/// Ids of the build's member tasks, in task creation order.
fn member_ids(r: &impl Reader, env: u128, build: u128) -> Result<Vec<u128>, StoreError> {
    let table = r.open(BUILD_TASKS)?;
    let mut out = Vec::new();
    for entry in table.range((env, build, 0u128)..=(env, build, u128::MAX))? {
        let (k, _) = entry?;
        out.push(k.value().2);
    }
    Ok(out)
}

/// The tasks with ≥1 event in the build (§4.2), with their global state (D18), in task
/// creation order. None when the build does not exist in the environment.
pub fn build_tasks(
    r: &impl Reader,
    env: Uuid,
    build: Uuid,
) -> Result<Option<Vec<(TaskRow, TaskStateRow)>>, StoreError> {
    let (e, b) = (env.as_u128(), build.as_u128());
    if !build_exists(r, e, b)? {
        return Ok(None);
    }
    let mut out = Vec::new();
    for t in member_ids(r, e, b)? {
        if let Some(row) = task_row(r, e, t)? {
            out.push((row, task_state(r, e, t)?));
        }
    }
    Ok(Some(out))
}

/// The build's graph: its member tasks and every stored edge between two of them
/// (`(upstream, downstream)` ids), edges ordered by downstream then upstream.
#[allow(clippy::type_complexity)]
pub fn build_graph(
    r: &impl Reader,
    env: Uuid,
    build: Uuid,
) -> Result<Option<(Vec<(TaskRow, TaskStateRow)>, Vec<(Uuid, Uuid)>)>, StoreError> {
    let e = env.as_u128();
    let Some(nodes) = build_tasks(r, env, build)? else {
        return Ok(None);
    };
    let members: HashSet<u128> = nodes.iter().map(|(t, _)| t.id.as_u128()).collect();
    let edges_table = r.open(TASK_EDGES)?;
    let mut edges = Vec::new();
    for (task, _) in &nodes {
        let down = task.id.as_u128();
        for entry in edges_table.range((e, down, 0u128)..=(e, down, u128::MAX))? {
            let (k, _) = entry?;
            let up = k.value().2;
            if members.contains(&up) {
                edges.push((Uuid::from_u128(up), task.id));
            }
        }
    }
    Ok(Some((nodes, edges)))
}

/// All events of the build, oldest first. None when the build does not exist.
pub fn build_events(
    r: &impl Reader,
    env: Uuid,
    build: Uuid,
) -> Result<Option<Vec<StoredEvent>>, StoreError> {
    let (e, b) = (env.as_u128(), build.as_u128());
    if !build_exists(r, e, b)? {
        return Ok(None);
    }
    let table = r.open(BUILD_EVENTS)?;
    let mut out = Vec::new();
    for entry in table.range((e, b, 0u64)..=(e, b, u64::MAX))? {
        let (k, v) = entry?;
        let row: EventRow = decode("build_events", v.value())?;
        out.push(StoredEvent {
            id: event_id(row.at, k.value().2),
            build_id: build,
            row,
        });
    }
    Ok(Some(out))
}

/// All events of a task across builds, newest first. None when the task is unknown.
pub fn task_events(
    r: &impl Reader,
    env: Uuid,
    hash: &str,
) -> Result<Option<Vec<StoredEvent>>, StoreError> {
    let e = env.as_u128();
    let Some(t) = task_id_of(r, e, hash)? else {
        return Ok(None);
    };
    let refs = r.open(TASK_EVENTS)?;
    let rows = r.open(BUILD_EVENTS)?;
    let mut out = Vec::new();
    for entry in refs.range((e, t, 0u64)..=(e, t, u64::MAX))?.rev() {
        let (k, v) = entry?;
        let (seq, b) = (k.value().2, v.value());
        let Some(raw) = rows.get((e, b, seq))? else {
            return Err(StoreError::Corrupt {
                table: "task_events",
                why: format!("event {seq} has no row"),
            });
        };
        let row: EventRow = decode("build_events", raw.value())?;
        out.push(StoredEvent {
            id: event_id(row.at, seq),
            build_id: Uuid::from_u128(b),
            row,
        });
    }
    Ok(Some(out))
}

/// A page of the environment's tasks, newest first, optionally filtered by exact name
/// and/or namespace (served from the name/namespace indexes), and the filtered total.
pub fn list_tasks(
    r: &impl Reader,
    env: Uuid,
    name: Option<&str>,
    namespace: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<(Vec<TaskRow>, u64), StoreError> {
    let e = env.as_u128();
    let (ids, total) = match (name, namespace) {
        (None, None) => {
            let page = newest_first(r, TASKS, "tasks", e, offset, limit)?;
            return Ok((page, counts(r, e)?.1));
        }
        (Some(name), ns) => {
            let by_name = r.open(TASKS_BY_NAME)?;
            let by_ns = r.open(TASKS_BY_NAMESPACE)?;
            let mut page = Page::new(offset, limit);
            for entry in by_name
                .range((e, name, 0u128)..=(e, name, u128::MAX))?
                .rev()
            {
                let (k, _) = entry?;
                let t = k.value().2;
                if let Some(ns) = ns {
                    if by_ns.get((e, ns, t))?.is_none() {
                        continue;
                    }
                }
                page.offer(t);
            }
            (page.ids, page.total)
        }
        (None, Some(ns)) => {
            let by_ns = r.open(TASKS_BY_NAMESPACE)?;
            let mut page = Page::new(offset, limit);
            for entry in by_ns.range((e, ns, 0u128)..=(e, ns, u128::MAX))?.rev() {
                let (k, _) = entry?;
                page.offer(k.value().2);
            }
            (page.ids, page.total)
        }
    };
    let mut out = Vec::with_capacity(ids.len());
    for t in ids {
        if let Some(row) = task_row(r, e, t)? {
            out.push(row);
        }
    }
    Ok((out, total))
}

/// Collects one page of ids while counting all of them.
struct Page {
    offset: u64,
    limit: usize,
    ids: Vec<u128>,
    total: u64,
}

impl Page {
    fn new(offset: usize, limit: usize) -> Page {
        Page {
            offset: offset as u64,
            limit,
            ids: Vec::new(),
            total: 0,
        }
    }

    fn offer(&mut self, id: u128) {
        if self.total >= self.offset && self.ids.len() < self.limit {
            self.ids.push(id);
        }
        self.total += 1;
    }
}

/// The task's assets, oldest first. None when the task is unknown.
pub fn task_assets(
    r: &impl Reader,
    env: Uuid,
    hash: &str,
) -> Result<Option<Vec<StoredAsset>>, StoreError> {
    let e = env.as_u128();
    let Some(t) = task_id_of(r, e, hash)? else {
        return Ok(None);
    };
    let table = r.open(ASSETS)?;
    let mut out = Vec::new();
    let lower = (e, t, "", "");
    let upper = match t.checked_add(1) {
        Some(next) => Bound::Excluded((e, next, "", "")),
        None => Bound::Unbounded,
    };
    for entry in table.range((Bound::Included(lower), upper))? {
        let (k, v) = entry?;
        let (_, task, asset_type, name) = k.value();
        if task != t {
            break;
        }
        out.push(StoredAsset {
            asset_type: asset_type.to_owned(),
            name: name.to_owned(),
            row: decode("task_assets", v.value())?,
        });
    }
    // Ids sort like created_at, so this is created_at order with ties broken by id.
    out.sort_by_key(|a| a.row.id);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store as store;
    use crate::store::Store;

    fn registration(hash: &str, deps: &[&str]) -> Registration {
        Registration {
            task_id: hash.into(),
            task_namespace: "ns".into(),
            task_name: "T".into(),
            task_data: "{}".into(),
            version: None,
            output_uri: None,
            dependency_task_ids: deps.iter().map(|d| d.to_string()).collect(),
            salt: 7,
            search: DocIndex::default(),
        }
    }

    fn new_build() -> NewBuild {
        NewBuild {
            user_id: None,
            name: "calm-river-10".into(),
            description: None,
            commit_hash: None,
            root_task_ids: vec![],
            salt: 1,
        }
    }

    #[test]
    fn v7_ids_sort_like_their_microsecond_timestamps() {
        let stamps = [
            0,
            999,
            1_000,
            1_001,
            1_770_199_872_123_456,
            1_770_199_872_123_457,
        ];
        let ids: Vec<Uuid> = stamps.iter().map(|at| v7_id(*at, u64::MAX)).collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
        }
        let id = v7_id(1_770_199_872_123_456, 0);
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        // Random bits never outrank time.
        assert!(v7_id(5, u64::MAX) < v7_id(6, 0));
    }

    #[test]
    fn messages_are_capped_at_a_char_boundary() {
        assert_eq!(cap_message("short".into()), "short");
        let s = "é".repeat(MAX_MESSAGE_BYTES); // 2 bytes each
        let capped = cap_message(s);
        assert_eq!(capped.len(), MAX_MESSAGE_BYTES);
        let odd = format!("a{}", "é".repeat(MAX_MESSAGE_BYTES));
        assert_eq!(cap_message(odd).len(), MAX_MESSAGE_BYTES - 1);
    }

    #[test]
    fn the_clock_is_strictly_increasing_and_survives_reopen() {
        let (dir, store) = store();
        let env = Uuid::now_v7();
        let mut last = i64::MIN;
        for _ in 0..50 {
            let row: BuildRow = store
                .write_blocking(move |tx| {
                    Tables::with(tx, |t| {
                        create_build(t, env, new_build(), crate::clock::now_micros())
                    })
                })
                .unwrap();
            assert!(row.created_at > last);
            last = row.created_at;
        }
        store.shutdown();
        drop(store);
        let store = Store::open(&dir.path().join("t.redb"), &crate::store::test_options()).unwrap();
        let row: BuildRow = store
            .write_blocking(move |tx| {
                Tables::with(tx, |t| {
                    create_build(t, env, new_build(), crate::clock::now_micros())
                })
            })
            .unwrap();
        assert!(row.created_at > last);
        store.shutdown();
    }

    #[test]
    fn purge_removes_one_environment_and_keeps_the_other() {
        let (_dir, store) = store();
        let (gone, kept) = (Uuid::now_v7(), Uuid::now_v7());
        for env in [gone, kept] {
            store
                .write_blocking(move |tx| -> Result<(), TrackError> {
                    let t = Tables::new(tx);
                    let b = create_build(&t, env, new_build(), crate::clock::now_micros())?.id;
                    register_task(
                        &t,
                        env,
                        b,
                        registration("down", &["up", "missing"]),
                        crate::clock::now_micros(),
                    )?;
                    register_task(
                        &t,
                        env,
                        b,
                        registration("up", &[]),
                        crate::clock::now_micros(),
                    )?;
                    task_event(
                        &t,
                        env,
                        b,
                        "up",
                        NewEvent::plain(EventType::TaskStarted, crate::clock::now_micros()),
                    )?;
                    upload_assets(
                        &t,
                        env,
                        b,
                        "up",
                        vec![AssetInput {
                            asset_type: "json".into(),
                            name: "m".into(),
                            body: "{}".into(),
                            search: DocIndex::default(),
                        }],
                        3,
                        crate::clock::now_micros(),
                    )?;
                    t.finish()?;
                    Ok(())
                })
                .unwrap();
        }
        store
            .write_blocking(move |tx| purge_environment(tx, gone))
            .unwrap();
        store
            .read_blocking(|tx| -> Result<(), StoreError> {
                let (g, k) = (gone.as_u128(), kept.as_u128());
                let count = |def: TableDefinition<(u128, u128), &'static [u8]>, env: u128| {
                    tx.open_table(def)
                        .unwrap()
                        .range((env, 0u128)..=(env, u128::MAX))
                        .unwrap()
                        .count()
                };
                for def in [BUILDS, TASKS, TASK_STATES] {
                    assert_eq!(count(def, g), 0);
                    assert!(count(def, k) > 0);
                }
                let ids = tx.open_table(TASK_IDS)?;
                assert!(ids.get((g, "up"))?.is_none());
                assert!(ids.get((k, "up"))?.is_some());
                let pending = tx.open_table(PENDING_EDGES)?;
                let left: Vec<u128> = pending.iter()?.map(|e| e.unwrap().0.value().0).collect();
                assert_eq!(left, vec![k], "only the kept env's pending edge");
                let events = tx.open_table(BUILD_EVENTS)?;
                assert!(events.iter()?.all(|e| e.unwrap().0.value().0 == k));
                let refs = tx.open_table(TASK_EVENTS)?;
                assert!(refs.iter()?.all(|e| e.unwrap().0.value().0 == k));
                let edges = tx.open_table(TASK_EDGES)?;
                assert!(edges.iter()?.all(|e| e.unwrap().0.value().0 == k));
                let members = tx.open_table(BUILD_TASKS)?;
                assert!(members.iter()?.all(|e| e.unwrap().0.value().0 == k));
                let assets = tx.open_table(ASSETS)?;
                assert!(assets.iter()?.all(|e| e.unwrap().0.value().0 == k));
                let names = tx.open_table(TASKS_BY_NAME)?;
                assert!(names.iter()?.all(|e| e.unwrap().0.value().0 == k));
                let spaces = tx.open_table(TASKS_BY_NAMESPACE)?;
                assert!(spaces.iter()?.all(|e| e.unwrap().0.value().0 == k));
                assert!(tx.open_table(ENV_COUNTS)?.get(g)?.is_none());
                assert_eq!(tx.open_table(ENV_COUNTS)?.get(k)?.unwrap().value(), (1, 2));
                Ok(())
            })
            .unwrap();
        store.shutdown();
    }
}
