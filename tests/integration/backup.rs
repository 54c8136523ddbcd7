//! Online backup, restore and upgrades through the real binary (D26, D27, D35).
//!
//! The backup test pins down "the source at the snapshot's point" exactly: the server
//! runs with no timed checkpoint, so after `kill -9` its redb file holds only the
//! start-up state and the journal holds every write since. Replaying the journal up to
//! the LSN the backup records rebuilds the source as it was when the snapshot was taken;
//! the restored backup must equal it row by row, in every table.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use stardag_server::store::backup;
use tokio::task::JoinSet;

use crate::harness::{binary, credentials, BinaryServer, Client};
use crate::tasks::{hash, new_build_id, reg, register, run_task};
use crate::v2::{leaf, Api};

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// The binary on `dir`, once start-up (bootstrap, replay) is done.
async fn serve(dir: &Path, env: &[(&str, &str)]) -> BinaryServer {
    let server = BinaryServer::start_with_env(dir, &[], env).await;
    server.client().get("/health").await.expect(200);
    server
}

async fn cli(args: &[&str], data_dir: &Path) -> std::process::Output {
    tokio::process::Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("STARDAG_SERVER_CONFIG")
        .output()
        .await
        .expect("run stardag-server")
}

#[track_caller]
fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes acknowledged before the backup began, per protocol.
#[derive(Default)]
struct Acked {
    /// (v1 build, task hash)
    v1: Vec<(String, String)>,
    /// v2 build ids
    v2: Vec<String>,
}

/// v1 writes as the 0.1 SDK makes them: a build, registrations, some runs.
async fn v1_writer(c: Client, w: usize, stop: Arc<AtomicBool>, began: Arc<AtomicBool>) -> Acked {
    let mut acked = Acked::default();
    let build = new_build_id(&c).await;
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let task = hash(&format!("w{w}-{i}"));
        let body = reg(&task, "t", &[]);
        if i % 3 == 0 {
            run_task(&c, &build, &body).await;
        } else {
            register(&c, &build, &body).await;
        }
        if !began.load(Ordering::SeqCst) {
            acked.v1.push((build.clone(), task));
        }
        i += 1;
    }
    acked
}

/// v2 writes as the 0.28 SDK makes them: a build, a plan, a registered chunk, a seal.
async fn v2_writer(api: Api, w: usize, stop: Arc<AtomicBool>, began: Arc<AtomicBool>) -> Acked {
    let mut acked = Acked::default();
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let tag = format!("w{w}-{i}");
        let flow = api
            .flow_on(&format!("code-{w}"), &[&tag], &[leaf(&tag)], true)
            .await;
        if !began.load(Ordering::SeqCst) {
            acked.v2.push(flow.build);
        }
        i += 1;
    }
    acked
}

/// The journal cut after the record with LSN `last` (format: store/journal.rs).
fn journal_up_to(bytes: &[u8], last: u64) -> Vec<u8> {
    let mut at = 20;
    while at + 17 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let lsn = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        if lsn > last || at + 17 + len > bytes.len() {
            break;
        }
        at += 17 + len;
    }
    bytes[..at].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_the_snapshot_row_by_row() {
    let src = tempfile::tempdir().unwrap();
    let env = [
        ("STARDAG_SERVER_RATE_LIMIT__PER_CREDENTIAL_RPS", "0"),
        ("STARDAG_SERVER_RATE_LIMIT__PER_IP_RPS", "0"),
        // No timed checkpoint: the journal keeps every write of the test.
        ("STARDAG_SERVER_STORE__CHECKPOINT_MS", "600000"),
    ];
    let mut server = serve(src.path(), &env).await;
    let key = credentials(src.path())["STARDAG_API_KEY"].clone();
    let sdk = server.client().with_api_key(&key);
    // The key's first use stamps last_used_at with a durable commit: get it done first.
    sdk.get("/api/v1/builds").await.expect(200);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let began = Arc::new(AtomicBool::new(false));
    let mut writers = JoinSet::new();
    for w in 0..2 {
        writers.spawn(v1_writer(sdk.clone(), w, stop.clone(), began.clone()));
        writers.spawn(v2_writer(
            Api::new(sdk.clone()),
            w,
            stop.clone(),
            began.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let file = src.path().join("..").join(format!(
        "{}.backup",
        src.path().file_name().unwrap().to_string_lossy()
    ));
    began.store(true, Ordering::SeqCst);
    let out = cli(&["backup", "--out", file.to_str().unwrap()], src.path()).await;
    let printed = ok(&out);
    assert!(printed.contains("sha256"), "{printed}");
    // Writes go on after the snapshot; they must not be in it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = Acked::default();
    while let Some(a) = writers.join_next().await {
        let a = a.unwrap();
        acked.v1.extend(a.v1);
        acked.v2.extend(a.v2);
    }
    assert!(!acked.v1.is_empty() && !acked.v2.is_empty());
    server.signal(SIGKILL);
    server.wait().await;

    let summary = backup::verify(std::fs::File::open(&file).unwrap()).unwrap();
    let lsn = summary.header.journal_lsn;
    assert!(lsn > 0, "the snapshot holds journaled writes");

    // The source at the snapshot's point: its file plus the journal up to `lsn`.
    let at_snapshot = tempfile::tempdir().unwrap();
    std::fs::copy(
        src.path().join("stardag.redb"),
        at_snapshot.path().join("stardag.redb"),
    )
    .unwrap();
    let wal = std::fs::read(src.path().join("stardag.journal/journal.wal")).unwrap();
    let cut = journal_up_to(&wal, lsn);
    assert!(
        cut.len() < wal.len(),
        "writes after the snapshot were journaled"
    );
    std::fs::create_dir(at_snapshot.path().join("stardag.journal")).unwrap();
    std::fs::write(at_snapshot.path().join("stardag.journal/journal.wal"), cut).unwrap();
    {
        let store = stardag_server::store::Store::open(
            &at_snapshot.path().join("stardag.redb"),
            &Default::default(),
        )
        .unwrap();
        store.shutdown();
    }

    let restored = tempfile::tempdir().unwrap();
    let printed = ok(&cli(
        &["restore", "--from", file.to_str().unwrap()],
        restored.path(),
    )
    .await);
    assert!(printed.contains("verified"), "{printed}");
    let diff = backup::compare_files(
        &at_snapshot.path().join("stardag.redb"),
        &restored.path().join("stardag.redb"),
    )
    .unwrap();
    assert_eq!(diff, None, "the restored backup differs from the snapshot");

    // The restored data dir serves every write acknowledged before the backup began.
    let mut server = serve(restored.path(), &[]).await;
    let c = server.client().with_api_key(&key);
    let mut builds: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (b, t) in &acked.v1 {
        builds.entry(b.clone()).or_default().push(t.clone());
    }
    for (b, tasks) in builds {
        let listed = crate::tasks::build_tasks(&c, &b).await;
        for t in tasks {
            assert!(
                listed.contains_key(&t),
                "v1 task {t} of build {b} is missing"
            );
        }
    }
    let api = Api::new(c);
    for b in &acked.v2 {
        let got = api.c.get(&format!("/api/v2/builds/{b}")).await.expect(200);
        assert_eq!(got["id"], json!(b));
    }
    server.signal(SIGTERM);
    assert!(server.wait().await.success());
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn restore_refuses_a_non_empty_dir_and_a_damaged_file() {
    let src = tempfile::tempdir().unwrap();
    let mut server = serve(src.path(), &[]).await;
    server.client().get("/health").await.expect(200);
    server.signal(SIGTERM);
    server.wait().await;
    // No server: the command reads the database itself.
    let file = src.path().join("offline.backup");
    ok(&cli(&["backup", "--out", file.to_str().unwrap()], src.path()).await);

    let target = tempfile::tempdir().unwrap();
    std::fs::write(target.path().join("something"), "x").unwrap();
    let out = cli(
        &["restore", "--from", file.to_str().unwrap()],
        target.path(),
    )
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    assert!(!target.path().join("stardag.redb").exists());

    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    let bad = src.path().join("bad.backup");
    std::fs::write(&bad, bytes).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = cli(&["restore", "--from", bad.to_str().unwrap()], empty.path()).await;
    assert!(!out.status.success());
    assert!(!empty.path().join("stardag.redb").exists());

    // --force replaces the database of a non-empty dir.
    ok(&cli(
        &["restore", "--force", "--from", file.to_str().unwrap()],
        target.path(),
    )
    .await);
    assert!(target.path().join("stardag.redb").exists());
}

// ---------------------------------------------------------------------------------------
// Upgrades: the fixtures written by earlier schema versions
// ---------------------------------------------------------------------------------------

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The schema versions whose fixtures [`the_schema_fixtures_open_migrate_and_serve`]
/// opens: one file per version since 2, each written once by that version's binary.
/// (`tests/integration/upgrade.rs` covers the version-1 file of the first v2 release.)
const FIXTURE_VERSIONS: [u32; 3] = [2, 3, 4];

/// What a fixture holds, written next to it by [`write_schema_fixture`].
fn fixture_facts(version: u32) -> Value {
    let name = format!("schema-v{version}.json");
    let text = std::fs::read_to_string(fixture_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every fixture up to this binary's own version is checked in (a new schema version
/// must add its file, by `write_schema_fixture`).
#[test]
fn a_fixture_exists_for_every_schema_version_since_2() {
    let current = stardag_server::store::SCHEMA_VERSION;
    assert_eq!(
        FIXTURE_VERSIONS.to_vec(),
        (2..=current).collect::<Vec<_>>(),
        "run write_schema_fixture for schema version {current} and list it"
    );
}

#[tokio::test]
async fn the_schema_fixtures_open_migrate_and_serve() {
    for version in FIXTURE_VERSIONS {
        open_fixture_and_serve(version).await;
    }
}

/// The database file of the fixture of schema `version`, unpacked.
fn fixture_db(version: u32) -> Vec<u8> {
    use std::io::Read;
    let mut gz = flate2::read::GzDecoder::new(
        std::fs::File::open(fixture_dir().join(format!("schema-v{version}.redb.gz"))).unwrap(),
    );
    let mut db = Vec::new();
    gz.read_to_end(&mut db).unwrap();
    db
}

async fn open_fixture_and_serve(version: u32) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stardag.redb"), fixture_db(version)).unwrap();
    serve_fixture_rows(version, dir.path()).await;
}

/// A backup of an older version's database (taken as that version would, without
/// migrating: its retired tables included) restores, then migrates at the first start
/// and serves the same rows.
#[tokio::test]
async fn a_backup_of_every_older_schema_version_restores_and_migrates() {
    let current = stardag_server::store::SCHEMA_VERSION;
    for version in FIXTURE_VERSIONS.into_iter().filter(|v| *v < current) {
        let old = tempfile::tempdir().unwrap();
        let path = old.path().join("stardag.redb");
        std::fs::write(&path, fixture_db(version)).unwrap();
        let file = old.path().join("old.sdbackup");
        {
            let db = redb::Database::open(&path).unwrap();
            let tx = redb::ReadableDatabase::begin_read(&db).unwrap();
            let out = std::fs::File::create(&file).unwrap();
            let summary = backup::dump(&tx, out).unwrap();
            assert_eq!(summary.header.schema_version, version);
        }
        let restored = tempfile::tempdir().unwrap();
        ok(&cli(
            &["restore", "--from", file.to_str().unwrap()],
            restored.path(),
        )
        .await);
        serve_fixture_rows(version, restored.path()).await;
    }
}

/// Starts the binary on `dir`, holding the fixture of schema `version`: it migrates, and
/// serves the fixture's rows.
async fn serve_fixture_rows(version: u32, dir: &Path) {
    let facts = fixture_facts(version);
    assert_eq!(facts["schema_version"], version);
    let mut server = serve(dir, &[]).await;
    let c = server
        .client()
        .with_api_key(facts["api_key"].as_str().unwrap());
    // v1: the build and its tasks, with their states.
    let build = facts["v1_build"].as_str().unwrap();
    let tasks = crate::tasks::build_tasks(&c, build).await;
    for (t, status) in facts["v1_tasks"].as_object().unwrap() {
        let row = tasks
            .get(t)
            .unwrap_or_else(|| panic!("v{version}: v1 task {t} missing"));
        assert_eq!(row["status"], *status, "v{version}: {row}");
    }
    // v2: the build, and its task through the task list.
    let b2 = facts["v2_build"].as_str().unwrap();
    let got = c.get(&format!("/api/v2/builds/{b2}")).await.expect(200);
    assert_eq!(got["id"], facts["v2_build"]);
    let t2 = c
        .get(&format!(
            "/api/v2/tasks/{}",
            facts["v2_task"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(t2["task_id"], facts["v2_task"]);
    // Fixtures written after schema 3 hold a run of that task: its executions and events.
    if let Some(status) = facts.get("v2_task_status") {
        assert_eq!(t2["status"], *status, "v{version}: {t2}");
        let t = facts["v2_task"].as_str().unwrap();
        for list in ["executions", "events"] {
            let got = c
                .get(&format!("/api/v2/tasks/{t}/{list}"))
                .await
                .expect(200);
            assert_eq!(
                got[list].as_array().map(Vec::len),
                facts[format!("v2_task_{list}")]
                    .as_u64()
                    .map(|n| n as usize),
                "v{version}: {got}"
            );
        }
    }
    // New writes work on the upgraded file.
    crate::tasks::create_build(&c).await;
    server.signal(SIGTERM);
    assert!(server.wait().await.success());

    // Every migrated row and index entry is whole.
    ok(&cli(&["admin", "verify"], dir).await);
    // The file now carries this binary's version; an older one was copied first.
    let out = cli(&["backup", "--out", "-"], dir).await;
    let summary = backup::verify(&out.stdout[..]).unwrap();
    assert_eq!(
        summary.header.schema_version,
        stardag_server::store::SCHEMA_VERSION
    );
    let copy = stardag_server::store::pre_migration_copy(&dir.join("stardag.redb"), version);
    assert_eq!(
        copy.exists(),
        stardag_server::store::SCHEMA_VERSION > version,
        "v{version}: pre-migration copy"
    );
}

/// Writes `tests/fixtures/schema-v<SCHEMA_VERSION>.redb.gz` and its JSON: run once per
/// schema version, by hand (`cargo test --release --test integration
/// write_schema_fixture -- --ignored`), never again for the same version.
#[tokio::test]
#[ignore]
async fn write_schema_fixture() {
    use std::io::Write;
    let version = stardag_server::store::SCHEMA_VERSION;
    let name = format!("schema-v{version}");
    assert!(
        !fixture_dir().join(format!("{name}.redb.gz")).exists(),
        "a fixture for schema version {version} exists: never regenerate it"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]).await;
    let key = credentials(dir.path())["STARDAG_API_KEY"].clone();
    let c = server.client().with_api_key(&key);
    let build = new_build_id(&c).await;
    let (a, b) = (hash("fixture-a"), hash("fixture-b"));
    run_task(&c, &build, &reg(&a, "a", &[])).await;
    register(&c, &build, &reg(&b, "b", &[&a])).await;
    let api = Api::new(c.clone());
    let flow = api.flow(&["fx"], &[leaf("fx")], true).await;
    let exec = api.claim(&flow.plan, "fx", None).await;
    api.complete(&flow.plan, "fx", &exec).await.expect(200);
    let t = crate::v2::tid("fx");
    let execs = c
        .get(&format!("/api/v2/tasks/{t}/executions"))
        .await
        .expect(200);
    let events = c
        .get(&format!("/api/v2/tasks/{t}/events"))
        .await
        .expect(200);
    server.signal(SIGTERM);
    assert!(server.wait().await.success());
    let facts = json!({
        "schema_version": version,
        "api_key": key,
        "v1_build": build,
        "v1_tasks": {a: "completed", b: "pending"},
        "v2_build": flow.build,
        "v2_task": t,
        "v2_task_status": "completed",
        "v2_task_executions": execs["executions"].as_array().unwrap().len(),
        "v2_task_events": events["events"].as_array().unwrap().len(),
    });
    let raw = std::fs::read(dir.path().join("stardag.redb")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&raw).unwrap();
    std::fs::write(
        fixture_dir().join(format!("{name}.redb.gz")),
        gz.finish().unwrap(),
    )
    .unwrap();
    std::fs::write(
        fixture_dir().join(format!("{name}.json")),
        serde_json::to_string_pretty(&facts).unwrap() + "\n",
    )
    .unwrap();
}

/// `systemctl reload` (ExecReload sends SIGHUP) must not stop a server without TLS.
#[tokio::test]
async fn sighup_without_tls_is_logged_and_survived() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]).await;
    server.signal(1);
    server.assert_logged("nothing to reload").await;
    server.client().get("/health").await.expect(200);
    server.signal(SIGTERM);
    assert!(server.wait().await.success());
}
