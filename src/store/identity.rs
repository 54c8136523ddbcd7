//! Identity tables: users, workspaces, members, invites, environments, API keys, target
//! roots and signing keys. Keys start with the owning tenant (workspace or environment)
//! so a lookup names its scope; secondary tables map the ids that routes carry alone.
//!
//! Ids are UUIDs stored as `u128`; rows are bincode (see `codec`).

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::codec::{decode, encode};
use super::StoreError;
use crate::domain::roles::{InviteStatus, Role};

/// user → row
pub const USERS: TableDefinition<u128, &[u8]> = TableDefinition::new("users");
/// lower-cased email → user
pub const USER_BY_EMAIL: TableDefinition<&str, u128> = TableDefinition::new("user_by_email");
/// external id (`local:<uuid>` or the IdP `sub`) → user
pub const USER_BY_EXTERNAL: TableDefinition<&str, u128> =
    TableDefinition::new("user_by_external");
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
pub const ENVIRONMENTS: TableDefinition<(u128, u128), &[u8]> =
    TableDefinition::new("environments");
/// environment → workspace (SDK routes carry the environment alone)
pub const ENV_WORKSPACE: TableDefinition<u128, u128> = TableDefinition::new("env_workspace");
/// (environment, key) → row
pub const API_KEYS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("api_keys");
/// SHA-256 of the full key → (environment, key): one lookup per request (D14)
pub const API_KEY_BY_HASH: TableDefinition<&[u8], (u128, u128)> =
    TableDefinition::new("api_key_by_hash");
/// (environment, root) → row
pub const TARGET_ROOTS: TableDefinition<(u128, u128), &[u8]> =
    TableDefinition::new("target_roots");
/// kid → signing key row (D13)
pub const SIGNING_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("signing_keys");

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

/// Reads and decodes one row by key; `None` when absent.
pub fn get_row<K, T>(
    table: &impl ReadableTable<K, &'static [u8]>,
    name: &'static str,
    key: impl std::borrow::Borrow<K::SelfType<'static>>,
) -> Result<Option<T>, StoreError>
where
    K: redb::Key + 'static,
    T: serde::de::DeserializeOwned,
{
    match table.get(key)? {
        Some(v) => Ok(Some(decode(name, v.value())?)),
        None => Ok(None),
    }
}

/// Encodes and inserts one row.
pub fn put_row<K, T>(
    table: &mut redb::Table<K, &'static [u8]>,
    key: impl std::borrow::Borrow<K::SelfType<'static>>,
    row: &T,
) -> Result<(), StoreError>
where
    K: redb::Key + 'static,
    T: Serialize,
{
    let bytes = encode(row)?;
    table.insert(key, bytes.as_slice())?;
    Ok(())
}

pub fn lower(email: &str) -> String {
    email.trim().to_lowercase()
}
