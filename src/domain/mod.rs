//! Pure domain logic of stardag-server: event kinds and statuses, status derivations,
//! slug rules and generated names, workspace roles and invite states. No I/O, no clock,
//! no randomness (callers pass timestamps and random numbers in), no panics.
//!
//! Spec references: `v1-tasks.md` §2–§3, §8; `v1-identity.md` §3.4, §3.7, §4.4–§4.7,
//! §5.1, §7; `DECISIONS.md` D6, D15, D16, D18.

pub mod events;
pub mod limits;
pub mod roles;
pub mod search;
pub mod slug;
pub mod status;
pub mod v2;

pub use events::{BuildStatus, EventType, ParseEnumError, TaskStatus};
pub use roles::{AccessError, InviteStatus, Role, WorkspaceAction};
pub use slug::{validate_slug, PersonalSlug, SlugError};
pub use status::{
    derive_build_state, derive_global_task_state, derive_task_in_build_state, BuildState, EventRef,
    GlobalTaskState, StatusChange, TaskInBuildState, TaskStatusCounts,
};
