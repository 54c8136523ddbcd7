//! Status derivations from events (v1-tasks §3.2–§3.4, DECISIONS D18), in two forms:
//!
//! * **Reducers** — [`BuildState`], [`TaskInBuildState`], [`GlobalTaskState`]: small
//!   structs with an O(1) `apply` per event, meant to be materialised by the store in the
//!   same write transaction that appends the event (ARCHITECTURE "Materialise what is read
//!   often"). `apply` returns a [`StatusChange`] so the store can keep status indexes and
//!   [`TaskStatusCounts`] up to date.
//! * **Reference derivations** — [`derive_build_state`], [`derive_task_in_build_state`],
//!   [`derive_global_task_state`]: written declaratively from the full event list (not as a
//!   fold over `apply`), so that tests can check reducer == derivation on random
//!   sequences, and so that a state can be rebuilt from the event log (migrations,
//!   repair).
//!
//! # Event order
//!
//! Upstream orders events by `created_at` only (ties unordered, v1-tasks §1.4); we fold in
//! **append order** (DECISIONS D8: events keep their append order). Both agree as long as
//! the server never assigns a `created_at` earlier than the previous event's
//! (recommended: `at = max(now, last_at)` in the writer). The only rule that looks at
//! timestamp *values* instead of order is the "latest event" of a task used by search's
//! `build_id`/`build_name` (v1-tasks §4.4 item 3): it is the maximum `created_at`, ties
//! going to the later-appended event, which matches the (created_at, sequence) order even
//! if clocks misbehave.
//!
//! # Why everything is O(1)
//!
//! * Build (§3.2) and per-build task (§3.3) status are "last event wins" folds.
//! * The global status (§3.4 batched) is "`completed` is sticky, otherwise the latest of
//!   started/resumed/failed/cancelled wins", and every side field is either "latest event
//!   of kind X", "earliest start before completion" or a flag — each depends only on the
//!   current state and the new event. No per-build memory is needed: a task's global
//!   state never has to look at what another build did *before*, because upstream's rule
//!   is defined on the single merged, time-ordered stream of all builds.
//! * "Latest event across builds" is a running maximum of `(at, append order)`.
//!
//! What is **not** O(1): counting tasks by *global* status per build. A global status
//! change of one task would have to update the counts of every build the task is in. The
//! store can keep O(1) counts by **per-build** status (feed [`TaskInBuildState::apply`]'s
//! change into a per-build [`TaskStatusCounts`]), or global counts per environment (feed
//! [`GlobalTaskState::apply`]'s change into one per-environment [`TaskStatusCounts`]).
//!
//! Nothing here ever "un-applies" an event: events are immutable and builds are only
//! deleted together with their environment (v1-tasks §2.1, §2.6). Should single builds
//! ever become deletable, rebuild affected states with the reference derivations.
//!
//! Timestamps are `i64` microseconds since the Unix epoch. No function here panics.

use serde::{Deserialize, Serialize};

use super::events::{BuildStatus, EventType, TaskStatus};

/// A borrowed view of one stored event, as the derivations need it.
///
/// `B` is the build-id type (the server uses `uuid::Uuid`; tests use integers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRef<'a, B> {
    pub event_type: EventType,
    /// `created_at`, microseconds since the Unix epoch.
    pub at: i64,
    pub build_id: B,
    /// `events.error_message` (task failures, build failures, exit-early reason).
    pub error_message: Option<&'a str>,
    /// `event_metadata.triggered_by_user_id` when it is a string (build transitions).
    pub triggered_by_user_id: Option<&'a str>,
}

impl<'a, B> EventRef<'a, B> {
    /// An event without error message or metadata.
    pub fn new(event_type: EventType, at: i64, build_id: B) -> Self {
        EventRef {
            event_type,
            at,
            build_id,
            error_message: None,
            triggered_by_user_id: None,
        }
    }

    /// Sets `error_message`.
    pub fn with_error(mut self, error_message: Option<&'a str>) -> Self {
        self.error_message = error_message;
        self
    }

    /// Sets `triggered_by_user_id`.
    pub fn with_triggered_by(mut self, triggered_by_user_id: Option<&'a str>) -> Self {
        self.triggered_by_user_id = triggered_by_user_id;
        self
    }
}

/// What one `apply` did to a status. `before` is `None` when the state had seen no event
/// yet (for a per-build task state: the task just became a member of the build,
/// v1-tasks §2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusChange<S> {
    pub before: Option<S>,
    pub after: S,
}

impl<S: PartialEq + Copy> StatusChange<S> {
    /// True when the status differs from before (or the state is new).
    pub fn changed(&self) -> bool {
        self.before != Some(self.after)
    }
}

// ---------------------------------------------------------------------------------------
// §3.2 Build status
// ---------------------------------------------------------------------------------------

/// Materialised build status (v1-tasks §3.2): BuildResponse's `status`, `started_at`,
/// `completed_at` and the raw `triggered_by_user_id` behind `status_triggered_by_user`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildState {
    pub status: BuildStatus,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// The winning event's `triggered_by_user_id` (an OIDC `sub` / `users.external_id`),
    /// resolved to a user at read time (§3.2).
    pub triggered_by_user_id: Option<String>,
    /// Number of build-level events applied.
    pub event_count: u64,
}

impl BuildState {
    /// The state before any event: `pending`, everything null (§3.2).
    pub fn new() -> Self {
        BuildState::default()
    }

    /// Applies one event of this build in append order. Task-level events are ignored
    /// (`None`, state untouched): task events never influence build status (§3.2).
    pub fn apply(
        &mut self,
        event_type: EventType,
        at: i64,
        triggered_by_user_id: Option<&str>,
    ) -> Option<StatusChange<BuildStatus>> {
        let before = (self.event_count > 0).then_some(self.status);
        match event_type {
            // §3.2: build_started → running, started_at = event time, triggered-by cleared.
            EventType::BuildStarted => {
                self.status = BuildStatus::Running;
                self.started_at = Some(at);
                self.triggered_by_user_id = None;
            }
            // §3.2: completed/failed/cancelled → that status, completed_at = event time,
            // triggered-by = the event's metadata (or null).
            EventType::BuildCompleted | EventType::BuildFailed | EventType::BuildCancelled => {
                self.status = match event_type {
                    EventType::BuildCompleted => BuildStatus::Completed,
                    EventType::BuildFailed => BuildStatus::Failed,
                    _ => BuildStatus::Cancelled,
                };
                self.completed_at = Some(at);
                self.triggered_by_user_id = triggered_by_user_id.map(str::to_owned);
            }
            // §3.2: build_exit_early → exit_early, completed_at = event time, triggered-by
            // cleared.
            EventType::BuildExitEarly => {
                self.status = BuildStatus::ExitEarly;
                self.completed_at = Some(at);
                self.triggered_by_user_id = None;
            }
            // §3.2: task events never influence build status.
            _ => return None,
        }
        self.event_count = self.event_count.saturating_add(1);
        Some(StatusChange {
            before,
            after: self.status,
        })
    }

    /// [`BuildState::apply`] on an [`EventRef`].
    pub fn apply_event<B>(&mut self, event: &EventRef<'_, B>) -> Option<StatusChange<BuildStatus>> {
        self.apply(event.event_type, event.at, event.triggered_by_user_id)
    }
}

/// Reference derivation of §3.2 from a build's events (append order; task-level events are
/// skipped). Written declaratively: the status and triggered-by come from the last
/// build-level event, `started_at` from the last `build_started`, `completed_at` from the
/// last terminal event.
pub fn derive_build_state<B>(events: &[EventRef<'_, B>]) -> BuildState {
    let build_events: Vec<&EventRef<'_, B>> = events
        .iter()
        .filter(|e| e.event_type.is_build_level())
        .collect();
    let last = build_events.last();
    // §3.2: the last build-level event wins.
    let status = match last.map(|e| e.event_type) {
        None => BuildStatus::Pending,
        Some(EventType::BuildStarted) => BuildStatus::Running,
        Some(EventType::BuildCompleted) => BuildStatus::Completed,
        Some(EventType::BuildFailed) => BuildStatus::Failed,
        Some(EventType::BuildCancelled) => BuildStatus::Cancelled,
        Some(_) => BuildStatus::ExitEarly,
    };
    // §3.2: only completed/failed/cancelled carry triggered-by; started/exit_early clear it.
    let triggered_by_user_id = last
        .filter(|e| {
            matches!(
                e.event_type,
                EventType::BuildCompleted | EventType::BuildFailed | EventType::BuildCancelled
            )
        })
        .and_then(|e| e.triggered_by_user_id.map(str::to_owned));
    BuildState {
        status,
        // §3.2: started_at = time of the latest build_started.
        started_at: build_events
            .iter()
            .rev()
            .find(|e| e.event_type == EventType::BuildStarted)
            .map(|e| e.at),
        // §3.2: completed_at = time of the latest terminal event.
        completed_at: build_events
            .iter()
            .rev()
            .find(|e| e.event_type.is_build_terminal())
            .map(|e| e.at),
        triggered_by_user_id,
        event_count: build_events.len() as u64,
    }
}

// ---------------------------------------------------------------------------------------
// §3.3 Task status within one build
// ---------------------------------------------------------------------------------------

/// Materialised status of one task within one build (v1-tasks §3.3). Only `status` is on
/// the wire (TaskEventResponse of the seven task-event routes, DECISIONS D18); the side
/// fields are kept for completeness. A state with `event_count > 0` means the task is a
/// member of the build (v1-tasks §2.6).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInBuildState {
    pub status: TaskStatus,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub error_message: Option<String>,
    /// Number of task-level events of this task in this build.
    pub event_count: u64,
}

impl TaskInBuildState {
    /// The state before any event: `pending`, everything null (§3.3).
    pub fn new() -> Self {
        TaskInBuildState::default()
    }

    /// True once at least one event of the task exists in the build (§2.6).
    pub fn is_member(&self) -> bool {
        self.event_count > 0
    }

    /// Applies one event of this task in this build, in append order. Build-level events
    /// are ignored (`None`, state untouched).
    pub fn apply(
        &mut self,
        event_type: EventType,
        at: i64,
        error_message: Option<&str>,
    ) -> Option<StatusChange<TaskStatus>> {
        if event_type.is_build_level() {
            return None;
        }
        let before = self.is_member().then_some(self.status);
        match event_type {
            // §3.3: task_pending → pending.
            EventType::TaskPending => self.status = TaskStatus::Pending,
            // §3.3: task_referenced and task_waiting_for_lock leave the status unchanged.
            EventType::TaskReferenced | EventType::TaskWaitingForLock => {}
            // §3.3: task_started → running, started_at = event time (latest start wins).
            EventType::TaskStarted => {
                self.status = TaskStatus::Running;
                self.started_at = Some(at);
            }
            // §3.3: task_suspended → suspended.
            EventType::TaskSuspended => self.status = TaskStatus::Suspended,
            // §3.3: task_resumed → running (started_at untouched).
            EventType::TaskResumed => self.status = TaskStatus::Running,
            // §3.3: task_completed → completed, completed_at.
            EventType::TaskCompleted => {
                self.status = TaskStatus::Completed;
                self.completed_at = Some(at);
            }
            // §3.3: task_failed → failed, completed_at, error_message = the event's (even
            // null); no other event clears error_message.
            EventType::TaskFailed => {
                self.status = TaskStatus::Failed;
                self.completed_at = Some(at);
                self.error_message = error_message.map(str::to_owned);
            }
            // §3.3: task_skipped → skipped, completed_at.
            EventType::TaskSkipped => {
                self.status = TaskStatus::Skipped;
                self.completed_at = Some(at);
            }
            // §3.3: task_cancelled → cancelled, completed_at.
            EventType::TaskCancelled => {
                self.status = TaskStatus::Cancelled;
                self.completed_at = Some(at);
            }
            // Build-level types were returned above.
            EventType::BuildStarted
            | EventType::BuildCompleted
            | EventType::BuildFailed
            | EventType::BuildCancelled
            | EventType::BuildExitEarly => {}
        }
        self.event_count = self.event_count.saturating_add(1);
        Some(StatusChange {
            before,
            after: self.status,
        })
    }

    /// [`TaskInBuildState::apply`] on an [`EventRef`] (its `build_id` is not checked: the
    /// caller feeds only this build's events).
    pub fn apply_event<B>(&mut self, event: &EventRef<'_, B>) -> Option<StatusChange<TaskStatus>> {
        self.apply(event.event_type, event.at, event.error_message)
    }
}

/// Reference derivation of §3.3: the task's events (append order, any builds, task-level
/// only) restricted to `build_id`. Declarative: status from the last status-setting
/// event, `started_at` from the last start, `completed_at` from the last
/// completed/failed/skipped/cancelled, `error_message` from the last failure.
pub fn derive_task_in_build_state<B: PartialEq>(
    events: &[EventRef<'_, B>],
    build_id: &B,
) -> TaskInBuildState {
    let evs: Vec<&EventRef<'_, B>> = events
        .iter()
        .filter(|e| e.event_type.is_task_level() && e.build_id == *build_id)
        .collect();
    let last_of =
        |pred: &dyn Fn(EventType) -> bool| evs.iter().rev().find(|e| pred(e.event_type)).copied();
    // §3.3: last event wins, ignoring task_referenced / task_waiting_for_lock.
    let status =
        last_of(&|t| !matches!(t, EventType::TaskReferenced | EventType::TaskWaitingForLock))
            .map_or(TaskStatus::Pending, |e| match e.event_type {
                EventType::TaskStarted | EventType::TaskResumed => TaskStatus::Running,
                EventType::TaskSuspended => TaskStatus::Suspended,
                EventType::TaskCompleted => TaskStatus::Completed,
                EventType::TaskFailed => TaskStatus::Failed,
                EventType::TaskSkipped => TaskStatus::Skipped,
                EventType::TaskCancelled => TaskStatus::Cancelled,
                _ => TaskStatus::Pending,
            });
    TaskInBuildState {
        status,
        // §3.3: latest start wins.
        started_at: last_of(&|t| t == EventType::TaskStarted).map(|e| e.at),
        // §3.3: completed_at from the latest completed/failed/skipped/cancelled.
        completed_at: last_of(&|t| {
            matches!(
                t,
                EventType::TaskCompleted
                    | EventType::TaskFailed
                    | EventType::TaskSkipped
                    | EventType::TaskCancelled
            )
        })
        .map(|e| e.at),
        // §3.3: error_message of the latest failure, never cleared by other events.
        error_message: last_of(&|t| t == EventType::TaskFailed)
            .and_then(|e| e.error_message.map(str::to_owned)),
        event_count: evs.len() as u64,
    }
}

// ---------------------------------------------------------------------------------------
// §3.4 Global task status (batched variant; DECISIONS D18: serves every read)
// ---------------------------------------------------------------------------------------

/// Materialised global status of one task across all builds of its environment
/// (v1-tasks §3.4 batched variant, which DECISIONS D18 makes the only global derivation:
/// build task lists, graph, search, `/metadata`). Also carries the task's latest event
/// (for search's `build_id` / `build_name`, §4.4) and the lock completion check (§3.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalTaskState<B> {
    /// One of [`TaskStatus::GLOBAL_OBSERVABLE`].
    pub status: TaskStatus,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub error_message: Option<String>,
    /// The build of the event that decided `status` (null while pending).
    pub status_build_id: Option<B>,
    pub waiting_for_lock: bool,
    /// `created_at` of the task's latest event (any type, any build).
    pub latest_event_at: Option<i64>,
    /// Build of the task's latest event: search's `build_id` / `build_name` (§4.4 item 3).
    pub latest_event_build_id: Option<B>,
    /// Number of task-level events applied.
    pub event_count: u64,
}

impl<B> Default for GlobalTaskState<B> {
    fn default() -> Self {
        GlobalTaskState {
            status: TaskStatus::Pending,
            started_at: None,
            completed_at: None,
            error_message: None,
            status_build_id: None,
            waiting_for_lock: false,
            latest_event_at: None,
            latest_event_build_id: None,
            event_count: 0,
        }
    }
}

impl<B: Copy + PartialEq> GlobalTaskState<B> {
    /// The state of a task with no relevant events: `pending`, everything null,
    /// `waiting_for_lock` false (§3.4).
    pub fn new() -> Self {
        GlobalTaskState::default()
    }

    /// Lock completion check (§3.4, §4.5): at least one `task_completed` in any build.
    /// Equivalent to `status == completed` because completion is sticky.
    pub fn is_completed(&self) -> bool {
        self.status == TaskStatus::Completed
    }

    /// Applies one event of this task (any build) in append order. Build-level events are
    /// ignored (`None`, state untouched).
    pub fn apply(
        &mut self,
        event_type: EventType,
        at: i64,
        build_id: B,
        error_message: Option<&str>,
    ) -> Option<StatusChange<TaskStatus>> {
        if event_type.is_build_level() {
            return None;
        }
        let before = (self.event_count > 0).then_some(self.status);
        let completed = self.status == TaskStatus::Completed;
        match event_type {
            // §3.4: task_completed → completed (always, even if already completed);
            // completed_at = event time; status_build_id = its build; waiting cleared.
            EventType::TaskCompleted => {
                self.status = TaskStatus::Completed;
                self.completed_at = Some(at);
                self.status_build_id = Some(build_id);
                self.waiting_for_lock = false;
            }
            // §3.4: task_started, unless completed → running, status_build_id, started_at
            // only if still null (earliest start), waiting cleared.
            EventType::TaskStarted if !completed => {
                self.status = TaskStatus::Running;
                self.status_build_id = Some(build_id);
                if self.started_at.is_none() {
                    self.started_at = Some(at);
                }
                self.waiting_for_lock = false;
            }
            // §3.4: task_resumed, unless completed → running, status_build_id, waiting
            // cleared.
            EventType::TaskResumed if !completed => {
                self.status = TaskStatus::Running;
                self.status_build_id = Some(build_id);
                self.waiting_for_lock = false;
            }
            // §3.4: task_failed, unless completed → failed, status_build_id, completed_at,
            // error_message = the event's (even null); waiting NOT cleared.
            EventType::TaskFailed if !completed => {
                self.status = TaskStatus::Failed;
                self.status_build_id = Some(build_id);
                self.completed_at = Some(at);
                self.error_message = error_message.map(str::to_owned);
            }
            // §3.4 (+ D18: also for /metadata): task_cancelled, unless completed →
            // cancelled, status_build_id, completed_at; waiting NOT cleared.
            EventType::TaskCancelled if !completed => {
                self.status = TaskStatus::Cancelled;
                self.status_build_id = Some(build_id);
                self.completed_at = Some(at);
            }
            // §3.4: task_waiting_for_lock sets the flag only while pending.
            EventType::TaskWaitingForLock if self.status == TaskStatus::Pending => {
                self.waiting_for_lock = true;
            }
            // §3.4: pending, referenced, suspended, skipped are ignored;
            // started/resumed/failed/cancelled after a completion and waiting-for-lock
            // while not pending change nothing.
            _ => {}
        }
        // §4.4 item 3: the latest event is the max created_at; ties go to the later append.
        if self.latest_event_at.is_none_or(|latest| at >= latest) {
            self.latest_event_at = Some(at);
            self.latest_event_build_id = Some(build_id);
        }
        self.event_count = self.event_count.saturating_add(1);
        Some(StatusChange {
            before,
            after: self.status,
        })
    }

    /// [`GlobalTaskState::apply`] on an [`EventRef`].
    pub fn apply_event(&mut self, event: &EventRef<'_, B>) -> Option<StatusChange<TaskStatus>> {
        self.apply(
            event.event_type,
            event.at,
            event.build_id,
            event.error_message,
        )
    }
}

/// Reference derivation of §3.4 (batched variant, D18) from all events of one task in
/// append order (build-level events are skipped). Declarative form:
///
/// * some `task_completed` exists → `completed`; `completed_at` and `status_build_id` from
///   the last completion; `started_at` = first start before the first completion;
///   `error_message` = last failure before the first completion; not waiting.
/// * otherwise the last of started/resumed/failed/cancelled decides status and
///   `status_build_id` (none → `pending`); `started_at` = first start; `completed_at` =
///   last failure/cancel; `error_message` = last failure; waiting iff a
///   `task_waiting_for_lock` precedes the first deciding event and no start/resume exists.
pub fn derive_global_task_state<B: Copy + PartialEq>(
    events: &[EventRef<'_, B>],
) -> GlobalTaskState<B> {
    let evs: Vec<&EventRef<'_, B>> = events
        .iter()
        .filter(|e| e.event_type.is_task_level())
        .collect();
    let is_decider = |t: EventType| {
        matches!(
            t,
            EventType::TaskStarted
                | EventType::TaskResumed
                | EventType::TaskFailed
                | EventType::TaskCancelled
        )
    };
    let first_completion = evs
        .iter()
        .position(|e| e.event_type == EventType::TaskCompleted);
    let last_completion = evs
        .iter()
        .rposition(|e| e.event_type == EventType::TaskCompleted);
    // Events before the first completion are the only ones the non-completion rules see.
    let before_completion = &evs[..first_completion.unwrap_or(evs.len())];

    // §4.4 item 3: latest event = max created_at, ties to the later append.
    let latest = evs
        .iter()
        .enumerate()
        .max_by_key(|(i, e)| (e.at, *i))
        .map(|(_, e)| *e);

    let first_start = before_completion
        .iter()
        .find(|e| e.event_type == EventType::TaskStarted)
        .map(|e| e.at);
    let last_failure_message = before_completion
        .iter()
        .rev()
        .find(|e| e.event_type == EventType::TaskFailed)
        .map(|e| e.error_message.map(str::to_owned));

    let mut state = GlobalTaskState {
        latest_event_at: latest.map(|e| e.at),
        latest_event_build_id: latest.map(|e| e.build_id),
        event_count: evs.len() as u64,
        started_at: first_start,
        error_message: last_failure_message.flatten(),
        ..GlobalTaskState::default()
    };

    if let Some(last) = last_completion.and_then(|i| evs.get(i)) {
        // §3.4: completed is sticky and wins over everything.
        state.status = TaskStatus::Completed;
        state.completed_at = Some(last.at);
        state.status_build_id = Some(last.build_id);
        state.waiting_for_lock = false;
        return state;
    }

    // §3.4: otherwise the latest of started/resumed/failed/cancelled wins.
    if let Some(decider) = evs.iter().rev().find(|e| is_decider(e.event_type)) {
        state.status = match decider.event_type {
            EventType::TaskFailed => TaskStatus::Failed,
            EventType::TaskCancelled => TaskStatus::Cancelled,
            _ => TaskStatus::Running,
        };
        state.status_build_id = Some(decider.build_id);
    }
    // §3.4: completed_at from the latest failure/cancel (not cleared by a restart).
    state.completed_at = evs
        .iter()
        .rev()
        .find(|e| {
            matches!(
                e.event_type,
                EventType::TaskFailed | EventType::TaskCancelled
            )
        })
        .map(|e| e.at);
    // §3.4: waiting only while pending; cleared by start/resume, not by failed/cancelled.
    let first_decider = evs
        .iter()
        .position(|e| is_decider(e.event_type))
        .unwrap_or(evs.len());
    let waited_while_pending = evs[..first_decider]
        .iter()
        .any(|e| e.event_type == EventType::TaskWaitingForLock);
    let ever_ran = evs.iter().any(|e| {
        matches!(
            e.event_type,
            EventType::TaskStarted | EventType::TaskResumed
        )
    });
    state.waiting_for_lock = waited_while_pending && !ever_ran;
    state
}

// ---------------------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------------------

/// Number of tasks per status, maintained in O(1) from [`StatusChange`]s (e.g. per build
/// from [`TaskInBuildState::apply`], or per environment from [`GlobalTaskState::apply`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatusCounts {
    counts: [u64; 7],
}

impl TaskStatusCounts {
    /// All zero.
    pub fn new() -> Self {
        TaskStatusCounts::default()
    }

    fn slot(status: TaskStatus) -> usize {
        usize::from(status.code())
    }

    /// Tasks currently in `status`.
    pub fn get(&self, status: TaskStatus) -> u64 {
        self.counts[Self::slot(status)]
    }

    /// Tasks counted in total.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, c| a.saturating_add(*c))
    }

    /// Moves one task from `change.before` (if any) to `change.after`; no-op when the
    /// status did not change. Never underflows.
    pub fn record(&mut self, change: StatusChange<TaskStatus>) {
        if !change.changed() {
            return;
        }
        if let Some(before) = change.before {
            let slot = &mut self.counts[Self::slot(before)];
            *slot = slot.saturating_sub(1);
        }
        let slot = &mut self.counts[Self::slot(change.after)];
        *slot = slot.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::*;

    type Ev = EventRef<'static, u32>;

    fn ev(t: EventType, at: i64, b: u32) -> Ev {
        EventRef::new(t, at, b)
    }

    fn global(events: &[Ev]) -> GlobalTaskState<u32> {
        let mut s = GlobalTaskState::new();
        for e in events {
            s.apply_event(e);
        }
        assert_eq!(s, derive_global_task_state(events), "reducer != reference");
        s
    }

    fn in_build(events: &[Ev], b: u32) -> TaskInBuildState {
        let mut s = TaskInBuildState::new();
        for e in events.iter().filter(|e| e.build_id == b) {
            s.apply_event(e);
        }
        assert_eq!(
            s,
            derive_task_in_build_state(events, &b),
            "reducer != reference"
        );
        s
    }

    fn build(events: &[Ev]) -> BuildState {
        let mut s = BuildState::new();
        for e in events {
            s.apply_event(e);
        }
        assert_eq!(s, derive_build_state(events), "reducer != reference");
        s
    }

    // ---- §3.2 build status ------------------------------------------------------------

    #[test]
    fn build_pending_before_any_event() {
        let s = build(&[]);
        assert_eq!(s.status, BuildStatus::Pending);
        assert_eq!(
            (s.started_at, s.completed_at, s.event_count),
            (None, None, 0)
        );
    }

    #[test]
    fn build_started_sets_running_started_at_and_clears_triggered_by() {
        let s = build(&[
            ev(BuildCompleted, 1, 0).with_triggered_by(Some("sub")),
            ev(BuildStarted, 2, 0),
        ]);
        assert_eq!(s.status, BuildStatus::Running);
        assert_eq!(s.started_at, Some(2));
        assert_eq!(
            s.completed_at,
            Some(1),
            "build_started leaves completed_at unchanged"
        );
        assert_eq!(s.triggered_by_user_id, None);
    }

    #[test]
    fn build_last_event_wins() {
        for (t, want) in [
            (BuildCompleted, BuildStatus::Completed),
            (BuildFailed, BuildStatus::Failed),
            (BuildCancelled, BuildStatus::Cancelled),
            (BuildExitEarly, BuildStatus::ExitEarly),
            (BuildStarted, BuildStatus::Running),
        ] {
            let s = build(&[ev(BuildStarted, 1, 0), ev(BuildFailed, 2, 0), ev(t, 3, 0)]);
            assert_eq!(s.status, want);
        }
    }

    #[test]
    fn build_terminal_can_be_overridden_by_later_terminal() {
        let s = build(&[
            ev(BuildStarted, 1, 0),
            ev(BuildFailed, 5, 0),
            ev(BuildCompleted, 9, 0).with_triggered_by(Some("ui-user")),
        ]);
        assert_eq!(s.status, BuildStatus::Completed);
        assert_eq!(s.started_at, Some(1));
        assert_eq!(
            s.completed_at,
            Some(9),
            "completed_at = latest terminal event"
        );
        assert_eq!(s.triggered_by_user_id.as_deref(), Some("ui-user"));
    }

    #[test]
    fn build_triggered_by_comes_from_winning_event_only() {
        let s = build(&[
            ev(BuildStarted, 1, 0),
            ev(BuildCancelled, 2, 0).with_triggered_by(Some("a")),
            ev(BuildFailed, 3, 0),
        ]);
        assert_eq!(s.status, BuildStatus::Failed);
        assert_eq!(
            s.triggered_by_user_id, None,
            "a later event without metadata clears it"
        );
    }

    #[test]
    fn build_exit_early_clears_triggered_by() {
        let s = build(&[
            ev(BuildStarted, 1, 0),
            ev(BuildCompleted, 2, 0).with_triggered_by(Some("a")),
            ev(BuildExitEarly, 3, 0).with_triggered_by(Some("ignored")),
        ]);
        assert_eq!(s.status, BuildStatus::ExitEarly);
        assert_eq!(s.completed_at, Some(3));
        assert_eq!(s.triggered_by_user_id, None);
    }

    #[test]
    fn build_task_events_never_influence_build_status() {
        let mut s = BuildState::new();
        s.apply(BuildStarted, 1, None);
        for t in EventType::ALL.iter().filter(|t| t.is_task_level()) {
            assert_eq!(s.apply(*t, 2, Some("x")), None);
        }
        assert_eq!(s.status, BuildStatus::Running);
        assert_eq!(s.event_count, 1);
        build(&[
            ev(BuildStarted, 1, 0),
            ev(TaskCompleted, 2, 0),
            ev(TaskFailed, 3, 0),
        ]);
    }

    #[test]
    fn build_status_change_reports_before_and_after() {
        let mut s = BuildState::new();
        let c = s.apply(BuildStarted, 1, None).unwrap();
        assert_eq!(
            c,
            StatusChange {
                before: None,
                after: BuildStatus::Running
            }
        );
        assert!(c.changed());
        let c = s.apply(BuildStarted, 2, None).unwrap();
        assert!(!c.changed());
        let c = s.apply(BuildCompleted, 3, None).unwrap();
        assert_eq!(c.before, Some(BuildStatus::Running));
        assert_eq!(c.after, BuildStatus::Completed);
    }

    // ---- §3.3 task status within one build --------------------------------------------

    #[test]
    fn task_in_build_pending_before_any_event() {
        let s = in_build(&[], 0);
        assert_eq!(s.status, TaskStatus::Pending);
        assert!(!s.is_member());
    }

    #[test]
    fn task_in_build_last_event_wins() {
        let cases = [
            (TaskPending, TaskStatus::Pending),
            (TaskStarted, TaskStatus::Running),
            (TaskSuspended, TaskStatus::Suspended),
            (TaskResumed, TaskStatus::Running),
            (TaskCompleted, TaskStatus::Completed),
            (TaskFailed, TaskStatus::Failed),
            (TaskSkipped, TaskStatus::Skipped),
            (TaskCancelled, TaskStatus::Cancelled),
        ];
        for (t, want) in cases {
            let s = in_build(&[ev(TaskCompleted, 1, 0), ev(t, 2, 0)], 0);
            assert_eq!(s.status, want, "{t}");
        }
    }

    #[test]
    fn task_referenced_leaves_status_unchanged() {
        let s = in_build(&[ev(TaskStarted, 1, 0), ev(TaskReferenced, 2, 0)], 0);
        assert_eq!(s.status, TaskStatus::Running);
        let s = in_build(&[ev(TaskReferenced, 1, 0)], 0);
        assert_eq!(s.status, TaskStatus::Pending);
        assert!(s.is_member());
    }

    #[test]
    fn task_waiting_for_lock_leaves_status_unchanged() {
        let s = in_build(&[ev(TaskSuspended, 1, 0), ev(TaskWaitingForLock, 2, 0)], 0);
        assert_eq!(s.status, TaskStatus::Suspended);
        let s = in_build(&[ev(TaskWaitingForLock, 1, 0)], 0);
        assert_eq!(s.status, TaskStatus::Pending);
        assert!(
            s.is_member(),
            "waiting-for-lock alone makes the task a member (§8.9)"
        );
    }

    #[test]
    fn task_in_build_latest_start_wins() {
        let s = in_build(
            &[
                ev(TaskStarted, 1, 0),
                ev(TaskFailed, 2, 0),
                ev(TaskStarted, 3, 0),
                ev(TaskResumed, 4, 0),
            ],
            0,
        );
        assert_eq!(s.started_at, Some(3));
        assert_eq!(s.status, TaskStatus::Running);
    }

    #[test]
    fn task_in_build_terminal_events_set_completed_at() {
        for t in [TaskCompleted, TaskFailed, TaskSkipped, TaskCancelled] {
            let s = in_build(
                &[ev(TaskStarted, 1, 0), ev(t, 7, 0), ev(TaskStarted, 9, 0)],
                0,
            );
            assert_eq!(
                s.completed_at,
                Some(7),
                "{t} sets completed_at; restart keeps it"
            );
        }
    }

    #[test]
    fn task_in_build_error_message_never_cleared_by_later_events() {
        let mut events = vec![
            ev(TaskStarted, 1, 0),
            ev(TaskFailed, 2, 0).with_error(Some("boom")),
        ];
        for t in EventType::ALL
            .iter()
            .filter(|t| t.is_task_level() && **t != TaskFailed)
        {
            events.push(ev(*t, 3, 0));
        }
        let s = in_build(&events, 0);
        assert_eq!(s.error_message.as_deref(), Some("boom"));
    }

    #[test]
    fn task_failed_without_message_overwrites_error_message() {
        let events = [
            ev(TaskFailed, 1, 0).with_error(Some("first")),
            ev(TaskFailed, 2, 0).with_error(None),
        ];
        assert_eq!(in_build(&events, 0).error_message, None);
        assert_eq!(global(&events).error_message, None);
    }

    #[test]
    fn task_in_build_ignores_other_builds_and_build_events() {
        let events = [
            ev(TaskStarted, 1, 0),
            ev(TaskCompleted, 2, 1),
            ev(BuildCompleted, 3, 0),
        ];
        let s = in_build(&events, 0);
        assert_eq!(s.status, TaskStatus::Running);
        assert_eq!(s.event_count, 1);
        let mut r = TaskInBuildState::new();
        assert_eq!(r.apply(BuildStarted, 1, None), None);
        assert!(!r.is_member());
    }

    #[test]
    fn task_event_routes_answer_the_per_build_status() {
        // §4.2: start → running, complete → completed, suspend → suspended,
        // resume → running, cancel → cancelled, fail → failed, waiting-for-lock → pending.
        let cases = [
            ("start", TaskStatus::Running),
            ("complete", TaskStatus::Completed),
            ("suspend", TaskStatus::Suspended),
            ("resume", TaskStatus::Running),
            ("cancel", TaskStatus::Cancelled),
            ("fail", TaskStatus::Failed),
            ("waiting-for-lock", TaskStatus::Pending),
        ];
        for (segment, want) in cases {
            let mut s = TaskInBuildState::new();
            s.apply(TaskPending, 1, None);
            let t = EventType::from_task_route_segment(segment).unwrap();
            let change = s.apply(t, 2, None).unwrap();
            assert_eq!(change.after, want, "{segment}");
        }
    }

    // ---- §3.4 global task status (batched, D18) ---------------------------------------

    #[test]
    fn global_registered_only_is_pending() {
        let s = global(&[ev(TaskPending, 1, 0), ev(TaskReferenced, 2, 1)]);
        assert_eq!(s.status, TaskStatus::Pending);
        assert_eq!(s.status_build_id, None);
        assert!(!s.waiting_for_lock);
        assert!(!s.is_completed());
        assert_eq!(global(&[]).status, TaskStatus::Pending);
    }

    #[test]
    fn global_completed_is_sticky_and_wins_over_everything() {
        let mut events = vec![ev(TaskStarted, 1, 0), ev(TaskCompleted, 2, 0)];
        for (i, t) in EventType::ALL
            .iter()
            .filter(|t| **t != TaskCompleted)
            .enumerate()
        {
            events.push(ev(*t, 3 + i as i64, 1).with_error(Some("late")));
        }
        let s = global(&events);
        assert_eq!(s.status, TaskStatus::Completed);
        assert_eq!(s.completed_at, Some(2));
        assert_eq!(s.status_build_id, Some(0));
        assert_eq!(
            s.error_message, None,
            "failures after completion are ignored"
        );
        assert!(!s.waiting_for_lock);
        assert!(s.is_completed());
    }

    #[test]
    fn global_repeated_completion_updates_completed_at_and_build() {
        let s = global(&[
            ev(TaskCompleted, 1, 0),
            ev(TaskFailed, 2, 1),
            ev(TaskCompleted, 3, 2),
        ]);
        assert_eq!(s.status, TaskStatus::Completed);
        assert_eq!(s.completed_at, Some(3));
        assert_eq!(s.status_build_id, Some(2));
    }

    #[test]
    fn global_latest_of_started_resumed_failed_cancelled_wins() {
        let cases = [
            (TaskStarted, TaskStatus::Running),
            (TaskResumed, TaskStatus::Running),
            (TaskFailed, TaskStatus::Failed),
            (TaskCancelled, TaskStatus::Cancelled),
        ];
        for (first, _) in cases {
            for (last, want) in cases {
                let s = global(&[ev(first, 1, 0), ev(last, 2, 1)]);
                assert_eq!(s.status, want, "{first} then {last}");
                assert_eq!(s.status_build_id, Some(1));
            }
        }
    }

    #[test]
    fn global_ignores_pending_referenced_suspended_skipped() {
        for t in [TaskPending, TaskReferenced, TaskSuspended, TaskSkipped] {
            let s = global(&[ev(TaskStarted, 1, 0), ev(t, 2, 1)]);
            assert_eq!(s.status, TaskStatus::Running, "{t}");
            assert_eq!(s.status_build_id, Some(0), "{t}");
            let s = global(&[ev(TaskFailed, 1, 0), ev(t, 2, 1)]);
            assert_eq!(s.status, TaskStatus::Failed, "{t}");
        }
    }

    #[test]
    fn global_suspended_shows_as_running() {
        let s = global(&[ev(TaskStarted, 1, 0), ev(TaskSuspended, 2, 0)]);
        assert_eq!(s.status, TaskStatus::Running);
        let s = global(&[ev(TaskSkipped, 1, 0)]);
        assert_eq!(
            s.status,
            TaskStatus::Pending,
            "skipped is invisible globally"
        );
    }

    #[test]
    fn global_started_at_is_earliest_start() {
        let s = global(&[
            ev(TaskStarted, 5, 0),
            ev(TaskFailed, 6, 0),
            ev(TaskStarted, 8, 1),
        ]);
        assert_eq!(s.started_at, Some(5));
        assert_eq!(s.status, TaskStatus::Running);
    }

    #[test]
    fn global_start_after_completion_does_not_set_started_at() {
        let s = global(&[ev(TaskCompleted, 1, 0), ev(TaskStarted, 2, 1)]);
        assert_eq!(s.status, TaskStatus::Completed);
        assert_eq!(s.started_at, None);
    }

    #[test]
    fn global_failure_error_and_completed_at_survive_restart() {
        let s = global(&[
            ev(TaskStarted, 1, 0),
            ev(TaskFailed, 2, 0).with_error(Some("boom")),
            ev(TaskStarted, 3, 1),
        ]);
        assert_eq!(s.status, TaskStatus::Running);
        assert_eq!(s.completed_at, Some(2));
        assert_eq!(s.error_message.as_deref(), Some("boom"));
    }

    #[test]
    fn global_failure_error_survives_later_completion() {
        let s = global(&[
            ev(TaskFailed, 1, 0).with_error(Some("boom")),
            ev(TaskCompleted, 2, 1),
        ]);
        assert_eq!(s.status, TaskStatus::Completed);
        assert_eq!(s.completed_at, Some(2));
        assert_eq!(s.error_message.as_deref(), Some("boom"));
    }

    #[test]
    fn global_waiting_for_lock_only_while_pending() {
        let s = global(&[ev(TaskPending, 1, 0), ev(TaskWaitingForLock, 2, 1)]);
        assert!(s.waiting_for_lock);
        assert_eq!(s.status, TaskStatus::Pending);
        for t in [
            TaskStarted,
            TaskFailed,
            TaskCancelled,
            TaskCompleted,
            TaskResumed,
        ] {
            let s = global(&[ev(t, 1, 0), ev(TaskWaitingForLock, 2, 1)]);
            assert!(!s.waiting_for_lock, "{t}");
        }
    }

    #[test]
    fn global_waiting_for_lock_survives_failure() {
        for t in [TaskFailed, TaskCancelled] {
            let s = global(&[ev(TaskWaitingForLock, 1, 1), ev(t, 2, 0)]);
            assert!(s.waiting_for_lock, "{t}");
        }
    }

    #[test]
    fn global_waiting_for_lock_cleared_by_start_resume_complete() {
        for t in [TaskStarted, TaskResumed, TaskCompleted] {
            let s = global(&[ev(TaskWaitingForLock, 1, 1), ev(t, 2, 0)]);
            assert!(!s.waiting_for_lock, "{t}");
        }
        let s = global(&[
            ev(TaskWaitingForLock, 1, 1),
            ev(TaskFailed, 2, 0),
            ev(TaskStarted, 3, 0),
        ]);
        assert!(!s.waiting_for_lock);
    }

    #[test]
    fn global_cancelled_counts_for_metadata_too_d18() {
        // Upstream's single variant (/metadata) ignored task_cancelled; D18 makes the
        // batched variant serve every read, so cancelled shows everywhere.
        let s = global(&[ev(TaskStarted, 1, 0), ev(TaskCancelled, 2, 0)]);
        assert_eq!(s.status, TaskStatus::Cancelled);
        assert_eq!(s.completed_at, Some(2));
    }

    #[test]
    fn global_status_build_id_tracks_deciding_event() {
        let s = global(&[
            ev(TaskStarted, 1, 0),
            ev(TaskSuspended, 2, 1),
            ev(TaskWaitingForLock, 3, 2),
        ]);
        assert_eq!(s.status_build_id, Some(0));
        assert_eq!(s.latest_event_build_id, Some(2));
    }

    #[test]
    fn test_task_reuse_across_runs() {
        // v1-tasks §3.4 worked example: registered in builds 1 and 2, started+completed in
        // build 1 → completed with status_build_id = build 1 (in both builds' lists).
        let s = global(&[
            ev(TaskPending, 1, 1),
            ev(TaskStarted, 2, 1),
            ev(TaskCompleted, 3, 1),
            ev(TaskReferenced, 4, 2),
        ]);
        assert_eq!(s.status, TaskStatus::Completed);
        assert_eq!(s.status_build_id, Some(1));
        assert_eq!(s.latest_event_build_id, Some(2));
    }

    #[test]
    fn global_latest_event_is_max_created_at_ties_to_later_append() {
        let s = global(&[ev(TaskPending, 5, 0), ev(TaskStarted, 5, 1)]);
        assert_eq!(s.latest_event_build_id, Some(1));
        assert_eq!(s.latest_event_at, Some(5));
        let s = global(&[ev(TaskPending, 9, 0), ev(TaskStarted, 5, 1)]);
        assert_eq!(
            s.latest_event_build_id,
            Some(0),
            "an older timestamp does not win"
        );
        assert_eq!(s.latest_event_at, Some(9));
    }

    #[test]
    fn global_ignores_build_level_events() {
        let mut s: GlobalTaskState<u32> = GlobalTaskState::new();
        for t in EventType::ALL.iter().filter(|t| t.is_build_level()) {
            assert_eq!(s.apply(*t, 1, 0, None), None);
        }
        assert_eq!(s, GlobalTaskState::new());
    }

    #[test]
    fn global_handles_extreme_timestamps() {
        let s = global(&[
            ev(TaskStarted, i64::MAX, 0),
            ev(TaskFailed, i64::MIN, 1),
            ev(TaskCompleted, 0, 2),
        ]);
        assert_eq!(s.latest_event_at, Some(i64::MAX));
        assert_eq!(s.completed_at, Some(0));
    }

    #[test]
    fn counts_follow_status_changes() {
        let mut counts = TaskStatusCounts::new();
        let mut a = TaskInBuildState::new();
        let mut b = TaskInBuildState::new();
        counts.record(a.apply(TaskPending, 1, None).unwrap());
        counts.record(b.apply(TaskReferenced, 1, None).unwrap());
        assert_eq!(counts.get(TaskStatus::Pending), 2);
        counts.record(a.apply(TaskStarted, 2, None).unwrap());
        counts.record(a.apply(TaskStarted, 3, None).unwrap());
        assert_eq!(counts.get(TaskStatus::Pending), 1);
        assert_eq!(counts.get(TaskStatus::Running), 1);
        assert_eq!(counts.total(), 2);
        // Never underflows on inconsistent input.
        let mut c = TaskStatusCounts::new();
        c.record(StatusChange {
            before: Some(TaskStatus::Failed),
            after: TaskStatus::Running,
        });
        assert_eq!(c.get(TaskStatus::Failed), 0);
        assert_eq!(c.total(), 1);
    }

    #[test]
    fn states_round_trip_through_serde() {
        let g = global(&[
            ev(TaskStarted, 1, 7),
            ev(TaskFailed, 2, 7).with_error(Some("x")),
        ]);
        let json = serde_json::to_string(&g).unwrap();
        assert!(json.contains("\"status\":\"failed\""), "{json}");
        assert_eq!(
            serde_json::from_str::<GlobalTaskState<u32>>(&json).unwrap(),
            g
        );
        let b = build(&[ev(BuildStarted, 1, 0), ev(BuildExitEarly, 2, 0)]);
        let json = serde_json::to_string(&b).unwrap();
        assert!(json.contains("\"status\":\"exit_early\""), "{json}");
        assert_eq!(serde_json::from_str::<BuildState>(&json).unwrap(), b);
    }

    // ---- reducer == reference on random sequences ----------------------------------------

    /// SplitMix64: tiny deterministic PRNG for property-style tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const MESSAGES: [Option<&str>; 4] = [None, Some("boom"), Some(""), Some("other")];

    fn random_events(rng: &mut Rng, monotone: bool) -> Vec<Ev> {
        let n = rng.below(40) as usize;
        let mut at = rng.below(1_000) as i64;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            // Bias towards task events so that long task histories occur.
            let t = if rng.below(4) == 0 {
                EventType::ALL[rng.below(EventType::ALL.len() as u64) as usize]
            } else {
                EventType::ALL[5 + rng.below(10) as usize]
            };
            if monotone {
                at += [0, 0, 1, 7][rng.below(4) as usize];
            } else {
                at = rng.below(20) as i64;
            }
            let e = ev(t, at, rng.below(3) as u32)
                .with_error(MESSAGES[rng.below(4) as usize])
                .with_triggered_by(MESSAGES[rng.below(4) as usize]);
            out.push(e);
        }
        out
    }

    #[test]
    fn reducers_match_reference_on_random_sequences() {
        let mut rng = Rng(0x5EED_0001);
        for round in 0..3_000 {
            let events = random_events(&mut rng, round % 3 != 0);

            let mut g = GlobalTaskState::new();
            let mut builds = [BuildState::new(), BuildState::new(), BuildState::new()];
            let mut per_build = [
                TaskInBuildState::new(),
                TaskInBuildState::new(),
                TaskInBuildState::new(),
            ];
            let mut global_counts = TaskStatusCounts::new();
            let mut build_counts = TaskStatusCounts::new();

            for (i, e) in events.iter().enumerate() {
                let b = e.build_id as usize;
                let prefix = &events[..=i];

                let before = g.clone();
                let change = g.apply_event(e);
                assert_eq!(change.is_some(), e.event_type.is_task_level());
                if let Some(c) = change {
                    assert_eq!(c.before, (before.event_count > 0).then_some(before.status));
                    assert_eq!(c.after, g.status);
                    global_counts.record(c);
                }
                assert_eq!(g, derive_global_task_state(prefix), "global, round {round}");
                assert!(TaskStatus::GLOBAL_OBSERVABLE.contains(&g.status));

                if let Some(c) = builds[b].apply_event(e) {
                    assert_eq!(c.after, builds[b].status);
                }
                if let Some(c) = per_build[b].apply_event(e) {
                    build_counts.record(c);
                }
                for (id, (bs, ts)) in builds.iter().zip(per_build.iter()).enumerate() {
                    let id = id as u32;
                    let mine: Vec<Ev> = prefix
                        .iter()
                        .filter(|e| e.build_id == id)
                        .copied()
                        .collect();
                    assert_eq!(*bs, derive_build_state(&mine), "build {id}, round {round}");
                    assert_eq!(
                        *ts,
                        derive_task_in_build_state(prefix, &id),
                        "task in build {id}, round {round}"
                    );
                }
            }

            // Counters agree with the materialised states.
            let members: Vec<&TaskInBuildState> =
                per_build.iter().filter(|s| s.is_member()).collect();
            assert_eq!(build_counts.total(), members.len() as u64);
            for s in TaskStatus::ALL {
                let want = members.iter().filter(|m| m.status == *s).count() as u64;
                assert_eq!(build_counts.get(*s), want);
            }
            let any_task_event = events.iter().any(|e| e.event_type.is_task_level());
            assert_eq!(global_counts.total(), u64::from(any_task_event));
            if any_task_event {
                assert_eq!(global_counts.get(g.status), 1);
            }
        }
    }
}
