//! Environments, API keys and target roots (v1-identity §4.7–§4.9, D6, D8, D9, D14, D19,
//! D31), through the HTTP interface only.

use std::time::Duration;

use http::Method;
use serde_json::{json, Value};
use stardag_server::clock;

use crate::env_support::{self, Account};
use crate::harness::{Client, TestResponse, TestServer};

/// D8: RFC 3339 UTC, exactly six fractional digits, `Z`.
#[track_caller]
fn assert_d8(v: &Value) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp string, got {v}"));
    let micros = clock::parse_rfc3339_micros(s).unwrap_or_else(|| panic!("RFC 3339: {s}"));
    assert_eq!(clock::format_micros(micros), s, "D8 format");
}

#[track_caller]
fn assert_detail(resp: &TestResponse, status: u16, detail: &str) {
    assert_eq!(resp.expect(status), json!({ "detail": detail }));
}

/// The `(loc, msg)` pairs of a 422.
#[track_caller]
fn validation(resp: &TestResponse) -> Vec<(Value, String)> {
    let body = resp.expect(422);
    body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("422 list form, got {body}"))
        .iter()
        .map(|i| (i["loc"].clone(), i["msg"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn send(c: &Client, method: Method, path: &str, body: Option<&Value>) -> TestResponse {
    match body {
        Some(b) => c.json(method, path, b).await,
        None => c.send(method, path, &[], Default::default()).await,
    }
}

/// One workspace-scoped route of this area, with a valid body.
pub struct Route {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    /// Admin+ (v1-identity §3.7); a `member` gets 403 `Requires admin role or higher`.
    /// Read by the role matrix once membership routes exist.
    #[allow(dead_code)]
    pub admin_only: bool,
}

/// Every workspace-scoped route of environments, API keys and target roots, aimed at the
/// given ids, ordered so that an admin can run them all in turn with 2xx answers (the
/// environment is deleted last). Used for the owner and non-member checks here; with a
/// member's client the same table gives the role matrix once membership routes exist.
pub fn scoped_routes(ws: &str, env: &str, key: &str, root: &str) -> Vec<Route> {
    let w = format!("/api/v1/ui/workspaces/{ws}");
    let e = format!("{w}/environments/{env}");
    let r = |method: Method, path: String, body: Option<Value>, admin_only: bool| Route {
        method,
        path,
        body,
        admin_only,
    };
    vec![
        r(Method::GET, format!("{w}/environments"), None, false),
        r(
            Method::POST,
            format!("{w}/environments"),
            Some(json!({"name": "X", "slug": "x-env"})),
            true,
        ),
        r(Method::GET, e.clone(), None, false),
        r(
            Method::PATCH,
            e.clone(),
            Some(json!({"name": "renamed"})),
            true,
        ),
        r(Method::GET, format!("{e}/api-keys"), None, false),
        r(
            Method::POST,
            format!("{e}/api-keys"),
            Some(json!({"name": "k"})),
            true,
        ),
        r(Method::DELETE, format!("{e}/api-keys/{key}"), None, true),
        r(Method::GET, format!("{e}/target-roots"), None, false),
        r(
            Method::POST,
            format!("{e}/target-roots"),
            Some(json!({"name": "n", "uri_prefix": "s3://x"})),
            true,
        ),
        r(Method::GET, format!("{e}/target-roots/{root}"), None, false),
        r(
            Method::PATCH,
            format!("{e}/target-roots/{root}"),
            Some(json!({"name": "m"})),
            true,
        ),
        r(
            Method::DELETE,
            format!("{e}/target-roots/{root}"),
            None,
            true,
        ),
        r(Method::GET, format!("{w}/target-roots"), None, false),
        r(
            Method::GET,
            format!("/api/v1/workspaces/{ws}/target-roots"),
            None,
            false,
        ),
        r(Method::DELETE, e, None, true),
    ]
}

/// Id of the first entry of `list` whose `field` equals `value`.
fn find_id(list: &Value, field: &str, value: &str) -> String {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|e| e[field] == value)
        .unwrap_or_else(|| panic!("no entry with {field} = {value} in {list}"))["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn create_env(a: &Account, name: &str, slug: &str) -> Value {
    a.client
        .post(
            &a.ws_path("/environments"),
            &json!({"name": name, "slug": slug}),
        )
        .await
        .expect(201)
}

async fn create_key(a: &Account, env: &str, name: &str) -> Value {
    a.client
        .post(
            &format!("{}/environments/{env}/api-keys", a.ws_path("")),
            &json!({ "name": name }),
        )
        .await
        .expect(201)
}

// ------------------------------------------------------------------------------------
// Environments
// ------------------------------------------------------------------------------------

#[tokio::test]
async fn environment_lifecycle_and_response_shape() {
    let server = TestServer::start().await;
    let (a, _) = env_support::admin(&server).await;

    let list = a.client.get(&a.ws_path("/environments")).await.expect(200);
    assert_eq!(
        list,
        json!([{
            "id": a.env,
            "workspace_id": a.ws,
            "name": "Local",
            "slug": "local",
            "description": "Local development environment",
            "owner_id": null,
            "max_concurrent_locks": null,
        }])
    );

    let staging = a
        .client
        .post(
            &a.ws_path("/environments"),
            &json!({"name": "Staging", "slug": "staging", "description": "pre-prod"}),
        )
        .await
        .expect(201);
    let sid = staging["id"].as_str().unwrap().to_owned();
    assert_eq!(
        staging,
        json!({
            "id": sid,
            "workspace_id": a.ws,
            "name": "Staging",
            "slug": "staging",
            "description": "pre-prod",
            "owner_id": null,
            "max_concurrent_locks": null,
        })
    );
    // Oldest first (D8).
    let list = a.client.get(&a.ws_path("/environments")).await.expect(200);
    assert_eq!(ids(&list), vec![a.env.clone(), sid.clone()]);
    // The D6 mirror serves the same.
    let mirrored = a
        .client
        .get(&format!("/api/v1/workspaces/{}/environments", a.ws))
        .await
        .expect(200);
    assert_eq!(mirrored, list);

    let env_path = a.ws_path(&format!("/environments/{sid}"));
    assert_eq!(a.client.get(&env_path).await.expect(200), staging);

    // PATCH: name changes; slug is immutable; null/absent leave fields unchanged.
    let patched = a
        .client
        .patch(
            &env_path,
            &json!({"name": "Staging 2", "slug": "other", "description": null}),
        )
        .await
        .expect(200);
    assert_eq!(patched["name"], "Staging 2");
    assert_eq!(patched["slug"], "staging");
    assert_eq!(patched["description"], "pre-prod");
    let patched = a
        .client
        .patch(&env_path, &json!({"description": "new"}))
        .await
        .expect(200);
    assert_eq!(
        (&patched["name"], &patched["description"]),
        (&json!("Staging 2"), &json!("new"))
    );
    assert_eq!(a.client.get(&env_path).await.expect(200), patched);

    // D19 lock limit: set, kept when absent, cleared by null.
    let p = a
        .client
        .patch(&env_path, &json!({"max_concurrent_locks": 3}))
        .await
        .expect(200);
    assert_eq!(p["max_concurrent_locks"], 3);
    let p = a
        .client
        .patch(&env_path, &json!({"name": "S"}))
        .await
        .expect(200);
    assert_eq!(p["max_concurrent_locks"], 3);
    let p = a
        .client
        .patch(&env_path, &json!({"max_concurrent_locks": null}))
        .await
        .expect(200);
    assert_eq!(p["max_concurrent_locks"], Value::Null);
    // Also settable at creation.
    let limited = a
        .client
        .post(
            &a.ws_path("/environments"),
            &json!({"name": "Prod", "slug": "prod", "max_concurrent_locks": 2}),
        )
        .await
        .expect(201);
    assert_eq!(limited["max_concurrent_locks"], 2);
    assert_eq!(limited["description"], Value::Null);

    // DELETE, then it is gone everywhere.
    assert_eq!(a.client.delete(&env_path).await.status.as_u16(), 204);
    assert_detail(&a.client.get(&env_path).await, 404, "Environment not found");
    assert_detail(
        &a.client.delete(&env_path).await,
        404,
        "Environment not found",
    );
    let lid = limited["id"].as_str().unwrap();
    a.client
        .delete(&a.ws_path(&format!("/environments/{lid}")))
        .await
        .expect(204);
    let list = a.client.get(&a.ws_path("/environments")).await.expect(200);
    assert_eq!(ids(&list), vec![a.env.clone()]);
    // The last environment stays.
    let last = a.ws_path(&format!("/environments/{}", a.env));
    assert_detail(
        &a.client.delete(&last).await,
        400,
        "Cannot delete the last environment",
    );
    a.client.get(&last).await.expect(200);
}

#[tokio::test]
async fn environment_create_validation_limit_and_slug_conflict() {
    let server = TestServer::start().await;
    let (a, _) = env_support::admin(&server).await;
    let path = a.ws_path("/environments");
    let pattern = "Value error, Slug must be lowercase alphanumeric with hyphens or underscores, cannot start or end with hyphen or underscore";
    let length = "Value error, Slug must be between 2 and 64 characters";
    for (slug, msg) in [
        ("Bad", pattern),
        ("-ab", pattern),
        ("ab_", pattern),
        ("a b", pattern),
        ("", pattern),
        ("a", length),
        (&"a".repeat(65), length),
    ] {
        let resp = a
            .client
            .post(&path, &json!({"name": "N", "slug": slug}))
            .await;
        assert_eq!(
            validation(&resp),
            vec![(json!(["body", "slug"]), msg.to_owned())],
            "{slug:?}"
        );
    }
    // Underscores and 64 characters are fine.
    create_env(&a, "U", "my_env_123").await;
    create_env(&a, "L", &"a".repeat(64)).await;

    let resp = a.client.post(&path, &json!({"slug": "ok-slug"})).await;
    assert_eq!(
        validation(&resp),
        vec![(json!(["body", "name"]), "Field required".to_owned())]
    );
    let resp = a
        .client
        .post(&path, &json!({"name": "x".repeat(256), "slug": "long"}))
        .await;
    assert_eq!(
        validation(&resp),
        vec![(
            json!(["body", "name"]),
            "String should have at most 255 characters".to_owned()
        )]
    );
    for (limit, msg) in [
        (json!(0), "Input should be greater than or equal to 1"),
        (json!(-1), "Input should be greater than or equal to 1"),
        (json!("3"), "Input should be a valid integer"),
        (
            json!(2147483648_i64),
            "Input should be less than or equal to 2147483647",
        ),
    ] {
        let resp = a
            .client
            .post(
                &path,
                &json!({"name": "N", "slug": "lim", "max_concurrent_locks": limit}),
            )
            .await;
        assert_eq!(
            validation(&resp),
            vec![(json!(["body", "max_concurrent_locks"]), msg.to_owned())]
        );
    }
    let resp = a
        .client
        .get("/api/v1/ui/workspaces/not-a-uuid/environments")
        .await;
    assert_eq!(
        validation(&resp),
        vec![(
            json!(["path", "workspace_id"]),
            "Input should be a valid UUID".to_owned()
        )]
    );

    // Slugs are unique per workspace.
    assert_detail(
        &a.client
            .post(&path, &json!({"name": "Again", "slug": "local"}))
            .await,
        409,
        "Environment slug already exists in this workspace",
    );

    // 3 exist (local, my_env_123, a×64); up to 6, then 403 without writing.
    for i in 0..3 {
        create_env(&a, "E", &format!("env-{i}")).await;
    }
    assert_detail(
        &a.client
            .post(&path, &json!({"name": "Seventh", "slug": "seventh"}))
            .await,
        403,
        "Workspace can have at most 6 environments",
    );
    let list = a.client.get(&path).await.expect(200);
    assert_eq!(list.as_array().unwrap().len(), 6);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["slug"] != "seventh"));
}

#[tokio::test]
async fn environment_patch_and_path_validation() {
    let server = TestServer::start().await;
    let (a, _) = env_support::admin(&server).await;
    let env_path = a.ws_path(&format!("/environments/{}", a.env));
    for limit in [json!(0), json!(2.5), json!(true)] {
        let resp = a
            .client
            .patch(&env_path, &json!({"max_concurrent_locks": limit}))
            .await;
        assert_eq!(
            validation(&resp)[0].0,
            json!(["body", "max_concurrent_locks"])
        );
    }
    // A PATCH needs a body.
    let resp = a
        .client
        .send(Method::PATCH, &env_path, &[], Default::default())
        .await;
    assert_eq!(validation(&resp)[0].0, json!(["body"]));
    // Both malformed path ids are named in one 422.
    let resp = a
        .client
        .get("/api/v1/ui/workspaces/nope/environments/also-nope")
        .await;
    let locs: Vec<Value> = validation(&resp).into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        locs,
        vec![
            json!(["path", "workspace_id"]),
            json!(["path", "environment_id"])
        ]
    );
    let unknown = uuid::Uuid::now_v7();
    assert_detail(
        &a.client
            .patch(
                &a.ws_path(&format!("/environments/{unknown}")),
                &json!({"name": "x"}),
            )
            .await,
        404,
        "Environment not found",
    );
    // Nothing changed.
    let env = a.client.get(&env_path).await.expect(200);
    assert_eq!(env["name"], "Local");
    assert_eq!(env["max_concurrent_locks"], Value::Null);
}

#[tokio::test]
async fn workspace_routes_authenticate_before_validating() {
    let server = TestServer::start().await;
    let (a, _) = env_support::admin(&server).await;
    let anon = server.client();
    let resp = anon
        .get("/api/v1/ui/workspaces/not-a-uuid/environments")
        .await;
    assert_detail(&resp, 401, "Not authenticated");
    assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
    // A session token is not an internal token (D31).
    let resp = anon
        .with_bearer(&a.session)
        .get(&a.ws_path("/environments"))
        .await;
    assert_eq!(resp.status.as_u16(), 401);
    let resp = anon
        .with_bearer(&a.session)
        .get(&a.env_path("/api-keys"))
        .await;
    assert_eq!(resp.status.as_u16(), 401);
}

// ------------------------------------------------------------------------------------
// API keys
// ------------------------------------------------------------------------------------

/// Polls the key list until the key's `last_used_at` is set (written in the background).
async fn wait_last_used(a: &Account, key_id: &str) -> Value {
    for _ in 0..200 {
        let list = a.client.get(&a.env_path("/api-keys")).await.expect(200);
        let entry = list
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == key_id)
            .cloned()
            .expect("key listed");
        if !entry["last_used_at"].is_null() {
            return entry;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("last_used_at was never set for {key_id}");
}

#[tokio::test]
async fn api_key_lifecycle() {
    let server = TestServer::start().await;
    let (a, initial_key) = env_support::admin(&server).await;

    // The bootstrap key is listed with metadata only.
    let list = a.client.get(&a.env_path("/api-keys")).await.expect(200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let initial = &list[0];
    assert_eq!(initial["name"], "initial");
    assert_eq!(initial["key_prefix"], initial_key[3..11]);
    assert!(initial.get("key").is_none());

    let created = create_key(&a, &a.env, "ci").await;
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();
    let env_hex = a.env.replace('-', "");
    assert_eq!(key.len(), 42);
    assert!(key.starts_with(&format!("sk_{}_", &env_hex[..6])), "{key}");
    assert_eq!(created["key_prefix"], key[3..11]);
    assert_eq!(created["environment_id"], a.env);
    assert_eq!(created["name"], "ci");
    assert_eq!(created["created_by_id"], a.user_id);
    assert_d8(&created["created_at"]);
    assert_eq!(created["last_used_at"], Value::Null);
    assert_eq!(created["revoked_at"], Value::Null);
    let fields: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(fields.len(), 9, "{fields:?}");

    // Newest first; the key itself is never listed again.
    let list = a.client.get(&a.env_path("/api-keys")).await.expect(200);
    assert_eq!(ids(&list)[0], key_id);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let mut listed = created.clone();
    listed.as_object_mut().unwrap().remove("key");
    assert_eq!(list[0], listed);

    // The new key authenticates the SDK route; use is recorded off the request path.
    let sdk = server.client().with_api_key(&key);
    let roots = sdk.get("/api/v1/target-roots").await.expect(200);
    assert_eq!(
        roots,
        json!([{"name": "default", "uri_prefix": "~/.stardag/local-target-roots/default"}])
    );
    let used = wait_last_used(&a, &key_id).await;
    assert_d8(&used["last_used_at"]);
    assert!(used["last_used_at"].as_str() >= used["created_at"].as_str());

    // Revoke: 204, then the key is refused and hidden unless asked for.
    let key_path = a.env_path(&format!("/api-keys/{key_id}"));
    assert_eq!(a.client.delete(&key_path).await.status.as_u16(), 204);
    let resp = sdk.get("/api/v1/target-roots").await;
    assert_detail(&resp, 401, "Invalid API key");
    assert_eq!(resp.header("www-authenticate"), None);
    let active = a.client.get(&a.env_path("/api-keys")).await.expect(200);
    assert_eq!(
        ids(&active),
        vec![initial["id"].as_str().unwrap().to_owned()]
    );
    for flag in ["true", "1", "yes", "on"] {
        let all = a
            .client
            .get(&a.env_path(&format!("/api-keys?include_revoked={flag}")))
            .await
            .expect(200);
        assert_eq!(ids(&all)[0], key_id);
        assert_d8(&all[0]["revoked_at"]);
    }
    let none = a
        .client
        .get(&a.env_path("/api-keys?include_revoked=false"))
        .await
        .expect(200);
    assert_eq!(none, active);
    let resp = a
        .client
        .get(&a.env_path("/api-keys?include_revoked=maybe"))
        .await;
    assert_eq!(validation(&resp)[0].0, json!(["query", "include_revoked"]));
    // Revoking again is allowed and keeps it revoked.
    assert_eq!(a.client.delete(&key_path).await.status.as_u16(), 204);
    assert_detail(
        &sdk.get("/api/v1/target-roots").await,
        401,
        "Invalid API key",
    );
    // The bootstrap key still works.
    server
        .client()
        .with_api_key(&initial_key)
        .get("/api/v1/target-roots")
        .await
        .expect(200);

    // Unknown key, and a key of another environment of the same workspace.
    let unknown = uuid::Uuid::now_v7();
    assert_detail(
        &a.client
            .delete(&a.env_path(&format!("/api-keys/{unknown}")))
            .await,
        404,
        "API key not found",
    );
    let other = create_env(&a, "Other", "other").await;
    let other_id = other["id"].as_str().unwrap();
    let other_key = create_key(&a, other_id, "o").await;
    let initial_id = initial["id"].as_str().unwrap();
    assert_detail(
        &a.client
            .delete(&a.ws_path(&format!("/environments/{other_id}/api-keys/{initial_id}")))
            .await,
        404,
        "API key not found",
    );
    // Refused: nothing was revoked.
    server
        .client()
        .with_api_key(&initial_key)
        .get("/api/v1/target-roots")
        .await
        .expect(200);
    server
        .client()
        .with_api_key(other_key["key"].as_str().unwrap())
        .get("/api/v1/target-roots")
        .await
        .expect(200);

    // Validation.
    let resp = a.client.post(&a.env_path("/api-keys"), &json!({})).await;
    assert_eq!(
        validation(&resp),
        vec![(json!(["body", "name"]), "Field required".to_owned())]
    );
}

#[tokio::test]
async fn api_key_dies_with_its_environment() {
    let server = TestServer::start().await;
    let (a, initial_key) = env_support::admin(&server).await;
    let ci = create_env(&a, "CI", "ci").await;
    let ci_id = ci["id"].as_str().unwrap().to_owned();
    let key = create_key(&a, &ci_id, "runner").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    a.client
        .post(
            &a.ws_path(&format!("/environments/{ci_id}/target-roots")),
            &json!({"name": "ci-root", "uri_prefix": "s3://ci/"}),
        )
        .await
        .expect(201);
    let sdk = server.client().with_api_key(&key);
    // The key sees its own environment's roots only.
    assert_eq!(
        sdk.get("/api/v1/target-roots").await.expect(200),
        json!([{"name": "ci-root", "uri_prefix": "s3://ci/"}])
    );
    a.client
        .delete(&a.ws_path(&format!("/environments/{ci_id}")))
        .await
        .expect(204);
    assert_detail(
        &sdk.get("/api/v1/target-roots").await,
        401,
        "Invalid API key",
    );
    // The other environment's key is untouched.
    server
        .client()
        .with_api_key(&initial_key)
        .get("/api/v1/target-roots")
        .await
        .expect(200);
    // The D6 list no longer shows the deleted environment's roots.
    let all = a.client.get(&a.ws_path("/target-roots")).await.expect(200);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["environment_id"] != ci_id.as_str()));
}

// ------------------------------------------------------------------------------------
// Target roots
// ------------------------------------------------------------------------------------

#[tokio::test]
async fn target_root_crud_and_conflicts() {
    let server = TestServer::start().await;
    let (a, _) = env_support::admin(&server).await;
    let roots = a.env_path("/target-roots");

    let list = a.client.get(&roots).await.expect(200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let default_id = find_id(&list, "name", "default");
    assert_eq!(list[0]["environment_id"], a.env);
    assert_eq!(
        list[0]["uri_prefix"],
        "~/.stardag/local-target-roots/default"
    );
    assert_d8(&list[0]["created_at"]);

    let s3 = a
        .client
        .post(
            &roots,
            &json!({"name": "s3", "uri_prefix": "s3://bucket/prefix"}),
        )
        .await
        .expect(201);
    let s3_id = s3["id"].as_str().unwrap().to_owned();
    assert_eq!(
        s3,
        json!({
            "id": s3_id,
            "environment_id": a.env,
            "name": "s3",
            "uri_prefix": "s3://bucket/prefix",
            "created_at": s3["created_at"],
        })
    );
    assert_d8(&s3["created_at"]);
    assert_detail(
        &a.client
            .post(
                &roots,
                &json!({"name": "s3", "uri_prefix": "s3://elsewhere"}),
            )
            .await,
        409,
        "Target root with name 's3' already exists",
    );
    // A name with a quote is reported verbatim.
    a.client
        .post(&roots, &json!({"name": "it's", "uri_prefix": "gs://q"}))
        .await
        .expect(201);
    assert_detail(
        &a.client
            .post(&roots, &json!({"name": "it's", "uri_prefix": "gs://q"}))
            .await,
        409,
        "Target root with name 'it's' already exists",
    );
    // Ordered by name.
    let names: Vec<Value> = a
        .client
        .get(&roots)
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("default"), json!("it's"), json!("s3")]);

    let one = a.env_path(&format!("/target-roots/{s3_id}"));
    assert_eq!(a.client.get(&one).await.expect(200), s3);

    // PATCH: same name is no conflict; another root's name is.
    let p = a
        .client
        .patch(&one, &json!({"name": "s3", "uri_prefix": "s3://new"}))
        .await
        .expect(200);
    assert_eq!(
        (&p["name"], &p["uri_prefix"]),
        (&json!("s3"), &json!("s3://new"))
    );
    assert_eq!(p["created_at"], s3["created_at"]);
    assert_detail(
        &a.client.patch(&one, &json!({"name": "default"})).await,
        409,
        "Target root with name 'default' already exists",
    );
    let p = a
        .client
        .patch(&one, &json!({"name": "archive", "uri_prefix": null}))
        .await
        .expect(200);
    assert_eq!(
        (&p["name"], &p["uri_prefix"]),
        (&json!("archive"), &json!("s3://new"))
    );
    assert_eq!(a.client.get(&one).await.expect(200), p);
    // The old name is free again.
    a.client
        .post(&roots, &json!({"name": "s3", "uri_prefix": "s3://again"}))
        .await
        .expect(201);

    // The SDK sees the same roots through the environment's key.
    let creds = env_support::initial_credentials(&server).await;
    let sdk = server
        .client()
        .with_api_key(&creds["STARDAG_API_KEY"])
        .get("/api/v1/target-roots")
        .await
        .expect(200);
    assert_eq!(
        sdk,
        json!([
            {"name": "archive", "uri_prefix": "s3://new"},
            {"name": "default", "uri_prefix": "~/.stardag/local-target-roots/default"},
            {"name": "it's", "uri_prefix": "gs://q"},
            {"name": "s3", "uri_prefix": "s3://again"},
        ])
    );

    // DELETE.
    assert_eq!(a.client.delete(&one).await.status.as_u16(), 204);
    assert_detail(&a.client.get(&one).await, 404, "Target root not found");
    assert_detail(&a.client.delete(&one).await, 404, "Target root not found");
    assert_detail(
        &a.client.patch(&one, &json!({"name": "z"})).await,
        404,
        "Target root not found",
    );
    let list = a.client.get(&roots).await.expect(200);
    assert!(!ids(&list).contains(&s3_id));
    assert!(ids(&list).contains(&default_id));

    // Validation.
    let resp = a.client.post(&roots, &json!({"name": "x"})).await;
    assert_eq!(
        validation(&resp),
        vec![(json!(["body", "uri_prefix"]), "Field required".to_owned())]
    );
    let resp = a
        .client
        .post(&roots, &json!({"name": "x", "uri_prefix": "u".repeat(513)}))
        .await;
    assert_eq!(validation(&resp)[0].0, json!(["body", "uri_prefix"]));
    let resp = a.client.get(&a.env_path("/target-roots/not-a-uuid")).await;
    assert_eq!(validation(&resp)[0].0, json!(["path", "root_id"]));
    // Unknown environment of the own workspace.
    let unknown = uuid::Uuid::now_v7();
    assert_detail(
        &a.client
            .get(&a.ws_path(&format!("/environments/{unknown}/target-roots")))
            .await,
        404,
        "Environment not found",
    );
}

#[tokio::test]
async fn workspace_target_roots_span_every_environment() {
    let server = TestServer::start().await;
    let (a, _) = env_support::admin(&server).await;
    let prod = create_env(&a, "Prod", "prod").await;
    let prod_id = prod["id"].as_str().unwrap();
    for name in ["b-root", "a-root"] {
        a.client
            .post(
                &a.ws_path(&format!("/environments/{prod_id}/target-roots")),
                &json!({"name": name, "uri_prefix": format!("s3://prod/{name}")}),
            )
            .await
            .expect(201);
    }
    let seed_path = format!("/api/v1/workspaces/{}/target-roots", a.ws);
    let all = a.client.get(&seed_path).await.expect(200);
    let entries: Vec<(Value, Value)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["environment_id"].clone(), r["name"].clone()))
        .collect();
    // Environment by environment, oldest first; by name inside.
    assert_eq!(
        entries,
        vec![
            (json!(a.env), json!("default")),
            (json!(prod_id), json!("a-root")),
            (json!(prod_id), json!("b-root")),
        ]
    );
    for r in all.as_array().unwrap() {
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "TargetRootResponse: {r}");
        assert_d8(&r["created_at"]);
    }
    // The /ui mirror answers the same.
    assert_eq!(
        a.client.get(&a.ws_path("/target-roots")).await.expect(200),
        all
    );
}

#[tokio::test]
async fn sdk_target_roots_with_an_internal_token() {
    let server = env_support::start_with_registration().await;
    let (a, _) = env_support::admin(&server).await;
    let b = env_support::new_user(&server, "bob@example.com").await;
    let sdk = server.client().with_bearer(&a.access_token);

    assert_detail(
        &sdk.get("/api/v1/target-roots").await,
        400,
        "environment_id is required when using JWT authentication",
    );
    for env in ["not-a-uuid", &uuid::Uuid::now_v7().to_string(), &b.env] {
        assert_detail(
            &sdk.get(&format!("/api/v1/target-roots?environment_id={env}"))
                .await,
            404,
            "Environment not found",
        );
    }
    let own = sdk
        .get(&format!("/api/v1/target-roots?environment_id={}", a.env))
        .await
        .expect(200);
    assert_eq!(
        own,
        json!([{"name": "default", "uri_prefix": "~/.stardag/local-target-roots/default"}])
    );
    // Nothing at all.
    let resp = server.client().get("/api/v1/target-roots").await;
    assert_detail(
        &resp,
        401,
        "Authentication required. Provide X-API-Key header or Bearer token.",
    );
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Bearer, ApiKey realm=\"sdk\"")
    );
    // A malformed key.
    assert_detail(
        &server
            .client()
            .with_api_key("invalid-key")
            .get("/api/v1/target-roots")
            .await,
        401,
        "Invalid API key",
    );
}

#[tokio::test]
async fn owner_passes_every_route() {
    let server = TestServer::start().await;
    let (a, initial_key) = env_support::admin(&server).await;
    let scratch = create_env(&a, "Scratch", "scratch").await;
    let env = scratch["id"].as_str().unwrap().to_owned();
    let key = create_key(&a, &env, "k").await;
    let root = a
        .client
        .post(
            &a.ws_path(&format!("/environments/{env}/target-roots")),
            &json!({"name": "r", "uri_prefix": "s3://r"}),
        )
        .await
        .expect(201);
    for route in scoped_routes(
        &a.ws,
        &env,
        key["id"].as_str().unwrap(),
        root["id"].as_str().unwrap(),
    ) {
        let resp = send(
            &a.client,
            route.method.clone(),
            &route.path,
            route.body.as_ref(),
        )
        .await;
        assert!(
            resp.status.is_success(),
            "{} {}: {} {}",
            route.method,
            route.path,
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
    }
    // Only the scratch environment went; the personal one and its key remain.
    let envs = a.client.get(&a.ws_path("/environments")).await.expect(200);
    assert!(!ids(&envs).contains(&env));
    assert!(ids(&envs).contains(&a.env));
    server
        .client()
        .with_api_key(&initial_key)
        .get("/api/v1/target-roots")
        .await
        .expect(200);
}

// ------------------------------------------------------------------------------------
// Tenant isolation (D9)
// ------------------------------------------------------------------------------------

#[tokio::test]
async fn foreign_workspaces_and_ids_look_absent() {
    let server = env_support::start_with_registration().await;
    let (a, a_key) = env_support::admin(&server).await;
    let b = env_support::new_user(&server, "bob@example.com").await;

    // B's resources.
    let b_key = create_key(&b, &b.env, "bob-key").await;
    let b_key_id = b_key["id"].as_str().unwrap().to_owned();
    let b_key_secret = b_key["key"].as_str().unwrap().to_owned();
    let b_roots = b.client.get(&b.env_path("/target-roots")).await.expect(200);
    let b_root = find_id(&b_roots, "name", "default");
    let b_env_before = b.client.get(&b.env_path("")).await.expect(200);
    let b_keys_before = b.client.get(&b.env_path("/api-keys")).await.expect(200);
    // A's resources.
    let a_keys = a.client.get(&a.env_path("/api-keys")).await.expect(200);
    let a_key_id = find_id(&a_keys, "name", "initial");
    let a_roots = a.client.get(&a.env_path("/target-roots")).await.expect(200);
    let a_root = find_id(&a_roots, "name", "default");

    // 1. B's workspace under A's token: every route answers 404 Workspace not found.
    for route in scoped_routes(&b.ws, &b.env, &b_key_id, &b_root) {
        let resp = send(
            &a.client,
            route.method.clone(),
            &route.path,
            route.body.as_ref(),
        )
        .await;
        assert_eq!(
            resp.expect(404),
            json!({"detail": "Workspace not found"}),
            "{} {}",
            route.method,
            route.path
        );
    }
    // Same for a workspace that does not exist at all.
    let ghost = uuid::Uuid::now_v7().to_string();
    for route in scoped_routes(&ghost, &a.env, &a_key_id, &a_root) {
        let resp = send(
            &a.client,
            route.method.clone(),
            &route.path,
            route.body.as_ref(),
        )
        .await;
        assert_detail(&resp, 404, "Workspace not found");
    }

    // 2. B's environment under A's own workspace: Environment not found.
    let foreign_env = format!("/api/v1/ui/workspaces/{}/environments/{}", a.ws, b.env);
    let env_routes: [(Method, String, Option<Value>); 7] = [
        (Method::GET, foreign_env.clone(), None),
        (
            Method::PATCH,
            foreign_env.clone(),
            Some(json!({"name": "hijack"})),
        ),
        (Method::DELETE, foreign_env.clone(), None),
        (Method::GET, format!("{foreign_env}/api-keys"), None),
        (
            Method::POST,
            format!("{foreign_env}/api-keys"),
            Some(json!({"name": "stolen"})),
        ),
        (Method::GET, format!("{foreign_env}/target-roots"), None),
        (
            Method::POST,
            format!("{foreign_env}/target-roots"),
            Some(json!({"name": "x", "uri_prefix": "s3://evil"})),
        ),
    ];
    for (method, path, body) in env_routes {
        let resp = send(&a.client, method.clone(), &path, body.as_ref()).await;
        assert_eq!(
            resp.expect(404),
            json!({"detail": "Environment not found"}),
            "{method} {path}"
        );
    }
    // B's key / root addressed through B's environment under A's workspace: the key or
    // root is found under the path environment first (§4.8.3, §4.9.3), then the
    // environment is not A's.
    assert_detail(
        &a.client
            .delete(&format!("{foreign_env}/api-keys/{b_key_id}"))
            .await,
        404,
        "Environment not found",
    );
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"name": "mine"}))),
        (Method::DELETE, None),
    ] {
        let resp = send(
            &a.client,
            method,
            &format!("{foreign_env}/target-roots/{b_root}"),
            body.as_ref(),
        )
        .await;
        assert_detail(&resp, 404, "Environment not found");
    }

    // With an id that exists nowhere, the key/root check answers first, so a foreign
    // environment reads exactly like an unknown one.
    let nowhere = uuid::Uuid::now_v7();
    let unknown_env = uuid::Uuid::now_v7();
    for env_part in [
        foreign_env.clone(),
        a.ws_path(&format!("/environments/{unknown_env}")),
    ] {
        assert_detail(
            &a.client
                .delete(&format!("{env_part}/api-keys/{nowhere}"))
                .await,
            404,
            "API key not found",
        );
        assert_detail(
            &a.client
                .get(&format!("{env_part}/target-roots/{nowhere}"))
                .await,
            404,
            "Target root not found",
        );
    }

    // 3. B's key and root ids under A's own environment: their own 404s.
    assert_detail(
        &a.client
            .delete(&a.env_path(&format!("/api-keys/{b_key_id}")))
            .await,
        404,
        "API key not found",
    );
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"name": "mine"}))),
        (Method::DELETE, None),
    ] {
        let resp = send(
            &a.client,
            method,
            &a.env_path(&format!("/target-roots/{b_root}")),
            body.as_ref(),
        )
        .await;
        assert_detail(&resp, 404, "Target root not found");
    }
    // The SDK route with a foreign environment id.
    assert_detail(
        &a.client
            .get(&format!("/api/v1/target-roots?environment_id={}", b.env))
            .await,
        404,
        "Environment not found",
    );

    // 4. Nothing of B's changed, and B's key still works.
    assert_eq!(
        b.client.get(&b.env_path("")).await.expect(200),
        b_env_before
    );
    assert_eq!(
        ids(&b.client.get(&b.env_path("/api-keys")).await.expect(200)),
        ids(&b_keys_before)
    );
    assert_eq!(
        b.client.get(&b.env_path("/target-roots")).await.expect(200),
        b_roots
    );
    let envs = b.client.get(&b.ws_path("/environments")).await.expect(200);
    assert_eq!(ids(&envs), vec![b.env.clone()]);
    assert_eq!(
        server
            .client()
            .with_api_key(&b_key_secret)
            .get("/api/v1/target-roots")
            .await
            .expect(200),
        json!([{"name": "default", "uri_prefix": "~/.stardag/local-target-roots/default"}])
    );
    // And A's key sees A's environment only.
    server
        .client()
        .with_api_key(&a_key)
        .get("/api/v1/target-roots")
        .await
        .expect(200);

    // 5. Slugs are unique per workspace only.
    create_env(&a, "Staging", "staging").await;
    create_env(&b, "Staging", "staging").await;
}
