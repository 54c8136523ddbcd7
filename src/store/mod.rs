//! All state in one redb file.
//!
//! Reads run on MVCC snapshots in `spawn_blocking` ([`Store::read`]); writes go to one
//! writer thread that applies many requests in one transaction and commits once
//! ([`Store::write`], see `writer.rs`). Keys start with the tenant id so a lookup can
//! only ever see the caller's rows.

pub mod backup;
pub mod change_log;
pub mod changes;
pub mod codec;
pub mod disk;
pub mod identity;
mod journal;
pub mod locks;
pub mod redo;
mod schema;
pub mod search;
pub mod stamped_cache;
pub mod tables;
pub mod tasks;
pub mod v2;
pub mod verify;
mod writeback;
mod writer;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};

pub use schema::{force_schema_version_for_tests, pre_migration_copy, SCHEMA_VERSION};
pub use writer::{WriterStats, BATCH_BOUNDS};

/// A read snapshot, as handlers name it: they never name the engine's types, so the
/// seam for a second backend is this module's API (docs/scaling.md).
pub type ReadSnapshot = ReadTransaction;
/// A write transaction of the writer's batch, as handlers name it (see [`ReadSnapshot`]).
pub type WriteTxn = WriteTransaction;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    #[error("corrupt row in table {table}: {why}")]
    Corrupt { table: &'static str, why: String },
    #[error("cannot encode row: {0}")]
    Encode(String),
    #[error("{0}")]
    Schema(String),
    #[error("the database {0} is in use by another process (is the server running?)")]
    Locked(String),
    #[error("the write queue is full")]
    Busy,
    #[error("the store is shutting down")]
    ShuttingDown,
    #[error("the write batch failed: {0}")]
    BatchFailed(String),
    #[error("background task failed: {0}")]
    Join(String),
    #[error("journal: {0}")]
    Journal(String),
    /// Free space is below `store.min_free_bytes` (`disk.rs`): the write was not tried.
    #[error("the disk holding the database is full")]
    DiskFull,
    /// The database file cannot be trusted; only a backup brings it back.
    #[error(
        "the database file {path} is damaged ({why}); it is left untouched. Move it \
         aside and restore your last backup of it (docs/operations.md, \"Damaged \
         database file\")"
    )]
    Damaged { path: String, why: String },
}

macro_rules! redb_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
redb_error_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError
);

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub cache_bytes: usize,
    pub write_queue: usize,
    pub max_batch: usize,
    pub checkpoint_interval: std::time::Duration,
    /// Below this many free bytes on the data dir's filesystem, writes are refused.
    pub min_free_bytes: u64,
}

impl From<&crate::config::StoreConfig> for StoreOptions {
    fn from(c: &crate::config::StoreConfig) -> Self {
        StoreOptions {
            cache_bytes: c.cache_bytes,
            write_queue: c.write_queue,
            max_batch: c.max_batch,
            checkpoint_interval: std::time::Duration::from_millis(c.checkpoint_ms),
            min_free_bytes: c.min_free_bytes,
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions::from(&crate::config::StoreConfig::default())
    }
}

/// A small store in a fresh temporary directory, for unit tests.
#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("t.redb"), &test_options()).expect("open store");
    (dir, store)
}

/// Options of [`temp_store`]: a small cache and queue.
#[cfg(test)]
pub(crate) fn test_options() -> StoreOptions {
    StoreOptions {
        cache_bytes: 4 << 20,
        write_queue: 64,
        max_batch: 16,
        ..Default::default()
    }
}

/// Cheap to clone: every clone shares the database and the writer.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    writer: writer::WriterHandle,
    space: Arc<disk::DiskSpace>,
    /// What recent batches changed in watched builds (`change_log.rs`).
    log: Arc<change_log::ChangeLog>,
}

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

impl Store {
    /// Opens (or creates) the database, checks its schema version, replays the journal
    /// a crash left behind (`journal.rs`), starts the writer. A damaged file is
    /// [`StoreError::Damaged`], whatever redb did with it (error or panic).
    pub fn open(path: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        let damaged = |why: String| StoreError::Damaged {
            path: path.display().to_string(),
            why,
        };
        check_header(path).map_err(damaged)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let space = disk::DiskSpace::new(dir, opts.min_free_bytes);
        let opened = crate::panics::catch(|| Self::open_checked(path, opts, space.clone()));
        match opened {
            Ok(Ok(db)) => Self::start(db, path, opts, space),
            Ok(Err(e)) => Err(match corruption(&e) {
                Some(why) => damaged(why),
                None => e,
            }),
            Err(panic) => Err(damaged(format!(
                "the database engine failed on it: {panic}"
            ))),
        }
    }

    /// redb's open with its integrity check (it verifies every page's checksum, so a
    /// damaged file fails here instead of panicking later), then schema and journal.
    fn open_checked(
        path: &Path,
        opts: &StoreOptions,
        space: Arc<disk::DiskSpace>,
    ) -> Result<(Database, u64), StoreError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StoreError::Db(redb::Error::Io(e)))?;
        let db = redb::Builder::new()
            .set_cache_size(opts.cache_bytes)
            .set_check_integrity_on_open(true)
            .create_with_backend(disk::SpaceWaitingFile::new(file, space)?)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    StoreError::Locked(path.display().to_string())
                }
                other => other.into(),
            })?;
        schema::check_and_init(&db, path)?;
        let last_lsn = journal::recover(&db, &journal::dir_for(path), redo::replay)?;
        Ok((db, last_lsn))
    }

    fn start(
        (db, last_lsn): (Database, u64),
        path: &Path,
        opts: &StoreOptions,
        space: Arc<disk::DiskSpace>,
    ) -> Result<Store, StoreError> {
        let db = Arc::new(db);
        writeback::start(path, Arc::downgrade(&db));
        let log = Arc::new(change_log::ChangeLog::default());
        let writer = writer::WriterHandle::start(
            db.clone(),
            writer::WriterConfig {
                queue: opts.write_queue,
                max_batch: opts.max_batch,
                journal_dir: journal::dir_for(path),
                last_lsn,
                checkpoint_interval: opts.checkpoint_interval,
                space: space.clone(),
                log: log.clone(),
            },
        )?;
        Ok(Store {
            db,
            writer,
            space,
            log,
        })
    }

    /// What recent batches changed in the builds whose frontier is kept.
    pub fn change_log(&self) -> Arc<change_log::ChangeLog> {
        self.log.clone()
    }

    /// Whether writes are refused for lack of disk space (`disk.rs`).
    pub fn disk_full(&self) -> bool {
        self.space.is_full()
    }

    /// Free bytes on the data dir's filesystem at the last check.
    pub fn free_bytes(&self) -> u64 {
        self.space.free_bytes()
    }

    /// Runs `f` on a fresh read snapshot off the async runtime.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&ReadTransaction) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let tx = db.begin_read().map_err(StoreError::from)?;
            f(&tx)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Runs `f` on a fresh v2 snapshot (`v2::schema::Snapshot`) off the async runtime.
    pub async fn read_v2<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&v2::schema::Snapshot) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.read(move |tx| f(&v2::schema::Snapshot::new(tx))).await
    }

    /// Sends `op` to the writer; answers once the batch holding it is durably committed.
    ///
    /// Contract: `op` does all its checks before its first write, so an `Err` from it
    /// leaves the shared transaction untouched and never fails other requests' writes.
    pub async fn write<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.submit(move |t| op(t.closed()?), None).await
    }

    /// Applies a journaled write (`redo.rs`): answered once its journal record is synced,
    /// which costs far less than a durable commit of the pages it changed. The record is
    /// encoded here, on the caller's thread, to keep the writer thread free.
    pub async fn write_logged<L: redo::Logged>(&self, op: L) -> Result<L::Out, L::Err> {
        let payload = codec::encode(&op)?;
        self.writer
            .submit(move |t| op.apply(t), Some((L::KIND as u8, payload)))
            .await
    }

    /// Synchronous read for offline tools (admin CLI, backup) and start-up.
    pub fn read_blocking<T, E>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self.db.begin_read().map_err(StoreError::from)?;
        f(&tx)
    }

    /// A read on the calling (async) thread, for a few keyed lookups on hot request paths
    /// (credentials, one row): these take microseconds from cached pages, less than the
    /// thread hand-offs of a [`Store::read`]. Anything that ranges goes through `read`.
    pub fn read_inline<T, E>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.read_blocking(f)
    }

    /// Synchronous write through the writer, for offline tools and start-up.
    pub fn write_blocking<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.submit_blocking(move |t| op(t.closed()?))
    }

    /// Streams a consistent dump of the whole database to `out` (`backup.rs`): one read
    /// transaction, so writers go on while it runs. Blocking; call it off the runtime.
    pub fn backup_to(
        &self,
        out: impl std::io::Write,
    ) -> Result<backup::BackupSummary, backup::BackupError> {
        let tx = self.db.begin_read().map_err(StoreError::from)?;
        backup::dump(&tx, out)
    }

    /// A handle for backups that does not keep the database open (the backup socket
    /// outlives a stopped store in tests that restart in one process).
    pub fn backup_source(&self) -> BackupSource {
        BackupSource(Arc::downgrade(&self.db))
    }

    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Commits what is queued, stops the writer and waits for it. Later writes fail with
    /// `ShuttingDown`. The database file closes cleanly when the last clone is dropped.
    pub fn shutdown(&self) {
        self.writer.shutdown();
    }
}

/// A file that exists but cannot be a redb database (empty, cut short before the end of
/// its header, or foreign) is refused before redb sees it: redb would start a new
/// database in an empty file, and the first start would bootstrap a new install over
/// the operator's data.
fn check_header(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Permissions and the like: redb's open reports them.
        Err(_) => return Ok(()),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Err("the file is empty (0 bytes)".into());
    }
    let mut head = [0u8; REDB_MAGIC.len()];
    if file.read_exact(&mut head).is_err() || head != REDB_MAGIC {
        return Err("it does not start with a redb header".into());
    }
    Ok(())
}

/// The description of a damaged file, if `e` says the file is one.
fn corruption(e: &StoreError) -> Option<String> {
    let text = e.to_string();
    match e {
        StoreError::Db(redb::Error::Corrupted(_)) | StoreError::Corrupt { .. } => Some(text),
        StoreError::Db(_) if text.contains("orrupt") => Some(text),
        _ => None,
    }
}

/// See [`Store::backup_source`].
#[derive(Clone)]
pub struct BackupSource(std::sync::Weak<Database>);

impl BackupSource {
    /// Like [`Store::backup_to`]; fails once the store is closed.
    pub fn backup_to(
        &self,
        out: impl std::io::Write,
    ) -> Result<backup::BackupSummary, backup::BackupError> {
        let db = self.0.upgrade().ok_or(StoreError::ShuttingDown)?;
        let tx = db.begin_read().map_err(StoreError::from)?;
        backup::dump(&tx, out)
    }
}

/// Read access shared by read and write transactions, so lookups are written once and
/// serve both handlers' snapshots and the writer's plan-then-apply checks. Tables are
/// created at start-up, so opening one never fails for being absent.
pub trait Reader {
    fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: redb::TableDefinition<K, V>,
    ) -> Result<impl redb::ReadableTable<K, V> + '_, StoreError>;
}

impl Reader for ReadTransaction {
    fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: redb::TableDefinition<K, V>,
    ) -> Result<impl redb::ReadableTable<K, V> + '_, StoreError> {
        Ok(self.open_table(def)?)
    }
}

impl Reader for WriteTransaction {
    fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: redb::TableDefinition<K, V>,
    ) -> Result<impl redb::ReadableTable<K, V> + '_, StoreError> {
        Ok(self.open_table(def)?)
    }
}

/// Removes the task-tracking data of an environment (builds, tasks, events, assets,
/// locks) when the environment goes. Each resource's store module adds its purge here.
pub fn purge_environment_data(tx: &WriteTransaction, env: uuid::Uuid) -> Result<(), StoreError> {
    tasks::purge_environment(tx, env)?;
    locks::purge_environment(tx, env)?;
    search::purge_environment(tx, env.as_u128())?;
    v2::purge_environment(tx, env.as_u128())?;
    changes::purge_environment(tx, env.as_u128())?;
    Ok(())
}

#[cfg(test)]
mod seam_tests {
    /// Handlers and pages name only this module's types (docs/scaling.md, D36): a
    /// second backend replaces `store`, not `api/` or `ui/`.
    #[test]
    fn no_engine_type_is_named_outside_the_store() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        let code = line.split("//").next().unwrap_or("");
                        if code.contains("redb::") || code.contains("use redb") {
                            found.push(format!("{}:{}: {line}", path.display(), n + 1));
                        }
                    }
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        walk(&root.join("api"), &mut found);
        walk(&root.join("ui"), &mut found);
        assert!(
            found.is_empty(),
            "redb named outside src/store:\n{}",
            found.join("\n")
        );
    }
}
