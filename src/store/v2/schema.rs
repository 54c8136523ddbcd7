//! The v2 registry's tables and stored rows (`v2-registry.md` §2, docs/v2.md).
//!
//! Every key starts with the environment id (D9): another environment's row is simply
//! not found, and an environment is purged by range. Task ids are the SDK's strings;
//! builds, plans, executions and deployments are client-minted UUIDs; instance ids are
//! derived from their scope and hash ([`instance_id`]), so the lookup by scope is a get.
//! Rows are bincode with a format byte (`codec.rs`); free-form JSON is kept as text.
//!
//! [`Rows`] gives the lookups both a read snapshot ([`Snapshot`]) and the writer's batch
//! ([`Tables`]) use, so the frontier, the closure and the plan reads are written once.

use std::cell::OnceCell;
use std::ops::{Deref, RangeInclusive};

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::domain::v2::rules::Wake;
use crate::domain::v2::{
    AdmittedBy, BuildStatus, ClaimOutcome, DeploymentKind, EventType, ExcludedReason, ExecOutcome,
    TaskStatus,
};
use crate::store::tables::Tables;
use crate::store::StoreError;

type Bytes = &'static [u8];
type Str = &'static str;

/// (env, build) → [`BuildRow`].
pub const BUILDS: TableDefinition<(u128, u128), Bytes> = TableDefinition::new("v2_builds");
/// build → env: build ids are unique across environments (409 `build_id_conflict`).
pub const BUILD_ENVS: TableDefinition<u128, u128> = TableDefinition::new("v2_build_envs");
/// (env, last_active_at, build): `GET /builds`, most recently active first.
pub const BUILDS_BY_ACTIVITY: TableDefinition<(u128, i64, u128), ()> =
    TableDefinition::new("v2_builds_by_activity");
/// (env, status tag, last_active_at, build): `GET /builds?status=`.
pub const BUILDS_BY_STATUS: TableDefinition<(u128, u8, i64, u128), ()> =
    TableDefinition::new("v2_builds_by_status");
/// (env, status tag) → builds: list totals without counting ranges.
pub const BUILD_COUNTS: TableDefinition<(u128, u8), u64> = TableDefinition::new("v2_build_counts");
/// (env, build): running builds with a reactive app, the only ones flags, wake-ups and
/// stall reports look at.
pub const REACTIVE: TableDefinition<(u128, u128), ()> = TableDefinition::new("v2_reactive_builds");
/// (env, deployment) → [`DeploymentRow`].
pub const DEPLOYMENTS: TableDefinition<(u128, u128), Bytes> =
    TableDefinition::new("v2_deployments");
/// (env, kind, app_name, generation) → deployment: generations and the current one.
pub const DEPLOYMENT_GENERATIONS: TableDefinition<(u128, Str, Str, u64), u128> =
    TableDefinition::new("v2_deployment_generations");
/// (env, code_id) → the local deployment of that code.
pub const LOCAL_DEPLOYMENTS: TableDefinition<(u128, Str), u128> =
    TableDefinition::new("v2_local_deployments");
/// (env, settings hash) → the settings body (canonical JSON).
pub const SETTINGS: TableDefinition<(u128, Str), Str> = TableDefinition::new("v2_settings");
/// (env, task id, [`Part`], at, id) → bytes: a task's row and every entry indexed by
/// the task (its plans, instances, executions and events), side by side. A claiming
/// start writes a task's row, an execution entry and an event entry: kept together they
/// dirty one leaf of one tree instead of leaves in three tables (docs/v2.md).
pub const TASKS: TableDefinition<EntryKey, Bytes> = TableDefinition::new("v2_task_entries");
/// (env, status tag, status_at, task id): `GET /tasks`, newest status first (the
/// statuses merged, or one with `?status=`).
pub const TASKS_BY_STATUS: TableDefinition<(u128, u8, i64, Str), ()> =
    TableDefinition::new("v2_tasks_by_status");
/// (env, instance) → [`InstanceRow`] (its edges included).
pub const INSTANCES: TableDefinition<(u128, u128), Bytes> = TableDefinition::new("v2_instances");
/// (env, plan) → [`PlanRow`].
pub const PLANS: TableDefinition<(u128, u128), Bytes> = TableDefinition::new("v2_plans");
/// (env, build, generation) → plan.
pub const BUILD_PLANS: TableDefinition<(u128, u128, u64), u128> =
    TableDefinition::new("v2_build_plans");
/// (env, build, deployment, settings hash) → plan: one plan per scope and build.
pub const PLAN_SCOPES: TableDefinition<(u128, u128, u128, Str), u128> =
    TableDefinition::new("v2_plan_scopes");
/// (env, plan, task id) → [`MemberRow`].
pub const MEMBERS: TableDefinition<(u128, u128, Str), Bytes> = TableDefinition::new("v2_members");
/// (env, execution) → [`ExecutionRow`].
pub const EXECUTIONS: TableDefinition<(u128, u128), Bytes> = TableDefinition::new("v2_executions");
/// (env, build, task id, execution): a build's executions, and per task its attempts.
pub const BUILD_EXECUTIONS: TableDefinition<(u128, u128, Str, u128), ()> =
    TableDefinition::new("v2_build_executions");
/// (env, execution, batch) → the stored [`YieldRow`] answer.
pub const YIELDS: TableDefinition<(u128, u128, u128), Bytes> = TableDefinition::new("v2_yields");
/// (env, task id, artifact type, name) → [`ArtifactRow`].
pub const ARTIFACTS: TableDefinition<(u128, Str, Str, Str), Bytes> =
    TableDefinition::new("v2_artifacts");
/// (env, key) → max_concurrent.
pub const LIMITS: TableDefinition<(u128, Str), u64> = TableDefinition::new("v2_limits");
/// (env, key, task id): tasks holding a claim (live or lapsed) under a limit key.
pub const LIMIT_HOLDERS: TableDefinition<(u128, Str, Str), ()> =
    TableDefinition::new("v2_limit_holders");
/// (env, build, seq) → [`EventRow`]: every event (each belongs to a build), append
/// order.
pub const BUILD_EVENTS: TableDefinition<(u128, u128, u64), Bytes> =
    TableDefinition::new("v2_build_events");
/// (env, build, seq) → [`TickRow`].
pub const TICKS: TableDefinition<(u128, u128, u64), Bytes> = TableDefinition::new("v2_ticks");

/// The key of a [`TASKS`] entry: (env, task id, part, at, id).
pub type EntryKey = (u128, Str, u8, i64, u128);

/// What a [`TASKS`] entry is. Each part of a task is one contiguous range, in (at, id)
/// order; the values of the index parts are empty except where noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Part {
    /// The [`TaskRow`] (at 0, id 0).
    Row = 0,
    /// A plan holding the task as a member (at 0, id the plan): wake-up flags, counters.
    Plan = 1,
    /// An instance of the task (at its created_at, id the instance).
    Instance = 2,
    /// An execution of the task (at its started_at, id the execution).
    Execution = 3,
    /// An event of the task (at its seq, id 0); the value is the event's build, 16 bytes
    /// little-endian (the row is in `BUILD_EVENTS`).
    Event = 4,
}

impl Part {
    pub const ALL: [Part; 5] = [
        Part::Row,
        Part::Plan,
        Part::Instance,
        Part::Execution,
        Part::Event,
    ];

    pub fn key(self, env: u128, task: &str, at: i64, id: u128) -> (u128, &str, u8, i64, u128) {
        (env, task, self as u8, at, id)
    }

    /// Every entry of this part of `task`, in (at, id) order.
    pub fn range(self, env: u128, task: &str) -> RangeInclusive<(u128, &str, u8, i64, u128)> {
        self.key(env, task, i64::MIN, 0)..=self.key(env, task, i64::MAX, u128::MAX)
    }

    pub fn of(tag: u8) -> Option<Part> {
        Part::ALL.into_iter().find(|p| *p as u8 == tag)
    }
}

/// An event entry of `task`: its key (at the event's sequence number, which stays far
/// below `i64::MAX`) and its value, the event's build (the row is in `BUILD_EVENTS`).
pub fn event_entry(
    env: u128,
    task: &str,
    seq: u64,
    build: u128,
) -> ((u128, &str, u8, i64, u128), [u8; 16]) {
    (
        Part::Event.key(env, task, seq as i64, 0),
        build.to_le_bytes(),
    )
}

/// The (build, sequence number) of an event entry, or `None` if its value is not a build id.
pub fn event_of(key: (u128, &str, u8, i64, u128), value: &[u8]) -> Option<(u128, u64)> {
    let build = <[u8; 16]>::try_from(value).ok()?;
    Some((u128::from_le_bytes(build), key.3 as u64))
}

/// The key of a task's row.
pub fn row_key(env: u128, task: &str) -> (u128, &str, u8, i64, u128) {
    Part::Row.key(env, task, 0, 0)
}

/// The value of an index entry of [`TASKS`].
pub const NO_VALUE: &[u8] = &[];

/// The `meta` key of the v2 sequence counter (events and tick summaries).
pub const SEQ_KEY: &str = "v2_seq";

/// Declares [`Rows`] over the v2 tables, its [`Snapshot`] implementation (tables
/// opened lazily, once per snapshot) and its implementation by the writer's [`Tables`].
macro_rules! v2_rows {
    ($($name:ident / $acc:ident: $def:ident => $k:ty, $v:ty;)*) => {
        /// Read access to every v2 table: from a snapshot or from the writer's batch.
        /// On [`Tables`] a table is lent out, so never hold two of the same one.
        pub trait Rows {
            $(fn $name(&self) -> Result<impl Deref<Target = impl ReadableTable<$k, $v>> + '_, StoreError>;)*
        }

        impl Rows for Tables<'_> {
            $(fn $name(&self) -> Result<impl Deref<Target = impl ReadableTable<$k, $v>> + '_, StoreError> {
                self.$acc()
            })*
        }

        /// A read transaction with the v2 tables opened at first use.
        pub struct Snapshot<'a> {
            tx: &'a ReadTransaction,
            $($name: OnceCell<ReadOnlyTable<$k, $v>>,)*
        }

        impl<'a> Snapshot<'a> {
            pub fn new(tx: &'a ReadTransaction) -> Snapshot<'a> {
                Snapshot { tx, $($name: OnceCell::new(),)* }
            }
        }

        impl Rows for Snapshot<'_> {
            $(fn $name(&self) -> Result<impl Deref<Target = impl ReadableTable<$k, $v>> + '_, StoreError> {
                if self.$name.get().is_none() {
                    let _ = self.$name.set(self.tx.open_table($def)?);
                }
                Ok(self.$name.get().expect("opened above"))
            })*
        }

        /// Creates every v2 table (start-up), so readers never meet a missing one.
        pub fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
            $(tx.open_table($def)?;)*
            Ok(())
        }
    };
}

v2_rows! {
    builds / v2_builds: BUILDS => (u128, u128), Bytes;
    build_envs / v2_build_envs: BUILD_ENVS => u128, u128;
    builds_by_activity / v2_builds_by_activity: BUILDS_BY_ACTIVITY => (u128, i64, u128), ();
    builds_by_status / v2_builds_by_status: BUILDS_BY_STATUS => (u128, u8, i64, u128), ();
    build_counts / v2_build_counts: BUILD_COUNTS => (u128, u8), u64;
    reactive / v2_reactive: REACTIVE => (u128, u128), ();
    deployments / v2_deployments: DEPLOYMENTS => (u128, u128), Bytes;
    deployment_generations / v2_deployment_generations: DEPLOYMENT_GENERATIONS => (u128, Str, Str, u64), u128;
    local_deployments / v2_local_deployments: LOCAL_DEPLOYMENTS => (u128, Str), u128;
    settings / v2_settings: SETTINGS => (u128, Str), Str;
    tasks / v2_tasks: TASKS => EntryKey, Bytes;
    tasks_by_status / v2_tasks_by_status: TASKS_BY_STATUS => (u128, u8, i64, Str), ();
    instances / v2_instances: INSTANCES => (u128, u128), Bytes;
    plans / v2_plans: PLANS => (u128, u128), Bytes;
    build_plans / v2_build_plans: BUILD_PLANS => (u128, u128, u64), u128;
    plan_scopes / v2_plan_scopes: PLAN_SCOPES => (u128, u128, u128, Str), u128;
    members / v2_members: MEMBERS => (u128, u128, Str), Bytes;
    executions / v2_executions: EXECUTIONS => (u128, u128), Bytes;
    build_executions / v2_build_executions: BUILD_EXECUTIONS => (u128, u128, Str, u128), ();
    yields / v2_yields: YIELDS => (u128, u128, u128), Bytes;
    artifacts / v2_artifacts: ARTIFACTS => (u128, Str, Str, Str), Bytes;
    limits / v2_limits: LIMITS => (u128, Str), u64;
    limit_holders / v2_limit_holders: LIMIT_HOLDERS => (u128, Str, Str), ();
    build_events / v2_build_events: BUILD_EVENTS => (u128, u128, u64), Bytes;
    ticks / v2_ticks: TICKS => (u128, u128, u64), Bytes;
}

/// A build (§2 `build`). The fields a claiming start reads come first ([`BuildState`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildRow {
    pub status: BuildStatus,
    pub last_active_at: i64,
    /// The activated, not superseded plan (at most one).
    pub active_plan: Option<u128>,
    /// Highest plan generation so far (0: no plan).
    pub generations: u64,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    pub is_resumed: bool,
    pub wake: Wake,
    pub user_id: Option<u128>,
    pub name: String,
    pub description: Option<String>,
    pub root_task_ids: Vec<String>,
    pub executor_metadata: Option<String>,
    /// The message of the last `build_failed`; served only while failed.
    pub error_message: Option<String>,
    pub reactive_app_name: Option<String>,
    pub reactive_tick_kwargs: Option<String>,
}

/// The leading fields of a [`BuildRow`].
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct BuildState {
    pub status: BuildStatus,
    pub last_active_at: i64,
}

impl BuildRow {
    /// Counts in `REACTIVE`: running and reactively scheduled.
    pub fn is_reactive_running(&self) -> bool {
        self.status == BuildStatus::Running && self.reactive_app_name.is_some()
    }
}

/// A deployment (§2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploymentRow {
    pub kind: DeploymentKind,
    pub app_name: String,
    pub code_id: String,
    pub image_id: Option<String>,
    pub modal_app_id: Option<String>,
    pub generation: u64,
    pub deployed_at: i64,
    pub activated_at: Option<i64>,
}

/// A task: its global status, its claim and its identity (§2 `task`). The small,
/// hot fields come first, so [`TaskState`] reads them without the strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRow {
    pub status: TaskStatus,
    pub status_at: i64,
    pub claim_expires_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub preempted_at: Option<i64>,
    pub claim_plan: Option<u128>,
    /// The build of `claim_plan`, kept beside it for claim releases and reads.
    pub claim_build: Option<u128>,
    /// The current (last granted) execution.
    pub execution: Option<u128>,
    pub error_message: Option<String>,
    pub limit_keys: Vec<String>,
    pub namespace: String,
    pub name: String,
    pub version: Option<String>,
    pub output_uri: Option<String>,
}

/// The leading fields of a [`TaskRow`]: what the frontier decides on.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct TaskState {
    pub status: TaskStatus,
    pub status_at: i64,
    pub claim_expires_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub preempted_at: Option<i64>,
}

impl TaskState {
    pub fn live(&self, now: i64) -> bool {
        crate::domain::v2::rules::is_live(self.status, self.claim_expires_at, now)
    }
}

impl TaskRow {
    pub fn new(identity: Identity, now: i64) -> TaskRow {
        TaskRow {
            status: TaskStatus::Pending,
            status_at: now,
            claim_expires_at: None,
            completed_at: None,
            preempted_at: None,
            claim_plan: None,
            claim_build: None,
            execution: None,
            error_message: None,
            limit_keys: Vec::new(),
            namespace: identity.namespace,
            name: identity.name,
            version: identity.version,
            output_uri: identity.output_uri,
        }
    }

    pub fn live(&self, now: i64) -> bool {
        crate::domain::v2::rules::is_live(self.status, self.claim_expires_at, now)
    }

    pub fn identity(&self) -> Identity {
        Identity {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            output_uri: self.output_uri.clone(),
        }
    }
}

/// What a task is, fixed at its first registration (§6.3 step 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub namespace: String,
    pub name: String,
    pub version: Option<String>,
    pub output_uri: Option<String>,
}

impl Identity {
    /// The fields that differ from `other`, in wire names.
    pub fn differences(&self, other: &Identity) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.namespace != other.namespace {
            out.push("task_namespace");
        }
        if self.name != other.name {
            out.push("task_name");
        }
        if self.version != other.version {
            out.push("version");
        }
        if self.output_uri != other.output_uri {
            out.push("output_uri");
        }
        out
    }
}

/// An edge of an instance to an upstream instance (of task `task_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub instance: u128,
    pub task_id: String,
    pub dynamic: bool,
}

/// A task instance of one scope with its edges; its edges first, so
/// [`InstanceEdges`] reads them alone, and `body` last, so [`InstanceHead`] skips it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRow {
    pub expanded_at: Option<i64>,
    pub upstreams: Vec<Edge>,
    pub task_id: String,
    pub instance_hash: String,
    pub deployment: u128,
    pub settings_hash: String,
    pub created_at: i64,
    /// Canonical JSON (sorted keys): equal values have equal text.
    pub body: String,
}

/// The leading fields of an [`InstanceRow`], without its body.
#[derive(Debug, Clone, Deserialize)]
pub struct InstanceHead {
    pub expanded_at: Option<i64>,
    pub upstreams: Vec<Edge>,
    pub task_id: String,
    pub instance_hash: String,
}

/// An instance's expansion and edges: what the frontier and the closure walk read.
#[derive(Debug, Clone, Deserialize)]
pub struct InstanceEdges {
    pub expanded_at: Option<i64>,
    pub upstreams: Vec<Edge>,
}

/// A plan (§2): one scope (deployment, settings) of one build.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanRow {
    pub build: u128,
    pub deployment: u128,
    pub settings_hash: String,
    pub generation: u64,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub sealed_at: Option<i64>,
    pub superseded_at: Option<i64>,
}

impl PlanRow {
    pub fn active(&self) -> bool {
        self.activated_at.is_some() && self.superseded_at.is_none()
    }
}

/// A task's membership of a plan, through one instance. It carries a copy of the
/// instance's expansion and edges (kept in step when they grow, see
/// `store::v2::save_instance`), so the frontier of a plan is one range scan of its
/// members plus the task states, not a lookup of every instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberRow {
    pub instance: u128,
    pub is_root: bool,
    pub admitted_by: AdmittedBy,
    pub excluded_reason: Option<ExcludedReason>,
    pub excluded_at: Option<i64>,
    pub expanded: bool,
    pub upstreams: Vec<Edge>,
}

/// The execution ledger (§2): one row per claiming start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecutionRow {
    pub task_id: String,
    pub plan: u128,
    pub build: u128,
    pub instance: u128,
    pub started_at: i64,
    pub executor: Option<String>,
    pub executor_ref: Option<String>,
    pub executor_metadata: Option<String>,
    pub claim_released_at: Option<i64>,
    pub claim_outcome: Option<ClaimOutcome>,
    pub ended_at: Option<i64>,
    pub outcome: Option<ExecOutcome>,
}

impl ExecutionRow {
    /// Closes the claim with `outcome` unless it is closed; whether it changed.
    pub fn release_claim(&mut self, outcome: ClaimOutcome, now: i64) -> bool {
        if self.claim_released_at.is_some() {
            return false;
        }
        self.claim_released_at = Some(now);
        self.claim_outcome = Some(outcome);
        true
    }

    /// Records the execution's own end unless it has one; whether it changed.
    pub fn end(&mut self, outcome: ExecOutcome, now: i64) -> bool {
        if self.ended_at.is_some() {
            return false;
        }
        self.ended_at = Some(now);
        self.outcome = Some(outcome);
        true
    }

    /// Counts as an interruption for the frontier's `interruptions`.
    pub fn interrupted(&self) -> bool {
        self.claim_outcome == Some(ClaimOutcome::Interrupted)
            || self.outcome == Some(ExecOutcome::Interrupted)
    }
}

/// An event (§6.6); `metadata` is JSON text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRow {
    pub id: u128,
    pub event_type: EventType,
    pub created_at: i64,
    pub build: Option<u128>,
    pub plan: Option<u128>,
    pub execution: Option<u128>,
    pub task_id: Option<String>,
    pub applied: bool,
    pub error_message: Option<String>,
    pub metadata: Option<String>,
}

/// An uploaded artifact; a re-upload replaces `body` only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactRow {
    pub id: u128,
    pub body: String,
    pub created_at: i64,
}

/// A posted tick summary, kept verbatim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TickRow {
    pub id: u128,
    pub outcome: String,
    pub summary: String,
    pub created_at: i64,
}

/// What one registration chunk changed (the wire's MembersResult).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersCounts {
    pub tasks_created: u64,
    pub instances_created: u64,
    pub members_admitted: u64,
    pub closure_admitted: u64,
    pub edges_created: u64,
    pub completed: u64,
    pub invalidated: u64,
    pub diverged: u64,
}

/// The stored answer of a yield, replayed for the same (execution, batch).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct YieldRow {
    pub members: MembersCounts,
    pub dynamic_edges_created: u64,
    pub status: TaskStatus,
    pub execution: Option<u128>,
    pub claim_expires_at: Option<i64>,
}

/// An instance's id, derived from its scope and hash: the same instance always gets
/// the same id, so finding it by scope is one get, and a replayed write mints the same
/// id. SHA-256 over the environment, deployment, settings hash and instance hash, shaped
/// as a version-8 UUID.
pub fn instance_id(env: u128, deployment: u128, settings_hash: &str, instance_hash: &str) -> u128 {
    derived_id(&[
        &env.to_be_bytes(),
        &deployment.to_be_bytes(),
        settings_hash.as_bytes(),
        &[0],
        instance_hash.as_bytes(),
    ])
}

/// A version-8 UUID from SHA-256 over `parts` (each part length-prefixed).
pub fn derived_id(parts: &[&[u8]]) -> u128 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let digest = ctx.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .as_u128()
}

/// An id that sorts by time: a UUIDv7 layout with `micros`' milliseconds and `seq`
/// in the random bits (events and tick summaries; deterministic for replay).
pub fn timed_id(micros: i64, seq: u64) -> u128 {
    let millis = micros.div_euclid(1000).max(0) as u64;
    let mut rand = [0u8; 10];
    rand[2..].copy_from_slice(&seq.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(millis, &rand)
        .into_uuid()
        .as_u128()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_depend_on_every_part_of_the_scope() {
        let a = instance_id(1, 2, "s", "h");
        assert_eq!(a, instance_id(1, 2, "s", "h"));
        assert_ne!(a, instance_id(3, 2, "s", "h"));
        assert_ne!(a, instance_id(1, 3, "s", "h"));
        assert_ne!(a, instance_id(1, 2, "sh", ""));
        assert_eq!(uuid::Uuid::from_u128(a).get_version_num(), 8);
    }

    #[test]
    fn timed_ids_sort_by_time_then_sequence() {
        assert!(timed_id(1_000, 9) < timed_id(2_000, 1));
        assert!(timed_id(1_000, 1) < timed_id(1_000, 2));
        assert_eq!(uuid::Uuid::from_u128(timed_id(5, 5)).get_version_num(), 7);
    }
}
