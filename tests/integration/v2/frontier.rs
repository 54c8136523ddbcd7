//! The frontier and its closure step (§6.4): instances and their edges are shared by
//! every plan of a scope, so a build inherits the structure another build recorded;
//! a closure that reaches another instance of a member fails the build. And
//! skip-blocked (§6.5).

use std::collections::HashMap;

use serde_json::{json, Value};

use super::*;

/// The resident engine's sequence for a two-task chain (§7.1), to the end.
#[tokio::test]
async fn a_plain_build_runs_to_completion() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let fl = api.chain().await;
    let fr = api.frontier(&fl.build).await;
    assert_eq!(ids(&fr["runnable"]), vec![tid("u")], "{fr}");
    assert_eq!(fr["plan_complete"], false);
    let eu = api.claim(&fl.plan, "u", Some(120)).await;
    api.renew("u", &eu, Some(120)).await.expect(200);
    api.complete(&fl.plan, "u", &eu).await.expect(200);
    let fr = api.frontier(&fl.build).await;
    assert_eq!(ids(&fr["runnable"]), vec![tid("r")], "{fr}");
    let er = api.claim(&fl.plan, "r", Some(120)).await;
    api.act(
        &fl.plan,
        "r",
        "artifacts",
        &json!({"execution_id": er, "artifacts": [{"type": "json", "name": "out", "body": {"rows": 3}}]}),
    )
    .await
    .expect(200);
    api.complete(&fl.plan, "r", &er).await.expect(200);
    let fr = api.frontier(&fl.build).await;
    assert_eq!(fr["plan_complete"], true, "{fr}");
    assert_eq!(fr["runnable"], json!([]));
    assert_eq!(fr["running"], json!([]));
    let b = api
        .post(
            &format!("/builds/{}/complete", fl.build),
            &json!({"force": false}),
        )
        .await
        .expect(200);
    assert_eq!(b["status"], "completed");
    let pd = api.plan_detail(&fl.plan).await;
    assert_eq!(pd["member_counts"], json!({"completed": 2}), "{pd}");
}

#[tokio::test]
async fn the_closure_admits_what_the_scope_recorded() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    // Build A records r → u → w in the scope (code-1, {}).
    api.flow(
        &["r"],
        &[leaf("w"), item("u", Some(&["w"])), item("r", Some(&["u"]))],
        true,
    )
    .await;
    // Build B asks for r and registers nothing more: its plan holds r only.
    let b = api.flow(&["r"], &[], false).await;
    assert_eq!(api.plan_detail(&b.plan).await["member_count"], 1);
    let fr = api.frontier(&b.build).await;
    assert_eq!(fr["closure"]["admitted"], 2, "{fr}");
    assert_eq!(fr["closure"]["conflicts"], json!([]), "{fr}");
    assert_eq!(fr["closure"]["build_failed"], false, "{fr}");
    assert_eq!(ids(&fr["runnable"]), vec![tid("w")], "{fr}");
    assert_eq!(
        fr["discovery_jobs"],
        json!([]),
        "r and u are expanded: {fr}"
    );
    assert_eq!(api.plan_detail(&b.plan).await["member_count"], 3);
    // Nothing more to admit on the next read.
    let again = api.frontier(&b.build).await;
    assert!(
        again["closure"].is_null() || again["closure"]["admitted"] == 0,
        "{again}"
    );
    // The seal accepts the inherited expansion of the root.
    api.seal(&b.plan).await.expect(200);
}

#[tokio::test]
async fn a_closure_conflict_fails_the_build() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    // The scope records r → u (instance `u`).
    api.flow(&["r"], &[leaf("u"), item("r", Some(&["u"]))], true)
        .await;
    // Build B holds u through another instance before the closure walks r's edge.
    let other_u = with(leaf("u"), "instance_hash", json!(ih("u-2")));
    let other_u = with(
        other_u,
        "body",
        json!({"__namespace": "tests", "__name": name("u"), "tag": "u", "n": 2}),
    );
    let b = api.flow(&["r"], &[other_u], false).await;
    let instances = api.task("u").await.expect(200)["instances"].clone();
    let id_of = |hash: &str| -> Value {
        instances
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["instance_hash"] == hash)
            .unwrap_or_else(|| panic!("{hash} in {instances}"))["id"]
            .clone()
    };

    let fr = api.frontier(&b.build).await;
    let conflicts = &fr["closure"]["conflicts"];
    assert_eq!(conflicts.as_array().map(Vec::len), Some(1), "{fr}");
    assert_eq!(conflicts[0]["task_id"], tid("u").as_str());
    assert_eq!(conflicts[0]["fields"], json!(["n"]));
    assert_eq!(conflicts[0]["member_instance_id"], id_of(&ih("u-2")));
    assert_eq!(conflicts[0]["other_instance_id"], id_of(&ih("u")));
    assert_eq!(fr["closure"]["build_failed"], true, "{fr}");
    assert_eq!(fr["build_status"], "failed");
    let build = api.get_build(&b.build).await;
    assert_eq!(build["status"], "failed");
    assert!(
        build["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("instance_conflict")),
        "{build}"
    );
    let d = refused(
        &api.post_empty(&format!("/builds/{}/complete", b.build))
            .await,
        409,
        "build_terminal",
    );
    assert_eq!(d["build_status"], "failed");
}

#[tokio::test]
async fn skip_blocked_skips_what_a_failed_upstream_blocks() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    // r depends on u and v; v depends on u.
    let fl = api
        .flow(
            &["r"],
            &[
                leaf("u"),
                item("v", Some(&["u"])),
                item("r", Some(&["u", "v"])),
                leaf("free"),
            ],
            true,
        )
        .await;
    let e = api.claim(&fl.plan, "u", None).await;
    api.fail(&fl.plan, "u", &e).await.expect(200);
    let s = api
        .post_empty(&format!("/builds/{}/skip-blocked", fl.build))
        .await
        .expect(200);
    let mut skipped: Vec<String> = s["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    skipped.sort();
    assert_eq!(skipped, tids(&["r", "v"]), "{s}");
    assert_eq!(api.status("r").await, "skipped");
    assert_eq!(api.status("free").await, "pending");
    assert_eq!(api.status("u").await, "failed");
    let again = api
        .post_empty(&format!("/builds/{}/skip-blocked", fl.build))
        .await
        .expect(200);
    assert_eq!(again["skipped"], json!([]));
    let fr = api.frontier(&fl.build).await;
    // Skipped is actionable again once its upstreams complete; here u failed.
    assert_eq!(ids(&fr["runnable"]), vec![tid("free")], "{fr}");
}

/// The server keeps a build's frontier between reads (`reads::FrontierMemo`); each kind
/// of write the frontier depends on, and the clock passing a live claim's expiry, must
/// show on the next read. Every step reads twice: the second read is the kept one.
#[tokio::test]
async fn a_kept_frontier_follows_every_write_and_the_clock() {
    let f = Fixture::start().await;
    let api = Api::of(&f);
    let fl = api
        .flow(
            &["r"],
            &[
                leaf("a"),
                leaf("b"),
                item("c", Some(&["a"])),
                item("d", None),
                item("r", Some(&["b", "d"])),
            ],
            false,
        )
        .await;
    let p = &fl.plan;
    let read = |want_runnable: &'static [&'static str],
                want_running: &'static [&'static str],
                want_discovery: &'static [&'static str],
                step: &'static str| {
        let api = &api;
        let build = fl.build.clone();
        async move {
            for pass in ["first", "kept"] {
                let fr = api.frontier(&build).await;
                assert_eq!(
                    ids(&fr["runnable"]),
                    tids(want_runnable),
                    "{step}, {pass}: {fr}"
                );
                assert_eq!(
                    ids(&fr["running"]),
                    tids(want_running),
                    "{step}, {pass}: {fr}"
                );
                assert_eq!(
                    ids(&fr["discovery_jobs"]),
                    tids(want_discovery),
                    "{step}, {pass}: {fr}"
                );
            }
            api.frontier(&build).await
        }
    };
    read(&["a", "b"], &[], &["d"], "registered").await;

    // A claim (a task row), then the clock: a lapsed claim is runnable again.
    let eb = api.claim(p, "b", Some(1)).await;
    read(&["a"], &["b"], &["d"], "b claimed").await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    read(&["a", "b"], &[], &["d"], "b's claim lapsed").await;

    // Member rows only: an exclusion cascades from a to c.
    let x = api
        .act(p, "a", "exclude", &json!({"reason": "operator"}))
        .await
        .expect(200);
    assert_eq!(x["excluded"], json!([tid("a"), tid("c")]), "{x}");
    read(&["b"], &[], &["d"], "a excluded").await;

    // d's instance gains its (empty) edges: its member row is rewritten.
    api.members(p, &[leaf("d")]).await;
    read(&["b", "d"], &[], &[], "d expanded").await;

    // Executions: an interrupted attempt counts on the member.
    let ed = api.claim(p, "d", Some(60)).await;
    read(&["b"], &["d"], &[], "d claimed").await;
    let body = json!({"execution_id": ed, "error_message": "sigterm"});
    api.act(p, "d", "interrupt", &body).await.expect(200);
    let fr = read(&["b", "d"], &[], &[], "d interrupted").await;
    let runnable = fr["runnable"].as_array().unwrap();
    let d = runnable
        .iter()
        .find(|m| m["task_id"] == tid("d").as_str())
        .unwrap();
    assert_eq!(
        (d["attempts"].as_u64(), d["interruptions"].as_u64()),
        (Some(1), Some(1)),
        "{fr}"
    );

    // The lapsed claim of b is taken over and completes; the build's status shows.
    let eb2 = api.claim(p, "b", Some(60)).await;
    assert_ne!(eb, eb2);
    api.complete(p, "b", &eb2).await.expect(200);
    read(&["d"], &[], &[], "b completed").await;
    api.post_empty(&format!("/builds/{}/cancel", fl.build))
        .await
        .expect(200);
    let fr = api.frontier(&fl.build).await;
    assert_eq!(fr["build_status"], "cancelled", "{fr}");
}

/// A kept frontier brought up to date with only the tasks that changed
/// (`store::change_log`), or placed again from its rows with the states of the tasks
/// that did not change, must read exactly as one computed from scratch. Random runs of
/// starts, completions, failures, interruptions, artifacts, new members and an exclusion
/// over a small DAG, with a new plan and a seal on the way; after each run the kept
/// frontier is read (first once before it, so that the read after it is the updated
/// one), then the server restarts (nothing kept, nothing logged) and the same frontier
/// is computed in full. Claims last a minute, so the clock between the two reads places
/// nothing differently.
#[tokio::test]
async fn an_updated_frontier_reads_as_one_computed_in_full() {
    let mut f = Fixture::start().await;
    let mut tags: Vec<String> = ["a", "b", "c", "d", "e", "r"].map(String::from).to_vec();
    // Every item registered, so that a new plan can take them all.
    let mut items = vec![
        leaf("a"),
        leaf("b"),
        item("c", Some(&["a"])),
        item("d", Some(&["a", "b"])),
        item("e", Some(&["c", "d"])),
        item("r", Some(&["e"])),
    ];
    // Unsealed, so that members can join while the build runs.
    let fl = Api::of(&f).flow(&["r"], &items, false).await;
    let mut p = fl.plan.clone();
    let listed = |fr: &Value| {
        [
            "runnable",
            "running",
            "discovery_jobs",
            "plan_complete",
            "build_status",
        ]
        .map(|k| (k, fr[k].clone()))
    };
    // A fixed-seed generator: a failing run is the same run again.
    let mut seed: u64 = 0x5eed_f00d;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    let mut execs: HashMap<String, String> = HashMap::new();
    let mut updates = 0;
    let mut replacement = None;
    for round in 0..48 {
        let api = Api::of(&f);
        let before = api.frontier(&fl.build).await;
        let mut done = Vec::new();
        // Plan and member rows change too: the states kept must still be right.
        match round {
            20 => {
                // Other settings: a replacement plan, active once sealed.
                let next = api
                    .plan(&fl.build, &fl.dep, json!({"round": "20"}), &["r"])
                    .await;
                api.members(&next, &items).await;
                replacement = Some(next);
                done.push("replacement plan".to_string());
            }
            40 => {
                let next = replacement.take().expect("created in round 20");
                api.members(&next, &items).await;
                api.seal(&next).await.expect(200);
                p = next;
                done.push("replacement sealed".to_string());
            }
            _ => {}
        }
        for _ in 0..1 + next(3) {
            // Mostly a task the frontier lists (others are refused, and move nothing).
            let live: Vec<String> = ["runnable", "running"]
                .iter()
                .flat_map(|k| before[*k].as_array().into_iter().flatten())
                .filter_map(|m| m["body"]["tag"].as_str().map(String::from))
                .collect();
            let tag = match next(5) {
                0 => tags[next(tags.len())].clone(),
                _ if live.is_empty() => tags[next(tags.len())].clone(),
                _ => live[next(live.len())].clone(),
            };
            let t = tag.as_str();
            let exec = execs.get(t).cloned();
            // A task is started until an attempt of it is known, and that attempt then
            // ends (or is told of) before another starts.
            let action = match (next(10), exec) {
                (_, None) => {
                    let exec = new_id();
                    let answer = api.start(&p, t, &exec, Some(60)).await;
                    if answer.status == 200 {
                        execs.insert(tag.clone(), exec);
                    }
                    "start"
                }
                // The root last: the build ends with it.
                (0..=3, Some(e)) if t != "r" || round >= 44 => {
                    api.complete(&p, t, &e).await;
                    execs.remove(t);
                    "complete"
                }
                (4, Some(e)) => {
                    api.fail(&p, t, &e).await;
                    execs.remove(t);
                    "fail"
                }
                (5, Some(e)) => {
                    let body = json!({"execution_id": e, "error_message": "sigterm"});
                    api.act(&p, t, "interrupt", &body).await;
                    execs.remove(t);
                    "interrupt"
                }
                (6, Some(e)) => {
                    let body = json!({"execution_id": e, "artifacts": [{"type": "json", "name": "out", "body": {"round": round}}]});
                    api.act(&p, t, "artifacts", &body).await;
                    "artifacts"
                }
                // A new member downstream of this one, while the plan is open.
                (7, Some(_)) if round < 40 => {
                    let new = format!("n{round}");
                    let it = item(&new, Some(&[t]));
                    api.members(&p, std::slice::from_ref(&it)).await;
                    items.push(it);
                    tags.push(new);
                    "register a member downstream of"
                }
                (_, Some(_)) if round == 34 => {
                    api.act(&p, t, "exclude", &json!({"reason": "operator"}))
                        .await;
                    "exclude"
                }
                // An attempt that leaves the task where it was listed: only its
                // counts show it.
                (_, Some(_)) => {
                    let exec = new_id();
                    if api.start(&p, t, &exec, Some(60)).await.status == 200 {
                        let body = json!({"execution_id": exec, "error_message": "sigterm"});
                        api.act(&p, t, "interrupt", &body).await;
                    }
                    "start + interrupt"
                }
            };
            done.push(format!("{action} {tag}"));
        }
        let updated = api.frontier(&fl.build).await;
        updates += usize::from(listed(&updated) != listed(&before));
        let Fixture { server, creds } = f;
        f = Fixture {
            server: server.restart().await,
            creds,
        };
        let full = Api::of(&f).frontier(&fl.build).await;
        assert_eq!(
            listed(&updated),
            listed(&full),
            "round {round} after {done:?}:\nupdated {updated}\nfull {full}"
        );
    }
    // The runs moved the frontier: the comparison was not of unchanged reads.
    assert!(updates >= 12, "only {updates} rounds changed the frontier");
}
