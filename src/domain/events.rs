//! Event types and status enums with their exact wire strings (v1-tasks §3.1–§3.4).
//!
//! Every enum here serialises (serde) and prints (`Display`, `as_str`) as the lower-case
//! snake_case string upstream stores and sends; `parse` accepts exactly those strings
//! (case-sensitive, no trimming) and never panics.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Metadata key of build transitions triggered from the UI (v1-tasks §3.1, §4.1).
pub const META_TRIGGERED_BY_USER_ID: &str = "triggered_by_user_id";
/// Metadata key of `task_waiting_for_lock` events (v1-tasks §3.1, §4.2).
pub const META_LOCK_OWNER: &str = "lock_owner";

/// A string that is not one of an enum's wire values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseEnumError {
    /// Name of the enum that refused the value (`"EventType"`, `"BuildStatus"`, …).
    pub kind: &'static str,
    /// The refused input, verbatim.
    pub input: String,
}

impl fmt::Display for ParseEnumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} value {:?}", self.kind, self.input)
    }
}

impl std::error::Error for ParseEnumError {}

/// Generates `as_str`, `parse`, `ALL`, `Display` and `FromStr` from one table, so the
/// string list cannot drift between directions.
macro_rules! wire_enum {
    ($ty:ident, $kind:literal, [$($variant:ident => $wire:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The exact wire string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $wire),+
                }
            }

            /// Parses an exact wire string (case-sensitive); `None` for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::parse(s).ok_or_else(|| ParseEnumError {
                    kind: $kind,
                    input: s.to_owned(),
                })
            }
        }
    };
}
pub(crate) use wire_enum;

/// The 15 event types (v1-tasks §3.1). Stored in `events.event_type` and returned as
/// `event_type` in EventResponse.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    BuildStarted,
    BuildCompleted,
    BuildFailed,
    BuildCancelled,
    BuildExitEarly,
    TaskPending,
    TaskReferenced,
    TaskStarted,
    TaskSuspended,
    TaskResumed,
    TaskWaitingForLock,
    TaskCompleted,
    TaskFailed,
    TaskSkipped,
    TaskCancelled,
}

wire_enum!(EventType, "EventType", [
    BuildStarted => "build_started",
    BuildCompleted => "build_completed",
    BuildFailed => "build_failed",
    BuildCancelled => "build_cancelled",
    BuildExitEarly => "build_exit_early",
    TaskPending => "task_pending",
    TaskReferenced => "task_referenced",
    TaskStarted => "task_started",
    TaskSuspended => "task_suspended",
    TaskResumed => "task_resumed",
    TaskWaitingForLock => "task_waiting_for_lock",
    TaskCompleted => "task_completed",
    TaskFailed => "task_failed",
    TaskSkipped => "task_skipped",
    TaskCancelled => "task_cancelled",
]);

impl EventType {
    /// Build-level events carry no task (`events.task_id` null) (v1-tasks §3.1).
    pub const fn is_build_level(self) -> bool {
        matches!(
            self,
            EventType::BuildStarted
                | EventType::BuildCompleted
                | EventType::BuildFailed
                | EventType::BuildCancelled
                | EventType::BuildExitEarly
        )
    }

    /// Task-level events carry the task's internal id (v1-tasks §3.1).
    pub const fn is_task_level(self) -> bool {
        !self.is_build_level()
    }

    /// Build-level events that end a build (and set `completed_at`) (v1-tasks §3.2).
    pub const fn is_build_terminal(self) -> bool {
        matches!(
            self,
            EventType::BuildCompleted
                | EventType::BuildFailed
                | EventType::BuildCancelled
                | EventType::BuildExitEarly
        )
    }

    /// The event appended by `POST /builds/{b}/<segment>` (v1-tasks §4.1):
    /// `complete`, `fail`, `cancel`, `exit-early`.
    pub fn from_build_route_segment(segment: &str) -> Option<Self> {
        match segment {
            "complete" => Some(EventType::BuildCompleted),
            "fail" => Some(EventType::BuildFailed),
            "cancel" => Some(EventType::BuildCancelled),
            "exit-early" => Some(EventType::BuildExitEarly),
            _ => None,
        }
    }

    /// The event appended by `PATCH /builds/{b}` with body `{"status": …}` (DECISIONS D6):
    /// only the four terminal statuses are accepted.
    pub const fn from_build_patch_status(status: BuildStatus) -> Option<Self> {
        match status {
            BuildStatus::Completed => Some(EventType::BuildCompleted),
            BuildStatus::Failed => Some(EventType::BuildFailed),
            BuildStatus::Cancelled => Some(EventType::BuildCancelled),
            BuildStatus::ExitEarly => Some(EventType::BuildExitEarly),
            BuildStatus::Pending | BuildStatus::Running => None,
        }
    }

    /// The event appended by `POST /builds/{b}/tasks/{t}/<segment>` (v1-tasks §4.2):
    /// `start`, `complete`, `suspend`, `resume`, `cancel`, `fail`, `waiting-for-lock`.
    pub fn from_task_route_segment(segment: &str) -> Option<Self> {
        match segment {
            "start" => Some(EventType::TaskStarted),
            "complete" => Some(EventType::TaskCompleted),
            "suspend" => Some(EventType::TaskSuspended),
            "resume" => Some(EventType::TaskResumed),
            "cancel" => Some(EventType::TaskCancelled),
            "fail" => Some(EventType::TaskFailed),
            "waiting-for-lock" => Some(EventType::TaskWaitingForLock),
            _ => None,
        }
    }
}

/// Build status (v1-tasks §3.2). `pending` is never observable through the API because
/// creation always appends `build_started`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BuildStatus {
    /// The state before any event (`Default`).
    #[default]
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    ExitEarly,
}

wire_enum!(BuildStatus, "BuildStatus", [
    Pending => "pending",
    Running => "running",
    Completed => "completed",
    Failed => "failed",
    Cancelled => "cancelled",
    ExitEarly => "exit_early",
]);

impl BuildStatus {
    /// `completed`, `failed`, `cancelled`, `exit_early` (v1-tasks §3.2).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            BuildStatus::Completed
                | BuildStatus::Failed
                | BuildStatus::Cancelled
                | BuildStatus::ExitEarly
        )
    }
}

/// Task status (v1-tasks §3.3). The global derivation (§3.4) only ever yields
/// [`TaskStatus::GLOBAL_OBSERVABLE`].
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// The state before any event (`Default`).
    #[default]
    Pending,
    Running,
    Suspended,
    Completed,
    Failed,
    Skipped,
    Cancelled,
}

wire_enum!(TaskStatus, "TaskStatus", [
    Pending => "pending",
    Running => "running",
    Suspended => "suspended",
    Completed => "completed",
    Failed => "failed",
    Skipped => "skipped",
    Cancelled => "cancelled",
]);

impl TaskStatus {
    /// A fixed number per status, 0..=6: stored in search index keys and used as an
    /// array slot. Never renumber (independent of the enum's order on purpose).
    pub fn code(self) -> u8 {
        match self {
            TaskStatus::Pending => 0,
            TaskStatus::Running => 1,
            TaskStatus::Suspended => 2,
            TaskStatus::Completed => 3,
            TaskStatus::Failed => 4,
            TaskStatus::Skipped => 5,
            TaskStatus::Cancelled => 6,
        }
    }

    /// The statuses the global derivation can produce (v1-tasks §3.4: suspended shows as
    /// running, skipped is ignored).
    pub const GLOBAL_OBSERVABLE: &'static [TaskStatus] = &[
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// `completed`, `failed`, `skipped`, `cancelled`: the statuses whose event sets
    /// `completed_at` in the per-build derivation (v1-tasks §3.3).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed
                | TaskStatus::Failed
                | TaskStatus::Skipped
                | TaskStatus::Cancelled
        )
    }
}

/// Upstream writes an optional query value into an event only when it is non-empty
/// (`triggered_by_user_id`, `lock_owner`; v1-tasks §4.1, §4.2).
pub fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT_WIRE: [&str; 15] = [
        "build_started",
        "build_completed",
        "build_failed",
        "build_cancelled",
        "build_exit_early",
        "task_pending",
        "task_referenced",
        "task_started",
        "task_suspended",
        "task_resumed",
        "task_waiting_for_lock",
        "task_completed",
        "task_failed",
        "task_skipped",
        "task_cancelled",
    ];

    #[test]
    fn event_type_wire_strings_round_trip() {
        assert_eq!(EventType::ALL.len(), 15);
        for (t, wire) in EventType::ALL.iter().zip(EVENT_WIRE) {
            assert_eq!(t.as_str(), wire);
            assert_eq!(t.to_string(), wire);
            assert_eq!(EventType::parse(wire), Some(*t));
            assert_eq!(wire.parse::<EventType>(), Ok(*t));
            let json = serde_json::to_string(t).unwrap();
            assert_eq!(json, format!("\"{wire}\""));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), *t);
        }
    }

    #[test]
    fn build_status_wire_strings_round_trip() {
        let wire = [
            "pending",
            "running",
            "completed",
            "failed",
            "cancelled",
            "exit_early",
        ];
        assert_eq!(BuildStatus::ALL.len(), wire.len());
        for (s, w) in BuildStatus::ALL.iter().zip(wire) {
            assert_eq!(s.as_str(), w);
            assert_eq!(BuildStatus::parse(w), Some(*s));
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{w}\""));
            assert_eq!(
                serde_json::from_str::<BuildStatus>(&format!("\"{w}\"")).unwrap(),
                *s
            );
        }
    }

    #[test]
    fn task_status_wire_strings_round_trip() {
        let wire = [
            "pending",
            "running",
            "suspended",
            "completed",
            "failed",
            "skipped",
            "cancelled",
        ];
        assert_eq!(TaskStatus::ALL.len(), wire.len());
        for (s, w) in TaskStatus::ALL.iter().zip(wire) {
            assert_eq!(s.as_str(), w);
            assert_eq!(TaskStatus::parse(w), Some(*s));
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{w}\""));
            assert_eq!(
                serde_json::from_str::<TaskStatus>(&format!("\"{w}\"")).unwrap(),
                *s
            );
        }
    }

    #[test]
    fn parse_rejects_near_misses_without_panicking() {
        for bad in [
            "",
            " task_started",
            "task_started ",
            "TASK_STARTED",
            "Task_Started",
            "task-started",
            "exit-early",
            "EXIT_EARLY",
            "\u{0}",
            "täsk_started",
            "task_started\n",
        ] {
            assert_eq!(EventType::parse(bad), None, "{bad:?}");
            assert_eq!(BuildStatus::parse(bad), None, "{bad:?}");
            assert_eq!(TaskStatus::parse(bad), None, "{bad:?}");
        }
        let err = "nope".parse::<TaskStatus>().unwrap_err();
        assert_eq!(err.kind, "TaskStatus");
        assert_eq!(err.input, "nope");
        assert_eq!(err.to_string(), "unknown TaskStatus value \"nope\"");
    }

    #[test]
    fn event_levels_partition_the_fifteen_types() {
        let build: Vec<_> = EventType::ALL
            .iter()
            .filter(|t| t.is_build_level())
            .collect();
        assert_eq!(build.len(), 5);
        for t in EventType::ALL {
            assert_ne!(t.is_build_level(), t.is_task_level());
            assert_eq!(t.is_build_level(), t.as_str().starts_with("build_"));
            if t.is_build_terminal() {
                assert!(t.is_build_level());
            }
        }
        assert!(!EventType::BuildStarted.is_build_terminal());
    }

    #[test]
    fn route_segments_map_to_events() {
        assert_eq!(
            EventType::from_build_route_segment("exit-early"),
            Some(EventType::BuildExitEarly)
        );
        assert_eq!(
            EventType::from_build_route_segment("complete"),
            Some(EventType::BuildCompleted)
        );
        assert_eq!(
            EventType::from_build_route_segment("fail"),
            Some(EventType::BuildFailed)
        );
        assert_eq!(
            EventType::from_build_route_segment("cancel"),
            Some(EventType::BuildCancelled)
        );
        assert_eq!(EventType::from_build_route_segment("exit_early"), None);
        assert_eq!(EventType::from_build_route_segment("start"), None);
        assert_eq!(
            EventType::from_task_route_segment("waiting-for-lock"),
            Some(EventType::TaskWaitingForLock)
        );
        let task_segments = [
            ("start", EventType::TaskStarted),
            ("complete", EventType::TaskCompleted),
            ("suspend", EventType::TaskSuspended),
            ("resume", EventType::TaskResumed),
            ("cancel", EventType::TaskCancelled),
            ("fail", EventType::TaskFailed),
        ];
        for (seg, ev) in task_segments {
            assert_eq!(EventType::from_task_route_segment(seg), Some(ev));
        }
        assert_eq!(EventType::from_task_route_segment("skip"), None);
        assert_eq!(EventType::from_task_route_segment(""), None);
    }

    #[test]
    fn patch_status_maps_only_terminal_statuses_d6() {
        for s in BuildStatus::ALL {
            let ev = EventType::from_build_patch_status(*s);
            assert_eq!(ev.is_some(), s.is_terminal());
            if let Some(ev) = ev {
                assert!(ev.is_build_terminal());
            }
        }
    }

    #[test]
    fn non_empty_filters_empty_strings() {
        assert_eq!(non_empty(None), None);
        assert_eq!(non_empty(Some("")), None);
        assert_eq!(non_empty(Some("sub-1")), Some("sub-1"));
    }

    #[test]
    fn terminal_sets() {
        assert!(!BuildStatus::Pending.is_terminal());
        assert!(!BuildStatus::Running.is_terminal());
        assert!(BuildStatus::ExitEarly.is_terminal());
        assert!(TaskStatus::Skipped.is_terminal());
        assert!(!TaskStatus::Suspended.is_terminal());
        assert_eq!(TaskStatus::GLOBAL_OBSERVABLE.len(), 5);
        assert!(!TaskStatus::GLOBAL_OBSERVABLE.contains(&TaskStatus::Suspended));
        assert!(!TaskStatus::GLOBAL_OBSERVABLE.contains(&TaskStatus::Skipped));
    }
}
