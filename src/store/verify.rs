//! `stardag-server admin verify`: walks the whole database and reports damage.
//!
//! Three layers, each catching what the one before cannot:
//! 1. redb's integrity check ([`super::Store::open`] runs it): every reachable page's
//!    checksum, so zeroed or overwritten pages are found;
//! 2. every table of the schema (the registry in `backup.rs`), every row read and its
//!    key and value decoded, with redb panics caught per table; values stored as a
//!    format byte + bincode must carry a known format byte;
//! 3. index ↔ row consistency where it is one lookup per entry: every entry of the
//!    identity, task, search and v2 indexes below points at a row that exists.

use redb::{
    Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, Value,
};

use super::backup::{visit_tables, BackupError, TableVisitor};
use super::codec::FORMAT_VERSION;
use super::identity as id;
use super::v2::schema as v2;
use super::{locks, search, tasks, Store, StoreError};

/// What a walk found: rows read per table and every problem.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub tables: Vec<(String, u64)>,
    pub problems: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Walks `store`'s database on one read snapshot.
pub fn verify(store: &Store) -> Result<Report, StoreError> {
    let tx = store.db.begin_read()?;
    let mut report = Report::default();
    walk_all(&tx, &mut report);
    check_indexes(&tx, &mut report);
    Ok(report)
}

/// How a row's value is checked beyond decoding.
#[derive(Clone, Copy)]
enum Rows {
    /// Fixed-width or text values: decoding them is the check.
    Plain,
    /// `codec.rs` rows: a format byte, then bincode.
    Encoded,
}

fn walk<K: Key + 'static, V: Value + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<K, V>,
    rows: Rows,
    report: &mut Report,
) {
    let name = def.name().to_owned();
    let outcome = guarded(&format!("table {name}"), || -> Result<u64, String> {
        let table = tx.open_table(def).map_err(|e| e.to_string())?;
        let mut n = 0u64;
        let mut bad_format = 0u64;
        for entry in table.iter().map_err(|e| e.to_string())? {
            let (k, v) = entry.map_err(|e| e.to_string())?;
            let _ = K::as_bytes(&k.value());
            let bytes = V::as_bytes(&v.value()).as_ref().to_vec();
            if let Rows::Encoded = rows {
                if bytes.first() != Some(&FORMAT_VERSION) {
                    bad_format += 1;
                }
            }
            n += 1;
        }
        if bad_format > 0 {
            return Err(format!("{bad_format} rows with an unknown format byte"));
        }
        Ok(n)
    });
    match outcome {
        Ok(n) => report.tables.push((name, n)),
        Err(problem) => report.problems.push(problem),
    }
}

/// Runs one check; an error it returns, or a panic of the database engine inside it,
/// becomes a problem under `what`.
fn guarded<T, E: std::fmt::Display>(
    what: &str,
    check: impl FnOnce() -> Result<T, E>,
) -> Result<T, String> {
    match crate::panics::catch(check) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(why)) => Err(format!("{what}: {why}")),
        Err(panic) => Err(format!("{what}: the database engine failed on it: {panic}")),
    }
}

/// The tables whose values are `codec.rs` rows (a format byte, then bincode); every
/// other table's values are fixed-width or text, and decoding them is the check.
fn encoded_tables() -> Vec<&'static str> {
    vec![
        id::USERS.name(),
        id::WORKSPACES.name(),
        id::MEMBERS.name(),
        id::INVITES.name(),
        id::ENVIRONMENTS.name(),
        id::API_KEYS.name(),
        id::TARGET_ROOTS.name(),
        tasks::BUILDS.name(),
        tasks::TASKS.name(),
        tasks::TASK_STATES.name(),
        tasks::BUILD_TASKS.name(),
        tasks::BUILD_EVENTS.name(),
        tasks::ASSETS.name(),
        locks::LOCKS.name(),
        v2::BUILDS.name(),
        v2::DEPLOYMENTS.name(),
    ]
}

/// Walks every table of the schema: the registry in `backup.rs` (which a unit test
/// holds equal to the tables created at start), so a new table is never skipped.
fn walk_all(tx: &ReadTransaction, report: &mut Report) {
    struct Walker<'a> {
        tx: &'a ReadTransaction,
        report: &'a mut Report,
        encoded: Vec<&'static str>,
    }
    impl TableVisitor for Walker<'_> {
        fn table<K: Key + 'static, V: Value + 'static>(
            &mut self,
            def: TableDefinition<K, V>,
        ) -> Result<(), BackupError> {
            let rows = if self.encoded.contains(&def.name()) {
                Rows::Encoded
            } else {
                Rows::Plain
            };
            walk(self.tx, def, rows, self.report);
            Ok(())
        }
    }
    let mut walker = Walker {
        tx,
        report,
        encoded: encoded_tables(),
    };
    // The walker never fails: problems go into the report.
    let _ = visit_tables(&mut walker);
}

/// Every entry of `index` names a row of `rows`: `target` maps an entry to that row's key.
fn check_index<IK, IV, RK, RV>(
    tx: &ReadTransaction,
    index: TableDefinition<IK, IV>,
    rows: TableDefinition<RK, RV>,
    target: impl for<'a> Fn(IK::SelfType<'a>, IV::SelfType<'a>) -> RK,
    report: &mut Report,
) where
    IK: Key + 'static,
    IV: Value + 'static,
    RK: Key + 'static + for<'a> Value<SelfType<'a> = RK>,
    RV: Value + 'static,
{
    let (iname, rname) = (index.name().to_owned(), rows.name().to_owned());
    let outcome = guarded(
        &format!("index {iname} → {rname}"),
        || -> Result<u64, String> {
            let index = tx.open_table(index).map_err(|e| e.to_string())?;
            let rows = tx.open_table(rows).map_err(|e| e.to_string())?;
            let mut dangling = 0u64;
            for entry in index.iter().map_err(|e| e.to_string())? {
                let (k, v) = entry.map_err(|e| e.to_string())?;
                let key = target(k.value(), v.value());
                if rows.get(key).map_err(|e| e.to_string())?.is_none() {
                    dangling += 1;
                }
            }
            Ok(dangling)
        },
    );
    let problem = match outcome {
        Ok(0) => return,
        Ok(n) => format!("{n} entries of index {iname} point at no row of {rname}"),
        Err(problem) => problem,
    };
    report.problems.push(problem);
}

fn check_indexes(tx: &ReadTransaction, report: &mut Report) {
    check_index(tx, id::USER_BY_EMAIL, id::USERS, |_, user| user, report);
    check_index(
        tx,
        id::WORKSPACE_BY_SLUG,
        id::WORKSPACES,
        |_, ws| ws,
        report,
    );
    check_index(
        tx,
        id::ENV_WORKSPACE,
        id::ENVIRONMENTS,
        |env, ws| (ws, env),
        report,
    );
    check_index(tx, id::API_KEY_BY_HASH, id::API_KEYS, |_, key| key, report);
    check_index(
        tx,
        tasks::TASK_IDS,
        tasks::TASKS,
        |(env, _), task| (env, task),
        report,
    );
    check_index(tx, tasks::TASK_STATES, tasks::TASKS, |k, _| k, report);
    check_index(
        tx,
        tasks::BUILD_TASKS,
        tasks::TASKS,
        |(env, _, task), _| (env, task),
        report,
    );
    check_index(
        tx,
        tasks::TASKS_BY_NAME,
        tasks::TASKS,
        |(env, _, task), _| (env, task),
        report,
    );
    check_index(
        tx,
        tasks::TASKS_BY_NAMESPACE,
        tasks::TASKS,
        |(env, _, task), _| (env, task),
        report,
    );
    check_index(
        tx,
        tasks::TASK_EVENTS,
        tasks::BUILDS,
        |(env, _, _), build| (env, build),
        report,
    );
    check_index(
        tx,
        tasks::TASK_DEPENDENTS,
        tasks::TASKS,
        |(env, up, _), _| (env, up),
        report,
    );
    check_index(
        tx,
        tasks::TASK_DEPENDENTS,
        tasks::TASK_EDGES,
        |(env, up, down), _| (env, down, up),
        report,
    );
    // The search index: every posting and overflow entry names a task.
    check_index(
        tx,
        search::POSTINGS,
        tasks::TASKS,
        |(env, _, _, task), _| (env, task),
        report,
    );
    check_index(
        tx,
        search::OVERFLOW,
        tasks::TASKS,
        |(env, _, task), _| (env, task),
        report,
    );
    // The v2 secondary indexes.
    check_index(
        tx,
        v2::BUILD_ENVS,
        v2::BUILDS,
        |build, env| (env, build),
        report,
    );
    check_index(
        tx,
        v2::BUILDS_BY_ACTIVITY,
        v2::BUILDS,
        |(env, _, build), _| (env, build),
        report,
    );
    check_index(
        tx,
        v2::BUILDS_BY_STATUS,
        v2::BUILDS,
        |(env, _, _, build), _| (env, build),
        report,
    );
    check_index(tx, v2::REACTIVE, v2::BUILDS, |k, _| k, report);
    check_index(
        tx,
        v2::BUILD_PLANS,
        v2::PLANS,
        |(env, _, _), plan| (env, plan),
        report,
    );
    check_task_entries(tx, report);
    check_index(
        tx,
        v2::BUILD_EXECUTIONS,
        v2::EXECUTIONS,
        |(env, _, _, exec), _| (env, exec),
        report,
    );
    check_index(
        tx,
        v2::LOCAL_DEPLOYMENTS,
        v2::DEPLOYMENTS,
        |(env, _), dep| (env, dep),
        report,
    );
}

/// `v2_task_entries` holds rows and index entries: a row carries a known format byte,
/// and each plan, instance, execution and event entry names a row that exists.
fn check_task_entries(tx: &ReadTransaction, report: &mut Report) {
    let name = v2::TASKS.name();
    // Per part: entries naming no row (or, for rows, with an unknown format byte); and
    // entries of no known part.
    let outcome = guarded(&format!("table {name}"), || -> Result<_, redb::Error> {
        let tasks = tx.open_table(v2::TASKS)?;
        let plans = tx.open_table(v2::PLANS)?;
        let instances = tx.open_table(v2::INSTANCES)?;
        let executions = tx.open_table(v2::EXECUTIONS)?;
        let events = tx.open_table(v2::BUILD_EVENTS)?;
        let mut bad = [0u64; v2::Part::ALL.len()];
        let mut unknown_part = 0u64;
        for entry in tasks.iter()? {
            let (k, v) = entry?;
            let (env, _, tag, _, id) = k.value();
            let value = v.value();
            let Some(part) = v2::Part::of(tag) else {
                unknown_part += 1;
                continue;
            };
            let fine = match part {
                v2::Part::Row => value.first() == Some(&FORMAT_VERSION),
                v2::Part::Plan => plans.get((env, id))?.is_some(),
                v2::Part::Instance => instances.get((env, id))?.is_some(),
                v2::Part::Execution => executions.get((env, id))?.is_some(),
                v2::Part::Event => match v2::event_of(k.value(), value) {
                    Some((build, seq)) => events.get((env, build, seq))?.is_some(),
                    None => false,
                },
            };
            if !fine {
                bad[part as usize] += 1;
            }
        }
        Ok((bad, unknown_part))
    });
    let (bad, unknown_part) = match outcome {
        Ok(counts) => counts,
        Err(problem) => return report.problems.push(problem),
    };
    for (part, n) in v2::Part::ALL.iter().zip(bad) {
        if n > 0 {
            let what = match part {
                v2::Part::Row => "task rows with an unknown format byte".to_owned(),
                other => format!("{other:?} entries point at no row"),
            };
            report.problems.push(format!("table {name}: {n} {what}"));
        }
    }
    if unknown_part > 0 {
        report.problems.push(format!(
            "table {name}: {unknown_part} entries of an unknown part"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[test]
    fn an_empty_store_is_clean_and_every_table_is_walked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), &StoreOptions::default()).unwrap();
        let report = verify(&store).unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        let walked: Vec<&str> = report.tables.iter().map(|(n, _)| n.as_str()).collect();
        for name in crate::store::backup::known_tables() {
            assert!(walked.contains(&name.as_str()), "{name} not walked");
        }
        store.shutdown();
    }

    #[test]
    fn a_search_posting_or_v2_index_entry_without_its_row_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), &StoreOptions::default()).unwrap();
        store
            .write_blocking(|tx| -> Result<(), StoreError> {
                tx.open_table(search::POSTINGS)?
                    .insert((1u128, "param.x", &b"1"[..], 7u128), 1)?;
                tx.open_table(v2::BUILDS_BY_STATUS)?
                    .insert((1u128, 0u8, 5i64, 9u128), ())?;
                let mut tasks = tx.open_table(v2::TASKS)?;
                tasks.insert(v2::Part::Execution.key(1, "t", 5, 9), v2::NO_VALUE)?;
                tasks.insert(v2::Part::Event.key(1, "t", 6, 0), &7u128.to_le_bytes()[..])?;
                tasks.insert(v2::row_key(1, "t"), &b"not a row"[..])?;
                Ok(())
            })
            .unwrap();
        let problems = verify(&store).unwrap().problems.join("\n");
        assert!(
            problems.contains("1 entries of index search_postings point at no row of tasks"),
            "{problems}"
        );
        assert!(
            problems
                .contains("1 entries of index v2_builds_by_status point at no row of v2_builds"),
            "{problems}"
        );
        for what in [
            "1 Execution entries point at no row",
            "1 Event entries point at no row",
            "1 task rows with an unknown format byte",
        ] {
            assert!(
                problems.contains(&format!("table v2_task_entries: {what}")),
                "{problems}"
            );
        }
        store.shutdown();
    }
}
