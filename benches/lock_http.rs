//! Lock throughput over HTTP against the real binary.
//!
//! `cargo bench --bench lock_http [-- --clients 16 --seconds 5]` starts
//! `stardag-server` (rate limits off, default durability) on a fresh data dir and lets
//! each client loop `acquire` → `release` on its own lock names through the bootstrap
//! API key. It prints pairs per second, request latency percentiles, and the writer's
//! commits and mean batch from `/metrics`. Clients keep their connection alive unless
//! an answer says `Connection: close`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    child: Child,
    addr: SocketAddr,
    api_key: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

async fn start_server(dir: &Path) -> Server {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = Command::new(env!("CARGO_BIN_EXE_stardag-server"))
        .args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(dir)
        .env_remove("STARDAG_SERVER_CONFIG")
        .env("STARDAG_SERVER_RATE_LIMIT__PER_CREDENTIAL_RPS", "0")
        .env("STARDAG_SERVER_RATE_LIMIT__PER_IP_RPS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stardag-server");
    let creds = dir.join("initial-credentials");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "server did not start");
        if creds.exists() && TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(&creds).expect("credentials");
    let api_key = text
        .lines()
        .find_map(|l| l.strip_prefix("STARDAG_API_KEY="))
        .expect("API key")
        .to_owned();
    Server {
        child,
        addr,
        api_key,
    }
}

/// One client connection that reconnects when the server closed the last one.
struct Conn {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn send(&mut self, req: Request<Full<Bytes>>) -> (u16, Bytes) {
        let reuse = match &mut self.sender {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reuse {
            let stream = TcpStream::connect(self.addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("sender");
        let resp = sender.send_request(req).await.expect("send");
        let closes = resp
            .headers()
            .get(http::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        if closes {
            self.sender = None;
        }
        (status, body)
    }
}

fn post(addr: SocketAddr, key: &str, path: &str, body: String) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", addr.to_string())
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

async fn client(server: Arc<(SocketAddr, String)>, id: usize, until: Instant) -> Vec<Duration> {
    let (addr, key) = (&server.0, &server.1);
    let mut conn = Conn {
        addr: *addr,
        sender: None,
    };
    let owner = uuid::Uuid::now_v7();
    let mut latencies = Vec::new();
    let mut i = 0u64;
    while Instant::now() < until {
        let name = format!("bench-{id}-{i}");
        for (action, body) in [
            (
                "acquire",
                format!(
                    r#"{{"owner_id":"{owner}","ttl_seconds":60,"check_task_completion":true}}"#
                ),
            ),
            (
                "release",
                format!(r#"{{"owner_id":"{owner}","task_completed":false}}"#),
            ),
        ] {
            let started = Instant::now();
            let req = post(*addr, key, &format!("/api/v1/locks/{name}/{action}"), body);
            let (status, body) = conn.send(req).await;
            assert_eq!(status, 200, "{action}: {}", String::from_utf8_lossy(&body));
            latencies.push(started.elapsed());
        }
        i += 1;
    }
    latencies
}

async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let mut conn = Conn { addr, sender: None };
    let req = Request::builder()
        .uri("/metrics")
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .expect("request");
    let (_, body) = conn.send(req).await;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn main() {
    let clients: usize = arg("--clients", 16);
    let seconds: f64 = arg("--seconds", 5.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start_server(dir.path()).await;
        let target = Arc::new((server.addr, server.api_key.clone()));
        let (commits0, ops0) = (
            metric(server.addr, "stardag_store_commits_total").await,
            metric(server.addr, "stardag_store_write_ops_total").await,
        );
        let started = Instant::now();
        let until = started + Duration::from_secs_f64(seconds);
        let tasks: Vec<_> = (0..clients)
            .map(|id| tokio::spawn(client(target.clone(), id, until)))
            .collect();
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await.expect("client"));
        }
        let secs = started.elapsed().as_secs_f64();
        let commits = metric(server.addr, "stardag_store_commits_total").await - commits0;
        let ops = metric(server.addr, "stardag_store_write_ops_total").await - ops0;
        latencies.sort();
        let pct = |p: f64| {
            let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
            latencies[i].as_secs_f64() * 1e3
        };
        println!("lock acquire+release over HTTP, {clients} clients, {secs:.1} s");
        println!(
            "{:>12} {:>10} {:>10} {:>10} {:>12} {:>11}",
            "pairs/s", "p50 ms", "p99 ms", "max ms", "commits/s", "mean batch"
        );
        println!(
            "{:>12.0} {:>10.2} {:>10.2} {:>10.2} {:>12.0} {:>11.1}",
            latencies.len() as f64 / 2.0 / secs,
            pct(0.5),
            pct(0.99),
            pct(1.0),
            commits / secs,
            if commits > 0.0 { ops / commits } else { 0.0 }
        );
    });
}
