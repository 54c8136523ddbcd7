//! Lazy matching in result order (docs/search.md "How a query runs").
//!
//! Every index a query can stream holds task ids in id order, and ids are registration
//! order (= `created_at`). A [`Cursor`] walks one such list — or the union of a few —
//! in the page's direction and can *seek*: jump to the first id at or after a target.
//! The [`Matcher`] intersects cursors by leapfrogging (each cursor seeks to the largest
//! head seen so far until all agree), checks the remaining conditions on each agreed id,
//! and stops as soon as the caller has what it needs. So a page costs the ids read up to
//! its last match, never the whole match set.
//!
//! Positions are *keys*: the id itself for an ascending page, its bitwise complement for
//! a descending one, so every cursor moves upwards.

use redb::AccessGuard;

use super::{err, Exec, IdIter, Plan, StoreError};

/// A stored task row, borrowed from its page.
pub(super) type RowGuard = AccessGuard<'static, &'static [u8]>;
type RowIter = Box<dyn Iterator<Item = Result<(u128, RowGuard), StoreError>>>;

/// Linear steps a seek tries before it re-opens the range at the target: a step reads
/// the next key of a leaf already in memory, a re-open descends the tree.
const LINEAR_STEPS: usize = 8;

/// Work units, so that a count can stop after a bounded effort.
pub(super) const STEP_COST: u64 = 1;
pub(super) const REOPEN_COST: u64 = 8;
pub(super) const CHECK_COST: u64 = 12;

/// The key of an id in a page's direction.
pub(super) fn key(desc: bool, id: u128) -> u128 {
    if desc {
        !id
    } else {
        id
    }
}

/// What one range cursor reads.
#[derive(Clone)]
pub(super) enum RangeKind {
    /// One value's postings in `search_postings`: (field, encoded value).
    Posting(String, Vec<u8>),
    /// One name's tasks in `tasks_by_name` (`true`) or `tasks_by_namespace` (`false`).
    Name(bool, String),
    /// Every task of the environment, ids only (no term is checked on them).
    Tasks,
}

pub(super) enum Cursor<'a> {
    Range {
        x: &'a Exec,
        kind: RangeKind,
        desc: bool,
        iter: Option<IdIter<'a>>,
        head: Option<u128>,
        done: bool,
    },
    /// Keys sorted ascending (a bounded, materialised match set).
    Sorted {
        keys: Vec<u128>,
        pos: usize,
    },
    Union(Vec<Cursor<'a>>),
    /// Every task of the environment, holding the row at its head for the checks.
    Tasks {
        x: &'a Exec,
        desc: bool,
        rows: Rows,
    },
}

impl<'a> Cursor<'a> {
    pub(super) fn range(x: &'a Exec, kind: RangeKind, desc: bool) -> Cursor<'a> {
        Cursor::Range {
            x,
            kind,
            desc,
            iter: None,
            head: None,
            done: false,
        }
    }

    /// From ids in any order.
    pub(super) fn sorted(ids: &[u128], desc: bool) -> Cursor<'a> {
        let mut keys: Vec<u128> = ids.iter().map(|id| key(desc, *id)).collect();
        keys.sort_unstable();
        keys.dedup();
        Cursor::Sorted { keys, pos: 0 }
    }

    /// Back to the start, for another pass (one per name when sorting by name).
    pub(super) fn reset(&mut self) {
        match self {
            Cursor::Range {
                iter, head, done, ..
            } => {
                *iter = None;
                *head = None;
                *done = false;
            }
            Cursor::Sorted { pos, .. } => *pos = 0,
            Cursor::Union(parts) => parts.iter_mut().for_each(Cursor::reset),
            Cursor::Tasks { rows, .. } => rows.reset(),
        }
    }

    /// The first key at or after `target`, or `None` when there is none. Never moves
    /// backwards: targets only grow during one pass.
    pub(super) fn seek(
        &mut self,
        target: u128,
        work: &mut u64,
    ) -> Result<Option<u128>, StoreError> {
        match self {
            Cursor::Range {
                x,
                kind,
                desc,
                iter,
                head,
                done,
            } => {
                if *done {
                    return Ok(None);
                }
                if let Some(h) = *head {
                    if h >= target {
                        return Ok(Some(h));
                    }
                }
                if let Some(it) = iter.as_mut() {
                    for _ in 0..LINEAR_STEPS {
                        *work += STEP_COST;
                        match it.next().transpose()? {
                            None => {
                                *done = true;
                                *head = None;
                                return Ok(None);
                            }
                            Some(h) if h >= target => {
                                *head = Some(h);
                                return Ok(Some(h));
                            }
                            Some(_) => {}
                        }
                    }
                }
                *work += REOPEN_COST;
                let mut it = x.open_at(kind, *desc, target)?;
                *head = it.next().transpose()?;
                *iter = Some(it);
                if head.is_none() {
                    *done = true;
                }
                Ok(*head)
            }
            Cursor::Sorted { keys, pos } => {
                *work += STEP_COST;
                *pos += keys[*pos..].partition_point(|k| *k < target);
                Ok(keys.get(*pos).copied())
            }
            Cursor::Union(parts) => {
                let mut best: Option<u128> = None;
                for p in parts.iter_mut() {
                    if let Some(k) = p.seek(target, work)? {
                        best = Some(best.map_or(k, |b| b.min(k)));
                    }
                }
                Ok(best)
            }
            Cursor::Tasks { x, desc, rows } => rows.seek(x, *desc, target, work),
        }
    }
}

impl Exec {
    /// The task table's rows from key `target` on, in the page's direction.
    fn rows_at(&self, desc: bool, target: u128) -> Result<RowIter, StoreError> {
        let e = self.env;
        let range = if desc {
            self.tasks.range((e, 0)..=(e, !target))?
        } else {
            self.tasks.range((e, target)..=(e, u128::MAX))?
        };
        let row = move |x: Result<(AccessGuard<'static, (u128, u128)>, RowGuard), _>| {
            x.map(|(k, v)| (key(desc, k.value().1), v)).map_err(err)
        };
        Ok(if desc {
            Box::new(range.rev().map(row))
        } else {
            Box::new(range.map(row))
        })
    }

    /// A range's keys from `target` on, in the page's direction.
    fn open_at(
        &self,
        kind: &RangeKind,
        desc: bool,
        target: u128,
    ) -> Result<IdIter<'_>, StoreError> {
        let e = self.env;
        // Ids at or after the target in the page's direction.
        let (lo, hi) = if desc {
            (0, !target)
        } else {
            (target, u128::MAX)
        };
        Ok(match kind {
            RangeKind::Posting(field, enc) => {
                let (f, v) = (field.as_str(), enc.as_slice());
                let range = self.postings.range((e, f, v, lo)..=(e, f, v, hi))?;
                keyed(range, desc, |k: (u128, &str, &[u8], u128)| k.3)
            }
            RangeKind::Name(names, name) => {
                let table = if *names {
                    &self.by_name
                } else {
                    &self.by_namespace
                };
                let n = name.as_str();
                keyed(
                    table.range((e, n, lo)..=(e, n, hi))?,
                    desc,
                    |k: (u128, &str, u128)| k.2,
                )
            }
            RangeKind::Tasks => keyed(
                self.tasks.range((e, lo)..=(e, hi))?,
                desc,
                |k: (u128, u128)| k.1,
            ),
        })
    }
}

/// A range's ids as keys in the page's direction.
fn keyed<'a, K, V>(
    range: redb::Range<'a, K, V>,
    desc: bool,
    id: fn(K::SelfType<'_>) -> u128,
) -> IdIter<'a>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    if desc {
        Box::new(
            range
                .rev()
                .map(move |x| x.map(|(k, _)| !id(k.value())).map_err(err)),
        )
    } else {
        Box::new(range.map(move |x| x.map(|(k, _)| id(k.value())).map_err(err)))
    }
}

/// The rows of the tasks a walk checks, read from one open range of the task table.
/// Candidates come in key order and are mostly near each other (the task table, or a
/// stream holding most tasks, drives the walk), so the next row is usually a step on
/// in a leaf already in memory, where a point lookup would descend the tree again.
#[derive(Default)]
pub(super) struct Rows {
    iter: Option<RowIter>,
    /// A row read past the last target, kept for a later one.
    ahead: Option<(u128, RowGuard)>,
    /// The last seek re-opened the range: candidates are far apart (a sparse stream
    /// drives), so the next one tries a single step before re-opening, not
    /// [`LINEAR_STEPS`], and costs about what a point lookup did.
    far: bool,
}

impl Rows {
    /// Positions on the first row with key ≥ `target` and returns its key (`None` when
    /// there is none). Targets only grow between resets.
    fn seek(
        &mut self,
        x: &Exec,
        desc: bool,
        target: u128,
        work: &mut u64,
    ) -> Result<Option<u128>, StoreError> {
        if let Some((k, _)) = &self.ahead {
            if *k >= target {
                return Ok(Some(*k));
            }
        }
        if let Some(iter) = self.iter.as_mut() {
            let steps = if self.far { 1 } else { LINEAR_STEPS };
            for _ in 0..steps {
                *work += STEP_COST;
                match iter.next().transpose()? {
                    None => {
                        self.ahead = None;
                        return Ok(None);
                    }
                    Some(kv) if kv.0 >= target => {
                        let k = kv.0;
                        self.ahead = Some(kv);
                        self.far = false;
                        return Ok(Some(k));
                    }
                    Some(_) => {}
                }
            }
        }
        *work += REOPEN_COST;
        self.far = self.iter.is_some();
        let mut iter = x.rows_at(desc, target)?;
        self.ahead = iter.next().transpose()?;
        self.iter = Some(iter);
        Ok(self.ahead.as_ref().map(|kv| kv.0))
    }

    /// The row of the task at key `target`, `None` when there is none.
    pub(super) fn get(
        &mut self,
        x: &Exec,
        desc: bool,
        target: u128,
    ) -> Result<Option<RowGuard>, StoreError> {
        if self.seek(x, desc, target, &mut 0)? != Some(target) {
            return Ok(None);
        }
        Ok(self.ahead.take().map(|kv| kv.1))
    }

    fn reset(&mut self) {
        *self = Rows::default();
    }
}

/// What [`Matcher::next`] found.
pub(super) enum Step {
    Match(u128),
    End,
    /// The work budget ran out before the next match was known.
    OutOfBudget,
}

/// The conjunction of a query's terms, walked in result order.
pub(super) struct Matcher<'a, 'q> {
    pub x: &'a Exec,
    pub desc: bool,
    /// Leapfrogged; never empty (the task table drives when no term streams).
    pub streams: Vec<Cursor<'a>>,
    /// Checked on each id the streams agree on, cheapest first.
    pub filters: Vec<&'a Plan<'q>>,
    /// `created_at` id ranges of each such condition: every one must hold.
    pub id_ranges: Vec<Vec<(u128, u128)>>,
    /// Keys outside `lo..=hi` cannot match (the `created_at` conditions' hull).
    pub lo: u128,
    pub hi: u128,
    pub work: u64,
    /// Stop with [`Step::OutOfBudget`] once `work` passes this.
    pub budget: u64,
    /// Rows of the candidates the filters read.
    pub rows: Rows,
}

impl Matcher<'_, '_> {
    /// The first match with key ≥ `from`.
    pub(super) fn next(&mut self, from: u128) -> Result<Step, StoreError> {
        let mut x = from.max(self.lo);
        let n = self.streams.len();
        'candidates: loop {
            if x > self.hi {
                return Ok(Step::End);
            }
            if self.work > self.budget {
                return Ok(Step::OutOfBudget);
            }
            // Leapfrog: each stream seeks to the largest key seen until all agree.
            let mut agree = 0;
            let mut i = 0;
            while agree < n {
                match self.streams[i].seek(x, &mut self.work)? {
                    None => return Ok(Step::End),
                    Some(k) if k == x => agree += 1,
                    Some(k) => {
                        if k > self.hi {
                            return Ok(Step::End);
                        }
                        x = k;
                        agree = 1;
                    }
                }
                i = (i + 1) % n;
            }
            let id = key(self.desc, x);
            let in_ranges = self
                .id_ranges
                .iter()
                .all(|rs| rs.iter().any(|(lo, hi)| *lo <= id && id <= *hi));
            if in_ranges {
                let mut ok = true;
                // The task table drives: its cursor holds the row. Else rows are read
                // from a range of their own.
                let rows = match self.streams.as_mut_slice() {
                    [Cursor::Tasks { rows, .. }] => rows,
                    _ => &mut self.rows,
                };
                let mut cand = super::Cand::walking(id, self.desc, rows);
                for f in &self.filters {
                    self.work += CHECK_COST;
                    if !self.x.check(f, &mut cand)? {
                        ok = false;
                        break;
                    }
                }
                if ok {
                    return Ok(Step::Match(x));
                }
            }
            match x.checked_add(1) {
                Some(next) => x = next,
                None => return Ok(Step::End),
            }
            continue 'candidates;
        }
    }

    /// Back to the start of every stream, for another pass.
    pub(super) fn reset(&mut self) {
        self.streams.iter_mut().for_each(Cursor::reset);
        self.rows.reset();
    }
}

/// The key hull of some id ranges in a page's direction.
pub(super) fn key_hull(desc: bool, ranges: &[(u128, u128)]) -> (u128, u128) {
    let lo = ranges.iter().map(|r| r.0).min();
    let hi = ranges.iter().map(|r| r.1).max();
    match (lo, hi) {
        (Some(lo), Some(hi)) if desc => (!hi, !lo),
        (Some(lo), Some(hi)) => (lo, hi),
        // No range at all: nothing matches.
        _ => (u128::MAX, 0),
    }
}
