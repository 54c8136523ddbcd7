//! Test harness: the real server on 127.0.0.1:0 with a temporary data dir, and a small
//! HTTP/1.1 client over hyper. No sleeps: the listener is bound before the server starts.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use stardag_server::config::Config;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running inside the test process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<Result<(), stardag_server::server::ServerError>>>,
    dir: Arc<tempfile::TempDir>,
}

pub fn test_config(data_dir: &Path) -> Config {
    Config {
        data_dir: data_dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let mut config = test_config(dir.path());
        tweak(&mut config);
        Self::launch(config, dir).await
    }

    /// Like `start_with` for TLS configs: readiness cannot use the plain HTTP client, so
    /// it waits for the first-start credentials file instead.
    pub async fn start_with_tls(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let mut config = test_config(dir.path());
        tweak(&mut config);
        let server = Self::spawn(config, dir).await;
        let creds = server.data_dir().join("initial-credentials");
        for _ in 0..200 {
            if creds.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        server
    }

    async fn launch(config: Config, dir: Arc<tempfile::TempDir>) -> TestServer {
        let server = Self::spawn(config, dir).await;
        // Start-up (signing keys, first-start bootstrap) finishes before the accept loop
        // runs; the first answer therefore means the server is fully ready.
        server.client().get("/health").await.expect(200);
        server
    }

    async fn spawn(config: Config, dir: Arc<tempfile::TempDir>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let run_config = Arc::new(config.clone());
        let join = tokio::spawn(stardag_server::server::run(
            run_config,
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            config,
            stop: Some(stop),
            join: Some(join),
            dir,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// Graceful stop; waits until the database is closed.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(join) = self.join.take() {
            join.await.expect("server task").expect("server result");
        }
    }

    /// Stops and starts again on the same data dir (new port).
    pub async fn restart(mut self) -> TestServer {
        self.stop().await;
        let config = self.config.clone();
        let dir = self.dir.clone();
        Self::launch(config, dir).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The real binary as a child process (for signals and the CLI).
pub struct BinaryServer {
    pub addr: SocketAddr,
    pub child: tokio::process::Child,
    pub stderr_lines: Arc<tokio::sync::Mutex<Vec<String>>>,
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stardag-server"))
}

impl BinaryServer {
    /// Starts `stardag-server serve` and waits for its "listening on" log line.
    pub async fn start(data_dir: &Path, extra_args: &[&str]) -> BinaryServer {
        Self::start_with_env(data_dir, extra_args, &[]).await
    }

    pub async fn start_with_env(
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> BinaryServer {
        Self::launch(data_dir, extra_args, env, true).await
    }

    /// Like [`BinaryServer::start`], but stderr is not read after the "listening on"
    /// line: the pipe fills up, as a stalled log reader's would.
    pub async fn start_with_stalled_stderr(data_dir: &Path) -> BinaryServer {
        Self::launch(data_dir, &[], &[], false).await
    }

    async fn launch(
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
        keep_reading: bool,
    ) -> BinaryServer {
        let mut child = tokio::process::Command::new(binary())
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra_args)
            .env("RUST_LOG", "info")
            .env_remove("STARDAG_SERVER_CONFIG")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn stardag-server");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = oneshot::channel();
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            let mut addr_tx = Some(addr_tx);
            while let Ok(Some(line)) = reader.next_line().await {
                if let Some(rest) = line
                    .split("listening on http://")
                    .nth(1)
                    .or_else(|| line.split("listening on https://").nth(1))
                {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    if let Some(tx) = addr_tx.take() {
                        let _ = tx.send(addr);
                    }
                    if !keep_reading {
                        // Keeps the pipe open, unread, for the life of the test.
                        std::future::pending::<()>().await;
                    }
                }
                sink.lock().await.push(line);
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(20), addr_rx)
            .await
            .expect("server did not report its address in time")
            .expect("server exited before listening");
        BinaryServer {
            addr: addr.parse().expect("address"),
            child,
            stderr_lines: lines,
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// Waits (up to 5 s) for the server to have logged a line containing `text`: lines
    /// reach the pipe from the server's log thread, and this side reads them on a task.
    pub async fn assert_logged(&self, text: &str) {
        for _ in 0..250 {
            let lines = self.stderr_lines.lock().await;
            if lines.iter().any(|l| l.contains(text)) {
                return;
            }
            drop(lines);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let lines = self.stderr_lines.lock().await;
        panic!("the server never logged {text:?}: {lines:?}");
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.child.id().expect("pid") as i32;
        // SAFETY-free: `kill` via the command keeps the test free of libc bindings.
        std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
    }

    pub async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("server did not exit in time")
            .expect("wait")
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    headers: Vec<(String, String)>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            headers: Vec::new(),
        }
    }

    /// A client that sends this header on every request.
    pub fn with_header(&self, name: &str, value: &str) -> Client {
        let mut c = self.clone();
        c.headers.push((name.into(), value.into()));
        c
    }

    pub fn with_api_key(&self, key: &str) -> Client {
        self.with_header("x-api-key", key)
    }

    pub fn with_bearer(&self, token: &str) -> Client {
        self.with_header("authorization", &format!("Bearer {token}"))
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn delete(&self, path: &str) -> TestResponse {
        self.send(Method::DELETE, path, &[], Bytes::new()).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.json(Method::POST, path, body).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> TestResponse {
        self.json(Method::PATCH, path, body).await
    }

    pub async fn json(&self, method: Method, path: &str, body: &Value) -> TestResponse {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("json"));
        self.send(method, path, &[("content-type", "application/json")], bytes)
            .await
    }

    /// One request on a fresh connection.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> TestResponse {
        self.try_send(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Client::send`], but a server that is gone (refused or dropped connection,
    /// e.g. killed mid-request) is an `Err` instead of a panic.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<TestResponse, String> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).expect("request");
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

// --- credentials shared by every test module ---

/// The `KEY=value` lines of `<data_dir>/initial-credentials` (first start, D4).
pub fn credentials(dir: &Path) -> std::collections::HashMap<String, String> {
    let text = std::fs::read_to_string(dir.join("initial-credentials"))
        .expect("initial-credentials written on first start");
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `POST /api/v1/auth/login` → session token.
pub async fn login(c: &Client, email: &str, password: &str) -> String {
    let body = c
        .post(
            "/api/v1/auth/login",
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
        .expect(200);
    body["session_token"]
        .as_str()
        .expect("session_token")
        .to_owned()
}

/// `POST /api/v1/auth/exchange` with an identity token → internal token for `ws`.
pub async fn exchange(c: &Client, identity_token: &str, ws: &str) -> String {
    let body = c
        .with_bearer(identity_token)
        .post(
            "/api/v1/auth/exchange",
            &serde_json::json!({"workspace_id": ws}),
        )
        .await
        .expect(200);
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// The text of `GET /metrics`.
pub async fn metrics_text(c: &Client) -> String {
    String::from_utf8_lossy(&c.get("/metrics").await.body).into_owned()
}

/// The value of the sample `series` (metric name and labels, exactly as rendered) in a
/// `/metrics` text, if it is there.
pub fn metric_sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}
