//! The v2 registry rows of the load benchmark (`/api/v2`, the current SDK): member
//! chunks of 100, claiming start + complete, the frontier of a 10 000-member plan (read
//! alone, after each completion of a member, and after each member registered), and a
//! `GET /builds` page. Included by `benches/load.rs`, whose driver they use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::Method;
use serde_json::{json, Value};

use super::{drive, ok, Conn, Options, Row, Target};

/// A v2 registration item: expanded (`declared` upstream hashes) unless `None`.
fn item(task: &str, declared: Option<Vec<String>>, complete: bool) -> Value {
    json!({
        "task_id": task,
        "task_namespace": "bench",
        "task_name": "Task",
        "version": null,
        "output_uri": null,
        "instance_hash": task,
        "body": {"task": task, "group": task.len() % 7},
        "declared_upstreams": declared,
        "observed_complete": complete,
        "observed_at": "2026-01-01T00:00:00Z",
    })
}

async fn post(conn: &mut Conn, path: &str, body: &Value) -> Value {
    let (status, bytes) = conn
        .call(Method::POST, path, Some(body))
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    assert!(
        status < 400,
        "POST {path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// A local deployment (once per run) and a build whose active plan holds `root`.
/// Returns (plan id, deployment id).
async fn plan_with_root(conn: &mut Conn, root: &str) -> (String, String) {
    let d = post(
        conn,
        "/api/v2/deployments",
        &json!({"id": uuid::Uuid::now_v7(), "kind": "local", "code_id": "bench"}),
    )
    .await;
    let deployment = d["id"].as_str().expect("deployment id").to_string();
    let build = uuid::Uuid::now_v7().to_string();
    post(
        conn,
        "/api/v2/builds",
        &json!({"id": build, "root_task_ids": [root]}),
    )
    .await;
    let plan = uuid::Uuid::now_v7().to_string();
    post(
        conn,
        &format!("/api/v2/builds/{build}/plans"),
        &json!({"plan_id": plan, "deployment_id": deployment, "settings": {}, "roots": [item(root, None, false)]}),
    )
    .await;
    (plan, deployment)
}

/// Registers `tasks` as expanded leaves of `plan` in chunks of 1000 (setup).
async fn register_leaves(conn: &mut Conn, plan: &str, tasks: &[String]) {
    for chunk in tasks.chunks(1000) {
        let items: Vec<Value> = chunk.iter().map(|t| item(t, Some(vec![]), false)).collect();
        post(
            conn,
            &format!("/api/v2/plans/{plan}/members"),
            &json!({"items": items}),
        )
        .await;
    }
}

pub async fn rows(target: &Target, opts: &Options, rows: &mut Vec<Row>) {
    let (c, s) = (opts.clients, opts.seconds);
    let prefix = uuid::Uuid::now_v7().simple().to_string();

    let members_row = "v2 plan members (items/s, chunks of 100)";
    if opts.wants(members_row) {
        let mut setup = Conn::open(target.addr, target.key_headers()).await;
        let (plan, _) = plan_with_root(&mut setup, &format!("{prefix}-m-root")).await;
        let prefix = prefix.clone();
        rows.push(
            drive(
                members_row,
                target,
                target.key_headers(),
                c,
                s,
                move |conn, client, i| {
                    let path = format!("/api/v2/plans/{plan}/members");
                    let items: Vec<Value> = (0..100)
                        .map(|k| item(&format!("{prefix}-m-{client}-{i}-{k}"), Some(vec![]), false))
                        .collect();
                    let body = json!({"items": items});
                    Box::pin(async move {
                        (100, ok(&conn.call(Method::POST, &path, Some(&body)).await))
                    })
                },
            )
            .await,
        );
    }

    let claims_row = "v2 claiming start + complete";
    if opts.wants(claims_row) {
        // Every pair takes a fresh runnable member: a pool per client, sized for a
        // generous 2 000 pairs/s per client.
        let per_client = (s * 2_000.0).ceil() as usize;
        let mut setup = Conn::open(target.addr, target.key_headers()).await;
        let (plan, _) = plan_with_root(&mut setup, &format!("{prefix}-c-root")).await;
        let pool: Vec<String> = (0..c * per_client)
            .map(|i| format!("{prefix}-c-{i}"))
            .collect();
        register_leaves(&mut setup, &plan, &pool).await;
        let pool = Arc::new(pool);
        rows.push(
            drive(claims_row, target, target.key_headers(), c, s, move |conn, client, i| {
                let task = pool[(client * per_client + i as usize) % pool.len()].clone();
                let base = format!("/api/v2/plans/{plan}/members/{task}");
                let exec = uuid::Uuid::now_v7().to_string();
                Box::pin(async move {
                    let start = json!({"execution_id": exec, "claim": true, "claim_ttl_seconds": 120, "executor": "bench"});
                    let a = conn.call(Method::POST, &format!("{base}/start"), Some(&start)).await;
                    let done = json!({"execution_id": exec});
                    let b = conn.call(Method::POST, &format!("{base}/complete"), Some(&done)).await;
                    (2, ok(&a) && ok(&b))
                })
            })
            .await,
        );
    }

    let members = if opts.smoke { 1_000 } else { 10_000 };
    let frontier_row = format!("v2 GET frontier ({members}-member plan)");
    if opts.wants(&frontier_row) {
        let (build, _) = frontier_build(target, &prefix, members).await;
        rows.push(
            drive(
                &frontier_row,
                target,
                target.key_headers(),
                c,
                s,
                move |conn, _, _| {
                    let path = format!("/api/v2/builds/{build}/frontier");
                    Box::pin(async move { (1, ok(&conn.call(Method::GET, &path, None).await)) })
                },
            )
            .await,
        );
    }

    // The SDK's pattern while the build runs: a worker completes a member, then reads
    // the frontier for its next one. Every read follows a write to the build, so none
    // is the kept frontier; the latency is the pair's (an upper bound of the read's).
    let busy_row = format!("v2 complete a member + GET frontier ({members}-member plan)");
    if opts.wants(&busy_row) {
        let busy = format!("{prefix}-busy");
        let (build, plan) = frontier_build(target, &busy, members).await;
        let chains = members / 100;
        // Reads made without a completion before them: by clients that own no chain
        // (more clients than chains) or whose chains are all complete.
        let bare = Arc::new(AtomicU64::new(0));
        let counted = bare.clone();
        // The plan holds 5 000 completions to make; with the frontier brought up to
        // date rather than recomputed, a few thousand iterations a second use them up
        // in one or two seconds, so the row runs 0.6 s at most.
        rows.push(
            drive(
                &busy_row,
                target,
                target.key_headers(),
                c,
                s.min(0.6),
                move |conn, client, i| {
                    // Client `client` owns chains client, client + c, …, a level at a time.
                    let own = chains.saturating_sub(client).div_ceil(c);
                    let level = (i as usize).checked_div(own).unwrap_or(50);
                    let member = (level < 50).then(|| {
                        let chain = client + c * (i as usize % own);
                        format!("/api/v2/plans/{plan}/members/{}", chain_member(&busy, chain, 50 + level))
                    });
                    if member.is_none() {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    let frontier = format!("/api/v2/builds/{build}/frontier");
                    let exec = uuid::Uuid::now_v7().to_string();
                    Box::pin(async move {
                        let mut wrote = true;
                        if let Some(base) = member {
                            let start = json!({"execution_id": exec, "claim": true, "claim_ttl_seconds": 120, "executor": "bench"});
                            let a = conn.call(Method::POST, &format!("{base}/start"), Some(&start)).await;
                            let done = json!({"execution_id": exec});
                            let b = conn.call(Method::POST, &format!("{base}/complete"), Some(&done)).await;
                            wrote = ok(&a) && ok(&b);
                        }
                        let f = conn.call(Method::GET, &frontier, None).await;
                        (1, wrote && ok(&f))
                    })
                },
            )
            .await,
        );
        let bare = bare.load(Ordering::Relaxed);
        if bare > 0 {
            println!("({busy_row}: {bare} reads without a completion before them: more clients than chains, or the chains ran out)");
        }
    }

    // Dynamic dependencies: a worker registers what a task yielded, then reads the
    // frontier. The member arrives complete (a target that exists), so the listing
    // stays one member per chain; every read follows a member row's change.
    let grow_row = format!("v2 register a member + GET frontier ({members}-member open plan)");
    if opts.wants(&grow_row) {
        let grow = format!("{prefix}-grow");
        let (build, plan) = frontier_build_open(target, &grow, members).await;
        rows.push(
            drive(
                &grow_row,
                target,
                target.key_headers(),
                c,
                s,
                move |conn, client, i| {
                    let members = format!("/api/v2/plans/{plan}/members");
                    let new = item(&format!("{grow}-y-{client}-{i}"), Some(vec![]), true);
                    let body = json!({"items": [new]});
                    let frontier = format!("/api/v2/builds/{build}/frontier");
                    Box::pin(async move {
                        let a = conn.call(Method::POST, &members, Some(&body)).await;
                        let f = conn.call(Method::GET, &frontier, None).await;
                        (1, ok(&a) && ok(&f))
                    })
                },
            )
            .await,
        );
    }

    let builds_row = "v2 GET /builds page (limit 100)";
    if opts.wants(builds_row) {
        let mut setup = Conn::open(target.addr, target.key_headers()).await;
        for i in 0..500 {
            let root = format!("{prefix}-b-{i}");
            post(
                &mut setup,
                "/api/v2/builds",
                &json!({"id": uuid::Uuid::now_v7(), "root_task_ids": [root]}),
            )
            .await;
        }
        rows.push(
            drive(
                builds_row,
                target,
                target.key_headers(),
                c,
                s,
                |conn, _, _| {
                    Box::pin(async move {
                        (
                            1,
                            ok(&conn
                                .call(Method::GET, "/api/v2/builds?limit=100", None)
                                .await),
                        )
                    })
                },
            )
            .await,
        );
    }
}

/// The task id of member `k` of chain `chain` in [`frontier_build`].
fn chain_member(prefix: &str, chain: usize, k: usize) -> String {
    format!("{prefix}-f-{chain}-{k}")
}

/// A build whose active plan holds `members` tasks in chains of 100, each chain's
/// first half observed complete: the frontier lists one runnable member per chain.
/// Returns (build id, plan id).
async fn frontier_build(target: &Target, prefix: &str, members: usize) -> (String, String) {
    let (build, plan) = frontier_build_open(target, prefix, members).await;
    let mut setup = Conn::open(target.addr, target.key_headers()).await;
    post(
        &mut setup,
        &format!("/api/v2/plans/{plan}/seal"),
        &Value::Null,
    )
    .await;
    (build, plan)
}

/// [`frontier_build`] with its plan left open (unsealed), so members can still join.
async fn frontier_build_open(target: &Target, prefix: &str, members: usize) -> (String, String) {
    let mut setup = Conn::open(target.addr, target.key_headers()).await;
    let chains = members / 100;
    let id = |chain: usize, k: usize| chain_member(prefix, chain, k);
    let roots: Vec<String> = (0..chains).map(|ch| id(ch, 99)).collect();
    let d = post(
        &mut setup,
        "/api/v2/deployments",
        &json!({"id": uuid::Uuid::now_v7(), "kind": "local", "code_id": "bench"}),
    )
    .await;
    let build = uuid::Uuid::now_v7().to_string();
    post(
        &mut setup,
        "/api/v2/builds",
        &json!({"id": build, "root_task_ids": roots}),
    )
    .await;
    let plan = uuid::Uuid::now_v7().to_string();
    let root_items: Vec<Value> = roots.iter().map(|r| item(r, None, false)).collect();
    post(
        &mut setup,
        &format!("/api/v2/builds/{build}/plans"),
        &json!({"plan_id": plan, "deployment_id": d["id"], "settings": {}, "roots": root_items}),
    )
    .await;
    for chain in 0..chains {
        let items: Vec<Value> = (0..100)
            .map(|k| {
                let ups = if k == 0 {
                    vec![]
                } else {
                    vec![id(chain, k - 1)]
                };
                item(&id(chain, k), Some(ups), k < 50)
            })
            .collect();
        post(
            &mut setup,
            &format!("/api/v2/plans/{plan}/members"),
            &json!({"items": items}),
        )
        .await;
    }
    (build, plan)
}
