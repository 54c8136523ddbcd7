//! The v2 tables' migrations.
//!
//! Schema 1 → 2: the v2 layout of the first release with `/api/v2`, rewritten.
//!
//! Version 1 kept every event in `v2_events` (env, seq) with two key-only indexes,
//! kept `v2_tasks_by_time` and `v2_open_claims`, and stored a build's strings before
//! its status. Version 2 stores each event under its build (`BUILD_EVENTS`), points
//! a task's events at their build (`TASK_EVENTS`), drops the two indexes that other
//! tables already answer, and leads a build row with the fields hot paths read.
//!
//! Schema 3 → 4 ([`v3_to_v4`]): a task's row and its plan, instance, execution and
//! event entries move from five tables into one, `TASKS`, keyed by task first.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::Deserialize;

use super::schema::{
    event_entry, row_key, BuildRow, EventRow, Part, BUILDS, BUILD_EVENTS, NO_VALUE, TASKS,
};
use crate::domain::v2::rules::Wake;
use crate::domain::v2::BuildStatus;
use crate::store::codec::{decode, encode};
use crate::store::StoreError;

type Bytes = &'static [u8];
type Str = &'static str;

// Version 3's tables keyed by task, which version 4 keeps in `TASKS` (version 2
// wrote `V3_TASK_EVENTS` first).
pub(crate) const V3_TASKS: TableDefinition<(u128, Str), Bytes> = TableDefinition::new("v2_tasks");
pub(crate) const V3_TASK_PLANS: TableDefinition<(u128, Str, u128), ()> =
    TableDefinition::new("v2_task_plans");
pub(crate) const V3_TASK_INSTANCES: TableDefinition<(u128, Str, i64, u128), ()> =
    TableDefinition::new("v2_task_instances");
pub(crate) const V3_TASK_EXECUTIONS: TableDefinition<(u128, Str, i64, u128), ()> =
    TableDefinition::new("v2_task_executions");
pub(crate) const V3_TASK_EVENTS: TableDefinition<(u128, Str, u64), u128> =
    TableDefinition::new("v2_task_events");

pub(crate) const OLD_EVENTS: TableDefinition<(u128, u64), Bytes> =
    TableDefinition::new("v2_events");
pub(crate) const OLD_TASK_EVENTS: TableDefinition<(u128, Str, u64), ()> =
    TableDefinition::new("v2_task_events");
pub(crate) const OLD_BUILD_EVENTS: TableDefinition<(u128, u128, u64), ()> =
    TableDefinition::new("v2_build_events");
pub(crate) const OLD_TASKS_BY_TIME: TableDefinition<(u128, i64, Str), ()> =
    TableDefinition::new("v2_tasks_by_time");
pub(crate) const OLD_OPEN_CLAIMS: TableDefinition<(u128, u128, Str), ()> =
    TableDefinition::new("v2_open_claims");

/// A build row as version 1 stored it (bincode follows field order).
#[derive(Deserialize)]
struct OldBuildRow {
    name: String,
    description: Option<String>,
    status: BuildStatus,
    root_task_ids: Vec<String>,
    created_at: i64,
    completed_at: Option<i64>,
    last_active_at: i64,
    is_resumed: bool,
    executor_metadata: Option<String>,
    error_message: Option<String>,
    reactive_app_name: Option<String>,
    reactive_tick_kwargs: Option<String>,
    wake: Wake,
    active_plan: Option<u128>,
    generations: u64,
    user_id: Option<u128>,
}

impl From<OldBuildRow> for BuildRow {
    fn from(o: OldBuildRow) -> BuildRow {
        BuildRow {
            status: o.status,
            last_active_at: o.last_active_at,
            active_plan: o.active_plan,
            generations: o.generations,
            created_at: o.created_at,
            completed_at: o.completed_at,
            is_resumed: o.is_resumed,
            wake: o.wake,
            user_id: o.user_id,
            name: o.name,
            description: o.description,
            root_task_ids: o.root_task_ids,
            executor_metadata: o.executor_metadata,
            error_message: o.error_message,
            reactive_app_name: o.reactive_app_name,
            reactive_tick_kwargs: o.reactive_tick_kwargs,
        }
    }
}

/// Rewrites the v2 tables of a version-1 database inside `tx` (the caller commits it
/// with the new version, so a crash leaves version 1 whole).
pub fn v1_to_v2(tx: &WriteTransaction) -> Result<(), StoreError> {
    rewrite_builds(tx)?;
    let events = take_events(tx)?;
    tx.delete_table(OLD_TASK_EVENTS)?;
    tx.delete_table(OLD_BUILD_EVENTS)?;
    tx.delete_table(OLD_TASKS_BY_TIME)?;
    tx.delete_table(OLD_OPEN_CLAIMS)?;
    let mut by_build = tx.open_table(BUILD_EVENTS)?;
    let mut by_task = tx.open_table(V3_TASK_EVENTS)?;
    for (env, seq, bytes) in events {
        let row: EventRow = decode("v2_events", &bytes)?;
        // Version 1 wrote every event with its build; a row without one is kept
        // under the nil build, where only its task's listing reaches it.
        let build = row.build.unwrap_or(0);
        by_build.insert((env, build, seq), bytes.as_slice())?;
        if let Some(task) = &row.task_id {
            by_task.insert((env, task.as_str(), seq), build)?;
        }
    }
    Ok(())
}

fn rewrite_builds(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut table = tx.open_table(BUILDS)?;
    let mut rows = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        let old: OldBuildRow = decode("v2_builds", v.value())?;
        rows.push((k.value(), encode(&BuildRow::from(old))?));
    }
    for (key, bytes) in rows {
        table.insert(key, bytes.as_slice())?;
    }
    Ok(())
}

/// Every version-1 event row, and the old table gone.
fn take_events(tx: &WriteTransaction) -> Result<Vec<(u128, u64, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    {
        let table = tx.open_table(OLD_EVENTS)?;
        for entry in table.iter()? {
            let (k, v) = entry?;
            let (env, seq) = k.value();
            out.push((env, seq, v.value().to_vec()));
        }
    }
    tx.delete_table(OLD_EVENTS)?;
    Ok(out)
}

/// Moves every v2 entry keyed by task into `TASKS`, one table at a time (streamed: the
/// old table is read while the new one is written), then drops the old tables.
pub fn v3_to_v4(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut tasks = tx.open_table(TASKS)?;
    {
        let old = tx.open_table(V3_TASKS)?;
        for entry in old.iter()? {
            let (k, v) = entry?;
            let (env, id) = k.value();
            tasks.insert(row_key(env, id), v.value())?;
        }
    }
    {
        let old = tx.open_table(V3_TASK_PLANS)?;
        for entry in old.iter()? {
            let (k, _) = entry?;
            let (env, id, plan) = k.value();
            tasks.insert(Part::Plan.key(env, id, 0, plan), NO_VALUE)?;
        }
    }
    for (def, part) in [
        (V3_TASK_INSTANCES, Part::Instance),
        (V3_TASK_EXECUTIONS, Part::Execution),
    ] {
        let old = tx.open_table(def)?;
        for entry in old.iter()? {
            let (k, _) = entry?;
            let (env, id, at, row) = k.value();
            tasks.insert(part.key(env, id, at, row), NO_VALUE)?;
        }
    }
    {
        let old = tx.open_table(V3_TASK_EVENTS)?;
        for entry in old.iter()? {
            let (k, v) = entry?;
            let (env, id, seq) = k.value();
            let (key, build) = event_entry(env, id, seq, v.value());
            tasks.insert(key, &build[..])?;
        }
    }
    tx.delete_table(V3_TASKS)?;
    tx.delete_table(V3_TASK_PLANS)?;
    tx.delete_table(V3_TASK_INSTANCES)?;
    tx.delete_table(V3_TASK_EXECUTIONS)?;
    tx.delete_table(V3_TASK_EVENTS)?;
    Ok(())
}
