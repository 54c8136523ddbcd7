//! Replays of the real SDK's request sequences (docs/sdk-0.1.0-wire.md §4), checked
//! against the exact bodies the SDK and the UI read back.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::*;
use crate::harness::Client;

struct Diamond {
    a: String,
    b: String,
    c: String,
    d: String,
}

impl Diamond {
    fn new(tag: &str) -> Diamond {
        Diamond {
            a: hash(&format!("{tag}-A")),
            b: hash(&format!("{tag}-B")),
            c: hash(&format!("{tag}-C")),
            d: hash(&format!("{tag}-D")),
        }
    }

    fn all(&self) -> [&str; 4] {
        [&self.a, &self.b, &self.c, &self.d]
    }

    fn body(&self, t: &str) -> Value {
        let (name, deps): (&str, Vec<&str>) = if t == self.a {
            ("A", vec![])
        } else if t == self.b {
            ("B", vec![&self.a])
        } else if t == self.c {
            ("C", vec![&self.a])
        } else {
            ("D", vec![&self.b, &self.c])
        };
        reg(t, name, &deps)
    }
}

async fn start_build(c: &Client, root: &str) -> String {
    let b = c
        .post(
            "/api/v1/builds",
            &json!({"commit_hash": "abc123", "root_task_ids": [root], "description": null}),
        )
        .await
        .expect(201);
    // The SDK reads `id` (a UUID) and `name` (KeyError if missing).
    assert_uuid(&b["id"]);
    assert!(b["name"].is_string());
    b["id"].as_str().unwrap().to_owned()
}

/// The concurrent build's trace (§4.1): A, then B and C interleaved, then D.
async fn build_diamond(c: &Client, d: &Diamond) -> String {
    let b = start_build(c, &d.d).await;
    run_task(c, &b, &d.body(&d.a)).await;
    register(c, &b, &d.body(&d.b)).await;
    register(c, &b, &d.body(&d.c)).await;
    task_event(c, &b, &d.c, "start").await;
    task_event(c, &b, &d.b, "start").await;
    task_event(c, &b, &d.c, "complete").await;
    task_event(c, &b, &d.b, "complete").await;
    run_task(c, &b, &d.body(&d.d)).await;
    post_empty(c, &format!("/api/v1/builds/{b}/complete"))
        .await
        .expect(200);
    b
}

/// Build events split into build-level ones and per task hash.
async fn events_by_task(
    c: &Client,
    build: &str,
    tasks: &HashMap<String, Value>,
) -> (Value, Vec<String>, HashMap<String, Vec<Value>>) {
    let evs = c
        .get(&format!("/api/v1/builds/{build}/events"))
        .await
        .expect(200);
    let by_pk: HashMap<String, String> = tasks
        .iter()
        .map(|(h, t)| (t["id"].as_str().unwrap().to_owned(), h.clone()))
        .collect();
    let mut build_level = Vec::new();
    let mut per_task: HashMap<String, Vec<Value>> = HashMap::new();
    for e in evs.as_array().unwrap() {
        match e["task_id"].as_str() {
            None => build_level.push(e["event_type"].as_str().unwrap().to_owned()),
            Some(pk) => per_task
                .entry(by_pk[pk].clone())
                .or_default()
                .push(e.clone()),
        }
    }
    (evs, build_level, per_task)
}

#[tokio::test]
async fn diamond_dag_build_reads_back_like_the_sdk_test_expects() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let d = Diamond::new("diamond");
    let b = build_diamond(&c, &d).await;

    let build = c.get(&format!("/api/v1/builds/{b}")).await.expect(200);
    assert_eq!(build["status"], "completed");
    assert_eq!(build["root_task_ids"], json!([d.d]));
    assert_eq!(build["commit_hash"], "abc123");
    assert_eq!(build["user_id"], Value::Null);
    assert!(build["completed_at"].as_str() >= build["started_at"].as_str());

    let tasks = build_tasks(&c, &b).await;
    assert_eq!(tasks.len(), 4);
    for t in d.all() {
        let row = &tasks[t];
        let body = d.body(t);
        assert_eq!(row["task_data"], body["task_data"]);
        assert_eq!(row["output_uri"], body["output_uri"]);
        assert_eq!(row["version"], "");
        assert_eq!(row["status"], "completed");
        assert_eq!(row["status_build_id"], json!(b));
        assert_eq!(row["error_message"], Value::Null);
        assert_eq!(row["waiting_for_lock"], false);
        assert_eq!(row["asset_count"], 0);
        assert!(row["started_at"].as_str() <= row["completed_at"].as_str());
    }

    let (evs, build_level, per_task) = events_by_task(&c, &b, &tasks).await;
    assert_eq!(build_level, vec!["build_started", "build_completed"]);
    let pos: HashMap<String, usize> = evs
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, e)| (e["id"].as_str().unwrap().to_owned(), i))
        .collect();
    let at = |t: &str, kind: &str| -> usize {
        let e = per_task[t]
            .iter()
            .find(|e| e["event_type"] == kind)
            .unwrap();
        pos[e["id"].as_str().unwrap()]
    };
    for t in d.all() {
        let kinds: Vec<&str> = per_task[t]
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            vec!["task_pending", "task_started", "task_completed"]
        );
    }
    for (up, down) in [(&d.a, &d.b), (&d.a, &d.c), (&d.b, &d.d), (&d.c, &d.d)] {
        assert!(at(up, "task_completed") < at(down, "task_pending"));
        assert!(at(down, "task_pending") < at(down, "task_started"));
    }

    let g = c
        .get(&format!("/api/v1/builds/{b}/graph"))
        .await
        .expect(200);
    let pk = |t: &str| tasks[t]["id"].as_str().unwrap().to_owned();
    let mut edges: Vec<(String, String)> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    edges.sort();
    let mut want = vec![
        (pk(&d.a), pk(&d.b)),
        (pk(&d.a), pk(&d.c)),
        (pk(&d.b), pk(&d.d)),
        (pk(&d.c), pk(&d.d)),
    ];
    want.sort();
    assert_eq!(edges, want);
    assert_eq!(g["nodes"].as_array().unwrap().len(), 4);
    for n in g["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], "completed");
    }

    // Each task's history across builds = this build's events, newest first.
    for t in d.all() {
        let hist = c
            .get(&format!("/api/v1/tasks/{t}/events"))
            .await
            .expect(200);
        let mut mine = per_task[t].clone();
        mine.reverse();
        assert_eq!(hist, json!(mine));
        let meta = c
            .get(&format!("/api/v1/tasks/{t}/metadata"))
            .await
            .expect(200);
        assert_eq!(meta["status"], "completed");
        assert!(meta["registered_at"].as_str() <= meta["started_at"].as_str());
        assert!(meta["started_at"].as_str() <= meta["completed_at"].as_str());
    }
}

#[tokio::test]
async fn rerun_registers_only_the_complete_root() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let d = Diamond::new("rerun");
    let first = build_diamond(&c, &d).await;

    let again = start_build(&c, &d.d).await;
    register(&c, &again, &d.body(&d.d)).await;
    post_empty(&c, &format!("/api/v1/builds/{again}/complete"))
        .await
        .expect(200);

    let tasks = build_tasks(&c, &again).await;
    assert_eq!(tasks.keys().collect::<Vec<_>>(), vec![&d.d]);
    let row = &tasks[&d.d];
    assert_eq!(row["status"], "completed");
    assert_eq!(
        row["status_build_id"],
        json!(first),
        "still completed by build 1"
    );
    let (_, build_level, per_task) = events_by_task(&c, &again, &tasks).await;
    assert_eq!(build_level, vec!["build_started", "build_completed"]);
    assert_eq!(per_task[&d.d].len(), 1);
    assert_eq!(per_task[&d.d][0]["event_type"], "task_referenced");
    let g = c
        .get(&format!("/api/v1/builds/{again}/graph"))
        .await
        .expect(200);
    assert_eq!(g["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(g["edges"], json!([]));
    let hist = c
        .get(&format!("/api/v1/tasks/{}/events", d.d))
        .await
        .expect(200);
    assert_eq!(hist[0]["event_type"], "task_referenced");
    assert_eq!(hist[0]["build_id"], json!(again));
    // The first build's answers are unchanged.
    for t in d.all() {
        assert_eq!(
            build_tasks(&c, &first).await[t]["status_build_id"],
            json!(first)
        );
    }
}

#[tokio::test]
async fn a_failing_task_fails_the_build_with_the_same_message() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let (leaf, boom) = (hash("fail-leaf"), hash("fail-boom"));
    let message = format!(
        "kaboom ünïcode & symbols = 100% +plus /path?x=1#frag {}",
        "long-".repeat(600)
    );
    let q = super::builds::form_encode(&message);
    let b = start_build(&c, &boom).await;
    run_task(&c, &b, &reg(&leaf, "Leaf", &[])).await;
    register(&c, &b, &reg(&boom, "Boom", &[&leaf])).await;
    task_event(&c, &b, &boom, "start").await;
    let r = post_empty(
        &c,
        &format!("/api/v1/builds/{b}/tasks/{boom}/fail?error_message={q}"),
    )
    .await
    .expect(200);
    assert_eq!(r, json!({"task_id": boom, "status": "failed"}));
    let r = post_empty(&c, &format!("/api/v1/builds/{b}/fail?error_message={q}"))
        .await
        .expect(200);
    assert_eq!(r["status"], "failed");
    assert_ts(&r["completed_at"]);

    let tasks = build_tasks(&c, &b).await;
    assert_eq!(tasks[&leaf]["status"], "completed");
    let row = &tasks[&boom];
    assert_eq!(row["status"], "failed");
    assert_eq!(row["error_message"], json!(message));
    assert_eq!(row["status_build_id"], json!(b));
    assert_ts(&row["started_at"]);
    assert_ts(&row["completed_at"]);
    let (evs, build_level, per_task) = events_by_task(&c, &b, &tasks).await;
    assert_eq!(build_level, vec!["build_started", "build_failed"]);
    let last = evs.as_array().unwrap().last().unwrap();
    assert_eq!(last["event_type"], "build_failed");
    assert_eq!(last["error_message"], json!(message));
    let kinds: Vec<&str> = per_task[&boom]
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["task_pending", "task_started", "task_failed"]);
    assert_eq!(per_task[&boom][2]["error_message"], json!(message));

    let meta = c
        .get(&format!("/api/v1/tasks/{boom}/metadata"))
        .await
        .expect(200);
    assert_eq!(meta["status"], "failed");
    assert_eq!(meta["error_message"], json!(message));
    assert_ts(&meta["started_at"]);
    assert_ts(&meta["completed_at"]);
}

#[tokio::test]
async fn dynamic_dependencies_suspend_and_resume_the_parent() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let (p, x) = (hash("dyn-parent"), hash("dyn-child"));
    let b = start_build(&c, &p).await;
    register(&c, &b, &reg(&p, "Parent", &[])).await;
    task_event(&c, &b, &p, "start").await;
    assert_eq!(
        task_event(&c, &b, &p, "suspend").await,
        json!({"task_id": p, "status": "suspended"})
    );
    // Suspended shows as running globally (§3.4).
    assert_eq!(build_tasks(&c, &b).await[&p]["status"], "running");
    run_task(&c, &b, &reg(&x, "Child", &[])).await;
    assert_eq!(
        task_event(&c, &b, &p, "resume").await,
        json!({"task_id": p, "status": "running"})
    );
    task_event(&c, &b, &p, "complete").await;
    post_empty(&c, &format!("/api/v1/builds/{b}/complete"))
        .await
        .expect(200);
    let tasks = build_tasks(&c, &b).await;
    assert_eq!(tasks[&p]["status"], "completed");
    assert_eq!(tasks[&x]["status"], "completed");
    // Dynamic dependencies never become edges.
    let g = c
        .get(&format!("/api/v1/builds/{b}/graph"))
        .await
        .expect(200);
    assert_eq!(g["edges"], json!([]));
    let (_, _, per_task) = events_by_task(&c, &b, &tasks).await;
    let kinds: Vec<&str> = per_task[&p]
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "task_pending",
            "task_started",
            "task_suspended",
            "task_resumed",
            "task_completed"
        ]
    );
}

#[tokio::test]
async fn previously_complete_tasks_registered_up_front_stay_pending() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let (done, next) = (hash("on-disk"), hash("runs"));
    let b = start_build(&c, &next).await;
    // Complete on disk, never seen by the registry: registered, never started.
    register(&c, &b, &reg(&done, "OnDisk", &[])).await;
    run_task(&c, &b, &reg(&next, "Runs", &[&done])).await;
    post_empty(&c, &format!("/api/v1/builds/{b}/complete"))
        .await
        .expect(200);
    let tasks = build_tasks(&c, &b).await;
    assert_eq!(tasks[&done]["status"], "pending");
    assert_eq!(tasks[&done]["status_build_id"], Value::Null);
    assert_eq!(tasks[&next]["status"], "completed");
    let g = c
        .get(&format!("/api/v1/builds/{b}/graph"))
        .await
        .expect(200);
    assert_eq!(
        g["edges"],
        json!([{"source": tasks[&done]["id"], "target": tasks[&next]["id"]}])
    );
}
