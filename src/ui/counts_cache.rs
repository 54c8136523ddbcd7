//! Per-build task status counts for the builds list (P4, ui.md §9 row 2), kept per
//! process in a [`StampedCache`]: valid while the build's change counter and the
//! environment-wide generation read what they read when the counts were computed
//! (v1: task events in the build and any change of a member's global state, D18; v2:
//! saves of the build, its plans and members, their tasks, executions and events).

use std::collections::BTreeMap;

use crate::store::stamped_cache::StampedCache;

/// Task counts by status.
pub type Counts = BTreeMap<&'static str, u64>;

/// (environment, build) → counts, at most [`crate::store::stamped_cache::CAPACITY`]
/// builds (a few hundred bytes each).
pub type CountsCache = StampedCache<Counts>;
