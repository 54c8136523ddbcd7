//! Response objects (§4) field by field, the answer statuses of §5's legend, and the
//! orders, filters and paging of the v2 lists (§5.1, §5.2, §5.5; D8).

use serde_json::{json, Value};

use super::*;

/// D8: RFC 3339 UTC with six fractional digits and `Z`.
fn is_ts(v: &Value) -> bool {
    v.as_str()
        .and_then(clock::parse_rfc3339_micros)
        .is_some_and(|m| clock::format_micros(m) == v.as_str().unwrap())
}

fn ts(soft: &mut Soft, obj: &Value, key: &str, what: &str) {
    soft.check(
        is_ts(&obj[key]),
        format!("{what}.{key}: a D8 timestamp, got {}", obj[key]),
    );
}

/// The `id`s of a list.
fn ids_of(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every key of `keys` is present in `obj` (null allowed).
fn fields(soft: &mut Soft, obj: &Value, keys: &[&str], what: &str) {
    for k in keys {
        soft.check(
            obj.get(*k).is_some(),
            format!("{what}: field {k} absent in {obj}"),
        );
    }
}

#[tokio::test]
async fn creates_answer_200_as_the_route_legend_says() {
    // §5: "answer (200 unless stated)"; only tick summaries state 201. Upstream's
    // routes have no status_code either (FastAPI's 200).
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();
    let r = api
        .post(
            "/deployments",
            &json!({"id": new_id(), "kind": "local", "code_id": "c"}),
        )
        .await;
    soft.check(
        r.status == 200,
        format!("POST /deployments (created): {}", r.status),
    );
    let dep = r.json()["id"].as_str().unwrap().to_owned();
    let b = new_id();
    let r = api.post("/builds", &build_body(&b, &["r"])).await;
    soft.check(
        r.status == 200,
        format!("POST /builds (created): {}", r.status),
    );
    let r = api
        .create_plan(&b, &new_id(), &dep, json!({}), &["r"])
        .await;
    soft.check(
        r.status == 200,
        format!("POST /builds/{{id}}/plans (created): {}", r.status),
    );
}

#[tokio::test]
async fn response_objects_carry_the_contract_fields() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();

    // Deployment.
    let d = api
        .post(
            "/deployments",
            &json!({"id": new_id(), "kind": "local", "code_id": "shape"}),
        )
        .await
        .json();
    fields(
        &mut soft,
        &d,
        &[
            "id",
            "kind",
            "app_name",
            "code_id",
            "image_id",
            "modal_app_id",
            "generation",
            "deployed_at",
            "activated_at",
            "is_current",
            "created",
        ],
        "Deployment",
    );
    ts(&mut soft, &d, "deployed_at", "Deployment");
    let dep = d["id"].as_str().unwrap().to_owned();

    // Build: roots sorted and unique, a server-made name, started_at = created_at.
    let bid = new_id();
    let mut roots = vec![tid("b"), tid("a"), tid("a")];
    let b = api
        .post(
            "/builds",
            &json!({"id": bid, "root_task_ids": roots, "description": "shape test",
                    "executor_metadata": {"host": "ci"}}),
        )
        .await
        .json();
    roots.sort();
    roots.dedup();
    assert_eq!(b["id"], bid.as_str());
    assert_eq!(b["root_task_ids"], json!(roots));
    assert_eq!(b["status"], "running");
    assert_eq!(b["description"], "shape test");
    assert_eq!(b["executor_metadata"], json!({"host": "ci"}));
    soft.check(
        b["name"].as_str().is_some_and(|n| !n.is_empty()),
        format!("Build.name is server-made: {b}"),
    );
    soft.check(
        b["started_at"] == b["created_at"],
        format!("Build.started_at = created_at: {b}"),
    );
    for k in ["created_at", "started_at", "last_active_at"] {
        ts(&mut soft, &b, k, "Build");
    }
    assert_eq!(b["completed_at"], Value::Null);
    assert_eq!(b["is_resumed"], false);
    assert_eq!(b["error_message"], Value::Null);
    assert_eq!(b["reactive_app_name"], Value::Null);

    // Plan.
    let pid = new_id();
    let p = api
        .create_plan(&bid, &pid, &dep, json!({}), &["a", "b"])
        .await
        .json();
    fields(
        &mut soft,
        &p,
        &[
            "id",
            "build_id",
            "deployment_id",
            "settings_hash",
            "generation",
            "activated_at",
            "sealed_at",
            "superseded_at",
            "created",
        ],
        "Plan",
    );
    assert_eq!(p["build_id"], bid.as_str());
    assert_eq!(p["deployment_id"], dep.as_str());

    // MembersResult: the eight counters.
    let m = api
        .members(&pid, &[leaf("u"), leaf("a"), item("b", Some(&["u"]))])
        .await;
    let mut counters: Vec<&String> = m.as_object().unwrap().keys().collect();
    counters.sort();
    for k in [
        "closure_admitted",
        "completed",
        "diverged",
        "edges_created",
        "instances_created",
        "invalidated",
        "members_admitted",
        "tasks_created",
    ] {
        soft.check(m[k].is_u64(), format!("MembersResult.{k}: {m}"));
    }
    let sealed = api.seal(&pid).await.expect(200);
    ts(&mut soft, &sealed, "sealed_at", "Plan");

    // TransitionResult and the task while it runs.
    let e = new_id();
    let t = api.start(&pid, "a", &e, Some(600)).await.expect(200);
    fields(
        &mut soft,
        &t,
        &["applied", "status", "execution_id", "claim_expires_at"],
        "TransitionResult",
    );
    ts(&mut soft, &t, "claim_expires_at", "TransitionResult");
    let task = api.task("a").await.expect(200);
    assert_eq!(task["task_id"], tid("a").as_str());
    assert_eq!(task["task_namespace"], "tests");
    assert_eq!(task["task_name"], name("a"));
    assert_eq!(task["version"], Value::Null);
    assert_eq!(task["output_uri"], "/tmp/v2-targets/a.json");
    assert_eq!(task["status"], "running");
    assert_eq!(task["execution_id"], e.as_str());
    soft.eq_json(
        &task["claim_plan_id"],
        &json!(pid),
        "TaskInfo.claim_plan_id",
    );
    soft.eq_json(
        &task["claim_build_id"],
        &json!(bid),
        "TaskInfo.claim_build_id",
    );
    soft.eq_json(
        &task["claim_expires_at"],
        &t["claim_expires_at"],
        "TaskInfo.claim_expires_at",
    );
    ts(&mut soft, &task, "status_at", "TaskInfo");
    let inst = &task["instances"][0];
    fields(
        &mut soft,
        inst,
        &[
            "id",
            "deployment_id",
            "settings_hash",
            "instance_hash",
            "body",
            "expanded_at",
            "created_at",
        ],
        "TaskInstance",
    );
    assert_eq!(inst["instance_hash"], ih("a").as_str());
    assert_eq!(inst["body"], body("a"));
    assert_eq!(inst["deployment_id"], dep.as_str());
    ts(&mut soft, inst, "expanded_at", "TaskInstance");

    // Execution (the build's unended ones) and its start = the task's started_at.
    let ex = api
        .get(&format!("/builds/{bid}/executions"))
        .await
        .expect(200);
    let row = &ex["executions"][0];
    assert_eq!(ex["executions"].as_array().unwrap().len(), 1, "{ex}");
    assert_eq!(row["id"], e.as_str());
    assert_eq!(row["task_id"], tid("a").as_str());
    assert_eq!(row["build_id"], bid.as_str());
    assert_eq!(row["plan_id"], pid.as_str());
    assert_eq!(row["instance_id"], inst["id"]);
    assert_eq!(row["executor"], "local");
    assert_eq!(row["executor_ref"], "pid-1");
    assert_eq!(row["in_current_plan"], true);
    assert_eq!(row["ended_at"], Value::Null);
    assert_eq!(row["claim_outcome"], Value::Null);
    soft.eq_json(
        &task["started_at"],
        &row["started_at"],
        "TaskInfo.started_at",
    );

    // PlanDetail counts non-excluded members by their task's status.
    let pd = api.plan_detail(&pid).await;
    assert_eq!(pd["member_count"], 3, "{pd}");
    assert_eq!(pd["root_count"], 2, "{pd}");
    assert_eq!(pd["excluded_count"], 0, "{pd}");
    assert_eq!(pd["is_active"], true, "{pd}");
    assert_eq!(
        pd["member_counts"],
        json!({"pending": 2, "running": 1}),
        "{pd}"
    );
    assert_eq!(pd["deployment"]["id"], dep.as_str(), "{pd}");
    ts(&mut soft, &pd, "created_at", "PlanDetail");

    // PlanRoots and the frontier's members.
    let pr = api.get(&format!("/plans/{pid}/roots")).await.expect(200);
    fields(
        &mut soft,
        &pr,
        &["plan_id", "build_id", "deployment_id", "settings_hash"],
        "PlanRoots",
    );
    let mut root_ids = ids(&pr["roots"]);
    root_ids.sort();
    assert_eq!(root_ids, tids(&["a", "b"]));
    assert!(pr["roots"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["is_root"] == true));
    let fr = api.frontier(&bid).await;
    assert_eq!(fr["build_id"], bid.as_str());
    assert_eq!(fr["plan_id"], pid.as_str());
    assert_eq!(fr["deployment_id"], dep.as_str());
    assert_eq!(fr["settings_hash"], p["settings_hash"]);
    assert_eq!(fr["sealed"], true);
    assert_eq!(fr["plan_complete"], false);
    assert_eq!(fr["build_status"], "running");
    assert_eq!(ids(&fr["running"]), vec![tid("a")]);
    assert_eq!(ids(&fr["runnable"]), vec![tid("u")]);
    assert_eq!(fr["discovery_jobs"], json!([]));
    let running = &fr["running"][0];
    assert_eq!(running["instance_hash"], ih("a").as_str());
    assert_eq!(running["instance_id"], inst["id"]);
    assert_eq!(running["body"], body("a"));
    assert_eq!(running["attempts"], 1, "{running}");
    assert_eq!(running["interruptions"], 0, "{running}");

    // Completed: the claim fields go, completed_at comes; events are lowercase.
    api.complete(&pid, "a", &e).await.expect(200);
    let task = api.task("a").await.expect(200);
    assert_eq!(task["status"], "completed");
    ts(&mut soft, &task, "completed_at", "TaskInfo");
    soft.eq_json(
        &task["claim_plan_id"],
        &Value::Null,
        "TaskInfo.claim_plan_id when completed",
    );
    soft.eq_json(
        &task["claim_build_id"],
        &Value::Null,
        "TaskInfo.claim_build_id when completed",
    );
    let events = api.events("a").await;
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"task_started"), "{types:?}");
    assert!(types.contains(&"task_completed"), "{types:?}");
    assert!(
        types.iter().all(|t| t.chars().all(|c| !c.is_uppercase())),
        "{types:?}"
    );
    let started = events
        .iter()
        .find(|e| e["event_type"] == "task_started")
        .unwrap();
    assert_eq!(started["build_id"], bid.as_str(), "{started}");
    assert_eq!(started["plan_id"], pid.as_str(), "{started}");
    assert_eq!(started["execution_id"], e.as_str(), "{started}");
    assert_eq!(started["report_applied"], true, "{started}");
    ts(&mut soft, started, "created_at", "Event");
    let ended = api
        .get(&format!("/builds/{bid}/executions"))
        .await
        .expect(200);
    assert_eq!(ended["executions"], json!([]), "only unended by default");

    // Build fields over the lifecycle (D33: upstream's).
    let x = api
        .post_empty(&format!("/builds/{bid}/exit-early"))
        .await
        .expect(200);
    assert_eq!(x["status"], "exit_early");
    ts(&mut soft, &x, "completed_at", "Build after exit-early");
    let r = api
        .post(&format!("/builds/{bid}/resume"), &json!({"settings": {}}))
        .await
        .expect(200);
    assert_eq!(r["build"]["completed_at"], Value::Null, "{r}");
    assert_eq!(r["build"]["is_resumed"], true, "{r}");
    soft.check(r.get("plan").is_some(), format!("ResumeResult.plan: {r}"));
    let failed = api
        .post(
            &format!("/builds/{bid}/fail"),
            &json!({"error_message": "why"}),
        )
        .await
        .expect(200);
    assert_eq!(failed["error_message"], "why");
    ts(&mut soft, &failed, "completed_at", "Build after fail");
    soft.eq_json(
        &failed["is_resumed"],
        &json!(false),
        "Build.is_resumed reset at a terminal transition (upstream, D33)",
    );
    let r = api
        .post(&format!("/builds/{bid}/resume"), &json!({"settings": {}}))
        .await
        .expect(200);
    assert_eq!(r["build"]["status"], "running");
    assert_eq!(
        r["build"]["error_message"],
        Value::Null,
        "only served while failed"
    );

    // Artifacts and settings.
    let fl = api.flow(&["art"], &[leaf("art")], true).await;
    let ea = api.claim(&fl.plan, "art", None).await;
    api.act(
        &fl.plan,
        "art",
        "artifacts",
        &json!({"execution_id": ea, "artifacts": [{"type": "markdown", "name": "readme", "body": {"content": "# x"}}]}),
    )
    .await
    .expect(200);
    let arts = api
        .get(&format!("/tasks/{}/artifacts", tid("art")))
        .await
        .expect(200);
    let a0 = &arts["artifacts"][0];
    assert_eq!(a0["task_id"], tid("art").as_str());
    assert_eq!(a0["artifact_type"], "markdown");
    assert_eq!(a0["name"], "readme");
    assert_eq!(a0["body"], json!({"content": "# x"}));
    fields(&mut soft, a0, &["id", "created_at"], "TaskArtifact");
}

#[tokio::test]
async fn lists_order_filter_and_page() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();

    // Builds: most recently active first, paged with a cursor, totals over all pages.
    let b1 = api.flow(&["l1"], &[leaf("l1")], true).await;
    let b2 = api.flow(&["l2"], &[leaf("l2")], true).await;
    let b3 = api.flow(&["l3"], &[leaf("l3")], true).await;
    let all = api.get("/builds").await.expect(200);
    assert_eq!(all["total"], 3);
    let order: Vec<&str> = all["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        vec![b3.build.as_str(), b2.build.as_str(), b1.build.as_str()]
    );
    let page1 = api.get("/builds?limit=2").await.expect(200);
    assert_eq!(page1["builds"].as_array().unwrap().len(), 2);
    assert_eq!(page1["total"], 3);
    let cursor = page1["next_cursor"].as_str().expect("a cursor").to_owned();
    let page2 = api
        .get(&format!("/builds?limit=2&cursor={cursor}"))
        .await
        .expect(200);
    assert_eq!(page2["builds"][0]["id"], b1.build.as_str());
    assert_eq!(page2["next_cursor"], Value::Null);
    api.post_empty(&format!("/builds/{}/cancel", b2.build))
        .await
        .expect(200);
    let cancelled = api.get("/builds?status=cancelled").await.expect(200);
    assert_eq!(cancelled["total"], 1);
    assert_eq!(cancelled["builds"][0]["id"], b2.build.as_str());
    api.put(
        &format!("/builds/{}/reactive-meta", b1.build),
        &json!({"app_name": "watch"}),
    )
    .await
    .expect(200);
    let watched = api
        .get("/builds?status=running&reactive_app_name=watch")
        .await
        .expect(200);
    assert_eq!(watched["total"], 1);
    assert_eq!(watched["builds"][0]["id"], b1.build.as_str());
    assert_eq!(api.get("/builds?status=bogus").await.status, 422);
    for bad in ["0", "501"] {
        assert_eq!(
            api.get(&format!("/builds?limit={bad}")).await.status,
            422,
            "limit {bad}"
        );
    }

    // Tasks: newest status first, filtered by status, paged.
    let e = api.claim(&b3.plan, "l3", None).await;
    let tasks = api.get("/tasks").await.expect(200);
    assert_eq!(tasks["tasks"][0]["task_id"], tid("l3").as_str(), "{tasks}");
    soft.check(
        tasks["tasks"][0].get("instances").is_none(),
        "list items carry no instances",
    );
    let running = api.get("/tasks?status=running").await.expect(200);
    assert_eq!(ids(&running["tasks"]), vec![tid("l3")]);
    let p1 = api.get("/tasks?limit=1").await.expect(200);
    let cursor = p1["next_cursor"].as_str().expect("a cursor").to_owned();
    let p2 = api
        .get(&format!("/tasks?limit=5&cursor={cursor}"))
        .await
        .expect(200);
    let mut seen = ids(&p1["tasks"]);
    seen.extend(ids(&p2["tasks"]));
    seen.sort();
    assert_eq!(seen, tids(&["l1", "l2", "l3"]));
    assert_eq!(api.get("/tasks?status=bogus").await.status, 422);

    // A task's executions: newest first; include_ended=false hides ended ones.
    api.fail(&b3.plan, "l3", &e).await.expect(200);
    let e2 = api.claim(&b3.plan, "l3", None).await; // D33: a failed task runs again
    let ex = api.executions("l3").await;
    let order: Vec<&str> = ex.iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(order, vec![e2.as_str(), e.as_str()]);
    let open = api
        .get(&format!(
            "/tasks/{}/executions?include_ended=false",
            tid("l3")
        ))
        .await
        .expect(200);
    assert_eq!(ids_of(&open["executions"]), vec![e2.clone()]);

    // A build's plans: newest generation first; executions not in the current plan.
    let l2 = api.local_deployment("code-gen2").await;
    let p2 = api.plan(&b1.build, &l2, json!({}), &["l1"]).await;
    let e_old = api.claim(&b1.plan, "l1", None).await;
    api.members(&p2, &[leaf("l1")]).await;
    api.seal(&p2).await.expect(200);
    let plans = api
        .get(&format!("/builds/{}/plans", b1.build))
        .await
        .expect(200);
    let gens: Vec<&Value> = plans["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["generation"])
        .collect();
    assert_eq!(gens, vec![&json!(2), &json!(1)], "{plans}");
    let orphans = api
        .get(&format!(
            "/builds/{}/executions?not_in_current_plan=true",
            b1.build
        ))
        .await
        .expect(200);
    assert_eq!(orphans["executions"][0]["id"], e_old.as_str(), "{orphans}");
    assert_eq!(orphans["executions"][0]["in_current_plan"], false);

    // Deployments: newest first, filters; limits sorted by key; tick summaries newest
    // first.
    let deps = api.get("/deployments").await.expect(200);
    assert_eq!(deps["deployments"][0]["id"], l2.as_str(), "{deps}");
    let local = api.get("/deployments?kind=modal").await.expect(200);
    assert_eq!(local["deployments"], json!([]));
    for k in ["zeta", "alpha", "mid"] {
        api.put(
            &format!("/concurrency-limits/{k}"),
            &json!({"max_concurrent": 1}),
        )
        .await
        .expect(200);
    }
    let limits = api.get("/concurrency-limits").await.expect(200);
    let keys: Vec<&str> = limits["limits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["alpha", "mid", "zeta"]);
    for o in ["first", "second"] {
        api.post(
            &format!("/builds/{}/tick-summaries", b1.build),
            &json!({"outcome": o}),
        )
        .await
        .expect(201);
    }
    let ticks = api
        .get(&format!("/builds/{}/tick-summaries?limit=1", b1.build))
        .await
        .expect(200);
    assert_eq!(ticks["summaries"].as_array().unwrap().len(), 1);
    assert_eq!(ticks["summaries"][0]["outcome"], "second");
}
