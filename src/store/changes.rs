//! Per-build change counters (ui.md §9 row 2): one `u64` per build that every write
//! changing what the build page, the builds list or the v2 frontier shows increments,
//! in the same transaction. The UI's polls (`…/builds/{id}/state`, `…/builds?state=1`)
//! derive their ETag from these counters, so a poll that answers 304 reads two small
//! rows instead of every task of the build.
//!
//! What bumps a build's counter:
//! - v1: its creation and status transitions, every task event recorded in it, and any
//!   change to the *global* state or asset count of one of its tasks — a task's status
//!   is shared by every build it appeared in (D18), so a change made through build B2
//!   bumps B1 as well. Those builds are the distinct builds of the task's events
//!   (`TASK_EVENTS`; membership needs an event).
//! - v2: every save of the build row, of one of its plans or of their member rows, every
//!   event appended to it and execution saved under it, and every save of a task that is
//!   a member of one of its plans (its plan entries in `v2::schema::TASKS`). The v2
//!   frontier is kept under these counters (`v2::reads::FrontierMemo`), so a write it
//!   reads must bump them.
//!
//! A task seen in more than [`FANOUT`] builds does not bump each of them: it bumps the
//! environment-wide generation (the row at build id [`ENV_WIDE`]) instead, which every
//! ETag also covers. Correct either way; only the 304 rate of that environment suffers.

use std::collections::BTreeSet;

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::change_log::Change;
use super::tables::Tables;
use super::{Reader, StoreError};

/// (env, build) → change counter; build [`ENV_WIDE`] is the environment-wide generation.
/// A v2 plan's id keys the counter of its member rows ([`bump_members`]).
pub const BUILD_CHANGES: TableDefinition<(u128, u128), u64> = TableDefinition::new("build_changes");

/// The row of the environment-wide generation (no build id is 0: v1 ids are UUIDv7,
/// v2 ids random UUIDs).
pub const ENV_WIDE: u128 = 0;

/// A task in more builds than this bumps the environment-wide generation instead.
pub const FANOUT: usize = 64;

pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(BUILD_CHANGES)?;
    Ok(())
}

/// Counts one change of `build`; `change` says what changed, for the change log
/// (`change_log.rs`) that lets a kept frontier reread only what moved.
pub(crate) fn bump(t: &Tables, env: u128, build: u128, change: Change) -> Result<(), StoreError> {
    t.add_build_change(env, build, change)
}

/// Counts one change of a v2 plan's member rows. The counter shares the table with the
/// builds' (a plan id is never a build id; if a client chose one that is, the two would
/// share a counter and only invalidate more often).
pub(crate) fn bump_members(t: &Tables, env: u128, plan: u128) -> Result<(), StoreError> {
    t.add_build_change(env, plan, Change::Other)
}

/// Counts one change of every build in `builds`, or of the whole environment when
/// there are more than [`FANOUT`] (the caller stops collecting at `FANOUT + 1`).
fn bump_all(
    t: &Tables,
    env: u128,
    builds: &BTreeSet<u128>,
    change: Change,
) -> Result<(), StoreError> {
    if builds.len() > FANOUT {
        return bump(t, env, ENV_WIDE, Change::Other);
    }
    for b in builds {
        bump(t, env, *b, change)?;
    }
    Ok(())
}

/// A v1 task's shared state changed: bumps every build it appeared in.
pub(crate) fn bump_v1_task(t: &Tables, env: u128, task: u128) -> Result<(), StoreError> {
    let mut builds = BTreeSet::new();
    {
        let events = t.task_events()?;
        for entry in events.range((env, task, 0u64)..=(env, task, u64::MAX))? {
            builds.insert(entry?.1.value());
            if builds.len() > FANOUT {
                break;
            }
        }
    }
    bump_all(t, env, &builds, Change::Other)
}

/// A v2 task was saved: bumps the builds of every plan it is a member of.
pub(crate) fn bump_v2_task(t: &Tables, env: u128, task_id: &str) -> Result<(), StoreError> {
    let plans = super::v2::plans_of(t, env, task_id, FANOUT + 1)?;
    let mut builds = BTreeSet::new();
    if plans.len() > FANOUT {
        return bump(t, env, ENV_WIDE, Change::Other);
    }
    for plan in plans {
        if let Some(p) = super::v2::plan(t, env, plan)? {
            builds.insert(p.build);
        }
    }
    bump_all(t, env, &builds, Change::Task(task_id))
}

/// `(build counter, environment-wide generation)`: what a poll's ETag covers. Absent
/// rows read as 0 (a build untouched since before the counters existed).
pub fn of(r: &impl Reader, env: u128, build: u128) -> Result<(u64, u64), StoreError> {
    let table = r.open(BUILD_CHANGES)?;
    let get =
        |b: u128| -> Result<u64, StoreError> { Ok(table.get((env, b))?.map_or(0, |g| g.value())) };
    Ok((get(build)?, get(ENV_WIDE)?))
}

/// Removes an environment's counters (with the environment).
pub fn purge_environment(tx: &WriteTransaction, env: u128) -> Result<(), StoreError> {
    tx.open_table(BUILD_CHANGES)?
        .retain_in((env, 0u128)..=(env, u128::MAX), |_, _| false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::events::EventType;
    use crate::store::search::DocIndex;
    use crate::store::tasks::{self, NewBuild, NewEvent, Registration};
    use crate::store::temp_store;

    fn reg(hash: &str, deps: &[&str]) -> Registration {
        Registration {
            task_id: hash.into(),
            task_namespace: "ns".into(),
            task_name: hash.into(),
            task_data: "{}".into(),
            version: None,
            output_uri: None,
            dependency_task_ids: deps.iter().map(|d| d.to_string()).collect(),
            salt: 3,
            search: DocIndex::default(),
        }
    }

    fn build(name: &str) -> NewBuild {
        NewBuild {
            user_id: None,
            name: name.into(),
            description: None,
            commit_hash: None,
            root_task_ids: vec![],
            salt: 1,
        }
    }

    #[test]
    fn counters_follow_shared_tasks_and_the_reverse_edge_index_stays_consistent() {
        let (_dir, store) = temp_store();
        let env = Uuid::now_v7();
        let now = crate::clock::now_micros;
        // b1 registers a ← b (b depends on a); b2 references a; b3 is unrelated.
        let (b1, b2, b3) = store
            .write_blocking(move |tx| {
                Tables::with(tx, |t| -> Result<_, tasks::TrackError> {
                    let b1 = tasks::create_build(t, env, build("one"), now())?.id;
                    let b2 = tasks::create_build(t, env, build("two"), now())?.id;
                    let b3 = tasks::create_build(t, env, build("three"), now())?.id;
                    // "b" first: its edge waits for "a" (pending), then resolves.
                    tasks::register_task(t, env, b1, reg("b", &["a"]), now())?;
                    tasks::register_task(t, env, b1, reg("a", &[]), now())?;
                    tasks::register_task(t, env, b2, reg("a", &[]), now())?;
                    tasks::register_task(t, env, b3, reg("c", &["a"]), now())?;
                    Ok((b1, b2, b3))
                })
            })
            .unwrap();
        let read = |b: Uuid| {
            store
                .read_blocking(move |tx| of(tx, env.as_u128(), b.as_u128()))
                .unwrap()
        };
        let (one, two, three) = (read(b1), read(b2), read(b3));
        // a starts in b2: its global state changes, so every build it is in moves —
        // b3 only references it through an edge, so it stays.
        store
            .write_blocking(move |tx| {
                Tables::with(tx, |t| {
                    tasks::task_event(
                        t,
                        env,
                        b2,
                        "a",
                        NewEvent::plain(EventType::TaskStarted, now()),
                    )
                })
            })
            .unwrap();
        assert!(read(b1).0 > one.0, "b1 shows a's global status");
        assert!(read(b2).0 > two.0);
        assert_eq!(read(b3), three, "b3 does not show a");
        // An event that leaves the global state as it was moves only its build.
        let (one, two) = (read(b1), read(b2));
        store
            .write_blocking(move |tx| {
                Tables::with(tx, |t| {
                    tasks::task_event(
                        t,
                        env,
                        b1,
                        "b",
                        NewEvent::plain(EventType::TaskReferenced, now()),
                    )
                })
            })
            .unwrap();
        assert!(read(b1).0 > one.0);
        assert_eq!(read(b2), two);

        let n = store
            .read_blocking(move |tx| tasks::task_neighbours(tx, env, "a", 10))
            .unwrap()
            .unwrap();
        let mut users: Vec<String> = n.used_by.iter().map(|(t, _)| t.task_id.clone()).collect();
        users.sort();
        assert_eq!(users, ["b", "c"]);
        assert_eq!(n.used_by_total, 2);
        assert_eq!(n.depends_on_total, 0);
        let b = store
            .read_blocking(move |tx| tasks::task_neighbours(tx, env, "b", 10))
            .unwrap()
            .unwrap();
        assert_eq!(b.depends_on[0].0.task_id, "a");
        let report = crate::store::verify::verify(&store).unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        let known = crate::store::backup::known_tables();
        assert!(known.contains(&"build_changes".to_owned()));
        assert!(known.contains(&"task_dependents".to_owned()));
        store.shutdown();
    }

    #[test]
    fn the_migration_fills_the_reverse_index_from_the_edges() {
        let (_dir, store) = temp_store();
        store
            .write_blocking(|tx| -> Result<(), StoreError> {
                tx.open_table(tasks::TASK_EDGES)?
                    .insert((1u128, 20u128, 10u128), ())?;
                tx.open_table(tasks::TASK_DEPENDENTS)?
                    .retain(|_, _| false)?;
                tasks::fill_dependents(tx)
            })
            .unwrap();
        let found = store
            .read_blocking(|tx| -> Result<bool, StoreError> {
                Ok(tx
                    .open_table(tasks::TASK_DEPENDENTS)?
                    .get((1u128, 10u128, 20u128))?
                    .is_some())
            })
            .unwrap();
        assert!(found);
        store.shutdown();
    }
}
