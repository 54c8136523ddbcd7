//! The schema version stored in the database (D26).

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, TableDefinition};

use super::StoreError;

/// Version of the table layout this binary writes. Bump it with a step in
/// [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = 2;

/// A migration from version `i + 1` to `i + 2`: rewrites rows inside the transaction
/// that also records the new version, so a crash leaves the older version whole.
type Migration = fn(&redb::WriteTransaction) -> Result<(), StoreError>;

/// One step per version, in order: `MIGRATIONS[0]` takes version 1 to 2.
const MIGRATIONS: [Migration; SCHEMA_VERSION as usize - 1] = [super::v2::migrate::v1_to_v2];

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SCHEMA_KEY: &str = "schema_version";

/// A fresh file gets the current version; an older one is migrated; a newer one refused.
pub(super) fn check_and_init(db: &Database, path: &Path) -> Result<(), StoreError> {
    let found = read_version(db)?;
    match found {
        None => {
            write_version(db, SCHEMA_VERSION)?;
            create_tables(db)
        }
        Some(v) if v == SCHEMA_VERSION => create_tables(db),
        Some(v) if v > SCHEMA_VERSION => Err(StoreError::Schema(format!(
            "the database has schema version {v}, but this stardag-server supports up to \
             {SCHEMA_VERSION}; upgrade stardag-server (or restore a backup made by this version)"
        ))),
        Some(0) => Err(StoreError::Schema(
            "the database has schema version 0, which no stardag-server wrote".into(),
        )),
        Some(v) => {
            backup_copy(path, v)?;
            for (from, step) in (v..SCHEMA_VERSION).zip(&MIGRATIONS[v as usize - 1..]) {
                let tx = db.begin_write()?;
                step(&tx)?;
                put_version(&tx, from + 1)?;
                tx.commit()?;
                tracing::info!(from, to = from + 1, "database schema migrated");
            }
            create_tables(db)
        }
    }
}

/// `<file>.schema-v<N>.bak` beside the database, before its first migration (D26);
/// an existing copy is kept (a migration that was interrupted runs again).
fn backup_copy(path: &Path, version: u32) -> Result<(), StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".schema-v{version}.bak"));
    let copy = PathBuf::from(name);
    if !copy.exists() {
        std::fs::copy(path, &copy).map_err(|e| {
            StoreError::Schema(format!(
                "cannot copy the database to {} before migrating it: {e}",
                copy.display()
            ))
        })?;
    }
    Ok(())
}

fn read_version(db: &Database) -> Result<Option<u32>, StoreError> {
    let tx = db.begin_read()?;
    let table = match tx.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(raw) = table.get(SCHEMA_KEY)? else {
        return Ok(None);
    };
    let bytes: [u8; 4] = raw.value().try_into().map_err(|_| StoreError::Corrupt {
        table: "meta",
        why: "schema_version is not 4 bytes".into(),
    })?;
    Ok(Some(u32::from_le_bytes(bytes)))
}

/// Every table exists from the start, so readers never meet a missing one.
fn create_tables(db: &Database) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    super::identity::create_tables(&tx)?;
    super::tasks::create_tables(&tx)?;
    super::locks::create_tables(&tx)?;
    super::search::create_tables(&tx)?;
    super::v2::schema::create_tables(&tx)?;
    tx.commit()?;
    super::search::ensure_indexes(db)
}

fn write_version(db: &Database, version: u32) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    put_version(&tx, version)?;
    tx.commit()?;
    Ok(())
}

fn put_version(tx: &redb::WriteTransaction, version: u32) -> Result<(), StoreError> {
    let mut table = tx.open_table(META)?;
    table.insert(SCHEMA_KEY, version.to_le_bytes().as_slice())?;
    Ok(())
}

/// Overwrites the stored version: only for tests of the refusal path.
#[doc(hidden)]
pub fn force_schema_version_for_tests(
    path: &std::path::Path,
    version: u32,
) -> Result<(), StoreError> {
    let db = Database::create(path)?;
    write_version(&db, version)
}
