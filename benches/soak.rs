//! Soak benchmark: the release server under minutes of mixed SDK load and abuse.
//!
//! `cargo bench --bench soak` starts `target/release/stardag-server` on a temporary data
//! dir and runs, for `--seconds` (300), `--clients` SDK-shaped clients of each protocol
//! (v1: build, registrations with dependencies, start/complete/fail events, assets,
//! metadata and searches; v2: deployment, build, plan, members, seal, claiming
//! start + complete, frontier reads, build complete) beside abusive clients: 8 MiB login
//! bodies (at and over the limit), a gzip bomb, bad API keys and tokens in a loop,
//! malformed JSON, request targets at and over the 64 KiB limit, and `--slow`
//! slowloris connections that send their head a header every 2 s.
//!
//! Every `--every` seconds (30) it prints one row: the server's RSS and open file
//! descriptors, the database and journal sizes, the requests of each class in the
//! interval, legitimate requests that failed, and 5xx answers. The bar
//! (docs/operations.md, "Soak"): memory flat (the last row's RSS within 1.5x of the row
//! at 60 s) and no 5xx; the run exits 1 when it is missed. Rate limits are off, so every
//! abusive request reaches the code that reads and judges it rather than a cheap 429.
//! Not run in CI; `--smoke` (10 s, a row every 2 s) checks that it works.

#[path = "support/args.rs"]
mod args;
#[path = "support/server.rs"]
mod server;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use args::Args;
use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};
use server::{start_server, Conn, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const USAGE: &str = "\
usage: cargo bench --bench soak [-- OPTIONS]

  --seconds S     length of the run (300; 10 with --smoke)
  --every S       seconds between table rows (30; 2 with --smoke)
  --clients N     SDK clients of each protocol: N doing v1 builds, N doing v2 builds (4)
  --slow N        slowloris connections held open at a time (16)
  --smoke         a short run that checks the benchmark works
  --binary PATH   server binary (target/release/stardag-server)";

struct Options {
    seconds: f64,
    every: f64,
    clients: usize,
    slow: usize,
    binary: PathBuf,
}

fn options() -> Options {
    let args = Args::parse(
        USAGE,
        &["--seconds", "--every", "--clients", "--slow", "--binary"],
        &["--smoke"],
    );
    let smoke = args.flag("--smoke");
    Options {
        seconds: args.arg("--seconds", if smoke { 10.0 } else { 300.0 }),
        every: args.arg("--every", if smoke { 2.0 } else { 30.0 }),
        clients: args.arg("--clients", 4),
        slow: args.arg("--slow", 16),
        binary: args
            .value("--binary")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/stardag-server")
            }),
    }
}

/// The request classes counted per interval.
#[derive(Clone, Copy)]
enum Class {
    V1 = 0,
    V2 = 1,
    Abuse = 2,
}

/// Counters shared by every client; the sampler swaps the interval ones to zero.
#[derive(Default)]
struct Stats {
    requests: [AtomicU64; 3],
    /// Legitimate requests answered >= 400, or lost to a transport error.
    legit_failed: AtomicU64,
    server_errors: AtomicU64,
    server_errors_total: AtomicU64,
    /// What each abusive kind got back: (kind, status or error) -> count.
    abuse: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// The first few failures of legitimate requests, to say what went wrong.
    failures: Mutex<Vec<String>>,
    /// Slowloris connections the server closed, and the longest any was held (ms).
    slow_closed: AtomicU64,
    slow_longest_ms: AtomicU64,
}

impl Stats {
    fn count(&self, class: Class, status: Option<u16>) {
        self.requests[class as usize].fetch_add(1, Ordering::Relaxed);
        if status.is_some_and(|s| s >= 500) {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
            self.server_errors_total.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn legit(&self, class: Class, what: &str, r: &Result<(u16, Bytes), String>) {
        self.count(class, r.as_ref().ok().map(|(s, _)| *s));
        let failure = match r {
            Ok((s, _)) if *s < 400 => return,
            Ok((s, body)) => format!(
                "{what}: {s} {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
            Err(e) => format!("{what}: {e}"),
        };
        self.legit_failed.fetch_add(1, Ordering::Relaxed);
        let mut f = self.failures.lock().unwrap();
        if f.len() < 20 {
            f.push(failure);
        }
    }

    fn abusive(&self, kind: &'static str, r: &Result<u16, String>) {
        self.count(Class::Abuse, r.as_ref().ok().copied());
        let outcome = match r {
            Ok(s) => s.to_string(),
            Err(e) => e.clone(),
        };
        *self
            .abuse
            .lock()
            .unwrap()
            .entry((kind, outcome))
            .or_default() += 1;
    }
}

/// A legitimate SDK client: one keep-alive connection, reopened after a transport error.
struct Client {
    conn: Conn,
    addr: SocketAddr,
    headers: Vec<(String, String)>,
    class: Class,
    stats: Arc<Stats>,
}

impl Client {
    async fn new(
        addr: SocketAddr,
        headers: Vec<(String, String)>,
        class: Class,
        stats: Arc<Stats>,
    ) -> Client {
        Client {
            conn: Conn::open(addr, headers.clone()).await,
            addr,
            headers,
            class,
            stats,
        }
    }

    /// One request; its JSON answer when it succeeded.
    async fn req(&mut self, method: Method, path: &str, body: Option<&Value>) -> Option<Value> {
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let r = self.conn.call(method, path, body).await;
        self.stats.legit(self.class, &what, &r);
        match r {
            Ok((s, bytes)) if s < 400 => {
                Some(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
            }
            Ok(_) => None,
            Err(_) => {
                self.conn = Conn::open(self.addr, self.headers.clone()).await;
                None
            }
        }
    }
}

/// Tasks per v1 build and members per v2 plan (a chain, then the root).
const TASKS: usize = 10;

const SEARCHES: [&str; 4] = [
    "/api/v1/tasks/search?page_size=50",
    "/api/v1/tasks/search?page_size=50&filter=task_name%3A~%3Asoak1",
    "/api/v1/tasks/search?page_size=50&filter=status%3A%3D%3Acompleted&sort=task_name:asc",
    "/api/v1/tasks/search?page_size=20&filter=param.k%3A%3E%3D%3A5&include_assets=report",
];

/// One v1 build as the 0.1.0 SDK runs it: register a chain of tasks, run them, upload
/// the root's assets, read its metadata, search, and close the build. Every fourth
/// build fails a task with a long message in the query string (as the SDK sends it).
async fn v1_build(c: &mut Client, tag: &str, n: u64) {
    let ids: Vec<String> = (0..TASKS).map(|k| format!("{tag}-{k}")).collect();
    let root = &ids[TASKS - 1];
    let body = json!({"commit_hash": "soak", "root_task_ids": [root]});
    let Some(build) = c.req(Method::POST, "/api/v1/builds", Some(&body)).await else {
        return;
    };
    let build = build["id"].as_str().unwrap_or_default().to_string();
    let tasks = format!("/api/v1/builds/{build}/tasks");
    for (k, id) in ids.iter().enumerate() {
        let deps: Vec<&String> = ids[..k].iter().rev().take(1).collect();
        let body = json!({
            "task_id": id, "task_namespace": "soak", "task_name": format!("Soak{}", k % 3),
            "task_data": {"k": k, "tag": tag}, "dependency_task_ids": deps,
        });
        c.req(Method::POST, &tasks, Some(&body)).await;
    }
    let fails = n.is_multiple_of(4);
    for (k, id) in ids.iter().enumerate() {
        c.req(Method::POST, &format!("{tasks}/{id}/start"), None)
            .await;
        let end = if fails && k == TASKS / 2 {
            format!(
                "{tasks}/{id}/fail?error_message={}",
                "Traceback%20line%0A".repeat(200)
            )
        } else {
            format!("{tasks}/{id}/complete")
        };
        c.req(Method::POST, &end, None).await;
    }
    let assets = json!([
        {"type": "markdown", "name": "report", "body": {"content": format!("# {tag}\n\nAll {TASKS} tasks ran.")}},
        {"type": "json", "name": "metrics", "body": {"loss": 0.25, "n": n}},
    ]);
    c.req(
        Method::POST,
        &format!("{tasks}/{root}/assets"),
        Some(&assets),
    )
    .await;
    c.req(Method::GET, &format!("/api/v1/tasks/{root}/metadata"), None)
        .await;
    c.req(Method::GET, SEARCHES[n as usize % SEARCHES.len()], None)
        .await;
    c.req(Method::GET, &tasks, None).await;
    let close = if fails {
        "fail?error_message=task%20failed"
    } else {
        "complete"
    };
    c.req(
        Method::POST,
        &format!("/api/v1/builds/{build}/{close}"),
        None,
    )
    .await;
}

/// A v2 registration item; `declared` upstream ids make it expanded.
fn item(task: &str, declared: Option<Vec<String>>) -> Value {
    json!({
        "task_id": task, "task_namespace": "soak", "task_name": "Soak", "version": null,
        "output_uri": null, "instance_hash": task, "body": {"task": task},
        "declared_upstreams": declared, "observed_complete": false,
        "observed_at": "2026-01-01T00:00:00Z",
    })
}

/// One v2 build as the current SDK runs it: build, plan with the root, members (a chain
/// and the expanded root), seal, claiming start + complete of each member in order with
/// frontier reads between, complete the build; every fifth build lists builds.
async fn v2_build(c: &mut Client, deployment: &str, tag: &str, n: u64) {
    let ids: Vec<String> = (0..TASKS).map(|k| format!("{tag}-{k}")).collect();
    let root = &ids[TASKS - 1];
    let build = uuid::Uuid::now_v7().to_string();
    let body = json!({"id": build, "root_task_ids": [root]});
    if c.req(Method::POST, "/api/v2/builds", Some(&body))
        .await
        .is_none()
    {
        return;
    }
    let plan = uuid::Uuid::now_v7().to_string();
    let body = json!({"plan_id": plan, "deployment_id": deployment, "settings": {}, "roots": [item(root, None)]});
    if c.req(
        Method::POST,
        &format!("/api/v2/builds/{build}/plans"),
        Some(&body),
    )
    .await
    .is_none()
    {
        return;
    }
    let items: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(k, id)| item(id, Some(ids[..k].iter().rev().take(1).cloned().collect())))
        .collect();
    c.req(
        Method::POST,
        &format!("/api/v2/plans/{plan}/members"),
        Some(&json!({"items": items})),
    )
    .await;
    c.req(
        Method::POST,
        &format!("/api/v2/plans/{plan}/seal"),
        Some(&Value::Null),
    )
    .await;
    let frontier = format!("/api/v2/builds/{build}/frontier");
    for (k, id) in ids.iter().enumerate() {
        if k % 3 == 0 {
            c.req(Method::GET, &frontier, None).await;
        }
        let base = format!("/api/v2/plans/{plan}/members/{id}");
        let exec = uuid::Uuid::now_v7().to_string();
        let start = json!({"execution_id": exec, "claim": true, "claim_ttl_seconds": 120, "executor": "soak"});
        c.req(Method::POST, &format!("{base}/start"), Some(&start))
            .await;
        c.req(
            Method::POST,
            &format!("{base}/complete"),
            Some(&json!({"execution_id": exec})),
        )
        .await;
    }
    c.req(Method::GET, &frontier, None).await;
    c.req(
        Method::POST,
        &format!("/api/v2/builds/{build}/complete"),
        Some(&json!({"force": false})),
    )
    .await;
    if n.is_multiple_of(5) {
        c.req(Method::GET, "/api/v2/builds?limit=100", None).await;
    }
}

/// Runs v1 (or v2) builds back to back until `deadline`.
async fn sdk_client(
    addr: SocketAddr,
    headers: Vec<(String, String)>,
    v2: bool,
    client: usize,
    stats: Arc<Stats>,
    deadline: Instant,
) {
    let class = if v2 { Class::V2 } else { Class::V1 };
    let mut c = Client::new(addr, headers, class, stats).await;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let deployment = if v2 {
        let body = json!({"id": uuid::Uuid::now_v7(), "kind": "local", "code_id": "soak"});
        let d = c
            .req(Method::POST, "/api/v2/deployments", Some(&body))
            .await;
        d.and_then(|d| d["id"].as_str().map(str::to_string))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mut n = 0u64;
    while Instant::now() < deadline {
        // 64 characters at most: 12 + client + build number + task number.
        let tag = format!("{}-{client}-{n}", &run[20..]);
        if v2 {
            v2_build(&mut c, &deployment, &tag, n).await;
        } else {
            v1_build(&mut c, &tag, n).await;
        }
        n += 1;
    }
}

/// One request on a fresh connection, written as raw bytes (heads no client library
/// would build): the answer's status, or what happened instead. The body is written
/// while the answer is read, so an early refusal (413) is seen.
async fn raw_exchange(addr: SocketAddr, head: &[u8], body: &[u8]) -> Result<u16, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut rd, mut wr) = stream.split();
        let write = async {
            wr.write_all(head).await?;
            wr.write_all(body).await
        };
        let read = read_status(&mut rd);
        let (_, status) = tokio::join!(write, read);
        status
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .unwrap_or_else(|_| Err("no answer in 60 s".into()))
}

/// Reads up to the end of an answer's head and returns its status code.
async fn read_status(rd: &mut (impl AsyncReadExt + Unpin)) -> Result<u16, String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match rd.read(&mut buf).await {
            Ok(0) => return Err("closed without an answer".into()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {}", e.kind())),
        }
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "unparsable status line".into())
}

fn post_head(path: &str, headers: &str, len: usize) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: soak\r\nconnection: close\r\ncontent-type: application/json\r\n{headers}content-length: {len}\r\n\r\n"
    )
    .into_bytes()
}

/// The abusive requests, each a kind and its raw bytes; one of them is sent per step.
fn abusive_requests(api_key: &str) -> Vec<(&'static str, Vec<u8>, Bytes)> {
    const LIMIT: usize = 8 * 1024 * 1024;
    let key = format!("x-api-key: {api_key}\r\n");
    let mut out = Vec::new();

    // Login bodies of 8 MiB and one byte more: login takes 8 KiB at most
    // (`PRE_AUTH_BODY_BYTES`), so both are 413 without being buffered.
    let prefix = r#"{"email":"admin@localhost","password":""#;
    let pad = LIMIT - prefix.len() - 2;
    let at_limit = format!("{prefix}{}\"}}", "p".repeat(pad));
    assert_eq!(at_limit.len(), LIMIT);
    out.push((
        "login 8 MiB body",
        post_head("/api/v1/auth/login", "", LIMIT),
        Bytes::from(at_limit),
    ));
    out.push((
        "login 8 MiB + 1 body",
        post_head("/api/v1/auth/login", "", LIMIT + 1),
        Bytes::from(vec![b'x'; LIMIT + 1]),
    ));

    // With a valid key the general limit applies (D22): a body of exactly 8 MiB is
    // read and served (its padding key is ignored), one byte more is 413.
    let prefix = r#"{"commit_hash":"soak","padding":""#;
    let at_limit = format!("{prefix}{}\"}}", "p".repeat(LIMIT - prefix.len() - 2));
    assert_eq!(at_limit.len(), LIMIT);
    out.push((
        "build 8 MiB body (API key)",
        post_head("/api/v1/builds", &key, LIMIT),
        Bytes::from(at_limit),
    ));
    out.push((
        "build 8 MiB + 1 body (API key)",
        post_head("/api/v1/builds", &key, LIMIT + 1),
        Bytes::from(vec![b'x'; LIMIT + 1]),
    ));

    // A gzip bomb: 64 MiB of zeros in ~64 KiB (413 on the decoded size).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..64 {
        gz.write_all(&[0u8; 1024 * 1024]).expect("gzip");
    }
    let bomb = gz.finish().expect("gzip");
    let h = format!("{key}content-encoding: gzip\r\n");
    out.push((
        "gzip bomb (64 MiB decoded)",
        post_head("/api/v1/builds", &h, bomb.len()),
        Bytes::from(bomb),
    ));

    // Malformed JSON with a valid key: truncated, wrong type, invalid UTF-8, too deep.
    let bad: [(&str, &str, Vec<u8>); 4] = [
        (
            "malformed: truncated",
            "/api/v1/builds",
            br#"{"commit_hash": "#.to_vec(),
        ),
        (
            "malformed: array for object",
            "/api/v1/tasks",
            b"[1, 2, 3]".to_vec(),
        ),
        (
            "malformed: invalid UTF-8",
            "/api/v2/builds",
            b"{\"id\": \"\xff\xfe\"}".to_vec(),
        ),
        (
            "malformed: nested 100 000 deep",
            "/api/v2/deployments",
            b"[".repeat(100_000),
        ),
    ];
    for (kind, path, body) in bad {
        out.push((kind, post_head(path, &key, body.len()), Bytes::from(body)));
    }

    // Request targets: just under the 64 KiB limit (searched), over it, and 1 MiB.
    for (kind, len) in [
        ("target 64 KiB - 2", 65_534),
        ("target 64 KiB + 1", 65_537),
        ("target 1 MiB", 1 << 20),
    ] {
        let base = "/api/v1/tasks/search?page_size=5&q=";
        let target = format!("{base}{}", "q".repeat(len - base.len()));
        let head = format!("GET {target} HTTP/1.1\r\nhost: soak\r\nconnection: close\r\n{key}\r\n");
        out.push((kind, head.into_bytes(), Bytes::new()));
    }
    out
}

/// Sends the abusive requests round-robin until `deadline`, each on a new connection.
/// The 8 MiB ones are paced (one every 250 ms) so that they do not drown the rest.
async fn abuser(
    addr: SocketAddr,
    requests: Vec<(&'static str, Vec<u8>, Bytes)>,
    stats: Arc<Stats>,
    deadline: Instant,
) {
    let mut i = 0;
    while Instant::now() < deadline {
        let (kind, head, body) = &requests[i % requests.len()];
        let r = raw_exchange(addr, head, body).await;
        stats.abusive(kind, &r);
        let pause = if body.len() > 1 << 20 { 250 } else { 5 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        i += 1;
    }
}

/// Wrong credentials in a loop on keep-alive connections: made-up API keys of the right
/// shape and garbage bearer tokens, 50 requests per connection.
async fn bad_credentials(addr: SocketAddr, stats: Arc<Stats>, deadline: Instant) {
    let mut n = 0u64;
    while Instant::now() < deadline {
        let header = if n.is_multiple_of(2) {
            let fake = uuid::Uuid::now_v7().simple().to_string();
            (
                "x-api-key".to_string(),
                format!("sk_{}_{}", &fake[..6], fake),
            )
        } else {
            (
                "authorization".to_string(),
                format!("Bearer eyJhbGciOiJFUzI1NiJ9.{n}.garbage"),
            )
        };
        let kind = if n.is_multiple_of(2) {
            "bad API key"
        } else {
            "bad bearer token"
        };
        let mut conn = Conn::open(addr, vec![header]).await;
        for path in [
            "/api/v1/builds",
            "/api/v2/builds?limit=100",
            "/api/v1/tasks/search",
        ]
        .iter()
        .cycle()
        .take(50)
        {
            let r = conn.call(Method::GET, path, None).await.map(|(s, _)| s);
            stats.abusive(kind, &r);
            if r.is_err() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        n += 1;
    }
}

/// A slowloris connection, again and again: a request head sent one header every 2 s,
/// never finished. The server must close it (header read timeout) and answer nothing
/// else; how long it was held is recorded.
async fn slowloris(addr: SocketAddr, stats: Arc<Stats>, deadline: Instant) {
    while Instant::now() < deadline {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            stats.abusive("slowloris", &Err("connect failed".into()));
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let opened = Instant::now();
        let (mut rd, mut wr) = stream.split();
        let drip = async {
            let _ = wr
                .write_all(b"GET /health HTTP/1.1\r\nhost: soak\r\n")
                .await;
            for i in 0u64.. {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if Instant::now() >= deadline
                    || wr
                        .write_all(format!("x-slow-{i}: a\r\n").as_bytes())
                        .await
                        .is_err()
                {
                    break;
                }
            }
        };
        let outcome = tokio::select! {
            r = read_status(&mut rd) => Some(r),
            _ = drip => None,
        };
        // Cut short by the end of the run: not the server's doing.
        let Some(r) = outcome else { break };
        let held = opened.elapsed().as_millis() as u64;
        stats.slow_closed.fetch_add(1, Ordering::Relaxed);
        stats.slow_longest_ms.fetch_max(held, Ordering::Relaxed);
        let r = r.map_err(|e| {
            if e.starts_with("closed") {
                "closed by the server".to_string()
            } else {
                e
            }
        });
        stats.abusive("slowloris", &r);
    }
}

/// One table row's figures, taken from `/proc` and the data dir.
struct Sample {
    rss_mib: f64,
    fds: usize,
}

fn mib(bytes: Option<u64>) -> f64 {
    bytes.unwrap_or(0) as f64 / (1024.0 * 1024.0)
}

fn print_row(target: &Target, stats: &Stats, elapsed: f64) -> Sample {
    let sample = Sample {
        rss_mib: target.rss_kib("VmRSS:").unwrap_or(0) as f64 / 1024.0,
        fds: target.open_fds().unwrap_or(0),
    };
    let take = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
    println!(
        "{:>7.0} {:>8.1} {:>5} {:>8.1} {:>9.2} {:>8} {:>8} {:>9} {:>9} {:>6} {:>9}",
        elapsed,
        sample.rss_mib,
        sample.fds,
        mib(target.db_bytes()),
        mib(target.journal_bytes()),
        take(&stats.requests[Class::V1 as usize]),
        take(&stats.requests[Class::V2 as usize]),
        take(&stats.requests[Class::Abuse as usize]),
        take(&stats.legit_failed),
        take(&stats.server_errors),
        stats.server_errors_total.load(Ordering::Relaxed),
    );
    sample
}

fn main() {
    let opts = options();
    // One thread drives every connection: the server gets the other core (as in `load`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let passed = runtime.block_on(run(opts));
    std::process::exit(if passed { 0 } else { 1 });
}

async fn run(opts: Options) -> bool {
    let mut target = start_server(&opts.binary).await;
    let stats = Arc::new(Stats::default());
    println!(
        "stardag-server soak: {} s, {} v1 + {} v2 SDK clients, abusive clients, {} slowloris connections, rate limits off\n",
        opts.seconds, opts.clients, opts.clients, opts.slow
    );
    println!(
        "{:>7} {:>8} {:>5} {:>8} {:>9} {:>8} {:>8} {:>9} {:>9} {:>6} {:>9}",
        "elapsed",
        "RSS MiB",
        "fds",
        "db MiB",
        "journal",
        "v1 req",
        "v2 req",
        "abuse req",
        "legit err",
        "5xx",
        "5xx total"
    );
    let mut samples = vec![(0.0, print_row(&target, &stats, 0.0))];

    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(opts.seconds);
    let mut clients = Vec::new();
    for client in 0..opts.clients {
        for v2 in [false, true] {
            let (key, s) = (target.key_headers(), stats.clone());
            clients.push(tokio::spawn(sdk_client(
                target.addr,
                key,
                v2,
                client,
                s,
                deadline,
            )));
        }
    }
    let requests = abusive_requests(&target.api_key);
    clients.push(tokio::spawn(abuser(
        target.addr,
        requests,
        stats.clone(),
        deadline,
    )));
    clients.push(tokio::spawn(bad_credentials(
        target.addr,
        stats.clone(),
        deadline,
    )));
    for _ in 0..opts.slow {
        clients.push(tokio::spawn(slowloris(
            target.addr,
            stats.clone(),
            deadline,
        )));
    }

    let mut next = opts.every;
    while next <= opts.seconds + 1e-9 {
        tokio::time::sleep_until((started + Duration::from_secs_f64(next)).into()).await;
        if let Some(Ok(Some(status))) = target.child.as_mut().map(|c| c.try_wait()) {
            println!("the server exited during the run: {status}");
            return false;
        }
        samples.push((next, print_row(&target, &stats, next)));
        next += opts.every;
    }
    for c in clients {
        let _ = tokio::time::timeout(Duration::from_secs(60), c).await;
    }
    summary(&mut target, &stats, &samples, opts.seconds).await
}

/// Prints what the abusive clients got and the verdict; stops the server with SIGTERM
/// (a graceful stop right after the load) and returns whether the bar was met.
async fn summary(
    target: &mut Target,
    stats: &Stats,
    samples: &[(f64, Sample)],
    seconds: f64,
) -> bool {
    println!("\nabusive requests, by answer:");
    for ((kind, outcome), n) in stats.abuse.lock().unwrap().iter() {
        println!("  {kind:<32} {outcome:<28} {n:>8}");
    }
    println!(
        "slowloris connections closed by the server: {}, longest held {:.1} s",
        stats.slow_closed.load(Ordering::Relaxed),
        stats.slow_longest_ms.load(Ordering::Relaxed) as f64 / 1000.0
    );
    for f in stats.failures.lock().unwrap().iter() {
        println!("failed legitimate request: {f}");
    }
    // The reference row: the one at 60 s (a fifth of the run when it is shorter), after
    // caches and buffers have filled.
    let at = (seconds / 5.0).min(60.0);
    let (ref_at, reference) = samples
        .iter()
        .find(|(t, _)| *t >= at)
        .unwrap_or(&samples[0]);
    let (last_at, last) = samples.last().expect("rows");
    let flat = last.rss_mib <= 1.5 * reference.rss_mib;
    let errors = stats.server_errors_total.load(Ordering::Relaxed);
    let stopped = stop_server(target).await;
    println!(
        "memory {}: RSS {:.1} MiB at {last_at:.0} s vs {:.1} MiB at {ref_at:.0} s ({:.2}x; bar 1.5x); fds {} -> {}; 5xx: {errors}; SIGTERM after the run: {stopped}",
        if flat { "flat" } else { "GREW" },
        last.rss_mib,
        reference.rss_mib,
        last.rss_mib / reference.rss_mib.max(0.001),
        reference.fds,
        last.fds,
    );
    let passed = flat && errors == 0;
    println!("soak {}", if passed { "PASSED" } else { "FAILED" });
    passed
}

/// SIGTERM and wait (30 s at most); how the server exited.
async fn stop_server(target: &mut Target) -> String {
    let Some(child) = target.child.as_mut() else {
        return "no server".into();
    };
    let Some(pid) = child.id() else {
        return "already exited".into();
    };
    // SAFETY: kill only sends a signal to the server this benchmark started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
        Ok(Ok(status)) => format!("exited, {status}"),
        Ok(Err(e)) => format!("wait failed: {e}"),
        Err(_) => "still running after 30 s".into(),
    }
}
