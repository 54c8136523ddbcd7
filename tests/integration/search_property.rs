//! Search answers == a brute-force evaluation over the same data (issue "How it will be
//! checked"). Random tasks, events, assets and filters; the store's indexed search runs
//! under every planner strategy (each condition as driver, intersecting or checking,
//! streamed or not) and must return exactly the naive answer: same total, same page.
//! The naive side is written here from docs/search.md, independently of the server.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};
use stardag_server::clock::now_micros;
use stardag_server::domain::events::EventType;
use stardag_server::domain::search::Query;
use stardag_server::store::search::{self, Access, DocIndex, Strategy};
use stardag_server::store::tables::Tables;
use stardag_server::store::tasks::{
    self, AssetInput, NewBuild, NewEvent, Registration, TrackError,
};
use stardag_server::store::{Store, StoreError, StoreOptions};
use uuid::Uuid;

/// SplitMix64: small, deterministic, good enough to shuffle test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

// ---------------------------------------------------------------------------------------
// Random data
// ---------------------------------------------------------------------------------------

pub const NAMES: [&str; 7] = [
    "Train",
    "train_model",
    "Evaluate",
    "Prep%",
    "Ünïcode",
    "a_b",
    "",
];
pub const NAMESPACES: [&str; 4] = ["", "ml", "ML.core", "etl"];
const KEYS: [&str; 11] = [
    "lr", "n", "s", "flag", "cfg", "list", "tags", "odd.key", "__name", "deep", "Ü",
];
const STRINGS: [&str; 10] = [
    "a", "A", "alpha", "Alpha", "1", "1.0", "true", "50%", "x_y", "",
];

pub fn long_string(tail: char) -> String {
    format!("{}{tail}", "L".repeat(130))
}

pub fn gen_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(12) {
        0 | 1 => json!(rng.below(7) as i64 - 3),
        2 => json!(*rng.pick(&[0.5, -0.0, 1.0, 2.5, 1e-3])),
        3 | 4 => json!(rng.pick(&STRINGS)),
        5 => json!(rng.chance(50)),
        6 => Value::Null,
        7 | 8 if depth < 4 => Value::Object(gen_object(rng, depth + 1)),
        9 | 10 => {
            let n = if rng.chance(5) { 40 } else { 1 + rng.below(3) };
            Value::Array((0..n).map(|_| gen_value(rng, depth + 1)).collect())
        }
        _ => json!(long_string(*rng.pick(&['q', 'r']))),
    }
}

pub fn gen_object(rng: &mut Rng, depth: usize) -> Map<String, Value> {
    let mut m = Map::new();
    if depth == 1 {
        // Dense at the top, so filters on common keys meet many typed values.
        for key in KEYS {
            if rng.chance(55) {
                let v = match key {
                    "n" if rng.chance(60) => json!(rng.below(5) as i64 - 2),
                    "lr" if rng.chance(60) => json!(*rng.pick(&[0.5, 1.0, 2.5, -0.0])),
                    "s" if rng.chance(60) => json!(rng.pick(&STRINGS)),
                    _ => gen_value(rng, depth),
                };
                m.insert(key.to_string(), v);
            }
        }
        // Few values over many tasks: long runs of one value in the postings.
        m.insert("kind".into(), json!(rng.pick(&["a", "b", "c"])));
        // Now and then a document wider than the index takes (overflow).
        if rng.chance(3) {
            for i in 0..1100 {
                m.insert(format!("k{i}"), json!(i % 7));
            }
        }
    } else {
        for _ in 0..1 + rng.below(3) {
            m.insert(rng.pick(&KEYS).to_string(), gen_value(rng, depth));
        }
    }
    m
}

// ---------------------------------------------------------------------------------------
// Random filters (only well-formed ones: the 422 paths are tested over HTTP)
// ---------------------------------------------------------------------------------------

const PATHS: [&str; 18] = [
    "lr",
    "n",
    "s",
    "flag",
    "cfg",
    "cfg.lr",
    "cfg.s",
    "cfg.deep.n",
    "list[0]",
    "list[1]",
    "list[2].s",
    "tags[0]",
    "deep.cfg.n",
    "k5",
    "k1050",
    "Ü",
    "__name",
    "missing",
];
const NUMBERS: [&str; 8] = ["0", "1", "-1", "0.5", "2.5", "-0.5", "3", "1e-3"];
const OPS: [&str; 7] = ["=", "!=", ">", "<", ">=", "<=", "~"];

/// What a test knows about its data, for drawing filter values from it.
pub struct Pools {
    pub hashes: Vec<String>,
    pub created: Vec<i64>,
    pub builds: Vec<(Uuid, String)>,
}

pub fn gen_filter(rng: &mut Rng, pools: &Pools) -> String {
    let op = *rng.pick(&OPS);
    let text_value = |rng: &mut Rng| -> String {
        let extra = ["train", "rain", "%", "_", "ü", "Ü", "b", "T", "ML", "l"];
        if rng.chance(50) {
            rng.pick(&NAMES).to_string()
        } else {
            rng.pick(&extra).to_string()
        }
    };
    match rng.below(11) {
        0 => {
            let op = *rng.pick(&["=", "!=", "~"]);
            let v = if op == "~" {
                *rng.pick(&["e", "ED", "run", "x"])
            } else {
                *rng.pick(&[
                    "pending",
                    "running",
                    "completed",
                    "failed",
                    "cancelled",
                    "Suspended",
                ])
            };
            format!("status:{op}:{v}")
        }
        1 => format!("task_name:{op}:{}", text_value(rng)),
        2 => {
            let v = if rng.chance(60) {
                rng.pick(&NAMESPACES).to_string()
            } else {
                rng.pick(&["ml", "CORE", "e", "."]).to_string()
            };
            format!("task_namespace:{op}:{v}")
        }
        3 => {
            let h = rng.pick(&pools.hashes).clone();
            let v = match rng.below(3) {
                0 => h,
                1 => h[..8].to_owned(),
                _ => h[10..14].to_uppercase(),
            };
            format!("task_id:{op}:{v}")
        }
        4 => {
            let v = rng
                .pick(&["", "1.0", "2", "1", "V", &long_string('v')])
                .to_string();
            format!("version:{op}:{v}")
        }
        5 => {
            let (id, name) = rng.pick(&pools.builds).clone();
            if rng.chance(50) {
                let v = if rng.chance(70) {
                    id.to_string()
                } else {
                    id.to_string()[..6].to_owned()
                };
                format!("build_id:{op}:{v}")
            } else {
                let v = if rng.chance(70) {
                    name
                } else {
                    name[..3].to_owned()
                };
                format!("build_name:{op}:{v}")
            }
        }
        6 => {
            let op = *rng.pick(&["=", "!=", ">", "<", ">=", "<="]);
            let micros = *rng.pick(&pools.created);
            let nanos = i128::from(micros) * 1000 + *rng.pick(&[0i128, 0, 1, -1, 999]);
            let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap();
            let text = if rng.chance(30) {
                t.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap())
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            } else {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            };
            format!("created_at:{op}:{text}")
        }
        n => {
            let key = if n < 9 {
                let common = [
                    "n", "lr", "s", "flag", "cfg.n", "cfg.s", "list[0]", "list[1]", "kind",
                ];
                let path = if rng.chance(70) {
                    *rng.pick(&common)
                } else {
                    *rng.pick(&PATHS)
                };
                format!("param.{path}")
            } else {
                let path = *rng.pick(&["s", "n", "cfg.lr", "list[0]", "k5", "lr"]);
                format!("asset.{}.{path}", rng.pick(&["metrics", "report"]))
            };
            let v = if ["=", "!=", "~"].contains(&op) && rng.chance(60) {
                let pool = [
                    "a", "A", "alpha", "1", "1.0", "true", "false", "50%", "x_y", "", "l", "LLLL",
                    "b", "c",
                ];
                if rng.chance(8) {
                    long_string(*rng.pick(&['q', 'r']))
                } else {
                    rng.pick(&pool).to_string()
                }
            } else {
                rng.pick(&NUMBERS).to_string()
            };
            format!("{key}:{op}:{v}")
        }
    }
}

// ---------------------------------------------------------------------------------------
// The naive evaluation
// ---------------------------------------------------------------------------------------

/// A task as the naive search sees it, read back through the task store's plain reads.
#[derive(Debug, Clone)]
pub struct Naive {
    pub id: Uuid,
    pub hash: String,
    pub name: String,
    pub namespace: String,
    pub version: Option<String>,
    pub created_at: i64,
    pub data: Map<String, Value>,
    pub status: String,
    pub build: Option<(Uuid, String)>,
    pub assets: Vec<(String, Map<String, Value>)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Sc {
    B(bool),
    N(f64),
    S(String),
}

fn scalar(v: &Value) -> Option<Sc> {
    match v {
        Value::Bool(b) => Some(Sc::B(*b)),
        Value::Number(n) => n.as_f64().map(|f| Sc::N(if f == 0.0 { 0.0 } else { f })),
        Value::String(s) => Some(Sc::S(s.clone())),
        _ => None,
    }
}

fn at_path(doc: &Map<String, Value>, path: &str) -> Option<Sc> {
    let segs: Vec<&str> = path.split('.').collect();
    let mut cur = doc;
    for (i, seg) in segs.iter().enumerate() {
        let (name, idx) = match seg.split_once('[') {
            Some((n, rest)) => (n, Some(rest.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (*seg, None),
        };
        let mut v = cur.get(name)?;
        if let Some(i) = idx {
            v = v.as_array()?.get(i)?;
        }
        if i + 1 == segs.len() {
            return scalar(v);
        }
        cur = v.as_object()?;
    }
    None
}

fn number(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn ord_holds(op: &str, o: Ordering) -> bool {
    match op {
        "=" => o == Ordering::Equal,
        "!=" => o != Ordering::Equal,
        ">" => o == Ordering::Greater,
        "<" => o == Ordering::Less,
        ">=" => o != Ordering::Less,
        "<=" => o != Ordering::Greater,
        _ => unreachable!(),
    }
}

fn has(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

fn text(op: &str, stored: &str, v: &str) -> bool {
    if op == "~" {
        has(stored, v)
    } else {
        ord_holds(op, stored.cmp(v))
    }
}

fn scalar_ok(op: &str, sc: &Sc, v: &str) -> bool {
    let eq = match sc {
        Sc::S(s) => s == v,
        Sc::N(n) => number(v) == Some(*n),
        Sc::B(b) => v == if *b { "true" } else { "false" },
    };
    match op {
        "=" => eq,
        "!=" => !eq,
        "~" => {
            let t = match sc {
                Sc::S(s) => s.clone(),
                Sc::N(n) => format!("{n}"),
                Sc::B(b) => b.to_string(),
            };
            has(&t, v)
        }
        _ => match (sc, number(v)) {
            (Sc::N(n), Some(x)) => ord_holds(op, n.partial_cmp(&x).unwrap()),
            _ => false,
        },
    }
}

/// One `key:op:value` part against one task (the parts the generator writes all have
/// an explicit operator).
pub fn naive_part(t: &Naive, part: &str) -> bool {
    let (key, rest) = part.split_once(':').unwrap();
    let (op, v) = rest.split_once(':').unwrap();
    match key {
        "status" => {
            let v = v.to_lowercase();
            match op {
                "=" => t.status == v,
                "!=" => t.status != v,
                _ => t.status.contains(&v),
            }
        }
        "task_name" => text(op, &t.name, v),
        "task_namespace" => text(op, &t.namespace, v),
        "task_id" => text(op, &t.hash, v),
        "version" => t.version.as_deref().is_some_and(|x| text(op, x, v)),
        "build_id" => t
            .build
            .as_ref()
            .is_some_and(|b| text(op, &b.0.to_string(), v)),
        "build_name" => t.build.as_ref().is_some_and(|b| text(op, &b.1, v)),
        "created_at" => {
            let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                .unwrap()
                .unix_timestamp_nanos();
            ord_holds(op, (i128::from(t.created_at) * 1000).cmp(&at))
        }
        _ => {
            if let Some(path) = key.strip_prefix("param.") {
                at_path(&t.data, path).is_some_and(|sc| scalar_ok(op, &sc, v))
            } else {
                let (name, path) = key.strip_prefix("asset.").unwrap().split_once('.').unwrap();
                t.assets.iter().any(|(n, body)| {
                    n == name && at_path(body, path).is_some_and(|sc| scalar_ok(op, &sc, v))
                })
            }
        }
    }
}

/// The whole naive search: filter, order by (field, internal id), page.
pub fn naive_search(
    all: &[Naive],
    parts: &[String],
    q: Option<&str>,
    sort: (&str, bool),
    offset: usize,
    limit: usize,
) -> (Vec<Uuid>, u64) {
    let mut hits: Vec<&Naive> = all
        .iter()
        .filter(|t| parts.iter().all(|p| naive_part(t, p)))
        .filter(|t| q.is_none_or(|q| q.is_empty() || has(&t.name, q) || has(&t.namespace, q)))
        .collect();
    hits.sort_by(|a, b| {
        let by = match sort.0 {
            "task_name" => a.name.cmp(&b.name),
            "task_namespace" => a.namespace.cmp(&b.namespace),
            _ => a.created_at.cmp(&b.created_at),
        };
        by.then(a.id.cmp(&b.id))
    });
    if sort.1 {
        hits.reverse();
    }
    let total = hits.len() as u64;
    (
        hits.into_iter()
            .skip(offset)
            .take(limit)
            .map(|t| t.id)
            .collect(),
        total,
    )
}

/// Reads an environment back through the task store's plain (non-search) reads.
pub fn snapshot(store: &Store, env: Uuid) -> Vec<Naive> {
    store
        .read_blocking(|tx| -> Result<Vec<Naive>, StoreError> {
            let (rows, _) = tasks::list_tasks(tx, env, None, None, 0, 10_000)?;
            let mut out = Vec::new();
            for row in rows {
                let (_, state) = tasks::task_with_state(tx, env, &row.task_id)?.unwrap();
                let g = &state.global;
                let build = match g.latest_event_build_id {
                    Some(b) => {
                        let b = Uuid::from_u128(b);
                        Some((b, tasks::build(tx, env, b)?.unwrap().name))
                    }
                    None => None,
                };
                let assets = tasks::task_assets(tx, env, &row.task_id)?
                    .unwrap()
                    .into_iter()
                    .map(|a| (a.name, serde_json::from_str(&a.row.body).unwrap()))
                    .collect();
                out.push(Naive {
                    id: row.id,
                    hash: row.task_id.clone(),
                    name: row.task_name.clone(),
                    namespace: row.task_namespace.clone(),
                    version: row.version.clone(),
                    created_at: row.created_at,
                    data: serde_json::from_str(&row.task_data).unwrap(),
                    status: g.status.as_str().to_owned(),
                    build,
                    assets,
                });
            }
            Ok(out)
        })
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Store-level property test
// ---------------------------------------------------------------------------------------

fn open_store(dir: &tempfile::TempDir) -> Store {
    Store::open(
        &dir.path().join("search.redb"),
        &StoreOptions {
            cache_bytes: 16 << 20,
            write_queue: 64,
            max_batch: 16,
            ..Default::default()
        },
    )
    .unwrap()
}

const BUILD_NAMES: [&str; 3] = ["calm-river-10", "bold-tiger-11", "calm-river-10"];
const ACTIONS: [EventType; 7] = [
    EventType::TaskStarted,
    EventType::TaskCompleted,
    EventType::TaskFailed,
    EventType::TaskCancelled,
    EventType::TaskResumed,
    EventType::TaskSuspended,
    EventType::TaskWaitingForLock,
];

/// Fills `env` with random builds, tasks, events and assets; returns the filter pools.
fn populate(store: &Store, env: Uuid, rng: &mut Rng, n_tasks: usize) -> Pools {
    let mut builds = Vec::new();
    for (i, name) in BUILD_NAMES.iter().enumerate() {
        let new = NewBuild {
            user_id: None,
            name: name.to_string(),
            description: None,
            commit_hash: None,
            root_task_ids: vec![],
            salt: i as u64,
        };
        let row = store
            .write_blocking(move |tx| {
                Tables::with(tx, |t| tasks::create_build(t, env, new, now_micros()))
            })
            .unwrap();
        builds.push((row.id, row.name));
    }
    let mut hashes = Vec::new();
    let mut created = Vec::new();
    for i in 0..n_tasks {
        let hash = Uuid::from_u64_pair(rng.next(), rng.next()).to_string();
        let data = gen_object(rng, 1);
        let reg = Registration {
            task_id: hash.clone(),
            task_namespace: rng.pick(&NAMESPACES).to_string(),
            task_name: rng.pick(&NAMES).to_string(),
            search: DocIndex::task_data(&data),
            task_data: Value::Object(data).to_string(),
            version: rng
                .pick(&[None, Some(""), Some("1.0"), Some("2"), Some("V")])
                .map(str::to_owned)
                .or_else(|| rng.chance(10).then(|| long_string('v'))),
            output_uri: None,
            dependency_task_ids: vec![],
            salt: i as u64,
        };
        let build = rng.pick(&builds).0;
        let row = store
            .write_blocking(move |tx| {
                Tables::with(tx, |t| {
                    tasks::register_task(t, env, build, reg, now_micros())
                })
            })
            .unwrap();
        hashes.push(hash);
        created.push(row.created_at);
    }
    for _ in 0..n_tasks * 2 {
        let hash = rng.pick(&hashes).clone();
        let build = rng.pick(&builds).0;
        match rng.below(10) {
            0 => {
                // A re-registration elsewhere moves the task's latest build.
                let reg = Registration {
                    task_id: hash,
                    task_namespace: String::new(),
                    task_name: String::new(),
                    task_data: "{}".into(),
                    version: None,
                    output_uri: None,
                    dependency_task_ids: vec![],
                    salt: 0,
                    search: DocIndex::default(),
                };
                store
                    .write_blocking(move |tx| {
                        Tables::with(tx, |t| {
                            tasks::register_task(t, env, build, reg, now_micros())
                        })
                    })
                    .unwrap();
            }
            1 | 2 => {
                let items: Vec<AssetInput> = (0..1 + rng.below(2))
                    .map(|_| {
                        let name = rng.pick(&["metrics", "report", "m.x"]).to_string();
                        let body = gen_object(rng, 1);
                        AssetInput {
                            asset_type: rng.pick(&["json", "markdown"]).to_string(),
                            search: DocIndex::asset(&name, &body),
                            name,
                            body: Value::Object(body).to_string(),
                        }
                    })
                    .collect();
                let salt = rng.next();
                store
                    .write_blocking(move |tx| {
                        Tables::with(tx, |t| {
                            tasks::upload_assets(t, env, build, &hash, items, salt, now_micros())
                        })
                    })
                    .unwrap();
            }
            _ => {
                let action = *rng.pick(&ACTIONS);
                store
                    .write_blocking(move |tx| -> Result<(), TrackError> {
                        let event = NewEvent {
                            error_message: Some("boom".into()),
                            ..NewEvent::plain(action, now_micros())
                        };
                        Tables::with(tx, |t| tasks::task_event(t, env, build, &hash, event))?;
                        Ok(())
                    })
                    .unwrap();
            }
        }
    }
    Pools {
        hashes,
        created,
        builds,
    }
}

/// Every way the planner can take the terms, and small bounds for the counted total.
fn strategies(terms: usize) -> Vec<Strategy> {
    let base = Strategy::default();
    let mut out = vec![
        base,
        Strategy {
            no_fast_path: true,
            ..base
        },
        Strategy {
            name_walk: true,
            ..base
        },
        // Exact up to a bound of 3 matches, then flagged.
        Strategy {
            no_fast_path: true,
            total_bound: Some(3),
            ..base
        },
        // A counting budget that runs out at once.
        Strategy {
            no_fast_path: true,
            count_budget: Some(5),
            ..base
        },
    ];
    for way in [Access::Stream, Access::Materialise, Access::Filter] {
        out.push(Strategy {
            forced: Some(way),
            no_fast_path: true,
            ..base
        });
        for t in 0..terms {
            out.push(Strategy {
                forced: Some(way),
                forced_term: Some(t),
                no_fast_path: true,
                ..base
            });
        }
    }
    out
}

/// The total a strategy must report, given the naive count and the page it returned.
fn check_total(
    strategy: &Strategy,
    found: &search::Found,
    naive: u64,
    offset: usize,
    limit: usize,
) -> Result<(), String> {
    let shown = (offset + found.hits.len()) as u64;
    if !found.total_is_lower_bound {
        return (found.total == naive)
            .then_some(())
            .ok_or(format!("exact total {} != {naive}", found.total));
    }
    if found.hits.len() < limit {
        return Err("a short page means the matches ran out: the total is exact".into());
    }
    if found.total > naive || found.total < shown {
        return Err(format!(
            "lower bound {} outside {shown}..={naive}",
            found.total
        ));
    }
    if let (Some(b), None) = (strategy.total_bound, strategy.count_budget) {
        let bound = b.max(shown);
        if found.total != bound || naive <= bound {
            return Err(format!(
                "bound {bound}: flagged total {} for {naive} matches",
                found.total
            ));
        }
    }
    Ok(())
}

pub struct Case {
    pub filter: String,
    pub parts: Vec<String>,
    pub q: Option<String>,
    pub sort: (String, bool),
    pub offset: usize,
    pub limit: usize,
}

pub fn gen_case(rng: &mut Rng, pools: &Pools) -> Case {
    let parts: Vec<String> = (0..rng.below(4)).map(|_| gen_filter(rng, pools)).collect();
    let q = rng
        .chance(25)
        .then(|| rng.pick(&["rain", "ML", "%", "ü", "_", "t"]).to_string());
    let field = rng
        .pick(&["created_at", "task_name", "task_namespace"])
        .to_string();
    let limit = 1 + rng.below(12);
    Case {
        filter: parts.join(","),
        parts,
        q,
        sort: (field, rng.chance(60)),
        offset: rng.below(3) * limit,
        limit,
    }
}

#[test]
fn indexed_search_equals_naive_evaluation() {
    for seed in 0..12u64 {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir);
        let mut rng = Rng::new(seed);
        let env = Uuid::now_v7();
        let other = Uuid::now_v7();
        let pools = populate(&store, env, &mut rng, 70);
        // A second environment with the same kinds of data must never leak in.
        populate(&store, other, &mut rng, 15);
        let all = snapshot(&store, env);
        let mut checked = 0;
        for _ in 0..60 {
            let case = gen_case(&mut rng, &pools);
            let sort_text = format!(
                "{}:{}",
                case.sort.0,
                if case.sort.1 { "desc" } else { "asc" }
            );
            let query = Query::parse(Some(&case.filter), case.q.as_deref(), Some(&sort_text))
                .unwrap_or_else(|e| panic!("seed {seed}: {:?} refused: {e:?}", case.filter));
            let want = naive_search(
                &all,
                &case.parts,
                case.q.as_deref(),
                (&case.sort.0, case.sort.1),
                case.offset,
                case.limit,
            );
            let terms = query.conditions.len() + usize::from(query.q.is_some());
            for strategy in strategies(terms) {
                let found = store
                    .read_blocking(|tx| {
                        search::search_with(
                            tx,
                            env,
                            &query,
                            case.offset as u64,
                            case.limit,
                            strategy,
                        )
                    })
                    .unwrap();
                let got: Vec<Uuid> = found.hits.iter().map(|h| h.row.id).collect();
                let total = check_total(&strategy, &found, want.1, case.offset, case.limit);
                assert_eq!(
                    (got, total),
                    (want.0.clone(), Ok(())),
                    "seed {seed}, filter {:?}, q {:?}, sort {sort_text}, offset {}, limit {}, {strategy:?}",
                    case.filter,
                    case.q,
                    case.offset,
                    case.limit
                );
                checked += 1;
            }
        }
        assert!(checked >= 120);
        store.shutdown();
    }
}

/// The (status, name) and (status, namespace) counts kept by the writes: a status
/// AND a name filter takes its exact total from them, and a status filter sorted by name
/// or namespace skips names by them, at every depth of paging.
#[test]
fn status_by_name_uses_exact_joint_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let mut rng = Rng::new(41);
    let env = Uuid::now_v7();
    populate(&store, env, &mut rng, 90);
    let all = snapshot(&store, env);
    let mut statuses: Vec<String> = all.iter().map(|t| t.status.clone()).collect();
    statuses.sort();
    statuses.dedup();
    assert!(statuses.len() >= 4, "{statuses:?}");
    let search = |filter: &str, sort: &str, offset: usize, limit: usize| {
        let query = Query::parse(Some(filter), None, Some(sort)).unwrap();
        store
            .read_blocking(|tx| search::search(tx, env, &query, offset as u64, limit))
            .unwrap()
    };
    for status in &statuses {
        for (key, names) in [
            ("task_name", &NAMES[..]),
            ("task_namespace", &NAMESPACES[..]),
        ] {
            for name in names.iter().filter(|n| !n.is_empty()) {
                let parts = vec![format!("status:=:{status}"), format!("{key}:=:{name}")];
                let found = search(&parts.join(","), "created_at:desc", 0, 5);
                let want = naive_search(&all, &parts, None, ("created_at", true), 0, 5);
                assert!(!found.total_is_lower_bound, "{parts:?}");
                assert_eq!(found.total, want.1, "{parts:?}");
            }
            for desc in [false, true] {
                let parts = vec![format!("status:=:{status}")];
                let sort = format!("{key}:{}", if desc { "desc" } else { "asc" });
                let want_all = naive_search(&all, &parts, None, (key, desc), 0, 1000).0;
                for offset in (0..=want_all.len() + 3).step_by(3) {
                    let found = search(&parts[0], &sort, offset, 3);
                    let got: Vec<Uuid> = found.hits.iter().map(|h| h.row.id).collect();
                    let want: Vec<Uuid> = want_all.iter().skip(offset).take(3).copied().collect();
                    assert_eq!(got, want, "{status} {sort} offset {offset}");
                    assert_eq!(found.total, want_all.len() as u64);
                }
            }
        }
    }
    store.shutdown();
}

/// The naive side is not vacuous: the random filters select a spread of result sizes.
#[test]
fn random_filters_select_varied_result_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let mut rng = Rng::new(99);
    let env = Uuid::now_v7();
    let pools = populate(&store, env, &mut rng, 70);
    let all = snapshot(&store, env);
    let (mut empty, mut some, mut most) = (0, 0, 0);
    for _ in 0..300 {
        let part = gen_filter(&mut rng, &pools);
        let n = all.iter().filter(|t| naive_part(t, &part)).count();
        match n {
            0 => empty += 1,
            n if n * 2 < all.len() => some += 1,
            _ => most += 1,
        }
    }
    assert!(
        empty > 10 && some > 60 && most > 10,
        "{empty} {some} {most}"
    );
    store.shutdown();
}

/// Rebuilding the indexes from the task tables (a database from before search, or a
/// newer index layout) gives the same answers as the indexes kept up by the writes.
#[test]
fn indexes_rebuilt_at_start_answer_like_maintained_ones() {
    use redb::{ReadableDatabase, TableDefinition, TableHandle};
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(7);
    let env = Uuid::now_v7();
    let store = open_store(&dir);
    let pools = populate(&store, env, &mut rng, 60);
    let cases: Vec<Case> = (0..80).map(|_| gen_case(&mut rng, &pools)).collect();
    let answers = |store: &Store| -> Vec<(Vec<Uuid>, u64)> {
        cases
            .iter()
            .map(|c| {
                let sort = format!("{}:{}", c.sort.0, if c.sort.1 { "desc" } else { "asc" });
                let q = Query::parse(Some(&c.filter), c.q.as_deref(), Some(&sort)).unwrap();
                let f = store
                    .read_blocking(|tx| search::search(tx, env, &q, c.offset as u64, c.limit))
                    .unwrap();
                (f.hits.iter().map(|h| h.row.id).collect(), f.total)
            })
            .collect()
    };
    let before = answers(&store);
    store.shutdown();
    drop(store);

    // Make it look like a database that never had search indexes.
    {
        let db = redb::Database::create(dir.path().join("search.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        let names: Vec<String> = tx
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_owned())
            .filter(|n| n.starts_with("search_"))
            .collect();
        assert_eq!(names.len(), 4);
        for name in names {
            assert!(tx
                .delete_table(TableDefinition::<u64, u64>::new(&name))
                .unwrap());
        }
        const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
        tx.open_table(META)
            .unwrap()
            .remove("search_index_version")
            .unwrap();
        tx.commit().unwrap();
        let r = db.begin_read().unwrap();
        assert!(r
            .list_tables()
            .unwrap()
            .all(|t| !t.name().starts_with("search_")));
    }
    let store = open_store(&dir);
    assert_eq!(answers(&store), before);
    store.shutdown();
}

/// A database of index version 2 (without the (status, name) counts) gets them at start
/// without a rebuild, and answers as before.
#[test]
fn joint_counts_are_added_to_a_version_2_index() {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(8);
    let env = Uuid::now_v7();
    let store = open_store(&dir);
    populate(&store, env, &mut rng, 60);
    let joint = |db: &redb::Database| -> Vec<(Vec<u8>, u64)> {
        let tx = db.begin_read().unwrap();
        let counts = tx.open_table(search::COUNTS).unwrap();
        let mut out = Vec::new();
        for entry in counts.iter().unwrap() {
            let (k, v) = entry.unwrap();
            let (_, kind, key) = k.value();
            if kind == search::NAME_STATUS || kind == search::NAMESPACE_STATUS {
                let mut id = kind.as_bytes().to_vec();
                id.extend_from_slice(key);
                out.push((id, v.value()));
            }
        }
        out
    };
    store.shutdown();
    drop(store);
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    let kept = {
        let db = redb::Database::create(dir.path().join("search.redb")).unwrap();
        let kept = joint(&db);
        assert!(kept.len() > 10);
        let tx = db.begin_write().unwrap();
        tx.open_table(search::COUNTS)
            .unwrap()
            .retain(|(_, kind, _), _| {
                kind != search::NAME_STATUS && kind != search::NAMESPACE_STATUS
            })
            .unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("search_index_version", 2u32.to_le_bytes().as_slice())
            .unwrap();
        tx.commit().unwrap();
        assert!(joint(&db).is_empty());
        kept
    };
    let store = open_store(&dir);
    store.shutdown();
    drop(store);
    let db = redb::Database::create(dir.path().join("search.redb")).unwrap();
    assert_eq!(joint(&db), kept);
}

/// Deleting an environment removes its index rows and no one else's.
#[test]
fn purge_clears_one_environments_indexes() {
    use redb::ReadableTable;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let mut rng = Rng::new(3);
    let (gone, kept) = (Uuid::now_v7(), Uuid::now_v7());
    populate(&store, gone, &mut rng, 20);
    populate(&store, kept, &mut rng, 20);
    store
        .write_blocking(move |tx| stardag_server::store::purge_environment_data(tx, gone))
        .unwrap();
    store
        .read_blocking(|tx| -> Result<(), StoreError> {
            let (g, k) = (gone.as_u128(), kept.as_u128());
            let postings: Vec<u128> = tx
                .open_table(search::POSTINGS)?
                .iter()?
                .map(|e| e.unwrap().0.value().0)
                .collect();
            let counts: Vec<u128> = tx
                .open_table(search::COUNTS)?
                .iter()?
                .map(|e| e.unwrap().0.value().0)
                .collect();
            let overflow: Vec<u128> = tx
                .open_table(search::OVERFLOW)?
                .iter()?
                .map(|e| e.unwrap().0.value().0)
                .collect();
            let shapes: Vec<u128> = tx
                .open_table(search::SHAPES)?
                .iter()?
                .map(|e| e.unwrap().0.value().0)
                .collect();
            for (name, owners) in [
                ("postings", &postings),
                ("counts", &counts),
                ("overflow", &overflow),
                ("shapes", &shapes),
            ] {
                assert!(
                    !owners.contains(&g),
                    "{name} keeps rows of the purged environment"
                );
            }
            for (name, owners) in [
                ("postings", &postings),
                ("counts", &counts),
                ("shapes", &shapes),
            ] {
                assert!(owners.contains(&k), "{name} lost the other environment");
            }
            Ok(())
        })
        .unwrap();
    store.shutdown();
}

/// The planner sizes a whole field (`~`, `!=`) from the key shapes' document counts
/// instead of counting its postings: the sums equal a count over the documents, and
/// there is no answer past the limit of shapes read.
#[test]
fn documents_with_key_counts_the_documents_of_each_shape() {
    use stardag_server::domain::search::discover_keys;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let env = Uuid::now_v7();
    populate(&store, env, &mut Rng::new(11), 200);
    let docs = snapshot(&store, env);
    // A shape keeps the first 1 024 keys of its document (some generated documents
    // have more): the count is of the documents whose shape lists the key.
    let keys_of = |d: &Naive| {
        let mut keys = discover_keys(&d.data, "param");
        keys.truncate(1024);
        keys
    };
    let mut fields: Vec<String> = docs.iter().flat_map(keys_of).collect();
    fields.sort();
    fields.dedup();
    assert!(fields.len() > 3, "{fields:?}");
    fields.push("param.absent".into());
    store
        .read_blocking(|tx| -> Result<(), StoreError> {
            let counts = tx.open_table(search::COUNTS)?;
            let shapes = tx.open_table(search::SHAPES)?;
            let e = env.as_u128();
            let n_shapes = shapes.range((e, 0)..=(e, u128::MAX))?.count();
            // Shapes held by several documents, so that the sums are sums.
            let kind = (e, search::SHAPE, &[][..])..(e, "@shape\0", &[][..]);
            let shared = counts
                .range(kind)?
                .filter(|c| c.as_ref().unwrap().1.value() > 1);
            assert!(shared.count() > 0);
            for f in &fields {
                let want = docs.iter().filter(|d| keys_of(d).contains(f)).count() as u64;
                let got = search::documents_with_key(&counts, &shapes, env, f, usize::MAX)?;
                assert_eq!(got, Some(want), "{f}");
            }
            assert!(n_shapes >= 2, "{n_shapes}");
            let f = &fields[0];
            let at_limit = search::documents_with_key(&counts, &shapes, env, f, n_shapes)?;
            assert!(at_limit.is_some());
            let past = search::documents_with_key(&counts, &shapes, env, f, n_shapes - 1)?;
            assert_eq!(past, None);
            Ok(())
        })
        .unwrap();
}
