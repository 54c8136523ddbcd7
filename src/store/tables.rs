//! The tables the hot writes touch, opened once per write transaction.
//!
//! redb's `open_table` looks the table up in the table tree and checks its key and
//! value types by name, which costs about as much as a B-tree insert (callgrind: ~5 000
//! instructions, a third of the writer's time when every op opened its ~14 tables). A
//! batch's ops share one [`Tables`]: each table is opened at its first use and closed
//! when the batch is done, so a batch of twelve registrations opens each table once.
//!
//! Each accessor lends the table out through a `RefCell`, so a write function may hold
//! several tables at once, but never the same one twice: finish with a table (drop the
//! guard) before calling a function that may open it again.
//!
//! The set also keeps the batch's hot counters in memory (search counts, lock counts,
//! environment counts, meta values such as the event clock): every registration and
//! event changes the same few rows, and a B-tree update costs thousands of
//! instructions where a hash map costs tens. Each is read from its table at first use
//! and written back once by [`Tables::finish`], which every user of a set must call
//! before the transaction commits (or before using the transaction directly:
//! [`Tables::closed`] does it).

use std::cell::{RefCell, RefMut};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use redb::{Key, ReadableTable, Table, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{decode, encode};

use super::change_log::{self, Change, Changed};
use super::changes::BUILD_CHANGES;
use super::locks::{LOCKS, LOCK_COMPLETIONS, LOCK_COUNTS, LOCK_EXPIRY};
use super::schema::META;
use super::search::{COUNTS, OVERFLOW, POSTINGS, SHAPES};
use super::tasks::{
    ASSETS, BUILDS, BUILD_EVENTS, BUILD_TASKS, ENV_COUNTS, PENDING_EDGES, TASKS, TASKS_BY_NAME,
    TASKS_BY_NAMESPACE, TASK_DEPENDENTS, TASK_EDGES, TASK_EVENTS, TASK_IDS, TASK_STATES,
};
use super::v2::schema as v2;
use super::StoreError;

/// Declares [`Tables`]: one lazily opened slot and one accessor per table.
macro_rules! tables {
    ($($name:ident: $def:path => $k:ty, $v:ty;)*) => {
        pub struct Tables<'t> {
            tx: &'t WriteTransaction,
            cache: RefCell<Cache>,
            /// What the finished parts of the batch did to builds (`change_log.rs`).
            logged: RefCell<Vec<change_log::Entry>>,
            $($name: RefCell<Option<Table<'t, $k, $v>>>,)*
        }

        impl<'t> Tables<'t> {
            /// A set over `tx`. Call [`Tables::finish`] before the transaction commits.
            pub fn new(tx: &'t WriteTransaction) -> Tables<'t> {
                Tables { tx, cache: RefCell::default(), logged: RefCell::default(), $($name: RefCell::new(None),)* }
            }

            /// Closes every open table, so that the transaction can open them again.
            fn close_all(&self) {
                $(drop(self.$name.borrow_mut().take());)*
            }

            $(
                #[doc = concat!("The `", stringify!($def), "` table, opened at first use.")]
                pub fn $name(&self) -> Result<RefMut<'_, Table<'t, $k, $v>>, StoreError> {
                    let mut slot = self.$name.borrow_mut();
                    if slot.is_none() {
                        *slot = Some(self.tx.open_table($def)?);
                    }
                    Ok(RefMut::map(slot, |s| s.as_mut().expect("opened above")))
                }
            )*
        }
    };
}

tables! {
    meta: META => &'static str, &'static [u8];
    builds: BUILDS => (u128, u128), &'static [u8];
    task_ids: TASK_IDS => (u128, &'static str), u128;
    tasks: TASKS => (u128, u128), &'static [u8];
    task_states: TASK_STATES => (u128, u128), &'static [u8];
    tasks_by_name: TASKS_BY_NAME => (u128, &'static str, u128), ();
    tasks_by_namespace: TASKS_BY_NAMESPACE => (u128, &'static str, u128), ();
    build_tasks: BUILD_TASKS => (u128, u128, u128), &'static [u8];
    build_events: BUILD_EVENTS => (u128, u128, u64), &'static [u8];
    task_events: TASK_EVENTS => (u128, u128, u64), u128;
    task_edges: TASK_EDGES => (u128, u128, u128), ();
    task_dependents: TASK_DEPENDENTS => (u128, u128, u128), ();
    pending_edges: PENDING_EDGES => (u128, &'static str, u128), ();
    assets: ASSETS => (u128, u128, &'static str, &'static str), &'static [u8];
    env_counts: ENV_COUNTS => u128, (u64, u64);
    build_changes: BUILD_CHANGES => (u128, u128), u64;
    postings: POSTINGS => (u128, &'static str, &'static [u8], u128), u32;
    counts: COUNTS => (u128, &'static str, &'static [u8]), u64;
    overflow: OVERFLOW => (u128, &'static str, u128), u32;
    shapes: SHAPES => (u128, u128), &'static str;
    locks: LOCKS => (u128, &'static str), &'static [u8];
    lock_expiry: LOCK_EXPIRY => (u128, i64, &'static str), ();
    lock_counts: LOCK_COUNTS => u128, u64;
    lock_completions: LOCK_COMPLETIONS => (u128, &'static str), i64;
    v2_builds: v2::BUILDS => (u128, u128), &'static [u8];
    v2_build_envs: v2::BUILD_ENVS => u128, u128;
    v2_builds_by_activity: v2::BUILDS_BY_ACTIVITY => (u128, i64, u128), ();
    v2_builds_by_status: v2::BUILDS_BY_STATUS => (u128, u8, i64, u128), ();
    v2_build_counts: v2::BUILD_COUNTS => (u128, u8), u64;
    v2_reactive: v2::REACTIVE => (u128, u128), ();
    v2_deployments: v2::DEPLOYMENTS => (u128, u128), &'static [u8];
    v2_deployment_generations: v2::DEPLOYMENT_GENERATIONS => (u128, &'static str, &'static str, u64), u128;
    v2_local_deployments: v2::LOCAL_DEPLOYMENTS => (u128, &'static str), u128;
    v2_settings: v2::SETTINGS => (u128, &'static str), &'static str;
    v2_tasks: v2::TASKS => v2::EntryKey, &'static [u8];
    v2_tasks_by_status: v2::TASKS_BY_STATUS => (u128, u8, i64, &'static str), ();
    v2_instances: v2::INSTANCES => (u128, u128), &'static [u8];
    v2_plans: v2::PLANS => (u128, u128), &'static [u8];
    v2_build_plans: v2::BUILD_PLANS => (u128, u128, u64), u128;
    v2_plan_scopes: v2::PLAN_SCOPES => (u128, u128, u128, &'static str), u128;
    v2_members: v2::MEMBERS => (u128, u128, &'static str), &'static [u8];
    v2_executions: v2::EXECUTIONS => (u128, u128), &'static [u8];
    v2_build_executions: v2::BUILD_EXECUTIONS => (u128, u128, &'static str, u128), ();
    v2_yields: v2::YIELDS => (u128, u128, u128), &'static [u8];
    v2_artifacts: v2::ARTIFACTS => (u128, &'static str, &'static str, &'static str), &'static [u8];
    v2_limits: v2::LIMITS => (u128, &'static str), u64;
    v2_limit_holders: v2::LIMIT_HOLDERS => (u128, &'static str, &'static str), ();
    v2_build_events: v2::BUILD_EVENTS => (u128, u128, u64), &'static [u8];
    v2_ticks: v2::TICKS => (u128, u128, u64), &'static [u8];
}

impl<'t> Tables<'t> {
    /// The transaction itself, for a table this set does not hold (identity rows).
    /// Opening one of the set's tables through it fails with `TableAlreadyOpen` while
    /// the set has that table open: use [`Tables::closed`] for such code.
    pub fn tx(&self) -> &'t WriteTransaction {
        self.tx
    }

    /// The transaction with the cached counters written back and every table of the set
    /// closed, for code written against a plain transaction (the unjournaled writes,
    /// which are rare).
    pub fn closed(&self) -> Result<&'t WriteTransaction, StoreError> {
        self.finish()?;
        Ok(self.tx)
    }

    /// Runs `f` over a new set and finishes it when `f` succeeds: for code that applies
    /// writes outside the writer's batches (journal replay, index rebuilds, tests).
    pub fn with<R, E: From<StoreError>>(
        tx: &'t WriteTransaction,
        f: impl FnOnce(&Tables<'t>) -> Result<R, E>,
    ) -> Result<R, E> {
        let t = Tables::new(tx);
        let out = f(&t)?;
        t.finish()?;
        Ok(out)
    }

    /// Writes the cached counters back and closes every table. The set stays usable:
    /// later uses read the rows again.
    pub fn finish(&self) -> Result<(), StoreError> {
        let cache = self.cache.take();
        if !cache.counts.is_empty() {
            let mut table = self.counts()?;
            for ((env, kind, key), tally) in &cache.counts {
                tally.write_back(&mut table, (*env, kind.as_str(), key.as_slice()))?;
            }
        }
        if !cache.lock_counts.is_empty() {
            let mut table = self.lock_counts()?;
            for (env, tally) in &cache.lock_counts {
                tally.write_back(&mut table, *env)?;
            }
        }
        if !cache.build_changes.is_empty() {
            let mut table = self.build_changes()?;
            let mut logged = self.logged.borrow_mut();
            for ((env, build), (tally, changed)) in cache.build_changes {
                tally.write_back(&mut table, (env, build))?;
                logged.push(change_log::Entry {
                    env,
                    build,
                    before: tally.stored,
                    after: tally.now,
                    changed,
                });
            }
        }
        if !cache.env_counts.is_empty() {
            let mut table = self.env_counts()?;
            for (env, (stored, now)) in &cache.env_counts {
                if Some(*now) != *stored {
                    table.insert(*env, *now)?;
                }
            }
        }
        if !cache.meta.is_empty() {
            let mut table = self.meta()?;
            for (key, (stored, now)) in &cache.meta {
                if stored != now {
                    match now {
                        Some(v) => table.insert(*key, v.as_slice())?,
                        None => table.remove(*key)?,
                    };
                }
            }
        }
        self.close_all();
        Ok(())
    }

    /// Adds `delta` to the search count at (`env`, `kind`, `key`) and returns the old
    /// value. Absent means zero; a count that reaches zero is removed at
    /// [`Tables::finish`].
    pub fn add_count(
        &self,
        env: u128,
        kind: &str,
        key: &[u8],
        delta: i64,
    ) -> Result<u64, StoreError> {
        let mut cache = self.cache.borrow_mut();
        let id = (env, kind.to_owned(), key.to_vec());
        let tally = cached(&mut cache.counts, id, || {
            let stored = self
                .counts()?
                .get((env, kind, key))?
                .map_or(0, |g| g.value());
            Ok(Tally::from(stored))
        })?;
        Ok(tally.add(delta))
    }

    /// Adds `delta` to the environment's live-lock count and returns the old value.
    pub fn add_lock_count(&self, env: u128, delta: i64) -> Result<u64, StoreError> {
        let mut cache = self.cache.borrow_mut();
        let tally = cached(&mut cache.lock_counts, env, || {
            let stored = self.lock_counts()?.get(env)?.map_or(0, |g| g.value());
            Ok(Tally::from(stored))
        })?;
        Ok(tally.add(delta))
    }

    /// Adds one to the change counter of (`env`, `build`) (`changes.rs`), and notes
    /// what changed for the change log.
    pub fn add_build_change(
        &self,
        env: u128,
        build: u128,
        change: Change,
    ) -> Result<(), StoreError> {
        let mut cache = self.cache.borrow_mut();
        let (tally, changed) = cached(&mut cache.build_changes, (env, build), || {
            let stored = self
                .build_changes()?
                .get((env, build))?
                .map_or(0, |g| g.value());
            Ok((Tally::from(stored), Changed::default()))
        })?;
        tally.add(1);
        changed.note(change);
        Ok(())
    }

    /// What the batch did to builds, as far as [`Tables::finish`] has written it.
    pub fn take_logged(&self) -> Vec<change_log::Entry> {
        self.logged.take()
    }

    /// The environment's live-lock count.
    pub fn lock_count(&self, env: u128) -> Result<u64, StoreError> {
        self.add_lock_count(env, 0)
    }

    /// Adds to the environment's (builds, tasks) counts.
    pub fn add_env_counts(&self, env: u128, builds: u64, tasks: u64) -> Result<(), StoreError> {
        let mut cache = self.cache.borrow_mut();
        let (_, now) = cached(&mut cache.env_counts, env, || {
            let stored = self.env_counts()?.get(env)?.map(|g| g.value());
            Ok((stored, stored.unwrap_or((0, 0))))
        })?;
        now.0 += builds;
        now.1 += tasks;
        Ok(())
    }

    /// The `meta` value at `key`, as this batch left it.
    pub fn meta_value(&self, key: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut cache = self.cache.borrow_mut();
        Ok(self.meta_entry(&mut cache, key)?.1.clone())
    }

    /// Sets the `meta` value at `key`, written back at [`Tables::finish`].
    pub fn set_meta_value(&self, key: &'static str, value: &[u8]) -> Result<(), StoreError> {
        let mut cache = self.cache.borrow_mut();
        self.meta_entry(&mut cache, key)?.1 = Some(value.to_vec());
        Ok(())
    }

    fn meta_entry<'c>(
        &self,
        cache: &'c mut Cache,
        key: &'static str,
    ) -> Result<&'c mut MetaSlot, StoreError> {
        cached(&mut cache.meta, key, || {
            let stored = self.meta()?.get(key)?.map(|g| g.value().to_vec());
            Ok((stored.clone(), stored))
        })
    }

    /// Whether build `build` exists; a build seen once is not looked up again in the
    /// batch (builds are only removed with their environment, by a plain write, which
    /// finishes the set first).
    pub fn has_build(&self, env: u128, build: u128) -> Result<bool, StoreError> {
        if self.cache.borrow().builds.contains(&(env, build)) {
            return Ok(true);
        }
        let found = self.builds()?.get((env, build))?.is_some();
        if found {
            self.cache.borrow_mut().builds.insert((env, build));
        }
        Ok(found)
    }

    /// Whether the environment may have pending dependency edges (D17). Looked up once
    /// per batch; most registrations then skip a range scan for edges waiting on them.
    pub fn may_have_pending_edges(&self, env: u128) -> Result<bool, StoreError> {
        if let Some(any) = self.cache.borrow().pending.get(&env) {
            return Ok(*any);
        }
        let any = self
            .pending_edges()?
            .range((env, "", 0u128)..)?
            .next()
            .transpose()?
            .is_some_and(|(k, _)| k.value().0 == env);
        self.cache.borrow_mut().pending.insert(env, any);
        Ok(any)
    }

    /// Records that the environment now has a pending edge.
    pub fn note_pending_edge(&self, env: u128) {
        self.cache.borrow_mut().pending.insert(env, true);
    }
}

/// The cached entry at `key`, loaded by `load` at first use.
fn cached<K: Hash + Eq, V>(
    map: &mut HashMap<K, V>,
    key: K,
    load: impl FnOnce() -> Result<V, StoreError>,
) -> Result<&mut V, StoreError> {
    Ok(match map.entry(key) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => e.insert(load()?),
    })
}

/// An environment's (builds, tasks) counts: as stored (`None`: no row), and now.
type EnvSlot = (Option<(u64, u64)>, (u64, u64));

/// A `meta` value: as stored, and as the batch left it.
type MetaSlot = (Option<Vec<u8>>, Option<Vec<u8>>);

/// What a set keeps in memory until [`Tables::finish`].
#[derive(Default)]
struct Cache {
    counts: HashMap<(u128, String, Vec<u8>), Tally>,
    lock_counts: HashMap<u128, Tally>,
    /// Per (env, build): the change counter (`changes.rs`) and what changed.
    build_changes: HashMap<(u128, u128), (Tally, Changed)>,
    /// Per environment: the stored (builds, tasks) row, and the batch's.
    env_counts: HashMap<u128, EnvSlot>,
    meta: HashMap<&'static str, MetaSlot>,
    /// Builds known to exist.
    builds: HashSet<(u128, u128)>,
    /// Per environment: whether it may have pending edges.
    pending: HashMap<u128, bool>,
}

/// A counter: its stored value (absent = 0) and its value now.
#[derive(Clone, Copy)]
struct Tally {
    stored: u64,
    now: u64,
}

impl From<u64> for Tally {
    fn from(stored: u64) -> Tally {
        Tally {
            stored,
            now: stored,
        }
    }
}

impl Tally {
    /// Adds `delta` (never below zero) and returns the old value.
    fn add(&mut self, delta: i64) -> u64 {
        let old = self.now;
        self.now = old.saturating_add_signed(delta);
        old
    }

    /// Writes the counter back if it changed: removed at zero, else set.
    fn write_back<'k, K: Key + 'static>(
        &self,
        table: &mut Table<'_, K, u64>,
        key: K::SelfType<'k>,
    ) -> Result<(), StoreError> {
        if self.now == self.stored {
            return Ok(());
        }
        if self.now == 0 {
            table.remove(&key)?;
        } else {
            table.insert(&key, self.now)?;
        }
        Ok(())
    }
}

/// Whether [`update_row`] should look for a stored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// Created by this op: there is nothing to look up.
    New,
    /// May exist.
    Existing,
}

// Read-modify-write in one descent. `get` then `insert` walks the tree twice; redb's
// `get_mut` walks it once (copying the path for the write) and replaces the value in
// place. Per-task state rows change on every event, so this is the common case of the
// hot paths.

/// Decodes the row at `key` (or starts from `T::default()`), applies `change`, writes
/// it back and returns it. `Row::New` says the caller knows there is no row yet (a task
/// registered in this op), which saves the lookup.
pub fn update_row<'k, K: Key + 'static, T>(
    table: &mut Table<'_, K, &'static [u8]>,
    name: &'static str,
    key: K::SelfType<'k>,
    row: Row,
    change: impl FnOnce(&mut T),
) -> Result<T, StoreError>
where
    T: Serialize + DeserializeOwned + Default,
{
    if row == Row::Existing {
        if let Some(mut guard) = table.get_mut(&key)? {
            let mut row: T = decode(name, guard.value())?;
            change(&mut row);
            guard.insert(encode(&row)?.as_slice())?;
            return Ok(row);
        }
    }
    let mut row = T::default();
    change(&mut row);
    table.insert(&key, encode(&row)?.as_slice())?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tasks::TaskStateRow;
    use crate::store::temp_store;
    use redb::ReadableTable;

    /// The stored lock count of environment 7 (absent: `None`).
    fn stored(t: &Tables) -> Result<Option<u64>, StoreError> {
        Ok(t.lock_counts()?.get(7)?.map(|g| g.value()))
    }

    /// Per op of a batch: the old value, and the stored row.
    type Batch = Vec<(u64, Option<u64>)>;

    #[test]
    fn counters_are_kept_in_memory_and_written_back_at_finish() {
        let (_dir, store) = temp_store();
        let steps = store
            .write_blocking(|tx| -> Result<Vec<Batch>, StoreError> {
                let t = Tables::new(tx);
                let mut batches = Vec::new();
                // Each inner list is one batch: (old value, stored row after `finish`).
                for deltas in [&[-1, 2, -1][..], &[-1], &[3, 0], &[0]] {
                    let mut olds = Vec::new();
                    for delta in deltas {
                        olds.push(t.add_lock_count(7, *delta)?);
                    }
                    // Nothing reaches the table before `finish`.
                    let before = stored(&t)?;
                    t.finish()?;
                    let after = stored(&t)?;
                    batches.push(olds.into_iter().map(|o| (o, before)).collect());
                    batches.push(vec![(t.lock_count(7)?, after)]);
                }
                t.finish()?;
                Ok(batches)
            })
            .unwrap();
        // Taking from nothing stays nothing; a count that ends at zero is removed.
        assert_eq!(
            steps,
            [
                vec![(0, None), (0, None), (2, None)],
                vec![(1, Some(1))],
                vec![(1, Some(1))],
                vec![(0, None)],
                vec![(0, None), (3, None)],
                vec![(3, Some(3))],
                vec![(3, Some(3))],
                vec![(3, Some(3))],
            ]
        );
        store.shutdown();
    }

    #[test]
    fn search_counts_env_counts_and_meta_values_are_written_back() {
        let (_dir, store) = temp_store();
        let rows = store
            .write_blocking(|tx| -> Result<_, StoreError> {
                let t = Tables::new(tx);
                t.add_count(1, "k", b"v", 2)?;
                t.add_count(1, "k", b"gone", 1)?;
                t.add_count(1, "k", b"gone", -1)?;
                t.add_env_counts(1, 1, 2)?;
                t.add_env_counts(1, 0, 3)?;
                t.set_meta_value("test_key", b"abc")?;
                let seen = t.meta_value("test_key")?;
                t.finish()?;
                let counts = t.counts()?;
                let count = |key: &[u8]| -> Result<Option<u64>, StoreError> {
                    Ok(counts.get((1, "k", key))?.map(|g| g.value()))
                };
                let rows = (
                    count(b"v")?,
                    count(b"gone")?,
                    t.env_counts()?.get(1)?.map(|g| g.value()),
                    t.meta()?.get("test_key")?.map(|g| g.value().to_vec()),
                    seen,
                );
                drop(counts);
                t.finish()?;
                Ok(rows)
            })
            .unwrap();
        assert_eq!(
            rows,
            (
                Some(2),
                None,
                Some((1, 5)),
                Some(b"abc".to_vec()),
                Some(b"abc".to_vec())
            )
        );
        store.shutdown();
    }

    #[test]
    fn update_row_starts_from_the_default_and_keeps_what_it_wrote() {
        let (_dir, store) = temp_store();
        let counts = store
            .write_blocking(|tx| -> Result<Vec<u64>, StoreError> {
                let t = Tables::new(tx);
                let mut states = t.task_states()?;
                let mut seen = Vec::new();
                for add in [1, 5] {
                    let row: TaskStateRow = update_row(
                        &mut states,
                        "task_states",
                        (1, 2),
                        Row::Existing,
                        |s: &mut TaskStateRow| s.asset_count += add,
                    )?;
                    seen.push(row.asset_count);
                }
                Ok(seen)
            })
            .unwrap();
        assert_eq!(counts, [1, 6]);
        store.shutdown();
    }
}
