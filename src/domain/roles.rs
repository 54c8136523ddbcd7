//! Workspace roles, authorization rules and invite states (v1-identity §3.7, §4.5, §4.6,
//! §5.1; DECISIONS D16).
//!
//! Each check returns an [`AccessError`] carrying upstream's exact status code and
//! `detail` string. The checks are split so that the caller can interleave its own
//! lookups in upstream's order (e.g. admin check → 404 `Member not found` → owner rules).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::events::ParseEnumError;

/// Workspace role (`workspacerole`, v1-identity §5.1). Ordered by rank:
/// `member` (0) < `admin` (1) < `owner` (2) (v1-identity §3.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    /// Every role, lowest rank first.
    pub const ALL: &'static [Role] = &[Role::Member, Role::Admin, Role::Owner];

    /// The exact wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Parses an exact wire string (case-sensitive); anything else is a 422 upstream.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    /// Upstream's rank: member 0, admin 1, owner 2 (v1-identity §3.7).
    pub const fn rank(self) -> u8 {
        match self {
            Role::Member => 0,
            Role::Admin => 1,
            Role::Owner => 2,
        }
    }

    /// True when this role's rank is at least `min`'s (v1-identity §3.7).
    pub const fn at_least(self, min: Role) -> bool {
        self.rank() >= min.rank()
    }

    /// Title-cased name used in invitation emails (`Member`, `Admin`, `Owner`,
    /// v1-identity §6).
    pub const fn title(self) -> &'static str {
        match self {
            Role::Member => "Member",
            Role::Admin => "Admin",
            Role::Owner => "Owner",
        }
    }

    /// Admin+: change non-owner roles, remove non-owners, manage invites (v1-identity §3.7).
    pub const fn can_manage_members(self) -> bool {
        self.at_least(Role::Admin)
    }

    /// Admin+: update the workspace; manage environments (incl. `max_concurrent_locks`,
    /// D19), invites, API keys, target roots (v1-identity §3.7).
    pub const fn can_manage_workspace(self) -> bool {
        self.at_least(Role::Admin)
    }

    /// Owner only: delete the workspace, grant/revoke owner, remove owners, invite as
    /// owner (v1-identity §3.7, D16).
    pub const fn can_manage_owners(self) -> bool {
        self.at_least(Role::Owner)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s).ok_or_else(|| ParseEnumError {
            kind: "Role",
            input: s.to_owned(),
        })
    }
}

/// A refused workspace action, with upstream's status code and `detail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessError {
    /// 404 `Workspace not found`: the caller is not a member (deliberately 404, §3.7).
    NotAMember,
    /// 403 `Requires admin role or higher` (§3.7).
    RequiresAdmin,
    /// 403 `Requires owner role or higher` (§3.7).
    RequiresOwner,
    /// 403 `Only owners can modify owner roles` (§4.5.2).
    OnlyOwnersCanModifyOwnerRoles,
    /// 403 `Only owners can remove owners` (§4.5.3).
    OnlyOwnersCanRemoveOwners,
    /// 403 `Only owners can invite owners` (D16).
    OnlyOwnersCanInviteOwners,
    /// 400 `Workspace must keep at least one owner` (D16).
    MustKeepOneOwner,
    /// 400 `Cannot remove the last owner` (§4.5.3, kept by D16).
    CannotRemoveLastOwner,
}

impl AccessError {
    /// HTTP status code.
    pub const fn status(self) -> u16 {
        match self {
            AccessError::NotAMember => 404,
            AccessError::RequiresAdmin
            | AccessError::RequiresOwner
            | AccessError::OnlyOwnersCanModifyOwnerRoles
            | AccessError::OnlyOwnersCanRemoveOwners
            | AccessError::OnlyOwnersCanInviteOwners => 403,
            AccessError::MustKeepOneOwner | AccessError::CannotRemoveLastOwner => 400,
        }
    }

    /// Exact `detail` string.
    pub const fn detail(self) -> &'static str {
        match self {
            AccessError::NotAMember => "Workspace not found",
            AccessError::RequiresAdmin => "Requires admin role or higher",
            AccessError::RequiresOwner => "Requires owner role or higher",
            AccessError::OnlyOwnersCanModifyOwnerRoles => "Only owners can modify owner roles",
            AccessError::OnlyOwnersCanRemoveOwners => "Only owners can remove owners",
            AccessError::OnlyOwnersCanInviteOwners => "Only owners can invite owners",
            AccessError::MustKeepOneOwner => "Workspace must keep at least one owner",
            AccessError::CannotRemoveLastOwner => "Cannot remove the last owner",
        }
    }
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail())
    }
}

impl std::error::Error for AccessError {}

/// The workspace access check of every `/ui/workspaces/{id}/…` route (v1-identity §3.7):
/// no membership → 404 `Workspace not found`; rank below `min` → 403
/// `Requires <min> role or higher`. Returns the caller's role.
pub fn require_role(membership: Option<Role>, min: Role) -> Result<Role, AccessError> {
    let role = membership.ok_or(AccessError::NotAMember)?;
    if role.at_least(min) {
        return Ok(role);
    }
    Err(match min {
        Role::Owner => AccessError::RequiresOwner,
        // A member requirement is always met, so only admin can be missing here.
        Role::Admin | Role::Member => AccessError::RequiresAdmin,
    })
}

/// Workspace actions and their minimum role (the table of v1-identity §3.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkspaceAction {
    ReadWorkspace,
    ListMembers,
    ListEnvironments,
    GetEnvironment,
    ListApiKeys,
    ListTargetRoots,
    GetTargetRoot,
    UpdateWorkspace,
    ManageEnvironments,
    ManageInvites,
    ManageApiKeys,
    ManageTargetRoots,
    ChangeMemberRole,
    RemoveMember,
    DeleteWorkspace,
}

impl WorkspaceAction {
    /// Minimum role (v1-identity §3.7). Owner-specific rules on top of `ChangeMemberRole`,
    /// `RemoveMember` and `ManageInvites` are in [`check_role_change`],
    /// [`check_member_removal`] and [`check_invite_role`].
    pub const fn min_role(self) -> Role {
        match self {
            WorkspaceAction::ReadWorkspace
            | WorkspaceAction::ListMembers
            | WorkspaceAction::ListEnvironments
            | WorkspaceAction::GetEnvironment
            | WorkspaceAction::ListApiKeys
            | WorkspaceAction::ListTargetRoots
            | WorkspaceAction::GetTargetRoot => Role::Member,
            WorkspaceAction::UpdateWorkspace
            | WorkspaceAction::ManageEnvironments
            | WorkspaceAction::ManageInvites
            | WorkspaceAction::ManageApiKeys
            | WorkspaceAction::ManageTargetRoots
            | WorkspaceAction::ChangeMemberRole
            | WorkspaceAction::RemoveMember => Role::Admin,
            WorkspaceAction::DeleteWorkspace => Role::Owner,
        }
    }

    /// [`require_role`] with this action's minimum role.
    pub fn authorize(self, membership: Option<Role>) -> Result<Role, AccessError> {
        require_role(membership, self.min_role())
    }
}

/// `PATCH …/members/{member_id}` rules after the admin check and the 404
/// `Member not found` lookup (v1-identity §4.5.2 + D16), in order:
/// 1. new role `owner` or target currently `owner`, and caller not owner → 403
///    `Only owners can modify owner roles`;
/// 2. target is an owner, new role is not, and it is the only owner → 400
///    `Workspace must keep at least one owner` (D16; upstream had no guard).
///
/// `owner_count` = owners of the workspace before the change (target included). Setting
/// the same role is a no-op and always allowed once rule 1 passes.
pub fn check_role_change(
    caller: Role,
    target_current: Role,
    new_role: Role,
    owner_count: u64,
) -> Result<(), AccessError> {
    if (new_role == Role::Owner || target_current == Role::Owner) && caller != Role::Owner {
        return Err(AccessError::OnlyOwnersCanModifyOwnerRoles);
    }
    if target_current == Role::Owner && new_role != Role::Owner && owner_count <= 1 {
        return Err(AccessError::MustKeepOneOwner);
    }
    Ok(())
}

/// `DELETE …/members/{member_id}` rules after the admin check and the 404
/// `Member not found` lookup (v1-identity §4.5.3, kept by D16), in order:
/// 1. target is an owner and caller is not → 403 `Only owners can remove owners`;
/// 2. target is an owner and the workspace has ≤ 1 owner → 400
///    `Cannot remove the last owner`.
///
/// Upstream phrases rule 2 as "target is the caller"; after rule 1 the two coincide (an
/// owner removing another owner means at least two owners), so this form also holds for
/// inconsistent counts.
pub fn check_member_removal(
    caller: Role,
    target: Role,
    owner_count: u64,
) -> Result<(), AccessError> {
    if target == Role::Owner && caller != Role::Owner {
        return Err(AccessError::OnlyOwnersCanRemoveOwners);
    }
    if target == Role::Owner && owner_count <= 1 {
        return Err(AccessError::CannotRemoveLastOwner);
    }
    Ok(())
}

/// `POST …/invites` role rule after the admin check (D16): only owners may invite as
/// owner → 403 `Only owners can invite owners`. (Upstream let admins do it.)
pub fn check_invite_role(caller: Role, invited_role: Role) -> Result<(), AccessError> {
    if invited_role == Role::Owner && caller != Role::Owner {
        return Err(AccessError::OnlyOwnersCanInviteOwners);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Invites
// ---------------------------------------------------------------------------------------

/// Default invite lifetime in days (`auth.invite_ttl_days`, D16).
pub const DEFAULT_INVITE_TTL_DAYS: u32 = 14;

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// Invite status (`invitestatus`, v1-identity §5.1). Lifecycle: `pending` →
/// `accepted` | `declined` | `cancelled`; terminal states never change (§4.6).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum InviteStatus {
    #[default]
    Pending,
    Accepted,
    Declined,
    Cancelled,
}

impl InviteStatus {
    /// Every status, in declaration order.
    pub const ALL: &'static [InviteStatus] = &[
        InviteStatus::Pending,
        InviteStatus::Accepted,
        InviteStatus::Declined,
        InviteStatus::Cancelled,
    ];

    /// The exact wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            InviteStatus::Pending => "pending",
            InviteStatus::Accepted => "accepted",
            InviteStatus::Declined => "declined",
            InviteStatus::Cancelled => "cancelled",
        }
    }

    /// Parses an exact wire string (case-sensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(InviteStatus::Pending),
            "accepted" => Some(InviteStatus::Accepted),
            "declined" => Some(InviteStatus::Declined),
            "cancelled" => Some(InviteStatus::Cancelled),
            _ => None,
        }
    }

    /// Only `pending → accepted | declined | cancelled` is allowed (v1-identity §4.6).
    pub const fn can_transition_to(self, next: InviteStatus) -> bool {
        matches!(
            (self, next),
            (
                InviteStatus::Pending,
                InviteStatus::Accepted | InviteStatus::Declined | InviteStatus::Cancelled
            )
        )
    }
}

impl fmt::Display for InviteStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InviteStatus {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InviteStatus::parse(s).ok_or_else(|| ParseEnumError {
            kind: "InviteStatus",
            input: s.to_owned(),
        })
    }
}

/// `expires_at` of an invite created at `created_at` (µs) with a lifetime of `ttl_days`
/// (D16). Saturates instead of overflowing.
pub fn invite_expires_at(created_at: i64, ttl_days: u32) -> i64 {
    created_at.saturating_add(i64::from(ttl_days).saturating_mul(MICROS_PER_DAY))
}

/// An invite is expired from `expires_at` on (D16).
pub fn invite_is_expired(expires_at: i64, now: i64) -> bool {
    now >= expires_at
}

/// Whether an invite is listed (`/ui/me/invites`, `…/invites`) and can be accepted,
/// declined or cancelled: pending and not expired (v1-identity §4.6, D16). Anything else
/// answers 404 `Invite not found`.
pub fn invite_is_open(status: InviteStatus, expires_at: i64, now: i64) -> bool {
    status == InviteStatus::Pending && !invite_is_expired(expires_at, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_wire_strings_round_trip() {
        for (r, w) in Role::ALL.iter().zip(["member", "admin", "owner"]) {
            assert_eq!(r.as_str(), w);
            assert_eq!(r.to_string(), w);
            assert_eq!(Role::parse(w), Some(*r));
            assert_eq!(w.parse::<Role>(), Ok(*r));
            assert_eq!(serde_json::to_string(r).unwrap(), format!("\"{w}\""));
            assert_eq!(
                serde_json::from_str::<Role>(&format!("\"{w}\"")).unwrap(),
                *r
            );
        }
        for bad in ["", "Owner", "OWNER", "viewer", " admin", "admin "] {
            assert_eq!(Role::parse(bad), None);
            assert!(bad.parse::<Role>().is_err());
            assert!(serde_json::from_str::<Role>(&format!("\"{bad}\"")).is_err());
        }
    }

    #[test]
    fn role_ranks_owner_over_admin_over_member() {
        assert_eq!(
            (Role::Member.rank(), Role::Admin.rank(), Role::Owner.rank()),
            (0, 1, 2)
        );
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        for a in Role::ALL {
            for b in Role::ALL {
                assert_eq!(a.at_least(*b), a >= b);
            }
        }
        assert_eq!(
            [
                Role::Member.title(),
                Role::Admin.title(),
                Role::Owner.title()
            ],
            ["Member", "Admin", "Owner"]
        );
    }

    #[test]
    fn permission_helpers_follow_the_table() {
        assert!(!Role::Member.can_manage_members());
        assert!(Role::Admin.can_manage_members());
        assert!(Role::Owner.can_manage_members());
        assert!(!Role::Member.can_manage_workspace());
        assert!(Role::Admin.can_manage_workspace());
        assert!(!Role::Admin.can_manage_owners());
        assert!(Role::Owner.can_manage_owners());
    }

    #[test]
    fn non_member_gets_workspace_not_found() {
        let e = require_role(None, Role::Member).unwrap_err();
        assert_eq!(e, AccessError::NotAMember);
        assert_eq!((e.status(), e.detail()), (404, "Workspace not found"));
    }

    #[test]
    fn requires_admin_role_or_higher() {
        let e = require_role(Some(Role::Member), Role::Admin).unwrap_err();
        assert_eq!(
            (e.status(), e.detail()),
            (403, "Requires admin role or higher")
        );
        assert_eq!(
            require_role(Some(Role::Admin), Role::Admin),
            Ok(Role::Admin)
        );
        assert_eq!(
            require_role(Some(Role::Owner), Role::Admin),
            Ok(Role::Owner)
        );
    }

    #[test]
    fn requires_owner_role_or_higher() {
        for r in [Role::Member, Role::Admin] {
            let e = require_role(Some(r), Role::Owner).unwrap_err();
            assert_eq!(
                (e.status(), e.detail()),
                (403, "Requires owner role or higher")
            );
        }
        assert_eq!(
            require_role(Some(Role::Owner), Role::Owner),
            Ok(Role::Owner)
        );
        assert_eq!(
            require_role(Some(Role::Member), Role::Member),
            Ok(Role::Member)
        );
    }

    #[test]
    fn workspace_action_table() {
        use WorkspaceAction::*;
        for a in [
            ReadWorkspace,
            ListMembers,
            ListEnvironments,
            GetEnvironment,
            ListApiKeys,
            ListTargetRoots,
            GetTargetRoot,
        ] {
            assert_eq!(a.authorize(Some(Role::Member)), Ok(Role::Member), "{a:?}");
        }
        for a in [
            UpdateWorkspace,
            ManageEnvironments,
            ManageInvites,
            ManageApiKeys,
            ManageTargetRoots,
            ChangeMemberRole,
            RemoveMember,
        ] {
            assert_eq!(
                a.authorize(Some(Role::Member)),
                Err(AccessError::RequiresAdmin),
                "{a:?}"
            );
            assert_eq!(a.authorize(Some(Role::Admin)), Ok(Role::Admin), "{a:?}");
        }
        assert_eq!(
            DeleteWorkspace.authorize(Some(Role::Admin)),
            Err(AccessError::RequiresOwner)
        );
        assert_eq!(
            DeleteWorkspace.authorize(Some(Role::Owner)),
            Ok(Role::Owner)
        );
        assert_eq!(
            DeleteWorkspace.authorize(None),
            Err(AccessError::NotAMember)
        );
    }

    #[test]
    fn only_owners_can_modify_owner_roles() {
        let e = check_role_change(Role::Admin, Role::Member, Role::Owner, 1).unwrap_err();
        assert_eq!(
            (e.status(), e.detail()),
            (403, "Only owners can modify owner roles")
        );
        assert_eq!(
            check_role_change(Role::Admin, Role::Owner, Role::Member, 3),
            Err(AccessError::OnlyOwnersCanModifyOwnerRoles)
        );
        assert_eq!(
            check_role_change(Role::Admin, Role::Owner, Role::Owner, 3),
            Err(AccessError::OnlyOwnersCanModifyOwnerRoles),
            "even a no-op on an owner needs an owner"
        );
        assert_eq!(
            check_role_change(Role::Owner, Role::Member, Role::Owner, 1),
            Ok(())
        );
    }

    #[test]
    fn admins_may_change_non_owner_roles_including_their_own() {
        assert_eq!(
            check_role_change(Role::Admin, Role::Member, Role::Admin, 1),
            Ok(())
        );
        assert_eq!(
            check_role_change(Role::Admin, Role::Admin, Role::Member, 1),
            Ok(())
        );
        assert_eq!(
            check_role_change(Role::Admin, Role::Admin, Role::Admin, 1),
            Ok(())
        );
    }

    #[test]
    fn workspace_must_keep_at_least_one_owner_d16() {
        let e = check_role_change(Role::Owner, Role::Owner, Role::Admin, 1).unwrap_err();
        assert_eq!(
            (e.status(), e.detail()),
            (400, "Workspace must keep at least one owner")
        );
        assert_eq!(
            check_role_change(Role::Owner, Role::Owner, Role::Member, 0),
            Err(AccessError::MustKeepOneOwner)
        );
        assert_eq!(
            check_role_change(Role::Owner, Role::Owner, Role::Admin, 2),
            Ok(())
        );
        assert_eq!(
            check_role_change(Role::Owner, Role::Owner, Role::Owner, 1),
            Ok(()),
            "no-op"
        );
    }

    #[test]
    fn only_owners_can_remove_owners() {
        let e = check_member_removal(Role::Admin, Role::Owner, 5).unwrap_err();
        assert_eq!(
            (e.status(), e.detail()),
            (403, "Only owners can remove owners")
        );
        assert_eq!(check_member_removal(Role::Admin, Role::Admin, 1), Ok(()));
        assert_eq!(check_member_removal(Role::Admin, Role::Member, 1), Ok(()));
    }

    #[test]
    fn cannot_remove_the_last_owner() {
        let e = check_member_removal(Role::Owner, Role::Owner, 1).unwrap_err();
        assert_eq!(
            (e.status(), e.detail()),
            (400, "Cannot remove the last owner")
        );
        assert_eq!(check_member_removal(Role::Owner, Role::Owner, 2), Ok(()));
        assert_eq!(check_member_removal(Role::Owner, Role::Member, 1), Ok(()));
    }

    #[test]
    fn only_owners_can_invite_owners_d16() {
        let e = check_invite_role(Role::Admin, Role::Owner).unwrap_err();
        assert_eq!(
            (e.status(), e.detail()),
            (403, "Only owners can invite owners")
        );
        assert_eq!(check_invite_role(Role::Owner, Role::Owner), Ok(()));
        assert_eq!(check_invite_role(Role::Admin, Role::Admin), Ok(()));
        assert_eq!(check_invite_role(Role::Admin, Role::Member), Ok(()));
    }

    #[test]
    fn invite_status_wire_strings_round_trip() {
        let wire = ["pending", "accepted", "declined", "cancelled"];
        for (s, w) in InviteStatus::ALL.iter().zip(wire) {
            assert_eq!(s.as_str(), w);
            assert_eq!(InviteStatus::parse(w), Some(*s));
            assert_eq!(w.parse::<InviteStatus>(), Ok(*s));
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{w}\""));
            assert_eq!(
                serde_json::from_str::<InviteStatus>(&format!("\"{w}\"")).unwrap(),
                *s
            );
        }
        assert_eq!(InviteStatus::parse("expired"), None);
        assert_eq!(InviteStatus::default(), InviteStatus::Pending);
    }

    #[test]
    fn invite_terminal_states_never_change() {
        for from in InviteStatus::ALL {
            for to in InviteStatus::ALL {
                let allowed = *from == InviteStatus::Pending && *to != InviteStatus::Pending;
                assert_eq!(from.can_transition_to(*to), allowed, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn invites_expire_after_ttl_days_d16() {
        let created = 1_000_000;
        let exp = invite_expires_at(created, DEFAULT_INVITE_TTL_DAYS);
        assert_eq!(exp, created + 14 * 86_400 * 1_000_000);
        assert!(invite_is_open(InviteStatus::Pending, exp, exp - 1));
        assert!(!invite_is_open(InviteStatus::Pending, exp, exp));
        assert!(!invite_is_open(InviteStatus::Accepted, exp, created));
        assert!(invite_is_expired(exp, exp + 1));
        assert_eq!(invite_expires_at(i64::MAX - 5, u32::MAX), i64::MAX);
        assert_eq!(invite_expires_at(0, 0), 0);
    }
}
