//! The v2 refusal: `{"detail": {"code", "message", ...extra}}` with the status of
//! `v2-registry.md` §8. Callers (the SDK) branch on `code`, never on the status alone,
//! so every code is one enum variant and its wire string is written once.

use serde_json::{Map, Value};

/// Every refusal code of §8 (plus `invalid_request` for body shapes the 422 list does
/// not cover).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    UnknownBuild,
    UnknownPlan,
    NotAMember,
    UnknownTask,
    UnknownDeployment,
    UnknownSettings,
    UnknownLimit,
    UnknownExecution,
    InvalidRequest,
    NoRoots,
    RootDeclaredUpstreams,
    RootMismatch,
    DeploymentNotActivated,
    InvalidSettings,
    ReservedSettingsKey,
    ChunkTooLarge,
    ClockSkew,
    ObservedAtNaive,
    UnknownUpstream,
    YieldedNotInItems,
    InvalidClaimTtl,
    DeploymentIdRequired,
    AppNameRequired,
    BuildTerminal,
    BuildNotRunning,
    PlanIncomplete,
    PlanIncompleteRegistration,
    PlanSuperseded,
    PlanIdConflict,
    RootInstanceConflict,
    InstanceConflict,
    InstanceBodyConflict,
    TaskIdentityConflict,
    TaskAlreadyCompleted,
    TaskAlreadyRunning,
    TaskNotSkippable,
    MemberExcluded,
    UpstreamIncomplete,
    ConcurrencyLimitReached,
    ExecutionSuperseded,
    ExecutionNotCurrent,
    ExecutionAlreadyEnded,
    NotClaimHolder,
    ClaimNotHeld,
    DeploymentMismatch,
    DeploymentNotCurrent,
    DeploymentIdConflict,
    DeploymentActivationConflict,
    LocalDeploymentConflict,
    BuildIdConflict,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            UnknownBuild => "unknown_build",
            UnknownPlan => "unknown_plan",
            NotAMember => "not_a_member",
            UnknownTask => "unknown_task",
            UnknownDeployment => "unknown_deployment",
            UnknownSettings => "unknown_settings",
            UnknownLimit => "unknown_limit",
            UnknownExecution => "unknown_execution",
            InvalidRequest => "invalid_request",
            NoRoots => "no_roots",
            RootDeclaredUpstreams => "root_declared_upstreams",
            RootMismatch => "root_mismatch",
            DeploymentNotActivated => "deployment_not_activated",
            InvalidSettings => "invalid_settings",
            ReservedSettingsKey => "reserved_settings_key",
            ChunkTooLarge => "chunk_too_large",
            ClockSkew => "clock_skew",
            ObservedAtNaive => "observed_at_naive",
            UnknownUpstream => "unknown_upstream",
            YieldedNotInItems => "yielded_not_in_items",
            InvalidClaimTtl => "invalid_claim_ttl",
            DeploymentIdRequired => "deployment_id_required",
            AppNameRequired => "app_name_required",
            BuildTerminal => "build_terminal",
            BuildNotRunning => "build_not_running",
            PlanIncomplete => "plan_incomplete",
            PlanIncompleteRegistration => "plan_incomplete_registration",
            PlanSuperseded => "plan_superseded",
            PlanIdConflict => "plan_id_conflict",
            RootInstanceConflict => "root_instance_conflict",
            InstanceConflict => "instance_conflict",
            InstanceBodyConflict => "instance_body_conflict",
            TaskIdentityConflict => "task_identity_conflict",
            TaskAlreadyCompleted => "task_already_completed",
            TaskAlreadyRunning => "task_already_running",
            TaskNotSkippable => "task_not_skippable",
            MemberExcluded => "member_excluded",
            UpstreamIncomplete => "upstream_incomplete",
            ConcurrencyLimitReached => "concurrency_limit_reached",
            ExecutionSuperseded => "execution_superseded",
            ExecutionNotCurrent => "execution_not_current",
            ExecutionAlreadyEnded => "execution_already_ended",
            NotClaimHolder => "not_claim_holder",
            ClaimNotHeld => "claim_not_held",
            DeploymentMismatch => "deployment_mismatch",
            DeploymentNotCurrent => "deployment_not_current",
            DeploymentIdConflict => "deployment_id_conflict",
            DeploymentActivationConflict => "deployment_activation_conflict",
            LocalDeploymentConflict => "local_deployment_conflict",
            BuildIdConflict => "build_id_conflict",
        }
    }

    /// The status §8 gives the code; a few routes answer another one
    /// ([`Refusal::with_status`]).
    pub fn status(self) -> u16 {
        use Code::*;
        match self {
            UnknownBuild | UnknownPlan | NotAMember | UnknownTask | UnknownDeployment
            | UnknownSettings | UnknownLimit => 404,
            InvalidRequest => 422,
            NoRoots
            | RootDeclaredUpstreams
            | RootMismatch
            | DeploymentNotActivated
            | InvalidSettings
            | ReservedSettingsKey
            | ChunkTooLarge
            | ClockSkew
            | ObservedAtNaive
            | UnknownUpstream
            | YieldedNotInItems
            | InvalidClaimTtl
            | DeploymentIdRequired
            | AppNameRequired => 400,
            _ => 409,
        }
    }
}

/// A refusal: status, code, a human message, and the extra keys the SDK reads
/// (`build_status`, `task_ids`, `claim_outcome`, …).
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub code: Code,
    pub message: String,
    pub extra: Map<String, Value>,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal {
            status: code.status(),
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// Adds an extra key of the refusal body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Refusal {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// The same code under another status (`unknown_deployment` is 400 on plan
    /// create, `unknown_execution` 404 on `/stopped`).
    pub fn with_status(mut self, status: u16) -> Refusal {
        self.status = status;
        self
    }

    /// The `detail` object: code and message first, then the extras.
    pub fn detail(&self) -> Value {
        let mut detail = Map::new();
        detail.insert("code".into(), Value::from(self.code.as_str()));
        detail.insert("message".into(), Value::from(self.message.clone()));
        for (k, v) in &self.extra {
            detail.insert(k.clone(), v.clone());
        }
        Value::Object(detail)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detail_carries_code_message_and_extras() {
        let r =
            Refusal::new(Code::BuildTerminal, "the build is FAILED").with("build_status", "failed");
        assert_eq!(r.status, 409);
        assert_eq!(
            r.detail(),
            json!({"code": "build_terminal", "message": "the build is FAILED", "build_status": "failed"})
        );
        let r = Refusal::new(Code::UnknownDeployment, "no deployment").with_status(400);
        assert_eq!((r.status, r.code.status()), (400, 404));
    }
}
