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
