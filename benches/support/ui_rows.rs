//! The web UI rows of the load benchmark: the build page of a 2 000-task build, its
//! live-state poll when nothing changed (304), and the server-side graph layout of
//! 2 000 nodes (timed in process), the builds list (its first page of 20) over 50 builds of 500 tasks, and the
//! explorer over the search rows' seeded environment (`--search-tasks N`). Included by `benches/load.rs`. They need the
//! admin's credentials, so they run only against a server the benchmark started.

use std::time::Instant;

use http::Method;
use serde_json::{json, Value};

use super::{drive, new_build, ok, Conn, Options, Row, Target};
use stardag_server::ui::dag_layout::{layout, Dir};

const TASKS: usize = 2_000;

/// Parent of task `i` in the seeded build: a binary tree, so the graph has depth ~11.
fn parent(i: usize) -> Option<usize> {
    (i > 0).then(|| (i - 1) / 2)
}

/// The graph layout of `TASKS` nodes: median of 5 runs, in ms.
pub fn layout_ms() -> f64 {
    let edges: Vec<(usize, usize)> = (0..TASKS)
        .filter_map(|i| parent(i).map(|p| (i, p)))
        .collect();
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let l = layout(TASKS, &edges, Dir::LeftRight);
            assert_eq!(l.nodes.len(), TASKS);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

fn credential(target: &Target, key: &str) -> Option<String> {
    let dir = target.data_dir.as_ref()?;
    let text = std::fs::read_to_string(dir.path().join("initial-credentials")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

/// A signed-in admin's session cookie and first workspace slug (the UI's pages need a
/// cookie session), or `None` with the reason printed.
async fn ui_session(target: &Target) -> Option<(Vec<(String, String)>, String)> {
    let (Some(email), Some(password)) = (
        credential(target, "STARDAG_ADMIN_EMAIL"),
        credential(target, "STARDAG_ADMIN_PASSWORD"),
    ) else {
        println!("UI rows skipped: need a server started by the benchmark");
        return None;
    };
    let mut anon = Conn::open(target.addr, vec![]).await;
    let login = anon
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(&json!({"email": email, "password": password})),
        )
        .await;
    let token = match &login {
        Ok((200, b)) => serde_json::from_slice::<Value>(b)
            .ok()
            .and_then(|v| v["session_token"].as_str().map(str::to_owned)),
        _ => None,
    };
    let Some(token) = token else {
        println!("UI rows skipped: login failed");
        return None;
    };
    let mut me = Conn::open(
        target.addr,
        vec![("authorization".into(), format!("Bearer {token}"))],
    )
    .await;
    let slug = match me.call(Method::GET, "/api/v1/ui/me", None).await {
        Ok((200, b)) => serde_json::from_slice::<Value>(&b)
            .ok()
            .and_then(|v| v["workspaces"][0]["slug"].as_str().map(str::to_owned)),
        _ => None,
    }
    .unwrap_or_default();
    let cookie = vec![("cookie".to_string(), format!("sd_session={token}"))];
    Some((cookie, slug))
}

/// The explorer (P7) over the environment the search rows seeded (`seeded` tasks: see
/// `search_body` in load.rs), beside the same writing build.
pub fn explorer_row_names(seeded: usize) -> [(String, &'static str); 2] {
    [
        (
            format!("UI explorer page, latest ({seeded} tasks)"),
            "tasks",
        ),
        (
            format!("UI explorer page, shared AND group=g42, param.ratio column ({seeded} tasks)"),
            "tasks?filter=param.project%3A%3D%3Aatlas%2Cparam.group%3A%3D%3Ag42&cols=param.ratio",
        ),
    ]
}

pub async fn explorer_rows(target: &Target, opts: &Options, seeded: usize, rows: &mut Vec<Row>) {
    let wanted: Vec<_> = explorer_row_names(seeded)
        .into_iter()
        .filter(|(name, _)| opts.wants(name))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let Some((cookie, slug)) = ui_session(target).await else {
        return;
    };
    for (name, tail) in wanted {
        let page = format!("/ws/{slug}/env/local/{tail}");
        rows.push(
            page_row(
                &name,
                target,
                cookie.clone(),
                opts.search_clients,
                opts.seconds,
                page,
            )
            .await,
        );
    }
}

/// A new v1 build of `tasks` tasks (ids `<prefix>-<i>`) in a binary tree of
/// dependencies, registered one by one; returns its id.
async fn tree_build(sdk: &mut Conn, prefix: &str, tasks: usize) -> String {
    let build = new_build(sdk, None).await;
    let id = |i: usize| format!("{prefix}-{i}");
    for i in 0..tasks {
        let deps: Vec<String> = parent(i).map(id).into_iter().collect();
        let body = json!({"task_id": id(i), "task_name": format!("Task{}", i % 7),
            "task_namespace": "bench", "task_data": {"i": i}, "dependency_task_ids": deps});
        let _ = sdk
            .call(
                Method::POST,
                &format!("/api/v1/builds/{build}/tasks"),
                Some(&body),
            )
            .await;
    }
    build
}

/// A row of signed-in reads of one page, `clients` at a time.
async fn page_row(
    name: &str,
    target: &Target,
    cookie: Vec<(String, String)>,
    clients: usize,
    seconds: f64,
    page: String,
) -> Row {
    drive(name, target, cookie, clients, seconds, move |conn, _, _| {
        let page = page.clone();
        Box::pin(async move { (1, ok(&conn.call(Method::GET, &page, None).await)) })
    })
    .await
}

pub async fn rows(target: &Target, opts: &Options, rows: &mut Vec<Row>) {
    let page_row_name = format!("UI build page ({TASKS} tasks)");
    let poll_row = format!("UI build state poll, 304 ({TASKS} tasks)");
    if !opts.wants(&page_row_name) && !opts.wants(&poll_row) {
        return;
    }
    let Some((cookie, slug)) = ui_session(target).await else {
        return;
    };
    let mut sdk = Conn::open(target.addr, target.key_headers()).await;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let build = tree_build(&mut sdk, &format!("ui-{run}"), TASKS).await;
    let page = format!("/ws/{slug}/env/local/builds/{build}?draw=all");
    let state = format!("/ws/{slug}/env/local/builds/{build}/state");
    let etag = {
        let mut c = Conn::open(target.addr, cookie.clone()).await;
        match c.call(Method::GET, &state, None).await {
            Ok((200, b)) => serde_json::from_slice::<Value>(&b)
                .ok()
                .and_then(|v| v["etag"].as_str().map(str::to_owned)),
            _ => None,
        }
        .unwrap_or_default()
    };
    if opts.wants(&page_row_name) {
        rows.push(
            page_row(
                &page_row_name,
                target,
                cookie.clone(),
                opts.clients,
                opts.seconds,
                page,
            )
            .await,
        );
    }
    if opts.wants(&poll_row) {
        let mut headers = cookie;
        headers.push(("if-none-match".into(), etag));
        rows.push(
            drive(
                &poll_row,
                target,
                headers,
                opts.clients,
                opts.seconds,
                move |conn, _, _| {
                    let state = state.clone();
                    Box::pin(async move {
                        let r = conn.call(Method::GET, &state, None).await;
                        (1, matches!(r, Ok((304, _))))
                    })
                },
            )
            .await,
        );
    }
}

/// Builds and tasks per build of the builds list row.
const LIST_BUILDS: usize = 50;
const LIST_TASKS: usize = 500;

pub fn list_row_name() -> String {
    format!("UI builds list page (first 20 of {LIST_BUILDS} builds of {LIST_TASKS} tasks)")
}

/// The builds list (P4) over `LIST_BUILDS` fresh v1 builds of `LIST_TASKS` tasks each,
/// seeded through the v1 API on 8 connections; the first page shows the newest 20, each
/// with its task counts.
pub async fn list_rows(target: &Target, opts: &Options, rows: &mut Vec<Row>) {
    let name = list_row_name();
    if !opts.wants(&name) {
        return;
    }
    let Some((cookie, slug)) = ui_session(target).await else {
        return;
    };
    let seeding = Instant::now();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let mut seeders = Vec::new();
    for w in 0..8 {
        let (addr, headers, run) = (target.addr, target.key_headers(), run.clone());
        seeders.push(tokio::spawn(async move {
            let mut sdk = Conn::open(addr, headers).await;
            for b in (w..LIST_BUILDS).step_by(8) {
                tree_build(&mut sdk, &format!("list-{run}-{b}"), LIST_TASKS).await;
            }
        }));
    }
    for s in seeders {
        s.await.expect("seeding the builds list row");
    }
    println!(
        "seeded {LIST_BUILDS} builds of {LIST_TASKS} tasks in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let page = format!("/ws/{slug}/env/local/builds");
    rows.push(page_row(&name, target, cookie, opts.clients, opts.seconds, page).await);
}
