//! The bearer-token path of every SDK route (v1-tasks §1.2 as changed by D9, D31):
//! internal token from local login + `/auth/exchange`, `?environment_id=` on each call;
//! and environment isolation (D9: foreign ids look absent).

use http::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::harness::Client;

/// A second local user, whose personal workspace and environment are foreign to the
/// admin's.
struct Other {
    token: String,
    env: String,
}

const OTHER_EMAIL: &str = "bob@example.com";
const OTHER_PASSWORD: &str = "bob-password-123";

/// Registers a second user and finds their environment. No route in this issue lists
/// environments, so the id is read from the database while the server is stopped.
async fn with_other_user() -> (Fixture, Other) {
    let f = Fixture::start_with(|c| c.auth.local_registration = true).await;
    let reg = f
        .anonymous()
        .post(
            "/api/v1/auth/register",
            &json!({"email": OTHER_EMAIL, "password": OTHER_PASSWORD}),
        )
        .await
        .expect(201);
    let session = reg["session_token"].as_str().unwrap().to_owned();
    let me = f
        .anonymous()
        .with_bearer(&session)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    let ws = me["workspaces"][0]["id"].as_str().unwrap().to_owned();
    let Fixture { server, creds } = f;
    let mut server = server;
    server.stop().await;
    let env = {
        let store = stardag_server::store::Store::open(
            &server.config.db_path(),
            &stardag_server::store::StoreOptions::from(&server.config.store),
        )
        .unwrap();
        let ws_id = Uuid::parse_str(&ws).unwrap();
        let envs: Vec<stardag_server::store::identity::EnvironmentRow> = store
            .read_blocking(|tx| {
                stardag_server::store::identity::rows_of(
                    tx,
                    stardag_server::store::identity::ENVIRONMENTS,
                    "environments",
                    ws_id,
                )
            })
            .unwrap();
        store.shutdown();
        envs[0].id.to_string()
    };
    let server = server.restart().await;
    let f = Fixture { server, creds };
    let session = login(&f.anonymous(), OTHER_EMAIL, OTHER_PASSWORD).await;
    let token = exchange(&f.anonymous(), &session, &ws).await;
    (f, Other { token, env })
}

struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
    ok: u16,
}

fn call(method: Method, path: String, body: Option<Value>, ok: u16) -> Call {
    Call {
        method,
        path,
        body,
        ok,
    }
}

async fn send(
    c: &Client,
    method: &Method,
    path: &str,
    body: Option<&Value>,
) -> crate::harness::TestResponse {
    match body {
        Some(b) => c.json(method.clone(), path, b).await,
        None => c.send(method.clone(), path, &[], Default::default()).await,
    }
}

fn with_env(path: &str, env: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}environment_id={env}")
}

#[tokio::test]
async fn every_sdk_route_works_with_a_bearer_token_and_environment_id() {
    let (f, other) = with_other_user().await;
    let env = f.env_id();
    let bc = f.anonymous().with_bearer(&f.admin_token().await);

    // The build every later call uses, created through the bearer path itself.
    let created = bc
        .post(
            &with_env("/api/v1/builds", &env),
            &json!({"root_task_ids": ["r"]}),
        )
        .await
        .expect(201);
    let b = created["id"].as_str().unwrap().to_owned();
    let me = f
        .anonymous()
        .with_bearer(
            &login(
                &f.anonymous(),
                f.cred("STARDAG_ADMIN_EMAIL"),
                f.cred("STARDAG_ADMIN_PASSWORD"),
            )
            .await,
        )
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    assert_eq!(
        created["user_id"], me["user"]["id"],
        "JWT builds record their user"
    );
    assert_eq!(created["environment_id"], json!(env));

    let (t, t2) = (hash("bearer-task"), hash("bearer-seed"));
    let mut seed = reg(&t2, "Seed", &[]);
    seed["build_id"] = json!(b);
    let bb = format!("/api/v1/builds/{b}");
    let bt = format!("{bb}/tasks/{t}");
    let calls = vec![
        call(Method::POST, "/api/v1/builds".into(), Some(json!({})), 201),
        call(Method::GET, "/api/v1/builds".into(), None, 200),
        call(Method::GET, bb.clone(), None, 200),
        call(
            Method::POST,
            format!("{bb}/tasks"),
            Some(reg(&t, "Bearer", &[])),
            201,
        ),
        call(Method::POST, "/api/v1/tasks".into(), Some(seed), 201),
        call(
            Method::POST,
            format!("{bt}/waiting-for-lock?lock_owner=x"),
            None,
            200,
        ),
        call(Method::POST, format!("{bt}/start"), None, 200),
        call(Method::POST, format!("{bt}/suspend"), None, 200),
        call(Method::POST, format!("{bt}/resume"), None, 200),
        call(
            Method::POST,
            format!("{bt}/fail?error_message=e"),
            None,
            200,
        ),
        call(Method::POST, format!("{bt}/cancel"), None, 200),
        call(Method::POST, format!("{bt}/complete"), None, 200),
        call(
            Method::POST,
            format!("{bt}/assets"),
            Some(json!([{"type": "json", "name": "m", "body": {"v": 1}}])),
            201,
        ),
        call(Method::GET, format!("{bb}/tasks"), None, 200),
        call(Method::GET, format!("{bb}/events"), None, 200),
        call(Method::GET, format!("{bb}/graph"), None, 200),
        call(Method::GET, "/api/v1/tasks".into(), None, 200),
        call(Method::GET, format!("/api/v1/tasks/{t}"), None, 200),
        call(Method::GET, format!("/api/v1/tasks/{t}/assets"), None, 200),
        call(Method::GET, format!("/api/v1/tasks/{t}/events"), None, 200),
        call(
            Method::GET,
            format!("/api/v1/tasks/{t}/metadata"),
            None,
            200,
        ),
        call(Method::POST, format!("{bb}/complete"), None, 200),
        call(
            Method::POST,
            format!("{bb}/fail?error_message=x"),
            None,
            200,
        ),
        call(
            Method::POST,
            format!("{bb}/cancel?triggered_by_user_id=u"),
            None,
            200,
        ),
        call(Method::POST, format!("{bb}/exit-early?reason=r"), None, 200),
        call(
            Method::PATCH,
            bb.clone(),
            Some(json!({"status": "completed"})),
            200,
        ),
    ];
    let random = Uuid::now_v7().to_string();
    for c in &calls {
        let body = c.body.as_ref();
        let r = send(&bc, &c.method, &c.path, body).await;
        assert_eq!(
            r.expect(400),
            json!({"detail": "environment_id is required when using JWT authentication"}),
            "{} {}",
            c.method,
            c.path
        );
        for foreign in [other.env.as_str(), random.as_str(), "not-a-uuid"] {
            let r = send(&bc, &c.method, &with_env(&c.path, foreign), body).await;
            assert_eq!(
                r.expect(404),
                json!({"detail": "Environment not found"}),
                "{} {} with {foreign}",
                c.method,
                c.path
            );
        }
        let r = send(&bc, &c.method, &with_env(&c.path, &env), body).await;
        r.expect(c.ok);
    }

    // What the bearer calls did is visible to the API key (same environment).
    let k = f.sdk();
    let tasks = build_tasks(&k, &b).await;
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[&t]["status"], "completed");
    assert_eq!(tasks[&t]["asset_count"], 1);
    let listed = k.get("/api/v1/builds").await.expect(200);
    assert_eq!(listed["total"], 2);
    // And the other user's token cannot reach the admin's environment.
    let oc = f.anonymous().with_bearer(&other.token);
    let r = oc.get(&with_env("/api/v1/builds", &env)).await;
    assert_eq!(r.expect(404), json!({"detail": "Environment not found"}));
}

#[tokio::test]
async fn foreign_builds_and_tasks_look_absent_d9() {
    let (f, other) = with_other_user().await;
    let admin = f.sdk();
    let oc = f.anonymous().with_bearer(&other.token);
    let q = format!("environment_id={}", other.env);

    let t = hash("same-hash-both-envs");
    let mine = new_build_id(&admin).await;
    let admin_task = register(&admin, &mine, &reg(&t, "Mine", &[])).await;
    run_task(&admin, &mine, &reg(&t, "Mine", &[])).await;

    let theirs = oc
        .post(&format!("/api/v1/builds?{q}"), &json!({}))
        .await
        .expect(201);
    let theirs = theirs["id"].as_str().unwrap().to_owned();

    // The admin's build does not exist for the other user, and the other way round.
    let nf = json!({"detail": "Build not found"});
    assert_eq!(
        oc.get(&format!("/api/v1/builds/{mine}?{q}"))
            .await
            .expect(404),
        nf
    );
    assert_eq!(
        admin
            .get(&format!("/api/v1/builds/{theirs}"))
            .await
            .expect(404),
        nf
    );
    for path in [
        format!("/api/v1/builds/{mine}/tasks?{q}"),
        format!("/api/v1/builds/{mine}/events?{q}"),
        format!("/api/v1/builds/{mine}/graph?{q}"),
    ] {
        assert_eq!(oc.get(&path).await.expect(404), nf, "{path}");
    }
    let r = oc
        .post(
            &format!("/api/v1/builds/{mine}/tasks?{q}"),
            &reg(&t, "X", &[]),
        )
        .await;
    assert_eq!(r.expect(404), nf);
    let r = post_empty(&oc, &format!("/api/v1/builds/{mine}/complete?{q}")).await;
    assert_eq!(r.expect(404), nf);
    let r = post_empty(&oc, &format!("/api/v1/builds/{mine}/tasks/{t}/start?{q}")).await;
    assert_eq!(r.expect(404), nf);

    // The admin's task is unknown in the other environment…
    let tnf = json!({"detail": "Task not found"});
    for suffix in ["", "/assets", "/events", "/metadata"] {
        let r = oc.get(&format!("/api/v1/tasks/{t}{suffix}?{q}")).await;
        assert_eq!(r.expect(404), tnf, "{suffix}");
    }
    let r = post_empty(&oc, &format!("/api/v1/builds/{theirs}/tasks/{t}/start?{q}")).await;
    assert_eq!(r.expect(404), tnf);
    // …and the same hash registers there as an independent task.
    let their_task = oc
        .post(
            &format!("/api/v1/builds/{theirs}/tasks?{q}"),
            &reg(&t, "Theirs", &[]),
        )
        .await
        .expect(201);
    assert_ne!(their_task["id"], admin_task["id"]);
    assert_eq!(their_task["task_name"], "Theirs");
    assert_eq!(their_task["environment_id"], json!(other.env));
    let theirs_listed = oc
        .get(&format!("/api/v1/builds/{theirs}/tasks?{q}"))
        .await
        .expect(200);
    assert_eq!(
        theirs_listed[0]["status"], "pending",
        "not completed by the admin's build"
    );
    let lists = oc.get(&format!("/api/v1/builds?{q}")).await.expect(200);
    assert_eq!(lists["total"], 1);
    assert_eq!(
        oc.get(&format!("/api/v1/tasks?{q}")).await.expect(200)["total"],
        1
    );
    assert_eq!(admin.get("/api/v1/tasks").await.expect(200)["total"], 1);
    assert_eq!(
        admin.get(&format!("/api/v1/tasks/{t}")).await.expect(200)["task_name"],
        "Mine"
    );
}
