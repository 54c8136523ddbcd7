//! Task tracking through the real HTTP interface (v1-tasks §4.1–§4.3, §4.6; D6, D8, D9,
//! D17, D18, D21): builds, registration, task events, assets, reads, the bearer path and
//! replays of the real SDK's request sequences (docs/sdk-0.1.0-wire.md).

mod assets;
mod auth;
mod builds;
mod events;
mod reads;
mod registration;
mod sdk_flows;

use std::collections::HashMap;

use serde_json::{json, Value};

pub use crate::harness::{exchange, login};
use crate::harness::{Client, TestServer};

/// A running server with the first-start credentials (D4).
pub struct Fixture {
    pub server: TestServer,
    pub creds: HashMap<String, String>,
}

impl Fixture {
    pub async fn start() -> Fixture {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut stardag_server::config::Config)) -> Fixture {
        let server = TestServer::start_with(tweak).await;
        // The first answer comes after start-up, so the credentials file exists by then.
        server.client().get("/health").await.expect(200);
        let creds = read_credentials(&server);
        Fixture { server, creds }
    }

    pub fn cred(&self, key: &str) -> &str {
        self.creds
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from initial-credentials"))
    }

    /// The SDK's usual credential: the bootstrap API key.
    pub fn sdk(&self) -> Client {
        self.server
            .client()
            .with_api_key(self.cred("STARDAG_API_KEY"))
    }

    pub fn env_id(&self) -> String {
        self.cred("STARDAG_ENVIRONMENT_ID").to_owned()
    }

    pub fn anonymous(&self) -> Client {
        self.server.client()
    }

    /// The admin's internal token for the bootstrap workspace (local login + exchange).
    pub async fn admin_token(&self) -> String {
        let session = login(
            &self.anonymous(),
            self.cred("STARDAG_ADMIN_EMAIL"),
            self.cred("STARDAG_ADMIN_PASSWORD"),
        )
        .await;
        exchange(
            &self.anonymous(),
            &session,
            self.cred("STARDAG_WORKSPACE_ID"),
        )
        .await
    }
}

fn read_credentials(server: &TestServer) -> HashMap<String, String> {
    crate::harness::credentials(server.data_dir())
}

/// A deterministic UUID-shaped task hash (the SDK's hashes are UUIDv5 strings).
pub fn hash(tag: &str) -> String {
    let mut h: u128 = 0xcbf2_9ce4_8422_2325;
    for b in tag.bytes() {
        h = (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    uuid::Uuid::from_u128(h).to_string()
}

/// The registration body the SDK sends (docs/sdk-0.1.0-wire.md §3.2).
pub fn reg(task_id: &str, name: &str, deps: &[&str]) -> Value {
    json!({
        "task_id": task_id,
        "task_namespace": "tests",
        "task_name": name,
        "task_data": {"__namespace": "tests", "__name": name, "version": "", "tag": task_id},
        "version": "",
        "output_uri": format!("/tmp/targets/{task_id}.json"),
        "dependency_task_ids": deps,
    })
}

pub async fn create_build(c: &Client) -> Value {
    c.post(
        "/api/v1/builds",
        &json!({"commit_hash": "abc123", "root_task_ids": [], "description": null}),
    )
    .await
    .expect(201)
}

pub async fn new_build_id(c: &Client) -> String {
    create_build(c).await["id"].as_str().unwrap().to_owned()
}

pub async fn register(c: &Client, build: &str, body: &Value) -> Value {
    c.post(&format!("/api/v1/builds/{build}/tasks"), body)
        .await
        .expect(201)
}

/// A body-less POST, as the SDK sends task and build transitions.
pub async fn post_empty(c: &Client, path: &str) -> crate::harness::TestResponse {
    c.send(http::Method::POST, path, &[], Default::default())
        .await
}

pub async fn task_event(c: &Client, build: &str, task: &str, action: &str) -> Value {
    post_empty(c, &format!("/api/v1/builds/{build}/tasks/{task}/{action}"))
        .await
        .expect(200)
}

/// Registers, starts and completes a task, as the SDK does for each task it runs.
pub async fn run_task(c: &Client, build: &str, body: &Value) {
    register(c, build, body).await;
    let t = body["task_id"].as_str().unwrap();
    assert_eq!(
        task_event(c, build, t, "start").await,
        json!({"task_id": t, "status": "running"})
    );
    assert_eq!(
        task_event(c, build, t, "complete").await,
        json!({"task_id": t, "status": "completed"})
    );
}

/// Event types of a list of EventResponses.
pub fn types(events: &Value) -> Vec<String> {
    events
        .as_array()
        .expect("event list")
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}

/// Build task list keyed by hash.
pub async fn build_tasks(c: &Client, build: &str) -> HashMap<String, Value> {
    let rows = c
        .get(&format!("/api/v1/builds/{build}/tasks"))
        .await
        .expect(200);
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["task_id"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// D8: RFC 3339 UTC with exactly six fractional digits and `Z`.
#[track_caller]
pub fn assert_ts(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    let b = s.as_bytes();
    let ok = s.len() == 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z'
        && s[20..26].bytes().all(|c| c.is_ascii_digit());
    assert!(ok, "bad timestamp {s}");
}

#[track_caller]
pub fn assert_uuid(v: &Value) -> uuid::Uuid {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let u = uuid::Uuid::parse_str(s).unwrap_or_else(|_| panic!("not a uuid: {s}"));
    assert_eq!(u.to_string(), s, "uuid not canonical");
    u
}

#[track_caller]
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[track_caller]
pub fn sorted(names: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

/// The single validation item of a 422, checked for type and location.
#[track_caller]
pub fn assert_422(body: &Value, kind: &str, loc: Value) {
    let items = body["detail"].as_array().expect("422 detail list");
    assert!(
        items.iter().any(|i| i["type"] == kind && i["loc"] == loc),
        "no {kind} at {loc} in {body}"
    );
}
