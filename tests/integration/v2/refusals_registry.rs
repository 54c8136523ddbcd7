//! Refusal codes of deployments, settings, limits, builds, plans, member chunks and
//! seal (§5.1–§5.3, §8), each with its status, `detail.code` and extra keys, in the
//! refusal order of §5.3 where a request breaks two rules.

use serde_json::{json, Value};

use super::*;

/// `{}`'s settings hash (§3.1).
const EMPTY_SETTINGS: &str = "11406eac-39d0-5b1b-9423-cfb4a1454543";

#[tokio::test]
async fn deployment_settings_and_limit_refusals() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();

    // Modal deployments need an id, then an app name (400).
    let r = api
        .post(
            "/deployments",
            &json!({"kind": "modal", "app_name": "app", "code_id": "k1"}),
        )
        .await;
    refused(&r, 400, "deployment_id_required");
    let r = api
        .post(
            "/deployments",
            &json!({"id": new_id(), "kind": "modal", "code_id": "k1"}),
        )
        .await;
    refused(&r, 400, "app_name_required");

    // A local deployment is found by its code; another app name for it is a conflict.
    let local = api
        .post(
            "/deployments",
            &json!({"id": new_id(), "kind": "local", "code_id": "c1"}),
        )
        .await;
    assert!(local.status.is_success(), "{local:?}");
    let local = local.json();
    assert_eq!(local["app_name"], "local");
    assert_eq!(local["kind"], "local");
    assert!(local["activated_at"].is_string(), "born activated: {local}");
    let r = api
        .post(
            "/deployments",
            &json!({"id": new_id(), "kind": "local", "app_name": "other", "code_id": "c1"}),
        )
        .await;
    refused(&r, 409, "local_deployment_conflict");

    // A modal id names one (kind, app_name, code_id).
    let m = new_id();
    let created = api
        .post(
            "/deployments",
            &json!({"id": m, "kind": "modal", "app_name": "app", "code_id": "k1", "image_id": "img-1"}),
        )
        .await;
    assert!(created.status.is_success(), "{created:?}");
    let created = created.json();
    assert_eq!(created["created"], true);
    assert_eq!(created["generation"], 1);
    assert_eq!(created["activated_at"], Value::Null);
    assert_eq!(created["is_current"], false);
    let r = api
        .post(
            "/deployments",
            &json!({"id": m, "kind": "modal", "app_name": "app", "code_id": "k2"}),
        )
        .await;
    refused(&r, 409, "deployment_id_conflict");

    // Activation: unknown id 404; a value differing from a stored one is refused and
    // writes nothing.
    let nowhere = new_id();
    refused(
        &api.post_empty(&format!("/deployments/{nowhere}/activate"))
            .await,
        404,
        "unknown_deployment",
    );
    refused(
        &api.get(&format!("/deployments/{nowhere}")).await,
        404,
        "unknown_deployment",
    );
    let r = api
        .post(
            &format!("/deployments/{m}/activate"),
            &json!({"image_id": "img-2", "modal_app_id": "ap-1"}),
        )
        .await;
    let d = refused(&r, 409, "deployment_activation_conflict");
    soft.extra(&d, "fields", json!(["image_id"]));
    let row = api.get(&format!("/deployments/{m}")).await.expect(200);
    assert_eq!(row["activated_at"], Value::Null, "nothing written: {row}");
    assert_eq!(row["modal_app_id"], Value::Null, "nothing written: {row}");
    assert_eq!(row["image_id"], "img-1");
    let row = api
        .post(
            &format!("/deployments/{m}/activate"),
            &json!({"image_id": "img-1", "modal_app_id": "ap-1"}),
        )
        .await
        .expect(200);
    assert!(row["activated_at"].is_string(), "{row}");
    assert_eq!(row["modal_app_id"], "ap-1");
    assert_eq!(row["is_current"], true);

    // Settings: unknown hash 404; `{}` is stored under its uuid5 once a plan uses it.
    refused(
        &api.get(&format!("/settings/{EMPTY_SETTINGS}")).await,
        404,
        "unknown_settings",
    );
    let flow = api.flow(&["s"], &[], false).await;
    let plan = api.plan_detail(&flow.plan).await;
    assert_eq!(plan["settings_hash"], EMPTY_SETTINGS);
    assert_eq!(
        api.get(&format!("/settings/{EMPTY_SETTINGS}"))
            .await
            .expect(200),
        json!({"hash": EMPTY_SETTINGS, "body": {}})
    );

    // Limits: deleting an unknown key is 404, and so is a second delete.
    refused(
        &api.delete("/concurrency-limits/gpu").await,
        404,
        "unknown_limit",
    );
    let put = api
        .put("/concurrency-limits/gpu", &json!({"max_concurrent": 2}))
        .await
        .expect(200);
    assert_eq!(put, json!({"key": "gpu", "max_concurrent": 2}));
    assert_eq!(api.delete("/concurrency-limits/gpu").await.status, 204);
    refused(
        &api.delete("/concurrency-limits/gpu").await,
        404,
        "unknown_limit",
    );
    let list = api.get("/concurrency-limits").await.expect(200);
    assert_eq!(list, json!({"limits": []}));
}

#[tokio::test]
async fn unknown_build_on_every_build_route() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();
    let b = new_id();
    let gets = [
        "",
        "/frontier",
        "/executions",
        "/plans",
        "/notify",
        "/tick-summaries",
    ];
    for tail in gets {
        let r = api.get(&format!("/builds/{b}{tail}")).await;
        let d = refused(&r, 404, "unknown_build");
        soft.extra(&d, "build_id", json!(b));
    }
    for tail in [
        "/complete",
        "/fail",
        "/cancel",
        "/exit-early",
        "/resume",
        "/skip-blocked",
        "/notify?can_spawn=false",
        "/scheduler-lease?owner_id=o&ttl_seconds=60",
    ] {
        let r = api.post_empty(&format!("/builds/{b}{tail}")).await;
        let d = refused(&r, 404, "unknown_build");
        soft.extra(&d, "build_id", json!(b));
    }
    let r = api
        .put(
            &format!("/builds/{b}/reactive-meta"),
            &json!({"app_name": "a"}),
        )
        .await;
    refused(&r, 404, "unknown_build");
    let r = api
        .post(
            &format!("/builds/{b}/tick-summaries"),
            &json!({"outcome": "idle"}),
        )
        .await;
    refused(&r, 404, "unknown_build");
    let r = api.delete(&format!("/builds/{b}/notify")).await;
    refused(&r, 404, "unknown_build");

    // Empty roots are a validation error (422, D7's list form).
    let r = api
        .post("/builds", &json!({"id": new_id(), "root_task_ids": []}))
        .await;
    let body = r.expect(422);
    assert!(body["detail"].is_array(), "{body}");
}

#[tokio::test]
async fn build_lifecycle_refusals() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();

    // A failed build is terminal: other transitions are refused with its status, the
    // same one again is a no-op.
    let flow = api.chain().await;
    let b = &flow.build;
    let failed = api
        .post(
            &format!("/builds/{b}/fail"),
            &json!({"error_message": "it broke"}),
        )
        .await
        .expect(200);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error_message"], "it broke");
    for action in ["complete", "cancel", "exit-early"] {
        let r = api.post_empty(&format!("/builds/{b}/{action}")).await;
        let d = refused(&r, 409, "build_terminal");
        assert_eq!(d["build_status"], "failed", "{action}: {d}");
        soft.extra(&d, "build_id", json!(b));
    }
    let again = api
        .post(
            &format!("/builds/{b}/fail"),
            &json!({"error_message": null}),
        )
        .await
        .expect(200);
    assert_eq!(again["status"], "failed");
    assert_eq!(again["error_message"], "it broke", "unchanged: {again}");
    // The refused transitions are recorded as build events with report_applied false.
    let events = api.get(&format!("/builds/{b}/events")).await;
    if events.status == 200 {
        let events = events.json();
        let refused_events = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["report_applied"] == false)
            .count();
        soft.check(
            refused_events == 3,
            format!("3 refused build events recorded, got {refused_events}: {events}"),
        );
    }

    // Complete refuses an unsealed plan, even with force; and a build without a plan.
    let open = api.flow(&["o"], &[leaf("o")], false).await;
    for body in [json!({"force": false}), json!({"force": true})] {
        let r = api
            .post(&format!("/builds/{}/complete", open.build), &body)
            .await;
        let d = refused(&r, 409, "plan_incomplete");
        assert_eq!(d["reason"], "not_sealed", "{d}");
        soft.extra(&d, "plan_id", json!(open.plan));
    }
    let bare = api.build(&["bare"]).await;
    let d = refused(
        &api.post_empty(&format!("/builds/{bare}/complete")).await,
        409,
        "plan_incomplete",
    );
    assert_eq!(d["reason"], "not_sealed", "{d}");

    // Members not completed: named (sorted) and counted; `force` completes anyway.
    let chain = api.chain().await;
    let r = api
        .post(
            &format!("/builds/{}/complete", chain.build),
            &json!({"force": false}),
        )
        .await;
    let d = refused(&r, 409, "plan_incomplete");
    assert_eq!(d["reason"], "members_incomplete", "{d}");
    assert_eq!(d["task_ids"], json!(tids(&["r", "u"])), "{d}");
    soft.extra(&d, "count", json!(2));
    let done = api
        .post(
            &format!("/builds/{}/complete", chain.build),
            &json!({"force": true}),
        )
        .await
        .expect(200);
    assert_eq!(done["status"], "completed");
    assert!(done["completed_at"].is_string(), "{done}");

    // An excluded root fails the build; once resumed, complete names the root.
    let ex = api
        .flow(&["x"], &[leaf("x0"), item("x", Some(&["x0"]))], true)
        .await;
    let out = api
        .act(&ex.plan, "x", "exclude", &json!({"reason": "not wanted"}))
        .await
        .expect(200);
    assert_eq!(out["excluded"], json!([tid("x")]), "{out}");
    assert_eq!(out["roots_excluded"], json!([tid("x")]), "{out}");
    assert_eq!(out["build_failed"], true, "{out}");
    assert_eq!(api.get_build(&ex.build).await["status"], "failed");
    let resumed = api
        .post(
            &format!("/builds/{}/resume", ex.build),
            &json!({"settings": {}}),
        )
        .await
        .expect(200);
    assert_eq!(resumed["build"]["status"], "running");
    assert_eq!(resumed["changed"], true);
    let r = api
        .post(
            &format!("/builds/{}/complete", ex.build),
            &json!({"force": true}),
        )
        .await;
    let d = refused(&r, 409, "plan_incomplete");
    assert_eq!(d["reason"], "root_excluded", "{d}");
    assert_eq!(d["task_ids"], json!([tid("x")]), "{d}");
}

#[tokio::test]
async fn plan_create_refusals_in_order() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let local = api.local_deployment("c1").await;
    let modal = api.modal_deployment("app", "k1").await; // not activated
    let b = api.build(&["r"]).await;
    let nowhere = new_id();
    let create = |build: String, dep: String, settings: Value, roots: Vec<Value>| {
        let api = api.clone();
        async move {
            api.post(
                &format!("/builds/{build}/plans"),
                &json!({"plan_id": new_id(), "deployment_id": dep, "settings": settings, "roots": roots}),
            )
            .await
        }
    };

    // 400 no_roots and root_declared_upstreams come before the build lookup.
    let r = create(nowhere.clone(), nowhere.clone(), json!({}), vec![]).await;
    refused(&r, 400, "no_roots");
    let r = create(nowhere.clone(), nowhere.clone(), json!({}), vec![leaf("r")]).await;
    refused(&r, 400, "root_declared_upstreams");
    let r = create(
        nowhere.clone(),
        nowhere.clone(),
        json!({}),
        vec![item("r", None)],
    )
    .await;
    refused(&r, 404, "unknown_build");
    // root_mismatch before the deployment lookup; unknown_deployment is 400 here.
    let r = create(
        b.clone(),
        nowhere.clone(),
        json!({}),
        vec![item("other", None)],
    )
    .await;
    refused(&r, 400, "root_mismatch");
    let r = create(
        b.clone(),
        nowhere.clone(),
        json!({"a": 1}),
        vec![item("r", None)],
    )
    .await;
    refused(&r, 400, "unknown_deployment");
    // deployment_not_activated before the settings checks.
    let r = create(
        b.clone(),
        modal.clone(),
        json!({"a": 1}),
        vec![item("r", None)],
    )
    .await;
    refused(&r, 400, "deployment_not_activated");
    let r = create(
        b.clone(),
        local.clone(),
        json!({"a": 1}),
        vec![item("r", None)],
    )
    .await;
    refused(&r, 400, "invalid_settings");
    for key in ["STARDAG_API_KEY", "MODAL_TOKEN_ID"] {
        let r = create(
            b.clone(),
            local.clone(),
            json!({ key: "x" }),
            vec![item("r", None)],
        )
        .await;
        refused(&r, 400, "reserved_settings_key");
    }
    // None of these wrote anything.
    let plans = api.get(&format!("/builds/{b}/plans")).await.expect(200);
    assert_eq!(plans["plans"], json!([]), "{plans}");
    api.assert_no_tasks(&["r"]).await;

    // The plan of a scope; the same scope again answers it as is.
    let p1 = new_id();
    let first = api.create_plan(&b, &p1, &local, json!({}), &["r"]).await;
    assert!(first.status.is_success(), "{first:?}");
    let first = first.json();
    assert_eq!(first["created"], true);
    assert_eq!(first["generation"], 1);
    assert!(
        first["activated_at"].is_string(),
        "first plan active: {first}"
    );
    let again = api
        .create_plan(&b, &new_id(), &local, json!({}), &["r"])
        .await
        .expect(200);
    assert_eq!(again["id"], p1.as_str());
    assert_eq!(again["created"], false);
    // Same scope, other root instances: start a new build.
    let other_root = with(item("r", None), "instance_hash", json!(ih("r-other")));
    let other_root = with(other_root, "body", json!({"tag": "r", "n": 2}));
    let r = api
        .post(
            &format!("/builds/{b}/plans"),
            &json!({"plan_id": new_id(), "deployment_id": local, "settings": {}, "roots": [other_root]}),
        )
        .await;
    refused(&r, 409, "root_instance_conflict");
    // A new scope under a taken plan id.
    let r = api
        .create_plan(&b, &p1, &local, json!({"k": "v"}), &["r"])
        .await;
    refused(&r, 409, "plan_id_conflict");
    let plans = api.get(&format!("/builds/{b}/plans")).await.expect(200);
    assert_eq!(plans["plans"].as_array().unwrap().len(), 1, "{plans}");
}

#[tokio::test]
async fn member_chunk_refusals() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();
    let flow = api.flow(&["r"], &[leaf("u"), leaf("r")], false).await;
    let p = &flow.plan;

    // chunk_too_large (> 1000) before the plan lookup.
    let big: Vec<Value> = (0..1001).map(|i| leaf(&format!("big{i}"))).collect();
    let r = api.post_members(&new_id(), &big).await;
    refused(&r, 400, "chunk_too_large");
    let r = api.post_members(p, &big).await;
    refused(&r, 400, "chunk_too_large");
    let r = api.post_members(&new_id(), &[leaf("n")]).await;
    refused(&r, 404, "unknown_plan");

    // clock_skew: observed_at more than 5 s ahead of the server.
    let ahead = in_secs(120);
    let r = api
        .post_members(p, &[with(leaf("n"), "observed_at", json!(ahead))])
        .await;
    let d = refused(&r, 400, "clock_skew");
    soft.extra(&d, "task_id", json!(tid("n")));
    soft.extra(&d, "observed_at", json!(ahead));
    soft.check(
        d["server_time"].is_string(),
        format!("clock_skew.server_time: {d}"),
    );
    // Within the tolerance it is accepted.
    let ok = api
        .members(p, &[with(leaf("n"), "observed_at", json!(in_secs(1)))])
        .await;
    assert_eq!(ok["members_admitted"], 1, "{ok}");
    // A naive observed_at is 400 observed_at_naive (D33); an offset is fine.
    let r = api
        .post_members(
            p,
            &[with(
                leaf("n2"),
                "observed_at",
                json!("2026-01-01T00:00:00"),
            )],
        )
        .await;
    refused(&r, 400, "observed_at_naive");
    let ok = api
        .members(
            p,
            &[with(
                leaf("n2"),
                "observed_at",
                json!("2020-01-01T01:00:00+01:00"),
            )],
        )
        .await;
    assert_eq!(ok["members_admitted"], 1, "{ok}");

    // One hash, two bodies: within a chunk and against the stored instance.
    let twin = with(leaf("t2"), "instance_hash", json!(ih("t1")));
    let r = api.post_members(p, &[leaf("t1"), twin]).await;
    let d = refused(&r, 409, "instance_body_conflict");
    soft.extra(&d, "instance_hash", json!(ih("t1")));
    let r = api
        .post_members(p, &[with(leaf("u"), "body", json!({"tag": "u", "n": 99}))])
        .await;
    let d = refused(&r, 409, "instance_body_conflict");
    soft.extra(&d, "instance_hash", json!(ih("u")));

    // The task row's identity is fixed.
    let r = api
        .post_members(p, &[with(leaf("u"), "task_name", json!("Renamed"))])
        .await;
    let d = refused(&r, 409, "task_identity_conflict");
    soft.extra(&d, "task_id", json!(tid("u")));
    soft.extra(&d, "fields", json!(["task_name"]));
    let r = api
        .post_members(
            p,
            &[with(leaf("u"), "output_uri", json!("/elsewhere/u.json"))],
        )
        .await;
    let d = refused(&r, 409, "task_identity_conflict");
    soft.extra(&d, "fields", json!(["output_uri"]));

    // An upstream hash must be an instance of the scope (stored or in the chunk).
    let r = api
        .post_members(p, &[item("y", Some(&["never-registered"]))])
        .await;
    refused(&r, 400, "unknown_upstream");
    let ok = api
        .members(p, &[leaf("y0"), item("y", Some(&["y0"]))])
        .await;
    assert_eq!(ok["tasks_created"], 2, "{ok}");
    assert_eq!(ok["edges_created"], 1, "{ok}");

    // Another instance of a task the plan already holds.
    let other_u = with(leaf("u"), "instance_hash", json!(ih("u-v2")));
    let other_u = with(
        other_u,
        "body",
        json!({"__namespace": "tests", "__name": name("u"), "tag": "u", "n": 2}),
    );
    let r = api.post_members(p, &[other_u]).await;
    let d = refused(&r, 409, "instance_conflict");
    assert_eq!(d["task_id"], tid("u").as_str(), "{d}");
    soft.extra(&d, "fields", json!(["n"]));

    // Order: clock_skew is checked before everything else in the chunk; a duplicate
    // hash with two bodies before the task identities.
    let r = api
        .post_members(
            p,
            &[
                with(leaf("u"), "task_name", json!("Renamed")),
                with(leaf("z"), "observed_at", json!(in_secs(120))),
            ],
        )
        .await;
    refused(&r, 400, "clock_skew");
    let r = api
        .post_members(
            p,
            &[
                with(leaf("u"), "task_name", json!("Renamed")),
                leaf("t1"),
                with(leaf("t2"), "instance_hash", json!(ih("t1"))),
            ],
        )
        .await;
    refused(&r, 409, "instance_body_conflict");

    // D33: members posted to a sealed plan are accepted.
    api.seal(p).await.expect(200);
    let ok = api.members(p, &[leaf("late")]).await;
    assert_eq!(ok["members_admitted"], 1, "{ok}");
    assert_eq!(ok["tasks_created"], 1, "{ok}");
}

#[tokio::test]
async fn seal_and_resume_refusals() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();

    refused(&api.seal(&new_id()).await, 404, "unknown_plan");

    // A root neither expanded nor completed blocks the seal; an observed-complete one
    // does not.
    let open = api.flow(&["r1", "r2"], &[], false).await;
    let d = refused(
        &api.seal(&open.plan).await,
        409,
        "plan_incomplete_registration",
    );
    assert_eq!(d["reason"], "roots_unexpanded", "{d}");
    api.members(
        &open.plan,
        &[
            leaf("r1"),
            with(item("r2", None), "observed_complete", json!(true)),
        ],
    )
    .await;
    let sealed = api.seal(&open.plan).await.expect(200);
    assert!(sealed["sealed_at"].is_string(), "{sealed}");

    // deployment_not_current: the plan's modal deployment was replaced before its seal
    // (checked before plan_superseded).
    let local = api.local_deployment("c1").await;
    let b = api.build(&["m"]).await;
    let p1 = api.plan(&b, &local, json!({}), &["m"]).await;
    api.members(&p1, &[leaf("m")]).await;
    api.seal(&p1).await.expect(200);
    let d1 = api.modal_deployment("app", "k1").await;
    api.activate(&d1).await;
    let p2 = api.plan(&b, &d1, json!({}), &["m"]).await;
    api.members(&p2, &[leaf("m")]).await;
    let d2 = api.modal_deployment("app", "k2").await;
    let d2_row = api.activate(&d2).await;
    assert_eq!(d2_row["generation"], 2);
    let p3 = api.plan(&b, &d2, json!({}), &["m"]).await;
    refused(&api.seal(&p2).await, 409, "deployment_not_current");
    api.members(&p3, &[leaf("m")]).await;
    let s3 = api.seal(&p3).await.expect(200);
    assert!(
        s3["activated_at"].is_string(),
        "activated at its seal: {s3}"
    );
    let old = api.plan_detail(&p1).await;
    assert!(old["superseded_at"].is_string(), "superseded: {old}");
    assert_eq!(old["is_active"], false);

    // plan_superseded at seal: a higher generation of the build exists.
    let b4 = api.build(&["q"]).await;
    let mut deps = Vec::new();
    for code in ["q1", "q2", "q3", "q4"] {
        deps.push(api.local_deployment(code).await);
    }
    let mut plans = Vec::new();
    for dep in &deps[..2] {
        let p = api.plan(&b4, dep, json!({}), &["q"]).await;
        api.members(&p, &[leaf("q")]).await;
        plans.push(p);
    }
    api.seal(&plans[1]).await.expect(200); // q2 replaces q1
    for dep in &deps[2..] {
        let p = api.plan(&b4, dep, json!({}), &["q"]).await;
        api.members(&p, &[leaf("q")]).await;
        plans.push(p);
    }
    let d = refused(&api.seal(&plans[2]).await, 409, "plan_superseded");
    soft.has(&d, "plan_id");

    // Resume into the superseded first plan: refused while later plans wait for their
    // seal (plan_superseded) …
    let r = api
        .post(
            &format!("/builds/{b4}/resume"),
            &json!({"deployment_id": deps[0], "settings": {}}),
        )
        .await;
    refused(&r, 409, "plan_superseded");
    // … and, for a modal plan, when its deployment is no longer current.
    let b5 = api.build(&["w"]).await;
    let w1 = api.plan(&b5, &d1, json!({}), &["w"]).await; // d1: activated, not current
    let w2 = api.plan(&b5, &local, json!({}), &["w"]).await;
    api.members(&w2, &[leaf("w")]).await;
    api.seal(&w2).await.expect(200);
    assert!(api.plan_detail(&w1).await["superseded_at"].is_string());
    let r = api
        .post(
            &format!("/builds/{b5}/resume"),
            &json!({"deployment_id": d1, "settings": {}}),
        )
        .await;
    refused(&r, 409, "deployment_not_current");
    // Nothing changed: the second plan is still the active one.
    assert_eq!(api.plan_detail(&w2).await["is_active"], true);
    // A superseded local plan is reactivated by a resume naming its deployment.
    let b6 = api.build(&["v"]).await;
    let v1 = api.plan(&b6, &deps[0], json!({}), &["v"]).await;
    let v2 = api.plan(&b6, &deps[1], json!({}), &["v"]).await;
    api.members(&v2, &[leaf("v")]).await;
    api.seal(&v2).await.expect(200);
    let r = api
        .post(
            &format!("/builds/{b6}/resume"),
            &json!({"deployment_id": deps[0], "settings": {}}),
        )
        .await
        .expect(200);
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(r["plan"]["id"], v1.as_str(), "{r}");
    assert_eq!(r["plan"]["superseded_at"], Value::Null, "{r}");
    assert_eq!(api.plan_detail(&v1).await["is_active"], true);
    let old = api.plan_detail(&v2).await;
    assert!(old["superseded_at"].is_string(), "{old}");
    assert_eq!(api.frontier(&b6).await["plan_id"], v1.as_str());

    let r = api
        .post(
            &format!("/builds/{}/resume", new_id()),
            &json!({"settings": {}}),
        )
        .await;
    refused(&r, 404, "unknown_build");
}
