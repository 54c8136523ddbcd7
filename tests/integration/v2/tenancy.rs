//! Tenancy and transport of `/api/v2` (§1.2, §1.3, D9, D33): every id of one
//! environment is absent from another; bearer tokens with `?environment_id=` work as on
//! v1's SDK routes; gzip request bodies; v1 and v2 builds side by side.

use serde_json::{json, Value};

use super::*;
use crate::env_support;

/// A second environment of the admin's workspace with its own API key, made through
/// the v1 identity API.
async fn second_environment(f: &Fixture) -> Api {
    let (admin, _) = env_support::admin(&f.server).await;
    let env = admin
        .client
        .post(
            &admin.ws_path("/environments"),
            &json!({"name": "Other", "slug": "other-env"}),
        )
        .await
        .expect(201);
    let env_id = env["id"].as_str().unwrap();
    let key = admin
        .client
        .post(
            &admin.ws_path(&format!("/environments/{env_id}/api-keys")),
            &json!({"name": "other"}),
        )
        .await
        .expect(201);
    Api::new(f.server.client().with_api_key(key["key"].as_str().unwrap()))
}

#[tokio::test]
async fn every_id_of_another_environment_looks_absent() {
    let f = Fixture::start().await;
    let a = Api::of(&f);
    let b = second_environment(&f).await;
    let mut soft = Soft::default();

    // Environment A: a build with a plan, a completed and a running task, an
    // artifact, a limit, settings.
    let fl = a.chain().await;
    let eu = a.run(&fl.plan, "u").await;
    let er = a.claim(&fl.plan, "r", None).await;
    a.act(
        &fl.plan,
        "r",
        "artifacts",
        &json!({"execution_id": er, "artifacts": [{"type": "json", "name": "m", "body": {}}]}),
    )
    .await
    .expect(200);
    a.put("/concurrency-limits/gpu", &json!({"max_concurrent": 1}))
        .await
        .expect(200);
    let settings = a.plan_detail(&fl.plan).await["settings_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let (build, plan, dep) = (&fl.build, &fl.plan, &fl.dep);

    // From B, each answers the resource's not-found refusal.
    let absent: Vec<(&str, String, Option<Value>, &str)> = vec![
        ("GET", format!("/builds/{build}"), None, "unknown_build"),
        (
            "GET",
            format!("/builds/{build}/frontier"),
            None,
            "unknown_build",
        ),
        (
            "GET",
            format!("/builds/{build}/plans"),
            None,
            "unknown_build",
        ),
        (
            "GET",
            format!("/builds/{build}/executions"),
            None,
            "unknown_build",
        ),
        (
            "POST",
            format!("/builds/{build}/cancel"),
            None,
            "unknown_build",
        ),
        (
            "POST",
            format!("/builds/{build}/resume"),
            Some(json!({"settings": {}})),
            "unknown_build",
        ),
        (
            "POST",
            format!("/builds/{build}/plans"),
            Some(plan_body(&new_id(), dep, json!({}), &["r"])),
            "unknown_build",
        ),
        ("GET", format!("/plans/{plan}"), None, "unknown_plan"),
        ("GET", format!("/plans/{plan}/roots"), None, "unknown_plan"),
        ("POST", format!("/plans/{plan}/seal"), None, "unknown_plan"),
        (
            "POST",
            format!("/plans/{plan}/members"),
            Some(json!({"items": [leaf("u")]})),
            "unknown_plan",
        ),
        (
            "POST",
            format!("/plans/{plan}/members/{}/complete", tid("r")),
            Some(json!({ "execution_id": er })),
            "unknown_plan",
        ),
        (
            "POST",
            format!("/plans/{plan}/members/{}/start", tid("r")),
            Some(start_body(&new_id(), None)),
            "unknown_plan",
        ),
        ("GET", format!("/tasks/{}", tid("u")), None, "unknown_task"),
        (
            "GET",
            format!("/tasks/{}/executions", tid("u")),
            None,
            "unknown_task",
        ),
        (
            "GET",
            format!("/tasks/{}/events", tid("u")),
            None,
            "unknown_task",
        ),
        (
            "GET",
            format!("/tasks/{}/artifacts", tid("r")),
            None,
            "unknown_task",
        ),
        (
            "POST",
            format!("/tasks/{}/claim/renew", tid("r")),
            Some(json!({ "execution_id": er })),
            "unknown_task",
        ),
        (
            "POST",
            format!("/executions/{er}/stopped"),
            Some(json!({"outcome": "stopped"})),
            "unknown_execution",
        ),
        (
            "GET",
            format!("/deployments/{dep}"),
            None,
            "unknown_deployment",
        ),
        (
            "POST",
            format!("/deployments/{dep}/activate"),
            None,
            "unknown_deployment",
        ),
        (
            "GET",
            format!("/settings/{settings}"),
            None,
            "unknown_settings",
        ),
        (
            "DELETE",
            "/concurrency-limits/gpu".into(),
            None,
            "unknown_limit",
        ),
    ];
    for (method, path, body, code) in absent {
        let r = match (method, &body) {
            ("GET", _) => b.get(&path).await,
            ("DELETE", _) => b.delete(&path).await,
            (_, Some(body)) => b.post(&path, body).await,
            (_, None) => b.post_empty(&path).await,
        };
        assert_eq!(
            (r.status.as_u16(), r.json()["detail"]["code"].clone()),
            (404, json!(code)),
            "{method} {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    // B's lists are empty.
    let builds = b.get("/builds").await.expect(200);
    assert_eq!(
        (builds["total"].clone(), builds["builds"].clone()),
        (json!(0), json!([]))
    );
    assert_eq!(b.get("/tasks").await.expect(200)["tasks"], json!([]));
    assert_eq!(
        b.get("/deployments").await.expect(200)["deployments"],
        json!([])
    );
    assert_eq!(
        b.get("/concurrency-limits").await.expect(200)["limits"],
        json!([])
    );
    // A plan in B cannot use A's deployment (400 on plan create).
    let bb = b.build(&["r"]).await;
    let r = b.create_plan(&bb, &new_id(), dep, json!({}), &["r"]).await;
    refused(&r, 400, "unknown_deployment");
    // A's build id cannot be created in B (§9 #9).
    let r = b.post("/builds", &build_body(build, &["r"])).await;
    let d = refused(&r, 409, "build_id_conflict");
    soft.extra(&d, "build_id", json!(build));
    // The same task id registers in B as an independent task.
    let own = b.flow(&["u"], &[leaf("u")], true).await;
    assert_eq!(b.status("u").await, "pending");
    let eb = b.claim(&own.plan, "u", None).await;
    assert_ne!(eb, eu);

    // Nothing B did touched A.
    assert_eq!(a.status("u").await, "completed");
    let r_task = a.task("r").await.expect(200);
    assert_eq!(r_task["status"], "running");
    assert_eq!(r_task["execution_id"], er.as_str());
    assert_eq!(a.get_build(build).await["status"], "running");
    assert_eq!(a.executions("u").await.len(), 1);
    let limits = a.get("/concurrency-limits").await.expect(200);
    assert_eq!(limits["limits"][0]["key"], "gpu");
    assert_eq!(a.get("/builds").await.expect(200)["total"], 1);
}

#[tokio::test]
async fn bearer_token_and_environment_id_on_v2_routes() {
    let f = Fixture::start().await;
    let env = f.env_id();
    let token = f.admin_token().await;
    let bearer = f.anonymous().with_bearer(&token);

    // As on v1's SDK routes: the environment is required, a foreign one is absent.
    let body = build_body(&new_id(), &["r"]);
    let r = bearer.post("/api/v2/builds", &body).await;
    assert_eq!(
        r.expect(400),
        json!({"detail": "environment_id is required when using JWT authentication"})
    );
    for foreign in [new_id(), "not-a-uuid".to_owned()] {
        let r = bearer
            .post(&format!("/api/v2/builds?environment_id={foreign}"), &body)
            .await;
        assert_eq!(r.expect(404), json!({"detail": "Environment not found"}));
    }
    let r = f.anonymous().post("/api/v2/builds", &body).await;
    assert_eq!(r.status, 401);
    let r = f
        .anonymous()
        .with_api_key("sk_not_a_real_key_000000000000000000000000")
        .get("/api/v2/builds")
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.json()["detail"]
            .to_string()
            .to_lowercase()
            .contains("api key"),
        "the SDK maps 'api key' to InvalidAPIKeyError"
    );

    // A whole flow through the bearer path, seen by the API key of that environment.
    let api = Api {
        c: bearer.clone(),
        query: Some(format!("environment_id={env}")),
    };
    let fl = api.chain().await;
    api.run(&fl.plan, "u").await;
    let key = Api::of(&f);
    assert_eq!(key.status("u").await, "completed");
    let b = key.get_build(&fl.build).await;
    assert_eq!(b["id"], fl.build.as_str());
    let fr = key.frontier(&fl.build).await;
    assert_eq!(ids(&fr["runnable"]), vec![tid("r")]);
}

#[tokio::test]
async fn gzip_request_bodies_are_accepted() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let dep = api.local_deployment("code-gz").await;
    let bid = new_id();
    let r = api.post_gzip("/builds", &build_body(&bid, &["g"])).await;
    assert!(r.status.is_success(), "{r:?}");
    let pid = new_id();
    let r = api
        .post_gzip(
            &format!("/builds/{bid}/plans"),
            &plan_body(&pid, &dep, json!({}), &["g"]),
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");
    // A chunk of a few hundred KiB decoded, as the SDK sends registration chunks.
    let items: Vec<Value> = (0..600)
        .map(|i| leaf(&format!("gz{i}")))
        .chain([item("g", Some(&["gz0"]))])
        .collect();
    let body = json!({ "items": items });
    assert!(body.to_string().len() > 200_000);
    let m = api
        .post_gzip(&format!("/plans/{pid}/members"), &body)
        .await
        .expect(200);
    assert_eq!(m["tasks_created"], 600, "{m}");
    assert_eq!(api.plan_detail(&pid).await["member_count"], 601);
    let r = api
        .post_gzip(
            &format!("/plans/{pid}/members/{}/start", tid("gz1")),
            &start_body(&new_id(), None),
        )
        .await
        .expect(200);
    assert_eq!(r["status"], "running");
    // A body that is not gzip under Content-Encoding: gzip is refused, not applied.
    let r = api
        .c
        .send(
            http::Method::POST,
            &v2(&format!("/plans/{pid}/members")),
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            bytes::Bytes::from_static(b"{\"items\": []}"),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn v1_and_v2_builds_side_by_side() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let v1 = crate::tasks::new_build_id(&f.sdk()).await;
    let fl = api.flow(&["both"], &[leaf("both")], true).await;

    let l1 = f.sdk().get("/api/v1/builds").await.expect(200);
    assert_eq!(l1["total"], 1, "{l1}");
    assert_eq!(l1["builds"][0]["id"], v1.as_str());
    let l2 = api.get("/builds").await.expect(200);
    assert_eq!(l2["total"], 1, "{l2}");
    assert_eq!(l2["builds"][0]["id"], fl.build.as_str());
    let r = f.sdk().get(&format!("/api/v1/builds/{}", fl.build)).await;
    assert_eq!(r.expect(404), json!({"detail": "Build not found"}));
    refused(
        &api.get(&format!("/builds/{v1}")).await,
        404,
        "unknown_build",
    );

    // One task id in both protocols: two unrelated rows.
    let t = tid("both");
    crate::tasks::run_task(&f.sdk(), &v1, &crate::tasks::reg(&t, "V1Task", &[])).await;
    let v1_task = f.sdk().get(&format!("/api/v1/tasks/{t}")).await.expect(200);
    assert_eq!(v1_task["task_name"], "V1Task");
    let v2_task = api.task("both").await.expect(200);
    assert_eq!(v2_task["task_name"], name("both"));
    assert_eq!(v2_task["status"], "pending", "not completed by the v1 run");
    let v1_tasks = f.sdk().get("/api/v1/tasks").await.expect(200);
    assert_eq!(v1_tasks["total"], 1, "{v1_tasks}");
    let v2_tasks = api.get("/tasks").await.expect(200);
    assert_eq!(v2_tasks["tasks"].as_array().unwrap().len(), 1, "{v2_tasks}");
}
