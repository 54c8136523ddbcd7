//! The whole route table: (method, decoded path segments) → a typed [`Endpoint`].
//!
//! Path ids stay raw strings here: upstream authenticates before it validates path
//! parameters (an unauthenticated request with a malformed id gets 401, not 422), so
//! handlers parse them after authentication.

use http::Method;

use super::response::ApiError;

/// Which credential a route takes (v1-identity §3.2, D11, D31).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// (N) no credential.
    None,
    /// (I) an internal token; membership of the path workspace decides access.
    Internal,
    /// (F) an internal token, or the identity token (OIDC token, or a local session).
    Flexible,
    /// (X) the identity token only: `/auth/exchange`.
    Exchange,
    /// (S) an API key, or an internal token plus `?environment_id=`.
    Sdk,
    /// The web UI's cookie session (D34): the UI layer checks it and membership itself,
    /// then builds the same `Caller` the API handlers get (src/ui/session.rs).
    UiSession,
}

/// Raw path ids: validated by handlers after authentication (see module docs).
pub type Id = String;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    Metrics,
    Version,
    OpenApi,
    Docs,
    // Auth (mounted at `/` and at `/api/v1`)
    Jwks,
    AuthConfig,
    Exchange,
    Login,
    Register,
    // `POST /api/v1/auth/change-password` (ui.md §9): local mode, a signed-in user.
    ChangePassword,
    // Current user
    Me,
    MyInvites,
    ListWorkspaces,
    // Workspaces
    CreateWorkspace,
    GetWorkspace { ws: Id },
    UpdateWorkspace { ws: Id },
    DeleteWorkspace { ws: Id },
    WorkspaceTargetRoots { ws: Id },
    // Members
    ListMembers { ws: Id },
    UpdateMember { ws: Id, member: Id },
    RemoveMember { ws: Id, member: Id },
    // Invites
    ListInvites { ws: Id },
    CreateInvite { ws: Id },
    CancelInvite { ws: Id, invite: Id },
    AcceptInvite { invite: Id },
    DeclineInvite { invite: Id },
    // Environments
    ListEnvironments { ws: Id },
    CreateEnvironment { ws: Id },
    GetEnvironment { ws: Id, env: Id },
    UpdateEnvironment { ws: Id, env: Id },
    DeleteEnvironment { ws: Id, env: Id },
    // API keys
    ListApiKeys { ws: Id, env: Id },
    CreateApiKey { ws: Id, env: Id },
    RevokeApiKey { ws: Id, env: Id, key: Id },
    // Target roots
    ListTargetRoots { ws: Id, env: Id },
    CreateTargetRoot { ws: Id, env: Id },
    GetTargetRoot { ws: Id, env: Id, root: Id },
    UpdateTargetRoot { ws: Id, env: Id, root: Id },
    DeleteTargetRoot { ws: Id, env: Id, root: Id },
    SdkTargetRoots,
    // Builds (v1-tasks §4.1; PATCH is D6)
    CreateBuild,
    ListBuilds,
    GetBuild { build: Id },
    PatchBuild { build: Id },
    CompleteBuild { build: Id },
    FailBuild { build: Id },
    CancelBuild { build: Id },
    ExitEarlyBuild { build: Id },
    // Tasks inside a build (§4.2; the seed's `POST /tasks` is D6)
    RegisterTask { build: Id },
    RegisterTaskSeed,
    StartTask { build: Id, task: Id },
    CompleteTask { build: Id, task: Id },
    FailTask { build: Id, task: Id },
    SuspendTask { build: Id, task: Id },
    ResumeTask { build: Id, task: Id },
    CancelTask { build: Id, task: Id },
    TaskWaitingForLock { build: Id, task: Id },
    UploadAssets { build: Id, task: Id },
    BuildTasks { build: Id },
    BuildEvents { build: Id },
    BuildGraph { build: Id },
    // Tasks, environment-wide (§4.3)
    ListTasks,
    GetTask { task: Id },
    TaskAssets { task: Id },
    TaskEvents { task: Id },
    TaskMetadata { task: Id },
    // Locks (§4.5, D19)
    AcquireLock { name: Id },
    RenewLock { name: Id },
    ReleaseLock { name: Id },
    ListLocks,
    GetLock { name: Id },
    LockCompletionStatus { task: Id },
    // Search (§4.4, D20)
    SearchTasks,
    SearchKeys,
    SearchValues,
    SearchColumns,
    // The v2 registry (`/api/v2`, v2-registry.md §5): the current SDK.
    V2(V2),
    // The web UI (ui.md §3.3, D34): HTML pages under fixed prefixes.
    Ui(Ui),
}

/// The web UI's routes (ui.md §3.3). `ws` is a workspace slug, `env` an environment
/// slug; both are resolved against the signed-in user's memberships (src/ui/scope.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ui {
    Home,
    LoginForm,
    Login,
    Logout,
    Account,
    /// OIDC mode: the redirect to the provider, and its answer (ui.md §3.4).
    LoginOidc,
    LoginCallback,
    Static {
        name: Id,
    },
    Connect {
        ws: Id,
        env: Id,
    },
    ConnectCreateKey {
        ws: Id,
        env: Id,
    },
    Builds {
        ws: Id,
        env: Id,
    },
    Build {
        ws: Id,
        env: Id,
        build: Id,
    },
    BuildState {
        ws: Id,
        env: Id,
        build: Id,
    },
    BuildGraphSvg {
        ws: Id,
        env: Id,
        build: Id,
    },
    BuildOverride {
        ws: Id,
        env: Id,
        build: Id,
    },
    Task {
        ws: Id,
        env: Id,
        task: Id,
    },
    /// The task explorer (P7): search state in the query string.
    TaskExplorer {
        ws: Id,
        env: Id,
    },
    Locks {
        ws: Id,
        env: Id,
    },
    ApiKeys {
        ws: Id,
    },
    CreateApiKey {
        ws: Id,
    },
    RevokeApiKey {
        ws: Id,
        key: Id,
    },
    /// The workspace settings pages (P9) other than API keys.
    Settings {
        ws: Id,
        page: SettingsPage,
    },
    /// A settings form (P9): each runs one workspace API handler.
    SettingsPost {
        ws: Id,
        action: SettingsAction,
    },
    /// P10: the create-workspace form and its POST.
    NewWorkspace,
    CreateWorkspace,
    /// P11: my pending invites; accept or decline one.
    MyInvites,
    AnswerInvite {
        invite: Id,
        accept: bool,
    },
    /// P12: the change-password form's POST.
    ChangePassword,
    /// The explorer's autocomplete (JSON): the API's `/tasks/search/keys|values`.
    SearchSuggest {
        ws: Id,
        env: Id,
        values: bool,
    },
    /// Any other path under `/ws/`: the UI's HTML 404 page.
    NotFound,
}

/// `/ws/{ws}/settings[/…]` (ui.md P9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsPage {
    General,
    Members,
    Invites,
    Environments,
    TargetRoots,
    Danger,
}

/// The POSTs under `/ws/{ws}/settings` (ui.md P9). Environments are named by slug,
/// members, invites and target roots by id (a target root's environment is a form field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsAction {
    UpdateWorkspace,
    DeleteWorkspace,
    SetRole { member: Id },
    RemoveMember { member: Id },
    CreateInvite,
    CancelInvite { invite: Id },
    CreateEnvironment,
    UpdateEnvironment { env: Id },
    DeleteEnvironment { env: Id },
    CreateTargetRoot,
    UpdateTargetRoot { root: Id },
    DeleteTargetRoot { root: Id },
}

impl Ui {
    pub fn name(&self) -> &'static str {
        use Ui::*;
        match self {
            Home => "ui_home",
            LoginForm => "ui_login_form",
            Login => "ui_login",
            Logout => "ui_logout",
            Account => "ui_account",
            LoginOidc => "ui_login_oidc",
            LoginCallback => "ui_login_callback",
            Static { .. } => "ui_static",
            Connect { .. } => "ui_connect",
            ConnectCreateKey { .. } => "ui_connect_create_key",
            Builds { .. } => "ui_builds",
            Build { .. } => "ui_build",
            BuildState { .. } => "ui_build_state",
            BuildGraphSvg { .. } => "ui_build_graph_svg",
            BuildOverride { .. } => "ui_build_override",
            Task { .. } => "ui_task",
            TaskExplorer { .. } => "ui_task_explorer",
            Locks { .. } => "ui_locks",
            ApiKeys { .. } => "ui_api_keys",
            CreateApiKey { .. } => "ui_create_api_key",
            RevokeApiKey { .. } => "ui_revoke_api_key",
            Settings { .. } => "ui_settings",
            SettingsPost { .. } => "ui_settings_post",
            NewWorkspace => "ui_new_workspace",
            CreateWorkspace => "ui_create_workspace",
            MyInvites => "ui_my_invites",
            AnswerInvite { .. } => "ui_answer_invite",
            ChangePassword => "ui_change_password",
            SearchSuggest { .. } => "ui_search_suggest",
            NotFound => "ui_not_found",
        }
    }
}

/// The `/api/v2` routes (v2-registry.md §5). Every one takes SDK credentials (mode S).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2 {
    // Deployments, settings, concurrency limits (§5.1)
    CreateDeployment,
    ListDeployments,
    GetDeployment {
        deployment: Id,
    },
    ActivateDeployment {
        deployment: Id,
    },
    GetSettings {
        hash: Id,
    },
    ListLimits,
    PutLimit {
        key: Id,
    },
    DeleteLimit {
        key: Id,
    },
    // Builds (§5.2)
    CreateBuild,
    ListBuilds,
    GetBuild {
        build: Id,
    },
    ResumeBuild {
        build: Id,
    },
    CompleteBuild {
        build: Id,
    },
    FailBuild {
        build: Id,
    },
    CancelBuild {
        build: Id,
    },
    ExitEarlyBuild {
        build: Id,
    },
    SkipBlocked {
        build: Id,
    },
    Frontier {
        build: Id,
    },
    BuildExecutions {
        build: Id,
    },
    BuildPlans {
        build: Id,
    },
    BuildEvents {
        build: Id,
    },
    CreatePlan {
        build: Id,
    },
    // Reactive scheduling (§5.2, §6.7)
    ReactiveMeta {
        build: Id,
    },
    Notify {
        build: Id,
    },
    GetNotify {
        build: Id,
    },
    ClearNotify {
        build: Id,
    },
    WakeCandidates,
    AcquireLease {
        build: Id,
    },
    RenewLease {
        build: Id,
    },
    ReleaseLease {
        build: Id,
    },
    AddTickSummary {
        build: Id,
    },
    ListTickSummaries {
        build: Id,
    },
    StalledBuilds,
    // Plans (§5.3) and member actions (§5.4)
    RegisterMembers {
        plan: Id,
    },
    SealPlan {
        plan: Id,
    },
    GetPlan {
        plan: Id,
    },
    PlanRoots {
        plan: Id,
    },
    Member {
        plan: Id,
        task: Id,
        action: MemberAction,
    },
    // Tasks, claims, executions (§5.5)
    ListTasks,
    GetTask {
        task: Id,
    },
    TaskExecutions {
        task: Id,
    },
    TaskEvents {
        task: Id,
    },
    TaskArtifacts {
        task: Id,
    },
    RenewClaim {
        task: Id,
    },
    ExecutionStopped {
        execution: Id,
    },
}

/// `POST /api/v2/plans/{plan}/members/{task}/<action>` (§5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAction {
    Start,
    Complete,
    Fail,
    Interrupt,
    Preempt,
    Yield,
    Retry,
    Cancel,
    Skip,
    Exclude,
    DiscoveryFailed,
    Artifacts,
}

impl MemberAction {
    fn parse(s: &str) -> Option<MemberAction> {
        use MemberAction::*;
        Some(match s {
            "start" => Start,
            "complete" => Complete,
            "fail" => Fail,
            "interrupt" => Interrupt,
            "preempt" => Preempt,
            "yield" => Yield,
            "retry" => Retry,
            "cancel" => Cancel,
            "skip" => Skip,
            "exclude" => Exclude,
            "discovery-failed" => DiscoveryFailed,
            "artifacts" => Artifacts,
            _ => return None,
        })
    }
}

impl V2 {
    /// Stable name for logs and metrics labels.
    pub fn name(&self) -> &'static str {
        use MemberAction as A;
        use V2::*;
        match self {
            CreateDeployment => "v2_create_deployment",
            ListDeployments => "v2_list_deployments",
            GetDeployment { .. } => "v2_get_deployment",
            ActivateDeployment { .. } => "v2_activate_deployment",
            GetSettings { .. } => "v2_get_settings",
            ListLimits => "v2_list_limits",
            PutLimit { .. } => "v2_put_limit",
            DeleteLimit { .. } => "v2_delete_limit",
            CreateBuild => "v2_create_build",
            ListBuilds => "v2_list_builds",
            GetBuild { .. } => "v2_get_build",
            ResumeBuild { .. } => "v2_resume_build",
            CompleteBuild { .. } => "v2_complete_build",
            FailBuild { .. } => "v2_fail_build",
            CancelBuild { .. } => "v2_cancel_build",
            ExitEarlyBuild { .. } => "v2_exit_early_build",
            SkipBlocked { .. } => "v2_skip_blocked",
            Frontier { .. } => "v2_frontier",
            BuildExecutions { .. } => "v2_build_executions",
            BuildPlans { .. } => "v2_build_plans",
            BuildEvents { .. } => "v2_build_events",
            CreatePlan { .. } => "v2_create_plan",
            ReactiveMeta { .. } => "v2_reactive_meta",
            Notify { .. } => "v2_notify",
            GetNotify { .. } => "v2_get_notify",
            ClearNotify { .. } => "v2_clear_notify",
            WakeCandidates => "v2_wake_candidates",
            AcquireLease { .. } => "v2_acquire_lease",
            RenewLease { .. } => "v2_renew_lease",
            ReleaseLease { .. } => "v2_release_lease",
            AddTickSummary { .. } => "v2_add_tick_summary",
            ListTickSummaries { .. } => "v2_list_tick_summaries",
            StalledBuilds => "v2_stalled_builds",
            RegisterMembers { .. } => "v2_register_members",
            SealPlan { .. } => "v2_seal_plan",
            GetPlan { .. } => "v2_get_plan",
            PlanRoots { .. } => "v2_plan_roots",
            Member { action, .. } => match action {
                A::Start => "v2_member_start",
                A::Complete => "v2_member_complete",
                A::Fail => "v2_member_fail",
                A::Interrupt => "v2_member_interrupt",
                A::Preempt => "v2_member_preempt",
                A::Yield => "v2_member_yield",
                A::Retry => "v2_member_retry",
                A::Cancel => "v2_member_cancel",
                A::Skip => "v2_member_skip",
                A::Exclude => "v2_member_exclude",
                A::DiscoveryFailed => "v2_member_discovery_failed",
                A::Artifacts => "v2_member_artifacts",
            },
            ListTasks => "v2_list_tasks",
            GetTask { .. } => "v2_get_task",
            TaskExecutions { .. } => "v2_task_executions",
            TaskEvents { .. } => "v2_task_events",
            TaskArtifacts { .. } => "v2_task_artifacts",
            RenewClaim { .. } => "v2_renew_claim",
            ExecutionStopped { .. } => "v2_execution_stopped",
        }
    }

    /// Routes whose body the SDK may send (read before authentication, like v1's);
    /// the others are sent without one, and a body there is ignored.
    fn json_body(&self) -> bool {
        use V2::*;
        matches!(
            self,
            CreateDeployment
                | ActivateDeployment { .. }
                | PutLimit { .. }
                | CreateBuild
                | ResumeBuild { .. }
                | CompleteBuild { .. }
                | FailBuild { .. }
                | CreatePlan { .. }
                | ReactiveMeta { .. }
                | AddTickSummary { .. }
                | RegisterMembers { .. }
                | Member { .. }
                | RenewClaim { .. }
                | ExecutionStopped { .. }
        )
    }
}

impl Endpoint {
    /// Stable name for spans, logs and metrics labels.
    pub fn name(&self) -> &'static str {
        use Endpoint::*;
        match self {
            Health => "health",
            Metrics => "metrics",
            Version => "version",
            OpenApi => "openapi",
            Docs => "docs",
            Jwks => "jwks",
            AuthConfig => "auth_config",
            Exchange => "auth_exchange",
            Login => "auth_login",
            Register => "auth_register",
            ChangePassword => "auth_change_password",
            Me => "me",
            MyInvites => "my_invites",
            ListWorkspaces => "list_workspaces",
            CreateWorkspace => "create_workspace",
            GetWorkspace { .. } => "get_workspace",
            UpdateWorkspace { .. } => "update_workspace",
            DeleteWorkspace { .. } => "delete_workspace",
            WorkspaceTargetRoots { .. } => "workspace_target_roots",
            ListMembers { .. } => "list_members",
            UpdateMember { .. } => "update_member",
            RemoveMember { .. } => "remove_member",
            ListInvites { .. } => "list_invites",
            CreateInvite { .. } => "create_invite",
            CancelInvite { .. } => "cancel_invite",
            AcceptInvite { .. } => "accept_invite",
            DeclineInvite { .. } => "decline_invite",
            ListEnvironments { .. } => "list_environments",
            CreateEnvironment { .. } => "create_environment",
            GetEnvironment { .. } => "get_environment",
            UpdateEnvironment { .. } => "update_environment",
            DeleteEnvironment { .. } => "delete_environment",
            ListApiKeys { .. } => "list_api_keys",
            CreateApiKey { .. } => "create_api_key",
            RevokeApiKey { .. } => "revoke_api_key",
            ListTargetRoots { .. } => "list_target_roots",
            CreateTargetRoot { .. } => "create_target_root",
            GetTargetRoot { .. } => "get_target_root",
            UpdateTargetRoot { .. } => "update_target_root",
            DeleteTargetRoot { .. } => "delete_target_root",
            SdkTargetRoots => "sdk_target_roots",
            CreateBuild => "create_build",
            ListBuilds => "list_builds",
            GetBuild { .. } => "get_build",
            PatchBuild { .. } => "patch_build",
            CompleteBuild { .. } => "complete_build",
            FailBuild { .. } => "fail_build",
            CancelBuild { .. } => "cancel_build",
            ExitEarlyBuild { .. } => "exit_early_build",
            RegisterTask { .. } => "register_task",
            RegisterTaskSeed => "register_task_seed",
            StartTask { .. } => "start_task",
            CompleteTask { .. } => "complete_task",
            FailTask { .. } => "fail_task",
            SuspendTask { .. } => "suspend_task",
            ResumeTask { .. } => "resume_task",
            CancelTask { .. } => "cancel_task",
            TaskWaitingForLock { .. } => "task_waiting_for_lock",
            UploadAssets { .. } => "upload_task_assets",
            BuildTasks { .. } => "build_tasks",
            BuildEvents { .. } => "build_events",
            BuildGraph { .. } => "build_graph",
            ListTasks => "list_tasks",
            GetTask { .. } => "get_task",
            TaskAssets { .. } => "task_assets",
            TaskEvents { .. } => "task_events",
            TaskMetadata { .. } => "task_metadata",
            AcquireLock { .. } => "acquire_lock",
            RenewLock { .. } => "renew_lock",
            ReleaseLock { .. } => "release_lock",
            ListLocks => "list_locks",
            GetLock { .. } => "get_lock",
            LockCompletionStatus { .. } => "lock_completion_status",
            SearchTasks => "search_tasks",
            SearchKeys => "search_keys",
            SearchValues => "search_values",
            SearchColumns => "search_columns",
            V2(route) => route.name(),
            Ui(route) => route.name(),
        }
    }

    /// Routes with a JSON body model: their body is read and parsed before
    /// authentication (upstream answers 422 for broken JSON before 401).
    pub fn json_body(&self) -> bool {
        use Endpoint::*;
        if let V2(route) = self {
            return route.json_body();
        }
        matches!(
            self,
            Exchange
                | Login
                | Register
                | ChangePassword
                | CreateWorkspace
                | UpdateWorkspace { .. }
                | UpdateMember { .. }
                | CreateInvite { .. }
                | CreateEnvironment { .. }
                | UpdateEnvironment { .. }
                | CreateApiKey { .. }
                | CreateTargetRoot { .. }
                | UpdateTargetRoot { .. }
                | CreateBuild
                | PatchBuild { .. }
                | RegisterTask { .. }
                | RegisterTaskSeed
                | UploadAssets { .. }
                | AcquireLock { .. }
                | RenewLock { .. }
                | ReleaseLock { .. }
        )
    }

    /// Lock routes, whose answers to the SDK carry `Connection: close` (see
    /// `http::sdk_lock_client`).
    pub fn is_lock_route(&self) -> bool {
        use Endpoint::*;
        matches!(
            self,
            AcquireLock { .. }
                | RenewLock { .. }
                | ReleaseLock { .. }
                | ListLocks
                | GetLock { .. }
                | LockCompletionStatus { .. }
        )
    }

    /// The credential each route takes: one table, so no route can forget it.
    pub fn auth(&self) -> AuthKind {
        use Endpoint::*;
        match self {
            Health | Metrics | Version | OpenApi | Docs | Jwks | AuthConfig | Login | Register => {
                AuthKind::None
            }
            Exchange => AuthKind::Exchange,
            Me
            | MyInvites
            | ChangePassword
            | ListWorkspaces
            | CreateWorkspace
            | AcceptInvite { .. }
            | DeclineInvite { .. } => AuthKind::Flexible,
            GetWorkspace { .. }
            | UpdateWorkspace { .. }
            | DeleteWorkspace { .. }
            | WorkspaceTargetRoots { .. }
            | ListMembers { .. }
            | UpdateMember { .. }
            | RemoveMember { .. }
            | ListInvites { .. }
            | CreateInvite { .. }
            | CancelInvite { .. }
            | ListEnvironments { .. }
            | CreateEnvironment { .. }
            | GetEnvironment { .. }
            | UpdateEnvironment { .. }
            | DeleteEnvironment { .. }
            | ListApiKeys { .. }
            | CreateApiKey { .. }
            | RevokeApiKey { .. }
            | ListTargetRoots { .. }
            | CreateTargetRoot { .. }
            | GetTargetRoot { .. }
            | UpdateTargetRoot { .. }
            | DeleteTargetRoot { .. } => AuthKind::Internal,
            SdkTargetRoots
            | CreateBuild
            | ListBuilds
            | GetBuild { .. }
            | PatchBuild { .. }
            | CompleteBuild { .. }
            | FailBuild { .. }
            | CancelBuild { .. }
            | ExitEarlyBuild { .. }
            | RegisterTask { .. }
            | RegisterTaskSeed
            | StartTask { .. }
            | CompleteTask { .. }
            | FailTask { .. }
            | SuspendTask { .. }
            | ResumeTask { .. }
            | CancelTask { .. }
            | TaskWaitingForLock { .. }
            | UploadAssets { .. }
            | BuildTasks { .. }
            | BuildEvents { .. }
            | BuildGraph { .. }
            | ListTasks
            | GetTask { .. }
            | TaskAssets { .. }
            | TaskEvents { .. }
            | TaskMetadata { .. }
            | AcquireLock { .. }
            | RenewLock { .. }
            | ReleaseLock { .. }
            | ListLocks
            | GetLock { .. }
            | LockCompletionStatus { .. }
            | SearchTasks
            | SearchKeys
            | SearchValues
            | SearchColumns
            | V2(_) => AuthKind::Sdk,
            Ui(_) => AuthKind::UiSession,
        }
    }
}

/// Methods a path may be served with; HEAD rides on GET (as Starlette does).
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Resolves a request to its endpoint, or to 404 / 405 (with the allowed methods).
pub fn route(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
    let segments = split_path(path).ok_or_else(|| ApiError::not_found("Not Found"))?;
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let effective = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    if let Some(endpoint) = match_route(effective, &segs) {
        return Ok(endpoint);
    }
    let mut allowed: Vec<Method> = METHODS
        .iter()
        .filter(|m| match_route(m, &segs).is_some())
        .cloned()
        .collect();
    if allowed.is_empty() {
        return Err(ApiError::not_found("Not Found"));
    }
    if allowed.contains(&Method::GET) {
        allowed.insert(1, Method::HEAD);
    }
    Err(ApiError::MethodNotAllowed(allowed))
}

/// Splits on `/` first and percent-decodes each segment after, so an encoded `%2F`
/// stays inside its segment. One trailing slash is ignored (D7). Empty inner segments,
/// `.`/`..` and invalid UTF-8 match nothing.
fn split_path(path: &str) -> Option<Vec<String>> {
    let trimmed = path.strip_prefix('/')?;
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    trimmed
        .split('/')
        .map(|raw| {
            let seg = percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .ok()?
                .into_owned();
            (!seg.is_empty() && seg != "." && seg != "..").then_some(seg)
        })
        .collect()
}

/// The route table. Read it top to bottom: one line per route.
fn match_route(method: &Method, segs: &[&str]) -> Option<Endpoint> {
    use Endpoint::*;
    let m = method.as_str();
    // The auth router is mounted twice upstream: at `/` and at `/api/v1`.
    let auth_tail = match segs {
        ["api", "v1", rest @ ..] if is_auth_path(rest) => rest,
        rest if is_auth_path(rest) => rest,
        _ => &[][..],
    };
    if !auth_tail.is_empty() {
        return match (m, auth_tail) {
            ("GET", [".well-known", "jwks.json"]) => Some(Jwks),
            ("GET", ["auth", "config"]) => Some(AuthConfig),
            ("POST", ["auth", "exchange"]) => Some(Exchange),
            _ => None,
        };
    }
    // Workspace routes live under `/api/v1/ui/workspaces`, mirrored under
    // `/api/v1/workspaces` (D6).
    if let Some(tail) = workspace_tail(segs) {
        return match_workspace_route(m, tail);
    }
    match segs {
        ["api", "v1", "builds", tail @ ..] => return match_build_route(m, tail),
        ["api", "v1", "tasks", tail @ ..] => return match_task_route(m, tail),
        ["api", "v1", "locks", tail @ ..] => return match_lock_route(m, tail),
        ["api", "v2", tail @ ..] => return match_v2_route(m, tail).map(V2),
        _ => {}
    }
    if let Some(route) = match_ui_route(m, segs) {
        return Some(Ui(route));
    }
    let endpoint = match (m, segs) {
        ("GET", ["health"]) => Health,
        ("GET", ["metrics"]) => Metrics,
        ("GET", ["api", "v1", "version"]) => Version,
        ("GET", ["openapi.json"]) => OpenApi,
        ("GET", ["docs"]) => Docs,
        ("POST", ["api", "v1", "auth", "login"]) => Login,
        ("POST", ["api", "v1", "auth", "register"]) => Register,
        ("POST", ["api", "v1", "auth", "change-password"]) => ChangePassword,
        ("GET", ["api", "v1", "ui", "me"]) => Me,
        ("GET", ["api", "v1", "ui", "me", "invites"]) => MyInvites,
        ("GET", ["api", "v1", "target-roots"]) => SdkTargetRoots,
        _ => return None,
    };
    Some(endpoint)
}

fn is_auth_path(segs: &[&str]) -> bool {
    matches!(
        segs,
        [".well-known", "jwks.json"] | ["auth", "config" | "exchange"]
    )
}

/// The part after `api/v1/ui/workspaces` or `api/v1/workspaces` (empty for the
/// collection itself).
fn workspace_tail<'a>(segs: &'a [&'a str]) -> Option<&'a [&'a str]> {
    match segs {
        ["api", "v1", "ui", "workspaces", rest @ ..] => Some(rest),
        ["api", "v1", "workspaces", rest @ ..] => Some(rest),
        _ => None,
    }
}

fn match_workspace_route(m: &str, tail: &[&str]) -> Option<Endpoint> {
    use Endpoint::*;
    let id = |s: &str| s.to_string();
    let endpoint = match (m, tail) {
        ("GET", []) => ListWorkspaces,
        ("POST", []) => CreateWorkspace,
        ("POST", ["invites", inv, "accept"]) => AcceptInvite { invite: id(inv) },
        ("POST", ["invites", inv, "decline"]) => DeclineInvite { invite: id(inv) },
        ("GET", [ws]) => GetWorkspace { ws: id(ws) },
        ("PATCH", [ws]) => UpdateWorkspace { ws: id(ws) },
        ("DELETE", [ws]) => DeleteWorkspace { ws: id(ws) },
        ("GET", [ws, "target-roots"]) => WorkspaceTargetRoots { ws: id(ws) },
        ("GET", [ws, "members"]) => ListMembers { ws: id(ws) },
        ("PATCH", [ws, "members", mem]) => UpdateMember {
            ws: id(ws),
            member: id(mem),
        },
        ("DELETE", [ws, "members", mem]) => RemoveMember {
            ws: id(ws),
            member: id(mem),
        },
        ("GET", [ws, "invites"]) => ListInvites { ws: id(ws) },
        ("POST", [ws, "invites"]) => CreateInvite { ws: id(ws) },
        ("DELETE", [ws, "invites", inv]) => CancelInvite {
            ws: id(ws),
            invite: id(inv),
        },
        ("GET", [ws, "environments"]) => ListEnvironments { ws: id(ws) },
        ("POST", [ws, "environments"]) => CreateEnvironment { ws: id(ws) },
        ("GET", [ws, "environments", env]) => GetEnvironment {
            ws: id(ws),
            env: id(env),
        },
        ("PATCH", [ws, "environments", env]) => UpdateEnvironment {
            ws: id(ws),
            env: id(env),
        },
        ("DELETE", [ws, "environments", env]) => DeleteEnvironment {
            ws: id(ws),
            env: id(env),
        },
        ("GET", [ws, "environments", env, "api-keys"]) => ListApiKeys {
            ws: id(ws),
            env: id(env),
        },
        ("POST", [ws, "environments", env, "api-keys"]) => CreateApiKey {
            ws: id(ws),
            env: id(env),
        },
        ("DELETE", [ws, "environments", env, "api-keys", key]) => RevokeApiKey {
            ws: id(ws),
            env: id(env),
            key: id(key),
        },
        ("GET", [ws, "environments", env, "target-roots"]) => ListTargetRoots {
            ws: id(ws),
            env: id(env),
        },
        ("POST", [ws, "environments", env, "target-roots"]) => CreateTargetRoot {
            ws: id(ws),
            env: id(env),
        },
        ("GET", [ws, "environments", env, "target-roots", root]) => GetTargetRoot {
            ws: id(ws),
            env: id(env),
            root: id(root),
        },
        ("PATCH", [ws, "environments", env, "target-roots", root]) => UpdateTargetRoot {
            ws: id(ws),
            env: id(env),
            root: id(root),
        },
        ("DELETE", [ws, "environments", env, "target-roots", root]) => DeleteTargetRoot {
            ws: id(ws),
            env: id(env),
            root: id(root),
        },
        _ => return None,
    };
    Some(endpoint)
}

/// `/api/v1/builds…`: builds and the tasks inside them (v1-tasks §4.1, §4.2).
fn match_build_route(m: &str, tail: &[&str]) -> Option<Endpoint> {
    use Endpoint::*;
    let id = |s: &str| s.to_string();
    let endpoint = match (m, tail) {
        ("POST", []) => CreateBuild,
        ("GET", []) => ListBuilds,
        ("GET", [b]) => GetBuild { build: id(b) },
        ("PATCH", [b]) => PatchBuild { build: id(b) },
        ("POST", [b, "complete"]) => CompleteBuild { build: id(b) },
        ("POST", [b, "fail"]) => FailBuild { build: id(b) },
        ("POST", [b, "cancel"]) => CancelBuild { build: id(b) },
        ("POST", [b, "exit-early"]) => ExitEarlyBuild { build: id(b) },
        ("POST", [b, "tasks"]) => RegisterTask { build: id(b) },
        ("GET", [b, "tasks"]) => BuildTasks { build: id(b) },
        ("GET", [b, "events"]) => BuildEvents { build: id(b) },
        ("GET", [b, "graph"]) => BuildGraph { build: id(b) },
        ("POST", [b, "tasks", t, action]) => {
            let (build, task) = (id(b), id(t));
            match *action {
                "start" => StartTask { build, task },
                "complete" => CompleteTask { build, task },
                "fail" => FailTask { build, task },
                "suspend" => SuspendTask { build, task },
                "resume" => ResumeTask { build, task },
                "cancel" => CancelTask { build, task },
                "waiting-for-lock" => TaskWaitingForLock { build, task },
                "assets" => UploadAssets { build, task },
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(endpoint)
}

/// `/api/v1/tasks…`, environment-wide (§4.3), and search (§4.4). The search lines come
/// first (§1.1: upstream mounts search first), so `GET /tasks/search` is never a task
/// named `search`, while `/tasks/search/assets|events|metadata` still are.
fn match_task_route(m: &str, tail: &[&str]) -> Option<Endpoint> {
    use Endpoint::*;
    let id = |s: &str| s.to_string();
    let endpoint = match (m, tail) {
        ("POST", []) => RegisterTaskSeed,
        ("GET", []) => ListTasks,
        ("GET", ["search"]) => SearchTasks,
        ("GET", ["search", "keys"]) => SearchKeys,
        ("GET", ["search", "values"]) => SearchValues,
        ("GET", ["search", "columns"]) => SearchColumns,
        ("GET", [t]) => GetTask { task: id(t) },
        ("GET", [t, "assets"]) => TaskAssets { task: id(t) },
        ("GET", [t, "events"]) => TaskEvents { task: id(t) },
        ("GET", [t, "metadata"]) => TaskMetadata { task: id(t) },
        _ => return None,
    };
    Some(endpoint)
}

/// `/api/v1/locks…` (§4.5). Completion status has three segments and a lock has one
/// (plus its action), so a lock named `tasks` stays reachable (§1.1).
fn match_lock_route(m: &str, tail: &[&str]) -> Option<Endpoint> {
    use Endpoint::*;
    let id = |s: &str| s.to_string();
    let endpoint = match (m, tail) {
        ("GET", []) => ListLocks,
        ("GET", ["tasks", t, "completion-status"]) => LockCompletionStatus { task: id(t) },
        ("GET", [name]) => GetLock { name: id(name) },
        ("POST", [name, "acquire"]) => AcquireLock { name: id(name) },
        ("POST", [name, "renew"]) => RenewLock { name: id(name) },
        ("POST", [name, "release"]) => ReleaseLock { name: id(name) },
        _ => return None,
    };
    Some(endpoint)
}

/// The web UI (ui.md §3.3): fixed first segments that no API path uses. Unknown paths
/// under `/ws/` are the UI's own 404 page; everything else falls through to the API's
/// JSON 404.
fn match_ui_route(m: &str, segs: &[&str]) -> Option<Ui> {
    use Ui::*;
    let id = |s: &str| s.to_string();
    let route = match (m, segs) {
        ("GET", []) => Home,
        ("GET", ["login"]) => LoginForm,
        ("POST", ["login"]) => Login,
        ("POST", ["logout"]) => Logout,
        ("GET", ["account"]) => Account,
        ("GET", ["login", "oidc"]) => LoginOidc,
        ("GET", ["login", "callback"]) => LoginCallback,
        ("GET", ["static", name]) => Static { name: id(name) },
        ("GET", ["ws", ws, "settings", "api-keys"]) => ApiKeys { ws: id(ws) },
        ("POST", ["ws", ws, "settings", "api-keys"]) => CreateApiKey { ws: id(ws) },
        ("POST", ["ws", ws, "settings", "api-keys", k, "revoke"]) => RevokeApiKey {
            ws: id(ws),
            key: id(k),
        },
        ("POST", ["account", "password"]) => ChangePassword,
        ("GET", ["invites"]) => MyInvites,
        ("POST", ["invites", i, "accept"]) => AnswerInvite {
            invite: id(i),
            accept: true,
        },
        ("POST", ["invites", i, "decline"]) => AnswerInvite {
            invite: id(i),
            accept: false,
        },
        ("GET", ["workspaces", "new"]) => NewWorkspace,
        ("POST", ["workspaces", "new"]) => CreateWorkspace,
        ("GET", ["ws", ws, "settings", rest @ ..]) => {
            let page = match rest {
                [] => SettingsPage::General,
                ["members"] => SettingsPage::Members,
                ["invites"] => SettingsPage::Invites,
                ["environments"] => SettingsPage::Environments,
                ["target-roots"] => SettingsPage::TargetRoots,
                ["danger"] => SettingsPage::Danger,
                _ => return Some(NotFound),
            };
            Settings { ws: id(ws), page }
        }
        ("POST", ["ws", ws, "settings", rest @ ..]) => {
            use self::SettingsAction as A;
            let action = match rest {
                [] => A::UpdateWorkspace,
                ["danger"] => A::DeleteWorkspace,
                ["members", m, "role"] => A::SetRole { member: id(m) },
                ["members", m, "remove"] => A::RemoveMember { member: id(m) },
                ["invites"] => A::CreateInvite,
                ["invites", i, "cancel"] => A::CancelInvite { invite: id(i) },
                ["environments"] => A::CreateEnvironment,
                ["environments", e, "edit"] => A::UpdateEnvironment { env: id(e) },
                ["environments", e, "delete"] => A::DeleteEnvironment { env: id(e) },
                ["target-roots"] => A::CreateTargetRoot,
                ["target-roots", r, "edit"] => A::UpdateTargetRoot { root: id(r) },
                ["target-roots", r, "delete"] => A::DeleteTargetRoot { root: id(r) },
                _ => return None,
            };
            SettingsPost { ws: id(ws), action }
        }
        ("GET", ["ws", ws, "env", env, rest @ ..]) => match rest {
            ["connect"] => Connect {
                ws: id(ws),
                env: id(env),
            },
            ["builds"] => Builds {
                ws: id(ws),
                env: id(env),
            },
            ["builds", b] => Build {
                ws: id(ws),
                env: id(env),
                build: id(b),
            },
            ["builds", b, "state"] => BuildState {
                ws: id(ws),
                env: id(env),
                build: id(b),
            },
            ["builds", b, "graph.svg"] => BuildGraphSvg {
                ws: id(ws),
                env: id(env),
                build: id(b),
            },
            ["tasks"] => TaskExplorer {
                ws: id(ws),
                env: id(env),
            },
            ["tasks", t] => Task {
                ws: id(ws),
                env: id(env),
                task: id(t),
            },
            ["locks"] => Locks {
                ws: id(ws),
                env: id(env),
            },
            ["-", "search", kind @ ("keys" | "values")] => SearchSuggest {
                ws: id(ws),
                env: id(env),
                values: *kind == "values",
            },
            _ => NotFound,
        },
        ("POST", ["ws", ws, "env", env, "connect", "api-key"]) => ConnectCreateKey {
            ws: id(ws),
            env: id(env),
        },
        ("POST", ["ws", ws, "env", env, "builds", b, "override"]) => BuildOverride {
            ws: id(ws),
            env: id(env),
            build: id(b),
        },
        ("GET", ["ws", ..]) => NotFound,
        _ => return None,
    };
    Some(route)
}

/// `/api/v2…` (v2-registry.md §5), the current SDK's registry. Fixed segments come
/// before ids (`/builds/wake-candidates` is not a build).
fn match_v2_route(m: &str, segs: &[&str]) -> Option<V2> {
    use V2::*;
    let id = |s: &str| s.to_string();
    let route = match (m, segs) {
        ("POST", ["deployments"]) => CreateDeployment,
        ("GET", ["deployments"]) => ListDeployments,
        ("GET", ["deployments", d]) => GetDeployment { deployment: id(d) },
        ("POST", ["deployments", d, "activate"]) => ActivateDeployment { deployment: id(d) },
        ("GET", ["settings", h]) => GetSettings { hash: id(h) },
        ("GET", ["concurrency-limits"]) => ListLimits,
        ("PUT", ["concurrency-limits", k]) => PutLimit { key: id(k) },
        ("DELETE", ["concurrency-limits", k]) => DeleteLimit { key: id(k) },
        ("GET", ["stalled-builds"]) => StalledBuilds,
        ("POST", ["builds"]) => CreateBuild,
        ("GET", ["builds"]) => ListBuilds,
        ("POST", ["builds", "wake-candidates"]) => WakeCandidates,
        ("GET", ["builds", b]) => GetBuild { build: id(b) },
        ("POST", ["builds", b, "resume"]) => ResumeBuild { build: id(b) },
        ("POST", ["builds", b, "complete"]) => CompleteBuild { build: id(b) },
        ("POST", ["builds", b, "fail"]) => FailBuild { build: id(b) },
        ("POST", ["builds", b, "cancel"]) => CancelBuild { build: id(b) },
        ("POST", ["builds", b, "exit-early"]) => ExitEarlyBuild { build: id(b) },
        ("POST", ["builds", b, "skip-blocked"]) => SkipBlocked { build: id(b) },
        ("GET", ["builds", b, "frontier"]) => Frontier { build: id(b) },
        ("GET", ["builds", b, "executions"]) => BuildExecutions { build: id(b) },
        ("GET", ["builds", b, "plans"]) => BuildPlans { build: id(b) },
        ("POST", ["builds", b, "plans"]) => CreatePlan { build: id(b) },
        ("GET", ["builds", b, "events"]) => BuildEvents { build: id(b) },
        ("PUT", ["builds", b, "reactive-meta"]) => ReactiveMeta { build: id(b) },
        ("POST", ["builds", b, "notify"]) => Notify { build: id(b) },
        ("GET", ["builds", b, "notify"]) => GetNotify { build: id(b) },
        ("DELETE", ["builds", b, "notify"]) => ClearNotify { build: id(b) },
        ("POST", ["builds", b, "scheduler-lease"]) => AcquireLease { build: id(b) },
        ("PUT", ["builds", b, "scheduler-lease"]) => RenewLease { build: id(b) },
        ("DELETE", ["builds", b, "scheduler-lease"]) => ReleaseLease { build: id(b) },
        ("POST", ["builds", b, "tick-summaries"]) => AddTickSummary { build: id(b) },
        ("GET", ["builds", b, "tick-summaries"]) => ListTickSummaries { build: id(b) },
        ("POST", ["plans", p, "members"]) => RegisterMembers { plan: id(p) },
        ("POST", ["plans", p, "seal"]) => SealPlan { plan: id(p) },
        ("GET", ["plans", p]) => GetPlan { plan: id(p) },
        ("GET", ["plans", p, "roots"]) => PlanRoots { plan: id(p) },
        ("POST", ["plans", p, "members", t, action]) => Member {
            plan: id(p),
            task: id(t),
            action: MemberAction::parse(action)?,
        },
        ("GET", ["tasks"]) => ListTasks,
        ("GET", ["tasks", t]) => GetTask { task: id(t) },
        ("GET", ["tasks", t, "executions"]) => TaskExecutions { task: id(t) },
        ("GET", ["tasks", t, "events"]) => TaskEvents { task: id(t) },
        ("GET", ["tasks", t, "artifacts"]) => TaskArtifacts { task: id(t) },
        ("POST", ["tasks", t, "claim", "renew"]) => RenewClaim { task: id(t) },
        ("POST", ["executions", e, "stopped"]) => ExecutionStopped { execution: id(e) },
        _ => return None,
    };
    Some(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_then_decodes() {
        assert_eq!(
            split_path("/a/b%2Fc/"),
            Some(vec!["a".into(), "b/c".into()])
        );
        assert_eq!(split_path("/"), Some(vec![]));
        assert_eq!(split_path("/a//b"), None);
        assert_eq!(split_path("/a/../b"), None);
        assert_eq!(split_path("/a/%FF"), None);
        assert_eq!(split_path("relative"), None);
    }

    #[test]
    fn not_found_and_method_not_allowed() {
        assert_eq!(route(&Method::GET, "/health").unwrap(), Endpoint::Health);
        assert_eq!(route(&Method::HEAD, "/health/").unwrap(), Endpoint::Health);
        assert!(matches!(
            route(&Method::GET, "/nope"),
            Err(ApiError::NotFound(_))
        ));
        match route(&Method::POST, "/health") {
            Err(ApiError::MethodNotAllowed(m)) => assert_eq!(m, vec![Method::GET, Method::HEAD]),
            other => panic!("expected 405, got {other:?}"),
        }
    }

    #[test]
    fn task_routes_and_the_search_segment() {
        let b = "0190a000-0000-7000-8000-000000000000";
        assert_eq!(
            route(
                &Method::POST,
                &format!("/api/v1/builds/{b}/tasks/t1/waiting-for-lock")
            )
            .unwrap(),
            Endpoint::TaskWaitingForLock {
                build: b.into(),
                task: "t1".into()
            }
        );
        assert_eq!(
            route(&Method::PATCH, &format!("/api/v1/builds/{b}/")).unwrap(),
            Endpoint::PatchBuild { build: b.into() }
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/tasks/search/").unwrap(),
            Endpoint::SearchTasks
        );
        for (tail, ep) in [
            ("keys", Endpoint::SearchKeys),
            ("values", Endpoint::SearchValues),
            ("columns", Endpoint::SearchColumns),
        ] {
            assert_eq!(
                route(&Method::GET, &format!("/api/v1/tasks/search/{tail}")).unwrap(),
                ep
            );
        }
        assert!(matches!(
            route(&Method::POST, "/api/v1/tasks/search"),
            Err(ApiError::MethodNotAllowed(m)) if m == vec![Method::GET, Method::HEAD]
        ));
        assert_eq!(
            route(&Method::GET, "/api/v1/tasks/search/metadata").unwrap(),
            Endpoint::TaskMetadata {
                task: "search".into()
            }
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/tasks/search/assets").unwrap(),
            Endpoint::TaskAssets {
                task: "search".into()
            }
        );
        assert!(matches!(
            route(&Method::GET, &format!("/api/v1/builds/{b}/tasks/t1/start")),
            Err(ApiError::MethodNotAllowed(m)) if m == vec![Method::POST]
        ));
        for ep in [
            Endpoint::ListTasks,
            Endpoint::CreateBuild,
            Endpoint::RegisterTaskSeed,
        ] {
            assert_eq!(ep.auth(), AuthKind::Sdk);
        }
        assert!(Endpoint::CreateBuild.json_body());
        assert_eq!(
            route(&Method::GET, "/api/v1/locks/tasks").unwrap(),
            Endpoint::GetLock {
                name: "tasks".into()
            }
        );
        assert_eq!(
            route(&Method::POST, "/api/v1/locks/tasks/acquire").unwrap(),
            Endpoint::AcquireLock {
                name: "tasks".into()
            }
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/locks/tasks/t1/completion-status").unwrap(),
            Endpoint::LockCompletionStatus { task: "t1".into() }
        );
        assert!(matches!(
            route(&Method::GET, "/api/v1/locks/x/acquire"),
            Err(ApiError::MethodNotAllowed(m)) if m == vec![Method::POST]
        ));
        assert!(!Endpoint::CompleteBuild { build: b.into() }.json_body());
    }

    #[test]
    fn explorer_and_locks_are_fixed_segments_of_an_environment() {
        let ui = |p: &str| match route(&Method::GET, p).unwrap() {
            Endpoint::Ui(u) => u,
            other => panic!("{p}: {other:?}"),
        };
        let (ws, env) = ("w".to_string(), "e".to_string());
        assert_eq!(
            ui("/ws/w/env/e/tasks"),
            Ui::TaskExplorer {
                ws: ws.clone(),
                env: env.clone()
            }
        );
        assert_eq!(ui("/ws/w/env/e/tasks").name(), "ui_task_explorer");
        assert_eq!(
            ui("/ws/w/env/e/tasks/locks"),
            Ui::Task {
                ws: ws.clone(),
                env: env.clone(),
                task: "locks".into()
            }
        );
        assert_eq!(ui("/ws/w/env/e/locks"), Ui::Locks { ws, env });
        assert_eq!(ui("/ws/w/env/e/locks/x"), Ui::NotFound);
    }

    #[test]
    fn settings_sections_and_forms_are_fixed_segments() {
        let ui = |m: Method, p: &str| match route(&m, p) {
            Ok(Endpoint::Ui(u)) => Some(u),
            _ => None,
        };
        let ws = || "w".to_string();
        assert_eq!(
            ui(Method::GET, "/ws/w/settings"),
            Some(Ui::Settings {
                ws: ws(),
                page: SettingsPage::General
            })
        );
        assert_eq!(
            ui(Method::GET, "/ws/w/settings/api-keys"),
            Some(Ui::ApiKeys { ws: ws() })
        );
        assert_eq!(ui(Method::GET, "/ws/w/settings/x"), Some(Ui::NotFound));
        assert_eq!(
            ui(Method::POST, "/ws/w/settings/environments/settings/delete"),
            Some(Ui::SettingsPost {
                ws: ws(),
                action: SettingsAction::DeleteEnvironment {
                    env: "settings".into()
                }
            })
        );
        assert_eq!(ui(Method::POST, "/ws/w/settings/members/m"), None);
        assert_eq!(
            route(&Method::POST, "/api/v1/auth/change-password").unwrap(),
            Endpoint::ChangePassword
        );
        assert_eq!(Endpoint::ChangePassword.auth(), AuthKind::Flexible);
    }
}
