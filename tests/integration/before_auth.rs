//! What a client without a valid credential can make the server do (docs/security.md):
//! the per-IP limit before any body byte, small body limits, and the memory a burst of
//! large unauthenticated requests costs the real binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

use crate::env_support::admin;
use crate::harness::{BinaryServer, TestServer};

/// Sends `head` then `body` on a new connection and returns the answer's status, or
/// `None` when the connection closed without one. The write side stays open until the
/// answer, so a server that waits for a body the client never sends keeps waiting.
/// With `hold`, the body's last byte waits until every holder has sent the rest.
async fn raw_status(
    addr: SocketAddr,
    head: String,
    body: Bytes,
    hold: Option<Arc<Barrier>>,
) -> Option<u16> {
    let (mut rd, mut wr) = TcpStream::connect(addr).await.ok()?.into_split();
    let writer = tokio::spawn(async move {
        let last = body.len().saturating_sub(usize::from(hold.is_some()));
        let _ = wr.write_all(head.as_bytes()).await;
        for chunk in body[..last].chunks(64 * 1024) {
            if wr.write_all(chunk).await.is_err() {
                break;
            }
        }
        if let Some(hold) = hold {
            hold.wait().await;
            let _ = wr.write_all(&body[last..]).await;
        }
        wr
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout(Duration::from_secs(60), rd.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    writer.abort();
    let line = String::from_utf8_lossy(&answer);
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn post_head(path: &str, extra: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{extra}\
         content-length: {length}\r\n\r\n"
    )
}

#[tokio::test]
async fn without_a_credential_the_ip_limit_comes_before_the_body() {
    let server = TestServer::start_with(|c| {
        c.rate_limit.per_ip_rps = 1;
        c.rate_limit.per_ip_burst = 3;
        // Before the fix the server waited for the body: this turns the wait into a 408.
        c.http.body_read_timeout_seconds = 1;
    })
    .await;
    let c = server.client();
    // Spend the burst with cheap refusals.
    let mut spent = false;
    for _ in 0..10 {
        if c.get("/api/v1/builds").await.status.as_u16() == 429 {
            spent = true;
            break;
        }
    }
    assert!(spent, "the per-IP limit never refused");
    // Heads announcing bodies that never come. At most one token refills per second,
    // so of three at once at least two are refused at their head.
    let heads = [
        post_head("/api/v1/auth/login", "", 1000),
        // A credential header on a route that takes none verifies nothing.
        post_head("/api/v1/auth/login", "x-api-key: sk_junk\r\n", 1000),
        post_head("/api/v1/builds", "", 1000),
    ];
    let answers = all(heads.map(|h| raw_status(server.addr, h, Bytes::new(), None))).await;
    let refused = answers.iter().filter(|s| **s == Some(429)).count();
    assert!(refused >= 2, "{answers:?}");
}

/// Runs the futures concurrently; their outputs in order.
async fn all<F: std::future::Future<Output = Option<u16>> + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<Option<u16>> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn bodies_before_authentication_are_small() {
    let server = TestServer::start().await;
    let (_, api_key) = admin(&server).await;
    let c = server.client();
    let padded = json!({"email": "a@example.com", "password": "p".repeat(9 * 1024)});
    let resp = c.post("/api/v1/auth/login", &padded).await;
    assert_eq!(
        resp.expect(413),
        json!({"detail": "Request body too large"})
    );
    let resp = c.post("/api/v1/auth/register", &padded).await;
    assert_eq!(resp.status.as_u16(), 413);

    // A failed authentication answers, however large the body...
    let big = json!({"root_task_ids": vec![uuid::Uuid::nil(); 2000]});
    let resp = c.with_api_key("sk_junk").post("/api/v1/builds", &big).await;
    assert_eq!(resp.expect(401), json!({"detail": "Invalid API key"}));
    let resp = c.post("/api/v1/builds", &big).await;
    assert_eq!(resp.status.as_u16(), 401);
    // ...but broken JSON still comes first when it is small (upstream's order).
    let resp = c
        .with_api_key("sk_junk")
        .send(
            Method::POST,
            "/api/v1/builds",
            &[("content-type", "application/json")],
            Bytes::from_static(b"{\"root_task_ids\":"),
        )
        .await;
    assert_eq!(resp.expect(422)["detail"][0]["type"], "json_invalid");
    // A verified caller keeps the configured limit.
    let resp = c.with_api_key(&api_key).post("/api/v1/builds", &big).await;
    assert_eq!(resp.status.as_u16(), 201);
}

/// A field of `/proc/<pid>/status`, in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A JSON array of zeros just under the default 8 MiB body limit, as one body or in
/// 64 KiB chunks.
fn zeros(chunked: bool) -> Bytes {
    let body = format!("[{}0]", "0,".repeat(4 * 1024 * 1024 - 2));
    if !chunked {
        return Bytes::from(body);
    }
    let mut out = Vec::with_capacity(body.len() + 4096);
    for chunk in body.as_bytes().chunks(64 * 1024) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    Bytes::from(out)
}

/// The measurement, on the release binary: 64 concurrent 8 MiB requests
/// without a valid credential, on routes of every kind, then 64 concurrent logins
/// (each an Argon2id run of 19 MiB), keep the server's peak RSS under 100 MiB, and
/// its RSS afterwards near where it started. Each large request holds back its last
/// byte until all have sent the rest, so a server that reads these bodies would hold
/// all 64 at once.
#[tokio::test]
async fn unauthenticated_bursts_leave_memory_bounded() {
    let data = tempfile::tempdir().unwrap();
    // Room for both bursts in the per-IP limit.
    let env = [("STARDAG_SERVER_RATE_LIMIT__PER_IP_BURST", "1000")];
    let server = BinaryServer::start_with_env(data.path(), &[], &env).await;
    let pid = server.child.id().expect("pid");
    server.client().get("/health").await.expect(200);
    let idle = proc_kib(pid, "VmRSS");

    let (plain, chunked) = (zeros(false), zeros(true));
    let shapes: [(&str, &str, &str, bool); 8] = [
        ("POST", "/api/v1/auth/login", "", false),
        ("POST", "/api/v1/auth/login", "", true),
        ("POST", "/api/v1/auth/register", "", false),
        ("POST", "/api/v1/builds", "", false),
        ("POST", "/api/v1/builds", "x-api-key: sk_junk\r\n", true),
        (
            "POST",
            "/api/v1/ui/workspaces",
            "authorization: Bearer junk\r\n",
            false,
        ),
        ("GET", "/health", "", false),
        ("POST", "/api/v1/no-such-route", "", false),
    ];
    let hold = Arc::new(Barrier::new(64));
    let mut requests = Vec::new();
    for i in 0..64 {
        let (method, path, extra, is_chunked) = shapes[i % shapes.len()];
        let (framing, body) = if is_chunked {
            ("transfer-encoding: chunked".to_string(), chunked.clone())
        } else {
            (format!("content-length: {}", plain.len()), plain.clone())
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             {extra}{framing}\r\n\r\n"
        );
        requests.push(raw_status(server.addr, head, body, Some(hold.clone())));
    }
    all(requests).await;

    let logins = (0..64).map(|i| {
        let body = json!({"email": format!("nobody{i}@example.com"), "password": "password123"});
        let body = body.to_string();
        let head = post_head("/api/v1/auth/login", "", body.len());
        raw_status(server.addr, head, Bytes::from(body), None)
    });
    let answers = all(logins).await;
    assert!(answers.iter().all(|a| *a == Some(401)), "{answers:?}");

    let peak = proc_kib(pid, "VmHWM");
    eprintln!("server RSS: {idle} KiB idle, {peak} KiB peak");
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
    server.client().get("/health").await.expect(200);
    let after = proc_kib(pid, "VmRSS");
    assert!(
        after < idle + 16 * 1024,
        "RSS {idle} KiB before, {after} KiB after"
    );
}
