//! Auth routes: JWKS, auth config, local login and registration (D10, D11), and the
//! token exchange (v1-identity §4.2).

use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::provisioning;
use crate::auth::jwt::jwks_document;
use crate::auth::password;
use crate::clock;
use crate::config::AuthMode;
use crate::domain::limits::{DISPLAY_NAME_CHARS, EMAIL_CHARS};
use crate::http::request::{fields_too_long, reject, too_long};
use crate::http::response::{created, ok, ApiError, ApiResult};
use crate::http::{AppState, Req};
use crate::store::identity::{self, UserRow};

pub fn jwks(state: &AppState) -> ApiResult {
    Ok(ok(&jwks_document(&state.keys().verifying)))
}

pub fn config(state: &AppState) -> ApiResult {
    let body = match state.config.auth.mode {
        AuthMode::Local => json!({
            "auth_mode": "local",
            "oidc_issuer": null,
            "oidc_client_id": null,
        }),
        AuthMode::Oidc => {
            let oidc = &state.config.oidc;
            json!({
                "auth_mode": "oidc",
                "oidc_issuer": oidc.external_issuer_url.as_ref().unwrap_or(&oidc.issuer_url),
                "oidc_client_id": oidc.sdk_client_id,
            })
        }
    };
    Ok(ok(&body))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = auth::ExchangeBody)]
pub(crate) struct ExchangeBody {
    workspace_id: Uuid,
}

/// Mints a workspace-scoped internal token for a member of that workspace.
pub async fn exchange(state: &AppState, rq: Req) -> ApiResult {
    let user = rq.caller.user()?.clone();
    let body: ExchangeBody = rq.json()?;
    let ws = body.workspace_id;
    let member = state
        .store
        .read(move |tx| identity::membership(tx, ws, user.id).map_err(ApiError::from))
        .await?;
    if member.is_none() {
        return Err(ApiError::Forbidden(
            "Not a member of the requested workspace".into(),
        ));
    }
    let ttl = state.config.auth.access_token_ttl_seconds;
    let token = state
        .keys()
        .mint_internal(user.id, ws, ttl)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(ok(&json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = auth::LoginBody)]
pub(crate) struct LoginBody {
    email: String,
    password: String,
}

fn local_mode_only(state: &AppState) -> Result<(), ApiError> {
    match state.config.auth.mode {
        AuthMode::Local => Ok(()),
        AuthMode::Oidc => Err(ApiError::NotFound("Not Found".into())),
    }
}

fn rate_limited(retry_after: u64) -> ApiError {
    ApiError::Structured {
        status: http::StatusCode::TOO_MANY_REQUESTS,
        detail: json!({
            "code": "RATE_LIMIT",
            "message": format!("Too many login attempts, retry after {retry_after} s"),
        }),
        retry_after: Some(retry_after),
    }
}

/// A new session for `user`, issued no earlier than their sessions' start (a password
/// change refuses older ones, `SESSIONS_VALID_FROM`).
async fn session_answer(state: &AppState, user: &UserRow) -> Result<serde_json::Value, ApiError> {
    let id = user.id;
    let valid_from = state
        .store
        .read(move |tx| identity::sessions_valid_from(tx, id).map_err(ApiError::from))
        .await?;
    let ttl = state.config.auth.session_ttl_seconds;
    let token = state
        .keys()
        .mint_session_from(user.id, ttl, valid_from.unwrap_or(0))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json!({
        "session_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
    }))
}

/// The user of a local session token and its expiry (Unix seconds). A token issued
/// before the user's last password change is refused like an expired one.
pub async fn session_user(state: &AppState, token: &str) -> Result<(UserRow, i64), ApiError> {
    let claims = state
        .keys()
        .verify_session(token)
        .map_err(|e| unauthorized(e.to_string()))?;
    let id = claims.sub;
    let (user, valid_from) = state
        .store
        .read(move |tx| -> Result<_, ApiError> {
            Ok((
                identity::user(tx, id)?,
                identity::sessions_valid_from(tx, id)?,
            ))
        })
        .await?;
    let user = user.ok_or_else(|| unauthorized("User not found".into()))?;
    if claims.iat < valid_from.unwrap_or(i64::MIN) {
        return Err(unauthorized(
            "Session ended: the password was changed".into(),
        ));
    }
    Ok((user, claims.exp))
}

fn unauthorized(detail: String) -> ApiError {
    ApiError::Unauthorized {
        detail,
        challenge: Some("Bearer"),
    }
}

/// `POST /api/v1/auth/login`: the same 401 (and similar time) for an unknown email and a
/// wrong password.
pub async fn login(state: &AppState, rq: Req) -> ApiResult {
    local_mode_only(state)?;
    let body: LoginBody = rq.json()?;
    reject(
        too_long("email", &body.email, EMAIL_CHARS)
            .into_iter()
            .collect(),
    )?;
    state
        .login_throttle
        .attempt(&body.email, rq.ctx.peer.ip())
        .map_err(rate_limited)?;
    let email = body.email.clone();
    let user = state
        .store
        .read(move |tx| identity::user_by_email(tx, &email).map_err(ApiError::from))
        .await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = body.password;
    let verified = with_hashing_slot(move || match hash {
        Some(h) => password::verify_password(&password, &h),
        None => {
            password::dummy_verify(&password);
            false
        }
    })
    .await?;
    match user {
        Some(user) if verified => Ok(ok(&session_answer(state, &user).await?)),
        _ => Err(ApiError::Unauthorized {
            detail: "Invalid email or password".into(),
            challenge: None,
        }),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = auth::RegisterBody)]
pub(crate) struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
}

/// `POST /api/v1/auth/register` (only with `auth.local_registration = true`): creates the
/// user with a personal workspace (D15) and answers with a session.
pub async fn register(state: &AppState, rq: Req) -> ApiResult {
    local_mode_only(state)?;
    if !state.config.auth.local_registration {
        return Err(ApiError::Forbidden("Registration is disabled".into()));
    }
    let body: RegisterBody = rq.json()?;
    reject(fields_too_long(&[
        ("email", Some(&body.email), EMAIL_CHARS),
        (
            "display_name",
            body.display_name.as_deref(),
            DISPLAY_NAME_CHARS,
        ),
    ]))?;
    let email = body.email.trim().to_owned();
    if !looks_like_email(&email) {
        return Err(crate::http::request::invalid_param(
            "body",
            "email",
            "value_error",
            "Value error, not a valid email address",
            &email,
        ));
    }
    let password_hash = hash_password(body.password).await?;
    let user = UserRow {
        id: Uuid::now_v7(),
        external_id: String::new(),
        email,
        display_name: body.display_name.filter(|d| !d.trim().is_empty()),
        password_hash: Some(password_hash),
        created_at: clock::now_micros(),
    };
    let user = UserRow {
        external_id: format!("local:{}", user.id),
        ..user
    };
    let created_user = user.clone();
    state
        .store
        .write(move |tx| {
            if identity::user_by_email(tx, &created_user.email)?.is_some() {
                return Err(ApiError::Conflict("Email already registered".into()));
            }
            provisioning::create_user_with_workspace(tx, &created_user)
        })
        .await?;
    let mut answer = session_answer(state, &user).await?;
    answer["user"] = json!({
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
    });
    Ok(created(&answer))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = auth::ChangePasswordBody)]
pub(crate) struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/change-password` (local mode, a local session or internal token):
/// re-checks the current password (401, throttled like login), stores the new hash,
/// and ends every earlier session of the user; the answer is a fresh session, as login's.
pub async fn change_password(state: &AppState, rq: Req) -> ApiResult {
    local_mode_only(state)?;
    let user = rq.caller.user()?.clone();
    let body: ChangePasswordBody = rq.json()?;
    if let Err(e) = password::validate_password(&body.new_password) {
        return Err(crate::http::request::invalid_param(
            "body",
            "new_password",
            "value_error",
            &format!("Value error, {e}"),
            "",
        ));
    }
    state
        .login_throttle
        .attempt(&user.email, rq.ctx.peer.ip())
        .map_err(rate_limited)?;
    let hash = user.password_hash.clone();
    let current = body.current_password;
    let verified = with_hashing_slot(move || match hash {
        Some(h) => password::verify_password(&current, &h),
        None => {
            password::dummy_verify(&current);
            false
        }
    })
    .await?;
    if !verified {
        return Err(ApiError::Unauthorized {
            detail: "Current password is incorrect".into(),
            challenge: None,
        });
    }
    let new_hash = hash_password(body.new_password).await?;
    // Sessions count from the next whole second: every token issued up to now is older.
    let valid_from = clock::now_micros() / 1_000_000 + 1;
    let id = user.id;
    let user = state
        .store
        .write(move |tx| -> Result<UserRow, ApiError> {
            let old =
                identity::user(tx, id)?.ok_or_else(|| unauthorized("User not found".into()))?;
            Ok(identity::set_password_hash(tx, &old, new_hash, valid_from)?)
        })
        .await?;
    Ok(ok(&session_answer(state, &user).await?))
}

/// Argon2id runs at once. Each holds 19 MiB and a core for tens of milliseconds, and
/// logins need no credential: unbounded, a burst of them (the per-IP limit admits 100
/// at once) held gigabytes. More runs than cores would not finish sooner anyway.
const HASHING_SLOTS: usize = 2;
static HASHING: Semaphore = Semaphore::const_new(HASHING_SLOTS);

/// Runs password hashing off the runtime, at most [`HASHING_SLOTS`] at a time.
async fn with_hashing_slot<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _slot = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Hashes off the runtime; a too-short or too-long password is a 422 on `password`.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    with_hashing_slot(move || password::hash_password(&password))
        .await?
        .map_err(|e| match e {
            password::PasswordError::Hash(msg) => ApiError::Internal(msg),
            other => crate::http::request::invalid_param(
                "body",
                "password",
                "value_error",
                &format!("Value error, {other}"),
                "",
            ),
        })
}

/// A light check: one `@` with text on both sides and a dot in the domain.
pub fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}
