//! The web UI (D34, ui.md): server-rendered HTML pages from this binary.
//!
//! Pages are `maud` templates (escaping by default) filled from the same store reads the
//! API handlers use; actions run the API's own handlers through [`api_call`] with the
//! `Caller` built from the cookie session, so checks, errors and writes are the API's.
//! A little hand-written JS (`static/app.js`) adds live updates and copy buttons; every
//! page reads and every form submits without it. Decisions: docs/ui.md.

mod api_call;
mod assets;
mod counts_cache;
pub mod dag_layout;
mod dag_svg;
mod layout;
mod listing;
pub mod markdown;
mod pages;
mod reads;
mod response;
mod scope;
mod session;

use http::Request;
use hyper::body::Incoming;

use crate::http::response::ApiResult;
use crate::http::router::Ui;
use crate::http::{AppState, RequestCtx};

pub use session::UiState;

/// Serves one UI route. Errors become HTML pages (JSON for the polling endpoints);
/// a missing session sends pages to the login form.
pub async fn dispatch(
    state: &AppState,
    route: Ui,
    req: Request<Incoming>,
    ctx: &RequestCtx,
) -> ApiResult {
    let (parts, body) = req.into_parts();
    // The polling endpoints answer JSON errors; pages answer HTML ones.
    let polls_builds = matches!(route, Ui::Builds { .. })
        && crate::http::request::Query::parse(parts.uri.query()).get("state") == Some("1");
    let json_route =
        polls_builds || matches!(route, Ui::BuildState { .. } | Ui::SearchSuggest { .. });
    // Pages get the header's invite count; polls and the bare graph do not need it.
    let page = !json_route && !matches!(route, Ui::BuildGraphSvg { .. });
    let rq = response::UiReq::new(state, parts, ctx);
    let answer = serve(state, route, rq, body, page).await;
    match answer {
        Ok(resp) => Ok(resp),
        Err(e) if json_route => Err(e.into_api()),
        Err(e) => Ok(response::error_page(state, e)),
    }
}

async fn serve(
    state: &AppState,
    route: Ui,
    rq: response::UiReq,
    body: Incoming,
    page: bool,
) -> Result<crate::http::response::HttpResponse, response::UiError> {
    use pages::*;
    match route {
        Ui::Static { name } => Ok(assets::serve(&state.ui.assets, &name)?),
        Ui::LoginForm => {
            state.limits.check_ip(rq.ctx.client_ip)?;
            login::form(state, &rq)
        }
        Ui::Login => {
            state.limits.check_ip(rq.ctx.client_ip)?;
            session::check_origin(state, &rq.parts.headers)?;
            let form = rq.form(state, body).await?;
            login::submit(state, &rq, form).await
        }
        Ui::LoginOidc => {
            state.limits.check_ip(rq.ctx.client_ip)?;
            oidc_login::start(state, &rq).await
        }
        Ui::LoginCallback => {
            state.limits.check_ip(rq.ctx.client_ip)?;
            oidc_login::callback(state, &rq).await
        }
        Ui::Home => home::redirect_home(state, &rq).await,
        route => {
            let mut who = session::require(state, &rq).await?;
            state.limits.check_credential(who.user.id)?;
            if page {
                session::load_invites(state, &rq, &mut who).await?;
            }
            let notice = who.invites_notice;
            let mut resp = signed_in(state, route, rq, who, body).await?;
            // The sign-in notice was on this page (every signed-in HTML page shows it
            // while invites are open): it is not offered again.
            let html = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("text/html"));
            if notice && html && !resp.status().is_redirection() {
                let name = session::INVITES_NOTICE_COOKIE;
                session::put_cookie(state, &mut resp, name, "", "/", 0);
            }
            Ok(resp)
        }
    }
}

/// Routes that need a session; POSTs also pass the CSRF and Origin checks first.
async fn signed_in(
    state: &AppState,
    route: Ui,
    rq: response::UiReq,
    who: session::Session,
    body: Incoming,
) -> Result<crate::http::response::HttpResponse, response::UiError> {
    use pages::*;
    let form = if rq.parts.method == http::Method::POST {
        session::check_origin(state, &rq.parts.headers)?;
        let form = rq.form(state, body).await?;
        session::check_csrf(state, &who, &form)?;
        form
    } else {
        crate::http::request::Query::parse(None)
    };
    match route {
        Ui::Logout => Ok(login::logout(state)),
        Ui::Account => account::page(state, &rq, &who, http::StatusCode::OK, None).await,
        Ui::Connect { ws, env } => connect::page(state, &rq, &who, &ws, &env, None).await,
        Ui::ConnectCreateKey { ws, env } => {
            connect::create_key(state, &rq, &who, &ws, &env, form).await
        }
        Ui::Builds { ws, env } => builds::page(state, &rq, &who, &ws, &env).await,
        Ui::Build { ws, env, build } => build::page(state, &rq, &who, &ws, &env, &build).await,
        Ui::BuildState { ws, env, build } => {
            build::state(state, &rq, &who, &ws, &env, &build).await
        }
        Ui::BuildGraphSvg { ws, env, build } => {
            build::graph_svg(state, &rq, &who, &ws, &env, &build).await
        }
        Ui::BuildOverride { ws, env, build } => {
            build::override_status(state, &rq, &who, &ws, &env, &build, form).await
        }
        Ui::Task { ws, env, task } => task::page(state, &rq, &who, &ws, &env, &task).await,
        Ui::TaskExplorer { ws, env } => explorer::page(state, &rq, &who, &ws, &env).await,
        Ui::Locks { ws, env } => locks::page(state, &rq, &who, &ws, &env).await,
        Ui::SearchSuggest { ws, env, values } => {
            explorer::suggest(state, &rq, &who, &ws, &env, values).await
        }
        Ui::ApiKeys { ws } => settings::api_keys(state, &rq, &who, &ws, None).await,
        Ui::CreateApiKey { ws } => settings::create_api_key(state, &rq, &who, &ws, form).await,
        Ui::RevokeApiKey { ws, key } => {
            settings::revoke_api_key(state, &rq, &who, &ws, &key, form).await
        }
        Ui::Settings { ws, page } => settings::show(state, &rq, &who, &ws, page).await,
        Ui::SettingsPost { ws, action } => {
            settings::post(state, &rq, &who, &ws, action, form).await
        }
        Ui::NewWorkspace => {
            workspace::new_form(state, &who, &rq.query, http::StatusCode::OK, None).await
        }
        Ui::CreateWorkspace => workspace::create(state, &rq, &who, form).await,
        Ui::MyInvites => members::my_invites(state, &rq, &who, http::StatusCode::OK, None).await,
        Ui::AnswerInvite { invite, accept } => {
            members::answer_invite(state, &rq, &who, &invite, accept).await
        }
        Ui::ChangePassword => account::change_password(state, &rq, &who, form).await,
        Ui::NotFound => Err(response::UiError::NotFound),
        Ui::Static { .. }
        | Ui::LoginForm
        | Ui::Login
        | Ui::LoginOidc
        | Ui::LoginCallback
        | Ui::Home => Err(response::UiError::NotFound),
    }
}
