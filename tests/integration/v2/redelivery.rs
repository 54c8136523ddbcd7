//! Re-delivery (§1.5, D33): the SDK re-sends any write after a timeout or a
//! 502/503/504, so a second delivery answers as the first did — by client-minted ids,
//! by state, or by replay — except the documented cases: a re-delivered execution
//! report is `execution_already_ended`, wake-candidates is a drain, a tick summary is
//! one row per delivery. The same holds for two identical requests in flight at once.

use serde_json::{json, Value};

use super::refusals_claims::yield_body;
use super::*;

/// The MembersResult of a chunk that changed nothing.
fn zeros() -> Value {
    json!({
        "tasks_created": 0, "instances_created": 0, "members_admitted": 0,
        "closure_admitted": 0, "edges_created": 0, "completed": 0,
        "invalidated": 0, "diverged": 0,
    })
}

/// `r` without the `created` flag (true only for the inserting call).
fn sans_created(mut r: Value) -> Value {
    r.as_object_mut().unwrap().remove("created");
    r
}

#[tokio::test]
async fn deployments_limits_and_build_lifecycle_redelivered() {
    let f = Fixture::start().await;
    let api = Api::of(&f);

    // Deployments: the same request twice answers the same row.
    let body = json!({"id": new_id(), "kind": "local", "code_id": "c-re"});
    let one = api.post("/deployments", &body).await;
    let two = api.post("/deployments", &body).await.expect(200);
    assert!(one.status.is_success());
    let one = one.json();
    assert_eq!(one["created"], true);
    assert_eq!(two["created"], false);
    assert_eq!(sans_created(one.clone()), sans_created(two));
    // A local re-deploy of the same code under a new id finds the same row.
    let three = api
        .post(
            "/deployments",
            &json!({"id": new_id(), "kind": "local", "code_id": "c-re"}),
        )
        .await
        .expect(200);
    assert_eq!(three["id"], one["id"]);
    let modal = json!({"id": new_id(), "kind": "modal", "app_name": "app", "code_id": "k"});
    let m1 = api.post("/deployments", &modal).await.json();
    let m2 = api.post("/deployments", &modal).await.expect(200);
    assert_eq!(sans_created(m1), sans_created(m2.clone()));
    let a1 = api.activate(m2["id"].as_str().unwrap()).await;
    let a2 = api.activate(m2["id"].as_str().unwrap()).await;
    assert_eq!(a1, a2, "activated_at is set once");
    let listed = api.get("/deployments?kind=modal").await.expect(200);
    assert_eq!(listed["deployments"].as_array().unwrap().len(), 1);

    // Limits: an upsert; the second delete is 404 (the CLI reports it).
    let l1 = api
        .put("/concurrency-limits/k", &json!({"max_concurrent": 3}))
        .await
        .expect(200);
    let l2 = api
        .put("/concurrency-limits/k", &json!({"max_concurrent": 3}))
        .await
        .expect(200);
    assert_eq!(l1, l2);
    assert_eq!(
        api.get("/concurrency-limits").await.expect(200)["limits"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Builds: the same id answers the existing build, whatever the body.
    let id = new_id();
    let b1 = api.post("/builds", &build_body(&id, &["r"])).await;
    assert!(b1.status.is_success());
    let b1 = b1.json();
    let b2 = api.post("/builds", &build_body(&id, &["r"])).await;
    assert!(b2.status.is_success());
    assert_eq!(b1, b2.json());
    let mut other = build_body(&id, &["r", "x"]);
    other["name"] = json!("another-name");
    let b3 = api.post("/builds", &other).await;
    assert!(b3.status.is_success());
    assert_eq!(b1, b3.json(), "the body of a re-delivery is ignored");
    assert_eq!(api.get("/builds").await.expect(200)["total"], 1);

    // Lifecycle transitions are idempotent by state.
    let fl = api.chain().await;
    let b = &fl.build;
    let e1 = api
        .post_empty(&format!("/builds/{b}/exit-early"))
        .await
        .expect(200);
    let e2 = api
        .post_empty(&format!("/builds/{b}/exit-early"))
        .await
        .expect(200);
    assert_eq!(e1["status"], "exit_early");
    assert_eq!(e1, e2);
    let r1 = api
        .post(&format!("/builds/{b}/resume"), &json!({"settings": {}}))
        .await
        .expect(200);
    let r2 = api
        .post(&format!("/builds/{b}/resume"), &json!({"settings": {}}))
        .await
        .expect(200);
    assert_eq!(r1["changed"], true);
    assert_eq!(r2["changed"], false);
    assert_eq!(r1["build"], r2["build"]);
    assert_eq!(r2["build"]["status"], "running");
    let s1 = api
        .post_empty(&format!("/builds/{b}/skip-blocked"))
        .await
        .expect(200);
    let s2 = api
        .post_empty(&format!("/builds/{b}/skip-blocked"))
        .await
        .expect(200);
    assert_eq!(s1["skipped"], json!([]));
    assert_eq!(s2["skipped"], json!([]));
    let c1 = api
        .post(&format!("/builds/{b}/complete"), &json!({"force": true}))
        .await
        .expect(200);
    let c2 = api
        .post(&format!("/builds/{b}/complete"), &json!({"force": true}))
        .await
        .expect(200);
    assert_eq!(c1, c2);
    assert_eq!(c1["status"], "completed");
    for (action, body) in [
        ("fail", json!({"error_message": "x"})),
        ("cancel", Value::Null),
    ] {
        let fl = api.flow(&[action], &[leaf(action)], true).await;
        let path = format!("/builds/{}/{action}", fl.build);
        let (x, y) = if body.is_null() {
            (
                api.post_empty(&path).await.expect(200),
                api.post_empty(&path).await.expect(200),
            )
        } else {
            (
                api.post(&path, &body).await.expect(200),
                api.post(&path, &body).await.expect(200),
            )
        };
        assert_eq!(x, y, "{action}");
    }
}

#[tokio::test]
async fn registration_and_member_transitions_redelivered() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let dep = api.local_deployment("code-1").await;
    let b = api.build(&["r"]).await;

    // Plan create: lookup-or-create by scope.
    let pid = new_id();
    let body = plan_body(&pid, &dep, json!({}), &["r"]);
    let p1 = api.post(&format!("/builds/{b}/plans"), &body).await;
    assert!(p1.status.is_success());
    let p1 = p1.json();
    let p2 = api
        .post(&format!("/builds/{b}/plans"), &body)
        .await
        .expect(200);
    assert_eq!(p1["created"], true);
    assert_eq!(p2["created"], false);
    assert_eq!(sans_created(p1), sans_created(p2));

    // A chunk again changes nothing.
    let chunk = [
        leaf("u"),
        leaf("w"),
        leaf("lone"),
        item("r", Some(&["u", "w"])),
    ];
    let m1 = api.members(&pid, &chunk).await;
    assert_eq!(m1["tasks_created"], 3, "{m1}");
    // Static or closure, depending on the processing order (§6.3).
    let admitted =
        m1["members_admitted"].as_u64().unwrap() + m1["closure_admitted"].as_u64().unwrap();
    assert_eq!(admitted, 3, "{m1}");
    assert_eq!(m1["edges_created"], 2, "{m1}");
    assert_eq!(api.members(&pid, &chunk).await, zeros());
    let s1 = api.seal(&pid).await.expect(200);
    let s2 = api.seal(&pid).await.expect(200);
    assert_eq!(s1, s2);
    assert_eq!(api.plan_detail(&pid).await["member_count"], 4);

    // Claiming start: applied false; non-claiming start, preempt: repeatable.
    let e = new_id();
    let t1 = api.start(&pid, "u", &e, None).await.expect(200);
    let t2 = api.start(&pid, "u", &e, None).await.expect(200);
    assert_eq!(t1["applied"], true);
    assert_eq!(t2["applied"], false);
    assert_eq!(t1["claim_expires_at"], t2["claim_expires_at"]);
    let ns = json!({"execution_id": e, "claim": false, "executor_ref": "worker-1"});
    let n1 = api.act(&pid, "u", "start", &ns).await.expect(200);
    let n2 = api.act(&pid, "u", "start", &ns).await.expect(200);
    assert_eq!(n1, n2);
    let pr = json!({ "execution_id": e });
    let q1 = api.act(&pid, "u", "preempt", &pr).await.expect(200);
    let q2 = api.act(&pid, "u", "preempt", &pr).await.expect(200);
    assert_eq!(q1, q2, "the restart deadline is not pushed back");
    assert_eq!(api.executions("u").await.len(), 1);
    // Renew: the holder's claim, again.
    let r1 = api.renew("u", &e, Some(600)).await.expect(200);
    let r2 = api.renew("u", &e, Some(600)).await.expect(200);
    assert_eq!(r1["status"], "running");
    assert!(micros(&r2["claim_expires_at"]) >= micros(&r1["claim_expires_at"]));

    // Yield: replayed.
    let batch = new_id();
    let y = yield_body(&e, &dep, &batch, &[leaf("kid")], &["kid"], false);
    let y1 = api.act(&pid, "u", "yield", &y).await.expect(200);
    let y2 = api.act(&pid, "u", "yield", &y).await.expect(200);
    assert_eq!(y1["replayed"], false);
    assert_eq!(y2["replayed"], true);
    assert_eq!(y1["members"], y2["members"]);
    assert_eq!(y1["dynamic_edges_created"], y2["dynamic_edges_created"]);

    // Artifacts: an upsert keeping id and created_at, the body replaced.
    let art = |v: i64| {
        json!({"execution_id": e, "artifacts": [
            {"type": "json", "name": "metrics", "body": {"v": v}},
            {"type": "markdown", "name": "report", "body": {"content": "# hi"}},
        ]})
    };
    api.act(&pid, "u", "artifacts", &art(1)).await.expect(200);
    let first = api
        .get(&format!("/tasks/{}/artifacts", tid("u")))
        .await
        .expect(200);
    api.act(&pid, "u", "artifacts", &art(2)).await.expect(200);
    let second = api
        .get(&format!("/tasks/{}/artifacts", tid("u")))
        .await
        .expect(200);
    let by_name = |list: &Value, n: &str| -> Value {
        list["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {list}"))
            .clone()
    };
    assert_eq!(second["artifacts"].as_array().unwrap().len(), 2);
    let (a, b2) = (by_name(&first, "metrics"), by_name(&second, "metrics"));
    assert_eq!(a["id"], b2["id"]);
    assert_eq!(a["created_at"], b2["created_at"]);
    assert_eq!(b2["body"], json!({"v": 2}));
    assert_eq!(
        by_name(&second, "report")["body"],
        json!({"content": "# hi"})
    );

    // complete again: execution_already_ended (the accepted exception).
    api.complete(&pid, "u", &e).await.expect(200);
    let d = refused(
        &api.complete(&pid, "u", &e).await,
        409,
        "execution_already_ended",
    );
    assert_eq!(d["outcome"], "completed", "{d}");
    assert_eq!(api.status("u").await, "completed");

    // retry, skip, cancel, exclude, discovery-failed: idempotent by state.
    let x1 = api.act_empty(&pid, "kid", "skip").await.expect(200);
    let x2 = api.act_empty(&pid, "kid", "skip").await.expect(200);
    assert_eq!(
        (x1["applied"].clone(), x2["applied"].clone()),
        (json!(true), json!(false))
    );
    let x1 = api.act_empty(&pid, "kid", "retry").await.expect(200);
    let x2 = api.act_empty(&pid, "kid", "retry").await.expect(200);
    assert_eq!(
        (x1["applied"].clone(), x2["applied"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(x2["status"], "pending");
    let ew = api.claim(&pid, "w", None).await;
    let c1 = api.act_empty(&pid, "w", "cancel").await.expect(200);
    let c2 = api.act_empty(&pid, "w", "cancel").await.expect(200);
    assert_eq!(c1["status"], "cancelled");
    assert_eq!(c2["status"], "cancelled");
    assert_eq!(api.execution("w", &ew).await["claim_outcome"], "cancelled");
    let ex = json!({"reason": "operator"});
    let x1 = api.act(&pid, "kid", "exclude", &ex).await.expect(200);
    let x2 = api.act(&pid, "kid", "exclude", &ex).await.expect(200);
    assert_eq!(x1["excluded"], json!([tid("kid")]));
    assert_eq!(x2["excluded"], json!([]), "empty on re-delivery");
    let df = json!({"error": "discovery failed"});
    let x1 = api
        .act(&pid, "lone", "discovery-failed", &df)
        .await
        .expect(200);
    let x2 = api
        .act(&pid, "lone", "discovery-failed", &df)
        .await
        .expect(200);
    assert_eq!(x1["excluded"], json!([tid("lone")]));
    assert_eq!(x2["excluded"], json!([]));

    // fail and interrupt again: execution_already_ended with the first outcome.
    let fl = api.flow(&["fx"], &[leaf("fx"), leaf("ix")], true).await;
    let ef = api.claim(&fl.plan, "fx", None).await;
    api.fail(&fl.plan, "fx", &ef).await.expect(200);
    let d = refused(
        &api.fail(&fl.plan, "fx", &ef).await,
        409,
        "execution_already_ended",
    );
    assert_eq!(d["outcome"], "failed", "{d}");
    let ei = api.claim(&fl.plan, "ix", None).await;
    let body = json!({"execution_id": ei, "error_message": "sigterm"});
    api.act(&fl.plan, "ix", "interrupt", &body)
        .await
        .expect(200);
    let d = refused(
        &api.act(&fl.plan, "ix", "interrupt", &body).await,
        409,
        "execution_already_ended",
    );
    assert_eq!(d["outcome"], "interrupted", "{d}");
    assert_eq!(api.status("ix").await, "interrupted");

    // executions/{id}/stopped: the first end is kept.
    let fl = api.flow(&["st"], &[leaf("st")], true).await;
    let es = api.claim(&fl.plan, "st", None).await;
    let path = format!("/executions/{es}/stopped");
    let s1 = api
        .post(&path, &json!({"outcome": "stopped"}))
        .await
        .expect(200);
    let ended = api.execution("st", &es).await;
    let s2 = api
        .post(&path, &json!({"outcome": "stopped"}))
        .await
        .expect(200);
    assert_eq!(s1, s2);
    assert_eq!(api.execution("st", &es).await, ended);
}

#[tokio::test]
async fn reactive_writes_redelivered() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let fl = api.flow(&["rx"], &[leaf("rx")], true).await;
    let b = &fl.build;
    let meta = json!({"app_name": "app", "tick_kwargs": {"a": 1}});
    let m1 = api
        .put(&format!("/builds/{b}/reactive-meta"), &meta)
        .await
        .expect(200);
    let m2 = api
        .put(&format!("/builds/{b}/reactive-meta"), &meta)
        .await
        .expect(200);
    assert_eq!(m1, m2);
    let path = format!("/builds/{b}/notify?can_spawn=false");
    let n1 = api.post_empty(&path).await.expect(200);
    let n2 = api.post_empty(&path).await.expect(200);
    assert_eq!(n1, n2);
    let lease = format!("/builds/{b}/scheduler-lease?owner_id=me&ttl_seconds=60");
    let l1 = api.post_empty(&lease).await.expect(200);
    let l2 = api.post_empty(&lease).await.expect(200);
    assert_eq!(
        (l1["held"].clone(), l2["held"].clone()),
        (json!(true), json!(true))
    );
    let u1 = api.put_empty(&lease).await.expect(200);
    let u2 = api.put_empty(&lease).await.expect(200);
    assert_eq!(
        (u1["held"].clone(), u2["held"].clone()),
        (json!(true), json!(true))
    );
    let r1 = api.delete(&lease).await.expect(200);
    let r2 = api.delete(&lease).await.expect(200);
    assert_eq!(r1["held"], true);
    assert_eq!(r2["held"], false, "released already");
    let d1 = api.delete(&format!("/builds/{b}/notify")).await.expect(200);
    let d2 = api.delete(&format!("/builds/{b}/notify")).await.expect(200);
    assert_eq!(d1, d2);

    // Tick summaries: one row per delivery (the SDK does not retry them).
    let summary = json!({"outcome": "idle", "started": 0, "note": "same"});
    for _ in 0..2 {
        let r = api
            .post(&format!("/builds/{b}/tick-summaries"), &summary)
            .await
            .expect(201);
        assert_eq!(r["outcome"], "idle");
        assert_eq!(r["summary"], summary);
    }
    let list = api
        .get(&format!("/builds/{b}/tick-summaries"))
        .await
        .expect(200);
    assert_eq!(list["summaries"].as_array().unwrap().len(), 2, "{list}");

    // wake-candidates is a drain: a retry hands out a different (here: empty) set.
    api.post_empty(&path).await.expect(200);
    let w1 = api.post_empty("/builds/wake-candidates").await.expect(200);
    let w2 = api.post_empty("/builds/wake-candidates").await.expect(200);
    assert_eq!(w1["builds"].as_array().unwrap().len(), 1, "{w1}");
    assert_eq!(w2["builds"], json!([]));
}

/// Two identical requests in flight at once answer as one delivery and its re-delivery
/// would, in some order (D33: "including a re-delivery that arrives while the first
/// delivery is still queued").
#[tokio::test]
async fn concurrent_identical_deliveries_answer_as_one() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let twice = |path: String, body: Value| {
        let api = api.clone();
        async move { tokio::join!(api.post(&path, &body), api.post(&path, &body)) }
    };

    // Deployment.
    let dep_body = json!({"id": new_id(), "kind": "local", "code_id": "cc"});
    let (a, b) = twice("/deployments".into(), dep_body).await;
    assert!(
        a.status.is_success() && b.status.is_success(),
        "{a:?} {b:?}"
    );
    let (a, b) = (a.json(), b.json());
    assert_eq!(a["id"], b["id"]);
    assert_eq!(
        [&a, &b].iter().filter(|d| d["created"] == true).count(),
        1,
        "one insert: {a} {b}"
    );
    let dep = a["id"].as_str().unwrap().to_owned();

    // Build.
    let bid = new_id();
    let (a, b) = twice("/builds".into(), build_body(&bid, &["r"])).await;
    assert!(
        a.status.is_success() && b.status.is_success(),
        "{a:?} {b:?}"
    );
    assert_eq!(a.json(), b.json());
    assert_eq!(api.get("/builds").await.expect(200)["total"], 1);

    // Plan.
    let pid = new_id();
    let (a, b) = twice(
        format!("/builds/{bid}/plans"),
        plan_body(&pid, &dep, json!({}), &["r"]),
    )
    .await;
    assert!(
        a.status.is_success() && b.status.is_success(),
        "{a:?} {b:?}"
    );
    let (a, b) = (a.json(), b.json());
    assert_eq!(a["id"], pid.as_str());
    assert_eq!(b["id"], pid.as_str());
    assert_eq!(
        [&a, &b].iter().filter(|p| p["created"] == true).count(),
        1,
        "{a} {b}"
    );
    let plans = api.get(&format!("/builds/{bid}/plans")).await.expect(200);
    assert_eq!(plans["plans"].as_array().unwrap().len(), 1, "{plans}");

    // A chunk: one delivery registers, the other finds everything there.
    let items: Vec<Value> = (0..50)
        .map(|i| leaf(&format!("m{i}")))
        .chain([item("r", Some(&["m0", "m1"]))])
        .collect();
    let (a, b) = twice(format!("/plans/{pid}/members"), json!({ "items": items })).await;
    let (a, b) = (a.expect(200), b.expect(200));
    let created: Vec<&Value> = [&a, &b].iter().map(|m| &m["tasks_created"]).collect();
    assert!(
        created.contains(&&json!(50)) && created.contains(&&json!(0)),
        "{a} {b}"
    );
    assert!(a == zeros() || b == zeros(), "{a} {b}");
    assert_eq!(api.plan_detail(&pid).await["member_count"], 51);

    // Seal.
    let (a, b) = tokio::join!(api.seal(&pid), api.seal(&pid));
    assert_eq!(a.expect(200), b.expect(200));

    // Claiming start by one execution.
    let e = new_id();
    let (a, b) = twice(
        format!("/plans/{pid}/members/{}/start", tid("m0")),
        start_body(&e, None),
    )
    .await;
    let (a, b) = (a.expect(200), b.expect(200));
    let mut applied = vec![a["applied"].clone(), b["applied"].clone()];
    applied.sort_by_key(|v| v.to_string());
    assert_eq!(applied, vec![json!(false), json!(true)], "{a} {b}");
    assert_eq!(a["execution_id"], e.as_str());
    assert_eq!(b["execution_id"], e.as_str());
    assert_eq!(a["claim_expires_at"], b["claim_expires_at"]);
    assert_eq!(api.executions("m0").await.len(), 1);

    // Yield: one applies, the other is the replay.
    let y = yield_body(&e, &dep, &new_id(), &[leaf("ykid")], &["ykid"], false);
    let (a, b) = twice(format!("/plans/{pid}/members/{}/yield", tid("m0")), y).await;
    let (a, b) = (a.expect(200), b.expect(200));
    let mut replayed = vec![a["replayed"].clone(), b["replayed"].clone()];
    replayed.sort_by_key(|v| v.to_string());
    assert_eq!(replayed, vec![json!(false), json!(true)], "{a} {b}");
    assert_eq!(a["members"], b["members"]);

    // Artifacts.
    let art =
        json!({"execution_id": e, "artifacts": [{"type": "json", "name": "m", "body": {"v": 1}}]});
    let (a, b) = twice(format!("/plans/{pid}/members/{}/artifacts", tid("m0")), art).await;
    let (a, b) = (a.expect(200), b.expect(200));
    assert_eq!(a["artifacts"][0]["id"], b["artifacts"][0]["id"]);
    let listed = api
        .get(&format!("/tasks/{}/artifacts", tid("m0")))
        .await
        .expect(200);
    assert_eq!(listed["artifacts"].as_array().unwrap().len(), 1);

    // complete: one applies, the other is execution_already_ended.
    let (a, b) = twice(
        format!("/plans/{pid}/members/{}/complete", tid("m0")),
        json!({ "execution_id": e }),
    )
    .await;
    let (ok, dup) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!(ok.expect(200)["status"], "completed");
    refused(&dup, 409, "execution_already_ended");
    let led = api.execution("m0", &e).await;
    assert_eq!(led["outcome"], "completed");

    // exclude: one excludes, the other finds it excluded.
    let (a, b) = twice(
        format!("/plans/{pid}/members/{}/exclude", tid("m9")),
        json!({"reason": "r"}),
    )
    .await;
    let (a, b) = (a.expect(200), b.expect(200));
    let mut lens = vec![
        a["excluded"].as_array().unwrap().len(),
        b["excluded"].as_array().unwrap().len(),
    ];
    lens.sort();
    assert_eq!(lens, vec![0, 1], "{a} {b}");

    // Tick summaries: two deliveries, two rows.
    let (a, b) = twice(
        format!("/builds/{bid}/tick-summaries"),
        json!({"outcome": "idle"}),
    )
    .await;
    a.expect(201);
    b.expect(201);
    let list = api
        .get(&format!("/builds/{bid}/tick-summaries"))
        .await
        .expect(200);
    assert_eq!(list["summaries"].as_array().unwrap().len(), 2);

    // Build complete (force) and resume.
    let (a, b) = twice(format!("/builds/{bid}/complete"), json!({"force": true})).await;
    assert_eq!(a.expect(200), b.expect(200));
    let (a, b) = twice(format!("/builds/{bid}/resume"), json!({"settings": {}})).await;
    let (a, b) = (a.expect(200), b.expect(200));
    assert_eq!(a["build"], b["build"]);
    let mut changed = vec![a["changed"].clone(), b["changed"].clone()];
    changed.sort_by_key(|v| v.to_string());
    assert_eq!(changed, vec![json!(false), json!(true)], "{a} {b}");
}
