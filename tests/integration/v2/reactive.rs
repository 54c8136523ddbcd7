//! Reactive scheduling (§5.2, §6.7): reactive-meta, notify, the wake-candidates
//! hand-out window (120 s), the scheduler lease, stalled builds, and the flagging of
//! reactive builds on task status changes.

use serde_json::{json, Value};

use super::*;

async fn reactive(api: &Api, tag: &str) -> Flow {
    let fl = api.flow(&[tag], &[leaf(tag)], true).await;
    let b = api
        .put(
            &format!("/builds/{}/reactive-meta", fl.build),
            &json!({"app_name": "app", "tick_kwargs": {"k": 1}}),
        )
        .await
        .expect(200);
    assert_eq!(b["reactive_app_name"], "app");
    assert_eq!(b["reactive_tick_kwargs"], json!({"k": 1}));
    fl
}

async fn notify(api: &Api, build: &str, can_spawn: bool) -> Value {
    api.post_empty(&format!("/builds/{build}/notify?can_spawn={can_spawn}"))
        .await
        .expect(200)
}

/// `POST /builds/wake-candidates`: the handed-out build ids.
async fn wake(api: &Api) -> Vec<String> {
    let r = api
        .post_empty("/builds/wake-candidates?limit=20")
        .await
        .expect(200);
    r["builds"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|b| {
            assert_eq!(b["reactive_app_name"], "app", "{b}");
            b["build_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn lease(api: &Api, method: &str, build: &str, owner: &str) -> Value {
    let path = format!("/builds/{build}/scheduler-lease?owner_id={owner}&ttl_seconds=60");
    let r = match method {
        "POST" => api.post_empty(&path).await,
        "PUT" => api.put_empty(&path).await,
        _ => api.delete(&path).await,
    };
    r.expect(200)
}

#[tokio::test]
async fn wake_candidates_hand_out_once_per_window_and_respect_the_lease() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let b1 = reactive(&api, "h1").await.build;
    let b2 = reactive(&api, "h2").await.build;
    let b3 = reactive(&api, "h3").await.build;
    let plain = api.flow(&["h4"], &[leaf("h4")], true).await.build;

    // A null tick_kwargs keeps the stored one.
    let b = api
        .put(
            &format!("/builds/{b1}/reactive-meta"),
            &json!({"app_name": "app", "tick_kwargs": null}),
        )
        .await
        .expect(200);
    assert_eq!(b["reactive_tick_kwargs"], json!({"k": 1}));

    assert_eq!(
        wake(&api).await,
        Vec::<String>::new(),
        "nothing flagged yet"
    );
    let n = notify(&api, &b1, false).await;
    assert_eq!(
        n,
        json!({"build_id": b1, "needs_tick": true, "scheduler_live": false})
    );
    notify(&api, &plain, false).await; // not reactive: never a candidate
                                       // b2's scheduler holds a live lease.
    let l = lease(&api, "POST", &b2, "sched-2").await;
    assert_eq!(l["held"], true, "{l}");
    assert!(l["expires_at"].is_string(), "{l}");
    let n = notify(&api, &b2, false).await;
    assert_eq!(n["scheduler_live"], true, "{n}");
    let n = api.get(&format!("/builds/{b1}/notify")).await.expect(200);
    assert_eq!(n["needs_tick"], true, "{n}");
    let n = api.get(&format!("/builds/{b3}/notify")).await.expect(200);
    assert_eq!(n["needs_tick"], false, "{n}");

    // Handed out once; within the window, not again. The lease hides b2.
    assert_eq!(wake(&api).await, vec![b1.clone()]);
    assert_eq!(wake(&api).await, Vec::<String>::new());

    // Releasing b2's live lease makes it a candidate (it was never handed out).
    let l = lease(&api, "DELETE", &b2, "sched-2").await;
    assert_eq!(l["held"], true, "{l}");
    assert_eq!(wake(&api).await, vec![b2.clone()]);
    assert_eq!(wake(&api).await, Vec::<String>::new());

    // A lease taken and released after b1's hand-out makes b1 eligible again; another
    // owner neither acquires nor releases it.
    let mine = lease(&api, "POST", &b1, "sched-1").await;
    assert_eq!(mine["held"], true);
    let theirs = lease(&api, "POST", &b1, "intruder").await;
    assert_eq!(theirs["held"], false, "{theirs}");
    assert_eq!(theirs["expires_at"], mine["expires_at"], "{theirs}");
    let renewed = lease(&api, "PUT", &b1, "sched-1").await;
    assert_eq!(renewed["held"], true, "{renewed}");
    let not_theirs = lease(&api, "PUT", &b1, "intruder").await;
    assert_eq!(not_theirs["held"], false, "{not_theirs}");
    assert_eq!(wake(&api).await, Vec::<String>::new(), "live lease");
    let r = lease(&api, "DELETE", &b1, "intruder").await;
    assert_eq!(r["held"], false, "{r}");
    let r = lease(&api, "DELETE", &b1, "sched-1").await;
    assert_eq!(r["held"], true, "{r}");
    assert_eq!(wake(&api).await, vec![b1.clone()]);

    // DELETE notify clears the flag: no more hand-outs even after a lease release.
    let n = api
        .delete(&format!("/builds/{b1}/notify"))
        .await
        .expect(200);
    assert_eq!(n["needs_tick"], false, "{n}");
    let n = api.get(&format!("/builds/{b1}/notify")).await.expect(200);
    assert_eq!(n["needs_tick"], false, "{n}");
    lease(&api, "POST", &b1, "sched-1").await;
    lease(&api, "DELETE", &b1, "sched-1").await;
    assert_eq!(wake(&api).await, Vec::<String>::new());

    // A build that is not running is never flagged.
    api.post_empty(&format!("/builds/{b3}/cancel"))
        .await
        .expect(200);
    let n = notify(&api, &b3, true).await;
    assert_eq!(n["needs_tick"], false, "{n}");
    assert_eq!(n["scheduler_live"], false, "{n}");
    assert_eq!(wake(&api).await, Vec::<String>::new());
}

#[tokio::test]
async fn notify_with_can_spawn_is_a_hand_out_and_limit_drains_oldest_first() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let b1 = reactive(&api, "s1").await.build;
    let b2 = reactive(&api, "s2").await.build;
    let b3 = reactive(&api, "s3").await.build;
    // The caller spawned a scheduler itself: b1 is handed out already.
    notify(&api, &b1, true).await;
    notify(&api, &b2, false).await;
    notify(&api, &b3, false).await;
    let r = api
        .post_empty("/builds/wake-candidates?limit=1")
        .await
        .expect(200);
    assert_eq!(
        r["builds"],
        json!([{"build_id": b2, "reactive_app_name": "app"}])
    );
    assert_eq!(wake(&api).await, vec![b3.clone()]);
    assert_eq!(wake(&api).await, Vec::<String>::new());

    // With a live lease, a can_spawn notify is no hand-out (§9 #11, upstream): once
    // the lease is released the build is a candidate.
    let b4 = reactive(&api, "s4").await.build;
    lease(&api, "POST", &b4, "sched").await;
    let n = notify(&api, &b4, true).await;
    assert_eq!(n["scheduler_live"], true, "{n}");
    assert_eq!(wake(&api).await, Vec::<String>::new());
    lease(&api, "DELETE", &b4, "sched").await;
    assert_eq!(wake(&api).await, vec![b4]);
}

#[tokio::test]
async fn stalled_builds_list_flagged_unserved_ones() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let flagged = reactive(&api, "t1").await.build;
    let leased = reactive(&api, "t2").await.build;
    reactive(&api, "t3").await; // reactive, never flagged
    let plain = api.flow(&["t4"], &[leaf("t4")], true).await.build;
    notify(&api, &flagged, false).await;
    lease(&api, "POST", &leased, "s").await;
    notify(&api, &leased, false).await;
    notify(&api, &plain, false).await;
    let before = clock::now_micros();

    let r = api
        .get("/stalled-builds?older_than_seconds=0&limit=200")
        .await
        .expect(200);
    let builds = r["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 1, "{r}");
    assert_eq!(builds[0]["build_id"], flagged.as_str());
    assert_eq!(builds[0]["reactive_app_name"], "app");
    assert_eq!(builds[0]["reason"], "flagged_unserved");
    assert!(micros(&builds[0]["since"]) <= before, "{r}");
    // Not yet stalled at the default cutoff (300 s).
    let r = api.get("/stalled-builds").await.expect(200);
    assert_eq!(r["builds"], json!([]), "{r}");
}

#[tokio::test]
async fn status_changes_flag_the_other_reactive_builds_holding_the_task() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    // Two builds share task `sh`; only the watcher is reactive.
    let watcher = reactive(&api, "sh").await.build;
    let worker = api.flow(&["sh"], &[leaf("sh")], true).await;
    let n = api
        .get(&format!("/builds/{watcher}/notify"))
        .await
        .expect(200);
    assert_eq!(n["needs_tick"], false, "{n}");
    let e = api.claim(&worker.plan, "sh", None).await;
    api.complete(&worker.plan, "sh", &e).await.expect(200);
    let n = api
        .get(&format!("/builds/{watcher}/notify"))
        .await
        .expect(200);
    assert_eq!(n["needs_tick"], true, "the watcher was flagged: {n}");
    assert_eq!(wake(&api).await, vec![watcher]);
}
