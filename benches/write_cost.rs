//! What a journaled write costs the store's writer thread, without HTTP in the way.
//!
//! `cargo bench --bench write_cost [-- --waves N --batch B]` opens a store on a temporary dir and
//! drives the writer with waves of B concurrent operations (B = 1, 4, 12, 32), the way
//! concurrent requests reach it, through the same `write_logged` path the API uses. For
//! each operation and batch size it prints the writer thread's CPU time per operation
//! (from `/proc/self/task/<tid>/schedstat`), then fits `a + b / batch`: `a` is what one
//! operation's own inserts cost, `b` what a batch costs once (its commit, and the first
//! touch of every table). These are the figures to compare when changing the write path;
//! `docs/performance.md` explains the model. For exact, repeatable counts run it under
//! `valgrind --tool=callgrind --separate-threads=yes` and read the `store-writer` part.

#[path = "support/args.rs"]
mod args;
use args::Args;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use stardag_server::domain::events::EventType;
use stardag_server::store::redo::{CreateBuild, RegisterTask, TaskEvent};
use stardag_server::store::search::DocIndex;
use stardag_server::store::tasks::{NewBuild, NewEvent, Registration};
use stardag_server::store::{Store, StoreOptions};
use uuid::Uuid;

/// Registrations and events of one build, numbered so every hash is new.
struct Workload {
    store: Store,
    env: Uuid,
    build: Uuid,
    next: AtomicU64,
}

fn now() -> i64 {
    stardag_server::clock::now_micros()
}

/// The load benchmark's task body: three parameters, a name out of seven.
fn registration(i: u64) -> Registration {
    let data = json!({"x": i, "group": format!("g{}", i % 100), "ratio": (i % 1000) as f64 / 10.0});
    let doc: Map<String, Value> = data.as_object().cloned().unwrap_or_default();
    Registration {
        task_id: format!("task-{i:016x}"),
        task_namespace: "bench".into(),
        task_name: format!("Task{}", i % 7),
        task_data: data.to_string(),
        version: None,
        output_uri: None,
        dependency_task_ids: Vec::new(),
        salt: i,
        search: DocIndex::task_data(&doc),
    }
}

impl Workload {
    async fn open(dir: &std::path::Path) -> Workload {
        let store = Store::open(&dir.join("cost.redb"), &StoreOptions::default()).expect("open");
        let env = Uuid::now_v7();
        let build = store
            .write_logged(CreateBuild {
                env,
                new: NewBuild {
                    user_id: None,
                    name: "cost".into(),
                    description: None,
                    commit_hash: None,
                    root_task_ids: Vec::new(),
                    salt: 1,
                },
                now: now(),
            })
            .await
            .expect("create build")
            .id;
        Workload {
            store,
            env,
            build,
            next: AtomicU64::new(0),
        }
    }

    async fn register(self: Arc<Self>) -> String {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let reg = registration(i);
        let hash = reg.task_id.clone();
        self.store
            .write_logged(RegisterTask {
                env: self.env,
                build: self.build,
                reg,
                now: now(),
            })
            .await
            .expect("register");
        hash
    }

    /// Tasks for the event rows, registered outside the measurement.
    async fn register_many(self: &Arc<Self>, n: usize) -> Vec<String> {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            set.spawn(self.clone().register());
        }
        let mut hashes = Vec::with_capacity(n);
        while let Some(hash) = set.join_next().await {
            hashes.push(hash.expect("register task"));
        }
        hashes
    }

    async fn event(self: Arc<Self>, task: String, event_type: EventType) {
        self.store
            .write_logged(TaskEvent {
                env: self.env,
                build: self.build,
                task,
                event: NewEvent::plain(event_type, now()),
            })
            .await
            .expect("event");
    }
}

/// CPU nanoseconds the thread named `name` of this process has run.
fn thread_cpu_ns(name: &str) -> u64 {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            return stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
    }
    panic!("no thread named {name}");
}

/// Runs `waves` waves of `batch` concurrent operations; returns writer µs per op and
/// the mean batch the writer actually formed.
async fn measure<F, Fut>(w: &Arc<Workload>, batch: usize, waves: usize, op: F) -> (f64, f64)
where
    F: Fn(Arc<Workload>, usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let stats0 = w.store.writer_stats();
    let cpu0 = thread_cpu_ns("store-writer");
    for wave in 0..waves {
        let mut set = tokio::task::JoinSet::new();
        for k in 0..batch {
            set.spawn(op(w.clone(), wave * batch + k));
        }
        while let Some(r) = set.join_next().await {
            r.expect("op task");
        }
    }
    let cpu = thread_cpu_ns("store-writer") - cpu0;
    let stats = w.store.writer_stats();
    let ops = (stats.ops - stats0.ops) as f64;
    // Checkpoints are durable commits without ops; every other commit is one batch.
    let batches = ((stats.commits - stats.durable_commits)
        - (stats0.commits - stats0.durable_commits)) as f64;
    (cpu as f64 / 1000.0 / ops, ops / batches.max(1.0))
}

/// Least-squares fit of `cost = a + b / batch`.
fn fit(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let xs: Vec<f64> = points.iter().map(|(batch, _)| 1.0 / batch).collect();
    let (mx, my) = (
        xs.iter().sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = xs
        .iter()
        .zip(points)
        .map(|(x, p)| (x - mx) * (p.1 - my))
        .sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    let b = sxy / sxx;
    (my - b * mx, b)
}

const USAGE: &str = "\
usage: cargo bench --bench write_cost [-- OPTIONS]

  --waves N    waves of concurrent operations per row (300)
  --batch B    only batches of B (default: 1, 4, 12 and 32)";

fn main() {
    let args = Args::parse(USAGE, &["--waves", "--batch"], &[]);
    let waves: usize = args.arg("--waves", 300);
    // One batch size only (e.g. under callgrind); the fit needs all four.
    let sizes: Vec<usize> = match args.arg("--batch", 0) {
        0 => vec![1, 4, 12, 32],
        b => vec![b],
    };
    // One thread drives the writer, as the HTTP workers would: the writer gets the other.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Arc::new(Workload::open(dir.path()).await);
        println!("writer CPU per operation, {waves} waves of B concurrent operations\n");
        println!(
            "{:<26}{:>6}{:>8}{:>12}",
            "operation", "B", "batch", "writer µs"
        );
        let mut rows = Vec::new();
        for &batch in &sizes {
            let (us, mean) = measure(&w, batch, waves, |w, _| async move {
                w.register().await;
            })
            .await;
            println!("{:<26}{batch:>6}{mean:>8.1}{us:>12.1}", "register task");
            rows.push(("register task", mean, us));
        }
        for &batch in &sizes {
            let hashes = Arc::new(w.register_many(batch * waves).await);
            let (us, mean) = measure(&w, batch, waves, move |w, i| {
                let task = hashes[i].clone();
                async move {
                    w.clone().event(task.clone(), EventType::TaskStarted).await;
                    w.event(task, EventType::TaskCompleted).await;
                }
            })
            .await;
            println!(
                "{:<26}{batch:>6}{mean:>8.1}{us:>12.1}",
                "task start + complete"
            );
            rows.push(("task start + complete", mean, us));
        }
        if sizes.len() < 2 {
            w.store.shutdown();
            return;
        }
        println!("\nfit: writer µs per op = a + b / batch");
        for op in ["register task", "task start + complete"] {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.0 == op)
                .map(|r| (r.1, r.2))
                .collect();
            let (a, b) = fit(&points);
            println!("{op:<26} a = {a:5.1} µs   b = {b:6.1} µs");
        }
        w.store.shutdown();
    });
}
