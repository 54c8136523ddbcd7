//! Identity tables: users, workspaces, members, invites, environments, API keys, target
//! roots and signing keys. Keys start with the owning tenant (workspace or environment)
//! so a lookup names its scope; secondary tables map the ids that routes carry alone.
//!
//! Ids are UUIDs stored as `u128`; rows are bincode (see `codec`).

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::codec::{decode, encode};
use super::{Reader, StoreError};
use crate::domain::roles::{InviteStatus, Role};

/// user → row
pub const USERS: TableDefinition<u128, &[u8]> = TableDefinition::new("users");
/// lower-cased email → user
pub const USER_BY_EMAIL: TableDefinition<&str, u128> = TableDefinition::new("user_by_email");
/// external id (`local:<uuid>` or the IdP `sub`) → user
pub const USER_BY_EXTERNAL: TableDefinition<&str, u128> = TableDefinition::new("user_by_external");
/// workspace → row
pub const WORKSPACES: TableDefinition<u128, &[u8]> = TableDefinition::new("workspaces");
/// slug → workspace (slugs are globally unique)
pub const WORKSPACE_BY_SLUG: TableDefinition<&str, u128> =
    TableDefinition::new("workspace_by_slug");
/// (workspace, member id) → membership row
pub const MEMBERS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("members");
/// (user, workspace) → member id: "my workspaces" and the access check
pub const MEMBER_BY_USER: TableDefinition<(u128, u128), u128> =
    TableDefinition::new("member_by_user");
/// (workspace, invite) → row
pub const INVITES: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("invites");
/// invite → workspace (accept/decline carry the invite id alone)
pub const INVITE_WORKSPACE: TableDefinition<u128, u128> = TableDefinition::new("invite_workspace");
/// (lower-cased email, invite) → workspace: "my invites"
pub const INVITE_BY_EMAIL: TableDefinition<(&str, u128), u128> =
    TableDefinition::new("invite_by_email");
/// (workspace, environment) → row
pub const ENVIRONMENTS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("environments");
/// environment → workspace (SDK routes carry the environment alone)
pub const ENV_WORKSPACE: TableDefinition<u128, u128> = TableDefinition::new("env_workspace");
/// (environment, key) → row
pub const API_KEYS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("api_keys");
/// SHA-256 of the full key → (environment, key): one lookup per request (D14)
pub const API_KEY_BY_HASH: TableDefinition<&[u8], (u128, u128)> =
    TableDefinition::new("api_key_by_hash");
/// (environment, root) → row
pub const TARGET_ROOTS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("target_roots");
/// kid → signing key row (D13)
pub const SIGNING_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("signing_keys");
/// user → Unix second from which their local sessions count (set when the password
/// changes; absent: every session). A table of its own, so user rows keep their layout.
pub const SESSIONS_VALID_FROM: TableDefinition<u128, i64> =
    TableDefinition::new("sessions_valid_from");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserRow {
    pub id: Uuid,
    pub external_id: String,
    pub email: String,
    pub display_name: Option<String>,
    /// argon2id PHC string; only local users have one.
    pub password_hash: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkspaceRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub created_by: Option<Uuid>,
    pub is_personal: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemberRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InviteRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// As typed by the inviter; matching is case-insensitive (D11).
    pub email: String,
    pub role: Role,
    pub status: InviteStatus,
    pub invited_by: Option<Uuid>,
    pub expires_at: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnvironmentRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// None = unlimited (D19).
    pub max_concurrent_locks: Option<u32>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub name: String,
    pub key_prefix: String,
    pub key_hash: [u8; 32],
    pub created_by: Option<Uuid>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetRootRow {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub name: String,
    pub uri_prefix: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SigningKeyRow {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    pub created_at: i64,
    /// Set when a newer key took over signing; kept to verify older tokens until they expire.
    pub retired_at: Option<i64>,
}

pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(USERS)?;
    tx.open_table(USER_BY_EMAIL)?;
    tx.open_table(USER_BY_EXTERNAL)?;
    tx.open_table(WORKSPACES)?;
    tx.open_table(WORKSPACE_BY_SLUG)?;
    tx.open_table(MEMBERS)?;
    tx.open_table(MEMBER_BY_USER)?;
    tx.open_table(INVITES)?;
    tx.open_table(INVITE_WORKSPACE)?;
    tx.open_table(INVITE_BY_EMAIL)?;
    tx.open_table(ENVIRONMENTS)?;
    tx.open_table(ENV_WORKSPACE)?;
    tx.open_table(API_KEYS)?;
    tx.open_table(API_KEY_BY_HASH)?;
    tx.open_table(TARGET_ROOTS)?;
    tx.open_table(SIGNING_KEYS)?;
    tx.open_table(SESSIONS_VALID_FROM)?;
    Ok(())
}

pub fn lower(email: &str) -> String {
    email.trim().to_lowercase()
}

fn decode_opt<T: DeserializeOwned>(
    name: &'static str,
    v: Option<redb::AccessGuard<'_, &'static [u8]>>,
) -> Result<Option<T>, StoreError> {
    v.map(|g| decode(name, g.value())).transpose()
}

/// Decodes every row of a tenant's key range `(tenant, *)`.
pub fn rows_of<T: DeserializeOwned>(
    r: &impl Reader,
    def: TableDefinition<(u128, u128), &'static [u8]>,
    name: &'static str,
    tenant: Uuid,
) -> Result<Vec<T>, StoreError> {
    let t = r.open(def)?;
    let t_id = tenant.as_u128();
    let mut out = Vec::new();
    for entry in t.range((t_id, 0u128)..=(t_id, u128::MAX))? {
        let (_, v) = entry?;
        out.push(decode(name, v.value())?);
    }
    Ok(out)
}

/// One row of a tenant-keyed table.
pub fn row_of<T: DeserializeOwned>(
    r: &impl Reader,
    def: TableDefinition<(u128, u128), &'static [u8]>,
    name: &'static str,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<T>, StoreError> {
    let t = r.open(def)?;
    let row = decode_opt(name, t.get((tenant.as_u128(), id.as_u128()))?);
    row
}

/// Encodes and writes one row of a tenant-keyed table.
pub fn put_row_of<T: Serialize>(
    tx: &WriteTransaction,
    def: TableDefinition<(u128, u128), &'static [u8]>,
    tenant: Uuid,
    id: Uuid,
    row: &T,
) -> Result<(), StoreError> {
    let bytes = encode(row)?;
    tx.open_table(def)?
        .insert((tenant.as_u128(), id.as_u128()), bytes.as_slice())?;
    Ok(())
}

pub fn user(r: &impl Reader, id: Uuid) -> Result<Option<UserRow>, StoreError> {
    decode_opt("users", r.open(USERS)?.get(id.as_u128())?)
}

pub fn user_by_email(r: &impl Reader, email: &str) -> Result<Option<UserRow>, StoreError> {
    let id = r
        .open(USER_BY_EMAIL)?
        .get(lower(email).as_str())?
        .map(|g| g.value());
    match id {
        Some(id) => user(r, Uuid::from_u128(id)),
        None => Ok(None),
    }
}

pub fn user_by_external(r: &impl Reader, external_id: &str) -> Result<Option<UserRow>, StoreError> {
    let id = r
        .open(USER_BY_EXTERNAL)?
        .get(external_id)?
        .map(|g| g.value());
    match id {
        Some(id) => user(r, Uuid::from_u128(id)),
        None => Ok(None),
    }
}

/// Inserts or updates a user and its email / external-id indexes.
pub fn put_user(
    tx: &WriteTransaction,
    row: &UserRow,
    old: Option<&UserRow>,
) -> Result<(), StoreError> {
    if let Some(old) = old {
        if lower(&old.email) != lower(&row.email) {
            tx.open_table(USER_BY_EMAIL)?
                .remove(lower(&old.email).as_str())?;
        }
        if old.external_id != row.external_id {
            tx.open_table(USER_BY_EXTERNAL)?
                .remove(old.external_id.as_str())?;
        }
    }
    let id = row.id.as_u128();
    let bytes = encode(row)?;
    tx.open_table(USERS)?.insert(id, bytes.as_slice())?;
    tx.open_table(USER_BY_EMAIL)?
        .insert(lower(&row.email).as_str(), id)?;
    tx.open_table(USER_BY_EXTERNAL)?
        .insert(row.external_id.as_str(), id)?;
    Ok(())
}

/// The first Unix second whose local sessions of `user` are accepted, if the password
/// was ever changed.
pub fn sessions_valid_from(r: &impl Reader, user: Uuid) -> Result<Option<i64>, StoreError> {
    Ok(r.open(SESSIONS_VALID_FROM)?
        .get(user.as_u128())?
        .map(|v| v.value()))
}

/// Stores a new password hash and refuses every session issued before `valid_from`
/// (Unix seconds): a password change signs the user out everywhere.
pub fn set_password_hash(
    tx: &WriteTransaction,
    old: &UserRow,
    password_hash: String,
    valid_from: i64,
) -> Result<UserRow, StoreError> {
    let new = UserRow {
        password_hash: Some(password_hash),
        ..old.clone()
    };
    put_user(tx, &new, Some(old))?;
    tx.open_table(SESSIONS_VALID_FROM)?
        .insert(old.id.as_u128(), valid_from)?;
    Ok(new)
}

pub fn workspace(r: &impl Reader, id: Uuid) -> Result<Option<WorkspaceRow>, StoreError> {
    decode_opt("workspaces", r.open(WORKSPACES)?.get(id.as_u128())?)
}

pub fn workspace_slug_taken(r: &impl Reader, slug: &str) -> Result<bool, StoreError> {
    Ok(r.open(WORKSPACE_BY_SLUG)?.get(slug)?.is_some())
}

pub fn put_workspace(tx: &WriteTransaction, row: &WorkspaceRow) -> Result<(), StoreError> {
    let bytes = encode(row)?;
    tx.open_table(WORKSPACES)?
        .insert(row.id.as_u128(), bytes.as_slice())?;
    tx.open_table(WORKSPACE_BY_SLUG)?
        .insert(row.slug.as_str(), row.id.as_u128())?;
    Ok(())
}

/// The caller's membership of a workspace, if any.
pub fn membership(
    r: &impl Reader,
    ws: Uuid,
    user_id: Uuid,
) -> Result<Option<MemberRow>, StoreError> {
    let member = r
        .open(MEMBER_BY_USER)?
        .get((user_id.as_u128(), ws.as_u128()))?
        .map(|g| g.value());
    match member {
        Some(m) => row_of(r, MEMBERS, "members", ws, Uuid::from_u128(m)),
        None => Ok(None),
    }
}

/// Every membership of a user, in workspace-id order.
pub fn memberships_of_user(r: &impl Reader, user_id: Uuid) -> Result<Vec<MemberRow>, StoreError> {
    let u = user_id.as_u128();
    let mut pairs = Vec::new();
    for entry in r.open(MEMBER_BY_USER)?.range((u, 0u128)..=(u, u128::MAX))? {
        let (k, v) = entry?;
        pairs.push((Uuid::from_u128(k.value().1), Uuid::from_u128(v.value())));
    }
    let mut out = Vec::new();
    for (ws, member) in pairs {
        if let Some(m) = row_of(r, MEMBERS, "members", ws, member)? {
            out.push(m);
        }
    }
    Ok(out)
}

pub fn put_member(tx: &WriteTransaction, row: &MemberRow) -> Result<(), StoreError> {
    put_row_of(tx, MEMBERS, row.workspace_id, row.id, row)?;
    tx.open_table(MEMBER_BY_USER)?.insert(
        (row.user_id.as_u128(), row.workspace_id.as_u128()),
        row.id.as_u128(),
    )?;
    Ok(())
}

pub fn remove_member(tx: &WriteTransaction, row: &MemberRow) -> Result<(), StoreError> {
    tx.open_table(MEMBERS)?
        .remove((row.workspace_id.as_u128(), row.id.as_u128()))?;
    tx.open_table(MEMBER_BY_USER)?
        .remove((row.user_id.as_u128(), row.workspace_id.as_u128()))?;
    Ok(())
}

/// The workspace an environment belongs to.
pub fn env_workspace(r: &impl Reader, env: Uuid) -> Result<Option<Uuid>, StoreError> {
    Ok(r.open(ENV_WORKSPACE)?
        .get(env.as_u128())?
        .map(|g| Uuid::from_u128(g.value())))
}

pub fn environment(
    r: &impl Reader,
    ws: Uuid,
    env: Uuid,
) -> Result<Option<EnvironmentRow>, StoreError> {
    row_of(r, ENVIRONMENTS, "environments", ws, env)
}

pub fn put_environment(tx: &WriteTransaction, row: &EnvironmentRow) -> Result<(), StoreError> {
    put_row_of(tx, ENVIRONMENTS, row.workspace_id, row.id, row)?;
    tx.open_table(ENV_WORKSPACE)?
        .insert(row.id.as_u128(), row.workspace_id.as_u128())?;
    Ok(())
}

/// The key a full-key hash belongs to (revoked keys included; callers check).
pub fn api_key_by_hash(r: &impl Reader, hash: &[u8; 32]) -> Result<Option<ApiKeyRow>, StoreError> {
    let ids = r
        .open(API_KEY_BY_HASH)?
        .get(hash.as_slice())?
        .map(|g| g.value());
    match ids {
        Some((env, key)) => row_of(
            r,
            API_KEYS,
            "api_keys",
            Uuid::from_u128(env),
            Uuid::from_u128(key),
        ),
        None => Ok(None),
    }
}

pub fn put_api_key(tx: &WriteTransaction, row: &ApiKeyRow) -> Result<(), StoreError> {
    put_row_of(tx, API_KEYS, row.environment_id, row.id, row)?;
    tx.open_table(API_KEY_BY_HASH)?.insert(
        row.key_hash.as_slice(),
        (row.environment_id.as_u128(), row.id.as_u128()),
    )?;
    Ok(())
}

pub fn put_target_root(tx: &WriteTransaction, row: &TargetRootRow) -> Result<(), StoreError> {
    put_row_of(tx, TARGET_ROOTS, row.environment_id, row.id, row)
}

/// Sets `last_used_at`; a key revoked or deleted meanwhile is left alone.
pub fn stamp_api_key(
    tx: &WriteTransaction,
    env: Uuid,
    key: Uuid,
    at: i64,
) -> Result<(), StoreError> {
    let Some(mut row) = row_of::<ApiKeyRow>(tx, API_KEYS, "api_keys", env, key)? else {
        return Ok(());
    };
    row.last_used_at = Some(at);
    put_row_of(tx, API_KEYS, env, key, &row)
}

/// Deletes every key of `(tenant, *)` in a tenant-keyed table, returning the removed rows.
pub fn remove_rows_of<T: DeserializeOwned>(
    tx: &WriteTransaction,
    def: TableDefinition<(u128, u128), &'static [u8]>,
    name: &'static str,
    tenant: Uuid,
) -> Result<Vec<T>, StoreError> {
    let t_id = tenant.as_u128();
    let mut table = tx.open_table(def)?;
    let mut removed = Vec::new();
    for entry in table.extract_from_if((t_id, 0u128)..=(t_id, u128::MAX), |_, _| true)? {
        let (_, v) = entry?;
        removed.push(decode(name, v.value())?);
    }
    Ok(removed)
}

/// Removes an environment and everything it holds (D9: API keys die with it).
pub fn delete_environment(tx: &WriteTransaction, ws: Uuid, env: Uuid) -> Result<(), StoreError> {
    let keys: Vec<ApiKeyRow> = remove_rows_of(tx, API_KEYS, "api_keys", env)?;
    {
        let mut by_hash = tx.open_table(API_KEY_BY_HASH)?;
        for k in &keys {
            by_hash.remove(k.key_hash.as_slice())?;
        }
    }
    let _: Vec<TargetRootRow> = remove_rows_of(tx, TARGET_ROOTS, "target_roots", env)?;
    super::purge_environment_data(tx, env)?;
    tx.open_table(ENVIRONMENTS)?
        .remove((ws.as_u128(), env.as_u128()))?;
    tx.open_table(ENV_WORKSPACE)?.remove(env.as_u128())?;
    Ok(())
}

// --- workspaces, members, invites ---

/// Number of keys in a tenant's range `(tenant, *)`, without decoding rows.
pub fn count_rows_of(
    r: &impl Reader,
    def: TableDefinition<(u128, u128), &'static [u8]>,
    tenant: Uuid,
) -> Result<u64, StoreError> {
    let t = r.open(def)?;
    let t_id = tenant.as_u128();
    let mut n = 0;
    for entry in t.range((t_id, 0u128)..=(t_id, u128::MAX))? {
        entry?;
        n += 1;
    }
    Ok(n)
}

/// Workspaces whose creator is `user` (personal one included), for the per-user limit.
/// A scan rather than an index: creation is rare and the limit keeps the table at a few
/// rows per user.
pub fn workspaces_created_by(r: &impl Reader, user: Uuid) -> Result<u64, StoreError> {
    let mut n = 0;
    for entry in r.open(WORKSPACES)?.iter()? {
        let (_, v) = entry?;
        let row: WorkspaceRow = decode("workspaces", v.value())?;
        if row.created_by == Some(user) {
            n += 1;
        }
    }
    Ok(n)
}

/// Memberships of a workspace, oldest first (member ids are UUIDv7).
pub fn members_of(r: &impl Reader, ws: Uuid) -> Result<Vec<MemberRow>, StoreError> {
    rows_of(r, MEMBERS, "members", ws)
}

pub fn member(r: &impl Reader, ws: Uuid, id: Uuid) -> Result<Option<MemberRow>, StoreError> {
    row_of(r, MEMBERS, "members", ws, id)
}

pub fn owner_count(r: &impl Reader, ws: Uuid) -> Result<u64, StoreError> {
    Ok(members_of(r, ws)?
        .iter()
        .filter(|m| m.role == Role::Owner)
        .count() as u64)
}

/// An invite by id alone (accept/decline carry no workspace).
pub fn invite(r: &impl Reader, id: Uuid) -> Result<Option<InviteRow>, StoreError> {
    let ws = r
        .open(INVITE_WORKSPACE)?
        .get(id.as_u128())?
        .map(|g| g.value());
    match ws {
        Some(ws) => row_of(r, INVITES, "invites", Uuid::from_u128(ws), id),
        None => Ok(None),
    }
}

/// Inserts or updates an invite with its indexes. The email never changes, so an update
/// rewrites the same index keys.
pub fn put_invite(tx: &WriteTransaction, row: &InviteRow) -> Result<(), StoreError> {
    put_row_of(tx, INVITES, row.workspace_id, row.id, row)?;
    tx.open_table(INVITE_WORKSPACE)?
        .insert(row.id.as_u128(), row.workspace_id.as_u128())?;
    tx.open_table(INVITE_BY_EMAIL)?.insert(
        (lower(&row.email).as_str(), row.id.as_u128()),
        row.workspace_id.as_u128(),
    )?;
    Ok(())
}

/// Removes a workspace and everything it holds: memberships, invites, every environment
/// (with its keys, roots and task data) and the slug, which becomes free again.
pub fn delete_workspace(tx: &WriteTransaction, ws: Uuid) -> Result<(), StoreError> {
    let Some(row) = workspace(tx, ws)? else {
        return Ok(());
    };
    let w = ws.as_u128();
    let members: Vec<MemberRow> = remove_rows_of(tx, MEMBERS, "members", ws)?;
    {
        let mut by_user = tx.open_table(MEMBER_BY_USER)?;
        for m in &members {
            by_user.remove((m.user_id.as_u128(), w))?;
        }
    }
    let invites: Vec<InviteRow> = remove_rows_of(tx, INVITES, "invites", ws)?;
    {
        let mut by_id = tx.open_table(INVITE_WORKSPACE)?;
        let mut by_email = tx.open_table(INVITE_BY_EMAIL)?;
        for i in &invites {
            by_id.remove(i.id.as_u128())?;
            by_email.remove((lower(&i.email).as_str(), i.id.as_u128()))?;
        }
    }
    let envs: Vec<EnvironmentRow> = rows_of(tx, ENVIRONMENTS, "environments", ws)?;
    for env in envs {
        delete_environment(tx, ws, env.id)?;
    }
    tx.open_table(WORKSPACE_BY_SLUG)?
        .remove(row.slug.as_str())?;
    tx.open_table(WORKSPACES)?.remove(w)?;
    Ok(())
}

// --- environments, API keys, target roots ---

/// Every environment of a workspace, in key (id) order.
pub fn environments_of(r: &impl Reader, ws: Uuid) -> Result<Vec<EnvironmentRow>, StoreError> {
    rows_of(r, ENVIRONMENTS, "environments", ws)
}

/// Every key of an environment, revoked ones included, in key (id) order.
pub fn api_keys_of(r: &impl Reader, env: Uuid) -> Result<Vec<ApiKeyRow>, StoreError> {
    rows_of(r, API_KEYS, "api_keys", env)
}

/// One key, looked up under its environment (a key of another environment is absent).
pub fn api_key(r: &impl Reader, env: Uuid, key: Uuid) -> Result<Option<ApiKeyRow>, StoreError> {
    row_of(r, API_KEYS, "api_keys", env, key)
}

/// Every target root of an environment, in key (id) order.
pub fn target_roots_of(r: &impl Reader, env: Uuid) -> Result<Vec<TargetRootRow>, StoreError> {
    rows_of(r, TARGET_ROOTS, "target_roots", env)
}

/// One target root, looked up under its environment.
pub fn target_root(
    r: &impl Reader,
    env: Uuid,
    root: Uuid,
) -> Result<Option<TargetRootRow>, StoreError> {
    row_of(r, TARGET_ROOTS, "target_roots", env, root)
}

/// The root of an environment with this name, if any (names are unique per environment;
/// an environment holds few roots, so a scan beats keeping a name index in step).
pub fn target_root_by_name(
    r: &impl Reader,
    env: Uuid,
    name: &str,
) -> Result<Option<TargetRootRow>, StoreError> {
    Ok(target_roots_of(r, env)?
        .into_iter()
        .find(|root| root.name == name))
}

pub fn delete_target_root(tx: &WriteTransaction, env: Uuid, root: Uuid) -> Result<(), StoreError> {
    tx.open_table(TARGET_ROOTS)?
        .remove((env.as_u128(), root.as_u128()))?;
    Ok(())
}

// --- creation shared by the API, provisioning and the admin CLI ---

/// Everything a new workspace starts with: its owner, one environment and, optionally,
/// one target root in it.
pub struct NewWorkspace {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub owner: Uuid,
    pub is_personal: bool,
    pub env_name: String,
    pub env_slug: String,
    pub env_description: Option<String>,
    /// `(name, uri_prefix)`.
    pub root: Option<(String, String)>,
}

/// Writes a workspace with its owner membership, environment and optional target root.
/// Callers check limits and slug conflicts first (plan-then-apply).
pub fn create_workspace(
    tx: &WriteTransaction,
    new: NewWorkspace,
) -> Result<(WorkspaceRow, EnvironmentRow), StoreError> {
    let now = crate::clock::now_micros();
    let ws = WorkspaceRow {
        id: Uuid::now_v7(),
        name: new.name,
        slug: new.slug,
        description: new.description,
        created_by: Some(new.owner),
        is_personal: new.is_personal,
        created_at: now,
    };
    put_workspace(tx, &ws)?;
    add_member(tx, ws.id, new.owner, Role::Owner)?;
    let env = EnvironmentRow {
        id: Uuid::now_v7(),
        workspace_id: ws.id,
        name: new.env_name,
        slug: new.env_slug,
        description: new.env_description,
        max_concurrent_locks: None,
        created_at: now,
    };
    put_environment(tx, &env)?;
    if let Some((name, uri_prefix)) = new.root {
        put_target_root(
            tx,
            &TargetRootRow {
                id: Uuid::now_v7(),
                environment_id: env.id,
                name,
                uri_prefix,
                created_at: now,
            },
        )?;
    }
    Ok((ws, env))
}

/// A new membership; the caller checked that the user is not a member yet.
pub fn add_member(
    tx: &WriteTransaction,
    ws: Uuid,
    user: Uuid,
    role: Role,
) -> Result<MemberRow, StoreError> {
    let row = MemberRow {
        id: Uuid::now_v7(),
        workspace_id: ws,
        user_id: user,
        role,
        created_at: crate::clock::now_micros(),
    };
    put_member(tx, &row)?;
    Ok(row)
}

/// Invites addressed to an email (case-insensitive, D11), open or not, in key order.
pub fn invites_for_email(r: &impl Reader, email: &str) -> Result<Vec<InviteRow>, StoreError> {
    let key = lower(email);
    let mut ids = Vec::new();
    for entry in r
        .open(INVITE_BY_EMAIL)?
        .range((key.as_str(), 0u128)..=(key.as_str(), u128::MAX))?
    {
        let (k, ws) = entry?;
        ids.push((
            uuid::Uuid::from_u128(ws.value()),
            uuid::Uuid::from_u128(k.value().1),
        ));
    }
    let mut out = Vec::new();
    for (ws, invite) in ids {
        if let Some(row) = row_of::<InviteRow>(r, INVITES, "invites", ws, invite)? {
            out.push(row);
        }
    }
    Ok(out)
}
