//! Search latency benchmark: `cargo bench --bench search [-- --tasks N --runs R]`.
//!
//! Seeds one environment through the store layer (the same write functions the HTTP
//! handlers call, many registrations per transaction to seed quickly), then times each
//! query the way `GET /tasks/search` runs it: a fresh read snapshot, the indexed search,
//! and rendering the JSON page. HTTP parsing is not included. The same queries run at a
//! tenth of the size first, so the table shows which costs follow the environment's size
//! and which follow the page and the match count.
//!
//! A second table measures the write path with the indexes on: registrations and task
//! events per second through the group-commit writer (durable commits) from 128
//! concurrent submitters, for a 3-scalar `task_data` (the HTTP load benchmark's) and a
//! 10-scalar SDK-style one (a task embedding an upstream task's dump).
//!
//! Data: 20 task classes (`Task00`…`Task19`, 5 % each) in 5 namespaces; `task_data` with
//! a unique `x`, `group` = `g0`…`g99` (1 % each), `ratio` uniform in 0..100, a nested
//! `cfg`; 60 % completed, 10 % failed, 10 % running, 20 % pending; 10 builds.

#[path = "support/args.rs"]
mod args;
use args::Args;

use std::time::Instant;

use serde_json::{json, Map, Value};
use stardag_server::clock::now_micros;
use stardag_server::domain::events::EventType;
use stardag_server::domain::search::Query;
use stardag_server::store::redo::{RegisterTask, TaskEvent};
use stardag_server::store::search::{self, DocIndex};
use stardag_server::store::tables::Tables;
use stardag_server::store::tasks::{self, NewBuild, NewEvent, Registration, TrackError};
use stardag_server::store::{Store, StoreOptions};
use uuid::Uuid;

fn hash(i: usize) -> String {
    let h = (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    Uuid::from_u128(h).to_string()
}

fn task_data(i: usize) -> Map<String, Value> {
    let v = json!({
        "__namespace": format!("ns{}", i % 5),
        "__name": format!("Task{:02}", i % 20),
        "version": "",
        "x": i,
        "group": format!("g{}", (i / 20) % 100),
        "ratio": ((i * 7919) % 10_000) as f64 / 100.0,
        "cfg": {"lr": 0.001 * (i % 10) as f64, "opt": if i.is_multiple_of(3) { "adam" } else { "sgd" }},
        // Shared by every task, and two halves that overlap on 1 % (issue 20's shapes).
        "project": "atlas",
        "early": i % 1000 < 505,
        "late": i % 1000 >= 495,
    });
    v.as_object().cloned().unwrap_or_default()
}

/// Registers tasks `from..to` with their events, 1 000 per transaction.
fn seed(store: &Store, env: Uuid, builds: &[Uuid], from: usize, to: usize) {
    let mut i = from;
    while i < to {
        let end = (i + 1000).min(to);
        let builds = builds.to_vec();
        store
            .write_blocking(move |tx| -> Result<(), TrackError> {
                let t = Tables::new(tx);
                for k in i..end {
                    let data = task_data(k);
                    let reg = Registration {
                        task_id: hash(k),
                        task_namespace: format!("ns{}", k % 5),
                        task_name: format!("Task{:02}", k % 20),
                        search: DocIndex::task_data(&data),
                        task_data: Value::Object(data).to_string(),
                        version: Some(String::new()),
                        output_uri: None,
                        dependency_task_ids: vec![],
                        salt: k as u64,
                    };
                    let b = builds[k % builds.len()];
                    tasks::register_task(&t, env, b, reg, now_micros())?;
                    let events: &[EventType] = match k % 10 {
                        0..=5 => &[EventType::TaskStarted, EventType::TaskCompleted],
                        6 => &[EventType::TaskStarted, EventType::TaskFailed],
                        7 => &[EventType::TaskStarted],
                        _ => &[],
                    };
                    for ev in events {
                        tasks::task_event(
                            &t,
                            env,
                            b,
                            &hash(k),
                            NewEvent::plain(*ev, now_micros()),
                        )?;
                    }
                }
                // Writes the cached per-value counts the planner reads back.
                t.finish()?;
                Ok(())
            })
            .expect("seed");
        i = end;
    }
}

struct Case {
    name: &'static str,
    filter: &'static str,
    q: Option<&'static str>,
    sort: Option<&'static str>,
    page: u64,
}

const CASES: [Case; 25] = [
    Case {
        name: "latest page",
        filter: "",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "oldest page (created_at asc)",
        filter: "",
        q: None,
        sort: Some("created_at:asc"),
        page: 1,
    },
    Case {
        name: "by name, no filter (desc)",
        filter: "",
        q: None,
        sort: Some("task_name:desc"),
        page: 1,
    },
    Case {
        name: "task_name equality (5 %)",
        filter: "task_name:=:Task07",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "task_name ~ 'k07' (5 %)",
        filter: "task_name:~:k07",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "q text 'k07' (5 %)",
        filter: "",
        q: Some("k07"),
        sort: None,
        page: 1,
    },
    Case {
        name: "status:=completed (60 %)",
        filter: "status:=:completed",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "status:=failed, by name (10 %)",
        filter: "status:=:failed",
        q: None,
        sort: Some("task_name:asc"),
        page: 1,
    },
    Case {
        name: "status:=failed, page 20 (10 %)",
        filter: "status:=:failed",
        q: None,
        sort: None,
        page: 20,
    },
    Case {
        name: "param.x equality (1 task)",
        filter: "param.x:=:4321",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "shared AND param.group (1 %)",
        filter: "param.project:=:atlas,param.group:=:g42",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "shared AND group, asc",
        filter: "param.project:=:atlas,param.group:=:g42",
        q: None,
        sort: Some("created_at:asc"),
        page: 1,
    },
    Case {
        name: "shared AND ratio<50 (50 %)",
        filter: "param.project:=:atlas,param.ratio:<:50",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "two halves, overlap 1 %",
        filter: "param.early:=:true,param.late:=:true",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "status:=failed AND cfg.opt=adam (3 %)",
        filter: "status:=:failed,param.cfg.opt:=:adam",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "range param.ratio<50 (50 %)",
        filter: "param.ratio:<:50",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "range param.ratio<10 (10 %)",
        filter: "param.ratio:<:10",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "range param.ratio>=99.5 (0.5 %)",
        filter: "param.ratio:>=:99.5",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "param.cfg.opt~DAM, by name (33 %)",
        filter: "param.cfg.opt:~:DAM",
        q: None,
        sort: Some("task_name:asc"),
        page: 1,
    },
    Case {
        name: "created_at >= middle (50 %)",
        filter: "",
        q: None,
        sort: None,
        page: 0,
    },
    Case {
        name: "created_at >= middle, asc, failed",
        filter: "status:=:failed",
        q: None,
        sort: Some("created_at:asc"),
        page: 0,
    },
    Case {
        name: "worst: task_id ~ (every hash)",
        filter: "task_id:~:abc",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "status:=completed AND cfg.opt~dam",
        filter: "status:=:completed,param.cfg.opt:~:dam",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "shared AND param.x ~ (unique values)",
        filter: "param.project:=:atlas,param.x:~:123",
        q: None,
        sort: None,
        page: 1,
    },
    Case {
        name: "worst: param.x ~ (unique values)",
        filter: "param.x:~:123",
        q: None,
        sort: None,
        page: 1,
    },
];

const PAGE_SIZE: usize = 50;

/// Times `runs` executions of one case; returns (p50, p99, total) in ms and the total.
fn time_case(
    store: &Store,
    env: Uuid,
    case: &Case,
    since: &str,
    runs: usize,
) -> (f64, f64, u64, bool) {
    let filter = match (case.page, case.filter) {
        (0, "") => format!("created_at:>=:{since}"),
        (0, f) => format!("{f},created_at:>=:{since}"),
        _ => case.filter.to_owned(),
    };
    let query = Query::parse(Some(&filter), case.q, case.sort).expect("valid query");
    let page = case.page.max(1);
    let offset = (page - 1) * PAGE_SIZE as u64;
    let mut samples = Vec::with_capacity(runs);
    let mut total = 0;
    let mut bounded = false;
    for _ in 0..runs + runs / 10 {
        let started = Instant::now();
        let body = store
            .read_blocking(|tx| {
                let found = search::search(tx, env, &query, offset, PAGE_SIZE)?;
                total = found.total;
                bounded = found.total_is_lower_bound;
                stardag_server::api::search::render(env, &found, &[], page as i64, PAGE_SIZE as i64)
            })
            .expect("search");
        std::hint::black_box(body);
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    // The first tenth warms the cache and is not counted.
    let mut samples = samples.split_off(runs / 10);
    samples.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    (pct(0.50), pct(0.99), total, bounded)
}

/// Registrations/s and events/s from 128 concurrent submitters on a fresh store.
fn write_rates(sdk_shaped: bool, per_writer: usize) -> (f64, f64) {
    const WRITERS: usize = 128;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = std::sync::Arc::new(
            Store::open(
                &dir.path().join("write.redb"),
                &StoreOptions {
                    cache_bytes: 256 << 20,
                    write_queue: 4096,
                    max_batch: 512,
                    ..Default::default()
                },
            )
            .expect("open store"),
        );
        let env = Uuid::now_v7();
        let new = NewBuild {
            user_id: None,
            name: "write".into(),
            description: None,
            commit_hash: None,
            root_task_ids: vec![],
            salt: 1,
        };
        let build = store
            .write(move |tx| Tables::with(tx, |t| tasks::create_build(t, env, new, now_micros())))
            .await
            .expect("build")
            .id;
        // Bodies and their index entries are prepared first, as handlers do off the
        // writer: only the writer's work is timed.
        let mut work = Vec::new();
        for w in 0..WRITERS {
            let regs: Vec<Registration> = (0..per_writer)
                .map(|i| {
                    let k = w * per_writer + i;
                    let data = if sdk_shaped {
                        json!({
                            "__namespace": "examples.ml", "__name": "TrainModel", "version": "",
                            "learning_rate": 0.01 * (i % 7) as f64, "epochs": i % 50, "seed": k,
                            "dataset": {"__namespace": "examples.ml", "__name": "LoadData",
                                        "version": "", "path": format!("s3://bucket/{k}.csv")},
                        })
                    } else {
                        json!({"x": k, "group": format!("g{}", i % 100), "ratio": (i % 1000) as f64 / 10.0})
                    };
                    let data = data.as_object().cloned().unwrap_or_default();
                    Registration {
                        task_id: hash(k),
                        task_namespace: "bench".into(),
                        task_name: format!("Task{}", k % 7),
                        search: DocIndex::task_data(&data),
                        task_data: Value::Object(data).to_string(),
                        version: Some(String::new()),
                        output_uri: None,
                        dependency_task_ids: vec![hash(k.saturating_sub(1))],
                        salt: k as u64,
                    }
                })
                .collect();
            work.push(regs);
        }
        let started = Instant::now();
        let mut handles = Vec::new();
        for regs in work {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                for reg in regs {
                    store
                        .write_logged(RegisterTask {
                            env,
                            build,
                            reg,
                            now: now_micros(),
                        })
                        .await
                        .expect("register");
                }
            }));
        }
        for h in handles {
            h.await.expect("writer task");
        }
        let registrations = (WRITERS * per_writer) as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut handles = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..per_writer {
                    let ev = if i % 2 == 0 {
                        EventType::TaskStarted
                    } else {
                        EventType::TaskCompleted
                    };
                    let h = hash(w * per_writer + i / 2);
                    store
                        .write_logged(TaskEvent {
                            env,
                            build,
                            task: h,
                            event: NewEvent::plain(ev, now_micros()),
                        })
                        .await
                        .expect("event");
                }
            }));
        }
        for h in handles {
            h.await.expect("writer task");
        }
        let events = (WRITERS * per_writer) as f64 / started.elapsed().as_secs_f64();
        store.shutdown();
        (registrations, events)
    })
}

const USAGE: &str = "\
usage: cargo bench --bench search [-- OPTIONS]

  --tasks N     tasks in the searched environment (100000)
  --sizes LIST  environment sizes measured in turn (N/10,N), e.g. 10000,100000,1000000
  --runs R      runs of each query (300)
  --only TEXT   only the queries whose name contains TEXT
  --writes N    writes for the write-path table (38400)";

fn main() {
    let args = Args::parse(
        USAGE,
        &["--tasks", "--runs", "--writes", "--sizes", "--only"],
        &[],
    );
    let n = args.arg("--tasks", 100_000);
    let runs = args.arg("--runs", 300);
    let only = args.value("--only").unwrap_or_default();
    let cases: Vec<&Case> = CASES.iter().filter(|c| c.name.contains(&only)).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        &dir.path().join("bench.redb"),
        &StoreOptions {
            cache_bytes: 256 << 20,
            write_queue: 1024,
            max_batch: 256,
            ..Default::default()
        },
    )
    .expect("open store");
    let env = Uuid::now_v7();
    let builds: Vec<Uuid> = (0..10)
        .map(|i| {
            let new = NewBuild {
                user_id: None,
                name: format!("bench-build-{i}"),
                description: None,
                commit_hash: None,
                root_task_ids: vec![],
                salt: i,
            };
            store
                .write_blocking(move |tx| {
                    Tables::with(tx, |t| tasks::create_build(t, env, new, now_micros()))
                })
                .expect("build")
                .id
        })
        .collect();

    println!("search latency, one environment, page_size {PAGE_SIZE}, {runs} runs per query\n");
    let mut columns = Vec::new();
    let mut seeded = 0;
    let sizes: Vec<usize> = match args.value("--sizes") {
        Some(list) => list
            .split(',')
            .map(|x| x.trim().parse().expect("--sizes: numbers"))
            .collect(),
        None => vec![n / 10, n],
    };
    for size in sizes {
        let started = Instant::now();
        let added = size - seeded;
        seed(&store, env, &builds, seeded, size);
        let secs = started.elapsed().as_secs_f64();
        seeded = size;
        // `created_at` of the task in the middle of the seeded range: the newest half.
        let since = store
            .read_blocking(|tx| tasks::task_by_hash(tx, env, &hash(size / 2)))
            .expect("read")
            .map(|t| stardag_server::clock::format_micros(t.created_at))
            .expect("seeded task");
        eprintln!(
            "seeded {size} tasks ({:.0} tasks/s with their events, 1 000 per transaction)",
            added as f64 / secs
        );
        let rows: Vec<(f64, f64, u64, bool)> = cases
            .iter()
            .map(|c| time_case(&store, env, c, &since, runs))
            .collect();
        columns.push((size, rows));
    }
    print!("{:<40}", "query");
    for (size, _) in &columns {
        print!(
            " | {:>8} {:>8} {:>8}",
            format!("{}k p50", size / 1000),
            "p99",
            "matches"
        );
    }
    println!();
    for (i, case) in cases.iter().enumerate() {
        print!("{:<40}", case.name);
        for (_, rows) in &columns {
            let (p50, p99, total, bounded) = rows[i];
            let total = format!("{total}{}", if bounded { "+" } else { "" });
            print!(" | {:>8.3} {:>8.3} {:>8}", p50, p99, total);
        }
        println!();
    }
    println!("\n(milliseconds; matches = the answer's `total`, + when it is a lower bound)");
    store.shutdown();

    let per_writer = args.arg("--writes", 38_400) / 128;
    if per_writer == 0 {
        return;
    }
    println!("\nwrite path with the indexes, 128 concurrent submitters, durable group commit\n");
    println!(
        "{:<40} {:>14} {:>12}",
        "task_data", "registrations/s", "events/s"
    );
    for (name, sdk) in [
        ("3 scalars (load benchmark's)", false),
        ("10 scalars (SDK dump, nested)", true),
    ] {
        let (r, e) = write_rates(sdk, per_writer);
        println!("{name:<40} {r:>14.0} {e:>12.0}");
    }
}
