//! Values derived from a build's rows, kept per process and stamped with the build's
//! change counter and the environment-wide generation (`store::changes`).
//!
//! Every write that changes what a build shows bumps one of the two counters in the
//! same transaction, so an entry is valid exactly while both counters read what they
//! read when the value was computed. Both are read on the same snapshot as the value,
//! so an entry is never newer or older than its stamp. A hit costs the two counter rows
//! instead of the reads the value was derived from. Users: the builds list's task
//! counts (`ui::counts_cache`) and the v2 frontier (`api::v2::plans`).
//!
//! Bounded: at most `capacity` entries, and when built [`StampedCache::with_budget`], at
//! most that many bytes as its weigher counts them; the oldest inserted goes first, and
//! an entry heavier than the whole budget is not kept.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::{changes, ReadSnapshot, StoreError};

/// `(build counter, environment-wide generation)` as [`changes::of`] reads them.
pub type Stamp = (u64, u64);

/// (environment, build).
type Key = (u128, u128);

struct Entry<V> {
    stamp: Stamp,
    value: V,
    weight: usize,
}

struct Inner<V> {
    entries: HashMap<Key, Entry<V>>,
    /// Keys in insertion order, for eviction (the same set as `entries`).
    order: VecDeque<Key>,
    /// The entries' weights, summed.
    weight: usize,
}

/// Entries kept by default: ~4 096 builds.
pub const CAPACITY: usize = 4_096;

/// (environment, build) → (stamp, value), at most `capacity` entries weighing at most
/// `budget` together.
pub struct StampedCache<V> {
    inner: Mutex<Inner<V>>,
    capacity: usize,
    budget: usize,
    /// An entry's weight (bytes, roughly); 0 for caches bounded by count alone.
    weigh: fn(&V) -> usize,
}

impl<V> Inner<V> {
    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.entries.remove(key) {
            self.weight -= e.weight;
            self.order.retain(|k| k != key);
        }
    }
}

impl<V: Clone> Default for StampedCache<V> {
    fn default() -> Self {
        StampedCache::new(CAPACITY)
    }
}

impl<V: Clone> StampedCache<V> {
    /// At most `capacity` entries.
    pub fn new(capacity: usize) -> StampedCache<V> {
        StampedCache::with_budget(capacity, usize::MAX, |_| 0)
    }

    /// At most `capacity` entries, weighing at most `budget` by `weigh`.
    pub fn with_budget(capacity: usize, budget: usize, weigh: fn(&V) -> usize) -> StampedCache<V> {
        StampedCache {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
                weight: 0,
            }),
            capacity: capacity.max(1),
            budget,
            weigh,
        }
    }

    /// The stamp `tx` reads for `build`, and the value stored under exactly it.
    pub fn lookup(
        &self,
        tx: &ReadSnapshot,
        env: u128,
        build: u128,
    ) -> Result<(Stamp, Option<V>), StoreError> {
        let stamp = changes::of(tx, env, build)?;
        Ok((stamp, self.get((env, build), stamp)))
    }

    /// The stamp `tx` reads for `build`, and the value stored under any stamp, with
    /// that stamp: for values that can be brought up to date rather than recomputed.
    pub fn lookup_latest(
        &self,
        tx: &ReadSnapshot,
        env: u128,
        build: u128,
    ) -> Result<(Stamp, Option<(Stamp, V)>), StoreError> {
        let stamp = changes::of(tx, env, build)?;
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let kept = inner
            .entries
            .get(&(env, build))
            .map(|e| (e.stamp, e.value.clone()));
        Ok((stamp, kept))
    }

    /// The value of `build`: from the cache when its stamp is the one `tx` reads, else
    /// `compute()`, remembered under that stamp.
    pub fn get_or_compute(
        &self,
        tx: &ReadSnapshot,
        env: u128,
        build: u128,
        compute: impl FnOnce() -> Result<V, StoreError>,
    ) -> Result<V, StoreError> {
        let (stamp, hit) = self.lookup(tx, env, build)?;
        if let Some(hit) = hit {
            return Ok(hit);
        }
        let value = compute()?;
        self.put(env, build, stamp, value.clone());
        Ok(value)
    }

    /// The entry's value if it was stored under exactly `stamp`.
    fn get(&self, key: Key, stamp: Stamp) -> Option<V> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .entries
            .get(&key)
            .filter(|e| e.stamp == stamp)
            .map(|e| e.value.clone())
    }

    /// Stores `value` under `stamp` (read by [`Self::lookup`] on the snapshot `value`
    /// was computed from). Counters only grow, so an entry with a newer stamp (a
    /// concurrent request on a later snapshot) is kept.
    pub fn put(&self, env: u128, build: u128, stamp: Stamp, value: V) {
        let key = (env, build);
        let weight = (self.weigh)(&value);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = inner.entries.get(&key) {
            if e.stamp.0 > stamp.0 || e.stamp.1 > stamp.1 {
                return;
            }
            // Replaced: the new value goes in as the newest entry.
            inner.remove(&key);
        }
        if weight > self.budget {
            return;
        }
        while inner.entries.len() >= self.capacity || inner.weight + weight > self.budget {
            let Some(old) = inner.order.front().copied() else {
                break;
            };
            inner.remove(&old);
        }
        inner.weight += weight;
        inner.entries.insert(
            key,
            Entry {
                stamp,
                value,
                weight,
            },
        );
        inner.order.push_back(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap();
        debug_assert_eq!(inner.entries.len(), inner.order.len());
        inner.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    type Counts = BTreeMap<&'static str, u64>;

    fn counts(done: u64) -> Counts {
        BTreeMap::from([("completed", done), ("running", 1)])
    }

    #[test]
    fn entries_hold_only_under_their_stamp() {
        let c = StampedCache::new(8);
        c.put(1, 10, (3, 0), counts(2));
        assert_eq!(c.get((1, 10), (3, 0)), Some(counts(2)));
        // The build's counter or the environment's generation moved: a miss.
        assert_eq!(c.get((1, 10), (4, 0)), None);
        assert_eq!(c.get((1, 10), (3, 1)), None);
        // Another environment or build: a miss.
        assert_eq!(c.get((2, 10), (3, 0)), None);
        assert_eq!(c.get((1, 11), (3, 0)), None);
        // Recomputed under the new stamp: replaced, and the old stamp no longer hits.
        c.put(1, 10, (4, 0), counts(3));
        assert_eq!(c.get((1, 10), (4, 0)), Some(counts(3)));
        assert_eq!(c.get((1, 10), (3, 0)), None);
        // A late writer from an older snapshot does not put the old value back.
        c.put(1, 10, (3, 0), counts(2));
        assert_eq!(c.get((1, 10), (4, 0)), Some(counts(3)));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn the_cache_keeps_at_most_its_capacity_and_drops_the_oldest() {
        let c = StampedCache::new(4);
        for b in 0..10u128 {
            c.put(1, b, (1, 0), counts(b as u64));
            assert!(c.len() <= 4);
        }
        assert_eq!(c.len(), 4);
        for b in 0..6u128 {
            assert_eq!(c.get((1, b), (1, 0)), None, "build {b} was evicted");
        }
        for b in 6..10u128 {
            assert_eq!(c.get((1, b), (1, 0)), Some(counts(b as u64)));
        }
        // Updating a present entry takes no second slot, and makes it the newest.
        c.put(1, 6, (2, 0), counts(99));
        assert_eq!(c.len(), 4);
        c.put(1, 10, (1, 0), counts(10));
        assert_eq!(c.get((1, 7), (1, 0)), None, "7 is now the oldest");
        assert_eq!(c.get((1, 6), (2, 0)), Some(counts(99)));
        assert_eq!(StampedCache::<Counts>::default().capacity, CAPACITY);
    }

    #[test]
    fn a_budget_bounds_the_entries_weight_and_refuses_an_entry_heavier_than_it() {
        let c: StampedCache<Vec<u8>> = StampedCache::with_budget(100, 10, Vec::len);
        c.put(1, 1, (1, 0), vec![0; 4]);
        c.put(1, 2, (1, 0), vec![0; 4]);
        assert_eq!(c.len(), 2);
        // 4 + 4 + 4 > 10: the oldest goes.
        c.put(1, 3, (1, 0), vec![0; 4]);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get((1, 1), (1, 0)), None);
        // Heavier than the whole budget: not kept, and the others stay.
        c.put(1, 4, (1, 0), vec![0; 11]);
        assert_eq!(c.get((1, 4), (1, 0)), None);
        assert_eq!(c.len(), 2);
        // A replacement heavier than the budget drops the stale entry it replaces.
        c.put(1, 3, (2, 0), vec![0; 11]);
        assert_eq!(c.get((1, 3), (1, 0)), None);
        assert_eq!(c.len(), 1);
        // Weights come back on removal: two of 5 fit after the evictions.
        c.put(1, 5, (1, 0), vec![0; 5]);
        c.put(1, 6, (1, 0), vec![0; 5]);
        assert_eq!(c.get((1, 2), (1, 0)), None, "4 + 5 + 5 > 10");
        assert_eq!(c.len(), 2);
        assert_eq!(c.inner.lock().unwrap().weight, 10);
    }

    #[test]
    fn a_store_read_recomputes_only_after_a_counter_moves() {
        use crate::store::tables::Tables;
        let (_dir, store) = crate::store::temp_store();
        let c = StampedCache::new(8);
        let (env, build) = (7u128, 42u128);
        let mut computed = 0;
        let mut read = |want: u64| {
            let got = store
                .read_blocking(|tx| {
                    c.get_or_compute(tx, env, build, || {
                        computed += 1;
                        Ok(counts(want))
                    })
                })
                .unwrap();
            (got, computed)
        };
        assert_eq!(read(1), (counts(1), 1));
        assert_eq!(read(5), (counts(1), 1), "a hit: nothing changed");
        let bump = |b: u128| {
            store
                .write_blocking(move |tx| {
                    Tables::with(tx, |t| {
                        changes::bump(t, env, b, crate::store::change_log::Change::Other)
                    })
                })
                .unwrap()
        };
        bump(build);
        assert_eq!(read(2), (counts(2), 2), "the build's counter moved");
        assert_eq!(read(9), (counts(2), 2));
        bump(changes::ENV_WIDE);
        assert_eq!(
            read(3),
            (counts(3), 3),
            "the environment's generation moved"
        );
        bump(43);
        assert_eq!(
            read(9),
            (counts(3), 3),
            "another build's counter is not ours"
        );
        store.shutdown();
    }
}
