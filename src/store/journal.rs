//! The write-ahead journal: how hot writes are durable without a durable commit each.
//!
//! A durable redb commit rewrites every B-tree page the batch touched (about 75 pages
//! for 8 registrations, see docs/performance.md), so paying one per batch bounds the
//! write rate by page I/O, not by the fsync. Writes of the kinds in `redo.rs` are made
//! durable by a small record here instead: the writer thread applies their batch and
//! commits it without sync, hands the records to the journal thread, and goes on with
//! the next batch while this thread appends and `fdatasync`s. A request is answered only
//! after its record is synced (D25). Every `checkpoint` the writer makes one durable
//! commit that also stores the last applied sequence number (LSN); the journal then
//! starts over. After a crash, [`recover`] replays the records newer than the database's
//! LSN before anything else runs.
//!
//! Segment file `journal/<first LSN, 20 digits>.wal`: the 8-byte [`MAGIC`], then frames
//! `[payload len u32][crc32 u32][lsn u64][kind u8][payload]`, integers little-endian, the
//! CRC over lsn, kind and payload. A frame cut short or failing its CRC is the torn tail
//! of a write that was never acknowledged: recovery stops there.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use redb::{Database, ReadableDatabase, WriteTransaction};

use super::schema::META;
use super::StoreError;

const MAGIC: &[u8; 8] = b"SDJRNL01";
const FRAME_HEAD: usize = 4 + 4 + 8 + 1;
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

pub(super) enum ToJournal {
    /// Records of one non-durable commit, and the answers that wait for them.
    Batch {
        records: Vec<Record>,
        answers: Vec<Answer>,
    },
    /// A durable commit now holds every record sent so far: their segment can go.
    Checkpointed,
}

/// The journal directory that belongs to the database file `db_path`.
pub(super) fn dir_for(db_path: &Path) -> PathBuf {
    db_path.with_extension("journal")
}

/// Stores `lsn` as applied, inside the batch's own transaction.
pub(super) fn set_applied(tx: &WriteTransaction, lsn: u64) -> Result<(), StoreError> {
    tx.open_table(META)?
        .insert(LSN_KEY, lsn.to_le_bytes().as_slice())?;
    Ok(())
}

fn applied(db: &Database) -> Result<u64, StoreError> {
    let tx = db.begin_read()?;
    let meta = tx.open_table(META)?;
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

/// Parses the frames of one segment; `Err(offset)` carries the records read before a
/// torn or corrupt frame at `offset`.
fn parse(bytes: &[u8]) -> Result<Vec<Record>, (Vec<Record>, usize)> {
    let mut out = Vec::new();
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err((out, 0));
    }
    let mut at = MAGIC.len();
    while at < bytes.len() {
        let Some(head) = bytes.get(at..at + FRAME_HEAD) else {
            return Err((out, at));
        };
        let len = u32::from_le_bytes(head[0..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(head[4..8].try_into().unwrap_or_default());
        let lsn = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
        let kind = head[16];
        let Some(payload) = bytes.get(at + FRAME_HEAD..at + FRAME_HEAD + len) else {
            return Err((out, at));
        };
        let mut check = crc32fast::Hasher::new();
        check.update(&head[8..17]);
        check.update(payload);
        if check.finalize() != crc {
            return Err((out, at));
        }
        out.push(Record {
            lsn,
            kind,
            payload: payload.to_vec(),
        });
        at += FRAME_HEAD + len;
    }
    Ok(out)
}

fn segments(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let io = |e: std::io::Error| StoreError::Journal(format!("{}: {e}", dir.display()));
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|x| x == "wal") {
            found.push(path);
        }
    }
    // Names are zero-padded first LSNs: lexical order is log order.
    found.sort();
    Ok(found)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::Journal(format!("{}: {e}", dir.display())))
}

/// Replays the journal into the database after a crash, then empties it. Returns the
/// last applied LSN, from which the writer numbers on. `replay` applies one record.
pub(super) fn recover(
    db: &Database,
    dir: &Path,
    replay: impl Fn(&WriteTransaction, u8, &[u8]) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    fs::create_dir_all(dir).map_err(|e| StoreError::Journal(format!("{}: {e}", dir.display())))?;
    let mut last = applied(db)?;
    let files = segments(dir)?;
    let mut pending = Vec::new();
    for path in &files {
        let bytes =
            fs::read(path).map_err(|e| StoreError::Journal(format!("{}: {e}", path.display())))?;
        match parse(&bytes) {
            Ok(records) => pending.extend(records),
            Err((records, offset)) => {
                // Nothing after a torn frame was ever acknowledged: the write that tore
                // was the last one in flight.
                tracing::warn!(
                    segment = %path.display(),
                    offset,
                    dropped_bytes = bytes.len() - offset,
                    "journal ends in an incomplete record (a write cut off by the crash)"
                );
                pending.extend(records);
                break;
            }
        }
    }
    pending.retain(|r| r.lsn > last);
    if !pending.is_empty() {
        let tx = db.begin_write()?;
        for r in &pending {
            if r.lsn != last + 1 {
                return Err(StoreError::Journal(format!(
                    "the journal in {} skips from LSN {last} to {}: records are missing; \
                     restore a backup",
                    dir.display(),
                    r.lsn
                )));
            }
            replay(&tx, r.kind, &r.payload)?;
            last = r.lsn;
        }
        set_applied(&tx, last)?;
        tx.commit()?;
        tracing::info!(records = pending.len(), lsn = last, "journal replayed");
    }
    for path in &files {
        fs::remove_file(path)
            .map_err(|e| StoreError::Journal(format!("{}: {e}", path.display())))?;
    }
    if !files.is_empty() {
        sync_dir(dir)?;
    }
    Ok(last)
}

/// The journal thread: appends and syncs batches, answers their waiters, drops segments
/// that a checkpoint made redundant. Runs until the writer drops its sender.
pub(super) fn run(dir: PathBuf, rx: Receiver<ToJournal>, syncs: &std::sync::atomic::AtomicU64) {
    let mut segment: Option<(File, PathBuf)> = None;
    let mut buf = Vec::with_capacity(1 << 20);
    let mut answers: Vec<Answer> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                ToJournal::Batch {
                    records,
                    answers: waiting,
                } => {
                    for r in &records {
                        frame(&mut buf, r);
                    }
                    if segment.is_none() {
                        if let Some(r) = records.first() {
                            segment = Some(open_segment(&dir, r.lsn, &mut buf));
                        }
                    }
                    answers.extend(waiting);
                }
                ToJournal::Checkpointed => {
                    // Everything framed so far is in the database now: no need to write
                    // it, and the segment (holding only older records) can go.
                    buf.clear();
                    if let Some((_, path)) = segment.take() {
                        if let Err(e) = fs::remove_file(&path) {
                            tracing::warn!(segment = %path.display(), error = %e, "cannot remove journal segment");
                        }
                    }
                    for answer in answers.drain(..) {
                        answer(Ok(()));
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        if !buf.is_empty() {
            if let Some((file, path)) = &mut segment {
                append(file, path, &buf);
                syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            buf.clear();
        }
        for answer in answers.drain(..) {
            answer(Ok(()));
        }
    }
}

/// A journal that cannot be written leaves writes visible in memory that must not be
/// acknowledged nor lost silently: like a database whose fsync failed, the process stops
/// and the next start replays what did reach the disk.
fn fatal(path: &Path, e: std::io::Error) -> ! {
    tracing::error!(segment = %path.display(), error = %e, "cannot write the journal; stopping");
    eprintln!(
        "stardag-server: cannot write the journal {}: {e}; stopping",
        path.display()
    );
    std::process::abort();
}

fn open_segment(dir: &Path, first_lsn: u64, buf: &mut Vec<u8>) -> (File, PathBuf) {
    let path = dir.join(format!("{first_lsn:020}.wal"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| fatal(&path, e));
    // The file's name must survive a crash as much as its contents.
    if let Err(StoreError::Journal(why)) = sync_dir(dir) {
        fatal(&path, std::io::Error::other(why));
    }
    buf.splice(0..0, MAGIC.iter().copied());
    (file, path)
}

fn append(file: &mut File, path: &Path, bytes: &[u8]) {
    if let Err(e) = file.write_all(bytes).and_then(|_| file.sync_data()) {
        fatal(path, e);
    }
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

    fn segment(records: &[Record]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for r in records {
            frame(&mut out, r);
        }
        out
    }

    #[test]
    fn frames_round_trip() {
        let bytes = segment(&[rec(1, b"a"), rec(2, b""), rec(3, &[9; 300])]);
        let back = parse(&bytes).map_err(|(_, at)| at).expect("parses");
        let got: Vec<_> = back
            .iter()
            .map(|r| (r.lsn, r.kind, r.payload.len()))
            .collect();
        assert_eq!(got, vec![(1, 7, 1), (2, 7, 0), (3, 7, 300)]);
    }

    #[test]
    fn a_torn_tail_keeps_the_complete_records_before_it() {
        let whole = segment(&[rec(1, b"first"), rec(2, b"second")]);
        for cut in MAGIC.len() + 1..whole.len() {
            let kept = match parse(&whole[..cut]) {
                Ok(all) => all,
                Err((before, _)) => before,
            };
            let complete = usize::from(cut >= whole.len() - (FRAME_HEAD + 6));
            assert_eq!(kept.len(), complete, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let mut bytes = segment(&[rec(1, b"payload")]);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let (kept, at) = parse(&bytes).err().expect("corrupt");
        assert!(kept.is_empty());
        assert_eq!(at, MAGIC.len());
    }

    fn db(dir: &Path) -> Database {
        let db = Database::create(dir.join("t.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META).unwrap();
        tx.commit().unwrap();
        db
    }

    const SEEN: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("seen");

    fn replay_into_seen(tx: &WriteTransaction, kind: u8, payload: &[u8]) -> Result<(), StoreError> {
        let mut t = tx.open_table(SEEN)?;
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
        set_applied(&tx, 2).unwrap();
        tx.commit().unwrap();
        let dir = tmp.path().join("j");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("{:020}.wal", 1)),
            segment(&[rec(1, b"old"), rec(2, b"old"), rec(3, b"c"), rec(4, b"d")]),
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
            segments(&dir).unwrap().is_empty(),
            "replayed segments are removed"
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
        fs::write(dir.join(format!("{:020}.wal", 5)), segment(&[rec(5, b"x")])).unwrap();
        let err = recover(&db, &dir, replay_into_seen)
            .unwrap_err()
            .to_string();
        assert!(err.contains("skips from LSN 0 to 5"), "{err}");
        assert_eq!(segments(&dir).unwrap().len(), 1, "kept for the operator");
    }
}
