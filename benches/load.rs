//! HTTP load benchmark: the release server under C concurrent keep-alive clients.
//!
//! `cargo bench --bench load` starts `target/release/stardag-server` on a temporary data
//! dir (or targets `--url URL --api-key KEY`), seeds data, drives each operation for a
//! bounded time and prints one table (requests, errors, req/s, p50/p90/p99/max) plus the
//! server's peak RSS, database size and group-commit figures. Every write is durable.
//! The `/api/v1` rows are the SDK 0.1.0 operations; the `v2` rows (`support/v2_rows.rs`)
//! those of the current SDK.
//!
//! Options: `--clients N` (16), `--seconds S` per operation (5), `--search-tasks N`
//! tasks seeded for the search rows (10000), `--smoke` (1 s per operation, small seed:
//! checks the benchmark works), `--binary PATH`, `--url URL --api-key KEY`, `--only TEXT`
//! (only the rows whose name contains TEXT, e.g. to profile one operation), `--threads N`
//! (load generator threads, 1).

#[path = "support/args.rs"]
mod args;
use args::Args;
#[path = "support/server.rs"]
mod server;
use server::{spawn_server, start_server, Conn, Target};
#[path = "support/ui_rows.rs"]
mod ui_rows;
#[path = "support/v2_rows.rs"]
mod v2_rows;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

struct Options {
    smoke: bool,
    /// Tasks to register for the scale row (RSS and restart time); 0 skips it.
    scale_tasks: usize,
    clients: usize,
    seconds: f64,
    search_tasks: usize,
    /// Concurrent clients of the search rows (issue 20: 4).
    search_clients: usize,
    binary: PathBuf,
    url: Option<String>,
    api_key: Option<String>,
    /// Runs only the rows whose name contains this text (for profiling one operation).
    only: Option<String>,
}

impl Options {
    fn wants(&self, row: &str) -> bool {
        self.only.as_deref().is_none_or(|o| row.contains(o))
    }
}

const USAGE: &str = "\
usage: cargo bench --bench load [-- OPTIONS]

  --clients N         concurrent keep-alive clients (16)
  --seconds S         seconds per operation (5; 1 with --smoke)
  --search-tasks N    tasks seeded for the search rows (10000; 500 with --smoke)
  --search-clients N  concurrent clients of the search rows (4), beside one writing build
  --scale-tasks N     register N more tasks, then time a restart (0: skip)
  --smoke             a short run that checks the benchmark works
  --only TEXT         only the rows whose name contains TEXT
  --threads N         load generator threads (1)
  --binary PATH       server binary (target/release/stardag-server)
  --url URL --api-key KEY
                      drive a running server instead of starting one";

/// The options, and the load generator's thread count.
fn options() -> (Options, usize) {
    let args = Args::parse(
        USAGE,
        &[
            "--clients",
            "--seconds",
            "--search-tasks",
            "--search-clients",
            "--scale-tasks",
            "--only",
            "--threads",
            "--binary",
            "--url",
            "--api-key",
        ],
        &["--smoke"],
    );
    let smoke = args.flag("--smoke");
    let opts = Options {
        smoke,
        scale_tasks: args.arg("--scale-tasks", 0),
        clients: args.arg("--clients", 16),
        seconds: args.arg("--seconds", if smoke { 1.0 } else { 5.0 }),
        search_tasks: args.arg("--search-tasks", if smoke { 500 } else { 10_000 }),
        search_clients: args.arg("--search-clients", 4),
        binary: args
            .value("--binary")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/stardag-server")
            }),
        url: args.value("--url"),
        api_key: args.value("--api-key"),
        only: args.value("--only"),
    };
    (opts, args.arg("--threads", 1))
}

// The server, its connections and credentials: `support/server.rs`.

impl Target {
    /// CPU time used so far, in clock ticks: the whole server, and its store-writer
    /// thread (the serial part of every write).
    fn cpu_ticks(&self) -> Option<(u64, u64)> {
        let pid = self.child.as_ref()?.id()?;
        let process = stat_ticks(&format!("/proc/{pid}/stat"))?;
        let writer = std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
            .find(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "store-writer")
            })
            .and_then(|t| stat_ticks(&t.path().join("stat").to_string_lossy()))?;
        Some((process, writer))
    }
}

/// utime + stime of a `/proc/.../stat` file (fields 14 and 15, after the `(comm)`).
fn stat_ticks(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so fields 14 and 15 are at 11 and 12.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Microseconds per clock tick of `/proc` CPU times.
fn tick_us() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1e6 / if hz > 0 { hz as f64 } else { 100.0 }
}

/// Writer counters from `/metrics`: commits, operations, fsyncs (database + journal).
async fn store_counters(addr: SocketAddr) -> (u64, u64, u64) {
    let mut c = Conn::open(addr, vec![]).await;
    let Ok((_, body)) = c.call(Method::GET, "/metrics", None).await else {
        return (0, 0, 0);
    };
    let text = String::from_utf8_lossy(&body);
    let metric = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        metric("stardag_store_commits_total "),
        metric("stardag_store_write_ops_total "),
        metric("stardag_store_durable_commits_total ")
            + metric("stardag_store_journal_syncs_total "),
    )
}

struct Row {
    name: String,
    requests: usize,
    errors: u64,
    secs: f64,
    clients: usize,
    lat_us: Vec<u64>,
    commits: u64,
    ops: u64,
    syncs: u64,
    /// Server CPU time (all threads, µs) and the store writer's, over the row.
    cpu_us: Option<(f64, f64)>,
}

/// Drives `op` from `clients` connections for `seconds`. `op` gets the connection, the
/// client number and a per-client counter, and makes one or more requests, returning
/// how many it made and whether they all succeeded.
async fn drive<F>(
    name: &str,
    target: &Target,
    headers: Vec<(String, String)>,
    clients: usize,
    seconds: f64,
    op: F,
) -> Row
where
    F: for<'a> Fn(&'a mut Conn, usize, u64) -> BoxFut<'a, (usize, bool)> + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let errors = Arc::new(AtomicU64::new(0));
    let (c0, o0, s0) = store_counters(target.addr).await;
    let cpu0 = target.cpu_ticks();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let op = op.clone();
        let errors = errors.clone();
        let headers = headers.clone();
        let addr = target.addr;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr, headers).await;
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let (n, ok) = op(&mut conn, client, i).await;
                let per = t.elapsed().as_micros() as u64 / n.max(1) as u64;
                lat.extend(std::iter::repeat_n(per, n));
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
            lat
        }));
    }
    let mut lat_us = Vec::new();
    for t in tasks {
        lat_us.extend(t.await.expect("client"));
    }
    let secs = started.elapsed().as_secs_f64();
    let (c1, o1, s1) = store_counters(target.addr).await;
    let cpu_us = match (cpu0, target.cpu_ticks()) {
        (Some((p0, w0)), Some((p1, w1))) => Some((
            p1.saturating_sub(p0) as f64 * tick_us(),
            w1.saturating_sub(w0) as f64 * tick_us(),
        )),
        _ => None,
    };
    lat_us.sort_unstable();
    Row {
        name: name.into(),
        requests: lat_us.len(),
        errors: errors.load(Ordering::Relaxed),
        secs,
        clients,
        lat_us,
        commits: c1.saturating_sub(c0),
        ops: o1.saturating_sub(o0),
        syncs: s1.saturating_sub(s0),
        cpu_us,
    }
}

fn ok(r: &Result<(u16, Bytes), String>) -> bool {
    matches!(r, Ok((s, _)) if *s < 400)
}

async fn new_build(conn: &mut Conn, env: Option<&str>) -> String {
    let path = with_env("/api/v1/builds", env);
    let (_, body) = conn
        .call(
            Method::POST,
            &path,
            Some(&json!({"commit_hash": "bench", "root_task_ids": []})),
        )
        .await
        .expect("create build");
    let v: Value = serde_json::from_slice(&body).expect("build json");
    v["id"].as_str().expect("build id").to_string()
}

fn with_env(path: &str, env: Option<&str>) -> String {
    match env {
        Some(e) if path.contains('?') => format!("{path}&environment_id={e}"),
        Some(e) => format!("{path}?environment_id={e}"),
        None => path.to_string(),
    }
}

fn task_body(id: &str, i: u64) -> Value {
    json!({
        "task_id": id,
        "task_namespace": "bench",
        "task_name": format!("Task{}", i % 7),
        "task_data": {"x": i, "group": format!("g{}", i % 100), "ratio": (i % 1000) as f64 / 10.0},
    })
}

/// Registration with the given credential; returns the row and the hashes registered.
async fn register_row(
    name: &str,
    target: &Target,
    headers: Vec<(String, String)>,
    env: Option<String>,
    opts: &Options,
) -> Row {
    let mut setup = Conn::open(target.addr, headers.clone()).await;
    let build = new_build(&mut setup, env.as_deref()).await;
    let prefix = uuid::Uuid::now_v7().simple().to_string();
    drive(
        name,
        target,
        headers,
        opts.clients,
        opts.seconds,
        move |conn, client, i| {
            let path = with_env(&format!("/api/v1/builds/{build}/tasks"), env.as_deref());
            let body = task_body(&format!("{prefix}-{client}-{i}"), i);
            Box::pin(async move {
                let r = conn.call(Method::POST, &path, Some(&body)).await;
                (1, ok(&r))
            })
        },
    )
    .await
}

/// The latencies with wrk's coordinated-omission correction, sorted: while one request
/// of a client took `l`, that client did not send the requests it would have sent every
/// `interval` (its mean time per request), so they count as waiting `l - interval`,
/// `l - 2 * interval`, … (while above `interval`). Closed-loop percentiles hide a stall
/// that holds up every client at once; these show what clients arriving at a steady
/// rate would have seen.
fn corrected(sorted: &[u64], interval: u64) -> Vec<u64> {
    let interval = interval.max(1);
    let mut out = sorted.to_vec();
    for &l in sorted.iter().rev().take_while(|&&l| l >= 2 * interval) {
        let mut m = l - interval;
        while m > interval {
            out.push(m);
            m -= interval;
        }
    }
    out.sort_unstable();
    out
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

/// `total` µs shared out over `n`, as a column ("-" when unknown or nothing to share).
fn micros(total: Option<f64>, n: u64) -> String {
    match total {
        Some(t) if n > 0 => format!("{:.0}µs", t / n as f64),
        _ => "-".into(),
    }
}

fn print(rows: &[Row]) {
    println!(
        "{:<38} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>9} {:>8} {:>8}",
        "operation",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "p99co ms",
        "batch",
        "fsyncs/s",
        "cpu/req",
        "write/op"
    );
    for r in rows {
        let batch = if r.commits > 0 {
            r.ops as f64 / r.commits as f64
        } else {
            0.0
        };
        // Each client's mean time per request.
        let interval = (r.secs * 1e6 * r.clients as f64 / r.requests.max(1) as f64) as u64;
        println!(
            "{:<38} {:>9} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>7.1} {:>9.0} {:>8} {:>8}",
            r.name,
            r.requests,
            r.errors,
            r.requests as f64 / r.secs,
            pct(&r.lat_us, 0.50),
            pct(&r.lat_us, 0.90),
            pct(&r.lat_us, 0.99),
            r.lat_us.last().copied().unwrap_or(0) as f64 / 1000.0,
            pct(&corrected(&r.lat_us, interval), 0.99),
            batch,
            r.syncs as f64 / r.secs,
            micros(r.cpu_us.map(|c| c.0), r.requests as u64),
            micros(r.cpu_us.map(|c| c.1), r.ops),
        );
    }
}

/// A seeded task for the search rows: the registration body's fields plus a parameter
/// every task shares and two halves overlapping on 1 % (issue 20's query shapes).
fn search_body(id: &str, i: u64) -> Value {
    let mut body = task_body(id, i);
    body["task_data"]["project"] = json!("atlas");
    body["task_data"]["early"] = json!(i % 1000 < 505);
    body["task_data"]["late"] = json!(i % 1000 >= 495);
    body
}

/// Registers `n` tasks (rounded up to whole rounds of `clients`) in a new build.
async fn seed_for_search(target: &Target, n: usize, clients: usize) {
    let headers = target.key_headers();
    let mut setup = Conn::open(target.addr, headers.clone()).await;
    let build = new_build(&mut setup, None).await;
    let per = n.div_ceil(clients);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let headers = headers.clone();
        let build = build.clone();
        let addr = target.addr;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr, headers).await;
            for i in 0..per {
                let i = (client * per + i) as u64;
                let id = format!("seed-{i:08}");
                let path = format!("/api/v1/builds/{build}/tasks");
                let _ = conn
                    .call(Method::POST, &path, Some(&search_body(&id, i)))
                    .await;
                // Every third task completes, so status filters have work to do.
                if i.is_multiple_of(3) {
                    let _ = conn
                        .call(Method::POST, &format!("{path}/{id}/start"), None)
                        .await;
                    let _ = conn
                        .call(Method::POST, &format!("{path}/{id}/complete"), None)
                        .await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("seed");
    }
}

/// Registers `--scale-tasks` more tasks, reports memory and file size, then stops the
/// server (SIGTERM, clean close) and times a restart on the same data dir.
async fn scale(mut target: Target, opts: &Options) {
    let (Some(mut child), Some(dir)) = (target.child.take(), target.data_dir.take()) else {
        println!("scale run skipped: needs a server started by the benchmark");
        return;
    };
    let started = Instant::now();
    seed_for_search(&target, opts.scale_tasks, 64).await;
    let secs = started.elapsed().as_secs_f64();
    let pid = child.id().expect("pid");
    let rss = |key: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0) as f64
            / 1024.0
    };
    println!(
        "\nscale: registered {} more tasks in {secs:.0} s (64 clients)",
        opts.scale_tasks
    );
    println!(
        "server RSS now:        {:.1} MiB (peak {:.1} MiB)",
        rss("VmRSS:"),
        rss("VmHWM:")
    );
    let db = dir.path().join("stardag.redb");
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "database file:         {:.1} MiB",
        size as f64 / (1024.0 * 1024.0)
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait().await;
    let restart = Instant::now();
    let (mut again, _) = spawn_server(&opts.binary, dir.path()).await;
    println!(
        "restart to first answer: {:.0} ms (after a clean shutdown)",
        restart.elapsed().as_secs_f64() * 1000.0
    );
    let _ = again.kill().await;
}

/// The search rows (issue 20's shapes), page of 50; seeded tasks: names `Task0`..`Task6`,
/// `x` distinct, `group` g0..g99 (1 % each), `ratio` 0..99.9, every third completed,
/// `project` shared.
const SEARCHES: [(&str, &str); 14] = [
    ("latest page", "/api/v1/tasks/search?page_size=50"),
    ("oldest page", "/api/v1/tasks/search?page_size=50&sort=created_at:asc"),
    ("by name", "/api/v1/tasks/search?page_size=50&sort=task_name:asc"),
    ("q=k3", "/api/v1/tasks/search?page_size=50&q=k3"),
    ("task_name~k3", "/api/v1/tasks/search?page_size=50&filter=task_name%3A~%3Ak3"),
    ("status:=completed", "/api/v1/tasks/search?page_size=50&filter=status%3A%3D%3Acompleted"),
    ("status:=completed by name", "/api/v1/tasks/search?page_size=50&filter=status%3A%3D%3Acompleted&sort=task_name:desc"),
    ("shared AND group=g42", "/api/v1/tasks/search?page_size=50&filter=param.project%3A%3D%3Aatlas,param.group%3A%3D%3Ag42"),
    ("shared AND ratio<50", "/api/v1/tasks/search?page_size=50&filter=param.project%3A%3D%3Aatlas,param.ratio%3A%3C%3A50"),
    ("two halves, overlap 1 %", "/api/v1/tasks/search?page_size=50&filter=param.early%3A%3D%3Atrue,param.late%3A%3D%3Atrue"),
    ("param.ratio>=99.5", "/api/v1/tasks/search?page_size=50&filter=param.ratio%3A%3E%3D%3A99.5"),
    ("created_at since 2000", "/api/v1/tasks/search?page_size=50&filter=created_at%3A%3E%3D%3A2000-01-01T00%3A00%3A00Z"),
    // `x` is distinct per task: a `~` no index answers, checked task by task.
    ("param.x~123 (distinct values)", "/api/v1/tasks/search?page_size=50&filter=param.x%3A~%3A123"),
    ("shared AND param.x~123", "/api/v1/tasks/search?page_size=50&filter=param.project%3A%3D%3Aatlas,param.x%3A~%3A123"),
];

fn main() {
    let (opts, threads) = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // One thread drives all connections: a second one took CPU from the server on
        // the 2-core machine and cost 8-10 % of the write rows (docs/performance.md).
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(opts));
}

async fn run(opts: Options) {
    let target = match (&opts.url, &opts.api_key) {
        (Some(url), Some(key)) => Target {
            addr: url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .parse()
                .expect("--url must be http://IP:PORT"),
            api_key: key.clone(),
            bearer: None,
            child: None,
            data_dir: None,
        },
        (Some(_), None) => panic!("--url needs --api-key"),
        _ => start_server(&opts.binary).await,
    };
    // After the start-up login: argon2id's 19 MiB working block has come and gone.
    let idle_rss = target.rss_kib("VmRSS:");
    let c = opts.clients;
    let s = opts.seconds;
    println!(
        "stardag-server load benchmark: {c} keep-alive clients, {s} s per operation, durable writes\n"
    );
    let mut rows = Vec::new();

    if opts.wants("GET /health") {
        rows.push(
            drive("GET /health", &target, vec![], c, s, |conn, _, _| {
                Box::pin(async move { (1, ok(&conn.call(Method::GET, "/health", None).await)) })
            })
            .await,
        );
    }
    if opts.wants("register task (API key)") {
        rows.push(
            register_row(
                "register task (API key)",
                &target,
                target.key_headers(),
                None,
                &opts,
            )
            .await,
        );
    }
    if let Some((token, env)) = target
        .bearer
        .as_ref()
        .filter(|_| opts.wants("register task (bearer token)"))
    {
        let headers = vec![("authorization".to_string(), format!("Bearer {token}"))];
        rows.push(
            register_row(
                "register task (bearer token)",
                &target,
                headers,
                Some(env.clone()),
                &opts,
            )
            .await,
        );
    }

    // Task events: each iteration registers nothing; it starts and completes a task
    // registered in setup (two requests). The metadata row reads the same tasks.
    let (events_row, metadata_row) = (
        "task start + complete (API key)",
        "GET task metadata (API key)",
    );
    if opts.wants(events_row) || opts.wants(metadata_row) {
        let headers = target.key_headers();
        let mut setup = Conn::open(target.addr, headers.clone()).await;
        let build = new_build(&mut setup, None).await;
        let pool: Arc<Vec<String>> = Arc::new((0..2_000).map(|i| format!("ev-{i}")).collect());
        for (i, id) in pool.iter().enumerate() {
            let path = format!("/api/v1/builds/{build}/tasks");
            let _ = setup
                .call(Method::POST, &path, Some(&task_body(id, i as u64)))
                .await;
        }
        if opts.wants(events_row) {
            rows.push(
                drive(
                    events_row,
                    &target,
                    headers,
                    c,
                    s,
                    move |conn, client, i| {
                        let id = pool[(client * 97 + i as usize) % pool.len()].clone();
                        let base = format!("/api/v1/builds/{build}/tasks/{id}");
                        Box::pin(async move {
                            let a = conn
                                .call(Method::POST, &format!("{base}/start"), None)
                                .await;
                            let b = conn
                                .call(Method::POST, &format!("{base}/complete"), None)
                                .await;
                            (2, ok(&a) && ok(&b))
                        })
                    },
                )
                .await,
            );
        }
    }

    // Reads.
    if opts.wants(metadata_row) {
        let mut setup = Conn::open(target.addr, target.key_headers()).await;
        let _ = setup
            .call(Method::GET, "/api/v1/tasks/ev-1/metadata", None)
            .await;
        rows.push(
            drive(
                metadata_row,
                &target,
                target.key_headers(),
                c,
                s,
                |conn, client, i| {
                    let path = format!(
                        "/api/v1/tasks/ev-{}/metadata",
                        (client * 31 + i as usize) % 2_000
                    );
                    Box::pin(async move { (1, ok(&conn.call(Method::GET, &path, None).await)) })
                },
            )
            .await,
        );
    }

    // Search over a seeded environment (`seed_for_search` seeds whole rounds of clients).
    let n = opts.search_tasks.div_ceil(c) * c;
    let search_clients = opts.search_clients;
    let searches: Vec<(String, &'static str)> = SEARCHES
        .iter()
        .map(|(name, query)| (format!("search {name} ({n} tasks)"), *query))
        .filter(|(name, _)| opts.wants(name))
        .collect();
    let explorer_wanted = ui_rows::explorer_row_names(n)
        .iter()
        .any(|(name, _)| opts.wants(name));
    let seeded = !searches.is_empty() || explorer_wanted;
    if seeded {
        seed_for_search(&target, opts.search_tasks, c).await;
    }
    // Searches run with a build's writes in parallel: one SDK-like client registering,
    // starting and completing tasks one after the other (issue 20).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = seeded.then(|| {
        let (stop, addr, headers) = (stop.clone(), target.addr, target.key_headers());
        tokio::spawn(async move {
            let mut conn = Conn::open(addr, headers).await;
            let build = new_build(&mut conn, None).await;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("bg-{i:08}");
                let path = format!("/api/v1/builds/{build}/tasks");
                let _ = conn
                    .call(Method::POST, &path, Some(&search_body(&id, i)))
                    .await;
                let _ = conn
                    .call(Method::POST, &format!("{path}/{id}/start"), None)
                    .await;
                let _ = conn
                    .call(Method::POST, &format!("{path}/{id}/complete"), None)
                    .await;
                i += 1;
            }
            i
        })
    });
    for (name, query) in searches {
        rows.push(
            drive(
                &name,
                &target,
                target.key_headers(),
                search_clients,
                s,
                move |conn, _, _| {
                    Box::pin(async move { (1, ok(&conn.call(Method::GET, query, None).await)) })
                },
            )
            .await,
        );
    }
    // The web UI's explorer over the same environment, beside the same writes.
    ui_rows::explorer_rows(&target, &opts, n, &mut rows).await;
    if let Some(w) = writer {
        stop.store(true, Ordering::Relaxed);
        let written = w.await.unwrap_or(0);
        println!("(search rows ran beside a build writing {written} tasks, 3 writes each)");
    }

    // Locks: acquire + release of per-client lock names.
    if opts.wants("lock acquire + release (API key)") {
        rows.push(
            drive(
                "lock acquire + release (API key)",
                &target,
                target.key_headers(),
                c,
                s,
                |conn, client, i| {
                    let name = format!("bench-lock-{client}-{}", i % 64);
                    let owner = format!("00000000-0000-4000-8000-{client:012}");
                    Box::pin(async move {
                        let a = conn
                            .call(
                                Method::POST,
                                &format!("/api/v1/locks/{name}/acquire"),
                                Some(&json!({"owner_id": owner, "ttl_seconds": 60})),
                            )
                            .await;
                        let r = conn
                            .call(
                                Method::POST,
                                &format!("/api/v1/locks/{name}/release"),
                                Some(&json!({"owner_id": owner})),
                            )
                            .await;
                        (2, ok(&a) && ok(&r))
                    })
                },
            )
            .await,
        );
    }

    // The v2 registry (the current SDK).
    v2_rows::rows(&target, &opts, &mut rows).await;

    // The web UI: the build page and its poll over a 2 000-task build.
    ui_rows::rows(&target, &opts, &mut rows).await;
    ui_rows::list_rows(&target, &opts, &mut rows).await;

    print(&rows);
    println!();
    println!(
        "graph layout, 2000 nodes:  {:.1} ms (median of 5, in process)",
        ui_rows::layout_ms()
    );
    if let Some(kib) = idle_rss {
        println!("server idle RSS:       {:.1} MiB", kib as f64 / 1024.0);
    }
    if let Some(kib) = target.rss_kib("VmHWM:") {
        println!("server peak RSS:       {:.1} MiB", kib as f64 / 1024.0);
    }
    if let Some(bytes) = target.db_bytes() {
        println!(
            "database file:         {:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    println!("total errors:          {errors}");
    if opts.scale_tasks > 0 {
        scale(target, &opts).await;
    }
    // The smoke run (CI) checks that every operation works, not how fast.
    if opts.smoke && errors > 0 {
        std::process::exit(1);
    }
}
