//! The schema version stored in the database (D26).

use redb::{Database, ReadableDatabase, TableDefinition};

use super::StoreError;

/// Version of the table layout this binary writes. Bump it with a migration below.
pub const SCHEMA_VERSION: u32 = 1;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SCHEMA_KEY: &str = "schema_version";

/// A fresh file gets the current version; an older one is migrated; a newer one refused.
pub(super) fn check_and_init(db: &Database) -> Result<(), StoreError> {
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
        // No released schema predates version 1; migrations go here when one does.
        Some(v) => Err(StoreError::Schema(format!(
            "the database has schema version {v}, which this stardag-server cannot migrate"
        ))),
    }
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
    {
        let mut table = tx.open_table(META)?;
        table.insert(SCHEMA_KEY, version.to_le_bytes().as_slice())?;
    }
    tx.commit()?;
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
