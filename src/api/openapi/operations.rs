//! Every route of the router, one row each: method, path template, the router's
//! endpoint name, and the Rust types of its body and answer. Tests walk this table
//! against `router::route` (src/api/openapi/tests.rs). A route whose answer is still
//! built with `json!` is documented as a plain object (docs/openapi.md lists them).

use serde_json::{json, Value};
use utoipa::ToSchema;

use super::Schemas;
use crate::api::{
    api_keys, assets, auth, builds, environments, health, invites, members, search, target_roots,
    tasks, v2, wire, workspaces,
};

/// Builds a schema (usually a `$ref`) and registers what it refers to.
pub type Shape = fn(&mut Schemas) -> Value;

fn one<T: ToSchema>(s: &mut Schemas) -> Value {
    s.reff::<T>()
}

fn many<T: ToSchema>(s: &mut Schemas) -> Value {
    json!({ "type": "array", "items": s.reff::<T>() })
}

/// An answer still built with `json!`: documented as an object.
fn object(_: &mut Schemas) -> Value {
    json!({ "type": "object" })
}

fn text(_: &mut Schemas) -> Value {
    json!({ "type": "string" })
}

/// (name, JSON type, description) of a query parameter.
pub type QueryParam = (&'static str, &'static str, &'static str);

pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    /// The router's `Endpoint::name()`.
    pub name: &'static str,
    pub summary: &'static str,
    pub query: &'static [QueryParam],
    pub body: Option<Shape>,
    pub status: u16,
    pub response: Option<Shape>,
    pub content_type: &'static str,
    /// A second mount of the same endpoint (D6 mirrors, the auth router at `/api/v1`).
    pub mirror: bool,
}

impl Op {
    pub fn operation_id(&self) -> String {
        if self.mirror {
            format!("{}_at_{}", self.name, mount_label(self.path))
        } else {
            self.name.to_string()
        }
    }

    pub fn tag(&self) -> String {
        let segs: Vec<&str> = self.path.split('/').filter(|s| !s.is_empty()).collect();
        match segs.as_slice() {
            ["api", "v2", family, ..] => format!("v2 {family}"),
            ["api", "v1", "builds" | "tasks" | "locks" | "target-roots", ..] => {
                format!("v1 {}", segs[2])
            }
            ["api", "v1", "ui" | "workspaces", ..] => "workspaces".into(),
            [.., "auth", _] | [.., ".well-known", _] => "auth".into(),
            _ => "service".into(),
        }
    }

    fn body(mut self, shape: Shape) -> Op {
        self.body = Some(shape);
        self
    }
    fn ok(mut self, shape: Shape) -> Op {
        self.response = Some(shape);
        self
    }
    fn created(mut self, shape: Shape) -> Op {
        self.status = 201;
        self.response = Some(shape);
        self
    }
    fn no_content(mut self) -> Op {
        self.status = 204;
        self.response = None;
        self
    }
    fn query(mut self, q: &'static [QueryParam]) -> Op {
        self.query = q;
        self
    }
    fn content(mut self, ct: &'static str, shape: Shape) -> Op {
        self.content_type = ct;
        self.response = Some(shape);
        self
    }
}

fn mount_label(path: &str) -> String {
    path.trim_start_matches('/')
        .split('/')
        .take(2)
        .collect::<Vec<_>>()
        .join("_")
        .replace(['.', '-'], "_")
}

fn op(method: &'static str, path: &'static str, name: &'static str, summary: &'static str) -> Op {
    Op {
        method,
        path,
        name,
        summary,
        query: &[],
        body: None,
        status: 200,
        response: Some(object),
        content_type: "application/json",
        mirror: false,
    }
}
fn get(p: &'static str, n: &'static str, s: &'static str) -> Op {
    op("GET", p, n, s)
}
fn post(p: &'static str, n: &'static str, s: &'static str) -> Op {
    op("POST", p, n, s)
}
fn put(p: &'static str, n: &'static str, s: &'static str) -> Op {
    op("PUT", p, n, s)
}
fn patch(p: &'static str, n: &'static str, s: &'static str) -> Op {
    op("PATCH", p, n, s)
}
fn delete(p: &'static str, n: &'static str, s: &'static str) -> Op {
    op("DELETE", p, n, s)
}

const PAGING: &[QueryParam] = &[
    ("page", "integer", "Page number, from 1."),
    ("page_size", "integer", "1..100."),
];
const CURSOR: &[QueryParam] = &[
    ("limit", "integer", "Page size."),
    ("cursor", "string", "`next_cursor` of the previous page."),
    ("status", "string", "Only this status."),
];

/// Every route, with the D6 mirrors and the second auth mount expanded.
pub fn all() -> Vec<Op> {
    let mut ops = service_ops();
    ops.extend(auth_ops());
    ops.extend(workspace_ops());
    ops.extend(v1_sdk_ops());
    ops.extend(v2_ops());
    let mirrors: Vec<Op> = ops
        .iter()
        .filter_map(|o| {
            let path = mirror_path(o.path)?;
            Some(Op {
                path: Box::leak(path.into_boxed_str()),
                mirror: true,
                ..*o
            })
        })
        .collect();
    ops.extend(mirrors);
    ops
}

/// `/api/v1/ui/workspaces…` is also served at `/api/v1/workspaces…` (D6), and the auth
/// router at `/` is also mounted at `/api/v1`.
fn mirror_path(path: &str) -> Option<String> {
    if let Some(rest) = path.strip_prefix("/api/v1/ui/workspaces") {
        return Some(format!("/api/v1/workspaces{rest}"));
    }
    if path.starts_with("/auth/") || path.starts_with("/.well-known/") {
        return Some(format!("/api/v1{path}"));
    }
    None
}

fn service_ops() -> Vec<Op> {
    vec![
        get("/health", "health", "Liveness"),
        get("/metrics", "metrics", "Prometheus metrics (text)").content("text/plain", text),
        get("/api/v1/version", "version", "Server and API version").ok(one::<health::VersionOut>),
        get("/openapi.json", "openapi", "This document"),
        get("/docs", "docs", "The API reference page").content("text/html", text),
    ]
}

fn auth_ops() -> Vec<Op> {
    vec![
        get(
            "/.well-known/jwks.json",
            "jwks",
            "Public keys of internal tokens",
        ),
        get("/auth/config", "auth_config", "Auth mode and OIDC settings"),
        post(
            "/auth/exchange",
            "auth_exchange",
            "Identity token → internal token",
        )
        .body(one::<auth::ExchangeBody>),
        post(
            "/api/v1/auth/login",
            "auth_login",
            "Local login → session token",
        )
        .body(one::<auth::LoginBody>),
        post(
            "/api/v1/auth/register",
            "auth_register",
            "Local registration",
        )
        .body(one::<auth::RegisterBody>)
        .created(object),
        post(
            "/api/v1/auth/change-password",
            "auth_change_password",
            "Change the local password; earlier sessions end",
        )
        .body(one::<auth::ChangePasswordBody>),
    ]
}

fn workspace_ops() -> Vec<Op> {
    vec![
        get("/api/v1/ui/me", "me", "The current user and their workspaces"),
        get("/api/v1/ui/me/invites", "my_invites", "Invites for the current user"),
        get("/api/v1/ui/workspaces", "list_workspaces", "The caller's workspaces"),
        post("/api/v1/ui/workspaces", "create_workspace", "Create a workspace")
            .body(one::<workspaces::CreateBody>)
            .created(object),
        post("/api/v1/ui/workspaces/invites/{invite_id}/accept", "accept_invite", "Accept an invite"),
        post("/api/v1/ui/workspaces/invites/{invite_id}/decline", "decline_invite", "Decline an invite").no_content(),
        get("/api/v1/ui/workspaces/{workspace_id}", "get_workspace", "A workspace"),
        patch("/api/v1/ui/workspaces/{workspace_id}", "update_workspace", "Rename a workspace")
            .body(one::<workspaces::UpdateBody>),
        delete("/api/v1/ui/workspaces/{workspace_id}", "delete_workspace", "Delete a workspace").no_content(),
        get("/api/v1/ui/workspaces/{workspace_id}/target-roots", "workspace_target_roots", "Target roots of every environment"),
        get("/api/v1/ui/workspaces/{workspace_id}/members", "list_members", "Members"),
        patch("/api/v1/ui/workspaces/{workspace_id}/members/{member_id}", "update_member", "Change a member's role")
            .body(one::<members::UpdateBody>),
        delete("/api/v1/ui/workspaces/{workspace_id}/members/{member_id}", "remove_member", "Remove a member").no_content(),
        get("/api/v1/ui/workspaces/{workspace_id}/invites", "list_invites", "Pending invites"),
        post("/api/v1/ui/workspaces/{workspace_id}/invites", "create_invite", "Invite by e-mail")
            .body(one::<invites::CreateBody>)
            .created(object),
        delete("/api/v1/ui/workspaces/{workspace_id}/invites/{invite_id}", "cancel_invite", "Cancel an invite").no_content(),
        get("/api/v1/ui/workspaces/{workspace_id}/environments", "list_environments", "Environments"),
        post("/api/v1/ui/workspaces/{workspace_id}/environments", "create_environment", "Create an environment")
            .body(one::<environments::CreateBody>)
            .created(object),
        get("/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}", "get_environment", "An environment"),
        patch("/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}", "update_environment", "Update an environment")
            .body(one::<environments::UpdateBody>),
        delete("/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}", "delete_environment", "Delete an environment").no_content(),
        get("/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}/api-keys", "list_api_keys", "API keys"),
        post("/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}/api-keys", "create_api_key", "Create an API key (the key is shown once)")
            .body(one::<api_keys::CreateBody>)
            .created(object),
        delete("/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}/api-keys/{key_id}", "revoke_api_key", "Revoke an API key").no_content(),
        get("/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}/target-roots", "list_target_roots", "Target roots"),
        post("/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}/target-roots", "create_target_root", "Create a target root")
            .body(one::<target_roots::CreateBody>)
            .created(object),
        get("/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}/target-roots/{root_id}", "get_target_root", "A target root"),
        patch("/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}/target-roots/{root_id}", "update_target_root", "Update a target root")
            .body(one::<target_roots::UpdateBody>),
        delete("/api/v1/ui/workspaces/{workspace_id}/environments/{environment_id}/target-roots/{root_id}", "delete_target_root", "Delete a target root").no_content(),
    ]
}

fn v1_sdk_ops() -> Vec<Op> {
    let task_event = |p: &'static str, n: &'static str, s: &'static str| {
        post(p, n, s).query(&[("error_message", "string", "Failure message (fail).")])
    };
    vec![
        get(
            "/api/v1/target-roots",
            "sdk_target_roots",
            "Target roots of the caller's environment",
        ),
        post("/api/v1/builds", "create_build", "Start a build")
            .body(one::<builds::CreateBody>)
            .created(one::<wire::BuildOut<'static>>),
        get("/api/v1/builds", "list_builds", "Builds, newest first")
            .query(PAGING)
            .ok(one::<builds::BuildPage<'static>>),
        get("/api/v1/builds/{build_id}", "get_build", "A build").ok(one::<wire::BuildOut<'static>>),
        patch(
            "/api/v1/builds/{build_id}",
            "patch_build",
            "Finish a build by status (D6)",
        )
        .body(one::<builds::PatchBody>),
        post(
            "/api/v1/builds/{build_id}/complete",
            "complete_build",
            "Complete a build",
        )
        .query(&[("triggered_by_user_id", "string", "A user's external id.")]),
        post(
            "/api/v1/builds/{build_id}/fail",
            "fail_build",
            "Fail a build",
        )
        .query(&[
            ("error_message", "string", "Why."),
            ("triggered_by_user_id", "string", "A user's external id."),
        ]),
        post(
            "/api/v1/builds/{build_id}/cancel",
            "cancel_build",
            "Cancel a build",
        )
        .query(&[("triggered_by_user_id", "string", "A user's external id.")]),
        post(
            "/api/v1/builds/{build_id}/exit-early",
            "exit_early_build",
            "End a build early",
        )
        .query(&[("reason", "string", "Why.")]),
        post(
            "/api/v1/builds/{build_id}/tasks",
            "register_task",
            "Register a task in a build",
        )
        .body(one::<tasks::RegisterBody>)
        .created(one::<wire::TaskOut<'static>>),
        post(
            "/api/v1/tasks",
            "register_task_seed",
            "Register a task (body carries build_id; D6)",
        )
        .body(one::<tasks::RegisterBody>)
        .created(one::<wire::TaskOut<'static>>),
        task_event(
            "/api/v1/builds/{build_id}/tasks/{task_id}/start",
            "start_task",
            "Task started",
        ),
        task_event(
            "/api/v1/builds/{build_id}/tasks/{task_id}/complete",
            "complete_task",
            "Task completed",
        ),
        task_event(
            "/api/v1/builds/{build_id}/tasks/{task_id}/fail",
            "fail_task",
            "Task failed",
        ),
        task_event(
            "/api/v1/builds/{build_id}/tasks/{task_id}/suspend",
            "suspend_task",
            "Task suspended",
        ),
        task_event(
            "/api/v1/builds/{build_id}/tasks/{task_id}/resume",
            "resume_task",
            "Task resumed",
        ),
        task_event(
            "/api/v1/builds/{build_id}/tasks/{task_id}/cancel",
            "cancel_task",
            "Task cancelled",
        ),
        task_event(
            "/api/v1/builds/{build_id}/tasks/{task_id}/waiting-for-lock",
            "task_waiting_for_lock",
            "Task waits for a lock",
        ),
        post(
            "/api/v1/builds/{build_id}/tasks/{task_id}/assets",
            "upload_task_assets",
            "Upload a task's assets",
        )
        .body(many::<assets::AssetItem>)
        .created(one::<assets::Assets<'static>>),
        get(
            "/api/v1/builds/{build_id}/tasks",
            "build_tasks",
            "Tasks of a build with status",
        )
        .ok(many::<wire::TaskWithStatusOut<'static>>),
        get(
            "/api/v1/builds/{build_id}/events",
            "build_events",
            "Events of a build, oldest first",
        )
        .ok(many::<wire::EventOut<'static>>),
        get(
            "/api/v1/builds/{build_id}/graph",
            "build_graph",
            "The build's task graph",
        )
        .ok(one::<tasks::Graph<'static>>),
        get("/api/v1/tasks", "list_tasks", "Tasks of the environment")
            .query(PAGING)
            .ok(one::<tasks::TaskPage<'static>>),
        get("/api/v1/tasks/{task_id}", "get_task", "A task by hash")
            .ok(one::<wire::TaskOut<'static>>),
        get(
            "/api/v1/tasks/{task_id}/assets",
            "task_assets",
            "A task's assets",
        )
        .ok(one::<assets::Assets<'static>>),
        get(
            "/api/v1/tasks/{task_id}/events",
            "task_events",
            "A task's events",
        )
        .ok(many::<wire::EventOut<'static>>),
        get(
            "/api/v1/tasks/{task_id}/metadata",
            "task_metadata",
            "A task's metadata",
        )
        .ok(one::<tasks::Metadata<'static>>),
        get(
            "/api/v1/tasks/search",
            "search_tasks",
            "Search tasks (docs/search.md)",
        )
        .query(&[
            ("filter", "string", "Filters (repeatable)."),
            ("sort", "string", "Sort column."),
            ("page", "integer", "Page number, from 1."),
            ("page_size", "integer", "1..100."),
            ("include_assets", "string", "Comma-separated asset names."),
        ])
        .ok(one::<search::SearchOut<'static>>),
        get(
            "/api/v1/tasks/search/keys",
            "search_keys",
            "Searchable keys",
        )
        .query(&[("prefix", "string", "Key prefix.")]),
        get(
            "/api/v1/tasks/search/values",
            "search_values",
            "Values of a key",
        )
        .query(&[("key", "string", "The key.")]),
        get(
            "/api/v1/tasks/search/columns",
            "search_columns",
            "Columns to show",
        ),
        post(
            "/api/v1/locks/{name}/acquire",
            "acquire_lock",
            "Acquire a lock",
        ),
        post("/api/v1/locks/{name}/renew", "renew_lock", "Renew a lock"),
        post(
            "/api/v1/locks/{name}/release",
            "release_lock",
            "Release a lock",
        ),
        get("/api/v1/locks", "list_locks", "Held locks"),
        get("/api/v1/locks/{name}", "get_lock", "A lock")
            .ok(one::<crate::api::locks::LockOut<'static>>),
        get(
            "/api/v1/locks/tasks/{task_id}/completion-status",
            "lock_completion_status",
            "Whether a task completed",
        ),
    ]
}

fn v2_ops() -> Vec<Op> {
    use v2::{builds as b, deployments as d, members as m, plans as p, tasks as t, wire as w};
    let member = |action: &'static str, name: &'static str, summary: &'static str| {
        let path: &'static str = Box::leak(
            format!("/api/v2/plans/{{plan_id}}/members/{{task_id}}/{action}").into_boxed_str(),
        );
        post(path, name, summary).ok(one::<w::TransitionOut>)
    };
    vec![
        post(
            "/api/v2/deployments",
            "v2_create_deployment",
            "Register a deployment",
        )
        .body(one::<d::CreateBody>)
        .ok(one::<w::DeploymentOut<'static>>),
        get("/api/v2/deployments", "v2_list_deployments", "Deployments").query(&[
            ("kind", "string", "local or modal."),
            ("app_name", "string", "Only this app."),
            ("current", "boolean", "Only current ones."),
        ]),
        get(
            "/api/v2/deployments/{deployment_id}",
            "v2_get_deployment",
            "A deployment",
        )
        .ok(one::<w::DeploymentOut<'static>>),
        post(
            "/api/v2/deployments/{deployment_id}/activate",
            "v2_activate_deployment",
            "Make a deployment current",
        )
        .body(one::<d::ActivateBody>)
        .ok(one::<w::DeploymentOut<'static>>),
        get(
            "/api/v2/settings/{settings_hash}",
            "v2_get_settings",
            "Settings by hash",
        ),
        get(
            "/api/v2/concurrency-limits",
            "v2_list_limits",
            "Concurrency limits",
        )
        .query(&[("include_holders", "boolean", "List holders.")]),
        put(
            "/api/v2/concurrency-limits/{key}",
            "v2_put_limit",
            "Set a concurrency limit",
        )
        .body(one::<d::LimitBody>),
        delete(
            "/api/v2/concurrency-limits/{key}",
            "v2_delete_limit",
            "Remove a concurrency limit",
        )
        .no_content(),
        get(
            "/api/v2/stalled-builds",
            "v2_stalled_builds",
            "Builds without progress",
        ),
        post("/api/v2/builds", "v2_create_build", "Create a build")
            .body(one::<b::CreateBody>)
            .ok(one::<w::BuildOut<'static>>),
        get("/api/v2/builds", "v2_list_builds", "Builds, active first")
            .query(&[
                ("limit", "integer", "Page size."),
                ("cursor", "string", "`next_cursor` of the previous page."),
                ("status", "string", "Only this status."),
                ("reactive_app_name", "string", "Only this reactive app."),
            ])
            .ok(one::<b::BuildPage<'static>>),
        post(
            "/api/v2/builds/wake-candidates",
            "v2_wake_candidates",
            "Drain builds to wake",
        ),
        get("/api/v2/builds/{build_id}", "v2_get_build", "A build").ok(one::<w::BuildOut<'static>>),
        post(
            "/api/v2/builds/{build_id}/resume",
            "v2_resume_build",
            "Resume a build",
        )
        .body(one::<b::ResumeBody>)
        .ok(one::<b::ResumeOut<'static>>),
        post(
            "/api/v2/builds/{build_id}/complete",
            "v2_complete_build",
            "Complete a build",
        )
        .body(one::<b::CompleteBody>)
        .query(&[("force", "boolean", "Complete despite open members.")]),
        post(
            "/api/v2/builds/{build_id}/fail",
            "v2_fail_build",
            "Fail a build",
        )
        .body(one::<b::FailBody>),
        post(
            "/api/v2/builds/{build_id}/cancel",
            "v2_cancel_build",
            "Cancel a build",
        ),
        post(
            "/api/v2/builds/{build_id}/exit-early",
            "v2_exit_early_build",
            "End a build early",
        ),
        post(
            "/api/v2/builds/{build_id}/skip-blocked",
            "v2_skip_blocked",
            "Skip blocked members",
        ),
        get(
            "/api/v2/builds/{build_id}/frontier",
            "v2_frontier",
            "Runnable members now",
        )
        .ok(one::<p::FrontierOut<'static>>),
        get(
            "/api/v2/builds/{build_id}/executions",
            "v2_build_executions",
            "Executions of a build",
        )
        .ok(one::<b::ExecutionsOut<'static>>),
        get(
            "/api/v2/builds/{build_id}/plans",
            "v2_build_plans",
            "Plans of a build",
        ),
        post(
            "/api/v2/builds/{build_id}/plans",
            "v2_create_plan",
            "Create (or look up) a plan",
        )
        .body(one::<p::CreateBody>)
        .ok(one::<w::PlanOut<'static>>),
        get(
            "/api/v2/builds/{build_id}/events",
            "v2_build_events",
            "Events of a build",
        ),
        put(
            "/api/v2/builds/{build_id}/reactive-meta",
            "v2_reactive_meta",
            "Set reactive metadata",
        )
        .body(one::<b::ReactiveBody>)
        .ok(one::<w::BuildOut<'static>>),
        post(
            "/api/v2/builds/{build_id}/notify",
            "v2_notify",
            "Notify a reactive build",
        ),
        get(
            "/api/v2/builds/{build_id}/notify",
            "v2_get_notify",
            "The pending notification",
        ),
        delete(
            "/api/v2/builds/{build_id}/notify",
            "v2_clear_notify",
            "Clear the notification",
        ),
        post(
            "/api/v2/builds/{build_id}/scheduler-lease",
            "v2_acquire_lease",
            "Acquire the scheduler lease",
        ),
        put(
            "/api/v2/builds/{build_id}/scheduler-lease",
            "v2_renew_lease",
            "Renew the scheduler lease",
        ),
        delete(
            "/api/v2/builds/{build_id}/scheduler-lease",
            "v2_release_lease",
            "Release the scheduler lease",
        ),
        post(
            "/api/v2/builds/{build_id}/tick-summaries",
            "v2_add_tick_summary",
            "Record a tick summary",
        )
        .body(object)
        .created(object),
        get(
            "/api/v2/builds/{build_id}/tick-summaries",
            "v2_list_tick_summaries",
            "Tick summaries",
        ),
        post(
            "/api/v2/plans/{plan_id}/members",
            "v2_register_members",
            "Register members (≤ 1000, all or nothing)",
        )
        .body(one::<p::MembersBody>),
        post(
            "/api/v2/plans/{plan_id}/seal",
            "v2_seal_plan",
            "Seal a plan",
        )
        .ok(one::<w::PlanOut<'static>>),
        get(
            "/api/v2/plans/{plan_id}",
            "v2_get_plan",
            "A plan with counts",
        )
        .ok(one::<w::PlanDetailOut<'static>>),
        get(
            "/api/v2/plans/{plan_id}/roots",
            "v2_plan_roots",
            "Roots of a plan",
        ),
        member(
            "start",
            "v2_member_start",
            "Start a member (claiming or not)",
        )
        .body(one::<m::StartBody>),
        member("complete", "v2_member_complete", "Report completion").body(one::<m::ReportBody>),
        member("fail", "v2_member_fail", "Report failure").body(one::<m::ReportBody>),
        member("interrupt", "v2_member_interrupt", "Report an interruption"),
        member("preempt", "v2_member_preempt", "Report preemption"),
        member(
            "yield",
            "v2_member_yield",
            "Yield with discovered upstreams",
        )
        .body(one::<m::YieldBody>)
        .ok(object),
        member("retry", "v2_member_retry", "Retry a member"),
        member("cancel", "v2_member_cancel", "Cancel a member"),
        member("skip", "v2_member_skip", "Skip a member"),
        member("exclude", "v2_member_exclude", "Exclude a member")
            .body(one::<m::ExcludeBody>)
            .ok(object),
        member(
            "discovery-failed",
            "v2_member_discovery_failed",
            "Report failed discovery",
        )
        .body(one::<m::DiscoveryFailedBody>)
        .ok(object),
        member("artifacts", "v2_member_artifacts", "Attach artifacts")
            .body(one::<m::ArtifactsBody>)
            .ok(object),
        get("/api/v2/tasks", "v2_list_tasks", "Tasks")
            .query(CURSOR)
            .ok(one::<t::TaskPage<'static>>),
        get(
            "/api/v2/tasks/{task_id}",
            "v2_get_task",
            "A task with its instances",
        )
        .ok(one::<w::TaskOut<'static>>),
        get(
            "/api/v2/tasks/{task_id}/executions",
            "v2_task_executions",
            "A task's executions",
        ),
        get(
            "/api/v2/tasks/{task_id}/events",
            "v2_task_events",
            "A task's events",
        ),
        get(
            "/api/v2/tasks/{task_id}/artifacts",
            "v2_task_artifacts",
            "A task's artifacts",
        ),
        post(
            "/api/v2/tasks/{task_id}/claim/renew",
            "v2_renew_claim",
            "Renew a claim",
        )
        .body(one::<m::RenewBody>)
        .ok(one::<w::TransitionOut>),
        post(
            "/api/v2/executions/{execution_id}/stopped",
            "v2_execution_stopped",
            "An execution stopped",
        )
        .body(one::<m::StoppedBody>)
        .ok(one::<w::TransitionOut>),
    ]
}
