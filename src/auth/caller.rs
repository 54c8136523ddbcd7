//! Turning a request's credentials into a [`Caller`], per route kind (v1-identity §3.2
//! as changed by D9, D11, D31). Runs before any handler and before path validation.

use http::header::AUTHORIZATION;
use http::HeaderMap;
use uuid::Uuid;

use super::api_key;
use super::jwt::TokenError;
use crate::http::request::Query;
use crate::http::response::ApiError;
use crate::http::router::AuthKind;
use crate::http::AppState;
use crate::store::identity::{self, UserRow};
use crate::store::StoreError;

/// Who is calling, as far as the route's auth kind needs to know.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    /// Modes I and F: a known user (token's workspace, when the token was internal).
    User {
        user: UserRow,
        token_workspace: Option<Uuid>,
    },
    /// Mode X: a user identified by their identity token (local session or OIDC).
    Identity(UserRow),
    /// Mode S: an environment scope.
    Sdk(SdkScope),
}

/// The environment an SDK request acts in. Every task/build/lock read takes its
/// environment from here, never from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkScope {
    pub workspace_id: Uuid,
    pub environment_id: Uuid,
    /// The token's user; `None` for API keys (builds then have no user).
    pub user_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
}

impl Caller {
    /// The user of modes I/F/X (handlers of those modes always get one).
    pub fn user(&self) -> Result<&UserRow, ApiError> {
        match self {
            Caller::User { user, .. } | Caller::Identity(user) => Ok(user),
            _ => Err(ApiError::Internal("route expected a user caller".into())),
        }
    }

    /// What the per-credential rate limit is keyed on: the API key's id or the user's id.
    pub fn credential_id(&self) -> Option<Uuid> {
        match self {
            Caller::Anonymous => None,
            Caller::User { user, .. } | Caller::Identity(user) => Some(user.id),
            Caller::Sdk(scope) => scope.api_key_id.or(scope.user_id),
        }
    }

    pub fn sdk(&self) -> Result<SdkScope, ApiError> {
        match self {
            Caller::Sdk(scope) => Ok(*scope),
            _ => Err(ApiError::Internal("route expected an SDK caller".into())),
        }
    }
}

const BEARER: &str = "Bearer";
const SDK_CHALLENGE: &str = "Bearer, ApiKey realm=\"sdk\"";

fn unauthorized(detail: impl Into<String>, challenge: Option<&'static str>) -> ApiError {
    ApiError::Unauthorized {
        detail: detail.into(),
        challenge,
    }
}

/// 401 `Not authenticated` with a bearer challenge: no usable credential.
pub(crate) fn not_authenticated() -> ApiError {
    unauthorized("Not authenticated", Some(BEARER))
}

fn token_error(e: TokenError) -> ApiError {
    unauthorized(e.to_string(), Some(BEARER))
}

fn invalid_api_key() -> ApiError {
    unauthorized("Invalid API key", None)
}

fn user_not_found() -> ApiError {
    unauthorized("User not found", None)
}

/// `Authorization: Bearer <token>`; any other scheme or an empty token counts as absent.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn api_key_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-api-key").and_then(|v| v.to_str().ok())
}

pub async fn authenticate(
    state: &AppState,
    kind: AuthKind,
    headers: &HeaderMap,
    query: &Query,
) -> Result<Caller, ApiError> {
    match kind {
        AuthKind::None => Ok(Caller::Anonymous),
        AuthKind::Internal => {
            let token = bearer(headers).ok_or_else(not_authenticated)?;
            let claims = state.verify_internal(token).map_err(token_error)?;
            let user = load_user(state, claims.sub).await?;
            Ok(Caller::User {
                user,
                token_workspace: Some(claims.workspace_id),
            })
        }
        AuthKind::Flexible => {
            let token = bearer(headers).ok_or_else(not_authenticated)?;
            // An internal token first; any failure falls through to the identity token.
            if let Ok(claims) = state.verify_internal(token) {
                let user = load_user(state, claims.sub).await?;
                return Ok(Caller::User {
                    user,
                    token_workspace: Some(claims.workspace_id),
                });
            }
            let user = identity_user(state, token).await?;
            Ok(Caller::User {
                user,
                token_workspace: None,
            })
        }
        AuthKind::Exchange => {
            let token = bearer(headers).ok_or_else(not_authenticated)?;
            Ok(Caller::Identity(identity_user(state, token).await?))
        }
        AuthKind::Sdk => sdk_scope(state, headers, query).await.map(Caller::Sdk),
        // UI routes never reach `api::dispatch`: src/ui checks the cookie session.
        AuthKind::UiSession => Err(ApiError::Internal(
            "UI routes authenticate in src/ui".into(),
        )),
    }
}

async fn load_user(state: &AppState, id: Uuid) -> Result<UserRow, ApiError> {
    state
        .store
        .read(move |tx| identity::user(tx, id).map_err(ApiError::from))
        .await?
        .ok_or_else(user_not_found)
}

/// The user behind an identity token: a local session (local mode) or an OIDC token,
/// which may provision the user (D15).
async fn identity_user(state: &AppState, token: &str) -> Result<UserRow, ApiError> {
    match &state.oidc {
        None => crate::api::auth::session_user(state, token)
            .await
            .map(|(user, _)| user),
        Some(oidc) => {
            let claims = oidc.verify(token).await.map_err(token_error)?;
            crate::api::provisioning::user_for_oidc(state, claims).await
        }
    }
}

/// Mode S: both credentials are checked when both are sent (a valid key with a stale
/// bearer fails, as upstream); the key wins when both are valid.
async fn sdk_scope(
    state: &AppState,
    headers: &HeaderMap,
    query: &Query,
) -> Result<SdkScope, ApiError> {
    let key = api_key_header(headers);
    let bearer_token = bearer(headers);
    let key_scope = match key {
        Some(k) => Some(api_key_scope(state, k).await?),
        None => None,
    };
    let claims = match bearer_token {
        Some(t) => Some(state.verify_internal(t).map_err(token_error)?),
        None => None,
    };
    if let Some(scope) = key_scope {
        return Ok(scope);
    }
    let Some(claims) = claims else {
        return Err(unauthorized(
            "Authentication required. Provide X-API-Key header or Bearer token.",
            Some(SDK_CHALLENGE),
        ));
    };
    let env_param = query.get("environment_id").map(str::to_owned);
    let (user_id, ws) = (claims.sub, claims.workspace_id);
    let env_not_found = || ApiError::not_found("Environment not found");
    // Three keyed gets on every SDK call: read in place (see `Store::read_inline`).
    let (user, member, env_ws) = state.store.read_inline(|tx| -> Result<_, ApiError> {
        let user = identity::user(tx, user_id)?;
        let member = identity::membership(tx, ws, user_id)?;
        let env_ws = match env_param.as_deref().map(Uuid::parse_str) {
            Some(Ok(env)) => Some((env, identity::env_workspace(tx, env)?)),
            _ => None,
        };
        Ok((user, member, env_ws))
    })?;
    if user.is_none() {
        return Err(user_not_found());
    }
    if query.get("environment_id").is_none() {
        return Err(ApiError::BadRequest(
            "environment_id is required when using JWT authentication".into(),
        ));
    }
    // D31: a user removed from the workspace loses SDK access at once. D9: a foreign
    // environment looks absent.
    if member.is_none() {
        return Err(env_not_found());
    }
    match env_ws {
        Some((env, Some(env_ws))) if env_ws == ws => Ok(SdkScope {
            workspace_id: ws,
            environment_id: env,
            user_id: Some(user_id),
            api_key_id: None,
        }),
        _ => Err(env_not_found()),
    }
}

async fn api_key_scope(state: &AppState, key: &str) -> Result<SdkScope, ApiError> {
    if api_key::parse(key).is_err() {
        return Err(invalid_api_key());
    }
    let hash = api_key::hash(key);
    // Two keyed gets on every SDK call: read in place (see `Store::read_inline`).
    let found = state.store.read_inline(|tx| -> Result<_, StoreError> {
        let Some(row) = identity::api_key_by_hash(tx, &hash)? else {
            return Ok(None);
        };
        let ws = identity::env_workspace(tx, row.environment_id)?;
        Ok(Some((row, ws)))
    })?;
    let Some((row, ws)) = found else {
        return Err(invalid_api_key());
    };
    if row.revoked_at.is_some() || !api_key::verify(key, &row.key_hash) {
        return Err(invalid_api_key());
    }
    let Some(workspace_id) = ws else {
        return Err(ApiError::Internal("API key configuration error".into()));
    };
    state.api_key_used(row.environment_id, row.id);
    Ok(SdkScope {
        workspace_id,
        environment_id: row.environment_id,
        user_id: None,
        api_key_id: Some(row.id),
    })
}
