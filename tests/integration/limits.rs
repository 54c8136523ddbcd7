//! Every stored string has a maximum (docs/limits.md): one character more is a 422
//! `string_too_long` naming the field, the maximum itself passes validation. A 422
//! echoes a bounded prefix of what was sent, never all of it.

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

use crate::env_support::{admin, Account};
use crate::harness::{Client, TestServer};
use crate::tasks::{hash, reg};

/// A request whose string at `loc` is the given value: (method, path, body).
type Request = Box<dyn Fn(&str) -> (Method, String, Option<Value>)>;

struct Case {
    client: Client,
    loc: Value,
    max: usize,
    request: Request,
}

fn post(path: String, body: impl Fn(&str) -> Value + 'static) -> Request {
    Box::new(move |v| (Method::POST, path.clone(), Some(body(v))))
}

fn patch(path: String, body: impl Fn(&str) -> Value + 'static) -> Request {
    Box::new(move |v| (Method::PATCH, path.clone(), Some(body(v))))
}

fn case(client: &Client, loc: Value, max: usize, request: Request) -> Case {
    Case {
        client: client.clone(),
        loc,
        max,
        request,
    }
}

/// A string of `n` characters; an e-mail address when `loc` names one.
fn value_of(loc: &Value, n: usize) -> String {
    if loc.to_string().contains("email") {
        format!("{}@example.com", "a".repeat(n - 12))
    } else {
        "é".repeat(n)
    }
}

fn identity_cases(anon: &Client, a: &Account) -> Vec<Case> {
    let ws = a.ws_path("");
    vec![
        case(
            anon,
            json!(["body", "email"]),
            255,
            post(
                "/api/v1/auth/register".into(),
                |v| json!({"email": v, "password": "password123"}),
            ),
        ),
        case(
            anon,
            json!(["body", "display_name"]),
            255,
            post("/api/v1/auth/register".into(), |v| {
                let email = format!("dn{}@example.com", v.len());
                json!({"email": email, "password": "password123", "display_name": v})
            }),
        ),
        case(
            anon,
            json!(["body", "email"]),
            255,
            post(
                "/api/v1/auth/login".into(),
                |v| json!({"email": v, "password": "password123"}),
            ),
        ),
        case(
            &a.client,
            json!(["body", "name"]),
            255,
            post(
                "/api/v1/ui/workspaces".into(),
                |v| json!({"name": v, "slug": "ws-name"}),
            ),
        ),
        case(
            &a.client,
            json!(["body", "description"]),
            4096,
            post(
                "/api/v1/ui/workspaces".into(),
                |v| json!({"name": "n", "slug": "ws-desc", "description": v}),
            ),
        ),
        case(
            &a.client,
            json!(["body", "initial_environment_name"]),
            255,
            post(
                "/api/v1/ui/workspaces".into(),
                |v| json!({"name": "n", "slug": "ws-env", "initial_environment_name": v}),
            ),
        ),
        case(
            &a.client,
            json!(["body", "initial_target_root_name"]),
            255,
            post("/api/v1/ui/workspaces".into(), |v| {
                json!({"name": "n", "slug": "ws-root", "initial_target_root_name": v,
                       "initial_target_root_uri": "s3://b/"})
            }),
        ),
        case(
            &a.client,
            json!(["body", "initial_target_root_uri"]),
            512,
            post("/api/v1/ui/workspaces".into(), |v| {
                json!({"name": "n", "slug": "ws-uri", "initial_target_root_name": "r",
                       "initial_target_root_uri": v})
            }),
        ),
        case(
            &a.client,
            json!(["body", "name"]),
            255,
            patch(ws.clone(), |v| json!({"name": v})),
        ),
        case(
            &a.client,
            json!(["body", "description"]),
            4096,
            patch(ws.clone(), |v| json!({"description": v})),
        ),
        case(
            &a.client,
            json!(["body", "email"]),
            255,
            post(a.ws_path("/invites"), |v| json!({"email": v})),
        ),
        case(
            &a.client,
            json!(["body", "name"]),
            255,
            post(
                a.ws_path("/environments"),
                |v| json!({"name": v, "slug": "env-name"}),
            ),
        ),
        case(
            &a.client,
            json!(["body", "description"]),
            4096,
            post(
                a.ws_path("/environments"),
                |v| json!({"name": "n", "slug": "env-desc", "description": v}),
            ),
        ),
        case(
            &a.client,
            json!(["body", "description"]),
            4096,
            patch(a.env_path(""), |v| json!({"description": v})),
        ),
        case(
            &a.client,
            json!(["body", "name"]),
            255,
            post(a.env_path("/api-keys"), |v| json!({"name": v})),
        ),
        case(
            &a.client,
            json!(["body", "name"]),
            255,
            post(
                a.env_path("/target-roots"),
                |v| json!({"name": v, "uri_prefix": "s3://b/"}),
            ),
        ),
        case(
            &a.client,
            json!(["body", "uri_prefix"]),
            512,
            post(
                a.env_path("/target-roots"),
                |v| json!({"name": "r", "uri_prefix": v}),
            ),
        ),
    ]
}

fn task_cases(sdk: &Client, build: &str, task: &str) -> Vec<Case> {
    let tasks = format!("/api/v1/builds/{build}/tasks");
    let field = |name: &'static str, max: usize| {
        case(
            sdk,
            json!(["body", name]),
            max,
            post(tasks.clone(), move |v| {
                let mut body = reg(&hash(v), "T", &[]);
                body[name] = json!(v);
                body
            }),
        )
    };
    let asset = |name: &'static str, max: usize| {
        case(
            sdk,
            json!(["body", 0, name]),
            max,
            post(
                format!("/api/v1/builds/{build}/tasks/{task}/assets"),
                move |v| {
                    let mut item = json!({"type": "json", "name": "a", "body": {}});
                    item[name] = json!(v);
                    json!([item])
                },
            ),
        )
    };
    let fail = format!("/api/v1/builds/{build}/fail");
    vec![
        case(
            sdk,
            json!(["body", "commit_hash"]),
            1024,
            post("/api/v1/builds".into(), |v| json!({"commit_hash": v})),
        ),
        case(
            sdk,
            json!(["body", "description"]),
            4096,
            post("/api/v1/builds".into(), |v| json!({"description": v})),
        ),
        case(
            sdk,
            json!(["body", "root_task_ids", 0]),
            64,
            post("/api/v1/builds".into(), |v| json!({"root_task_ids": [v]})),
        ),
        field("task_id", 64),
        field("task_name", 255),
        field("task_namespace", 255),
        field("version", 64),
        field("output_uri", 2048),
        case(
            sdk,
            json!(["body", "dependency_task_ids", 0]),
            64,
            post(tasks.clone(), |v| reg(&hash("dep"), "T", &[v])),
        ),
        asset("type", 50),
        asset("name", 255),
        case(
            sdk,
            json!(["query", "triggered_by_user_id"]),
            255,
            Box::new(move |v| {
                let query: String = v.bytes().map(|b| format!("%{b:02X}")).collect();
                let path = format!("{fail}?triggered_by_user_id={query}");
                (Method::POST, path, None)
            }),
        ),
    ]
}

async fn send(c: &Client, (method, path, body): (Method, String, Option<Value>)) -> (u16, Value) {
    let resp = match body {
        Some(b) => c.json(method, &path, &b).await,
        None => c.send(method, &path, &[], Bytes::new()).await,
    };
    let body = if resp.body.is_empty() {
        Value::Null
    } else {
        resp.json()
    };
    (resp.status.as_u16(), body)
}

async fn check(c: &Case) {
    let long = value_of(&c.loc, c.max + 1);
    let (status, body) = send(&c.client, (c.request)(&long)).await;
    assert_eq!(status, 422, "{} over {}: {body}", c.loc, c.max);
    let item = body["detail"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["loc"] == c.loc))
        .unwrap_or_else(|| panic!("no 422 entry for {}: {body}", c.loc));
    assert_eq!(item["type"], "string_too_long", "{body}");
    let msg = format!("String should have at most {} characters", c.max);
    assert_eq!(item["msg"], msg.as_str());
    let echoed = item["input"].as_str().expect("the input echoed");
    assert!(long.starts_with(echoed) && echoed.len() <= 1024, "{body}");

    let exact = value_of(&c.loc, c.max);
    let (status, body) = send(&c.client, (c.request)(&exact)).await;
    assert_ne!(status, 422, "{} at {} refused: {body}", c.loc, c.max);
}

#[tokio::test]
async fn every_stored_string_has_a_maximum() {
    let server = TestServer::start_with(|c| c.auth.local_registration = true).await;
    let (a, api_key) = admin(&server).await;
    let sdk = server.client().with_api_key(&api_key);
    let build = crate::tasks::new_build_id(&sdk).await;
    let task = hash("t");
    crate::tasks::register(&sdk, &build, &reg(&task, "T", &[])).await;

    let anon = server.client();
    let mut cases = identity_cases(&anon, &a);
    cases.extend(task_cases(&sdk, &build, &task));
    for c in &cases {
        check(c).await;
    }
}

#[tokio::test]
async fn a_refusal_echoes_a_bounded_prefix_of_the_input() {
    let server = TestServer::start().await;
    let (_, api_key) = admin(&server).await;
    let sdk = server.client().with_api_key(&api_key);
    let huge = "x".repeat(1 << 20);
    let shapes = [
        // A wrong type: pydantic echoes the value.
        json!({"root_task_ids": huge}),
        // A list of wrong items: one entry per item.
        json!({"root_task_ids": vec![json!({"k": "x".repeat(30_000)}); 200]}),
    ];
    for body in shapes {
        let resp = sdk.post("/api/v1/builds", &body).await;
        assert_eq!(resp.status.as_u16(), 422);
        assert!(resp.body.len() < 64 * 1024, "{} bytes", resp.body.len());
    }
    // A required field missing: pydantic echoes the whole body.
    let path = format!("/api/v1/builds/{}/tasks", uuid::Uuid::now_v7());
    let resp = sdk.post(&path, &json!({"task_data": {"k": huge}})).await;
    assert_eq!(resp.status.as_u16(), 422);
    assert!(resp.body.len() < 64 * 1024, "{} bytes", resp.body.len());
    // Not JSON at all: the text is echoed.
    let resp = sdk
        .send(
            Method::POST,
            "/api/v1/builds",
            &[("content-type", "text/plain")],
            Bytes::from(huge),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 422);
    assert!(resp.body.len() < 64 * 1024, "{} bytes", resp.body.len());
}
