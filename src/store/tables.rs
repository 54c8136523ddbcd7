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

use std::cell::{RefCell, RefMut};

use redb::{Key, Table, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{decode, encode};

use super::locks::{LOCKS, LOCK_COMPLETIONS, LOCK_COUNTS, LOCK_EXPIRY};
use super::schema::META;
use super::search::{COUNTS, OVERFLOW, POSTINGS, SHAPES};
use super::tasks::{
    ASSETS, BUILDS, BUILD_EVENTS, BUILD_TASKS, ENV_COUNTS, PENDING_EDGES, TASKS, TASKS_BY_NAME,
    TASKS_BY_NAMESPACE, TASK_EDGES, TASK_EVENTS, TASK_IDS, TASK_STATES,
};
use super::StoreError;

/// Declares [`Tables`]: one lazily opened slot and one accessor per table.
macro_rules! tables {
    ($($name:ident: $def:ident => $k:ty, $v:ty;)*) => {
        pub struct Tables<'t> {
            tx: &'t WriteTransaction,
            $($name: RefCell<Option<Table<'t, $k, $v>>>,)*
        }

        impl<'t> Tables<'t> {
            pub fn new(tx: &'t WriteTransaction) -> Tables<'t> {
                Tables { tx, $($name: RefCell::new(None),)* }
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
    pending_edges: PENDING_EDGES => (u128, &'static str, u128), ();
    assets: ASSETS => (u128, u128, &'static str, &'static str), &'static [u8];
    env_counts: ENV_COUNTS => u128, (u64, u64);
    postings: POSTINGS => (u128, &'static str, &'static [u8], u128), u32;
    counts: COUNTS => (u128, &'static str, &'static [u8]), u64;
    overflow: OVERFLOW => (u128, &'static str, u128), u32;
    shapes: SHAPES => (u128, u128), &'static str;
    locks: LOCKS => (u128, &'static str), &'static [u8];
    lock_expiry: LOCK_EXPIRY => (u128, i64, &'static str), ();
    lock_counts: LOCK_COUNTS => u128, u64;
    lock_completions: LOCK_COMPLETIONS => (u128, &'static str), i64;
}

impl<'t> Tables<'t> {
    /// The transaction itself, for a table this set does not hold (identity rows).
    /// Opening one of the set's tables through it fails with `TableAlreadyOpen` while
    /// the set has that table open: use [`Tables::closed`] for such code.
    pub fn tx(&self) -> &'t WriteTransaction {
        self.tx
    }

    /// The transaction with every table of the set closed, for code written against a
    /// plain transaction (the unjournaled writes, which are rare).
    pub fn closed(&self) -> &'t WriteTransaction {
        self.close_all();
        self.tx
    }
}

// Read-modify-write in one descent. `get` then `insert` walks the tree twice; redb's
// `get_mut` walks it once (copying the path for the write) and replaces the value in
// place. Counters and per-task state rows change on every write, so this is the common
// case of the hot paths.

/// Adds `delta` to the counter at `key`, removing it at zero (absent means zero), and
/// returns the old value.
pub fn add_to_counter<'k, K: Key + 'static>(
    table: &mut Table<'_, K, u64>,
    key: K::SelfType<'k>,
    delta: i64,
) -> Result<u64, StoreError> {
    let kept = match table.get_mut(&key)? {
        Some(mut guard) => {
            let old = guard.value();
            let new = old.saturating_add_signed(delta);
            if new > 0 {
                guard.insert(new)?;
                return Ok(old);
            }
            old
        }
        None => 0,
    };
    // A new key, or the count dropped to zero.
    if kept > 0 {
        table.remove(&key)?;
    } else if delta > 0 {
        table.insert(&key, delta as u64)?;
    }
    Ok(kept)
}

/// Decodes the row at `key` (or starts from `T::default()`), applies `change`, writes
/// it back and returns it.
pub fn update_row<'k, K: Key + 'static, T>(
    table: &mut Table<'_, K, &'static [u8]>,
    name: &'static str,
    key: K::SelfType<'k>,
    change: impl FnOnce(&mut T),
) -> Result<T, StoreError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let updated = match table.get_mut(&key)? {
        Some(mut guard) => {
            let mut row: T = decode(name, guard.value())?;
            change(&mut row);
            guard.insert(encode(&row)?.as_slice())?;
            Ok(row)
        }
        None => Err(change),
    };
    match updated {
        Ok(row) => Ok(row),
        Err(change) => {
            let mut row = T::default();
            change(&mut row);
            table.insert(&key, encode(&row)?.as_slice())?;
            Ok(row)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tasks::TaskStateRow;
    use crate::store::temp_store;
    use redb::ReadableTable;

    #[test]
    fn a_counter_is_created_by_adding_and_removed_at_zero() {
        let (_dir, store) = temp_store();
        let steps = store
            .write_blocking(|tx| -> Result<Vec<(u64, Option<u64>)>, StoreError> {
                let t = Tables::new(tx);
                let mut counts = t.lock_counts()?;
                let mut seen = Vec::new();
                for delta in [-1, 2, -1, -1, 3] {
                    let old = add_to_counter(&mut counts, 7, delta)?;
                    seen.push((old, counts.get(7)?.map(|g| g.value())));
                }
                Ok(seen)
            })
            .unwrap();
        // Taking from nothing stays nothing; zero removes the row.
        assert_eq!(
            steps,
            [
                (0, None),
                (0, Some(2)),
                (2, Some(1)),
                (1, None),
                (0, Some(3))
            ]
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
