//! The v2 registry (`/api/v2`, shared/spec/v2-registry.md; DECISIONS D9, D33) through
//! the real HTTP interface: every refusal code of §8 in the refusal order of §5, the
//! re-delivery of every write (§1.5), all-or-nothing registration chunks (§6.3), claim
//! expiry and renewal (§6.5), the reactive hand-out window (§6.7), tenancy, gzip bodies
//! and v1 next to v2.
//!
//! The small DSL below names test tasks by a tag: `tid("a")` is the task id,
//! `ih("a")` its instance hash, `item("a", ups)` its registration item (§3.1) with
//! `declared_upstreams` the instance hashes of the tags in `ups` (`None`: unexpanded).

mod atomicity;
mod claims;
mod complete_wait;
mod frontier;
mod reactive;
mod redelivery;
mod refusals_claims;
mod refusals_registry;
mod shapes;
mod tenancy;

use std::io::Write;

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};
use stardag_server::clock;
use uuid::Uuid;

use crate::harness::{Client, TestResponse};
pub use crate::tasks::Fixture;

/// `/api/v2` + `path`.
pub fn v2(path: &str) -> String {
    format!("/api/v2{path}")
}

/// A client-minted id, as the SDK mints them (uuid7).
pub fn new_id() -> String {
    Uuid::now_v7().to_string()
}

/// Now, as the SDK sends `observed_at` (RFC 3339, `Z`).
pub fn now_z() -> String {
    clock::format_micros(clock::now_micros())
}

/// Now plus `secs` seconds, RFC 3339 `Z`.
pub fn in_secs(secs: i64) -> String {
    clock::format_micros(clock::now_micros() + secs * 1_000_000)
}

/// Epoch microseconds of a response timestamp.
#[track_caller]
pub fn micros(v: &Value) -> i64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("a timestamp string, got {v}"));
    clock::parse_rfc3339_micros(s).unwrap_or_else(|| panic!("not RFC 3339: {s}"))
}

/// The task id of a tag (UUID form, as the SDK sends task ids).
pub fn tid(tag: &str) -> String {
    crate::tasks::hash(&format!("v2-task:{tag}"))
}

/// The instance hash of a tag.
pub fn ih(tag: &str) -> String {
    crate::tasks::hash(&format!("v2-instance:{tag}"))
}

pub fn name(tag: &str) -> String {
    format!("Task_{tag}")
}

/// The instance body of a tag: all parameters of the construction.
pub fn body(tag: &str) -> Value {
    json!({"__namespace": "tests", "__name": name(tag), "tag": tag, "n": 1})
}

/// A registration item as `stardag 0.28.0: build/_registration.registration_item` sends
/// it: every key present, nulls included.
pub fn item(tag: &str, ups: Option<&[&str]>) -> Value {
    json!({
        "task_id": tid(tag),
        "task_namespace": "tests",
        "task_name": name(tag),
        "version": null,
        "output_uri": format!("/tmp/v2-targets/{tag}.json"),
        "instance_hash": ih(tag),
        "body": body(tag),
        "declared_upstreams": ups.map(|u| u.iter().map(|t| ih(t)).collect::<Vec<_>>()),
        "observed_complete": false,
        "observed_at": now_z(),
    })
}

/// An item with no upstreams, expanded (`declared_upstreams: []`).
pub fn leaf(tag: &str) -> Value {
    item(tag, Some(&[]))
}

/// `v` with `key` set to `value`.
pub fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

/// Gzip of a JSON body (the SDK gzips bodies of 1 KiB and more, §1.3).
pub fn gzip(v: &Value) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(v.to_string().as_bytes()).unwrap();
    Bytes::from(enc.finish().unwrap())
}

/// A v2 refusal (§1.4): the status, `detail.code`, a message; returns `detail`.
#[track_caller]
pub fn refused(r: &TestResponse, status: u16, code: &str) -> Value {
    let body = r.expect(status);
    assert_eq!(
        body["detail"]["code"], code,
        "refusal code (status {status}); body: {body}"
    );
    assert!(
        body["detail"]["message"].is_string(),
        "refusal message; body: {body}"
    );
    body["detail"].clone()
}

/// Checks that do not stop a test at the first mismatch: the extra keys of refusal
/// bodies (§8) and other contract details. Every mismatch is listed when the checker
/// is dropped, so one run shows all of them.
#[derive(Default)]
pub struct Soft {
    misses: Vec<String>,
}

impl Soft {
    /// `detail[key] == want`.
    pub fn extra(&mut self, detail: &Value, key: &str, want: Value) {
        if detail.get(key) != Some(&want) {
            self.misses.push(format!(
                "{}.{key}: want {want}, got {} (detail {detail})",
                detail["code"],
                detail.get(key).map_or("<absent>".into(), |v| v.to_string())
            ));
        }
    }

    /// `detail[key]` is present and not null.
    pub fn has(&mut self, detail: &Value, key: &str) {
        if detail.get(key).is_none_or(Value::is_null) {
            self.misses.push(format!(
                "{}.{key}: absent (detail {detail})",
                detail["code"]
            ));
        }
    }

    /// `got == want`.
    pub fn eq_json(&mut self, got: &Value, want: &Value, what: &str) {
        if got != want {
            self.misses.push(format!("{what}: want {want}, got {got}"));
        }
    }

    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.misses.push(what.into());
        }
    }
}

impl Drop for Soft {
    fn drop(&mut self) {
        if !self.misses.is_empty() && !std::thread::panicking() {
            panic!(
                "{} contract mismatch(es):\n  {}",
                self.misses.len(),
                self.misses.join("\n  ")
            );
        }
    }
}

/// One environment's v2 API, through one credential.
#[derive(Clone)]
pub struct Api {
    pub c: Client,
    /// Appended to every path (`environment_id=` for bearer tokens).
    pub query: Option<String>,
}

/// A build with its first plan, on a local deployment.
#[derive(Clone, Debug)]
pub struct Flow {
    pub build: String,
    pub plan: String,
    pub dep: String,
}

impl Api {
    pub fn new(c: Client) -> Api {
        Api { c, query: None }
    }

    /// The bootstrap API key of a fixture (the SDK's usual credential).
    pub fn of(f: &Fixture) -> Api {
        Api::new(f.sdk())
    }

    fn url(&self, path: &str) -> String {
        let full = v2(path);
        match &self.query {
            None => full,
            Some(q) => {
                let sep = if full.contains('?') { '&' } else { '?' };
                format!("{full}{sep}{q}")
            }
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.c.get(&self.url(path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.c.post(&self.url(path), body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> TestResponse {
        self.c.json(Method::PUT, &self.url(path), body).await
    }

    pub async fn put_empty(&self, path: &str) -> TestResponse {
        self.c
            .send(Method::PUT, &self.url(path), &[], Bytes::new())
            .await
    }

    pub async fn delete(&self, path: &str) -> TestResponse {
        self.c.delete(&self.url(path)).await
    }

    /// A body-less POST (§1.3: `seal`, `cancel`, `retry`, notify, lease, …).
    pub async fn post_empty(&self, path: &str) -> TestResponse {
        self.c
            .send(Method::POST, &self.url(path), &[], Bytes::new())
            .await
    }

    /// A gzipped JSON POST (§1.3).
    pub async fn post_gzip(&self, path: &str, body: &Value) -> TestResponse {
        self.c
            .send(
                Method::POST,
                &self.url(path),
                &[
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip"),
                ],
                gzip(body),
            )
            .await
    }

    // --- deployments, builds, plans -------------------------------------------------

    /// `POST /deployments` (local, code `code`): the deployment's id.
    pub async fn local_deployment(&self, code: &str) -> String {
        let r = self
            .post(
                "/deployments",
                &json!({"id": new_id(), "kind": "local", "code_id": code}),
            )
            .await;
        assert!(
            r.status.is_success(),
            "local deployment: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        r.json()["id"].as_str().unwrap().to_owned()
    }

    /// A modal deployment of `app` (created, not yet activated): its id.
    pub async fn modal_deployment(&self, app: &str, code: &str) -> String {
        let id = new_id();
        let r = self
            .post(
                "/deployments",
                &json!({"id": id, "kind": "modal", "app_name": app, "code_id": code}),
            )
            .await;
        assert!(
            r.status.is_success(),
            "modal deployment: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        id
    }

    pub async fn activate(&self, dep: &str) -> Value {
        self.post_empty(&format!("/deployments/{dep}/activate"))
            .await
            .expect(200)
    }

    /// `POST /builds` with these root tags: the build id.
    pub async fn build(&self, roots: &[&str]) -> String {
        let id = new_id();
        let r = self.post("/builds", &build_body(&id, roots)).await;
        assert!(
            r.status.is_success(),
            "create build: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        id
    }

    /// `POST /builds/{b}/plans` with `settings` and the roots unexpanded.
    pub async fn create_plan(
        &self,
        build: &str,
        plan: &str,
        dep: &str,
        settings: Value,
        roots: &[&str],
    ) -> TestResponse {
        self.post(
            &format!("/builds/{build}/plans"),
            &plan_body(plan, dep, settings, roots),
        )
        .await
    }

    /// A new plan of `build` (must be created): its id.
    pub async fn plan(&self, build: &str, dep: &str, settings: Value, roots: &[&str]) -> String {
        let id = new_id();
        let r = self.create_plan(build, &id, dep, settings, roots).await;
        assert!(
            r.status.is_success(),
            "create plan: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["id"], id.as_str());
        id
    }

    pub async fn post_members(&self, plan: &str, items: &[Value]) -> TestResponse {
        self.post(
            &format!("/plans/{plan}/members"),
            &json!({ "items": items }),
        )
        .await
    }

    /// Registers a chunk that must be accepted: its MembersResult.
    pub async fn members(&self, plan: &str, items: &[Value]) -> Value {
        self.post_members(plan, items).await.expect(200)
    }

    pub async fn seal(&self, plan: &str) -> TestResponse {
        self.post_empty(&format!("/plans/{plan}/seal")).await
    }

    /// A running build with roots `roots`, its first plan on local deployment `code`,
    /// the chunk `items` registered, and sealed when asked.
    pub async fn flow_on(&self, code: &str, roots: &[&str], items: &[Value], seal: bool) -> Flow {
        let dep = self.local_deployment(code).await;
        let build = self.build(roots).await;
        let plan = self.plan(&build, &dep, json!({}), roots).await;
        if !items.is_empty() {
            self.members(&plan, items).await;
        }
        if seal {
            self.seal(&plan).await.expect(200);
        }
        Flow { build, plan, dep }
    }

    pub async fn flow(&self, roots: &[&str], items: &[Value], seal: bool) -> Flow {
        self.flow_on("code-1", roots, items, seal).await
    }

    /// The common shape: root `r` depends on `u`; registered and sealed.
    pub async fn chain(&self) -> Flow {
        self.flow(&["r"], &[leaf("u"), item("r", Some(&["u"]))], true)
            .await
    }

    // --- member transitions ---------------------------------------------------------

    pub async fn act(&self, plan: &str, tag: &str, action: &str, body: &Value) -> TestResponse {
        self.post(
            &format!("/plans/{plan}/members/{}/{action}", tid(tag)),
            body,
        )
        .await
    }

    pub async fn act_empty(&self, plan: &str, tag: &str, action: &str) -> TestResponse {
        self.post_empty(&format!("/plans/{plan}/members/{}/{action}", tid(tag)))
            .await
    }

    /// A claiming start by `exec` (TTL `ttl`, default when `None`).
    pub async fn start(&self, plan: &str, tag: &str, exec: &str, ttl: Option<i64>) -> TestResponse {
        self.act(plan, tag, "start", &start_body(exec, ttl)).await
    }

    /// A granted claiming start by a new execution: its id.
    pub async fn claim(&self, plan: &str, tag: &str, ttl: Option<i64>) -> String {
        let exec = new_id();
        let t = self.start(plan, tag, &exec, ttl).await.expect(200);
        assert_eq!(t["status"], "running", "{t}");
        assert_eq!(t["applied"], true, "{t}");
        assert_eq!(t["execution_id"], exec.as_str(), "{t}");
        exec
    }

    pub async fn complete(&self, plan: &str, tag: &str, exec: &str) -> TestResponse {
        self.act(plan, tag, "complete", &json!({ "execution_id": exec }))
            .await
    }

    pub async fn fail(&self, plan: &str, tag: &str, exec: &str) -> TestResponse {
        self.act(
            plan,
            tag,
            "fail",
            &json!({"execution_id": exec, "error_message": "boom"}),
        )
        .await
    }

    /// Claims and completes a task.
    pub async fn run(&self, plan: &str, tag: &str) -> String {
        let exec = self.claim(plan, tag, None).await;
        let t = self.complete(plan, tag, &exec).await.expect(200);
        assert_eq!(t["status"], "completed", "{t}");
        exec
    }

    pub async fn renew(&self, tag: &str, exec: &str, ttl: Option<i64>) -> TestResponse {
        let mut b = json!({ "execution_id": exec });
        if let Some(ttl) = ttl {
            b["claim_ttl_seconds"] = json!(ttl);
        }
        self.post(&format!("/tasks/{}/claim/renew", tid(tag)), &b)
            .await
    }

    // --- reads ----------------------------------------------------------------------

    pub async fn task(&self, tag: &str) -> TestResponse {
        self.get(&format!("/tasks/{}", tid(tag))).await
    }

    /// The task's status (the task must exist).
    pub async fn status(&self, tag: &str) -> String {
        self.task(tag).await.expect(200)["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Asserts that no task row exists for each tag (404 `unknown_task`).
    pub async fn assert_no_tasks(&self, tags: &[&str]) {
        for tag in tags {
            let d = refused(&self.task(tag).await, 404, "unknown_task");
            assert_eq!(d["task_id"], tid(tag).as_str(), "{d}");
        }
    }

    /// Every execution of a task, ended ones included, newest first.
    pub async fn executions(&self, tag: &str) -> Vec<Value> {
        let r = self
            .get(&format!(
                "/tasks/{}/executions?include_ended=true",
                tid(tag)
            ))
            .await
            .expect(200);
        r["executions"].as_array().unwrap().clone()
    }

    /// One execution of a task's ledger.
    pub async fn execution(&self, tag: &str, exec: &str) -> Value {
        self.executions(tag)
            .await
            .into_iter()
            .find(|e| e["id"] == exec)
            .unwrap_or_else(|| panic!("execution {exec} not in the ledger of {tag}"))
    }

    pub async fn events(&self, tag: &str) -> Vec<Value> {
        let r = self
            .get(&format!("/tasks/{}/events", tid(tag)))
            .await
            .expect(200);
        r["events"].as_array().unwrap().clone()
    }

    pub async fn frontier(&self, build: &str) -> Value {
        self.get(&format!("/builds/{build}/frontier"))
            .await
            .expect(200)
    }

    pub async fn plan_detail(&self, plan: &str) -> Value {
        self.get(&format!("/plans/{plan}")).await.expect(200)
    }

    pub async fn get_build(&self, build: &str) -> Value {
        self.get(&format!("/builds/{build}")).await.expect(200)
    }
}

pub fn build_body(id: &str, roots: &[&str]) -> Value {
    let mut ids: Vec<String> = roots.iter().map(|t| tid(t)).collect();
    ids.sort();
    ids.dedup();
    json!({ "id": id, "root_task_ids": ids })
}

pub fn plan_body(plan: &str, dep: &str, settings: Value, roots: &[&str]) -> Value {
    let roots: Vec<Value> = roots.iter().map(|t| item(t, None)).collect();
    json!({"plan_id": plan, "deployment_id": dep, "settings": settings, "roots": roots})
}

/// A claiming start's body as the resident engine sends it (§7.1).
pub fn start_body(exec: &str, ttl: Option<i64>) -> Value {
    let mut b = json!({
        "execution_id": exec,
        "claim": true,
        "executor": "local",
        "executor_ref": "pid-1",
    });
    if let Some(ttl) = ttl {
        b["claim_ttl_seconds"] = json!(ttl);
    }
    b
}

/// Task ids of a frontier list (`runnable`, `running`, `discovery_jobs`).
pub fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list, got {list}"))
        .iter()
        .map(|m| m["task_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Sorted task ids of tags.
pub fn tids(tags: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = tags.iter().map(|t| tid(t)).collect();
    v.sort();
    v
}
