//! Resolving the slugs in a UI path against the signed-in user's memberships: a
//! workspace the user is not a member of, or an environment outside it, is simply not
//! found (D9), whatever the URL says. The result also builds the same `Caller` the API
//! handlers get (ui.md §3.4).

use uuid::Uuid;

use super::response::UiError;
use super::session::Session;
use crate::auth::{Caller, SdkScope};
use crate::domain::roles::Role;
use crate::http::AppState;
use crate::store::identity::{self, EnvironmentRow, UserRow, WorkspaceRow};
use crate::store::ReadSnapshot;

/// One of the user's workspaces, with their role and its environments (oldest first).
#[derive(Clone)]
pub struct MyWorkspace {
    pub ws: WorkspaceRow,
    pub role: Role,
    pub envs: Vec<EnvironmentRow>,
}

/// Every workspace of the user, oldest membership first (the switcher's list).
pub fn my_workspaces(tx: &ReadSnapshot, user: Uuid) -> Result<Vec<MyWorkspace>, UiError> {
    let mut out = Vec::new();
    for m in identity::memberships_of_user(tx, user)? {
        if let Some(ws) = identity::workspace(tx, m.workspace_id)? {
            let mut envs = identity::environments_of(tx, ws.id)?;
            envs.sort_by_key(|e| (e.created_at, e.id));
            out.push(MyWorkspace {
                ws,
                role: m.role,
                envs,
            });
        }
    }
    out.sort_by_key(|w| (w.ws.created_at, w.ws.id));
    Ok(out)
}

/// A page's workspace (and environment, for environment pages).
#[derive(Clone)]
pub struct Scope {
    pub mine: Vec<MyWorkspace>,
    /// Index into `mine`.
    current: usize,
    pub env: Option<EnvironmentRow>,
}

impl Scope {
    pub fn ws(&self) -> &MyWorkspace {
        &self.mine[self.current]
    }

    pub fn role(&self) -> Role {
        self.ws().role
    }

    pub fn is_admin(&self) -> bool {
        self.role() >= Role::Admin
    }

    /// The environment of an environment page.
    pub fn env(&self) -> Result<&EnvironmentRow, UiError> {
        self.env.as_ref().ok_or(UiError::NotFound)
    }

    /// `/ws/{ws}/env/{env}`.
    pub fn base(&self) -> String {
        match &self.env {
            Some(e) => format!(
                "/ws/{}/env/{}",
                super::layout::seg(&self.ws().ws.slug),
                super::layout::seg(&e.slug)
            ),
            None => format!("/ws/{}", super::layout::seg(&self.ws().ws.slug)),
        }
    }

    /// The caller of SDK reads and build actions in this environment: the user, with
    /// no API key (builds they touch record the user).
    pub fn sdk_caller(&self, user: &UserRow) -> Result<Caller, UiError> {
        let env = self.env()?;
        Ok(Caller::Sdk(SdkScope {
            workspace_id: self.ws().ws.id,
            environment_id: env.id,
            user_id: Some(user.id),
            api_key_id: None,
        }))
    }

    /// The caller of workspace routes (mode I): membership of the path workspace decides.
    pub fn user_caller(&self, user: &UserRow) -> Caller {
        Caller::User {
            user: user.clone(),
            token_workspace: Some(self.ws().ws.id),
        }
    }
}

/// The user's workspace named by `ws_slug` and, when given, its environment named by
/// `env_slug`; anything else is "not found".
pub async fn resolve(
    state: &AppState,
    who: &Session,
    ws_slug: &str,
    env_slug: Option<&str>,
) -> Result<Scope, UiError> {
    let user = who.user.id;
    let mine = state.store.read(move |tx| my_workspaces(tx, user)).await?;
    let current = mine
        .iter()
        .position(|w| w.ws.slug == ws_slug)
        .ok_or(UiError::NotFound)?;
    let env = match env_slug {
        Some(slug) => Some(
            mine[current]
                .envs
                .iter()
                .find(|e| e.slug == slug)
                .cloned()
                .ok_or(UiError::NotFound)?,
        ),
        None => None,
    };
    Ok(Scope { mine, current, env })
}

/// A build page's path: its scope, environment id and build id.
pub struct BuildPath {
    pub scope: Scope,
    pub env: Uuid,
    pub build: Uuid,
}

impl BuildPath {
    /// `/ws/{ws}/env/{env}/builds/{id}`.
    pub fn here(&self) -> String {
        format!("{}/builds/{}", self.scope.base(), self.build)
    }
}

/// The scope of `/ws/{ws}/env/{env}/builds/{raw}` and the build id; an id that is not
/// a UUID is "not found" like any unknown build (whether the build is in the
/// environment is the read's to say).
pub async fn resolve_build(
    state: &AppState,
    who: &Session,
    ws_slug: &str,
    env_slug: &str,
    raw_build: &str,
) -> Result<BuildPath, UiError> {
    let scope = resolve(state, who, ws_slug, Some(env_slug)).await?;
    let build = Uuid::parse_str(raw_build).map_err(|_| UiError::NotFound)?;
    let env = scope.env()?.id;
    Ok(BuildPath { scope, env, build })
}
