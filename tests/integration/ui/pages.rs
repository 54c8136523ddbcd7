//! What the pages show: the home redirect, Connect, builds of both protocols, the build
//! page's graph and live state, the task page, API keys.

use super::{json_of, seed_dag, text, Browser};
use crate::tasks::{task_event, Fixture};

#[tokio::test]
async fn fresh_install_lands_on_connect_then_builds_after_the_first_build() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let r = b.get("/").await;
    assert_eq!(r.status, 303);
    let loc = r.header("location").unwrap().to_owned();
    assert!(loc.ends_with("/env/local/connect"), "{loc}");
    let page = b.get(&loc).await;
    assert_eq!(page.status, 200);
    let html = text(&page);
    assert!(html.contains("Waiting for the first build"), "{html}");
    assert!(html.contains(&format!("export STARDAG_API_URL=http://{}", f.server.addr)));
    assert!(html.contains(&format!(
        "export STARDAG_REGISTRY_URL=http://{}",
        f.server.addr
    )));
    let base = b.home_env().await;
    let empty = text(&b.get(&format!("{base}/builds")).await);
    assert!(empty.contains("No builds yet in Local"), "{empty}");
    // The connect page polls the builds list state.
    let s0 = b.get(&format!("{base}/builds?state=1")).await;
    assert_eq!(s0.status, 200);
    assert_eq!(json_of(&s0)["total"], 0);
    seed_dag(&f.sdk()).await;
    let s1 = json_of(&b.get(&format!("{base}/builds?state=1")).await);
    assert_eq!(s1["total"], 1);
    assert!(s1["newest"]["url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{base}/builds/")));
    let r = b.get("/").await;
    assert!(r.header("location").unwrap().ends_with("/env/local/builds"));
}

#[tokio::test]
async fn builds_list_shows_both_protocols_newest_first_with_progress() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    let (v1, [a, ..]) = seed_dag(&sdk).await;
    task_event(&sdk, &v1, &a, "start").await;
    task_event(&sdk, &v1, &a, "complete").await;
    let api = crate::v2::Api::of(&f);
    let v2 = api.build(&["root"]).await;
    let html = text(&b.get(&format!("{base}/builds")).await);
    let (p1, p2) = (
        html.find(&v1).expect("v1 build listed"),
        html.find(&v2).expect("v2 build listed"),
    );
    assert!(p2 < p1, "the newer (v2) build comes first");
    assert!(html.contains("2 builds in Local"), "{html}");
    assert!(html.contains("1/4 ✓"), "v1 progress: {html}");
    assert!(html.contains(">v2<"), "v2 tag: {html}");
    let v2_page = b.get(&format!("{base}/builds/{v2}")).await;
    assert_eq!(v2_page.status, 200);
    let v2_html = text(&v2_page);
    assert!(
        v2_html.contains("v2 (stardag 0.28)") && v2_html.contains("?tab=plans"),
        "{v2_html}"
    );
    assert_eq!(
        b.get(&format!("{base}/builds/{v2}?tab=executions"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn build_page_draws_the_graph_and_polls_with_etags() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    let (build, [a, bb, c, d]) = seed_dag(&sdk).await;
    let r = b.get(&format!("{base}/builds/{build}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let html = text(&r);
    assert_eq!(html.matches("class=\"node st-").count(), 4, "{html}");
    assert_eq!(html.matches("<path class=\"edge").count(), 3, "{html}");
    for t in [&a, &bb, &c, &d] {
        assert!(
            html.contains(&format!("href=\"{base}/tasks/{t}\"")),
            "node link to {t}"
        );
    }
    // Every edge points forward: the graph's own unit tests check geometry; here the
    // edges are the stored ones.
    assert!(html.contains(&format!("data-from=\"{a}\" data-to=\"{bb}\"")));
    assert!(html.contains(&format!("data-from=\"{d}\" data-to=\"{c}\"")));
    let tb = text(&b.get(&format!("{base}/builds/{build}?dir=tb")).await);
    assert!(tb.contains("data-dir=\"tb\""));

    let state_url = format!("{base}/builds/{build}/state");
    let s1 = b.get(&state_url).await;
    assert_eq!(s1.status, 200);
    let etag = s1.header("etag").expect("etag").to_owned();
    let body = json_of(&s1);
    assert_eq!(body["counts"]["pending"], 4);
    assert_eq!(body["build"]["status"], "running");
    let same = b.get_with(&state_url, &[("if-none-match", &etag)]).await;
    assert_eq!(same.status, 304);
    task_event(&sdk, &build, &bb, "start").await;
    let changed = b.get_with(&state_url, &[("if-none-match", &etag)]).await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag").unwrap(), etag);
    let body = json_of(&changed);
    assert_eq!(body["counts"]["running"], 1);
    let node = body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["task_id"] == bb.as_str())
        .unwrap();
    assert_eq!(node["status"], "running");
    // Tabs render, and the SVG alone is served for swapping.
    for tab in ["tasks", "events"] {
        assert_eq!(
            b.get(&format!("{base}/builds/{build}?tab={tab}"))
                .await
                .status,
            200
        );
    }
    let svg = b.get(&format!("{base}/builds/{build}/graph.svg")).await;
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    assert!(text(&svg).starts_with("<svg"));
}

#[tokio::test]
async fn override_records_the_status_and_who_set_it() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let (build, _) = seed_dag(&f.sdk()).await;
    let page = text(&b.get(&format!("{base}/builds/{build}")).await);
    let csrf = super::csrf_of(&page);
    assert!(page.contains("Override status"));
    let r = b
        .post_form(
            &format!("{base}/builds/{build}/override"),
            &csrf,
            &[("status", "failed"), ("message", "stopped by hand")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let api = f
        .sdk()
        .get(&format!("/api/v1/builds/{build}"))
        .await
        .expect(200);
    assert_eq!(api["status"], "failed");
    let html = text(&b.get(&format!("{base}/builds/{build}")).await);
    assert!(
        html.contains(&format!("Status set by {}", f.cred("STARDAG_ADMIN_EMAIL"))),
        "{html}"
    );
}

#[tokio::test]
async fn task_page_shows_params_assets_and_events_across_builds() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    let (b1, [a, ..]) = seed_dag(&sdk).await;
    task_event(&sdk, &b1, &a, "start").await;
    task_event(&sdk, &b1, &a, "complete").await;
    let (b2, _) = seed_dag(&sdk).await;
    sdk.post(
        &format!("/api/v1/builds/{b1}/tasks/{a}/assets"),
        &serde_json::json!([{"type": "markdown", "name": "summary", "body": {"content": "| x | y |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n```"}}]),
    )
    .await
    .expect(201);
    let html = text(&b.get(&format!("{base}/tasks/{a}")).await);
    assert!(
        html.contains("<table>") && html.contains("<pre><code>"),
        "markdown rendered: {html}"
    );
    assert!(html.contains("&quot;tag&quot;"), "parameters shown: {html}");
    assert!(
        html.contains(&format!("href=\"{base}/builds/{b1}\"")),
        "{html}"
    );
    assert!(html.contains("task_completed") && html.contains("task_started"));
    // In build 2 the task's status comes from build 1 (↗ link).
    let page2 = text(&b.get(&format!("{base}/builds/{b2}?tab=tasks")).await);
    assert!(
        page2.contains(&format!(
            "href=\"{base}/builds/{b1}\" title=\"Status from another build\""
        )),
        "{page2}"
    );
    assert_eq!(b.get(&format!("{base}/tasks/nope")).await.status, 404);
}

#[tokio::test]
async fn api_keys_are_shown_once_and_revoke_works() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let ws = base.split('/').nth(2).unwrap().to_owned();
    let keys_url = format!("/ws/{ws}/settings/api-keys");
    let page = b.get(&keys_url).await;
    assert_eq!(page.status, 200);
    let csrf = super::csrf_of(&text(&page));
    let r = b
        .post_form(&keys_url, &csrf, &[("env", "local"), ("name", "ci")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let html = text(&r);
    let at = html.find("value=\"sk_").expect("the new key") + 7;
    let key = html[at..at + html[at..].find('"').unwrap()].to_owned();
    assert_eq!(
        f.anonymous()
            .with_api_key(&key)
            .get("/api/v1/builds")
            .await
            .status,
        200
    );
    // Shown once: the list shows only its prefix.
    let again = text(&b.get(&keys_url).await);
    assert!(!again.contains(&key));
    let key_id = {
        let row = again.find("data-key=\"").unwrap() + 10;
        again[row..row + 36].to_owned()
    };
    let r = b
        .post_form(
            &format!("{keys_url}/{key_id}/revoke"),
            &csrf,
            &[("env", "local")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(
        f.anonymous()
            .with_api_key(&key)
            .get("/api/v1/builds")
            .await
            .status,
        401
    );
    // Revoked keys are listed on request only, and marked.
    assert!(!text(&b.get(&keys_url).await).contains(&format!("data-key=\"{key_id}\"")));
    let all = text(&b.get(&format!("{keys_url}?include_revoked=true")).await);
    let row = &all[all
        .find(&format!("data-key=\"{key_id}\""))
        .expect("the revoked row")..];
    assert!(
        row[..row.find("</tr>").unwrap()].contains(">revoked<"),
        "{all}"
    );
    // The connect page creates keys too.
    let connect = text(&b.get(&format!("{base}/connect")).await);
    let r = b
        .post_form(
            &format!("{base}/connect/api-key"),
            &super::csrf_of(&connect),
            &[("name", "laptop")],
        )
        .await;
    let html = text(&r);
    assert!(html.contains("export STARDAG_API_KEY=sk_"), "{html}");
}
