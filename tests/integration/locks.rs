//! Locks through the real HTTP interface (v1-tasks §4.5 and the §7.3 checklist, as
//! changed by D9 and D19; docs/locks.md): exact bodies, atomic acquire under a race,
//! expiry and takeover, renewal of expired locks, the 423/429/409 paths, completion,
//! validation, environment isolation, and `Connection: close` on lock answers.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stardag_server::clock::parse_rfc3339_micros;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::env_support::{self, Account};
use crate::harness::{Client, TestResponse, TestServer};
use crate::tasks::{
    assert_422, assert_ts, build_tasks, hash, keys, new_build_id, reg, register, task_event,
};

/// A server, the bootstrap admin (internal token) and its API key.
struct Env {
    server: TestServer,
    admin: Account,
    key: String,
    sdk: Client,
}

async fn start() -> Env {
    start_with(|_| {}).await
}

async fn start_with(tweak: impl FnOnce(&mut stardag_server::config::Config)) -> Env {
    let server = TestServer::start_with(tweak).await;
    let (admin, key) = env_support::admin(&server).await;
    let sdk = server.client().with_api_key(&key);
    Env {
        server,
        admin,
        key,
        sdk,
    }
}

impl Env {
    /// D19: the limit is set by an admin through the environment route.
    async fn set_limit(&self, limit: Value) {
        let body = self
            .admin
            .client
            .patch(
                &self.admin.env_path(""),
                &json!({"max_concurrent_locks": limit}),
            )
            .await
            .expect(200);
        assert_eq!(body["max_concurrent_locks"], limit);
    }
}

fn owner() -> String {
    Uuid::now_v7().to_string()
}

async fn acquire(c: &Client, name: &str, owner: &str, ttl: i64) -> TestResponse {
    c.post(
        &format!("/api/v1/locks/{name}/acquire"),
        &json!({"owner_id": owner, "ttl_seconds": ttl, "check_task_completion": true}),
    )
    .await
}

/// Acquires and returns the LockResponse.
async fn acquired(c: &Client, name: &str, owner: &str, ttl: i64) -> Value {
    let body = acquire(c, name, owner, ttl).await.expect(200);
    assert_eq!(body["status"], "acquired", "{body}");
    body["lock"].clone()
}

async fn renew(c: &Client, name: &str, owner: &str, ttl: i64) -> TestResponse {
    c.post(
        &format!("/api/v1/locks/{name}/renew"),
        &json!({"owner_id": owner, "ttl_seconds": ttl}),
    )
    .await
}

async fn release(c: &Client, name: &str, body: Value) -> TestResponse {
    c.post(&format!("/api/v1/locks/{name}/release"), &body)
        .await
}

async fn get_lock(c: &Client, name: &str) -> TestResponse {
    c.get(&format!("/api/v1/locks/{name}")).await
}

async fn listed(c: &Client, query: &str) -> Vec<String> {
    let body = c.get(&format!("/api/v1/locks{query}")).await.expect(200);
    assert_eq!(keys(&body), ["count", "locks"]);
    let locks = body["locks"].as_array().unwrap();
    assert_eq!(body["count"], locks.len());
    locks
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn completion(c: &Client, task: &str) -> Value {
    c.get(&format!("/api/v1/locks/tasks/{task}/completion-status"))
        .await
        .expect(200)
}

fn micros(v: &Value) -> i64 {
    assert_ts(v);
    parse_rfc3339_micros(v.as_str().unwrap()).unwrap()
}

/// Polls `check` every 50 ms until it holds; fails after 10 s (leases here are 1 s).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the lock has expired by the server's clock (it leaves the default list).
async fn until_expired(c: &Client, name: &str) {
    eventually(&format!("{name} expired"), || async {
        !listed(c, "").await.contains(&name.to_owned())
    })
    .await;
}

fn held_by_other() -> Value {
    json!({"detail": {"status": "held_by_other", "error_message": "Lock is held by another owner"}})
}

fn not_owned() -> Value {
    json!({"detail": "Lock not found or not owned by caller"})
}

#[tokio::test]
async fn acquire_answers_the_exact_body_and_get_lock_returns_it() {
    let e = start().await;
    let (name, me) = (hash("acquire"), owner());
    let body = acquire(&e.sdk, &name, &me, 60).await.expect(200);
    assert_eq!(keys(&body), ["acquired", "error_message", "lock", "status"]);
    assert_eq!(body["status"], "acquired");
    assert_eq!(body["acquired"], true);
    assert_eq!(body["error_message"], Value::Null);
    let lock = &body["lock"];
    assert_eq!(
        keys(lock),
        [
            "acquired_at",
            "environment_id",
            "expires_at",
            "name",
            "owner_id",
            "version"
        ]
    );
    assert_eq!(lock["name"], json!(name));
    assert_eq!(lock["owner_id"], json!(me));
    assert_eq!(lock["environment_id"], json!(e.admin.env));
    assert_eq!(lock["version"], 0);
    assert_eq!(
        micros(&lock["expires_at"]) - micros(&lock["acquired_at"]),
        60_000_000
    );
    assert_eq!(&get_lock(&e.sdk, &name).await.expect(200), lock);
    assert_eq!(listed(&e.sdk, "").await, vec![name.clone()]);

    // ttl_seconds defaults to 60 and check_task_completion to true.
    let other = hash("defaults");
    let body = e
        .sdk
        .post(
            &format!("/api/v1/locks/{other}/acquire"),
            &json!({"owner_id": me}),
        )
        .await
        .expect(200);
    let l = &body["lock"];
    assert_eq!(
        micros(&l["expires_at"]) - micros(&l["acquired_at"]),
        60_000_000
    );

    let missing = get_lock(&e.sdk, &hash("never")).await.expect(404);
    assert_eq!(missing, json!({"detail": "Lock not found"}));
}

#[tokio::test]
async fn reentrant_acquire_bumps_the_version_and_replaces_the_lease() {
    let e = start().await;
    let (name, me) = (hash("reentrant"), owner());
    let first = acquired(&e.sdk, &name, &me, 60).await;
    let second = acquired(&e.sdk, &name, &me, 120).await;
    assert_eq!(second["version"], 1);
    assert_eq!(second["owner_id"], json!(me));
    assert!(micros(&second["acquired_at"]) > micros(&first["acquired_at"]));
    assert_eq!(
        micros(&second["expires_at"]) - micros(&second["acquired_at"]),
        120_000_000
    );
    // Owner ids compare as UUIDs: an upper-case spelling is the same owner, echoed in
    // canonical form.
    let third = acquired(&e.sdk, &name, &me.to_uppercase(), 60).await;
    assert_eq!(third["version"], 2);
    assert_eq!(third["owner_id"], json!(me));
    renew(&e.sdk, &name, &me.to_uppercase(), 60)
        .await
        .expect(200);
    release(&e.sdk, &name, json!({"owner_id": me.to_uppercase()}))
        .await
        .expect(200);
}

#[tokio::test]
async fn a_live_lock_of_another_owner_is_423_and_stays_unchanged() {
    let e = start().await;
    let (name, a, b) = (hash("held"), owner(), owner());
    let lock = acquired(&e.sdk, &name, &a, 60).await;
    let refused = acquire(&e.sdk, &name, &b, 60).await;
    assert_eq!(refused.expect(423), held_by_other());
    assert_eq!(get_lock(&e.sdk, &name).await.expect(200), lock);
}

#[tokio::test]
async fn fifty_concurrent_owners_racing_for_one_lock_see_exactly_one_winner() {
    let e = start().await;
    let name = hash("race");
    let owners: Vec<String> = (0..50).map(|_| owner()).collect();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(owners.len()));
    let mut racers = Vec::new();
    for o in owners.clone() {
        let (c, name, barrier) = (e.sdk.clone(), name.clone(), barrier.clone());
        racers.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = acquire(&c, &name, &o, 60).await;
            (o, r.status.as_u16(), r.json())
        }));
    }
    let mut winners = Vec::new();
    for r in racers {
        let (o, status, body) = r.await.unwrap();
        match status {
            200 => {
                assert_eq!(body["lock"]["version"], 0, "{body}");
                winners.push(o);
            }
            423 => assert_eq!(body, held_by_other()),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner");
    let lock = get_lock(&e.sdk, &name).await.expect(200);
    assert_eq!(lock["owner_id"], json!(winners[0]));
    assert_eq!(lock["version"], 0);
}

#[tokio::test]
async fn an_expired_lock_is_hidden_from_the_list_and_taken_over() {
    let e = start().await;
    let (name, a, b) = (hash("expiry"), owner(), owner());
    let lock = acquired(&e.sdk, &name, &a, 1).await;
    assert_eq!(
        micros(&lock["expires_at"]) - micros(&lock["acquired_at"]),
        1_000_000
    );
    assert_eq!(
        acquire(&e.sdk, &name, &b, 60).await.expect(423),
        held_by_other()
    );
    until_expired(&e.sdk, &name).await;
    // Expired: listed only on request, still readable by name.
    assert_eq!(
        listed(&e.sdk, "?include_expired=true").await,
        vec![name.clone()]
    );
    assert_eq!(get_lock(&e.sdk, &name).await.expect(200), lock);

    let taken = acquired(&e.sdk, &name, &b, 60).await;
    assert_eq!(taken["owner_id"], json!(b));
    assert_eq!(taken["version"], 1, "takeover counts on, not reset");
    assert!(micros(&taken["acquired_at"]) >= micros(&lock["expires_at"]));
    assert_eq!(listed(&e.sdk, "").await, vec![name.clone()]);
    // The old owner lost it: renew and release are refused, and it cannot take it back.
    assert_eq!(renew(&e.sdk, &name, &a, 60).await.expect(409), not_owned());
    let r = release(&e.sdk, &name, json!({"owner_id": a})).await;
    assert_eq!(r.expect(409), not_owned());
    assert_eq!(
        acquire(&e.sdk, &name, &a, 60).await.expect(423),
        held_by_other()
    );
}

#[tokio::test]
async fn renew_extends_an_expired_but_untaken_lock() {
    let e = start().await;
    let (name, a, b) = (hash("renew-expired"), owner(), owner());
    let lock = acquired(&e.sdk, &name, &a, 1).await;
    until_expired(&e.sdk, &name).await;
    let body = renew(&e.sdk, &name, &a, 60).await.expect(200);
    assert_eq!(body, json!({"renewed": true}));
    let renewed = get_lock(&e.sdk, &name).await.expect(200);
    assert_eq!(renewed["version"], 1);
    assert_eq!(renewed["owner_id"], json!(a));
    assert_eq!(
        renewed["acquired_at"], lock["acquired_at"],
        "renew keeps acquired_at"
    );
    // Fixed-width timestamps compare as strings (§1.4).
    assert!(renewed["expires_at"].as_str() > lock["expires_at"].as_str());
    assert!(micros(&renewed["expires_at"]) - micros(&lock["expires_at"]) > 59_000_000);
    assert_eq!(listed(&e.sdk, "").await, vec![name.clone()]);
    assert_eq!(
        acquire(&e.sdk, &name, &b, 60).await.expect(423),
        held_by_other()
    );
}

#[tokio::test]
async fn renew_and_release_answer_409_unless_the_caller_owns_the_lock() {
    let e = start().await;
    let (name, a, b) = (hash("not-owner"), owner(), owner());
    assert_eq!(renew(&e.sdk, &name, &a, 60).await.expect(409), not_owned());
    let r = release(&e.sdk, &name, json!({"owner_id": a})).await;
    assert_eq!(r.expect(409), not_owned());

    let lock = acquired(&e.sdk, &name, &a, 60).await;
    assert_eq!(renew(&e.sdk, &name, &b, 60).await.expect(409), not_owned());
    let r = release(&e.sdk, &name, json!({"owner_id": b})).await;
    assert_eq!(r.expect(409), not_owned());
    assert_eq!(get_lock(&e.sdk, &name).await.expect(200), lock);

    let r = release(&e.sdk, &name, json!({"owner_id": a})).await;
    assert_eq!(r.expect(200), json!({"released": true}));
    assert_eq!(
        get_lock(&e.sdk, &name).await.expect(404),
        json!({"detail": "Lock not found"})
    );
    assert!(listed(&e.sdk, "?include_expired=true").await.is_empty());
    let again = release(&e.sdk, &name, json!({"owner_id": a})).await;
    assert_eq!(again.expect(409), not_owned());
    // Released means free: anyone acquires it afresh at version 0.
    assert_eq!(acquired(&e.sdk, &name, &b, 60).await["version"], 0);
}

async fn started_task(c: &Client, tag: &str) -> (String, String) {
    let build = new_build_id(c).await;
    let t = hash(tag);
    register(c, &build, &reg(&t, "Locked", &[])).await;
    task_event(c, &build, &t, "start").await;
    (build, t)
}

async fn task_status(c: &Client, build: &str, t: &str) -> Value {
    build_tasks(c, build).await[t]["status"].clone()
}

async fn completed_events(c: &Client, t: &str) -> usize {
    let events = c
        .get(&format!("/api/v1/tasks/{t}/events"))
        .await
        .expect(200);
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "task_completed")
        .count()
}

#[tokio::test]
async fn release_with_completion_checks_ownership_before_recording_anything() {
    let e = start().await;
    let (build, t) = started_task(&e.sdk, "release-completion").await;
    let (a, b) = (owner(), owner());
    acquired(&e.sdk, &t, &a, 60).await;

    // Another owner's completing release is refused and records nothing (D19).
    let body = json!({"owner_id": b, "task_completed": true, "build_id": build});
    assert_eq!(release(&e.sdk, &t, body).await.expect(409), not_owned());
    assert_eq!(task_status(&e.sdk, &build, &t).await, "running");
    assert_eq!(completed_events(&e.sdk, &t).await, 0);
    assert_eq!(
        completion(&e.sdk, &t).await,
        json!({"task_id": t, "is_completed": false})
    );

    // An unknown build is not found, and the lock stays held.
    let body = json!({"owner_id": a, "task_completed": true, "build_id": Uuid::now_v7()});
    assert_eq!(
        release(&e.sdk, &t, body).await.expect(404),
        json!({"detail": "Build not found"})
    );
    assert_eq!(get_lock(&e.sdk, &t).await.expect(200)["owner_id"], json!(a));
    assert_eq!(completed_events(&e.sdk, &t).await, 0);

    // The owner's release records task_completed in that build and frees the lock.
    let body = json!({"owner_id": a, "task_completed": true, "build_id": build});
    assert_eq!(
        release(&e.sdk, &t, body).await.expect(200),
        json!({"released": true})
    );
    assert_eq!(task_status(&e.sdk, &build, &t).await, "completed");
    assert_eq!(completed_events(&e.sdk, &t).await, 1);
    get_lock(&e.sdk, &t).await.expect(404);
    assert_eq!(
        completion(&e.sdk, &t).await,
        json!({"task_id": t, "is_completed": true})
    );
    let body = acquire(&e.sdk, &t, &b, 60).await.expect(200);
    assert_eq!(
        body,
        json!({"status": "already_completed", "acquired": false, "lock": null, "error_message": null})
    );
}

#[tokio::test]
async fn the_sdk_release_without_build_marks_the_lock_name_completed() {
    let e = start().await;
    // The SDK's form (docs/sdk-0.1.0-wire.md §3.4): task_completed, never build_id; here
    // for a started task whose /complete has not arrived yet.
    let (build, t) = started_task(&e.sdk, "sdk-release").await;
    let (a, b) = (owner(), owner());
    acquired(&e.sdk, &t, &a, 60).await;
    let body = json!({"owner_id": a, "task_completed": true});
    release(&e.sdk, &t, body).await.expect(200);
    // No event is invented: the task's own status waits for /complete…
    assert_eq!(task_status(&e.sdk, &build, &t).await, "running");
    assert_eq!(completed_events(&e.sdk, &t).await, 0);
    // …but no second build can start it in between.
    assert_eq!(
        completion(&e.sdk, &t).await,
        json!({"task_id": t, "is_completed": true})
    );
    let body = acquire(&e.sdk, &t, &b, 60).await.expect(200);
    assert_eq!(body["status"], "already_completed");
    // Without the completion check the lock itself is free.
    let body = e
        .sdk
        .post(
            &format!("/api/v1/locks/{t}/acquire"),
            &json!({"owner_id": b, "check_task_completion": false}),
        )
        .await
        .expect(200);
    assert_eq!(body["lock"]["owner_id"], json!(b));

    // A plain release (task_completed false) marks nothing.
    let plain = hash("plain-release");
    acquired(&e.sdk, &plain, &a, 60).await;
    release(
        &e.sdk,
        &plain,
        json!({"owner_id": a, "task_completed": false}),
    )
    .await
    .expect(200);
    assert_eq!(completion(&e.sdk, &plain).await["is_completed"], false);
    assert_eq!(
        acquire(&e.sdk, &plain, &b, 60).await.expect(200)["status"],
        "acquired"
    );
}

#[tokio::test]
async fn completion_status_and_already_completed_follow_task_completion() {
    let e = start().await;
    let unknown = hash("unknown-task");
    assert_eq!(
        completion(&e.sdk, &unknown).await,
        json!({"task_id": unknown, "is_completed": false})
    );
    let (build, t) = started_task(&e.sdk, "completed-task").await;
    let a = owner();
    acquired(&e.sdk, &t, &a, 60).await;
    assert_eq!(completion(&e.sdk, &t).await["is_completed"], false);
    task_event(&e.sdk, &build, &t, "complete").await;
    assert_eq!(
        completion(&e.sdk, &t).await,
        json!({"task_id": t, "is_completed": true})
    );
    // The completion check ignores the lock's state: held by another owner, it still
    // answers already_completed, and the lock is not touched.
    let lock = get_lock(&e.sdk, &t).await.expect(200);
    let body = acquire(&e.sdk, &t, &owner(), 60).await.expect(200);
    assert_eq!(
        body,
        json!({"status": "already_completed", "acquired": false, "lock": null, "error_message": null})
    );
    assert_eq!(get_lock(&e.sdk, &t).await.expect(200), lock);
    // A task completed in one build is complete for a later build's acquire too.
    let later = new_build_id(&e.sdk).await;
    register(&e.sdk, &later, &reg(&t, "Locked", &[])).await;
    assert_eq!(
        acquire(&e.sdk, &t, &owner(), 60).await.expect(200)["status"],
        "already_completed"
    );
}

fn limit_reached(n: u32) -> Value {
    json!({"detail": {
        "status": "concurrency_limit_reached",
        "error_message": format!("Environment concurrency limit reached ({n})"),
    }})
}

#[tokio::test]
async fn the_environment_limit_counts_live_locks_and_answers_429() {
    let e = start().await;
    e.set_limit(json!(2)).await;
    let (a, b, c) = (owner(), owner(), owner());
    let (x, y, z) = (hash("limit-x"), hash("limit-y"), hash("limit-z"));
    acquired(&e.sdk, &x, &a, 60).await;
    acquired(&e.sdk, &y, &b, 60).await;
    assert_eq!(
        acquire(&e.sdk, &z, &c, 60).await.expect(429),
        limit_reached(2)
    );
    // The same owner re-acquiring its own lock is exempt.
    assert_eq!(acquired(&e.sdk, &x, &a, 60).await["version"], 1);
    // A lock held by someone else answers 429 before 423 while the limit is reached
    // (upstream order).
    assert_eq!(
        acquire(&e.sdk, &x, &c, 60).await.expect(429),
        limit_reached(2)
    );
    // A slot freed by a release is usable at once.
    release(&e.sdk, &y, json!({"owner_id": b}))
        .await
        .expect(200);
    acquired(&e.sdk, &z, &c, 60).await;
    assert_eq!(
        acquire(&e.sdk, &y, &b, 60).await.expect(429),
        limit_reached(2)
    );
    // Now under the limit everyone else gets the plain 423.
    e.set_limit(json!(3)).await;
    assert_eq!(
        acquire(&e.sdk, &x, &c, 60).await.expect(423),
        held_by_other()
    );
    // No limit at all.
    e.set_limit(Value::Null).await;
    for i in 0..5 {
        acquired(&e.sdk, &hash(&format!("unlimited-{i}")), &owner(), 60).await;
    }
}

#[tokio::test]
async fn an_expired_lock_frees_its_slot_under_the_limit() {
    let e = start().await;
    e.set_limit(json!(1)).await;
    let (a, b) = (owner(), owner());
    let (short, other) = (hash("slot-short"), hash("slot-other"));
    acquired(&e.sdk, &short, &a, 1).await;
    assert_eq!(
        acquire(&e.sdk, &other, &b, 60).await.expect(429),
        limit_reached(1)
    );
    // Once the 1 s lease has run out, the environment has no live lock.
    eventually("the expired lock frees its slot", || async {
        acquire(&e.sdk, &other, &b, 60).await.status == 200
    })
    .await;
    // Its old owner gets no slot for a new lock while b holds the only one…
    assert_eq!(
        acquire(&e.sdk, &hash("slot-third"), &a, 60)
            .await
            .expect(429),
        limit_reached(1)
    );
    // …but may still renew its expired lock (renewal is not limited), which then
    // counts as live again.
    renew(&e.sdk, &short, &a, 60).await.expect(200);
    assert_eq!(listed(&e.sdk, "").await.len(), 2);
}

#[tokio::test]
async fn bad_bodies_and_parameters_are_422() {
    let e = start().await;
    let name = hash("validation");
    let path = format!("/api/v1/locks/{name}/acquire");
    let a = owner();
    for (ttl, kind) in [
        (json!(0), "greater_than_equal"),
        (json!(-5), "greater_than_equal"),
        (json!(86_401), "less_than_equal"),
        (json!(1u64 << 63), "less_than_equal"),
        (json!(1.5), "int_from_float"),
        (json!("soon"), "int_parsing"),
        (json!([60]), "int_type"),
    ] {
        let r = e
            .sdk
            .post(&path, &json!({"owner_id": a, "ttl_seconds": ttl}))
            .await;
        assert_422(&r.expect(422), kind, json!(["body", "ttl_seconds"]));
        let r = e
            .sdk
            .post(
                &format!("/api/v1/locks/{name}/renew"),
                &json!({"owner_id": a, "ttl_seconds": ttl}),
            )
            .await;
        assert_422(&r.expect(422), kind, json!(["body", "ttl_seconds"]));
    }
    // Nothing was taken by the refused requests.
    get_lock(&e.sdk, &name).await.expect(404);
    // The bounds themselves are fine (an integral float and a numeric string too).
    for ttl in [json!(1), json!(86_400), json!(30.0), json!("45")] {
        let r = e
            .sdk
            .post(&path, &json!({"owner_id": a, "ttl_seconds": ttl}))
            .await;
        assert_eq!(r.expect(200)["status"], "acquired");
    }

    let r = e.sdk.post(&path, &json!({"ttl_seconds": 60})).await;
    assert_422(&r.expect(422), "missing", json!(["body", "owner_id"]));
    let r = e.sdk.post(&path, &json!({"owner_id": "not-a-uuid"})).await;
    assert_422(&r.expect(422), "uuid_parsing", json!(["body", "owner_id"]));
    let r = e.sdk.post(&path, &json!({"owner_id": 7})).await;
    assert_422(&r.expect(422), "uuid_type", json!(["body", "owner_id"]));
    let r = e
        .sdk
        .post(
            &path,
            &json!({"owner_id": a, "check_task_completion": "maybe"}),
        )
        .await;
    assert_422(
        &r.expect(422),
        "bool_parsing",
        json!(["body", "check_task_completion"]),
    );
    // Every bad field of one request in one 422.
    let r = e
        .sdk
        .post(&path, &json!({"owner_id": "x", "ttl_seconds": 0}))
        .await
        .expect(422);
    assert_eq!(r["detail"].as_array().unwrap().len(), 2);
    let r = e.sdk.post(&path, &json!([1, 2])).await;
    assert_422(&r.expect(422), "model_attributes_type", json!(["body"]));
    for action in ["acquire", "renew", "release"] {
        let r = crate::tasks::post_empty(&e.sdk, &format!("/api/v1/locks/{name}/{action}")).await;
        assert_422(&r.expect(422), "missing", json!(["body"]));
    }
    let r = release(&e.sdk, &name, json!({"owner_id": a, "build_id": "nope"})).await;
    assert_422(&r.expect(422), "uuid_parsing", json!(["body", "build_id"]));
    let r = release(
        &e.sdk,
        &name,
        json!({"owner_id": a, "task_completed": [true]}),
    )
    .await;
    assert_422(
        &r.expect(422),
        "bool_type",
        json!(["body", "task_completed"]),
    );
    let r = e.sdk.get("/api/v1/locks?include_expired=maybe").await;
    assert_422(
        &r.expect(422),
        "bool_parsing",
        json!(["query", "include_expired"]),
    );
    let long = "n".repeat(256);
    let r = acquire(&e.sdk, &long, &a, 60).await;
    assert_422(
        &r.expect(422),
        "string_too_long",
        json!(["path", "lock_name"]),
    );
    acquired(&e.sdk, &"n".repeat(255), &a, 60).await;
    // Wrong method on a lock route.
    let r = e.sdk.get(&format!("/api/v1/locks/{name}/acquire")).await;
    assert_eq!(r.expect(405), json!({"detail": "Method Not Allowed"}));
    // No credential.
    let r = acquire(&e.server.client(), &name, &a, 60).await;
    r.expect(401);
}

#[tokio::test]
async fn the_list_is_newest_acquisition_first() {
    let e = start().await;
    let a = owner();
    let names: Vec<String> = (0..3).map(|i| hash(&format!("order-{i}"))).collect();
    for n in &names {
        acquired(&e.sdk, n, &a, 60).await;
    }
    let expect: Vec<String> = names.iter().rev().cloned().collect();
    assert_eq!(listed(&e.sdk, "").await, expect);
    // Re-acquiring resets acquired_at, so the lock moves to the front.
    acquired(&e.sdk, &names[0], &a, 60).await;
    assert_eq!(
        listed(&e.sdk, "").await,
        [names[0].clone(), names[2].clone(), names[1].clone()]
    );
    let body = e.sdk.get("/api/v1/locks").await.expect(200);
    for l in body["locks"].as_array().unwrap() {
        assert_eq!(l["owner_id"], json!(a));
        assert_eq!(l["environment_id"], json!(e.admin.env));
    }
}

#[tokio::test]
async fn a_lock_named_tasks_is_reachable_beside_completion_status() {
    let e = start().await;
    let a = owner();
    let lock = acquired(&e.sdk, "tasks", &a, 60).await;
    assert_eq!(get_lock(&e.sdk, "tasks").await.expect(200), lock);
    assert_eq!(
        completion(&e.sdk, "tasks").await,
        json!({"task_id": "tasks", "is_completed": false})
    );
    renew(&e.sdk, "tasks", &a, 60).await.expect(200);
    release(&e.sdk, "tasks", json!({"owner_id": a}))
        .await
        .expect(200);
}

#[tokio::test]
async fn locks_of_another_environment_look_absent_d9() {
    let server = env_support::start_with_registration().await;
    let (admin, key) = env_support::admin(&server).await;
    let mine = server.client().with_api_key(&key);
    let bob = env_support::new_user(&server, "bob@example.com").await;
    // Bob acts through the bearer path: internal token plus environment_id.
    let q = format!("environment_id={}", bob.env);
    let theirs = bob.client.clone();

    let (name, a, b) = (hash("shared-name"), owner(), owner());
    let my_lock = acquired(&mine, &name, &a, 60).await;
    let r = theirs.get(&format!("/api/v1/locks/{name}?{q}")).await;
    assert_eq!(r.expect(404), json!({"detail": "Lock not found"}));
    let body = theirs
        .get(&format!("/api/v1/locks?include_expired=true&{q}"))
        .await
        .expect(200);
    assert_eq!(body, json!({"locks": [], "count": 0}));
    // Knowing the owner id does not help from another environment.
    let r = theirs
        .post(
            &format!("/api/v1/locks/{name}/renew?{q}"),
            &json!({"owner_id": a}),
        )
        .await;
    assert_eq!(r.expect(409), not_owned());
    let r = theirs
        .post(
            &format!("/api/v1/locks/{name}/release?{q}"),
            &json!({"owner_id": a}),
        )
        .await;
    assert_eq!(r.expect(409), not_owned());
    // The same name is an independent lock there (D19), not a 423.
    let body = theirs
        .post(
            &format!("/api/v1/locks/{name}/acquire?{q}"),
            &json!({"owner_id": b}),
        )
        .await
        .expect(200);
    assert_eq!(body["lock"]["environment_id"], json!(bob.env));
    assert_eq!(body["lock"]["owner_id"], json!(b));
    assert_eq!(body["lock"]["version"], 0);
    assert_eq!(get_lock(&mine, &name).await.expect(200), my_lock);

    // The limit is per environment: mine at 1 does not hold Bob back.
    let r = admin
        .client
        .patch(&admin.env_path(""), &json!({"max_concurrent_locks": 1}))
        .await;
    r.expect(200);
    assert_eq!(
        acquire(&mine, &hash("mine-2"), &a, 60).await.expect(429),
        limit_reached(1)
    );
    for i in 0..3 {
        theirs
            .post(
                &format!("/api/v1/locks/{}/acquire?{q}", hash(&format!("bob-{i}"))),
                &json!({"owner_id": b}),
            )
            .await
            .expect(200);
    }

    // Completion is per environment too.
    let (build, t) = started_task(&mine, "completed-in-mine").await;
    task_event(&mine, &build, &t, "complete").await;
    assert_eq!(completion(&mine, &t).await["is_completed"], true);
    let r = theirs
        .get(&format!("/api/v1/locks/tasks/{t}/completion-status?{q}"))
        .await
        .expect(200);
    assert_eq!(r, json!({"task_id": t, "is_completed": false}));
    // A marker left by a completing release stays in its environment as well.
    let marked = hash("marked-in-bob");
    theirs
        .post(
            &format!("/api/v1/locks/{marked}/acquire?{q}"),
            &json!({"owner_id": b}),
        )
        .await
        .expect(200);
    theirs
        .post(
            &format!("/api/v1/locks/{marked}/release?{q}"),
            &json!({"owner_id": b, "task_completed": true}),
        )
        .await
        .expect(200);
    assert_eq!(completion(&mine, &marked).await["is_completed"], false);
}

/// Sends one raw HTTP/1.1 request that asks for keep-alive and reads until the server
/// closes the connection; `None` when it keeps the connection open.
async fn answer_then_close(server: &TestServer, request: String) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut out)).await;
    read.ok().map(|r| {
        r.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    })
}

#[tokio::test]
async fn lock_answers_to_httpx_close_the_connection_and_others_keep_it() {
    let e = start().await;
    let (key, host) = (&e.key, e.server.addr);
    const HTTPX: &str = "python-httpx/0.28.1";
    let body = format!(r#"{{"owner_id":"{}"}}"#, owner());
    let acquire = |name: &str, agent: &str, body: &str| {
        format!(
            "POST /api/v1/locks/{name}/acquire HTTP/1.1\r\nHost: {host}\r\n\
             Connection: keep-alive\r\nUser-Agent: {agent}\r\nX-API-Key: {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // The SDK's lock client (httpx) gets its connection closed after each answer…
    let first = answer_then_close(&e.server, acquire("conn", HTTPX, &body)).await;
    let first = first.expect("the acquire answer to httpx closes the connection");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.to_ascii_lowercase().contains("connection: close"));
    // …refusals included (the SDK retries after a 423)…
    let other = format!(r#"{{"owner_id":"{}"}}"#, owner());
    let refused = answer_then_close(&e.server, acquire("conn", HTTPX, &other)).await;
    let refused = refused.expect("the 423 to httpx closes the connection");
    assert!(refused.starts_with("HTTP/1.1 423"), "{refused}");
    let status = format!(
        "GET /api/v1/locks/tasks/x/completion-status HTTP/1.1\r\nHost: {host}\r\n\
         User-Agent: {HTTPX}\r\nX-API-Key: {key}\r\n\r\n"
    );
    assert!(answer_then_close(&e.server, status).await.is_some());
    // …while other clients and other routes keep their connections.
    let kept = answer_then_close(&e.server, acquire("kept", "curl/8.5.0", &body)).await;
    assert!(
        kept.is_none(),
        "a non-httpx lock client keeps its connection"
    );
    let health = format!("GET /health HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {HTTPX}\r\n\r\n");
    assert!(answer_then_close(&e.server, health).await.is_none());
    assert_eq!(
        get_lock(&e.sdk, "kept").await.expect(200)["owner_id"]
            .as_str()
            .map(str::len),
        Some(36)
    );
    assert_eq!(e.sdk.get("/api/v1/locks").await.header("connection"), None);
}
