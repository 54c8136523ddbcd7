//! The schema version stored in the database, and the migrations between versions (D26).
//!
//! A database with no version is new: it gets [`SCHEMA_VERSION`]. An older one is
//! copied aside (`<db>.schema-v<N>.bak`, once) and brought forward by [`MIGRATIONS`],
//! one step per version, each step and its version bump in one transaction (a failed
//! step leaves the database at the last version that committed; the next start resumes
//! from there). A newer one is refused: this binary does not know its tables.
//!
//! To change the layout: append a [`Migration`] to [`MIGRATIONS`] (the version follows
//! from the list's length), change the tables, and check in a fixture written by the
//! previous version (`tests/fixtures/`, see its README): every later binary must open,
//! migrate and serve each of them.

use std::path::{Path, PathBuf};

use redb::{Database, ReadTransaction, ReadableDatabase, TableDefinition, WriteTransaction};

use super::StoreError;

/// One step from version N to N+1.
pub struct Migration {
    /// What the step changes, for the start-up log.
    pub what: &'static str,
    /// Rewrites the tables inside the step's transaction; it must not commit.
    pub run: fn(&WriteTransaction) -> Result<(), StoreError>,
}

/// `MIGRATIONS[i]` takes a version `i + 1` database to version `i + 2`. Append only.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        what: "v2 events stored under their build, two redundant v2 indexes dropped",
        run: super::v2::migrate::v1_to_v2,
    },
    Migration {
        what: "reverse index of dependency edges (a task's dependents)",
        run: super::tasks::fill_dependents,
    },
    Migration {
        what: "v2 task rows and their plan, instance, execution and event entries in one table",
        run: super::v2::migrate::v3_to_v4,
    },
];

/// Version of the table layout this binary writes.
pub const SCHEMA_VERSION: u32 = 1 + MIGRATIONS.len() as u32;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SCHEMA_KEY: &str = "schema_version";

/// A fresh file gets the current version; an older one is migrated; a newer one refused.
pub(super) fn check_and_init(db: &Database, path: &Path) -> Result<(), StoreError> {
    let found = {
        let tx = db.begin_read()?;
        stored_version(&tx)?
    };
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
            if super::journal::has_unreplayed(db, &super::journal::dir_for(path))? {
                return Err(StoreError::Schema(format!(
                    "the database (schema version {v}) was not shut down cleanly and its \
                     journal holds writes that version must replay: start the previous \
                     stardag-server once, stop it cleanly, then upgrade"
                )));
            }
            migrate(db, path, v, MIGRATIONS)?;
            create_tables(db)
        }
    }
}

/// The stored version, `None` for a new file.
pub(super) fn stored_version(tx: &ReadTransaction) -> Result<Option<u32>, StoreError> {
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

/// Where the copy made before migrating a version-`from` database goes.
pub fn pre_migration_copy(path: &Path, from: u32) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".schema-v{from}.bak"));
    path.with_file_name(name)
}

/// Copies the file aside (once: a copy from an earlier, interrupted attempt is the one
/// taken before any step ran), then runs `steps[from - 1..]`.
fn migrate(db: &Database, path: &Path, from: u32, steps: &[Migration]) -> Result<(), StoreError> {
    let target = 1 + steps.len() as u32;
    let copy = pre_migration_copy(path, from);
    if !copy.exists() {
        copy_file(path, &copy)?;
    }
    tracing::info!(from, to = target, copy = %copy.display(), "migrating the database schema");
    for (i, step) in steps.iter().enumerate().skip(from as usize - 1) {
        let to = i as u32 + 2;
        let tx = db.begin_write()?;
        (step.run)(&tx)?;
        {
            let mut meta = tx.open_table(META)?;
            meta.insert(SCHEMA_KEY, to.to_le_bytes().as_slice())?;
        }
        tx.commit()?;
        tracing::info!(version = to, "schema migration step done: {}", step.what);
    }
    Ok(())
}

/// A synced copy through a temporary name, so a crash never leaves a half copy that
/// looks complete.
fn copy_file(from: &Path, to: &Path) -> Result<(), StoreError> {
    let io = |e: std::io::Error| {
        StoreError::Schema(format!(
            "cannot copy {} to {} before migrating: {e}",
            from.display(),
            to.display()
        ))
    };
    let tmp = to.with_extension("partial");
    std::fs::copy(from, &tmp).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, to).map_err(io)?;
    Ok(())
}

/// Every table exists from the start, so readers never meet a missing one.
fn create_tables(db: &Database) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    super::identity::create_tables(&tx)?;
    super::tasks::create_tables(&tx)?;
    super::locks::create_tables(&tx)?;
    super::search::create_tables(&tx)?;
    super::v2::schema::create_tables(&tx)?;
    super::changes::create_tables(&tx)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOTES: TableDefinition<u64, &str> = TableDefinition::new("test_notes");

    fn add_notes(tx: &WriteTransaction) -> Result<(), StoreError> {
        tx.open_table(NOTES)?.insert(1, "added by step 1")?;
        Ok(())
    }

    fn rename_note(tx: &WriteTransaction) -> Result<(), StoreError> {
        tx.open_table(NOTES)?.insert(1, "changed by step 2")?;
        Ok(())
    }

    fn fail(_: &WriteTransaction) -> Result<(), StoreError> {
        Err(StoreError::Schema("step 2 failed".into()))
    }

    fn version_and_note(db: &Database) -> (Option<u32>, Option<String>) {
        let tx = db.begin_read().unwrap();
        let note = tx
            .open_table(NOTES)
            .ok()
            .and_then(|t| t.get(1).unwrap().map(|v| v.value().to_string()));
        (stored_version(&tx).unwrap(), note)
    }

    #[test]
    fn steps_run_in_order_from_the_stored_version_after_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let db = Database::create(&path).unwrap();
        write_version(&db, 1).unwrap();
        let steps = [
            Migration {
                what: "add notes",
                run: add_notes,
            },
            Migration {
                what: "change the note",
                run: rename_note,
            },
        ];
        migrate(&db, &path, 1, &steps).unwrap();
        assert_eq!(
            version_and_note(&db),
            (Some(3), Some("changed by step 2".into()))
        );
        // The copy is the version-1 file: no notes table, version 1.
        drop(db);
        let copy = Database::open(pre_migration_copy(&path, 1)).unwrap();
        assert_eq!(version_and_note(&copy), (Some(1), None));
    }

    #[test]
    fn a_failed_step_leaves_the_last_committed_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let db = Database::create(&path).unwrap();
        write_version(&db, 1).unwrap();
        let steps = [
            Migration {
                what: "add notes",
                run: add_notes,
            },
            Migration {
                what: "fails",
                run: fail,
            },
        ];
        let err = migrate(&db, &path, 1, &steps).unwrap_err().to_string();
        assert!(err.contains("step 2 failed"), "{err}");
        assert_eq!(
            version_and_note(&db),
            (Some(2), Some("added by step 1".into()))
        );
    }
}
