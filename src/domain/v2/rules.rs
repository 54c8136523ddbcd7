//! The v2 state machines as pure functions (`v2-registry.md` §6): claim liveness, the
//! claiming start's refusal order, the report rules, build lifecycle, retry/skip/cancel,
//! observations, the frontier's runnable rule, exclusion and skip-blocked cascades,
//! settings, and the reactive wake/lease state. The store gathers the facts, these
//! functions decide, the store writes what they decided.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::refusal::{Code, Refusal};
use super::{
    BuildStatus, TaskStatus, DEFAULT_CLAIM_TTL_SECS, MAX_CLAIM_TTL_SECS, SECOND,
    SETTINGS_NAMESPACE, WAKE_HANDOUT_WINDOW,
};

/// A claim is live while its task runs and the expiry is ahead (§2); an expired one is
/// *lapsed*: still `running`, open to a takeover.
pub fn is_live(status: TaskStatus, claim_expires_at: Option<i64>, now: i64) -> bool {
    status == TaskStatus::Running && claim_expires_at.is_some_and(|at| at > now)
}

/// Statuses a claiming start may pick up (§2 ACTIONABLE; D33 adds `failed` for the
/// claiming start only, see [`start`]).
pub fn is_actionable(status: TaskStatus, live: bool) -> bool {
    match status {
        TaskStatus::Pending
        | TaskStatus::Suspended
        | TaskStatus::Interrupted
        | TaskStatus::Cancelled
        | TaskStatus::Skipped => true,
        TaskStatus::Running => !live,
        TaskStatus::Completed | TaskStatus::Failed => false,
    }
}

/// A requested claim TTL in microseconds: default 3600 s, 1..86400 s allowed (D33).
pub fn claim_ttl(requested: Option<i64>) -> Result<i64, Refusal> {
    let secs = requested.unwrap_or(DEFAULT_CLAIM_TTL_SECS);
    if !(1..=MAX_CLAIM_TTL_SECS).contains(&secs) {
        return Err(Refusal::new(
            Code::InvalidClaimTtl,
            format!("claim_ttl_seconds must be within 1..{MAX_CLAIM_TTL_SECS}"),
        )
        .with("claim_ttl_seconds", secs));
    }
    Ok(secs * SECOND)
}

/// What the facts of a claiming start decide.
#[derive(Debug, PartialEq)]
pub enum StartDecision {
    /// The same execution already holds the live claim: `applied: false`.
    AlreadyHeld,
    /// Refused before anything is written.
    Refuse(Refusal),
    /// `concurrency_limit_reached`: the task's limit keys are stored anyway, so that
    /// a later release can flag waiters (§5.4 rule 10).
    RefuseKeepingKeys(Refusal),
    /// Granted for `ttl` microseconds; `take_over` closes a lapsed claim first.
    Grant { ttl: i64, take_over: bool },
}

/// Everything a claiming start is decided on (§5.4 `start`, rules 1–11).
#[derive(Debug, Default)]
pub struct StartFacts {
    pub task_id: String,
    /// The ids the refusals name (§8 extra keys), as strings.
    pub execution_id: String,
    pub plan_id: String,
    pub build_id: String,
    pub status: Option<TaskStatus>,
    pub live: bool,
    /// The task's current execution is the requesting one.
    pub same_execution: bool,
    /// The requesting execution id is already in the ledger.
    pub execution_known: bool,
    pub plan_active: bool,
    pub build_status: Option<BuildStatus>,
    pub member_excluded: bool,
    pub instance_expanded: bool,
    /// Upstream tasks that are not completed, sorted.
    pub incomplete_upstreams: Vec<String>,
    /// Requested keys whose limit is reached, sorted.
    pub full_keys: Vec<String>,
    pub ttl_seconds: Option<i64>,
}

/// The claiming start's refusal order (§5.4), with D33's choice that a `failed` task is
/// granted (a plain re-build after a fix runs it again).
pub fn start(f: &StartFacts) -> StartDecision {
    let task = || Value::from(f.task_id.clone());
    if f.same_execution && f.live {
        return StartDecision::AlreadyHeld;
    }
    let refuse = |r: Refusal| StartDecision::Refuse(r);
    if f.status == Some(TaskStatus::Completed) {
        return refuse(
            Refusal::new(Code::TaskAlreadyCompleted, "the task is completed")
                .with("task_id", task()),
        );
    }
    if f.live {
        return refuse(
            Refusal::new(
                Code::TaskAlreadyRunning,
                "another execution holds a live claim",
            )
            .with("task_id", task()),
        );
    }
    if f.execution_known {
        return refuse(
            Refusal::new(
                Code::ExecutionSuperseded,
                "this execution id is already in the ledger: mint a new one",
            )
            .with("execution_id", f.execution_id.clone()),
        );
    }
    if !f.plan_active {
        return refuse(
            Refusal::new(
                Code::PlanSuperseded,
                "the plan is not the build's active plan",
            )
            .with("plan_id", f.plan_id.clone()),
        );
    }
    let build_status = f.build_status.unwrap_or(BuildStatus::Running);
    if build_status != BuildStatus::Running {
        return refuse(
            Refusal::new(
                Code::BuildNotRunning,
                format!("the build is {}", build_status.as_str().to_uppercase()),
            )
            .with("build_id", f.build_id.clone())
            .with("build_status", build_status.as_str()),
        );
    }
    if f.member_excluded {
        return refuse(
            Refusal::new(Code::MemberExcluded, "the member is excluded from the plan")
                .with("task_id", task()),
        );
    }
    if !f.instance_expanded {
        return refuse(
            Refusal::new(Code::UpstreamIncomplete, "the instance is not expanded")
                .with("task_id", task())
                .with("reason", "not_expanded"),
        );
    }
    if !f.incomplete_upstreams.is_empty() {
        return refuse(
            Refusal::new(Code::UpstreamIncomplete, "upstream tasks are not completed")
                .with("task_id", task())
                .with("upstream_task_ids", f.incomplete_upstreams.clone()),
        );
    }
    if !f.full_keys.is_empty() {
        return StartDecision::RefuseKeepingKeys(
            Refusal::new(
                Code::ConcurrencyLimitReached,
                "a concurrency limit is reached",
            )
            .with("keys", f.full_keys.clone()),
        );
    }
    match claim_ttl(f.ttl_seconds) {
        Ok(ttl) => StartDecision::Grant {
            ttl,
            take_over: f.status == Some(TaskStatus::Running),
        },
        Err(r) => refuse(r),
    }
}

/// The ledger facts of an execution a report names.
#[derive(Debug, Clone, Copy)]
pub struct ExecFacts {
    /// The execution is of the reported task.
    pub of_task: bool,
    pub ended: bool,
    pub claim_released: bool,
}

/// What an execution report (`complete`, `fail`, `interrupt`, a suspending yield) does.
#[derive(Debug, PartialEq)]
pub enum ReportDecision {
    /// Refused, nothing written.
    Refuse(Refusal),
    /// A second end of one execution: recorded (`report_applied: false`), refused.
    AlreadyEnded,
    /// A late report: the ledger end and a `report_applied: false` event are
    /// written, then `execution_not_current`.
    Late,
    /// The claim closes and the task moves.
    Apply,
}

/// The report rules of §5.4, in order.
pub fn report(
    execution_id: &str,
    exec: Option<ExecFacts>,
    is_current: bool,
    claim_via_plan: bool,
) -> ReportDecision {
    let Some(exec) = exec.filter(|e| e.of_task) else {
        return ReportDecision::Refuse(
            Refusal::new(Code::UnknownExecution, "no such execution of this task")
                .with("execution_id", execution_id),
        );
    };
    if exec.ended {
        return ReportDecision::AlreadyEnded;
    }
    if is_current && !exec.claim_released && !claim_via_plan {
        return ReportDecision::Refuse(not_claim_holder());
    }
    if !is_current || exec.claim_released {
        return ReportDecision::Late;
    }
    ReportDecision::Apply
}

pub fn not_claim_holder() -> Refusal {
    Refusal::new(
        Code::NotClaimHolder,
        "the claim is held through another plan",
    )
}

pub fn execution_not_current() -> Refusal {
    Refusal::new(
        Code::ExecutionNotCurrent,
        "the execution is not the task's current one, or its claim was released",
    )
}

/// What a lifecycle transition does to a build in status `current` (§6.1).
#[derive(Debug, PartialEq)]
pub enum Lifecycle {
    /// Already there: a 200 that writes nothing.
    Noop,
    /// A different terminal status is sticky: recorded, then 409 `build_terminal`.
    Terminal(Refusal),
    Apply,
}

pub fn lifecycle(build_id: &str, current: BuildStatus, target: BuildStatus) -> Lifecycle {
    if current == target {
        return Lifecycle::Noop;
    }
    if current.is_terminal() {
        return Lifecycle::Terminal(
            Refusal::new(
                Code::BuildTerminal,
                format!("the build is {}", current.as_str().to_uppercase()),
            )
            .with("build_id", build_id)
            .with("build_status", current.as_str()),
        );
    }
    Lifecycle::Apply
}

/// What `retry` or `skip` does to a member's task (§5.4).
#[derive(Debug, PartialEq)]
pub enum Reset {
    /// Already in the target state: `applied: false`.
    NotApplied,
    Refuse(Refusal),
    /// Move; `close_lapsed` closes a lapsed claim (`lapsed`) first.
    Apply {
        close_lapsed: bool,
    },
}

/// `retry`: back to `pending` (§5.4).
pub fn retry(task_id: &str, status: TaskStatus, live: bool) -> Reset {
    if let Some(r) = busy(task_id, status, live) {
        return Reset::Refuse(r);
    }
    match status {
        TaskStatus::Pending => Reset::NotApplied,
        s => Reset::Apply {
            close_lapsed: s == TaskStatus::Running,
        },
    }
}

/// `skip`: to `skipped`, never from failed or cancelled (§5.4).
pub fn skip(task_id: &str, status: TaskStatus, live: bool) -> Reset {
    if status == TaskStatus::Skipped {
        return Reset::NotApplied;
    }
    if let Some(r) = busy(task_id, status, live) {
        return Reset::Refuse(r);
    }
    match status {
        TaskStatus::Failed | TaskStatus::Cancelled => Reset::Refuse(
            Refusal::new(
                Code::TaskNotSkippable,
                format!("a {} task is not skipped", status),
            )
            .with("task_id", task_id),
        ),
        s => Reset::Apply {
            close_lapsed: s == TaskStatus::Running,
        },
    }
}

fn busy(task_id: &str, status: TaskStatus, live: bool) -> Option<Refusal> {
    if status == TaskStatus::Completed {
        return Some(
            Refusal::new(Code::TaskAlreadyCompleted, "the task is completed")
                .with("task_id", task_id),
        );
    }
    live.then(|| {
        Refusal::new(
            Code::TaskAlreadyRunning,
            "another execution holds a live claim",
        )
        .with("task_id", task_id)
    })
}

/// What a registration item's observation does to its task (§6.3 step 6).
#[derive(Debug, PartialEq, Eq)]
pub enum Observation {
    Nothing,
    /// Completed now; `close_lapsed` closes a lapsed claim (`lapsed`) first.
    Complete {
        close_lapsed: bool,
    },
    /// A completion older than the observation of a missing target: back to pending.
    Invalidate,
}

pub fn observe(
    status: TaskStatus,
    live: bool,
    completed_at: Option<i64>,
    observed_complete: bool,
    observed_at: i64,
) -> Observation {
    if observed_complete {
        if status != TaskStatus::Completed && !live {
            return Observation::Complete {
                close_lapsed: status == TaskStatus::Running,
            };
        }
        return Observation::Nothing;
    }
    if status == TaskStatus::Completed && completed_at.is_none_or(|at| at < observed_at) {
        return Observation::Invalidate;
    }
    Observation::Nothing
}

/// Where the frontier lists a member of the active plan (§6.4).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Place {
    Running,
    Discovery,
    Runnable,
    /// Not listed: completed, waiting on upstreams, or failed.
    Elsewhere,
}

pub fn place(status: TaskStatus, live: bool, expanded: bool, upstreams_completed: bool) -> Place {
    if live {
        Place::Running
    } else if !expanded {
        if status == TaskStatus::Completed {
            Place::Elsewhere
        } else {
            Place::Discovery
        }
    } else if is_actionable(status, live) && upstreams_completed {
        Place::Runnable
    } else {
        Place::Elsewhere
    }
}

/// A plan member as the exclusion and skip-blocked cascades see it.
#[derive(Debug, Clone)]
pub struct MemberNode {
    pub task_id: String,
    pub instance: u128,
    /// Upstream instances (edges of the member's instance).
    pub upstreams: Vec<u128>,
    pub status: TaskStatus,
    pub excluded: bool,
}

/// Exclusion of `start` (§6.5): the member, then every downstream member that is not
/// completed (a completed member neither starts nor carries the cascade). Returns the
/// newly excluded task ids, the member first. `nodes` sorted by task id.
pub fn exclusion_cascade(nodes: &[MemberNode], start: &str) -> Vec<String> {
    let Some(first) = nodes.iter().find(|n| n.task_id == start) else {
        return Vec::new();
    };
    let mut excluded_ids = vec![first.task_id.clone()];
    let mut blocking: HashSet<u128> = HashSet::new();
    if first.status != TaskStatus::Completed {
        blocking.insert(first.instance);
    }
    let mut done: HashSet<&str> = nodes
        .iter()
        .filter(|n| n.excluded)
        .map(|n| n.task_id.as_str())
        .collect();
    done.insert(&first.task_id);
    loop {
        let mut changed = false;
        for n in nodes {
            if done.contains(n.task_id.as_str()) || n.status == TaskStatus::Completed {
                continue;
            }
            if n.upstreams.iter().any(|u| blocking.contains(u)) {
                blocking.insert(n.instance);
                done.insert(&n.task_id);
                excluded_ids.push(n.task_id.clone());
                changed = true;
            }
        }
        if !changed {
            return excluded_ids;
        }
    }
}

/// `skip-blocked` (§6.5): members in pending, suspended or interrupted with an upstream
/// task failed, cancelled or skipped become skipped, to a fixed point. `statuses`
/// holds every member's and upstream's task status by task id; `upstream_tasks` maps a
/// member's task id to its upstream task ids. Returns the skipped ids in order.
pub fn skip_blocked(
    members: &[String],
    upstream_tasks: &HashMap<String, Vec<String>>,
    statuses: &mut HashMap<String, TaskStatus>,
) -> Vec<String> {
    let blocker = |s: Option<&TaskStatus>| {
        matches!(
            s,
            Some(TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::Skipped)
        )
    };
    let mut skipped = Vec::new();
    loop {
        let mut changed = false;
        for task in members {
            let skippable = matches!(
                statuses.get(task),
                Some(TaskStatus::Pending | TaskStatus::Suspended | TaskStatus::Interrupted)
            );
            if !skippable {
                continue;
            }
            let ups = upstream_tasks.get(task).map(Vec::as_slice).unwrap_or(&[]);
            if ups.iter().any(|u| blocker(statuses.get(u))) {
                statuses.insert(task.clone(), TaskStatus::Skipped);
                skipped.push(task.clone());
                changed = true;
            }
        }
        if !changed {
            return skipped;
        }
    }
}

/// The top-level keys whose values differ between two instance bodies, sorted.
pub fn differing_fields(a: &Map<String, Value>, b: &Map<String, Value>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// Checks a posted settings object: string values only, no reserved key (§3.1).
pub fn check_settings(settings: &Map<String, Value>) -> Result<BTreeMap<String, String>, Refusal> {
    let mut out = BTreeMap::new();
    for (key, value) in settings {
        let Value::String(v) = value else {
            return Err(Refusal::new(
                Code::InvalidSettings,
                format!("setting {key:?} is not a string"),
            ));
        };
        if key.starts_with("STARDAG_") || key.starts_with("MODAL_") {
            return Err(Refusal::new(
                Code::ReservedSettingsKey,
                format!("setting {key:?} uses a reserved prefix (STARDAG_, MODAL_)"),
            ));
        }
        out.insert(key.clone(), v.clone());
    }
    Ok(out)
}

/// Canonical JSON of settings, as the SDK hashes it: sorted keys, compact, non-ASCII
/// kept.
pub fn settings_json(settings: &BTreeMap<String, String>) -> String {
    serde_json::to_string(settings).unwrap_or_else(|_| "{}".into())
}

/// The settings hash: uuid5 in the SDK's namespace over the canonical JSON (§3.1).
pub fn settings_hash(settings: &BTreeMap<String, String>) -> String {
    uuid5(SETTINGS_NAMESPACE, settings_json(settings).as_bytes()).to_string()
}

/// RFC 4122 name-based UUID (SHA-1), with ring's digest.
fn uuid5(namespace: uuid::Uuid, name: &[u8]) -> uuid::Uuid {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(namespace.as_bytes());
    ctx.update(name);
    let digest = ctx.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// A build's reactive scheduling state (§6.7): the wake-up flag, the last hand-out,
/// and the scheduler lease. Times are epoch microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wake {
    /// When the flag was set (kept from the first flag); `None`: not flagged.
    pub needs_tick_at: Option<i64>,
    pub handed_out_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    /// When a live lease was last released: a hand-out older than this is spent.
    pub lease_released_at: Option<i64>,
}

/// The answer of a lease call.
#[derive(Debug, PartialEq, Eq)]
pub struct Lease {
    pub held: bool,
    pub expires_at: Option<i64>,
}

/// Why a running reactive build counts as stalled.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Stall {
    FlaggedUnserved,
    LeaseLapsed,
}

impl Stall {
    pub fn as_str(self) -> &'static str {
        match self {
            Stall::FlaggedUnserved => "flagged_unserved",
            Stall::LeaseLapsed => "lease_lapsed",
        }
    }
}

impl Wake {
    pub fn lease_live(&self, now: i64) -> bool {
        self.lease_expires_at.is_some_and(|at| at > now)
    }

    /// Sets the flag, keeping the first flag's time.
    pub fn flag(&mut self, now: i64) {
        self.needs_tick_at.get_or_insert(now);
    }

    /// `POST notify` on a running build: flag; `can_spawn` stamps a hand-out unless a
    /// live lease means a scheduler already runs (upstream puts the stamp back then).
    /// Returns whether a scheduler is live.
    pub fn notify(&mut self, can_spawn: bool, now: i64) -> bool {
        self.flag(now);
        let live = self.lease_live(now);
        if can_spawn && !live {
            self.handed_out_at = Some(now);
        }
        live
    }

    /// Whether `wake-candidates` may hand the (running, reactive) build out now.
    pub fn wakeable(&self, now: i64) -> bool {
        if self.needs_tick_at.is_none() || self.lease_live(now) {
            return false;
        }
        match self.handed_out_at {
            None => true,
            Some(at) => {
                now - at >= WAKE_HANDOUT_WINDOW || self.lease_released_at.is_some_and(|r| at < r)
            }
        }
    }

    pub fn acquire(&mut self, owner: &str, ttl: i64, now: i64) -> Lease {
        if self.lease_live(now) && self.lease_owner.as_deref() != Some(owner) {
            return Lease {
                held: false,
                expires_at: self.lease_expires_at,
            };
        }
        self.lease_owner = Some(owner.to_owned());
        self.lease_expires_at = Some(now + ttl);
        Lease {
            held: true,
            expires_at: self.lease_expires_at,
        }
    }

    pub fn renew(&mut self, owner: &str, ttl: i64, now: i64) -> Lease {
        if self.lease_owner.as_deref() != Some(owner) || !self.lease_live(now) {
            return Lease {
                held: false,
                expires_at: None,
            };
        }
        self.lease_expires_at = Some(now + ttl);
        Lease {
            held: true,
            expires_at: self.lease_expires_at,
        }
    }

    pub fn release(&mut self, owner: &str, now: i64) -> Lease {
        if self.lease_owner.as_deref() != Some(owner) {
            return Lease {
                held: false,
                expires_at: None,
            };
        }
        if self.lease_live(now) {
            // A lapsed holder spends no hand-out.
            self.lease_released_at = Some(now);
        }
        self.lease_owner = None;
        self.lease_expires_at = None;
        Lease {
            held: true,
            expires_at: None,
        }
    }

    /// Stalled as of `cutoff` (§6.7): flagged since then and unserved, or its owner's
    /// lease expired by then. The caller checks running, reactive and no live lease.
    pub fn stalled(&self, cutoff: i64) -> Option<(Stall, i64)> {
        if let Some(at) = self.needs_tick_at.filter(|at| *at <= cutoff) {
            return Some((Stall::FlaggedUnserved, at));
        }
        match (&self.lease_owner, self.lease_expires_at) {
            (Some(_), Some(at)) if at <= cutoff => Some((Stall::LeaseLapsed, at)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use TaskStatus::*;

    fn facts() -> StartFacts {
        StartFacts {
            task_id: "t".into(),
            status: Some(Pending),
            plan_active: true,
            build_status: Some(BuildStatus::Running),
            instance_expanded: true,
            ..Default::default()
        }
    }

    fn code(d: StartDecision) -> &'static str {
        match d {
            StartDecision::Refuse(r) | StartDecision::RefuseKeepingKeys(r) => r.code.as_str(),
            StartDecision::AlreadyHeld => "held",
            StartDecision::Grant { .. } => "grant",
        }
    }

    #[test]
    fn liveness_is_a_comparison_with_now() {
        assert!(is_live(Running, Some(11), 10));
        assert!(!is_live(Running, Some(10), 10));
        assert!(!is_live(Pending, Some(11), 10));
        assert!(is_actionable(Running, false));
        assert!(!is_actionable(Running, true));
        assert!(!is_actionable(Failed, false));
    }

    #[test]
    fn claiming_start_refuses_in_the_documented_order() {
        assert_eq!(code(start(&facts())), "grant");
        let f = StartFacts {
            same_execution: true,
            live: true,
            status: Some(Running),
            ..facts()
        };
        assert_eq!(code(start(&f)), "held");
        let f = StartFacts {
            status: Some(Completed),
            live: false,
            execution_known: true,
            ..facts()
        };
        assert_eq!(code(start(&f)), "task_already_completed");
        let f = StartFacts {
            status: Some(Running),
            live: true,
            execution_known: true,
            ..facts()
        };
        assert_eq!(code(start(&f)), "task_already_running");
        let f = StartFacts {
            execution_known: true,
            plan_active: false,
            ..facts()
        };
        assert_eq!(code(start(&f)), "execution_superseded");
        let f = StartFacts {
            plan_active: false,
            build_status: Some(BuildStatus::Failed),
            ..facts()
        };
        assert_eq!(code(start(&f)), "plan_superseded");
        let f = StartFacts {
            build_status: Some(BuildStatus::Cancelled),
            member_excluded: true,
            ..facts()
        };
        match start(&f) {
            StartDecision::Refuse(r) => {
                assert_eq!(r.code, Code::BuildNotRunning);
                assert_eq!(r.extra["build_status"], json!("cancelled"));
            }
            other => panic!("{other:?}"),
        }
        let f = StartFacts {
            member_excluded: true,
            instance_expanded: false,
            ..facts()
        };
        assert_eq!(code(start(&f)), "member_excluded");
        let f = StartFacts {
            instance_expanded: false,
            incomplete_upstreams: vec!["u".into()],
            ..facts()
        };
        assert_eq!(code(start(&f)), "upstream_incomplete");
        let f = StartFacts {
            incomplete_upstreams: vec!["u".into()],
            full_keys: vec!["k".into()],
            ..facts()
        };
        match start(&f) {
            StartDecision::Refuse(r) => assert_eq!(r.extra["upstream_task_ids"], json!(["u"])),
            other => panic!("{other:?}"),
        }
        let f = StartFacts {
            full_keys: vec!["k".into()],
            ttl_seconds: Some(0),
            ..facts()
        };
        assert!(matches!(start(&f), StartDecision::RefuseKeepingKeys(_)));
        let f = StartFacts {
            ttl_seconds: Some(86_401),
            ..facts()
        };
        assert_eq!(code(start(&f)), "invalid_claim_ttl");
        // D33: a failed task is granted; a lapsed claim is taken over.
        let f = StartFacts {
            status: Some(Failed),
            ..facts()
        };
        assert_eq!(code(start(&f)), "grant");
        let f = StartFacts {
            status: Some(Running),
            live: false,
            ttl_seconds: Some(120),
            ..facts()
        };
        assert_eq!(
            start(&f),
            StartDecision::Grant {
                ttl: 120 * SECOND,
                take_over: true
            }
        );
    }

    #[test]
    fn report_rules() {
        let exec = |ended, released| {
            Some(ExecFacts {
                of_task: true,
                ended,
                claim_released: released,
            })
        };
        let code = |d: ReportDecision| match d {
            ReportDecision::Refuse(r) => r.code.as_str(),
            ReportDecision::AlreadyEnded => "ended",
            ReportDecision::Late => "late",
            ReportDecision::Apply => "apply",
        };
        assert_eq!(code(report("x", None, true, true)), "unknown_execution");
        let other = Some(ExecFacts {
            of_task: false,
            ended: false,
            claim_released: false,
        });
        assert_eq!(code(report("x", other, true, true)), "unknown_execution");
        assert_eq!(code(report("x", exec(true, false), true, false)), "ended");
        assert_eq!(
            code(report("x", exec(false, false), true, false)),
            "not_claim_holder"
        );
        assert_eq!(code(report("x", exec(false, true), true, false)), "late");
        assert_eq!(code(report("x", exec(false, false), false, false)), "late");
        assert_eq!(code(report("x", exec(false, false), true, true)), "apply");
    }

    #[test]
    fn terminal_statuses_are_sticky() {
        use BuildStatus as B;
        assert_eq!(lifecycle("b", B::Failed, B::Failed), Lifecycle::Noop);
        assert_eq!(lifecycle("b", B::Running, B::Completed), Lifecycle::Apply);
        assert_eq!(lifecycle("b", B::ExitEarly, B::Cancelled), Lifecycle::Apply);
        match lifecycle("b", B::Completed, B::Failed) {
            Lifecycle::Terminal(r) => {
                assert_eq!(r.code, Code::BuildTerminal);
                assert_eq!(r.extra["build_status"], json!("completed"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            lifecycle("b", B::Cancelled, B::ExitEarly),
            Lifecycle::Terminal(_)
        ));
    }

    #[test]
    fn retry_and_skip() {
        assert_eq!(retry("t", Pending, false), Reset::NotApplied);
        assert_eq!(
            retry("t", Running, false),
            Reset::Apply { close_lapsed: true }
        );
        assert_eq!(
            retry("t", Failed, false),
            Reset::Apply {
                close_lapsed: false
            }
        );
        assert!(
            matches!(retry("t", Running, true), Reset::Refuse(r) if r.code == Code::TaskAlreadyRunning)
        );
        assert!(
            matches!(retry("t", Completed, false), Reset::Refuse(r) if r.code == Code::TaskAlreadyCompleted)
        );
        assert_eq!(skip("t", Skipped, false), Reset::NotApplied);
        assert!(
            matches!(skip("t", Failed, false), Reset::Refuse(r) if r.code == Code::TaskNotSkippable)
        );
        assert!(
            matches!(skip("t", Cancelled, false), Reset::Refuse(r) if r.code == Code::TaskNotSkippable)
        );
        assert_eq!(
            skip("t", Suspended, false),
            Reset::Apply {
                close_lapsed: false
            }
        );
    }

    #[test]
    fn observations() {
        assert_eq!(
            observe(Pending, false, None, true, 5),
            Observation::Complete {
                close_lapsed: false
            }
        );
        assert_eq!(
            observe(Running, false, None, true, 5),
            Observation::Complete { close_lapsed: true }
        );
        assert_eq!(observe(Running, true, None, true, 5), Observation::Nothing);
        assert_eq!(
            observe(Completed, false, Some(4), false, 5),
            Observation::Invalidate
        );
        assert_eq!(
            observe(Completed, false, Some(6), false, 5),
            Observation::Nothing
        );
        assert_eq!(observe(Failed, false, None, false, 5), Observation::Nothing);
    }

    #[test]
    fn frontier_places() {
        assert_eq!(place(Running, true, true, false), Place::Running);
        assert_eq!(place(Pending, false, false, true), Place::Discovery);
        assert_eq!(place(Completed, false, false, true), Place::Elsewhere);
        assert_eq!(place(Pending, false, true, true), Place::Runnable);
        assert_eq!(place(Running, false, true, true), Place::Runnable);
        assert_eq!(place(Pending, false, true, false), Place::Elsewhere);
        assert_eq!(place(Failed, false, true, true), Place::Elsewhere);
    }

    fn node(t: &str, inst: u128, ups: &[u128], status: TaskStatus) -> MemberNode {
        MemberNode {
            task_id: t.into(),
            instance: inst,
            upstreams: ups.to_vec(),
            status,
            excluded: false,
        }
    }

    #[test]
    fn exclusion_cascades_past_nothing_completed() {
        // a <- b <- c, a <- d (completed) <- e
        let nodes = vec![
            node("a", 1, &[], Pending),
            node("b", 2, &[1], Pending),
            node("c", 3, &[2], Pending),
            node("d", 4, &[1], Completed),
            node("e", 5, &[4], Pending),
        ];
        assert_eq!(exclusion_cascade(&nodes, "a"), ["a", "b", "c"]);
        // A completed member blocks nobody.
        assert_eq!(exclusion_cascade(&nodes, "d"), ["d"]);
    }

    #[test]
    fn skip_blocked_reaches_a_fixed_point() {
        let members: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let ups: HashMap<String, Vec<String>> = [
            ("b".to_string(), vec!["a".to_string()]),
            ("c".to_string(), vec!["b".to_string()]),
        ]
        .into();
        let mut statuses: HashMap<String, TaskStatus> = [
            ("a".to_string(), Failed),
            ("b".to_string(), Pending),
            ("c".to_string(), Suspended),
        ]
        .into();
        assert_eq!(skip_blocked(&members, &ups, &mut statuses), ["b", "c"]);
        assert_eq!(
            skip_blocked(&members, &ups, &mut statuses),
            Vec::<String>::new()
        );
    }

    #[test]
    fn settings_hash_matches_the_sdk() {
        // stardag.build._settings: settings_hash({}) (v2-registry.md §3.1).
        assert_eq!(
            settings_hash(&BTreeMap::new()),
            "11406eac-39d0-5b1b-9423-cfb4a1454543"
        );
        let bad = json!({"A": 1});
        assert_eq!(
            check_settings(bad.as_object().unwrap()).unwrap_err().code,
            Code::InvalidSettings
        );
        let reserved = json!({"MODAL_X": "1"});
        assert_eq!(
            check_settings(reserved.as_object().unwrap())
                .unwrap_err()
                .code,
            Code::ReservedSettingsKey
        );
        let ok = json!({"b": "2", "a": "ü"});
        let s = check_settings(ok.as_object().unwrap()).unwrap();
        assert_eq!(settings_json(&s), r#"{"a":"ü","b":"2"}"#);
    }

    #[test]
    fn differing_top_level_fields() {
        let a = json!({"x": 1, "y": [1], "z": 0});
        let b = json!({"x": 1, "y": [2], "w": 0});
        assert_eq!(
            differing_fields(a.as_object().unwrap(), b.as_object().unwrap()),
            ["w", "y", "z"]
        );
    }

    #[test]
    fn wake_and_lease() {
        let s = SECOND;
        let mut w = Wake::default();
        assert!(!w.wakeable(0));
        assert!(!w.notify(false, 10 * s));
        assert_eq!(w.needs_tick_at, Some(10 * s));
        w.flag(20 * s);
        assert_eq!(
            w.needs_tick_at,
            Some(10 * s),
            "the first flag's time is kept"
        );
        assert!(w.wakeable(20 * s));
        w.handed_out_at = Some(20 * s);
        assert!(!w.wakeable(21 * s), "handed out within the window");
        assert!(w.wakeable(20 * s + WAKE_HANDOUT_WINDOW));
        // A lease blocks hand-outs; its live release spends the hand-out.
        assert!(w.acquire("o1", 60 * s, 22 * s).held);
        assert!(!w.acquire("o2", 60 * s, 23 * s).held);
        assert!(!w.wakeable(24 * s));
        assert!(w.notify(true, 24 * s), "a scheduler is live");
        assert_eq!(
            w.handed_out_at,
            Some(20 * s),
            "no new hand-out under a live lease"
        );
        assert!(!w.release("o2", 25 * s).held);
        assert!(w.release("o1", 25 * s).held);
        assert!(w.wakeable(26 * s));
        assert!(!w.renew("o1", 60 * s, 26 * s).held);
        // Stalls.
        let w = Wake {
            needs_tick_at: Some(5),
            ..Default::default()
        };
        assert_eq!(w.stalled(10), Some((Stall::FlaggedUnserved, 5)));
        assert_eq!(w.stalled(4), None);
        let w = Wake {
            lease_owner: Some("o".into()),
            lease_expires_at: Some(7),
            ..Default::default()
        };
        assert_eq!(w.stalled(10), Some((Stall::LeaseLapsed, 7)));
    }
}
