//! Answering a search from the indexes (docs/search.md "How a query runs").
//!
//! Every condition (and `q`) resolves to a *source*: the index postings that hold exactly
//! its matches. Each term then takes part in one of three ways: streamed (its postings,
//! in id order, through a few cursors), materialised (a bounded set of matches, sorted),
//! or checked on each candidate. The matcher (`cursor.rs`) intersects the streams lazily
//! in result order and stops at the page, so a page costs the ids read up to its last
//! match, not the match count. `total` is exact from the count tables when the query is
//! one counted term, else counted on after the page up to [`TOTAL_BOUND`] matches within
//! a work budget, and flagged as a lower bound when either runs out.

mod cursor;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Bound;

use redb::{ReadOnlyTable, ReadTransaction};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    decode_value, encode_bool, encode_num, encode_str, joint_key, kind_end, kind_range, Decoded,
    BUILD, COUNTS, FIELD_NAME, FIELD_NAMESPACE, FIELD_VERSION, NAMESPACE_STATUS, NAME_STATUS,
    OVERFLOW, POSTINGS, SHAPES, STATUS, TAG_END, TAG_LONG, TAG_NUM,
};
use crate::domain::events::TaskStatus;
use crate::domain::search::{
    contains_ci, json_matches, scalar_matches, text_matches, time_matches, Condition, FilterValue,
    Op, Path, Query, Scalar, Sort, SortField, TextColumn,
};
use crate::store::codec::{decode, decode_borrowed, decode_prefix, FORMAT_VERSION};
use crate::store::tasks::{
    self, v7_id, TaskRow, TaskStateRow, ASSETS, BUILDS, TASKS, TASKS_BY_NAME, TASKS_BY_NAMESPACE,
    TASK_IDS, TASK_STATES,
};
use crate::store::StoreError;
use cursor::{key_hull, Cursor, Matcher, RangeKind, RowGuard, Rows, Step};

/// One task of a result page.
#[derive(Debug, Clone)]
pub struct Hit {
    pub row: TaskRow,
    pub state: TaskStateRow,
    /// The build of the task's latest event, with its name (§4.4 item 3).
    pub build: Option<(Uuid, String)>,
}

/// A result page and the number of matches.
#[derive(Debug, Clone)]
pub struct Found {
    pub hits: Vec<Hit>,
    /// Exact, unless `total_is_lower_bound`: then at least this many match.
    pub total: u64,
    pub total_is_lower_bound: bool,
}

/// The number of matches, or a lower bound of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub n: u64,
    pub lower_bound: bool,
}

impl Total {
    fn exact(n: u64) -> Total {
        Total {
            n,
            lower_bound: false,
        }
    }
}

/// How a term takes part in a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Its postings are walked in id order with the others (leapfrog).
    Stream,
    /// Its matches are collected, sorted, and walked like postings.
    Materialise,
    /// It is checked on each candidate the other terms agree on.
    Filter,
}

/// Planner overrides, so tests can run every execution path on the same data.
#[derive(Debug, Clone, Copy, Default)]
pub struct Strategy {
    /// Take the terms this way (where they can; a term that cannot stream is
    /// materialised instead).
    pub forced: Option<Access>,
    /// Only term number `i` (conditions, then `q`) is forced.
    pub forced_term: Option<usize>,
    /// Never take the total from the count tables.
    pub no_fast_path: bool,
    /// Count at most this many matches for `total` ([`TOTAL_BOUND`]).
    pub total_bound: Option<u64>,
    /// Work units spent counting after the page at most ([`COUNT_BUDGET`]).
    pub count_budget: Option<u64>,
    /// Sort by name or namespace by walking the name index, checking every term.
    pub name_walk: bool,
}

/// `total` is exact up to this many matches; beyond, it is this bound, flagged.
pub const TOTAL_BOUND: u64 = 10_000;
/// Work units (cursor steps 1, re-opened ranges 8, checked tasks 12) spent on counting
/// after the page; when they run out, `total` is the count so far, flagged.
pub const COUNT_BUDGET: u64 = 12_000;
/// A term that cannot be streamed is collected when it has at most this many matches
/// (so no query holds more ids than this per term), else checked per candidate.
const MATERIALISE_CAP: u64 = 20_000;
/// Key shapes read to size a whole field from the shapes' document counts; an
/// environment with more shapes counts the field's postings instead.
const SHAPES_READ: usize = 64;
/// Index ranges united into one cursor at most (names, builds, values of a field).
const MAX_UNION: usize = 16;
/// Distinct values probed when looking for the few a `~`, `!=` or range accepts.
const DISTINCT_PROBE: usize = 64;
/// Distinct names for which sorting by name runs one pass per name.
const MAX_NAME_PASSES: usize = 512;

/// How a term takes part, with its cursor.
enum Way<'a> {
    Stream(Cursor<'a>),
    Filter,
    /// `created_at`: inclusive id ranges.
    Ids(Vec<(u128, u128)>),
}

pub fn search(
    tx: &ReadTransaction,
    env: Uuid,
    query: &Query,
    offset: u64,
    limit: usize,
) -> Result<Found, StoreError> {
    search_with(tx, env, query, offset, limit, Strategy::default())
}

pub fn search_with(
    tx: &ReadTransaction,
    env: Uuid,
    query: &Query,
    offset: u64,
    limit: usize,
    strategy: Strategy,
) -> Result<Found, StoreError> {
    let x = Exec::open(tx, env)?;
    let terms: Vec<Term<'_>> = query
        .conditions
        .iter()
        .map(Term::Cond)
        .chain(query.q.as_deref().map(Term::Q))
        .collect();
    let plans = terms
        .iter()
        .map(|t| x.plan(*t))
        .collect::<Result<Vec<_>, _>>()?;
    let (ids, total) = x.run(plans, query.sort, offset, limit, strategy)?;
    let hits = ids
        .into_iter()
        .map(|id| x.hit(id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Found {
        hits,
        total: total.n,
        total_is_lower_bound: total.lower_bound,
    })
}

/// The bodies of the task's assets with these names; where types share a name, the
/// first type in byte order wins.
pub fn asset_bodies(
    tx: &ReadTransaction,
    env: Uuid,
    task: Uuid,
    names: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let (e, t) = (env.as_u128(), task.as_u128());
    let mut out: Vec<(String, String)> = Vec::new();
    if names.is_empty() {
        return Ok(out);
    }
    let assets = tx.open_table(ASSETS)?;
    for entry in assets.range(task_assets_range(e, t))? {
        let (k, v) = entry?;
        let (_, _, _, name) = k.value();
        if names.iter().any(|n| n == name) && !out.iter().any(|(n, _)| n == name) {
            let row: tasks::AssetRow = decode("task_assets", v.value())?;
            out.push((name.to_owned(), row.body));
        }
    }
    Ok(out)
}

type AssetKey = (u128, u128, &'static str, &'static str);
type PostingKey = (u128, &'static str, &'static [u8], u128);
/// Lower and upper bound of a key range.
type Span<T> = (Bound<T>, Bound<T>);
type Doc = Map<String, Value>;

fn task_assets_range(env: u128, task: u128) -> Span<AssetKey> {
    let upper = match task.checked_add(1) {
        Some(next) => Bound::Excluded((env, next, "", "")),
        None => Bound::Excluded((env.wrapping_add(1), 0, "", "")),
    };
    (Bound::Included((env, task, "", "")), upper)
}

/// The leading fields of a stored task row: enough for every check but `param.`.
#[derive(Deserialize)]
struct TaskHead {
    #[allow(dead_code)]
    id: Uuid,
    task_id: String,
    task_namespace: String,
    task_name: String,
    version: Option<String>,
    #[allow(dead_code)]
    output_uri: Option<String>,
    created_at: i64,
}

/// A stored task row, borrowed as bytes: checks of `param.` terms read only its
/// `task_data`, which the JSON skim reads as bytes (no UTF-8 validation of the row).
#[derive(Deserialize)]
#[allow(dead_code)]
struct RawRow<'a> {
    id: &'a [u8],
    task_id: &'a [u8],
    task_namespace: &'a [u8],
    task_name: &'a [u8],
    version: Option<&'a [u8]>,
    output_uri: Option<&'a [u8]>,
    created_at: i64,
    task_data: &'a [u8],
}

/// `task_data` of a stored task row, found by stepping over the fields before it: the
/// per-task check of a `param.` condition runs tens of thousands of times for one page,
/// and bincode's field-by-field decoding of [`RawRow`] cost as much as the check itself.
/// The layout is bincode's standard one (a test holds it to `decode_borrowed`): varint
/// lengths, a tag byte per `Option`, `created_at` as a varint. `None` when the row does
/// not read so.
fn task_data_of(row: &[u8]) -> Option<&[u8]> {
    let (&version, mut rest) = row.split_first()?;
    if version != FORMAT_VERSION {
        return None;
    }
    // id (16 bytes, length-prefixed), task_id, task_namespace, task_name.
    for _ in 0..4 {
        rest = skip_bytes(rest)?;
    }
    // version, output_uri.
    for _ in 0..2 {
        let (&tag, after) = rest.split_first()?;
        rest = match tag {
            0 => after,
            1 => skip_bytes(after)?,
            _ => return None,
        };
    }
    let (_created_at, after) = varint(rest)?;
    let (len, after) = varint(after)?;
    let data = after.get(..usize::try_from(len).ok()?)?;
    (data.len() == after.len()).then_some(data)
}

/// Past a length-prefixed byte string.
fn skip_bytes(b: &[u8]) -> Option<&[u8]> {
    let (len, rest) = varint(b)?;
    rest.get(usize::try_from(len).ok()?..)
}

/// A bincode varint (up to 64 bits) and the bytes after it.
fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let (&first, rest) = b.split_first()?;
    let wide = |n: usize| -> Option<(u64, &[u8])> {
        let mut buf = [0u8; 8];
        buf[..n].copy_from_slice(rest.get(..n)?);
        Some((u64::from_le_bytes(buf), rest.get(n..)?))
    };
    match first {
        0..=250 => Some((u64::from(first), rest)),
        251 => wide(2),
        252 => wide(4),
        253 => wide(8),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Term<'q> {
    Cond(&'q Condition),
    Q(&'q str),
}

/// Which postings hold a term's matches.
enum Source {
    Status(Vec<u8>),
    /// Sorted, distinct.
    Names(Vec<String>),
    Namespaces(Vec<String>),
    Builds(Vec<u128>),
    /// Inclusive id ranges: `created_at`, since ids embed it.
    Ids(Vec<(u128, u128)>),
    /// A range of task hashes; `scan` means every hash is tested against the term.
    TaskIds {
        lo: Bound<String>,
        hi: Bound<String>,
        scan: bool,
    },
    Values {
        field: String,
        scan: ValueScan,
        /// Overflowing documents of this scope are checked one by one.
        scope: Option<String>,
    },
    Union(Vec<Source>),
}

/// Which encoded values of a field to read. Each posting is still tested against the
/// term (cheaply, once per distinct value), and prefixes of long strings are checked
/// against the document.
enum ValueScan {
    Points(Vec<Vec<u8>>),
    Range(Bound<Vec<u8>>, Bound<Vec<u8>>),
    All,
}

struct Plan<'q> {
    term: Term<'q>,
    source: Source,
    /// `param.…`/`asset.…` field of the term, for point checks.
    field: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Decision {
    Yes,
    No,
    Verify,
}

/// A task being checked; rows are read when a check first needs them.
struct Cand<'r> {
    id: u128,
    head: Option<TaskHead>,
    state: Option<TaskStateRow>,
    /// The stored task row: the head and `param.` checks read it.
    row: Option<RowGuard>,
    /// Where a matcher's walk reads rows in key order (else: a point lookup), with the
    /// walk's direction.
    rows: Option<(&'r mut Rows, bool)>,
    assets: Option<Vec<(String, Map<String, Value>)>>,
}

impl Cand<'_> {
    fn new(id: u128) -> Cand<'static> {
        Cand {
            id,
            head: None,
            state: None,
            row: None,
            rows: None,
            assets: None,
        }
    }

    /// A candidate of a matcher's walk at `key`, whose row comes from `rows`.
    fn walking(id: u128, desc: bool, rows: &mut Rows) -> Cand<'_> {
        Cand {
            rows: Some((rows, desc)),
            ..Cand::new(id)
        }
    }
}

type Ids = Vec<u128>;
type IdIter<'a> = Box<dyn Iterator<Item = Result<u128, StoreError>> + 'a>;

struct Exec {
    env: u128,
    total_tasks: u64,
    tasks: ReadOnlyTable<(u128, u128), &'static [u8]>,
    states: ReadOnlyTable<(u128, u128), &'static [u8]>,
    task_ids: ReadOnlyTable<(u128, &'static str), u128>,
    by_name: ReadOnlyTable<(u128, &'static str, u128), ()>,
    by_namespace: ReadOnlyTable<(u128, &'static str, u128), ()>,
    builds: ReadOnlyTable<(u128, u128), &'static [u8]>,
    assets: ReadOnlyTable<AssetKey, &'static [u8]>,
    postings: ReadOnlyTable<PostingKey, u32>,
    counts: ReadOnlyTable<(u128, &'static str, &'static [u8]), u64>,
    overflow: ReadOnlyTable<(u128, &'static str, u128), u32>,
    shapes: ReadOnlyTable<(u128, u128), &'static str>,
    build_names: RefCell<HashMap<u128, Option<String>>>,
}

fn err(e: redb::StorageError) -> StoreError {
    e.into()
}

/// Sorted, deduplicated.
fn normalise(mut ids: Ids) -> Ids {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Upper bound of an environment's keys in a table keyed (env, &str, u128).
fn env_str_bounds(env: u128) -> Span<(u128, &'static str, u128)> {
    let upper = match env.checked_add(1) {
        Some(next) => Bound::Excluded((next, "", 0)),
        None => Bound::Unbounded,
    };
    (Bound::Included((env, "", 0)), upper)
}

/// The ids whose embedded `created_at` lies in `lo..=hi` microseconds.
fn id_range(lo: i64, hi: i64) -> Option<(u128, u128)> {
    // v7 ids hold 48 bits of milliseconds.
    let max = ((1i64 << 48) - 1) * 1000 + 999;
    let (lo, hi) = (lo.max(0), hi.min(max));
    (lo <= hi).then(|| (v7_id(lo, 0).as_u128(), v7_id(hi, u64::MAX).as_u128()))
}

fn created_at_ranges(op: Op, nanos: i128) -> Vec<(u128, u128)> {
    let floor = nanos.div_euclid(1000);
    let ceil = floor + i128::from(nanos.rem_euclid(1000) != 0);
    let clamp = |m: i128| m.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    let exact = nanos.rem_euclid(1000) == 0;
    let spans: Vec<(i64, i64)> = match op {
        Op::Eq if exact => vec![(clamp(floor), clamp(floor))],
        Op::Eq => vec![],
        Op::Ne if exact => vec![(i64::MIN, clamp(floor - 1)), (clamp(floor + 1), i64::MAX)],
        Op::Ne => vec![(i64::MIN, i64::MAX)],
        Op::Gt => vec![(clamp(floor + 1), i64::MAX)],
        Op::Ge => vec![(clamp(ceil), i64::MAX)],
        Op::Lt => vec![(i64::MIN, clamp(ceil - 1))],
        Op::Le => vec![(i64::MIN, clamp(floor))],
        Op::Contains => vec![],
    };
    spans
        .into_iter()
        .filter_map(|(lo, hi)| id_range(lo, hi))
        .collect()
}

/// Encodings a `=` value can equal: its text, and its number or boolean reading.
fn eq_encodings(v: &FilterValue) -> Vec<Vec<u8>> {
    let mut out = vec![encode_str(&v.raw)];
    if let Some(n) = v.number {
        out.push(encode_num(n));
    }
    if let Some(b) = v.boolean() {
        out.push(encode_bool(b));
    }
    out.sort();
    out
}

/// Tuple bounds over (env, field, enc, task) for an encoded-value range.
fn value_bounds<'a>(
    env: u128,
    field: &'a str,
    lo: &'a Bound<Vec<u8>>,
    hi: &'a Bound<Vec<u8>>,
) -> Span<(u128, &'a str, &'a [u8], u128)> {
    let lo = match lo {
        Bound::Included(e) => Bound::Included((env, field, e.as_slice(), 0)),
        Bound::Excluded(e) => Bound::Excluded((env, field, e.as_slice(), u128::MAX)),
        Bound::Unbounded => Bound::Included((env, field, &[][..], 0)),
    };
    let hi = match hi {
        Bound::Included(e) => Bound::Included((env, field, e.as_slice(), u128::MAX)),
        Bound::Excluded(e) => Bound::Excluded((env, field, e.as_slice(), 0)),
        Bound::Unbounded => Bound::Excluded((env, field, &[TAG_END][..], 0)),
    };
    (lo, hi)
}

impl Exec {
    fn open(tx: &ReadTransaction, env: Uuid) -> Result<Exec, StoreError> {
        let e = env.as_u128();
        Ok(Exec {
            env: e,
            total_tasks: tasks::counts(tx, e)?.1,
            tasks: tx.open_table(TASKS)?,
            states: tx.open_table(TASK_STATES)?,
            task_ids: tx.open_table(TASK_IDS)?,
            by_name: tx.open_table(TASKS_BY_NAME)?,
            by_namespace: tx.open_table(TASKS_BY_NAMESPACE)?,
            builds: tx.open_table(BUILDS)?,
            assets: tx.open_table(ASSETS)?,
            postings: tx.open_table(POSTINGS)?,
            counts: tx.open_table(COUNTS)?,
            overflow: tx.open_table(OVERFLOW)?,
            shapes: tx.open_table(SHAPES)?,
            build_names: RefCell::new(HashMap::new()),
        })
    }

    /// One value's postings, in task id order.
    fn postings_of(
        &self,
        field: &str,
        key: &[u8],
    ) -> Result<redb::Range<'_, PostingKey, u32>, StoreError> {
        let e = self.env;
        Ok(self
            .postings
            .range((e, field, key, 0u128)..=(e, field, key, u128::MAX))?)
    }

    fn count(&self, kind: &str, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self
            .counts
            .get((self.env, kind, key))?
            .map(|g| g.value())
            .unwrap_or(0))
    }

    // -----------------------------------------------------------------------------------
    // Planning
    // -----------------------------------------------------------------------------------

    fn plan<'q>(&self, term: Term<'q>) -> Result<Plan<'q>, StoreError> {
        let mut field = None;
        let source = match term {
            Term::Q(q) => {
                let names = self.distinct(FIELD_NAME, |s| contains_ci(s, q))?;
                let spaces = self.distinct(FIELD_NAMESPACE, |s| contains_ci(s, q))?;
                // One side alone is a counted source: its total is exact for free.
                match (names.is_empty(), spaces.is_empty()) {
                    (_, true) => Source::Names(names),
                    (true, false) => Source::Namespaces(spaces),
                    (false, false) => {
                        Source::Union(vec![Source::Names(names), Source::Namespaces(spaces)])
                    }
                }
            }
            Term::Cond(c) => match c {
                Condition::Status(set) => {
                    Source::Status(set.members().map(TaskStatus::code).collect())
                }
                Condition::Text(col, op, v) => self.text_source(*col, *op, v)?,
                Condition::CreatedAt(op, nanos) => Source::Ids(created_at_ranges(*op, *nanos)),
                Condition::Param(path, op, v) => {
                    let f = format!("param.{}", path.canonical());
                    field = Some(f.clone());
                    Source::Values {
                        field: f,
                        scan: value_scan(*op, v),
                        scope: Some("param".into()),
                    }
                }
                Condition::Asset(name, path, op, v) => {
                    let f = format!("asset.{name}.{}", path.canonical());
                    field = Some(f.clone());
                    Source::Values {
                        field: f,
                        scan: value_scan(*op, v),
                        scope: Some(format!("asset.{name}")),
                    }
                }
            },
        };
        Ok(Plan {
            term,
            source,
            field,
        })
    }

    fn text_source(&self, col: TextColumn, op: Op, v: &FilterValue) -> Result<Source, StoreError> {
        Ok(match col {
            TextColumn::TaskName | TextColumn::TaskNamespace => {
                let field = if col == TextColumn::TaskName {
                    FIELD_NAME
                } else {
                    FIELD_NAMESPACE
                };
                let names = if op == Op::Eq {
                    vec![v.raw.clone()]
                } else {
                    self.distinct(field, |s| text_matches(op, s, v))?
                };
                if col == TextColumn::TaskName {
                    Source::Names(names)
                } else {
                    Source::Namespaces(names)
                }
            }
            TextColumn::TaskId => {
                let s = || v.raw.clone();
                let (lo, hi, scan) = match op {
                    Op::Eq => (Bound::Included(s()), Bound::Included(s()), false),
                    Op::Gt => (Bound::Excluded(s()), Bound::Unbounded, false),
                    Op::Ge => (Bound::Included(s()), Bound::Unbounded, false),
                    Op::Lt => (Bound::Unbounded, Bound::Excluded(s()), false),
                    Op::Le => (Bound::Unbounded, Bound::Included(s()), false),
                    Op::Ne | Op::Contains => (Bound::Unbounded, Bound::Unbounded, true),
                };
                Source::TaskIds { lo, hi, scan }
            }
            TextColumn::Version => Source::Values {
                field: FIELD_VERSION.into(),
                scan: if op == Op::Eq {
                    ValueScan::Points(vec![encode_str(&v.raw)])
                } else {
                    ValueScan::All
                },
                scope: None,
            },
            TextColumn::BuildId | TextColumn::BuildName => {
                let mut builds = Vec::new();
                let end = kind_end(BUILD);
                for entry in self.counts.range(kind_range(self.env, BUILD, &end))? {
                    let Ok(id) = <[u8; 16]>::try_from(entry?.0.value().2) else {
                        continue;
                    };
                    let b = u128::from_be_bytes(id);
                    let hit = if col == TextColumn::BuildId {
                        text_matches(op, &Uuid::from_u128(b).to_string(), v)
                    } else {
                        self.build_name(b)?
                            .is_some_and(|name| text_matches(op, &name, v))
                    };
                    if hit {
                        builds.push(b);
                    }
                }
                Source::Builds(builds)
            }
        })
    }

    /// Distinct names or namespaces passing `keep`, in byte order.
    fn distinct(
        &self,
        field: &'static str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let end = kind_end(field);
        for entry in self.counts.range(kind_range(self.env, field, &end))? {
            let (k, _) = entry?;
            if let Ok(name) = std::str::from_utf8(k.value().2) {
                if keep(name) {
                    out.push(name.to_owned());
                }
            }
        }
        Ok(out)
    }

    fn build_name(&self, build: u128) -> Result<Option<String>, StoreError> {
        if let Some(hit) = self.build_names.borrow().get(&build) {
            return Ok(hit.clone());
        }
        let name = match self.builds.get((self.env, build))? {
            Some(raw) => Some(tasks::build_name_of(raw.value())?),
            None => None,
        };
        self.build_names.borrow_mut().insert(build, name.clone());
        Ok(name)
    }

    /// How a posting's value fares against a `param.`/`asset.`/`version` term.
    fn decide(term: Term<'_>, enc: &[u8]) -> Decision {
        let Some(decoded) = decode_value(enc) else {
            return Decision::No;
        };
        let Decoded::Scalar(s) = decoded else {
            return Decision::Verify;
        };
        let yes = match term {
            Term::Cond(Condition::Param(_, op, v) | Condition::Asset(_, _, op, v)) => {
                scalar_matches(*op, s, v)
            }
            Term::Cond(Condition::Text(TextColumn::Version, op, v)) => {
                matches!(s, Scalar::Str(x) if text_matches(*op, x, v))
            }
            _ => false,
        };
        if yes {
            Decision::Yes
        } else {
            Decision::No
        }
    }

    /// Calls `f(task, decision)` for each posting of `field` in `lo..hi` whose value the
    /// term accepts (or must verify), until `f` answers false. Each distinct value is
    /// judged once; a long run of a rejected value is skipped with a seek, so a `~` or
    /// `!=` over a field with few values costs its matches, not its postings.
    fn visit_postings(
        &self,
        term: Term<'_>,
        field: &str,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
        f: &mut dyn FnMut(u128, Decision) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        /// Rejected postings in a row after which the rest of the value is sought past.
        const SKIP_AFTER: usize = 16;
        let e = self.env;
        let mut from: Bound<(Vec<u8>, u128)> = match lo {
            Bound::Included(x) => Bound::Included((x.clone(), 0)),
            Bound::Excluded(x) => Bound::Excluded((x.clone(), u128::MAX)),
            Bound::Unbounded => Bound::Included((Vec::new(), 0)),
        };
        'seek: loop {
            let start = match &from {
                Bound::Included((x, t)) => Bound::Included((e, field, x.as_slice(), *t)),
                Bound::Excluded((x, t)) => Bound::Excluded((e, field, x.as_slice(), *t)),
                Bound::Unbounded => Bound::Unbounded,
            };
            let (_, end) = value_bounds(e, field, lo, hi);
            let mut run: (Vec<u8>, Decision) = (Vec::new(), Decision::No);
            let mut rejected = 0;
            for entry in self.postings.range((start, end))? {
                let (k, _) = entry?;
                let (_, _, enc, task) = k.value();
                if run.0.as_slice() != enc {
                    run.0.clear();
                    run.0.extend_from_slice(enc);
                    run.1 = Self::decide(term, enc);
                    rejected = 0;
                }
                if run.1 == Decision::No {
                    rejected += 1;
                    if rejected >= SKIP_AFTER {
                        from = Bound::Excluded((run.0, u128::MAX));
                        continue 'seek;
                    }
                    continue;
                }
                if !f(task, run.1)? {
                    return Ok(());
                }
            }
            return Ok(());
        }
    }

    /// Number of matches of a source, counting no further than `cap` where counting
    /// means iterating.
    fn estimate(&self, plan: &Plan<'_>, src: &Source, cap: u64) -> Result<u64, StoreError> {
        let e = self.env;
        Ok(match src {
            Source::Status(codes) => {
                let mut n = 0;
                for c in codes {
                    n += self.count(STATUS, &[*c])?;
                }
                n
            }
            Source::Names(names) | Source::Namespaces(names) => {
                let field = if matches!(src, Source::Names(_)) {
                    FIELD_NAME
                } else {
                    FIELD_NAMESPACE
                };
                let mut n = 0;
                for name in names {
                    n += self.count(field, name.as_bytes())?;
                }
                n
            }
            Source::Builds(builds) => {
                let mut n = 0;
                for b in builds {
                    n += self.count(BUILD, &b.to_be_bytes())?;
                }
                n
            }
            Source::Ids(ranges) => {
                let mut n = 0;
                for (lo, hi) in ranges {
                    for entry in self.tasks.range((e, *lo)..=(e, *hi))? {
                        entry?;
                        n += 1;
                        if n >= cap {
                            return Ok(n);
                        }
                    }
                }
                n
            }
            Source::TaskIds { scan: true, .. } => self.total_tasks,
            Source::TaskIds { lo, hi, .. } => {
                let mut n = 0;
                for entry in self.task_ids.range(hash_bounds(e, lo, hi))? {
                    entry?;
                    n += 1;
                    if n >= cap {
                        break;
                    }
                }
                n
            }
            Source::Values { field, scan, scope } => {
                // Postings are counted (no per-value counts are kept), up to `cap`.
                let mut n = 0;
                for (lo, hi) in &value_ranges(scan) {
                    self.visit_postings(plan.term, field, lo, hi, &mut |_, _| {
                        n += 1;
                        Ok(n < cap)
                    })?;
                    if n >= cap {
                        return Ok(n);
                    }
                }
                if let Some(scope) = scope {
                    for entry in self.overflow.range(overflow_range(e, scope))? {
                        entry?;
                        if n >= cap {
                            break;
                        }
                        n += 1;
                    }
                }
                n
            }
            Source::Union(parts) => {
                let mut n = 0;
                for p in parts {
                    n += self.estimate(plan, p, cap)?;
                }
                n
            }
        })
    }

    // -----------------------------------------------------------------------------------
    // Collecting a source's matches
    // -----------------------------------------------------------------------------------

    fn collect(&self, plan: &Plan<'_>, src: &Source) -> Result<Ids, StoreError> {
        let e = self.env;
        let mut out = Vec::new();
        match src {
            Source::Status(codes) => {
                for c in codes {
                    for entry in self.postings_of(STATUS, &[*c])? {
                        out.push(entry?.0.value().3);
                    }
                }
            }
            Source::Names(names) | Source::Namespaces(names) => {
                let table = if matches!(src, Source::Names(_)) {
                    &self.by_name
                } else {
                    &self.by_namespace
                };
                for name in names {
                    for entry in
                        table.range((e, name.as_str(), 0u128)..=(e, name.as_str(), u128::MAX))?
                    {
                        out.push(entry?.0.value().2);
                    }
                }
            }
            Source::Builds(builds) => {
                for b in builds {
                    for entry in self.postings_of(BUILD, &b.to_be_bytes())? {
                        out.push(entry?.0.value().3);
                    }
                }
            }
            Source::Ids(ranges) => {
                for (lo, hi) in ranges {
                    for entry in self.tasks.range((e, *lo)..=(e, *hi))? {
                        out.push(entry?.0.value().1);
                    }
                }
            }
            Source::TaskIds { lo, hi, scan } => {
                let Term::Cond(Condition::Text(_, op, v)) = plan.term else {
                    return Ok(out);
                };
                for entry in self.task_ids.range(hash_bounds(e, lo, hi))? {
                    let (k, id) = entry?;
                    if !*scan || text_matches(*op, k.value().1, v) {
                        out.push(id.value());
                    }
                }
            }
            Source::Values { field, scan, scope } => {
                for (lo, hi) in &value_ranges(scan) {
                    self.visit_postings(plan.term, field, lo, hi, &mut |task, decision| {
                        let keep = match decision {
                            Decision::Verify => self.check(plan, &mut Cand::new(task))?,
                            _ => true,
                        };
                        if keep {
                            out.push(task);
                        }
                        Ok(true)
                    })?;
                }
                if let Some(scope) = scope {
                    for entry in self.overflow.range(overflow_range(e, scope))? {
                        let task = entry?.0.value().2;
                        if self.check(plan, &mut Cand::new(task))? {
                            out.push(task);
                        }
                    }
                }
            }
            Source::Union(parts) => {
                for p in parts {
                    out.extend(self.collect(plan, p)?);
                }
            }
        }
        Ok(normalise(out))
    }

    // -----------------------------------------------------------------------------------
    // Checking one task against a term
    // -----------------------------------------------------------------------------------

    /// The candidate's stored row, read once.
    fn row<'c>(&self, c: &'c mut Cand<'_>) -> Result<&'c [u8], StoreError> {
        if c.row.is_none() {
            let found = match c.rows.as_mut() {
                Some((rows, desc)) => rows.get(self, *desc, cursor::key(*desc, c.id))?,
                None => self.tasks.get((self.env, c.id))?,
            };
            c.row = Some(found.ok_or_else(|| missing(c.id))?);
        }
        c.row
            .as_ref()
            .map(|g| g.value())
            .ok_or_else(|| missing(c.id))
    }

    fn head<'c>(&self, c: &'c mut Cand<'_>) -> Result<&'c TaskHead, StoreError> {
        if c.head.is_none() {
            let head = decode_prefix("tasks", self.row(c)?)?;
            c.head = Some(head);
        }
        c.head.as_ref().ok_or_else(|| missing(c.id))
    }

    fn state<'c>(&self, c: &'c mut Cand<'_>) -> Result<&'c TaskStateRow, StoreError> {
        if c.state.is_none() {
            c.state = Some(match self.states.get((self.env, c.id))? {
                Some(raw) => decode("task_states", raw.value())?,
                None => TaskStateRow::default(),
            });
        }
        c.state.as_ref().ok_or_else(|| missing(c.id))
    }

    /// `task_data` as stored (JSON text), as bytes.
    fn data<'c>(&self, c: &'c mut Cand<'_>) -> Result<&'c [u8], StoreError> {
        let raw = self.row(c)?;
        match task_data_of(raw) {
            Some(data) => Ok(data),
            // Not the expected layout: decoding says what is wrong.
            None => decode_borrowed::<RawRow<'c>>("tasks", raw).map(|r| r.task_data),
        }
    }

    fn assets<'c>(&self, c: &'c mut Cand<'_>) -> Result<&'c [(String, Doc)], StoreError> {
        if c.assets.is_none() {
            let mut out = Vec::new();
            for entry in self.assets.range(task_assets_range(self.env, c.id))? {
                let (k, v) = entry?;
                let row: tasks::AssetRow = decode("task_assets", v.value())?;
                let body = serde_json::from_str(&row.body).map_err(|e| StoreError::Corrupt {
                    table: "task_assets",
                    why: e.to_string(),
                })?;
                out.push((k.value().3.to_owned(), body));
            }
            c.assets = Some(out);
        }
        Ok(c.assets.as_deref().unwrap_or(&[]))
    }

    /// `param.<path>:=:v` from the index alone, when the index is complete for it.
    fn param_eq_lookup(
        &self,
        field: &str,
        v: &FilterValue,
        id: u128,
    ) -> Result<Option<bool>, StoreError> {
        let encs = eq_encodings(v);
        if encs.iter().any(|x| x[0] == TAG_LONG)
            || self.overflow.get((self.env, "param", id))?.is_some()
        {
            return Ok(None);
        }
        for enc in &encs {
            if self
                .postings
                .get((self.env, field, enc.as_slice(), id))?
                .is_some()
            {
                return Ok(Some(true));
            }
        }
        Ok(Some(false))
    }

    fn check(&self, plan: &Plan<'_>, c: &mut Cand<'_>) -> Result<bool, StoreError> {
        let cond = match plan.term {
            Term::Q(q) => {
                let h = self.head(c)?;
                return Ok(contains_ci(&h.task_name, q) || contains_ci(&h.task_namespace, q));
            }
            Term::Cond(cond) => cond,
        };
        Ok(match cond {
            Condition::Status(set) => set.contains(self.state(c)?.global.status),
            Condition::CreatedAt(op, nanos) => time_matches(*op, self.head(c)?.created_at, *nanos),
            Condition::Text(col, op, v) => match col {
                TextColumn::TaskName => text_matches(*op, &self.head(c)?.task_name, v),
                TextColumn::TaskNamespace => text_matches(*op, &self.head(c)?.task_namespace, v),
                TextColumn::TaskId => text_matches(*op, &self.head(c)?.task_id, v),
                TextColumn::Version => self
                    .head(c)?
                    .version
                    .as_deref()
                    .is_some_and(|x| text_matches(*op, x, v)),
                TextColumn::BuildId => self
                    .state(c)?
                    .global
                    .latest_event_build_id
                    .is_some_and(|b| text_matches(*op, &Uuid::from_u128(b).to_string(), v)),
                TextColumn::BuildName => match self.state(c)?.global.latest_event_build_id {
                    Some(b) => self
                        .build_name(b)?
                        .is_some_and(|name| text_matches(*op, &name, v)),
                    None => false,
                },
            },
            Condition::Param(path, op, v) => {
                if *op == Op::Eq {
                    if let Some(field) = &plan.field {
                        if let Some(answer) = self.param_eq_lookup(field, v, c.id)? {
                            return Ok(answer);
                        }
                    }
                }
                json_matches(path, *op, v, self.data(c)?)
            }
            Condition::Asset(name, path, op, v) => self
                .assets(c)?
                .iter()
                .any(|(n, body)| n == name && matches_path(path, *op, v, body)),
        })
    }

    // -----------------------------------------------------------------------------------
    // Running: lazy matching in result order (cursor.rs)
    // -----------------------------------------------------------------------------------

    fn run(
        &self,
        plans: Vec<Plan<'_>>,
        sort: Sort,
        offset: u64,
        limit: usize,
        strategy: Strategy,
    ) -> Result<(Ids, Total), StoreError> {
        let exact = if strategy.no_fast_path {
            None
        } else {
            self.counted_total(&plans)?
        };
        let desc = sort.descending;
        let (page, seen, exhausted, mut m) = match sort.field {
            SortField::CreatedAt => {
                let mut m = self.matcher(&plans, desc, strategy, true)?;
                let (page, seen, next) = walk(&mut m, 0, offset, limit)?;
                (page, seen, next.is_none(), Some((m, next)))
            }
            field => {
                let (page, seen, exhausted) =
                    self.by_text(&plans, field, desc, offset, limit, strategy)?;
                (page, seen, exhausted, None)
            }
        };
        let total = if let Some(n) = exact {
            Total::exact(n)
        } else if exhausted {
            Total::exact(seen)
        } else {
            let bound = strategy.total_bound.unwrap_or(TOTAL_BOUND).max(seen);
            let budget = strategy.count_budget.unwrap_or(COUNT_BUDGET);
            match m.as_mut() {
                // Counting goes on from the page's end.
                Some((m, Some(from))) => count_on(m, *from, seen, bound, budget)?,
                Some((_, None)) => Total::exact(seen),
                // Sorted by text: count again, in id order.
                None => {
                    let mut m = self.matcher(&plans, false, strategy, true)?;
                    let counted = count_on(&mut m, 0, 0, bound, budget)?;
                    Total {
                        n: counted.n.max(seen),
                        lower_bound: counted.lower_bound,
                    }
                }
            }
        };
        Ok((page, total))
    }

    /// The exact number of matches from the count tables, when the query is one term
    /// whose postings are disjoint per counted value (or no term at all), or a status
    /// term and a name (namespace) term: the (status, name) counts.
    fn counted_total(&self, plans: &[Plan<'_>]) -> Result<Option<u64>, StoreError> {
        match plans {
            [] => Ok(Some(self.total_tasks)),
            [p] => Ok(match &p.source {
                Source::Status(_)
                | Source::Names(_)
                | Source::Namespaces(_)
                | Source::Builds(_) => Some(self.estimate(p, &p.source, u64::MAX)?),
                _ => None,
            }),
            [a, b] => {
                let (codes, names, by_name) = match (&a.source, &b.source) {
                    (Source::Status(c), Source::Names(n))
                    | (Source::Names(n), Source::Status(c)) => (c, n, true),
                    (Source::Status(c), Source::Namespaces(n))
                    | (Source::Namespaces(n), Source::Status(c)) => (c, n, false),
                    _ => return Ok(None),
                };
                if names.len() > MAX_NAME_PASSES {
                    return Ok(None);
                }
                let mut n = 0;
                for name in names {
                    n += self.joint(by_name, codes, name)?;
                }
                Ok(Some(n))
            }
            _ => Ok(None),
        }
    }

    /// Tasks of this name (namespace) with one of these status codes.
    fn joint(&self, by_name: bool, codes: &[u8], name: &str) -> Result<u64, StoreError> {
        let kind = if by_name {
            NAME_STATUS
        } else {
            NAMESPACE_STATUS
        };
        let mut n = 0;
        for code in codes {
            n += self.count(kind, &joint_key(*code, name))?;
        }
        Ok(n)
    }

    /// The conjunction of the plans in a page's direction. `drive`: when no term
    /// streams, every task is a candidate (the task table is the stream).
    fn matcher<'a, 'q>(
        &'a self,
        plans: &'a [Plan<'q>],
        desc: bool,
        strategy: Strategy,
        drive: bool,
    ) -> Result<Matcher<'a, 'q>, StoreError> {
        let mut m = Matcher {
            x: self,
            desc,
            streams: Vec::new(),
            filters: Vec::new(),
            id_ranges: Vec::new(),
            lo: 0,
            hi: u128::MAX,
            work: 0,
            budget: u64::MAX,
            rows: Rows::default(),
        };
        for (i, p) in plans.iter().enumerate() {
            let forced = strategy
                .forced
                .filter(|_| strategy.forced_term.is_none_or(|t| t == i));
            match self.access(p, desc, forced)? {
                Way::Stream(c) => m.streams.push(c),
                Way::Filter => m.filters.push(p),
                Way::Ids(ranges) => {
                    let (lo, hi) = key_hull(desc, &ranges);
                    m.lo = m.lo.max(lo);
                    m.hi = m.hi.min(hi);
                    m.id_ranges.push(ranges);
                }
            }
        }
        m.filters.sort_by_key(|p| check_cost(p));
        if drive && m.streams.is_empty() {
            // With checks to run, the driving cursor holds each task's row for them.
            m.streams.push(if m.filters.is_empty() {
                Cursor::range(self, RangeKind::Tasks, desc)
            } else {
                Cursor::Tasks {
                    x: self,
                    desc,
                    rows: Rows::default(),
                }
            });
        }
        Ok(m)
    }

    /// How a term takes part: streamed when its postings come in id order through few
    /// cursors, else materialised when it has at most [`MATERIALISE_CAP`] matches, else
    /// checked on each candidate. A `created_at` range is an id range: it bounds the walk.
    fn access<'a>(
        &'a self,
        p: &Plan<'_>,
        desc: bool,
        forced: Option<Access>,
    ) -> Result<Way<'a>, StoreError> {
        if let Source::Ids(ranges) = &p.source {
            return Ok(Way::Ids(ranges.clone()));
        }
        let materialise = |x: &'a Exec| -> Result<Way<'a>, StoreError> {
            Ok(Way::Stream(Cursor::sorted(&x.collect(p, &p.source)?, desc)))
        };
        match forced {
            Some(Access::Filter) => return Ok(Way::Filter),
            Some(Access::Materialise) => return materialise(self),
            Some(Access::Stream) | None => {}
        }
        if let Some(c) = self.stream_of(p, &p.source, desc)? {
            return Ok(Way::Stream(c));
        }
        if forced == Some(Access::Stream) {
            return materialise(self);
        }
        if matches!(p.source, Source::TaskIds { scan: true, .. }) {
            return Ok(Way::Filter);
        }
        let size = match &p.source {
            // Postings in the value range, accepted or not: bounded work, even over a
            // field whose values are all distinct.
            Source::Values {
                field,
                scan: scan @ (ValueScan::Range(..) | ValueScan::All),
                ..
            } => match (scan, self.documents_with_key(field)?) {
                // A whole field that more documents hold than the cap: counting its
                // postings up to the cap would cost ~2.5 ms at 100 000 tasks.
                (ValueScan::All, Some(n)) if n > MATERIALISE_CAP => n,
                _ => self.postings_in(field, scan, MATERIALISE_CAP + 1)?,
            },
            src => self.estimate(p, src, MATERIALISE_CAP + 1)?,
        };
        if size <= MATERIALISE_CAP {
            return materialise(self);
        }
        Ok(Way::Filter)
    }

    /// Documents holding `field`, from the key shapes' counts (`None` past
    /// [`SHAPES_READ`] shapes). It can undercount, so it only ever skips a count that
    /// would have passed a cap; either plan it leads to is exact, one only slower.
    fn documents_with_key(&self, field: &str) -> Result<Option<u64>, StoreError> {
        let env = Uuid::from_u128(self.env);
        super::documents_with_key(&self.counts, &self.shapes, env, field, SHAPES_READ)
    }

    /// Postings of a field in a scan's value ranges, counted up to `cap`.
    fn postings_in(&self, field: &str, scan: &ValueScan, cap: u64) -> Result<u64, StoreError> {
        let mut n = 0;
        for (lo, hi) in &value_ranges(scan) {
            for entry in self.postings.range(value_bounds(self.env, field, lo, hi))? {
                entry?;
                n += 1;
                if n >= cap {
                    return Ok(n);
                }
            }
        }
        Ok(n)
    }

    /// A cursor over a source's matches in id order, when few index ranges hold them.
    fn stream_of<'a>(
        &'a self,
        p: &Plan<'_>,
        src: &Source,
        desc: bool,
    ) -> Result<Option<Cursor<'a>>, StoreError> {
        let posting = |field: &str, enc: Vec<u8>| {
            Cursor::range(self, RangeKind::Posting(field.to_owned(), enc), desc)
        };
        Ok(Some(match src {
            Source::Status(codes) => {
                Cursor::Union(codes.iter().map(|c| posting(STATUS, vec![*c])).collect())
            }
            Source::Builds(builds) if builds.len() <= MAX_UNION => Cursor::Union(
                builds
                    .iter()
                    .map(|b| posting(BUILD, b.to_be_bytes().to_vec()))
                    .collect(),
            ),
            Source::Names(names) | Source::Namespaces(names) if names.len() <= MAX_UNION => {
                let by_name = matches!(src, Source::Names(_));
                Cursor::Union(
                    names
                        .iter()
                        .map(|n| Cursor::range(self, RangeKind::Name(by_name, n.clone()), desc))
                        .collect(),
                )
            }
            Source::TaskIds {
                lo: Bound::Included(a),
                hi: Bound::Included(b),
                scan: false,
            } if a == b => {
                let id = self
                    .task_ids
                    .get((self.env, a.as_str()))?
                    .map(|g| g.value());
                Cursor::sorted(&id.into_iter().collect::<Vec<_>>(), desc)
            }
            Source::Values { field, scan, scope } => {
                let encs = match scan {
                    ValueScan::Points(encs) => encs.clone(),
                    ValueScan::Range(lo, hi) => match self.accepted_values(p, field, lo, hi)? {
                        Some(encs) => encs,
                        None => return Ok(None),
                    },
                    ValueScan::All => {
                        match self.accepted_values(
                            p,
                            field,
                            &Bound::Unbounded,
                            &Bound::Unbounded,
                        )? {
                            Some(encs) => encs,
                            None => return Ok(None),
                        }
                    }
                };
                // Prefixes of long strings and overflowing documents are checked here,
                // once, into a bounded list.
                let mut checked = Vec::new();
                let mut parts = Vec::new();
                for enc in encs {
                    if enc.first() == Some(&TAG_LONG) {
                        for entry in self.postings_of(field, &enc)? {
                            let task = entry?.0.value().3;
                            if self.check(p, &mut Cand::new(task))? {
                                checked.push(task);
                            }
                            if checked.len() as u64 > MATERIALISE_CAP {
                                return Ok(None);
                            }
                        }
                    } else {
                        parts.push(posting(field, enc));
                    }
                }
                if let Some(scope) = scope {
                    for entry in self.overflow.range(overflow_range(self.env, scope))? {
                        let task = entry?.0.value().2;
                        if self.check(p, &mut Cand::new(task))? {
                            checked.push(task);
                        }
                        if checked.len() as u64 > MATERIALISE_CAP {
                            return Ok(None);
                        }
                    }
                }
                if !checked.is_empty() {
                    parts.push(Cursor::sorted(&checked, desc));
                }
                Cursor::Union(parts)
            }
            Source::Union(parts) => {
                let mut cursors = Vec::new();
                for part in parts {
                    match self.stream_of(p, part, desc)? {
                        Some(c) => cursors.push(c),
                        None => return Ok(None),
                    }
                }
                Cursor::Union(cursors)
            }
            _ => return Ok(None),
        }))
    }

    /// The distinct encoded values of a field in `lo..hi` that the term accepts (or must
    /// verify), found by seeking from value to value; `None` when the field has more than
    /// [`DISTINCT_PROBE`] values there or the term accepts more than [`MAX_UNION`].
    fn accepted_values(
        &self,
        p: &Plan<'_>,
        field: &str,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let e = self.env;
        let (_, end) = value_bounds(e, field, lo, hi);
        let mut from: Bound<Vec<u8>> = lo.clone();
        let mut out = Vec::new();
        for _ in 0..=DISTINCT_PROBE {
            let start = match &from {
                Bound::Included(x) => Bound::Included((e, field, x.as_slice(), 0u128)),
                Bound::Excluded(x) => Bound::Excluded((e, field, x.as_slice(), u128::MAX)),
                Bound::Unbounded => Bound::Included((e, field, &[][..], 0u128)),
            };
            let Some(entry) = self.postings.range((start, end))?.next() else {
                return Ok(Some(out));
            };
            let (k, _) = entry?;
            let enc = k.value().2.to_vec();
            if Self::decide(p.term, &enc) != Decision::No {
                if out.len() >= MAX_UNION {
                    return Ok(None);
                }
                out.push(enc.clone());
            }
            from = Bound::Excluded(enc);
        }
        Ok(None)
    }

    /// A page ordered by name or namespace (then id): one pass of the matcher per
    /// distinct name in sort order, each restricted to that name's postings, until the
    /// page is full. With very many distinct names, the name index is walked and every
    /// term checked. Returns the page, the matches seen, and whether they were all.
    fn by_text(
        &self,
        plans: &[Plan<'_>],
        field: SortField,
        desc: bool,
        offset: u64,
        limit: usize,
        strategy: Strategy,
    ) -> Result<(Ids, u64, bool), StoreError> {
        let by_name = field == SortField::TaskName;
        let column = if by_name { FIELD_NAME } else { FIELD_NAMESPACE };
        let mut names = self.distinct(column, |_| true)?;
        if names.len() > MAX_NAME_PASSES || strategy.name_walk {
            return self.walk_names(plans, by_name, desc, offset, limit);
        }
        if desc {
            names.reverse();
        }
        let mut m = self.matcher(plans, desc, strategy, false)?;
        // The status terms' codes: a name with no task of those statuses has no match,
        // and its pass is skipped without walking its postings (they can be many, and a
        // leapfrog proves an empty intersection only by stepping through them).
        let statuses: Vec<&[u8]> = plans
            .iter()
            .filter_map(|p| match &p.source {
                Source::Status(codes) if !strategy.no_fast_path => Some(codes.as_slice()),
                _ => None,
            })
            .collect();
        let only_status = plans.len() == 1 && statuses.len() == 1;
        let (mut page, mut seen) = (Vec::new(), 0u64);
        for name in names {
            if !statuses.is_empty() {
                let mut most = u64::MAX;
                for codes in &statuses {
                    most = most.min(self.joint(by_name, codes, &name)?);
                }
                // With status the only term, `most` is the name's match count: a pass
                // that would only skip matches before the page is not walked either.
                if most == 0 || (only_status && offset.saturating_sub(seen) >= most) {
                    seen += most;
                    continue;
                }
            }
            m.reset();
            m.streams
                .push(Cursor::range(self, RangeKind::Name(by_name, name), desc));
            let skip = offset.saturating_sub(seen);
            let (part, n, _) = walk(&mut m, 0, skip, limit - page.len())?;
            m.streams.pop();
            page.extend(part);
            seen += n;
            if page.len() >= limit {
                return Ok((page, seen, false));
            }
        }
        Ok((page, seen, true))
    }

    /// By name without passes: the name index in sort order, every term checked.
    fn walk_names(
        &self,
        plans: &[Plan<'_>],
        by_name: bool,
        desc: bool,
        offset: u64,
        limit: usize,
    ) -> Result<(Ids, u64, bool), StoreError> {
        let table = if by_name {
            &self.by_name
        } else {
            &self.by_namespace
        };
        let range = table.range(env_str_bounds(self.env))?;
        let iter: IdIter<'_> = if desc {
            Box::new(
                range
                    .rev()
                    .map(|e| e.map(|(k, _)| k.value().2).map_err(err)),
            )
        } else {
            Box::new(range.map(|e| e.map(|(k, _)| k.value().2).map_err(err)))
        };
        let (mut page, mut seen) = (Vec::new(), 0u64);
        'tasks: for id in iter {
            let id = id?;
            let mut cand = Cand::new(id);
            for p in plans {
                let ok = match &p.source {
                    Source::Ids(ranges) => ranges.iter().any(|(lo, hi)| *lo <= id && id <= *hi),
                    _ => self.check(p, &mut cand)?,
                };
                if !ok {
                    continue 'tasks;
                }
            }
            if seen >= offset {
                page.push(id);
            }
            seen += 1;
            if page.len() >= limit {
                return Ok((page, seen, false));
            }
        }
        Ok((page, seen, true))
    }

    fn hit(&self, id: u128) -> Result<Hit, StoreError> {
        let raw = self.tasks.get((self.env, id))?.ok_or_else(|| missing(id))?;
        let row: TaskRow = decode("tasks", raw.value())?;
        let mut c = Cand::new(id);
        let state = self.state(&mut c)?.clone();
        let build = match state.global.latest_event_build_id {
            Some(b) => self.build_name(b)?.map(|name| (Uuid::from_u128(b), name)),
            None => None,
        };
        Ok(Hit { row, state, build })
    }
}

fn missing(id: u128) -> StoreError {
    StoreError::Corrupt {
        table: "search",
        why: format!("index names task {id:x}, which has no row"),
    }
}

fn matches_path(path: &Path, op: Op, v: &FilterValue, doc: &Map<String, Value>) -> bool {
    path.get(doc).is_some_and(|s| scalar_matches(op, s, v))
}

/// The encoded-value ranges a scan reads.
fn value_ranges(scan: &ValueScan) -> Vec<Span<Vec<u8>>> {
    match scan {
        ValueScan::Points(encs) => encs
            .iter()
            .map(|x| (Bound::Included(x.clone()), Bound::Included(x.clone())))
            .collect(),
        ValueScan::Range(lo, hi) => vec![(lo.clone(), hi.clone())],
        ValueScan::All => vec![(Bound::Unbounded, Bound::Unbounded)],
    }
}

fn value_scan(op: Op, v: &FilterValue) -> ValueScan {
    let num = |x: f64| encode_num(x);
    let (first, past) = (vec![TAG_NUM], vec![TAG_NUM + 1]);
    match (op, v.number) {
        (Op::Eq, _) => ValueScan::Points(eq_encodings(v)),
        (Op::Gt, Some(x)) => ValueScan::Range(Bound::Excluded(num(x)), Bound::Excluded(past)),
        (Op::Ge, Some(x)) => ValueScan::Range(Bound::Included(num(x)), Bound::Excluded(past)),
        (Op::Lt, Some(x)) => ValueScan::Range(Bound::Included(first), Bound::Excluded(num(x))),
        (Op::Le, Some(x)) => ValueScan::Range(Bound::Included(first), Bound::Included(num(x))),
        _ => ValueScan::All,
    }
}

fn overflow_range(env: u128, scope: &str) -> std::ops::RangeInclusive<(u128, &str, u128)> {
    (env, scope, 0u128)..=(env, scope, u128::MAX)
}

fn hash_bounds<'a>(
    env: u128,
    lo: &'a Bound<String>,
    hi: &'a Bound<String>,
) -> Span<(u128, &'a str)> {
    let lo = match lo {
        Bound::Included(s) => Bound::Included((env, s.as_str())),
        Bound::Excluded(s) => Bound::Excluded((env, s.as_str())),
        Bound::Unbounded => Bound::Included((env, "")),
    };
    let hi = match hi {
        Bound::Included(s) => Bound::Included((env, s.as_str())),
        Bound::Excluded(s) => Bound::Excluded((env, s.as_str())),
        Bound::Unbounded => match env.checked_add(1) {
            Some(next) => Bound::Excluded((next, "")),
            None => Bound::Unbounded,
        },
    };
    (lo, hi)
}

/// Walks matches from key `from`: skips `offset`, keeps up to `limit`. Returns the page,
/// the matches walked (skipped ones included), and the key to go on from (`None` when
/// the matches ran out).
fn walk(
    m: &mut Matcher<'_, '_>,
    from: u128,
    offset: u64,
    limit: usize,
) -> Result<(Ids, u64, Option<u128>), StoreError> {
    let (mut page, mut seen, mut from) = (Vec::with_capacity(limit), 0u64, from);
    while page.len() < limit {
        match m.next(from)? {
            Step::Match(k) => {
                if seen >= offset {
                    page.push(cursor::key(m.desc, k));
                }
                seen += 1;
                match k.checked_add(1) {
                    Some(next) => from = next,
                    None => return Ok((page, seen, None)),
                }
            }
            Step::End | Step::OutOfBudget => return Ok((page, seen, None)),
        }
    }
    Ok((page, seen, Some(from)))
}

/// Counts on from key `from`, `seen` matches already known: exact when the matches end
/// before `bound` and the work budget; else `bound` (or what the budget reached) as a
/// lower bound.
fn count_on(
    m: &mut Matcher<'_, '_>,
    mut from: u128,
    mut seen: u64,
    bound: u64,
    budget: u64,
) -> Result<Total, StoreError> {
    m.budget = m.work.saturating_add(budget);
    loop {
        match m.next(from)? {
            Step::Match(k) => {
                if seen >= bound {
                    return Ok(Total {
                        n: seen,
                        lower_bound: true,
                    });
                }
                seen += 1;
                match k.checked_add(1) {
                    Some(next) => from = next,
                    None => return Ok(Total::exact(seen)),
                }
            }
            Step::End => return Ok(Total::exact(seen)),
            Step::OutOfBudget => {
                return Ok(Total {
                    n: seen,
                    lower_bound: true,
                })
            }
        }
    }
}

/// Rough cost of checking a term on one task, to check cheap terms first.
fn check_cost(p: &Plan<'_>) -> u8 {
    match p.term {
        Term::Q(_) => 2,
        Term::Cond(c) => match c {
            Condition::CreatedAt(..) => 0,
            Condition::Status(_) => 1,
            Condition::Text(TextColumn::BuildId | TextColumn::BuildName, ..) => 1,
            Condition::Text(..) => 2,
            Condition::Param(_, Op::Eq, _) => 3,
            Condition::Param(..) => 4,
            Condition::Asset(..) => 5,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::encode;

    /// The hand-read `task_data` is what decoding the row gives, for every length form
    /// and option.
    #[test]
    fn task_data_of_agrees_with_decoding() {
        for (long, data_len, some) in [(1, 10, false), (300, 70_000, true), (70_000, 0, true)] {
            let row = TaskRow {
                id: Uuid::now_v7(),
                task_id: "h".repeat(long),
                task_namespace: "ns".into(),
                task_name: "n".repeat(long),
                version: some.then(|| "v".repeat(long)),
                output_uri: some.then(|| "s3://x".into()),
                created_at: if some {
                    -1 << 40
                } else {
                    1_700_000_000_000_000
                },
                task_data: format!("{{\"x\":\"{}\"}}", "d".repeat(data_len)),
            };
            let raw = encode(&row).unwrap();
            let want: RawRow<'_> = decode_borrowed("tasks", &raw).unwrap();
            assert_eq!(task_data_of(&raw), Some(want.task_data));
            assert_eq!(task_data_of(&raw[..raw.len() - 1]), None);
        }
    }
}
