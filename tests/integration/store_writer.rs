//! The group-commit writer, driven through the library: many concurrent writers share
//! commits, every acknowledged write is durable, a refused op never fails its batch.

use std::sync::Arc;

use redb::{ReadableTable, TableDefinition};
use stardag_server::clock::now_micros;
use stardag_server::store::redo::{CreateBuild, RegisterTask};
use stardag_server::store::search::DocIndex;
use stardag_server::store::tasks::{self, NewBuild, Registration, TASK_IDS};
use stardag_server::store::{Store, StoreError, StoreOptions};

const T: TableDefinition<u64, u64> = TableDefinition::new("writer_test");

fn options() -> StoreOptions {
    StoreOptions {
        cache_bytes: 8 << 20,
        write_queue: 1024,
        max_batch: 256,
        ..Default::default()
    }
}

#[derive(Debug)]
enum TestError {
    Store(StoreError),
    Refused,
}

impl From<StoreError> for TestError {
    fn from(e: StoreError) -> Self {
        TestError::Store(e)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_writers_share_commits_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let store = Arc::new(Store::open(&path, &options()).unwrap());
    const WRITERS: u64 = 64;
    const PER_WRITER: u64 = 40;

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..PER_WRITER {
                let key = w * 1000 + i;
                // Every 10th op is refused before writing: its batch must still commit.
                let refuse = i % 10 == 9;
                let res = store
                    .write(move |tx| {
                        if refuse {
                            return Err(TestError::Refused);
                        }
                        let mut t = tx.open_table(T).map_err(StoreError::from)?;
                        t.insert(key, key * 2).map_err(StoreError::from)?;
                        Ok(key)
                    })
                    .await;
                match res {
                    Ok(k) => acked.push(k),
                    Err(TestError::Refused) => assert!(refuse),
                    Err(TestError::Store(e)) => panic!("write failed: {e}"),
                }
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert_eq!(acked.len() as u64, WRITERS * PER_WRITER * 9 / 10);

    let stats = store.writer_stats();
    let total_ops = WRITERS * PER_WRITER;
    assert_eq!(
        stats.ops, total_ops,
        "refused ops still count as applied ops"
    );
    assert!(
        stats.commits < total_ops,
        "64 concurrent writers must share commits: {stats:?}"
    );
    assert!(stats.max_batch > 1, "no batch was formed: {stats:?}");
    assert_eq!(stats.failed_batches, 0);

    // Durable across a clean close and reopen.
    store.shutdown();
    drop(store);
    let reopened = Store::open(&path, &options()).unwrap();
    let count = reopened
        .read(move |tx| -> Result<Vec<(u64, u64)>, StoreError> {
            let t = tx.open_table(T)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                out.push((k.value(), v.value()));
            }
            Ok(out)
        })
        .await
        .unwrap();
    assert_eq!(count.len(), acked.len());
    for k in acked {
        assert!(count.contains(&(k, k * 2)), "acknowledged write {k} lost");
    }
    reopened.shutdown();
}

/// Submits a write that keeps the writer inside its transaction for `ms` (writing one
/// row), and returns once the writer has started it: what is queued meanwhile joins
/// that batch.
async fn hold_writer(
    store: &Arc<Store>,
    ms: u64,
) -> tokio::task::JoinHandle<Result<(), StoreError>> {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let store = store.clone();
    let slow = tokio::spawn(async move {
        store
            .write(move |tx| -> Result<(), StoreError> {
                let _ = started_tx.send(());
                std::thread::sleep(std::time::Duration::from_millis(ms));
                tx.open_table(T)?.insert(0, 0)?;
                Ok(())
            })
            .await
    });
    started_rx.await.unwrap();
    slow
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_while_a_batch_is_applied_join_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db.redb"), &options()).unwrap());
    let before = store.writer_stats();
    // A slow first op holds the writer inside its transaction while five more queue.
    let slow = hold_writer(&store, 200).await;
    let mut queued = Vec::new();
    for k in 1..=5u64 {
        let store = store.clone();
        queued.push(tokio::spawn(async move {
            store
                .write(move |tx| -> Result<(), StoreError> {
                    tx.open_table(T)?.insert(k, k)?;
                    Ok(())
                })
                .await
        }));
    }
    // Give the five time to reach the queue before the slow op finishes.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    slow.await.unwrap().unwrap();
    for q in queued {
        q.await.unwrap().unwrap();
    }
    let after = store.writer_stats();
    assert_eq!(after.ops - before.ops, 6);
    assert_eq!(
        after.commits - before.commits,
        1,
        "the queued writes must share the slow op's commit: {after:?}"
    );
    store.shutdown();
}

#[tokio::test]
async fn a_panicking_op_fails_only_its_batch_and_the_store_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.redb"), &options()).unwrap();
    let res: Result<(), StoreError> = store
        .write(|tx| {
            let mut t = tx.open_table(T)?;
            t.insert(1, 1)?;
            panic!("boom");
        })
        .await;
    assert!(res.is_err());
    let ok: Result<(), StoreError> = store
        .write(|tx| {
            tx.open_table(T)?.insert(2, 2)?;
            Ok(())
        })
        .await;
    ok.unwrap();
    let rows = store
        .read(|tx| -> Result<Vec<u64>, StoreError> {
            let t = tx.open_table(T)?;
            let mut v = Vec::new();
            for r in t.iter()? {
                v.push(r?.0.value());
            }
            Ok(v)
        })
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![2],
        "the panicking op's half-write was rolled back"
    );
    assert_eq!(store.writer_stats().failed_batches, 1);
    store.shutdown();
}

#[tokio::test]
async fn writes_after_shutdown_are_refused_not_lost_silently() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.redb"), &options()).unwrap();
    store.shutdown();
    let res: Result<(), StoreError> = store.write(|_| Ok(())).await;
    assert!(matches!(res, Err(StoreError::ShuttingDown)));
}

#[test]
fn a_second_process_cannot_open_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let first = Store::open(&path, &options()).unwrap();
    match Store::open(&path, &options()) {
        Err(StoreError::Locked(p)) => assert!(p.contains("db.redb")),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("opened twice"),
    }
    first.shutdown();
}

fn registration(hash: &str, deps: &[&str]) -> Registration {
    Registration {
        task_id: hash.into(),
        task_namespace: "ns".into(),
        task_name: "T".into(),
        task_data: "{}".into(),
        version: None,
        output_uri: None,
        dependency_task_ids: deps.iter().map(|d| d.to_string()).collect(),
        salt: 1,
        search: DocIndex::default(),
    }
}

/// A batch's journaled writes share its open tables; a plain write between them gets
/// the transaction with those tables closed, sees what they wrote, and the journaled
/// writes after it open the tables again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journaled_and_plain_writes_share_one_batch_and_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db.redb"), &options()).unwrap());
    let env = uuid::Uuid::now_v7();
    let build = store
        .write_logged(CreateBuild {
            env,
            new: NewBuild {
                user_id: None,
                name: "b".into(),
                description: None,
                commit_hash: None,
                root_task_ids: vec![],
                salt: 1,
            },
            now: now_micros(),
        })
        .await
        .unwrap()
        .id;
    let before = store.writer_stats();
    let slow = hold_writer(&store, 300).await;
    let register = |hash: &'static str, deps: &'static [&'static str]| {
        let store = store.clone();
        tokio::spawn(async move {
            let reg = registration(hash, deps);
            let now = now_micros();
            store
                .write_logged(RegisterTask {
                    env,
                    build,
                    reg,
                    now,
                })
                .await
        })
    };
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(20));
    let first = register("up", &[]);
    pause().await;
    // Opens a table the registration above holds open in the batch's set.
    let plain = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(move |tx| -> Result<bool, StoreError> {
                    let ids = tx.open_table(TASK_IDS)?;
                    let seen = ids.get((env.as_u128(), "up"))?.is_some();
                    Ok(seen)
                })
                .await
        })
    };
    pause().await;
    let second = register("down", &["up"]);
    pause().await;
    slow.await.unwrap().unwrap();
    first.await.unwrap().unwrap();
    assert!(
        plain.await.unwrap().unwrap(),
        "the plain write sees the journaled write before it in the batch"
    );
    second.await.unwrap().unwrap();
    let after = store.writer_stats();
    assert_eq!(after.ops - before.ops, 4);
    assert_eq!(after.commits - before.commits, 1, "{after:?}");
    assert_eq!(after.failed_batches, before.failed_batches);
    let found = store
        .read(move |tx| -> Result<_, StoreError> {
            Ok((
                tasks::task_by_hash(tx, env, "up")?.is_some(),
                tasks::task_by_hash(tx, env, "down")?.is_some(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(found, (true, true));
    store.shutdown();
}
