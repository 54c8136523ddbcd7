//! Environment-wide task reads (v1-tasks §4.3) and build task lists and graphs (§4.2).

use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn list_tasks_filters_pages_and_orders_newest_first() {
    let f = Fixture::start().await;
    let c = f.sdk();
    assert_eq!(
        c.get("/api/v1/tasks").await.expect(200),
        json!({"tasks": [], "total": 0, "page": 1, "page_size": 20})
    );
    let b = new_build_id(&c).await;
    let mut made = Vec::new();
    for (i, (name, ns)) in [("A", "x"), ("B", "x"), ("A", "y"), ("A", "x"), ("C", "")]
        .iter()
        .enumerate()
    {
        let mut body = reg(&hash(&format!("list-{i}")), name, &[]);
        body["task_namespace"] = json!(ns);
        made.push(register(&c, &b, &body).await);
    }
    let all = c.get("/api/v1/tasks").await.expect(200);
    assert_eq!(all["total"], 5);
    let ids = |v: &Value| -> Vec<Value> {
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].clone())
            .collect()
    };
    let newest_first: Vec<Value> = made.iter().rev().map(|t| t["id"].clone()).collect();
    assert_eq!(ids(&all), newest_first);
    assert_eq!(
        all["tasks"][0], made[4],
        "TaskResponse entries, no status fields"
    );

    let a = c.get("/api/v1/tasks?task_name=A").await.expect(200);
    assert_eq!(a["total"], 3);
    assert_eq!(
        ids(&a),
        vec![
            made[3]["id"].clone(),
            made[2]["id"].clone(),
            made[0]["id"].clone()
        ]
    );
    let ax = c
        .get("/api/v1/tasks?task_name=A&task_namespace=x")
        .await
        .expect(200);
    assert_eq!(ids(&ax), vec![made[3]["id"].clone(), made[0]["id"].clone()]);
    assert_eq!(ax["total"], 2);
    let x = c.get("/api/v1/tasks?task_namespace=x").await.expect(200);
    assert_eq!(x["total"], 3);
    let no_filter = c.get("/api/v1/tasks?task_namespace=").await.expect(200);
    assert_eq!(no_filter["total"], 5, "an empty namespace is no filter");
    let none = c.get("/api/v1/tasks?task_name=Z").await.expect(200);
    assert_eq!(
        none,
        json!({"tasks": [], "total": 0, "page": 1, "page_size": 20})
    );

    let p2 = c.get("/api/v1/tasks?page=2&page_size=2").await.expect(200);
    assert_eq!(ids(&p2), vec![made[2]["id"].clone(), made[1]["id"].clone()]);
    assert_eq!(
        (
            p2["total"].clone(),
            p2["page"].clone(),
            p2["page_size"].clone()
        ),
        (json!(5), json!(2), json!(2))
    );
    let pa2 = c
        .get("/api/v1/tasks?task_name=A&page=2&page_size=2")
        .await
        .expect(200);
    assert_eq!(ids(&pa2), vec![made[0]["id"].clone()]);
    assert_eq!(pa2["total"], 3);
    let r = c.get("/api/v1/tasks?page_size=0").await.expect(422);
    assert_422(&r, "greater_than_equal", json!(["query", "page_size"]));
}

#[tokio::test]
async fn get_task_and_the_search_segment() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let t = hash("get-me");
    let row = register(&c, &b, &reg(&t, "GetMe", &[])).await;
    assert_eq!(c.get(&format!("/api/v1/tasks/{t}")).await.expect(200), row);
    let r = c.get("/api/v1/tasks/nonexistent").await;
    assert_eq!(r.expect(404), json!({"detail": "Task not found"}));

    // `/tasks/search` belongs to search (§1.1), never to a task named "search"…
    register(
        &c,
        &b,
        &json!({"task_id": "search", "task_name": "S", "task_data": {}}),
    )
    .await;
    let r = c.get("/api/v1/tasks/search").await.expect(200);
    assert!(r["tasks"].is_array(), "a search page, not the task: {r}");
    // …but its sub-resources fall through to the task routes.
    let assets = c.get("/api/v1/tasks/search/assets").await.expect(200);
    assert_eq!(assets, json!({"assets": []}));
    let events = c.get("/api/v1/tasks/search/events").await.expect(200);
    assert_eq!(types(&events), vec!["task_pending"]);
    let meta = c.get("/api/v1/tasks/search/metadata").await.expect(200);
    assert_eq!(meta["id"], "search");
}

#[tokio::test]
async fn build_task_lists_carry_global_status_fields() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let (a, p) = (hash("done"), hash("pending"));
    run_task(&c, &b, &reg(&a, "Done", &[])).await;
    let mut body = reg(&p, "Waiting", &[&a]);
    body["output_uri"] = json!("s3://bucket/key.json");
    register(&c, &b, &body).await;
    let rows = c
        .get(&format!("/api/v1/builds/{b}/tasks"))
        .await
        .expect(200);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["task_id"], json!(a), "task creation order");
    assert_eq!(
        keys(&rows[0]),
        sorted(&[
            "id",
            "task_id",
            "environment_id",
            "task_namespace",
            "task_name",
            "task_data",
            "version",
            "output_uri",
            "created_at",
            "status",
            "started_at",
            "completed_at",
            "error_message",
            "asset_count",
            "waiting_for_lock",
            "status_build_id",
        ])
    );
    assert_eq!(rows[0]["status"], "completed");
    assert_eq!(rows[0]["status_build_id"], json!(b));
    assert_ts(&rows[0]["started_at"]);
    assert_ts(&rows[0]["completed_at"]);
    assert_eq!(rows[1]["status"], "pending");
    assert_eq!(rows[1]["output_uri"], "s3://bucket/key.json");
    for k in [
        "started_at",
        "completed_at",
        "error_message",
        "status_build_id",
    ] {
        assert_eq!(rows[1][k], Value::Null, "{k}");
    }
    assert_eq!(rows[1]["waiting_for_lock"], false);
    assert_eq!(rows[1]["asset_count"], 0);

    let unknown = uuid::Uuid::now_v7();
    for route in ["tasks", "graph", "events"] {
        let r = c.get(&format!("/api/v1/builds/{unknown}/{route}")).await;
        assert_eq!(
            r.expect(404),
            json!({"detail": "Build not found"}),
            "{route}"
        );
        let r = c.get(&format!("/api/v1/builds/nope/{route}")).await;
        assert_422(&r.expect(422), "uuid_parsing", json!(["path", "build_id"]));
    }
    let empty = new_build_id(&c).await;
    assert_eq!(
        c.get(&format!("/api/v1/builds/{empty}/tasks"))
            .await
            .expect(200),
        json!([])
    );
    assert_eq!(
        c.get(&format!("/api/v1/builds/{empty}/graph"))
            .await
            .expect(200),
        json!({"nodes": [], "edges": []})
    );
}

#[tokio::test]
async fn graph_nodes_and_edges_use_internal_ids() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    let (a, m) = (hash("g-a"), hash("g-b"));
    let ta = register(&c, &b, &reg(&a, "GA", &[])).await;
    let tm = register(&c, &b, &reg(&m, "GB", &[&a])).await;
    task_event(&c, &b, &a, "start").await;
    let g = c
        .get(&format!("/api/v1/builds/{b}/graph"))
        .await
        .expect(200);
    assert_eq!(
        g,
        json!({
            "nodes": [
                {"id": ta["id"], "task_id": a, "task_name": "GA", "task_namespace": "tests", "status": "running", "asset_count": 0},
                {"id": tm["id"], "task_id": m, "task_name": "GB", "task_namespace": "tests", "status": "pending", "asset_count": 0},
            ],
            "edges": [{"source": ta["id"], "target": tm["id"]}],
        })
    );
}
