//! P1 in `auth.mode = "oidc"` (ui.md §3.4, §10.1): signing in to the web UI through the
//! identity provider with the authorization code flow, PKCE (`S256`), `state` and
//! `nonce`.
//!
//! `GET /login/oidc` puts the attempt's secrets in a short-lived signed HttpOnly cookie
//! (`sd_oidc_login`, path `/login/callback`) and sends the browser to the provider.
//! `GET /login/callback` checks `state` against that cookie, clears it, exchanges the
//! code with the verifier, verifies the ID token (audience = `oidc.ui_client_id`, nonce),
//! provisions the user as `/ui/me` does (D15) and sets the same local session cookie as
//! the password form. Any failure is the login page with a message, never a 500.

use std::collections::HashMap;
use std::sync::Mutex;

use http::StatusCode;

use super::login::{render_oidc, safe_next};
use crate::api::provisioning::user_for_oidc;
use crate::auth::api_key;
use crate::auth::oidc::OidcVerifier;
use crate::auth::oidc_login::{LoginError, LoginStart};
use crate::clock;
use crate::http::response::{ApiError, HttpResponse};
use crate::http::AppState;
use crate::ui::response::{redirect, UiError, UiReq};
use crate::ui::session;

const LOGIN_COOKIE: &str = "sd_oidc_login";
const CALLBACK_PATH: &str = "/login/callback";
/// How long a sign-in at the provider may take.
const ATTEMPT_SECS: i64 = 600;
/// Completed attempts remembered until their cookie expires (replays of a callback with
/// a copied cookie); far above any real sign-in rate, which the per-IP limit bounds.
const MAX_REMEMBERED: usize = 100_000;

/// The `state` of every attempt completed in this process, until it expires: a callback
/// is single-use even if its cookie was copied before the browser cleared it.
#[derive(Default)]
pub struct UsedLogins(Mutex<HashMap<String, i64>>);

impl UsedLogins {
    /// `true` the first time an attempt completes; `false` for a replay (or, if the
    /// table is full of live attempts, for everyone until some expire).
    fn first_use(&self, attempt: &LoginStart, now: i64) -> bool {
        let mut used = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if used.len() >= MAX_REMEMBERED {
            used.retain(|_, exp| *exp > now);
            if used.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        used.insert(attempt.state.clone(), attempt.exp).is_none()
    }
}

fn now() -> i64 {
    clock::now_micros() / 1_000_000
}

/// Constant-time equality of two secrets of any length.
fn same(a: &str, b: &str) -> bool {
    api_key::digests_equal(&api_key::hash(a), &api_key::hash(b))
}

fn verifier(state: &AppState) -> Result<&OidcVerifier, UiError> {
    state.oidc.as_ref().ok_or(UiError::NotFound)
}

/// `GET /login/oidc?next=`: the redirect to the provider's authorization endpoint.
pub async fn start(state: &AppState, rq: &UiReq) -> Result<HttpResponse, UiError> {
    let oidc = verifier(state)?;
    let next = safe_next(rq.query.get("next"));
    let Some(base) = session::public_base(state, &rq.parts.headers) else {
        return Err(ApiError::BadRequest("Missing Host header".into()).into());
    };
    let endpoints = match oidc.login.endpoints().await {
        Ok(e) => e,
        Err(e) => {
            let text = e.to_string();
            return Ok(render_oidc(
                state,
                StatusCode::BAD_GATEWAY,
                &next,
                Some(&text),
            ));
        }
    };
    let attempt = LoginStart::new(format!("{base}{CALLBACK_PATH}"), next, now() + ATTEMPT_SECS);
    let payload = serde_json::to_vec(&attempt).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut resp = redirect(&oidc.login.authorization_url(&endpoints, &attempt));
    let sealed = session::seal(state, &payload);
    session::put_cookie(
        state,
        &mut resp,
        LOGIN_COOKIE,
        &sealed,
        CALLBACK_PATH,
        ATTEMPT_SECS as u64,
    );
    Ok(resp)
}

/// Why a callback did not sign in: the login page's status and message.
struct Refusal {
    status: StatusCode,
    text: String,
    next: String,
}

fn refuse(status: StatusCode, text: impl Into<String>, next: &str) -> Refusal {
    Refusal {
        status,
        text: text.into(),
        next: next.to_owned(),
    }
}

/// `GET /login/callback?code=&state=` (or `?error=`): finishes the attempt in the
/// cookie, which is cleared whatever the outcome.
pub async fn callback(state: &AppState, rq: &UiReq) -> Result<HttpResponse, UiError> {
    let oidc = verifier(state)?;
    let attempt = session::cookie(&rq.parts.headers, LOGIN_COOKIE)
        .and_then(|c| session::open(state, c))
        .and_then(|p| serde_json::from_slice::<LoginStart>(&p).ok())
        .filter(|a| a.exp > now());
    let mut resp = match finish(state, oidc, rq, attempt).await? {
        Ok((token, next)) => {
            let mut resp = redirect(&next);
            session::signed_in(state, &mut resp, &token);
            resp
        }
        Err(r) => render_oidc(state, r.status, &r.next, Some(&r.text)),
    };
    session::put_cookie(state, &mut resp, LOGIN_COOKIE, "", CALLBACK_PATH, 0);
    Ok(resp)
}

/// The session token and where to go, or why not. The outer error is for failures of
/// this server (store, keys), which are not the user's to fix.
async fn finish(
    state: &AppState,
    oidc: &OidcVerifier,
    rq: &UiReq,
    attempt: Option<LoginStart>,
) -> Result<Result<(String, String), Refusal>, UiError> {
    let q = &rq.query;
    let Some(attempt) = attempt else {
        return Ok(Err(refuse(
            StatusCode::BAD_REQUEST,
            "This sign-in expired or was already used. Start again.",
            "/",
        )));
    };
    let next = attempt.next.clone();
    let bad = |text: &str| Ok(Err(refuse(StatusCode::BAD_REQUEST, text, &next)));
    if !same(q.get("state").unwrap_or(""), &attempt.state) {
        return bad(
            "This answer from the identity provider does not belong to the sign-in \
             started in this browser (state mismatch). Start again.",
        );
    }
    // Only now is the provider's own message shown: an `error` on a forged link could
    // otherwise put any text on this page.
    if let Some(error) = q.get("error") {
        let text = match q.get("error_description").filter(|d| !d.is_empty()) {
            Some(d) => format!("The identity provider refused the sign-in: {error}: {d}"),
            None => format!("The identity provider refused the sign-in: {error}"),
        };
        return bad(&text);
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        return bad("The identity provider's answer has no code. Start again.");
    };
    if !state.ui.used_logins.first_use(&attempt, now()) {
        return bad("This sign-in expired or was already used. Start again.");
    }
    let claims = match exchange(oidc, code, &attempt).await {
        Ok(c) => c,
        Err(e) => {
            let status = match e {
                LoginError::IdToken(_) => StatusCode::UNAUTHORIZED,
                LoginError::Discovery(_) | LoginError::Exchange(_) => StatusCode::BAD_GATEWAY,
            };
            return Ok(Err(refuse(status, e.to_string(), &next)));
        }
    };
    let user = match user_for_oidc(state, claims).await {
        Ok(u) => u,
        Err(e @ (ApiError::BadRequest(_) | ApiError::Structured { .. })) => {
            let text = crate::ui::layout::detail_text(&e.detail());
            return Ok(Err(refuse(e.status(), text, &next)));
        }
        Err(e) => return Err(e.into()),
    };
    let token = state
        .keys()
        .mint_session(user.id, state.config.auth.session_ttl_seconds)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Ok((token, next)))
}

async fn exchange(
    oidc: &OidcVerifier,
    code: &str,
    attempt: &LoginStart,
) -> Result<crate::auth::OidcClaims, LoginError> {
    let endpoints = oidc.login.endpoints().await?;
    let id_token = oidc.login.exchange_code(&endpoints, code, attempt).await?;
    oidc.verify_id_token(&id_token, &attempt.nonce).await
}
