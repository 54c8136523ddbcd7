//! P2 — `/`: signed out → the login form; signed in → the personal workspace's first
//! environment: its Connect page while it has no build yet (the first page after a
//! fresh install), else its builds.

use crate::http::response::HttpResponse;
use crate::http::AppState;
use crate::ui::layout::seg;
use crate::ui::response::{redirect, UiError, UiReq};
use crate::ui::{scope, session};

pub async fn redirect_home(state: &AppState, rq: &UiReq) -> Result<HttpResponse, UiError> {
    let Some(who) = session::current(state, rq).await? else {
        return Ok(redirect("/login"));
    };
    let user = who.user.id;
    let target = state
        .store
        .read(move |tx| -> Result<Option<String>, UiError> {
            let mine = scope::my_workspaces(tx, user)?;
            let pick = mine
                .iter()
                .find(|w| w.ws.is_personal && !w.envs.is_empty())
                .or_else(|| mine.iter().find(|w| !w.envs.is_empty()));
            let Some(w) = pick else { return Ok(None) };
            let env = &w.envs[0];
            let base = format!("/ws/{}/env/{}", seg(&w.ws.slug), seg(&env.slug));
            let v1 = crate::store::tasks::list_builds(tx, env.id, 0, 1)?.1;
            let s = crate::store::v2::schema::Snapshot::new(tx);
            let v2 =
                crate::store::v2::reads::list_builds(&s, env.id.as_u128(), None, None, 1, None)?.1;
            Ok(Some(if v1 + v2 == 0 {
                format!("{base}/connect")
            } else {
                format!("{base}/builds")
            }))
        })
        .await?;
    Ok(redirect(target.as_deref().unwrap_or("/account")))
}
