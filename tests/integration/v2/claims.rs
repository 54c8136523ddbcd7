//! Claim expiry and renewal (§5.4 report rules, §5.5 renew, §6.5): a claim is live
//! while `claim_expires_at > now`; a lapsed claim stays `running` until a claiming
//! start takes it over, a retry/skip/observation closes it `lapsed`, or its own
//! execution reports. One sleep lets several one-second claims lapse at once.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn claims_lapse_are_taken_over_and_renewals_extend_them() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let mut soft = Soft::default();
    let tags = ["a", "b", "c", "d", "e", "g"];
    let items: Vec<Value> = tags.iter().map(|t| leaf(t)).collect();
    let fl = api.flow(&["a"], &items, true).await;
    let p = &fl.plan;

    // a: claimed for 1 s and renewed at once for 10 minutes by its holder.
    let ea = api.claim(p, "a", Some(1)).await;
    let first = api.task("a").await.expect(200)["claim_expires_at"].clone();
    let renewed = api.renew("a", &ea, Some(600)).await.expect(200);
    assert_eq!(renewed["status"], "running");
    assert_eq!(renewed["execution_id"], ea.as_str());
    assert!(
        micros(&renewed["claim_expires_at"]) > micros(&first) + 500_000_000,
        "the renewal extends the claim: {first} → {renewed}"
    );
    // b, c, d, e, g: one-second claims left to lapse.
    let mut exec = std::collections::HashMap::new();
    for t in &tags[1..] {
        exec.insert(*t, api.claim(p, t, Some(1)).await);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // The renewed claim is still live; the lapsed ones are runnable again but still
    // `running` in the task row.
    refused(
        &api.start(p, "a", &new_id(), None).await,
        409,
        "task_already_running",
    );
    let fr = api.frontier(&fl.build).await;
    assert_eq!(ids(&fr["running"]), vec![tid("a")], "{fr}");
    assert_eq!(ids(&fr["runnable"]), tids(&tags[1..]), "{fr}");
    let b = api.task("b").await.expect(200);
    assert_eq!(b["status"], "running", "a lapsed claim stays running: {b}");
    assert_eq!(b["execution_id"], exec["b"].as_str());

    // A lapsed claim cannot be renewed (no outcome yet).
    let d = refused(
        &api.renew("b", &exec["b"], None).await,
        409,
        "claim_not_held",
    );
    assert!(d.get("claim_outcome").is_none_or(Value::is_null), "{d}");

    // b: another execution takes the lapsed claim over.
    let eb2 = new_id();
    let t = api.start(p, "b", &eb2, None).await.expect(200);
    assert_eq!(t["applied"], true);
    assert_eq!(t["execution_id"], eb2.as_str());
    let old = api.execution("b", &exec["b"]).await;
    assert_eq!(old["claim_outcome"], "taken_over", "{old}");
    assert!(old["claim_released_at"].is_string(), "{old}");
    assert_eq!(old["ended_at"], Value::Null, "{old}");
    // The old holder's renewal says what happened.
    let d = refused(
        &api.renew("b", &exec["b"], Some(60)).await,
        409,
        "claim_not_held",
    );
    assert_eq!(d["claim_outcome"], "taken_over", "{d}");
    // Its report is late: ledger end recorded, event recorded, task untouched.
    let d = refused(
        &api.complete(p, "b", &exec["b"]).await,
        409,
        "execution_not_current",
    );
    soft.extra(&d, "execution_id", json!(exec["b"]));
    let old = api.execution("b", &exec["b"]).await;
    assert_eq!(old["outcome"], "completed", "{old}");
    assert!(old["ended_at"].is_string(), "{old}");
    let b = api.task("b").await.expect(200);
    assert_eq!(b["status"], "running");
    assert_eq!(b["execution_id"], eb2.as_str());
    let late: Vec<Value> = api
        .events("b")
        .await
        .into_iter()
        .filter(|e| e["report_applied"] == false)
        .collect();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0]["execution_id"], exec["b"].as_str());
    refused(
        &api.complete(p, "b", &exec["b"]).await,
        409,
        "execution_already_ended",
    );
    // The new holder's claim is unaffected.
    api.renew("b", &eb2, Some(60)).await.expect(200);
    assert_eq!(
        api.complete(p, "b", &eb2).await.expect(200)["status"],
        "completed"
    );

    // c: a lapsed claim (not taken over) still accepts its own execution's report.
    let t = api.complete(p, "c", &exec["c"]).await.expect(200);
    assert_eq!(t["status"], "completed");
    assert_eq!(
        api.execution("c", &exec["c"]).await["claim_outcome"],
        "completed"
    );

    // d: retry closes the lapsed claim `lapsed`.
    let t = api.act_empty(p, "d", "retry").await.expect(200);
    assert_eq!(
        (t["applied"].clone(), t["status"].clone()),
        (json!(true), json!("pending"))
    );
    assert_eq!(
        api.execution("d", &exec["d"]).await["claim_outcome"],
        "lapsed"
    );
    // g: so does skip.
    let t = api.act_empty(p, "g", "skip").await.expect(200);
    assert_eq!(t["status"], "skipped");
    assert_eq!(
        api.execution("g", &exec["g"]).await["claim_outcome"],
        "lapsed"
    );
    // e: and an observation of the completed target.
    let m = api
        .members(p, &[with(leaf("e"), "observed_complete", json!(true))])
        .await;
    assert_eq!(m["completed"], 1, "{m}");
    assert_eq!(api.status("e").await, "completed");
    assert_eq!(
        api.execution("e", &exec["e"]).await["claim_outcome"],
        "lapsed"
    );

    // a: still held, renewable and reportable by its holder.
    api.renew("a", &ea, Some(60)).await.expect(200);
    assert_eq!(
        api.complete(p, "a", &ea).await.expect(200)["status"],
        "completed"
    );
}

#[tokio::test]
async fn an_observation_never_completes_a_live_claim_and_invalidates_older_completions() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let fl = api.flow(&["o1"], &[leaf("o1"), leaf("o2")], true).await;
    let p = &fl.plan;
    let e = api.claim(p, "o1", None).await;
    let m = api
        .members(p, &[with(leaf("o1"), "observed_complete", json!(true))])
        .await;
    assert_eq!(m["completed"], 0, "{m}");
    assert_eq!(api.status("o1").await, "running");
    assert_eq!(
        api.execution("o1", &e).await["claim_released_at"],
        Value::Null
    );

    // A completion older than an observation of the missing target is invalidated; an
    // observation older than the completion is not.
    api.run(p, "o2").await;
    let stale = with(
        leaf("o2"),
        "observed_at",
        json!("2020-01-01T00:00:00.000000Z"),
    );
    let m = api.members(p, &[stale]).await;
    assert_eq!(m["invalidated"], 0, "{m}");
    assert_eq!(api.status("o2").await, "completed");
    let m = api.members(p, &[leaf("o2")]).await;
    assert_eq!(m["invalidated"], 1, "{m}");
    let t = api.task("o2").await.expect(200);
    assert_eq!(t["status"], "pending", "{t}");
    assert_eq!(t["completed_at"], Value::Null, "{t}");
}
