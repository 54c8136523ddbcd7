//! Task registration (v1-tasks §4.2 as changed by D17): first write wins, idempotent,
//! race-free, dependency edges never lost; D6's `POST /tasks` alias.

use std::sync::Arc;

use http::Method;
use serde_json::{json, Value};

use super::*;

const TASK_KEYS: [&str; 9] = [
    "id",
    "task_id",
    "environment_id",
    "task_namespace",
    "task_name",
    "task_data",
    "version",
    "output_uri",
    "created_at",
];

#[tokio::test]
async fn register_answers_the_stored_task_and_first_write_wins() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b1 = new_build_id(&c).await;
    let t = hash("first-write");
    let body = reg(&t, "Leaf", &[]);
    let first = register(&c, &b1, &body).await;
    assert_eq!(keys(&first), sorted(&TASK_KEYS));
    assert_uuid(&first["id"]);
    assert_eq!(first["task_id"], json!(t));
    assert_eq!(first["environment_id"], json!(f.env_id()));
    assert_eq!(first["task_namespace"], "tests");
    assert_eq!(first["task_name"], "Leaf");
    assert_eq!(first["task_data"], body["task_data"]);
    assert_eq!(first["version"], "");
    assert_eq!(first["output_uri"], body["output_uri"]);
    assert_ts(&first["created_at"]);

    // A later registration (any build) changes nothing about the task.
    let b2 = new_build_id(&c).await;
    let mut changed = reg(&t, "Renamed", &[]);
    changed["task_data"] = json!({"other": [1, 2.5, {"deep": null}]});
    changed["version"] = json!("2");
    changed["output_uri"] = Value::Null;
    changed["task_namespace"] = json!("elsewhere");
    assert_eq!(register(&c, &b2, &changed).await, first);
    assert_eq!(register(&c, &b1, &changed).await, first);
    assert_eq!(
        c.get(&format!("/api/v1/tasks/{t}")).await.expect(200),
        first
    );

    // Each call appends one event: task_pending once, then task_referenced.
    let events = c
        .get(&format!("/api/v1/tasks/{t}/events"))
        .await
        .expect(200);
    assert_eq!(
        types(&events),
        vec!["task_referenced", "task_referenced", "task_pending"]
    );
    assert_eq!(events[2]["build_id"], json!(b1));
    assert_eq!(events[1]["build_id"], json!(b2));
    assert_eq!(events[0]["build_id"], json!(b1));
    for e in events.as_array().unwrap() {
        assert_eq!(e["task_id"], first["id"], "events carry the internal id");
    }

    // Defaults: namespace "", version and output_uri null, no dependencies.
    let t2 = hash("defaults");
    let minimal = register(
        &c,
        &b1,
        &json!({"task_id": t2, "task_name": "Bare", "task_data": {}}),
    )
    .await;
    assert_eq!(minimal["task_namespace"], "");
    assert_eq!(minimal["version"], Value::Null);
    assert_eq!(minimal["output_uri"], Value::Null);
    assert_eq!(minimal["task_data"], json!({}));
}

#[tokio::test]
async fn register_validation_and_lookup_errors() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let path = format!("/api/v1/builds/{b}/tasks");
    let no_body = c
        .send(Method::POST, &path, &[], Default::default())
        .await
        .expect(422);
    assert_422(&no_body, "missing", json!(["body"]));
    for field in ["task_id", "task_name", "task_data"] {
        let mut body = reg(&hash("x"), "X", &[]);
        body.as_object_mut().unwrap().remove(field);
        let r = c.post(&path, &body).await.expect(422);
        assert_422(&r, "missing", json!(["body", field]));
    }
    let mut not_object = reg(&hash("x"), "X", &[]);
    not_object["task_data"] = json!([1, 2]);
    let r = c.post(&path, &not_object).await.expect(422);
    assert_eq!(r["detail"][0]["loc"], json!(["body", "task_data"]));
    let mut bad_deps = reg(&hash("x"), "X", &[]);
    bad_deps["dependency_task_ids"] = json!("abc");
    let r = c.post(&path, &bad_deps).await.expect(422);
    assert_eq!(
        r["detail"][0]["loc"],
        json!(["body", "dependency_task_ids"])
    );
    let long = reg(&"h".repeat(256), "X", &[]);
    let r = c.post(&path, &long).await.expect(422);
    assert_eq!(r["detail"][0]["type"], "string_too_long", "{r}");
    assert_eq!(r["detail"][0]["loc"], json!(["body", "task_id"]));

    let unknown = format!("/api/v1/builds/{}/tasks", uuid::Uuid::now_v7());
    let r = c
        .post(&unknown, &reg(&hash("x"), "X", &[]))
        .await
        .expect(404);
    assert_eq!(r, json!({"detail": "Build not found"}));
    let r = c
        .post("/api/v1/builds/bad/tasks", &reg(&hash("x"), "X", &[]))
        .await
        .expect(422);
    assert_422(&r, "uuid_parsing", json!(["path", "build_id"]));
    // Path and body invalid together: one 422 with both.
    let r = c
        .post(
            "/api/v1/builds/bad/tasks",
            &json!({"task_name": "X", "task_data": {}}),
        )
        .await
        .expect(422);
    assert_422(&r, "uuid_parsing", json!(["path", "build_id"]));
    assert_422(&r, "missing", json!(["body", "task_id"]));
    // Nothing was registered by the refused calls.
    let list = c.get("/api/v1/tasks").await.expect(200);
    assert_eq!(list["total"], 0);
}

#[tokio::test]
async fn seed_alias_post_tasks_registers_into_the_named_build_d6() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let t = hash("seed");
    let mut body = reg(&t, "Seeded", &[]);
    body["build_id"] = json!(b);
    let row = c.post("/api/v1/tasks", &body).await.expect(201);
    assert_eq!(keys(&row), sorted(&TASK_KEYS));
    assert_eq!(row["task_id"], json!(t));
    let tasks = build_tasks(&c, &b).await;
    assert_eq!(tasks[&t]["id"], row["id"]);
    let events = c
        .get(&format!("/api/v1/builds/{b}/events"))
        .await
        .expect(200);
    assert_eq!(types(&events), vec!["build_started", "task_pending"]);

    let mut missing = reg(&hash("seed-2"), "S", &[]);
    let r = c.post("/api/v1/tasks", &missing).await.expect(422);
    assert_422(&r, "missing", json!(["body", "build_id"]));
    missing["build_id"] = json!("not-a-uuid");
    let r = c.post("/api/v1/tasks", &missing).await.expect(422);
    assert_422(&r, "uuid_parsing", json!(["body", "build_id"]));
    missing["build_id"] = json!(7);
    let r = c.post("/api/v1/tasks", &missing).await.expect(422);
    assert_eq!(r["detail"][0]["loc"], json!(["body", "build_id"]));
    missing["build_id"] = json!(uuid::Uuid::now_v7().to_string());
    let r = c.post("/api/v1/tasks", &missing).await.expect(404);
    assert_eq!(r, json!({"detail": "Build not found"}));
    let r = c
        .send(Method::POST, "/api/v1/tasks", &[], Default::default())
        .await
        .expect(422);
    assert_eq!(
        r,
        json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_registrations_of_one_hash_give_one_task_d17() {
    let f = Fixture::start().await;
    let c = Arc::new(f.sdk());
    let b = new_build_id(&c).await;
    let t = hash("contended");
    let body = Arc::new(reg(&t, "Contended", &[]));
    let mut handles = Vec::new();
    for _ in 0..32 {
        let (c, b, body) = (c.clone(), b.clone(), body.clone());
        handles.push(tokio::spawn(async move {
            c.post(&format!("/api/v1/builds/{b}/tasks"), &body).await
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        let r = h.await.unwrap();
        ids.push(r.expect(201)["id"].clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "one task: {ids:?}");
    let list = c.get("/api/v1/tasks").await.expect(200);
    assert_eq!(list["total"], 1);
    let events = c
        .get(&format!("/api/v1/tasks/{t}/events"))
        .await
        .expect(200);
    let kinds = types(&events);
    assert_eq!(kinds.len(), 32);
    assert_eq!(kinds.iter().filter(|k| *k == "task_pending").count(), 1);
    assert_eq!(
        kinds.last().unwrap(),
        "task_pending",
        "the first one is pending"
    );
    assert_eq!(build_tasks(&c, &b).await.len(), 1);
}

#[tokio::test]
async fn edges_registered_before_their_upstream_appear_once_it_registers_d17() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let (up, down, other) = (hash("up"), hash("down"), hash("other"));
    // The downstream names an upstream nobody registered yet (and a repeat).
    let d = register(&c, &b, &reg(&down, "Down", &[&up, &up])).await;
    let g = c
        .get(&format!("/api/v1/builds/{b}/graph"))
        .await
        .expect(200);
    assert_eq!(g["edges"], json!([]));
    let u = register(&c, &b, &reg(&up, "Up", &[])).await;
    let g = c
        .get(&format!("/api/v1/builds/{b}/graph"))
        .await
        .expect(200);
    assert_eq!(g["edges"], json!([{"source": u["id"], "target": d["id"]}]));

    // Edges are environment-wide: another build holding both tasks sees the edge too.
    let b2 = new_build_id(&c).await;
    register(&c, &b2, &reg(&up, "Up", &[])).await;
    let g2 = c
        .get(&format!("/api/v1/builds/{b2}/graph"))
        .await
        .expect(200);
    assert_eq!(g2["edges"], json!([]), "only one end is in build 2");
    register(&c, &b2, &reg(&down, "Down", &[&up])).await;
    let g2 = c
        .get(&format!("/api/v1/builds/{b2}/graph"))
        .await
        .expect(200);
    assert_eq!(g2["edges"], json!([{"source": u["id"], "target": d["id"]}]));

    // A dependency listed only by a later registration is not lost either.
    let o = register(&c, &b2, &reg(&other, "Other", &[])).await;
    register(&c, &b2, &reg(&down, "Down", &[&up, &other])).await;
    let g2 = c
        .get(&format!("/api/v1/builds/{b2}/graph"))
        .await
        .expect(200);
    let mut edges: Vec<(String, String)> = g2["edges"]
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
        (
            u["id"].as_str().unwrap().to_owned(),
            d["id"].as_str().unwrap().to_owned(),
        ),
        (
            o["id"].as_str().unwrap().to_owned(),
            d["id"].as_str().unwrap().to_owned(),
        ),
    ];
    want.sort();
    assert_eq!(edges, want);
}

#[tokio::test]
async fn global_status_keeps_a_completion_while_per_build_answers_follow_the_build() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let t = hash("shared");
    let body = reg(&t, "Shared", &[]);
    let b1 = new_build_id(&c).await;
    run_task(&c, &b1, &body).await;

    // A later build starts and fails the same task: its own answers say so (§3.3)…
    let b2 = new_build_id(&c).await;
    register(&c, &b2, &body).await;
    assert_eq!(
        task_event(&c, &b2, &t, "start").await,
        json!({"task_id": t, "status": "running"})
    );
    let failed = post_empty(
        &c,
        &format!("/api/v1/builds/{b2}/tasks/{t}/fail?error_message=later+failure"),
    )
    .await
    .expect(200);
    assert_eq!(failed, json!({"task_id": t, "status": "failed"}));

    // …but the global status stays completed by build 1 (D18), everywhere.
    for b in [&b1, &b2] {
        let row = &build_tasks(&c, b).await[&t];
        assert_eq!(row["status"], "completed");
        assert_eq!(row["status_build_id"], json!(b1));
        assert_eq!(row["error_message"], Value::Null);
        let g = c
            .get(&format!("/api/v1/builds/{b}/graph"))
            .await
            .expect(200);
        assert_eq!(g["nodes"][0]["status"], "completed");
    }
    let meta = c
        .get(&format!("/api/v1/tasks/{t}/metadata"))
        .await
        .expect(200);
    assert_eq!(meta["status"], "completed");
    assert_eq!(meta["error_message"], Value::Null);
}
