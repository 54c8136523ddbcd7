//! The seven task-event routes (v1-tasks §4.2), per-build status (§3.3), the global
//! status (§3.4, D18) and event reads (§4.2, §4.3).

use serde_json::{json, Value};

use super::*;

const EVENT_KEYS: [&str; 7] = [
    "id",
    "build_id",
    "task_id",
    "event_type",
    "created_at",
    "error_message",
    "event_metadata",
];

#[tokio::test]
async fn every_task_event_route_answers_the_per_build_status() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let t = hash("lifecycle");
    register(&c, &b, &reg(&t, "Life", &[])).await;
    let steps = [
        ("waiting-for-lock", "pending"),
        ("start", "running"),
        ("suspend", "suspended"),
        ("waiting-for-lock", "suspended"),
        ("resume", "running"),
        ("complete", "completed"),
        ("fail", "failed"),
        ("cancel", "cancelled"),
        ("start", "running"),
    ];
    for (action, status) in steps {
        assert_eq!(
            task_event(&c, &b, &t, action).await,
            json!({"task_id": t, "status": status}),
            "{action}"
        );
    }
    let events = c
        .get(&format!("/api/v1/builds/{b}/events"))
        .await
        .expect(200);
    assert_eq!(
        types(&events),
        vec![
            "build_started",
            "task_pending",
            "task_waiting_for_lock",
            "task_started",
            "task_suspended",
            "task_waiting_for_lock",
            "task_resumed",
            "task_completed",
            "task_failed",
            "task_cancelled",
            "task_started",
        ]
    );
    // Completion is sticky globally (§3.4): the later fail/cancel/start do not undo it.
    let row = &build_tasks(&c, &b).await[&t];
    assert_eq!(row["status"], "completed");
}

#[tokio::test]
async fn task_event_routes_check_build_then_task() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let t = hash("known");
    register(&c, &b, &reg(&t, "Known", &[])).await;
    let unknown_build = uuid::Uuid::now_v7();
    for action in [
        "start",
        "complete",
        "fail",
        "suspend",
        "resume",
        "cancel",
        "waiting-for-lock",
    ] {
        let r = post_empty(
            &c,
            &format!("/api/v1/builds/{b}/tasks/{}/{action}", hash("nope")),
        )
        .await;
        assert_eq!(
            r.expect(404),
            json!({"detail": "Task not found"}),
            "{action}"
        );
        let r = post_empty(
            &c,
            &format!(
                "/api/v1/builds/{unknown_build}/tasks/{}/{action}",
                hash("nope")
            ),
        )
        .await;
        assert_eq!(
            r.expect(404),
            json!({"detail": "Build not found"}),
            "{action}"
        );
        let r = post_empty(
            &c,
            &format!("/api/v1/builds/{unknown_build}/tasks/{t}/{action}"),
        )
        .await;
        assert_eq!(
            r.expect(404),
            json!({"detail": "Build not found"}),
            "{action}"
        );
        let r = post_empty(&c, &format!("/api/v1/builds/x/tasks/{t}/{action}")).await;
        assert_422(&r.expect(422), "uuid_parsing", json!(["path", "build_id"]));
    }
    let r = post_empty(&c, &format!("/api/v1/builds/{b}/tasks/{t}/skip")).await;
    assert_eq!(r.expect(404), json!({"detail": "Not Found"}));
    // Refused events appended nothing.
    let events = c
        .get(&format!("/api/v1/builds/{b}/events"))
        .await
        .expect(200);
    assert_eq!(types(&events), vec!["build_started", "task_pending"]);
}

#[tokio::test]
async fn fail_and_waiting_for_lock_carry_their_query_values() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let t = hash("failing");
    register(&c, &b, &reg(&t, "Boom", &[])).await;
    task_event(&c, &b, &t, "waiting-for-lock").await;
    // While globally pending, the flag shows.
    let row = &build_tasks(&c, &b).await[&t];
    assert_eq!(row["waiting_for_lock"], true);
    assert_eq!(row["status"], "pending");
    post_empty(
        &c,
        &format!("/api/v1/builds/{b}/tasks/{t}/waiting-for-lock?lock_owner=Lock+is+held+by+another+owner"),
    )
    .await
    .expect(200);
    task_event(&c, &b, &t, "start").await;
    let msg = "kaboom ü & = % /x?y#z";
    let r = post_empty(
        &c,
        &format!(
            "/api/v1/builds/{b}/tasks/{t}/fail?error_message={}",
            super::builds::form_encode(msg)
        ),
    )
    .await
    .expect(200);
    assert_eq!(r, json!({"task_id": t, "status": "failed"}));

    let events = c
        .get(&format!("/api/v1/tasks/{t}/events"))
        .await
        .expect(200);
    let ev = events.as_array().unwrap();
    assert_eq!(
        types(&events),
        vec![
            "task_failed",
            "task_started",
            "task_waiting_for_lock",
            "task_waiting_for_lock",
            "task_pending"
        ],
        "newest first"
    );
    assert_eq!(ev[0]["error_message"], json!(msg));
    assert_eq!(ev[0]["event_metadata"], Value::Null);
    assert_eq!(
        ev[2]["event_metadata"],
        json!({"lock_owner": "Lock is held by another owner"})
    );
    assert_eq!(
        ev[3]["event_metadata"],
        Value::Null,
        "no lock_owner, no metadata"
    );

    let row = &build_tasks(&c, &b).await[&t];
    assert_eq!(row["status"], "failed");
    assert_eq!(row["error_message"], json!(msg));
    assert_eq!(row["waiting_for_lock"], false, "cleared by the start");
    assert_eq!(row["status_build_id"], json!(b));
    assert_ts(&row["started_at"]);
    assert_ts(&row["completed_at"]);
    // A restart does not clear the failure's message or completed_at (§3.4).
    task_event(&c, &b, &t, "start").await;
    let again = &build_tasks(&c, &b).await[&t];
    assert_eq!(again["status"], "running");
    assert_eq!(again["error_message"], json!(msg));
    assert_eq!(again["completed_at"], row["completed_at"]);
    assert_eq!(again["started_at"], row["started_at"], "earliest start");
}

#[tokio::test]
async fn events_have_exact_shapes_and_keep_append_order() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b1 = new_build_id(&c).await;
    let t = hash("ordered");
    let task = register(&c, &b1, &reg(&t, "Ordered", &[])).await;
    task_event(&c, &b1, &t, "start").await;
    task_event(&c, &b1, &t, "complete").await;
    let b2 = new_build_id(&c).await;
    register(&c, &b2, &reg(&t, "Ordered", &[])).await;
    post_empty(&c, &format!("/api/v1/builds/{b1}/complete"))
        .await
        .expect(200);

    let be = c
        .get(&format!("/api/v1/builds/{b1}/events"))
        .await
        .expect(200);
    assert_eq!(
        types(&be),
        vec![
            "build_started",
            "task_pending",
            "task_started",
            "task_completed",
            "build_completed"
        ]
    );
    let mut last = String::new();
    let mut ids = std::collections::HashSet::new();
    for e in be.as_array().unwrap() {
        assert_eq!(keys(e), sorted(&EVENT_KEYS));
        assert_uuid(&e["id"]);
        assert!(
            ids.insert(e["id"].as_str().unwrap().to_owned()),
            "unique ids"
        );
        assert_eq!(e["build_id"], json!(b1));
        assert_ts(&e["created_at"]);
        let at = e["created_at"].as_str().unwrap().to_owned();
        assert!(
            at > last,
            "strictly increasing timestamps: {at} after {last}"
        );
        last = at;
        let task_level = e["event_type"].as_str().unwrap().starts_with("task_");
        assert_eq!(e["task_id"] == task["id"], task_level);
        assert_eq!(e["task_id"].is_null(), !task_level);
    }

    let te = c
        .get(&format!("/api/v1/tasks/{t}/events"))
        .await
        .expect(200);
    assert_eq!(
        types(&te),
        vec![
            "task_referenced",
            "task_completed",
            "task_started",
            "task_pending"
        ]
    );
    assert_eq!(te[0]["build_id"], json!(b2));
    // The same rows as in the build's list.
    assert_eq!(te[3], be[1]);
    assert_eq!(te[1], be[3]);

    let unknown = uuid::Uuid::now_v7();
    let r = c.get(&format!("/api/v1/builds/{unknown}/events")).await;
    assert_eq!(r.expect(404), json!({"detail": "Build not found"}));
    let r = c.get("/api/v1/builds/zzz/events").await;
    assert_422(&r.expect(422), "uuid_parsing", json!(["path", "build_id"]));
    let r = c
        .get(&format!("/api/v1/tasks/{}/events", hash("missing")))
        .await;
    assert_eq!(r.expect(404), json!({"detail": "Task not found"}));
}

#[tokio::test]
async fn an_event_makes_a_task_member_of_the_build() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b1 = new_build_id(&c).await;
    let t = hash("holder");
    register(&c, &b1, &reg(&t, "Held", &[])).await;
    // Another build only waits for the lock (the SDK's waiting build, §5.3).
    let b2 = new_build_id(&c).await;
    post_empty(
        &c,
        &format!("/api/v1/builds/{b2}/tasks/{t}/waiting-for-lock?lock_owner=held"),
    )
    .await
    .expect(200);
    let tasks = build_tasks(&c, &b2).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[&t]["waiting_for_lock"], true);
    let events = c
        .get(&format!("/api/v1/builds/{b2}/events"))
        .await
        .expect(200);
    assert_eq!(
        types(&events),
        vec!["build_started", "task_waiting_for_lock"]
    );
}

#[tokio::test]
async fn metadata_follows_the_global_status() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let t = hash("meta");
    let mut body = reg(&t, "Meta", &[]);
    body["version"] = json!("1.0.0");
    let task = register(&c, &b, &body).await;
    let meta = c
        .get(&format!("/api/v1/tasks/{t}/metadata"))
        .await
        .expect(200);
    assert_eq!(
        meta,
        json!({
            "id": t,
            "body": body["task_data"],
            "name": "Meta",
            "namespace": "tests",
            "version": "1.0.0",
            "output_uri": body["output_uri"],
            "status": "pending",
            "registered_at": task["created_at"],
            "started_at": null,
            "completed_at": null,
            "error_message": null,
        })
    );
    task_event(&c, &b, &t, "start").await;
    let running = c
        .get(&format!("/api/v1/tasks/{t}/metadata"))
        .await
        .expect(200);
    assert_eq!(running["status"], "running");
    assert_ts(&running["started_at"]);
    assert_eq!(running["completed_at"], Value::Null);
    // D18: one global derivation, so a cancellation shows in metadata too.
    task_event(&c, &b, &t, "cancel").await;
    let cancelled = c
        .get(&format!("/api/v1/tasks/{t}/metadata"))
        .await
        .expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_ts(&cancelled["completed_at"]);
    task_event(&c, &b, &t, "complete").await;
    let done = c
        .get(&format!("/api/v1/tasks/{t}/metadata"))
        .await
        .expect(200);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["started_at"], running["started_at"]);
    assert!(done["completed_at"].as_str() > cancelled["completed_at"].as_str());

    // A null version reads as "" (the SDK requires a string).
    let t2 = hash("meta-null-version");
    register(
        &c,
        &b,
        &json!({"task_id": t2, "task_name": "N", "task_data": {"a": 1}}),
    )
    .await;
    let m2 = c
        .get(&format!("/api/v1/tasks/{t2}/metadata"))
        .await
        .expect(200);
    assert_eq!(m2["version"], "");
    assert_eq!(m2["output_uri"], Value::Null);
    assert_eq!(m2["namespace"], "");

    let r = c
        .get(&format!("/api/v1/tasks/{}/metadata", hash("absent")))
        .await;
    assert_eq!(r.expect(404), json!({"detail": "Task not found"}));
}
