//! Distributed locks (v1-tasks §4.5 as changed by D9 and D19; docs/locks.md).
//!
//! Locks are keyed by (environment, name), so another environment's lock of the same
//! name is a different lock and never visible (D9). Every change runs on the single
//! writer, which makes check-then-set atomic: of many racing acquires exactly one sees
//! the lock free. Time is a parameter (`now`, epoch µs) so callers read the server clock
//! inside the writer op and tests can use their own.
//!
//! The concurrency limit counts live locks without scanning: `LOCK_EXPIRY` indexes
//! locks by expiry and `LOCK_COUNTS` counts its entries per environment. Before a limit
//! check the entries that expired are pruned from the index (never from `LOCKS`: an
//! expired lock stays renewable and readable until taken over or released), so the
//! count is then exactly the live locks, at amortised O(1) per lock.

use std::ops::Bound;

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::codec::{decode, encode};
use super::tables::Tables;
use super::tasks::{self, env_bounds, TrackError};
use super::{identity, Reader, StoreError};
use crate::domain::events::EventType;

/// (env, name) → [`LockRow`], expired rows included.
pub const LOCKS: TableDefinition<(u128, &str), &[u8]> = TableDefinition::new("locks");
/// (env, expires_at, name): every lock whose expiry has not been pruned yet. Entries
/// above `now` are exactly the live locks.
pub const LOCK_EXPIRY: TableDefinition<(u128, i64, &str), ()> = TableDefinition::new("lock_expiry");
/// env → number of its `LOCK_EXPIRY` entries (the live count right after pruning).
pub const LOCK_COUNTS: TableDefinition<u128, u64> = TableDefinition::new("lock_counts");
/// (env, name) → when a release said the lock's task completed (see [`is_completed`]).
pub const LOCK_COMPLETIONS: TableDefinition<(u128, &str), i64> =
    TableDefinition::new("lock_completions");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockRow {
    pub owner: Uuid,
    pub acquired_at: i64,
    pub expires_at: i64,
    /// 0 at first insert; +1 on every re-acquire, takeover and renew.
    pub version: u64,
}

impl LockRow {
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at > now
    }
}

/// A lock as reads return it.
#[derive(Debug, Clone)]
pub struct Lock {
    pub name: String,
    pub row: LockRow,
}

#[derive(Debug)]
pub enum Acquired {
    Acquired(LockRow),
    /// The task behind the lock name is complete; the lock was not touched.
    AlreadyCompleted,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// 423: a live lock of another owner.
    #[error("Lock is held by another owner")]
    HeldByOther,
    /// 429: the environment already holds its `max_concurrent_locks` live locks.
    #[error("Environment concurrency limit reached ({0})")]
    LimitReached(u32),
    /// 409 on renew and release.
    #[error("Lock not found or not owned by caller")]
    NotOwned,
    #[error("Lock not found")]
    NotFound,
    #[error("Build not found")]
    BuildNotFound,
    /// The caller's environment was deleted while its request was in flight.
    #[error("Environment not found")]
    EnvironmentNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TrackError> for LockError {
    fn from(e: TrackError) -> Self {
        match e {
            TrackError::BuildNotFound => LockError::BuildNotFound,
            // Release checks the task before appending; this is unreachable.
            TrackError::TaskNotFound => LockError::NotFound,
            TrackError::Store(e) => LockError::Store(e),
        }
    }
}

macro_rules! lock_error_from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for LockError {
            fn from(e: $t) -> Self {
                LockError::Store(e.into())
            }
        }
    )*};
}
lock_error_from_redb!(redb::StorageError, redb::TableError);

pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(LOCKS)?;
    tx.open_table(LOCK_EXPIRY)?;
    tx.open_table(LOCK_COUNTS)?;
    tx.open_table(LOCK_COMPLETIONS)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------

/// `POST /locks/{name}/acquire` (§4.5 with D19): the completion check, then the
/// environment's limit (which the caller's own lock of this name is exempt from), then
/// take the lock if it is free, expired, or already the caller's.
#[allow(clippy::too_many_arguments)]
pub fn acquire(
    t: &Tables,
    ws: Uuid,
    env: Uuid,
    name: &str,
    owner: Uuid,
    ttl_micros: i64,
    check_completion: bool,
    now: i64,
) -> Result<Acquired, LockError> {
    let e = env.as_u128();
    if check_completion && completed_in(t, e, name)? {
        return Ok(Acquired::AlreadyCompleted);
    }
    // Identity tables are not in the batch's set: read them through the transaction.
    let limit = identity::environment(t.tx(), ws, env)?
        .ok_or(LockError::EnvironmentNotFound)?
        .max_concurrent_locks;
    let existing = lock_row_in(t, e, name)?;
    let own = existing.as_ref().is_some_and(|r| r.owner == owner);
    // Upstream order: the limit before ownership, so a full environment answers 429
    // even for a lock someone else holds.
    if let (Some(limit), false) = (limit, own) {
        if live_count(t, e, now)? >= u64::from(limit) {
            return Err(LockError::LimitReached(limit));
        }
    }
    if let Some(r) = &existing {
        if !own && r.is_live(now) {
            return Err(LockError::HeldByOther);
        }
    }
    let row = LockRow {
        owner,
        acquired_at: now,
        expires_at: now.saturating_add(ttl_micros),
        version: existing.as_ref().map_or(0, |r| r.version + 1),
    };
    put(t, e, name, existing.map(|r| r.expires_at), &row)?;
    Ok(Acquired::Acquired(row))
}

/// `POST /locks/{name}/renew`: the owner extends its lock, expired or not, as long as
/// nobody took it over.
pub fn renew(
    t: &Tables,
    env: Uuid,
    name: &str,
    owner: Uuid,
    ttl_micros: i64,
    now: i64,
) -> Result<LockRow, LockError> {
    let e = env.as_u128();
    let old = owned(t, e, name, owner)?;
    let row = LockRow {
        expires_at: now.saturating_add(ttl_micros),
        version: old.version + 1,
        ..old.clone()
    };
    put(t, e, name, Some(old.expires_at), &row)?;
    Ok(row)
}

/// What a release reports besides the owner.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Completion {
    pub task_completed: bool,
    pub build: Option<Uuid>,
}

/// `POST /locks/{name}/release` (D19: ownership is checked before anything is
/// recorded). With `task_completed`, the name is remembered as completed; with a build
/// too, a registered task of that hash gets a `task_completed` event in that build.
pub fn release(
    t: &Tables,
    env: Uuid,
    name: &str,
    owner: Uuid,
    completion: Completion,
    now: i64,
) -> Result<(), LockError> {
    let e = env.as_u128();
    let old = owned(t, e, name, owner)?;
    let build = match completion.build {
        Some(b) if completion.task_completed => {
            if !t.has_build(e, b.as_u128())? {
                return Err(LockError::BuildNotFound);
            }
            Some(b)
        }
        _ => None,
    };
    // Checks are done: writes only from here on.
    if let Some(b) = build {
        if tasks::task_id_in(t, e, name)?.is_some() {
            tasks::task_event(
                t,
                env,
                b,
                name,
                tasks::NewEvent::plain(EventType::TaskCompleted, now),
            )?;
        }
    }
    t.locks()?.remove((e, name))?;
    unindex(t, e, name, old.expires_at)?;
    if completion.task_completed {
        t.lock_completions()?.insert((e, name), now)?;
    }
    Ok(())
}

/// Removes every lock row of an environment (called when it is deleted).
pub fn purge_environment(tx: &WriteTransaction, env: Uuid) -> Result<(), StoreError> {
    let e = env.as_u128();
    tx.open_table(LOCKS)?
        .retain_in(env_bounds(e, |x| (x, "")), |_, _| false)?;
    tx.open_table(LOCK_EXPIRY)?
        .retain_in(env_bounds(e, |x| (x, i64::MIN, "")), |_, _| false)?;
    tx.open_table(LOCK_COMPLETIONS)?
        .retain_in(env_bounds(e, |x| (x, "")), |_, _| false)?;
    tx.open_table(LOCK_COUNTS)?.remove(e)?;
    Ok(())
}

/// The caller's lock of this name, expired or not; else 409.
fn owned(t: &Tables, env: u128, name: &str, owner: Uuid) -> Result<LockRow, LockError> {
    match lock_row_in(t, env, name)? {
        Some(row) if row.owner == owner => Ok(row),
        _ => Err(LockError::NotOwned),
    }
}

/// Writes the row and moves its expiry index entry from `old_expiry` to the new one.
fn put(
    t: &Tables,
    env: u128,
    name: &str,
    old_expiry: Option<i64>,
    row: &LockRow,
) -> Result<(), StoreError> {
    t.locks()?.insert((env, name), encode(row)?.as_slice())?;
    let mut index = t.lock_expiry()?;
    let removed = match old_expiry {
        Some(at) => index.remove((env, at, name))?.is_some(),
        None => false,
    };
    index.insert((env, row.expires_at, name), ())?;
    drop(index);
    if !removed {
        t.add_lock_count(env, 1)?;
    }
    Ok(())
}

/// Drops the lock's expiry index entry, unless pruning already did.
fn unindex(t: &Tables, env: u128, name: &str, expiry: i64) -> Result<(), StoreError> {
    let removed = t.lock_expiry()?.remove((env, expiry, name))?.is_some();
    if removed {
        t.add_lock_count(env, -1)?;
    }
    Ok(())
}

/// The environment's live locks at `now`. Prunes the expired index entries first: a
/// state-neutral write (it changes no lock and no answer), so a refusal that follows it
/// still leaves the shared transaction consistent (writer contract, `Store::write`).
fn live_count(t: &Tables, env: u128, now: i64) -> Result<u64, StoreError> {
    let mut pruned = 0i64;
    {
        let mut index = t.lock_expiry()?;
        let expired = (env, i64::MIN, "")..(env, now.saturating_add(1), "");
        for entry in index.extract_from_if(expired, |_, _| true)? {
            entry?;
            pruned += 1;
        }
    }
    if pruned > 0 {
        t.add_lock_count(env, -pruned)?;
    }
    t.lock_count(env)
}

// ---------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------

/// The key of `locks`: (environment, lock name).
type LockKey = (u128, &'static str);

/// One row of `locks` (a read's table or a batch's).
fn row_in(
    locks: &impl ReadableTable<LockKey, &'static [u8]>,
    env: u128,
    name: &str,
) -> Result<Option<LockRow>, StoreError> {
    locks
        .get((env, name))?
        .map(|raw| decode("locks", raw.value()))
        .transpose()
}

fn lock_row(r: &impl Reader, env: u128, name: &str) -> Result<Option<LockRow>, StoreError> {
    row_in(&r.open(LOCKS)?, env, name)
}

fn lock_row_in(t: &Tables, env: u128, name: &str) -> Result<Option<LockRow>, StoreError> {
    row_in(&*t.locks()?, env, name)
}

/// One lock of the environment, expired or not.
pub fn get(r: &impl Reader, env: Uuid, name: &str) -> Result<Option<LockRow>, StoreError> {
    lock_row(r, env.as_u128(), name)
}

/// The environment's locks, newest acquisition first (ties by name): the live ones at
/// `now` from the expiry index, or every row with `include_expired`.
pub fn list(
    r: &impl Reader,
    env: Uuid,
    now: i64,
    include_expired: bool,
) -> Result<Vec<Lock>, StoreError> {
    let e = env.as_u128();
    let locks = r.open(LOCKS)?;
    let mut out = Vec::new();
    if include_expired {
        for entry in locks.range(env_bounds(e, |x| (x, "")))? {
            let (k, v) = entry?;
            out.push(Lock {
                name: k.value().1.to_owned(),
                row: decode("locks", v.value())?,
            });
        }
    } else {
        let index = r.open(LOCK_EXPIRY)?;
        let Some(after_now) = now.checked_add(1) else {
            return Ok(out);
        };
        let (_, upper) = env_bounds(e, |x| (x, i64::MIN, ""));
        for entry in index.range((Bound::Included((e, after_now, "")), upper))? {
            let (k, _) = entry?;
            let name = k.value().2;
            let raw = locks.get((e, name))?.ok_or_else(|| StoreError::Corrupt {
                table: "lock_expiry",
                why: format!("indexed lock {name:?} has no row"),
            })?;
            out.push(Lock {
                name: name.to_owned(),
                row: decode("locks", raw.value())?,
            });
        }
    }
    out.sort_by(|a, b| {
        b.row
            .acquired_at
            .cmp(&a.row.acquired_at)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(out)
}

/// The completion check of acquire and `completion-status`: the task of that hash
/// completed in some build (§3.4), or a release of this lock said so. The second half
/// closes the SDK's window between its release (`task_completed: true`, sent before
/// `/complete`) and its `/complete` (docs/locks.md).
pub fn is_completed(r: &impl Reader, env: Uuid, name: &str) -> Result<bool, StoreError> {
    let e = env.as_u128();
    Ok(r.open(LOCK_COMPLETIONS)?.get((e, name))?.is_some() || tasks::is_completed(r, env, name)?)
}

/// [`is_completed`] inside a write batch.
fn completed_in(t: &Tables, env: u128, name: &str) -> Result<bool, StoreError> {
    Ok(t.lock_completions()?.get((env, name))?.is_some() || tasks::is_completed_in(t, env, name)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store as store;
    use crate::store::Store;

    const SEC: i64 = 1_000_000;

    fn count(store: &Store, env: Uuid) -> u64 {
        store
            .read_blocking(|tx| -> Result<u64, StoreError> {
                Ok(tx
                    .open_table(LOCK_COUNTS)?
                    .get(env.as_u128())?
                    .map_or(0, |g| g.value()))
            })
            .unwrap()
    }

    /// Acquire/renew/release through the writer, against an environment row with
    /// `limit`, at synthetic times.
    #[test]
    fn the_live_count_follows_expiry_renewal_and_release() {
        let (_dir, store) = store();
        let (ws, env) = (Uuid::now_v7(), Uuid::now_v7());
        store
            .write_blocking(move |tx| {
                identity::put_environment(
                    tx,
                    &identity::EnvironmentRow {
                        id: env,
                        workspace_id: ws,
                        name: "e".into(),
                        slug: "e".into(),
                        description: None,
                        max_concurrent_locks: Some(2),
                        created_at: 0,
                    },
                )
            })
            .unwrap();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let acq = |owner: Uuid, name: &'static str, at: i64| {
            store.write_blocking(move |tx| {
                Tables::with(tx, |t| {
                    acquire(t, ws, env, name, owner, 10 * SEC, false, at)
                })
            })
        };
        assert!(acq(a, "x", 0).is_ok());
        assert!(acq(b, "y", 0).is_ok());
        assert!(matches!(acq(c, "z", SEC), Err(LockError::LimitReached(2))));
        assert_eq!(count(&store, env), 2);
        // At t = 10 s both expired: pruning brings the count to the one new lock.
        assert!(acq(c, "z", 10 * SEC).is_ok());
        assert_eq!(count(&store, env), 1);
        // The pruned-but-untaken lock "x" is renewed by its owner and counts again.
        let row = store
            .write_blocking(move |tx| {
                Tables::with(tx, |t| renew(t, env, "x", a, 10 * SEC, 11 * SEC))
            })
            .unwrap();
        assert_eq!((row.version, row.expires_at), (1, 21 * SEC));
        assert_eq!(count(&store, env), 2);
        // b's own expired lock would be exempt; a stranger is refused.
        let d = Uuid::now_v7();
        assert!(matches!(
            acq(d, "y", 12 * SEC),
            Err(LockError::LimitReached(2))
        ));
        let names = |now: i64, expired: bool| {
            let locks = store
                .read_blocking(|tx| list(tx, env, now, expired))
                .unwrap();
            locks.into_iter().map(|l| l.name).collect::<Vec<_>>()
        };
        // Newest acquisition first; expired rows stay until taken over or released.
        assert_eq!(names(12 * SEC, false), ["z", "x"]);
        assert_eq!(names(12 * SEC, true), ["z", "x", "y"]);
        let rel = |owner: Uuid, name: &'static str| {
            store.write_blocking(move |tx| {
                Tables::with(tx, |t| {
                    release(t, env, name, owner, Completion::default(), 25 * SEC)
                })
            })
        };
        assert!(matches!(rel(a, "y"), Err(LockError::NotOwned)));
        // z expired but was not pruned: its release takes it off the count; y was
        // pruned at 10 s, so its release leaves the count alone.
        rel(c, "z").unwrap();
        rel(b, "y").unwrap();
        assert_eq!(count(&store, env), 1);
        assert_eq!(names(25 * SEC, true), ["x"]);
        assert!(names(25 * SEC, false).is_empty());
        store
            .write_blocking(move |tx| purge_environment(tx, env))
            .unwrap();
        assert_eq!(count(&store, env), 0);
        assert!(store
            .read_blocking(|tx| list(tx, env, 0, true))
            .unwrap()
            .is_empty());
        store.shutdown();
    }
}
