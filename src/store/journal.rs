//! The write-ahead journal: how hot writes are durable without a durable commit each.
//!
//! A durable redb commit rewrites every B-tree page the batch touched (about 75 pages
//! for 8 registrations, see docs/performance.md), so paying one per batch bounds the
//! write rate by page I/O, not by the fsync. Writes of the kinds in `redo.rs` are made
//! durable by a small record here instead: the writer thread applies their batch and
//! commits it without sync, hands the records to the journal thread, and goes on with
//! the next batch while this thread writes and `fdatasync`s them. A request is answered only
//! after its record is synced (D25). Every `checkpoint` the writer makes one durable
//! commit that also stores the last applied sequence number (LSN); the journal then
//! starts over. After a crash, [`recover`] replays the records newer than the database's
//! LSN before anything else runs.
//!
//! File `stardag.journal/journal.wal`, reused from its start after every checkpoint
//! (overwriting allocated blocks syncs faster than growing a file): a header
//! `[MAGIC 8 bytes][first LSN u64][crc32 of it u32]`, then frames
//! `[payload len u32][crc32 u32][lsn u64][kind u8][payload]`, integers little-endian, the
//! frame CRC over lsn, kind and payload. Frames carry consecutive LSNs from the
//! header's; the first frame that is cut short, fails its CRC or breaks the sequence
//! (a leftover of the previous cycle) ends the journal. A torn frame was never
//! acknowledged: its sync had not returned.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use redb::{Database, ReadableDatabase};

use super::disk::{wait_for_space, DiskSpace};
use super::schema::META;
use super::tables::Tables;
use super::StoreError;

const MAGIC: &[u8; 8] = b"SDJRNL02";
const HEADER: usize = 8 + 8 + 4;
const FRAME_HEAD: usize = 4 + 4 + 8 + 1;
const FILE_NAME: &str = "journal.wal";
/// META key of the last LSN whose effects are in the database.
const LSN_KEY: &str = "journal_lsn";

/// One logged write: its kind (`redo.rs`) and encoded input.
pub(super) struct Record {
    pub lsn: u64,
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// Delivers a write's answer once it is durable (or its batch failed).
pub(super) type Answer = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// The writer sends a batch's records just before its commit, so that the sync runs
/// while the commit does, and the answers once the commit is done: an answer goes out
/// when every record sent before it is synced.
pub(super) enum ToJournal {
    /// Records of one non-durable commit.
    Records(Vec<Record>),
    /// Answers of a committed batch whose records were sent before.
    Answers(Vec<Answer>),
    /// A durable commit now holds every record sent so far: the file can start over.
    Checkpointed,
}

/// The journal directory that belongs to the database file `db_path`.
pub(super) fn dir_for(db_path: &Path) -> PathBuf {
    db_path.with_extension("journal")
}

/// Stores `lsn` as applied, inside the batch's own transaction (written with the
/// batch's other `meta` values when its table set finishes).
pub(super) fn set_applied(t: &Tables, lsn: u64) -> Result<(), StoreError> {
    t.set_meta_value(LSN_KEY, &lsn.to_le_bytes())
}

fn applied(db: &Database) -> Result<u64, StoreError> {
    applied_in(&db.begin_read()?)
}

/// The last LSN whose effects are in the snapshot `tx` (0 before the first).
pub(super) fn applied_in(tx: &redb::ReadTransaction) -> Result<u64, StoreError> {
    let meta = match tx.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let Some(raw) = meta.get(LSN_KEY)? else {
        return Ok(0);
    };
    let bytes: [u8; 8] = raw.value().try_into().map_err(|_| StoreError::Corrupt {
        table: "meta",
        why: "journal_lsn is not 8 bytes".into(),
    })?;
    Ok(u64::from_le_bytes(bytes))
}

fn frame(out: &mut Vec<u8>, r: &Record) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&r.lsn.to_le_bytes());
    crc.update(&[r.kind]);
    crc.update(&r.payload);
    out.extend_from_slice(&(r.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&r.lsn.to_le_bytes());
    out.push(r.kind);
    out.extend_from_slice(&r.payload);
}

fn header(first_lsn: u64) -> [u8; HEADER] {
    let mut out = [0u8; HEADER];
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&first_lsn.to_le_bytes());
    out[16..].copy_from_slice(&crc32fast::hash(&first_lsn.to_le_bytes()).to_le_bytes());
    out
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().unwrap_or_default())
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().unwrap_or_default())
}

/// The records of one journal file, in order, and the offset where they end (see the
/// module comment for what ends them).
fn parse_until(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let Some(head) = bytes.get(..HEADER) else {
        return (out, 0);
    };
    let first = le_u64(&head[8..16]);
    if &head[..8] != MAGIC || le_u32(&head[16..20]) != crc32fast::hash(&head[8..16]) {
        return (out, 0);
    }
    let mut at = HEADER;
    while let Some(head) = bytes.get(at..at + FRAME_HEAD) {
        let len = le_u32(&head[0..4]) as usize;
        let lsn = le_u64(&head[8..16]);
        let Some(payload) = bytes.get(at + FRAME_HEAD..at + FRAME_HEAD + len) else {
            break;
        };
        let mut check = crc32fast::Hasher::new();
        check.update(&head[8..17]);
        check.update(payload);
        if check.finalize() != le_u32(&head[4..8]) || lsn != first + out.len() as u64 {
            break;
        }
        out.push(Record {
            lsn,
            kind: head[16],
            payload: payload.to_vec(),
        });
        at += FRAME_HEAD + len;
    }
    (out, at)
}

#[cfg(test)]
fn parse(bytes: &[u8]) -> Vec<Record> {
    parse_until(bytes).0
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::Journal(format!("{}: {e}", dir.display())))
}

/// Replays the journal into the database after a crash, then empties it. Returns the
/// last applied LSN, from which the writer numbers on. `replay` applies one record.
/// Whether the journal in `dir` holds records the database has not applied (a crash
/// happened after them): [`recover`] would replay them.
pub(super) fn has_unreplayed(db: &Database, dir: &Path) -> Result<bool, StoreError> {
    let bytes = match fs::read(dir.join(FILE_NAME)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StoreError::Journal(format!("{}: {e}", dir.display()))),
    };
    let last = applied(db)?;
    Ok(parse_until(&bytes).0.iter().any(|r| r.lsn > last))
}

pub(super) fn recover(
    db: &Database,
    dir: &Path,
    replay: impl Fn(&Tables, u8, &[u8]) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    fs::create_dir_all(dir).map_err(|e| StoreError::Journal(format!("{}: {e}", dir.display())))?;
    let mut last = applied(db)?;
    let path = dir.join(FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(last),
        Err(e) => return Err(StoreError::Journal(format!("{}: {e}", path.display()))),
    };
    let (mut pending, end) = parse_until(&bytes);
    let ignored_bytes = bytes.len() - end;
    pending.retain(|r| r.lsn > last);
    if !pending.is_empty() {
        let tx = db.begin_write()?;
        // One table set for the whole replay, like one batch of the writer: opening the
        // tables again for every record took ~40 % of a replay (docs/performance.md).
        let t = Tables::new(&tx);
        for r in &pending {
            if r.lsn != last + 1 {
                return Err(StoreError::Journal(format!(
                    "the journal in {} skips from LSN {last} to {}: records are missing; \
                     restore a backup",
                    dir.display(),
                    r.lsn
                )));
            }
            replay(&t, r.kind, &r.payload)?;
            last = r.lsn;
        }
        set_applied(&t, last)?;
        t.finish()?;
        drop(t);
        tx.commit()?;
        // Bytes after the last record: leftovers of an earlier cycle, or the write that
        // the crash cut off (never acknowledged: its sync had not returned).
        tracing::info!(
            records = pending.len(),
            lsn = last,
            ignored_bytes,
            "journal replayed"
        );
    }
    fs::remove_file(&path).map_err(|e| StoreError::Journal(format!("{}: {e}", path.display())))?;
    sync_dir(dir)?;
    Ok(last)
}

/// The journal thread: writes and syncs batches, answers their waiters, starts the
/// file over after each checkpoint. Runs until the writer drops its sender; a clean stop
/// (everything checkpointed) removes the file.
/// A full disk (ENOSPC, EDQUOT) is waited out: the batch is written again until it fits,
/// its writers unanswered meanwhile (`disk.rs`). Any other write error stops the process.
pub(super) fn run(
    dir: PathBuf,
    rx: Receiver<ToJournal>,
    syncs: &std::sync::atomic::AtomicU64,
    space: &DiskSpace,
) {
    let path = dir.join(FILE_NAME);
    let mut file: Option<File> = None;
    let mut buf = Vec::with_capacity(1 << 20);
    // Where the next write goes; `None` until the first batch after a checkpoint.
    let mut offset: Option<u64> = None;
    let mut answers: Vec<Answer> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                ToJournal::Records(records) => {
                    if let (None, Some(r)) = (offset, records.first()) {
                        buf.extend_from_slice(&header(r.lsn));
                        offset = Some(0);
                    }
                    for r in &records {
                        frame(&mut buf, r);
                    }
                }
                // Records framed before these answers' batch were synced already
                // unless some are still waiting in `buf`: answer at once, rather than
                // after the sync of a later batch's records.
                ToJournal::Answers(waiting) if buf.is_empty() => {
                    for answer in waiting {
                        answer(Ok(()));
                    }
                }
                ToJournal::Answers(waiting) => answers.extend(waiting),
                ToJournal::Checkpointed => {
                    // Everything framed so far is in the database now: no need to write
                    // it, and the next cycle starts at the top of the file.
                    buf.clear();
                    offset = None;
                    for answer in answers.drain(..) {
                        answer(Ok(()));
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        if let (Some(at), false) = (offset, buf.is_empty()) {
            let file = file.get_or_insert_with(|| create(&dir, &path, space));
            let written = wait_for_space(space, "journal", || {
                file.write_all_at(&buf, at).and_then(|_| file.sync_data())
            });
            if let Err(e) = written {
                fatal(&path, e);
            }
            syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            offset = Some(at + buf.len() as u64);
            buf.clear();
        }
        for answer in answers.drain(..) {
            answer(Ok(()));
        }
    }
    if file.is_some() && offset.is_none() {
        if let Err(e) = fs::remove_file(&path) {
            tracing::warn!(journal = %path.display(), error = %e, "cannot remove the journal");
        }
    }
}

/// A journal that cannot be written leaves writes visible in memory that must not be
/// acknowledged nor lost silently: like a database whose fsync failed, the process stops
/// and the next start replays what did reach the disk.
fn fatal(path: &Path, e: std::io::Error) -> ! {
    stop(&format!("cannot write the journal {}: {e}", path.display()))
}

/// Stops the process at once (no clean shutdown, no checkpoint) so that the next start
/// recovers from what reached the disk.
pub(super) fn stop(why: &str) -> ! {
    tracing::error!("{why}; stopping");
    eprintln!("stardag-server: {why}; stopping");
    std::process::abort();
}

/// Creates the empty journal file; its name is made durable too.
fn create(dir: &Path, path: &Path, space: &DiskSpace) -> File {
    let file = wait_for_space(space, "journal", || {
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)
    })
    .unwrap_or_else(|e| fatal(path, e));
    if let Err(StoreError::Journal(why)) = sync_dir(dir) {
        fatal(path, std::io::Error::other(why));
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableTable, ReadableTableMetadata};

    fn rec(lsn: u64, payload: &[u8]) -> Record {
        Record {
            lsn,
            kind: 7,
            payload: payload.to_vec(),
        }
    }

    fn journal(records: &[Record]) -> Vec<u8> {
        let mut out = header(records.first().map_or(1, |r| r.lsn)).to_vec();
        for r in records {
            frame(&mut out, r);
        }
        out
    }

    fn lsns(records: &[Record]) -> Vec<u64> {
        records.iter().map(|r| r.lsn).collect()
    }

    #[test]
    fn frames_round_trip() {
        let back = parse(&journal(&[rec(1, b"a"), rec(2, b""), rec(3, &[9; 300])]));
        let got: Vec<_> = back
            .iter()
            .map(|r| (r.lsn, r.kind, r.payload.clone()))
            .collect();
        assert_eq!(
            got,
            vec![(1, 7, b"a".to_vec()), (2, 7, vec![]), (3, 7, vec![9; 300])]
        );
    }

    #[test]
    fn a_torn_tail_keeps_the_complete_records_before_it() {
        let whole = journal(&[rec(1, b"first"), rec(2, b"second")]);
        let first_ends = whole.len() - (FRAME_HEAD + 6);
        for cut in 0..whole.len() {
            let complete = usize::from(cut >= first_ends);
            assert_eq!(parse(&whole[..cut]).len(), complete, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_byte_ends_the_journal_there() {
        let mut bytes = journal(&[rec(4, b"kept"), rec(5, b"payload")]);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(lsns(&parse(&bytes)), vec![4]);
        // A damaged header voids the file: nothing in it was synced with it.
        let mut bytes = journal(&[rec(4, b"kept")]);
        bytes[9] ^= 1;
        assert!(parse(&bytes).is_empty());
    }

    #[test]
    fn leftovers_of_the_previous_cycle_are_not_records() {
        // Cycle 1 wrote 1..=3; after a checkpoint cycle 2 overwrote the start with 4.
        let old = journal(&[rec(1, b"aaaa"), rec(2, b"bbbb"), rec(3, b"cccc")]);
        let new = journal(&[rec(4, b"dddd")]);
        let mut file = old.clone();
        file[..new.len()].copy_from_slice(&new);
        assert_eq!(lsns(&parse(&file)), vec![4]);
    }

    fn db(dir: &Path) -> Database {
        let db = Database::create(dir.join("t.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META).unwrap();
        tx.commit().unwrap();
        db
    }

    const SEEN: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("seen");

    fn replay_into_seen(t: &Tables, kind: u8, payload: &[u8]) -> Result<(), StoreError> {
        let mut t = t.tx().open_table(SEEN)?;
        let next = t.len()? + 1;
        assert_eq!(kind, 7);
        t.insert(next, payload)?;
        Ok(())
    }

    #[test]
    fn recovery_replays_only_records_newer_than_the_database() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db(tmp.path());
        let tx = db.begin_write().unwrap();
        Tables::with(&tx, |t| set_applied(t, 2)).unwrap();
        tx.commit().unwrap();
        let dir = tmp.path().join("j");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(FILE_NAME),
            journal(&[rec(1, b"old"), rec(2, b"old"), rec(3, b"c"), rec(4, b"d")]),
        )
        .unwrap();
        let last = recover(&db, &dir, replay_into_seen).unwrap();
        assert_eq!(last, 4);
        let tx = db.begin_read().unwrap();
        let seen: Vec<Vec<u8>> = tx
            .open_table(SEEN)
            .unwrap()
            .iter()
            .unwrap()
            .map(|r| r.unwrap().1.value().to_vec())
            .collect();
        assert_eq!(seen, vec![b"c".to_vec(), b"d".to_vec()]);
        assert_eq!(applied(&db).unwrap(), 4);
        assert!(
            !dir.join(FILE_NAME).exists(),
            "a replayed journal is removed"
        );
        // A second start finds nothing to do.
        assert_eq!(recover(&db, &dir, replay_into_seen).unwrap(), 4);
    }

    #[test]
    fn recovery_refuses_a_journal_with_a_hole() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db(tmp.path());
        let dir = tmp.path().join("j");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(FILE_NAME), journal(&[rec(5, b"x")])).unwrap();
        let err = recover(&db, &dir, replay_into_seen)
            .unwrap_err()
            .to_string();
        assert!(err.contains("skips from LSN 0 to 5"), "{err}");
        assert!(dir.join(FILE_NAME).exists(), "kept for the operator");
    }
}
