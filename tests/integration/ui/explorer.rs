//! The task explorer (P7) and the locks page (P8): tasks seeded through the v1 API,
//! searched through the page with the API's filter language.

use serde_json::json;

use super::{text, Browser};
use crate::harness::Client;
use crate::tasks::{hash, new_build_id, register, Fixture};

/// Registers `Task00..Task{n-1}` in one build; task `i` has `group = g{i % 3}` and
/// `lr = i / 100`. Returns the build id and the task hashes.
async fn seed(sdk: &Client, n: usize) -> (String, Vec<String>) {
    let build = new_build_id(sdk).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let t = hash(&format!("explorer-{i}"));
        let mut body = crate::tasks::reg(&t, &format!("Task{i:02}"), &[]);
        body["task_data"]["group"] = json!(format!("g{}", i % 3));
        body["task_data"]["lr"] = json!(i as f64 / 100.0);
        register(sdk, &build, &body).await;
        ids.push(t);
    }
    (build, ids)
}

/// The task ids of the result rows, in page order.
fn rows(html: &str) -> Vec<String> {
    html.match_indices("<tr data-task=\"")
        .map(|(at, m)| {
            let rest = &html[at + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn explorer_searches_sorts_and_pages_with_the_api_language() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let empty = text(&b.get(&format!("{base}/tasks")).await);
    assert!(empty.contains("No tasks yet"), "{empty}");
    let (build, t) = seed(&f.sdk(), 60).await;

    // Everything, newest first, 50 a page, with an honest total and a next link.
    let r = b.get(&format!("{base}/tasks")).await;
    assert_eq!(r.status, 200);
    let all = text(&r);
    assert!(
        all.contains("1–50 of <span class=\"total\">60</span>"),
        "{all}"
    );
    let first = rows(&all);
    assert_eq!(first.len(), 50);
    assert_eq!(first[0], t[59]);
    assert!(
        all.contains(&format!("{base}/tasks/{}", t[59])),
        "rows link to the task page"
    );
    assert!(
        all.contains(&format!("{base}/builds/{build}")),
        "rows link to the build"
    );
    assert!(all.contains(&format!("rel=\"next\" href=\"{base}/tasks?page=2\"")));
    assert!(!all.contains("rel=\"prev\""));
    let p2 = text(&b.get(&format!("{base}/tasks?page=2")).await);
    assert!(
        p2.contains("51–60 of <span class=\"total\">60</span>"),
        "{p2}"
    );
    assert_eq!(rows(&p2), t[..10].iter().rev().cloned().collect::<Vec<_>>());
    assert!(p2.contains(&format!("rel=\"prev\" href=\"{base}/tasks\"")));
    assert!(!p2.contains("rel=\"next\""));
    // A hand-made page number far past the end is an empty page, not an error.
    let far = b.get(&format!("{base}/tasks?page={}", u64::MAX)).await;
    assert_eq!(far.status, 200);
    assert!(text(&far).contains("No tasks on this page"));

    // One condition: exactly the matching row, a chip whose × drops it.
    let one = text(
        &b.get(&format!(
            "{base}/tasks?filter={}",
            enc("task_name:=:Task07")
        ))
        .await,
    );
    assert_eq!(rows(&one), vec![t[7].clone()]);
    assert!(one.contains("<code>task_name:=:Task07</code>"), "{one}");
    assert!(one.contains(&format!("class=\"chip-x\" href=\"{base}/tasks\"")));
    assert!(one.contains("1–1 of <span class=\"total\">1</span> task<"));

    // Parameters, two conditions (AND); the × of one keeps the other (and q).
    let filter = "param.group:=:g1,param.lr:>:0.3";
    let url = format!("{base}/tasks?filter={}&q=task", enc(filter));
    let two = text(&b.get(&url).await);
    let want: Vec<String> = (0..60)
        .rev()
        .filter(|i| i % 3 == 1 && *i as f64 / 100.0 > 0.3)
        .map(|i| t[i].clone())
        .collect();
    assert_eq!(rows(&two), want);
    assert!(two.contains(&format!(
        "href=\"{base}/tasks?filter=param.group%3A%3D%3Ag1&amp;q=task\""
    )));
    assert!(two.contains("value=\"task\""), "q stays in the form");

    // "Add a condition" lands on the canonical URL of the merged filter.
    let r = b
        .get(&format!(
            "{base}/tasks?filter={}&add={}",
            enc("param.group:=:g1"),
            enc("param.lr:>:0.3")
        ))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location").unwrap(),
        format!("{base}/tasks?filter=param.group%3A%3D%3Ag1%2Cparam.lr%3A%3E%3A0.3")
    );

    // Sorting by name both ways; the header link says what a click does next.
    let asc = text(&b.get(&format!("{base}/tasks?sort=task_name:asc")).await);
    assert_eq!(rows(&asc)[..3], t[..3]);
    assert!(asc.contains("data-sort=\"task_name:desc\">Name ▲"));
    let desc = text(&b.get(&format!("{base}/tasks?sort=task_name:desc")).await);
    assert_eq!(rows(&desc)[0], t[59]);
    assert_eq!(rows(&desc)[1], t[58]);

    // No match: the chips stay, with a way back.
    let none = text(
        &b.get(&format!("{base}/tasks?filter={}", enc("task_name:=:nope")))
            .await,
    );
    assert!(none.contains("No tasks match") && rows(&none).is_empty());
    assert!(none.contains("Remove the last condition"));

    // The key suggestions come from the environment's discovered keys.
    assert!(all.contains("<option value=\"param.group:=:\""), "{all}");
}

#[tokio::test]
async fn a_bad_filter_is_explained_inline_and_hostile_names_are_inert() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    let (_, t) = seed(&sdk, 3).await;
    let build = new_build_id(&sdk).await;
    let evil = "<img src=x onerror=alert(1)>";
    let e = hash("evil-explorer");
    register(&sdk, &build, &crate::tasks::reg(&e, evil, &[])).await;

    let r = b
        .get(&format!(
            "{base}/tasks?filter={}",
            enc("task_name:=:Task01,param.lr:>:high,nope:=:1")
        ))
        .await;
    assert_eq!(r.status, 422, "the API's status for a refused filter");
    assert_eq!(
        r.header("content-type").unwrap(),
        "text/html; charset=utf-8"
    );
    let html = text(&r);
    assert!(html.contains("The filter was not understood"), "{html}");
    assert!(
        html.contains("&#39;high&#39; is not a number") || html.contains("'high' is not a number")
    );
    assert!(html.contains("unknown key"), "{html}");
    assert!(
        html.contains("class=\"chip bad\""),
        "the refused part is marked"
    );
    assert!(
        html.contains("<code>task_name:=:Task01</code>"),
        "good parts stay"
    );
    assert!(
        html.contains("<form class=\"explorer-search card\""),
        "the page still renders"
    );
    assert!(rows(&html).is_empty());
    assert!(
        !html.contains("panicked") && !html.contains("src/"),
        "no internals"
    );

    // The hostile name is text, in the rows and in the q echoed back.
    let found = text(&b.get(&format!("{base}/tasks?q={}", enc("<img"))).await);
    assert_eq!(rows(&found), vec![e.clone()]);
    assert!(!found.contains("<img src=x"), "{found}");
    assert!(found.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let all = text(&b.get(&format!("{base}/tasks")).await);
    assert!(!all.contains("<img src=x"));
    assert_eq!(rows(&all).len(), t.len() + 1);
}

#[tokio::test]
async fn locks_page_lists_live_locks() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let empty = b.get(&format!("{base}/locks")).await;
    assert_eq!(empty.status, 200);
    let empty = text(&empty);
    assert!(empty.contains("No locks held"), "{empty}");
    let owner = uuid::Uuid::now_v7().to_string();
    f.sdk()
        .post(
            "/api/v1/locks/train-model-7/acquire",
            &json!({"owner_id": owner, "ttl_seconds": 600, "check_task_completion": false}),
        )
        .await
        .expect(200);
    let html = text(&b.get(&format!("{base}/locks")).await);
    assert!(html.contains("data-lock=\"train-model-7\""), "{html}");
    assert!(html.contains(&format!("title=\"{owner}\"")));
    assert!(html.contains("1 lock held"));
    assert!(
        html.contains("in 9 min") || html.contains("in 10 min"),
        "{html}"
    );
}

#[tokio::test]
async fn explorer_and_locks_of_another_workspace_are_not_found() {
    let f = Fixture::start_with(|c| c.auth.local_registration = true).await;
    let admin = Browser::admin(&f).await;
    let base = admin.home_env().await;
    let (_, t) = seed(&f.sdk(), 2).await;
    f.sdk()
        .post(
            "/api/v1/locks/secret-lock/acquire",
            &json!({"owner_id": uuid::Uuid::now_v7().to_string(), "ttl_seconds": 600, "check_task_completion": false}),
        )
        .await
        .expect(200);
    let anon = f.anonymous();
    anon.post(
        "/api/v1/auth/register",
        &json!({"email": "eve@example.org", "password": "correct horse battery"}),
    )
    .await
    .expect(201);
    let eve = Browser::sign_in(&anon, "eve@example.org", "correct horse battery").await;
    let eve_base = eve.home_env().await;
    let not_found = text(&eve.get(&format!("{base}/builds")).await);
    for path in [
        format!("{base}/tasks"),
        format!("{base}/tasks?filter={}", enc("task_name:=:Task01")),
        format!("{base}/tasks?filter=bad"),
        format!("{base}/locks"),
    ] {
        let r = eve.get(&path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(text(&r).len(), not_found.len(), "{path}: the same 404 page");
    }
    // Her own explorer and locks know nothing of the admin's.
    let mine = text(&eve.get(&format!("{eve_base}/tasks?q=Task")).await);
    assert!(rows(&mine).is_empty() && !mine.contains(&t[0]));
    let locks = text(&eve.get(&format!("{eve_base}/locks")).await);
    assert!(locks.contains("No locks held") && !locks.contains("secret-lock"));
}

#[tokio::test]
async fn a_total_the_search_only_counted_to_a_bound_shows_a_plus() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    // More matches than the search counts (store::search::TOTAL_BOUND = 10 000, or
    // its work budget before that): the answer is a lower bound.
    let build = new_build_id(&f.sdk()).await;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..16 {
        let (sdk, build) = (f.sdk(), build.clone());
        workers.spawn(async move {
            for i in 0..632 {
                let t = hash(&format!("bound-{w}-{i}"));
                let mut body = crate::tasks::reg(&t, &format!("Bulk{w}x{i}"), &[]);
                body["task_data"]["lr"] = json!(i);
                register(&sdk, &build, &body).await;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
    let url = format!("{base}/tasks?filter={}&q=bulk", enc("param.lr:>=:0"));
    let html = text(&b.get(&url).await);
    assert_eq!(rows(&html).len(), 50);
    assert!(html.contains("data-lower-bound=\"true\""), "{html}");
    let at = html.find("<span class=\"total\">").unwrap() + 20;
    let shown = &html[at..at + html[at..].find('<').unwrap()];
    assert!(shown.ends_with('+'), "{shown}");
    let n: u64 = shown
        .trim_end_matches('+')
        .replace(' ', "")
        .parse()
        .unwrap();
    assert!((50..=10_000).contains(&n), "{shown}");
    assert!(html.contains("rel=\"next\""), "more may match: a next page");
    // The API says the same for the same query.
    let api = f
        .sdk()
        .get(&format!(
            "/api/v1/tasks/search?filter={}&q=bulk",
            enc("param.lr:>=:0")
        ))
        .await
        .expect(200);
    assert_eq!(api["total_is_lower_bound"], true);
}
