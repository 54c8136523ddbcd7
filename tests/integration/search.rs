//! Task search through the real HTTP interface (v1-tasks §4.4 as made exact by D20,
//! docs/search.md): exact answers for every kind of filter, `q`, sort, paging and
//! `include_assets`; every 422; the routing of `/tasks/search…`; suggestions after
//! writes; and a random comparison with a naive evaluation of data read back over HTTP.

use serde_json::{json, Value};

use crate::harness::Client;
use crate::search_property::{gen_case, naive_search, Naive, Pools, Rng};
use crate::tasks::{create_build, hash, new_build_id, post_empty, register, task_event, Fixture};

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn search(c: &Client, query: &str) -> Value {
    c.get(&format!("/api/v1/tasks/search?{query}"))
        .await
        .expect(200)
}

/// The task hashes of a search answer, in order.
fn hashes(v: &Value) -> Vec<String> {
    v["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks in {v}"))
        .iter()
        .map(|t| t["task_id"].as_str().unwrap().to_owned())
        .collect()
}

struct World {
    f: Fixture,
    c: Client,
    /// Task hashes in registration (= created_at) order.
    t: Vec<String>,
    build_a: (String, String),
    build_b: (String, String),
    created: Vec<String>,
}

fn task(id: &str, name: &str, ns: &str, version: Value, data: Value) -> Value {
    json!({
        "task_id": id, "task_name": name, "task_namespace": ns,
        "task_data": data, "version": version, "output_uri": null,
    })
}

/// Five tasks with known fields, statuses, builds and assets.
async fn world() -> World {
    let f = Fixture::start().await;
    let c = f.sdk();
    let a = create_build(&c).await;
    let b = create_build(&c).await;
    let build = |v: &Value| {
        (
            v["id"].as_str().unwrap().to_owned(),
            v["name"].as_str().unwrap().to_owned(),
        )
    };
    let (build_a, build_b) = (build(&a), build(&b));
    let t: Vec<String> = (1..=5).map(|i| hash(&format!("search-{i}"))).collect();
    let bodies = [
        task(
            &t[0],
            "Train",
            "ml",
            json!("1.0"),
            json!({
                "lr": 0.1, "epochs": 10, "opt": {"name": "adam", "betas": [0.9, 0.99]},
                "tag": "Alpha_50%",
            }),
        ),
        task(
            &t[1],
            "Train",
            "ml",
            json!("2.0"),
            json!({
                "lr": 0.01, "epochs": 20, "opt": {"name": "sgd"}, "tag": "beta",
            }),
        ),
        task(
            &t[2],
            "Evaluate",
            "ml.eval",
            json!(""),
            json!({
                "lr": "0.1", "model": "t1", "flag": true,
            }),
        ),
        task(&t[3], "Prep", "", Value::Null, json!({"rows": [{"n": 1}]})),
        task(
            &t[4],
            "Report",
            "etl",
            json!("3"),
            json!({"epochs": 1.0, "flag": false}),
        ),
    ];
    let mut created = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let on = if i == 1 || i == 4 {
            &build_b.0
        } else {
            &build_a.0
        };
        created.push(
            register(&c, on, body).await["created_at"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (ba, bb) = (&build_a.0, &build_b.0);
    task_event(&c, ba, &t[0], "start").await;
    task_event(&c, ba, &t[0], "complete").await;
    task_event(&c, bb, &t[1], "start").await;
    post_empty(
        &c,
        &format!(
            "/api/v1/builds/{bb}/tasks/{}/fail?error_message=out+of+memory",
            t[1]
        ),
    )
    .await
    .expect(200);
    task_event(&c, ba, &t[2], "start").await;
    task_event(&c, bb, &t[4], "start").await;
    task_event(&c, bb, &t[4], "cancel").await;
    let upload = |task: &str, items: Value| {
        let c = c.clone();
        let path = format!("/api/v1/builds/{ba}/tasks/{task}/assets");
        async move { c.post(&path, &items).await.expect(201) }
    };
    upload(
        &t[0],
        json!([
            {"type": "json", "name": "metrics", "body": {"accuracy": 0.93, "loss": 0.2}},
            {"type": "markdown", "name": "report", "body": {"content": "# Great run"}},
        ]),
    )
    .await;
    upload(
        &t[1],
        json!([{"type": "json", "name": "metrics", "body": {"accuracy": 0.71}}]),
    )
    .await;
    World {
        f,
        c,
        t,
        build_a,
        build_b,
        created,
    }
}

#[tokio::test]
async fn filters_answer_exactly() {
    let w = world().await;
    let t = |i: usize| w.t[i - 1].clone();
    let ask = |filter: &str| {
        let c = w.c.clone();
        let q = format!("filter={}", enc(filter));
        async move { hashes(&search(&c, &q).await) }
    };
    let cases: Vec<(String, Vec<String>)> = vec![
        // Status: the materialised global status, =, != and ~.
        ("status:=:completed".into(), vec![t(1)]),
        ("status:=:COMPLETED".into(), vec![t(1)]),
        ("status:!=:completed".into(), vec![t(5), t(4), t(3), t(2)]),
        ("status:~:ed".into(), vec![t(5), t(2), t(1)]),
        ("status:=:running".into(), vec![t(3)]),
        ("status:=:pending".into(), vec![t(4)]),
        ("status:=:suspended".into(), vec![]),
        // Core text columns: exact, code-point order, case-insensitive substring.
        ("task_name:=:Train".into(), vec![t(2), t(1)]),
        ("task_name:train".into(), vec![]),
        ("task_name:~:RAIN".into(), vec![t(2), t(1)]),
        ("task_name:>:Prep".into(), vec![t(5), t(2), t(1)]),
        ("task_name:<=:Prep".into(), vec![t(4), t(3)]),
        ("task_namespace:=:".into(), vec![t(4)]),
        ("task_namespace:~:ML".into(), vec![t(3), t(2), t(1)]),
        ("task_namespace:!=:ml".into(), vec![t(5), t(4), t(3)]),
        (format!("task_id:=:{}", t(3)), vec![t(3)]),
        (
            format!("task_id:~:{}", &t(2)[4..12].to_uppercase()),
            vec![t(2)],
        ),
        // Null versions never match, not even !=.
        ("version:=:1.0".into(), vec![t(1)]),
        ("version:!=:1.0".into(), vec![t(5), t(3), t(2)]),
        ("version:=:".into(), vec![t(3)]),
        ("version:>:1.5".into(), vec![t(5), t(2)]),
        // param.: typed equality, numeric ordering, substring on text.
        ("param.lr:=:0.1".into(), vec![t(3), t(1)]),
        ("param.lr:=:0.10".into(), vec![t(1)]),
        ("param.lr:>:0.05".into(), vec![t(1)]),
        ("param.lr:<=:0.1".into(), vec![t(2), t(1)]),
        ("param.epochs:=:1".into(), vec![t(5)]),
        ("param.epochs:>=:10".into(), vec![t(2), t(1)]),
        ("param.epochs:!=:10".into(), vec![t(5), t(2)]),
        ("param.opt.name:~:AD".into(), vec![t(1)]),
        ("param.opt.betas[1]:=:0.99".into(), vec![t(1)]),
        ("param.opt:=:adam".into(), vec![]),
        ("param.flag:=:true".into(), vec![t(3)]),
        ("param.flag:!=:true".into(), vec![t(5)]),
        ("param.rows[0].n:=:1".into(), vec![t(4)]),
        ("param.tag:~:_50%".into(), vec![t(1)]),
        ("param.tag:~:a%5".into(), vec![]),
        ("param.missing:!=:x".into(), vec![]),
        // asset.<name>.<path>
        ("asset.metrics.accuracy:>:0.8".into(), vec![t(1)]),
        ("asset.metrics.accuracy:<:0.8".into(), vec![t(2)]),
        ("asset.report.content:~:great".into(), vec![t(1)]),
        ("asset.report.accuracy:>:0".into(), vec![]),
        // The build of the latest event.
        (
            format!("build_id:=:{}", w.build_a.0),
            vec![t(4), t(3), t(1)],
        ),
        (format!("build_id:=:{}", w.build_b.0), vec![t(5), t(2)]),
        (format!("build_id:=:{}", w.build_a.0.to_uppercase()), vec![]),
        // created_at: RFC 3339 instants, any offset.
        (
            format!("created_at:>=:{}", w.created[2]),
            vec![t(5), t(4), t(3)],
        ),
        (format!("created_at:<:{}", w.created[2]), vec![t(2), t(1)]),
        (format!("created_at:=:{}", w.created[1]), vec![t(2)]),
        (
            format!("created_at:!=:{}", w.created[1]),
            vec![t(5), t(4), t(3), t(1)],
        ),
        // Conditions are ANDed.
        ("task_name:=:Train,status:=:failed".into(), vec![t(2)]),
        (
            "task_namespace:~:ml,param.lr:=:0.1,status:=:running".into(),
            vec![t(3)],
        ),
        (
            "param.epochs:>:0,param.epochs:<:15".into(),
            vec![t(5), t(1)],
        ),
        (" task_name : Train ,, ".into(), vec![t(2), t(1)]),
    ];
    for (filter, want) in cases {
        assert_eq!(ask(&filter).await, want, "filter {filter}");
    }
    // build_name: names are random slugs and may collide, so expect by name.
    let by_name = |name: &str| -> Vec<String> {
        let mut out = Vec::new();
        for (i, build) in [&w.build_b, &w.build_a, &w.build_a, &w.build_b, &w.build_a]
            .iter()
            .enumerate()
            .map(|(i, b)| (5 - i, b))
        {
            if build.1 == name {
                out.push(t(i));
            }
        }
        out
    };
    let name = w.build_a.1.clone();
    assert_eq!(ask(&format!("build_name:=:{name}")).await, by_name(&name));
    // An instant written with another offset is the same instant.
    let micros = stardag_server::clock::parse_rfc3339_micros(&w.created[1]).unwrap();
    let shifted = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(shifted.ends_with("+05:30"));
    assert_eq!(ask(&format!("created_at:=:{shifted}")).await, vec![t(2)]);
}

#[tokio::test]
async fn q_sort_paging_and_result_shape() {
    let w = world().await;
    let t = |i: usize| w.t[i - 1].clone();
    let all = search(&w.c, "").await;
    assert_eq!(
        hashes(&all),
        vec![t(5), t(4), t(3), t(2), t(1)],
        "newest first"
    );
    assert_eq!(all["total"], 5);
    // The new field next to `total`: small answers are counted exactly.
    assert_eq!(all["total_is_lower_bound"], false);
    assert_eq!(
        (all["page"].clone(), all["page_size"].clone()),
        (json!(1), json!(50))
    );
    assert_eq!(
        all["available_columns"],
        json!([
            "task_name",
            "task_namespace",
            "status",
            "build_name",
            "created_at"
        ])
    );

    // q: case-insensitive substring of name or namespace; % and _ are plain characters.
    assert_eq!(hashes(&search(&w.c, "q=ML").await), vec![t(3), t(2), t(1)]);
    assert_eq!(hashes(&search(&w.c, "q=re").await), vec![t(5), t(4)]);
    assert_eq!(hashes(&search(&w.c, "q=%25").await), Vec::<String>::new());
    assert_eq!(
        hashes(&search(&w.c, "q=").await).len(),
        5,
        "empty q is no filter"
    );
    assert_eq!(
        hashes(&search(&w.c, "q=ml&filter=status%3A%3Dcompleted").await),
        vec![t(1)]
    );

    // Sort field, then the internal id (registration order), in the same direction.
    assert_eq!(
        hashes(&search(&w.c, "sort=task_name:asc").await),
        vec![t(3), t(4), t(5), t(1), t(2)]
    );
    assert_eq!(
        hashes(&search(&w.c, "sort=task_name:desc").await),
        vec![t(2), t(1), t(5), t(4), t(3)]
    );
    assert_eq!(
        hashes(&search(&w.c, "sort=task_namespace").await),
        vec![t(3), t(2), t(1), t(5), t(4)],
        "no direction is descending"
    );
    assert_eq!(
        hashes(&search(&w.c, "sort=created_at:asc").await),
        vec![t(1), t(2), t(3), t(4), t(5)]
    );
    assert_eq!(
        hashes(&search(&w.c, "sort=status:asc").await),
        vec![t(1), t(2), t(3), t(4), t(5)],
        "unknown sort fields sort by created_at"
    );
    assert_eq!(
        hashes(&search(&w.c, "sort=task_name:up").await),
        vec![t(2), t(1), t(5), t(4), t(3)],
        "any direction but asc is descending"
    );
    assert_eq!(
        hashes(&search(&w.c, "sort=task_name:asc&filter=task_name%3A~%3Ar").await),
        vec![t(4), t(5), t(1), t(2)]
    );

    // Paging with an exact total.
    let p = search(&w.c, "page=2&page_size=2").await;
    assert_eq!(hashes(&p), vec![t(3), t(2)]);
    assert_eq!(
        (
            p["total"].clone(),
            p["page"].clone(),
            p["page_size"].clone()
        ),
        (json!(5), json!(2), json!(2))
    );
    let p = search(&w.c, "page=3&page_size=2&filter=status%3A!%3Dpending").await;
    assert_eq!((hashes(&p), p["total"].clone()), (vec![], json!(4)));
    let p = search(&w.c, "page=2&page_size=1&sort=task_name:asc&q=train").await;
    assert_eq!((hashes(&p), p["total"].clone()), (vec![t(2)], json!(2)));

    // The result shape, with include_assets.
    let r = search(
        &w.c,
        &format!(
            "filter=task_id%3A{}&include_assets=metrics,report,nope",
            t(1)
        ),
    )
    .await;
    let row = &r["tasks"][0];
    let mut keys: Vec<&str> = row
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "asset_count",
            "asset_data",
            "build_id",
            "build_name",
            "completed_at",
            "created_at",
            "environment_id",
            "error_message",
            "output_uri",
            "started_at",
            "status",
            "task_data",
            "task_id",
            "task_name",
            "task_namespace",
            "version",
        ]
    );
    assert_eq!(row["status"], "completed");
    assert_eq!(row["build_id"], json!(w.build_a.0));
    assert_eq!(row["build_name"], json!(w.build_a.1));
    assert_eq!(row["environment_id"], json!(w.f.env_id()));
    assert_eq!(row["asset_count"], 2);
    assert_eq!(row["created_at"], json!(w.created[0]));
    assert_eq!(row["task_data"]["opt"]["betas"], json!([0.9, 0.99]));
    assert_eq!(
        row["asset_data"],
        json!({"metrics": {"accuracy": 0.93, "loss": 0.2}, "report": {"content": "# Great run"}})
    );
    crate::tasks::assert_ts(&row["started_at"]);
    crate::tasks::assert_ts(&row["completed_at"]);
    let r = search(
        &w.c,
        &format!("filter=task_id%3A{}&include_assets=metrics", t(2)),
    )
    .await;
    let row = &r["tasks"][0];
    assert_eq!(
        (row["status"].clone(), row["error_message"].clone()),
        (json!("failed"), json!("out of memory"))
    );
    assert_eq!(row["asset_data"], json!({"metrics": {"accuracy": 0.71}}));
    let r = search(&w.c, &format!("filter=task_id%3A{}", t(4))).await;
    let row = &r["tasks"][0];
    assert_eq!(row["asset_data"], json!({}));
    assert_eq!(
        (row["version"].clone(), row["started_at"].clone()),
        (Value::Null, Value::Null)
    );
}

/// One 422 item per malformed part, naming it (D20: nothing is silently dropped).
#[tokio::test]
async fn malformed_filters_are_422_naming_the_part() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let cases = [
        ("nocolon", "expected key:op:value"),
        (
            "task_name:=>:x",
            "unknown operator '=>' (use =, !=, >, <, >=, <=, ~)",
        ),
        (
            "task_name:!~:x",
            "unknown operator '!~' (use =, !=, >, <, >=, <=, ~)",
        ),
        ("colour:=:red", "unknown key 'colour'"),
        ("status:>:done", "status supports =, != and ~"),
        ("status:=:done", "unknown status 'done'"),
        (
            "created_at:~:2026",
            "created_at supports =, !=, >, <, >=, <=",
        ),
        (
            "created_at:>:2026-01-01",
            "'2026-01-01' is not an RFC 3339 timestamp",
        ),
        ("param.lr:>:high", "'high' is not a number"),
        ("asset.metrics.acc:<=:x", "'x' is not a number"),
        (
            "asset.metrics:=:x",
            "asset filters need a path: asset.<name>.<path>",
        ),
        ("param:=:x", "param filters need a path: param.<path>"),
        ("param.a..b:=:1", "'' is not a valid path segment"),
        ("param.a[x]:=:1", "bad array index in path segment 'a[x]'"),
        (
            "param.a.b.c.d:=:1",
            "paths are searchable to a depth of 3 names",
        ),
    ];
    for (part, reason) in cases {
        let r = c
            .get(&format!("/api/v1/tasks/search?filter={}", enc(part)))
            .await
            .expect(422);
        assert_eq!(
            r,
            json!({"detail": [{
                "type": "value_error",
                "loc": ["query", "filter"],
                "msg": format!("Invalid filter '{part}': {reason}"),
                "input": part,
            }]}),
            "{part}"
        );
    }
    // Every bad part, in order, and paging errors in the same list.
    let r = c
        .get(&format!(
            "/api/v1/tasks/search?page_size=0&filter={}",
            enc("task_name:a, bad ,status:x")
        ))
        .await
        .expect(422);
    let items = r["detail"].as_array().unwrap();
    let inputs: Vec<&Value> = items.iter().map(|i| &i["input"]).collect();
    assert_eq!(inputs, [&json!("0"), &json!("bad"), &json!("status:x")]);
    assert_eq!(items[0]["loc"], json!(["query", "page_size"]));
    c.get("/api/v1/tasks/search?page=0").await.expect(422);
    c.get("/api/v1/tasks/search?page_size=101")
        .await
        .expect(422);
}

/// §1.1: the literal `search` wins for exactly the four search paths.
#[tokio::test]
async fn search_paths_win_over_a_task_named_search() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    register(
        &c,
        &b,
        &task("search", "Odd", "", json!(""), json!({"x": 1})),
    )
    .await;
    let page = search(&c, "").await;
    assert_eq!(hashes(&page), ["search"]);
    assert_eq!(
        c.get("/api/v1/tasks/search/metadata").await.expect(200)["id"],
        "search"
    );
    assert_eq!(
        c.get("/api/v1/tasks/search/assets").await.expect(200),
        json!({"assets": []})
    );
    assert!(c.get("/api/v1/tasks/search/keys").await.expect(200)["keys"].is_array());
    assert!(c.get("/api/v1/tasks/search/columns").await.expect(200)["core"].is_array());
    let r = c.post("/api/v1/tasks/search", &json!({})).await;
    assert_eq!(
        (r.status.as_u16(), r.header("allow")),
        (405, Some("GET, HEAD"))
    );
    f.anonymous().get("/api/v1/tasks/search").await.expect(401);
    f.anonymous()
        .get("/api/v1/tasks/search/values?key=status")
        .await
        .expect(401);
}

/// Suggestions read the indexes as they are now: every write shows at once.
#[tokio::test]
async fn keys_values_and_columns_follow_writes() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let core = json!([
        {"key": "task_name", "type": "string", "count": 0},
        {"key": "task_namespace", "type": "string", "count": 0},
        {"key": "task_id", "type": "string", "count": 0},
        {"key": "status", "type": "string", "count": 0},
        {"key": "build_id", "type": "string", "count": 0},
        {"key": "build_name", "type": "string", "count": 0},
        {"key": "created_at", "type": "datetime", "count": 0},
    ]);
    assert_eq!(
        c.get("/api/v1/tasks/search/keys").await.expect(200),
        json!({"keys": core})
    );
    assert_eq!(
        c.get("/api/v1/tasks/search/columns").await.expect(200),
        json!({
            "core": ["task_id", "task_name", "task_namespace", "status", "build_id",
                     "build_name", "created_at", "started_at", "completed_at"],
            "params": [], "assets": [],
        })
    );
    let values = |q: &str| {
        let c = c.clone();
        let q = q.to_owned();
        async move {
            c.get(&format!("/api/v1/tasks/search/values?{q}"))
                .await
                .expect(200)["values"]
                .clone()
        }
    };
    assert_eq!(values("key=task_name").await, json!([]));

    let b = create_build(&c).await;
    let (bid, bname) = (
        b["id"].as_str().unwrap().to_owned(),
        b["name"].as_str().unwrap().to_owned(),
    );
    let h: Vec<String> = (0..3).map(|i| hash(&format!("sugg-{i}"))).collect();
    register(
        &c,
        &bid,
        &task(
            &h[0],
            "Train",
            "ml",
            json!(""),
            json!({"lr": 0.1, "opt": {"name": "adam"}, "on": true}),
        ),
    )
    .await;
    register(
        &c,
        &bid,
        &task(
            &h[1],
            "Train",
            "ml",
            json!(""),
            json!({"lr": 0.1, "opt": {"name": "sgd"}, "tags": [{"k": 1}]}),
        ),
    )
    .await;
    register(
        &c,
        &bid,
        &task(
            &h[2],
            "Eval",
            "",
            json!(""),
            json!({"lr": "fast", "odd.key": 1}),
        ),
    )
    .await;

    let keys = c
        .get("/api/v1/tasks/search/keys?prefix=param.")
        .await
        .expect(200);
    assert_eq!(
        keys,
        json!({"keys": [
            {"key": "param.lr", "type": "string", "count": 3},
            {"key": "param.opt", "type": "string", "count": 2},
            {"key": "param.opt.name", "type": "string", "count": 2},
            {"key": "param.on", "type": "string", "count": 1},
            {"key": "param.tags", "type": "string", "count": 1},
            {"key": "param.tags[0].k", "type": "string", "count": 1},
        ]}),
        "keys a filter cannot spell (odd.key) are not offered"
    );
    let keys = c
        .get("/api/v1/tasks/search/keys?prefix=task_&limit=2")
        .await
        .expect(200);
    assert_eq!(keys, json!({"keys": [core[0], core[1]]}));
    assert_eq!(
        values("key=param.lr").await,
        json!([{"value": "0.1", "count": 2}, {"value": "fast", "count": 1}])
    );
    assert_eq!(
        values("key=param.lr&prefix=F").await,
        json!([]),
        "case-sensitive"
    );
    assert_eq!(
        values("key=param.on").await,
        json!([{"value": "true", "count": 1}])
    );
    assert_eq!(
        values("key=param.opt.name&limit=1").await,
        json!([{"value": "adam", "count": 1}])
    );
    assert_eq!(
        values("key=task_name").await,
        json!([{"value": "Train", "count": 2}, {"value": "Eval", "count": 1}])
    );
    assert_eq!(
        values("key=task_name&prefix=tR").await,
        json!([{"value": "Train", "count": 2}])
    );
    assert_eq!(
        values("key=task_namespace").await,
        json!([{"value": "ml", "count": 2}]),
        "empty values are not offered"
    );
    assert_eq!(
        values("key=status").await,
        json!([
            {"value": "pending", "count": 3}, {"value": "running", "count": 0},
            {"value": "completed", "count": 0}, {"value": "failed", "count": 0},
            {"value": "cancelled", "count": 0},
        ])
    );
    assert_eq!(
        values("key=build_id").await,
        json!([{"value": bid, "count": 3}])
    );
    assert_eq!(
        values("key=build_name").await,
        json!([{"value": bname, "count": 3}])
    );
    assert_eq!(values("key=created_at").await, json!([]));
    assert_eq!(values("key=asset.metrics").await, json!([]));

    // Events move status counts; another build takes over the latest event; an asset
    // upload adds asset keys and values; a re-upload replaces them.
    task_event(&c, &bid, &h[0], "start").await;
    task_event(&c, &bid, &h[0], "complete").await;
    let b2 = new_build_id(&c).await;
    task_event(&c, &b2, &h[1], "start").await;
    let status = values("key=status&prefix=r").await;
    assert_eq!(status, json!([{"value": "running", "count": 1}]));
    assert_eq!(
        values("key=status&prefix=c").await[0],
        json!({"value": "completed", "count": 1})
    );
    let ids = values("key=build_id").await;
    assert_eq!(
        ids,
        json!([{"value": bid, "count": 2}, {"value": b2, "count": 1}])
    );
    let up = |body: Value| {
        let c = c.clone();
        let path = format!("/api/v1/builds/{bid}/tasks/{}/assets", h[0]);
        async move { c.post(&path, &body).await.expect(201) }
    };
    up(json!([{"type": "json", "name": "metrics", "body": {"acc": 0.9}}])).await;
    assert_eq!(
        values("key=asset.metrics.acc").await,
        json!([{"value": "0.9", "count": 1}])
    );
    let cols = c.get("/api/v1/tasks/search/columns").await.expect(200);
    assert_eq!(cols["assets"], json!(["asset.metrics.acc"]));
    assert_eq!(cols["params"][0], "param.lr");
    up(json!([{"type": "json", "name": "metrics", "body": {"acc": 0.95, "f1": 0.5}}])).await;
    assert_eq!(
        values("key=asset.metrics.acc").await,
        json!([{"value": "0.95", "count": 1}])
    );
    let keys = c
        .get("/api/v1/tasks/search/keys?prefix=asset.")
        .await
        .expect(200);
    assert_eq!(
        keys,
        json!({"keys": [
            {"key": "asset.metrics.acc", "type": "string", "count": 1},
            {"key": "asset.metrics.f1", "type": "string", "count": 1},
        ]})
    );
    assert_eq!(
        hashes(&search(&c, "filter=asset.metrics.acc%3A%3E%3A0.92").await),
        vec![h[0].clone()],
        "the replaced body is searchable, the old one is gone"
    );
    assert_eq!(
        hashes(&search(&c, "filter=asset.metrics.acc%3A%3D%3A0.9").await),
        Vec::<String>::new()
    );

    // Errors of the suggestion routes.
    let r = c.get("/api/v1/tasks/search/values").await.expect(422);
    assert_eq!(r["detail"][0]["loc"], json!(["query", "key"]));
    assert_eq!(r["detail"][0]["type"], "missing");
    c.get("/api/v1/tasks/search/keys?limit=0").await.expect(422);
    c.get("/api/v1/tasks/search/values?key=status&limit=x")
        .await
        .expect(422);
}

/// Another environment's tasks never show (D9), in answers or suggestions.
#[tokio::test]
async fn search_sees_only_the_callers_environment() {
    let f = Fixture::start().await;
    let c = f.sdk();
    let b = new_build_id(&c).await;
    register(
        &c,
        &b,
        &task(&hash("mine"), "Mine", "", json!(""), json!({"p": 1})),
    )
    .await;
    let token = f.admin_token().await;
    let admin = f.anonymous().with_bearer(&token);
    let ws = f.cred("STARDAG_WORKSPACE_ID");
    let env = admin
        .post(
            &format!("/api/v1/ui/workspaces/{ws}/environments"),
            &json!({"name": "Other", "slug": "other"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = admin
        .post(
            &format!("/api/v1/ui/workspaces/{ws}/environments/{env}/api-keys"),
            &json!({"name": "k"}),
        )
        .await
        .expect(201)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = f.anonymous().with_api_key(&key);
    let ob = new_build_id(&other).await;
    register(
        &other,
        &ob,
        &task(&hash("theirs"), "Theirs", "", json!(""), json!({"q": 2})),
    )
    .await;
    assert_eq!(hashes(&search(&c, "").await), [hash("mine")]);
    assert_eq!(hashes(&search(&other, "").await), [hash("theirs")]);
    assert_eq!(
        hashes(&search(&other, "filter=param.p%3A1").await),
        Vec::<String>::new()
    );
    let keys = other
        .get("/api/v1/tasks/search/keys?prefix=param")
        .await
        .expect(200);
    assert_eq!(
        keys["keys"],
        json!([{"key": "param.q", "type": "string", "count": 1}])
    );
    // The bearer path with ?environment_id= reaches the same answers.
    let via_token = admin
        .get(&format!(
            "/api/v1/tasks/search?environment_id={}",
            f.env_id()
        ))
        .await
        .expect(200);
    assert_eq!(hashes(&via_token), [hash("mine")]);
}

/// Random data written through the API, read back through the API (task lists,
/// metadata, events, builds, assets), evaluated naively and compared with the search.
#[tokio::test]
async fn http_search_equals_naive_evaluation() {
    use crate::search_property::{gen_object, NAMES, NAMESPACES};
    let f = Fixture::start().await;
    let c = f.sdk();
    let mut rng = Rng::new(2024);
    let mut builds = Vec::new();
    for _ in 0..2 {
        let b = create_build(&c).await;
        builds.push((
            b["id"].as_str().unwrap().to_owned(),
            b["name"].as_str().unwrap().to_owned(),
        ));
    }
    let mut hs = Vec::new();
    for i in 0..24 {
        let h = hash(&format!("prop-{i}"));
        let data = Value::Object(gen_object(&mut rng, 1));
        let version = rng
            .pick(&[json!(null), json!(""), json!("1.0"), json!("2")])
            .clone();
        let (name, ns) = (*rng.pick(&NAMES), *rng.pick(&NAMESPACES));
        let body = task(&h, name, ns, version, data);
        register(&c, &rng.pick(&builds).0.clone(), &body).await;
        hs.push(h);
    }
    for _ in 0..40 {
        let h = rng.pick(&hs).clone();
        let b = rng.pick(&builds).0.clone();
        if rng.chance(20) {
            let name = rng.pick(&["metrics", "report"]).to_string();
            let body = Value::Object(gen_object(&mut rng, 1));
            c.post(
                &format!("/api/v1/builds/{b}/tasks/{h}/assets"),
                &json!([{"type": "json", "name": name, "body": body}]),
            )
            .await
            .expect(201);
        } else {
            let action = *rng.pick(&["start", "complete", "fail", "cancel", "resume"]);
            task_event(&c, &b, &h, action).await;
        }
    }
    // Read everything back over HTTP.
    let list = c.get("/api/v1/tasks?page_size=100").await.expect(200);
    let mut all = Vec::new();
    for row in list["tasks"].as_array().unwrap() {
        let h = row["task_id"].as_str().unwrap();
        let meta = c
            .get(&format!("/api/v1/tasks/{h}/metadata"))
            .await
            .expect(200);
        let events = c
            .get(&format!("/api/v1/tasks/{h}/events"))
            .await
            .expect(200);
        let latest = events[0]["build_id"].as_str().unwrap().to_owned();
        let name = builds.iter().find(|b| b.0 == latest).unwrap().1.clone();
        let assets = c
            .get(&format!("/api/v1/tasks/{h}/assets"))
            .await
            .expect(200);
        all.push(Naive {
            id: uuid::Uuid::parse_str(row["id"].as_str().unwrap()).unwrap(),
            hash: h.to_owned(),
            name: row["task_name"].as_str().unwrap().to_owned(),
            namespace: row["task_namespace"].as_str().unwrap().to_owned(),
            version: row["version"].as_str().map(str::to_owned),
            created_at: stardag_server::clock::parse_rfc3339_micros(
                row["created_at"].as_str().unwrap(),
            )
            .unwrap(),
            data: row["task_data"].as_object().unwrap().clone(),
            status: meta["status"].as_str().unwrap().to_owned(),
            build: Some((uuid::Uuid::parse_str(&latest).unwrap(), name)),
            assets: assets["assets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["name"].as_str().unwrap().to_owned(),
                        a["body"].as_object().unwrap().clone(),
                    )
                })
                .collect(),
        });
    }
    assert_eq!(all.len(), 24);
    let pools = Pools {
        hashes: hs.clone(),
        created: all.iter().map(|t| t.created_at).collect(),
        builds: builds
            .iter()
            .map(|(id, name)| (uuid::Uuid::parse_str(id).unwrap(), name.clone()))
            .collect(),
    };
    let by_id: std::collections::HashMap<uuid::Uuid, String> =
        all.iter().map(|t| (t.id, t.hash.clone())).collect();
    for _ in 0..40 {
        let case = gen_case(&mut rng, &pools);
        let dir = if case.sort.1 { "desc" } else { "asc" };
        let page = case.offset / case.limit + 1;
        let mut query = format!(
            "filter={}&sort={}:{dir}&page={page}&page_size={}",
            enc(&case.filter),
            case.sort.0,
            case.limit
        );
        if let Some(q) = &case.q {
            query.push_str(&format!("&q={}", enc(q)));
        }
        let got = search(&c, &query).await;
        let (ids, total) = naive_search(
            &all,
            &case.parts,
            case.q.as_deref(),
            (&case.sort.0, case.sort.1),
            case.offset,
            case.limit,
        );
        let want: Vec<String> = ids.iter().map(|id| by_id[id].clone()).collect();
        assert_eq!(
            (hashes(&got), got["total"].as_u64().unwrap()),
            (want, total),
            "{query}"
        );
    }
}
