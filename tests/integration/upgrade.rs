//! D26: a database written by an earlier release opens, is migrated (after a backup
//! copy) and serves what it served before.

use std::io::Read;

use serde_json::{json, Value};

use crate::harness::BinaryServer;

/// `tests/fixtures/schema-v1-v2data.*`: schema version 1, written by the first release
/// with `/api/v2` (commit c7cbb11) after a real stardag 0.28.0 build of a diamond and a
/// v2 build failed through the API; the JSON holds that binary's answers.
fn unpack_schema_v1(dir: &std::path::Path) -> Value {
    let gz = include_bytes!("../fixtures/schema-v1-v2data.redb.gz");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut raw)
        .unwrap();
    std::fs::write(dir.join("stardag.redb"), raw).unwrap();
    serde_json::from_str(include_str!("../fixtures/schema-v1-v2data.json")).unwrap()
}

#[tokio::test]
async fn a_schema_1_database_with_v2_data_is_migrated_and_serves_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = unpack_schema_v1(dir.path());
    let key = fixture["api_key"].as_str().unwrap();
    let server = BinaryServer::start(dir.path(), &[]).await;
    server.assert_logged("schema migration step done").await;
    assert!(
        dir.path().join("stardag.redb.schema-v1.bak").exists(),
        "the migration keeps a copy of the version-1 file"
    );
    let c = server.client().with_api_key(key);

    for (path, before) in fixture["answers"].as_object().unwrap() {
        let now = c.get(&format!("/api/v2{path}")).await.expect(200);
        assert_eq!(
            &now, before,
            "GET /api/v2{path} changed across the migration"
        );
    }

    // The executions the SDK's run left are listed (the fixture has no answer for them).
    let root = fixture["root_task_id"].as_str().unwrap();
    let execs = c
        .get(&format!("/api/v2/tasks/{root}/executions"))
        .await
        .expect(200);
    let execs = execs["executions"].as_array().unwrap();
    assert_eq!(execs.len(), 1, "{execs:?}");
    assert_eq!(execs[0]["outcome"], "completed", "{execs:?}");

    // The migrated tables take new writes: a build over the same root appends events
    // after the old ones.
    let id = uuid::Uuid::now_v7().to_string();
    c.post(
        "/api/v2/builds",
        &json!({"id": id, "root_task_ids": [root]}),
    )
    .await
    .expect(200);
    c.post(
        &format!("/api/v2/builds/{id}/fail"),
        &json!({"error_message": "after"}),
    )
    .await
    .expect(200);
    let builds = c.get("/api/v2/builds").await.expect(200);
    let old_total = fixture["answers"]["/builds"]["total"].as_u64().unwrap();
    assert_eq!(builds["total"].as_u64(), Some(old_total + 1));
    let events = c
        .get(&format!("/api/v2/builds/{id}/events"))
        .await
        .expect(200);
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event_type"] == "build_failed"),
        "{events}"
    );
}

/// A backup of that version-1 file, taken as version 1 would take it (with the tables
/// version 2 dropped, two of which share a name with a table of another type in a later
/// version), restores into this binary, migrates and serves the same answers.
#[tokio::test]
async fn a_backup_of_the_schema_1_database_restores_migrates_and_serves_the_same_answers() {
    let old = tempfile::tempdir().unwrap();
    let fixture = unpack_schema_v1(old.path());
    let file = old.path().join("v1.sdbackup");
    {
        let db = redb::Database::open(old.path().join("stardag.redb")).unwrap();
        let tx = redb::ReadableDatabase::begin_read(&db).unwrap();
        let out = std::fs::File::create(&file).unwrap();
        let summary = stardag_server::store::backup::dump(&tx, out).unwrap();
        assert_eq!(summary.header.schema_version, 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let restored = tokio::process::Command::new(crate::harness::binary())
        .args(["restore", "--from", file.to_str().unwrap(), "--data-dir"])
        .arg(dir.path())
        .env_remove("STARDAG_SERVER_CONFIG")
        .output()
        .await
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let server = BinaryServer::start(dir.path(), &[]).await;
    let c = server
        .client()
        .with_api_key(fixture["api_key"].as_str().unwrap());
    for (path, before) in fixture["answers"].as_object().unwrap() {
        let now = c.get(&format!("/api/v2{path}")).await.expect(200);
        assert_eq!(
            &now, before,
            "GET /api/v2{path} after restore and migration"
        );
    }
}
