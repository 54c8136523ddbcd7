//! Builds list filters (P4), polls whose ETags come from the per-build change counters
//! (ui.md §9 row 2), task dependencies both ways (P6), the explorer's columns,
//! click-to-filter links, autocomplete JSON and "show in graph" (P7), and the locks
//! page's countdown data (P8).

use serde_json::json;

use super::{json_of, seed_dag, text, Browser};
use crate::tasks::{hash, new_build_id, post_empty, reg, register, run_task, task_event, Fixture};

/// The section of `html` from `from` up to `to` (or the end).
fn between<'a>(html: &'a str, from: &str, to: &str) -> &'a str {
    let start = html
        .find(from)
        .unwrap_or_else(|| panic!("{from} in {html}"));
    let rest = &html[start..];
    &rest[..rest.find(to).unwrap_or(rest.len())]
}

/// The build ids of the list's rows, in page order.
fn build_rows(html: &str) -> Vec<String> {
    html.match_indices("<tr data-build=\"")
        .map(|(at, m)| {
            let rest = &html[at + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn builds_list_filters_by_status_and_text_across_protocols_and_pages() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    // 22 v1 builds (commit abc123): one failed, one completed, 20 running.
    let mut v1 = Vec::new();
    for _ in 0..22 {
        v1.push(new_build_id(&sdk).await);
    }
    post_empty(&sdk, &format!("/api/v1/builds/{}/fail", v1[0]))
        .await
        .expect(200);
    post_empty(&sdk, &format!("/api/v1/builds/{}/complete", v1[1]))
        .await
        .expect(200);
    // Two v2 builds: one running, one failed.
    let api = crate::v2::Api::of(&f);
    let v2_running = api.build(&["r1"]).await;
    let v2_failed = api.build(&["r2"]).await;
    api.post(
        &format!("/builds/{v2_failed}/fail"),
        &json!({"error_message": "boom"}),
    )
    .await
    .expect(200);

    let all = text(&b.get(&format!("{base}/builds")).await);
    // The counters are filter links with their counts.
    let bar = between(&all, "aria-label=\"Filter by status\"", "</nav>");
    assert!(bar.contains("24</span> all"), "{bar}");
    assert!(
        bar.contains(&format!("href=\"{base}/builds?status=failed\"")),
        "{bar}"
    );
    assert!(bar.contains("2</span> failed"), "{bar}");
    assert!(bar.contains("21</span> running"), "{bar}");
    assert!(bar.contains("1</span> completed"), "{bar}");

    let failed = text(&b.get(&format!("{base}/builds?status=failed")).await);
    let mut rows = build_rows(&failed);
    rows.sort();
    let mut want = vec![v1[0].clone(), v2_failed.clone()];
    want.sort();
    assert_eq!(rows, want, "only the failed builds of both protocols");
    assert!(failed.contains("2 builds match"), "{failed}");
    assert!(failed.contains("aria-current=\"page\""));

    // Paging keeps the filter: 21 running builds are two pages.
    let running = text(&b.get(&format!("{base}/builds?status=running")).await);
    assert_eq!(build_rows(&running).len(), 20);
    let older = format!("{base}/builds?status=running&amp;page=2");
    assert!(running.contains(&older), "{running}");
    let page2 = text(&b.get(&format!("{base}/builds?status=running&page=2")).await);
    let last = build_rows(&page2);
    assert_eq!(last.len(), 1);
    assert!(
        page2.contains(&format!("{base}/builds?status=running\"")),
        "newer link keeps it"
    );
    assert!(!build_rows(&running).contains(&last[0]));

    // Text: a commit matches every v1 build; part of an id one build; both filters at once.
    let commit = text(&b.get(&format!("{base}/builds?q=ABC123")).await);
    assert!(commit.contains("22 builds match"), "{commit}");
    assert!(!build_rows(&commit).contains(&v2_running));
    let one = text(
        // the id's random tail: builds made in one millisecond share its head
        &b.get(&format!("{base}/builds?q={}", &v2_running[24..]))
            .await,
    );
    assert_eq!(build_rows(&one), [v2_running.as_str()]);
    let both = text(
        &b.get(&format!("{base}/builds?q=abc123&status=failed"))
            .await,
    );
    assert_eq!(build_rows(&both), [v1[0].as_str()]);
    assert!(
        both.contains("name=\"status\" value=\"failed\""),
        "the form keeps the status"
    );
    let none = text(&b.get(&format!("{base}/builds?q=no-such-build")).await);
    assert!(none.contains("No builds match"), "{none}");
    // An unknown status is no filter.
    assert_eq!(
        build_rows(&text(&b.get(&format!("{base}/builds?status=bogus")).await)).len(),
        20
    );
    // The poll takes the same filter.
    let polled = json_of(&b.get(&format!("{base}/builds?status=failed&state=1")).await);
    assert_eq!(polled["total"], 2);
}

#[tokio::test]
async fn polls_answer_304_until_their_build_changes_even_through_another_build() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    let (build1, [a, ..]) = seed_dag(&sdk).await;
    // build2 references A; build3 has nothing in common.
    let build2 = new_build_id(&sdk).await;
    register(&sdk, &build2, &reg(&a, "A", &[])).await;
    let build3 = new_build_id(&sdk).await;
    let x = hash("unrelated");
    register(&sdk, &build3, &reg(&x, "X", &[])).await;

    let url = format!("{base}/builds/{build1}/state");
    let etag = b.get(&url).await.header("etag").unwrap().to_owned();
    let list_url = format!("{base}/builds?state=1");
    let list_etag = b.get(&list_url).await.header("etag").unwrap().to_owned();
    assert_eq!(
        b.get_with(&url, &[("if-none-match", &etag)]).await.status,
        304
    );
    // Work in an unrelated build leaves build1's poll at 304.
    task_event(&sdk, &build3, &x, "start").await;
    assert_eq!(
        b.get_with(&url, &[("if-none-match", &etag)]).await.status,
        304
    );
    assert_eq!(
        b.get_with(&list_url, &[("if-none-match", &list_etag)])
            .await
            .status,
        200,
        "build3 is on the first page"
    );
    // A starts in build2: build1 shows A's global status, so its poll changes.
    task_event(&sdk, &build2, &a, "start").await;
    let changed = b.get_with(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(changed.status, 200);
    let body = json_of(&changed);
    let node = body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["task_id"] == a.as_str())
        .unwrap()
        .clone();
    assert_eq!(node["status"], "running");
    assert_eq!(node["status_build_id"], build2.as_str());
    let etag2 = changed.header("etag").unwrap().to_owned();
    assert_ne!(etag2, etag);
    assert_eq!(body["etag"], etag2.as_str());
    assert_eq!(
        b.get_with(&url, &[("if-none-match", &etag2)]).await.status,
        304
    );
    // A foreign id still answers 404 (the counter read does not skip the check).
    let gone = b
        .get(&format!("{base}/builds/{}/state", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(gone.status, 404);

    // v2: a member's start changes the build's poll.
    let api = crate::v2::Api::of(&f);
    let flow = api.chain().await;
    let v2_url = format!("{base}/builds/{}/state", flow.build);
    let v2_etag = b.get(&v2_url).await.header("etag").unwrap().to_owned();
    assert_eq!(
        b.get_with(&v2_url, &[("if-none-match", &v2_etag)])
            .await
            .status,
        304
    );
    api.claim(&flow.plan, "u", None).await;
    let after = b.get_with(&v2_url, &[("if-none-match", &v2_etag)]).await;
    assert_eq!(after.status, 200);
    assert_eq!(json_of(&after)["counts"]["running"], 1);
}

/// The "Tasks" cell of a build's row in a builds list page, tags stripped.
fn progress(html: &str, build: &str) -> String {
    let row = between(html, &format!("<tr data-build=\"{build}\""), "</tr>");
    let cell = between(row, "<td class=\"progress\">", "</td>");
    let mut out = String::new();
    let mut in_tag = false;
    for ch in cell["<td class=\"progress\">".len()..].chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The list's per-build counts come from a cache stamped with the change counters
/// (`ui::counts_cache`): each change below comes after a page load that warmed it.
#[tokio::test]
async fn builds_list_counts_follow_every_change_with_the_cache_warm() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    let list = format!("{base}/builds");
    let cell = |build: String| {
        let (b, list) = (&b, &list);
        async move { progress(&text(&b.get(list).await), &build) }
    };
    let (build1, [a, bb, _c, d]) = seed_dag(&sdk).await;
    let build2 = new_build_id(&sdk).await;
    register(&sdk, &build2, &reg(&a, "A", &[])).await;
    assert_eq!(cell(build1.clone()).await, "0/4 ✓");
    assert_eq!(cell(build1.clone()).await, "0/4 ✓", "a second load (a hit)");

    // A task event in the build.
    task_event(&sdk, &build1, &d, "start").await;
    task_event(&sdk, &build1, &d, "complete").await;
    assert_eq!(cell(build1.clone()).await, "1/4 ✓");

    // A's global status changes through build2 (D18): build1 shows it too.
    assert_eq!(cell(build2.clone()).await, "0/1 ✓");
    task_event(&sdk, &build2, &a, "start").await;
    task_event(&sdk, &build2, &a, "complete").await;
    let page = text(&b.get(&list).await);
    assert_eq!(progress(&page, &build1), "2/4 ✓");
    assert_eq!(progress(&page, &build2), "1/1 ✓");

    // A failure in the build.
    task_event(&sdk, &build1, &bb, "start").await;
    task_event(&sdk, &build1, &bb, "fail").await;
    assert_eq!(cell(build1.clone()).await, "2/4 ✓ · 1 ✕");

    // An admin's status override: the build's status moves, its counts stay right.
    let csrf = super::csrf_of(&text(&b.get(&format!("{base}/builds/{build1}")).await));
    let r = b
        .post_form(
            &format!("{base}/builds/{build1}/override"),
            &csrf,
            &[("status", "cancelled")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let page = text(&b.get(&list).await);
    let row = between(&page, &format!("<tr data-build=\"{build1}\""), "</tr>");
    assert!(row.contains("cancelled") && row.contains("set by"), "{row}");
    assert_eq!(progress(&page, &build1), "2/4 ✓ · 1 ✕");
    // ... and a task event after it still shows.
    task_event(&sdk, &build1, &bb, "start").await;
    task_event(&sdk, &build1, &bb, "complete").await;
    assert_eq!(cell(build1.clone()).await, "3/4 ✓");

    // A v2 member completing.
    let api = crate::v2::Api::of(&f);
    let flow = api.chain().await;
    assert_eq!(cell(flow.build.clone()).await, "0/2 ✓");
    api.run(&flow.plan, "u").await;
    assert_eq!(cell(flow.build.clone()).await, "1/2 ✓");
    let exec = api.claim(&flow.plan, "r", None).await;
    api.fail(&flow.plan, "r", &exec).await.expect(200);
    assert_eq!(cell(flow.build.clone()).await, "1/2 ✓ · 1 ✕");
}

/// A task in more builds than `store::changes::FANOUT` moves the environment-wide
/// generation instead of each build's counter; the cached counts follow that too.
#[tokio::test]
async fn builds_list_counts_follow_a_task_shared_by_many_builds() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    let shared = hash("shared");
    let first = new_build_id(&sdk).await;
    register(&sdk, &first, &reg(&shared, "S", &[])).await;
    let mut last = first.clone();
    for _ in 0..70 {
        last = new_build_id(&sdk).await;
        register(&sdk, &last, &reg(&shared, "S", &[])).await;
    }
    // `first` is far down the list: its id filters the list down to its row.
    let url = format!("{base}/builds?q={first}");
    assert_eq!(progress(&text(&b.get(&url).await), &first), "0/1 ✓");
    task_event(&sdk, &last, &shared, "start").await;
    task_event(&sdk, &last, &shared, "complete").await;
    assert_eq!(progress(&text(&b.get(&url).await), &first), "1/1 ✓");
}

#[tokio::test]
async fn task_page_lists_dependencies_both_ways_for_both_protocols() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    let (build, [a, bb, c, d]) = seed_dag(&sdk).await;
    let link = |t: &str| format!("href=\"{base}/tasks/{t}\"");

    let page_b = text(&b.get(&format!("{base}/tasks/{bb}")).await);
    let deps = between(&page_b, "id=\"depends-on\"", "id=\"used-by\"");
    assert!(deps.contains("(1)") && deps.contains(&link(&a)), "{deps}");
    let users = between(&page_b, "id=\"used-by\"", "</section>");
    assert!(
        users.contains("(1)") && users.contains(&link(&c)),
        "{users}"
    );
    // "Show in build graph" highlights the node on the build page.
    let show = format!("{base}/builds/{build}?tab=graph&amp;highlight={bb}");
    assert!(page_b.contains(&show), "{page_b}");
    let graph = text(
        &b.get(&format!("{base}/builds/{build}?tab=graph&highlight={bb}"))
            .await,
    );
    assert_eq!(graph.matches("class=\"hl\"").count(), 1, "{graph}");
    assert!(graph.contains(&format!("class=\"hl\" href=\"{base}/tasks/{bb}\"")));

    let page_c = text(&b.get(&format!("{base}/tasks/{c}")).await);
    let deps = between(&page_c, "id=\"depends-on\"", "id=\"used-by\"");
    assert!(deps.contains("(2)") && deps.contains(&link(&bb)) && deps.contains(&link(&d)));
    assert!(between(&page_c, "id=\"used-by\"", "</section>").contains("No task uses it."));

    // A dependency registered before its upstream (a pending edge) shows once it resolves.
    let later = new_build_id(&sdk).await;
    let (e, g) = (hash("e"), hash("g"));
    register(&sdk, &later, &reg(&e, "E", &[&g])).await;
    register(&sdk, &later, &reg(&g, "G", &[])).await;
    let page_g = text(&b.get(&format!("{base}/tasks/{g}")).await);
    assert!(between(&page_g, "id=\"used-by\"", "</section>").contains(&link(&e)));

    // v2: r depends on u.
    let api = crate::v2::Api::of(&f);
    api.chain().await;
    let (u, r) = (crate::v2::tid("u"), crate::v2::tid("r"));
    let page_u = text(&b.get(&format!("{base}/tasks/{u}")).await);
    assert!(
        between(&page_u, "id=\"used-by\"", "</section>").contains(&link(&r)),
        "{page_u}"
    );
    let page_r = text(&b.get(&format!("{base}/tasks/{r}")).await);
    assert!(between(&page_r, "id=\"depends-on\"", "id=\"used-by\"").contains(&link(&u)));
}

#[tokio::test]
async fn explorer_columns_click_to_filter_and_suggestions() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    let build = new_build_id(&sdk).await;
    for (i, lr) in [0.1, 0.01, 0.001].iter().enumerate() {
        let t = hash(&format!("lr-{i}"));
        let mut body = reg(&t, &format!("Train{i}"), &[]);
        body["task_data"]["lr"] = json!(lr);
        body["task_data"]["model"] = json!({"layers": [{"size": 8 * (i + 1)}]});
        register(&sdk, &build, &body).await;
    }
    let url = format!("{base}/tasks?cols=param.lr,param.model.layers%5B0%5D.size,bogus.col");
    let html = text(&b.get(&url).await);
    assert!(
        html.contains("<code>param.lr</code>")
            && html.contains("<code>param.model.layers[0].size</code>")
    );
    assert!(
        !html.contains("<code>bogus.col</code>"),
        "unknown columns are dropped"
    );
    // A cell is a link that adds `key = value`; its exclude twin is in data-exclude.
    let add = "filter=param.lr%3A%3D%3A0.01&amp;cols=param.lr%2Cparam.model.layers%5B0%5D.size";
    assert!(html.contains(add), "{html}");
    assert!(html.contains("filter=param.lr%3A%21%3D%3A0.01"), "{html}");
    assert!(
        html.contains("<code>16</code>"),
        "nested param value: {html}"
    );
    let filtered = text(
        &b.get(&format!(
            "{base}/tasks?filter=param.lr%3A%3D%3A0.01&cols=param.lr"
        ))
        .await,
    );
    assert_eq!(filtered.matches("<tr data-task=").count(), 1);
    // "show in graph" links each row to its build's graph with the task highlighted.
    assert!(html.contains(&format!("{base}/builds/{build}?tab=graph&amp;highlight=")));
    // The no-JS column form lands on the canonical URL.
    let r = b
        .get(&format!(
            "{base}/tasks?cols_form=1&col=param.lr&col=task_id&filter=status%3A%3D%3Apending"
        ))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location").unwrap(),
        format!("{base}/tasks?filter=status%3A%3D%3Apending&cols=param.lr%2Ctask_id")
    );
    // Autocomplete JSON: the API's keys and values, for this session.
    let keys = json_of(&b.get(&format!("{base}/-/search/keys?prefix=param.l")).await);
    let names: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["key"].as_str())
        .collect();
    assert!(names.contains(&"param.lr"), "{keys}");
    let values = json_of(
        &b.get(&format!("{base}/-/search/values?key=param.lr&prefix=0.0"))
            .await,
    );
    let vals: Vec<&str> = values["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["value"].as_str())
        .collect();
    assert!(
        vals.contains(&"0.01") && vals.contains(&"0.001"),
        "{values}"
    );
    // Errors are the API's JSON (422 without a key), and signed-out callers get 401.
    let bad = b.get(&format!("{base}/-/search/values")).await;
    assert_eq!(bad.status, 422);
    let anon = f
        .anonymous()
        .send(
            http::Method::GET,
            &format!("{base}/-/search/keys"),
            &[],
            Default::default(),
        )
        .await;
    assert_eq!(anon.status, 401);
}

#[tokio::test]
async fn locks_page_carries_the_time_left_for_the_countdown() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    f.sdk()
        .post(
            "/api/v1/locks/countdown/acquire",
            &json!({"owner_id": uuid::Uuid::now_v7().to_string(), "ttl_seconds": 60, "check_task_completion": false}),
        )
        .await
        .expect(200);
    let html = text(&b.get(&format!("{base}/locks")).await);
    assert!(html.contains(&format!("data-refresh-url=\"{base}/locks\"")));
    let at = html.find("data-left-ms=\"").expect("time left") + 14;
    let left: i64 = html[at..at + html[at..].find('"').unwrap()]
        .parse()
        .unwrap();
    assert!((50_000..=60_000).contains(&left), "{left}");
    assert!(
        html.contains("in 5") || html.contains("in 1 min"),
        "no-JS text: {html}"
    );
}

#[tokio::test]
async fn explorer_asset_columns_show_the_value_at_the_path_and_filter_by_it() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    let build = new_build_id(&sdk).await;
    let bodies = [
        Some(json!({"acc": 0.93, "run": {"name": "<b>first</b>"}})),
        Some(json!({"acc": 0.5})),
        None,
    ];
    let mut ids = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let t = hash(&format!("asset-col-{i}"));
        run_task(&sdk, &build, &reg(&t, &format!("Eval{i}"), &[])).await;
        if let Some(body) = body {
            sdk.post(
                &format!("/api/v1/builds/{build}/tasks/{t}/assets"),
                &json!([{"type": "json", "name": "metrics", "body": body}]),
            )
            .await
            .expect(201);
        }
        ids.push(t);
    }
    // The chooser offers the discovered asset keys (as /tasks/search/columns does).
    let page = text(&b.get(&format!("{base}/tasks")).await);
    assert!(
        page.contains("name=\"col\" value=\"asset.metrics.acc\""),
        "{page}"
    );
    let url = format!(
        "{base}/tasks?cols=asset.metrics.acc,asset.metrics.run.name,asset.metrics,asset.a%5Bx.y"
    );
    let html = text(&b.get(&url).await);
    assert!(
        html.contains("<code>asset.metrics.acc</code>")
            && html.contains("<code>asset.metrics.run.name</code>")
    );
    assert!(
        !html.contains("<code>asset.metrics</code>") && !html.contains("<code>asset.a[x.y</code>"),
        "columns the filter language refuses are dropped"
    );
    let row = |id: &str| between(&html, &format!("<tr data-task=\"{id}\""), "</tr>").to_owned();
    // The value at the path of the named asset's body, escaped; "—" where there is none.
    let first = row(&ids[0]);
    assert!(first.contains("<code>0.93</code>"), "{first}");
    assert!(
        first.contains("<code>&lt;b&gt;first&lt;/b&gt;</code>"),
        "{first}"
    );
    let second = row(&ids[1]);
    assert!(
        second.contains("<code>0.5</code>") && second.contains("—"),
        "{second}"
    );
    let third = row(&ids[2]);
    assert_eq!(third.matches("—").count(), 2, "{third}");
    // A cell filters like a param cell (the filter language has asset keys).
    assert!(
        first.contains("filter=asset.metrics.acc%3A%3D%3A0.93"),
        "{first}"
    );
    assert!(
        first.contains("filter=asset.metrics.acc%3A%21%3D%3A0.93"),
        "{first}"
    );
    let filtered = text(
        &b.get(&format!(
            "{base}/tasks?filter=asset.metrics.acc%3A%3D%3A0.93&cols=asset.metrics.acc"
        ))
        .await,
    );
    assert_eq!(filtered.matches("<tr data-task=").count(), 1, "{filtered}");
    assert!(filtered.contains(&format!("<tr data-task=\"{}\"", ids[0])));
}
