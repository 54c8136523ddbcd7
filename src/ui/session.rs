//! The UI's cookie session, CSRF tokens and Origin check (ui.md §3.4, D34).
//!
//! The cookie `sd_session` holds the local session token that `POST /api/v1/auth/login`
//! hands out (HttpOnly, SameSite=Lax, Secure under TLS). Every POST carries a hidden
//! `csrf` field — an HMAC of the session token's digest under a per-process key — and
//! must come from this origin (`Origin`, or `Sec-Fetch-Site: same-origin`).

use http::header::{HeaderValue, COOKIE, SET_COOKIE};
use http::HeaderMap;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::response::{UiError, UiReq};
use crate::auth::{api_key, b64};
use crate::http::request::Query;
use crate::http::response::HttpResponse;
use crate::http::AppState;
use crate::store::identity::UserRow;

pub const COOKIE_NAME: &str = "sd_session";
/// Set at sign-in: the first signed-in page after it offers the pending invites once
/// (ui.md P11) and clears it. The value says nothing; the count is read for the page.
pub const INVITES_NOTICE_COOKIE: &str = "sd_invites_notice";

/// Per-process UI state: the CSRF key, the key that signs OIDC sign-in cookies, the
/// sign-ins already completed, the embedded static files, and the builds' task counts
/// (stamped with their change counters).
pub struct UiState {
    csrf_key: hmac::Key,
    login_key: hmac::Key,
    pub(super) used_logins: super::pages::oidc_login::UsedLogins,
    pub assets: super::assets::Assets,
    pub(super) counts: std::sync::Arc<super::counts_cache::CountsCache>,
}

impl UiState {
    pub fn new() -> UiState {
        // The system RNG does not fail on Linux; a zero key would still bind tokens to
        // sessions, so there is no reason to refuse to start.
        let key = || {
            let mut secret = [0u8; 32];
            let _ = SystemRandom::new().fill(&mut secret);
            hmac::Key::new(hmac::HMAC_SHA256, &secret)
        };
        UiState {
            csrf_key: key(),
            login_key: key(),
            used_logins: Default::default(),
            assets: super::assets::Assets::new(),
            counts: Default::default(),
        }
    }
}

/// `payload` with an HMAC under the per-process login key: `<b64 payload>.<b64 tag>`.
pub fn seal(state: &AppState, payload: &[u8]) -> String {
    let tag = hmac::sign(&state.ui.login_key, payload);
    format!("{}.{}", b64::encode(payload), b64::encode(tag.as_ref()))
}

/// The payload of a [`seal`]ed value, if its tag is right (constant-time check).
pub fn open(state: &AppState, sealed: &str) -> Option<Vec<u8>> {
    let (payload, tag) = sealed.split_once('.')?;
    let (payload, tag) = (b64::decode_strict(payload)?, b64::decode_strict(tag)?);
    hmac::verify(&state.ui.login_key, &payload, &tag).ok()?;
    Some(payload)
}

impl Default for UiState {
    fn default() -> Self {
        UiState::new()
    }
}

/// A signed-in user of the UI.
pub struct Session {
    pub user: UserRow,
    token: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Open invites to the user's email, for the header's "Invites (n)" (read for
    /// pages only, see [`load_invites`]; 0 for polls and files).
    pub pending_invites: usize,
    /// This request carries the sign-in notice cookie.
    pub invites_notice: bool,
}

impl Session {
    /// The form token of this session (hidden `csrf` field of every POST form).
    pub fn csrf(&self, state: &AppState) -> String {
        csrf_for(state, &self.token)
    }
}

fn csrf_for(state: &AppState, token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let tag = hmac::sign(&state.ui.csrf_key, digest.as_ref());
    b64::encode(tag.as_ref())
}

/// The session cookie's value, if the request has one.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE_NAME)
}

/// A non-empty cookie of the request.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The signed-in user, or `None` (no cookie, bad or expired token, deleted user).
pub async fn current(state: &AppState, rq: &UiReq) -> Result<Option<Session>, UiError> {
    let Some(token) = cookie_token(&rq.parts.headers) else {
        return Ok(None);
    };
    match crate::api::auth::session_user(state, token).await {
        Ok((user, expires_at)) => Ok(Some(Session {
            user,
            token: token.to_owned(),
            expires_at,
            pending_invites: 0,
            invites_notice: false,
        })),
        Err(crate::http::response::ApiError::Unauthorized { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The signed-in user, or the login redirect (with `expired` when a cookie was sent).
pub async fn require(state: &AppState, rq: &UiReq) -> Result<Session, UiError> {
    match current(state, rq).await? {
        Some(s) => Ok(s),
        None => Err(UiError::SignIn {
            next: rq.path_and_query(),
            expired: cookie_token(&rq.parts.headers).is_some(),
        }),
    }
}

/// The origin this request was addressed to, as a browser writes it in `Origin`.
fn own_origin(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let scheme = if state.tls { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// Where this server is reached by browsers: `ui.public_url`, else the request's scheme
/// and Host (the OIDC redirect URI is built on it).
pub fn public_base(state: &AppState, headers: &HeaderMap) -> Option<String> {
    match state.config.ui.public_url.as_deref() {
        Some(url) => Some(url.trim_end_matches('/').to_owned()),
        None => own_origin(state, headers),
    }
}

/// POSTs must come from a page of this server: `Origin` equal to the request's own
/// origin (or `ui.public_url`'s), else `Sec-Fetch-Site: same-origin`.
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), UiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = header("origin") {
        let public = state
            .config
            .ui
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/'));
        let own = own_origin(state, headers);
        if own.as_deref() == Some(origin) || public == Some(origin) {
            return Ok(());
        }
        return Err(UiError::Csrf);
    }
    match header("sec-fetch-site") {
        Some("same-origin") => Ok(()),
        _ => Err(UiError::Csrf),
    }
}

/// The form's `csrf` field must be this session's token (constant-time compare).
pub fn check_csrf(state: &AppState, who: &Session, form: &Query) -> Result<(), UiError> {
    let sent = form.get("csrf").unwrap_or("");
    let want = who.csrf(state);
    // Fixed-length digests compared without an early exit (as API keys are).
    let (sent, want) = (api_key::hash(sent), api_key::hash(&want));
    if api_key::digests_equal(&sent, &want) {
        Ok(())
    } else {
        Err(UiError::Csrf)
    }
}

/// What a page's header needs besides the user: the number of open invites to their
/// email (the read `GET /ui/me/invites` makes) and whether the sign-in notice is due.
pub async fn load_invites(state: &AppState, rq: &UiReq, who: &mut Session) -> Result<(), UiError> {
    let email = who.user.email.clone();
    let now = crate::clock::now_micros();
    who.pending_invites = state
        .store
        .read(move |tx| crate::api::me::open_invites_for(tx, &email, now).map(|v| v.len()))
        .await?;
    who.invites_notice = cookie(&rq.parts.headers, INVITES_NOTICE_COOKIE).is_some();
    Ok(())
}

/// The cookies of a fresh sign-in: the session, and the one-time invites notice.
pub fn signed_in(state: &AppState, resp: &mut HttpResponse, token: &str) {
    set_cookie(state, resp, token);
    put_cookie(state, resp, INVITES_NOTICE_COOKIE, "1", "/", 600);
}

/// Adds the session cookie to a response.
pub fn set_cookie(state: &AppState, resp: &mut HttpResponse, token: &str) {
    let ttl = state.config.auth.session_ttl_seconds;
    put_cookie(state, resp, COOKIE_NAME, token, "/", ttl);
}

/// Removes the session cookie.
pub fn clear_cookie(state: &AppState, resp: &mut HttpResponse) {
    put_cookie(state, resp, COOKIE_NAME, "", "/", 0);
}

/// `Set-Cookie` with the UI's flags: HttpOnly, SameSite=Lax, Secure under TLS.
pub fn put_cookie(
    state: &AppState,
    resp: &mut HttpResponse,
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
) {
    let secure = if state.tls { "; Secure" } else { "" };
    let value =
        format!("{name}={value}; HttpOnly; SameSite=Lax; Path={path}; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}
