//! Crash safety of the write-ahead journal through the real binary (D25): a write that
//! was answered survives `kill -9` at any moment, a torn journal tail is ignored, and a
//! clean stop leaves nothing to replay. The timed checkpoint is mostly pushed out of the
//! test's reach, so what the server acknowledged is on disk only through its journal;
//! one test checkpoints every few milliseconds instead, so the crash meets a journal
//! file reused over the leftovers of earlier cycles.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::harness::{
    credentials, metric_sample, metrics_text, BinaryServer, Client, TestResponse,
};
use crate::tasks::{build_tasks, hash, new_build_id, reg, run_task};

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// No timed checkpoint while a test runs.
const RARE: &str = "600000";
/// A checkpoint every few batches.
const FREQUENT: &str = "5";

/// The binary on `dir` (no rate limits; a checkpoint every `checkpoint_ms`), and an SDK
/// client with the bootstrap API key.
async fn start(dir: &Path, checkpoint_ms: &str) -> (BinaryServer, Client) {
    let env = [
        ("STARDAG_SERVER_RATE_LIMIT__PER_CREDENTIAL_RPS", "0"),
        ("STARDAG_SERVER_RATE_LIMIT__PER_IP_RPS", "0"),
        ("STARDAG_SERVER_STORE__CHECKPOINT_MS", checkpoint_ms),
    ];
    let server = BinaryServer::start_with_env(dir, &[], &env).await;
    // Start-up (journal recovery, first-start bootstrap) ends before the first answer.
    server.client().get("/health").await.expect(200);
    let sdk = server
        .client()
        .with_api_key(&credentials(dir)["STARDAG_API_KEY"]);
    (server, sdk)
}

/// The journal segments left in the data dir, in log order, with their sizes.
fn segments(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir.join("stardag.journal")) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, u64)> = entries
        .map(|e| e.expect("journal dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .map(|p| {
            let len = p.metadata().expect("segment metadata").len();
            (p, len)
        })
        .collect();
    found.sort();
    found
}

/// The writes the server acknowledged (answered 2xx).
#[derive(Default)]
struct Acked {
    /// Task hash, and the `id` and `created_at` the registration answered: a replay must
    /// recreate the same row, not just some row.
    registered: Vec<(String, Value)>,
    started: Vec<String>,
    completed: Vec<String>,
    locks: Vec<String>,
}

impl Acked {
    fn merge(&mut self, other: Acked) {
        self.registered.extend(other.registered);
        self.started.extend(other.started);
        self.completed.extend(other.completed);
        self.locks.extend(other.locks);
    }
}

/// A POST that tells an acknowledged write (`Some`, 2xx) from anything else: an error
/// answer, or a server that is gone mid-request.
async fn post(c: &Client, path: &str, body: Option<Value>) -> Option<TestResponse> {
    let (headers, bytes): (&[(&str, &str)], Bytes) = match body {
        Some(v) => (
            &[("content-type", "application/json")],
            Bytes::from(v.to_string()),
        ),
        None => (&[], Bytes::new()),
    };
    let resp = c.try_send(Method::POST, path, headers, bytes).await.ok()?;
    resp.status.is_success().then_some(resp)
}

/// One SDK round: register a fresh task, start and complete it, and every fourth round
/// acquire a fresh lock. Records each acknowledged write; `None` at the first that is not.
async fn round(c: &Client, build: &str, tag: &str, acked: &mut Acked) -> Option<()> {
    let task = hash(tag);
    let tasks = format!("/api/v1/builds/{build}/tasks");
    let row = post(c, &tasks, Some(reg(&task, "crash", &[])))
        .await?
        .json();
    acked.registered.push((task.clone(), identity(&row)));
    post(c, &format!("{tasks}/{task}/start"), None).await?;
    acked.started.push(task.clone());
    post(c, &format!("{tasks}/{task}/complete"), None).await?;
    acked.completed.push(task);
    if acked.completed.len() % 4 == 1 {
        let lock = hash(&format!("lock-{tag}"));
        let body = json!({
            "owner_id": uuid::Uuid::now_v7(),
            "ttl_seconds": 3600,
            "check_task_completion": false,
        });
        let resp = post(c, &format!("/api/v1/locks/{lock}/acquire"), Some(body)).await?;
        assert_eq!(resp.json()["status"], "acquired");
        acked.locks.push(lock);
    }
    Some(())
}

/// Starts the server on `dir`, creates a build, runs `workers` clients doing SDK rounds
/// for `run_for`, then sends `signal` while their requests are in flight and waits for
/// the exit. Returns the build, what was acknowledged, and the exit status.
async fn signal_under_load(
    dir: &Path,
    checkpoint_ms: &str,
    workers: usize,
    run_for: Duration,
    signal: i32,
) -> (String, Acked, ExitStatus) {
    let (mut server, sdk) = start(dir, checkpoint_ms).await;
    let build = new_build_id(&sdk).await;
    let b = build.clone();
    let (done, status) = load_then_signal(
        &mut server,
        &sdk,
        workers,
        run_for,
        signal,
        move |w, c, stop| {
            let build = b.clone();
            async move {
                let mut acked = Acked::default();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let tag = format!("crash-{w}-{i}");
                    if round(&c, &build, &tag, &mut acked).await.is_none() {
                        break;
                    }
                    i += 1;
                }
                acked
            }
        },
    )
    .await;
    let mut acked = Acked::default();
    for a in done {
        acked.merge(a);
    }
    (build, acked, status)
}

/// Runs `workers` copies of `worker` for `run_for`, then sends `signal` while their
/// requests are in flight and waits for the exit. Returns what each worker acknowledged.
async fn load_then_signal<A, F, Fut>(
    server: &mut BinaryServer,
    sdk: &Client,
    workers: usize,
    run_for: Duration,
    signal: i32,
    worker: F,
) -> (Vec<A>, ExitStatus)
where
    A: Send + 'static,
    F: Fn(usize, Client, Arc<AtomicBool>) -> Fut,
    Fut: std::future::Future<Output = A> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = JoinSet::new();
    for w in 0..workers {
        load.spawn(worker(w, sdk.clone(), stop.clone()));
    }
    tokio::time::sleep(run_for).await;
    server.signal(signal);
    let status = server.wait().await;
    // Workers stop at their first request the server did not answer; the flag only
    // matters if one was between requests.
    stop.store(true, Ordering::Relaxed);
    let mut done = Vec::new();
    while let Some(a) = load.join_next().await {
        done.push(a.expect("load worker"));
    }
    (done, status)
}

/// Every acknowledged write is visible: registrations by `GET /tasks/{id}`, task events
/// as the task's status in the build, lock acquisitions by `GET /locks/{name}`.
async fn assert_all_present(sdk: &Client, build: &str, acked: &Acked) {
    assert!(
        acked.completed.len() >= 20 && !acked.locks.is_empty(),
        "too little load to prove anything: {} tasks, {} locks",
        acked.completed.len(),
        acked.locks.len()
    );
    let rows = build_tasks(sdk, build).await;
    let status = |t: &String| rows.get(t).map(|r| r["status"].clone());
    for t in &acked.completed {
        assert_eq!(status(t), Some(json!("completed")), "completed task {t}");
    }
    for t in &acked.started {
        let s = status(t);
        assert!(
            s == Some(json!("running")) || s == Some(json!("completed")),
            "started task {t} is {s:?}"
        );
    }
    // Each path with what its answer must identify (`None`: only that it exists).
    let expected: Vec<(String, Option<Value>)> = (acked.registered.iter())
        .map(|(t, row)| (format!("/api/v1/tasks/{t}"), Some(row.clone())))
        .chain(
            acked
                .locks
                .iter()
                .map(|l| (format!("/api/v1/locks/{l}"), None)),
        )
        .collect();
    let mut gets = JoinSet::new();
    for chunk in expected.chunks(expected.len().div_ceil(8)) {
        let (c, chunk) = (sdk.clone(), chunk.to_vec());
        gets.spawn(async move {
            let mut missing = Vec::new();
            for (path, want) in chunk {
                let resp = c.get(&path).await;
                if resp.status != 200 {
                    missing.push(format!("{path} -> {}", resp.status));
                } else if let Some(want) = want.filter(|w| *w != identity(&resp.json())) {
                    missing.push(format!("{path} is not the acknowledged row {want}"));
                }
            }
            missing
        });
    }
    let mut missing = Vec::new();
    while let Some(done) = gets.join_next().await {
        missing.extend(done.expect("reader"));
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost or changed, e.g. {:?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(5)]
    );
}

/// What identifies a stored task row: its `id` and `created_at`.
fn identity(task: &Value) -> Value {
    json!({"id": task["id"], "created_at": task["created_at"]})
}

/// After a restart the server takes new journaled writes.
async fn assert_writes_work(sdk: &Client, build: &str) {
    run_task(sdk, build, &reg(&hash("after-restart"), "crash", &[])).await;
    let body = json!({"owner_id": uuid::Uuid::now_v7(), "ttl_seconds": 60});
    let resp = post(sdk, "/api/v1/locks/after-restart/acquire", Some(body)).await;
    assert_eq!(resp.expect("lock acquired").json()["status"], "acquired");
}

#[tokio::test]
async fn kill_9_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (build, acked, status) =
        signal_under_load(dir.path(), RARE, 8, Duration::from_millis(1500), SIGKILL).await;
    assert_eq!(status.signal(), Some(SIGKILL), "{status:?}");
    let left = segments(dir.path());
    assert!(
        left.iter().any(|(_, len)| *len > 8),
        "the crash left no journal records to replay: {left:?}"
    );

    let (server, sdk) = start(dir.path(), RARE).await;
    server.assert_logged("journal replayed").await;
    assert_eq!(segments(dir.path()), [], "replayed segments are removed");
    assert_all_present(&sdk, &build, &acked).await;
    assert_writes_work(&sdk, &build).await;
}

#[tokio::test]
async fn kill_9_between_frequent_checkpoints_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (build, acked, status) =
        signal_under_load(dir.path(), FREQUENT, 4, Duration::from_millis(800), SIGKILL).await;
    assert_eq!(status.signal(), Some(SIGKILL), "{status:?}");
    let (_server, sdk) = start(dir.path(), RARE).await;
    assert_all_present(&sdk, &build, &acked).await;
    assert_writes_work(&sdk, &build).await;
}

#[tokio::test]
async fn a_torn_journal_tail_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (build, acked, _) =
        signal_under_load(dir.path(), RARE, 4, Duration::from_millis(500), SIGKILL).await;
    let (last, _) = segments(dir.path()).pop().expect("a journal segment");
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend([0xAB; 37]);
    std::fs::write(&last, bytes).unwrap();

    let (server, sdk) = start(dir.path(), RARE).await;
    server.assert_logged("ignored_bytes=37").await;
    assert_eq!(segments(dir.path()), []);
    assert_all_present(&sdk, &build, &acked).await;
    assert_writes_work(&sdk, &build).await;
}

#[tokio::test]
async fn clean_shutdown_leaves_no_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (build, acked, status) =
        signal_under_load(dir.path(), RARE, 4, Duration::from_millis(500), SIGTERM).await;
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(segments(dir.path()), [], "a clean stop checkpoints");

    let (_server, sdk) = start(dir.path(), RARE).await;
    assert_all_present(&sdk, &build, &acked).await;
}

/// `stardag_store_durable_commits_total` from `/metrics`.
async fn durable_commits(c: &Client) -> u64 {
    let text = metrics_text(c).await;
    metric_sample(&text, "stardag_store_durable_commits_total")
        .unwrap_or_else(|| panic!("no durable commit counter in:\n{text}")) as u64
}

/// Polls the durable-commit counter until it passes `than` (10 s at most).
async fn durable_commits_above(c: &Client, than: u64) -> u64 {
    for _ in 0..100 {
        let now = durable_commits(c).await;
        if now > than {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no checkpoint within 10 s ({than} durable commits)");
}

/// With the default interval and no write after it, a journaled write still reaches
/// the database file: the ticker wakes the idle writer for the checkpoint.
#[tokio::test]
async fn an_idle_server_checkpoints_a_journaled_write_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = BinaryServer::start(dir.path(), &[]).await;
    let client = server.client();
    client.get("/health").await.expect(200);
    let sdk = client.with_api_key(&credentials(dir.path())["STARDAG_API_KEY"]);

    // A slow start-up can make the first write's own batch the due checkpoint, so the
    // test starts right after one.
    let start = durable_commits(&client).await;
    new_build_id(&sdk).await;
    let checkpointed = durable_commits_above(&client, start).await;

    // This write's batch is journaled (the last checkpoint is fresh); only the ticker
    // can checkpoint it, since nothing else is written.
    new_build_id(&sdk).await;
    durable_commits_above(&client, checkpointed).await;
}

// ---------------------------------------------------------------------------------
// The v2 registry's writes go through the same journal (D33).

/// How far one v2 round got: every step before `steps` was acknowledged.
struct V2Round {
    build: String,
    task: String,
    execution: String,
    steps: usize,
}

/// One item of a v2 registration chunk.
fn v2_item(task: &str, declared: Option<Vec<String>>) -> Value {
    json!({
        "task_id": task, "task_namespace": "crash", "task_name": "t", "version": null,
        "output_uri": null, "instance_hash": task, "body": {"task": task},
        "declared_upstreams": declared, "observed_complete": false,
        "observed_at": "2026-01-01T00:00:00Z",
    })
}

/// A whole v2 build of one task (create, plan, expand, seal, claim, complete, build
/// complete); stops at the first write that is not acknowledged.
async fn v2_round(c: &Client, deployment: &str, tag: &str) -> V2Round {
    let mut r = V2Round {
        build: uuid::Uuid::now_v7().to_string(),
        task: hash(tag),
        execution: uuid::Uuid::now_v7().to_string(),
        steps: 0,
    };
    let plan = uuid::Uuid::now_v7().to_string();
    let (b, t, x) = (&r.build, &r.task, &r.execution);
    let member = format!("/api/v2/plans/{plan}/members/{t}");
    let steps: Vec<(String, Value)> = vec![
        (
            "/api/v2/builds".into(),
            json!({"id": b, "root_task_ids": [t]}),
        ),
        (
            format!("/api/v2/builds/{b}/plans"),
            json!({"plan_id": plan, "deployment_id": deployment, "settings": {}, "roots": [v2_item(t, None)]}),
        ),
        (
            format!("/api/v2/plans/{plan}/members"),
            json!({"items": [v2_item(t, Some(vec![]))]}),
        ),
        (format!("/api/v2/plans/{plan}/seal"), Value::Null),
        (
            format!("{member}/start"),
            json!({"execution_id": x, "claim": true}),
        ),
        (format!("{member}/complete"), json!({"execution_id": x})),
        (
            format!("/api/v2/builds/{b}/complete"),
            json!({"force": false}),
        ),
    ];
    for (path, body) in steps {
        let body = (!body.is_null()).then_some(body);
        if post(c, &path, body).await.is_none() {
            break;
        }
        r.steps += 1;
    }
    r
}

#[tokio::test]
async fn kill_9_under_a_v2_workload_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, sdk) = start(dir.path(), RARE).await;
    let deployment = uuid::Uuid::now_v7().to_string();
    let body = json!({"id": deployment, "kind": "local", "code_id": "crash"});
    let created = post(&sdk, "/api/v2/deployments", Some(body)).await;
    let deployment = created.expect("deployment").json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = deployment.clone();
    let (done, status) = load_then_signal(
        &mut server,
        &sdk,
        8,
        Duration::from_millis(1500),
        SIGKILL,
        move |w, c, stop| {
            let deployment = d.clone();
            async move {
                let mut rounds = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = v2_round(&c, &deployment, &format!("v2-crash-{w}-{i}")).await;
                    let whole = r.steps == 7;
                    rounds.push(r);
                    if !whole {
                        break;
                    }
                    i += 1;
                }
                rounds
            }
        },
    )
    .await;
    assert_eq!(status.signal(), Some(SIGKILL), "{status:?}");
    let rounds: Vec<V2Round> = done.into_iter().flatten().collect();
    assert!(
        rounds.iter().filter(|r| r.steps == 7).count() >= 10,
        "too little load"
    );

    let (server, sdk) = start(dir.path(), RARE).await;
    server.assert_logged("journal replayed").await;
    let mut lost = Vec::new();
    for r in rounds.iter().filter(|r| r.steps > 0) {
        let build = sdk.get(&format!("/api/v2/builds/{}", r.build)).await;
        let want_build = if r.steps == 7 { "completed" } else { "running" };
        if build.status != 200 || (r.steps == 7 && build.json()["status"] != want_build) {
            lost.push(format!(
                "build {} after {} steps: {}",
                r.build, r.steps, build.status
            ));
            continue;
        }
        if r.steps >= 5 {
            let task = sdk.get(&format!("/api/v2/tasks/{}", r.task)).await.json();
            let want = if r.steps >= 6 { "completed" } else { "running" };
            if r.steps >= 6 && task["status"] != want {
                lost.push(format!(
                    "task {} is {} after {} steps",
                    r.task, task["status"], r.steps
                ));
            }
            let execs = sdk
                .get(&format!("/api/v2/tasks/{}/executions", r.task))
                .await
                .json();
            if execs["executions"][0]["id"] != json!(r.execution) {
                lost.push(format!(
                    "execution {} of task {} is gone",
                    r.execution, r.task
                ));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} acknowledged v2 writes lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    // The restarted server takes new v2 builds.
    assert_eq!(
        v2_round(&sdk, &deployment, "v2-after-restart").await.steps,
        7
    );
}
