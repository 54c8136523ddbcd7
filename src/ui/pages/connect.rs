//! P3 — `/ws/{ws}/env/{env}/connect`: everything needed to point an SDK at this
//! environment — the registry URL, an API key (created here and shown once), export
//! lines for both SDKs filled with the environment's target roots — and a live
//! "waiting for the first build" line.

use http::StatusCode;
use maud::{html, Markup};
use serde_json::json;

use crate::http::request::Query;
use crate::http::response::{ApiError, HttpResponse};
use crate::http::router::Endpoint;
use crate::http::AppState;
use crate::store::identity;
use crate::ui::api_call::call;
use crate::ui::layout::{self, Nav};
use crate::ui::response::{html as html_page, UiError, UiReq};
use crate::ui::scope::{self, Scope};
use crate::ui::session::Session;

/// The registry URL for snippets: `ui.public_url`, else the request's origin.
pub fn registry_url(state: &AppState, rq: &UiReq) -> String {
    if let Some(u) = &state.config.ui.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = rq
        .parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:8000");
    let scheme = if state.tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// The page; `created` is a key just created (shown this once) or the error of trying.
pub async fn page(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    env: &str,
    created: Option<Result<String, String>>,
) -> Result<HttpResponse, UiError> {
    let scope = scope::resolve(state, who, ws, Some(env)).await?;
    let env_id = scope.env()?.id;
    let (roots, builds) = state
        .store
        .read(move |tx| -> Result<_, UiError> {
            let mut roots = identity::target_roots_of(tx, env_id)?;
            roots.sort_by(|a, b| a.name.cmp(&b.name));
            let v1 = crate::store::tasks::list_builds(tx, env_id, 0, 1)?.1;
            let s = crate::store::v2::schema::Snapshot::new(tx);
            let v2 =
                crate::store::v2::reads::list_builds(&s, env_id.as_u128(), None, None, 1, None)?.1;
            Ok((roots, v1 + v2))
        })
        .await?;
    let url = registry_url(state, rq);
    let key = match &created {
        Some(Ok(k)) => k.clone(),
        _ => "sk_…".to_owned(),
    };
    let roots_json = if roots.is_empty() {
        json!({"default": "/tmp/stardag-targets"}).to_string()
    } else {
        let map: serde_json::Map<String, serde_json::Value> = roots
            .iter()
            .map(|r| (r.name.clone(), json!(r.uri_prefix)))
            .collect();
        serde_json::Value::Object(map).to_string()
    };
    let v2_snippet = format!(
        "export STARDAG_API_URL={url}\nexport STARDAG_API_KEY={key}\nexport STARDAG_TARGET_ROOTS='{roots_json}'\n"
    );
    let v1_snippet = format!(
        "export STARDAG_REGISTRY_URL={url}\nexport STARDAG_API_KEY={key}\nexport STARDAG_TARGET_ROOTS='{roots_json}'\nexport COMMIT_HASH=$(git rev-parse --short HEAD 2>/dev/null || echo dev)\n"
    );
    let base = scope.base();
    let body = html! {
        h1 { "Connect the SDK" }
        p.lede { "Point the Stardag SDK at this environment (" strong { (scope.env()?.name) } ") and its builds appear here." }
        section.card {
            h2 { "1. Registry URL" }
            (layout::copy_field("Registry URL", &url))
        }
        section.card {
            h2 { "2. API key" }
            (key_section(state, who, &scope, &created))
        }
        section.card {
            h2 { "3. Environment" }
            @if roots.is_empty() {
                p.hint { "This environment has no target root yet, so the lines below use a local directory." }
            }
            h3 { "stardag 0.28 (current)" }
            pre.snippet { code { (v2_snippet) } }
            h3 { "stardag 0.1" }
            pre.snippet { code { (v1_snippet) } }
            p.hint {
                "stardag 0.1 reads the key only from the environment, and outside a git repository it needs "
                code { "COMMIT_HASH" } ". Without a key and with the default URL it silently uses no registry."
            }
        }
        section.card {
            h2 { "4. Run a build" }
            pre.snippet { code { (EXAMPLE) } }
            p { code { "python my_dag.py" } }
        }
        section.card.live-first-build data-watch-builds=(format!("{base}/builds?state=1")) data-initial=(builds) {
            @if builds == 0 {
                p.waiting { span.spinner aria-hidden="true" {} " Waiting for the first build… " a href=(format!("{base}/builds")) { "check now" } }
            } @else {
                p { "This environment has " (builds) " build(s). " a href=(format!("{base}/builds")) { "Open the builds" } }
            }
            p.arrived hidden { }
        }
    };
    Ok(html_page(
        StatusCode::OK,
        layout::page(
            state,
            who,
            Some(&scope),
            Nav::Connect,
            "Connect the SDK",
            body,
        ),
    ))
}

const EXAMPLE: &str =
    "# my_dag.py — stardag 0.28 (with 0.1 use sd.AutoTask and self.output().save(...))
import stardag as sd

class Add(sd.Task[int]):
    a: int
    b: int

    def run(self):
        self._save(self.a + self.b)

sd.build(Add(a=1, b=2))
";

fn key_section(
    state: &AppState,
    who: &Session,
    scope: &Scope,
    created: &Option<Result<String, String>>,
) -> Markup {
    let action = format!("{}/connect/api-key", scope.base());
    html! {
        @match created {
            Some(Ok(key)) => {
                (layout::notice("ok", html! { "Store this key now: it is never shown again." }))
                div.secret { (layout::copy_field("API key", key)) }
            }
            Some(Err(e)) => { (layout::notice("error", html! { (e) })) }
            None => {}
        }
        @if scope.is_admin() {
            form.inline method="post" action=(action) {
                (layout::csrf_field(state, who))
                label for="key-name" { "Key name" }
                input #key-name type="text" name="name" value="sdk" required maxlength="255";
                button.primary type="submit" { "Create a key for this environment" }
            }
        } @else {
            p { "Only workspace admins can create API keys: ask an admin, or an operator can run " code { "stardag-server admin api-key create" } "." }
        }
    }
}

/// `POST …/connect/api-key`: the API's key creation, then this page with the key.
pub async fn create_key(
    state: &AppState,
    rq: &UiReq,
    who: &Session,
    ws: &str,
    env: &str,
    form: Query,
) -> Result<HttpResponse, UiError> {
    let scope = scope::resolve(state, who, ws, Some(env)).await?;
    let endpoint = Endpoint::CreateApiKey {
        ws: scope.ws().ws.id.to_string(),
        env: scope.env()?.id.to_string(),
    };
    let name = form.get("name").unwrap_or("sdk").trim().to_owned();
    let answer = call(
        state,
        rq,
        scope.user_caller(&who.user),
        endpoint,
        "",
        Some(json!({ "name": name })),
    )
    .await;
    let created = match answer {
        Ok(v) => Ok(v["key"].as_str().unwrap_or_default().to_owned()),
        Err(e @ (ApiError::Forbidden(_) | ApiError::Validation(_) | ApiError::Conflict(_))) => {
            Err(layout::detail_text(&e.detail()))
        }
        Err(e) => return Err(e.into()),
    };
    page(state, rq, who, ws, env, Some(created)).await
}
