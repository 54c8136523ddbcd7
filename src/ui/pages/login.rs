//! P1 — `/login`: the local sign-in form; `POST /login` runs the API's login handler
//! (argon2, throttling, the same 401/429 texts) and sets the session cookie. In
//! `auth.mode = "oidc"` the page offers "Sign in with <provider>" instead
//! (`oidc_login.rs`) and `POST /login` is refused.

use http::StatusCode;
use maud::{html, Markup};
use serde_json::json;

use crate::auth::Caller;
use crate::config::AuthMode;
use crate::http::request::Query;
use crate::http::response::{ApiError, HttpResponse};
use crate::http::router::Endpoint;
use crate::http::AppState;
use crate::ui::api_call::call;
use crate::ui::layout;
use crate::ui::response::{html as html_page, redirect, UiError, UiReq};
use crate::ui::session;

/// Only a same-origin path may follow sign-in (`/x`, never `//host` or a URL).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub fn form(state: &AppState, rq: &UiReq) -> Result<HttpResponse, UiError> {
    let next = safe_next(rq.query.get("next"));
    let expired = rq.query.get("expired") == Some("1");
    let note = expired.then_some("Your session expired; sign in again.");
    if state.config.auth.mode == AuthMode::Oidc {
        return Ok(render_oidc_page(state, StatusCode::OK, &next, None, note));
    }
    Ok(render(state, StatusCode::OK, &next, "", None, note))
}

/// The login page of an OIDC install: one link to the provider (a link, not a form:
/// CSP `form-action 'self'` would block a form's redirect to another origin).
pub fn render_oidc(
    state: &AppState,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
) -> HttpResponse {
    render_oidc_page(state, status, next, error, None)
}

fn render_oidc_page(
    state: &AppState,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
    note: Option<&str>,
) -> HttpResponse {
    let provider = state
        .oidc
        .as_ref()
        .map(|o| o.login.provider_name.as_str())
        .unwrap_or("the identity provider");
    let start = format!("/login/oidc?next={}", layout::url_encode(next));
    let body: Markup = html! {
        section.card.login {
            h1 { "Sign in" }
            @if let Some(n) = note { (layout::notice("info", html! { (n) })) }
            @if let Some(e) = error { (layout::notice("error", html! { (e) })) }
            p { "This server signs users in with its identity provider." }
            a.button.primary #oidc-sign-in href=(start) { "Sign in with " (provider) }
        }
    };
    html_page(status, layout::bare(state, "Sign in", body))
}

fn render(
    state: &AppState,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<&str>,
    note: Option<&str>,
) -> HttpResponse {
    let first_start = state.config.data_dir.join("initial-credentials").exists();
    let body: Markup = html! {
        section.card.login {
            h1 { "Sign in" }
            @if let Some(n) = note { (layout::notice("info", html! { (n) })) }
            @if let Some(e) = error { (layout::notice("error", html! { (e) })) }
            form method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label for="email" { "Email" }
                input #email type="email" name="email" autocomplete="username" required value=(email) autofocus[email.is_empty()];
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required autofocus[!email.is_empty()];
                button.primary type="submit" { "Sign in" }
            }
            @if first_start {
                p.hint { "First start: the admin email and password are in " code { "initial-credentials" } " in the server's data directory (or were printed on its terminal)." }
            }
        }
    };
    html_page(status, layout::bare(state, "Sign in", body))
}

pub async fn submit(state: &AppState, rq: &UiReq, form: Query) -> Result<HttpResponse, UiError> {
    let next = safe_next(form.get("next"));
    if state.config.auth.mode == AuthMode::Oidc {
        let text = "This server signs in through its identity provider; it accepts no \
                    passwords. Use the button below.";
        return Ok(render_oidc(
            state,
            StatusCode::BAD_REQUEST,
            &next,
            Some(text),
        ));
    }
    let email = form.get("email").unwrap_or("").to_owned();
    let password = form.get("password").unwrap_or("").to_owned();
    let answer = call(
        state,
        rq,
        Caller::Anonymous,
        Endpoint::Login,
        "",
        Some(json!({"email": email, "password": password})),
    )
    .await;
    match answer {
        Ok(v) => {
            let token = v["session_token"].as_str().unwrap_or_default();
            let mut resp = redirect(&next);
            session::signed_in(state, &mut resp, token);
            Ok(resp)
        }
        Err(
            e @ (ApiError::Unauthorized { .. }
            | ApiError::Structured { .. }
            | ApiError::Validation(_)),
        ) => {
            let status = e.status();
            let text = layout::detail_text(&e.detail());
            let mut resp = render(state, status, &next, &email, Some(&text), None);
            if let Some(v) = e.into_response().headers().get(http::header::RETRY_AFTER) {
                resp.headers_mut()
                    .insert(http::header::RETRY_AFTER, v.clone());
            }
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /logout`: clears the cookie (sessions are stateless tokens; see docs/ui.md).
pub fn logout(state: &AppState) -> HttpResponse {
    let mut resp = redirect("/login");
    session::clear_cookie(state, &mut resp);
    resp
}
