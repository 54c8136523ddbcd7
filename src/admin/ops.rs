//! The admin operations, on an open [`Store`]. Each returns a serializable view: the
//! CLI prints it as text or, with `--json`, as is. Writes follow the store's contract:
//! every check runs before the first write of the transaction.

use redb::ReadableTable;
use ring::rand::SystemRandom;
use serde::Serialize;
use uuid::Uuid;

use crate::api::provisioning;
use crate::auth::{api_key, keys, password};
use crate::clock;
use crate::config::AuthMode;
use crate::domain::slug::{self, validate_slug};
use crate::http::response::ApiError;
use crate::store::codec::decode;
use crate::store::identity::{
    self, ApiKeyRow, EnvironmentRow, MemberRow, SigningKeyRow, UserRow, WorkspaceRow, API_KEYS,
    ENVIRONMENTS, MEMBERS, SIGNING_KEYS, USERS, WORKSPACES, WORKSPACE_BY_SLUG,
};
use crate::store::{Reader, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no database at {0} (start the server once to create it, or check --data-dir)")]
    NoDatabase(String),
    #[error(
        "the database {0} is held by another process, most likely a running stardag-server; \
         stop the server, then run the admin command again"
    )]
    Locked(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Internal(String),
    /// `admin verify` found damage (or the file did not open).
    #[error("{0}")]
    Damaged(String),
}

impl AdminError {
    /// A stable name for `--json` error output, so scripts need not match messages.
    pub fn kind(&self) -> &'static str {
        match self {
            AdminError::NoDatabase(_) => "no_database",
            AdminError::Locked(_) => "locked",
            AdminError::NotFound(_) => "not_found",
            AdminError::Conflict(_) => "conflict",
            AdminError::Invalid(_) => "invalid",
            AdminError::Damaged(_) | AdminError::Store(StoreError::Damaged { .. }) => "damaged",
            AdminError::Store(_) | AdminError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked(path) => AdminError::Locked(path),
            other => AdminError::Store(other),
        }
    }
}

impl From<redb::StorageError> for AdminError {
    fn from(e: redb::StorageError) -> Self {
        StoreError::from(e).into()
    }
}

/// Provisioning is shared with the API and speaks its error type.
impl From<ApiError> for AdminError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Conflict(m) => AdminError::Conflict(m),
            ApiError::NotFound(m) => AdminError::NotFound(m),
            ApiError::BadRequest(m) | ApiError::Forbidden(m) => AdminError::Invalid(m),
            ApiError::Internal(m) => AdminError::Internal(m),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl From<keys::KeysError> for AdminError {
    fn from(e: keys::KeysError) -> Self {
        match e {
            keys::KeysError::Store(s) => s.into(),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct MembershipView {
    pub workspace_id: Uuid,
    pub workspace_slug: String,
    pub role: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    pub external_id: String,
    pub has_password: bool,
    pub created_at: String,
    pub workspaces: Vec<MembershipView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentView {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// `null` = unlimited (D19).
    pub max_concurrent_locks: Option<u32>,
    pub created_at: String,
}

impl From<&EnvironmentRow> for EnvironmentView {
    fn from(e: &EnvironmentRow) -> Self {
        EnvironmentView {
            id: e.id,
            workspace_id: e.workspace_id,
            name: e.name.clone(),
            slug: e.slug.clone(),
            description: e.description.clone(),
            max_concurrent_locks: e.max_concurrent_locks,
            created_at: clock::format_micros(e.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub user_id: Uuid,
    pub email: Option<String>,
    pub role: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkspaceView {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub is_personal: bool,
    pub created_at: String,
    pub members: Vec<MemberView>,
    pub environments: Vec<EnvironmentView>,
}

/// The API's key metadata shape (v1-identity §4.8.1); the secret itself is never stored.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub name: String,
    pub key_prefix: String,
    pub created_by_id: Option<Uuid>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<&ApiKeyRow> for ApiKeyView {
    fn from(k: &ApiKeyRow) -> Self {
        ApiKeyView {
            id: k.id,
            environment_id: k.environment_id,
            name: k.name.clone(),
            key_prefix: k.key_prefix.clone(),
            created_by_id: k.created_by,
            created_at: clock::format_micros(k.created_at),
            last_used_at: k.last_used_at.map(clock::format_micros),
            revoked_at: k.revoked_at.map(clock::format_micros),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UserAdded {
    pub user: UserView,
    pub workspace: WorkspaceView,
    /// Only when generated: shown once, stored nowhere but as a hash.
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PasswordSet {
    pub user_id: Uuid,
    pub email: String,
    /// Only when generated.
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyCreated {
    #[serde(flatten)]
    pub meta: ApiKeyView,
    /// The full key: shown once, never retrievable again.
    pub key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyRevoked {
    #[serde(flatten)]
    pub meta: ApiKeyView,
    /// True when the key had been revoked before; `revoked_at` keeps the first time.
    pub already_revoked: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SigningKeyView {
    pub kid: String,
    pub created_at: String,
    pub retired_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rotated {
    /// The key that signs from the next start on.
    pub kid: String,
    /// Every stored key, oldest first. Retired keys keep verifying tokens for the longest
    /// token lifetime after their retirement.
    pub keys: Vec<SigningKeyView>,
}

// ---------------------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------------------

/// A workspace named by id or slug. An id is tried first; a slug may look like a UUID.
pub fn find_workspace(r: &impl Reader, reference: &str) -> Result<WorkspaceRow, AdminError> {
    if let Ok(id) = Uuid::parse_str(reference) {
        if let Some(ws) = identity::workspace(r, id)? {
            return Ok(ws);
        }
    }
    let id = r
        .open(WORKSPACE_BY_SLUG)?
        .get(reference)?
        .map(|g| Uuid::from_u128(g.value()));
    match id {
        Some(id) => identity::workspace(r, id)?,
        None => None,
    }
    .ok_or_else(|| AdminError::NotFound(format!("workspace {reference:?} not found")))
}

/// How the CLI names an environment: its id, or its slug within a workspace.
#[derive(Debug, Clone)]
pub struct EnvRef {
    pub environment: String,
    pub workspace: Option<String>,
}

pub fn find_environment(r: &impl Reader, at: &EnvRef) -> Result<EnvironmentRow, AdminError> {
    let ws = at
        .workspace
        .as_deref()
        .map(|w| find_workspace(r, w))
        .transpose()?;
    let not_found = || match &at.workspace {
        Some(w) => AdminError::NotFound(format!(
            "environment {:?} not found in workspace {w:?}",
            at.environment
        )),
        None => AdminError::NotFound(format!("environment {:?} not found", at.environment)),
    };
    if let Ok(id) = Uuid::parse_str(&at.environment) {
        if let Some(env_ws) = identity::env_workspace(r, id)? {
            if ws.as_ref().is_none_or(|w| w.id == env_ws) {
                return identity::environment(r, env_ws, id)?.ok_or_else(not_found);
            }
        }
    }
    let Some(ws) = ws else {
        return Err(match Uuid::parse_str(&at.environment) {
            Ok(_) => not_found(),
            Err(_) => AdminError::Invalid(format!(
                "{:?} is not an environment id; to name an environment by slug, add \
                 --workspace",
                at.environment
            )),
        });
    };
    let envs: Vec<EnvironmentRow> = identity::rows_of(r, ENVIRONMENTS, "environments", ws.id)?;
    envs.into_iter()
        .find(|e| e.slug == at.environment)
        .ok_or_else(not_found)
}

fn find_user_by_email(r: &impl Reader, email: &str) -> Result<UserRow, AdminError> {
    identity::user_by_email(r, email)?
        .ok_or_else(|| AdminError::NotFound(format!("no user with email {email:?}")))
}

fn user_view(r: &impl Reader, u: &UserRow) -> Result<UserView, StoreError> {
    let mut workspaces = Vec::new();
    for m in identity::memberships_of_user(r, u.id)? {
        if let Some(ws) = identity::workspace(r, m.workspace_id)? {
            workspaces.push(MembershipView {
                workspace_id: ws.id,
                workspace_slug: ws.slug,
                role: m.role.as_str(),
            });
        }
    }
    Ok(UserView {
        id: u.id,
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        external_id: u.external_id.clone(),
        has_password: u.password_hash.is_some(),
        created_at: clock::format_micros(u.created_at),
        workspaces,
    })
}

fn workspace_view(r: &impl Reader, ws: &WorkspaceRow) -> Result<WorkspaceView, StoreError> {
    let mut members = Vec::new();
    for m in identity::rows_of::<MemberRow>(r, MEMBERS, "members", ws.id)? {
        members.push(MemberView {
            user_id: m.user_id,
            email: identity::user(r, m.user_id)?.map(|u| u.email),
            role: m.role.as_str(),
        });
    }
    let mut envs: Vec<EnvironmentRow> = identity::rows_of(r, ENVIRONMENTS, "environments", ws.id)?;
    envs.sort_by(|a, b| a.slug.cmp(&b.slug).then(a.id.cmp(&b.id)));
    Ok(WorkspaceView {
        id: ws.id,
        name: ws.name.clone(),
        slug: ws.slug.clone(),
        description: ws.description.clone(),
        is_personal: ws.is_personal,
        created_at: clock::format_micros(ws.created_at),
        members,
        environments: envs.iter().map(EnvironmentView::from).collect(),
    })
}

fn check_slug(what: &str, s: &str) -> Result<(), AdminError> {
    validate_slug(s).map_err(|e| AdminError::Invalid(format!("{what} slug {s:?}: {e}")))
}

fn non_empty(what: &str, s: &str) -> Result<String, AdminError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(AdminError::Invalid(format!("{what} must not be empty")));
    }
    Ok(t.to_owned())
}

/// Operators may add users at local host names (`bob@localhost`), so only the shape is
/// checked: one `@` with text on both sides and no whitespace.
fn check_email(email: &str) -> Result<String, AdminError> {
    let email = email.trim();
    let ok = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.contains(char::is_whitespace)
        }
        None => false,
    };
    if !ok {
        return Err(AdminError::Invalid(format!(
            "{email:?} is not an email address"
        )));
    }
    Ok(email.to_owned())
}

fn hash(password: &str) -> Result<String, AdminError> {
    password::hash_password(password).map_err(|e| match e {
        password::PasswordError::Hash(m) => AdminError::Internal(m),
        other => AdminError::Invalid(other.to_string()),
    })
}

fn new_password() -> Result<String, AdminError> {
    crate::bootstrap::random_password().map_err(|e| AdminError::Internal(e.to_string()))
}

fn local_only(mode: AuthMode) -> Result<(), AdminError> {
    match mode {
        AuthMode::Local => Ok(()),
        AuthMode::Oidc => Err(AdminError::Invalid(
            "auth.mode is oidc: users sign in through the identity provider, so passwords \
             are not used"
                .into(),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

pub struct NewUser {
    pub email: String,
    pub password: Option<String>,
    pub display_name: Option<String>,
}

/// Creates a user with their personal workspace (D15), exactly as registration does. In
/// local mode a password is required; one is generated when none is given. In OIDC mode
/// the user has no password: their first sign-in links the identity by email (§3.4).
pub fn add_user(store: &Store, mode: AuthMode, new: NewUser) -> Result<UserAdded, AdminError> {
    let email = check_email(&new.email)?;
    let (password, generated) = match (new.password, mode) {
        (Some(p), AuthMode::Local) => (Some(p), false),
        (None, AuthMode::Local) => (Some(new_password()?), true),
        (Some(_), AuthMode::Oidc) => {
            local_only(mode)?;
            (None, false)
        }
        (None, AuthMode::Oidc) => (None, false),
    };
    // Argon2 is slow: hash before entering the writer.
    let password_hash = password.as_deref().map(hash).transpose()?;
    let id = Uuid::now_v7();
    let user = UserRow {
        id,
        external_id: format!("local:{id}"),
        email,
        display_name: new
            .display_name
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty()),
        password_hash,
        created_at: clock::now_micros(),
    };
    let row = user.clone();
    let ws = store.write_blocking(move |tx| -> Result<WorkspaceRow, AdminError> {
        if identity::user_by_email(tx, &row.email)?.is_some() {
            return Err(AdminError::Conflict(format!(
                "a user with email {:?} already exists",
                row.email
            )));
        }
        let (ws, _env) = provisioning::create_user_with_workspace(tx, &row)?;
        Ok(ws)
    })?;
    store.read_blocking(|tx| {
        Ok(UserAdded {
            user: user_view(tx, &user)?,
            workspace: workspace_view(tx, &ws)?,
            password: password.filter(|_| generated),
        })
    })
}

/// Every user, by email.
pub fn list_users(store: &Store) -> Result<Vec<UserView>, AdminError> {
    store.read_blocking(|tx| {
        let mut users = Vec::new();
        for entry in tx.open(USERS)?.iter()? {
            let (_, v) = entry?;
            users.push(decode::<UserRow>("users", v.value())?);
        }
        users.sort_by(|a, b| {
            identity::lower(&a.email)
                .cmp(&identity::lower(&b.email))
                .then(a.id.cmp(&b.id))
        });
        users
            .iter()
            .map(|u| user_view(tx, u).map_err(AdminError::from))
            .collect()
    })
}

/// Sets (or generates) a local user's password.
pub fn set_password(
    store: &Store,
    mode: AuthMode,
    email: &str,
    password: Option<String>,
) -> Result<PasswordSet, AdminError> {
    local_only(mode)?;
    let user = store.read_blocking(|tx| find_user_by_email(tx, email))?;
    let generated = password.is_none();
    let password = match password {
        Some(p) => p,
        None => new_password()?,
    };
    let password_hash = hash(&password)?;
    let id = user.id;
    let updated = store.write_blocking(move |tx| -> Result<UserRow, AdminError> {
        let old = identity::user(tx, id)?
            .ok_or_else(|| AdminError::NotFound("the user was deleted meanwhile".into()))?;
        // Like the change-password route: the user's earlier sessions end.
        let valid_from = crate::clock::now_micros() / 1_000_000 + 1;
        Ok(identity::set_password_hash(
            tx,
            &old,
            password_hash,
            valid_from,
        )?)
    })?;
    Ok(PasswordSet {
        user_id: updated.id,
        email: updated.email,
        password: generated.then_some(password),
    })
}

// ---------------------------------------------------------------------------------------
// Workspaces and environments
// ---------------------------------------------------------------------------------------

/// Every workspace, by slug, with members and environments.
pub fn list_workspaces(store: &Store) -> Result<Vec<WorkspaceView>, AdminError> {
    store.read_blocking(|tx| {
        let mut rows = Vec::new();
        for entry in tx.open(WORKSPACES)?.iter()? {
            let (_, v) = entry?;
            rows.push(decode::<WorkspaceRow>("workspaces", v.value())?);
        }
        rows.sort_by(|a, b| a.slug.cmp(&b.slug).then(a.id.cmp(&b.id)));
        rows.iter()
            .map(|w| workspace_view(tx, w).map_err(AdminError::from))
            .collect()
    })
}

pub struct NewWorkspace {
    pub name: String,
    pub slug: String,
    pub owner_email: String,
    pub description: Option<String>,
    pub environment_name: Option<String>,
    pub environment_slug: Option<String>,
}

/// A shared workspace with its owner and first environment, as `POST /ui/workspaces`
/// makes it (§4.4.1). The per-user quota of that route does not bind the operator.
pub fn create_workspace(store: &Store, new: NewWorkspace) -> Result<WorkspaceView, AdminError> {
    let name = non_empty("the workspace name", &new.name)?;
    check_slug("workspace", &new.slug)?;
    let env_name = slug::initial_environment_name(new.environment_name.as_deref()).to_owned();
    let env_slug = slug::initial_environment_slug(new.environment_slug.as_deref()).to_owned();
    // Upstream leaves the initial environment slug unchecked; the CLI does not.
    check_slug("environment", &env_slug)?;
    let owner_email = new.owner_email;
    let description = new.description.filter(|d| !d.trim().is_empty());
    let slug = new.slug;
    let ws = store.write_blocking(move |tx| -> Result<WorkspaceRow, AdminError> {
        let owner = find_user_by_email(tx, &owner_email)?;
        if identity::workspace_slug_taken(tx, &slug)? {
            return Err(AdminError::Conflict(format!(
                "workspace slug {slug:?} already exists"
            )));
        }
        let (ws, _) = identity::create_workspace(
            tx,
            identity::NewWorkspace {
                name,
                slug,
                description,
                owner: owner.id,
                is_personal: false,
                env_description: Some(slug::initial_environment_description(&env_name)),
                env_name,
                env_slug,
                root: None,
            },
        )?;
        Ok(ws)
    })?;
    store.read_blocking(|tx| Ok(workspace_view(tx, &ws)?))
}

pub struct NewEnvironment {
    pub workspace: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
}

/// An environment in a workspace; slugs are unique per workspace (§4.7.2). The
/// per-workspace quota of the API does not bind the operator.
pub fn create_environment(
    store: &Store,
    new: NewEnvironment,
) -> Result<EnvironmentView, AdminError> {
    let name = non_empty("the environment name", &new.name)?;
    check_slug("environment", &new.slug)?;
    let description = new.description.filter(|d| !d.trim().is_empty());
    let (workspace, slug) = (new.workspace, new.slug);
    let env = store.write_blocking(move |tx| -> Result<EnvironmentRow, AdminError> {
        let ws = find_workspace(tx, &workspace)?;
        let envs: Vec<EnvironmentRow> = identity::rows_of(tx, ENVIRONMENTS, "environments", ws.id)?;
        if envs.iter().any(|e| e.slug == slug) {
            return Err(AdminError::Conflict(format!(
                "environment slug {slug:?} already exists in workspace {:?}",
                ws.slug
            )));
        }
        let env = EnvironmentRow {
            id: Uuid::now_v7(),
            workspace_id: ws.id,
            name,
            slug,
            description,
            max_concurrent_locks: None,
            created_at: clock::now_micros(),
        };
        identity::put_environment(tx, &env)?;
        Ok(env)
    })?;
    Ok(EnvironmentView::from(&env))
}

/// Environments of one workspace, or of all, by workspace then slug.
pub fn list_environments(
    store: &Store,
    workspace: Option<&str>,
) -> Result<Vec<EnvironmentView>, AdminError> {
    store.read_blocking(|tx| {
        let mut envs: Vec<EnvironmentRow> = match workspace {
            Some(w) => {
                let ws = find_workspace(tx, w)?;
                identity::rows_of(tx, ENVIRONMENTS, "environments", ws.id)?
            }
            None => {
                let mut all = Vec::new();
                for entry in tx.open(ENVIRONMENTS)?.iter()? {
                    let (_, v) = entry?;
                    all.push(decode("environments", v.value())?);
                }
                all
            }
        };
        envs.sort_by(|a, b| (a.workspace_id, &a.slug, a.id).cmp(&(b.workspace_id, &b.slug, b.id)));
        Ok(envs.iter().map(EnvironmentView::from).collect())
    })
}

/// Sets or clears (`None`) an environment's lock limit (D19). Zero is refused: it would
/// refuse every lock, which is never what an operator means.
pub fn set_lock_limit(
    store: &Store,
    at: EnvRef,
    limit: Option<u32>,
) -> Result<EnvironmentView, AdminError> {
    if limit == Some(0) {
        return Err(AdminError::Invalid(
            "the lock limit must be at least 1 (use --unlimited to remove it)".into(),
        ));
    }
    let env = store.write_blocking(move |tx| -> Result<EnvironmentRow, AdminError> {
        let old = find_environment(tx, &at)?;
        let new = EnvironmentRow {
            max_concurrent_locks: limit,
            ..old
        };
        identity::put_environment(tx, &new)?;
        Ok(new)
    })?;
    Ok(EnvironmentView::from(&env))
}

// ---------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------

/// Creates an environment API key (D14: only its SHA-256 is stored). The key has no
/// creating user: it was made by the operator.
pub fn create_api_key(store: &Store, at: EnvRef, name: &str) -> Result<ApiKeyCreated, AdminError> {
    let name = non_empty("the key name", name)?;
    store.write_blocking(move |tx| -> Result<ApiKeyCreated, AdminError> {
        let env = find_environment(tx, &at)?;
        let key = api_key::generate(&env.id, &SystemRandom::new())
            .map_err(|e| AdminError::Internal(e.to_string()))?;
        let row = ApiKeyRow {
            id: Uuid::now_v7(),
            environment_id: env.id,
            name,
            key_prefix: key.key_prefix.clone(),
            key_hash: key.hash,
            created_by: None,
            created_at: clock::now_micros(),
            last_used_at: None,
            revoked_at: None,
        };
        identity::put_api_key(tx, &row)?;
        Ok(ApiKeyCreated {
            meta: ApiKeyView::from(&row),
            key: key.key,
        })
    })
}

/// Every key of an environment, revoked ones included, newest first (§4.8.1 order).
pub fn list_api_keys(store: &Store, at: &EnvRef) -> Result<Vec<ApiKeyView>, AdminError> {
    store.read_blocking(|tx| {
        let env = find_environment(tx, at)?;
        let mut keys: Vec<ApiKeyRow> = identity::rows_of(tx, API_KEYS, "api_keys", env.id)?;
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(keys.iter().map(ApiKeyView::from).collect())
    })
}

/// Revokes a key by id. Keys are stored under their environment, so an offline scan
/// finds it; revoking twice keeps the first `revoked_at`.
pub fn revoke_api_key(store: &Store, id: Uuid) -> Result<ApiKeyRevoked, AdminError> {
    store.write_blocking(move |tx| -> Result<ApiKeyRevoked, AdminError> {
        let mut found = None;
        for entry in tx.open(API_KEYS)?.iter()? {
            let (k, v) = entry?;
            if k.value().1 == id.as_u128() {
                found = Some(decode::<ApiKeyRow>("api_keys", v.value())?);
                break;
            }
        }
        let mut row =
            found.ok_or_else(|| AdminError::NotFound(format!("API key {id} not found")))?;
        let already_revoked = row.revoked_at.is_some();
        if !already_revoked {
            row.revoked_at = Some(clock::now_micros());
            identity::put_api_key(tx, &row)?;
        }
        Ok(ApiKeyRevoked {
            meta: ApiKeyView::from(&row),
            already_revoked,
        })
    })
}

// ---------------------------------------------------------------------------------------
// Signing keys
// ---------------------------------------------------------------------------------------

/// Adds a signing key and retires the current one (D13). A running server would not see
/// the change, which is one reason admin commands need the server stopped.
pub fn rotate_signing_key(store: &Store) -> Result<Rotated, AdminError> {
    let kid = keys::rotate(store)?;
    let mut rows = store.read_blocking(|tx| -> Result<Vec<SigningKeyRow>, AdminError> {
        let mut rows = Vec::new();
        for entry in tx.open(SIGNING_KEYS)?.iter()? {
            let (_, v) = entry?;
            rows.push(decode::<SigningKeyRow>("signing_keys", v.value())?);
        }
        Ok(rows)
    })?;
    rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.kid.cmp(&b.kid)));
    Ok(Rotated {
        kid,
        keys: rows
            .iter()
            .map(|r| SigningKeyView {
                kid: r.kid.clone(),
                created_at: clock::format_micros(r.created_at),
                retired_at: r.retired_at.map(clock::format_micros),
            })
            .collect(),
    })
}
