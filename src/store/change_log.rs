//! What changed in a build between two values of its change counter (`changes.rs`), for
//! the builds whose frontier the server keeps.
//!
//! A kept frontier (`v2::reads::FrontierMemo`) goes stale with every write to its build,
//! and recomputing it reads the states of all the plan's members: 10 000 point lookups
//! for a 10 000-member plan, after every completion. With this log, a read that finds
//! its frontier stale asks which tasks changed between the kept counter and the one its
//! snapshot reads, and rereads only those.
//!
//! The writer fills it after each commit (never for a batch that failed), with one entry
//! per changed build: the counter before and after the batch, and what the batch did to
//! the build. Entries chain: a question is answered only if the entries from the kept
//! counter reach exactly the snapshot's counter, so a batch committed but not yet logged,
//! an entry evicted, or a build not watched yet all give "unknown", and the reader
//! recomputes in full. In memory only: after a restart nothing is kept or logged.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

/// What a write did to a build, as a counter bump names it.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// A task's row or its executions or artifacts under the build: what the frontier
    /// shows of that task may have changed.
    Task(&'a str),
    /// The build row itself.
    Build,
    /// An event appended: the frontier does not show events.
    Event,
    /// Anything else (plans, member rows, v1 writes): the frontier is placed again from
    /// its rows, with the states of the tasks not named still as kept.
    Other,
}

/// What a run of batches did to one build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changed {
    /// Tasks whose state may have moved (every one, unless `overflow`).
    pub tasks: BTreeSet<String>,
    /// More tasks changed than `tasks` names: no kept state is known to hold.
    pub overflow: bool,
    pub build: bool,
    pub other: bool,
}

/// Tasks one entry (or one chain of entries) names at most, which bounds the log's
/// memory; past it the change reads as `overflow`, and the frontier is recomputed.
const MAX_TASKS: usize = 512;
/// Builds watched at once: as many as frontiers are kept.
const WATCHED: usize = 64;
/// Entries kept per build: about a third of a second of batches at full write rate.
const ENTRIES: usize = 512;

impl Changed {
    pub fn note(&mut self, change: Change) {
        match change {
            Change::Task(id) if self.tasks.contains(id) => {}
            Change::Task(id) if self.tasks.len() < MAX_TASKS => {
                self.tasks.insert(id.to_owned());
            }
            Change::Task(_) => self.overflow = true,
            Change::Other => self.other = true,
            Change::Build => self.build = true,
            Change::Event => {}
        }
    }

    fn absorb(&mut self, later: &Changed) {
        self.tasks.extend(later.tasks.iter().cloned());
        self.build |= later.build;
        self.other |= later.other;
        self.overflow |= later.overflow || self.tasks.len() > MAX_TASKS;
    }
}

/// One committed batch's effect on one build.
#[derive(Debug, Clone)]
pub struct Entry {
    pub env: u128,
    pub build: u128,
    /// The build's counter before and after the batch.
    pub before: u64,
    pub after: u64,
    pub changed: Changed,
}

#[derive(Default)]
struct Inner {
    logs: HashMap<(u128, u128), VecDeque<Entry>>,
    /// Watched builds, oldest first (the same set as `logs`' keys).
    order: VecDeque<(u128, u128)>,
}

/// The per-build logs of the watched builds.
#[derive(Default)]
pub struct ChangeLog {
    inner: Mutex<Inner>,
}

impl ChangeLog {
    /// Starts logging `build` (from the next committed batch on), dropping the build
    /// watched longest when [`WATCHED`] are.
    pub fn watch(&self, env: u128, build: u128) {
        let key = (env, build);
        let mut inner = self.lock();
        if inner.logs.contains_key(&key) {
            return;
        }
        while inner.order.len() >= WATCHED {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            inner.logs.remove(&old);
        }
        inner.logs.insert(key, VecDeque::new());
        inner.order.push_back(key);
    }

    /// Logs a committed batch's entries; those of builds not watched are dropped.
    pub fn publish(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut inner = self.lock();
        for e in entries {
            let Some(log) = inner.logs.get_mut(&(e.env, e.build)) else {
                continue;
            };
            if log.len() >= ENTRIES {
                log.pop_front();
            }
            log.push_back(e);
        }
    }

    /// What changed in `build` from counter `from` to counter `to`, if the log holds
    /// every batch in between; `None` when it cannot tell.
    pub fn between(&self, env: u128, build: u128, from: u64, to: u64) -> Option<Changed> {
        let mut changed = Changed::default();
        if from == to {
            return Some(changed);
        }
        let inner = self.lock();
        let log = inner.logs.get(&(env, build))?;
        let start = log.iter().position(|e| e.before == from)?;
        let mut at = from;
        for e in log.iter().skip(start) {
            if e.before != at {
                return None;
            }
            changed.absorb(&e.changed);
            at = e.after;
            if at == to {
                return Some(changed);
            }
            if at > to {
                return None;
            }
        }
        None
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(build: u128, before: u64, after: u64, tasks: &[&str]) -> Entry {
        let mut changed = Changed::default();
        for t in tasks {
            changed.note(Change::Task(t));
        }
        Entry {
            env: 1,
            build,
            before,
            after,
            changed,
        }
    }

    fn tasks(c: &Changed) -> Vec<&str> {
        c.tasks.iter().map(String::as_str).collect()
    }

    #[test]
    fn answers_only_over_an_unbroken_chain_of_entries() {
        let log = ChangeLog::default();
        // Not watched: nothing is logged, nothing answered but the empty span.
        log.publish(vec![entry(10, 0, 2, &["a"])]);
        assert_eq!(log.between(1, 10, 0, 2), None);
        assert_eq!(log.between(1, 10, 2, 2), Some(Changed::default()));

        log.watch(1, 10);
        log.publish(vec![entry(10, 2, 4, &["a"]), entry(11, 0, 1, &["z"])]);
        log.publish(vec![entry(10, 4, 5, &["b"])]);
        let c = log.between(1, 10, 2, 5).unwrap();
        assert_eq!(tasks(&c), ["a", "b"]);
        assert_eq!(tasks(&log.between(1, 10, 4, 5).unwrap()), ["b"]);
        // Before the first entry, past the last, or between two batches' counters.
        assert_eq!(log.between(1, 10, 0, 5), None);
        assert_eq!(log.between(1, 10, 2, 6), None);
        assert_eq!(log.between(1, 10, 2, 3), None);
        // Another environment's build of the same id.
        assert_eq!(log.between(2, 10, 2, 5), None);
        // A gap (a batch never logged) breaks every chain across it.
        log.publish(vec![entry(10, 6, 7, &["c"])]);
        assert_eq!(log.between(1, 10, 2, 7), None);
        assert_eq!(tasks(&log.between(1, 10, 6, 7).unwrap()), ["c"]);
    }

    #[test]
    fn kinds_of_change_and_the_task_cap() {
        let mut c = Changed::default();
        c.note(Change::Event);
        assert_eq!(c, Changed::default());
        c.note(Change::Build);
        assert!(c.build && !c.other);
        for i in 0..MAX_TASKS {
            c.note(Change::Task(&format!("t{i}")));
        }
        c.note(Change::Task("t0"));
        assert!(!c.overflow, "a task already named is not one more");
        c.note(Change::Task("one-too-many"));
        assert!(c.overflow && !c.other);
        let mut d = Changed::default();
        d.note(Change::Other);
        assert!(d.other && !d.overflow);
        // Entries under the cap each, over it together.
        let log = ChangeLog::default();
        log.watch(1, 10);
        let half: Vec<String> = (0..MAX_TASKS / 2 + 1).map(|i| format!("t{i}")).collect();
        let other: Vec<String> = (0..MAX_TASKS / 2 + 1).map(|i| format!("u{i}")).collect();
        let half: Vec<&str> = half.iter().map(String::as_str).collect();
        let other: Vec<&str> = other.iter().map(String::as_str).collect();
        log.publish(vec![entry(10, 0, 1, &half)]);
        log.publish(vec![entry(10, 1, 2, &other)]);
        assert!(!log.between(1, 10, 0, 1).unwrap().overflow);
        assert!(log.between(1, 10, 0, 2).unwrap().overflow);
    }

    #[test]
    fn bounded_in_builds_and_entries() {
        let log = ChangeLog::default();
        for b in 0..=WATCHED as u128 {
            log.watch(1, b);
            log.publish(vec![entry(b, 0, 1, &["a"])]);
        }
        // The first build watched was dropped for the last.
        assert_eq!(log.between(1, 0, 0, 1), None);
        assert!(log.between(1, WATCHED as u128, 0, 1).is_some());
        let b = WATCHED as u128;
        for n in 1..=ENTRIES as u64 {
            log.publish(vec![entry(b, n, n + 1, &["a"])]);
        }
        // The oldest entry went: the chain from 0 is lost, from 1 it holds.
        assert_eq!(log.between(1, b, 0, 2), None);
        assert!(log.between(1, b, 1, ENTRIES as u64 + 1).is_some());
    }
}
