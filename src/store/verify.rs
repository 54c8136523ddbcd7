//! `stardag-server admin verify`: walks the whole database and reports damage.
//!
//! Three layers, each catching what the one before cannot:
//! 1. redb's integrity check ([`super::Store::open`] runs it): every reachable page's
//!    checksum, so zeroed or overwritten pages are found;
//! 2. every table the binary knows (v1 identity, tasks, locks, search; v2), every row
//!    read and its key and value decoded, with redb panics caught per table; values
//!    stored as a format byte + bincode must carry a known format byte;
//! 3. index ↔ row consistency where it is one lookup per entry: every index entry
//!    below points at a row that exists.

use redb::{
    Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, Value,
};

use super::codec::FORMAT_VERSION;
use super::identity as id;
use super::v2::schema as v2;
use super::{locks, schema, search, tasks, Store, StoreError};

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
    let outcome = crate::panics::catch(|| -> Result<u64, String> {
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
        Ok(Ok(n)) => report.tables.push((name, n)),
        Ok(Err(why)) => report.problems.push(format!("table {name}: {why}")),
        Err(panic) => report.problems.push(format!(
            "table {name}: the database engine failed on it: {panic}"
        )),
    }
}

macro_rules! walk_tables {
    ($tx:expr, $report:expr, $($rows:ident: [$($def:path),* $(,)?]),* $(,)?) => {
        $($(walk($tx, $def, Rows::$rows, $report);)*)*
    };
}

fn walk_all(tx: &ReadTransaction, report: &mut Report) {
    walk_tables!(tx, report,
        Plain: [
            schema::META,
            id::USER_BY_EMAIL, id::USER_BY_EXTERNAL, id::WORKSPACE_BY_SLUG,
            id::MEMBER_BY_USER, id::INVITE_WORKSPACE, id::INVITE_BY_EMAIL,
            id::ENV_WORKSPACE, id::API_KEY_BY_HASH, id::SIGNING_KEYS,
            tasks::TASK_IDS, tasks::TASKS_BY_NAME, tasks::TASKS_BY_NAMESPACE,
            tasks::TASK_EVENTS, tasks::TASK_EDGES, tasks::PENDING_EDGES, tasks::ENV_COUNTS,
            locks::LOCK_EXPIRY, locks::LOCK_COUNTS, locks::LOCK_COMPLETIONS,
            search::POSTINGS, search::COUNTS, search::OVERFLOW, search::SHAPES,
            v2::BUILD_ENVS, v2::BUILDS_BY_ACTIVITY, v2::BUILDS_BY_STATUS,
            v2::BUILD_COUNTS, v2::REACTIVE, v2::DEPLOYMENT_GENERATIONS,
            v2::LOCAL_DEPLOYMENTS, v2::SETTINGS,
        ],
        Encoded: [
            id::USERS, id::WORKSPACES, id::MEMBERS, id::INVITES, id::ENVIRONMENTS,
            id::API_KEYS, id::TARGET_ROOTS,
            tasks::BUILDS, tasks::TASKS, tasks::TASK_STATES, tasks::BUILD_TASKS,
            tasks::BUILD_EVENTS, tasks::ASSETS,
            locks::LOCKS,
            v2::BUILDS, v2::DEPLOYMENTS, v2::TASKS,
        ],
    );
    walk_v2_rest(tx, report);
}

/// The v2 tables not named above (their layouts are v2's own business): every row read.
fn walk_v2_rest(tx: &ReadTransaction, report: &mut Report) {
    walk_tables!(tx, report,
        Plain: [
            v2::ARTIFACTS, v2::BUILD_EVENTS, v2::BUILD_EXECUTIONS, v2::BUILD_PLANS,
            v2::EXECUTIONS, v2::INSTANCES, v2::LIMITS, v2::LIMIT_HOLDERS, v2::MEMBERS,
            v2::PLANS, v2::PLAN_SCOPES, v2::TASKS_BY_STATUS, v2::TASK_EVENTS,
            v2::TASK_EXECUTIONS, v2::TASK_INSTANCES, v2::TASK_PLANS, v2::TICKS, v2::YIELDS,
        ],
    );
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
    let outcome = crate::panics::catch(|| -> Result<u64, String> {
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
    });
    let problem = match outcome {
        Ok(Ok(0)) => return,
        Ok(Ok(n)) => format!("{n} entries of index {iname} point at no row of {rname}"),
        Ok(Err(why)) => format!("index {iname} → {rname}: {why}"),
        Err(panic) => format!("index {iname} → {rname}: the database engine failed: {panic}"),
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
    check_index(
        tx,
        v2::BUILD_ENVS,
        v2::BUILDS,
        |build, env| (env, build),
        report,
    );
}
