//! Users that appear through an identity token (v1-identity §3.4, D15), and the personal
//! workspace every new user gets: workspace, owner membership, environment `local` and
//! target root `default`, all in one transaction.

use crate::store::WriteTxn;
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;

use crate::auth::jwt::OidcClaims;
use crate::clock;
use crate::domain::slug::{self, PersonalSlug};
use crate::http::response::ApiError;
use crate::http::AppState;
use crate::store::identity::{self, EnvironmentRow, UserRow, WorkspaceRow};

/// Candidates tried before giving up on a free personal slug (each later one random).
const SLUG_ATTEMPTS: u32 = 32;

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // SystemRandom only fails when the OS has no entropy source at all.
    let _ = SystemRandom::new().fill(&mut b);
    u32::from_le_bytes(b)
}

/// Creates the user's personal workspace with its `local` environment and `default`
/// target root. Returns the workspace and the environment.
pub fn create_personal_workspace(
    tx: &WriteTxn,
    user: &UserRow,
) -> Result<(WorkspaceRow, EnvironmentRow), ApiError> {
    let plan = PersonalSlug::from_email(&user.email);
    let mut slug = None;
    for attempt in 0..SLUG_ATTEMPTS {
        let candidate = plan.candidate(attempt, random_u32());
        if !identity::workspace_slug_taken(tx, &candidate)? {
            slug = Some(candidate);
            break;
        }
    }
    let slug = slug.ok_or_else(|| ApiError::Internal("no free personal workspace slug".into()))?;
    let (ws, env) = identity::create_workspace(
        tx,
        identity::NewWorkspace {
            name: slug::personal_workspace_name(user.display_name.as_deref(), &user.email),
            slug,
            description: None,
            owner: user.id,
            is_personal: true,
            env_name: slug::PERSONAL_ENVIRONMENT_NAME.into(),
            env_slug: slug::PERSONAL_ENVIRONMENT_SLUG.into(),
            env_description: Some(slug::PERSONAL_ENVIRONMENT_DESCRIPTION.into()),
            root: Some((
                slug::PERSONAL_TARGET_ROOT_NAME.into(),
                slug::PERSONAL_TARGET_ROOT_URI.into(),
            )),
        },
    )?;
    Ok((ws, env))
}

/// Creates a user and their personal workspace; the email must be free.
pub fn create_user_with_workspace(
    tx: &WriteTxn,
    user: &UserRow,
) -> Result<(WorkspaceRow, EnvironmentRow), ApiError> {
    identity::put_user(tx, user, None)?;
    create_personal_workspace(tx, user)
}

/// Finds, updates, re-links or creates the user behind an OIDC token (§3.4, D15). The
/// single writer makes this race-free: two first calls of one identity create one user.
pub async fn user_for_oidc(state: &AppState, claims: OidcClaims) -> Result<UserRow, ApiError> {
    state.store.write(move |tx| provision(tx, &claims)).await
}

fn provision(tx: &WriteTxn, claims: &OidcClaims) -> Result<UserRow, ApiError> {
    let email = claims.email.clone().filter(|e| !e.is_empty());
    let display = claims.display_name();
    if let Some(existing) = identity::user_by_external(tx, &claims.sub)? {
        let mut updated = existing.clone();
        if let Some(e) = &email {
            updated.email = e.clone();
        }
        updated.display_name = Some(display);
        if updated != existing {
            ensure_email_free(tx, &updated, Some(&existing))?;
            identity::put_user(tx, &updated, Some(&existing))?;
        }
        return Ok(updated);
    }
    if let Some(e) = &email {
        if let Some(existing) = identity::user_by_email(tx, e)? {
            // Same person, new identity provider subject: re-link.
            let mut relinked = existing.clone();
            relinked.external_id = claims.sub.clone();
            relinked.display_name = Some(display);
            identity::put_user(tx, &relinked, Some(&existing))?;
            return Ok(relinked);
        }
    }
    let Some(email) = email else {
        return Err(ApiError::BadRequest(
            "Token must contain email claim for user creation".into(),
        ));
    };
    let user = UserRow {
        id: Uuid::now_v7(),
        external_id: claims.sub.clone(),
        email,
        display_name: Some(display),
        password_hash: None,
        created_at: clock::now_micros(),
    };
    create_user_with_workspace(tx, &user)?;
    Ok(user)
}

/// A changed email must not collide with another user's (upstream answered 500).
fn ensure_email_free(tx: &WriteTxn, user: &UserRow, old: Option<&UserRow>) -> Result<(), ApiError> {
    if old.is_some_and(|o| identity::lower(&o.email) == identity::lower(&user.email)) {
        return Ok(());
    }
    match identity::user_by_email(tx, &user.email)? {
        Some(other) if other.id != user.id => Err(ApiError::Conflict(
            "Email already belongs to another user".into(),
        )),
        _ => Ok(()),
    }
}
