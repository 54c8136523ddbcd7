//! Starts the disk writes of database pages long before the checkpoint that needs them.
//!
//! A checkpoint (a durable commit, `writer.rs`) holds up every write until the pages
//! changed since the last one are on disk. redb writes a page to the file either at
//! that commit or earlier, when its write buffer passes half of `store.cache_bytes`;
//! the kernel then keeps it as a dirty page until a sync. This thread asks the kernel to
//! start writing those pages back every [`PERIOD`], so that the checkpoint's own sync
//! finds little left to write. With the default 8 MiB cache and 16 clients registering
//! tasks, checkpoints of 40-48 ms became 13-15 ms, and wrk's p99 fell from ~30 ms to
//! ~5 ms (docs/performance.md). Writing back early changes nothing about durability: redb
//! never overwrites the pages of its last durable commit, and the header that makes
//! new pages part of the database is written by the checkpoint, after its sync.

use std::fs::File;
use std::path::Path;
use std::sync::Weak;
use std::thread::JoinHandle;
use std::time::Duration;

use redb::Database;

/// How often dirty pages of the database file are handed to the disk.
const PERIOD: Duration = Duration::from_millis(50);

/// Starts the thread; it stops once `db` is dropped. Best effort: if the file cannot be
/// opened the thread is not started, and checkpoints simply write more themselves.
pub(super) fn start(path: &Path, db: Weak<Database>) -> Option<JoinHandle<()>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the database for early writeback");
            return None;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("store-writeback".into())
        .spawn(move || loop {
            std::thread::sleep(PERIOD);
            if db.strong_count() == 0 {
                return;
            }
            start_writeback(&file);
        });
    spawned
        .map_err(|e| tracing::warn!(error = %e, "cannot start the writeback thread"))
        .ok()
}

/// Queues every dirty page of `file` for writing, without waiting for the disk.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range only reads the descriptor, which `file` keeps open.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Elsewhere the checkpoint's own sync does all the writing.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_thread_stops_when_the_database_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.redb");
        let db = Arc::new(Database::create(&path).unwrap());
        let thread = start(&path, Arc::downgrade(&db)).expect("writeback thread");
        std::thread::sleep(PERIOD * 2);
        assert!(!thread.is_finished(), "runs while the database is open");
        drop(db);
        // Joins within a period: a leaked thread would hang the test here.
        thread.join().unwrap();
    }
}
