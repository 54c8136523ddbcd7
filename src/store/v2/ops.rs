//! The v2 writes as journaled operations (`redo.rs`): each holds its input, the
//! environment and the clock reading, so that applying it again after a crash writes
//! the same rows. Every v2 write goes through the writer this way (D33: the same
//! journaled group commit as the v1 hot path).

use serde::{Deserialize, Serialize};

use super::claims::{
    self, ArtifactIn, MemberAction, ReportIn, Start, Transition, YieldIn, Yielded,
};
use super::lifecycle::{self, End, LeaseOp, NewBuild, NewDeployment, Notified, Resume, Resumed};
use super::plans::{self, ClosureOutcome, Excluded, NewPlan};
use super::registration::Item;
use super::schema::{ArtifactRow, BuildRow, DeploymentRow, MembersCounts, PlanRow, TickRow};
use super::{Answer, V2Error};
use crate::domain::v2::rules::Lease;
use crate::domain::v2::{ExcludedReason, ExecOutcome};
use crate::store::redo::{again, Kind, Logged};
use crate::store::tables::Tables;
use crate::store::StoreError;

/// Declares each op's journal kind, output and apply, and the replay dispatch.
macro_rules! ops {
    ($($name:ident => $kind:ident -> $out:ty, |$op:ident, $t:ident| $body:expr;)*) => {
        $(impl Logged for $name {
            const KIND: Kind = Kind::$kind;
            type Out = $out;
            type Err = V2Error;
            fn apply(self, $t: &Tables<'_>) -> Result<$out, V2Error> {
                let $op = self;
                $body
            }
        })*

        /// Applies a v2 journal record again; `None` for a kind that is not v2.
        pub(crate) fn replay(t: &Tables, kind: u8, payload: &[u8]) -> Option<Result<(), StoreError>> {
            $(if kind == Kind::$kind as u8 {
                return Some(again::<$name>(t, payload));
            })*
            None
        }
    };
}

#[derive(Serialize, Deserialize)]
pub struct CreateDeployment {
    pub env: u128,
    pub deployment: NewDeployment,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct ActivateDeployment {
    pub env: u128,
    pub id: u128,
    pub modal_app_id: Option<String>,
    pub image_id: Option<String>,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct PutLimit {
    pub env: u128,
    pub key: String,
    pub max: u64,
}

#[derive(Serialize, Deserialize)]
pub struct DeleteLimit {
    pub env: u128,
    pub key: String,
}

#[derive(Serialize, Deserialize)]
pub struct CreateBuild {
    pub env: u128,
    pub build: NewBuild,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct EndBuild {
    pub env: u128,
    pub id: u128,
    pub end: End,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct ResumeBuild {
    pub env: u128,
    pub id: u128,
    pub resume: Resume,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct SetReactiveMeta {
    pub env: u128,
    pub id: u128,
    pub app_name: String,
    pub tick_kwargs: Option<String>,
}

/// `POST notify` (`set: Some(can_spawn)`) or `DELETE notify` (`None`).
#[derive(Serialize, Deserialize)]
pub struct Notify {
    pub env: u128,
    pub id: u128,
    pub set: Option<bool>,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct WakeCandidates {
    pub env: u128,
    pub limit: usize,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct SchedulerLease {
    pub env: u128,
    pub id: u128,
    pub owner: String,
    pub op: LeaseOp,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct AddTickSummary {
    pub env: u128,
    pub id: u128,
    pub outcome: String,
    pub summary: String,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct CreatePlan {
    pub env: u128,
    pub build: u128,
    pub plan: NewPlan,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct RegisterMembers {
    pub env: u128,
    pub plan: u128,
    pub items: Vec<Item>,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct SealPlan {
    pub env: u128,
    pub plan: u128,
    pub now: i64,
}

/// The closure step of a frontier read that found something to admit or a conflict.
#[derive(Serialize, Deserialize)]
pub struct ClosePlan {
    pub env: u128,
    pub build: u128,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct SkipBlocked {
    pub env: u128,
    pub build: u128,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct Exclude {
    pub env: u128,
    pub plan: u128,
    pub task_id: String,
    pub reason: ExcludedReason,
    pub message: Option<String>,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct StartMember {
    pub env: u128,
    pub start: Start,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct ReportMember {
    pub env: u128,
    pub report: ReportIn,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct Preempt {
    pub env: u128,
    pub plan: u128,
    pub task_id: String,
    pub execution: u128,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct ActOnMember {
    pub env: u128,
    pub plan: u128,
    pub task_id: String,
    pub action: MemberAction,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct Yield {
    pub env: u128,
    pub input: YieldIn,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct UploadArtifacts {
    pub env: u128,
    pub plan: u128,
    pub task_id: String,
    pub items: Vec<ArtifactIn>,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct RenewClaim {
    pub env: u128,
    pub task_id: String,
    pub execution: u128,
    pub ttl_seconds: Option<i64>,
    pub now: i64,
}

#[derive(Serialize, Deserialize)]
pub struct ExecutionStopped {
    pub env: u128,
    pub execution: u128,
    pub outcome: ExecOutcome,
    pub now: i64,
}

ops! {
    CreateDeployment => V2CreateDeployment -> (u128, DeploymentRow, bool),
        |op, t| lifecycle::create_deployment(t, op.env, op.deployment, op.now);
    ActivateDeployment => V2ActivateDeployment -> DeploymentRow,
        |op, t| lifecycle::activate_deployment(t, op.env, op.id, op.modal_app_id, op.image_id, op.now);
    PutLimit => V2PutLimit -> (),
        |op, t| Ok(lifecycle::put_limit(t, op.env, &op.key, op.max)?);
    DeleteLimit => V2DeleteLimit -> (),
        |op, t| lifecycle::delete_limit(t, op.env, &op.key);
    CreateBuild => V2CreateBuild -> BuildRow,
        |op, t| lifecycle::create_build(t, op.env, op.build, op.now);
    EndBuild => V2EndBuild -> Answer<BuildRow>,
        |op, t| lifecycle::end(t, op.env, op.id, op.end, op.now);
    ResumeBuild => V2ResumeBuild -> Resumed,
        |op, t| lifecycle::resume(t, op.env, op.id, op.resume, op.now);
    SetReactiveMeta => V2SetReactiveMeta -> BuildRow,
        |op, t| lifecycle::set_reactive_meta(t, op.env, op.id, op.app_name, op.tick_kwargs);
    Notify => V2Notify -> Notified,
        |op, t| lifecycle::notify(t, op.env, op.id, op.set, op.now);
    WakeCandidates => V2WakeCandidates -> Vec<(u128, String)>,
        |op, t| lifecycle::wake_candidates(t, op.env, op.limit, op.now);
    SchedulerLease => V2SchedulerLease -> Lease,
        |op, t| lifecycle::lease(t, op.env, op.id, &op.owner, op.op, op.now);
    AddTickSummary => V2AddTickSummary -> TickRow,
        |op, t| lifecycle::add_tick_summary(t, op.env, op.id, op.outcome, op.summary, op.now);
    CreatePlan => V2CreatePlan -> (u128, PlanRow, bool),
        |op, t| plans::create_plan(t, op.env, op.build, op.plan, op.now);
    RegisterMembers => V2RegisterMembers -> MembersCounts,
        |op, t| plans::register_members(t, op.env, op.plan, op.items, op.now);
    SealPlan => V2SealPlan -> Answer<PlanRow>,
        |op, t| plans::seal(t, op.env, op.plan, op.now);
    ClosePlan => V2ClosePlan -> ClosureOutcome,
        |op, t| plans::close(t, op.env, op.build, op.now);
    SkipBlocked => V2SkipBlocked -> (Vec<String>, Option<u128>),
        |op, t| plans::skip_blocked(t, op.env, op.build, op.now);
    Exclude => V2Exclude -> Excluded,
        |op, t| plans::exclude(t, op.env, op.plan, &op.task_id, op.reason, op.message, op.now);
    StartMember => V2StartMember -> Answer<Transition>,
        |op, t| claims::start(t, op.env, op.start, op.now);
    ReportMember => V2ReportMember -> Answer<Transition>,
        |op, t| claims::report(t, op.env, op.report, op.now);
    Preempt => V2Preempt -> Transition,
        |op, t| claims::preempt(t, op.env, op.plan, &op.task_id, op.execution, op.now);
    ActOnMember => V2ActOnMember -> Transition,
        |op, t| claims::member_action(t, op.env, op.plan, &op.task_id, op.action, op.now);
    Yield => V2Yield -> Yielded,
        |op, t| claims::yield_(t, op.env, op.input, op.now);
    UploadArtifacts => V2UploadArtifacts -> Vec<(ArtifactIn, ArtifactRow)>,
        |op, t| claims::upload_artifacts(t, op.env, op.plan, &op.task_id, op.items, op.now);
    RenewClaim => V2RenewClaim -> Transition,
        |op, t| claims::renew(t, op.env, &op.task_id, op.execution, op.ttl_seconds, op.now);
    ExecutionStopped => V2ExecutionStopped -> Transition,
        |op, t| claims::stopped(t, op.env, op.execution, op.outcome, op.now);
}
