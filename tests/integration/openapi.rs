//! The API describes itself: `GET /api/v1/version`, the build-info gauge, and the
//! OpenAPI document.

use crate::harness::{metric_sample, metrics_text, TestServer};

#[tokio::test]
async fn version_route_and_build_info_show_the_crate_version() {
    let server = TestServer::start().await;
    let c = server.client();
    // No credential needed, as upstream.
    let body = c.get("/api/v1/version").await.expect(200);
    assert_eq!(body["server_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["api_version"], "v1");
    let series = format!(
        "stardag_server_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(metric_sample(&metrics_text(&c).await, &series), Some(1.0));
}

/// The document is served without a credential and names both API generations and
/// the three error shapes.
#[tokio::test]
async fn the_openapi_document_covers_v1_and_v2() {
    let server = TestServer::start().await;
    let doc = server.client().get("/openapi.json").await.expect(200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/builds",
        "/api/v1/tasks/search",
        "/api/v2/builds/{build_id}/frontier",
        "/api/v2/plans/{plan_id}/members",
        "/api/v1/version",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("ApiKey"), "{schemes:?}");
    // A v2 refusal is documented with the {"detail": {"code", "message"}} shape.
    let frontier = &paths["/api/v2/builds/{build_id}/frontier"]["get"]["responses"];
    assert!(frontier.get("404").is_some(), "{frontier}");
}

/// `/docs` is one self-contained page: nothing it loads comes from another origin, so
/// it works air-gapped.
#[tokio::test]
async fn the_reference_page_is_self_contained() {
    let server = TestServer::start().await;
    let r = server.client().get("/docs").await;
    assert_eq!(r.status, 200);
    let ct = r.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("text/html"), "{ct}");
    let html = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(html.contains("/api/v2/builds"), "operations listed");
    for attr in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(attr), "external reference {attr}");
    }
    assert!(!html.contains("<script"), "no script needed");
}
