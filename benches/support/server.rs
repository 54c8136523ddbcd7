//! The server under test for the HTTP benchmarks (`load`, `soak`): starts the release
//! binary on a temporary data dir, logs in as the bootstrap admin, and gives keep-alive
//! connections plus the process's memory and file figures from `/proc`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    headers: Vec<(String, String)>,
}

impl Conn {
    pub async fn open(addr: SocketAddr, headers: Vec<(String, String)>) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Conn { sender, headers }
    }

    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Bytes), String> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "bench");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let bytes = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Bytes::from(serde_json::to_vec(b).expect("json"))
            }
            None => Bytes::new(),
        };
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let resp = self
            .sender
            .send_request(req.body(Full::new(bytes)).expect("request"))
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

/// A running (or targeted) server and the credentials to drive it.
pub struct Target {
    pub addr: SocketAddr,
    pub api_key: String,
    /// An internal token of the admin and its environment id.
    #[allow(dead_code)] // not every benchmark drives bearer tokens
    pub bearer: Option<(String, String)>,
    pub child: Option<tokio::process::Child>,
    pub data_dir: Option<tempfile::TempDir>,
}

/// Starts the server on `dir` and waits until it answers; returns it and its address.
pub async fn spawn_server(binary: &Path, dir: &Path) -> (tokio::process::Child, SocketAddr) {
    let mut child = tokio::process::Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn,stardag_server=info")
        // The benchmark measures the server, not its rate limits.
        .env("STARDAG_SERVER_RATE_LIMIT__PER_CREDENTIAL_RPS", "0")
        .env("STARDAG_SERVER_RATE_LIMIT__PER_IP_RPS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); run `cargo build --release` first",
                binary.display()
            )
        });
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = loop {
        let line = lines
            .next_line()
            .await
            .expect("server log")
            .expect("server exited");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap_or("").to_string();
        }
    };
    // The log is drained so the server never blocks on a full pipe; its errors (the
    // cause of a 500, with the request id) are shown.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("ERROR") {
                eprintln!("server: {line}");
            }
        }
    });
    let addr: SocketAddr = addr.parse().expect("address");
    // Start-up work finishes before the first answer.
    Conn::open(addr, vec![])
        .await
        .call(Method::GET, "/health", None)
        .await
        .expect("health");
    (child, addr)
}

pub async fn start_server(binary: &Path) -> Target {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, addr) = spawn_server(binary, dir.path()).await;

    // Start-up work finishes before the first answer: then the credentials exist.
    Conn::open(addr, vec![])
        .await
        .call(Method::GET, "/health", None)
        .await
        .expect("health");
    let creds: HashMap<String, String> =
        std::fs::read_to_string(dir.path().join("initial-credentials"))
            .expect("credentials")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
    let mut c = Conn::open(addr, vec![]).await;
    let (_, body) = c
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(&json!({"email": creds["STARDAG_ADMIN_EMAIL"], "password": creds["STARDAG_ADMIN_PASSWORD"]})),
        )
        .await
        .expect("login");
    let session: Value = serde_json::from_slice(&body).expect("login json");
    let session = session["session_token"]
        .as_str()
        .expect("session")
        .to_string();
    let mut c = Conn::open(
        addr,
        vec![("authorization".into(), format!("Bearer {session}"))],
    )
    .await;
    let (_, body) = c
        .call(
            Method::POST,
            "/api/v1/auth/exchange",
            Some(&json!({"workspace_id": creds["STARDAG_WORKSPACE_ID"]})),
        )
        .await
        .expect("exchange");
    let token: Value = serde_json::from_slice(&body).expect("exchange json");
    Target {
        addr,
        api_key: creds["STARDAG_API_KEY"].clone(),
        bearer: Some((
            token["access_token"].as_str().expect("token").to_string(),
            creds["STARDAG_ENVIRONMENT_ID"].clone(),
        )),
        child: Some(child),
        data_dir: Some(dir),
    }
}

impl Target {
    pub fn key_headers(&self) -> Vec<(String, String)> {
        vec![("x-api-key".into(), self.api_key.clone())]
    }

    /// A `/proc/<pid>/status` memory field (`VmRSS:` now, `VmHWM:` peak) in KiB.
    pub fn rss_kib(&self, field: &str) -> Option<u64> {
        let pid = self.child.as_ref()?.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find(|l| l.starts_with(field))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    pub fn db_bytes(&self) -> Option<u64> {
        let dir = self.data_dir.as_ref()?;
        std::fs::metadata(dir.path().join("stardag.redb"))
            .ok()
            .map(|m| m.len())
    }

    /// Open file descriptors of the server process (entries of `/proc/<pid>/fd`).
    #[allow(dead_code)] // used by the soak benchmark
    pub fn open_fds(&self) -> Option<usize> {
        let pid = self.child.as_ref()?.id()?;
        Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
    }

    /// Bytes of the journal directory (`stardag.journal/`, beside the database).
    #[allow(dead_code)] // used by the soak benchmark
    pub fn journal_bytes(&self) -> Option<u64> {
        let dir = self.data_dir.as_ref()?.path().join("stardag.journal");
        let files = std::fs::read_dir(dir).ok()?;
        Some(
            files
                .flatten()
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum(),
        )
    }
}
