//! P8 — `/ws/{ws}/env/{env}/locks`: the environment's live locks (the global lock
//! manager of the SDK), read-only, with the environment's limit. Reads
//! `store::locks::list`, as `GET /api/v1/locks` does.

use http::StatusCode;
use maud::html;

use crate::clock::now_micros;
use crate::http::response::HttpResponse;
use crate::http::AppState;
use crate::store::locks;
use crate::ui::layout::{self, Nav};
use crate::ui::response::{html as html_page, UiError, UiReq};
use crate::ui::scope;
use crate::ui::session::Session;

pub async fn page(
    state: &AppState,
    _rq: &UiReq,
    who: &Session,
    ws: &str,
    env: &str,
) -> Result<HttpResponse, UiError> {
    let scope = scope::resolve(state, who, ws, Some(env)).await?;
    let env_row = scope.env()?.clone();
    let env_id = env_row.id;
    let now = now_micros();
    let rows = state
        .store
        .read(move |tx| locks::list(tx, env_id, now, false).map_err(UiError::from))
        .await?;
    let limit = match env_row.max_concurrent_locks {
        Some(n) => format!("at most {n} at once"),
        None => "no limit".to_owned(),
    };
    let body = html! {
        div.page-head {
            h1 { "Locks" }
            p.muted data-locks-count=(rows.len()) {
                (rows.len()) " lock" @if rows.len() != 1 { "s" } " held in " (env_row.name)
                " · limit: " (limit)
            }
        }
        // The script counts each lock's time left down every second and re-reads this
        // page's list periodically; without it the server's "in N s" stays as rendered.
        div #locks-live data-refresh-url=(format!("{}/locks", scope.base())) data-now=(now / 1000) {
        @if rows.is_empty() {
            section.card.empty {
                h2 { "No locks held" }
                p { "Locks appear when builds use the global lock manager." }
            }
        } @else {
            table.list.locks {
                thead { tr {
                    th { "Name" } th { "Owner" } th { "Acquired" } th { "Expires" } th { "Version" }
                } }
                tbody {
                    @for l in &rows {
                        tr data-lock=(l.name) {
                            td { code { (l.name) } }
                            td { code title=(l.row.owner) { (layout::short(&l.row.owner.to_string())) } }
                            td { (layout::time(l.row.acquired_at)) }
                            td {
                                (layout::time(l.row.expires_at))
                                div.small.muted {
                                    span.ttl data-expires-ms=(l.row.expires_at / 1000) data-left-ms=((l.row.expires_at - now).max(0) / 1000) {
                                        "in " (layout::duration(now, l.row.expires_at))
                                    }
                                }
                            }
                            td { (l.row.version) }
                        }
                    }
                }
            }
        }
        }
    };
    Ok(html_page(
        StatusCode::OK,
        layout::page(state, who, Some(&scope), Nav::Locks, "Locks", body),
    ))
}
