//! The journaled writes: the hot SDK writes, made durable by a journal record
//! (`journal.rs`) instead of a durable commit each.
//!
//! Each kind is a plain struct holding everything its change depends on, the clock
//! reading and random salts included, so that applying it again after a crash, on the
//! database state it was first applied to, writes exactly the same rows. Its `apply`
//! is the one code path for both the live write and the replay.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::codec::decode;
use super::locks::{self, Acquired, Completion, LockError, LockRow};
use super::tables::Tables;
use super::tasks::TrackError;
use super::tasks::{
    self, AssetInput, BuildRow, NewBuild, NewEvent, Registration, StoredAsset, TaskRow,
};
use super::StoreError;
use crate::domain::events::{EventType, TaskStatus};

/// The record kind byte. Values are stored in journals: never reuse or renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    CreateBuild = 1,
    TransitionBuild = 2,
    RegisterTask = 3,
    TaskEvent = 4,
    UploadAssets = 5,
    LockAcquire = 6,
    LockRenew = 7,
    LockRelease = 8,
    // The v2 registry (`store/v2/ops.rs`).
    V2CreateDeployment = 9,
    V2ActivateDeployment = 10,
    V2PutLimit = 11,
    V2DeleteLimit = 12,
    V2CreateBuild = 13,
    V2EndBuild = 14,
    V2ResumeBuild = 15,
    V2SetReactiveMeta = 16,
    V2Notify = 17,
    V2WakeCandidates = 18,
    V2SchedulerLease = 19,
    V2AddTickSummary = 20,
    V2CreatePlan = 21,
    V2RegisterMembers = 22,
    V2SealPlan = 23,
    V2ClosePlan = 24,
    V2SkipBlocked = 25,
    V2Exclude = 26,
    V2StartMember = 27,
    V2ReportMember = 28,
    V2Preempt = 29,
    V2ActOnMember = 30,
    V2Yield = 31,
    V2UploadArtifacts = 32,
    V2RenewClaim = 33,
    V2ExecutionStopped = 34,
}

/// A write whose journal record is its durability.
pub trait Logged: Serialize + DeserializeOwned + Send + 'static {
    const KIND: Kind;
    type Out: Send + 'static;
    type Err: From<StoreError> + std::fmt::Display + Send + 'static;
    /// Must be deterministic in `self` and the database state. Runs in a batch, whose
    /// table set it writes through.
    fn apply(self, t: &Tables<'_>) -> Result<Self::Out, Self::Err>;
}

/// Applies one journal record again (start-up after a crash). Only writes that
/// succeeded were journaled, so a refusal now means the state differs from the one the
/// record was written against: the start fails rather than diverging silently.
pub(super) fn replay(t: &Tables, kind: u8, payload: &[u8]) -> Result<(), StoreError> {
    match kind {
        k if k == Kind::CreateBuild as u8 => again::<CreateBuild>(t, payload),
        k if k == Kind::TransitionBuild as u8 => again::<TransitionBuild>(t, payload),
        k if k == Kind::RegisterTask as u8 => again::<RegisterTask>(t, payload),
        k if k == Kind::TaskEvent as u8 => again::<TaskEvent>(t, payload),
        k if k == Kind::UploadAssets as u8 => again::<UploadAssets>(t, payload),
        k if k == Kind::LockAcquire as u8 => again::<LockAcquire>(t, payload),
        k if k == Kind::LockRenew as u8 => again::<LockRenew>(t, payload),
        k if k == Kind::LockRelease as u8 => again::<LockRelease>(t, payload),
        other => super::v2::ops::replay(t, other, payload).unwrap_or_else(|| {
            Err(StoreError::Journal(format!(
                "unknown record kind {other} (written by a newer stardag-server?)"
            )))
        }),
    }
}

/// Decodes one record of kind `L` and applies it.
pub(crate) fn again<L: Logged>(t: &Tables, payload: &[u8]) -> Result<(), StoreError> {
    let op: L = decode("journal", payload)?;
    op.apply(t)
        .map(|_| ())
        .map_err(|e| StoreError::Journal(format!("replaying a {:?} record failed: {e}", L::KIND)))
}

/// `POST /builds`.
#[derive(Serialize, Deserialize)]
pub struct CreateBuild {
    pub env: Uuid,
    pub new: NewBuild,
    pub now: i64,
}

impl Logged for CreateBuild {
    const KIND: Kind = Kind::CreateBuild;
    type Out = BuildRow;
    type Err = TrackError;
    fn apply(self, t: &Tables<'_>) -> Result<BuildRow, TrackError> {
        tasks::create_build(t, self.env, self.new, self.now)
    }
}

/// A build's terminal event (`complete`, `fail`, `cancel`, `exit-early`, PATCH).
#[derive(Serialize, Deserialize)]
pub struct TransitionBuild {
    pub env: Uuid,
    pub build: Uuid,
    pub event: EventType,
    pub message: Option<String>,
    pub triggered_by: Option<String>,
    pub now: i64,
}

impl Logged for TransitionBuild {
    const KIND: Kind = Kind::TransitionBuild;
    type Out = BuildRow;
    type Err = TrackError;
    fn apply(self, t: &Tables<'_>) -> Result<BuildRow, TrackError> {
        tasks::transition_build(
            t,
            self.env,
            self.build,
            self.event,
            self.message,
            self.triggered_by,
            self.now,
        )
    }
}

/// `POST /builds/{b}/tasks` and `POST /tasks`.
#[derive(Serialize, Deserialize)]
pub struct RegisterTask {
    pub env: Uuid,
    pub build: Uuid,
    pub reg: Registration,
    pub now: i64,
}

impl Logged for RegisterTask {
    const KIND: Kind = Kind::RegisterTask;
    type Out = TaskRow;
    type Err = TrackError;
    fn apply(self, t: &Tables<'_>) -> Result<TaskRow, TrackError> {
        tasks::register_task(t, self.env, self.build, self.reg, self.now)
    }
}

/// The seven task-event routes.
#[derive(Serialize, Deserialize)]
pub struct TaskEvent {
    pub env: Uuid,
    pub build: Uuid,
    pub task: String,
    pub event: NewEvent,
}

impl Logged for TaskEvent {
    const KIND: Kind = Kind::TaskEvent;
    type Out = TaskStatus;
    type Err = TrackError;
    fn apply(self, t: &Tables<'_>) -> Result<TaskStatus, TrackError> {
        tasks::task_event(t, self.env, self.build, &self.task, self.event)
    }
}

/// `POST /builds/{b}/tasks/{t}/assets`.
#[derive(Serialize, Deserialize)]
pub struct UploadAssets {
    pub env: Uuid,
    pub build: Uuid,
    pub task: String,
    pub items: Vec<AssetInput>,
    pub salt: u64,
    pub now: i64,
}

impl Logged for UploadAssets {
    const KIND: Kind = Kind::UploadAssets;
    type Out = Vec<StoredAsset>;
    type Err = TrackError;
    fn apply(self, t: &Tables<'_>) -> Result<Vec<StoredAsset>, TrackError> {
        tasks::upload_assets(
            t, self.env, self.build, &self.task, self.items, self.salt, self.now,
        )
    }
}

/// `POST /locks/{name}/acquire`.
#[derive(Serialize, Deserialize)]
pub struct LockAcquire {
    pub workspace: Uuid,
    pub env: Uuid,
    pub name: String,
    pub owner: Uuid,
    pub ttl_micros: i64,
    pub check_completion: bool,
    pub now: i64,
}

impl Logged for LockAcquire {
    const KIND: Kind = Kind::LockAcquire;
    type Out = Acquired;
    type Err = LockError;
    fn apply(self, t: &Tables<'_>) -> Result<Acquired, LockError> {
        locks::acquire(
            t,
            self.workspace,
            self.env,
            &self.name,
            self.owner,
            self.ttl_micros,
            self.check_completion,
            self.now,
        )
    }
}

/// `POST /locks/{name}/renew`.
#[derive(Serialize, Deserialize)]
pub struct LockRenew {
    pub env: Uuid,
    pub name: String,
    pub owner: Uuid,
    pub ttl_micros: i64,
    pub now: i64,
}

impl Logged for LockRenew {
    const KIND: Kind = Kind::LockRenew;
    type Out = LockRow;
    type Err = LockError;
    fn apply(self, t: &Tables<'_>) -> Result<LockRow, LockError> {
        locks::renew(
            t,
            self.env,
            &self.name,
            self.owner,
            self.ttl_micros,
            self.now,
        )
    }
}

/// `POST /locks/{name}/release`.
#[derive(Serialize, Deserialize)]
pub struct LockRelease {
    pub env: Uuid,
    pub name: String,
    pub owner: Uuid,
    pub completion: Completion,
    pub now: i64,
}

impl Logged for LockRelease {
    const KIND: Kind = Kind::LockRelease;
    type Out = ();
    type Err = LockError;
    fn apply(self, t: &Tables<'_>) -> Result<(), LockError> {
        locks::release(
            t,
            self.env,
            &self.name,
            self.owner,
            self.completion,
            self.now,
        )
    }
}
