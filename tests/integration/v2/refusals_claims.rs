//! Refusal codes of the member transitions, claims and executions (§5.4, §5.5, §8):
//! the claiming start's eleven rules in their order, the report rules, preempt,
//! yield, retry/skip/cancel, renew, stopped, concurrency limits and the rate limit.

use serde_json::{json, Value};

use super::*;

fn keyed(exec: &str, ttl: Option<i64>, keys: &[&str]) -> Value {
    with(start_body(exec, ttl), "limit_keys", json!(keys))
}

pub fn yield_body(
    exec: &str,
    dep: &str,
    batch: &str,
    items: &[Value],
    yielded: &[&str],
    suspend: bool,
) -> Value {
    let yielded: Vec<String> = yielded.iter().map(|t| ih(t)).collect();
    json!({
        "execution_id": exec,
        "deployment_id": dep,
        "batch_id": batch,
        "items": items,
        "yielded": yielded,
        "suspend": suspend,
    })
}

#[tokio::test]
async fn claiming_start_refusals_in_order() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();
    let flow = api.chain().await; // r depends on u
    let p = &flow.plan;

    // The member is resolved first: unknown plan, then not a member (D33).
    refused(
        &api.start(&new_id(), "u", &new_id(), None).await,
        404,
        "unknown_plan",
    );
    let d = refused(
        &api.start(p, "stranger", &new_id(), None).await,
        404,
        "not_a_member",
    );
    soft.extra(&d, "task_id", json!(tid("stranger")));
    soft.extra(&d, "plan_id", json!(p));

    // Rule 9: an upstream not completed.
    let d = refused(
        &api.start(p, "r", &new_id(), None).await,
        409,
        "upstream_incomplete",
    );
    assert_eq!(d["task_id"], tid("r").as_str(), "{d}");
    soft.extra(&d, "upstream_task_ids", json!([tid("u")]));

    // Rule 11: a TTL outside 1..86400 (D33: 400 for both ends), nothing written.
    for ttl in [0, -5, 86_401] {
        let d = refused(
            &api.start(p, "u", &new_id(), Some(ttl)).await,
            400,
            "invalid_claim_ttl",
        );
        soft.extra(&d, "claim_ttl_seconds", json!(ttl));
    }
    assert_eq!(api.status("u").await, "pending");
    assert!(api.executions("u").await.is_empty());

    // Granted; rule 1: the same execution again answers applied:false, unchanged.
    let e_u = new_id();
    let granted = api.start(p, "u", &e_u, Some(86_400)).await.expect(200);
    assert_eq!(granted["applied"], true);
    assert_eq!(granted["status"], "running");
    assert_eq!(granted["execution_id"], e_u.as_str());
    let again = api.start(p, "u", &e_u, Some(60)).await.expect(200);
    assert_eq!(again["applied"], false, "{again}");
    assert_eq!(again["execution_id"], e_u.as_str());
    assert_eq!(again["claim_expires_at"], granted["claim_expires_at"]);
    // Rule 3: another execution while the claim is live.
    let d = refused(
        &api.start(p, "u", &new_id(), None).await,
        409,
        "task_already_running",
    );
    soft.extra(&d, "task_id", json!(tid("u")));

    api.complete(p, "u", &e_u).await.expect(200);
    // Rule 2 before rule 5: a completed task, asked by a known execution id.
    let d = refused(
        &api.start(p, "u", &e_u, None).await,
        409,
        "task_already_completed",
    );
    soft.extra(&d, "task_id", json!(tid("u")));
    // Rule 5: an execution id already in the ledger (of another task).
    let d = refused(
        &api.start(p, "r", &e_u, None).await,
        409,
        "execution_superseded",
    );
    soft.extra(&d, "execution_id", json!(e_u));
    // Rule 3 before rule 5.
    let e_r = api.claim(p, "r", None).await;
    refused(
        &api.start(p, "r", &e_u, None).await,
        409,
        "task_already_running",
    );
    api.complete(p, "r", &e_r).await.expect(200);

    // Rules 9, 10, 11: upstream before limit before TTL; the limit's keys.
    let lim = api
        .flow(&["b"], &[leaf("a"), item("b", Some(&["a"]))], true)
        .await;
    api.put("/concurrency-limits/k", &json!({"max_concurrent": 0}))
        .await
        .expect(200);
    let r = api
        .act(&lim.plan, "b", "start", &keyed(&new_id(), Some(0), &["k"]))
        .await;
    refused(&r, 409, "upstream_incomplete");
    let r = api
        .act(&lim.plan, "a", "start", &keyed(&new_id(), Some(0), &["k"]))
        .await;
    let d = refused(&r, 409, "concurrency_limit_reached");
    assert_eq!(d["keys"], json!(["k"]), "{d}");
    let r = api
        .act(&lim.plan, "a", "start", &keyed(&new_id(), Some(0), &[]))
        .await;
    refused(&r, 400, "invalid_claim_ttl");
    let r = api
        .act(&lim.plan, "a", "start", &keyed(&new_id(), None, &["free"]))
        .await;
    assert_eq!(
        r.expect(200)["status"],
        "running",
        "an unlimited key is free"
    );

    // Rules 1, 5, 6, 7: a second plan of the build, not yet active (sealed), and the
    // build cancelled.
    let x = api.flow(&["x1"], &[leaf("x1")], true).await;
    let l2 = api.local_deployment("code-x2").await;
    let p2 = api.plan(&x.build, &l2, json!({}), &["x1"]).await;
    let d = refused(
        &api.start(&p2, "x1", &new_id(), None).await,
        409,
        "plan_superseded",
    );
    soft.has(&d, "plan_id");
    let e_x = api.claim(&x.plan, "x1", None).await;
    let held = api.start(&p2, "x1", &e_x, None).await.expect(200);
    assert_eq!(held["applied"], false, "rule 1 comes first: {held}");
    let cancelled = api
        .post_empty(&format!("/builds/{}/cancel", x.build))
        .await
        .expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(api.status("x1").await, "cancelled", "claim released");
    assert_eq!(api.execution("x1", &e_x).await["claim_outcome"], "released");
    refused(
        &api.start(&p2, "x1", &e_x, None).await,
        409,
        "execution_superseded",
    );
    refused(
        &api.start(&p2, "x1", &new_id(), None).await,
        409,
        "plan_superseded",
    );
    let d = refused(
        &api.start(&x.plan, "x1", &new_id(), None).await,
        409,
        "build_not_running",
    );
    assert_eq!(d["build_status"], "cancelled", "{d}");
    soft.extra(&d, "build_id", json!(x.build));

    // Rule 7 before 8: an excluded upstream of the root fails the build.
    let y = api
        .flow(&["y1"], &[leaf("y0"), item("y1", Some(&["y0"]))], true)
        .await;
    let out = api
        .act(&y.plan, "y0", "exclude", &json!({"reason": "no"}))
        .await
        .expect(200);
    assert_eq!(out["excluded"], json!([tid("y0"), tid("y1")]), "{out}");
    assert_eq!(out["build_failed"], true, "{out}");
    let d = refused(
        &api.start(&y.plan, "y0", &new_id(), None).await,
        409,
        "build_not_running",
    );
    assert_eq!(d["build_status"], "failed", "{d}");

    // Rule 8 before 9; rule 9's not-expanded form.
    let z = api
        .flow(
            &["z1"],
            &[leaf("z1"), item("z0", None), item("w0", None)],
            true,
        )
        .await;
    let out = api.act_empty(&z.plan, "z0", "exclude").await.expect(200);
    assert_eq!(out["excluded"], json!([tid("z0")]), "{out}");
    assert_eq!(out["build_failed"], false, "{out}");
    let d = refused(
        &api.start(&z.plan, "z0", &new_id(), None).await,
        409,
        "member_excluded",
    );
    soft.extra(&d, "task_id", json!(tid("z0")));
    let d = refused(
        &api.start(&z.plan, "w0", &new_id(), None).await,
        409,
        "upstream_incomplete",
    );
    assert_eq!(d["reason"], "not_expanded", "{d}");

    // D33: a failed task is granted again by a claiming start (not runnable on the
    // frontier, §2).
    let e1 = api.claim(&z.plan, "z1", None).await;
    assert_eq!(
        api.fail(&z.plan, "z1", &e1).await.expect(200)["status"],
        "failed"
    );
    let fr = api.frontier(&z.build).await;
    assert!(!ids(&fr["runnable"]).contains(&tid("z1")), "{fr}");
    let again = api.start(&z.plan, "z1", &new_id(), None).await;
    let again = again.expect(200);
    assert_eq!(again["status"], "running");
    assert_eq!(again["applied"], true);
}

#[tokio::test]
async fn report_rules_in_order() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();
    // Two builds hold the same task `s` (one scope: the same instance).
    let b1 = api.flow(&["s"], &[leaf("s"), leaf("o")], true).await;
    let b2 = api.flow(&["s"], &[leaf("s")], true).await;
    let e1 = api.claim(&b1.plan, "s", None).await;
    let e_o = api.claim(&b1.plan, "o", None).await;

    // 1. Unknown execution, or one of another task.
    let stranger = new_id();
    let d = refused(
        &api.complete(&b1.plan, "s", &stranger).await,
        409,
        "unknown_execution",
    );
    soft.extra(&d, "execution_id", json!(stranger));
    refused(
        &api.complete(&b1.plan, "s", &e_o).await,
        409,
        "unknown_execution",
    );
    let r = api
        .act(
            &b1.plan,
            "s",
            "start",
            &json!({"execution_id": stranger, "claim": false}),
        )
        .await;
    refused(&r, 409, "unknown_execution");

    // 3. The holder reporting through another build's plan: refused, no trace.
    let events_before = api.events("s").await.len();
    for (action, body) in [
        ("complete", json!({"execution_id": e1})),
        ("fail", json!({"execution_id": e1, "error_message": "x"})),
        ("interrupt", json!({"execution_id": e1})),
        ("preempt", json!({"execution_id": e1})),
        ("start", json!({"execution_id": e1, "claim": false})),
    ] {
        let r = api.act(&b2.plan, "s", action, &body).await;
        refused(&r, 409, "not_claim_holder");
    }
    let r = api
        .act(
            &b2.plan,
            "s",
            "yield",
            &yield_body(&e1, &b2.dep, &new_id(), &[leaf("sc")], &["sc"], false),
        )
        .await;
    refused(&r, 409, "not_claim_holder");
    refused(
        &api.act_empty(&b2.plan, "s", "cancel").await,
        409,
        "not_claim_holder",
    );
    assert_eq!(api.events("s").await.len(), events_before, "no trace");
    let task = api.task("s").await.expect(200);
    assert_eq!(task["status"], "running");
    assert_eq!(task["execution_id"], e1.as_str());
    assert_eq!(api.execution("s", &e1).await["ended_at"], Value::Null);
    api.assert_no_tasks(&["sc"]).await;

    // The holder through its own plan: applied.
    let done = api.complete(&b1.plan, "s", &e1).await.expect(200);
    assert_eq!(done["status"], "completed");
    let led = api.execution("s", &e1).await;
    assert_eq!(led["outcome"], "completed", "{led}");
    assert_eq!(led["claim_outcome"], "completed", "{led}");
    assert!(led["ended_at"].is_string(), "{led}");

    // 2. A second end, through either plan (before not_claim_holder): recorded, refused.
    for plan in [&b1.plan, &b2.plan] {
        let d = refused(
            &api.complete(plan, "s", &e1).await,
            409,
            "execution_already_ended",
        );
        soft.extra(&d, "execution_id", json!(e1));
        soft.extra(&d, "outcome", json!("completed"));
    }
    let d = refused(
        &api.fail(&b1.plan, "s", &e1).await,
        409,
        "execution_already_ended",
    );
    soft.extra(&d, "outcome", json!("completed"));
    let not_applied = api
        .events("s")
        .await
        .into_iter()
        .filter(|e| e["report_applied"] == false)
        .count();
    soft.check(
        not_applied == 3,
        format!("3 refused reports recorded with report_applied:false, got {not_applied}"),
    );
    assert_eq!(api.status("s").await, "completed");

    // 5. A late report: the build released the claim. The ledger end is kept, an event
    // records it, the task is untouched.
    api.post_empty(&format!("/builds/{}/cancel", b1.build))
        .await
        .expect(200);
    assert_eq!(api.status("o").await, "cancelled");
    assert_eq!(api.execution("o", &e_o).await["claim_outcome"], "released");
    let d = refused(
        &api.complete(&b1.plan, "o", &e_o).await,
        409,
        "execution_not_current",
    );
    soft.extra(&d, "execution_id", json!(e_o));
    let led = api.execution("o", &e_o).await;
    assert_eq!(led["outcome"], "completed", "ledger end kept: {led}");
    assert!(led["ended_at"].is_string(), "{led}");
    assert_eq!(api.status("o").await, "cancelled");
    let late = api
        .events("o")
        .await
        .into_iter()
        .filter(|e| e["report_applied"] == false && e["execution_id"] == e_o.as_str())
        .count();
    assert_eq!(late, 1, "the late report is an event");
    let d = refused(
        &api.complete(&b1.plan, "o", &e_o).await,
        409,
        "execution_already_ended",
    );
    soft.extra(&d, "outcome", json!("completed"));
    // A non-claiming start of an ended execution is late too.
    let r = api
        .act(
            &b1.plan,
            "o",
            "start",
            &json!({"execution_id": e_o, "claim": false}),
        )
        .await;
    refused(&r, 409, "execution_not_current");
}

#[tokio::test]
async fn fail_interrupt_preempt_and_restart() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let fl = api
        .flow(&["p"], &[leaf("p"), leaf("q"), leaf("i")], true)
        .await;

    // fail stores the message; interrupt leaves the task actionable.
    let eq = api.claim(&fl.plan, "q", None).await;
    let failed = api.fail(&fl.plan, "q", &eq).await.expect(200);
    assert_eq!(failed["status"], "failed");
    assert_eq!(api.task("q").await.expect(200)["error_message"], "boom");
    let ei = api.claim(&fl.plan, "i", None).await;
    let r = api
        .act(
            &fl.plan,
            "i",
            "interrupt",
            &json!({"execution_id": ei, "error_message": "sigterm"}),
        )
        .await
        .expect(200);
    assert_eq!(r["status"], "interrupted");
    assert_eq!(
        api.execution("i", &ei).await["claim_outcome"],
        "interrupted"
    );

    // preempt: only by the current execution with a live claim.
    let e = api.claim(&fl.plan, "p", Some(3600)).await;
    let r = api
        .act(&fl.plan, "p", "preempt", &json!({"execution_id": new_id()}))
        .await;
    refused(&r, 409, "execution_not_current");
    let before = clock::now_micros();
    let t = api
        .act(&fl.plan, "p", "preempt", &json!({ "execution_id": e }))
        .await
        .expect(200);
    assert_eq!(t["status"], "running");
    let expiry = micros(&t["claim_expires_at"]);
    assert!(
        expiry > before && expiry <= clock::now_micros() + 120_000_000,
        "expiry within the 120 s restart grace: {t}"
    );
    let fr = api.frontier(&fl.build).await;
    assert_eq!(ids(&fr["running"]), vec![tid("p")], "{fr}");
    assert_eq!(
        fr["running"][0]["restart_expected_by"],
        t["claim_expires_at"]
    );
    assert_eq!(ids(&fr["runnable"]), vec![tid("i")], "{fr}");
    assert_eq!(fr["runnable"][0]["attempts"], 1, "{fr}");
    assert_eq!(fr["runnable"][0]["interruptions"], 1, "{fr}");
    // The restart's non-claiming start gets a fresh TTL and clears the preemption.
    let r = api
        .act(
            &fl.plan,
            "p",
            "start",
            &json!({"execution_id": e, "claim": false, "claim_ttl_seconds": 1800, "executor": "modal"}),
        )
        .await
        .expect(200);
    assert!(
        micros(&r["claim_expires_at"]) > clock::now_micros() + 1_000_000_000,
        "fresh TTL: {r}"
    );
    let fr = api.frontier(&fl.build).await;
    assert_eq!(fr["running"][0]["restart_expected_by"], Value::Null, "{fr}");
    assert_eq!(api.execution("p", &e).await["executor"], "modal");
}

#[tokio::test]
async fn member_action_refusals() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();
    let fl = api
        .flow(
            &["m1"],
            &[leaf("m1"), leaf("m2"), leaf("m3"), leaf("m4")],
            true,
        )
        .await;
    let p = &fl.plan;

    // retry / skip on pending, live, completed.
    let r = api.act_empty(p, "m1", "retry").await.expect(200);
    assert_eq!(
        (r["applied"].clone(), r["status"].clone()),
        (json!(false), json!("pending"))
    );
    let e1 = api.claim(p, "m1", None).await;
    for action in ["retry", "skip"] {
        let d = refused(
            &api.act_empty(p, "m1", action).await,
            409,
            "task_already_running",
        );
        soft.extra(&d, "task_id", json!(tid("m1")));
    }
    api.complete(p, "m1", &e1).await.expect(200);
    for action in ["retry", "skip"] {
        let d = refused(
            &api.act_empty(p, "m1", action).await,
            409,
            "task_already_completed",
        );
        soft.extra(&d, "task_id", json!(tid("m1")));
    }

    // A failed task: not skippable; retry makes it pending and clears the error.
    let e2 = api.claim(p, "m2", None).await;
    api.fail(p, "m2", &e2).await.expect(200);
    refused(
        &api.act_empty(p, "m2", "skip").await,
        409,
        "task_not_skippable",
    );
    let r = api.act_empty(p, "m2", "retry").await.expect(200);
    assert_eq!(
        (r["applied"].clone(), r["status"].clone()),
        (json!(true), json!("pending"))
    );
    assert_eq!(
        api.task("m2").await.expect(200)["error_message"],
        Value::Null
    );

    // cancel of a live claim through the build's plan; a cancelled task is not skipped.
    let e3 = api.claim(p, "m3", None).await;
    let r = api.act_empty(p, "m3", "cancel").await.expect(200);
    assert_eq!(r["status"], "cancelled");
    assert_eq!(api.execution("m3", &e3).await["claim_outcome"], "cancelled");
    refused(
        &api.act_empty(p, "m3", "skip").await,
        409,
        "task_not_skippable",
    );

    // skip of a pending task, then again: applied false.
    let r = api.act_empty(p, "m4", "skip").await.expect(200);
    assert_eq!(
        (r["applied"].clone(), r["status"].clone()),
        (json!(true), json!("skipped"))
    );
    let r = api.act_empty(p, "m4", "skip").await.expect(200);
    assert_eq!(r["applied"], false);

    // Every member action resolves the member first: 404 not_a_member (D33).
    let e = new_id();
    let bodies: Vec<(&str, Option<Value>)> = vec![
        ("start", Some(start_body(&e, None))),
        ("complete", Some(json!({ "execution_id": e }))),
        (
            "fail",
            Some(json!({"execution_id": e, "error_message": null})),
        ),
        ("interrupt", Some(json!({ "execution_id": e }))),
        ("preempt", Some(json!({ "execution_id": e }))),
        (
            "yield",
            Some(yield_body(
                &e,
                &fl.dep,
                &new_id(),
                &[leaf("g1")],
                &["g1"],
                false,
            )),
        ),
        ("retry", None),
        ("cancel", None),
        ("skip", None),
        ("exclude", None),
        ("discovery-failed", Some(json!({"error": "no"}))),
        (
            "artifacts",
            Some(
                json!({"execution_id": null, "artifacts": [{"type": "json", "name": "m", "body": {}}]}),
            ),
        ),
    ];
    for (action, body) in bodies {
        let r = match &body {
            Some(b) => api.act(p, "ghost", action, b).await,
            None => api.act_empty(p, "ghost", action).await,
        };
        let d = refused(&r, 404, "not_a_member");
        soft.extra(&d, "task_id", json!(tid("ghost")));
        let r = match &body {
            Some(b) => api.act(&new_id(), "ghost", action, b).await,
            None => api.act_empty(&new_id(), "ghost", action).await,
        };
        refused(&r, 404, "unknown_plan");
    }
}

#[tokio::test]
async fn renew_stopped_and_task_read_refusals() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();

    for tail in ["", "/executions", "/events", "/artifacts"] {
        let r = api.get(&format!("/tasks/{}{tail}", tid("ghost"))).await;
        let d = refused(&r, 404, "unknown_task");
        soft.extra(&d, "task_id", json!(tid("ghost")));
    }
    refused(
        &api.renew("ghost", &new_id(), None).await,
        404,
        "unknown_task",
    );

    let fl = api.flow(&["n1"], &[leaf("n1")], true).await;
    let e = api.claim(&fl.plan, "n1", Some(60)).await;
    // Not the holder: claim_not_held (before the TTL check).
    let d = refused(
        &api.renew("n1", &new_id(), None).await,
        409,
        "claim_not_held",
    );
    assert!(
        d.get("claim_outcome").is_none_or(Value::is_null),
        "no outcome for an unknown execution: {d}"
    );
    refused(
        &api.renew("n1", &new_id(), Some(0)).await,
        409,
        "claim_not_held",
    );
    // The holder with a bad TTL.
    for ttl in [0, 86_401] {
        let d = refused(
            &api.renew("n1", &e, Some(ttl)).await,
            400,
            "invalid_claim_ttl",
        );
        soft.extra(&d, "claim_ttl_seconds", json!(ttl));
    }
    // Renewed with the default TTL (3600 s).
    let r = api.renew("n1", &e, None).await.expect(200);
    let left = micros(&r["claim_expires_at"]) - clock::now_micros();
    assert!(
        (3_500_000_000..=3_600_000_000).contains(&left),
        "default TTL 3600 s: {r}"
    );
    api.complete(&fl.plan, "n1", &e).await.expect(200);
    let d = refused(&api.renew("n1", &e, None).await, 409, "claim_not_held");
    assert_eq!(d["claim_outcome"], "completed", "{d}");

    // /executions/{id}/stopped: unknown is 404 here; other outcomes are 422.
    let nowhere = new_id();
    let r = api
        .post(
            &format!("/executions/{nowhere}/stopped"),
            &json!({"outcome": "stopped"}),
        )
        .await;
    let d = refused(&r, 404, "unknown_execution");
    soft.extra(&d, "execution_id", json!(nowhere));
    let r = api
        .post(
            &format!("/executions/{e}/stopped"),
            &json!({"outcome": "vanished"}),
        )
        .await;
    assert_eq!(r.status, 422);

    // stopped ends a live execution and cancels its task.
    let fl2 = api.flow(&["n2"], &[leaf("n2")], true).await;
    let e2 = api.claim(&fl2.plan, "n2", None).await;
    let r = api
        .post(
            &format!("/executions/{e2}/stopped"),
            &json!({"outcome": "lost"}),
        )
        .await
        .expect(200);
    assert_eq!(r["status"], "cancelled");
    let led = api.execution("n2", &e2).await;
    assert_eq!(led["outcome"], "lost", "{led}");
    assert_eq!(led["claim_outcome"], "cancelled", "{led}");
}

#[tokio::test]
async fn yield_refusals_and_replay_first() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let fl = api.flow(&["py"], &[leaf("py")], true).await;
    let e = api.claim(&fl.plan, "py", None).await;
    let other = api.local_deployment("code-other").await;
    let y = |exec: &str, dep: &str, batch: &str, yielded: &[&str], suspend: bool| {
        yield_body(exec, dep, batch, &[leaf("c1")], yielded, suspend)
    };

    // deployment_mismatch before execution_not_current.
    let r = api
        .act(
            &fl.plan,
            "py",
            "yield",
            &y(&new_id(), &other, &new_id(), &["c1"], false),
        )
        .await;
    refused(&r, 409, "deployment_mismatch");
    let r = api
        .act(
            &fl.plan,
            "py",
            "yield",
            &y(&new_id(), &fl.dep, &new_id(), &["c1"], false),
        )
        .await;
    refused(&r, 409, "execution_not_current");
    let r = api
        .act(
            &fl.plan,
            "py",
            "yield",
            &y(&e, &fl.dep, &new_id(), &["zz"], false),
        )
        .await;
    refused(&r, 400, "yielded_not_in_items");
    api.assert_no_tasks(&["c1"]).await;

    // Applied: the child registered and admitted dynamic, a dynamic edge, the claim
    // kept without suspend.
    let batch = new_id();
    let first = api
        .act(
            &fl.plan,
            "py",
            "yield",
            &y(&e, &fl.dep, &batch, &["c1"], false),
        )
        .await
        .expect(200);
    assert_eq!(first["replayed"], false, "{first}");
    assert_eq!(first["status"], "running");
    assert_eq!(first["execution_id"], e.as_str());
    assert_eq!(first["dynamic_edges_created"], 1, "{first}");
    assert_eq!(first["members"]["tasks_created"], 1, "{first}");
    assert_eq!(first["members"]["members_admitted"], 1, "{first}");
    let fr = api.frontier(&fl.build).await;
    assert_eq!(ids(&fr["runnable"]), vec![tid("c1")], "{fr}");
    // The replay comes before any other check (here: another deployment).
    let replay = api
        .act(
            &fl.plan,
            "py",
            "yield",
            &y(&e, &other, &batch, &["c1"], false),
        )
        .await
        .expect(200);
    assert_eq!(replay["replayed"], true, "{replay}");
    assert_eq!(replay["members"], first["members"]);
    assert_eq!(
        replay["dynamic_edges_created"],
        first["dynamic_edges_created"]
    );

    // With suspend: the execution is reported suspended, the claim released.
    let s = api
        .act(
            &fl.plan,
            "py",
            "yield",
            &yield_body(&e, &fl.dep, &new_id(), &[leaf("c2")], &["c2"], true),
        )
        .await
        .expect(200);
    assert_eq!(s["status"], "suspended", "{s}");
    let led = api.execution("py", &e).await;
    assert_eq!(led["claim_outcome"], "suspended", "{led}");
    let r = api
        .act(
            &fl.plan,
            "py",
            "yield",
            &y(&e, &fl.dep, &new_id(), &["c1"], false),
        )
        .await;
    refused(&r, 409, "execution_not_current");
}

#[tokio::test]
async fn concurrency_limit_holders_and_release() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let fl = api.flow(&["k1"], &[leaf("k1"), leaf("k2")], true).await;
    api.put("/concurrency-limits/gpu", &json!({"max_concurrent": 1}))
        .await
        .expect(200);
    let e1 = new_id();
    api.act(&fl.plan, "k1", "start", &keyed(&e1, None, &["gpu"]))
        .await
        .expect(200);
    let r = api
        .act(&fl.plan, "k2", "start", &keyed(&new_id(), None, &["gpu"]))
        .await;
    let d = refused(&r, 409, "concurrency_limit_reached");
    assert_eq!(d["keys"], json!(["gpu"]));
    let list = api
        .get("/concurrency-limits?include_holders=true")
        .await
        .expect(200);
    let lim = &list["limits"][0];
    assert_eq!(lim["key"], "gpu");
    assert_eq!(lim["max_concurrent"], 1);
    assert_eq!(lim["in_use"], 1, "{list}");
    assert_eq!(lim["holders"][0]["task_id"], tid("k1").as_str(), "{list}");
    assert_eq!(lim["holders"][0]["build_id"], fl.build.as_str(), "{list}");
    api.complete(&fl.plan, "k1", &e1).await.expect(200);
    let r = api
        .act(&fl.plan, "k2", "start", &keyed(&new_id(), None, &["gpu"]))
        .await;
    assert_eq!(r.expect(200)["status"], "running");
}

#[tokio::test]
async fn rate_limit_answers_the_code_the_sdk_retries() {
    let f = Fixture::start_with(|c| {
        c.rate_limit.per_credential_rps = 1;
        c.rate_limit.per_credential_burst = 3;
    })
    .await;
    let api = Api::of(&f);
    for _ in 0..3 {
        api.post_empty("/builds/wake-candidates").await.expect(200);
    }
    let r = api.post_empty("/builds/wake-candidates").await;
    refused(&r, 429, "RATE_LIMIT");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
}
