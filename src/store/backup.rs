//! Online backup and restore (D27, D35): a logical dump of every table, read from one
//! redb read transaction, streamed, with a SHA-256 trailer.
//!
//! Why logical and not a copy of the file: redb rewrites the file's header on every
//! commit and reuses freed pages, so bytes copied while the server writes are torn. A
//! read transaction is an MVCC snapshot: writers go on committing while it is read
//! (they are never blocked; the file only grows while it is held, because the pages it
//! sees cannot be reused). The dump is also independent of redb's file format, so it is
//! the way data moves to another store backend (docs/scaling.md).
//!
//! What the snapshot holds: every commit made before the read transaction began, the
//! journaled ones included (they are committed to redb without sync before they are
//! answered, see docs/architecture.md). `meta.journal_lsn` in the dump is the last
//! journal record it contains; the journal file itself is not part of the backup
//! (everything in it up to that LSN is already in the tables, nothing after it is in the
//! snapshot).
//!
//! Format (integers little-endian):
//! `"SDBACKUP"`, format version u32, header (u32 length + JSON: schema version, journal
//! LSN, creation time, server version); per table `'T'`, name, key type, value type
//! (each u16 length + UTF-8), rows `'R'` (u32 key length, key bytes, u32 value length,
//! value bytes) and `'E'` with the row count u64; then `'Z'` and the SHA-256 of every
//! byte before it. Rows are redb's own byte encoding of each key and value.

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use redb::{Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use redb::{MultimapTableHandle, TableHandle, Value, WriteTransaction};
use ring::digest;
use serde::{Deserialize, Serialize};

use super::schema::META;
use super::StoreError;

const MAGIC: &[u8; 8] = b"SDBACKUP";
const FORMAT_VERSION: u32 = 1;
/// Longest key or value a dump may carry (redb's own limit is far above real rows;
/// this only stops a damaged length from allocating gigabytes).
const MAX_ITEM: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    #[error("not a stardag-server backup, or a damaged one: {0}")]
    Format(String),
    #[error("checksum mismatch: the backup is damaged or incomplete (expected {expected}, computed {computed})")]
    Checksum { expected: String, computed: String },
    #[error("{0}")]
    Incompatible(String),
}

macro_rules! db_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for BackupError {
            fn from(e: $t) -> Self {
                BackupError::Store(e.into())
            }
        }
    )*};
}
db_error_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);

/// What the dump's header says about the snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupHeader {
    pub schema_version: u32,
    /// The last journal record whose effects are in the snapshot.
    pub journal_lsn: u64,
    pub created_at: String,
    pub server_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    #[serde(flatten)]
    pub header: BackupHeader,
    pub tables: usize,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// Something done once per table of the schema, with the table's types.
pub trait TableVisitor {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), BackupError>;
}

/// Every table of the schema. A table created at start-up but missing here makes
/// `dump` fail (and the unit test below), so a new table cannot be left out of backups.
pub fn visit_tables(v: &mut impl TableVisitor) -> Result<(), BackupError> {
    use super::v2::schema as v2;
    use super::{identity as id, locks as lk, search as se, tasks as tk};
    macro_rules! each {
        ($($def:expr),* $(,)?) => { $(v.table($def)?;)* };
    }
    each!(
        META,
        id::USERS,
        id::USER_BY_EMAIL,
        id::USER_BY_EXTERNAL,
        id::WORKSPACES,
        id::WORKSPACE_BY_SLUG,
        id::MEMBERS,
        id::MEMBER_BY_USER,
        id::INVITES,
        id::INVITE_WORKSPACE,
        id::INVITE_BY_EMAIL,
        id::ENVIRONMENTS,
        id::ENV_WORKSPACE,
        id::API_KEYS,
        id::API_KEY_BY_HASH,
        id::TARGET_ROOTS,
        id::SIGNING_KEYS,
        id::SESSIONS_VALID_FROM,
        tk::BUILDS,
        tk::TASK_IDS,
        tk::TASKS,
        tk::TASK_STATES,
        tk::TASKS_BY_NAME,
        tk::TASKS_BY_NAMESPACE,
        tk::BUILD_TASKS,
        tk::BUILD_EVENTS,
        tk::TASK_EVENTS,
        tk::TASK_EDGES,
        tk::TASK_DEPENDENTS,
        tk::PENDING_EDGES,
        tk::ASSETS,
        tk::ENV_COUNTS,
        super::changes::BUILD_CHANGES,
        lk::LOCKS,
        lk::LOCK_EXPIRY,
        lk::LOCK_COUNTS,
        lk::LOCK_COMPLETIONS,
        se::POSTINGS,
        se::COUNTS,
        se::OVERFLOW,
        se::SHAPES,
        v2::BUILDS,
        v2::BUILD_ENVS,
        v2::BUILDS_BY_ACTIVITY,
        v2::BUILDS_BY_STATUS,
        v2::BUILD_COUNTS,
        v2::REACTIVE,
        v2::DEPLOYMENTS,
        v2::DEPLOYMENT_GENERATIONS,
        v2::LOCAL_DEPLOYMENTS,
        v2::SETTINGS,
        v2::TASKS,
        v2::TASKS_BY_STATUS,
        v2::INSTANCES,
        v2::PLANS,
        v2::BUILD_PLANS,
        v2::PLAN_SCOPES,
        v2::MEMBERS,
        v2::EXECUTIONS,
        v2::BUILD_EXECUTIONS,
        v2::YIELDS,
        v2::ARTIFACTS,
        v2::LIMITS,
        v2::LIMIT_HOLDERS,
        v2::BUILD_EVENTS,
        v2::TICKS,
    );
    Ok(())
}

/// Every table an earlier schema version wrote and a later migration reads and drops:
/// a backup of an older database holds them, and its restore must load them so the
/// next start can migrate them. Two of them share a name with a table of another type
/// (`v2_task_events` changed its value, `v2_build_events` became the rows' table): the
/// loader matches a table by name and types.
pub fn visit_retired_tables(v: &mut impl TableVisitor) -> Result<(), BackupError> {
    use super::v2::migrate as m;
    v.table(m::OLD_EVENTS)?;
    v.table(m::OLD_TASK_EVENTS)?;
    v.table(m::OLD_BUILD_EVENTS)?;
    v.table(m::OLD_TASKS_BY_TIME)?;
    v.table(m::OLD_OPEN_CLAIMS)?;
    v.table(m::V3_TASKS)?;
    v.table(m::V3_TASK_PLANS)?;
    v.table(m::V3_TASK_INSTANCES)?;
    v.table(m::V3_TASK_EXECUTIONS)?;
    v.table(m::V3_TASK_EVENTS)?;
    Ok(())
}

/// Collects the names of the tables visited.
struct Names(Vec<String>);

impl TableVisitor for Names {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), BackupError> {
        self.0.push(def.name().to_string());
        Ok(())
    }
}

/// The names of every table in [`visit_tables`].
pub fn known_tables() -> Vec<String> {
    let mut names = Names(Vec::new());
    let _ = visit_tables(&mut names);
    names.0
}

/// The names of every table in [`visit_retired_tables`].
fn retired_tables() -> Vec<String> {
    let mut names = Names(Vec::new());
    let _ = visit_retired_tables(&mut names);
    names.0
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// Counts and hashes what goes through it.
struct Hashing<W: Write> {
    inner: W,
    ctx: digest::Context,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.ctx.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn put_str(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u16).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn put_item(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    w.write_all(&(b.len() as u32).to_le_bytes())?;
    w.write_all(b)
}

struct Dumper<'a, W: Write> {
    tx: &'a ReadTransaction,
    /// Names of the tables dumped so far.
    dumped: Vec<String>,
    out: &'a mut Hashing<BufWriter<W>>,
    tables: usize,
    rows: u64,
}

impl<W: Write> TableVisitor for Dumper<'_, W> {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), BackupError> {
        let table = match self.tx.open_table(def) {
            Ok(t) => t,
            // Not created yet (an older file before its first start), or a table of this
            // name but another type, dumped by the definition of that type (a retired
            // one); `dump` checks that every table of the file was.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(redb::TableError::TableTypeMismatch { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        self.out.write_all(b"T")?;
        put_str(self.out, def.name())?;
        put_str(self.out, K::type_name().name())?;
        put_str(self.out, V::type_name().name())?;
        let mut n = 0u64;
        for row in table.iter()? {
            let (k, v) = row?;
            self.out.write_all(b"R")?;
            put_item(self.out, K::as_bytes(&k.value()).as_ref())?;
            put_item(self.out, V::as_bytes(&v.value()).as_ref())?;
            n += 1;
        }
        self.out.write_all(b"E")?;
        self.out.write_all(&n.to_le_bytes())?;
        self.tables += 1;
        self.rows += n;
        self.dumped.push(def.name().to_owned());
        Ok(())
    }
}

/// Writes the dump of the snapshot `tx` to `out`.
pub fn dump(tx: &ReadTransaction, out: impl Write) -> Result<BackupSummary, BackupError> {
    // A table in the file that the registry does not know would be silently lost.
    let mut known = known_tables();
    known.extend(retired_tables());
    for handle in tx.list_tables()? {
        if !known.iter().any(|n| n == handle.name()) {
            return Err(BackupError::Incompatible(format!(
                "table {} is not in the backup registry (store/backup.rs)",
                handle.name()
            )));
        }
    }
    if let Some(handle) = tx.list_multimap_tables()?.next() {
        return Err(BackupError::Incompatible(format!(
            "multimap table {} is not in the backup registry (store/backup.rs)",
            handle.name()
        )));
    }
    let header = BackupHeader {
        schema_version: super::schema::stored_version(tx)?.unwrap_or(0),
        journal_lsn: super::journal::applied_in(tx)?,
        created_at: crate::clock::format_micros(crate::clock::now_micros()),
        server_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut out = Hashing {
        inner: BufWriter::with_capacity(256 << 10, out),
        ctx: digest::Context::new(&digest::SHA256),
        bytes: 0,
    };
    out.write_all(MAGIC)?;
    out.write_all(&FORMAT_VERSION.to_le_bytes())?;
    let head = serde_json::to_vec(&header).map_err(|e| BackupError::Format(e.to_string()))?;
    put_item(&mut out, &head)?;
    let (tables, rows) = {
        let mut d = Dumper {
            tx,
            dumped: Vec::new(),
            out: &mut out,
            tables: 0,
            rows: 0,
        };
        visit_tables(&mut d)?;
        visit_retired_tables(&mut d)?;
        for handle in tx.list_tables()? {
            if !d.dumped.iter().any(|n| n == handle.name()) {
                return Err(BackupError::Incompatible(format!(
                    "table {} has types no version of the backup registry knows",
                    handle.name()
                )));
            }
        }
        (d.tables, d.rows)
    };
    out.write_all(b"Z")?;
    let sum = out.ctx.clone().finish();
    let bytes = out.bytes;
    out.inner.write_all(sum.as_ref())?;
    out.inner.flush()?;
    Ok(BackupSummary {
        header,
        tables,
        rows,
        bytes: bytes + 32,
        sha256: hex(sum.as_ref()),
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// One table section's head.
pub struct TableHead {
    pub name: String,
    pub key_type: String,
    pub value_type: String,
}

/// Reads a dump in order, hashing every byte, so that [`Parser::finish`] can tell a
/// damaged or cut-off file from a good one.
pub struct Parser<R: Read> {
    inner: R,
    ctx: digest::Context,
    bytes: u64,
    pub header: BackupHeader,
    rows_in_table: u64,
    tables: usize,
    rows: u64,
    done: bool,
}

impl<R: Read> Parser<R> {
    pub fn new(inner: R) -> Result<Parser<R>, BackupError> {
        let mut p = Parser {
            inner,
            ctx: digest::Context::new(&digest::SHA256),
            bytes: 0,
            header: BackupHeader {
                schema_version: 0,
                journal_lsn: 0,
                created_at: String::new(),
                server_version: String::new(),
            },
            rows_in_table: 0,
            tables: 0,
            rows: 0,
            done: false,
        };
        let mut magic = [0u8; 8];
        p.fill(&mut magic)?;
        if &magic != MAGIC {
            return Err(BackupError::Format("wrong magic bytes".into()));
        }
        let version = p.u32()?;
        if version != FORMAT_VERSION {
            return Err(BackupError::Incompatible(format!(
                "backup format version {version}; this stardag-server reads version {FORMAT_VERSION}"
            )));
        }
        let mut head = Vec::new();
        p.item(&mut head)?;
        p.header = serde_json::from_slice(&head)
            .map_err(|e| BackupError::Format(format!("header: {e}")))?;
        Ok(p)
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), BackupError> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => BackupError::Format(format!(
                "the file ends after {} bytes: the backup is incomplete",
                self.bytes
            )),
            _ => BackupError::Io(e),
        })?;
        self.ctx.update(buf);
        self.bytes += buf.len() as u64;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, BackupError> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    fn u32(&mut self) -> Result<u32, BackupError> {
        let mut b = [0u8; 4];
        self.fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, BackupError> {
        let mut b = [0u8; 8];
        self.fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn string(&mut self) -> Result<String, BackupError> {
        let mut b = [0u8; 2];
        self.fill(&mut b)?;
        let mut s = vec![0u8; u16::from_le_bytes(b) as usize];
        self.fill(&mut s)?;
        String::from_utf8(s).map_err(|_| BackupError::Format("a name is not UTF-8".into()))
    }

    fn item(&mut self, buf: &mut Vec<u8>) -> Result<(), BackupError> {
        let len = self.u32()? as usize;
        if len > MAX_ITEM {
            return Err(BackupError::Format(format!("an item of {len} bytes")));
        }
        buf.resize(len, 0);
        self.fill(buf)
    }

    /// The next table section, or `None` at the end of the dump.
    pub fn next_table(&mut self) -> Result<Option<TableHead>, BackupError> {
        match self.u8()? {
            b'T' => {
                self.rows_in_table = 0;
                Ok(Some(TableHead {
                    name: self.string()?,
                    key_type: self.string()?,
                    value_type: self.string()?,
                }))
            }
            b'Z' => {
                self.done = true;
                Ok(None)
            }
            other => Err(BackupError::Format(format!("unexpected tag {other:#x}"))),
        }
    }

    /// The next row of the current table into `k` and `v`; false at its end.
    pub fn next_row(&mut self, k: &mut Vec<u8>, v: &mut Vec<u8>) -> Result<bool, BackupError> {
        match self.u8()? {
            b'R' => {
                self.item(k)?;
                self.item(v)?;
                self.rows_in_table += 1;
                Ok(true)
            }
            b'E' => {
                let n = self.u64()?;
                if n != self.rows_in_table {
                    return Err(BackupError::Format(format!(
                        "a table section says {n} rows but holds {}",
                        self.rows_in_table
                    )));
                }
                self.tables += 1;
                self.rows += n;
                Ok(false)
            }
            other => Err(BackupError::Format(format!("unexpected tag {other:#x}"))),
        }
    }

    /// Checks the trailer against what was read; the dump is good only if this is Ok.
    pub fn finish(mut self) -> Result<BackupSummary, BackupError> {
        if !self.done {
            return Err(BackupError::Format("finish before the end".into()));
        }
        let computed = self.ctx.clone().finish();
        let mut expected = [0u8; 32];
        self.inner.read_exact(&mut expected).map_err(|_| {
            BackupError::Format("the checksum trailer is missing: the backup is incomplete".into())
        })?;
        if expected != computed.as_ref() {
            return Err(BackupError::Checksum {
                expected: hex(&expected),
                computed: hex(computed.as_ref()),
            });
        }
        let mut extra = [0u8; 1];
        if self.inner.read(&mut extra)? != 0 {
            return Err(BackupError::Format("bytes after the checksum".into()));
        }
        Ok(BackupSummary {
            header: self.header,
            tables: self.tables,
            rows: self.rows,
            bytes: self.bytes + 32,
            sha256: hex(&expected),
        })
    }
}

/// Reads a whole dump and checks its checksum, storing nothing.
pub fn verify(r: impl Read) -> Result<BackupSummary, BackupError> {
    let mut p = Parser::new(r)?;
    let (mut k, mut v) = (Vec::new(), Vec::new());
    while p.next_table()?.is_some() {
        while p.next_row(&mut k, &mut v)? {}
    }
    p.finish()
}

/// Inserts one table section's rows with the table's own types.
struct Loader<'a, R: Read> {
    parser: &'a mut Parser<R>,
    tx: &'a WriteTransaction,
    head: &'a TableHead,
    found: bool,
    /// The types of a table of the same name but other types, if one was met.
    other_types: Option<String>,
}

impl<R: Read> TableVisitor for Loader<'_, R> {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), BackupError> {
        if self.found || def.name() != self.head.name {
            return Ok(());
        }
        let (kt, vt) = (K::type_name(), V::type_name());
        if kt.name() != self.head.key_type || vt.name() != self.head.value_type {
            // A retired table of this name may have the backup's types.
            self.other_types = Some(format!("({}, {})", kt.name(), vt.name()));
            return Ok(());
        }
        self.found = true;
        self.other_types = None;
        let mut table = self.tx.open_table(def)?;
        let (mut k, mut v) = (Vec::new(), Vec::new());
        while self.parser.next_row(&mut k, &mut v)? {
            // redb's decoders assume well-formed bytes; a fixed-width mismatch is damage.
            let bad = |w: Option<usize>, len: usize| w.is_some_and(|w| w != len);
            if bad(K::fixed_width(), k.len()) || bad(V::fixed_width(), v.len()) {
                return Err(BackupError::Format(format!(
                    "a row of table {} has the wrong width",
                    self.head.name
                )));
            }
            table
                .insert(K::from_bytes(&k), V::from_bytes(&v))
                .map_err(StoreError::from)?;
        }
        Ok(())
    }
}

/// Checks the backup file `from`, then writes its rows into a new database file at
/// `db_path` (which must not exist). The checksum is verified before any row is decoded
/// (a damaged row must not reach redb's decoders) and again while loading.
pub fn restore_file(from: &Path, db_path: &Path) -> Result<BackupSummary, BackupError> {
    verify(io::BufReader::with_capacity(
        256 << 10,
        std::fs::File::open(from)?,
    ))?;
    load(std::fs::File::open(from)?, db_path)
}

/// Writes the dump read from `r` into a new database file at `path` (which must not
/// exist). The rows go into one transaction that is committed only once the checksum
/// matched, so a damaged backup leaves no database behind.
fn load(r: impl Read, path: &Path) -> Result<BackupSummary, BackupError> {
    let mut parser = Parser::new(io::BufReader::with_capacity(256 << 10, r))?;
    if parser.header.schema_version > super::SCHEMA_VERSION {
        return Err(BackupError::Incompatible(format!(
            "the backup has schema version {}, but this stardag-server supports up to {}; \
             restore it with a newer stardag-server",
            parser.header.schema_version,
            super::SCHEMA_VERSION
        )));
    }
    // Only a backup of an older version may hold tables this version retired.
    let older = parser.header.schema_version < super::SCHEMA_VERSION;
    let db = Database::create(path)?;
    let result = (|| {
        let mut tx = db.begin_write()?;
        // Durable once, at the end; the file is new and not in use until renamed.
        tx.set_quick_repair(false);
        while let Some(head) = parser.next_table()? {
            let mut loader = Loader {
                parser: &mut parser,
                tx: &tx,
                head: &head,
                found: false,
                other_types: None,
            };
            visit_tables(&mut loader)?;
            if !loader.found && older {
                visit_retired_tables(&mut loader)?;
            }
            if let (false, Some(types)) = (loader.found, loader.other_types.take()) {
                return Err(BackupError::Incompatible(format!(
                    "table {} holds ({}, {}) in the backup but {types} in this version",
                    head.name, head.key_type, head.value_type,
                )));
            }
            if !loader.found {
                return Err(BackupError::Incompatible(format!(
                    "the backup holds table {}, which this stardag-server does not know",
                    head.name
                )));
            }
        }
        let summary = parser.finish()?;
        tx.commit()?;
        Ok(summary)
    })();
    drop(db);
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// A row as its key and value bytes.
type RawRow = (Vec<u8>, Vec<u8>);

/// Row-by-row equality of two snapshots, for tests: the first difference, if any.
#[doc(hidden)]
pub fn first_difference(a: &ReadTransaction, b: &ReadTransaction) -> Option<String> {
    struct Cmp<'a> {
        a: &'a ReadTransaction,
        b: &'a ReadTransaction,
        diff: Option<String>,
    }
    impl TableVisitor for Cmp<'_> {
        fn table<K: Key + 'static, V: Value + 'static>(
            &mut self,
            def: TableDefinition<K, V>,
        ) -> Result<(), BackupError> {
            if self.diff.is_some() {
                return Ok(());
            }
            let rows = |tx: &ReadTransaction| -> Result<Vec<RawRow>, BackupError> {
                let t = match tx.open_table(def) {
                    Ok(t) => t,
                    Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                    Err(e) => return Err(e.into()),
                };
                let mut out = Vec::new();
                for row in t.iter()? {
                    let (k, v) = row?;
                    out.push((
                        K::as_bytes(&k.value()).as_ref().to_vec(),
                        V::as_bytes(&v.value()).as_ref().to_vec(),
                    ));
                }
                Ok(out)
            };
            let (ra, rb) = (rows(self.a)?, rows(self.b)?);
            if ra != rb {
                let at = ra.iter().zip(&rb).position(|(x, y)| x != y);
                self.diff = Some(format!(
                    "table {}: {} rows vs {} rows, first differing row {:?}",
                    def.name(),
                    ra.len(),
                    rb.len(),
                    at
                ));
            }
            Ok(())
        }
    }
    let mut c = Cmp { a, b, diff: None };
    if let Err(e) = visit_tables(&mut c) {
        return Some(e.to_string());
    }
    c.diff
}

/// Opens two database files read-only and compares them with [`first_difference`].
#[doc(hidden)]
pub fn compare_files(a: &Path, b: &Path) -> Result<Option<String>, BackupError> {
    let (da, db) = (Database::open(a)?, Database::open(b)?);
    let (ta, tb) = (da.begin_read()?, db.begin_read()?);
    Ok(first_difference(&ta, &tb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_created_at_start_is_in_the_registry() {
        let (_dir, store) = super::super::temp_store();
        let names = known_tables();
        store
            .read_blocking(|tx| -> Result<(), StoreError> {
                for handle in tx.list_tables()? {
                    assert!(
                        names.iter().any(|n| n == handle.name()),
                        "table {} is missing from store/backup.rs",
                        handle.name()
                    );
                }
                Ok(())
            })
            .unwrap();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "a table is listed twice");
    }

    #[test]
    fn dump_then_load_gives_the_same_rows_and_damage_is_detected() {
        let (dir, store) = super::super::temp_store();
        store
            .write_blocking(|tx| -> Result<(), StoreError> {
                let mut t = tx.open_table(super::super::identity::USER_BY_EMAIL)?;
                t.insert("a@example.com", 7u128)?;
                t.insert("b@example.com", 9u128)?;
                Ok(())
            })
            .unwrap();
        let mut bytes = Vec::new();
        let summary = store.read_blocking(|tx| dump(tx, &mut bytes)).unwrap();
        assert_eq!(summary.bytes as usize, bytes.len());
        assert!(summary.rows >= 2);
        assert_eq!(verify(&bytes[..]).unwrap().sha256, summary.sha256);

        let file = dir.path().join("backup.sdb");
        std::fs::write(&file, &bytes).unwrap();
        let restored = dir.path().join("restored.redb");
        let loaded = restore_file(&file, &restored).unwrap();
        assert_eq!(loaded.rows, summary.rows);
        store.shutdown();
        drop(store);
        let diff = compare_files(&dir.path().join("t.redb"), &restored).unwrap();
        assert_eq!(diff, None);

        // One flipped byte in a row, or a cut-off file: refused, no database left.
        let mut bad = bytes.clone();
        let at = bytes.len() / 2;
        bad[at] ^= 0x55;
        std::fs::write(&file, &bad).unwrap();
        let again = dir.path().join("again.redb");
        let err = restore_file(&file, &again).unwrap_err().to_string();
        assert!(err.contains("checksum") || err.contains("damaged"), "{err}");
        assert!(!again.exists());
        let err = verify(&bytes[..bytes.len() - 10]).unwrap_err().to_string();
        assert!(err.contains("incomplete"), "{err}");
    }
}
