//! P12 — `/account`: who I am, my workspaces and roles, the session's expiry, and how
//! to change a password until the UI has a form for it.

use http::StatusCode;
use maud::html;

use crate::http::response::HttpResponse;
use crate::http::AppState;
use crate::ui::layout::{self, seg, Nav};
use crate::ui::response::{html as html_page, UiError, UiReq};
use crate::ui::scope;
use crate::ui::session::Session;

pub async fn page(state: &AppState, _rq: &UiReq, who: &Session) -> Result<HttpResponse, UiError> {
    let user = who.user.id;
    let mine = state
        .store
        .read(move |tx| scope::my_workspaces(tx, user))
        .await?;
    let body = html! {
        h1 { "Account" }
        section.card {
            dl.facts {
                dt { "Email" } dd { (who.user.email) }
                dt { "Display name" } dd { (who.user.display_name.as_deref().unwrap_or("—")) }
                dt { "External id" } dd { code { (who.user.external_id) } }
                dt { "Session expires" } dd { (layout::time(who.expires_at * 1_000_000)) }
            }
        }
        section.card {
            h2 { "My workspaces" }
            table.list {
                thead { tr { th { "Workspace" } th { "Role" } th { "Environments" } } }
                tbody {
                    @for w in &mine {
                        tr {
                            td { (w.ws.name) @if w.ws.is_personal { " " span.tag { "personal" } } }
                            td { (w.role.as_str()) }
                            td {
                                @for e in &w.envs {
                                    a href=(format!("/ws/{}/env/{}/builds", seg(&w.ws.slug), seg(&e.slug))) { (e.name) } " "
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Password" }
            @if state.config.auth.mode == crate::config::AuthMode::Oidc {
                p { "You sign in through the identity provider; your password is managed there." }
            } @else {
                p { "Changing a password from the web UI is not available yet. An operator can set one with " code { "stardag-server admin user set-password" } "." }
            }
        }
    };
    Ok(html_page(
        StatusCode::OK,
        layout::page(state, who, None, Nav::Account, "Account", body),
    ))
}
