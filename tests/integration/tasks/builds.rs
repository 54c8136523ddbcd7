//! Builds: create, list, get, the four transitions and D6's PATCH (v1-tasks §4.1, §3.2).

use http::Method;
use serde_json::{json, Value};

use super::*;

const BUILD_KEYS: [&str; 12] = [
    "id",
    "environment_id",
    "user_id",
    "name",
    "description",
    "commit_hash",
    "root_task_ids",
    "created_at",
    "status",
    "started_at",
    "completed_at",
    "status_triggered_by_user",
];

fn build_keys() -> Vec<String> {
    sorted(&BUILD_KEYS)
}

/// `adjective-noun-NN` from the fixed word lists (§2.4).
fn is_build_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() == 3
        && stardag_server::domain::slug::BUILD_NAME_ADJECTIVES.contains(&parts[0])
        && stardag_server::domain::slug::BUILD_NAME_NOUNS.contains(&parts[1])
        && parts[2]
            .parse::<u32>()
            .is_ok_and(|n| (10..=99).contains(&n))
}

#[tokio::test]
async fn create_build_answers_a_running_build_with_the_exact_shape() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = c
        .post(
            "/api/v1/builds",
            &json!({
                "commit_hash": "abc123",
                "root_task_ids": ["t1", "t2"],
                "description": "nightly",
                "environment_id": "ignored",
                "user_id": "ignored-too",
                "user": {"unknown": "fields are ignored"},
            }),
        )
        .await
        .expect(201);
    assert_eq!(keys(&b), build_keys());
    assert_uuid(&b["id"]);
    assert_eq!(
        b["environment_id"],
        json!(f.env_id()),
        "environment from auth"
    );
    assert_eq!(b["user_id"], Value::Null, "API keys have no user");
    assert!(is_build_name(b["name"].as_str().unwrap()), "{}", b["name"]);
    assert_eq!(b["description"], "nightly");
    assert_eq!(b["commit_hash"], "abc123");
    assert_eq!(b["root_task_ids"], json!(["t1", "t2"]));
    assert_ts(&b["created_at"]);
    assert_eq!(b["status"], "running");
    assert_eq!(
        b["started_at"], b["created_at"],
        "build_started is written with the row"
    );
    assert_eq!(b["completed_at"], Value::Null);
    assert_eq!(b["status_triggered_by_user"], Value::Null);

    let minimal = c.post("/api/v1/builds", &json!({})).await.expect(201);
    assert_eq!(minimal["status"], "running");
    assert_eq!(minimal["root_task_ids"], json!([]));
    assert_eq!(minimal["commit_hash"], Value::Null);
    assert_eq!(minimal["description"], Value::Null);

    // Long commit hashes travel verbatim (the SDK sends $COMMIT_HASH as is).
    let long = "c".repeat(300);
    let b = c
        .post("/api/v1/builds", &json!({"commit_hash": long}))
        .await
        .expect(201);
    assert_eq!(b["commit_hash"], json!(long));
}

#[tokio::test]
async fn create_build_validation_and_auth_errors() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let missing = c
        .send(Method::POST, "/api/v1/builds", &[], Default::default())
        .await
        .expect(422);
    assert_eq!(
        missing,
        json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]})
    );
    let broken = c
        .send(
            Method::POST,
            "/api/v1/builds",
            &[("content-type", "application/json")],
            "{not json".into(),
        )
        .await
        .expect(422);
    assert_eq!(broken["detail"][0]["type"], "json_invalid");
    assert_eq!(broken["detail"][0]["loc"][0], "body");
    let wrong = c
        .post("/api/v1/builds", &json!({"root_task_ids": "t1"}))
        .await
        .expect(422);
    assert_eq!(wrong["detail"][0]["loc"], json!(["body", "root_task_ids"]));

    let anon = f.anonymous().post("/api/v1/builds", &json!({})).await;
    assert_eq!(
        anon.expect(401),
        json!({"detail": "Authentication required. Provide X-API-Key header or Bearer token."})
    );
    assert_eq!(
        anon.header("www-authenticate"),
        Some("Bearer, ApiKey realm=\"sdk\"")
    );
    let bad_key = f
        .anonymous()
        .with_api_key("sk_000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .post("/api/v1/builds", &json!({}))
        .await
        .expect(401);
    assert_eq!(bad_key, json!({"detail": "Invalid API key"}));
}

#[tokio::test]
async fn get_build_and_its_errors() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = create_build(&c).await;
    let id = b["id"].as_str().unwrap();
    assert_eq!(c.get(&format!("/api/v1/builds/{id}")).await.expect(200), b);
    // A trailing slash is served like the bare path (D7), never redirected.
    assert_eq!(c.get(&format!("/api/v1/builds/{id}/")).await.expect(200), b);

    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        c.get(&format!("/api/v1/builds/{unknown}"))
            .await
            .expect(404),
        json!({"detail": "Build not found"})
    );
    let bad = c.get("/api/v1/builds/not-a-uuid").await.expect(422);
    assert_eq!(
        bad,
        json!({"detail": [{
            "type": "uuid_parsing",
            "loc": ["path", "build_id"],
            "msg": "Input should be a valid UUID",
            "input": "not-a-uuid",
        }]})
    );
    // Authentication comes before path validation.
    assert_eq!(
        f.anonymous().get("/api/v1/builds/not-a-uuid").await.status,
        401
    );
}

#[tokio::test]
async fn list_builds_pages_newest_first() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let empty = c.get("/api/v1/builds").await.expect(200);
    assert_eq!(
        empty,
        json!({"builds": [], "total": 0, "page": 1, "page_size": 20})
    );
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(new_build_id(&c).await);
    }
    let page1 = c.get("/api/v1/builds?page_size=2").await.expect(200);
    assert_eq!(page1["total"], 3);
    assert_eq!(page1["page"], 1);
    assert_eq!(page1["page_size"], 2);
    let listed: Vec<&str> = page1["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[2].as_str(), ids[1].as_str()]);
    for b in page1["builds"].as_array().unwrap() {
        let one = c
            .get(&format!("/api/v1/builds/{}", b["id"].as_str().unwrap()))
            .await
            .expect(200);
        assert_eq!(&one, b, "list entries are BuildResponses");
    }
    let page2 = c.get("/api/v1/builds?page=2&page_size=2").await.expect(200);
    assert_eq!(page2["builds"][0]["id"], json!(ids[0]));
    assert_eq!(page2["builds"].as_array().unwrap().len(), 1);
    let beyond = c.get("/api/v1/builds?page=9&page_size=2").await.expect(200);
    assert_eq!(beyond["builds"], json!([]));
    assert_eq!(beyond["total"], 3);

    let zero = c.get("/api/v1/builds?page=0").await.expect(422);
    assert_eq!(
        zero["detail"],
        json!([{
            "type": "greater_than_equal",
            "loc": ["query", "page"],
            "msg": "Input should be greater than or equal to 1",
            "input": "0",
        }])
    );
    let big = c.get("/api/v1/builds?page_size=101").await.expect(422);
    assert_422(&big, "less_than_equal", json!(["query", "page_size"]));
    let nan = c.get("/api/v1/builds?page_size=abc").await.expect(422);
    assert_422(&nan, "int_parsing", json!(["query", "page_size"]));
    let both = c.get("/api/v1/builds?page=0&page_size=0").await.expect(422);
    assert_eq!(both["detail"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn transitions_append_events_and_the_latest_terminal_event_wins() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = create_build(&c).await;
    let id = b["id"].as_str().unwrap();
    let base = format!("/api/v1/builds/{id}");

    let done = post_empty(&c, &format!("{base}/complete"))
        .await
        .expect(200);
    assert_eq!(done["status"], "completed");
    assert_ts(&done["completed_at"]);
    assert_eq!(done["started_at"], b["started_at"]);
    assert_eq!(done["status_triggered_by_user"], Value::Null);
    assert!(done["completed_at"].as_str() > done["started_at"].as_str());

    // Any terminal status can replace another (the UI's override).
    let msg = "kaboom ü & = % /x?y#z";
    let failed = post_empty(
        &c,
        &format!("{base}/fail?error_message=kaboom+%C3%BC+%26+%3D+%25+%2Fx%3Fy%23z"),
    )
    .await
    .expect(200);
    assert_eq!(failed["status"], "failed");
    assert!(failed["completed_at"].as_str() > done["completed_at"].as_str());

    // triggered_by_user_id names a user by external id (§3.2): the admin is local.
    let session = login(
        &f.anonymous(),
        f.cred("STARDAG_ADMIN_EMAIL"),
        f.cred("STARDAG_ADMIN_PASSWORD"),
    )
    .await;
    let me = f
        .anonymous()
        .with_bearer(&session)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    let external = me["user"]["external_id"].as_str().unwrap().to_owned();
    let cancelled = post_empty(
        &c,
        &format!("{base}/cancel?triggered_by_user_id={external}"),
    )
    .await
    .expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        cancelled["status_triggered_by_user"],
        json!({"id": external, "email": f.cred("STARDAG_ADMIN_EMAIL"), "display_name": "Admin"})
    );
    assert_eq!(c.get(&base).await.expect(200), cancelled);
    // Unknown ids resolve to no user.
    let completed = post_empty(&c, &format!("{base}/complete?triggered_by_user_id=nobody"))
        .await
        .expect(200);
    assert_eq!(completed["status_triggered_by_user"], Value::Null);

    let early = post_empty(
        &c,
        &format!("{base}/exit-early?reason=All+2+remaining+tasks+are+running+in+other+builds"),
    )
    .await
    .expect(200);
    assert_eq!(early["status"], "exit_early");
    assert_eq!(early["status_triggered_by_user"], Value::Null);

    let events = c.get(&format!("{base}/events")).await.expect(200);
    assert_eq!(
        types(&events),
        vec![
            "build_started",
            "build_completed",
            "build_failed",
            "build_cancelled",
            "build_completed",
            "build_exit_early"
        ]
    );
    let ev = events.as_array().unwrap();
    assert_eq!(ev[0]["error_message"], Value::Null);
    assert_eq!(ev[0]["event_metadata"], Value::Null);
    assert_eq!(ev[1]["event_metadata"], Value::Null);
    assert_eq!(ev[2]["error_message"], json!(msg));
    assert_eq!(
        ev[3]["event_metadata"],
        json!({"triggered_by_user_id": external})
    );
    assert_eq!(
        ev[4]["event_metadata"],
        json!({"triggered_by_user_id": "nobody"})
    );
    assert_eq!(
        ev[5]["error_message"],
        "All 2 remaining tasks are running in other builds"
    );
    for e in ev {
        assert_eq!(e["build_id"], json!(id));
        assert_eq!(e["task_id"], Value::Null);
    }
}

#[tokio::test]
async fn transitions_ignore_bodies_and_check_the_build() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let id = new_build_id(&c).await;
    // A test upstream sends a body to /complete; even broken JSON is never read.
    let with_body = c
        .post(
            &format!("/api/v1/builds/{id}/complete"),
            &json!({"status": "completed"}),
        )
        .await
        .expect(200);
    assert_eq!(with_body["status"], "completed");
    let broken = c
        .send(
            Method::POST,
            &format!("/api/v1/builds/{id}/fail"),
            &[("content-type", "application/json")],
            "{oops".into(),
        )
        .await
        .expect(200);
    assert_eq!(broken["status"], "failed");

    let unknown = uuid::Uuid::now_v7();
    for action in ["complete", "fail", "cancel", "exit-early"] {
        let r = post_empty(&c, &format!("/api/v1/builds/{unknown}/{action}")).await;
        assert_eq!(
            r.expect(404),
            json!({"detail": "Build not found"}),
            "{action}"
        );
        let r = post_empty(&c, &format!("/api/v1/builds/nope/{action}")).await;
        assert_422(&r.expect(422), "uuid_parsing", json!(["path", "build_id"]));
    }
    let wrong_method = c.get(&format!("/api/v1/builds/{id}/complete")).await;
    assert_eq!(
        wrong_method.expect(405),
        json!({"detail": "Method Not Allowed"})
    );
}

#[tokio::test]
async fn patch_build_is_the_matching_transition_d6() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let id = new_build_id(&c).await;
    let path = format!("/api/v1/builds/{id}");
    let failed = c
        .patch(
            &path,
            &json!({"status": "failed", "error_message": "disk full"}),
        )
        .await
        .expect(200);
    assert_eq!(failed["status"], "failed");
    assert_ts(&failed["completed_at"]);
    let early = c
        .patch(
            &path,
            &json!({"status": "exit_early", "error_message": "all locked"}),
        )
        .await
        .expect(200);
    assert_eq!(early["status"], "exit_early");
    let done = c
        .patch(&path, &json!({"status": "completed"}))
        .await
        .expect(200);
    assert_eq!(done["status"], "completed");
    let cancelled = c
        .patch(
            &path,
            &json!({"status": "cancelled", "error_message": "ignored"}),
        )
        .await
        .expect(200);
    assert_eq!(cancelled["status"], "cancelled");

    let events = c.get(&format!("{path}/events")).await.expect(200);
    assert_eq!(
        types(&events),
        vec![
            "build_started",
            "build_failed",
            "build_exit_early",
            "build_completed",
            "build_cancelled"
        ]
    );
    let msgs: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["error_message"])
        .collect();
    assert_eq!(
        msgs,
        vec![
            &Value::Null,
            &json!("disk full"),
            &json!("all locked"),
            &Value::Null,
            &Value::Null
        ]
    );

    for status in ["running", "pending", "done", "COMPLETED"] {
        let r = c.patch(&path, &json!({"status": status})).await.expect(422);
        assert_eq!(
            r["detail"],
            json!([{
                "type": "enum",
                "loc": ["body", "status"],
                "msg": "Input should be 'completed', 'failed', 'cancelled' or 'exit_early'",
                "input": status,
            }])
        );
    }
    let missing = c.patch(&path, &json!({})).await.expect(422);
    assert_422(&missing, "missing", json!(["body", "status"]));
    let no_body = c
        .send(Method::PATCH, &path, &[], Default::default())
        .await
        .expect(422);
    assert_422(&no_body, "missing", json!(["body"]));
    let unknown = c
        .patch(
            &format!("/api/v1/builds/{}", uuid::Uuid::now_v7()),
            &json!({"status": "completed"}),
        )
        .await
        .expect(404);
    assert_eq!(unknown, json!({"detail": "Build not found"}));
    // Both the path and the body invalid: one 422 listing both.
    let both = c
        .patch("/api/v1/builds/xyz", &json!({"status": "running"}))
        .await
        .expect(422);
    assert_eq!(both["detail"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn failure_messages_travel_long_and_are_capped_at_64_kib_d21() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let id = new_build_id(&c).await;
    // ~3 KB of query-hostile text, form-encoded as the SDK sends it.
    let message = format!(
        "kaboom ü & = % +plus /path?x=1#frag {}",
        "long-".repeat(600)
    );
    let encoded: String = form_encode(&message);
    let r = post_empty(
        &c,
        &format!("/api/v1/builds/{id}/fail?error_message={encoded}"),
    )
    .await
    .expect(200);
    assert_eq!(r["status"], "failed");
    let events = c
        .get(&format!("/api/v1/builds/{id}/events"))
        .await
        .expect(200);
    assert_eq!(events[1]["error_message"], json!(message));

    // Bodies may carry more than 64 KiB: stored messages are cut at a char boundary.
    let huge = "é".repeat(40_000); // 80 000 bytes
    c.patch(
        &format!("/api/v1/builds/{id}"),
        &json!({"status": "failed", "error_message": huge}),
    )
    .await
    .expect(200);
    let events = c
        .get(&format!("/api/v1/builds/{id}/events"))
        .await
        .expect(200);
    let stored = events[2]["error_message"].as_str().unwrap();
    assert_eq!(stored.len(), 65_536);
    assert!(huge.starts_with(stored));
}

/// `application/x-www-form-urlencoded`, as httpx encodes query values.
pub fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
