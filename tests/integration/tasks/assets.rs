//! Registry assets (v1-tasks §4.2 upload, §4.3 read; the upstream asset tests).

use http::Method;
use serde_json::{json, Value};

use super::*;

fn markdown(name: &str, text: &str) -> Value {
    json!({"type": "markdown", "name": name, "body": {"content": text}})
}

#[tokio::test]
async fn upload_then_read_assets_with_exact_shapes() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let t = hash("report");
    run_task(&c, &b, &reg(&t, "Report", &[])).await;
    let metrics =
        json!({"rows": 3, "score": 0.75, "nested": {"list": [1, {"a": null}], "ok": true}});
    let up = c
        .post(
            &format!("/api/v1/builds/{b}/tasks/{t}/assets"),
            &json!([
                markdown("summary", "# Report\n\n| a | b |\n|---|---|\n| 1 | ü |"),
                {"type": "json", "name": "metrics", "body": metrics},
            ]),
        )
        .await
        .expect(201);
    let assets = up["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 2);
    for a in assets {
        assert_eq!(
            keys(a),
            sorted(&["id", "task_id", "asset_type", "name", "body", "created_at"])
        );
        assert_uuid(&a["id"]);
        assert_eq!(a["task_id"], json!(t), "assets name the task by hash");
        assert_ts(&a["created_at"]);
    }
    assert_eq!(assets[0]["asset_type"], "markdown");
    assert_eq!(assets[0]["name"], "summary");
    assert_eq!(
        assets[0]["body"],
        json!({"content": "# Report\n\n| a | b |\n|---|---|\n| 1 | ü |"})
    );
    assert_eq!(assets[1]["asset_type"], "json");
    assert_eq!(assets[1]["body"], metrics);

    let read = c
        .get(&format!("/api/v1/tasks/{t}/assets"))
        .await
        .expect(200);
    assert_eq!(read, up, "oldest first, same rows");

    // Counted on the task, in lists and graph; no event appended.
    assert_eq!(build_tasks(&c, &b).await[&t]["asset_count"], 2);
    let g = c
        .get(&format!("/api/v1/builds/{b}/graph"))
        .await
        .expect(200);
    assert_eq!(g["nodes"][0]["asset_count"], 2);
    let events = c
        .get(&format!("/api/v1/builds/{b}/events"))
        .await
        .expect(200);
    assert_eq!(
        types(&events),
        vec![
            "build_started",
            "task_pending",
            "task_started",
            "task_completed"
        ]
    );

    // environment_id is ignored for API keys.
    let with_env = c
        .get(&format!("/api/v1/tasks/{t}/assets?environment_id=whatever"))
        .await
        .expect(200);
    assert_eq!(with_env, read);
}

#[tokio::test]
async fn reupload_replaces_the_body_and_keeps_id_and_created_at() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let t = hash("reupload");
    register(&c, &b, &reg(&t, "R", &[])).await;
    let path = format!("/api/v1/builds/{b}/tasks/{t}/assets");
    let first = c
        .post(
            &path,
            &json!([markdown("summary", "v1"), markdown("notes", "n")]),
        )
        .await
        .expect(201);
    // Another build may upload too: assets belong to the task.
    let b2 = new_build_id(&c).await;
    let second = c
        .post(
            &format!("/api/v1/builds/{b2}/tasks/{t}/assets"),
            &json!([markdown("summary", "v2")]),
        )
        .await
        .expect(201);
    assert_eq!(second["assets"][0]["id"], first["assets"][0]["id"]);
    assert_eq!(
        second["assets"][0]["created_at"],
        first["assets"][0]["created_at"]
    );
    assert_eq!(second["assets"][0]["body"], json!({"content": "v2"}));
    // Same name, other type: a separate asset.
    c.post(
        &path,
        &json!([{"type": "json", "name": "summary", "body": {"k": 1}}]),
    )
    .await
    .expect(201);
    let read = c
        .get(&format!("/api/v1/tasks/{t}/assets"))
        .await
        .expect(200);
    let names: Vec<(String, String)> = read["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["asset_type"].as_str().unwrap().to_owned(),
                a["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("markdown".into(), "summary".into()),
            ("markdown".into(), "notes".into()),
            ("json".into(), "summary".into())
        ],
        "oldest first"
    );
    assert_eq!(read["assets"][0]["body"], json!({"content": "v2"}));
    assert_eq!(build_tasks(&c, &b).await[&t]["asset_count"], 3);

    // A key repeated in one request: written once, the later body wins, and both
    // entries answer with it.
    let dup = c
        .post(
            &path,
            &json!([markdown("dup", "one"), markdown("dup", "two")]),
        )
        .await
        .expect(201);
    let d = dup["assets"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0], d[1]);
    assert_eq!(d[0]["body"], json!({"content": "two"}));
    assert_eq!(build_tasks(&c, &b).await[&t]["asset_count"], 4);

    let empty = c.post(&path, &json!([])).await.expect(201);
    assert_eq!(empty, json!({"assets": []}));
}

#[tokio::test]
async fn asset_errors() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let t = hash("assets-errors");
    register(&c, &b, &reg(&t, "E", &[])).await;
    let path = format!("/api/v1/builds/{b}/tasks/{t}/assets");
    let item = json!([markdown("s", "x")]);

    let r = c
        .post(
            &format!("/api/v1/builds/{}/tasks/{t}/assets", uuid::Uuid::now_v7()),
            &item,
        )
        .await;
    assert_eq!(r.expect(404), json!({"detail": "Build not found"}));
    let r = c
        .post(
            &format!("/api/v1/builds/{b}/tasks/{}/assets", hash("none")),
            &item,
        )
        .await;
    assert_eq!(r.expect(404), json!({"detail": "Task not found"}));
    let r = c
        .post(&format!("/api/v1/builds/b/tasks/{t}/assets"), &item)
        .await;
    assert_422(&r.expect(422), "uuid_parsing", json!(["path", "build_id"]));
    let r = c
        .send(Method::POST, &path, &[], Default::default())
        .await
        .expect(422);
    assert_422(&r, "missing", json!(["body"]));
    let r = c
        .post(&path, &json!({"type": "markdown"}))
        .await
        .expect(422);
    assert_eq!(r["detail"][0]["loc"], json!(["body"]));
    let r = c
        .post(&path, &json!([{"type": "json", "name": "n", "body": [1]}]))
        .await
        .expect(422);
    assert_eq!(r["detail"][0]["loc"], json!(["body", 0, "body"]));
    let r = c
        .post(&path, &json!([{"type": "json", "body": {}}]))
        .await
        .expect(422);
    assert_422(&r, "missing", json!(["body", 0, "name"]));

    let r = c
        .get(&format!("/api/v1/tasks/{}/assets", hash("none")))
        .await;
    assert_eq!(r.expect(404), json!({"detail": "Task not found"}));
    let none = c
        .get(&format!("/api/v1/tasks/{t}/assets"))
        .await
        .expect(200);
    assert_eq!(none, json!({"assets": []}));
}
