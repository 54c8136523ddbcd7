//! Transport-level behaviour: health, error shapes, routing rules, headers, shutdown.

use http::Method;
use serde_json::json;

use crate::harness::{metric_sample, metrics_text, BinaryServer, TestServer};

/// Every request logs an access line to stderr. A reader that stops reading (a stalled
/// journald, a full pipe) must not stall the requests: lines queue, then are dropped.
#[tokio::test]
async fn a_stalled_log_reader_does_not_stall_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::start_with_stalled_stderr(dir.path()).await;
    let client = server.client();
    // ~200 bytes of access line each: many times a pipe's 64 KiB.
    let all = async {
        for _ in 0..3000 {
            client.get("/health").await.expect(200);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), all)
        .await
        .expect("requests stalled behind an unread stderr");
}

#[tokio::test]
async fn health_answers_healthy_with_security_headers() {
    let server = TestServer::start().await;
    let resp = server.client().get("/health").await;
    assert_eq!(resp.expect(200), json!({"status": "healthy"}));
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(resp.header("referrer-policy"), Some("no-referrer"));
    assert!(
        resp.header("strict-transport-security").is_none(),
        "no HSTS without TLS"
    );
    let id = resp.header("x-request-id").expect("request id generated");
    assert!(id.len() >= 16);

    let head = server
        .client()
        .send(Method::HEAD, "/health", &[], Default::default())
        .await;
    assert_eq!(head.status.as_u16(), 200);
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn request_id_is_echoed_when_sane() {
    let server = TestServer::start().await;
    let c = server.client();
    let resp = c
        .send(
            Method::GET,
            "/health",
            &[("x-request-id", "trace-abc-123")],
            Default::default(),
        )
        .await;
    assert_eq!(resp.header("x-request-id"), Some("trace-abc-123"));
    let long = "x".repeat(500);
    let resp = c
        .send(
            Method::GET,
            "/health",
            &[("x-request-id", &long)],
            Default::default(),
        )
        .await;
    assert_ne!(resp.header("x-request-id"), Some(long.as_str()));
}

#[tokio::test]
async fn unknown_path_is_404_not_found() {
    let server = TestServer::start().await;
    let c = server.client();
    for path in ["/nope", "/api/v9/tasks", "/health/extra", "/a//b", "/%FF"] {
        let resp = c.get(path).await;
        assert_eq!(resp.expect(404), json!({"detail": "Not Found"}), "{path}");
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let server = TestServer::start().await;
    let resp = server.client().post("/health", &json!({})).await;
    assert_eq!(resp.expect(405), json!({"detail": "Method Not Allowed"}));
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    let resp = server.client().delete("/health").await;
    assert_eq!(resp.status.as_u16(), 405);
}

#[tokio::test]
async fn trailing_slash_is_served_like_the_bare_path() {
    let server = TestServer::start().await;
    let resp = server.client().get("/health/").await;
    assert_eq!(resp.expect(200), json!({"status": "healthy"}));
}

#[tokio::test]
async fn metrics_report_store_counters() {
    let server = TestServer::start().await;
    let resp = server.client().get("/metrics").await;
    assert_eq!(resp.status.as_u16(), 200);
    let text = String::from_utf8_lossy(&resp.body);
    assert!(text.contains("stardag_store_commits_total"), "{text}");
    assert!(text.contains("stardag_store_file_bytes"), "{text}");

    let off = TestServer::start_with(|c| c.metrics.enabled = false).await;
    assert_eq!(off.client().get("/metrics").await.status.as_u16(), 404);
}

/// A sample of a `/metrics` text; 0 when the series is not there yet.
fn sample(text: &str, series: &str) -> f64 {
    metric_sample(text, series).unwrap_or(0.0)
}

/// D28: requests by route and status, latency histograms by route, batch sizes.
#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_batch_sizes() {
    let fx = crate::tasks::Fixture::start().await;
    let c = fx.anonymous();
    let metrics = || metrics_text(&c);
    let before = metrics().await;
    c.get("/health").await.expect(200);
    c.get("/health").await.expect(200);
    assert_eq!(c.get("/no/such/path").await.status.as_u16(), 404);
    crate::tasks::new_build_id(&fx.sdk()).await;
    let after = metrics().await;
    let grew = |series: &str| sample(&after, series) - sample(&before, series);

    let requests = |route: &str, status: u16| {
        grew(&format!(
            "stardag_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"
        ))
    };
    assert_eq!(requests("health", 200), 2.0, "{after}");
    assert_eq!(requests("unmatched", 404), 1.0, "{after}");
    assert_eq!(requests("create_build", 201), 1.0, "{after}");
    assert_eq!(requests("metrics", 200), 1.0, "the first /metrics: {after}");
    let health = |suffix: &str| grew(&format!("stardag_http_request_duration_seconds{suffix}"));
    assert_eq!(health("_count{route=\"health\"}"), 2.0);
    assert_eq!(health("_bucket{route=\"health\",le=\"+Inf\"}"), 2.0);
    assert!(health("_sum{route=\"health\"}") > 0.0);

    assert!(
        grew("stardag_store_commits_total") >= 1.0,
        "the build: {after}"
    );

    // Every commit is in the batch histogram, every operation in its sum. The counters
    // are read one by one, so a background write (the API key's last-use stamp) may
    // land between two of them: compare once the writer is quiet.
    let mut text = after;
    for _ in 0..50 {
        let commits = sample(&text, "stardag_store_commits_total");
        let ops = sample(&text, "stardag_store_write_ops_total");
        if sample(&text, "stardag_store_batch_size_count") == commits
            && sample(&text, "stardag_store_batch_size_bucket{le=\"+Inf\"}") == commits
            && sample(&text, "stardag_store_batch_size_sum") == ops
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        text = metrics().await;
    }
    panic!("the batch histogram does not add up to the commit counters:\n{text}");
}

/// `metrics.token` (D28): without the bearer token `/metrics` is 401, like any
/// unauthenticated call; with it, the usual text.
#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    let server =
        TestServer::start_with(|c| c.metrics.token = Some("scrape-token-7f3a".into())).await;
    let c = server.client();
    for client in [
        c.clone(),
        c.with_bearer("scrape-token-7f3"),
        c.with_bearer("x"),
    ] {
        let resp = client.get("/metrics").await;
        assert_eq!(resp.expect(401), json!({"detail": "Not authenticated"}));
        assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
    }
    let resp = c.with_bearer("scrape-token-7f3a").get("/metrics").await;
    assert_eq!(resp.status.as_u16(), 200);
    assert!(String::from_utf8_lossy(&resp.body).contains("stardag_store_commits_total"));
    // Health stays open for load balancers.
    c.get("/health").await.expect(200);
}

#[tokio::test]
async fn binary_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = BinaryServer::start(dir.path(), &[]).await;
    server.client().get("/health").await.expect(200);
    server.signal(15);
    let status = server.wait().await;
    assert!(status.success(), "exit status {status:?}");
    server.assert_logged("stopped").await;
}

#[tokio::test]
async fn newer_database_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stardag.redb");
    stardag_server::store::force_schema_version_for_tests(&db, 99).unwrap();
    let out = tokio::process::Command::new(crate::harness::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("schema version 99") && stderr.contains("upgrade stardag-server"),
        "{stderr}"
    );
}

/// Reads until the server closes the connection; returns what it sent and how long the
/// close took.
async fn wait_for_close(stream: &mut tokio::net::TcpStream) -> (Vec<u8>, std::time::Duration) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut buf),
    )
    .await;
    assert!(res.is_ok(), "server never closed the connection");
    (buf, started.elapsed())
}

#[tokio::test]
async fn slow_request_heads_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with(|c| c.http.header_read_timeout_seconds = 1).await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // A trickle: one byte every 200 ms keeps the connection busy but never finishes the
    // head within the timeout.
    let trickle = tokio::spawn(async move {
        for b in b"GET /health HTTP/1.1\r\nhost: slowloris\r\n".iter() {
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    use tokio::io::AsyncReadExt;
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        read.read_to_end(&mut buf),
    )
    .await;
    assert!(res.is_ok(), "server never closed the connection");
    let took = started.elapsed();
    // The full head would take ~8 s to trickle in; the server cut it off long before.
    assert!(took < std::time::Duration::from_secs(4), "took {took:?}");
    assert!(!String::from_utf8_lossy(&buf).contains("healthy"));
    trickle.abort();
    // The server still serves others.
    server.client().get("/health").await.expect(200);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with(|c| c.http.keepalive_idle_seconds = 1).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (buf, took) = wait_for_close(&mut stream).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        took >= std::time::Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn the_connection_cap_queues_rather_than_refuses() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with(|c| {
        c.http.max_connections = 2;
        c.http.keepalive_idle_seconds = 1;
    })
    .await;
    // Two idle connections fill the cap; a third client is served once one closes.
    let mut a = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut b = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    a.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    b.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    server.client().get("/health").await.expect(200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
}
