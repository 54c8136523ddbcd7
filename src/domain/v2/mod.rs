//! The v2 registry's vocabulary (`v2-registry.md` §2, §4, §6): statuses, claim and
//! execution outcomes, admission and exclusion reasons, event types, and the constants
//! the state machines use. The rules themselves are in [`rules`], the refusal codes in
//! [`refusal`]. No I/O, no clock: callers pass `now` (epoch microseconds) in.

pub mod refusal;
pub mod rules;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::events::{wire_enum, ParseEnumError};

pub use refusal::{Code, Refusal};

/// Microseconds in a second: every v2 time is epoch microseconds.
pub const SECOND: i64 = 1_000_000;
/// Claim TTL when a start or renewal names none (§2).
pub const DEFAULT_CLAIM_TTL_SECS: i64 = 3600;
/// Longest claim TTL (§2, D33: outside 1..86400 is 400 `invalid_claim_ttl`).
pub const MAX_CLAIM_TTL_SECS: i64 = 86_400;
/// A preempted claim stays live this long for the restart (§5.4 `preempt`).
pub const PREEMPT_GRACE: i64 = 120 * SECOND;
/// A build handed out by `wake-candidates` is not handed out again within this (§6.7).
pub const WAKE_HANDOUT_WINDOW: i64 = 120 * SECOND;
/// `observed_at` may be this far ahead of the server clock (§6.3).
pub const CLOCK_SKEW_TOLERANCE: i64 = 5 * SECOND;
/// Items of one registration chunk (§5.3).
pub const MAX_CHUNK_ITEMS: usize = 1000;
/// Task ids a `plan_incomplete` refusal names (§5.2).
pub const MAX_NAMED_TASKS: usize = 50;
/// Namespace of the settings hash: uuid5 over canonical JSON (§3.1).
pub const SETTINGS_NAMESPACE: uuid::Uuid = uuid::uuid!("d9bc3c1c-6c3b-534d-be75-aaa4c8d71c59");

/// A task's global status (§6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Suspended,
    Interrupted,
    Cancelled,
    Skipped,
}

wire_enum!(TaskStatus, "TaskStatus", [
    Pending => "pending",
    Running => "running",
    Completed => "completed",
    Failed => "failed",
    Suspended => "suspended",
    Interrupted => "interrupted",
    Cancelled => "cancelled",
    Skipped => "skipped",
]);

impl TaskStatus {
    /// A one-byte tag for index keys; stable, stored in the database.
    pub fn tag(self) -> u8 {
        self as u8
    }
}

/// A build's status (§6.1). `pending` exists in the SDK's enum but is never produced;
/// it still parses, so `GET /builds?status=pending` is valid and matches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BuildStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    ExitEarly,
    Pending,
}

wire_enum!(BuildStatus, "BuildStatus", [
    Running => "running",
    Completed => "completed",
    Failed => "failed",
    Cancelled => "cancelled",
    ExitEarly => "exit_early",
    Pending => "pending",
]);

impl BuildStatus {
    /// Completed, failed and cancelled are sticky (§6.1).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BuildStatus::Completed | BuildStatus::Failed | BuildStatus::Cancelled
        )
    }

    pub fn tag(self) -> u8 {
        self as u8
    }

    /// The build event recorded when a build enters this status.
    pub fn event(self) -> EventType {
        match self {
            BuildStatus::Running | BuildStatus::Pending => EventType::BuildStarted,
            BuildStatus::Completed => EventType::BuildCompleted,
            BuildStatus::Failed => EventType::BuildFailed,
            BuildStatus::Cancelled => EventType::BuildCancelled,
            BuildStatus::ExitEarly => EventType::BuildExitEarly,
        }
    }
}

/// How the server closed an execution's claim (§6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimOutcome {
    Completed,
    Failed,
    Interrupted,
    Suspended,
    Cancelled,
    Released,
    TakenOver,
    Lapsed,
}

wire_enum!(ClaimOutcome, "ClaimOutcome", [
    Completed => "completed",
    Failed => "failed",
    Interrupted => "interrupted",
    Suspended => "suspended",
    Cancelled => "cancelled",
    Released => "released",
    TakenOver => "taken_over",
    Lapsed => "lapsed",
]);

/// How an execution itself ended: its own report, or an operator's (§6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecOutcome {
    Completed,
    Failed,
    Interrupted,
    Suspended,
    Stopped,
    Lost,
}

wire_enum!(ExecOutcome, "ExecOutcome", [
    Completed => "completed",
    Failed => "failed",
    Interrupted => "interrupted",
    Suspended => "suspended",
    Stopped => "stopped",
    Lost => "lost",
]);

/// Why a task became a member of a plan (§2 `plan_member`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdmittedBy {
    Root,
    Static,
    Dynamic,
    Closure,
}

wire_enum!(AdmittedBy, "AdmittedBy", [
    Root => "root",
    Static => "static",
    Dynamic => "dynamic",
    Closure => "closure",
]);

/// Why a member was given up on in its plan (§6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExcludedReason {
    Operator,
    DiscoveryFailed,
    UpstreamExcluded,
}

wire_enum!(ExcludedReason, "ExcludedReason", [
    Operator => "operator",
    DiscoveryFailed => "discovery_failed",
    UpstreamExcluded => "upstream_excluded",
]);

/// `local` or `modal` (§5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentKind {
    Local,
    Modal,
}

wire_enum!(DeploymentKind, "DeploymentKind", [
    Local => "local",
    Modal => "modal",
]);

/// The v2 event types (§6.6, upstream's set, D33). Refused reports are recorded under
/// their report's type with `report_applied: false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    BuildStarted,
    BuildCompleted,
    BuildFailed,
    BuildCancelled,
    BuildExitEarly,
    BuildResumed,
    TaskPending,
    TaskReferenced,
    TaskStarted,
    TaskCompleted,
    TaskFailed,
    TaskInterrupted,
    TaskSuspended,
    TaskYielded,
    TaskCancelled,
    TaskSkipped,
    TaskRetried,
    TaskExcluded,
    TaskObservedComplete,
    TaskInvalidated,
    TaskStructureDiverged,
}

wire_enum!(EventType, "EventType", [
    BuildStarted => "build_started",
    BuildCompleted => "build_completed",
    BuildFailed => "build_failed",
    BuildCancelled => "build_cancelled",
    BuildExitEarly => "build_exit_early",
    BuildResumed => "build_resumed",
    TaskPending => "task_pending",
    TaskReferenced => "task_referenced",
    TaskStarted => "task_started",
    TaskCompleted => "task_completed",
    TaskFailed => "task_failed",
    TaskInterrupted => "task_interrupted",
    TaskSuspended => "task_suspended",
    TaskYielded => "task_yielded",
    TaskCancelled => "task_cancelled",
    TaskSkipped => "task_skipped",
    TaskRetried => "task_retried",
    TaskExcluded => "task_excluded",
    TaskObservedComplete => "task_observed_complete",
    TaskInvalidated => "task_invalidated",
    TaskStructureDiverged => "task_structure_diverged",
]);

/// The task status an execution report moves its task to, with the claim's and the
/// execution's outcome and the event it records (§5.4 report rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Report {
    Complete,
    Fail,
    Interrupt,
    Suspend,
}

impl Report {
    pub fn status(self) -> TaskStatus {
        match self {
            Report::Complete => TaskStatus::Completed,
            Report::Fail => TaskStatus::Failed,
            Report::Interrupt => TaskStatus::Interrupted,
            Report::Suspend => TaskStatus::Suspended,
        }
    }

    pub fn claim_outcome(self) -> ClaimOutcome {
        match self {
            Report::Complete => ClaimOutcome::Completed,
            Report::Fail => ClaimOutcome::Failed,
            Report::Interrupt => ClaimOutcome::Interrupted,
            Report::Suspend => ClaimOutcome::Suspended,
        }
    }

    pub fn exec_outcome(self) -> ExecOutcome {
        match self {
            Report::Complete => ExecOutcome::Completed,
            Report::Fail => ExecOutcome::Failed,
            Report::Interrupt => ExecOutcome::Interrupted,
            Report::Suspend => ExecOutcome::Suspended,
        }
    }

    pub fn event(self) -> EventType {
        match self {
            Report::Complete => EventType::TaskCompleted,
            Report::Fail => EventType::TaskFailed,
            Report::Interrupt => EventType::TaskInterrupted,
            Report::Suspend => EventType::TaskSuspended,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(s.as_str()), Some(*s));
        }
        for s in EventType::ALL {
            assert_eq!(EventType::from_str(s.as_str()).unwrap(), *s);
        }
        assert_eq!(BuildStatus::ExitEarly.as_str(), "exit_early");
        assert_eq!(ClaimOutcome::TakenOver.as_str(), "taken_over");
        assert!(BuildStatus::parse("EXIT_EARLY").is_none());
    }

    #[test]
    fn terminal_build_statuses() {
        let terminal: Vec<_> = BuildStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(terminal, ["completed", "failed", "cancelled"]);
    }

    #[test]
    fn status_tags_are_distinct() {
        let mut tags: Vec<u8> = TaskStatus::ALL.iter().map(|s| s.tag()).collect();
        tags.dedup();
        assert_eq!(tags.len(), TaskStatus::ALL.len());
    }
}
