//! Search indexes (v1-tasks §4.4, D20; layout in docs/search.md).
//!
//! Every table is keyed tenant first and kept up to date in the transaction of the write
//! that changes what it indexes: registration (names, version, `task_data` scalars, key
//! shapes), task events (global status, build of the latest event) and asset uploads
//! (asset scalars, shapes). Each write touches a handful of rows per indexed scalar;
//! nothing is ever re-derived from the whole task. Queries live in `query.rs`.

mod query;

use std::ops::Bound;

use redb::{ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde_json::{Map, Value};

use super::codec::decode;
use super::schema::META;
use super::tables::Tables;
use super::tasks::{TaskRow, TaskStateRow, ASSETS, BUILDS, TASKS, TASK_STATES};
use super::{Reader, StoreError};
use crate::domain::events::TaskStatus;
use crate::domain::search::{addressable_key, discover_keys, for_each_scalar, Scalar};

pub use query::{
    asset_bodies, search, search_with, Access, Found, Hit, Strategy, Total, COUNT_BUDGET,
    TOTAL_BOUND,
};

/// (env, field, encoded value, task) → references: every posting list, in task id
/// (= created_at) order within one value. Fields: `param.<path>`, `asset.<name>.<path>`,
/// `version`, and two kept by the write path of events: [`STATUS`] (value: the status
/// code) and [`BUILD`] (value: the build id of the task's latest event). One table, so
/// a commit dirties one tree's pages, not one per kind. Assets of one name but different
/// types can share a posting, hence the reference count. There are no per-value counts:
/// a count row per distinct value doubled the cost of indexing unique values (seeds,
/// paths) on the write path.
pub const POSTINGS: TableDefinition<(u128, &str, &[u8], u128), u32> =
    TableDefinition::new("search_postings");
/// (env, kind, key) → number: tasks per [`STATUS`] code, per [`BUILD`], per
/// [`FIELD_NAME`] and [`FIELD_NAMESPACE`] value (whose postings are the task store's own
/// name indexes), and documents per [`SHAPE`]. All hot rows, all in one table.
pub const COUNTS: TableDefinition<(u128, &str, &[u8]), u64> = TableDefinition::new("search_counts");
/// (env, scope, task) → references: documents with more scalars than are indexed
/// (`param` or `asset.<name>`); queries on that scope check these tasks directly.
pub const OVERFLOW: TableDefinition<(u128, &str, u128), u32> =
    TableDefinition::new("search_overflow");
/// (env, shape) → its keys, newline-separated. Written when a shape first appears.
pub const SHAPES: TableDefinition<(u128, u128), &str> = TableDefinition::new("search_shapes");

/// Posting and count kind of the materialised global status (value: [`TaskStatus::code`]).
pub const STATUS: &str = "@status";
/// Posting and count kind of the build of a task's latest event (value: 16-byte id).
pub const BUILD: &str = "@build";
/// Count kind of discoverable-key shapes (value: 16-byte hash).
pub const SHAPE: &str = "@shape";
/// Count kinds of tasks per (status, name) and (status, namespace): key = the status
/// code, then the name. A by-name page with a status filter skips, without walking its
/// postings, a name that has no task of that status (docs/search.md).
pub const NAME_STATUS: &str = "@name_status";
pub const NAMESPACE_STATUS: &str = "@namespace_status";
pub const FIELD_NAME: &str = "task_name";
pub const FIELD_NAMESPACE: &str = "task_namespace";
pub const FIELD_VERSION: &str = "version";

/// Strings longer than this are indexed by a prefix and checked against the document.
pub const MAX_INDEXED_STRING: usize = 128;
/// Scalars indexed per document; beyond it the document is listed in [`OVERFLOW`].
pub const MAX_INDEXED_SCALARS: usize = 1024;
/// Keys per document offered by discovery.
const MAX_SHAPE_KEYS: usize = 1024;

/// Bumped when the index layout changes: a start with another version rebuilds.
const INDEX_VERSION: u32 = 3;
const INDEX_VERSION_KEY: &str = "search_index_version";

// Encoded values sort by type, then by value: numbers numerically, strings by bytes.
const TAG_BOOL: u8 = 1;
const TAG_NUM: u8 = 2;
const TAG_STR: u8 = 3;
const TAG_LONG: u8 = 4;
/// Above every tag: the end of a field's range.
const TAG_END: u8 = 0xFF;

pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(POSTINGS)?;
    tx.open_table(COUNTS)?;
    tx.open_table(OVERFLOW)?;
    tx.open_table(SHAPES)?;
    Ok(())
}

/// The range of one kind's rows in [`COUNTS`]: `end` is the kind followed by NUL, which
/// sorts after all of them and before any other kind.
pub(crate) fn kind_range<'a>(
    env: u128,
    kind: &'a str,
    end: &'a str,
) -> std::ops::Range<(u128, &'a str, &'a [u8])> {
    (env, kind, &[][..])..(env, end, &[][..])
}

// ---------------------------------------------------------------------------------------
// Value encoding
// ---------------------------------------------------------------------------------------

/// Order-preserving: flip the sign bit of positives, all bits of negatives.
pub fn encode_num(f: f64) -> Vec<u8> {
    let bits = if f == 0.0 {
        0.0f64.to_bits()
    } else {
        f.to_bits()
    };
    let key = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    let mut out = Vec::with_capacity(9);
    out.push(TAG_NUM);
    out.extend_from_slice(&key.to_be_bytes());
    out
}

fn decode_num(raw: &[u8]) -> Option<f64> {
    let key = u64::from_be_bytes(raw.try_into().ok()?);
    let bits = if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    };
    Some(f64::from_bits(bits))
}

/// Short strings whole; long ones as a prefix cut at a character boundary.
pub fn encode_str(s: &str) -> Vec<u8> {
    let (tag, text) = if s.len() <= MAX_INDEXED_STRING {
        (TAG_STR, s)
    } else {
        let mut end = MAX_INDEXED_STRING;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        (TAG_LONG, &s[..end])
    };
    let mut out = Vec::with_capacity(1 + text.len());
    out.push(tag);
    out.extend_from_slice(text.as_bytes());
    out
}

pub fn encode_bool(b: bool) -> Vec<u8> {
    vec![TAG_BOOL, u8::from(b)]
}

pub fn encode_scalar(s: Scalar<'_>) -> Vec<u8> {
    match s {
        Scalar::Bool(b) => encode_bool(b),
        Scalar::Num(n) => encode_num(n),
        Scalar::Str(s) => encode_str(s),
    }
}

/// An indexed value read back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decoded<'a> {
    Scalar(Scalar<'a>),
    /// The prefix of a string too long to index whole: only the document can decide.
    Long(&'a str),
}

pub fn decode_value(enc: &[u8]) -> Option<Decoded<'_>> {
    let (tag, rest) = enc.split_first()?;
    Some(match *tag {
        TAG_BOOL => Decoded::Scalar(Scalar::Bool(rest.first() == Some(&1))),
        TAG_NUM => Decoded::Scalar(Scalar::Num(decode_num(rest)?)),
        TAG_STR => Decoded::Scalar(Scalar::Str(std::str::from_utf8(rest).ok()?)),
        TAG_LONG => Decoded::Long(std::str::from_utf8(rest).ok()?),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// What one document contributes
// ---------------------------------------------------------------------------------------

/// The index entries of one JSON document (`task_data`, or an asset body), computed by
/// the handler off the writer thread.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DocIndex {
    /// `param` or `asset.<name>`.
    pub scope: String,
    /// (field, encoded value) per searchable scalar, at most [`MAX_INDEXED_SCALARS`].
    pub scalars: Vec<(String, Vec<u8>)>,
    /// More scalars than indexed: the document goes to [`OVERFLOW`].
    pub overflow: bool,
    /// Discoverable keys (§4.4) and their hash; `None` for a document without any.
    pub shape: Option<(u128, Vec<String>)>,
}

impl DocIndex {
    pub fn task_data(doc: &Map<String, Value>) -> DocIndex {
        Self::build("param".into(), doc)
    }

    /// Assets whose name a filter cannot spell (`asset.<name>.…`) are not indexed.
    pub fn asset(name: &str, body: &Map<String, Value>) -> DocIndex {
        if !addressable_key(name) {
            return DocIndex::default();
        }
        Self::build(format!("asset.{name}"), body)
    }

    /// From stored JSON text (rebuilds, replaced asset bodies).
    pub fn from_text(scope_name: Option<&str>, text: &str) -> Result<DocIndex, StoreError> {
        let doc: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
                table: "task document",
                why: e.to_string(),
            })?;
        Ok(match scope_name {
            None => Self::task_data(&doc),
            Some(name) => Self::asset(name, &doc),
        })
    }

    fn build(scope: String, doc: &Map<String, Value>) -> DocIndex {
        let mut scalars = Vec::new();
        let mut overflow = false;
        for_each_scalar(doc, &mut |path, s| {
            if scalars.len() < MAX_INDEXED_SCALARS {
                scalars.push((format!("{scope}.{path}"), encode_scalar(s)));
            } else {
                overflow = true;
            }
        });
        let mut keys = discover_keys(doc, &scope);
        keys.truncate(MAX_SHAPE_KEYS);
        let shape = (!keys.is_empty()).then(|| (shape_hash(&keys), keys));
        DocIndex {
            scope,
            scalars,
            overflow,
            shape,
        }
    }
}

fn shape_hash(keys: &[String]) -> u128 {
    let digest = ring::digest::digest(&ring::digest::SHA256, keys.join("\n").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    u128::from_be_bytes(b)
}

// ---------------------------------------------------------------------------------------
// Write-path maintenance
// ---------------------------------------------------------------------------------------

type PostingTable<'t> = Table<'t, (u128, &'static str, &'static [u8], u128), u32>;

/// Adds (`up`) or takes off one reference to a posting; the posting goes at zero.
/// Assets of one name but different types can share a posting, hence the count.
fn adjust_posting(
    postings: &mut PostingTable<'_>,
    key: (u128, &str, &[u8], u128),
    up: bool,
) -> Result<(), StoreError> {
    // A task's own document never repeats a field, so the insert is usually all.
    let old = if up {
        postings.insert(key, 1)?.map(|g| g.value())
    } else {
        postings.remove(key)?.map(|g| g.value())
    };
    match (up, old) {
        (true, Some(refs)) => {
            postings.insert(key, refs + 1)?;
        }
        (false, Some(refs)) if refs > 1 => {
            postings.insert(key, refs - 1)?;
        }
        _ => {}
    }
    Ok(())
}

/// Adds 1 to a count, or takes 1 off (the row goes at zero); returns the old value.
/// Counts live in the batch's cache until it finishes ([`Tables::add_count`]).
fn bump(t: &Tables, env: u128, kind: &str, key: &[u8], up: bool) -> Result<u64, StoreError> {
    t.add_count(env, kind, key, if up { 1 } else { -1 })
}

/// Adds (`up`) or removes one document's entries: scalars, overflow mark, shape.
fn apply_doc(
    t: &Tables,
    postings: &mut PostingTable<'_>,
    env: u128,
    task: u128,
    doc: &DocIndex,
    up: bool,
) -> Result<(), StoreError> {
    for (field, enc) in &doc.scalars {
        adjust_posting(postings, (env, field, enc, task), up)?;
    }
    if doc.overflow {
        let mut overflow = t.overflow()?;
        let key = (env, doc.scope.as_str(), task);
        let refs = overflow.get(key)?.map(|g| g.value()).unwrap_or(0);
        match (up, refs) {
            (true, n) => {
                overflow.insert(key, n + 1)?;
            }
            (false, 0 | 1) => {
                overflow.remove(key)?;
            }
            (false, n) => {
                overflow.insert(key, n - 1)?;
            }
        }
    }
    if let Some((hash, keys)) = &doc.shape {
        let before = bump(t, env, SHAPE, &hash.to_be_bytes(), up)?;
        if up && before == 0 {
            t.shapes()?.insert((env, *hash), keys.join("\n").as_str())?;
        } else if !up && before <= 1 {
            t.shapes()?.remove((env, *hash))?;
        }
    }
    Ok(())
}

/// A new task: name, namespace, version and `task_data`.
pub(crate) fn index_task(
    t: &Tables,
    env: u128,
    row: &TaskRow,
    doc: &DocIndex,
) -> Result<(), StoreError> {
    let task = row.id.as_u128();
    bump(t, env, FIELD_NAME, row.task_name.as_bytes(), true)?;
    bump(t, env, FIELD_NAMESPACE, row.task_namespace.as_bytes(), true)?;
    let mut postings = t.postings()?;
    if let Some(v) = &row.version {
        adjust_posting(
            &mut postings,
            (env, FIELD_VERSION, &encode_str(v), task),
            true,
        )?;
    }
    apply_doc(t, &mut postings, env, task, doc, true)
}

/// What the status and latest-build postings need of a task's global state.
pub(crate) type Indexed = (TaskStatus, Option<u128>);

/// The key of a (status, name) count: the status code, then the name.
pub fn joint_key(code: u8, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(code);
    key.extend_from_slice(name.as_bytes());
    key
}

/// A task's name and namespace, for the (status, name) counts.
pub(crate) type Names<'a> = (&'a str, &'a str);

/// The leading fields of a task row, up to its name.
#[derive(serde::Deserialize)]
struct NamesHead {
    #[allow(dead_code)]
    id: uuid::Uuid,
    #[allow(dead_code)]
    task_id: String,
    task_namespace: String,
    task_name: String,
}

fn names_head(
    tasks: &impl ReadableTable<(u128, u128), &'static [u8]>,
    env: u128,
    task: u128,
) -> Result<NamesHead, StoreError> {
    let raw = tasks.get((env, task))?.ok_or_else(|| StoreError::Corrupt {
        table: "tasks",
        why: format!("task {task:x} has a state but no row"),
    })?;
    super::codec::decode_prefix("tasks", raw.value())
}

fn move_joint(
    t: &Tables,
    env: u128,
    (name, namespace): Names<'_>,
    code: u8,
    up: bool,
) -> Result<(), StoreError> {
    bump(t, env, NAME_STATUS, &joint_key(code, name), up)?;
    bump(t, env, NAMESPACE_STATUS, &joint_key(code, namespace), up)?;
    Ok(())
}

/// Moves a task between status and latest-build postings after an event; `before` is
/// `None` for the task's first event. At most two postings and two counts per kind.
/// `names` are the task's name and namespace when the caller has them; otherwise they
/// are read from its row, only when the status moves.
pub(crate) fn on_state_change(
    t: &Tables,
    env: u128,
    task: u128,
    names: Option<Names<'_>>,
    before: Option<Indexed>,
    after: Indexed,
) -> Result<(), StoreError> {
    let status_moved = before.map(|b| b.0) != Some(after.0);
    let old_build = before.and_then(|b| b.1);
    let build_moved = old_build != after.1;
    if !status_moved && !build_moved {
        return Ok(());
    }
    if status_moved {
        let head: NamesHead;
        let names = match names {
            Some(n) => n,
            None => {
                head = names_head(&*t.tasks()?, env, task)?;
                (head.task_name.as_str(), head.task_namespace.as_str())
            }
        };
        let mut postings = t.postings()?;
        if let Some((old, _)) = before {
            let code = [old.code()];
            postings.remove((env, STATUS, &code[..], task))?;
            bump(t, env, STATUS, &code, false)?;
            move_joint(t, env, names, old.code(), false)?;
        }
        let code = [after.0.code()];
        postings.insert((env, STATUS, &code[..], task), 1)?;
        bump(t, env, STATUS, &code, true)?;
        move_joint(t, env, names, after.0.code(), true)?;
    }
    let mut postings = t.postings()?;
    if build_moved {
        if let Some(old) = old_build {
            let id = old.to_be_bytes();
            postings.remove((env, BUILD, &id[..], task))?;
            bump(t, env, BUILD, &id, false)?;
        }
        if let Some(new) = after.1 {
            let id = new.to_be_bytes();
            postings.insert((env, BUILD, &id[..], task), 1)?;
            bump(t, env, BUILD, &id, true)?;
        }
    }
    Ok(())
}

/// An asset's body was created (`old` None) or replaced.
pub(crate) fn reindex_asset(
    t: &Tables,
    env: u128,
    task: u128,
    old: Option<&DocIndex>,
    new: &DocIndex,
) -> Result<(), StoreError> {
    if old == Some(new) {
        return Ok(());
    }
    let mut postings = t.postings()?;
    if let Some(old) = old {
        apply_doc(t, &mut postings, env, task, old, false)?;
    }
    apply_doc(t, &mut postings, env, task, new, true)
}

/// Half-open bounds over every key of one environment.
fn env_bounds<T: Copy>(env: u128, min: impl Fn(u128) -> T) -> (Bound<T>, Bound<T>) {
    let upper = match env.checked_add(1) {
        Some(next) => Bound::Excluded(min(next)),
        None => Bound::Unbounded,
    };
    (Bound::Included(min(env)), upper)
}

/// Removes an environment's index rows (part of the environment purge).
pub(crate) fn purge_environment(tx: &WriteTransaction, env: u128) -> Result<(), StoreError> {
    tx.open_table(POSTINGS)?
        .retain_in(env_bounds(env, |x| (x, "", &[][..], 0u128)), |_, _| false)?;
    tx.open_table(COUNTS)?
        .retain_in(env_bounds(env, |x| (x, "", &[][..])), |_, _| false)?;
    tx.open_table(OVERFLOW)?
        .retain_in(env_bounds(env, |x| (x, "", 0u128)), |_, _| false)?;
    tx.open_table(SHAPES)?
        .retain_in(env_bounds(env, |x| (x, 0u128)), |_, _| false)?;
    Ok(())
}

/// Builds the indexes from the task tables when the database has none of this layout
/// (a database from before search, or an older index version). Derived data only, so no
/// backup is needed: the rows it reads are not changed.
pub(crate) fn ensure_indexes(db: &redb::Database) -> Result<(), StoreError> {
    let current = {
        let tx = db.begin_read()?;
        let meta = tx.open_table(META)?;
        let current = meta
            .get(INDEX_VERSION_KEY)?
            .and_then(|g| <[u8; 4]>::try_from(g.value()).ok())
            .map(u32::from_le_bytes);
        if current == Some(INDEX_VERSION) {
            return Ok(());
        }
        current
    };
    let tx = db.begin_write()?;
    let tasks = if current == Some(2) {
        add_joint_counts(&tx)?
    } else {
        rebuild(&tx)?
    };
    tx.open_table(META)?
        .insert(INDEX_VERSION_KEY, INDEX_VERSION.to_le_bytes().as_slice())?;
    tx.commit()?;
    if tasks > 0 {
        tracing::info!(tasks, "built search indexes");
    }
    Ok(())
}

/// From index version 2, which lacked them: the (status, name) and (status, namespace)
/// counts, from the task states and the names in the task rows.
fn add_joint_counts(tx: &WriteTransaction) -> Result<u64, StoreError> {
    let t = Tables::new(tx);
    let tasks = tx.open_table(TASKS)?;
    let states = tx.open_table(TASK_STATES)?;
    let mut n = 0;
    for entry in states.iter()? {
        let (k, v) = entry?;
        let (env, task) = k.value();
        let state: TaskStateRow = decode("task_states", v.value())?;
        let head = names_head(&tasks, env, task)?;
        let names = (head.task_name.as_str(), head.task_namespace.as_str());
        move_joint(&t, env, names, state.global.status.code(), true)?;
        n += 1;
    }
    t.finish()?;
    Ok(n)
}

/// Empties every index table and fills it again from tasks, states and assets.
fn rebuild(tx: &WriteTransaction) -> Result<u64, StoreError> {
    // Tables of earlier index versions go too.
    for name in [
        "search_by_status",
        "search_status_counts",
        "search_by_build",
        "search_build_counts",
        "search_values",
        "search_value_counts",
        "search_name_counts",
        "search_shape_counts",
    ] {
        tx.delete_table(TableDefinition::<u64, u64>::new(name))?;
    }
    tx.delete_table(POSTINGS)?;
    tx.delete_table(COUNTS)?;
    tx.delete_table(OVERFLOW)?;
    tx.delete_table(SHAPES)?;
    create_tables(tx)?;
    // Only the index tables are written through the set, so reading the task tables
    // directly does not collide with it.
    let t = Tables::new(tx);
    let mut n = 0;
    let tasks = tx.open_table(TASKS)?;
    for entry in tasks.iter()? {
        let (k, v) = entry?;
        let env = k.value().0;
        let row: TaskRow = decode("tasks", v.value())?;
        index_task(&t, env, &row, &DocIndex::from_text(None, &row.task_data)?)?;
        n += 1;
    }
    let states = tx.open_table(TASK_STATES)?;
    for entry in states.iter()? {
        let (k, v) = entry?;
        let (env, task) = k.value();
        let state: TaskStateRow = decode("task_states", v.value())?;
        let g = &state.global;
        let head = names_head(&tasks, env, task)?;
        let names = (head.task_name.as_str(), head.task_namespace.as_str());
        on_state_change(
            &t,
            env,
            task,
            Some(names),
            None,
            (g.status, g.latest_event_build_id),
        )?;
    }
    let assets = tx.open_table(ASSETS)?;
    for entry in assets.iter()? {
        let (k, v) = entry?;
        let (env, task, _, name) = k.value();
        let row: super::tasks::AssetRow = decode("task_assets", v.value())?;
        reindex_asset(
            &t,
            env,
            task,
            None,
            &DocIndex::from_text(Some(name), &row.body)?,
        )?;
    }
    t.finish()?;
    Ok(n)
}

// ---------------------------------------------------------------------------------------
// Suggestions (keys, values, columns): read from the count tables, never cached
// ---------------------------------------------------------------------------------------

/// A discovered key or value with its frequency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub text: String,
    pub count: u64,
}

fn by_count(mut v: Vec<Counted>) -> Vec<Counted> {
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.text.cmp(&b.text)));
    v
}

/// Calls `f` with each key shape of the environment (its keys, newline-separated) and
/// the number of documents of that shape; stops with `false` after `max` shapes.
fn each_shape(
    counts: &impl ReadableTable<(u128, &'static str, &'static [u8]), u64>,
    shapes: &impl ReadableTable<(u128, u128), &'static str>,
    env: u128,
    max: usize,
    mut f: impl FnMut(&str, u64),
) -> Result<bool, StoreError> {
    for (i, entry) in counts
        .range(kind_range(env, SHAPE, &kind_end(SHAPE)))?
        .enumerate()
    {
        if i == max {
            return Ok(false);
        }
        let (k, v) = entry?;
        let Ok(hash) = <[u8; 16]>::try_from(k.value().2) else {
            continue;
        };
        if let Some(keys) = shapes.get((env, u128::from_be_bytes(hash)))? {
            f(keys.value(), v.value());
        }
    }
    Ok(true)
}

/// The documents whose key shape lists `field` (e.g. `param.x`), or `None` when the
/// environment has more than `max_shapes` shapes. A shape lists at most 1 024 keys, so
/// this can undercount a document with more.
pub fn documents_with_key(
    counts: &impl ReadableTable<(u128, &'static str, &'static [u8]), u64>,
    shapes: &impl ReadableTable<(u128, u128), &'static str>,
    env: uuid::Uuid,
    field: &str,
    max_shapes: usize,
) -> Result<Option<u64>, StoreError> {
    let mut n = 0;
    let complete = each_shape(counts, shapes, env.as_u128(), max_shapes, |keys, docs| {
        if keys.split('\n').any(|k| k == field) {
            n += docs;
        }
    })?;
    Ok(complete.then_some(n))
}

/// Every discoverable `param.…` and `asset.…` key of the environment with the number of
/// documents holding it, most frequent first (ties by key): summed over key shapes, so
/// the cost follows the number of distinct document shapes, not of tasks.
pub fn discovered_keys(
    r: &impl Reader,
    env: uuid::Uuid,
) -> Result<(Vec<Counted>, Vec<Counted>), StoreError> {
    let counts = r.open(COUNTS)?;
    let shapes = r.open(SHAPES)?;
    let mut totals: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    each_shape(&counts, &shapes, env.as_u128(), usize::MAX, |keys, n| {
        for key in keys.split('\n') {
            *totals.entry(key.to_owned()).or_default() += n;
        }
    })?;
    let (params, assets): (Vec<Counted>, Vec<Counted>) = totals
        .into_iter()
        .map(|(text, count)| Counted { text, count })
        .partition(|c| c.text.starts_with("param."));
    Ok((by_count(params), by_count(assets)))
}

/// The distinct values of a `param.`/`asset.`/`version` field with the number of tasks
/// holding each, most frequent first (ties by value), as the text a filter would use,
/// kept when it starts with `prefix` (case-sensitive). Strings too long to index whole
/// are left out. Reads the field's postings, so it costs the number of tasks that have
/// the field.
pub fn field_values(
    r: &impl Reader,
    env: uuid::Uuid,
    field: &str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<Counted>, StoreError> {
    let e = env.as_u128();
    let postings = r.open(POSTINGS)?;
    let mut out: Vec<Counted> = Vec::new();
    let mut run: Option<(Vec<u8>, u64)> = None;
    let flush = |run: Option<(Vec<u8>, u64)>, out: &mut Vec<Counted>| {
        let Some((enc, count)) = run else {
            return;
        };
        if let Some(Decoded::Scalar(s)) = decode_value(&enc) {
            let text = s.text();
            if text.starts_with(prefix) {
                out.push(Counted { text, count });
            }
        }
    };
    let range = (e, field, &[][..], 0u128)..(e, field, &[TAG_END][..], 0u128);
    for entry in postings.range(range)? {
        let (k, _) = entry?;
        let enc = k.value().2;
        match &mut run {
            Some((current, n)) if current.as_slice() == enc => *n += 1,
            _ => {
                flush(run.take(), &mut out);
                run = Some((enc.to_vec(), 1));
            }
        }
    }
    flush(run, &mut out);
    let mut out = by_count(out);
    out.truncate(limit);
    Ok(out)
}

/// Distinct non-empty task names or namespaces with their frequencies, most frequent
/// first (ties by value), kept when they start with `prefix` ignoring case.
pub fn name_values(
    r: &impl Reader,
    env: uuid::Uuid,
    field: &'static str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<Counted>, StoreError> {
    let e = env.as_u128();
    let counts = r.open(COUNTS)?;
    let prefix = prefix.to_lowercase();
    let mut out = Vec::new();
    for entry in counts.range(kind_range(e, field, &kind_end(field)))? {
        let (k, v) = entry?;
        let Ok(text) = std::str::from_utf8(k.value().2) else {
            continue;
        };
        if !text.is_empty() && text.to_lowercase().starts_with(&prefix) {
            out.push(Counted {
                text: text.to_owned(),
                count: v.value(),
            });
        }
    }
    let mut out = by_count(out);
    out.truncate(limit);
    Ok(out)
}

/// The end of a count kind for [`kind_range`].
pub(crate) fn kind_end(kind: &str) -> String {
    format!("{kind}\0")
}

/// Tasks per global status.
pub fn status_counts(
    r: &impl Reader,
    env: uuid::Uuid,
) -> Result<Vec<(TaskStatus, u64)>, StoreError> {
    let e = env.as_u128();
    let counts = r.open(COUNTS)?;
    let mut out = Vec::new();
    for s in TaskStatus::ALL {
        let n = counts
            .get((e, STATUS, &[s.code()][..]))?
            .map(|g| g.value())
            .unwrap_or(0);
        out.push((*s, n));
    }
    Ok(out)
}

/// Builds holding some task's latest event: (id, name, tasks), most tasks first.
pub fn build_values(
    r: &impl Reader,
    env: uuid::Uuid,
) -> Result<Vec<(uuid::Uuid, String, u64)>, StoreError> {
    let e = env.as_u128();
    let counts = r.open(COUNTS)?;
    let builds = r.open(BUILDS)?;
    let mut out = Vec::new();
    for entry in counts.range(kind_range(e, BUILD, &kind_end(BUILD)))? {
        let (k, v) = entry?;
        let Ok(id) = <[u8; 16]>::try_from(k.value().2) else {
            continue;
        };
        let b = u128::from_be_bytes(id);
        let name = match builds.get((e, b))? {
            Some(raw) => super::tasks::build_name_of(raw.value())?,
            None => continue,
        };
        out.push((uuid::Uuid::from_u128(b), name, v.value()));
    }
    out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sort_numerically_and_strings_after_them() {
        let nums = [-1e300, -2.5, -1.0, -0.0, 0.0, 1e-9, 1.0, 2.0, 1e300];
        let encs: Vec<Vec<u8>> = nums.iter().map(|n| encode_num(*n)).collect();
        for w in encs.windows(2) {
            assert!(w[0] <= w[1]);
        }
        assert_eq!(encode_num(-0.0), encode_num(0.0));
        for n in nums {
            assert_eq!(
                decode_value(&encode_num(n)),
                Some(Decoded::Scalar(Scalar::Num(if n == 0.0 { 0.0 } else { n })))
            );
        }
        assert!(encode_bool(true) < encode_num(-1e300));
        assert!(encode_num(1e300) < encode_str(""));
        assert!(encode_str("a") < encode_str("b"));
        let long = "é".repeat(100);
        let enc = encode_str(&long);
        assert_eq!(enc[0], TAG_LONG);
        assert!(enc.len() <= MAX_INDEXED_STRING + 1);
        assert!(matches!(decode_value(&enc), Some(Decoded::Long(p)) if long.starts_with(p)));
    }

    #[test]
    fn documents_index_scalars_keys_and_overflow() {
        let doc: Map<String, Value> =
            serde_json::from_str(r#"{"lr": 0.1, "m": {"k": "v", "on": true}, "big": [1,2,3]}"#)
                .unwrap();
        let ix = DocIndex::task_data(&doc);
        let fields: Vec<&str> = ix.scalars.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "param.big[0]",
                "param.big[1]",
                "param.big[2]",
                "param.lr",
                "param.m.k",
                "param.m.on"
            ]
        );
        assert!(!ix.overflow);
        let (_, keys) = ix.shape.clone().unwrap();
        assert_eq!(
            keys,
            [
                "param.big",
                "param.lr",
                "param.m",
                "param.m.k",
                "param.m.on"
            ]
        );
        let wide: Map<String, Value> = (0..MAX_INDEXED_SCALARS + 1)
            .map(|i| (format!("k{i}"), Value::from(i)))
            .collect();
        let ix = DocIndex::asset("stats", &wide);
        assert_eq!(ix.scalars.len(), MAX_INDEXED_SCALARS);
        assert!(ix.overflow);
        assert_eq!(ix.scope, "asset.stats");
        assert_eq!(DocIndex::asset("a.b", &doc), DocIndex::default());
    }
}
