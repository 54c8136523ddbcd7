//! The task-search language (v1-tasks §4.4 as made exact by D20, docs/search.md): filter
//! parsing, the searchable JSON paths, and the meaning of every operator on every kind of
//! value. The store answers queries from indexes; this module is the definition those
//! indexes must agree with, and what candidates are checked against.
//!
//! Pure: no I/O, no panics.

use std::fmt;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::events::TaskStatus;

mod skim;
pub use skim::json_matches;

/// A searchable path has at most this many name segments (`a.b.c`), the depth `/keys`
/// discovers. Deeper leaves are not indexed, so deeper filters are refused, not dropped.
pub const MAX_PATH_DEPTH: usize = 3;
/// Array elements `name[0]` … `name[31]` are searchable; later ones are not indexed.
pub const MAX_ARRAY_INDEX: usize = 31;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    /// Case-insensitive substring; no character is a wildcard.
    Contains,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "" | "=" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "~" => Op::Contains,
            _ => return None,
        })
    }

    pub fn is_ordering(self) -> bool {
        matches!(self, Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    /// Whether `ord` (stored compared with the filter value) satisfies an ordering op.
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ord == Equal,
            Op::Ne => ord != Equal,
            Op::Gt => ord == Greater,
            Op::Lt => ord == Less,
            Op::Ge => ord != Less,
            Op::Le => ord != Greater,
            Op::Contains => false,
        }
    }
}

/// One segment of a searchable path: a JSON object key, optionally followed by one array
/// index (`runs[2]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub index: Option<usize>,
}

/// A path into a JSON object, e.g. `model.layers[0].size`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub segments: Vec<Segment>,
}

/// JSON keys a filter can name: non-empty, no surrounding whitespace (filter keys are
/// trimmed), and none of the characters the filter syntax itself uses (`.` `[` `]` split
/// paths, `:` and `,` split filters). Other keys are neither indexed nor discoverable.
pub fn addressable_key(key: &str) -> bool {
    !key.is_empty() && key.trim() == key && !key.contains(['.', '[', ']', ':', ','])
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        if text.is_empty() {
            return Err("the path is empty".into());
        }
        let mut segments = Vec::new();
        for raw in text.split('.') {
            let (name, index) = match raw.find('[') {
                None => (raw, None),
                Some(open) => {
                    let digits = raw[open + 1..]
                        .strip_suffix(']')
                        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| format!("bad array index in path segment '{raw}'"))?;
                    let index: usize = digits
                        .parse()
                        .ok()
                        .filter(|i| *i <= MAX_ARRAY_INDEX)
                        .ok_or_else(|| {
                            format!("array index in '{raw}' is above {MAX_ARRAY_INDEX}")
                        })?;
                    (&raw[..open], Some(index))
                }
            };
            if !addressable_key(name) {
                return Err(format!("'{raw}' is not a valid path segment"));
            }
            segments.push(Segment {
                name: name.to_owned(),
                index,
            });
        }
        if segments.len() > MAX_PATH_DEPTH {
            return Err(format!(
                "paths are searchable to a depth of {MAX_PATH_DEPTH} names"
            ));
        }
        Ok(Path { segments })
    }

    /// The one spelling of the path, as indexes store it (`a.b[2]`).
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(&seg.name);
            if let Some(idx) = seg.index {
                out.push_str(&format!("[{idx}]"));
            }
        }
        out
    }

    /// The scalar at this path of an object; objects, arrays, null and missing paths give
    /// `None`, and `None` never matches any operator (not even `!=`).
    pub fn get<'a>(&self, root: &'a Map<String, Value>) -> Option<Scalar<'a>> {
        let mut map = root;
        let mut out = None;
        for (i, seg) in self.segments.iter().enumerate() {
            let mut v = map.get(&seg.name)?;
            if let Some(idx) = seg.index {
                v = v.as_array()?.get(idx)?;
            }
            if i + 1 == self.segments.len() {
                out = Scalar::of(v);
            } else {
                map = v.as_object()?;
            }
        }
        out
    }
}

/// The scalar at a path of a JSON object's text, like [`Path::get`] on the parsed object
/// but without building it: the text is parsed once and only the scalar at the path is
/// kept (a check per task reads one value, not the whole document).
pub fn scalar_in_text(path: &Path, text: &str) -> Option<OwnedScalar> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    Want::At(&path.segments).deserialize(&mut de).ok().flatten()
}

/// A [`Scalar`] that owns its text.
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedScalar {
    Bool(bool),
    Num(f64),
    Str(String),
}

impl OwnedScalar {
    pub fn as_scalar(&self) -> Scalar<'_> {
        match self {
            OwnedScalar::Bool(b) => Scalar::Bool(*b),
            OwnedScalar::Num(n) => Scalar::Num(*n),
            OwnedScalar::Str(s) => Scalar::Str(s),
        }
    }
}

/// What is left of a path while walking a JSON text: the rest below an object, or an
/// array index and the rest below that element.
#[derive(Clone, Copy)]
enum Want<'p> {
    At(&'p [Segment]),
    Nth(usize, &'p [Segment]),
}

impl<'de> serde::de::DeserializeSeed<'de> for Want<'_> {
    type Value = Option<OwnedScalar>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Want<'_> {
    fn scalar<E: serde::de::Error>(self, s: OwnedScalar) -> Result<Option<OwnedScalar>, E> {
        Ok(matches!(self, Want::At([])).then_some(s))
    }
}

impl<'de> serde::de::Visitor<'de> for Want<'_> {
    type Value = Option<OwnedScalar>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
        self.scalar(OwnedScalar::Bool(b))
    }
    // As `serde_json::Number::as_f64`, then [`Scalar::of`]: finite, `-0` is `0`.
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
        self.visit_f64(n as f64)
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
        self.visit_f64(n as f64)
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
        if !n.is_finite() {
            return Ok(None);
        }
        self.scalar(OwnedScalar::Num(norm(n)))
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        self.scalar(OwnedScalar::Str(s.to_owned()))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        use serde::de::IgnoredAny;
        let mut out = None;
        let mut i = 0;
        loop {
            match self {
                Want::Nth(n, rest) if i == n => match seq.next_element_seed(Want::At(rest))? {
                    Some(found) => out = found,
                    None => break,
                },
                _ => {
                    if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                }
            }
            i += 1;
        }
        Ok(out)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::IgnoredAny;
        let Want::At([seg, rest @ ..]) = self else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(None);
        };
        let below = match seg.index {
            None => Want::At(rest),
            Some(i) => Want::Nth(i, rest),
        };
        // A repeated key: the last one counts, as when the object is parsed.
        let mut out = None;
        while let Some(hit) = map.next_key_seed(KeyIs(&seg.name))? {
            if hit {
                out = map.next_value_seed(below)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

/// Reads an object key and tells whether it is this one, without keeping it.
struct KeyIs<'a>(&'a str);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<bool, E> {
        Ok(s == self.0)
    }
}

/// A JSON scalar as search sees it. Numbers are doubles (integers beyond 2^53 lose
/// precision, as upstream's `::float` cast did).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar<'a> {
    Bool(bool),
    Num(f64),
    Str(&'a str),
}

impl<'a> Scalar<'a> {
    pub fn of(v: &'a Value) -> Option<Scalar<'a>> {
        match v {
            Value::Bool(b) => Some(Scalar::Bool(*b)),
            Value::Number(n) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(|f| Scalar::Num(norm(f))),
            Value::String(s) => Some(Scalar::Str(s)),
            _ => None,
        }
    }

    /// The text `~` searches and `/search/values` suggests.
    pub fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Num(n) => number_text(*n),
            Scalar::Str(s) => (*s).to_owned(),
        }
    }
}

/// `-0` and `0` are one number.
fn norm(f: f64) -> f64 {
    if f == 0.0 {
        0.0
    } else {
        f
    }
}

/// The shortest decimal that reads back as `n`, integers without a fraction (`1`, `0.01`).
pub fn number_text(n: f64) -> String {
    format!("{}", norm(n))
}

/// Runs `f` on [`number_text`] of `n`, formatted on the stack when it fits.
fn with_number_text<R>(n: f64, f: impl FnOnce(&str) -> R) -> R {
    struct Stack {
        buf: [u8; 64],
        len: usize,
    }
    impl fmt::Write for Stack {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.len + s.len();
            self.buf
                .get_mut(self.len..end)
                .ok_or(fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut out = Stack {
        buf: [0; 64],
        len: 0,
    };
    if fmt::Write::write_fmt(&mut out, format_args!("{}", norm(n))).is_ok() {
        if let Ok(text) = std::str::from_utf8(&out.buf[..out.len]) {
            return f(text);
        }
    }
    f(&number_text(n))
}

/// A filter value is a number when it parses as a finite decimal float (`1`, `-2.5`,
/// `1e-3`).
pub fn parse_number(s: &str) -> Option<f64> {
    let f: f64 = s.parse().ok()?;
    f.is_finite().then(|| norm(f))
}

/// Case-insensitive containment: both sides Unicode lower-cased. Short ASCII text
/// (hashes, numbers, most names) is lower-cased on the stack: search scans many of them.
pub fn contains_ci(haystack: &str, needle_lower: &str) -> bool {
    let mut buf = [0u8; 64];
    if haystack.is_ascii() && haystack.len() <= buf.len() {
        let lower = &mut buf[..haystack.len()];
        for (dst, src) in lower.iter_mut().zip(haystack.bytes()) {
            *dst = src.to_ascii_lowercase();
        }
        // ASCII in, ASCII out: always valid UTF-8.
        return std::str::from_utf8(lower).is_ok_and(|l| l.contains(needle_lower));
    }
    haystack.to_lowercase().contains(needle_lower)
}

/// A filter value with what every kind of comparison needs precomputed.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterValue {
    pub raw: String,
    pub lower: String,
    /// Set when `raw` is a number.
    pub number: Option<f64>,
}

impl FilterValue {
    pub fn new(raw: &str) -> FilterValue {
        FilterValue {
            raw: raw.to_owned(),
            lower: raw.to_lowercase(),
            number: parse_number(raw),
        }
    }

    /// `true`/`false` as a boolean literal.
    pub fn boolean(&self) -> Option<bool> {
        match self.raw.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
}

/// Text columns (names, ids, version): byte-wise (code point) string comparison.
pub fn text_matches(op: Op, stored: &str, v: &FilterValue) -> bool {
    match op {
        Op::Contains => contains_ci(stored, &v.lower),
        _ => op.holds(stored.cmp(v.raw.as_str())),
    }
}

/// `param.` / `asset.` values. `=`: strings equal the text exactly, numbers equal a
/// numeric value, booleans equal `true`/`false`. `!=`: a scalar is present and `=` fails.
/// Orderings compare numbers only (the value must be numeric; the parser refuses
/// others). `~`: the scalar's text contains the value, case-insensitively.
pub fn scalar_matches(op: Op, stored: Scalar<'_>, v: &FilterValue) -> bool {
    let equal = || match stored {
        Scalar::Str(s) => s == v.raw,
        Scalar::Num(n) => v.number == Some(n),
        Scalar::Bool(b) => v.boolean() == Some(b),
    };
    match op {
        Op::Eq => equal(),
        Op::Ne => !equal(),
        Op::Contains => match stored {
            Scalar::Num(n) => with_number_text(n, |t| contains_ci(t, &v.lower)),
            Scalar::Bool(b) => contains_ci(if b { "true" } else { "false" }, &v.lower),
            Scalar::Str(s) => contains_ci(s, &v.lower),
        },
        _ => match (stored, v.number) {
            (Scalar::Num(n), Some(x)) => n.partial_cmp(&x).is_some_and(|o| op.holds(o)),
            _ => false,
        },
    }
}

/// `created_at` against an RFC 3339 instant, at nanosecond precision (stored times are
/// microseconds).
pub fn time_matches(op: Op, stored_micros: i64, value_nanos: i128) -> bool {
    op.holds((i128::from(stored_micros) * 1_000).cmp(&value_nanos))
}

/// Epoch nanoseconds of an RFC 3339 timestamp (any offset).
pub fn parse_instant(s: &str) -> Option<i128> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

/// The core text columns a filter can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextColumn {
    TaskName,
    TaskNamespace,
    TaskId,
    /// Null versions never match.
    Version,
    /// The build of the task's latest event (§4.4 item 3).
    BuildId,
    BuildName,
}

/// What a condition looks at, with its value already checked and parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// The materialised global status (§3.4, D18), resolved to the set it accepts.
    Status(StatusSet),
    Text(TextColumn, Op, FilterValue),
    /// `created_at`, as epoch nanoseconds; never `~`.
    CreatedAt(Op, i128),
    Param(Path, Op, FilterValue),
    /// Some asset of this name (any type) has a matching scalar at the path.
    Asset(String, Path, Op, FilterValue),
}

/// A set of task statuses, one bit per `TaskStatus::ALL` position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusSet(pub u8);

impl StatusSet {
    pub const ALL: StatusSet = StatusSet(0x7F);

    fn bit(s: TaskStatus) -> u8 {
        let i = TaskStatus::ALL.iter().position(|x| *x == s).unwrap_or(0);
        1 << i
    }

    pub fn contains(self, s: TaskStatus) -> bool {
        self.0 & Self::bit(s) != 0
    }

    pub fn members(self) -> impl Iterator<Item = TaskStatus> {
        TaskStatus::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }

    fn of(op: Op, v: &FilterValue) -> StatusSet {
        let mut bits = 0;
        for s in TaskStatus::ALL {
            let hit = match op {
                Op::Eq => s.as_str() == v.lower,
                Op::Ne => s.as_str() != v.lower,
                _ => s.as_str().contains(&v.lower),
            };
            if hit {
                bits |= Self::bit(*s);
            }
        }
        StatusSet(bits)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortField {
    CreatedAt,
    TaskName,
    TaskNamespace,
}

/// Result order: the sort field, then the internal task id (= registration order), both
/// in the same direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub field: SortField,
    pub descending: bool,
}

impl Sort {
    /// `field[:dir]` as upstream reads it: unknown fields sort by `created_at`, any
    /// direction but `asc` is descending. Sorting is not filtering, so nothing is lost.
    pub fn parse(raw: Option<&str>) -> Sort {
        let raw = raw.unwrap_or("created_at:desc");
        let mut parts = raw.split(':');
        let field = match parts.next().unwrap_or("") {
            "task_name" => SortField::TaskName,
            "task_namespace" => SortField::TaskNamespace,
            _ => SortField::CreatedAt,
        };
        Sort {
            field,
            descending: parts.next() != Some("asc"),
        }
    }
}

/// A parsed search: every condition must hold (AND); `q` is the lower-cased free text.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub conditions: Vec<Condition>,
    pub q: Option<String>,
    pub sort: Sort,
}

/// One refused filter part and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    pub part: String,
    pub reason: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid filter '{}': {}", self.part, self.reason)
    }
}

/// Every refused part of one `filter` parameter (D20: never silently dropped).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter")]
pub struct FilterErrors(pub Vec<FilterError>);

impl Query {
    pub fn parse(
        filter: Option<&str>,
        q: Option<&str>,
        sort: Option<&str>,
    ) -> Result<Query, FilterErrors> {
        let mut conditions = Vec::new();
        let mut errors = Vec::new();
        for part in filter.unwrap_or("").split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match parse_part(part) {
                Ok(c) => conditions.push(c),
                Err(reason) => errors.push(FilterError {
                    part: part.to_owned(),
                    reason,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(FilterErrors(errors));
        }
        Ok(Query {
            conditions,
            q: q.filter(|q| !q.is_empty()).map(str::to_lowercase),
            sort: Sort::parse(sort),
        })
    }
}

/// `KEY:OP:VALUE` with §4.4's shape: the key runs to the first colon, the operator is the
/// run of `=!<>~` after it (none means `=`), then an optional colon, then the value.
fn parse_part(part: &str) -> Result<Condition, String> {
    let (key, rest) = part
        .split_once(':')
        .ok_or_else(|| "expected key:op:value".to_owned())?;
    let key = key.trim();
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    let op_len = rest
        .find(|c: char| !matches!(c, '=' | '!' | '<' | '>' | '~'))
        .unwrap_or(rest.len());
    let (op_text, rest) = rest.split_at(op_len);
    let value = rest.strip_prefix(':').unwrap_or(rest).trim();
    let op = Op::parse(op_text)
        .ok_or_else(|| format!("unknown operator '{op_text}' (use =, !=, >, <, >=, <=, ~)"))?;
    let v = FilterValue::new(value);
    let text = |col| Ok(Condition::Text(col, op, v.clone()));
    match key {
        "status" => {
            if op.is_ordering() {
                return Err("status supports =, != and ~".into());
            }
            let lower = v.lower.clone();
            if op != Op::Contains && TaskStatus::parse(&lower).is_none() {
                return Err(format!("unknown status '{value}'"));
            }
            Ok(Condition::Status(StatusSet::of(op, &v)))
        }
        "created_at" => {
            if op == Op::Contains {
                return Err("created_at supports =, !=, >, <, >=, <=".into());
            }
            let nanos = parse_instant(value)
                .ok_or_else(|| format!("'{value}' is not an RFC 3339 timestamp"))?;
            Ok(Condition::CreatedAt(op, nanos))
        }
        "task_name" => text(TextColumn::TaskName),
        "task_namespace" => text(TextColumn::TaskNamespace),
        "task_id" => text(TextColumn::TaskId),
        "version" => text(TextColumn::Version),
        "build_id" => text(TextColumn::BuildId),
        "build_name" => text(TextColumn::BuildName),
        _ => {
            if let Some(path) = key.strip_prefix("param.") {
                let path = Path::parse(path)?;
                check_ordering(op, &v)?;
                Ok(Condition::Param(path, op, v))
            } else if let Some(rest) = key.strip_prefix("asset.") {
                let (name, path) = asset_key(rest)?;
                check_ordering(op, &v)?;
                Ok(Condition::Asset(name.to_owned(), path, op, v))
            } else if key == "param" || key == "asset" {
                Err(format!("{key} filters need a path: {key}.<path>"))
            } else {
                Err(format!("unknown key '{key}'"))
            }
        }
    }
}

/// The `<name>.<path>` after `asset.` in a key: the asset name and the path in its body
/// (also how the UI reads its `asset.` columns).
pub fn asset_key(rest: &str) -> Result<(&str, Path), String> {
    let (name, path) = rest
        .split_once('.')
        .ok_or_else(|| "asset filters need a path: asset.<name>.<path>".to_owned())?;
    if !addressable_key(name) {
        return Err(format!("'{name}' is not a valid asset name"));
    }
    Ok((name, Path::parse(path)?))
}

/// D20: an ordering on a non-number is refused rather than matching nothing.
fn check_ordering(op: Op, v: &FilterValue) -> Result<(), String> {
    if op.is_ordering() && v.number.is_none() {
        return Err(format!("'{}' is not a number", v.raw));
    }
    Ok(())
}

/// Calls `f(path, scalar)` for every searchable scalar of an object: names addressable,
/// at most [`MAX_PATH_DEPTH`] names deep, array elements up to [`MAX_ARRAY_INDEX`], one
/// index per name (nested arrays are not addressable). Document order.
pub fn for_each_scalar<'a>(root: &'a Map<String, Value>, f: &mut impl FnMut(&str, Scalar<'a>)) {
    fn walk<'a>(
        map: &'a Map<String, Value>,
        prefix: &mut String,
        depth: usize,
        f: &mut impl FnMut(&str, Scalar<'a>),
    ) {
        for (key, value) in map {
            if !addressable_key(key) {
                continue;
            }
            let base = prefix.len();
            if depth > 1 {
                prefix.push('.');
            }
            prefix.push_str(key);
            visit(value, prefix, depth, f);
            if let Value::Array(items) = value {
                for (i, item) in items.iter().take(MAX_ARRAY_INDEX + 1).enumerate() {
                    let here = prefix.len();
                    prefix.push_str(&format!("[{i}]"));
                    visit(item, prefix, depth, f);
                    prefix.truncate(here);
                }
            }
            prefix.truncate(base);
        }
    }
    fn visit<'a>(
        value: &'a Value,
        prefix: &mut String,
        depth: usize,
        f: &mut impl FnMut(&str, Scalar<'a>),
    ) {
        match value {
            Value::Object(inner) if depth < MAX_PATH_DEPTH => walk(inner, prefix, depth + 1, f),
            other => {
                if let Some(s) = Scalar::of(other) {
                    f(prefix, s);
                }
            }
        }
    }
    walk(root, &mut String::new(), 1, f);
}

/// The filter keys §4.4's discovery finds in one document: every key to depth 3 (parents
/// too), and for a list whose first element is an object, that element's keys as
/// `name[0].key`. Only addressable keys; `prefix` is `param` or `asset.<name>`.
pub fn discover_keys(root: &Map<String, Value>, prefix: &str) -> Vec<String> {
    fn walk(map: &Map<String, Value>, prefix: &str, left: usize, out: &mut Vec<String>) {
        if left == 0 {
            return;
        }
        for (key, value) in map {
            if !addressable_key(key) {
                continue;
            }
            let full = format!("{prefix}.{key}");
            match value {
                Value::Object(inner) => walk(inner, &full, left - 1, out),
                Value::Array(items) => {
                    if let Some(Value::Object(first)) = items.first() {
                        walk(first, &format!("{full}[0]"), left - 1, out);
                    }
                }
                _ => {}
            }
            out.push(full);
        }
    }
    let mut out = Vec::new();
    walk(root, prefix, MAX_PATH_DEPTH, &mut out);
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// Reading one path of the text gives what the parsed object gives, for every path
    /// into (and past) a document of every JSON kind.
    #[test]
    fn scalar_in_text_agrees_with_the_parsed_object() {
        let texts = [
            r#"{"a": 1, "b": {"c": [true, null, "x\"y", {"d": -0.0}], "e": 2.5e3}, "f": "Ünï"}"#,
            r#"{"a": [[1, 2], {"a": 3}], "b": {}, "c": [], "d": 18446744073709551615}"#,
            r#"{"k\u0061": "escaped key", "a": {"b": {"c": {"d": 1}}}, "x": -7}"#,
        ];
        let paths = [
            "a", "b", "f", "x", "ka", "b.c", "b.e", "b.c[0]", "b.c[1]", "b.c[2]", "b.c[3]",
            "b.c[3].d", "b.c[4]", "a[0]", "a[1]", "a[1].a", "a[0].a", "d", "a.b.c", "c[0]",
            "b.c.d",
        ];
        for text in texts {
            let doc: Map<String, Value> = serde_json::from_str(text).unwrap();
            for p in paths {
                let path = Path::parse(p).unwrap();
                let want = path.get(&doc);
                let got = scalar_in_text(&path, text);
                assert_eq!(
                    got.as_ref().map(OwnedScalar::as_scalar),
                    want,
                    "{p} in {text}"
                );
            }
        }
        // A repeated key: the last one counts, as in the parsed object.
        let text = r#"{"a": 1, "b": 2, "a": "late"}"#;
        let doc: Map<String, Value> = serde_json::from_str(text).unwrap();
        let path = Path::parse("a").unwrap();
        assert_eq!(path.get(&doc), Some(Scalar::Str("late")));
        assert_eq!(
            scalar_in_text(&path, text),
            Some(OwnedScalar::Str("late".into()))
        );
    }

    fn one(filter: &str) -> Result<Condition, String> {
        match Query::parse(Some(filter), None, None) {
            Ok(mut q) => Ok(q.conditions.remove(0)),
            Err(FilterErrors(e)) => Err(e[0].reason.clone()),
        }
    }

    #[test]
    fn parts_follow_the_upstream_shape() {
        let c = one("param.lr:>:0.5").unwrap();
        assert!(matches!(c, Condition::Param(_, Op::Gt, ref v) if v.number == Some(0.5)));
        // No operator means `=`, with or without the second colon; values keep colons.
        for f in ["task_name:train", "task_name::train", "task_name:=:train"] {
            assert_eq!(
                one(f).unwrap(),
                Condition::Text(TextColumn::TaskName, Op::Eq, FilterValue::new("train"))
            );
        }
        assert_eq!(
            one("task_id:=:a:b").unwrap(),
            Condition::Text(TextColumn::TaskId, Op::Eq, FilterValue::new("a:b"))
        );
        // As upstream's regex: an operator must follow the first colon directly.
        assert_eq!(
            one(" task_name : ~ : Tr ").unwrap(),
            Condition::Text(TextColumn::TaskName, Op::Eq, FilterValue::new("~ : Tr"))
        );
        assert_eq!(
            one("task_name:~: Tr ").unwrap(),
            Condition::Text(TextColumn::TaskName, Op::Contains, FilterValue::new("Tr"))
        );
        let q = Query::parse(Some(" , task_name:a ,, "), Some(""), None).unwrap();
        assert_eq!(q.conditions.len(), 1, "empty parts are skipped");
        assert_eq!(q.q, None);
    }

    #[test]
    fn malformed_parts_name_themselves() {
        let cases = [
            ("nocolon", "expected key:op:value"),
            (
                "task_name:=>:x",
                "unknown operator '=>' (use =, !=, >, <, >=, <=, ~)",
            ),
            (
                "task_name:!:x",
                "unknown operator '!' (use =, !=, >, <, >=, <=, ~)",
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
                "created_at:>:yesterday",
                "'yesterday' is not an RFC 3339 timestamp",
            ),
            ("param.lr:>:high", "'high' is not a number"),
            ("param.lr:>=:", "'' is not a number"),
            (
                "asset.report:=:x",
                "asset filters need a path: asset.<name>.<path>",
            ),
            ("param:=:x", "param filters need a path: param.<path>"),
            ("param.:=:x", "the path is empty"),
            ("param.a..b:=:x", "'' is not a valid path segment"),
            ("param.a[x]:=:1", "bad array index in path segment 'a[x]'"),
            ("param.a[32]:=:1", "array index in 'a[32]' is above 31"),
            (
                "param.a.b.c.d:=:1",
                "paths are searchable to a depth of 3 names",
            ),
            (":=:x", "the key is empty"),
        ];
        for (filter, reason) in cases {
            assert_eq!(one(filter).unwrap_err(), reason, "{filter}");
        }
        let err = Query::parse(Some("task_name:a,bad,status:x"), None, None).unwrap_err();
        let parts: Vec<&str> = err.0.iter().map(|e| e.part.as_str()).collect();
        assert_eq!(parts, ["bad", "status:x"], "every bad part is reported");
        assert_eq!(
            err.0[0].to_string(),
            "Invalid filter 'bad': expected key:op:value"
        );
    }

    #[test]
    fn status_resolves_to_a_set() {
        let Condition::Status(s) = one("status:=:COMPLETED").unwrap() else {
            panic!()
        };
        assert_eq!(s.members().collect::<Vec<_>>(), [TaskStatus::Completed]);
        let Condition::Status(s) = one("status:!=:completed").unwrap() else {
            panic!()
        };
        assert_eq!(s.members().count(), 6);
        let Condition::Status(s) = one("status:~:ed").unwrap() else {
            panic!()
        };
        let names: Vec<&str> = s.members().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            ["suspended", "completed", "failed", "skipped", "cancelled"]
        );
    }

    #[test]
    fn scalar_semantics_are_typed() {
        let v = |s: &str| FilterValue::new(s);
        // Numbers equal numerically, strings exactly, booleans by their JSON literal.
        assert!(scalar_matches(Op::Eq, Scalar::Num(1.0), &v("1.0")));
        assert!(scalar_matches(Op::Eq, Scalar::Num(0.01), &v("1e-2")));
        assert!(!scalar_matches(Op::Eq, Scalar::Str("1"), &v("1.0")));
        assert!(scalar_matches(Op::Eq, Scalar::Str("1.0"), &v("1.0")));
        assert!(scalar_matches(Op::Eq, Scalar::Bool(true), &v("true")));
        assert!(!scalar_matches(Op::Eq, Scalar::Bool(true), &v("True")));
        assert!(scalar_matches(Op::Ne, Scalar::Str("a"), &v("b")));
        // Orderings compare numbers only.
        assert!(scalar_matches(Op::Gt, Scalar::Num(10.0), &v("9")));
        assert!(!scalar_matches(Op::Gt, Scalar::Str("10"), &v("9")));
        assert!(scalar_matches(Op::Le, Scalar::Num(-0.0), &v("0")));
        // `~` is a plain case-insensitive substring: % and _ are ordinary characters.
        assert!(scalar_matches(
            Op::Contains,
            Scalar::Str("Train_50%"),
            &v("N_5")
        ));
        assert!(!scalar_matches(
            Op::Contains,
            Scalar::Str("train"),
            &v("t%n")
        ));
        assert!(scalar_matches(Op::Contains, Scalar::Num(0.25), &v("0.2")));
        assert!(scalar_matches(Op::Contains, Scalar::Bool(false), &v("ALS")));
        // ASCII and Unicode paths agree, the Kelvin sign lower-cases to ASCII `k`.
        assert!(contains_ci("TasK07", "k07"));
        assert!(contains_ci("Task07", &"\u{212A}07".to_lowercase()));
        assert!(contains_ci("ÜNÏ", "ünï"));
        assert!(!contains_ci("Uni", "ü"));
        assert!(contains_ci("abc", ""));
        assert!(!contains_ci("ab", "abc"));
        assert_eq!(number_text(1.0), "1");
        assert_eq!(number_text(-0.0), "0");
        assert_eq!(number_text(0.01), "0.01");
        assert!(scalar_matches(
            Op::Contains,
            Scalar::Num(1e300),
            &v("1000000000")
        ));
        assert!(with_number_text(-2.5, |t| t == "-2.5"));
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("NaN"), None);
    }

    #[test]
    fn text_and_time_comparisons() {
        let v = FilterValue::new("b");
        assert!(text_matches(Op::Gt, "ba", &v));
        assert!(text_matches(Op::Lt, "B", &v), "code point order: 'B' < 'b'");
        assert!(text_matches(Op::Contains, "ABC", &v));
        let t = parse_instant("2026-02-04T10:11:12.123456Z").unwrap();
        let micros = 1_770_199_872_123_456;
        assert!(time_matches(Op::Eq, micros, t));
        assert!(time_matches(
            Op::Eq,
            micros,
            parse_instant("2026-02-04T11:11:12.123456+01:00").unwrap()
        ));
        assert!(time_matches(Op::Gt, micros, t - 1));
        assert!(!time_matches(Op::Gt, micros, t));
        assert!(time_matches(Op::Ge, micros, t));
        // Sub-microsecond precision is kept on the filter side.
        let later = parse_instant("2026-02-04T10:11:12.1234561Z").unwrap();
        assert!(time_matches(Op::Lt, micros, later));
        assert!(!time_matches(Op::Eq, micros, later));
    }

    #[test]
    fn paths_navigate_objects_and_one_index_per_name() {
        let doc = obj(json!({
            "a": {"b": [1, {"c": "x"}], "n": null},
            "list": [true, 2.5],
            "deep": {"x": {"y": {"z": 1}}},
            "odd.key": 1,
        }));
        let get = |p: &str| Path::parse(p).unwrap().get(&doc);
        assert_eq!(get("a.b[0]"), Some(Scalar::Num(1.0)));
        assert_eq!(get("a.b[1].c"), Some(Scalar::Str("x")));
        assert_eq!(get("list[1]"), Some(Scalar::Num(2.5)));
        assert_eq!(get("a.b"), None, "arrays are not scalars");
        assert_eq!(get("a.n"), None, "null never matches");
        assert_eq!(get("a.missing"), None);
        assert_eq!(Path::parse("a[01]").unwrap().canonical(), "a[1]");
        assert!(Path::parse("odd.key").unwrap().get(&doc).is_none());
    }

    #[test]
    fn indexed_scalars_are_exactly_the_reachable_ones() {
        let doc = obj(json!({
            "a": {"b": [1, {"c": "x"}, [7]], "n": null},
            "list": [true, 2.5],
            "deep": {"x": {"y": {"z": 1}, "w": 2}},
            "odd.key": 1,
            " pad": 1,
            "many": (0..40).collect::<Vec<i32>>(),
        }));
        let mut seen = Vec::new();
        for_each_scalar(&doc, &mut |p, s| seen.push((p.to_owned(), s.text())));
        let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.contains(&"a.b[0]"));
        assert!(paths.contains(&"a.b[1].c"));
        assert!(paths.contains(&"list[0]"));
        assert!(paths.contains(&"deep.x.w"));
        assert!(paths.contains(&"many[31]"));
        assert!(!paths.contains(&"many[32]"));
        assert!(
            !paths.iter().any(|p| p.contains("z")),
            "depth 4 is not indexed"
        );
        assert!(!paths.iter().any(|p| p.contains("odd") || p.contains("pad")));
        // Every indexed path reads back its scalar through the filter grammar.
        for (p, text) in &seen {
            let got = Path::parse(p).unwrap().get(&doc).unwrap();
            assert_eq!(&got.text(), text, "{p}");
        }
    }

    #[test]
    fn discovery_follows_upstream_rules() {
        let doc = obj(json!({
            "lr": 0.1,
            "model": {"layers": [{"size": 3}], "name": "m", "deep": {"x": {"y": 1}}},
            "tags": ["a"],
            "bad.key": 1,
        }));
        assert_eq!(
            discover_keys(&doc, "param"),
            [
                "param.lr",
                "param.model",
                "param.model.deep",
                "param.model.deep.x",
                "param.model.layers",
                "param.model.layers[0].size",
                "param.model.name",
                "param.tags",
            ]
        );
    }
}
