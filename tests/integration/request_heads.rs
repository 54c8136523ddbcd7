//! Request heads are checked before hyper parses them (src/server/head_check.rs): heads
//! hyper refused with an empty body get a JSON `detail`, and a request carrying both
//! `Content-Length` and `Transfer-Encoding` is refused (request smuggling).

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{metric_sample, metrics_text, TestServer};

/// One answer read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answer without a JSON body ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Writes `request` on a new connection and reads every answer until the server
/// closes it.
async fn exchange_raw(addr: std::net::SocketAddr, request: &[u8]) -> Vec<Answer> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw));
    read.await
        .expect("the server closed the connection")
        .unwrap();
    parse_answers(&raw)
}

fn parse_answers(mut raw: &[u8]) -> Vec<Answer> {
    let mut answers = Vec::new();
    while let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let body = raw[end + 4..end + 4 + length].to_vec();
        raw = &raw[end + 4 + length..];
        answers.push(Answer {
            status,
            headers,
            body,
        });
    }
    answers
}

#[tokio::test]
async fn heads_hyper_refused_bare_get_a_json_detail() {
    let server = TestServer::start().await;
    let many: String = (0..2000).map(|i| format!("x-h-{i}: v\r\n")).collect();
    let cases = [
        (
            "GET /health HTTP/1.1\r\nhost: x\r\nbad header line\r\n\r\n".to_string(),
            400,
            "Invalid HTTP request",
        ),
        (
            format!(
                "GET /health?q={} HTTP/1.1\r\nhost: x\r\n\r\n",
                "a".repeat(70_000)
            ),
            414,
            "Request target too long",
        ),
        (
            format!("GET /health HTTP/1.1\r\nhost: x\r\n{many}\r\n"),
            431,
            "Request header fields too large",
        ),
        (
            // Over http.max_header_bytes (96 KiB).
            format!(
                "GET /health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
                "a".repeat(100_000)
            ),
            431,
            "Request header fields too large",
        ),
        (
            "POST /health HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n".to_string(),
            400,
            "Transfer-Encoding must end in chunked (HTTP/1.1 only)",
        ),
    ];
    for (request, status, detail) in cases {
        let answers = exchange_raw(server.addr, request.as_bytes()).await;
        assert_eq!(answers.len(), 1, "{answers:?}");
        let a = &answers[0];
        assert_eq!(a.status, status);
        assert_eq!(a.json(), json!({ "detail": detail }));
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert!(a.header("x-request-id").is_some());
    }
    let c = server.client();
    c.get("/health").await.expect(200);
    let text = metrics_text(&c).await;
    let series = "stardag_http_requests_total{route=\"bad_request_head\",status=\"400\"}";
    assert_eq!(metric_sample(&text, series), Some(2.0), "{text}");
}

#[tokio::test]
async fn length_and_transfer_encoding_together_are_refused() {
    let server = TestServer::start().await;
    for framing in [
        "content-length: 4\r\ntransfer-encoding: chunked",
        "transfer-encoding: chunked\r\ncontent-length: 4",
    ] {
        let request =
            format!("POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\n{framing}\r\n\r\n0\r\n\r\n");
        let answers = exchange_raw(server.addr, request.as_bytes()).await;
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(answers[0].status, 400);
        assert_eq!(
            answers[0].json(),
            json!({"detail": "Content-Length and Transfer-Encoding in one request are refused"})
        );
    }
}

#[tokio::test]
async fn a_refused_head_is_answered_after_the_requests_before_it() {
    let server = TestServer::start().await;
    let body = r#"{"email":"a@example.com","password":"wrong-password"}"#;
    let request = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\n\r\n\
         POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}\
         POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\
         content-length: 5\r\n\r\n0\r\n\r\n\
         GET /health HTTP/1.1\r\nhost: x\r\n\r\n",
        body.len()
    );
    let answers = exchange_raw(server.addr, request.as_bytes()).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [200, 401, 400],
        "nothing after the refused head is served"
    );
    assert_eq!(
        answers[1].json(),
        json!({"detail": "Invalid email or password"})
    );
}
