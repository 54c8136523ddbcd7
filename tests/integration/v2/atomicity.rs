//! All-or-nothing registration (§6.3): one bad item refuses the whole chunk — member
//! chunks, plan roots and yield items — and nothing of it is written: no task, no
//! instance, no member, no edge, no observation.

use serde_json::{json, Value};

use super::refusals_claims::yield_body;
use super::*;

async fn member_count(api: &Api, plan: &str) -> Value {
    api.plan_detail(plan).await["member_count"].clone()
}

#[tokio::test]
async fn a_bad_item_refuses_the_whole_chunk() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    // Stored: root r and members u, v, all expanded leaves, pending, runnable.
    let fl = api
        .flow(&["r"], &[leaf("u"), leaf("v"), leaf("r")], false)
        .await;
    let p = &fl.plan;
    let members = member_count(&api, p).await;
    assert_eq!(members, 3);
    let runnable = ids(&api.frontier(&fl.build).await["runnable"]);
    assert_eq!(runnable, tids(&["r", "u", "v"]));

    let other_u = with(leaf("u"), "instance_hash", json!(ih("u-2")));
    let other_u = with(
        other_u,
        "body",
        json!({"__namespace": "tests", "__name": name("u"), "tag": "u", "n": 2}),
    );
    // Each chunk: new tasks x1, x2 (x2 over x1), a new edge u → x1 on the stored
    // instance, an observation completing r, and one bad item.
    let good = || {
        vec![
            leaf("x1"),
            item("x2", Some(&["x1"])),
            item("u", Some(&["x1"])),
            with(leaf("r"), "observed_complete", json!(true)),
        ]
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "identity conflict",
            with(leaf("r"), "task_name", json!("Renamed")),
            409,
            "task_identity_conflict",
        ),
        (
            "unknown upstream",
            item("x3", Some(&["x1", "nowhere"])),
            400,
            "unknown_upstream",
        ),
        (
            "one hash, two bodies (in the chunk)",
            with(leaf("x3"), "instance_hash", json!(ih("x1"))),
            409,
            "instance_body_conflict",
        ),
        (
            "one hash, two bodies (stored)",
            with(leaf("v"), "body", json!({"tag": "v", "n": 9})),
            409,
            "instance_body_conflict",
        ),
        (
            "clock skew",
            with(leaf("x3"), "observed_at", json!(in_secs(120))),
            400,
            "clock_skew",
        ),
        (
            "another instance of a member",
            other_u,
            409,
            "instance_conflict",
        ),
    ];
    for (what, bad, status, code) in cases {
        let mut chunk = good();
        chunk.push(bad);
        let r = api.post_members(p, &chunk).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["detail"]["code"], code, "{what}");
        // Nothing of the chunk exists.
        api.assert_no_tasks(&["x1", "x2", "x3"]).await;
        assert_eq!(member_count(&api, p).await, members, "{what}: members");
        assert_eq!(api.status("r").await, "pending", "{what}: no observation");
        let u = api.task("u").await.expect(200);
        assert_eq!(
            u["instances"].as_array().unwrap().len(),
            1,
            "{what}: no instance: {u}"
        );
        // u gained no edge to the (absent) x1: still runnable.
        let fr = api.frontier(&fl.build).await;
        assert_eq!(ids(&fr["runnable"]), tids(&["r", "u", "v"]), "{what}: {fr}");
    }

    // The chunk without the bad item is accepted whole.
    let ok = api.members(p, &good()).await;
    assert_eq!(ok["tasks_created"], 2, "{ok}");
    assert_eq!(ok["completed"], 1, "{ok}");
    assert_eq!(member_count(&api, p).await, 5);
    assert_eq!(api.status("r").await, "completed");
    let fr = api.frontier(&fl.build).await;
    assert_eq!(
        ids(&fr["runnable"]),
        tids(&["v", "x1"]),
        "u now waits on x1: {fr}"
    );
}

#[tokio::test]
async fn a_bad_root_refuses_the_plan() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    // Another build stored root r's instance in the scope (code-1, settings {}).
    api.flow(&["r"], &[], false).await;
    let dep = api.local_deployment("code-1").await;
    let b = api.build(&["r", "r2"]).await;
    let pid = new_id();
    let bad_r = with(
        item("r", None),
        "body",
        json!({"tag": "r", "changed": true}),
    );
    for (bad, status, code) in [
        (bad_r, 409, "instance_body_conflict"),
        (
            with(item("r", None), "observed_at", json!(in_secs(120))),
            400,
            "clock_skew",
        ),
    ] {
        let r = api
            .post(
                &format!("/builds/{b}/plans"),
                &json!({"plan_id": pid, "deployment_id": dep, "settings": {},
                        "roots": [item("r2", None), bad]}),
            )
            .await;
        refused(&r, status, code);
        refused(
            &api.get(&format!("/plans/{pid}")).await,
            404,
            "unknown_plan",
        );
        let plans = api.get(&format!("/builds/{b}/plans")).await.expect(200);
        assert_eq!(plans["plans"], json!([]), "{plans}");
        api.assert_no_tasks(&["r2"]).await;
        let fr = api.frontier(&b).await;
        assert_eq!(fr["plan_id"], Value::Null, "{fr}");
    }
    // The corrected request creates the plan as the build's first (generation 1).
    let ok = api
        .post(
            &format!("/builds/{b}/plans"),
            &json!({"plan_id": pid, "deployment_id": dep, "settings": {},
                    "roots": [item("r2", None), item("r", None)]}),
        )
        .await;
    assert!(ok.status.is_success(), "{ok:?}");
    let ok = ok.json();
    assert_eq!(ok["generation"], 1);
    assert_eq!(ok["created"], true);
}

#[tokio::test]
async fn a_bad_yield_item_writes_nothing_and_keeps_the_batch_unspent() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let fl = api.flow(&["py"], &[leaf("py"), leaf("sib")], true).await;
    let e = api.claim(&fl.plan, "py", None).await;
    let batch = new_id();
    let bad = with(leaf("sib"), "task_name", json!("Renamed"));
    let r = api
        .act(
            &fl.plan,
            "py",
            "yield",
            &yield_body(&e, &fl.dep, &batch, &[leaf("k1"), bad], &["k1"], true),
        )
        .await;
    refused(&r, 409, "task_identity_conflict");
    api.assert_no_tasks(&["k1"]).await;
    let t = api.task("py").await.expect(200);
    assert_eq!(t["status"], "running", "not suspended: {t}");
    assert_eq!(
        api.execution("py", &e).await["claim_released_at"],
        Value::Null
    );
    let yielded = api
        .events("py")
        .await
        .into_iter()
        .filter(|ev| ev["event_type"] == "task_yielded")
        .count();
    assert_eq!(yielded, 0);
    // The same batch id, corrected, is applied (nothing was stored for it).
    let ok = api
        .act(
            &fl.plan,
            "py",
            "yield",
            &yield_body(&e, &fl.dep, &batch, &[leaf("k1")], &["k1"], true),
        )
        .await
        .expect(200);
    assert_eq!(ok["replayed"], false, "{ok}");
    assert_eq!(ok["status"], "suspended", "{ok}");
    assert_eq!(api.status("k1").await, "pending");
}
